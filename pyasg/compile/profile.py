"""`pyasg.profile(step, *args)`: where a compiled step's time goes, node by node.

It compiles `step` for the arguments' signature (the executable `pyasg.jit` runs for
them), runs `warmup` steps, then has the backend's profiler time `repeat` rounds
(`pyasg.kernels.numpy.profile`, `pyasg.kernels.wgpu.profile`). The `Profile` has a row
per kernel node, totals, a grouping by op text and FLOP rates. What each number is:

- a row's **time**: the node's kernel per step, the median over rounds. numpy: the
  wall time of its call in an instrumented run of the executable's own generated
  code. wgpu: the GPU time of its dispatches, by timestamp queries where the device
  has them, else each dispatch timed alone (`Profile.method`, `Profile.measures`).
- **step**: the median wall time of a plain, uninstrumented call until its results
  are ready (wgpu: until the GPU has finished it). **share**: a row's time / step.
- **kernels**: the sum of the rows. **span**: the time the rows are parts of (numpy:
  the instrumented run's wall time; wgpu timestamps: first to last timestamp).
  **in no kernel** = step - kernels: numpy's generated glue (output allocation,
  `del`s), wgpu's recording, submission, input and output copies and waiting.
  On numpy the kernels' sum is 75-105 % of the step (tests/test_profile.py checks it;
  typically 85-99 %: the glue is about a microsecond a kernel, and above 100 % only
  by noise, the two being timed in separate runs).
- **host**: wgpu's time to record and submit a call (it returns before the GPU ends).
- **FLOPs** (`pyasg.compile.flops`): matmuls, convolutions and attention, 2 per
  multiply-add; a row's rate is its FLOPs / its time.

>>> import pyasg, numpy as np
>>> p = profile(lambda a, b: a @ b, np.ones((4, 3), np.float32), np.ones((3, 5), np.float32))
>>> [(r.op, r.type, r.flops) for r in p.rows]  # 2 FLOPs x 4 x 3 x 5
[('matmul', 'f32[4,5]', 120)]
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from types import ModuleType
from typing import Any

import numpy as np

from pyasg.asg.graph import Graph
from pyasg.asg.ops import Fused, Op
from pyasg.compile.cache import Jitted
from pyasg.compile.flops import node_flops
from pyasg.compile.protocol import Backend
from pyasg.errors import PyasgError
from pyasg.errors import shown as quoted
from pyasg.kernels.numpy import profile as numpy_profile
from pyasg.kernels.timing import Timing


class ProfileError(PyasgError):
    """`profile` was given something it cannot time: bad counts, method or backend."""


def _wgpu_profiler() -> ModuleType:
    from pyasg.kernels.wgpu import profile as wgpu_profile  # optional: needs `wgpu`

    return wgpu_profile


#: backend name -> its profiler module (`METHODS`, `time_executable`); one line each.
PROFILERS: dict[str, Callable[[], ModuleType]] = {
    "numpy": lambda: numpy_profile, "wgpu": _wgpu_profiler}


def op_text(op: Op) -> str:
    """How a row names its op: `fused[reshape, transpose, matmul]`, else the op's name.

    >>> from pyasg.asg.ops import MatMul
    >>> op_text(MatMul())
    'matmul'
    """
    return str(op) if isinstance(op, Fused) else op.name


@dataclass(frozen=True)
class Row:
    """One kernel node: id, op text, output type, the user's line, dispatches per step
    (numpy: 1 call), seconds per step, share of the step, FLOPs (None: not counted)."""

    node: int
    op: str
    type: str
    source: str | None
    dispatches: int
    seconds: float
    share: float
    flops: int | None

    @property
    def flop_rate(self) -> float | None:
        """FLOPs per second of this node's kernel (None without FLOPs or time)."""
        return self.flops / self.seconds if self.flops and self.seconds > 0 else None


@dataclass(frozen=True)
class Group:
    """The rows of one op text: how many, their total seconds and share of the step."""

    op: str
    count: int
    seconds: float
    share: float

    @property
    def mean(self) -> float:
        """Seconds per node (count x mean = total)."""
        return self.seconds / self.count


@dataclass(frozen=True)
class Profile:
    """The report of `profile` (the module docstring says what each number measures).

    `rows` are sorted by time, longest first; `str(profile)` is `table()`.
    """

    name: str
    backend: str
    device: str
    method: str
    measures: str
    rows: tuple[Row, ...]
    step_seconds: float
    span_seconds: float | None
    host_seconds: float | None
    repeat: int
    warmup: int

    @property
    def kernel_seconds(self) -> float:
        """The sum of the rows' times."""
        return sum(r.seconds for r in self.rows)

    @property
    def dispatches(self) -> int:
        """Kernel calls (numpy) or dispatches (wgpu) per step."""
        return sum(r.dispatches for r in self.rows)

    @property
    def flops(self) -> int:
        """The counted FLOPs of one step (matmuls, convolutions, attention)."""
        return sum(r.flops or 0 for r in self.rows)

    def groups(self) -> list[Group]:
        """The rows grouped by op text, the longest total first."""
        totals: dict[str, list[Row]] = {}
        for r in self.rows:
            totals.setdefault(r.op, []).append(r)
        groups = [Group(op, len(rs), sum(r.seconds for r in rs), sum(r.share for r in rs))
                  for op, rs in totals.items()]
        return sorted(groups, key=lambda g: (-g.seconds, g.op))

    def table(self, top: int = 20) -> str:
        """A readable report: the totals, the `top` longest nodes, the op groups."""
        ms = _ms
        lines = [f"profile of {self.name} on {self.backend} ({self.device})",
                 f"method {self.method}: {self.measures} ({self.repeat} rounds after "
                 f"{self.warmup} warm-up)"]
        rest = self.step_seconds - self.kernel_seconds
        totals = (f"step {ms(self.step_seconds)} ms (wall) = kernels "
                  f"{ms(self.kernel_seconds)} ms ({_pct(self.kernel_seconds, self.step_seconds)}) "
                  f"+ in no kernel {ms(rest)} ms")
        if self.span_seconds is not None:
            what = "instrumented run" if self.host_seconds is None else "GPU span"
            totals += f"; {what} {ms(self.span_seconds)} ms"
        if self.host_seconds is not None:
            totals += f"; host record+submit {ms(self.host_seconds)} ms"
        lines.append(totals)
        work = f"{len(self.rows)} kernel nodes"
        if self.dispatches != len(self.rows):
            work += f", {self.dispatches} dispatches per step"
        if self.flops:
            work += (f"; {self.flops / 1e9:.3g} GFLOP in matmuls, convolutions and attention: "
                     f"{_rate(self.flops, self.step_seconds)} over the step")
        lines += [work, ""]
        header = (f"{'ms':>9} {'step%':>6} {'disp':>4} {'GFLOP/s':>8} {'node':>6}  "
                  f"{'op':<44} {'type':<18} source")
        lines.append(header)
        shown = self.rows[:max(top, 0)]
        for r in shown:
            rate = f"{r.flop_rate / 1e9:8.1f}" if r.flop_rate is not None else f"{'':8}"
            lines.append(f"{ms(r.seconds):>9} {r.share * 100:5.1f}% {r.dispatches:>4} {rate} "
                         f"{'%' + str(r.node):>6}  {_cut(r.op, 44):<44} {r.type:<18} "
                         f"{r.source or ''}".rstrip())
        hidden = self.rows[len(shown):]
        if hidden:
            seconds = sum(r.seconds for r in hidden)
            lines.append(f"{'':>9} ({len(hidden)} more nodes: {ms(seconds)} ms, "
                         f"{_pct(seconds, self.step_seconds)} of the step)")
        lines += ["", "by op (count x mean = total, share of the step):"]
        for g in self.groups()[:max(top, 0)]:
            lines.append(f"  {_cut(g.op, 44):<44} x{g.count:<4} x {ms(g.mean):>8} ms = "
                         f"{ms(g.seconds):>9} ms  {g.share * 100:5.1f}%")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-ready: the fields, the totals, each row and each group."""
        out = {k: v for k, v in asdict(self).items() if k != "rows"}
        out.update(kernel_seconds=self.kernel_seconds, dispatches=self.dispatches,
                   flops=self.flops,
                   rows=[{**asdict(r), "flop_rate": r.flop_rate} for r in self.rows],
                   groups=[{**asdict(g), "mean": g.mean} for g in self.groups()])
        return out

    def to_json(self, indent: int | None = None) -> str:
        """`to_dict()` as JSON text (for the benchmark results)."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f}"


def _pct(part: float, whole: float) -> str:
    return f"{part / whole * 100:.1f}%" if whole > 0 else "-"


def _rate(flops: int, seconds: float) -> str:
    return f"{flops / seconds / 1e9:.1f} GFLOP/s" if seconds > 0 else "-"


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def report(name: str, backend: str, graph: Graph, timing: Timing) -> Profile:
    """The `Profile` of a backend's `Timing` of the executable that runs `graph`.

    >>> from pyasg.kernels.timing import KernelTime
    >>> import pyasg
    >>> g = pyasg.make_graph(lambda x: x @ x)(np.ones((2, 2), np.float32))
    >>> t = Timing("m", "what", "cpu", (KernelTime(1, 1, 0.5),), step_seconds=1.0)
    >>> p = report("f", "numpy", g, t)
    >>> p.rows[0].op, p.rows[0].share, p.rows[0].flops
    ('matmul', 0.5, 16)
    """
    rows = []
    for k in timing.kernels:
        node = graph.nodes[k.node]
        in_types = [graph.nodes[j].type for j in node.inputs]
        share = k.seconds / timing.step_seconds if timing.step_seconds > 0 else 0.0
        rows.append(Row(k.node, op_text(node.op), repr(node.type), node.source, k.dispatches,
                        k.seconds, share, node_flops(node.op, in_types, node.type)))
    rows.sort(key=lambda r: (-r.seconds, r.node))
    return Profile(name, backend, timing.device, timing.method, timing.measures, tuple(rows),
                   timing.step_seconds, timing.span_seconds, timing.host_seconds,
                   timing.repeat, timing.warmup)


def _jitted(fn: Callable[..., Any], backend: str | Backend | None) -> Jitted:
    """`fn` as a `Jitted` for `backend`: itself when it is one for that backend."""
    if isinstance(fn, Jitted):
        if backend is None or backend == fn.backend:
            return fn
        return Jitted(fn.fn, backend, fn.static_argnums, fn.name, fn.fuse)
    if not callable(fn):
        raise ProfileError(f"profile: the step must be a function or a pyasg.jit function, "
                           f"got {type(fn).__name__}")
    return Jitted(fn, backend, (), None)


def profile(fn: Callable[..., Any], *args: object, backend: str | Backend | None = None,
            repeat: int = 10, warmup: int = 2, method: str | None = None) -> Profile:
    """Time every kernel of `fn`'s compiled step on `args` (see the module docstring).

    `fn`: a `pyasg.jit` function (its own executable for these arguments), or a plain
    function, jitted here. `backend` overrides its backend. `warmup` untimed steps run
    first, then `repeat` timed rounds. `method`: the backend's timing method (numpy:
    "instrumented"; wgpu: "timestamps", "pass-timestamps" or "isolated"; default: the
    best the device allows).

    >>> import numpy as np
    >>> p = profile(lambda x: x * 2.0 + 1.0, np.ones(3, np.float32), repeat=2, warmup=0)
    >>> p.backend, len(p.rows), p.rows[0].op
    ('numpy', 1, 'fused[mul, add]')
    """
    for label, value, low in (("repeat", repeat, 1), ("warmup", warmup, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ProfileError(f"profile: {label} must be an integer >= {low}, got "
                               f"{quoted(value, with_type=True)}")
    jitted = _jitted(fn, backend)
    compiled, chosen, pairs, signature = jitted._entry(args)
    make = PROFILERS.get(chosen.name)
    if make is None:
        raise ProfileError(f"profile: the {chosen.name} backend has no profiler; use one of "
                           f"{', '.join(PROFILERS)}")
    profiler = make()
    if method is not None and method not in profiler.METHODS:
        raise ProfileError(f"profile: unknown method {quoted(method)} for the {chosen.name} "
                           f"backend; choose one of {', '.join(profiler.METHODS)}")
    on_device = chosen.device_array
    arrays = [leaf if on_device is not None and isinstance(leaf, on_device)
              else np.asarray(leaf, dtype=sig[1]) for (_, leaf), sig in zip(pairs, signature)]
    executable = compiled.executable
    timing = profiler.time_executable(executable, arrays, repeat=repeat, warmup=warmup,
                                      method=method)
    return report(jitted.name, chosen.name, executable.graph, timing)
