"""Run events and subscriptions: a small publish/subscribe hub.

The library publishes `GraphReady` when it compiles a graph, `ParamsDescribed` when a
layer initialises its parameters; training code publishes `StepDone` and `RunFinished`;
the viewer's live values publish `NodeValues`. Anything can subscribe (the viewer
does, over a queue). A subscriber that raises is reported on stderr and never stops
the publisher.

Three events exist for observers of the compiler, above all the viewer's live values
(`pyasg.viewer.watch`), and are published only while someone listens for them:

* `GradientInlined`: `value_and_grad` inlined a gradient graph into an enclosing
  trace; it says where the forward and gradient graphs' nodes went, and names that
  trace by its `serial`.
* `Compiled`: `pyasg.jit` compiled one entry (one input signature) from the graph a
  trace produced; it names the same trace serial again, so an observer joins the
  `GradientInlined` events of that trace to the entry, and gives the entry an
  identity of its own.
* `Called`: one call of a compiled entry, with its arguments (the arrays the
  executable was given, not copies).

With nobody subscribed, a call of a jit function costs one `has_subscribers` check.

Records outlive their publication, so that a viewer launched after the model was
built still shows it: the parameter kinds, always (`described_params`), and, after
`remember_graphs()`, the most recent graphs: the last `GraphReady` of each name and
kind (`recent_graphs`, at most `RECENT_GRAPHS` of them). The graph record is asked
for because it listens for `GraphReady`: while it is on, every compilation publishes
its graphs (once per compilation; calls still publish nothing).

>>> seen = []
>>> unsubscribe = subscribe(seen.append, StepDone)
>>> publish(StepDone(step=1, loss=0.5))
>>> unsubscribe(); publish(StepDone(step=2, loss=0.4))
>>> [e.step for e in seen]
[1]
"""

from __future__ import annotations

import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pyasg.asg.graph import Graph
from pyasg.errors import PyasgError, shown


@dataclass(frozen=True)
class Event:
    """Base of every event."""


@dataclass(frozen=True)
class GraphReady(Event):
    """A graph is ready: "forward" (a traced function, published when it is compiled, and
    the function `value_and_grad` differentiates), "gradient" (its gradient graph), or
    "fused" (after fusion)."""

    name: str
    graph: Graph
    kind: str = "forward"


@dataclass(frozen=True)
class StepDone(Event):
    """A training step finished with this loss (and any other metrics)."""

    step: int
    loss: float
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class RunFinished(Event):
    """Training ended (normally, or with an error described by `error`)."""

    error: str | None = None


@dataclass(frozen=True)
class ParamsDescribed(Event):
    """Layers' parameters by dotted path (relative to the layer that was initialised),
    with the kind each was recorded as: `{"attn.w_q.weight": "Linear.weight"}`."""

    kinds: dict[str, str]


@dataclass(frozen=True)
class NodeValues(Event):
    """Statistics of one node of graph (`name`, `kind`), computed by the training process
    for the viewer after call `step` of the function that runs it: `value` and `grad`
    (the gradient of the differentiated scalar with respect to that node, when there is
    one) are `pyasg.viewer.watch.summarize` dicts, or None."""

    name: str
    kind: str
    node: int
    step: int
    value: dict[str, Any] | None = None
    grad: dict[str, Any] | None = None


@dataclass(frozen=True)
class ChangeRequested(Event):
    """The viewer's model lab asks the training process to change the model at the next
    step boundary (`pyasg.train.lab`): `what` ("activation", "dropout",
    "insert_dropout", "remove_dropout", "lr"), the dotted layer `path` it applies to
    ("" for the learning rate) and the new `value` (a name, a rate, or None)."""

    what: str
    path: str
    value: str | float | None = None


@dataclass(frozen=True)
class LabOffered(Event):
    """The changes the model lab offers for the model being trained: one dict per
    place, `{"what", "path", "current", "choices"}` (`pyasg.train.changes.offers`)."""

    offers: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class ModelChanged(Event):
    """A requested change was applied after training step `step` (the next step runs
    the new model), replacing `before`, or refused with `error`; `what`, `path`,
    `value` as asked."""

    step: int
    what: str
    path: str
    value: str | float | None = None
    before: str | float | None = None
    error: str | None = None


@dataclass(frozen=True)
class CostReady(Event):
    """What each node of graph (`name`, `kind`) costs per step: the dict of
    `pyasg.viewer.cost.StepCost.to_dict` (times, FLOPs, bytes, fused ops, kernel source)."""

    name: str
    kind: str
    cost: dict[str, Any]


@dataclass(frozen=True)
class GradientInlined(Event):
    """`value_and_grad` differentiated `forward` (published as graph `name`) and inlined
    its gradient graph into the trace numbered `trace` (`Trace.serial`).

    `cotangents` maps a node of `forward` to the node of the gradient graph holding the
    gradient of the scalar output with respect to it (for nodes on a differentiated
    path); `placed` maps each node of the gradient graph (whose ids include those of
    `forward`) to the node of the enclosing trace that holds its value.
    """

    name: str
    trace: int
    forward: Graph
    cotangents: dict[int, int]
    placed: dict[int, int]


@dataclass(frozen=True)
class Compiled(Event):
    """`pyasg.jit` function `name` compiled one entry, numbered `entry` in `Called`, from
    `traced`, the graph of the trace numbered `trace`; `published` holds the graphs it
    publishes as `GraphReady` (while anyone listens for those) by kind: "forward" is
    `traced`, "fused" the graph that runs, when simplification or fusion changed it."""

    name: str
    entry: int
    trace: int
    traced: Graph
    published: dict[str, Graph]


@dataclass(frozen=True)
class Called(Event):
    """Compiled entry `entry` ran on `arguments` (the leaves the executable received, in
    the order of the traced graph's inputs; not copies). `calls` counts this entry's
    calls made while someone listened for `Called`, this one included."""

    entry: int
    calls: int
    arguments: tuple[Any, ...]


Subscriber = Callable[[Event], Any]
_subscribers: list[tuple[type[Event], Subscriber]] = []
_lock = threading.Lock()
_described: dict[str, str] = {}
#: How many graphs (by name and kind) `recent_graphs` keeps: a training step's forward,
#: fused and its loss's forward and gradient graphs, twice over.
RECENT_GRAPHS = 8
_recent: dict[tuple[str, str], GraphReady] = {}
_stop_remembering: Callable[[], None] | None = None
#: `has_subscribers` answers by event type, recomputed after each (un)subscription.
_listened: dict[type[Event], bool] = {}


class EventError(PyasgError, TypeError):
    """A subscription or a publication was given something that is not what it takes."""


def _check_event_type(event_type: object, what: str) -> None:
    if not (isinstance(event_type, type) and issubclass(event_type, Event)):
        raise EventError(f"{what}: the event type must be a subclass of pyasg.events.Event "
                         f"(StepDone, GraphReady, ...), got {type(event_type).__name__} "
                         f"{shown(event_type, 60)}")


def subscribe(callback: Subscriber, event_type: type[Event] = Event) -> Callable[[], None]:
    """Call `callback(event)` for every published event of `event_type` (default: all).

    Returns a function that unsubscribes. Both arguments are checked here, so a bad
    one fails at this call and never in a later `publish`.

    >>> subscribe(print, 5)
    Traceback (most recent call last):
      ...
    pyasg.events.EventError: subscribe: the event type must be a subclass of ... got int 5...
    """
    if not callable(callback):
        raise EventError(f"subscribe: the callback must be callable, got "
                         f"{type(callback).__name__} {shown(callback, 60)}")
    _check_event_type(event_type, "subscribe")
    entry = (event_type, callback)
    with _lock:
        _subscribers.append(entry)
        _listened.clear()

    def unsubscribe() -> None:
        with _lock:
            if entry in _subscribers:
                _subscribers.remove(entry)
                _listened.clear()

    return unsubscribe


def has_subscribers(event_type: type[Event] = Event) -> bool:
    """Whether anyone listens for `event_type` (publishers may skip building events).

    One dictionary look-up once answered: a publisher may ask on every call.

    >>> class Probe(Event): ...
    >>> unsubscribe = subscribe(print, Probe)
    >>> has_subscribers(Probe)
    True
    >>> unsubscribe()
    """
    try:
        known = _listened.get(event_type)
    except TypeError:  # unhashable, so not an event type: refused just below
        known = None
    if known is not None:
        return known
    _check_event_type(event_type, "has_subscribers")  # once per type: then it is known
    with _lock:  # computed and stored under the lock, so no (un)subscription is missed
        known = _listened[event_type] = any(
            issubclass(event_type, t) or issubclass(t, event_type) for t, _ in _subscribers)
    return known


def publish(event: Event) -> None:
    """Deliver `event` to its subscribers, in subscription order.

    >>> publish("step 3")
    Traceback (most recent call last):
      ...
    pyasg.events.EventError: publish takes an event (pyasg.events.Event), got str 'step 3'...
    """
    if not isinstance(event, Event):
        raise EventError(f"publish takes an event (pyasg.events.Event), got "
                         f"{type(event).__name__} {shown(event, 60)}")
    with _lock:
        targets = [cb for t, cb in _subscribers if isinstance(event, t)]
    for callback in targets:
        try:
            callback(event)
        except Exception:  # a broken subscriber must never stop training
            print(f"pyasg: event subscriber {callback!r} failed:", file=sys.stderr)
            traceback.print_exc()


def describe_params(kinds: dict[str, str]) -> None:
    """Record parameter kinds (see `ParamsDescribed`) and publish them to subscribers.

    The record is kept, so a viewer launched later still learns them
    (`described_params`).
    """
    if not isinstance(kinds, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                              for k, v in kinds.items()):
        raise EventError(f"describe_params takes a dict of str paths to str kinds, got "
                         f"{type(kinds).__name__} {shown(kinds, 60)}")
    with _lock:
        _described.update(kinds)
    if has_subscribers(ParamsDescribed):
        publish(ParamsDescribed(dict(kinds)))


def described_params() -> dict[str, str]:
    """Every parameter kind recorded so far by `describe_params`."""
    with _lock:
        return dict(_described)


def remember_graphs(on: bool = True) -> None:
    """Keep the graphs published from now on (`recent_graphs`), so that a viewer
    launched later (`pyasg.viewer.launch`) is sent them and shows a step that compiled
    before it; ``remember_graphs(False)`` stops and forgets them.

    >>> remember_graphs()
    >>> publish(GraphReady("demo_step", Graph({}, (), ())))
    >>> [g.name for g in recent_graphs()]
    ['demo_step']
    >>> remember_graphs(False); recent_graphs()
    []
    """
    global _stop_remembering
    if not isinstance(on, bool):
        raise EventError(f"remember_graphs takes True or False, got {shown(on, 60, True)}")
    with _lock:
        stop, _stop_remembering = _stop_remembering, None
    if stop is not None:
        stop()
    if on:
        _stop_remembering = subscribe(_remember_graph, GraphReady)
    else:
        with _lock:
            _recent.clear()


def recent_graphs() -> list[GraphReady]:
    """The last `GraphReady` of each (name, kind) published while `remember_graphs` was
    on, oldest first; at most `RECENT_GRAPHS`, the least recently published forgotten
    first (a graph holds its constants, and a long session compiles many functions)."""
    with _lock:
        return list(_recent.values())


def _remember_graph(event: Event) -> None:
    """The subscriber behind `recent_graphs`."""
    if not isinstance(event, GraphReady):
        return
    key = (event.name, event.kind)
    with _lock:
        _recent.pop(key, None)  # re-inserted: the newest is last
        _recent[key] = event
        while len(_recent) > RECENT_GRAPHS:
            del _recent[next(iter(_recent))]

