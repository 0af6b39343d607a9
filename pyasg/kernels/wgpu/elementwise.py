"""WGSL kernels of the elementwise ops: one generated shader per (op, shapes, dtype).

One thread per output element; broadcasting is index arithmetic on constants baked
into the shader. WGSL lacks some of numpy's functions or defines them differently
(log1p, expm1, erf, pow of a negative base, integer floor division and modulo), so
those are written out below with numpy's semantics.
"""

from __future__ import annotations

from pyasg.asg import ops
from pyasg.asg.types import TensorType
from pyasg.kernels import lower
from pyasg.kernels.wgpu.backend import WgpuBackend
from pyasg.kernels.wgpu.codegen import (
    bindings,
    broadcast_offset,
    coords,
    grid,
    main,
    wgsl_type,
)
from pyasg.kernels.wgpu.kernel import Dispatch, WgpuKernel

# Helper functions a shader may need, emitted only when used.
HELPERS = {
    "log1p_f": """fn log1p_f(x: f32) -> f32 {
  let u = 1.0 + x;
  if (u == 1.0) { return x; }
  return log(u) * x / (u - 1.0);
}""",
    "expm1_f": """fn expm1_f(x: f32) -> f32 {
  if (abs(x) < 1e-5) { return x + 0.5 * x * x; }
  return exp(x) - 1.0;
}""",
    "erf_f": """fn erf_f(x: f32) -> f32 {
  // Numerical Recipes' erfc approximation (fractional error < 1.2e-7); WGSL has no erf
  // and Abramowitz & Stegun 7.1.26 (1.5e-7 absolute, worse relative) is too coarse.
  let z = abs(x);
  let t = 1.0 / (1.0 + 0.5 * z);
  let y = t * exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418
        + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587
        + t * (-0.82215223 + t * 0.17087277)))))))));
  return sign(x) * (1.0 - y);
}""",
    "tanh_f": """fn tanh_f(x: f32) -> f32 {
  // some drivers overflow exp inside tanh for large |x|; tanh is +-1 there anyway
  return tanh(clamp(x, -15.0, 15.0));
}""",
    "pow_f": """fn pow_f(a: f32, b: f32) -> f32 {
  // numpy's power: negative bases with integer exponents, 0**0 = 1
  if (b == 0.0) { return 1.0; }
  if (a == 0.0) { return select(bitcast<f32>(0x7f800000u), 0.0, b > 0.0); }
  if (a > 0.0) { return exp2(b * log2(a)); }
  if (b != floor(b)) { return bitcast<f32>(0x7fc00000u); }
  let m = exp2(b * log2(-a));
  return select(m, -m, (abs(b) % 2.0) == 1.0);
}""",
    "pow_i": """fn pow_i(a: i32, b: i32) -> i32 {
  // numpy refuses negative integer powers; here they truncate towards zero
  if (b < 0) {
    if (a == 1) { return 1; }
    if (a == -1) { return select(-1, 1, (b % 2) == 0); }
    return 0;
  }
  var r = 1; var base = a; var e = b;
  loop {
    if (e == 0) { break; }
    if ((e & 1) == 1) { r = r * base; }
    base = base * base; e = e >> 1u;
  }
  return r;
}""",
    "pow_u": """fn pow_u(a: u32, b: u32) -> u32 {
  var r = 1u; var base = a; var e = b;
  loop {
    if (e == 0u) { break; }
    if ((e & 1u) == 1u) { r = r * base; }
    base = base * base; e = e >> 1u;
  }
  return r;
}""",
    "floordiv_i": """fn floordiv_i(a: i32, b: i32) -> i32 {
  if (b == 0) { return 0; }
  let q = a / b;
  return select(q, q - 1, (a % b != 0) && ((a < 0) != (b < 0)));
}""",
    "mod_i": """fn mod_i(a: i32, b: i32) -> i32 {
  if (b == 0) { return 0; }
  let r = a % b;
  return select(r, r + b, (r != 0) && ((r < 0) != (b < 0)));
}""",
    "mod_f": """fn mod_f(a: f32, b: f32) -> f32 {
  return a - b * floor(a / b);  // the sign of b, as numpy's remainder
}""",
}


def _unary(op: ops.Op, ty: str) -> tuple[str, tuple[str, ...]]:
    """The WGSL expression of a unary op on `a` of type `ty`, and the helpers it needs."""
    kind = type(op)
    if kind is ops.Neg:
        return ("0u - a" if ty == "u32" else "-a"), ()
    if kind is ops.Abs:
        return ("a" if ty == "u32" else "abs(a)"), ()
    if kind is ops.Sign:
        if ty == "u32":
            return "select(0u, 1u, a > 0u)", ()
        return "sign(a)", ()
    table = {ops.Exp: ("exp(a)", ()), ops.Log: ("log(a)", ()), ops.Sqrt: ("sqrt(a)", ()),
             ops.Sin: ("sin(a)", ()), ops.Cos: ("cos(a)", ()),
             ops.Tanh: ("tanh_f(a)", ("tanh_f",)), ops.Erf: ("erf_f(a)", ("erf_f",)),
             ops.Log1p: ("log1p_f(a)", ("log1p_f",)), ops.Expm1: ("expm1_f(a)", ("expm1_f",))}
    return table[kind]


def _binary(op: ops.Op, ty: str) -> tuple[str, tuple[str, ...]]:
    kind = type(op)
    simple = {ops.Add: "a + b", ops.Sub: "a - b", ops.Mul: "a * b", ops.Div: "a / b",
              ops.Maximum: "max(a, b)", ops.Minimum: "min(a, b)",
              ops.Less: "select(0u, 1u, a < b)", ops.LessEqual: "select(0u, 1u, a <= b)",
              ops.Greater: "select(0u, 1u, a > b)",
              ops.GreaterEqual: "select(0u, 1u, a >= b)",
              ops.Equal: "select(0u, 1u, a == b)", ops.NotEqual: "select(0u, 1u, a != b)"}
    if kind in simple:
        return simple[kind], ()
    if kind is ops.Pow:
        name = {"f32": "pow_f", "i32": "pow_i", "u32": "pow_u"}[ty]
        return f"{name}(a, b)", (name,)
    if kind is ops.FloorDiv:
        if ty == "f32":
            return "floor(a / b)", ()
        if ty == "u32":
            return "select(0u, a / b, b != 0u)", ()
        return "floordiv_i(a, b)", ("floordiv_i",)
    if kind is ops.Mod:
        if ty == "f32":
            return "mod_f(a, b)", ("mod_f",)
        if ty == "u32":
            return "select(0u, a % b, b != 0u)", ()
        return "mod_i(a, b)", ("mod_i",)
    raise KeyError(kind)


def elementwise_kernel(out: TensorType, inputs: tuple[TensorType, ...], expr: str,
                       helpers: tuple[str, ...] = (), names: str = "abc") -> WgpuKernel:
    """out[i] = expr, where `a`, `b`, `c` are the (broadcast) inputs at i."""
    decls = [(f"in{k}", wgsl_type(t), False) for k, t in enumerate(inputs)]
    decls.append(("out", wgsl_type(out), True))
    loads = "\n".join(f"  let {names[k]} = in{k}[{broadcast_offset(out.shape, t.shape)}];"
                      for k, t in enumerate(inputs))
    need_coords = any(t.shape != out.shape for t in inputs)
    body = (f"  if (i >= {out.size}u) {{ return; }}\n"
            + (coords(out.shape) + "\n" if need_coords and out.shape else "")
            + f"{loads}\n  out[i] = {expr};")
    source = "\n\n".join([bindings(decls)] + [HELPERS[h] for h in helpers] + [main(body)])
    binds = tuple(("in", k) for k in range(len(inputs))) + (("out",),)
    return WgpuKernel((Dispatch(source, grid(out.size), binds),))


def _register_unary(cls: type) -> None:
    @lower.register(cls, WgpuBackend)
    def _(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
        expr, helpers = _unary(op, wgsl_type(in_types[0]))
        return elementwise_kernel(out_type, in_types, expr, helpers)


def _register_binary(cls: type) -> None:
    @lower.register(cls, WgpuBackend)
    def _(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
        expr, helpers = _binary(op, wgsl_type(in_types[0]))
        return elementwise_kernel(out_type, in_types, expr, helpers)


for _cls in (ops.Neg, ops.Abs, ops.Sign, ops.Exp, ops.Log, ops.Log1p, ops.Expm1, ops.Sqrt,
             ops.Sin, ops.Cos, ops.Tanh, ops.Erf):
    _register_unary(_cls)
for _cls in (ops.Add, ops.Sub, ops.Mul, ops.Div, ops.FloorDiv, ops.Mod, ops.Pow, ops.Maximum,
             ops.Minimum, ops.Less, ops.LessEqual, ops.Greater, ops.GreaterEqual, ops.Equal,
             ops.NotEqual):
    _register_binary(_cls)


@lower.register(ops.Where, WgpuBackend)
def _(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
    return elementwise_kernel(out_type, in_types, "select(c, b, a != 0u)")


@lower.register(ops.Cast, WgpuBackend)
def _(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
    src, dst = in_types[0].dtype, out_type.dtype
    if dst == "bool":
        zero = {"float32": "0.0", "int32": "0", "uint32": "0u", "bool": "0u"}[src]
        expr = f"select(0u, 1u, a != {zero})"
    elif src == dst:
        expr = "a"
    else:
        expr = f"{wgsl_type(dst)}(a)"  # float -> int truncates towards zero, as numpy
    return elementwise_kernel(out_type, in_types, expr)


@lower.register(ops.StopGradient, WgpuBackend)
def _(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
    return WgpuKernel(alias=True)
