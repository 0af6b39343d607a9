"""numpy indexing on pyasg arrays: basic, integer-array, concrete boolean masks, `.at`.

Every case is checked eagerly (`pyasg.functional.getitem` on a numpy array) and
traced (`x[index]` on a tracer inside `pyasg.jit`) against numpy's own `x[index]`.
"""

from __future__ import annotations

import math

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pyasg
from pyasg.array.functional import At, getitem

shapes_1_4 = hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=5)


def iota(shape, dtype=np.float64):
    """Distinct values, so that any wrong element shows."""
    return np.arange(math.prod(shape), dtype=dtype).reshape(shape) - 7


def check(actual, expected):
    assert isinstance(actual, (np.ndarray, np.generic)), type(actual)
    expected = np.asarray(expected)  # numpy gives a scalar for a 0-d result
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    np.testing.assert_array_equal(actual, expected)


def check_index(x, index):
    """Eager and traced x[index] equal numpy's x[index] (index arrays as constants)."""
    expected = x[index]
    check(getitem(x, index), expected)
    check(pyasg.jit(lambda v: v[index])(x), expected)
    return expected


# --------------------------------------------------------------------------- basic indexing


@st.composite
def any_slice(draw, size):
    """A slice with random start/stop (maybe None, negative, past either end) and step."""
    bound = st.one_of(st.none(), st.integers(-size - 2, size + 2))
    step = draw(st.one_of(st.none(), st.integers(-3, 3).filter(lambda s: s != 0)))
    return slice(draw(bound), draw(bound), step)


@st.composite
def basic_index(draw, shape):
    """A tuple of ints (negative too), slices, None and at most one Ellipsis."""
    items = []
    dims = list(shape)
    use_ellipsis = draw(st.booleans())
    ellipsis_at = draw(st.integers(0, len(dims))) if use_ellipsis else -1
    skip = draw(st.integers(0, len(dims) - ellipsis_at)) if use_ellipsis else 0
    k = 0
    while k < len(dims):
        if k == ellipsis_at:
            items.append(Ellipsis)
            k += skip
            ellipsis_at = -1
            continue
        if draw(st.integers(0, 4)) == 0:
            items.append(None)
        size = dims[k]
        kind = draw(st.sampled_from(["int", "slice", "slice", "full"]))
        if kind == "int":
            items.append(draw(st.integers(-size, size - 1)))
        elif kind == "slice":
            items.append(draw(any_slice(size)))
        else:
            items.append(slice(None))
        k += 1
    if ellipsis_at >= 0:
        items.append(Ellipsis)
    if draw(st.booleans()):
        items.append(None)
    # sometimes drop trailing items (numpy fills them with ':'); never with an Ellipsis,
    # whose items after it index the last axes: cutting one would shift the rest
    cut = draw(st.integers(0, len(items)))
    items = items[:cut] if Ellipsis not in items else items
    return tuple(items) if draw(st.booleans()) or len(items) != 1 else items[0]


@settings(deadline=None)
@given(data=st.data())
def test_basic_indexing_parity(data):
    shape = data.draw(shapes_1_4)
    x = iota(shape)
    index = data.draw(basic_index(shape))
    check_index(x, index)


@settings(deadline=None)
@given(data=st.data())
def test_basic_indexing_parity_hypothesis_generator(data):
    shape = data.draw(shapes_1_4)
    x = iota(shape, np.float32)
    index = data.draw(hnp.basic_indices(shape, allow_newaxis=True, allow_ellipsis=True))
    check_index(x, index)


@settings(deadline=None)
@given(data=st.data())
def test_negative_step_slices_on_every_axis(data):
    shape = data.draw(shapes_1_4)
    x = iota(shape)
    index = tuple(data.draw(any_slice(n)) for n in shape)
    check_index(x, index)
    check_index(x, tuple(slice(None, None, -1) for _ in shape))


def test_basic_indexing_examples():
    x = iota((3, 4, 5))
    for index in [0, -1, (1, 2), (-1, -2, -3), (slice(None, None, -2),), (Ellipsis, 1),
                  (None, 0, None), (1, Ellipsis, None), (slice(5, 0, -1), slice(-1, 0, -2)),
                  (slice(10, 20),), (slice(2, 1),), (slice(-100, 100, 3),), ()]:
        check_index(x, index)


def test_indexing_a_traced_intermediate():
    x = iota((4, 5))
    check(pyasg.jit(lambda v: (v * 2.0)[::-1, 1:4][0])(x), (x * 2.0)[::-1, 1:4][0])


def test_integer_and_bool_arrays_of_other_dtypes():
    x = iota((4, 3), np.int32)
    check_index(x, (slice(1, None), -1))
    b = x > 0
    check(pyasg.jit(lambda v: (v > 0)[1:, ::2])(x), b[1:, ::2])


# --------------------------------------------------------------------------- integer arrays


@st.composite
def index_array(draw, size, shape=None):
    """An int32 array of valid (also negative) indices into an axis of `size`."""
    if shape is None:
        shape = draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=3))
    return draw(hnp.arrays(np.int32, shape, elements=st.integers(-size, size - 1)))


def check_advanced(x, index, arrays_traced=True):
    """Like check_index, and again with the index arrays passed as traced arguments."""
    expected = check_index(x, index)
    if arrays_traced:
        positions = [k for k, i in enumerate(index) if isinstance(i, np.ndarray)]

        def f(v, *arrays):
            items = list(index)
            for k, a in zip(positions, arrays):
                items[k] = a
            return v[tuple(items)]

        check(pyasg.jit(f)(x, *(index[k] for k in positions)), expected)


@settings(deadline=None)
@given(data=st.data())
def test_one_index_array_at_any_axis(data):
    shape = data.draw(shapes_1_4)
    x = iota(shape)
    axis = data.draw(st.integers(0, len(shape) - 1))
    index = (slice(None),) * axis + (data.draw(index_array(shape[axis])),)
    check_advanced(x, index)


@st.composite
def two_arrays(draw, size_a, size_b):
    bs = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=2,
                                                min_side=1, max_side=3))
    return (draw(index_array(size_a, bs.input_shapes[0])),
            draw(index_array(size_b, bs.input_shapes[1])))


@settings(deadline=None)
@given(data=st.data())
def test_two_adjacent_index_arrays(data):
    shape = data.draw(hnp.array_shapes(min_dims=2, max_dims=4, min_side=1, max_side=4))
    x = iota(shape)
    k = data.draw(st.integers(0, len(shape) - 2))
    a, b = data.draw(two_arrays(shape[k], shape[k + 1]))
    index = (slice(None),) * k + (a, b)
    check_advanced(x, index)


@settings(deadline=None)
@given(data=st.data())
def test_two_separated_index_arrays_move_broadcast_dims_first(data):
    shape = data.draw(hnp.array_shapes(min_dims=3, max_dims=4, min_side=1, max_side=4))
    x = iota(shape)
    k = data.draw(st.integers(0, len(shape) - 3))
    gap = data.draw(st.integers(1, len(shape) - k - 2))
    a, b = data.draw(two_arrays(shape[k], shape[k + 1 + gap]))
    middle = tuple(data.draw(any_slice(shape[j])) for j in range(k + 1, k + 1 + gap))
    index = (slice(None),) * k + (a,) + middle + (b,)
    expected = x[index]
    # numpy's rule, checked on the reference itself: broadcast dims come first
    assert expected.shape[:np.broadcast(a, b).ndim] == np.broadcast(a, b).shape
    check_advanced(x, index)


@settings(deadline=None)
@given(data=st.data())
def test_index_array_combined_with_ints_and_slices(data):
    shape = data.draw(hnp.array_shapes(min_dims=2, max_dims=4, min_side=1, max_side=4))
    x = iota(shape)
    # every index array gets this shape or a suffix of it, so they broadcast together
    ishape = data.draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=3))
    kinds = [data.draw(st.sampled_from(["int", "slice", "array"])) for _ in shape]
    if "array" not in kinds:
        kinds[data.draw(st.integers(0, len(shape) - 1))] = "array"
    items = []
    for n, kind in zip(shape, kinds):
        if kind == "array":
            suffix = ishape[data.draw(st.integers(0, len(ishape))):]
            items.append(data.draw(index_array(n, suffix)))
        elif kind == "int":
            items.append(data.draw(st.integers(-n, n - 1)))
        else:
            items.append(data.draw(any_slice(n)))
    check_advanced(x, tuple(items))


def test_advanced_indexing_examples():
    x = iota((3, 4, 5))
    i = np.array([[0, -1], [2, 1]])
    j = np.array([3, -4])
    for index in [(i,), (slice(None), j), (i, j), (slice(None), i, j), (i, slice(None), j),
                  (0, j), (j % 3, slice(1, None), 0), (slice(None, None, -1), i, -2),
                  (Ellipsis, j), (None, i, None, 1), ([0, 2, 2],), ([1, -1], [0, 0]),
                  (np.array(1), j)]:
        check_index(x, index)


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_index_array_dtypes_and_negative_indices(dtype):
    x = iota((5, 3))
    idx = np.array([-1, -5, 0, 4, -2], dtype)
    check_advanced(x, (idx,))
    check_advanced(x, (slice(None), idx[:3] % 3 - 3))


# --------------------------------------------------------------------------- boolean masks


@settings(deadline=None)
@given(data=st.data())
def test_concrete_boolean_mask(data):
    shape = data.draw(shapes_1_4)
    x = iota(shape)
    k = data.draw(st.integers(1, len(shape)))
    mask = data.draw(hnp.arrays(np.bool_, shape[:k]))
    check_index(x, mask)
    check_index(x, (mask, Ellipsis))
    if k < len(shape):
        check_index(x, (mask, slice(None, None, -1)))


def test_concrete_mask_on_an_inner_axis_and_all_false():
    x = iota((3, 4))
    check_index(x, (slice(None), np.array([True, False, False, True])))
    check_index(x, np.zeros((3, 4), bool))
    check_index(x, np.ones(3, bool))


# --------------------------------------------------------------------------- .at updates


def at_update(x, index, values, how):
    """x.at[index].set/add(values), traced (on a tracer) and eagerly (At on an array)."""
    traced = pyasg.jit(lambda v, u: getattr(v.at[index], how)(u))(x, values)
    eager = getattr(At(x)[index], how)(values)
    return eager, traced


@st.composite
def update_case(draw, unique):
    shape = draw(shapes_1_4)
    x = iota(shape)
    kind = draw(st.sampled_from(["basic", "array", "int"]))
    if kind == "basic":
        index = draw(basic_index(shape))
    elif kind == "int":
        index = tuple(draw(st.integers(-n, n - 1)) for n in shape[:draw(
            st.integers(1, len(shape)))])
    else:
        axis = draw(st.integers(0, len(shape) - 1))
        n = shape[axis]
        if unique:
            positions = draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n,
                                      unique=True))
            arr = np.array([p - n if draw(st.booleans()) else p for p in positions], np.int32)
        else:
            arr = draw(hnp.arrays(np.int32, st.integers(1, 6),
                                  elements=st.integers(-n, n - 1)))
        index = (slice(None),) * axis + (arr,)
    target_shape = x[index].shape
    # values of the target shape, or something that broadcasts to it
    vshape = target_shape[draw(st.integers(0, len(target_shape))):]
    values = draw(hnp.arrays(np.float64, vshape, elements=st.floats(-5, 5)))
    return x, index, values


@settings(deadline=None)
@given(case=update_case(unique=True))
def test_at_set_equals_numpy_assignment(case):
    x, index, values = case
    expected = x.copy()
    expected[index] = values
    eager, traced = at_update(x, index, values, "set")
    check(eager, expected)
    check(traced, expected)
    np.testing.assert_array_equal(x, iota(x.shape))  # the input is not modified


@settings(deadline=None)
@given(case=update_case(unique=False))
def test_at_add_accumulates_repeated_indices_like_np_add_at(case):
    x, index, values = case
    expected = x.copy()
    np.add.at(expected, index, values)
    eager, traced = at_update(x, index, values, "add")
    np.testing.assert_allclose(eager, expected, rtol=1e-12)
    np.testing.assert_allclose(traced, expected, rtol=1e-12)
    assert traced.dtype == eager.dtype == np.float64


def test_at_add_repeated_example_and_python_scalar():
    x = np.zeros(4)
    idx = np.array([1, 1, 3, -1, 1])
    expected = x.copy()
    np.add.at(expected, idx, 1.0)
    check(pyasg.jit(lambda v: v.at[idx].add(1.0))(x), expected)
    check(pyasg.jit(lambda v: v.at[2].set(9.0))(x), np.array([0.0, 0.0, 9.0, 0.0]))
    check(pyasg.jit(lambda v: v.at[1:3].set(np.array([5.0, 6.0])))(x),
          np.array([0.0, 5.0, 6.0, 0.0]))


# --------------------------------------------------------------------------- gradients


def central_difference(f, x, eps=1e-6):
    g = np.zeros_like(x)
    for k in np.ndindex(x.shape):
        d = np.zeros_like(x)
        d[k] = eps
        g[k] = (f(x + d) - f(x - d)) / (2 * eps)
    return g


def test_grad_of_basic_indexing_matches_finite_differences():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 5, 3))
    index = (slice(3, 0, -1), None, Ellipsis, -2)
    w = rng.normal(size=x[index].shape)

    def loss(v):
        return pyasg.sum(pyasg.sin(v[index]) * w)

    def loss_np(v):
        return float(np.sum(np.sin(v[index]) * w))

    g = pyasg.grad(loss)(x)
    np.testing.assert_allclose(g, central_difference(loss_np, x), rtol=1e-6, atol=1e-8)
    assert np.all(g[0] == 0) and np.all(g[:, :, 0] == 0)  # untouched elements get zero


def test_grad_of_advanced_indexing_matches_finite_differences():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 3, 5))
    i = np.array([[0, -1], [2, 0]])  # repeated positions: their gradients add up
    j = np.array([4, 4])
    index = (i, slice(None, None, -1), j)
    w = rng.normal(size=x[index].shape)

    def loss(v):
        return pyasg.sum(v[index] ** 2 * w)

    def loss_np(v):
        return float(np.sum(v[index] ** 2 * w))

    g = pyasg.grad(loss)(x)
    np.testing.assert_allclose(g, central_difference(loss_np, x), rtol=1e-6, atol=1e-8)
