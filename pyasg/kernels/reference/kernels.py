"""The reference kernels: one obviously correct numpy function per op, in one table.

`KERNELS[op class](op, *arrays)` returns the op's value. No buffers, no speed tricks:
each kernel is numpy's own function for what the op means, so this table is the
oracle the numpy and wgpu backends are tested against, and what eager calls and
constant folding evaluate with (`evaluate`). Nothing is coerced: a kernel whose
value is not of the type its op's shape rule gives is an error, not a silent cast.

>>> from pyasg.asg.ops import Exp
>>> float(evaluate(Exp(), np.zeros((), np.float32)))
1.0
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from pyasg.asg import ops
from pyasg.asg.graph import Graph
from pyasg.asg.types import TensorType
from pyasg.errors import BackendError
from pyasg.kernels.reference import attention, conv
from pyasg.kernels.reference.random import random_bits

try:
    from scipy.special import erf as _scipy_erf
except ImportError:  # scipy is a dev dependency; the standard library is exact too
    _scipy_erf = None


def erf(x: np.ndarray) -> np.ndarray:
    """erf in float64, rounded once to x's dtype."""
    wide = np.asarray(x, np.float64)
    if _scipy_erf is not None:
        return _scipy_erf(wide).astype(x.dtype)
    return np.vectorize(math.erf, otypes=[np.float64])(wide).astype(x.dtype)


#: The ufunc of every elementwise op: the op means exactly what numpy's function does.
UFUNCS: dict[type, Callable] = {
    ops.Neg: np.negative, ops.Abs: np.absolute, ops.Sign: np.sign, ops.Exp: np.exp,
    ops.Log: np.log, ops.Log1p: np.log1p, ops.Expm1: np.expm1, ops.Sqrt: np.sqrt,
    ops.Sin: np.sin, ops.Cos: np.cos, ops.Tanh: np.tanh, ops.Erf: erf,
    ops.Add: np.add, ops.Sub: np.subtract, ops.Mul: np.multiply, ops.Div: np.true_divide,
    ops.FloorDiv: np.floor_divide, ops.Mod: np.remainder, ops.Pow: np.power,
    ops.Maximum: np.maximum, ops.Minimum: np.minimum,
    ops.Less: np.less, ops.LessEqual: np.less_equal, ops.Greater: np.greater,
    ops.GreaterEqual: np.greater_equal, ops.Equal: np.equal, ops.NotEqual: np.not_equal,
}


def _slice(op: ops.Slice, x: np.ndarray) -> np.ndarray:
    # element k of an axis is start + k step for k < len(range(start, stop, step)), as
    # the shape rule counts: a literal range, so a stop of -1 means "past index 0"
    # going down and "nothing" going up (Python's slice would read it from the end)
    return x[np.ix_(*(np.arange(a, b, c) for a, b, c in zip(op.starts, op.stops, op.steps)))]


def _pad(op: ops.Pad, x: np.ndarray) -> np.ndarray:
    shape = tuple(lo + hi + d + max(d - 1, 0) * mid
                  for d, (lo, hi, mid) in zip(x.shape, op.widths))
    out = np.full(shape, np.full((), op.value, x.dtype), x.dtype)
    out[tuple(slice(lo, lo + (d - 1) * (mid + 1) + 1, mid + 1) if d else slice(0, 0)
              for d, (lo, _, mid) in zip(x.shape, op.widths))] = x
    return out


def _scatter_add(op: ops.ScatterAdd, updates: np.ndarray, indices: np.ndarray) -> np.ndarray:
    shape = updates.shape[: op.axis] + (op.size,) + updates.shape[op.axis + indices.ndim:]
    out = np.zeros(shape, updates.dtype)
    np.add.at(out, (slice(None),) * op.axis + (indices,), updates)
    return out


def _conv(op: ops.Conv2d, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    return conv.conv2d(x, w, op.stride, op.padding, op.dilation, op.groups)


def _conv_input(op: ops.Conv2dBackwardInput, g: np.ndarray, w: np.ndarray) -> np.ndarray:
    return conv.conv2d_backward_input(g, w, op.stride, op.padding, op.dilation, op.groups,
                                      op.input_size)


def _conv_weight(op: ops.Conv2dBackwardWeight, x: np.ndarray, g: np.ndarray) -> np.ndarray:
    return conv.conv2d_backward_weight(x, g, op.stride, op.padding, op.dilation, op.groups,
                                       op.kernel_size)


def _max_pool(op: ops.MaxPool2dIndices, x: np.ndarray) -> np.ndarray:
    return conv.max_pool2d_indices(x, op.kernel_size, op.stride, op.padding, op.dilation)


def _fused(op: ops.Fused, *xs: np.ndarray) -> np.ndarray:
    return run_graph(op.graph, xs)[0]


#: op class -> kernel(op, *arrays): every op but the leaves (inputs and constants).
KERNELS: dict[type, Callable[..., np.ndarray]] = {
    **{cls: (lambda op, *xs, f=f: f(*xs)) for cls, f in UFUNCS.items()},
    ops.Where: lambda op, c, x, y: np.where(c, x, y),
    ops.Cast: lambda op, x: x.astype(op.dtype),
    ops.StopGradient: lambda op, x: x.copy(),
    ops.Sum: lambda op, x: np.sum(x, axis=op.axes, keepdims=op.keepdims, dtype=x.dtype),
    ops.Max: lambda op, x: np.max(x, axis=op.axes, keepdims=op.keepdims) if op.axes
    else x.copy(),
    ops.ArgMax: lambda op, x: np.argmax(x, axis=op.axis, keepdims=op.keepdims).astype(np.int32),
    ops.Reshape: lambda op, x: x.reshape(ops.resolve_reshape(x.shape, op.shape)).copy(),
    ops.Transpose: lambda op, x: np.transpose(x, op.perm).copy(),
    ops.BroadcastTo: lambda op, x: np.broadcast_to(x, op.shape).copy(),
    ops.Slice: _slice,
    ops.Pad: _pad,
    ops.Concatenate: lambda op, *xs: np.concatenate(xs, axis=op.axis),
    ops.MatMul: lambda op, a, b: np.matmul(a, b),
    ops.Gather: lambda op, x, i: np.take(x, i, axis=op.axis),
    ops.ScatterAdd: _scatter_add,
    ops.RandomBits: lambda op, key: random_bits(key, op.shape),
    ops.Conv2d: _conv,
    ops.Conv2dBackwardInput: _conv_input,
    ops.Conv2dBackwardWeight: _conv_weight,
    ops.MaxPool2dIndices: _max_pool,
    ops.Fused: _fused,
    ops.CustomCall: _fused,  # the values are the primal function's
    **attention.KERNELS,
}


def evaluate(op: ops.Op, *arrays: np.ndarray) -> np.ndarray:
    """Run one op on concrete arrays; the value has exactly the type `op.infer` gives.

    >>> from pyasg.asg.ops import Add
    >>> evaluate(Add(), np.ones(2, np.float32), np.ones(2, np.float32)).tolist()
    [2.0, 2.0]
    """
    out_type = op.infer(*(TensorType.of(a) for a in arrays))
    kernel = KERNELS.get(type(op))
    if kernel is None:
        raise BackendError(f"the reference backend has no kernel for {op.name}")
    value = np.asarray(kernel(op, *arrays))
    if value.shape != out_type.shape or value.dtype != np.dtype(out_type.dtype):
        # a wrong kernel, never the user's input: the oracle must not hide it by a cast
        raise BackendError(f"the reference kernel of {op} gave {value.dtype}{list(value.shape)}"
                           f", its shape rule says {out_type!r}")
    return value


class NodeFailed(BackendError):
    """Evaluating node %`node_id` of a graph raised `error` (kept as the cause too)."""

    def __init__(self, graph: Graph, node_id: int, name: str, error: Exception) -> None:
        node = graph.nodes[node_id]
        self.node_id, self.error = node_id, error
        super().__init__(f"{node.op} (node %{node_id}) failed while running {name}: "
                         f"{type(error).__name__}: {error}", node.source)


def run_graph(graph: Graph, arrays: Sequence[np.ndarray],
              name: str = "graph") -> tuple[np.ndarray, ...]:
    """Evaluate every live node of `graph` in order from its input arrays; returns the
    outputs. A failing kernel raises `NodeFailed` naming its node (for a node inside a
    fused node's sub-graph: the fused node).

    >>> from pyasg.asg.graph import GraphBuilder
    >>> b = GraphBuilder(); x = b.add_input("x", TensorType((2,)))
    >>> run_graph(b.build([b.add(ops.Neg(), (x,))]), [np.ones(2, np.float32)])[0].tolist()
    [-1.0, -1.0]
    """
    values = dict(zip(graph.inputs, arrays))
    for i in graph.live_ids:
        if i in values:
            continue
        node = graph.nodes[i]
        if isinstance(node.op, ops.Constant):
            values[i] = node.op.value
            continue
        try:
            values[i] = evaluate(node.op, *(values[j] for j in node.inputs))
        except NodeFailed as e:  # raised inside a fused node's sub-graph
            raise NodeFailed(graph, i, name, e.error) from e.error
        except Exception as e:
            raise NodeFailed(graph, i, name, e) from e
    return tuple(values[i] for i in graph.outputs)
