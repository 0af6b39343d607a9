"""Counter-based random numbers: Threefry-2x32 known answers, determinism, and statistics.

Documented stream layout (checked below): for a key, element i of the row-major
flattened output of `bits(key, shape)` is word i % 2 of threefry2x32(key, (i // 2, 0)).
So the bits depend on the key and the *number* of elements only: `bits(k, (2, 3))` is
`bits(k, (6,))` reshaped, and a shorter request is a prefix of a longer one. `split(k)`
is `bits(k, (2, 2))`, so the child keys are the parent's first four words: a key that
was split must not also be used to draw numbers (as in JAX, never reuse a key).

Statistical tests use fixed keys, so they are deterministic; their tolerances are
several standard errors, derived from the closed-form moments of each distribution.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pyasg
from pyasg import random as R
from pyasg.kernels.reference.random import threefry2x32

N = 100_000
M32 = 0xFFFFFFFF

# Random123's known-answer vectors for threefry2x32_20: (key, counter, result).
KNOWN_ANSWERS = [
    ((0x00000000, 0x00000000), (0x00000000, 0x00000000), (0x6B200159, 0x99BA4EFE)),
    ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
    ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0)),
]


def threefry_reference(key, counter):
    """Threefry-2x32 with 20 rounds in plain Python integers (Random123's definition)."""
    rotations = (13, 15, 26, 6, 17, 29, 16, 24)
    k0, k1 = key
    ks = (k0, k1, k0 ^ k1 ^ 0x1BD11BDA)
    x0, x1 = (counter[0] + ks[0]) & M32, (counter[1] + ks[1]) & M32
    for r in range(20):
        x0 = (x0 + x1) & M32
        rot = rotations[r % 8]
        x1 = (((x1 << rot) | (x1 >> (32 - rot))) & M32) ^ x0
        if r % 4 == 3:
            s = r // 4 + 1
            x0 = (x0 + ks[s % 3]) & M32
            x1 = (x1 + ks[(s + 1) % 3] + s) & M32
    return x0, x1


def reference_bits(key, n):
    """The documented layout, from the plain-Python Threefry."""
    key = tuple(int(k) for k in key)
    words = []
    for block in range((n + 1) // 2):
        words.extend(threefry_reference(key, (block, 0)))
    return np.array(words[:n], dtype=np.uint32)


# --------------------------------------------------------------------------- known answers


@pytest.mark.parametrize("key, counter, expected", KNOWN_ANSWERS)
def test_threefry2x32_known_answer_vectors(key, counter, expected):
    assert threefry_reference(key, counter) == expected  # the reference itself is right
    y0, y1 = threefry2x32(np.array(key, np.uint32), np.array([counter[0]], np.uint32),
                          np.array([counter[1]], np.uint32))
    assert y0.dtype == np.uint32 and y1.dtype == np.uint32
    assert (int(y0[0]), int(y1[0])) == expected


def test_threefry2x32_vectorised_over_counters():
    key = np.array([0x13198A2E, 0x03707344], np.uint32)
    c0 = np.array([0, 1, 0xFFFFFFFF, 0x243F6A88], np.uint32)
    c1 = np.array([0, 0, 0xFFFFFFFF, 0x85A308D3], np.uint32)
    y0, y1 = threefry2x32(key, c0, c1)
    for a, b, r0, r1 in zip(c0, c1, y0, y1):
        assert threefry_reference((0x13198A2E, 0x03707344), (int(a), int(b))) == (r0, r1)


@settings(deadline=None, max_examples=20)
@given(seed=st.integers(0, 2**64 - 1), n=st.integers(0, 9))
def test_bits_follow_the_documented_counter_layout(seed, n):
    k = R.key(seed)
    assert k.dtype == np.uint32 and k.tolist() == [seed >> 32, seed & M32]
    want = reference_bits(k, n)
    eager = R.bits(k, (n,))
    traced = pyasg.jit(lambda key: R.bits(key, (n,)))(k)
    for got in (eager, traced):
        assert got.dtype == np.uint32 and got.shape == (n,)
        np.testing.assert_array_equal(got, want)


def test_key_rejects_seeds_out_of_range():
    for seed in (-1, 2**64):
        with pytest.raises(pyasg.PyasgError):
            R.key(seed)


# --------------------------------------------------------------------------- determinism


@pytest.mark.parametrize("draw", [
    lambda k: R.bits(k, (3, 5)),
    lambda k: R.uniform(k, (4, 3)),
    lambda k: R.uniform(k, (7,), minval=-2.0, maxval=3.0, dtype="float64"),
    lambda k: R.normal(k, (2, 5)),
    lambda k: R.bernoulli(k, 0.3, (9,)),
    lambda k: R.split(k, 3),
])
def test_same_key_same_numbers_eagerly_and_inside_jit(draw):
    k = R.key(1234)
    eager = draw(k)
    again = draw(k)
    f = pyasg.jit(draw)
    traced = f(k)
    np.testing.assert_array_equal(eager, again)
    assert traced.dtype == eager.dtype and traced.shape == eager.shape
    np.testing.assert_array_equal(traced, eager)
    # the key is an input, not a constant: a new key reuses the compiled function
    other = f(R.key(99))
    assert f.cache_size == 1
    np.testing.assert_array_equal(other, draw(R.key(99)))


def test_different_keys_and_splits_give_different_streams():
    n = 64
    streams = {}
    root = R.key(0)
    children = R.split(root, 4)
    assert children.shape == (4, 2) and children.dtype == np.uint32
    a, b = R.split(R.key(3))
    keys = {"root": root, "key1": R.key(1), "key2^32": R.key(2**32), "a": a, "b": b}
    keys.update({f"child{i}": children[i] for i in range(4)})
    keys["a.a"], keys["a.b"] = R.split(a)
    for name, k in keys.items():
        streams[name] = R.bits(k, (n,))
    names = list(streams)
    for i, p in enumerate(names):
        for q in names[i + 1:]:
            same = np.mean(streams[p] == streams[q])
            assert same < 0.1, (p, q, same)  # independent 32-bit words almost never match
    assert len({tuple(map(int, c)) for c in children}) == 4


def test_bits_depend_on_the_element_count_only():
    """The documented prefix behaviour: shape does not change the stream, only its length."""
    k = R.key(7)
    flat = R.bits(k, (12,))
    np.testing.assert_array_equal(R.bits(k, (3, 4)), flat.reshape(3, 4))
    np.testing.assert_array_equal(R.bits(k, (2, 3, 2)), flat.reshape(2, 3, 2))
    np.testing.assert_array_equal(R.bits(k, (5,)), flat[:5])  # odd lengths: a prefix too
    np.testing.assert_array_equal(R.bits(k, ()), flat[0])
    # split(k) is the key's first four words, so children must not be mixed with draws,
    # and split(k, 2) gives the first two of split(k, 4)
    np.testing.assert_array_equal(R.split(k), flat[:4].reshape(2, 2))
    np.testing.assert_array_equal(R.split(k, 4)[:2], R.split(k, 2))


def test_uniform_is_the_top_24_bits():
    k = R.key(5)
    bits = R.bits(k, (1000,))
    expected = (bits >> 8).astype(np.float64) / 2.0**24
    u = R.uniform(k, (1000,), dtype="float64")
    np.testing.assert_array_equal(u, expected)
    np.testing.assert_array_equal(R.uniform(k, (1000,)), expected.astype(np.float32))


# --------------------------------------------------------------------------- statistics


@pytest.mark.parametrize("seed", [0, 1, 2**40 + 3])
def test_uniform_moments(seed):
    u = np.asarray(pyasg.jit(lambda k: R.uniform(k, (N,)))(R.key(seed)), np.float64)
    assert u.dtype == np.float64 and u.shape == (N,)
    assert u.min() >= 0.0 and u.max() < 1.0
    # mean: variance 1/12; sample variance: Var[(U - 1/2)^2] = 1/80 - 1/144 = 1/180
    se_mean = math.sqrt(1 / 12 / N)
    se_var = math.sqrt(1 / 180 / N)
    assert abs(u.mean() - 0.5) < 5 * se_mean
    assert abs(u.var() - 1 / 12) < 5 * se_var
    # each tenth of [0, 1) holds about a tenth of the samples (binomial standard error)
    counts = np.bincount((u * 10).astype(int), minlength=10)
    se_count = math.sqrt(N * 0.1 * 0.9)
    assert np.all(np.abs(counts - N / 10) < 5 * se_count), counts


def test_uniform_range_and_dtype():
    u = R.uniform(R.key(3), (N,), minval=-2.0, maxval=6.0)
    assert u.dtype == np.float32
    assert u.min() >= -2.0 and u.max() < 6.0
    se = 8 * math.sqrt(1 / 12 / N)
    assert abs(float(np.mean(u, dtype=np.float64)) - 2.0) < 5 * se


@pytest.mark.parametrize("seed", [0, 11])
def test_normal_moments(seed):
    z = np.asarray(R.normal(R.key(seed), (N,)), np.float64)
    assert np.all(np.isfinite(z))
    # standard errors: mean 1/sqrt(N); variance sqrt(2/N) (E[Z^4] = 3)
    assert abs(z.mean()) < 5 / math.sqrt(N)
    assert abs(z.var() - 1.0) < 5 * math.sqrt(2 / N)
    # the fraction within one sigma is erf(1/sqrt 2) ~ 0.6827
    p = math.erf(1 / math.sqrt(2))
    assert abs(np.mean(np.abs(z) < 1) - p) < 5 * math.sqrt(p * (1 - p) / N)


@pytest.mark.parametrize("p", [0.3, 0.05, 0.5])
def test_bernoulli_frequency(p):
    b = pyasg.jit(lambda k: R.bernoulli(k, p, (N,)))(R.key(42))
    assert b.dtype == np.bool_ and b.shape == (N,)
    se = math.sqrt(p * (1 - p) / N)
    assert abs(b.mean() - p) < 4 * se


def test_bernoulli_edge_probabilities():
    k = R.key(8)
    assert not R.bernoulli(k, 0.0, (1000,)).any()
    assert R.bernoulli(k, 1.0, (1000,)).all()
