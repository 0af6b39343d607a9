"""Stochastic gradient descent with momentum, dampening, Nesterov and weight decay
(torch.optim.SGD).

>>> import numpy as np
>>> opt = SGD(lr=0.5, momentum=0.5)
>>> params = {"w": np.array([1.0])}
>>> state = opt.init(params)
>>> for _ in range(2):
...     params, state = opt.update({"w": np.array([1.0])}, state, params)
>>> params["w"].tolist(), state["momentum_buffer"]["w"].tolist()  # b: 1, then 0.5 + 1
([-0.25], [1.5])
"""

from __future__ import annotations

from typing import Any

from pyasg.array import functional as F
from pyasg.optim.base import Optimizer, Schedule, check, flag, hyperparameter, l2


class SGD(Optimizer):
    """torch.optim.SGD as a pure `init` / `update` pair.

    Per parameter, with g the gradient (negated when `maximize`):

        g = g + weight_decay * p
        b = g                                   on the first update
        b = momentum * b + (1 - dampening) * g  after it
        g = g + momentum * b  if nesterov  else  b       (when momentum != 0)
        p = p - lr * g

    Arguments, defaults and validation are PyTorch's (`nesterov` needs a momentum
    and zero dampening). Differences: there is no `params` argument (the state is
    returned, not kept), `foreach`/`fused`/`differentiable` do not apply (the step is
    one compiled graph, and it is differentiable), the first update is recognised by
    `state["step"] == 0` where PyTorch finds no buffer, and `schedule=` (a callable
    step -> lr, see `pyasg.optim.schedules`) replaces a separate scheduler object.
    The state's slot `momentum_buffer` exists only when momentum != 0.

    >>> SGD(0.1, momentum=0.9, nesterov=True)
    SGD(lr=0.1, momentum=0.9, dampening=0.0, weight_decay=0.0, nesterov=True)
    """

    default_lr = 1e-3

    def __init__(self, lr: float | None = None, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, *, maximize: bool = False,
                 schedule: Schedule | None = None) -> None:
        super().__init__(lr, schedule=schedule, maximize=maximize)
        self.momentum = hyperparameter(momentum, "SGD", "momentum")
        self.dampening = hyperparameter(dampening, "SGD", "dampening", "(-inf, inf)")
        self.weight_decay = hyperparameter(weight_decay, "SGD", "weight_decay")
        self.nesterov = flag(nesterov, "SGD", "nesterov")
        check(not self.nesterov or (self.momentum > 0 and self.dampening == 0),
              "SGD: Nesterov momentum requires a momentum and zero dampening")
        self.slots = ("momentum_buffer",) if self.momentum != 0 else ()

    def hyperparameters(self) -> dict[str, object]:
        return {"lr": self.lr, "momentum": self.momentum, "dampening": self.dampening,
                "weight_decay": self.weight_decay, "nesterov": self.nesterov}

    def update_leaf(self, p: Any, g: Any, slots: dict[str, Any], step: Any,
                    lr: Any) -> tuple[Any, dict[str, Any]]:
        g = l2(g, p, self.weight_decay)
        if self.momentum != 0:
            mu = self.momentum
            running = F.add(F.mul(mu, slots["momentum_buffer"]), F.mul(1.0 - self.dampening, g))
            # PyTorch starts the buffer at g itself (no dampening on the first step)
            buf = F.where(F.equal(step, 1), g, running)
            slots = {"momentum_buffer": buf}
            g = F.add(g, F.mul(mu, buf)) if self.nesterov else buf
        return F.sub(p, F.mul(lr, g)), slots
