"""Learning-rate schedules: callables step -> lr, computed with pyasg ops so they trace.

Each is PyTorch's *closed form* of the scheduler of the same name: `sched(k)` is
the learning rate after k calls of PyTorch's `scheduler.step()`, that is, the rate
of update number k (counting from 0). Pass one to an optimiser as `schedule=`; the
optimiser evaluates it inside the compiled step and keeps the result in
`state["lr"]`. `step` may be a Python int, an integer array or a traced int32
value; the result is a scalar of `dtype`, float32 by default: an optimiser asks for
its learning rate's dtype, float64 for float64 parameters, so that the rate keeps
double precision there.

Arguments are checked when a schedule is made (`HyperparameterError`); counts of
steps are int32 in the graph, so they must fit it.

>>> sched = CosineAnnealingLR(0.1, T_max=100)
>>> [round(float(sched(k)), 6) for k in (0, 50, 100)]
[0.1, 0.05, 0.0]
"""

from __future__ import annotations

import math
from typing import Any

from pyasg.array import functional as F
from pyasg.nn import checks
from pyasg.nn.checks import HyperparameterError

#: The dtype a schedule computes in unless it is asked for another.
LR_DTYPE = "float32"
#: The largest step count a schedule takes as an argument (steps are int32).
MAX_STEPS = 2**31 - 1


def _steps(step: Any) -> Any:
    # as int32 first: a Python int and a Python float would promote to float64
    return F.astype(step, "int32")


def _power(base: float, exponent: Any, dtype: str) -> Any:
    """base ** exponent for an int32 exponent, in `dtype`.

    exp(k log(base)) rounds `log(base)` once; float32 `base ** k` would round `base`
    and multiply its error by k (0.9999 ** 10000 off by 0.5%).
    """
    if base == 0.0:
        return F.astype(F.equal(exponent, 0), dtype)  # 0 ** 0 = 1, as Python's power
    return F.exp(F.mul(F.astype(exponent, dtype), math.log(base)))


def _real(value: object, who: str, name: str, within: str = "(-inf, inf)") -> float:
    return checks.real(value, who, name, within, error=HyperparameterError)


def _count(value: object, who: str, name: str, low: int, high: int = MAX_STEPS) -> int:
    return checks.integer(value, who, name, f"[{low}, {high}]", error=HyperparameterError)


def _lr(value: object, who: str) -> float:
    return _real(value, who, "lr (the learning rate)", "[0, inf)")


class Schedule:
    """Base of the schedules: a callable `sched(step, dtype) -> lr` with a readable repr."""

    def __call__(self, step: Any, dtype: str = LR_DTYPE) -> Any:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class StepLR(Schedule):
    """lr * gamma ** (step // step_size): decay by `gamma` every `step_size` steps
    (torch.optim.lr_scheduler.StepLR, default gamma 0.1).

    >>> [round(float(StepLR(1.0, step_size=2)(k)), 6) for k in range(5)]
    [1.0, 1.0, 0.1, 0.1, 0.01]
    """

    def __init__(self, lr: float, step_size: int, gamma: float = 0.1) -> None:
        self.lr = _lr(lr, "StepLR")
        self.step_size = _count(step_size, "StepLR", "step_size", 1)
        self.gamma = _real(gamma, "StepLR", "gamma", "[0, inf)")

    def __call__(self, step: Any, dtype: str = LR_DTYPE) -> Any:
        k = F.floor_divide(_steps(step), self.step_size)
        return F.mul(self.lr, _power(self.gamma, k, dtype))


class ExponentialLR(Schedule):
    """lr * gamma ** step (torch.optim.lr_scheduler.ExponentialLR).

    >>> [round(float(ExponentialLR(1.0, gamma=0.5)(k)), 6) for k in range(4)]
    [1.0, 0.5, 0.25, 0.125]
    """

    def __init__(self, lr: float, gamma: float) -> None:
        self.lr = _lr(lr, "ExponentialLR")
        self.gamma = _real(gamma, "ExponentialLR", "gamma", "[0, inf)")

    def __call__(self, step: Any, dtype: str = LR_DTYPE) -> Any:
        return F.mul(self.lr, _power(self.gamma, _steps(step), dtype))


class CosineAnnealingLR(Schedule):
    """eta_min + (lr - eta_min) * (1 + cos(pi * step / T_max)) / 2
    (torch.optim.lr_scheduler.CosineAnnealingLR's closed form).

    From lr at step 0 down to eta_min at step T_max. Past T_max the formula goes
    on (the rate rises again, period 2 T_max), as PyTorch's does: there are no
    restarts; keep the step at most T_max if a floor is wanted.

    >>> [round(float(CosineAnnealingLR(1.0, T_max=4)(k)), 6) for k in range(5)]
    [1.0, 0.853553, 0.5, 0.146447, 0.0]
    """

    def __init__(self, lr: float, T_max: int, eta_min: float = 0.0) -> None:  # noqa: N803
        self.lr = _lr(lr, "CosineAnnealingLR")
        self.T_max = _count(T_max, "CosineAnnealingLR", "T_max", 1, MAX_STEPS // 2)
        self.eta_min = _real(eta_min, "CosineAnnealingLR", "eta_min")

    def __call__(self, step: Any, dtype: str = LR_DTYPE) -> Any:
        return _cosine(_steps(step), self.lr, self.T_max, self.eta_min, dtype)


def _cosine(step: Any, lr: float, t_max: int, eta_min: float, dtype: str) -> Any:
    # (1 + cos(pi s / T)) / 2 = sin(pi r / (2T)) ** 2 with r = T - s. The sine of the
    # (exact, integer) distance to T_max keeps the rate's relative accuracy near the end,
    # where 1 + cos would cancel and the rate is smallest. sin**2 has period 2T in r, so
    # r is first reduced to [-T, T) in int32: past T_max the float argument stays small
    # (2 T fits int32: T_max is at most MAX_STEPS // 2).
    r = F.sub(F.mod(F.sub(2 * t_max, step), 2 * t_max), t_max)
    x = F.mul(F.astype(r, dtype), math.pi / (2 * t_max))
    s = F.sin(x)
    return F.add(eta_min, F.mul(lr - eta_min, F.mul(s, s)))


def _linear_factor(step: Any, warmup_steps: int, start_factor: float, dtype: str) -> Any:
    # f + (1 - f) * step / W adds two positive terms (accurate even for a tiny f); from
    # step W on the factor is chosen as exactly 1, so the rate after warmup is the base
    # rate bit for bit (float32 f + (1 - f) need not round to 1).
    ramp = F.add(start_factor, F.mul(1.0 - start_factor,
                                     F.div(F.astype(step, dtype), float(warmup_steps))))
    return F.where(F.less(step, warmup_steps), ramp, 1.0)


class LinearWarmupLR(Schedule):
    """lr * (start_factor + (1 - start_factor) * min(step, warmup_steps) / warmup_steps):
    a linear ramp from lr * start_factor to lr, then constant.

    PyTorch's `LinearLR(opt, start_factor, end_factor=1.0, total_iters=warmup_steps)`,
    with the same default start_factor 1/3. Differences: start_factor 0 (warm up from
    zero) is allowed, and warmup_steps 0 means no warmup.

    >>> [round(float(LinearWarmupLR(1.0, warmup_steps=4, start_factor=0.2)(k)), 6)
    ...  for k in range(6)]
    [0.2, 0.4, 0.6, 0.8, 1.0, 1.0]
    """

    def __init__(self, lr: float, warmup_steps: int, start_factor: float = 1.0 / 3) -> None:
        self.lr = _lr(lr, "LinearWarmupLR")
        self.warmup_steps = _count(warmup_steps, "LinearWarmupLR", "warmup_steps", 0)
        self.start_factor = _real(start_factor, "LinearWarmupLR", "start_factor", "[0, 1]")

    def __call__(self, step: Any, dtype: str = LR_DTYPE) -> Any:
        step = _steps(step)
        if self.warmup_steps == 0:
            return F.full((), self.lr, dtype, like=step)
        return F.mul(self.lr, _linear_factor(step, self.warmup_steps, self.start_factor,
                                             dtype))


class WarmupCosineAnnealingLR(Schedule):
    """LinearWarmupLR for `warmup_steps` steps, then CosineAnnealingLR over the next
    `T_max` steps: lr * start_factor ramps to lr at step warmup_steps, then anneals
    to eta_min at step warmup_steps + T_max.

    PyTorch's `SequentialLR(opt, [LinearLR(opt, start_factor, total_iters=W),
    CosineAnnealingLR(opt, T_max, eta_min)], milestones=[W])`; T_max counts the
    cosine phase only, as there. Same differences as LinearWarmupLR.

    >>> sched = WarmupCosineAnnealingLR(1.0, warmup_steps=2, T_max=2, start_factor=0.5)
    >>> [round(float(sched(k)), 6) for k in range(5)]
    [0.5, 0.75, 1.0, 0.5, 0.0]
    """

    def __init__(self, lr: float, warmup_steps: int, T_max: int, eta_min: float = 0.0,  # noqa: N803
                 start_factor: float = 1.0 / 3) -> None:
        who = "WarmupCosineAnnealingLR"
        self.lr = _lr(lr, who)
        self.warmup_steps = _count(warmup_steps, who, "warmup_steps", 0)
        self.T_max = _count(T_max, who, "T_max", 1, MAX_STEPS // 2)
        self.eta_min = _real(eta_min, who, "eta_min")
        self.start_factor = _real(start_factor, who, "start_factor", "[0, 1]")

    def __call__(self, step: Any, dtype: str = LR_DTYPE) -> Any:
        step = _steps(step)
        cosine = _cosine(F.sub(step, self.warmup_steps), self.lr, self.T_max, self.eta_min,
                         dtype)
        if self.warmup_steps == 0:
            return cosine
        warm = F.mul(self.lr, _linear_factor(step, self.warmup_steps, self.start_factor,
                                             dtype))
        return F.where(F.less(step, self.warmup_steps), warm, cosine)


__all__ = ["LR_DTYPE", "CosineAnnealingLR", "ExponentialLR", "LinearWarmupLR", "Schedule",
           "StepLR", "WarmupCosineAnnealingLR"]
