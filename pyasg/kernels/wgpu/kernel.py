"""The kernel record every WGSL kernel returns: a list of dispatches.

A kernel is a list of dispatches. Each dispatch is one WGSL compute shader, its
workgroup counts, and what its bindings are, in binding order: `("in", k)` the
node's k-th input, `("out",)` its output, `("tmp", k)` the kernel's k-th scratch
buffer. Shapes are static, so they are baked into the shader source as constants;
pipelines are cached by source text.
"""

from __future__ import annotations

from dataclasses import dataclass


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
    `check`: what a nonzero word in the node's ("status",) binding means (a shader
    cannot raise: it records a bad input there, and the executable raises this when a
    result of that call is read), or None for a kernel without one.
    """

    dispatches: tuple[Dispatch, ...] = ()
    scratch: tuple[int, ...] = ()
    alias: bool = False
    zero_output: bool = False
    check: str | None = None
