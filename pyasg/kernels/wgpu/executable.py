"""WgpuExecutable: a graph compiled for the GPU, run as one queue submission per call.

At compile time every kernel is resolved (multipledispatch), every pipeline and
bind group is created, constants are uploaded, and every buffer the graph needs
is allocated: one per graph input (arguments are copied in, device to device, or
written once from numpy), intermediates shared by liveness, and one per output.
A call records the input copies, all dispatches and the output copies into ONE
command encoder and submits it once. Outputs are copied into buffers taken from a
pool that dead DeviceArrays return to, so a training loop that feeds a step's
outputs back in allocates nothing after its first steps, and parameters never
leave the GPU.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from pyasg.asg.graph import Graph
from pyasg.asg.ops import Constant, Input
from pyasg.compile.liveness import Allocator, liveness
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
from pyasg.kernels.wgpu.kernel import WgpuKernel

_PIPELINES: dict[str, Any] = {}


def pipeline(source: str, what: str) -> Any:
    """The compute pipeline of a WGSL source (cached by text); a compile error names `what`."""
    found = _PIPELINES.get(source)
    if found is None:
        device = get_device()
        try:
            module = device.create_shader_module(code=source)
            found = device.create_compute_pipeline(
                layout="auto", compute={"module": module, "entry_point": "main"})
        except Exception as e:
            numbered = "\n".join(f"{k + 1:4d} {line}" for k, line in
                                 enumerate(source.splitlines()))
            raise BackendError(f"the WGSL kernel of {what} failed to compile: {e}\n"
                               f"{numbered}") from None
        _PIPELINES[source] = found
    return found


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

    def __init__(self, graph: Graph, backend: object, name: str = "graph") -> None:
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
        self.kernel_count = sum(len(k.dispatches) for k in kernels.values())
        self._buffers = self._plan(schedule, kernels)
        self._steps = self._record_plan(schedule, kernels)
        self._input_types = graph.input_types
        self._output_types = graph.output_types
        # Two spare sets of output buffers: while call k+1 runs, call k's results are
        # usually still referenced (they are its inputs); from then on, results that die
        # return their buffers, so steps after the first allocate nothing.
        for _ in range(2):
            for t in self._output_types:
                POOL.give(create_buffer(t.size * 4))

    # ------------------------------------------------------------------ compile time
    def _plan(self, schedule: list[int], kernels: dict[int, WgpuKernel]) -> dict[int, Any]:
        """A buffer per value: inputs, constants and outputs their own; an alias its input's;
        the other intermediates shared by the liveness analysis (`pyasg.compile.liveness`),
        keyed by byte size. A buffer is free only after its last reader ran, so no
        dispatch binds one buffer as both an input and its output."""
        graph = self.graph
        live = liveness(graph, schedule, [i for i, k in kernels.items() if k.alias])
        alloc = Allocator(live)
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

    def _record_plan(self, schedule: list[int], kernels: dict[int, WgpuKernel]) -> list:
        """(pipeline, bind group, workgroups) per dispatch, or ("clear", buffer)."""
        steps: list[tuple] = []
        graph, device = self.graph, self._device
        for i in schedule:
            kernel = kernels.get(i)
            if kernel is None or kernel.alias:
                continue
            node = graph.nodes[i]
            scratch = [create_buffer(n) for n in kernel.scratch]
            if kernel.zero_output:
                steps.append(("clear", self._buffers[i]))
            for d in kernel.dispatches:
                pipe = pipeline(d.source, f"{node.op} (node %{i}, from {node.source})")
                entries = []
                for b, binding in enumerate(d.bindings):
                    if binding[0] == "in":
                        buf = self._buffers[node.inputs[binding[1]]]
                    elif binding[0] == "out":
                        buf = self._buffers[i]
                    else:
                        buf = scratch[binding[1]]
                    entries.append({"binding": b, "resource": {"buffer": buf, "offset": 0,
                                                                "size": buf.size}})
                group = device.create_bind_group(layout=pipe.get_bind_group_layout(0),
                                                 entries=entries)
                steps.append(("dispatch", pipe, group, d.workgroups))
        return steps

    # ------------------------------------------------------------------ run time
    def __call__(self, *args: object) -> tuple[DeviceArray, ...]:
        graph = self.graph
        if len(args) != len(self._input_types):
            raise BackendError(f"{self.name} takes {len(self._input_types)} arrays, "
                               f"got {len(args)}")
        encoder = self._device.create_command_encoder()
        for i, arg, t in zip(graph.inputs, args, self._input_types):
            buffer = self._buffers[i]
            if isinstance(arg, DeviceArray):
                if arg.type.shape != t.shape or arg.type.dtype != t.dtype:
                    raise BackendError(f"{self.name}: input {graph.nodes[i].op.path} is "
                                       f"{arg.type!r}, expected {t!r}")
                if t.size:
                    encoder.copy_buffer_to_buffer(arg.buffer, 0, buffer, 0, t.size * 4)
            else:
                arr = np.asarray(arg)
                if arr.shape != t.shape:
                    raise BackendError(f"{self.name}: input {graph.nodes[i].op.path} has "
                                       f"shape {arr.shape}, expected {t.shape}")
                upload(buffer, arr.astype(t.dtype, copy=False))
        compute = None
        for step in self._steps:
            if step[0] == "clear":
                if compute is not None:
                    compute.end()
                    compute = None
                encoder.clear_buffer(step[1])
                continue
            if compute is None:
                compute = encoder.begin_compute_pass()
            _, pipe, group, (x, y, z) = step
            compute.set_pipeline(pipe)
            compute.set_bind_group(0, group)
            compute.dispatch_workgroups(x, y, z)
        if compute is not None:
            compute.end()
        results = []
        for i, t in zip(graph.outputs, self._output_types):
            out = POOL.take(t.size * 4)
            if t.size:
                encoder.copy_buffer_to_buffer(self._buffers[i], 0, out, 0, t.size * 4)
            results.append(POOL.array(out, t))
        self._device.queue.submit([encoder.finish()])
        COUNTERS.submissions += 1
        return tuple(results)
