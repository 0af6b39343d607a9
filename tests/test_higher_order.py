"""Higher-order and composed gradients: grad(grad(f)), third derivatives, the Hessian of a
small MLP, grad inside jit and over closed-over traced values, pytree argnums, has_aux.

Expected values are closed forms or central differences, never pyasg's own output
(except the Hessian, which is compared with central differences of pyasg's gradient,
itself checked against central differences of the loss).
"""

from __future__ import annotations

import numpy as np
from gradcheck import assert_close_rel, numeric_grad
from hypothesis import given, settings
from hypothesis import strategies as st

import pyasg

POINTS = st.floats(-3, 3, allow_nan=False, allow_infinity=False)


def _d2(f):  # noqa: ANN001, ANN202
    return pyasg.grad(pyasg.grad(f))


@settings(deadline=None)
@given(x=POINTS)
def test_second_derivative_of_tanh(x: float) -> None:
    got = _d2(pyasg.tanh)(np.float64(x))
    t, sech2 = np.tanh(x), 1 / np.cosh(x) ** 2
    np.testing.assert_allclose(got, -2 * t * sech2, rtol=1e-9, atol=1e-14)


@settings(deadline=None)
@given(x=POINTS)
def test_second_derivative_of_sin_times_exp(x: float) -> None:
    got = _d2(lambda x: pyasg.sin(x) * pyasg.exp(x))(np.float64(x))
    np.testing.assert_allclose(got, 2 * np.cos(x) * np.exp(x), rtol=1e-9, atol=1e-14)


@settings(deadline=None)
@given(x=POINTS)
def test_second_derivative_of_cube(x: float) -> None:
    got = _d2(lambda x: x**3)(np.float64(x))
    np.testing.assert_allclose(got, 6 * x, rtol=1e-12, atol=1e-14)
    got = _d2(lambda x: x * x * x)(np.float64(x))
    np.testing.assert_allclose(got, 6 * x, rtol=1e-12, atol=1e-14)


@settings(deadline=None)
@given(x=POINTS)
def test_third_derivative_of_fourth_power(x: float) -> None:
    d3 = pyasg.grad(pyasg.grad(pyasg.grad(lambda x: x**4)))
    np.testing.assert_allclose(d3(np.float64(x)), 24 * x, rtol=1e-9, atol=1e-12)
    d3m = pyasg.grad(pyasg.grad(pyasg.grad(lambda x: x * x * x * x)))
    np.testing.assert_allclose(d3m(np.float64(x)), 24 * x, rtol=1e-12, atol=1e-12)


def test_second_derivatives_elementwise_on_arrays() -> None:
    x = np.linspace(-2.5, 2.5, 11)
    d2 = pyasg.grad(lambda x: pyasg.grad(lambda y: pyasg.tanh(y).sum())(x).sum())(x)
    np.testing.assert_allclose(d2, -2 * np.tanh(x) / np.cosh(x) ** 2, rtol=1e-9, atol=1e-14)


def test_second_derivative_of_sigmoid_at_zero_and_elsewhere() -> None:
    x = np.array([-3.0, -0.5, 0.0, 0.5, 3.0])
    d2 = pyasg.grad(lambda x: pyasg.grad(lambda y: pyasg.sigmoid(y).sum())(x).sum())(x)
    s = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(d2, s * (1 - s) * (1 - 2 * s), rtol=1e-9, atol=1e-15)


# --------------------------------------------------------------------------- hessian

N_IN, N_HID, N_SAMPLES = 3, 4, 6
SIZES = {"W1": (N_IN, N_HID), "b1": (N_HID,), "W2": (N_HID, 1), "b2": (1,)}
N_PARAMS = sum(int(np.prod(s)) for s in SIZES.values())  # 21


def _mlp_data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(21)
    X = rng.standard_normal((N_SAMPLES, N_IN))
    y = rng.standard_normal((N_SAMPLES, 1))
    w = rng.standard_normal(N_PARAMS) * 0.7
    return X, y, w


def _mlp_loss(X: np.ndarray, y: np.ndarray):  # noqa: ANN202
    def loss(w):  # noqa: ANN001, ANN202
        params, k = {}, 0
        for name, shape in SIZES.items():
            n = int(np.prod(shape))
            params[name] = pyasg.reshape(w[k:k + n], shape)
            k += n
        h = pyasg.tanh(X @ params["W1"] + params["b1"])
        pred = h @ params["W2"] + params["b2"]
        return pyasg.mean((pred - y) ** 2)

    return loss


def _mlp_loss_numpy(w: np.ndarray, X: np.ndarray, y: np.ndarray) -> float:
    W1 = w[:12].reshape(3, 4)
    b1, W2, b2 = w[12:16], w[16:20].reshape(4, 1), w[20:21]
    return float(np.mean((np.tanh(X @ W1 + b1) @ W2 + b2 - y) ** 2))


def test_mlp_gradient_matches_central_differences() -> None:
    X, y, w = _mlp_data()
    loss = _mlp_loss(X, y)
    np.testing.assert_allclose(pyasg.jit(loss)(w), _mlp_loss_numpy(w, X, y), rtol=1e-13)
    g = pyasg.grad(loss)(w)
    numeric = numeric_grad(lambda w: _mlp_loss_numpy(w, X, y), [w], 0)
    assert_close_rel(g, numeric, 1e-6, "MLP gradient")


def test_hessian_of_mlp_loss_matches_central_differences_and_is_symmetric() -> None:
    X, y, w = _mlp_data()
    loss = _mlp_loss(X, y)
    H = np.asarray(pyasg.hessian(loss)(w))
    assert H.shape == (N_PARAMS, N_PARAMS)
    assert np.all(np.isfinite(H))
    grad = pyasg.grad(loss)
    numeric = np.zeros((N_PARAMS, N_PARAMS))
    for k in range(N_PARAMS):
        h = 1e-5 * max(1.0, abs(w[k]))
        wp, wm = w.copy(), w.copy()
        wp[k] += h
        wm[k] -= h
        numeric[:, k] = (np.asarray(grad(wp)) - np.asarray(grad(wm))) / (wp[k] - wm[k])
    assert_close_rel(H, numeric, 1e-5, "MLP Hessian")
    np.testing.assert_allclose(H, H.T, rtol=1e-10, atol=1e-12 * np.abs(H).max())
    # the output layer's bias enters linearly: d2L/db2^2 = 2 (mean of squares, one output)
    np.testing.assert_allclose(H[20, 20], 2.0, rtol=1e-12)


def test_hessian_of_simple_quadratic_form() -> None:
    rng = np.random.default_rng(22)
    A = rng.standard_normal((5, 5))
    x = rng.standard_normal(5)
    H = pyasg.hessian(lambda x: x @ (A @ x) + pyasg.sum(pyasg.sin(x)))(x)
    np.testing.assert_allclose(H, A + A.T - np.diag(np.sin(x)), rtol=1e-12, atol=1e-12)


def test_hessian_of_matrix_argument_has_doubled_shape() -> None:
    x = np.array([[1.0, 2.0], [3.0, -1.0], [0.5, 0.25]])
    H = pyasg.hessian(lambda x: (x**3).sum())(x)
    assert H.shape == (3, 2, 3, 2)
    expected = np.diag((6 * x).ravel()).reshape(3, 2, 3, 2)
    np.testing.assert_allclose(H, expected, rtol=1e-14)


# --------------------------------------------------------------------------- grad in jit,
# closures over traced values


def test_grad_inside_jit() -> None:
    f = pyasg.jit(lambda x: pyasg.grad(lambda v: (pyasg.sin(v) * v).sum())(x) * 2.0)
    x = np.linspace(-2, 2, 7)
    np.testing.assert_allclose(f(x), 2 * (np.cos(x) * x + np.sin(x)), rtol=1e-13)
    # a second call with new numbers reuses the compiled graph and is still right
    x2 = x[::-1] * 0.5
    np.testing.assert_allclose(f(x2), 2 * (np.cos(x2) * x2 + np.sin(x2)), rtol=1e-13)
    assert f.cache_size == 1


def test_grad_of_function_closing_over_traced_value() -> None:
    f = pyasg.jit(lambda x, y: pyasg.grad(lambda a: (a * y).sum())(x))
    x = np.array([1.0, -2.0, 3.0])
    y = np.array([0.5, 4.0, -1.5])
    np.testing.assert_array_equal(f(x, y), y)
    # broadcast closed-over value: a is [2, 3], y is [3]
    xb = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(f(xb, y), np.broadcast_to(y, (2, 3)))
    # nonlinear in both
    g = pyasg.jit(lambda x, y: pyasg.grad(lambda a: pyasg.sin(a * y).sum())(x))
    np.testing.assert_allclose(g(x, y), y * np.cos(x * y), rtol=1e-13)


def test_grad_through_a_closed_over_value() -> None:
    # d/dy sum(d/da sum(sin(a * y)) at a = x) = d/dy sum(y cos(x y)) = cos(xy) - x y sin(xy)
    def outer(y, x):  # noqa: ANN001, ANN202
        inner = pyasg.grad(lambda a: pyasg.sin(a * y).sum())(x)
        return inner.sum()

    x = np.array([0.3, -1.2, 2.0])
    y = np.array([1.5, 0.7, -0.4])
    got = pyasg.grad(outer)(y, x)
    np.testing.assert_allclose(got, np.cos(x * y) - x * y * np.sin(x * y), rtol=1e-12)
    numeric = numeric_grad(lambda y: float((y * np.cos(x * y)).sum()), [y], 0)
    assert_close_rel(got, numeric, 1e-6, "grad through closure")


def test_grad_inside_jit_with_argnums_and_value() -> None:
    @pyasg.jit
    def step(w, x):  # noqa: ANN001, ANN202
        value, g = pyasg.value_and_grad(lambda w: ((x @ w) ** 2).mean())(w)
        return value, w - 0.1 * g

    rng = np.random.default_rng(23)
    w, x = rng.standard_normal(3), rng.standard_normal((5, 3))
    value, new_w = step(w, x)
    np.testing.assert_allclose(value, np.mean((x @ w) ** 2), rtol=1e-13)
    np.testing.assert_allclose(new_w, w - 0.1 * (2 * x.T @ (x @ w) / 5), rtol=1e-13)


# --------------------------------------------------------------------------- pytrees, has_aux


def test_grad_argnums_tuple_on_dict_params_keeps_structure() -> None:
    rng = np.random.default_rng(24)
    params = {"w": rng.standard_normal((3, 2)), "b": rng.standard_normal(2),
              "inner": {"scale": np.array(1.5)}}
    x = rng.standard_normal((4, 3))

    def loss(params, x):  # noqa: ANN001, ANN202
        pred = (x @ params["w"] + params["b"]) * params["inner"]["scale"]
        return (pred**2).sum()

    gp, gx = pyasg.grad(loss, argnums=(0, 1))(params, x)
    assert isinstance(gp, dict) and set(gp) == {"w", "b", "inner"}
    assert isinstance(gp["inner"], dict) and set(gp["inner"]) == {"scale"}
    s = params["inner"]["scale"]
    z = x @ params["w"] + params["b"]
    dz = 2 * z * s * s  # L = sum((z s)^2): dL/dz = 2 z s^2
    np.testing.assert_allclose(gp["w"], x.T @ dz, rtol=1e-12)
    np.testing.assert_allclose(gp["b"], dz.sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(gp["inner"]["scale"], (2 * z * z * s).sum(), rtol=1e-12)
    assert np.shape(gp["inner"]["scale"]) == ()
    np.testing.assert_allclose(gx, dz @ params["w"].T, rtol=1e-12)
    for k in ("w", "b"):
        assert gp[k].shape == params[k].shape and gp[k].dtype == np.float64
    # argnums=0 alone: just the dict
    g0 = pyasg.grad(loss)(params, x)
    assert isinstance(g0, dict) and set(g0) == {"w", "b", "inner"}
    np.testing.assert_allclose(g0["w"], x.T @ dz, rtol=1e-12)


def test_grad_on_list_and_tuple_pytrees() -> None:
    a, b = np.array([1.0, 2.0]), np.array([3.0])
    g = pyasg.grad(lambda p: (p[0] ** 2).sum() + (p[1][0] * 3.0).sum())([a, (b,)])
    assert isinstance(g, list) and isinstance(g[1], tuple)
    np.testing.assert_array_equal(g[0], 2 * a)
    np.testing.assert_array_equal(g[1][0], [3.0])


def test_has_aux_returns_aux_unchanged() -> None:
    x = np.array([1.0, -2.0, 0.5])
    marker = np.array([7, 8, 9], np.int32)

    def f(x):  # noqa: ANN001, ANN202
        pred = x * 3.0
        return (pred**2).sum(), {"pred": pred, "marker": marker}

    g, aux = pyasg.grad(f, has_aux=True)(x)
    np.testing.assert_allclose(g, 18 * x, rtol=1e-14)
    assert isinstance(aux, dict) and set(aux) == {"pred", "marker"}
    np.testing.assert_array_equal(aux["pred"], x * 3.0)
    np.testing.assert_array_equal(aux["marker"], marker)
    assert np.asarray(aux["marker"]).dtype == np.int32

    (value, aux2), g2 = pyasg.value_and_grad(f, has_aux=True)(x)
    np.testing.assert_allclose(value, ((3 * x) ** 2).sum(), rtol=1e-14)
    np.testing.assert_allclose(g2, 18 * x, rtol=1e-14)
    np.testing.assert_array_equal(aux2["pred"], x * 3.0)


def test_has_aux_inside_jit_and_second_order() -> None:
    def f(x):  # noqa: ANN001, ANN202
        return (x**3).sum(), x * 2.0

    @pyasg.jit
    def both(x):  # noqa: ANN001, ANN202
        g, aux = pyasg.grad(f, has_aux=True)(x)
        return g, aux

    x = np.array([1.0, 2.0, -0.5])
    g, aux = both(x)
    np.testing.assert_allclose(g, 3 * x**2, rtol=1e-14)
    np.testing.assert_array_equal(aux, 2 * x)
    d2 = pyasg.grad(lambda x: pyasg.grad(f, has_aux=True)(x)[0].sum())(x)
    np.testing.assert_allclose(d2, 6 * x, rtol=1e-14)
