"""WHAT is computed — never how: types, the primitive ops, and the immutable graph."""

from pyasg.asg import ops, ops_conv
from pyasg.asg.graph import Graph, GraphBuilder, Node, prune
from pyasg.asg.ops import OPS, Op
from pyasg.asg.types import DTYPES, TensorType

__all__ = ["DTYPES", "OPS", "Graph", "GraphBuilder", "Node", "Op", "TensorType", "ops", "ops_conv",
           "prune"]
