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
    # the shape rule's literal range (a stop of -1 going down means "past index 0"): its
    # count n, then a Python slice of exactly n elements from start (never from the end)
    def axis_slice(a: int, b: int, c: int) -> slice:
        n = len(range(a, b, c))
        if n == 0:
            return slice(0, 0)
        stop = a + n * c
        return slice(a, stop if stop >= 0 else None, c)

    index = tuple(axis_slice(a, b, c) for a, b, c in zip(op.starts, op.stops, op.steps))
    return NumpyKernel(lambda x: x[index], view=True)


@lower.register(ops.Pad, NumpyBackend)
def _(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
    shape, dtype, value = out_type.shape, np.dtype(out_type.dtype), op.value
    index = tuple(slice(lo, lo + (d - 1) * (mid + 1) + 1, mid + 1) if d else slice(0, 0)
                  for d, (lo, _, mid) in zip(in_types[0].shape, op.widths))

    # the fill value in the output's dtype, converted once as np.full does (-1.0 in a
    # uint32 pad wraps around, as everywhere in numpy)
    fill = np.full((), value, dtype=dtype)

    def pad(x, out=None):  # noqa: ANN001, ANN202
        if out is None:
            out = np.empty(shape, dtype=dtype)
        out.fill(fill)
        out[index] = x
        return out

    return NumpyKernel(pad, writes_out=True, inplace=False)


@lower.register(ops.Concatenate, NumpyBackend)
def _(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
    axis = op.axis

    def concatenate(*xs, out=None):  # noqa: ANN001, ANN002, ANN202
        return np.concatenate(xs, axis=axis, out=out)

    return NumpyKernel(concatenate, writes_out=True, inplace=False)


@lower.register(ops.StopGradient, NumpyBackend)
def _(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
    return NumpyKernel(lambda x: x, view=True)
