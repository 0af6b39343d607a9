"""The exceptions pyasg raises on bad input; every one is a `PyasgError`.

This module imports nothing of pyasg, so every layer (including `asg`) may use it.
"""

from __future__ import annotations


class PyasgError(Exception):
    """Base class of every error pyasg raises on bad input.

    `source` is the user's ``file:line`` that caused it, when known.
    """

    def __init__(self, message: str, source: str | None = None) -> None:
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
