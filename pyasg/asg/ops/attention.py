"""Scaled dot-product attention as primitives: the output, the row log-sum-exp, the gradients.

`Attention` is softmax(q kᵀ·scale + bias) v in one node, so that a backend may run it
without writing the T x S scores to memory (flash attention: an online softmax over
blocks of keys). A node has one output, so its backward pass is more single-output
nodes that each recompute the probabilities block by block from q, k and the row
log-sum-exp `AttentionLSE`: `AttentionGradQ`, `AttentionGradK`, `AttentionGradV`, and
`AttentionGradScores` (the gradient of the scores, T x S, needed only when the bias
itself wants a gradient). `delta = rowsum(dout * out)` is ordinary graph ops.

The price of one output per node is recompute: counting T·S·d products, the forward
takes 2 (q kᵀ, p v) and the backward 9 (the log-sum-exp 1, dq 3, dk 3, dv 2), 11 in
all where FlashAttention-2, whose backward kernel writes dk and dv together, takes 7.
What it buys: nothing of size T x S is ever stored, so memory is O(B·H·(T + S)·d).

Shapes, by the `layout` attribute: "bhtd" (PyTorch's): q [B, H, T, D], k [B, H, S, D],
v [B, H, S, Dv], the output [B, H, T, Dv]; "bthd" (JAX's, and a linear layer's output
reshaped: no transpose): q [B, T, H, D], k [B, S, H, D], v [B, S, H, Dv]. The row
values lse and delta have q's shape without its last axis. The optional `bias`, always
the LAST input, is 4-d with each dimension 1 or that of [B, H, T, S] in either layout
(a key-padding bias [B, 1, 1, S] is read through broadcast strides: no T x S copy).
One float dtype.

Semantics (the reference kernels in `pyasg.kernels.reference.attention` are the
definition): the scores are s = scale · q kᵀ + bias; with `is_causal`, query i sees
key j only where j <= i + (S - T) (`nn.attention.causal_mask`: the queries are the last
T of S positions), and a key it may not see is not read for it at all. A row whose
every score is -inf gets probabilities 0, so its output is 0 and its log-sum-exp -inf
(PyTorch's scaled_dot_product_attention since 2.5). A NaN in a score makes its whole
row NaN, as in a plain softmax.

The gradient nodes say `differentiable = False`: a second derivative through attention
raises `GradError` (first derivatives are exact).

>>> Attention(0.5, True).infer(TensorType((2, 4, 8, 16)), TensorType((2, 4, 10, 16)),
...                            TensorType((2, 4, 10, 32)), TensorType((2, 1, 1, 10)))
f32[2,4,8,32]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from pyasg.asg.ops.base import Op
from pyasg.asg.types import FLOAT_DTYPES, TensorType
from pyasg.errors import ShapeError

#: The layouts of q, k, v: heads before the sequence (PyTorch's) or after it (JAX's).
LAYOUTS = ("bhtd", "bthd")

__all__ = ["Attention", "AttentionGradK", "AttentionGradQ", "AttentionGradScores",
           "AttentionGradV", "AttentionLSE"]


def _show(shape: tuple) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


@dataclass(frozen=True)
class _AttentionOp(Op):
    """What every attention op shares: the score scale, the causal flag, the checks."""

    scale: float
    is_causal: bool = False
    layout: str = "bhtd"
    abstract: ClassVar[bool] = True
    category: ClassVar[str] = "attention"
    arity: ClassVar[int] = -1
    #: The names of the inputs before the optional bias, in order.
    operands: ClassVar[tuple[str, ...]] = ()

    def _unpack(self, inputs: tuple[TensorType, ...]) -> tuple[dict[str, TensorType],
                                                                 TensorType | None]:
        """{operand name: type}, and the bias (None without one); checks count and dtype."""
        n = len(self.operands)
        if len(inputs) not in (n, n + 1):
            raise ShapeError(f"{self.name} takes {', '.join(self.operands)} and an optional "
                             f"bias: {n} or {n + 1} inputs, got {len(inputs)}")
        if not isinstance(self.is_causal, bool) or isinstance(self.scale, bool) \
                or not isinstance(self.scale, (int, float)) or not math.isfinite(self.scale) \
                or self.layout not in LAYOUTS:
            raise ShapeError(f"{self.name}: scale must be a finite number, is_causal a bool "
                             f"and layout one of {', '.join(LAYOUTS)}; got scale="
                             f"{self.scale!r}, is_causal={self.is_causal!r}, "
                             f"layout={self.layout!r}")
        dtypes = {t.dtype for t in inputs}
        if len(dtypes) != 1 or inputs[0].dtype not in FLOAT_DTYPES:
            raise ShapeError(f"{self.name}: operands need one float dtype, got "
                             f"{', '.join(map(repr, inputs))}")
        return dict(zip(self.operands, inputs)), (inputs[n] if len(inputs) > n else None)

    def shape(self, B: int, H: int, L: int, *rest: int) -> tuple[int, ...]:
        """The shape of a [B, H, L, ...] value in this op's layout.

        >>> Attention(1.0, layout="bthd").shape(2, 4, 8, 16)
        (2, 8, 4, 16)
        """
        return (B, H, L, *rest) if self.layout == "bhtd" else (B, L, H, *rest)

    def _sizes(self, t: dict[str, TensorType], bias: TensorType | None) -> tuple[int, ...]:
        """(B, H, T, S, D, Dv) from q, k and v (or dout), with every shape checked."""
        q, k = t["q"], t["k"]
        names = "heads, length" if self.layout == "bhtd" else "length, heads"
        if q.ndim != 4 or k.ndim != 4:
            raise ShapeError(f"{self.name}: q and k must be [batch, {names}, head_dim] "
                             f"(layout {self.layout}), got q {q!r}, k {k!r}")
        B, H, T, D = self.shape(*q.shape[:3], q.shape[3])  # the swap is its own inverse
        S = k.shape[2] if self.layout == "bhtd" else k.shape[1]
        if k.shape != self.shape(B, H, S, D):
            raise ShapeError(f"{self.name}: k must be {_show(self.shape(B, H, 'S', D))} to "
                             f"match q {q!r} (layout {self.layout}), got {k!r}")
        values = t["v"] if "v" in t else t.get("dout")
        Dv = values.shape[-1] if values is not None and values.ndim == 4 else 0
        if "v" in t and t["v"].shape != self.shape(B, H, S, Dv):
            raise ShapeError(f"{self.name}: v must be {_show(self.shape(B, H, S, 'Dv'))} to "
                             f"match k {k!r} (layout {self.layout}), got {t['v']!r}")
        want = {"dout": self.shape(B, H, T, Dv), "lse": self.shape(B, H, T),
                "delta": self.shape(B, H, T)}
        for name, shape in want.items():
            if name in t and t[name].shape != shape:
                raise ShapeError(f"{self.name}: {name} must be {list(shape)} for q {q!r}, "
                                 f"got {t[name]!r}")
        if bias is not None and (bias.ndim != 4 or any(
                d not in (1, n) for d, n in zip(bias.shape, (B, H, T, S)))):
            raise ShapeError(f"{self.name}: bias must be 4-d with each dimension 1 or that of "
                             f"[B, H, T, S] = [{B}, {H}, {T}, {S}], got {bias!r}")
        return B, H, T, S, D, Dv


@dataclass(frozen=True)
class Attention(_AttentionOp):
    """softmax(q kᵀ·scale + bias) v over the keys, per batch and head (flash-style kernels)."""

    operands: ClassVar[tuple[str, ...]] = ("q", "k", "v")

    def infer(self, *inputs: TensorType) -> TensorType:
        t, bias = self._unpack(inputs)
        B, H, T, S, D, Dv = self._sizes(t, bias)
        return TensorType(self.shape(B, H, T, Dv), t["q"].dtype)


@dataclass(frozen=True)
class AttentionLSE(_AttentionOp):
    """log Σ_j exp(s_ij) of each query row of the scores (-inf where every key is blocked)."""

    operands: ClassVar[tuple[str, ...]] = ("q", "k")
    name: ClassVar[str] = "attention_lse"
    differentiable: ClassVar[bool] = False

    def infer(self, *inputs: TensorType) -> TensorType:
        t, bias = self._unpack(inputs)
        B, H, T, *_ = self._sizes(t, bias)
        return TensorType(self.shape(B, H, T), t["q"].dtype)


_GRAD_OPERANDS = ("q", "k", "v", "dout", "lse", "delta")


@dataclass(frozen=True)
class AttentionGradQ(_AttentionOp):
    """Gradient of attention's output with respect to q: scale · Σ_j ds_ij k_j."""

    operands: ClassVar[tuple[str, ...]] = _GRAD_OPERANDS
    differentiable: ClassVar[bool] = False

    def infer(self, *inputs: TensorType) -> TensorType:
        t, bias = self._unpack(inputs)
        self._sizes(t, bias)
        return t["q"]


@dataclass(frozen=True)
class AttentionGradK(_AttentionOp):
    """Gradient of attention's output with respect to k: scale · Σ_i ds_ij q_i."""

    operands: ClassVar[tuple[str, ...]] = _GRAD_OPERANDS
    differentiable: ClassVar[bool] = False

    def infer(self, *inputs: TensorType) -> TensorType:
        t, bias = self._unpack(inputs)
        self._sizes(t, bias)
        return t["k"]


@dataclass(frozen=True)
class AttentionGradV(_AttentionOp):
    """Gradient of attention's output with respect to v: Σ_i p_ij dout_i."""

    operands: ClassVar[tuple[str, ...]] = ("q", "k", "dout", "lse")
    differentiable: ClassVar[bool] = False

    def infer(self, *inputs: TensorType) -> TensorType:
        t, bias = self._unpack(inputs)
        B, H, T, S, D, Dv = self._sizes(t, bias)
        return TensorType(self.shape(B, H, S, Dv), t["q"].dtype)


@dataclass(frozen=True)
class AttentionGradScores(_AttentionOp):
    """Gradient with respect to the scores, ds = p (dout·v − delta): [B, H, T, S] always."""

    operands: ClassVar[tuple[str, ...]] = _GRAD_OPERANDS
    differentiable: ClassVar[bool] = False

    def infer(self, *inputs: TensorType) -> TensorType:
        t, bias = self._unpack(inputs)
        B, H, T, S, *_ = self._sizes(t, bias)
        return TensorType((B, H, T, S), t["q"].dtype)
