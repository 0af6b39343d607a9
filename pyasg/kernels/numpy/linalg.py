"""numpy kernel of matmul (BLAS through np.matmul, written into planned buffers)."""

from __future__ import annotations

import numpy as np

from pyasg.asg import ops
from pyasg.kernels import lower
from pyasg.kernels.numpy.backend import NumpyBackend, NumpyKernel


@lower.register(ops.MatMul, NumpyBackend)
def _(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
    a, b = in_types
    if len(a.shape) <= 2 or len(b.shape) != 2:
        return NumpyKernel(np.matmul, writes_out=True)
    # [..., m, k] @ [k, n]: np.matmul would run one small GEMM per leading index; with
    # the leading dims folded into m (free for a C-contiguous operand) it is one GEMM
    rows, k, n = int(np.prod(a.shape[:-1])), a.shape[-1], b.shape[-1]
    shape = out_type.shape

    def matmul_folded(x, w, out=None):  # noqa: ANN001, ANN202
        if not x.flags.c_contiguous or (out is not None and not out.flags.c_contiguous):
            return np.matmul(x, w, out=out)
        if out is None:
            return np.matmul(x.reshape(rows, k), w).reshape(shape)
        np.matmul(x.reshape(rows, k), w, out=out.reshape(rows, n))
        return out

    return NumpyKernel(matmul_folded, writes_out=True)
