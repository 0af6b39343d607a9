"""WGSL kernels of the control-flow ops: the sub-graph's kernels inlined, per iteration.

A `Scan` (static trip count) becomes ONE kernel whose dispatches are, in order: the
body's constants written into scratch buffers (once), the initial carries copied in,
then for each iteration the step's x slices copied out of xs, the body's dispatches
(every body kernel lowered once, its bindings re-pointed at scratch buffers), the
step's y copied into the stacked output and the new carries copied over the old. The
iteration number lives in a one-word scratch counter that a one-thread dispatch steps,
so every iteration records the same shaders (one pipeline each, cached by source) into
the step's single command buffer. `Cond` runs both branches (restricted to the node's
output) and selects by the predicate on the device, with no read-back; `Remat` is its
body inlined once. `WhileLoop` needs its predicate on the host each iteration: it is a
host step (`WgpuKernel.host`): the step submits what it recorded so far, the loop runs
its predicate and body executables, reading the predicate back once per iteration,
and the step goes on in a new submission.

Every copy moves 32-bit words, so any GPU dtype goes through the same shaders.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from pyasg.asg import ops
from pyasg.asg.graph import Graph
from pyasg.asg.ops.control import restrict
from pyasg.errors import BackendError
from pyasg.kernels import lower
from pyasg.kernels.wgpu.array import DeviceArray
from pyasg.kernels.wgpu.backend import WgpuBackend
from pyasg.kernels.wgpu.codegen import grid, wgsl_type
from pyasg.kernels.wgpu.device import get_device
from pyasg.kernels.wgpu.encode import copier
from pyasg.kernels.wgpu.executable import WgpuExecutable
from pyasg.kernels.wgpu.kernel import Dispatch, WgpuKernel
from pyasg.kernels.wgpu.shader import Shader, thread_entry

#: The largest constant (in elements) a loop body may hold: it is written into the
#: shader's source.
MAX_INLINE_CONSTANT = 4096

Binding = tuple


@dataclass
class Inliner:
    """The kernel being built: its scratch buffers (bytes each) and dispatches, and the
    messages of the body kernels that report bad input."""

    backend: object
    scratch: list[int] = field(default_factory=list)
    dispatches: list[Dispatch] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)

    def tmp(self, words: int) -> Binding:
        self.scratch.append(4 * max(1, words))
        return ("tmp", len(self.scratch) - 1)

    def kernel(self) -> WgpuKernel:
        check = "; or ".join(dict.fromkeys(self.checks)) if self.checks else None
        return WgpuKernel(tuple(self.dispatches), tuple(self.scratch), check=check)

    # -------------------------------------------------------------- word movers
    def copy(self, src: Binding, dst: Binding, words: int, src_step: int = 0,
             dst_step: int = 0, counter: Binding | None = None) -> None:
        """dst[dst_step·t + i] = src[src_step·t + i] for i < words, t the counter's value."""
        if words == 0 or src == dst:
            return
        sh = Shader()
        a, b = sh.read("src", "u32", src), sh.write("dst", "u32", dst)
        t = ""
        if src_step or dst_step:
            t = f"  let t = {sh.read('counter', 'u32', counter)}[0];\n"
        body = (f"  if (i >= {words}u) {{ return; }}\n{t}"
                f"  {b}[{dst_step}u * {'t' if dst_step else '0u'} + i] = "
                f"{a}[{src_step}u * {'t' if src_step else '0u'} + i];")
        self.dispatches.append(sh.dispatch(thread_entry(body), grid(words)))

    def fill(self, dst: Binding, words: np.ndarray) -> None:
        """dst[i] = the given 32-bit words (a constant, or zeros)."""
        n = int(words.size)
        if n == 0:
            return
        sh = Shader()
        b = sh.write("dst", "u32", dst)
        if not words.any():
            body = f"  if (i >= {n}u) {{ return; }}\n  {b}[i] = 0u;"
        else:
            if n > MAX_INLINE_CONSTANT:
                raise BackendError(f"a constant of {n} elements inside a loop body is more "
                                   f"than the wgpu backend writes into a shader "
                                   f"({MAX_INLINE_CONSTANT}); pass it into the loop as an "
                                   f"argument instead of making it inside the body")
            items = ", ".join(f"{int(w)}u" for w in words)
            sh.function("word", "k: u32", f"  var data = array<u32, {n}>({items});\n"
                                          f"  return data[k];", "u32")
            body = f"  if (i >= {n}u) {{ return; }}\n  {b}[i] = word(i);"
        self.dispatches.append(sh.dispatch(thread_entry(body), grid(n)))

    def counter(self, start: int) -> Binding:
        c = self.tmp(1)
        self.fill(c, np.array([start], np.uint32))
        return c

    def step(self, counter: Binding, delta: int) -> None:
        sh = Shader()
        c = sh.write("counter", "u32", counter)
        op = "+" if delta > 0 else "-"
        self.dispatches.append(sh.dispatch(thread_entry(
            f"  if (i == 0u) {{ {c}[0] = {c}[0] {op} 1u; }}"), (1, 1, 1)))

    def select(self, pred: Binding, yes: Binding, no: Binding, words: int) -> None:
        """out = yes if pred[0] else no (no read-back: the device chooses)."""
        if words == 0:
            return
        sh = Shader()
        p, a = sh.read("pred", "u32", pred), sh.read("yes", "u32", yes)
        b = sh.read("no", "u32", no) if no != yes else a
        out = sh.write("out", "u32", ("out",))
        self.dispatches.append(sh.dispatch(thread_entry(
            f"  if (i >= {words}u) {{ return; }}\n"
            f"  {out}[i] = select({b}[i], {a}[i], {p}[0] != 0u);"), grid(words)))

    # -------------------------------------------------------------- sub-graphs
    def lower_graph(self, graph: Graph) -> dict[int, WgpuKernel]:
        """Every body node's kernel, lowered once (the constants are not kernels)."""
        kernels = {}
        for i in graph.live_ids:
            node = graph.nodes[i]
            if isinstance(node.op, (ops.Input, ops.Constant)):
                continue
            in_types = tuple(graph.nodes[j].type for j in node.inputs)
            kernels[i] = lower(node.op, self.backend, in_types=in_types, out_type=node.type)
            if kernels[i].host is not None:
                raise BackendError(f"{node.op.name} inside the body of a scan, cond or "
                                   f"checkpoint does not run on the wgpu backend: it runs on "
                                   f"the host between submissions, and a body's commands are "
                                   f"recorded into the step's one command buffer; run this "
                                   f"graph on numpy, or move the loop out of the body",
                                   node.source)
        return kernels

    def place(self, graph: Graph, feeds: dict[int, Binding]) -> dict[int, Binding]:
        """Scratch buffers for the values of `graph` (inputs fed by `feeds`), constants
        written once; returns where each value lives."""
        where = dict(feeds)
        for i in graph.live_ids:
            node = graph.nodes[i]
            if i in where:
                continue
            if isinstance(node.op, ops.Constant):
                where[i] = self.tmp(node.type.size)
                value = np.asarray(node.op.value).astype(
                    {"f32": np.float32, "i32": np.int32, "u32": np.uint32}[wgsl_type(node.type)])
                self.fill(where[i], value.reshape(-1).view(np.uint32))
            elif not isinstance(node.op, ops.Input):
                where[i] = None  # decided by `emit`: a kernel that aliases reuses its input
        return where

    def emit(self, graph: Graph, kernels: dict[int, WgpuKernel], where: dict[int, Binding],
             own: dict[int, tuple[Binding, ...]]) -> None:
        """The dispatches of one run of `graph`, reading and writing `where`'s buffers;
        `own[i]` are node i's scratch buffers (made on the first run, reused after)."""
        for i in graph.live_ids:
            kernel = kernels.get(i)
            if kernel is None:
                continue
            node = graph.nodes[i]
            if kernel.alias:
                where[i] = where[node.inputs[0]]
                continue
            if where.get(i) is None:
                where[i] = self.tmp(node.type.size)
            if i not in own:
                own[i] = tuple(self.tmp(-(-n // 4)) for n in kernel.scratch)
            if kernel.zero_output:
                self.fill(where[i], np.zeros(node.type.size, np.uint32))
            if kernel.check is not None:
                self.checks.append(kernel.check)
            for d in kernel.dispatches:
                self.dispatches.append(Dispatch(d.source, d.workgroups, tuple(
                    self._remap(b, node.inputs, where, where[i], own[i]) for b in d.bindings)))

    @staticmethod
    def _remap(b: Binding, inputs: Sequence[int], where: dict[int, Binding], out: Binding,
               scratch: tuple[Binding, ...]) -> Binding:
        if b[0] == "in":
            return where[inputs[b[1]]]
        if b[0] == "out":
            return out
        if b[0] == "tmp":
            return scratch[b[1]]
        if b[0] == "status":
            return b
        raise BackendError(f"internal: a loop body's kernel has a {b[0]!r} binding, which "
                           f"only a merged run makes", source=None)


def _size(graph: Graph, i: int) -> int:
    return graph.nodes[i].type.size


@lower.register(ops.Scan, WgpuBackend)
def _(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
    nc, ncar = op.n_consts, op.n_carry
    carries, y = op.needed_outputs()
    body = restrict(op.body, tuple(carries) + (() if y is None else (ncar + y,)))
    k = Inliner(backend)
    kernels = k.lower_graph(body)
    feeds: dict[int, Binding] = {body.inputs[j]: ("in", j) for j in range(nc)}
    state = {}  # carry position -> the scratch buffer holding it between iterations
    for c in range(ncar):
        i = body.inputs[nc + c]
        if c in carries:
            state[c] = feeds[i] = k.tmp(_size(body, i))
            k.copy(("in", nc + c), state[c], _size(body, i))
        else:  # a carry the output does not need: the body never reads it
            feeds[i] = ("in", nc + c)
    xs = body.inputs[nc + ncar:]
    for i in xs:
        feeds[i] = k.tmp(_size(body, i))
    where = k.place(body, feeds)
    counter = k.counter(max(op.length - 1, 0) if op.reverse else 0)
    own: dict[int, tuple] = {}
    staging: dict[int, Binding] = {}
    for _ in range(op.length):
        for j, i in enumerate(xs):
            k.copy(("in", nc + ncar + j), feeds[i], _size(body, i), src_step=_size(body, i),
                   counter=counter)
        k.emit(body, kernels, where, own)
        outs = [where[o] for o in body.outputs]
        if y is not None:
            words = _size(body, body.outputs[-1])
            k.copy(outs[-1], ("out",), words, dst_step=words, counter=counter)
        # every new carry is computed before any old one is overwritten; one that IS an
        # old carry (a pass-through, a swap) is staged first, as the copies run in order
        sources = []
        for c, new in zip(carries, outs):
            if new in state.values() and new != state[c]:
                staged = staging.setdefault(c, k.tmp(_size(body, body.inputs[nc + c])))
                k.copy(new, staged, _size(body, body.inputs[nc + c]))
                new = staged
            sources.append(new)
        for c, new in zip(carries, sources):
            k.copy(new, state[c], _size(body, body.inputs[nc + c]))
        k.step(counter, -1 if op.reverse else 1)
    if y is None:
        k.copy(state[op.index], ("out",), out_type.size)
    return k.kernel()


def _inline_once(k: Inliner, graph: Graph, feeds: dict[int, Binding]) -> Binding:
    kernels = k.lower_graph(graph)
    where = k.place(graph, feeds)
    k.emit(graph, kernels, where, {})
    return where[graph.outputs[0]]


@lower.register(ops.Cond, WgpuBackend)
def _(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
    k = Inliner(backend)
    results = []
    for branch in (op.true_branch, op.false_branch):
        g = restrict(branch, (op.index,))
        results.append(_inline_once(k, g, {i: ("in", 1 + j) for j, i in enumerate(g.inputs)}))
    k.select(("in", 0), results[0], results[1], out_type.size)
    return k.kernel()


@lower.register(ops.Remat, WgpuBackend)
def _(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
    k = Inliner(backend)
    g = restrict(op.body, (op.index,))
    result = _inline_once(k, g, {i: ("in", j) for j, i in enumerate(g.inputs)})
    if result == ("out",):
        return k.kernel()
    k.copy(result, ("out",), out_type.size)
    return k.kernel()


@lower.register(ops.WhileLoop, WgpuBackend)
def _(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
    # the trip count is known only by reading the predicate back: the loop runs on the
    # host between two submissions of the step (`encode.Host`), its predicate and body
    # each an executable of their own, compiled once, on the device
    nc = op.n_consts
    carries = op.needed_carries()
    predicate = WgpuExecutable(op.cond_graph, backend, "while_loop predicate")
    body = WgpuExecutable(restrict(op.body, carries), backend, "while_loop body")
    types, index = op.cond_graph.input_types, op.index

    def loop(inputs: tuple, output: object) -> None:
        arrays = [DeviceArray(b, t) for b, t in zip(inputs, types)]
        head, carry = arrays[:nc], arrays[nc:]
        while bool(np.asarray(predicate(*head, *carry)[0])):
            for c, value in zip(carries, body(*head, *carry)):
                carry[c] = value
        device = get_device()
        encoder = device.create_command_encoder()
        if out_type.size:
            copier(encoder)(carry[index].buffer, output, out_type.size * 4)
        device.queue.submit([encoder.finish()])

    return WgpuKernel(host=loop)
