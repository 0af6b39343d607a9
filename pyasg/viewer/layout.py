"""Where the viewer draws each node: a layered DAG with optional collapsing by scope.

Pure geometry, no GUI: `layout(graph)` returns boxes in canvas units that the
canvas draws as they are. Layers run **left to right** (x grows with the layer
index, every edge points right) and the nodes of one layer are stacked top to
bottom, each layer centred vertically.

Steps:

1. Only live nodes and the graph inputs are laid out (`graph.live_ids | graph.inputs`).
2. Collapsing: every node whose `scopes` entry is a collapsed prefix (or lies
   under it, on dotted boundaries) goes into one box keyed by that prefix. A
   prefix may start at any component (`blocks.0.attn` finds
   `params.blocks.0.attn`) and may use `*` for one component: `blocks.*` makes
   one box per block.
   Where a prefix is given together with one under it (`p` and `p.attn`),
   the outermost wins. A box must not create a cycle, which can happen when
   its nodes are interleaved with outside nodes (the forward and backward
   halves of a layer in a gradient graph): such a group is **split** into
   as few boxes as the greedy rule below finds, keyed `prefix`, `prefix#2`,
   `prefix#3`, … in topological order. Nodes are visited in id (topological)
   order; a node joins the group's newest box unless one of its inputs lies
   in another box that the newest box already reaches, in which case it
   starts a new box. So the collapsed graph is always a DAG.
3. Layers are `networkx.topological_generations` of the (collapsed) DAG; the
   initial order in a layer is by smallest node id.
4. Crossings are reduced by barycentre sweeps (down then up, a few rounds):
   a box moves to the mean position of its neighbours in the adjacent layer
   (all earlier / later neighbours if it has none there). The ordering with
   the fewest `count_crossings` seen, the initial one included, is kept, so
   sorting never makes crossings worse.

>>> from pyasg.asg import GraphBuilder, TensorType
>>> from pyasg.asg.ops import Add, Exp, MatMul
>>> b = GraphBuilder()
>>> x = b.add_input("x", TensorType((2, 3)))
>>> w = b.add_input("p.fc.weight", TensorType((3, 3)))
>>> h = b.add(MatMul(), (x, w))
>>> y = b.add(Add(), (b.add(Exp(), (h,)), h))
>>> g = b.build([y])
>>> scopes(g)
{0: '', 1: 'p.fc', 2: 'p.fc', 3: 'p.fc', 4: 'p.fc'}
>>> lay = layout(g)
>>> [[lay.boxes[k].label for k in layer] for layer in lay.layers]
[['x', 'p.fc.weight'], ['matmul'], ['exp'], ['add']]
>>> lay.boxes[y].is_output, count_crossings(lay)
(True, 0)
>>> small = layout(g, collapse=["p.fc"])
>>> small.layers, small.edges, small.boxes["p.fc"].label
([[0], ['p.fc']], [(0, 'p.fc')], 'p.fc (4 nodes)')
"""

from __future__ import annotations

from bisect import bisect_right, insort
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import networkx as nx

from pyasg.asg import Graph
from pyasg.asg.ops import Input

__all__ = ["Box", "Key", "Layout", "count_crossings", "layout", "scopes"]

#: A box key: a node id, or a collapsed prefix (`"p.attn"`, `"p.attn#2"` when split).
Key = int | str

#: Barycentre rounds (one round = a down sweep and an up sweep).
SWEEPS = 4


@dataclass(frozen=True)
class Box:
    """One drawn rectangle: a node, or a collapsed group of nodes.

    `category` is the op's category, or `"group"` for a collapsed box; `nodes`
    are the graph ids it stands for; `is_output` when any of them is a graph output.
    """

    x: float
    y: float
    w: float
    h: float
    layer: int
    label: str
    category: str
    nodes: tuple[int, ...]
    is_output: bool
    collapsed: bool


@dataclass
class Layout:
    """Boxes by key, deduplicated edges between keys, keys per layer in drawing order."""

    boxes: dict[Key, Box]
    edges: list[tuple[Key, Key]]
    layers: list[list[Key]]
    width: float
    height: float
    scopes: dict[int, str] = field(default_factory=dict)


# --------------------------------------------------------------------------- scopes


def _common_prefix(names: Iterable[str]) -> str:
    """Longest common dotted prefix: `a.b.c`, `a.b.d` -> `a.b`; `a.b`, `` -> ``."""
    parts_list = [n.split(".") if n else [] for n in names]
    if not parts_list:
        return ""
    common = parts_list[0]
    for parts in parts_list[1:]:
        k = 0
        while k < min(len(common), len(parts)) and common[k] == parts[k]:
            k += 1
        common = common[:k]
    return ".".join(common)


def _match(scope: str, pattern: str) -> str | None:
    """The prefix of `scope` that `pattern` names, or None.

    A pattern is a dotted name whose parts are matched on whole components, `*`
    standing for any one; it may start at any component (`blocks.0.attn` finds
    `params.blocks.0.attn`), the leftmost place winning.

    >>> _match("ps.blocks.3.attn", "blocks.*"), _match("ps.blocks.3", "ps.blocks.3.attn")
    ('ps.blocks.3', None)
    """
    parts, want = scope.split("."), pattern.split(".")
    for start in range(len(parts) - len(want) + 1):
        if all(w in ("*", p) for w, p in zip(want, parts[start:])):
            return ".".join(parts[:start + len(want)])
    return None


def scopes(graph: Graph) -> dict[int, str]:
    """Each node's layer scope (a dotted prefix), used for collapsing.

    Rule:

    - an `Input`'s scope is its path minus the last component
      (`params.blocks.0.attn.w_q.weight` -> `params.blocks.0.attn.w_q`; a
      top-level input such as `x` has scope `""`). An input with a non-empty
      scope counts as a *parameter*;
    - any other node takes the longest common dotted prefix of the scopes of
      the parameters it reads directly; else the scope of its newest (highest
      id) input that has a non-empty scope, so activations inherit the scope of
      the layer that made them, and what layers share — the residual stream
      `h + attn(h)`, a cotangent flowing back through a gradient graph — joins
      the newest layer it reads (a block collapses whole); else `""`;
    - inputs that depend on no graph input at all (constants and what is
      computed from constants only) are left out of that prefix, and get the
      common prefix of their users' scopes instead (`""` if they have none).

    >>> from pyasg.asg import GraphBuilder, TensorType
    >>> from pyasg.asg.ops import Constant, Mul
    >>> b = GraphBuilder()
    >>> x = b.add_input("x", TensorType((3,)))
    >>> s = b.add_input("params.blocks.0.scale", TensorType((3,)))
    >>> y = b.add(Mul(), (b.add(Mul(), (x, s)), b.add(Constant.of([2, 2, 2], "float32"))))
    >>> scopes(b.build([y]))
    {0: '', 1: 'params.blocks.0', 2: 'params.blocks.0', 3: 'params.blocks.0', 4: 'params.blocks.0'}
    """
    result: dict[int, str | None] = {}
    for i in graph.ids:
        node = graph.nodes[i]
        if isinstance(node.op, Input):
            path = node.op.path
            result[i] = path.rsplit(".", 1)[0] if "." in path else ""
            continue
        params = [result[j] for j in node.inputs
                  if isinstance(graph.nodes[j].op, Input) and result[j]]
        if params:
            result[i] = _common_prefix(params)
            continue
        # A node the layers share (the residual stream `h + attn(h)`, a cotangent
        # flowing back) joins the newest layer it reads: the one that made its newest
        # scoped input. So a block collapses whole, its residual add included.
        scoped = [(j, s) for j in node.inputs if (s := result[j])]
        if scoped:
            result[i] = max(scoped)[1]
        else:
            known = [s for j in node.inputs if result[j] is not None]
            result[i] = "" if known else None
    users = graph.users
    for i in reversed(graph.ids):
        if result[i] is None:
            known = [s for u in users[i] if (s := result[u]) is not None]
            result[i] = _common_prefix(known) if known else ""
    return {i: s or "" for i, s in result.items()}


# --------------------------------------------------------------------------- grouping


def _reaches(succ: dict[Key, set[Key]], start: Key, targets: set[Key]) -> bool:
    seen, stack = {start}, [start]
    while stack:
        for n in succ[stack.pop()]:
            if n in targets:
                return True
            if n not in seen:
                seen.add(n)
                stack.append(n)
    return False


def _group(graph: Graph, ids: Sequence[int], scope: dict[int, str],
           collapse: Sequence[str]) -> dict[int, Key]:
    """Box key of each laid-out node; collapsed groups are split where needed to stay a DAG."""
    # Outermost prefix first, so that `p` wins over `p.attn`.
    prefixes = sorted(dict.fromkeys(collapse), key=lambda p: (p.count("."), len(p)))
    key_of: dict[int, Key] = {}
    succ: dict[Key, set[Key]] = {}
    newest: dict[str, str] = {}
    pieces: dict[str, int] = {}
    for i in ids:
        prefix = next((m for p in prefixes if (m := _match(scope[i], p)) is not None), None)
        in_keys = {key_of[j] for j in graph.nodes[i].inputs if j in key_of}
        if prefix is None:
            key: Key = i
        else:
            key = newest.get(prefix, prefix)
            others = in_keys - {key}
            if key in succ and others and _reaches(succ, key, others):
                pieces[prefix] = pieces.get(prefix, 1) + 1
                key = f"{prefix}#{pieces[prefix]}"
            newest[prefix] = key
        key_of[i] = key
        succ.setdefault(key, set())
        for k in in_keys:
            if k != key:
                succ[k].add(key)
    return key_of


# --------------------------------------------------------------------------- crossings


def _inversions(seq: list[float]) -> int:
    count, seen = 0, []
    for v in seq:
        count += len(seen) - bisect_right(seen, v)
        insort(seen, v)
    return count


def _crossings(layers: list[list[Key]], edges: list[tuple[Key, Key]]) -> int:
    where = {k: (li, pos) for li, layer in enumerate(layers) for pos, k in enumerate(layer)}
    between: dict[int, list[tuple[int, int]]] = {}
    for s, d in edges:
        (ls, ps), (ld, pd) = where[s], where[d]
        if abs(ld - ls) == 1:
            lo, hi = ((ps, pd) if ls < ld else (pd, ps))
            between.setdefault(min(ls, ld), []).append((lo, hi))
    total = 0
    for pairs in between.values():
        pairs.sort()
        total += _inversions([b for _, b in pairs])
    return total


def count_crossings(lay: Layout) -> int:
    """How many pairs of edges between adjacent layers cross (shared endpoints do not).

    >>> from pyasg.asg import GraphBuilder, TensorType
    >>> from pyasg.asg.ops import Add
    >>> b = GraphBuilder()
    >>> x, y = b.add_input("x", TensorType(())), b.add_input("y", TensorType(()))
    >>> count_crossings(layout(b.build([b.add(Add(), (x, y))])))
    0
    """
    return _crossings(lay.layers, lay.edges)


def _barycentre_order(layers: list[list[Key]], preds: dict[Key, list[Key]],
                      succs: dict[Key, list[Key]], edges: list[tuple[Key, Key]],
                      sweeps: int = SWEEPS) -> list[list[Key]]:
    layer_of = {k: li for li, layer in enumerate(layers) for k in layer}
    best, best_count = [list(layer) for layer in layers], _crossings(layers, edges)
    current = [list(layer) for layer in layers]

    def place() -> dict[Key, float]:
        return {k: (p + 0.5) / len(layer) for layer in current for p, k in enumerate(layer)}

    def sweep(order: range, neighbours: dict[Key, list[Key]], step: int) -> None:
        pos = place()
        for li in order:
            def bary(k: Key, li: int = li) -> float:
                near = [pos[n] for n in neighbours[k] if layer_of[n] == li - step]
                near = near or [pos[n] for n in neighbours[k]]
                return sum(near) / len(near) if near else pos[k]

            current[li].sort(key=lambda k: (bary(k), pos[k]))
            pos.update({k: (p + 0.5) / len(current[li]) for p, k in enumerate(current[li])})

    for _ in range(sweeps):
        if best_count == 0:
            break
        for order, neighbours, step in ((range(1, len(current)), preds, 1),
                                        (range(len(current) - 2, -1, -1), succs, -1)):
            sweep(order, neighbours, step)
            count = _crossings(current, edges)
            if count < best_count:
                best, best_count = [list(layer) for layer in current], count
    return best


# --------------------------------------------------------------------------- layout


def layout(graph: Graph, collapse: Iterable[str] = (), node_size: tuple[float, float] = (140, 36),
           gap: tuple[float, float] = (60, 24)) -> Layout:
    """Lay `graph` out as a layered DAG, layers left to right (see the module docstring).

    `collapse` lists scope prefixes (see `scopes`) whose nodes become one box
    each. Labels: the op name, the input path, or `prefix (N nodes)`.

    >>> from pyasg.asg import GraphBuilder, TensorType
    >>> from pyasg.asg.ops import Exp
    >>> b = GraphBuilder()
    >>> x = b.add_input("x", TensorType((3,)))
    >>> lay = layout(b.build([b.add(Exp(), (x,))]), node_size=(100, 30), gap=(50, 10))
    >>> lay.boxes[1]
    Box(x=150, y=0.0, w=100, h=30, layer=1, label='exp', category='arithmetic', nodes=(1,), \
is_output=True, collapsed=False)
    >>> lay.width, lay.height
    (250, 30)
    """
    collapse = tuple(collapse)
    for prefix in collapse:
        if not isinstance(prefix, str) or not prefix or prefix.strip(".") != prefix:
            raise ValueError(f"collapse prefix must be a non-empty dotted name, got {prefix!r}")
    ids = sorted(set(graph.live_ids) | set(graph.inputs))
    scope = scopes(graph)
    key_of = _group(graph, ids, scope, collapse)

    members: dict[Key, list[int]] = {}
    for i in ids:
        members.setdefault(key_of[i], []).append(i)
    edges: dict[tuple[Key, Key], None] = {}
    for i in ids:
        for j in graph.nodes[i].inputs:
            if key_of[j] != key_of[i]:
                edges[(key_of[j], key_of[i])] = None
    edge_list = list(edges)

    dag = nx.DiGraph()
    dag.add_nodes_from(members)
    dag.add_edges_from(edge_list)
    first = {k: v[0] for k, v in members.items()}
    layers = [sorted(gen, key=first.__getitem__) for gen in nx.topological_generations(dag)]
    preds = {k: list(dag.predecessors(k)) for k in members}
    succs = {k: list(dag.successors(k)) for k in members}
    layers = _barycentre_order(layers, preds, succs, edge_list)

    w, h = node_size
    gx, gy = gap
    tallest = max((len(layer) for layer in layers), default=0)
    outputs = set(graph.outputs)
    boxes: dict[Key, Box] = {}
    for li, layer in enumerate(layers):
        top = (tallest - len(layer)) * (h + gy) / 2
        for p, k in enumerate(layer):
            nodes = tuple(members[k])
            if isinstance(k, str):
                label, category = f"{k} ({len(nodes)} nodes)", "group"
            else:
                op = graph.nodes[k].op
                label = op.path if isinstance(op, Input) else op.label()
                category = op.category
            boxes[k] = Box(x=li * (w + gx), y=top + p * (h + gy), w=w, h=h, layer=li,
                           label=label, category=category, nodes=nodes,
                           is_output=bool(outputs.intersection(nodes)),
                           collapsed=isinstance(k, str))
    width = max(len(layers) * (w + gx) - gx, 0)
    height = max(tallest * (h + gy) - gy, 0)
    return Layout(boxes=boxes, edges=edge_list, layers=layers, width=width, height=height,
                  scopes={i: scope[i] for i in ids})
