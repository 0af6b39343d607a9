"""numpy kernels of the reductions: sum, max (into planned buffers), argmax."""

from __future__ import annotations

import numpy as np

from pyasg.asg import ops
from pyasg.kernels import lower
from pyasg.kernels.numpy.backend import NumpyBackend, NumpyKernel


@lower.register(ops.Sum, NumpyBackend)
def _(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
    axes, keepdims, dtype = op.axes, op.keepdims, np.dtype(out_type.dtype)

    def sum_(x, out=None):  # noqa: ANN001, ANN202
        return np.sum(x, axis=axes, keepdims=keepdims, dtype=dtype, out=out)

    return NumpyKernel(sum_, writes_out=True, inplace=False)


@lower.register(ops.Max, NumpyBackend)
def _(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
    axes, keepdims = op.axes, op.keepdims
    if not axes:
        def copy(x, out=None):  # noqa: ANN001, ANN202
            if out is None:
                return np.copy(x)
            np.copyto(out, x)
            return out

        return NumpyKernel(copy, writes_out=True, inplace=False)

    def max_(x, out=None):  # noqa: ANN001, ANN202
        return np.max(x, axis=axes, keepdims=keepdims, out=out)

    return NumpyKernel(max_, writes_out=True, inplace=False)


@lower.register(ops.ArgMax, NumpyBackend)
def _(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
    # allocates: numpy's argmax writes only its own index type (intp), and ours is int32
    axis, keepdims = op.axis, op.keepdims
    return NumpyKernel(
        lambda x: np.argmax(x, axis=axis, keepdims=keepdims).astype(np.int32))
