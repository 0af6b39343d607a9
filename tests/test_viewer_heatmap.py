"""The heat map and the model lab in the real viewer, under an X display (Xvfb in CI).

One session per language: the test profiles an MLP's training step and publishes its
cost (`pyasg.viewer.cost.publish_cost`), then trains another MLP with a `ModelLab`
while the viewer's script colours the graph by time, selects the costliest node,
and asks for ReLU -> GELU through the lab panel (`{"cmd": "lab"}` sets its widgets and
presses Apply; the request goes over the real queue). The tests read the screenshot and the
app's dumped state; `docs/viewer-heatmap.png` is the English screenshot.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest
from test_viewer_app import _wait_file, colours

import pyasg
from pyasg import losses, nn, optim
from pyasg.data import ArrayDataset, DataLoader
from pyasg.events import GraphReady, publish
from pyasg.train import LambdaCallback, Trainer
from pyasg.train.lab import ModelLab
from pyasg.viewer import texts
from pyasg.viewer.app import pane_sizes
from pyasg.viewer.cost import NO_COST, format_value, heat_color, measure, publish_cost
from pyasg.viewer.layout import MIN_GROUP, box_nodes, default_collapse, layout
from pyasg.viewer.process import launch

pytestmark = [
    pytest.mark.display,
    pytest.mark.skipif(not os.environ.get("DISPLAY"), reason="needs an X display (xvfb-run)"),
]

WAIT_POINTS = 16


def _shown_layout(graph, collapse=()):
    """The layout the app draws: the typed scopes collapsed, else the module scopes."""
    return layout(graph, collapse=list(collapse) or default_collapse(graph),
                  min_group=MIN_GROUP)


def _weight(graph):
    (weight,) = [i for i in graph.inputs
                 if getattr(graph.nodes[i].op, "path", None) == "params.0.weight"]
    return weight


def _mlp_step():
    model = nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 64), nn.Tanh(),
                          nn.Linear(64, 1))
    params = model.init(pyasg.random.key(0))
    x = np.random.default_rng(0).normal(size=(256, 8)).astype(np.float32)
    y = np.sin(x[:, :1])

    def step(params, x, y):
        loss, grads = pyasg.value_and_grad(lambda p: losses.mse_loss(model(p, x), y))(params)
        return pyasg.tree_map(lambda p, g: p - 0.05 * g, params, grads), loss

    return measure(pyasg.jit(step, name="mlp_step"), params, x, y, repeat=3, warmup=1)


def _session(tmp: str, lang: str) -> dict:
    cost = _mlp_step()
    top = max((i for i in cost.nodes), key=lambda i: cost.nodes[i].seconds)
    # the collapsed box holding the first layer's weight, as the app lays it out
    (group,) = [k for k, b in _shown_layout(cost.graph, ["params.0"]).boxes.items()
                if b.collapsed and _weight(cost.graph) in b.nodes + b.attrs]
    files = {name: os.path.join(tmp, name) for name in ("heat.png", "state.json",
                                                         "box.json", "memory.json",
                                                         "again.json")}
    script = [
        {"cmd": "frames", "n": 3},
        {"cmd": "wait_steps", "n": 3},
        {"cmd": "heat", "metric": "time"},
        {"cmd": "select", "id": top},
        {"cmd": "lab", "what": "activation", "path": "1", "value": "gelu"},
        {"cmd": "wait_steps", "n": WAIT_POINTS},
        {"cmd": "frames", "n": 4},
        {"cmd": "screenshot", "path": files["heat.png"]},
        {"cmd": "dump", "path": files["state.json"]},
        {"cmd": "collapse", "prefix": "params.0"},
        {"cmd": "select", "box": group},
        {"cmd": "dump", "path": files["box.json"]},
        {"cmd": "collapse", "prefix": ""},
        {"cmd": "heat", "metric": "memory"},
        {"cmd": "dump", "path": files["memory.json"]},
        {"cmd": "wait_steps", "n": 10**9, "timeout": 3},  # a pause: the test publishes
        {"cmd": "dump", "path": files["again.json"]},
    ]
    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 3)).astype(np.float32)
    data = DataLoader(ArrayDataset(x, np.tanh(x.sum(1, keepdims=True))), batch_size=16)
    lab = ModelLab()

    def pace(trainer, logs):  # slow enough for the viewer's script to act in between
        time.sleep(0.03)
        done = lab.changes and trainer.step >= max(lab.changes[0].step + 6, WAIT_POINTS + 2)
        if done or os.path.exists(files["state.json"]):
            trainer.stop()

    model = nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Linear(16, 1))
    trainer = Trainer(model, losses.mse_loss, optim.Adam(lr=0.01), data,
                      callbacks=[lab, LambdaCallback(on_step_end=pace)], progress=False)
    handle = launch(lang=lang, script=script, width=1100, height=760)
    try:
        publish_cost(cost)
        trainer.fit(steps=1500)
        _wait_file(files["memory.json"], handle)
        # the step compiled again (as after a model-lab change): the old cost must not
        # colour it
        publish(GraphReady("mlp_step", _other_graph(), "fused"))
        _wait_file(files["again.json"], handle)
    finally:
        code = handle.close(timeout=15.0)
    states = {}
    for name in ("state.json", "box.json", "memory.json", "again.json"):
        with open(files[name], encoding="utf-8") as f:
            states[name] = json.load(f)
    return {"exitcode": code, "state": states["state.json"], "box": states["box.json"],
            "memory": states["memory.json"],
            "again": states["again.json"], "cost": cost, "top": top, "lab": lab,
            "trainer": trainer, **files}


def _other_graph():
    return pyasg.make_graph(lambda x: pyasg.exp(x) * 2.0)(np.ones(3, np.float32))


@pytest.fixture(scope="module")
def english(tmp_path_factory):
    return _session(str(tmp_path_factory.mktemp("heat_en")), "en")


@pytest.fixture(scope="module")
def russian(tmp_path_factory):
    return _session(str(tmp_path_factory.mktemp("heat_ru")), "ru")


def test_the_graph_is_coloured_by_time_with_a_legend(english):
    state, cost = english["state"], english["cost"]
    assert state["graph"] == ["mlp_step", "fused"] and state["heat"] == "time"
    lay = _shown_layout(cost.graph)
    times = {str(k): cost.value(nodes, "time") for k, nodes in box_nodes(lay).items()}
    top = max(times.values())
    assert state["heat_legend"] == ["Cost per step (time):", "no cost", "0.000 ms",
                                    format_value(top, "time")]
    drawn = colours(english["heat.png"])
    # the costliest box, the boxes without a kernel and the legend's ramp are on screen
    assert heat_color(1.0) in drawn and NO_COST in drawn
    assert {heat_color(k / 35) for k in range(36)} <= drawn
    assert state["heat_colors"][max(times, key=times.get)] == list(heat_color(1.0))


def test_the_inspector_shows_the_nodes_cost_and_kernel(english):
    state, cost = english["state"], english["cost"]
    node = cost.nodes[english["top"]]
    assert state["selected_node"] == english["top"]
    lines = state["inspector"]
    assert f"Time: {node.seconds * 1e3:.3f} ms" in " ".join(lines)
    assert any(line.startswith("Memory: ") and node.memory in line for line in lines)
    if node.source is not None:
        assert "Generated kernel:" in lines and node.source in lines


def test_a_collapsed_box_shows_the_sum_of_its_nodes(english):
    cost, box_state = english["cost"], english["box"]
    lay = _shown_layout(cost.graph, ["params.0"])
    (key,) = [k for k, b in lay.boxes.items()
              if b.collapsed and _weight(cost.graph) in b.nodes + b.attrs]
    box = lay.boxes[key]
    assert len(box.nodes) > 1
    lines = box_state["inspector"]
    assert lines[0] == f"Collapsed group: {box.label}"
    seconds = cost.value(box_nodes(lay)[key], "time")
    assert seconds > 0
    at = lines.index("Cost per step:")  # the cost section follows the group's summary
    assert lines[at + 1].startswith(f"Time: {format_value(seconds, 'time')} ")


def test_colouring_by_memory_follows_the_memory_plan(english):
    cost, state = english["cost"], english["memory"]
    lay = _shown_layout(cost.graph)
    sizes = {str(k): cost.value(nodes, "memory") for k, nodes in box_nodes(lay).items()}
    assert state["heat"] == "memory"
    assert state["heat_legend"][-1] == format_value(max(sizes.values()), "memory")
    biggest = max(sizes, key=sizes.get)
    assert state["heat_colors"][biggest] == list(heat_color(1.0))
    assert all(state["heat_colors"][k] == list(NO_COST) for k, v in sizes.items() if v == 0)


def test_a_cost_never_colours_a_graph_it_was_not_measured_on(english):
    again = english["again"]
    assert again["graph"] == ["mlp_step", "fused"]
    assert again["boxes"] == len(layout(_other_graph()).boxes)
    assert again["heat_legend"] == ["no profile of this graph yet"]
    assert again["heat_colors"] == {}


def test_a_lab_request_from_the_viewer_changed_the_training_model(english):
    lab, trainer, state = english["lab"], english["trainer"], english["state"]
    assert [(c.what, c.path, c.value, c.before) for c in lab.changes] == [
        ("activation", "1", "gelu", "relu")]
    assert type(trainer.model[1]) is nn.GELU
    assert state["markers"] == [[lab.changes[0].step, "activation 1: relu → gelu"]]
    assert state["lab_offers"] > 0 and state["lab_sent"] == 1
    assert english["exitcode"] == 0


def test_russian_legend_and_lab(russian):
    state = russian["state"]
    assert state["heat_legend"][:2] == [texts.lab_text("heat_legend", "ru").format(
        metric=texts.lab_text("heat_time", "ru")), "без затрат"]
    assert any(line.startswith("Время: ") for line in state["inspector"])
    assert len(state["markers"]) == 1


def test_the_lab_panel_shares_the_charts_row_under_the_canvas(english):
    state = english["state"]
    panes = state["panes"]
    cx, cy, cw, ch = panes["canvas_window"]
    x, y, w, h = panes["chart"]
    lx, ly, lw, lh = panes["lab_window"]
    ix = panes["inspector_window"][0]
    sizes = pane_sizes(*state["window"], chart=True)
    assert (w, h) == tuple(sizes["chart"]) and (lw, lh) == tuple(sizes["lab"])
    assert y == ly and y >= cy + ch  # one row, under the canvas
    assert x == cx and x + w < lx and lx + lw <= cx + cw <= ix  # left of the inspector
    assert y + h <= state["window"][1]
