"""Reference attention kernels: the materialised softmax(q kᵀ·scale + bias) v and its gradients.

The definition of the attention ops (`pyasg.asg.ops.attention`), written the plain way:
the [B, H, T, S] scores, their softmax and its products are whole arrays (operands in
the "bthd" layout are read as their [B, H, L, d] transposes). The probabilities are
numpy's softmax with PyTorch's one rule for a row whose every score is -inf (all
blocked): its probabilities are 0, not 0/0. Keys that the causal mask hides from a
query are not read for it (a NaN or inf there does not reach its output), as a kernel
that skips the blocked key tiles computes.

>>> q = np.zeros((1, 1, 2, 1)); v = np.arange(6.0).reshape(1, 1, 3, 2)
>>> attention(q, q[:, :, :1].repeat(3, 2), v, None, 1.0, False)[0, 0].tolist()
[[2.0, 3.0], [2.0, 3.0]]
"""

from __future__ import annotations

import numpy as np

from pyasg.asg import ops


def causal_blocked(T: int, S: int) -> np.ndarray:
    """Bool [T, S], True where query i may not see key j: j > i + (S - T).

    >>> causal_blocked(2, 3).tolist()
    [[False, False, True], [False, False, False]]
    """
    return np.arange(S)[None, :] > np.arange(T)[:, None] + (S - T)


def scores(q: np.ndarray, k: np.ndarray, bias: np.ndarray | None, scale: float,
           is_causal: bool) -> np.ndarray:
    """s = scale · q kᵀ + bias, replaced by -inf where the causal mask blocks, [B, H, T, S]."""
    s = np.matmul(q, np.swapaxes(k, -1, -2)) * q.dtype.type(scale)
    if bias is not None:
        s = s + bias
    if is_causal:
        s = np.where(causal_blocked(q.shape[2], k.shape[2]), q.dtype.type(-np.inf), s)
    return s


def _row_max(s: np.ndarray) -> np.ndarray:
    """The max of each row of scores, keepdims (-inf for a row of no keys); NaN wins."""
    if s.shape[-1] == 0:
        return np.full(s.shape[:-1] + (1,), -np.inf, s.dtype)
    return np.max(s, axis=-1, keepdims=True)


def probabilities(s: np.ndarray) -> np.ndarray:
    """softmax over the last axis; a row whose every score is -inf gives 0."""
    with np.errstate(invalid="ignore", over="ignore"):
        m = _row_max(s)
        blocked = m == -np.inf
        e = np.exp(s - np.where(blocked, s.dtype.type(0), m))
        return e / np.where(blocked, s.dtype.type(1), np.sum(e, axis=-1, keepdims=True))


def weighted_values(p: np.ndarray, v: np.ndarray, is_causal: bool) -> np.ndarray:
    """Σ_j p_ij v_j over the keys j that query i may see."""
    if not is_causal or np.isfinite(v).all():
        return np.matmul(p, v)  # a hidden key has p = 0, and 0 · finite = 0
    T, S = p.shape[-2], v.shape[-2]
    out = np.empty(p.shape[:-1] + v.shape[-1:], p.dtype)
    for i in range(T):  # 0 · NaN is NaN: leave out what query i may not see
        n = min(max(i + S - T + 1, 0), S)
        out[..., i, :] = np.matmul(p[..., i:i + 1, :n], v[..., :n, :])[..., 0, :]
    return out


def attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, bias: np.ndarray | None,
              scale: float, is_causal: bool) -> np.ndarray:
    """softmax(scale · q kᵀ + bias) v, [B, H, T, Dv]."""
    p = probabilities(scores(q, k, bias, scale, is_causal))
    return weighted_values(p, v, is_causal)


def log_sum_exp(q: np.ndarray, k: np.ndarray, bias: np.ndarray | None, scale: float,
                is_causal: bool) -> np.ndarray:
    """log Σ_j exp(s_ij) per query row, [B, H, T]; -inf for a row of blocked keys."""
    s = scores(q, k, bias, scale, is_causal)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        m = _row_max(s)
        blocked = m == -np.inf
        m = np.where(blocked, s.dtype.type(0), m)
        total = np.sum(np.exp(s - m), axis=-1, keepdims=True)
        return np.where(blocked, s.dtype.type(-np.inf), m + np.log(total))[..., 0]


def recomputed(q: np.ndarray, k: np.ndarray, lse: np.ndarray, bias: np.ndarray | None,
               scale: float, is_causal: bool) -> np.ndarray:
    """The probabilities again from the scores and the row log-sum-exp: exp(s - lse),
    0 where s is -inf (and so in a row of blocked keys, whose lse is -inf too)."""
    s = scores(q, k, bias, scale, is_causal)
    with np.errstate(invalid="ignore", over="ignore"):
        return np.where(s == -np.inf, s.dtype.type(0), np.exp(s - lse[..., None]))


def grad_scores(q: np.ndarray, k: np.ndarray, v: np.ndarray, dout: np.ndarray,
                lse: np.ndarray, delta: np.ndarray, bias: np.ndarray | None, scale: float,
                is_causal: bool) -> np.ndarray:
    """ds = p (dout vᵀ - delta), the gradient of the scores, [B, H, T, S]; 0 where blocked."""
    p = recomputed(q, k, lse, bias, scale, is_causal)
    ds = p * (np.matmul(dout, np.swapaxes(v, -1, -2)) - delta[..., None])
    if is_causal:
        ds = np.where(causal_blocked(q.shape[2], k.shape[2]), q.dtype.type(0), ds)
    return ds


def _bias(rest: tuple) -> np.ndarray | None:
    """The optional bias: the input after the op's operands, or None."""
    return rest[0] if rest else None


def _bhtd(op: ops.Op, *xs: np.ndarray) -> list[np.ndarray]:
    """The operands in the [B, H, L, ...] layout these functions compute in."""
    return [x if op.layout == "bhtd" else np.swapaxes(x, 1, 2) for x in xs]


def _back(op: ops.Op, x: np.ndarray) -> np.ndarray:
    """A [B, H, L, ...] result in the op's layout."""
    return x if op.layout == "bhtd" else np.ascontiguousarray(np.swapaxes(x, 1, 2))


def _attention(op: ops.Attention, q, k, v, *rest):  # noqa: ANN001, ANN202
    return _back(op, attention(*_bhtd(op, q, k, v), _bias(rest), op.scale, op.is_causal))


def _lse(op: ops.AttentionLSE, q, k, *rest):  # noqa: ANN001, ANN202
    return _back(op, log_sum_exp(*_bhtd(op, q, k), _bias(rest), op.scale, op.is_causal))


def _scores_grad(op, q, k, v, dout, lse, delta, rest):  # noqa: ANN001, ANN202
    return grad_scores(q, k, v, dout, lse, delta, _bias(rest), op.scale, op.is_causal)


def _grad_q(op: ops.AttentionGradQ, *xs):  # noqa: ANN001, ANN202
    q, k, v, dout, lse, delta = _bhtd(op, *xs[:6])
    ds = _scores_grad(op, q, k, v, dout, lse, delta, xs[6:])
    return _back(op, np.matmul(ds, k) * q.dtype.type(op.scale))


def _grad_k(op: ops.AttentionGradK, *xs):  # noqa: ANN001, ANN202
    q, k, v, dout, lse, delta = _bhtd(op, *xs[:6])
    ds = _scores_grad(op, q, k, v, dout, lse, delta, xs[6:])
    return _back(op, np.matmul(np.swapaxes(ds, -1, -2), q) * q.dtype.type(op.scale))


def _grad_v(op: ops.AttentionGradV, *xs):  # noqa: ANN001, ANN202
    q, k, dout, lse = _bhtd(op, *xs[:4])
    p = recomputed(q, k, lse, _bias(xs[4:]), op.scale, op.is_causal)
    return _back(op, np.matmul(np.swapaxes(p, -1, -2), dout))


def _grad_scores(op: ops.AttentionGradScores, *xs):  # noqa: ANN001, ANN202
    return _scores_grad(op, *_bhtd(op, *xs[:6]), xs[6:])  # [B, H, T, S] in both layouts


#: op class -> reference kernel(op, *arrays): the rows of `reference.kernels.KERNELS`.
KERNELS = {
    ops.Attention: _attention,
    ops.AttentionLSE: _lse,
    ops.AttentionGradQ: _grad_q,
    ops.AttentionGradK: _grad_k,
    ops.AttentionGradV: _grad_v,
    ops.AttentionGradScores: _grad_scores,
}
