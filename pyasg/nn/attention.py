"""Multi-head scaled dot-product attention, with PyTorch's masks, as a layer.

`MultiHeadAttention` projects queries, keys and values with its sub-layers `w_q`,
`w_k`, `w_v` (Linear), splits them into heads, computes
softmax(q k^T / sqrt(head_dim) + bias) v per head, and projects the joined heads
with `w_o`. The attention itself is the fused primitive `scaled_dot_product_attention`
(every mask joined into one additive bias; flash kernels on wgpu, forward and
backward) unless the weights are needed (`MultiHeadAttention.fused` says when). Its
parameters nest as `{"w_q": {"weight", "bias"}, ...}`, so their paths read
`attn.w_q.weight` and the viewer can say what each one is for.

>>> import pyasg, numpy as np
>>> mha = MultiHeadAttention(embed_dim=8, num_heads=2)
>>> params = mha.init(pyasg.random.key(0))
>>> sorted(params), sorted(params["w_q"])
(['w_k', 'w_o', 'w_q', 'w_v'], ['bias', 'weight'])
>>> x = np.ones((3, 5, 8), np.float32)          # [batch, time, embed]
>>> mha(params, x, is_causal=True).shape
(3, 5, 8)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from pyasg.array import functional as F
from pyasg.array import random
from pyasg.asg.types import is_float
from pyasg.errors import PyasgError, ShapeError
from pyasg.nn import checks, init
from pyasg.nn.layers import Linear
from pyasg.nn.module import Module, register_roles


def causal_mask(T: int, S: int | None = None) -> np.ndarray:
    """Bool [T, S], True where query i may NOT see key j: j > i + (S - T).

    The queries are the last T of S positions (as when decoding with a key/value
    cache); for T == S this is the usual upper triangle above the diagonal.

    >>> causal_mask(2, 3).tolist()
    [[False, False, True], [False, False, False]]
    """
    S = T if S is None else S
    return np.arange(S)[None, :] > np.arange(T)[:, None] + (S - T)


def masked_softmax(scores: object, blocked: object | None = None, axis: int = -1) -> object:
    """softmax over `axis` that ignores blocked entries (bool, True = ignore) and scores
    of -inf; a row with nothing left gives all zeros instead of NaN (0/0).

    >>> masked_softmax(np.array([[0.0, 0.0], [1.0, 2.0]]), np.array([True, False])).tolist()
    [[0.0, 1.0], [0.0, 1.0]]
    >>> masked_softmax(np.array([0.0, 1.0]), np.array([True, True])).tolist()
    [0.0, 0.0]
    """
    if blocked is not None:
        scores = F.where(blocked, -np.inf, scores)
    m = F.stop_gradient(F.max(scores, axis=axis, keepdims=True))
    # a row that is all -inf has max -inf, and -inf - -inf is NaN: shift such rows by 0
    m = F.where(F.less(F.abs(m), np.inf), m, 0.0)
    e = F.exp(F.sub(scores, m))
    total = F.sum(e, axis=axis, keepdims=True)
    return F.div(e, F.where(F.greater(total, 0.0), total, 1.0))


class MultiHeadAttention(Module):
    """Multi-head attention, as torch.nn.MultiheadAttention with separate projections.

    `mha(params, query, key=None, value=None, *, attn_mask=None, key_padding_mask=None,
    is_causal=False, rng=None, training=False)`; see `__call__`. Sub-layers (Linear,
    PyTorch layout [out, in]): `w_q` [E, E], `w_k` [E, kdim], `w_v` [E, vdim], `w_o`
    [E, E]. Moving
    weights from PyTorch: `in_proj_weight` splits into w_q, w_k, w_v along dim 0 (and
    `in_proj_bias` likewise), `out_proj` is w_o.

    Initialised as PyTorch: the q/k/v weights Xavier-uniform (over the packed [3E, E]
    matrix when kdim == vdim == E, so each draws U(±sqrt(6 / 4E)); separately
    otherwise), their biases zero; w_o.weight U(±1/sqrt(E)), w_o.bias zero.

    Differences from PyTorch:

    - `batch_first=True` is the default (PyTorch: False).
    - Called as `mha(params, query)` for self-attention (key and value default to
      the query); the result is the output alone unless `need_weights=True`
      (PyTorch: always a pair, and need_weights=True by default).
    - Weights come back per head, [B, H, T, S] (`average_attn_weights=False`;
      PyTorch averages over heads by default).
    - `is_causal=True` applies the causal mask itself (PyTorch's MultiheadAttention
      treats it as a hint and needs attn_mask too). With T != S the queries are the
      last T of the S positions (bottom-right alignment, as for decoding with a
      key/value cache); PyTorch's scaled_dot_product_attention aligns top-left.
    - A query whose every key is masked gets zero attention weights, so its
      attention output is 0 and its final output is `w_o.bias` (PyTorch: NaN).
    - Dropout is off unless `training=True` (layers here have no train mode) and
      then needs a random key, `rng=` (the layer protocol calls it `key=`, but
      here `key` is PyTorch's name for the key sequence).
    - No `add_bias_kv`, `add_zero_attn`.

    >>> import pyasg, numpy as np
    >>> mha = MultiHeadAttention(8, 2, kdim=3, vdim=3)
    >>> p = mha.init(pyasg.random.key(0))
    >>> q, kv = np.ones((1, 4, 8), np.float32), np.ones((1, 6, 3), np.float32)
    >>> out, w = mha(p, q, kv, kv, need_weights=True)
    >>> out.shape, w.shape
    ((1, 4, 8), (1, 2, 4, 6))
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 kdim: int | None = None, vdim: int | None = None, batch_first: bool = True,
                 dtype: str = "float32") -> None:
        who = "MultiHeadAttention"
        embed_dim = checks.size(embed_dim, who, "embed_dim", "[1, inf)")
        num_heads = checks.size(num_heads, who, "num_heads", "[1, inf)")
        if embed_dim % num_heads:
            raise checks.ArgumentError(f"{who}: embed_dim {embed_dim} must be a multiple of "
                                       f"num_heads {num_heads}")
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.head_dim = embed_dim // num_heads
        self.kdim = checks.size(kdim, who, "kdim", "[1, inf)", none=True) or embed_dim
        self.vdim = checks.size(vdim, who, "vdim", "[1, inf)", none=True) or embed_dim
        self.dropout = checks.real(dropout, who, "dropout", "[0, 1]")
        self.bias = checks.flag(bias, who, "bias")
        self.batch_first = checks.flag(batch_first, who, "batch_first")
        self.dtype = checks.float_dtype(dtype, who)
        self.w_q = Linear(embed_dim, embed_dim, bias, dtype)
        self.w_k = Linear(self.kdim, embed_dim, bias, dtype)
        self.w_v = Linear(self.vdim, embed_dim, bias, dtype)
        self.w_o = Linear(embed_dim, embed_dim, bias, dtype)

    def children(self) -> dict[str, Module]:
        return {"w_q": self.w_q, "w_k": self.w_k, "w_v": self.w_v, "w_o": self.w_o}

    def init(self, key: object) -> dict:
        k_q, k_k, k_v, k_o = random.split(key, 4)
        E, dtype = self.embed_dim, self.dtype
        packed = self.kdim == E and self.vdim == E

        def projection(k: object, in_dim: int) -> dict:
            # PyTorch draws one Xavier matrix [3E, E] when it can pack q, k, v together
            if packed:
                bound = math.sqrt(6.0 / (E + 3 * E))
                weight = init.uniform(k, (E, in_dim), -bound, bound, dtype)
            else:
                weight = init.xavier_uniform(k, (E, in_dim), dtype=dtype)
            return {"weight": weight, "bias": init.zeros((E,), dtype)} if self.bias \
                else {"weight": weight}

        out = self.w_o.init(k_o)
        if self.bias:
            out["bias"] = init.zeros((E,), dtype)  # PyTorch zeroes out_proj.bias
        return {"w_q": projection(k_q, E), "w_k": projection(k_k, self.kdim),
                "w_v": projection(k_v, self.vdim), "w_o": out}

    def __call__(self, params: dict, query: object, key: object = None, value: object = None,
                 *, attn_mask: object = None, key_padding_mask: object = None,
                 is_causal: bool = False, rng: object = None, training: bool = False,
                 need_weights: bool = False, average_attn_weights: bool = False,
                 position_bias: object = None, rope: Any = None) -> Any:
        """Attend from `query` to `key`/`value`; returns out, or (out, weights).

        - query [B, T, E]; key [B, S, kdim] and value [B, S, vdim] (both default to
          query: self-attention). With batch_first=False: [T, B, E] and [S, B, ·].
          Unbatched [T, E] / [S, ·] inputs work too (masks then without B).
        - attn_mask: bool, True = may NOT attend (PyTorch's bool convention), or float,
          added to the scores (use -inf to block). Shapes: [T, S], [B*H, T, S]
          (PyTorch's), or 4-d broadcastable to [B, H, T, S].
        - key_padding_mask: [B, S], bool True = padding (that key is ignored), or
          float, added to the scores.
        - is_causal: block keys after the query's position (see `causal_mask`).
        - position_bias: [H, T, S] (or broadcastable to [B, H, T, S]) added to the
          scores, e.g. `ALiBi(H).bias(T, S)` or a learned relative bias.
        - rope: a `RoPE` (anything with `rotate(x, offset)`) applied to each head's
          queries and keys; keys sit at positions 0..S-1, queries at S-T..S-1.
        - training, rng: dropout on the attention weights with probability
          `self.dropout`, its mask drawn from the random key `rng`.
        - need_weights: also return the weights [B, H, T, S] (after dropout, as
          PyTorch), or [B, T, S] averaged over heads with average_attn_weights.
        """
        value = (query if key is None else key) if value is None else value
        key = query if key is None else key
        unbatched = F.type_of(query).ndim == 2
        if unbatched:
            query, key, value = (F.expand_dims(t, 0) for t in (query, key, value))
            if key_padding_mask is not None:
                key_padding_mask = F.expand_dims(key_padding_mask, 0)
        elif not self.batch_first:
            query, key, value = (F.swapaxes(t, 0, 1) for t in (query, key, value))
        self._check_inputs(query, key, value)
        B, T, _ = F.type_of(query).shape
        S = F.type_of(key).shape[1]
        H, D = self.num_heads, self.head_dim

        fused = self.fused(need_weights, training)
        # the fused primitive reads the heads as [B, L, H, D], a mere reshape of the
        # projections ("bthd"); RoPE and the composite take [B, H, L, D] ("bhtd")
        layout = "bthd" if fused and rope is None else "bhtd"
        q = self._heads(self.w_q(params["w_q"], query), B, T, layout)
        k = self._heads(self.w_k(params["w_k"], key), B, S, layout)
        v = self._heads(self.w_v(params["w_v"], value), B, S, layout)
        if rope is not None:
            if T > S:
                raise ShapeError(f"RoPE in attention places the {T} queries at the last of "
                                 f"the {S} key positions, so it needs T <= S")
            q, k = rope.rotate(q, offset=S - T), rope.rotate(k, offset=0)

        blocked, additive = [], []
        for mask, what in ((attn_mask, "attn_mask"), (key_padding_mask, "key_padding_mask")):
            if mask is not None:
                mask = self._mask_4d(mask, what, B, T, S)
                (blocked if F.type_of(mask).dtype == "bool" else additive).append(mask)
        if position_bias is not None:
            additive.append(self._mask_4d(position_bias, "position_bias", B, T, S))
        block = None
        for mask in blocked:
            block = mask if block is None else F.logical_or(block, mask)

        weights = None
        if fused:
            # the fused primitive (on wgpu no [B, H, T, S] array is ever written); every
            # mask joins one additive bias, a bool one as -inf where it blocks
            if block is not None:
                additive.append(F.where(block, -np.inf, 0.0))
            bias = None
            for b in additive:
                b = F.astype(b, F.type_of(q).dtype)
                bias = b if bias is None else F.add(bias, b)
            heads = F.scaled_dot_product_attention(q, k, v, bias, is_causal=is_causal,
                                                   scale=1.0 / math.sqrt(D), layout=layout)
        else:
            weights = self._weights(q, k, additive, block, is_causal, rng, training)
            heads = F.matmul(weights, v)  # [B, H, T, D]
        if layout == "bhtd":
            heads = F.transpose(heads, (0, 2, 1, 3))
        joined = F.reshape(heads, (B, T, H * D))
        out = self.w_o(params["w_o"], joined)
        if unbatched:
            out = F.squeeze(out, 0)
            weights = None if weights is None else F.squeeze(weights, 0)
        elif not self.batch_first:
            out = F.swapaxes(out, 0, 1)
        if not need_weights:
            return out
        return out, (F.mean(weights, axis=-3) if average_attn_weights else weights)

    def fused(self, need_weights: bool, training: bool) -> bool:
        """Whether a call runs the fused primitive `scaled_dot_product_attention` (on wgpu
        flash kernels that never write the [B, H, T, S] weights): whenever the weights
        themselves are not needed, neither returned (`need_weights`) nor dropped out
        (`training` with dropout > 0). Otherwise the composite softmax(q kᵀ / sqrt(D) +
        bias) v runs, as PyTorch's MultiheadAttention keeps its fast path to
        need_weights=False. Both give the same values and gradients.

        >>> MultiHeadAttention(8, 2, dropout=0.1).fused(need_weights=False, training=True)
        False
        """
        return not need_weights and not (training and self.dropout > 0.0)

    # ------------------------------------------------------------------ helpers

    def _weights(self, q: object, k: object, additive: list, block: object, is_causal: bool,
                 rng: object, training: bool) -> object:
        """The attention weights [B, H, T, S] as a composite (softmax, then dropout)."""
        B, H, T, D = F.type_of(q).shape
        S = F.type_of(k).shape[2]
        scores = F.mul(F.matmul(q, F.swapaxes(k, -1, -2)), 1.0 / math.sqrt(D))  # [B,H,T,S]
        dtype = F.type_of(scores).dtype
        for bias in additive:
            scores = F.add(scores, F.astype(bias, dtype))
        if is_causal:
            causal = causal_mask(T, S)
            block = causal if block is None else F.logical_or(block, causal)
        if S == 0:  # no keys at all: every query is fully masked, and max() needs one
            weights = F.full((B, H, T, 0), 0.0, dtype, like=scores)
        else:
            weights = masked_softmax(scores, block)
        if training and self.dropout > 0.0:
            if rng is None:
                raise PyasgError("MultiHeadAttention with dropout in training mode needs a "
                                 "random key: rng=… (pyasg.random.key)")
            weights = random.dropout(weights, self.dropout, rng, training=True)
        return weights

    def _heads(self, x: object, B: int, L: int, layout: str) -> object:
        """[B, L, E] -> [B, L, H, D] ("bthd") or [B, H, L, D] ("bhtd")."""
        x = F.reshape(x, (B, L, self.num_heads, self.head_dim))
        return x if layout == "bthd" else F.transpose(x, (0, 2, 1, 3))

    def _check_inputs(self, query: object, key: object, value: object) -> None:
        tq, tk, tv = (F.type_of(t) for t in (query, key, value))
        want = ((tq, self.embed_dim, "query"), (tk, self.kdim, "key"), (tv, self.vdim, "value"))
        for t, dim, name in want:
            if t.ndim != 3 or t.shape[-1] != dim:
                raise ShapeError(f"MultiHeadAttention: {name} must be [batch, length, {dim}] "
                                 f"(batch_first={self.batch_first}), got {t!r}")
            if not is_float(t.dtype):
                raise ShapeError(f"MultiHeadAttention: {name} must be float, got {t!r}")
        if tk.shape[:2] != tv.shape[:2] or tk.shape[0] != tq.shape[0]:
            raise ShapeError(f"MultiHeadAttention: query {tq!r}, key {tk!r} and value {tv!r} "
                             f"need one batch size, and key and value one length")

    def _mask_4d(self, mask: object, what: str, B: int, T: int, S: int) -> object:
        """A mask or bias as an array that broadcasts against the scores [B, H, T, S]."""
        t = F.type_of(mask)
        H = self.num_heads
        if t.dtype != "bool" and not is_float(t.dtype):
            raise ShapeError(f"MultiHeadAttention: {what} must be bool (True = blocked) or "
                             f"float (added to the scores), got {t!r}")
        if what == "key_padding_mask":
            if t.shape != (B, S):
                raise ShapeError(f"MultiHeadAttention: key_padding_mask must be [batch, "
                                 f"source length] = [{B}, {S}], got {t!r}")
            return F.reshape(mask, (B, 1, 1, S))
        if t.ndim == 2 and t.shape == (T, S):
            return mask
        if t.ndim == 3 and what == "attn_mask" and t.shape == (B * H, T, S):
            return F.reshape(mask, (B, H, T, S))  # PyTorch's [batch * heads, T, S]
        if t.ndim == 3 and what == "position_bias" and t.shape == (H, T, S):
            return mask
        if t.ndim == 4 and all(d in (1, n) for d, n in zip(t.shape, (B, H, T, S))):
            return mask
        shapes = f"[{T}, {S}], [{B * H}, {T}, {S}]" if what == "attn_mask" else \
            f"[{H}, {T}, {S}]"
        raise ShapeError(f"MultiHeadAttention: {what} must be {shapes}, or 4-d broadcastable "
                         f"to [B, H, T, S] = [{B}, {H}, {T}, {S}]; got {t!r}")


register_roles("MultiHeadAttention", {
    "w_q": "query projection: maps each position to what it is looking for, one slice "
           "per head",
    "w_k": "key projection: maps each position to what it offers; a query's dot product "
           "with a key scores how well they match",
    "w_v": "value projection: maps each position to the content that is mixed into the "
           "output, weighted by the attention scores",
    "w_o": "output projection: mixes the joined heads back into the model width",
})
