"""The numpy executable: a graph compiled into one straight-line Python function.

Compiling orders the nodes, resolves every kernel once through multipledispatch,
plans memory by liveness (`pyasg.kernels.numpy.memory`), and generates one
function for the whole graph: running it does no dispatch, no look-up by name and
no shape checks. Kernels, constants and static buffers are closure cells of it.

Memory: a value is released (`del`) right after its last reader; an elementwise
kernel writes into the buffer of an input that dies at that node, when shape and
dtype agree and no live view still reads that buffer. Results never alias the
arguments (an output that would is copied), as in JAX.
"""

from __future__ import annotations

import itertools
import math
import os
import threading
from collections.abc import Callable, Collection, Sequence
from typing import Any

import numpy as np

from pyasg.asg.graph import Graph
from pyasg.asg.ops import Constant, Input
from pyasg.compile.arguments import ArgumentCheck
from pyasg.errors import BackendError
from pyasg.kernels import lower
from pyasg.kernels.numpy.memory import plan_memory

#: the executable calls in progress in this thread, innermost last (`current_call`)
_CALLS = threading.local()
_call_ids = itertools.count(1)


def current_call() -> int | None:
    """A process-unique id of the innermost executable call running in this thread
    (None outside any): nodes of one call that share work key it by this.

    >>> current_call() is None
    True
    """
    stack = getattr(_CALLS, "stack", None)
    return stack[-1] if stack else None


class Executable:
    """A compiled graph: call it with one array per graph input; returns a tuple of arrays.

    `source` is the generated Python; `plan` the memory plan (`plan.report()` says what
    it holds); `kernel_count` the number of kernel calls per run. With `poison=True`
    (or PYASG_POISON=1 when it is built) the generated code fills every static buffer
    with NaN (integers: a sentinel) right after its last reader, so a plan that let
    two live values share a buffer shows up as wrong results.

    The static buffers belong to the executable, so one call at a time uses them: a
    call made while another is running (another thread, or a kernel calling back)
    runs on freshly allocated buffers instead, slower but correct. With
    `keep_buffers=False` every call does so, and its buffers die when it returns.

    >>> import pyasg, numpy as np
    >>> ex = pyasg.jit_to_backend(pyasg.make_graph(lambda x: (x @ x.T).sum())(np.ones((2, 3))))
    >>> float(ex(np.ones((2, 3)))[0]), ex.plan.buffer_count
    (12.0, 1)
    """

    def __init__(self, graph: Graph, backend: object, name: str = "graph",
                 poison: bool | None = None, donated: Collection[int] = (),
                 keep_buffers: bool = True) -> None:
        self.graph = graph
        self.backend = backend
        self.name = name
        if poison is None:
            poison = os.environ.get("PYASG_POISON", "") not in ("", "0")
        self.poison = poison
        schedule = [i for i in graph.live_ids]
        kernels: dict[int, Any] = {}
        for i in schedule:
            node = graph.nodes[i]
            if isinstance(node.op, (Input, Constant)):
                continue
            in_types = tuple(graph.nodes[j].type for j in node.inputs)
            kernel = lower(node.op, backend, in_types=in_types, out_type=node.type)
            kernels[i] = kernel
        self.kernels = kernels
        self.plan = plan_memory(graph, schedule, kernels, donated)
        #: donated input positions whose arrays outputs are written into, in `D` order
        self._donated = tuple(graph.inputs.index(x) for x in self.plan.donations.values())
        self.kernel_count = len(kernels)
        self._input_types = graph.input_types
        self._check = ArgumentCheck(graph.input_types, graph.input_names)
        self._lock = threading.Lock()
        self.source, self._line_to_node, self._scope, self._buffer_names = self._generate(
            schedule, kernels)
        self._make = self._compile_source()
        #: without `keep_buffers`, every call allocates its buffers and drops them when it
        #: returns (a checkpointed block's forward: its values must not outlive the call)
        self._run = self._instantiate(self._new_buffers()) if keep_buffers else None

    def _new_buffers(self) -> dict[str, np.ndarray]:
        """The static buffers, and the views of them the generated code names."""
        flat = [np.empty(size // np.dtype(dtype).itemsize, dtype)
                for dtype, size in self.plan.buffers]
        views: dict[str, np.ndarray] = {f"B{k}": b for k, b in enumerate(flat)}
        for name, (k, shape) in self._buffer_names.items():
            views[name] = flat[k][:math.prod(shape)].reshape(shape)
        return views

    def _instantiate(self, buffers: dict[str, np.ndarray]) -> Callable[..., tuple]:
        """`run` on these buffers: `make` called with the scope and the buffers.

        By position, in `make`'s parameter order: called by keyword, each of thousands
        of names would be looked for along the parameter list (quadratic: 58 ms of a
        0.19 s compile on the LM B32-T256-d512-H8-L6 step)."""
        values = {**self._scope, **buffers}
        order = [*self._scope, *(f"B{k}" for k in range(self.plan.buffer_count)),
                 *self._buffer_names]
        return self._make(*[values[name] for name in order])

    def _generate(self, schedule: list[int], kernels: dict[int, Any]):  # noqa: ANN202
        graph, plan = self.graph, self.plan
        scope: dict[str, Any] = {"empty": np.empty}
        buffer_names: dict[str, tuple[int, tuple[int, ...]]] = {}
        view_of: dict[tuple[int, tuple[int, ...]], str] = {}
        params = [f"v{i}" for i in graph.inputs]
        if plan.donations:  # D[m]: may donation m's array be written over (see __call__)
            scope["NO_DONATION"] = (False,) * len(plan.donations)
            params.append("D=NO_DONATION")
        slot = {j: m for m, j in enumerate(plan.donations)}
        lines = [f"def run({', '.join(params)}):"]
        line_to_node: dict[int, int] = {}
        for i in schedule:
            node = graph.nodes[i]
            if isinstance(node.op, Input):
                continue
            if isinstance(node.op, Constant):
                value = node.op.value
                value.flags.writeable = False
                scope[f"c{i}"] = value
                lines.append(f"    v{i} = c{i}")
                continue
            scope[f"k{i}"] = kernels[i].fn
            args = ", ".join(f"v{j}" for j in node.inputs)
            if i in plan.buffer_of:
                key = (plan.buffer_of[i], node.type.shape)
                if key not in view_of:
                    view_of[key] = f"b{key[0]}_{len(view_of)}"
                    buffer_names[view_of[key]] = key
                args += f", out={view_of[key]}"
            elif i in plan.fresh:
                scope[f"s{i}"], scope[f"d{i}"] = node.type.shape, np.dtype(node.type.dtype)
                fresh = f"empty(s{i}, d{i})"
                if i in plan.donations:  # into the donated argument's own array
                    fresh = f"v{plan.donations[i]} if D[{slot[i]}] else {fresh}"
                args += f", out={fresh}"
            if i in plan.scratch_of:
                names = []
                for k, (shape, _) in zip(plan.scratch_of[i], kernels[i].scratch):
                    key = (k, tuple(shape))
                    if key not in view_of:
                        view_of[key] = f"b{k}_{len(view_of)}"
                        buffer_names[view_of[key]] = key
                    names.append(view_of[key])
                args += f", scratch=({', '.join(names)},)"
            line_to_node[len(lines) + 1] = i
            lines.append(f"    v{i} = k{i}({args})  # {node.op.name}")
            for dead in plan.release_after.get(i, ()):
                lines.append(f"    del v{dead}")
            if self.poison:
                for k in plan.free_after.get(i, ()):
                    dtype = np.dtype(plan.buffers[k][0])
                    scope[f"p{k}"] = _poison_value(dtype)
                    lines.append(f"    B{k}.fill(p{k})  # poison")
        outs = [f"v{i}.copy()" if i in plan.copy_outputs else f"v{i}" for i in graph.outputs]
        lines.append(f"    return ({', '.join(outs)}{',' if len(outs) == 1 else ''})")
        buffer_args = [f"B{k}" for k in range(plan.buffer_count)] + list(buffer_names)
        # kernels, constants and buffers are closure cells of `run`: no look-up per call
        body = "\n".join("    " + line for line in lines)
        params = ", ".join([*scope, *buffer_args])
        source = f"def make({params}):\n{body}\n    return run\n"
        line_to_node = {k + 1: v for k, v in line_to_node.items()}
        return source, line_to_node, scope, buffer_names

    def _compile_source(self) -> Callable[..., Callable[..., tuple]]:
        namespace: dict[str, Any] = {}
        filename = f"<pyasg:{self.name}>"
        exec(compile(self.source, filename, "exec"), namespace)  # noqa: S102 - our generated code
        return namespace["make"]

    def __call__(self, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
        stack = _CALLS.__dict__.setdefault("stack", [])
        stack.append(next(_call_ids))
        try:
            return self._call(arrays)
        finally:
            stack.pop()

    def _call(self, arrays: tuple) -> tuple[np.ndarray, ...]:
        self._check(self.name, arrays)
        extra = {"D": self._donatable(arrays)} if self._donated else {}
        if self._run is not None and self._lock.acquire(blocking=False):
            try:
                return self._run(*arrays, **extra)
            except Exception as e:
                raise self._explain(e) from e
            finally:
                self._lock.release()
        # the static buffers are in use (another thread, or a call from inside a call)
        try:
            return self._instantiate(self._new_buffers())(*arrays, **extra)
        except Exception as e:
            raise self._explain(e) from e

    def _donatable(self, arrays: Sequence[object]) -> tuple[bool, ...]:
        """For each donation, whether its argument's array can hold the result: a
        writeable, C-contiguous array of the input's type that no other argument is,
        or views (otherwise the result goes to a fresh array, as without donation)."""
        roots: dict[int, int] = {}
        for a in arrays:
            root = a.base if isinstance(a, np.ndarray) and a.base is not None else a
            roots[id(root)] = roots.get(id(root), 0) + 1
        flags = []
        for k in self._donated:
            a, t = arrays[k], self._input_types[k]
            flags.append(isinstance(a, np.ndarray) and a.base is None and roots[id(a)] == 1
                         and a.flags.writeable and a.flags.c_contiguous
                         and a.shape == t.shape and a.dtype.name == t.dtype)
        return tuple(flags)

    def _explain(self, error: Exception) -> BackendError:
        tb, node_id = error.__traceback__, None
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == f"<pyasg:{self.name}>":
                node_id = self._line_to_node.get(tb.tb_lineno)
            tb = tb.tb_next
        if node_id is None:
            return BackendError(f"running {self.name} failed: {type(error).__name__}: {error}")
        node = self.graph.nodes[node_id]
        return BackendError(f"{node.op} (node %{node_id}) failed while running {self.name}: "
                            f"{type(error).__name__}: {error}", node.source)


def _poison_value(dtype: np.dtype) -> object:
    """What freed buffers are filled with in poisoned runs: NaN, or an unlikely integer."""
    if dtype.kind in "fc":
        return dtype.type(np.nan)
    if dtype.kind == "b":
        return True
    info = np.iinfo(dtype)
    return info.max if dtype.kind == "u" else info.min + 7
