"""numpy kernel of matmul (BLAS through np.matmul, written into planned buffers)."""

from __future__ import annotations

import numpy as np

from pyasg.asg import ops
from pyasg.kernels import lower
from pyasg.kernels.numpy.backend import NumpyBackend, NumpyKernel


@lower.register(ops.MatMul, NumpyBackend)
def _(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
    return NumpyKernel(np.matmul, writes_out=True)
