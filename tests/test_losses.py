"""pyasg.losses against their definitions, written here in numpy.

For every loss and every reduction the value is compared with a numpy computation of
the formula (cross entropy from an explicit log-sum-exp, label smoothing as a smoothed
target distribution, ignore_index by dropping rows, class weights by PyTorch's mean
rule); gradients are compared with central differences in float64 (tests/gradcheck.py)
away from kinks; binary_cross_entropy_with_logits is checked at logits of ±100 and
±1000; a traced call must equal the eager one. Expected values never come from pyasg.
Tests that compare with PyTorch skip themselves where torch is not installed.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pytest
from gradcheck import check_grad
from hypothesis import given, settings
from hypothesis import strategies as st

import pyasg
from pyasg import losses as L
from pyasg.errors import PyasgError, ShapeError

REDUCTIONS = ("mean", "sum", "none")


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


# --------------------------------------------------------------------------- numpy definitions


def np_log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    """x - log Σ exp(x), the log-sum-exp shifted by the maximum."""
    m = x.max(axis=axis, keepdims=True)
    return x - (m + np.log(np.exp(x - m).sum(axis=axis, keepdims=True)))


def np_reduce(per: np.ndarray, reduction: str) -> np.ndarray:
    return {"mean": np.mean, "sum": np.sum, "none": np.asarray}[reduction](per)


def np_log_sigmoid(x: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -x)  # log(1 / (1 + e^-x)), exact for any x


def np_sigmoid(x: np.ndarray) -> np.ndarray:
    return np.exp(np_log_sigmoid(x))


def np_class_targets(x: np.ndarray, target: np.ndarray, weight: np.ndarray | None = None,
                     ignore_index: int = -100, reduction: str = "mean",
                     label_smoothing: float = 0.0, log_probs: bool = False) -> np.ndarray:
    """Cross entropy (or nll with log_probs) for class-index targets, one sample at a time.

    Sample n with target k (not ignored) has smoothed target distribution
    q = (1 - ε) onehot(k) + ε / C and loss -Σ_c w_c q_c log p_c; "mean" divides the
    sum by Σ w_k over the samples that are not ignored (PyTorch's rule).
    """
    single = x.ndim == 1
    if single:
        x, target = x[None], np.asarray(target)[None]
    n_classes = x.shape[1]
    logp = x if log_probs else np_log_softmax(x, axis=1)
    rows = np.moveaxis(logp, 1, -1).reshape(-1, n_classes)
    w = np.ones(n_classes) if weight is None else np.asarray(weight, np.float64)
    per = np.zeros(len(rows))
    denominator = 0.0
    for i, (row, k) in enumerate(zip(rows, np.asarray(target).reshape(-1))):
        if k == ignore_index:
            continue
        q = np.full(n_classes, label_smoothing / n_classes)
        q[k] += 1.0 - label_smoothing
        per[i] = -np.sum(w * q * row)
        denominator += w[k]
    if reduction == "none":
        return per.reshape(()) if single else per.reshape(target.shape)
    if reduction == "sum":
        return per.sum()
    return per.sum() / denominator


def np_prob_targets(x: np.ndarray, target: np.ndarray, weight: np.ndarray | None = None,
                    reduction: str = "mean", label_smoothing: float = 0.0) -> np.ndarray:
    """Cross entropy with class probabilities: -Σ_c w_c q_c log p_c per sample,
    q = (1 - ε) target + ε / C; "mean" is over samples."""
    axis = 0 if x.ndim == 1 else 1
    n_classes = x.shape[axis]
    q = (1.0 - label_smoothing) * target + label_smoothing / n_classes
    w = np.ones(n_classes) if weight is None else weight
    w = w.reshape([-1 if a == axis else 1 for a in range(x.ndim)])
    per = -(w * q * np_log_softmax(x, axis)).sum(axis=axis)
    return np_reduce(per, reduction)


def np_bce(x: np.ndarray, y: np.ndarray, w: np.ndarray | float = 1.0) -> np.ndarray:
    with np.errstate(divide="ignore"):
        log_x, log_1mx = np.maximum(np.log(x), -100.0), np.maximum(np.log(1.0 - x), -100.0)
    return -w * (y * log_x + (1.0 - y) * log_1mx)


def np_bce_logits(x: np.ndarray, y: np.ndarray, w: np.ndarray | float = 1.0,
                  pos_weight: np.ndarray | float = 1.0) -> np.ndarray:
    """-w (pos_weight y log σ(x) + (1 - y) log(1 - σ(x))), log(1 - σ(x)) = log σ(-x)."""
    return -w * (pos_weight * y * np_log_sigmoid(x) + (1.0 - y) * np_log_sigmoid(-x))


def np_bce_logits_grad(x: np.ndarray, y: np.ndarray, pos_weight: float = 1.0) -> np.ndarray:
    """d/dx of np_bce_logits: -pos_weight y σ(-x) + (1 - y) σ(x)."""
    return -pos_weight * y * np_sigmoid(-x) + (1.0 - y) * np_sigmoid(x)


def np_focal(x: np.ndarray, y: np.ndarray, alpha: float, gamma: float) -> np.ndarray:
    """torchvision.ops.sigmoid_focal_loss, line by line."""
    p = np_sigmoid(x)
    ce = np_bce_logits(x, y)
    p_t = p * y + (1 - p) * (1 - y)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * y + (1 - alpha) * (1 - y)) * loss
    return loss


def np_kl(x: np.ndarray, t: np.ndarray, log_target: bool) -> np.ndarray:
    if log_target:
        return np.exp(t) * (t - x)
    safe = np.where(t > 0, t, 1.0)
    return np.where(t > 0, t * (np.log(safe) - x), 0.0)


def np_cosine(a: np.ndarray, b: np.ndarray, y: np.ndarray, margin: float) -> np.ndarray:
    cos = (a * b).sum(-1) / np.sqrt(((a * a).sum(-1) + 1e-12) * ((b * b).sum(-1) + 1e-12))
    return np.where(y == 1, 1 - cos, np.where(y == -1, np.maximum(cos - margin, 0), 0.0))


def np_triplet(a: np.ndarray, pos: np.ndarray, neg: np.ndarray, margin: float, p: float,
               eps: float, swap: bool) -> np.ndarray:
    def dist(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        return np.linalg.norm(u - v + eps, ord=p, axis=-1)

    d_neg = dist(a, neg)
    if swap:
        d_neg = np.minimum(d_neg, dist(pos, neg))
    return np.maximum(margin + dist(a, pos) - d_neg, 0.0)


# --------------------------------------------------------------------------- data away from kinks


def signed_away(r: np.random.Generator, shape: tuple[int, ...], lo: float,
                hi: float) -> np.ndarray:
    """Values with lo <= |v| <= hi and random signs."""
    return r.uniform(lo, hi, shape) * r.choice([-1.0, 1.0], shape)


def pm1(r: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return r.choice([-1.0, 1.0], shape)


def probs(r: np.random.Generator, shape: tuple[int, ...], axis: int = -1) -> np.ndarray:
    p = r.uniform(0.05, 1.0, shape)
    return p / p.sum(axis=axis, keepdims=True)


def regression_pair(r: np.random.Generator, kink: float) -> tuple[np.ndarray, np.ndarray]:
    """(input, target) whose |difference| stays 0.1 away from 0 and from `kink`."""
    t = r.normal(size=(3, 4))
    mag = np.where(r.random((3, 4)) < 0.5, r.uniform(0.1, kink - 0.1, (3, 4)),
                   r.uniform(kink + 0.1, kink + 2, (3, 4)))
    return t + mag * pm1(r, (3, 4)), t


def hinge_data(r: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    y = pm1(r, (7,))
    return y * (1.0 - signed_away(r, (7,), 0.1, 1.5)), y  # margin - y s = ±[0.1, 1.5]


def ranking_data(r: np.random.Generator) -> tuple[np.ndarray, ...]:
    y, x2 = pm1(r, (6,)), r.normal(size=6)
    x1 = x2 + y * (0.3 - signed_away(r, (6,), 0.1, 1.5))  # -y (x1 - x2) + 0.3 = ±[.1, 1.5]
    return x1, x2, y


def hinge_embedding_data(r: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    y = pm1(r, (8,))
    return 1.0 - signed_away(r, (8,), 0.1, 1.5), y


def cosine_data(r: np.random.Generator, margin: float = 0.1) -> tuple[np.ndarray, ...]:
    while True:
        a, b = r.normal(size=(5, 4)), r.normal(size=(5, 4))
        cos = (a * b).sum(-1) / np.sqrt((a * a).sum(-1) * (b * b).sum(-1))
        if np.all(np.abs(cos - margin) > 0.05):
            return a, b, pm1(r, (5,))


def triplet_data(r: np.random.Generator, p: float, swap: bool,
                 margin: float = 1.0) -> tuple[np.ndarray, ...]:
    while True:
        a, pos, neg = (r.normal(size=(5, 3)) for _ in range(3))
        d = [np.abs(u - v + 1e-6) for u, v in ((a, pos), (a, neg), (pos, neg))]
        dist = [np.linalg.norm(u - v + 1e-6, ord=p, axis=-1) for u, v in ((a, pos), (a, neg),
                                                                          (pos, neg))]
        d_neg = np.minimum(dist[1], dist[2]) if swap else dist[1]
        ok = np.all(np.abs(margin + dist[0] - d_neg) > 0.05)  # the hinge's kink
        ok &= not swap or np.all(np.abs(dist[1] - dist[2]) > 0.05)  # min's kink
        if p == math.inf:  # max's kink: a clear largest |difference| per row
            ok &= all(np.all(np.diff(np.sort(di, -1)[:, -2:], axis=-1) > 0.05) for di in d)
        if ok:
            return a, pos, neg


# --------------------------------------------------------------------------- the table of losses


class Case(NamedTuple):
    call: Callable[..., object]  # (*args, reduction) -> pyasg loss
    ref: Callable[..., np.ndarray]  # (*args) -> per-element loss, from the definition
    make: Callable[[np.random.Generator], tuple]  # float64 arguments, away from kinks
    argnums: tuple[int, ...]  # differentiable arguments
    torch: Callable[..., object] | None = None  # (TF, *tensors, reduction) -> torch loss


CASES = {
    "mse": Case(lambda x, t, r: L.mse(x, t, reduction=r), lambda x, t: (x - t) ** 2,
                lambda g: (g.normal(size=(3, 4)), g.normal(size=(3, 4))), (0, 1),
                lambda F, x, t, r: F.mse_loss(x, t, reduction=r)),
    "l1": Case(lambda x, t, r: L.l1(x, t, reduction=r), lambda x, t: np.abs(x - t),
               lambda g: regression_pair(g, 1.0), (0, 1),
               lambda F, x, t, r: F.l1_loss(x, t, reduction=r)),
    "smooth_l1": Case(
        lambda x, t, r: L.smooth_l1(x, t, reduction=r, beta=0.5),
        lambda x, t: np.where(np.abs(x - t) < 0.5, 0.5 * (x - t) ** 2 / 0.5,
                              np.abs(x - t) - 0.25),
        lambda g: regression_pair(g, 0.5), (0, 1),
        lambda F, x, t, r: F.smooth_l1_loss(x, t, reduction=r, beta=0.5)),
    "smooth_l1_beta0": Case(lambda x, t, r: L.smooth_l1(x, t, reduction=r, beta=0.0),
                            lambda x, t: np.abs(x - t), lambda g: regression_pair(g, 1.0),
                            (0,), lambda F, x, t, r: F.smooth_l1_loss(x, t, reduction=r,
                                                                      beta=0.0)),
    "huber": Case(
        lambda x, t, r: L.huber(x, t, reduction=r, delta=1.5),
        lambda x, t: np.where(np.abs(x - t) < 1.5, 0.5 * (x - t) ** 2,
                              1.5 * (np.abs(x - t) - 0.75)),
        lambda g: regression_pair(g, 1.5), (0, 1),
        lambda F, x, t, r: F.huber_loss(x, t, reduction=r, delta=1.5)),
    "binary_cross_entropy": Case(
        lambda x, y, w, r: L.binary_cross_entropy(x, y, w, reduction=r), np_bce,
        lambda g: (g.uniform(0.05, 0.95, (4, 3)), g.random((4, 3)), g.uniform(0.5, 2, 3)),
        (0, 1), lambda F, x, y, w, r: F.binary_cross_entropy(x, y, w, reduction=r)),
    "binary_cross_entropy_with_logits": Case(
        lambda x, y, w, pw, r: L.binary_cross_entropy_with_logits(x, y, w, reduction=r,
                                                                  pos_weight=pw),
        np_bce_logits,
        lambda g: (3 * g.normal(size=(4, 3)), g.random((4, 3)), g.uniform(0.5, 2, (4, 1)),
                   g.uniform(0.5, 3, 3)),
        (0, 1), lambda F, x, y, w, pw, r: F.binary_cross_entropy_with_logits(
            x, y, w, reduction=r, pos_weight=pw)),
    "kl_div": Case(
        lambda x, t, r: L.kl_div(x, t, reduction=r), lambda x, t: np_kl(x, t, False),
        lambda g: (np.log(probs(g, (3, 4))), probs(g, (3, 4)) * (g.random((3, 4)) > 0.3)),
        (0,), lambda F, x, t, r: F.kl_div(x, t, reduction=r)),
    "kl_div_log_target": Case(
        lambda x, t, r: L.kl_div(x, t, reduction=r, log_target=True),
        lambda x, t: np_kl(x, t, True),
        lambda g: (np.log(probs(g, (3, 4))), np.log(probs(g, (3, 4)))), (0, 1),
        lambda F, x, t, r: F.kl_div(x, t, reduction=r, log_target=True)),
    "focal": Case(lambda x, y, r: L.focal(x, y, reduction=r),
                  lambda x, y: np_focal(x, y, 0.25, 2.0),
                  lambda g: (3 * g.normal(size=(3, 5)), (g.random((3, 5)) < 0.3) * 1.0), (0,)),
    "focal_gamma1.5_no_alpha": Case(
        lambda x, y, r: L.sigmoid_focal_loss(x, y, -1.0, 1.5, reduction=r),
        lambda x, y: np_focal(x, y, -1.0, 1.5),
        lambda g: (3 * g.normal(size=(3, 5)), g.random((3, 5))), (0, 1)),
    "focal_gamma0": Case(lambda x, y, r: L.focal(x, y, 0.6, 0.0, reduction=r),
                         lambda x, y: np_focal(x, y, 0.6, 0.0),
                         lambda g: (3 * g.normal(size=(3, 5)), g.random((3, 5))), (0, 1)),
    "hinge": Case(lambda s, y, r: L.hinge(s, y, reduction=r),
                  lambda s, y: np.maximum(0, 1 - y * s), hinge_data, (0,)),
    "squared_hinge": Case(lambda s, y, r: L.squared_hinge(s, y, reduction=r),
                          lambda s, y: np.maximum(0, 1 - y * s) ** 2, hinge_data, (0,)),
    "hinge_embedding": Case(
        lambda x, y, r: L.hinge_embedding(x, y, reduction=r),
        lambda x, y: np.where(y == 1, x, np.maximum(0, 1 - x)), hinge_embedding_data, (0,),
        lambda F, x, y, r: F.hinge_embedding_loss(x, y, reduction=r)),
    "margin_ranking": Case(
        lambda a, b, y, r: L.margin_ranking(a, b, y, 0.3, reduction=r),
        lambda a, b, y: np.maximum(0, -y * (a - b) + 0.3), ranking_data, (0, 1),
        lambda F, a, b, y, r: F.margin_ranking_loss(a, b, y, 0.3, reduction=r)),
    "cosine_embedding": Case(
        lambda a, b, y, r: L.cosine_embedding(a, b, y, 0.1, reduction=r),
        lambda a, b, y: np_cosine(a, b, y, 0.1), cosine_data, (0, 1),
        lambda F, a, b, y, r: F.cosine_embedding_loss(a, b, y, 0.1, reduction=r)),
}
for _p, _swap in ((2.0, False), (1.0, False), (3.0, True), (math.inf, False), (2.0, True)):
    CASES[f"triplet_margin_p{_p}{'_swap' * _swap}"] = Case(
        lambda a, b, c, r, p=_p, s=_swap: L.triplet_margin(a, b, c, p=p, swap=s, reduction=r),
        lambda a, b, c, p=_p, s=_swap: np_triplet(a, b, c, 1.0, p, 1e-6, s),
        lambda g, p=_p, s=_swap: triplet_data(g, p, s), (0, 1, 2),
        lambda F, a, b, c, r, p=_p, s=_swap: F.triplet_margin_loss(a, b, c, p=p, swap=s,
                                                                  reduction=r))

# cross entropy and nll: their "mean" is not the plain mean, so their reference is whole
CLASS_CASES = {
    "ce_2d": lambda g: (g.normal(size=(5, 4)), np.array([0, 3, -100, 1, 3]), None, {}),
    "ce_weighted_ignored_smoothed": lambda g: (
        g.normal(size=(6, 3)), np.array([2, -100, 0, 1, 2, 2]), g.uniform(0.2, 2, 3),
        {"label_smoothing": 0.15}),
    "ce_4d_weighted": lambda g: (g.normal(size=(2, 3, 4, 2)), g.integers(0, 3, (2, 4, 2)),
                                 g.uniform(0.2, 2, 3), {}),
    "ce_1d_smoothed": lambda g: (g.normal(size=4), np.int64(2), None, {"label_smoothing": 0.3}),
    "ce_ignore_index_1": lambda g: (g.normal(size=(5, 3)), np.array([1, 0, 1, 2, 2]),
                                    g.uniform(0.2, 2, 3), {"ignore_index": 1,
                                                           "label_smoothing": 0.1}),
}


def ce_call(x, t, w, opts, reduction):  # noqa: ANN001, ANN201
    return L.cross_entropy(x, t, w, reduction=reduction, **opts)


def nll_call(x, t, w, opts, reduction):  # noqa: ANN001, ANN201
    opts = {k: v for k, v in opts.items() if k != "label_smoothing"}
    return L.nll_loss(x, t, w, reduction=reduction, **opts)


# --------------------------------------------------------------------------- values


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", sorted(CASES))
def test_value_matches_definition(name: str, reduction: str) -> None:
    case = CASES[name]
    args = case.make(rng(1))
    got = case.call(*args, reduction)
    expected = np_reduce(case.ref(*args), reduction)
    assert np.shape(got) == np.shape(expected)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", sorted(CLASS_CASES))
def test_cross_entropy_matches_definition(name: str, reduction: str) -> None:
    x, t, w, opts = CLASS_CASES[name](rng(2))
    got = ce_call(x, t, w, opts, reduction)
    expected = np_class_targets(x, t, w, reduction=reduction, **opts)
    assert np.shape(got) == np.shape(expected)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", sorted(CLASS_CASES))
def test_nll_loss_matches_definition(name: str, reduction: str) -> None:
    x, t, w, opts = CLASS_CASES[name](rng(3))
    logp = np_log_softmax(x, axis=0 if x.ndim == 1 else 1)
    got = nll_call(logp, t, w, opts, reduction)
    expected = np_class_targets(logp, t, w, ignore_index=opts.get("ignore_index", -100),
                                reduction=reduction, log_probs=True)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 4), (5,)])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_probability_targets_match_definition(
        reduction: str, shape: tuple[int, ...], smoothing: float, weighted: bool) -> None:
    r = rng(4)
    axis = 0 if len(shape) == 1 else 1
    x, q = r.normal(size=shape), probs(r, shape, axis)
    w = r.uniform(0.2, 2, shape[axis]) if weighted else None
    got = L.cross_entropy(x, q, w, reduction=reduction, label_smoothing=smoothing)
    expected = np_prob_targets(x, q, w, reduction, smoothing)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)


@st.composite
def class_problems(draw):  # noqa: ANN001, ANN201
    """(logits, targets, weight, options) over shapes [C], [N, C], [N, C, d1, d2]."""
    n_classes = draw(st.integers(2, 5))
    layout = draw(st.sampled_from(["1d", "2d", "nd"]))
    if layout == "1d":
        shape, sample = (n_classes,), ()
    else:
        n = draw(st.integers(1, 4))
        extra = () if layout == "2d" else tuple(draw(st.lists(st.integers(1, 3), min_size=1,
                                                              max_size=2)))
        shape, sample = (n, n_classes) + extra, (n,) + extra
    g = rng(draw(st.integers(0, 2**32 - 1)))
    ignore_index = draw(st.sampled_from([-100, 0, n_classes - 1]))
    t = g.integers(0, n_classes, sample)
    t = np.where(g.random(sample) < 0.3, ignore_index, t)
    if not (t != ignore_index).any():  # keep one counted target: an all-ignored mean is nan
        t = np.where(t == ignore_index, (ignore_index + 1) % n_classes, t).astype(np.int64)
    w = g.uniform(0.2, 2.0, n_classes) if draw(st.booleans()) else None
    opts = {"ignore_index": ignore_index,
            "label_smoothing": draw(st.sampled_from([0.0, 0.1, 1.0]))}
    return 4 * g.normal(size=shape), np.asarray(t, np.int64), w, opts


@settings(deadline=None)
@given(problem=class_problems(), reduction=st.sampled_from(REDUCTIONS))
def test_cross_entropy_matches_definition_over_shapes_and_options(problem: tuple,
                                                                  reduction: str) -> None:
    x, t, w, opts = problem
    np.testing.assert_allclose(ce_call(x, t, w, opts, reduction),
                               np_class_targets(x, t, w, reduction=reduction, **opts),
                               rtol=1e-11, atol=1e-13)


def test_cross_entropy_hand_value() -> None:
    # p = softmax([0, log 3]) = [1/4, 3/4]; class 1 costs log 4/3, class 0 log 4
    x = np.array([[0.0, math.log(3.0)], [0.0, math.log(3.0)]])
    t = np.array([1, 0])
    assert float(L.cross_entropy(x, t, reduction="sum")) == pytest.approx(
        math.log(4 / 3) + math.log(4), rel=1e-14)


def test_ignore_index_drops_rows() -> None:
    r = rng(5)
    x, t = r.normal(size=(6, 4)), np.array([3, -100, 0, -100, 2, 1])
    kept = t != -100
    for reduction in ("mean", "sum"):
        np.testing.assert_allclose(L.cross_entropy(x, t, reduction=reduction),
                                   L.cross_entropy(x[kept], t[kept], reduction=reduction),
                                   rtol=1e-14)
        np.testing.assert_allclose(L.cross_entropy(x, t, reduction=reduction),
                                   np_class_targets(x[kept], t[kept], reduction=reduction),
                                   rtol=1e-12)
    none = L.cross_entropy(x, t, reduction="none", label_smoothing=0.3)
    assert none.shape == (6,) and np.all(none[~kept] == 0) and np.all(none[kept] > 0)


def test_class_weights_mean_divides_by_summed_weight_of_counted_targets() -> None:
    x = np.array([[0.3, -1.2], [2.0, 0.5], [0.1, 0.1]])
    t = np.array([0, 1, -100])
    w = np.array([1.0, 3.0])
    per = [-np_log_softmax(x[0], 0)[0], -np_log_softmax(x[1], 0)[1]]
    expected = (1.0 * per[0] + 3.0 * per[1]) / (1.0 + 3.0)  # not / 2, not / 3
    assert float(L.cross_entropy(x, t, w)) == pytest.approx(expected, rel=1e-13)
    assert float(L.nll_loss(np_log_softmax(x, 1), t, w)) == pytest.approx(expected, rel=1e-13)


def test_label_smoothing_is_cross_entropy_with_smoothed_targets() -> None:
    r = rng(6)
    x, t, eps = r.normal(size=(5, 4)), r.integers(0, 4, 5), 0.25
    q = np.full((5, 4), eps / 4)
    q[np.arange(5), t] += 1 - eps
    for reduction in REDUCTIONS:
        np.testing.assert_allclose(
            L.cross_entropy(x, t, reduction=reduction, label_smoothing=eps),
            np_reduce(-(q * np_log_softmax(x, 1)).sum(1), reduction), rtol=1e-12)
        np.testing.assert_allclose(
            L.cross_entropy(x, t, reduction=reduction, label_smoothing=eps),
            L.cross_entropy(x, t.reshape(5).astype(np.int32), reduction=reduction,
                            label_smoothing=eps), rtol=1e-14)


def test_all_targets_ignored_gives_nan_mean_and_zero_sum_as_pytorch() -> None:
    x, t = np.ones((2, 3)), np.array([-100, -100])
    with np.errstate(invalid="ignore"):
        assert math.isnan(float(L.cross_entropy(x, t)))
    assert float(L.cross_entropy(x, t, reduction="sum")) == 0.0


def test_kl_div_batchmean_divides_the_sum_by_the_batch_size() -> None:
    r = rng(7)
    x, t = np.log(probs(r, (4, 3))), probs(r, (4, 3))
    total = np.sum(t * (np.log(t) - x))
    assert float(L.kl_div(x, t, reduction="batchmean")) == pytest.approx(total / 4, rel=1e-13)
    assert float(L.kl_div(x, t)) == pytest.approx(total / 12, rel=1e-13)  # "mean": all elements
    assert float(L.kl_div(x[0, 0], t[0, 0], reduction="batchmean")) == pytest.approx(
        t[0, 0] * (np.log(t[0, 0]) - x[0, 0]), rel=1e-13)  # 0-d: the sum, as PyTorch


def test_kl_div_batchmean_gradient() -> None:
    x, t = np.log(probs(rng(25), (4, 3))), probs(rng(26), (4, 3))
    check_grad(lambda x: L.kl_div(x, t, reduction="batchmean"), x, rtol=1e-5)
    check_grad(lambda x, t: L.kl_div(x, t, reduction="batchmean", log_target=True), x,
               np.log(t), argnums=(0, 1), rtol=1e-5)


def test_kl_div_batchmean_matches_torch() -> None:
    torch = pytest.importorskip("torch")
    x, t = np.log(probs(rng(25), (4, 3))), probs(rng(26), (4, 3))
    np.testing.assert_allclose(
        L.kl_div(x, t, reduction="batchmean"),
        torch.nn.functional.kl_div(torch.tensor(x), torch.tensor(t),
                                   reduction="batchmean").numpy(), rtol=1e-12)


@pytest.mark.parametrize("dtype", ["int32", "int64", "uint32"])
def test_every_integer_dtype_is_a_class_target(dtype: str) -> None:
    x, t = rng(27).normal(size=(4, 3)), np.array([2, 0, 1, 1], dtype)
    expected = np_class_targets(x, t.astype(np.int64), label_smoothing=0.1)
    np.testing.assert_allclose(L.cross_entropy(x, t, label_smoothing=0.1), expected,
                               rtol=1e-12)
    np.testing.assert_allclose(
        pyasg.jit(lambda x, t: L.cross_entropy(x, t, label_smoothing=0.1))(x, t), expected,
        rtol=1e-12)


def test_kl_div_is_zero_where_the_target_is_zero() -> None:
    # target log target is taken as 0 at target 0 (no nan from 0 log 0), as PyTorch's xlogy
    got = L.kl_div(np.array([-1.0, -3.0]), np.array([1.0, 0.0]), reduction="none")
    assert got.tolist() == [1.0, 0.0]
    g = pyasg.grad(lambda x, t: L.kl_div(x, t, reduction="sum"), argnums=(0, 1))(
        np.array([-1.0, -3.0]), np.array([1.0, 0.0]))
    assert g[0].tolist() == [-1.0, 0.0] and np.isfinite(g[1][0])


def test_binary_cross_entropy_clamps_log_at_minus_100_with_finite_gradient() -> None:
    x, y = np.array([0.0, 1.0, 0.0, 1.0]), np.array([1.0, 0.0, 0.0, 1.0])
    assert L.binary_cross_entropy(x, y, reduction="none").tolist() == [100.0, 100.0, 0.0, 0.0]
    g = pyasg.grad(lambda x: L.binary_cross_entropy(x, y, reduction="sum"))(x)
    assert np.all(np.isfinite(g))
    # the unclamped log of each row's other term: d/dx of -(1-y) log(1-x) and -y log x
    np.testing.assert_allclose(g, [0.0, 0.0, 1.0, -1.0])


def test_losses_keep_float32() -> None:
    r = rng(8)
    x, t = r.normal(size=(4, 3)).astype(np.float32), np.array([0, 1, 2, -100])
    y = pm1(r, (4, 3)).astype(np.int64)  # integer labels must not promote to float64
    w = np.array([1.0, 2.0, 0.5])  # float64 class weights do not promote either
    for out in (L.cross_entropy(x, t, w), L.nll_loss(x, t, w), L.mse(x, x * 2),
                L.binary_cross_entropy_with_logits(x, (x > 0).astype(np.float32), w,
                                                   pos_weight=w),
                L.binary_cross_entropy(np.abs(x) / 4, (x > 0).astype(np.float32), w),
                L.hinge(x, y), L.squared_hinge(x, y), L.margin_ranking(x, x * 2, y),
                L.binary_cross_entropy_with_logits(x, (x > 0).astype(np.float32)),
                pyasg.jit(lambda x: L.cross_entropy(x, t, label_smoothing=0.1))(x)):
        assert np.asarray(out).dtype == np.float32


# ------------------------------------------------------------------ bce with logits at extremes


@pytest.mark.parametrize("dtype, logit", [(np.float32, 100.0), (np.float64, 100.0),
                                          (np.float64, 1000.0)])
@pytest.mark.parametrize("pos_weight", [None, 2.5])
def test_bce_with_logits_is_finite_and_correct_at_extreme_logits(dtype, logit, pos_weight):  # noqa: ANN001
    x = np.array([logit, -logit, logit, -logit, logit, -logit], dtype)
    y = np.array([0.0, 0.0, 1.0, 1.0, 0.3, 0.3], dtype)
    pw = None if pos_weight is None else np.array(pos_weight, dtype)

    def f(x):  # noqa: ANN001, ANN202
        return L.binary_cross_entropy_with_logits(x, y, reduction="sum", pos_weight=pw)

    per = L.binary_cross_entropy_with_logits(x, y, reduction="none", pos_weight=pw)
    g = pyasg.grad(f)(x)
    traced_value = pyasg.jit(f)(x)
    assert per.dtype == dtype and g.dtype == dtype
    assert np.all(np.isfinite(per)) and np.all(np.isfinite(g)) and np.isfinite(traced_value)
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    pw64 = 1.0 if pos_weight is None else pos_weight
    tol = dict(rtol=1e-6, atol=1e-30) if dtype == np.float32 else dict(rtol=1e-14, atol=1e-40)
    np.testing.assert_allclose(per, np_bce_logits(x64, y64, pos_weight=pw64), **tol)
    np.testing.assert_allclose(g, np_bce_logits_grad(x64, y64, pw64), **tol)


def test_bce_with_logits_is_exact_for_tiny_losses() -> None:
    # log(1 + e^-30) = 9.4e-14: a form that subtracts 30 from 30 + 9.4e-14 loses digits
    x = np.array([-30.0, 30.0, -45.0])
    y = np.array([0.0, 1.0, 0.0])
    np.testing.assert_allclose(L.binary_cross_entropy_with_logits(x, y, reduction="none"),
                               np.log1p(np.exp(-np.abs(x))), rtol=1e-14)


# --------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("reduction", ["mean", "none"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_gradient_matches_central_differences(name: str, reduction: str) -> None:
    case = CASES[name]
    args = case.make(rng(9))
    check_grad(lambda *a: case.call(*a, reduction), *args, argnums=case.argnums, rtol=1e-5)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name", sorted(CLASS_CASES))
def test_cross_entropy_and_nll_gradients(name: str, reduction: str) -> None:
    x, t, w, opts = CLASS_CASES[name](rng(10))
    check_grad(lambda x: ce_call(x, t, w, opts, reduction), x, rtol=1e-5)
    check_grad(lambda x: nll_call(x, t, w, opts, reduction), x, rtol=1e-5)


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_probability_target_gradients(smoothing: float) -> None:
    r = rng(11)
    x, q, w = r.normal(size=(3, 4, 2)), probs(r, (3, 4, 2), axis=1), r.uniform(0.5, 2, 4)
    check_grad(lambda x, q: L.cross_entropy(x, q, w, label_smoothing=smoothing,
                                            reduction="none"), x, q, argnums=(0, 1), rtol=1e-5)


def test_cross_entropy_gradient_is_softmax_minus_onehot() -> None:
    x, t = rng(12).normal(size=(3, 4)), np.array([2, 0, 3])
    g = pyasg.grad(lambda x: L.cross_entropy(x, t, reduction="sum"))(x)
    p = np.exp(np_log_softmax(x, 1))
    np.testing.assert_allclose(g, p - np.eye(4)[t], rtol=1e-13, atol=1e-15)


def test_second_derivative_of_cross_entropy_is_finite() -> None:
    x, t = rng(13).normal(size=3), np.int64(1)
    h = pyasg.hessian(lambda x: L.cross_entropy(x, t))(x)
    p = np.exp(np_log_softmax(x, 0))
    np.testing.assert_allclose(h, np.diag(p) - np.outer(p, p), rtol=1e-12, atol=1e-15)


# --------------------------------------------------------------------------- traced == eager


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", sorted(CASES))
def test_traced_call_equals_eager_call(name: str, reduction: str) -> None:
    case = CASES[name]
    args = case.make(rng(14))
    eager = case.call(*args, reduction)
    traced = pyasg.jit(lambda *a: case.call(*a, reduction))(*args)
    assert isinstance(traced, (np.ndarray, np.generic)) and traced.shape == np.shape(eager)
    np.testing.assert_allclose(traced, eager, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", sorted(CLASS_CASES))
def test_traced_cross_entropy_equals_eager(name: str, reduction: str) -> None:
    x, t, w, opts = CLASS_CASES[name](rng(15))
    eager = ce_call(x, t, w, opts, reduction)
    traced = pyasg.jit(lambda x, t, w: ce_call(x, t, w, opts, reduction))(x, t, w)
    np.testing.assert_allclose(traced, eager, rtol=1e-13, atol=1e-15)
    q = probs(rng(16), x.shape, axis=0 if x.ndim == 1 else 1)
    opts = {k: v for k, v in opts.items() if k != "ignore_index"}
    np.testing.assert_allclose(
        pyasg.jit(lambda x, q: ce_call(x, q, w, opts, reduction))(x, q),
        ce_call(x, q, w, opts, reduction), rtol=1e-13, atol=1e-15)


def test_kl_div_batchmean_traced_equals_eager() -> None:
    x, t = np.log(probs(rng(17), (4, 3))), probs(rng(18), (4, 3))
    np.testing.assert_allclose(pyasg.jit(lambda x, t: L.kl_div(x, t, reduction="batchmean"))(
        x, t), L.kl_div(x, t, reduction="batchmean"), rtol=1e-14)


@pytest.mark.parametrize("backend", ["numpy", "reference"])
@pytest.mark.parametrize("bad", [4, 7, -1, -5, -101])
@pytest.mark.parametrize("loss", ["cross_entropy", "nll_loss", "weighted", "smoothed"])
def test_traced_out_of_range_target_fails_at_run_time_as_a_gather(loss, bad, backend) -> None:
    # A traced target has no values when the graph is built: the class is picked by a
    # gather, so the backend's rule for an index out of range applies (numpy's: raise),
    # never another class's value and never a silently ignored sample (issue 14).
    x = rng(19).normal(size=(3, 4))
    fn = {"cross_entropy": lambda x, t: L.cross_entropy(x, t),
          "nll_loss": lambda x, t: L.nll_loss(x, t),
          "weighted": lambda x, t: L.cross_entropy(x, t, np.arange(1.0, 5.0)),
          "smoothed": lambda x, t: L.cross_entropy(x, t, label_smoothing=0.1)}[loss]
    step = pyasg.jit(fn, backend=backend)
    with pytest.raises(pyasg.BackendError, match="gather"):
        step(x, np.array([1, bad, 2]))
    with pytest.raises(PyasgError, match="out of range"):  # concrete: checked at once
        fn(x, np.array([1, bad, 2]))
    ok = np.array([3, -100, 0])  # the largest class, an ignored target, the smallest
    np.testing.assert_allclose(step(x, ok), fn(x, ok), rtol=1e-14)


def test_traced_target_gradient_skips_ignored_samples() -> None:
    x, t = rng(21).normal(size=(3, 4)), np.array([2, -100, 0])
    g = pyasg.jit(pyasg.grad(lambda x, t: L.cross_entropy(x, t, reduction="sum")))(x, t)
    p = np.exp(x - np.log(np.exp(x).sum(1, keepdims=True)))
    want = p - np.eye(4)[[2, 0, 0]]
    want[1] = 0.0
    np.testing.assert_allclose(g, want, rtol=1e-12, atol=1e-14)


def test_losses_work_inside_a_training_step() -> None:
    # loss, gradient and update in one traced function
    r = rng(20)
    w, x, t = r.normal(size=(3, 4)), r.normal(size=(5, 3)), np.array([0, 3, 1, 1, 2])

    @pyasg.trace
    def step(w, x, t):  # noqa: ANN001, ANN202
        loss, g = pyasg.value_and_grad(lambda w: L.cross_entropy(x @ w, t,
                                                                 label_smoothing=0.1))(w)
        return loss, w - 0.1 * g

    loss, new_w = step(w, x, t)
    assert float(loss) == pytest.approx(float(np_class_targets(x @ w, t, label_smoothing=0.1)),
                                        rel=1e-12)
    assert float(L.cross_entropy(x @ new_w, t, label_smoothing=0.1)) < float(loss)


# --------------------------------------------------------------------------- errors


ALL_LOSSES = {
    "mse": lambda r: L.mse(np.ones(2), np.ones(2), reduction=r),
    "l1": lambda r: L.l1(np.ones(2), np.ones(2), reduction=r),
    "smooth_l1": lambda r: L.smooth_l1(np.ones(2), np.ones(2), reduction=r),
    "huber": lambda r: L.huber(np.ones(2), np.ones(2), reduction=r),
    "cross_entropy": lambda r: L.cross_entropy(np.ones((2, 3)), np.array([0, 1]), reduction=r),
    "nll": lambda r: L.nll(np.ones((2, 3)), np.array([0, 1]), reduction=r),
    "bce": lambda r: L.binary_cross_entropy(np.full(2, 0.5), np.ones(2), reduction=r),
    "bce_logits": lambda r: L.binary_cross_entropy_with_logits(np.ones(2), np.ones(2),
                                                               reduction=r),
    "kl_div": lambda r: L.kl_div(np.zeros(2), np.ones(2), reduction=r),
    "hinge": lambda r: L.hinge(np.ones(2), np.ones(2), reduction=r),
    "squared_hinge": lambda r: L.squared_hinge(np.ones(2), np.ones(2), reduction=r),
    "focal": lambda r: L.focal(np.ones(2), np.ones(2), reduction=r),
    "cosine_embedding": lambda r: L.cosine_embedding(np.ones((2, 2)), np.ones((2, 2)),
                                                     np.ones(2), reduction=r),
    "triplet_margin": lambda r: L.triplet_margin(np.ones((2, 2)), np.ones((2, 2)),
                                                 np.ones((2, 2)), reduction=r),
    "margin_ranking": lambda r: L.margin_ranking(np.ones(2), np.ones(2), np.ones(2),
                                                 reduction=r),
    "hinge_embedding": lambda r: L.hinge_embedding(np.ones(2), np.ones(2), reduction=r),
}


@pytest.mark.parametrize("name", sorted(ALL_LOSSES))
def test_invalid_reduction_raises_naming_the_choices(name: str) -> None:
    with pytest.raises(L.LossError) as info:
        ALL_LOSSES[name]("avg")
    assert isinstance(info.value, PyasgError) and isinstance(info.value, ValueError)
    message = str(info.value)
    assert "'avg'" in message and all(f"'{c}'" in message for c in REDUCTIONS)
    assert ("'batchmean'" in message) == (name == "kl_div")
    if name != "kl_div":
        with pytest.raises(L.LossError, match="batchmean"):
            ALL_LOSSES[name]("batchmean")
    for reduction in REDUCTIONS:
        assert np.all(np.isfinite(ALL_LOSSES[name](reduction)))


def test_invalid_reduction_is_reported_while_tracing_at_the_users_line() -> None:
    with pytest.raises(L.LossError) as info:
        pyasg.jit(lambda x: L.mse(x, x, reduction="Mean"))(np.ones(2))
    assert info.value.source is not None and "test_losses.py" in info.value.source


@pytest.mark.parametrize("call, error, match", [
    (lambda: L.cross_entropy(np.ones((2, 3)), np.array([0, 3])), L.LossError, "out of range"),
    (lambda: L.cross_entropy(np.ones((2, 3)), np.array([0, -1])), L.LossError, "out of range"),
    (lambda: L.nll_loss(np.ones((2, 3)), np.array([0, 5]), ignore_index=5), None, None),
    (lambda: L.cross_entropy(np.ones((2, 3)), np.array([0, 1, 2])), ShapeError, r"\(2,\)"),
    (lambda: L.cross_entropy(np.ones((2, 3)), np.array([0.0, 1.0])), ShapeError, "integers"),
    (lambda: L.cross_entropy(np.ones((2, 3)), np.ones((2, 3)) / 3, ignore_index=0),
     L.LossError, "ignore_index"),
    (lambda: L.cross_entropy(np.ones((2, 3)), np.ones((2, 4)) / 4), ShapeError, "shape"),
    (lambda: L.cross_entropy(np.ones((2, 3)), np.array([0, 1]), np.ones(2)), ShapeError,
     "weight"),
    (lambda: L.cross_entropy(np.ones((2, 3)), np.array([0, 1]), label_smoothing=1.5),
     L.LossError, "label_smoothing"),
    (lambda: L.cross_entropy(np.float64(1.0), np.int64(0)), ShapeError, "class axis"),
    (lambda: L.binary_cross_entropy(np.full(3, 0.5), np.ones((3, 1))), ShapeError, "shape"),
    (lambda: L.binary_cross_entropy_with_logits(np.ones(3), np.ones((3, 1))), ShapeError,
     "shape"),
    (lambda: L.smooth_l1(np.ones(2), np.ones(2), beta=-1.0), L.LossError, "beta"),
    (lambda: L.huber(np.ones(2), np.ones(2), delta=0.0), L.LossError, "delta"),
    (lambda: L.triplet_margin(np.ones((1, 2)), np.ones((1, 2)), np.ones((1, 2)), p=0),
     L.LossError, "p must be"),
])
def test_bad_arguments_raise_pyasg_errors(call, error, match) -> None:  # noqa: ANN001
    if error is None:
        call()  # the ignored class may lie outside [0, C)
        return
    with pytest.raises(error, match=match):
        call()


def test_positions_after_pytorchs_size_average_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        L.mse_loss(np.ones(2), np.ones(2), "sum")  # PyTorch would bind size_average
    with pytest.raises(TypeError):
        L.cross_entropy(np.ones((2, 3)), np.array([0, 1]), None, -100)


def test_broadcasting_regression_target_warns_as_pytorch() -> None:
    with pytest.warns(UserWarning, match="broadcast"):
        out = L.mse(np.zeros((3, 1)), np.ones(3), reduction="none")
    assert out.shape == (3, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        L.mse(np.zeros(3), np.ones(3))


# ------------------------------------------------------------------ PyTorch parity (optional)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", sorted(n for n, c in CASES.items() if c.torch is not None))
def test_matches_torch(name: str, reduction: str) -> None:
    torch = pytest.importorskip("torch")
    case = CASES[name]
    args = case.make(rng(21))
    tensors = [torch.tensor(a, requires_grad=i in case.argnums) for i, a in enumerate(args)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # kl_div's "mean" warning
        expected = case.torch(torch.nn.functional, *tensors, reduction)
    np.testing.assert_allclose(case.call(*args, reduction), expected.detach().numpy(),
                               rtol=1e-10, atol=1e-12)
    expected.sum().backward()
    grads = pyasg.grad(lambda *a: pyasg.sum(case.call(*a, reduction)),
                       argnums=case.argnums)(*args)
    for i, g in zip(case.argnums, grads):
        np.testing.assert_allclose(g, tensors[i].grad.numpy(), rtol=1e-9, atol=1e-12)


def test_focal_matches_torchvisions_formula_in_torch() -> None:
    torch = pytest.importorskip("torch")
    TF = torch.nn.functional
    x, y = CASES["focal"].make(rng(22))
    xt, yt = torch.tensor(x), torch.tensor(y)
    # torchvision.ops.sigmoid_focal_loss, as its source reads
    p = torch.sigmoid(xt)
    ce = TF.binary_cross_entropy_with_logits(xt, yt, reduction="none")
    p_t = p * yt + (1 - p) * (1 - yt)
    loss = ce * ((1 - p_t) ** 2) * (0.25 * yt + 0.75 * (1 - yt))
    np.testing.assert_allclose(L.focal(x, y, reduction="none"), loss.numpy(), rtol=1e-10)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", sorted(CLASS_CASES))
def test_cross_entropy_and_nll_match_torch(name: str, reduction: str) -> None:
    torch = pytest.importorskip("torch")
    TF = torch.nn.functional
    x, t, w, opts = CLASS_CASES[name](rng(23))
    xt = torch.tensor(x, requires_grad=True)
    wt = None if w is None else torch.tensor(w)
    expected = TF.cross_entropy(xt, torch.tensor(t), wt, reduction=reduction, **opts)
    np.testing.assert_allclose(ce_call(x, t, w, opts, reduction), expected.detach().numpy(),
                               rtol=1e-10, atol=1e-12)
    expected.sum().backward()
    g = pyasg.grad(lambda x: pyasg.sum(ce_call(x, t, w, opts, reduction)))(x)
    np.testing.assert_allclose(g, xt.grad.numpy(), rtol=1e-9, atol=1e-12)
    logp = np_log_softmax(x, axis=0 if x.ndim == 1 else 1)
    nll_opts = {k: v for k, v in opts.items() if k != "label_smoothing"}
    np.testing.assert_allclose(
        nll_call(logp, t, w, opts, reduction),
        TF.nll_loss(torch.tensor(logp), torch.tensor(t), wt, reduction=reduction,
                    **nll_opts).numpy(), rtol=1e-10, atol=1e-12)
    q = probs(rng(24), x.shape, axis=0 if x.ndim == 1 else 1)
    ls = opts.get("label_smoothing", 0.0)
    np.testing.assert_allclose(
        ce_call(x, q, w, {"label_smoothing": ls}, reduction),
        TF.cross_entropy(torch.tensor(x), torch.tensor(q), wt, reduction=reduction,
                         label_smoothing=ls).numpy(), rtol=1e-10, atol=1e-12)


def test_bce_with_logits_matches_torch_at_extreme_logits() -> None:
    torch = pytest.importorskip("torch")
    x = np.array([100.0, -100.0, 1000.0, -1000.0, 0.0, 3.0])
    y = np.array([0.0, 1.0, 0.3, 0.7, 0.5, 1.0])
    xt = torch.tensor(x, requires_grad=True)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(
        xt, torch.tensor(y), pos_weight=torch.tensor(2.0), reduction="sum")
    loss.backward()
    f = lambda x: L.binary_cross_entropy_with_logits(x, y, pos_weight=np.array(2.0),  # noqa: E731
                                                     reduction="sum")
    np.testing.assert_allclose(f(x), loss.item(), rtol=1e-14)
    np.testing.assert_allclose(pyasg.grad(f)(x), xt.grad.numpy(), rtol=1e-12, atol=1e-30)
