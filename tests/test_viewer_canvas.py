"""The viewer's canvas on the demo's graphs, under an X display (Xvfb in CI).

One viewer session per language (a module fixture) runs `pyasg.viewer.app.run` in a
subprocess on the demo's loss forward and gradient graphs (`viewer_graphs`), with the
parameter kinds the demo records and three steps; its script clicks, zooms, presses
F, resizes, takes screenshots and dumps the app's state. The tests read the dumps (the
boxes' rectangles on screen, the labels the renderer measured too wide for their box,
the inspector's texts) and the screenshots. `python tests/viewer_shots.py docs/`
writes the README's pictures from the same session.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from test_viewer_app import colours

from pyasg.viewer import texts
from pyasg.viewer.app import CATEGORY_COLORS, pane_sizes
from pyasg.viewer.canvas import MINIMAP, MINIMAP_MARGIN
from pyasg.viewer.screen import screen_size
from pyasg.viewer.view import View, minimap

pytestmark = [
    pytest.mark.display,
    pytest.mark.skipif(not os.environ.get("DISPLAY"), reason="needs an X display (xvfb-run)"),
]

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)

#: The session: steps of the script, each dumping state `dN.json` or a screenshot.
SESSION = """
import json, queue, sys
sys.path[:0] = [{root!r}, {tests!r}]
import viewer_graphs
from pyasg import events
from pyasg.events import GraphReady, ParamsDescribed, StepDone
from pyasg.viewer import app
from pyasg.viewer.protocol import encode
graphs = viewer_graphs.demo_graphs()
q = queue.Queue()
q.put(encode(GraphReady("loss_fn", graphs[("loss_fn", "forward")], "forward")))
q.put(encode(GraphReady("loss_fn", graphs[("loss_fn", "gradient")], "gradient")))
q.put(encode(ParamsDescribed(events.described_params())))
for step in range(3):
    q.put(encode(StepDone(step=step, loss=4.0 / (step + 1), metrics={{"accuracy": 0.1 * step}})))
out = {out!r}
app.run(q, {lang!r}, static={static!r}, script=[
    {{"cmd": "wait_steps", "n": 3}},
    {{"cmd": "frames", "n": 3}},
    {{"cmd": "screenshot", "path": out + "/collapsed.png"}},
    {{"cmd": "dump", "path": out + "/d0.json"}},
    {{"cmd": "click", "label": "[+] blocks.0"}},
    {{"cmd": "frames", "n": 3}},
    {{"cmd": "screenshot", "path": out + "/expanded.png"}},
    {{"cmd": "dump", "path": out + "/d1.json"}},
    {{"cmd": "click", "label": "[+] blocks.0.attn", "right": True}},
    {{"cmd": "dump", "path": out + "/d2.json"}},
    {{"cmd": "click", "label": "[+] blocks.0"}},
    {{"cmd": "select", "name": "params.blocks.0.attn.w_q.weight"}},
    {{"cmd": "frames", "n": 3}},
    {{"cmd": "screenshot", "path": out + "/inspector.png"}},
    {{"cmd": "dump", "path": out + "/d3.json"}},
    {{"cmd": "zoom", "factor": 4.0}}, {{"cmd": "pan", "dx": 300, "dy": -200}},
    {{"cmd": "dump", "path": out + "/d4.json"}},
    {{"cmd": "click", "x": {minimap_x!r}, "y": {minimap_y!r}}},
    {{"cmd": "dump", "path": out + "/d4m.json"}},
    {{"cmd": "key", "key": "F"}},
    {{"cmd": "dump", "path": out + "/d5.json"}},
    {{"cmd": "show", "name": "loss_fn", "kind": "gradient"}},
    {{"cmd": "frames", "n": 3}},
    {{"cmd": "screenshot", "path": out + "/gradient.png"}},
    {{"cmd": "dump", "path": out + "/d6.json"}},
    {{"cmd": "resize", "width": {resize_w!r}, "height": {resize_h!r}}},
    {{"cmd": "key", "key": "F"}},
    {{"cmd": "dump", "path": out + "/d7.json"}},
    {{"cmd": "quit"}}])
"""


#: The window's size after the session's resize: three quarters of the screen's.
RESIZED = tuple(3 * side // 4 for side in screen_size())


def _minimap_click() -> dict[str, float]:
    """A point inside the minimap (a quarter from its top-left corner) of the canvas the
    session's screen gives."""
    w, h = pane_sizes(*screen_size(), chart=True)["canvas"]
    x0, y0 = w - MINIMAP - MINIMAP_MARGIN, h - MINIMAP - MINIMAP_MARGIN
    return {"minimap_x": x0 + MINIMAP / 4, "minimap_y": y0 + MINIMAP / 4,
            "resize_w": RESIZED[0], "resize_h": RESIZED[1]}


MINIMAP_CLICK = _minimap_click()


def run_session(out: str, lang: str, static: bool = False) -> dict:
    """Run the session into folder `out`; its dumps by name, and the exit code."""
    code = SESSION.format(root=ROOT, tests=TESTS, out=out, lang=lang, static=static,
                          **MINIMAP_CLICK)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=180, env={**os.environ, "PYTHONPATH": ROOT})
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict = {"out": out, "minimap_click": (MINIMAP_CLICK["minimap_x"],
                                                   MINIMAP_CLICK["minimap_y"])}
    for name in sorted(os.listdir(out)):
        if name.endswith(".json"):
            with open(os.path.join(out, name), encoding="utf-8") as f:
                result[name.removesuffix(".json")] = json.load(f)
    return result


@pytest.fixture(scope="module")
def english(tmp_path_factory):
    return run_session(str(tmp_path_factory.mktemp("canvas_en")), "en")


@pytest.fixture(scope="module")
def russian(tmp_path_factory):
    return run_session(str(tmp_path_factory.mktemp("canvas_ru")), "ru")


def labels(state: dict) -> list[str]:
    return [b["label"] for b in state["screen_boxes"]]


def inside_canvas(state: dict) -> bool:
    w, h = state["canvas"]
    return all(0 <= x0 and 0 <= y0 and x1 <= w and y1 <= h
               for x0, y0, x1, y1 in (b["rect"] for b in state["screen_boxes"]))


# --------------------------------------------------------------------------- tests


def test_the_window_fills_the_screen(english):
    assert english["d0"]["window"] == list(screen_size())
    assert english["d0"]["canvas"] == list(pane_sizes(*screen_size(), chart=True)["canvas"])


def test_the_demo_opens_collapsed_and_fitted(english):
    state = english["d0"]
    assert {"[+] blocks.0", "[+] blocks.1"} <= set(labels(state))
    assert state["boxes"] <= 15
    assert inside_canvas(state)


@pytest.mark.parametrize("dump", ["d0", "d1", "d3", "d6"])
def test_no_label_is_wider_than_its_box(english, russian, dump):
    """Measured by Dear PyGui with the canvas font, as drawn."""
    assert english[dump]["overflow"] == [] and russian[dump]["overflow"] == []


def test_a_click_expands_a_block_and_a_right_click_collapses_it(english):
    opened, closed = english["d1"], english["d2"]
    assert opened["expanded"] == ["params.blocks.0"]
    assert {"[+] blocks.0.attn", "[+] blocks.0.ff", "[+] blocks.1"} <= set(labels(opened))
    # each layer norm of the block is one box, its normalising ops included
    assert {"[+] blocks.0.norm1", "[+] blocks.0.norm2"} <= set(labels(opened))
    assert "[+] blocks.0" not in labels(opened)
    assert closed["expanded"] == [] and "[+] blocks.0" in labels(closed)


def test_f_fits_the_graph_again(english):
    zoomed, fitted = english["d4"], english["d5"]
    assert not inside_canvas(zoomed)
    assert inside_canvas(fitted)
    assert inside_canvas(english["d6"])  # a graph shown is fitted on open


def test_a_click_on_the_minimap_centres_the_view_there(english):
    before, after = english["d4"], english["d4m"]
    w, h = before["canvas"]
    view = View(before["scale"], tuple(before["offset"]))
    mm, _ = minimap(*before["layout_size"], view, w, h, MINIMAP)
    x0, y0 = w - MINIMAP - MINIMAP_MARGIN, h - MINIMAP - MINIMAP_MARGIN
    target = mm.to_canvas(english["minimap_click"][0] - x0, english["minimap_click"][1] - y0)
    moved = View(after["scale"], tuple(after["offset"]))
    assert after["scale"] == before["scale"]
    assert moved.to_screen(*target) == pytest.approx((w / 2, h / 2))


def test_the_panes_follow_a_resize(english):
    before, after = english["d6"], english["d7"]
    assert after["window"] == list(RESIZED)
    assert after["canvas"][0] < before["canvas"][0] and after["canvas"][1] < before["canvas"][1]
    assert inside_canvas(after)


def test_the_inspector_explains_first_and_names_the_layer(english):
    state = english["d3"]
    text = state["inspector"]
    assert text[0] == "Layer parameter: blocks.0.attn.w_q (Linear)"
    assert text[1] == "Shape: 32×32 f32"
    assert text[2] == texts.ui_text("role", "en") + ":"
    role = texts.explain_param("params.blocks.0.attn.w_q.weight", "Linear.weight", "en")
    assert text[3] == role
    # the technical details come after the explanation
    assert text.index("Op: input  (%4, params.blocks.0.attn.w_q.weight)") > 3


def test_an_op_names_its_source_line_in_the_model(english, tmp_path):
    # select a matmul of block 0 in the session's graph: its source line is charlm.py's
    code = SESSION.split("app.run(")[0] + """
app.run(q, "en", script=[
    {{"cmd": "click", "label": "[+] blocks.0"}}, {{"cmd": "click", "label": "[+] blocks.0.attn"}},
    {{"cmd": "select", "op": "matmul"}}, {{"cmd": "dump", "path": out + "/m.json"}},
    {{"cmd": "quit"}}])
"""
    code = code.format(root=ROOT, tests=TESTS, out=str(tmp_path), lang="en", static=False,
                       **MINIMAP_CLICK)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=180, env={**os.environ, "PYTHONPATH": ROOT})
    assert done.returncode == 0, done.stderr[-3000:]
    with open(tmp_path / "m.json", encoding="utf-8") as f:
        state = json.load(f)
    sources = [line for line in state["inspector"] if line.startswith("Source: ")]
    assert len(sources) == 1 and "charlm.py:" in sources[0], state["inspector"]
    assert "pyasg:" not in sources[0].replace("charlm.py", "")


def test_russian_legend_help_and_labels(russian):
    state = russian["d0"]
    assert state["lang"] == "ru"
    assert state["legend"] == [texts.category_name(c, "ru") for c in state["categories"]]
    assert "свёрнутый модуль" in state["legend"]
    assert state["help"] == texts.ui_text("help", "ru")
    counts = [b["label"] for b in state["screen_boxes"] if b["collapsed"]]
    assert counts  # groups, and their count lines are Russian (checked in the layout)
    inspector = russian["d3"]["inspector"]
    assert inspector[0] == "Параметр слоя: blocks.0.attn.w_q (Linear)"
    assert russian["d0"]["status"] == "Идёт обучение"
    assert russian["d0"]["combo"] == "loss_fn / прямой проход"
    assert russian["d6"]["combo"] == "loss_fn / градиент"


def test_every_chart_line_is_labelled(english):
    state = english["d0"]
    assert state["chart"] == {"loss": 3, "accuracy": 3}
    assert state["series_labels"] == ["Loss", "accuracy"]
    # whole steps, few enough that Dear PyGui draws no unlabelled line among them
    assert state["x_ticks"] == [0, 1, 2]


def test_every_category_drawn_has_its_colour_in_the_screenshot(english):
    state = english["d1"]
    seen = colours(os.path.join(english["out"], "expanded.png"))
    for category in state["categories"]:
        assert tuple(CATEGORY_COLORS[category]) in seen, category


def test_a_saved_graph_is_shown_without_training_status_or_chart(tmp_path):
    state = run_session(str(tmp_path), "en", static=True)["d0"]
    assert state["chart_shown"] is False and state["chart"] == {"loss": 0}
    assert set(state["panes"]) == {"canvas_window", "inspector_window"}  # no lab either
    assert state["status"] == texts.ui_text("static", "en")
    assert "Training" not in state["status"]
    h = state["canvas"][1]
    assert h > 0.75 * screen_size()[1]  # the canvas takes the chart's room
