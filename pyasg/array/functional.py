"""The numpy-like function surface and the composites (softmax, gelu, layer_norm, …).

Everything here is written over the primitives in `pyasg.primitives`, so it works
on tracers (recording the graph) and on plain numpy arrays and numbers (running at
once), and `grad` differentiates it through the primitives' VJP rules. This module
also gives `Tracer` its Python operators and array methods.

>>> softmax(np.array([0.0, np.log(3.0)], np.float32)).tolist()
[0.25, 0.75]
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from pyasg.array import checks as _checks  # private: `pyasg` re-exports this module's names
from pyasg.array import primitives as P
from pyasg.array.attention import scaled_dot_product_attention  # noqa: F401  (re-exported)
from pyasg.array.convolution import (  # noqa: F401  (re-exported: PyTorch's functional forms)
    adaptive_avg_pool2d,
    avg_pool2d,
    conv2d,
    conv_transpose2d,
    max_pool2d,
)
from pyasg.array.indexing import At, getitem  # noqa: F401
from pyasg.array.primitives import (  # noqa: F401  (re-exported: the public surface)
    abs,
    add,
    argmax,
    astype,
    broadcast_to,
    concatenate,
    cos,
    div,
    equal,
    erf,
    exp,
    expm1,
    floor_divide,
    greater,
    greater_equal,
    less,
    less_equal,
    log,
    log1p,
    matmul,
    maximum,
    minimum,
    mod,
    mul,
    neg,
    not_equal,
    power,
    reshape,
    sign,
    sin,
    sqrt,
    stop_gradient,
    sub,
    take,
    tanh,
    transpose,
    type_of,
    where,
)
from pyasg.asg.ops import BroadcastTo
from pyasg.asg.types import DEFAULT_FLOAT, is_float
from pyasg.errors import ShapeError, TraceError
from pyasg.trace.tracer import Tracer, record

Axis = "int | Sequence[int] | None"

negative, subtract, multiply, divide, true_divide, remainder, pow = (
    neg, sub, mul, div, div, mod, power)


# --------------------------------------------------------------------------- reductions


def sum(x: object, axis: int | Sequence[int] | None = None, keepdims: bool = False):  # noqa: A001
    """Sum over `axis` (all axes when None).

    >>> sum(np.ones((2, 3), np.float32), axis=1).tolist()
    [3.0, 3.0]
    """
    return P.reduce_sum(x, axis, keepdims)


def _count(x: object, axis: int | Sequence[int] | None) -> int:
    t = type_of(x)
    axes = P._axes(axis, t.ndim, "mean")
    return math.prod(t.shape[a] for a in axes)


def mean(x: object, axis: int | Sequence[int] | None = None, keepdims: bool = False):
    """Arithmetic mean over `axis`; integer input gives float32. Over no elements it is
    NaN, as numpy's, but without numpy's warning.

    >>> mean(np.array([1.0, 2.0, 6.0])).item()
    3.0
    """
    if not is_float(type_of(x).dtype):
        x = astype(x, DEFAULT_FLOAT)
    n = _count(x, axis)
    total = P.reduce_sum(x, axis, keepdims)
    # 0 * NaN is a quiet NaN; 0 / 0 would be NaN too, with a RuntimeWarning (an error
    # where warnings are errors).
    return div(total, n) if n else mul(total, math.nan)


def var(x: object, axis: int | Sequence[int] | None = None, ddof: int = 0,
        keepdims: bool = False):
    """Variance over `axis` with numpy's `ddof` (0: population, 1: sample).

    With ddof >= n (the number of elements reduced) the variance is numpy's: the sum
    of squared deviations divided by 0, so inf, or NaN where that sum is 0 (all values
    equal) or the input is empty; NaN in stays NaN. Unlike numpy it does not warn.

    >>> var(np.array([1.0, 3.0])).item()
    1.0
    >>> var(np.arange(5.0), ddof=7).item()
    inf
    """
    ddof = _checks.as_real(ddof, "var: ddof", finite=True)
    if not is_float(type_of(x).dtype):
        x = astype(x, DEFAULT_FLOAT)
    centred = sub(x, mean(x, axis, keepdims=True))
    squares = P.reduce_sum(mul(centred, centred), axis, keepdims)
    n = _count(x, axis)
    if n - ddof > 0:
        return div(squares, n - ddof)
    # s / 0 for every s >= 0 (or NaN), written as a choice: the division would warn
    dtype = type_of(squares).dtype
    return where(P.greater(squares, 0), np.array(math.inf, dtype), np.array(math.nan, dtype))


def std(x: object, axis: int | Sequence[int] | None = None, ddof: int = 0,
        keepdims: bool = False):
    """Standard deviation over `axis` (the square root of `var`)."""
    return sqrt(var(x, axis, ddof, keepdims))


def max(x: object, axis: int | Sequence[int] | None = None, keepdims: bool = False):  # noqa: A001
    """Maximum over `axis`; the gradient is shared evenly between tied maxima."""
    return P.reduce_max(x, axis, keepdims)


def _flip(x: object):
    """An order-reversing map, exact for every dtype: -x for floats, -1 - x (that is ~x)
    for integers (-x overflows at the int minimum and wraps unsigned), not x for bool."""
    dtype = type_of(x).dtype
    if is_float(dtype):
        return neg(x)
    if dtype == "bool":
        return logical_not(x)
    return sub(np.array(-1).astype(dtype), x)


def min(x: object, axis: int | Sequence[int] | None = None, keepdims: bool = False):  # noqa: A001
    """Minimum over `axis`."""
    return _flip(P.reduce_max(_flip(x), axis, keepdims))


def argmin(x: object, axis: int | None = None, keepdims: bool = False):
    """Index (int32) of the first minimum. Not differentiable."""
    return argmax(_flip(x), axis, keepdims)


def logsumexp(x: object, axis: int | Sequence[int] | None = -1, keepdims: bool = False):
    """log(sum(exp(x))) over `axis`, computed without overflow (as PyTorch: NaN if any
    element is NaN, inf if one is inf, -inf if all are -inf).

    >>> float(logsumexp(np.array([1000.0, 1000.0])))  # doctest: +ELLIPSIS
    1000.69...
    """
    keepdims = _checks.as_bool(keepdims, "logsumexp: keepdims")
    m = P.reduce_max(x, axis, keepdims=True)
    m = stop_gradient(where(P.less(abs(m), np.inf), m, 0.0))
    s = P.reduce_sum(exp(sub(x, m)), axis, keepdims=True)
    out = add(log(s), m)
    if not keepdims:
        out = squeeze(out, P._axes(axis, type_of(x).ndim, "logsumexp"))
    return out


# --------------------------------------------------------------------------- elementwise


def square(x: object):
    """x * x."""
    return mul(x, x)


def reciprocal(x: object):
    """1 / x."""
    return div(1.0, x)


def rsqrt(x: object):
    """1 / sqrt(x)."""
    return div(1.0, sqrt(x))


def _bound(bound: object, dtype: str, name: str) -> tuple[object, bool]:
    """(bound in x's dtype, whether it may hold a NaN) for clamp."""
    t = type_of(bound)  # a ShapeError for None, strings, ...
    if P.is_tracer(bound):
        return P.astype(bound, dtype), is_float(t.dtype) and is_float(dtype)
    try:
        value = P._coerce(bound, dtype)
    except ShapeError:
        shown = _checks.quote(bound, with_type=False)
        raise ShapeError(f"clamp: {name}={shown} does not fit the input's dtype {dtype}") from None
    return value, bool(np.isnan(value).any()) if is_float(dtype) else False


def clamp(x: object, min: float | object | None = None, max: float | object | None = None):  # noqa: A002
    """Limit x to [min, max] (either may be None; with min > max every element is max).

    NaN stays NaN, and a NaN bound makes the result NaN where it applies (as PyTorch
    and numpy's clip). As PyTorch, the gradient passes where min <= x <= max,
    boundaries included.

    >>> clamp(np.array([-2.0, 0.5, np.nan]), -1.0, 1.0).tolist()
    [-1.0, 0.5, nan]
    """
    dtype = type_of(x).dtype
    for bound, name, beyond in ((min, "min", P.less), (max, "max", P.greater)):
        if bound is None:
            continue
        value, maybe_nan = _bound(bound, dtype, name)
        out = beyond(x, value)
        if maybe_nan:  # a comparison with NaN is false: test for the NaN bound itself
            out = logical_or(out, not_equal(value, value))
        x = where(out, value, x)
    return x


clip = clamp


def logical_not(x: object):
    """Elementwise not of a boolean array."""
    return where(x, False, True)


def logical_and(a: object, b: object):
    """Elementwise and of boolean arrays."""
    return where(a, astype(b, "bool"), False)


def logical_or(a: object, b: object):
    """Elementwise or of boolean arrays."""
    return where(a, True, astype(b, "bool"))


def logical_xor(a: object, b: object):
    """Elementwise exclusive or of boolean arrays."""
    return not_equal(astype(a, "bool"), astype(b, "bool"))


# --------------------------------------------------------------------------- activations


def relu(x: object):
    """max(x, 0), NaN for NaN; the gradient at 0 is 0 and at NaN 1, as in PyTorch.

    >>> relu(np.array([-1.0, 2.0, np.nan])).tolist()
    [0.0, 2.0, nan]
    """
    # `x <= 0` is false for NaN, which so passes through (`x > 0` would turn it into 0)
    return where(P.less_equal(x, 0), 0, x)


def sigmoid(x: object):
    """1 / (1 + exp(-x)), finite with finite gradients for every x.

    >>> sigmoid(np.array([-1000.0, 0.0, 1000.0])).tolist()
    [0.0, 0.5, 1.0]
    """
    # exp(-|x|), written with where: abs'(0) = 0 would make sigmoid'(0) 0 instead of 1/4
    nonneg = P.greater_equal(x, 0)
    z = exp(where(nonneg, neg(x), x))
    return where(nonneg, div(1.0, add(1.0, z)), div(z, add(1.0, z)))


def silu(x: object):
    """x * sigmoid(x) (also called swish)."""
    return mul(x, sigmoid(x))


def gelu(x: object, approximate: bool = False):
    """Gaussian error linear unit. `approximate=False` is the exact erf form (PyTorch's
    default); `approximate=True` the tanh form (PyTorch's approximate='tanh')."""
    if _checks.as_bool(approximate, "gelu: approximate"):
        inner = mul(math.sqrt(2.0 / math.pi), add(x, mul(0.044715, mul(x, mul(x, x)))))
        return mul(mul(0.5, x), add(1.0, tanh(inner)))
    return mul(mul(0.5, x), add(1.0, erf(mul(x, 1.0 / math.sqrt(2.0)))))


def leaky_relu(x: object, negative_slope: float = 0.01):
    """x where x > 0, else negative_slope * x (PyTorch's default slope 0.01)."""
    return where(P.greater(x, 0), x, mul(x, negative_slope))


def elu(x: object, alpha: float = 1.0):
    """x where x > 0, else alpha * (exp(x) - 1)."""
    positive = P.greater(x, 0)
    return where(positive, x, mul(alpha, expm1(where(positive, 0.0, x))))


def softplus(x: object, beta: float = 1.0, threshold: float = 20.0):
    """log(1 + exp(beta x)) / beta, stable for all x; linear where beta x > threshold
    (PyTorch's definition)."""
    bx = mul(x, beta)
    positive = P.greater_equal(bx, 0)
    # max(bx, 0) + log1p(exp(-|bx|)), written with `where` so that every derivative at 0
    # comes from one smooth branch (abs and maximum would split it)
    smooth = div(add(where(positive, bx, 0.0), log1p(exp(where(positive, neg(bx), bx)))), beta)
    return where(P.greater(bx, threshold), x, smooth)


def softmax(x: object, axis: int = -1):
    """exp(x) / sum(exp(x)) along `axis`, shifted by the maximum for stability."""
    m = stop_gradient(P.reduce_max(x, axis, keepdims=True))
    e = exp(sub(x, m))
    return div(e, P.reduce_sum(e, axis, keepdims=True))


def log_softmax(x: object, axis: int = -1):
    """x - logsumexp(x) along `axis`, computed as PyTorch does: (x - m) - log Σ exp(x - m)
    with m the maximum, so a row holding inf (or only -inf) is NaN, as its softmax is.

    >>> log_softmax(np.array([0.0, 0.0])).tolist() == [-math.log(2)] * 2
    True
    """
    shifted = sub(x, stop_gradient(P.reduce_max(x, axis, keepdims=True)))
    return sub(shifted, log(P.reduce_sum(exp(shifted), axis, keepdims=True)))


def layer_norm(x: object, axis: int | Sequence[int] = -1, eps: float = 1e-5,
               weight: object | None = None, bias: object | None = None):
    """(x - mean) / sqrt(var + eps) over `axis`, then * weight + bias if given.

    >>> layer_norm(np.array([[1.0, 3.0]]), eps=0.0).tolist()
    [[-1.0, 1.0]]
    """
    mu = mean(x, axis, keepdims=True)
    centred = sub(x, mu)
    v = mean(mul(centred, centred), axis, keepdims=True)
    y = mul(centred, div(1.0, sqrt(add(v, eps))))
    if weight is not None:
        y = mul(y, weight)
    if bias is not None:
        y = add(y, bias)
    return y


# --------------------------------------------------------------------------- shapes


def expand_dims(x: object, axis: int | Sequence[int]):
    """Insert size-1 axes at `axis` (positions in the result)."""
    t = type_of(x)
    axes = _checks.as_ints(axis, "expand_dims: axis")
    ndim = t.ndim + len(axes)
    axes = sorted(P.normalize_axis(a, ndim, "expand_dims") for a in axes)
    if len(set(axes)) < len(axes):
        raise ShapeError(f"expand_dims: axis {axis} names an axis twice")
    shape = list(t.shape)
    for a in axes:
        shape.insert(a, 1)
    return reshape(x, shape)


def squeeze(x: object, axis: int | Sequence[int] | None = None):
    """Remove size-1 axes (all of them when `axis` is None)."""
    t = type_of(x)
    if axis is None:
        axes = tuple(i for i, d in enumerate(t.shape) if d == 1)
    else:
        axes = P._axes(axis, t.ndim, "squeeze")
    for a in axes:
        if t.shape[a] != 1:
            raise ShapeError(f"squeeze: axis {a} of {t!r} has size {t.shape[a]}, not 1")
    return reshape(x, [d for i, d in enumerate(t.shape) if i not in axes])


def ravel(x: object):
    """The elements as one axis."""
    return reshape(x, (-1,))


flatten = ravel


def swapaxes(x: object, a: int, b: int):
    """Exchange two axes."""
    n = type_of(x).ndim
    a = P.normalize_axis(a, n, "swapaxes", scalar_ok=False)
    b = P.normalize_axis(b, n, "swapaxes", scalar_ok=False)
    perm = list(range(n))
    perm[a], perm[b] = perm[b], perm[a]
    return transpose(x, perm)


def moveaxis(x: object, source: int, destination: int):
    """Move one axis to a new position."""
    n = type_of(x).ndim
    source = P.normalize_axis(source, n, "moveaxis", scalar_ok=False)
    destination = P.normalize_axis(destination, n, "moveaxis", scalar_ok=False)
    perm = [i for i in range(n) if i != source]
    perm.insert(destination, source)
    return transpose(x, perm)


def stack(xs: Sequence[object], axis: int = 0):
    """Join arrays of one shape along a new axis."""
    xs = P.as_arrays(xs, "stack")
    if not xs:
        raise ShapeError("stack needs at least one array")
    axis = P.normalize_axis(axis, type_of(xs[0]).ndim + 1, "stack")
    return concatenate([expand_dims(x, axis) for x in xs], axis=axis)


def split(x: object, indices_or_sections: int | Sequence[int], axis: int = 0) -> list:
    """numpy's split: into N equal parts, or at the given indices."""
    t = type_of(x)
    axis = P.normalize_axis(axis, t.ndim, "split", scalar_ok=False)
    n = t.shape[axis]
    if isinstance(indices_or_sections, (int, np.integer)):
        sections = _checks.as_int(indices_or_sections, "split: sections")
        if sections <= 0 or n % sections:
            raise ShapeError(f"split: axis {axis} of size {n} does not divide into "
                             f"{sections} equal parts")
        bounds = list(range(0, n + 1, n // sections)) if n else [0] * (sections + 1)
    else:
        bounds = [0] + list(_checks.as_ints(indices_or_sections, "split: indices")) + [n]
    parts = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        index = [slice(None)] * t.ndim
        index[axis] = slice(lo, hi)
        parts.append(getitem(x, tuple(index)))
    return parts


def pad(x: object, pad_width: int | Sequence, constant_values: float = 0.0):
    """numpy's constant `pad`: `pad_width` is an int, a (before, after) pair, or one pair
    per axis."""
    t = type_of(x)
    widths = _pad_widths(pad_width, t.ndim)
    if any(w < 0 for pair in widths for w in pair):
        raise ShapeError(f"pad: widths must be non-negative, got {pad_width}")
    return P.pad_general(x, [(a, b, 0) for a, b in widths], constant_values)


def _pad_widths(pad_width: object, ndim: int) -> list[tuple[int, int]]:
    """numpy's forms of `pad_width` as one (before, after) pair per axis."""
    if isinstance(pad_width, np.ndarray):
        pad_width = pad_width.tolist()
    if isinstance(pad_width, (list, tuple)) and pad_width and isinstance(
            pad_width[0], (list, tuple, np.ndarray)):
        pairs = [_checks.as_ints(p, "pad: pad_width") for p in pad_width]
        if len(pairs) == 1:
            pairs = pairs * ndim
    else:
        flat = _checks.as_ints(pad_width, "pad: pad_width")
        pairs = [flat * (2 // len(flat)) if len(flat) in (1, 2) else flat] * ndim
    if len(pairs) != ndim or any(len(p) != 2 for p in pairs):
        shown = _checks.quote(pad_width, with_type=False)
        raise ShapeError(f"pad: pad_width is an int, a (before, after) pair or one pair per "
                         f"axis of the {ndim}-d input, got {shown}")
    return pairs


def full(shape: Sequence[int], value: float, dtype: object = DEFAULT_FLOAT,
         like: object | None = None):
    """An array of `shape` filled with `value`; inside a trace, pass `like` to get a
    traced value (a broadcast scalar, not a stored array)."""
    shape = _checks.as_shape(shape, "full: shape")
    dtype = _checks.as_dtype(dtype, "full: dtype")
    if not isinstance(value, (bool, np.bool_)) and not (
            isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype == bool):
        _checks.as_real(value, "full: value")  # one number: no array, no string
    scalar = P._coerce(value, dtype)
    if isinstance(like, Tracer):
        const = like.trace.constant(scalar)
        return const if tuple(shape) == () else record(BroadcastTo(tuple(shape)), const)
    _checks.check_memory(shape, dtype, "full")
    return np.full(shape, scalar)


def zeros_like(x: object, dtype: object | None = None):
    """Zeros of x's shape (and dtype)."""
    t = type_of(x)
    return full(t.shape, 0, t.dtype if dtype is None else dtype, like=x)


def ones_like(x: object, dtype: object | None = None):
    """Ones of x's shape (and dtype)."""
    t = type_of(x)
    return full(t.shape, 1, t.dtype if dtype is None else dtype, like=x)


def one_hot(ids: object, num_classes: int, dtype: object = DEFAULT_FLOAT):
    """One-hot rows: out[..., k] = (ids == k).

    >>> one_hot(np.array([2, 0]), 3).tolist()
    [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    """
    num_classes = _checks.as_size(num_classes, "one_hot: num_classes")
    dtype = _checks.as_dtype(dtype, "one_hot: dtype")
    t = type_of(ids)
    if t.dtype not in ("int32", "int64", "uint32"):
        raise ShapeError(f"one_hot: ids must be integers, got {t!r}")
    _checks.check_memory(t.shape + (num_classes,), dtype, "one_hot")
    ids = expand_dims(ids, -1)
    return astype(equal(ids, np.arange(num_classes, dtype=type_of(ids).dtype)), dtype)


def dot(a: object, b: object):
    """matmul for 1-d and 2-d operands (as numpy's dot there)."""
    return matmul(a, b)


def outer(a: object, b: object):
    """Outer product of two vectors."""
    return mul(reshape(a, (-1, 1)), reshape(b, (1, -1)))


# --------------------------------------------------------------------------- layers (PyTorch forms)


def linear(x: object, weight: object, bias: object | None = None):
    """x @ weight.T + bias, with PyTorch's weight layout [out_features, in_features]."""
    y = matmul(x, swapaxes(weight, -1, -2))
    return y if bias is None else add(y, bias)


def embedding(ids: object, weight: object, padding_idx: int | None = None):
    """Rows of `weight` [num_embeddings, dim] at integer `ids` (any shape); repeated ids
    accumulate their gradients. Rows at `padding_idx` get no gradient, as in PyTorch."""
    out = take(weight, ids, axis=0)
    if padding_idx is not None:
        padding_idx = _checks.as_int(padding_idx, "embedding: padding_idx")
    if padding_idx is None:
        return out
    keep = expand_dims(not_equal(ids, padding_idx), -1)
    return where(keep, out, stop_gradient(out))


# --------------------------------------------------------------------------- Tracer methods


def _swap(fn):  # noqa: ANN001, ANN202
    return lambda self, other: fn(other, self)


def _reshape_method(self: Tracer, *shape: object):
    if len(shape) == 1 and not isinstance(shape[0], int):
        shape = tuple(shape[0])  # type: ignore[arg-type]
    return reshape(self, shape)


def _transpose_method(self: Tracer, *axes: object):
    if len(axes) == 1 and not isinstance(axes[0], int):
        axes = tuple(axes[0])  # type: ignore[arg-type]
    return transpose(self, axes or None)


_UFUNC_METHODS = {
    np.add: add, np.subtract: sub, np.multiply: mul, np.true_divide: div,
    np.floor_divide: floor_divide, np.remainder: mod, np.power: power, np.maximum: maximum,
    np.minimum: minimum, np.less: less, np.less_equal: less_equal, np.greater: greater,
    np.greater_equal: greater_equal, np.equal: equal, np.not_equal: not_equal,
    np.negative: neg, np.matmul: matmul,
}


def _array_ufunc(self: Tracer, ufunc, method, *inputs, **kwargs):  # noqa: ANN001, ANN202
    # numpy calls this for `ndarray + tracer`; operators are fine, numpy math is not.
    fn = _UFUNC_METHODS.get(ufunc)
    if fn is not None and method == "__call__" and not kwargs:
        return fn(*inputs)
    raise TraceError(
        f"numpy.{ufunc.__name__} was called on a traced array {self.type!r} "
        f"({self.origin()}). numpy needs numbers, which a traced array does not have yet. "
        f"Use pyasg.{ufunc.__name__} instead, which records the operation in the graph.")


_METHODS = {
    "__add__": add, "__radd__": _swap(add), "__sub__": sub, "__rsub__": _swap(sub),
    "__mul__": mul, "__rmul__": _swap(mul), "__truediv__": div, "__rtruediv__": _swap(div),
    "__floordiv__": floor_divide, "__rfloordiv__": _swap(floor_divide),
    "__mod__": mod, "__rmod__": _swap(mod), "__pow__": power, "__rpow__": _swap(power),
    "__matmul__": matmul, "__rmatmul__": _swap(matmul),
    "__neg__": neg, "__pos__": lambda self: self, "__abs__": abs,
    "__lt__": less, "__le__": less_equal, "__gt__": greater, "__ge__": greater_equal,
    "__eq__": equal, "__ne__": not_equal,
    "__invert__": logical_not, "__and__": logical_and, "__rand__": _swap(logical_and),
    "__or__": logical_or, "__ror__": _swap(logical_or), "__xor__": logical_xor,
    "__getitem__": getitem, "__array_ufunc__": _array_ufunc,
    "reshape": _reshape_method, "transpose": _transpose_method,
    "sum": sum, "mean": mean, "var": var, "std": std, "max": max, "min": min,
    "argmax": argmax, "argmin": argmin, "astype": astype, "squeeze": squeeze,
    "ravel": ravel, "flatten": ravel, "clip": clamp, "swapaxes": swapaxes,
    "T": property(lambda self: transpose(self)),
    "mT": property(lambda self: swapaxes(self, -1, -2)),
    "at": property(At),
}

for _name, _fn in _METHODS.items():
    setattr(Tracer, _name, _fn)
