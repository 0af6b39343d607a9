"""convert_dtypes: the same graph computed in other dtypes (float64 -> float32 for GPUs).

Inputs, constants and casts are rewritten by the mapping; every other node's type
follows from the shape rules. The wgpu backend uses this to compute a graph that
numpy's promotion rules made float64 (an int32 array times a float32 array) in
float32, and int64 in int32: WebGPU has neither 64-bit type.

>>> import pyasg, numpy as np
>>> g = pyasg.make_graph(lambda x, n: x * n)(np.ones(2, np.float32), np.ones(2, np.int32))
>>> g.output_types, convert_dtypes(g, {"float64": "float32"}).output_types
((f64[2],), (f32[2],))
"""

from __future__ import annotations

from collections.abc import Mapping

from pyasg.asg import ops
from pyasg.asg.graph import Graph, Node
from pyasg.asg.rewrite import Rebuild, rebuild
from pyasg.asg.types import TensorType
from pyasg.transforms.checks import dtype_mapping, require_graph


def _mentions(graph: Graph, mapping: Mapping[str, str]) -> bool:
    """Whether any node of `graph`, or of a sub-graph of its control-flow ops, has a
    dtype in `mapping`."""
    return any(n.type.dtype in mapping or (isinstance(n.op, ops.Control) and any(
        _mentions(g, mapping) for g in n.op.graphs())) for n in graph.nodes.values())


def convert_dtypes(graph: Graph, mapping: Mapping[str, str]) -> Graph:
    """`graph` with every dtype in `mapping`'s keys replaced by its value."""
    require_graph(graph, "convert_dtypes")
    dtype_mapping(mapping, "convert_dtypes")
    if not _mentions(graph, mapping):
        return graph

    def convert(ctx: Rebuild, i: int, node: Node, inputs: tuple[int, ...]) -> int:
        op = node.op
        if isinstance(op, ops.Constant) and op.dtype in mapping:
            op = ops.Constant.of(op.value, mapping[op.dtype])
        elif isinstance(op, ops.Cast) and op.dtype in mapping:
            op = ops.Cast(mapping[op.dtype])
        elif isinstance(op, ops.Control):  # its sub-graphs compute in the same dtypes
            op = op.with_graphs(*(convert_dtypes(g, mapping) for g in op.graphs()))
        return ctx.add(op, inputs, node)

    types = [TensorType(t.shape, mapping.get(t.dtype, t.dtype)) for t in graph.input_types]
    return rebuild(graph, convert, types)
