"""The viewer's canvas layout: layered, non-overlapping, crossing-reduced, collapsible."""

from __future__ import annotations

import doctest
import itertools
import time

import networkx as nx
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import random_cases

import pyasg
import pyasg.viewer.layout as layout_module
from pyasg import nn
from pyasg.asg import Graph, GraphBuilder, TensorType
from pyasg.asg.ops import Add, Exp, Input, Mul
from pyasg.viewer.layout import Layout, count_crossings, layout, scopes


@pytest.fixture(scope="module")
def block_grad() -> Graph:
    block = nn.TransformerBlock(32, 4)
    params = block.init(pyasg.random.key(0))
    grad = pyasg.value_and_grad

    def loss_and_grads(p, x):
        return grad(lambda p: pyasg.mean(block(p, x) ** 2))(p)

    return pyasg.make_graph(loss_and_grads)(params, np.ones((2, 8, 32), np.float32))


# --------------------------------------------------------------------------- checks


def brute_crossings(layers: list[list], edges: list[tuple]) -> int:
    """Crossings between adjacent layers, pair by pair."""
    where = {k: (li, p) for li, layer in enumerate(layers) for p, k in enumerate(layer)}
    spans = []
    for s, d in edges:
        (ls, ps), (ld, pd) = where[s], where[d]
        if ld == ls + 1:
            spans.append((ls, ps, pd))
    return sum(1 for (l1, a1, b1), (l2, a2, b2) in itertools.combinations(spans, 2)
               if l1 == l2 and (a1 - a2) * (b1 - b2) < 0)


def initial_layers(lay: Layout) -> list[list]:
    """Topological generations of the laid-out DAG, each in ascending smallest-node-id order."""
    dag = nx.DiGraph()
    dag.add_nodes_from(lay.boxes)
    dag.add_edges_from(lay.edges)
    return [sorted(gen, key=lambda k: min(lay.boxes[k].nodes))
            for gen in nx.topological_generations(dag)]


def check_layered(graph: Graph, lay: Layout) -> None:
    """Edges go up in layer, boxes do not overlap, every node is drawn once, outputs marked."""
    boxes = lay.boxes
    # Layers: lists agree with Box.layer, and every edge goes to a higher layer.
    assert sorted(map(str, boxes)) == sorted(str(k) for layer in lay.layers for k in layer)
    for li, layer in enumerate(lay.layers):
        assert all(boxes[k].layer == li for k in layer)
    for s, d in lay.edges:
        assert s != d
        assert boxes[s].layer < boxes[d].layer, (s, d)
    assert len(set(lay.edges)) == len(lay.edges)
    # No two rectangles overlap, and all lie inside the canvas.
    rects = list(boxes.values())
    for a, b in itertools.combinations(rects, 2):
        apart = (a.x + a.w <= b.x or b.x + b.w <= a.x or a.y + a.h <= b.y or b.y + b.h <= a.y)
        assert apart, (a, b)
    for r in rects:
        assert 0 <= r.x and r.x + r.w <= lay.width and 0 <= r.y and r.y + r.h <= lay.height
    # Each laid-out node (live or input) is in exactly one box.
    drawn = [i for r in rects for i in r.nodes]
    assert sorted(drawn) == sorted(set(graph.live_ids) | set(graph.inputs))
    owner = {i: k for k, r in boxes.items() for i in r.nodes}
    # Edges are exactly the graph's edges mapped to boxes, minus self-loops.
    expected = {(owner[j], owner[i]) for i in owner for j in graph.nodes[i].inputs
                if owner[j] != owner[i]}
    assert set(lay.edges) == expected
    outs = set(graph.outputs)
    for r in rects:
        assert r.is_output == any(i in outs for i in r.nodes)


# --------------------------------------------------------------------------- tests


def test_docstring_examples():
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    result = doctest.testmod(layout_module, optionflags=flags, verbose=False)
    assert result.attempted > 0 and result.failed == 0


def test_block_scopes(block_grad):
    sc = scopes(block_grad)
    paths = {i: block_grad.nodes[i].op.path for i in block_grad.inputs}
    by_path = {p: i for i, p in paths.items()}
    assert sc[by_path["p.attn.w_q.weight"]] == "p.attn.w_q"
    assert sc[by_path["p.norm1.weight"]] == "p.norm1"
    assert sc[by_path["x"]] == ""
    # A node reading a parameter directly takes that parameter's scope.
    for i in block_grad.live_ids:
        node = block_grad.nodes[i]
        params = {sc[j] for j in node.inputs
                  if isinstance(block_grad.nodes[j].op, Input) and sc[j]}
        if len(params) == 1:
            assert sc[i] == params.pop()
    assert sum(1 for s in sc.values() if s.startswith("p.attn")) > 40


def test_transformer_block_gradient_layout(block_grad):
    lay = layout(block_grad)
    check_layered(block_grad, lay)
    assert len(lay.boxes) == len(set(block_grad.live_ids) | set(block_grad.inputs))
    # The loss and every gradient are outputs, and are highlighted.
    assert sum(b.is_output for b in lay.boxes.values()) == len(set(block_grad.outputs))
    labels = {b.label for b in lay.boxes.values()}
    assert {"p.attn.w_q.weight", "x", "matmul"} <= labels
    assert count_crossings(lay) == brute_crossings(lay.layers, lay.edges)
    # The natural order crosses; barycentre sweeps remove most of that.
    before = brute_crossings(initial_layers(lay), lay.edges)
    assert before > 0 and count_crossings(lay) < before


def test_barycentre_helps_often():
    import random

    improved = 0
    for seed in range(40):
        rng, b = random.Random(seed), GraphBuilder()
        ids = [b.add_input(f"i{k}", TensorType((2,))) for k in range(rng.randint(2, 6))]
        for _ in range(rng.randint(5, 40)):
            ids.append(b.add(rng.choice([Add(), Mul()]), (rng.choice(ids), rng.choice(ids))))
        lay = layout(b.build(rng.sample(ids, 3)))
        before = brute_crossings(initial_layers(lay), lay.edges)
        assert count_crossings(lay) <= before
        improved += count_crossings(lay) < before
    assert improved >= 10


def test_collapse_attention(block_grad):
    full = layout(block_grad)
    small = layout(block_grad, collapse=["p.attn"])
    check_layered(block_grad, small)
    assert len(small.boxes) < len(full.boxes)
    groups = [k for k in small.boxes if isinstance(k, str)]
    assert groups and all(k == "p.attn" or k.startswith("p.attn#") for k in groups)
    sc = scopes(block_grad)
    inside = {i for k in groups for i in small.boxes[k].nodes}
    assert inside == {i for i in small.scopes if sc[i].startswith("p.attn")}
    for k in groups:
        box = small.boxes[k]
        assert box.collapsed and box.category == "group"
        assert box.label == f"{k} ({len(box.nodes)} nodes)"
    # Forward and backward halves of attention are interleaved with the rest of the block,
    # so the group is split; still the collapsed graph is a DAG.
    assert nx.is_directed_acyclic_graph(nx.DiGraph(small.edges))


def test_collapse_several_and_nested(block_grad):
    lay = layout(block_grad, collapse=["p.attn", "p.ff", "p.norm1", "p.norm2", "p.attn.w_q"])
    check_layered(block_grad, lay)
    assert not any(isinstance(k, str) and k.startswith("p.attn.w_q") for k in lay.boxes)
    everything = layout(block_grad, collapse=["p", "p.ff"])
    check_layered(block_grad, everything)
    assert all(not isinstance(k, str) or k.split("#")[0] == "p" for k in everything.boxes)


def test_interleaved_group_is_split():
    b = GraphBuilder()
    x = b.add_input("x", TensorType((3,)))
    w = b.add_input("p.a.w", TensorType((3,)))
    v = b.add_input("p.b.v", TensorType((3,)))
    n1 = b.add(Mul(), (x, w))                 # p.a
    n2 = b.add(Mul(), (n1, v))                # p.b, between the two halves of p.a
    n3 = b.add(Mul(), (n2, w))                # p.a again
    g = b.build([n3])
    assert scopes(g) == {x: "", w: "p.a", v: "p.b", n1: "p.a", n2: "p.b", n3: "p.a"}
    lay = layout(g, collapse=["p.a"])
    check_layered(g, lay)
    assert lay.boxes["p.a"].nodes == (w, n1)
    assert lay.boxes["p.a#2"].nodes == (n3,)
    # Collapsing both would need one box per half of each group: p.a, p.b, p.a#2.
    both = layout(g, collapse=["p.a", "p.b"])
    check_layered(g, both)
    assert [lay_k for layer in both.layers for lay_k in layer if isinstance(lay_k, str)] == [
        "p.a", "p.b", "p.a#2"]


def test_two_groups_crossing_each_other_stay_a_dag():
    # a1 -> b1 and b2 -> a2 with no path between b1 and b2: merging A and B naively
    # gives A -> B -> A.
    b = GraphBuilder()
    wa = b.add_input("p.a.w", TensorType(()))
    wb = b.add_input("p.b.w", TensorType(()))
    a1 = b.add(Exp(), (wa,))
    b2 = b.add(Exp(), (wb,))
    b1 = b.add(Mul(), (a1, wb))
    a2 = b.add(Mul(), (b2, wa))
    g = b.build([b1, a2])
    lay = layout(g, collapse=["p.a", "p.b"])
    check_layered(g, lay)
    assert nx.is_directed_acyclic_graph(nx.DiGraph(lay.edges))


def test_bad_prefix():
    b = GraphBuilder()
    g = b.build([b.add_input("x", TensorType(()))])
    for bad in ["", ".a", "a."]:
        with pytest.raises(ValueError, match="prefix"):
            layout(g, collapse=[bad])


def test_dead_inputs_are_drawn_dead_nodes_are_not():
    b = GraphBuilder()
    x = b.add_input("x", TensorType(()))
    unused = b.add_input("y", TensorType(()))
    dead = b.add(Exp(), (x,))
    out = b.add(Add(), (x, x))
    g = b.build([out])
    lay = layout(g)
    check_layered(g, lay)
    assert unused in lay.boxes and dead not in lay.boxes


@st.composite
def named_dags(draw):
    """Small random DAGs whose inputs have dotted parameter paths."""
    b = GraphBuilder()
    names = ["x", "p.a.w", "p.a.b", "p.b.w", "p.c.d.w", "q.w"]
    chosen = draw(st.lists(st.sampled_from(names), min_size=1, max_size=5, unique=True))
    ids = [b.add_input(n, TensorType((2,))) for n in chosen]
    for _ in range(draw(st.integers(1, 25))):
        if draw(st.booleans()):
            ids.append(b.add(Exp(), (draw(st.sampled_from(ids)),)))
        else:
            op = draw(st.sampled_from([Add(), Mul()]))
            ids.append(b.add(op, (draw(st.sampled_from(ids)), draw(st.sampled_from(ids)))))
    outs = draw(st.lists(st.sampled_from(ids), min_size=1, max_size=3))
    collapse = draw(st.lists(st.sampled_from(["p", "p.a", "p.b", "p.c", "q"]), max_size=3))
    return b.build(outs), collapse


@given(named_dags())
def test_random_dags_layered_and_barycentre_helps(case):
    graph, collapse = case
    for lay in (layout(graph), layout(graph, collapse=collapse)):
        check_layered(graph, lay)
        assert count_crossings(lay) == brute_crossings(lay.layers, lay.edges)
        assert count_crossings(lay) <= brute_crossings(initial_layers(lay), lay.edges)


@given(random_cases())
def test_random_traced_graphs(case):
    lay = layout(case.graph)
    check_layered(case.graph, lay)
    assert count_crossings(lay) <= brute_crossings(initial_layers(lay), lay.edges)


def test_two_thousand_nodes():
    blocks = [nn.TransformerBlock(32, 4) for _ in range(29)]  # ~70 nodes each
    params = [blk.init(pyasg.random.key(i)) for i, blk in enumerate(blocks)]

    def forward(ps, x):
        for blk, p in zip(blocks, ps):
            x = blk(p, x)
        return pyasg.mean(x ** 2)

    g = pyasg.make_graph(forward)(params, np.ones((2, 8, 32), np.float32))
    n = len(set(g.live_ids) | set(g.inputs))
    assert n >= 2000
    start = time.perf_counter()
    lay = layout(g)
    elapsed = time.perf_counter() - start
    print(f"layout of {n} nodes: {elapsed:.2f} s, {count_crossings(lay)} crossings")
    check_layered(g, lay)
    collapsed = layout(g, collapse=[f"ps.{i}" for i in range(29)])
    check_layered(g, collapsed)
    assert len(collapsed.boxes) < len(lay.boxes) / 3


def test_a_two_thousand_node_gradient_graph_collapses_to_a_readable_few_boxes():
    """Eleven blocks' gradient graph: `blocks.*` gives each block a box for its forward
    half and one or two for its backward half (a cotangent arriving from the next block
    counts as that block's until it meets this block's weights), the residual stream
    included; 2,000 nodes become a few dozen boxes."""
    blocks = [nn.TransformerBlock(32, 4, causal=True) for _ in range(11)]  # ~190 nodes each
    params = {"blocks": {str(i): b.init(pyasg.random.key(i)) for i, b in enumerate(blocks)}}

    def loss(ps, x):
        for i, block in enumerate(blocks):
            x = block(ps["blocks"][str(i)], x)
        return pyasg.mean(x ** 2)

    g = pyasg.make_graph(lambda ps, x: pyasg.value_and_grad(loss)(ps, x))(
        params, np.ones((2, 5, 32), np.float32))
    n = len(set(g.live_ids) | set(g.inputs))
    assert n >= 2000
    lay = layout(g, collapse=["blocks.*"])
    check_layered(g, lay)
    groups = [k for k, b in lay.boxes.items() if b.collapsed]
    per_block = {f"ps.blocks.{i}": [k for k in groups if k.split("#")[0] == f"ps.blocks.{i}"]
                 for i in range(11)}
    assert all(1 <= len(keys) <= 3 for keys in per_block.values()), per_block
    in_groups = sum(len(lay.boxes[k].nodes) for k in groups)
    assert in_groups >= 0.95 * n  # almost every node belongs to its block
    assert len(lay.boxes) <= 60
    # The same boxes whether the prefix is written whole, per block, or with `*`.
    whole = layout(g, collapse=[f"ps.blocks.{i}" for i in range(11)])
    assert set(whole.boxes) == set(lay.boxes)
