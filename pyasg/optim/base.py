"""The optimiser protocol: `state = opt.init(params)`, then `opt.update(grads, state, params)`.

An optimiser holds its static hyper-parameters (betas, weight decay, …) and gives
two pure, traceable functions, as in optax: nothing is mutated, so `update` can sit
inside `@pyasg.trace` next to the forward pass and `grad`, and the whole training
step is one graph. The state is a plain pytree of arrays:

    {"step": int32[],                 # updates done so far
     "lr": float32[],                 # the learning rate the next update uses
     "<slot>": <tree like params>,    # per-parameter buffers, PyTorch's names
     ...}

so it can be returned from a compiled step, saved under its dotted paths
(`exp_avg.layer.weight`) and restored, and the learning rate can be read or set
(`state["lr"]`) or driven by a `schedule` inside the compiled step. Subclasses
name their slots and write only the per-parameter rule, `update_leaf`.

>>> import numpy as np
>>> from pyasg.optim import SGD
>>> opt = SGD(lr=0.5)
>>> params = {"w": np.array([1.0, 2.0], np.float32)}
>>> state = opt.init(params)
>>> params, state = opt.update({"w": np.array([1.0, -1.0], np.float32)}, state, params)
>>> params["w"].tolist(), int(state["step"]), float(state["lr"])
([0.5, 2.5], 1, 0.5)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from pyasg.array import functional as F
from pyasg.asg.types import is_float
from pyasg.errors import PyasgError, ShapeError
from pyasg.trace.tree import TreeDef, flatten_with_paths, unflatten

#: dtype of state["lr"]: float32 whatever the parameters' dtype, so a schedule
#: computes in float32 and the state runs on backends without f64 (WebGPU).
LR_DTYPE = "float32"
STEP_DTYPE = "int32"

Schedule = Callable[[Any], Any]


class HyperparameterError(PyasgError, ValueError):
    """An optimiser or schedule was given an invalid hyper-parameter.

    Also a `ValueError`, which is what PyTorch raises for the same mistakes.
    """


def check(ok: bool, message: str) -> None:
    """Raise `HyperparameterError(message)` unless `ok`."""
    if not ok:
        raise HyperparameterError(message)


def beta_correction(beta: float, step: object, dtype: str) -> object:
    """1 - beta**step, Adam's bias correction, in `dtype`.

    Computed as -expm1(step * log(beta)): in float32, 1 - 0.999**1 keeps only three
    significant digits of 0.001 (0.999 itself is rounded), this form keeps all.

    >>> float(beta_correction(0.999, np.int32(1), "float32"))  # doctest: +ELLIPSIS
    0.00099999...
    """
    if beta == 0.0:
        return np.ones((), dtype)  # 0**step = 0 for step >= 1; log(0) would be -inf
    t = F.astype(step, dtype)
    return F.neg(F.expm1(F.mul(t, math.log(beta))))


class Optimizer:
    """Base of the optimisers: the state layout, `init`, and `update` over the pytree.

    A subclass sets `slots` (the names of its per-parameter buffers, given by its
    options: no momentum, no momentum buffer) and implements `update_leaf`.
    """

    #: Names of the per-parameter state trees, in the order they appear in the state.
    slots: tuple[str, ...] = ()
    #: PyTorch's default learning rate for this optimiser.
    default_lr: float = 1e-3

    def __init__(self, lr: float | None = None, *, schedule: Schedule | None = None,
                 maximize: bool = False) -> None:
        # With a schedule, the schedule's own base lr is the learning rate; taking an
        # `lr` as well would silently ignore one of the two.
        check(lr is None or schedule is None,
              f"{type(self).__name__}: pass the learning rate to the schedule "
              f"({type(schedule).__name__}(lr, ...)) or as lr=, not both")
        check(schedule is None or callable(schedule),
              f"{type(self).__name__}: schedule must be a callable step -> lr, "
              f"got {type(schedule).__name__}")
        self.lr = self.default_lr if lr is None else float(lr)
        check(self.lr >= 0.0, f"Invalid learning rate: {self.lr}")
        self.schedule = schedule
        self.maximize = bool(maximize)

    # -- what subclasses provide

    def hyperparameters(self) -> dict[str, object]:
        """The constructor's arguments, for `repr`."""
        return {"lr": self.lr}

    def update_leaf(self, p: Any, g: Any, slots: dict[str, Any], step: Any,
                    lr: Any) -> tuple[Any, dict[str, Any]]:
        """One parameter's update: new value and new slots.

        `g` already has the sign `maximize` asks for; `step` is the int32 count
        including this update (1 on the first); `lr` is in `p`'s dtype.
        """
        raise NotImplementedError

    # -- the protocol

    def init(self, params: Any) -> dict[str, Any]:
        """The state before the first update: step 0, the (scheduled) lr, zero slots.

        >>> from pyasg.optim import Adam
        >>> state = Adam().init({"w": np.ones(2, np.float32)})
        >>> list(state), state["exp_avg"]["w"].tolist()
        (['step', 'lr', 'exp_avg', 'exp_avg_sq'], [0.0, 0.0])
        """
        pairs, treedef = flatten_with_paths(params)
        self._check_params(pairs)
        step = np.zeros((), STEP_DTYPE)
        lr = self._lr_at(step) if self.schedule is not None else np.asarray(self.lr, LR_DTYPE)
        state: dict[str, Any] = {"step": step, "lr": lr}
        for name in self.slots:
            state[name] = unflatten(treedef, [F.zeros_like(p) for _, p in pairs])
        return state

    def update(self, grads: Any, state: dict[str, Any], params: Any) -> tuple[Any, dict[str, Any]]:
        """Apply one update; returns `(new_params, new_state)`. Pure: nothing is mutated.

        The update uses `state["lr"]`; with a schedule, the new state's lr is then
        `schedule(new_step)`, the rate of the next update (PyTorch's
        `param_group["lr"]` after `optimizer.step(); scheduler.step()`).
        """
        name = type(self).__name__
        p_pairs, treedef = flatten_with_paths(params)
        g_pairs, g_def = flatten_with_paths(grads)
        if g_def != treedef:
            raise PyasgError(f"{name}.update: grads have structure {g_def!r} but params "
                             f"have {treedef!r}")
        self._check_params(p_pairs)
        slot_leaves = self._check_state(state, treedef)
        step = F.add(F.astype(state["step"], STEP_DTYPE), 1)
        lr = F.astype(state["lr"], LR_DTYPE)
        new_params: list[Any] = []
        new_slots: dict[str, list[Any]] = {s: [] for s in self.slots}
        for i, ((path, p), (_, g)) in enumerate(zip(p_pairs, g_pairs)):
            pt, gt = F.type_of(p), F.type_of(g)
            if gt != pt:
                raise ShapeError(f"{name}.update: the gradient of '{path}' is {gt!r} but the "
                                 f"parameter is {pt!r}")
            if self.maximize:
                g = F.neg(g)
            slots = {s: slot_leaves[s][i] for s in self.slots}
            p, slots = self.update_leaf(p, g, slots, step, F.astype(lr, pt.dtype))
            new_params.append(p)
            for s in self.slots:
                new_slots[s].append(slots[s])
        new_lr = lr if self.schedule is None else self._lr_at(step)
        new_state: dict[str, Any] = {"step": step, "lr": new_lr}
        for s in self.slots:
            new_state[s] = unflatten(treedef, new_slots[s])
        return unflatten(treedef, new_params), new_state

    # -- helpers

    def _lr_at(self, step: Any) -> Any:
        return F.astype(self.schedule(step), LR_DTYPE)

    def _check_params(self, pairs: list[tuple[str, Any]]) -> None:
        for path, p in pairs:
            t = F.type_of(p)
            if not is_float(t.dtype):
                raise ShapeError(f"{type(self).__name__}: parameter '{path or 'params'}' is "
                                 f"{t!r}; an optimiser updates float parameters only")

    def _check_state(self, state: Any, treedef: TreeDef) -> dict[str, list[Any]]:
        """The slot leaves, after checking that `state` fits this optimiser and params."""
        name = type(self).__name__
        keys = ("step", "lr", *self.slots)
        if not isinstance(state, dict) or any(k not in state for k in keys):
            found = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise PyasgError(f"{name}.update: the state needs keys {list(keys)}, got {found}; "
                             f"make it with {name}(...).init(params)")
        leaves = {}
        for s in self.slots:
            pairs, slot_def = flatten_with_paths(state[s])
            if slot_def != treedef:
                raise PyasgError(f"{name}.update: state['{s}'] has structure {slot_def!r} but "
                                 f"params have {treedef!r}")
            leaves[s] = [leaf for _, leaf in pairs]
        return leaves

    def __repr__(self) -> str:
        args = [f"{k}={v!r}" for k, v in self.hyperparameters().items()]
        if self.maximize:
            args.append("maximize=True")
        if self.schedule is not None:
            args = [a for a in args if not a.startswith("lr=")]
            args.append(f"schedule={self.schedule!r}")
        return f"{type(self).__name__}({', '.join(args)})"


def l2(g: Any, p: Any, weight_decay: float) -> Any:
    """g + weight_decay * p: weight decay as an L2 penalty's gradient (PyTorch's
    `weight_decay` in SGD, Adam and RMSprop)."""
    return F.add(g, F.mul(weight_decay, p)) if weight_decay != 0 else g
