"""The numpy backend's speed rules keep results right: the fast float32 erf, matmul with
folded leading dims, the MatMul VJP's single GEMM for a shared weight, max-pool indices
without argmax, and convolutions written into planned buffers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pyasg
from pyasg.asg import ops
from pyasg.asg.types import TensorType
from pyasg.kernels import lower
from pyasg.kernels.numpy import NumpyBackend
from pyasg.kernels.numpy.elementwise import erf_float32
from pyasg.transforms.simplify import simplify

NUMPY = NumpyBackend()


def exact_erf(x: np.ndarray) -> np.ndarray:
    return np.vectorize(math.erf, otypes=[np.float64])(x.astype(np.float64))


# --------------------------------------------------------------------------- erf


def test_fast_erf_is_within_1e7_over_a_dense_range() -> None:
    x = np.linspace(-6, 6, 200_001, dtype=np.float32)
    assert np.abs(erf_float32(x) - exact_erf(x)).max() <= 1.2e-7


def test_fast_erf_at_the_extremes() -> None:
    x = np.array([0.0, -0.0, 1e-30, -1e-30, 1e-8, 3.9, 4.0, 4.5, 1e30, -1e30,
                  np.finfo(np.float32).max, np.inf, -np.inf, np.nan], np.float32)
    got = erf_float32(x)
    want = exact_erf(np.nan_to_num(x, nan=0.0))
    assert np.isnan(got[-1])
    np.testing.assert_allclose(got[:-1], want[:-1], rtol=0, atol=1.2e-7)
    assert got[0] == 0.0 and got[-3] == 1.0 and got[-2] == -1.0
    assert np.signbit(got[1])  # erf(-0) = -0


@settings(deadline=None, max_examples=30)
@given(st.lists(st.floats(-8, 8, width=32), min_size=1, max_size=300))
def test_fast_erf_generated_values_in_place_and_strided(values: list[float]) -> None:
    x = np.array(values, np.float32)
    want = exact_erf(x)
    np.testing.assert_allclose(erf_float32(x), want, atol=1.2e-7, rtol=0)
    y = x.copy()
    assert erf_float32(y, out=y) is y  # in place, as the memory plan may ask
    np.testing.assert_allclose(y, want, atol=1.2e-7, rtol=0)
    out = np.empty((2, x.size), np.float32)[0]
    np.testing.assert_allclose(erf_float32(x, out=out), want, atol=1.2e-7, rtol=0)


def test_the_erf_kernel_uses_it_for_float32_and_stays_exact_for_float64() -> None:
    x64 = np.linspace(-3, 3, 101)
    f = pyasg.jit(pyasg.erf)
    np.testing.assert_allclose(f(x64), exact_erf(x64), rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(f(x64.astype(np.float32)), exact_erf(x64), atol=1.2e-7)


# --------------------------------------------------------------------------- matmul


@pytest.mark.parametrize("a_shape,b_shape", [((3, 4, 5), (5, 6)), ((2, 3, 4, 5), (5, 2)),
                                             ((1, 1, 5), (5, 1))])
def test_matmul_folding_leading_dims_equals_numpy(a_shape: tuple, b_shape: tuple) -> None:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(a_shape), rng.standard_normal(b_shape)
    out_shape = a_shape[:-1] + b_shape[-1:]
    k = lower(ops.MatMul(), NUMPY, in_types=(TensorType.of(a), TensorType.of(b)),
              out_type=TensorType(out_shape, "float64"))
    want = np.einsum("...ij,jk->...ik", a, b)
    np.testing.assert_allclose(k.fn(a, b), want, rtol=1e-13)
    out = np.empty(out_shape)
    assert k.fn(a, b, out=out) is out
    np.testing.assert_allclose(out, want, rtol=1e-13)
    strided = np.swapaxes(np.swapaxes(a, 0, -2).copy(), 0, -2)  # not C-contiguous
    np.testing.assert_allclose(k.fn(strided, b, out=np.empty(out_shape)), want, rtol=1e-13)


def test_weight_gradient_of_a_batched_linear_is_one_2d_gemm() -> None:
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((3, 4, 5)), rng.standard_normal((5, 6))
    r = rng.standard_normal((3, 4, 6))

    def loss(x, w):  # noqa: ANN001, ANN202
        return pyasg.sum((x @ w) * r)

    g = pyasg.make_graph(pyasg.grad(loss, argnums=(0, 1)))(x, w)
    matmuls = [g.nodes[i] for i in g.live_ids if isinstance(g.nodes[i].op, ops.MatMul)]
    shapes = sorted(n.type.shape for n in matmuls)
    assert (5, 6) in shapes  # the weight gradient straight from one GEMM ...
    sums = [g.nodes[i] for i in g.live_ids if isinstance(g.nodes[i].op, ops.Sum)]
    assert not any(g.nodes[n.inputs[0]].type.shape == (3, 5, 6) for n in sums)  # ... no sum
    gx, gw = pyasg.grad(loss, argnums=(0, 1))(x, w)
    np.testing.assert_allclose(gw, np.einsum("bij,bik->jk", x, r), rtol=1e-12)
    np.testing.assert_allclose(gx, np.einsum("bik,jk->bij", r, w), rtol=1e-12)


# --------------------------------------------------------------------------- pooling, conv


def np_max_pool_indices(x: np.ndarray, k: int, s: int, p: int) -> np.ndarray:
    """By hand: loops over every output pixel, first maximum wins, NaN counts as max."""
    n, c, h, w = x.shape
    ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    out = np.zeros((n, c, ho, wo), np.int64)
    for a in range(n):
        for b in range(c):
            for i in range(ho):
                for j in range(wo):
                    best, where = None, None
                    for di in range(k):
                        for dj in range(k):
                            r, q = i * s - p + di, j * s - p + dj
                            if not (0 <= r < h and 0 <= q < w):
                                continue
                            v = x[a, b, r, q]
                            if best is None or (not np.isnan(best) and (v > best or np.isnan(v))):
                                best, where = v, ((a * c + b) * h + r) * w + q
                    out[a, b, i, j] = where
    return out


@settings(deadline=None, max_examples=25)
@given(st.integers(1, 3), st.integers(1, 2), st.integers(0, 1), st.integers(0, 3),
       st.booleans())
def test_max_pool_indices_equal_a_hand_loop(k: int, s: int, p: int, seed: int,
                                            nans: bool) -> None:
    p = min(p, k // 2)
    rng = np.random.default_rng(seed)
    x = rng.integers(-3, 3, (2, 3, 6, 5)).astype(np.float32)  # many ties
    if nans:
        x[rng.random(x.shape) < 0.1] = np.nan
    op = ops.MaxPool2dIndices((k, k), (s, s), (p, p), (1, 1))
    out_type = op.infer(TensorType.of(x))
    kernel = lower(op, NUMPY, in_types=(TensorType.of(x),), out_type=out_type)
    want = np_max_pool_indices(x, k, s, p)
    np.testing.assert_array_equal(kernel.fn(x), want)
    out = np.full(out_type.shape, -1, np.int32)
    assert kernel.fn(x, out=out) is out
    np.testing.assert_array_equal(out, want)


def test_conv_kernels_write_into_out_and_equal_torch() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 4, 7, 6))
    w = rng.standard_normal((6, 2, 3, 3))
    r = rng.standard_normal((2, 6, 4, 3))

    def loss(x, w):  # noqa: ANN001, ANN202
        return pyasg.sum(pyasg.conv2d(x, w, stride=2, padding=1, groups=2) * r)

    gx, gw = pyasg.jit(pyasg.grad(loss, argnums=(0, 1)))(x, w)
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    y = torch.nn.functional.conv2d(xt, wt, stride=2, padding=1, groups=2)
    (y * torch.tensor(r)).sum().backward()
    np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gw, wt.grad.numpy(), rtol=1e-10, atol=1e-12)
    value = pyasg.jit(lambda x, w: pyasg.conv2d(x, w, stride=2, padding=1, groups=2))(x, w)
    np.testing.assert_allclose(value, y.detach().numpy(), rtol=1e-10, atol=1e-12)


# --------------------------------------------------------------------------- where(c, x, 0)


@pytest.mark.parametrize("zero_side", ["y", "x"])
@pytest.mark.parametrize("special", [False, True])
def test_where_with_a_zero_scalar_is_np_where(zero_side: str, special: bool) -> None:
    """ReLU and its gradient take a multiply-by-mask path; it must equal np.where,
    +0.0 included, written fresh, into a free buffer, or in place over its operand."""
    rng = np.random.default_rng(5)
    v = rng.normal(size=(6, 7)).astype(np.float32)
    v[0, :3] = [0.0, -0.0, -1e-30]
    if special:
        v[1, :3] = [np.inf, -np.inf, np.nan]
    c = rng.random((6, 7)) > 0.5
    zero = np.zeros((), np.float32)

    def args(value: np.ndarray) -> tuple:
        return (c, value, zero) if zero_side == "y" else (c, zero, value)

    kernel = lower(ops.Where(), NUMPY, in_types=tuple(TensorType.of(a) for a in args(v)),
                   out_type=TensorType((6, 7), "float32"))
    want = np.where(*args(v))
    in_place = v.copy()
    for got in (kernel.fn(*args(v)),
                kernel.fn(*args(v), out=np.full((6, 7), 7.0, np.float32)),
                kernel.fn(*args(in_place), out=in_place)):
        np.testing.assert_array_equal(got, want)
        unselected = ~c if zero_side == "y" else c
        assert not np.signbit(got[unselected]).any()  # +0.0, as np.where gives


def test_a_transposed_product_becomes_the_product_of_transposes() -> None:
    """(xᵀ g)ᵀ, the weight gradient of x @ Wᵀ, is simplified to gᵀ x: one GEMM, no copy."""
    x = np.random.default_rng(0).normal(size=(5, 3))
    g = np.random.default_rng(1).normal(size=(5, 4))

    def weight_grad(x, g):
        return pyasg.transpose(pyasg.transpose(x) @ g)

    graph = simplify(pyasg.make_graph(weight_grad)(x, g))
    names = [graph.nodes[i].op.name for i in graph.live_ids]
    assert names.count("matmul") == 1 and names.count("transpose") == 1
    out = graph.nodes[graph.outputs[0]]
    assert graph.nodes[out.inputs[1]].op.name == "input"  # gᵀ @ x
    np.testing.assert_allclose(pyasg.jit(weight_grad)(x, g), g.T @ x, rtol=1e-12)
    # a product read twice is left alone (it would be computed twice)
    twice = simplify(pyasg.make_graph(lambda x, g: (pyasg.transpose(pyasg.transpose(x) @ g),
                                                    pyasg.transpose(x) @ g))(x, g))
    assert sum(twice.nodes[i].op.name == "matmul" for i in twice.live_ids) == 1


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32"])
def test_scatter_add_matches_add_at_with_repeats_and_negative_indices(dtype: str) -> None:
    """The float fast path (bincount) and the general one agree with np.add.at."""
    rng = np.random.default_rng(3)
    for idx_shape, size in (((50,), 7), ((4, 6), 9)):
        idx = rng.integers(-size, size, idx_shape).astype(np.int32)
        updates = rng.normal(size=idx_shape).astype(dtype) if dtype != "int32" else \
            rng.integers(-5, 5, idx_shape).astype(dtype)
        op = ops.ScatterAdd(axis=0, size=size)
        kernel = lower(op, NUMPY, in_types=(TensorType.of(updates), TensorType.of(idx)),
                       out_type=op.infer(TensorType.of(updates), TensorType.of(idx)))
        want = np.zeros(size, dtype)
        np.add.at(want, idx.ravel(), updates.ravel())
        got = kernel.fn(updates, idx, out=np.full(size, 99, dtype))
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
        with pytest.raises(IndexError):
            kernel.fn(updates, np.full(idx_shape, size, np.int32))
