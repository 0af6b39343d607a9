"""WGSL reductions (sum, max, argmax) against numpy, and that they really run in parallel.

Values are small multiples of 1/4 (or small integers), so every sum is exact in float32
whatever order the GPU adds in, and maxima are often tied (argmax must pick the first).
Reduced sizes cross the kernels' thresholds: 1 and 7 (serial loop), 64 / 65 (serial vs
one workgroup per output), 300 and 1000 (shared-memory tree), > 4096 (split in two
passes through scratch buffers).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from wgpu_util import WGPU, wgpu_parity

import pyasg
from pyasg.asg import ops
from pyasg.asg.types import TensorType
from pyasg.kernels import lower

pytestmark = WGPU

SIZES = (1, 2, 3, 7, 64, 65, 300, 1000)
BUDGET = 50_000  # elements: lavapipe is a CPU


def values(rng: np.random.Generator, shape: tuple[int, ...], dtype: str,
           spread: int = 8) -> np.ndarray:
    """Integers in [-spread, spread), divided by 4 for float32: exact sums, many ties."""
    x = rng.integers(-spread, spread, shape)
    return (x / 4).astype(np.float32) if dtype == "float32" else x.astype(dtype)


@st.composite
def reduction_cases(draw: st.DrawFn) -> tuple:
    ndim = draw(st.integers(1, 3))
    shape: list[int] = []
    for _ in range(ndim):  # the product stays within BUDGET
        room = BUDGET // max(1, math.prod(shape))
        shape.append(draw(st.sampled_from([s for s in SIZES if s <= room])))
    axes = tuple(a for a in range(ndim) if draw(st.booleans()))
    keepdims = draw(st.booleans())
    axis = draw(st.integers(0, ndim - 1))
    dtype = draw(st.sampled_from(["float32", "int32"]))
    seed = draw(st.integers(0, 2**16))
    return tuple(shape), axes, keepdims, axis, dtype, seed


@given(reduction_cases())
def test_sum_max_argmax_over_random_axes_match_numpy(case: tuple) -> None:
    shape, axes, keepdims, axis, dtype, seed = case
    x = values(np.random.default_rng(seed), shape, dtype)

    def f(x):  # noqa: ANN001, ANN202
        return (pyasg.sum(x, axis=axes, keepdims=keepdims),
                pyasg.max(x, axis=axes, keepdims=keepdims),
                pyasg.argmax(x, axis=axis, keepdims=keepdims))

    wgpu_parity(f, x)


@pytest.mark.parametrize("shape,axis", [
    ((20000,), None),       # one output: split into parts, pass 2 serial
    ((300_000,), None),     # split into 73 parts: pass 2 a workgroup tree too
    ((3, 9000), 1),         # few rows: split
    ((9000, 3), 0),         # column reduction (4 lanes), split, pass 2 serial
    ((70000, 3), 0),        # column, split into 68 parts: pass 2 a column workgroup
    ((3000, 40), 0),        # column with 32 lanes, split
    ((64, 50, 9), (0, 1)),  # column with 16 lanes, not split
    ((5, 130, 40), (0, 2)),  # reduced axes not adjacent: merged per group
    ((70000, 2), 1),        # many outputs: serial, a grid of 274 workgroups
    ((600, 70), 1),         # > 256 rows, one workgroup each
    ((3, 0), 1),            # an empty sum is zero
    ((0, 3), 1),            # no outputs at all
    ((4, 5), ()),           # no axes: a copy
])
@pytest.mark.parametrize("dtype", ["float32", "int32"])
def test_reduction_paths(shape: tuple[int, ...], axis: object, dtype: str) -> None:
    x = values(np.random.default_rng(0), shape, dtype)
    wgpu_parity(lambda x: pyasg.sum(x, axis=axis), x)
    if x.size:
        wgpu_parity(lambda x: pyasg.max(x, axis=axis, keepdims=True), x)
    if x.size and axis != ():
        ax = axis if axis is None or isinstance(axis, int) else axis[0]
        wgpu_parity(lambda x: pyasg.argmax(x, axis=ax), x)


def test_sum_of_unrounded_floats() -> None:
    x = np.random.default_rng(1).normal(size=(8, 3000)).astype(np.float32)
    # float32 sums in another order than numpy's pairwise sum differ in the last bits
    wgpu_parity(lambda x: (pyasg.sum(x, axis=1), pyasg.sum(x)), x, atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("n", [10, 300, 20000])  # serial, workgroup tree, split
def test_argmax_returns_the_first_of_tied_maxima(n: int) -> None:
    x = np.zeros((2, n), np.float32)
    x[0, [n - 1, n // 2, n // 3 + 1, 1]] = 5.0   # first maximum at 1
    x[1, [n - 1, n - 2]] = 5.0                  # first maximum at n - 2
    (want,), (got,) = wgpu_parity(lambda x: pyasg.argmax(x, axis=1), x)
    assert got.tolist() == [1, n - 2]
    wgpu_parity(lambda x: pyasg.argmax(x.T, axis=0), x)  # the same along a strided axis
    wgpu_parity(lambda x: pyasg.argmax(x * 0.0, axis=1), x)  # all tied: index 0


@pytest.mark.parametrize("n", [10, 300, 20000])
def test_max_propagates_nan_and_argmax_finds_the_first_nan(n: int) -> None:
    x = np.random.default_rng(2).normal(size=(3, n)).astype(np.float32)
    x[0, n // 2] = np.nan
    x[0, n - 1] = np.nan
    x[1, 0] = np.nan
    (want_max, want_arg), (got_max, got_arg) = wgpu_parity(
        lambda x: (pyasg.max(x, axis=1), pyasg.argmax(x, axis=1)), x)
    assert np.isnan(got_max[:2]).all() and not np.isnan(got_max[2])
    assert got_arg[:2].tolist() == [n // 2, 0]


def test_unsigned_and_bool_reductions() -> None:
    x = np.random.default_rng(3).integers(0, 9, (5, 300)).astype(np.uint32)
    wgpu_parity(lambda x: (pyasg.sum(x, axis=1), pyasg.max(x, axis=0),
                           pyasg.argmax(x, axis=1)), x)
    wgpu_parity(lambda x: (pyasg.max(x > 4, axis=1), pyasg.argmax(x > 4, axis=1)), x)


def _kernel(op: ops.Op, shape: tuple[int, ...], dtype: str = "float32"):  # noqa: ANN202
    from pyasg.kernels.wgpu import WgpuBackend

    x = TensorType(shape, dtype)
    return lower(op, WgpuBackend(), in_types=(x,), out_type=op.infer(x))


def _threads(dispatch) -> int:  # noqa: ANN001
    size = int(dispatch.source.split("@workgroup_size(")[1].split(")")[0])
    return size * math.prod(dispatch.workgroups)


def test_a_large_reduction_uses_a_workgroup_per_output_with_shared_memory() -> None:
    for op in (ops.Sum((1,)), ops.Max((1,)), ops.ArgMax(1)):
        (d,) = _kernel(op, (4, 1000)).dispatches
        assert "var<workgroup>" in d.source and "workgroupBarrier" in d.source
        assert math.prod(d.workgroups) >= 4 and _threads(d) >= 4 * 64  # >= 64 per output
    (d,) = _kernel(ops.Sum((1,)), (4, 7)).dispatches  # small: a thread per output
    assert "var<workgroup>" not in d.source


def test_a_column_reduction_gives_neighbouring_threads_neighbouring_outputs() -> None:
    kernel = _kernel(ops.Sum((0,)), (10000, 512))  # 512 outputs, each a column of 10000
    first, second = kernel.dispatches  # split: 16 workgroups of 32 outputs are too few
    assert "lid % 32u" in first.source and "var<workgroup>" in first.source
    assert math.prod(first.workgroups) == 16 * 9 and _threads(first) == 16 * 9 * 256
    assert kernel.scratch == (512 * 9 * 4,)  # partials [part][output]: pass 2 coalesced
    # a column of 1000: each of the 8 lanes folds 125 values, fewer than a split needs
    (one,) = _kernel(ops.Sum((0,)), (1000, 512)).dispatches
    assert math.prod(one.workgroups) == 16


def test_a_huge_reduction_with_one_output_is_split_over_many_workgroups() -> None:
    kernel = _kernel(ops.ArgMax(0), (1_000_000,))
    first, second = kernel.dispatches
    # parts of about MIN_ITERATIONS values per thread: 30 workgroups of 256 threads
    assert math.prod(first.workgroups) >= 24 and _threads(first) >= 6_000
    assert len(kernel.scratch) == 2  # values and indices of the partials
    assert [b for b in second.bindings] == [("tmp", 0), ("tmp", 1), ("out",)]


def test_more_than_65535_outputs_use_a_two_dimensional_grid() -> None:
    (d,) = _kernel(ops.Sum((1,)), (70_000, 100)).dispatches  # one workgroup per output
    x, y, z = d.workgroups
    assert max(x, y, z) <= 65535 and x * y >= 70_000 and y > 1


def test_the_two_dimensional_grid_of_workgroups_runs() -> None:
    x = values(np.random.default_rng(4), (66_000, 65), "int32", spread=3)
    wgpu_parity(lambda x: (pyasg.sum(x, axis=1), pyasg.argmax(x, axis=1)), x)
