"""Callbacks: code a `Trainer` calls at fixed points of `fit`.

Subclass `Callback` and override the hooks you need (each does nothing by default), or
pass functions to `LambdaCallback`. Every hook gets the trainer first, so it can read
`trainer.params`, `trainer.step`, `trainer.epoch`, or call `trainer.stop()` to end
training after the current step. The order within one `fit`:

    on_fit_start(trainer)
      on_epoch_start(trainer, epoch)       # also when a resumed epoch goes on
        on_step_end(trainer, logs)         # after every optimiser update
        on_validation_end(trainer, logs)   # in a step that validated
        on_epoch_end(trainer, logs)        # in the step that ends the epoch
        on_checkpoint(trainer, path)       # in a step that wrote a checkpoint
    on_fit_end(trainer, logs)              # or on_exception(trainer, error)

The checkpoint written when `fit` ends comes just before `on_fit_end`. `logs` are fresh
dicts of Python floats (and the ints `step`, `epoch`): a callback may keep or change
its own.

`on_step_end` logs hold `step` (updates done, this one included), `epoch` (the epoch
this step belongs to, from 0), `loss` (the update's mean training loss), `lr` (the
learning rate it used), `samples`, `samples_per_s`, `grad_norm` when clipping by norm,
and, in a step that validated, the validation values (`val_loss`, `val_<metric>`).

>>> seen = []
>>> log = LambdaCallback(on_epoch_end=lambda trainer, logs: seen.append(logs["epoch"]))
>>> log.on_epoch_end(None, {"epoch": 0}); seen
[0]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pyasg.train.checks import TrainerError, function, quote

__all__ = ["HOOKS", "Callback", "CallbackList", "LambdaCallback"]

#: The hooks, in the order a fit first reaches them.
HOOKS = ("on_fit_start", "on_epoch_start", "on_step_end", "on_validation_end",
         "on_epoch_end", "on_checkpoint", "on_fit_end", "on_exception")


class Callback:
    """Base of callbacks: every hook is a method that does nothing; override some."""

    def on_fit_start(self, trainer: Any) -> None:
        """`fit` begins (after a resume, at the resumed step)."""

    def on_epoch_start(self, trainer: Any, epoch: int) -> None:
        """Epoch `epoch` (from 0) begins or, after a resume in its middle, goes on."""

    def on_step_end(self, trainer: Any, logs: dict[str, Any]) -> None:
        """An optimiser update is done; see the module docstring for `logs`."""

    def on_validation_end(self, trainer: Any, logs: dict[str, Any]) -> None:
        """A validation pass is done: `step`, `epoch`, `val_loss` and `val_<metric>`."""

    def on_checkpoint(self, trainer: Any, path: Any) -> None:
        """A checkpoint of `trainer.step` was written to `path`."""

    def on_epoch_end(self, trainer: Any, logs: dict[str, Any]) -> None:
        """An epoch ended: `epoch`, `step`, `loss` (its mean training loss, by sample) and
        the validation values of its last step, when it validated."""

    def on_fit_end(self, trainer: Any, logs: dict[str, Any]) -> None:
        """`fit` returns these logs (the last step's)."""

    def on_exception(self, trainer: Any, error: BaseException) -> None:
        """`fit` is ending with `error` (raised again after every callback saw it)."""


class LambdaCallback(Callback):
    """A callback made of functions, one per hook, each taking the hook's arguments.

    >>> calls = []
    >>> cb = LambdaCallback(on_step_end=lambda trainer, logs: calls.append(logs["step"]))
    >>> cb.on_step_end(None, {"step": 3}); cb.on_fit_end(None, {}); calls
    [3]
    """

    def __init__(self, **hooks: Callable[..., Any]) -> None:
        for hook, fn in hooks.items():
            if hook not in HOOKS:
                raise TrainerError(f"LambdaCallback: {quote(hook, 40, False)} is not a hook; "
                                   f"the hooks are {', '.join(HOOKS)}")
            setattr(self, hook, function(fn, "LambdaCallback", hook))


class CallbackList:
    """The callbacks of one trainer, called in the order given.

    >>> CallbackList([object()], "Trainer")
    Traceback (most recent call last):
    ...
    pyasg.train.checks.TrainerError: Trainer: callbacks[0] must be a pyasg.train.Callback ...
    """

    def __init__(self, callbacks: Sequence[Callback] | None, who: str) -> None:
        if callbacks is None:
            callbacks = ()
        if isinstance(callbacks, Callback):
            callbacks = (callbacks,)
        if not isinstance(callbacks, (list, tuple)):
            raise TrainerError(f"{who}: callbacks must be a list of pyasg.train.Callback, got "
                               f"{quote(callbacks)}")
        for i, cb in enumerate(callbacks):
            if not isinstance(cb, Callback):
                raise TrainerError(f"{who}: callbacks[{i}] must be a pyasg.train.Callback "
                                   f"(subclass it, or use LambdaCallback), got {quote(cb)}")
        self.callbacks: list[Callback] = list(callbacks)

    def call(self, hook: str, trainer: Any, *args: Any) -> None:
        """Call `hook` of every callback; a dict argument is copied for each one."""
        for cb in self.callbacks:
            getattr(cb, hook)(trainer, *(dict(a) if isinstance(a, dict) else a for a in args))

    def __iter__(self):  # noqa: ANN204
        return iter(self.callbacks)

    def __len__(self) -> int:
        return len(self.callbacks)
