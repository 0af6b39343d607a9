"""The fusion rules, one small function each, and `RULES`, the table the driver runs.

A row names its stage and the function that is the rule; the function's docstring is
the rule's documentation (`Rule.doc`). Stages:

- "start": `(fusion, root) -> Join | None`: may this node root a group, and how
  does it sit in it;
- "grow": `(fusion, group, node) -> Join | None`: how a producer of the group would
  join it; the first grow rule that answers decides (later rows are the general
  cases, earlier ones the special cases of the same node);
- "break": `(fusion, group, join) -> bool`: refuses a join of one of the kinds the
  row `judges`, or, judging "group", `(fusion, group) -> bool` drops a finished group.

Rules read what ops declare (`Op.fusion_role`, and for views `Op.view_kind`), never
op classes; the options a backend gives (`FuseOptions`) switch some of them on.
`without(names)` is the table minus some rows, which `fuse(..., disabled=...)` uses.

>>> [r.name for r in RULES if r.stage == "start"]
['elementwise root', 'reduction root', 'matmul with views', 'store transpose root']
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from pyasg.asg.types import TensorType
from pyasg.errors import PyasgError
from pyasg.transforms.fuse.state import Fusion, Group, Join, computed, leaf_read, matmul

STAGES = ("start", "grow", "break")


class UnknownRuleError(PyasgError):
    """`fuse` or `find_groups` was asked to disable a rule the table does not have."""


@dataclass(frozen=True)
class Rule:
    """One row of the fusion table: its stage, its name, the function that is the rule,
    and for a break rule the kinds of join it judges ("group": the finished group)."""

    stage: str
    name: str
    fn: Callable[..., Any]
    judges: tuple[str, ...] = ()

    @property
    def doc(self) -> str:
        """What the rule does: its function's docstring, on one line."""
        return " ".join(inspect.getdoc(self.fn).split())


def _views(f: Fusion) -> bool:
    """Does the backend read a matmul's operands through views and store it transposed?"""
    return f.options.matmul_epilogue and f.options.matmul_views


def _type(f: Fusion, i: int) -> TensorType:
    return f.nodes[i].type


# --------------------------------------------------------------------------- start


def elementwise_root(f: Fusion, root: int) -> Join | None:
    """An elementwise op (unary, binary, comparison, where, cast) not yet in a group is
    the root of a new one."""
    if f.role(root) == "elementwise":
        return computed(f, root, "elementwise root")
    return None


def reduction_root(f: Fusion, root: int) -> Join | None:
    """A reduction (sum, max) not yet in a group is the root of a new one; what it
    absorbs is its prologue, run at its input's coordinates."""
    if f.role(root) == "reduction":
        return computed(f, root, "reduction root", head=True, reduction=True)
    return None


def matmul_with_views(f: Fusion, root: int) -> Join | None:
    """(matmul_views: wgpu) A matmul not yet in a group that reads an operand through a
    chain of views that moves elements is the root of a group of it and those views."""
    if f.role(root) == "contraction" and _views(f) and any(
            chain for chain, _ in f.operand_views(root)):
        return matmul(f, root, "matmul with views", views=True)
    return None


def store_transpose_root(f: Fusion, root: int) -> Join | None:
    """(matmul_views: wgpu) A transpose not yet in a group that alone reads a matmul is
    the root of a group where that matmul writes its product transposed."""
    if _views(f) and f.stores(root):
        return computed(f, root, "store transpose root", stores=True)
    return None


# --------------------------------------------------------------------------- grow


def scalar_constant(f: Fusion, group: Group, j: int) -> Join | None:
    """A scalar constant is copied into every group that reads it: a literal in the
    code, never an input."""
    return Join(j, "scalar constant", "literal") if f.is_scalar_constant(j) else None


def shared_small_value(f: Fusion, group: Group, j: int) -> Join | None:
    """(recompute_fraction: wgpu) An elementwise value also read outside the group, no
    larger than recompute_fraction of the root (a softmax's or a norm's per-row values),
    is computed again inside it as a copy, and so may the values it reads be; the
    original stays for its other readers. A copy reads nothing computed inside an
    earlier group (the outer graph keeps what it reads)."""
    small = f.options.recompute_fraction * _type(f, group.root).size
    if (f.role(j) == "elementwise" and 0 < _type(f, j).size <= small
            and any(u not in group.members for u in f.users[j])
            and not any(f.inner(k) for k in f.nodes[j].inputs)):
        return computed(f, j, "shared small value", kind="copy")
    return None


def store_transpose(f: Fusion, group: Group, j: int) -> Join | None:
    """(matmul_views: wgpu) A transpose of the root's type that alone reads a matmul joins
    a group without a reduction or matmul as the matmul's store: the matmul may then
    head the group whatever its own type, writing each element at its transposed place."""
    if (_views(f) and not group.has_head and group.store is None and f.stores(j)
            and _type(f, j) == _type(f, group.root)):
        return computed(f, j, "store transpose", stores=True)
    return None


def transpose_leaf(f: Fusion, group: Group, j: int) -> Join | None:
    """A transpose joins as a leaf: its operand is a group input read with permuted
    strides (nothing is copied)."""
    return leaf_read(f, j, "transpose leaf") if f.view_kind(j) == "permute" else None


def broadcast(f: Fusion, group: Group, j: int) -> Join | None:
    """A broadcast (or an identity view, stop_gradient) joins like an elementwise op:
    inside a kernel it is index arithmetic, not a copy."""
    if f.view_kind(j) in ("broadcast", "identity"):
        return computed(f, j, "broadcast")
    return None


def elementwise_producer(f: Fusion, group: Group, j: int) -> Join | None:
    """An elementwise producer joins (in the prologue when only the prologue reads it)."""
    return computed(f, j, "elementwise producer") if f.role(j) == "elementwise" else None


def reduction_epilogue(f: Fusion, group: Group, j: int) -> Join | None:
    """(reduction_epilogue) A reduction joins an elementwise group of its output's shape
    (the group is its epilogue, no broadcast back); what it reads then joins as its
    prologue."""
    if (f.role(j) == "reduction" and f.options.reduction_epilogue
            and _type(f, j).shape == _type(f, group.root).shape):
        return computed(f, j, "reduction epilogue", head=True, reduction=True)
    return None


def _may_head(f: Fusion, group: Group, j: int) -> bool:
    """A matmul heads an elementwise group of its own type, or one that stores it."""
    stored = group.store is not None and f.users[j] == (group.store,)
    return f.role(j) == "contraction" and f.options.matmul_epilogue and (
        _type(f, j) == _type(f, group.root) or stored)


def matmul_operand_views(f: Fusion, group: Group, j: int) -> Join | None:
    """(matmul_views: wgpu) A matmul heading a group reads each operand through its chain
    of transposes, reshapes and broadcasts (not reshapes alone), copied into the group;
    the chain's source is the input."""
    if _may_head(f, group, j) and _views(f) and any(chain for chain, _ in
                                                    f.operand_views(j)):
        return matmul(f, j, "matmul operand views", views=True)
    return None


def matmul_head(f: Fusion, group: Group, j: int) -> Join | None:
    """(matmul_epilogue) A matmul joins as the head of an elementwise group of its own
    shape and dtype (its epilogue), or of the group of the transpose that stores it; its
    operands are inputs."""
    return matmul(f, j, "matmul head", views=False) if _may_head(f, group, j) else None


# --------------------------------------------------------------------------- break


def multi_use(f: Fusion, group: Group, join: Join) -> bool:
    """A producer also read outside the group (by another node, or by a copy in another
    group) stays outside: its value is needed anyway."""
    j = join.node
    return j in f.pinned or any(u not in group.members for u in f.users[j])


def leaf_operand(f: Fusion, group: Group, join: Join) -> bool:
    """An operand of a member that reads its operands from outside (a transpose leaf, a
    matmul) stays outside: it is read from a buffer."""
    return any(u in group.leaves for u in f.users[join.node])


def graph_output(f: Fusion, group: Group, join: Join) -> bool:
    """A graph output stays outside: it is materialised anyway (copying it saves no
    kernel either)."""
    return join.node in f.outputs


def input_cap(f: Fusion, group: Group, join: Join) -> bool:
    """A producer that would take the group past max_inputs values read from outside
    (one fewer with a reduction inside) stays outside (WGSL: 8 storage buffers with the
    output)."""
    return len(group.grown(join)) > group.input_cap(f, join)


def group_past_input_cap(f: Fusion, group: Group) -> bool:
    """A group that still reads more than max_inputs values (a matmul's operands, one
    fewer with a reduction inside) is not made."""
    return len(group.external) > group.input_cap(f)


def depth_cap(f: Fusion, group: Group, join: Join) -> bool:
    """A producer more than max_depth ops from the root (on its longest path) stays
    outside."""
    return group.depth_of(f, join.node) > f.options.max_depth


def one_head(f: Fusion, group: Group, join: Join) -> bool:
    """A group holds at most one reduction or matmul."""
    return join.head and group.has_head


def prologue_and_epilogue(f: Fusion, group: Group, join: Join) -> bool:
    """A value read both by a reduction's prologue and by its epilogue stays outside:
    they run at different coordinates."""
    in_prologue = group.in_prologue(f, join.node)
    return bool(group.prologue) and any(in_prologue) and not all(in_prologue)


def single_op(f: Fusion, group: Group) -> bool:
    """A group of one op (identity views and literals not counted) is left unfused:
    there is nothing to gain."""
    ops = [m for m in group.members if f.view_kind(m) != "identity"]
    return len(ops) + len(group.copies) < 2


# --------------------------------------------------------------------------- the table

MEMBERS, JOINS, GROUP = ("member",), ("member", "copy"), ("group",)

#: The fusion table, in the order the driver consults it. Horizontal fusion (many
#: same-shaped independent groups in one kernel) and patterns (fused attention) are
#: further rows: a start rule that seeds a whole pattern, or a pass over the groups.
RULES: tuple[Rule, ...] = (
    Rule("start", "elementwise root", elementwise_root),
    Rule("start", "reduction root", reduction_root),
    Rule("start", "matmul with views", matmul_with_views),
    Rule("start", "store transpose root", store_transpose_root),
    Rule("grow", "scalar constant", scalar_constant),
    Rule("grow", "shared small value", shared_small_value),
    Rule("grow", "store transpose", store_transpose),
    Rule("grow", "transpose leaf", transpose_leaf),
    Rule("grow", "broadcast", broadcast),
    Rule("grow", "elementwise producer", elementwise_producer),
    Rule("grow", "reduction epilogue", reduction_epilogue),
    Rule("grow", "matmul operand views", matmul_operand_views),
    Rule("grow", "matmul head", matmul_head),
    Rule("break", "multi-use", multi_use, MEMBERS),
    Rule("break", "leaf operand", leaf_operand, MEMBERS),
    Rule("break", "graph output", graph_output, JOINS),
    Rule("break", "input cap", input_cap, JOINS),
    Rule("break", "input cap", group_past_input_cap, GROUP),
    Rule("break", "depth cap", depth_cap, MEMBERS),
    Rule("break", "one head", one_head, MEMBERS),
    Rule("break", "prologue and epilogue", prologue_and_epilogue, JOINS),
    Rule("break", "single op", single_op, GROUP),
)


def without(disabled: Collection[str]) -> tuple[Rule, ...]:
    """`RULES` minus the rows named in `disabled` (every name must be a rule's).

    >>> len(RULES) - len(without({"input cap"}))
    2
    """
    if isinstance(disabled, str):
        raise UnknownRuleError(f"fuse: disabled must be a collection of rule names, got the "
                               f"string {disabled!r} (write {{{disabled!r}}})")
    names = {r.name for r in RULES}
    unknown = sorted(set(disabled) - names)
    if unknown:
        raise UnknownRuleError(f"fuse: no rule named {', '.join(map(repr, unknown))}; the "
                               f"rules are {', '.join(sorted(names))}")
    return tuple(r for r in RULES if r.name not in disabled)
