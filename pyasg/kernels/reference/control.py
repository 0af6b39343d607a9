"""The reference kernels of the control-flow ops: plain Python loops over `run_graph`.

The oracle runs every sub-graph whole, in the obvious way, and picks the node's output
at the end; the fast backends run only what the output needs and are tested against
this.

>>> import pyasg, numpy as np
>>> total = lambda xs: pyasg.scan(lambda c, x: (c + x, c), np.float32(0), xs)
>>> [a.tolist() for a in total(np.arange(3, dtype=np.float32))]
[3.0, [0.0, 0.0, 1.0]]
"""

from __future__ import annotations

import numpy as np

from pyasg.asg import ops
from pyasg.kernels.reference.kernels import KERNELS, run_graph


def scan(op: ops.Scan, *arrays: np.ndarray) -> np.ndarray:
    nc, ncar = op.n_consts, op.n_carry
    consts, carry, xs = arrays[:nc], list(arrays[nc:nc + ncar]), arrays[nc + ncar:]
    ys: list[tuple[np.ndarray, ...]] = []
    steps = range(op.length - 1, -1, -1) if op.reverse else range(op.length)
    for t in steps:
        out = run_graph(op.body, [*consts, *carry, *(x[t, ...] for x in xs)], "scan body")
        carry, y = list(out[:ncar]), out[ncar:]
        ys.append(y)
    if op.index < ncar:
        return np.array(carry[op.index], copy=True)
    j = op.index - ncar
    t = op.body.output_types[op.index]
    if op.reverse:
        ys.reverse()
    return np.array([y[j] for y in ys], t.dtype).reshape((op.length, *t.shape))


def cond(op: ops.Cond, pred: np.ndarray, *operands: np.ndarray) -> np.ndarray:
    branch = op.true_branch if bool(pred) else op.false_branch
    return np.array(run_graph(branch, operands, "cond branch")[op.index], copy=True)


def while_loop(op: ops.WhileLoop, *arrays: np.ndarray) -> np.ndarray:
    consts, carry = arrays[:op.n_consts], list(arrays[op.n_consts:])
    while bool(run_graph(op.cond_graph, [*consts, *carry], "while_loop predicate")[0]):
        carry = list(run_graph(op.body, [*consts, *carry], "while_loop body"))
    return np.array(carry[op.index], copy=True)


def remat(op: ops.Remat, *arrays: np.ndarray) -> np.ndarray:
    return np.array(run_graph(op.body, arrays, "checkpoint body")[op.index], copy=True)


KERNELS.update({ops.Scan: scan, ops.Cond: cond, ops.WhileLoop: while_loop, ops.Remat: remat})
