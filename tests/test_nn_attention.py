"""MultiHeadAttention: an independent numpy reference for every mask kind, gradients,
the padding and causal guarantees, dropout, names, and a PyTorch cross-check."""

from __future__ import annotations

import math

import numpy as np
import pytest
from gradcheck import check_grad, projection
from hypothesis import given
from hypothesis import strategies as st
from test_nn_positional import np_rope

import pyasg
from pyasg.errors import PyasgError, ShapeError
from pyasg.nn import ROLES
from pyasg.nn.attention import MultiHeadAttention
from pyasg.nn.positional import ALiBi, RoPE
from pyasg.trace.tree import flatten_with_paths

E, H = 8, 4


def f64(tree: object) -> object:
    return pyasg.tree_map(lambda a: np.asarray(a, np.float64), tree)


def make(embed_dim: int = E, num_heads: int = H, seed: int = 0, **kw: object):
    mha = MultiHeadAttention(embed_dim, num_heads, **kw)
    params = f64(mha.init(pyasg.random.key(seed)))
    # PyTorch initialises the biases to zero; random ones test that they are used
    rng = np.random.default_rng(seed + 100)
    for sub in params.values():
        if "bias" in sub:
            sub["bias"] = rng.standard_normal(sub["bias"].shape)
    return mha, params


# --------------------------------------------------------------------------- numpy reference


def np_attention(params, q_in, k_in, v_in, num_heads, *, blocked=None, additive=None,
                 rope=False, dropout_keep=None, p=0.0):
    """Loops over batch, head and query. blocked: bool [B, H, T, S] (True = ignore);
    additive: float [B, H, T, S]. A query with no allowed key gets zero attention."""
    def proj(x, name):
        w = params[name]
        return x @ w["weight"].T + (w["bias"] if "bias" in w else 0.0)

    q, k, v = proj(q_in, "w_q"), proj(k_in, "w_k"), proj(v_in, "w_v")
    B, T, Em = q.shape
    S = k.shape[1]
    D = Em // num_heads
    joined = np.zeros((B, T, Em))
    weights = np.zeros((B, num_heads, T, S))
    for b in range(B):
        for h in range(num_heads):
            qh, kh, vh = (a[b, :, h * D:(h + 1) * D] for a in (q, k, v))
            if rope:
                qh, kh = np_rope(qh, S - T), np_rope(kh, 0)
            for i in range(T):
                s = np.array([qh[i] @ kh[j] / math.sqrt(D) for j in range(S)])
                if additive is not None:
                    s = s + additive[b, h, i]
                ok = np.isfinite(s)
                if blocked is not None:
                    ok &= ~blocked[b, h, i]
                w = np.zeros(S)
                if ok.any():
                    e = np.exp(s[ok] - s[ok].max())
                    w[ok] = e / e.sum()
                if dropout_keep is not None:
                    w = np.where(dropout_keep[b, h, i], w / (1 - p), 0.0)
                weights[b, h, i] = w
                joined[b, i, h * D:(h + 1) * D] = w @ vh
    out = joined @ params["w_o"]["weight"].T + params["w_o"].get("bias", 0.0)
    return out, weights


def causal_blocked(T: int, S: int) -> np.ndarray:
    """Query i is the (S - T + i)-th position; it must not see later keys."""
    return np.array([[j > S - T + i for j in range(S)] for i in range(T)])


# --------------------------------------------------------------------------- against numpy

B, T, S = 2, 5, 7
RNG = np.random.default_rng(1)
BOOL_TS = RNG.random((T, S)) < 0.3
BOOL_TS[:, 0] = False  # every query keeps a key (PyTorch gives NaN for a fully masked one)
FLOAT_TS = RNG.standard_normal((T, S))
BOOL_BHTS = RNG.random((B, H, T, S)) < 0.3
FLOAT_BHTS = RNG.standard_normal((B, H, T, S))
KPM = np.array([[False] * 5 + [True] * 2, [False] * 3 + [True] * 4])
KPM_FLOAT = np.where(KPM, -np.inf, RNG.standard_normal((B, S)))
BIAS_HTS = RNG.standard_normal((H, T, S))


def full(a: np.ndarray) -> np.ndarray:
    return np.broadcast_to(a, (B, H, T, S))


# name: (call kwargs, reference blocked [B,H,T,S], reference additive [B,H,T,S])
MASK_CASES = {
    "none": ({}, None, None),
    "bool_attn_mask_TS": ({"attn_mask": BOOL_TS}, full(BOOL_TS), None),
    "float_attn_mask_TS": ({"attn_mask": FLOAT_TS}, None, full(FLOAT_TS)),
    "bool_attn_mask_BHTS": ({"attn_mask": BOOL_BHTS}, BOOL_BHTS, None),
    "float_attn_mask_BHTS": ({"attn_mask": FLOAT_BHTS}, None, FLOAT_BHTS),
    "bool_attn_mask_torch_3d": ({"attn_mask": BOOL_BHTS.reshape(B * H, T, S)}, BOOL_BHTS, None),
    "float_attn_mask_torch_3d": ({"attn_mask": FLOAT_BHTS.reshape(B * H, T, S)}, None,
                                 FLOAT_BHTS),
    "float_attn_mask_B1TS": ({"attn_mask": FLOAT_BHTS[:, :1]}, None, full(FLOAT_BHTS[:, :1])),
    "key_padding_bool": ({"key_padding_mask": KPM}, full(KPM[:, None, None, :]), None),
    "key_padding_float": ({"key_padding_mask": KPM_FLOAT}, None,
                          full(KPM_FLOAT[:, None, None, :])),
    "causal": ({"is_causal": True}, full(causal_blocked(T, S)), None),
    "position_bias": ({"position_bias": BIAS_HTS}, None, full(BIAS_HTS)),
    "everything": ({"attn_mask": BOOL_TS, "key_padding_mask": KPM, "is_causal": True,
                    "position_bias": BIAS_HTS},
                   full(BOOL_TS) | full(KPM[:, None, None, :]) | full(causal_blocked(T, S)),
                   full(BIAS_HTS)),
}


@pytest.mark.parametrize("case", sorted(MASK_CASES))
def test_cross_attention_matches_numpy_for_each_mask_kind(case):
    kwargs, blocked, additive = MASK_CASES[case]
    mha, params = make(kdim=3, vdim=6)
    q, k, v = RNG.standard_normal((B, T, E)), RNG.standard_normal((B, S, 3)), \
        RNG.standard_normal((B, S, 6))
    out, w = mha(params, q, k, v, need_weights=True, **kwargs)
    ref_out, ref_w = np_attention(params, q, k, v, H, blocked=blocked, additive=additive)
    np.testing.assert_allclose(w, ref_w, rtol=0, atol=1e-6)
    np.testing.assert_allclose(out, ref_out, rtol=0, atol=1e-6)


@pytest.mark.parametrize("case", ["none", "bool_attn_mask_TS", "key_padding_bool", "everything"])
def test_traced_attention_matches_numpy(case):
    # the same cases through @trace, with the masks as traced inputs of the step
    kwargs, blocked, additive = MASK_CASES[case]
    mha, params = make()
    x, kv = RNG.standard_normal((B, T, E)), RNG.standard_normal((B, S, E))

    causal = kwargs.get("is_causal", False)
    masks = {name: mask for name, mask in kwargs.items() if name != "is_causal"}

    @pyasg.trace
    def run(params, x, kv, masks):
        return mha(params, x, kv, kv, is_causal=causal, **masks)

    ref, _ = np_attention(params, x, kv, kv, H, blocked=blocked, additive=additive)
    np.testing.assert_allclose(run(params, x, kv, masks), ref, rtol=0, atol=1e-6)


@given(b=st.integers(1, 3), t=st.integers(1, 6), s=st.integers(1, 6),
       heads=st.sampled_from([1, 2, 4]), causal=st.booleans(), seed=st.integers(0, 2**16))
def test_any_batch_and_lengths_match_numpy(b, t, s, heads, causal, seed):
    rng = np.random.default_rng(seed)
    mha, params = make(embed_dim=4, num_heads=heads, seed=seed % 7)
    q, kv = rng.standard_normal((b, t, 4)), rng.standard_normal((b, s, 4))
    kpm = rng.random((b, s)) < 0.3
    out = mha(params, q, kv, kv, key_padding_mask=kpm, is_causal=causal)
    blocked = np.broadcast_to(kpm[:, None, None, :], (b, heads, t, s))
    if causal:
        blocked = blocked | causal_blocked(t, s)
    ref, _ = np_attention(params, q, kv, kv, heads, blocked=blocked)
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-6)


@pytest.mark.parametrize("b, t, s", [(0, 3, 3), (2, 0, 3), (2, 3, 0), (1, 1, 1)])
def test_empty_and_single_element_shapes(b, t, s):
    mha, params = make()
    q, kv = RNG.standard_normal((b, t, E)), RNG.standard_normal((b, s, E))
    out = pyasg.jit(lambda p, q, kv: mha(p, q, kv, kv, is_causal=True))(params, q, kv)
    assert out.shape == (b, t, E) and np.isfinite(out).all()
    if s == 0 and b * t:  # no keys: every query is fully masked
        np.testing.assert_allclose(out, np.broadcast_to(params["w_o"]["bias"], out.shape))


def test_self_attention_is_the_default_and_matches_numpy():
    mha, params = make()
    x = RNG.standard_normal((3, 4, E))
    ref, _ = np_attention(params, x, x, x, H)
    np.testing.assert_allclose(mha(params, x), ref, rtol=0, atol=1e-6)


def test_rope_and_alibi_inside_attention_match_numpy():
    mha, params = make()
    q, kv = RNG.standard_normal((B, 3, E)), RNG.standard_normal((B, 6, E))
    alibi = ALiBi(H)
    bias = alibi.bias(3, 6, causal=True, dtype="float64")
    out = mha(params, q, kv, kv, rope=RoPE(E // H, max_len=16), position_bias=bias)
    # ALiBi's causal bias written out here: -slope * distance, -inf for the future
    slopes = np.array([2.0 ** (-8.0 * (h + 1) / H) for h in range(H)])
    dist = np.array([[(6 - 3 + i) - j for j in range(6)] for i in range(3)], float)
    ref_bias = np.where(dist >= 0, -slopes[:, None, None] * dist, -np.inf)
    ref, _ = np_attention(params, q, kv, kv, H, rope=True,
                          additive=np.broadcast_to(ref_bias, (B, H, 3, 6)))
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-6)


def test_unbatched_and_sequence_first_inputs_agree_with_batch_first():
    mha, params = make()
    x = RNG.standard_normal((2, 5, E))
    kpm = np.array([[False, False, True, False, True], [False] * 5])
    batched = mha(params, x, key_padding_mask=kpm, is_causal=True)
    seq_first = MultiHeadAttention(E, H, batch_first=False)
    out_sf = seq_first(params, x.transpose(1, 0, 2), key_padding_mask=kpm, is_causal=True)
    np.testing.assert_allclose(out_sf.transpose(1, 0, 2), batched, rtol=0, atol=1e-12)
    one = mha(params, x[0], key_padding_mask=kpm[0], is_causal=True)
    np.testing.assert_allclose(one, batched[0], rtol=0, atol=1e-12)


def test_weights_are_per_head_or_averaged():
    mha, params = make()
    x = RNG.standard_normal((2, 5, E))
    _, w = mha(params, x, need_weights=True)
    _, avg = mha(params, x, need_weights=True, average_attn_weights=True)
    assert w.shape == (2, H, 5, 5) and avg.shape == (2, 5, 5)
    np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-12)
    np.testing.assert_allclose(avg, w.mean(1), atol=1e-12)


def test_no_bias_has_no_bias_parameters():
    mha = MultiHeadAttention(E, H, bias=False)
    params = f64(mha.init(pyasg.random.key(0)))
    assert all(set(p) == {"weight"} for p in params.values())
    x = RNG.standard_normal((1, 3, E))
    ref, _ = np_attention(params, x, x, x, H)
    np.testing.assert_allclose(mha(params, x), ref, atol=1e-6)


# --------------------------------------------------------------------------- guarantees


def test_fully_masked_query_gives_zero_attention_not_nan():
    mha, params = make()
    x = RNG.standard_normal((2, 3, E))
    kpm = np.array([[True, True, True], [False, True, True]])
    out, w = mha(params, x, key_padding_mask=kpm, need_weights=True)
    assert np.isfinite(out).all()
    assert (w[0] == 0).all()
    np.testing.assert_allclose(out[0], np.broadcast_to(params["w_o"]["bias"], (3, E)))
    # the same through a float mask of -inf, and with no keys at all
    out_inf = mha(params, x, attn_mask=np.full((3, 3), -np.inf))
    np.testing.assert_allclose(out_inf, np.broadcast_to(params["w_o"]["bias"], (2, 3, E)))
    no_keys = mha(params, x, RNG.standard_normal((2, 0, E)), RNG.standard_normal((2, 0, E)))
    np.testing.assert_allclose(no_keys, np.broadcast_to(params["w_o"]["bias"], (2, 3, E)))
    # and the gradient stays finite
    grads = pyasg.grad(lambda p, x: pyasg.sum(mha(p, x, key_padding_mask=kpm) ** 2),
                       argnums=(0, 1))(params, x)
    assert all(np.isfinite(g).all() for g in pyasg.tree_leaves(grads))


@given(seed=st.integers(0, 2**16), b=st.integers(1, 3), t=st.integers(1, 6))
def test_padded_keys_and_values_change_no_unpadded_output(seed, b, t):
    rng = np.random.default_rng(seed)
    mha, params = make(seed=seed % 5)
    x = rng.standard_normal((b, t, E))
    kpm = rng.random((b, t)) < 0.4
    kpm[:, 0] = False  # at least one real token per sequence
    before = mha(params, x, key_padding_mask=kpm)
    x2 = np.where(kpm[..., None], rng.standard_normal((b, t, E)) * 100, x)
    after = mha(params, x2, key_padding_mask=kpm)
    keep = ~kpm
    np.testing.assert_array_equal(after[keep], before[keep])


@given(seed=st.integers(0, 2**16), t=st.integers(1, 8), data=st.data())
def test_causal_outputs_ignore_future_positions(seed, t, data):
    cut = data.draw(st.integers(0, t - 1))
    rng = np.random.default_rng(seed)
    mha, params = make(seed=seed % 5)
    x = rng.standard_normal((2, t, E))
    x2 = x.copy()
    x2[:, cut + 1:] = rng.standard_normal((2, t - cut - 1, E)) * 100
    before, after = mha(params, x, is_causal=True), mha(params, x2, is_causal=True)
    np.testing.assert_array_equal(after[:, :cut + 1], before[:, :cut + 1])
    if cut + 1 < t:  # and without the mask the future does matter
        assert not np.allclose(mha(params, x)[:, :cut + 1], mha(params, x2)[:, :cut + 1])


# --------------------------------------------------------------------------- dropout


def test_attention_dropout_is_deterministic_per_key_and_off_when_not_training():
    mha, params = make(dropout=0.5)
    x = RNG.standard_normal((2, 5, E))

    @pyasg.trace
    def run(params, x, k):
        return mha(params, x, rng=k, training=True, need_weights=True)

    k1, k2 = pyasg.random.key(1), pyasg.random.key(2)
    out1, w1 = run(params, x, k1)
    out1b, _ = run(params, x, k1)
    out2, _ = run(params, x, k2)
    np.testing.assert_array_equal(out1, out1b)
    assert not np.allclose(out1, out2)
    # training=False: no dropout (and no key needed), exactly the p=0 layer
    plain, w0 = mha(params, x, need_weights=True)
    np.testing.assert_array_equal(mha(params, x, rng=k1, training=False), plain)
    np.testing.assert_array_equal(MultiHeadAttention(E, H)(params, x), plain)
    # in training, each weight is dropped or scaled by 1/(1-p); the output uses them
    dropped = w1 == 0
    assert 0.2 < dropped.mean() < 0.8
    np.testing.assert_allclose(w1[~dropped], w0[~dropped] * 2.0, rtol=1e-12)
    ref, _ = np_attention(params, x, x, x, H, dropout_keep=~dropped, p=0.5)
    np.testing.assert_allclose(out1, ref, atol=1e-6)


def test_dropout_in_training_needs_a_key():
    mha, params = make(dropout=0.1)
    with pytest.raises(PyasgError, match="rng"):
        mha(params, np.zeros((1, 2, E)), training=True)


# --------------------------------------------------------------------------- gradients


def check_layer_grad(apply, params, *inputs, rtol=1e-5, zero_grad=("w_k.bias",)):
    """check_grad with respect to every input and every parameter leaf.

    Without RoPE the key projection's bias adds q·b_k to every score of a query alike,
    which softmax ignores: its gradient is exactly zero, and central differences give
    only rounding noise, so a relative error means nothing there. Leaves named in
    `zero_grad` are checked to have a ~0 gradient instead.
    """
    pairs, tree = flatten_with_paths(params)
    leaves = [leaf for _, leaf in pairs]
    n = len(inputs)

    def f(*args):
        return apply(pyasg.unflatten(tree, list(args[n:])), *args[:n])

    zero = [n + i for i, (path, _) in enumerate(pairs) if path in zero_grad]
    rest = [i for i in range(n + len(leaves)) if i not in zero]
    check_grad(f, *inputs, *leaves, argnums=tuple(rest), rtol=rtol)
    r = projection(np.shape(pyasg.jit(f)(*inputs, *leaves)))
    for i in zero:
        g = pyasg.grad(lambda *a: pyasg.sum(f(*a) * r), argnums=i)(*inputs, *leaves)
        assert np.abs(g).max() < 1e-12


def test_gradcheck_self_attention_with_causal_and_padding_masks():
    # batch 2, sequence 5, 4 heads; the first sequence has two padded positions
    mha, params = make()
    x = RNG.standard_normal((2, 5, E))
    kpm = np.array([[False, False, False, True, True], [False] * 5])
    check_layer_grad(lambda p, x: mha(p, x, key_padding_mask=kpm, is_causal=True), params, x)


def test_gradcheck_cross_attention_query_key_value_and_position_bias():
    mha, params = make(kdim=3, vdim=5)
    q, k, v = (RNG.standard_normal(s) for s in ((2, 4, E), (2, 6, 3), (2, 6, 5)))
    bias = RNG.standard_normal((H, 4, 6))
    check_layer_grad(lambda p, q, k, v, bias: mha(p, q, k, v, attn_mask=BOOL_TS[:4, :6],
                                                  position_bias=bias),
                     params, q, k, v, bias)


def test_gradcheck_attention_with_rope_and_float_mask():
    mha, params = make()
    x = RNG.standard_normal((2, 5, E))
    rope = RoPE(E // H, max_len=8)
    check_layer_grad(lambda p, x: mha(p, x, attn_mask=FLOAT_TS[:, :5], rope=rope), params, x,
                     zero_grad=())  # rotation by key position: b_k now matters


# --------------------------------------------------------------------------- names and init


def test_parameter_names_kinds_and_roles():
    mha = MultiHeadAttention(E, H, kdim=3, vdim=5)
    params = mha.init(pyasg.random.key(0))
    assert {name: {k: v.shape for k, v in p.items()} for name, p in params.items()} == {
        "w_q": {"weight": (E, E), "bias": (E,)}, "w_k": {"weight": (E, 3), "bias": (E,)},
        "w_v": {"weight": (E, 5), "bias": (E,)}, "w_o": {"weight": (E, E), "bias": (E,)}}
    assert list(mha.children()) == ["w_q", "w_k", "w_v", "w_o"]
    kinds = mha.param_kinds(params, prefix="attn")
    assert kinds["attn.w_q.weight"] == "Linear.weight"
    assert kinds["attn.w_o.bias"] == "Linear.bias"
    for name in ("w_q", "w_k", "w_v", "w_o"):
        assert ROLES[f"MultiHeadAttention.{name}"]
    assert "query" in ROLES["MultiHeadAttention.w_q"]


def test_init_follows_pytorch():
    mha = MultiHeadAttention(16, 4)
    p = mha.init(pyasg.random.key(3))
    bound = math.sqrt(6.0 / (16 + 3 * 16))  # Xavier over the packed [3E, E] in_proj_weight
    for name in ("w_q", "w_k", "w_v"):
        w = p[name]["weight"]
        assert w.dtype == np.float32 and np.abs(w).max() <= bound
        assert np.abs(w).max() > 0.8 * bound
        assert (p[name]["bias"] == 0).all()
    assert np.abs(p["w_o"]["weight"]).max() <= 1 / 4 and (p["w_o"]["bias"] == 0).all()
    assert not np.array_equal(p["w_q"]["weight"], p["w_k"]["weight"])
    separate = MultiHeadAttention(16, 4, kdim=8).init(pyasg.random.key(3))
    assert np.abs(separate["w_k"]["weight"]).max() <= math.sqrt(6.0 / (16 + 8))


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("kwargs, match", [
    ({"attn_mask": np.zeros((5, 4), bool)}, "attn_mask"),
    ({"attn_mask": np.zeros((3, 5, 5), bool)}, "attn_mask"),
    ({"attn_mask": np.zeros((5, 5), np.int32)}, "bool"),
    ({"key_padding_mask": np.zeros((2, 4), bool)}, "key_padding_mask"),
    ({"position_bias": np.zeros((3, 5, 5))}, "position_bias"),
])
def test_bad_masks_raise_shape_errors(kwargs, match):
    mha, params = make()
    with pytest.raises(ShapeError, match=match):
        mha(params, np.zeros((2, 5, E)), **kwargs)


def test_bad_construction_and_inputs_raise():
    with pytest.raises(PyasgError, match="multiple of num_heads"):
        MultiHeadAttention(10, 4)
    mha, params = make()
    with pytest.raises(ShapeError, match="query"):
        mha(params, np.zeros((2, 5, E + 1)))
    with pytest.raises(ShapeError, match="batch size"):
        mha(params, np.zeros((2, 5, E)), np.zeros((3, 5, E)))
    with pytest.raises(ShapeError, match="T <= S"):
        mha(params, np.zeros((1, 5, E)), np.zeros((1, 3, E)), rope=RoPE(E // H, 8))


# --------------------------------------------------------------------------- PyTorch


def test_matches_torch_multihead_attention():
    torch = pytest.importorskip("torch")
    mha, params = make()
    tm = torch.nn.MultiheadAttention(E, H, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        tm.in_proj_weight.copy_(torch.from_numpy(np.concatenate(
            [params[n]["weight"] for n in ("w_q", "w_k", "w_v")])))
        tm.in_proj_bias.copy_(torch.from_numpy(np.concatenate(
            [params[n]["bias"] for n in ("w_q", "w_k", "w_v")])))
        tm.out_proj.weight.copy_(torch.from_numpy(params["w_o"]["weight"]))
        tm.out_proj.bias.copy_(torch.from_numpy(params["w_o"]["bias"]))
    tm.eval()
    q, kv = RNG.standard_normal((B, T, E)), RNG.standard_normal((B, S, E))
    causal = np.triu(np.ones((T, S), bool), 1)  # top-left: torch's and ours agree at T == S
    for kwargs in ({}, {"attn_mask": BOOL_TS}, {"attn_mask": FLOAT_TS},
                   {"key_padding_mask": KPM}, {"attn_mask": BOOL_TS, "key_padding_mask": KPM}):
        theirs, their_w = tm(*(torch.from_numpy(a) for a in (q, kv, kv)),
                             **{k: torch.from_numpy(v) for k, v in kwargs.items()},
                             average_attn_weights=False)
        ours, our_w = mha(params, q, kv, kv, need_weights=True, **kwargs)
        np.testing.assert_allclose(ours, theirs.detach().numpy(), atol=1e-10)
        np.testing.assert_allclose(our_w, their_w.detach().numpy(), atol=1e-10)
    x = q
    theirs, _ = tm(*(torch.from_numpy(x),) * 3, attn_mask=torch.from_numpy(causal[:, :T]),
                   is_causal=True)
    np.testing.assert_allclose(mha(params, x, is_causal=True), theirs.detach().numpy(),
                               atol=1e-10)
