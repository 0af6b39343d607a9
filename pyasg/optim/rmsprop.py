"""RMSprop with momentum and the centered variant (torch.optim.RMSprop).

>>> import numpy as np
>>> opt = RMSprop(lr=0.01, alpha=0.0, eps=0.0)
>>> params = {"w": np.array([1.0, 1.0], np.float32)}
>>> state = opt.init(params)
>>> params, state = opt.update({"w": np.array([4.0, -0.5], np.float32)}, state, params)
>>> params["w"].tolist()  # alpha = 0: g / |g|, a sign step
[0.9900000095367432, 1.0099999904632568]
"""

from __future__ import annotations

from typing import Any

from pyasg.array import functional as F
from pyasg.optim.base import Optimizer, Schedule, flag, hyperparameter, l2


class RMSprop(Optimizer):
    """torch.optim.RMSprop as a pure `init` / `update` pair.

    Per parameter, with g the gradient (negated when `maximize`):

        g = g + weight_decay * p
        v = alpha * v + (1 - alpha) * g * g
        avg = sqrt(v) + eps,  or, centered:
              a = alpha * a + (1 - alpha) * g;  avg = sqrt(v - a * a) + eps
        b = momentum * b + g / avg;  p = p - lr * b     (momentum > 0; b starts at 0)
        p = p - lr * g / avg                            (momentum = 0)

    Slots: `square_avg` (v), `momentum_buffer` (b) when momentum > 0, and
    `grad_avg` (a) when centered. Arguments, defaults (lr=1e-2, alpha=0.99,
    eps=1e-8) and validation are PyTorch's. Differences: no `params` argument; no
    `foreach`/`capturable`/`differentiable` (one compiled graph); `schedule=`
    drives the learning rate.

    >>> RMSprop(momentum=0.9, centered=True)
    RMSprop(lr=0.01, alpha=0.99, eps=1e-08, weight_decay=0.0, momentum=0.9, centered=True)
    """

    default_lr = 1e-2

    def __init__(self, lr: float | None = None, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False, *,
                 maximize: bool = False, schedule: Schedule | None = None) -> None:
        super().__init__(lr, schedule=schedule, maximize=maximize)
        self.alpha = hyperparameter(alpha, "RMSprop", "alpha")
        self.eps = hyperparameter(eps, "RMSprop", "eps")
        self.weight_decay = hyperparameter(weight_decay, "RMSprop", "weight_decay")
        self.momentum = hyperparameter(momentum, "RMSprop", "momentum")
        self.centered = flag(centered, "RMSprop", "centered")
        self.slots = (("square_avg",) + (("momentum_buffer",) if self.momentum > 0 else ())
                      + (("grad_avg",) if self.centered else ()))

    def hyperparameters(self) -> dict[str, object]:
        return {"lr": self.lr, "alpha": self.alpha, "eps": self.eps,
                "weight_decay": self.weight_decay, "momentum": self.momentum,
                "centered": self.centered}

    def update_leaf(self, p: Any, g: Any, slots: dict[str, Any], step: Any,
                    lr: Any) -> tuple[Any, dict[str, Any]]:
        alpha = self.alpha
        g = l2(g, p, self.weight_decay)
        v = F.add(F.mul(alpha, slots["square_avg"]), F.mul(1.0 - alpha, F.mul(g, g)))
        new_slots = {"square_avg": v}
        if self.centered:
            a = F.add(F.mul(alpha, slots["grad_avg"]), F.mul(1.0 - alpha, g))
            new_slots["grad_avg"] = a
            v = F.sub(v, F.mul(a, a))
        avg = F.add(F.sqrt(v), self.eps)
        if self.momentum > 0:
            buf = F.add(F.mul(self.momentum, slots["momentum_buffer"]), F.div(g, avg))
            new_slots["momentum_buffer"] = buf
            return F.sub(p, F.mul(lr, buf)), new_slots
        return F.sub(p, F.mul(lr, F.div(g, avg))), new_slots
