"""The per-signature cache behind `pyasg.jit`: trace once per input signature, compile, run.

When does pyasg retrace? A `jit` function is traced once per input signature: the
tree structure of the arguments, every leaf's shape and dtype (a Python number
counts as a weak 0-d value), the values of static arguments, and the backend. A new
batch size retraces; new numbers in arrays of the same shapes never do.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pyrsistent import pvector

from pyasg import events, watch
from pyasg.asg.graph import Graph, prune
from pyasg.asg.types import TensorType
from pyasg.compile.pipeline import default_pipeline, jit_to_backend
from pyasg.compile.protocol import Backend, Executable
from pyasg.compile.registry import default_backend, get_backend
from pyasg.errors import TraceError
from pyasg.trace.tracer import argument_names, current_trace, leaf_signature, trace_function
from pyasg.trace.tree import TreeDef, flatten_with_paths, unflatten
from pyasg.watch import WatchMap


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

    def __init__(self, fn: Callable[..., Any], backend: str | Backend | None,
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
        compiled, backend, pairs, signature = self._entry(args)
        on_device = backend.device_array
        arrays = [leaf if on_device is not None and isinstance(leaf, on_device)
                  else np.asarray(leaf, dtype=sig[1])
                  for (_, leaf), sig in zip(pairs, signature)]
        outs = compiled.executable(*arrays)
        if watch.ACTIVE:  # the viewer watches a node: maybe evaluate it (see pyasg.watch)
            self._watch(compiled, arrays)
        return unflatten(compiled.out_tree, list(outs))

    def _compiled(self, args: Sequence[object]) -> _Compiled:
        """The compiled entry for these arguments' signature (traced and compiled once)."""
        return self._entry(args)[0]

    def _entry(self, args: Sequence[object]) -> tuple[_Compiled, Backend, list, tuple]:
        static, pairs, tree = self._split(args)
        backend = get_backend(self.backend if self.backend is not None else default_backend())
        converts = backend.converts
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
        return compiled, backend, pairs, signature

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
                 backend: Backend, signature: Sequence[tuple]) -> _Compiled:
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
        """The executable this function runs for these arguments (compiling if needed).

        >>> import numpy as np
        >>> f = Jitted(lambda x: x * 2.0, "numpy", (), "f")
        >>> f(np.ones(2, np.float32)); _ = f(np.ones(5, np.float32))
        array([2., 2.], dtype=float32)
        >>> f.lower(np.ones(2, np.float32)).graph.input_types
        (f32[2],)
        """
        return self._compiled(args).executable

    @property
    def cache_size(self) -> int:
        """How many signatures have been traced and compiled."""
        return len(self._cache)
