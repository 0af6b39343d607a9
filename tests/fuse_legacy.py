"""The grouping `pyasg.transforms.fuse` made before its rules became a table (a verbatim
copy of its `_find_groups`): the oracle `test_fuse_differential.py` compares against.

It pins today's groups while the rules are refactored; a change that means to group
differently (a new rule, horizontal fusion) deletes this file and that test."""

from __future__ import annotations

import heapq
import math

from pyasg.asg import ops
from pyasg.asg.graph import Graph
from pyasg.compile.protocol import FuseOptions

ELEMENTWISE = (ops.Unary, ops.Binary, ops.Where, ops.Cast)
REDUCTIONS = (ops.Sum, ops.Max)
#: Ops that only move elements: a matmul can read its operand through a chain of them.
VIEWS = (ops.Transpose, ops.Reshape, ops.BroadcastTo, ops.StopGradient)


def _is_scalar_constant(op: ops.Op) -> bool:
    return isinstance(op, ops.Constant) and math.prod(op.shape) == 1


def _joins(op: ops.Op) -> bool:
    """Ops that join a group like elementwise ones (identity and broadcast included)."""
    return isinstance(op, ELEMENTWISE + (ops.BroadcastTo, ops.StopGradient))


def _operand_views(graph: Graph, mm: int, users: dict,
                   outputs: set[int]) -> list[tuple[list[int], int]]:
    """Per operand of matmul `mm`: the view chain it reads through and the value at its
    end. A chain of reshapes alone is left out (a reshape costs nothing on its own), and
    so is one that starts at a constant (a literal has no buffer to read). A chain ends
    at a transpose that stores a matmul's product (`_stores`): that product is written
    transposed, so reading it is cheaper than reading through it."""
    found = []
    for x in graph.nodes[mm].inputs:
        chain = []
        end = x
        while isinstance(graph.nodes[end].op, VIEWS) and not _stores(graph, end, users,
                                                                     outputs):
            chain.append(end)
            end = graph.nodes[end].inputs[0]
        moves = any(isinstance(graph.nodes[c].op, (ops.Transpose, ops.BroadcastTo))
                    for c in chain)
        if not moves or isinstance(graph.nodes[end].op, ops.Constant):
            chain, end = [], x
        found.append((chain, end))
    return found


def _stores(graph: Graph, t: int, users: dict, outputs: set[int]) -> bool:
    """Is `t` a transpose that can store the product of the matmul it alone reads (the
    matmul then heads `t`'s group, writing each element at its transposed place)?"""
    if not isinstance(graph.nodes[t].op, ops.Transpose):
        return False
    mm = graph.nodes[t].inputs[0]
    return (isinstance(graph.nodes[mm].op, ops.MatMul) and users[mm] == (t,)
            and mm not in outputs)


def _store_transpose(graph: Graph, t: int, root: int, users: dict, taken: set[int],
                     outputs: set[int]) -> bool:
    """`_stores`, with `t` of the root's type and its matmul still free."""
    return (_stores(graph, t, users, outputs) and graph.nodes[t].type ==
            graph.nodes[root].type and graph.nodes[t].inputs[0] not in taken)


def find_groups(graph: Graph, options: FuseOptions) -> list[list[int]]:
    """The groups `fuse` would make: each a sorted list of node ids, its root last.

    Scalar constants a group reads are listed in it too (they may be in several), and
    so are the views a matmul reads its operands through.
    """
    return _find_groups(graph, options)[0]


def _find_groups(graph: Graph, options: FuseOptions) -> tuple[list[list[int]], set[int]]:
    """The groups, and the view nodes copied into them (they stay outside too)."""
    live = graph.live_ids
    alive = set(live)
    users = {i: tuple(u for u in graph.users[i] if u in alive) for i in live}
    outputs = set(graph.outputs)
    taken: set[int] = set()
    roots: set[int] = set()  # the values fused nodes still produce
    pinned: set[int] = set()  # read by a copy in some group: must stay outside groups
    groups: list[list[int]] = []
    all_copies: set[int] = set()
    for root in reversed(live):
        op = graph.nodes[root].op
        if root in taken:
            continue
        views = options.matmul_epilogue and options.matmul_views
        lone_mm = views and isinstance(op, ops.MatMul) and any(
            chain for chain, _ in _operand_views(graph, root, users, outputs))
        t_root = views and isinstance(op, ops.Transpose) and _store_transpose(
            graph, root, root, users, taken, outputs)
        if not (isinstance(op, ELEMENTWISE + REDUCTIONS) or lone_mm or t_root):
            continue
        if lone_mm:  # a matmul reading through views heads a group of its own
            copies = {c for chain, _ in _operand_views(graph, root, users, outputs) for c in chain}
            ends = {end for _, end in _operand_views(graph, root, users, outputs)}
            if len(ends) <= options.max_inputs:
                taken.add(root)
                all_copies |= copies
                groups.append(sorted(copies | {root}))
            continue
        members = {root}
        consts: set[int] = set()
        copies = set()
        store_t = root if t_root else None  # the transpose a matmul head stores through
        depth = {root: 1}
        has_head = isinstance(op, REDUCTIONS)  # one reduction or matmul per group
        # with a reduction inside: its prologue (what it reads) runs at its input's
        # coordinates, the rest (the epilogue) at the output's; no value may be both
        prologue: set[int] = {root} if has_head else set()
        external = {j for j in graph.nodes[root].inputs
                    if not _is_scalar_constant(graph.nodes[j].op)}
        heap = [-j for j in set(graph.nodes[root].inputs)]
        heapq.heapify(heap)
        seen: set[int] = set()
        reads_outside: set[int] = set()  # members whose operands must be group inputs
        copy_only: set[int] = set()  # read by a recomputed copy: may only be copied too
        small = options.recompute_fraction * graph.nodes[root].type.size
        while heap:  # largest id first: every in-group reader of j is decided before j
            j = -heapq.heappop(heap)
            if j in seen:
                continue
            seen.add(j)
            node = graph.nodes[j]
            if _is_scalar_constant(node.op):
                consts.add(j)
                external.discard(j)
                continue
            if j in outputs:
                continue
            if j not in copies and (j in copy_only or any(
                    u not in members and u not in copies for u in users[j])) \
                    and isinstance(node.op, ELEMENTWISE) and 0 < node.type.size <= small:
                grown = (external - {j}) | {k for k in node.inputs
                                            if not _is_scalar_constant(graph.nodes[k].op)}
                cap = options.max_inputs - (1 if prologue else 0)
                readers = [u for u in users[j] if u in members or u in copies]
                # what a copy reads from outside must stay a value of the outer graph
                reads_inner = any(k in taken and k not in roots for k in node.inputs)
                if readers and not reads_inner and len(grown) <= max(cap, 1) and not (
                        prologue and any(u in prologue for u in readers)
                        and not all(u in prologue for u in readers)):
                    copies.add(j)  # computed again here; the original stays for the others
                    external = grown
                    for k in set(node.inputs):
                        copy_only.add(k)
                        heapq.heappush(heap, -k)
                continue
            if j in taken or j in copy_only or j in pinned:
                continue
            is_mm = isinstance(node.op, ops.MatMul)
            is_red = isinstance(node.op, REDUCTIONS)
            is_leaf = isinstance(node.op, ops.Transpose)  # read from outside, permuted
            if not (_joins(node.op) or is_mm or is_red or is_leaf):
                continue
            if (is_mm or is_red) and has_head:
                continue
            stored = store_t is not None and users[j] == (store_t,)
            if is_mm and (not options.matmul_epilogue
                          or (node.type != graph.nodes[root].type and not stored)):
                continue
            if (is_leaf and views and not has_head and not prologue and store_t is None
                    and _store_transpose(graph, j, root, users, taken, outputs)
                    and all(u in members and u not in reads_outside for u in users[j])):
                is_leaf = False  # it stores the matmul it reads: that matmul may head
                store_t = j
            if is_red and (not options.reduction_epilogue
                           or node.type.shape != graph.nodes[root].type.shape):
                continue  # an epilogue is elementwise over the reduced shape, no broadcast
            if any(u not in members or u in reads_outside for u in users[j]):
                continue  # used outside, or by a transpose leaf / matmul head
            in_prologue = [u in prologue for u in users[j]]
            if prologue and any(in_prologue) and not all(in_prologue):
                continue  # read by the prologue and by the epilogue
            d = 1 + max(depth[u] for u in users[j])
            if d > options.max_depth:
                continue
            reads = node.inputs
            if is_mm and views:
                mm_views = _operand_views(graph, j, users, outputs)
                reads = tuple(end for _, end in mm_views)
            grown = (external - {j}) | {k for k in reads if is_leaf or is_mm
                                        or not _is_scalar_constant(graph.nodes[k].op)}
            # with a reduction, a split's second pass binds its scratch and the
            # epilogue's inputs together: one binding fewer for inputs
            cap = options.max_inputs - (1 if prologue or is_red else 0)
            if len(grown) > max(cap, 1):
                continue
            members.add(j)
            depth[j] = d
            external = grown
            if is_mm and views:
                copies |= {c for chain, _ in mm_views for c in chain}
            if j == store_t:
                heapq.heappush(heap, -node.inputs[0])
                continue
            if is_mm or is_leaf:
                reads_outside.add(j)
                has_head = has_head or is_mm
                if prologue and all(in_prologue):
                    prologue.add(j)
                continue  # a matmul heads the group, a transpose is a leaf: operands are inputs
            if is_red:
                has_head = True
                prologue.add(j)
            elif prologue and all(in_prologue):
                prologue.add(j)
            for k in set(node.inputs):
                heapq.heappush(heap, -k)
        real = [m for m in members if not isinstance(graph.nodes[m].op, ops.StopGradient)]
        if len(real) + len(copies) < 2:
            continue
        taken |= members
        roots.add(root)
        all_copies |= copies
        # values the copies read from outside: no later group may make them inner
        pinned |= {k for c in copies for k in graph.nodes[c].inputs
                   if k not in copies and k not in members}
        groups.append(sorted(members | consts | copies))
    groups.sort(key=lambda g: g[-1])
    return groups, all_copies
