"""The primitive op set: one frozen dataclass per op, each with its shape rule.

An op's fields are its attributes; `infer(*input_types)` gives the output type or
raises `ShapeError` with both shapes in the message. Ops are hashable values, so
nodes can be hash-consed and graphs compared. Everything that is not here is a
composite in `pyasg.functional`.

>>> Sum(axes=(1,), keepdims=False).infer(TensorType((2, 3)))
f32[2]
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields
from typing import ClassVar

import numpy as np

from pyasg.asg.types import FLOAT_DTYPES, INT_DTYPES, TensorType, check_dtype
from pyasg.errors import ShapeError

#: Every concrete op class by its name: the only way a serialised graph names an op.
OPS: dict[str, type[Op]] = {}


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def broadcast_shapes(*shapes: tuple[int, ...], op: str = "broadcast") -> tuple[int, ...]:
    """numpy's broadcasting rule; raises `ShapeError` naming every shape.

    >>> broadcast_shapes((4, 1), (1, 8))
    (4, 8)
    """
    ndim = max((len(s) for s in shapes), default=0)
    out = []
    for axis in range(ndim):
        dims = {s[axis - ndim + len(s)] for s in shapes if axis - ndim + len(s) >= 0}
        dims.discard(1)
        if len(dims) > 1:
            shown = " and ".join(str(list(s)) for s in shapes)
            raise ShapeError(f"{op}: shapes {shown} cannot be broadcast together")
        out.append(dims.pop() if dims else 1)
    return tuple(out)


def normalize_axis(axis: int, ndim: int, op: str) -> int:
    if not -ndim <= axis < max(ndim, 1) or (ndim == 0 and axis not in (0, -1)):
        raise ShapeError(f"{op}: axis {axis} is out of range for a {ndim}-d operand")
    return axis % ndim if ndim else 0


def _describe(types: tuple[TensorType, ...]) -> str:
    return ", ".join(repr(t) for t in types)


@dataclass(frozen=True)
class Op:
    """Base of every primitive. Subclasses set `category` and implement `infer`."""

    category: ClassVar[str] = "arithmetic"
    differentiable: ClassVar[bool] = True
    #: Number of inputs, or -1 for any number (concatenate).
    arity: ClassVar[int] = 1
    name: ClassVar[str] = "op"
    abstract: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            cls.name = _snake(cls.__name__)
        if not cls.__dict__.get("abstract", False):
            cls.abstract = False
            OPS[cls.__name__] = cls

    def infer(self, *inputs: TensorType) -> TensorType:
        """The output type for these input types; raises `ShapeError` if they do not fit."""
        raise NotImplementedError

    def check_arity(self, n: int) -> None:
        if self.arity >= 0 and n != self.arity:
            raise ShapeError(f"{self.name} takes {self.arity} input(s), got {n}")
        if self.arity < 0 and n < 1:
            raise ShapeError(f"{self.name} takes at least one input")

    def attrs(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def __str__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.attrs().items())
        return f"{self.name}[{shown}]" if shown else self.name


# --------------------------------------------------------------------------- leaves


@dataclass(frozen=True)
class Input(Op):
    """A graph input (argument leaf or parameter), named by its pytree path."""

    path: str
    type: TensorType
    category: ClassVar[str] = "input"
    arity: ClassVar[int] = 0

    def infer(self) -> TensorType:
        return self.type


@dataclass(frozen=True, repr=False)
class Constant(Op):
    """A literal array baked into the graph (raw little-endian bytes, shape, dtype)."""

    data: bytes
    shape: tuple[int, ...]
    dtype: str
    category: ClassVar[str] = "constant"
    arity: ClassVar[int] = 0

    @classmethod
    def of(cls, value: object, dtype: str | None = None) -> Constant:
        arr = np.asarray(value, dtype=dtype)
        arr = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
        return cls(np.ascontiguousarray(arr).tobytes(), tuple(arr.shape), check_dtype(arr.dtype))

    @property
    def value(self) -> np.ndarray:
        arr = np.frombuffer(self.data, dtype=np.dtype(self.dtype).newbyteorder("<"))
        return arr.reshape(self.shape).astype(self.dtype)

    def infer(self) -> TensorType:
        t = TensorType(self.shape, self.dtype)  # TensorType accepts canonical names only
        if len(self.data) != t.nbytes:
            raise ShapeError(f"constant holds {len(self.data)} bytes, {t!r} needs {t.nbytes}")
        return t

    def __repr__(self) -> str:
        t = TensorType(self.shape, self.dtype)
        if t.size <= 4:
            return f"Constant({self.value.tolist()!r}, {t!r})"
        return f"Constant({t!r})"

    def __str__(self) -> str:
        t = TensorType(self.shape, self.dtype)
        return f"const {self.value.tolist()!r}" if t.size <= 4 else f"const <{t.nbytes} bytes>"


# --------------------------------------------------------------------------- elementwise


@dataclass(frozen=True)
class Unary(Op):
    """Base of one-input elementwise ops on numbers."""

    abstract: ClassVar[bool] = True
    float_only: ClassVar[bool] = True

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

    def infer(self, x: TensorType) -> TensorType:
        return x


@dataclass(frozen=True)
class Cast(Op):
    """Convert to `dtype` (floats to ints truncate towards zero, as numpy)."""

    dtype: str
    category: ClassVar[str] = "cast"

    def infer(self, x: TensorType) -> TensorType:
        if check_dtype(self.dtype) != self.dtype:  # one spelling per dtype keeps ops comparable
            raise ShapeError(f"cast: write the dtype as {check_dtype(self.dtype)!r}, "
                             f"not {self.dtype!r}")
        return TensorType(x.shape, self.dtype)


# --------------------------------------------------------------------------- reductions


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


# --------------------------------------------------------------------------- shape ops


@dataclass(frozen=True)
class Reshape(Op):
    """Same elements, new shape; one entry may be -1 (inferred)."""

    shape: tuple[int, ...]
    category: ClassVar[str] = "shape"

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

    def infer(self, x: TensorType) -> TensorType:
        if sorted(self.perm) != list(range(x.ndim)):
            raise ShapeError(f"transpose: {list(self.perm)} is not a permutation of {x!r}'s axes")
        return TensorType(tuple(x.shape[p] for p in self.perm), x.dtype)


@dataclass(frozen=True)
class BroadcastTo(Op):
    """Repeat size-1 (or missing leading) axes to reach `shape`."""

    shape: tuple[int, ...]
    category: ClassVar[str] = "shape"

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


# --------------------------------------------------------------------------- linear algebra


@dataclass(frozen=True)
class MatMul(Op):
    """numpy's matmul: batched, broadcast over leading axes, 1-D operands promoted."""

    category: ClassVar[str] = "linear"
    arity: ClassVar[int] = 2
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


# --------------------------------------------------------------------------- indexing


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


# --------------------------------------------------------------------------- random


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
