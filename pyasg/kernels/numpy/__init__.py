"""The numpy backend: the reference every other backend is compared against."""

from pyasg.kernels.numpy import conv, elementwise, indexing, linalg, random, reductions, shape
from pyasg.kernels.numpy.backend import NumpyBackend, NumpyKernel, evaluate

__all__ = ["NumpyBackend", "NumpyKernel", "evaluate", "conv", "elementwise", "indexing", "linalg",
           "random", "reductions", "shape"]
