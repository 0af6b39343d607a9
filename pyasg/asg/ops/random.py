"""Random bits: counter-based Threefry-2x32 of a key (same bits on every backend).

>>> RandomBits((2, 3)).infer(TensorType((2,), 'uint32'))
u32[2,3]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from pyasg.asg.ops.base import Op
from pyasg.asg.types import TensorType
from pyasg.errors import ShapeError


@dataclass(frozen=True)
class RandomBits(Op):
    """Counter-based random bits: Threefry-2x32 of a uint32[2] key, uint32[shape] out."""

    shape: tuple[int, ...]
    category: ClassVar[str] = "random"
    differentiable: ClassVar[bool] = False

    def infer(self, key: TensorType) -> TensorType:
        if key.shape != (2,) or key.dtype != "uint32":
            raise ShapeError(f"random_bits: the key must be u32[2], got {key!r}")
        return TensorType(self.shape, "uint32")
