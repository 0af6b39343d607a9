"""The Dear PyGui viewer, driven under an X display (Xvfb in CI) through its `script` hook.

Each language gets one viewer session (a module fixture): the test publishes a real
graph and three steps, the script takes screenshots and dumps the app's state, and
the tests look at both. PNGs are read with the small decoder below (zlib only).
"""

from __future__ import annotations

import json
import os
import struct
import time
import zlib

import numpy as np
import pytest

import pyasg
from pyasg.events import GraphReady, StepDone, publish
from pyasg.viewer import texts
from pyasg.viewer.process import launch

pytestmark = [
    pytest.mark.display,
    pytest.mark.skipif(not os.environ.get("DISPLAY"), reason="needs an X display (xvfb-run)"),
]

TARGET = "pyasg.viewer.app:run"


# --------------------------------------------------------------------------- PNG


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def read_png(path: str) -> tuple[int, int, int, bytes]:
    """(width, height, channels, raw pixel bytes) of an 8-bit RGB or RGBA PNG."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, b""
    width = height = channels = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and interlace == 0 and color in (2, 6), (depth, color, interlace)
            channels = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    raw = zlib.decompress(idat)
    stride = width * channels
    out = bytearray(height * stride)
    prev = bytearray(stride)
    for y in range(height):
        ftype = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - channels] if x >= channels else 0
            b = prev[x]
            c = prev[x - channels] if x >= channels else 0
            if ftype == 1:
                line[x] = (line[x] + a) & 0xFF
            elif ftype == 2:
                line[x] = (line[x] + b) & 0xFF
            elif ftype == 3:
                line[x] = (line[x] + (a + b) // 2) & 0xFF
            elif ftype == 4:
                line[x] = (line[x] + _paeth(a, b, c)) & 0xFF
        out[y * stride:(y + 1) * stride] = line
        prev = line
    return width, height, channels, bytes(out)


def colours(path: str) -> set[tuple[int, int, int]]:
    width, height, channels, pixels = read_png(path)
    array = np.frombuffer(pixels, np.uint8).reshape(height, width, channels)[..., :3]
    return set(map(tuple, np.unique(array.reshape(-1, 3), axis=0).tolist()))


# --------------------------------------------------------------------------- session


def _mlp_graph():
    def model(p, x):
        return pyasg.tanh(x @ p["fc"]["weight"] + p["fc"]["bias"]) * 2.0

    params = {"fc": {"weight": np.ones((3, 4), np.float32), "bias": np.zeros(4, np.float32)}}
    return pyasg.make_graph(model)(params, np.ones((2, 3), np.float32))


def _wait_file(path: str, handle, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        assert handle.alive, f"the viewer exited early (code {handle.exitcode})"
        assert time.monotonic() < deadline, f"timed out waiting for {path}"
        time.sleep(0.05)


def _session(tmp: str, lang: str) -> dict:
    files = {name: os.path.join(tmp, name) for name in
             ("before.png", "after.png", "s0.json", "s1.json", "s2.json")}
    script = [
        {"cmd": "expand_all"},
        {"cmd": "frames", "n": 3},
        {"cmd": "screenshot", "path": files["before.png"]},
        {"cmd": "dump", "path": files["s0.json"]},
        {"cmd": "select", "op": "matmul"},
        {"cmd": "screenshot", "path": files["after.png"]},
        {"cmd": "dump", "path": files["s1.json"]},
        {"cmd": "wait_steps", "n": 3, "timeout": 20},
        {"cmd": "dump", "path": files["s2.json"]},
    ]
    handle = launch(lang=lang, target=TARGET, script=script)
    try:
        publish(GraphReady("mlp", _mlp_graph(), "forward"))
        _wait_file(files["s1.json"], handle)
        for step in range(3):
            publish(StepDone(step=step, loss=1.0 / (step + 1), metrics={"acc": 0.3 * step}))
        _wait_file(files["s2.json"], handle)
    finally:
        code = handle.close(timeout=15.0)
    result = {"exitcode": code, **files}
    for name in ("s0.json", "s1.json", "s2.json"):
        with open(files[name], encoding="utf-8") as f:
            result[name] = json.load(f)
    return result


@pytest.fixture(scope="module")
def english(tmp_path_factory):
    return _session(str(tmp_path_factory.mktemp("viewer_en")), "en")


@pytest.fixture(scope="module")
def russian(tmp_path_factory):
    return _session(str(tmp_path_factory.mktemp("viewer_ru")), "ru")


# --------------------------------------------------------------------------- tests


def test_every_drawn_category_colour_is_in_the_screenshot(english):
    from pyasg.viewer.app import CATEGORY_COLORS

    state = english["s0.json"]
    assert state["graph"] == ["mlp", "forward"] and state["status"] == "Training in progress"
    # the weight, the bias and the constant 2 are drawn inside the boxes that read them
    assert set(state["categories"]) == {"input", "linear", "arithmetic", "activation"}
    assert state["legend"] == [texts.category_name(c, "en") for c in state["categories"]]
    seen = colours(english["before.png"])
    for category in state["categories"]:
        assert tuple(CATEGORY_COLORS[category]) in seen, category
        assert tuple(state["colors"][category]) == CATEGORY_COLORS[category]


def test_selecting_matmul_fills_the_inspector_and_changes_the_picture(english):
    before, after = english["s0.json"], english["s1.json"]
    assert before["selected"] is None
    assert before["inspector"] == [texts.UI_TEXT["no_selection"]["en"]]
    assert after["selected_op"] == "matmul"
    inspector = "\n".join(after["inspector"])
    info = texts.explain_op("matmul", "en")
    for part in ("what", "formula", "why"):
        assert info[part] in inspector
    assert "Inputs:" in inspector and "Users:" in inspector and "%4 add" in inspector
    _, _, _, pixels_before = read_png(english["before.png"])
    _, _, _, pixels_after = read_png(english["after.png"])
    assert pixels_before != pixels_after


def test_three_steps_give_three_chart_points(english):
    assert english["s1.json"]["chart"] == {"loss": 0}
    assert english["s2.json"]["chart"] == {"loss": 3, "acc": 3}


def test_russian_inspector(russian):
    state = russian["s1.json"]
    assert state["lang"] == "ru" and state["selected_op"] == "matmul"
    inspector = "\n".join(state["inspector"])
    assert texts.explain_op("matmul", "ru")["what"] in inspector
    assert any("\u0400" <= ch <= "\u04ff" for ch in inspector)
    assert russian["exitcode"] == 0


def test_close_exits_with_code_zero(english):
    assert english["exitcode"] == 0


_DIRECT = """
import json, queue, sys
import numpy as np
from pyasg.events import GraphReady, RunFinished
from pyasg.viewer import app
from pyasg.viewer.protocol import encode
sys.path.insert(0, {tests!r})
from test_viewer_app import _mlp_graph
q = queue.Queue()
q.put(encode(GraphReady("mlp", _mlp_graph(), "forward")))
q.put(encode(RunFinished("ValueError('boom')")))
app.run(q, "xx", script=[
    {{"cmd": "expand_all"}},
    {{"cmd": "search", "text": "TANH"}}, {{"cmd": "select", "name": "p.fc.weight"}},
    {{"cmd": "dump", "path": {a!r}}},
    {{"cmd": "collapse", "prefix": "p.fc"}}, {{"cmd": "select", "name": "x"}},
    {{"cmd": "dump", "path": {b!r}}}, {{"cmd": "quit"}}])
"""


def test_unknown_lang_search_collapse_and_error_status(tmp_path):
    import subprocess
    import sys

    a, b = str(tmp_path / "a.json"), str(tmp_path / "b.json")
    code = _DIRECT.format(tests=os.path.dirname(os.path.abspath(__file__)), a=a, b=b)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert "unknown language 'xx'" in done.stderr
    with open(a, encoding="utf-8") as f:
        first = json.load(f)
    with open(b, encoding="utf-8") as f:
        second = json.load(f)
    assert first["lang"] == "en" and first["finished"]
    assert first["status"] == "Run failed: ValueError('boom')"
    # x, matmul, add, tanh, mul: the weight, bias and constant are lines inside boxes
    assert [first["boxes"], len(first["matches"])] == [5, 1]
    assert texts.explain_param("p.fc.weight", None, "en") in first["inspector"]
    assert second["collapse"] == "p.fc" and second["boxes"] < first["boxes"]
    assert second["selected_op"] == "input" and "group" in second["categories"]


def _scan_graph():
    def rnn(w, h0, xs):
        return pyasg.scan(lambda h, x: (pyasg.tanh(h @ w + x), h * 2.0), h0, xs)[1]

    return pyasg.make_graph(rnn)(np.eye(3, dtype=np.float32), np.zeros(3, np.float32),
                                 np.ones((8, 3), np.float32))


def test_a_scan_node_opens_into_its_body(tmp_path):
    # a control-flow op is one node; the inspector offers its sub-graph, which opens as a
    # graph of its own in the combo (the way back)
    graph = _scan_graph()
    node = next(i for i in graph.live_ids if graph[i].op.name == "scan")
    before, after = str(tmp_path / "before.json"), str(tmp_path / "after.json")
    script = [{"cmd": "expand_all"}, {"cmd": "select", "op": "scan"},
              {"cmd": "dump", "path": before},
              {"cmd": "open_body", "node": node, "which": 0}, {"cmd": "expand_all"},
              {"cmd": "frames", "n": 2}, {"cmd": "dump", "path": after}]
    handle = launch(lang="en", target=TARGET, script=script)
    try:
        publish(GraphReady("rnn", graph, "forward"))
        _wait_file(after, handle)
    finally:
        handle.close(timeout=15.0)
    with open(before, encoding="utf-8") as f:
        first = json.load(f)
    with open(after, encoding="utf-8") as f:
        second = json.load(f)
    assert first["selected_op"] == "scan" and "Open its body" in first["inspector"]
    assert second["graph"] == ["rnn", f"forward/%{node}.0"]
    # the body: its matmul (linear), add and mul (arithmetic), tanh (activation) and inputs
    assert {"input", "linear", "arithmetic", "activation"} <= set(second["categories"])
    assert "control" in first["categories"] and "control" not in second["categories"]
