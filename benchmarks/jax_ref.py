"""The benchmark's training steps in JAX: `jax.jit` of value_and_grad plus the SGD update.

The forward passes are written here with jax.numpy / jax.lax on the pyasg params
tree itself (nested dicts are JAX pytrees), so no renaming is needed. `step(x, y)`
returns the loss and keeps the new params (`params()` gives them as numpy).
Needs jax (not a pyasg dependency).

>>> from benchmarks.workloads import mlp
>>> w = mlp(batch=4, sizes=(6, 5, 3))
>>> model = make(w)
>>> bool(model.step(w.x, w.y) > 0), model.params()["2"]["weight"].shape
(True, (3, 5))
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def _linear(p: dict, x: jax.Array) -> jax.Array:
    return x @ p["weight"].T + p["bias"]


def _cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=-1))


def _layer_norm(p: dict, x: jax.Array, eps: float = 1e-5) -> jax.Array:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) * jax.lax.rsqrt(var + eps) * p["weight"] + p["bias"]


def _block(p: dict, x: jax.Array, heads: int) -> jax.Array:
    B, T, E = x.shape
    D = E // heads
    a = p["attn"]
    n1 = _layer_norm(p["norm1"], x)

    def split(t: jax.Array) -> jax.Array:
        return t.reshape(B, T, heads, D).transpose(0, 2, 1, 3)

    q, k, v = (split(_linear(a[name], n1)) for name in ("w_q", "w_k", "w_v"))
    scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(D)
    causal = jnp.tril(jnp.ones((T, T), bool))
    scores = jnp.where(causal, scores, -jnp.inf)
    o = (jax.nn.softmax(scores, axis=-1) @ v).transpose(0, 2, 1, 3).reshape(B, T, E)
    x = x + _linear(a["w_o"], o)
    f = p["ff"]
    h = jax.nn.gelu(_linear(f["fc1"], _layer_norm(p["norm2"], x)), approximate=False)
    return x + _linear(f["fc2"], h)


def _conv(p: dict, x: jax.Array) -> jax.Array:
    y = jax.lax.conv_general_dilated(x, p["weight"], (1, 1), ((1, 1), (1, 1)),
                                     dimension_numbers=("NCHW", "OIHW", "NCHW"))
    return y + p["bias"][None, :, None, None]


def _pool(x: jax.Array) -> jax.Array:
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")


def loss_function(w: Any) -> Any:
    """loss(params, x, y) for workload `w`, in JAX."""
    c = w.config
    if w.name == "W1":
        names = sorted(w.params, key=int)

        def loss(params: dict, x: jax.Array, y: jax.Array) -> jax.Array:
            for name in names[:-1]:
                x = jax.nn.relu(_linear(params[name], x))
            return _cross_entropy(_linear(params[names[-1]], x), y)

    elif w.name == "W2":
        names = sorted(w.params, key=int)

        def loss(params: dict, x: jax.Array, y: jax.Array) -> jax.Array:
            for name in names:
                x = _block(params[name], x, c["heads"])
            return jnp.mean((x - y) ** 2)

    else:
        def loss(params: dict, x: jax.Array, y: jax.Array) -> jax.Array:
            h = _pool(jax.nn.relu(_conv(params["0"], x)))
            h = _pool(jax.nn.relu(_conv(params["3"], h)))
            return _cross_entropy(_linear(params["7"], h.reshape(h.shape[0], -1)), y)

    return loss


def _like(template: Any, tree: Any) -> Any:
    if isinstance(template, dict):
        return {k: _like(v, tree[k]) for k, v in template.items()}
    return np.array(tree)


class JaxStep:
    """One workload's jitted step in JAX; `step(x, y)` returns the loss (blocking)."""

    def __init__(self, w: Any) -> None:
        loss = loss_function(w)
        lr = w.lr

        def update(params: dict, x: jax.Array, y: jax.Array) -> tuple:
            value, grads = jax.value_and_grad(loss)(params, x, y)
            return jax.tree_util.tree_map(lambda p, g: p - lr * g, params, grads), value

        # params are donated: the old ones are dead after the step, as in the other
        # frameworks' in-place updates
        self._update = jax.jit(update, donate_argnums=0)
        self._params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), w.params)
        self._template = w.params

    @staticmethod
    def prepare(x: np.ndarray, y: np.ndarray) -> tuple[jax.Array, jax.Array]:
        """The batch on JAX's device once (labels as int32: JAX's default integer)."""
        y = np.asarray(y)
        return jnp.asarray(x), jnp.asarray(y.astype(np.int32) if y.dtype.kind == "i" else y)

    def step(self, x: Any, y: Any) -> float:
        self._params, value = self._update(self._params, x, y)
        return float(value)  # waits for the result

    def params(self) -> dict:
        """The current parameters as a pyasg params tree of numpy arrays (in pyasg's key
        order: JAX sorts the keys of the dicts it rebuilds)."""
        return _like(self._template, self._params)


def make(w: Any) -> JaxStep:
    """The JAX step for workload `w`, starting from its params."""
    return JaxStep(w)
