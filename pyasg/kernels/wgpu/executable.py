"""WgpuExecutable: a graph compiled for the GPU, run as one queue submission per call.

At compile time every kernel is resolved (multipledispatch), every pipeline and
bind group is created, constants are uploaded, and every buffer the graph needs
is allocated: one per graph input (arguments are copied in, device to device, or
written once from numpy), intermediates shared by liveness, and one per output.
A call records the input copies, all dispatches (replayed through wgpu-native's C
functions: `pyasg.kernels.wgpu.encode`) and the output copies into ONE command
encoder and submits it once. Outputs are copied into buffers taken from a pool that
dead DeviceArrays return to, so a training loop that feeds a step's outputs back in
allocates nothing after its first steps, and parameters never leave the GPU.

Horizontal fusion (`grouping`; on unless `horizontal=False`, or a backend whose
`horizontal` attribute is False): after lowering, the schedule is reordered so that
independent mergeable nodes run together (every parameter's optimiser update, the
bias gradients' sums), buffers are planned on that order with each merged run as one
position, and each run is ONE dispatch. `kernel_count` counts the dispatches a call
runs; `schedule` is the order they run in.

Donation (`donated`: positions in the graph's inputs whose arguments the caller
gives away, `pyasg.jit(..., donate_argnums=...)`): each output is paired with the
first unpaired donated input of its type. A pair's input and output buffers take
turns: calls of even parity read the input buffer and write the output buffer,
calls of odd parity the other way round (two sets of bind groups, made once). The
result is returned in the buffer it was written to, so a loop that feeds it back
(the usual training loop) copies nothing in or out and allocates nothing; a
donated argument is marked used, and any later use of it raises.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

from pyasg.asg.graph import Graph
from pyasg.asg.ops import Constant, Input
from pyasg.compile.arguments import ArgumentCheck
from pyasg.compile.liveness import Allocator, liveness, pair_donations
from pyasg.errors import BackendError
from pyasg.kernels import has_kernel, lower
from pyasg.kernels.wgpu.array import (
    COUNTERS,
    DeviceArray,
    check_gpu_type,
    create_buffer,
    upload,
)
from pyasg.kernels.wgpu.device import get_device
from pyasg.kernels.wgpu.encode import Clear, Host, Replay, Run, Step, copier
from pyasg.kernels.wgpu.grouping import Horizontal, horizontal, widen
from pyasg.kernels.wgpu.kernel import WgpuKernel
from pyasg.kernels.wgpu.pipelines import compile_all, pipeline
from pyasg.kernels.wgpu.status import StatusWords


class BufferPool:
    """Buffers of dead DeviceArrays, by byte size, handed out again instead of new ones."""

    def __init__(self) -> None:
        self.free: dict[int, list[Any]] = {}

    def take(self, nbytes: int) -> Any:
        size = max(4, (nbytes + 3) // 4 * 4)
        stack = self.free.get(size)
        return stack.pop() if stack else create_buffer(size)

    def give(self, buffer: Any) -> None:
        self.free.setdefault(buffer.size, []).append(buffer)

    def array(self, buffer: Any, type: Any) -> DeviceArray:
        """Wrap `buffer` in a DeviceArray whose buffer returns here when it dies."""
        out = DeviceArray(buffer, type)
        weakref.finalize(out, self.give, buffer)
        return out


POOL = BufferPool()


class WgpuExecutable:
    """A compiled graph on the GPU; call with numpy arrays or DeviceArrays."""

    def __init__(self, graph: Graph, backend: object, name: str = "graph",
                 donated: Sequence[int] = (), horizontal: bool | None = None) -> None:
        self.graph, self.backend, self.name = graph, backend, name
        device = get_device()
        self._device = device
        schedule = sorted(set(graph.live_ids) | set(graph.inputs))  # unused inputs too
        for i in schedule:
            check_gpu_type(graph.nodes[i].type, f"node %{i} ({graph.nodes[i].op.name}) of "
                                                f"{name}")
        kernels: dict[int, WgpuKernel] = {}
        for i in schedule:
            node = graph.nodes[i]
            if isinstance(node.op, (Input, Constant)):
                continue
            in_types = tuple(graph.nodes[j].type for j in node.inputs)
            if not has_kernel(type(node.op), type(backend)):
                raise BackendError(f"the wgpu backend has no kernel for {node.op.name} "
                                   f"(node %{i} of {name})", node.source)
            kernels[i] = lower(node.op, backend, in_types=in_types, out_type=node.type)
        merged = self._merge(schedule, kernels, horizontal)
        schedule = list(merged.order)
        self.schedule = merged.order
        self.kernel_count = sum(len(k.dispatches) for k in merged.kernels.values())
        self._buffers = self._plan(schedule, kernels, merged.runs)
        self._input_types = graph.input_types
        self._output_types = graph.output_types
        self._paths = graph.input_names
        self._argument_check = ArgumentCheck(graph.input_types, self._paths, DeviceArray)
        self.pairs = self._pair(donated, kernels)
        scratch = {i: [create_buffer(n) for n in k.scratch] for i, k in kernels.items()}
        checks = {i: k.check for i, k in kernels.items() if k.check is not None}
        self._status = StatusWords(graph, name, checks) if checks else None
        swapped = dict(self._buffers)
        for k, j in self.pairs:
            i = graph.inputs[k]
            swapped[i], swapped[j] = self._buffers[j], self._buffers[i]
        #: the commands of a call: parity 0 (and, with donation, parity 1)
        run = merged.kernels  # a merged run's kernel at its first node, none at the others
        self._replays = [Replay(self._record_plan(schedule, run, self._buffers, scratch))]
        if self.pairs:
            self._replays.append(Replay(self._record_plan(schedule, run, swapped, scratch)))
        self._steps = self._replays[0].steps
        self._paired_inputs = {k: j for k, j in self.pairs}
        self._paired_outputs = {j for _, j in self.pairs}
        #: the live result array that holds each executable-owned buffer (by id)
        self._holders: dict[int, weakref.ref] = {}
        # Two spare sets of output buffers: while call k+1 runs, call k's results are
        # usually still referenced (they are its inputs); from then on, results that die
        # return their buffers, so steps after the first allocate nothing.
        for _ in range(2):
            for j, t in zip(graph.outputs, self._output_types):
                if j not in self._paired_outputs:
                    POOL.give(create_buffer(t.size * 4))

    # ------------------------------------------------------------------ compile time
    def _merge(self, schedule: list[int], kernels: dict[int, WgpuKernel],
               on: bool | None) -> Horizontal:
        """The order and the kernels a call runs: horizontally merged (`grouping`) unless
        `on` is False (None: the backend's `horizontal` attribute, True if it has none)."""
        if not (getattr(self.backend, "horizontal", True) if on is None else on):
            return Horizontal(tuple(schedule), (), kernels)
        limits = self._device.limits
        bindings = min(int(limits.get("max-storage-buffers-per-shader-stage", 8)),
                       int(limits.get("max-bindings-per-bind-group", 1000)))
        return horizontal(self.graph, schedule, kernels, bindings)

    @property
    def buffer_bytes(self) -> int:
        """Bytes of the buffers holding the graph's values (inputs, constants, outputs and
        the shared intermediates; scratch and spare output buffers aside)."""
        return sum({id(b): b.size for b in self._buffers.values()}.values())

    def _plan(self, schedule: list[int], kernels: dict[int, WgpuKernel],
              runs: Sequence[tuple[int, ...]] = ()) -> dict[int, Any]:
        """A buffer per value: inputs, constants and outputs their own; an alias its input's;
        the other intermediates shared by the liveness analysis (`pyasg.compile.liveness`),
        keyed by byte size. A buffer is free only after its last reader ran, so no
        dispatch binds one buffer as both an input and its output; inside a merged run
        (`runs`: one dispatch) nothing is freed (`grouping.widen`)."""
        graph = self.graph
        live = liveness(graph, schedule, [i for i, k in kernels.items() if k.alias])
        alloc = Allocator(widen(live, runs))
        outputs = set(graph.outputs)
        for i in schedule:
            if live.storage[i] == i and i in kernels and i not in outputs:
                size = max(4, graph.nodes[i].type.size * 4)
                alloc.take(i, size, size)
            alloc.step()
        shared = [create_buffer(size) for _, size in alloc.buffers]
        buffers: dict[int, Any] = {}
        for i in schedule:
            node = graph.nodes[i]
            if live.storage[i] != i:
                buffers[i] = buffers[live.storage[i]]
            elif i in alloc.buffer_of:
                buffers[i] = shared[alloc.buffer_of[i]]
            else:
                buffers[i] = create_buffer(max(4, node.type.size * 4))
                if isinstance(node.op, Constant):
                    upload(buffers[i], node.op.value)
        return buffers

    def _pair(self, donated: Sequence[int], kernels: dict[int, WgpuKernel]) -> tuple:
        """(input position, output node) pairs (`pyasg.compile.liveness.pair_donations`):
        only outputs a kernel writes into a buffer of their own qualify (not an alias,
        an input or a constant). The two buffers of a pair take turns (module doc), so
        no liveness condition is needed here: a call never writes what it reads."""
        graph = self.graph
        eligible = {j for j in graph.outputs if j in kernels and not kernels[j].alias}
        position = {i: k for k, i in enumerate(graph.inputs)}
        kept = set()
        for j in graph.outputs:  # an output that is a view of an input holds its buffer
            while j in kernels and kernels[j].alias:
                j = graph.nodes[j].inputs[0]
            if j in position:
                kept.add(position[j])
        return pair_donations(graph, donated, eligible, kept)

    def _what(self, i: int) -> str:
        node = self.graph.nodes[i]
        return f"{node.op} (node %{i}, from {node.source})"

    def _record_plan(self, schedule: list[int], kernels: dict[int, WgpuKernel],
                     buffers: dict[int, Any], scratch: dict[int, list]) -> list[Step]:
        """The commands of a call over `buffers`: a Run per dispatch, a Clear per zeroed
        output; bind groups made here, once."""
        steps: list[Step] = []
        graph, device = self.graph, self._device
        compile_all((d.source, self._what(i)) for i in schedule
                    if (k := kernels.get(i)) is not None and not k.alias for d in k.dispatches)
        for i in schedule:
            kernel = kernels.get(i)
            if kernel is None or kernel.alias:
                continue
            node = graph.nodes[i]
            if kernel.host is not None:
                steps.append(Host(i, kernel.host, tuple(buffers[j] for j in node.inputs),
                                  buffers[i]))
                continue
            if kernel.zero_output:
                steps.append(Clear(i, buffers[i]))
            for d in kernel.dispatches:
                pipe = pipeline(d.source, self._what(i))
                entries = []
                for b, binding in enumerate(d.bindings):
                    if binding[0] == "status":
                        entries.append({"binding": b, "resource": self._status.binding(i)})
                        continue
                    if binding[0] == "in":
                        buf = buffers[node.inputs[binding[1]]]
                    elif binding[0] == "out":
                        buf = buffers[i]
                    elif binding[0] == "value":  # a merged run's: any value's buffer
                        buf = buffers[binding[1]]
                    elif binding[0] == "scratch":  # ... and a merged node's scratch
                        buf = scratch[binding[1]][binding[2]]
                    else:
                        buf = scratch[i][binding[1]]
                    entries.append({"binding": b, "resource": {"buffer": buf, "offset": 0,
                                                                "size": buf.size}})
                group = device.create_bind_group(layout=pipe.get_bind_group_layout(0),
                                                 entries=entries)
                steps.append(Run(i, pipe, group, d.workgroups))
        return steps

    # ------------------------------------------------------------------ run time
    def _check(self, args: Sequence[object]) -> None:
        """Each argument is an array of its input's shape and dtype, and no donated array
        (once per call, before anything is recorded)."""
        for arg in args:
            if isinstance(arg, DeviceArray):
                arg.buffer  # noqa: B018 - a donated array raises here, before anything runs
        self._argument_check(self.name, args)

    def _parity(self, args: Sequence[object]) -> int:
        """Which buffers of the donated pairs the arguments already sit in (0 or 1)."""
        graph = self.graph
        for k, j in self.pairs:
            arg = args[k]
            if isinstance(arg, DeviceArray) and arg.donated_to is None:
                if arg._buffer is self._buffers[j]:
                    return 1
                if arg._buffer is self._buffers[graph.inputs[k]]:
                    return 0
        return 0

    def _evacuate(self, buffer: Any, copy: Any) -> None:
        """A result of an earlier call still lives in `buffer`, which this call writes:
        move it to a pool buffer first (rare: a caller that keeps an old result alive)."""
        ref = self._holders.pop(id(buffer), None)
        held = ref() if ref is not None else None
        if held is not None and held.donated_to is None:
            moved = POOL.take(held.type.size * 4)
            if held.type.size:
                copy(buffer, moved, held.type.size * 4)
            held.rehome(moved)
            weakref.finalize(held, POOL.give, moved)

    def __call__(self, *args: object) -> tuple[DeviceArray, ...]:
        graph = self.graph
        self._check(args)
        parity = self._parity(args) if self.pairs else 0
        own = self._buffers
        encoder = self._device.create_command_encoder()
        copy = copier(encoder)
        writes = {}  # output node -> the buffer this call writes it into
        for k, j in self.pairs:
            read, write = own[graph.inputs[k]], own[j]
            if parity:
                read, write = write, read
            writes[j] = write
            self._evacuate(write, copy)
        for k, (i, arg, t) in enumerate(zip(graph.inputs, args, self._input_types)):
            buffer = own[i]
            if k in self._paired_inputs and parity:
                buffer = own[self._paired_inputs[k]]
            if isinstance(arg, DeviceArray):
                source = arg.buffer
                if source is not buffer and t.size:
                    copy(source, buffer, t.size * 4)
                    COUNTERS.copies += 1
                    COUNTERS.copy_bytes += t.size * 4
            else:
                upload(buffer, arg)
        check = None
        if self._status is not None:  # clear the status words; results read them back
            check = self._status.checker(self._status.begin(encoder, copy))
        encoder = self._replays[parity].record(encoder, self._resubmit)
        copy = copier(encoder)
        results = []
        for j, t in zip(graph.outputs, self._output_types):
            if j in writes:
                results.append(self._result(writes.pop(j), t))
            else:
                out = POOL.take(t.size * 4)
                if t.size:
                    copy(own[j], out, t.size * 4)
                    COUNTERS.copies += 1
                    COUNTERS.copy_bytes += t.size * 4
                results.append(POOL.array(out, t))
            results[-1].status_check = check
        self._device.queue.submit([encoder.finish()])
        COUNTERS.submissions += 1
        for k, _ in self.pairs:  # given away: their memory holds the results now
            if isinstance(args[k], DeviceArray):
                args[k].donate(self.name)
        return tuple(results)

    def _resubmit(self, encoder: Any) -> Any:
        """Submit what `encoder` holds; a new encoder for what follows (a host step)."""
        self._device.queue.submit([encoder.finish()])
        COUNTERS.submissions += 1
        return self._device.create_command_encoder()

    def _result(self, buffer: Any, t: Any) -> DeviceArray:
        """A result living in an executable-owned buffer (a donated pair's)."""
        out = DeviceArray(buffer, t)
        self._holders[id(buffer)] = weakref.ref(out)
        return out
