"""Where a training run is, beyond its arrays: what a checkpoint must hold to resume EXACTLY.

The arrays (parameters, optimiser state, model state, the random key) go into the
checkpoint's tensors; everything else a `Trainer` needs to go on as if it had never
stopped is a `Progress`, stored as JSON in the checkpoint's metadata under
`RECORD_KEY`:

- `step` (updates done), `epoch` (epochs completed) and `batch`, the micro-batches
  of the current epoch already consumed: a resumed run skips those, in the same order,
  because the loader's shuffling is set per epoch (`set_epoch`) from its `data_seed`,
  which is saved too and put back into a loader made without one;
- the current epoch's running loss (`epoch_loss`, `epoch_samples`) and its last
  validation values (`epoch_val`), so the epoch's logs come out the same;
- `history`, the logs of every completed epoch;
- the `EarlyStopping` state (best value and step, the wait, whether it stopped).

>>> p = Progress(step=3, epoch=1, batch=2, history=[{"epoch": 0, "loss": 0.5}])
>>> Progress.from_record(p.to_record(), "ckpt") == p
True
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, field
from typing import Any

from pyasg.errors import CheckpointError, shown, shown_path
from pyasg.metrics.training import EarlyStopping

__all__ = ["RECORD_KEY", "Progress", "restore_stopper", "stopper_state"]

#: The checkpoint metadata key of a trainer's `Progress`.
RECORD_KEY = "pyasg.train"
#: The version of the record's layout.
VERSION = 1


@dataclass
class Progress:
    """A run's position and running totals (see the module docstring)."""

    step: int = 0
    epoch: int = 0
    batch: int = 0
    epoch_loss: float = 0.0
    epoch_samples: int = 0
    epoch_val: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    data_seed: int | None = None
    early_stopping: dict[str, Any] | None = None
    model_state: bool = False

    def to_record(self) -> dict[str, Any]:
        """The JSON-ready record (a dict of plain values)."""
        return {"version": VERSION, **asdict(self)}

    @classmethod
    def from_record(cls, record: object, where: object) -> Progress:
        """The progress a checkpoint recorded; `CheckpointError` naming `where` if the
        record is missing or malformed (a checkpoint not written by a `Trainer`)."""
        names = set(cls.__dataclass_fields__)
        if not isinstance(record, dict) or record.get("version") != VERSION \
                or set(record) != names | {"version"}:
            raise CheckpointError(f"{shown_path(where)}: not a pyasg.train.Trainer checkpoint "
                                  f"(its metadata has no valid {RECORD_KEY!r} record)")
        values = {k: v for k, v in record.items() if k != "version"}
        for key in ("step", "epoch", "batch", "epoch_samples"):
            _count(values[key], key, where)
        _number(values["epoch_loss"], "epoch_loss", where)
        if not isinstance(values["epoch_val"], dict) or not all(
                isinstance(v, numbers.Real) for v in values["epoch_val"].values()):
            raise CheckpointError(f"{shown_path(where)}: the recorded epoch_val is malformed")
        if not isinstance(values["history"], list) or not all(
                isinstance(h, dict) for h in values["history"]):
            raise CheckpointError(f"{shown_path(where)}: the recorded history is malformed")
        if values["data_seed"] is not None:
            _count(values["data_seed"], "data_seed", where)
        if values["early_stopping"] is not None and not isinstance(values["early_stopping"],
                                                                   dict):
            raise CheckpointError(f"{shown_path(where)}: the recorded early_stopping is "
                                  f"malformed")
        if not isinstance(values["model_state"], bool):
            raise CheckpointError(f"{shown_path(where)}: the recorded model_state is malformed")
        return cls(**values)


def _count(value: object, what: str, where: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise CheckpointError(f"{shown_path(where)}: the recorded {what} must be a "
                              f"non-negative integer, got {shown(value, 40)}")
    return value


def _number(value: object, what: str, where: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CheckpointError(f"{shown_path(where)}: the recorded {what} must be a number, "
                              f"got {shown(value, 40)}")
    return float(value)


_STOPPER_FIELDS = ("best", "best_step", "wait", "stopped", "stopped_step")


def stopper_state(stopper: EarlyStopping | None) -> dict[str, Any] | None:
    """What an `EarlyStopping` has learnt so far (its settings are the user's), or None.

    >>> s = EarlyStopping(patience=1); _ = s.step(0.5, step=1)
    >>> stopper_state(s)
    {'best': 0.5, 'best_step': 1, 'wait': 0, 'stopped': False, 'stopped_step': None}
    """
    if stopper is None:
        return None
    return {name: getattr(stopper, name) for name in _STOPPER_FIELDS}


def restore_stopper(stopper: EarlyStopping | None, state: dict[str, Any] | None,
                    where: object) -> None:
    """Put a recorded state back into `stopper` (a fresh one when nothing was recorded:
    the run had no early stopping)."""
    if stopper is None:
        return
    if state is None:
        state = {"best": math.inf if stopper.mode == "min" else -math.inf, "best_step": None,
                 "wait": 0, "stopped": False, "stopped_step": None}
    if set(state) != set(_STOPPER_FIELDS):
        raise CheckpointError(f"{shown_path(where)}: the recorded early_stopping is malformed")
    _number(state["best"], "early_stopping best", where)
    _count(state["wait"], "early_stopping wait", where)
    for key in ("best_step", "stopped_step"):
        if state[key] is not None:
            _count(state[key], f"early_stopping {key}", where)
    if not isinstance(state["stopped"], bool):
        raise CheckpointError(f"{shown_path(where)}: the recorded early_stopping is malformed")
    for name in _STOPPER_FIELDS:
        setattr(stopper, name, float(state[name]) if name == "best" else state[name])
