"""Learning-rate schedules equal PyTorch's closed forms, trace, and drive state["lr"] in a
compiled training step.

Expected values are the closed forms written here in double precision with `math`;
the schedules compute in float32, hence rtol 1e-6.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import pyasg
from pyasg.optim import (
    SGD,
    Adam,
    CosineAnnealingLR,
    ExponentialLR,
    HyperparameterError,
    LinearWarmupLR,
    StepLR,
    WarmupCosineAnnealingLR,
)

STEPS = range(0, 130)


def closed_step(lr, step_size, gamma):
    return lambda k: lr * gamma ** (k // step_size)


def closed_exponential(lr, gamma):
    return lambda k: lr * gamma**k


def closed_cosine(lr, t_max, eta_min=0.0):
    return lambda k: eta_min + (lr - eta_min) * (1 + math.cos(math.pi * k / t_max)) / 2


def closed_linear(lr, warmup, start_factor):
    return lambda k: lr * (start_factor + (1 - start_factor) * min(k, warmup) / warmup)


def closed_warmup_cosine(lr, warmup, t_max, eta_min, start_factor):
    warm, cosine = closed_linear(lr, warmup, start_factor), closed_cosine(lr, t_max, eta_min)
    return lambda k: warm(k) if k < warmup else cosine(k - warmup)


CASES = [
    (StepLR(0.1, step_size=7, gamma=0.5), closed_step(0.1, 7, 0.5)),
    (StepLR(2.0, step_size=1), closed_step(2.0, 1, 0.1)),
    (ExponentialLR(0.1, gamma=0.97), closed_exponential(0.1, 0.97)),
    (CosineAnnealingLR(0.1, T_max=100), closed_cosine(0.1, 100)),
    (CosineAnnealingLR(0.3, T_max=37, eta_min=0.01), closed_cosine(0.3, 37, 0.01)),
    (LinearWarmupLR(0.1, warmup_steps=10, start_factor=0.25), closed_linear(0.1, 10, 0.25)),
    (LinearWarmupLR(0.1, warmup_steps=5), closed_linear(0.1, 5, 1 / 3)),
    (WarmupCosineAnnealingLR(0.1, warmup_steps=10, T_max=50, eta_min=0.001, start_factor=0.0),
     closed_warmup_cosine(0.1, 10, 50, 0.001, 0.0)),
]
IDS = [repr(s) for s, _ in CASES]


def assert_close_to(got, expected):
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9)


def test_cosine_annealing_is_lr_half_and_zero_at_0_half_and_t_max():
    sched = CosineAnnealingLR(0.1, T_max=100)
    assert_close_to([float(sched(k)) for k in (0, 50, 100)], [0.1, 0.05, 0.0])


@pytest.mark.parametrize(("sched", "closed"), CASES, ids=IDS)
def test_schedule_equals_its_closed_form_at_every_step(sched, closed):
    assert_close_to([float(sched(k)) for k in STEPS], [closed(k) for k in STEPS])


@pytest.mark.parametrize(("sched", "closed"), CASES, ids=IDS)
def test_traced_schedule_equals_the_eager_one_bit_for_bit(sched, closed):
    traced = pyasg.jit(lambda step: sched(step))
    for k in STEPS:
        got = traced(np.int32(k))
        assert got.dtype == np.float32
        assert np.array_equal(got, sched(k)), k


@given(lr=st.floats(1e-5, 10.0), step_size=st.integers(1, 50), gamma=st.floats(0.01, 1.0),
       k=st.integers(0, 10_000))
def test_step_lr_for_generated_arguments(lr, step_size, gamma, k):
    assert_close_to(float(StepLR(lr, step_size, gamma)(k)), closed_step(lr, step_size, gamma)(k))


@given(lr=st.floats(1e-5, 10.0), gamma=st.floats(0.5, 1.0), k=st.integers(0, 100_000))
def test_exponential_lr_error_grows_with_the_decay_not_with_the_step(lr, gamma, k):
    # float32 gamma ** k would be off by k ulps of gamma: 0.5% at 0.9999 ** 10000; the
    # error may only grow with the exponent |k log gamma| (the number of e-foldings)
    expected = closed_exponential(lr, gamma)(k)
    e_foldings = abs(k * math.log(gamma))
    np.testing.assert_allclose(float(ExponentialLR(lr, gamma)(k)), expected,
                               rtol=1e-6 * (1 + e_foldings), atol=1e-37)


@given(lr=st.floats(1e-4, 10.0), t_max=st.integers(1, 100_000), frac=st.floats(0.0, 1.0),
       eta_min=st.floats(0.0, 1e-4))
def test_cosine_keeps_relative_accuracy_up_to_t_max(lr, t_max, frac, eta_min):
    k = round(frac * t_max)
    # relative to the rate itself, even near T_max where it is tiny
    expected = closed_cosine(lr, t_max, eta_min)(k)
    np.testing.assert_allclose(float(CosineAnnealingLR(lr, t_max, eta_min)(k)), expected,
                               rtol=1e-5, atol=1e-30)


@given(lr=st.floats(1e-5, 10.0), warmup=st.integers(1, 1000), start=st.floats(0.0, 1.0),
       t_max=st.integers(1, 1000), k=st.integers(0, 3000))
def test_warmup_schedules_for_generated_arguments(lr, warmup, start, t_max, k):
    assert_close_to(float(LinearWarmupLR(lr, warmup, start)(k)),
                    closed_linear(lr, warmup, start)(k))
    assert_close_to(float(WarmupCosineAnnealingLR(lr, warmup, t_max, 0.0, start)(k)),
                    closed_warmup_cosine(lr, warmup, t_max, 0.0, start)(k))


def test_warmup_reaches_exactly_the_base_rate():
    lr = np.float32(0.1)
    assert all(LinearWarmupLR(0.1, 7, 1 / 3)(k) == lr for k in range(7, 20))
    assert WarmupCosineAnnealingLR(0.1, 7, T_max=20)(7) == lr
    assert LinearWarmupLR(0.1, 0)(0) == lr  # no warmup at all


def test_cosine_past_t_max_follows_the_formula_upwards_as_pytorch():
    sched = CosineAnnealingLR(1.0, T_max=10)
    assert_close_to([float(sched(k)) for k in (10, 15, 20)], [0.0, 0.5, 1.0])


@pytest.mark.parametrize("step", [3, np.int32(3), np.int64(3), np.array(3)])
def test_a_schedule_takes_any_integer_step_and_gives_float32(step):
    got = StepLR(1.0, step_size=2, gamma=0.5)(step)
    assert got.dtype == np.float32 and float(got) == 0.5


@pytest.mark.parametrize("expression", [
    "StepLR(0.1, step_size=0)", "StepLR(-0.1, step_size=2)", "StepLR(0.1, 2, gamma=-1.0)",
    "ExponentialLR(0.1, gamma=-0.5)", "CosineAnnealingLR(0.1, T_max=0)",
    "LinearWarmupLR(0.1, warmup_steps=-1)", "LinearWarmupLR(0.1, 5, start_factor=1.5)",
    "WarmupCosineAnnealingLR(0.1, 5, T_max=0)",
    "WarmupCosineAnnealingLR(0.1, 5, 10, start_factor=-0.1)",
])
def test_invalid_schedule_arguments_raise(expression):
    names = {cls.__name__: cls for cls in (StepLR, ExponentialLR, CosineAnnealingLR,
                                          LinearWarmupLR, WarmupCosineAnnealingLR)}
    with pytest.raises(HyperparameterError):
        eval(expression, names)


# --------------------------------------------------------------------------- inside the step


def test_init_puts_the_schedules_first_rate_in_the_state():
    state = Adam(schedule=LinearWarmupLR(0.1, 10, 0.5)).init({"w": np.ones(2, np.float32)})
    assert state["lr"].dtype == np.float32 and float(state["lr"]) == np.float32(0.05)


def test_a_schedule_inside_the_compiled_step_drives_lr_in_the_state():
    closed = closed_step(0.5, 3, 0.5)
    opt = SGD(schedule=StepLR(0.5, step_size=3, gamma=0.5))

    @pyasg.trace
    def train_step(params, state, grads):
        return opt.update(grads, state, params)

    rng = np.random.default_rng(0)
    params = {"w": rng.normal(size=(3, 2))}
    state = opt.init(params)
    expected = params["w"]
    for k in range(10):
        grads = {"w": rng.normal(size=(3, 2))}
        assert_close_to(float(state["lr"]), closed(k))  # the rate update k uses
        params, state = train_step(params, state, grads)
        expected = expected - closed(k) * grads["w"]  # plain SGD with the scheduled rate
        assert int(state["step"]) == k + 1
        assert_close_to(float(state["lr"]), closed(k + 1))
        np.testing.assert_allclose(params["w"], expected, rtol=1e-6)
    assert train_step.cache_size == 1  # the schedule is in the graph, not a retrace per rate


def test_adam_with_warmup_cosine_in_the_compiled_step_uses_each_steps_rate():
    closed = closed_warmup_cosine(0.01, 3, 8, 0.0, 0.5)
    opt = Adam(betas=(0.5, 0.75), schedule=WarmupCosineAnnealingLR(0.01, 3, 8, start_factor=0.5))
    step = pyasg.trace(lambda grads, state, params: opt.update(grads, state, params))
    rng = np.random.default_rng(1)
    p = rng.normal(size=5)
    params, state = {"p": p}, opt.init({"p": p})
    m = v = np.zeros(5)
    for t in range(1, 13):
        g = rng.normal(size=5)
        params, state = step({"p": g}, state, params)
        m, v = 0.5 * m + 0.5 * g, 0.75 * v + 0.25 * g * g
        p = p - closed(t - 1) * (m / (1 - 0.5**t)) / (np.sqrt(v / (1 - 0.75**t)) + 1e-8)
        np.testing.assert_allclose(params["p"], p, rtol=1e-6)
        assert_close_to(float(state["lr"]), closed(t))


def test_state_lr_is_set_by_the_schedule_after_a_manual_change():
    opt = SGD(schedule=ExponentialLR(1.0, gamma=0.5))
    params = {"w": np.zeros(1)}
    state = {**opt.init(params), "lr": np.float32(4.0)}  # used once, for this update
    params, state = opt.update({"w": np.ones(1)}, state, params)
    assert params["w"].tolist() == [-4.0] and float(state["lr"]) == 0.5


# --------------------------------------------------------------------------- torch cross-check


def test_schedules_match_torch_schedulers():
    torch = pytest.importorskip("torch")
    from torch.optim import lr_scheduler as S

    pairs = [
        (lambda o: S.StepLR(o, 7, 0.5), StepLR(0.1, 7, 0.5)),
        (lambda o: S.ExponentialLR(o, 0.93), ExponentialLR(0.1, 0.93)),
        (lambda o: S.CosineAnnealingLR(o, 25, 0.01), CosineAnnealingLR(0.1, 25, 0.01)),
        (lambda o: S.LinearLR(o, 0.25, total_iters=9), LinearWarmupLR(0.1, 9, 0.25)),
        (lambda o: S.SequentialLR(o, [S.LinearLR(o, 0.25, total_iters=9),
                                      S.CosineAnnealingLR(o, 30, 0.01)], milestones=[9]),
         WarmupCosineAnnealingLR(0.1, 9, 30, 0.01, 0.25)),
    ]
    for make, ours in pairs:
        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([p], lr=0.1)
        sched = make(opt)
        for k in range(60):
            assert_close_to(float(ours(k)), sched.get_last_lr()[0])
            opt.step()
            sched.step()


def test_sgd_with_step_lr_matches_torch_with_its_scheduler():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    p0, grads = rng.normal(size=4), [rng.normal(size=4) for _ in range(12)]
    opt = SGD(momentum=0.9, schedule=StepLR(0.5, step_size=4, gamma=0.5))
    step = pyasg.trace(lambda grads, state, params: opt.update(grads, state, params))
    params, state = {"p": p0}, opt.init({"p": p0})

    t = torch.nn.Parameter(torch.tensor(p0))
    t_opt = torch.optim.SGD([t], lr=0.5, momentum=0.9)
    t_sched = torch.optim.lr_scheduler.StepLR(t_opt, step_size=4, gamma=0.5)
    for g in grads:
        params, state = step({"p": g}, state, params)
        t.grad = torch.tensor(g)
        t_opt.step()
        t_sched.step()
        np.testing.assert_allclose(params["p"], t.detach().numpy(), rtol=1e-6)
        assert_close_to(float(state["lr"]), t_sched.get_last_lr()[0])
