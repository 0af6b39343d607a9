"""The one rebuild walker every graph-to-graph transform uses: `rebuild` and `copy_into`.

`rebuild(graph, per_node)` makes a new graph node by node, in topological order,
through a hash-consing `GraphBuilder`: each live node is offered to `per_node`, which
returns the id of its replacement in the new graph (by default the same op on the
rebuilt inputs, with its name and source). Inputs can be retyped, nodes no output
needs are dropped, and common subexpressions merge on the way, so a transform is
only its per-node rule. `copy_into` records a graph's nodes into a builder that
already holds other nodes (inlining).

>>> import pyasg, numpy as np
>>> from pyasg.asg.types import TensorType
>>> g = pyasg.make_graph(lambda x: pyasg.exp(x).sum())(np.ones(3, np.float32))
>>> rebuild(g, input_types=[TensorType((5,))]).input_types
(f32[5],)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from pyasg.asg.graph import Graph, GraphBuilder, Node, prune
from pyasg.asg.ops.base import Input, Op
from pyasg.asg.types import TensorType
from pyasg.errors import ShapeError


@dataclass
class Rebuild:
    """What a per-node rule sees: the old graph, the builder of the new one, and `env`,
    the new id of every old node rebuilt so far."""

    graph: Graph
    builder: GraphBuilder
    env: dict[int, int] = field(default_factory=dict)
    #: The new ids of the `extra_inputs` given to `rebuild`, in order.
    extra_inputs: list[int] = field(default_factory=list)

    def add(self, op: Op, inputs: Sequence[int], like: Node) -> int:
        """Record `op` on new-graph ids `inputs`, with the name and source of `like`."""
        return self.builder.add(op, inputs, like.name, like.source)


#: A per-node rule: (context, old id, old node, new ids of its inputs) -> new id.
PerNode = Callable[[Rebuild, int, Node, tuple[int, ...]], int]


def keep(ctx: Rebuild, i: int, node: Node, inputs: tuple[int, ...]) -> int:
    """The default rule: the same op on the rebuilt inputs."""
    return ctx.add(node.op, inputs, node)


def rebuild(graph: Graph, per_node: PerNode = keep,
            input_types: Sequence[TensorType] | None = None, *,
            builder: GraphBuilder | None = None,
            extra_inputs: Sequence[tuple[str, TensorType]] = (),
            extra_outputs: Callable[[Rebuild], Sequence[int]] | None = None) -> Graph:
    """A new graph from `graph`, each live node replaced by what `per_node` returns.

    `input_types` retypes the inputs (every node's type is then re-derived by its
    shape rule); the new graph keeps the inputs in order and drops dead nodes.
    A transform that adds inputs and outputs (forward mode: the tangents) names the
    new inputs in `extra_inputs` (appended after the old ones, their ids in
    `Rebuild.extra_inputs`) and returns the new outputs' ids from `extra_outputs`,
    called after the last node; `builder`, an empty `GraphBuilder`, is the one to
    record into (a trace that records on it lets a rule use the array functions).
    """
    types = graph.input_types if input_types is None else tuple(input_types)
    if len(types) != len(graph.inputs):
        raise ShapeError(f"the graph has {len(graph.inputs)} inputs, got {len(types)} types")
    ctx = Rebuild(graph, GraphBuilder() if builder is None else builder)
    for i, t in zip(graph.inputs, types):
        node = graph.nodes[i]
        ctx.env[i] = ctx.builder.add_input(node.op.path, t, node.source)
    ctx.extra_inputs = [ctx.builder.add_input(path, t) for path, t in extra_inputs]
    for i in graph.live_ids:
        if i in ctx.env:
            continue
        node = graph.nodes[i]
        if isinstance(node.op, Input):
            raise ShapeError(f"input node %{i} ({node.op.path}) is not listed among the "
                             f"graph's inputs")
        ctx.env[i] = per_node(ctx, i, node, tuple(ctx.env[j] for j in node.inputs))
    outputs = [ctx.env[i] for i in graph.outputs]
    if extra_outputs is not None:
        outputs += list(extra_outputs(ctx))
    return prune(ctx.builder.build(outputs))


def copy_into(builder: GraphBuilder, graph: Graph, feeds: Mapping[int, int]) -> dict[int, int]:
    """Record every live node of `graph` into `builder`, its inputs fed by `feeds` (input
    id -> id in the builder); returns the builder id of every copied node.

    >>> import pyasg, numpy as np
    >>> g = pyasg.make_graph(lambda x: pyasg.exp(x))(np.ones(2, np.float32))
    >>> b = GraphBuilder(); x = b.add_input("y", TensorType((2,)))
    >>> env = copy_into(b, g, {g.inputs[0]: x}); b.build([env[g.outputs[0]]]).output_types
    (f32[2],)
    """
    env = dict(feeds)
    for i in graph.live_ids:
        if i not in env:
            node = graph.nodes[i]
            env[i] = builder.add(node.op, [env[j] for j in node.inputs], node.name, node.source)
    return env
