"""The numpy kernels of the control-flow ops: each sub-graph compiled once, run by a loop.

A node is one output of its construct (`pyasg.asg.ops.control`), so its kernel
compiles only the part of the body that output needs (`Scan.needed_outputs`,
`WhileLoop.needed_carries`, `restrict`) into a numpy `Executable`, and loops over
it in Python: the loop costs one executable call per iteration, the body itself runs
as generated straight-line code with its own memory plan.

>>> import pyasg, numpy as np
>>> f = pyasg.jit(lambda xs: pyasg.scan(lambda c, x: (c * x, None), np.float32(1), xs)[0])
>>> float(f(np.arange(1, 5, dtype=np.float32)))
24.0
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from pyasg.asg import ops
from pyasg.asg.graph import Graph
from pyasg.asg.ops.control import restrict
from pyasg.kernels import lower
from pyasg.kernels.numpy.backend import NumpyBackend, NumpyKernel
from pyasg.kernels.numpy.executable import Executable


def _compile(graph: Graph, backend: NumpyBackend, what: str,
             keep_buffers: bool = True) -> Callable[..., tuple]:
    return Executable(graph, backend, what, keep_buffers=keep_buffers)


@lower.register(ops.Scan, NumpyBackend)
def _(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
    nc, ncar = op.n_consts, op.n_carry
    carries, y = op.needed_outputs()
    wanted = tuple(carries) + (() if y is None else (ncar + y,))
    run = _compile(restrict(op.body, wanted), backend, "scan body")
    steps = range(op.length - 1, -1, -1) if op.reverse else range(op.length)
    dtype = np.dtype(out_type.dtype)

    def scan(*arrays: np.ndarray) -> np.ndarray:
        head, carry, xs = arrays[:nc], list(arrays[nc:nc + ncar]), arrays[nc + ncar:]
        out = np.empty(out_type.shape, dtype) if y is not None else None
        for t in steps:
            got = run(*head, *carry, *(x[t, ...] for x in xs))
            for c, value in zip(carries, got):
                carry[c] = value
            if out is not None:
                out[t] = got[-1]
        return out if out is not None else np.array(carry[op.index], copy=True)

    return NumpyKernel(scan)


@lower.register(ops.Cond, NumpyBackend)
def _(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
    branches = [_compile(restrict(g, (op.index,)), backend, name)
                for g, name in ((op.false_branch, "cond false"), (op.true_branch, "cond true"))]

    def cond(pred: np.ndarray, *operands: np.ndarray) -> np.ndarray:
        return branches[bool(pred)](*operands)[0]

    return NumpyKernel(cond)


@lower.register(ops.WhileLoop, NumpyBackend)
def _(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
    nc = op.n_consts
    carries = op.needed_carries()
    predicate = _compile(op.cond_graph, backend, "while_loop predicate")
    body = _compile(restrict(op.body, carries), backend, "while_loop body")

    def while_loop(*arrays: np.ndarray) -> np.ndarray:
        head, carry = arrays[:nc], list(arrays[nc:])
        while bool(predicate(*head, *carry)[0]):
            for c, value in zip(carries, body(*head, *carry)):
                carry[c] = value
        return np.array(carry[op.index], copy=True)

    return NumpyKernel(while_loop)


@lower.register(ops.Remat, NumpyBackend)
def _(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
    # fresh buffers each call: a checkpointed block's values must not stay allocated
    # between the passes, which is what checkpointing is for
    run = _compile(restrict(op.body, (op.index,)), backend, "checkpoint body",
                   keep_buffers=False)
    return NumpyKernel(lambda *arrays: run(*arrays)[0])

