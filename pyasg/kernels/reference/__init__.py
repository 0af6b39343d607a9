"""The reference backend: one obviously correct numpy kernel per op, the oracle of the
parity tests, and the evaluator of eager calls and constant folding."""

from pyasg.kernels.reference import control  # noqa: F401  (registers the control kernels)
from pyasg.kernels.reference.backend import ReferenceBackend, ReferenceExecutable
from pyasg.kernels.reference.kernels import KERNELS, NodeFailed, evaluate, run_graph

__all__ = ["KERNELS", "NodeFailed", "ReferenceBackend", "ReferenceExecutable", "evaluate",
           "run_graph"]
