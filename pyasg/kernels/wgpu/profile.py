"""The wgpu backend's profiler: the GPU time of every dispatch of one executable.

Three methods, the first the adapter allows being the default:

- ``timestamps`` (device features "timestamp-query" and wgpu-native's
  "timestamp-query-inside-passes"): the executable's clears and dispatches are
  recorded in its own order and compute passes, with a GPU timestamp written at the
  start of each pass and after every dispatch. A dispatch's time is from the
  timestamp before it to the one after it: from when the GPU had finished the work
  before it (its barrier included) to when it finished this one. Within a pass these
  intervals tile the GPU's time exactly; the span is the first to the last timestamp.
- ``pass-timestamps`` (standard WebGPU "timestamp-query"): each dispatch in a compute
  pass of its own, its time from the pass's beginning to its end timestamp. The gaps
  between passes lie in the span, in no dispatch.
- ``isolated`` (no feature needed): each dispatch alone, submitted and waited for,
  once and as `copies` back to back in one pass (enough for about 2 ms); its time
  is the slope, (copies' time - one's time) / (copies - 1), each the fastest of
  `repeat` rounds, so the submission's own cost drops out (where noise makes the
  slope <= 0: one run less an empty submission, at least the clock's resolution).
  Caches are warm and nothing overlaps it, so the sum estimates the GPU time, it is
  not a part of the step: rank by it, do not add it up.

Timestamps are read in ticks and scaled by the queue's timestamp period (wgpu-native's
`wgpuQueueGetTimestampPeriod`; 1.0 ns on NVIDIA and on lavapipe).

Every method also times plain calls of the executable: the step is a call until the
GPU has finished it (a 4-byte read-back waits for the queue), the host time the call
until it returns (recording and submitting). Arguments are uploaded once before, as a
training loop keeps its parameters on the GPU. Timed replays record only the clears
and dispatches; input and output copies lie in the step, in no node. Figures are
medians over `repeat` rounds (a GPU's clock varies both ways, unlike a busy CPU's
delays), except isolated dispatches' fastest rounds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection, Sequence
from typing import Any

import numpy as np

from pyasg.errors import BackendError
from pyasg.kernels.timing import KernelTime, Timing, median
from pyasg.kernels.wgpu.array import DeviceArray, create_buffer
from pyasg.kernels.wgpu.device import adapter_name, get_adapter, get_device
from pyasg.kernels.wgpu.encode import Clear, Run
from pyasg.kernels.wgpu.executable import WgpuExecutable

#: method -> the device features it needs, in order of preference (the first the device
#: has is the default).
METHODS: dict[str, tuple[str, ...]] = {
    "timestamps": ("timestamp-query", "timestamp-query-inside-passes"),
    "pass-timestamps": ("timestamp-query",),
    "isolated": (),
}

MEASURES = {
    "timestamps": "a dispatch's time is the GPU time between the timestamps written before "
                  "and after it inside the executable's own compute passes, median over rounds",
    "pass-timestamps": "a dispatch's time is the GPU time from the beginning to the end of "
                       "a compute pass holding only it, median over rounds",
    "isolated": "a dispatch's time is its wall time run alone (the slope from one to many "
                "copies in a submission, waited for, fastest of the rounds); warm caches, "
                "no overlap: an estimate, not a part of the step",
}

#: Queries per query set (wgpu-core's limit is 4096).
QUERY_SET_SIZE = 4096
#: An isolated round lasts about this long: enough copies that the submission's own
#: cost and its jitter are small beside the dispatches.
ISOLATED_ROUND_S = 2e-3
MAX_COPIES = 256


def best_method(features: Collection[str]) -> str:
    """The first method of `METHODS` whose device features are all in `features`.

    >>> best_method({"timestamp-query"}), best_method(set())
    ('pass-timestamps', 'isolated')
    """
    return next(m for m, needs in METHODS.items() if all(f in features for f in needs))


def check_method(method: str, features: Collection[str], device: str) -> None:
    """Raise `BackendError` when `device` lacks a feature that `method` needs.

    >>> check_method("timestamps", {"timestamp-query"}, "a GPU")
    Traceback (most recent call last):
    ...
    pyasg.errors.BackendError: profiling by timestamps needs the device feature(s) \
timestamp-query-inside-passes, which a GPU does not offer; use pass-timestamps or isolated
    """
    missing = [f for f in METHODS[method] if f not in features]
    if missing:
        others = [m for m in METHODS if m != method and all(f in features for f in METHODS[m])]
        raise BackendError(f"profiling by {method} needs the device feature(s) "
                           f"{', '.join(missing)}, which {device} does not offer; use "
                           f"{' or '.join(others)}", None)


def dispatch_owners(executable: WgpuExecutable) -> list[int]:
    """The node id of each step of the executable's plan (clears and dispatches alike)."""
    return [step.node for step in executable._steps]


class Fence:
    """Waits until the GPU has finished all submitted work: a 4-byte read-back (wgpu-py
    0.32's on_submitted_work_done_sync fails on wgpu-native)."""

    def __init__(self) -> None:
        self.device = get_device()
        self.buffer = create_buffer(4)

    def wait(self) -> None:
        self.device.queue.read_buffer(self.buffer, 0, 4)


def timestamp_period(device: Any) -> float:
    """Nanoseconds per timestamp tick of the device's queue (WebGPU's 1.0 where the
    native call is not there)."""
    try:
        from wgpu.backends.wgpu_native._ffi import lib  # the optional `wgpu` package
    except ImportError:  # pragma: no cover - not wgpu-native
        return 1.0
    return float(lib.wgpuQueueGetTimestampPeriod(device.queue._internal))


class Stamps:
    """Timestamp queries over as many query sets as needed, resolved into one buffer;
    `take()` hands out the next one, `reset()` starts a new round."""

    def __init__(self, device: Any, count: int) -> None:
        import wgpu  # the optional `wgpu` package, there whenever a device is

        self.device = device
        sets = math.ceil(max(count, 1) / QUERY_SET_SIZE)
        self.sets = [device.create_query_set(type="timestamp", count=QUERY_SET_SIZE)
                     for _ in range(sets)]
        self.resolved = device.create_buffer(
            size=sets * QUERY_SET_SIZE * 8,
            usage=wgpu.BufferUsage.QUERY_RESOLVE | wgpu.BufferUsage.COPY_SRC)
        self.period = timestamp_period(device)
        self.used = 0

    def reset(self) -> None:
        self.used = 0

    def take(self) -> tuple[int, Any, int]:
        """(number, query set, index in it) of the next unused timestamp."""
        k, self.used = self.used, self.used + 1
        return k, self.sets[k // QUERY_SET_SIZE], k % QUERY_SET_SIZE

    def resolve(self, encoder: Any) -> None:
        for s, query_set in enumerate(self.sets):
            n = min(QUERY_SET_SIZE, self.used - s * QUERY_SET_SIZE)
            if n > 0:
                encoder.resolve_query_set(query_set, 0, n, self.resolved, s * QUERY_SET_SIZE * 8)

    def read(self) -> np.ndarray:
        """Every used timestamp, in nanoseconds from the first (waits for the GPU)."""
        raw = self.device.queue.read_buffer(self.resolved, 0, max(self.used, 1) * 8)
        ticks = np.frombuffer(raw, np.uint64)[:self.used].astype(np.int64)
        return (ticks - ticks[:1]).astype(np.float64) * self.period


def stamps_needed(steps: Sequence[tuple], method: str) -> int:
    """Timestamps one replay writes: two per dispatch (pass-timestamps), or one per
    dispatch and one per compute pass (timestamps)."""
    dispatches = [isinstance(s, Run) for s in steps]
    if method == "pass-timestamps":
        return 2 * sum(dispatches)
    passes = sum(d and (k == 0 or not dispatches[k - 1]) for k, d in enumerate(dispatches))
    return sum(dispatches) + passes


def _record(steps: Sequence[tuple], encoder: Any, begin: Callable[[], Any],
            after_dispatch: Callable[[Any], None], pass_per_dispatch: bool) -> None:
    """Record the plan's clears and dispatches into `encoder` as the executable does
    (`pass_per_dispatch`: a pass for each dispatch); `begin()` opens a pass,
    `after_dispatch(pass)` runs after each dispatch."""
    compute = None
    for step in steps:
        if isinstance(step, Clear):
            if compute is not None:
                compute.end()
                compute = None
            encoder.clear_buffer(step.buffer)
            continue
        if compute is None:
            compute = begin()
        compute.set_pipeline(step.pipeline)
        compute.set_bind_group(0, step.bind_group)
        compute.dispatch_workgroups(*step.workgroups)
        after_dispatch(compute)
        if pass_per_dispatch:
            compute.end()
            compute = None
    if compute is not None:
        compute.end()


def timestamp_round(steps: Sequence[tuple], method: str, stamps: Stamps) -> tuple[list[float],
                                                                               float]:
    """(seconds of each dispatch, span seconds) of one timestamped replay of `steps`."""
    from wgpu.backends.wgpu_native import extras  # the optional `wgpu` package

    device = stamps.device
    stamps.reset()
    encoder = device.create_command_encoder()
    marks: list[tuple[int, int]] = []  # (timestamp before, timestamp after) per dispatch
    last = [0]

    def write(compute: Any) -> int:
        k, query_set, index = stamps.take()
        extras.write_timestamp(compute, query_set, index)
        return k

    def begin_inside() -> Any:
        compute = encoder.begin_compute_pass()
        last[0] = write(compute)
        return compute

    def after_inside(compute: Any) -> None:
        marks.append((last[0], write(compute)))
        last[0] = marks[-1][1]

    def begin_pass() -> Any:
        (a, query_set, index), (b, _, _) = stamps.take(), stamps.take()  # a is even: one set
        marks.append((a, b))
        return encoder.begin_compute_pass(timestamp_writes={
            "query_set": query_set, "beginning_of_pass_write_index": index,
            "end_of_pass_write_index": index + 1})

    if method == "pass-timestamps":
        _record(steps, encoder, begin_pass, lambda compute: None, pass_per_dispatch=True)
    else:
        _record(steps, encoder, begin_inside, after_inside, pass_per_dispatch=False)
    stamps.resolve(encoder)
    device.queue.submit([encoder.finish()])
    ns = stamps.read()
    seconds = [float(ns[b] - ns[a]) * 1e-9 for a, b in marks]
    return seconds, float(ns.max() - ns.min()) * 1e-9 if len(ns) else 0.0


#: The wall clock's resolution: the least time a dispatch is reported to take.
RESOLUTION = time.get_clock_info("perf_counter").resolution


def _isolated(executable: WgpuExecutable, fence: Fence, repeat: int) -> list[float]:
    """Seconds of each dispatch, run alone (see the module docstring): the slope between
    one copy and `copies` copies in a submission, the fastest of `repeat` rounds each
    (waiting adds only delay, so the fastest round is the one nearest the GPU's time)."""
    device = get_device()
    clock = time.perf_counter

    def submission(step: tuple | None, copies: int) -> float:
        encoder = device.create_command_encoder()
        compute = encoder.begin_compute_pass()
        if step is not None:
            compute.set_pipeline(step.pipeline)
            compute.set_bind_group(0, step.bind_group)
            for _ in range(copies):
                compute.dispatch_workgroups(*step.workgroups)
        compute.end()
        commands = encoder.finish()
        start = clock()
        device.queue.submit([commands])
        fence.wait()
        return clock() - start

    def fastest(step: tuple | None, copies: int) -> float:
        return min(submission(step, copies) for _ in range(repeat))

    empty = fastest(None, 0)
    seconds = []
    for step in executable._steps:
        if not isinstance(step, Run):
            continue
        once = fastest(step, 1)
        copies = min(MAX_COPIES, math.ceil(ISOLATED_ROUND_S / max(once - empty, 1e-7)))
        slope = (fastest(step, copies) - once) / (copies - 1) if copies > 1 else 0.0
        # a slope <= 0 (the copies ran no slower than one: noise above the dispatch's
        # own time) says nothing: then the single run less an empty submission, and at
        # least the clock's resolution (a dispatch never takes no time)
        seconds.append(max(slope if slope > 0 else once - empty, RESOLUTION))
    return seconds


def time_executable(executable: WgpuExecutable, arrays: Sequence[Any], *, repeat: int = 10,
                    warmup: int = 2, method: str | None = None) -> Timing:
    """Time every dispatch of `executable` on `arrays` (see the module docstring).

    `method`: one of `METHODS` (default: the `best_method` the device's features allow);
    one whose features the device lacks raises `BackendError` naming them.
    """
    device = get_device()
    method = method or best_method(device.features)
    check_method(method, device.features, adapter_name(get_adapter()))
    owners = dispatch_owners(executable)
    args = [a if isinstance(a, DeviceArray) else DeviceArray.from_numpy(a) for a in arrays]
    fence = Fence()
    stamps = (None if method == "isolated" else
              Stamps(device, stamps_needed(executable._steps, method)))
    clock = time.perf_counter
    steps, hosts, spans, rounds = [], [], [], []
    for k in range(warmup + repeat):
        start = clock()
        executable(*args)
        submitted = clock()
        fence.wait()
        done = clock()
        if stamps is not None:
            per_dispatch, span = timestamp_round(executable._steps, method, stamps)
        if k >= warmup:
            steps.append(done - start)
            hosts.append(submitted - start)
            if stamps is not None:
                rounds.append(per_dispatch)
                spans.append(span)
    if method == "isolated":
        per_step = _isolated(executable, fence, repeat)
    else:
        per_step = [median(column) for column in zip(*rounds)]
    dispatching = [i for i, step in zip(owners, executable._steps) if isinstance(step, Run)]
    kernels: dict[int, list[float]] = {}
    for node, seconds in zip(dispatching, per_step):
        kernels.setdefault(node, []).append(seconds)
    for node in owners:  # a node whose only step is a clear still has a row
        kernels.setdefault(node, [])
    records = tuple(KernelTime(node, len(times), sum(times)) for node, times in kernels.items())
    return Timing(method, MEASURES[method], adapter_name(get_adapter()), records,
                  median(steps), span_seconds=median(spans) if spans else None,
                  host_seconds=median(hosts), repeat=repeat, warmup=warmup)
