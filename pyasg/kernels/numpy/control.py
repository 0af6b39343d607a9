"""The numpy kernels of the control-flow ops: each sub-graph compiled once, run by a loop.

A node is one output of its construct (`pyasg.asg.ops.control`), so its kernel
compiles only the part of the body that output needs (`Scan.needed_for`,
`WhileLoop.needed_carries`, `restrict`) into a numpy `Executable`, and loops over
it in Python: the loop costs one executable call per iteration, the body itself runs
as generated straight-line code with its own memory plan. The nodes of one scan run
ONE loop per call between them (`ScanConstruct`): a gradient's residuals and its
forward values, or a backward scan's several gradients, cost one pass over the time
axis, not one each.

>>> import pyasg, numpy as np
>>> f = pyasg.jit(lambda xs: pyasg.scan(lambda c, x: (c * x, None), np.float32(1), xs)[0])
>>> float(f(np.arange(1, 5, dtype=np.float32)))
24.0
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np

from pyasg.asg import ops
from pyasg.asg.graph import Graph
from pyasg.asg.ops.control import restrict
from pyasg.kernels import lower
from pyasg.kernels.numpy.backend import NumpyBackend, NumpyKernel
from pyasg.kernels.numpy.executable import Executable, current_call


def _compile(graph: Graph, backend: NumpyBackend, what: str,
             keep_buffers: bool = True) -> Callable[..., tuple]:
    return Executable(graph, backend, what, keep_buffers=keep_buffers)


class ScanConstruct:
    """The nodes of one scan (its op but for `index`, on the same inputs) share one loop
    per executable call: the first of them to run computes every output that any node
    of this op was compiled for, the others take theirs from it.

    The shared results are keyed by the call (`current_call`) and the identity of the
    input arrays: within one call a node's inputs stay alive, unchanged, until its
    last reader has run, so equal keys mean equal values. They are kept until the next
    call replaces them.
    """

    def __init__(self, op: ops.Scan, backend: NumpyBackend) -> None:
        self.op, self.backend = op, backend
        self.indices: set[int] = set()
        self._loops: dict[frozenset[int], Callable[..., dict[int, np.ndarray]]] = {}
        self._memo: tuple[tuple, dict[int, np.ndarray]] | None = None

    def results(self, arrays: tuple[np.ndarray, ...]) -> dict[int, np.ndarray]:
        call = current_call()
        key = (call, tuple(map(id, arrays)))
        memo = self._memo
        if call is not None and memo is not None and memo[0] == key:
            return memo[1]
        wanted = frozenset(self.indices)
        loop = self._loops.get(wanted)
        if loop is None:
            loop = self._loops[wanted] = self._loop(tuple(sorted(wanted)))
        out = loop(arrays)
        self._memo = (key, out) if call is not None else None
        return out

    def _loop(self, indices: tuple[int, ...]) -> Callable[..., dict[int, np.ndarray]]:
        """One loop computing outputs `indices`: the body restricted to what they need."""
        op = self.op
        nc, ncar = op.n_consts, op.n_carry
        carries, ys = op.needed_for(indices)
        run = _compile(restrict(op.body, tuple(carries) + tuple(ncar + y for y in ys)),
                       self.backend, "scan body")
        steps = range(op.length - 1, -1, -1) if op.reverse else range(op.length)
        types = [op.with_index(ncar + y).infer(*(op.body.input_types[:nc + ncar])
                                               + tuple(_stacked(op)))
                 for y in ys]

        def loop(arrays: tuple[np.ndarray, ...]) -> dict[int, np.ndarray]:
            head, carry, xs = arrays[:nc], list(arrays[nc:nc + ncar]), arrays[nc + ncar:]
            stacked = [np.empty(t.shape, t.dtype) for t in types]
            for t in steps:
                got = run(*head, *carry, *(x[t, ...] for x in xs))
                for c, value in zip(carries, got):
                    carry[c] = value
                for out, value in zip(stacked, got[len(carries):]):
                    out[t] = value
            found = {ncar + y: out for y, out in zip(ys, stacked)}
            found.update({c: np.array(carry[c], copy=True) for c in carries if c in indices})
            return found

        return loop


def _stacked(op: ops.Scan) -> list:
    """The types of the node's xs inputs (each body slice with the length in front)."""
    start = op.n_consts + op.n_carry
    return [t.__class__((op.length, *t.shape), t.dtype) for t in op.body.input_types[start:]]


@lru_cache(maxsize=256)
def _construct(op: ops.Scan, backend: NumpyBackend) -> ScanConstruct:
    return ScanConstruct(op, backend)


@lower.register(ops.Scan, NumpyBackend)
def _(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
    construct = _construct(op.with_index(0), backend)
    construct.indices.add(op.index)
    index = op.index
    return NumpyKernel(lambda *arrays: construct.results(arrays)[index])


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

