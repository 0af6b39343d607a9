"""wgpu random_bits is bit-identical to numpy's Threefry-2x32-20, so dropout masks and
random draws from one key agree across backends; the 2-d grid split keeps the layout."""

import numpy as np
import pytest
from wgpu_util import WGPU, require_wgpu, run_both, wgpu_parity

import pyasg
from pyasg.kernels.wgpu import codegen
from pyasg.kernels.wgpu import random as wgpu_random

pytestmark = WGPU

KEYS = [(0, 0), (1, 2), (0xFFFFFFFF, 0x12345678), (0xDEADBEEF, 0xFFFFFFFF),
        tuple(pyasg.random.key(42))]
SHAPES = [(), (1,), (2,), (7,), (513,), (3, 5, 7), (2, 1000)]


@pytest.mark.parametrize("key", KEYS, ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_random_bits_bit_identical(key, shape):
    wgpu_parity(lambda k: pyasg.random.bits(k, shape), np.array(key, np.uint32))


def test_threefry_known_answer():
    # Random123's known-answer vector for Threefry-2x32-20: key 0, counter 0
    require_wgpu()
    key = np.zeros(2, np.uint32)
    graph = pyasg.make_graph(lambda k: pyasg.random.bits(k, (2,)))(key)
    (got,) = pyasg.jit_to_backend(graph, "wgpu")(key)
    assert np.asarray(got).tolist() == [0x6B200159, 0x99BA4EFE]


def test_grid_split_for_huge_outputs():
    # more than 65535 workgroups: x and y stay within the limit and cover every thread
    for threads in (65535 * 256, 65535 * 256 + 1, 65535 * 256 * 3 + 5, 2**29 + 3):
        x, y, z = codegen.grid(threads)
        assert max(x, y) <= codegen.MAX_GROUPS and z == 1
        assert x * y * codegen.WORKGROUP >= threads > (x * (y - 1)) * codegen.WORKGROUP


def test_two_dimensional_grid_keeps_the_bit_layout(monkeypatch):
    # Force the kernel onto a (x, 3) grid, as grid() does above 65535 workgroups (too
    # many threads for lavapipe): the flat index gid.x + gid.y * nwg.x * 256 must map
    # each thread to the element numpy puts there, and the excess threads do nothing.
    def small_split(threads, per_group=codegen.WORKGROUP):  # noqa: ANN001, ANN202
        groups = -(-threads // per_group)
        return (-(-groups // 3), 3, 1)

    monkeypatch.setattr(wgpu_random, "grid", small_split)
    want, got = run_both(lambda k: pyasg.random.bits(k, (5, 401)), np.array([7, 9], np.uint32))
    np.testing.assert_array_equal(got[0], want[0])


@pytest.mark.parametrize("seed", [0, 1, 12345])
def test_dropout_masks_agree_across_backends(seed):
    x = np.random.default_rng(seed).normal(size=(33, 47)).astype(np.float32) + 5.0  # no zeros
    key = pyasg.random.key(seed)
    want, got = wgpu_parity(lambda x, k: pyasg.dropout(x, 0.3, k), x, key)
    np.testing.assert_array_equal(got[0] == 0, want[0] == 0)
    assert 0.2 < (want[0] == 0).mean() < 0.4


def test_split_uniform_and_bernoulli_agree():
    key = pyasg.random.key(7)

    def draws(k):  # noqa: ANN001, ANN202
        keys = pyasg.random.split(k)
        a, b = keys[0], keys[1]  # a traced [2, 2] array cannot be unpacked
        return pyasg.random.uniform(a, (300,)), pyasg.random.bits(b, (17,)), \
            pyasg.random.bernoulli(b, 0.25, (9, 9))

    wgpu_parity(draws, key)
