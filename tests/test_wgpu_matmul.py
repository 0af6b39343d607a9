"""The tiled WGSL matmul against numpy: batched, broadcast, 1-D operands, any M, N, K.

Values are small multiples of 1/4 (or small integers): every product and partial sum
is exact in float32, so any summation order matches numpy bit for bit. Every tile
variant runs on shapes that do and do not allow vec4 loads and stores.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from wgpu_util import WGPU, wgpu_parity

from pyasg.asg import ops
from pyasg.asg.types import TensorType
from pyasg.kernels import lower
from pyasg.kernels.wgpu import matmul as mm

pytestmark = WGPU


def values(rng: np.random.Generator, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    x = rng.integers(-4, 5, shape)
    return (x / 4).astype(np.float32) if dtype == "float32" else x.astype(dtype)


def check(sa: tuple[int, ...], sb: tuple[int, ...], dtype: str = "float32",
          seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    wgpu_parity(lambda a, b: a @ b, values(rng, sa, dtype), values(rng, sb, dtype))


SHAPES = [
    ((3, 4), (4, 5)),
    ((2, 3, 4), (2, 4, 5)),
    ((2, 3, 4), (4, 5)),
    ((3, 4), (2, 4, 5)),
    ((2, 1, 3, 4), (3, 4, 5)),   # batch dims broadcast both ways
    ((4,), (4, 5)),              # 1-D left: a row
    ((3, 4), (4,)),              # 1-D right: a column
    ((4,), (4,)),                # both: a scalar
    ((4,), (2, 4, 5)),
    ((2, 3, 4), (4,)),
    ((33, 17), (17, 65)),        # nothing a multiple of the tile
    ((70, 80), (80, 66)),        # the 64 x 64 tile
    ((130, 70), (70, 129)),      # the 128 x 128 tile, scalar loads
    ((2, 130, 72), (72, 132)),   # the 128 x 128 tile, vec4 loads and stores
    ((33, 3000), (3000, 17)),    # one tile, long K: split in 11, then summed
    ((3000,), (3000,)),          # a long dot product, split
    ((2, 40, 1000), (1000, 30)),  # batched, split
    ((5, 0), (0, 3)),            # K = 0: zeros
    ((0, 3), (3, 4)),            # an empty result
    ((0, 3, 4), (1, 4, 5)),      # an empty batch broadcast against 1
]


@pytest.mark.parametrize("sa,sb", SHAPES)
@pytest.mark.parametrize("dtype", ["float32", "int32"])
def test_matmul_shapes(sa: tuple[int, ...], sb: tuple[int, ...], dtype: str) -> None:
    check(sa, sb, dtype)


def test_unrounded_floats() -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(size=(2, 40, 300)).astype(np.float32)
    b = rng.normal(size=(300, 150)).astype(np.float32)
    # sums of 300 products in another order than BLAS's differ in the last bits
    wgpu_parity(lambda a, b: a @ b, a, b, atol=1e-4, rtol=1e-5)


@st.composite
def matmul_cases(draw: st.DrawFn) -> tuple:
    dim = st.sampled_from([1, 2, 3, 4, 5, 8, 16, 17, 31, 33, 64, 65])
    m, n, k = draw(dim), draw(dim), draw(dim)
    batch = draw(st.lists(st.sampled_from([1, 2, 3]), max_size=2))
    # each operand keeps a suffix of the batch dims, some of them squeezed to 1
    a_batch = [d if draw(st.booleans()) else 1 for d in batch[len(batch) - draw(
        st.integers(0, len(batch))):]]
    b_batch = [d if draw(st.booleans()) else 1 for d in batch[len(batch) - draw(
        st.integers(0, len(batch))):]]
    sa = (k,) if draw(st.integers(0, 5)) == 0 else (*a_batch, m, k)
    sb = (k,) if draw(st.integers(0, 5)) == 0 else (*b_batch, k, n)
    return sa, sb, draw(st.sampled_from(["float32", "int32"])), draw(st.integers(0, 999))


@given(matmul_cases())
def test_random_batched_broadcast_matmul(case: tuple) -> None:
    check(*case)


TILES = [mm.SMALL, mm.MEDIUM, mm.LARGE,
         mm.Tile(tm=16, tn=16, tk=16, rm=1, rn=1),  # the plain one-output-per-thread kernel
         mm.Tile(tm=48, tn=24, tk=4, rm=3, rn=3)]   # odd register blocks: scalar lanes


@pytest.mark.parametrize("tile", TILES, ids=lambda t: f"{t.tm}x{t.tn}x{t.tk}/{t.rm}x{t.rn}")
def test_every_tile_variant(tile: mm.Tile, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mm, "choose_tile", lambda m, n, k: tile)
    check((2, 33, 17), (17, 65))        # scalar loads and stores everywhere
    check((20, 16), (2, 16, 12), seed=1)  # K and N multiples of 4: vec4 where the tile allows
    check((130, 7), (7, 132), "int32")  # N a multiple of 4, K not; more than one tile
    check((5,), (5, 9))
    monkeypatch.setattr(mm, "MIN_SPLIT_K", 16)  # split K even when it is short
    check((3, 20, 100), (100, 36), seed=2)
    check((37, 70), (70, 20), "int32", seed=3)


def _kernel(sa: tuple[int, ...], sb: tuple[int, ...]):  # noqa: ANN202
    from pyasg.kernels.wgpu import WgpuBackend

    a, b = TensorType(sa, "float32"), TensorType(sb, "float32")
    return lower(ops.MatMul(), WgpuBackend(), in_types=(a, b), out_type=ops.MatMul().infer(a, b))


def test_source_is_tiled_with_named_accumulators() -> None:
    (d,) = _kernel((256, 64), (64, 300)).dispatches
    assert "var<workgroup> As" in d.source and "workgroupBarrier" in d.source
    assert "@workgroup_size(256)" in d.source
    assert math.prod(d.workgroups) == 2 * 3  # 128 x 128 tiles
    # 8 x 8 outputs per thread held in sixteen named vec4 variables, no private array
    assert sum(f"var acc_{r}_{c} = vec4<f32>()" in d.source
               for r in range(8) for c in range(2)) == 16
    assert "var<private>" not in d.source and "var acc:" not in d.source
    (small,) = _kernel((3, 4), (4, 5)).dispatches
    assert "var<workgroup>" in small.source and math.prod(small.workgroups) == 1


def test_a_long_k_with_few_tiles_is_split_over_more_workgroups() -> None:
    kernel = _kernel((64, 4096), (4096, 64))  # one 64 x 64 tile
    gemm, total = kernel.dispatches
    assert math.prod(gemm.workgroups) == 16 and kernel.scratch == (16 * 64 * 64 * 4,)
    assert gemm.bindings[-1] == ("tmp", 0) and total.bindings == (("tmp", 0), ("out",))
    (d,) = _kernel((64, 200), (200, 64)).dispatches  # K too short to be worth it


def test_many_tiles_use_a_two_dimensional_grid() -> None:
    (d,) = _kernel((70_000, 1, 2), (2, 3)).dispatches  # 70000 batches, one tile each
    x, y, z = d.workgroups
    assert max(x, y, z) <= 65535 and x * y >= 70_000


def test_a_tile_must_fit_the_webgpu_limits() -> None:
    with pytest.raises(ValueError, match="256 threads"):
        mm.Tile(tm=64, tn=64, tk=8, rm=1, rn=1)
    with pytest.raises(ValueError, match="16 KiB"):
        mm.Tile(tm=128, tn=128, tk=32, rm=8, rn=8)


def test_a_small_layers_weight_gradient_runs_in_one_pass() -> None:
    # X^T @ dY of a 128-wide layer over 1024 rows: 16 tiles of 32 x 32, each thread 4K
    # multiply-adds; a split's second dispatch would cost more than it saves
    (d,) = _kernel((128, 1024), (1024, 128)).dispatches
    assert math.prod(d.workgroups) == 16 and "tmp" not in str(d.bindings)
    check((128, 1024), (1024, 128))


def test_a_long_k_with_few_big_tiles_still_splits() -> None:
    kernel = _kernel((512, 8192), (8192, 512))  # the H200 case of the module docstring
    gemm, total = kernel.dispatches
    assert gemm.bindings[-1] == ("tmp", 0) and math.prod(gemm.workgroups) > 16
