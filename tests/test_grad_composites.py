"""Gradients of the composites in pyasg.functional, against central differences (float64),
and exactness tests of softmax, log_softmax, gelu, sigmoid and softplus gradients against
closed-form derivatives written here in numpy (at large magnitudes too, where a naive
formula overflows or cancels). Expected values never come from pyasg.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from gradcheck import assert_close_rel, check_grad, projection
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.special import ndtr

import pyasg

SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)
SHAPES_1 = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)
SEEDS = st.integers(0, 2**32 - 1)


def floats(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


def away_from(kinks: tuple[float, ...], lo: float, hi: float, margin: float = 0.05):
    """Floats in [lo, hi] at least `margin` from every kink."""
    return floats(lo, hi).filter(lambda v: all(abs(v - k) >= margin for k in kinks))


def arrays(shape: tuple[int, ...], elements: st.SearchStrategy[float]) -> st.SearchStrategy:
    return hnp.arrays(np.float64, shape, elements=elements)


def spread(seed: int, shape: tuple[int, ...], scale: float = 1.0) -> np.ndarray:
    """Values all different (no ties for min, no zero variance), from a seed."""
    n = int(np.prod(shape, dtype=np.int64))
    rng = np.random.default_rng(seed)
    return (rng.permutation(n) - n / 2 + rng.uniform(0.1, 0.4, n)).reshape(shape) * scale / 2


@st.composite
def axes_spec(draw, min_count: int = 1):  # noqa: ANN001, ANN201
    """(shape, axis, keepdims); each output reduces at least `min_count` elements."""
    if min_count > 1:
        shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=min_count, max_side=4))
    else:
        shape = draw(SHAPES)
    nd = len(shape)
    choices = [st.none()]
    if nd:
        choices.append(st.integers(-nd, nd - 1))
        choices.append(st.lists(st.integers(-nd, nd - 1), min_size=min_count > 1,
                                max_size=nd).map(lambda a: tuple(dict.fromkeys(x % nd for x in a))))
    axis = draw(st.one_of(*choices))
    return shape, axis, draw(st.booleans())


# --------------------------------------------------------------------------- reductions


@settings(deadline=None)
@given(spec=axes_spec(), data=st.data())
def test_grad_mean(spec: tuple, data: st.DataObject) -> None:
    shape, axis, keepdims = spec
    x = data.draw(arrays(shape, floats(-5, 5)), label="x")
    check_grad(lambda x: pyasg.mean(x, axis=axis, keepdims=keepdims), x)


def test_grad_mean_hand_value() -> None:
    x = np.arange(12.0).reshape(3, 4)
    g = pyasg.grad(lambda x: pyasg.mean(x))(x)
    np.testing.assert_allclose(g, np.full((3, 4), 1 / 12), rtol=1e-15)


@pytest.mark.parametrize("ddof", [0, 1])
@settings(deadline=None)
@given(spec=axes_spec(min_count=2), seed=SEEDS)
def test_grad_var(ddof: int, spec: tuple, seed: int) -> None:
    shape, axis, keepdims = spec
    x = spread(seed, shape)
    out = pyasg.jit(lambda x: pyasg.var(x, axis=axis, ddof=ddof, keepdims=keepdims))(x)
    np.testing.assert_allclose(out, np.var(x, axis=axis, ddof=ddof, keepdims=keepdims),
                               rtol=1e-12)
    check_grad(lambda x: pyasg.var(x, axis=axis, ddof=ddof, keepdims=keepdims), x)


@pytest.mark.parametrize("ddof", [0, 1])
def test_grad_var_hand_value(ddof: int) -> None:
    x = np.array([[1.0, 4.0, -2.0, 0.5], [3.0, 3.5, 9.0, -1.0]])
    g = pyasg.grad(lambda x: pyasg.var(x, axis=1, ddof=ddof).sum())(x)
    expected = 2 * (x - x.mean(axis=1, keepdims=True)) / (x.shape[1] - ddof)
    np.testing.assert_allclose(g, expected, rtol=1e-13)


@pytest.mark.parametrize("ddof", [0, 1])
@settings(deadline=None)
@given(spec=axes_spec(min_count=2), seed=SEEDS)
def test_grad_std(ddof: int, spec: tuple, seed: int) -> None:
    shape, axis, keepdims = spec
    x = spread(seed, shape)
    check_grad(lambda x: pyasg.std(x, axis=axis, ddof=ddof, keepdims=keepdims), x)


@settings(deadline=None)
@given(spec=axes_spec(), seed=SEEDS)
def test_grad_min(spec: tuple, seed: int) -> None:
    shape, axis, keepdims = spec
    x = spread(seed, shape)  # distinct: one minimum per slice
    check_grad(lambda x: pyasg.min(x, axis=axis, keepdims=keepdims), x)


def test_grad_min_hand_value() -> None:
    x = np.array([[3.0, -1.0, 2.0], [0.5, 7.0, 0.25]])
    g = pyasg.grad(lambda x: pyasg.min(x, axis=1).sum())(x)
    np.testing.assert_array_equal(g, [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])


@settings(deadline=None)
@given(spec=axes_spec(), data=st.data(), shift=st.sampled_from([0.0, 40.0, -300.0]))
def test_grad_logsumexp(spec: tuple, data: st.DataObject, shift: float) -> None:
    shape, axis, keepdims = spec
    x = data.draw(arrays(shape, floats(-5, 5)), label="x") + shift
    check_grad(lambda x: pyasg.logsumexp(x, axis=axis, keepdims=keepdims), x)


def test_grad_logsumexp_is_softmax() -> None:
    x = np.array([[1000.0, 999.0, -1000.0], [0.5, -0.25, 3.0]])
    g = pyasg.grad(lambda x: pyasg.logsumexp(x, axis=-1).sum())(x)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    np.testing.assert_allclose(g, e / e.sum(axis=-1, keepdims=True), rtol=1e-12)


# --------------------------------------------------------------------------- activations

ACTIVATIONS = {
    # name: (function, strategy of elements away from kinks/thresholds)
    "relu": (pyasg.relu, away_from((0.0,), -5, 5)),
    "leaky_relu": (lambda x: pyasg.leaky_relu(x, 0.1), away_from((0.0,), -5, 5)),
    "elu": (lambda x: pyasg.elu(x, 1.3), away_from((0.0,), -5, 5)),
    # softplus is smooth, but it switches to x at beta*x > threshold (a 2e-9 jump at 20)
    "softplus": (pyasg.softplus, floats(-15, 15)),
    "softplus_beta": (lambda x: pyasg.softplus(x, beta=2.0, threshold=10.0),
                      away_from((5.0,), -6, 8, margin=0.1)),
    "sigmoid": (pyasg.sigmoid, floats(-8, 8)),
    # Central differences with step 1e-6 carry a rounding error of ~1e-10 * |value|, so
    # the points where the derivative is tiny next to the value are left out: the minima
    # of silu (x = -1.278) and gelu (x = -0.752), and gelu for x < -3, where 1 + erf (or
    # 1 + tanh) cancels. The exactness tests below cover those points with closed forms.
    "silu": (pyasg.silu, away_from((-1.278,), -6, 6, margin=0.15)),
    "gelu": (pyasg.gelu, away_from((-0.752,), -3, 5, margin=0.15)),
    "gelu_tanh": (lambda x: pyasg.gelu(x, approximate=True),
                  away_from((-0.752,), -3, 5, margin=0.15)),
    "tanh": (pyasg.tanh, floats(-3, 3)),
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@settings(deadline=None)
@given(data=st.data())
def test_grad_activation(name: str, data: st.DataObject) -> None:
    fn, elements = ACTIVATIONS[name]
    x = data.draw(SHAPES.flatmap(lambda s: arrays(s, elements)), label="x")
    check_grad(fn, x)


@settings(deadline=None)
@given(data=st.data())
def test_grad_clamp(data: st.DataObject) -> None:
    x = data.draw(SHAPES.flatmap(lambda s: arrays(s, away_from((-1.0, 1.5), -3, 3))), label="x")
    check_grad(lambda x: pyasg.clamp(x, -1.0, 1.5), x)
    check_grad(lambda x: pyasg.clamp(x, min=-1.0), x)
    check_grad(lambda x: pyasg.clamp(x, max=1.5), x)


def test_grad_clamp_with_array_bounds() -> None:
    x = np.array([-3.0, -0.5, 0.2, 2.0, 5.0])
    lo = np.array([-1.0, -1.0, 0.5, -1.0, -1.0])
    hi = np.array([1.0, 1.0, 1.0, 1.0, 4.0])
    check_grad(lambda x, lo, hi: pyasg.clamp(x, lo, hi), x, lo, hi, argnums=(0, 1, 2))
    gx, glo, ghi = pyasg.grad(lambda x, lo, hi: pyasg.clamp(x, lo, hi).sum(),
                              argnums=(0, 1, 2))(x, lo, hi)
    np.testing.assert_array_equal(gx, [0.0, 1.0, 0.0, 0.0, 0.0])
    np.testing.assert_array_equal(glo, [1.0, 0.0, 1.0, 0.0, 0.0])
    np.testing.assert_array_equal(ghi, [0.0, 0.0, 0.0, 1.0, 1.0])


@pytest.mark.parametrize("fn", [pyasg.softmax, pyasg.log_softmax], ids=["softmax", "log_softmax"])
@settings(deadline=None)
@given(data=st.data())
def test_grad_softmax_family(fn, data: st.DataObject) -> None:  # noqa: ANN001
    x = data.draw(SHAPES_1.flatmap(lambda s: arrays(s, floats(-5, 5))), label="x")
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1), label="axis")
    check_grad(lambda x: fn(x, axis=axis), x)


# --------------------------------------------------------------------------- layer_norm


@pytest.mark.parametrize("affine", [False, True], ids=["plain", "weight+bias"])
@pytest.mark.parametrize("axis", [-1, (1, 2)], ids=["axis-1", "axis12"])
@pytest.mark.parametrize("eps", [1e-5, 0.0])
def test_grad_layer_norm(affine: bool, axis: object, eps: float) -> None:
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 3, 4)) * 2 + 0.5
    pshape = (4,) if axis == -1 else (3, 4)
    w = rng.uniform(0.5, 1.5, pshape)
    b = rng.standard_normal(pshape)

    def f(x, w, b):  # noqa: ANN001, ANN202
        if affine:
            return pyasg.layer_norm(x, axis=axis, eps=eps, weight=w, bias=b)
        return pyasg.layer_norm(x, axis=axis, eps=eps)

    # the forward agrees with numpy, then the gradients with central differences
    axes = (2,) if axis == -1 else (1, 2)
    mu = x.mean(axis=axes, keepdims=True)
    expected = (x - mu) / np.sqrt(x.var(axis=axes, keepdims=True) + eps)
    if affine:
        expected = expected * w + b
    np.testing.assert_allclose(pyasg.jit(f)(x, w, b), expected, rtol=1e-12, atol=1e-12)
    check_grad(f, x, w, b, argnums=(0, 1, 2) if affine else 0)


@settings(deadline=None)
@given(seed=SEEDS, shape=hnp.array_shapes(min_dims=2, max_dims=3, min_side=3, max_side=4))
def test_grad_layer_norm_generated(seed: int, shape: tuple) -> None:
    # normalised axis of at least 3: over 2 elements the output is +-1 whatever x is, and
    # the gradient (~eps / var) is too small next to the value for central differences
    x = spread(seed, shape, 0.7)
    w = np.random.default_rng(seed + 1).uniform(0.5, 1.5, shape[-1])
    check_grad(lambda x, w: pyasg.layer_norm(x, weight=w), x, w, argnums=(0, 1))


# --------------------------------------------------------------------------- shapes


@settings(deadline=None)
@given(data=st.data(), n=st.integers(1, 3))
def test_grad_stack(data: st.DataObject, n: int) -> None:
    shape = data.draw(SHAPES, label="shape")
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)), label="axis")
    xs = [data.draw(arrays(shape, floats(-5, 5)), label=f"x{k}") for k in range(n)]
    f = lambda *xs: pyasg.stack([x * (k + 1.0) for k, x in enumerate(xs)], axis=axis)  # noqa: E731
    np.testing.assert_allclose(pyasg.jit(f)(*xs),
                               np.stack([x * (k + 1.0) for k, x in enumerate(xs)], axis=axis))
    check_grad(f, *xs, argnums=tuple(range(n)))


@settings(deadline=None)
@given(data=st.data())
def test_grad_split(data: st.DataObject) -> None:
    shape = data.draw(SHAPES_1, label="shape")
    axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
    d = shape[axis]
    if data.draw(st.booleans(), label="sections"):
        how = data.draw(st.sampled_from([k for k in range(1, d + 1) if d % k == 0]))
    else:
        how = sorted(data.draw(st.lists(st.integers(0, d), max_size=3), label="indices"))
    x = data.draw(arrays(shape, floats(-3, 3)), label="x")
    funcs = [pyasg.sin, pyasg.exp, lambda v: v * v, pyasg.tanh]

    def f(x):  # noqa: ANN001, ANN202
        parts = pyasg.split(x, how, axis=axis)
        return pyasg.concatenate([funcs[k % 4](p) for k, p in enumerate(parts)], axis=axis)

    parts = np.split(x, how, axis=axis)
    expected = np.concatenate(
        [[np.sin, np.exp, lambda v: v * v, np.tanh][k % 4](p) for k, p in enumerate(parts)],
        axis=axis)
    np.testing.assert_allclose(pyasg.jit(f)(x), expected, rtol=1e-13)
    check_grad(f, x)


def test_grad_split_hand_value() -> None:
    x = np.arange(6.0)
    a, b, c = (3.0, -2.0, 0.5)

    def f(x):  # noqa: ANN001, ANN202
        p, q, s = pyasg.split(x, [1, 4])
        return a * p.sum() + b * (q * q).sum() + c * s.sum()

    g = pyasg.grad(f)(x)
    np.testing.assert_allclose(g, [a, 2 * b * 1, 2 * b * 2, 2 * b * 3, c, c], rtol=1e-15)


@settings(deadline=None)
@given(data=st.data())
def test_grad_squeeze_expand_dims(data: st.DataObject) -> None:
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=3),
                      label="shape")
    ones = [i for i, d in enumerate(shape) if d == 1]
    axis = data.draw(st.one_of(st.none(), st.lists(st.sampled_from(ones), unique=True).map(
        tuple)) if ones else st.none(), label="squeeze axis")
    x = data.draw(arrays(shape, floats(-5, 5)), label="x")
    check_grad(lambda x: pyasg.squeeze(pyasg.sin(x), axis), x)
    new = data.draw(st.integers(-len(shape) - 1, len(shape)), label="expand axis")
    check_grad(lambda x: pyasg.expand_dims(pyasg.sin(x), new), x)
    assert pyasg.jit(lambda x: pyasg.expand_dims(x, new))(x).shape == np.expand_dims(x, new).shape
    assert pyasg.jit(lambda x: pyasg.squeeze(x, axis))(x).shape == np.squeeze(x, axis).shape


# --------------------------------------------------------------------------- integer indexing


INDEXES = {
    "repeated rows": (np.array([2, 0, 2, 2]),),
    "negative": (np.array([-1, 0, -1]),),
    "list": ([1, 1, 0],),
    "2-d index": (np.array([[0, 3], [3, 3]]),),
    "column": (slice(None), np.array([4, 0, 4])),
    "two arrays": (np.array([0, 2, 2, 3]), np.array([1, 4, 4, -1])),
    "two broadcast arrays": (np.array([[0], [3]]), np.array([1, 2, 1])),
    "int and array": (1, np.array([0, 0, 3])),
}


@pytest.mark.parametrize("name", sorted(INDEXES))
def test_grad_integer_indexing(name: str) -> None:
    index = INDEXES[name]
    rng = np.random.default_rng(12)
    x = rng.standard_normal((4, 5))
    f = lambda x: x[index]  # noqa: E731
    np.testing.assert_array_equal(pyasg.jit(f)(x), x[index])
    check_grad(f, x)
    # by hand: scatter the projection back with np.add.at (repeats accumulate)
    r = projection(x[index].shape)
    g = pyasg.grad(lambda x: (x[index] * r).sum())(x)
    expected = np.zeros_like(x)
    np.add.at(expected, index, r)
    np.testing.assert_allclose(g, expected, rtol=1e-14)


@pytest.mark.parametrize("index", [
    (np.array([0, 1, 1]), slice(None), np.array([2, 0, 2])),  # separated: moves to the front
    (Ellipsis, np.array([1, 0, 1])),
    (np.array([[1], [0]]), np.array([0, 1, 0]), slice(1, 3)),
], ids=["separated", "ellipsis", "two-then-slice"])
def test_grad_integer_indexing_3d(index: tuple) -> None:
    x = np.random.default_rng(13).standard_normal((2, 3, 4))
    f = lambda x: x[index]  # noqa: E731
    np.testing.assert_array_equal(pyasg.jit(f)(x), x[index])
    check_grad(f, x)
    r = projection(x[index].shape)
    g = pyasg.grad(lambda x: (x[index] * r).sum())(x)
    expected = np.zeros_like(x)
    np.add.at(expected, index, r)
    np.testing.assert_allclose(g, expected, rtol=1e-14)


# --------------------------------------------------------------------------- exactness


def _stable_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


LARGE_LOGITS = np.array([
    [30.0, -30.0, 0.0, 29.5, -29.0],
    [1000.0, -1000.0, 999.0, 0.0, 1000.0],
    [-800.0, -801.0, -799.5, -1000.0, -800.0],
    [0.1, -0.2, 0.3, 0.0, 1e-3],
])


@pytest.mark.parametrize("axis", [-1, 0])
def test_softmax_gradient_is_exact(axis: int) -> None:
    x = LARGE_LOGITS
    v = projection(x.shape, seed=3)
    g = pyasg.grad(lambda x: (pyasg.softmax(x, axis=axis) * v).sum())(x)
    s = _stable_softmax(x, axis)
    expected = s * (v - (s * v).sum(axis=axis, keepdims=True))
    assert np.all(np.isfinite(g))
    assert_close_rel(g, expected, 1e-6, "softmax VJP")
    np.testing.assert_allclose(g, expected, rtol=1e-6, atol=1e-300)  # elementwise too


@pytest.mark.parametrize("axis", [-1, 0])
def test_log_softmax_gradient_is_exact(axis: int) -> None:
    x = LARGE_LOGITS
    v = projection(x.shape, seed=4)
    g = pyasg.grad(lambda x: (pyasg.log_softmax(x, axis=axis) * v).sum())(x)
    expected = v - _stable_softmax(x, axis) * v.sum(axis=axis, keepdims=True)
    assert np.all(np.isfinite(g))
    assert_close_rel(g, expected, 1e-6, "log_softmax VJP")
    np.testing.assert_allclose(g, expected, rtol=1e-6, atol=1e-14)


GELU_X = np.array([-30.0, -12.0, -8.0, -5.0, -3.0, -1.5, -1.0, -0.7518, -0.5, -1e-3, 0.0, 1e-3,
                   0.5, 1.0, 1.5, 3.0, 5.0, 8.0, 12.0, 30.0])


def test_gelu_exact_gradient_is_exact() -> None:
    g = pyasg.grad(lambda x: pyasg.gelu(x).sum())(GELU_X)
    phi = np.exp(-GELU_X**2 / 2) / math.sqrt(2 * math.pi)
    expected = ndtr(GELU_X) + GELU_X * phi  # Phi(x) + x phi(x)
    assert_close_rel(g, expected, 1e-6, "gelu'")
    np.testing.assert_allclose(g, expected, rtol=1e-6, atol=1e-14)


def test_gelu_tanh_gradient_is_exact() -> None:
    x = GELU_X
    c = math.sqrt(2 / math.pi)
    u = c * (x + 0.044715 * x**3)
    du = c * (1 + 3 * 0.044715 * x**2)
    half_one_plus_tanh = 1 / (1 + np.exp(-2 * u))  # (1 + tanh u) / 2, no cancellation
    e = np.exp(-2 * np.abs(u))
    sech2 = 4 * e / (1 + e) ** 2  # 1 / cosh(u)^2 without overflow
    expected = half_one_plus_tanh + 0.5 * x * sech2 * du
    with np.errstate(over="ignore"):
        g = pyasg.grad(lambda x: pyasg.gelu(x, approximate=True).sum())(x)
    assert_close_rel(g, expected, 1e-6, "tanh-gelu'")
    np.testing.assert_allclose(g, expected, rtol=1e-6, atol=1e-14)


EXTREME_X = np.array([-1000.0, -745.0, -700.0, -50.0, -30.0, -5.0, -0.5, 0.0, 0.5, 5.0, 19.0,
                      21.0, 30.0, 50.0, 700.0, 745.0, 1000.0])


def _stable_sigmoid(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def test_sigmoid_gradient_finite_and_exact_at_extremes() -> None:
    g = pyasg.grad(lambda x: pyasg.sigmoid(x).sum())(EXTREME_X)
    e = np.exp(-np.abs(EXTREME_X))
    expected = e / (1 + e) ** 2  # s (1 - s), without 1 - s cancelling
    assert np.all(np.isfinite(g)), g
    np.testing.assert_allclose(g, expected, rtol=1e-6, atol=0)
    value = pyasg.jit(pyasg.sigmoid)(EXTREME_X)
    np.testing.assert_allclose(value, _stable_sigmoid(EXTREME_X), rtol=1e-12, atol=0)


def test_softplus_gradient_finite_and_exact_at_extremes() -> None:
    g = pyasg.grad(lambda x: pyasg.softplus(x).sum())(EXTREME_X)
    # d/dx log(1 + e^x) = sigmoid(x); beyond the threshold (x > 20) softplus is x, slope 1
    expected = np.where(EXTREME_X > 20, 1.0, _stable_sigmoid(EXTREME_X))
    assert np.all(np.isfinite(g)), g
    np.testing.assert_allclose(g, expected, rtol=1e-6, atol=0)
    value = pyasg.jit(pyasg.softplus)(EXTREME_X)
    expected_value = np.where(EXTREME_X > 20, EXTREME_X,
                              np.maximum(EXTREME_X, 0) + np.log1p(np.exp(-np.abs(EXTREME_X))))
    np.testing.assert_allclose(value, expected_value, rtol=1e-12, atol=0)
    assert np.all(np.isfinite(value))


def test_silu_gradient_exact_at_extremes() -> None:
    x = EXTREME_X
    g = pyasg.grad(lambda x: pyasg.silu(x).sum())(x)
    s = _stable_sigmoid(x)
    e = np.exp(-np.abs(x))
    expected = s + x * e / (1 + e) ** 2  # s + x s (1 - s)
    assert np.all(np.isfinite(g)), g
    np.testing.assert_allclose(g, expected, rtol=1e-6, atol=1e-300)


def test_derivatives_at_exactly_zero_come_from_the_smooth_branch():
    # closed forms: sigmoid'(0) = 1/4, softplus'(0) = 1/2, softplus''(0) = 1/4,
    # elu'(0) = alpha * exp(0) (both sides have slope 1 for alpha = 1, as PyTorch)
    zero = np.array(0.0)
    assert float(pyasg.grad(pyasg.sigmoid)(zero)) == 0.25
    assert float(pyasg.grad(pyasg.softplus)(zero)) == 0.5
    assert float(pyasg.grad(pyasg.grad(pyasg.softplus))(zero)) == 0.25
    assert float(pyasg.grad(pyasg.elu)(zero)) == 1.0
    assert float(pyasg.grad(lambda x: pyasg.elu(x, alpha=0.5))(zero)) == 0.5
