"""The step's cost on the graph: what each node of a compiled step costs, for the heat map.

`step_cost(profile, executable)` joins a `pyasg.profile` report with the executable
it timed: the rows are keyed by the nodes of the graph that ran (the graph the
viewer shows as kind "fused": a fused group is one node there, and its kernel's
whole time lands on it). Every node of that graph gets a `NodeCost`: its kernel's
seconds per step (0 for nodes that run no kernel: inputs, constants, views), its
FLOPs (`pyasg.compile.flops`), the bytes its value occupies and where (numpy: the
memory plan, `pyasg.kernels.numpy.memory`: a static buffer, in place of a dying
input, allocated per call; wgpu: its device buffer, its own, shared by liveness, or
its input's for an alias), the ops it holds, and its generated kernel source (numpy:
the Python of a fused group; wgpu: the WGSL of its dispatches; None for a library
kernel).

`measure(step, *args)` profiles and joins in one call; `publish_cost` sends the
graph and its cost to the viewer (`GraphReady` and `CostReady`, kind "fused"). The
viewer colours boxes by `box_heat` (a collapsed box sums its nodes) with
`heat_color`, and its inspector shows `inspector_lines`. All of it is plain data:
no display needed.

>>> import numpy as np, pyasg
>>> step = pyasg.jit(lambda a, b: pyasg.tanh(a @ b) * 2.0)
>>> cost = measure(step, np.ones((8, 4), np.float32), np.ones((4, 8), np.float32), repeat=2)
>>> [(c.op, c.ops, c.bytes) for c in cost.nodes.values() if c.dispatches]
[('fused[matmul, tanh, mul]', ('matmul', 'tanh', 'mul'), 256)]
>>> print(cost.nodes[cost.graph.outputs[0]].source.splitlines()[0])
def fused(x0, x1, out=None, scratch=None):
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from pyasg import events
from pyasg.asg.graph import Graph
from pyasg.asg.ops import Constant, Fused, Input
from pyasg.compile.flops import node_flops
from pyasg.compile.profile import Profile, _jitted, op_text, profile
from pyasg.errors import PyasgError, shown
from pyasg.kernels import lower
from pyasg.kernels.numpy.memory import MemoryPlan, nbytes
from pyasg.trace.tree import tree_map

__all__ = ["HEAT_STOPS", "METRICS", "NO_COST", "CostError", "NodeCost", "StepCost",
           "box_heat", "heat_color", "inspector_lines", "measure", "publish_cost",
           "step_cost"]


class CostError(PyasgError):
    """A profile and an executable that do not belong together, or malformed cost data."""


#: What the heat map can colour by: the `NodeCost` field of each.
METRICS: dict[str, str] = {"time": "seconds", "memory": "bytes", "flops": "flops"}
#: The heat map's colour ramp, from the cheapest (0) to the costliest node (1).
HEAT_STOPS: tuple[tuple[float, tuple[int, int, int]], ...] = (
    (0.0, (40, 60, 140)), (0.35, (120, 60, 170)), (0.7, (230, 110, 50)),
    (1.0, (255, 235, 90)))
#: The colour of a box that costs nothing by the chosen metric (no kernel, no memory).
NO_COST = (70, 70, 78)


@dataclass(frozen=True)
class NodeCost:
    """What one node of the graph that ran costs per step (see the module docstring)."""

    node: int
    op: str
    ops: tuple[str, ...]
    seconds: float
    share: float
    dispatches: int
    flops: int | None
    bytes: int
    memory: str
    source: str | None = None


@dataclass(frozen=True)
class StepCost:
    """The cost of every node of one compiled step; `graph` is the graph that ran
    (not part of `to_dict`: the viewer has it from `GraphReady`)."""

    name: str
    backend: str
    device: str
    method: str
    step_seconds: float
    nodes: dict[int, NodeCost]
    graph: Graph | None = field(default=None, compare=False, repr=False)

    @property
    def kernel_seconds(self) -> float:
        """The sum of the nodes' kernel times (the profile's `kernel_seconds`)."""
        return math.fsum(c.seconds for c in self.nodes.values())

    @property
    def total_bytes(self) -> int:
        """The bytes of every value the step holds in memory it owns."""
        return sum(c.bytes for c in self.nodes.values())

    def value(self, nodes: Iterable[int], metric: str) -> float:
        """The sum of `metric` ("time", "memory", "flops") over `nodes` (a box's).

        >>> c = StepCost("f", "numpy", "cpu", "m", 1.0, {1: NodeCost(1, "exp", ("exp",),
        ...              0.25, 0.25, 1, None, 64, "static buffer 0")})
        >>> c.value([0, 1], "time"), c.value([1], "memory")
        (0.25, 64.0)
        """
        attr = _metric(metric)
        return math.fsum(float(getattr(self.nodes[i], attr) or 0)
                         for i in nodes if i in self.nodes)

    def fits(self, graph: Graph) -> bool:
        """Whether this cost was measured on `graph`: the same nodes, each with the same
        op (a step compiled again, after a model-lab change, has others).

        >>> import numpy as np, pyasg
        >>> f = pyasg.jit(lambda x: pyasg.exp(x) * 2.0)
        >>> c = measure(f, np.ones(3, np.float32), repeat=1, warmup=0)
        >>> c.fits(c.graph), c.fits(pyasg.make_graph(lambda x: x + 1.0)(np.ones(3, np.float32)))
        (True, False)
        """
        ids = set(graph.live_ids) | set(graph.inputs)
        return ids == set(self.nodes) and all(
            op_text(graph.nodes[i].op) == self.nodes[i].op for i in ids)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (nodes keyed by their id as text)."""
        return {"name": self.name, "backend": self.backend, "device": self.device,
                "method": self.method, "step_seconds": self.step_seconds,
                "nodes": {str(i): {**asdict(c), "ops": list(c.ops)}
                          for i, c in self.nodes.items()}}

    @classmethod
    def from_dict(cls, data: object) -> StepCost:
        """`to_dict`'s data back (raises CostError naming the first defect)."""
        top = {"name", "backend", "device", "method", "step_seconds", "nodes"}
        if not isinstance(data, dict) or set(data) != top:
            raise CostError(f"step cost data must have fields {sorted(top)}, got "
                            f"{shown(data, 80)}")
        nodes = data["nodes"]
        if not isinstance(nodes, dict):
            raise CostError("step cost data: nodes must be an object")
        return cls(_text(data["name"], "name"), _text(data["backend"], "backend"),
                   _text(data["device"], "device"), _text(data["method"], "method"),
                   _number(data["step_seconds"], "step_seconds"),
                   {_id(k): _node(v, k) for k, v in nodes.items()})


_NODE_FIELDS = {"node", "op", "ops", "seconds", "share", "dispatches", "flops", "bytes",
                "memory", "source"}


def _text(x: object, where: str) -> str:
    if not isinstance(x, str):
        raise CostError(f"step cost data: {where} must be a string, got {shown(x, 40)}")
    return x


def _number(x: object, where: str) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x) or x < 0:
        raise CostError(f"step cost data: {where} must be a finite number >= 0, got "
                        f"{shown(x, 40)}")
    return float(x)


def _count(x: object, where: str) -> int:
    if isinstance(x, bool) or not isinstance(x, int) or x < 0:
        raise CostError(f"step cost data: {where} must be an integer >= 0, got {shown(x, 40)}")
    return x


def _id(key: object) -> int:
    if not isinstance(key, str) or not key.isdigit():
        raise CostError(f"step cost data: node keys are node ids, got {shown(key, 40)}")
    return int(key)


def _node(x: object, key: str) -> NodeCost:
    where = f"nodes[{key}]"
    if not isinstance(x, dict) or set(x) != _NODE_FIELDS:
        raise CostError(f"step cost data: {where} must have fields {sorted(_NODE_FIELDS)}")
    ops = x["ops"]
    if not isinstance(ops, list):
        raise CostError(f"step cost data: {where}.ops must be a list")
    if _count(x["node"], f"{where}.node") != int(key):
        raise CostError(f"step cost data: {where}.node is {x['node']}, not {key}")
    source = x["source"]
    return NodeCost(int(key), _text(x["op"], f"{where}.op"),
                    tuple(_text(o, f"{where}.ops") for o in ops),
                    _number(x["seconds"], f"{where}.seconds"),
                    _number(x["share"], f"{where}.share"),
                    _count(x["dispatches"], f"{where}.dispatches"),
                    None if x["flops"] is None else _count(x["flops"], f"{where}.flops"),
                    _count(x["bytes"], f"{where}.bytes"), _text(x["memory"], f"{where}.memory"),
                    None if source is None else _text(source, f"{where}.source"))


def _metric(metric: str) -> str:
    attr = METRICS.get(metric)
    if attr is None:
        raise CostError(f"unknown heat-map metric {shown(metric)}; choose one of "
                        f"{', '.join(METRICS)}")
    return attr


# --------------------------------------------------------------------------- the join


def _numpy_memory(plan: MemoryPlan, graph: Graph, i: int) -> tuple[int, str]:
    """(bytes, where) of value %i under a numpy memory plan."""
    node = graph.nodes[i]
    scratch = sum(plan.buffers[b][1] for b in plan.scratch_of.get(i, ()))
    extra = f" + {format_value(scratch, 'memory')} of kernel temporaries" if scratch else ""
    size = nbytes(node.type)
    if i in plan.inplace:
        return size + scratch, f"in place of %{plan.inplace[i]}'s buffer{extra}"
    if i in plan.buffer_of:
        b = plan.buffer_of[i]
        sharing = sum(1 for v in plan.buffer_of.values() if v == b)
        held = "its own" if sharing == 1 else f"shared in turn by {sharing} values"
        return size + scratch, (f"static buffer {b} "
                                f"({format_value(plan.buffers[b][1], 'memory')}, {held}){extra}")
    if i in plan.donations:
        return 0, f"written into donated input %{plan.donations[i]}"
    if i in plan.fresh or i in plan.copy_outputs or i in graph.outputs:
        return size + scratch, f"an output, allocated per call{extra}"
    if i in plan.allocating:
        return size + scratch, f"allocated per call by its kernel{extra}"
    return scratch, f"a view: no memory of its own{extra}"


def _device_memory(buffers: dict[int, Any], graph: Graph, i: int) -> tuple[int, str]:
    """(bytes, where) of value %i among a device executable's buffers by node (wgpu's:
    an alias holds its input's buffer; intermediates share buffers by liveness)."""
    buffer = buffers[i]

    def alias_of(j: int) -> int | None:  # the input whose buffer %j holds, if any
        return next((k for k in graph.nodes[j].inputs if buffers.get(k) is buffer), None)

    source = alias_of(i)
    if source is not None:
        return 0, f"an alias of %{source}'s buffer: no memory of its own"
    sharing = sum(1 for j, b in buffers.items() if b is buffer and alias_of(j) is None)
    size = format_value(getattr(buffer, "size", 0), "memory")
    held = "its own" if sharing == 1 else f"shared in turn by {sharing} values"
    return graph.nodes[i].type.size * 4, f"a device buffer ({size}, {held})"


def _memory(executable: Any, graph: Graph, i: int) -> tuple[int, str]:
    """(bytes, where) of value %i: by the numpy memory plan, or the device buffers by node,
    where the executable has them; else the value's size."""
    op = graph.nodes[i].op
    if isinstance(op, Input):
        return 0, "an argument (the caller's memory)"
    if isinstance(op, Constant):
        return nbytes(graph.nodes[i].type), "a constant the executable holds"
    plan = getattr(executable, "plan", None)
    if isinstance(plan, MemoryPlan):
        return _numpy_memory(plan, graph, i)
    buffers = getattr(executable, "_buffers", None)  # the wgpu executable's, by node
    if isinstance(buffers, dict) and i in buffers:
        return _device_memory(buffers, graph, i)
    return nbytes(graph.nodes[i].type), "memory of the value's size"


#: How a backend's kernel record shows its generated code, tried in order: numpy's
#: generated fused Python (`fn.source`), wgpu's WGSL (one shader per dispatch).
SOURCES: tuple[Callable[[Any], str | None], ...] = (
    lambda k: getattr(getattr(k, "fn", None), "source", None),
    lambda k: "\n\n".join(d.source for d in k.dispatches) or None
    if getattr(k, "dispatches", None) else None,
)


def kernel_source(executable: Any, graph: Graph, i: int) -> str | None:
    """The generated source of node %i's kernel, or None (a library kernel)."""
    node = graph.nodes[i]
    kernel = lower(node.op, executable.backend,
                   in_types=tuple(graph.nodes[j].type for j in node.inputs),
                   out_type=node.type)
    for rule in SOURCES:
        source = rule(kernel)
        if source:
            return source
    return None


def step_cost(report: Profile, executable: Any) -> StepCost:
    """Every node's cost from `report` (a `pyasg.profile` of `executable`) and the
    executable's graph and memory plan.

    >>> import numpy as np, pyasg
    >>> f = pyasg.jit(lambda x: pyasg.exp(x).sum())
    >>> x = np.ones((4, 4), np.float32)
    >>> c = step_cost(pyasg.profile(f, x, repeat=1, warmup=0), f.lower(x))
    >>> [(n.op, n.memory) for n in c.nodes.values()]  # doctest: +ELLIPSIS
    [('input', "an argument (the caller's memory)"), ('fused[exp, sum]', 'an output, ...')]
    """
    graph = getattr(executable, "graph", None)
    if not isinstance(graph, Graph):
        raise CostError(f"step_cost: {shown(executable, 60, with_type=True)} is not an "
                        f"executable with a graph")
    rows = {}
    live = set(graph.live_ids)
    for row in report.rows:
        if row.node not in live:
            raise CostError(f"step_cost: the profile of {report.name} times node %{row.node}, "
                            f"which is not a node that runs in {executable.name}: profile the "
                            f"executable you pass (pyasg.profile(step, *args) and "
                            f"step.lower(*args))")
        rows[row.node] = row
    nodes: dict[int, NodeCost] = {}
    for i in sorted(live | set(graph.inputs)):
        node = graph.nodes[i]
        op = node.op
        ops = op.op_names if isinstance(op, Fused) else (op.name,)
        size, where = _memory(executable, graph, i)
        row = rows.get(i)
        if row is None:
            flops = node_flops(op, [graph.nodes[j].type for j in node.inputs], node.type) \
                if not isinstance(op, (Input, Constant)) else None
            nodes[i] = NodeCost(i, op_text(op), ops, 0.0, 0.0, 0, flops, size, where)
            continue
        nodes[i] = NodeCost(i, row.op, ops, row.seconds, row.share, row.dispatches, row.flops,
                            size, where, kernel_source(executable, graph, i))
    return StepCost(report.name, report.backend, report.device, report.method,
                    report.step_seconds, nodes, graph)


def _copied(tree: Any) -> Any:
    """`tree` with its numpy arrays copied (a donating step overwrites its arguments)."""
    return tree_map(lambda a: a.copy() if isinstance(a, np.ndarray) else a, tree)


def measure(step: Callable[..., Any], *args: object, backend: Any = None, repeat: int = 5,
            warmup: int = 1) -> StepCost:
    """Profile `step` (a `pyasg.jit` function, or a plain one, jitted here) on copies of
    `args` and join the report with its executable (`step_cost`); the arguments
    themselves are left untouched even where the step donates them."""
    jitted = _jitted(step, backend)
    args = tuple(_copied(a) for a in args)
    executable = jitted.lower(*args)
    return step_cost(profile(jitted, *args, repeat=repeat, warmup=warmup), executable)


def publish_cost(cost: StepCost, kind: str = "fused") -> None:
    """Send the graph that ran and its cost to the viewer (`GraphReady`, `CostReady`)."""
    if cost.graph is None:
        raise CostError("publish_cost: this StepCost has no graph (it was read from data); "
                        "publish the one `measure` or `step_cost` returned")
    events.publish(events.GraphReady(cost.name, cost.graph, kind))
    events.publish(events.CostReady(cost.name, kind, cost.to_dict()))


# --------------------------------------------------------------------------- the heat map


def heat_color(fraction: float | None) -> tuple[int, int, int]:
    """The colour of a box at `fraction` of the costliest box (None: it costs nothing).

    >>> heat_color(0.0), heat_color(1.0), heat_color(None) == NO_COST
    ((40, 60, 140), (255, 235, 90), True)
    """
    if fraction is None:
        return NO_COST
    f = min(1.0, max(0.0, float(fraction)))
    for (f0, c0), (f1, c1) in zip(HEAT_STOPS, HEAT_STOPS[1:]):
        if f <= f1:
            t = 0.0 if f1 == f0 else (f - f0) / (f1 - f0)
            return tuple(round(a + (b - a) * t) for a, b in zip(c0, c1))  # type: ignore[return-value]
    return HEAT_STOPS[-1][1]


def box_heat(cost: StepCost, boxes: Mapping[Any, Iterable[int]],
             metric: str) -> dict[Any, float | None]:
    """Each box's share of the costliest box's `metric` (sum over the box's nodes), in
    [0, 1]; None for a box that costs nothing by it.

    >>> c = StepCost("f", "numpy", "cpu", "m", 1.0, {
    ...     1: NodeCost(1, "exp", ("exp",), 0.2, 0.2, 1, None, 0, "v"),
    ...     2: NodeCost(2, "add", ("add",), 0.4, 0.4, 1, None, 0, "v")})
    >>> box_heat(c, {"a": [1], "b": [2], "c": [0]}, "time")
    {'a': 0.5, 'b': 1.0, 'c': None}
    """
    values = {key: cost.value(nodes, metric) for key, nodes in boxes.items()}
    top = max(values.values(), default=0.0)
    return {key: (v / top if v > 0 and top > 0 else None) for key, v in values.items()}


def format_value(value: float, metric: str) -> str:
    """A metric's value as people read it: ms, KiB/MiB, MFLOP.

    >>> format_value(0.0012, "time"), format_value(3 * 2**20, "memory"), format_value(2e6, "flops")
    ('1.200 ms', '3.00 MiB', '2.0 MFLOP')
    """
    _metric(metric)
    if metric == "time":
        return f"{value * 1e3:.3f} ms"
    if metric == "memory":
        return f"{value / 2**20:.2f} MiB" if value >= 2**20 else f"{value / 1024:.1f} KiB"
    return f"{value / 1e6:.1f} MFLOP"


def inspector_lines(cost: StepCost, nodes: Iterable[int],
                    label: Callable[[str], str]) -> list[str]:
    """What the inspector shows of the cost of `nodes` (one node, or a collapsed box's):
    time and share, FLOPs and rate, memory and where it lives, the ops a fused node
    holds, and its generated kernel source. `label(key)` gives the texts
    (`pyasg.viewer.texts.COST_TEXT` in the viewer's language).

    >>> c = StepCost("f", "numpy", "cpu", "m", 1e-3, {3: NodeCost(3, "fused[exp, mul]",
    ...              ("exp", "mul"), 5e-4, 0.5, 1, None, 64, "static buffer 0", "def fused(x0)")})
    >>> inspector_lines(c, [3], lambda k: k)  # doctest: +NORMALIZE_WHITESPACE
    ['cost_time: 0.500 ms (50.0% cost_of_step)', 'cost_flops: -',
     'cost_memory: 0.1 KiB (static buffer 0)', 'cost_ops: exp, mul',
     'cost_source:', 'def fused(x0)']
    """
    shown_nodes = [cost.nodes[i] for i in nodes if i in cost.nodes]
    if not shown_nodes:
        return [label("cost_none")]
    seconds = math.fsum(c.seconds for c in shown_nodes)
    share = seconds / cost.step_seconds if cost.step_seconds > 0 else 0.0
    flops = [c.flops for c in shown_nodes if c.flops]
    size = sum(c.bytes for c in shown_nodes)
    lines = [f"{label('cost_time')}: {format_value(seconds, 'time')} "
             f"({share * 100:.1f}% {label('cost_of_step')})"]
    if flops:
        rate = f", {sum(flops) / seconds / 1e9:.2f} GFLOP/s" if seconds > 0 else ""
        lines.append(f"{label('cost_flops')}: {format_value(sum(flops), 'flops')}{rate}")
    else:
        lines.append(f"{label('cost_flops')}: -")
    if len(shown_nodes) == 1:
        lines.append(f"{label('cost_memory')}: {format_value(size, 'memory')} "
                     f"({shown_nodes[0].memory})")
        if len(shown_nodes[0].ops) > 1:
            lines.append(f"{label('cost_ops')}: {', '.join(shown_nodes[0].ops)}")
        if shown_nodes[0].source:
            lines += [f"{label('cost_source')}:", shown_nodes[0].source]
    else:
        lines.append(f"{label('cost_memory')}: {format_value(size, 'memory')}")
    return lines
