"""numpy kernels of the reductions: sum, max, argmax."""

from __future__ import annotations

import numpy as np

from pyasg.asg import ops
from pyasg.kernels import lower
from pyasg.kernels.numpy.backend import NumpyBackend, NumpyKernel


@lower.register(ops.Sum, NumpyBackend)
def _(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
    axes, keepdims, dtype = op.axes, op.keepdims, np.dtype(out_type.dtype)
    return NumpyKernel(lambda x: np.sum(x, axis=axes, keepdims=keepdims, dtype=dtype))


@lower.register(ops.Max, NumpyBackend)
def _(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
    axes, keepdims = op.axes, op.keepdims
    if not axes:
        return NumpyKernel(np.copy)
    return NumpyKernel(lambda x: np.max(x, axis=axes, keepdims=keepdims))


@lower.register(ops.ArgMax, NumpyBackend)
def _(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
    axis, keepdims = op.axis, op.keepdims
    return NumpyKernel(
        lambda x: np.argmax(x, axis=axis, keepdims=keepdims).astype(np.int32))
