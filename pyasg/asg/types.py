"""What a value is without its numbers: `TensorType` (shape and dtype) and the dtypes."""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

import numpy as np

from pyasg.errors import ShapeError, shown

#: Every dtype a graph may carry. `uint32` exists for random bits.
DTYPES: tuple[str, ...] = ("bool", "int32", "int64", "uint32", "float32", "float64")
FLOAT_DTYPES = frozenset({"float32", "float64"})
INT_DTYPES = frozenset({"int32", "int64", "uint32"})

DEFAULT_FLOAT = "float32"
DEFAULT_INT = "int32"

_CANONICAL = frozenset(DTYPES)
#: promote's answers by dtype names: np.result_type costs microseconds, and tracing asks
#: the same few questions thousands of times
_PROMOTED: dict[tuple[str, ...], str] = {}

_SHORT = {"bool": "bool", "int32": "i32", "int64": "i64", "uint32": "u32",
          "float32": "f32", "float64": "f64"}


def check_dtype(dtype: object) -> str:
    """Return the canonical dtype name for `dtype` (a name or a numpy dtype).

    >>> check_dtype(np.float32)
    'float32'
    """
    if type(dtype) is str and dtype in _CANONICAL:  # the common case: numpy is slow here
        return dtype
    try:
        name = np.dtype(dtype).name  # type: ignore[arg-type]
    except TypeError:
        name = str(dtype)
    if name not in DTYPES:
        raise ShapeError(f"unsupported dtype {shown(dtype)}; pyasg supports {', '.join(DTYPES)}")
    return name


def is_float(dtype: str) -> bool:
    return dtype in FLOAT_DTYPES


def promote(*dtypes: str) -> str:
    """The dtype numpy gives when these (array) dtypes meet in one operation.

    >>> promote("int32", "float32")
    'float64'
    """
    if not all(type(d) is str for d in dtypes):
        return check_dtype(np.result_type(*dtypes))
    found = _PROMOTED.get(dtypes)
    if found is None:
        found = check_dtype(np.result_type(*dtypes))
        if len(_PROMOTED) < 4096:
            _PROMOTED[dtypes] = found
    return found


def _check_type(shape: object, dtype: object) -> None:
    """Raise `ShapeError` unless `shape` is a tuple of ints >= 0 and `dtype` one of `DTYPES`."""
    if not isinstance(shape, tuple) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise ShapeError(f"a shape is a tuple of non-negative ints, got {shown(shape)}")
    if dtype not in DTYPES:
        raise ShapeError(f"unsupported dtype {shown(dtype)}; pyasg supports {', '.join(DTYPES)}")


@dataclass(frozen=True)
class TensorType:
    """The abstract value of a tensor: its shape and dtype.

    >>> TensorType((2, 3), "float32")
    f32[2,3]
    """

    shape: tuple[int, ...]
    dtype: str = DEFAULT_FLOAT

    def __init__(self, shape: tuple[int, ...], dtype: str = DEFAULT_FLOAT) -> None:
        # written out, not the dataclass's: that one sets each field through
        # object.__setattr__ (frozen), and a trace makes thousands of types
        if not (type(shape) is tuple and all(type(d) is int for d in shape)
                and (not shape or min(shape) >= 0)
                and type(dtype) is str and dtype in _CANONICAL):  # the common case, quickly
            _check_type(shape, dtype)
        values = self.__dict__
        values["shape"] = shape
        values["dtype"] = dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.size * np.dtype(self.dtype).itemsize

    def __repr__(self) -> str:
        return f"{_SHORT[self.dtype]}[{','.join(map(str, self.shape))}]"

    @classmethod
    def of(cls, value: object) -> TensorType:
        """The type of a concrete array or number."""
        arr = np.asarray(value)
        return cls(tuple(int(d) for d in arr.shape), check_dtype(arr.dtype))
