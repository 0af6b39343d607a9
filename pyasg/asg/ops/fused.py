"""The `Fused` op: a group of primitive ops, held as its own sub-graph, run as one kernel.

`pyasg.transforms.fuse` makes these nodes after `grad` and `simplify`; nothing
traces them directly. The node's inputs are the sub-graph's inputs in order and
its value is the sub-graph's single output. Being an ordinary op, a fused graph
can be printed, saved as JSON (the sub-graph is nested), shown in the viewer and
even differentiated (the VJP differentiates the sub-graph).

>>> from pyasg.asg.graph import GraphBuilder
>>> from pyasg.asg.ops import Exp, Mul
>>> b = GraphBuilder(); x = b.add_input("in0", TensorType((3,)))
>>> sub = b.build([b.add(Mul(), (b.add(Exp(), (x,)), x))])
>>> op = Fused(sub)
>>> op.infer(TensorType((3,))), str(op)
(f32[3], 'fused[exp, mul]')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from pyasg.asg.graph import Graph
from pyasg.asg.ops.base import Constant, Input, Op
from pyasg.asg.types import TensorType
from pyasg.errors import ShapeError


@dataclass(frozen=True)
class Fused(Op):
    """A fused group of ops, held as a sub-graph with one output, run as one kernel."""

    graph: Graph
    category: ClassVar[str] = "fused"
    arity: ClassVar[int] = -1

    def infer(self, *inputs: TensorType) -> TensorType:
        sub = self.graph
        if not isinstance(sub, Graph):
            raise ShapeError(f"fused: the sub-graph must be a Graph, got {type(sub).__name__}")
        if len(sub.outputs) != 1:
            raise ShapeError(f"fused: the sub-graph must have one output, "
                             f"it has {len(sub.outputs)}")
        if tuple(inputs) != sub.input_types:
            shown = ", ".join(repr(t) for t in sub.input_types)
            got = ", ".join(repr(t) for t in inputs)
            raise ShapeError(f"fused: the sub-graph takes ({shown}), got ({got})")
        return sub.output_types[0]

    @property
    def op_names(self) -> tuple[str, ...]:
        """The names of the sub-graph's ops, in order (leaves left out)."""
        sub = self.graph
        return tuple(sub.nodes[i].op.name for i in sub.live_ids
                     if not isinstance(sub.nodes[i].op, (Input, Constant)))

    def __str__(self) -> str:
        return f"fused[{', '.join(self.op_names)}]"
