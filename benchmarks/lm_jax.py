"""The LM training step (benchmarks/lm.py) in JAX: `jax.jit` of value_and_grad and
optax.adamw, parameters and optimiser state donated.

The forward pass reuses jax_ref's LayerNorm, Linear and TransformerBlock on the pyasg
params tree itself (nested dicts are pytrees), so no renaming is needed. Needs jax and
optax (neither is a pyasg dependency). For float32 matmuls at full precision on a GPU
(XLA uses TF32 by default there) the benchmark sets
`jax.config.update("jax_default_matmul_precision", "highest")` before building this.

>>> from benchmarks.lm import init_params, make_batch
>>> model = JaxLMStep("B2-T8-d16-H2-L1", init_params("B2-T8-d16-H2-L1"))
>>> loss = model.step(*model.prepare(*make_batch("B2-T8-d16-H2-L1")))
>>> round(float(loss), 1), model.params()["head"]["weight"].shape
(5.5, (256, 16))
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from benchmarks.jax_ref import _block, _cross_entropy, _layer_norm, _like, _linear
from benchmarks.lm import ADAMW, LMConfig, parse_config


def lm_loss(config: str | LMConfig) -> Any:
    """loss(params, ids, targets): mean next-token cross-entropy over all B*T positions."""
    c = parse_config(config)

    def loss(params: dict, ids: jax.Array, targets: jax.Array) -> jax.Array:
        x = params["tok"]["weight"][ids] + params["pos"]["weight"][: ids.shape[-1]]
        for i in range(c.layers):
            x = _block(params["blocks"][str(i)], x, c.heads)
        logits = _linear(params["head"], _layer_norm(params["norm"], x))
        return _cross_entropy(logits.reshape(-1, c.vocab), targets.reshape(-1))

    return loss


class JaxLMStep:
    """The jitted LM step; `step(ids, targets)` returns the loss (a jax.Array, not
    waited for) and keeps the new params and optimiser state.

    `dtype=jnp.float64` needs x64 enabled (`with jax.enable_x64(True):` around
    everything, as the tests do)."""

    def __init__(self, config: str | LMConfig, params: dict, dtype: Any = jnp.float32,
                 device: Any = None) -> None:
        self.config = parse_config(config)
        self.device = device if device is not None else jax.devices()[0]
        loss = lm_loss(self.config)
        opt = optax.adamw(learning_rate=ADAMW["lr"], b1=ADAMW["betas"][0],
                          b2=ADAMW["betas"][1], eps=ADAMW["eps"],
                          weight_decay=ADAMW["weight_decay"])

        def update(params: dict, opt_state: Any, ids: jax.Array, targets: jax.Array) -> tuple:
            value, grads = jax.value_and_grad(loss)(params, ids, targets)
            updates, opt_state = opt.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, value

        # params and optimiser state are donated: the old ones die with the step, as in
        # the other frameworks' in-place updates
        self._update = jax.jit(update, donate_argnums=(0, 1))
        self._params = jax.device_put(
            jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), params), self.device)
        # committed to the device like the params: the state the step returns is, and
        # an uncommitted first state would make the second call compile again
        self._opt_state = jax.device_put(opt.init(self._params), self.device)
        self._template = params

    def prepare(self, ids: np.ndarray, targets: np.ndarray) -> tuple[jax.Array, ...]:
        """The batch on the device once (int32)."""
        return tuple(jax.device_put(np.asarray(a, np.int32), self.device)
                     for a in (ids, targets))

    def step(self, ids: jax.Array, targets: jax.Array) -> jax.Array:
        self._params, self._opt_state, value = self._update(self._params, self._opt_state,
                                                            ids, targets)
        return value

    def synchronize(self) -> None:
        jax.block_until_ready((self._params, self._opt_state))

    def params(self) -> dict:
        """The current parameters as a pyasg params tree of numpy arrays (pyasg's key
        order)."""
        return _like(self._template, self._params)


def make(config: str | LMConfig, params: dict, **kwargs: Any) -> JaxLMStep:
    """The JAX LM step of `config` from pyasg `params` (see JaxLMStep)."""
    return JaxLMStep(config, params, **kwargs)
