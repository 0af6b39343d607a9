"""Live values: the viewer watches a node; the training process sends its statistics.

Expected statistics are computed here with numpy from the same parameters (the steps
below do not update them, so every evaluation sees the same values). In-process tests
drive a `Watcher` the way a viewer's handle does.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest

import pyasg
from pyasg import events
from pyasg.compile.pipeline import jit_to_backend
from pyasg.events import Called, NodeValues, ParamsDescribed, StepDone
from pyasg.nn.layers import LayerNorm, Linear
from pyasg.nn.module import Module
from pyasg.viewer import texts, watch
from pyasg.viewer.process import launch
from pyasg.viewer.protocol import (
    ProtocolError,
    decode,
    decode_watch,
    encode,
    encode_watch,
)

STUB = "tests.viewer_stub:run"


class Tiny(Module):
    """LayerNorm then Linear, with names a guess from the path cannot decode."""

    kind = "Tiny"

    def __init__(self) -> None:
        self.g = LayerNorm(4)
        self.h = Linear(4, 3)

    def children(self) -> dict[str, Module]:
        return {"g": self.g, "h": self.h}

    def init(self, key: object) -> dict:
        k1, k2 = pyasg.random.split(key)
        return {"g": self.g.init(k1), "h": self.h.init(k2)}

    def __call__(self, params: dict, x: object) -> object:
        return self.h(params["h"], self.g(params["g"], x))


MODEL = Tiny()


def loss(p, x):
    return pyasg.mean(MODEL(p, x) ** 2)


def make_step():
    @pyasg.jit
    def step(p, x):
        return pyasg.value_and_grad(loss)(p, x)  # parameters stay as they are

    return step


def setup_data(batch: int = 5):
    params = MODEL.init(pyasg.random.key(3))
    x = np.random.default_rng(0).normal(size=(batch, 2, 4)).astype(np.float32)
    return params, x


def reference(params, x):
    """The Linear's matmul output, and d loss / d that output, by hand."""
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    ln = (x - mu) / np.sqrt(var + 1e-5) * params["g"]["weight"] + params["g"]["bias"]
    mm = ln.astype(np.float64) @ params["h"]["weight"].T.astype(np.float64)
    y = mm + params["h"]["bias"]
    return mm, 2.0 * y / y.size


def check_summary(summary, array, rtol=1e-4):
    a = np.asarray(array, np.float64)
    assert summary["shape"] == list(a.shape)
    assert summary["nonfinite"] == 0
    for key, expected in (("min", a.min()), ("max", a.max()), ("mean", a.mean()),
                          ("std", a.std())):
        assert summary[key] == pytest.approx(expected, rel=rtol, abs=1e-6), key
    assert sum(summary["hist"]) == a.size
    # float32 against a float64 reference: only values at a bin edge may change bins
    bins = len(summary["hist"])
    counts, edges = np.histogram(np.clip(a, *summary["edges"]), bins=bins,
                                 range=tuple(summary["edges"]))
    at_edge = (np.abs(a.ravel()[:, None] - edges[None, :]) < 1e-5).any(1).sum()
    assert np.abs(np.array(summary["hist"]) - counts).sum() <= 2 * at_edge


@pytest.fixture
def published():
    """Graphs and NodeValues published while a test runs, and a started `Watcher`;
    nothing left subscribed afterwards."""
    graphs, values = {}, []
    off = [events.subscribe(lambda e: graphs.__setitem__((e.name, e.kind), e.graph),
                            events.GraphReady),
           events.subscribe(values.append, NodeValues)]
    watcher = watch.Watcher().start()
    yield graphs, values, watcher
    watcher.close()
    for unsubscribe in off:
        unsubscribe()


@pytest.fixture
def compiles(monkeypatch):
    """The graphs the watcher compiles for watched nodes, in order."""
    seen = []

    def counting(graph, *args, **kwargs):
        seen.append(graph)
        return jit_to_backend(graph, *args, **kwargs)

    monkeypatch.setattr(watch, "jit_to_backend", counting)
    return seen


def _node(graph, op: str) -> int:
    return next(i for i in graph.live_ids if graph.nodes[i].op.name == op)


# --------------------------------------------------------------------------- in-process


def test_value_and_gradient_of_a_forward_node(published, compiles):
    graphs, values, watcher = published
    params, x = setup_data()
    step = make_step()
    step(params, x)
    assert {("loss", "forward"), ("loss", "gradient"), ("step", "forward")} <= set(graphs)
    node = _node(graphs[("loss", "forward")], "matmul")
    watcher.request("loss", "forward", node, every=3)
    for _ in range(7):
        step(params, x)
    assert [v.step for v in values] == [1, 4, 7]  # at once, then every third call
    assert len(compiles) == 1  # one executable for the node, reused
    mm, d_mm = reference(params, x)
    check_summary(values[-1].value, mm)
    check_summary(values[-1].grad, d_mm)


def test_nodes_of_the_gradient_graph_and_of_the_step(published):
    graphs, values, watcher = published
    params, x = setup_data(batch=7)
    step = make_step()
    step(params, x)
    mm, _ = reference(params, x)
    for name, kind in (("loss", "gradient"), ("step", "forward")):
        values.clear()
        watcher.request(name, kind, _node(graphs[(name, kind)], "matmul"), every=1)
        step(params, x)
        (got,) = values
        assert got.grad is None  # only a differentiated forward graph has gradients
        check_summary(got.value, mm)


def test_nothing_is_computed_without_a_watch(published, compiles):
    graphs, values, watcher = published
    params, x = setup_data()
    step = make_step()
    step(params, x)
    node = _node(graphs[("loss", "forward")], "matmul")
    assert not events.has_subscribers(Called)  # a started watcher alone: calls go unseen
    for _ in range(3):
        step(params, x)
    watcher.request("other", "forward", node)  # a graph this function does not run
    step(params, x)
    watcher.request("loss", "forward", node)
    watcher.clear()
    assert not events.has_subscribers(Called)
    step(params, x)
    assert values == [] and compiles == []


def test_a_graph_compiled_before_the_watcher_started_is_not_watched(published, compiles):
    graphs, values, watcher = published
    params, x = setup_data()
    watcher.close()
    step = make_step()
    step(params, x)  # its Compiled event had no listener
    watcher.start().request("loss", "forward", _node(graphs[("loss", "forward")], "matmul"))
    step(params, x)
    assert values == [] and compiles == []
    fresh = make_step()
    fresh(params, x)  # compiled while the watcher listens
    assert [v.step for v in values] == [1] and len(compiles) == 1


def test_a_traced_but_uncompiled_gradient_is_forgotten(published):
    graphs, values, watcher = published
    params, x = setup_data()
    pyasg.make_graph(make_step().fn)(params, x)  # a trace that inlines value_and_grad
    assert watcher._inlined  # waits for its trace to compile, which never comes
    step = make_step()
    step(params, x)
    assert not watcher._inlined
    watcher.request("loss", "forward", _node(graphs[("loss", "forward")], "matmul"), every=1)
    step(params, x)
    check_summary(values[-1].value, reference(params, x)[0])


def test_a_request_that_is_not_a_count_of_calls_is_refused(published):
    _, _, watcher = published
    for every in (0, -2, 1.5, True, "3"):
        with pytest.raises(watch.WatchError, match="every must count calls"):
            watcher.request("loss", "forward", 1, every=every)
    assert watcher.current is None and issubclass(watch.WatchError, pyasg.PyasgError)


def test_summarize_counts_non_finite_values():
    s = watch.summarize(np.array([np.inf, -1.0, np.nan, 3.0], np.float32), bins=4)
    assert (s["nonfinite"], s["min"], s["max"], s["hist"]) == (2, -1.0, 3.0, [1, 0, 0, 1])
    empty = watch.summarize(np.zeros((0, 3)))
    assert empty["shape"] == [0, 3] and empty["hist"] == [] and np.isnan(empty["mean"])


# --------------------------------------------------------------------------- the wire


def test_protocol_round_trips_and_rejects_bad_messages():
    summary = watch.summarize(np.array([1.0, np.nan, 2.0]))
    event = NodeValues("loss", "forward", 4, 10, summary, None)
    back = decode(encode(event))
    assert back.value["nonfinite"] == 1 and back.grad is None and back.node == 4
    assert decode(encode(ParamsDescribed({"a.weight": "Linear.weight"}))).kinds == {
        "a.weight": "Linear.weight"}
    request = decode_watch(encode_watch("loss", "forward", 4, 5))
    assert (request.name, request.node, request.every) == ("loss", 4, 5)
    with pytest.raises(ProtocolError):
        decode(encode_watch("loss", "forward", 4, 5))  # goes the other way
    with pytest.raises(ProtocolError):
        decode_watch(encode_watch("loss", "forward", 4, 0))
    with pytest.raises(ProtocolError):
        encode(NodeValues("loss", "forward", 4, 1, {"min": 1.0}, None))
    text = encode(event).replace('"nonfinite": 1', '"nonfinite": "one"')
    with pytest.raises(ProtocolError):
        decode(text)


def test_recorded_kinds_reach_a_viewer_started_later(tmp_path):
    MODEL.init(pyasg.random.key(0))
    assert events.described_params()["g.weight"] == "LayerNorm.weight"
    log = tmp_path / "log.jsonl"
    handle = launch(target=STUB, path=str(log))
    handle.close(timeout=15.0)
    lines = log.read_text(encoding="utf-8").splitlines()
    first = decode(lines[1])
    assert isinstance(first, ParamsDescribed) and first.kinds["h.weight"] == "Linear.weight"
    assert texts.recorded_kind("params.g.weight", first.kinds) == "LayerNorm.weight"


def test_a_watch_from_the_viewer_process_and_its_end(tmp_path, published):
    graphs, _, watcher = published
    params, x = setup_data()
    make_step()(params, x)
    node = _node(graphs[("loss", "forward")], "matmul")
    watcher.close()
    log = tmp_path / "log.jsonl"
    handle = launch(target=STUB, path=str(log),
                    watch={"name": "loss", "kind": "forward", "node": node, "every": 2})
    step = make_step()  # traced and compiled while the viewer runs, as in training
    try:
        deadline = time.monotonic() + 30
        got = []
        while not got and time.monotonic() < deadline:
            step(params, x)
            events.publish(StepDone(step=0, loss=0.0))  # the handle reads requests here
            time.sleep(0.02)
            lines = log.read_text(encoding="utf-8").splitlines()[1:] if log.exists() else []
            got = [m for m in map(decode, lines) if isinstance(m, NodeValues)]
        assert got, "no NodeValues reached the viewer"
        check_summary(got[0].value, reference(params, x)[0])
        assert handle.watcher.current is not None and events.has_subscribers(Called)
        handle.process.kill()  # the window is closed
        handle.process.join(10)
        events.publish(StepDone(step=1, loss=0.0))
        assert handle.watcher.current is None
        assert not events.has_subscribers(Called)  # a closed viewer costs the step nothing
    finally:
        handle.close(timeout=5.0)


# --------------------------------------------------------------------------- the window


@pytest.mark.display
@pytest.mark.skipif(not os.environ.get("DISPLAY"), reason="needs an X display (xvfb-run)")
def test_the_inspector_shows_live_values_and_recorded_kinds(tmp_path):
    from test_viewer_app import colours

    from pyasg.viewer.app import GRADIENT_BARS, VALUE_BARS
    from pyasg.viewer.labels import compact

    shot, state, kinds = (str(tmp_path / n) for n in ("live.png", "live.json", "kind.json"))
    script = [
        {"cmd": "wait_graphs", "n": 3},
        {"cmd": "show", "name": "loss", "kind": "forward"},
        {"cmd": "select", "op": "matmul"},
        {"cmd": "wait_values", "timeout": 40},
        {"cmd": "frames", "n": 3},
        {"cmd": "screenshot", "path": shot},
        {"cmd": "dump", "path": state},
        {"cmd": "select", "name": "p.g.weight"},
        {"cmd": "dump", "path": kinds},
    ]
    params, x = setup_data()
    handle = launch(target="pyasg.viewer.app:run", script=script, watch_every=2)
    try:
        step = make_step()
        deadline = time.monotonic() + 60
        n = 0
        while not os.path.exists(kinds):
            assert handle.alive and time.monotonic() < deadline, "the viewer did not finish"
            step(params, x)
            events.publish(StepDone(step=n, loss=0.0))
            n += 1
            time.sleep(0.03)
    finally:
        handle.close(timeout=15.0)
    with open(state, encoding="utf-8") as f:
        live = json.load(f)
    mm, d_mm = reference(params, x)
    check_summary(live["values"]["value"], mm)
    check_summary(live["values"]["grad"], d_mm)
    inspector = "\n".join(live["inspector"])
    assert "Live values" in inspector and "Gradient [5, 2, 3]" in inspector
    # the statistics: one table cell per number, each written compactly (`labels.compact`)
    stats = [line for line in live["inspector"] if line.startswith("min ")]
    assert len(stats) == 2
    for line, summary in zip(stats, (live["values"]["value"], live["values"]["grad"])):
        want = "  ".join(f"{k} {compact(float(summary[k]))}" for k in ("min", "max", "mean", "std"))
        assert line == want
    seen = colours(shot)
    assert tuple(VALUE_BARS) in seen and tuple(GRADIENT_BARS) in seen
    with open(kinds, encoding="utf-8") as f:
        described = json.load(f)
    assert described["selected_op"] == "input"
    text = "\n".join(described["inspector"])
    assert "Layer parameter: g (LayerNorm)" in text
    assert texts.explain_param("p.g.weight", "LayerNorm.weight", "en") in text
