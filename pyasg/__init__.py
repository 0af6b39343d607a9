"""pyasg: a define-then-run deep-learning library.

A plain Python function is traced once into an immutable graph of primitive ops
(the ASG); transforms map graphs to graphs (grad, simplify, infer_shapes); kernels
chosen once by multipledispatch run the result. This module only re-exports the
public names; `docs/ARCHITECTURE.md` says where each part lives.

>>> import pyasg, numpy as np
>>> @pyasg.trace
... def loss(w, x):
...     return pyasg.mean((x @ w) ** 2)
>>> g = pyasg.grad(loss)(np.ones((2, 1), np.float32), np.ones((3, 2), np.float32))
>>> g.tolist()
[[4.0], [4.0]]
"""

import sys as _sys

from pyasg import data, io, metrics, nn, optim, viewer  # noqa: F401
from pyasg._version import __version__
from pyasg.api import (
    grad,
    hessian,
    jacfwd,
    jacobian,
    jacrev,
    jit,
    jvp,
    linearize,
    make_graph,
    trace,
    value_and_grad,
    vmap,
)
from pyasg.array import control as lax
from pyasg.array import functional, random  # noqa: F401
from pyasg.array.control import cond, fori_loop, scan, while_loop
from pyasg.array.functional import *  # noqa: F403
from pyasg.array.functional import max, min, sum  # noqa: A004, F401
from pyasg.array.random import dropout, dropout2d
from pyasg.array.remat import checkpoint
from pyasg.asg import Graph, TensorType
from pyasg.asg.serialize import graph_from_json, graph_to_json
from pyasg.compile.pipeline import jit_to_backend
from pyasg.compile.profile import profile
from pyasg.compile.protocol import Backend, Executable
from pyasg.compile.registry import default_backend, set_default_backend
from pyasg.custom import custom_jvp, custom_vjp
from pyasg.errors import (
    BackendError,
    BranchMismatchError,
    CarryTypeError,
    CheckpointError,
    ControlFlowError,
    CustomDerivativeError,
    GradError,
    GraphFormatError,
    IntegerTangentError,
    NoForwardRuleError,
    PyasgError,
    ShapeError,
    TangentError,
    TraceError,
    UnsavableGraphError,
    VmapError,
)
from pyasg.events import GraphReady, RunFinished, StepDone, publish, subscribe
from pyasg.io import load_graph, save_graph
from pyasg.nn import losses  # noqa: F401
from pyasg.trace.tracer import Tracer
from pyasg.trace.tree import (
    TreeError,
    flatten,
    register_dataclass,
    register_pytree_node,
    tree_leaves,
    tree_map,
    unflatten,
)
from pyasg.train import Trainer
from pyasg.transforms.custom import inline_custom_calls
from pyasg.transforms.jvp import jvp_graph
from pyasg.transforms.shapes import infer_shapes
from pyasg.transforms.simplify import simplify
from pyasg.transforms.vjp import vjp_graph

# `pyasg.trace` is the decorator; keep the subpackage's modules reachable from it too.
for _name in ("tracer", "tree"):
    setattr(trace, _name, _sys.modules[f"pyasg.trace.{_name}"])
# The public module paths users import (`import pyasg.random as R`, `from pyasg.losses
# import mse_loss`), each the module of its layer: the array layer and the training stack.
for _alias, _module in {"functional": functional, "random": random, "losses": losses,
                       "lax": lax}.items():
    _sys.modules[f"pyasg.{_alias}"] = _module

__all__ = [
    "Backend", "BackendError", "BranchMismatchError", "CarryTypeError", "CheckpointError",
    "ControlFlowError", "checkpoint", "cond", "data", "fori_loop", "lax", "scan", "while_loop",
    "dropout", "dropout2d", "io",
    "load_graph", "metrics", "save_graph", "Executable", "GradError", "Graph",
    "GraphFormatError", "GraphReady", "PyasgError", "RunFinished", "ShapeError", "StepDone",
    "TensorType", "TraceError", "Tracer", "Trainer", "__version__", "default_backend", "flatten",
    "functional", "grad", "graph_from_json", "graph_to_json", "hessian", "infer_shapes",
    "jacobian", "jit", "jit_to_backend", "losses", "make_graph", "nn", "optim", "publish",
    "random", "set_default_backend", "simplify", "subscribe", "viewer", "trace", "tree_leaves",
    "tree_map", "unflatten", "value_and_grad", "vjp_graph", "profile", "register_dataclass",
    "register_pytree_node", "TreeError", "vmap", "VmapError",
    # forward mode and custom derivatives
    "CustomDerivativeError", "IntegerTangentError", "NoForwardRuleError", "TangentError",
    "UnsavableGraphError",
    "custom_jvp", "custom_vjp", "inline_custom_calls", "jacfwd", "jacrev", "jvp", "jvp_graph",
    "linearize",
]
