"""The reference backend: the graph evaluated node by node with `KERNELS`, the oracle.

It exists to be obviously right, not fast: no fusion, no buffer planning, no
generated code; every value is a fresh numpy array. The numpy and wgpu backends are
tested against it.

>>> import pyasg, numpy as np
>>> g = pyasg.make_graph(lambda x: pyasg.exp(x).sum())(np.zeros(3, np.float32))
>>> float(ReferenceBackend().compile(g)(np.zeros(3, np.float32))[0])
3.0
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np

from pyasg.asg.graph import Graph
from pyasg.asg.ops import Constant, Input
from pyasg.compile.arguments import ArgumentCheck
from pyasg.compile.protocol import Backend
from pyasg.kernels.reference.kernels import run_graph


class ReferenceExecutable:
    """A graph run by the reference kernels; call with one array per graph input, each
    of exactly its input's shape and dtype (the oracle computes what the graph says,
    never a promoted variant of it). A failing kernel raises a `BackendError` naming
    its node and the user's line that made it."""

    def __init__(self, graph: Graph, name: str = "graph") -> None:
        self.graph, self.name = graph, name
        self._check = ArgumentCheck(graph.input_types, graph.input_names)
        self.kernel_count = sum(1 for i in graph.live_ids
                                if not isinstance(graph.nodes[i].op, (Input, Constant)))

    def __call__(self, *arrays: object) -> tuple[np.ndarray, ...]:
        graph = self.graph
        self._check(self.name, arrays)
        values = [np.asarray(a) for a in arrays]
        outs = run_graph(graph, values, self.name)
        # results never alias the arguments, as on the other backends
        return tuple(np.array(o, copy=True) for o in outs)


class ReferenceBackend(Backend):
    """The oracle: every op by its plain numpy definition, one node at a time."""

    name = "reference"

    def compile(self, graph: Graph, name: str = "graph",
                donated: Collection[int] = ()) -> ReferenceExecutable:
        # the oracle never reuses memory: results are always fresh arrays
        return ReferenceExecutable(graph, name)
