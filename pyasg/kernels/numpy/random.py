"""numpy kernel of random_bits: the reference Threefry-2x32, already vectorised numpy."""

from __future__ import annotations

from pyasg.asg import ops
from pyasg.kernels import lower
from pyasg.kernels.numpy.backend import NumpyBackend, NumpyKernel
from pyasg.kernels.reference.random import random_bits


@lower.register(ops.RandomBits, NumpyBackend)
def _(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
    shape = op.shape
    return NumpyKernel(lambda key: random_bits(key, shape))
