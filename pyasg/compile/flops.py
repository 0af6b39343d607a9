"""Floating-point operations of a node: one row per op that does the arithmetic that counts.

A multiply-add is two FLOPs, as in every vendor's peak figure: a matmul of [m, k] by
[k, n] is 2·m·k·n (times its batch), a convolution 2·(output elements)·(C/groups)·kh·kw,
and each of the convolution's two gradients the same as the convolution it belongs
to. Padding is counted as if it were data (as PyTorch's and JAX's FLOP counters do).
Attention counts its products over all T x S scores: q kᵀ (2·D each) and the value
products (2·Dv each), as many of each as its definition needs (a gradient recomputes
the scores); keys a causal mask hides are counted too, as in the benchmark's
`LMConfig.flops`, though a causal kernel skips about half of them.
Elementwise ops, reductions and moves are not counted: their cost is memory traffic.
A fused group counts the ops inside it.

>>> from pyasg.asg.ops import MatMul
>>> node_flops(MatMul(), (TensorType((8, 3)), TensorType((3, 5))), TensorType((8, 5)))
240
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from pyasg.asg.ops import (
    Attention,
    AttentionGradK,
    AttentionGradQ,
    AttentionGradScores,
    AttentionGradV,
    AttentionLSE,
    Constant,
    Conv2d,
    Conv2dBackwardInput,
    Conv2dBackwardWeight,
    Fused,
    Input,
    MatMul,
    Op,
)
from pyasg.asg.types import TensorType

Rule = Callable[[Op, Sequence[TensorType], TensorType], int]


def _matmul(op: Op, ins: Sequence[TensorType], out: TensorType) -> int:
    return 2 * out.size * ins[0].shape[-1]  # each output element: k multiply-adds


def _conv(op: Op, ins: Sequence[TensorType], out: TensorType) -> int:
    # x [N, C, H, W] * w [O, C/g, kh, kw] -> out [N, O, Ho, Wo]
    return 2 * out.size * math.prod(ins[1].shape[1:])


def _conv_input_grad(op: Op, ins: Sequence[TensorType], out: TensorType) -> int:
    # g [N, O, Ho, Wo] * w [O, C/g, kh, kw] -> dx: the forward's multiply-adds
    return 2 * ins[0].size * math.prod(ins[1].shape[1:])


def _conv_weight_grad(op: Op, ins: Sequence[TensorType], out: TensorType) -> int:
    # x, g [N, O, Ho, Wo] -> dw [O, C/g, kh, kw]: the forward's multiply-adds
    return 2 * ins[1].size * math.prod(out.shape[1:])


#: attention op -> (score products q·k, value products against v or dout) it computes
#: per score: the output is p·v after the scores; dq and dk need the scores, dout·vᵀ
#: and one more product with k or q; dv and the score gradient one each after the scores.
ATTENTION_PRODUCTS: dict[type[Op], tuple[int, int]] = {
    Attention: (1, 1),
    AttentionLSE: (1, 0),
    AttentionGradQ: (2, 1),
    AttentionGradK: (2, 1),
    AttentionGradV: (1, 1),
    AttentionGradScores: (1, 1),
}


def _attention(op: Op, ins: Sequence[TensorType], out: TensorType) -> int:
    # q [B, H, T, D], k [B, H, S, D], then v or dout [..., Dv] (absent for the LSE)
    by_d, by_dv = ATTENTION_PRODUCTS[type(op)]
    q, k = ins[0], ins[1]
    scores = q.size // q.shape[-1] * k.shape[-2]
    dv = ins[2].shape[-1] if by_dv else 0
    return 2 * scores * (by_d * q.shape[-1] + by_dv * dv)


#: op class -> its FLOPs from (op, input types, output type).
FLOPS: dict[type[Op], Rule] = {
    MatMul: _matmul,
    Conv2d: _conv,
    Conv2dBackwardInput: _conv_input_grad,
    Conv2dBackwardWeight: _conv_weight_grad,
    **{op: _attention for op in ATTENTION_PRODUCTS},
}


def node_flops(op: Op, in_types: Sequence[TensorType], out_type: TensorType) -> int | None:
    """The FLOPs of one node, or None when none of its ops is counted (see module doc).

    >>> q, k, v = TensorType((2, 4, 8, 16)), TensorType((2, 4, 10, 16)), TensorType((2, 4, 10, 32))
    >>> node_flops(Attention(0.25), (q, k, v), q) == 2 * (2 * 4 * 8 * 10) * (16 + 32)
    True
    """
    if isinstance(op, Fused):
        sub = op.graph
        counted = [node_flops(n.op, [sub.nodes[j].type for j in n.inputs], n.type)
                   for n in (sub.nodes[i] for i in sub.live_ids)
                   if not isinstance(n.op, (Input, Constant))]
        known = [f for f in counted if f is not None]
        return sum(known) if known else None
    rule = FLOPS.get(type(op))
    return None if rule is None else rule(op, in_types, out_type)
