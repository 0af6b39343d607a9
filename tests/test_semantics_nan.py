"""NaN, infinities and degenerate reductions: pyasg's composites against PyTorch and numpy.

A NaN that goes in must come out wherever PyTorch (or numpy) lets it through, and no NaN
may appear where they give a number: each composite of `pyasg.functional` and each loss
of `pyasg.losses` is run on NaN, ±inf, ±0 and ordinary values, and its result is
compared, NaN for NaN and inf for inf, with the same computation in PyTorch (numpy where
PyTorch has no such function). Every case runs eagerly, and compiled for the numpy and
the reference backends; on wgpu too (marked `wgpu`, float32 tolerances). Expected values
never come from pyasg. `var`/`std` with ddof >= n follow numpy (inf, or nan where the
sum of squares is 0 or the input empty), with no warning."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np
import pytest
from wgpu_util import require_wgpu

import pyasg
from pyasg import losses as L

torch = pytest.importorskip("torch")
tf = torch.nn.functional

nan, inf = math.nan, math.inf

#: Every special value and a few ordinary ones, for elementwise functions.
SPECIAL = [nan, inf, -inf, 0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 30.0, -30.0, 1e-3]
#: Rows for functions along the last axis: a NaN, infinities of both signs, all -inf.
ROWS = [[nan, 0.0, 1.0], [inf, 0.0, 1.0], [-inf, 0.0, 1.0], [-inf, -inf, -inf],
        [inf, inf, 0.0], [inf, -inf, 0.0], [1.0, 2.0, 3.0], [nan, inf, -inf]]

BACKENDS = ["eager", "numpy", "reference",
            pytest.param("wgpu", marks=pytest.mark.wgpu)]


def run(fn: Callable, backend: str, *arrays: np.ndarray) -> np.ndarray:
    """fn(*arrays) eagerly, or traced and compiled for `backend`."""
    if backend == "eager":
        return np.asarray(fn(*arrays))
    if backend == "wgpu":
        require_wgpu()
    return np.asarray(pyasg.jit(fn, backend=backend)(*arrays))


def torch_of(fn: Callable, *arrays: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's var warns for ddof >= n
        return fn(*(torch.from_numpy(np.asarray(a)) for a in arrays)).numpy()


def assert_same(got: np.ndarray, want: np.ndarray, dtype: np.dtype) -> None:
    """Same shape, NaN exactly where `want` has NaN, equal infinities, close numbers."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, (got.shape, want.shape)
    assert (np.isnan(got) == np.isnan(want)).all(), f"NaN positions differ:\n{got}\n{want}"
    single = np.float32 in (dtype, got.dtype)  # wgpu computes float64 cases in float32
    tol = dict(rtol=2e-5, atol=1e-6) if single else dict(rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got, want, equal_nan=True, **tol)


# --------------------------------------------------------------------------- elementwise

#: name -> (pyasg function, PyTorch function), both of one array.
ELEMENTWISE: dict[str, tuple[Callable, Callable]] = {
    "relu": (pyasg.relu, torch.relu),
    "leaky_relu": (lambda x: pyasg.leaky_relu(x, 0.1), lambda x: tf.leaky_relu(x, 0.1)),
    "elu": (lambda x: pyasg.elu(x, 0.7), lambda x: tf.elu(x, 0.7)),
    # torch's vectorised float32 GELU gives NaN at +inf where its scalar path (and the
    # formula, x * Phi(x)) gives inf (torch 2.13 CPU, AVX2): the oracle is torch's one
    # element at a time
    "gelu": (pyasg.gelu, lambda x: torch.stack([tf.gelu(v) for v in x.reshape(-1)])
             .reshape(x.shape)),
    "gelu_tanh": (lambda x: pyasg.gelu(x, approximate=True),
                  lambda x: tf.gelu(x, approximate="tanh")),
    "sigmoid": (pyasg.sigmoid, torch.sigmoid),
    "softplus": (pyasg.softplus, tf.softplus),
    "softplus_beta": (lambda x: pyasg.softplus(x, 2.0, 5.0), lambda x: tf.softplus(x, 2.0, 5.0)),
    "tanh": (pyasg.tanh, torch.tanh),
    "sign": (pyasg.sign, lambda x: torch.from_numpy(np.sign(x.numpy()))),  # torch: sign(NaN) = 0
    "abs": (pyasg.abs, torch.abs),
    "square": (pyasg.square, torch.square),
    "reciprocal": (pyasg.reciprocal, torch.reciprocal),
    "rsqrt": (pyasg.rsqrt, torch.rsqrt),
    "clamp": (lambda x: pyasg.clamp(x, -0.5, 0.5), lambda x: torch.clamp(x, -0.5, 0.5)),
    "clamp_min": (lambda x: pyasg.clamp(x, min=0.0), lambda x: torch.clamp(x, min=0.0)),
    "clamp_max": (lambda x: pyasg.clamp(x, max=0.0), lambda x: torch.clamp(x, max=0.0)),
    "clamp_nan_min": (lambda x: pyasg.clamp(x, min=nan), lambda x: torch.clamp(x, min=nan)),
    "clamp_nan_max": (lambda x: pyasg.clamp(x, max=nan), lambda x: torch.clamp(x, max=nan)),
    "clamp_crossed": (lambda x: pyasg.clamp(x, 1.0, -1.0), lambda x: torch.clamp(x, 1.0, -1.0)),
    "maximum_0": (lambda x: pyasg.maximum(x, 0.0), lambda x: torch.clamp_min(x, 0.0)),
    "minimum_0": (lambda x: pyasg.minimum(x, 0.0), lambda x: torch.clamp_max(x, 0.0)),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_elementwise_composites_keep_nan_and_inf_like_torch(name, dtype, backend):
    if backend == "wgpu" and dtype == np.float64:
        pytest.skip("wgpu computes in float32: one dtype is enough")
    ours, theirs = ELEMENTWISE[name]
    x = np.array(SPECIAL, dtype)
    assert_same(run(ours, backend, x), torch_of(theirs, x), dtype)


def test_clamp_with_array_bounds_propagates_a_nan_bound_elementwise():
    x = np.array([1.0, 2.0, 3.0, nan], np.float32)
    lo = np.array([nan, 0.0, 5.0, 0.0], np.float32)
    hi = np.array([4.0, nan, 6.0, 1.0], np.float32)
    want = torch_of(lambda a, b, c: torch.clamp(a, b, c), x, lo, hi)
    for backend in ("eager", "numpy", "reference"):
        assert_same(run(pyasg.clamp, backend, x, lo, hi), want, np.float32)


def test_relu_gradient_passes_at_nan_and_is_zero_at_zero_as_torch():
    x = np.array([nan, 0.0, -1.0, 2.0])
    got = pyasg.grad(lambda v: pyasg.sum(pyasg.relu(v)))(x)
    t = torch.tensor(x, requires_grad=True)
    torch.relu(t).sum().backward()
    np.testing.assert_array_equal(got, t.grad.numpy())


# --------------------------------------------------------------------------- along an axis

#: name -> (pyasg function, PyTorch or numpy function), of [rows, 3] along the last axis.
ALONG_AXIS: dict[str, tuple[Callable, Callable]] = {
    "softmax": (pyasg.softmax, lambda x: torch.softmax(x, -1)),
    "log_softmax": (pyasg.log_softmax, lambda x: torch.log_softmax(x, -1)),
    "logsumexp": (pyasg.logsumexp, lambda x: torch.logsumexp(x, -1)),
    "max": (lambda x: pyasg.max(x, axis=-1), lambda x: x.max(-1).values),
    "min": (lambda x: pyasg.min(x, axis=-1), lambda x: x.min(-1).values),
    "max_all": (pyasg.max, torch.max),
    "min_all": (pyasg.min, torch.min),
    "argmax": (lambda x: pyasg.argmax(x, axis=-1),
               lambda x: torch.from_numpy(np.argmax(x.numpy(), -1).astype(np.int32))),
    "argmin": (lambda x: pyasg.argmin(x, axis=-1),
               lambda x: torch.from_numpy(np.argmin(x.numpy(), -1).astype(np.int32))),
    "sum": (lambda x: pyasg.sum(x, axis=-1), lambda x: x.sum(-1)),
    "mean": (lambda x: pyasg.mean(x, axis=-1), lambda x: x.mean(-1)),
    "var": (lambda x: pyasg.var(x, axis=-1), lambda x: x.var(-1, correction=0)),
    "std": (lambda x: pyasg.std(x, axis=-1, ddof=1), lambda x: x.std(-1, correction=1)),
    "layer_norm": (lambda x: pyasg.layer_norm(x, eps=1e-5),
                   lambda x: tf.layer_norm(x, (3,), eps=1e-5)),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", sorted(ALONG_AXIS))
def test_reductions_and_normalisations_keep_nan_and_inf_like_torch(name, backend):
    ours, theirs = ALONG_AXIS[name]
    for dtype in ((np.float32,) if backend == "wgpu" else (np.float32, np.float64)):
        x = np.array(ROWS, dtype)
        got, want = run(ours, backend, x), torch_of(theirs, x)
        if want.dtype.kind in "iu":  # argmax / argmin: numpy's first NaN, else first extreme
            np.testing.assert_array_equal(got, want)
        else:
            assert_same(got, want, dtype)


# --------------------------------------------------------------------------- var, std, ddof


@pytest.mark.parametrize("backend", ["eager", "numpy", "reference"])
@pytest.mark.parametrize("case", [
    (np.arange(5.0), None, 7),      # ddof > n: numpy gives inf, not -5
    (np.arange(5.0), None, 5),      # ddof == n: inf
    (np.ones(4), None, 4),          # ddof == n, all equal: 0 / 0 = nan
    (np.zeros(0), None, 0),         # empty: nan
    (np.zeros(0), None, 3),
    (np.zeros((2, 0)), 1, 0),
    (np.arange(6.0).reshape(2, 3), 1, 3),
    (np.arange(6.0).reshape(2, 3), 0, 1),
    (np.arange(6.0).reshape(2, 3), (0, 1), 6),
])
@pytest.mark.parametrize("name", ["var", "std"])
def test_var_and_std_with_ddof_at_or_past_n_match_numpy_without_warning(name, case, backend):
    x, axis, ddof = case
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = getattr(np, name)(x, axis=axis, ddof=ddof)
    fn = getattr(pyasg, name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the documented behaviour: no RuntimeWarning
        got = run(lambda v: fn(v, axis=axis, ddof=ddof), backend, x)
    assert_same(got, want, np.float64)


def test_var_keeps_float32_with_a_degenerate_ddof():
    got = pyasg.var(np.arange(5.0, dtype=np.float32), ddof=9)
    assert got.dtype == np.float32 and got == np.inf


# --------------------------------------------------------------------------- losses

SCORES = np.array(SPECIAL)
SIGNS = np.array([1, -1] * 6)
PAIRS = np.array([[nan, 0.0], [inf, 1.0], [-inf, 1.0], [0.5, -0.5], [2.0, 1.0], [nan, nan]])
NONE = dict(reduction="none")


def _torch_hinge(s, y, margin=1.0):
    return torch.clamp_min(margin - y * s, 0.0)


#: name -> (pyasg loss, PyTorch's, the arguments (numpy)), each with reduction="none".
LOSSES: dict[str, tuple[Callable, Callable, tuple]] = {
    "hinge": (lambda s, y: L.hinge(s, y, **NONE), _torch_hinge, (SCORES, SIGNS)),
    "squared_hinge": (lambda s, y: L.squared_hinge(s, y, **NONE),
                      lambda s, y: _torch_hinge(s, y) ** 2, (SCORES, SIGNS)),
    "hinge_embedding": (lambda x, y: L.hinge_embedding_loss(x, y, **NONE),
                        lambda x, y: tf.hinge_embedding_loss(x, y, reduction="none"),
                        (SCORES, SIGNS)),
    "margin_ranking": (lambda a, b, y: L.margin_ranking_loss(a, b, y, 0.5, **NONE),
                       lambda a, b, y: tf.margin_ranking_loss(a, b, y, 0.5, reduction="none"),
                       (SCORES, np.zeros(12), SIGNS.astype(np.float64))),
    "cosine_embedding": (lambda a, b, y: L.cosine_embedding_loss(a, b, y, 0.1, **NONE),
                         lambda a, b, y: tf.cosine_embedding_loss(a, b, y, 0.1,
                                                                  reduction="none"),
                         (PAIRS, np.ones((6, 2)), np.array([-1, 1, -1, -1, -1, 1]))),
    "l1": (lambda a, b: L.l1_loss(a, b, **NONE), lambda a, b: tf.l1_loss(a, b, reduction="none"),
           (SCORES, np.zeros(12))),
    "mse": (lambda a, b: L.mse_loss(a, b, **NONE),
            lambda a, b: tf.mse_loss(a, b, reduction="none"), (SCORES, np.zeros(12))),
    "smooth_l1": (lambda a, b: L.smooth_l1_loss(a, b, beta=0.5, **NONE),
                  lambda a, b: tf.smooth_l1_loss(a, b, beta=0.5, reduction="none"),
                  (SCORES, np.zeros(12))),
    "huber": (lambda a, b: L.huber_loss(a, b, delta=2.0, **NONE),
              lambda a, b: tf.huber_loss(a, b, delta=2.0, reduction="none"),
              (SCORES, np.zeros(12))),
    "bce_with_logits": (lambda x, y: L.binary_cross_entropy_with_logits(x, y, **NONE),
                        lambda x, y: tf.binary_cross_entropy_with_logits(x, y,
                                                                         reduction="none"),
                        (SCORES, np.tile([0.0, 1.0], 6))),
    "kl_div": (lambda x, y: L.kl_div(x, y, **NONE),
               lambda x, y: tf.kl_div(x, y, reduction="none"),
               (np.tile([nan, -1.0, 0.0], 4), np.repeat([nan, 0.0, 0.5, 1.0], 3))),
    "cross_entropy": (lambda x, y: L.cross_entropy(x, y, **NONE),
                      lambda x, y: tf.cross_entropy(x, y.long(), reduction="none"),
                      (np.array(ROWS), np.array([0, 1, 2, 0, 1, 2, 0, 1]))),
    "cross_entropy_smoothed": (
        lambda x, y: L.cross_entropy(x, y, label_smoothing=0.2, **NONE),
        lambda x, y: tf.cross_entropy(x, y.long(), label_smoothing=0.2, reduction="none"),
        (np.array(ROWS), np.array([0, 1, 2, 0, 1, 2, 0, 1]))),
    "nll": (lambda x, y: L.nll_loss(x, y, **NONE),
            lambda x, y: tf.nll_loss(x, y.long(), reduction="none"),
            (np.array(ROWS), np.array([0, 1, 2, 0, 1, 2, 0, 1]))),
}
for _p in (1.0, 2.0, 3.0, inf):
    for _swap in (False, True):
        LOSSES[f"triplet_p{_p}_swap{_swap}"] = (
            lambda a, p, n, _p=_p, _s=_swap: L.triplet_margin_loss(a, p, n, p=_p, swap=_s,
                                                                   **NONE),
            lambda a, p, n, _p=_p, _s=_swap: tf.triplet_margin_loss(a, p, n, p=_p, swap=_s,
                                                                    reduction="none"),
            (PAIRS, np.zeros((6, 2)), np.full((6, 2), 0.25)))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_losses_keep_nan_and_inf_like_torch(name, backend):
    ours, theirs, args = LOSSES[name]
    want = torch_of(theirs, *args)
    assert np.isnan(want).any(), "the case must have a NaN to keep"
    assert_same(run(ours, backend, *args), want, np.float64)


@pytest.mark.parametrize("backend", BACKENDS)
def test_reduced_margin_losses_are_nan_when_one_term_is(backend):
    s = np.array([nan, 3.0, 4.0], np.float32)
    y = np.array([1.0, 1.0, 1.0], np.float32)
    for loss in (lambda s, y: L.hinge(s, y), lambda s, y: L.margin_ranking_loss(s, s * 0, y),
                 lambda s, y: L.hinge_embedding_loss(s, -y)):
        assert np.isnan(run(loss, backend, s, y))


@pytest.mark.parametrize("backend", BACKENDS[1:])
def test_traced_binary_cross_entropy_is_nan_for_nan_or_out_of_range_probabilities(backend):
    # A traced probability has no value to check when the graph is built: outside [0, 1]
    # (or NaN) the loss is NaN, never a finite number from a clamped log. (Concrete ones
    # are rejected, as PyTorch does: tests/test_array_misuse.py.)
    p = np.array([nan, 2.0, -0.5, 1.5, 0.25, 0.0, 1.0], np.float32)
    y = np.array([1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0], np.float32)
    got = run(lambda p, y: L.binary_cross_entropy(p, y, reduction="none"), backend, p, y)
    want = np.array([nan, nan, nan, nan, -np.log(0.25), 100.0, 100.0], np.float32)
    assert_same(got, want, np.float32)
