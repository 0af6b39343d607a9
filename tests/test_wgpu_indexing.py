"""wgpu gather (take) and scatter-add equal numpy: every axis, index ranks 0-2, repeated
and negative indices, int32 and uint32 indices, and the gradient of an embedding."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wgpu_util import WGPU, require_wgpu, wgpu_parity

import pyasg
from pyasg.array import primitives as P

pytestmark = WGPU


def data(shape, dtype="float32", seed=0):  # noqa: ANN001, ANN201
    rng = np.random.default_rng(seed)
    if dtype == "bool":
        return rng.random(shape) < 0.5
    if dtype == "int32":
        return rng.integers(-1000, 1000, size=shape, dtype=np.int32)
    return rng.normal(size=shape).astype(np.float32)


def indices(shape, n, seed=0, negative=True, dtype=np.int32):  # noqa: ANN001, ANN201
    """Indices into an axis of length n, with repeats (and negatives, counting back)."""
    low = -n if negative else 0
    return np.random.default_rng(seed).integers(low, n, size=shape).astype(dtype)


# --------------------------------------------------------------------------- gather


INDEX_SHAPES = [(), (1,), (7,), (3, 4), (2, 40)]


@pytest.mark.parametrize("index_shape", INDEX_SHAPES, ids=str)
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_gather_each_axis_and_index_rank(axis, index_shape):
    x = data((5, 6, 7))
    ids = indices(index_shape, x.shape[axis], seed=axis)
    wgpu_parity(lambda x, i: pyasg.take(x, i, axis), x, ids)


@pytest.mark.parametrize("dtype", ["float32", "int32", "bool"])
def test_gather_moves_any_dtype(dtype):
    wgpu_parity(lambda x, i: pyasg.take(x, i, 1), data((9, 30, 2), dtype), indices((4, 5), 30))


def test_gather_uint32_indices_and_repeats():
    ids = np.array([[3, 3, 0], [9, 3, 3]], np.uint32)
    wgpu_parity(lambda x, i: pyasg.take(x, i, 0), data((10, 33)), ids)


def test_embedding_lookup():
    table = data((50, 16))
    ids = np.array([[1, 7, 7, 0, 49, 3, 3], [2, 2, 2, 8, 9, 10, 11], [0, 0, 0, 0, 0, 0, 0],
                    [-1, -50, 5, 6, 7, 8, 9]], np.int32)  # [4, 7]
    wgpu_parity(lambda t, i: pyasg.take(t, i, 0), table, ids)
    wgpu_parity(lambda t, i: pyasg.embedding(i, t), table, ids)


def test_gather_with_constant_indices():
    wgpu_parity(lambda x: (pyasg.take(x, [2, -1, 2], 1), x[[0, -1, 0]]), data((6, 50)))


def test_out_of_range_indices_raise_when_the_result_is_read():
    # the shader clamps (it never reads outside its buffers) and sets its status word;
    # reading the result raises as numpy raises (tests/test_wgpu_index_check.py)
    require_wgpu()
    x = data((4, 70))
    for ids in (np.array([-100, 0], np.int32), np.array([3, 1000], np.int32),
                np.array([7, 2**32 - 1], np.uint32)):
        graph = pyasg.make_graph(lambda x, i: pyasg.take(x, i, 0))(x, ids)
        (got,) = pyasg.jit_to_backend(graph, "wgpu")(x, ids)
        with pytest.raises(pyasg.BackendError, match="out of range"):
            np.asarray(got)
    ok = np.array([-4, -1, 0, 3], np.int32)
    graph = pyasg.make_graph(lambda x, i: pyasg.take(x, i, 0))(x, ok)
    (got,) = pyasg.jit_to_backend(graph, "wgpu")(x, ok)
    np.testing.assert_array_equal(np.asarray(got), x[ok])


@settings(deadline=None, max_examples=25)
@given(shape=st.lists(st.integers(1, 8), min_size=1, max_size=3).map(tuple), data_=st.data())
def test_hypothesis_gather(shape, data_):
    axis = data_.draw(st.integers(0, len(shape) - 1))
    index_shape = tuple(data_.draw(st.lists(st.integers(1, 6), max_size=2)))
    ids = indices(index_shape, shape[axis], seed=data_.draw(st.integers(0, 99)))
    wgpu_parity(lambda x, i: pyasg.take(x, i, axis), data(shape), ids)


# --------------------------------------------------------------------------- scatter-add


def test_scatter_add_many_repeats_float():
    # 1000 updates into 10 rows: ~100 float atomic adds per element, in any order
    rng = np.random.default_rng(0)
    updates = rng.random((1000, 6)).astype(np.float32)
    ids = rng.integers(-10, 10, size=1000).astype(np.int32)
    want, got = wgpu_parity(lambda u, i: P.scatter_add(u, i, 0, 10), updates, ids, atol=0)
    exact = np.zeros((10, 6))
    np.add.at(exact, ids, updates.astype(np.float64))
    np.testing.assert_allclose(got[0], exact, rtol=1e-5)


def test_scatter_add_all_into_one_element():
    updates = np.random.default_rng(1).normal(size=(3000,)).astype(np.float32)
    wgpu_parity(lambda u, i: P.scatter_add(u, i, 0, 3), updates, np.full(3000, 1, np.int32),
                atol=1e-4)


@pytest.mark.parametrize("dtype", ["int32", "bool"])
def test_scatter_add_integers_are_exact(dtype):
    updates = data((1000, 3), dtype, seed=2)
    ids = indices((1000,), 10, seed=3)
    wgpu_parity(lambda u, i: P.scatter_add(u, i, 0, 10), updates, ids)


def test_scatter_add_uint32():
    updates = np.random.default_rng(4).integers(0, 2**32, size=(700,), dtype=np.uint32)
    ids = indices((700,), 5, seed=5, negative=False, dtype=np.uint32)
    wgpu_parity(lambda u, i: P.scatter_add(u, i, 0, 5), updates, ids)


@pytest.mark.parametrize("index_shape", [(), (9,), (3, 4)], ids=str)
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_scatter_add_each_axis_and_index_rank(axis, index_shape):
    size = 6
    shape = (4, 5, 7)
    ushape = shape[:axis] + index_shape + shape[axis + 1:]
    wgpu_parity(lambda u, i: P.scatter_add(u, i, axis, size), data(ushape, seed=axis),
                indices(index_shape, size, seed=axis + 1))


def test_one_array_as_both_operands():
    # the same buffer bound twice, read-only both times (legal in WebGPU)
    x = np.array([3, 1, 0, 2, 2, 4, 4, 4] * 40, np.int32)
    wgpu_parity(lambda x: (pyasg.take(x, x, 0), P.scatter_add(x, x, 0, 5)), x)


# --------------------------------------------------------------------------- gradients


def test_embedding_gradient_matches_numpy():
    table = data((20, 8))
    ids = np.array([[1, 1, 3, -1, 19, 1, 0], [2, 2, 2, 5, 1, 1, 7], [0, 0, 4, 4, 1, 3, 2],
                    [9, 9, 9, 9, 1, 1, 1]], np.int32)  # [4, 7], many repeats

    def loss(t, i):  # noqa: ANN001, ANN202
        return pyasg.sum(pyasg.tanh(pyasg.take(t, i, 0)) * 1.5)

    wgpu_parity(pyasg.grad(loss), table, ids)
    wgpu_parity(lambda t, i: pyasg.grad(loss)(t, i) * 2.0, table, ids)


def test_gather_gradient_on_a_middle_axis():
    x = data((3, 12, 5))
    ids = indices((2, 9), 12, seed=7)
    wgpu_parity(pyasg.grad(lambda x, i: pyasg.sum(pyasg.take(x, i, 1) ** 2)), x, ids)


def test_two_dimensional_grid(monkeypatch):
    # above 65535 workgroups grid() splits onto (x, y); force that split on small sizes:
    # the threads past the end must not add anything twice
    from pyasg.kernels.wgpu import indexing

    monkeypatch.setattr(indexing, "grid", lambda threads, per_group=256: (
        -(-threads // per_group // 4) or 1, 5, 1))
    rng = np.random.default_rng(9)
    updates = rng.integers(-9, 9, size=(1300, 2)).astype(np.int32)
    ids = indices((1300,), 7, seed=10)
    wgpu_parity(lambda u, i: (P.scatter_add(u, i, 0, 7), pyasg.take(u, i, 0)), updates, ids)
