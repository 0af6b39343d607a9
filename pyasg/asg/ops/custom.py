"""The `CustomCall` op: a call of a function with a user-defined derivative.

`pyasg.custom_vjp` / `pyasg.custom_jvp` record one node per call: its `graph`
attribute is the function's own (primal) sub-graph, traced at the call's input
types; `rule` is the key of the user's derivative rules in
`pyasg.transforms.custom.CUSTOM_RULES` (Python code, which a graph cannot hold);
`function` is the function's name, for errors and printing. The differentiating
transforms consult the rule; the compiler inlines the sub-graph before any backend
sees the node (`inlined = True`), so the op has no kernels of its own, and a graph
holding one is refused by `pyasg.asg.serialize` (the rule could not be saved).

>>> from pyasg.asg.graph import GraphBuilder
>>> from pyasg.asg.ops import Exp
>>> b = GraphBuilder(); x = b.add_input("x", TensorType((3,)))
>>> op = CustomCall(b.build([b.add(Exp(), (x,))]), "my_exp", 0)
>>> op.infer(TensorType((3,))), str(op)
(f32[3], 'custom_call[my_exp]')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from pyasg.asg.graph import Graph
from pyasg.asg.ops.base import Op
from pyasg.asg.types import TensorType
from pyasg.errors import ShapeError


@dataclass(frozen=True)
class CustomCall(Op):
    """A call of a function with a custom derivative, held as its primal sub-graph."""

    graph: Graph
    function: str
    rule: int
    category: ClassVar[str] = "custom"
    arity: ClassVar[int] = -1
    inlined: ClassVar[bool] = True

    def infer(self, *inputs: TensorType) -> TensorType:
        sub = self.graph
        if not isinstance(sub, Graph):
            raise ShapeError(f"custom_call: the sub-graph must be a Graph, got "
                             f"{type(sub).__name__}")
        if len(sub.outputs) != 1:
            raise ShapeError(f"custom_call {self.function}: the sub-graph must have one "
                             f"output, it has {len(sub.outputs)}")
        if tuple(inputs) != sub.input_types:
            shown = ", ".join(repr(t) for t in sub.input_types)
            got = ", ".join(repr(t) for t in inputs)
            raise ShapeError(f"custom_call {self.function}: the function was traced for "
                             f"({shown}), got ({got})")
        return sub.output_types[0]

    def __str__(self) -> str:
        return f"custom_call[{self.function}]"
