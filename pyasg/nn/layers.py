"""Basic layers: Linear, LayerNorm, Dropout (PyTorch names, layouts and defaults).

>>> import pyasg, numpy as np
>>> layer = Linear(3, 2)
>>> params = layer.init(pyasg.random.key(0))
>>> {k: v.shape for k, v in params.items()}
{'weight': (2, 3), 'bias': (2,)}
>>> layer(params, np.ones((4, 3), np.float32)).shape
(4, 2)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pyasg.array import functional as F
from pyasg.array import random
from pyasg.errors import PyasgError
from pyasg.nn import checks, init
from pyasg.nn.module import Module, register_roles


class Linear(Module):
    """y = x @ weight.T + bias; weight [out_features, in_features].

    Initialised as torch.nn.Linear: weight and bias U(-1/sqrt(in), 1/sqrt(in)).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 dtype: str = "float32") -> None:
        self.in_features = checks.size(in_features, "Linear", "in_features")
        self.out_features = checks.size(out_features, "Linear", "out_features")
        self.bias = checks.flag(bias, "Linear", "bias")
        self.dtype = checks.float_dtype(dtype, "Linear")

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        shapes = {"weight": (self.out_features, self.in_features)}
        return {**shapes, "bias": (self.out_features,)} if self.bias else shapes

    def init(self, key: object) -> dict:
        keys = random.split(key)
        k_w, k_b = keys[0], keys[1]
        bound = 1.0 / math.sqrt(self.in_features) if self.in_features else 0.0
        params = {"weight": init.uniform(k_w, (self.out_features, self.in_features),
                                         -bound, bound, self.dtype)}
        if self.bias:
            params["bias"] = init.uniform(k_b, (self.out_features,), -bound, bound, self.dtype)
        return params

    def __call__(self, params: dict, x: object) -> object:
        return F.linear(x, params["weight"], params.get("bias"))


class LayerNorm(Module):
    """Normalise over the last len(normalized_shape) axes, then scale by weight (γ) and
    shift by bias (β), as torch.nn.LayerNorm."""

    def __init__(self, normalized_shape: int | Sequence[int], eps: float = 1e-5,
                 elementwise_affine: bool = True, bias: bool = True,
                 dtype: str = "float32") -> None:
        self.normalized_shape = checks.ints(normalized_shape, "LayerNorm", "normalized_shape",
                                            empty=False)
        self.eps = checks.real(eps, "LayerNorm", "eps", "[0, inf)")
        self.elementwise_affine = checks.flag(elementwise_affine, "LayerNorm",
                                              "elementwise_affine")
        self.bias = checks.flag(bias, "LayerNorm", "bias")
        self.dtype = checks.float_dtype(dtype, "LayerNorm")

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        if not self.elementwise_affine:
            return {}
        names = ("weight", "bias") if self.bias else ("weight",)
        return {name: self.normalized_shape for name in names}

    def init(self, key: object) -> dict:
        if not self.elementwise_affine:
            return {}
        params = {"weight": init.ones(self.normalized_shape, self.dtype)}
        if self.bias:
            params["bias"] = init.zeros(self.normalized_shape, self.dtype)
        return params

    def __call__(self, params: dict, x: object) -> object:
        n = len(self.normalized_shape)
        if F.type_of(x).shape[-n:] != self.normalized_shape:
            raise PyasgError(f"LayerNorm{list(self.normalized_shape)} got input "
                             f"{F.type_of(x)!r}")
        axes = tuple(range(-n, 0))
        return F.layer_norm(x, axes, self.eps, params.get("weight"), params.get("bias"))


class Dropout(Module):
    """Zero elements with probability p and scale the rest by 1/(1-p) when training.

    Call as `layer(params, x, key=key, training=True)`; `training=False` is the identity.
    """

    def __init__(self, p: float = 0.5) -> None:
        self.p = checks.real(p, type(self).kind, "p (the dropout probability)", "[0, 1]")

    def check_key(self, key: object, training: bool) -> None:
        if training and self.p > 0.0 and key is None:
            raise PyasgError(f"{self.kind} in training mode needs key=… (pyasg.random.key)")

    def __call__(self, params: dict, x: object, key: object = None,
                 training: bool = True) -> object:
        self.check_key(key, training)
        return random.dropout(x, self.p, key, training)


register_roles("Linear", {"weight": "weight matrix [out, in]: maps inputs to outputs",
                          "bias": "bias: a learned offset per output"})
register_roles("LayerNorm", {"weight": "scale γ: per-feature gain after normalising",
                             "bias": "shift β: per-feature offset after normalising"})
