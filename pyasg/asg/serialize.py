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
A `CustomCall` node (a call of a `custom_vjp`/`custom_jvp` function) is refused both
ways (`UnsavableGraphError`, naming the function): its rules are Python code.

A file that loads also compiles and prints: validation refuses what no backend
(or the printer) can handle, by these limits —

- every tensor (each node's type, so inputs, constants and every intermediate) has
  at most `MAX_NDIM` axes and spans at most `MAX_TENSOR_BYTES` bytes, counting a
  zero-length axis as 1 (numpy cannot make `[0, 10**30]` either);
- every integer (ids, sizes, axes) fits in int64, and every integer-list attribute
  has at most `MAX_NDIM` entries;
- every string (input paths, dtype and layout attributes, names, sources) is at
  most `MAX_STRING_CHARS` characters of valid Unicode (no lone surrogates, which
  cannot be printed or encoded);
- `Fused` sub-graphs nest at most `MAX_FUSED_DEPTH` deep (pyasg's own `fuse` makes 1);
- a bool constant's bytes are 0 or 1 (as numpy's own bools are).

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
from collections.abc import Callable
from dataclasses import fields
from typing import Any

from pyrsistent import pmap, pvector

from pyasg.asg.graph import Graph, Node, require_graph
from pyasg.asg.ops import OPS, Constant, CustomCall, Input, Op
from pyasg.asg.types import DTYPES, TensorType
from pyasg.errors import GraphFormatError, PyasgError, UnsavableGraphError

FORMAT = "pyasg.graph"
VERSION = 1

#: Most axes of any tensor: numpy's own limit (NPY_MAXDIMS in numpy 1) and far beyond
#: any model's; integer-list attributes (one entry per axis) have at most this many.
MAX_NDIM = 32
#: Most bytes one tensor may span (a zero-length axis counted as 1): 256 TiB, beyond any
#: machine's memory yet far from where a byte offset overflows int64.
MAX_TENSOR_BYTES = 2**48
#: Most characters in any string of the file (a path, a name, a source, an attribute).
MAX_STRING_CHARS = 4096
#: How deep `Fused` sub-graphs may nest: printing, comparing and compiling recurse once
#: per level, so an unbounded depth is an unbounded recursion.
MAX_FUSED_DEPTH = 16
#: Integers beyond int64 fit no kernel's index arithmetic.
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1
#: The most characters of an op's complaint a format error repeats.
_MAX_MESSAGE = 1000


def _enc_type(t: TensorType) -> dict:
    return {"shape": list(t.shape), "dtype": t.dtype}


def _enc_float(x: float) -> float | str:
    return x if math.isfinite(x) else repr(float(x))


def encode_attr(kind: str, value: object, custom_calls: bool = False) -> object:
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
        return graph_to_dict(value, custom_calls=custom_calls)  # type: ignore[arg-type]
    return value


def _fail(message: str) -> GraphFormatError:
    if len(message) > _MAX_MESSAGE:  # an op's complaint may list a thousand shapes
        message = message[:_MAX_MESSAGE] + f"…[{len(message) - _MAX_MESSAGE} more]"
    return GraphFormatError(f"bad graph file: {message}")


def _int(x: object, where: str) -> int:
    if not isinstance(x, int) or isinstance(x, bool):
        raise _fail(f"{where} must be an integer, got {x!r:.60}")
    if not _INT_MIN <= x <= _INT_MAX:
        raise _fail(f"{where}: {str(x):.30}… does not fit in 64 bits")
    return x


def _int_tuple(x: object, where: str, length: int | None = None) -> tuple[int, ...]:
    if not isinstance(x, list) or (length is not None and len(x) != length):
        raise _fail(f"{where} must be a list of {length or 'any number of'} integers")
    return tuple(_int(v, where) for v in x)


def _axes_list(x: object, where: str) -> list:
    """`x`, if it is a list of at most `MAX_NDIM` entries (one per axis)."""
    if isinstance(x, list) and len(x) > MAX_NDIM:
        raise _fail(f"{where} has {len(x)} entries; a tensor has at most {MAX_NDIM} axes")
    return x  # type: ignore[return-value]


def _string(x: object, where: str) -> str:
    """`x`, if it is a string within `MAX_STRING_CHARS` that is valid Unicode."""
    if not isinstance(x, str):
        raise _fail(f"{where} must be a string")
    if len(x) > MAX_STRING_CHARS:
        raise _fail(f"{where} has {len(x)} characters; at most {MAX_STRING_CHARS} are allowed")
    try:
        x.encode("utf-8")
    except UnicodeEncodeError:  # JSON's "\ud800" escapes make lone surrogates
        raise _fail(f"{where} is not valid Unicode (it holds a lone surrogate)") from None
    return x


def _extent(t: TensorType) -> int:
    """The bytes `t` spans with every zero-length axis counted as 1 (what numpy checks)."""
    return math.prod(max(d, 1) for d in t.shape) * TensorType((), t.dtype).nbytes


def tensor_limit_problem(t: TensorType) -> str | None:
    """What is beyond the limits (`MAX_NDIM`, `MAX_TENSOR_BYTES`) in a tensor of type `t`,
    or None when a backend can hold it.

    >>> tensor_limit_problem(TensorType((10**12, 10**12)))
    'a float32 tensor of shape [1000000000000, 1000000000000] spans ... bytes; at most ...'
    >>> tensor_limit_problem(TensorType((0, 3))) is None
    True
    """
    if t.ndim > MAX_NDIM:
        return f"a tensor of {t.ndim} axes is beyond the limit of {MAX_NDIM}"
    if _extent(t) > MAX_TENSOR_BYTES:
        return (f"a {t.dtype} tensor of shape {list(t.shape)} spans {_extent(t)} bytes; "
                f"at most {MAX_TENSOR_BYTES} (2**48) are allowed")
    return None


def _dec_type(x: object, where: str) -> TensorType:
    if not isinstance(x, dict) or set(x) != {"shape", "dtype"}:
        raise _fail(f"{where} must be {{'shape': [...], 'dtype': ...}}")
    dtype = x["dtype"]
    if not isinstance(dtype, str):
        raise _fail(f"{where}.dtype must be a string")
    if dtype not in DTYPES:
        raise _fail(f"{where}.dtype {dtype!r:.40} is not one of {', '.join(DTYPES)}")
    shape = _int_tuple(_axes_list(x["shape"], where + ".shape"), where + ".shape")
    try:
        t = TensorType(shape, dtype)
    except PyasgError as e:  # a negative axis length
        raise _fail(f"{where}: {e.message}") from None
    problem = tensor_limit_problem(t)
    if problem is not None:
        raise _fail(f"{where}: {problem}")
    return t


def decode_attr(kind: str, x: object, where: str, depth: int = 0,
                custom_calls: bool = False) -> object:
    """One op attribute from JSON, checked against its declared type (`depth`: how many
    `Fused` graphs enclose it)."""
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
        return _string(x, where)
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
        return _int_tuple(_axes_list(x, where), where)
    if kind == "tuple[tuple[int, int, int], ...]":
        if not isinstance(x, list):
            raise _fail(f"{where} must be a list of [low, high, interior] triples")
        return tuple(_int_tuple(v, where, 3) for v in _axes_list(x, where))
    if kind == "Graph":
        if depth >= MAX_FUSED_DEPTH:
            raise _fail(f"{where}: fused graphs nest more than {MAX_FUSED_DEPTH} deep")
        try:
            return graph_from_dict(x, depth + 1, custom_calls=custom_calls)
        except GraphFormatError as e:
            inner = e.message.removeprefix("bad graph file: ")
            raise _fail(f"{where} (a nested graph): {inner}") from None
    raise _fail(f"{where}: attribute kind {kind!r} is not serialisable")


def attr_kinds(op_class: type[Op]) -> dict[str, str]:
    """Each dataclass field of an op class with its annotation text."""
    return {f.name: str(f.type) for f in fields(op_class)}


def _refuse_custom(node: Node) -> UnsavableGraphError:
    return UnsavableGraphError(
        f"the graph calls {node.op.function!r}, a function with a custom derivative "
        f"(pyasg.custom_vjp / custom_jvp): its rules are Python code, which a saved graph "
        f"cannot hold, and saving its primal alone would silently change its gradients. "
        f"Save pyasg.inline_custom_calls(graph) to keep its values without the custom "
        f"derivative, or differentiate first and save the result inlined the same way",
        node.source)


def graph_to_dict(graph: Graph, *, custom_calls: bool = False) -> dict:
    """The graph as a JSON-ready dict. `custom_calls=True` only for a transport within
    one session (the viewer's): a CustomCall is then written for display, its rule key
    meaningless elsewhere; by default it raises `UnsavableGraphError`."""
    nodes = []
    for i in graph.ids:
        n = graph.nodes[i]
        if isinstance(n.op, CustomCall) and not custom_calls:
            raise _refuse_custom(n)
        kinds = attr_kinds(type(n.op))
        nodes.append({
            "id": i,
            "op": type(n.op).__name__,
            "attrs": {k: encode_attr(kinds[k], v, custom_calls)
                      for k, v in n.op.attrs().items()},
            "inputs": list(n.inputs),
            "type": _enc_type(n.type),
            "name": n.name,
            "source": n.source,
        })
    return {"format": FORMAT, "version": VERSION, "inputs": list(graph.inputs),
            "outputs": list(graph.outputs), "nodes": nodes}


def graph_to_json(graph: Graph, indent: int | None = None) -> str:
    """The graph as JSON text (see the module docstring for the format)."""
    require_graph(graph, "graph_to_json")
    return json.dumps(graph_to_dict(graph), indent=indent, allow_nan=False)


def _bool_bytes(op: Constant) -> str | None:
    if op.dtype == "bool" and op.data.strip(b"\x00\x01"):
        return "a bool constant's bytes must be 0 or 1"
    return None


#: What an op's kernels assume of its attributes beyond its shape rule, by op class: a
#: check returns what is wrong, or None.
VALUE_CHECKS: dict[type[Op], Callable[[Any], str | None]] = {
    Constant: _bool_bytes,
}


def _dec_node(raw: object, k: int, known: dict[int, Node],
              depth: int = 0, custom_calls: bool = False) -> tuple[int, Node]:
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
    if op_class is CustomCall and not custom_calls:  # its rule key would name whatever
        # the loading process holds under that number
        raise _fail(f"{where}: a CustomCall (a custom-derivative function's call) cannot be "
                    f"loaded: its rules are not part of a file")
    kinds = attr_kinds(op_class)
    attrs = raw["attrs"]
    if not isinstance(attrs, dict) or set(attrs) != set(kinds):
        raise _fail(f"{where}: op {raw['op']} needs exactly the attributes {sorted(kinds)}")
    op = op_class(**{name: decode_attr(kind, attrs[name], f"{where}.attrs.{name}", depth,
                                       custom_calls)
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
    check = VALUE_CHECKS.get(op_class)
    problem = check(op) if check is not None else None
    if problem is not None:
        raise _fail(f"{where} ({op.name}): {problem}")
    for key in ("name", "source"):
        if raw[key] is not None:
            _string(raw[key], f"{where}.{key}")
    return node_id, Node(op, inputs, stored, raw["name"], raw["source"])


def graph_from_dict(data: object, depth: int = 0, *, custom_calls: bool = False) -> Graph:
    """Validate and build a graph from parsed JSON; raises `GraphFormatError`. `depth` is
    how many `Fused` graphs enclose this one (see `MAX_FUSED_DEPTH`); `custom_calls`
    accepts CustomCall nodes (the viewer's transport only: see `graph_to_dict`)."""
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
        node_id, node = _dec_node(raw, k, nodes, depth, custom_calls)
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
