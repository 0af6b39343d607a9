"""fuse: chains of elementwise ops, with a reduction or matmul they feed, become one `Fused` node.

Fusion runs after `grad` and `simplify`, just before lowering (`jit_to_backend`).
A group is grown backwards from its ROOT (its last op) through the producers it
reads, following the rules in `RULES` below; the group becomes one `Fused` node
whose attribute is the group's sub-graph, whose inputs are the values the group
reads from outside (in id order) and whose value is the root's. On numpy a fused
node runs as generated Python writing into buffers planned once; on wgpu as ONE
generated WGSL kernel.

The rules (`RULES`, the table the tests check row by row):

- start: an elementwise op (unary, binary, comparison, where, cast) or a
  reduction (sum, max) not yet in a group is the root of a new group;
- grow: a producer joins when it is elementwise or a `broadcast_to`; a
  reduction joins an elementwise group of its output's shape (its epilogue),
  and what it reads then joins as its prologue; where the backend can use it
  (`FuseOptions.matmul_epilogue`), a matmul heads an elementwise group of its
  own type; a transpose joins as a leaf (its operand is read from outside
  with permuted strides); scalar constants are copied in freely;
- recompute: where the backend asks for it (`FuseOptions.recompute_fraction`,
  wgpu), an elementwise value also read outside the group but small next to the
  root (a softmax's or a norm's per-row values) is computed again inside the group
  as a copy, with the small elementwise values it reads; what such a copy reads
  from outside stays a value of the outer graph (pinned);
- break: a producer stays outside when another op outside the group reads it
  (multi-use), when it is a graph output, when it would take the group past
  `max_inputs` external inputs or `max_depth` ops on one path, when it is a
  second reduction or matmul, or when both a reduction's prologue and its
  epilogue read it;
- a group of one op is left as it is (nothing to gain).

>>> import pyasg, numpy as np
>>> g = pyasg.make_graph(lambda x: pyasg.exp(x * 2.0 + 1.0))(np.ones(3, np.float32))
>>> [g2.nodes[i].op.name for g2 in [fuse(g)] for i in g2.live_ids]
['input', 'fused']
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

from pyasg.asg import ops
from pyasg.asg.graph import Graph, GraphBuilder, prune
from pyasg.asg.ops import Fused
from pyasg.compile.protocol import FuseOptions

#: The options `fuse` uses when none are given.
DEFAULT_OPTIONS = FuseOptions()


@dataclass(frozen=True)
class Rule:
    """One row of the fusion table: when (`stage`), for what (`what`), and the rule."""

    stage: str  # "start", "grow" or "break"
    what: str
    rule: str


RULES: tuple[Rule, ...] = (
    Rule("start", "elementwise op", "a unary, binary, comparison, where or cast op not yet "
                                    "in a group is the root of a new group"),
    Rule("start", "reduction", "a sum or max not yet in a group is the root of a new group; "
                               "what it absorbs is its prologue"),
    Rule("grow", "reduction", "a sum or max joins an elementwise group of its output's "
                              "shape (the group is its epilogue); its producers then join "
                              "as its prologue"),
    Rule("grow", "elementwise producer", "joins when every op that reads it is in the group"),
    Rule("grow", "broadcast_to", "joins like an elementwise op: inside a kernel it is index "
                                 "arithmetic, not a copy"),
    Rule("grow", "transpose", "joins as a leaf: its operand is a group input read with "
                              "permuted strides (nothing is copied)"),
    Rule("grow", "scalar constant", "is copied into every group that reads it (a literal); it "
                                    "never counts as an input"),
    Rule("grow", "matmul", "joins as the head of an elementwise group of its own shape and "
                           "dtype when the backend absorbs matmul epilogues (numpy: yes)"),
    Rule("grow", "matmul operand view", "a chain of transposes, reshapes and broadcasts "
                                        "(not reshapes alone) a matmul reads is copied into "
                                        "its group; the chain's source is the input "
                                        "(matmul_views: wgpu)"),
    Rule("grow", "store transpose", "a transpose that alone reads a matmul, of the root's "
                                    "type, joins as the matmul's store: the matmul then "
                                    "heads the group (matmul_views: wgpu)"),
    Rule("start", "matmul with views", "a matmul reading through a view chain, or a "
                                       "transpose storing a matmul, not yet in a group is "
                                       "the root of a new group (matmul_views: wgpu)"),
    Rule("grow", "small shared value", "an elementwise value also read outside the group, "
                                       "no larger than recompute_fraction of the root, is "
                                       "computed again inside it (a copy), as are the small "
                                       "elementwise values it reads; the rest it reads are "
                                       "inputs (wgpu: a softmax's or a norm's per-row values)"),
    Rule("break", "multi-use producer", "a producer also read outside the group stays outside "
                                        "(its value is needed anyway)"),
    Rule("break", "graph output", "a graph output stays outside (it must be materialised)"),
    Rule("break", "input cap", "a producer that would take the group past max_inputs external "
                               "inputs (one fewer with a reduction inside) stays outside "
                               "(WGSL: 8 storage buffers with the output)"),
    Rule("break", "depth cap", "a producer more than max_depth ops from the root stays outside"),
    Rule("break", "one reduction or matmul", "a group holds at most one reduction or "
                                             "matmul"),
    Rule("break", "prologue and epilogue", "a value read both by a reduction's prologue and "
                                           "by its epilogue stays outside"),
    Rule("break", "single op", "a group of one op is left unfused"),
)


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


def find_groups(graph: Graph, options: FuseOptions = DEFAULT_OPTIONS) -> list[list[int]]:
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


def _subgraph(graph: Graph, group: list[int]) -> tuple[Graph, list[int]]:
    """The group as a graph of its own, and the outer ids of its inputs in order."""
    inside = set(group)
    external = sorted({j for i in group for j in graph.nodes[i].inputs if j not in inside})
    b = GraphBuilder()
    env = {j: b.add_input(f"in{k}", graph.nodes[j].type) for k, j in enumerate(external)}
    for i in group:
        node = graph.nodes[i]
        env[i] = b.add(node.op, [env[j] for j in node.inputs], node.name, node.source)
    return b.build([env[group[-1]]]), external


def fuse(graph: Graph, options: FuseOptions = DEFAULT_OPTIONS) -> Graph:
    """Replace every group of `find_groups` by one `Fused` node (see the module docstring).

    >>> import pyasg, numpy as np
    >>> g = pyasg.make_graph(lambda x: (x * x).sum())(np.ones(3, np.float32))
    >>> print(fuse(g).nodes[fuse(g).outputs[0]].op)
    fused[mul, sum]
    """
    groups, copies = _find_groups(graph, options)
    if not groups:
        return graph
    root_of = {g[-1]: g for g in groups}
    inner = {i for g in groups for i in g[:-1]
             if not isinstance(graph.nodes[i].op, ops.Constant) and i not in copies}
    b = GraphBuilder()
    env = {i: b.add_input(graph.nodes[i].op.path, graph.nodes[i].type, graph.nodes[i].source)
           for i in graph.inputs}
    for i in graph.live_ids:
        if i in env or i in inner:
            continue
        node = graph.nodes[i]
        if i in root_of:
            sub, external = _subgraph(graph, root_of[i])
            env[i] = b.add(Fused(sub), [env[j] for j in external], node.name, node.source)
        else:
            env[i] = b.add(node.op, [env[j] for j in node.inputs], node.name, node.source)
    return prune(b.build([env[i] for i in graph.outputs]))


def unfuse(graph: Graph) -> Graph:
    """Inline every `Fused` node's sub-graph again (the inverse of `fuse`).

    >>> import pyasg, numpy as np
    >>> g = pyasg.make_graph(lambda x: pyasg.exp(x) * 2.0)(np.ones(3, np.float32))
    >>> unfuse(fuse(g)) == g
    True
    """
    b = GraphBuilder()
    env = {i: b.add_input(graph.nodes[i].op.path, graph.nodes[i].type, graph.nodes[i].source)
           for i in graph.inputs}
    for i in graph.live_ids:
        if i in env:
            continue
        node = graph.nodes[i]
        if isinstance(node.op, Fused):
            sub = node.op.graph
            local = {s: env[j] for s, j in zip(sub.inputs, node.inputs)}
            for s in sub.live_ids:
                if s not in local:
                    n = sub.nodes[s]
                    local[s] = b.add(n.op, [local[k] for k in n.inputs], n.name, n.source)
            env[i] = local[sub.outputs[0]]
        else:
            env[i] = b.add(node.op, [env[j] for j in node.inputs], node.name, node.source)
    return prune(b.build([env[i] for i in graph.outputs]))
