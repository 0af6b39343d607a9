"""Floating-point operations of a node: one row per op that does the arithmetic that counts.

A multiply-add is two FLOPs, as in every vendor's peak figure: a matmul of [m, k] by
[k, n] is 2·m·k·n (times its batch), a convolution 2·(output elements)·(C/groups)·kh·kw,
and each of the convolution's two gradients the same as the convolution it belongs
to. Padding is counted as if it were data (as PyTorch's and JAX's FLOP counters do).
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


#: op class -> its FLOPs from (op, input types, output type).
FLOPS: dict[type[Op], Rule] = {
    MatMul: _matmul,
    Conv2d: _conv,
    Conv2dBackwardInput: _conv_input_grad,
    Conv2dBackwardWeight: _conv_weight_grad,
}


def node_flops(op: Op, in_types: Sequence[TensorType], out_type: TensorType) -> int | None:
    """The FLOPs of one node, or None when none of its ops is counted (see module doc)."""
    if isinstance(op, Fused):
        sub = op.graph
        counted = [node_flops(n.op, [sub.nodes[j].type for j in n.inputs], n.type)
                   for n in (sub.nodes[i] for i in sub.live_ids)
                   if not isinstance(n.op, (Input, Constant))]
        known = [f for f in counted if f is not None]
        return sum(known) if known else None
    rule = FLOPS.get(type(op))
    return None if rule is None else rule(op, in_types, out_type)
