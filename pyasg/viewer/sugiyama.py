"""Layered drawing of a DAG, Sugiyama style: layers, dummy nodes, crossing reduction, x by PAVA.

Pure geometry on an abstract DAG (keys, edges, box sizes), no GUI and no graph types;
`pyasg.viewer.layout` feeds it the viewer's boxes. Data flows **top to bottom**.

1. Layering: longest path from the sources, then every node that has successors
   moves down to just above its nearest successor (a source sits right above its
   first user, not at the top of the canvas: an input read only by the loss is drawn
   next to the loss).
2. An edge spanning k > 1 layers gets k - 1 dummy nodes, so every segment joins
   adjacent layers and can be routed around the boxes between.
3. Order in a layer: barycentre sweeps (down, then up, a few rounds); the order with
   the fewest crossings seen, the initial one included, is kept.
4. x: each sweep moves every node towards the mean x of its neighbours in the layer
   just swept, the closest placement that keeps the layer's order and the gaps; that
   closest placement is an isotonic regression, solved exactly by pool-adjacent-
   violators (`_closest_ordered`). A dummy follows its one neighbour, so a long edge
   runs straight down.

>>> d = draw([0, 1, 2], [(0, 1), (0, 2), (1, 2)], {k: (40.0, 20.0) for k in range(3)})
>>> d.layers, d.crossings
([[0], [1], [2]], 0)
>>> [len(d.routes[e]) for e in [(0, 1), (0, 2), (1, 2)]]
[2, 4, 2]
"""

from __future__ import annotations

from bisect import bisect_right, insort
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

__all__ = ["Drawing", "count_crossings", "draw"]

#: Barycentre rounds (one round = a down sweep and an up sweep).
SWEEPS = 4
#: Coordinate rounds (one round = a down sweep and an up sweep).
PLACEMENT_ROUNDS = 6
#: The width a dummy node takes in its layer (the room an edge needs to pass).
DUMMY_WIDTH = 8.0

Point = tuple[float, float]


@dataclass(frozen=True)
class _Dummy:
    """A bend point of the long edge `src -> dst`, `k` layers below `src`."""

    src: Hashable
    dst: Hashable
    k: int


@dataclass
class Drawing:
    """Where each node went: its top-left corner, layer, routes of the edges, canvas size.

    `ranks` are the layers with the dummies, in drawing order; `crossings` counts the
    crossings of the segments between adjacent ranks (`count_crossings`).
    """

    xy: dict[Hashable, Point]
    layer_of: dict[Hashable, int]
    layers: list[list[Hashable]]
    routes: dict[tuple[Hashable, Hashable], list[Point]]
    width: float
    height: float
    ranks: list[list[Hashable]]
    segments: list[tuple[Hashable, Hashable]]
    crossings: int


# --------------------------------------------------------------------------- layering


def _topological(keys: Sequence[Hashable], succ: dict, pred: dict) -> list[Hashable]:
    indegree = {k: len(pred[k]) for k in keys}
    ready = [k for k in keys if indegree[k] == 0]
    order: list[Hashable] = []
    while ready:
        k = ready.pop(0)
        order.append(k)
        for n in succ[k]:
            indegree[n] -= 1
            if indegree[n] == 0:
                ready.append(n)
    if len(order) != len(keys):
        raise ValueError("the graph to draw has a cycle")
    return order


def _layers(keys: Sequence[Hashable], succ: dict, pred: dict) -> dict[Hashable, int]:
    order = _topological(keys, succ, pred)
    layer: dict[Hashable, int] = {}
    for k in order:
        layer[k] = max((layer[p] + 1 for p in pred[k]), default=0)
    # pull each node down to just above its nearest successor: shorter edges, and an
    # input used late is drawn late
    for k in reversed(order):
        if succ[k]:
            layer[k] = max(layer[k], min(layer[s] for s in succ[k]) - 1)
    low = min(layer.values(), default=0)
    return {k: v - low for k, v in layer.items()}


# --------------------------------------------------------------------------- crossings


def _inversions(seq: list[float]) -> int:
    count, seen = 0, []
    for v in seq:
        count += len(seen) - bisect_right(seen, v)
        insort(seen, v)
    return count


def count_crossings(ranks: list[list[Hashable]], segments: list[tuple[Hashable, Hashable]]
                    ) -> int:
    """How many pairs of segments between adjacent ranks cross (shared ends do not).

    >>> count_crossings([["a", "b"], ["c", "d"]], [("a", "d"), ("b", "c")])
    1
    """
    where = {k: (li, pos) for li, rank in enumerate(ranks) for pos, k in enumerate(rank)}
    between: dict[int, list[tuple[int, int]]] = {}
    for s, d in segments:
        (ls, ps), (ld, pd) = where[s], where[d]
        if abs(ld - ls) == 1:
            lo, hi = ((ps, pd) if ls < ld else (pd, ps))
            between.setdefault(min(ls, ld), []).append((lo, hi))
    total = 0
    for pairs in between.values():
        pairs.sort()
        total += _inversions([b for _, b in pairs])
    return total


def _barycentre_order(ranks: list[list[Hashable]], preds: dict, succs: dict,
                      segments: list[tuple[Hashable, Hashable]]) -> list[list[Hashable]]:
    best, best_count = [list(r) for r in ranks], count_crossings(ranks, segments)
    current = [list(r) for r in ranks]

    def sweep(order: range, neighbours: dict) -> None:
        pos = {k: (p + 0.5) / len(r) for r in current for p, k in enumerate(r)}
        for li in order:
            def bary(k: Hashable) -> float:
                near = [pos[n] for n in neighbours[k]]
                return sum(near) / len(near) if near else pos[k]

            current[li].sort(key=lambda k: (bary(k), pos[k]))
            pos.update({k: (p + 0.5) / len(current[li]) for p, k in enumerate(current[li])})

    for _ in range(SWEEPS):
        if best_count == 0:
            break
        for order, neighbours in ((range(1, len(current)), preds),
                                  (range(len(current) - 2, -1, -1), succs)):
            sweep(order, neighbours)
            count = count_crossings(current, segments)
            if count < best_count:
                best, best_count = [list(r) for r in current], count
    return best


# --------------------------------------------------------------------------- x placement


def _closest_ordered(targets: list[float], spacing: list[float]) -> list[float]:
    """The x closest (least squares) to `targets` with x[i+1] - x[i] >= spacing[i].

    Subtracting the cumulative spacing turns the constraints into x' non-decreasing:
    an isotonic regression, which pool-adjacent-violators solves exactly.

    >>> _closest_ordered([5.0, 5.0], [10.0])
    [0.0, 10.0]
    >>> _closest_ordered([0.0, 30.0], [10.0])
    [0.0, 30.0]
    """
    offset = [0.0]
    for s in spacing:
        offset.append(offset[-1] + s)
    values = [t - o for t, o in zip(targets, offset)]
    blocks: list[list[float]] = []  # [mean, count]
    for v in values:
        blocks.append([v, 1.0])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            m2, n2 = blocks.pop()
            m1, n1 = blocks[-1]
            blocks[-1] = [(m1 * n1 + m2 * n2) / (n1 + n2), n1 + n2]
    fitted = [m for m, n in blocks for _ in range(int(n))]
    return [f + o for f, o in zip(fitted, offset)]


def _place_x(ranks: list[list[Hashable]], width: dict, preds: dict, succs: dict,
             gap: float) -> dict[Hashable, float]:
    """Centre x of every node (dummies included)."""
    centre: dict[Hashable, float] = {}
    for rank in ranks:
        x = 0.0
        for k in rank:
            centre[k] = x + width[k] / 2
            x += width[k] + gap
    widest = max((sum(width[k] for k in r) + gap * (len(r) - 1) for r in ranks), default=0.0)
    for rank in ranks:  # start each rank centred under the widest
        used = sum(width[k] for k in rank) + gap * (len(rank) - 1)
        for k in rank:
            centre[k] += (widest - used) / 2

    def sweep(order: range, neighbours: dict) -> None:
        for li in order:
            rank = ranks[li]
            targets = []
            for k in rank:
                near = [centre[n] for n in neighbours[k]]
                targets.append(sum(near) / len(near) if near else centre[k])
            spacing = [(width[a] + width[b]) / 2 + gap for a, b in zip(rank, rank[1:])]
            for k, x in zip(rank, _closest_ordered(targets, spacing)):
                centre[k] = x

    for _ in range(PLACEMENT_ROUNDS):
        sweep(range(1, len(ranks)), preds)
        sweep(range(len(ranks) - 2, -1, -1), succs)
    return centre


# --------------------------------------------------------------------------- drawing


def draw(keys: Sequence[Hashable], edges: Sequence[tuple[Hashable, Hashable]],
         sizes: dict[Hashable, tuple[float, float]], gap: tuple[float, float] = (24.0, 36.0),
         first: dict[Hashable, float] | None = None) -> Drawing:
    """Lay the DAG (`keys`, `edges`) out top to bottom; `sizes` are (w, h) per key.

    `first` gives the initial order in a layer (default: the order of `keys`).

    >>> d = draw(["a", "b", "c"], [("a", "c"), ("b", "c")], {k: (30.0, 10.0) for k in "abc"},
    ...          gap=(10.0, 20.0))
    >>> d.layers, d.xy["c"], d.width, d.height
    ([['a', 'b'], ['c']], (20.0, 30.0), 70.0, 40.0)
    """
    keys = list(keys)
    rank_key = first or {k: float(i) for i, k in enumerate(keys)}
    succ: dict[Hashable, list[Hashable]] = {k: [] for k in keys}
    pred: dict[Hashable, list[Hashable]] = {k: [] for k in keys}
    for s, d in edges:
        succ[s].append(d)
        pred[d].append(s)
    layer = _layers(keys, succ, pred)

    # dummies: every segment joins adjacent layers
    width = {k: sizes[k][0] for k in keys}
    segments: list[tuple[Hashable, Hashable]] = []
    chains: dict[tuple[Hashable, Hashable], list[Hashable]] = {}
    node_layer: dict[Hashable, int] = dict(layer)
    order_key: dict[Hashable, float] = dict(rank_key)
    for s, d in edges:
        chain: list[Hashable] = [s]
        for k in range(1, layer[d] - layer[s]):
            dummy = _Dummy(s, d, k)
            node_layer[dummy], width[dummy] = layer[s] + k, DUMMY_WIDTH
            order_key[dummy] = rank_key[s]
            chain.append(dummy)
        chain.append(d)
        chains[(s, d)] = chain
        segments.extend(zip(chain, chain[1:]))
    depth = max(node_layer.values(), default=-1) + 1
    ranks: list[list[Hashable]] = [[] for _ in range(depth)]
    for k in sorted(node_layer, key=lambda k: order_key[k]):
        ranks[node_layer[k]].append(k)
    preds: dict[Hashable, list[Hashable]] = {k: [] for k in node_layer}
    succs: dict[Hashable, list[Hashable]] = {k: [] for k in node_layer}
    for a, b in segments:
        succs[a].append(b)
        preds[b].append(a)
    ranks = _barycentre_order(ranks, preds, succs, segments)
    centre = _place_x(ranks, width, preds, succs, gap[0])

    # y: each layer as tall as its tallest box
    tops, y = [], 0.0
    for rank in ranks:
        tops.append(y)
        tallest = max((sizes[k][1] for k in rank if k in sizes), default=0.0)
        y += tallest + gap[1]
    heights = [max((sizes[k][1] for k in rank if k in sizes), default=0.0) for rank in ranks]
    low = min((centre[k] - width[k] / 2 for k in centre), default=0.0)
    xy = {k: (centre[k] - sizes[k][0] / 2 - low, tops[layer[k]]) for k in keys}

    routes: dict[tuple[Hashable, Hashable], list[Point]] = {}
    for (s, d), chain in chains.items():
        points: list[Point] = [(centre[s] - low, tops[layer[s]] + sizes[s][1])]
        for dummy in chain[1:-1]:
            li, x = node_layer[dummy], centre[dummy] - low
            points += [(x, tops[li]), (x, tops[li] + heights[li])]
        points.append((centre[d] - low, tops[layer[d]]))
        routes[(s, d)] = points
    right = max((centre[k] + width[k] / 2 - low for k in centre), default=0.0)
    bottom = max((tops[layer[k]] + sizes[k][1] for k in keys), default=0.0)
    layers = [[k for k in rank if not isinstance(k, _Dummy)] for rank in ranks]
    return Drawing(xy=xy, layer_of=dict(layer), layers=layers, routes=routes, width=right,
                   height=bottom, ranks=ranks, segments=segments,
                   crossings=count_crossings(ranks, segments))
