"""Reverse mode as a graph-to-graph transform: `vjp_graph`, and the VJP table.

`vjp_graph(graph, wrt)` returns a new graph whose extra outputs are the gradients:
the gradient is itself an ASG, so it can be simplified, shown, and differentiated
again. The table `VJP_RULES` holds one reverse-mode rule per differentiable
primitive, all in one place (the `Fused` op's too). A rule receives the op, the
output cotangent `g`, the op's output and its inputs (all tracers) and returns one
cotangent per input (`None`: no gradient flows there, e.g. integer indices). Rules
are written with the same functions users write, so the gradient graph can be
differentiated again. Broadcasting in the forward pass is undone by `sum_to_shape`,
the only place that does so.

>>> import pyasg, numpy as np
>>> g = pyasg.make_graph(lambda x: (x * x).sum())(np.ones(3))
>>> vjp_graph(g, [0]).output_types
(f64[], f64[3])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from pyasg.array import functional as F
from pyasg.array import primitives as P
from pyasg.asg import ops
from pyasg.asg.graph import Graph, prune
from pyasg.asg.ops import Constant, Input
from pyasg.asg.types import is_float
from pyasg.errors import GradError
from pyasg.trace.tracer import Trace, Tracer, inline, trace_function
from pyasg.transforms import custom
from pyasg.transforms.checks import output_position, positions, require_graph

Rule = Callable[..., tuple]
#: op class -> its reverse-mode rule; an op class missing here is not differentiable.
VJP_RULES: dict[type, Rule] = {}
#: op class -> a rule for all the nodes of one construct at once, for ops with one node
#: per output `index` (a scan's): `rule(op, {index: cotangent}, {index: output},
#: *inputs)`, `op` at index 0. `vjp_graph` calls it once per construct, at its first
#: node, where every output's cotangent is complete (their readers all come later), so
#: one backward pass serves every output. Such an op has a `VJP_RULES` row too.
CONSTRUCT_VJP_RULES: dict[type, Rule] = {}


def vjp_rule(*op_classes: type) -> Callable[[Rule], Rule]:
    def register(rule: Rule) -> Rule:
        for cls in op_classes:
            VJP_RULES[cls] = rule
        return rule

    return register


def sum_to_shape(g: object, shape: tuple[int, ...]) -> object:
    """Sum `g` over the axes that broadcasting added or stretched, to get `shape`."""
    g_shape = F.type_of(g).shape
    if g_shape == shape:
        return g
    lead = len(g_shape) - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, d in enumerate(shape) if d == 1 and g_shape[lead + i] != 1)
    return F.reshape(F.sum(g, axis=axes), shape)


def _unbroadcast(*pairs: tuple[object, object]) -> tuple:
    return tuple(sum_to_shape(g, x.shape) for g, x in pairs)


# --------------------------------------------------------------------------- elementwise


@vjp_rule(ops.Neg)
def _(op, g, out, x): return (F.neg(g),)  # noqa: E704, ANN001, ANN202


@vjp_rule(ops.Abs)
def _(op, g, out, x): return (F.mul(g, F.sign(x)),)  # noqa: E704, ANN001, ANN202


@vjp_rule(ops.Sign, ops.FloorDiv)
def _(op, g, out, *xs):  # noqa: ANN001, ANN202
    # piecewise constant: the derivative is zero wherever it exists
    return tuple(F.zeros_like(x) if is_float(x.dtype) else None for x in xs)


@vjp_rule(ops.Exp)
def _(op, g, out, x): return (F.mul(g, out),)  # noqa: E704, ANN001, ANN202


@vjp_rule(ops.Log)
def _(op, g, out, x): return (F.div(g, x),)  # noqa: E704, ANN001, ANN202


@vjp_rule(ops.Log1p)
def _(op, g, out, x): return (F.div(g, F.add(x, 1.0)),)  # noqa: E704, ANN001, ANN202


@vjp_rule(ops.Expm1)
def _(op, g, out, x): return (F.mul(g, F.add(out, 1.0)),)  # noqa: E704, ANN001, ANN202


@vjp_rule(ops.Sqrt)
def _(op, g, out, x): return (F.div(F.mul(g, 0.5), out),)  # noqa: E704, ANN001, ANN202


@vjp_rule(ops.Sin)
def _(op, g, out, x): return (F.mul(g, F.cos(x)),)  # noqa: E704, ANN001, ANN202


@vjp_rule(ops.Cos)
def _(op, g, out, x): return (F.neg(F.mul(g, F.sin(x))),)  # noqa: E704, ANN001, ANN202


@vjp_rule(ops.Tanh)
def _(op, g, out, x): return (F.mul(g, F.sub(1.0, F.mul(out, out))),)  # noqa: E704, ANN001, ANN202


@vjp_rule(ops.Erf)
def _(op, g, out, x):  # noqa: ANN001, ANN202
    return (F.mul(g, F.mul(2.0 / math.sqrt(math.pi), F.exp(F.neg(F.mul(x, x))))),)


@vjp_rule(ops.Add)
def _(op, g, out, a, b): return _unbroadcast((g, a), (g, b))  # noqa: E704, ANN001, ANN202


@vjp_rule(ops.Sub)
def _(op, g, out, a, b): return _unbroadcast((g, a), (F.neg(g), b))  # noqa: E704, ANN001, ANN202


@vjp_rule(ops.Mul)
def _(op, g, out, a, b):  # noqa: ANN001, ANN202
    return _unbroadcast((F.mul(g, b), a), (F.mul(g, a), b))


@vjp_rule(ops.Div)
def _(op, g, out, a, b):  # noqa: ANN001, ANN202
    ga = F.div(g, b)
    return _unbroadcast((ga, a), (F.neg(F.mul(ga, out)), b))


@vjp_rule(ops.Mod)
def _(op, g, out, a, b):  # noqa: ANN001, ANN202
    return _unbroadcast((g, a), (F.neg(F.mul(g, F.floor_divide(a, b))), b))


@vjp_rule(ops.Pow)
def _(op, g, out, a, b):  # noqa: ANN001, ANN202
    # b * a**(b-1), with the exponent kept finite where b == 0 (the term is 0 there)
    ga = F.mul(g, F.mul(b, F.power(a, F.where(F.equal(b, 0.0), 1.0, F.sub(b, 1.0)))))
    safe_log = F.log(F.where(F.equal(a, 0.0), 1.0, a))  # d/db at a == 0 is taken as 0
    gb = F.mul(g, F.mul(safe_log, out))
    return _unbroadcast((ga, a), (gb, b))


def _choose(op, g, a, b, first_wins):  # noqa: ANN001, ANN202
    # ties share the gradient evenly, as JAX and PyTorch do
    weight = F.where(first_wins, 1.0, F.where(F.equal(a, b), 0.5, 0.0))
    weight = F.astype(weight, a.dtype)
    return _unbroadcast((F.mul(g, weight), a), (F.mul(g, F.sub(1.0, weight)), b))


@vjp_rule(ops.Maximum)
def _(op, g, out, a, b): return _choose(op, g, a, b, F.greater(a, b))  # noqa: E704, ANN001, ANN202


@vjp_rule(ops.Minimum)
def _(op, g, out, a, b): return _choose(op, g, a, b, F.less(a, b))  # noqa: E704, ANN001, ANN202


@vjp_rule(ops.Where)
def _(op, g, out, cond, x, y):  # noqa: ANN001, ANN202
    zero = F.full((), 0, F.type_of(g).dtype, like=g)  # a scalar: no zeros tensor to fill
    return (None,) + _unbroadcast((F.where(cond, g, zero), x), (F.where(cond, zero, g), y))


@vjp_rule(ops.Cast)
def _(op, g, out, x):  # noqa: ANN001, ANN202
    return (F.astype(g, x.dtype) if is_float(x.dtype) else None,)


@vjp_rule(ops.StopGradient)
def _(op, g, out, x): return (None,)  # noqa: E704, ANN001, ANN202


# --------------------------------------------------------------------------- reductions


def _keepdims_shape(x, axes):  # noqa: ANN001, ANN202
    return tuple(1 if i in axes else d for i, d in enumerate(x.shape))


@vjp_rule(ops.Sum)
def _(op, g, out, x):  # noqa: ANN001, ANN202
    return (F.broadcast_to(F.reshape(g, _keepdims_shape(x, op.axes)), x.shape),)


@vjp_rule(ops.Max)
def _(op, g, out, x):  # noqa: ANN001, ANN202
    shape = _keepdims_shape(x, op.axes)
    hit = F.astype(F.equal(x, F.reshape(out, shape)), x.dtype)
    share = F.div(F.reshape(g, shape), F.sum(hit, axis=op.axes, keepdims=True))
    return (F.mul(hit, share),)


# --------------------------------------------------------------------------- shapes


@vjp_rule(ops.Reshape)
def _(op, g, out, x): return (F.reshape(g, x.shape),)  # noqa: E704, ANN001, ANN202


@vjp_rule(ops.Transpose)
def _(op, g, out, x):  # noqa: ANN001, ANN202
    inverse = [0] * len(op.perm)
    for i, p in enumerate(op.perm):
        inverse[p] = i
    return (F.transpose(g, inverse),)


@vjp_rule(ops.BroadcastTo)
def _(op, g, out, x): return (sum_to_shape(g, x.shape),)  # noqa: E704, ANN001, ANN202


@vjp_rule(ops.Slice)
def _(op, g, out, x):  # noqa: ANN001, ANN202
    starts, stops, steps, widths = [], [], [], []
    for d, n, start, step in zip(x.shape, out.shape, op.starts, op.steps):
        if n == 0:
            return (F.zeros_like(x),)
        first = start if step > 0 else start + (n - 1) * step  # lowest index taken
        starts.append(n - 1 if step < 0 else 0)
        stops.append(-1 if step < 0 else n)
        steps.append(-1 if step < 0 else 1)
        stride = abs(step)
        widths.append((first, d - (first + (n - 1) * stride) - 1, stride - 1))
    g = P.slice_axes(g, starts, stops, steps)  # put reversed axes back in order
    return (P.pad_general(g, widths, 0.0),)


@vjp_rule(ops.Pad)
def _(op, g, out, x):  # noqa: ANN001, ANN202
    if x.size == 0:
        return (F.zeros_like(x),)
    starts = [lo for lo, _, _ in op.widths]
    steps = [mid + 1 for _, _, mid in op.widths]
    stops = [lo + (d - 1) * s + 1 for d, lo, s in zip(x.shape, starts, steps)]
    return (P.slice_axes(g, starts, stops, steps),)


@vjp_rule(ops.Concatenate)
def _(op, g, out, *xs):  # noqa: ANN001, ANN202
    bounds = []
    total = 0
    for x in xs[:-1]:
        total += x.shape[op.axis]
        bounds.append(total)
    return tuple(F.split(g, bounds, axis=op.axis))


# --------------------------------------------------------------------------- matmul, indexing


@vjp_rule(ops.MatMul)
def _(op, g, out, a, b):  # noqa: ANN001, ANN202
    a2 = F.reshape(a, (1,) + a.shape) if a.ndim == 1 else a
    b2 = F.reshape(b, b.shape + (1,)) if b.ndim == 1 else b
    g2 = g
    if a.ndim == 1:
        g2 = F.expand_dims(g2, -2 if b.ndim > 1 else -1)
    if b.ndim == 1:
        g2 = F.expand_dims(g2, -1)
    ga = sum_to_shape(F.matmul(g2, F.swapaxes(b2, -1, -2)), F.type_of(a2).shape)
    if b.ndim == 2 and a.ndim > 2:
        # b was shared by every leading index of a: its gradient is ONE GEMM over the
        # folded rows, [k, B*m] @ [B*m, n], not a batched matmul summed over B
        k, n = b.shape
        gb = F.matmul(F.swapaxes(F.reshape(a, (-1, k)), 0, 1), F.reshape(g2, (-1, n)))
        return (F.reshape(ga, a.shape), gb)
    gb = sum_to_shape(F.matmul(F.swapaxes(a2, -1, -2), g2), F.type_of(b2).shape)
    return (F.reshape(ga, a.shape), F.reshape(gb, b.shape))


@vjp_rule(ops.Gather)
def _(op, g, out, x, indices):  # noqa: ANN001, ANN202
    return (P.scatter_add(g, indices, op.axis, x.shape[op.axis]), None)


@vjp_rule(ops.ScatterAdd)
def _(op, g, out, updates, indices):  # noqa: ANN001, ANN202
    return (F.take(g, indices, axis=op.axis), None)


# --------------------------------------------------------------------------- convolutions


def _conv_params(op) -> dict:  # noqa: ANN001
    return {"stride": op.stride, "padding": op.padding, "dilation": op.dilation,
            "groups": op.groups}


@vjp_rule(ops.Conv2d)
def _(op, g, out, x, w):  # noqa: ANN001, ANN202
    p = _conv_params(op)
    return (P.bind(ops.Conv2dBackwardInput(**p, input_size=x.shape[2:]), g, w),
            P.bind(ops.Conv2dBackwardWeight(**p, kernel_size=w.shape[2:]), x, g))


@vjp_rule(ops.Conv2dBackwardInput)
def _(op, c, out, g, w):  # noqa: ANN001, ANN202
    p = _conv_params(op)
    return (P.bind(ops.Conv2d(**p), c, w),
            P.bind(ops.Conv2dBackwardWeight(**p, kernel_size=w.shape[2:]), c, g))


@vjp_rule(ops.Conv2dBackwardWeight)
def _(op, c, out, x, g):  # noqa: ANN001, ANN202
    p = _conv_params(op)
    return (P.bind(ops.Conv2dBackwardInput(**p, input_size=x.shape[2:]), g, c),
            P.bind(ops.Conv2d(**p), x, c))

# --------------------------------------------------------------------------- fused groups


@vjp_rule(ops.Fused)
def _(op, g, out, *xs):  # noqa: ANN001, ANN202
    # differentiate the sub-graph and inline its backward pass: the result is made of
    # primitives, so it can be differentiated (and fused) again
    sub = op.graph
    wrt = [k for k, t in enumerate(sub.input_types) if is_float(t.dtype)]
    if not wrt or not is_float(sub.output_types[0].dtype):
        return (None,) * len(xs)
    back = vjp_graph(sub, wrt, 0, seed=True)
    grads = inline(back, [*xs, g])[1:]
    found = dict(zip(wrt, grads))
    return tuple(found.get(k) for k in range(len(xs)))


# --------------------------------------------------------------------------- custom derivatives


@vjp_rule(ops.CustomCall)
def _(op, g, out, *xs):  # noqa: ANN001, ANN202
    rule = custom.rule_of(op)
    if rule.bwd is not None:  # custom_vjp: the user's backward pass
        return tuple(custom.call_fwd_bwd(rule, xs, g))
    # custom_jvp: reverse mode is the transpose of the (linear) tangent map, which is
    # the VJP of ts -> jvp(xs, ts)[1] at any ts (zeros here)
    wrt = [k for k, x in enumerate(xs) if is_float(x.dtype)]

    def tangent_out(*ts: Tracer) -> Tracer:
        full = dict(zip(wrt, ts))
        return custom.call_jvp(rule, xs, custom.zero_tangents(
            xs, [full.get(k) for k in range(len(xs))]), out.type)

    if not wrt:
        return (None,) * len(xs)
    traced = trace_function(tangent_out, [xs[k] for k in wrt], name=op.function,
                            abstract=[(f"tangent{k}", xs[k].type, False) for k in wrt],
                            names=[f"tangent{k}" for k in wrt])
    back = vjp_graph(traced.graph, range(len(wrt)), 0, seed=True)
    zeros = [F.zeros_like(xs[k]) for k in wrt]
    grads = dict(zip(wrt, inline(back, [*zeros, *traced.captured, g])[1:]))
    return tuple(grads.get(k) for k in range(len(xs)))


# --------------------------------------------------------------------------- the transform


def _needed(graph: Graph, wrt: set[int], of: int) -> set[int]:
    """Float nodes on some path from a `wrt` input to node `of`."""
    forward = set(wrt)
    for i in graph.ids:
        node = graph.nodes[i]
        if i not in forward and is_float(node.type.dtype) and any(j in forward
                                                                  for j in node.inputs):
            forward.add(i)
    needed, stack = set(), [of] if of in forward else []
    while stack:
        i = stack.pop()
        if i in needed:
            continue
        needed.add(i)
        stack.extend(j for j in graph.nodes[i].inputs if j in forward)
    return needed


def _constructs(graph: Graph, needed: set[int]) -> dict[int, tuple[int, ...]]:
    """For each needed node of an op in `CONSTRUCT_VJP_RULES`: the needed nodes of its
    construct (the same op but for `index`, on the same inputs), ascending."""
    groups: dict[tuple, list[int]] = {}
    for i in graph.ids:
        node = graph.nodes[i]
        if i in needed and type(node.op) in CONSTRUCT_VJP_RULES:
            groups.setdefault((node.op.with_index(0), node.inputs), []).append(i)
    return {i: tuple(members) for members in groups.values() for i in members}


def vjp_graph(graph: Graph, wrt: Sequence[int], of: int = 0, seed: bool = False,
              cotangent_ids: dict[int, int] | None = None) -> Graph:
    """Append to `graph` the gradients of output `of` with respect to inputs `wrt`.

    `wrt` are positions in `graph.inputs`. Without `seed` the output must be a float
    scalar (its cotangent is 1); with `seed` a new last input named `cotangent` of
    the output's type carries it (a vector-Jacobian product). The new graph's
    outputs are the old ones followed by one gradient per `wrt` entry. Node ids of
    `graph` keep their meaning in the result; `cotangent_ids`, when given, receives
    for each node of `graph` on a differentiated path the id of the node holding its
    total cotangent (the gradient of the output with respect to that node).
    """
    require_graph(graph, "vjp_graph")
    wrt = positions(wrt, len(graph.inputs), "vjp_graph", "wrt")
    of = output_position(of, len(graph.outputs), "vjp_graph")
    if cotangent_ids is not None and not isinstance(cotangent_ids, dict):
        raise GradError(f"vjp_graph: cotangent_ids must be a dict to fill, or None; got "
                        f"{type(cotangent_ids).__name__}")
    out_id = graph.outputs[of]
    out_type = graph.nodes[out_id].type
    wrt_ids = [graph.inputs[k] for k in wrt]
    for k, i in zip(wrt, wrt_ids):
        t = graph.nodes[i].type
        if not is_float(t.dtype):
            raise GradError(f"cannot differentiate with respect to input '{graph.input_names[k]}'"
                            f" of type {t!r}: gradients need float inputs")
    if not is_float(out_type.dtype) or (not seed and out_type.shape != ()):
        raise GradError(f"grad needs a float scalar output, got {out_type!r}; reduce it "
                        f"first (.sum(), .mean()) or use pyasg.jacobian",
                        graph.nodes[out_id].source)
    needed = _needed(graph, set(wrt_ids), out_id)
    trace = Trace("grad", base=graph)
    with trace:
        if seed:
            cotangents: dict[int, Tracer] = {out_id: trace.new_input("cotangent", out_type)}
        else:
            cotangents = {out_id: trace.constant(np.ones((), out_type.dtype))}
        constructs = _constructs(graph, needed)
        for i in reversed(graph.ids):
            members = constructs.get(i)
            if members is not None:  # a construct's outputs: differentiated together
                if i != members[0]:
                    continue
                node = graph.nodes[i]
                cts = {graph.nodes[j].op.index: cotangents[j] for j in members
                       if j in cotangents}
                if not cts:
                    continue
                trace.source_override = node.source
                outs = {graph.nodes[j].op.index: trace.tracer(j) for j in members}
                in_cts = CONSTRUCT_VJP_RULES[type(node.op)](
                    node.op.with_index(0), cts, outs, *[trace.tracer(j) for j in node.inputs])
                _accumulate(trace, graph, node, in_cts, needed, cotangents)
                continue
            if i not in cotangents or i not in needed:
                continue
            node = graph.nodes[i]
            if isinstance(node.op, (Input, Constant)):
                continue
            rule = VJP_RULES.get(type(node.op))
            if rule is None:
                raise GradError(f"op '{node.op.name}' has no gradient rule (it is not "
                                f"differentiable), but the output depends on it through a "
                                f"float path; wrap its input in pyasg.stop_gradient if that is "
                                f"intended", node.source)
            trace.source_override = node.source
            inputs = [trace.tracer(j) for j in node.inputs]
            in_cts = rule(node.op, cotangents[i], trace.tracer(i), *inputs)
            _accumulate(trace, graph, node, in_cts, needed, cotangents)
        trace.source_override = None
        grads = [cotangents[i] if i in cotangents else F.zeros_like(trace.tracer(i))
                 for i in wrt_ids]
        outputs = list(graph.outputs) + [trace.lift(g).node for g in grads]
    result = prune(trace.builder.build(outputs))
    if cotangent_ids is not None:
        cotangent_ids.update({i: c for i, ct in cotangents.items()
                              if (c := ct.node) in result.nodes})
    return result


def _accumulate(trace: Trace, graph: Graph, node: object, in_cts: Sequence[object],
                needed: set[int], cotangents: dict[int, Tracer]) -> None:
    """Add a rule's cotangents of `node`'s inputs into `cotangents`."""
    for j, ct in zip(node.inputs, in_cts):
        if ct is None or j not in needed:
            continue
        ct = trace.lift(ct)
        if ct.type != graph.nodes[j].type:
            raise GradError(f"internal: the VJP of {node.op.name} gave {ct.type!r} for "
                            f"an input of type {graph.nodes[j].type!r}", node.source)
        cotangents[j] = F.add(cotangents[j], ct) if j in cotangents else ct


# --------------------------------------------------------------------------- attention
# The rule of the fused attention op (pyasg.asg.ops.attention), written with its gradient
# ops: each recomputes the probabilities block by block from q, k and the row
# log-sum-exp, so no [B, H, T, S] value is kept between the passes. The gradient ops
# have no rules of their own: a second derivative through attention raises GradError.


@vjp_rule(ops.Attention)
def _(op, g, out, q, k, v, *bias):  # noqa: ANN001, ANN202
    attrs = (op.scale, op.is_causal, op.layout)
    lse = P.bind(ops.AttentionLSE(*attrs), q, k, *bias)
    delta = F.sum(F.mul(g, out), axis=-1)  # rowsum(dout * out): lse's shape
    operands = (q, k, v, g, lse, delta, *bias)
    dq = P.bind(ops.AttentionGradQ(*attrs), *operands)
    dk = P.bind(ops.AttentionGradK(*attrs), *operands)
    dv = P.bind(ops.AttentionGradV(*attrs), q, k, g, lse, *bias)
    if not bias:
        return dq, dk, dv
    # the bias's gradient is the scores' gradient summed over its broadcast axes: a
    # [B, H, T, S] node, kept only where the bias is on a differentiated path (a mask
    # is not: the node is pruned)
    ds = P.bind(ops.AttentionGradScores(*attrs), *operands)
    return dq, dk, dv, sum_to_shape(ds, bias[0].shape)
