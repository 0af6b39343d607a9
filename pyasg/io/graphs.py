"""Graph files: a model's structure as the core's JSON, shareable without its code.

`save_graph(path, graph)` writes `pyasg.asg.serialize`'s JSON atomically;
`load_graph(path)` validates it (known ops, checked attributes, every stored type
re-derived, the limits of `pyasg.asg.serialize`) and re-runs `infer_shapes`;
`load_graph(path, input_types)` re-specialises it to other input sizes (another
batch size), re-deriving the sizes that attributes fix (`pyasg.io.respecialise`)
or refusing with a `ShapeError` naming the node. Every defect of the file raises
`GraphFormatError` naming the path; a FIFO or a device under its name is refused
before it is opened for reading.

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
from pyasg.errors import GraphFormatError, PyasgError, ShapeError, shorten, shown, shown_path
from pyasg.io.atomic import PathLike, atomic_write
from pyasg.io.paths import checked_path, open_regular
from pyasg.io.respecialise import respecialise
from pyasg.transforms.shapes import infer_shapes


def save_graph(path: PathLike, graph: Graph) -> Path:
    """Write `graph` as JSON to `path` atomically (temporary file, fsync, rename).

    >>> import numpy as np, pyasg
    >>> g = pyasg.make_graph(pyasg.exp)(np.ones(2, np.float32))
    >>> save_graph(g, "model.json")
    Traceback (most recent call last):
    ...
    pyasg.errors.GraphFormatError: save_graph takes (path, graph), and the graph came first...
    """
    if isinstance(path, Graph) and not isinstance(graph, Graph):  # save_graph(graph, path)
        raise GraphFormatError(f"save_graph takes (path, graph), and the graph came first: "
                               f"swap them, save_graph({shown(graph)}, graph)")
    path = checked_path(path, "pyasg.io.save_graph", error=GraphFormatError)
    if not isinstance(graph, Graph):
        raise GraphFormatError(f"{shown_path(path)}: save_graph needs a Graph, got "
                               f"{type(graph).__name__} (pyasg.make_graph(f)(*example_args) "
                               f"makes one)")
    try:
        data = (graph_to_json(graph) + "\n").encode("utf-8")
    except (TypeError, ValueError) as e:  # an attribute JSON cannot hold
        raise GraphFormatError(f"{shown_path(path)}: the graph cannot be written as JSON "
                               f"({shorten(str(e))})") from None
    return atomic_write(path, lambda tmp: tmp.write_bytes(data), GraphFormatError)


def load_graph(path: PathLike, input_types: Sequence[TensorType] | None = None) -> Graph:
    """Read a graph file, check it, and re-run `infer_shapes`; for `input_types` (the same
    number of axes per input, other sizes), re-specialise it (`respecialise`).

    A file that is missing, not a regular file, not JSON, or not a valid graph raises
    `GraphFormatError`; input types that the graph cannot take, or for which a size
    fixed in an attribute cannot be re-derived (`x[1:]` on an axis that changed),
    raise `ShapeError` naming the node. Both name the path.

    >>> import tempfile, os, numpy as np, pyasg
    >>> g = pyasg.make_graph(lambda x: x.sum(axis=0))(np.ones((2, 3), np.float32))
    >>> path = save_graph(os.path.join(tempfile.mkdtemp(), "sum.json"), g)
    >>> load_graph(path, [TensorType((7, 5))]).output_types  # re-specialised
    (f32[5],)
    """
    path = checked_path(path, "pyasg.io.load_graph", error=GraphFormatError)
    with open_regular(path, GraphFormatError) as f:
        try:
            data = f.read()
        except OSError as e:
            raise GraphFormatError(f"{shown_path(path)}: cannot read ({e.strerror or e})") from None
    try:
        graph = graph_from_json(data)
    except GraphFormatError as e:
        raise GraphFormatError(f"{shown_path(path)}: {e.message}") from None
    try:
        graph = infer_shapes(graph)  # the file's own types: any failure is the file's fault
    except PyasgError as e:
        raise GraphFormatError(f"{shown_path(path)}: the graph's shapes do not check: "
                               f"{e.message}") from None
    if input_types is None:
        return graph
    try:
        return respecialise(graph, input_types)
    except PyasgError as e:
        raise ShapeError(f"{shown_path(path)}: {e.message}", source=e.source) from None
