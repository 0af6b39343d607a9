"""The viewer's wire format: run events as JSON text, never pickled objects.

Every message is one JSON object (strict JSON: no ``NaN`` literals) with the common
header ``{"protocol": "pyasg.viewer", "version": 1, "type": ...}`` and, by type::

    GraphReady   {"name": str, "kind": str, "graph": <graph_to_dict(graph), "pyasg.graph" v1>}
    StepDone     {"step": int, "loss": number, "metrics": {str: number}}
    RunFinished  {"error": str | null}
    Close        {}                       (control: the viewer should exit)

A number that is not finite (a diverged loss) is written as the string ``"nan"``,
``"inf"`` or ``"-inf"`` and read back as that float, as the graph format does for
float attributes. `decode` checks every field (exact key sets, types, the version,
and the graph through `graph_from_dict`) and raises `ProtocolError` on any defect.

>>> from pyasg.events import StepDone
>>> text = encode(StepDone(step=3, loss=float("nan"), metrics={"acc": 0.5}))
>>> text
'{"protocol": "pyasg.viewer", "version": 1, "type": "StepDone", "step": 3, "loss": "nan", \
"metrics": {"acc": 0.5}}'
>>> decode(text).step, decode(text).metrics
(3, {'acc': 0.5})
>>> decode(encode_close())
{'type': 'Close'}
"""

from __future__ import annotations

import json
import math
from typing import Any

from pyasg.asg.serialize import graph_from_dict, graph_to_dict
from pyasg.errors import PyasgError
from pyasg.events import Event, GraphReady, RunFinished, StepDone

PROTOCOL = "pyasg.viewer"
VERSION = 1
CLOSE = "Close"
_HEADER = ("protocol", "version", "type")
_FIELDS = {
    "GraphReady": {"name", "kind", "graph"},
    "StepDone": {"step", "loss", "metrics"},
    "RunFinished": {"error"},
    CLOSE: set(),
}
_NONFINITE = {"nan", "inf", "-inf"}


class ProtocolError(PyasgError):
    """A viewer message is malformed, of an unknown type or version, or cannot be encoded."""


def _enc_float(x: object, where: str) -> float | str:
    try:
        value = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ProtocolError(f"viewer message: {where} must be a number, got {x!r:.60}") from None
    return value if math.isfinite(value) else repr(value)


def _message(message_type: str, **body: Any) -> str:
    return json.dumps({"protocol": PROTOCOL, "version": VERSION, "type": message_type, **body},
                      allow_nan=False)


def encode(event: Event) -> str:
    """One run event as a JSON text (see the module docstring for the format).

    >>> from pyasg.events import RunFinished
    >>> decode(encode(RunFinished(error="boom"))) == RunFinished(error="boom")
    True
    """
    if isinstance(event, GraphReady):
        return _message("GraphReady", name=str(event.name), kind=str(event.kind),
                        graph=graph_to_dict(event.graph))
    if isinstance(event, StepDone):
        if not isinstance(event.step, int) or isinstance(event.step, bool):
            try:
                step = int(event.step)  # numpy integers
            except (TypeError, ValueError):
                raise ProtocolError(f"viewer message: StepDone.step must be an integer, "
                                    f"got {event.step!r:.60}") from None
        else:
            step = event.step
        metrics = {str(k): _enc_float(v, f"StepDone.metrics[{k!r}]")
                   for k, v in dict(event.metrics or {}).items()}
        return _message("StepDone", step=step, loss=_enc_float(event.loss, "StepDone.loss"),
                        metrics=metrics)
    if isinstance(event, RunFinished):
        return _message("RunFinished", error=None if event.error is None else str(event.error))
    raise ProtocolError(f"viewer message: cannot encode a {type(event).__name__}; the viewer "
                        f"knows GraphReady, StepDone and RunFinished")


def encode_close() -> str:
    """The control message that asks the viewer process to exit."""
    return _message(CLOSE)


def _fail(message: str) -> ProtocolError:
    return ProtocolError(f"bad viewer message: {message}")


def _dec_float(x: object, where: str) -> float:
    if isinstance(x, str) and x in _NONFINITE:
        return float(x)
    if not isinstance(x, (int, float)) or isinstance(x, bool):
        raise _fail(f"{where} must be a number or one of 'nan', 'inf', '-inf'")
    try:
        return float(x)
    except OverflowError:
        raise _fail(f"{where} must be within the float range") from None


def _dec_str(x: object, where: str) -> str:
    if not isinstance(x, str):
        raise _fail(f"{where} must be a string")
    return x


def _no_constants(name: str) -> object:
    raise ValueError(f"{name} is not strict JSON; write non-finite numbers as strings")


def decode(text: str | bytes) -> Event | dict[str, str]:
    """A JSON text back to its event, or ``{"type": "Close"}`` for the control message.

    >>> decode('{"type": "Launch"}')
    Traceback (most recent call last):
      ...
    pyasg.viewer.protocol.ProtocolError: bad viewer message: ...
    """
    try:
        data = json.loads(text, parse_constant=_no_constants)
    except (ValueError, TypeError, RecursionError) as e:
        raise _fail(f"not JSON ({e.__class__.__name__}: {str(e)[:80]})") from None
    if not isinstance(data, dict):
        raise _fail("the top level must be an object")
    if data.get("protocol") != PROTOCOL:
        raise _fail(f"'protocol' must be {PROTOCOL!r}")
    version = data.get("version")
    if version != VERSION or isinstance(version, bool):
        raise _fail(f"unsupported version {version!r:.40} (this pyasg reads {VERSION})")
    kind = data.get("type")
    if not isinstance(kind, str) or kind not in _FIELDS:
        raise _fail(f"unknown message type {kind!r:.40}; expected one of {sorted(_FIELDS)}")
    keys = set(data) - set(_HEADER)
    if keys != _FIELDS[kind]:
        raise _fail(f"a {kind} message has fields {sorted(_FIELDS[kind])}, got {sorted(keys)}")
    if kind == CLOSE:
        return {"type": CLOSE}
    if kind == "RunFinished":
        error = data["error"]
        return RunFinished(error=None if error is None else _dec_str(error, "RunFinished.error"))
    if kind == "StepDone":
        step = data["step"]
        if not isinstance(step, int) or isinstance(step, bool):
            raise _fail("StepDone.step must be an integer")
        metrics = data["metrics"]
        if not isinstance(metrics, dict):
            raise _fail("StepDone.metrics must be an object")
        return StepDone(step=step, loss=_dec_float(data["loss"], "StepDone.loss"),
                        metrics={k: _dec_float(v, f"StepDone.metrics[{k!r}]")
                                 for k, v in metrics.items()})
    try:
        graph = graph_from_dict(data["graph"])
    except PyasgError as e:
        raise _fail(f"GraphReady.graph: {e.message}") from None
    except RecursionError:
        raise _fail("GraphReady.graph is nested too deeply") from None
    return GraphReady(name=_dec_str(data["name"], "GraphReady.name"), graph=graph,
                      kind=_dec_str(data["kind"], "GraphReady.kind"))
