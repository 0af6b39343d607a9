"""Tracer proxies, the trace context, and tracing a Python function into a `Graph`.

While a function is traced, its array arguments are `Tracer` objects: they know
their shape and dtype but hold no numbers. Every operation on them records a node.
A value used as Python data (`if x:`, `float(x)`, `np.exp(x)`) raises `TraceError`
that says where, which argument the value came from, and what to do instead.

>>> import pyasg
>>> g = pyasg.make_graph(lambda x: pyasg.exp(x) * 2.0)(np.ones(3, np.float32))
>>> [g[i].op.name for i in g.topological_order()]
['input', 'exp', 'constant', 'mul']
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pyasg.asg.graph import Graph, GraphBuilder, input_paths
from pyasg.asg.ops import Constant, Op
from pyasg.asg.rewrite import copy_into
from pyasg.asg.types import DEFAULT_FLOAT, DEFAULT_INT, TensorType, check_dtype
from pyasg.errors import PyasgError, TraceError, shown, user_source
from pyasg.trace.tree import TreeDef, TreeError, flatten_with_paths, leaf_hint, unflatten

# --------------------------------------------------------------------------- traces

_ACTIVE: list[Trace] = []
_serials = itertools.count(1)


def current_trace() -> Trace | None:
    """The innermost trace in progress, if any."""
    return _ACTIVE[-1] if _ACTIVE else None


class Trace:
    """One tracing in progress: a builder, and the outer tracers it captured.

    Traces nest (`grad` inside a traced function traces its own graph). A tracer of an
    enclosing trace used inside an inner one is captured: it becomes an input of the
    inner graph, and `captured` remembers which outer tracer feeds it.
    """

    def __init__(self, name: str = "trace", base: Graph | None = None,
                 builder: GraphBuilder | None = None) -> None:
        self.name = name
        #: `builder`: record on a builder someone else drives (a transform's rebuild).
        self.builder = GraphBuilder(base) if builder is None else builder
        self.active = False
        self.depth = -1
        self.captured: list[Tracer] = []
        self._captured_ids: dict[int, Tracer] = {}
        #: When set, new nodes take this source instead of the caller's line (the
        #: gradient of a node points at the user's line of the node).
        self.source_override: str | None = None
        #: Unique in the process: run events name a trace by it (`pyasg.events`).
        self.serial = next(_serials)

    def source(self) -> str | None:
        return self.source_override or user_source()

    def __enter__(self) -> Trace:
        self.active = True
        self.depth = len(_ACTIVE)
        _ACTIVE.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _ACTIVE.remove(self)
        self.active = False

    def tracer(self, node_id: int, weak: bool = False) -> Tracer:
        return Tracer(self, node_id, self.builder.type_of(node_id), weak)

    def new_input(self, path: str, type: TensorType, weak: bool = False) -> Tracer:
        return self.tracer(self.builder.add_input(path, type), weak)

    def constant(self, value: object, dtype: str | None = None) -> Tracer:
        weak = isinstance(value, (bool, int, float)) and dtype is None
        if weak:
            dtype = "bool" if isinstance(value, bool) else (
                DEFAULT_INT if isinstance(value, int) else DEFAULT_FLOAT)
        try:
            op = Constant.of(value, dtype)
        except (TypeError, ValueError, OverflowError, PyasgError) as e:
            raise TraceError(f"cannot use {type(value).__name__} {shown(value, 60)} as an "
                             f"array ({str(e)[:200]})") from None
        return self.tracer(self.builder.add(op, (), source=self.source()), weak)

    def lift(self, value: object) -> Tracer:
        """`value` as a tracer of this trace: itself, a captured outer tracer, or a constant."""
        if isinstance(value, Tracer):
            if value.trace is self:
                return value
            value.check_alive()
            if value.trace.depth > self.depth:
                raise TraceError("a value from an inner trace escaped into an outer one "
                                 "(was a tracer stored in a global or a closure?)",
                                 value.source)
            inner = self._captured_ids.get(id(value))
            if inner is None:
                path = f"captured.{len(self.captured)}"
                inner = self.new_input(path, value.type, value.weak)
                self.captured.append(value)
                self._captured_ids[id(value)] = inner
            return inner
        return self.constant(value)

    def record(self, op: Op, operands: Sequence[object], weak: bool = False) -> Tracer:
        tracers = [self.lift(x) for x in operands]
        node_id = self.builder.add(op, [t.node for t in tracers], source=self.source())
        return self.tracer(node_id, weak)


def record(op: Op, *operands: object, weak: bool = False) -> Tracer:
    """Record `op` on the innermost trace that any operand belongs to."""
    trace = None
    for x in operands:
        if isinstance(x, Tracer):
            x.check_alive()
            if trace is None or x.trace.depth > trace.depth:
                trace = x.trace
    if trace is None:
        trace = current_trace()
        if trace is None:
            raise TraceError(f"{op.name}: no tracer among the operands and no trace active")
    return trace.record(op, operands, weak)


# --------------------------------------------------------------------------- the tracer


class Tracer:
    """A symbolic array inside a trace: a node of the graph being built.

    Python operators, indexing and the methods `pyasg.functional` installs record ops.
    """

    __slots__ = ("trace", "node", "type", "weak")
    __array_priority__ = 1000  # numpy defers binary operators to us

    def __init__(self, trace: Trace, node: int, type: TensorType, weak: bool = False) -> None:
        self.trace = trace
        self.node = node
        self.type = type
        #: A Python scalar's tracer: it takes the other operand's dtype, as in numpy.
        self.weak = weak

    # -- static facts: free to use as Python data
    @property
    def shape(self) -> tuple[int, ...]:
        return self.type.shape

    @property
    def dtype(self) -> str:
        return self.type.dtype

    @property
    def ndim(self) -> int:
        return self.type.ndim

    @property
    def size(self) -> int:
        return self.type.size

    def __len__(self) -> int:
        if not self.type.shape:
            raise TraceError("len() of a 0-d traced value")
        return self.type.shape[0]

    @property
    def source(self) -> str | None:
        return self.trace.builder.node(self.node).source

    def __repr__(self) -> str:
        return f"Tracer({self.type!r}, node %{self.node} of {self.trace.name})"

    def check_alive(self) -> None:
        if not self.trace.active:
            made = f" (made at {self.source})" if self.source else ""
            raise TraceError(
                f"a traced value {self.type!r}{made} was used "
                f"after its trace '{self.trace.name}' ended; return it from the traced "
                f"function instead of keeping it in a global or a closure")

    # -- values used as Python data: each raises a TraceError that teaches
    def origin(self) -> str:
        """Which arguments this value was computed from, for error messages."""
        paths = input_paths(self.trace.builder.node, self.node)
        if not paths:
            return "computed from constants only"
        return "computed from argument " + ", ".join(f"'{p}'" for p in paths)

    def _value_error(self, what: str, instead: str) -> TraceError:
        made = f", made at {self.source}" if self.source else ""
        return TraceError(
            f"{what} needs the value of a traced array {self.type!r} ({self.origin()}{made}). "
            f"While tracing, arrays have shapes and dtypes but no numbers yet, and pyasg "
            f"never freezes a value into the graph silently. "
            f"Instead: {instead}")

    def __bool__(self) -> bool:
        raise self._value_error(
            "`if`, `while`, `and`/`or` or bool()",
            "use pyasg.where(condition, a, b) to choose between values elementwise, or pass "
            "the value as a static argument (static_argnums) if it is really configuration.")

    def __int__(self) -> int:
        raise self._value_error("int()", "keep it an array (x.astype('int32')), or pass it as a "
                                         "static argument.")

    def __float__(self) -> float:
        raise self._value_error("float()", "keep it an array and return it from the traced "
                                           "function; read it after the call.")

    def __index__(self) -> int:
        raise self._value_error("using a traced value as a Python index",
                                "index with the traced array itself (x[idx]) or with "
                                "pyasg.take(x, idx, axis).")

    __complex__ = __float__

    def item(self) -> object:
        raise self._value_error(".item()", "return the array from the traced function and call "
                                           ".item() on the result.")

    tolist = item

    def __iter__(self):
        raise self._value_error(
            "iterating over a traced array",
            "loop over a static range, `for i in range(x.shape[0]): x[i]`, or use a "
            "vectorised operation.")

    def __setitem__(self, index: object, value: object) -> None:
        raise TraceError(
            f"traced arrays are immutable: `x[...] = v` cannot record into {self.type!r} "
            f"({self.origin()}). Instead build a new array: x = x.at[index].set(v) "
            f"(or .add(v)), or x = pyasg.where(mask, v, x).")

    def __array__(self, *args: object, **kwargs: object) -> np.ndarray:
        raise self._value_error(
            "np.asarray() / a numpy function",
            "use pyasg's function of the same name (pyasg.exp, pyasg.sum, …), which "
            "records the operation in the graph.")

    def __array_function__(self, func, types, args, kwargs):  # noqa: ANN001
        name = getattr(func, "__name__", str(func))
        raise TraceError(
            f"numpy.{name} was called on a traced array {self.type!r} ({self.origin()}). numpy "
            f"needs numbers, which a traced array does not have yet. Use pyasg.{name} instead, "
            f"which records the operation in the graph.")

    def __hash__(self) -> int:
        return id(self)

    def __reduce__(self):
        raise TraceError("a traced array cannot be pickled or copied out of its trace")


# --------------------------------------------------------------------------- tracing a function


#: The values a Python int argument may have: those of its dtype, `DEFAULT_INT`.
_INT_RANGE = (int(np.iinfo(DEFAULT_INT).min), int(np.iinfo(DEFAULT_INT).max))


def is_traced(values: Sequence[object]) -> bool:
    """Whether a trace is in progress or any leaf of `values` is a tracer: a transformed
    function then records into the trace instead of compiling and running."""
    if current_trace() is not None:
        return True
    leaves, _ = flatten_with_paths(list(values))
    return any(isinstance(leaf, Tracer) for _, leaf in leaves)


def is_python_scalar(x: object) -> bool:
    return isinstance(x, (bool, int, float)) and not isinstance(x, np.generic)


def leaf_signature(path: str, leaf: object) -> tuple[tuple[int, ...], str, bool]:
    """(shape, dtype, weak) of a concrete argument leaf; the key of the trace cache."""
    if is_python_scalar(leaf):
        dtype = "bool" if isinstance(leaf, bool) else (
            DEFAULT_INT if isinstance(leaf, int) else DEFAULT_FLOAT)
        if dtype == DEFAULT_INT and not _INT_RANGE[0] <= leaf <= _INT_RANGE[1]:
            raise TraceError(
                f"argument {shown(path)} is the Python int {shown(leaf, 40)}, which does not "
                f"fit {DEFAULT_INT}, the dtype a Python int argument takes in a traced "
                f"function; pass an array of the dtype it needs (np.int64(...)), a float, or "
                f"make it a static argument (static_argnums)")
        return (), dtype, True
    device_type = getattr(leaf, "type", None)
    if isinstance(device_type, TensorType):  # an array that lives on a device: no read-back
        return device_type.shape, device_type.dtype, False
    if isinstance(leaf, (np.ndarray, np.generic)) or hasattr(leaf, "__array__"):
        try:  # a foreign object's __array__ may fail any way it likes
            arr = np.asarray(leaf)
        except (TypeError, ValueError, OverflowError) as e:
            raise TraceError(f"argument {shown(path)}: a {type(leaf).__name__} that cannot be "
                             f"read as an array ({str(e)[:200]})") from None
        try:
            return tuple(arr.shape), check_dtype(arr.dtype), False
        except PyasgError as e:
            raise TraceError(f"argument {shown(path)}: {e.message}") from None
    raise TraceError(f"argument {shown(path)} is a {type(leaf).__name__}, not an array or "
                     f"a number; {leaf_hint(leaf)}")


def argument_names(fn: Callable[..., Any], n: int) -> list[str]:
    """Names of the first `n` positional parameters, for input paths ('x', 'params')."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        params = []
    names = []
    for i in range(n):
        if i < len(params) and params[i].kind in (params[i].POSITIONAL_ONLY,
                                                  params[i].POSITIONAL_OR_KEYWORD):
            names.append(params[i].name)
        elif params and params[-1].kind == params[-1].VAR_POSITIONAL and i >= len(params) - 1:
            names.append(f"{params[-1].name}.{i - len(params) + 1}")
        else:
            names.append(f"arg{i}")
    return names


@dataclass(frozen=True)
class Traced:
    """The result of tracing: the graph, and how its inputs/outputs map to pytrees."""

    graph: Graph
    in_tree: TreeDef
    out_tree: TreeDef
    #: Outer tracers feeding the trailing `captured.*` inputs (empty at top level).
    captured: tuple[Tracer, ...]
    #: The `Trace.serial` of the trace that produced it.
    serial: int


def trace_function(fn: Callable[..., Any], args: Sequence[object], name: str | None = None,
                   static: dict[int, object] | None = None,
                   abstract: Sequence[tuple[str, TensorType, bool]] | None = None,
                   names: Sequence[str] | None = None) -> Traced:
    """Trace `fn(*args)` into a graph; `static` maps argument positions passed as-is.

    Array leaves of the non-static arguments become `Input` nodes named by their path
    (the parameter's name, or `names`, then dict keys and list positions).
    """
    static = static or {}
    name = str(name or getattr(fn, "__name__", "fn"))
    dynamic = [a for i, a in enumerate(args) if i not in static]
    if names is None:
        names = [n for i, n in enumerate(argument_names(fn, len(args))) if i not in static]
    pairs, in_tree = flatten_with_paths(dict(zip(names, dynamic)))
    trace = Trace(name)
    with trace:
        if abstract is None:
            abstract = [(path, TensorType(*leaf_signature(path, leaf)[:2]),
                         leaf_signature(path, leaf)[2]) for path, leaf in pairs]
        tracers = [trace.new_input(path, t, weak) for path, t, weak in abstract]
        rebuilt = list(unflatten(in_tree, tracers).values())
        it = iter(rebuilt)
        call_args = [static[i] if i in static else next(it) for i in range(len(args))]
        result = fn(*call_args)
        try:
            out_pairs, out_tree = flatten_with_paths(result)
        except TreeError as e:
            raise TreeError(f"the result of {name[:80]}: {e.message}") from None
        outputs = []
        for path, leaf in out_pairs:
            if not isinstance(leaf, Tracer) and not (
                    is_python_scalar(leaf) or isinstance(leaf, (np.ndarray, np.generic))):
                raise TraceError(f"{name[:80]} returned a {type(leaf).__name__} at output "
                                 f"{shown(path or 'result')}; a traced function returns "
                                 f"arrays, numbers, and dicts/lists/tuples of them")
            outputs.append(trace.lift(leaf).node)
        graph = trace.builder.build(outputs)
    return Traced(graph, in_tree, out_tree, tuple(trace.captured), trace.serial)


def inline(graph: Graph, inputs: Sequence[object],
           mapping: dict[int, int] | None = None) -> list[Tracer]:
    """Record a copy of `graph` into the current trace, feeding its inputs with `inputs`.

    Hash-consing merges the copy with what the trace already holds. `mapping`, when
    given, receives each copied node's id in the current trace.
    """
    trace = current_trace()
    if trace is None:
        raise TraceError("inline needs an active trace")
    if len(inputs) != len(graph.inputs):
        raise PyasgError(f"graph takes {len(graph.inputs)} inputs, got {len(inputs)}")
    feeds: dict[int, int] = {}
    weak: dict[int, bool] = {}
    for i, value in zip(graph.inputs, inputs):
        t = trace.lift(value)
        feeds[i], weak[i] = t.node, t.weak
    env = copy_into(trace.builder, graph, feeds)
    if mapping is not None:
        mapping.update(env)
    return [trace.tracer(env[i], weak.get(i, False)) for i in graph.outputs]
