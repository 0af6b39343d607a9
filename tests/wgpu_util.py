"""Shared helpers for the wgpu parity tests (run on Mesa's lavapipe in CI).

`wgpu_parity(fn, *arrays)` traces `fn`, runs the SAME graph on the reference backend
(the oracle: each op's plain numpy definition) and on wgpu, and checks every output:
integers and bools exactly, floats within 1e-5 absolute or relative (the issue's
bound). Float results need the tolerance because wgpu computes in float32 (float64
graphs too: the backend converts them) with the GPU's own transcendental functions
(WGSL's exp, tanh, pow... are not correctly rounded), with an erf approximation
(Numerical Recipes', fractional error < 1.2e-7: WGSL has none), and adds sums and
products in another order than numpy.
Tests using it carry `pytestmark = WGPU`: skipped only where no adapter exists,
which CI turns into a failure.
"""

from __future__ import annotations

import numpy as np
import pytest

import pyasg

WGPU = pytest.mark.wgpu


def _adapter_or_none():  # noqa: ANN202
    try:
        from pyasg.kernels.wgpu.device import get_device

        return get_device()
    except Exception:  # noqa: BLE001 - any failure means "no GPU here"
        return None


def require_wgpu() -> None:
    """Skip (a failure in CI) when this machine has no wgpu adapter."""
    if _adapter_or_none() is None:
        pytest.skip("no wgpu adapter (install mesa-vulkan-drivers for lavapipe)")


def run_both(fn, *arrays, static_argnums=()):  # noqa: ANN001, ANN201
    """(reference outputs, wgpu outputs) of one traced graph of `fn`."""
    require_wgpu()
    graph = pyasg.make_graph(fn, static_argnums)(*arrays)
    dynamic = [a for k, a in enumerate(arrays) if k not in static_argnums]
    want = pyasg.jit_to_backend(graph, "reference")(*dynamic)
    got = pyasg.jit_to_backend(graph, "wgpu")(*dynamic)
    return [np.asarray(w) for w in want], [np.asarray(g) for g in got]


def wgpu_parity(fn, *arrays, atol: float = 1e-5, rtol: float = 1e-5,  # noqa: ANN001, ANN201
                static_argnums=()):
    """Check that wgpu equals the reference on `fn(*arrays)` (each output, integers
    exactly, floats within |d| <= atol + rtol|x|)."""
    want, got = run_both(fn, *arrays, static_argnums=static_argnums)
    assert len(want) == len(got)
    for w, g in zip(want, got):
        assert g.shape == w.shape, (g.shape, w.shape)
        if w.dtype.kind in "biu":
            np.testing.assert_array_equal(g, w)
        else:
            np.testing.assert_allclose(g, w, atol=atol, rtol=rtol)
    return want, got
