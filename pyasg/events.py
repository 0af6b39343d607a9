"""Run events and subscriptions: a small publish/subscribe hub.

The library publishes `GraphReady` when it compiles a graph, `ParamsDescribed` when a
layer initialises its parameters, and `NodeValues` for a node the viewer watches
(see `pyasg.watch`); training code publishes `StepDone` and `RunFinished`. Anything
can subscribe (the viewer does, over a queue).
A subscriber that raises is reported on stderr and never stops the publisher.

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
    one) are `pyasg.watch.summarize` dicts, or None."""

    name: str
    kind: str
    node: int
    step: int
    value: dict[str, Any] | None = None
    grad: dict[str, Any] | None = None


Subscriber = Callable[[Event], Any]
_subscribers: list[tuple[type[Event], Subscriber]] = []
_lock = threading.Lock()
_described: dict[str, str] = {}


def subscribe(callback: Subscriber, event_type: type[Event] = Event) -> Callable[[], None]:
    """Call `callback(event)` for every published event of `event_type` (default: all).

    Returns a function that unsubscribes.
    """
    entry = (event_type, callback)
    with _lock:
        _subscribers.append(entry)

    def unsubscribe() -> None:
        with _lock:
            if entry in _subscribers:
                _subscribers.remove(entry)

    return unsubscribe


def has_subscribers(event_type: type[Event] = Event) -> bool:
    """Whether anyone listens for `event_type` (publishers may skip building events)."""
    return any(issubclass(event_type, t) or issubclass(t, event_type) for t, _ in _subscribers)


def publish(event: Event) -> None:
    """Deliver `event` to its subscribers, in subscription order."""
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
    with _lock:
        _described.update(kinds)
    if has_subscribers(ParamsDescribed):
        publish(ParamsDescribed(dict(kinds)))


def described_params() -> dict[str, str]:
    """Every parameter kind recorded so far by `describe_params`."""
    with _lock:
        return dict(_described)
