"""The wgpu backend: WGSL kernels through WebGPU (Vulkan, Metal, DX12, or lavapipe).

Its fusion options come from the device: a fused kernel binds at most the adapter's
storage buffers per shader stage (one of them the output); matmuls read their
operands through views and store through epilogues; small values read by several
groups are recomputed in each.
"""

from __future__ import annotations

from collections.abc import Collection

from pyasg.asg.graph import Graph
from pyasg.compile.protocol import Backend, FuseOptions
from pyasg.kernels.wgpu.array import DeviceArray
from pyasg.kernels.wgpu.device import get_device
from pyasg.kernels.wgpu.executable import WgpuExecutable


class WgpuBackend(Backend):
    """Runs graphs on a GPU through WebGPU (Vulkan, Metal, DX12, or lavapipe)."""

    name = "wgpu"
    #: WebGPU has no 64-bit types: such values are computed in 32 bits (documented).
    converts = {"float64": "float32", "int64": "int32"}
    device_array = DeviceArray

    def fusion_options(self) -> FuseOptions:
        limit = int(get_device().limits.get("max-storage-buffers-per-shader-stage", 8))
        return FuseOptions(max_inputs=max(1, limit - 1), matmul_epilogue=True,
                           matmul_views=True, recompute_fraction=1 / 16)

    def compile(self, graph: Graph, name: str = "graph",
                donated: Collection[int] = ()) -> WgpuExecutable:
        return WgpuExecutable(graph, self, name, donated)
