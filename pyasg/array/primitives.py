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

from pyasg.array.checks import (
    as_bool,
    as_dtype,
    as_int,
    as_ints,
    as_real,
    as_shape,
    as_size,
    check_memory,
    quote,
)
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


def normalize_axis(axis: int, ndim: int, name: str, scalar_ok: bool = True) -> int:
    """`axis` (an integer) in [0, ndim), or a ShapeError at the user's line. A 0-d
    operand takes axis 0 or -1 (as the graph's ops do) unless not `scalar_ok`."""
    axis = as_int(axis, f"{name}: axis")
    if ndim == 0 and not scalar_ok:
        raise ShapeError(f"{name}: a 0-d operand has no axis {axis}")
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
        raise ShapeError(f"cannot use {quote(x)} as an array ({e})") from None


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
    """Apply `op`: record it if any operand is traced, else evaluate it with numpy (after
    checking that its result fits this machine's memory: `checks.MEMORY_LIMIT`)."""
    if any(isinstance(x, Tracer) for x in operands):
        return record(op, *operands, weak=weak)
    arrays = [np.asarray(x) for x in operands]
    try:
        out = op.infer(*(TensorType.of(a) for a in arrays))
        check_memory(out.shape, out.dtype, op.name)
        return evaluate(op, *arrays)
    except ShapeError as e:
        raise ShapeError(e.message) from None


def astype(x: object, dtype: object) -> Tracer | np.ndarray:
    """`x` converted to `dtype` (a no-op when it already has it).

    >>> astype(np.array([1.7, -1.7]), "int32")
    array([ 1, -1], dtype=int32)
    """
    dtype = as_dtype(dtype, "astype: dtype")
    t, weak = _type_weak(x)
    if t.dtype == dtype and not (weak and not isinstance(x, Tracer)):
        return x  # type: ignore[return-value]
    if not isinstance(x, Tracer):
        if weak and isinstance(x, int) and not -2**63 <= x < 2**64:
            return _coerce(x, dtype)  # beyond 64 bits: numpy would make an object array
        return np.asarray(x).astype(dtype)
    if t.dtype == dtype:
        return x
    return record(ops.Cast(dtype), x)


def _coerce(x: object, dtype: str) -> object:
    if isinstance(x, Tracer):
        return astype(x, dtype)
    try:
        return np.asarray(x, dtype=dtype)
    except (OverflowError, ValueError):  # numpy 2: a Python int out of range; NaN to int
        raise ShapeError(f"the number {quote(x, with_type=False)} does not fit the "
                         f"operation's dtype {dtype}") from None


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


def power(a: object, b: object) -> Tracer | np.ndarray:
    """a ** b elementwise; for integers the exponent must not be negative (as numpy).

    >>> power(np.array([2, 3]), 2).tolist()
    [4, 9]
    """
    if not is_float(result_dtype(a, b)) and not is_tracer(b):
        exponent = np.asarray(b)
        if exponent.dtype.kind in "iu" and (exponent < 0).any():
            raise ShapeError(f"power: integers to negative integer powers are not allowed (as "
                             f"numpy), got exponent {exponent[exponent < 0].flat[0]}; use "
                             f"floats")
    return binary(ops.Pow(), a, b)


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
        type_of(x)  # a ShapeError for what is no array
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
    axes = tuple(sorted(normalize_axis(a, ndim, name) for a in as_ints(axis, f"{name}: axis")))
    if len(set(axes)) < len(axes):
        raise ShapeError(f"{name}: axis {axis} names an axis twice")
    return axes if ndim else ()  # axis 0 of a 0-d operand: the value itself, nothing reduced


def reduce_sum(x: object, axis: int | Sequence[int] | None = None,
               keepdims: bool = False) -> Tracer | np.ndarray:
    t = type_of(x)
    dtype = DEFAULT_INT if t.dtype == "bool" else t.dtype
    return bind(ops.Sum(_axes(axis, t.ndim, "sum"), as_bool(keepdims, "sum: keepdims")),
                _coerce(x, dtype))


def reduce_max(x: object, axis: int | Sequence[int] | None = None,
               keepdims: bool = False) -> Tracer | np.ndarray:
    t = type_of(x)
    return bind(ops.Max(_axes(axis, t.ndim, "max"), as_bool(keepdims, "max: keepdims")), x)


def argmax(x: object, axis: int | None = None, keepdims: bool = False) -> Tracer | np.ndarray:
    """Index (int32) of the first maximum; over the flattened array when `axis` is None."""
    keepdims = as_bool(keepdims, "argmax: keepdims")
    if axis is None:
        if keepdims:
            raise ShapeError("argmax: keepdims needs an axis")
        x, axis = reshape(x, (-1,)), 0
    t = type_of(x)
    return bind(ops.ArgMax(normalize_axis(axis, t.ndim, "argmax"), keepdims), x)


# --------------------------------------------------------------------------- shapes


def reshape(x: object, shape: int | Sequence[int]) -> Tracer | np.ndarray:
    """`x` with a new shape of as many elements (one size may be -1: what is left).

    >>> reshape(np.arange(6), (3, -1)).shape
    (3, 2)
    """
    shape = as_ints(shape, "reshape: shape")
    t = type_of(x)
    try:
        if resolve_reshape(t.shape, shape) == t.shape:
            return x  # type: ignore[return-value]
    except ShapeError as e:
        raise ShapeError(e.message) from None
    return bind(ops.Reshape(shape), x)


def transpose(x: object, axes: Sequence[int] | None = None) -> Tracer | np.ndarray:
    """`x` with its axes permuted (reversed when `axes` is None).

    >>> transpose(np.zeros((2, 3, 4)), (2, 0, 1)).shape
    (4, 2, 3)
    """
    t = type_of(x)
    perm = tuple(reversed(range(t.ndim))) if axes is None else tuple(
        normalize_axis(a, t.ndim, "transpose") for a in as_ints(axes, "transpose: axes"))
    if sorted(perm) != list(range(t.ndim)):
        raise ShapeError(f"transpose: axes {axes} are not a permutation of the {t.ndim} axes "
                         f"of {t!r}")
    if perm == tuple(range(t.ndim)):
        return x  # type: ignore[return-value]
    return bind(ops.Transpose(perm), x)


def broadcast_to(x: object, shape: Sequence[int]) -> Tracer | np.ndarray:
    """`x` repeated along its size-1 (and new leading) axes to `shape`, as numpy's.

    >>> broadcast_to(np.ones((3, 1)), (2, 3, 4)).shape
    (2, 3, 4)
    """
    shape = as_shape(shape, "broadcast_to: shape")
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
    widths = tuple(as_ints(w, "pad: widths") for w in widths)
    if any(len(w) != 3 for w in widths):
        raise ShapeError(f"pad: each axis takes (low, high, interior) widths, got {widths}")
    value = as_real(value, "pad: value")
    if not is_float(type_of(x).dtype):
        _coerce(value, type_of(x).dtype)  # NaN or 2**40 cannot fill an int32 array
    if all(w == (0, 0, 0) for w in widths):
        return x  # type: ignore[return-value]
    return bind(ops.Pad(widths, value), x)


def concatenate(xs: Sequence[object], axis: int = 0) -> Tracer | np.ndarray:
    """Join arrays along an existing axis (dtypes promote as numpy).

    >>> concatenate([np.zeros(2), np.ones(1)]).tolist()
    [0.0, 0.0, 1.0]
    """
    xs = as_arrays(xs, "concatenate")
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
    axis = normalize_axis(axis, t.ndim, "take", scalar_ok=False)
    it = type_of(indices)
    if it.dtype not in ("int32", "int64", "uint32"):
        if is_tracer(indices) or it.dtype == "bool" or it.size:  # as numpy: no float indices
            raise ShapeError(f"take: indices must be integers, got {it!r}")
        indices = np.asarray(indices).astype(np.int64)  # [] is an empty float64 array
    check_indices(indices, t.shape[axis], "take")
    return bind(ops.Gather(axis), x, indices)


def scatter_add(updates: object, indices: object, axis: int, size: int) -> Tracer | np.ndarray:
    """Add `updates` into zeros of length `size` along `axis` at `indices` (repeats add up)."""
    size = as_size(size, "scatter_add: size")
    return bind(ops.ScatterAdd(as_int(axis, "scatter_add: axis"), size), updates, indices)


def random_bits(key: object, shape: Sequence[int]) -> Tracer | np.ndarray:
    """uint32 random bits of `shape` from a uint32[2] key (Threefry-2x32, counter-based)."""
    return bind(ops.RandomBits(as_shape(shape, "random: shape")), astype(key, "uint32"))


def as_arrays(xs: object, name: str) -> list:
    """The arrays of a sequence argument: a list or tuple of arrays (or a numpy array's
    rows, as numpy takes them)."""
    if isinstance(xs, (list, tuple)) or (isinstance(xs, np.ndarray) and xs.ndim):
        return list(xs)
    raise ShapeError(f"{name} takes a list or tuple of arrays, got {quote(xs)}")


def broadcast_arrays(*xs: object) -> list:
    shape = broadcast_shapes(*(type_of(x).shape for x in xs), op="broadcast_arrays")
    return [broadcast_to(x, shape) for x in xs]
