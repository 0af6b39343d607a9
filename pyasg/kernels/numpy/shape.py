"""numpy kernels of the shape ops; most return views of their input."""

from __future__ import annotations

import numpy as np

from pyasg.asg import ops
from pyasg.kernels import lower
from pyasg.kernels.numpy.backend import NumpyBackend, NumpyKernel


@lower.register(ops.Reshape, NumpyBackend)
def _(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
    shape = out_type.shape
    return NumpyKernel(lambda x: np.reshape(x, shape), view=True)


@lower.register(ops.Transpose, NumpyBackend)
def _(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
    perm = op.perm
    return NumpyKernel(lambda x: np.transpose(x, perm), view=True)


@lower.register(ops.BroadcastTo, NumpyBackend)
def _(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
    shape = op.shape
    return NumpyKernel(lambda x: np.broadcast_to(x, shape), view=True)


@lower.register(ops.Slice, NumpyBackend)
def _(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
    index = tuple(slice(a, b if b >= 0 else None, c)
                  for a, b, c in zip(op.starts, op.stops, op.steps))
    return NumpyKernel(lambda x: x[index], view=True)


@lower.register(ops.Pad, NumpyBackend)
def _(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
    shape, dtype, value = out_type.shape, np.dtype(out_type.dtype), op.value
    index = tuple(slice(lo, lo + (d - 1) * (mid + 1) + 1, mid + 1) if d else slice(0, 0)
                  for d, (lo, _, mid) in zip(in_types[0].shape, op.widths))

    def pad(x):  # noqa: ANN001, ANN202
        out = np.full(shape, value, dtype=dtype)
        out[index] = x
        return out

    return NumpyKernel(pad)


@lower.register(ops.Concatenate, NumpyBackend)
def _(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
    axis = op.axis
    return NumpyKernel(lambda *xs: np.concatenate(xs, axis=axis))


@lower.register(ops.StopGradient, NumpyBackend)
def _(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
    return NumpyKernel(lambda x: x, view=True)
