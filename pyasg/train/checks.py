"""The trainer's error and its argument checks.

Every argument of `Trainer`, its methods and its loggers goes through one of these
(or through `pyasg.nn.checks` with `error=TrainerError`), so a mistake is one
`TrainerError` naming who was called, the argument, what it must be and what came
instead, quoted briefly, and never a TypeError from deep inside a training loop.

>>> name("val_acc", "Trainer", "metric name")
'val_acc'
>>> iterable("abc", "Trainer", "train_data")
Traceback (most recent call last):
...
pyasg.train.checks.TrainerError: Trainer: train_data must be an iterable of batches (a \
pyasg.data.DataLoader), got str 'abc'...
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from pyasg.nn.checks import ArgumentError, quote

__all__ = ["MissingDependencyError", "TrainerError", "callables", "function", "instance",
           "iterable", "name", "one_of"]


class TrainerError(ArgumentError):
    """`Trainer` (or one of its loggers) got an argument it cannot use, or a batch of the
    wrong form; a `PyasgError`, and a `ValueError` like the training stack's other
    argument errors."""


class MissingDependencyError(TrainerError):
    """An optional logger needs a package that is not installed (see its message)."""


_NAME = re.compile(r"[A-Za-z_][\w./-]{0,63}")


def name(value: object, who: str, what: str) -> str:
    """A name that becomes a CSV column and a TensorBoard tag: a letter or `_`, then up
    to 63 letters, digits, `_`, `.`, `/` or `-`.

    >>> name("a,b", "CSVLogger", "column")
    Traceback (most recent call last):
    ...
    pyasg.train.checks.TrainerError: CSVLogger: column must be a name (a letter or _, then ...
    """
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise TrainerError(f"{who}: {what} must be a name (a letter or _, then up to 63 "
                           f"letters, digits, _ . / -), got {quote(value)}")
    return value


def function(value: object, who: str, what: str, *, none: bool = False) -> Any:
    """`value` if it can be called (None passes when `none`)."""
    if value is None and none:
        return None
    if not callable(value):
        raise TrainerError(f"{who}: {what} must be callable{' or None' if none else ''}, "
                           f"got {quote(value)}")
    return value


def iterable(value: object, who: str, what: str, *, none: bool = False) -> Any:
    """An iterable of batches (not a str, bytes or a dict: those iterate as something
    else); None passes when `none`."""
    if value is None and none:
        return None
    if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__iter__"):
        raise TrainerError(f"{who}: {what} must be an iterable of batches (a "
                           f"pyasg.data.DataLoader){' or None' if none else ''}, got "
                           f"{quote(value)}")
    return value


def one_of(value: object, who: str, what: str, options: tuple[object, ...]) -> Any:
    """`value` if it is one of `options` (equal, and of the same type)."""
    for option in options:
        if type(value) is type(option) and value == option:
            return option
    raise TrainerError(f"{who}: {what} must be one of {', '.join(map(repr, options))}, got "
                       f"{quote(value)}")


def instance(value: object, kind: type | tuple[type, ...], who: str, what: str,
             expected: str, *, none: bool = False) -> Any:
    """`value` if it is an instance of `kind` (None passes when `none`)."""
    if (value is None and none) or isinstance(value, kind):
        return value
    raise TrainerError(f"{who}: {what} must be {expected}{' or None' if none else ''}, got "
                       f"{quote(value)}")


def callables(value: object, who: str, what: str) -> dict[str, Callable[..., Any]]:
    """Named functions: a dict of name -> function, or a sequence of functions (named by
    their `__name__`); None is none.

    >>> list(callables([len, abs], "Trainer", "metrics"))
    ['len', 'abs']
    """
    if value is None:
        return {}
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, (list, tuple)):
        items = [(getattr(f, "__name__", None), f) for f in value]
    else:
        raise TrainerError(f"{who}: {what} must be a dict of name -> function or a list of "
                           f"functions, got {quote(value)}")
    out: dict[str, Callable[..., Any]] = {}
    for key, fn in items:
        function(fn, who, f"{what}[{quote(key, 40, False)}]")
        key = name(key, who, f"the name of {what}[{quote(key, 40, False)}]")
        if key in out:
            raise TrainerError(f"{who}: {what} names {key!r} twice")
        out[key] = fn
    return out
