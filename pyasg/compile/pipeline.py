"""The pipeline from a traced graph to an executable: simplify, convert, fuse, compile.

`default_pipeline` is what every compiled function's graph goes through first;
`jit_to_backend` then converts the dtypes the backend lacks, fuses with the
backend's options, and hands the graph to the backend's `compile`.

>>> import pyasg, numpy as np
>>> g = pyasg.make_graph(lambda x: x * 2.0)(np.ones(2, np.float32))
>>> jit_to_backend(g)(np.ones(2, np.float32))[0].tolist()
[2.0, 2.0]
"""

from __future__ import annotations

from collections.abc import Collection

from pyasg.asg.graph import Graph, require_graph
from pyasg.compile.protocol import Backend, Executable
from pyasg.compile.registry import get_backend
from pyasg.errors import BackendError, shown
from pyasg.transforms.custom import inline_custom_calls
from pyasg.transforms.dtypes import convert_dtypes
from pyasg.transforms.fuse import fuse as fuse_graph
from pyasg.transforms.simplify import simplify


def default_pipeline(graph: Graph) -> Graph:
    """The transforms every compiled function goes through before lowering."""
    return simplify(graph)


def lower_graph(graph: Graph, backend: Backend, fuse: bool = True) -> Graph:
    """`graph` as `backend` runs it: custom calls inlined, its missing dtypes converted,
    fused by its options.

    >>> import pyasg, numpy as np
    >>> g = pyasg.make_graph(lambda x: pyasg.exp(x) + 1.0)(np.ones(2, np.float32))
    >>> len(lower_graph(g, get_backend("numpy")).live_ids)
    2
    """
    graph = inline_custom_calls(graph)  # no backend runs a custom call: its values are
    if backend.converts:                # its primal sub-graph's
        graph = convert_dtypes(graph, backend.converts)
    options = backend.fusion_options() if fuse else None
    return graph if options is None else fuse_graph(graph, options)


def jit_to_backend(graph: Graph, backend: str | Backend = "numpy", name: str = "graph",
                   fuse: bool = True, donated: Collection[int] = ()) -> Executable:
    """Compile `graph` for `backend`: converted and fused (`lower_graph`; `fuse=False`
    leaves it unfused), then the backend's `compile` (kernels resolved once, memory
    planned; `donated` input positions may give their memory to outputs)."""
    graph = require_graph(graph, "jit_to_backend")
    if not isinstance(fuse, bool):
        raise BackendError(f"jit_to_backend: fuse must be True or False, got "
                           f"{shown(fuse, with_type=True)}")
    if not isinstance(name, str):
        raise BackendError(f"jit_to_backend: name must be a str, got "
                           f"{shown(name, with_type=True)}")
    if not (isinstance(donated, (list, tuple, range, frozenset, set)) and all(
            isinstance(k, int) and not isinstance(k, bool) and 0 <= k < len(graph.inputs)
            for k in donated)):
        raise BackendError(f"jit_to_backend: donated must be positions of the graph's "
                           f"{len(graph.inputs)} inputs, got {shown(donated, with_type=True)}")
    donated = tuple(sorted(donated))
    backend = get_backend(backend)
    return backend.compile(lower_graph(graph, backend, fuse), name, donated)
