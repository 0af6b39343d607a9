"""WGSL kernel of `Fused`: ONE generated shader per group (two for a split reduction or K).

Elementwise group: one thread per output element. Every value of the group is
computed at the thread's output coordinates: an input (or a smaller intermediate)
is read through its broadcast index map, so broadcasts inside the group are index
arithmetic, never copies, and a small intermediate is recomputed per thread (cheap
next to a memory round trip). Each op is a small WGSL function `op<id>` whose body
is the op's row of `elementwise.EXPRESSIONS`, the row its single-op kernel uses, so
numpy's semantics carry over.

A group composes with the other generators through their hooks; nothing edits the
text they produce:

- Reduction group: the planner of `reductions.py` runs as for a lone reduction. Its
  `Source` is the prologue: `load_x(q)` evaluates the group at flat index q of the
  reduction's input, reading the group's inputs directly. Its `Sink` is the
  epilogue: `epi(r, q)` computes the group's output at output index q from the
  reduced value r (in a split, the last pass).
- Matmul group: the GEMM of `matmul.py` reads each operand as a `View` (its chain of
  views, `_view_offset`) or, where it is a group input, as a `Matrix`, and writes each
  product element through the `store` hook, which places it (transposed, where a
  transpose stores it) and applies the epilogue there.

Elementwise and reduction groups are `kernel.Part`s, so they may also run merged with
other kernels (`horizontal.py`); every function they declare is called by the name the
shader returns for it.

Kernels are cached by (sub-graph, input types, output type), and pipelines by
source text in `executable.pipeline`.
"""

from __future__ import annotations

from functools import lru_cache

from pyasg.asg import ops
from pyasg.asg.ops import Fused
from pyasg.asg.types import TensorType
from pyasg.errors import BackendError
from pyasg.kernels import lower
from pyasg.kernels.wgpu.backend import WgpuBackend
from pyasg.kernels.wgpu.codegen import (
    broadcast_offset,
    coords,
    literal,
    strides,
    wgsl_type,
)
from pyasg.kernels.wgpu.elementwise import EXPRESSIONS, expression
from pyasg.kernels.wgpu.horizontal import parts_kernel
from pyasg.kernels.wgpu.kernel import Part, WgpuKernel
from pyasg.kernels.wgpu.matmul import Matrix, Problem, Transposed, View, matmul_kernel
from pyasg.kernels.wgpu.reductions import Reducer, Sink, Source, fill_part, layout, plan_parts
from pyasg.kernels.wgpu.shader import Buffer, Load, Shader, Store


def _permuted(out_shape: tuple[int, ...], t_shape: tuple[int, ...],
              x_shape: tuple[int, ...], perm: tuple[int, ...]) -> str:
    """The flat offset into x of transpose(x, perm) (shape `t_shape`) broadcast to
    `out_shape`: axis a of the transpose is axis perm[a] of x."""
    lead = len(out_shape) - len(t_shape)
    st = strides(x_shape)
    terms = [f"c{lead + a} * {st[perm[a]]}u" for a, d in enumerate(t_shape) if d != 1]
    return " + ".join(terms) if terms else "0u"


def _input(k: int, in_types: tuple[TensorType, ...]) -> Buffer:
    """Group input k, binding ("in", k)."""
    return Buffer(f"in{k}", wgsl_type(in_types[k]), ("in", k))


def _op_fn(sh: Shader, i: int, op: ops.Op, ins: tuple[TensorType, ...],
           out: TensorType) -> str:
    """Declare `fn op<i>(a, b, c) -> T { return <the op's row of EXPRESSIONS>; }`."""
    if type(op) not in EXPRESSIONS:
        raise BackendError(f"the fused wgpu kernel has no code for {op.name}")
    expr = expression(op, ins, out)
    for h in expr.helpers:
        sh.helper(h)
    params = ", ".join(f"{'abc'[k]}: {wgsl_type(t)}" for k, t in enumerate(ins))
    return sh.function(f"op{i}", params, f"  return {expr.text};", wgsl_type(out))


def _body(sh: Shader, op: Fused, root: int, shape: tuple[int, ...], var: str,
          in_types: tuple[TensorType, ...],
          given: dict[int, str] | None = None) -> tuple[str, str]:
    """(WGSL lets, value): node `root` of `op`'s sub-graph at flat index `var` of `shape`,
    its functions and the inputs it reads declared in `sh`; `given` maps nodes to WGSL
    expressions already known there (a reduction's result, a product)."""
    sub = op.graph
    given = given or {}
    needed = _ancestors(sub, root, set(given))
    names: dict[int, str] = dict(given)
    used: list[int] = []
    for k, j in enumerate(sub.inputs):
        if j in needed:
            names[j] = _input(k, in_types).load(
                sh, broadcast_offset(shape, sub.nodes[j].type.shape, var=var))
            used.append(k)
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
            at = _permuted(shape, node.type.shape, x_shape, node.op.perm)
            names[i] = _input(k, in_types).load(sh, at)
        elif isinstance(node.op, (ops.BroadcastTo, ops.StopGradient)):
            names[i] = names[node.inputs[0]]  # the same value at the projected coordinates
        else:
            ins = tuple(sub.nodes[j].type for j in node.inputs)
            fn = _op_fn(sh, i, node.op, ins, node.type)
            lines.append(f"  let v{i} = {fn}({', '.join(names[j] for j in node.inputs)});")
            names[i] = f"v{i}"
    return "\n".join(x for x in lines if x), names[root]


def _reads(op: Fused, root: int, given: set[int]) -> set[int]:
    """The group inputs (positions) that computing `root` from `given` reads."""
    needed = _ancestors(op.graph, root, given)
    return {k for k, j in enumerate(op.graph.inputs) if j in needed}


def _function_body(lets: str, last: str) -> str:
    return "\n".join(x for x in (lets, last) if x)


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


def _prologue(op: Fused, x: int, shape: tuple[int, ...], in_types: tuple[TensorType, ...],
              ty: str) -> Load:
    """The load hook reading element q of node x (a reduction's input): `load_x(q)`."""
    def load(sh: Shader, at: str) -> str:
        lets, value = _body(sh, op, x, shape, "q", in_types)
        fn = sh.function("load_x", "q: u32", _function_body(lets, f"  return {value};"), ty)
        return f"{fn}({at})"
    return load


def _epilogue(op: Fused, red_id: int, in_types: tuple[TensorType, ...], ty: str,
              out_type: TensorType) -> Store:
    """The store hook writing the group's output at q from reduced value r: `epi(r, q)`."""
    out_ty = wgsl_type(out_type)

    def store(sh: Shader, at: str, value: str) -> str:
        lets, result = _body(sh, op, op.graph.outputs[0], out_type.shape, "q", in_types,
                             {red_id: "r"})
        fn = sh.function("epi", f"r: {ty}, q: u32",
                         _function_body(lets, f"  return {result};"), out_ty)
        return Buffer("out", out_ty, ("out",)).store(sh, at, f"{fn}({value}, {at})")
    return store


def _reduction_kernel(op: Fused, red_id: int, in_types: tuple[TensorType, ...],
                      out_type: TensorType) -> WgpuKernel:
    """A reduction with its prologue (its source) and epilogue (its sink)."""
    sub = op.graph
    node = sub.nodes[red_id]
    x = sub.nodes[node.inputs[0]].type
    red = Reducer("sum" if isinstance(node.op, ops.Sum) else "max", wgsl_type(x))
    lay = layout(x.shape, node.op.axes)
    if lay.outputs == 0:
        return WgpuKernel()
    store = (Buffer("out", wgsl_type(out_type), ("out",)).store if sub.outputs[0] == red_id
             else _epilogue(op, red_id, in_types, red.ty, out_type))
    if lay.count == 0:  # an empty sum is zeros, then the epilogue
        return parts_kernel((fill_part(lay.outputs, red.zero, store),))
    src = Source(_prologue(op, node.inputs[0], x.shape, in_types, red.ty))
    parts, scratch = plan_parts(red, lay, src, Sink(store))
    return parts_kernel(parts, scratch)


def _elementwise_kernel(op: Fused, in_types: tuple[TensorType, ...],
                        out_type: TensorType) -> WgpuKernel:
    if out_type.size == 0:
        return WgpuKernel()

    def emit(sh: Shader) -> str:
        lets, value = _body(sh, op, op.graph.outputs[0], out_type.shape, "i", in_types)
        store = Buffer("out", wgsl_type(out_type), ("out",)).store(sh, "i", value)
        return _function_body(f"  if (i >= {out_type.size}u) {{ return; }}\n{lets}",
                              f"  {store}")
    return parts_kernel((Part.of_threads(emit, out_type.size),))


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


def _transposed(sub, x: int, p: Problem) -> tuple[int, int] | None:  # noqa: ANN001
    """(rows, cols) of matmul operand `x` where it is a plain 2-d transpose of a group
    input, through reshapes only (a reshape keeps the row-major words where they are),
    so that the GEMM may read it as `operands.Transposed`; None otherwise."""
    node = sub.nodes[x]
    if p.batch or len(node.type.shape) != 2 or not isinstance(node.op, ops.Transpose) \
            or tuple(node.op.perm) != (1, 0):
        return None
    inner = node.inputs[0]
    while inner not in sub.inputs:
        if not isinstance(sub.nodes[inner].op, (ops.Reshape, ops.StopGradient)):
            return None
        inner = sub.nodes[inner].inputs[0]
    return node.type.shape


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
    reads = _reads(op, sub.outputs[0], {head})

    def operand(side: str, x: int, k: int, view: str | None,
                other: int) -> Matrix | Transposed | View:
        array, bound, ty = f"in{k}", ("in", k), wgsl_type(in_types[k])
        # vec4 loads only where nothing else reads the binding (as scalars)
        alone = k != other and k not in reads
        if view is not None:
            shape = _transposed(sub, x, p)
            if shape is not None:
                return Transposed(side, array, bound, ty, *shape, vectorise=alone)
            return View(side, array, bound, ty, view)
        return (Matrix.lhs if side == "a" else Matrix.rhs)(p, array, bound, alone)

    place = []
    if stored:  # element q of the product lands at its transposed place o
        shape, perm = node.type.shape, sub.nodes[head].op.perm
        place.append(coords(shape, "q", "m"))
        o = " + ".join(f"m{perm[a]} * {st}u" for a, st in enumerate(strides(out_type.shape))
                       if out_type.shape[a] != 1) or "0u"
        place.append(f"  let o = {o};")
    else:
        place.append("  let o = q;")
    out = Buffer("out", wgsl_type(out_type), ("out",))

    def store(sh: Shader, at: str, value: str) -> str:
        lets, result = _body(sh, op, sub.outputs[0], out_type.shape, "o", in_types,
                             {head: "r"})
        body = "\n".join(x for x in place + [lets, f"  {out.store(sh, 'o', result)}"] if x)
        sh.function("store", f"q: u32, r: {p.ty}", body)
        return f"store({at}, {value});"

    return matmul_kernel(a, b, operands=(operand("a", node.inputs[0], ka, a_view, kb),
                                         operand("b", node.inputs[1], kb, b_view, ka)),
                         store=store)


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
