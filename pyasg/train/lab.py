"""The model lab: change a model while it trains, and go on from its current weights.

`ModelLab`, a `Trainer` callback, applies changes (`pyasg.train.changes`: swap an
activation, set, insert or remove a Dropout, set the learning rate) at the next step
boundary: it rebuilds the model description, keeps the weights and the optimiser
state by their dotted paths, and the trainer traces and compiles its step again
(`Trainer.replace_model`); training goes on from the current weights. Every applied
change is recorded with the step after which it applied (`ModelLab.changes`, written
to `record=` as JSON, read back by `load_changes`), and `ModelLab(replay=changes)`
applies the same changes at the same steps: the run is reproduced.

The viewer's lab panel sends its requests as `pyasg.events.ChangeRequested` (through
`pyasg.viewer.protocol`); the lab answers with `LabOffered` (what can be changed
where) and `ModelChanged` (applied after which step, or why not).
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pyasg import events
from pyasg.array import random
from pyasg.errors import PyasgError, shown
from pyasg.io.atomic import atomic_write
from pyasg.train.callbacks import Callback
from pyasg.train.changes import (
    LR,
    Change,
    LabError,
    carry_params,
    carry_state,
    change_model,
    offers,
)
from pyasg.train.trainer import _numpy

__all__ = ["RECORD", "Change", "LabError", "ModelLab", "RecordError", "load_changes"]

#: The record's name in a trainer's checkpoint directory, where `ModelLab` writes it
#: unless given `record=` (`pyasg.train.changes.replayed` rebuilds the model from it).
RECORD = "lab.json"


class RecordError(PyasgError):
    """The model lab made a change but cannot write its record (`ModelLab(record=)`)."""


# --------------------------------------------------------------------------- the callback


def load_changes(path: str | Path) -> list[Change]:
    """The changes a `ModelLab(record=path)` wrote, to replay them."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise LabError(f"model lab: cannot read the changes in {path}: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("changes"), list):
        raise LabError(f"model lab: {path} is not a model-lab record ({{'changes': [...]}})")
    return [Change.from_dict(c) for c in data["changes"]]


class ModelLab(Callback):
    """A `Trainer` callback that applies model changes at step boundaries.

    Changes come from `request` (any thread), from the viewer's lab panel (the
    `ChangeRequested` events it sends, while `listen`), and from `replay`: recorded
    changes, each applied after its `step`. A requested change that fails is refused
    (published as `ModelChanged` with its error; training goes on); a replayed one
    that fails raises. `changes` lists what was applied, with steps (after `applied`:
    changes a resumed model already has); it is written (JSON) after each change to
    `record`, by default `RECORD` in the trainer's checkpoint directory when it has
    one. `seed`: the key of the initialisers of parameters a new
    layer would bring (none of `RULES`' changes brings any).

    >>> import numpy as np
    >>> from pyasg import nn, losses, optim, train
    >>> from pyasg.data import ArrayDataset, DataLoader
    >>> x = np.linspace(-1, 1, 32, dtype=np.float32)[:, None]
    >>> data = DataLoader(ArrayDataset(x, x ** 2), batch_size=8)
    >>> lab = ModelLab(replay=[Change("activation", "1", "gelu", step=2)])
    >>> model = nn.Sequential(nn.Linear(1, 8), nn.ReLU(), nn.Linear(8, 1))
    >>> trainer = train.Trainer(model, losses.mse_loss, optim.SGD(lr=0.1), data,
    ...                         callbacks=[lab], progress=False)
    >>> _ = trainer.fit(steps=4)
    >>> [(c.what, c.step, c.before, c.value) for c in lab.changes], type(trainer.model[1]).__name__
    ([('activation', 2, 'relu', 'gelu')], 'GELU')
    """

    def __init__(self, replay: Sequence[Change] = (), record: str | Path | None = None,
                 listen: bool = True, seed: int = 0, applied: Sequence[Change] = ()) -> None:
        self.changes: list[Change] = list(applied)
        self.record = None if record is None else Path(record)
        self.listen = bool(listen)
        self._replay = [c if isinstance(c, Change) else Change.from_dict(c) for c in replay]
        if any(c.step is None for c in self._replay):
            raise LabError("model lab: every replayed change needs the step it applied at")
        self._replay.sort(key=lambda c: c.step)  # type: ignore[arg-type, return-value]
        self._pending: list[Change] = []
        self._lock = threading.Lock()
        self._unsubscribe: Callable[[], None] | None = None
        self._key = random.key(seed)

    def request(self, what: str, path: str = "", value: str | float | None = None) -> None:
        """Ask for a change at the next step boundary (thread-safe)."""
        with self._lock:
            self._pending.append(Change(str(what), str(path), value))

    def _on_request(self, event: events.Event) -> None:
        if isinstance(event, events.ChangeRequested):
            self.request(event.what, event.path, event.value)

    # -- hooks

    def on_fit_start(self, trainer: Any) -> None:
        directory = getattr(getattr(trainer, "checkpoints", None), "directory", None)
        if self.record is None and directory is not None:  # saved with the run
            self.record = Path(directory) / RECORD
        if self.listen and self._unsubscribe is None:
            self._unsubscribe = events.subscribe(self._on_request, events.ChangeRequested)
        self._apply_due(trainer)
        self._offer(trainer)

    def on_step_end(self, trainer: Any, logs: dict[str, Any]) -> None:
        self._apply_due(trainer)

    def on_fit_end(self, trainer: Any, logs: dict[str, Any]) -> None:
        self._stop_listening()

    def on_exception(self, trainer: Any, error: BaseException) -> None:
        self._stop_listening()

    def _stop_listening(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    # -- applying

    def _apply_due(self, trainer: Any) -> None:
        due = []
        while self._replay and self._replay[0].step is not None \
                and self._replay[0].step <= trainer.step:
            due.append(self._replay.pop(0))
        for change in due:
            if change.step != trainer.step:
                raise LabError(f"model lab: the recorded {change.what} at {change.path!r} "
                               f"applied after step {change.step}, but this run starts at "
                               f"step {trainer.step}")
            self._apply(trainer, change)  # a recorded change must apply: it raises
        with self._lock:
            asked, self._pending = self._pending, []
        applied = False
        for change in asked:
            try:
                self._apply(trainer, change)
            except LabError as e:  # refused: the trainer is as it was
                if events.has_subscribers(events.ModelChanged):
                    events.publish(events.ModelChanged(trainer.step, change.what, change.path,
                                                       change.value, error=e.message))
                continue
            applied = True
        if due or applied:
            self._offer(trainer)

    def _apply(self, trainer: Any, change: Change) -> None:
        """Apply one change to `trainer`, record it, and tell the viewer. A LabError
        leaves the trainer as it was; writing the record comes after the change."""
        if change.what == LR:
            before = self._set_lr(trainer, change)
        else:
            if trainer.model is None:
                raise LabError(f"model lab: {change.what} needs the trainer's model, and "
                               f"this trainer has none (loss_takes='params')")
            try:
                model, before = change_model(trainer.model, change)
                self._key, key = random.split(self._key, 2)
                params, _ = carry_params(trainer.params, model, key)
                opt_state = carry_state(trainer.opt_state, trainer.optimizer, params)
            except LabError:
                raise
            except PyasgError as e:  # the new model cannot be built: nothing changed yet
                raise LabError(f"model lab: {change.what} at {change.path!r} cannot be "
                               f"applied: {e.message}") from e
            trainer.replace_model(model, params, opt_state)
        done = Change(change.what, change.path, change.value, trainer.step, _plain(before))
        self.changes.append(done)
        if self.record is not None:
            self._write_record()
        if events.has_subscribers(events.ModelChanged):
            events.publish(events.ModelChanged(trainer.step, change.what, change.path,
                                               change.value, done.before))

    def _write_record(self) -> None:
        """`changes` as JSON at `record` (its directory made if needed). A failure is a
        `RecordError`, not a refusal: the change has been made."""
        path = self.record
        assert path is not None
        text = json.dumps({"changes": [c.to_dict() for c in self.changes]}, indent=1)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise RecordError(f"model lab: cannot make {path.parent} for the record of "
                              f"changes: {e.strerror or e}") from None
        atomic_write(path, lambda tmp: tmp.write_text(text + "\n"), RecordError)

    @staticmethod
    def _set_lr(trainer: Any, change: Change) -> float:
        value = change.value
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not (math.isfinite(float(value)) and float(value) > 0.0):
            raise LabError(f"model lab: lr needs a learning rate > 0, got "
                           f"{shown(value, with_type=True)}")
        if getattr(trainer.optimizer, "schedule", None) is not None:
            raise LabError(f"model lab: lr {value}: the optimiser follows a schedule, which "
                           f"sets the rate of every step; change the schedule instead")
        before = _lr(trainer)
        dtype = np.asarray(_numpy(trainer.opt_state["lr"])).dtype
        trainer.opt_state = {**trainer.opt_state, "lr": np.asarray(value, dtype)}
        return before

    def _offer(self, trainer: Any) -> None:
        if events.has_subscribers(events.LabOffered):
            lr = None if getattr(trainer.optimizer, "schedule", None) is not None \
                else _lr(trainer)
            events.publish(events.LabOffered(tuple(offers(trainer.model, lr))))


def _lr(trainer: Any) -> float:
    """The learning rate the next update uses, as its dtype writes it (0.1 for a float32
    0.1, not 0.10000000149)."""
    return float(str(np.asarray(_numpy(trainer.opt_state["lr"]))[()]))


def _plain(value: Any) -> str | float | None:
    """A replaced value as JSON data (a rate, a name, or None)."""
    if value is None or isinstance(value, str):
        return value
    return float(value)
