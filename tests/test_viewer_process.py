"""The viewer process and its wire format, driven with a stub target (no Dear PyGui).

`viewer_stub.run` logs every message it receives to a file, so a test can see what
crossed the process boundary, in order.
"""

from __future__ import annotations

import doctest
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import pyasg
from pyasg import events
from pyasg.events import (
    Called,
    Compiled,
    Event,
    GradientInlined,
    GraphReady,
    ParamsDescribed,
    RunFinished,
    StepDone,
)
from pyasg.viewer import process, protocol
from pyasg.viewer.process import ViewerError, ViewerHandle, launch
from pyasg.viewer.protocol import ProtocolError, decode, encode, encode_close

STUB = "viewer_stub:run"
TESTS = os.path.dirname(os.path.abspath(__file__))


def _graphs():
    x = np.arange(3.0, dtype=np.float32)
    forward = pyasg.make_graph(lambda x: x * 2.0 + 1.0)(x)
    gradient = pyasg.make_graph(pyasg.grad(lambda x: (x * x).sum()))(x)
    return forward, gradient


def _lines(path):
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) if line.startswith('{"ready"') else line.rstrip("\n")
                for line in f if line.endswith("\n")]


def _wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def _messages(path):
    """What the viewer received, less the parameter kinds recorded by earlier tests."""
    return [m for m in (decode(line) for line in _lines(path) if isinstance(line, str))
            if not isinstance(m, ParamsDescribed)]


@pytest.fixture
def log(tmp_path):
    return str(tmp_path / "viewer.jsonl")


# --------------------------------------------------------------------------- protocol


def test_protocol_round_trip_keeps_events_and_non_finite_numbers():
    forward, gradient = _graphs()
    for event in (GraphReady("model", forward, "forward"),
                  GraphReady("model", gradient, "gradient"),
                  StepDone(step=7, loss=0.25, metrics={"acc": 0.5}),
                  RunFinished(None), RunFinished("ValueError('x')")):
        text = encode(event)
        json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON: {c}"))
        assert decode(text) == event
    text = encode(StepDone(step=np.int64(3), loss=float("nan"),
                           metrics={"a": float("inf"), "b": -math.inf, "c": np.float32(2)}))
    back = decode(text)
    assert back.step == 3 and type(back.step) is int and math.isnan(back.loss)
    assert back.metrics == {"a": math.inf, "b": -math.inf, "c": 2.0}
    assert json.loads(text)["version"] == protocol.VERSION
    assert decode(encode_close()) == {"type": "Close"}


def test_protocol_refuses_what_it_cannot_encode():
    @__import__("dataclasses").dataclass(frozen=True)
    class Custom(Event):
        pass

    with pytest.raises(ProtocolError):
        encode(Custom())
    with pytest.raises(ProtocolError):
        encode(StepDone(step=1, loss="low"))  # type: ignore[arg-type]


def _header(message_type, **body):
    return json.dumps({"protocol": "pyasg.viewer", "version": 1, "type": message_type,
                       **body})


@pytest.mark.parametrize("text", [
    "", "not json", "[]", "null", '"StepDone"', b"\xff\xfe", "[" * 100_000,
    '{"type": "StepDone", "step": 1, "loss": 0.5, "metrics": {}}',
    _header("StepDone", step=1, loss=0.5, metrics={}).replace('"version": 1', '"version": 2'),
    _header("StepDone", step=1, loss=0.5, metrics={}).replace('"version": 1', '"version": true'),
    _header("StepDone", step=1, loss=0.5, metrics={}).replace("pyasg.viewer", "other"),
    _header("Launch"),
    _header(None),
    _header("StepDone", step=1, loss=0.5),
    _header("StepDone", step=1, loss=0.5, metrics={}, extra=1),
    _header("StepDone", step=True, loss=0.5, metrics={}),
    _header("StepDone", step=1.0, loss=0.5, metrics={}),
    _header("StepDone", step=1, loss="abc", metrics={}),
    _header("StepDone", step=1, loss=None, metrics={}),
    _header("StepDone", step=1, loss=0.5, metrics=[]),
    _header("StepDone", step=1, loss=0.5, metrics={"a": "x"}),
    _header("StepDone", step=1, loss=10 ** 400, metrics={}),
    _header("StepDone", step=1, loss=0.5, metrics={}).replace("0.5", "NaN"),
    _header("RunFinished", error=3),
    _header("Close", error=None),
    _header("GraphReady", name="m", kind="forward", graph={}),
    _header("GraphReady", name="m", kind="forward", graph=[1, 2]),
    _header("GraphReady", name=1, kind="forward",
            graph={"format": "pyasg.graph", "version": 1, "inputs": [], "outputs": [],
                   "nodes": []}),
])
def test_malformed_messages_raise_protocol_error(text):
    with pytest.raises(ProtocolError):
        decode(text)


def test_protocol_error_is_a_pyasg_error_naming_the_defect():
    with pytest.raises(pyasg.PyasgError, match="unknown message type 'Launch'"):
        decode(_header("Launch"))
    forward, _ = _graphs()
    data = json.loads(encode(GraphReady("m", forward)))
    data["graph"]["outputs"] = [999]
    with pytest.raises(ProtocolError, match="GraphReady.graph"):
        decode(json.dumps(data))


@pytest.mark.parametrize("module", [protocol, process])
def test_docstring_examples(module):
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    assert doctest.testmod(module, optionflags=flags).failed == 0


def test_bad_target_path_fails_before_spawning():
    for bad in ("viewer_stub", "viewer_stub:", ":run", "a b:run", "m:run()"):
        with pytest.raises(ViewerError):
            launch(target=bad)


# --------------------------------------------------------------------------- process


def test_events_arrive_in_order_and_a_normal_exit_closes_the_viewer(log):
    forward, gradient = _graphs()
    sent = [GraphReady("model", forward, "forward"), GraphReady("model", gradient, "gradient"),
            StepDone(step=1, loss=0.5), StepDone(step=2, loss=0.25, metrics={"acc": 0.75})]
    with launch(lang="ru", target=STUB, path=log) as viewer:
        assert viewer.alive
        for event in sent:
            events.publish(event)
        handle = viewer
    assert not handle.alive and handle.exitcode == 0  # closed within close_timeout (20 s)
    lines = _lines(log)
    assert lines[0] == {"ready": "ru", "kwargs": {"wait": 0.0}}
    received = _messages(log)
    assert received == [*sent, RunFinished(None), {"type": "Close"}]
    assert protocol_graph_equal(received[0], forward) and received[1].kind == "gradient"
    assert not handle.forwarding


def test_only_the_events_the_viewer_reads_cross_the_boundary(log, capsys):
    forward, _ = _graphs()
    with launch(target=STUB, path=log):
        events.publish(Compiled("model", 1, 1, forward, {"forward": forward}))
        events.publish(Called(1, 1, (np.ones(3, np.float32),)))
        events.publish(GradientInlined("loss", 1, forward, {}, {}))
        events.publish(StepDone(step=1, loss=0.5))
    assert _messages(log) == [StepDone(step=1, loss=0.5), RunFinished(None),
                              {"type": "Close"}]
    assert "subscriber" not in capsys.readouterr().err  # nothing failed to encode
    names = {t.__name__ for t in protocol.EVENTS}
    assert names == set(protocol._FIELDS) - {*protocol.REQUESTS, protocol.CLOSE}


def protocol_graph_equal(event, graph):
    return isinstance(event, GraphReady) and event.graph == graph


def test_run_finished_published_by_training_is_not_repeated(log):
    with launch(target=STUB, path=log):
        events.publish(StepDone(step=1, loss=float("nan")))
        events.publish(RunFinished(None))
    received = _messages(log)
    assert math.isnan(received[0].loss)
    assert received[1:] == [RunFinished(None), {"type": "Close"}]


def test_an_error_in_the_with_block_leaves_the_viewer_open(log):
    with pytest.raises(RuntimeError, match="boom"):
        with launch(target=STUB, path=log) as viewer:
            events.publish(StepDone(step=1, loss=0.5))
            raise RuntimeError("boom")
    try:
        assert _wait_for(lambda: RunFinished("RuntimeError('boom')") in _messages(log))
        assert viewer.alive
        events.publish(StepDone(step=99, loss=0.1))  # no longer forwarded
    finally:
        assert viewer.close(timeout=20) == 0
    assert _messages(log) == [StepDone(step=1, loss=0.5), RunFinished("RuntimeError('boom')"),
                              {"type": "Close"}]


def test_killing_the_viewer_never_disturbs_a_publishing_loop(log):
    viewer = launch(target=STUB, path=log)
    try:
        assert _wait_for(lambda: len(_lines(log)) >= 1)  # the viewer is up
        slowest = 0.0
        for step in range(1000):
            if step == 200:
                os.kill(viewer.process.pid, signal.SIGKILL)
            start = time.perf_counter()
            events.publish(StepDone(step=step, loss=1.0 / (step + 1)))
            slowest = max(slowest, time.perf_counter() - start)
        assert slowest < 0.05  # "never blocks", not a benchmark
        assert _wait_for(lambda: not viewer.alive)
        events.publish(StepDone(step=1000, loss=0.0))  # noticed: unsubscribes
        assert not viewer.forwarding and viewer.dropped >= 1
    finally:
        assert viewer.close(timeout=5) == -signal.SIGKILL
    assert not viewer.alive


def test_a_full_queue_drops_events_instead_of_blocking(log):
    viewer = ViewerHandle(STUB, "en", {"path": log, "wait": 1.0}, queue_size=4).start()
    try:
        start = time.perf_counter()
        for step in range(100):
            events.publish(StepDone(step=step, loss=0.0))
        assert time.perf_counter() - start < 2.0
        assert viewer.dropped >= 90
    finally:
        assert viewer.close(timeout=20) == 0
    steps = [m.step for m in _messages(log) if isinstance(m, StepDone)]
    assert steps == sorted(steps) and 1 <= len(steps) <= 10


def test_a_script_without_a_main_guard_launches_one_viewer(tmp_path, log):
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path[:0] = [{TESTS!r}, {os.path.dirname(TESTS)!r}]
        import pyasg
        from pyasg.viewer.process import launch
        with launch(target={STUB!r}, path={log!r}):
            pyasg.publish(pyasg.StepDone(step=1, loss=0.5))
        print("trained")
    """))
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            timeout=60, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("trained") == 1
    assert _messages(log) == [StepDone(step=1, loss=0.5), RunFinished(None), {"type": "Close"}]
