"""`vjp_graph`, `simplify` and `fuse` give exactly the graphs they gave before their speed
work, on real training steps (W1, W2, W3 and small LMs; saved by `golden_graphs.py`).

Each saved input graph goes through today's transform and must come out equal to the
saved output: the same node ids, ops, types, names and sources, so equal graphs that
hash equal (the jit cache and hash-consing of fused sub-graphs depend on it)."""

from __future__ import annotations

import golden_graphs
import pytest

from pyasg.asg.graph import Graph
from pyasg.compile.pipeline import lower_graph
from pyasg.compile.registry import get_backend
from pyasg.transforms.simplify import simplify

CASES = sorted(golden_graphs.CASES)


@pytest.fixture(scope="module", params=CASES)
def saved(request: pytest.FixtureRequest) -> dict:
    return golden_graphs.load(request.param)


def first_difference(got: Graph, want: Graph) -> str:
    """Where two graphs first differ, for the failure message."""
    if tuple(got.inputs) != tuple(want.inputs) or tuple(got.outputs) != tuple(want.outputs):
        return f"inputs/outputs {list(got.inputs)} -> {list(got.outputs)} vs " \
               f"{list(want.inputs)} -> {list(want.outputs)}"
    for i in sorted(set(got.nodes) | set(want.nodes)):
        if got.nodes.get(i) != want.nodes.get(i):
            return f"node %{i}: {got.nodes.get(i)} vs {want.nodes.get(i)}"
    return "no node differs"


def assert_same(got: Graph, want: Graph) -> None:
    assert got == want, first_difference(got, want)
    assert hash(got) == hash(want)


def test_the_saved_cases_are_real_steps(saved: dict) -> None:
    # a fixture that had lost its gradient or its fused nodes would check nothing
    assert saved["grads"], "no gradient was recorded"
    assert len(saved["simplified"].live_ids) > 50
    for kind in ("fused numpy", "fused wgpu"):
        fused = saved[kind]
        assert any(fused.nodes[i].op.name == "fused" for i in fused.live_ids)
        assert len(fused.live_ids) < len(saved["simplified"].live_ids)


def test_vjp_graph_gives_the_saved_gradients(saved: dict) -> None:
    for grad in saved["grads"]:
        got = golden_graphs.gradient(grad["forward"], grad["wrt"], grad["of"])
        assert_same(got, grad["gradient"])


def test_simplify_gives_the_saved_graph(saved: dict) -> None:
    assert_same(simplify(saved["traced"]), saved["simplified"])


def test_numpy_lowering_gives_the_saved_fused_graph(saved: dict) -> None:
    assert_same(lower_graph(saved["simplified"], get_backend("numpy")), saved["fused numpy"])


def test_wgpu_fusion_gives_the_saved_fused_graph(saved: dict) -> None:
    assert_same(golden_graphs.lower_wgpu(saved["simplified"]), saved["fused wgpu"])

