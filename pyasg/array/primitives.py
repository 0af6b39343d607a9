"""One function per primitive op (like `jax.lax`): promote dtypes, then record or evaluate.

With a `Tracer` among the operands the op is recorded in the graph; with concrete
arrays and numbers only, it runs at once with the numpy kernel, so every function
here (and every composite built on them) also works on plain numpy input.

Promotion follows numpy between arrays; a Python number is *weak*: it takes the
array's dtype (`float32_array * 2.0` stays float32). Two documented differences
from numpy, both as in JAX: a Python float meeting an integer array gives
float32 (numpy: float64), and functions that need floats (`exp`, `/`) turn integer
input into float32.

>>> add(np.float32(1.0), 2.0).dtype
dtype('float32')
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pyasg.asg import ops
from pyasg.asg.ops import Op, broadcast_shapes, resolve_reshape
from pyasg.asg.types import (
    DEFAULT_FLOAT,
    DEFAULT_INT,
    FLOAT_DTYPES,
    TensorType,
    check_dtype,
    is_float,
    promote,
)
from pyasg.errors import ShapeError
from pyasg.kernels.reference import evaluate
from pyasg.trace.tracer import Tracer, is_python_scalar, record

Array = "Tracer | np.ndarray"


# --------------------------------------------------------------------------- operands


def is_tracer(x: object) -> bool:
    return isinstance(x, Tracer)


def normalize_axis(axis: int, ndim: int, name: str) -> int:
    """`axis` in [0, ndim), or a ShapeError at the user's line."""
    try:
        return ops.normalize_axis(axis, ndim, name)
    except ShapeError as e:
        raise ShapeError(e.message) from None


def check_indices(indices: object, size: int, what: str) -> None:
    """Concrete indices must lie in [-size, size) (numpy raises IndexError; we ShapeError)."""
    if is_tracer(indices):
        return
    arr = np.asarray(indices)
    bad = arr[(arr < -size) | (arr >= size)]
    if bad.size:
        raise ShapeError(f"{what}: index {bad.flat[0]} is out of bounds for an axis of size "
                         f"{size}")


def _type_weak(x: object) -> tuple[TensorType, bool]:
    if isinstance(x, Tracer):
        return x.type, x.weak
    if is_python_scalar(x):
        dtype = "bool" if isinstance(x, bool) else (DEFAULT_INT if isinstance(x, int)
                                                   else DEFAULT_FLOAT)
        return TensorType((), dtype), True
    try:
        arr = np.asarray(x)
        return TensorType(tuple(arr.shape), check_dtype(arr.dtype)), False
    except (ShapeError, TypeError, ValueError) as e:
        raise ShapeError(f"cannot use {type(x).__name__} {x!r:.60} as an array ({e})") from None


def type_of(x: object) -> TensorType:
    """The `TensorType` of a tracer, array or number."""
    return _type_weak(x)[0]


def result_dtype(*xs: object) -> str:
    """The dtype an elementwise op on `xs` computes in (weak Python scalars adapt)."""
    strong = [t.dtype for t, weak in map(_type_weak, xs) if not weak]
    weak = [t.dtype for t, weak in map(_type_weak, xs) if weak]
    if not strong:
        return promote(*weak)
    dtype = promote(*strong)
    for w in weak:
        if is_float(w) and not is_float(dtype):
            dtype = DEFAULT_FLOAT
        elif w == DEFAULT_INT and dtype == "bool":
            dtype = DEFAULT_INT
    return dtype


def _all_weak(xs: Sequence[object]) -> bool:
    return all(_type_weak(x)[1] for x in xs)


def bind(op: Op, *operands: object, weak: bool = False) -> Tracer | np.ndarray:
    """Apply `op`: record it if any operand is traced, else evaluate it with numpy."""
    if any(isinstance(x, Tracer) for x in operands):
        return record(op, *operands, weak=weak)
    try:
        return evaluate(op, *(np.asarray(x) for x in operands))
    except ShapeError as e:
        raise ShapeError(e.message) from None


def astype(x: object, dtype: object) -> Tracer | np.ndarray:
    """`x` converted to `dtype` (a no-op when it already has it).

    >>> astype(np.array([1.7, -1.7]), "int32")
    array([ 1, -1], dtype=int32)
    """
    dtype = check_dtype(dtype)
    t, weak = _type_weak(x)
    if t.dtype == dtype and not (weak and not isinstance(x, Tracer)):
        return x  # type: ignore[return-value]
    if not isinstance(x, Tracer):
        return np.asarray(x).astype(dtype)
    if t.dtype == dtype:
        return x
    return record(ops.Cast(dtype), x)


def _coerce(x: object, dtype: str) -> object:
    if isinstance(x, Tracer):
        return astype(x, dtype)
    try:
        return np.asarray(x, dtype=dtype)
    except OverflowError:
        raise ShapeError(f"the number {x!r} does not fit the operation's dtype {dtype}") from None


# --------------------------------------------------------------------------- elementwise


def unary(op: Op, x: object) -> Tracer | np.ndarray:
    t, weak = _type_weak(x)
    dtype = t.dtype
    if op.float_only and dtype not in FLOAT_DTYPES:
        dtype = DEFAULT_FLOAT
    elif dtype == "bool":
        dtype = DEFAULT_INT
    return bind(op, _coerce(x, dtype), weak=weak)


def binary(op: Op, a: object, b: object) -> Tracer | np.ndarray:
    dtype = result_dtype(a, b)
    if getattr(op, "float_only", False) and not is_float(dtype):
        dtype = DEFAULT_FLOAT
    elif dtype == "bool" and not isinstance(op, ops.Compare):
        dtype = DEFAULT_INT
    weak = _all_weak((a, b)) and not isinstance(op, ops.Compare)
    return bind(op, _coerce(a, dtype), _coerce(b, dtype), weak=weak)


def neg(x: object): return unary(ops.Neg(), x)  # noqa: E704
def abs(x: object): return unary(ops.Abs(), x)  # noqa: A001, E704
def sign(x: object): return unary(ops.Sign(), x)  # noqa: E704
def exp(x: object): return unary(ops.Exp(), x)  # noqa: E704
def log(x: object): return unary(ops.Log(), x)  # noqa: E704
def log1p(x: object): return unary(ops.Log1p(), x)  # noqa: E704
def expm1(x: object): return unary(ops.Expm1(), x)  # noqa: E704
def sqrt(x: object): return unary(ops.Sqrt(), x)  # noqa: E704
def sin(x: object): return unary(ops.Sin(), x)  # noqa: E704
def cos(x: object): return unary(ops.Cos(), x)  # noqa: E704
def tanh(x: object): return unary(ops.Tanh(), x)  # noqa: E704
def erf(x: object): return unary(ops.Erf(), x)  # noqa: E704
def add(a: object, b: object): return binary(ops.Add(), a, b)  # noqa: E704
def sub(a: object, b: object): return binary(ops.Sub(), a, b)  # noqa: E704
def mul(a: object, b: object): return binary(ops.Mul(), a, b)  # noqa: E704
def div(a: object, b: object): return binary(ops.Div(), a, b)  # noqa: E704
def floor_divide(a: object, b: object): return binary(ops.FloorDiv(), a, b)  # noqa: E704
def mod(a: object, b: object): return binary(ops.Mod(), a, b)  # noqa: E704
def power(a: object, b: object): return binary(ops.Pow(), a, b)  # noqa: E704
def maximum(a: object, b: object): return binary(ops.Maximum(), a, b)  # noqa: E704
def minimum(a: object, b: object): return binary(ops.Minimum(), a, b)  # noqa: E704
def less(a: object, b: object): return binary(ops.Less(), a, b)  # noqa: E704
def less_equal(a: object, b: object): return binary(ops.LessEqual(), a, b)  # noqa: E704
def greater(a: object, b: object): return binary(ops.Greater(), a, b)  # noqa: E704
def greater_equal(a: object, b: object): return binary(ops.GreaterEqual(), a, b)  # noqa: E704
def equal(a: object, b: object): return binary(ops.Equal(), a, b)  # noqa: E704
def not_equal(a: object, b: object): return binary(ops.NotEqual(), a, b)  # noqa: E704


def stop_gradient(x: object) -> Tracer | np.ndarray:
    """`x`, but `grad` treats it as a constant (its gradient is zero by definition)."""
    if not is_tracer(x):
        return np.asarray(x)
    return bind(ops.StopGradient(), x, weak=x.weak)


def where(cond: object, x: object, y: object) -> Tracer | np.ndarray:
    """Elementwise `x` where `cond` is true, else `y` (all three broadcast).

    >>> where(np.array([True, False]), 1.0, np.float32(0))
    array([1., 0.], dtype=float32)
    """
    dtype = result_dtype(x, y)
    return bind(ops.Where(), astype(cond, "bool"), _coerce(x, dtype), _coerce(y, dtype),
                weak=_all_weak((x, y)))


# --------------------------------------------------------------------------- reductions


def _axes(axis: int | Sequence[int] | None, ndim: int, name: str) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    return tuple(sorted(normalize_axis(a, ndim, name) for a in axes))


def reduce_sum(x: object, axis: int | Sequence[int] | None = None,
               keepdims: bool = False) -> Tracer | np.ndarray:
    t = type_of(x)
    dtype = DEFAULT_INT if t.dtype == "bool" else t.dtype
    return bind(ops.Sum(_axes(axis, t.ndim, "sum"), keepdims), _coerce(x, dtype))


def reduce_max(x: object, axis: int | Sequence[int] | None = None,
               keepdims: bool = False) -> Tracer | np.ndarray:
    t = type_of(x)
    return bind(ops.Max(_axes(axis, t.ndim, "max"), keepdims), x)


def argmax(x: object, axis: int | None = None, keepdims: bool = False) -> Tracer | np.ndarray:
    """Index (int32) of the first maximum; over the flattened array when `axis` is None."""
    if axis is None:
        if keepdims:
            raise ShapeError("argmax: keepdims needs an axis")
        x, axis = reshape(x, (-1,)), 0
    t = type_of(x)
    return bind(ops.ArgMax(normalize_axis(axis, t.ndim, "argmax"), keepdims), x)


# --------------------------------------------------------------------------- shapes


def reshape(x: object, shape: int | Sequence[int]) -> Tracer | np.ndarray:
    shape = (shape,) if isinstance(shape, int) else tuple(int(d) for d in shape)
    t = type_of(x)
    try:
        if resolve_reshape(t.shape, shape) == t.shape:
            return x  # type: ignore[return-value]
    except ShapeError as e:
        raise ShapeError(e.message) from None
    return bind(ops.Reshape(shape), x)


def transpose(x: object, axes: Sequence[int] | None = None) -> Tracer | np.ndarray:
    t = type_of(x)
    perm = tuple(reversed(range(t.ndim))) if axes is None else tuple(
        normalize_axis(a, t.ndim, "transpose") for a in axes)
    if perm == tuple(range(t.ndim)):
        return x  # type: ignore[return-value]
    return bind(ops.Transpose(perm), x)


def broadcast_to(x: object, shape: Sequence[int]) -> Tracer | np.ndarray:
    shape = tuple(int(d) for d in shape)
    if type_of(x).shape == shape:
        return x  # type: ignore[return-value]
    return bind(ops.BroadcastTo(shape), x)


def slice_axes(x: object, starts: Sequence[int], stops: Sequence[int],
               steps: Sequence[int]) -> Tracer | np.ndarray:
    """Normalised basic slicing: per axis (start, stop, step) as from `slice.indices`."""
    t = type_of(x)
    if all(a == 0 and b == d and c == 1 for a, b, c, d in zip(starts, stops, steps, t.shape)):
        return x  # type: ignore[return-value]
    return bind(ops.Slice(tuple(starts), tuple(stops), tuple(steps)), x)


def pad_general(x: object, widths: Sequence[tuple[int, int, int]],
                value: float = 0.0) -> Tracer | np.ndarray:
    """Pad with (low, high, interior) per axis, filling with `value`."""
    widths = tuple((int(a), int(b), int(c)) for a, b, c in widths)
    if all(w == (0, 0, 0) for w in widths):
        return x  # type: ignore[return-value]
    return bind(ops.Pad(widths, float(value)), x)


def concatenate(xs: Sequence[object], axis: int = 0) -> Tracer | np.ndarray:
    """Join arrays along an existing axis (dtypes promote as numpy)."""
    xs = list(xs)
    if not xs:
        raise ShapeError("concatenate needs at least one array")
    dtype = result_dtype(*xs)
    ndim = type_of(xs[0]).ndim
    if len(xs) == 1:
        return _coerce(xs[0], dtype)  # type: ignore[return-value]
    return bind(ops.Concatenate(normalize_axis(axis, ndim, "concatenate")),
                *(_coerce(x, dtype) for x in xs))


def matmul(a: object, b: object) -> Tracer | np.ndarray:
    """numpy's `a @ b`, including batching, broadcasting and 1-D operands."""
    dtype = result_dtype(a, b)
    if dtype == "bool":
        dtype = DEFAULT_INT
    return bind(ops.MatMul(), _coerce(a, dtype), _coerce(b, dtype))


def take(x: object, indices: object, axis: int = 0) -> Tracer | np.ndarray:
    """Gather slices of `x` along `axis` at integer `indices` (negative ones count back)."""
    t = type_of(x)
    axis = normalize_axis(axis, t.ndim, "take")
    it = type_of(indices)
    if it.dtype not in ("int32", "int64", "uint32"):
        if is_tracer(indices) or it.dtype == "bool":
            raise ShapeError(f"take: indices must be integers, got {it!r}")
        indices = np.asarray(indices).astype(np.int64)
    check_indices(indices, t.shape[axis], "take")
    return bind(ops.Gather(axis), x, indices)


def scatter_add(updates: object, indices: object, axis: int, size: int) -> Tracer | np.ndarray:
    """Add `updates` into zeros of length `size` along `axis` at `indices` (repeats add up)."""
    return bind(ops.ScatterAdd(axis, int(size)), updates, indices)


def random_bits(key: object, shape: Sequence[int]) -> Tracer | np.ndarray:
    """uint32 random bits of `shape` from a uint32[2] key (Threefry-2x32, counter-based)."""
    return bind(ops.RandomBits(tuple(int(d) for d in shape)), astype(key, "uint32"))


def broadcast_arrays(*xs: object) -> list:
    shape = broadcast_shapes(*(type_of(x).shape for x in xs), op="broadcast_arrays")
    return [broadcast_to(x, shape) for x in xs]
