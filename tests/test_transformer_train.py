"""FeedForward, TransformerBlock and LayerNorm on [B, T, E]: numpy references written
here, gradients for every input and parameter, names, dropout; and a block that learns
a copy task with an Adam step written here, traced as one graph."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from gradcheck import check_grad
from scipy.special import erf

import pyasg
from pyasg.errors import PyasgError
from pyasg.nn import ROLES
from pyasg.nn.layers import LayerNorm, Linear
from pyasg.nn.positional import LearnedPositionalEmbedding
from pyasg.nn.transformer import FeedForward, TransformerBlock
from pyasg.trace.tree import flatten_with_paths

RNG = np.random.default_rng(0)


def f64(tree: object) -> object:
    return pyasg.tree_map(lambda a: np.asarray(a, np.float64), tree)


def randomise(params: dict, seed: int = 1) -> dict:
    """Replace every leaf by N(0, 0.5²) values: zero biases and unit gains hide bugs."""
    rng = np.random.default_rng(seed)
    return pyasg.tree_map(lambda a: rng.standard_normal(np.shape(a)) * 0.5 + (
        1.0 if np.all(np.asarray(a) == 1.0) else 0.0), params)


def check_layer_grad(apply, params, *inputs, rtol=1e-5, zero_grad=()):
    """check_grad with respect to every input and every parameter leaf; leaves in
    `zero_grad` (whose gradient is zero by symmetry) are checked to be ~0 instead."""
    pairs, tree = flatten_with_paths(params)
    leaves = [leaf for _, leaf in pairs]
    n = len(inputs)

    def f(*args):
        return apply(pyasg.unflatten(tree, list(args[n:])), *args[:n])

    zero = [n + i for i, (path, _) in enumerate(pairs) if path in zero_grad]
    assert len(zero) == len(zero_grad)
    check_grad(f, *inputs, *leaves,
               argnums=tuple(i for i in range(n + len(leaves)) if i not in zero), rtol=rtol)
    for i in zero:
        g = pyasg.grad(lambda *a: pyasg.sum(f(*a) ** 2), argnums=i)(*inputs, *leaves)
        assert np.abs(g).max() < 1e-12


# --------------------------------------------------------------------------- numpy references


def np_layer_norm(x, w, b, eps=1e-5):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def np_linear(x, p):
    return x @ p["weight"].T + p["bias"]


NP_ACT = {
    "gelu": lambda x: 0.5 * x * (1 + erf(x / math.sqrt(2))),
    "gelu_tanh": lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi)
                                                 * (x + 0.044715 * x ** 3))),
    "relu": lambda x: np.maximum(x, 0),
    "silu": lambda x: x / (1 + np.exp(-x)),
}


def np_attention(p, x, heads, blocked):
    """Vectorised self-attention; blocked [B, 1|H, T, S] bool, True = ignore."""
    B, T, E = x.shape
    D = E // heads

    def split(a):
        return a.reshape(B, T, heads, D).transpose(0, 2, 1, 3)

    q, k, v = (split(np_linear(x, p[n])) for n in ("w_q", "w_k", "w_v"))
    s = np.einsum("bhtd,bhsd->bhts", q, k) / math.sqrt(D)
    s = np.where(blocked, -np.inf, s)
    e = np.exp(s - s.max(-1, keepdims=True))
    w = e / e.sum(-1, keepdims=True)
    o = np.einsum("bhts,bhsd->bhtd", w, v).transpose(0, 2, 1, 3).reshape(B, T, E)
    return np_linear(o, p["w_o"])


def np_block(p, x, heads, blocked, act="gelu"):
    n1 = np_layer_norm(x, p["norm1"]["weight"], p["norm1"]["bias"])
    x = x + np_attention(p["attn"], n1, heads, blocked)
    n2 = np_layer_norm(x, p["norm2"]["weight"], p["norm2"]["bias"])
    return x + np_linear(NP_ACT[act](np_linear(n2, p["ff"]["fc1"])), p["ff"]["fc2"])


# --------------------------------------------------------------------------- LayerNorm on [B, T, E]


def test_layer_norm_over_embedding_matches_numpy_and_gradcheck():
    ln = LayerNorm(6)
    params = randomise(f64(ln.init(pyasg.random.key(0))))
    x = RNG.standard_normal((3, 4, 6)) * 3 + 1
    np.testing.assert_allclose(ln(params, x), np_layer_norm(x, params["weight"],
                                                            params["bias"]), atol=1e-12)
    check_layer_grad(ln, params, x)


# --------------------------------------------------------------------------- FeedForward


@pytest.mark.parametrize("act", sorted(NP_ACT))
def test_feed_forward_matches_numpy_for_each_activation(act):
    ff = FeedForward(4, activation=act)
    params = randomise(f64(ff.init(pyasg.random.key(0))))
    x = RNG.standard_normal((2, 3, 4))
    expected = np_linear(NP_ACT[act](np_linear(x, params["fc1"])), params["fc2"])
    np.testing.assert_allclose(ff(params, x), expected, atol=1e-10)


def test_feed_forward_names_defaults_custom_activation_and_errors():
    ff = FeedForward(4)
    params = ff.init(pyasg.random.key(0))
    assert {k: {n: a.shape for n, a in v.items()} for k, v in params.items()} == {
        "fc1": {"weight": (16, 4), "bias": (16,)}, "fc2": {"weight": (4, 16), "bias": (4,)}}
    assert ff.param_kinds(params, "ff") == {"ff.fc1.weight": "Linear.weight",
                                            "ff.fc1.bias": "Linear.bias",
                                            "ff.fc2.weight": "Linear.weight",
                                            "ff.fc2.bias": "Linear.bias"}
    assert ROLES["FeedForward.fc1"] and ROLES["FeedForward.fc2"]
    square = FeedForward(4, hidden_dim=3, activation=lambda h: h * h)
    p = f64(square.init(pyasg.random.key(1)))
    x = RNG.standard_normal((5, 4))
    np.testing.assert_allclose(square(p, x), np_linear(np_linear(x, p["fc1"]) ** 2, p["fc2"]),
                               atol=1e-12)
    with pytest.raises(PyasgError, match="unknown activation"):
        FeedForward(4, activation="swishy")
    with pytest.raises(PyasgError, match="key"):
        FeedForward(4, dropout=0.5)(params, np.ones((1, 4), np.float32), training=True)


def test_feed_forward_dropout_follows_its_key():
    ff = FeedForward(4, dropout=0.5)
    p = f64(ff.init(pyasg.random.key(0)))
    x = RNG.standard_normal((8, 4))
    run = pyasg.jit(lambda p, x, k: ff(p, x, key=k, training=True))
    k1, k2 = pyasg.random.key(1), pyasg.random.key(2)
    np.testing.assert_array_equal(run(p, x, k1), run(p, x, k1))
    assert not np.allclose(run(p, x, k1), run(p, x, k2))
    np.testing.assert_array_equal(ff(p, x, key=k1), ff(p, x))  # training=False: no dropout


def test_gradcheck_feed_forward():
    ff = FeedForward(4, hidden_dim=6, activation="gelu")
    params = randomise(f64(ff.init(pyasg.random.key(0))))
    check_layer_grad(ff, params, RNG.standard_normal((2, 3, 4)))


# --------------------------------------------------------------------------- TransformerBlock


def test_block_matches_numpy_with_masks():
    block = TransformerBlock(8, 2, ff_hidden=12)
    params = randomise(f64(block.init(pyasg.random.key(0))))
    x = RNG.standard_normal((2, 5, 8))
    kpm = np.array([[False, False, False, True, True], [False] * 5])
    causal = np.triu(np.ones((5, 5), bool), 1)
    out = block(params, x, key_padding_mask=kpm, is_causal=True)
    np.testing.assert_allclose(out, np_block(params, x, 2, kpm[:, None, None] | causal),
                               atol=1e-10)
    causal_block = TransformerBlock(8, 2, ff_hidden=12, causal=True, activation="relu")
    np.testing.assert_allclose(causal_block(params, x),
                               np_block(params, x, 2, causal[None, None], "relu"), atol=1e-10)


def test_block_names_kinds_and_roles():
    block = TransformerBlock(8, 2)
    kinds = block.param_kinds(prefix="blocks.0")
    assert kinds["blocks.0.norm1.weight"] == "LayerNorm.weight"
    assert kinds["blocks.0.attn.w_q.weight"] == "Linear.weight"
    assert kinds["blocks.0.ff.fc2.bias"] == "Linear.bias"
    assert len(kinds) == 2 * 2 + 4 * 2 + 2 * 2
    assert list(block.children()) == ["norm1", "attn", "norm2", "ff"]
    for name in ("norm1", "attn", "norm2", "ff"):
        assert ROLES[f"TransformerBlock.{name}"]
    assert block.init(pyasg.random.key(0))["ff"]["fc1"]["weight"].shape == (32, 8)


def test_block_dropout_is_deterministic_per_key_and_off_by_default():
    block = TransformerBlock(8, 2, dropout=0.3)
    p = f64(block.init(pyasg.random.key(0)))
    x = RNG.standard_normal((2, 4, 8))
    run = pyasg.jit(lambda p, x, k: block(p, x, key=k, training=True))
    k1 = pyasg.random.key(1)
    np.testing.assert_array_equal(run(p, x, k1), run(p, x, k1))
    assert not np.allclose(run(p, x, k1), run(p, x, pyasg.random.key(2)))
    np.testing.assert_array_equal(block(p, x, rng=k1), TransformerBlock(8, 2)(p, x))
    with pytest.raises(PyasgError, match="key"):
        block(p, x, training=True)


def test_gradcheck_block_with_causal_and_padding_masks():
    block = TransformerBlock(8, 2, ff_hidden=8, causal=True)
    params = randomise(f64(block.init(pyasg.random.key(0))))
    x = RNG.standard_normal((2, 4, 8))
    kpm = np.array([[False, False, False, True], [False] * 4])
    check_layer_grad(lambda p, x: block(p, x, key_padding_mask=kpm), params, x,
                     zero_grad=("attn.w_k.bias",))  # softmax ignores a per-query shift


# --------------------------------------------------------------------------- training


def log_softmax(z):
    m = pyasg.stop_gradient(pyasg.max(z, axis=-1, keepdims=True))
    return z - m - pyasg.log(pyasg.sum(pyasg.exp(z - m), axis=-1, keepdims=True))


def adam(params, grads, m, v, t, lr=3e-3, b1=0.9, b2=0.999, eps=1e-8):
    """Adam (Kingma & Ba) with bias correction; t is the new step number (traced)."""
    m = pyasg.tree_map(lambda m, g: b1 * m + (1 - b1) * g, m, grads)
    v = pyasg.tree_map(lambda v, g: b2 * v + (1 - b2) * g * g, v, grads)
    c1, c2 = 1.0 - pyasg.power(b1, t), 1.0 - pyasg.power(b2, t)
    params = pyasg.tree_map(lambda p, m, v: p - lr * (m / c1) / (pyasg.sqrt(v / c2) + eps),
                            params, m, v)
    return params, m, v


def test_block_learns_to_copy_the_previous_token():
    """Causal block, learned token and position tables, linear readout: the output at
    position t must name the token at t - 1, so attention has to look one step back."""
    V, E, H, B, T = 12, 32, 4, 4, 16
    block = TransformerBlock(E, H, causal=True)
    pos = LearnedPositionalEmbedding(T, E, std=0.5)
    readout = Linear(E, V)
    keys = pyasg.random.split(pyasg.random.key(0), 4)
    params = {"tok": np.asarray(pyasg.random.normal(keys[0], (V, E))) * 0.5,
              "pos": pos.init(keys[1]), "block": block.init(keys[2]),
              "out": readout.init(keys[3])}

    def loss_fn(params, ids):
        x = pos(params["pos"], pyasg.take(params["tok"], ids, axis=0))
        logits = readout(params["out"], block(params["block"], x))[:, 1:]
        target = pyasg.one_hot(ids[:, :-1], V)
        return -pyasg.mean(pyasg.sum(target * log_softmax(logits), axis=-1))

    @pyasg.trace
    def step(params, m, v, t, ids):
        loss, grads = pyasg.value_and_grad(loss_fn)(params, ids)
        t = t + 1.0
        params, m, v = adam(params, grads, m, v, t)
        return params, m, v, t, loss

    zeros = pyasg.tree_map(np.zeros_like, params)
    m, v, t = zeros, zeros, np.float32(0.0)
    data = np.random.default_rng(0)
    losses = []
    start = time.perf_counter()
    for _ in range(300):
        ids = data.integers(0, V, (B, T)).astype(np.int32)  # a fresh batch every step
        params, m, v, t, loss = step(params, m, v, t, ids)
        losses.append(float(loss))
    elapsed = time.perf_counter() - start
    assert step.cache_size == 1  # one graph, traced once
    first, last = np.mean(losses[:5]), np.mean(losses[-10:])
    assert first > 2.0  # about ln(12) = 2.48 at the start
    assert last < first / 10, (first, last, elapsed)
