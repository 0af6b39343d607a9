"""What the fusion rules read and change: `Fusion` (a graph's facts and the groups made so
far), `Group` (one group as it grows from its root) and `Join` (how one node would join).

A rule never edits a group itself: a start or grow rule returns a `Join`, a break
rule may refuse it, and the driver applies it with `Group.add`. The `Join`
constructors below (`computed`, `leaf_read`, `matmul`) are the three ways a node can
sit in a group: computed from values it reads, or a leaf read from outside.

>>> import pyasg, numpy as np
>>> g = pyasg.make_graph(lambda x: pyasg.exp(x) * 2.0)(np.ones(3, np.float32))
>>> f = Fusion.of(g, FuseOptions())
>>> mul = g.outputs[0]; exp, two = g.nodes[mul].inputs
>>> group = Group.start(f, computed(f, mul, "elementwise root"))
>>> group.external == {exp}  # the scalar is a literal, not an input
True
>>> group.next() == max(exp, two), group.next() == min(exp, two), group.next()
(True, True, None)
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

from pyasg.asg.graph import Graph, Node
from pyasg.asg.ops import Constant
from pyasg.compile.protocol import FuseOptions


@dataclass
class Fusion:
    """A graph's facts the rules read (live users, outputs, each node's op and type) and
    the groups made so far."""

    graph: Graph
    options: FuseOptions
    users: dict[int, tuple[int, ...]]
    outputs: frozenset[int]
    #: the graph's nodes by id, as a plain dict: the rules read them thousands of times
    nodes: dict[int, Node] = field(default_factory=dict)
    #: the one-element constants (literals in generated code)
    scalars: frozenset[int] = frozenset()
    groups: list[list[int]] = field(default_factory=list)
    taken: set[int] = field(default_factory=set)  # in a group made so far
    roots: set[int] = field(default_factory=set)  # the values fused nodes produce
    #: values a copy in a group made so far reads from outside: a reader no later
    #: group holds, so they stay values of the outer graph
    pinned: set[int] = field(default_factory=set)

    @classmethod
    def of(cls, graph: Graph, options: FuseOptions) -> Fusion:
        """The facts of `graph` before any group is made."""
        alive = set(graph.live_ids)
        all_users = graph.users
        users = {i: tuple(u for u in all_users[i] if u in alive) for i in graph.live_ids}
        nodes = {i: graph.nodes[i] for i in graph.ids}
        scalars = frozenset(i for i, n in nodes.items()
                            if isinstance(n.op, Constant) and n.type.size == 1)
        return cls(graph, options, users, frozenset(graph.outputs), nodes, scalars)

    def role(self, i: int) -> str:
        """The fusion role node `i`'s op declares (`Op.fusion_role`)."""
        return self.nodes[i].op.fusion_role

    def view_kind(self, i: int) -> str | None:
        """What node `i` does to element positions, if it is a view (`Op.view_kind`)."""
        return self.nodes[i].op.view_kind

    def is_constant(self, i: int) -> bool:
        """Is `i` a literal array baked into the graph?"""
        return isinstance(self.nodes[i].op, Constant)

    def is_scalar_constant(self, i: int) -> bool:
        """A one-element constant: a literal in generated code."""
        return i in self.scalars

    def inner(self, i: int) -> bool:
        """Is `i` computed inside a group made so far (not its root)?"""
        return i in self.taken and i not in self.roots

    def stores(self, t: int) -> bool:
        """Is `t` a transpose that can store the product of the matmul it alone reads
        (the matmul then writes each element at its transposed place)?"""
        if self.view_kind(t) != "permute":
            return False
        mm = self.nodes[t].inputs[0]
        return self.role(mm) == "contraction" and self.users[mm] == (t,) \
            and mm not in self.outputs

    def operand_views(self, mm: int) -> list[tuple[list[int], int]]:
        """Per operand of matmul `mm`: the chain of views it reads through and the value
        at the chain's end. A chain that moves no element (reshapes alone) is left out,
        and so is one that starts at a constant (a literal has no buffer to read). A
        chain ends at a transpose that stores a matmul's product (`stores`): reading
        that product is cheaper than reading through it."""
        found = []
        for x in self.nodes[mm].inputs:
            chain, end = [], x
            while self.role(end) == "view" and not self.stores(end):
                chain.append(end)
                end = self.nodes[end].inputs[0]
            moves = any(self.view_kind(c) in ("permute", "broadcast") for c in chain)
            if not moves or self.is_constant(end):
                chain, end = [], x
            found.append((chain, end))
        return found

    def commit(self, group: Group) -> None:
        """Record `group` as made: its members are taken, its root is a fused value, and
        what its copies read from outside is pinned."""
        self.taken |= group.members
        self.roots.add(group.root)
        inside = group.members | group.copies
        self.pinned |= {k for c in group.copies for k in self.nodes[c].inputs
                        if k not in inside}
        self.groups.append(group.ids)


@dataclass(frozen=True)
class Join:
    """How node `node` would join a group, as the rule `rule` proposes it. Its `kind`:
    "member" (computed in the group), "copy" (computed again in the group, the original
    staying a value of the outer graph) or "literal" (a scalar constant written into the
    group's code, never an input)."""

    node: int
    rule: str
    kind: str = "member"
    #: the values it reads from outside the group: the group's new inputs
    reads: frozenset[int] = frozenset()
    #: the producers to consider next (what it reads that may join too)
    grows: tuple[int, ...] = ()
    head: bool = False  # a reduction or a matmul
    reduction: bool = False  # its producers form its prologue
    leaf: bool = False  # reads its operands from outside: they never join
    stores: bool = False  # the transpose the group's matmul writes through
    copies: frozenset[int] = frozenset()  # views copied in with it (a matmul's operands)


def computed(f: Fusion, j: int, rule: str, kind: str = "member", **flags: bool) -> Join:
    """`j` computed in the group from what it reads, which may join too (scalar constants
    are literals, never inputs)."""
    inputs = f.nodes[j].inputs
    scalars = f.scalars
    return Join(j, rule, kind, frozenset(k for k in inputs if k not in scalars), inputs, **flags)


def leaf_read(f: Fusion, j: int, rule: str, **flags: bool) -> Join:
    """`j` computed in the group from operands read from outside (every one an input)."""
    return Join(j, rule, reads=frozenset(f.nodes[j].inputs), leaf=True, **flags)


def matmul(f: Fusion, j: int, rule: str, views: bool) -> Join:
    """Matmul `j` heading the group, reading its operands from outside: through their
    view chains (copied in) with `views`, else as they are."""
    if not views:
        return leaf_read(f, j, rule, head=True)
    chains = f.operand_views(j)
    return Join(j, rule, reads=frozenset(end for _, end in chains), leaf=True, head=True,
                copies=frozenset(c for chain, _ in chains for c in chain))


@dataclass
class Group:
    """One group as it grows backwards from its root: who is in it and how, what it
    reads from outside (`external`), and the producers still to consider."""

    root: int
    members: set[int] = field(default_factory=set)
    copies: set[int] = field(default_factory=set)
    literals: set[int] = field(default_factory=set)
    external: set[int] = field(default_factory=set)
    depth: dict[int, int] = field(default_factory=dict)  # ops on the longest path to root
    #: with a reduction inside, its prologue runs at the reduction's input coordinates
    #: (the reduction and what it alone reads), the rest at the output's
    prologue: set[int] = field(default_factory=set)
    leaves: set[int] = field(default_factory=set)  # members reading operands from outside
    has_head: bool = False
    store: int | None = None
    _frontier: list[int] = field(default_factory=list)  # a heap of negated ids
    _seen: set[int] = field(default_factory=set)

    @classmethod
    def start(cls, f: Fusion, root: Join) -> Group:
        """A group of the one root, joined as `root` says."""
        group = cls(root.node)
        group.add(f, root)
        return group

    @property
    def ids(self) -> list[int]:
        """Every node the group holds, sorted: its root last."""
        return sorted(self.members | self.literals | self.copies)

    def next(self) -> int | None:
        """The producer to consider next: the largest id, so that every in-group reader
        of a node is decided before the node itself."""
        while self._frontier:
            j = -heapq.heappop(self._frontier)
            if j not in self._seen:
                self._seen.add(j)
                return j
        return None

    def readers(self, f: Fusion, j: int) -> list[int]:
        """The nodes of the group (members or copies) that read `j`."""
        return [u for u in f.users[j] if u in self.members or u in self.copies]

    def in_prologue(self, f: Fusion, j: int) -> list[bool]:
        """For each reader of `j` in the group, whether it is in the prologue."""
        return [u in self.prologue for u in self.readers(f, j)]

    def depth_of(self, f: Fusion, j: int) -> int:
        """`j`'s depth if it joined: one more than its deepest reader's."""
        return 1 + max((self.depth[u] for u in self.readers(f, j) if u in self.depth),
                       default=0)

    def grown(self, join: Join) -> set[int]:
        """What the group would read from outside with `join` applied."""
        return (self.external - {join.node}) | join.reads

    def input_cap(self, f: Fusion, join: Join | None = None) -> int:
        """How many values the group may read from outside (with `join` applied): with a
        reduction inside, a split's second pass binds its scratch and the epilogue's
        inputs together, so one fewer."""
        reduces = bool(self.prologue) or (join is not None and join.reduction)
        return max(f.options.max_inputs - reduces, 1)

    def add(self, f: Fusion, join: Join) -> None:
        """Apply `join` (which every break rule let through)."""
        j = join.node
        if join.kind == "literal":
            self.literals.add(j)
            self.external.discard(j)
            return
        self.external = self.grown(join)
        for k in set(join.grows):
            heapq.heappush(self._frontier, -k)
        if join.kind == "copy":
            self.copies.add(j)
            return
        readers_in_prologue = self.in_prologue(f, j)
        self.depth[j] = self.depth_of(f, j)
        self.members.add(j)
        self.copies |= join.copies
        self.has_head = self.has_head or join.head
        if join.leaf:
            self.leaves.add(j)
        if join.stores:
            self.store = j
        if join.reduction or (self.prologue and all(readers_in_prologue)):
            self.prologue.add(j)
