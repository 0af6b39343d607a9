"""Argument checks of the training stack: one function per kind of argument, and the errors.

Layers, optimisers and schedules pass each constructor argument through one of
these, so a mistake reads the same everywhere: who was called, which argument, what
it must be and what came instead (quoted briefly: an error never echoes a megabyte of
input). A bad argument is an `ArgumentError` (a `PyasgError`, and a `ValueError` as
PyTorch raises for the same mistakes) at the user's line, never a TypeError or an
OverflowError from `int()` or `float()` deep inside.

Ranges are written as intervals, `"[0, 1)"`, `"(0, inf)"`, and said back in words.
An int must also fit in 64 bits (numpy's sizes are signed 64-bit); a real is never
NaN, and is infinite only where the interval is closed at infinity.

>>> size(3, "Linear", "in_features")
3
>>> size(-1, "Linear", "in_features")
Traceback (most recent call last):
...
pyasg.nn.checks.ArgumentError: Linear: in_features must be an int >= 0, got int -1...
>>> real(0.5, "Dropout", "p", "[0, 1]")
0.5
"""

from __future__ import annotations

import functools
import math
import numbers
import re
from collections.abc import Callable, Collection, Sequence
from typing import Any, NamedTuple

import numpy as np

from pyasg.array.checks import MAX_BYTES, MEMORY_LIMIT, nbytes_text, quote
from pyasg.asg.types import FLOAT_DTYPES
from pyasg.errors import PyasgError

#: The largest int a size may be: numpy indexes with signed 64-bit integers.
MAX_INT = 2**63 - 1


class ArgumentError(PyasgError, ValueError):
    """A layer, optimiser or schedule got an argument of the wrong kind or out of range.

    Also a `ValueError`, which is what PyTorch raises for most of the same mistakes.
    """


class HyperparameterError(ArgumentError):
    """An optimiser or schedule was given an invalid hyper-parameter."""


class ParamsError(ArgumentError):
    """A params (or state) tree does not fit the layer: missing or extra keys, a leaf
    that is no array, or one of the wrong shape."""


class Interval(NamedTuple):
    """A range of numbers: bounds (±inf for none) and whether each end is included."""

    low: float
    high: float
    low_closed: bool
    high_closed: bool

    def __contains__(self, x: object) -> bool:
        v = float(x)  # type: ignore[arg-type]
        above = v >= self.low if self.low_closed else v > self.low
        below = v <= self.high if self.high_closed else v < self.high
        return above and below

    def words(self) -> str:
        """The interval as a reader says it: ">= 0", "> 0", "in [0, 1)"."""
        if self.high == math.inf and not self.high_closed:
            if self.low == -math.inf:
                return ""
            return f"{'>=' if self.low_closed else '>'} {_number(self.low)}"
        if self.low == -math.inf and not self.low_closed:
            return f"{'<=' if self.high_closed else '<'} {_number(self.high)}"
        return (f"in {'[' if self.low_closed else '('}{_number(self.low)}, "
                f"{_number(self.high)}{']' if self.high_closed else ')'}")


def _number(x: float) -> str:
    return str(int(x)) if math.isfinite(x) and x == int(x) else str(x)


_INTERVAL = re.compile(r"^([\[(])\s*([^,\s]+)\s*,\s*([^\]\s)]+)\s*([\])])$")


@functools.cache
def interval(text: str) -> Interval:
    """Parse `"[0, 1)"` (square: the end is included; `inf` for no bound).

    >>> interval("(0, inf)").words(), interval("[0, 1)").words()
    ('> 0', 'in [0, 1)')
    """
    m = _INTERVAL.match(text)
    if m is None:
        raise ValueError(f"not an interval: {text!r}")  # a bug in pyasg, not user input
    return Interval(float(m[2]), float(m[3]), m[1] == "[", m[4] == "]")


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _must(what: str, within: Interval) -> str:
    words = within.words()
    return f"{what} {words}" if words else what


def integer(value: object, who: str, name: str, within: str = "(-inf, inf)", *,
            none: bool = False, error: type[PyasgError] = ArgumentError) -> Any:
    """`value` as a Python int in the interval `within` (None passes when `none`).

    Bools are refused (`True` is no size), as are floats, even integral ones.

    >>> integer(-2, "Softmax", "dim")
    -2
    >>> integer(2.0, "Conv2d", "groups", "[1, inf)")
    Traceback (most recent call last):
    ...
    pyasg.nn.checks.ArgumentError: Conv2d: groups must be an int >= 1, got float 2.0...
    """
    if value is None and none:
        return None
    rule = interval(within)
    what = _must("an int", rule) + (" or None" if none else "")
    if not _is_int(value) or not -MAX_INT - 1 <= int(value) <= MAX_INT:  # type: ignore[call-overload]
        raise error(f"{who}: {name} must be {what}, got {quote(value)}")
    number = int(value)  # type: ignore[call-overload]
    if number not in rule:
        raise error(f"{who}: {name} must be {what}, got {quote(value)}")
    return number


def size(value: object, who: str, name: str, within: str = "[0, inf)", *,
         none: bool = False) -> Any:
    """A size or count: an int >= 0 by default.

    >>> size(8, "Conv2d", "out_channels", "[1, inf)")
    8
    """
    return integer(value, who, name, within, none=none)


def real(value: object, who: str, name: str, within: str = "(-inf, inf)", *,
         none: bool = False, error: type[PyasgError] = ArgumentError) -> Any:
    """`value` as a Python float in `within`: never NaN, infinite only where the
    interval is closed at infinity, e.g. `"[0, inf]"`.

    >>> real(1e-5, "LayerNorm", "eps", "[0, inf)")
    1e-05
    >>> real(float("nan"), "SGD", "lr", "[0, inf)")
    Traceback (most recent call last):
    ...
    pyasg.nn.checks.ArgumentError: SGD: lr must be a real number >= 0, got float nan...
    """
    if value is None and none:
        return None
    rule = interval(within)
    what = _must("a real number", rule) + (" or None" if none else "")
    if not _is_real(value):
        raise error(f"{who}: {name} must be {what}, got {quote(value)}")
    try:
        number = float(value)  # type: ignore[arg-type]
    except OverflowError:  # an int beyond float's range
        raise error(f"{who}: {name} must be {what}, got {quote(value)}") from None
    if math.isnan(number) or number not in rule:
        raise error(f"{who}: {name} must be {what}, got {quote(value)}")
    return number


def flag(value: object, who: str, name: str, *,
         error: type[PyasgError] = ArgumentError) -> bool:
    """`value` as a bool: True or False (a numpy bool too), nothing merely truthy.

    >>> flag(np.bool_(True), "Linear", "bias")
    True
    """
    if not isinstance(value, (bool, np.bool_)):
        raise error(f"{who}: {name} must be True or False, got {quote(value)}")
    return bool(value)


def choice(value: object, who: str, name: str, options: Sequence[object]) -> Any:
    """`value` if it is one of `options` (equal and of the same type: 1 is not True).

    >>> choice("same", "Conv2d", "padding", ("valid", "same"))
    'same'
    """
    for option in options:
        if type(value) is type(option) and value == option:
            return option
    listed = ", ".join(repr(o) for o in options)
    raise ArgumentError(f"{who}: {name} must be one of {listed}, got {quote(value)}")


def ints(value: object, who: str, name: str, within: str = "[0, inf)", *,
         length: int | None = None, scalar: bool = True, empty: bool = True,
         error: type[PyasgError] = ArgumentError) -> tuple[int, ...]:
    """An int or a sequence of ints (a shape, a kernel size) as a tuple, each in
    `within`; `length` fixes how many (an int then stands for all of them).

    >>> ints(3, "Conv2d", "kernel_size", "[1, inf)", length=2)
    (3, 3)
    >>> ints((2, 0), "MaxPool2d", "kernel_size", "[1, inf)", length=2)
    Traceback (most recent call last):
    ...
    pyasg.nn.checks.ArgumentError: MaxPool2d: kernel_size[1] must be an int >= 1, got int 0...
    """
    if scalar and _is_int(value):
        return (integer(value, who, name, within, error=error),) * (length or 1)
    if isinstance(value, np.ndarray) and value.ndim == 1:
        value = value.tolist()
    count = "" if length is None else f"{length} "
    kind = f"an int or a sequence of {count}ints" if scalar else f"a sequence of {count}ints"
    if not isinstance(value, Sequence) or isinstance(value, (str, bytes)) \
            or (length is not None and len(value) != length) or (not empty and not value):
        raise error(f"{who}: {name} must be {kind}, got {quote(value)}")
    return tuple(integer(v, who, f"{name}[{i}]", within, error=error)
                 for i, v in enumerate(value))


def float_dtype(value: object, who: str, name: str = "dtype",
                allowed: Collection[str] = FLOAT_DTYPES) -> str:
    """A floating dtype's name, "float32" or "float64" (given as a name or a numpy type;
    not None, which numpy would read as float64); `allowed` widens the choice.

    >>> float_dtype(np.float64, "Linear")
    'float64'
    """
    try:
        dtype = None if value is None else np.dtype(value).name  # type: ignore[call-overload]
    except (TypeError, ValueError, SyntaxError):  # what numpy says of names it cannot read
        dtype = None
    if dtype not in allowed:
        kind = "a float dtype" if set(allowed) <= FLOAT_DTYPES else "a dtype"
        raise ArgumentError(f"{who}: {name} must be {kind} ({', '.join(sorted(allowed))}), "
                            f"got {quote(value)}")
    return dtype


def function(value: object, who: str, name: str) -> Callable[..., Any]:
    """`value` if it can be called.

    >>> function(abs, "FeedForward", "activation") is abs
    True
    """
    if not callable(value):
        raise ArgumentError(f"{who}: {name} must be callable, got {quote(value)}")
    return value


def allocate(make: Callable[[], Any], shape: Sequence[int], dtype: object, who: str,
             error: type[PyasgError] = ArgumentError, *, thing: str | None = None) -> Any:
    """`make()`, which allocates an array of `shape` and `dtype`, with a clear error
    instead of numpy's when no machine can hold it or this one cannot: checked before
    `make` runs against numpy's limit and `MEMORY_LIMIT`, and numpy's MemoryError.

    >>> allocate(lambda: np.zeros((2, 3)), (2, 3), "float64", "init.zeros").shape
    (2, 3)
    >>> allocate(lambda: np.zeros((2**62, 4)), (2**62, 4), "float64", "init.zeros")
    Traceback (most recent call last):
    ...
    pyasg.nn.checks.ArgumentError: init.zeros: a float64 array of shape (4611686018427387904, 4) ...
    """
    dtype = np.dtype(dtype)  # type: ignore[call-overload]
    need = math.prod(shape) * dtype.itemsize
    thing = thing or f"a {dtype.name} array of shape {tuple(shape)}"
    what = f"{who}: {thing} needs {nbytes_text(need)}"
    if max(shape, default=0) > MAX_INT:  # even with no elements: numpy's sizes are int64
        raise error(f"{who}: shape {tuple(shape)} has a size beyond numpy's (2**63 - 1)")
    if need > MAX_BYTES:
        raise error(f"{what}, more than numpy can index ({nbytes_text(MAX_BYTES)})")
    if need > MEMORY_LIMIT:
        raise error(f"{what}, more than this machine's memory ({nbytes_text(MEMORY_LIMIT)})")
    try:
        return make()
    except MemoryError:
        raise error(f"{what}, more than this machine can allocate now") from None
