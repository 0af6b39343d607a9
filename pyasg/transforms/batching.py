"""Batching as a graph-to-graph transform: `batch_graph`, and the table `BATCH_RULES`.

`batch_graph(graph, in_axes, size)` returns the graph that computes `graph` for
`size` examples at once: an input with an axis takes an extra axis of length `size`
there, an input with `None` is shared by every example. `pyasg.vmap` traces a
function for ONE example, batches its graph with this transform and inlines the
result, so `vmap(grad(f))`, `grad(vmap(f))`, `vmap(vmap(f))` and `jit(vmap(f))` compose
as graphs do.

`BATCH_RULES` holds one rule per primitive, keyed by op class, beside `VJP_RULES`. A
rule gets `(op, size, out, xs, axes)`: the op, the batch size, the type of the op's
output for one example, the op's inputs as batched tracers, and for each input its
batch axis (`None`: the input is the same for every example). It returns the batched
output and its batch axis. Rules are written with the functions users write, so the
batched graph can be differentiated, fused and batched again. A node none of whose
inputs is batched is kept as it is (no rule is asked). An op with no rule says why
in `NO_BATCH_RULE`; `tests/test_registry.py` checks that every op has one or the other.

Random bits follow JAX: an unbatched key gives every example the SAME bits (a key
shared by the batch is one draw); a batched key gives each example the bits of its own
key (one `RandomBits` node per example: Threefry has one key per node).

>>> import pyasg, numpy as np
>>> g = pyasg.make_graph(lambda x, w: (x * w).sum())(np.ones(3), np.ones(3))
>>> batched, out_axes = batch_graph(g, [0, None], 5)
>>> batched.input_types, batched.output_types, out_axes
((f64[5,3], f64[3]), (f64[5],), (0,))
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np

from pyasg.array import functional as F
from pyasg.array import primitives as P
from pyasg.asg import ops
from pyasg.asg.graph import Graph, Node
from pyasg.asg.rewrite import Rebuild, rebuild
from pyasg.asg.types import TensorType
from pyasg.errors import VmapError
from pyasg.trace.tracer import Trace, inline, trace_function
from pyasg.trace.tree import flatten_with_paths, unflatten
from pyasg.transforms.checks import require_graph
from pyasg.transforms.custom import register, rule_of

Axis = int | None
#: (op, size, out type of one example, batched inputs, their axes) -> (output, its axis)
Rule = Callable[..., tuple[object, Axis]]
#: op class -> its batching rule.
BATCH_RULES: dict[type, Rule] = {}
#: op class -> why it has no batching rule (`batch_graph` raises `VmapError` saying so).
NO_BATCH_RULE: dict[type, str] = {
    ops.WhileLoop: "vmap of a while_loop (a trip count per example) is not written yet; "
                   "call the function per example, or use fori_loop/scan with a fixed count",
}


def batch_rule(*op_classes: type) -> Callable[[Rule], Rule]:
    def register(rule: Rule) -> Rule:
        for cls in op_classes:
            BATCH_RULES[cls] = rule
        return rule

    return register


def batched_type(t: TensorType, axis: Axis, size: int) -> TensorType:
    """`t` with a batch axis of `size` inserted at `axis` (`t` itself for None).

    >>> batched_type(TensorType((2, 3)), 1, 7)
    f32[2,7,3]
    """
    if axis is None:
        return t
    return TensorType(t.shape[:axis] + (size,) + t.shape[axis:], t.dtype)


# --------------------------------------------------------------------------- helpers


def _shape(x: object) -> tuple[int, ...]:
    return F.type_of(x).shape


def front(x: object, axis: Axis, size: int) -> object:
    """`x` with its batch axis first; an unbatched `x` is broadcast to the batch."""
    if axis is None:
        return P.broadcast_to(F.expand_dims(x, 0), (size,) + _shape(x))
    return x if axis == 0 else F.moveaxis(x, axis, 0)


def _unbatched_shape(x: object, axis: Axis) -> tuple[int, ...]:
    shape = _shape(x)
    return shape if axis is None else shape[:axis] + shape[axis + 1:]


def _ranked(x: object, axis: int, rank: int) -> object:
    """`x` with its batch axis first, then size-1 axes so that one example has `rank`
    axes (numpy broadcasting aligns axes from the right: the batch axis must lead)."""
    x = x if axis == 0 else F.moveaxis(x, axis, 0)
    shape = _shape(x)
    return F.reshape(x, shape[:1] + (1,) * (rank - len(shape) + 1) + shape[1:])


def _fold(x: object, axis: Axis, size: int, at: int) -> object:
    """Merge the batch axis into axis `at` of one example (batch-major): the batch axis
    is put just before it (broadcast there if `x` is unbatched) and the two reshaped
    into one, so an op that already loops over axis `at` loops over the batch too."""
    x = front(x, axis, size)
    if at:
        x = F.moveaxis(x, 0, at)
    shape = _shape(x)
    return F.reshape(x, shape[:at] + (shape[at] * shape[at + 1],) + shape[at + 2:])


def _unfold(y: object, at: int, size: int) -> object:
    """Split axis `at` of `y` into (size, rest): the inverse of `_fold`'s merge."""
    shape = _shape(y)
    return F.reshape(y, shape[:at] + (size, shape[at] // size) + shape[at + 1:])


def _offsets(size: int, stride: int, ndim: int, dtype: str) -> np.ndarray:
    """[0, stride, 2·stride, ...] (one per example) shaped to broadcast over `ndim` axes."""
    return (np.arange(size, dtype=np.int64) * stride).astype(dtype).reshape(
        (size,) + (1,) * (ndim - 1))


def _flat_indices(idx: object, n: int, size: int) -> object:
    """Indices into an axis of length `n`, per example (batch first), as indices into
    the `size` examples' axes laid end to end. Negative ones are counted from the end of
    their own example; one out of [-n, n) stays out of range of the whole (size · n), so
    that it fails as it would have instead of reading another example."""
    dtype = F.type_of(idx).dtype
    if size * n > np.iinfo(np.int32).max and dtype != "int64":
        idx, dtype = P.astype(idx, "int64"), "int64"
    if dtype != "uint32":
        idx = P.where(P.less(idx, 0), P.add(idx, n), idx)
    bad = F.logical_or(P.less(idx, 0), P.greater_equal(idx, n)) if dtype != "uint32" \
        else P.greater_equal(idx, n)
    offset = P.add(idx, _offsets(size, n, F.type_of(idx).ndim, dtype))
    return P.where(bad, np.array(size * n, dtype), offset)


# --------------------------------------------------------------------------- elementwise


@batch_rule(ops.Neg, ops.Abs, ops.Sign, ops.Exp, ops.Log, ops.Log1p, ops.Expm1, ops.Sqrt,
            ops.Sin, ops.Cos, ops.Tanh, ops.Erf, ops.Cast, ops.StopGradient)
def unary_rule(op, size, out, xs, axes):  # noqa: ANN001, ANN201
    """An elementwise op of one input: the same op, the batch axis where it was."""
    return P.bind(op, xs[0]), axes[0]


@batch_rule(ops.Add, ops.Sub, ops.Mul, ops.Div, ops.FloorDiv, ops.Mod, ops.Pow, ops.Maximum,
            ops.Minimum, ops.Less, ops.LessEqual, ops.Greater, ops.GreaterEqual, ops.Equal,
            ops.NotEqual, ops.Where)
def elementwise_rule(op, size, out, xs, axes):  # noqa: ANN001, ANN201
    """An elementwise op of several inputs, numpy-broadcast: in place where the batch
    axes line up, else every batch axis first."""
    ranks = [len(_unbatched_shape(x, a)) for x, a in zip(xs, axes)]
    rank = max(ranks)
    mapped = {a for a in axes if a is not None}
    if len(mapped) == 1:
        (axis,) = mapped
        # every batched operand has the full rank and the axis there; an unbatched one
        # broadcasts from the right without reaching the batch axis: nothing moves
        if all(r == rank for r, a in zip(ranks, axes) if a is not None) and all(
                r <= rank - axis for r, a in zip(ranks, axes) if a is None):
            return P.bind(op, *xs), axis
    # otherwise: batch axes first, padded to the full rank; unbatched ones broadcast
    return P.bind(op, *(x if a is None else _ranked(x, a, rank)
                        for x, a in zip(xs, axes))), 0


# --------------------------------------------------------------------------- reductions


def _shifted(axes: Sequence[int], batch: int) -> tuple[int, ...]:
    """Axes of one example as axes of the batched value (the batch axis at `batch`)."""
    return tuple(a + (a >= batch) for a in axes)


@batch_rule(ops.Sum, ops.Max)
def _(op, size, out, xs, axes):  # noqa: ANN001, ANN202
    (x,), (b,) = xs, axes
    kept = b if op.keepdims else b - sum(a < b for a in op.axes)
    return P.bind(dataclasses.replace(op, axes=_shifted(op.axes, b)), x), kept


@batch_rule(ops.ArgMax)
def _(op, size, out, xs, axes):  # noqa: ANN001, ANN202
    (x,), (b,) = xs, axes
    kept = b if op.keepdims or op.axis >= b else b - 1
    return P.bind(dataclasses.replace(op, axis=_shifted((op.axis,), b)[0]), x), kept


# --------------------------------------------------------------------------- shapes


@batch_rule(ops.Reshape)
def _(op, size, out, xs, axes):  # noqa: ANN001, ANN202
    return P.bind(ops.Reshape((size,) + out.shape), front(xs[0], axes[0], size)), 0


@batch_rule(ops.Transpose)
def _(op, size, out, xs, axes):  # noqa: ANN001, ANN202
    perm = (0,) + tuple(p + 1 for p in op.perm)
    return P.bind(ops.Transpose(perm), front(xs[0], axes[0], size)), 0


@batch_rule(ops.BroadcastTo)
def _(op, size, out, xs, axes):  # noqa: ANN001, ANN202
    x = _ranked(xs[0], axes[0], len(op.shape))
    return P.bind(ops.BroadcastTo((size,) + op.shape), x), 0


@batch_rule(ops.Slice)
def _(op, size, out, xs, axes):  # noqa: ANN001, ANN202
    b = axes[0]  # the whole batch axis is kept, in place

    def ins(t: tuple, v: int) -> tuple:
        return t[:b] + (v,) + t[b:]

    return P.bind(ops.Slice(ins(op.starts, 0), ins(op.stops, size), ins(op.steps, 1)),
                  xs[0]), b


@batch_rule(ops.Pad)
def _(op, size, out, xs, axes):  # noqa: ANN001, ANN202
    b = axes[0]
    return P.bind(dataclasses.replace(op, widths=op.widths[:b] + ((0, 0, 0),) + op.widths[b:]),
                  xs[0]), b


@batch_rule(ops.Concatenate)
def _(op, size, out, xs, axes):  # noqa: ANN001, ANN202
    return P.bind(ops.Concatenate(op.axis + 1), *(front(x, a, size)
                                                 for x, a in zip(xs, axes))), 0


# --------------------------------------------------------------------------- matmul


@batch_rule(ops.MatMul)
def _(op, size, out, xs, axes):  # noqa: ANN001, ANN202
    (a, b), (aa, ab) = xs, axes
    ra, rb = len(_unbatched_shape(a, aa)), len(_unbatched_shape(b, ab))
    if ab is None and ra == 1:  # a batch of vectors times one matrix: one GEMM of rows
        # [B, k] @ [k] or [k, n]: batch first; @ [..., k, n]: [..., B, n]
        return P.matmul(front(a, aa, size), b), 0 if rb <= 2 else rb - 2
    # a batched vector becomes a batched one-row (or one-column) matrix, squeezed after
    if aa is not None and ra == 1:
        a, ra = F.expand_dims(front(a, aa, size), 1), 2
        aa = 0
    if ab is not None and rb == 1:
        b, rb = F.expand_dims(front(b, ab, size), 2), 2
        ab = 0
    stack = max(ra, rb) - 2  # leading (broadcast) axes of one example's matmul
    a = a if aa is None else _ranked(a, aa, stack + 2)
    b = b if ab is None else _ranked(b, ab, stack + 2)
    y = P.matmul(a, b)
    return F.reshape(y, (size,) + out.shape), 0


# --------------------------------------------------------------------------- indexing


@batch_rule(ops.Gather)
def _(op, size, out, xs, axes):  # noqa: ANN001, ANN202
    (x, idx), (ax, ai) = xs, axes
    if ai is None:  # one set of indices, taken from every example
        return P.bind(ops.Gather(op.axis + 1), front(x, ax, size), idx), 0
    idx = front(idx, ai, size)
    if ax is None:  # every example's indices into one shared array
        return P.bind(ops.Gather(op.axis), x, idx), op.axis
    # both batched: the examples' axes laid end to end, indices offset into their own
    x = F.moveaxis(front(x, ax, size), op.axis + 1, 1)  # [B, n, rest...]
    shape = _shape(x)
    n = shape[1]
    flat = F.reshape(x, (size * n,) + shape[2:])
    y = P.bind(ops.Gather(0), flat, _flat_indices(idx, n, size))  # [B, *idx, rest...]
    k = F.type_of(idx).ndim - 1
    # [B, *idx, *pre, *post] -> [B, *pre, *idx, *post]
    pre = op.axis
    perm = [0] + list(range(1 + k, 1 + k + pre)) + list(range(1, 1 + k)) + list(
        range(1 + k + pre, F.type_of(y).ndim))
    return P.transpose(y, perm), 0


@batch_rule(ops.ScatterAdd)
def _(op, size, out, xs, axes):  # noqa: ANN001, ANN202
    (u, idx), (au, ai) = xs, axes
    if ai is None:  # one set of indices, every example's updates
        return P.bind(ops.ScatterAdd(op.axis + 1, op.size), front(u, au, size), idx), 0
    u, idx = front(u, au, size), front(idx, ai, size)
    k = F.type_of(idx).ndim - 1
    pre = op.axis
    nu = F.type_of(u).ndim
    # [B, *pre, *idx, *post] -> [B, *idx, *pre, *post]: batch and indices lead
    u = P.transpose(u, [0] + list(range(1 + pre, 1 + pre + k)) + list(range(1, 1 + pre))
                    + list(range(1 + pre + k, nu)))
    y = P.bind(ops.ScatterAdd(0, size * op.size), u, _flat_indices(idx, op.size, size))
    y = _unfold(y, 0, size)  # [B, size, *pre, *post]
    perm = [0] + list(range(2, 2 + pre)) + [1] + list(range(2 + pre, F.type_of(y).ndim))
    return P.transpose(y, perm), 0


# --------------------------------------------------------------------------- random


@batch_rule(ops.RandomBits)
def _(op, size, out, xs, axes):  # noqa: ANN001, ANN202
    # the rule is only asked for a batched key: each example draws from its own key
    keys = front(xs[0], axes[0], size)
    draws = [P.bind(op, F.reshape(P.slice_axes(keys, (i, 0), (i + 1, 2), (1, 1)), (2,)))
             for i in range(size)]
    return F.stack(draws), 0


# --------------------------------------------------------------------------- convolutions
# A batch of inputs is a larger N; a batch of weights is a grouped convolution: B·groups
# groups, example b's channels in group block b (batch-major channels).


@batch_rule(ops.Conv2d, ops.Conv2dBackwardInput)
def _(op, size, out, xs, axes):  # noqa: ANN001, ANN202
    (x, w), (ax, aw) = xs, axes
    if aw is None:  # shared weights: the examples are more images
        return _unfold(P.bind(op, _fold(x, ax, size, 0), w), 0, size), 0
    grouped = dataclasses.replace(op, groups=op.groups * size)
    y = P.bind(grouped, _fold(x, ax, size, 1), _fold(w, aw, size, 0))
    return _unfold(y, 1, size), 1


@batch_rule(ops.Conv2dBackwardWeight)
def _(op, size, out, xs, axes):  # noqa: ANN001, ANN202
    # one weight gradient per example: sum over N within each example only
    (x, g), (ax, ag) = xs, axes
    grouped = dataclasses.replace(op, groups=op.groups * size)
    y = P.bind(grouped, _fold(x, ax, size, 1), _fold(g, ag, size, 1))
    return _unfold(y, 0, size), 0


@batch_rule(ops.MaxPool2dIndices)
def _(op, size, out, xs, axes):  # noqa: ANN001, ANN202
    # indices into the folded input's ravel, less each example's start: into its own ravel
    x = front(xs[0], axes[0], size)
    per_example = int(np.prod(_shape(x)[1:]))
    y = _unfold(P.bind(op, _fold(x, 0, size, 0)), 0, size)
    return P.sub(y, _offsets(size, per_example, 5, "int32")), 0


# --------------------------------------------------------------------------- attention


@batch_rule(ops.Attention, ops.AttentionLSE, ops.AttentionGradQ, ops.AttentionGradK,
            ops.AttentionGradV, ops.AttentionGradScores)
def _(op, size, out, xs, axes):  # noqa: ANN001, ANN202
    # every operand leads with attention's own batch axis: the examples fold into it
    n = len(op.operands)
    batch = _unbatched_shape(xs[0], axes[0])[0]
    folded = [_fold(x, a, size, 0) for x, a in zip(xs[:n], axes[:n])]
    if len(xs) > n:  # the bias: broadcast over attention's batch only where it is batched
        bias, ab = xs[n], axes[n]
        if ab is None and _shape(bias)[0] == 1:
            folded.append(bias)
        else:
            bias = front(bias, ab, size)
            shape = _shape(bias)
            folded.append(_fold(P.broadcast_to(bias, (size, batch) + shape[2:]), 0, size, 0))
    return _unfold(P.bind(op, *folded), 0, size), 0


# --------------------------------------------------------------------------- fused groups


@batch_rule(ops.Fused)
def _(op, size, out, xs, axes):  # noqa: ANN001, ANN202
    # batch the group's sub-graph and inline it: primitives again, to fuse anew
    sub, (axis,) = batch_graph(op.graph, axes, size)
    (y,) = inline(sub, xs)
    return y, axis


# --------------------------------------------------------------------------- the transform


def _check_axes(graph: Graph, in_axes: Sequence[Axis], size: object) -> list[Axis]:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 0:
        raise VmapError(f"batch_graph: size must be an int >= 0, got {size!r}")
    if isinstance(in_axes, (str, bytes)) or len(in_axes) != len(graph.inputs):
        raise VmapError(f"batch_graph: the graph has {len(graph.inputs)} inputs, got "
                        f"{len(in_axes)} axes")
    out = []
    for name, t, a in zip(graph.input_names, graph.input_types, in_axes):
        if a is not None and (isinstance(a, bool) or not isinstance(a, (int, np.integer))
                              or not 0 <= a <= t.ndim):
            raise VmapError(f"batch_graph: input '{name}' of type {t!r} cannot take a batch "
                            f"axis at {a!r} (0 to {t.ndim}, or None)")
        out.append(None if a is None else int(a))
    return out


def batch_graph(graph: Graph, in_axes: Sequence[Axis], size: int) -> tuple[Graph, tuple[Axis, ...]]:
    """The graph of `graph` over a batch of `size`, and the batch axis of each output.

    `in_axes` has one entry per input: where its batch axis is (0 .. its ndim) in the
    new graph's input, or None (the same for every example). An output that depends on
    no batched input is not batched: its axis is None.
    """
    require_graph(graph, "batch_graph")
    in_axes = _check_axes(graph, in_axes, size)
    axes: dict[int, Axis] = dict(zip(graph.inputs, in_axes))
    trace = Trace("vmap")

    def per_node(ctx: Rebuild, i: int, node: Node, inputs: tuple[int, ...]) -> int:
        found = [axes.get(j) for j in node.inputs]
        if all(a is None for a in found):
            axes[i] = None
            return ctx.add(node.op, inputs, node)
        if size == 0:  # an empty batch: every batched value is empty, whatever the op
            axes[i] = 0
            like = trace.tracer(inputs[0])
            empty = F.full(batched_type(node.type, 0, 0).shape, 0, node.type.dtype, like=like)
            return trace.lift(empty).node
        rule = BATCH_RULES.get(type(node.op))
        if rule is None:
            why = NO_BATCH_RULE.get(type(node.op), "no rule was written for it")
            raise VmapError(f"vmap cannot batch op '{node.op.name}': {why}", node.source)
        trace.source_override = node.source
        y, axis = rule(node.op, size, node.type, [trace.tracer(j) for j in inputs], found)
        y = trace.lift(y)
        want = batched_type(node.type, axis, size)
        if y.type != want:
            raise VmapError(f"internal: the batching rule of {node.op.name} gave {y.type!r} "
                            f"with batch axis {axis}, expected {want!r}", node.source)
        axes[i] = axis
        return y.node

    types = [batched_type(t, a, size) for t, a in zip(graph.input_types, in_axes)]
    with trace:
        batched = rebuild(graph, per_node, types, builder=trace.builder)
    return batched, tuple(axes[i] for i in graph.outputs)


# --------------------------------------------------------------------------- custom calls
# A custom function under vmap keeps its custom derivatives per example: the new call's
# sub-graph is the batched one, and its rules are the user's, mapped over axis 0 (each
# traced for one example, batched and inlined, like `pyasg.vmap`). Every input is
# moved to axis 0 first, an unbatched one broadcast along it (its cotangent then sums
# over the batch through broadcast_to's own VJP rule), so the mapped rules see one
# uniform batch.


def _at_front(x: object, axis: Axis, size: int) -> object:
    """`x` with its batch axis first (an unbatched `x` broadcast along a new one)."""
    if axis is None:
        return F.broadcast_to(F.expand_dims(x, 0), (size,) + tuple(F.type_of(x).shape))
    return F.moveaxis(x, axis, 0) if axis else x


def _mapped(fn: Callable, size: int, name: str) -> Callable:
    """`fn`, written for one example, as a function of arguments batched at axis 0 whose
    results are batched at axis 0 too."""
    def mapped(*args: object) -> object:
        trees = list(args)
        leaves = [leaf for _, leaf in flatten_with_paths(trees)[0]]
        abstract = [(path, TensorType(F.type_of(leaf).shape[1:], F.type_of(leaf).dtype), False)
                    for path, leaf in flatten_with_paths(dict(zip(
                        [f"arg{k}" for k in range(len(args))], trees)))[0]]
        traced = trace_function(fn, args, name, abstract=abstract,
                                names=[f"arg{k}" for k in range(len(args))])
        batched, have = batch_graph(traced.graph, [0] * len(leaves)
                                    + [None] * len(traced.captured), size)
        outs = inline(batched, leaves + list(traced.captured))
        return unflatten(traced.out_tree, [_at_front(v, h, size) for v, h in zip(outs, have)])
    return mapped


@batch_rule(ops.CustomCall)
def _(op, size, out, xs, axes):  # noqa: ANN001, ANN202
    rule = rule_of(op)
    if rule.out_tree.kind != "leaf":
        raise VmapError(f"vmap of {rule.where()}, which returns several outputs, is not "
                        f"supported yet: return one array (stack or concatenate them)",
                        rule.source)
    front = [_at_front(x, a, size) for x, a in zip(xs, axes)]
    sub, have = batch_graph(op.graph, [0] * len(xs), size)
    body = Trace(f"vmap_{op.function}")
    with body:
        ins = [body.new_input(f"x{k}", F.type_of(x), False) for k, x in enumerate(front)]
        y = _at_front(inline(sub, ins)[0], have[0], size)
        sub0 = body.builder.build([body.lift(y).node])
    name = f"vmap_{op.function}"
    mapped = dataclasses.replace(
        rule, out_types=tuple(sub0.output_types),
        fwd=_mapped(rule.fwd, size, f"{name}_fwd") if rule.fwd else None,
        bwd=_mapped(rule.bwd, size, f"{name}_bwd") if rule.bwd else None,
        jvp=_mapped(rule.jvp, size, f"{name}_jvp") if rule.jvp else None)
    return P.bind(ops.CustomCall(sub0, op.function, register(mapped)), *front), 0


# --------------------------------------------------------------------------- cond, checkpoint
# A checkpointed body batches inside its op (its gradient still recomputes it); a cond
# with an unbatched predicate batches both branches inside a cond, and one whose
# predicate is batched computes both branches and selects per example (as JAX does).


def _outputs_at_front(graph: Graph, axes: Sequence[Axis], size: int) -> Graph:
    """`graph` batched at input `axes`, every output's batch axis first."""
    batched, have = batch_graph(graph, axes, size)
    body = Trace("batched_body")
    with body:
        ins = [body.new_input(f"x{k}", t, False) for k, t in enumerate(batched.input_types)]
        outs = [_at_front(v, h, size) for v, h in zip(inline(batched, ins), have)]
        built = body.builder.build([body.lift(v).node for v in outs])
    return built


@batch_rule(ops.Remat)
def _(op, size, out, xs, axes):  # noqa: ANN001, ANN202
    return P.bind(dataclasses.replace(op, body=_outputs_at_front(op.body, axes, size)),
                  *xs), 0


@batch_rule(ops.Cond)
def _(op, size, out, xs, axes):  # noqa: ANN001, ANN202
    pred, operands, op_axes = xs[0], xs[1:], axes[1:]
    on_true, on_false = (_outputs_at_front(b, op_axes, size)
                         for b in (op.true_branch, op.false_branch))
    if axes[0] is None:
        return P.bind(dataclasses.replace(op, true_branch=on_true, false_branch=on_false),
                      pred, *operands), 0
    picked = [inline(b, list(operands))[op.index] for b in (on_true, on_false)]
    mask = F.reshape(_at_front(pred, axes[0], size), (size,) + (1,) * len(out.shape))
    return F.where(mask, picked[0], picked[1]), 0


@batch_rule(ops.Scan)
def _(op, size, out, xs, axes):  # noqa: ANN001, ANN202
    """A scan of the batched body: every carry batched at axis 0 (an unbatched one
    broadcast: a body may mix it with batched values), consts as they come, each batched
    xs with its batch axis second (the scanned axis stays first, so the body's slice has
    it first); final carries come out batched at 0, stacked ys at 1."""
    nc, ncar = op.n_consts, op.n_carry
    consts, carries, seqs = xs[:nc], xs[nc:nc + ncar], xs[nc + ncar:]
    c_axes, s_axes = axes[:nc], axes[nc + ncar:]
    carries = [_at_front(c, a, size) for c, a in zip(carries, axes[nc:nc + ncar])]
    seqs = [x if a is None else F.moveaxis(x, a, 1) for x, a in zip(seqs, s_axes)]
    body_axes = list(c_axes) + [0] * ncar + [None if a is None else 0 for a in s_axes]
    body = _outputs_at_front(op.body, body_axes, size)
    y = P.bind(dataclasses.replace(op, body=body), *consts, *carries, *seqs)
    return y, (0 if op.index < ncar else 1)
