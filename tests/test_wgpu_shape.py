"""wgpu shape kernels (reshape, transpose, broadcast_to, slice, pad, concatenate) equal
numpy for float32, int32 and bool, on shapes that cross workgroup boundaries."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wgpu_util import WGPU, wgpu_parity

import pyasg
from pyasg.array import primitives as P
from pyasg.errors import ShapeError

pytestmark = WGPU

DTYPES = ["float32", "int32", "bool"]


def data(shape, dtype="float32", seed=0):  # noqa: ANN001, ANN201
    """Distinct-ish values of `dtype`, so a misplaced element shows."""
    rng = np.random.default_rng(seed)
    if dtype == "bool":
        return rng.random(shape) < 0.5
    if dtype in ("int32", "uint32"):
        return rng.integers(-2**31, 2**31 - 1, size=shape, dtype=np.int32).astype(dtype)
    return rng.normal(size=shape).astype(np.float32)


shapes = st.lists(st.integers(1, 9), min_size=1, max_size=4).map(tuple)


# --------------------------------------------------------------------------- reshape


def test_reshape_inside_a_traced_function():
    # reshapes are aliases: the elementwise kernels must see the same words
    w = data((60,), seed=1)
    wgpu_parity(lambda x, w: (x.reshape(-1) * w + 1.0).reshape(6, 10)[::-1], data((3, 4, 5)), w)


@pytest.mark.parametrize("dtype", DTYPES)
def test_reshape_of_input_and_of_intermediate_as_outputs(dtype):
    # the output aliases a graph input's buffer, and an intermediate's
    wgpu_parity(lambda x: (x.reshape(20, 3), pyasg.transpose(x, (1, 0, 2)).reshape(-1)),
                data((3, 4, 5), dtype))


# --------------------------------------------------------------------------- transpose


@settings(deadline=None, max_examples=25)
@given(shape=shapes, data_=st.data(), dtype=st.sampled_from(DTYPES))
def test_transpose_random_perms(shape, data_, dtype):
    perm = data_.draw(st.permutations(range(len(shape))))
    wgpu_parity(lambda x: pyasg.transpose(x, perm), data(shape, dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_transpose_large(dtype):
    wgpu_parity(lambda x: (x.T, pyasg.transpose(x[None], (2, 0, 1))), data((37, 29), dtype))


# --------------------------------------------------------------------------- broadcast_to


BROADCASTS = [((40, 1), (40, 13)), ((13,), (4, 5, 13)), ((), (300,)), ((1, 5, 1), (2, 3, 5, 7)),
              ((6, 1, 7), (6, 50, 7))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shapes", BROADCASTS, ids=str)
def test_broadcast_to(shapes, dtype):
    src, dst = shapes
    wgpu_parity(lambda x: pyasg.broadcast_to(x, dst), data(src, dtype))


# --------------------------------------------------------------------------- slice


SLICES = {
    "step 2": lambda x: x[::2],
    "reversed": lambda x: x[::-1],
    "mixed": lambda x: x[1:3, ::-2],
    "all axes negative": lambda x: x[::-1, ::-3, -2::-2],
    "negative start/stop": lambda x: x[-1:0:-1, -4:-1, 1::4],
    "int index": lambda x: x[2, :, ::-1],
    "empty": lambda x: x[3:1],
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(SLICES))
def test_slices(name, dtype):
    wgpu_parity(SLICES[name], data((6, 11, 9), dtype))


@st.composite
def slice_case(draw):  # noqa: ANN001, ANN201
    shape = draw(shapes)
    index = []
    for d in shape:
        bound = st.one_of(st.none(), st.integers(-d - 2, d + 2))
        step = draw(st.one_of(st.none(), st.integers(-3, 3).filter(bool)))
        index.append(slice(draw(bound), draw(bound), step))
    return shape, tuple(index)


@settings(deadline=None, max_examples=30)
@given(case=slice_case(), dtype=st.sampled_from(DTYPES))
def test_hypothesis_slices(case, dtype):
    shape, index = case
    _, got = wgpu_parity(lambda x: x[index], data(shape, dtype))
    assert got[0].shape == data(shape)[index].shape


def test_slice_axes_stop_before_zero():
    # stop = -1 with a negative step means "down to and including 0"
    wgpu_parity(lambda x: P.slice_axes(x, (8, 4), (-1, -1), (-3, -1)), data((9, 300)))


# --------------------------------------------------------------------------- pad


PADS = [
    ([(1, 2, 1), (0, 3, 2)], 0.0),
    ([(0, 0, 3), (2, 0, 0)], -np.inf),
    ([(3, 1, 0), (1, 1, 1)], 2.5),
    ([(0, 0, 0), (0, 0, 5)], np.nan),
]


@pytest.mark.parametrize("widths,value", PADS, ids=str)
def test_pad_interior_and_value(widths, value):
    wgpu_parity(lambda x: P.pad_general(x, widths, value), data((23, 17)))


@pytest.mark.parametrize("dtype,value", [("int32", -7.0), ("int32", 3.9), ("bool", 1.0),
                                         ("bool", 0.0), ("float32", 1e30), ("float32", 1e39),
                                         ("int32", -2.0**31), ("uint32", 7.0), ("bool", 0.5)])
@pytest.mark.filterwarnings("ignore:overflow encountered in cast")  # numpy's 1e39 -> f32
def test_pad_other_dtypes(dtype, value):
    wgpu_parity(lambda x: P.pad_general(x, [(2, 1, 2), (0, 4, 1), (1, 0, 0)], value),
                data((5, 8, 9), dtype))


@pytest.mark.parametrize("dtype,value", [("uint32", -1.0), ("int32", 2.0**31),
                                         ("int32", np.nan), ("int32", np.inf)])
def test_pad_value_outside_the_dtypes_range_raises(dtype, value):
    # numpy's pad would wrap -1 to 4294967295 and cast NaN to garbage: refused instead
    with pytest.raises(ShapeError, match="does not fit"):
        P.pad_general(np.zeros((2, 2), dtype), [(1, 1, 0), (0, 0, 0)], value)


def test_pad_functional_and_empty_input():
    wgpu_parity(lambda x: pyasg.pad(x, ((1, 2), (3, 0)), constant_values=-1.0), data((30, 20)))
    wgpu_parity(lambda x: P.pad_general(x, [(2, 1, 3), (1, 1, 0)], 4.0),
                np.zeros((0, 3), np.float32))


@settings(deadline=None, max_examples=25)
@given(shape=st.lists(st.integers(1, 7), min_size=1, max_size=3).map(tuple), data_=st.data(),
       dtype=st.sampled_from(DTYPES))
def test_hypothesis_pads(shape, data_, dtype):
    widths = [tuple(data_.draw(st.integers(0, 3)) for _ in range(3)) for _ in shape]
    value = data_.draw(st.sampled_from([0.0, 1.0, -3.0]))
    wgpu_parity(lambda x: P.pad_general(x, widths, value), data(shape, dtype))


# --------------------------------------------------------------------------- concatenate


@pytest.mark.parametrize("count", [1, 2, 3, 8, 9, 10])
@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_concatenate_many_inputs_each_axis(count, axis):
    # more than 8 operands: one dispatch per operand keeps each under the binding limit
    base = [4, 5, 6]
    arrays = []
    for k in range(count):
        shape = list(base)
        shape[axis] = 1 + (3 * k) % 7  # uneven sizes along the axis
        arrays.append(data(tuple(shape), seed=k))
    wgpu_parity(lambda *xs: pyasg.concatenate(xs, axis), *arrays)


@pytest.mark.parametrize("dtype", DTYPES)
def test_concatenate_dtypes_repeated_operand_and_empty_part(dtype):
    x, y = data((70, 3), dtype, 1), data((70, 5), dtype, 2)
    empty = data((70, 0), dtype)
    wgpu_parity(lambda x, y, e: pyasg.concatenate([x, y, x, e, y], 1), x, y, empty)
    # the same value twice, and a result large enough to need several workgroups
    wgpu_parity(lambda x: pyasg.concatenate([x] * 9, 0), x)


def test_concatenate_then_shape_ops_chain():
    def f(a, b):  # noqa: ANN001, ANN202
        c = pyasg.concatenate([a, b[::-1]], axis=0)
        return pyasg.broadcast_to(c.T[:, None, :], (c.shape[1], 3, c.shape[0])).reshape(-1)
    a, b = data((11, 13), seed=3), data((4, 13), seed=4)
    wgpu_parity(f, a, b)


def test_two_dimensional_grid(monkeypatch):
    # above 65535 workgroups grid() splits onto (x, y); force that split on small sizes
    from pyasg.kernels.wgpu import shape

    monkeypatch.setattr(shape, "grid", lambda threads, per_group=256: (
        -(-threads // per_group // 4) or 1, 5, 1))
    x = data((21, 50))
    wgpu_parity(lambda x: (x.T, x[::-1, 1::3], P.pad_general(x, [(1, 0, 1), (0, 2, 0)], 9.0),
                           pyasg.concatenate([x, x[:3]], 0),
                           pyasg.broadcast_to(x[:, None], (21, 3, 50))), x)
