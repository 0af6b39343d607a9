"""Replaying a compiled step's commands with as little host work per command as possible.

A step's commands are fixed when it is compiled (pipelines, bind groups, workgroup
counts, buffer clears), so a call only replays them into a command encoder.
wgpu-py's methods check and convert their arguments on every call: about 10 µs per
dispatch (set pipeline, set bind group, dispatch), measured on lavapipe, which for
a training step of 800 dispatches is 8 ms of host time before the GPU gets anything.
wgpu-native's C functions, called with the handles taken once at compile time, do
the same in about 2 µs. `Replay` uses them where this wgpu-py exposes them (`RAW`)
and its public methods otherwise, with the same commands either way.

>>> Run(node=3, pipeline=None, bind_group=None, workgroups=(1, 1, 1)).node
3
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

try:  # wgpu-native's C functions, behind wgpu-py's public API
    from wgpu.backends.wgpu_native._api import ffi as _ffi
    from wgpu.backends.wgpu_native._api import lib as _lib

    RAW = all(hasattr(_lib, f) for f in (
        "wgpuComputePassEncoderSetPipeline", "wgpuComputePassEncoderSetBindGroup",
        "wgpuComputePassEncoderDispatchWorkgroups", "wgpuCommandEncoderCopyBufferToBuffer"))
except ImportError:  # another wgpu-py layout: the public methods still work
    RAW = False


@dataclass(frozen=True)
class Run:
    """One dispatch of node `node`'s kernel: pipeline, bind group, workgroup counts."""

    node: int
    pipeline: Any
    bind_group: Any
    workgroups: tuple[int, int, int]


@dataclass(frozen=True)
class Clear:
    """Zero `buffer` before node `node`'s dispatches (a scatter-add's output)."""

    node: int
    buffer: Any


@dataclass(frozen=True)
class Host:
    """Node `node`'s kernel runs on the host: `run(inputs, output)` on the node's input
    buffers and its output buffer, after everything recorded before it has been
    submitted (a while_loop, which reads its predicate back each iteration)."""

    node: int
    run: Any
    inputs: tuple
    output: Any


Step = Run | Clear | Host


def _handle(obj: Any) -> Any:
    return obj._internal


class Replay:
    """A step's commands, ready to be recorded again and again (see the module doc)."""

    def __init__(self, steps: Sequence[Step], raw: bool = RAW) -> None:
        self.steps = tuple(steps)
        self.raw = raw and all(hasattr(s.pipeline, "_internal") and
                               hasattr(s.bind_group, "_internal")
                               for s in self.steps if isinstance(s, Run))
        # consecutive runs form one compute pass; a clear ends it (clears are encoder
        # commands, not pass commands)
        passes: list[tuple] = []
        for s in self.steps:
            if isinstance(s, Clear):
                passes.append(("clear", s.buffer))
            elif isinstance(s, Host):
                passes.append(("host", s))
            else:
                if not passes or passes[-1][0] != "pass":
                    passes.append(("pass", []))
                item = ((_handle(s.pipeline), _handle(s.bind_group)) if self.raw else
                        (s.pipeline, s.bind_group))
                passes[-1][1].append((*item, *s.workgroups))
        self._passes = tuple((k, tuple(v) if k == "pass" else v) for k, v in passes)

    @property
    def dispatch_count(self) -> int:
        return sum(isinstance(s, Run) for s in self.steps)

    def record(self, encoder: Any, resubmit: Any = None) -> Any:
        """Record every command into `encoder` (a GPUCommandEncoder); returns the encoder
        the caller records the rest into. At a host step, `resubmit(encoder)` submits
        what was recorded and gives a new encoder, and the step runs in between."""
        if self.raw:
            set_pipeline = _lib.wgpuComputePassEncoderSetPipeline
            set_group = _lib.wgpuComputePassEncoderSetBindGroup
            dispatch = _lib.wgpuComputePassEncoderDispatchWorkgroups
            null = _ffi.NULL
        for kind, what in self._passes:
            if kind == "clear":
                encoder.clear_buffer(what)
                continue
            if kind == "host":
                encoder = resubmit(encoder)
                what.run(what.inputs, what.output)
                continue
            compute = encoder.begin_compute_pass()
            if self.raw:
                h = compute._internal
                for pipe, group, x, y, z in what:
                    set_pipeline(h, pipe)
                    set_group(h, 0, group, 0, null)
                    dispatch(h, x, y, z)
            else:
                for pipe, group, x, y, z in what:
                    compute.set_pipeline(pipe)
                    compute.set_bind_group(0, group)
                    compute.dispatch_workgroups(x, y, z)
            compute.end()
        return encoder


def copier(encoder: Any) -> Any:
    """`copy(src, dst, nbytes, dst_offset=0)` recording buffer-to-buffer copies into
    `encoder`."""
    if RAW and hasattr(encoder, "_internal"):
        h, copy = encoder._internal, _lib.wgpuCommandEncoderCopyBufferToBuffer
        return lambda src, dst, nbytes, at=0: copy(h, src._internal, 0, dst._internal, at,
                                                   nbytes)
    return lambda src, dst, nbytes, at=0: encoder.copy_buffer_to_buffer(src, 0, dst, at, nbytes)
