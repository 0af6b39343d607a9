"""Training checkpoints: one safetensors file per step, written atomically, rotated by step.

A `Checkpoint` is the weights, the optimiser state, the random key, the step, the
epoch and the user's metadata (JSON). `save_checkpoint` writes one as ONE file:
the three pytrees as tensors under `params.…`, `opt_state.…` and `rng`, the rest
as JSON in the header (`pyasg.checkpoint`). As every pyasg file, it is written to a
temporary name, fsynced and renamed, so a process killed during a save leaves the
previous checkpoint intact.

`CheckpointManager(directory, max_to_keep, best_metric=…, mode=…)` names the files
`ckpt-<step, 12 digits>.safetensors`, keeps the `max_to_keep` highest steps (by
number) plus the best one by `metadata[best_metric]`, and finds everything from the
directory alone: no manifest, nothing in memory. `load_latest()` returns the newest
checkpoint that loads completely, skipping temporary files and (with a warning)
damaged ones. One process writes to a directory at a time; any number may read.

>>> import tempfile, numpy as np
>>> manager = CheckpointManager(tempfile.mkdtemp(), max_to_keep=2)
>>> for step in (9, 10, 11):
...     _ = manager.save(step, {"w": np.full(2, step, np.float32)}, epoch=1)
>>> manager.steps(), manager.load_latest().params["w"].tolist()
([10, 11], [11.0, 11.0])
"""

from __future__ import annotations

import json
import math
import operator
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyasg.errors import CheckpointError, shorten, shown, shown_path
from pyasg.io.paths import checked_path
from pyasg.io.weights import (
    PathLike,
    read_header,
    read_tensors,
    tree_from_tensors,
    write_tree,
)

#: Header key holding the checkpoint's JSON record (step, epoch, user metadata).
RECORD_KEY = "pyasg.checkpoint"
_PARTS = ("params", "opt_state", "rng")
_NAME = re.compile(r"ckpt-(\d+)\.safetensors")
_TEMP = re.compile(r"\.ckpt-\d+\.safetensors\..*\.tmp")


@dataclass
class Checkpoint:
    """What training needs to continue exactly where it stopped.

    `params` and `opt_state` are pytrees of arrays (the optimiser state as
    `opt.init` made it: `{"step", "lr", slots…}`), `rng` a random key (or None),
    `step` and `epoch` integers, `metadata` anything JSON can hold (tuples come back
    as lists).
    """

    step: int
    params: Any
    opt_state: Any = None
    rng: Any = None
    epoch: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)


def _count(value: object, what: str, path: object) -> int:
    """`value` as a non-negative int (numpy integers too; not bools, not floats)."""
    try:
        n = -1 if isinstance(value, bool) else operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        n = -1
    if n < 0:
        raise CheckpointError(f"{shown_path(path)}: {what} must be a non-negative integer, got "
                              f"{shown(value, 40)}")
    return n


def save_checkpoint(path: PathLike, checkpoint: Checkpoint) -> Path:
    """Write `checkpoint` to ONE safetensors file at `path`, atomically; returns the path.

    >>> import tempfile, os, numpy as np
    >>> path = os.path.join(tempfile.mkdtemp(), "run.safetensors")
    >>> _ = save_checkpoint(path, Checkpoint(3, {"w": np.ones(2)}, metadata={"loss": 0.5}))
    >>> c = load_checkpoint(path)
    >>> c.step, c.epoch, c.metadata, c.opt_state
    (3, 0, {'loss': 0.5}, None)
    """
    path = checked_path(path, "pyasg.io.save_checkpoint")
    if not isinstance(checkpoint, Checkpoint):
        raise CheckpointError(f"{shown_path(path)}: save_checkpoint needs a Checkpoint, got "
                              f"{type(checkpoint).__name__}")
    record = {"step": _count(checkpoint.step, "step", path),
              "epoch": _count(checkpoint.epoch, "epoch", path),
              "metadata": checkpoint.metadata}
    if not isinstance(checkpoint.metadata, dict):
        raise CheckpointError(f"{shown_path(path)}: metadata must be a dict, got "
                              f"{type(checkpoint.metadata).__name__}")
    try:
        text = json.dumps(record)  # NaN is allowed: a diverged loss is still worth recording
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{shown_path(path)}: metadata must be JSON ({shorten(str(e))})") \
            from None
    tree = {"params": checkpoint.params, "opt_state": checkpoint.opt_state,
            "rng": checkpoint.rng}
    return write_tree(path, tree, {RECORD_KEY: text}, "pyasg.io.save_checkpoint")


def _record(metadata: dict[str, str], path: object) -> dict[str, Any]:
    """The checked JSON record of a checkpoint's header."""
    text = metadata.get(RECORD_KEY)
    if text is None:
        raise CheckpointError(f"{shown_path(path)}: not a pyasg checkpoint (no {RECORD_KEY} in the "
                              f"header); a weights file loads with pyasg.io.load")
    try:
        record = json.loads(text)
    except (ValueError, RecursionError):
        record = None
    if (not isinstance(record, dict) or set(record) != {"step", "epoch", "metadata"}
            or not isinstance(record["metadata"], dict)):
        raise CheckpointError(f"{shown_path(path)}: the checkpoint record in the header is "
                              f"malformed")
    _count(record["step"], "the recorded step", path)
    _count(record["epoch"], "the recorded epoch", path)
    return record


def load_checkpoint(path: PathLike) -> Checkpoint:
    """Read a checkpoint written by `save_checkpoint`; any defect raises `CheckpointError`."""
    path = checked_path(path, "pyasg.io.load_checkpoint")
    arrays, metadata = read_tensors(path, "pyasg.io.load_checkpoint")
    record = _record(metadata, path)
    tree = tree_from_tensors(arrays, metadata, path)
    if not isinstance(tree, dict) or list(tree) != list(_PARTS):
        raise CheckpointError(f"{shown_path(path)}: a checkpoint holds exactly {', '.join(_PARTS)}")
    return Checkpoint(record["step"], tree["params"], tree["opt_state"], tree["rng"],
                      record["epoch"], record["metadata"])


class CheckpointManager:
    """Checkpoints of one training run in `directory`: save, rotate, keep the best, resume.

    - `max_to_keep`: how many of the highest steps to keep (None: all). The best
      checkpoint is kept as well, even when older.
    - `best_metric`: a key of the metadata given to `save` (a number); `mode` "min"
      or "max" says which is better. NaN is never best; on a tie the later step wins.

    Files are `ckpt-000000000011.safetensors`; steps are compared as numbers. Saving
    a step that exists replaces it (atomically). Rotation keeps the highest steps: a
    run restarted from an older checkpoint should first delete the newer ones, or
    they, not its new saves, are what is kept.

    >>> import tempfile, numpy as np
    >>> m = CheckpointManager(tempfile.mkdtemp(), max_to_keep=1, best_metric="loss")
    >>> for step, loss in [(1, 0.3), (2, 0.1), (3, 0.2), (4, 0.4)]:
    ...     _ = m.save(step, {"w": np.zeros(1)}, metadata={"loss": loss})
    >>> m.steps(), m.best_step(), m.load_best().metadata
    ([2, 4], 2, {'loss': 0.1})
    """

    def __init__(self, directory: PathLike, max_to_keep: int | None = 5,
                 best_metric: str | None = None, mode: str = "min") -> None:
        self.directory = checked_path(directory, "CheckpointManager", "directory")
        where = shown_path(self.directory)
        if max_to_keep is not None and (isinstance(max_to_keep, bool)
                                        or not isinstance(max_to_keep, int) or max_to_keep < 1):
            raise CheckpointError(f"{where}: max_to_keep must be a positive integer or None, "
                                  f"got {shown(max_to_keep)}")
        if not isinstance(mode, str) or mode not in ("min", "max"):
            raise CheckpointError(f"{where}: mode must be 'min' or 'max', got {shown(mode)}")
        if best_metric is not None and not isinstance(best_metric, str):
            raise CheckpointError(f"{where}: best_metric must be a metadata key (str), got "
                                  f"{shown(best_metric)}")
        self.max_to_keep, self.best_metric, self.mode = max_to_keep, best_metric, mode

    # -- names

    def path(self, step: int) -> Path:
        """Where the checkpoint of `step` lives."""
        return self.directory / f"ckpt-{_count(step, 'step', self.directory):012d}.safetensors"

    def steps(self) -> list[int]:
        """The steps of the checkpoint files present, ascending (by number); temporary
        files are not checkpoints. Files are not opened: one may still be damaged."""
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        except OSError as e:
            raise CheckpointError(f"{shown_path(self.directory)}: cannot list "
                                  f"({e.strerror or e})") from None
        steps = []
        for name in names:
            m = _NAME.fullmatch(name)
            if m and self.path(int(m.group(1))).name == name:  # only our own spelling
                steps.append(int(m.group(1)))
        return sorted(steps)

    def latest_step(self) -> int | None:
        """The highest step on disk, or None."""
        steps = self.steps()
        return steps[-1] if steps else None

    # -- saving

    def save(self, step: int, params: Any, *, opt_state: Any = None, rng: Any = None,
             epoch: int = 0, metadata: dict[str, Any] | None = None) -> Path:
        """Write the checkpoint of `step` atomically, then rotate; returns its path.

        Everything that can be checked is checked before anything is written. Rotation
        runs after the write, when the new checkpoint is already safe on disk: an old
        checkpoint that cannot be removed (permissions, a read-only mount) does not fail
        the save; it is reported with a `RuntimeWarning`, stays on disk, and the next
        save's rotation tries it again.
        """
        metadata = {} if metadata is None else metadata
        path = self.path(step)
        if self.best_metric is not None:
            value = metadata.get(self.best_metric) if isinstance(metadata, dict) else None
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise CheckpointError(f"{shown_path(path)}: best_metric {shown(self.best_metric)} "
                                      f"needs metadata[{shown(self.best_metric)}] to be a "
                                      f"number, got {shown(value, 40)}")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise CheckpointError(f"{shown_path(self.directory)}: cannot create "
                                  f"({e.strerror or e})") from None
        self._remove_stale_temporaries()
        save_checkpoint(path, Checkpoint(step, params, opt_state, rng, epoch, metadata))
        self._rotate(path)
        return path

    def _remove_stale_temporaries(self) -> None:
        # Left by a writer that was killed mid-save. Only the (single) writer of this
        # directory cleans up, so a reader never removes a save in progress.
        try:
            names = os.listdir(self.directory)
        except OSError as e:
            raise CheckpointError(f"{shown_path(self.directory)}: cannot list "
                                  f"({e.strerror or e})") from None
        for name in names:
            if _TEMP.fullmatch(name):
                try:
                    os.unlink(self.directory / name)
                except OSError:
                    pass  # gone already, or not ours to remove: harmless either way

    def _metrics(self) -> dict[int, float | None]:
        """Step -> best_metric value of every checkpoint whose header reads; damaged files
        are left out (and never deleted: they are evidence, and may be someone else's)."""
        out: dict[int, float | None] = {}
        for step in self.steps():
            try:
                _, metadata = read_header(self.path(step))
                record = _record(metadata, self.path(step))
            except CheckpointError:
                continue
            value = record["metadata"].get(self.best_metric) if self.best_metric else None
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            out[step] = float(value) if ok and not math.isnan(value) else None
        return out

    def _best(self, metrics: dict[int, float | None]) -> int | None:
        if self.best_metric is None:
            return None
        scored = [(v if self.mode == "max" else -v, step)
                  for step, v in metrics.items() if v is not None]
        return max(scored)[1] if scored else None

    def _rotate(self, saved: Path) -> None:
        """Remove the checkpoints that rotation does not keep; `saved` is already on disk,
        so what cannot be removed is a warning, never a failed save."""
        if self.max_to_keep is None:
            return
        try:
            metrics = self._metrics()
        except CheckpointError as e:  # the directory could not be listed again
            metrics, failed = {}, [e.message]
        else:
            failed = []
        keep = set(sorted(metrics)[-self.max_to_keep:])
        best = self._best(metrics)
        if best is not None:
            keep.add(best)
        for step in sorted(metrics):
            if step not in keep:
                try:
                    os.unlink(self.path(step))
                except FileNotFoundError:
                    pass  # removed meanwhile: what rotation wanted anyway
                except OSError as e:
                    failed.append(f"{shown_path(self.path(step).name)}: {e.strerror or e}")
        if failed:
            warnings.warn(f"{shown_path(saved)} was saved, but rotation could not remove old "
                          f"checkpoints ({'; '.join(failed[:5])}"
                          f"{f'; and {len(failed) - 5} more' if len(failed) > 5 else ''}); "
                          f"they stay on disk and the next save tries again",
                          RuntimeWarning, stacklevel=3)

    # -- loading

    def load(self, step: int) -> Checkpoint:
        """The checkpoint of `step`; `CheckpointError` if it is missing or damaged."""
        path = self.path(step)
        checkpoint = load_checkpoint(path)
        if checkpoint.step != step:
            raise CheckpointError(f"{shown_path(path)}: the file records step {checkpoint.step}, "
                                  f"its name says {step}")
        return checkpoint

    def load_latest(self) -> Checkpoint | None:
        """The newest checkpoint that loads completely, or None when there is none at all.

        A damaged file is skipped with a `RuntimeWarning`, so one bad file never stops a
        resume; if every file is damaged, `CheckpointError` lists them.
        """
        problems: list[str] = []
        tried: set[int] = set()
        while True:
            steps = [s for s in self.steps() if s not in tried]
            if not steps:
                break
            step = steps[-1]
            tried.add(step)
            try:
                return self.load(step)
            except CheckpointError as e:
                if not self.path(step).exists():
                    continue  # rotated away by the writer meanwhile: look again
                problems.append(str(e))
                warnings.warn(f"skipping damaged checkpoint: {e}", RuntimeWarning, stacklevel=2)
        if problems:
            more = f"\n  and {len(problems) - 20} more" if len(problems) > 20 else ""
            raise CheckpointError(f"{shown_path(self.directory)}: no checkpoint loads:\n  "
                                  + "\n  ".join(problems[:20]) + more)
        return None

    def best_step(self) -> int | None:
        """The step of the best checkpoint by `best_metric` (None without one)."""
        return self._best(self._metrics())

    def load_best(self) -> Checkpoint | None:
        """The best checkpoint by `best_metric`, or None."""
        step = self.best_step()
        return None if step is None else self.load(step)

    def __repr__(self) -> str:
        return (f"CheckpointManager({str(self.directory)!r}, max_to_keep={self.max_to_keep}, "
                f"best_metric={self.best_metric!r}, mode={self.mode!r})")
