"""NaN on wgpu as on numpy and the reference: IEEE semantics in every elementwise kernel.

WGSL lets a compiler assume that floats are never NaN, so `max(NaN, 0)` may give 0,
`x != x` may fold to false and `clamp` may turn NaN into a bound; the kernels test
NaN on the bits instead (`pyasg.kernels.wgpu.helpers`). Each case runs single-op and
fused, and must equal the reference backend bit for bit in where the NaNs are.
"""

from __future__ import annotations

import numpy as np
import pytest
from wgpu_util import WGPU, require_wgpu

import pyasg
from pyasg.compile.pipeline import jit_to_backend

pytestmark = WGPU

X = np.array([np.nan, 1.0, -2.0, 0.0, np.inf, -np.inf, np.nan], np.float32)
Y = np.array([0.0, np.nan, -3.0, np.nan, 1.0, np.nan, np.nan], np.float32)

CASES = {
    "maximum": lambda x, y: pyasg.maximum(x, y),
    "maximum-swapped": lambda x, y: pyasg.maximum(y, x),
    "minimum": lambda x, y: pyasg.minimum(x, y),
    "sign": lambda x, y: pyasg.sign(x),
    "tanh": lambda x, y: pyasg.tanh(x),
    "x != x": lambda x, y: x != x,
    "x == x": lambda x, y: x == x,
    "less": lambda x, y: x < y,
    "less_equal": lambda x, y: x <= y,
    "greater": lambda x, y: x > y,
    "greater_equal": lambda x, y: x >= y,
    "not_equal": lambda x, y: x != y,
    "where(x != x)": lambda x, y: pyasg.where(x != x, 1.0, x),
    "power": lambda x, y: x ** y,  # nan**0 = 1**nan = 1, else NaN in, NaN out
    "power-swapped": lambda x, y: y ** x,
    "power-cube": lambda x, y: x ** 3.0,
}


@pytest.mark.parametrize("fuse", [False, True], ids=["single", "fused"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_nan_on_wgpu_is_nan_as_on_the_reference(name: str, fuse: bool) -> None:
    require_wgpu()
    fn = CASES[name]
    # `* 1.0` gives every case a second op, so the fused variant is a real group
    graph = pyasg.make_graph(lambda x, y: fn(x * 1.0, y * 1.0) if fuse else fn(x, y))(X, Y)
    want = jit_to_backend(graph, "reference")(X, Y)[0]
    got = np.asarray(jit_to_backend(graph, "wgpu", fuse=fuse)(X, Y)[0])
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(np.isnan(got) if got.dtype.kind == "f" else got,
                                  np.isnan(want) if want.dtype.kind == "f" else want)
    if got.dtype.kind == "f":
        finite = ~np.isnan(want)
        np.testing.assert_allclose(got[finite], want[finite], rtol=1e-6)
