"""What a backend's profiler returns: the measured times of one executable's kernels.

Each backend folder has a `profile` module whose `time_executable(executable, arrays,
repeat=, warmup=, method=)` runs a compiled executable and returns a `Timing`: one
`KernelTime` per kernel (a graph node that runs code: numpy a kernel call, wgpu one
or more dispatches), in run order, and the step's wall times. `pyasg.compile.profile`
turns it into the report; the record says in words (`measures`) what its seconds are.

>>> t = Timing("instrumented", "wall time of each kernel call", "numpy",
...            (KernelTime(3, 1, 0.002), KernelTime(5, 1, 0.001)), step_seconds=0.004)
>>> [k.node for k in t.kernels], t.step_seconds
([3, 5], 0.004)
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class KernelTime:
    """One node's kernel: its node id, how many dispatches (numpy: calls) it makes per
    step, and its seconds per step over the timed rounds (numpy: the fastest round;
    wgpu: the median; `Timing.measures` says which)."""

    node: int
    dispatches: int
    seconds: float


@dataclass(frozen=True)
class Timing:
    """What one backend measured of one executable (see the module docstring).

    `step_seconds`: the wall time of a plain, uninstrumented call until its results
    are ready, by the same statistic over rounds as the kernels. `span_seconds`: the
    wall (numpy: instrumented run) or GPU (wgpu timestamps: first to last timestamp)
    time that the kernel times are parts of, or None where the method has none.
    `host_seconds`: wgpu's time to encode and submit a plain call (None on numpy,
    where the host is the device).
    """

    method: str
    measures: str
    device: str
    kernels: tuple[KernelTime, ...]
    step_seconds: float
    span_seconds: float | None = None
    host_seconds: float | None = None
    repeat: int = 1
    warmup: int = 0


def median(values: Sequence[float]) -> float:
    """The median of timed rounds (robust to a round slowed by other work).

    >>> median([3.0, 1.0, 100.0])
    3.0
    """
    return float(statistics.median(values))
