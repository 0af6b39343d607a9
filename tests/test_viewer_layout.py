"""The viewer's canvas layout: top to bottom, parameters inside their consumers, boxes
sized to their labels, crossing-reduced, collapsible by module scope, fitted to the window.

Real graphs: the demo's loss forward and gradient graphs and the digits CNN's
(`viewer_graphs`), besides random DAGs and random traced graphs.
"""

from __future__ import annotations

import doctest
import itertools
import math
import os
import time

import networkx as nx
import numpy as np
import pytest
import viewer_graphs
from hypothesis import given
from hypothesis import strategies as st
from strategies import random_cases

import pyasg
import pyasg.viewer.labels as labels_module
import pyasg.viewer.layout as layout_module
import pyasg.viewer.sugiyama as sugiyama_module
import pyasg.viewer.view as view_module
from pyasg import nn
from pyasg.asg import Graph, GraphBuilder, TensorType
from pyasg.asg.ops import Add, Constant, Exp, Input, Mul
from pyasg.viewer.labels import CHAR_WIDTH, MONO_FONT, text_width
from pyasg.viewer.layout import (
    FONT,
    LINE,
    PAD,
    Layout,
    count_crossings,
    default_collapse,
    layout,
    scopes,
)
from pyasg.viewer.view import fit

REAL_GRAPHS = {
    "demo forward": viewer_graphs.demo_forward,
    "demo gradient": viewer_graphs.demo_gradient,
    "cnn forward": viewer_graphs.cnn_forward,
    "cnn gradient": viewer_graphs.cnn_gradient,
}
#: Collapsed by module (`default_collapse`), no edge of a forward graph spans more than
#: this share of the canvas's height ...
FORWARD_SPAN = 0.25
#: ... and none of a gradient graph more than this. A gradient graph needs values of its
#: first layers at its very end: every edge longer than `FORWARD_SPAN` there carries a
#: forward value (an input, a layer's activation) to the backward piece of a layer
#: (`blocks.0#2`), the demo's token ids, read by the embedding's gather at the top and
#: by its gradient's scatter at the bottom, the longest (0.91).
GRADIENT_SPAN = 0.95


@pytest.fixture(scope="module")
def block_grad() -> Graph:
    block = nn.TransformerBlock(32, 4)
    params = block.init(pyasg.random.key(0))
    grad = pyasg.value_and_grad

    def loss_and_grads(p, x):
        return grad(lambda p: pyasg.mean(block(p, x) ** 2))(p)

    return pyasg.make_graph(loss_and_grads)(params, np.ones((2, 8, 32), np.float32))


# --------------------------------------------------------------------------- checks


def brute_crossings(ranks: list[list], segments: list[tuple]) -> int:
    """Crossings between adjacent ranks, pair by pair."""
    where = {k: (li, p) for li, rank in enumerate(ranks) for p, k in enumerate(rank)}
    spans = []
    for s, d in segments:
        (ls, ps), (ld, pd) = where[s], where[d]
        if ld == ls + 1:
            spans.append((ls, ps, pd))
    return sum(1 for (l1, a1, b1), (l2, a2, b2) in itertools.combinations(spans, 2)
               if l1 == l2 and (a1 - a2) * (b1 - b2) < 0)


def check_layered(graph: Graph, lay: Layout) -> None:
    """Edges go down, boxes do not overlap and hold their text, every main node is drawn
    once, every attribute inside each box that reads it, outputs marked."""
    boxes = lay.boxes
    assert sorted(map(str, boxes)) == sorted(str(k) for layer in lay.layers for k in layer)
    for li, layer in enumerate(lay.layers):
        assert all(boxes[k].layer == li for k in layer)
    for s, d in lay.edges:
        assert s != d
        assert boxes[s].layer < boxes[d].layer, (s, d)
        route = lay.routes[(s, d)]
        assert route[0][1] == pytest.approx(boxes[s].y + boxes[s].h)
        assert route[-1][1] == pytest.approx(boxes[d].y)
        assert all(a[1] <= b[1] + 1e-9 for a, b in zip(route, route[1:]))  # always down
    assert len(set(lay.edges)) == len(lay.edges)
    rects = list(boxes.values())
    for a, b in itertools.combinations(rects, 2):
        apart = (a.x + a.w <= b.x + 1e-6 or b.x + b.w <= a.x + 1e-6
                 or a.y + a.h <= b.y + 1e-6 or b.y + b.h <= a.y + 1e-6)
        assert apart, (a, b)
    for r in rects:
        assert -1e-6 <= r.x and r.x + r.w <= lay.width + 1e-6
        assert 0 <= r.y and r.y + r.h <= lay.height + 1e-6
        check_text_fits(r)
    # Each laid-out node is a main node of exactly one box, or an attribute (a parameter
    # or constant) inside every box that reads it.
    laid_out = set(graph.live_ids) | set(graph.inputs)
    main = [i for r in rects for i in r.nodes]
    assert len(main) == len(set(main))
    attrs = {i for r in rects for i in r.attrs}
    assert set(main) | attrs == laid_out and not set(main) & attrs
    owner = {i: k for k, r in boxes.items() for i in r.nodes}
    for k, r in boxes.items():
        want = {j for i in r.nodes for j in graph.nodes[i].inputs if j in attrs}
        assert want <= set(r.attrs), k
        for j in r.attrs:  # and what those are views of, nothing else
            assert j in want or any(j in graph.nodes[a].inputs for a in r.attrs), k
    for i in attrs:  # a parameter, a constant, or a view or cast of those only
        op = graph.nodes[i].op
        assert (isinstance(op, Constant) or (isinstance(op, Input) and "." in op.path)
                or (op.category in ("shape", "cast")
                    and all(j in attrs for j in graph.nodes[i].inputs))), op
    expected = {(owner[j], owner[i]) for i in owner for j in graph.nodes[i].inputs
                if j in owner and owner[j] != owner[i]}
    assert set(lay.edges) == expected
    outs = set(graph.outputs)
    for r in rects:
        assert r.is_output == any(i in outs for i in r.nodes)


def check_text_fits(box) -> None:
    """Every line of a box fits inside it at the canvas font: nothing is cut."""
    assert box.lines and box.lines[0] == box.label
    assert len(box.line_nodes) == len(box.lines)
    for line in box.lines:
        assert text_width(line, FONT) + 2 * PAD <= box.w + 1e-6, (line, box.w)
    assert len(box.lines) * LINE + PAD <= box.h + 1e-6


def edge_spans(lay: Layout) -> list[float]:
    """Each edge's vertical extent as a share of the canvas's height."""
    return [abs(r[-1][1] - r[0][1]) / lay.height for r in lay.routes.values()]


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("module", [layout_module, sugiyama_module, view_module,
                                    labels_module])
def test_docstring_examples(module):
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    result = doctest.testmod(module, optionflags=flags, verbose=False)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("name", REAL_GRAPHS)
def test_real_graphs_laid_out_whole_and_collapsed(name):
    graph = REAL_GRAPHS[name]()
    for lay in (layout(graph), layout(graph, collapse=default_collapse(graph))):
        check_layered(graph, lay)
        assert count_crossings(lay) == brute_crossings(lay.ranks, lay.segments)


@pytest.mark.parametrize("name", REAL_GRAPHS)
def test_parameters_are_drawn_inside_their_consumers(name):
    graph = REAL_GRAPHS[name]()
    lay = layout(graph)
    params = {i for i in graph.inputs if "." in graph.nodes[i].op.path
              and not graph.nodes[i].op.path.startswith("captured.")}
    assert params
    boxed = {i for b in lay.boxes.values() for i in b.nodes}
    assert not params & boxed  # no box of its own, far from its user
    for b in lay.boxes.values():
        for i in b.nodes:
            for j in graph.nodes[i].inputs:
                if j in params:
                    assert j in b.attrs
                    name_line = graph.nodes[j].op.path.rsplit(".", 1)[-1]
                    row = b.line_nodes.index(j)
                    assert b.lines[row].split(" ")[0] in (name_line, name_line + ".T")
    # a Linear's x @ transpose(W): the transpose is drawn in the matmul, as `weight.T`
    lines = [line for b in lay.boxes.values() for line in b.lines]
    assert not any(b.label == "transpose" and any(j in params for j in
                   graph.nodes[b.nodes[0]].inputs) for b in lay.boxes.values())
    assert any(line.startswith("weight") for line in lines)


def test_a_matmul_shows_its_weight_and_shape():
    lay = layout(viewer_graphs.demo_forward())
    heads = [b for b in lay.boxes.values() if b.label == "matmul"
             and any(line.startswith("weight.T ") for line in b.lines)]
    assert len(heads) >= 2 * 6 + 1  # q, k, v, o, fc1, fc2 per block, and the head
    assert any(b.lines[1] == "16×16×32 f32" and "weight.T 32×32 f32" in b.lines for b in heads)


@pytest.mark.parametrize("name", REAL_GRAPHS)
def test_collapsed_edges_are_short(name):
    graph = REAL_GRAPHS[name]()
    lay = layout(graph, collapse=default_collapse(graph))
    limit = GRADIENT_SPAN if "gradient" in name else FORWARD_SPAN
    spans = edge_spans(lay)
    print(f"{name}: {len(lay.boxes)} boxes, longest edge {max(spans):.2f} of the height")
    assert max(spans) <= limit
    for (s, d), span in zip(lay.routes, spans):
        if span > FORWARD_SPAN:  # only a gradient graph's forward values for the backward
            assert "gradient" in name and isinstance(d, str) and "#" in d, (s, d, span)


def test_demo_default_collapse_is_its_modules():
    graph = viewer_graphs.demo_forward()
    assert default_collapse(graph) == ["params.blocks.0", "params.blocks.1", "params.norm",
                                       "params.head"]
    lay = layout(graph, collapse=default_collapse(graph))
    groups = {b.label for b in lay.boxes.values() if b.collapsed}
    assert {"[+] blocks.0", "[+] blocks.1"} <= groups
    assert len(lay.boxes) <= 15


def test_expanding_a_block_opens_its_layers_and_nothing_else():
    graph = viewer_graphs.demo_forward()
    collapse = default_collapse(graph)
    closed = layout(graph, collapse=collapse)
    opened = layout(graph, collapse=collapse, expanded=["params.blocks.0"])
    check_layered(graph, opened)
    assert "params.blocks.0" in closed.boxes and "params.blocks.0" not in opened.boxes
    assert "params.blocks.1" in opened.boxes
    inner = {k for k in opened.boxes if isinstance(k, str) and k.startswith("params.blocks.0.")}
    assert {"params.blocks.0.attn", "params.blocks.0.ff"} <= inner
    # the nodes of block 0 are the same, in other boxes
    before = set(closed.boxes["params.blocks.0"].nodes)
    after = {i for k, b in opened.boxes.items() for i in b.nodes
             if k in inner or (isinstance(k, int) and closed.scopes[k] == "params.blocks.0")}
    assert after == before
    # a layer norm is one box: its normalising ops serve it only, so they are its
    norm = opened.boxes["params.blocks.0.norm1"]
    paths = {getattr(graph.nodes[i].op, "path", None) for i in norm.attrs}
    assert len(norm.nodes) >= 8 and paths - {None} == {
        "params.blocks.0.norm1.weight", "params.blocks.0.norm1.bias"}
    deeper = layout(graph, collapse=collapse,
                    expanded=["params.blocks.0", "params.blocks.0.attn"])
    check_layered(graph, deeper)
    assert "params.blocks.0.attn" not in deeper.boxes


@pytest.mark.parametrize("name", REAL_GRAPHS)
@pytest.mark.parametrize("viewport", [(1100, 700), (400, 300), (1600, 1000), (200, 900)])
def test_fit_shows_every_box(name, viewport):
    graph = REAL_GRAPHS[name]()
    for lay in (layout(graph), layout(graph, collapse=default_collapse(graph))):
        v = fit(lay.width, lay.height, *viewport)
        for b in lay.boxes.values():
            x0, y0 = v.to_screen(b.x, b.y)
            x1, y1 = v.to_screen(b.x + b.w, b.y + b.h)
            assert 0 <= x0 and x1 <= viewport[0] and 0 <= y0 and y1 <= viewport[1]


@given(st.floats(1.0, 1e6), st.floats(1.0, 1e6), st.floats(50.0, 4000.0),
       st.floats(50.0, 4000.0))
def test_fit_and_the_minimap_hold_any_canvas(width, height, view_w, view_h):
    from pyasg.viewer.view import minimap

    v = fit(width, height, view_w, view_h)
    (x0, y0), (x1, y1) = v.to_screen(0.0, 0.0), v.to_screen(width, height)
    assert -1e-6 <= x0 and x1 <= view_w + 1e-6 and -1e-6 <= y0 and y1 <= view_h + 1e-6
    mm, _ = minimap(width, height, v, view_w, view_h, 170.0)
    (a, b), (c, d) = mm.to_screen(0.0, 0.0), mm.to_screen(width, height)
    assert -1e-6 <= a and c <= 170.0 + 1e-6 and -1e-6 <= b and d <= 170.0 + 1e-6


@pytest.mark.skipif(not os.path.exists(MONO_FONT), reason="DejaVu Sans Mono not installed")
def test_the_canvas_font_is_monospaced_for_every_label_character():
    """The widths `layout` sizes boxes by hold for the font the canvas draws with."""
    ttlib = pytest.importorskip("fontTools.ttLib")
    font = ttlib.TTFont(MONO_FONT)
    cmap, metrics = font.getBestCmap(), font["hmtx"].metrics
    height = font["hhea"].ascent - font["hhea"].descent  # what Dear ImGui's size is
    chars = set()
    for make in REAL_GRAPHS.values():
        graph = make()
        for lang in ("en", "ru"):
            lay = layout(graph, collapse=default_collapse(graph), lang=lang)
            chars |= {c for b in lay.boxes.values() for line in b.lines for c in line}
    chars |= set("абвгдеёжзийклмнопрстуфхцчшщъыьэюя×[]+#")
    advances = set()
    for c in sorted(chars):
        assert ord(c) in cmap, repr(c)
        advances.add(metrics[cmap[ord(c)]][0])
    assert len(advances) == 1  # one width for every character a box shows
    (advance,) = advances
    # the width the layout assumes: the font's, rounded up by at most half a pixel
    assert advance / height <= CHAR_WIDTH <= advance / height + 0.5 / 26


def test_block_scopes(block_grad):
    sc = scopes(block_grad)
    paths = {i: block_grad.nodes[i].op.path for i in block_grad.inputs}
    by_path = {p: i for i, p in paths.items()}
    assert sc[by_path["p.attn.w_q.weight"]] == "p.attn.w_q"
    assert sc[by_path["p.norm1.weight"]] == "p.norm1"
    assert sc[by_path["x"]] == ""
    for i in block_grad.live_ids:
        node = block_grad.nodes[i]
        params = {sc[j] for j in node.inputs
                  if isinstance(block_grad.nodes[j].op, Input) and sc[j]}
        if len(params) == 1:
            assert sc[i] == params.pop()
    assert sum(1 for s in sc.values() if s.startswith("p.attn")) > 40


def test_captured_values_are_data_not_parameters():
    sc = scopes(viewer_graphs.demo_forward())
    g = viewer_graphs.demo_forward()
    captured = [i for i in g.inputs if g.nodes[i].op.path.startswith("captured.")]
    assert captured and all(sc[i] == "" for i in captured)
    lay = layout(g)
    assert all(i in lay.boxes for i in captured)


def test_transformer_block_gradient_layout(block_grad):
    lay = layout(block_grad)
    check_layered(block_grad, lay)
    assert sum(b.is_output for b in lay.boxes.values()) == len(set(block_grad.outputs))
    labels = {b.label for b in lay.boxes.values()}
    assert {"x", "matmul"} <= labels and "p.attn.w_q.weight" not in labels
    assert count_crossings(lay) == brute_crossings(lay.ranks, lay.segments)


def test_collapse_attention(block_grad):
    full = layout(block_grad)
    small = layout(block_grad, collapse=["p.attn"])
    check_layered(block_grad, small)
    assert len(small.boxes) < len(full.boxes)
    groups = [k for k in small.boxes if isinstance(k, str)]
    assert groups and all(k == "p.attn" or k.startswith("p.attn#") for k in groups)
    sc = scopes(block_grad)
    inside = {i for k in groups for i in small.boxes[k].nodes}
    main = {i for b in small.boxes.values() for i in b.nodes}
    assert inside | {i for i in main if sc[i].startswith("p.attn") and i in small.boxes} == {
        i for i in main if sc[i].startswith("p.attn")}
    for k in groups:
        box = small.boxes[k]
        assert box.collapsed and box.category == "group" and len(box.nodes) > 1
        assert box.lines[1] == f"{len(box.nodes)} ops"
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
    n2 = b.add(Exp(), (b.add(Mul(), (n1, v)),))  # p.b, between the two halves of p.a
    n3 = b.add(Mul(), (n2, w))                # p.a again
    n4 = b.add(Exp(), (n3,))
    g = b.build([n4])
    lay = layout(g, collapse=["p.a"])
    check_layered(g, lay)
    # p.a's first half is one node (n1), drawn as itself; its second half is a box, with
    # the exp that feeds only p.a (`scopes`: what feeds one layer only belongs to it)
    assert n1 in lay.boxes and lay.boxes["p.a#2"].nodes == (n2, n3, n4)
    assert lay.boxes[n1].attrs == (w,) and lay.boxes["p.a#2"].attrs == (w,)


def test_two_groups_crossing_each_other_stay_a_dag():
    b = GraphBuilder()
    wa = b.add_input("p.a.w", TensorType(()))
    wb = b.add_input("p.b.w", TensorType(()))
    a1 = b.add(Exp(), (b.add(Exp(), (wa,)),))
    b2 = b.add(Exp(), (b.add(Exp(), (wb,)),))
    b1 = b.add(Mul(), (a1, wb))
    a2 = b.add(Mul(), (b2, wa))
    g = b.build([b1, a2])
    lay = layout(g, collapse=["p.a", "p.b"])
    check_layered(g, lay)
    assert nx.is_directed_acyclic_graph(nx.DiGraph(lay.edges))


def test_groups_smaller_than_min_group_are_drawn_as_their_nodes():
    b = GraphBuilder()
    x = b.add_input("x", TensorType((3,)))
    w = b.add_input("p.a.w", TensorType((3,)))
    one = b.add(Mul(), (x, w))
    two = b.add(Exp(), (one,))
    g = b.build([two])
    assert "p.a" in layout(g, collapse=["p.a"]).boxes
    small = layout(g, collapse=["p.a"], min_group=3)
    check_layered(g, small)
    assert set(small.boxes) == {x, one, two}


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
    unused_param = b.add_input("p.w", TensorType(()))
    dead = b.add(Exp(), (x,))
    out = b.add(Add(), (x, x))
    g = b.build([out])
    lay = layout(g)
    check_layered(g, lay)
    assert unused in lay.boxes and unused_param in lay.boxes and dead not in lay.boxes


@st.composite
def named_dags(draw):
    """Small random DAGs whose inputs have dotted parameter paths, some constants."""
    b = GraphBuilder()
    names = ["x", "p.a.w", "p.a.b", "p.b.w", "p.c.d.w", "q.w"]
    chosen = draw(st.lists(st.sampled_from(names), min_size=1, max_size=5, unique=True))
    ids = [b.add_input(n, TensorType((2,))) for n in chosen]
    if draw(st.booleans()):
        ids.append(b.add(Constant.of([1.0, 2.0], "float32")))
    for _ in range(draw(st.integers(1, 25))):
        if draw(st.booleans()):
            ids.append(b.add(Exp(), (draw(st.sampled_from(ids)),)))
        else:
            op = draw(st.sampled_from([Add(), Mul()]))
            ids.append(b.add(op, (draw(st.sampled_from(ids)), draw(st.sampled_from(ids)))))
    outs = draw(st.lists(st.sampled_from(ids), min_size=1, max_size=3))
    collapse = draw(st.lists(st.sampled_from(["p", "p.a", "p.b", "p.c", "q"]), max_size=3))
    expanded = draw(st.lists(st.sampled_from(["p", "p.a", "p.c", "p.c.d"]), max_size=2))
    return b.build(outs), collapse, expanded


@given(named_dags())
def test_random_dags_layered(case):
    graph, collapse, expanded = case
    for lay in (layout(graph), layout(graph, collapse=collapse, expanded=expanded)):
        check_layered(graph, lay)
        assert count_crossings(lay) == brute_crossings(lay.ranks, lay.segments)
        v = fit(lay.width, lay.height, 300, 200)
        for bx in lay.boxes.values():
            x1, y1 = v.to_screen(bx.x + bx.w, bx.y + bx.h)
            assert x1 <= 300 + 1e-6 and y1 <= 200 + 1e-6


@given(random_cases())
def test_random_traced_graphs(case):
    check_layered(case.graph, layout(case.graph))


def test_barycentre_never_worse_than_the_first_order():
    import random

    from pyasg.viewer import sugiyama

    improved = 0
    for seed in range(40):
        rng = random.Random(seed)
        n = rng.randint(4, 30)
        edges = sorted({(a, b) for _ in range(2 * n)
                        for a, b in [sorted(rng.sample(range(n), 2))]})
        sizes = {k: (20.0, 10.0) for k in range(n)}
        d = sugiyama.draw(range(n), edges, sizes)
        unsorted = [sorted(r, key=lambda k: (k.src if isinstance(k, sugiyama._Dummy) else k))
                    for r in d.ranks]
        before = brute_crossings(unsorted, d.segments)
        assert d.crossings == brute_crossings(d.ranks, d.segments) <= before
        improved += d.crossings < before
    assert improved >= 10


def test_two_thousand_nodes():
    blocks = [nn.TransformerBlock(32, 4) for _ in range(29)]
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
    collapsed = layout(g, collapse=default_collapse(g))
    check_layered(g, collapsed)
    assert len(collapsed.boxes) <= 40
    assert max(edge_spans(collapsed)) <= FORWARD_SPAN
    assert not math.isnan(lay.width)


def test_a_two_thousand_node_gradient_graph_collapses_to_a_readable_few_boxes():
    """Eleven blocks' gradient graph: `blocks.*` (and the default, each block) gives each
    block a box for its forward half and one or two for its backward half; 2,000 nodes
    become a few dozen boxes, whose edges stay within the stated span."""
    blocks = [nn.TransformerBlock(32, 4, causal=True) for _ in range(11)]
    params = {"blocks": {str(i): b.init(pyasg.random.key(i)) for i, b in enumerate(blocks)}}

    def loss(ps, x):
        for i, block in enumerate(blocks):
            x = block(ps["blocks"][str(i)], x)
        return pyasg.mean(x ** 2)

    g = pyasg.make_graph(lambda ps, x: pyasg.value_and_grad(loss)(ps, x))(
        params, np.ones((2, 5, 32), np.float32))
    n = len(set(g.live_ids) | set(g.inputs))
    assert n >= 2000
    lay = layout(g, collapse=["blocks.*"], min_group=layout_module.MIN_GROUP)
    check_layered(g, lay)
    groups = [k for k, b in lay.boxes.items() if b.collapsed]
    per_block = {i: [k for k in groups if k.split("#")[0] == f"ps.blocks.{i}"]
                 for i in range(11)}
    assert all(1 <= len(keys) <= 3 for keys in per_block.values()), per_block
    main = sum(len(b.nodes) for b in lay.boxes.values())
    assert sum(len(lay.boxes[k].nodes) for k in groups) >= 0.95 * main
    print(f"{n} nodes -> {len(lay.boxes)} boxes, longest edge {max(edge_spans(lay)):.2f}")
    assert len(lay.boxes) <= 60
    assert max(edge_spans(lay)) <= GRADIENT_SPAN
    default = layout(g, collapse=default_collapse(g), min_group=layout_module.MIN_GROUP)
    assert set(default.boxes) == set(lay.boxes)
    # all expanded ("Expand all"): 1,700 boxes and 180,000 bend points, still a drawing
    start = time.perf_counter()
    full = layout(g)
    print(f"expanded: {len(full.boxes)} boxes in {time.perf_counter() - start:.1f} s")
    check_layered(g, full)
