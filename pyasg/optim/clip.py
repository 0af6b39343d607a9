"""Gradient clipping over a pytree, by global norm and by value (torch.nn.utils), traceable.

Pure functions: they return clipped gradients instead of changing them in place,
so they fit inside a compiled training step between `grad` and `opt.update`.

>>> import numpy as np
>>> grads = {"w": np.array([[3.0, 4.0]])}
>>> clipped, norm = clip_grad_norm(grads, max_norm=1.0)
>>> float(norm), clipped["w"].round(4).tolist()
(5.0, [[0.6, 0.8]])
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from pyasg.array import functional as F
from pyasg.asg.types import promote
from pyasg.optim.base import hyperparameter
from pyasg.trace.tracer import Tracer
from pyasg.trace.tree import tree_leaves, tree_map

#: Added to the norm before dividing, as PyTorch does (no division by zero).
EPS = 1e-6


def global_norm(grads: Any, norm_type: float | str = 2.0) -> Any:
    """The `norm_type`-norm of all leaves of `grads` taken together, as one vector.

    `norm_type` is a positive float or inf (`"inf"` too): the largest absolute value.
    Computed as (sum over leaves of sum |g|**p) ** (1/p); PyTorch takes the norm of
    the per-leaf norms, the same number up to rounding.

    >>> float(global_norm([np.array([3.0]), np.array([4.0])]))
    5.0
    """
    p = math.inf if isinstance(norm_type, str) and norm_type == "inf" else hyperparameter(
        norm_type, "global_norm", "norm_type (a positive number or inf)", "(0, inf]")
    leaves = [g for g in tree_leaves(grads) if F.type_of(g).size > 0]
    if not leaves:
        return np.zeros((), "float32")
    dtype = promote(*(F.type_of(g).dtype for g in leaves))
    if math.isinf(p):
        parts = [F.astype(F.max(F.abs(g)), dtype) for g in leaves]
        total = parts[0]
        for part in parts[1:]:
            total = F.maximum(total, part)
        return total
    if p == 2.0:
        parts = [F.sum(F.mul(g, g)) for g in leaves]  # exact squares, no pow
    elif p == 1.0:
        parts = [F.sum(F.abs(g)) for g in leaves]
    else:
        parts = [F.sum(F.power(F.abs(g), p)) for g in leaves]
    total = F.astype(parts[0], dtype)
    for part in parts[1:]:
        total = F.add(total, F.astype(part, dtype))
    if p == 1.0:
        return total
    return F.sqrt(total) if p == 2.0 else F.power(total, 1.0 / p)


def clip_grad_norm(grads: Any, max_norm: float | Any,
                   norm_type: float | str = 2.0) -> tuple[Any, Any]:
    """Scale all of `grads` so their global norm is at most `max_norm`; returns
    `(clipped_grads, total_norm)`, the norm taken before clipping.

    As torch.nn.utils.clip_grad_norm_: every leaf is multiplied by
    min(1, max_norm / (total_norm + 1e-6)), so a norm above max_norm comes out at
    max_norm (a hair under, by the 1e-6) and a smaller one is left unchanged.
    Differences: pure (returns new arrays), `max_norm` may be a traced value, and
    there is no `error_if_nonfinite` (a traced norm has no value to test; check
    the returned norm after the step). A non-finite norm gives non-finite
    gradients, as in PyTorch.

    >>> clipped, norm = clip_grad_norm([np.array([0.3, 0.4])], max_norm=1.0)
    >>> float(norm), clipped[0].tolist()
    (0.5, [0.3, 0.4])
    """
    if not isinstance(max_norm, Tracer):  # a traced bound has no value to check
        max_norm = hyperparameter(max_norm, "clip_grad_norm", "max_norm", "[0, inf]")
    total = global_norm(grads, norm_type)
    coef = F.minimum(F.div(max_norm, F.add(total, EPS)), 1.0)
    clipped = tree_map(lambda g: F.mul(g, F.astype(coef, F.type_of(g).dtype)), grads)
    return clipped, total


def clip_grad_value(grads: Any, clip_value: float | Any) -> Any:
    """Every gradient element limited to [-clip_value, clip_value]
    (torch.nn.utils.clip_grad_value_, but pure: returns the clipped tree).

    >>> clip_grad_value({"b": np.array([-2.0, 0.5, 3.0])}, 1.0)["b"].tolist()
    [-1.0, 0.5, 1.0]
    """
    if isinstance(clip_value, Tracer):
        low = F.neg(clip_value)
    else:
        clip_value = hyperparameter(clip_value, "clip_grad_value", "clip_value", "[0, inf]")
        low = -clip_value  # negated in Python: no float32 rounding for float64 grads
    return tree_map(lambda g: F.clamp(g, low, clip_value), grads)
