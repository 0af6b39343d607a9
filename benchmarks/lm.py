"""A GPT-like character LM's training step in pyasg, for the GPU benchmark and profilers.

The model: token embedding (`nn.Embedding`, vocabulary 256) plus a learned position
embedding (`nn.LearnedPositionalEmbedding`), L pre-LN causal `nn.TransformerBlock`s
(FFN 4x, exact erf GELU, no dropout), a final `nn.LayerNorm` and a `nn.Linear` head
to the vocabulary; softmax cross-entropy over all B*T positions; AdamW (lr 3e-4,
betas 0.9/0.999, eps 1e-8, weight decay 0.01 on every parameter, as torch.optim.AdamW
and optax.adamw do by default). The batch is random bytes from a seeded numpy RNG:
`ids = seq[:, :-1]`, `targets = seq[:, 1:]` (next-token prediction).

`build_lm_step(config, backend)` gives ONE `pyasg.jit` function doing forward,
value_and_grad and the AdamW update, with its initial params, optimiser state and
batch (on the GPU as DeviceArrays when backend is "wgpu"), so that a profiler runs
exactly the benchmarked step:

>>> lm = build_lm_step("B2-T8-d16-H2-L1", "numpy")
>>> params, state, loss = lm.step(*lm.args())
>>> params["blocks"]["0"]["ff"]["fc1"]["weight"].shape, round(float(loss), 1)
((64, 16), 5.5)

Configs are named `B<batch>-T<seq>-d<d_model>-H<heads>-L<layers>` (optionally
`-V<vocab>`); any such name works, `CONFIGS` lists the benchmark's four.
The PyTorch and JAX versions of the same step are in lm_torch.py and lm_jax.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import pyasg
from pyasg import losses, nn
from pyasg.optim import AdamW

#: the benchmark's configurations (FFN hidden = 4 * d_model, vocabulary 256)
CONFIGS = ("B16-T64-d128-H4-L1", "B16-T128-d256-H4-L4", "B32-T256-d512-H8-L6",
           "B8-T1024-d768-H12-L4")
#: small ones for checking the script (--quick) and for tests
QUICK_CONFIGS = ("B2-T16-d32-H2-L1", "B4-T32-d64-H4-L2")
VOCAB = 256
#: AdamW's hyper-parameters, the same in every framework
ADAMW = {"lr": 3e-4, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.01}

_NAME = re.compile(r"B(\d+)-T(\d+)-d(\d+)-H(\d+)-L(\d+)(?:-V(\d+))?")


@dataclass(frozen=True)
class LMConfig:
    """Sizes of one LM configuration."""

    batch: int
    seq: int
    d_model: int
    heads: int
    layers: int
    vocab: int = VOCAB

    @property
    def name(self) -> str:
        """The config's name, B16-T64-d128-H4-L1 (-V<vocab> unless it is 256)."""
        v = "" if self.vocab == VOCAB else f"-V{self.vocab}"
        return f"B{self.batch}-T{self.seq}-d{self.d_model}-H{self.heads}-L{self.layers}{v}"

    @property
    def tokens(self) -> int:
        return self.batch * self.seq

    def n_params(self) -> int:
        """How many parameters the model has."""
        E, V, T = self.d_model, self.vocab, self.seq
        block = 4 * (E * E + E) + 2 * (E * 4 * E) + 4 * E + E + 4 * E  # attn, ff, 2 norms
        return V * E + T * E + self.layers * block + 2 * E + E * V + V

    def flops(self) -> float:
        """Approximate FLOPs of one training step (forward + backward = 3x forward's
        matmuls, attention included, causal masking not subtracted)."""
        E, N, T = self.d_model, self.tokens, self.seq
        matmul_params = self.layers * 12 * E * E + E * self.vocab
        attention = self.layers * 2 * 2 * N * T * E  # q k^T and weights @ v
        return 3 * (2 * N * matmul_params + attention)


def parse_config(config: str | LMConfig) -> LMConfig:
    """An `LMConfig` from its name (or itself).

    >>> parse_config("B16-T64-d128-H4-L1").d_model
    128
    """
    if isinstance(config, LMConfig):
        return config
    m = _NAME.fullmatch(str(config).strip())
    if m is None:
        raise pyasg.PyasgError(f"LM config {config!r} is not of the form B16-T64-d128-H4-L1 "
                         f"(batch, sequence, d_model, heads, layers; optional -V<vocab>)")
    b, t, d, h, n, v = (int(g) if g else None for g in m.groups())
    if d % h:
        raise pyasg.PyasgError(f"LM config {config}: d_model {d} is not a multiple of heads {h}")
    return LMConfig(b, t, d, h, n, VOCAB if v is None else v)


class _Blocks(nn.Sequential):
    """TransformerBlocks one after another, always without dropout."""

    def __call__(self, params: dict, x: object, **kwargs: Any) -> object:  # noqa: D102
        return super().__call__(params, x, training=False)


class CharLM(nn.Module):
    """tok + pos embeddings, L pre-LN causal blocks, LayerNorm, Linear head -> logits.

    Parameter paths: tok.weight [V, E], pos.weight [T, E], blocks.<i>.… (as
    TransformerBlock's: attn.w_q.weight, …, ff.fc1.weight, norm1.weight, …),
    norm.weight, norm.bias, head.weight [V, E], head.bias [V].
    """

    kind = "CharLM"

    def __init__(self, config: LMConfig) -> None:
        c = self.config = config
        self.tok = nn.Embedding(c.vocab, c.d_model)
        self.pos = nn.LearnedPositionalEmbedding(c.seq, c.d_model)
        self.blocks = _Blocks(*[nn.TransformerBlock(c.d_model, c.heads, causal=True,
                                                    activation="gelu")
                                for _ in range(c.layers)])
        self.norm = nn.LayerNorm(c.d_model)
        self.head = nn.Linear(c.d_model, c.vocab)

    def children(self) -> dict[str, nn.Module]:
        return {"tok": self.tok, "pos": self.pos, "blocks": self.blocks, "norm": self.norm,
                "head": self.head}

    def init(self, key: object) -> dict:
        keys = pyasg.random.split(key, 5)
        return {name: layer.init(keys[i])
                for i, (name, layer) in enumerate(self.children().items())}

    def __call__(self, params: dict, ids: object) -> object:
        x = self.pos(params["pos"], self.tok(params["tok"], ids))
        x = self.norm(params["norm"], self.blocks(params["blocks"], x))
        return self.head(params["head"], x)


def make_batch(config: str | LMConfig, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(ids, targets), int32 [B, T]: random bytes and the byte after each.

    >>> ids, targets = make_batch("B2-T8-d16-H2-L1")
    >>> bool((ids[:, 1:] == targets[:, :-1]).all()), ids.dtype.name
    (True, 'int32')
    """
    c = parse_config(config)
    seq = np.random.default_rng(seed).integers(0, c.vocab, (c.batch, c.seq + 1))
    seq = seq.astype(np.int32)
    return np.ascontiguousarray(seq[:, :-1]), np.ascontiguousarray(seq[:, 1:])


def init_params(config: str | LMConfig, seed: int = 0) -> dict:
    """The model's initial params (float32), the same for every framework."""
    return CharLM(parse_config(config)).init(pyasg.random.key(seed))


@dataclass
class LMStep:
    """One LM config's pyasg step with what it starts from.

    `params, opt_state, loss = step(params, opt_state, ids, targets)`; `args()` are
    the first call's arguments. With backend "wgpu" they are DeviceArrays (uploaded
    once), so feeding back what the step returns keeps everything on the GPU.
    """

    config: LMConfig
    backend: str
    model: CharLM
    params: dict
    opt_state: dict
    ids: Any
    targets: Any
    step: Any  # a pyasg Jitted
    host: dict[str, Any] = field(default_factory=dict)  # the numpy originals

    def args(self) -> tuple:
        """The arguments of `step` for the first call."""
        return self.params, self.opt_state, self.ids, self.targets


def lm_step_function(model: CharLM, opt: AdamW) -> Any:
    """The plain (not jitted) step: forward, value_and_grad, AdamW update."""
    V = model.config.vocab

    def loss_fn(params: dict, ids: object, targets: object) -> object:
        logits = model(params, ids)
        return losses.cross_entropy(pyasg.reshape(logits, (-1, V)),
                                    pyasg.reshape(targets, (-1,)))

    def lm_step(params: dict, opt_state: dict, ids: object, targets: object) -> tuple:
        loss, grads = pyasg.value_and_grad(loss_fn)(params, ids, targets)
        params, opt_state = opt.update(grads, opt_state, params)
        return params, opt_state, loss

    return lm_step


def build_lm_step(config: str | LMConfig, backend: str = "wgpu", seed: int = 0,
                  dtype: str = "float32", fuse: bool = True, donate: bool = False) -> LMStep:
    """The LM training step of `config` as one `pyasg.jit(..., backend=backend)`
    function, its initial params and AdamW state, and the batch.

    `dtype` "float64" casts the (float32-drawn) initial params to float64 (numpy
    backend only; tests compare frameworks in float64). On "wgpu" params, state and
    batch are uploaded as DeviceArrays. `donate` gives the params and optimiser state
    away at each call (`donate_argnums=(0, 1)`, as the JAX runner does): the step then
    updates them in place; feed back what it returns.
    """
    c = parse_config(config)
    model = CharLM(c)
    params = model.init(pyasg.random.key(seed))
    if dtype != "float32":
        params = pyasg.tree_map(lambda a: np.asarray(a, dtype), params)
    opt = AdamW(**ADAMW)
    opt_state = opt.init(params)
    ids, targets = make_batch(c, seed)
    host = {"params": params, "opt_state": opt_state, "ids": ids, "targets": targets}
    step = pyasg.jit(lm_step_function(model, opt), backend=backend, fuse=fuse,
                     name=f"lm_step_{c.name.replace('-', '_')}",
                     donate_argnums=(0, 1) if donate else ())
    if backend == "wgpu":
        from pyasg.kernels.wgpu import DeviceArray

        up = DeviceArray.from_numpy
        params, opt_state = pyasg.tree_map(up, params), pyasg.tree_map(up, opt_state)
        ids, targets = up(ids), up(targets)
    return LMStep(c, backend, model, params, opt_state, ids, targets, step, host)


def flat_params(params: dict, prefix: str = "") -> dict[str, Any]:
    """Dotted path -> leaf of a nested params dict (tok.weight, blocks.0.attn.w_q.weight,
    …), in the dicts' order.

    >>> flat_params({"a": {"w": 1, "b": 2}, "c": 3})
    {'a.w': 1, 'a.b': 2, 'c': 3}
    """
    out: dict[str, Any] = {}
    for k, v in params.items():
        path = f"{prefix}.{k}" if prefix else k
        out.update(flat_params(v, path) if isinstance(v, dict) else {path: v})
    return out


def check_names(config: LMConfig) -> tuple[str, ...]:
    """The parameters compared across frameworks after the first step: each gets a
    gradient far from zero in every element (not w_k's bias, whose gradient is zero up
    to rounding, so that AdamW's first step, g / (|g| + eps), is noise there)."""
    last = config.layers - 1
    return ("tok.weight", "pos.weight", "blocks.0.attn.w_q.weight", "blocks.0.ff.fc1.weight",
            f"blocks.{last}.ff.fc2.bias", "norm.weight", "head.weight", "head.bias")
