"""Horizontal fusion over a graph: which independent nodes run as ONE dispatch, and when.

A graph node has one output, so many tiny independent kernels (an optimiser's update
of each parameter, the bias gradients' column sums) are many dispatches, each paying
its launch and drain. Where nodes meet the device they can be merged: kernels whose
every dispatch is a `kernel.Part` run side by side in one shader
(`horizontal.merge`), each on workgroups of its own.

1. **Kind.** A node is mergeable when its kernel is all parts (no clear, no status
   word, no alias); its kind is the workgroup size of each of its passes (`kind_of`).
   Nodes of one kind merge pass by pass: a split reduction's first passes in one
   dispatch, their second passes in the next. Parts of one size merge whatever their
   shape: one thread per element or one workgroup per output, the branch is on the
   workgroup.
2. **Order** (`together`). A list schedule over the original order (the trace's):
   where it meets a mergeable node, it runs with it the ready nodes (all inputs
   computed) of the same kind that are next anyway, and those from further on that
   fit into room left in the group's runs, pulled forward: so pulling forward never
   adds a dispatch, and a node that does not fit waits for its own place (AdamW's
   updates mostly wait for the end of the backward pass, where they run together).
   Nothing runs later than in the original order, so no input lives longer. A node
   pulled forward holds its value early: free for a graph output (its buffer is its
   own anyway), its bytes otherwise, at most `HOIST_BYTES` at once. Nodes without
   dispatches (views, inputs, constants) run as soon as they can.
3. **Runs** (`Packer`). A group is cut, in order, into runs that fit one dispatch: at most
   the device's storage buffers per shader stage in each pass (a buffer read by
   several parts is bound once), `MAX_PARTS` parts and `MAX_GROUPS` workgroups.
4. **Buffers** (`widen`). A run's nodes are consecutive in the order, and the run is
   one dispatch at the first of them: no buffer may pass from one of its values to
   another, so every storage live anywhere in a run stays live to its end.

>>> from pyasg.asg.graph import GraphBuilder
>>> from pyasg.asg.ops import Cos, Exp, Sin
>>> from pyasg.asg.types import TensorType
>>> b = GraphBuilder()
>>> x = b.add_input("x", TensorType((3,)))                 # %0
>>> e = b.add(Exp(), (x,))                                 # %1
>>> s = b.add(Sin(), (e,))                                 # %2: reads %1
>>> t = b.add(Cos(), (x,))                                 # %3: ready with %1
>>> g = b.build([s, t])
>>> together(g, [0, 1, 2, 3], kind={1: (256,), 2: (256,), 3: (256,)}, free={0}, cost={})
[(0,), (1, 3), (2,)]
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass, replace

from pyasg.asg.graph import Graph
from pyasg.compile.liveness import Liveness, ScheduleError, liveness
from pyasg.kernels.wgpu.horizontal import merge
from pyasg.kernels.wgpu.kernel import WgpuKernel

#: Bytes of intermediate values that may be computed early at once (step 2): enough for
#: every bias and norm gradient of a model, far less than one of its activations.
HOIST_BYTES = 4 << 20
#: Most parts in one merged dispatch: a bound on its shader's size and compile time
#: where a device allows many storage buffers (an NVIDIA GPU allows thousands).
MAX_PARTS = 64
#: Most workgroups of one merged dispatch: one row of the grid. A dispatch that big
#: fills any GPU many times over; merging it with more saves nothing.
MAX_GROUPS = 65535


def kind_of(kernel: WgpuKernel) -> tuple[int, ...] | None:
    """The workgroup size of each pass of a mergeable kernel (step 1), or None.

    >>> from pyasg.kernels.wgpu.kernel import Dispatch, Part
    >>> d = Dispatch("", (4, 1, 1), ())
    >>> kind_of(WgpuKernel((d,))), kind_of(WgpuKernel((d,), parts=(Part(str, 4, 64),)))
    (None, (64,))
    """
    if (not kernel.parts or kernel.alias or kernel.zero_output or kernel.check is not None
            or len(kernel.parts) != len(kernel.dispatches)):
        return None
    return tuple(p.size for p in kernel.parts)


class Packer:
    """One group's runs, filled in order (step 3): a node joins the current run while each
    of its passes still fits one dispatch (`limit` bindings, `max_parts` parts,
    `max_groups` workgroups), else it starts the next run. `keys(i)`: what node i's
    passes bind; `groups(i)`: their workgroups.

    >>> pack = Packer(keys=lambda i: [{"lr", i, -i}], groups=lambda i: [1], limit=5)
    >>> for i in (1, 2, 3):
    ...     pack.add(i)
    >>> pack.runs  # 1 and 2 bind lr, 1, -1, 2, -2; 3 would make it seven
    [(1, 2), (3,)]
    """

    def __init__(self, keys: Callable[[int], Sequence[Collection[Hashable]]],
                 groups: Callable[[int], Sequence[int]], limit: int,
                 max_parts: int = MAX_PARTS, max_groups: int = MAX_GROUPS) -> None:
        self.keys, self.groups, self.limit = keys, groups, limit
        self.max_parts, self.max_groups = max_parts, max_groups
        self._runs: list[list[int]] = []
        self._bound: list[set[Hashable]] = []
        self._used: list[int] = []

    @property
    def runs(self) -> list[tuple[int, ...]]:
        return [tuple(r) for r in self._runs]

    def fits(self, i: int) -> bool:
        """Whether node i joins the current run (a new run is no fit)."""
        if not self._runs or len(self._runs[-1]) >= self.max_parts:
            return False
        return all(len(b | set(m)) <= self.limit and u + n <= self.max_groups
                   for b, m, u, n in zip(self._bound, self.keys(i), self._used,
                                         self.groups(i)))

    def add(self, i: int) -> None:
        if self.fits(i):
            self._runs[-1].append(i)
            self._bound = [b | set(m) for b, m in zip(self._bound, self.keys(i))]
            self._used = [u + n for u, n in zip(self._used, self.groups(i))]
        else:
            self._runs.append([i])
            self._bound = [set(m) for m in self.keys(i)]
            self._used = list(self.groups(i))


class _Unlimited(Packer):
    """One run, however big."""

    def __init__(self) -> None:
        super().__init__(lambda i: (), lambda i: (), 0)

    def fits(self, i: int) -> bool:
        return bool(self._runs)


def together(graph: Graph, schedule: Sequence[int], kind: Mapping[int, Hashable],
             free: Collection[int], cost: Mapping[int, int], budget: int = HOIST_BYTES,
             pack: Callable[[], Packer] = _Unlimited) -> list[tuple[int, ...]]:
    """`schedule` (a topological order) in the order of step 2, as runs: each run one
    node, or independent nodes of one `kind` that run as one dispatch.

    Where the walk over `schedule` meets a mergeable node, it runs every ready node of
    its kind with it: the nodes that are next anyway always (they would otherwise be
    dispatches of their own), nodes from further on only into room left in the runs
    (`pack()` packs a group into runs), so pulling a node forward never adds a
    dispatch, and it waits for its own place otherwise. `free`: nodes with no dispatch,
    run as soon as their inputs are; `cost[j]`: the bytes node j holds while it runs
    early (absent: nothing, as for a graph output; at most `budget` at once).
    """
    position = {i: t for t, i in enumerate(schedule)}
    readers: dict[int, list[int]] = {i: [] for i in schedule}
    waiting: dict[int, int] = {}
    for i in schedule:
        inputs = set(graph.nodes[i].inputs)
        waiting[i] = len(inputs)
        for j in inputs:
            if j not in readers:
                raise ScheduleError(f"node %{i} reads %{j}, which the schedule leaves out",
                                    None)
            readers[j].append(i)
    ready: dict[Hashable, set[int]] = {}
    done: set[int] = set()
    runs: list[tuple[int, ...]] = []

    def run(group: list[tuple[int, ...]]) -> None:
        queue = group[::-1]
        while queue:
            step = queue.pop()
            runs.append(step)
            unlocked = []
            for i in step:
                done.add(i)
                for r in readers[i]:
                    waiting[r] -= 1
                    if waiting[r] == 0 and r in kind:
                        ready.setdefault(kind[r], set()).add(r)
                    elif waiting[r] == 0 and r in free:
                        unlocked.append(r)
            queue.extend((r,) for r in sorted(unlocked, key=position.get, reverse=True))

    for i in schedule:  # nodes with no inputs: the free ones first, the others are ready
        if waiting[i] == 0 and i in kind:
            ready.setdefault(kind[i], set()).add(i)
    for i in schedule:
        if waiting[i] == 0 and i in free and i not in done:
            run([(i,)])
    early: dict[int, int] = {}  # node run before its place in `schedule` -> its bytes
    for i in schedule:
        early.pop(i, None)
        if i in done:
            continue
        if waiting[i]:
            raise ScheduleError(f"node %{i} comes before an input of its in the schedule",
                                None)
        if i not in kind:
            run([(i,)])
            continue
        packer, members = pack(), {i}
        packer.add(i)
        frontier = position[i] + 1  # the first later node that has not run (nor will now)
        for j in sorted(ready[kind[i]] - members, key=position.get):
            while frontier < len(schedule) and (schedule[frontier] in done or
                                                schedule[frontier] in members or
                                                schedule[frontier] in free):
                frontier += 1
            if position[j] > frontier:  # from further on: only into room, within budget
                held = cost.get(j, 0)
                if not packer.fits(j) or sum(early.values()) + held > budget:
                    continue
                if held:
                    early[j] = held
            packer.add(j)
            members.add(j)
        ready[kind[i]] -= members
        run(packer.runs)
    return runs


def widen(live: Liveness, runs: Sequence[tuple[int, ...]]) -> Liveness:
    """`live` with every storage live anywhere in a run's positions kept live to the run's
    last position (step 4): nothing is freed, so nothing is reused, inside a run.

    >>> from pyasg.asg.graph import GraphBuilder
    >>> from pyasg.asg.ops import Cos, Exp, Sin
    >>> from pyasg.asg.types import TensorType
    >>> b = GraphBuilder()
    >>> x = b.add_input("x", TensorType((3,)))
    >>> e = b.add(Exp(), (x,))
    >>> g = b.build([b.add(Sin(), (e,)), b.add(Cos(), (x,))])
    >>> live = liveness(g, [0, 1, 2, 3])
    >>> live.end[1], widen(live, [(2, 3)]).end[1]  # %1 dies at %2, which runs with %3
    (2, 3)
    """
    spans = sorted((live.position[r[0]], live.position[r[-1]]) for r in runs if len(r) > 1)
    starts = [p for p, _ in spans]
    end = dict(live.end)
    for s, e in end.items():
        k = bisect.bisect_right(starts, e) - 1
        if k >= 0 and spans[k][0] <= e < spans[k][1]:
            end[s] = spans[k][1]
    return replace(live, end=end)


@dataclass(frozen=True)
class Horizontal:
    """A graph's order for horizontal fusion and the kernels it runs: `order` the new
    schedule; `runs` the merged runs (consecutive in `order`); `kernels` per node, a
    run's merged kernel at its first node and nothing at the others."""

    order: tuple[int, ...]
    runs: tuple[tuple[int, ...], ...]
    kernels: dict[int, WgpuKernel]

    @property
    def merged_nodes(self) -> int:
        """How many nodes run inside merged dispatches."""
        return sum(len(r) for r in self.runs)


def bound_keys(graph: Graph, node: int, kernel: WgpuKernel,
               storage: Mapping[int, int]) -> dict[tuple, tuple]:
    """What each binding of node `node`'s kernel is in a merged dispatch: ("value", s), the
    buffer of storage s, for an input or the output; ("scratch", node, k) for scratch k.

    >>> from pyasg.asg.graph import GraphBuilder
    >>> from pyasg.asg.ops import Exp
    >>> from pyasg.asg.types import TensorType
    >>> from pyasg.kernels.wgpu.kernel import Dispatch
    >>> b = GraphBuilder()
    >>> g = b.build([b.add(Exp(), (b.add_input("x", TensorType((3,))),))])
    >>> k = WgpuKernel((Dispatch("", (1, 1, 1), (("in", 0), ("out",))),))
    >>> bound_keys(g, 1, k, {0: 0, 1: 1})
    {('in', 0): ('value', 0), ('out',): ('value', 1)}
    """
    inputs = graph.nodes[node].inputs
    keys: dict[tuple, tuple] = {}
    for d in kernel.dispatches:
        for bound in d.bindings:
            if bound[0] == "in":
                keys[bound] = ("value", storage[inputs[bound[1]]])
            elif bound[0] == "out":
                keys[bound] = ("value", storage[node])
            elif bound[0] == "tmp":
                keys[bound] = ("scratch", node, bound[1])
            else:
                raise ScheduleError(f"internal: node %{node} binds {bound}, which no merged "
                                    f"dispatch can bind", None)
    return keys


def horizontal(graph: Graph, schedule: Sequence[int], kernels: Mapping[int, WgpuKernel],
               limit: int, budget: int = HOIST_BYTES) -> Horizontal:
    """Steps 1-3 over `graph`: the order, the runs and the kernels of each node.

    `schedule`: a topological order of every node that runs; `kernels`: each node's
    own (inputs and constants have none); `limit`: storage buffers per shader stage.
    """
    views = [i for i, k in kernels.items() if k.alias]
    storage = liveness(graph, schedule, views).storage
    kind = {i: k for i, kernel in kernels.items() if (k := kind_of(kernel)) is not None}
    free = {i for i in schedule if i not in kernels
            or (not kernels[i].dispatches and not kernels[i].zero_output)}
    outputs = set(graph.outputs)
    cost = {i: 4 * graph.nodes[i].type.size for i in kind if i not in outputs}
    keyed = {i: bound_keys(graph, i, kernels[i], storage) for i in kind}

    def keys(i: int) -> list[set]:
        return [{keyed[i][b] for b in d.bindings} for d in kernels[i].dispatches]

    def groups(i: int) -> list[int]:
        return [p.groups for p in kernels[i].parts]

    order: list[int] = []
    runs: list[tuple[int, ...]] = []
    out = dict(kernels)
    for run in together(graph, schedule, kind, free, cost, budget,
                        pack=lambda: Packer(keys, groups, limit)):
        order.extend(run)
        if len(run) == 1:
            continue
        runs.append(run)
        passes = len(kernels[run[0]].parts)
        out[run[0]] = WgpuKernel(tuple(merge([(kernels[i].parts[s], keyed[i]) for i in run])
                                       for s in range(passes)))
        for i in run[1:]:
            out[i] = WgpuKernel()
    return Horizontal(tuple(order), tuple(runs), out)
