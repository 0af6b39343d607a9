"""Live values: the node the viewer watches, and the statistics sent back for it.

The viewer asks for one node of one published graph (`request`). From then on, a
`pyasg.jit` function whose trace produced that graph evaluates the node — and, for a
graph that `value_and_grad` differentiated, the gradient of its scalar output with
respect to that node — on the arguments of every `every`-th call, and publishes
`pyasg.events.NodeValues` with `summarize` of each. The extra evaluation is a
separate executable compiled once per watched node; the step's own executable is
untouched. With nothing watched, the only cost of a call is reading `ACTIVE`.

>>> summary = summarize(np.array([[1.0, 2.0], [3.0, np.nan]]))
>>> summary["min"], summary["max"], summary["mean"], summary["nonfinite"], sum(summary["hist"])
(1.0, 3.0, 2.0, 1, 3)
>>> r = request("loss", "forward", node=5, every=10)
>>> current() == r
True
>>> clear(); current()
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Bars of the histograms `summarize` makes.
HISTOGRAM_BINS = 24
#: Default number of calls between two evaluations of a watched node.
DEFAULT_EVERY = 10

#: True while a node is watched: the one thing a compiled function reads per call.
ACTIVE = False


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


_lock = threading.Lock()
_serials = itertools.count(1)
_request: Request | None = None


def request(name: str, kind: str, node: int, every: int = DEFAULT_EVERY) -> Request:
    """Watch one node (replacing any earlier request); returns the request."""
    global _request, ACTIVE
    if not isinstance(every, int) or every < 1:
        every = DEFAULT_EVERY
    with _lock:
        _request = Request(str(name), str(kind), int(node), every, next(_serials))
        ACTIVE = True
        return _request


def current() -> Request | None:
    """The node being watched, or None."""
    return _request


def clear() -> None:
    """Stop watching (the viewer was closed)."""
    global _request, ACTIVE
    with _lock:
        _request = None
        ACTIVE = False


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
