"""The numpy backend's profiler: the wall time of every kernel call of one executable.

The instrumented run is the executable's own generated function, built again with
each kernel replaced by a timed wrapper (`perf_counter` before and after the call)
and its own memory plan (a fresh set of the same static buffers): the same code, the
same order, the same `out=` buffers and `del`s. Rounds alternate between a plain call
of the executable (the step time) and an instrumented run (the kernel times), and
each figure (a kernel's, the step's, the instrumented run's) is the fastest of its
rounds: other processes on a CPU only ever add time to a measurement (timeit's rule),
and the fastest round is the one they touched least.

What lies in no kernel: the generated code's own statements (`del`, copies of
outputs that would alias an argument), the call, and the timers' own cost, about a
tenth of a microsecond per kernel.

>>> import pyasg, numpy as np
>>> ex = pyasg.jit_to_backend(pyasg.make_graph(lambda x: (x @ x.T).sum())(np.ones((2, 3))))
>>> t = time_executable(ex, [np.ones((2, 3))], repeat=3, warmup=1)
>>> [k.node for k in t.kernels] == list(ex.kernels), t.method
(True, 'instrumented')
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pyasg.errors import BackendError
from pyasg.kernels.numpy.executable import Executable
from pyasg.kernels.timing import KernelTime, Timing

#: The methods this backend times with (the first is the default).
METHODS: tuple[str, ...] = ("instrumented",)

MEASURES = ("a kernel's time is the wall time of its call in the executable's own generated "
            "code (perf_counter around each call), the fastest of the rounds; the step is "
            "the fastest plain call")


def _timed(fn: Callable[..., Any], slot: int, elapsed: list[float]) -> Callable[..., Any]:
    """`fn`, writing the seconds of each call into `elapsed[slot]`."""
    clock = time.perf_counter

    def timed(*args: Any, **kwargs: Any) -> Any:
        start = clock()
        out = fn(*args, **kwargs)
        elapsed[slot] = clock() - start
        return out

    return timed


def instrumented(executable: Executable) -> tuple[Callable[..., tuple], list[float]]:
    """(run, elapsed): the executable's generated function with every kernel timed; after
    a call, `elapsed[k]` is the seconds of the k-th kernel of `executable.kernels`.

    It reads the executable's compiled plan (its generated function's maker, scope and
    buffers) and changes nothing of it.
    """
    try:
        scope, make, buffers = executable._scope, executable._make, executable._new_buffers()
    except AttributeError as e:  # the executable's layout changed under the profiler
        raise BackendError(f"the numpy profiler cannot read {executable.name}'s compiled "
                           f"plan ({e}); pyasg.kernels.numpy.profile needs updating") from None
    elapsed = [0.0] * len(executable.kernels)
    timed_scope = dict(scope)
    for slot, node in enumerate(executable.kernels):
        timed_scope[f"k{node}"] = _timed(scope[f"k{node}"], slot, elapsed)
    return make(**timed_scope, **buffers), elapsed


def time_executable(executable: Executable, arrays: Sequence[np.ndarray], *, repeat: int = 10,
                    warmup: int = 2, method: str | None = None) -> Timing:
    """Time every kernel of `executable` on `arrays` (see the module docstring).

    `warmup` rounds run first, untimed; then `repeat` rounds, each one plain call and
    one instrumented run.
    """
    del method  # one method: METHODS
    run, elapsed = instrumented(executable)
    clock = time.perf_counter
    steps: list[float] = []
    spans: list[float] = []
    rounds: list[list[float]] = []
    for k in range(warmup + repeat):
        start = clock()
        executable(*arrays)
        step = clock() - start
        start = clock()
        run(*arrays)
        span = clock() - start
        if k >= warmup:
            steps.append(step)
            spans.append(span)
            rounds.append(list(elapsed))
    per_kernel = [min(column) for column in zip(*rounds)]
    kernels = tuple(KernelTime(node, 1, seconds)
                    for node, seconds in zip(executable.kernels, per_kernel))
    device = f"numpy {np.__version__} on the CPU ({platform.machine() or 'unknown'})"
    return Timing("instrumented", MEASURES, device, kernels, min(steps),
                  span_seconds=min(spans), repeat=repeat, warmup=warmup)
