"""`scaled_dot_product_attention`: PyTorch's function, as one primitive (flash kernels on wgpu).

softmax(q kᵀ·scale + bias) v per batch and head, recorded as ONE `Attention` node: the
wgpu backend runs it block by block with an online softmax and never writes the T x S
scores to memory, forward or backward; numpy materialises them (see
`pyasg.asg.ops.attention` for the semantics and the gradient nodes).

>>> import numpy as np
>>> q = np.zeros((1, 1, 2, 4), np.float32); v = np.arange(6.0, dtype=np.float32)
>>> scaled_dot_product_attention(q, q, v.reshape(1, 1, 2, 3))[0, 0].tolist()
[[1.5, 2.5, 3.5], [1.5, 2.5, 3.5]]
"""

from __future__ import annotations

import math

from pyasg.array import primitives as P
from pyasg.asg import ops
from pyasg.asg.ops.attention import LAYOUTS
from pyasg.asg.types import FLOAT_DTYPES
from pyasg.errors import ShapeError
from pyasg.trace.tracer import Tracer


def scaled_dot_product_attention(q: object, k: object, v: object, bias: object = None,
                                 is_causal: bool = False, scale: float | None = None,
                                 layout: str = "bhtd") -> Tracer | object:
    """Attention of queries q to keys k and values v, as torch's function of that name.

    - q [B, H, T, D], k [B, H, S, D], v [B, H, S, Dv] (one float dtype) -> [B, H, T, Dv];
      with layout="bthd" (JAX's) q [B, T, H, D], k [B, S, H, D], v [B, S, H, Dv] ->
      [B, T, H, Dv] (heads split off a linear layer's output by a reshape alone).
    - bias: float, added to the scores (-inf blocks), broadcastable to [B, H, T, S]
      (a key-padding bias [B, 1, 1, S], an [T, S] mask, an ALiBi [H, T, S] ...); it is
      cast to q's dtype. PyTorch's `attn_mask` in that place may also be bool (True =
      attend); here a bool raises: pass `where(mask, 0.0, -inf)`.
    - is_causal: query i sees key j only where j <= i + (S - T) (the queries are the
      last T of S positions; PyTorch aligns them first for T != S).
    - scale: of the scores, default 1/sqrt(D).

    Differences from PyTorch: no `dropout_p` (dropout the inputs, or use the
    composite MultiHeadAttention); no `enable_gqa` (k and v need q's heads); exactly
    4-d operands; `layout`. A query whose every key is blocked gets 0, as PyTorch's
    (>= 2.5).

    >>> import numpy as np
    >>> x = np.ones((1, 2, 3, 4), np.float32)
    >>> scaled_dot_product_attention(x, x, x, is_causal=True).shape
    (1, 2, 3, 4)
    """
    if layout not in LAYOUTS:
        raise ShapeError(f"scaled_dot_product_attention: layout must be one of "
                         f"{', '.join(LAYOUTS)}, got {layout!r}")
    types = [P.type_of(x) for x in (q, k, v)]
    axes = "heads, length" if layout == "bhtd" else "length, heads"
    for t, name in zip(types, ("q", "k", "v")):
        if t.ndim != 4 or t.dtype not in FLOAT_DTYPES:
            raise ShapeError(f"scaled_dot_product_attention: {name} must be a float array "
                             f"[batch, {axes}, head_dim], got {t!r}")
    if len({t.dtype for t in types}) != 1:
        raise ShapeError(f"scaled_dot_product_attention: q, k and v need one dtype, got "
                         f"{', '.join(map(repr, types))}")
    if not isinstance(is_causal, bool):
        raise ShapeError(f"scaled_dot_product_attention: is_causal must be a bool, got "
                         f"{is_causal!r}")
    if scale is None:
        scale = 1.0 / math.sqrt(max(types[0].shape[-1], 1))
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) \
            or not math.isfinite(scale):
        raise ShapeError(f"scaled_dot_product_attention: scale must be a finite number, got "
                         f"{scale!r}")
    op = ops.Attention(float(scale), is_causal, layout)
    operands = [q, k, v]
    if bias is not None:
        operands.append(_bias_4d(bias, op, types))
    return P.bind(op, *operands)


def _bias_4d(bias: object, op: ops.Attention, types: list) -> object:
    """`bias` cast to q's dtype, with leading size-1 axes up to 4-d."""
    t = P.type_of(bias)
    if t.dtype not in FLOAT_DTYPES:
        raise ShapeError(f"scaled_dot_product_attention: bias must be float (added to the "
                         f"scores; -inf blocks), got {t!r}; for a bool mask pass "
                         f"where(mask, 0.0, -inf) (PyTorch's bool attn_mask: True = attend)")
    B, H, T, _ = op.shape(*types[0].shape)  # the swap of "bthd" is its own inverse
    S = op.shape(*types[1].shape)[2]
    if t.ndim > 4 or any(d not in (1, n) for d, n in zip(t.shape[::-1], (S, T, H, B))):
        raise ShapeError(f"scaled_dot_product_attention: bias {t!r} does not broadcast to "
                         f"the scores [B, H, T, S] = [{B}, {H}, {T}, {S}] (each dimension "
                         f"must be 1 or the same)")
    bias = P.astype(bias, types[0].dtype)
    return P.reshape(bias, (1,) * (4 - t.ndim) + t.shape) if t.ndim < 4 else bias
