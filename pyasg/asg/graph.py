"""`Node` and the immutable `Graph` (on pyrsistent), and `GraphBuilder` that hash-conses.

Invariant: a node's inputs always have smaller ids than the node, so ascending id
order is a topological order and a graph can never hold a cycle.

A graph's `nodes` is a `NodeMap`: a persistent map (equal graphs compare and hash
equal) that keeps its nodes in a plain dict beside, so that the transforms' and
compilers' look-ups by id cost one dict access and not a walk through pyrsistent's
buckets. `GraphBuilder` stages new nodes in a plain dict and makes the map once, at
`build`.

>>> from pyasg.asg.ops import Exp
>>> b = GraphBuilder()
>>> x = b.add_input("x", TensorType((3,)))
>>> y = b.add(Exp(), (x,))
>>> b.add(Exp(), (x,)) == y          # hash-consing: the same (op, inputs) is one node
True
>>> g = b.build([y])
>>> print(g)  # doctest: +NORMALIZE_WHITESPACE
graph(%0: f32[3] x) {
  %1: f32[3] = exp %0
  return %1
}
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

from pyrsistent import PMap, PVector, pmap, pvector

from pyasg.asg.ops.base import Constant, Input, Op
from pyasg.asg.types import TensorType
from pyasg.errors import PyasgError, ShapeError, shown


@dataclass(frozen=True)
class Node:
    """One operation: its op, the ids of its inputs, its output type, name and user source."""

    op: Op
    inputs: tuple[int, ...]
    type: TensorType
    name: str | None = None
    source: str | None = None

    def __init__(self, op: Op, inputs: tuple[int, ...], type: TensorType,
                 name: str | None = None, source: str | None = None) -> None:
        # written out, not the dataclass's: that one sets each field through
        # object.__setattr__ (frozen), and every transform makes thousands of nodes
        values = self.__dict__
        values["op"] = op
        values["inputs"] = inputs
        values["type"] = type
        values["name"] = name
        values["source"] = source


class NodeMap(PMap):
    """A persistent map of nodes by id that reads through a plain dict (never changed).

    It is a `PMap` in every respect (equality, hashing, `set` and `evolver` make plain
    PMaps), except that look-ups, membership and iteration go to the dict, in the
    dict's order (ascending ids when a builder made it).

    >>> m = NodeMap({0: "a", 1: "b"})
    >>> m[1], m == pmap({0: "a", 1: "b"}), hash(m) == hash(pmap({0: "a", 1: "b"}))
    ('b', True, True)
    """

    __slots__ = ("_dict",)

    def __new__(cls, nodes: dict[int, Node]) -> NodeMap:
        persistent = pmap(nodes)
        self = super().__new__(cls, persistent._size, persistent._buckets)
        self._dict = nodes
        return self

    def __getitem__(self, key: int) -> Node:
        return self._dict[key]

    def get(self, key: int, default: object = None) -> object:
        return self._dict.get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._dict

    def __iter__(self):  # noqa: ANN204
        return iter(self._dict)

    def iterkeys(self):  # noqa: ANN201
        return iter(self._dict)

    def itervalues(self):  # noqa: ANN201
        return iter(self._dict.values())

    def iteritems(self):  # noqa: ANN201
        return iter(self._dict.items())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, NodeMap):
            if self is other:
                return True
            if len(self) != len(other):
                return False
            if (hasattr(self, "_cached_hash") and hasattr(other, "_cached_hash")
                    and self._cached_hash != other._cached_hash):
                return False
            return self._dict == other._dict
        return super().__eq__(other)

    __hash__ = PMap.__hash__

    def __reduce__(self):  # noqa: ANN204
        return NodeMap, (dict(self._dict),)


def _node_map(nodes: object) -> object:
    """`nodes` as a `NodeMap` (a plain PMap is converted: same contents)."""
    if isinstance(nodes, NodeMap) or not isinstance(nodes, PMap):
        return nodes
    return NodeMap(dict(nodes.iteritems()))


@dataclass(frozen=True)
class Graph:
    """An immutable graph: nodes by id, the ids of its inputs and of its outputs.

    Graphs are values: equal graphs compare and hash equal.
    """

    nodes: PMap
    inputs: PVector
    outputs: PVector

    def __post_init__(self) -> None:
        object.__setattr__(self, "nodes", _node_map(self.nodes))

    # ------------------------------------------------------------------ views
    def __len__(self) -> int:
        return len(self.nodes)

    def __getitem__(self, node_id: int) -> Node:
        return self.nodes[node_id]

    @cached_property
    def _hash(self) -> int:
        return hash((self.nodes, self.inputs, self.outputs))

    def __hash__(self) -> int:
        return self._hash

    @cached_property
    def ids(self) -> tuple[int, ...]:
        """Every node id in topological (ascending) order."""
        return tuple(sorted(self.nodes))

    def topological_order(self, live_only: bool = True) -> tuple[int, ...]:
        """Node ids in an order where every node follows its inputs.

        With `live_only`, only the nodes the outputs depend on.
        """
        return self.live_ids if live_only else self.ids

    @cached_property
    def live_ids(self) -> tuple[int, ...]:
        """The ids of the nodes the outputs depend on, ascending."""
        nodes = self.nodes
        live: set[int] = set(self.outputs)
        for i in reversed(self.ids):
            if i in live:
                live.update(nodes[i].inputs)
        return tuple(i for i in self.ids if i in live)

    @cached_property
    def users(self) -> PMap:
        """For each node id, the ids of the nodes that read it (in order)."""
        nodes = self.nodes
        users: dict[int, list[int]] = {i: [] for i in self.ids}
        for i in self.ids:
            for j in nodes[i].inputs:
                readers = users[j]
                if not readers or readers[-1] != i:  # ids ascend: a repeat is the last
                    readers.append(i)
        return NodeMap({k: tuple(v) for k, v in users.items()})

    @cached_property
    def cons_index(self) -> dict[tuple[Op, tuple[int, ...]], int]:
        """(op, inputs) -> id, for hash-consing when a graph is extended."""
        nodes = self.nodes
        index: dict[tuple[Op, tuple[int, ...]], int] = {}
        for i in self.ids:
            node = nodes[i]
            index.setdefault((node.op, node.inputs), i)
        return index

    @property
    def input_types(self) -> tuple[TensorType, ...]:
        return tuple(self.nodes[i].type for i in self.inputs)

    @property
    def output_types(self) -> tuple[TensorType, ...]:
        return tuple(self.nodes[i].type for i in self.outputs)

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(self.nodes[i].op.path for i in self.inputs)

    def label(self, node_id: int) -> str:
        """A short human name for a node: its name, else `%id`."""
        node = self.nodes[node_id]
        return node.name or f"%{node_id}"

    # ------------------------------------------------------------------ other forms
    def to_networkx(self):  # -> networkx.DiGraph
        """A networkx DiGraph: node attrs op, category, type, name, source; edge attr `index`."""
        import networkx as nx  # imported when used: it is slow to import

        g = nx.DiGraph()
        for i in self.ids:
            n = self.nodes[i]
            g.add_node(i, op=n.op.name, category=n.op.category, type=repr(n.type),
                       name=n.name, source=n.source, output=i in self.outputs)
            for k, j in enumerate(n.inputs):
                g.add_edge(j, i, index=k)
        return g

    def __str__(self) -> str:
        def arg(i: int) -> str:
            return f"%{i}"

        params = ", ".join(f"%{i}: {self.nodes[i].type!r} {self.nodes[i].op.path}"
                           for i in self.inputs)
        lines = [f"graph({params}) {{"]
        body = []
        for i in self.ids:
            n = self.nodes[i]
            if isinstance(n.op, Input):
                continue
            rhs = str(n.op) if isinstance(n.op, Constant) else " ".join(
                [str(n.op)] + [arg(j) for j in n.inputs])
            text = f"  %{i}: {n.type!r} = {rhs}"
            notes = [x for x in (n.name, n.source) if x]
            body.append((text, "  # " + "  ".join(notes) if notes else ""))
        width = max((len(t) for t, _ in body), default=0)
        lines += [f"{t:<{width}}{c}".rstrip() for t, c in body]
        lines.append("  return " + ", ".join(arg(i) for i in self.outputs))
        lines.append("}")
        return "\n".join(lines)

    __repr__ = object.__repr__


def input_paths(node_of: Callable[[int], Node], node_id: int) -> list[str]:
    """Sorted paths of the `Input` nodes that `node_id` depends on (`node_of` looks up ids)."""
    seen, stack, found = {node_id}, [node_id], []
    while stack:
        node = node_of(stack.pop())
        if isinstance(node.op, Input):
            found.append(node.op.path)
        for j in node.inputs:
            if j not in seen:
                seen.add(j)
                stack.append(j)
    return sorted(found)


class GraphBuilder:
    """Mutable staging area for a new graph; `add` hash-conses and checks shapes.

    Starting from `base`, the new graph shares all of `base`'s nodes.
    """

    def __init__(self, base: Graph | None = None) -> None:
        # a plain dict while staging (the graph's `NodeMap` is made at `build`); shared
        # with the last graph built until the next `add` changes it
        self._nodes: dict[int, Node] = {}
        self._shared = False
        self._index: dict[tuple[Op, tuple[int, ...]], int] = {}
        self._next = 0
        self.inputs: list[int] = []
        if base is not None:
            self._nodes = {i: base.nodes[i] for i in base.ids}
            self._index = dict(base.cons_index)
            self._next = (base.ids[-1] + 1) if base.ids else 0
            self.inputs = list(base.inputs)

    def node(self, node_id: int) -> Node:
        return self._nodes[node_id]

    def type_of(self, node_id: int) -> TensorType:
        return self._nodes[node_id].type

    def add(self, op: Op, inputs: Sequence[int] = (), name: str | None = None,
            source: str | None = None) -> int:
        """Record `op` applied to `inputs`; returns the (possibly existing) node id."""
        inputs = tuple(inputs)
        key = (op, inputs)
        existing = self._index.get(key)
        if existing is not None:
            return existing
        nodes = self._nodes
        try:
            op.check_arity(len(inputs))
            out_type = op.infer(*[nodes[i].type for i in inputs])
        except ShapeError as e:
            raise ShapeError(e.message, source or e.source) from None
        if self._shared:  # the last built graph holds this dict: copy before changing
            nodes = self._nodes = dict(nodes)
            self._shared = False
        node_id = self._next
        self._next += 1
        nodes[node_id] = Node(op, inputs, out_type, name, source)
        self._index[key] = node_id
        return node_id

    def add_input(self, path: str, type: TensorType, source: str | None = None) -> int:
        """A new graph input, appended to the input list."""
        node_id = self.add(Input(path, type), (), name=path, source=source)
        if node_id in self.inputs:
            raise PyasgError(f"duplicate graph input {path!r}")
        self.inputs.append(node_id)
        return node_id

    def build(self, outputs: Iterable[int], inputs: Iterable[int] | None = None) -> Graph:
        """Freeze into a `Graph` with these outputs (and inputs, default: those added)."""
        self._shared = True
        return Graph(NodeMap(self._nodes),
                     pvector(self.inputs if inputs is None else inputs), pvector(outputs))


def prune(graph: Graph) -> Graph:
    """Drop every node the outputs do not need (inputs are always kept)."""
    keep = set(graph.live_ids) | set(graph.inputs)
    if len(keep) == len(graph.nodes):
        return graph
    nodes = graph.nodes
    return Graph(NodeMap({i: nodes[i] for i in graph.ids if i in keep}),
                 graph.inputs, graph.outputs)


class GraphTypeError(PyasgError, TypeError):
    """A function that takes a `Graph` was given something else."""


def require_graph(graph: object, what: str) -> Graph:
    """`graph` itself if it is a `Graph`; `GraphTypeError` naming `what` otherwise.

    >>> require_graph(3, "graph_to_json")
    Traceback (most recent call last):
      ...
    pyasg.asg.graph.GraphTypeError: graph_to_json needs a Graph, got int 3 (...)...
    """
    if not isinstance(graph, Graph):
        raise GraphTypeError(f"{what} needs a Graph, got {type(graph).__name__} "
                             f"{shown(graph, 60)} (pyasg.make_graph(f)(*example_args) "
                             f"makes one; pyasg.load_graph reads one)")
    return graph
