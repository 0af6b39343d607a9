"""Timing one kernel on the device: its GPU seconds a run, for the tuner to compare candidates.

`device_seconds(kernel, workspace)` compiles the kernel's pipelines (through
`executable.pipeline`, whose cache the compiled step then reuses: the winner is never
compiled twice), binds the workspace's buffers, runs it once to warm up (a driver may
compile a pipeline at its first run: lavapipe does), once more to see how long a run
takes, then times `ROUNDS` rounds of back-to-back runs in one compute pass (as many runs
as fill about `ROUND_S` of device time, at most `MAX_REPS`; fewer rounds where the
tuner's budget would not allow them) and returns the fastest round's time a run: waiting
adds only delay, so the fastest round is the one nearest the device's time. A round is
timed by timestamps written at the beginning and the end of its pass where the device
has the "timestamp-query" feature (the GPU's own clock), else by the wall clock from
submission until the queue is done, less an empty submission's time.

The `Workspace` holds one product's buffers: every input binding sized to the
largest operand or output (a fused group's views and epilogue inputs never read
more), the output, and each candidate's scratch; zeros, whose products take as long
as any others'. Its buffers are the tuner's, not an executable's: they are made
directly on the device (not counted in `array.COUNTERS`) and dropped with it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from pyasg.kernels.wgpu.device import get_device
from pyasg.kernels.wgpu.kernel import WgpuKernel
from pyasg.kernels.wgpu.pipelines import pipeline
from pyasg.kernels.wgpu.profile import Fence, Stamps

#: Rounds a candidate is timed in, the fastest counting;
ROUNDS = 3
#: each about this much device time, in at most MAX_REPS runs.
ROUND_S = 1e-3
MAX_REPS = 64


class Workspace:
    """The buffers one product's candidates run on: `size(bound)` gives the bytes of an
    ("in", k) or ("out",) binding; ("tmp", j) takes the candidate kernel's scratch size."""

    def __init__(self, size: Callable[[tuple], int]) -> None:
        self.size = size
        self._buffers: dict[tuple, Any] = {}

    def buffer(self, bound: tuple, kernel: WgpuKernel) -> Any:
        """The buffer bound to `bound` in `kernel` (made once per binding and size)."""
        import wgpu  # the optional `wgpu` package, there whenever a device is

        nbytes = kernel.scratch[bound[1]] if bound[0] == "tmp" else self.size(bound)
        nbytes = max(4, (nbytes + 3) // 4 * 4)
        key = (bound, nbytes)
        if key not in self._buffers:
            self._buffers[key] = get_device().create_buffer(
                size=nbytes, usage=wgpu.BufferUsage.STORAGE | wgpu.BufferUsage.COPY_DST)
        return self._buffers[key]


class _Clock:
    """Times rounds of runs on the device (see the module docstring)."""

    def __init__(self) -> None:
        self.device = get_device()
        self.fence = Fence()
        self.stamps = Stamps(self.device, 2) if "timestamp-query" in self.device.features \
            else None
        self.empty = self._wall([], 0) if self.stamps is None else 0.0

    def round(self, runs: list[tuple], reps: int) -> float:
        """Seconds a run of `runs` (pipeline, bind group, workgroups), `reps` in a row."""
        if self.stamps is None:
            return max(self._wall(runs, reps) - self.empty, 0.0) / max(reps, 1)
        self.stamps.reset()
        (_, query_set, index), _ = self.stamps.take(), self.stamps.take()
        encoder = self.device.create_command_encoder()
        compute = encoder.begin_compute_pass(timestamp_writes={
            "query_set": query_set, "beginning_of_pass_write_index": index,
            "end_of_pass_write_index": index + 1})
        self._record(compute, runs, reps)
        compute.end()
        self.stamps.resolve(encoder)
        self.device.queue.submit([encoder.finish()])
        ns = self.stamps.read()
        return float(ns[1] - ns[0]) * 1e-9 / reps

    def _wall(self, runs: list[tuple], reps: int) -> float:
        encoder = self.device.create_command_encoder()
        compute = encoder.begin_compute_pass()
        self._record(compute, runs, reps)
        compute.end()
        commands = encoder.finish()
        start = time.perf_counter()
        self.device.queue.submit([commands])
        self.fence.wait()
        return time.perf_counter() - start

    @staticmethod
    def _record(compute: Any, runs: list[tuple], reps: int) -> None:
        for _ in range(reps):
            for pipe, group, workgroups in runs:
                compute.set_pipeline(pipe)
                compute.set_bind_group(0, group)
                compute.dispatch_workgroups(*workgroups)


_CLOCKS: list[_Clock] = []


def device_seconds(kernel: WgpuKernel, workspace: Workspace, budget_s: float = math.inf,
                   rounds: int = ROUNDS, round_s: float = ROUND_S) -> float:
    """Device seconds a run of `kernel` on `workspace`'s buffers (module docstring),
    timing as many rounds as fit `budget_s` after the warm-up (none: the time of the
    one run after it, on a device so slow that a run fills the budget).

    A pipeline that fails to compile raises `BackendError` (as `pipeline` does).
    """
    if not _CLOCKS:
        _CLOCKS.append(_Clock())
    clock = _CLOCKS[0]
    start = time.perf_counter()
    runs = []
    for d in kernel.dispatches:
        pipe = pipeline(d.source, "a matmul candidate being tuned")
        entries = []
        for b, bound in enumerate(d.bindings):
            buf = workspace.buffer(bound, kernel)
            entries.append({"binding": b, "resource": {"buffer": buf, "offset": 0,
                                                        "size": buf.size}})
        group = clock.device.create_bind_group(layout=pipe.get_bind_group_layout(0),
                                               entries=entries)
        runs.append((pipe, group, d.workgroups))
    clock.round(runs, 1)  # the warm-up: a driver may compile at first use (lavapipe does)
    warm = time.perf_counter()
    once = clock.round(runs, 1)  # says how many runs fill a round
    reps = max(1, min(MAX_REPS, math.ceil(round_s / max(once, 1e-7))))
    now = time.perf_counter()
    per_round = (now - warm) + once * (reps - 1)  # wall time: a submission costs too
    left = budget_s - (now - start)
    rounds = min(rounds, int(left // per_round)) if math.isfinite(left) else rounds
    if rounds < 1:
        return once
    return min(clock.round(runs, reps) for _ in range(rounds))
