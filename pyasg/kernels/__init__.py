"""HOW each op runs: kernels chosen by multipledispatch on (op type, backend type).

`lower(op, backend, in_types=..., out_type=...)` returns a kernel for one node. It is
called once per node when a graph is compiled, never while it runs. A backend's
folder registers one function per op; the graph, tracer and transforms never change.
"""

from __future__ import annotations

from multipledispatch import Dispatcher

lower = Dispatcher("lower")


def has_kernel(op_class: type, backend_class: type) -> bool:
    """Whether `lower` has an implementation registered for this op on this backend."""
    return lower.dispatch(op_class, backend_class) is not None
