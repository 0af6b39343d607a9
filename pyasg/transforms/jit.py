"""jit_to_backend (graph -> Executable) and the function forms `jit`, `trace`, `make_graph`.

Compiling orders the nodes, resolves every kernel once through multipledispatch,
plans memory by liveness, and generates one straight-line Python function for the
whole graph: running it does no dispatch, no look-up by name and no shape checks.

Memory: a value is released (`del`) right after its last reader; an elementwise
kernel writes into the buffer of an input that dies at that node, when shape and
dtype agree and no live view still reads that buffer. Results never alias the
arguments (an output that would is copied), as in JAX.

When does pyasg retrace? A `jit` function is traced once per input signature:
the tree structure of the arguments, every leaf's shape and dtype (a Python
number counts as a weak 0-d value), and the values of static arguments. A new
batch size retraces; new numbers in arrays of the same shapes never do.

>>> import pyasg, numpy as np
>>> f = pyasg.jit(lambda x: pyasg.exp(x).sum())
>>> float(f(np.zeros(3, np.float32)))
3.0
"""

from __future__ import annotations

import math
import os
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pyrsistent import pvector

from pyasg import events, watch
from pyasg.asg.graph import Graph, prune
from pyasg.asg.ops import Constant, Input
from pyasg.asg.types import TensorType
from pyasg.errors import BackendError, TraceError
from pyasg.kernels import lower
from pyasg.kernels.numpy import NumpyBackend
from pyasg.kernels.numpy import fused as _numpy_fused  # noqa: F401  (its kernel)
from pyasg.trace.tracer import (
    Tracer,
    argument_names,
    current_trace,
    leaf_signature,
    trace_function,
    user_source,
)
from pyasg.trace.tree import TreeDef, flatten_with_paths, unflatten
from pyasg.transforms import fuse as _fuse  # also registers Fused's VJP rule
from pyasg.transforms.dtypes import convert_dtypes
from pyasg.transforms.memory import MemoryPlan, plan_memory  # noqa: F401 - re-exported
from pyasg.transforms.simplify import simplify
from pyasg.watch import WatchMap


def _wgpu_backend() -> object:
    try:
        from pyasg.kernels.wgpu import WgpuBackend
    except ImportError as e:
        raise BackendError("the wgpu backend needs the `wgpu` package: "
                           "pip install 'pyasg[gpu]'") from e
    return WgpuBackend()


BACKENDS: dict[str, Callable[[], object]] = {"numpy": NumpyBackend, "wgpu": _wgpu_backend}
_default_backend: str | None = None


def set_default_backend(name: str) -> None:
    """Choose the backend `@pyasg.trace` uses (also settable with PYASG_BACKEND)."""
    global _default_backend
    get_backend(name)
    _default_backend = name


def default_backend() -> str:
    """The backend `@pyasg.trace` uses: set_default_backend, else PYASG_BACKEND, else numpy."""
    return _default_backend or os.environ.get("PYASG_BACKEND") or "numpy"


def get_backend(name: str | object) -> object:
    if not isinstance(name, str):
        return name
    factory = BACKENDS.get(name)
    if factory is None:
        raise BackendError(f"unknown backend {name!r}; available: {', '.join(sorted(BACKENDS))}",
                           user_source())
    return factory()


# --------------------------------------------------------------------------- the executable


class Executable:
    """A compiled graph: call it with one array per graph input; returns a tuple of arrays.

    `source` is the generated Python; `plan` the memory plan (`plan.report()` says what
    it holds); `kernel_count` the number of kernel calls per run. With `poison=True`
    (or PYASG_POISON=1 when it is built) the generated code fills every static buffer
    with NaN (integers: a sentinel) right after its last reader, so a plan that let
    two live values share a buffer shows up as wrong results.

    The static buffers belong to the executable, so one call at a time uses them: a
    call made while another is running (another thread, or a kernel calling back)
    runs on freshly allocated buffers instead, slower but correct.

    >>> import pyasg, numpy as np
    >>> ex = jit_to_backend(pyasg.make_graph(lambda x: (x @ x.T).sum())(np.ones((2, 3))))
    >>> float(ex(np.ones((2, 3)))[0]), ex.plan.buffer_count
    (12.0, 1)
    """

    def __init__(self, graph: Graph, backend: object, name: str = "graph",
                 poison: bool | None = None) -> None:
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
        self.plan = plan_memory(graph, schedule, kernels)
        self.kernel_count = len(kernels)
        self._input_types = graph.input_types
        self._lock = threading.Lock()
        self.source, self._line_to_node, self._scope, self._buffer_names = self._generate(
            schedule, kernels)
        self._make = self._compile_source()
        self._run = self._make(**self._scope, **self._new_buffers())

    def _new_buffers(self) -> dict[str, np.ndarray]:
        """The static buffers, and the views of them the generated code names."""
        flat = [np.empty(size // np.dtype(dtype).itemsize, dtype)
                for dtype, size in self.plan.buffers]
        views: dict[str, np.ndarray] = {f"B{k}": b for k, b in enumerate(flat)}
        for name, (k, shape) in self._buffer_names.items():
            views[name] = flat[k][:math.prod(shape)].reshape(shape)
        return views

    def _generate(self, schedule: list[int], kernels: dict[int, Any]):  # noqa: ANN202
        graph, plan = self.graph, self.plan
        scope: dict[str, Any] = {"empty": np.empty}
        buffer_names: dict[str, tuple[int, tuple[int, ...]]] = {}
        view_of: dict[tuple[int, tuple[int, ...]], str] = {}
        lines = [f"def run({', '.join(f'v{i}' for i in graph.inputs)}):"]
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
                args += f", out=empty(s{i}, d{i})"
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
        if len(arrays) != len(self._input_types):
            raise BackendError(f"{self.name} takes {len(self._input_types)} arrays, "
                               f"got {len(arrays)}")
        if self._lock.acquire(blocking=False):
            try:
                return self._run(*arrays)
            except Exception as e:
                raise self._explain(e) from e
            finally:
                self._lock.release()
        # the static buffers are in use (another thread, or a call from inside a call)
        try:
            return self._make(**self._scope, **self._new_buffers())(*arrays)
        except Exception as e:
            raise self._explain(e) from e

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


def jit_to_backend(graph: Graph, backend: str | object = "numpy",
                   name: str = "graph", fuse: bool = True) -> Executable:
    """Compile `graph` for `backend`: fused (`pyasg.transforms.fuse`, unless `fuse` is
    False or the backend has no `Fused` kernel), kernels resolved once, memory planned.

    >>> import pyasg, numpy as np
    >>> g = pyasg.make_graph(lambda x: x * 2.0)(np.ones(2, np.float32))
    >>> jit_to_backend(g)(np.ones(2, np.float32))[0].tolist()
    [2.0, 2.0]
    """
    backend = get_backend(backend)
    converts = getattr(backend, "converts", None)  # dtypes the device lacks (documented)
    if converts:
        graph = convert_dtypes(graph, converts)
    if fuse:
        graph = _fuse.fuse_for(graph, backend)
    compile_graph = getattr(backend, "compile", None)  # backends with their own executable
    if compile_graph is not None:
        return compile_graph(graph, name)
    return Executable(graph, backend, name)


def default_pipeline(graph: Graph) -> Graph:
    """The transforms every compiled function goes through before lowering."""
    return simplify(graph)


# --------------------------------------------------------------------------- function forms


@dataclass
class _Compiled:
    executable: Executable
    out_tree: TreeDef
    graph: Graph
    #: For live values (pyasg.watch): the traced graph, where the published graphs'
    #: nodes are in it, and the executables compiled for watched nodes.
    traced_graph: Graph | None = None
    watch_maps: dict[tuple[str, str], WatchMap] = field(default_factory=dict)
    watch_runs: dict[tuple[int | None, int | None], Executable] = field(default_factory=dict)
    watch_serial: int = 0
    calls: int = 0
    last_watched: int = 0


class Jitted:
    """A function compiled per input signature; see `jit`."""

    def __init__(self, fn: Callable[..., Any], backend: str | object | None,
                 static_argnums: Sequence[int], name: str | None, fuse: bool = True) -> None:
        self.fn = fn
        self.backend = backend
        self.fuse = fuse
        self.static_argnums = tuple(static_argnums)
        self.name = name or getattr(fn, "__name__", "fn")
        self._cache: dict[Any, _Compiled] = {}
        self.__wrapped__ = fn
        self.__doc__ = getattr(fn, "__doc__", None)
        self.__name__ = self.name

    def _split(self, args: Sequence[object]) -> tuple[dict[int, object], list, TreeDef]:
        n = len(args)
        static = {i % n: args[i % n] for i in self.static_argnums if -n <= i < n}
        names = [nm for i, nm in enumerate(argument_names(self.fn, n)) if i not in static]
        dynamic = [a for i, a in enumerate(args) if i not in static]
        pairs, tree = flatten_with_paths(dict(zip(names, dynamic)))
        return static, pairs, tree

    def __call__(self, *args: object) -> Any:
        if current_trace() is not None:
            return self.fn(*args)  # inside another trace: inline, it is one graph
        static, pairs, tree = self._split(args)
        backend = self.backend if self.backend is not None else default_backend()
        converts = getattr(get_backend(backend), "converts", {})
        signature = tuple((shape, converts.get(dtype, dtype), weak) for shape, dtype, weak in
                          (leaf_signature(path, leaf) for path, leaf in pairs))
        try:
            key = (tree, signature, tuple(sorted(static.items())), backend)
            hash(key)
        except TypeError:
            raise TraceError(f"{self.name}: static arguments must be hashable") from None
        compiled = self._cache.get(key)
        if compiled is None:
            compiled = self._compile(args, static, backend, signature)
            self._cache[key] = compiled
        arrays = [leaf if isinstance(getattr(leaf, "type", None), TensorType)
                  and not isinstance(compiled.executable, Executable)
                  else np.asarray(leaf, dtype=sig[1])
                  for (_, leaf), sig in zip(pairs, signature)]
        outs = compiled.executable(*arrays)
        if watch.ACTIVE:  # the viewer watches a node: maybe evaluate it (see pyasg.watch)
            self._watch(compiled, arrays)
        return unflatten(compiled.out_tree, list(outs))

    def _watch(self, compiled: _Compiled, arrays: Sequence[object]) -> None:
        compiled.calls += 1
        request = watch.current()
        if request is None or compiled.traced_graph is None:
            return
        where = compiled.watch_maps.get((request.name, request.kind))
        if where is None:
            return
        if (request.serial == compiled.watch_serial
                and compiled.calls - compiled.last_watched < request.every):
            return
        compiled.watch_serial, compiled.last_watched = request.serial, compiled.calls
        key = (where.values.get(request.node), where.grads.get(request.node))
        try:
            run = compiled.watch_runs.get(key)
            if run is None:
                traced = compiled.traced_graph
                wanted = [i for i in key if i is not None]
                if not wanted:
                    return
                graph = prune(Graph(traced.nodes, traced.inputs, pvector(wanted)))
                run = compiled.watch_runs[key] = jit_to_backend(graph, "numpy",
                                                                f"{self.name}:watch")
            results = list(run(*(np.asarray(a) for a in arrays)))
            value = watch.summarize(results.pop(0)) if key[0] is not None else None
            grad = watch.summarize(results.pop(0)) if key[1] is not None else None
        except Exception as e:  # live values must never break training
            print(f"pyasg: cannot compute live values of node %{request.node} of "
                  f"{request.name}/{request.kind}: {type(e).__name__}: {e}", file=sys.stderr)
            watch.clear()
            return
        events.publish(events.NodeValues(request.name, request.kind, request.node,
                                          compiled.calls, value, grad))

    def _compile(self, args: Sequence[object], static: dict[int, object],
                 backend: str | object, signature: Sequence[tuple]) -> _Compiled:
        abstract = [(path, TensorType(shape, dtype), weak) for (path, _), (shape, dtype, weak)
                    in zip(self._split(args)[1], signature)]
        traced = trace_function(self.fn, args, self.name, static, abstract=abstract)
        graph = default_pipeline(traced.graph)
        executable = jit_to_backend(graph, backend, self.name, fuse=self.fuse)
        compiled = _Compiled(executable, traced.out_tree, graph)
        if events.has_subscribers(events.GraphReady):
            events.publish(events.GraphReady(self.name, traced.graph, "forward"))
            ran = getattr(executable, "graph", None)  # after simplify and fusion
            if isinstance(ran, Graph) and ran != traced.graph:
                events.publish(events.GraphReady(self.name, ran, "fused"))
            compiled.traced_graph = traced.graph
            compiled.watch_maps = {**traced.watch_maps, (self.name, "forward"): WatchMap(
                values={i: i for i in traced.graph.ids})}
        return compiled

    def lower(self, *args: object) -> Executable:
        """The executable this function runs for these arguments (compiling if needed)."""
        self(*args)
        return next(reversed(self._cache.values())).executable

    @property
    def cache_size(self) -> int:
        """How many signatures have been traced and compiled."""
        return len(self._cache)


def jit(fn: Callable[..., Any] | None = None, *, backend: str | object | None = None,
        static_argnums: Sequence[int] | int = (), name: str | None = None,
        fuse: bool = True) -> Any:
    """Trace `fn` once per input signature, simplify, compile for `backend`, and run.

    Usable as `@jit`, `@jit(backend="numpy")` or `jit(fn, static_argnums=1)`.
    Inside another traced function it is inlined (the whole step stays one graph).
    `fuse=False` compiles without `pyasg.transforms.fuse` (to compare, or to debug).

    >>> import numpy as np
    >>> @jit
    ... def f(x, n):
    ...     return x * n
    >>> f(np.ones(2, np.float32), 3).tolist()
    [3.0, 3.0]
    """
    nums = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums)
    if fn is None:
        return lambda f: Jitted(f, backend, nums, name, fuse)
    return Jitted(fn, backend, nums, name, fuse)


def trace(fn: Callable[..., Any] | None = None, *, static_argnums: Sequence[int] | int = (),
          name: str | None = None) -> Any:
    """`@pyasg.trace`: `jit` with the default backend (see `set_default_backend`)."""
    return jit(fn, backend=None, static_argnums=static_argnums, name=name)


def make_graph(fn: Callable[..., Any], static_argnums: Sequence[int] | int = ()) -> Callable:
    """`make_graph(f)(*example_args)` returns f's `Graph` without running it.

    >>> import pyasg, numpy as np
    >>> print(pyasg.make_graph(lambda x: x + 1.0)(np.ones(2, np.float32)))
    graph(%0: f32[2] x) {
      %1: f32[] = const 1.0  # <doctest ...>:1
      %2: f32[2] = add %0 %1  # <doctest ...>:1
      return %2
    }
    """
    nums = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums)

    def build(*args: object) -> Graph:
        n = len(args)
        static = {i % n: args[i % n] for i in nums}
        for _, leaf in flatten_with_paths(list(args))[0]:
            if isinstance(leaf, Tracer):
                raise TraceError("make_graph needs example arrays, not traced values")
        return trace_function(fn, args, static=static).graph

    return build
