"""Graph files: a model's structure as the core's JSON, shareable without its code.

`save_graph(path, graph)` writes `pyasg.asg.serialize`'s JSON atomically;
`load_graph(path)` validates it (known ops, checked attributes, every stored type
re-derived) and re-runs `infer_shapes`, optionally for new input types (another
batch size). Every defect of the file raises `GraphFormatError` naming the path.

>>> import tempfile, os, numpy as np, pyasg
>>> g = pyasg.make_graph(lambda x: pyasg.exp(x).sum())(np.ones(3, np.float32))
>>> path = os.path.join(tempfile.mkdtemp(), "model.json")
>>> _ = save_graph(path, g)
>>> h = load_graph(path)
>>> pyasg.jit_to_backend(h)(np.zeros(3, np.float32))[0].item()
3.0
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pyasg.asg.graph import Graph
from pyasg.asg.serialize import graph_from_json, graph_to_json
from pyasg.asg.types import TensorType
from pyasg.errors import GraphFormatError, PyasgError, ShapeError
from pyasg.io.atomic import PathLike, atomic_write
from pyasg.transforms.shapes import infer_shapes


def save_graph(path: PathLike, graph: Graph) -> Path:
    """Write `graph` as JSON to `path` atomically (temporary file, fsync, rename)."""
    if not isinstance(graph, Graph):
        raise GraphFormatError(f"{path}: save_graph needs a Graph, got {type(graph).__name__}"
                               f" (pyasg.make_graph(f)(*example_args) makes one)")
    try:
        data = (graph_to_json(graph) + "\n").encode("utf-8")
    except (TypeError, ValueError) as e:  # an attribute JSON cannot hold
        raise GraphFormatError(f"{path}: the graph cannot be written as JSON ({e})") from None
    return atomic_write(path, lambda tmp: tmp.write_bytes(data), GraphFormatError)


def load_graph(path: PathLike, input_types: Sequence[TensorType] | None = None) -> Graph:
    """Read a graph file, check it, and re-run `infer_shapes` (for `input_types`, if given).

    A file that is missing, not JSON, or not a valid graph raises `GraphFormatError`;
    input types that the graph cannot take raise `ShapeError`. Both name the path.

    >>> import tempfile, os, numpy as np, pyasg
    >>> g = pyasg.make_graph(lambda x: x.sum(axis=0))(np.ones((2, 3), np.float32))
    >>> path = save_graph(os.path.join(tempfile.mkdtemp(), "sum.json"), g)
    >>> load_graph(path, [TensorType((7, 5))]).output_types  # re-specialised
    (f32[5],)
    """
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise GraphFormatError(f"{path}: no such file") from None
    except OSError as e:
        raise GraphFormatError(f"{path}: cannot read ({e.strerror or e})") from None
    try:
        graph = graph_from_json(data)
    except GraphFormatError as e:
        raise GraphFormatError(f"{path}: {e.message}") from None
    try:
        graph = infer_shapes(graph)  # the file's own types: any failure is the file's fault
    except PyasgError as e:
        raise GraphFormatError(f"{path}: the graph's shapes do not check: {e.message}") \
            from None
    if input_types is None:
        return graph
    try:
        return infer_shapes(graph, input_types)
    except PyasgError as e:
        raise ShapeError(f"{path}: {e.message}") from None
