"""Argument checks of the array functions: each non-array argument as an int, a flag, a
shape or axes, or a `ShapeError` naming the function, the argument and the value.

The array functions take Python numbers and sequences for sizes, axes and options.
They pass each through one of these before an op is built or numpy is called, so a
float where an int is due, a None, a string or a size no machine holds is a
`ShapeError` at the user's line, never a TypeError, an IndexError or numpy's
MemoryError from deep inside.

Two size limits, both checked before anything is allocated:

- a shape (from an argument: reshape, broadcast_to, random draws, full, pad, …) may
  describe at most `MAX_BYTES` (2**63 - 1, numpy's own limit: no backend can index
  more) in its widest dtype, even inside a trace;
- an array made *now* (an eager result, or a constant built while tracing) may need
  at most `MEMORY_LIMIT` bytes: this machine's physical memory. A traced result is
  not held to it: the backend that compiles the graph checks its own device.

>>> as_shape((2, 3), "reshape: shape")
(2, 3)
>>> as_int(1.5, "sum: axis")
Traceback (most recent call last):
...
pyasg.errors.ShapeError: sum: axis must be an integer, got float 1.5
"""

from __future__ import annotations

import math
import operator
import os
from collections.abc import Sequence

import numpy as np

from pyasg.asg.types import check_dtype
from pyasg.errors import ShapeError, shown

#: numpy's (and every backend's) largest array in bytes: sizes are signed 64-bit.
MAX_BYTES = 2**63 - 1


def _physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):  # not POSIX: no figure, numpy's limit
        return MAX_BYTES


#: The most bytes one array made now may take: the machine's physical memory (an
#: allocation past it fails, or with overcommit is killed later, in the middle of work).
MEMORY_LIMIT = _physical_memory()


def quote(value: object, limit: int = 60, with_type: bool = True) -> str:
    """`value`'s type and repr as an error message quotes it (`pyasg.errors.shown`).

    >>> quote(1.5), quote("a" * 100)[:8]
    ('float 1.5', "str 'aaa")
    """
    return shown(value, limit, with_type)


def nbytes_text(n: int) -> str:
    """A byte count for people: "3 GiB", "3.64 TiB".

    >>> nbytes_text(3 * 2**30)
    '3 GiB'
    """
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} bytes"


def as_int(value: object, what: str) -> int:
    """`value` as a Python int: an int or a numpy integer (not a bool, not a float).

    >>> as_int(np.int64(3), "take: axis")
    3
    """
    if isinstance(value, (bool, np.bool_)):
        raise ShapeError(f"{what} must be an integer, got {quote(value)}")
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise ShapeError(f"{what} must be an integer, got {quote(value)}") from None


def as_bool(value: object, what: str) -> bool:
    """`value` as a flag: a bool, a numpy bool, or the integers 0 and 1.

    >>> as_bool(1, "sum: keepdims")
    True
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)) and value in (0, 1):
        return bool(value)
    raise ShapeError(f"{what} must be True or False, got {quote(value)}")


def as_real(value: object, what: str, finite: bool = False) -> float:
    """`value` as a Python float: a real number (an int, a float, a numpy scalar or
    0-d array), finite if asked.

    >>> as_real(2, "pad: constant_values")
    2.0
    """
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_))
    if not ok and isinstance(value, np.ndarray) and value.ndim == 0:
        ok = value.dtype.kind in "iuf"
    if not ok:
        raise ShapeError(f"{what} must be a real number, got {quote(value)}")
    try:
        number = float(value)  # type: ignore[arg-type]
    except OverflowError:  # a Python int past float's range
        raise ShapeError(f"{what}: {quote(value)} is too large for a float") from None
    if finite and not math.isfinite(number):
        raise ShapeError(f"{what} must be a finite number, got {number}")
    return number


def as_dtype(value: object, what: str) -> str:
    """`value` as one of pyasg's dtype names (a name, a numpy dtype or scalar type).

    >>> as_dtype(np.float64, "astype: dtype")
    'float64'
    """
    try:
        return check_dtype(value)
    except (TypeError, ValueError):  # np.dtype(...) of something that is no dtype at all
        raise ShapeError(f"{what} must be a dtype, got {quote(value)}") from None


def as_ints(value: object, what: str) -> tuple[int, ...]:
    """An int or a sequence of ints as a tuple of ints.

    >>> as_ints([0, -1], "transpose: axes")
    (0, -1)
    """
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        return (int(value),)
    if isinstance(value, np.ndarray) and value.ndim <= 1:
        return (as_int(value, what),) if value.ndim == 0 else tuple(
            as_int(v, what) for v in value.tolist())
    if not isinstance(value, Sequence) or isinstance(value, (str, bytes)):
        raise ShapeError(f"{what} must be an integer or a sequence of integers, got "
                         f"{quote(value)}")
    return tuple(as_int(v, what) for v in value)


def check_bytes(shape: tuple[int, ...], itemsize: int, what: str,
                limit: int = MAX_BYTES) -> None:
    """Raise if an array of `shape` and `itemsize` would need more than `limit` bytes.

    >>> check_bytes((10**6, 10**6), 4, "x", limit=2**30)
    Traceback (most recent call last):
    ...
    pyasg.errors.ShapeError: x [1000000, 1000000] would need 3.64 TiB, more than the limit (1 GiB)
    """
    need = math.prod(shape) * itemsize
    if need > limit:
        where = ("numpy's limit" if limit == MAX_BYTES else
                 "this machine's memory" if limit == MEMORY_LIMIT else "the limit")
        raise ShapeError(f"{what} {list(shape)} would need {nbytes_text(need)}, more than "
                         f"{where} ({nbytes_text(limit)})")


def as_shape(value: object, what: str) -> tuple[int, ...]:
    """A shape: an int or a sequence of non-negative ints, within `MAX_BYTES` (counted
    at 8 bytes an element, the widest dtype).

    >>> as_shape(3, "full: shape")
    (3,)
    """
    shape = as_ints(value, what)
    if any(d < 0 for d in shape):
        raise ShapeError(f"{what} must not have a negative size, got {list(shape)}")
    check_bytes(shape, 8, what)
    return shape


def as_size(value: object, what: str) -> int:
    """One size: a non-negative int (within `MAX_BYTES`).

    >>> as_size(np.int32(4), "one_hot: num_classes")
    4
    """
    return as_shape((as_int(value, what),), what)[0]


def check_memory(shape: tuple[int, ...], dtype: str, what: str) -> None:
    """Raise before numpy allocates an array larger than this machine's memory.

    >>> check_memory((2, 3), "float32", "add")
    """
    check_bytes(shape, np.dtype(dtype).itemsize, f"{what}: a result of shape", MEMORY_LIMIT)
