"""Control flow as ops with sub-graphs: `Scan`, `Cond`, `WhileLoop`, and `Remat` (checkpoint).

Each op holds its body as an immutable `Graph` (hashable, so hash-consing and JSON work
as for `Fused`). A node has one output, so a loop with several results is several
nodes, one per output `index`, that share the op's other fields and the same inputs; a
backend runs for each of them only the part of the body that output needs
(`needed_outputs`), and the reference backend (the oracle) runs the whole body.

Input conventions (node inputs, in order; the sub-graphs take the same order):

- `Scan`: consts (`n_consts`, read by every iteration), the initial carries
  (`n_carry`), then the scanned arrays xs (each of leading size `length`). The body takes
  (consts, carries, one slice of each x) and returns (new carries, ys). Output k <
  `n_carry` is the final carry k; output `n_carry + j` is y j stacked over the
  iterations, [length, *y.shape]. `reverse` walks the leading axis from the end.
- `Cond`: the bool scalar predicate, then the operands; both branches take the
  operands and return values of the same types; output `index` is that of the branch
  the predicate picks.
- `WhileLoop`: consts (`n_consts`), then the carries. `cond_graph` takes (consts,
  carries) to a bool scalar, `body` (consts, carries) to new carries.
- `Remat`: the inputs of `body`; its output `index`. Forward it is just the body; its
  gradient rule recomputes the body in the backward pass instead of keeping its values.

>>> from pyasg.asg.graph import GraphBuilder
>>> from pyasg.asg.ops import Add
>>> b = GraphBuilder()
>>> c, x = b.add_input("c", TensorType((3,))), b.add_input("x", TensorType((3,)))
>>> s = b.add(Add(), (c, x))
>>> op = Scan(b.build([s, s]), length=5, n_consts=0, n_carry=1, index=1)
>>> op.infer(TensorType((3,)), TensorType((5, 3))), str(op), op.label()
(f32[5,3], 'scan[length=5, output 1 of 2]', 'scan ×5: y 0')
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

from pyrsistent import pvector

from pyasg.asg.graph import Graph, prune
from pyasg.asg.ops.base import Op
from pyasg.asg.types import TensorType
from pyasg.errors import ShapeError

__all__ = ["Cond", "Control", "Remat", "Scan", "WhileLoop", "input_dependencies", "restrict"]


def _types(types: tuple[TensorType, ...]) -> str:
    return "(" + ", ".join(repr(t) for t in types) + ")"


def input_dependencies(graph: Graph, output: int) -> frozenset[int]:
    """Positions of the inputs of `graph` that its output `output` depends on.

    >>> from pyasg.asg.graph import GraphBuilder
    >>> from pyasg.asg.ops import Exp
    >>> b = GraphBuilder()
    >>> x, y = b.add_input("x", TensorType(())), b.add_input("y", TensorType(()))
    >>> sorted(input_dependencies(b.build([b.add(Exp(), (y,))]), 0))
    [1]
    """
    position = {i: k for k, i in enumerate(graph.inputs)}
    seen, stack, found = set(), [graph.outputs[output]], set()
    while stack:
        i = stack.pop()
        if i in seen:
            continue
        seen.add(i)
        if i in position:
            found.add(position[i])
        stack.extend(graph.nodes[i].inputs)
    return frozenset(found)


def restrict(graph: Graph, outputs: tuple[int, ...]) -> Graph:
    """`graph` with only the outputs at these positions (in this order), pruned; every
    input is kept, so it is called as before.

    >>> from pyasg.asg.graph import GraphBuilder
    >>> from pyasg.asg.ops import Exp
    >>> b = GraphBuilder(); x = b.add_input("x", TensorType(()))
    >>> len(restrict(b.build([b.add(Exp(), (x,)), x]), (1,)).nodes)
    1
    """
    return prune(Graph(graph.nodes, graph.inputs, pvector(graph.outputs[k] for k in outputs)))


def _carry_closure(graph: Graph, n_consts: int, n_carry: int, start: set[int]) -> set[int]:
    """The carries (positions among the carries) that carries `start` need, transitively,
    when `graph` maps (consts, carries, ...) to (new carries, ...)."""
    need, todo = set(start), list(start)
    while todo:
        c = todo.pop()
        for k in input_dependencies(graph, c):
            j = k - n_consts
            if 0 <= j < n_carry and j not in need:
                need.add(j)
                todo.append(j)
    return need


def _check_graph(graph: object, what: str) -> Graph:
    if not isinstance(graph, Graph):
        raise ShapeError(f"{what} must be a Graph, got {type(graph).__name__}")
    return graph


def _check_index(index: int, count: int, name: str) -> None:
    if not 0 <= index < count:
        raise ShapeError(f"{name}: output index {index} is out of range for {count} outputs")


@dataclass(frozen=True)
class Control(Op):
    """What every control-flow op shares: sub-graphs, one output per `index`."""

    abstract: ClassVar[bool] = True
    category: ClassVar[str] = "control"
    arity: ClassVar[int] = -1
    fusion_role: ClassVar[str] = "opaque"

    def graphs(self) -> tuple[Graph, ...]:
        """The sub-graphs, in field order."""
        raise NotImplementedError

    def with_graphs(self, *graphs: Graph) -> Control:
        """The same op with these sub-graphs (a transform's rewrite of them)."""
        raise NotImplementedError

    def output_count(self) -> int:
        """How many outputs the construct has (nodes with `index` 0 .. count - 1)."""
        raise NotImplementedError

    def with_index(self, index: int) -> Control:
        """The op of output `index` of the same construct."""
        return replace(self, index=index)


@dataclass(frozen=True)
class Scan(Control):
    """A loop over the leading axis of xs, carrying state: lax.scan, one output per node."""

    body: Graph
    length: int
    n_consts: int
    n_carry: int
    reverse: bool = False
    index: int = 0

    def graphs(self) -> tuple[Graph, ...]:
        return (self.body,)

    def with_graphs(self, body: Graph) -> Scan:  # type: ignore[override]
        return replace(self, body=body)

    def output_count(self) -> int:
        return len(self.body.outputs)

    @property
    def n_ys(self) -> int:
        return len(self.body.outputs) - self.n_carry

    def infer(self, *inputs: TensorType) -> TensorType:
        body = _check_graph(self.body, "scan: the body")
        if self.length < 0 or self.n_consts < 0 or self.n_carry < 0:
            raise ShapeError(f"scan: length, n_consts and n_carry must be >= 0, got "
                             f"{self.length}, {self.n_consts}, {self.n_carry}")
        if len(inputs) != len(body.inputs) or len(inputs) < self.n_consts + self.n_carry:
            raise ShapeError(f"scan: the body takes {len(body.inputs)} inputs, the node has "
                             f"{len(inputs)}")
        nc, ncar = self.n_consts, self.n_carry
        for k, x in enumerate(inputs[nc + ncar:]):
            if x.shape[:1] != (self.length,):
                raise ShapeError(f"scan: xs {k} is {x!r}; its leading axis must be the "
                                 f"length {self.length}")
        given = inputs[:nc + ncar] + tuple(TensorType(x.shape[1:], x.dtype)
                                           for x in inputs[nc + ncar:])
        if given != body.input_types:
            raise ShapeError(f"scan: the body takes {_types(body.input_types)}, the node "
                             f"gives {_types(given)}")
        outs = body.output_types
        if len(outs) < ncar or outs[:ncar] != inputs[nc:nc + ncar]:
            raise ShapeError(f"scan: the body's carries come out as {_types(outs[:ncar])}, "
                             f"they go in as {_types(inputs[nc:nc + ncar])}")
        _check_index(self.index, len(outs), "scan")
        out = outs[self.index]
        return out if self.index < ncar else TensorType((self.length, *out.shape), out.dtype)

    def kept_carries(self) -> int | None:
        """Where the body's outputs end with its own carry inputs (each iteration's
        entering carries, stacked: what a gradient recomputes from), the output index of
        the first of them; else None. `pyasg.scan` always appends them, so a gradient's
        residuals are outputs of the same construct as its forward values."""
        n, nc, ncar, body = len(self.body.outputs), self.n_consts, self.n_carry, self.body
        if ncar == 0 or n - ncar < ncar:
            return None
        tail, carries = body.outputs[n - ncar:], body.inputs[nc:nc + ncar]
        return n - ncar if list(tail) == list(carries) else None

    def needed_outputs(self) -> tuple[tuple[int, ...], int | None]:
        """(the carries output `index` needs, ascending; the y it is, or None)."""
        carries, ys = self.needed_for((self.index,))
        return carries, (ys[0] if ys else None)

    def needed_for(self, indices: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(the carries that outputs `indices` need, ascending; the ys among them, as
        positions among the ys, ascending)."""
        nc, ncar = self.n_consts, self.n_carry
        start = {k for k in indices if k < ncar}
        ys = sorted(k - ncar for k in indices if k >= ncar)
        for y in ys:
            start |= {k - nc for k in input_dependencies(self.body, ncar + y)
                      if nc <= k < nc + ncar}
        return tuple(sorted(_carry_closure(self.body, nc, ncar, start))), tuple(ys)

    def label(self) -> str:
        """`scan ×T` and which output: `carry k`, `y j`, or `kept carry k` (a gradient's)."""
        kept, k, ncar = self.kept_carries(), self.index, self.n_carry
        what = (f"carry {k}" if k < ncar else f"kept carry {k - kept}"
                if kept is not None and k >= kept else f"y {k - ncar}")
        return f"scan ×{self.length}{' rev' if self.reverse else ''}: {what}"

    def __str__(self) -> str:
        way = ", reverse" if self.reverse else ""
        return f"scan[length={self.length}{way}, output {self.index} of {self.output_count()}]"


@dataclass(frozen=True)
class Cond(Control):
    """One of two sub-graphs, chosen by a bool scalar, run on the operands: lax.cond."""

    true_branch: Graph
    false_branch: Graph
    index: int = 0

    def graphs(self) -> tuple[Graph, ...]:
        return (self.true_branch, self.false_branch)

    def with_graphs(self, true_branch: Graph, false_branch: Graph) -> Cond:  # type: ignore[override]
        return replace(self, true_branch=true_branch, false_branch=false_branch)

    def output_count(self) -> int:
        return len(self.true_branch.outputs)

    def infer(self, *inputs: TensorType) -> TensorType:
        t = _check_graph(self.true_branch, "cond: the true branch")
        f = _check_graph(self.false_branch, "cond: the false branch")
        if not inputs or inputs[0] != TensorType((), "bool"):
            shown = repr(inputs[0]) if inputs else "nothing"
            raise ShapeError(f"cond: the predicate must be a bool scalar, got {shown}")
        for name, g in (("true", t), ("false", f)):
            if g.input_types != inputs[1:]:
                raise ShapeError(f"cond: the {name} branch takes {_types(g.input_types)}, "
                                 f"the node gives {_types(inputs[1:])}")
        if t.output_types != f.output_types:
            raise ShapeError(f"cond: the true branch returns {_types(t.output_types)}, the "
                             f"false branch {_types(f.output_types)}")
        _check_index(self.index, len(t.outputs), "cond")
        return t.output_types[self.index]

    def label(self) -> str:
        return f"cond: out {self.index}"

    def __str__(self) -> str:
        return f"cond[output {self.index} of {self.output_count()}]"


@dataclass(frozen=True)
class WhileLoop(Control):
    """A loop run while a predicate sub-graph holds on the carries: lax.while_loop."""

    cond_graph: Graph
    body: Graph
    n_consts: int
    index: int = 0

    def graphs(self) -> tuple[Graph, ...]:
        return (self.cond_graph, self.body)

    def with_graphs(self, cond_graph: Graph, body: Graph) -> WhileLoop:  # type: ignore[override]
        return replace(self, cond_graph=cond_graph, body=body)

    def output_count(self) -> int:
        return len(self.body.outputs)

    def infer(self, *inputs: TensorType) -> TensorType:
        c = _check_graph(self.cond_graph, "while_loop: the predicate")
        b = _check_graph(self.body, "while_loop: the body")
        if not 0 <= self.n_consts <= len(inputs):
            raise ShapeError(f"while_loop: n_consts {self.n_consts} does not fit "
                             f"{len(inputs)} inputs")
        for name, g in (("predicate", c), ("body", b)):
            if g.input_types != inputs:
                raise ShapeError(f"while_loop: the {name} takes {_types(g.input_types)}, the "
                                 f"node gives {_types(inputs)}")
        if c.output_types != (TensorType((), "bool"),):
            raise ShapeError(f"while_loop: the predicate must return one bool scalar, it "
                             f"returns {_types(c.output_types)}")
        carries = inputs[self.n_consts:]
        if b.output_types != carries:
            raise ShapeError(f"while_loop: the body returns {_types(b.output_types)}, the "
                             f"carries are {_types(carries)}")
        _check_index(self.index, len(carries), "while_loop")
        return carries[self.index]

    def needed_carries(self) -> tuple[int, ...]:
        """The carries output `index` and the predicate need, transitively, ascending."""
        start = {self.index} | {k - self.n_consts for k in input_dependencies(self.cond_graph, 0)
                                if k >= self.n_consts}
        return tuple(sorted(_carry_closure(self.body, self.n_consts,
                                           len(self.body.outputs), start)))

    def label(self) -> str:
        return f"while_loop: carry {self.index}"

    def __str__(self) -> str:
        return f"while_loop[output {self.index} of {self.output_count()}]"


@dataclass(frozen=True)
class Remat(Control):
    """A sub-graph whose values the backward pass recomputes instead of keeping (checkpoint)."""

    body: Graph
    index: int = 0

    def graphs(self) -> tuple[Graph, ...]:
        return (self.body,)

    def with_graphs(self, body: Graph) -> Remat:  # type: ignore[override]
        return replace(self, body=body)

    def output_count(self) -> int:
        return len(self.body.outputs)

    def infer(self, *inputs: TensorType) -> TensorType:
        body = _check_graph(self.body, "checkpoint: the body")
        if body.input_types != inputs:
            raise ShapeError(f"checkpoint: the body takes {_types(body.input_types)}, the "
                             f"node gives {_types(inputs)}")
        _check_index(self.index, len(body.outputs), "checkpoint")
        return body.output_types[self.index]

    def label(self) -> str:
        return f"checkpoint: out {self.index}"

    def __str__(self) -> str:
        return f"remat[output {self.index} of {self.output_count()}]"
