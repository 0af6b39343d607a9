"""The numpy backend: the fast CPU path (its kernels may use any speed trick that the
parity tests against the reference backend allow), the kernel record, and evaluation
of one op on concrete arrays."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from pyasg.asg.graph import Graph
from pyasg.asg.ops import Op
from pyasg.asg.types import TensorType
from pyasg.compile.protocol import Backend, FuseOptions
from pyasg.kernels import lower
from pyasg.kernels.numpy.executable import Executable

#: Inputs a fused numpy kernel may read: no binding limit, the cap only bounds codegen.
MAX_FUSED_INPUTS = 32


class NumpyBackend(Backend):
    """Runs graphs with numpy on the CPU: straight-line generated code, planned buffers."""

    name = "numpy"

    def fusion_options(self) -> FuseOptions:
        """Matmul epilogues fuse (written into the product's buffer); views are copies."""
        return FuseOptions(max_inputs=MAX_FUSED_INPUTS, matmul_epilogue=True)

    def compile(self, graph: Graph, name: str = "graph",
                donated: Collection[int] = ()) -> Executable:
        return Executable(graph, self, name, donated=donated)


NUMPY = NumpyBackend()


@dataclass(frozen=True)
class NumpyKernel:
    """A compiled kernel: `fn(*arrays)` returns the node's value.

    `writes_out`: `fn` also takes `out=` (a buffer of the output's shape and dtype)
    and returns it, so the memory plan can give it a static buffer. `inplace` (with
    `writes_out`): `out` may be the very buffer of an input that dies at this node,
    which ufuncs and matmul handle (numpy copies when operands overlap); kernels that
    write `out` before they have read all their inputs say False. `view`: the result
    may share memory with its first input, so that input's buffer stays alive while
    the result lives. `scratch`: temporaries the plan gives it, live only while it runs.

    >>> NumpyKernel(np.add, writes_out=True).inplace
    True
    """

    fn: Callable[..., np.ndarray]
    writes_out: bool = False
    view: bool = False
    inplace: bool = True
    #: (shape, dtype) of temporaries `fn` needs while it runs; with any, `fn` also takes
    #: `scratch=` (a tuple of such arrays, from the memory plan) and allocates them
    #: itself when it gets none
    scratch: tuple[tuple[tuple[int, ...], str], ...] = ()


@lru_cache(maxsize=4096)
def _kernel(op: Op, in_types: tuple[TensorType, ...], out_type: TensorType) -> NumpyKernel:
    return lower(op, NUMPY, in_types=in_types, out_type=out_type)


def evaluate(op: Op, *arrays: np.ndarray) -> np.ndarray:
    """Run one op on concrete arrays (used for eager calls and constant folding).

    >>> from pyasg.asg.ops import Exp
    >>> float(evaluate(Exp(), np.zeros((), np.float32)))
    1.0
    """
    in_types = tuple(TensorType.of(a) for a in arrays)
    out_type = op.infer(*in_types)
    out = _kernel(op, in_types, out_type).fn(*arrays)
    return np.asarray(out)
