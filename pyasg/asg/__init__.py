"""WHAT is computed — never how: types, the primitive ops, and the immutable graph.

Importing `pyasg.asg` imports every op category (`pyasg.asg.ops`), so the op registry
`OPS` is complete by construction.
"""

from pyasg.asg import ops
from pyasg.asg.graph import Graph, GraphBuilder, Node, prune
from pyasg.asg.ops import OPS, Op
from pyasg.asg.types import DTYPES, TensorType

__all__ = ["DTYPES", "OPS", "Graph", "GraphBuilder", "Node", "Op", "TensorType", "ops", "prune"]
