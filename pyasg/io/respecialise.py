"""Re-specialising a loaded graph to new input sizes: shape attributes follow, or it refuses.

A traced graph holds plain numbers where the code asked for sizes:
`x.reshape(x.shape[0], -1)` traced at batch 2 is `reshape[shape=(2, -1)]`, and
re-inferring shapes alone for batch 5 silently gives a `[2, 30]` reshape. So
`respecialise(graph, input_types)` re-derives every attribute that fixes a shape
from the sizes of the axes that changed, by one rule per op (`RULES`):

- `Reshape`: the saved reshape groups input axes into output axes (axes whose sizes
  multiply to the same product: `[2, 3, 4] -> [2, 12]` is `{0}->{0}, {1,2}->{1}`).
  A group whose input sizes changed gets the new product on its single output axis
  (`[5, 12]`), or keeps its `-1` to absorb it. A changed axis split over several
  output axes with no `-1` among them (`[6, 4] -> [2, 3, 4]`) is ambiguous: refused.
- `BroadcastTo`: an output axis that is its input's axis (same size) follows the
  input; an axis the op creates or stretches keeps its size.
- `Slice`: a whole changed axis (`x[:]`, `x[::2]`, `x[::-1]`) follows it; any other
  bounds on a changed axis (`x[1:]` could be "from 1" or "all but the last") are
  refused.
- `RandomBits.shape`, `ScatterAdd.size`, `Conv2dBackwardInput.input_size`, and the
  axes `BroadcastTo` creates or stretches, have no input to follow: they are refused
  when they hold the saved size of an input axis that changed (`random_bits[shape=(2,
  3)]` saved at batch 2: one random row per example, or two rows by design? The file
  cannot say), and kept otherwise.
- `Fused`: its sub-graph is re-specialised by the same rules.

Sizes hide in values too (`x.mean(0)` at batch 2 divides by a constant 2.0): a
survey of every node (dead ones too) first collects every number that may be a size
which changed, and a constant that may hold one is refused (`pyasg.io.stale`).

Every other op's attributes (axes, permutations, strides, paddings, pad widths)
do not depend on sizes, and its type is re-derived by its shape rule. A refusal is
a `ShapeError` naming the node, its op and its source line. Only sizes may change:
an input with a different number of axes is refused.

The convention this encodes: an attribute that repeats a changed input size is the
input's size (a reshape keeping the batch axis follows the batch). Code that means
the number itself where it coincides with a changed size (`x.reshape(2, -1)` to
halve a batch that happens to be 2) is re-derived as the size, so save graphs traced
at a size no other number in the model shares (an odd batch, say 3 or 7).

>>> import pyasg, numpy as np
>>> g = pyasg.make_graph(lambda x: x.reshape(x.shape[0], -1).sum(-1))(np.ones((2, 3, 4)))
>>> h = respecialise(g, [TensorType((5, 3, 4), "float64")])
>>> h.output_types, pyasg.jit_to_backend(h)(np.ones((5, 3, 4)))[0].tolist()
((f64[5],), [12.0, 12.0, 12.0, 12.0, 12.0])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pyasg.asg.graph import Graph, Node
from pyasg.asg.ops import (
    BroadcastTo,
    Fused,
    Op,
    RandomBits,
    Reshape,
    ScatterAdd,
    Slice,
    Sum,
)
from pyasg.asg.ops.conv import Conv2dBackwardInput
from pyasg.asg.rewrite import Rebuild, rebuild
from pyasg.asg.serialize import tensor_limit_problem
from pyasg.asg.types import TensorType
from pyasg.errors import PyasgError, ShapeError, shown
from pyasg.io.stale import ADVICE, Stale, check_constants
from pyasg.transforms.shapes import infer_shapes


@dataclass(frozen=True)
class Change:
    """What a rule knows: the node (its id and its op's text), its input types as saved
    and as now, its saved output type, and what is `stale`."""

    node: str
    old_inputs: tuple[TensorType, ...]
    new_inputs: tuple[TensorType, ...]
    old_output: TensorType
    stale: Stale


class Refused(Exception):
    """A rule's refusal: the reason, made a `ShapeError` naming the node by the walker."""


def _changed_axes(change: Change, k: int = 0) -> list[int]:
    old, new = change.old_inputs[k].shape, change.new_inputs[k].shape
    return [a for a, (d, e) in enumerate(zip(old, new)) if d != e]


def _check_not_stale(values: Sequence[int], what: str, change: Change) -> None:
    for v in values:
        if v in change.stale.sizes:
            raise Refused(f"{what} holds {v}, the saved size of {change.stale.sizes[v]}; "
                          f"{ADVICE}")


# --------------------------------------------------------------------------- reshape


def reshape_groups(old: tuple[int, ...], new: tuple[int, ...],
                   ) -> list[tuple[list[int], list[int]]] | None:
    """The axes of `old` and of `new` grouped by equal products, in order (a reshape moves
    elements only within such groups); None when a zero-length axis makes it ambiguous.

    >>> reshape_groups((2, 3, 4), (2, 12))
    [([0], [0]), ([1, 2], [1])]
    """
    if 0 in old or 0 in new or math.prod(old) != math.prod(new):
        return None
    groups, i, j = [], 0, 0
    while i < len(old) or j < len(new):
        ins, outs, p, q = [], [], 1, 1
        if i < len(old):
            ins, p, i = [i], old[i], i + 1
        if j < len(new):
            outs, q, j = [j], new[j], j + 1
        while p != q:  # grow the smaller side until the products meet
            if p < q and i < len(old):
                ins.append(i)
                p, i = p * old[i], i + 1
            elif q < p and j < len(new):
                outs.append(j)
                q, j = q * new[j], j + 1
            else:
                return None
        groups.append((ins, outs))
    return groups


def _reshape(op: Reshape, change: Change) -> Op:
    old_in, new_in = change.old_inputs[0].shape, change.new_inputs[0].shape
    groups = reshape_groups(old_in, change.old_output.shape)
    if groups is None:
        raise Refused(f"a zero-length axis makes the saved reshape {list(old_in)} -> "
                      f"{list(change.old_output.shape)} ambiguous")
    target = list(op.shape)
    for ins, outs in groups:
        if all(old_in[a] == new_in[a] for a in ins):
            continue
        if any(op.shape[b] == -1 for b in outs):
            continue  # its -1 absorbs the change (the shape rule checks that it divides)
        if len(outs) != 1:
            sizes = [old_in[a] for a in ins]
            raise Refused(f"the saved reshape splits {sizes} (input axes {ins}, now "
                          f"{[new_in[a] for a in ins]}) into {[op.shape[b] for b in outs]}: "
                          f"which part follows the new size is ambiguous (write a -1 "
                          f"there, e.g. reshape(-1, …))")
        target[outs[0]] = math.prod(new_in[a] for a in ins)
    return Reshape(tuple(target))


# --------------------------------------------------------------------------- broadcast_to


def _broadcast_to(op: BroadcastTo, change: Change) -> Op:
    old_in, new_in = change.old_inputs[0].shape, change.new_inputs[0].shape
    lead = len(op.shape) - len(old_in)
    target, made = list(op.shape), []
    for j, size in enumerate(op.shape):
        k = j - lead
        if k >= 0 and old_in[k] == size:
            target[j] = new_in[k]  # the input's own axis: it follows the input
        else:
            made.append(size)  # created or stretched here: nothing to follow
    _check_not_stale(made, f"the broadcast shape {list(op.shape)}", change)
    return BroadcastTo(tuple(target))


# --------------------------------------------------------------------------- slice


def _slice(op: Slice, change: Change) -> Op:
    old_in, new_in = change.old_inputs[0].shape, change.new_inputs[0].shape
    starts, stops = list(op.starts), list(op.stops)
    for a in _changed_axes(change):
        d, e, bounds = old_in[a], new_in[a], (op.starts[a], op.stops[a], op.steps[a])
        if op.steps[a] > 0 and bounds[:2] == (0, d):
            stops[a] = e
        elif op.steps[a] < 0 and bounds[:2] == (d - 1, -1):
            starts[a] = e - 1
        else:
            raise Refused(f"slice bounds {bounds} on axis {a}, whose size changed from {d} "
                          f"to {e}: they may count from the start or from the end")
    return Slice(tuple(starts), tuple(stops), op.steps)


# --------------------------------------------------------------------------- the table


def _fixed(attribute: str) -> Callable[[Op, Change], Op]:
    """The rule of an attribute with no input to follow: kept, unless it is stale."""

    def rule(op: Op, change: Change) -> Op:
        value = getattr(op, attribute)
        values = value if isinstance(value, tuple) else (value,)
        _check_not_stale(values, f"{attribute} {shown(value)}", change)
        return op

    return rule


#: One rule per op whose attributes fix sizes: (op, what changed) -> the op to use.
RULES: dict[type[Op], Callable[[Any, Change], Op]] = {
    Reshape: _reshape,
    BroadcastTo: _broadcast_to,
    Slice: _slice,
    RandomBits: _fixed("shape"),
    ScatterAdd: _fixed("size"),
    Conv2dBackwardInput: _fixed("input_size"),
}


def _sum(op: Sum, change: Change) -> Op:
    old, new = change.old_inputs[0].shape, change.new_inputs[0].shape
    if any(old[a] != new[a] for a in op.axes):  # a count of 1 too (see pyasg.io.stale)
        change.stale.add_count(math.prod(old[a] for a in op.axes),
                               f"the count of elements {change.node} adds up")
    return op


def _fused(op: Fused, change: Change) -> Op:
    return Fused(_walk(op.graph, change.new_inputs, change.stale))


RULES[Sum] = _sum
RULES[Fused] = _fused


# --------------------------------------------------------------------------- the walk


def _survey(graph: Graph, types: Sequence[TensorType], stale: Stale,
            ) -> dict[int, TensorType]:
    """Every node's new type where the rules give one, dead nodes and fused sub-graphs
    included, recording into `stale` the counts that constants may hold (a gradient graph
    divides by the count of a loss it does not output). A node the rules refuse is only
    skipped here: the walk refuses it if an output needs it."""
    new = dict(zip(graph.inputs, types))
    for i in graph.ids:
        node = graph.nodes[i]
        ins = tuple(new.get(j) for j in node.inputs)
        if i in new or None in ins:
            continue
        if isinstance(node.op, Fused):
            sub = _survey(node.op.graph, ins, stale)
            out = sub.get(node.op.graph.outputs[0])
        else:
            rule = RULES.get(type(node.op))
            try:
                op = node.op
                if rule is not None:
                    old = tuple(graph.nodes[j].type for j in node.inputs)
                    op = rule(op, Change(f"node %{i} ({node.op})", old, ins, node.type, stale))
                out = op.infer(*ins)
            except (Refused, PyasgError):
                out = None
        if out is not None:
            new[i] = out
            changed = [a for a, (d, e) in enumerate(zip(node.type.shape, out.shape)) if d != e]
            stale.add_products(node.type.shape, changed, f"node %{i} ({node.type!r})")
    return new


def _walk(graph: Graph, types: Sequence[TensorType], stale: Stale) -> Graph:
    def per_node(ctx: Rebuild, i: int, node: Node, inputs: tuple[int, ...]) -> int:
        rule = RULES.get(type(node.op))
        try:
            op = node.op
            if rule is not None:
                change = Change(f"node %{i} ({node.op})",
                                tuple(ctx.graph.nodes[j].type for j in node.inputs),
                                tuple(ctx.builder.type_of(j) for j in inputs), node.type, stale)
                op = rule(node.op, change)
            new = ctx.add(op, inputs, node)
        except (Refused, ShapeError) as e:
            reason = e.message if isinstance(e, ShapeError) else str(e)
            raise ShapeError(f"node %{i} ({node.op}) cannot be re-specialised: {reason}",
                             source=node.source) from None
        problem = tensor_limit_problem(ctx.builder.type_of(new))
        if problem is not None:
            raise ShapeError(f"node %{i} ({node.op}) would make {problem}", source=node.source)
        return new

    return rebuild(graph, per_node, input_types=types)


def respecialise(graph: Graph, input_types: Sequence[TensorType]) -> Graph:
    """`graph` for inputs of `input_types` (same number of axes, other sizes), with every
    size-fixing attribute re-derived by `RULES`; `ShapeError` naming the node where that
    is impossible or ambiguous. Equal types give `infer_shapes(graph)`.

    >>> import pyasg, numpy as np
    >>> g = pyasg.make_graph(lambda x: x[:, 1:])(np.ones((2, 3)))
    >>> respecialise(g, [TensorType((5, 3), "float64")]).output_types
    (f64[5,2],)
    >>> respecialise(g, [TensorType((5, 4), "float64")])
    Traceback (most recent call last):
    pyasg.errors.ShapeError: node %1 (slice[...]) cannot be re-specialised: slice bounds (1, 3, 1)
    on axis 1, whose size changed from 3 to 4: ...
    ...
    """
    types = tuple(input_types)
    if len(types) != len(graph.inputs) or not all(isinstance(t, TensorType) for t in types):
        raise ShapeError(f"the graph has {len(graph.inputs)} inputs; input_types must be as "
                         f"many TensorTypes, got {shown(input_types)}")
    if types == graph.input_types:
        return infer_shapes(graph)
    sizes: dict[int, str] = {}
    for i, new in zip(graph.inputs, types):
        old, path = graph.nodes[i].type, graph.nodes[i].op.path
        if old.ndim != new.ndim:
            raise ShapeError(f"input {shown(path)} is {old!r} in the graph and {new!r} in "
                             f"input_types: only sizes may change, not the number of axes")
        for a, (d, e) in enumerate(zip(old.shape, new.shape)):
            if d != e:
                sizes.setdefault(d, f"input {shown(path)}'s axis {a} (now {e})")
    stale = Stale(sizes)
    _survey(graph, types, stale)  # first: a constant may come before its count
    check_constants(graph, stale)
    return _walk(graph, types, stale)
