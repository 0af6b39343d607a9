"""Recurrent layers on `pyasg.scan`: `GRU` and `RNN` (PyTorch's names, layouts and gates).

Each layer of the stack is ONE scan over time, so the graph is the same size for any
sequence length (a Python loop would copy the cell once per step). The input-to-hidden
products of all steps are one matmul before the scan; only the hidden-to-hidden
product is inside it.

Weights are torch.nn.GRU's / torch.nn.RNN's, by the same names, so a `state_dict`
loads as it is: for layer k, `weight_ih_l{k}` [G·H, I] (I = input_size for layer 0,
hidden_size after), `weight_hh_l{k}` [G·H, H], `bias_ih_l{k}` and `bias_hh_l{k}` [G·H],
with G = 3 gates for the GRU stacked in PyTorch's order (reset r, update z, new n) and
G = 1 for the RNN. All start U(-1/sqrt(H), 1/sqrt(H)), as in PyTorch.

GRU step (PyTorch's equations):
    r = σ(W_ir x + b_ir + W_hr h + b_hr),  z = σ(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)),  h' = (1 - z) ⊙ n + z ⊙ h

Call: `output, h_n = layer(params, x, h0=None)`; x is [T, N, I] ([N, T, I] with
`batch_first`) or unbatched [T, I]; h0 and h_n are [num_layers, N, H] ([num_layers, H]
unbatched); output is the last layer's h at every step.

>>> import pyasg, numpy as np
>>> gru = GRU(4, 8, num_layers=2)
>>> params = gru.init(pyasg.random.key(0))
>>> sorted(params)[:2], params["weight_ih_l0"].shape, params["weight_hh_l1"].shape
(['bias_hh_l0', 'bias_hh_l1'], (24, 4), (24, 8))
>>> out, h = gru(params, np.ones((5, 3, 4), np.float32))
>>> out.shape, h.shape
((5, 3, 8), (2, 3, 8))
"""

from __future__ import annotations

import math
from collections.abc import Callable

from pyasg.array import functional as F
from pyasg.array import random
from pyasg.array.control import scan
from pyasg.errors import ShapeError
from pyasg.nn import checks, init
from pyasg.nn.module import Module, register_roles

__all__ = ["GRU", "RNN"]


def _gru_cell(gi: object, h: object, w_hh: object, b_hh: object | None) -> object:
    """One GRU step from the step's input projection gi = W_ih x + b_ih [N, 3H]."""
    gh = F.matmul(h, F.swapaxes(w_hh, 0, 1))
    if b_hh is not None:
        gh = gh + b_hh
    i_r, i_z, i_n = F.split(gi, 3, axis=-1)
    h_r, h_z, h_n = F.split(gh, 3, axis=-1)
    r = F.sigmoid(i_r + h_r)
    z = F.sigmoid(i_z + h_z)
    n = F.tanh(i_n + r * h_n)
    return (1.0 - z) * n + z * h


def _rnn_cell(activation: Callable[[object], object]) -> Callable[..., object]:
    def cell(gi: object, h: object, w_hh: object, b_hh: object | None) -> object:
        gh = F.matmul(h, F.swapaxes(w_hh, 0, 1))
        return activation(gi + gh + b_hh if b_hh is not None else gi + gh)

    return cell


#: The most layers a GRU/RNN takes.
MAX_LAYERS = 4096


class _Recurrent(Module):
    """What GRU and RNN share: the weights, the checks, one scan per layer."""

    gates: int = 1

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dtype: str = "float32") -> None:
        who = type(self).__name__
        self.input_size = checks.size(input_size, who, "input_size")
        self.hidden_size = checks.size(hidden_size, who, "hidden_size", "[1, inf)")
        # one scan and four arrays a layer: past MAX_LAYERS the model is a typo, not a
        # model (and naming its arrays alone would take minutes)
        self.num_layers = checks.size(num_layers, who, "num_layers", f"[1, {MAX_LAYERS}]")
        self.bias = checks.flag(bias, who, "bias")
        self.batch_first = checks.flag(batch_first, who, "batch_first")
        self.dtype = checks.float_dtype(dtype, who)

    def _cell(self) -> Callable[..., object]:
        raise NotImplementedError

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        g, h = self.gates * self.hidden_size, self.hidden_size
        shapes: dict[str, tuple[int, ...]] = {}
        for k in range(self.num_layers):
            shapes[f"weight_ih_l{k}"] = (g, self.input_size if k == 0 else h)
            shapes[f"weight_hh_l{k}"] = (g, h)
            if self.bias:
                shapes[f"bias_ih_l{k}"] = (g,)
                shapes[f"bias_hh_l{k}"] = (g,)
        return shapes

    def init(self, key: object) -> dict:
        shapes = self.param_shapes()
        bound = 1.0 / math.sqrt(self.hidden_size)
        keys = random.split(key, len(shapes))
        return {name: init.uniform(keys[k], shape, -bound, bound, self.dtype)
                for k, (name, shape) in enumerate(shapes.items())}

    def param_kinds(self, params: dict | None = None, prefix: str = "") -> dict[str, str]:
        """Every layer's weights share a kind: `GRU.weight_ih_l3` is a "GRU.weight_ih"."""
        names = self.param_shapes() if params is None else params
        return {(f"{prefix}.{n}" if prefix else n): f"{self.kind}.{n.rsplit('_l', 1)[0]}"
                for n in names}

    def __call__(self, params: dict, x: object, h0: object | None = None) -> tuple:
        who = type(self).__name__
        t = F.type_of(x)
        if t.ndim not in (2, 3) or t.shape[-1] != self.input_size:
            raise ShapeError(f"{who}: input must be [T, N, {self.input_size}] (batch_first: "
                             f"[N, T, {self.input_size}]) or [T, {self.input_size}], got {t!r}")
        unbatched = t.ndim == 2
        if unbatched:
            x = F.expand_dims(x, 1)
        elif self.batch_first:
            x = F.swapaxes(x, 0, 1)
        steps, n = F.type_of(x).shape[:2]
        want = (self.num_layers, n, self.hidden_size)
        if h0 is None:
            h0 = F.full(want, 0.0, t.dtype)
        else:
            ht = F.type_of(h0)
            expected = want[:1] + want[2:] if unbatched else want
            if ht.shape != expected:
                raise ShapeError(f"{who}: h0 must be {list(expected)}, got {ht!r}")
            if unbatched:
                h0 = F.expand_dims(h0, 1)
        cell, finals = self._cell(), []
        for k in range(self.num_layers):
            w_ih, w_hh = params[f"weight_ih_l{k}"], params[f"weight_hh_l{k}"]
            b_ih, b_hh = params.get(f"bias_ih_l{k}"), params.get(f"bias_hh_l{k}")
            gi = F.matmul(x, F.swapaxes(w_ih, 0, 1))  # every step's input product: one GEMM
            if b_ih is not None:
                gi = gi + b_ih

            def step(h: object, g: object, w_hh: object = w_hh, b_hh: object = b_hh) -> tuple:
                h = cell(g, h, w_hh, b_hh)
                return h, h

            last, x = scan(step, h0[k], gi)
            finals.append(last)
        h_n = F.stack(finals, axis=0)
        if unbatched:
            return F.squeeze(x, 1), F.squeeze(h_n, 1)
        return (F.swapaxes(x, 0, 1) if self.batch_first else x), h_n


class GRU(_Recurrent):
    """A multi-layer gated recurrent unit over a sequence, as torch.nn.GRU (one scan per layer).

    >>> import pyasg, numpy as np
    >>> gru = GRU(3, 5, batch_first=True)
    >>> out, h = gru(gru.init(pyasg.random.key(1)), np.zeros((2, 7, 3), np.float32))
    >>> out.shape, h.shape
    ((2, 7, 5), (1, 2, 5))
    """

    gates = 3

    def _cell(self) -> Callable[..., object]:
        return _gru_cell


class RNN(_Recurrent):
    """A multi-layer Elman RNN, h' = tanh(W_ih x + b_ih + W_hh h + b_hh), as torch.nn.RNN.

    `nonlinearity` is "tanh" (the default) or "relu".

    >>> import pyasg, numpy as np
    >>> rnn = RNN(3, 4, nonlinearity="relu")
    >>> rnn(rnn.init(pyasg.random.key(2)), np.ones((6, 3), np.float32))[0].shape
    (6, 4)
    """

    gates = 1

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dtype: str = "float32") -> None:
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dtype)
        self.nonlinearity = checks.choice(nonlinearity, "RNN", "nonlinearity", ("tanh", "relu"))

    def _cell(self) -> Callable[..., object]:
        return _rnn_cell(F.tanh if self.nonlinearity == "tanh" else F.relu)


for _kind, _g in (("GRU", "(r, z, n)"), ("RNN", "")):
    register_roles(_kind, {
        "weight_ih": f"input-to-hidden weights [gates·H, in] {_g}".rstrip(),
        "weight_hh": f"hidden-to-hidden (recurrent) weights [gates·H, H] {_g}".rstrip(),
        "bias_ih": "input-to-hidden bias",
        "bias_hh": "hidden-to-hidden bias",
    })
