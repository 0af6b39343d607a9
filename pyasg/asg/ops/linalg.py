"""Linear algebra: numpy's matmul (batched, broadcast, 1-d operands promoted).

>>> MatMul().infer(TensorType((5, 2, 3)), TensorType((3, 4)))
f32[5,2,4]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from pyasg.asg.ops.base import Op, broadcast_shapes
from pyasg.asg.types import TensorType
from pyasg.errors import ShapeError


@dataclass(frozen=True)
class MatMul(Op):
    """numpy's matmul: batched, broadcast over leading axes, 1-D operands promoted."""

    category: ClassVar[str] = "linear"
    arity: ClassVar[int] = 2
    fusion_role: ClassVar[str] = "contraction"
    name: ClassVar[str] = "matmul"

    def infer(self, a: TensorType, b: TensorType) -> TensorType:
        if a.dtype != b.dtype or a.dtype == "bool":
            raise ShapeError(f"matmul: operands need one numeric dtype, got {a!r} @ {b!r}")
        if a.ndim == 0 or b.ndim == 0:
            raise ShapeError(f"matmul: operands must be at least 1-d, got {a!r} @ {b!r}")
        sa = (1,) + a.shape if a.ndim == 1 else a.shape
        sb = b.shape + (1,) if b.ndim == 1 else b.shape
        if sa[-1] != sb[-2]:
            raise ShapeError(f"matmul: inner dimensions differ: {a!r} @ {b!r} "
                             f"({sa[-1]} != {sb[-2]})")
        batch = broadcast_shapes(sa[:-2], sb[:-2], op="matmul")
        out = batch + (sa[-2],) * (a.ndim > 1) + (sb[-1],) * (b.ndim > 1)
        return TensorType(out, a.dtype)


