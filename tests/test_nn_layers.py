"""Layers of pyasg.nn (norm, conv, basic): forward values against numpy written here,
gradients against central differences (float64, relative error <= 1e-5) for every
input and every parameter, PyTorch's names, layouts and initialisers.

Expected values come from numpy in this file, closed forms, or torch (optional
cross-checks at the end, skipped without torch); never from pyasg itself.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
import pytest
from gradcheck import check_grad
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import erf

import pyasg
from pyasg.errors import PyasgError, ShapeError
from pyasg.nn.basic import (
    ELU,
    GELU,
    Dropout2d,
    Embedding,
    Flatten,
    Identity,
    LeakyReLU,
    LogSoftmax,
    ReLU,
    Sequential,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    SpatialDropout,
    Tanh,
)
from pyasg.nn.conv import (
    AdaptiveAvgPool2d,
    AvgPool2d,
    Conv2d,
    ConvTranspose2d,
    GlobalAvgPool2d,
    MaxPool2d,
)
from pyasg.nn.layers import Dropout, Linear
from pyasg.nn.module import ROLES
from pyasg.nn.norm import BatchNorm, BatchNorm1d, BatchNorm2d
from pyasg.trace.tree import flatten_with_paths

RTOL = 1e-5
F64 = "float64"


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# --------------------------------------------------------------------------- numpy references


def ref_conv2d(x, w, b, stride, padding, dilation, groups):
    """Direct convolution: out[n, o] = sum over the group's channels and the kernel."""
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wo = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((n, o, ho, wo))
    per_group = o // groups
    for oc in range(o):
        g = oc // per_group
        xs = xp[:, g * cg:(g + 1) * cg]
        for i in range(kh):
            for j in range(kw):
                patch = xs[:, :, i * dh:i * dh + sh * (ho - 1) + 1:sh,
                           j * dw:j * dw + sw * (wo - 1) + 1:sw]
                out[:, oc] += np.einsum("nchw,c->nhw", patch, w[oc, :, i, j])
    return out if b is None else out + b[None, :, None, None]


def ref_conv_transpose2d(x, w, b, stride, padding, output_padding, dilation, groups):
    """Scatter form: every input pixel adds its weighted kernel into the output."""
    (sh, sw), (ph, pw), (oph, opw), (dh, dw) = stride, padding, output_padding, dilation
    n, c, h, wd = x.shape
    _, og, kh, kw = w.shape
    full = np.zeros((n, og * groups, (h - 1) * sh + dh * (kh - 1) + 1 + oph,
                     (wd - 1) * sw + dw * (kw - 1) + 1 + opw))
    cg = c // groups
    for ci in range(c):
        g = ci // cg
        for i in range(kh):
            for j in range(kw):
                contrib = np.einsum("nhw,o->nohw", x[:, ci], w[ci, :, i, j])
                full[:, g * og:(g + 1) * og, i * dh:i * dh + sh * (h - 1) + 1:sh,
                     j * dw:j * dw + sw * (wd - 1) + 1:sw] += contrib
    ho = (h - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1
    wo = (wd - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1
    out = full[:, :, ph:ph + ho, pw:pw + wo]
    return out if b is None else out + b[None, :, None, None]


def ref_pool(x, k, s, p, how, count_include_pad=True):
    n, c, h, w = x.shape
    fill = -np.inf if how == "max" else 0.0
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=fill)
    real = np.pad(np.ones((h, w)), p)
    ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    out = np.zeros((n, c, ho, wo))
    for i in range(ho):
        for j in range(wo):
            win = xp[:, :, i * s:i * s + k, j * s:j * s + k]
            if how == "max":
                out[:, :, i, j] = win.max(axis=(2, 3))
            else:
                count = k * k if count_include_pad else real[i * s:i * s + k,
                                                             j * s:j * s + k].sum()
                out[:, :, i, j] = win.sum(axis=(2, 3)) / count
    return out


def ref_adaptive(x, out_h, out_w):
    n, c, h, w = x.shape
    out = np.zeros((n, c, out_h, out_w))
    for i in range(out_h):
        h0, h1 = math.floor(i * h / out_h), math.ceil((i + 1) * h / out_h)
        for j in range(out_w):
            w0, w1 = math.floor(j * w / out_w), math.ceil((j + 1) * w / out_w)
            out[:, :, i, j] = x[:, :, h0:h1, w0:w1].mean(axis=(2, 3))
    return out


# --------------------------------------------------------------------------- Conv2d


def test_conv2d_strided_dilated_grouped_matches_direct_convolution_and_its_gradients():
    """Input [2,4,7,7], weight [6,2,3,3], stride 2, padding 1, dilation 2, groups 2, bias."""
    conv = Conv2d(4, 6, 3, stride=2, padding=1, dilation=2, groups=2, dtype=F64)
    params = conv.init(pyasg.random.key(0))
    assert params["weight"].shape == (6, 2, 3, 3) and params["bias"].shape == (6,)
    x = rng(1).standard_normal((2, 4, 7, 7))
    w, b = params["weight"], params["bias"]
    expected = ref_conv2d(x, w, b, (2, 2), (1, 1), (2, 2), 2)
    np.testing.assert_allclose(conv(params, x), expected, rtol=1e-12, atol=1e-12)

    def f(x, w, b):
        return conv({"weight": w, "bias": b}, x)

    check_grad(f, x, w, b, argnums=(0, 1, 2), rtol=RTOL)


@given(st.integers(1, 2), st.sampled_from([1, 2, 3]), st.integers(1, 2), st.integers(1, 3),
       st.integers(0, 2), st.integers(1, 2), st.integers(5, 8))
def test_conv2d_matches_direct_convolution_for_generated_settings(n, groups, per_group, k,
                                                                  padding, dilation, size):
    conv = Conv2d(groups * per_group, 2 * groups, k, stride=(1, 2), padding=padding,
                  dilation=dilation, groups=groups, dtype=F64)
    params = conv.init(pyasg.random.key(size))
    x = rng(size).standard_normal((n, groups * per_group, size, size + 1))
    expected = ref_conv2d(x, params["weight"], params["bias"], (1, 2), (padding, padding),
                          (dilation, dilation), groups)
    np.testing.assert_allclose(conv(params, x), expected, rtol=1e-12, atol=1e-12)


def test_conv2d_without_bias_has_no_bias_parameter():
    conv = Conv2d(3, 5, (2, 3), bias=False, dtype=F64)
    params = conv.init(pyasg.random.key(1))
    assert list(params) == ["weight"] and params["weight"].shape == (5, 3, 2, 3)
    x = rng(2).standard_normal((1, 3, 4, 5))
    np.testing.assert_allclose(conv(params, x),
                               ref_conv2d(x, params["weight"], None, (1, 1), (0, 0), (1, 1), 1),
                               rtol=1e-12, atol=1e-12)


def test_conv2d_initialiser_is_uniform_within_one_over_sqrt_fan_in():
    """fan_in = in/groups * kh * kw = 16/4 * 3 * 3 = 36; U(-1/6, 1/6) has variance 1/108."""
    params = Conv2d(16, 64, 3, groups=4).init(pyasg.random.key(3))
    w, b = params["weight"], params["bias"]
    assert w.shape == (64, 4, 3, 3) and w.dtype == np.float32
    bound = 1 / 6
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert np.abs(w).max() > 0.95 * bound  # uses the whole range, not a smaller one
    assert abs(w.var() - bound**2 / 3) < 0.1 * bound**2 / 3


def test_conv_transpose2d_initialiser_takes_fan_in_from_weight_dim_1_like_pytorch():
    """Weight [in, out/groups, kh, kw] = [4, 18, 2, 2]: fan_in = 18 * 4 = 72, not 4 * 4."""
    params = ConvTranspose2d(4, 36, 2, groups=2).init(pyasg.random.key(4))
    w, b = params["weight"], params["bias"]
    assert w.shape == (4, 18, 2, 2) and b.shape == (36,)
    bound = 1 / math.sqrt(72)
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert np.abs(w).max() > 0.9 * bound


def test_conv_init_is_deterministic_per_key():
    conv = Conv2d(2, 3, 3)
    a, b = conv.init(pyasg.random.key(7)), conv.init(pyasg.random.key(7))
    np.testing.assert_array_equal(a["weight"], b["weight"])
    assert not np.array_equal(a["weight"], conv.init(pyasg.random.key(8))["weight"])


@pytest.mark.parametrize("kwargs", [{"groups": 3}, {"padding_mode": "reflect"}])
def test_conv2d_rejects_what_it_cannot_do(kwargs):
    with pytest.raises(PyasgError):
        Conv2d(4, 6, 3, **kwargs)


# --------------------------------------------------------------------------- ConvTranspose2d


def test_conv_transpose2d_stride2_output_padding1_matches_scatter_and_its_gradients():
    layer = ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2,
                            dtype=F64)
    params = layer.init(pyasg.random.key(5))
    w, b = params["weight"], params["bias"]
    assert w.shape == (4, 3, 3, 3)
    x = rng(6).standard_normal((2, 4, 4, 3))
    y = layer(params, x)
    assert y.shape == (2, 6, 8, 6)  # (4-1)*2 - 2 + 2 + 1 + 1 = 8
    np.testing.assert_allclose(y, ref_conv_transpose2d(x, w, b, (2, 2), (1, 1), (1, 1),
                                                       (1, 1), 2), rtol=1e-12, atol=1e-12)

    def f(x, w, b):
        return layer({"weight": w, "bias": b}, x)

    check_grad(f, x, w, b, argnums=(0, 1, 2), rtol=RTOL)


def test_conv_transpose2d_output_size_picks_output_padding():
    layer = ConvTranspose2d(2, 3, 3, stride=2, padding=1, dtype=F64)
    params = layer.init(pyasg.random.key(0))
    x = rng(0).standard_normal((1, 2, 4, 4))
    assert layer(params, x).shape == (1, 3, 7, 7)
    y = layer(params, x, output_size=(8, 7))
    np.testing.assert_allclose(y, ref_conv_transpose2d(x, params["weight"], params["bias"],
                                                       (2, 2), (1, 1), (1, 0), (1, 1), 1),
                               rtol=1e-12, atol=1e-12)
    with pytest.raises(PyasgError):
        layer(params, x, output_size=(6, 6))


# --------------------------------------------------------------------------- pooling


def test_max_pool_with_padding_matches_numpy_and_its_gradient():
    x = rng(7).standard_normal((2, 3, 7, 6))
    pool = MaxPool2d(3, stride=2, padding=1)
    np.testing.assert_array_equal(pool({}, x), ref_pool(x, 3, 2, 1, "max"))
    check_grad(lambda x: pool({}, x), x, rtol=RTOL)


def test_max_pool_gradient_goes_to_each_window_maximum():
    """Non-overlapping windows: d(sum y)/dx is 1 exactly at each window's maximum."""
    x = rng(8).standard_normal((1, 2, 4, 4))
    g = pyasg.grad(lambda x: pyasg.sum(MaxPool2d(2)({}, x)))(x)
    blocks = x.reshape(1, 2, 2, 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(1, 2, 2, 2, 4)
    expected = (blocks == blocks.max(-1, keepdims=True)).astype(float)
    expected = expected.reshape(1, 2, 2, 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(x.shape)
    np.testing.assert_array_equal(g, expected)


@pytest.mark.parametrize("count_include_pad", [True, False])
def test_avg_pool_with_padding_matches_numpy_and_its_gradient(count_include_pad):
    x = rng(9).standard_normal((2, 3, 6, 7))
    pool = AvgPool2d(3, stride=2, padding=1, count_include_pad=count_include_pad)
    np.testing.assert_allclose(pool({}, x), ref_pool(x, 3, 2, 1, "avg", count_include_pad),
                               rtol=1e-12, atol=1e-12)
    check_grad(lambda x: pool({}, x), x, rtol=RTOL)


def test_avg_pool_count_include_pad_default_is_true_like_pytorch():
    x = np.ones((1, 1, 2, 2))
    # the corner window holds one real pixel and three padded zeros
    assert AvgPool2d(2, stride=2, padding=1)({}, x)[0, 0, 0, 0] == 0.25
    assert AvgPool2d(2, stride=2, padding=1, count_include_pad=False)({}, x)[0, 0, 0, 0] == 1.0


@pytest.mark.parametrize("size_in,size_out", [(7, 2), (5, 3)])
def test_adaptive_avg_pool_matches_pytorch_windows_and_its_gradient(size_in, size_out):
    x = rng(10).standard_normal((2, 3, size_in, size_in))
    pool = AdaptiveAvgPool2d(size_out)
    np.testing.assert_allclose(pool({}, x), ref_adaptive(x, size_out, size_out),
                               rtol=1e-12, atol=1e-12)
    check_grad(lambda x: pool({}, x), x, rtol=RTOL)


def test_adaptive_avg_pool_rectangular_and_none():
    x = rng(11).standard_normal((1, 2, 5, 7))
    np.testing.assert_allclose(AdaptiveAvgPool2d((2, None))({}, x), ref_adaptive(x, 2, 7),
                               rtol=1e-12, atol=1e-12)


def test_global_avg_pool_is_the_channel_mean_kept_as_1x1_and_its_gradient():
    x = rng(12).standard_normal((2, 3, 5, 4))
    y = GlobalAvgPool2d()({}, x)
    assert y.shape == (2, 3, 1, 1)
    np.testing.assert_allclose(y, x.mean(axis=(2, 3), keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(y, ref_adaptive(x, 1, 1), rtol=1e-12)
    check_grad(lambda x: GlobalAvgPool2d()({}, x), x, rtol=RTOL)


def test_pooling_rejects_ceil_mode():
    with pytest.raises(PyasgError):
        MaxPool2d(2, ceil_mode=True)
    with pytest.raises(PyasgError):
        AvgPool2d(2, ceil_mode=True)


# --------------------------------------------------------------------------- BatchNorm


def test_batchnorm_forward_normalises_each_column():
    bn = BatchNorm1d(3, eps=0.0, dtype=F64)
    y, _ = bn(bn.init(None), np.array([[1.0, 2, 3], [4, 5, 6]]), state=bn.init_state(),
              training=True)
    np.testing.assert_allclose(y, [[-1, -1, -1], [1, 1, 1]], rtol=0, atol=1e-12)


def test_batchnorm_init_and_state_are_pytorchs():
    bn = BatchNorm2d(4)
    params, state = bn.init(pyasg.random.key(0)), bn.init_state()
    np.testing.assert_array_equal(params["weight"], np.ones(4))
    np.testing.assert_array_equal(params["bias"], np.zeros(4))
    np.testing.assert_array_equal(state["running_mean"], np.zeros(4))
    np.testing.assert_array_equal(state["running_var"], np.ones(4))
    assert state["num_batches_tracked"].dtype == np.int64 and state["num_batches_tracked"] == 0
    assert list(BatchNorm(4, affine=False).init(None)) == []


def test_batchnorm_training_updates_running_stats_with_unbiased_variance_then_eval_uses_them():
    r = rng(13)
    bn = BatchNorm(3, eps=1e-5, momentum=0.25, dtype=F64)
    params = {"weight": r.uniform(0.5, 2, 3), "bias": r.standard_normal(3)}
    state = bn.init_state()
    x = r.standard_normal((4, 3, 2, 2)) * 3 + 1
    y, state = bn(params, x, state=state, training=True)

    mu, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))  # biased, for normalising
    c = (slice(None), None, None)
    expected = (x - mu[c]) / np.sqrt(var[c] + 1e-5) * params["weight"][c] + params["bias"][c]
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)
    unbiased = x.var(axis=(0, 2, 3), ddof=1)  # n = 16 per channel
    np.testing.assert_allclose(state["running_mean"], 0.75 * 0 + 0.25 * mu, rtol=1e-12)
    np.testing.assert_allclose(state["running_var"], 0.75 * 1 + 0.25 * unbiased, rtol=1e-12)
    assert state["num_batches_tracked"] == 1

    # eval: batch size 1 works and uses the running statistics, the state is unchanged
    x1 = r.standard_normal((1, 3, 2, 2))
    y1, same = bn(params, x1, state=state, training=False)
    rm, rv = state["running_mean"], state["running_var"]
    expected1 = (x1 - rm[c]) / np.sqrt(rv[c] + 1e-5) * params["weight"][c] + params["bias"][c]
    np.testing.assert_allclose(y1, expected1, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(same["running_mean"], rm)


def test_batchnorm_momentum_none_is_a_cumulative_average():
    r = rng(14)
    bn = BatchNorm(2, momentum=None, dtype=F64)
    params, state = bn.init(None), bn.init_state()
    batches = [r.standard_normal((5, 2)) + k for k in range(3)]
    for x in batches:
        _, state = bn(params, x, state=state, training=True)
    np.testing.assert_allclose(state["running_mean"],
                               np.mean([x.mean(0) for x in batches], axis=0), rtol=1e-12)
    np.testing.assert_allclose(state["running_var"],
                               np.mean([x.var(0, ddof=1) for x in batches], axis=0),
                               rtol=1e-12)
    assert state["num_batches_tracked"] == 3


def test_batchnorm_channels_last_axis():
    r = rng(15)
    bn = BatchNorm(4, axis=-1, dtype=F64)
    x = r.standard_normal((3, 5, 4))  # [N, L, C]
    params = {"weight": r.standard_normal(4), "bias": r.standard_normal(4)}
    y, state = bn(params, x, state=bn.init_state(), training=True)
    mu, var = x.mean(axis=(0, 1)), x.var(axis=(0, 1))
    np.testing.assert_allclose(y, (x - mu) / np.sqrt(var + 1e-5) * params["weight"]
                               + params["bias"], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(state["running_mean"], 0.1 * mu, rtol=1e-12)


@given(st.lists(st.integers(1, 4), min_size=2, max_size=4), st.data())
def test_batchnorm_normalises_over_every_axis_but_the_channel_axis(shape, data):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    channels = shape[axis]
    if math.prod(shape) // channels < 2:  # one value per channel: no variance (tested apart)
        shape[(axis % len(shape) + 1) % len(shape)] += 1  # grow some other axis
    r = rng(len(shape))
    x = r.standard_normal(shape)
    bn = BatchNorm(channels, axis=axis, dtype=F64)
    params = {"weight": r.standard_normal(channels), "bias": r.standard_normal(channels)}
    y, state = bn(params, x, state=bn.init_state(), training=True)
    others = tuple(a for a in range(x.ndim) if a != axis % x.ndim)
    bshape = [1] * x.ndim
    bshape[axis] = channels
    mu, var = x.mean(others, keepdims=True), x.var(others, keepdims=True)
    expected = ((x - mu) / np.sqrt(var + 1e-5) * params["weight"].reshape(bshape)
                + params["bias"].reshape(bshape))
    np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(state["running_var"],
                               0.9 + 0.1 * x.var(others, ddof=1).ravel(), rtol=1e-12)


def test_batchnorm_gradients_in_training_mode():
    """[2,3,4,4], training mode: gradients with respect to input, weight and bias."""
    r = rng(16)
    bn = BatchNorm(3, dtype=F64)
    state = bn.init_state()
    x = r.standard_normal((2, 3, 4, 4))
    w, b = r.uniform(0.5, 1.5, 3), r.standard_normal(3)

    def f(x, w, b):
        return bn({"weight": w, "bias": b}, x, state=state, training=True)[0]

    check_grad(f, x, w, b, argnums=(0, 1, 2), rtol=RTOL)


def test_batchnorm_gradients_in_eval_mode():
    r = rng(17)
    bn = BatchNorm(3, dtype=F64)
    state = {"running_mean": r.standard_normal(3), "running_var": r.uniform(0.5, 2, 3),
             "num_batches_tracked": np.array(5, np.int64)}
    x = r.standard_normal((1, 3, 2, 2))

    def f(x, w, b):
        return bn({"weight": w, "bias": b}, x, state=state, training=False)[0]

    check_grad(f, x, r.uniform(0.5, 1.5, 3), r.standard_normal(3), argnums=(0, 1, 2),
               rtol=RTOL)


def test_batchnorm_without_running_stats_has_no_state_and_uses_batch_stats():
    bn = BatchNorm(2, track_running_stats=False, affine=False, eps=0.0, dtype=F64)
    assert not bn.has_state() and bn.init_state() == {}
    x = np.array([[0.0, 10.0], [2.0, 30.0]])
    for training in (True, False):
        np.testing.assert_allclose(bn({}, x, training=training), [[-1, -1], [1, 1]])


def test_batchnorm_errors():
    bn = BatchNorm(3)
    with pytest.raises(ShapeError, match="3 channels|channels"):
        bn(bn.init(None), np.ones((2, 4)), state=bn.init_state())
    with pytest.raises(PyasgError, match="state"):
        bn(bn.init(None), np.ones((2, 3)))
    with pytest.raises(ShapeError, match="more than one value"):
        bn(bn.init(None), np.ones((1, 3)), state=bn.init_state(), training=True)


def test_batchnorm_state_is_traceable_and_keeps_its_dtypes():
    bn = BatchNorm(3)
    params, state = bn.init(None), bn.init_state()

    @pyasg.trace
    def step(params, state, x):
        return bn(params, x, state=state, training=True)

    x = rng(18).standard_normal((4, 3)).astype(np.float32)
    for _ in range(3):
        _, state = step(params, state, x)
    assert step.cache_size == 1  # the state's dtypes did not change between steps
    assert state["running_mean"].dtype == np.float32
    assert int(state["num_batches_tracked"]) == 3
    np.testing.assert_allclose(state["running_mean"], (1 - 0.9**3) * x.mean(0), rtol=1e-5)


# --------------------------------------------------------------------------- Embedding


def test_embedding_gradient_accumulates_repeated_ids():
    r = rng(19)
    emb = Embedding(6, 4, dtype=F64)
    weight = emb.init(pyasg.random.key(0))["weight"]
    ids = np.array([[1, 3, 1], [5, 1, 3]])
    upstream = r.standard_normal((2, 3, 4))
    np.testing.assert_array_equal(emb({"weight": weight}, ids), weight[ids])

    g = pyasg.grad(lambda w: pyasg.sum(emb({"weight": w}, ids) * upstream))(weight)
    expected = np.zeros_like(weight)
    np.add.at(expected, ids, upstream)
    np.testing.assert_allclose(g, expected, rtol=1e-12, atol=1e-12)
    check_grad(lambda w: emb({"weight": w}, ids), weight, rtol=RTOL)


def test_embedding_init_is_standard_normal_with_a_zero_padding_row():
    emb = Embedding(4000, 8, padding_idx=-1)
    assert emb.padding_idx == 3999  # PyTorch stores negative padding_idx from the end
    w = emb.init(pyasg.random.key(1))["weight"]
    assert w.shape == (4000, 8) and w.dtype == np.float32
    np.testing.assert_array_equal(w[3999], np.zeros(8))
    assert abs(w.mean()) < 0.03 and abs(w.std() - 1) < 0.03


def test_embedding_padding_row_gets_no_gradient():
    emb = Embedding(4, 2, padding_idx=0, dtype=F64)
    w = rng(20).standard_normal((4, 2))
    g = pyasg.grad(lambda w: pyasg.sum(emb({"weight": w}, np.array([0, 2, 0]))))(w)
    np.testing.assert_array_equal(g, [[0, 0], [0, 0], [1, 1], [0, 0]])


def test_embedding_rejects_bad_ids():
    emb = Embedding(4, 2)
    params = emb.init(pyasg.random.key(0))
    with pytest.raises(PyasgError):
        emb(params, np.array([0, 4]))
    with pytest.raises(ShapeError):
        emb(params, np.array([0.0, 1.0]))


# --------------------------------------------------------------------------- SpatialDropout


def test_spatial_dropout_drops_whole_channels_with_rate_p_and_scales_the_rest():
    p, n, c = 0.3, 50, 40
    x = rng(21).uniform(1, 2, (n, c, 3, 3))
    y = SpatialDropout(p)({}, x, key=pyasg.random.key(2), training=True)
    kept = y != 0
    per_channel = kept.reshape(n, c, -1)
    # every channel is either all kept or all dropped
    assert np.all(per_channel.all(-1) | ~per_channel.any(-1))
    np.testing.assert_allclose(y[kept], x[kept] / (1 - p), rtol=1e-12)
    dropped = 1 - per_channel.all(-1).mean()
    sigma = math.sqrt(p * (1 - p) / (n * c))
    assert abs(dropped - p) < 5 * sigma, (dropped, p)


def test_spatial_dropout_same_key_same_mask_and_eval_is_identity():
    x = rng(22).standard_normal((4, 8, 2, 2))
    layer = Dropout2d(0.5)
    a = layer({}, x, key=pyasg.random.key(3), training=True)
    b = layer({}, x, key=pyasg.random.key(3), training=True)
    c = layer({}, x, key=pyasg.random.key(4), training=True)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(layer({}, x, training=False), x)
    with pytest.raises(PyasgError, match="key"):
        layer({}, x, training=True)


def test_spatial_dropout_gradient_is_the_scaled_mask():
    x = rng(23).standard_normal((2, 3, 2, 2))
    key = pyasg.random.key(5)
    layer = SpatialDropout(0.5)
    check_grad(lambda x: layer({}, x, key=key, training=True), x, rtol=RTOL)
    mask = layer({}, np.ones_like(x), key=key, training=True)
    g = pyasg.grad(lambda x: pyasg.sum(layer({}, x, key=key, training=True)))(x)
    np.testing.assert_array_equal(g, mask)


def test_spatial_dropout_works_inside_a_trace():
    layer = SpatialDropout(0.5)
    x = np.ones((2, 6, 3), np.float32)  # [N, C, L]
    traced = pyasg.trace(lambda x, key: layer({}, x, key=key, training=True))
    np.testing.assert_array_equal(traced(x, pyasg.random.key(6)),
                                  layer({}, x, key=pyasg.random.key(6), training=True))


# --------------------------------------------------------------------------- activations

SQRT_2_OVER_PI = math.sqrt(2 / math.pi)

ACTIVATIONS = [
    (ReLU(), lambda x: np.maximum(x, 0)),
    (GELU(), lambda x: 0.5 * x * (1 + erf(x / math.sqrt(2)))),
    (GELU("tanh"), lambda x: 0.5 * x * (1 + np.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x**3)))),
    (SiLU(), lambda x: x / (1 + np.exp(-x))),
    (Sigmoid(), lambda x: 1 / (1 + np.exp(-x))),
    (Tanh(), np.tanh),
    (LeakyReLU(), lambda x: np.where(x > 0, x, 0.01 * x)),
    (LeakyReLU(0.2), lambda x: np.where(x > 0, x, 0.2 * x)),
    (ELU(), lambda x: np.where(x > 0, x, np.exp(x) - 1)),
    (ELU(0.5), lambda x: np.where(x > 0, x, 0.5 * (np.exp(x) - 1))),
    (Softplus(), lambda x: np.log1p(np.exp(x))),
    (Softplus(beta=2.0, threshold=3.0), lambda x: np.where(2 * x > 3, x,
                                                            np.log1p(np.exp(2 * x)) / 2)),
    (Softmax(dim=1), lambda x: np.exp(x) / np.exp(x).sum(1, keepdims=True)),
    (LogSoftmax(dim=-1), lambda x: x - np.log(np.exp(x).sum(-1, keepdims=True))),
    (Identity(), lambda x: x),
]


@pytest.mark.parametrize("layer,reference", ACTIVATIONS,
                         ids=[repr(layer) for layer, _ in ACTIVATIONS])
def test_activation_matches_its_formula_and_its_gradient(layer, reference):
    x = rng(24).standard_normal((3, 4)) * 2
    np.testing.assert_allclose(layer({}, x), reference(x), rtol=1e-10, atol=1e-12)
    check_grad(lambda x: layer({}, x), x, rtol=RTOL)


def test_gelu_rejects_unknown_approximation():
    with pytest.raises(PyasgError):
        GELU("fast")


@given(st.lists(st.integers(1, 4), min_size=1, max_size=5), st.data())
def test_flatten_merges_the_requested_axes(shape, data):
    n = len(shape)
    start = data.draw(st.integers(-n, n - 1))
    end = data.draw(st.integers(-n, n - 1))
    x = np.arange(math.prod(shape), dtype=np.float32).reshape(shape)
    s, e = start % n, end % n
    if s > e:
        with pytest.raises(ShapeError):
            Flatten(start, end)({}, x)
        return
    expected = x.reshape(shape[:s] + [-1] + shape[e + 1:])
    np.testing.assert_array_equal(Flatten(start, end)({}, x), expected)


def test_flatten_defaults_keep_the_batch_axis():
    assert Flatten()({}, np.zeros((2, 3, 4, 5))).shape == (2, 60)


# --------------------------------------------------------------------------- Sequential


def small_cnn(dtype: str = "float32") -> Sequential:
    return Sequential(Conv2d(1, 4, 3, padding=1, dtype=dtype), BatchNorm2d(4, dtype=dtype),
                      ReLU(), MaxPool2d(2), SpatialDropout(0.25), GlobalAvgPool2d(), Flatten(),
                      Dropout(0.5), Linear(4, 2, dtype=dtype))


def test_sequential_params_use_pytorch_state_dict_names_and_omit_empty_layers():
    model = small_cnn()
    params = model.init(pyasg.random.key(0))
    names = [path for path, _ in flatten_with_paths(params)[0]]
    assert names == ["0.weight", "0.bias", "1.weight", "1.bias", "8.weight", "8.bias"]
    assert list(model.children()) == [str(i) for i in range(9)]
    assert list(model.init_state()) == ["1"]
    kinds = model.param_kinds(params)
    assert kinds == {"0.weight": "Conv2d.weight", "0.bias": "Conv2d.bias",
                     "1.weight": "BatchNorm.weight", "1.bias": "BatchNorm.bias",
                     "8.weight": "Linear.weight", "8.bias": "Linear.bias"}
    assert all(kind in ROLES for kind in kinds.values())
    assert "scale γ" in ROLES["BatchNorm.weight"] and "shift β" in ROLES["BatchNorm.bias"]
    assert "convolution kernel" in ROLES["Conv2d.weight"]
    assert "ConvTranspose2d.weight" in ROLES and "Embedding.weight" in ROLES


def test_sequential_from_a_dict_uses_its_names():
    model = Sequential(OrderedDict(conv=Conv2d(1, 2, 1), act=ReLU(), emb_free=Flatten()))
    params = model.init(pyasg.random.key(0))
    assert list(params) == ["conv"] and model["act"] is model[1]
    assert len(model) == 3 and [type(m) for m in model] == [Conv2d, ReLU, Flatten]
    assert model.param_kinds(params, prefix="features") == {
        "features.conv.weight": "Conv2d.weight", "features.conv.bias": "Conv2d.bias"}


def test_sequential_threads_x_through_its_layers():
    model = Sequential(Linear(3, 4, dtype=F64), Tanh(), Linear(4, 2, dtype=F64))
    params = model.init(pyasg.random.key(1))
    x = rng(25).standard_normal((5, 3))
    h = np.tanh(x @ params["0"]["weight"].T + params["0"]["bias"])
    np.testing.assert_allclose(model(params, x), h @ params["2"]["weight"].T + params["2"]["bias"],
                               rtol=1e-12)


def test_sequential_needs_an_explicit_mode_only_when_a_layer_depends_on_it():
    x = np.ones((2, 3), np.float32)
    plain = Sequential(Linear(3, 3), ReLU())
    plain(plain.init(pyasg.random.key(0)), x)  # no mode-dependent layer: no training=
    with_dropout = Sequential(Linear(3, 3), Dropout(0.5))
    params = with_dropout.init(pyasg.random.key(0))
    with pytest.raises(PyasgError, match="training=True or training=False"):
        with_dropout(params, x)
    with pytest.raises(PyasgError, match="key"):
        with_dropout(params, x, training=True)
    np.testing.assert_array_equal(with_dropout(params, x, training=False),
                                  Linear(3, 3)(params["0"], x))


def test_sequential_splits_its_key_among_dropout_layers():
    model = Sequential(Dropout(0.5), Dropout(0.5))
    x = np.ones((64,), np.float32)
    key = pyasg.random.key(9)
    a = model({}, x, key=key, training=True)
    np.testing.assert_array_equal(a, model({}, x, key=key, training=True))
    # layer i gets split(key, 2)[i]: two different masks, not one mask applied twice
    k0, k1 = pyasg.random.split(key, 2)
    expected = Dropout(0.5)({}, Dropout(0.5)({}, x, key=k0), key=k1)
    np.testing.assert_array_equal(a, expected)
    assert not np.array_equal(Dropout(0.5)({}, x, key=k0), Dropout(0.5)({}, x, key=k1))


def test_sequential_threads_batchnorm_state_and_returns_it():
    model = small_cnn(F64)
    params, state = model.init(pyasg.random.key(2)), model.init_state()
    x = rng(26).standard_normal((4, 1, 6, 6))
    y, new_state = model(params, x, key=pyasg.random.key(3), training=True, state=state)
    assert y.shape == (4, 2) and list(new_state) == ["1"]
    conv_out = ref_conv2d(x, params["0"]["weight"], params["0"]["bias"], (1, 1), (1, 1),
                          (1, 1), 1)
    np.testing.assert_allclose(new_state["1"]["running_mean"],
                               0.1 * conv_out.mean(axis=(0, 2, 3)), rtol=1e-10)
    y_eval, same = model(params, x[:1], training=False, state=new_state)
    assert y_eval.shape == (1, 2) and same["1"] is new_state["1"]
    with pytest.raises(PyasgError, match="state"):
        model(params, x, training=False)


def test_sequential_gradients_reach_every_parameter():
    # no conv bias: BatchNorm cancels any shift, so its gradient is exactly zero and a
    # relative-error check would compare rounding noise with rounding noise
    model = Sequential(Conv2d(2, 3, 3, padding=1, bias=False, dtype=F64), BatchNorm2d(3, dtype=F64),
                       ELU(), AvgPool2d(2), Flatten(), Linear(12, 2, dtype=F64))
    params, state = model.init(pyasg.random.key(4)), model.init_state()
    x = rng(27).standard_normal((2, 2, 4, 4))
    leaves = [leaf for _, leaf in flatten_with_paths(params)[0]]
    structure = flatten_with_paths(params)[1]

    def f(x, *leaves):
        y, _ = model(pyasg.unflatten(structure, list(leaves)), x, training=True, state=state)
        return y

    check_grad(f, x, *leaves, argnums=tuple(range(len(leaves) + 1)), rtol=RTOL)


def test_sequential_rejects_bad_layers_and_params():
    with pytest.raises(PyasgError):
        Sequential(ReLU(), lambda x: x)
    with pytest.raises(PyasgError):
        Sequential({"a.b": ReLU()})
    model = Sequential(Linear(2, 2))
    with pytest.raises(PyasgError, match="name no layer"):
        model({"1": {}}, np.ones((1, 2), np.float32))
    with pytest.raises(PyasgError, match="lack"):
        model({}, np.ones((1, 2), np.float32))


def test_nested_sequential_passes_mode_and_keys_down():
    inner = Sequential(Linear(4, 4), Dropout(0.5))
    model = Sequential(inner, ReLU())
    params = model.init(pyasg.random.key(0))
    assert [p for p, _ in flatten_with_paths(params)[0]] == ["0.0.weight", "0.0.bias"]
    x = np.ones((3, 4), np.float32)
    with pytest.raises(PyasgError, match="training"):
        model(params, x)
    y = model(params, x, key=pyasg.random.key(1), training=True)
    k_inner = pyasg.random.split(pyasg.random.key(1), 2)[0]
    np.testing.assert_array_equal(
        y, np.maximum(inner(params["0"], x, key=k_inner, training=True), 0))


# --------------------------------------------------------------------------- torch parity


def _load_torch(module, params: dict, state: dict | None = None):
    torch = pytest.importorskip("torch")
    flat = dict(flatten_with_paths(params)[0])
    flat.update(flatten_with_paths(state or {})[0])
    module.load_state_dict({k: torch.tensor(np.asarray(v)) for k, v in flat.items()},
                           strict=True)
    return module


def _torch_cases():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    return [
        (Conv2d(4, 6, 3, stride=2, padding=1, dilation=2, groups=2),
         nn.Conv2d(4, 6, 3, stride=2, padding=1, dilation=2, groups=2), (2, 4, 7, 7)),
        (ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2),
         nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2),
         (2, 4, 5, 5)),
        (MaxPool2d(3, 2, 1), nn.MaxPool2d(3, 2, 1), (2, 3, 7, 6)),
        (AvgPool2d(3, 2, 1, count_include_pad=False),
         nn.AvgPool2d(3, 2, 1, count_include_pad=False), (2, 3, 7, 6)),
        (AdaptiveAvgPool2d(3), nn.AdaptiveAvgPool2d(3), (2, 3, 5, 7)),
        (GlobalAvgPool2d(), nn.AdaptiveAvgPool2d(1), (2, 3, 5, 7)),
        (Flatten(), nn.Flatten(), (2, 3, 4)),
        (GELU("tanh"), nn.GELU("tanh"), (3, 5)),
        (Softplus(2.0, 1.0), nn.Softplus(2.0, 1.0), (3, 5)),
        (ELU(0.7), nn.ELU(0.7), (3, 5)),
        (Sequential(Conv2d(3, 4, 3, padding=1), ReLU(), MaxPool2d(2), Flatten(),
                    Linear(16, 2)),
         nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                       nn.Linear(16, 2)), (2, 3, 4, 4)),
    ]


def test_torch_parity_of_forward_with_weights_copied_by_state_dict_name():
    torch = pytest.importorskip("torch")
    for i, (ours, theirs, shape) in enumerate(_torch_cases()):
        params = ours.init(pyasg.random.key(i))
        _load_torch(theirs, params)
        x = rng(30 + i).standard_normal(shape).astype(np.float32)
        expected = theirs(torch.tensor(x)).detach().numpy()
        np.testing.assert_allclose(ours(params, x), expected, rtol=1e-5, atol=1e-5,
                                   err_msg=repr(ours))


def test_torch_parity_of_batchnorm_train_then_eval_and_embedding():
    torch = pytest.importorskip("torch")
    r = rng(40)
    ours, theirs = BatchNorm2d(3, momentum=0.2), torch.nn.BatchNorm2d(3, momentum=0.2)
    params = {"weight": r.uniform(0.5, 2, 3).astype(np.float32),
              "bias": r.standard_normal(3).astype(np.float32)}
    state = ours.init_state()
    _load_torch(theirs, params, state)
    for _ in range(2):
        x = (r.standard_normal((4, 3, 3, 3)) * 2 + 1).astype(np.float32)
        y, state = ours(params, x, state=state, training=True)
        np.testing.assert_allclose(y, theirs.train()(torch.tensor(x)).detach().numpy(),
                                   rtol=1e-4, atol=1e-5)
    for name, buf in theirs.state_dict().items():
        source = state if name in state else params
        np.testing.assert_allclose(source[name], buf.numpy(), rtol=1e-5, atol=1e-6,
                                   err_msg=name)
    x1 = r.standard_normal((1, 3, 3, 3)).astype(np.float32)
    y1, _ = ours(params, x1, state=state, training=False)
    np.testing.assert_allclose(y1, theirs.eval()(torch.tensor(x1)).detach().numpy(),
                               rtol=1e-5, atol=1e-5)

    emb = Embedding(7, 3, padding_idx=2)
    t_emb = _load_torch(torch.nn.Embedding(7, 3, padding_idx=2),
                        params := emb.init(pyasg.random.key(0)))
    ids = np.array([[2, 6, 0], [1, 1, 5]])
    np.testing.assert_allclose(emb(params, ids), t_emb(torch.tensor(ids)).detach().numpy())
