"""Custom derivatives at the graph level: the table of user rules, their checked calls,
and `inline_custom_calls`, the pass that replaces each `CustomCall` by its sub-graph.

A `CustomCall` node (recorded by `pyasg.custom_vjp` / `pyasg.custom_jvp`) holds the
function's primal sub-graph and the key of a `CustomRule` in `CUSTOM_RULES`: the
user's Python functions, which no graph can hold. The VJP and JVP tables read the
rule through `rule_of`; every call of a user's rule goes through `call_fwd_bwd` or
`call_jvp` here, which check what it returns and name the function when it is wrong.
The compiler calls `inline_custom_calls` before lowering (no backend sees the op):
the values are the primal function's, only the derivatives were custom.

>>> import pyasg, numpy as np
>>> @pyasg.custom_jvp
... def f(x):
...     return pyasg.exp(x)
>>> _ = f.defjvp(lambda p, t: (f(*p), t[0] * 2.0))
>>> g = pyasg.make_graph(f)(np.ones(2)); h = inline_custom_calls(g)
>>> [g[i].op.name for i in g.live_ids], [h[i].op.name for i in h.live_ids]
(['input', 'custom_call'], ['input', 'exp'])
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pyasg.array import functional as F
from pyasg.array import primitives as P
from pyasg.asg.graph import Graph, prune, require_graph
from pyasg.asg.ops import CustomCall
from pyasg.asg.rewrite import Rebuild, copy_into, keep, rebuild
from pyasg.asg.types import TensorType, is_float
from pyasg.errors import CustomDerivativeError, PyasgError, shown
from pyasg.trace.tracer import Trace, Tracer, current_trace
from pyasg.trace.tree import LEAF, TreeDef, flatten_with_paths, unflatten


@dataclass(frozen=True, eq=False)
class CustomRule:
    """The user's functions behind the `CustomCall` nodes of one custom function at one
    argument structure: `fwd`/`bwd` (custom_vjp) or `jvp` (custom_jvp)."""

    function: str
    source: str | None
    #: The structure of the positional arguments (a tuple), and each argument's name.
    in_tree: TreeDef
    names: tuple[str, ...]
    #: The structure and types of the function's output; a structure other than one
    #: array travels as ONE flat node, its leaves concatenated (`pack`, `unpack`).
    out_tree: TreeDef = LEAF
    out_types: tuple[TensorType, ...] = ()
    fwd: Callable | None = None
    bwd: Callable | None = None
    jvp: Callable | None = None

    @property
    def kind(self) -> str:
        return "custom_vjp" if self.bwd is not None else "custom_jvp"

    def where(self) -> str:
        return f"{self.kind} function {shown(self.function)}" + (
            f" (defined at {self.source})" if self.source else "")


#: rule key (the `rule` attribute of a CustomCall) -> the user's functions
CUSTOM_RULES: dict[int, CustomRule] = {}
_keys = itertools.count()


def register(rule: CustomRule) -> int:
    """Keep `rule` for the life of the process; its key goes into `CustomCall.rule`."""
    key = next(_keys)
    CUSTOM_RULES[key] = rule
    return key


def rule_of(op: CustomCall) -> CustomRule:
    """The rule a CustomCall node names; one made in another process is unknown here."""
    rule = CUSTOM_RULES.get(op.rule)
    if rule is None:
        raise CustomDerivativeError(f"the graph calls custom-derivative function "
                                    f"{shown(op.function)} (rule {op.rule}), whose rules are "
                                    f"not defined in this process")
    return rule


# --------------------------------------------------------------------------- checked calls


def _args(rule: CustomRule, leaves: Sequence[object]) -> tuple:
    return tuple(unflatten(rule.in_tree, list(leaves)))


def packed_graph(graph: Graph) -> Graph:
    """`graph` with its outputs (float arrays of one dtype) as one flat output, their
    elements concatenated in order: the sub-graph of a custom call with several
    outputs (an op has one output; one node keeps the user's bwd seeing all the
    output cotangents at once, as it must when it is not linear)."""
    trace = Trace("pack", base=graph)
    with trace:
        parts = [F.reshape(trace.tracer(i), (-1,)) for i in graph.outputs]
        flat = F.concatenate(parts) if parts else F.full((0,), 0.0)
    return prune(trace.builder.build([trace.lift(flat).node]))


def _out_types(rule: CustomRule, node: TensorType) -> tuple[TensorType, ...]:
    """The output leaves' types of a call whose node has type `node`: the node's own
    for one output; else the traced shapes in the node's dtype (a transform may have
    retyped the node since, e.g. float32 to float64)."""
    if rule.out_tree.kind == "leaf":
        return (node,)
    types = tuple(TensorType(t.shape, node.dtype) for t in rule.out_types)
    if sum(t.size for t in types) != node.size:
        raise CustomDerivativeError(f"{rule.where()}: its call has type {node!r}, which does "
                                    f"not hold its outputs {types!r}", rule.source)
    return types


def pack(rule: CustomRule, value: object, what: str, node: TensorType) -> Tracer:
    """`value`, of the function's output structure (an output, a tangent), checked and
    made the array of the call's node (of type `node`)."""
    types = _out_types(rule, node)
    if rule.out_tree.kind == "leaf":
        return _fit(rule, value, types[0], what)
    try:
        pairs, tree = flatten_with_paths(value)
    except PyasgError as e:
        raise CustomDerivativeError(f"{rule.where()}: {what}: {e.message}", rule.source) \
            from None
    if tree != rule.out_tree:
        raise CustomDerivativeError(f"{rule.where()}: {what} has structure {tree!r}, the "
                                    f"function's output {rule.out_tree!r}", rule.source)
    return F.concatenate([F.reshape(_fit(rule, v, t, f"{what} at {shown(p or '(root)')}"),
                                    (-1,)) for (p, v), t in zip(pairs, types)])


def unpack(rule: CustomRule, flat: Tracer) -> object:
    """The node's one array (an output, a cotangent) in the function's output structure."""
    if rule.out_tree.kind == "leaf":
        return flat
    leaves, start = [], 0
    for t in _out_types(rule, flat.type):
        piece = P.slice_axes(flat, [start], [start + t.size], [1])
        leaves.append(F.reshape(piece, t.shape))
        start += t.size
    return unflatten(rule.out_tree, leaves)


def _fit(rule: CustomRule, value: object, like: TensorType, what: str) -> Tracer:
    """`value` (a derivative the user's rule returned) as a tracer of type `like`."""
    trace = current_trace()
    try:
        t = trace.lift(value)
    except Exception as e:  # noqa: BLE001 - any unusable value: say which rule gave it
        raise CustomDerivativeError(f"{rule.where()}: {what} is {shown(value, with_type=True)}, "
                                    f"not an array ({e})", rule.source) from None
    if t.weak and t.shape == like.shape and is_float(t.dtype) and is_float(like.dtype):
        t = F.astype(t, like.dtype)
    if t.type != like:
        raise CustomDerivativeError(f"{rule.where()}: {what} has type {t.type!r}, but it must "
                                    f"have type {like!r}", rule.source)
    return t


def call_fwd_bwd(rule: CustomRule, xs: Sequence[Tracer], g: Tracer) -> list[Tracer | None]:
    """The input cotangents of a custom_vjp call: `bwd(residuals, g)`, residuals from
    `fwd(*args)`; one per leaf of the arguments (None: no gradient there)."""
    got = rule.fwd(*_args(rule, xs))
    if not (isinstance(got, (tuple, list)) and len(got) == 2):
        raise CustomDerivativeError(f"{rule.where()}: fwd must return (output, residuals), "
                                    f"got {shown(got, with_type=True)}", rule.source)
    pack(rule, got[0], "the output fwd returned", g.type)
    cts = rule.bwd(got[1], unpack(rule, g))
    n = len(rule.names)
    if not (isinstance(cts, (tuple, list)) and len(cts) == n):
        raise CustomDerivativeError(f"{rule.where()}: bwd must return a tuple of {n} "
                                    f"cotangent(s), one per argument ({', '.join(rule.names)}), "
                                    f"got {shown(cts, with_type=True)}", rule.source)
    out: list[Tracer | None] = []
    leaf = iter(xs)
    for name, arg_tree, ct in zip(rule.names, rule.in_tree.children, cts):
        primals = [next(leaf) for _ in range(arg_tree.num_leaves)]
        if ct is None:  # a zero cotangent for the whole argument
            out.extend([None] * len(primals))
            continue
        pairs, tree = flatten_with_paths(ct, name)
        if tree != arg_tree:
            raise CustomDerivativeError(f"{rule.where()}: bwd's cotangent for argument "
                                        f"{shown(name)} has structure {tree!r}, the argument "
                                        f"{arg_tree!r}", rule.source)
        for (path, c), x in zip(pairs, primals):
            if not is_float(x.dtype):
                if c is not None:
                    raise CustomDerivativeError(f"{rule.where()}: bwd gave a cotangent for "
                                                f"{shown(path)}, an integer argument "
                                                f"({x.type!r}); give None there", rule.source)
                out.append(None)
            else:
                out.append(_fit(rule, c, x.type, f"bwd's cotangent for {shown(path)}"))
    return out


def call_jvp(rule: CustomRule, xs: Sequence[Tracer], ts: Sequence[Tracer], out: TensorType
             ) -> Tracer:
    """The output tangent of a custom_jvp call: `jvp(primals, tangents)[1]`, checked."""
    got = rule.jvp(_args(rule, xs), _args(rule, ts))
    if not (isinstance(got, (tuple, list)) and len(got) == 2):
        raise CustomDerivativeError(f"{rule.where()}: the jvp rule must return (output, "
                                    f"tangent), got {shown(got, with_type=True)}", rule.source)
    pack(rule, got[0], "the output the jvp rule returned", out)
    return pack(rule, got[1], "the tangent the jvp rule returned", out)


def zero_tangents(xs: Sequence[Tracer], ts: Sequence[Tracer | None]) -> list[Tracer]:
    """`ts` with each missing tangent a zero array of its primal's type (integers too:
    pyasg's tangent of an integer has the integer's dtype)."""
    return [F.zeros_like(x) if t is None else t for x, t in zip(xs, ts)]


# --------------------------------------------------------------------------- lowering


def _inline(ctx: Rebuild, i: int, node: object, inputs: tuple[int, ...]) -> int:
    if not isinstance(node.op, CustomCall):
        return keep(ctx, i, node, inputs)
    sub = inline_custom_calls(node.op.graph)
    env = copy_into(ctx.builder, sub, dict(zip(sub.inputs, inputs)))
    return env[sub.outputs[0]]


def inline_custom_calls(graph: Graph) -> Graph:
    """`graph` with every CustomCall replaced by its primal sub-graph (nested ones too):
    the same values, the custom derivatives dropped. The compiler does this before
    lowering; call it yourself to save such a graph on purpose."""
    graph = require_graph(graph, "inline_custom_calls")
    if not any(isinstance(graph.nodes[i].op, CustomCall) for i in graph.live_ids):
        return graph
    return rebuild(graph, _inline)


__all__ = ["CUSTOM_RULES", "CustomRule", "call_fwd_bwd", "call_jvp", "inline_custom_calls",
           "pack", "packed_graph", "register", "rule_of", "unpack", "zero_tangents"]
