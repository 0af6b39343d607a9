"""numpy kernels of gather (take) and scatter-add (repeated indices accumulate)."""

from __future__ import annotations

import numpy as np

from pyasg.asg import ops
from pyasg.kernels import lower
from pyasg.kernels.numpy.backend import NumpyBackend, NumpyKernel


@lower.register(ops.Gather, NumpyBackend)
def _(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
    axis = op.axis

    def gather(x, idx, out=None):  # noqa: ANN001, ANN202
        return np.take(x, idx, axis=axis, out=out)

    return NumpyKernel(gather, writes_out=True, inplace=False)


@lower.register(ops.ScatterAdd, NumpyBackend)
def _(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
    shape, dtype = out_type.shape, np.dtype(out_type.dtype)
    lead = (slice(None),) * op.axis

    # along the only axis of a float result, bincount (float64 sums, rounded once) is
    # several times faster than np.add.at: the max-pool and embedding gradients
    flat = op.axis == 0 and len(in_types[0].shape) == len(in_types[1].shape) and dtype.kind == "f"

    def scatter_add(updates, idx, out=None):  # noqa: ANN001, ANN202
        if out is None:
            out = np.empty(shape, dtype)
        if flat and idx.size:
            lo, hi = idx.min(), idx.max()
            if lo < -shape[0] or hi >= shape[0]:
                raise IndexError(f"scatter_add: index out of range for size {shape[0]}")
            if lo < 0:  # numpy's negative indices count from the end
                idx = np.where(idx < 0, idx + shape[0], idx)
            np.copyto(out, np.bincount(idx.ravel(), weights=updates.ravel(),
                                       minlength=shape[0]), casting="unsafe")
            return out
        out.fill(0)
        np.add.at(out, lead + (idx,), updates)
        return out

    return NumpyKernel(scatter_add, writes_out=True, inplace=False)
