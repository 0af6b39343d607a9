"""Scalar loggers for `Trainer`: a CSV file (standard library) and TensorBoard event files.

Both are callbacks (`pyasg.train.Callback`) that write one record per optimiser step,
with the step's logs: `loss`, `lr`, `samples`, `samples_per_s`, `grad_norm` when
clipping by norm, and the validation values (`val_loss`, `val_<metric>`) in the steps
that validated.

`CSVLogger(path)`: one row per step under a header of the trainer's `columns`
(`step`, `epoch`, then the values); a value a step does not have is an empty cell.
Each row is appended and the file closed at once, so the file is complete whenever the
run stops. It always holds the run up to the trainer's step: a fresh run (step 0)
starts the file anew, and a resumed run first drops the rows after the step it resumed
from (those of the interrupted run after its last checkpoint), so every step appears
once. A file whose header is not this trainer's is left alone: `TrainerError`.

`TensorBoardLogger(logdir)`: the same scalars through `tensorboardX` (`pip install
pyasg[tensorboard]`, a small package), one tag per log name; a resumed run purges the
events after its step (tensorboardX's `purge_step`).

>>> import csv, os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "log.csv")
>>> class FakeTrainer:
...     step, columns = 0, ["step", "epoch", "loss"]
>>> logger = CSVLogger(path)
>>> logger.on_fit_start(FakeTrainer())
>>> logger.on_step_end(FakeTrainer(), {"step": 1, "epoch": 0, "loss": 0.5, "lr": 0.1})
>>> list(csv.reader(open(path)))
[['step', 'epoch', 'loss'], ['1', '0', '0.5']]
"""

from __future__ import annotations

import csv
import io
import math
import numbers
from pathlib import Path
from typing import Any

from pyasg.errors import shorten, shown_path
from pyasg.io.atomic import atomic_write
from pyasg.io.paths import checked_path
from pyasg.nn.checks import quote
from pyasg.train.callbacks import Callback
from pyasg.train.checks import MissingDependencyError, TrainerError

__all__ = ["CSVLogger", "TensorBoardLogger"]


def _cell(value: Any) -> str:
    """A log value as CSV text: ints as ints, floats so that they read back exactly."""
    if value is None:
        return ""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return str(int(value))
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        number = float(value)
        return repr(number) if math.isfinite(number) else str(number)  # nan, inf, -inf
    return shorten(str(value), 100)


class CSVLogger(Callback):
    """One CSV row per training step (see the module docstring)."""

    def __init__(self, path: Any) -> None:
        self.path: Path = checked_path(path, "CSVLogger", "path", error=TrainerError)
        self.columns: list[str] | None = None

    def _fail(self, what: str) -> TrainerError:
        return TrainerError(f"CSVLogger: {shown_path(self.path)}: {what}")

    def _read(self) -> list[list[str]] | None:
        """The rows of an existing file (header first), or None when there is none."""
        try:
            with open(self.path, newline="", encoding="utf-8") as f:
                return list(csv.reader(f))
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError, csv.Error) as e:
            raise self._fail(f"cannot read ({shorten(str(e), 100)})") from None

    def _write(self, rows: list[list[str]]) -> None:
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows(rows)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise self._fail(f"cannot create its directory ({e.strerror or e})") from None
        atomic_write(self.path, lambda tmp: tmp.write_text(text.getvalue(), encoding="utf-8"),
                     error=TrainerError)

    def on_fit_start(self, trainer: Any) -> None:
        columns = list(trainer.columns)
        rows = self._read()
        if rows is None or not rows:
            self._write([columns])
        else:
            if rows[0] != columns:
                raise self._fail(f"its columns are {shorten(str(rows[0]), 200)} but this "
                                 f"trainer logs {columns}; log to another file")
            kept = [rows[0]]
            for row in rows[1:]:
                try:
                    step = int(row[0])
                except (ValueError, IndexError):
                    raise self._fail(f"row {len(kept)} has no step number") from None
                if step <= trainer.step:
                    kept.append(row)
            if len(kept) != len(rows):
                self._write(kept)
        self.columns = columns

    def on_step_end(self, trainer: Any, logs: dict[str, Any]) -> None:
        if self.columns is None:  # called outside fit: the header was never checked
            self.on_fit_start(trainer)
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerow(
            [_cell(logs.get(c)) for c in self.columns])  # type: ignore[union-attr]
        try:
            with open(self.path, "a", newline="", encoding="utf-8") as f:
                f.write(text.getvalue())
        except OSError as e:
            raise self._fail(f"cannot append ({e.strerror or e})") from None

    def on_fit_end(self, trainer: Any, logs: dict[str, Any]) -> None:
        self.columns = None  # the next fit checks the file again

    def on_exception(self, trainer: Any, error: BaseException) -> None:
        self.columns = None

    def __repr__(self) -> str:
        return f"CSVLogger({str(self.path)!r})"


class TensorBoardLogger(Callback):
    """The step logs as TensorBoard scalars, one tag per name, written by tensorboardX
    into event files under `logdir` (see the module docstring). `flush_secs`: how often
    the writer flushes (it also flushes when `fit` ends)."""

    #: Log names that are positions, not scalars to plot.
    SKIPPED = ("step", "epoch")

    def __init__(self, logdir: Any, *, flush_secs: float = 10.0) -> None:
        self.logdir: Path = checked_path(logdir, "TensorBoardLogger", "logdir",
                                         error=TrainerError)
        if isinstance(flush_secs, bool) or not isinstance(flush_secs, numbers.Real) \
                or not 0 < float(flush_secs) < math.inf:
            raise TrainerError(f"TensorBoardLogger: flush_secs must be a number of seconds "
                               f"> 0, got {quote(flush_secs)}")
        self.flush_secs = float(flush_secs)
        try:
            from tensorboardX import SummaryWriter
        except ImportError:
            raise MissingDependencyError(
                "TensorBoardLogger writes through tensorboardX, which is not installed: "
                "pip install 'pyasg[tensorboard]'") from None
        self._writer_class = SummaryWriter
        self.writer: Any = None

    def on_fit_start(self, trainer: Any) -> None:
        if self.writer is None:
            # After a resume, events past the resumed step (an interrupted run's) go.
            purge = trainer.step + 1 if trainer.step else None
            try:
                self.writer = self._writer_class(logdir=str(self.logdir), purge_step=purge,
                                                 flush_secs=self.flush_secs)
            except OSError as e:
                raise TrainerError(f"TensorBoardLogger: {shown_path(self.logdir)}: cannot "
                                   f"write ({e.strerror or e})") from None

    def on_step_end(self, trainer: Any, logs: dict[str, Any]) -> None:
        if self.writer is None:
            self.on_fit_start(trainer)
        step = int(logs["step"])
        for name, value in logs.items():
            if name not in self.SKIPPED and isinstance(value, numbers.Real):
                self.writer.add_scalar(name, float(value), step)

    def _close(self) -> None:
        if self.writer is not None:
            self.writer.close()  # flushes
            self.writer = None

    def on_fit_end(self, trainer: Any, logs: dict[str, Any]) -> None:
        self._close()

    def on_exception(self, trainer: Any, error: BaseException) -> None:
        self._close()

    def __repr__(self) -> str:
        return f"TensorBoardLogger({str(self.logdir)!r})"
