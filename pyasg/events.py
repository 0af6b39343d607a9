"""Run events and subscriptions: a small publish/subscribe hub.

The library publishes `GraphReady` when it compiles a graph; training code publishes
`StepDone` and `RunFinished`. Anything can subscribe (the viewer does, over a queue).
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


Subscriber = Callable[[Event], Any]
_subscribers: list[tuple[type[Event], Subscriber]] = []
_lock = threading.Lock()


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
