"""WGSL kernels of the elementwise ops: one expression row per op class, one shader per node.

`EXPRESSIONS` holds every elementwise op's WGSL, as a function of its operands `a`,
`b`, `c` (and the WGSL type they have): the single-op kernel below and the fused
group's kernel (`fused.py`) both read it, and the kernels are registered from its
keys, so an op has exactly one definition of what it computes on the GPU. Where WGSL
lacks one of numpy's functions or defines it differently, the row calls a helper of
`helpers.HELPERS` with numpy's semantics.

The kernel: one thread per output element; broadcasting is index arithmetic on
constants baked into the shader; operands are read and the result written through
`Load` / `Store` hooks. It is a `kernel.Part`, so it may also run merged with other
kernels (`horizontal.py`).

>>> expression(ops.Neg(), (TensorType((3,), "uint32"),), TensorType((3,), "uint32")).text
'0u - a'
>>> expression(ops.Tanh(), (TensorType((3,)),), TensorType((3,)))
Expr(text='tanh_f(a)', helpers=('tanh_f',))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pyasg.asg import ops
from pyasg.asg.types import TensorType
from pyasg.kernels import lower
from pyasg.kernels.wgpu.backend import WgpuBackend
from pyasg.kernels.wgpu.codegen import broadcast_offset, coords, wgsl_type
from pyasg.kernels.wgpu.horizontal import alone, parts_kernel
from pyasg.kernels.wgpu.kernel import Dispatch, Part, WgpuKernel
from pyasg.kernels.wgpu.shader import Buffer, Load, Shader, Store


@dataclass(frozen=True)
class Expr:
    """A WGSL expression of the operands `a`, `b`, `c`, and the helpers it calls."""

    text: str
    helpers: tuple[str, ...] = ()


def _call(helper: str, args: str) -> Expr:
    return Expr(f"{helper}({args})", (helper,))


#: A row: (op, operand types, output type) -> the op's expression.
Row = Callable[[ops.Op, tuple[TensorType, ...], TensorType], Expr]


def _row(any_type: str | Expr, **by_type: str | Expr) -> Row:
    """A row whose expression is `any_type`, or `by_type[t]` where the first operand has
    WGSL type t (f32, i32, u32)."""
    def row(op: ops.Op, ins: tuple[TensorType, ...], out: TensorType) -> Expr:
        e = by_type.get(wgsl_type(ins[0]), any_type)
        return e if isinstance(e, Expr) else Expr(e)
    return row


def _cast(op: ops.Op, ins: tuple[TensorType, ...], out: TensorType) -> Expr:
    src, dst = wgsl_type(ins[0]), wgsl_type(out)
    if out.dtype == "bool":
        return Expr(f"select(0u, 1u, a != {_ZERO[src]})")
    if src == dst:  # bool and uint32 share u32
        return Expr("a")
    return Expr(f"{dst}(a)")  # float -> int truncates towards zero, as numpy


_ZERO = {"f32": "0.0", "i32": "0", "u32": "0u"}


def _ordered(comparison: str) -> Expr:
    """A float comparison that is false when an operand is NaN."""
    return Expr(f"select(0u, 1u, ordered_f(a, b) && {comparison})", ("ordered_f",))


EXPRESSIONS: dict[type[ops.Op], Row] = {
    ops.Neg: _row("-a", u32="0u - a"),
    ops.Abs: _row("abs(a)", u32="a"),
    ops.Sign: _row("sign(a)", f32=_call("sign_f", "a"), u32="select(0u, 1u, a > 0u)"),
    ops.Exp: _row("exp(a)"),
    ops.Log: _row("log(a)"),
    ops.Log1p: _row(_call("log1p_f", "a")),
    ops.Expm1: _row(_call("expm1_f", "a")),
    ops.Sqrt: _row("sqrt(a)"),
    ops.Sin: _row("sin(a)"),
    ops.Cos: _row("cos(a)"),
    ops.Tanh: _row(_call("tanh_f", "a")),
    ops.Erf: _row(_call("erf_f", "a")),
    ops.Add: _row("a + b"),
    ops.Sub: _row("a - b"),
    ops.Mul: _row("a * b"),
    ops.Div: _row("a / b"),
    ops.FloorDiv: _row("floor(a / b)", i32=_call("floordiv_i", "a, b"),
                       u32="select(0u, a / b, b != 0u)"),
    ops.Mod: _row(_call("mod_f", "a, b"), i32=_call("mod_i", "a, b"),
                  u32="select(0u, a % b, b != 0u)"),
    ops.Pow: _row(_call("pow_f", "a, b"), i32=_call("pow_i", "a, b"),
                  u32=_call("pow_u", "a, b")),
    ops.Maximum: _row("max(a, b)", f32=_call("max_f", "a, b")),
    ops.Minimum: _row("min(a, b)", f32=_call("min_f", "a, b")),
    # float comparisons are false with a NaN operand (!= true), as IEEE and numpy say
    ops.Less: _row("select(0u, 1u, a < b)", f32=_ordered("a < b")),
    ops.LessEqual: _row("select(0u, 1u, a <= b)", f32=_ordered("a <= b")),
    ops.Greater: _row("select(0u, 1u, a > b)", f32=_ordered("a > b")),
    ops.GreaterEqual: _row("select(0u, 1u, a >= b)", f32=_ordered("a >= b")),
    ops.Equal: _row("select(0u, 1u, a == b)", f32=_ordered("a == b")),
    ops.NotEqual: _row("select(0u, 1u, a != b)",
                       f32=Expr("select(0u, 1u, !ordered_f(a, b) || a != b)", ("ordered_f",))),
    ops.Where: _row("select(c, b, a != 0u)"),
    ops.Cast: _cast,
}


def expression(op: ops.Op, ins: tuple[TensorType, ...], out: TensorType) -> Expr:
    """The WGSL expression of elementwise `op` on operands `a`, `b`, `c` of types `ins`.

    >>> expression(ops.Mod(), (TensorType((2,), "int32"),) * 2, TensorType((2,), "int32"))
    Expr(text='mod_i(a, b)', helpers=('mod_i',))
    """
    return EXPRESSIONS[type(op)](op, ins, out)


def elementwise_pass(out: TensorType, ins: Sequence[TensorType], expr: Expr,
                     loads: Sequence[Load], store: Store) -> Dispatch:
    """One thread per element i of `out`: `store(i, expr)`, where operand k (`a`, `b`,
    `c`) is `loads[k]` at its offset broadcast to `out`'s shape (`elementwise_part`,
    alone).

    >>> t = TensorType((4, 3))
    >>> d = elementwise_pass(t, (t, TensorType((3,))), Expr("a * b"),
    ...                      [Buffer(f"in{k}", "f32", ("in", k)).load for k in (0, 1)],
    ...                      Buffer("out", "f32", ("out",)).store)
    >>> d.bindings, d.workgroups
    ((('in', 0), ('in', 1), ('out',)), (1, 1, 1))
    """
    return alone(elementwise_part(out, ins, expr, loads, store))


def elementwise_part(out: TensorType, ins: Sequence[TensorType], expr: Expr,
                     loads: Sequence[Load], store: Store) -> Part:
    """The pass of `elementwise_pass` as a `Part`: thread i computes element i.

    >>> t = TensorType((300,))
    >>> p = elementwise_part(t, (t,), Expr("-a"), [Buffer("x", "f32", ("in", 0)).load],
    ...                      Buffer("out", "f32", ("out",)).store)
    >>> p.groups, p.threads
    (2, True)
    """
    def emit(sh: Shader) -> str:
        for h in expr.helpers:
            sh.helper(h)
        lines = [f"  if (i >= {out.size}u) {{ return; }}"]
        if out.shape and any(t.shape != out.shape for t in ins):
            lines.append(coords(out.shape))
        lines += [f"  let {'abc'[k]} = {load(sh, broadcast_offset(out.shape, t.shape))};"
                  for k, (t, load) in enumerate(zip(ins, loads))]
        lines.append(f"  {store(sh, 'i', expr.text)}")
        return "\n".join(lines)
    return Part.of_threads(emit, out.size)


def elementwise_kernel(op: ops.Op, ins: tuple[TensorType, ...],
                       out: TensorType) -> WgpuKernel:
    """The kernel of one elementwise node: its row of `EXPRESSIONS` over its inputs."""
    loads = [Buffer(f"in{k}", wgsl_type(t), ("in", k)).load for k, t in enumerate(ins)]
    store = Buffer("out", wgsl_type(out), ("out",)).store
    return parts_kernel((elementwise_part(out, ins, expression(op, ins, out), loads, store),))


def _lower(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
    return elementwise_kernel(op, tuple(in_types), out_type)


for _cls in EXPRESSIONS:
    lower.register(_cls, WgpuBackend)(_lower)


@lower.register(ops.StopGradient, WgpuBackend)
def _(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
    return WgpuKernel(alias=True)
