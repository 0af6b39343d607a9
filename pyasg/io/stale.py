"""Numbers in a re-specialised graph that may be sizes which changed, and the constants
that hold them.

Tracing turns every size the code used as a number into a constant: `x.mean(0)` at
batch 2 is `sum(x, 0) / 2.0`, and loaded for batch 5 it silently divides by 2. No
attribute says so, so `pyasg.io.respecialise` collects every number that could be
such a size before it walks (`Stale`), and `check_constants` refuses a scalar
constant equal to one of them (or to its reciprocal: `x / n` may be `x * (1/n)`), and
a constant array whose shape holds a changed input size (a mask of the old length).

The numbers, each remembered with what it was:

- `sizes`: the saved size of every input axis that changed;
- `counts`: the element counts a mean over a changed axis may divide by — the count
  of every `Sum` over a changed axis (dead ones too: a gradient graph divides by the
  count of a loss it does not output), and, for every node whose axes changed, the
  product of the saved sizes of each set of its axes that holds a changed one (of
  every set for up to `ALL_SUBSETS_UP_TO` axes, of contiguous runs beyond), which
  catches a count whose sum is gone.

A match may be a coincidence (`x * 2.0` at batch 2): the refusal says which size
it matched and how to avoid it. The gaps are deliberate, and all about a saved size
of 1, since models are often saved at batch 1 and 1.0 is in nearly every graph: a
scalar constant equal to a changed size of 1 is kept (so `x * x.shape[0]` traced at
batch 1 is not caught), and an axis of saved size 1 adds no products (a set's count
with it is the count without it: a layer norm's, say), so only a `Sum` still in the
graph tells its mean's count apart.

>>> stale = Stale({2: "input 'x''s axis 0 (now 5)"})
>>> stale.add_products((2, 3), [0], "%1 f32[2,3]")
>>> sorted(stale.counts)
[2, 6]
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from pyasg.asg.graph import Graph
from pyasg.asg.ops import Constant, Fused
from pyasg.errors import ShapeError

#: Up to this many axes, every set of axes is a possible mean's; beyond, contiguous runs.
ALL_SUBSETS_UP_TO = 6

ADVICE = ("the file cannot say whether it follows that size or means the number itself "
          "(save the graph traced at the size you need, or at a size no other number in "
          "the model shares)")


@dataclass
class Stale:
    """The numbers that may be sizes which changed (see the module docstring), each with
    what it was."""

    sizes: dict[int, str]
    counts: dict[int, str] = field(default_factory=dict)

    def add_count(self, n: int, what: str) -> None:
        self.counts.setdefault(n, what)

    def add_products(self, shape: tuple[int, ...], changed: list[int], node: str) -> None:
        """The counts of `shape`'s axis sets that hold a changed axis (of a saved size
        other than 1)."""
        changed_set = {a for a in changed if shape[a] != 1}
        if not changed_set:
            return
        for axes in _axis_sets(len(shape)):
            if changed_set.intersection(axes):
                n = math.prod(shape[a] for a in axes)
                if n != 1:
                    self.add_count(n, f"the saved element count of axes {list(axes)} of "
                                      f"{node}, which changed")


def _axis_sets(ndim: int) -> list[tuple[int, ...]]:
    if ndim <= ALL_SUBSETS_UP_TO:
        return [c for k in range(1, ndim + 1) for c in itertools.combinations(range(ndim), k)]
    return [tuple(range(i, j)) for i in range(ndim) for j in range(i + 1, ndim + 1)]


def _suspects(stale: Stale) -> dict[float, str]:
    """Every value a constant made from a stale number may have, with what it would be."""
    out: dict[float, str] = {}
    sizes = {n: f"the saved size of {where}" for n, where in stale.sizes.items() if n != 1}
    for n, described in {**sizes, **stale.counts}.items():
        out.setdefault(float(n), f"{n}, {described}")
        if n:
            for r in (1 / n, float(np.float32(1 / n))):
                out.setdefault(r, f"1/{n}, where {n} is {described}")
    return out


def _problem(op: Constant, suspects: dict[float, str], stale: Stale) -> str | None:
    for d in op.shape:
        if d in stale.sizes:
            return f"its shape {list(op.shape)} holds {d}, the saved size of " \
                   f"{stale.sizes[d]}; {ADVICE}"
    if math.prod(op.shape) != 1 or op.dtype == "bool":
        return None
    v = float(op.value.reshape(-1)[0])
    match = suspects.get(v, suspects.get(-v))
    return None if match is None else f"its value {v!r} is {match}; {ADVICE}"


def check_constants(graph: Graph, stale: Stale) -> None:
    """Refuse (`ShapeError` naming the node) a constant of `graph`, or of its fused
    sub-graphs, that may hold a stale number.

    >>> import pyasg, numpy as np
    >>> g = pyasg.make_graph(lambda x: x.mean(axis=0))(np.ones((2, 3)))
    >>> check_constants(g, Stale({2: "input 'x''s axis 0 (now 5)"}))
    Traceback (most recent call last):
    pyasg.errors.ShapeError: node %2 (const 2.0) cannot be re-specialised: its value 2.0 is 2,
    the saved size of input 'x''s axis 0 (now 5); ...
    ...
    """
    suspects = _suspects(stale)

    def visit(g: Graph) -> None:
        for i in g.live_ids:
            node = g.nodes[i]
            if isinstance(node.op, Fused):
                visit(node.op.graph)
            elif isinstance(node.op, Constant):
                problem = _problem(node.op, suspects, stale)
                if problem is not None:
                    raise ShapeError(f"node %{i} ({node.op}) cannot be re-specialised: "
                                     f"{problem}", source=node.source)

    visit(graph)
