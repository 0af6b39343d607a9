"""Linear, LayerNorm, Dropout, the initialisers, and the parameter kinds the viewer reads."""

import math

import numpy as np
import pytest
from gradcheck import check_grad

import pyasg
from pyasg import nn
from pyasg.nn import init

KEY = pyasg.random.key(7)


def as64(params: dict) -> dict:
    return {k: np.asarray(v, np.float64) for k, v in params.items()}


# --------------------------------------------------------------------------- Linear


def test_linear_params_follow_pytorch_layout_and_bounds():
    layer = nn.Linear(20, 5)
    p = layer.init(KEY)
    assert p["weight"].shape == (5, 20) and p["bias"].shape == (5,)
    assert p["weight"].dtype == np.float32
    bound = 1 / math.sqrt(20)  # torch.nn.Linear: U(-1/sqrt(in), 1/sqrt(in)) for both
    assert np.abs(p["weight"]).max() <= bound and np.abs(p["bias"]).max() <= bound
    assert "bias" not in nn.Linear(20, 5, bias=False).init(KEY)


def test_linear_computes_x_w_transposed_plus_b_for_any_leading_shape():
    rng = np.random.default_rng(0)
    layer = nn.Linear(4, 3)
    p = as64(layer.init(KEY))
    x = rng.normal(size=(2, 5, 4))
    np.testing.assert_allclose(layer(p, x), x @ p["weight"].T + p["bias"], rtol=1e-12)


def test_linear_gradients_for_input_and_every_parameter():
    rng = np.random.default_rng(1)
    layer = nn.Linear(4, 3)
    p = as64(layer.init(KEY))
    x = rng.normal(size=(2, 5, 4))
    check_grad(lambda x, w, b: layer({"weight": w, "bias": b}, x), x, p["weight"], p["bias"],
               argnums=(0, 1, 2), rtol=1e-5)


# --------------------------------------------------------------------------- LayerNorm


def test_layer_norm_matches_its_definition_and_gradients_on_btE():
    rng = np.random.default_rng(2)
    layer = nn.LayerNorm(6)
    x = rng.normal(size=(2, 3, 6))
    w, b = rng.normal(size=6), rng.normal(size=6)
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    expected = (x - mu) / np.sqrt(var + 1e-5) * w + b
    np.testing.assert_allclose(layer({"weight": w, "bias": b}, x), expected, rtol=1e-10)
    check_grad(lambda x, w, b: layer({"weight": w, "bias": b}, x), x, w, b,
               argnums=(0, 1, 2), rtol=1e-5)


def test_layer_norm_init_and_shape_errors():
    p = nn.LayerNorm((2, 3)).init(KEY)
    np.testing.assert_array_equal(p["weight"], np.ones((2, 3)))
    np.testing.assert_array_equal(p["bias"], np.zeros((2, 3)))
    assert nn.LayerNorm(3, elementwise_affine=False).init(KEY) == {}
    with pytest.raises(pyasg.PyasgError, match="LayerNorm"):
        nn.LayerNorm(4)(nn.LayerNorm(4).init(KEY), np.ones((2, 3)))


# --------------------------------------------------------------------------- Dropout


def test_dropout_drops_p_of_1e5_elements_and_scales_the_rest_by_one_over_1_minus_p():
    x = np.ones(100_000, np.float32)
    y = nn.Dropout(0.3)({}, x, key=KEY)
    dropped = float(np.mean(y == 0))
    assert abs(dropped - 0.3) <= 0.01
    np.testing.assert_allclose(y[y != 0], 1 / 0.7, rtol=1e-6)


def test_dropout_eval_is_identity_and_same_key_same_mask_traced_or_not():
    x = np.random.default_rng(3).normal(size=(4, 50)).astype(np.float32)
    layer = nn.Dropout(0.5)
    np.testing.assert_array_equal(layer({}, x, training=False), x)
    eager = layer({}, x, key=KEY)
    traced = pyasg.jit(lambda x, k: layer({}, x, key=k))(x, KEY)
    np.testing.assert_array_equal(eager, traced)
    other = layer({}, x, key=pyasg.random.key(8))
    assert not np.array_equal(eager, other)
    with pytest.raises(pyasg.PyasgError, match="needs key"):
        layer({}, x)


def test_dropout_gradient_is_the_scaled_mask():
    x = np.random.default_rng(4).normal(size=(3, 7))
    g = pyasg.grad(lambda x: nn.Dropout(0.4)({}, x, key=KEY).sum())(x)
    mask = nn.Dropout(0.4)({}, np.ones_like(x), key=KEY)
    np.testing.assert_allclose(g, mask, rtol=1e-12)


# --------------------------------------------------------------------------- initialisers


def test_fans_for_linear_and_convolution_weights():
    assert init.fans((5, 20)) == (20, 5)             # Linear [out, in]
    assert init.fans((6, 2, 3, 3)) == (18, 54)       # Conv [out, in/groups, kh, kw]
    with pytest.raises(pyasg.PyasgError):
        init.fans((3,))


@pytest.mark.parametrize("shape", [(256, 128), (32, 16, 3, 3)])
def test_xavier_and_kaiming_bounds_and_spreads(shape):
    fan_in, fan_out = init.fans(shape)
    xb = math.sqrt(6 / (fan_in + fan_out))
    w = init.xavier_uniform(KEY, shape)
    assert np.abs(w).max() <= xb and np.abs(w).max() > 0.95 * xb
    assert abs(w.std() - xb / math.sqrt(3)) < 0.03 * xb
    w = init.xavier_normal(KEY, shape, gain=2.0)
    assert abs(w.std() - 2.0 * math.sqrt(2 / (fan_in + fan_out))) < 0.03 * w.std()
    kb = math.sqrt(3) * math.sqrt(2) / math.sqrt(fan_in)  # relu gain sqrt(2)
    w = init.kaiming_uniform(KEY, shape, nonlinearity="relu")
    assert np.abs(w).max() <= kb and np.abs(w).max() > 0.95 * kb
    w = init.kaiming_normal(KEY, shape, mode="fan_out", nonlinearity="relu")
    assert abs(w.std() - math.sqrt(2) / math.sqrt(fan_out)) < 0.03 * w.std()
    assert abs(w.mean()) < 0.05 * w.std()


def test_gains_are_pytorchs():
    assert init.calculate_gain("tanh") == 5 / 3
    assert init.calculate_gain("relu") == math.sqrt(2)
    assert init.calculate_gain("leaky_relu", 0.2) == math.sqrt(2 / 1.04)
    assert init.calculate_gain("conv2d") == init.calculate_gain("sigmoid") == 1.0


def test_simple_initialisers_and_same_key_same_weights():
    np.testing.assert_array_equal(init.zeros((2, 3)), np.zeros((2, 3)))
    np.testing.assert_array_equal(init.ones((2,)), np.ones(2))
    np.testing.assert_array_equal(init.constant((2,), 0.5), [0.5, 0.5])
    u = init.uniform(KEY, (10_000,), -2.0, 3.0)
    assert u.min() >= -2.0 and u.max() < 3.0 and abs(u.mean() - 0.5) < 0.05
    n = init.normal(KEY, (10_000,), 1.0, 2.0)
    assert abs(n.mean() - 1.0) < 0.06 and abs(n.std() - 2.0) < 0.06
    for fn in (init.uniform, init.normal, init.xavier_uniform, init.kaiming_normal):
        np.testing.assert_array_equal(fn(KEY, (8, 4)), fn(pyasg.random.key(7), (8, 4)))
        assert not np.array_equal(fn(KEY, (8, 4)), fn(pyasg.random.key(9), (8, 4)))


# --------------------------------------------------------------------------- parameter kinds


def test_parameter_kinds_and_roles_are_recorded_for_the_viewer():
    block = nn.TransformerBlock(8, 2)
    kinds = block.param_kinds(prefix="blocks.0")
    assert kinds["blocks.0.norm1.weight"] == "LayerNorm.weight"
    assert kinds["blocks.0.attn.w_q.weight"] == "Linear.weight"
    assert "scale" in nn.ROLES["LayerNorm.weight"]
    assert "query" in nn.ROLES["MultiHeadAttention.w_q"]
    conv = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU())
    assert conv.param_kinds() == {"0.weight": "Conv2d.weight", "0.bias": "Conv2d.bias"}
    assert "kernel" in nn.ROLES["Conv2d.weight"]
