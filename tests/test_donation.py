"""`jit(..., donate_argnums=...)`: a step's results reuse the memory of donated arguments.

numpy writes a result into the donated array itself (the result IS that array) where
the liveness analysis allows it; wgpu alternates each donated pair's two buffers, so a
training loop that feeds its results back copies no parameter in or out and creates no
buffer, and a donated DeviceArray raises when it is used again.
"""

from __future__ import annotations

import numpy as np
import pytest
from wgpu_util import WGPU, require_wgpu

import pyasg
from pyasg.errors import BackendError, TraceError

RNG = np.random.default_rng(7)
W0 = RNG.standard_normal((8, 4)).astype(np.float32)
X = RNG.standard_normal((16, 8)).astype(np.float32)


def momentum_step(w, m, x):  # noqa: ANN001, ANN201
    loss, g = pyasg.value_and_grad(lambda w: pyasg.mean(pyasg.tanh(x @ w) ** 2))(w)
    m2 = 0.9 * m + g
    return w - 0.1 * m2, m2, loss


def sgd_step(w, x):  # noqa: ANN001, ANN201
    loss, g = pyasg.value_and_grad(lambda w: pyasg.mean(pyasg.tanh(x @ w) ** 2))(w)
    return w - 0.1 * g, loss


def reference_run(step, args, steps):  # noqa: ANN001, ANN201
    f = pyasg.jit(step, backend="reference")
    out = None
    for _ in range(steps):
        out = f(*args)
        args = (*out[:-1], *args[len(out) - 1:])
    return out


def test_numpy_writes_the_result_into_the_donated_array() -> None:
    f = pyasg.jit(momentum_step, backend="numpy", donate_argnums=(0, 1))
    w, m = W0.copy(), np.zeros_like(W0)
    new_w, new_m, loss = f(w, m, X)
    # w's update is an elementwise kernel of its own, the last reader of w: it writes
    # into w. m's update is the epilogue of the gradient's matmul, which writes its
    # product before the epilogue reads m: it goes to a fresh array (and m is intact)
    assert new_w is w and new_m is not m
    assert not np.shares_memory(new_m, m)
    w, m = new_w, new_m
    for _ in range(3):
        w, m, loss = f(w, m, X)
    want = reference_run(momentum_step, (W0.copy(), np.zeros_like(W0), X), 4)
    for got, expected in zip((w, m, loss), want):
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)


def test_numpy_never_writes_an_argument_that_was_not_donated() -> None:
    f = pyasg.jit(sgd_step, backend="numpy", donate_argnums=0)
    w, x = W0.copy(), X.copy()
    f(w, x)
    np.testing.assert_array_equal(x, X)
    g = pyasg.jit(sgd_step, backend="numpy")  # no donation: results never alias arguments
    w = W0.copy()
    new_w, _ = g(w, x)
    assert new_w is not w and not np.shares_memory(new_w, w)
    np.testing.assert_array_equal(w, W0)


def _readonly(w: np.ndarray) -> np.ndarray:
    w = w.copy()
    w.flags.writeable = False
    return w


@pytest.mark.parametrize("make", [
    _readonly,
    lambda w: np.repeat(w, 2, axis=1)[:, ::2],  # a strided view: not contiguous
], ids=["read-only", "strided"])
def test_numpy_keeps_an_array_it_cannot_write_and_computes_the_same(make) -> None:  # noqa: ANN001
    f = pyasg.jit(sgd_step, backend="numpy", donate_argnums=0)
    w = make(W0)
    before = np.array(w, copy=True)
    new_w, _ = f(w, X)
    assert new_w is not w
    np.testing.assert_array_equal(w, before)
    want_w, _ = reference_run(sgd_step, (W0.copy(), X), 1)
    np.testing.assert_allclose(new_w, want_w, rtol=1e-6, atol=1e-7)


def test_numpy_does_not_write_a_donated_array_that_another_argument_aliases() -> None:
    def step(w, v):  # noqa: ANN001, ANN202
        return w * 2.0, (v * 3.0).sum()

    f = pyasg.jit(step, backend="numpy", donate_argnums=0)
    w = W0.copy()
    new_w, total = f(w, w)  # the same array twice: writing it would change v
    np.testing.assert_allclose(total, (W0 * 3.0).sum(), rtol=1e-6)
    np.testing.assert_allclose(new_w, W0 * 2.0)
    np.testing.assert_array_equal(w, W0)


def test_numpy_writes_over_an_input_only_after_its_last_reader() -> None:
    # the result of w is computed before the loss reads w again: writing it into w
    # would change the loss, so that pair is not donated
    def step(w):  # noqa: ANN001, ANN202
        w2 = w * 2.0
        return w2, (w2 * w).sum()

    f = pyasg.jit(step, backend="numpy", donate_argnums=0, fuse=False)
    w = W0.copy()
    _, total = f(w)
    np.testing.assert_allclose(total, (W0 * 2.0 * W0).sum(), rtol=1e-6)


def test_donate_argnums_is_checked_where_it_is_given() -> None:
    with pytest.raises(TraceError, match="donate_argnums must be an int"):
        pyasg.jit(sgd_step, donate_argnums="a")
    with pytest.raises(TraceError, match="both static and donated"):
        pyasg.jit(sgd_step, static_argnums=1, donate_argnums=1)


@WGPU
def test_a_donated_wgpu_loop_copies_no_parameter_and_creates_no_buffer() -> None:
    require_wgpu()
    from pyasg.kernels.wgpu import COUNTERS, DeviceArray

    f = pyasg.jit(momentum_step, backend="wgpu", donate_argnums=(0, 1))
    x = DeviceArray.from_numpy(X)
    w, m = DeviceArray.from_numpy(W0), DeviceArray.from_numpy(np.zeros_like(W0))
    for _ in range(2):  # warm-up: the first call copies the arguments in
        w, m, loss = f(w, m, x)
    COUNTERS.reset()
    steps = 4
    for _ in range(steps):
        w, m, loss = f(w, m, x)
    assert COUNTERS.buffers_created == 0
    assert COUNTERS.uploads == 0
    # w and m stay where they are: the only copies are the batch in (x is no donated
    # argument: its 512 bytes go into the step's input buffer) and the loss out
    assert (COUNTERS.copies, COUNTERS.copy_bytes) == (2 * steps, (X.nbytes + 4) * steps)
    want = reference_run(momentum_step, (W0.copy(), np.zeros_like(W0), X), steps + 2)
    for got, expected in zip((w, m, loss), want):
        np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-5, atol=1e-6)


@WGPU
def test_a_donated_device_array_raises_when_used_again() -> None:
    require_wgpu()
    from pyasg.kernels.wgpu import DeviceArray

    f = pyasg.jit(sgd_step, backend="wgpu", donate_argnums=0)
    w = DeviceArray.from_numpy(W0)
    new_w, _ = f(w, X)
    with pytest.raises(BackendError, match="donated to sgd_step"):
        np.asarray(w)
    with pytest.raises(BackendError, match="donated"):
        f(w, X)
    np.testing.assert_allclose(np.asarray(new_w), reference_run(sgd_step, (W0, X), 1)[0],
                               rtol=1e-5, atol=1e-6)


@WGPU
def test_an_old_wgpu_result_kept_alive_keeps_its_values() -> None:
    require_wgpu()
    f = pyasg.jit(sgd_step, backend="wgpu", donate_argnums=0)
    first, _ = f(W0, X)  # numpy arguments: copied in, nothing of the caller's donated
    kept = np.asarray(first).copy()
    second, _ = f(W0, X)  # writes the buffer `first` lives in: `first` moves out first
    np.testing.assert_array_equal(np.asarray(first), kept)
    np.testing.assert_array_equal(np.asarray(second), kept)


@pytest.mark.parametrize("backend", ["numpy", pytest.param("wgpu", marks=WGPU)])
def test_a_donated_argument_returned_unchanged_keeps_its_value(backend: str) -> None:
    """A step that returns a donated input as it is (an optimiser's learning rate) beside
    a result of its type (the loss): the input's memory is that output's, never the
    loss's (found by the Trainer: on wgpu the returned rate became the loss)."""
    if backend == "wgpu":
        require_wgpu()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 2)).astype(np.float32)
    y = (x[:, 0] * x[:, 1] > 0).astype(np.int32)
    model = pyasg.nn.Sequential(pyasg.nn.Linear(2, 8), pyasg.nn.ReLU(), pyasg.nn.Linear(8, 2))

    def step(p, s, x, y):  # noqa: ANN001, ANN202
        loss, g = pyasg.value_and_grad(
            lambda p: pyasg.losses.cross_entropy(model(p, x), y))(p)
        p = pyasg.tree_map(lambda a, b: a - s["lr"] * b, p, g)
        flat = pyasg.reshape(s["lr"], (1,))  # returned as a view of the donated input too
        return p, {"step": s["step"] + 1, "lr": s["lr"]}, loss, flat

    f = pyasg.jit(step, backend=backend, donate_argnums=(1,))
    p = model.init(pyasg.random.key(0))
    s = {"step": np.zeros((), np.int32), "lr": np.asarray(0.1, np.float32)}
    losses = []
    for _ in range(4):
        p, s, loss, flat = f(p, s, x, y)
        assert float(np.asarray(s["lr"])) == np.float32(0.1)
        assert np.asarray(flat).tolist() == [np.float32(0.1)]
        losses.append(float(np.asarray(loss)))
    assert int(np.asarray(s["step"])) == 4 and losses[-1] < losses[0]
