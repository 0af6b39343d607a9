"""Convolution and pooling with PyTorch's functional signatures (NCHW).

conv2d and conv_transpose2d are primitives; max_pool2d is a gather at the indices
of each window's maximum (so its gradient is a scatter-add, correct for any order);
avg_pool2d is a depthwise convolution with a constant kernel, divided by the
window size or, with `count_include_pad=False`, by the number of real pixels in
each window, in the forward AND the backward pass; adaptive_avg_pool2d is two
matmuls with constant averaging matrices (PyTorch's windows). A 3-d input
[C, H, W] is treated as a batch of one, as in PyTorch. `ceil_mode` is not
supported (it raises).

>>> import numpy as np
>>> x = np.arange(16.0).reshape(1, 1, 4, 4)
>>> max_pool2d(x, 2).tolist()
[[[[5.0, 7.0], [13.0, 15.0]]]]
>>> avg_pool2d(x, 2).tolist()
[[[[2.5, 4.5], [10.5, 12.5]]]]
"""

from __future__ import annotations

from collections.abc import Sequence
from math import ceil, floor

import numpy as np

from pyasg.array import primitives as P
from pyasg.array.checks import (
    as_bool,
    as_int,
    as_ints,
    as_real,
    as_size,
    check_bytes,
    check_memory,
    quote,
)
from pyasg.asg.ops import Conv2d, Conv2dBackwardInput, MaxPool2dIndices
from pyasg.errors import ShapeError
from pyasg.kernels.reference import evaluate

IntPair = "int | Sequence[int]"


def _pair(v: int | Sequence[int], name: str) -> tuple[int, int]:
    pair = as_ints(v, name)
    if len(pair) == 1:  # 3 or [3], as PyTorch
        pair = pair * 2
    if len(pair) != 2:
        raise ShapeError(f"{name} must be an int or a pair of ints, got {quote(v)}")
    return pair  # type: ignore[return-value]


def _batched(x: object, fn_name: str) -> tuple[object, bool]:
    ndim = P.type_of(x).ndim
    if ndim == 3:
        return P.reshape(x, (1,) + P.type_of(x).shape), True
    if ndim != 4:
        raise ShapeError(f"{fn_name}: input must be [N, C, H, W] or [C, H, W], got "
                         f"{P.type_of(x)!r}")
    return x, False


def _check_padded(x: object, extra: tuple[int, int], name: str) -> None:
    """The input padded by `extra` rows and columns must be an array numpy can hold (and,
    computed now, fit this machine's memory): the kernels pad it before they convolve."""
    t = P.type_of(x)
    padded = t.shape[:2] + tuple(d + e for d, e in zip(t.shape[2:], extra))
    check_bytes(padded, 8, f"{name}: the padded input of shape")
    if not P.is_tracer(x):
        check_memory(padded, t.dtype, name)


def _unbatched(y: object, squeeze: bool) -> object:
    return P.reshape(y, P.type_of(y).shape[1:]) if squeeze else y


def _add_bias(y: object, bias: object | None) -> object:
    if bias is None:
        return y
    return P.add(y, P.reshape(bias, (1, -1, 1, 1)))


def conv2d(x: object, weight: object, bias: object | None = None, stride: IntPair = 1,
           padding: IntPair | str = 0, dilation: IntPair = 1, groups: int = 1) -> object:
    """2-d convolution, as `torch.nn.functional.conv2d`; weight [O, C/groups, kh, kw].

    `padding` may be an int, a pair, "valid" (0) or "same" (stride 1 only; an odd
    total is split with the extra row/column at the end, as PyTorch does).
    """
    x, squeeze = _batched(x, "conv2d")
    stride, dilation = _pair(stride, "conv2d: stride"), _pair(dilation, "conv2d: dilation")
    kernel = P.type_of(weight).shape[2:]
    if isinstance(padding, str):
        if padding == "valid":
            padding = (0, 0)
        elif padding == "same":
            if stride != (1, 1):
                raise ShapeError("conv2d: padding='same' needs stride 1")
            totals = [d * (k - 1) for d, k in zip(dilation, kernel)]
            _check_padded(x, tuple(totals), "conv2d")
            x = P.pad_general(x, [(0, 0, 0), (0, 0, 0)] + [(t // 2, t - t // 2, 0)
                                                          for t in totals])
            padding = (0, 0)
        else:
            raise ShapeError(f"conv2d: padding must be an int, a pair, 'valid' or 'same', "
                             f"got {quote(padding)}")
    padding = _pair(padding, "conv2d: padding")
    if min(padding) < 0:
        raise ShapeError(f"conv2d: padding {padding} must not be negative")
    _check_padded(x, (2 * padding[0], 2 * padding[1]), "conv2d")
    op = Conv2d(stride, padding, dilation, as_int(groups, "conv2d: groups"))
    return _unbatched(_add_bias(P.bind(op, x, weight), bias), squeeze)


def conv_transpose2d(x: object, weight: object, bias: object | None = None, stride: IntPair = 1,
                     padding: IntPair = 0, output_padding: IntPair = 0, groups: int = 1,
                     dilation: IntPair = 1) -> object:
    """Transposed convolution, as `torch.nn.functional.conv_transpose2d`;
    weight [C_in, C_out/groups, kh, kw]; out = (in - 1)s - 2p + d(k - 1) + output_padding + 1.
    """
    x, squeeze = _batched(x, "conv_transpose2d")
    stride = _pair(stride, "conv_transpose2d: stride")
    padding = _pair(padding, "conv_transpose2d: padding")
    dilation = _pair(dilation, "conv_transpose2d: dilation")
    output_padding = _pair(output_padding, "conv_transpose2d: output_padding")
    groups = as_int(groups, "conv_transpose2d: groups")
    for op_, s, d in zip(output_padding, stride, dilation):
        if not 0 <= op_ < max(s, d):
            raise ShapeError(f"conv_transpose2d: output_padding {output_padding} must be "
                             f"smaller than stride {stride} or dilation {dilation}")
    in_hw = P.type_of(x).shape[2:]
    kernel = P.type_of(weight).shape[2:]
    size = tuple((n - 1) * s - 2 * p + d * (k - 1) + o + 1 for n, s, p, d, k, o in
                 zip(in_hw, stride, padding, dilation, kernel, output_padding))
    if any(d < 0 for d in size):
        raise ShapeError(f"conv_transpose2d: the output size {size} would be negative (input "
                         f"{list(in_hw)}, stride {stride}, padding {padding})")
    op = Conv2dBackwardInput(stride, padding, dilation, groups, input_size=size)
    return _unbatched(_add_bias(P.bind(op, x, weight), bias), squeeze)


def _pool_params(kernel_size: IntPair, stride: IntPair | None, padding: IntPair,
                 ceil_mode: bool, name: str) -> tuple[tuple[int, int], ...]:
    if as_bool(ceil_mode, f"{name}: ceil_mode"):
        raise ShapeError(f"{name}: ceil_mode=True is not supported")
    kernel = _pair(kernel_size, f"{name}: kernel_size")
    stride = kernel if stride is None else _pair(stride, f"{name}: stride")
    padding = _pair(padding, f"{name}: padding")
    if min(kernel) < 1 or min(stride) < 1 or min(padding) < 0:
        raise ShapeError(f"{name}: kernel_size {kernel} and stride {stride} must be positive, "
                         f"padding {padding} not negative")
    if any(p > k // 2 for p, k in zip(padding, kernel)):
        raise ShapeError(f"{name}: padding {padding} must be at most half the kernel "
                         f"{kernel}")
    return kernel, stride, padding


def max_pool2d(x: object, kernel_size: IntPair, stride: IntPair | None = None,
               padding: IntPair = 0, dilation: IntPair = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> object:
    """Max pooling, as `torch.nn.functional.max_pool2d` (padding counts as -inf; the
    gradient goes to the first maximum of each window, as in PyTorch). With
    `return_indices`, also the index of each maximum within its channel's H*W."""
    x, squeeze = _batched(x, "max_pool2d")
    kernel, stride, padding = _pool_params(kernel_size, stride, padding, ceil_mode,
                                           "max_pool2d")
    return_indices = as_bool(return_indices, "max_pool2d: return_indices")
    idx = P.bind(MaxPool2dIndices(kernel, stride, padding, _pair(dilation,
                                                                 "max_pool2d: dilation")), x)
    y = _unbatched(P.take(P.reshape(x, (-1,)), idx, axis=0), squeeze)
    if not return_indices:
        return y
    h, w = P.type_of(x).shape[2:]
    return y, _unbatched(P.mod(idx, h * w), squeeze)


def avg_pool2d(x: object, kernel_size: IntPair, stride: IntPair | None = None,
               padding: IntPair = 0, ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: int | None = None) -> object:
    """Average pooling, as `torch.nn.functional.avg_pool2d`; `count_include_pad` decides
    whether padded zeros count in each window's divisor, forward and backward."""
    x, squeeze = _batched(x, "avg_pool2d")
    kernel, stride, padding = _pool_params(kernel_size, stride, padding, ceil_mode,
                                           "avg_pool2d")
    count_include_pad = as_bool(count_include_pad, "avg_pool2d: count_include_pad")
    if divisor_override is not None:
        divisor_override = as_real(divisor_override, "avg_pool2d: divisor_override",
                                   finite=True)
        if divisor_override == 0:
            raise ShapeError("avg_pool2d: divisor_override must not be 0 (as PyTorch)")
    n, c, h, w = P.type_of(x).shape
    dtype = P.type_of(x).dtype
    if any(k > d + 2 * p for k, d, p in zip(kernel, (h, w), padding)):
        raise ShapeError(f"avg_pool2d: kernel {kernel} is larger than the padded input "
                         f"{(h + 2 * padding[0], w + 2 * padding[1])}")
    ones = np.ones((1, 1) + kernel, dtype=dtype)  # the window: a constant, within the input
    op = Conv2d(stride, padding, (1, 1), 1)
    pooled = P.bind(op, P.reshape(x, (n * c, 1, h, w)), ones)
    summed = P.reshape(pooled, (n, c) + P.type_of(pooled).shape[2:])
    if divisor_override is not None:
        divisor: object = float(divisor_override)
    elif count_include_pad:
        divisor = float(kernel[0] * kernel[1])
    else:  # how many real pixels each window covers: a constant, computed now
        divisor = evaluate(op, np.ones((1, 1, h, w), dtype), ones)[0, 0]
    return _unbatched(P.div(summed, divisor), squeeze)


def _adaptive_matrix(size: int, out: int, dtype: str) -> np.ndarray:
    m = np.zeros((out, size), dtype=dtype)
    for i in range(out):
        start, end = floor(i * size / out), ceil((i + 1) * size / out)
        m[i, start:end] = 1.0 / (end - start)
    return m


def adaptive_avg_pool2d(x: object, output_size: int | Sequence[int | None]) -> object:
    """Average pooling to a fixed output size, with PyTorch's windows
    [floor(i*H/out), ceil((i+1)*H/out)); None in `output_size` keeps that size."""
    x, squeeze = _batched(x, "adaptive_avg_pool2d")
    _, _, h, w = P.type_of(x).shape
    dtype = P.type_of(x).dtype
    what = "adaptive_avg_pool2d: output_size"
    sizes = (output_size, output_size) if isinstance(output_size, (int, np.integer)) else (
        tuple(output_size) if isinstance(output_size, (list, tuple)) else ())
    if len(sizes) != 2:
        raise ShapeError(f"{what} must be an int or a pair of ints (or None), got "
                         f"{quote(output_size)}")
    oh, ow = (h if sizes[0] is None else as_size(sizes[0], what),
              w if sizes[1] is None else as_size(sizes[1], what))
    if oh < 1 or ow < 1:
        raise ShapeError(f"adaptive_avg_pool2d: output size must be positive, got {sizes}")
    # the two averaging matrices are constants, made now
    check_memory((max(oh, ow), max(h, w)), dtype, "adaptive_avg_pool2d")
    y = P.matmul(_adaptive_matrix(h, oh, dtype), x)
    y = P.matmul(y, _adaptive_matrix(w, ow, dtype).T.copy())
    return _unbatched(y, squeeze)
