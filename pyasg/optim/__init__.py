"""Optimisers, learning-rate schedules and gradient clipping, as pure traceable functions.

PyTorch's names, arguments, defaults and formulas, in optax's shape: an optimiser
gives `state = opt.init(params)` and `params, state = opt.update(grads, state,
params)`, so forward, gradient and update compile into one graph. The learning
rate lives in the state (`state["lr"]`), where a `schedule=` drives it inside the
compiled step; the state is a pytree of arrays that saves and restores exactly.

>>> import numpy as np, pyasg
>>> from pyasg.optim import SGD, StepLR, clip_grad_norm
>>> opt = SGD(momentum=0.5, schedule=StepLR(0.5, step_size=20))
>>> def loss_fn(params, x, y):
...     return pyasg.mean((x @ params["w"] - y) ** 2)
>>> @pyasg.trace
... def train_step(params, state, x, y):
...     loss, grads = pyasg.value_and_grad(loss_fn)(params, x, y)
...     grads, norm = clip_grad_norm(grads, max_norm=1.0)
...     params, state = opt.update(grads, state, params)
...     return params, state, loss
>>> params = {"w": np.zeros((2, 1), np.float32)}
>>> state = opt.init(params)
>>> x, y = np.eye(2, dtype=np.float32), np.ones((2, 1), np.float32)
>>> for _ in range(30):
...     params, state, loss = train_step(params, state, x, y)
>>> int(state["step"]), round(float(state["lr"]), 6), float(loss) < 1e-3
(30, 0.05, True)
"""

from pyasg.optim.adam import Adam, AdamW
from pyasg.optim.base import HyperparameterError, Optimizer
from pyasg.optim.clip import clip_grad_norm, clip_grad_value, global_norm
from pyasg.optim.rmsprop import RMSprop
from pyasg.optim.schedules import (
    CosineAnnealingLR,
    ExponentialLR,
    LinearWarmupLR,
    Schedule,
    StepLR,
    WarmupCosineAnnealingLR,
)
from pyasg.optim.sgd import SGD

__all__ = [
    "SGD", "Adam", "AdamW", "CosineAnnealingLR", "ExponentialLR", "HyperparameterError",
    "LinearWarmupLR", "Optimizer", "RMSprop", "Schedule", "StepLR", "WarmupCosineAnnealingLR",
    "clip_grad_norm", "clip_grad_value", "global_norm",
]
