"""Embedding, spatial dropout, Flatten, activation modules and Sequential (PyTorch names).

>>> import pyasg, numpy as np
>>> from pyasg.nn.layers import Dropout, Linear
>>> model = Sequential(Linear(4, 8), ReLU(), Linear(8, 2))
>>> params = model.init(pyasg.random.key(0))
>>> {name: list(p) for name, p in params.items()}  # PyTorch's "0.weight", "2.bias", ...
{'0': ['weight', 'bias'], '2': ['weight', 'bias']}
>>> model(params, np.ones((3, 4), np.float32)).shape
(3, 2)
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Mapping

import numpy as np

from pyasg.array import functional as F
from pyasg.array import random
from pyasg.asg.types import INT_DTYPES
from pyasg.errors import PyasgError, ShapeError
from pyasg.nn import checks, init
from pyasg.nn.layers import Dropout
from pyasg.nn.module import Module, register_roles
from pyasg.nn.params import check_state
from pyasg.trace.tracer import Tracer

# --------------------------------------------------------------------------- Embedding


class Embedding(Module):
    """A lookup table: integer ids of any shape -> rows of weight [num_embeddings, dim].

    As torch.nn.Embedding: weight is N(0, 1), the row at `padding_idx` (negative
    counts from the end) starts at zero and gets no gradient; repeated ids add
    their gradients. PyTorch's max_norm, scale_grad_by_freq and sparse are not
    supported.

    >>> import pyasg, numpy as np
    >>> emb = Embedding(10, 3, padding_idx=0)
    >>> params = emb.init(pyasg.random.key(0))
    >>> emb(params, np.array([[0, 4], [4, 9]])).shape
    (2, 2, 3)
    >>> params["weight"][0].tolist()
    [0.0, 0.0, 0.0]
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 dtype: str = "float32") -> None:
        self.num_embeddings = checks.size(num_embeddings, "Embedding", "num_embeddings")
        self.embedding_dim = checks.size(embedding_dim, "Embedding", "embedding_dim")
        padding_idx = checks.integer(padding_idx, "Embedding", "padding_idx", none=True)
        if padding_idx is not None:
            if not -self.num_embeddings <= padding_idx < self.num_embeddings:
                raise PyasgError(f"Embedding: padding_idx {padding_idx} must be within "
                                 f"num_embeddings ({self.num_embeddings})")
            padding_idx %= self.num_embeddings  # PyTorch stores it >= 0
        self.padding_idx = padding_idx
        self.dtype = checks.float_dtype(dtype, "Embedding")

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"weight": (self.num_embeddings, self.embedding_dim)}

    def init(self, key: object) -> dict:
        weight = init.normal(key, (self.num_embeddings, self.embedding_dim), dtype=self.dtype)
        if self.padding_idx is not None:
            weight[self.padding_idx] = 0.0
        return {"weight": weight}

    def __call__(self, params: dict, ids: object) -> object:
        t = F.type_of(ids)
        if t.dtype not in INT_DTYPES:
            raise ShapeError(f"Embedding: ids must be integers, got {t!r}")
        if not isinstance(ids, Tracer):
            # concrete ids can be checked now (a traced value cannot be, without a sync)
            ids_np = np.asarray(ids)
            if ids_np.size and not (0 <= ids_np.min() and ids_np.max() < self.num_embeddings):
                raise PyasgError(f"Embedding({self.num_embeddings}, …): ids must be in "
                                 f"[0, {self.num_embeddings}), got {ids_np.min()}..{ids_np.max()}")
        return F.embedding(ids, params["weight"], self.padding_idx)


# --------------------------------------------------------------------------- dropout, shape


class SpatialDropout(Dropout):
    """Drop whole channels: each (sample, channel) of [N, C, H, W] (or [N, C, L]) input is
    zeroed with probability p, the rest scaled by 1/(1-p); torch.nn.Dropout2d.

    Call as `layer(params, x, key=key, training=True)`, like Dropout; the same key gives
    the same mask; `training=False` is the identity.

    >>> import pyasg, numpy as np
    >>> y = SpatialDropout(0.5)({}, np.ones((1, 4, 2, 2)), key=pyasg.random.key(1))
    >>> sorted(set(y.ravel().tolist())) in ([0.0, 2.0], [0.0], [2.0])
    True
    """

    def __call__(self, params: dict, x: object, key: object = None,
                 training: bool = True) -> object:
        if F.type_of(x).ndim not in (3, 4):
            raise ShapeError(f"SpatialDropout: input must be [N, C, H, W] or [N, C, L], got "
                             f"{F.type_of(x)!r}")
        self.check_key(key, training)
        return random.dropout2d(x, self.p, key, training)


Dropout2d = SpatialDropout


class Flatten(Module):
    """Merge axes start_dim..end_dim into one, as torch.nn.Flatten (defaults 1 and -1,
    so [N, C, H, W] -> [N, C*H*W]).

    >>> import numpy as np
    >>> Flatten()({}, np.zeros((2, 3, 4, 5))).shape, Flatten(0, 1)({}, np.zeros((2, 3, 4))).shape
    ((2, 60), (6, 4))
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        self.start_dim = checks.integer(start_dim, "Flatten", "start_dim")
        self.end_dim = checks.integer(end_dim, "Flatten", "end_dim")

    def __call__(self, params: dict, x: object) -> object:
        shape = F.type_of(x).shape
        n = max(len(shape), 1)
        if not (-n <= self.start_dim < n and -n <= self.end_dim < n):
            raise ShapeError(f"Flatten({self.start_dim}, {self.end_dim}) is out of range for "
                             f"input {F.type_of(x)!r}")
        start, end = self.start_dim % n, self.end_dim % n
        if start > end:
            raise ShapeError(f"Flatten: start_dim {self.start_dim} comes after end_dim "
                             f"{self.end_dim} for input {F.type_of(x)!r}")
        return F.reshape(x, shape[:start] + (-1,) + shape[end + 1:])


class Identity(Module):
    """Returns its input, as torch.nn.Identity."""

    def __call__(self, params: dict, x: object) -> object:
        return x


# --------------------------------------------------------------------------- activations


class ReLU(Module):
    """max(x, 0)."""

    def __call__(self, params: dict, x: object) -> object:
        return F.relu(x)


class GELU(Module):
    """Gaussian error linear unit; `approximate` is PyTorch's "none" (exact, erf) or
    "tanh" (also accepted: False / True, as in `pyasg.functional.gelu`)."""

    def __init__(self, approximate: str | bool = "none") -> None:
        approximate = checks.choice(approximate, "GELU", "approximate",
                                    ("none", "tanh", False, True))
        self.approximate = {False: "none", True: "tanh"}.get(approximate, approximate)

    def __call__(self, params: dict, x: object) -> object:
        return F.gelu(x, approximate=self.approximate == "tanh")


class SiLU(Module):
    """x * sigmoid(x)."""

    def __call__(self, params: dict, x: object) -> object:
        return F.silu(x)


class Sigmoid(Module):
    """1 / (1 + exp(-x))."""

    def __call__(self, params: dict, x: object) -> object:
        return F.sigmoid(x)


class Tanh(Module):
    """tanh(x)."""

    def __call__(self, params: dict, x: object) -> object:
        return F.tanh(x)


class LeakyReLU(Module):
    """x where x > 0, else negative_slope * x (PyTorch's default 0.01)."""

    def __init__(self, negative_slope: float = 0.01) -> None:
        self.negative_slope = checks.real(negative_slope, "LeakyReLU", "negative_slope")

    def __call__(self, params: dict, x: object) -> object:
        return F.leaky_relu(x, self.negative_slope)


class ELU(Module):
    """x where x > 0, else alpha * (exp(x) - 1)."""

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = checks.real(alpha, "ELU", "alpha")

    def __call__(self, params: dict, x: object) -> object:
        return F.elu(x, self.alpha)


class Softplus(Module):
    """log(1 + exp(beta x)) / beta, linear where beta x > threshold (PyTorch's)."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        self.beta = checks.real(beta, "Softplus", "beta")
        if self.beta == 0.0:  # log(1 + exp(0 x)) / 0
            raise checks.ArgumentError("Softplus: beta must not be 0 (it divides)")
        self.threshold = checks.real(threshold, "Softplus", "threshold", "[-inf, inf]")

    def __call__(self, params: dict, x: object) -> object:
        return F.softplus(x, self.beta, self.threshold)


class Softmax(Module):
    """softmax along `dim`. Unlike torch.nn.Softmax, `dim` is required: PyTorch's
    dim=None guesses the axis from the input's rank and warns that it is deprecated."""

    def __init__(self, dim: int) -> None:
        self.dim = checks.integer(dim, "Softmax", "dim")

    def __call__(self, params: dict, x: object) -> object:
        return F.softmax(x, self.dim)


class LogSoftmax(Module):
    """log_softmax along `dim` (required, as for Softmax)."""

    def __init__(self, dim: int) -> None:
        self.dim = checks.integer(dim, "LogSoftmax", "dim")

    def __call__(self, params: dict, x: object) -> object:
        return F.log_softmax(x, self.dim)


# --------------------------------------------------------------------------- Sequential


def _takes(layer: Module, arg: str) -> bool:
    """Whether `layer`'s call accepts keyword `arg` ("key", "training")."""
    if isinstance(layer, Sequential):  # only if something inside it does
        return any(_takes(child, arg) for child in layer.children().values())
    return arg in inspect.signature(layer.__call__).parameters


class Sequential(Module):
    """Layers applied one after another: `Sequential(*layers)` names them "0", "1", …,
    `Sequential({"conv": …, "act": …})` by the dict's keys (as PyTorch's OrderedDict).

    Parameters nest by those names (PyTorch's `0.weight`); layers without parameters
    (activations, pooling, dropout) get no entry, as PyTorch has no key for them.

    Call as `model(params, x, key=None, training=None, state=None)`:

    - `training` must be given (True or False) when any layer's behaviour depends on
      it (Dropout, SpatialDropout, BatchNorm), and is passed explicitly to those
      layers; otherwise it may be left out. There is no silent default, unlike a
      PyTorch module's train()/eval() flag: forgetting it would train with dropout
      off, or evaluate with batch statistics.
    - `key` is split into one key per layer (layer i gets split(key, n)[i], so adding
      a layer elsewhere does not change a dropout's mask) and given to layers that
      take one.
    - `state` is {name: layer state} for stateful layers (BatchNorm), from
      `model.init_state()`; a model with any stateful layer returns `(y, new_state)`,
      otherwise `y`.

    >>> import pyasg, numpy as np
    >>> from pyasg.nn.layers import Dropout, Linear
    >>> from pyasg.nn.norm import BatchNorm1d
    >>> model = Sequential(Linear(4, 8), BatchNorm1d(8), ReLU(), Dropout(0.1), Linear(8, 2))
    >>> params, state = model.init(pyasg.random.key(0)), model.init_state()
    >>> list(params), list(state)
    (['0', '1', '4'], ['1'])
    >>> x = np.ones((16, 4), np.float32)
    >>> y, state = model(params, x, key=pyasg.random.key(1), training=True, state=state)
    >>> y, _ = model(params, x[:1], training=False, state=state)  # eval: no key needed
    >>> y.shape
    (1, 2)
    """

    def __init__(self, *layers: Module | Mapping[str, Module]) -> None:
        if len(layers) == 1 and isinstance(layers[0], Mapping):
            named = dict(layers[0])
        else:
            named = {str(i): layer for i, layer in enumerate(layers)}
        for name, layer in named.items():
            if not isinstance(name, str) or not name or "." in name:
                raise PyasgError(f"Sequential: layer names must be non-empty strings "
                                 f"without '.', got {name!r}")
            if not isinstance(layer, Module):
                raise PyasgError(f"Sequential: layer {name!r} is {layer!r}, not a "
                                 f"pyasg.nn.Module")
        self._layers = named

    def children(self) -> dict[str, Module]:
        return dict(self._layers)

    def __len__(self) -> int:
        return len(self._layers)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._layers.values())

    def __getitem__(self, index: int | str) -> Module:
        if isinstance(index, str):
            return self._layers[index]
        return list(self._layers.values())[index]

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return {}  # all its parameters are its layers'

    def init(self, key: object) -> dict:
        keys = random.split(key, max(len(self._layers), 1))
        params = {}
        for i, (name, layer) in enumerate(self._layers.items()):
            p = layer.init(keys[i])
            if p:  # no entry for layers without parameters, as in a PyTorch state_dict
                params[name] = p
        return params

    def __call__(self, params: dict, x: object, *, key: object = None,
                 training: bool | None = None, state: dict | None = None) -> object:
        stateful = self.has_state()
        if stateful and state is None:
            raise PyasgError("Sequential has stateful layers (BatchNorm): pass state=… "
                             "(from model.init_state()); it returns (y, new_state)")
        if stateful:
            check_state(self, state)
        keys = None
        if key is not None and _takes(self, "key"):
            keys = random.split(key, len(self._layers))
        new_state = {}
        for i, (name, layer) in enumerate(self._layers.items()):
            kwargs: dict = {}
            if _takes(layer, "training"):
                if training is None:
                    raise PyasgError(f"Sequential: layer {name!r} ({layer.kind}) behaves "
                                     f"differently in training and eval: pass "
                                     f"training=True or training=False")
                kwargs["training"] = training
            if keys is not None and _takes(layer, "key"):
                kwargs["key"] = keys[i]
            if layer.has_state():
                kwargs["state"] = state[name]  # there: check_state says so
            try:
                out = layer(params.get(name, {}), x, **kwargs)
            except KeyError as e:  # a raw KeyError is no message for a user
                raise PyasgError(f"Sequential: the params or state of layer {name!r} "
                                 f"({layer.kind}) lack {e}") from e
            if layer.has_state():
                x, new_state[name] = out
            else:
                x = out
        return (x, new_state) if stateful else x

    def __repr__(self) -> str:
        inner = "".join(f"\n  ({name}): {layer!r}" for name, layer in self._layers.items())
        return f"Sequential({inner}\n)"


register_roles("Embedding", {
    "weight": "embedding table [num_embeddings, dim]: one learned vector per token id",
})
