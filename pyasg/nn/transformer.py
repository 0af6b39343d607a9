"""The transformer's position-wise feed-forward layer and its block (pre-LN or post-LN).

>>> import pyasg, numpy as np
>>> block = TransformerBlock(embed_dim=8, num_heads=2, causal=True)
>>> params = block.init(pyasg.random.key(0))
>>> sorted(params), sorted(params["ff"])
(['attn', 'ff', 'norm1', 'norm2'], ['fc1', 'fc2'])
>>> block(params, np.ones((3, 5, 8), np.float32)).shape
(3, 5, 8)
>>> block.param_kinds()["attn.w_q.weight"], block.param_kinds()["ff.fc1.bias"]
('Linear.weight', 'Linear.bias')
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pyasg.array import functional as F
from pyasg.array import random
from pyasg.errors import PyasgError
from pyasg.nn import checks
from pyasg.nn.attention import MultiHeadAttention
from pyasg.nn.layers import Dropout, LayerNorm, Linear
from pyasg.nn.module import Module, register_roles

ACTIVATIONS: dict[str, Callable[[object], object]] = {
    "gelu": F.gelu,  # the exact erf form, as PyTorch's default
    "gelu_tanh": lambda x: F.gelu(x, approximate=True),
    "relu": F.relu,
    "silu": F.silu,
}


def _dropout_key(key: object, rng: object, who: str, needed: bool) -> object:
    """The layer protocol's `key=`; `rng=` is accepted too, as MultiHeadAttention's name."""
    if key is not None and rng is not None:
        raise PyasgError(f"{who}: pass the dropout key once, as key=… or rng=…")
    key = rng if key is None else key
    if needed and key is None:
        raise PyasgError(f"{who} with dropout in training mode needs key=… "
                         f"(pyasg.random.key)")
    return key


def _activation(activation: object, who: str) -> str | Callable[[object], object]:
    """A name of `ACTIVATIONS`, or a function of one array."""
    if isinstance(activation, str):
        if activation not in ACTIVATIONS:
            raise checks.ArgumentError(f"{who}: unknown activation {checks.quote(activation)}; "
                                       f"choose one of {sorted(ACTIVATIONS)} or pass a "
                                       f"function")
        return activation
    return checks.function(activation, who, "activation (a name or a function)")


class FeedForward(Module):
    """fc2(dropout(activation(fc1(x)))): Linear(E, hidden), activation, Linear(hidden, E).

    Sub-layers are named `fc1` and `fc2` (paths `ff.fc1.weight`, …). PyTorch has no
    separate class for this; its TransformerEncoderLayer calls them linear1 and
    linear2 and computes the same, with dropout after the activation.
    `activation` is "gelu" (exact, the default), "gelu_tanh", "relu", "silu", or any
    function of one array. `hidden_dim` defaults to 4 * embed_dim.

    >>> import pyasg, numpy as np
    >>> ff = FeedForward(4, activation="relu")
    >>> p = ff.init(pyasg.random.key(0))
    >>> p["fc1"]["weight"].shape, ff(p, np.ones((2, 4), np.float32)).shape
    ((16, 4), (2, 4))
    """

    def __init__(self, embed_dim: int, hidden_dim: int | None = None,
                 activation: str | Callable[[object], object] = "gelu", dropout: float = 0.0,
                 bias: bool = True, dtype: str = "float32") -> None:
        self.embed_dim = checks.size(embed_dim, "FeedForward", "embed_dim", "[1, inf)")
        self.hidden_dim = 4 * self.embed_dim if hidden_dim is None else checks.size(
            hidden_dim, "FeedForward", "hidden_dim", "[1, inf)")
        self.activation = _activation(activation, "FeedForward")
        self.dropout = checks.real(dropout, "FeedForward", "dropout", "[0, 1]")
        bias = checks.flag(bias, "FeedForward", "bias")
        dtype = checks.float_dtype(dtype, "FeedForward")
        self.fc1 = Linear(self.embed_dim, self.hidden_dim, bias, dtype)
        self.fc2 = Linear(self.hidden_dim, self.embed_dim, bias, dtype)
        self._drop = Dropout(self.dropout)

    def children(self) -> dict[str, Module]:
        return {"fc1": self.fc1, "fc2": self.fc2}

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return {}  # all in fc1 and fc2

    def init(self, key: object) -> dict:
        k1, k2 = random.split(key)
        return {"fc1": self.fc1.init(k1), "fc2": self.fc2.init(k2)}

    def __call__(self, params: dict, x: object, *, key: object = None, rng: object = None,
                 training: bool = False) -> object:
        """Apply the layer; dropout only when `training` (its mask from `key`)."""
        act = self.activation
        fn = ACTIVATIONS[act] if isinstance(act, str) else act
        h = fn(self.fc1(params["fc1"], x))
        drop = training and self.dropout > 0.0
        key = _dropout_key(key, rng, "FeedForward", drop)
        if drop:
            h = self._drop({}, h, key=key, training=True)
        return self.fc2(params["fc2"], h)


class TransformerBlock(Module):
    """A transformer block, pre-LN by default: x = x + attn(norm1(x)), then
    x = x + ff(norm2(x)).

    `norm_first=True` (the default, pyasg's behaviour all along) is that pre-LN
    block; `norm_first=False` is PyTorch's default post-LN one, each norm after its
    residual add: x = norm1(x + attn(x)), then x = norm2(x + ff(x)). Sub-layers:
    `norm1` (LayerNorm), `attn` (MultiHeadAttention), `norm2`, `ff` (FeedForward
    with `fc1`, `fc2`), the same in both. With dropout p, as PyTorch's
    TransformerEncoderLayer: p on the attention weights, inside ff after the
    activation, and on each branch before its residual add.

    Differences from torch.nn.TransformerEncoderLayer(d_model, nhead, ...):
    normalisation comes first unless norm_first=False (PyTorch defaults to False),
    `ff_hidden` defaults to 4 * embed_dim (PyTorch: dim_feedforward=2048), dropout
    to 0.0 (PyTorch: 0.1), activation to "gelu" (PyTorch: relu), batch_first
    always; its self_attn/linear1/linear2 are attn/ff.fc1/ff.fc2 here
    (`pyasg.io.from_torch_state_dict` renames them). `causal=True` makes every call
    causal (as passing is_causal=True).

    Call as `block(params, x, attn_mask=…, key_padding_mask=…, is_causal=…,
    position_bias=…, rope=…, key=…, training=…)`; the masks and `rope` go to the
    attention (see MultiHeadAttention), `key` (alias `rng`) is split between the
    dropouts.

    >>> import pyasg, numpy as np
    >>> block = TransformerBlock(8, 2, dropout=0.1)
    >>> p = block.init(pyasg.random.key(0))
    >>> x = np.ones((2, 3, 8), np.float32)
    >>> block(p, x, key=pyasg.random.key(1), training=True).shape
    (2, 3, 8)
    >>> post = TransformerBlock(8, 2, norm_first=False)  # PyTorch's default layout
    >>> float(abs(post(p, x).mean(axis=-1)).max()) < 1e-5  # it ends in norm2 (bias 0)
    True
    """

    def __init__(self, embed_dim: int, num_heads: int, ff_hidden: int | None = None,
                 dropout: float = 0.0, activation: str | Callable[[object], object] = "gelu",
                 causal: bool = False, eps: float = 1e-5, bias: bool = True,
                 dtype: str = "float32", norm_first: bool = True) -> None:
        kind = "TransformerBlock"
        self.embed_dim = checks.size(embed_dim, kind, "embed_dim", "[1, inf)")
        self.num_heads = checks.size(num_heads, kind, "num_heads", "[1, inf)")
        if self.embed_dim % self.num_heads:
            raise checks.ArgumentError(f"{kind}: embed_dim {self.embed_dim} must be a multiple "
                                       f"of num_heads {self.num_heads}")
        ff_hidden = checks.size(ff_hidden, kind, "ff_hidden", "[1, inf)", none=True)
        self.dropout = checks.real(dropout, kind, "dropout", "[0, 1]")
        activation = _activation(activation, kind)
        self.causal = checks.flag(causal, kind, "causal")
        self.norm_first = checks.flag(norm_first, kind, "norm_first")
        self.eps = checks.real(eps, kind, "eps", "[0, inf)")
        bias = checks.flag(bias, kind, "bias")
        dtype = checks.float_dtype(dtype, kind)
        self.norm1 = LayerNorm(self.embed_dim, eps, dtype=dtype)
        self.attn = MultiHeadAttention(self.embed_dim, self.num_heads, self.dropout, bias,
                                       dtype=dtype)
        self.norm2 = LayerNorm(self.embed_dim, eps, dtype=dtype)
        self.ff = FeedForward(self.embed_dim, ff_hidden, activation, self.dropout, bias, dtype)
        self._drop = Dropout(self.dropout)

    def children(self) -> dict[str, Module]:
        return {"norm1": self.norm1, "attn": self.attn, "norm2": self.norm2, "ff": self.ff}

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return {}  # all in its sub-layers

    def init(self, key: object) -> dict:
        keys = random.split(key, 4)
        return {name: layer.init(k) for (name, layer), k in zip(self.children().items(), keys)}

    def __call__(self, params: dict, x: object, *, attn_mask: object = None,
                 key_padding_mask: object = None, is_causal: bool = False,
                 position_bias: object = None, rope: Any = None, key: object = None,
                 rng: object = None, training: bool = False) -> object:
        """Apply the block to x [B, T, E]; dropout only when `training`."""
        drop = training and self.dropout > 0.0
        key = _dropout_key(key, rng, "TransformerBlock", drop)
        # index, not unpack: iterating over a traced key is not allowed
        keys = random.split(key, 4) if drop else None
        k_attn, k_res1, k_ff, k_res2 = (keys[i] if drop else None for i in range(4))

        def attention(h: object) -> object:
            h = self.attn(params["attn"], h, attn_mask=attn_mask,
                          key_padding_mask=key_padding_mask,
                          is_causal=self.causal or is_causal, position_bias=position_bias,
                          rope=rope, rng=k_attn, training=drop)
            return self._drop({}, h, key=k_res1, training=True) if drop else h

        def feed_forward(h: object) -> object:
            h = self.ff(params["ff"], h, key=k_ff, training=drop)
            return self._drop({}, h, key=k_res2, training=True) if drop else h

        p1, p2 = params["norm1"], params["norm2"]
        if self.norm_first:  # pre-LN: each branch reads a normalised copy
            x = F.add(x, attention(self.norm1(p1, x)))
            return F.add(x, feed_forward(self.norm2(p2, x)))
        # post-LN (PyTorch's default): each residual sum is normalised
        x = self.norm1(p1, F.add(x, attention(x)))
        return self.norm2(p2, F.add(x, feed_forward(x)))


register_roles("FeedForward", {
    "fc1": "first feed-forward layer: widens each position to the hidden size, before "
           "the activation",
    "fc2": "second feed-forward layer: brings the activated hidden features back to the "
           "model width",
})
register_roles("TransformerBlock", {
    "norm1": "layer norm before attention (pre-LN, the default; after its residual add "
             "with norm_first=False): keeps the activations at unit scale",
    "attn": "self-attention: each position gathers information from the others",
    "norm2": "layer norm before the feed-forward layer (pre-LN, the default; after its "
             "residual add with norm_first=False)",
    "ff": "feed-forward layer: transforms each position on its own",
})
