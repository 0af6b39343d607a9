"""numpy kernels of the attention ops: the reference's materialised softmax, as it is.

The T x S scores are whole arrays here (BLAS does the products); a CPU has the memory,
and this keeps the numpy backend equal to the oracle by construction.
"""

from __future__ import annotations

from pyasg.asg import ops
from pyasg.kernels import lower
from pyasg.kernels.numpy.backend import NumpyBackend, NumpyKernel
from pyasg.kernels.reference.attention import KERNELS


@lower.register(ops.Attention, NumpyBackend)
@lower.register(ops.AttentionLSE, NumpyBackend)
@lower.register(ops.AttentionGradQ, NumpyBackend)
@lower.register(ops.AttentionGradK, NumpyBackend)
@lower.register(ops.AttentionGradV, NumpyBackend)
@lower.register(ops.AttentionGradScores, NumpyBackend)
def _(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
    kernel = KERNELS[type(op)]
    return NumpyKernel(lambda *arrays: kernel(op, *arrays))
