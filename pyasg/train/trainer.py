"""`Trainer`: the training loop everyone writes, written once.

Give it a model (a `pyasg.nn` Module), a loss, an optimiser (`pyasg.optim`, with its
schedule if any) and a training `DataLoader`; `fit(epochs=…)` or `fit(steps=…)` runs:

- ONE compiled step (`pyasg.jit`): forward, `value_and_grad`, clipping, the
  optimiser's update; the parameters and the optimiser's per-parameter state are
  donated, so on numpy they are updated in place (`pyasg.train.steps`);
- gradient accumulation (`accumulate=k`: k micro-batches per update, their gradients
  weighted by their share of the samples, which is the gradient of the k batches as
  one big batch), and clipping (`clip_norm=`, `clip_value=`: `pyasg.optim.clip`, on
  the update's whole gradient);
- validation (`val_data`, `metrics`) at the end of every epoch or every `val_every`
  steps, and early stopping (`pyasg.metrics.EarlyStopping` on `monitor`);
- checkpoints (`checkpoints=` a directory or a `pyasg.io.CheckpointManager`, every
  `save_every` steps and when `fit` ends) from which `resume()` continues EXACTLY:
  parameters, optimiser state, model state, random key, step, epoch, the position in
  the epoch's (shuffled) data, the running epoch loss, history and early stopping, so
  an interrupted and resumed run ends with the same parameters, bit for bit, as one
  that never stopped (`pyasg.train.state`);
- a tqdm bar with the loss and samples/s, a `pyasg.events.StepDone` per step (the
  viewer's loss chart; validation values ride in its metrics), `RunFinished` at the
  end, and callbacks (`pyasg.train.callbacks`; the CSV and TensorBoard loggers of
  `pyasg.train.logging` are callbacks too).

`epochs` and `steps` are totals, not increments: `fit(steps=1000)` on a trainer resumed
at step 600 trains 400 more, so the same script, rerun after a crash with `resume()`,
finishes the same run.

The loss: by default `loss(outputs, targets)` with `outputs = model(params, inputs)`
and batches `(inputs, targets)`; with `loss_takes="params"` it is `loss(params, batch)`
for any batch layout (a penalty on the weights, a model with several inputs; `model`
may then be None if `params=` is given). Either way it is the batch's MEAN loss.
The model is called with `training=True` and a fresh `key=` (dropout) when its call
takes them, and `training=False` to validate; a stateful model (BatchNorm) gets and
returns `state=`.

>>> import numpy as np
>>> from pyasg import nn, losses, optim
>>> from pyasg.data import ArrayDataset, DataLoader
>>> x = np.linspace(-1, 1, 64, dtype=np.float32)[:, None]
>>> data = DataLoader(ArrayDataset(x, 3 * x + 1), batch_size=16, shuffle=True, seed=0)
>>> trainer = Trainer(nn.Linear(1, 1), losses.mse_loss, optim.SGD(lr=0.3), data,
...                   progress=False)
>>> logs = trainer.fit(epochs=20)
>>> trainer.step, trainer.epoch, round(logs["loss"], 4)
(80, 20, 0.0)
>>> np.round(trainer.params["weight"], 2).tolist(), np.round(trainer.params["bias"], 2).tolist()
([[3.0]], [1.0])
"""

from __future__ import annotations

import inspect
import math
import time
from typing import Any

import numpy as np

from pyasg import events
from pyasg.array import functional as F
from pyasg.array import random
from pyasg.errors import CheckpointError, PyasgError, shorten, shown_path
from pyasg.io.checkpoint import Checkpoint, CheckpointManager
from pyasg.metrics.training import EarlyStopping
from pyasg.nn import checks
from pyasg.nn.checks import quote
from pyasg.nn.module import Module
from pyasg.optim.base import Optimizer
from pyasg.trace.tree import flatten_with_paths, tree_leaves, tree_map, unflatten
from pyasg.train.callbacks import CallbackList
from pyasg.train.checks import TrainerError, callables, function, instance, iterable, one_of
from pyasg.train.checks import name as check_name
from pyasg.train.progress import ProgressBar
from pyasg.train.state import RECORD_KEY, Progress, restore_stopper, stopper_state
from pyasg.train.steps import Steps

__all__ = ["Trainer"]

_WHO = "Trainer"
#: The keywords a model's call may take, passed when it does.
_KEYWORDS = ("key", "training", "state")


def _numpy(x: Any) -> np.ndarray:
    """A backend array (numpy or wgpu) as a numpy array."""
    to_numpy = getattr(x, "numpy", None)
    return to_numpy() if callable(to_numpy) and not isinstance(x, np.ndarray) \
        else np.asarray(x)


def _batch_size(batch: Any) -> int:
    """Samples in a batch: the first axis of its first leaf (1 for a scalar leaf)."""
    for leaf in tree_leaves(batch):
        shape = np.shape(leaf) if not hasattr(leaf, "shape") else tuple(leaf.shape)
        return int(shape[0]) if shape else 1
    return 1


def _keywords(model: Any) -> frozenset[str]:
    """Which of `key`, `training`, `state` the model's call takes."""
    try:
        params = inspect.signature(model.__call__).parameters
    except (TypeError, ValueError):
        return frozenset()
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return frozenset(_KEYWORDS)
    return frozenset(k for k in _KEYWORDS if k in params)


def _random_sampler(loader: Any) -> Any:
    """The loader's epoch-seeded sampler (a shuffling `DataLoader`'s), or None."""
    batch_sampler = getattr(loader, "batch_sampler", None)
    for sampler in (getattr(loader, "sampler", None), getattr(batch_sampler, "sampler", None)):
        if callable(getattr(sampler, "set_epoch", None)) and isinstance(
                getattr(sampler, "seed", None), int):
            return sampler
    return None


class _Lookahead:
    """An epoch's batches, read one ahead, so the step that takes the last one knows."""

    _EMPTY = object()
    _END = object()

    def __init__(self, iterator: Any) -> None:
        self._it = iterator
        self._next: Any = self._EMPTY

    def _pull(self) -> Any:
        if self._next is not self._EMPTY:
            item, self._next = self._next, self._EMPTY
            return item
        return next(self._it, self._END)

    def take(self, k: int) -> list[Any]:
        group = []
        while len(group) < k:
            item = self._pull()
            if item is self._END:
                self._next = self._END
                break
            group.append(item)
        return group

    def exhausted(self) -> bool:
        if self._next is self._EMPTY:
            self._next = next(self._it, self._END)
        return self._next is self._END


class Trainer:
    """Trains `model` on `train_data` with `loss` and `optimizer`; see the module docstring.

    Arguments (after the five positional ones, all keywords):

    - `metrics`: `{name: fn(targets, predictions)}` (or a list of functions, named by
      `__name__`), e.g. `{"accuracy": pyasg.metrics.accuracy}`, computed over the whole
      validation set; `predict` turns the model's outputs into what they take: None
      (the outputs), `"argmax"` (labels from logits) or a function of numpy outputs.
    - `loss_takes`: `"outputs"` (default) or `"params"`; see the module docstring.
    - `params`: starting parameters (copied), instead of `model.init`.
    - `accumulate`: micro-batches per update (default 1). A partial group at the end of
      an epoch makes a smaller update, weighted the same way.
    - `clip_norm`, `clip_value`: clip the update's gradient (value first, then norm);
      with `clip_norm` each step logs `grad_norm`, the norm before clipping.
    - `checkpoints`, `save_every`: see the module docstring; `resume()` to continue.
    - `early_stopping`, `monitor`: an `EarlyStopping` watching `monitor` (default
      `val_loss` with `val_data`, else `loss`, the epoch's mean training loss), checked
      after each validation (a `val_` name) or each epoch (`loss`).
    - `val_every`: validate every that many steps instead of at each epoch's end.
    - `callbacks`: `pyasg.train.Callback`s, called in order.
    - `progress`: show the tqdm bar (default True). `seed`: the random keys of
      `model.init` and of the steps (dropout). `backend`: as `pyasg.jit`'s.
    - `donate`: give the step its parameters and optimiser state (default True): on
      numpy they are overwritten in place, so copy `trainer.params` to keep a snapshot.
    - `name`: the bar's label and the compiled functions' names.

    State: `params`, `opt_state`, `model_state`, `rng`, `step`, `epoch`, `history`
    (a list: the logs of each completed epoch), `logs` (the last step's), `val_logs`
    (the last validation's); `columns` lists the names a step's logs may hold.
    """

    def __init__(self, model: Module | None, loss: Any, optimizer: Optimizer,
                 train_data: Any, val_data: Any = None, *, metrics: Any = None,
                 predict: Any = None, loss_takes: str = "outputs", params: Any = None,
                 accumulate: int = 1, clip_norm: float | None = None,
                 clip_value: float | None = None, checkpoints: Any = None,
                 save_every: int | None = None, early_stopping: EarlyStopping | None = None,
                 monitor: str | None = None, val_every: int | None = None,
                 callbacks: Any = None, progress: bool = True, seed: int = 0,
                 backend: Any = None, donate: bool = True, name: str = "train") -> None:
        # -- the arguments, each checked where it is given
        self.model = instance(model, Module, _WHO, "model", "a pyasg.nn.Module", none=True)
        self.loss = function(loss, _WHO, "loss")
        self.optimizer = instance(optimizer, Optimizer, _WHO, "optimizer",
                                  "a pyasg.optim optimiser (SGD, Adam, ...)")
        self.train_data = iterable(train_data, _WHO, "train_data")
        self.val_data = iterable(val_data, _WHO, "val_data", none=True)
        self.metrics = callables(metrics, _WHO, "metrics")
        if not (predict is None or callable(predict)
                or (isinstance(predict, str) and predict == "argmax")):
            raise TrainerError(f"{_WHO}: predict must be None, 'argmax' or a function of the "
                               f"outputs, got {quote(predict)}")
        self.predict = predict
        self.loss_takes = one_of(loss_takes, _WHO, "loss_takes", ("outputs", "params"))
        self.accumulate = checks.integer(accumulate, _WHO, "accumulate", "[1, inf)",
                                         error=TrainerError)
        self.clip_norm = checks.real(clip_norm, _WHO, "clip_norm", "(0, inf)", none=True,
                                     error=TrainerError)
        self.clip_value = checks.real(clip_value, _WHO, "clip_value", "(0, inf)", none=True,
                                      error=TrainerError)
        self.checkpoints = (checkpoints if checkpoints is None
                            or isinstance(checkpoints, CheckpointManager)
                            else CheckpointManager(checkpoints))
        self.save_every = checks.integer(save_every, _WHO, "save_every", "[1, inf)", none=True,
                                         error=TrainerError)
        self.early_stopping = instance(early_stopping, EarlyStopping, _WHO, "early_stopping",
                                       "a pyasg.metrics.EarlyStopping", none=True)
        self.monitor = None if monitor is None else check_name(monitor, _WHO, "monitor")
        self.val_every = checks.integer(val_every, _WHO, "val_every", "[1, inf)", none=True,
                                        error=TrainerError)
        self.callbacks = CallbackList(callbacks, _WHO)
        self.progress = checks.flag(progress, _WHO, "progress", error=TrainerError)
        self.seed = checks.integer(seed, _WHO, "seed", "[0, inf)", error=TrainerError)
        self.donate = checks.flag(donate, _WHO, "donate", error=TrainerError)
        self.name = check_name(name, _WHO, "name")
        self._check_combinations()

        # -- the model's keywords, its parameters and state, the optimiser state
        self._keywords = _keywords(model) if model is not None else frozenset()
        self._stateful = bool(model is not None and model.has_state())
        if self._stateful and self.loss_takes == "params":
            raise TrainerError(f"{_WHO}: a model with state (BatchNorm) needs "
                               f"loss_takes='outputs': loss(params, batch) cannot pass it on")
        init_key, rng = random.split(random.key(self.seed), 2)
        self.rng: Any = np.asarray(rng)
        if params is None:
            params = model.init(init_key)  # type: ignore[union-attr]
        else:  # owned: the donating step overwrites what it is given
            params = tree_map(lambda a: a.copy() if isinstance(a, np.ndarray) else a, params)
        self.params: Any = params
        self.opt_state: Any = self.optimizer.init(params)
        self.model_state: Any = model.init_state() if self._stateful else {}  # type: ignore
        self._backend = backend
        self._steps = self._make_steps()

        # -- where the run is
        self._progress = Progress(model_state=self._stateful)
        self.logs: dict[str, Any] = {}
        self.val_logs: dict[str, float] = {}
        self._stopping = False
        self._saved_step: int | None = None
        self._limits: tuple[int | None, int | None] = (None, None)
        self._bar = ProgressBar(None, 0, self.name, False)
        self._clock = time.perf_counter()

    def _make_steps(self) -> Steps:
        """The compiled steps of the model as it is now (traced on their first call)."""
        return Steps(self._objective, self._evaluation, self.optimizer,
                     clip_norm=self.clip_norm, clip_value=self.clip_value,
                     backend=self._backend, donate=self.donate, name=self.name)

    def replace_model(self, model: Module, params: Any, opt_state: Any) -> None:
        """Train `model` from the next step on, from `params` and `opt_state` (the model
        lab's changes, `pyasg.train.lab`, call it between steps): its steps are traced
        and compiled again. The model must be stateful exactly when the old one was."""
        model = instance(model, Module, "Trainer.replace_model", "model", "a pyasg.nn.Module")
        if model.has_state() != self._stateful:
            raise TrainerError("Trainer.replace_model: the new model must have state "
                               "(BatchNorm) exactly when the old one had")
        self.model, self._keywords = model, _keywords(model)
        self.params, self.opt_state = params, opt_state
        self._steps = self._make_steps()

    def _check_combinations(self) -> None:
        if self.model is None:
            if self.loss_takes != "params":
                raise TrainerError(f"{_WHO}: without a model, the loss must be a function of "
                                   f"(params, batch): pass loss_takes='params' and params=…")
            if self.metrics:
                raise TrainerError(f"{_WHO}: metrics score the model's outputs: they need a "
                                   f"model")
        if self.save_every is not None and self.checkpoints is None:
            raise TrainerError(f"{_WHO}: save_every needs checkpoints= (a directory or a "
                               f"pyasg.io.CheckpointManager)")
        if self.val_every is not None and self.val_data is None:
            raise TrainerError(f"{_WHO}: val_every needs val_data")
        if self.early_stopping is None:
            if self.monitor is not None:
                raise TrainerError(f"{_WHO}: monitor names what early_stopping watches; pass "
                                   f"early_stopping=pyasg.metrics.EarlyStopping(...)")
            return
        if self.monitor is None:
            self.monitor = "val_loss" if self.val_data is not None else "loss"
        watched = ["loss"] + ([f"val_{n}" for n in ("loss", *self.metrics)]
                              if self.val_data is not None else [])
        if self.monitor not in watched:
            raise TrainerError(f"{_WHO}: monitor {self.monitor!r} is not a value this trainer "
                               f"computes; it computes {watched}")

    # -- what is traced

    def _forward(self, params: Any, model_state: Any, inputs: Any, key: Any,
                 training: bool) -> tuple[Any, Any]:
        """(outputs, new model state) of the model on `inputs`."""
        kwargs: dict[str, Any] = {}
        if "training" in self._keywords:
            kwargs["training"] = training
        if "key" in self._keywords and training:
            kwargs["key"] = key
        if self._stateful:
            outputs, model_state = self.model(params, inputs, state=model_state, **kwargs)  # type: ignore[misc]
            return outputs, model_state
        return self.model(params, inputs, **kwargs), model_state  # type: ignore[misc]

    def _objective(self, params: Any, model_state: Any, key: Any, batch: Any) -> tuple:
        if self.loss_takes == "params":
            return self.loss(params, batch), model_state
        inputs, targets = batch
        outputs, model_state = self._forward(params, model_state, inputs, key, True)
        return self.loss(outputs, targets), model_state

    def _evaluation(self, params: Any, model_state: Any, batch: Any) -> Any:
        if self.loss_takes == "params":
            loss = self.loss(params, batch)
            outputs = self._forward(params, model_state, batch[0], None, False)[0] \
                if self.metrics else None
        else:
            outputs = self._forward(params, model_state, batch[0], None, False)[0]
            loss = self.loss(outputs, batch[1])
        return (loss, outputs) if self.metrics else loss

    # -- public state

    @property
    def step(self) -> int:
        """Optimiser updates done."""
        return self._progress.step

    @property
    def epoch(self) -> int:
        """Epochs completed."""
        return self._progress.epoch

    @property
    def history(self) -> list[dict[str, Any]]:
        """The logs of every completed epoch: `epoch`, `step`, `loss` (the epoch's mean
        training loss, by sample) and its last validation's values."""
        return self._progress.history

    @property
    def columns(self) -> list[str]:
        """The names a step's logs may hold, in order (a CSV header)."""
        names = ["step", "epoch", "loss", "lr", "samples", "samples_per_s"]
        if self.clip_norm is not None:
            names.append("grad_norm")
        if self.val_data is not None:
            names += [f"val_{n}" for n in ("loss", *self.metrics)]
        return names

    def stop(self) -> None:
        """End `fit` after the current step (for callbacks)."""
        self._stopping = True

    # -- training

    def fit(self, epochs: int | None = None, steps: int | None = None) -> dict[str, Any]:
        """Train until `epochs` epochs or `steps` updates are done IN ALL (whichever comes
        first), early stopping stops, or a callback calls `stop()`; returns the last
        step's logs. A fit that has nothing left to do returns at once."""
        who = "Trainer.fit"
        epochs = checks.integer(epochs, who, "epochs", "[0, inf)", none=True, error=TrainerError)
        steps = checks.integer(steps, who, "steps", "[0, inf)", none=True, error=TrainerError)
        if epochs is None and steps is None:
            raise TrainerError(f"{who}: say how long to train: epochs=… or steps=… (totals, "
                               f"counted from the start of the run)")
        self._stopping = False
        self._limits = (epochs, steps)
        self._bar = ProgressBar(self._bar_total(epochs, steps), self.step, self.name,
                                self.progress)
        try:
            self.callbacks.call("on_fit_start", self)
            self._clock = time.perf_counter()
            while not self._finished():
                self._run_epoch()
            if self.checkpoints is not None and self._saved_step != self.step:
                self._save()
        except BaseException as error:
            self._bar.close()
            try:
                self.callbacks.call("on_exception", self, error)
            finally:
                if events.has_subscribers(events.RunFinished):
                    events.publish(events.RunFinished(
                        error=shorten(f"{type(error).__name__}: {error}", 300)))
            raise
        self._bar.close()
        logs = dict(self.logs)
        self.callbacks.call("on_fit_end", self, logs)
        if events.has_subscribers(events.RunFinished):
            events.publish(events.RunFinished())
        return logs

    def _finished(self) -> bool:
        epochs, steps = self._limits
        return (self._stopping or (steps is not None and self.step >= steps)
                or (epochs is not None and self.epoch >= epochs)
                or (self.early_stopping is not None and self.early_stopping.stopped))

    def _bar_total(self, epochs: int | None, steps: int | None) -> int | None:
        totals = [] if steps is None else [max(steps, self.step)]
        if epochs is not None:
            try:
                per_epoch = -(-len(self.train_data) // self.accumulate)
            except (TypeError, PyasgError):  # an iterable without a length
                per_epoch = None
            if per_epoch is not None:
                done = self._progress.batch // self.accumulate
                totals.append(self.step + max(0, (epochs - self.epoch) * per_epoch - done))
        return min(totals) if totals else None

    def _run_epoch(self) -> None:
        sampler = _random_sampler(self.train_data)
        if sampler is not None:  # the epoch's order: from (seed, epoch) alone
            sampler.set_epoch(self.epoch)
        self.callbacks.call("on_epoch_start", self, self.epoch)
        iterator = iter(self.train_data)
        try:
            batches = _Lookahead(iterator)
            consumed = self._progress.batch
            if consumed and len(batches.take(consumed)) < consumed:
                raise TrainerError(f"Trainer.fit: train_data has fewer than the {consumed} "
                                   f"batches of epoch {self.epoch} the run had consumed: "
                                   f"resume with the data it was trained on")
            while not self._finished():
                group = batches.take(self.accumulate)
                if not group:
                    if self._progress.batch == 0:
                        raise TrainerError(f"Trainer.fit: train_data gave no batches in "
                                           f"epoch {self.epoch}")
                    self._end_epoch()  # it ended exactly where the run had stopped
                    return
                self._update(group)
                ended = batches.exhausted()
                self._after_step(ended)
                if ended:
                    return
        finally:
            close = getattr(iterator, "close", None)
            if callable(close):  # a prefetching loader's thread, a generator
                close()

    def _check_batch(self, batch: Any, who: str) -> None:
        if (self.loss_takes == "outputs" or self.metrics) and not (
                isinstance(batch, (tuple, list)) and len(batch) == 2):
            raise TrainerError(f"{who}: a batch must be (inputs, targets), got "
                               f"{quote(batch, 80)}; for another layout pass "
                               f"loss_takes='params' (loss(params, batch))")

    def _update(self, group: list[Any]) -> None:
        """One optimiser update from the micro-batches of `group`."""
        for batch in group:
            self._check_batch(batch, "Trainer.fit")
        sizes = [_batch_size(b) for b in group]
        total = sum(sizes)
        if total == 0:
            raise TrainerError("Trainer.fit: a batch has no samples")
        lr = float(_numpy(self.opt_state["lr"]))  # read before the step overwrites it
        steps = self._steps
        if self.accumulate == 1:
            (self.params, self.opt_state, self.model_state, self.rng, loss_value,
             extras) = steps.train(self.params, self.opt_state, self.model_state, self.rng,
                                   group[0])
            loss = float(_numpy(loss_value))
        else:
            acc = tree_map(lambda p: np.zeros(F.type_of(p).shape, F.type_of(p).dtype),
                           self.params)
            losses = []
            for batch, n in zip(group, sizes):
                acc, self.model_state, self.rng, loss_value = steps.micro(
                    self.params, acc, self.model_state, self.rng, batch,
                    np.asarray(n / total, np.float64))
                losses.append(loss_value)
            self.params, self.opt_state, extras = steps.apply(self.params, self.opt_state, acc)
            loss = math.fsum(float(_numpy(v)) * n for v, n in zip(losses, sizes)) / total
        now = time.perf_counter()
        seconds, self._clock = now - self._clock, now
        p = self._progress
        p.step += 1
        p.batch += len(group)
        p.epoch_loss += loss * total
        p.epoch_samples += total
        self.logs = {"step": p.step, "epoch": p.epoch, "loss": loss, "lr": lr,
                     "samples": total,
                     "samples_per_s": total / seconds if seconds > 0 else math.nan}
        if "grad_norm" in extras:
            self.logs["grad_norm"] = float(_numpy(extras["grad_norm"]))
        self._bar.step(loss, total, seconds)

    def _after_step(self, ended: bool) -> None:
        """Validation, events, callbacks, the epoch's end, early stopping, checkpoints."""
        logs, p = self.logs, self._progress
        val = None
        if self.val_data is not None and (ended if self.val_every is None
                                          else p.step % self.val_every == 0):
            val = {f"val_{k}": v for k, v in self.evaluate().items()}
            logs.update(val)
            self.val_logs = dict(val)
            p.epoch_val = dict(val)
        if events.has_subscribers(events.StepDone):
            events.publish(events.StepDone(p.step, logs["loss"], dict(val or {})))
        self.callbacks.call("on_step_end", self, logs)
        if val is not None:
            self.callbacks.call("on_validation_end", self,
                                {"step": p.step, "epoch": p.epoch, **val})
            if self.early_stopping is not None and self.monitor.startswith("val_"):  # type: ignore[union-attr]
                self._check_stopping(val)
        if ended:
            self._end_epoch()
        if self.save_every is not None and p.step % self.save_every == 0:
            self._save()
        self._clock = time.perf_counter()  # the next step's time leaves this work out

    def _end_epoch(self) -> None:
        p = self._progress
        logs = {"epoch": p.epoch, "step": p.step,
                "loss": p.epoch_loss / p.epoch_samples if p.epoch_samples else math.nan,
                **p.epoch_val}
        p.history.append(dict(logs))
        p.epoch += 1
        p.batch, p.epoch_loss, p.epoch_samples, p.epoch_val = 0, 0.0, 0, {}
        self.callbacks.call("on_epoch_end", self, logs)
        if self.early_stopping is not None and not self.monitor.startswith("val_"):  # type: ignore[union-attr]
            self._check_stopping(logs)

    def _check_stopping(self, logs: dict[str, Any]) -> None:
        if self.early_stopping.step(logs[self.monitor], step=self.step):  # type: ignore[union-attr,index]
            self._stopping = True

    # -- validation

    def evaluate(self, data: Any = None) -> dict[str, float]:
        """The mean loss (by sample) and the metrics over `data` (default: `val_data`),
        with the model in evaluation mode: `{"loss": …, "<metric>": …}`."""
        who = "Trainer.evaluate"
        data = iterable(data, who, "data", none=True)
        data = self.val_data if data is None else data
        if data is None:
            raise TrainerError(f"{who}: nothing to evaluate: pass data=… or give the trainer "
                               f"val_data")
        total, count = 0.0, 0
        outputs: list[np.ndarray] = []
        targets: list[np.ndarray] = []
        for batch in data:
            self._check_batch(batch, who)
            n = _batch_size(batch)
            result = self._steps.evaluate(self.params, self.model_state, batch)  # type: ignore[misc]
            if self.metrics:
                result, out = result
                outputs.append(_numpy(out))
                targets.append(np.asarray(batch[1]))
            total += float(_numpy(result)) * n
            count += n
        if count == 0:
            raise TrainerError(f"{who}: the data gave no samples")
        results = {"loss": total / count}
        if self.metrics:
            y_pred = np.concatenate(outputs)
            if self.predict == "argmax":
                y_pred = np.argmax(y_pred, axis=-1)
            elif self.predict is not None:
                y_pred = self.predict(y_pred)
            y_true = np.concatenate(targets)
            for metric, fn in self.metrics.items():
                value = np.asarray(fn(y_true, y_pred))
                if value.size != 1 or value.dtype.kind not in "biuf":
                    raise TrainerError(f"{who}: metric {metric!r} must give one number, got "
                                       f"{quote(value, 80)}")
                results[metric] = float(value.reshape(()))
        return results

    # -- checkpoints

    def _save(self) -> Any:
        p = self._progress
        sampler = _random_sampler(self.train_data)
        p.data_seed = None if sampler is None else sampler.seed
        p.early_stopping = stopper_state(self.early_stopping)
        params = tree_map(_numpy, self.params)
        tree = ({"params": params, "model_state": tree_map(_numpy, self.model_state)}
                if self._stateful else params)
        metadata = {"loss": self.logs.get("loss", math.nan), **self.val_logs,
                    RECORD_KEY: p.to_record()}
        best = self.checkpoints.best_metric  # type: ignore[union-attr]
        if best is not None and best not in metadata:  # NaN: never the best
            metadata[best] = math.nan
        path = self.checkpoints.save(p.step, tree, opt_state=tree_map(_numpy, self.opt_state),  # type: ignore[union-attr]
                                     rng=_numpy(self.rng), epoch=p.epoch, metadata=metadata)
        self._saved_step = p.step
        self.callbacks.call("on_checkpoint", self, path)
        return path

    def save(self) -> Any:
        """Write a checkpoint of the current step now; returns its path."""
        if self.checkpoints is None:
            raise TrainerError("Trainer.save: the trainer has no checkpoints= directory")
        return self._save()

    def resume(self, checkpoint: Checkpoint | int | None = None) -> int | None:
        """Continue from a checkpoint: the newest in `checkpoints` (default), the one of
        step `checkpoint` there, or a `pyasg.io.Checkpoint` a `Trainer` wrote. Returns the
        step resumed at, or None when `checkpoints` holds none (a fresh run)."""
        who = "Trainer.resume"
        where: Any = self.checkpoints.directory if self.checkpoints is not None else "checkpoint"
        if isinstance(checkpoint, Checkpoint):
            ckpt: Checkpoint | None = checkpoint
        else:
            step = checks.integer(checkpoint, who, "checkpoint (a step)", "[0, inf)", none=True,
                                  error=TrainerError)
            if self.checkpoints is None:
                raise TrainerError(f"{who}: the trainer has no checkpoints= directory; pass a "
                                   f"pyasg.io.Checkpoint")
            ckpt = (self.checkpoints.load_latest() if step is None
                    else self.checkpoints.load(step))
            if ckpt is None:
                return None
            where = self.checkpoints.path(ckpt.step)
        if not isinstance(ckpt.metadata, dict):
            raise CheckpointError(f"{shown_path(where)}: the checkpoint's metadata is not a dict")
        progress = Progress.from_record(ckpt.metadata.get(RECORD_KEY), where)
        if progress.model_state != self._stateful or progress.step != ckpt.step:
            raise CheckpointError(f"{shown_path(where)}: written by a trainer of a model "
                                  f"{'with' if progress.model_state else 'without'} state, or "
                                  f"for another step; this trainer cannot resume from it")
        if self._stateful:
            if not isinstance(ckpt.params, dict) or set(ckpt.params) != {"params",
                                                                         "model_state"}:
                raise CheckpointError(f"{shown_path(where)}: the params of a stateful model's "
                                      f"checkpoint hold 'params' and 'model_state'")
            model_state = _like(ckpt.params["model_state"], self.model_state, "model state",
                                where)
            params = _like(ckpt.params["params"], self.params, "parameters", where)
        else:
            model_state, params = self.model_state, _like(ckpt.params, self.params,
                                                          "parameters", where)
        opt_state = _like(ckpt.opt_state, self.opt_state, "optimiser state", where)
        rng = np.asarray(ckpt.rng) if ckpt.rng is not None else None
        if rng is None or rng.shape != (2,) or rng.dtype != np.uint32:
            raise CheckpointError(f"{shown_path(where)}: the checkpoint's rng is not a random "
                                  f"key (uint32[2])")
        restore_stopper(self.early_stopping, progress.early_stopping, where)
        sampler = _random_sampler(self.train_data)
        if progress.data_seed is not None and sampler is not None \
                and sampler.seed != progress.data_seed:
            sampler.seed = progress.data_seed  # the run's shuffling, whatever this loader drew
            if hasattr(self.train_data, "seed"):
                self.train_data.seed = progress.data_seed
        self.params, self.opt_state, self.model_state, self.rng = params, opt_state, \
            model_state, rng
        self._progress = progress
        self.val_logs = {k: float(v) for k, v in ckpt.metadata.items()
                         if isinstance(k, str) and k.startswith("val_")
                         and isinstance(v, (int, float)) and not isinstance(v, bool)}
        self.logs = {}
        self._saved_step = ckpt.step
        return ckpt.step

    def __repr__(self) -> str:
        return (f"Trainer(model={type(self.model).__name__}, optimizer={self.optimizer!r}, "
                f"step={self.step}, epoch={self.epoch})")


def _like(got: Any, want: Any, what: str, where: Any) -> Any:
    """`got` (a loaded tree) in the structure of `want`, after checking that it has the
    same leaves by path, each of the same shape and dtype."""
    pairs, _ = flatten_with_paths(got)
    want_pairs, want_def = flatten_with_paths(want)
    loaded = dict(pairs)
    missing = [p for p, _ in want_pairs if p not in loaded]
    extra = sorted(set(loaded) - {p for p, _ in want_pairs})
    if missing or extra:
        parts = [f"{label} {', '.join(repr(p[:60]) for p in found[:6])}"
                 for label, found in (("missing", missing), ("extra", extra)) if found]
        raise CheckpointError(f"{shown_path(where)}: the checkpoint's {what} do not fit this "
                              f"trainer: {'; '.join(parts)}")
    leaves = []
    for path, leaf in want_pairs:
        have, need = F.type_of(loaded[path]), F.type_of(leaf)
        if have != need:
            raise CheckpointError(f"{shown_path(where)}: the checkpoint's {what} at "
                                  f"{path[:80]!r} is {have!r}, this trainer's is {need!r}")
        leaves.append(loaded[path])
    return unflatten(want_def, leaves)

