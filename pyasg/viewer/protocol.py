"""The viewer's wire format: run events as JSON text, never pickled objects.

Every message is one JSON object (strict JSON: no ``NaN`` literals) with the common
header ``{"protocol": "pyasg.viewer", "version": 1, "type": ...}`` and, by type::

    GraphReady   {"name": str, "kind": str, "graph": <graph_to_dict(graph), "pyasg.graph" v1>}
    StepDone     {"step": int, "loss": number, "metrics": {str: number}}
    RunFinished  {"error": str | null}
    ParamsDescribed {"kinds": {str: str}}     (dotted parameter path -> layer kind)
    NodeValues   {"name": str, "kind": str, "node": int, "step": int,
                  "value": <summary> | null, "grad": <summary> | null}
    LabOffered   {"offers": [{"what": str, "path": str, "current": <value>,
                              "choices": [str] | str | null}]}
    ModelChanged {"step": int, "what": str, "path": str, "value": <value>,
                  "before": <value>, "error": str | null}
    CostReady    {"name": str, "kind": str, "cost": <pyasg.viewer.cost.StepCost.to_dict>}
    Close        {}                       (control: the viewer should exit)

and the messages the viewer sends back, on its own queue::

    Watch        {"name": str, "kind": str, "node": int, "every": int}
    Change       {"what": str, "path": str, "value": <value>}   (the model lab's request)

A <value> is a string, a finite number or null (an activation's name, a rate).

A <summary> is `pyasg.viewer.watch.summarize`'s dict: {"shape": [int], "dtype": str,
"nonfinite": int, "min", "max", "mean", "std": number, "hist": [int],
"edges": [number, number]}.

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
from pyasg.events import (
    ChangeRequested,
    CostReady,
    Event,
    GraphReady,
    LabOffered,
    ModelChanged,
    NodeValues,
    ParamsDescribed,
    RunFinished,
    StepDone,
)
from pyasg.viewer.cost import StepCost
from pyasg.viewer.watch import Request

PROTOCOL = "pyasg.viewer"
VERSION = 1
CLOSE = "Close"
#: The run events that cross to the viewer (what `encode` writes); the compiler's
#: other events (`Compiled`, `Called`, ...) stay in the training process.
EVENTS: tuple[type[Event], ...] = (GraphReady, StepDone, RunFinished, ParamsDescribed,
                                   NodeValues, LabOffered, ModelChanged, CostReady)
_HEADER = ("protocol", "version", "type")
WATCH = "Watch"
CHANGE = "Change"
_FIELDS = {
    "GraphReady": {"name", "kind", "graph"},
    "StepDone": {"step", "loss", "metrics"},
    "RunFinished": {"error"},
    "ParamsDescribed": {"kinds"},
    "NodeValues": {"name", "kind", "node", "step", "value", "grad"},
    "LabOffered": {"offers"},
    "ModelChanged": {"step", "what", "path", "value", "before", "error"},
    "CostReady": {"name", "kind", "cost"},
    WATCH: {"name", "kind", "node", "every"},
    CHANGE: {"what", "path", "value"},
    CLOSE: set(),
}
#: The messages that go from the viewer to training (`decode_request`).
REQUESTS = (WATCH, CHANGE)
_OFFER_FIELDS = {"what", "path", "current", "choices"}
_SUMMARY_FIELDS = {"shape", "dtype", "nonfinite", "min", "max", "mean", "std", "hist", "edges"}
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
                        graph=graph_to_dict(event.graph, custom_calls=True))
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
    if isinstance(event, ParamsDescribed):
        return _message("ParamsDescribed", kinds={str(k): str(v) for k, v in
                                                  dict(event.kinds).items()})
    if isinstance(event, NodeValues):
        return _message("NodeValues", name=str(event.name), kind=str(event.kind),
                        node=int(event.node), step=int(event.step),
                        value=_enc_summary(event.value, "NodeValues.value"),
                        grad=_enc_summary(event.grad, "NodeValues.grad"))
    if isinstance(event, LabOffered):
        return _message("LabOffered", offers=[_enc_offer(o) for o in event.offers])
    if isinstance(event, ModelChanged):
        return _message("ModelChanged", step=int(event.step), what=str(event.what),
                        path=str(event.path), value=_enc_value(event.value, "ModelChanged.value"),
                        before=_enc_value(event.before, "ModelChanged.before"),
                        error=None if event.error is None else str(event.error))
    if isinstance(event, CostReady):
        return _message("CostReady", name=str(event.name), kind=str(event.kind),
                        cost=_checked_cost(event.cost, ProtocolError, "viewer message: "))
    raise ProtocolError(f"viewer message: cannot encode a {type(event).__name__}; the viewer "
                        f"knows {', '.join(sorted(set(_FIELDS) - {CLOSE, *REQUESTS}))}")


def _enc_value(value: object, where: str) -> str | float | None:
    """A lab value: None, a string, or a finite number."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool) or _enc_float(value, where) != float(value):  # type: ignore[arg-type]
        raise ProtocolError(f"viewer message: {where} must be a string, a finite number or "
                            f"null, got {value!r:.60}")
    return float(value)  # type: ignore[arg-type]


def _enc_offer(offer: Any) -> dict[str, Any]:
    if not isinstance(offer, dict) or set(offer) != _OFFER_FIELDS:
        raise ProtocolError(f"viewer message: a lab offer has fields {sorted(_OFFER_FIELDS)}, "
                            f"got {offer!r:.80}")
    choices = offer["choices"]
    if isinstance(choices, (list, tuple)):
        choices = [str(c) for c in choices]
    elif choices is not None:
        choices = str(choices)
    return {"what": str(offer["what"]), "path": str(offer["path"]),
            "current": _enc_value(offer["current"], "LabOffered.current"), "choices": choices}


def _checked_cost(cost: object, error: type[PyasgError], prefix: str) -> dict[str, Any]:
    """`cost` if it is a `StepCost.to_dict` (checked by reading it back)."""
    try:
        return StepCost.from_dict(cost).to_dict()
    except PyasgError as e:
        raise error(f"{prefix}CostReady.cost: {e.message}") from None


def encode_change(what: str, path: str = "", value: str | float | None = None) -> str:
    """The viewer's model-lab request (see `pyasg.train.lab`).

    >>> decode_request(encode_change("activation", "1", "gelu"))
    ChangeRequested(what='activation', path='1', value='gelu')
    """
    return _message(CHANGE, what=str(what), path=str(path), value=_enc_value(value, "Change.value"))


def _enc_summary(summary: dict[str, Any] | None, where: str) -> dict[str, Any] | None:
    if summary is None:
        return None
    try:
        return {"shape": [int(d) for d in summary["shape"]], "dtype": str(summary["dtype"]),
                "nonfinite": int(summary["nonfinite"]),
                **{k: _enc_float(summary[k], f"{where}.{k}")
                   for k in ("min", "max", "mean", "std")},
                "hist": [int(c) for c in summary["hist"]],
                "edges": [_enc_float(e, f"{where}.edges") for e in summary["edges"]]}
    except (KeyError, TypeError, ValueError) as e:
        raise ProtocolError(f"viewer message: {where} is not a pyasg.viewer.watch summary "
                            f"({type(e).__name__}: {e})") from None


def encode_watch(name: str, kind: str, node: int, every: int) -> str:
    """The viewer's request for live values of one node (see `pyasg.viewer.watch`).

    >>> decode_watch(encode_watch("loss", "forward", 3, 10))
    Request(name='loss', kind='forward', node=3, every=10, serial=0)
    """
    return _message(WATCH, name=str(name), kind=str(kind), node=int(node), every=int(every))


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


def _dec_int(x: object, where: str) -> int:
    if not isinstance(x, int) or isinstance(x, bool):
        raise _fail(f"{where} must be an integer")
    return x


def _dec_summary(x: object, where: str) -> dict[str, Any] | None:
    if x is None:
        return None
    if not isinstance(x, dict) or set(x) != _SUMMARY_FIELDS:
        raise _fail(f"{where} must be null or an object with fields {sorted(_SUMMARY_FIELDS)}")
    shape, hist, edges = x["shape"], x["hist"], x["edges"]
    if not isinstance(shape, list) or not isinstance(hist, list) or not isinstance(edges, list) \
            or len(edges) != 2:
        raise _fail(f"{where}: shape and hist must be lists, edges a pair")
    return {"shape": [_dec_int(d, f"{where}.shape") for d in shape],
            "dtype": _dec_str(x["dtype"], f"{where}.dtype"),
            "nonfinite": _dec_int(x["nonfinite"], f"{where}.nonfinite"),
            **{k: _dec_float(x[k], f"{where}.{k}") for k in ("min", "max", "mean", "std")},
            "hist": [_dec_int(c, f"{where}.hist") for c in hist],
            "edges": [_dec_float(e, f"{where}.edges") for e in edges]}


def decode_watch(text: str | bytes) -> Request:
    """The viewer's Watch message back to a `pyasg.viewer.watch.Request` (raises
    ProtocolError)."""
    data = _parse(text)
    if data["type"] != WATCH:
        raise _fail(f"expected a {WATCH} message, got {data['type']}")
    every = _dec_int(data["every"], "Watch.every")
    if every < 1:
        raise _fail("Watch.every must be at least 1")
    return Request(_dec_str(data["name"], "Watch.name"), _dec_str(data["kind"], "Watch.kind"),
                   _dec_int(data["node"], "Watch.node"), every)


def _dec_value(x: object, where: str) -> str | float | None:
    if x is None or isinstance(x, str):
        return x
    value = _dec_float(x, where)
    if not math.isfinite(value):
        raise _fail(f"{where} must be a string, a finite number or null")
    return value


def decode_request(text: str | bytes) -> Request | ChangeRequested:
    """A message from the viewer to training: a `Watch` (as `decode_watch`) or a model-lab
    `Change` (a `pyasg.events.ChangeRequested`); raises ProtocolError on anything else."""
    data = _parse(text)
    if data["type"] == WATCH:
        return decode_watch(text)
    if data["type"] != CHANGE:
        raise _fail(f"expected one of {', '.join(REQUESTS)} from the viewer, got {data['type']}")
    return ChangeRequested(_dec_str(data["what"], "Change.what"),
                           _dec_str(data["path"], "Change.path"),
                           _dec_value(data["value"], "Change.value"))


def _no_constants(name: str) -> object:
    raise ValueError(f"{name} is not strict JSON; write non-finite numbers as strings")


def _parse(text: str | bytes) -> dict[str, Any]:
    """The checked JSON object of one message (header and exact field set)."""
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
    return data


def _dec_offers(x: object) -> tuple[dict[str, Any], ...]:
    if not isinstance(x, list):
        raise _fail("LabOffered.offers must be a list")
    offers = []
    for k, offer in enumerate(x):
        where = f"LabOffered.offers[{k}]"
        if not isinstance(offer, dict) or set(offer) != _OFFER_FIELDS:
            raise _fail(f"{where} must be an object with fields {sorted(_OFFER_FIELDS)}")
        choices = offer["choices"]
        if isinstance(choices, list):
            choices = [_dec_str(c, f"{where}.choices") for c in choices]
        elif choices is not None:
            choices = _dec_str(choices, f"{where}.choices")
        offers.append({"what": _dec_str(offer["what"], f"{where}.what"),
                       "path": _dec_str(offer["path"], f"{where}.path"),
                       "current": _dec_value(offer["current"], f"{where}.current"),
                       "choices": choices})
    return tuple(offers)


def decode(text: str | bytes) -> Event | dict[str, str]:
    """A JSON text back to its event, or ``{"type": "Close"}`` for the control message.

    >>> decode('{"type": "Launch"}')
    Traceback (most recent call last):
      ...
    pyasg.viewer.protocol.ProtocolError: bad viewer message: ...
    """
    data = _parse(text)
    kind = data["type"]
    if kind in REQUESTS:
        raise _fail(f"a {kind} message goes from the viewer to training (decode_request)")
    if kind == "LabOffered":
        return LabOffered(_dec_offers(data["offers"]))
    if kind == "ModelChanged":
        error = data["error"]
        return ModelChanged(_dec_int(data["step"], "ModelChanged.step"),
                            _dec_str(data["what"], "ModelChanged.what"),
                            _dec_str(data["path"], "ModelChanged.path"),
                            _dec_value(data["value"], "ModelChanged.value"),
                            _dec_value(data["before"], "ModelChanged.before"),
                            None if error is None else _dec_str(error, "ModelChanged.error"))
    if kind == "CostReady":
        return CostReady(_dec_str(data["name"], "CostReady.name"),
                         _dec_str(data["kind"], "CostReady.kind"),
                         _checked_cost(data["cost"], ProtocolError, "bad viewer message: "))
    if kind == CLOSE:
        return {"type": CLOSE}
    if kind == "RunFinished":
        error = data["error"]
        return RunFinished(error=None if error is None else _dec_str(error, "RunFinished.error"))
    if kind == "ParamsDescribed":
        kinds = data["kinds"]
        if not isinstance(kinds, dict) or not all(isinstance(v, str) for v in kinds.values()):
            raise _fail("ParamsDescribed.kinds must be an object of strings")
        return ParamsDescribed(kinds=dict(kinds))
    if kind == "NodeValues":
        return NodeValues(name=_dec_str(data["name"], "NodeValues.name"),
                          kind=_dec_str(data["kind"], "NodeValues.kind"),
                          node=_dec_int(data["node"], "NodeValues.node"),
                          step=_dec_int(data["step"], "NodeValues.step"),
                          value=_dec_summary(data["value"], "NodeValues.value"),
                          grad=_dec_summary(data["grad"], "NodeValues.grad"))
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
        # a custom call is shown, never run, in the viewer: its rule key may cross
        graph = graph_from_dict(data["graph"], custom_calls=True)
    except PyasgError as e:
        raise _fail(f"GraphReady.graph: {e.message}") from None
    except RecursionError:
        raise _fail("GraphReady.graph is nested too deeply") from None
    return GraphReady(name=_dec_str(data["name"], "GraphReady.name"), graph=graph,
                      kind=_dec_str(data["kind"], "GraphReady.kind"))
