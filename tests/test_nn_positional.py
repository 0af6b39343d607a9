"""Positional encodings: sinusoidal and RoPE against their formulas, learned tables,
ALiBi's slopes from the paper's rule, offsets, and gradients."""

from __future__ import annotations

import math

import numpy as np
import pytest
from gradcheck import check_grad
from hypothesis import given
from hypothesis import strategies as st

import pyasg
from pyasg.errors import PyasgError, ShapeError
from pyasg.nn import ROLES
from pyasg.nn.positional import (
    ALiBi,
    LearnedPositionalEmbedding,
    RoPE,
    SinusoidalPositionalEncoding,
    alibi_slopes,
)

RNG = np.random.default_rng(0)

# --------------------------------------------------------------------------- sinusoidal


def vaswani(pos: int, k: int, dim: int) -> float:
    """PE(pos, 2i) = sin(pos / 10000^(2i/d)), PE(pos, 2i+1) = cos(pos / 10000^(2i/d))."""
    i = k // 2
    angle = pos / 10000.0 ** (2 * i / dim)
    return math.sin(angle) if k % 2 == 0 else math.cos(angle)


@pytest.mark.parametrize("dim", [1, 6, 7])
def test_sinusoidal_matches_the_formula(dim):
    pe = SinusoidalPositionalEncoding(dim, max_len=50)
    x = RNG.standard_normal((2, 50, dim))
    expected = np.array([[vaswani(p, k, dim) for k in range(dim)] for p in range(50)])
    np.testing.assert_allclose(pe.table, expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(pe({}, x), x + expected, rtol=0, atol=1e-12)
    assert pe.param_kinds() == {} and pe.init(pyasg.random.key(0)) == {}


def test_sinusoidal_offset_dtype_and_bounds():
    pe = SinusoidalPositionalEncoding(8, max_len=20)
    x = np.zeros((3, 4, 8), np.float32)
    out = pe({}, x, offset=5)
    assert out.dtype == np.float32
    expected = np.array([[vaswani(p, k, 8) for k in range(8)] for p in range(5, 9)])
    np.testing.assert_allclose(out[1], expected, atol=1e-6)
    traced = pyasg.jit(lambda x, off: pe({}, x, offset=off))(x, np.int32(5))
    np.testing.assert_allclose(traced, out, atol=1e-7)
    with pytest.raises(ShapeError, match="max_len=20"):
        pe({}, np.zeros((1, 21, 8)))
    with pytest.raises(ShapeError, match="max_len=20"):
        pe({}, x, offset=17)
    with pytest.raises(ShapeError, match=r"\[\.\.\., T, 8\]"):
        pe({}, np.zeros((2, 4, 6)))


def test_gradcheck_sinusoidal_input():
    pe = SinusoidalPositionalEncoding(6, max_len=10)
    check_grad(lambda x: pe({}, x, offset=2) ** 2, RNG.standard_normal((2, 5, 6)), rtol=1e-5)


# --------------------------------------------------------------------------- learned


def test_learned_table_shape_init_kinds_and_roles():
    pos = LearnedPositionalEmbedding(max_len=256, dim=64)
    params = pos.init(pyasg.random.key(0))
    w = params["weight"]
    assert w.shape == (256, 64) and w.dtype == np.float32
    assert abs(w.std() - 0.02) < 0.002 and abs(w.mean()) < 0.002  # N(0, 0.02^2)
    assert abs(LearnedPositionalEmbedding(256, 64, std=1.0).init(
        pyasg.random.key(0))["weight"].std() - 1.0) < 0.05
    assert pos.param_kinds(prefix="pos") == {"pos.weight": "LearnedPositionalEmbedding.weight"}
    assert ROLES["LearnedPositionalEmbedding.weight"]


def test_learned_adds_the_rows_at_the_offset():
    pos = LearnedPositionalEmbedding(max_len=10, dim=3)
    w = RNG.standard_normal((10, 3))
    x = RNG.standard_normal((2, 4, 3))
    np.testing.assert_array_equal(pos({"weight": w}, x), x + w[:4])
    np.testing.assert_array_equal(pos({"weight": w}, x, offset=6), x + w[6:10])
    traced = pyasg.jit(lambda w, x, off: pos({"weight": w}, x, offset=off))
    np.testing.assert_array_equal(traced(w, x, np.int64(3)), x + w[3:7])
    with pytest.raises(ShapeError, match="max_len=10"):
        pos({"weight": w}, x, offset=7)
    with pytest.raises(ShapeError, match="max_len=10"):
        pos({"weight": w}, x, offset=np.array(7))
    # a traced offset is checked when it runs: an error, never a wrong row
    with pytest.raises(PyasgError):
        traced(w, x, np.int64(7))


def test_gradcheck_learned_input_and_weight():
    pos = LearnedPositionalEmbedding(max_len=8, dim=3)
    w, x = RNG.standard_normal((8, 3)), RNG.standard_normal((2, 5, 3))
    check_grad(lambda w, x: pos({"weight": w}, x, offset=2) ** 2, w, x, argnums=(0, 1),
               rtol=1e-5)


# --------------------------------------------------------------------------- RoPE


def np_rope(x: np.ndarray, start: int, base: float = 10000.0) -> np.ndarray:
    """Split-half RoPE written out: pair (i, i + D/2) turned by (start + t) * base^(-2i/D)."""
    D = x.shape[-1]
    out = np.empty_like(x)
    for t in range(x.shape[-2]):
        for i in range(D // 2):
            a = (start + t) * base ** (-2.0 * i / D)
            x1, x2 = x[..., t, i], x[..., t, i + D // 2]
            out[..., t, i] = x1 * math.cos(a) - x2 * math.sin(a)
            out[..., t, i + D // 2] = x2 * math.cos(a) + x1 * math.sin(a)
    return out


@pytest.mark.parametrize("offset", [0, 3])
@pytest.mark.parametrize("base", [10000.0, 500.0])
def test_rope_matches_numpy(offset, base):
    rope = RoPE(8, max_len=16, base=base)
    x = RNG.standard_normal((2, 3, 7, 8))
    np.testing.assert_allclose(rope.rotate(x, offset=offset), np_rope(x, offset, base),
                               rtol=0, atol=1e-12)
    np.testing.assert_allclose(rope({}, x, offset), np_rope(x, offset, base), atol=1e-12)


@given(m=st.integers(0, 60), n=st.integers(0, 60), shift=st.integers(-60, 60),
       seed=st.integers(0, 2**16))
def test_rope_dot_product_depends_only_on_relative_position(m, n, shift, seed):
    shift = max(shift, -min(m, n))  # positions stay >= 0 (and < max_len = 128)
    rng = np.random.default_rng(seed)
    q, k = rng.standard_normal((2, 1, 16))
    rope = RoPE(16, max_len=128)

    def score(i: int, j: int) -> float:
        return float(rope.rotate(q, offset=i)[0] @ rope.rotate(k, offset=j)[0])

    assert math.isclose(score(m, n), score(m + shift, n + shift), rel_tol=1e-9, abs_tol=1e-9)


def test_rope_offset_equals_slicing_a_longer_sequence_and_accepts_any_length():
    rope = RoPE(4, max_len=12)
    x = RNG.standard_normal((2, 12, 4))
    whole = rope.rotate(x)
    for offset, T in [(0, 12), (5, 3), (11, 1), (2, 0)]:
        part = rope.rotate(x[:, offset:offset + T], offset=offset)
        np.testing.assert_allclose(part, whole[:, offset:offset + T], atol=1e-12)
    traced = pyasg.jit(lambda x, off: rope.rotate(x, offset=off))(x[:, 5:8], np.int32(5))
    np.testing.assert_allclose(traced, whole[:, 5:8], atol=1e-12)
    # rotations keep each vector's length
    np.testing.assert_allclose(np.linalg.norm(whole, axis=-1), np.linalg.norm(x, axis=-1))


def test_rope_rejects_too_long_sequences_and_odd_dims():
    rope = RoPE(4, max_len=6)
    with pytest.raises(ShapeError, match="max_len=6"):
        rope.rotate(np.zeros((1, 7, 4)))
    with pytest.raises(ShapeError, match="max_len=6"):
        rope.rotate(np.zeros((1, 3, 4)), offset=4)
    with pytest.raises(ShapeError, match="offset"):
        rope.rotate(np.zeros((1, 3, 4)), offset=np.zeros(2, np.int32))
    with pytest.raises(PyasgError, match="even"):
        RoPE(5, max_len=6)


def test_rope_keeps_float32_and_gradcheck():
    rope = RoPE(6, max_len=10)
    assert rope.rotate(np.ones((2, 3, 6), np.float32)).dtype == np.float32
    check_grad(lambda x: rope.rotate(x, offset=4), RNG.standard_normal((2, 5, 6)), rtol=1e-5)


# --------------------------------------------------------------------------- ALiBi


def test_alibi_slopes_for_8_heads_are_powers_of_one_half():
    np.testing.assert_array_equal(ALiBi(8).slopes, [2.0 ** -k for k in range(1, 9)])


def test_alibi_slopes_for_6_heads_follow_the_reference_rule():
    # 6 is not a power of two: the 4-head slopes 2^(-8/4 * k) = 2^-2, 2^-4, 2^-6, 2^-8,
    # then every other slope of the 8-head sequence (2^-1, 2^-3, ...), the first 6 - 4
    expected = [2.0 ** -2, 2.0 ** -4, 2.0 ** -6, 2.0 ** -8, 2.0 ** -1, 2.0 ** -3]
    np.testing.assert_array_equal(ALiBi(6).slopes, expected)


@given(st.integers(1, 64))
def test_alibi_slopes_for_any_head_count(n):
    slopes = alibi_slopes(n)
    p = 2 ** int(math.log2(n))  # largest power of two <= n
    start = 2.0 ** (-8.0 / p)  # the paper: a geometric sequence from 2^(-8/p), ratio same
    np.testing.assert_allclose(slopes[:p], [start ** (k + 1) for k in range(p)], rtol=1e-12)
    interleaved = [(2.0 ** (-8.0 / (2 * p))) ** (2 * k + 1) for k in range(n - p)]
    np.testing.assert_allclose(slopes[p:], interleaved, rtol=1e-12)
    assert len(set(slopes.tolist())) == n and (slopes > 0).all() and (slopes < 1).all()


def test_alibi_bias_values_causal_and_not():
    alibi = ALiBi(2)
    m = alibi.slopes
    full = alibi.bias(3, 3)
    assert full.shape == (2, 3, 3) and full.dtype == np.float32
    for h in range(2):
        for i in range(3):
            for j in range(3):
                assert full[h, i, j] == np.float32(-m[h] * abs(i - j))
    causal = alibi.bias(2, 4, causal=True, dtype="float64")  # queries at positions 2, 3
    for h in range(2):
        for i in range(2):
            for j in range(4):
                expected = -np.inf if j > i + 2 else -m[h] * (i + 2 - j)
                assert causal[h, i, j] == expected
    scores = RNG.standard_normal((5, 2, 3, 3))
    np.testing.assert_allclose(alibi({}, scores, causal=True),
                               scores + alibi.bias(3, 3, True, "float64"))
    with pytest.raises(ShapeError, match="ALiBi"):
        alibi({}, np.zeros((3, 3, 3)))
    with pytest.raises(PyasgError, match="head"):
        ALiBi(0)
