"""Indexing: gather (take along an axis) and its inverse, scatter-add.

>>> Gather(axis=0).infer(TensorType((4, 3)), TensorType((2, 5), 'int32'))
f32[2,5,3]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from pyasg.asg.ops.base import Op
from pyasg.asg.types import INT_DTYPES, TensorType
from pyasg.errors import ShapeError


@dataclass(frozen=True)
class Gather(Op):
    """take(x, indices, axis): x.shape[:axis] + indices.shape + x.shape[axis+1:]."""

    axis: int
    category: ClassVar[str] = "indexing"
    arity: ClassVar[int] = 2

    def infer(self, x: TensorType, indices: TensorType) -> TensorType:
        if indices.dtype not in INT_DTYPES:
            raise ShapeError(f"gather: indices must be integers, got {indices!r}")
        if not 0 <= self.axis < x.ndim:
            raise ShapeError(f"gather: axis {self.axis} is out of range for {x!r}")
        if x.shape[self.axis] == 0 and indices.size:
            raise ShapeError(f"gather: cannot take from empty axis {self.axis} of {x!r}")
        shape = x.shape[: self.axis] + indices.shape + x.shape[self.axis + 1:]
        return TensorType(shape, x.dtype)


@dataclass(frozen=True)
class ScatterAdd(Op):
    """Inverse of gather: add updates into zeros of size `size` along `axis` (repeats add)."""

    axis: int
    size: int
    category: ClassVar[str] = "indexing"
    arity: ClassVar[int] = 2

    def infer(self, updates: TensorType, indices: TensorType) -> TensorType:
        if indices.dtype not in INT_DTYPES:
            raise ShapeError(f"scatter_add: indices must be integers, got {indices!r}")
        k = indices.ndim
        if self.axis < 0 or updates.shape[self.axis: self.axis + k] != indices.shape:
            raise ShapeError(f"scatter_add: updates {updates!r} do not hold indices "
                             f"{indices!r} at axis {self.axis}")
        shape = updates.shape[: self.axis] + (self.size,) + updates.shape[self.axis + k:]
        return TensorType(shape, updates.dtype)


