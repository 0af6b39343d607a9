"""`fuse` and `unfuse`: the groups become `Fused` nodes and back, through the rebuild walker.

`fuse` rebuilds the graph with each group's root replaced by one `Fused` node on the
values the group reads from outside; what the group computes inside is then needed
by nothing outside it and `rebuild` drops it (a copy, or a value read outside as
well, stays). `unfuse` inlines every fused node's sub-graph again (`copy_into`).

>>> import pyasg, numpy as np
>>> g = pyasg.make_graph(lambda x: (x * x).sum())(np.ones(3, np.float32))
>>> print(fuse(g).nodes[fuse(g).outputs[0]].op)
fused[mul, sum]
"""

from __future__ import annotations

from collections.abc import Collection

from pyasg.asg.graph import Graph, GraphBuilder, Node
from pyasg.asg.ops import Fused, Input
from pyasg.asg.rewrite import Rebuild, copy_into, keep, rebuild
from pyasg.compile.protocol import FuseOptions
from pyasg.errors import ShapeError
from pyasg.transforms.fuse.driver import DEFAULT_OPTIONS, find_groups


def fuse(graph: Graph, options: FuseOptions = DEFAULT_OPTIONS,
         disabled: Collection[str] = frozenset()) -> Graph:
    """Replace every group of `find_groups` (same `options` and `disabled`) by one
    `Fused` node: its sub-graph is the group, its inputs the values the group reads
    from outside (in id order), its value the root's.

    >>> import pyasg, numpy as np
    >>> g = pyasg.make_graph(lambda x: pyasg.exp(x * 2.0 + 1.0))(np.ones(3, np.float32))
    >>> [g2.nodes[i].op.name for g2 in [fuse(g)] for i in g2.live_ids]
    ['input', 'fused']
    """
    groups = find_groups(graph, options, disabled)
    if not groups:
        return graph
    root_of = {group[-1]: group for group in groups}

    def per_node(ctx: Rebuild, i: int, node: Node, inputs: tuple[int, ...]) -> int:
        if i not in root_of:
            return keep(ctx, i, node, inputs)
        sub, external = subgraph(graph, root_of[i])
        return ctx.add(Fused(sub), [ctx.env[j] for j in external], node)

    return rebuild(graph, per_node)


def subgraph(graph: Graph, group: list[int]) -> tuple[Graph, list[int]]:
    """`group` (sorted ids, root last) as a graph of its own, and the outer ids of the
    values it reads from outside, in order: its inputs ``in0``, ``in1``, ...

    >>> import pyasg, numpy as np
    >>> g = pyasg.make_graph(lambda x: pyasg.exp(x) * 2.0)(np.ones(3, np.float32))
    >>> sub, external = subgraph(g, find_groups(g)[0])
    >>> sub.input_names, external == list(g.inputs)
    (('in0',), True)
    """
    nodes = graph.nodes
    inside = set(group)
    external = sorted({j for i in group for j in nodes[i].inputs if j not in inside})
    root = group[-1]
    live = {root}  # what the root reads inside the group (all of it, as groups grow)
    for i in reversed(group):
        if i in live:
            live.update(j for j in nodes[i].inputs if j in inside)
    # numbered as `rebuild` would number the group with its reads as inputs: the inputs
    # first, then the live members in id order, hash-consed (equal literals merge); as
    # only live members are added, nothing is left for `prune` to drop
    builder = GraphBuilder()
    env = {j: builder.add_input(f"in{k}", nodes[j].type) for k, j in enumerate(external)}
    for i in group:
        if i in live:
            node = nodes[i]
            if isinstance(node.op, Input):
                raise ShapeError(f"input node %{i} ({node.op.path}) is not listed among the "
                                 f"graph's inputs")
            env[i] = builder.add(node.op, [env[j] for j in node.inputs], node.name, node.source)
    return builder.build([env[root]]), external


def unfuse(graph: Graph) -> Graph:
    """Inline every `Fused` node's sub-graph again (the inverse of `fuse`).

    >>> import pyasg, numpy as np
    >>> g = pyasg.make_graph(lambda x: pyasg.exp(x) * 2.0)(np.ones(3, np.float32))
    >>> unfuse(fuse(g)) == g
    True
    """
    def per_node(ctx: Rebuild, i: int, node: Node, inputs: tuple[int, ...]) -> int:
        if not isinstance(node.op, Fused):
            return keep(ctx, i, node, inputs)
        sub = node.op.graph
        return copy_into(ctx.builder, sub, dict(zip(sub.inputs, inputs)))[sub.outputs[0]]

    return rebuild(graph, per_node)
