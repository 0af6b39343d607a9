"""Live values: the node the viewer watches, and the statistics sent back for it.

The viewer asks for one node of one published graph (`Watcher.request`). From then
on, a `pyasg.jit` function whose trace produced that graph evaluates the node — and,
for a graph that `value_and_grad` differentiated, the gradient of its scalar output
with respect to that node — on the arguments of every `every`-th call, and
`pyasg.events.NodeValues` carries `summarize` of each back to the viewer.

The core knows nothing of this: it publishes run events while someone listens, and
a `Watcher` (one per viewer, subscribed by `pyasg.viewer.launch` while the viewer
runs) reads them:

* `GradientInlined` says where a differentiated graph's nodes, and their gradients,
  went in the enclosing trace (`gradient_maps`); it names that trace by its serial;
* `Compiled` names the same trace serial again, with the traced graph: the watcher
  joins the two into the `WatchMap` of each published graph (`entry_maps`), per
  compiled entry;
* `Called` gives each call's arguments. The watched nodes are a separate numpy
  executable, compiled once per node from the traced graph; the step's own
  executable is untouched. The watcher listens for `Called` only while a node is
  watched, so with nothing watched a call costs one `has_subscribers` check.

>>> summary = summarize(np.array([[1.0, 2.0], [3.0, np.nan]]))
>>> summary["min"], summary["max"], summary["mean"], summary["nonfinite"], sum(summary["hist"])
(1.0, 3.0, 2.0, 1, 3)
>>> watcher = Watcher().start()
>>> r = watcher.request("loss", "forward", node=5, every=10)
>>> watcher.current == r, events.has_subscribers(events.Called)
(True, True)
>>> watcher.close(); watcher.current
"""

from __future__ import annotations

import itertools
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pyrsistent import pvector

from pyasg import events
from pyasg.asg.graph import Graph, prune
from pyasg.compile.pipeline import jit_to_backend
from pyasg.compile.protocol import Executable
from pyasg.errors import PyasgError
from pyasg.events import Called, Compiled, GradientInlined, NodeValues

#: Bars of the histograms `summarize` makes.
HISTOGRAM_BINS = 24
#: Default number of calls between two evaluations of a watched node.
DEFAULT_EVERY = 10


class WatchError(PyasgError):
    """A request for live values is malformed (for example, `every` is not a count)."""


@dataclass(frozen=True)
class Request:
    """Watch node `node` of the graph published as (`name`, `kind`), every `every` calls."""

    name: str
    kind: str
    node: int
    every: int = DEFAULT_EVERY
    #: Increases with every request, so a function notices a new one and answers at once.
    serial: int = 0


@dataclass(frozen=True)
class WatchMap:
    """Where the nodes of one published graph live in the graph a function traced:
    `values[node]` is the traced node holding that node's value, `grads[node]` the one
    holding the gradient of the published graph's scalar output with respect to it."""

    values: dict[int, int] = field(default_factory=dict)
    grads: dict[int, int] = field(default_factory=dict)


def gradient_maps(event: GradientInlined) -> dict[tuple[str, str], WatchMap]:
    """Where one `value_and_grad`'s forward and gradient graphs went in its enclosing
    trace: the forward graph's values and gradients, the gradient graph's values.

    >>> import pyasg
    >>> g = pyasg.make_graph(lambda x: x * x)(np.float32(1))
    >>> maps = gradient_maps(GradientInlined("f", 1, g, {0: 4}, {0: 10, 1: 11, 4: 14}))
    >>> maps[("f", "forward")], maps[("f", "gradient")].values[4]
    (WatchMap(values={0: 10, 1: 11}, grads={0: 14}), 14)
    """
    placed = event.placed
    return {(event.name, "forward"): WatchMap(
                values={i: placed[i] for i in event.forward.ids if i in placed},
                grads={i: placed[c] for i, c in event.cotangents.items() if c in placed}),
            (event.name, "gradient"): WatchMap(values=dict(placed))}


def entry_maps(event: Compiled,
               inlined: list[GradientInlined]) -> dict[tuple[str, str], WatchMap]:
    """The `WatchMap` of every graph a compiled entry can answer for: the published
    graphs that are its traced graph (node for node), and the graphs `value_and_grad`
    inlined into its trace (`gradient_maps`); the function's own graphs win.

    >>> import pyasg
    >>> g = pyasg.make_graph(lambda x: x + 1.0)(np.float32(1))
    >>> entry_maps(Compiled("f", 1, 7, g, {"forward": g}), [])
    {('f', 'forward'): WatchMap(values={0: 0, 1: 1, 2: 2}, grads={})}
    """
    maps: dict[tuple[str, str], WatchMap] = {}
    for inner in inlined:
        maps.update(gradient_maps(inner))
    for kind, graph in event.published.items():
        if graph is event.traced:  # a fused graph's nodes are not the traced graph's
            maps[(event.name, kind)] = WatchMap(values={i: i for i in graph.ids})
    return maps


@dataclass
class _Entry:
    """What the watcher knows of one compiled entry of a `pyasg.jit` function."""

    name: str
    traced: Graph
    maps: dict[tuple[str, str], WatchMap]
    #: (traced value node, traced gradient node) -> the executable computing them.
    runs: dict[tuple[int | None, int | None], Executable] = field(default_factory=dict)
    #: The request this entry last answered, and at which call.
    answered: int = 0
    last_call: int = 0


_serials = itertools.count(1)


class Watcher:
    """The viewer's live values in the training process: one watched node at a time.

    `start` subscribes to the compiler's events, `request` watches a node (replacing
    any earlier request), `clear` stops watching, `close` does both and unsubscribes.
    Tracing is single-threaded in pyasg, and so is this bookkeeping of traces.

    >>> w = Watcher().start()
    >>> w.request("loss", "gradient", 3, every=0)
    Traceback (most recent call last):
      ...
    pyasg.viewer.watch.WatchError: live values: every must count calls (an int >= 1), got 0...
    >>> w.close(); w.current
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._request: Request | None = None
        self._entries: dict[int, _Entry] = {}
        #: Trace serial -> the `GradientInlined` events of that trace, until it compiles.
        self._inlined: dict[int, list[GradientInlined]] = {}
        self._off: list[Callable[[], None]] = []
        self._off_called: Callable[[], None] | None = None

    def start(self) -> Watcher:
        """Subscribe to the events that say where published graphs' nodes are."""
        if not self._off:
            self._off = [events.subscribe(self._on_inlined, GradientInlined),
                         events.subscribe(self._on_compiled, Compiled)]
        return self

    def close(self) -> None:
        """Stop watching, unsubscribe, and forget every compiled entry."""
        self.clear()
        for unsubscribe in self._off:
            unsubscribe()
        self._off = []
        self._entries.clear()
        self._inlined.clear()

    @property
    def current(self) -> Request | None:
        """The node being watched, or None."""
        return self._request

    def request(self, name: str, kind: str, node: int, every: int = DEFAULT_EVERY) -> Request:
        """Watch one node (replacing any earlier request); returns the request."""
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            raise WatchError(f"live values: every must count calls (an int >= 1), "
                             f"got {every!r:.40}")
        with self._lock:
            self._request = Request(str(name), str(kind), int(node), every, next(_serials))
            if self._off_called is None:
                self._off_called = events.subscribe(self._on_called, Called)
            return self._request

    def clear(self) -> None:
        """Stop watching: calls are no longer published for this watcher."""
        with self._lock:
            self._request = None
            if self._off_called is not None:
                self._off_called()
                self._off_called = None

    # ------------------------------------------------------------ the events

    def _on_inlined(self, event: GradientInlined) -> None:
        self._inlined.setdefault(event.trace, []).append(event)

    def _on_compiled(self, event: Compiled) -> None:
        inlined = self._inlined.pop(event.trace, [])
        # A trace begun before this one that has not compiled never will (it was not a
        # jit's, e.g. `make_graph`'s): what it inlined is of no use.
        for serial in [s for s in self._inlined if s < event.trace]:
            del self._inlined[serial]
        self._entries[event.entry] = _Entry(event.name, event.traced,
                                            entry_maps(event, inlined))

    def _on_called(self, event: Called) -> None:
        request, entry = self._request, self._entries.get(event.entry)
        if request is None or entry is None:
            return
        where = entry.maps.get((request.name, request.kind))
        if where is None:
            return
        if request.serial == entry.answered and event.calls - entry.last_call < request.every:
            return
        entry.answered, entry.last_call = request.serial, event.calls
        key = (where.values.get(request.node), where.grads.get(request.node))
        if key == (None, None):
            return
        try:
            run = entry.runs.get(key)
            if run is None:
                wanted = pvector(i for i in key if i is not None)
                graph = prune(Graph(entry.traced.nodes, entry.traced.inputs, wanted))
                run = entry.runs[key] = jit_to_backend(graph, "numpy", f"{entry.name}:watch")
            results = iter(run(*(np.asarray(a) for a in event.arguments)))
            value, grad = (None if i is None else summarize(next(results)) for i in key)
        except Exception as e:  # live values must never break training
            print(f"pyasg: cannot compute live values of node %{request.node} of "
                  f"{request.name}/{request.kind}: {type(e).__name__}: {e}", file=sys.stderr)
            self.clear()
            return
        events.publish(NodeValues(request.name, request.kind, request.node, event.calls,
                                  value, grad))


def summarize(array: Any, bins: int = HISTOGRAM_BINS) -> dict[str, Any]:
    """min / max / mean / std over the finite elements of `array`, how many are not
    finite, and a histogram: `hist` counts in `bins` equal bins spanning `edges`
    ([min, max]). Plain Python numbers and lists, ready for JSON.

    >>> s = summarize(np.arange(4, dtype=np.float32), bins=2)
    >>> s["shape"], s["hist"], s["edges"], round(s["std"], 4)
    ([4], [2, 2], [0.0, 3.0], 1.118)
    """
    a = np.asarray(array)
    flat = a.astype(np.float64, copy=False).ravel() if a.dtype != np.bool_ else \
        a.ravel().astype(np.float64)
    finite = flat[np.isfinite(flat)]
    summary: dict[str, Any] = {"shape": list(a.shape), "dtype": str(a.dtype),
                               "nonfinite": int(flat.size - finite.size)}
    if finite.size == 0:
        nan = float("nan")
        summary.update(min=nan, max=nan, mean=nan, std=nan, hist=[], edges=[nan, nan])
        return summary
    lo, hi = float(finite.min()), float(finite.max())
    span = (lo, hi) if hi > lo else (lo - 0.5, hi + 0.5)  # one value: a bar around it
    counts, _ = np.histogram(finite, bins=bins, range=span)
    summary.update(min=lo, max=hi, mean=float(finite.mean()), std=float(finite.std()),
                   hist=[int(c) for c in counts], edges=[float(span[0]), float(span[1])])
    return summary
