"""The wgpu backend: WGSL kernels for every primitive, run through WebGPU.

Importing this module registers the kernels; it needs the `wgpu` package.
"""

from pyasg.kernels.wgpu import (  # noqa: F401  (importing registers the kernels)
    attention,
    control,
    conv,
    elementwise,
    fused,
    indexing,
    matmul,
    random,
    reductions,
    shape,
)
from pyasg.kernels.wgpu.array import COUNTERS, DeviceArray
from pyasg.kernels.wgpu.backend import WgpuBackend
from pyasg.kernels.wgpu.executable import WgpuExecutable
from pyasg.kernels.wgpu.kernel import Dispatch, WgpuKernel

__all__ = ["COUNTERS", "DeviceArray", "Dispatch", "WgpuBackend", "WgpuExecutable",
           "WgpuKernel"]
