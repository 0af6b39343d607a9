"""The LM training step (benchmarks/lm.py) in PyTorch: eager, or under torch.compile.

The model is torch.nn's own modules: nn.Embedding for tokens and for positions
(pyasg's LearnedPositionalEmbedding holds the same [T, E] table as `pos.weight`),
TransformerEncoderLayers (torch_ref.encoder_blocks: norm_first, exact GELU, no dropout,
causal mask), a final LayerNorm and a Linear head, loaded with the pyasg params
through torch_ref.torch_state; torch.optim.AdamW with lm.ADAMW's hyper-parameters.

`compile=True` compiles the loss (forward + cross-entropy; its backward is compiled by
AOTAutograd at the first `backward()`) and the optimiser step (`torch.compile` of a
function calling `opt.step()`, as PyTorch's "compiling the optimizer" recipe); the
`zero_grad` and the `backward()` call itself stay in Python.

>>> from benchmarks.lm import init_params, make_batch
>>> model = TorchLMStep("B2-T8-d16-H2-L1", init_params("B2-T8-d16-H2-L1"))
>>> loss = model.step(*model.prepare(*make_batch("B2-T8-d16-H2-L1")))
>>> round(float(loss), 1), model.params()["head"]["weight"].shape
(5.5, (256, 16))
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from benchmarks.lm import ADAMW, LMConfig, parse_config
from benchmarks.torch_ref import encoder_blocks, pyasg_params, torch_state


class TorchLM(torch.nn.Module):
    """tok + pos embeddings, pre-LN causal encoder layers, LayerNorm, Linear head."""

    def __init__(self, config: LMConfig) -> None:
        super().__init__()
        c = config
        self.tok = torch.nn.Embedding(c.vocab, c.d_model)
        self.pos = torch.nn.Embedding(c.seq, c.d_model)
        self.blocks = encoder_blocks(c.d_model, c.heads, c.layers, c.seq)
        self.norm = torch.nn.LayerNorm(c.d_model)
        self.head = torch.nn.Linear(c.d_model, c.vocab)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.tok(ids) + self.pos.weight[: ids.shape[-1]]
        return self.head(self.norm(self.blocks(x)))


class TorchLMStep:
    """The LM and its AdamW in PyTorch; `step(ids, targets)` returns the loss tensor
    (not synchronised: call `float()` on it or torch.cuda.synchronize to wait)."""

    def __init__(self, config: str | LMConfig, params: dict, device: str = "cpu",
                 dtype: torch.dtype = torch.float32, compile: bool = False) -> None:
        self.config = c = parse_config(config)
        self.template = params
        self.device = torch.device(device)
        self.module = TorchLM(c)
        self.module.load_state_dict(torch_state(params), strict=True)
        self.module.to(device=self.device, dtype=dtype)
        self.opt = torch.optim.AdamW(self.module.parameters(), lr=ADAMW["lr"],
                                     betas=ADAMW["betas"], eps=ADAMW["eps"],
                                     weight_decay=ADAMW["weight_decay"])
        vocab, module = c.vocab, self.module

        def loss_fn(ids: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
            logits = module(ids)
            return torch.nn.functional.cross_entropy(logits.reshape(-1, vocab),
                                                     targets.reshape(-1))

        def opt_step() -> None:
            self.opt.step()

        self._loss = torch.compile(loss_fn) if compile else loss_fn
        self._opt_step = torch.compile(opt_step) if compile else opt_step

    def prepare(self, ids: np.ndarray, targets: np.ndarray) -> tuple[torch.Tensor, ...]:
        """The batch on the model's device (int64: what cross_entropy takes)."""
        return tuple(torch.from_numpy(np.asarray(a, np.int64)).to(self.device)
                     for a in (ids, targets))

    def step(self, ids: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        self.opt.zero_grad(set_to_none=True)
        loss = self._loss(ids, targets)
        loss.backward()
        self._opt_step()
        return loss.detach()

    def params(self) -> dict:
        """The current parameters as a pyasg params tree of numpy arrays."""
        return pyasg_params(self.module, self.template)

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


def make(config: str | LMConfig, params: dict, **kwargs: Any) -> TorchLMStep:
    """The PyTorch LM step of `config` from pyasg `params` (see TorchLMStep)."""
    return TorchLMStep(config, params, **kwargs)
