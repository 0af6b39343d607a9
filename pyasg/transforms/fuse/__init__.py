"""fuse: chains of elementwise ops, with a reduction or matmul they feed, become one `Fused` node.

Fusion runs after `grad` and `simplify`, just before lowering (`jit_to_backend`).
A group is grown backwards from its ROOT (its last op) through the producers it
reads; it becomes one `Fused` node whose attribute is the group's sub-graph, whose
inputs are the values the group reads from outside (in id order) and whose value is
the root's. On numpy a fused node runs as generated Python writing into buffers
planned once; on wgpu as ONE generated WGSL kernel.

What may join a group is a table of named rules (`RULES`, in `rules.py`; each rule's
docstring is its documentation): start rules say which nodes root a group, grow
rules how a producer joins one, break rules what a join or a group must not do. The
driver (`find_groups`, in `driver.py`) only runs the table, and `fuse(graph, options,
disabled={"multi-use"})` runs it with rules switched off (a name not in the table is
an `UnknownRuleError`). The modules: `state` (what the rules read and change),
`rules`, `driver`, `apply` (the groups become fused nodes and back, `unfuse`).

What comes next goes in as rows or passes: a fused-attention pattern is a start rule
whose seed is the whole pattern; horizontal fusion (an optimiser's many same-shaped
updates, many bias-gradient column sums, in one kernel over many tensors) is a pass
over `find_groups`' result, before `apply` makes the fused nodes.

>>> import pyasg, numpy as np
>>> g = pyasg.make_graph(lambda x: pyasg.exp(x * 2.0 + 1.0))(np.ones(3, np.float32))
>>> [g2.nodes[i].op.name for g2 in [fuse(g)] for i in g2.live_ids]
['input', 'fused']
>>> print(RULES[0].name, "-", RULES[0].doc)  # doctest: +ELLIPSIS
elementwise root - An elementwise op (unary, binary, comparison, where, cast) not yet in ...
"""

from pyasg.compile.protocol import FuseOptions
from pyasg.transforms.fuse.apply import fuse, unfuse
from pyasg.transforms.fuse.driver import DEFAULT_OPTIONS, find_groups
from pyasg.transforms.fuse.rules import RULES, Rule, UnknownRuleError, without

__all__ = ["DEFAULT_OPTIONS", "RULES", "FuseOptions", "Rule", "UnknownRuleError", "find_groups",
           "fuse", "unfuse", "without"]
