"""numpy kernels of the convolutions and max-pool indices: strided windows + matmul.

No Python loop runs over pixels: windows are a strided view (im2col), products are
one batched matmul per call, and the input gradient (col2im) loops only over the
kh x kw kernel offsets.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from pyasg.asg import ops
from pyasg.asg.types import TensorType
from pyasg.kernels import lower
from pyasg.kernels.numpy.backend import NumpyBackend, NumpyKernel


def _windows(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int],
             padding: tuple[int, int], dilation: tuple[int, int], out_hw: tuple[int, int],
             fill: float = 0.0) -> np.ndarray:
    """View [N, C, Ho, Wo, kh, kw] of the padded input's windows."""
    (ph, pw), (sh, sw), (dh, dw) = padding, stride, dilation
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)
    n, c = x.shape[:2]
    s = x.strides
    return as_strided(x, (n, c) + tuple(out_hw) + tuple(kernel),
                      (s[0], s[1], s[2] * sh, s[3] * sw, s[2] * dh, s[3] * dw), writeable=False)


def _patches(x: np.ndarray, op: ops._ConvBase, kernel: tuple[int, int],
             out_hw: tuple[int, int]) -> np.ndarray:
    """im2col: [N, groups, Ho*Wo, C/groups*kh*kw] (a copy)."""
    n, c = x.shape[:2]
    g = op.groups
    win = _windows(x, kernel, op.stride, op.padding, op.dilation, out_hw)
    win = win.reshape(n, g, c // g, *out_hw, *kernel).transpose(0, 1, 3, 4, 2, 5, 6)
    return win.reshape(n, g, out_hw[0] * out_hw[1], (c // g) * kernel[0] * kernel[1])


def _offsets(op: ops._ConvBase, kernel: tuple[int, int], out_hw: tuple[int, int]):  # noqa: ANN202
    """(i, j, rows, cols): each kernel offset and the slices of the padded input it reads."""
    (sh, sw), (dh, dw) = op.stride, op.dilation
    ho, wo = out_hw
    return [(i, j, slice(i * dh, i * dh + sh * (ho - 1) + 1, sh),
             slice(j * dw, j * dw + sw * (wo - 1) + 1, sw))
            for i in range(kernel[0]) for j in range(kernel[1])]


def _columns(x: np.ndarray, op: ops._ConvBase, kernel: tuple[int, int],
             out_hw: tuple[int, int], cols: np.ndarray | None = None,
             padded: np.ndarray | None = None) -> np.ndarray:
    """im2col for one group, [N, C, kh, kw, Ho, Wo]: one contiguous copy per kernel
    offset (a strided 7-D transpose copy is several times slower), and per image the
    [C*kh*kw, Ho*Wo] matrix a GEMM reads as it is. `cols` and `padded` (the input
    with its zero border) may be given: the memory plan's scratch buffers."""
    (ph, pw) = op.padding
    n, c, h, w = x.shape
    if ph or pw:
        if padded is None:
            padded = np.empty((n, c, h + 2 * ph, w + 2 * pw), x.dtype)
        padded.fill(0)
        padded[:, :, ph: ph + h, pw: pw + w] = x
        x = padded
    if cols is None:
        cols = np.empty((n, c, *kernel, *out_hw), x.dtype)
    for i, j, rows, columns in _offsets(op, kernel, out_hw):
        np.copyto(cols[:, :, i, j], x[:, :, rows, columns])
    return cols


def _column_scratch(op: ops._ConvBase, x: TensorType, kernel: tuple[int, int],
                    out_hw: tuple[int, int]) -> tuple[tuple[tuple[int, ...], str], ...]:
    """The (shape, dtype) of `_columns`' buffers: the columns, and the padded input."""
    n, c, h, w = x.shape
    (ph, pw) = op.padding
    specs = [((n, c, *kernel, *out_hw), x.dtype)]
    if ph or pw:
        specs.append(((n, c, h + 2 * ph, w + 2 * pw), x.dtype))
    return tuple(specs)


def _pair_of(scratch: tuple) -> tuple:
    """(cols, padded) from a kernel's scratch; an empty slot (no padding) is None."""
    cols, padded = (tuple(scratch) + (None, None))[:2]
    return cols, (padded if padded is not None and padded.size else None)


def _grouped_weight(w: np.ndarray, groups: int) -> np.ndarray:
    """[O, C/g, kh, kw] -> [g, O/g, C/g*kh*kw]."""
    return w.reshape(groups, w.shape[0] // groups, -1)


@lower.register(ops.Conv2d, NumpyBackend)
def _(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
    n, out_c, ho, wo = out_type.shape
    kernel = in_types[1].shape[2:]

    g = op.groups
    # K, a column's length, by name: a reshape with -1 fails on an empty batch
    k = in_types[1].shape[1] * kernel[0] * kernel[1]

    def conv2d(x, w, out=None, scratch=(None, None)):  # noqa: ANN001, ANN202
        if out is None:
            out = np.empty(out_type.shape, out_type.dtype)
        if g == 1:  # W [O, K] @ cols [N, K, L] is NCHW already: no transpose after
            cols = _columns(x, op, kernel, (ho, wo), *_pair_of(scratch))
            np.matmul(w.reshape(out_c, k), cols.reshape(n, k, ho * wo),
                      out=out.reshape(n, out_c, ho * wo))
            return out
        cols = _patches(x, op, kernel, (ho, wo))                     # [N, g, L, K]
        res = cols @ _grouped_weight(w, g).transpose(0, 2, 1)         # [N, g, L, O/g]
        np.copyto(out.reshape(n, g, out_c // g, ho * wo), res.transpose(0, 1, 3, 2))
        return out

    return NumpyKernel(conv2d, writes_out=True, inplace=False, scratch=(
        _column_scratch(op, in_types[0], kernel, (ho, wo)) if g == 1 else ()))


@lower.register(ops.Conv2dBackwardWeight, NumpyBackend)
def _(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
    n, out_c, ho, wo = in_types[1].shape
    kernel, g = op.kernel_size, op.groups
    # K, a column's length (per group), by name: a reshape with -1 fails on an empty batch
    k = in_types[0].shape[1] // g * kernel[0] * kernel[1]

    def conv2d_backward_weight(x, grad, out=None, scratch=None):  # noqa: ANN001, ANN202
        if g == 1:  # per image grad [O, L] @ cols^T [L, K], then the sum over images
            *columns, per_image = scratch or (None, None, None)
            cols = _columns(x, op, kernel, (ho, wo), *_pair_of(tuple(columns)))
            cols = cols.reshape(n, k, ho * wo)
            per_image = np.matmul(grad.reshape(n, out_c, ho * wo), cols.transpose(0, 2, 1),
                                  out=per_image)
            if out is None:
                out = np.empty(out_type.shape, out_type.dtype)
            np.sum(per_image, axis=0, out=out.reshape(out_c, k))
            return out
        cols = _patches(x, op, kernel, (ho, wo))                      # [N, g, L, K]
        gr = grad.reshape(n, g, out_c // g, ho * wo)                  # [N, g, O/g, L]
        cols = cols.transpose(1, 0, 2, 3).reshape(g, n * ho * wo, k)
        gr = gr.transpose(1, 2, 0, 3).reshape(g, out_c // g, n * ho * wo)
        if out is None:
            return (gr @ cols).reshape(out_type.shape)
        np.matmul(gr, cols, out=out.reshape(g, out_c // g, k))
        return out

    cin = in_types[0].shape[1]
    specs = _column_scratch(op, in_types[0], kernel, (ho, wo))
    if len(specs) == 1:
        specs += (((0,), in_types[0].dtype),)  # no padding: an empty slot keeps the order
    specs += (((n, out_c, cin * kernel[0] * kernel[1]), out_type.dtype),)
    return NumpyKernel(conv2d_backward_weight, writes_out=True, inplace=False,
                       scratch=specs if g == 1 else ())


@lower.register(ops.Conv2dBackwardInput, NumpyBackend)
def _(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
    n, out_c, ho, wo = in_types[0].shape
    _, cg, kh, kw = in_types[1].shape
    g = op.groups
    (ph, pw), (sh, sw), (dh, dw) = op.padding, op.stride, op.dilation
    h, w_ = out_type.shape[2:]

    def conv2d_backward_input(grad, w, out=None, scratch=(None, None)):  # noqa: ANN001, ANN202
        if out is None:
            out = np.empty(out_type.shape, out_type.dtype)
        if g == 1:  # cols [N, K, L] = W^T @ grad, then col2im: one add per kernel offset
            cols, padded = scratch
            cols = np.matmul(w.reshape(out_c, -1).T, grad.reshape(n, out_c, ho * wo),
                             out=cols)
            cols = cols.reshape(n, cg, kh, kw, ho, wo)
            if padded is None:
                padded = np.empty(padded_shape, grad.dtype)
            padded.fill(0)
            for i, j, rows, columns in _offsets(op, (kh, kw), (ho, wo)):
                padded[:, :, rows, columns] += cols[:, :, i, j]
            np.copyto(out, padded[:, :, ph: ph + h, pw: pw + w_])
            return out
        gr = grad.reshape(n, g, out_c // g, ho * wo).transpose(0, 1, 3, 2)  # [N, g, L, O/g]
        cols = gr @ _grouped_weight(w, g)                                 # [N, g, L, K]
        cols = cols.reshape(n, g, ho, wo, cg, kh, kw).transpose(0, 1, 4, 5, 6, 2, 3)
        padded = np.zeros((n, g, cg, h + 2 * ph + sh, w_ + 2 * pw + sw), grad.dtype)
        for i in range(kh):
            for j in range(kw):
                padded[:, :, :, i * dh: i * dh + sh * ho: sh,
                       j * dw: j * dw + sw * wo: sw] += cols[:, :, :, i, j]
        np.copyto(out.reshape(n, g, cg, h, w_), padded[:, :, :, ph: ph + h, pw: pw + w_])
        return out

    padded_shape = (n, cg, h + 2 * ph + sh, w_ + 2 * pw + sw)
    specs = (((n, cg * kh * kw, ho * wo), out_type.dtype), (padded_shape, out_type.dtype))
    return NumpyKernel(conv2d_backward_input, writes_out=True, inplace=False,
                       scratch=specs if g == 1 else ())


@lower.register(ops.MaxPool2dIndices, NumpyBackend)
def _(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
    n, c, h, w = in_types[0].shape
    ho, wo = out_type.shape[2:]
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = op.kernel_size, op.stride, op.padding, op.dilation
    base = (np.arange(n * c) * (h * w)).reshape(n, c, 1, 1)
    # flat index of window offset (0, 0) of each output pixel; offset k adds step[k]
    corner = (base + (np.arange(ho) * sh - ph).reshape(1, 1, ho, 1) * w
              + (np.arange(wo) * sw - pw).reshape(1, 1, 1, wo)).astype(np.int32)
    step = np.array([i * dh * w + j * dw for i in range(kh) for j in range(kw)], np.int32)
    # the step of each window's first real tap: where every tap is -inf the padding (-inf
    # too) must not win, as in the reference and PyTorch
    first_row = [next(i for i in range(kh) if 0 <= o * sh - ph + i * dh < h) for o in range(ho)]
    first_col = [next(j for j in range(kw) if 0 <= o * sw - pw + j * dw < w) for o in range(wo)]
    first_real = (np.array(first_row).reshape(ho, 1) * dh * w
                  + np.array(first_col).reshape(1, wo) * dw).astype(np.int32)
    dtype = np.dtype(in_types[0].dtype)

    shape = out_type.shape
    padded_shape = (n, c, h + 2 * ph, w + 2 * pw) if ph or pw else (0,)
    specs = (((kh * kw, *shape), dtype.name), (shape, "int32"), (shape, "bool"),
             (shape, "bool"), (shape, "int32"), (padded_shape, dtype.name))

    def max_pool2d_indices(x, out=None, scratch=None):  # noqa: ANN001, ANN202
        # one pass per window offset over output-sized arrays (no [.., kh*kw] copy and
        # no argmax over a short last axis); ties keep the first offset and a NaN wins
        # and stays, as np.argmax and PyTorch
        if scratch is None:  # called outside an executable's plan
            scratch = tuple(np.empty(s, d) for s, d in specs)
        values, index, take, seen, delta, padded = scratch
        if ph or pw:
            padded.fill(-np.inf)
            padded[:, :, ph: ph + h, pw: pw + w] = x
            x = padded
        # each window offset's values as one contiguous array first: comparing strided
        # views costs ~8x more than the copies
        for k in range(kh * kw):
            i, j = divmod(k, kw)
            np.copyto(values[k], x[:, :, i * dh: i * dh + sh * (ho - 1) + 1: sh,
                                   j * dw: j * dw + sw * (wo - 1) + 1: sw])
        best = values[0]
        # the flat index of the best offset so far, updated arithmetically: np.copyto
        # with where= and np.take over a small table are each ~50x slower than a ufunc
        index.fill(0)
        for k in range(1, kh * kw):
            v = values[k]
            np.less_equal(v, best, out=take)
            np.logical_not(take, out=take)        # v > best, or v is NaN ...
            np.equal(best, best, out=seen)
            take &= seen                          # ... unless best is NaN already
            np.maximum(best, v, out=best)         # the same choice (NaN wins and stays)
            np.subtract(step[k], index, out=delta)
            delta *= take
            index += delta                        # index = step[k] where take
        if ph or pw:
            np.isneginf(best, out=take)
            np.copyto(index, first_real, where=take)
        if out is None:
            out = np.empty(out_type.shape, np.int32)
        np.add(index, corner, out=out)
        return out

    return NumpyKernel(max_pool2d_indices, writes_out=True, inplace=False, scratch=specs)
