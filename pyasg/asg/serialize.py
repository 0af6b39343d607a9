"""Graphs to and from JSON: a stable, documented, validated format (no pickle, no eval).

Format (version 1)::

    {"format": "pyasg.graph", "version": 1,
     "inputs": [0, 1], "outputs": [4],
     "nodes": [{"id": 0, "op": "Input", "attrs": {"path": "x", "type": {"shape": [3], "dtype":
                "float32"}}, "inputs": [], "type": {"shape": [3], "dtype": "float32"},
                "name": "x", "source": "model.py:12"}, ...]}

Ops are looked up by class name in `pyasg.asg.ops.OPS` only; every attribute is
checked against its declared type; every node's type is re-derived and must match
the stored one. Any defect raises `GraphFormatError`. A `Fused` node's attribute
`graph` is a whole graph in this same format, nested and validated the same way.

>>> from pyasg.asg.graph import GraphBuilder
>>> from pyasg.asg.types import TensorType
>>> b = GraphBuilder(); x = b.add_input("x", TensorType((2,)))
>>> g = b.build([x]); graph_from_json(graph_to_json(g)) == g
True
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import fields

from pyrsistent import pmap, pvector

from pyasg.asg.graph import Graph, Node
from pyasg.asg.ops import OPS, Input, Op
from pyasg.asg.types import TensorType
from pyasg.errors import GraphFormatError, PyasgError

FORMAT = "pyasg.graph"
VERSION = 1


def _enc_type(t: TensorType) -> dict:
    return {"shape": list(t.shape), "dtype": t.dtype}


def _enc_float(x: float) -> float | str:
    return x if math.isfinite(x) else repr(float(x))


def encode_attr(kind: str, value: object) -> object:
    """One op attribute to JSON, by its declared type (`kind`, the annotation text)."""
    if kind == "TensorType":
        return _enc_type(value)  # type: ignore[arg-type]
    if kind == "bytes":
        return base64.b64encode(value).decode("ascii")  # type: ignore[arg-type]
    if kind == "float":
        return _enc_float(float(value))  # type: ignore[arg-type]
    if kind.startswith("tuple"):
        return json.loads(json.dumps(value))  # nested tuples -> nested lists
    if kind == "Graph":  # a fused node's sub-graph: the same format, nested
        return graph_to_dict(value)  # type: ignore[arg-type]
    return value


def _fail(message: str) -> GraphFormatError:
    return GraphFormatError(f"bad graph file: {message}")


def _int(x: object, where: str) -> int:
    if not isinstance(x, int) or isinstance(x, bool):
        raise _fail(f"{where} must be an integer, got {x!r:.60}")
    return x


def _int_tuple(x: object, where: str, length: int | None = None) -> tuple[int, ...]:
    if not isinstance(x, list) or (length is not None and len(x) != length):
        raise _fail(f"{where} must be a list of {length or 'any number of'} integers")
    return tuple(_int(v, where) for v in x)


def _dec_type(x: object, where: str) -> TensorType:
    if not isinstance(x, dict) or set(x) != {"shape", "dtype"}:
        raise _fail(f"{where} must be {{'shape': [...], 'dtype': ...}}")
    if not isinstance(x["dtype"], str):
        raise _fail(f"{where}.dtype must be a string")
    try:
        return TensorType(_int_tuple(x["shape"], where + ".shape"), x["dtype"])
    except PyasgError as e:
        raise _fail(f"{where}: {e.message}") from None


def decode_attr(kind: str, x: object, where: str) -> object:
    """One op attribute from JSON, checked against its declared type."""
    if kind == "int":
        return _int(x, where)
    if kind == "bool":
        if not isinstance(x, bool):
            raise _fail(f"{where} must be true or false")
        return x
    if kind == "float":
        if x in ("nan", "inf", "-inf"):
            return float(x)  # type: ignore[arg-type]
        if not isinstance(x, (int, float)) or isinstance(x, bool):
            raise _fail(f"{where} must be a number")
        try:
            return float(x)
        except OverflowError:  # an integer literal beyond the float range
            raise _fail(f"{where} must be a number within the float range") from None
    if kind == "str":
        if not isinstance(x, str):
            raise _fail(f"{where} must be a string")
        return x
    if kind == "bytes":
        if not isinstance(x, str):
            raise _fail(f"{where} must be base64 text")
        try:
            return base64.b64decode(x.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            raise _fail(f"{where} is not valid base64") from None
    if kind == "TensorType":
        return _dec_type(x, where)
    if kind == "tuple[int, ...]":
        return _int_tuple(x, where)
    if kind == "tuple[tuple[int, int, int], ...]":
        if not isinstance(x, list):
            raise _fail(f"{where} must be a list of [low, high, interior] triples")
        return tuple(_int_tuple(v, where, 3) for v in x)
    if kind == "Graph":
        try:
            return graph_from_dict(x)
        except GraphFormatError as e:
            inner = e.message.removeprefix("bad graph file: ")
            raise _fail(f"{where} (a nested graph): {inner}") from None
    raise _fail(f"{where}: attribute kind {kind!r} is not serialisable")


def attr_kinds(op_class: type[Op]) -> dict[str, str]:
    """Each dataclass field of an op class with its annotation text."""
    return {f.name: str(f.type) for f in fields(op_class)}


def graph_to_dict(graph: Graph) -> dict:
    nodes = []
    for i in graph.ids:
        n = graph.nodes[i]
        kinds = attr_kinds(type(n.op))
        nodes.append({
            "id": i,
            "op": type(n.op).__name__,
            "attrs": {k: encode_attr(kinds[k], v) for k, v in n.op.attrs().items()},
            "inputs": list(n.inputs),
            "type": _enc_type(n.type),
            "name": n.name,
            "source": n.source,
        })
    return {"format": FORMAT, "version": VERSION, "inputs": list(graph.inputs),
            "outputs": list(graph.outputs), "nodes": nodes}


def graph_to_json(graph: Graph, indent: int | None = None) -> str:
    """The graph as JSON text (see the module docstring for the format)."""
    return json.dumps(graph_to_dict(graph), indent=indent, allow_nan=False)


def _dec_node(raw: object, k: int, known: dict[int, Node]) -> tuple[int, Node]:
    where = f"nodes[{k}]"
    if not isinstance(raw, dict) or set(raw) != {"id", "op", "attrs", "inputs", "type",
                                                 "name", "source"}:
        raise _fail(f"{where} must have exactly id, op, attrs, inputs, type, name, source")
    node_id = _int(raw["id"], where + ".id")
    last = next(reversed(known), None)  # ids increase, so the last is the largest
    if last is not None and node_id <= last:
        raise _fail(f"{where}: ids must increase (got {node_id} after {last})")
    op_class = OPS.get(raw["op"]) if isinstance(raw["op"], str) else None
    if op_class is None:
        raise _fail(f"{where}: unknown op {raw['op']!r:.60}")
    kinds = attr_kinds(op_class)
    attrs = raw["attrs"]
    if not isinstance(attrs, dict) or set(attrs) != set(kinds):
        raise _fail(f"{where}: op {raw['op']} needs exactly the attributes {sorted(kinds)}")
    op = op_class(**{name: decode_attr(kind, attrs[name], f"{where}.attrs.{name}")
                     for name, kind in kinds.items()})
    inputs = _int_tuple(raw["inputs"], where + ".inputs")
    for j in inputs:
        if j not in known:
            raise _fail(f"{where}: input {j} does not name an earlier node")
    stored = _dec_type(raw["type"], where + ".type")
    try:
        op.check_arity(len(inputs))
        derived = op.infer(*(known[j].type for j in inputs))
    except PyasgError as e:
        raise _fail(f"{where} ({op.name}): {e.message}") from None
    if derived != stored:
        raise _fail(f"{where} ({op.name}): stored type {stored!r} but inputs give {derived!r}")
    for key in ("name", "source"):
        if raw[key] is not None and not isinstance(raw[key], str):
            raise _fail(f"{where}.{key} must be a string or null")
    return node_id, Node(op, inputs, stored, raw["name"], raw["source"])


def graph_from_dict(data: object) -> Graph:
    """Validate and build a graph from parsed JSON; raises `GraphFormatError`."""
    if not isinstance(data, dict) or set(data) != {"format", "version", "inputs", "outputs",
                                                   "nodes"}:
        raise _fail("the top level must have exactly format, version, inputs, outputs, nodes")
    if data["format"] != FORMAT or type(data["version"]) is not int or data["version"] != VERSION:
        raise _fail(f"expected format {FORMAT!r} version {VERSION}, got "
                    f"{data['format']!r:.40} version {data['version']!r:.20}")
    if not isinstance(data["nodes"], list):
        raise _fail("nodes must be a list")
    nodes: dict[int, Node] = {}
    for k, raw in enumerate(data["nodes"]):
        node_id, node = _dec_node(raw, k, nodes)
        nodes[node_id] = node
    inputs = _int_tuple(data["inputs"], "inputs")
    outputs = _int_tuple(data["outputs"], "outputs")
    declared = {i for i, n in nodes.items() if isinstance(n.op, Input)}
    if len(set(inputs)) != len(inputs) or set(inputs) != declared:
        raise _fail("inputs must list every Input node exactly once")
    for j in outputs:
        if j not in nodes:
            raise _fail(f"output {j} does not name a node")
    seen = set()
    for n in nodes.values():
        key = (n.op, n.inputs)
        if key in seen:
            raise _fail(f"node {n.op.name}{list(n.inputs)} appears twice")
        seen.add(key)
    return Graph(pmap(nodes), pvector(inputs), pvector(outputs))


def graph_from_json(text: str | bytes) -> Graph:
    """Parse JSON text into a validated `Graph`; any defect raises `GraphFormatError`."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError, TypeError) as e:
        raise _fail(f"not valid JSON ({type(e).__name__}: {str(e)[:80]})") from None
    return graph_from_dict(data)
