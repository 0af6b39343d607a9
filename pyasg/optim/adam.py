"""Adam (with AMSGrad) and AdamW, as torch.optim.Adam and torch.optim.AdamW.

>>> import numpy as np
>>> opt = AdamW(lr=0.1)
>>> params = {"w": np.array([1.0, -1.0])}
>>> state = opt.init(params)
>>> params, state = opt.update({"w": np.array([0.5, -2.0])}, state, params)
>>> params["w"].round(4).tolist()  # first step: p * (1 - lr*wd) - lr * sign(g)
[0.899, -0.899]
"""

from __future__ import annotations

from typing import Any

from pyasg.array import functional as F
from pyasg.nn import checks
from pyasg.optim.base import (
    Optimizer,
    Schedule,
    beta_correction,
    check,
    flag,
    hyperparameter,
    l2,
)


class Adam(Optimizer):
    """torch.optim.Adam as a pure `init` / `update` pair.

    Per parameter, with g the gradient (negated when `maximize`) and t the step
    count including this update:

        g = g + weight_decay * p                  (L2; decoupled_weight_decay: see AdamW)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        v_max = max(v_max, v)                     (amsgrad; v_max replaces v below)
        p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    eps is added after the square root, as in PyTorch. Slots: `exp_avg` (m),
    `exp_avg_sq` (v) and, with amsgrad, `max_exp_avg_sq`. Arguments, defaults and
    validation are PyTorch's. Differences: no `params` argument; no
    `foreach`/`fused`/`capturable`/`differentiable` (one compiled graph); `step` is
    int32 in the state; the bias corrections are computed in the parameter's dtype
    as -expm1(t log beta), which is as accurate in float32 as PyTorch's Python-double
    1 - beta**t (see `beta_correction`); `schedule=` drives the learning rate.

    >>> Adam(amsgrad=True)
    Adam(lr=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.0, amsgrad=True)
    """

    default_lr = 1e-3

    def __init__(self, lr: float | None = None, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False, *,
                 maximize: bool = False, decoupled_weight_decay: bool = False,
                 schedule: Schedule | None = None) -> None:
        super().__init__(lr, schedule=schedule, maximize=maximize)
        name = type(self).__name__
        check(isinstance(betas, (tuple, list)) and len(betas) == 2,
              f"{name}: betas must be a pair (beta1, beta2), got {checks.quote(betas)}")
        self.betas = (hyperparameter(betas[0], name, "betas[0]", "[0, 1)"),
                      hyperparameter(betas[1], name, "betas[1]", "[0, 1)"))
        self.eps = hyperparameter(eps, name, "eps")
        self.weight_decay = hyperparameter(weight_decay, name, "weight_decay")
        self.amsgrad = flag(amsgrad, name, "amsgrad")
        self.decoupled_weight_decay = flag(decoupled_weight_decay, name,
                                           "decoupled_weight_decay")
        self.slots = ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if self.amsgrad else ())

    def hyperparameters(self) -> dict[str, object]:
        out: dict[str, object] = {"lr": self.lr, "betas": self.betas, "eps": self.eps,
                                  "weight_decay": self.weight_decay, "amsgrad": self.amsgrad}
        if self.decoupled_weight_decay and type(self) is Adam:
            out["decoupled_weight_decay"] = True
        return out

    def update_leaf(self, p: Any, g: Any, slots: dict[str, Any], step: Any,
                    lr: Any) -> tuple[Any, dict[str, Any]]:
        beta1, beta2 = self.betas
        if self.decoupled_weight_decay:
            if self.weight_decay != 0:
                p = F.mul(p, F.sub(1.0, F.mul(lr, self.weight_decay)))
        else:
            g = l2(g, p, self.weight_decay)
        m = F.add(F.mul(beta1, slots["exp_avg"]), F.mul(1.0 - beta1, g))
        v = F.add(F.mul(beta2, slots["exp_avg_sq"]), F.mul(1.0 - beta2, F.mul(g, g)))
        new_slots = {"exp_avg": m, "exp_avg_sq": v}
        if self.amsgrad:
            v = F.maximum(slots["max_exp_avg_sq"], v)
            new_slots["max_exp_avg_sq"] = v
        dtype = F.type_of(p).dtype
        step_size = F.div(lr, beta_correction(beta1, step, dtype))
        denom = F.add(F.div(F.sqrt(v), F.sqrt(beta_correction(beta2, step, dtype))), self.eps)
        return F.sub(p, F.mul(step_size, F.div(m, denom))), new_slots


class AdamW(Adam):
    """torch.optim.AdamW: Adam with decoupled weight decay, default 1e-2.

    Before the Adam step, p = p * (1 - lr * weight_decay): the decay shrinks the
    weights directly instead of entering the gradient (and so the moments). Same
    differences from PyTorch as `Adam`.

    >>> AdamW()
    AdamW(lr=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.01, amsgrad=False)
    """

    def __init__(self, lr: float | None = None, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False, schedule: Schedule | None = None) -> None:
        super().__init__(lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         decoupled_weight_decay=True, schedule=schedule)
