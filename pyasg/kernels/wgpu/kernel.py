"""The kernel record every WGSL kernel returns: a list of dispatches.

A kernel is a list of dispatches. Each dispatch is one WGSL compute shader, its
workgroup counts, and what its bindings are, in binding order: `("in", k)` the
node's k-th input, `("out",)` its output, `("tmp", k)` the kernel's k-th scratch
buffer. Shapes are static, so they are baked into the shader source as constants;
pipelines are cached by source text.

A kernel whose every dispatch is a `Part` (its generator's description of it, beside
the dispatch) can also run inside a bigger shader, on a range of its workgroups, next to
other kernels' parts: horizontal fusion (`horizontal.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pyasg.kernels.wgpu.codegen import WORKGROUP


@dataclass(frozen=True)
class Dispatch:
    """One compute shader run: source, workgroup counts (x, y, z), bindings in order."""

    source: str
    workgroups: tuple[int, int, int]
    bindings: tuple[tuple, ...]


@dataclass(frozen=True)
class Part:
    """One dispatch as its generator writes it, so that it can run alone or inside a
    shader merged with other kernels' parts (`horizontal.py`).

    `emit(sh)` asks `sh` (a `shader.Shader`, or a merged shader's view of itself for
    this part) for everything the dispatch uses, always by the names it returns, and
    returns the body of its entry point. With `threads` the body sees `i`, the flat
    index of its thread (one thread per element: no workgroup memory, no barrier);
    otherwise it sees `g`, the flat index of its workgroup (uniform: branching on it
    keeps barriers legal), and `lid`, the thread's index in the workgroup. It runs on
    `groups` workgroups of `size` threads.

    >>> Part.of_threads(lambda sh: "", 1000).groups
    4
    """

    emit: Callable[[Any], str]
    groups: int
    size: int = WORKGROUP
    threads: bool = False

    @classmethod
    def of_threads(cls, emit: Callable[[Any], str], threads: int,
                   size: int = WORKGROUP) -> Part:
        """A one-thread-per-element part covering `threads` threads (at least one group)."""
        return cls(emit, max(1, -(-threads // size)), size, threads=True)


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
    #: one `Part` per dispatch where each of them may run merged with other kernels'
    #: (empty: the kernel runs only as its dispatches)
    parts: tuple[Part, ...] = ()
    #: `host(input_buffers, output_buffer)`: the kernel runs on the host, between two
    #: submissions, instead of as dispatches (a while_loop: `encode.Host`)
    host: Any = None
