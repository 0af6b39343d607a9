"""The numpy backend: one kernel per op on the CPU, fused groups as generated Python,
and the executable that runs a whole graph with buffers planned by liveness.

Importing this package imports every kernel module, so the backend is complete by
construction.
"""

from pyasg.kernels.numpy import (
    attention,
    control,
    conv,
    elementwise,
    fused,
    indexing,
    linalg,
    random,
    reductions,
    shape,
)
from pyasg.kernels.numpy.backend import NumpyBackend, NumpyKernel, evaluate
from pyasg.kernels.numpy.executable import Executable

__all__ = ["Executable", "NumpyBackend", "NumpyKernel", "evaluate", "attention", "control", "conv",
           "elementwise",
           "fused", "indexing", "linalg", "random", "reductions", "shape"]
