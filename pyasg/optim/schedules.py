"""Learning-rate schedules: callables step -> lr, computed with pyasg ops so they trace.

Each is PyTorch's *closed form* of the scheduler of the same name: `sched(k)` is
the learning rate after k calls of PyTorch's `scheduler.step()`, that is, the rate
of update number k (counting from 0). Pass one to an optimiser as `schedule=`; the
optimiser evaluates it inside the compiled step and keeps the result in
`state["lr"]`. `step` may be a Python int, an integer array or a traced int32
value; the result is a float32 scalar.

>>> sched = CosineAnnealingLR(0.1, T_max=100)
>>> [round(float(sched(k)), 6) for k in (0, 50, 100)]
[0.1, 0.05, 0.0]
"""

from __future__ import annotations

import math
from typing import Any

from pyasg.array import functional as F
from pyasg.optim.base import LR_DTYPE, check


def _steps(step: Any) -> Any:
    # as int32 first: a Python int and a Python float would promote to float64
    return F.astype(step, "int32")


def _float(x: Any) -> Any:
    return F.astype(x, LR_DTYPE)


def _power(base: float, exponent: Any) -> Any:
    """base ** exponent for an int32 exponent, in float32.

    exp(k log(base)) rounds `log(base)` once; float32 `base ** k` would round `base`
    and multiply its error by k (0.9999 ** 10000 off by 0.5%).
    """
    if base == 0.0:
        return _float(F.equal(exponent, 0))  # 0 ** 0 = 1, as PyTorch's Python power
    return F.exp(F.mul(_float(exponent), math.log(base)))


def _check_lr(lr: float, name: str) -> float:
    check(lr >= 0.0, f"{name}: Invalid learning rate: {lr}")
    return float(lr)


class Schedule:
    """Base of the schedules: a callable `sched(step) -> lr` with a readable repr."""

    def __call__(self, step: Any) -> Any:
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
        self.lr = _check_lr(lr, "StepLR")
        check(int(step_size) >= 1, f"StepLR: step_size must be a positive int, got {step_size}")
        check(gamma >= 0.0, f"StepLR: gamma must be >= 0, got {gamma}")
        self.step_size, self.gamma = int(step_size), float(gamma)

    def __call__(self, step: Any) -> Any:
        k = F.floor_divide(_steps(step), self.step_size)
        return F.mul(self.lr, _power(self.gamma, k))


class ExponentialLR(Schedule):
    """lr * gamma ** step (torch.optim.lr_scheduler.ExponentialLR).

    >>> [round(float(ExponentialLR(1.0, gamma=0.5)(k)), 6) for k in range(4)]
    [1.0, 0.5, 0.25, 0.125]
    """

    def __init__(self, lr: float, gamma: float) -> None:
        self.lr = _check_lr(lr, "ExponentialLR")
        check(gamma >= 0.0, f"ExponentialLR: gamma must be >= 0, got {gamma}")
        self.gamma = float(gamma)

    def __call__(self, step: Any) -> Any:
        return F.mul(self.lr, _power(self.gamma, _steps(step)))


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
        self.lr = _check_lr(lr, "CosineAnnealingLR")
        check(int(T_max) >= 1, f"CosineAnnealingLR: T_max must be a positive int, got {T_max}")
        self.T_max, self.eta_min = int(T_max), float(eta_min)

    def __call__(self, step: Any) -> Any:
        return _cosine(_steps(step), self.lr, self.T_max, self.eta_min)


def _cosine(step: Any, lr: float, t_max: int, eta_min: float) -> Any:
    # (1 + cos(pi s / T)) / 2 = sin(pi r / (2T)) ** 2 with r = T - s. The sine of the
    # (exact, integer) distance to T_max keeps the rate's relative accuracy near the end,
    # where 1 + cos would cancel and the rate is smallest. sin**2 has period 2T in r, so
    # r is first reduced to [-T, T) in int32: past T_max the float32 argument stays small.
    r = F.sub(F.mod(F.sub(2 * t_max, step), 2 * t_max), t_max)
    x = F.mul(_float(r), math.pi / (2 * t_max))
    s = F.sin(x)
    return F.add(eta_min, F.mul(lr - eta_min, F.mul(s, s)))


def _linear_factor(step: Any, warmup_steps: int, start_factor: float) -> Any:
    # f + (1 - f) * step / W adds two positive terms (accurate even for a tiny f); from
    # step W on the factor is chosen as exactly 1, so the rate after warmup is the base
    # rate bit for bit (float32 f + (1 - f) need not round to 1).
    ramp = F.add(start_factor, F.mul(1.0 - start_factor,
                                     F.div(_float(step), float(warmup_steps))))
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
        self.lr = _check_lr(lr, "LinearWarmupLR")
        check(int(warmup_steps) >= 0,
              f"LinearWarmupLR: warmup_steps must be >= 0, got {warmup_steps}")
        check(0.0 <= start_factor <= 1.0,
              f"LinearWarmupLR: start_factor must be in [0, 1], got {start_factor}")
        self.warmup_steps, self.start_factor = int(warmup_steps), float(start_factor)

    def __call__(self, step: Any) -> Any:
        step = _steps(step)
        if self.warmup_steps == 0:
            return F.full((), self.lr, LR_DTYPE, like=step)
        return F.mul(self.lr, _linear_factor(step, self.warmup_steps, self.start_factor))


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
        self.lr = _check_lr(lr, "WarmupCosineAnnealingLR")
        check(int(warmup_steps) >= 0,
              f"WarmupCosineAnnealingLR: warmup_steps must be >= 0, got {warmup_steps}")
        check(int(T_max) >= 1,
              f"WarmupCosineAnnealingLR: T_max must be a positive int, got {T_max}")
        check(0.0 <= start_factor <= 1.0,
              f"WarmupCosineAnnealingLR: start_factor must be in [0, 1], got {start_factor}")
        self.warmup_steps, self.T_max = int(warmup_steps), int(T_max)
        self.eta_min, self.start_factor = float(eta_min), float(start_factor)

    def __call__(self, step: Any) -> Any:
        step = _steps(step)
        cosine = _cosine(F.sub(step, self.warmup_steps), self.lr, self.T_max, self.eta_min)
        if self.warmup_steps == 0:
            return cosine
        warm = F.mul(self.lr, _linear_factor(step, self.warmup_steps, self.start_factor))
        return F.where(F.less(step, self.warmup_steps), warm, cosine)


__all__ = ["CosineAnnealingLR", "ExponentialLR", "LinearWarmupLR", "Schedule", "StepLR",
           "WarmupCosineAnnealingLR"]
