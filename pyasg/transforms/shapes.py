"""infer_shapes: re-derive every node's type from new input types.

For graphs that were loaded, edited, or are re-specialised to a new batch size.
Ops with fixed shapes in their attributes (a reshape to [32, 10]) raise `ShapeError`
when the new input shapes do not fit them.

>>> import pyasg, numpy as np
>>> from pyasg.asg.types import TensorType
>>> g = pyasg.make_graph(lambda x: pyasg.exp(x).sum(axis=1))(np.ones((2, 3), np.float32))
>>> infer_shapes(g, [TensorType((5, 3))]).output_types
(f32[5],)
"""

from __future__ import annotations

from collections.abc import Sequence

from pyasg.asg.graph import Graph
from pyasg.asg.rewrite import rebuild
from pyasg.asg.types import TensorType
from pyasg.errors import ShapeError, shown
from pyasg.transforms.checks import require_graph


def infer_shapes(graph: Graph, input_types: Sequence[TensorType] | None = None) -> Graph:
    """The same graph with its inputs retyped to `input_types` (default: as they are);
    nodes no output needs are dropped, not re-checked."""
    require_graph(graph, "infer_shapes")
    if input_types is not None and (not isinstance(input_types, (list, tuple)) or not all(
            isinstance(t, TensorType) for t in input_types)):
        raise ShapeError(f"infer_shapes: input_types must be a list of TensorType (one per "
                         f"input), got {type(input_types).__name__} {shown(input_types, 60)}")
    types = list(graph.input_types if input_types is None else input_types)
    if len(types) != len(graph.inputs):
        raise ShapeError(f"infer_shapes: the graph has {len(graph.inputs)} inputs, got "
                         f"{len(types)} types")
    return rebuild(graph, input_types=types)
