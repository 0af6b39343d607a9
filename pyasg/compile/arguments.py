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


def check_arguments(name: str, args: Sequence[object], types: Sequence[TensorType],
                    paths: Sequence[str], device_array: type | None = None) -> None:
    """Raise `BackendError` unless `args` are one array per entry of `types`, each of its
    shape and dtype: a numpy array or scalar, or an instance of `device_array` (a
    backend's own array type, whose `type` is compared)."""
    if len(args) != len(types):
        raise BackendError(f"{name} takes {len(types)} arrays, got {len(args)}")
    for arg, t, path in zip(args, types, paths):
        if isinstance(arg, (np.ndarray, np.generic)):
            if arg.shape == t.shape and arg.dtype.name == t.dtype:
                continue
            got = f"{arg.dtype.name}{list(arg.shape)}"
        elif device_array is not None and isinstance(arg, device_array):
            if arg.type == t:  # type: ignore[attr-defined]
                continue
            got = repr(arg.type)  # type: ignore[attr-defined]
        else:
            also = f" or {device_array.__name__}" if device_array is not None else ""
            raise BackendError(f"{name}: input {path} is a {type(arg).__name__}, not an "
                               f"array (a numpy array{also} of {t!r})")
        raise BackendError(f"{name}: input {path} is {got}, expected {t!r} (pyasg.jit "
                           f"compiles again for new types; an executable runs the types "
                           f"it was compiled for)")
