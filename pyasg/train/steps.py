"""The compiled functions of a `Trainer`: the training step, the two steps of gradient
accumulation, and the evaluation step.

Each is a `pyasg.jit` function, traced and compiled once per batch shape. With one
micro-batch per update the training step is ONE graph: forward, `value_and_grad`,
clipping and the optimiser's update. With `k > 1` micro-batches, `micro` adds each
micro-batch's gradient, weighted by its share of the update's samples, into an
accumulator, and `apply` clips the sum and updates: for a loss that is a mean over the
batch (every pyasg loss, by default), the sum is the gradient of the mean loss over
all k micro-batches, the big batch's gradient.

The arguments a step gives away are donated (`jit(donate_argnums=…)`): the parameters,
the optimiser state's per-parameter slots (not its two scalars: see `SCALARS`), the
model state and the accumulator. On numpy their arrays are overwritten with the
results, so an update copies nothing.

The random key is split inside the step: `rng, key = split(rng)`, `key` goes to the
model (dropout) and `rng` comes back for the next step, so the keys a run draws depend
on the starting key and the step alone.

>>> import numpy as np
>>> from pyasg.optim import SGD
>>> def objective(params, model_state, key, batch):
...     x, y = batch
...     return ((x * params["w"] - y) ** 2).mean(), model_state
>>> steps = Steps(objective, None, SGD(lr=0.5), clip_norm=None, clip_value=None,
...               backend="numpy", donate=False, name="demo")
>>> params = {"w": np.zeros(1, np.float32)}
>>> x, y = np.ones(4, np.float32), np.full(4, 2.0, np.float32)
>>> params, _, _, _, loss, extras = steps.train(params, SGD(lr=0.5).init(params), {},
...                                             np.zeros(2, np.uint32), (x, y))
>>> float(loss), params["w"].tolist(), extras
(4.0, [2.0], {})
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pyasg.api import jit, value_and_grad
from pyasg.array import functional as F
from pyasg.array import random
from pyasg.optim.base import Optimizer
from pyasg.optim.clip import clip_grad_norm, clip_grad_value
from pyasg.trace.tree import tree_map

__all__ = ["SCALARS", "Objective", "Steps"]

#: `objective(params, model_state, key, batch) -> (loss, new_model_state)`: the mean loss
#: of a batch in training mode (dropout on, with `key`; batch statistics updated).
Objective = Callable[[Any, Any, Any, Any], tuple[Any, Any]]


def _split(rng: Any) -> tuple[Any, Any]:
    """(the next step's rng, this step's key)."""
    keys = random.split(rng, 2)
    return keys[0], keys[1]


#: The optimiser state's scalars (`pyasg.optim.base`): passed beside its per-parameter
#: slots and never donated. They are worth no memory, and a donated scalar that a step
#: returns unchanged (the learning rate without a schedule) comes back, on wgpu, holding
#: another scalar result of the step (its loss) from its second call on.
SCALARS = ("step", "lr")


def _parts(opt_state: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the scalars, the slots) of an optimiser state."""
    return ({k: v for k, v in opt_state.items() if k in SCALARS},
            {k: v for k, v in opt_state.items() if k not in SCALARS})


class Steps:
    """The jitted functions of one trainer (see the module docstring).

    - `train(params, opt_state, model_state, rng, batch)` ->
      `(params, opt_state, model_state, rng, loss, extras)`;
    - `micro(params, acc, model_state, rng, batch, weight)` ->
      `(acc + weight * grad, model_state, rng, loss)`, `weight` a float64 scalar array;
    - `apply(params, opt_state, acc)` -> `(params, opt_state, extras)`;
    - `evaluate(params, model_state, batch)`: `evaluation`'s result (None: no evaluation).

    `extras` is `{"grad_norm": norm}` when clipping by norm (the norm before clipping),
    else `{}`. `compiled` holds the jit functions by name (their `cache_size`: how many
    batch shapes each was compiled for).
    """

    def __init__(self, objective: Objective, evaluation: Callable[..., Any] | None,
                 optimizer: Optimizer, *, clip_norm: float | None, clip_value: float | None,
                 backend: Any, donate: bool, name: str) -> None:
        self.objective, self.optimizer = objective, optimizer
        self.clip_norm, self.clip_value = clip_norm, clip_value

        def give(*positions: int) -> tuple[int, ...]:
            return positions if donate else ()

        # (params, slots, scalars, ...): the scalars, argument 2, are never donated
        self.compiled = {
            "train": jit(self._train, backend=backend, name=f"{name}_step",
                         donate_argnums=give(0, 1, 3)),
            "micro": jit(self._micro, backend=backend, name=f"{name}_micro_step",
                         donate_argnums=give(1, 2)),
            "apply": jit(self._apply, backend=backend, name=f"{name}_update",
                         donate_argnums=give(0, 1, 3)),
        }
        self.micro = self.compiled["micro"]
        self.evaluate = None if evaluation is None else jit(
            evaluation, backend=backend, name=f"{name}_eval")
        if self.evaluate is not None:
            self.compiled["evaluate"] = self.evaluate

    def train(self, params: Any, opt_state: dict[str, Any], model_state: Any, rng: Any,
              batch: Any) -> tuple:
        """One update from one batch (the optimiser state whole, in and out)."""
        scalars, slots = _parts(opt_state)
        params, slots, scalars, model_state, rng, loss, extras = self.compiled["train"](
            params, slots, scalars, model_state, rng, batch)
        return params, {**scalars, **slots}, model_state, rng, loss, extras

    def apply(self, params: Any, opt_state: dict[str, Any], acc: Any) -> tuple:
        """One update from an accumulated gradient (the optimiser state whole)."""
        scalars, slots = _parts(opt_state)
        params, slots, scalars, extras = self.compiled["apply"](params, slots, scalars, acc)
        return params, {**scalars, **slots}, extras

    def _gradient(self, params: Any, model_state: Any, rng: Any, batch: Any) -> tuple:
        rng, key = _split(rng)
        (loss, model_state), grads = value_and_grad(self.objective, has_aux=True)(
            params, model_state, key, batch)
        return loss, grads, model_state, rng

    def _clip(self, grads: Any) -> tuple[Any, dict[str, Any]]:
        extras: dict[str, Any] = {}
        if self.clip_value is not None:
            grads = clip_grad_value(grads, self.clip_value)
        if self.clip_norm is not None:
            grads, extras["grad_norm"] = clip_grad_norm(grads, self.clip_norm)
        return grads, extras

    def _update(self, params: Any, slots: Any, scalars: Any, grads: Any) -> tuple:
        params, opt_state = self.optimizer.update(grads, {**scalars, **slots}, params)
        scalars, slots = _parts(opt_state)
        return params, slots, scalars

    def _train(self, params: Any, slots: Any, scalars: Any, model_state: Any, rng: Any,
               batch: Any) -> tuple:
        loss, grads, model_state, rng = self._gradient(params, model_state, rng, batch)
        grads, extras = self._clip(grads)
        params, slots, scalars = self._update(params, slots, scalars, grads)
        return params, slots, scalars, model_state, rng, loss, extras

    def _micro(self, params: Any, acc: Any, model_state: Any, rng: Any, batch: Any,
               weight: Any) -> tuple:
        loss, grads, model_state, rng = self._gradient(params, model_state, rng, batch)
        # `weight` comes as a float64 array (a Python float would be rounded to float32 on
        # its way in) and is cast to each gradient's dtype here.
        acc = tree_map(lambda a, g: a + F.astype(weight, F.type_of(g).dtype) * g, acc, grads)
        return acc, model_state, rng, loss

    def _apply(self, params: Any, slots: Any, scalars: Any, acc: Any) -> tuple:
        grads, extras = self._clip(acc)
        params, slots, scalars = self._update(params, slots, scalars, grads)
        return params, slots, scalars, extras
