"""numpy kernels of the attention ops: the materialised softmax, computed in place.

The T x S scores are whole arrays here (BLAS does the products; a CPU has the memory).
The results are the reference's (`pyasg.kernels.reference.attention`, which the parity
tests compare against), but each kernel makes its [B, H, T, S] scores once and then
works on them in place — scale, bias, causal mask, max, exp, sum, divide — where the
reference's plain formulas allocate an array per step; on W2 (T = S = 64) that is most
of an attention kernel's time. The causal mask is made once, when the kernel is.
Where a row's log-sum-exp is not finite (all keys blocked, or NaN), the recomputed
probabilities take the reference's formula, whose rule for such rows is explicit.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from pyasg.asg import ops
from pyasg.kernels import lower
from pyasg.kernels.numpy.backend import NumpyBackend, NumpyKernel
from pyasg.kernels.reference import attention as reference


class _Scores:
    """s = scale · q kᵀ + bias, -inf where the causal mask blocks: one fresh array."""

    def __init__(self, op: ops.Op, T: int, S: int) -> None:
        self.scale, self.causal = op.scale, op.is_causal
        self.blocked = reference.causal_blocked(T, S) if op.is_causal else None

    def __call__(self, q: np.ndarray, k: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
        s = np.matmul(q, np.swapaxes(k, -1, -2))
        s *= s.dtype.type(self.scale)
        if bias is not None:
            s += bias
        if self.blocked is not None:
            np.copyto(s, s.dtype.type(-np.inf), where=self.blocked)
        return s


def _shifted_exp(s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """exp(s - row max) in place of `s`, the row max (0 for a row whose every score is
    -inf: its exps are then 0) and which rows those are; a NaN in a row makes its max
    NaN, so the whole row is NaN."""
    if s.shape[-1] == 0:
        blocked = np.ones(s.shape[:-1] + (1,), bool)
        return s, np.zeros(blocked.shape, s.dtype), blocked
    m = np.max(s, axis=-1, keepdims=True)
    blocked = m == -np.inf
    m[blocked] = 0
    with np.errstate(invalid="ignore", over="ignore"):
        s -= m
        np.exp(s, out=s)
    return s, m, blocked


def _probabilities(s: np.ndarray) -> np.ndarray:
    """softmax of each row in place; a row whose every score is -inf gives 0."""
    e, _, blocked = _shifted_exp(s)
    total = np.sum(e, axis=-1, keepdims=True)
    total[blocked] = 1  # its exps are all 0: 0, not 0/0
    e /= total
    return e


def _recomputed(s: np.ndarray, lse: np.ndarray, q: np.ndarray, k: np.ndarray,
                bias: np.ndarray | None, op: ops.Op) -> np.ndarray:
    """exp(s - lse) in place: the probabilities again from the row log-sum-exp."""
    if not np.isfinite(lse).all():  # blocked rows (lse -inf) or NaN: the explicit rule
        return reference.recomputed(q, k, lse, bias, op.scale, op.is_causal)
    with np.errstate(over="ignore"):
        s -= lse[..., None]
        np.exp(s, out=s)
    return s


def _layout(op: ops.Op, *xs: np.ndarray) -> list[np.ndarray]:
    """The operands in the [B, H, L, ...] layout the products are taken in."""
    return [x if op.layout == "bhtd" else np.swapaxes(x, 1, 2) for x in xs]


def _result(op: ops.Op, x: np.ndarray) -> np.ndarray:
    """A [B, H, L, ...] result in the op's layout."""
    return x if op.layout == "bhtd" else np.ascontiguousarray(np.swapaxes(x, 1, 2))


def _bias(rest: tuple) -> np.ndarray | None:
    return rest[0] if rest else None


def _attention(op: ops.Attention, scores: _Scores) -> Callable[..., np.ndarray]:
    def attention(q, k, v, *rest):  # noqa: ANN001, ANN202
        q, k, v = _layout(op, q, k, v)
        p = _probabilities(scores(q, k, _bias(rest)))
        return _result(op, reference.weighted_values(p, v, op.is_causal))
    return attention


def _lse(op: ops.AttentionLSE, scores: _Scores) -> Callable[..., np.ndarray]:
    def log_sum_exp(q, k, *rest):  # noqa: ANN001, ANN202
        q, k = _layout(op, q, k)
        e, m, blocked = _shifted_exp(scores(q, k, _bias(rest)))
        with np.errstate(divide="ignore"):
            out = m + np.log(np.sum(e, axis=-1, keepdims=True))
        out[blocked] = -np.inf
        return _result(op, out[..., 0])
    return log_sum_exp


def _grad_scores(op: ops.Op, scores: _Scores, q, k, v, dout, lse, delta, bias):  # noqa: ANN001, ANN202
    """ds = p (dout vᵀ - delta), 0 where the causal mask blocks."""
    p = _recomputed(scores(q, k, bias), lse, q, k, bias, op)
    ds = np.matmul(dout, np.swapaxes(v, -1, -2))
    ds -= delta[..., None]
    ds *= p
    if scores.blocked is not None:
        np.copyto(ds, ds.dtype.type(0), where=scores.blocked)
    return ds


def _grad_q(op: ops.AttentionGradQ, scores: _Scores) -> Callable[..., np.ndarray]:
    def grad_q(*xs):  # noqa: ANN002, ANN202
        q, k, v, dout, lse, delta = _layout(op, *xs[:6])
        ds = _grad_scores(op, scores, q, k, v, dout, lse, delta, _bias(xs[6:]))
        out = np.matmul(ds, k)
        out *= out.dtype.type(op.scale)
        return _result(op, out)
    return grad_q


def _grad_k(op: ops.AttentionGradK, scores: _Scores) -> Callable[..., np.ndarray]:
    def grad_k(*xs):  # noqa: ANN002, ANN202
        q, k, v, dout, lse, delta = _layout(op, *xs[:6])
        ds = _grad_scores(op, scores, q, k, v, dout, lse, delta, _bias(xs[6:]))
        out = np.matmul(np.swapaxes(ds, -1, -2), q)
        out *= out.dtype.type(op.scale)
        return _result(op, out)
    return grad_k


def _grad_v(op: ops.AttentionGradV, scores: _Scores) -> Callable[..., np.ndarray]:
    def grad_v(*xs):  # noqa: ANN002, ANN202
        q, k, dout, lse = _layout(op, *xs[:4])
        bias = _bias(xs[4:])
        p = _recomputed(scores(q, k, bias), lse, q, k, bias, op)
        return _result(op, np.matmul(np.swapaxes(p, -1, -2), dout))
    return grad_v


def _grad_scores_op(op: ops.AttentionGradScores, scores: _Scores) -> Callable[..., np.ndarray]:
    def grad_scores(*xs):  # noqa: ANN002, ANN202
        q, k, v, dout, lse, delta = _layout(op, *xs[:6])
        return _grad_scores(op, scores, q, k, v, dout, lse, delta, _bias(xs[6:]))
    return grad_scores


#: op class -> the maker of its kernel function, given the op and its scores maker
MAKERS = {
    ops.Attention: _attention,
    ops.AttentionLSE: _lse,
    ops.AttentionGradQ: _grad_q,
    ops.AttentionGradK: _grad_k,
    ops.AttentionGradV: _grad_v,
    ops.AttentionGradScores: _grad_scores_op,
}


@lower.register(ops.Attention, NumpyBackend)
@lower.register(ops.AttentionLSE, NumpyBackend)
@lower.register(ops.AttentionGradQ, NumpyBackend)
@lower.register(ops.AttentionGradK, NumpyBackend)
@lower.register(ops.AttentionGradV, NumpyBackend)
@lower.register(ops.AttentionGradScores, NumpyBackend)
def _(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
    q, k = in_types[0].shape, in_types[1].shape
    time_axis = 2 if op.layout == "bhtd" else 1
    scores = _Scores(op, q[time_axis], k[time_axis])
    return NumpyKernel(MAKERS[type(op)](op, scores))
