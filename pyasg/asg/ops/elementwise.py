"""The elementwise ops: unary and binary arithmetic, comparisons, where, cast, stop_gradient.

Binary ops broadcast as numpy does and take operands of one dtype (promotion happens
in `pyasg.array.primitives`, before an op is recorded).

>>> Add().infer(TensorType((4, 1)), TensorType((1, 8)))
f32[4,8]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from pyasg.asg.ops.base import Op, broadcast_shapes
from pyasg.asg.types import FLOAT_DTYPES, INT_DTYPES, TensorType, check_dtype
from pyasg.errors import ShapeError


@dataclass(frozen=True)
class Unary(Op):
    """Base of one-input elementwise ops on numbers."""

    abstract: ClassVar[bool] = True
    float_only: ClassVar[bool] = True
    fusion_role: ClassVar[str] = "elementwise"

    def infer(self, x: TensorType) -> TensorType:
        allowed = FLOAT_DTYPES if self.float_only else FLOAT_DTYPES | INT_DTYPES
        if x.dtype not in allowed:
            kind = "a float" if self.float_only else "a numeric"
            raise ShapeError(f"{self.name} needs {kind} operand, got {x!r}")
        return x


@dataclass(frozen=True)
class Neg(Unary):
    """-x."""

    float_only: ClassVar[bool] = False


@dataclass(frozen=True)
class Abs(Unary):
    """|x|."""

    float_only: ClassVar[bool] = False


@dataclass(frozen=True)
class Sign(Unary):
    """-1, 0 or 1 by the sign of x."""

    float_only: ClassVar[bool] = False


@dataclass(frozen=True)
class Exp(Unary):
    """e**x."""


@dataclass(frozen=True)
class Log(Unary):
    """Natural logarithm."""


@dataclass(frozen=True)
class Log1p(Unary):
    """log(1 + x), accurate for small x."""


@dataclass(frozen=True)
class Expm1(Unary):
    """e**x - 1, accurate for small x."""


@dataclass(frozen=True)
class Sqrt(Unary):
    """Square root."""


@dataclass(frozen=True)
class Sin(Unary):
    """Sine."""


@dataclass(frozen=True)
class Cos(Unary):
    """Cosine."""


@dataclass(frozen=True)
class Tanh(Unary):
    """Hyperbolic tangent."""

    category: ClassVar[str] = "activation"


@dataclass(frozen=True)
class Erf(Unary):
    """The error function (for exact GELU)."""

    category: ClassVar[str] = "activation"


@dataclass(frozen=True)
class Binary(Op):
    """Base of two-input elementwise ops with numpy broadcasting; both dtypes equal."""

    abstract: ClassVar[bool] = True
    arity: ClassVar[int] = 2
    float_only: ClassVar[bool] = False
    result_dtype: ClassVar[str | None] = None
    fusion_role: ClassVar[str] = "elementwise"

    def infer(self, a: TensorType, b: TensorType) -> TensorType:
        if a.dtype != b.dtype:
            raise ShapeError(f"{self.name}: operand dtypes differ ({a!r}, {b!r}); cast one first")
        allowed = FLOAT_DTYPES if self.float_only else FLOAT_DTYPES | INT_DTYPES
        if self.result_dtype is None and a.dtype not in allowed:
            raise ShapeError(f"{self.name}: unsupported operand dtype in ({a!r}, {b!r})")
        shape = broadcast_shapes(a.shape, b.shape, op=self.name)
        return TensorType(shape, self.result_dtype or a.dtype)


@dataclass(frozen=True)
class Add(Binary):
    """a + b."""


@dataclass(frozen=True)
class Sub(Binary):
    """a - b."""


@dataclass(frozen=True)
class Mul(Binary):
    """a * b."""


@dataclass(frozen=True)
class Div(Binary):
    """a / b (true division, floats only)."""

    float_only: ClassVar[bool] = True


@dataclass(frozen=True)
class FloorDiv(Binary):
    """a // b (rounded towards minus infinity)."""


@dataclass(frozen=True)
class Mod(Binary):
    """a % b with the sign of b, as in Python and numpy."""


@dataclass(frozen=True)
class Pow(Binary):
    """a ** b."""


@dataclass(frozen=True)
class Maximum(Binary):
    """Elementwise maximum."""


@dataclass(frozen=True)
class Minimum(Binary):
    """Elementwise minimum."""


@dataclass(frozen=True)
class Compare(Binary):
    """Base of comparisons: any equal dtypes in, bool out."""

    abstract: ClassVar[bool] = True
    result_dtype: ClassVar[str | None] = "bool"
    differentiable: ClassVar[bool] = False
    category: ClassVar[str] = "comparison"


@dataclass(frozen=True)
class Less(Compare):
    """a < b."""


@dataclass(frozen=True)
class LessEqual(Compare):
    """a <= b."""


@dataclass(frozen=True)
class Greater(Compare):
    """a > b."""


@dataclass(frozen=True)
class GreaterEqual(Compare):
    """a >= b."""


@dataclass(frozen=True)
class Equal(Compare):
    """a == b."""


@dataclass(frozen=True)
class NotEqual(Compare):
    """a != b."""


@dataclass(frozen=True)
class Where(Op):
    """cond ? x : y, elementwise, all three broadcast together."""

    arity: ClassVar[int] = 3
    category: ClassVar[str] = "selection"
    fusion_role: ClassVar[str] = "elementwise"

    def infer(self, cond: TensorType, x: TensorType, y: TensorType) -> TensorType:
        if cond.dtype != "bool":
            raise ShapeError(f"where: the condition must be bool, got {cond!r}")
        if x.dtype != y.dtype:
            raise ShapeError(f"where: branch dtypes differ ({x!r}, {y!r})")
        return TensorType(broadcast_shapes(cond.shape, x.shape, y.shape, op="where"), x.dtype)


@dataclass(frozen=True)
class StopGradient(Op):
    """Identity whose gradient is zero by definition (`jax.lax.stop_gradient`)."""

    category: ClassVar[str] = "identity"
    fusion_role: ClassVar[str] = "view"
    view_kind: ClassVar[str | None] = "identity"

    def infer(self, x: TensorType) -> TensorType:
        return x


@dataclass(frozen=True)
class Cast(Op):
    """Convert to `dtype` (floats to ints truncate towards zero, as numpy)."""

    dtype: str
    category: ClassVar[str] = "cast"
    fusion_role: ClassVar[str] = "elementwise"

    def infer(self, x: TensorType) -> TensorType:
        if check_dtype(self.dtype) != self.dtype:  # one spelling per dtype keeps ops comparable
            raise ShapeError(f"cast: write the dtype as {check_dtype(self.dtype)!r}, "
                             f"not {self.dtype!r}")
        return TensorType(x.shape, self.dtype)


