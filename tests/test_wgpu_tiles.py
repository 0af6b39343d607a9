"""Matmul tiles and plans: the device limits they must fit, the rule's plan, the tuner's candidates.

Pure rules, no GPU, except where a test says it asks the device for its limits. The
candidates are a specification: the rule's plan first (so tuning can never pick
something slower than the rule), every plan valid and fitting the device, weight
gradients with K splits of their own, batched attention shapes with tiles that fit
their K = 64 and their N = 64.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from wgpu_util import WGPU, require_wgpu

from pyasg.asg.types import TensorType
from pyasg.kernels.wgpu import tiles
from pyasg.kernels.wgpu.matmul import device_limits
from pyasg.kernels.wgpu.tiles import Limits, Plan, Problem, Tile

WEBGPU = Limits()  # the defaults every WebGPU device offers


def problem(sa: tuple[int, ...], sb: tuple[int, ...]) -> Problem:
    return Problem.of(TensorType(sa), TensorType(sb))


def test_limits_are_read_from_the_device_names_and_threads_are_the_smaller_bound() -> None:
    got = Limits.of({"max-compute-workgroup-storage-size": 49152,
                     "max-compute-invocations-per-workgroup": 1024,
                     "max-compute-workgroup-size-x": 512})
    assert got == Limits(storage=49152, threads=512)
    assert Limits.of({}) == Limits(16384, 256)


def test_a_tile_knows_its_threads_and_memory_and_whether_it_fits() -> None:
    t = Tile(128, 64, 16, 8, 8, buffers=2)
    assert (t.threads, t.storage) == (128, 4 * 16 * (128 + 64) * 2)
    assert not t.fits(WEBGPU) and t.fits(Limits(storage=24576))
    assert not Tile(128, 128, 16, 4, 8).fits(WEBGPU)  # 512 threads
    assert Tile(128, 128, 16, 4, 8).fits(Limits(storage=16384, threads=512))


@pytest.mark.parametrize("bad", [dict(tm=30, tn=32, tk=8, rm=4, rn=4),
                                 dict(tm=32, tn=32, tk=0, rm=4, rn=4),
                                 dict(tm=32, tn=32, tk=8, rm=4, rn=4, buffers=3)])
def test_a_malformed_tile_is_refused(bad: dict) -> None:
    with pytest.raises(ValueError, match="bad tile"):
        Tile(**bad)


def test_a_split_must_be_whole_k_tiles_and_orders_must_be_known() -> None:
    with pytest.raises(ValueError, match="whole tiles"):
        Plan(tiles.MEDIUM, splits=2, k_split=20)
    with pytest.raises(ValueError, match="read orders"):
        Plan(tiles.MEDIUM, a_order="nk")


def test_the_rules_tiles_fit_every_webgpu_device() -> None:
    for t in (tiles.SMALL, tiles.MEDIUM, tiles.LARGE):
        assert t.fits(WEBGPU)


@WGPU
def test_every_candidate_tile_fits_this_device_so_its_parity_tests_run_here() -> None:
    require_wgpu()
    limits = device_limits()
    assert limits.storage >= WEBGPU.storage and limits.threads >= WEBGPU.threads
    # lavapipe (CI) offers 32 KiB and 1024 threads: every tile in the catalogue runs
    # there, so test_wgpu_matmul checks each one
    assert all(t.fits(limits) for t in tiles.CATALOGUE + tiles.ATTENTION)


@pytest.mark.parametrize("sa,sb,name", [
    ((4096, 4096), (4096, 4096), "128x128x16/8x8"),
    ((200, 100), (100, 70), "64x64x16/4x4"),
    ((64, 4096), (4096, 64), "64x64x16/4x4/split16x256"),   # few tiles, long K: split
    ((128, 1024), (1024, 128), "32x32x16/2x2"),             # ... unless one pass is fine
    ((3000,), (3000,), "32x32x16/2x2/split11x288"),          # a long dot product
])
def test_the_rules_plan_is_the_kernels_plan_before_tuning(sa: tuple, sb: tuple,
                                                          name: str) -> None:
    assert tiles.default_plan(problem(sa, sb)).name == name


limits_st = st.builds(Limits, st.sampled_from([16384, 24576, 32768, 49152, 65536]),
                      st.sampled_from([256, 512, 1024]))
size_st = st.sampled_from([1, 3, 32, 64, 100, 128, 256, 512, 1000, 1024, 2048, 4096, 8192])


@given(m=size_st, n=size_st, k=size_st, batch=st.sampled_from([(), (4,), (8, 12)]),
       limits=limits_st, split=st.booleans())
def test_candidates_start_with_the_rules_plan_and_all_are_valid_and_fit(
        m: int, n: int, k: int, batch: tuple, limits: Limits, split: bool) -> None:
    p = problem((*batch, m, k), (k, n))
    found = tiles.candidates(p, limits, split)
    assert found[0] == tiles.default_plan(p, split)
    assert len(found) <= tiles.MAX_CANDIDATES
    assert len({c.name for c in found}) == len(found)  # names identify them
    for c in found:
        assert c.tile.fits(limits)
        if c.splits > 1:
            assert split and c.k_split % c.tile.tk == 0
            assert (c.splits - 1) * c.k_split < p.k <= c.splits * c.k_split
            assert 4 * p.m * p.n * p.batches * c.splits <= tiles.SPLIT_BYTES
            assert c.k_split >= tiles.MIN_SPLIT_K or c is found[0]
        if c is not found[0]:
            assert c.tile in tiles.CATALOGUE + tiles.ATTENTION
            assert p.fill(c.tile) >= tiles.MIN_FILL


def test_a_tile_that_does_not_fit_is_never_a_candidate() -> None:
    p = problem((4096, 4096), (4096, 4096))
    small = {c.tile for c in tiles.candidates(p, WEBGPU)}
    big = {c.tile for c in tiles.candidates(p, Limits(storage=32768, threads=1024))}
    assert all(t.storage <= 16384 and t.threads <= 256 for t in small)
    assert any(t.storage == 32768 for t in big)  # the 48 KiB / 32 KiB devices get more


def test_a_square_product_tries_double_buffered_large_tiles_first() -> None:
    names = [c.name for c in tiles.candidates(problem((4096, 4096), (4096, 4096)),
                                              Limits(49152, 1024))]
    assert names[:3] == ["128x128x16/8x8", "128x128x16/8x8/2buf", "128x64x16/8x8/2buf"]


def test_a_mid_size_product_tries_tiles_that_give_more_workgroups() -> None:
    # the LM's B*T x d @ d x d at d = 256: a 128 x 128 tile gives only 32 workgroups
    p = problem((2048, 256), (256, 256))
    found = tiles.candidates(p, Limits(32768, 1024))
    assert p.groups(found[0].tile) == 32
    assert {p.groups(c.tile) for c in found[1:4]} >= {64, 128}


def test_a_weight_gradient_gets_k_splits_and_one_pass_tiles_of_its_own() -> None:
    # d x d weight gradient with K = B*T = 8192: X^T @ dY
    p = problem((512, 8192), (8192, 512))
    assert tiles.skinny(p)
    found = tiles.candidates(p, Limits(32768, 1024))
    splits = [c for c in found if c.splits > 1]
    one_pass = [c for c in found if c.splits == 1]
    assert len(splits) >= 3 and len({(c.tile.tm, c.tile.tn) for c in splits}) >= 2
    assert one_pass and all(p.groups(c.tile) * c.splits >= 64 for c in found)
    # a product as long in M as in K is no weight gradient: no splits tried
    assert not tiles.skinny(problem((1024, 1024), (1024, 1024)))


def test_batched_attention_shapes_get_tiles_of_their_own_first() -> None:
    limits = Limits(32768, 1024)
    scores = problem((8, 12, 1024, 64), (8, 12, 64, 1024))  # q @ k^T: K = 64, T x T out
    found = tiles.candidates(scores, limits)
    assert [c.tile for c in found[1:1 + len(tiles.SCORES)]] == list(tiles.SCORES)
    assert any(c.tile.tk == 64 for c in found)  # all of K in one step
    assert all(c.splits == 1 for c in found)
    mixed = problem((96, 1024, 1024), (96, 1024, 64))  # p @ v: N = 64, K = T
    found = tiles.candidates(mixed, limits)
    assert found[1].tile == tiles.MIXED[0]
    assert all(c.tile.tn <= 64 for c in found[1:])  # no tile half padding
    assert tiles.attention_tiles(problem((2048, 64), (64, 2048))) == ()  # not batched


def test_a_view_operand_gets_the_other_read_orders_and_a_matrix_none() -> None:
    plan = Plan(tiles.MEDIUM)
    assert [x.name for x in tiles.orders(plan, True, True)] == [
        "64x64x16/4x4/b:nk", "64x64x16/4x4/a:km", "64x64x16/4x4/a:km/b:nk"]
    assert tiles.orders(plan, False, False) == []
