"""The memory plan of a compiled graph: liveness over the schedule, static buffers, a report.

Every value a kernel writes with `out=` (a `writes_out` kernel) gets a buffer from a
pool, assigned at compile time by interval colouring over the schedule: a buffer is
free again once the last reader of its value (and of every view into it) has run,
and is reused for a later value of the same dtype, of any shape (a reshape view of
it, made once). A kernel marked `inplace` may write into the buffer of an input that
dies at that very node. Buffers are allocated once, when the executable is built.

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
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pyasg.asg.graph import Graph
from pyasg.asg.ops import BroadcastTo, Constant, Input, Reshape, StopGradient, Transpose
from pyasg.asg.types import TensorType


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


def plan_memory(graph: Graph, schedule: Sequence[int], kernels: dict[int, Any]) -> MemoryPlan:
    """Liveness over `schedule` and static buffers by interval colouring (module doc).

    `kernels[i]` has flags `writes_out`, `inplace` and `view` (see NumpyKernel).
    """
    outputs = set(graph.outputs)
    position = {i: t for t, i in enumerate(schedule)}
    end = len(schedule)
    last_use = {i: (end if i in outputs else position[i]) for i in schedule}
    for i in schedule:
        for j in graph.nodes[i].inputs:
            last_use[j] = max(last_use[j], position[i])
    # `home[i]`: the value whose memory %i lives in: itself, the value a view looks
    # into, or None for inputs and constants (never written)
    home: dict[int, int | None] = {}
    group_end: dict[int, int] = {}
    hosts_output: set[int] = set()
    for i in schedule:
        node = graph.nodes[i]
        if isinstance(node.op, (Input, Constant)):
            home[i] = None
            continue
        home[i] = home[node.inputs[0]] if _flag(kernels[i], "view") else i
        h = home[i]
        if h is not None:
            group_end[h] = max(group_end.get(h, -1), last_use[i])
            if i in outputs:
                hosts_output.add(h)

    def pooled(i: int) -> bool:
        return home.get(i) == i and _flag(kernels[i], "writes_out") and i not in hosts_output

    buffer_of: dict[int, int] = {}
    sizes: list[int] = []
    dtypes: list[str] = []
    occupant: dict[int, int] = {}
    free: dict[str, list[int]] = {}
    ending: dict[int, list[int]] = {}
    inplace: dict[int, int] = {}
    free_after: dict[int, list[int]] = {}
    scratch_of: dict[int, tuple[int, ...]] = {}

    def take(dtype: str, need: int) -> int:
        """A free buffer of `dtype` for `need` bytes (grown if smaller), else a new one."""
        chosen = _pick(free.setdefault(dtype, []), sizes, need)
        if chosen is None:
            chosen = len(sizes)
            sizes.append(need)
            dtypes.append(dtype)
        return chosen

    for t, i in enumerate(schedule):
        node = graph.nodes[i]
        if pooled(i):
            need, dtype = nbytes(node.type), node.type.dtype
            chosen = None
            if _flag(kernels[i], "inplace", True):
                for j in node.inputs:
                    b = buffer_of.get(j)
                    # only when %i reads that buffer through %j itself, never through a
                    # view of it: a kernel may write `out` before it reads every input
                    if (b is not None and home[j] == j and occupant[b] == j
                            and group_end[j] == t and graph.nodes[j].type == node.type
                            and all(home[k] != j or k == j for k in node.inputs)):
                        chosen, inplace[i] = b, j
                        break
            if chosen is None:
                chosen = take(dtype, need)
            sizes[chosen] = max(sizes[chosen], need)
            buffer_of[i], occupant[chosen] = chosen, i
            ending.setdefault(group_end[i], []).append(chosen)
        taken = []
        for shape, dtype in getattr(kernels.get(i), "scratch", ()):
            # a temporary lives while %i runs: never a buffer an input or %i holds
            need = math.prod(shape) * np.dtype(dtype).itemsize
            chosen = take(dtype, need)
            sizes[chosen] = max(sizes[chosen], need)
            taken.append(chosen)
        if taken:
            scratch_of[i] = tuple(taken)
            for b in taken:
                free[dtypes[b]].append(b)
            free_after.setdefault(i, []).extend(taken)
        for b in ending.pop(t, ()):
            if group_end[occupant[b]] == t:  # not taken over in place by %i
                free[dtypes[b]].append(b)
                free_after.setdefault(i, []).append(b)

    allocating = [i for i in schedule if home.get(i) == i and not _flag(kernels[i], "writes_out")]
    fresh = frozenset(i for i in schedule if home.get(i) == i and i in hosts_output
                      and _flag(kernels[i], "writes_out") and graph.nodes[i].type.shape)
    release: dict[int, list[int]] = {}
    heap = set(allocating) | (hosts_output - fresh)
    for i in schedule:
        if last_use[i] < end and home.get(i) in heap:
            release.setdefault(schedule[last_use[i]], []).append(i)
    # the peak of live allocated (non-output) values, walking the schedule
    live, peak = 0, 0
    dies: dict[int, int] = {}
    for t, i in enumerate(schedule):
        if i in allocating and i not in hosts_output:
            live += nbytes(graph.nodes[i].type)
            dies[group_end[i]] = dies.get(group_end[i], 0) + nbytes(graph.nodes[i].type)
        peak = max(peak, live)
        live -= dies.pop(t, 0)
    computed = [i for i in schedule if home.get(i) == i]
    copied = frozenset(i for i in graph.outputs if home[i] is None)
    out_values = {home[i] for i in graph.outputs if home[i] is not None}
    return MemoryPlan(
        inplace=inplace,
        release_after={k: tuple(v) for k, v in release.items()},
        copy_outputs=copied,
        buffer_of=buffer_of,
        buffers=tuple(zip(dtypes, sizes)),
        fresh=fresh,
        free_after={k: tuple(v) for k, v in free_after.items()},
        allocating=tuple(allocating),
        kernel_count=sum(1 for i in schedule if i in kernels),
        naive_bytes=sum(_naive(graph.nodes[i], kernels.get(i)) for i in computed),
        output_bytes=sum(nbytes(graph.nodes[i].type) for i in out_values | copied),
        allocating_peak_bytes=peak,
        allocating_names=tuple(graph.nodes[i].op.name for i in allocating),
        scratch_of=scratch_of,
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


def _pick(candidates: list[int], sizes: list[int], need: int) -> int | None:
    """A free buffer for `need` bytes: an exact fit, else the smallest larger one, else the
    largest smaller one (grown: the plan is made before anything is allocated)."""
    if not candidates:
        return None
    best = None
    for b in candidates:
        if sizes[b] == need:
            best = b
            break
        if sizes[b] > need and (best is None or sizes[best] < need or sizes[b] < sizes[best]):
            best = b
        elif sizes[b] < need and (best is None or (sizes[best] < need and sizes[b] > sizes[best])):
            best = b
    candidates.remove(best)
    return best
