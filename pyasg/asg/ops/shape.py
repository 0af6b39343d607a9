"""The shape ops: reshape, transpose, broadcast_to (views), slice, pad, concatenate.

>>> Transpose((1, 0)).infer(TensorType((2, 3)))
f32[3,2]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from pyasg.asg.ops.base import Op, _describe, broadcast_shapes
from pyasg.asg.types import TensorType
from pyasg.errors import ShapeError


@dataclass(frozen=True)
class Reshape(Op):
    """Same elements, new shape; one entry may be -1 (inferred)."""

    shape: tuple[int, ...]
    category: ClassVar[str] = "shape"
    fusion_role: ClassVar[str] = "view"
    view_kind: ClassVar[str | None] = "reshape"

    def infer(self, x: TensorType) -> TensorType:
        return TensorType(resolve_reshape(x.shape, self.shape), x.dtype)


def resolve_reshape(old: tuple[int, ...], new: tuple[int, ...]) -> tuple[int, ...]:
    """Replace a single -1 in `new` so that the sizes agree; raise `ShapeError` if impossible."""
    size = math.prod(old)  # Python ints: exact for any shape a loaded graph declares
    if sum(d == -1 for d in new) > 1 or any(d < -1 for d in new):
        raise ShapeError(f"reshape: bad target shape {list(new)}")
    known = math.prod(d for d in new if d != -1)
    if -1 in new:
        if known == 0 or size % known:
            raise ShapeError(f"reshape: cannot reshape {list(old)} into {list(new)}")
        new = tuple(size // known if d == -1 else d for d in new)
    elif known != size:
        raise ShapeError(f"reshape: cannot reshape {list(old)} ({size} elements) "
                         f"into {list(new)} ({known} elements)")
    return new


@dataclass(frozen=True)
class Transpose(Op):
    """Permute the axes: output axis i is input axis perm[i]."""

    perm: tuple[int, ...]
    category: ClassVar[str] = "shape"
    fusion_role: ClassVar[str] = "view"
    view_kind: ClassVar[str | None] = "permute"

    def infer(self, x: TensorType) -> TensorType:
        if sorted(self.perm) != list(range(x.ndim)):
            raise ShapeError(f"transpose: {list(self.perm)} is not a permutation of {x!r}'s axes")
        return TensorType(tuple(x.shape[p] for p in self.perm), x.dtype)


@dataclass(frozen=True)
class BroadcastTo(Op):
    """Repeat size-1 (or missing leading) axes to reach `shape`."""

    shape: tuple[int, ...]
    category: ClassVar[str] = "shape"
    fusion_role: ClassVar[str] = "view"
    view_kind: ClassVar[str | None] = "broadcast"

    def infer(self, x: TensorType) -> TensorType:
        if broadcast_shapes(x.shape, self.shape, op="broadcast_to") != self.shape:
            raise ShapeError(f"broadcast_to: cannot broadcast {x!r} to {list(self.shape)}")
        return TensorType(self.shape, x.dtype)


@dataclass(frozen=True)
class Slice(Op):
    """Basic slicing with steps: per axis (start, stop, step) as from `slice.indices`."""

    starts: tuple[int, ...]
    stops: tuple[int, ...]
    steps: tuple[int, ...]
    category: ClassVar[str] = "shape"

    def infer(self, x: TensorType) -> TensorType:
        if not len(self.starts) == len(self.stops) == len(self.steps) == x.ndim:
            raise ShapeError(f"slice: needs one (start, stop, step) per axis of {x!r}")
        shape = []
        for axis, (d, start, stop, step) in enumerate(
                zip(x.shape, self.starts, self.stops, self.steps)):
            if step == 0:
                raise ShapeError("slice: step cannot be zero")
            n = max(0, -((start - stop) // step))  # len(range(...)), without its C-size limit
            if n and not (0 <= start < d and 0 <= start + (n - 1) * step < d):
                raise ShapeError(f"slice: ({start}, {stop}, {step}) leaves axis {axis} of {x!r}")
            shape.append(n)
        return TensorType(tuple(shape), x.dtype)


@dataclass(frozen=True)
class Pad(Op):
    """Constant padding: per axis (low, high, interior) as in XLA's pad; all >= 0."""

    widths: tuple[tuple[int, int, int], ...]
    value: float = 0.0
    category: ClassVar[str] = "shape"

    def __post_init__(self) -> None:
        # every NaN becomes the one `math.nan` object: dataclass equality compares the
        # fields as tuples (identity first, then ==) and Python hashes a NaN by its
        # identity, so only one shared NaN lets two equal pads be equal (hash-consing,
        # a graph's JSON round trip)
        if self.value != self.value:
            object.__setattr__(self, "value", math.nan)

    def infer(self, x: TensorType) -> TensorType:
        if len(self.widths) != x.ndim or any(len(w) != 3 or min(w) < 0 for w in self.widths):
            raise ShapeError(f"pad: needs one non-negative (low, high, interior) per axis of {x!r}")
        return TensorType(tuple(lo + hi + d + max(d - 1, 0) * mid
                                for d, (lo, hi, mid) in zip(x.shape, self.widths)), x.dtype)


@dataclass(frozen=True)
class Concatenate(Op):
    """Join operands along `axis`; all other axes and dtypes must agree."""

    axis: int
    category: ClassVar[str] = "shape"
    arity: ClassVar[int] = -1

    def infer(self, *xs: TensorType) -> TensorType:
        first = xs[0]
        if not 0 <= self.axis < first.ndim:
            raise ShapeError(f"concatenate: axis {self.axis} is out of range for {first!r}")
        for x in xs[1:]:
            if x.dtype != first.dtype or x.ndim != first.ndim or any(
                a != b for i, (a, b) in enumerate(zip(x.shape, first.shape)) if i != self.axis
            ):
                raise ShapeError(f"concatenate along axis {self.axis}: "
                                 f"operands {_describe(xs)} do not fit")
        shape = list(first.shape)
        shape[self.axis] = sum(x.shape[self.axis] for x in xs)
        return TensorType(tuple(shape), first.dtype)


