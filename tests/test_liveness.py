"""The liveness analysis and its allocator on their own (`pyasg.compile.liveness`).

- intervals of hand-built graphs, by hand: views extend their storage's interval, an
  output lives to the end, an input from the start to its last read;
- on random graphs, schedules, views, sizes and planner choices, an independent
  brute-force checker (which storages are needed at each position, from the graph
  alone) agrees with the intervals, and finds no two storages that are needed at the
  same position in one buffer, no temporary over a live value, no takeover that is not
  allowed;
- in place only where allowed, one rule per row;
- bad schedules and out-of-turn requests raise `ScheduleError`;
- the wgpu executable's buffers obey the same checker.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Hashable

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyrsistent import pmap, pvector
from wgpu_util import require_wgpu

import pyasg
from pyasg.asg import ops
from pyasg.asg.graph import Graph, GraphBuilder, Node
from pyasg.asg.types import TensorType
from pyasg.compile.liveness import Allocator, ScheduleError, best_fit, liveness
from pyasg.errors import PyasgError

F4 = TensorType((4,))
F22 = TensorType((2, 2))

# --------------------------------------------------------------------------- the checker


@dataclasses.dataclass
class Planned:
    """A buffer plan to check: what each storage asked for and got, and the temporaries."""

    buffer_of: dict[int, int]  # storage -> buffer
    buffers: list[tuple[Hashable, int]]  # buffer -> (key, bytes)
    takeovers: dict[int, int] = dataclasses.field(default_factory=dict)
    asked: dict[int, tuple[Hashable, int]] = dataclasses.field(default_factory=dict)
    inplace: dict[int, bool] = dataclasses.field(default_factory=dict)
    #: position -> (buffer, key, bytes) of the temporaries taken there
    temporaries: dict[int, list[tuple[int, Hashable, int]]] = dataclasses.field(
        default_factory=dict)

    @classmethod
    def of(cls, alloc: Allocator, **requests: dict) -> Planned:
        """The allocator's answer to `requests` (asked, inplace, temporaries)."""
        return cls(dict(alloc.buffer_of), list(alloc.buffers), dict(alloc.takeovers),
                   **requests)


def root(graph: Graph, views: set[int], i: int) -> int:
    """The value whose memory %i lives in, following views to the end."""
    return root(graph, views, graph.nodes[i].inputs[0]) if i in views else i


def needed(graph: Graph, schedule: list[int], views: set[int]) -> dict[int, set[int]]:
    """For each storage, the positions where its memory must not be written by anything
    else, found position by position: from where it is written (0 for inputs and
    constants) while anything living in it is still to be defined or read (an output:
    up to `len(schedule)`)."""
    pos = {i: t for t, i in enumerate(schedule)}
    read_at: dict[int, list[int]] = {i: [] for i in schedule}
    for r in schedule:
        for j in graph.nodes[r].inputs:
            read_at[j].append(pos[r])

    def written(s: int) -> int:
        return 0 if isinstance(graph.nodes[s].op, (ops.Input, ops.Constant)) else pos[s]

    out: dict[int, set[int]] = {}
    for s in {root(graph, views, i) for i in schedule}:
        members = [m for m in schedule if root(graph, views, m) == s]
        out[s] = {t for t in range(len(schedule) + 1) if written(s) <= t and (
            any(m in graph.outputs for m in members)
            or any(pos[m] >= t for m in members)
            or any(r >= t for m in members for r in read_at[m]))}
    return out


def check(graph: Graph, schedule: list[int], views: set[int], plan: Planned) -> None:
    """No buffer is written while a value living in it is still needed (module doc of
    pyasg.compile.liveness); takeovers only where allowed; buffers big enough."""
    nodes, buffers = graph.nodes, plan.buffers
    busy = needed(graph, schedule, views)
    pos = {i: t for t, i in enumerate(schedule)}
    for s, (key, size) in plan.asked.items():
        b = plan.buffer_of[s]
        assert buffers[b][1] >= size, f"%{s} needs {size} bytes, buffer {b} has {buffers[b][1]}"
        assert key is None or s in plan.takeovers or buffers[b][0] == key, (
            f"%{s} got a buffer of another key")
    for s, j in plan.takeovers.items():
        reads = nodes[s].inputs
        assert plan.inplace[s], f"%{s} took over %{j} though in place was not allowed"
        assert j in reads and nodes[j].type == nodes[s].type
        assert max(busy[j]) == pos[s], f"%{s} took over %{j}, which is needed later"
        assert all(k == j or root(graph, views, k) != j for k in reads), (
            f"%{s} took over %{j}, which it also reads through a view")
    for t in range(len(schedule) + 1):
        holders = sorted((s for s in plan.buffer_of if t in busy[s]), key=lambda s: min(busy[s]))
        for k, a in enumerate(holders):
            for c in holders[k + 1:]:
                if plan.buffer_of[a] == plan.buffer_of[c]:
                    assert plan.takeovers.get(c) == a and t == pos[c], (
                        f"%{a} and %{c} share buffer {plan.buffer_of[a]} at position {t}")
        temps = plan.temporaries.get(t, [])
        assert len({b for b, _, _ in temps}) == len(temps), f"one temporary twice at {t}"
        for b, key, size in temps:
            assert buffers[b][0] == key and buffers[b][1] >= size
            assert all(plan.buffer_of[s] != b for s in holders), (
                f"the temporary of position {t} is buffer {b}, which a live value holds")


# --------------------------------------------------------------------------- random cases

TYPES = st.sampled_from([F4, F22, TensorType((2,)), TensorType((4,), "int32")])


@st.composite
def graphs(draw: st.DrawFn) -> tuple[Graph, list[int], set[int]]:
    """A random graph (inputs, constants, values reading up to three earlier ones, views
    of one), a random topological schedule of all its nodes, and its views."""
    nodes: dict[int, Node] = {}
    inputs = []
    views: set[int] = set()
    for i in range(draw(st.integers(1, 3))):
        t = draw(TYPES)
        nodes[i] = Node(ops.Input(f"x{i}", t), (), t)
        inputs.append(i)
    for i in range(len(nodes), len(nodes) + draw(st.integers(1, 12))):
        reads = tuple(draw(st.lists(st.integers(0, i - 1), max_size=3)))
        if not reads:
            t = draw(TYPES)
            nodes[i] = Node(ops.Constant.of(np.zeros(t.shape, t.dtype)), (), t)
            continue
        t = nodes[reads[0]].type if draw(st.booleans()) else draw(TYPES)
        if len(reads) == 1 and draw(st.booleans()):
            views.add(i)
            nodes[i] = Node(ops.Reshape(t.shape), reads, t)
        else:  # the op does not matter to liveness: only what it reads and its type
            nodes[i] = Node((ops.Exp(), ops.Add(), ops.Where())[len(reads) - 1], reads, t)
    ids = sorted(nodes)
    outputs = draw(st.lists(st.sampled_from(ids), min_size=1, max_size=3))
    schedule: list[int] = []
    while len(schedule) < len(ids):
        ready = [i for i in ids if i not in schedule
                 and all(j in schedule for j in nodes[i].inputs)]
        schedule.append(ready[draw(st.integers(0, len(ready) - 1))])
    return Graph(pmap(nodes), pvector(inputs), pvector(outputs)), schedule, views


@st.composite
def plans(draw: st.DrawFn) -> tuple[Graph, list[int], set[int], Planned]:
    """A random graph and a random planner run through the allocator: some storages
    (inputs and constants too, at position 0, as a donated argument would be) with
    in place allowed or not, temporaries anywhere, keys by dtype (numpy) or bytes (wgpu)."""
    graph, schedule, views = draw(graphs())
    live = liveness(graph, schedule, views)
    by_bytes = draw(st.booleans())

    def key(t: TensorType) -> Hashable:
        return t.size * 4 if by_bytes else t.dtype

    alloc = Allocator(live)
    asked: dict[int, tuple[Hashable, int]] = {}
    inplace: dict[int, bool] = {}
    temporaries: dict[int, list] = {}
    pooled = [s for s in schedule if live.storage[s] == s and draw(st.booleans())]
    for t in range(len(schedule)):
        for s in pooled:
            if live.start[s] == t:
                ty = graph.nodes[s].type
                asked[s], inplace[s] = (key(ty), ty.size * 4), draw(st.booleans())
                alloc.take(s, key(ty), ty.size * 4, inplace=inplace[s])
        for _ in range(draw(st.integers(0, 2))):
            ty = draw(TYPES)
            b = alloc.temporary(key(ty), ty.size * 4)
            temporaries.setdefault(t, []).append((b, key(ty), ty.size * 4))
        alloc.step()
    return graph, schedule, views, Planned.of(alloc, asked=asked, inplace=inplace,
                                              temporaries=temporaries)


@given(graphs())
def test_intervals_are_exactly_where_a_storage_is_needed(case) -> None:  # noqa: ANN001
    graph, schedule, views = case
    live = liveness(graph, schedule, views)
    for s, positions in needed(graph, schedule, views).items():
        assert positions == set(range(live.start[s], live.end[s] + 1)), (s, live.interval(s))
    for i in schedule:
        assert live.storage[i] == root(graph, views, i)
    assert live.holds_output == {root(graph, views, i) for i in graph.outputs}


@given(plans())
def test_no_buffer_holds_two_values_needed_at_once(case) -> None:  # noqa: ANN001
    check(*case)


@given(plans())
def test_a_new_buffer_only_when_every_buffer_of_its_key_is_needed(case) -> None:  # noqa: ANN001
    """Freed buffers are reused: there are never more buffers of a key than values and
    temporaries of that key hold at some one position."""
    graph, schedule, views, plan = case
    busy = needed(graph, schedule, views)
    for key in {k for k, _ in plan.buffers}:
        mine = {b for b, (k, _) in enumerate(plan.buffers) if k == key}
        most = max(len({plan.buffer_of[s] for s in plan.buffer_of
                        if t in busy[s] and plan.buffer_of[s] in mine})
                   + len([b for b, _, _ in plan.temporaries.get(t, []) if b in mine])
                   for t in range(len(schedule) + 1))
        assert len(mine) <= most, (key, len(mine), most)


def test_the_checker_sees_a_buffer_freed_one_position_early() -> None:
    b = GraphBuilder()
    x = b.add_input("x", F4)
    y = b.add(ops.Exp(), (x,))
    z = b.add(ops.Tanh(), (x,))
    w = b.add(ops.Add(), (y, z))         # the last reader of y
    g = b.build([b.add(ops.Sin(), (w,))])
    schedule = list(g.live_ids)
    live = liveness(g, schedule)
    early = dataclasses.replace(live, end={**live.end, y: live.end[y] - 1})
    for use in (live, early):
        alloc = Allocator(use)
        for i in schedule:
            if i in (y, z, w):
                alloc.take(i, "float32", 16)
            alloc.step()
        plan = Planned.of(alloc, asked=dict.fromkeys((y, z, w), ("float32", 16)),
                          inplace=dict.fromkeys((y, z, w), False))
        if use is live:
            check(g, schedule, set(), plan)
        else:  # y's buffer was free for w, which is written while it reads y
            assert alloc.buffer_of[y] == alloc.buffer_of[w]
            with pytest.raises(AssertionError, match="share buffer"):
                check(g, schedule, set(), plan)


# --------------------------------------------------------------------------- intervals


def test_views_extend_their_storage_and_outputs_live_to_the_end() -> None:
    b = GraphBuilder()
    x = b.add_input("x", F4)                         # position 0
    e = b.add(ops.Exp(), (x,))                       # 1
    r = b.add(ops.Reshape((2, 2)), (e,))             # 2: a view of e
    t = b.add(ops.Transpose((1, 0)), (r,))           # 3: a view of that view
    h = b.add(ops.Tanh(), (x,))                      # 4: x's last reader
    s = b.add(ops.Sum((0, 1)), (t,))                 # 5: reads e through two views
    m = b.add(ops.Mul(), (b.add(ops.Sin(), (h,)), s))  # 6 sin, 7 mul
    v = b.add(ops.Reshape((4,)), (h,))               # 8: an output view of h
    g = b.build([m, v])
    live = liveness(g, g.live_ids, views={r, t, v})
    assert live.schedule == (x, e, r, t, h, s, 6, m, v)
    assert live.storage[r] == live.storage[t] == e and live.storage[v] == h
    assert live.interval(x) == (0, 4)                # an input: from the start to its last read
    assert live.interval(e) == live.interval(t) == (1, 5)  # e's own readers end at 2
    assert live.last_read[e] == 2 and live.last_read[t] == 5
    assert live.interval(h) == (4, 9)                # read at 6, but an output looks into it
    assert live.interval(m) == (7, 9)                # an output: to the end, len(schedule)
    assert live.holds_output == {m, h}


def test_a_value_nothing_reads_lives_only_where_it_is_written() -> None:
    b = GraphBuilder()
    x = b.add_input("x", F4)
    dead = b.add(ops.Exp(), (x,))
    g = b.build([b.add(ops.Tanh(), (x,))])
    live = liveness(g, g.ids)                        # a schedule may hold dead nodes
    assert live.interval(dead) == (1, 1)


def test_an_unused_input_and_a_constant_start_at_zero() -> None:
    b = GraphBuilder()
    x = b.add_input("x", F4)
    b.add_input("unused", F4)
    c = b.add(ops.Constant.of(np.ones(4, np.float32)), ())
    g = b.build([b.add(ops.Add(), (x, c))], inputs=[x, 1])
    live = liveness(g, [x, 1, c, 3])
    assert live.interval(1) == (0, 1) and live.interval(c) == (0, 3)


# --------------------------------------------------------------------------- in place


def _takeover(build: Callable[[GraphBuilder, int, int], tuple[int, list[int]]],
              allowed: bool) -> int | None:
    """y = exp(x), then `build(b, x, y)` gives z and values to read after it; every
    computed value that is no output is pooled, and only z may write in place (if
    `allowed`). Returns the value whose buffer z took over, if any."""
    b = GraphBuilder()
    x = b.add_input("x", F22)
    y = b.add(ops.Exp(), (x,))
    z, later = build(b, x, y)
    g = b.build([b.add(ops.Sin(), (v,)) for v in (z, *later)])
    views = {i for i in g.live_ids if isinstance(g.nodes[i].op, (ops.Reshape, ops.Transpose))}
    live = liveness(g, g.live_ids, views)
    alloc = Allocator(live)
    for i in live.schedule:
        if live.storage[i] == i and i != x and i not in g.outputs:
            t = g.nodes[i].type
            alloc.take(i, t.dtype, t.size * 4, inplace=allowed and i == z)
        alloc.step()
    return alloc.takeovers.get(z)


def _view_read_later(b: GraphBuilder, x: int, y: int) -> tuple[int, list[int]]:
    view = b.add(ops.Transpose((1, 0)), (y,))
    return b.add(ops.Tanh(), (y,)), [view]


def _also_through_a_view(b: GraphBuilder, x: int, y: int) -> tuple[int, list[int]]:
    return b.add(ops.Add(), (y, b.add(ops.Transpose((1, 0)), (y,)))), []


IN_PLACE = [
    # (rule, z and the values read after it, in place allowed for z's kernel, takes y over)
    ("a dying input of its type", lambda b, x, y: (b.add(ops.Tanh(), (y,)), []), True, True),
    ("the kernel does not allow it", lambda b, x, y: (b.add(ops.Tanh(), (y,)), []), False,
     False),
    ("the same input twice", lambda b, x, y: (b.add(ops.Add(), (y, y)), []), True, True),
    ("the input is read later", lambda b, x, y: (b.add(ops.Tanh(), (y,)), [y]), True, False),
    ("a view of the input is read later", _view_read_later, True, False),
    ("the node also reads it through a view", _also_through_a_view, True, False),
    ("the input has another type", lambda b, x, y: (b.add(ops.Sum((0,)), (y,)), []), True,
     False),
    ("the input is a view, not a storage",
     lambda b, x, y: (b.add(ops.Tanh(), (b.add(ops.Reshape((4,)), (y,)),)), []), True, False),
    ("the input has no buffer (a graph input)",
     lambda b, x, y: (b.add(ops.Sub(), (x, y)), [y]), True, False),
]


@pytest.mark.parametrize(("rule", "build", "allowed", "takes"), IN_PLACE,
                         ids=[row[0] for row in IN_PLACE])
def test_in_place_only_where_allowed(rule: str, build, allowed: bool, takes: bool) -> None:  # noqa: ANN001, FBT001
    assert _takeover(build, allowed) == (1 if takes else None), rule  # 1 is y


def test_a_takeover_by_a_value_that_dies_at_once_frees_the_buffer_once() -> None:
    b = GraphBuilder()
    x = b.add_input("x", F4)
    y = b.add(ops.Exp(), (x,))
    z = b.add(ops.Tanh(), (y,))          # nothing reads z: it dies where it is written
    g = b.build([b.add(ops.Sin(), (x,))])
    live = liveness(g, [x, y, z, 3])
    alloc = Allocator(live)
    freed = []
    for i in live.schedule:
        if i in (y, z):
            alloc.take(i, "float32", 16, inplace=True)
        freed.extend(alloc.step())
    assert alloc.takeovers == {z: y} and freed == [0]


def test_best_fit_prefers_exact_then_smallest_larger_then_largest_smaller() -> None:
    sizes = [32, 16, 64, 8, 16]
    rows = [([0, 1, 2, 3, 4], 16, 1), ([0, 2, 3], 16, 0), ([2, 3], 16, 2), ([3, 1], 40, 1),
            ([], 8, None)]
    for free, need, want in rows:
        assert best_fit(list(free), sizes, need) == want, (free, need)


# --------------------------------------------------------------------------- errors


def _small() -> Graph:
    b = GraphBuilder()
    x = b.add_input("x", F4)
    y = b.add(ops.Exp(), (x,))
    return b.build([b.add(ops.Tanh(), (y,))])


@pytest.mark.parametrize(("schedule", "views", "says"), [
    ([0, 1, 1, 2], (), "twice"),
    ([0, 2, 1], (), "does not compute before"),
    ([0, 1], (), "leaves out the graph outputs %2"),
    ([0, 1, 2, 7], (), "not a node"),
    ([0, 1, 2], (0,), "no input to look into"),
])
def test_a_schedule_that_cannot_run_the_graph_is_refused(schedule, views, says) -> None:  # noqa: ANN001
    with pytest.raises(ScheduleError, match=says) as info:
        liveness(_small(), schedule, views)
    assert isinstance(info.value, PyasgError)


def test_the_allocator_refuses_requests_out_of_turn() -> None:
    g = _small()
    b = GraphBuilder(g)
    r = b.add(ops.Reshape((2, 2)), (2,))
    g = b.build([r])
    live = liveness(g, g.live_ids, views={r})
    alloc = Allocator(live)
    with pytest.raises(ScheduleError, match="starts at position 1"):
        alloc.take(1, "float32", 16)             # %1 is written at position 1, not 0
    alloc.step()
    alloc.take(1, "float32", 16)
    with pytest.raises(ScheduleError, match="already has buffer"):
        alloc.take(1, "float32", 16)
    alloc.step()
    alloc.step()
    with pytest.raises(ScheduleError, match="is a view of %2"):
        alloc.take(r, "float32", 16)
    with pytest.raises(ScheduleError, match="not in the schedule"):
        alloc.take(99, "float32", 16)


# --------------------------------------------------------------------------- the planners


@pytest.mark.wgpu
def test_the_wgpu_executables_buffers_pass_the_checker() -> None:
    """A training step's wgpu buffers: no two values needed at once share one, so no
    dispatch binds one buffer as an input and as its output."""
    require_wgpu()
    layers = [pyasg.nn.Linear(6, 8), pyasg.nn.Linear(8, 3)]
    params = [layer.init(pyasg.random.key(k)) for k, layer in enumerate(layers)]

    def step(p, x):  # noqa: ANN001, ANN202
        def loss(p):  # noqa: ANN001, ANN202
            h = pyasg.relu(layers[0](p[0], x)).reshape(2, 16)
            return pyasg.mean(layers[1](p[1], h.reshape(4, 8)) ** 2)

        value, grads = pyasg.value_and_grad(loss)(p)
        return pyasg.tree_map(lambda a, g: a - 0.1 * g, p, grads), value

    x = np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32)
    graph = pyasg.simplify(pyasg.make_graph(step)(params, x))
    ex = pyasg.jit_to_backend(graph, "wgpu", fuse=False)
    g = ex.graph
    # the order the dispatches run in (horizontal fusion reorders the trace's); a merged
    # run keeps all its values alive (grouping.widen), more than this check asks
    schedule = list(ex.schedule)
    assert sorted(schedule) == sorted(set(g.live_ids) | set(g.inputs))
    views = {i for i in schedule if g.nodes[i].op.name == "reshape"}
    assert views, "no alias: the test checks less than it says"
    assert len({id(b) for b in ex._buffers.values()}) < len(schedule)  # noqa: SLF001
    ids: dict[int, int] = {}
    buffer_of = {s: ids.setdefault(id(ex._buffers[s]), len(ids))  # noqa: SLF001
                 for s in schedule if root(g, views, s) == s}
    sizes = {ids[id(buf)]: buf.size for buf in ex._buffers.values()}  # noqa: SLF001
    asked = {s: (None, max(4, g.nodes[s].type.size * 4)) for s in buffer_of}
    check(g, schedule, views, Planned(buffer_of, [(None, sizes[k]) for k in range(len(ids))],
                                      asked=asked))
    for i in schedule:
        if i in views:
            assert ex._buffers[i] is ex._buffers[g.nodes[i].inputs[0]]  # noqa: SLF001
