"""`find_groups`: the driver that grows each group backwards from its root by the rules.

Roots are tried from the last node back; a root a start rule accepts gets a group,
and the group's producers are offered to the grow rules, largest id first (so every
reader of a node inside the group is decided before the node); the first grow rule
that answers proposes how the node joins, and the join happens unless a break rule
refuses it. A finished group that no break rule drops is made.

>>> import pyasg, numpy as np
>>> g = pyasg.make_graph(lambda x: pyasg.exp(x) * 2.0)(np.ones(3, np.float32))
>>> [[g.nodes[i].op.name for i in group] for group in find_groups(g)]
[['exp', 'constant', 'mul']]
>>> find_groups(g, disabled={"elementwise producer"})
[]
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from pyasg.asg.graph import Graph
from pyasg.compile.protocol import FuseOptions
from pyasg.transforms.fuse.rules import Rule, without
from pyasg.transforms.fuse.state import Fusion, Group

#: The options `fuse` uses when none are given.
DEFAULT_OPTIONS = FuseOptions()


def find_groups(graph: Graph, options: FuseOptions = DEFAULT_OPTIONS,
                disabled: Collection[str] = frozenset()) -> list[list[int]]:
    """The groups `fuse` would make, by `RULES` less the rules named in `disabled`: each
    a sorted list of node ids, its root last, the groups in root order.

    Scalar constants a group reads are listed in it too (they may be in several), and
    so are the values it computes again (copies) and the views a matmul reads its
    operands through (they stay outside as well).
    """
    rules = without(disabled)
    starts = [r for r in rules if r.stage == "start"]
    grows = [r for r in rules if r.stage == "grow"]
    breaks = [r for r in rules if r.stage == "break" and "group" not in r.judges]
    breaks_of = {kind: [r for r in breaks if kind in r.judges]  # in table order
                 for kind in {k for r in breaks for k in r.judges}}
    drops = [r for r in rules if "group" in r.judges]
    f = Fusion.of(graph, options)
    for root in reversed(graph.live_ids):
        seed = None if root in f.taken else _first(starts, f, root)
        if seed is None:
            continue
        group = Group.start(f, seed)
        while (j := group.next()) is not None:
            join = _first(grows, f, group, j)
            if join is not None and not _refused(breaks_of.get(join.kind, ()), f, group, join):
                group.add(f, join)
        if not any(r.fn(f, group) for r in drops):
            f.commit(group)
    return sorted(f.groups, key=lambda g: g[-1])


def _first(rules: list[Rule], *args: Any) -> Any:
    """The first answer (not None) of `rules` to `args`."""
    for r in rules:
        answer = r.fn(*args)
        if answer is not None:
            return answer
    return None


def _refused(rules: list[Rule], *args: Any) -> bool:
    """Does any of `rules` refuse (answer true to) `args`?"""
    for r in rules:
        if r.fn(*args):
            return True
    return False
