"""The training stack used wrongly: every mistake is a clear `PyasgError`, and a float64
model trains in float64.

- The learning rate follows the parameters' dtype: float64 AdamW (and the others)
  against a float64 reference written here and against torch, and float64 schedules
  against their closed forms in Python floats.
- Constructors of layers, optimisers and schedules name the class, the argument and
  what was expected; a params tree that does not fit its layer names the missing
  and extra keys at their paths.
- The fuzz suite of the area: every public layer, optimiser, schedule, clipping
  function, dataset, sampler, loader, transform and metric, called with wrong-typed
  arguments (None, strings, lists, negative, NaN/inf, huge) and then used, and
  layers and optimisers called with malformed params trees and states. Only
  `PyasgError`s may escape (a TypeError, ValueError, IndexError, KeyError or
  ZeroDivisionError is a defect), each message is short, and each case ends within
  `LIMIT_S` seconds.
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from limits import Hung, time_limit

import pyasg
from pyasg import data, metrics, nn, optim
from pyasg.data import transforms as T
from pyasg.errors import PyasgError
from pyasg.nn.checks import ArgumentError, HyperparameterError, ParamsError

KEY = pyasg.random.key(0)
#: No case may take longer (the machine running CI may be loaded).
LIMIT_S = 30
#: No error message may be longer: errors cut what they quote.
MAX_MESSAGE = 3000


# --------------------------------------------------------------------------- the lr's dtype


def adamw_reference(p, grads, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
    """torch.optim.AdamW's documented algorithm, in float64 numpy."""
    b1, b2 = betas
    m = v = np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        p = p * (1 - lr * weight_decay)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p = p - lr / (1 - b1**t) * m / (np.sqrt(v) / math.sqrt(1 - b2**t) + eps)
    return p


def float64_problem(steps=5, seed=0):
    rng = np.random.default_rng(seed)
    params = {"w": rng.normal(size=(4, 3)), "b": rng.normal(size=3)}
    grads = [{k: rng.normal(size=v.shape) for k, v in params.items()} for _ in range(steps)]
    return params, grads


def train(opt, params, grads_seq, traced=False):
    step = opt.update
    if traced:
        step = pyasg.trace(lambda g, s, p: opt.update(g, s, p))
    state = opt.init(params)
    for grads in grads_seq:
        params, state = step(grads, state, params)
    if traced:
        assert step.cache_size == 1  # the lr keeps its dtype: no retrace
    return params, state


@pytest.mark.parametrize("traced", [False, True], ids=["eager", "traced"])
def test_float64_adamw_follows_a_float64_reference_with_an_inexact_learning_rate(traced):
    # 1e-3 is not a float32: a float32 state["lr"] was off by 5e-8 relative, and the
    # parameters after 5 steps by up to 7e-5 relative
    params, grads_seq = float64_problem()
    got, state = train(optim.AdamW(lr=1e-3), params, grads_seq, traced)
    assert state["lr"].dtype == np.float64 and float(state["lr"]) == 1e-3
    for path in params:
        expected = adamw_reference(params[path], [g[path] for g in grads_seq], lr=1e-3)
        np.testing.assert_allclose(got[path], expected, rtol=1e-13, atol=0)


@pytest.mark.parametrize(("name", "options"), [
    ("AdamW", dict(lr=1e-3)), ("Adam", dict(lr=3e-4, amsgrad=True)),
    ("SGD", dict(lr=0.01, momentum=0.9, nesterov=True)),
    ("RMSprop", dict(lr=7e-3, momentum=0.3, centered=True)),
])
def test_float64_optimisers_match_torch_with_inexact_learning_rates(name, options):
    torch = pytest.importorskip("torch")
    params, grads_seq = float64_problem()
    got, _ = train(getattr(optim, name)(**options), params, grads_seq)
    tensors = {k: torch.nn.Parameter(torch.tensor(v)) for k, v in params.items()}
    opt = getattr(torch.optim, name)(list(tensors.values()), **options)
    for grads in grads_seq:
        for k, g in grads.items():
            tensors[k].grad = torch.tensor(g)
        opt.step()
    for k in params:
        np.testing.assert_allclose(got[k], tensors[k].detach().numpy(), rtol=1e-13, atol=0)


def test_the_learning_rate_is_float32_for_float32_parameters_and_float64_with_any_float64():
    for params, dtype in (({"a": np.ones(2, np.float32)}, np.float32),
                          ({"a": np.ones(2, np.float32), "b": np.ones(2)}, np.float64),
                          ({}, np.float32)):
        for opt in (optim.SGD(0.1), optim.Adam(schedule=optim.StepLR(0.1, 2))):
            state = opt.init(params)
            assert state["lr"].dtype == dtype
            _, state = opt.update(params, state, params)
            assert state["lr"].dtype == dtype


@pytest.mark.parametrize(("sched", "closed"), [
    (optim.WarmupCosineAnnealingLR(0.1, warmup_steps=7, T_max=93, eta_min=1e-4),
     lambda k: 0.1 * (1 / 3 + (2 / 3) * k / 7) if k < 7 else
     1e-4 + (0.1 - 1e-4) * (1 + math.cos(math.pi * (k - 7) / 93)) / 2),
    (optim.ExponentialLR(0.1, gamma=0.97), lambda k: 0.1 * 0.97**k),
    (optim.StepLR(0.3, step_size=4, gamma=0.7), lambda k: 0.3 * 0.7 ** (k // 4)),
])
def test_a_float64_schedule_in_a_float64_optimiser_keeps_double_precision(sched, closed):
    opt = optim.SGD(schedule=sched)
    params = {"w": np.zeros(2)}
    state = opt.init(params)
    for k in range(1, 100):
        params, state = opt.update({"w": np.zeros(2)}, state, params)
        assert state["lr"].dtype == np.float64
        np.testing.assert_allclose(float(state["lr"]), closed(k), rtol=1e-13)


def test_a_schedule_called_alone_still_gives_float32():
    assert optim.CosineAnnealingLR(0.1, 10)(3).dtype == np.float32
    assert optim.CosineAnnealingLR(0.1, 10)(3, "float64").dtype == np.float64


# --------------------------------------------------------------------------- constructors


CONSTRUCTOR_ERRORS = [
    # (expression, error class, words the message must hold)
    ("nn.Linear('a', 3)", ArgumentError, ["Linear", "in_features", "an int >= 0", "'a'"]),
    ("nn.Linear(-1, 3)", ArgumentError, ["Linear", "in_features", "-1"]),
    ("nn.Linear(3, 2.0)", ArgumentError, ["Linear", "out_features", "2.0"]),
    ("nn.Linear(3, 2, bias='yes')", ArgumentError, ["Linear", "bias", "True or False"]),
    ("nn.Linear(3, 2, dtype='int32')", ArgumentError, ["Linear", "dtype", "float"]),
    ("nn.Conv2d(3, 8, 0)", ArgumentError, ["Conv2d", "kernel_size", ">= 1"]),
    ("nn.Conv2d(3, 8, (3,))", ArgumentError, ["Conv2d", "kernel_size", "2 ints"]),
    ("nn.Conv2d(3, 8, 3, stride=2, padding='same')", ArgumentError, ["Conv2d", "same"]),
    ("nn.Conv2d(3, 8, 3, padding='full')", ArgumentError, ["Conv2d", "padding", "'same'"]),
    ("nn.ConvTranspose2d(3, 8, 3, output_padding=1)", ArgumentError,
     ["ConvTranspose2d", "output_padding"]),
    ("nn.MaxPool2d(2, stride=0)", ArgumentError, ["MaxPool2d", "stride", ">= 1"]),
    ("nn.AvgPool2d(2, divisor_override=0)", ArgumentError, ["AvgPool2d", "divisor_override"]),
    ("nn.AdaptiveAvgPool2d((2, 3, 4))", ArgumentError, ["AdaptiveAvgPool2d", "output_size"]),
    ("nn.LayerNorm(None)", ArgumentError, ["LayerNorm", "normalized_shape"]),
    ("nn.LayerNorm(4, eps=float('nan'))", ArgumentError, ["LayerNorm", "eps", "nan"]),
    ("nn.Dropout(1.5)", ArgumentError, ["Dropout", "probability", "[0, 1]"]),
    ("nn.Dropout2d('a')", ArgumentError, ["SpatialDropout", "p"]),
    ("nn.Embedding(10, 3, padding_idx=1.0)", ArgumentError, ["Embedding", "padding_idx"]),
    ("nn.BatchNorm1d(3, momentum=2.0)", ArgumentError, ["BatchNorm", "momentum", "[0, 1]"]),
    ("nn.Softplus(beta=0)", ArgumentError, ["Softplus", "beta"]),
    ("nn.Softmax(None)", ArgumentError, ["Softmax", "dim"]),
    ("nn.RoPE(4, max_len='x')", ArgumentError, ["RoPE", "max_len"]),
    ("nn.ALiBi(10**30)", ArgumentError, ["ALiBi", "num_heads"]),
    ("nn.SinusoidalPositionalEncoding(4, max_len=2**62)", ArgumentError,
     ["SinusoidalPositionalEncoding", "needs"]),
    ("nn.FeedForward(4, activation=3)", ArgumentError, ["FeedForward", "activation"]),
    ("nn.TransformerBlock(8, 3)", ArgumentError, ["TransformerBlock", "multiple"]),
    ("nn.TransformerBlock('8', 2)", ArgumentError, ["TransformerBlock", "embed_dim"]),
    ("nn.init.zeros((2, -1))", ArgumentError, ["init.zeros", "shape[1]"]),
    ("nn.init.uniform(KEY, (3, 10**12))", PyasgError, ["1000000000000"]),
    ("nn.init.kaiming_uniform(KEY, (3, 4), mode='fan')", ArgumentError, ["mode", "fan_in"]),
    ("nn.init.calculate_gain(None)", PyasgError, ["nonlinearity"]),
    ("optim.SGD(lr=[0.1])", HyperparameterError, ["SGD", "lr", "[0.1]"]),
    ("optim.SGD(lr=float('inf'))", HyperparameterError, ["SGD", "lr", "inf"]),
    ("optim.SGD(momentum=None)", HyperparameterError, ["SGD", "momentum", "None"]),
    ("optim.SGD(nesterov=1)", HyperparameterError, ["SGD", "nesterov", "True or False"]),
    ("optim.Adam(betas=(0.9,))", HyperparameterError, ["Adam", "betas", "pair"]),
    ("optim.AdamW(betas=(0.9, 'x'))", HyperparameterError, ["AdamW", "betas[1]", "'x'"]),
    ("optim.Adam(eps='a')", HyperparameterError, ["Adam", "eps"]),
    ("optim.RMSprop(alpha=float('nan'))", HyperparameterError, ["RMSprop", "alpha"]),
    ("optim.RMSprop(centered='no')", HyperparameterError, ["RMSprop", "centered"]),
    ("optim.StepLR('a', 2)", HyperparameterError, ["StepLR", "lr"]),
    ("optim.StepLR(0.1, 2.5)", HyperparameterError, ["StepLR", "step_size"]),
    ("optim.CosineAnnealingLR(0.1, 2**40)", HyperparameterError, ["CosineAnnealingLR", "T_max"]),
    ("optim.LinearWarmupLR(0.1, None)", HyperparameterError, ["LinearWarmupLR", "warmup_steps"]),
    ("optim.WarmupCosineAnnealingLR(0.1, 2, 10, start_factor=[1])", HyperparameterError,
     ["WarmupCosineAnnealingLR", "start_factor"]),
    ("optim.clip_grad_norm([np.ones(2)], 'a')", HyperparameterError, ["max_norm"]),
    ("optim.clip_grad_norm([np.ones(2)], 1.0, norm_type='two')", HyperparameterError,
     ["norm_type"]),
    ("optim.clip_grad_value([np.ones(2)], None)", HyperparameterError, ["clip_value"]),
    ("data.ConcatDataset(5)", data.DataError, ["ConcatDataset", "datasets"]),
    ("data.SubsetRandomSampler(None)", data.DataError, ["SubsetRandomSampler", "indices"]),
    ("T.Compose(3)", data.DataError, ["Compose", "transforms"]),
    ("metrics.RunningMeanStd(shape=-1)", metrics.MetricError, ["RunningMeanStd", "shape"]),
    ("metrics.EarlyStopping(mode=np.array([1, 2]))", metrics.MetricError,
     ["EarlyStopping", "mode"]),
    ("metrics.EMA(0.5, bias_correction='yes')", metrics.MetricError, ["EMA", "bias_correction"]),
    ("metrics.MetricLogger(publish=None)", metrics.MetricError, ["MetricLogger", "publish"]),
]


@pytest.mark.parametrize(("expression", "error", "words"), CONSTRUCTOR_ERRORS,
                         ids=[e for e, _, _ in CONSTRUCTOR_ERRORS])
def test_a_bad_argument_names_the_class_the_argument_and_what_was_expected(expression, error,
                                                                            words):
    names = {"nn": nn, "optim": optim, "data": data, "metrics": metrics, "T": T, "np": np,
             "KEY": KEY}
    with pytest.raises(error) as info:
        eval(compile(expression, __file__, "eval"), names)
    message = str(info.value)
    for word in words:
        assert word in message, (word, message)
    assert "at test_training_misuse.py:1" in message.replace("tests/", "")  # the user's line


def test_argument_errors_are_value_errors_as_pytorchs():
    for cls in (ArgumentError, HyperparameterError, ParamsError):
        assert issubclass(cls, PyasgError) and issubclass(cls, ValueError)
    assert optim.HyperparameterError is HyperparameterError


def test_valid_arguments_of_every_kind_still_pass():
    # numpy ints and floats, pairs as lists, None where it means "default"
    assert nn.Conv2d(np.int64(3), 6, [3, 1], groups=np.int32(3)).param_shapes()["weight"] == (
        6, 1, 3, 1)
    assert nn.Linear(0, 2).init(KEY)["weight"].shape == (2, 0)
    assert nn.MaxPool2d(2).stride == (2, 2)
    assert nn.BatchNorm(2, momentum=None).momentum is None
    assert nn.GELU(approximate=True).approximate == "tanh"
    assert optim.Adam(betas=[np.float32(0.5), 0.25]).betas == (0.5, 0.25)
    assert nn.init.xavier_uniform(KEY, (0, 3)).shape == (0, 3)  # no elements: no fans
    assert nn.init.kaiming_normal(KEY, (3, 0, 2, 2)).shape == (3, 0, 2, 2)


# --------------------------------------------------------------------------- params trees


def tree_error(layer, params, *args, **kwargs):
    with pytest.raises(ParamsError) as info:
        layer(params, *args, **kwargs)
    return str(info.value)


def test_a_layer_names_the_missing_key_and_what_it_expected():
    layer = nn.Linear(3, 2)
    x = np.ones((1, 3), np.float32)
    message = tree_error(layer, {"weight": np.ones((2, 3), np.float32)}, x)
    assert "params (Linear) lacks 'bias'" in message
    for bad in (None, [np.ones((2, 3))], "weights", 3.0):
        assert "it must be a dict" in tree_error(layer, bad, x)


def test_a_nested_tree_names_missing_and_extra_keys_at_their_paths():
    block = nn.TransformerBlock(8, 2)
    params = block.init(KEY)
    del params["attn"]["w_q"]["bias"]
    params["ff"]["fc3"] = params["ff"].pop("fc2")
    params["norm1"]["weight"] = np.ones(4, np.float32)
    message = tree_error(block, params, np.ones((1, 3, 8), np.float32))
    assert message.startswith("TransformerBlock: the params do not fit the layer")
    assert "params.attn.w_q (Linear) lacks 'bias'" in message
    assert "params.ff (FeedForward) lacks 'fc2'" in message
    assert "params.ff (FeedForward) has entries ['fc3'] that name no layer" in message
    assert "params.norm1.weight (LayerNorm.weight) has shape (4,), expected (8,)" in message


def test_leaves_must_be_float_arrays_of_the_declared_shape():
    conv = nn.Conv2d(3, 4, 3)
    x = np.ones((1, 3, 5, 5), np.float32)
    good = conv.init(KEY)
    assert "params.weight (Conv2d.weight) has shape (4, 3, 3), expected (4, 3, 3, 3)" in \
        tree_error(conv, {**good, "weight": good["weight"][:, 0]}, x)
    assert "not an array" in tree_error(conv, {**good, "bias": None}, x)
    assert "must be a float array" in tree_error(conv, {**good, "bias": np.ones(4, int)}, x)
    # a dtype other than the layer's is not an error: float64 params in a float32 layer
    float64 = {k: v.astype(np.float64) for k, v in good.items()}
    assert conv(float64, x.astype(np.float64)).dtype == np.float64


def test_sequential_may_leave_out_layers_without_params_but_not_others():
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
    params = model.init(KEY)
    assert sorted(params) == ["0", "2"]
    model({**params, "1": {}}, np.ones((1, 2), np.float32))  # an empty entry is fine too
    message = tree_error(model, {"0": params["0"]}, np.ones((1, 2), np.float32))
    assert "params (Sequential) lacks '2'" in message
    message = tree_error(model, {**params, "1": {"weight": np.ones(1)}},
                         np.ones((1, 2), np.float32))
    assert "params.1 (ReLU) has entries ['weight']" in message


def test_a_state_that_does_not_fit_names_the_layer_and_the_key():
    bn = nn.BatchNorm(3)
    params, state = bn.init(None), bn.init_state()
    del state["running_var"]
    with pytest.raises(ParamsError, match=r"state \(BatchNorm\) lacks 'running_var'"):
        bn(params, np.ones((2, 3)), state=state, training=True)
    model = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))
    with pytest.raises(ParamsError, match=r"state \(Sequential\) lacks '1'"):
        model(model.init(KEY), np.ones((2, 3), np.float32), state={}, training=True)


def test_a_users_layer_that_declares_nothing_is_not_checked():
    class Scale(nn.Module):
        def init(self, key):
            return {"anything": np.ones(3, np.float32)}

        def __call__(self, params, x):
            return x * params["anything"]

    assert Scale().param_shapes() is None
    model = nn.Sequential(Scale(), nn.Linear(3, 1))
    params = model.init(KEY)
    params["0"]["extra"] = "not looked at"
    assert model(params, np.ones((2, 3), np.float32)).shape == (2, 1)


def test_optimiser_trees_name_the_paths_that_differ():
    opt = optim.Adam()
    params = {"w": np.ones(2, np.float32), "b": np.ones(1, np.float32)}
    state = opt.init(params)
    with pytest.raises(PyasgError, match="missing 'b'; extra 'c'"):
        opt.update({"w": params["w"], "c": params["b"]}, state, params)
    with pytest.raises(PyasgError, match=r"state\['lr'\] must be a float scalar"):
        opt.update(params, {**state, "lr": np.ones(3, np.float32)}, params)
    with pytest.raises(PyasgError, match=r"state\['exp_avg'\] at 'w' is f32\[1\]"):
        opt.update(params, {**state, "exp_avg": {"w": np.ones(1, np.float32),
                                                 "b": np.ones(1, np.float32)}}, params)


# --------------------------------------------------------------------------- the fuzz suite


def only_pyasg_errors(case: Callable[[], object], what: str) -> PyasgError | None:
    """Run `case`; a PyasgError (with a short message) is fine, anything else fails."""
    with time_limit(LIMIT_S), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            case()
        except PyasgError as e:
            assert len(str(e)) < MAX_MESSAGE, f"{what}: a {len(str(e))}-character message"
            return e
    return None


@dataclass
class Target:
    """A public constructor or function, valid arguments for it, and how to use what it
    returns (so that a bad argument the constructor let through is used, too)."""

    make: Callable[..., Any]
    args: dict[str, Any]
    use: Callable[[Any], object] = lambda obj: None
    #: The public constructor it stands for, where `make` wraps it.
    covers: Any = None
    name: str = field(default="")

    def __post_init__(self) -> None:
        self.covers = self.covers or self.make
        self.name = getattr(self.covers, "__qualname__", repr(self.covers))

    def arguments(self) -> list[str]:
        """The names that can be passed by keyword."""
        params = inspect.signature(self.make).parameters.values()
        return [p.name for p in params
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self"]


def f32(*shape: int) -> np.ndarray:
    return np.random.default_rng(0).normal(size=shape).astype(np.float32)


def call_layer(x: Any, **kwargs: Any) -> Callable[[Any], object]:
    def use(layer: Any) -> object:
        params = layer.init(KEY)
        if layer.has_state():
            return layer(params, x, state=layer.init_state(), **kwargs)
        return layer(params, x, **kwargs)
    return use


def step_optimiser(opt: Any) -> object:
    params = {"w": f32(3), "b": {"c": f32(2, 2)}}
    state = opt.init(params)
    for _ in range(2):
        params, state = opt.update(params, state, params)
    return params


def use_schedule(sched: Any) -> object:
    return [float(sched(k)) for k in (0, 3, 1000)], optim.SGD(schedule=sched).init({"w": f32(2)})


DS = data.ArrayDataset(np.arange(12.0).reshape(6, 2), np.arange(6) % 2)


def array_dataset(x: Any, label: Any) -> Any:
    """ArrayDataset's arrays by keyword (it takes them as *arrays and **named)."""
    return data.ArrayDataset(x=x, label=label)

LAYERS = [
    Target(nn.Linear, {"in_features": 3, "out_features": 2}, call_layer(f32(4, 3))),
    Target(nn.LayerNorm, {"normalized_shape": 4}, call_layer(f32(2, 4))),
    Target(nn.GRU, {"input_size": 3, "hidden_size": 2, "num_layers": 1, "batch_first": True},
           call_layer(f32(2, 4, 3))),
    Target(nn.RNN, {"input_size": 3, "hidden_size": 2, "nonlinearity": "tanh"},
           call_layer(f32(4, 2, 3))),
    Target(nn.Dropout, {"p": 0.5}, call_layer(f32(2, 4), key=KEY, training=True)),
    Target(nn.SpatialDropout, {"p": 0.5}, call_layer(f32(1, 2, 3, 3), key=KEY)),
    Target(nn.Embedding, {"num_embeddings": 5, "embedding_dim": 3, "padding_idx": 0},
           call_layer(np.array([[0, 4]]))),
    Target(nn.Flatten, {"start_dim": 1, "end_dim": -1}, call_layer(f32(2, 3, 4))),
    Target(nn.GELU, {"approximate": "none"}, call_layer(f32(3))),
    Target(nn.LeakyReLU, {"negative_slope": 0.1}, call_layer(f32(3))),
    Target(nn.ELU, {"alpha": 1.0}, call_layer(f32(3))),
    Target(nn.Softplus, {"beta": 1.0, "threshold": 20.0}, call_layer(f32(3))),
    Target(nn.Softmax, {"dim": 1}, call_layer(f32(2, 3))),
    Target(nn.LogSoftmax, {"dim": 1}, call_layer(f32(2, 3))),
    Target(nn.Conv2d, {"in_channels": 3, "out_channels": 4, "kernel_size": 3, "stride": 1,
                       "padding": 1, "dilation": 1, "groups": 1, "bias": True,
                       "padding_mode": "zeros", "dtype": "float32"},
           call_layer(f32(1, 3, 5, 5))),
    Target(nn.ConvTranspose2d, {"in_channels": 2, "out_channels": 4, "kernel_size": 3,
                                "stride": 2, "padding": 1, "output_padding": 1,
                                "groups": 2, "dilation": 1},
           call_layer(f32(1, 2, 4, 4))),
    Target(nn.MaxPool2d, {"kernel_size": 2, "stride": None, "padding": 0, "dilation": 1,
                          "return_indices": False, "ceil_mode": False},
           call_layer(f32(1, 1, 4, 4))),
    Target(nn.AvgPool2d, {"kernel_size": 2, "stride": 2, "padding": 1,
                          "count_include_pad": True, "divisor_override": None},
           call_layer(f32(1, 1, 4, 4))),
    Target(nn.AdaptiveAvgPool2d, {"output_size": (2, None)}, call_layer(f32(1, 1, 5, 4))),
    Target(nn.BatchNorm, {"num_features": 3, "eps": 1e-5, "momentum": 0.1, "affine": True,
                          "track_running_stats": True, "axis": 1, "dtype": "float64"},
           call_layer(np.ones((4, 3)), training=True)),
    Target(nn.SinusoidalPositionalEncoding, {"dim": 4, "max_len": 16, "base": 100.0},
           call_layer(f32(2, 5, 4))),
    Target(nn.LearnedPositionalEmbedding, {"max_len": 16, "dim": 4, "std": 0.02},
           call_layer(f32(2, 5, 4), offset=2)),
    Target(nn.RoPE, {"head_dim": 4, "max_len": 16, "base": 100.0},
           call_layer(f32(1, 2, 5, 4), offset=1)),
    Target(nn.ALiBi, {"num_heads": 2}, call_layer(f32(1, 2, 3, 3), causal=True)),
    Target(nn.FeedForward, {"embed_dim": 4, "hidden_dim": 8, "activation": "relu",
                            "dropout": 0.1, "bias": True, "dtype": "float32"},
           call_layer(f32(2, 4), key=KEY, training=True)),
    Target(nn.TransformerBlock, {"embed_dim": 8, "num_heads": 2, "ff_hidden": 16,
                                 "dropout": 0.1, "activation": "gelu", "causal": True,
                                 "eps": 1e-5, "bias": True, "dtype": "float32"},
           call_layer(f32(1, 3, 8), key=KEY, training=True)),
    Target(nn.init.uniform, {"key": KEY, "shape": (2, 3), "a": -1.0, "b": 1.0}),
    Target(nn.init.normal, {"key": KEY, "shape": (2, 3), "mean": 0.0, "std": 1.0}),
    Target(nn.init.constant, {"shape": (2,), "value": 0.5, "dtype": "float64"}),
    Target(nn.init.xavier_normal, {"key": KEY, "shape": (2, 3), "gain": 1.0}),
    Target(nn.init.kaiming_uniform, {"key": KEY, "shape": (2, 3), "a": 0.0, "mode": "fan_in",
                                     "nonlinearity": "leaky_relu"}),
    Target(nn.init.calculate_gain, {"nonlinearity": "leaky_relu", "param": 0.2}),
]

OPTIMISERS = [
    Target(optim.SGD, {"lr": 0.1, "momentum": 0.9, "dampening": 0.0, "weight_decay": 0.1,
                       "nesterov": True, "maximize": False}, step_optimiser),
    Target(optim.Adam, {"lr": 0.1, "betas": (0.9, 0.99), "eps": 1e-8, "weight_decay": 0.1,
                        "amsgrad": True, "maximize": True, "decoupled_weight_decay": True},
           step_optimiser),
    Target(optim.AdamW, {"lr": 0.1, "betas": (0.9, 0.99), "eps": 1e-8, "weight_decay": 0.1,
                         "amsgrad": False}, step_optimiser),
    Target(optim.RMSprop, {"lr": 0.1, "alpha": 0.9, "eps": 1e-8, "weight_decay": 0.1,
                           "momentum": 0.5, "centered": True}, step_optimiser),
    Target(optim.StepLR, {"lr": 0.1, "step_size": 3, "gamma": 0.5}, use_schedule),
    Target(optim.ExponentialLR, {"lr": 0.1, "gamma": 0.9}, use_schedule),
    Target(optim.CosineAnnealingLR, {"lr": 0.1, "T_max": 10, "eta_min": 0.01}, use_schedule),
    Target(optim.LinearWarmupLR, {"lr": 0.1, "warmup_steps": 3, "start_factor": 0.5},
           use_schedule),
    Target(optim.WarmupCosineAnnealingLR, {"lr": 0.1, "warmup_steps": 3, "T_max": 10,
                                           "eta_min": 0.0, "start_factor": 0.5}, use_schedule),
    Target(optim.clip_grad_norm, {"grads": [f32(3)], "max_norm": 1.0, "norm_type": 2.0}),
    Target(optim.clip_grad_value, {"grads": {"a": f32(3)}, "clip_value": 0.5}),
    Target(optim.global_norm, {"grads": [f32(3)], "norm_type": "inf"}),
]

DATA = [
    Target(array_dataset, {"x": np.zeros((3, 2)), "label": [0, 1, 1]},
           lambda ds: (len(ds), ds[0], list(data.DataLoader(ds, batch_size=2))),
           covers=data.ArrayDataset),
    Target(data.MapDataset, {"dataset": DS, "fn": lambda x: x, "field": 0},
           lambda ds: [ds[i] for i in range(len(ds))]),
    Target(data.ConcatDataset, {"datasets": [DS, DS]}, lambda ds: (len(ds), ds[-1])),
    Target(data.Subset, {"dataset": DS, "indices": [0, -1]}, lambda ds: ds[1]),
    Target(data.random_split, {"dataset": DS, "lengths": [0.5, 0.5], "seed": 1}),
    Target(data.train_test_split, {"dataset": DS, "test_size": 0.25, "train_size": None,
                                   "seed": 1, "shuffle": True}),
    Target(data.SequentialSampler, {"data_source": DS}, list),
    Target(data.RandomSampler, {"data_source": DS, "replacement": False, "num_samples": 4,
                                "seed": 3}, list),
    Target(data.SubsetRandomSampler, {"indices": [1, 2], "seed": 3}, list),
    Target(data.WeightedRandomSampler, {"weights": [1.0, 2.0], "num_samples": 3,
                                        "replacement": True, "seed": 0}, list),
    Target(data.BatchSampler, {"sampler": range(5), "batch_size": 2, "drop_last": False},
           lambda s: (list(s), len(s))),
    Target(data.DataLoader, {"dataset": DS, "batch_size": 4, "shuffle": True, "sampler": None,
                             "batch_sampler": None, "num_workers": 0, "collate_fn": None,
                             "drop_last": False, "seed": 0, "prefetch": 1},
           lambda loader: (len(loader), list(loader))),
    Target(data.default_collate, {"batch": [(1.0, np.zeros(2)), (2.0, np.ones(2))]}),
    Target(T.Compose, {"transforms": [T.Clip(0.0), T.Log(1.0)]}, lambda t: t(np.ones(3))),
    Target(T.Normalize, {"mean": [0.0, 1.0], "std": [1.0, 2.0], "axis": -1},
           lambda t: t(np.ones((3, 2)))),
    Target(T.MinMaxScale, {"data_min": 0.0, "data_max": 2.0, "feature_range": (-1, 1)},
           lambda t: t(np.ones(3))),
    Target(T.StandardScale, {"mean": 1.0, "std": 2.0}, lambda t: t(np.ones(3))),
    Target(T.OneHot, {"num_classes": 3, "dtype": "float32"}, lambda t: t(np.array([0, 2]))),
    Target(T.Clip, {"min": 0.0, "max": 1.0}, lambda t: t(np.linspace(-1, 2, 4))),
    Target(T.Log, {"offset": 1.0}, lambda t: t(np.ones(3))),
    Target(T.Flatten, {"start_dim": 0, "end_dim": -1}, lambda t: t(np.ones((2, 3)))),
    Target(T.RandomNoise, {"mean": 0.0, "std": 0.1, "seed": 0}, lambda t: t(np.ones(3))),
]

Y_TRUE, Y_PRED = [0, 1, 1, 2], [0, 1, 2, 2]
METRICS = [
    Target(metrics.RunningMeanStd, {"shape": (2,)},
           lambda r: (r.update(np.ones((3, 2))), r.mean, r.sample_std)),
    Target(metrics.EMA, {"decay": 0.9, "bias_correction": True}, lambda e: e.update(1.0)),
    Target(metrics.MetricLogger, {"publish": False},
           lambda m: (m.log(1, loss=1.0), m.end_epoch())),
    Target(metrics.EarlyStopping, {"mode": "min", "patience": 2, "min_delta": 0.1,
                                   "check_finite": True},
           lambda e: [e.step(v) for v in (1.0, 0.5, 0.7)]),
    Target(metrics.accuracy, {"y_true": Y_TRUE, "y_pred": Y_PRED, "normalize": True}),
    Target(metrics.top_k_accuracy, {"y_true": [0, 1], "y_score": [[0.9, 0.1], [0.2, 0.8]],
                                    "k": 1, "normalize": True}),
    Target(metrics.f1, {"y_true": Y_TRUE, "y_pred": Y_PRED, "labels": None, "pos_label": 1,
                        "average": "macro", "zero_division": 0}),
    Target(metrics.precision, {"y_true": [0, 1, 1], "y_pred": [0, 1, 0], "pos_label": 1,
                               "average": "binary", "zero_division": "warn"}),
    Target(metrics.confusion_matrix, {"y_true": Y_TRUE, "y_pred": Y_PRED, "labels": [0, 1, 2],
                                      "normalize": "true"}),
    Target(metrics.binary_confusion_matrix, {"y_true": [0, 1], "y_pred": [1, 1],
                                             "pos_label": 1}),
    Target(metrics.roc_auc, {"y_true": [0, 1, 1], "y_score": [0.1, 0.8, 0.4]}),
    Target(metrics.mse, {"y_true": [1.0, 2.0], "y_pred": [1.5, 2.0],
                         "multioutput": "uniform_average"}),
    Target(metrics.r2, {"y_true": [1.0, 2.0, 3.0], "y_pred": [1.0, 2.0, 4.0],
                        "multioutput": "raw_values", "force_finite": True}),
    Target(metrics.max_error, {"y_true": [1.0, 2.0], "y_pred": [1.5, 2.0]}),
]

TARGETS = {"layers": LAYERS, "optim": OPTIMISERS, "data": DATA, "metrics": METRICS}

#: Wrong-typed and out-of-range values of every kind.
BAD = [None, "a", "", "float16", "int32", [1], [0.1], [], (0.9,), (1, 2, 3), {}, {"a": 1},
       -1, 0, 1, 2, 7, -0.5, 1.5, 0.0, math.nan, math.inf, -math.inf, 2**62, 2**63, 10**30,
       -(10**30), 1e300, True, False, np.float64("nan"), np.int64(-3), np.array([1.0, 2.0]),
       np.zeros((2, 2)), object(), lambda x: x, "x" * 100_000]


def _cases(targets: list[Target]) -> list[tuple[Target, str]]:
    return [(t, arg) for t in targets for arg in t.arguments() if arg in t.args]


def _run(target: Target, arg: str, value: object) -> None:
    kwargs = {**target.args, arg: value}
    only_pyasg_errors(lambda: target.use(target.make(**kwargs)),
                      f"{target.name}({arg}={value!r:.40})")


ALL_CASES = {family: _cases(targets) for family, targets in TARGETS.items()}


@pytest.mark.parametrize("family", sorted(TARGETS))
def test_every_argument_with_every_bad_value_gives_only_pyasg_errors(family):
    # the whole table once, deterministically: each argument of each target with each
    # value of BAD, made and then used
    for target, arg in ALL_CASES[family]:
        for value in BAD:
            _run(target, arg, value)


@pytest.mark.parametrize("family", sorted(TARGETS))
@given(data=st.data())
def test_generated_bad_arguments_give_only_pyasg_errors(family, data):
    target, arg = data.draw(st.sampled_from(ALL_CASES[family]), label="argument")
    value = data.draw(st.one_of(
        st.sampled_from(BAD), st.floats(), st.integers(-3, 64),
        st.lists(st.integers(-2, 5), max_size=3), st.tuples(st.floats(-2, 2), st.floats(-2, 2)),
        st.text(max_size=5)), label="value")
    _run(target, arg, value)


def test_the_multi_head_attention_constructor_gives_only_pyasg_errors():
    for arg in ("embed_dim", "num_heads", "dropout", "bias", "kdim", "vdim", "batch_first",
                "dtype"):
        for value in BAD:
            kwargs = {"embed_dim": 8, "num_heads": 2, arg: value}
            only_pyasg_errors(lambda kwargs=kwargs: nn.MultiHeadAttention(**kwargs), arg)


# --------------------------------------------------------------------------- malformed trees


ALL_LAYERS = [
    (nn.Linear(3, 2), f32(4, 3), {}), (nn.Linear(3, 2, bias=False), f32(4, 3), {}),
    (nn.LayerNorm((2, 3)), f32(1, 2, 3), {}), (nn.Embedding(5, 3), np.array([1, 2]), {}),
    (nn.Conv2d(2, 4, 3, groups=2), f32(1, 2, 5, 5), {}),
    (nn.ConvTranspose2d(2, 3, 2, stride=2), f32(1, 2, 3, 3), {}),
    (nn.BatchNorm2d(2), f32(2, 2, 3, 3), {"training": True}),
    (nn.BatchNorm(2, affine=False, track_running_stats=False), f32(3, 2), {}),
    (nn.LearnedPositionalEmbedding(8, 4), f32(1, 3, 4), {}),
    (nn.MultiHeadAttention(8, 2), f32(1, 3, 8), {}),
    (nn.FeedForward(4), f32(2, 4), {}),
    (nn.TransformerBlock(8, 2), f32(1, 3, 8), {}),
    (nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(),
                   nn.Linear(8, 2)), f32(2, 1, 4, 4), {"training": True}),
    (nn.ReLU(), f32(3), {}), (nn.MaxPool2d(2), f32(1, 1, 4, 4), {}),
    (nn.RoPE(4), f32(1, 3, 4), {}), (nn.GlobalAvgPool2d(), f32(1, 2, 3, 3), {}),
]


def _paths(tree: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path into nested dicts (to a leaf or to a dict)."""
    out = [prefix]
    if isinstance(tree, dict):
        for k, v in tree.items():
            out.extend(_paths(v, prefix + (k,)))
    return out


def _replace(tree: Any, path: tuple, value: Any, delete: bool = False) -> Any:
    if not path:
        return value
    if not isinstance(tree, dict):
        return tree
    out = dict(tree)
    if len(path) == 1:
        if delete:
            out.pop(path[0], None)
        else:
            out[path[0]] = value
    elif path[0] in out:
        out[path[0]] = _replace(out[path[0]], path[1:], value, delete)
    return out


@st.composite
def malformed(draw: Any, tree: Any) -> tuple[Any, str, tuple]:
    """`tree` with one thing broken: an entry deleted, added, or replaced by a bad value,
    a wrong-shaped array, a list or None."""
    path = draw(st.sampled_from(_paths(tree)), label="path")
    how = draw(st.sampled_from(["delete", "add", "replace", "transpose", "shrink"]), label="how")
    if how == "delete" and path:
        return _replace(tree, path, None, delete=True), how, path
    node = tree
    for k in path:
        node = node[k]
    if how == "add" and isinstance(node, dict):
        return _replace(tree, path + ("extra",), np.ones(2, np.float32)), how, path
    if how in ("transpose", "shrink") and isinstance(node, np.ndarray) and node.ndim:
        new = node.T if how == "transpose" else node[..., :1]
        return _replace(tree, path, np.ascontiguousarray(new)), how, path
    value = draw(st.sampled_from(BAD[:20] + [[np.ones(2)], np.ones(7, np.float32),
                                             np.ones(2, np.int32)]), label="value")
    return _replace(tree, path, value), "replace", path


@pytest.mark.parametrize(("layer", "x", "kwargs"), ALL_LAYERS,
                         ids=[type(layer).__name__ for layer, _, _ in ALL_LAYERS])
@given(data=st.data())
def test_layers_called_with_malformed_params_or_state_give_only_pyasg_errors(layer, x, kwargs,
                                                                             data):
    trees = {"params": layer.init(KEY)}
    if layer.has_state():
        trees["state"] = layer.init_state()
    root = data.draw(st.sampled_from(sorted(trees)), label="which tree")
    trees[root], how, path = data.draw(malformed(trees[root]), label=root)
    call_kwargs = {**kwargs, **({"state": trees["state"]} if "state" in trees else {})}
    error = only_pyasg_errors(lambda: layer(trees["params"], x, **call_kwargs),
                              f"{layer!r:.60}")
    if _reported(layer, how, path, root):
        # a missing or an unknown entry is always reported, at the path of its layer
        node = path[:-1] if how == "delete" else path
        assert isinstance(error, ParamsError), (how, path)
        assert f"{'.'.join((root, *map(str, node)))} (" in str(error), (how, path, str(error))


def _reported(layer: Any, how: str, path: tuple, root: str) -> bool:
    """Whether deleting or adding at `path` must be reported: the entry belongs to a
    layer that declares its arrays, or names a sub-layer that needs some."""
    if how not in ("delete", "add") or (how == "delete" and not path):
        return False
    node = path[:-1] if how == "delete" else path
    for name in node:  # down the sub-layers
        layer = layer.children().get(name)
        if layer is None:
            return False
    own = layer.param_shapes() if root == "params" else layer.state_shapes()
    if how == "add":
        return own is not None
    return path[-1] in (own or {}) or path[-1] in layer.children()


def test_the_malformed_tree_fuzz_finds_a_missing_key_before_the_fix():
    # the property the fuzz relies on: deleting any entry of a Linear's params is an error
    for name in ("weight", "bias"):
        params = nn.Linear(3, 2).init(KEY)
        del params[name]
        with pytest.raises(ParamsError, match=f"lacks '{name}'"):
            nn.Linear(3, 2)(params, f32(1, 3))


OPTIMISERS_TO_BREAK = [optim.SGD(0.1, momentum=0.9), optim.Adam(amsgrad=True),
                       optim.AdamW(schedule=optim.StepLR(0.1, 2)), optim.RMSprop(centered=True)]


@pytest.mark.parametrize("opt", OPTIMISERS_TO_BREAK, ids=repr)
@given(data=st.data())
def test_optimisers_given_malformed_trees_give_only_pyasg_errors(opt, data):
    params = {"w": f32(3), "layer": {"weight": f32(2, 3), "bias": f32(2)}}
    state = opt.init(params)
    which = data.draw(st.sampled_from(["params", "grads", "state"]), label="which")
    trees = {"params": params, "grads": params, "state": state}
    trees[which], _, _ = data.draw(malformed(trees[which]), label=which)

    def case() -> None:
        opt.update(trees["grads"], trees["state"], trees["params"])
        opt.init(trees["params"])

    only_pyasg_errors(case, f"{opt!r}: malformed {which}")


def test_only_pyasg_errors_lets_other_errors_and_hangs_through():
    # the harness itself: what the fuzz tests rely on to fail
    with pytest.raises(KeyError):
        only_pyasg_errors(lambda: {}["weight"], "KeyError")
    with pytest.raises(AssertionError):
        only_pyasg_errors(lambda: (_ for _ in ()).throw(PyasgError("x" * MAX_MESSAGE)), "long")
    with pytest.raises(Hung), time_limit(0.05):
        while True:
            pass


def test_the_fuzz_tables_cover_every_public_constructor():
    covered = {t.covers for targets in TARGETS.values() for t in targets}
    for module, names in ((nn, nn.__all__), (optim, optim.__all__), (data, data.__all__),
                          (T, T.__all__), (metrics, metrics.__all__)):
        for name in names:
            obj = getattr(module, name)
            if not inspect.isclass(obj) or issubclass(obj, BaseException):
                continue  # functions are listed by hand; errors and warnings are no targets
            bases = (nn.Module, optim.Optimizer, optim.Schedule, data.Dataset, data.Sampler,
                     T.Transform)
            if obj in bases or obj in (nn.Sequential, data.LoaderIterator,
                                       nn.MultiHeadAttention):
                continue  # the protocols; Sequential's own test; MHA: see its test
            if not inspect.signature(obj).parameters:
                continue  # nothing to pass
            assert obj in covered, f"{module.__name__}.{name} is not in the fuzz tables"

