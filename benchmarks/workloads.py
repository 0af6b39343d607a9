"""The CPU benchmark's three training steps, in pyasg: params, a batch and one jitted step.

Each builder returns a `Workload`: the model (pyasg.nn layers), its params, a plain
SGD state, a fixed batch, and `step`, ONE `pyasg.jit` function doing forward, loss,
gradient and the SGD update: `params, opt_state, loss = w.step(w.params,
w.opt_state, w.x, w.y)`. Sizes are arguments (the issue's sizes are the defaults),
so tests can run the same architectures small. The other frameworks' versions
(hand_numpy, torch_ref, jax_ref) read `w.config` and `w.params` and must compute
the same step.

>>> w = mlp(batch=4, sizes=(6, 5, 3))
>>> params, state, loss = w.step(w.params, w.opt_state, w.x, w.y)
>>> params["2"]["weight"].shape, bool(loss > 0)
((3, 5), True)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import pyasg
from pyasg import losses, nn
from pyasg.errors import PyasgError
from pyasg.optim import SGD

WORKLOADS = ("W1", "W2", "W3")


@dataclass
class Workload:
    """One benchmark workload: what it is, its pyasg model, state, batch and step."""

    name: str
    title: str
    config: dict[str, Any]
    model: nn.Module
    params: dict
    opt_state: dict
    x: np.ndarray
    y: np.ndarray
    lr: float
    step: Any  # a pyasg Jitted: (params, opt_state, x, y) -> (params, opt_state, loss)
    extra: dict[str, Any] = field(default_factory=dict)

    def args(self) -> tuple:
        """The arguments of `step` for the first call."""
        return self.params, self.opt_state, self.x, self.y


def _make_step(model: nn.Module, loss_of: Any, opt: SGD, name: str) -> Any:
    def loss_fn(params: dict, x: object, y: object) -> object:
        return loss_of(model(params, x), y)

    def step(params: dict, opt_state: dict, x: object, y: object) -> tuple:
        loss, grads = pyasg.value_and_grad(loss_fn)(params, x, y)
        params, opt_state = opt.update(grads, opt_state, params)
        return params, opt_state, loss

    step.__name__ = name
    return pyasg.jit(step, backend="numpy", name=name)


def _cross_entropy(logits: object, labels: object) -> object:
    return losses.cross_entropy(logits, labels)


def _mse(out: object, target: object) -> object:
    return losses.mse_loss(out, target)


def mlp(batch: int = 128, sizes: Sequence[int] = (784, 256, 256, 10), lr: float = 0.01,
        seed: int = 0) -> Workload:
    """W1: an MLP (Linear layers with ReLU between), softmax cross-entropy, SGD.

    >>> mlp(batch=2, sizes=(4, 3)).x.shape
    (2, 4)
    """
    sizes = tuple(int(s) for s in sizes)
    if len(sizes) < 2:
        raise PyasgError(f"mlp: sizes needs an input and an output size, got {sizes}")
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    model = nn.Sequential(*layers)
    params = model.init(pyasg.random.key(seed))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, sizes[0]), dtype=np.float32)
    y = rng.integers(0, sizes[-1], batch).astype(np.int64)
    opt = SGD(lr)
    return Workload("W1", f"MLP {'-'.join(map(str, sizes))}, batch {batch}",
                    {"batch": batch, "sizes": sizes}, model, params, opt.init(params), x, y,
                    lr, _make_step(model, _cross_entropy, opt, "w1_mlp_step"))


class _Blocks(nn.Sequential):
    """TransformerBlocks one after another (Sequential asks for `training` because the
    blocks take it; these have no dropout, so it is always False)."""

    def __call__(self, params: dict, x: object, **kwargs: Any) -> object:  # noqa: D102
        return super().__call__(params, x, training=False)


def transformer(batch: int = 16, seq: int = 64, d_model: int = 128, heads: int = 4,
                blocks: int = 1, lr: float = 0.01, seed: int = 0) -> Workload:
    """W2: pre-LayerNorm causal TransformerBlock(s) (FFN 4x, exact GELU), MSE, SGD.

    Parameters are those of `nn.Sequential` of `blocks` blocks ("0.attn.w_q.weight", …).

    >>> transformer(batch=1, seq=3, d_model=8, heads=2).params["0"]["ff"]["fc1"]["weight"].shape
    (32, 8)
    """
    if d_model % heads:
        raise PyasgError(f"transformer: d_model {d_model} must be a multiple of heads {heads}")
    model = _Blocks(*[nn.TransformerBlock(d_model, heads, causal=True, activation="gelu")
                      for _ in range(blocks)])
    params = model.init(pyasg.random.key(seed))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, seq, d_model), dtype=np.float32)
    y = rng.standard_normal((batch, seq, d_model), dtype=np.float32)
    opt = SGD(lr)
    title = (f"TransformerBlock x{blocks}, B{batch} T{seq} d{d_model} h{heads}, causal, "
             f"pre-LN, GELU, MSE")
    return Workload("W2", title, {"batch": batch, "seq": seq, "d_model": d_model,
                                  "heads": heads, "blocks": blocks},
                    model, params, opt.init(params), x, y, lr,
                    _make_step(model, _mse, opt, f"w2_transformer{blocks}_step"))


def cnn(batch: int = 32, image: int = 28, channels: Sequence[int] = (1, 16, 32),
        classes: int = 10, lr: float = 0.01, seed: int = 0) -> Workload:
    """W3: two (Conv 3x3 pad 1, ReLU, MaxPool 2) stages, Flatten, Linear, cross-entropy.

    `image` must be divisible by 4 (two poolings).

    >>> cnn(batch=2, image=8, channels=(1, 2, 3)).params["7"]["weight"].shape
    (10, 12)
    """
    if image % 4:
        raise PyasgError(f"cnn: image size {image} must be divisible by 4 (two 2x2 poolings)")
    c0, c1, c2 = (int(c) for c in channels)
    flat = c2 * (image // 4) ** 2
    model = nn.Sequential(nn.Conv2d(c0, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(flat, classes))
    params = model.init(pyasg.random.key(seed))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, c0, image, image), dtype=np.float32)
    y = rng.integers(0, classes, batch).astype(np.int64)
    opt = SGD(lr)
    title = (f"CNN {batch}x{c0}x{image}x{image}: conv{c1}-pool-conv{c2}-pool-linear{classes}")
    return Workload("W3", title, {"batch": batch, "image": image, "channels": (c0, c1, c2),
                                  "classes": classes},
                    model, params, opt.init(params), x, y, lr,
                    _make_step(model, _cross_entropy, opt, "w3_cnn_step"))


BUILDERS = {"W1": mlp, "W2": transformer, "W3": cnn}


def build(name: str, **sizes: Any) -> Workload:
    """The workload called `name` ("W1", "W2" or "W3"), with optional sizes.

    >>> build("W1", batch=2, sizes=(3, 2)).name
    'W1'
    """
    if name not in BUILDERS:
        raise PyasgError(f"unknown workload {name!r}; choose from {', '.join(WORKLOADS)}")
    return BUILDERS[name](**sizes)
