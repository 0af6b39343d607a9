"""The tiled WGSL matmul against the reference: every plan a tuner may pick, on any shape.

Values are small multiples of 1/4 (or small integers): every product and partial sum
is exact in float32, so any summation order matches the reference bit for bit. Every
tile (the rule's and the tuner's catalogue) runs on shapes that do and do not allow
vec4 loads and stores, with partial tiles in M, N and K, batches broadcast, 1-d
operands, transposed views read in both orders, a fused epilogue, and K split.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wgpu_util import WGPU, require_wgpu, wgpu_parity

import pyasg
from pyasg.asg import ops
from pyasg.asg.types import TensorType
from pyasg.kernels import lower
from pyasg.kernels.wgpu import WgpuBackend, fused, tiles
from pyasg.kernels.wgpu import matmul as mm
from pyasg.kernels.wgpu.operands import Transposed, View
from pyasg.kernels.wgpu.tiles import Plan, Tile

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
def matmul_cases(draw: st.DrawFn, dims: st.SearchStrategy[int] | None = None,
                 ks: st.SearchStrategy[int] | None = None) -> tuple:
    dim = st.sampled_from([1, 2, 3, 4, 5, 8, 16, 17, 31, 33, 64, 65])
    dims, ks = dims if dims is not None else dim, ks if ks is not None else dim
    m, n, k = draw(dims), draw(dims), draw(ks)
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


# --------------------------------------------------------------------------- every plan

#: Every tile a plan may use: the rule's, the tuner's catalogue and attention tiles, and
#: two odd ones that reach the generator's other paths (one output a thread, its k loop
#: not unrolled; 3 x 3 blocks, scalar lanes, a k-tile of 4, partial load slots).
ALL_TILES = tuple(dict.fromkeys(
    (tiles.SMALL, tiles.MEDIUM, tiles.LARGE, *tiles.CATALOGUE, *tiles.ATTENTION,
     Tile(16, 16, 16, 1, 1, unroll=False), Tile(48, 24, 4, 3, 3, buffers=2))))
TILE_IDS = [t.name for t in ALL_TILES]


def force(monkeypatch: pytest.MonkeyPatch, tile: Tile, splits: int = 1,
          a_order: str = "mk", b_order: str = "kn", expect_views: bool = False) -> list:
    """Make every product run `tile` (K in `splits` parts where K allows); returns the
    list of the problems it ran."""
    require_wgpu()
    if not tile.fits(mm.device_limits()):
        pytest.skip(f"{tile.name} does not fit this device (CI's lavapipe fits all)")
    ran = []

    def choose(p, a, b, fused_, split, build):  # noqa: ANN001, ANN202
        if expect_views:
            assert isinstance(a, (View, Transposed)) and isinstance(b, (View, Transposed)) \
                and fused_
        ran.append(p)
        s, k_split = tiles.k_splits(p, tile, splits)
        return Plan(tile, s, k_split if s > 1 else 0, a_order, b_order)

    monkeypatch.setattr(mm, "choose_plan", choose)
    fused.fused_kernel.cache_clear()  # kernels cached with another plan's tile
    return ran


@pytest.mark.parametrize("tile", ALL_TILES, ids=TILE_IDS)
def test_every_tile_with_vec4_loads_partial_tiles_and_broadcast_batches(
        tile: Tile, monkeypatch: pytest.MonkeyPatch) -> None:
    ran = force(monkeypatch, tile)
    # K and N multiples of 4 (vec4 loads and stores where the tile allows), every
    # dimension a partial tile, batches (2, 3) broadcast from (2, 1) and (3,)
    check((2, 1, tile.tm + 5, 2 * tile.tk + 4), (3, 2 * tile.tk + 4, tile.tn + 4), seed=1)
    assert ran


@pytest.mark.parametrize("tile", ALL_TILES, ids=TILE_IDS)
def test_every_tile_through_transposed_views_a_fused_epilogue_and_a_split_k(
        tile: Tile, monkeypatch: pytest.MonkeyPatch) -> None:
    # both operands read through transposes, along their other index (the orders the
    # tuner tries for views); K in two parts, the second partial; tanh(...) * 0.5 fused
    ran = force(monkeypatch, tile, splits=2, a_order="km", b_order="nk", expect_views=True)
    k = 3 * tile.tk + 5
    rng = np.random.default_rng(2)
    x = values(rng, (2, k, tile.tm + 3), "float32")
    w = values(rng, (tile.tn + 1, k), "float32")
    c = values(rng, (tile.tm + 3, tile.tn + 1), "float32")
    wgpu_parity(lambda x, w, c: pyasg.tanh(pyasg.swapaxes(x, -1, -2) @ w.T + c) * 0.5,
                x, w, c)
    assert ran and tiles.k_splits(ran[0], tile, 2)[0] == 2


@pytest.mark.parametrize("tile", ALL_TILES, ids=TILE_IDS)
def test_every_tile_reading_transposed_weights_and_inputs_as_vec4_columns(
        tile: Tile, monkeypatch: pytest.MonkeyPatch) -> None:
    # X^T @ W^T with X [k, m] and W [n, k], 2-d inputs transposed inside the group: the
    # GEMM reads both as operands.Transposed, in vec4s down their columns ("km4", "nk4")
    # where M and K are multiples of 4 and in scalars where not; K in two parts
    ran = force(monkeypatch, tile, splits=2, a_order="km4", b_order="nk4")
    forced, kinds = mm.choose_plan, []

    def spy(p, a, b, *rest):  # noqa: ANN001, ANN202
        kinds.append((type(a), type(b), a.vec4_down, b.vec4_down))
        return forced(p, a, b, *rest)

    monkeypatch.setattr(mm, "choose_plan", spy)
    rng = np.random.default_rng(3)
    for m, k, n in ((tile.tm + 4, 3 * tile.tk + 4, tile.tn + 1), (tile.tm + 3, 2 * tile.tk + 5, 7)):
        x = values(rng, (k, m), "float32")
        w = values(rng, (n, k), "float32")
        wgpu_parity(lambda x, w: x.T @ w.T + 1.0, x, w)
    assert ran and kinds == [(Transposed, Transposed, True, True),
                             (Transposed, Transposed, False, False)]


@pytest.mark.parametrize("tile", ALL_TILES, ids=TILE_IDS)
@settings(max_examples=4, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                               HealthCheck.too_slow])
@given(data=st.data())
def test_every_tile_on_random_shapes(tile: Tile, data: st.DataObject,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # shapes around the tile: one element, a partial tile, a tile and a bit
    dims = st.sampled_from([1, 5, tile.tm + 3, tile.tn - 1])
    ks = st.sampled_from([1, 3, tile.tk + 4, 2 * tile.tk + 1])
    splits = data.draw(st.sampled_from([1, 2]))
    order = data.draw(st.sampled_from([("mk", "kn"), ("km", "nk"), ("km4", "nk4")]))
    with monkeypatch.context() as patch:
        force(patch, tile, splits, *order)
        check(*data.draw(matmul_cases(dims, ks)))


# --------------------------------------------------------------------------- the kernels

def _kernel(sa: tuple[int, ...], sb: tuple[int, ...]):  # noqa: ANN202
    a, b = TensorType(sa, "float32"), TensorType(sb, "float32")
    return lower(ops.MatMul(), WgpuBackend(), in_types=(a, b), out_type=ops.MatMul().infer(a, b))


def test_source_is_tiled_with_named_accumulators() -> None:
    require_wgpu()
    (d,) = _kernel((256, 64), (64, 300)).dispatches  # under TUNE_FLOPS: the rule's plan
    assert "var<workgroup> As" in d.source and "workgroupBarrier" in d.source
    assert "@workgroup_size(256)" in d.source
    assert math.prod(d.workgroups) == 2 * 3  # 128 x 128 tiles
    # 8 x 8 outputs per thread held in sixteen named vec4 variables, no private array
    assert sum(f"var acc_{r}_{c} = vec4<f32>()" in d.source
               for r in range(8) for c in range(2)) == 16
    assert "var<private>" not in d.source and "var acc:" not in d.source
    (small,) = _kernel((3, 4), (4, 5)).dispatches
    assert "var<workgroup>" in small.source and math.prod(small.workgroups) == 1


def _barriers_in_loop(source: str) -> int:
    loop = source[source.index("for (var k0"):]
    depth, end = 0, 0
    for i, ch in enumerate(loop):
        depth += ch == "{"
        depth -= ch == "}"
        if ch == "}" and depth == 0:
            end = i
            break
    return loop[:end].count("workgroupBarrier")


def test_a_double_buffered_tile_has_one_barrier_a_k_step_and_twice_the_memory() -> None:
    require_wgpu()
    one = tiles.Tile(128, 128, 8, 8, 8)
    two = tiles.Tile(128, 128, 8, 8, 8, buffers=2)
    single = mm.matmul_kernel(TensorType((256, 64)), TensorType((64, 256)), tile=one)
    double = mm.matmul_kernel(TensorType((256, 64)), TensorType((64, 256)), tile=two)
    assert _barriers_in_loop(single.dispatches[0].source) == 2
    assert _barriers_in_loop(double.dispatches[0].source) == 1
    # vec4 tiles: 8 x 128 floats of A and of B, once or twice
    assert "var<workgroup> As: array<vec4<f32>, 256>" in single.dispatches[0].source
    assert "var<workgroup> As: array<vec4<f32>, 512>" in double.dispatches[0].source


def test_a_long_k_with_few_tiles_is_split_over_more_workgroups() -> None:
    require_wgpu()
    kernel = _kernel((64, 4096), (4096, 64))  # one 64 x 64 tile
    gemm, total = kernel.dispatches
    assert math.prod(gemm.workgroups) == 16 and kernel.scratch == (16 * 64 * 64 * 4,)
    assert gemm.bindings[-1] == ("tmp", 0) and total.bindings == (("tmp", 0), ("out",))
    (d,) = _kernel((64, 200), (200, 64)).dispatches  # K too short to be worth it


def test_many_tiles_use_a_two_dimensional_grid() -> None:
    require_wgpu()
    (d,) = _kernel((70_000, 1, 2), (2, 3)).dispatches  # 70000 batches, one tile each
    x, y, z = d.workgroups
    assert max(x, y, z) <= 65535 and x * y >= 70_000


def test_a_tile_that_does_not_fit_the_device_is_refused() -> None:
    require_wgpu()
    limits = mm.device_limits()
    too_big = Tile(128, 128, limits.storage // (4 * 256) + 1, 8, 8)  # just over
    assert not too_big.fits(limits)
    with pytest.raises(ValueError, match="workgroup memory"):
        mm.matmul_kernel(TensorType((8, 8)), TensorType((8, 8)), tile=too_big)


def test_a_small_layers_weight_gradient_runs_in_one_pass() -> None:
    require_wgpu()
    # X^T @ dY of a 128-wide layer over 1024 rows: 16 tiles of 32 x 32, each thread 4K
    # multiply-adds; a split's second dispatch would cost more than it saves
    (d,) = _kernel((128, 1024), (1024, 128)).dispatches
    assert math.prod(d.workgroups) == 16 and "tmp" not in str(d.bindings)
    check((128, 1024), (1024, 128))


def test_a_long_k_with_few_big_tiles_still_splits(monkeypatch: pytest.MonkeyPatch) -> None:
    require_wgpu()
    monkeypatch.setenv("PYASG_AUTOTUNE", "0")  # the rule's plan: 4 GFLOP would be tuned
    kernel = _kernel((512, 8192), (8192, 512))  # the H200 case of the module docstring
    gemm, total = kernel.dispatches
    assert gemm.bindings[-1] == ("tmp", 0) and math.prod(gemm.workgroups) > 16
