"""The wgpu backend object and the kernel record every WGSL kernel returns.

A kernel is a list of dispatches. Each dispatch is one WGSL compute shader, its
workgroup counts, and what its bindings are, in binding order: `("in", k)` the
node's k-th input, `("out",)` its output, `("tmp", k)` the kernel's k-th scratch
buffer. Shapes are static, so they are baked into the shader source as constants;
pipelines are cached by source text.
"""

from __future__ import annotations

from dataclasses import dataclass


class WgpuBackend:
    """Runs graphs on a GPU through WebGPU (Vulkan, Metal, DX12, or lavapipe)."""

    name = "wgpu"
    #: Dtypes the GPU lacks, converted on the way in by `pyasg.jit` (documented).
    converts = {"float64": "float32", "int64": "int32"}

    def compile(self, graph, name: str = "graph"):  # noqa: ANN001, ANN201
        from pyasg.kernels.wgpu.executable import WgpuExecutable

        return WgpuExecutable(graph, self, name)


@dataclass(frozen=True)
class Dispatch:
    """One compute shader run: source, workgroup counts (x, y, z), bindings in order."""

    source: str
    workgroups: tuple[int, int, int]
    bindings: tuple[tuple, ...]


@dataclass(frozen=True)
class WgpuKernel:
    """How one node runs on the GPU.

    `alias`: no dispatch; the output is the first input's buffer (reshape).
    `zero_output`: the output is cleared before the dispatches (scatter-add).
    `scratch`: byte sizes of scratch buffers the dispatches use as ("tmp", k).
    """

    dispatches: tuple[Dispatch, ...] = ()
    scratch: tuple[int, ...] = ()
    alias: bool = False
    zero_output: bool = False
