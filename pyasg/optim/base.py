"""The optimiser protocol: `state = opt.init(params)`, then `opt.update(grads, state, params)`.

An optimiser holds its static hyper-parameters (betas, weight decay, …) and gives
two pure, traceable functions, as in optax: nothing is mutated, so `update` can sit
inside `@pyasg.trace` next to the forward pass and `grad`, and the whole training
step is one graph. The state is a plain pytree of arrays:

    {"step": int32[],                 # updates done so far
     "lr": float32[] or float64[],    # the learning rate the next update uses
     "<slot>": <tree like params>,    # per-parameter buffers, PyTorch's names
     ...}

so it can be returned from a compiled step, saved under its dotted paths
(`exp_avg.layer.weight`) and restored, and the learning rate can be read or set
(`state["lr"]`) or driven by a `schedule` inside the compiled step. Subclasses
name their slots and write only the per-parameter rule, `update_leaf`.

The learning rate follows the parameters: float32 for float32 parameters (so the
state runs on backends without float64, WebGPU), float64 as soon as one parameter is
float64 (so a float64 model trains as PyTorch's, whose rate is a Python double). A
built-in schedule computes in that dtype too. The other hyper-parameters are Python
floats, which take each parameter's dtype where they meet it.

Hyper-parameters are checked when the optimiser is made (`HyperparameterError`, a
`ValueError` as in PyTorch): reals must be finite, flags True or False.

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
from pyasg.nn import checks
from pyasg.nn.checks import HyperparameterError
from pyasg.optim.schedules import LR_DTYPE
from pyasg.optim.schedules import Schedule as BuiltinSchedule
from pyasg.trace.tree import TreeDef, flatten_with_paths, unflatten

STEP_DTYPE = "int32"

#: A schedule: a built-in `pyasg.optim.Schedule`, or any callable step -> lr.
Schedule = Callable[[Any], Any]

__all__ = ["HyperparameterError", "LR_DTYPE", "Optimizer", "beta_correction", "check",
           "flag", "hyperparameter", "l2", "lr_dtype"]


def check(ok: bool, message: str) -> None:
    """Raise `HyperparameterError(message)` unless `ok`."""
    if not ok:
        raise HyperparameterError(message)


def hyperparameter(value: object, who: str, name: str, within: str = "[0, inf)") -> float:
    """A real hyper-parameter in `within` (finite, not NaN), or `HyperparameterError`.

    >>> hyperparameter(0.9, "SGD", "momentum")
    0.9
    """
    return checks.real(value, who, name, within, error=HyperparameterError)


def flag(value: object, who: str, name: str) -> bool:
    """A True/False option, or `HyperparameterError`.

    >>> flag(False, "Adam", "amsgrad")
    False
    """
    return checks.flag(value, who, name, error=HyperparameterError)


def lr_dtype(dtypes: Any) -> str:
    """The learning rate's dtype for parameters of these dtypes: float64 if any is.

    >>> lr_dtype(["float32", "float64"]), lr_dtype([])
    ('float64', 'float32')
    """
    return "float64" if "float64" in set(dtypes) else LR_DTYPE


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
        name = type(self).__name__
        check(lr is None or schedule is None,
              f"{name}: pass the learning rate to the schedule "
              f"({type(schedule).__name__}(lr, ...)) or as lr=, not both")
        check(schedule is None or callable(schedule),
              f"{name}: schedule must be a callable step -> lr, "
              f"got {checks.quote(schedule)}")
        self.lr = self.default_lr if lr is None else hyperparameter(
            lr, name, "lr (the learning rate)")
        self.schedule = schedule
        self.maximize = flag(maximize, name, "maximize")

    # -- what subclasses provide

    def hyperparameters(self) -> dict[str, object]:
        """The constructor's arguments, for `repr`."""
        return {"lr": self.lr}

    def update_leaf(self, p: Any, g: Any, slots: dict[str, Any], step: Any,
                    lr: Any) -> tuple[Any, dict[str, Any]]:
        """One parameter's update: new value and new slots.

        `g` already has the sign `maximize` asks for; `step` is the int32 count
        including this update (1 on the first); `lr` is in `p`'s dtype (for a
        float32 parameter of a model with float64 ones, rounded to float32 here).
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
        dtype = lr_dtype(F.type_of(p).dtype for _, p in pairs)
        step = np.zeros((), STEP_DTYPE)
        lr = self._lr_at(step, dtype) if self.schedule is not None else np.asarray(self.lr,
                                                                                    dtype)
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
            raise PyasgError(f"{name}.update: grads have structure unlike the params': "
                             f"{_difference(g_pairs, p_pairs, g_def, treedef)}")
        self._check_params(p_pairs)
        slot_leaves = self._check_state(state, treedef, p_pairs)
        dtype = lr_dtype(F.type_of(p).dtype for _, p in p_pairs)
        step = F.add(F.astype(state["step"], STEP_DTYPE), 1)
        lr = F.astype(state["lr"], dtype)
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
        new_lr = lr if self.schedule is None else self._lr_at(step, dtype)
        new_state: dict[str, Any] = {"step": step, "lr": new_lr}
        for s in self.slots:
            new_state[s] = unflatten(treedef, new_slots[s])
        return unflatten(treedef, new_params), new_state

    # -- helpers

    def _lr_at(self, step: Any, dtype: str) -> Any:
        assert self.schedule is not None
        if isinstance(self.schedule, BuiltinSchedule):  # computes in the rate's dtype
            return F.astype(self.schedule(step, dtype), dtype)
        return F.astype(self.schedule(step), dtype)

    def _check_params(self, pairs: list[tuple[str, Any]]) -> None:
        for path, p in pairs:
            t = F.type_of(p)
            if not is_float(t.dtype):
                raise ShapeError(f"{type(self).__name__}: parameter '{path or 'params'}' is "
                                 f"{t!r}; an optimiser updates float parameters only")

    def _check_state(self, state: Any, treedef: TreeDef,
                     p_pairs: list[tuple[str, Any]]) -> dict[str, list[Any]]:
        """The slot leaves, after checking that `state` fits this optimiser and params."""
        name = type(self).__name__
        keys = ("step", "lr", *self.slots)
        if not isinstance(state, dict) or any(k not in state for k in keys):
            found = ([str(k)[:40] for k in state][:20] if isinstance(state, dict)
                     else checks.quote(state))
            raise PyasgError(f"{name}.update: the state needs keys {list(keys)}, got {found}; "
                             f"make it with {name}(...).init(params)")
        for key, kinds in (("step", "iu"), ("lr", "f")):
            t = F.type_of(state[key])  # a ShapeError where it is no array at all
            if t.shape != () or np.dtype(t.dtype).kind not in kinds:
                raise PyasgError(f"{name}.update: state['{key}'] must be a "
                                 f"{'integer' if key == 'step' else 'float'} scalar, got {t!r}")
        leaves = {}
        for s in self.slots:
            pairs, slot_def = flatten_with_paths(state[s])
            if slot_def != treedef:
                raise PyasgError(f"{name}.update: state['{s}'] has structure unlike the "
                                 f"params': {_difference(pairs, p_pairs, slot_def, treedef)}")
            for (path, leaf), (_, p) in zip(pairs, p_pairs):
                if F.type_of(leaf).shape != F.type_of(p).shape:
                    raise ShapeError(f"{name}.update: state['{s}'] at '{path}' is "
                                     f"{F.type_of(leaf)!r} but the parameter is "
                                     f"{F.type_of(p)!r}")
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


def _difference(pairs: list[tuple[str, Any]], p_pairs: list[tuple[str, Any]],
                tree: TreeDef, p_tree: TreeDef) -> str:
    """How a tree's leaves differ from the params' (by path), for an error message."""
    paths, p_paths = [p for p, _ in pairs], [p for p, _ in p_pairs]
    missing = [p for p in p_paths if p not in set(paths)]
    extra = [p for p in paths if p not in set(p_paths)]
    parts = [f"{label} {', '.join(repr(p[:60]) for p in found[:8])}"
             + (f" and {len(found) - 8} more" if len(found) > 8 else "")
             for label, found in (("missing", missing), ("extra", extra)) if found]
    if parts:
        return "; ".join(parts)
    return (f"the same leaves in other containers ({checks.quote(tree, 120)} against "
            f"{checks.quote(p_tree, 120)})")


def l2(g: Any, p: Any, weight_decay: float) -> Any:
    """g + weight_decay * p: weight decay as an L2 penalty's gradient (PyTorch's
    `weight_decay` in SGD, Adam and RMSprop)."""
    return F.add(g, F.mul(weight_decay, p)) if weight_decay != 0 else g
