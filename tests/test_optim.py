"""Optimisers and gradient clipping equal PyTorch's published formulas, eager and traced.

The expected values come from small numpy re-implementations of the pseudo-code in
the torch.optim documentation, written here per array (never from pyasg's output);
the torch cross-checks at the end run only where torch is installed.
"""

from __future__ import annotations

import copy
import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import pyasg
from pyasg.errors import PyasgError, ShapeError
from pyasg.optim import (
    SGD,
    Adam,
    AdamW,
    HyperparameterError,
    RMSprop,
    StepLR,
    WarmupCosineAnnealingLR,
    clip_grad_norm,
    clip_grad_value,
)
from pyasg.trace.tree import flatten_with_paths, unflatten

SHAPES = {"w": (3, 4), "b": (4,), "blocks": [{"g": (2,)}, {"g": (1, 2)}]}
STEPS = 6
LR = 0.125  # exactly representable in float32, which is the dtype of state["lr"]


def tree_of(shapes, rng, dtype=np.float64):
    if isinstance(shapes, dict):
        return {k: tree_of(v, rng, dtype) for k, v in shapes.items()}
    if isinstance(shapes, list):
        return [tree_of(v, rng, dtype) for v in shapes]
    return rng.normal(size=shapes).astype(dtype)


def problem(seed=0, dtype=np.float64, steps=STEPS):
    """Initial params and a sequence of gradients, as pytrees."""
    rng = np.random.default_rng(seed)
    return tree_of(SHAPES, rng, dtype), [tree_of(SHAPES, rng, dtype) for _ in range(steps)]


def leaves(tree):
    return dict(flatten_with_paths(tree)[0])


def run(opt, params, grads_seq, mode):
    """The parameters after each update, running `opt` eagerly or inside @pyasg.trace."""
    step = opt.update
    if mode == "traced":
        step = pyasg.trace(lambda grads, state, params: opt.update(grads, state, params))
    state = opt.init(params)
    out = []
    for grads in grads_seq:
        params, state = step(grads, state, params)
        out.append(params)
    if mode == "traced":
        assert step.cache_size == 1  # the state keeps its signature: no retrace
    return out, state


# --------------------------------------------------------------------------- references
# Each takes one parameter array and its gradients, and returns the value after each step.


def ref_sgd(p, grads, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
            maximize=False):
    out, b = [], None
    for t, g in enumerate(grads, start=1):
        g = -g if maximize else g
        if weight_decay != 0:
            g = g + weight_decay * p
        if momentum != 0:
            b = g if t == 1 else momentum * b + (1 - dampening) * g
            g = g + momentum * b if nesterov else b
        p = p - lr * g
        out.append(p)
    return out


def ref_adam(p, grads, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False,
             maximize=False, decoupled=False):
    b1, b2 = betas
    m = v = np.zeros_like(p)
    v_max = np.zeros_like(p)
    out = []
    for t, g in enumerate(grads, start=1):
        g = -g if maximize else g
        if decoupled:
            p = p - lr * weight_decay * p
        elif weight_decay != 0:
            g = g + weight_decay * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        m_hat = m / (1 - b1**t)
        if amsgrad:
            v_max = np.maximum(v_max, v)
            v_hat = v_max / (1 - b2**t)
        else:
            v_hat = v / (1 - b2**t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
        out.append(p)
    return out


def ref_rmsprop(p, grads, lr, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                centered=False, maximize=False):
    v = g_ave = b = np.zeros_like(p)
    out = []
    for g in grads:
        g = -g if maximize else g
        if weight_decay != 0:
            g = g + weight_decay * p
        v = alpha * v + (1 - alpha) * g**2
        v_tilde = v
        if centered:
            g_ave = alpha * g_ave + (1 - alpha) * g
            v_tilde = v_tilde - g_ave**2
        if momentum > 0:
            b = momentum * b + g / (np.sqrt(v_tilde) + eps)
            p = p - lr * b
        else:
            p = p - lr * g / (np.sqrt(v_tilde) + eps)
        out.append(p)
    return out


def reference(ref, params, grads_seq, **hp):
    """Apply a per-array reference to every leaf: {path: [value after each step]}."""
    grads = [leaves(g) for g in grads_seq]
    return {path: ref(p, [g[path] for g in grads], **hp) for path, p in leaves(params).items()}


def assert_matches(trajectory, expected, rtol=1e-10, atol=1e-12):
    for k, params in enumerate(trajectory):
        for path, value in leaves(params).items():
            np.testing.assert_allclose(value, expected[path][k], rtol=rtol, atol=atol,
                                       err_msg=f"{path} after update {k + 1}")


# --------------------------------------------------------------------------- every option


def sgd_options():
    for momentum, dampening, nesterov, wd, maximize in itertools.product(
            (0.0, 0.9), (0.0, 0.25), (False, True), (0.0, 0.1), (False, True)):
        if nesterov and (momentum == 0 or dampening != 0):
            continue
        yield dict(momentum=momentum, dampening=dampening, nesterov=nesterov,
                   weight_decay=wd, maximize=maximize)


def adam_options():
    # betas and eps far from the defaults, so that misplacing eps or a bias correction
    # changes the result well beyond rounding
    for amsgrad, wd, maximize in itertools.product((False, True), (0.0, 0.1), (False, True)):
        yield dict(betas=(0.8, 0.9), eps=0.01, weight_decay=wd, amsgrad=amsgrad,
                   maximize=maximize)


def rmsprop_options():
    for centered, momentum, wd, maximize in itertools.product(
            (False, True), (0.0, 0.5), (0.0, 0.1), (False, True)):
        yield dict(alpha=0.8, eps=0.01, weight_decay=wd, momentum=momentum,
                   centered=centered, maximize=maximize)


MODES = ("eager", "traced")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("options", list(sgd_options()), ids=str)
def test_sgd_matches_the_published_algorithm(options, mode):
    params, grads_seq = problem()
    trajectory, _ = run(SGD(LR, **options), params, grads_seq, mode)
    assert_matches(trajectory, reference(ref_sgd, params, grads_seq, lr=LR, **options))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("options", list(adam_options()), ids=str)
def test_adam_matches_the_published_algorithm(options, mode):
    params, grads_seq = problem()
    trajectory, _ = run(Adam(LR, **options), params, grads_seq, mode)
    assert_matches(trajectory, reference(ref_adam, params, grads_seq, lr=LR, **options))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("options", list(adam_options()), ids=str)
def test_adamw_decays_the_weights_decoupled_from_the_gradient(options, mode):
    params, grads_seq = problem()
    options = {**options, "weight_decay": options["weight_decay"] or 0.3}
    trajectory, _ = run(AdamW(LR, **options), params, grads_seq, mode)
    assert_matches(trajectory, reference(ref_adam, params, grads_seq, lr=LR, decoupled=True,
                                         **options))


def test_adam_with_decoupled_weight_decay_is_adamw():
    params, grads_seq = problem()
    a, _ = run(Adam(LR, weight_decay=0.2, decoupled_weight_decay=True), params, grads_seq,
               "eager")
    w, _ = run(AdamW(LR, weight_decay=0.2), params, grads_seq, "eager")
    for x, y in zip(a, w):
        for path in leaves(x):
            assert np.array_equal(leaves(x)[path], leaves(y)[path])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("options", list(rmsprop_options()), ids=str)
def test_rmsprop_matches_the_published_algorithm(options, mode):
    params, grads_seq = problem()
    trajectory, _ = run(RMSprop(LR, **options), params, grads_seq, mode)
    assert_matches(trajectory, reference(ref_rmsprop, params, grads_seq, lr=LR, **options))


float32_lr = st.floats(1e-4, 1.0).map(lambda x: float(np.float32(x)))
unit = st.floats(0.0, 0.99)


@given(lr=float32_lr, momentum=unit, dampening=unit, wd=st.floats(0.0, 0.5),
       nesterov=st.booleans(), seed=st.integers(0, 2**16))
def test_sgd_matches_for_generated_hyperparameters(lr, momentum, dampening, wd, nesterov, seed):
    dampening = 0.0 if nesterov else dampening
    momentum = max(momentum, 0.1) if nesterov else momentum
    hp = dict(momentum=momentum, dampening=dampening, weight_decay=wd, nesterov=nesterov)
    params, grads_seq = problem(seed, steps=3)
    trajectory, _ = run(SGD(lr, **hp), params, grads_seq, "eager")
    assert_matches(trajectory, reference(ref_sgd, params, grads_seq, lr=lr, **hp))


@given(lr=float32_lr, b1=unit, b2=unit, eps=st.floats(1e-8, 1.0), wd=st.floats(0.0, 0.5),
       amsgrad=st.booleans(), decoupled=st.booleans(), seed=st.integers(0, 2**16))
def test_adam_matches_for_generated_hyperparameters(lr, b1, b2, eps, wd, amsgrad, decoupled,
                                                     seed):
    hp = dict(betas=(b1, b2), eps=eps, weight_decay=wd, amsgrad=amsgrad)
    params, grads_seq = problem(seed, steps=3)
    opt = Adam(lr, decoupled_weight_decay=decoupled, **hp)
    trajectory, _ = run(opt, params, grads_seq, "eager")
    assert_matches(trajectory, reference(ref_adam, params, grads_seq, lr=lr,
                                         decoupled=decoupled, **hp), rtol=1e-9)


@given(lr=float32_lr, alpha=st.floats(0.01, 0.99), eps=st.floats(1e-8, 1.0), wd=st.floats(0.0, 0.5),
       momentum=unit, centered=st.booleans(), seed=st.integers(0, 2**16))
def test_rmsprop_matches_for_generated_hyperparameters(lr, alpha, eps, wd, momentum, centered,
                                                        seed):
    hp = dict(alpha=alpha, eps=eps, weight_decay=wd, momentum=momentum, centered=centered)
    params, grads_seq = problem(seed, steps=3)
    trajectory, _ = run(RMSprop(lr, **hp), params, grads_seq, "eager")
    assert_matches(trajectory, reference(ref_rmsprop, params, grads_seq, lr=lr, **hp),
                   rtol=1e-9)


OPTIMISERS = [
    (SGD(LR, momentum=0.9, nesterov=True, weight_decay=0.1), ref_sgd,
     dict(momentum=0.9, nesterov=True, weight_decay=0.1)),
    (Adam(LR, amsgrad=True, weight_decay=0.1), ref_adam, dict(amsgrad=True, weight_decay=0.1)),
    (AdamW(LR, amsgrad=True), ref_adam, dict(amsgrad=True, weight_decay=0.01, decoupled=True)),
    (RMSprop(LR, momentum=0.5, centered=True, weight_decay=0.1), ref_rmsprop,
     dict(momentum=0.5, centered=True, weight_decay=0.1)),
]
OPT_IDS = [type(o).__name__ for o, _, _ in OPTIMISERS]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("opt", "ref", "hp"), OPTIMISERS, ids=OPT_IDS)
def test_float32_parameters_stay_float32_and_follow_the_float64_formula(opt, ref, hp, mode):
    params, grads_seq = problem(dtype=np.float32)
    trajectory, state = run(opt, params, grads_seq, mode)
    expected = reference(ref, tree_of_float64(params), [tree_of_float64(g) for g in grads_seq],
                         lr=LR, **hp)
    assert_matches(trajectory, expected, rtol=2e-5, atol=1e-6)
    for tree in (trajectory[-1], *(state[s] for s in opt.slots)):
        assert all(v.dtype == np.float32 for v in leaves(tree).values())


def tree_of_float64(tree):
    return pyasg.tree_map(lambda x: np.asarray(x, np.float64), tree)


@pytest.mark.parametrize(("opt", "ref", "hp"), OPTIMISERS, ids=OPT_IDS)
def test_eager_and_traced_updates_are_bit_identical(opt, ref, hp):
    params, grads_seq = problem(dtype=np.float32)
    eager, _ = run(opt, params, grads_seq, "eager")
    traced, _ = run(opt, params, grads_seq, "traced")
    for e, t in zip(eager, traced):
        for path in leaves(e):
            assert np.array_equal(leaves(e)[path], leaves(t)[path]), path


@pytest.mark.parametrize(("opt", "ref", "hp"), OPTIMISERS, ids=OPT_IDS)
def test_mixed_float32_and_float64_parameters_keep_their_dtypes(opt, ref, hp):
    params = {"a": np.ones(3, np.float32), "b": np.ones(2, np.float64)}
    grads = {"a": np.full(3, 0.5, np.float32), "b": np.full(2, 0.5, np.float64)}
    state = opt.init(params)
    for _ in range(2):
        params, state = opt.update(grads, state, params)
    assert params["a"].dtype == np.float32 and params["b"].dtype == np.float64


# --------------------------------------------------------------------------- the state


def test_adam_state_round_trip_through_a_file_is_bit_identical(tmp_path):
    params, grads_seq = problem(dtype=np.float32, steps=10)
    opt = Adam(amsgrad=True, weight_decay=0.1,
               schedule=WarmupCosineAnnealingLR(0.01, warmup_steps=3, T_max=10))
    step = pyasg.trace(lambda grads, state, params: opt.update(grads, state, params))

    p_full, s_full = params, opt.init(params)
    for grads in grads_seq:
        p_full, s_full = step(grads, s_full, p_full)

    p, s = params, opt.init(params)
    for grads in grads_seq[:5]:
        p, s = step(grads, s, p)
    np.savez(tmp_path / "ckpt.npz", **{f"params.{k}": v for k, v in leaves(p).items()},
             **{f"state.{k}": v for k, v in leaves(s).items()})
    del p, s
    loaded = np.load(tmp_path / "ckpt.npz")
    # the structure comes from a fresh template; the numbers only from the file
    p_pairs, p_def = flatten_with_paths(params)
    s_pairs, s_def = flatten_with_paths(opt.init(params))
    p = unflatten(p_def, [loaded[f"params.{k}"] for k, _ in p_pairs])
    s = unflatten(s_def, [loaded[f"state.{k}"] for k, _ in s_pairs])
    for grads in grads_seq[5:]:
        p, s = step(grads, s, p)

    for tree_a, tree_b in ((p, p_full), (s, s_full)):
        a, b = leaves(tree_a), leaves(tree_b)
        assert a.keys() == b.keys()
        for path in a:
            assert np.array_equal(a[path], b[path]), path


@pytest.mark.parametrize("mode", MODES)
def test_adam_state_copied_midway_resumes_bit_identically(mode):
    params, grads_seq = problem(dtype=np.float32, steps=10)
    opt = Adam(LR, betas=(0.5, 0.75), weight_decay=0.1)
    full, _ = run(opt, params, grads_seq, mode)
    first, state = run(opt, params, grads_seq[:5], mode)
    saved = copy.deepcopy((first[-1], state))
    step = opt.update if mode == "eager" else pyasg.trace(
        lambda grads, state, params: opt.update(grads, state, params))
    p, s = saved
    for grads in grads_seq[5:]:
        p, s = step(grads, s, p)
    for path, value in leaves(full[-1]).items():
        assert np.array_equal(leaves(p)[path], value), path


@pytest.mark.parametrize(("opt", "slots"), [
    (SGD(), ()), (SGD(momentum=0.9), ("momentum_buffer",)),
    (Adam(), ("exp_avg", "exp_avg_sq")),
    (Adam(amsgrad=True), ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")),
    (AdamW(), ("exp_avg", "exp_avg_sq")),
    (RMSprop(), ("square_avg",)),
    (RMSprop(momentum=0.9, centered=True), ("square_avg", "momentum_buffer", "grad_avg")),
], ids=repr)
def test_init_gives_step_lr_and_zero_slots_mirroring_params(opt, slots):
    params, _ = problem(dtype=np.float32)
    state = opt.init(params)
    assert list(state) == ["step", "lr", *slots]
    assert state["step"].dtype == np.int32 and int(state["step"]) == 0
    assert state["lr"].dtype == np.float32 and float(state["lr"]) == np.float32(opt.lr)
    for s in slots:
        slot_pairs, slot_def = flatten_with_paths(state[s])
        assert slot_def == flatten_with_paths(params)[1]
        for (_, z), (_, p) in zip(slot_pairs, flatten_with_paths(params)[0]):
            assert z.shape == p.shape and z.dtype == p.dtype and not z.any()


def test_defaults_are_pytorchs():
    assert (SGD().lr, SGD().momentum, SGD().dampening, SGD().weight_decay) == (1e-3, 0, 0, 0)
    assert (Adam().lr, Adam().betas, Adam().eps, Adam().weight_decay) == (1e-3, (0.9, 0.999),
                                                                          1e-8, 0.0)
    assert (AdamW().weight_decay, AdamW().amsgrad) == (1e-2, False)
    r = RMSprop()
    assert (r.lr, r.alpha, r.eps, r.weight_decay, r.momentum, r.centered) == (
        1e-2, 0.99, 1e-8, 0, 0, False)


@pytest.mark.parametrize("mode", MODES)
def test_the_update_uses_the_learning_rate_in_the_state(mode):
    opt = SGD(lr=0.5)
    params = {"w": np.ones(2)}
    step = opt.update if mode == "eager" else pyasg.trace(
        lambda grads, state, params: opt.update(grads, state, params))
    state = {**opt.init(params), "lr": np.float32(0.25)}
    new_params, new_state = step({"w": np.ones(2)}, state, params)
    assert new_params["w"].tolist() == [0.75, 0.75]
    assert float(new_state["lr"]) == 0.25 and int(new_state["step"]) == 1


def test_update_mutates_nothing():
    opt = Adam(LR, amsgrad=True)
    params, grads_seq = problem()
    state = opt.init(params)
    params, state = opt.update(grads_seq[0], state, params)
    before = copy.deepcopy((params, state, grads_seq[1]))
    opt.update(grads_seq[1], state, params)
    for a, b in zip(pyasg.tree_leaves((params, state, grads_seq[1])), pyasg.tree_leaves(before)):
        assert np.array_equal(a, b)


def test_a_whole_training_step_is_one_graph_that_learns():
    opt = Adam(lr=0.1)

    def loss_fn(params, x, y):
        return pyasg.mean((x @ params["w"] + params["b"] - y) ** 2)

    @pyasg.trace
    def train_step(params, state, x, y):
        loss, grads = pyasg.value_and_grad(loss_fn)(params, x, y)
        grads, _ = clip_grad_norm(grads, 10.0)
        params, state = opt.update(grads, state, params)
        return params, state, loss

    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 3)).astype(np.float32)
    y = x @ np.array([[1.0], [-2.0], [0.5]], np.float32) + 0.25
    params = {"w": np.zeros((3, 1), np.float32), "b": np.zeros(1, np.float32)}
    state = opt.init(params)
    for _ in range(300):
        params, state, loss = train_step(params, state, x, y)
    assert train_step.cache_size == 1
    assert float(loss) < 1e-4
    np.testing.assert_allclose(params["w"].ravel(), [1.0, -2.0, 0.5], atol=1e-2)


# --------------------------------------------------------------------------- errors


INVALID = [
    "SGD(lr=-1.0)", "SGD(momentum=-0.1)", "SGD(weight_decay=-1.0)", "SGD(nesterov=True)",
    "SGD(momentum=0.9, dampening=0.1, nesterov=True)", "Adam(betas=(1.0, 0.999))",
    "Adam(betas=(0.9, -0.1))", "Adam(eps=-1.0)", "Adam(weight_decay=-0.1)", "AdamW(lr=-0.1)",
    "RMSprop(alpha=-0.5)", "RMSprop(eps=-1.0)", "RMSprop(momentum=-1.0)",
    "SGD(lr=0.1, schedule=StepLR(0.1, 10))", "SGD(schedule=0.1)",
]


@pytest.mark.parametrize("expression", INVALID)
def test_invalid_hyperparameters_raise_a_value_error_that_is_a_pyasg_error(expression):
    names = {"SGD": SGD, "Adam": Adam, "AdamW": AdamW, "RMSprop": RMSprop, "StepLR": StepLR}
    with pytest.raises(HyperparameterError) as info:
        eval(expression, names)
    assert isinstance(info.value, ValueError) and isinstance(info.value, PyasgError)


def test_mismatched_trees_and_types_are_reported():
    opt = Adam()
    params = {"w": np.ones(2, np.float32)}
    state = opt.init(params)
    with pytest.raises(PyasgError, match="grads have structure"):
        opt.update({"v": np.ones(2, np.float32)}, state, params)
    with pytest.raises(ShapeError, match="gradient of 'w' is f32\\[3\\]"):
        opt.update({"w": np.ones(3, np.float32)}, state, params)
    with pytest.raises(PyasgError, match="state needs keys"):
        opt.update(params, SGD(momentum=0.9).init(params), params)
    with pytest.raises(PyasgError, match="state\\['exp_avg'\\] has structure"):
        opt.update(params, {**state, "exp_avg": {"v": np.ones(2)}}, params)
    with pytest.raises(ShapeError, match="float parameters only"):
        opt.init({"n": np.ones(2, np.int32)})


def test_repr_shows_the_hyperparameters():
    assert repr(RMSprop(0.5, centered=True, maximize=True)) == (
        "RMSprop(lr=0.5, alpha=0.99, eps=1e-08, weight_decay=0.0, momentum=0.0, "
        "centered=True, maximize=True)")
    assert repr(SGD(schedule=StepLR(0.5, 3))) == (
        "SGD(momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, "
        "schedule=StepLR(lr=0.5, step_size=3, gamma=0.1))")


# --------------------------------------------------------------------------- clipping


def test_clip_grad_norm_of_a_norm_5_gradient_returns_5_and_leaves_norm_1():
    g = np.zeros((3, 4), np.float32)
    g[0, 0], g[2, 3] = 3.0, 4.0
    clipped, norm = clip_grad_norm({"w": g}, max_norm=1.0)
    assert float(norm) == 5.0
    assert clipped["w"].dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(clipped["w"]), 1.0, rtol=1e-5)
    np.testing.assert_allclose(clipped["w"], g / (5.0 + 1e-6), rtol=1e-6)


def test_clip_grad_norm_uses_the_global_norm_of_the_whole_tree():
    rng = np.random.default_rng(1)
    grads = {"a": rng.normal(size=(3, 4)), "b": [rng.normal(size=5), rng.normal(size=(2, 2))]}
    flat = np.concatenate([x.ravel() for x in pyasg.tree_leaves(grads)])
    total = math.sqrt(float(flat @ flat))
    clipped, norm = clip_grad_norm(grads, max_norm=0.5)
    np.testing.assert_allclose(norm, total, rtol=1e-12)
    scale = 0.5 / (total + 1e-6)
    for got, g in zip(pyasg.tree_leaves(clipped), pyasg.tree_leaves(grads)):
        np.testing.assert_allclose(got, g * scale, rtol=1e-12)


def test_clip_grad_norm_leaves_small_gradients_unchanged():
    grads = {"a": np.array([0.1, -0.2]), "b": np.array([[0.3]])}
    clipped, norm = clip_grad_norm(grads, max_norm=1.0)
    np.testing.assert_allclose(norm, math.sqrt(0.14), rtol=1e-12)
    for got, g in zip(pyasg.tree_leaves(clipped), pyasg.tree_leaves(grads)):
        assert np.array_equal(got, g)


@pytest.mark.parametrize("norm_type", [1.0, 3.0, 2.5, math.inf, "inf"])
def test_clip_grad_norm_other_norms(norm_type):
    rng = np.random.default_rng(2)
    grads = [rng.normal(size=(4, 3)), rng.normal(size=7)]
    flat = np.abs(np.concatenate([g.ravel() for g in grads]))
    p = float(norm_type)
    expected = flat.max() if math.isinf(p) else (flat**p).sum() ** (1 / p)
    clipped, norm = clip_grad_norm(grads, 0.1, norm_type=norm_type)
    np.testing.assert_allclose(norm, expected, rtol=1e-12)
    for got, g in zip(clipped, grads):
        np.testing.assert_allclose(got, g * (0.1 / (expected + 1e-6)), rtol=1e-12)


@given(seed=st.integers(0, 2**16), max_norm=st.floats(1e-3, 10.0),
       scale=st.floats(1e-3, 1e3))
def test_clipped_gradients_have_norm_at_most_max_norm_and_keep_their_direction(seed, max_norm,
                                                                              scale):
    rng = np.random.default_rng(seed)
    grads = {"a": rng.normal(size=(2, 3)) * scale, "b": rng.normal(size=4) * scale}
    clipped, norm = clip_grad_norm(grads, max_norm)
    flat = np.concatenate([x.ravel() for x in pyasg.tree_leaves(clipped)])
    orig = np.concatenate([x.ravel() for x in pyasg.tree_leaves(grads)])
    assert np.linalg.norm(flat) <= max_norm * (1 + 1e-12)
    np.testing.assert_allclose(flat * np.linalg.norm(orig), orig * np.linalg.norm(flat),
                               rtol=1e-9, atol=1e-12)
    if float(norm) + 1e-6 <= max_norm:
        assert np.array_equal(flat, orig)


def test_clip_grad_norm_of_no_gradients_is_zero():
    clipped, norm = clip_grad_norm({}, 1.0)
    assert clipped == {} and float(norm) == 0.0


def test_clipping_traces_and_equals_the_eager_result():
    rng = np.random.default_rng(3)
    grads = {"a": rng.normal(size=(3, 4)).astype(np.float32),
             "b": rng.normal(size=4).astype(np.float32)}

    @pyasg.trace
    def clip(grads, max_norm):
        clipped, norm = clip_grad_norm(grads, max_norm)
        return clipped, norm, clip_grad_value(grads, max_norm)

    clipped, norm, by_value = clip(grads, np.float32(0.5))
    e_clipped, e_norm = clip_grad_norm(grads, np.float32(0.5))
    assert np.array_equal(norm, e_norm)
    for path in grads:
        assert np.array_equal(clipped[path], e_clipped[path])
        np.testing.assert_array_equal(by_value[path], np.clip(grads[path], -0.5, 0.5))


def test_clip_grad_value_limits_every_element():
    grads = {"a": np.array([-3.0, -0.1, 0.0, 0.2, 5.0]), "b": [np.array([[0.3, -0.31]])]}
    clipped = clip_grad_value(grads, 0.3)
    np.testing.assert_array_equal(clipped["a"], [-0.3, -0.1, 0.0, 0.2, 0.3])
    np.testing.assert_array_equal(clipped["b"][0], [[0.3, -0.3]])
    with pytest.raises(HyperparameterError):
        clip_grad_value(grads, -1.0)


# --------------------------------------------------------------------------- torch cross-checks


TORCH_CASES = [
    ("SGD", dict(lr=LR, momentum=0.9, dampening=0.25, weight_decay=0.1, maximize=True)),
    ("SGD", dict(lr=LR, momentum=0.9, nesterov=True, weight_decay=0.1)),
    ("Adam", dict(lr=LR, betas=(0.8, 0.9), eps=0.01, weight_decay=0.1, amsgrad=True)),
    ("Adam", dict(lr=LR, weight_decay=0.1, decoupled_weight_decay=True)),
    ("AdamW", dict(lr=LR, betas=(0.8, 0.9), eps=0.01, amsgrad=True, maximize=True)),
    ("RMSprop", dict(lr=LR, alpha=0.8, eps=0.01, weight_decay=0.1, momentum=0.5,
                     centered=True)),
    ("RMSprop", dict(lr=LR, alpha=0.8, eps=0.01)),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("name", "options"), TORCH_CASES, ids=[n for n, _ in TORCH_CASES])
def test_trajectories_match_torch(name, options, mode):
    torch = pytest.importorskip("torch")
    params, grads_seq = problem(steps=10)
    ours = {"SGD": SGD, "Adam": Adam, "AdamW": AdamW, "RMSprop": RMSprop}[name](**options)
    trajectory, _ = run(ours, params, grads_seq, mode)

    tensors = {k: torch.nn.Parameter(torch.tensor(v)) for k, v in leaves(params).items()}
    opt = getattr(torch.optim, name)(list(tensors.values()), **options)
    for k, grads in enumerate(grads_seq):
        for path, g in leaves(grads).items():
            tensors[path].grad = torch.tensor(g)
        opt.step()
        for path, value in leaves(trajectory[k]).items():
            np.testing.assert_allclose(value, tensors[path].detach().numpy(), rtol=1e-10,
                                       atol=1e-12, err_msg=f"{path} after update {k + 1}")


def test_clip_grad_norm_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    grads = [rng.normal(size=(3, 4)), rng.normal(size=6)]
    for norm_type in (1.0, 2.0, 3.0, math.inf):
        tensors = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
        for t, g in zip(tensors, grads):
            t.grad = torch.tensor(g)
        total = torch.nn.utils.clip_grad_norm_(tensors, 0.5, norm_type=norm_type)
        clipped, norm = clip_grad_norm(grads, 0.5, norm_type=norm_type)
        np.testing.assert_allclose(norm, total.item(), rtol=1e-12)
        for got, t in zip(clipped, tensors):
            np.testing.assert_allclose(got, t.grad.numpy(), rtol=1e-12)
