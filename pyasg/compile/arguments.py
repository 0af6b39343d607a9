"""The check every executable makes of its arguments: one array per graph input, each of
exactly that input's shape and dtype, or a `BackendError` naming the input's path.

An executable runs what its graph says for the types it was compiled for; a float64
array where float32 was compiled, or an `f32[1]` where `f32[3]` was, would otherwise be
cast or broadcast without a word (numpy) or misread (a GPU buffer). `pyasg.jit`
retraces for a new signature, so only direct callers of an executable can meet this.
The check is one tuple comparison per argument per call.

>>> import numpy as np
>>> from pyasg.asg.types import TensorType
>>> check_arguments("step", [np.ones(3, np.float32)], [TensorType((3,), "float32")], ["x"])
>>> check_arguments("step", [np.ones(1, np.float32)], [TensorType((3,), "float32")], ["x"])
Traceback (most recent call last):
  ...
pyasg.errors.BackendError: step: input x is float32[1], expected f32[3]...
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pyasg.asg.types import TensorType
from pyasg.errors import BackendError


class ArgumentCheck:
    """The check of one executable's arguments, made once when it is compiled: each
    input's expected shape and numpy dtype are kept, since `ndarray.dtype.name` costs
    microseconds per argument per call (a dtype comparison ~0.1 us).

    >>> from pyasg.asg.types import TensorType
    >>> check = ArgumentCheck([TensorType((2,), "int32")], ["i"])
    >>> check("step", [np.zeros(2, np.int32)])
    """

    def __init__(self, types: Sequence[TensorType], paths: Sequence[str],
                 device_array: type | None = None) -> None:
        self.types, self.paths, self.device_array = tuple(types), tuple(paths), device_array
        self._expected = tuple((t.shape, np.dtype(t.dtype)) for t in self.types)

    def __call__(self, name: str, args: Sequence[object]) -> None:
        """Raise `BackendError` unless `args` fit (module docstring)."""
        expected = self._expected
        if len(args) != len(expected):
            raise BackendError(f"{name} takes {len(expected)} arrays, got {len(args)}")
        for k, arg in enumerate(args):
            shape, dtype = expected[k]
            if type(arg) is np.ndarray and arg.shape == shape and arg.dtype == dtype:
                continue
            _refuse(name, arg, self.types[k], self.paths[k], self.device_array)


def check_arguments(name: str, args: Sequence[object], types: Sequence[TensorType],
                    paths: Sequence[str], device_array: type | None = None) -> None:
    """Raise `BackendError` unless `args` are one array per entry of `types`, each of its
    shape and dtype: a numpy array or scalar, or an instance of `device_array` (a
    backend's own array type, whose `type` is compared). Executables keep an
    `ArgumentCheck` instead, made once."""
    ArgumentCheck(types, paths, device_array)(name, args)


def _refuse(name: str, arg: object, t: TensorType, path: str,
            device_array: type | None) -> None:
    """Nothing if `arg` fits `t` after all (a numpy scalar, a subclass, a device array),
    else the `BackendError` that says what it is and what was expected."""
    if isinstance(arg, (np.ndarray, np.generic)):
        if arg.shape == t.shape and arg.dtype == np.dtype(t.dtype):
            return
        got = f"{arg.dtype.name}{list(arg.shape)}"
    elif device_array is not None and isinstance(arg, device_array):
        if arg.type == t:  # type: ignore[attr-defined]
            return
        got = repr(arg.type)  # type: ignore[attr-defined]
    else:
        also = f" or {device_array.__name__}" if device_array is not None else ""
        raise BackendError(f"{name}: input {path} is a {type(arg).__name__}, not an "
                           f"array (a numpy array{also} of {t!r})")
    raise BackendError(f"{name}: input {path} is {got}, expected {t!r} (pyasg.jit "
                       f"compiles again for new types; an executable runs the types "
                       f"it was compiled for)")
