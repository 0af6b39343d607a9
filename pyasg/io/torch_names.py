"""PyTorch `state_dict` names <-> pyasg parameter paths.

Files from PyTorch (`safetensors.torch.save_file(model.state_dict(), path)`) load
with the same names; the layers differ only in attention:

=================================  =====================================================
PyTorch `state_dict` key            pyasg path (same layout unless said)
=================================  =====================================================
Linear `weight` [out, in], `bias`   Linear `weight`, `bias`
Conv2d `weight` [O, C/g, kh, kw]    Conv2d `weight`, `bias`
LayerNorm `weight`, `bias`          LayerNorm `weight`, `bias`
Embedding `weight` [N, D]           Embedding `weight`
Sequential `0.weight`, …            Sequential `0.weight`, …
MultiheadAttention                  MultiHeadAttention
  `in_proj_weight` [3E, E]            `w_q.weight`, `w_k.weight`, `w_v.weight`: rows
                                      [0:E], [E:2E], [2E:3E]
  `q/k/v_proj_weight` (kdim, vdim)    `w_q.weight`, `w_k.weight`, `w_v.weight`
  `in_proj_bias` [3E]                 `w_q.bias`, `w_k.bias`, `w_v.bias`
  `out_proj.weight`, `.bias`          `w_o.weight`, `w_o.bias`
BatchNorm `running_mean`, …         state, not params: `layer.init_state()`
TransformerEncoderLayer             TransformerBlock: rename `self_attn` → `attn`,
                                      `linear1`/`linear2` → `ff.fc1`/`ff.fc2` yourself
=================================  =====================================================

`from_torch_state_dict` does the attention part (and takes torch tensors or
arrays); `to_torch_state_dict` goes back.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from pyasg.io.weights import _as_array, _fail, _nest, match
from pyasg.trace.tree import flatten_with_paths

_ATTN_TORCH = ("in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight")
_UNSUPPORTED = ("bias_k", "bias_v")


def _numpy(value: Any, name: str) -> np.ndarray:
    return _as_array(value, name, "state_dict")


def from_torch_state_dict(state_dict: Mapping[str, Any], expected: Any = None) -> Any:
    """PyTorch `state_dict` (tensors or arrays, flat dotted keys) -> pyasg params pytree.

    Names and layouts are PyTorch's everywhere except `nn.MultiheadAttention`: its
    packed `in_proj_weight` [3E, E] is split into `w_q.weight`, `w_k.weight`,
    `w_v.weight` (rows [0:E], [E:2E], [2E:3E]), `in_proj_bias` likewise into the three
    biases, `q/k/v_proj_weight` (kdim/vdim differ from E) become `w_q/w_k/w_v.weight`,
    and `out_proj` becomes `w_o`. Without `expected` the result is nested dicts; with
    it, the keys are checked as in `load` and the structure is `expected`'s.

    >>> import numpy as np
    >>> sd = {"attn.in_proj_weight": np.arange(12.0).reshape(6, 2),
    ...       "attn.out_proj.weight": np.eye(2), "fc.weight": np.ones((1, 2))}
    >>> p = from_torch_state_dict(sd)
    >>> sorted(p["attn"]), p["attn"]["w_k"]["weight"].tolist()
    (['w_k', 'w_o', 'w_q', 'w_v'], [[4.0, 5.0], [6.0, 7.0]])
    """
    pairs, _ = flatten_with_paths(dict(state_dict))
    flat = {name: _numpy(v, name) for name, v in pairs}
    prefixes = {name[: -len(leaf)] for name in flat for leaf in _ATTN_TORCH
                if name == leaf or name.endswith("." + leaf)}
    out: dict[str, np.ndarray] = {}
    for name, value in flat.items():
        prefix, _, leaf = name.rpartition(".")
        prefix = prefix + "." if prefix else ""
        if prefix.endswith("out_proj.") and prefix[: -len("out_proj.")] in prefixes:
            out[prefix[: -len("out_proj.")] + "w_o." + leaf] = value
        elif prefix not in prefixes:
            out[name] = value
        elif leaf in ("in_proj_weight", "in_proj_bias"):
            if value.ndim < 1 or value.shape[0] % 3:
                raise _fail("state_dict", f"'{name}' has shape {list(value.shape)}; its first "
                                          f"dimension must be 3 * embed_dim")
            kind = "weight" if leaf == "in_proj_weight" else "bias"
            for part, chunk in zip(("w_q", "w_k", "w_v"), np.split(value, 3)):
                out[f"{prefix}{part}.{kind}"] = np.ascontiguousarray(chunk)
        elif leaf in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
            out[f"{prefix}w_{leaf[0]}.weight"] = value
        elif leaf in _UNSUPPORTED:
            raise _fail("state_dict", f"'{name}': pyasg's MultiHeadAttention has no "
                                      f"add_bias_kv")
        else:
            out[name] = value
    if expected is not None:
        return match(out, expected, "state_dict")
    return _nest(out, "state_dict")


def to_torch_state_dict(params: Any) -> dict[str, np.ndarray]:
    """pyasg params -> flat dict with PyTorch's names (the inverse of
    `from_torch_state_dict`); `torch.from_numpy` each value to load it into torch.

    >>> import numpy as np
    >>> w = {n: {"weight": np.eye(2), "bias": np.zeros(2)} for n in ("w_q", "w_k", "w_v", "w_o")}
    >>> sorted(to_torch_state_dict({"attn": w}))
    ['attn.in_proj_bias', 'attn.in_proj_weight', 'attn.out_proj.bias', 'attn.out_proj.weight']
    """
    pairs, _ = flatten_with_paths(params)
    flat = {name: _numpy(v, name) for name, v in pairs}
    attn = {name[: -len("w_q.weight")] for name in flat
            if re.fullmatch(r"(.*\.)?w_q\.weight", name)
            and all(name[: -len("w_q.weight")] + f"w_{x}.weight" in flat for x in "kvo")}
    out: dict[str, np.ndarray] = {}
    for name, value in flat.items():
        head = next((p for p in attn if name.startswith(p) and name[len(p):].count(".") == 1),
                    None)
        sub, _, leaf = name[len(head):].partition(".") if head is not None else ("", "", "")
        if head is None or sub not in ("w_q", "w_k", "w_v", "w_o"):
            out[name] = value
        elif sub == "w_o":
            out[f"{head}out_proj.{leaf}"] = value
        elif sub == "w_q" and leaf == "weight":  # q, k, v are written together, here
            ws = [flat[f"{head}w_{x}.weight"] for x in "qkv"]
            if all(w.shape == ws[0].shape for w in ws):
                out[f"{head}in_proj_weight"] = np.concatenate(ws)
            else:
                for x, w in zip("qkv", ws):
                    out[f"{head}{x}_proj_weight"] = w
            if f"{head}w_q.bias" in flat:
                out[f"{head}in_proj_bias"] = np.concatenate(
                    [flat[f"{head}w_{x}.bias"] for x in "qkv"])
    return out
