"""Liveness over a schedule: where each value is stored, how long that storage lives, and
the interval-colouring allocator that every buffer planner calls.

The words, used the same way by every planner (numpy's memory plan, the wgpu buffer
plan, the fused numpy kernel's slots):

- **schedule**: node ids in run order; a node's **position** is its index in it.
- **storage** of a value: the value whose memory it lives in. A value is its own
  storage, except a **view** (its kernel shares memory with its first input: numpy's
  reshape, transpose, broadcast, slice and stop_gradient, wgpu's aliases), whose
  storage is its first input's storage.
- **interval** of a storage: the positions `start..end`, both inclusive. `start` is
  where it is defined, or 0 for an input or a constant (they exist before the first
  node runs); `end` is the last read of it or of any view into it (its own position
  when nothing reads it), or `len(schedule)` when a graph output lives in it: the
  caller keeps outputs.

`Allocator` colours intervals with buffers while a planner walks the schedule: at each
position it may `take` a buffer for the value defined there and `temporary` buffers
for that node's kernel, then it calls `step`. Its invariants:

1. a buffer is free only after the last reader of its storage (and of every view into
   it) ran: `step` at the storage's `end` frees it;
2. a value never gets the buffer of one of its node's inputs, unless the caller allows
   in place for that kernel (`take(..., inplace=True)`): it then takes over an input
   that is its own storage, has the value's type, dies at this very node, and that the
   node reads only directly, never also through a view (a kernel may write before it
   has read everything);
3. a temporary is held only while its node runs: never a buffer that an input, the
   node's value or another temporary of that node holds;
4. nothing enters the pool but what planners `take`: planners keep outputs (and the
   storages they live in), inputs and constants out, and a storage an output lives in
   is never freed;
5. a free buffer of the asked key is chosen best-fit: the first of exactly the size
   asked, else the smallest larger one, else the largest smaller one, grown (a plan is
   made before anything is allocated). Keys are what may share a buffer: a dtype
   (numpy: one flat buffer holds values of any shape), a byte size (wgpu), an exact
   type (the fused kernel's slots).

Donated arguments (`jit(..., donate_argnums=...)`) need no new analysis: an input is
a storage whose interval starts at 0 and ends at its last read. `pair_donations`
matches each output with a donated input of its type, and `writes_over` says whether
an output may be written into that input's memory: only once the input's last reader
(and every view's) has run, or at that very node when its kernel allows in place.

>>> from pyasg.asg.graph import GraphBuilder
>>> from pyasg.asg.ops import Exp, Mul, Sin, Tanh, Transpose
>>> from pyasg.asg.types import TensorType
>>> b = GraphBuilder()
>>> x = b.add_input("x", TensorType((2, 2)))                      # %0
>>> e = b.add(Exp(), (x,))                                        # %1
>>> t = b.add(Transpose((1, 0)), (e,))                            # %2: a view of %1
>>> h = b.add(Tanh(), (x,))                                       # %3
>>> g = b.build([b.add(Sin(), (b.add(Mul(), (t, h)),))])          # %4 = %2 * %3, %5
>>> live = liveness(g, g.live_ids, views={t})
>>> live.storage[t], live.interval(e), live.interval(5)           # %5 is the output
(1, (1, 4), (5, 6))
>>> alloc = Allocator(live)
>>> for i in live.schedule:                                       # the output is not pooled
...     if i in (1, 3, 4):
...         _ = alloc.take(i, "float32", 16, inplace=True)
...     _ = alloc.step()
>>> alloc.buffer_of, alloc.takeovers                              # %4 writes over %3
({1: 0, 3: 1, 4: 1}, {4: 3})
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Sequence
from dataclasses import dataclass

from pyasg.asg.graph import Graph
from pyasg.asg.ops import Constant, Input
from pyasg.errors import PyasgError


class ScheduleError(PyasgError):
    """A schedule that cannot run its graph, or an allocator asked out of turn."""


@dataclass(frozen=True)
class Liveness:
    """Storages and their intervals over one schedule of `graph` (see the module doc).

    `storage[i]`: the value %i's memory belongs to; `last_read[i]`: the position of %i's
    own last reader (its own position if none, `len(schedule)` for an output);
    `start[s]`, `end[s]`: the interval of storage %s; `holds_output`: the storages a
    graph output lives in.
    """

    graph: Graph
    schedule: tuple[int, ...]
    position: dict[int, int]
    storage: dict[int, int]
    last_read: dict[int, int]
    start: dict[int, int]
    end: dict[int, int]
    holds_output: frozenset[int]

    def interval(self, value: int) -> tuple[int, int]:
        """(start, end) of the storage `value` lives in.

        >>> from pyasg.asg.graph import GraphBuilder
        >>> from pyasg.asg.ops import Exp
        >>> from pyasg.asg.types import TensorType
        >>> b = GraphBuilder()
        >>> x = b.add_input("x", TensorType((3,)))
        >>> g = b.build([b.add(Exp(), (x,))])
        >>> liveness(g, g.live_ids).interval(x), liveness(g, g.live_ids).interval(1)
        ((0, 1), (1, 2))
        """
        s = self.storage[value]
        return self.start[s], self.end[s]


def liveness(graph: Graph, schedule: Sequence[int], views: Collection[int] = ()) -> Liveness:
    """The storage of every scheduled value and the interval of every storage.

    `views`: the nodes whose value shares memory with their first input. Raises
    `ScheduleError` when `schedule` cannot run `graph`: a node twice, a node that is not
    in the graph, an input read before it is computed, an output left out, or a view
    with nothing to look into.

    >>> from pyasg.asg.graph import GraphBuilder
    >>> from pyasg.asg.ops import Exp, Reshape
    >>> from pyasg.asg.types import TensorType
    >>> b = GraphBuilder()
    >>> x = b.add_input("x", TensorType((4,)))
    >>> r = b.add(Reshape((2, 2)), (b.add(Exp(), (x,)),))
    >>> g = b.build([r])
    >>> live = liveness(g, g.live_ids, views={r})
    >>> live.storage[r], live.end[1], sorted(live.holds_output)
    (1, 3, [1])
    """
    schedule = tuple(schedule)
    end_of_run = len(schedule)
    position: dict[int, int] = {}
    for t, i in enumerate(schedule):
        if i in position:
            raise ScheduleError(f"the schedule runs node %{i} twice (positions "
                                f"{position[i]} and {t})", None)
        if i not in graph.nodes:
            raise ScheduleError(f"the schedule names %{i}, which is not a node of the graph",
                                None)
        position[i] = t
    outputs = set(graph.outputs)
    missing = sorted(outputs - set(position))
    if missing:
        raise ScheduleError(f"the schedule leaves out the graph outputs "
                            f"{', '.join(f'%{i}' for i in missing)}", None)
    storage: dict[int, int] = {}
    start: dict[int, int] = {}
    last_read: dict[int, int] = {}
    for t, i in enumerate(schedule):
        node = graph.nodes[i]
        for j in node.inputs:
            if position.get(j, end_of_run) >= t:
                raise ScheduleError(f"node %{i} ({node.op.name}) at position {t} reads %{j}, "
                                    f"which the schedule does not compute before it", None)
            last_read[j] = t  # positions only grow: the last write is the last read
        if i in views:
            if not node.inputs:
                raise ScheduleError(f"node %{i} ({node.op.name}) is called a view but has "
                                    f"no input to look into", None)
            storage[i] = storage[node.inputs[0]]
        else:
            storage[i] = i
            start[i] = 0 if isinstance(node.op, (Input, Constant)) else t
        last_read.setdefault(i, t)
    for i in outputs:
        last_read[i] = end_of_run
    end: dict[int, int] = {}
    for i in schedule:
        s = storage[i]
        end[s] = max(end.get(s, -1), last_read[i])
    return Liveness(graph, schedule, position, storage, last_read, start, end,
                    frozenset(storage[i] for i in outputs))


class Allocator:
    """Buffers for storages by interval colouring, as a planner walks the schedule.

    At each position: `take` a buffer for the value defined there (if it is pooled),
    `temporary` buffers for its kernel, then `step`. `buffers[k]` is buffer k's
    (key, bytes); `buffer_of[i]` the buffer value %i was written into; `takeovers[i] =
    j`: %i took over the buffer of its dying input %j. The module doc lists the
    invariants.

    >>> from pyasg.asg.graph import GraphBuilder
    >>> from pyasg.asg.ops import Exp, Sum
    >>> from pyasg.asg.types import TensorType
    >>> b = GraphBuilder()
    >>> x = b.add_input("x", TensorType((8,)))
    >>> g = b.build([b.add(Sum((0,)), (b.add(Exp(), (x,)),))])
    >>> alloc = Allocator(liveness(g, g.live_ids))
    >>> _ = alloc.step()                                   # %0, an input: not pooled
    >>> alloc.take(1, "float32", 32), alloc.step()         # exp's value: buffer 0
    (0, ())
    >>> alloc.temporary("float32", 16), alloc.step()       # the sum's temporary, then both die
    (1, (1, 0))
    """

    def __init__(self, live: Liveness) -> None:
        self.live = live
        self.position = 0
        self.buffer_of: dict[int, int] = {}
        self.takeovers: dict[int, int] = {}
        self._keys: list[Hashable] = []
        self._sizes: list[int] = []
        self._occupant: dict[int, int] = {}  # buffer -> the storage holding it now
        self._free: dict[Hashable, list[int]] = {}
        self._dying: dict[int, list[int]] = {}  # position -> storages whose interval ends there
        self._temporaries: list[int] = []

    @property
    def buffers(self) -> tuple[tuple[Hashable, int], ...]:
        """(key, bytes) of every buffer, in the order they were first needed."""
        return tuple(zip(self._keys, self._sizes))

    def take(self, value: int, key: Hashable, nbytes: int, inplace: bool = False) -> int:
        """A buffer for storage `value`, at the position where its interval starts (0 for
        an input or a constant): with `inplace`, the buffer of an input it may write over
        (module doc, invariant 2), else a free one of `key` (best fit), else a new one.
        It is held until the end of `value`'s interval."""
        live = self.live
        if value not in live.storage:
            raise ScheduleError(f"%{value} is not in the schedule", None)
        if live.storage[value] != value:
            raise ScheduleError(f"%{value} is a view of %{live.storage[value]}: it has no "
                                f"buffer of its own", None)
        if live.start[value] != self.position:
            raise ScheduleError(f"%{value}'s interval starts at position "
                                f"{live.start[value]}, but the allocator is at "
                                f"{self.position}: a storage gets its buffer where it "
                                f"starts", None)
        if value in self.buffer_of:
            raise ScheduleError(f"%{value} already has buffer {self.buffer_of[value]}", None)
        chosen = self._dying_input(value) if inplace else None
        if chosen is not None:  # the buffer keeps its key: the two values have one type
            self.takeovers[value] = self._occupant[chosen]
            self._sizes[chosen] = max(self._sizes[chosen], nbytes)
        else:
            chosen = self._fit(key, nbytes)
        self.buffer_of[value] = chosen
        self._occupant[chosen] = value
        self._dying.setdefault(live.end[value], []).append(value)
        return chosen

    def temporary(self, key: Hashable, nbytes: int) -> int:
        """A buffer of `key` for the current node's kernel, free again after it ran."""
        chosen = self._fit(key, nbytes)
        self._temporaries.append(chosen)
        return chosen

    def step(self) -> tuple[int, ...]:
        """End the current position: free its temporaries, then the buffers of the storages
        whose interval ends here; returns them, in that order."""
        freed = self._temporaries
        for s in self._dying.pop(self.position, ()):
            b = self.buffer_of[s]
            if self._occupant[b] == s:  # not taken over in place by a value defined here
                freed.append(b)
        for b in freed:
            self._free.setdefault(self._keys[b], []).append(b)
        self._temporaries = []
        self.position += 1
        return tuple(freed)

    def _dying_input(self, value: int) -> int | None:
        """The buffer of the first input of `value` that it may take over, if any."""
        live, nodes = self.live, self.live.graph.nodes
        reads = nodes[value].inputs
        for j in reads:
            b = self.buffer_of.get(j)
            if (b is not None and self._occupant[b] == j and live.end[j] == self.position
                    and nodes[j].type == nodes[value].type
                    and all(live.storage[k] != j or k == j for k in reads)):
                return b
        return None

    def _fit(self, key: Hashable, nbytes: int) -> int:
        chosen = best_fit(self._free.setdefault(key, []), self._sizes, nbytes)
        if chosen is None:
            chosen = len(self._sizes)
            self._keys.append(key)
            self._sizes.append(nbytes)
        self._sizes[chosen] = max(self._sizes[chosen], nbytes)
        return chosen


def best_fit(candidates: list[int], sizes: Sequence[int], need: int) -> int | None:
    """Remove and return the buffer of `candidates` for `need` bytes: the first of exactly
    that size, else the smallest larger one, else the largest smaller one (to be grown).

    >>> free = [0, 1, 2]
    >>> best_fit(free, [8, 64, 32], 16), free
    (2, [0, 1])
    """
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


def pair_donations(graph: Graph, donated: Collection[int], eligible: Collection[int],
                   kept: Collection[int] = ()) -> tuple[tuple[int, int], ...]:
    """(input position, output node) pairs: each eligible output, in order, with the first
    unpaired donated input position of exactly its type (JAX pairs donated buffers
    with results the same way); an output listed twice is paired once.

    A donated input that is itself returned (an output is that input node, or is in
    `kept`: positions whose memory an output holds, as a view) gives its memory to that
    output and to no other: a step returning its learning rate unchanged must not get
    its loss written over it.

    >>> from pyasg.asg.graph import GraphBuilder
    >>> from pyasg.asg.ops import Exp
    >>> from pyasg.asg.types import TensorType
    >>> b = GraphBuilder()
    >>> x = b.add_input("x", TensorType((3,)))
    >>> g = b.build([b.add(Exp(), (x,))])
    >>> pair_donations(g, donated=[0], eligible=[1])
    ((0, 1),)
    """
    returned = set(kept) | {k for k, i in enumerate(graph.inputs) if i in graph.outputs}
    free = sorted(k for k in set(donated) if 0 <= k < len(graph.inputs) and k not in returned)
    pairs, seen = [], set()
    for j in graph.outputs:
        if j not in eligible or j in seen:
            continue
        seen.add(j)
        match = next((k for k in free if graph.input_types[k] == graph.nodes[j].type), None)
        if match is not None:
            free.remove(match)
            pairs.append((match, j))
    return tuple(pairs)


def writes_over(live: Liveness, value: int, x: int, inplace: bool) -> bool:
    """Whether `value` may be written into the memory of input `x` (a donated argument):
    after the last read of `x`'s storage, or by that last reader itself when its kernel
    allows in place and reads `x` only directly (never through a view)."""
    position, end = live.position[value], live.end[live.storage[x]]
    if position > end:
        return True
    reads = live.graph.nodes[value].inputs
    return (inplace and position == end and x in reads
            and all(live.storage[k] != x or k == x for k in reads))
