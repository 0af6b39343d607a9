"""pyasg: a define-then-run deep-learning library.

A plain Python function is traced once into an immutable graph of primitive ops
(the ASG); transforms map graphs to graphs (grad, simplify, infer_shapes); kernels
chosen once by multipledispatch run the result.

>>> import pyasg, numpy as np
>>> @pyasg.trace
... def loss(w, x):
...     return pyasg.mean((x @ w) ** 2)
>>> g = pyasg.grad(loss)(np.ones((2, 1), np.float32), np.ones((3, 2), np.float32))
>>> g.tolist()
[[4.0], [4.0]]
"""

__version__ = "0.1.0"

import sys as _sys

from pyasg import data, functional, io, losses, metrics, nn, optim, random, viewer  # noqa: F401
from pyasg.asg import Graph, TensorType
from pyasg.asg.serialize import graph_from_json, graph_to_json
from pyasg.errors import (
    BackendError,
    CheckpointError,
    GradError,
    GraphFormatError,
    PyasgError,
    ShapeError,
    TraceError,
)
from pyasg.events import GraphReady, RunFinished, StepDone, publish, subscribe
from pyasg.functional import *  # noqa: F403
from pyasg.functional import max, min, sum  # noqa: A004, F401
from pyasg.io import load_graph, save_graph
from pyasg.trace.tracer import Tracer
from pyasg.trace.tree import flatten, tree_leaves, tree_map, unflatten
from pyasg.transforms.grad import grad, hessian, jacobian, value_and_grad, vjp_graph
from pyasg.transforms.jit import (
    Executable,
    default_backend,
    jit,
    jit_to_backend,
    make_graph,
    set_default_backend,
    trace,
)
from pyasg.transforms.shapes import infer_shapes
from pyasg.transforms.simplify import simplify

# `pyasg.trace` is the decorator; keep the subpackage's modules reachable from it too.
for _name in ("tracer", "tree"):
    setattr(trace, _name, _sys.modules[f"pyasg.trace.{_name}"])

__all__ = [
    "BackendError", "CheckpointError", "data", "io", "load_graph", "metrics", "save_graph",
    "Executable", "GradError", "Graph", "GraphFormatError",
    "GraphReady", "PyasgError", "RunFinished", "ShapeError", "StepDone", "TensorType",
    "TraceError", "Tracer", "default_backend", "flatten", "functional", "grad",
    "graph_from_json", "graph_to_json", "hessian", "infer_shapes", "jacobian", "jit",
    "jit_to_backend", "losses", "make_graph", "nn", "optim", "publish", "random",
    "set_default_backend", "simplify", "subscribe", "viewer", "trace", "tree_leaves", "tree_map",
    "unflatten", "value_and_grad", "vjp_graph",
]
