"""The reductions: sum and max over axes, argmax along one.

>>> Sum(axes=(1,)).infer(TensorType((2, 3)))
f32[2]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from pyasg.asg.ops.base import Op
from pyasg.asg.types import TensorType
from pyasg.errors import ShapeError


def _reduced_shape(op: Op, x: TensorType, axes: tuple[int, ...], keepdims: bool) -> tuple:
    for a in axes:
        if not 0 <= a < x.ndim:
            raise ShapeError(f"{op.name}: axis {a} is out of range for {x!r}")
    if len(set(axes)) != len(axes):
        raise ShapeError(f"{op.name}: repeated axis in {axes}")
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(x.shape))
    return tuple(d for i, d in enumerate(x.shape) if i not in axes)


@dataclass(frozen=True)
class Sum(Op):
    """Sum over `axes` (non-negative, sorted); keeps them as size 1 when `keepdims`."""

    axes: tuple[int, ...]
    keepdims: bool = False
    category: ClassVar[str] = "reduction"
    fusion_role: ClassVar[str] = "reduction"

    def infer(self, x: TensorType) -> TensorType:
        if x.dtype == "bool":
            raise ShapeError(f"sum: cast the bool operand {x!r} to a number first")
        return TensorType(_reduced_shape(self, x, self.axes, self.keepdims), x.dtype)


@dataclass(frozen=True)
class Max(Op):
    """Maximum over `axes`; the gradient is shared evenly between ties."""

    axes: tuple[int, ...]
    keepdims: bool = False
    category: ClassVar[str] = "reduction"
    fusion_role: ClassVar[str] = "reduction"

    def infer(self, x: TensorType) -> TensorType:
        for a in self.axes:
            if 0 <= a < x.ndim and x.shape[a] == 0:
                raise ShapeError(f"max: axis {a} of {x!r} is empty")
        return TensorType(_reduced_shape(self, x, self.axes, self.keepdims), x.dtype)


@dataclass(frozen=True)
class ArgMax(Op):
    """Index (int32) of the first maximum along `axis`. Not differentiable."""

    axis: int
    keepdims: bool = False
    category: ClassVar[str] = "reduction"
    differentiable: ClassVar[bool] = False
    name: ClassVar[str] = "argmax"

    def infer(self, x: TensorType) -> TensorType:
        shape = _reduced_shape(self, x, (self.axis,), self.keepdims)
        if x.shape[self.axis] == 0:
            raise ShapeError(f"argmax: axis {self.axis} of {x!r} is empty")
        return TensorType(shape, "int32")


