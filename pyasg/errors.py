"""The exceptions pyasg raises on bad input (every one a `PyasgError`), and `user_source`.

An error names where it happened: the user's ``file:line``, found by `user_source`
when the error is made (the innermost frame outside the pyasg package), unless the
code raising it passes a better `source` (a graph node's recorded line) or None.

This module imports nothing of pyasg, so every layer (including `asg`) may use it.

>>> str(ShapeError("bad", source="model.py:3"))
'bad\\n  at model.py:3'
"""

from __future__ import annotations

import os
import sys

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_SHORT_NAMES: dict[str, str] = {}


def _short(filename: str) -> str:
    short = _SHORT_NAMES.get(filename)
    if short is None:
        cwd = os.getcwd() + os.sep
        short = filename[len(cwd):] if filename.startswith(cwd) else os.path.basename(filename)
        _SHORT_NAMES[filename] = short
    return short


def shown(value: object, limit: int = 100) -> str:
    """`repr(value)` as an error message may quote it: cut to `limit` characters, with the
    full length said, since a message must never echo a megabyte of input. A repr that
    fails (a list nested 5,000 deep) gives the type's name instead.

    >>> shown("a" * 1000, limit=6)
    "'aaaaa… (1,002 characters)"
    >>> shown([1, 2])
    '[1, 2]'
    """
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - any broken or too-deep repr: name the type
        return f"<{type(value).__name__}>"
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters)"


def user_source() -> str | None:
    """`file:line` of the innermost caller outside the pyasg package (None if there is none).

    >>> user_source() is None or ":" in user_source()
    True
    """
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith(_PACKAGE_DIR) and not filename.startswith("<frozen"):
            return f"{_short(filename)}:{frame.f_lineno}"
        frame = frame.f_back
    return None


class _Here:
    """The default `source` of an error: the user's line where it is made."""

    def __repr__(self) -> str:
        return "HERE"


HERE = _Here()


class PyasgError(Exception):
    """Base class of every error pyasg raises on bad input.

    `source` is the user's ``file:line`` that caused it: by default where the error is
    made (`user_source`); pass a node's recorded source instead, or None for none.
    """

    def __init__(self, message: str, source: str | None | _Here = HERE) -> None:
        if source is HERE:
            source = user_source()
        self.message = message
        self.source = source
        super().__init__(f"{message}\n  at {source}" if source else message)


class ShapeError(PyasgError):
    """Operand shapes or dtypes do not fit the operation."""


class TraceError(PyasgError):
    """A traced value was used as Python data, or a tracer outlived its trace."""


class GradError(PyasgError):
    """`grad` was asked for something it cannot differentiate."""


class GraphFormatError(PyasgError):
    """A serialised graph is malformed, truncated or tampered with."""


class BackendError(PyasgError):
    """A backend is unknown, unavailable, or cannot run this graph."""


class CheckpointError(PyasgError):
    """A weights or checkpoint file is missing, damaged or does not match."""
