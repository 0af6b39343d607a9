"""`checkpoint(f)` (remat): `f`'s intermediate values are recomputed in the backward pass.

The wrapped function records one `Remat` node per result, holding `f` traced once as
its sub-graph. Forward it runs that sub-graph; its gradient rule
(`pyasg.transforms.vjp_control`) inlines the sub-graph's own VJP into the backward
pass, so the values inside `f` are computed again there, where they are needed, and
only `f`'s inputs are kept alive between the passes: less memory for more compute,
as `jax.checkpoint` and `torch.utils.checkpoint`.

>>> import pyasg, numpy as np
>>> block = checkpoint(lambda x: pyasg.tanh(x) * 2.0)
>>> g = pyasg.grad(lambda x: block(x).sum())(np.zeros(3, np.float32))
>>> g.tolist()
[2.0, 2.0, 2.0]
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from pyasg.array.control import _bind_all, _leaves, trace_body
from pyasg.asg import ops
from pyasg.errors import ControlFlowError, shown
from pyasg.trace.tracer import argument_names
from pyasg.trace.tree import unflatten

__all__ = ["checkpoint"]


def checkpoint(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` whose intermediate values are recomputed in the backward pass, not kept.

    Every argument is a pytree of arrays (close over configuration instead). The
    value is the same as `fn`'s; only the gradient's memory and compute change.

    >>> import numpy as np
    >>> float(checkpoint(lambda a, b: (a * b).sum())(np.ones(2), np.ones(2)))
    2.0
    """
    if not callable(fn):
        raise ControlFlowError(f"checkpoint needs a function, got {type(fn).__name__} "
                               f"{shown(fn, 60)}")

    @functools.wraps(fn)
    def rematerialised(*args: object) -> Any:
        names = argument_names(fn, len(args))
        pairs, tree = _leaves(dict(zip(names, args)), "")
        leaves = [x for _, x in pairs]
        example = list(unflatten(tree, leaves).values())
        body = trace_body(fn, example, names, f"checkpoint({getattr(fn, '__name__', 'fn')})")
        outs = _bind_all(ops.Remat(body.graph), [*body.captured, *leaves])
        return unflatten(body.out_tree, outs)

    return rematerialised
