"""simplify: dead code, common subexpressions, constant folding and trivial algebra.

The graph is rebuilt node by node through a hash-consing builder (which merges
common subexpressions); each node is first offered to a small table of rewrites.
A rewrite returns an existing node or builds one node in place of one, and dead
nodes are dropped at the end, so the result is never larger than the input.
`StopGradient` is kept: it is free to run and the graph may be differentiated later.

>>> import pyasg, numpy as np
>>> g = pyasg.make_graph(lambda x: (x * 1.0 + 0.0).reshape(3).reshape(3))(np.ones(3))
>>> [n.op.name for n in simplify(g).nodes.values()]
['input']
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np

from pyasg.asg import ops
from pyasg.asg.graph import Graph, Node
from pyasg.asg.rewrite import Rebuild, rebuild
from pyasg.kernels.reference import evaluate
from pyasg.transforms.checks import require_graph

#: Fold a node whose inputs are all constants when its result is at most this many
#: elements, or no larger than its inputs together (folding must not bloat the graph).
FOLD_LIMIT = 4096


class _Rewriter:
    """The per-node rule of `simplify` (see `pyasg.asg.rewrite.rebuild`): each node is
    offered to the rewrites of its op class, then to constant folding."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.users = graph.users

    def __call__(self, ctx: Rebuild, i: int, node: Node, inputs: tuple[int, ...]) -> int:
        self.b = ctx.builder
        self.current = i  # the original id of the node being rewritten
        return self.rewrite(node, inputs)

    def const_value(self, i: int) -> np.ndarray | None:
        op = self.b.node(i).op
        return op.value if isinstance(op, ops.Constant) else None

    def is_const(self, i: int, v: float) -> bool:
        value = self.const_value(i)
        return value is not None and bool(np.all(value == v))

    def add(self, op: ops.Op, inputs: tuple[int, ...], node: Node) -> int:
        return self.b.add(op, inputs, node.name, node.source)

    def rewrite(self, node: Node, inputs: tuple[int, ...]) -> int:
        for rule in RULES.get(type(node.op), ()):
            found = rule(self, node, inputs)
            if found is not None:
                return found
        folded = self.fold(node, inputs)
        return folded if folded is not None else self.add(node.op, inputs, node)

    def fold(self, node: Node, inputs: tuple[int, ...]) -> int | None:
        # a view of a constant stays a view: folding it would store its elements again
        # (a broadcast scalar as a dense batch-sized array)
        if node.op.fusion_role in ("leaf", "view"):
            return None
        values = [self.const_value(j) for j in inputs]
        if any(v is None for v in values):
            return None
        if node.type.size > max(FOLD_LIMIT, sum(v.size for v in values)):
            return None
        try:
            with np.errstate(all="ignore"):
                result = evaluate(node.op, *values)
        except Exception:  # leave it to fail at run time, at the user's line
            return None
        return self.b.add(ops.Constant.of(result, node.type.dtype), (), node.name, node.source)


Rule = Callable[[_Rewriter, Node, tuple[int, ...]], "int | None"]
RULES: dict[type, list[Rule]] = {}


def rule(*op_classes: type) -> Callable[[Rule], Rule]:
    def register(fn: Rule) -> Rule:
        for cls in op_classes:
            RULES.setdefault(cls, []).append(fn)
        return fn

    return register


def _same_type(r: _Rewriter, node: Node, i: int) -> int | None:
    return i if r.b.type_of(i) == node.type else None


@rule(ops.Add)
def _(r, node, ins):  # noqa: ANN001, ANN202  x + 0, 0 + x
    a, b = ins
    if r.is_const(b, 0):
        return _same_type(r, node, a)
    if r.is_const(a, 0):
        return _same_type(r, node, b)
    return None


@rule(ops.Sub)
def _(r, node, ins):  # noqa: ANN001, ANN202  x - 0
    return _same_type(r, node, ins[0]) if r.is_const(ins[1], 0) else None


@rule(ops.Mul)
def _(r, node, ins):  # noqa: ANN001, ANN202  x * 1, 1 * x
    a, b = ins
    if r.is_const(b, 1):
        return _same_type(r, node, a)
    if r.is_const(a, 1):
        return _same_type(r, node, b)
    return None


@rule(ops.Div, ops.Pow)
def _(r, node, ins):  # noqa: ANN001, ANN202  x / 1, x ** 1
    return _same_type(r, node, ins[0]) if r.is_const(ins[1], 1) else None


@rule(ops.Neg)
def _(r, node, ins):  # noqa: ANN001, ANN202  -(-x)
    inner = r.b.node(ins[0])
    return inner.inputs[0] if isinstance(inner.op, ops.Neg) else None


@rule(ops.Reshape, ops.BroadcastTo, ops.Cast, ops.Slice, ops.Sum, ops.Max, ops.Transpose)
def _(r, node, ins):  # noqa: ANN001, ANN202  an op that changes nothing
    if isinstance(node.op, (ops.Sum, ops.Max)) and node.op.axes:
        return None
    if isinstance(node.op, ops.Slice) and any(s != 1 for s in node.op.steps):
        return None
    if isinstance(node.op, ops.Transpose) and node.op.perm != tuple(range(len(node.op.perm))):
        return None
    return _same_type(r, node, ins[0])


@rule(ops.Reshape)
def _(r, node, ins):  # noqa: ANN001, ANN202  reshape(reshape(x)) -> reshape(x)
    inner = r.b.node(ins[0])
    if isinstance(inner.op, ops.Reshape):
        source = inner.inputs[0]
        if r.b.type_of(source).shape == node.type.shape:
            return source
        return r.add(ops.Reshape(node.type.shape), (source,), node)
    return None


@rule(ops.Transpose)
def _(r, node, ins):  # noqa: ANN001, ANN202  transpose(transpose(x)) -> one transpose
    inner = r.b.node(ins[0])
    if isinstance(inner.op, ops.Transpose):
        perm = tuple(inner.op.perm[p] for p in node.op.perm)
        if perm == tuple(range(len(perm))):
            return inner.inputs[0]
        return r.add(ops.Transpose(perm), (inner.inputs[0],), node)
    return None


def _swaps_last_two(perm: tuple[int, ...]) -> bool:
    n = len(perm)
    return n >= 2 and perm == (*range(n - 2), n - 1, n - 2)


def _transposed(r: _Rewriter, i: int, node: Node) -> int:
    """Node `i` with its last two axes swapped (undoing a transpose that did just that)."""
    inner = r.b.node(i)
    n = len(inner.type.shape)
    if isinstance(inner.op, ops.Transpose) and _swaps_last_two(inner.op.perm):
        return inner.inputs[0]
    return r.add(ops.Transpose((*range(n - 2), n - 1, n - 2)), (i,), node)


@rule(ops.Transpose)
def _(r, node, ins):  # noqa: ANN001, ANN202  (a @ b).T -> b.T @ a.T
    # A weight gradient comes out as (xᵀ g)ᵀ; as gᵀ x it is one GEMM writing the
    # weight's own layout, instead of a GEMM and a strided copy. Only when the product
    # has no other reader (else it would be computed twice).
    inner = r.b.node(ins[0])
    if not (isinstance(inner.op, ops.MatMul) and _swaps_last_two(node.op.perm)):
        return None
    a, b = inner.inputs
    if min(len(r.b.type_of(a).shape), len(r.b.type_of(b).shape)) < 2:
        return None
    if not any(isinstance(r.b.node(k).op, ops.Transpose) and _swaps_last_two(r.b.node(k).op.perm)
               for k in (a, b)):
        return None  # two new transposes: the graph would grow
    source = r.graph.nodes[r.current].inputs[0]
    if len(r.users.get(source, ())) != 1 or source in r.graph.outputs:
        return None
    return r.add(ops.MatMul(), (_transposed(r, b, node), _transposed(r, a, node)), node)


@rule(ops.Scan, ops.Cond, ops.WhileLoop, ops.Remat)
def _(r, node, ins):  # noqa: ANN001, ANN202  a control-flow op's sub-graphs simplified too
    graphs = tuple(_simplified(g) for g in node.op.graphs())
    if graphs == node.op.graphs():
        return None
    return r.add(node.op.with_graphs(*graphs), ins, node)


def simplify(graph: Graph) -> Graph:
    """A graph that computes the same outputs with no more nodes (see the module doc)."""
    require_graph(graph, "simplify")
    return rebuild(graph, _Rewriter(graph))


#: each sub-graph once: the nodes of one loop (one per output) hold the same body
_simplified = lru_cache(maxsize=256)(simplify)
