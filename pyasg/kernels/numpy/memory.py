"""The memory plan of a compiled graph: static buffers by liveness over the schedule, a report.

Every value a kernel writes with `out=` (a `writes_out` kernel) gets a buffer from a
pool, assigned at compile time by the shared liveness analysis and its interval
colouring (`pyasg.compile.liveness`): a buffer is free again once the last reader
of its storage (the value, and every view into it) has run, and is reused for a
later value of the same dtype, of any shape (a reshape view of it, made once). A
kernel marked `inplace` may write into the buffer of an input that dies at that
very node. Buffers are allocated once, when the executable is built.

Exceptions, so that callers and arguments are never surprised:

- graph outputs (and values an output is a view of) never live in the pool: they are
  allocated per call (`np.empty`, then `out=`), since the caller keeps them;
- inputs and constants are never written; an output that is one of them, or a view
  of one, is copied (results never alias arguments, as in JAX);
- kernels that cannot take `out=` allocate their result each call; those values are
  released (`del`) after their last reader. `MemoryPlan.allocating` lists them.

>>> import pyasg, numpy as np
>>> g = pyasg.make_graph(lambda x: pyasg.sum(pyasg.exp(x) * 2.0))(np.ones((4, 4), np.float32))
>>> plan = pyasg.jit_to_backend(g, fuse=False).plan  # unfused: one buffer per step
>>> plan.buffer_count, plan.naive_bytes, plan.planned_peak_bytes
(1, 132, 68)
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pyasg.asg.graph import Graph
from pyasg.asg.ops import BroadcastTo, Constant, Input, Reshape, StopGradient, Transpose
from pyasg.asg.types import TensorType
from pyasg.compile.liveness import Allocator, liveness, pair_donations, writes_over


def nbytes(t: TensorType) -> int:
    """Bytes of a value of type `t`.

    >>> nbytes(TensorType((2, 3), "float32"))
    24
    """
    return math.prod(t.shape) * np.dtype(t.dtype).itemsize


@dataclass(frozen=True)
class MemoryPlan:
    """What the compiler decided about memory (see the module doc).

    `buffer_of[i]` is the static buffer value %i is written into; `buffers[k]` the
    (dtype, bytes) of buffer k; `inplace[i] = j`: %i writes into the buffer of its
    dying input %j; `fresh` are values written into memory allocated per call
    (outputs); `release_after[i]`: values that kernels allocated, dead after %i runs;
    `free_after[i]`: static buffers whose value dies at %i (poisoned in debug runs).
    """

    inplace: dict[int, int]
    release_after: dict[int, tuple[int, ...]]
    #: outputs living in memory the executable does not own (a caller's input, a shared
    #: constant, or a view of one): they are copied, so results never alias arguments
    copy_outputs: frozenset[int] = frozenset()
    buffer_of: dict[int, int] = field(default_factory=dict)
    buffers: tuple[tuple[str, int], ...] = ()
    fresh: frozenset[int] = frozenset()
    free_after: dict[int, tuple[int, ...]] = field(default_factory=dict)
    #: nodes whose kernel allocates its own result (it cannot take `out=`)
    allocating: tuple[int, ...] = ()
    kernel_count: int = 0
    #: bytes if every value a kernel computes had its own buffer
    naive_bytes: int = 0
    #: bytes of the values returned to the caller, allocated per call
    output_bytes: int = 0
    #: peak bytes of the live values that allocating kernels return (not outputs)
    allocating_peak_bytes: int = 0
    allocating_names: tuple[str, ...] = ()
    #: `scratch_of[i]`: the static buffers given to %i's kernel as its temporaries
    scratch_of: dict[int, tuple[int, ...]] = field(default_factory=dict)
    #: `donations[j] = x`: output %j is written into the array of donated input %x
    donations: dict[int, int] = field(default_factory=dict)

    @property
    def buffer_count(self) -> int:
        """How many static buffers the executable holds."""
        return len(self.buffers)

    @property
    def static_bytes(self) -> int:
        """Bytes of all static buffers together."""
        return sum(size for _, size in self.buffers)

    @property
    def planned_peak_bytes(self) -> int:
        """Static buffers plus the outputs allocated per call."""
        return self.static_bytes + self.output_bytes

    def report(self) -> str:
        """A few lines for people: counts, bytes against the naive plan, what allocates."""
        def mib(n: int) -> str:
            return f"{n / 2**20:.2f} MiB" if n >= 2**20 else f"{n / 1024:.1f} KiB"

        ratio = self.planned_peak_bytes / self.naive_bytes if self.naive_bytes else 0.0
        lines = [f"{self.kernel_count} kernels, {self.buffer_count} static buffers "
                 f"({mib(self.static_bytes)}), outputs {mib(self.output_bytes)} per call",
                 f"planned peak {mib(self.planned_peak_bytes)} vs naive {mib(self.naive_bytes)}"
                 f" ({ratio:.2f}x), {len(self.inplace)} in place"]
        if self.allocating:
            names = sorted(set(self.allocating_names))
            lines.append(f"{len(self.allocating)} kernels allocate per call "
                         f"(peak {mib(self.allocating_peak_bytes)}): {', '.join(names)}")
        return "\n".join(lines)


def _flag(kernel: object, name: str, default: bool = False) -> bool:
    return bool(getattr(kernel, name, default))


def plan_memory(graph: Graph, schedule: Sequence[int], kernels: dict[int, Any],
                donated: Collection[int] = ()) -> MemoryPlan:
    """Static buffers for `schedule` by interval colouring (module doc), from the shared
    liveness analysis (`pyasg.compile.liveness`) and its allocator.

    `kernels[i]` has flags `writes_out`, `inplace` and `view` (see NumpyKernel).
    `donated`: input positions whose arrays an output may be written into (the output
    then is that very array), where `writes_over` allows it.
    """
    live = liveness(graph, schedule, [i for i, k in kernels.items() if _flag(k, "view")])
    end = len(live.schedule)
    # values computed into memory the executable owns: not inputs, constants or views
    owned = {i for i in live.schedule if live.storage[i] == i
             and not isinstance(graph.nodes[i].op, (Input, Constant))}
    hosts_output = live.holds_output & owned
    alloc = Allocator(live)
    free_after: dict[int, tuple[int, ...]] = {}
    scratch_of: dict[int, tuple[int, ...]] = {}
    for i in live.schedule:
        kernel = kernels.get(i)
        if i in owned and i not in hosts_output and _flag(kernel, "writes_out"):
            t = graph.nodes[i].type
            alloc.take(i, t.dtype, nbytes(t), inplace=_flag(kernel, "inplace", True))
        # a temporary lives while %i runs: never a buffer an input or %i holds
        taken = tuple(alloc.temporary(dtype, math.prod(shape) * np.dtype(dtype).itemsize)
                      for shape, dtype in getattr(kernel, "scratch", ()))
        if taken:
            scratch_of[i] = taken
        freed = alloc.step()
        if freed:
            free_after[i] = freed

    allocating = [i for i in live.schedule if i in owned and not _flag(kernels[i], "writes_out")]
    fresh = frozenset(i for i in hosts_output
                      if _flag(kernels[i], "writes_out") and graph.nodes[i].type.shape)
    release: dict[int, list[int]] = {}
    heap = set(allocating) | (hosts_output - fresh)
    for i in live.schedule:
        if live.last_read[i] < end and live.storage[i] in heap:
            release.setdefault(live.schedule[live.last_read[i]], []).append(i)
    # the peak of live allocated (non-output) values, walking the schedule
    current, peak = 0, 0
    dies: dict[int, int] = {}
    for t, i in enumerate(live.schedule):
        if i in allocating and i not in hosts_output:
            current += nbytes(graph.nodes[i].type)
            dies[live.end[i]] = dies.get(live.end[i], 0) + nbytes(graph.nodes[i].type)
        peak = max(peak, current)
        current -= dies.pop(t, 0)
    donations = {}
    for k, j in pair_donations(graph, donated, fresh):
        x = graph.inputs[k]
        if x in live.position and writes_over(live, j, x, _flag(kernels[j], "inplace", True)):
            donations[j] = x
    copied = frozenset(i for i in graph.outputs if live.storage[i] not in owned)
    out_values = {live.storage[i] for i in graph.outputs} & owned
    return MemoryPlan(
        inplace=alloc.takeovers,
        release_after={k: tuple(v) for k, v in release.items()},
        copy_outputs=copied,
        buffer_of=alloc.buffer_of,
        buffers=alloc.buffers,
        fresh=fresh,
        free_after=free_after,
        allocating=tuple(allocating),
        kernel_count=sum(1 for i in live.schedule if i in kernels),
        naive_bytes=sum(_naive(graph.nodes[i], kernels.get(i)) for i in live.schedule
                        if i in owned),
        output_bytes=sum(nbytes(graph.nodes[i].type) for i in out_values | copied),
        allocating_peak_bytes=peak,
        allocating_names=tuple(graph.nodes[i].op.name for i in allocating),
        scratch_of=scratch_of,
        donations=donations,
    )


def _naive(node: Any, kernel: Any = None) -> int:
    """Bytes of the values node computes (one, or a fused node's every inner value) and
    of its kernel's temporaries (an im2col's columns)."""
    inner = getattr(node.op, "graph", None)  # a Fused node: the group it stands for
    if inner is None:
        return nbytes(node.type) + sum(math.prod(shape) * np.dtype(dtype).itemsize
                                       for shape, dtype in getattr(kernel, "scratch", ()))
    free = (Input, Constant, Transpose, BroadcastTo, Reshape, StopGradient)  # no memory
    return sum(nbytes(inner.nodes[i].type) for i in inner.live_ids
               if not isinstance(inner.nodes[i].op, free))
