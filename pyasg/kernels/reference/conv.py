"""Reference convolutions and max-pool indices: the definitions, one kernel offset at a time.

For every offset (a, b) of the kernel, the input pixels it meets form a strided slice
of the zero-padded input; a convolution is the sum over offsets of that slice times
the weight at the offset (an einsum per group), and its two gradients are the same
sums read the other way (the adjoints). No im2col, no folding: slow and plain.

>>> x = np.arange(9.0).reshape(1, 1, 3, 3); w = np.ones((1, 1, 2, 2))
>>> conv2d(x, w, (1, 1), (0, 0), (1, 1), 1).tolist()
[[[[8.0, 12.0], [20.0, 24.0]]]]
"""

from __future__ import annotations

import numpy as np


def _window(offset: tuple[int, int], dilation: tuple[int, ...], stride: tuple[int, ...],
            out_hw: tuple[int, ...]) -> tuple[slice, slice]:
    """The slice of the padded input that kernel offset `offset` meets, per output pixel."""
    return tuple(slice(o * d, o * d + s * (n - 1) + 1, s)
                 for o, d, s, n in zip(offset, dilation, stride, out_hw))


def _grouped(w: np.ndarray, groups: int) -> np.ndarray:
    out_c, cg, kh, kw = w.shape
    return w.reshape(groups, out_c // groups, cg, kh, kw)


def conv2d(x: np.ndarray, w: np.ndarray, stride: tuple[int, ...], padding: tuple[int, ...],
           dilation: tuple[int, ...], groups: int) -> np.ndarray:
    """out[n, o, i, j] = sum over c, a, b of xpad[n, c, i s + a d, j s + b d] w[o, c, a, b]."""
    n, c, h, wd = x.shape
    out_c, cg, kh, kw = w.shape
    ph, pw = padding
    ho = (h + 2 * ph - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (wd + 2 * pw - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))).reshape(n, groups, cg, h + 2 * ph,
                                                                 wd + 2 * pw)
    wg = _grouped(w, groups)
    out = np.zeros((n, groups, out_c // groups, ho, wo), np.result_type(x, w))
    for a in range(kh):
        for b in range(kw):
            rows, cols = _window((a, b), dilation, stride, (ho, wo))
            out += np.einsum("ngchw,goc->ngohw", xp[:, :, :, rows, cols], wg[:, :, :, a, b])
    return out.reshape(n, out_c, ho, wo)


def conv2d_backward_input(g: np.ndarray, w: np.ndarray, stride: tuple[int, ...],
                          padding: tuple[int, ...], dilation: tuple[int, ...], groups: int,
                          input_size: tuple[int, ...]) -> np.ndarray:
    """The adjoint of `conv2d` in x: each output gradient goes back to the pixels it read."""
    n, out_c, ho, wo = g.shape
    _, cg, kh, kw = w.shape
    (ph, pw), (h, wd) = padding, input_size
    gx = np.zeros((n, groups, cg, h + 2 * ph, wd + 2 * pw), np.result_type(g, w))
    gg = g.reshape(n, groups, out_c // groups, ho, wo)
    wg = _grouped(w, groups)
    for a in range(kh):
        for b in range(kw):
            rows, cols = _window((a, b), dilation, stride, (ho, wo))
            gx[:, :, :, rows, cols] += np.einsum("ngohw,goc->ngchw", gg, wg[:, :, :, a, b])
    return gx[:, :, :, ph: ph + h, pw: pw + wd].reshape(n, groups * cg, h, wd)


def conv2d_backward_weight(x: np.ndarray, g: np.ndarray, stride: tuple[int, ...],
                           padding: tuple[int, ...], dilation: tuple[int, ...], groups: int,
                           kernel_size: tuple[int, ...]) -> np.ndarray:
    """The adjoint of `conv2d` in w: each weight meets its input slice times the gradient."""
    n, c, h, wd = x.shape
    _, out_c, ho, wo = g.shape
    (ph, pw), (kh, kw), cg = padding, kernel_size, c // groups
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))).reshape(n, groups, cg, h + 2 * ph,
                                                                 wd + 2 * pw)
    gg = g.reshape(n, groups, out_c // groups, ho, wo)
    gw = np.zeros((groups, out_c // groups, cg, kh, kw), np.result_type(x, g))
    for a in range(kh):
        for b in range(kw):
            rows, cols = _window((a, b), dilation, stride, (ho, wo))
            gw[:, :, :, a, b] = np.einsum("ngchw,ngohw->goc", xp[:, :, :, rows, cols], gg)
    return gw.reshape(out_c, cg, kh, kw)


def max_pool2d_indices(x: np.ndarray, kernel_size: tuple[int, ...], stride: tuple[int, ...],
                       padding: tuple[int, ...], dilation: tuple[int, ...]) -> np.ndarray:
    """Flat index into x.ravel() of each window's first maximum over its real pixels (the
    padding never wins, as in PyTorch); a NaN is the maximum, the first of several as in
    np.argmax (PyTorch's CPU kernel takes the last)."""
    n, c, h, wd = x.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel_size, stride, padding, dilation
    ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wo = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((n, c, ho, wo), np.int32)
    flat = x.reshape(n * c, h * wd)
    for i in range(ho):
        for j in range(wo):
            rows = [i * sh - ph + a * dh for a in range(kh)]
            cols = [j * sw - pw + b * dw for b in range(kw)]
            at = np.array([r * wd + s for r in rows for s in cols if 0 <= r < h and 0 <= s < wd])
            best = np.argmax(flat[:, at], axis=1)  # the first maximum, NaN first
            out[:, :, i, j] = (np.arange(n * c) * (h * wd) + at[best]).reshape(n, c)
    return out
