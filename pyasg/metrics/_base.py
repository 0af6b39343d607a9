"""The metrics' error, warning and input helpers."""

from __future__ import annotations

import os
import sys
import warnings
from typing import Any

import numpy as np

from pyasg.errors import PyasgError
from pyasg.nn import checks
from pyasg.nn.checks import quote

#: dtype kinds a metric accepts as numbers
_NUMERIC = "biuf"
_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


class MetricError(PyasgError, ValueError):
    """A metric got input it cannot score: mismatched or empty arrays, scores where
    labels were meant, an unknown `average`, `k` above the number of classes, …"""


class MetricWarning(UserWarning):
    """A metric is undefined for this input and was given a conventional value
    (scikit-learn's `UndefinedMetricWarning`)."""


def _fail(message: str) -> MetricError:
    return MetricError(message)


def _warn(message: str) -> None:
    # Point the warning at the user's call, however deep inside this module we are.
    frame, level = sys._getframe(0), 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, MetricWarning, stacklevel=level)


def _array(fn: str, name: str, y: Any) -> np.ndarray:
    try:
        return np.asarray(y)
    except (ValueError, TypeError) as e:  # ragged nested lists and the like
        raise _fail(f"{fn}: {name} is not an array: {e}") from None


def _flag(fn: str, name: str, value: Any) -> bool:
    """A True/False option (a numpy bool too), or `MetricError`."""
    return checks.flag(value, fn, name, error=MetricError)


def _label(fn: str, name: str, value: Any) -> Any:
    """One class label: a number, a string or a bool, not a sequence of them."""
    if not isinstance(value, (int, float, str, bytes, np.generic)):
        raise MetricError(f"{fn}: {name} must be one class label (a number or a string), "
                          f"got {quote(value)}")
    return value


def _shape(a: np.ndarray) -> str:
    return "(" + ", ".join(map(str, a.shape)) + ("," if a.ndim == 1 else "") + ")"
