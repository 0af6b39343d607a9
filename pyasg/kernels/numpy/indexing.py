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

    def scatter_add(updates, idx, out=None):  # noqa: ANN001, ANN202
        if out is None:
            out = np.empty(shape, dtype)
        out.fill(0)
        np.add.at(out, lead + (idx,), updates)
        return out

    return NumpyKernel(scatter_add, writes_out=True, inplace=False)
