"""The per-signature cache behind `pyasg.jit`: trace once per input signature, compile, run.

When does pyasg retrace? A `jit` function is traced once per input signature: the
tree structure of the arguments, every leaf's shape and dtype (a Python number
counts as a weak 0-d value), the values of static arguments, and the backend. A new
batch size retraces; new numbers in arrays of the same shapes never do.

For observers (the viewer), an entry publishes `pyasg.events.Compiled` once and
`pyasg.events.Called` per call, each only while someone listens for it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pyasg import events
from pyasg.asg.graph import Graph
from pyasg.asg.types import TensorType
from pyasg.compile.pipeline import default_pipeline, jit_to_backend
from pyasg.compile.protocol import Backend, Executable
from pyasg.compile.registry import default_backend, get_backend
from pyasg.errors import TraceError
from pyasg.trace.tracer import argument_names, current_trace, leaf_signature, trace_function
from pyasg.trace.tree import TreeDef, flatten_with_paths, unflatten

_entries = itertools.count(1)


@dataclass
class _Compiled:
    executable: Executable
    out_tree: TreeDef
    graph: Graph
    #: Names this entry in `Compiled` and `Called` events; unique in the process.
    entry: int = field(default_factory=lambda: next(_entries))
    #: Calls published as `Called` events so far.
    calls: int = 0


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
        if events.has_subscribers(events.Called):  # e.g. the viewer watches a node
            compiled.calls += 1
            events.publish(events.Called(compiled.entry, compiled.calls, tuple(arrays)))
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

    def _compile(self, args: Sequence[object], static: dict[int, object],
                 backend: Backend, signature: Sequence[tuple]) -> _Compiled:
        abstract = [(path, TensorType(shape, dtype), weak) for (path, _), (shape, dtype, weak)
                    in zip(self._split(args)[1], signature)]
        traced = trace_function(self.fn, args, self.name, static, abstract=abstract)
        graph = default_pipeline(traced.graph)
        executable = jit_to_backend(graph, backend, self.name, fuse=self.fuse)
        compiled = _Compiled(executable, traced.out_tree, graph)
        shown = events.has_subscribers(events.GraphReady)
        observed = events.has_subscribers(events.Compiled)
        if shown or observed:
            published = {"forward": traced.graph}
            ran = getattr(executable, "graph", None)  # after simplify and fusion
            if isinstance(ran, Graph) and ran != traced.graph:
                published["fused"] = ran
            if shown:
                for kind, g in published.items():
                    events.publish(events.GraphReady(self.name, g, kind))
            if observed:
                events.publish(events.Compiled(self.name, compiled.entry, traced.serial,
                                               traced.graph, published))
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
