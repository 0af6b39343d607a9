"""The benchmark's training steps in PyTorch eager, from a pyasg workload's params.

The models are PyTorch's own modules (nn.Sequential of Linear/ReLU, Conv2d/MaxPool2d,
nn.TransformerEncoderLayer with norm_first=True, exact GELU, no dropout), loaded
with the pyasg params through `pyasg.io.torch_names` so that both start equal;
`step(x, y)` is zero_grad, forward, loss, backward, torch.optim.SGD.step.
Needs torch (not a pyasg dependency).

>>> from benchmarks.workloads import mlp
>>> w = mlp(batch=4, sizes=(6, 5, 3))
>>> model = make(w)
>>> bool(model.step(w.x, w.y) > 0), model.params()["2"]["weight"].shape
(True, (3, 5))
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from pyasg.io.torch_names import from_torch_state_dict, to_torch_state_dict

# pyasg's TransformerBlock names -> torch.nn.TransformerEncoderLayer's (after
# to_torch_state_dict has packed q, k, v into in_proj_*)
_RENAMES = (("attn.", "self_attn."), ("ff.fc1.", "linear1."), ("ff.fc2.", "linear2."))


class Blocks(torch.nn.ModuleList):
    """Encoder layers one after another, each with the causal mask."""

    def __init__(self, layers: list[torch.nn.Module], seq: int) -> None:
        super().__init__(layers)
        self.register_buffer(
            "mask", torch.nn.Transformer.generate_square_subsequent_mask(seq), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self:
            x = layer(x, src_mask=self.mask, is_causal=True)
        return x


def _module(w: Any) -> torch.nn.Module:
    c = w.config
    if w.name == "W1":
        layers: list[torch.nn.Module] = []
        sizes = c["sizes"]
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(torch.nn.Linear(a, b))
            if i < len(sizes) - 2:
                layers.append(torch.nn.ReLU())
        return torch.nn.Sequential(*layers)
    if w.name == "W2":
        E = c["d_model"]
        return encoder_blocks(E, c["heads"], c["blocks"], c["seq"])
    c0, c1, c2 = c["channels"]
    flat = c2 * (c["image"] // 4) ** 2
    return torch.nn.Sequential(
        torch.nn.Conv2d(c0, c1, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(c1, c2, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(flat, c["classes"]))


def encoder_blocks(d_model: int, heads: int, layers: int, seq: int) -> Blocks:
    """`layers` TransformerEncoderLayers as pyasg's TransformerBlock(d_model, heads,
    causal=True): norm_first, FFN 4 * d_model, exact GELU, no dropout, causal mask."""
    return Blocks([torch.nn.TransformerEncoderLayer(
        d_model, heads, 4 * d_model, dropout=0.0, activation="gelu", batch_first=True,
        norm_first=True) for _ in range(layers)], seq)


def _to_torch_names(name: str) -> str:
    for ours, theirs in _RENAMES:
        name = name.replace("." + ours, "." + theirs)
    return name


def _from_torch_names(name: str) -> str:
    for ours, theirs in _RENAMES:
        name = name.replace("." + theirs, "." + ours)
    return name


def torch_state(params: dict) -> dict[str, torch.Tensor]:
    """pyasg params (TransformerBlocks under Sequential-style "<i>." prefixes) -> a
    state_dict for the modules above: q, k, v packed into in_proj_*, attn/ff renamed."""
    return {_to_torch_names(k): torch.from_numpy(np.array(v))
            for k, v in to_torch_state_dict(params).items()}


def pyasg_params(module: torch.nn.Module, expected: dict) -> dict:
    """A torch module's current parameters as a pyasg params tree of numpy arrays
    shaped like `expected` (the inverse of `torch_state`)."""
    state = {_from_torch_names(k): v.detach().cpu().numpy().copy()
             for k, v in module.state_dict().items()}
    return from_torch_state_dict(state, expected=expected)


class TorchStep:
    """One workload's model and SGD optimiser in PyTorch; `step(x, y)` returns the loss."""

    def __init__(self, w: Any) -> None:
        self.workload = w
        self.module = _module(w)
        self.module.load_state_dict(torch_state(w.params), strict=True)
        self.opt = torch.optim.SGD(self.module.parameters(), lr=w.lr)
        self.loss_fn = (torch.nn.functional.mse_loss if w.name == "W2"
                        else torch.nn.functional.cross_entropy)

    @staticmethod
    def prepare(x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch as tensors (sharing the arrays' memory)."""
        return torch.from_numpy(np.asarray(x)), torch.from_numpy(np.asarray(y))

    def step(self, x: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor) -> float:
        x = torch.as_tensor(x)
        y = torch.as_tensor(y)
        self.opt.zero_grad(set_to_none=True)
        loss = self.loss_fn(self.module(x), y)
        loss.backward()
        self.opt.step()
        return float(loss.detach())

    def params(self) -> dict:
        """The current parameters as a pyasg params tree of numpy arrays."""
        return pyasg_params(self.module, self.workload.params)


def make(w: Any) -> TorchStep:
    """The PyTorch model and optimiser for workload `w`, starting from its params."""
    return TorchStep(w)
