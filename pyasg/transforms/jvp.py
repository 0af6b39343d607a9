"""Forward mode as a graph-to-graph transform: `jvp_graph`, and the JVP table.

`jvp_graph(graph, wrt)` returns a new graph that takes one tangent per `wrt` input
after the old inputs and gives one tangent per output after the old outputs (a
Jacobian-vector product): it is itself an ASG, so it can be simplified, compiled,
differentiated again (`grad` of it, or it of a gradient graph). It is one pass of
the rebuild walker (`asg.rewrite.rebuild`): each node is kept, then its tangent is
recorded beside it by its op's row of `JVP_RULES`.

A rule receives the op, the node's output, its inputs and one tangent per input
(tracers; `None` is a zero tangent, never materialised) and returns the output's
tangent (`None`: zero). It is called only when some input tangent is non-zero and
the output is float, and its result is broadcast to the output's shape (a rule may
return the tangent of a broadcast operand as is). Rules are written with the same
functions users write, so the result can be differentiated again.

Ops whose outputs are integers or bools (comparisons, `argmax`, random bits, pooling
indices), and float ops that are piecewise constant (`sign`, `floor_divide`) or cut
the derivative on purpose (`stop_gradient`) have the rule `zero`: their tangent is
exactly zero, by rule, as their VJP is. The attention gradient ops (which appear only
inside a reverse-mode graph) have no forward rule: `NO_JVP` says why, and reaching one
raises `GradError`, as a second reverse derivative through them does.

>>> import pyasg, numpy as np
>>> g = pyasg.make_graph(lambda x: (x * x).sum())(np.ones(3))
>>> jvp_graph(g).input_types, jvp_graph(g).output_types
((f64[3], f64[3]), (f64[], f64[]))
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import numpy as np

from pyasg.array import functional as F
from pyasg.array import primitives as P
from pyasg.asg import ops
from pyasg.asg.graph import Graph, GraphBuilder, Node
from pyasg.asg.rewrite import Rebuild, keep, rebuild
from pyasg.asg.types import is_float
from pyasg.errors import GradError, NoForwardRuleError
from pyasg.trace.tracer import Trace, Tracer, inline
from pyasg.transforms import custom
from pyasg.transforms.checks import positions, require_graph

Rule = Callable[..., object]
#: op class -> its forward-mode rule (op, out, primals, tangents) -> tangent or None.
JVP_RULES: dict[type, Rule] = {}

#: op class -> why it has no forward-mode rule (reaching one raises GradError).
NO_JVP: dict[type, str] = {
    cls: "it appears only in the backward pass of attention, whose derivatives are not "
         "defined (a second derivative through attention is not supported)"
    for cls in (ops.AttentionLSE, ops.AttentionGradQ, ops.AttentionGradK, ops.AttentionGradV,
                ops.AttentionGradScores)
}
# A while_loop has no forward-mode rule yet: jvp/jacfwd through it raise
# NoForwardRuleError saying so. Scan, cond and checkpoint have rules at the end.
NO_JVP[ops.WhileLoop] = ("forward mode through a while_loop is not written yet; use "
                         "grad / jacrev there, or fori_loop / scan with a fixed count")


def jvp_rule(*op_classes: type) -> Callable[[Rule], Rule]:
    def register(rule: Rule) -> Rule:
        for cls in op_classes:
            JVP_RULES[cls] = rule
        return rule

    return register


def _tangents(xs: Sequence[Tracer], ts: Sequence[Tracer | None]) -> list[Tracer]:
    """`ts` with every zero tangent made an array (for rules that need them all)."""
    return [F.zeros_like(x) if t is None else t for x, t in zip(xs, ts)]


def _plus(*terms: object) -> object:
    """The sum of the non-zero terms (None if all are zero)."""
    present = [t for t in terms if t is not None]
    if not present:
        return None
    total = present[0]
    for t in present[1:]:
        total = F.add(total, t)
    return total


def _scaled(t: object, factor: Callable[[], object]) -> object:
    return None if t is None else F.mul(t, factor())


# --------------------------------------------------------------------------- zero tangents


@jvp_rule(ops.Sign, ops.FloorDiv, ops.StopGradient, ops.Equal, ops.NotEqual, ops.Less,
          ops.LessEqual, ops.Greater, ops.GreaterEqual, ops.ArgMax, ops.RandomBits,
          ops.MaxPool2dIndices)
def zero(op, out, xs, ts):  # noqa: ANN001, ANN201
    """Exactly zero: integer/bool outputs, piecewise-constant ops, stop_gradient."""
    return None


# --------------------------------------------------------------------------- linear ops


@jvp_rule(ops.Neg, ops.Reshape, ops.Transpose, ops.BroadcastTo, ops.Slice, ops.Sum)
def _(op, out, xs, ts): return P.bind(op, ts[0])  # noqa: E704, ANN001, ANN202


@jvp_rule(ops.Pad)
def _(op, out, xs, ts):  # noqa: ANN001, ANN202
    # the padding value is a constant: its tangent is 0 wherever the pad writes it
    return P.bind(dataclasses.replace(op, value=0.0), ts[0])


@jvp_rule(ops.Concatenate)
def _(op, out, xs, ts): return P.bind(op, *_tangents(xs, ts))  # noqa: E704, ANN001, ANN202


@jvp_rule(ops.Gather, ops.ScatterAdd)
def _(op, out, xs, ts): return P.bind(op, ts[0], xs[1])  # noqa: E704, ANN001, ANN202


@jvp_rule(ops.MatMul, ops.Conv2d, ops.Conv2dBackwardInput, ops.Conv2dBackwardWeight)
def _(op, out, xs, ts):  # noqa: ANN001, ANN202
    # bilinear: d(a ∘ b) = da ∘ b + a ∘ db
    (a, b), (ta, tb) = xs, ts
    return _plus(None if ta is None else P.bind(op, ta, b),
                 None if tb is None else P.bind(op, a, tb))


@jvp_rule(ops.Cast)
def _(op, out, xs, ts):  # noqa: ANN001, ANN202
    return F.astype(ts[0], op.dtype) if is_float(xs[0].dtype) else None


# --------------------------------------------------------------------------- elementwise


@jvp_rule(ops.Abs)
def _(op, out, xs, ts): return F.mul(ts[0], F.sign(xs[0]))  # noqa: E704, ANN001, ANN202


@jvp_rule(ops.Exp)
def _(op, out, xs, ts): return F.mul(ts[0], out)  # noqa: E704, ANN001, ANN202


@jvp_rule(ops.Log)
def _(op, out, xs, ts): return F.div(ts[0], xs[0])  # noqa: E704, ANN001, ANN202


@jvp_rule(ops.Log1p)
def _(op, out, xs, ts): return F.div(ts[0], F.add(xs[0], 1.0))  # noqa: E704, ANN001, ANN202


@jvp_rule(ops.Expm1)
def _(op, out, xs, ts): return F.mul(ts[0], F.add(out, 1.0))  # noqa: E704, ANN001, ANN202


@jvp_rule(ops.Sqrt)
def _(op, out, xs, ts): return F.div(F.mul(ts[0], 0.5), out)  # noqa: E704, ANN001, ANN202


@jvp_rule(ops.Sin)
def _(op, out, xs, ts): return F.mul(ts[0], F.cos(xs[0]))  # noqa: E704, ANN001, ANN202


@jvp_rule(ops.Cos)
def _(op, out, xs, ts): return F.neg(F.mul(ts[0], F.sin(xs[0])))  # noqa: E704, ANN001, ANN202


@jvp_rule(ops.Tanh)
def _(op, out, xs, ts): return F.mul(ts[0], F.sub(1.0, F.mul(out, out)))  # noqa: E704, ANN001, ANN202


@jvp_rule(ops.Erf)
def _(op, out, xs, ts):  # noqa: ANN001, ANN202
    x = xs[0]
    return F.mul(ts[0], F.mul(2.0 / math.sqrt(math.pi), F.exp(F.neg(F.mul(x, x)))))


@jvp_rule(ops.Add)
def _(op, out, xs, ts): return _plus(*ts)  # noqa: E704, ANN001, ANN202


@jvp_rule(ops.Sub)
def _(op, out, xs, ts):  # noqa: ANN001, ANN202
    return _plus(ts[0], None if ts[1] is None else F.neg(ts[1]))


@jvp_rule(ops.Mul)
def _(op, out, xs, ts):  # noqa: ANN001, ANN202
    (a, b), (ta, tb) = xs, ts
    return _plus(_scaled(ta, lambda: b), _scaled(tb, lambda: a))


@jvp_rule(ops.Div)
def _(op, out, xs, ts):  # noqa: ANN001, ANN202
    (_, b), (ta, tb) = xs, ts
    return _plus(None if ta is None else F.div(ta, b),
                 None if tb is None else F.neg(F.div(F.mul(tb, out), b)))


@jvp_rule(ops.Mod)
def _(op, out, xs, ts):  # noqa: ANN001, ANN202
    # a mod b = a - floor(a / b) * b, the floor piecewise constant
    (a, b), (ta, tb) = xs, ts
    return _plus(ta, None if tb is None else F.neg(F.mul(tb, F.floor_divide(a, b))))


@jvp_rule(ops.Pow)
def _(op, out, xs, ts):  # noqa: ANN001, ANN202
    # the VJP's conventions: b * a**(b-1) kept finite where b == 0 (the term is 0
    # there); d/db = log(a) * out taken as 0 at a == 0
    (a, b), (ta, tb) = xs, ts
    return _plus(
        _scaled(ta, lambda: F.mul(b, F.power(a, F.where(F.equal(b, 0.0), 1.0, F.sub(b, 1.0))))),
        _scaled(tb, lambda: F.mul(F.log(F.where(F.equal(a, 0.0), 1.0, a)), out)))


def _choose(a, b, ta, tb, first_wins):  # noqa: ANN001, ANN202
    # ties take the mean of the two tangents, as the VJP shares the gradient (and JAX)
    weight = F.astype(F.where(first_wins, 1.0, F.where(F.equal(a, b), 0.5, 0.0)), a.dtype)
    return _plus(_scaled(ta, lambda: weight), _scaled(tb, lambda: F.sub(1.0, weight)))


@jvp_rule(ops.Maximum)
def _(op, out, xs, ts): return _choose(*xs, *ts, F.greater(*xs))  # noqa: E704, ANN001, ANN202


@jvp_rule(ops.Minimum)
def _(op, out, xs, ts): return _choose(*xs, *ts, F.less(*xs))  # noqa: E704, ANN001, ANN202


@jvp_rule(ops.Where)
def _(op, out, xs, ts):  # noqa: ANN001, ANN202
    _, tx, ty = ts
    zero_ = F.full((), 0, out.dtype, like=out)
    return F.where(xs[0], zero_ if tx is None else tx, zero_ if ty is None else ty)


# --------------------------------------------------------------------------- reductions


@jvp_rule(ops.Max)
def _(op, out, xs, ts):  # noqa: ANN001, ANN202
    # the tangent at the maxima, shared evenly among ties (the VJP's convention)
    x = xs[0]
    keep_shape = tuple(1 if i in op.axes else d for i, d in enumerate(x.shape))
    hit = F.astype(F.equal(x, F.reshape(out, keep_shape)), x.dtype)
    total = ops.Sum(op.axes, op.keepdims)
    return F.div(P.bind(total, F.mul(hit, ts[0])), P.bind(total, hit))


# --------------------------------------------------------------------------- attention


@jvp_rule(ops.Attention)
def _(op, out, xs, ts):  # noqa: ANN001, ANN202
    # out = P v with P = softmax(s), s = scale·q kᵀ + bias: d out = P dv + (dP) v, and
    # dP = P ⊙ (ds − rowsum(P ⊙ ds)). P comes from the op itself, as attention to the
    # identity (v = I): exact, masks and empty rows included, at the cost of a T x S
    # value (forward mode through attention is not the fast path).
    q, k, v, *bias = xs
    tq, tk, tv, *tbias = _tangents(xs, ts)
    heads_first = op.layout == "bhtd"
    s_len = k.shape[2] if heads_first else k.shape[1]
    eye = np.eye(s_len, dtype=np.float32).reshape(  # exact in every float dtype
        (1, 1, s_len, s_len) if heads_first else (1, s_len, 1, s_len))
    eye = F.broadcast_to(F.astype(out.trace.lift(eye), v.dtype),
                         _identity_shape(k, s_len, heads_first))
    probs = P.bind(op, q, k, eye, *bias)  # [B, H, T, S] or [B, T, H, S]
    if not heads_first:  # to [B, H, T, S] (a bias is [B, H, T, S] in both layouts)
        probs = F.transpose(probs, (0, 2, 1, 3))
        q, k, v, tq, tk, tv = (F.transpose(a, (0, 2, 1, 3)) for a in (q, k, v, tq, tk, tv))
    kt, tkt = F.swapaxes(k, -1, -2), F.swapaxes(tk, -1, -2)
    ds = F.mul(op.scale, F.add(F.matmul(tq, kt), F.matmul(q, tkt)))
    if tbias:
        ds = F.add(ds, tbias[0])
    pds = F.mul(probs, F.where(F.equal(probs, 0.0), 0.0, ds))  # unseen keys: no tangent
    dp = F.sub(pds, F.mul(probs, F.sum(pds, axis=-1, keepdims=True)))
    tangent = F.add(F.matmul(probs, tv), F.matmul(dp, v))
    return tangent if heads_first else F.transpose(tangent, (0, 2, 1, 3))


def _identity_shape(k: Tracer, s_len: int, heads_first: bool) -> tuple[int, ...]:
    b, h = (k.shape[0], k.shape[1]) if heads_first else (k.shape[0], k.shape[2])
    return (b, h, s_len, s_len) if heads_first else (b, s_len, h, s_len)


# --------------------------------------------------------------------------- sub-graph ops


@jvp_rule(ops.Fused)
def _(op, out, xs, ts):  # noqa: ANN001, ANN202
    # push the tangents through the sub-graph, inlined: made of primitives again
    sub = op.graph
    wrt = [k for k, t in enumerate(ts) if t is not None]
    forward = jvp_graph(sub, wrt)
    return inline(forward, [*xs, *(ts[k] for k in wrt)])[1]


@jvp_rule(ops.CustomCall)
def _(op, out, xs, ts):  # noqa: ANN001, ANN202
    rule = custom.rule_of(op)
    if rule.jvp is None:
        raise GradError(f"forward mode through {rule.where()} is not defined (as in JAX): "
                        f"its derivative is given only in reverse mode; define it with "
                        f"pyasg.custom_jvp, or differentiate with grad/jacrev")
    return custom.call_jvp(rule, xs, custom.zero_tangents(xs, ts), out.type)


# --------------------------------------------------------------------------- the transform


def _tangent_name(graph: Graph, k: int) -> str:
    return f"tangent.{graph.input_names[k]}"


def jvp_graph(graph: Graph, wrt: Sequence[int] | None = None) -> Graph:
    """Push tangents of inputs `wrt` (positions; default: every float input) forward.

    The new graph's inputs are the old ones followed by one tangent per `wrt` entry
    (named `tangent.<input>`, of the input's type); its outputs are the old ones
    followed by one tangent per output, of the output's type (zeros for an integer or
    bool output, or one no `wrt` input reaches). Node ids are not kept.
    """
    require_graph(graph, "jvp_graph")
    if wrt is None:
        wrt = [k for k, t in enumerate(graph.input_types) if is_float(t.dtype)]
    wrt = positions(wrt, len(graph.inputs), "jvp_graph", "wrt")
    for k in wrt:
        t = graph.input_types[k]
        if not is_float(t.dtype):
            raise GradError(f"jvp_graph: input '{graph.input_names[k]}' has type {t!r}; "
                            f"tangents need float inputs")
    builder = GraphBuilder()
    trace = Trace("jvp", builder=builder)
    tangents: dict[int, Tracer] = {}  # new id of a node -> its tangent (absent: zero)
    seeded: list[bool] = []

    def seed(ctx: Rebuild) -> None:
        # the inputs' tangents are the new inputs; rebuild makes both before any node
        if not seeded:
            seeded.append(True)
            for k, t_id in zip(wrt, ctx.extra_inputs):
                tangents[ctx.env[graph.inputs[k]]] = trace.tracer(t_id)

    def per_node(ctx: Rebuild, i: int, node: Node, inputs: tuple[int, ...]) -> int:
        seed(ctx)
        new = keep(ctx, i, node, inputs)
        in_ts = [tangents.get(j) for j in inputs]
        if new in tangents or not is_float(node.type.dtype) or all(t is None for t in in_ts):
            return new
        rule = JVP_RULES.get(type(node.op))
        if rule is None:
            why = NO_JVP.get(type(node.op), "no forward-mode rule is defined for it")
            raise NoForwardRuleError(f"op '{node.op.name}' cannot be differentiated in "
                                     f"forward mode: {why}", node.source)
        trace.source_override = node.source
        t = rule(node.op, trace.tracer(new), [trace.tracer(j) for j in inputs], in_ts)
        trace.source_override = None
        if t is not None:
            t = trace.lift(t)
            if t.shape != node.type.shape:
                t = F.broadcast_to(t, node.type.shape)
            if t.type != node.type:
                raise GradError(f"internal: the JVP of {node.op.name} gave {t.type!r} for an "
                                f"output of type {node.type!r}", node.source)
            tangents[new] = t
        return new

    def outputs(ctx: Rebuild) -> list[int]:
        seed(ctx)  # when no node was visited: the outputs are inputs or constants
        found = []
        for i in graph.outputs:
            t = tangents.get(ctx.env[i])
            found.append((F.zeros_like(trace.tracer(ctx.env[i])) if t is None else t).node)
        return found

    extra = [(_tangent_name(graph, k), graph.input_types[k]) for k in wrt]
    with trace:
        return rebuild(graph, per_node, builder=builder, extra_inputs=extra,
                       extra_outputs=outputs)


# --------------------------------------------------------------------------- control flow
# Forward mode keeps no activations, so checkpoint's tangent is its body's, a cond's is
# a cond of its branches' tangents (only the branch taken runs), and a scan's a scan
# carrying the tangents beside the values. While_loop has none yet (NO_JVP above).


def _body_jvp(body: Graph, xs: Sequence[Tracer], ts: Sequence[Tracer | None],
              index: int) -> tuple[Graph, list[Tracer]]:
    """The forward-mode graph of `body` in its float inputs, and the tracers it takes:
    `xs`, then one tangent per float input (zeros where none is given); its output
    `len(body.outputs) + index` is output `index`'s tangent."""
    wrt = [k for k, t in enumerate(body.input_types) if is_float(t.dtype)]
    tangents = [F.zeros_like(xs[k]) if ts[k] is None else ts[k] for k in wrt]
    return jvp_graph(body, wrt), list(xs) + tangents


@jvp_rule(ops.Remat)
def _(op, out, xs, ts):  # noqa: ANN001, ANN202
    graph, args = _body_jvp(op.body, xs, ts, op.index)
    return inline(graph, args)[len(op.body.outputs) + op.index]


@jvp_rule(ops.Cond)
def _(op, out, xs, ts):  # noqa: ANN001, ANN202
    pred, operands, op_ts = xs[0], xs[1:], ts[1:]
    (on_true, args), (on_false, _) = (_body_jvp(branch, operands, op_ts, op.index)
                                      for branch in (op.true_branch, op.false_branch))
    branches = (on_true, on_false)  # same input types: the same tracers for both
    n = len(op.true_branch.outputs)
    tangent = dataclasses.replace(op, true_branch=branches[0], false_branch=branches[1],
                                  index=n + op.index)
    return P.bind(tangent, pred, *args)


@jvp_rule(ops.Scan)
def _(op, out, xs, ts):  # noqa: ANN001, ANN202
    """A scan that carries the tangents beside the values: its body is the body's
    forward-mode graph with its consts, carries and scanned arrays each followed by their
    float members' tangents (zeros where none is given); its outputs are the carries and
    their tangents, then the ys and theirs."""
    nc, ncar, body = op.n_consts, op.n_carry, op.body
    n_in, n_out = len(body.inputs), len(body.outputs)
    groups = (range(nc), range(nc, nc + ncar), range(nc + ncar, n_in))
    floats = [[k for k in g if is_float(body.input_types[k].dtype)] for g in groups]
    ranked = [k for f in floats for k in f]  # the tangent of input k is n_in + its rank
    forward = jvp_graph(body, ranked)
    order = [k for g, f in zip(groups, floats)
             for k in [*g, *(n_in + ranked.index(j) for j in f)]]
    wrapper = Trace("scan_jvp")
    with wrapper:
        ins = {k: wrapper.new_input(f"x{k}", forward.input_types[k], False) for k in order}
        outs = inline(forward, [ins[k] for k in range(len(forward.inputs))])
        carry_ts = [n_out + k for k in range(ncar) if is_float(body.output_types[k].dtype)]
        picked = [*range(ncar), *carry_ts, *range(ncar, n_out),
                  *(n_out + k for k in range(ncar, n_out))]
        new_body = wrapper.builder.build([wrapper.lift(outs[k]).node for k in picked])
    args = list(xs) + [F.zeros_like(xs[k]) if ts[k] is None else ts[k] for k in ranked]
    n_carry = ncar + len(floats[1])
    index = (ncar + floats[1].index(nc + op.index) if op.index < ncar
             else n_carry + (n_out - ncar) + (op.index - ncar))
    tangent = dataclasses.replace(op, body=new_body, n_consts=nc + len(floats[0]),
                                  n_carry=n_carry, index=index)
    return P.bind(tangent, *(args[k] for k in order))
