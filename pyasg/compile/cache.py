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
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pyasg import events
from pyasg.asg.graph import Graph
from pyasg.asg.types import DTYPES, TensorType
from pyasg.compile.pipeline import default_pipeline, jit_to_backend
from pyasg.compile.protocol import Backend, Executable
from pyasg.compile.registry import check_backend, default_backend, get_backend
from pyasg.errors import BackendError, TraceError, shown
from pyasg.trace.arguments import Arity, function_arity, static_positions
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


def check_jit_arguments(fn: Callable[..., Any] | None, backend: object, static_argnums: object,
                        name: object, fuse: object) -> tuple[Arity, tuple[int, ...]]:
    """The checks of `jit`'s own arguments, made where they are given (`jit(f, backend=5)`
    raises at once, not at the first call): the function's `Arity` (any, for `fn=None`:
    the decorator form checks its options first) and the static positions.

    >>> check_jit_arguments(None, "numpy", (0, "a"), None, True)
    Traceback (most recent call last):
      ...
    pyasg.errors.TraceError: jit: static_argnums must be an int or a sequence of ints, ...
    """
    arity = Arity() if fn is None else function_arity(fn, "jit")
    if backend is not None:
        check_backend(backend)
    if name is not None and not isinstance(name, str):
        raise TraceError(f"jit: name must be a str, got {type(name).__name__} {shown(name, 60)}")
    if not isinstance(fuse, (bool, np.bool_)):
        raise TraceError(f"jit: fuse must be True or False, got {type(fuse).__name__} "
                         f"{shown(fuse, 60)}")
    return arity, static_positions(static_argnums, "jit", arity)


def donated_positions(donate_argnums: object, static: Sequence[int]) -> tuple[int, ...]:
    """`donate_argnums` as a tuple of ints: the arguments whose arrays a call gives away.

    >>> donated_positions(1, ())
    (1,)
    """
    nums = (donate_argnums,) if isinstance(donate_argnums, numbers.Integral) else donate_argnums
    if isinstance(donate_argnums, bool) or not isinstance(nums, (list, tuple, range)) or not all(
            isinstance(a, numbers.Integral) and not isinstance(a, bool) for a in nums):
        raise TraceError(f"jit: donate_argnums must be an int or a sequence of ints, got "
                         f"{type(donate_argnums).__name__} {shown(donate_argnums, 60)}")
    both = set(nums) & set(static)
    if both:
        raise TraceError(f"jit: argument(s) {sorted(both)} cannot be both static and donated")
    return tuple(int(a) for a in nums)


#: Where a backend computes a dtype in a narrower one (wgpu: float64 in float32), the
#: range of the narrower one: an argument that does not fit is refused, never narrowed
#: silently (2**40 + 1 would become 1, 1e300 inf).
_RANGES = {"float32": float(np.finfo(np.float32).max),
           "int32": (int(np.iinfo(np.int32).min), int(np.iinfo(np.int32).max))}


#: numpy dtype -> pyasg's dtype name (np.dtype.name costs microseconds per call)
_DTYPE_NAMES: dict[np.dtype, str] = {np.dtype(d): d for d in DTYPES}


def _signature(path: str, leaf: object) -> tuple[tuple[int, ...], str, bool]:
    """`leaf_signature`, with a fast path for the common leaf, a numpy array of a
    supported dtype (once per leaf per call: the hot path of a training loop)."""
    if type(leaf) is np.ndarray:
        name = _DTYPE_NAMES.get(leaf.dtype)
        if name is not None:
            return leaf.shape, name, False
    return leaf_signature(path, leaf)


def as_input(path: str, leaf: object, dtype: str) -> np.ndarray:
    """A concrete argument as the array the executable takes (`dtype` after the backend's
    conversions); a value that the conversion would change beyond rounding raises.

    >>> as_input("x", np.array([2**40 + 1]), "int32")
    Traceback (most recent call last):
      ...
    pyasg.errors.BackendError: argument 'x' holds 1099511627777, which int32 cannot hold ...
    """
    arr = leaf if type(leaf) is np.ndarray else np.asarray(leaf)
    if _DTYPE_NAMES.get(arr.dtype) == dtype:
        return arr
    if arr.size == 0 or dtype not in _RANGES \
            or arr.dtype.kind not in "fiu":
        return np.asarray(arr, dtype=dtype)
    if dtype == "float32" and arr.dtype.kind == "f":
        bad = np.abs(arr[np.isfinite(arr)]) > _RANGES[dtype]
        values = arr[np.isfinite(arr)][bad]
    elif dtype == "int32" and arr.dtype.kind in "iu":
        lo, hi = _RANGES[dtype]
        values = arr[(arr < lo) | (arr > hi)]
    else:
        values = arr[:0]
    if values.size:
        raise BackendError(f"argument '{path}' holds {shown(values.flat[0].item(), 40)}, which "
                           f"{dtype} cannot hold (the backend computes {arr.dtype.name} in "
                           f"{dtype}); scale or cast it first")
    return np.asarray(arr, dtype=dtype)


class Jitted:
    """A function compiled per input signature; see `jit`."""

    def __init__(self, fn: Callable[..., Any], backend: str | Backend | None,
                 static_argnums: Sequence[int] | int, name: str | None,
                 fuse: bool = True, donate_argnums: Sequence[int] | int = ()) -> None:
        self._arity, static_argnums = check_jit_arguments(fn, backend, static_argnums, name,
                                                          fuse)
        self.donate_argnums = donated_positions(donate_argnums, static_argnums)
        self._names: dict[int, list[str]] = {}  # argument names per argument count
        self.fn = fn
        self.backend = backend
        self.fuse = bool(fuse)
        self.static_argnums = static_argnums
        self.name = name or str(getattr(fn, "__name__", "fn"))
        self._cache: dict[Any, _Compiled] = {}
        self.__wrapped__ = fn
        self.__doc__ = getattr(fn, "__doc__", None)
        self.__name__ = self.name

    def _split(self, args: Sequence[object]) -> tuple[dict[int, object], list, TreeDef]:
        n = len(args)
        static = {i % n: args[i % n] for i in self.static_argnums if -n <= i < n}
        every = self._names.get(n)
        if every is None:  # inspect.signature is slow: once per argument count
            every = self._names[n] = argument_names(self.fn, n)
        names = [nm for i, nm in enumerate(every) if i not in static]
        dynamic = [a for i, a in enumerate(args) if i not in static]
        pairs, tree = flatten_with_paths(dict(zip(names, dynamic)))
        return static, pairs, tree

    def __call__(self, *args: object) -> Any:
        self._arity.check(self.name, args)  # before tracing: "f takes 2 ..., called with 1"
        if current_trace() is not None:
            return self.fn(*args)  # inside another trace: inline, it is one graph
        compiled, backend, pairs, signature = self._entry(args)
        on_device = backend.device_array
        arrays = [leaf if on_device is not None and isinstance(leaf, on_device)
                  else as_input(path, leaf, sig[1])
                  for (path, leaf), sig in zip(pairs, signature)]
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
                          (_signature(path, leaf) for path, leaf in pairs))
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
        donated = self._donated_leaves(args, static, [path for path, _, _ in abstract])
        executable = jit_to_backend(graph, backend, self.name, fuse=self.fuse,
                                    donated=donated)
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

    def _donated_leaves(self, args: Sequence[object], static: dict[int, object],
                        paths: Sequence[str]) -> tuple[int, ...]:
        """The positions (in the graph's inputs) of the leaves of the donated arguments."""
        if not self.donate_argnums:
            return ()
        n = len(args)
        names = self._names.get(n) or argument_names(self.fn, n)
        roots = {names[i % n] for i in self.donate_argnums if -n <= i < n and i % n not in static}
        return tuple(k for k, path in enumerate(paths)
                     if path in roots or path.split(".", 1)[0] in roots)

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
