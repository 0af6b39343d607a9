"""Training helpers: a per-epoch MetricLogger that can publish events, and EarlyStopping."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from pyasg import events
from pyasg.metrics._base import _NUMERIC, _array, _fail, _flag, quote

# --------------------------------------------------------------------------- logging, stopping


def _scalar(where: str, value: Any) -> float:
    a = _array(where, "value", value)
    if a.size != 1 or a.dtype.kind not in _NUMERIC:
        raise _fail(f"{where}: must be a real number; got {a.dtype} of shape {a.shape}")
    return float(a.reshape(()))


def _step(where: str, step: Any) -> int:
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)):
        raise _fail(f"{where}: step must be an int; got {quote(step)}")
    return int(step)


class MetricLogger:
    """Collects named values per step and keeps their mean per epoch.

    `log(step, loss=…, acc=…)` records values within the current epoch; `end_epoch()`
    appends each name's mean over that epoch to `history[name]` and returns those
    means. `history[name][e]` is always epoch e: a name not logged in an epoch gets nan
    there (also for the epochs before it first appeared), and so does every name of an
    epoch with no logs. With `publish=True` each `log` call also publishes
    ``pyasg.events.StepDone(step, loss, metrics)``: `loss` is the value named "loss"
    (nan when there is none) and `metrics` holds the other values.

    >>> logger = MetricLogger()
    >>> logger.log(1, loss=1.0, acc=0.5); logger.log(2, loss=0.5)
    >>> logger.end_epoch()
    {'loss': 0.75, 'acc': 0.5}
    >>> logger.log(3, loss=0.25); _ = logger.end_epoch(); logger.history
    {'loss': [0.75, 0.25], 'acc': [0.5, nan]}
    """

    def __init__(self, publish: bool = False) -> None:
        self.publish = _flag("MetricLogger", "publish", publish)
        self.history: dict[str, list[float]] = {}
        self.epoch = 0  # completed epochs
        self._current: dict[str, list[float]] = {}

    def log(self, step: int, **values: Any) -> None:
        """Record `values` (real scalars) for `step` in the current epoch."""
        step = _step("MetricLogger.log", step)
        floats = {k: _scalar(f"MetricLogger.log: value {k!r}", v) for k, v in values.items()}
        for name, value in floats.items():
            self._current.setdefault(name, []).append(value)
        if self.publish:
            loss = floats.get("loss", math.nan)
            metrics = {k: v for k, v in floats.items() if k != "loss"}
            events.publish(events.StepDone(step=step, loss=loss, metrics=metrics))

    def end_epoch(self) -> dict[str, float]:
        """Close the epoch; return the mean of each value logged in it."""
        means = {k: float(np.mean(v)) for k, v in self._current.items()}
        for name in means:
            self.history.setdefault(name, [math.nan] * self.epoch)
        for name, column in self.history.items():
            column.append(means.get(name, math.nan))
        self.epoch += 1
        self._current = {}
        return means


class EarlyStopping:
    """Says when a monitored value has stopped improving.

    `step(value)` returns True once `patience` consecutive values failed to improve
    (patience=0: at the first that fails). Improving means beating `best` by more than
    `min_delta`: value < best - min_delta in "min" mode, value > best + min_delta in
    "max" mode (PyTorch Lightning's rule; equal to best + min_delta is no improvement).
    `best` starts at +inf ("min") or -inf ("max"), so the first finite value improves.
    `best_step` is the `step` given with the best value (default: the 0-based count of
    calls); `wait` counts the values since then; `stopped_step` is where it stopped.
    With `check_finite` (Lightning's default) a nan or inf value stops at once. Once
    stopped, `step` keeps returning True and changes nothing.

    >>> stopper = EarlyStopping("min", patience=2)
    >>> [stopper.step(v) for v in [3.0, 2.0, 2.5, 2.1]]
    [False, False, False, True]
    >>> stopper.best, stopper.best_step
    (2.0, 1)
    """

    def __init__(self, mode: str = "min", patience: int = 3, min_delta: float = 0.0,
                 check_finite: bool = True) -> None:
        if not (isinstance(mode, str) and mode in ("min", "max")):
            raise _fail(f"EarlyStopping: mode must be 'min' or 'max'; got {quote(mode)}")
        if isinstance(patience, bool) or not isinstance(patience, (int, np.integer)) \
                or patience < 0:
            raise _fail(f"EarlyStopping: patience must be an int >= 0; got {quote(patience)}")
        delta = _scalar("EarlyStopping: min_delta", min_delta)
        if not delta >= 0.0:
            raise _fail(f"EarlyStopping: min_delta must be >= 0 (the direction comes from "
                        f"mode); got {quote(min_delta)}")
        self.mode, self.patience, self.min_delta = mode, int(patience), delta
        self.check_finite = _flag("EarlyStopping", "check_finite", check_finite)
        self.best = math.inf if mode == "min" else -math.inf
        self.best_step: int | None = None
        self.wait = 0  # values since the last improvement
        self.stopped = False
        self.stopped_step: int | None = None
        self._calls = 0

    def improves(self, value: float) -> bool:
        """Whether `value` would count as an improvement on `best`."""
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def step(self, value: Any, step: int | None = None) -> bool:
        """Record `value` (at `step`); return whether training should stop."""
        value = _scalar("EarlyStopping.step: value", value)
        at = self._calls if step is None else _step("EarlyStopping.step", step)
        self._calls += 1
        if self.stopped:
            return True
        if self.check_finite and not math.isfinite(value):
            self.stopped = True
        elif self.improves(value):
            self.best, self.best_step, self.wait = value, at, 0
        else:
            self.wait += 1
            self.stopped = self.wait >= self.patience
        if self.stopped:
            self.stopped_step = at
        return self.stopped
