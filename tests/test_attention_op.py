"""The fused attention primitive: values against a per-row loop and PyTorch for every mask
kind, NaN and fully masked rows, gradients against central differences, the wgpu
kernels against the reference on lavapipe (partial tiles, every op), no T x S buffer on
wgpu, and MultiHeadAttention on the primitive."""

from __future__ import annotations

import math

import numpy as np
import pytest
from gradcheck import check_grad
from hypothesis import given, settings
from hypothesis import strategies as st
from wgpu_util import WGPU, require_wgpu

import pyasg
from pyasg import nn
from pyasg.asg import ops
from pyasg.asg.graph import GraphBuilder
from pyasg.asg.types import TensorType
from pyasg.errors import BackendError, GradError, ShapeError
from pyasg.kernels import lower
from pyasg.kernels.reference.attention import KERNELS as REFERENCE
from pyasg.kernels.wgpu import WgpuBackend
from pyasg.kernels.wgpu import attention as wgpu_attention
from pyasg.kernels.wgpu.attention import MAX_HEAD_DIM

sdpa = pyasg.scaled_dot_product_attention
NEG = -np.inf


# --------------------------------------------------------------------------- an independent loop


def loop_attention(q, k, v, bias=None, is_causal=False, scale=None):  # noqa: ANN001, ANN201
    """Per (batch, head, query): the keys it sees, their scores, a softmax, the values.
    A NaN score makes the row NaN; a row of -inf scores gives weights 0."""
    B, H, T, D = q.shape
    S = k.shape[2]
    scale = 1 / math.sqrt(D) if scale is None else scale
    bias = np.broadcast_to(0.0 if bias is None else bias, (B, H, T, S))
    out = np.zeros((B, H, T, v.shape[-1]))
    for b in range(B):
        for h in range(H):
            for i in range(T):
                n = min(max(i + S - T + 1, 0), S) if is_causal else S
                s = np.array([scale * q[b, h, i] @ k[b, h, j] + bias[b, h, i, j]
                              for j in range(n)])
                w = np.zeros(n)
                if np.isnan(s).any():
                    w[:] = np.nan
                elif (s > NEG).any():
                    e = np.exp(s[s > NEG] - s.max())
                    w[s > NEG] = e / e.sum()
                out[b, h, i] = w @ v[b, h, :n] if n else 0.0
    return out


def arrays(seed: int, B=2, H=2, T=5, S=7, D=4, Dv=3):  # noqa: ANN001, ANN201
    rng = np.random.default_rng(seed)
    return tuple(rng.standard_normal(shape) for shape in
                 ((B, H, T, D), (B, H, S, D), (B, H, S, Dv)))


def key_padding(B: int, S: int, pad: dict[int, int]) -> np.ndarray:
    """A [B, 1, 1, S] bias: -inf on the last pad[b] keys of batch b."""
    bias = np.zeros((B, 1, 1, S))
    for b, n in pad.items():
        bias[b, ..., S - n:] = NEG
    return bias


RNG = np.random.default_rng(7)
#: name: (T, S, bias or None, is_causal)
MASKS = {
    "none": (5, 7, None, False),
    "causal": (6, 6, None, True),
    "key_padding": (5, 7, key_padding(2, 7, {1: 3}), False),
    "additive_TS": (5, 7, RNG.standard_normal((5, 7)), False),
    "combined": (6, 6, key_padding(2, 6, {0: 2}) + RNG.standard_normal((2, 1, 6, 6)), True),
    "cross_T_lt_S_causal": (3, 8, None, True),
    "cross_T_gt_S_causal": (8, 3, None, True),  # the first 5 queries see no key: 0
    "fully_masked_rows": (5, 7, key_padding(2, 7, {0: 7}), False),
    "alibi_like": (6, 6, -0.5 * np.abs(np.arange(6)[:, None] - np.arange(6)), True),
}


@pytest.mark.parametrize("case", sorted(MASKS))
def test_forward_equals_a_per_row_loop_for_each_mask_kind(case: str) -> None:
    T, S, bias, causal = MASKS[case]
    q, k, v = arrays(1, T=T, S=S)
    want = loop_attention(q, k, v, bias, causal)
    np.testing.assert_allclose(sdpa(q, k, v, bias, is_causal=causal), want, atol=1e-12)
    traced = pyasg.jit(lambda q, k, v: sdpa(q, k, v, bias, is_causal=causal))(q, k, v)
    np.testing.assert_allclose(traced, want, atol=1e-12)


@pytest.mark.parametrize("case", sorted(MASKS))
def test_forward_equals_torch_scaled_dot_product_attention(case: str) -> None:
    torch = pytest.importorskip("torch")
    T, S, bias, causal = MASKS[case]
    q, k, v = arrays(2, T=T, S=S)
    mask = np.zeros((T, S)) if bias is None else np.broadcast_to(bias, (2, 2, T, S))
    if causal:  # torch's is_causal aligns top-left for T != S: give ours as a mask
        mask = np.where(np.arange(S)[None, :] > np.arange(T)[:, None] + S - T, NEG, mask)
    want = torch.nn.functional.scaled_dot_product_attention(
        *(torch.from_numpy(np.ascontiguousarray(a)) for a in (q, k, v)),
        attn_mask=torch.from_numpy(np.ascontiguousarray(mask))).numpy()
    np.testing.assert_allclose(sdpa(q, k, v, bias, is_causal=causal), want, atol=1e-12)
    if case == "fully_masked_rows":
        assert (want[0] == 0).all()  # PyTorch >= 2.5: 0, not NaN


def test_the_bthd_layout_is_the_bhtd_one_transposed() -> None:
    q, k, v = arrays(11, T=4, S=6)
    bias = key_padding(2, 6, {1: 2})
    want = sdpa(q, k, v, bias, is_causal=True)
    t = [np.ascontiguousarray(np.swapaxes(a, 1, 2)) for a in (q, k, v)]
    got = sdpa(*t, bias, is_causal=True, layout="bthd")
    assert got.shape == (2, 4, 2, 3)
    np.testing.assert_allclose(np.swapaxes(got, 1, 2), want, atol=1e-12)
    check_grad(lambda q, k, v: sdpa(q, k, v, bias, is_causal=True, layout="bthd"), *t,
               argnums=(0, 1, 2))


def test_float32_stays_float32_and_scale_is_used() -> None:
    q, k, v = (a.astype(np.float32) for a in arrays(3))
    out = sdpa(q, k, v, scale=0.3)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, loop_attention(q, k, v, scale=0.3), atol=1e-6)


def test_nan_in_an_input_reaches_exactly_the_rows_that_read_it() -> None:
    q, k, v = arrays(4, T=4, S=4)
    q[0, 0, 1, 2] = np.nan      # row 1 of (0, 0)
    k[0, 1, 3, 0] = np.nan      # key 3 of (0, 1): seen only by query 3 under causality
    v[1, 0, 2, 1] = np.nan      # value 2 of (1, 0): rows 2 and 3
    bias = np.zeros((2, 2, 4, 4))
    bias[1, 1, 0, 0] = np.nan   # one score of row 0 of (1, 1)
    bias[1, 1, 2, 3] = np.nan   # hidden from row 2 by the causal mask: never read
    out = sdpa(q, k, v, bias, is_causal=True)
    np.testing.assert_array_equal(np.isnan(out).any(-1), [
        [[False, True, False, False], [False, False, False, True]],
        [[False, False, True, True], [True, False, False, False]]])
    np.testing.assert_allclose(out, loop_attention(q, k, v, bias, True), atol=1e-12)


@pytest.mark.parametrize("bad,match", [
    (dict(q=np.ones((2, 3, 4))), "must be a float array"),
    (dict(k=np.ones((1, 2, 3, 4), np.float32)), "one dtype"),
    (dict(v=np.ones((1, 2, 6, 3))), "v must be"),
    (dict(bias=np.zeros((5, 7), bool)), "bias must be float"),
    (dict(bias=np.zeros((5, 6))), "does not broadcast"),
    (dict(bias=np.zeros((1, 1, 1, 5, 7))), "does not broadcast"),
    (dict(is_causal=1), "is_causal must be a bool"),
    (dict(scale=math.inf), "scale must be a finite number"),
    (dict(k=np.ones((1, 2, 7, 5))), "k must be"),
    (dict(layout="tbhd"), "layout must be one of"),
])
def test_bad_input_raises_a_shape_error(bad: dict, match: str) -> None:
    args = dict(q=np.ones((1, 2, 5, 4)), k=np.ones((1, 2, 7, 4)), v=np.ones((1, 2, 7, 3)))
    args.update(bad)
    with pytest.raises(ShapeError, match=match):
        sdpa(**args)


def test_the_ops_check_their_inputs() -> None:
    t = TensorType
    q, k, v = t((1, 2, 5, 4)), t((1, 2, 7, 4)), t((1, 2, 7, 3))
    with pytest.raises(ShapeError, match="2 or 3 inputs"):
        ops.AttentionLSE(0.5).infer(q)
    with pytest.raises(ShapeError, match="lse must be"):
        ops.AttentionGradQ(0.5).infer(q, k, v, t((1, 2, 5, 3)), t((1, 2, 7)), t((1, 2, 5)))
    with pytest.raises(ShapeError, match="bias must be 4-d"):
        ops.Attention(0.5).infer(q, k, v, t((1, 3, 1, 7)))
    assert ops.AttentionGradScores(0.5).infer(
        q, k, v, t((1, 2, 5, 3)), t((1, 2, 5)), t((1, 2, 5))) == t((1, 2, 5, 7))


# --------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("T,S,causal", [(4, 4, False), (4, 4, True), (3, 5, True),
                                        (5, 3, True)])
def test_gradients_of_q_k_v_match_central_differences(T: int, S: int, causal: bool) -> None:
    q, k, v = arrays(5, B=1, T=T, S=S, D=3, Dv=2)
    check_grad(lambda q, k, v: sdpa(q, k, v, is_causal=causal), q, k, v, argnums=(0, 1, 2))


@pytest.mark.parametrize("shape", [(1, 2, 4, 5), (1, 1, 4, 5), (1, 2, 1, 5), (5,)])
def test_gradient_of_a_broadcast_bias_matches_central_differences(shape: tuple) -> None:
    q, k, v = arrays(6, B=1, T=4, S=5, D=3, Dv=2)
    bias = np.random.default_rng(6).standard_normal(shape)
    check_grad(lambda q, k, v, b: sdpa(q, k, v, b, is_causal=True), q, k, v, bias,
               argnums=(0, 1, 2, 3))


def test_a_fully_masked_row_passes_no_gradient_and_the_rest_is_exact() -> None:
    q, k, v = arrays(7, T=3, S=4, D=3, Dv=2)
    mask = key_padding(2, 4, {0: 4, 1: 1})  # batch 0: every key blocked
    check_grad(lambda q, k, v: sdpa(q, k, v, mask), q, k, v, argnums=(0, 1, 2))
    gq, gk, gv = pyasg.grad(lambda q, k, v: pyasg.sum(sdpa(q, k, v, mask) ** 2),
                            argnums=(0, 1, 2))(q, k, v)
    assert all(np.isfinite(g).all() for g in (gq, gk, gv))
    assert not gq[0].any() and not gk[0].any() and not gv[0].any()


def test_the_gradient_graph_is_made_of_the_attention_ops() -> None:
    q, k, v = arrays(8)
    graph = pyasg.make_graph(pyasg.grad(lambda q, k, v: pyasg.sum(sdpa(q, k, v)),
                                        argnums=(0, 1, 2)))(q, k, v)
    names = {graph.nodes[i].op.name for i in graph.live_ids}
    assert {"attention", "attention_lse", "attention_grad_q", "attention_grad_k",
            "attention_grad_v"} <= names
    assert "attention_grad_scores" not in names and "exp" not in names


def test_second_derivatives_raise_a_grad_error() -> None:
    q, k, v = arrays(9)

    def grad_norm(q):  # noqa: ANN001, ANN202
        g = pyasg.grad(lambda q: pyasg.sum(sdpa(q, k, v)))(q)
        return pyasg.sum(g * g)

    with pytest.raises(GradError, match="attention_grad"):
        pyasg.grad(grad_norm)(q)


# --------------------------------------------------------------------------- wgpu kernels


def _graph(op_inputs: dict[str, list[str]], types: dict[str, TensorType],
           attrs: tuple):  # noqa: ANN202
    """One graph whose outputs are all six attention ops on shared inputs."""
    b = GraphBuilder()
    ids = {name: b.add_input(name, t) for name, t in types.items()}
    outs = [b.add(cls(*attrs), tuple(ids[n] for n in names))
            for cls, names in op_inputs.items()]
    return b.build(outs)


@st.composite
def problems(draw: st.DrawFn) -> dict:
    B, H = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    T, S = draw(st.integers(1, 70)), draw(st.integers(1, 70))
    D = draw(st.sampled_from([1, 3, 4, 8, 32, 64]))
    Dv = draw(st.sampled_from([1, 4, 6, 32, 64]))
    kind = draw(st.sampled_from(["none", "key_padding", "full", "heads", "rows"]))
    return dict(B=B, H=H, T=T, S=S, D=D, Dv=Dv, causal=draw(st.booleans()), kind=kind,
                layout=draw(st.sampled_from(["bhtd", "bthd"])),
                seed=draw(st.integers(0, 2**16)))


def _bias(p: dict, rng: np.random.Generator) -> np.ndarray | None:
    B, H, T, S = p["B"], p["H"], p["T"], p["S"]
    shape = {"none": None, "key_padding": (B, 1, 1, S), "full": (B, H, T, S),
             "heads": (1, H, T, S), "rows": (1, 1, T, 1)}[p["kind"]]
    if shape is None:
        return None
    bias = rng.standard_normal(shape)
    bias[rng.random(shape) < 0.3] = NEG  # blocked entries, some whole rows
    if p["kind"] == "key_padding":
        bias[0] = NEG  # batch 0 sees no key at all
    return bias.astype(np.float32)


def _wgpu_case(p: dict) -> None:
    """Every attention op on wgpu equals the reference on the same float32 inputs."""
    rng = np.random.default_rng(p["seed"])
    B, H, T, S, D, Dv = (p[n] for n in ("B", "H", "T", "S", "D", "Dv"))
    attrs = (1 / math.sqrt(D), p["causal"], p.get("layout", "bhtd"))
    shape = ops.Attention(*attrs).shape
    x = {name: rng.standard_normal(shape(B, H, L, W)).astype(np.float32)
         for name, L, W in (("q", T, D), ("k", S, D), ("v", S, Dv), ("dout", T, Dv))}
    bias = _bias(p, rng)
    extra = () if bias is None else (bias,)
    x["lse"] = REFERENCE[ops.AttentionLSE](ops.AttentionLSE(*attrs), x["q"], x["k"], *extra)
    o = REFERENCE[ops.Attention](ops.Attention(*attrs), x["q"], x["k"], x["v"], *extra)
    x["delta"] = (x["dout"] * o).sum(-1)
    if bias is not None:
        x["bias"] = bias
    with_bias = ["bias"] if bias is not None else []
    grads = ["q", "k", "v", "dout", "lse", "delta"] + with_bias
    op_inputs = {ops.Attention: ["q", "k", "v"] + with_bias,
                 ops.AttentionLSE: ["q", "k"] + with_bias,
                 ops.AttentionGradQ: grads, ops.AttentionGradK: grads,
                 ops.AttentionGradV: ["q", "k", "dout", "lse"] + with_bias,
                 ops.AttentionGradScores: grads}
    graph = _graph(op_inputs, {n: TensorType.of(a) for n, a in x.items()}, attrs)
    got = pyasg.jit_to_backend(graph, "wgpu")(*x.values())
    for (cls, names), g in zip(op_inputs.items(), got):
        want = REFERENCE[cls](cls(*attrs), *(x[n] for n in names))
        np.testing.assert_allclose(np.asarray(g), want, atol=2e-5, rtol=1e-4,
                                   err_msg=f"{cls.__name__} {p}")


@WGPU
@settings(max_examples=10)
@given(p=problems())
def test_wgpu_kernels_equal_the_reference_on_any_shape(p: dict) -> None:
    require_wgpu()
    _wgpu_case(p)


@WGPU
@pytest.mark.parametrize("p", [
    dict(B=1, H=2, T=130, S=130, D=64, Dv=64, causal=True, kind="key_padding", seed=1),
    dict(B=2, H=3, T=65, S=129, D=32, Dv=32, causal=True, kind="full", seed=2,
         layout="bthd"),
    dict(B=1, H=1, T=70, S=9, D=5, Dv=3, causal=True, kind="rows", seed=3),
    dict(B=1, H=1, T=3, S=1, D=1, Dv=1, causal=False, kind="none", seed=4),
])
def test_wgpu_kernels_equal_the_reference_on_several_tiles(p: dict) -> None:
    require_wgpu()
    _wgpu_case(p)


@WGPU
@settings(max_examples=8)
@given(p=problems())
def test_wgpu_kernels_with_long_blocks_equal_the_reference(p: dict) -> None:
    # blocks of LONG_ROWS rows (128 threads a workgroup), as sequences of LONG positions
    # get: made to apply here at any length
    require_wgpu()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(wgpu_attention, "LONG", 1)
        _wgpu_case(p)


@WGPU
def test_a_long_sequence_gets_long_blocks_and_equals_the_reference() -> None:
    require_wgpu()
    p = dict(B=1, H=1, T=wgpu_attention.LONG + 7, S=wgpu_attention.LONG + 7, D=8, Dv=4,
             causal=True, kind="key_padding", seed=5)
    op = ops.Attention(0.5, True)
    t = TensorType((1, 1, p["T"], 8))
    assert wgpu_attention.Problem.of(op, (t, t, t)).threads == wgpu_attention.LONG_ROWS
    _wgpu_case(p)


@WGPU
def test_wgpu_forward_keeps_nan_and_fully_masked_rows_as_the_reference() -> None:
    require_wgpu()
    q, k, v = (a.astype(np.float32) for a in arrays(10, T=6, S=6, D=4, Dv=4))
    q[0, 0, 1, 0] = np.nan
    k[0, 1, 5, 2] = np.nan     # hidden from rows 0-4 by causality
    v[1, 0, 3, 0] = np.nan
    bias = key_padding(2, 6, {1: 6}).astype(np.float32)  # batch 1: no key
    bias = np.broadcast_to(bias, (2, 2, 6, 6)).copy()
    bias[0, 0, 2, 0] = np.nan

    def f(q, k, v, b):  # noqa: ANN001, ANN202
        return sdpa(q, k, v, b, is_causal=True)

    want = f(q, k, v, bias)
    got = np.asarray(pyasg.jit(f, backend="wgpu")(q, k, v, bias))
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert (got[1, 1] == 0).all()  # no key: 0, ...
    assert np.isnan(got[1, 0, 3:, 0]).all()  # ... where 0 * NaN (value 3) is NaN


def test_wgpu_kernels_refuse_head_dims_past_their_limit() -> None:
    d = MAX_HEAD_DIM + 1
    types = (TensorType((1, 1, 2, d)), TensorType((1, 1, 2, d)), TensorType((1, 1, 2, 4)))
    op = ops.Attention(0.1)
    with pytest.raises(BackendError, match="head dims up to"):
        lower(op, WgpuBackend(), in_types=types, out_type=op.infer(*types))


# --------------------------------------------------------------------------- no T x S on wgpu


def _largest_buffer(executable) -> int:  # noqa: ANN001
    """Floats of the largest value or scratch buffer the wgpu executable allocates."""
    graph, sizes = executable.graph, []
    for i in set(graph.live_ids) | set(graph.inputs):
        node = graph.nodes[i]
        sizes.append(node.type.size)
        if node.inputs:
            kernel = lower(node.op, executable.backend,
                           in_types=tuple(graph.nodes[j].type for j in node.inputs),
                           out_type=node.type)
            sizes += [n // 4 for n in kernel.scratch]
    return max(sizes)


def _attention_step(fused: bool, B=1, T=48, E=16, H=2):  # noqa: ANN001, ANN202
    mha = nn.MultiHeadAttention(E, H)
    params = mha.init(pyasg.random.key(0))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, T, E)).astype(np.float32)
    pad = np.zeros((B, T), bool)
    pad[:, -5:] = True

    def loss(params, x, pad):  # noqa: ANN001, ANN202
        out = mha(params, x, key_padding_mask=pad, is_causal=True, need_weights=not fused)
        return pyasg.mean((out if fused else out[0]) ** 2)

    graph = pyasg.make_graph(pyasg.value_and_grad(loss))(params, x, pad)
    return graph, (params, x, pad)


@WGPU
def test_a_wgpu_attention_training_step_binds_no_buffer_of_t_by_s_floats() -> None:
    require_wgpu()
    T = 48  # B * H * T * S = 4608 floats; everything else is at most B * T * E = 768
    fused, _ = _attention_step(True, T=T)
    composite, _ = _attention_step(False, T=T)
    assert _largest_buffer(pyasg.jit_to_backend(fused, "wgpu")) < T * T
    assert _largest_buffer(pyasg.jit_to_backend(composite, "wgpu")) >= 2 * T * T  # the check


# --------------------------------------------------------------------------- MultiHeadAttention


def test_multihead_attention_runs_the_primitive_unless_it_needs_the_weights() -> None:
    mha = nn.MultiHeadAttention(8, 2, dropout=0.5)
    params = mha.init(pyasg.random.key(0))
    x = np.ones((1, 3, 8), np.float32)

    def names(**kw: object) -> set[str]:
        g = pyasg.make_graph(lambda p, x: mha(p, x, rng=pyasg.random.key(1), **kw))(params, x)
        return {g.nodes[i].op.name for i in g.live_ids}

    assert "attention" in names()
    assert "attention" not in names(need_weights=True)
    assert "attention" not in names(training=True)  # dropout on the weights


@WGPU
def test_multihead_attention_training_step_on_wgpu_equals_numpy() -> None:
    require_wgpu()
    graph, args = _attention_step(True)
    flat = [np.asarray(a) for a in pyasg.tree_leaves(args)]
    want = pyasg.jit_to_backend(graph, "numpy")(*flat)
    got = pyasg.jit_to_backend(graph, "wgpu")(*flat)
    for w, g in zip(want, got):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), atol=1e-5, rtol=1e-4)
