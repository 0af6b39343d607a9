"""WGSL kernel of `Fused`: ONE generated shader per group (two for a split reduction or K).

Elementwise group: one thread per output element. Every value of the group is
computed at the thread's output coordinates: an input (or a smaller intermediate)
is read through its broadcast index map, so broadcasts inside the group are index
arithmetic, never copies, and a small intermediate is recomputed per thread (cheap
next to a memory round trip). Each op is a small WGSL function `op<id>` whose body
is the op's expression from `elementwise.py`, so numpy's semantics carry over.

Reduction group: the reduction planner of `reductions.py` runs as for a lone
reduction, but its loads call `load_x(q)`, which evaluates the prologue at flat
index q of the reduction's input, reading the group's inputs directly.

Matmul group: the GEMM of `matmul.py` reads its operands through their view chains
(`_view_offset`) and writes each product element through `store`, which places it
(transposed, where a transpose stores it) and applies the epilogue there.

Kernels are cached by (sub-graph, input types, output type), and pipelines by
source text in `executable.pipeline`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from pyasg.asg import ops
from pyasg.asg.ops import Fused
from pyasg.asg.types import TensorType
from pyasg.errors import BackendError
from pyasg.kernels import lower
from pyasg.kernels.wgpu.backend import WgpuBackend
from pyasg.kernels.wgpu.codegen import bindings, coords, grid, literal, main, strides, wgsl_type
from pyasg.kernels.wgpu.elementwise import HELPERS, _binary, _unary
from pyasg.kernels.wgpu.kernel import Dispatch, WgpuKernel
from pyasg.kernels.wgpu.matmul import Fusion, Problem, View, matmul_kernel
from pyasg.kernels.wgpu.reductions import Reducer, Source, layout, plan


def _offset(out_shape: tuple[int, ...], in_shape: tuple[int, ...], var: str) -> str:
    """The flat offset into `in_shape` broadcast to `out_shape`, from coordinates c0.."""
    if tuple(in_shape) == tuple(out_shape):
        return var
    lead = len(out_shape) - len(in_shape)
    terms = [f"c{lead + a} * {st}u" for a, (d, st) in
             enumerate(zip(in_shape, strides(in_shape))) if d != 1]
    return " + ".join(terms) if terms else "0u"


def _permuted(out_shape: tuple[int, ...], t_shape: tuple[int, ...],
              x_shape: tuple[int, ...], perm: tuple[int, ...]) -> str:
    """The flat offset into x of transpose(x, perm) (shape `t_shape`) broadcast to
    `out_shape`: axis a of the transpose is axis perm[a] of x."""
    lead = len(out_shape) - len(t_shape)
    st = strides(x_shape)
    terms = [f"c{lead + a} * {st[perm[a]]}u" for a, d in enumerate(t_shape) if d != 1]
    return " + ".join(terms) if terms else "0u"


def _cast_expr(src: str, dst: str) -> str:
    if dst == "bool":
        zero = {"float32": "0.0", "int32": "0", "uint32": "0u", "bool": "0u"}[src]
        return f"select(0u, 1u, a != {zero})"
    if src == dst or wgsl_type(src) == wgsl_type(dst):
        return "a"
    return f"{wgsl_type(dst)}(a)"  # float -> int truncates towards zero, as numpy


def _op_fn(name: str, op: ops.Op, ins: tuple[TensorType, ...], out: TensorType,
           helpers: set[str]) -> str:
    """`fn name(a, b, c) -> T { return <the op's WGSL expression>; }`."""
    if isinstance(op, ops.Unary):
        expr, need = _unary(op, wgsl_type(ins[0]))
    elif isinstance(op, ops.Binary):
        expr, need = _binary(op, wgsl_type(ins[0]))
    elif isinstance(op, ops.Where):
        expr, need = "select(c, b, a != 0u)", ()
    elif isinstance(op, ops.Cast):
        expr, need = _cast_expr(ins[0].dtype, out.dtype), ()
    else:
        raise BackendError(f"the fused wgpu kernel has no code for {op.name}")
    helpers.update(need)
    params = ", ".join(f"{'abc'[k]}: {wgsl_type(t)}" for k, t in enumerate(ins))
    return f"fn {name}({params}) -> {wgsl_type(out)} {{ return {expr}; }}"


@dataclass(frozen=True)
class _Body:
    """WGSL computing a group's value `value` at coordinates of `shape` from flat `var`."""

    functions: str
    lets: str
    value: str
    inputs: tuple[int, ...]  # the positions of the group inputs it reads
    helpers: tuple[str, ...]  # names of `HELPERS` it calls (see `_with_helpers`)


def _with_helpers(source: str, body: _Body) -> str:
    """`source` plus the helper functions `body` calls that it does not define yet."""
    missing = [HELPERS[h] for h in body.helpers if f"fn {h}(" not in source]
    return "\n\n".join([source, *missing]) if missing else source


def _body(op: Fused, root: int, shape: tuple[int, ...], var: str,
          given: dict[int, str] | None = None) -> _Body:
    """The lets computing node `root` of `op`'s sub-graph at flat index `var` of `shape`;
    `given` maps nodes to WGSL expressions already known there (a reduction's result)."""
    sub = op.graph
    given = given or {}
    needed = _ancestors(sub, root, set(given))
    names: dict[int, str] = dict(given)
    used: list[int] = []
    for k, j in enumerate(sub.inputs):
        if j in needed:
            names[j] = f"in{k}[{_offset(shape, sub.nodes[j].type.shape, var)}]"
            used.append(k)
    fns: list[str] = []
    helpers: set[str] = set()
    permuted = any(isinstance(sub.nodes[i].op, ops.Transpose) for i in needed)
    lines = [coords(shape, var)] if shape and (permuted or any(
        sub.nodes[sub.inputs[k]].type.shape != shape for k in used)) else []
    for i in sub.live_ids:
        if i in names or i not in needed:
            continue
        node = sub.nodes[i]
        if isinstance(node.op, ops.Constant):
            names[i] = literal(node.op.value.reshape(()).item(), node.op.dtype)
        elif isinstance(node.op, ops.Transpose):  # a leaf: its operand is a group input
            k = list(sub.inputs).index(node.inputs[0])
            x_shape = sub.nodes[node.inputs[0]].type.shape
            names[i] = f"in{k}[{_permuted(shape, node.type.shape, x_shape, node.op.perm)}]"
        elif isinstance(node.op, (ops.BroadcastTo, ops.StopGradient)):
            names[i] = names[node.inputs[0]]  # the same value at the projected coordinates
        else:
            ins = tuple(sub.nodes[j].type for j in node.inputs)
            fns.append(_op_fn(f"op{i}", node.op, ins, node.type, helpers))
            args = ", ".join(names[j] for j in node.inputs)
            lines.append(f"  let v{i} = op{i}({args});")
            names[i] = f"v{i}"
    return _Body("\n\n".join(fns), "\n".join(x for x in lines if x), names[root],
                 tuple(used), tuple(sorted(helpers)))


def _ancestors(sub, root: int, stop: set[int]) -> set[int]:  # noqa: ANN001
    seen, stack = {root}, [root]
    while stack:
        i = stack.pop()
        if i in stop:
            continue
        for j in sub.nodes[i].inputs:
            if j not in seen:
                seen.add(j)
                stack.append(j)
    return seen


class _PrologueSource(Source):
    """A reduction's source whose element q is the prologue `load_x(q)`."""

    def load(self, r: str) -> tuple[str, str]:
        at = f"base + red_off({r})"
        return f"load_x({at})", r


def _reduction_kernel(op: Fused, red_id: int, in_types: tuple[TensorType, ...],
                      out_type: TensorType) -> WgpuKernel:
    """A reduction with its prologue (in its loads) and epilogue (in its final store)."""
    sub = op.graph
    node = sub.nodes[red_id]
    x = sub.nodes[node.inputs[0]].type
    red = Reducer("sum" if isinstance(node.op, ops.Sum) else "max", wgsl_type(x))
    lay = layout(x.shape, node.op.axes)
    out_ty = wgsl_type(out_type)
    if lay.outputs == 0:
        return WgpuKernel()
    epi = _body(op, sub.outputs[0], out_type.shape, "q", {red_id: "r"})
    if lay.count == 0:  # an empty sum is zeros, then the epilogue
        pro_inputs: tuple[int, ...] = ()
        text = f"  if (i >= {lay.outputs}u) {{ return; }}\n  out[i] = {red.zero};"
        dispatches = (Dispatch("\n\n".join([bindings([("out", out_ty, True)]), main(text)]),
                               grid(lay.outputs), (("out",),)),)
        scratch: tuple[int, ...] = ()
    else:
        pro = _body(op, node.inputs[0], x.shape, "q")
        pro_inputs = pro.inputs
        src = _PrologueSource("in", None, tuple((f"in{k}", wgsl_type(in_types[k]))
                                               for k in pro.inputs),
                              tuple(("in", k) for k in pro.inputs))
        dispatches, scratch = plan(red, lay, src, out_ty)
        load = f"fn load_x(q: u32) -> {red.ty} {{\n{pro.lets}\n  return {pro.value};\n}}"
        extra = "\n\n".join(t for t in (pro.functions, load) if t)
        # only the pass reading the inputs calls load_x (a split's pass 2 reads partials)
        dispatches = tuple(Dispatch(_with_helpers(d.source + "\n\n" + extra, pro),
                                    d.workgroups, d.bindings)
                           if any(b[0] == "in" for b in d.bindings) else d
                           for d in dispatches)
    if sub.outputs[0] != red_id:
        dispatches = tuple(_with_epilogue(d, epi, pro_inputs, in_types, red.ty, out_ty)
                           if ("out",) in d.bindings else d for d in dispatches)
    return WgpuKernel(dispatches, scratch=scratch)


def _with_epilogue(d: Dispatch, epi: _Body, declared: tuple[int, ...],
                   in_types: tuple[TensorType, ...], ty: str, out_ty: str) -> Dispatch:
    """`d` storing `epi(acc, o)` instead of the reduction's `acc` at output index o."""
    source = d.source
    for store in ("out[i] = acc;", "out[o] = acc;", "out[i] = 0.0;", "out[i] = 0;",
                  "out[i] = 0u;"):
        if store in source:
            at, value = store[4], store.split("= ")[1][:-1]
            source = source.replace(store, f"out[{at}] = epi({value}, {at});")
            break
    else:
        raise BackendError("internal: no store to attach a fused epilogue to")
    have = set(declared) if any(b[0] == "in" for b in d.bindings) else set()
    new = [k for k in epi.inputs if k not in have]
    n = len(d.bindings)
    decls = "\n".join(f"@group(0) @binding({n + m}) var<storage, read> in{k}: "
                       f"array<{wgsl_type(in_types[k])}>;" for m, k in enumerate(new))
    fn = f"fn epi(r: {ty}, q: u32) -> {out_ty} {{\n{epi.lets}\n  return {epi.value};\n}}"
    extra = "\n\n".join(t for t in (decls, epi.functions, fn) if t)
    return Dispatch(_with_helpers(source + "\n\n" + extra, epi), d.workgroups,
                    d.bindings + tuple(("in", k) for k in new))


def _elementwise_kernel(op: Fused, in_types: tuple[TensorType, ...],
                        out_type: TensorType) -> WgpuKernel:
    if out_type.size == 0:
        return WgpuKernel()
    b = _body(op, op.graph.outputs[0], out_type.shape, "i")
    decls = [(f"in{k}", wgsl_type(t), False) for k, t in enumerate(in_types)]
    decls.append(("out", wgsl_type(out_type), True))
    text = (f"  if (i >= {out_type.size}u) {{ return; }}\n{b.lets}\n  out[i] = {b.value};")
    source = _with_helpers("\n\n".join(x for x in (bindings(decls), b.functions, main(text))
                                         if x), b)
    binds = tuple(("in", k) for k in range(len(in_types))) + (("out",),)
    return WgpuKernel((Dispatch(source, grid(out_type.size), binds),))


def _view_offset(sub, x: int, p: Problem, left: bool,  # noqa: ANN001
                 name: str) -> tuple[int, str | None]:
    """(group input, WGSL lets ending in `off`) reading matmul operand `x` of the
    sub-graph at element (r, c) of output batch bt through its chain of views; the
    lets are None where `x` is itself a group input (the GEMM's fast path)."""
    if x in sub.inputs:
        return list(sub.inputs).index(x), None
    shape = sub.nodes[x].type.shape
    lines = [coords(p.batch, "bt", f"{name}b")] if p.batch else []
    if len(shape) == 1:
        at = ["c" if left else "r"]
    else:
        lead = len(p.batch) - (len(shape) - 2)
        at = ["0u" if d == 1 else f"{name}b{lead + a}" for a, d in enumerate(shape[:-2])]
        at += ["r", "c"]
    node, n = x, 0
    while node not in sub.inputs:  # walk the views back to the input they read
        op, inner = sub.nodes[node].op, sub.nodes[node].inputs[0]
        src = sub.nodes[inner].type.shape
        if isinstance(op, ops.Transpose):  # axis a of the result is axis perm[a] of src
            new = ["0u"] * len(src)
            for a, q in enumerate(op.perm):
                new[q] = at[a]
            at = new
        elif isinstance(op, ops.BroadcastTo):
            lead = len(shape) - len(src)
            at = ["0u" if d == 1 else at[lead + a] for a, d in enumerate(src)]
        elif isinstance(op, ops.Reshape):  # through the flat index
            flat = " + ".join(f"({v}) * {st}u" for v, st, d in zip(at, strides(shape), shape)
                              if d != 1) or "0u"
            lines.append(f"  let {name}f{n} = {flat};")
            at = [f"({name}f{n} / {st}u) % {d}u" for st, d in zip(strides(src), src)]
            n += 1
        elif not isinstance(op, ops.StopGradient):
            raise BackendError(f"internal: {op.name} is no view a matmul reads through")
        node, shape = inner, src
    off = " + ".join(f"({v}) * {st}u" for v, st, d in zip(at, strides(shape), shape)
                     if d != 1) or "0u"
    lines.append(f"  let off = {off};")
    return list(sub.inputs).index(node), "\n".join(lines)


def _matmul_kernel(op: Fused, mm: int, in_types: tuple[TensorType, ...],
                   out_type: TensorType) -> WgpuKernel:
    """A matmul reading its operands through views, its product stored through a
    transpose and an elementwise epilogue (one GEMM, or a split's two passes)."""
    sub = op.graph
    node = sub.nodes[mm]
    a, b = (sub.nodes[j].type for j in node.inputs)
    p = Problem.of(a, b)
    ka, a_view = _view_offset(sub, node.inputs[0], p, True, "a")
    kb, b_view = _view_offset(sub, node.inputs[1], p, False, "b")
    stored = [i for i in sub.live_ids if isinstance(sub.nodes[i].op, ops.Transpose)
              and sub.nodes[i].inputs[0] == mm]
    head = stored[0] if stored else mm
    lines = []
    if stored:  # element q of the product lands at its transposed place o
        shape, perm = node.type.shape, sub.nodes[head].op.perm
        lines.append(coords(shape, "q", "m"))
        o = " + ".join(f"m{perm[a]} * {st}u" for a, st in enumerate(strides(out_type.shape))
                       if out_type.shape[a] != 1) or "0u"
        lines.append(f"  let o = {o};")
    else:
        lines.append("  let o = q;")
    epi = _body(op, sub.outputs[0], out_type.shape, "o", {head: "r"})
    ty = wgsl_type(out_type)
    store = (f"fn store(q: u32, r: {ty}) {{\n" + "\n".join(x for x in lines + [epi.lets] if x)
             + f"\n  out[o] = {epi.value};\n}}")
    store = _with_helpers("\n\n".join(x for x in (epi.functions, store) if x), epi)
    fusion = Fusion(View(ka, a_view), View(kb, b_view), store, epi.inputs,
                    tuple(wgsl_type(t) for t in in_types))
    return matmul_kernel(a, b, fusion=fusion)


@lru_cache(maxsize=1024)
def fused_kernel(op: Fused, in_types: tuple[TensorType, ...],
                 out_type: TensorType) -> WgpuKernel:
    """The kernel of one fused group (cached by sub-graph and types)."""
    sub = op.graph
    heads = [i for i in sub.live_ids if isinstance(sub.nodes[i].op, ops.MatMul)]
    if heads:
        return _matmul_kernel(op, heads[0], in_types, out_type)
    reductions = [i for i in sub.live_ids if isinstance(sub.nodes[i].op, (ops.Sum, ops.Max))]
    if reductions:
        return _reduction_kernel(op, reductions[0], in_types, out_type)
    return _elementwise_kernel(op, in_types, out_type)


@lower.register(Fused, WgpuBackend)
def _(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
    return fused_kernel(op, tuple(in_types), out_type)
