"""pyasg.checkpoint (remat): the same values and gradients, less memory between the passes.

The memory figures are the numpy backend's memory plan (benchmarks/remat.py prints them
for 12 TransformerBlocks); here a smaller stack must show the same direction.
"""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import check_grad

import pyasg
from benchmarks.remat import measure
from pyasg.errors import ControlFlowError


def test_checkpointed_blocks_lower_the_peak_and_keep_the_gradients() -> None:
    r = measure(layers=4, d_model=16, heads=2, batch=2, seq=16)
    assert r["checkpointed"]["peak_bytes"] < 0.6 * r["plain"]["peak_bytes"], r
    assert r["max_grad_difference"] <= 1e-6, r


def _mlp(params: list, x: object, remat: bool) -> object:
    def block(p: dict, x: object) -> object:
        return pyasg.tanh(x @ p["w"] + p["b"]) * pyasg.sigmoid(x)

    for p in params:
        x = pyasg.checkpoint(block)(p, x) if remat else block(p, x)
    return x


def _params(seed: int, n: int = 3, d: int = 4) -> list:
    rng = np.random.default_rng(seed)
    return [{"w": rng.normal(size=(d, d)) * 0.5, "b": rng.normal(size=d)} for _ in range(n)]


@pytest.mark.parametrize("backend", ["reference", "numpy"])
def test_values_and_gradients_equal_the_plain_function(backend: str) -> None:
    params, x = _params(0), np.random.default_rng(1).normal(size=(2, 4))
    for fn in (lambda p, x, r: _mlp(p, x, r),
               lambda p, x, r: pyasg.grad(lambda p: (_mlp(p, x, r) ** 2).sum())(p)):
        got = pyasg.jit(lambda p, x, fn=fn: fn(p, x, True), backend=backend)(params, x)
        want = pyasg.jit(lambda p, x, fn=fn: fn(p, x, False), backend=backend)(params, x)
        for g, w in zip(pyasg.tree_leaves(got), pyasg.tree_leaves(want)):
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-14)


def test_the_forward_pass_keeps_no_activation_of_a_checkpointed_block() -> None:
    """The backward pass recomputes the block: its ops appear once more in the gradient
    graph than without checkpointing, and the forward holds one remat node per block."""
    params, x = _params(2), np.random.default_rng(3).normal(size=(2, 4))

    def count(remat: bool, name: str) -> int:
        g = pyasg.make_graph(pyasg.grad(lambda p: _mlp(p, x, remat).sum()))(params)
        return sum(1 for i in g.live_ids if g.nodes[i].op.name == name)

    # blocks 1 and 2 run forward as remat nodes; the gradient of a sum does not need the
    # last block's output, so its forward node is pruned
    assert count(True, "remat") == 2 and count(False, "remat") == 0
    assert count(True, "tanh") == count(False, "tanh") == 3  # recomputed, not kept


def test_gradient_and_second_derivative_against_central_differences() -> None:
    w0 = np.random.default_rng(4).normal(size=(3, 3)) * 0.5
    x = np.random.default_rng(5).normal(size=(2, 3))
    block = pyasg.checkpoint(lambda w, x: pyasg.sin(x @ w) * w.sum())
    check_grad(lambda w: block(w, x), w0)
    check_grad(lambda w: pyasg.grad(lambda w: (block(w, x) ** 2).sum())(w), w0)


def test_pytrees_and_closures() -> None:
    def f(a, scale):
        out = pyasg.checkpoint(lambda t: {"s": t[0] * scale, "p": (t[0] * t[1], t[1])})((a, a + 1))
        return out["s"].sum() + out["p"][0].sum() * out["p"][1].sum()

    a, s = np.random.default_rng(6).normal(size=(3,)), np.float64(1.5)
    plain = pyasg.grad(lambda a, s: (a * s).sum() + (a * (a + 1)).sum() * (a + 1).sum(),
                       argnums=(0, 1))(a, s)
    got = pyasg.grad(f, argnums=(0, 1))(a, s)
    for g, w in zip(got, plain):
        np.testing.assert_allclose(g, w, rtol=1e-12)


def test_checkpoint_needs_a_function() -> None:
    with pytest.raises(ControlFlowError, match="needs a function"):
        pyasg.checkpoint(3)
