"""pyasg optimiser state <-> `torch.optim` state dicts, so a run continues in the other
framework.

PyTorch keeps per-parameter state keyed by the parameter's index in the optimiser
(`{"state": {0: {"step": …, "exp_avg": …}, …}, "param_groups": [{"lr": …, …,
"params": [0, 1, …]}]}`); pyasg keeps one `step`, one `lr` and, per slot, a tree
shaped like the params (`pyasg.optim.base`). The slots have PyTorch's names
(`momentum_buffer`; `exp_avg`, `exp_avg_sq`, `max_exp_avg_sq`; `square_avg`,
`grad_avg`), so converting is bookkeeping: the i-th torch parameter is named
`names[i]` (`[n for n, _ in model.named_parameters()]`), and each slot's values move
by those names through the same rules as the weights (`pyasg.io.torch_names`: an
`in_proj_weight`'s `exp_avg` splits into the three projections' as the weight does).

- `from_torch_optimizer_state(torch_opt.state_dict(), opt, params, names)` -> the
  state `opt.update` takes. The hyper-parameters of the torch run must equal `opt`'s
  (a `CheckpointError` names the first that differs), except the learning rate,
  which is taken from torch. `torch.optim.SGD` counts no steps: pass `step=`.
- `to_torch_optimizer_state(state, opt, names, as_tensor=torch.from_numpy)` -> a
  dict for `torch_opt.load_state_dict` (one param group).

>>> import numpy as np
>>> from pyasg.optim import SGD
>>> opt, params = SGD(0.1, momentum=0.9), {"w": np.zeros(2)}
>>> torch_sd = {"state": {0: {"momentum_buffer": np.array([1.0, 2.0])}},
...             "param_groups": [{"lr": 0.1, "momentum": 0.9, "dampening": 0,
...                               "weight_decay": 0, "nesterov": False, "maximize": False,
...                               "params": [0]}]}
>>> state = from_torch_optimizer_state(torch_sd, opt, params, ["w"], step=4)
>>> int(state["step"]), state["momentum_buffer"]["w"].tolist()
(4, [1.0, 2.0])
>>> to_torch_optimizer_state(state, opt, ["w"])["state"][0]["momentum_buffer"].tolist()
[1.0, 2.0]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from pyasg.errors import CheckpointError, shown
from pyasg.io.torch_names import TORCH_RULES, TorchRule, from_torch_names, to_torch_names
from pyasg.io.weights import _as_array, match
from pyasg.optim.base import Optimizer
from pyasg.optim.sgd import SGD
from pyasg.trace.tree import flatten_with_paths

WHERE = "torch optimizer state_dict"


def _fail(message: str) -> CheckpointError:
    return CheckpointError(f"{WHERE}: {message}")


def counts_steps(optimizer: Optimizer) -> bool:
    """Whether the torch optimiser of this kind keeps `step` in its state (all but SGD).

    >>> from pyasg.optim import SGD, Adam
    >>> counts_steps(SGD()), counts_steps(Adam())
    (False, True)
    """
    return not isinstance(optimizer, SGD)


def torch_hyperparameters(optimizer: Optimizer) -> dict[str, Any]:
    """The param-group entries of the torch optimiser `optimizer` stands for, by
    PyTorch's names, but the learning rate (which lives in the state).

    >>> from pyasg.optim import AdamW
    >>> torch_hyperparameters(AdamW())["decoupled_weight_decay"]
    True
    """
    group = {k: v for k, v in optimizer.hyperparameters().items() if k != "lr"}
    group["maximize"] = optimizer.maximize
    if hasattr(optimizer, "decoupled_weight_decay"):  # Adam and AdamW: one torch class
        group["decoupled_weight_decay"] = optimizer.decoupled_weight_decay
    return group


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    try:
        return float(a) == float(b)  # torch may hold a tensor lr or beta
    except (TypeError, ValueError):
        return a == b


def _groups(state_dict: Any) -> tuple[list[Mapping], Mapping]:
    if not isinstance(state_dict, Mapping) or set(state_dict) != {"state", "param_groups"}:
        raise _fail(f"needs exactly the keys 'state' and 'param_groups' (what "
                    f"torch_optimizer.state_dict() gives), got {shown(state_dict, 80)}")
    groups, per_param = state_dict["param_groups"], state_dict["state"]
    if (not isinstance(groups, Sequence) or not groups
            or not all(isinstance(g, Mapping) and "params" in g for g in groups)):
        raise _fail(f"'param_groups' must be a non-empty list of dicts with 'params', got "
                    f"{shown(groups, 80)}")
    if not isinstance(per_param, Mapping):
        raise _fail(f"'state' must be a dict, got {shown(per_param, 80, with_type=True)}")
    return list(groups), per_param


def _check_hyperparameters(groups: list[Mapping], optimizer: Optimizer) -> float:
    """The torch run's learning rate, after checking every group's hyper-parameters
    against `optimizer`'s (pyasg has one set for all parameters)."""
    mine = torch_hyperparameters(optimizer)
    lr = groups[0].get("lr")
    for i, group in enumerate(groups):
        if not _same(group.get("lr"), lr):
            raise _fail(f"param group {i} has lr {shown(group.get('lr'))}, group 0 "
                        f"{shown(lr)}; a pyasg optimiser has one learning rate")
        for key, value in mine.items():
            if key not in group:
                raise _fail(f"param group {i} has no {key!r}: was it made by another kind of "
                            f"optimiser than {type(optimizer).__name__}?")
            if not _same(group[key], value):
                raise _fail(f"param group {i} has {key}={shown(group[key])}, but "
                            f"{optimizer!r} has {shown(value)}; make the pyasg optimiser "
                            f"with the torch run's hyper-parameters")
    try:
        return float(lr)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise _fail(f"lr must be a number, got {shown(lr, with_type=True)}") from None


def _step_count(entries: list[Mapping], names: Sequence[str], optimizer: Optimizer,
                step: int | None) -> int:
    """The number of steps taken: torch's per-parameter `step` (all equal), or `step`."""
    steps = {}
    for name, entry in zip(names, entries):
        if "step" in entry:
            value = float(_as_array(entry["step"], name, WHERE))
            if not math.isfinite(value) or value < 0 or value != int(value):
                raise _fail(f"the step of {shown(name)} is {value}, not a count")
            steps[name] = int(value)
    if len(set(steps.values())) > 1:
        fewest = min(steps, key=steps.__getitem__)
        most = max(steps, key=steps.__getitem__)
        raise _fail(f"parameters took different numbers of steps ({shown(fewest)}: "
                    f"{steps[fewest]}, {shown(most)}: {steps[most]}); a pyasg optimiser "
                    f"counts one step for all")
    if step is not None and (isinstance(step, bool) or not isinstance(step, int) or step < 0):
        raise _fail(f"step must be a count (an int >= 0), got {shown(step, with_type=True)}")
    if steps:
        count = next(iter(steps.values()))
        if step is not None and step != count:
            raise _fail(f"step={step} was given but the torch state says {count}")
        return count
    if step is not None:
        return step
    if counts_steps(optimizer) and not any(entries):
        return 0  # a torch optimiser that never stepped has no state at all
    raise _fail(f"torch.optim.{type(optimizer).__name__} keeps no step count; pass step=… "
                f"(the number of optimizer.step() calls made)")


def from_torch_optimizer_state(state_dict: Mapping[str, Any], optimizer: Optimizer,
                               params: Any, names: Sequence[str], *, step: int | None = None,
                               rules: Sequence[TorchRule] = TORCH_RULES) -> dict[str, Any]:
    """A `torch.optim` optimiser's `state_dict()` -> the state `optimizer.update` takes.

    `params` is the pyasg params tree the state is for (its structure, shapes and
    dtypes are the slots'); `names[i]` is the torch name of the optimiser's i-th
    parameter, across its param groups in order (`[n for n, _ in
    model.named_parameters()]` for `torch.optim.AdamW(model.parameters())`). Every
    hyper-parameter of every group must equal `optimizer`'s; the learning rate is
    torch's (so a schedule continues where torch's scheduler left it). `step` is the
    number of updates made, needed for SGD only (torch's SGD counts none); where
    torch counts, it must agree. Tensors are copied: later torch steps do not
    change the result.

    >>> import numpy as np
    >>> from pyasg.optim import Adam
    >>> group = {"lr": 0.01, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0,
    ...          "amsgrad": False, "maximize": False, "decoupled_weight_decay": False,
    ...          "params": [0]}
    >>> slots = {"step": np.float32(2), "exp_avg": np.ones(3), "exp_avg_sq": np.ones(3)}
    >>> state = from_torch_optimizer_state({"state": {0: slots}, "param_groups": [group]},
    ...                                    Adam(0.01), {"b": np.zeros(3)}, ["b"])
    >>> int(state["step"]), float(state["lr"]), state["exp_avg"]["b"].tolist()
    (2, 0.01, [1.0, 1.0, 1.0])
    """
    if not isinstance(optimizer, Optimizer):
        raise _fail(f"optimizer must be a pyasg.optim optimiser, got "
                    f"{shown(optimizer, with_type=True)}")
    groups, per_param = _groups(state_dict)
    names = _names(names)
    ids = [i for g in groups for i in g["params"]]
    if len(ids) != len(names):
        raise _fail(f"the torch optimiser holds {len(ids)} parameters but {len(names)} names "
                    f"were given")
    lr = _check_hyperparameters(groups, optimizer)
    entries = [per_param.get(i, {}) for i in ids]
    count = _step_count(entries, names, optimizer, step)
    state = optimizer.init(params)
    state["step"] = np.asarray(count, state["step"].dtype)
    state["lr"] = np.asarray(lr, state["lr"].dtype)
    allowed = {*optimizer.slots, "step"}
    for name, entry in zip(names, entries):
        extra = sorted(set(entry) - allowed)
        if extra:
            raise _fail(f"{shown(name)} has state {extra} that {optimizer!r} does not keep "
                        f"(amsgrad, momentum or centered set otherwise in torch?)")
    if count == 0:
        held = [n for n, e in zip(names, entries) if any(e.get(s) is not None
                                                          for s in optimizer.slots)]
        if held:
            raise _fail(f"step 0, yet {shown(held[0])} has buffers (from earlier steps?)")
        return state  # torch made no buffers yet: pyasg's start from zeros, as torch's do
    for slot in optimizer.slots:
        flat = {}
        for name, entry in zip(names, entries):
            if slot not in entry or entry[slot] is None:
                raise _fail(f"{shown(name)} has no {slot!r} after {count} steps (it never had "
                            f"a gradient?); pyasg keeps one for every parameter")
            flat[name] = entry[slot]
        state[slot] = match(from_torch_names(flat, rules), params, f"{WHERE} ({slot})")
    return state


def to_torch_optimizer_state(state: Mapping[str, Any], optimizer: Optimizer,
                             names: Sequence[str], *,
                             as_tensor: Callable[[np.ndarray], Any] | None = None,
                             rules: Sequence[TorchRule] = TORCH_RULES) -> dict[str, Any]:
    """pyasg optimiser state -> a `torch.optim` state dict, for
    `torch_optimizer.load_state_dict` (the inverse of `from_torch_optimizer_state`).

    `names[i]` is the torch name of the torch optimiser's i-th parameter (one param
    group). Arrays come back as numpy arrays, or passed through `as_tensor`
    (`torch.from_numpy`), which `load_state_dict` needs; `step` is a 0-d float32, as
    torch keeps it. Before the first update the state is empty, as a fresh torch
    optimiser's. The hyper-parameters are `optimizer`'s, which `load_state_dict`
    installs in the torch optimiser.

    >>> import numpy as np
    >>> from pyasg.optim import AdamW
    >>> opt, params = AdamW(0.1), {"w": np.ones(2)}
    >>> state = opt.init(params)
    >>> params, state = opt.update({"w": np.array([1.0, -1.0])}, state, params)
    >>> sd = to_torch_optimizer_state(state, opt, ["w"])
    >>> sorted(sd["state"][0]), sd["param_groups"][0]["lr"]
    (['exp_avg', 'exp_avg_sq', 'step'], 0.1)
    """
    if not isinstance(optimizer, Optimizer):
        raise _fail(f"optimizer must be a pyasg.optim optimiser, got "
                    f"{shown(optimizer, with_type=True)}")
    names = _names(names)
    missing = [k for k in ("step", "lr", *optimizer.slots)
               if not isinstance(state, Mapping) or k not in state]
    if missing:
        raise _fail(f"the pyasg state lacks {missing}; make it with "
                    f"{type(optimizer).__name__}(...).init(params)")
    convert = as_tensor if as_tensor is not None else (lambda a: a)
    count = int(_as_array(state["step"], "step", WHERE))
    lr = float(_as_array(state["lr"], "lr", WHERE))
    group = {**torch_hyperparameters(optimizer), "lr": lr, "params": list(range(len(names)))}
    per_param: dict[int, dict[str, Any]] = {}
    if count > 0:
        by_slot = {slot: to_torch_names(dict(flatten_with_paths(state[slot])[0]), rules)
                   for slot in optimizer.slots}
        for slot, flat in by_slot.items():
            unknown = sorted(set(flat) - set(names))
            absent = [n for n in names if n not in flat]
            if unknown or absent:
                raise _fail(f"state[{slot!r}] does not match the names: "
                            f"{'missing ' + shown(absent) if absent else ''}"
                            f"{'; ' if unknown and absent else ''}"
                            f"{'unexpected ' + shown(unknown) if unknown else ''}")
        for i, name in enumerate(names):
            # copies: torch updates its state in place, which pyasg's arrays must not see
            entry = {slot: convert(np.array(by_slot[slot][name])) for slot in optimizer.slots}
            if counts_steps(optimizer):
                entry = {"step": convert(np.asarray(count, np.float32)), **entry}
            if entry:
                per_param[i] = entry
    return {"state": per_param, "param_groups": [group]}


def _names(names: object) -> list[str]:
    if isinstance(names, str) or not isinstance(names, Sequence) or not all(
            isinstance(n, str) for n in names):
        raise _fail(f"names must be a list of the torch parameters' names "
                    f"([n for n, _ in model.named_parameters()]), got "
                    f"{shown(names, 80, with_type=True)}")
    if len(set(names)) != len(names):
        raise _fail("names has a name twice")
    return list(names)
