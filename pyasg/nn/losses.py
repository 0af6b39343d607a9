"""Loss functions with PyTorch's names, arguments, defaults and formulas.

Every loss takes `reduction="mean" | "sum" | "none"` (`kl_div` also "batchmean"),
works on traced values (inside `pyasg.trace`, under `pyasg.grad`) and on numpy
arrays (eagerly), and is written over `pyasg.functional`, so `grad` differentiates
it, twice if asked. The short names of the issue (`mse`, `nll`, `focal`, …) are
aliases of the PyTorch names (`mse_loss`, `nll_loss`, `sigmoid_focal_loss`, …).

Arguments keep PyTorch's positions up to where PyTorch has its deprecated
`size_average` / `reduce`; from there on they are keyword-only, so a call that
would bind `size_average` in PyTorch fails here instead of meaning something else.
An unknown reduction, or an option out of range, raises `LossError` (a
`PyasgError` and a `ValueError`, which PyTorch raises for a bad reduction).

>>> import numpy as np
>>> float(mse_loss(np.array([1.0, 2.0]), np.array([1.0, 4.0])))
2.0
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from pyasg.array import functional as F
from pyasg.array.checks import as_bool, as_int, as_real
from pyasg.array.primitives import is_tracer
from pyasg.asg.types import INT_DTYPES, is_float
from pyasg.errors import PyasgError, ShapeError

__all__ = [
    "LossError", "binary_cross_entropy", "binary_cross_entropy_with_logits",
    "cosine_embedding", "cosine_embedding_loss", "cross_entropy", "focal", "hinge",
    "hinge_embedding", "hinge_embedding_loss", "huber", "huber_loss", "kl_div", "l1",
    "l1_loss", "margin_ranking", "margin_ranking_loss", "mse", "mse_loss", "nll",
    "nll_loss", "sigmoid_focal_loss", "smooth_l1", "smooth_l1_loss", "squared_hinge",
    "triplet_margin", "triplet_margin_loss",
]


class LossError(PyasgError, ValueError):
    """A loss got an option it does not accept: an unknown reduction, a label smoothing
    outside [0, 1], a class index out of range, …"""


_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction: str, name: str, choices: tuple[str, ...] = _REDUCTIONS) -> None:
    if not isinstance(reduction, str) or reduction not in choices:
        raise LossError(f"{name}: reduction must be one of "
                        f"{', '.join(repr(c) for c in choices)}; got {reduction!r}")


def _reduce(loss: object, reduction: str) -> object:
    if reduction == "sum":
        return F.sum(loss)
    if reduction == "mean":
        return F.mean(loss)
    return loss


def _same_size(input: object, target: object, name: str, strict: bool) -> None:
    # Shapes are static, so the size check PyTorch does at run time happens at trace time.
    a, b = F.type_of(input).shape, F.type_of(target).shape
    if a == b:
        return
    message = (f"{name}: target shape {b} differs from input shape {a}; they will "
               f"broadcast, which is likely a bug (PyTorch warns too)")
    if strict:
        raise ShapeError(f"{name}: target shape {b} must equal input shape {a}")
    warnings.warn(message, UserWarning, stacklevel=3)


def _weight_like(weight: object | None, x: object) -> object | None:
    # Weights are constants of the loss, not data: a float64 numpy weight must not turn
    # a float32 model's loss (and its whole backward pass) into float64.
    dtype = F.type_of(x).dtype
    return weight if weight is None or not is_float(dtype) else F.astype(weight, dtype)


def _like(y: object, x: object) -> object:
    # Integer ±1 labels take the scores' dtype: numpy would promote int64 with float32
    # to float64 and silently double a float32 model's loss precision and cost.
    return y if is_float(F.type_of(y).dtype) else F.astype(y, F.type_of(x).dtype)


# --------------------------------------------------------------------------- regression


def mse_loss(input: object, target: object, *, reduction: str = "mean") -> object:
    """(input - target)², reduced.

    PyTorch 2.6+ also takes `weight=`; it is not provided here (multiply the
    reduction="none" result instead).

    >>> float(mse_loss(np.array([0.0, 0.0]), np.array([1.0, 3.0]), reduction="sum"))
    10.0
    """
    _check_reduction(reduction, "mse_loss")
    _same_size(input, target, "mse_loss", strict=False)
    d = F.sub(input, target)
    return _reduce(F.mul(d, d), reduction)


def l1_loss(input: object, target: object, *, reduction: str = "mean") -> object:
    """|input - target|, reduced; the gradient where they are equal is 0, as PyTorch.

    >>> float(l1_loss(np.array([0.0, 0.0]), np.array([1.0, -3.0])))
    2.0
    """
    _check_reduction(reduction, "l1_loss")
    _same_size(input, target, "l1_loss", strict=False)
    return _reduce(F.abs(F.sub(input, target)), reduction)


def smooth_l1_loss(input: object, target: object, *, reduction: str = "mean",
                   beta: float = 1.0) -> object:
    """0.5 d² / beta where |d| < beta, else |d| - 0.5 beta (d = input - target);
    beta = 0 is l1_loss, as PyTorch.

    >>> smooth_l1_loss(np.array([0.5, 3.0]), np.zeros(2), reduction="none").tolist()
    [0.125, 2.5]
    """
    _check_reduction(reduction, "smooth_l1_loss")
    beta = as_real(beta, "smooth_l1_loss: beta")
    if not beta >= 0:
        raise LossError(f"smooth_l1_loss: beta must be >= 0, got {beta}")
    if beta == 0:  # the quadratic branch would divide by zero (nan in its gradient)
        return l1_loss(input, target, reduction=reduction)
    _same_size(input, target, "smooth_l1_loss", strict=False)
    z = F.abs(F.sub(input, target))
    loss = F.where(F.less(z, beta), F.mul(F.mul(z, z), 0.5 / beta), F.sub(z, 0.5 * beta))
    return _reduce(loss, reduction)


def huber_loss(input: object, target: object, reduction: str = "mean",
               delta: float = 1.0) -> object:
    """0.5 d² where |d| < delta, else delta (|d| - 0.5 delta): smooth_l1_loss times
    delta (with beta = delta). PyTorch 2.6+'s `weight=` is not provided.

    >>> huber_loss(np.array([0.5, 3.0]), np.zeros(2), reduction="none", delta=2.0).tolist()
    [0.125, 4.0]
    """
    _check_reduction(reduction, "huber_loss")
    delta = as_real(delta, "huber_loss: delta")
    if not delta > 0:
        raise LossError(f"huber_loss: delta must be > 0, got {delta}")
    _same_size(input, target, "huber_loss", strict=False)
    z = F.abs(F.sub(input, target))
    loss = F.where(F.less(z, delta), F.mul(F.mul(z, z), 0.5), F.mul(F.sub(z, 0.5 * delta), delta))
    return _reduce(loss, reduction)


# --------------------------------------------------------------------------- classification


def _class_last(input: object, name: str) -> object:
    """input with its class axis (axis 1, or 0 for one sample [C]) moved last."""
    t = F.type_of(input)
    if t.ndim == 0:
        raise ShapeError(f"{name}: input {t!r} has no class axis; expected [C], [N, C] or "
                         f"[N, C, d1, ...]")
    return F.moveaxis(input, 1, -1) if t.ndim > 2 else input


def _class_weight(weight: object | None, logp: object, name: str) -> object | None:
    n_classes = F.type_of(logp).shape[-1]
    if weight is not None and F.type_of(weight).shape != (n_classes,):
        raise ShapeError(f"{name}: weight must have one entry per class, shape ({n_classes},); "
                         f"got {F.type_of(weight)!r}")
    return _weight_like(weight, logp)


def _sample_shape(input_shape: tuple[int, ...]) -> tuple[int, ...]:
    return input_shape[:1] + input_shape[2:] if len(input_shape) > 1 else ()


def _bad_target(target: object, input_shape: tuple[int, ...], name: str) -> None:
    raise ShapeError(
        f"{name}: for input {input_shape} the target is class indices of shape "
        f"{_sample_shape(input_shape)} (integers)"
        + ("" if name == "nll_loss" else f" or class probabilities of shape {input_shape} "
           f"(floats)") + f"; got {F.type_of(target)!r}")


def _class_ids(target: object, input_shape: tuple[int, ...], n_classes: int,
               ignore_index: int, name: str) -> object:
    """The target as int32/int64 class ids of the sample shape; concrete ones checked."""
    t = F.type_of(target)
    if t.dtype not in INT_DTYPES or t.shape != _sample_shape(input_shape):
        _bad_target(target, input_shape, name)
    if not is_tracer(target):
        # Concrete targets are checked now, as PyTorch; a traced one at run time, by the
        # gather in `_picked` (the backend's rule for an index out of range).
        ids = np.asarray(target)
        bad = (ids != ignore_index) & ((ids < 0) | (ids >= n_classes))
        if bad.any():
            raise LossError(f"{name}: target {ids[bad].flat[0]} is out of range for "
                            f"{n_classes} classes (0 to {n_classes - 1}, or ignore_index="
                            f"{ignore_index})")
    if t.dtype == "uint32":  # a negative ignore_index does not fit uint32; class ids do fit int32
        target = F.astype(target, "int32")
    return target


def _picked(logp: object, target: object, valid: object) -> object:
    """logp[..., target] per sample, by a gather: a traced class id out of range, other
    than an ignored one, is sent past the end of the gathered array, so the backend's
    rule for a bad index applies (numpy raises), never another class's value."""
    *samples, n_classes = F.type_of(logp).shape
    count = math.prod(samples)
    dtype = "int64" if count * n_classes >= 2**31 else F.type_of(target).dtype
    target = F.astype(target, dtype)
    rows = np.arange(count, dtype=dtype).reshape(samples) * n_classes  # each sample's row
    in_range = F.logical_and(F.greater_equal(target, 0), F.less(target, n_classes))
    past_end = np.array(count * n_classes, dtype)
    index = F.where(valid, F.where(in_range, F.add(rows, target), past_end), rows)
    return F.take(F.reshape(logp, (-1,)), index, axis=0)


def _nll_terms(logp: object, target: object, weight: object | None, ignore_index: int,
               input_shape: tuple[int, ...], name: str) -> tuple[object, object, object]:
    """(loss, w_t, valid) per sample: -weight[t] * logp[t], weight[t] (1 without
    weights), both 0 where the target is ignored; logp has its class axis last."""
    n_classes = F.type_of(logp).shape[-1]
    target = _class_ids(target, input_shape, n_classes, ignore_index, name)
    valid = F.not_equal(target, ignore_index)
    picked = _picked(logp, target, valid)
    dtype = F.type_of(logp).dtype
    if weight is None:
        w_t = F.astype(valid, dtype)
        loss = F.where(valid, F.neg(picked), 0.0)
    else:  # in range wherever valid (the gather above fails otherwise): 0 is a stand-in
        w_t = F.where(valid, F.take(weight, F.where(valid, target, 0), axis=0), 0.0)
        loss = F.where(valid, F.neg(F.mul(w_t, picked)), 0.0)
    return loss, w_t, valid


def _weighted_mean(loss: object, w_t: object, reduction: str) -> object:
    # PyTorch's rule for class targets: the mean divides by the summed weight of the
    # targets that were not ignored (all ignored: 0 / 0 = nan, as PyTorch).
    if reduction == "mean":
        return F.div(F.sum(loss), F.sum(w_t))
    return _reduce(loss, reduction)


def nll_loss(input: object, target: object, weight: object | None = None, *,
             ignore_index: int = -100, reduction: str = "mean") -> object:
    """Negative log likelihood: -weight[t] * input[t] per sample, for log-probabilities
    `input` ([C], [N, C] or [N, C, d1, ...]) and integer class `target` ([], [N] or
    [N, d1, ...]). Targets equal to `ignore_index` count for nothing; "mean" divides
    by the sum of weight[t] over the other targets (PyTorch's rule).

    >>> logp = np.log(np.array([[0.5, 0.5], [0.25, 0.75]]))
    >>> float(nll_loss(logp, np.array([0, 1]), reduction="sum") / np.log(2))
    1.415...
    """
    _check_reduction(reduction, "nll_loss")
    ignore_index = as_int(ignore_index, "nll_loss: ignore_index")
    logp = _class_last(input, "nll_loss")
    weight = _class_weight(weight, logp, "nll_loss")
    loss, w_t, _ = _nll_terms(logp, target, weight, ignore_index, F.type_of(input).shape,
                              "nll_loss")
    return _weighted_mean(loss, w_t, reduction)


def cross_entropy(input: object, target: object, weight: object | None = None, *,
                  ignore_index: int = -100, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> object:
    """Cross entropy of logits `input` ([C], [N, C] or [N, C, d1, ...]; classes on axis
    1) with a target that is either integer class indices ([], [N] or [N, d1, ...]) or
    class probabilities of the input's shape (floats), as torch.nn.functional.

    With label smoothing ε the target distribution becomes q = (1 - ε) target + ε / C,
    and each sample's loss is -Σ_c weight[c] q[c] log_softmax(input)[c]. For class
    indices, "mean" divides by Σ weight[t] over targets that are not `ignore_index`
    (the count without weights; nan when all are ignored); for probabilities it
    divides by the number of samples, and `ignore_index` is not supported.

    >>> logits = np.array([[0.0, 0.0], [0.0, np.log(3.0)]])
    >>> round(float(cross_entropy(logits, np.array([0, 1]))), 6)  # (log 2 + log 4/3) / 2
    0.490415
    """
    _check_reduction(reduction, "cross_entropy")
    ignore_index = as_int(ignore_index, "cross_entropy: ignore_index")
    label_smoothing = as_real(label_smoothing, "cross_entropy: label_smoothing")
    if not 0.0 <= label_smoothing <= 1.0:
        raise LossError(f"cross_entropy: label_smoothing must be in [0, 1], got "
                        f"{label_smoothing}")
    logp = F.log_softmax(_class_last(input, "cross_entropy"), axis=-1)
    in_type, t_type = F.type_of(input), F.type_of(target)
    n_classes = F.type_of(logp).shape[-1]
    weight = _class_weight(weight, logp, "cross_entropy")
    eps = float(label_smoothing)

    if is_float(t_type.dtype):
        if t_type.shape != in_type.shape:
            _bad_target(target, in_type.shape, "cross_entropy")
        if ignore_index >= 0:
            raise LossError("cross_entropy: ignore_index is not supported for class-"
                            "probability targets (as PyTorch)")
        q = _class_last(target, "cross_entropy")
        if eps > 0:
            q = F.add(F.mul(q, 1.0 - eps), eps / n_classes)
        terms = F.mul(logp, q) if weight is None else F.mul(F.mul(logp, q), weight)
        return _reduce(F.neg(F.sum(terms, axis=-1)), reduction)

    loss, w_t, valid = _nll_terms(logp, target, weight, ignore_index, in_type.shape,
                                  "cross_entropy")
    if eps > 0:
        # PyTorch: (1 - ε) nll + ε/C Σ_c -weight[c] logp[c], the smoothing term also
        # zero at ignored targets and also divided by Σ weight[t] under "mean".
        all_classes = logp if weight is None else F.mul(logp, weight)
        smooth = F.where(valid, F.neg(F.sum(all_classes, axis=-1)), 0.0)
        loss = F.add(F.mul(loss, 1.0 - eps), F.mul(smooth, eps / n_classes))
    return _weighted_mean(loss, w_t, reduction)


def _clamped_log(x: object) -> object:
    # PyTorch clamps log at -100 so that probabilities of exactly 0 or 1 give a finite
    # loss. The inner where keeps log away from 0: otherwise its gradient 1/0 = inf would
    # meet the clamp's zero and make nan. Below 0 (and for NaN) the log is NaN, so that a
    # traced probability out of range gives a NaN loss, not a finite -100.
    pos = F.greater(x, 0)
    floor = F.where(F.equal(x, 0), -100.0, math.nan)
    return F.where(pos, F.clamp(F.log(F.where(pos, x, 1.0)), min=-100.0), floor)


def binary_cross_entropy(input: object, target: object, weight: object | None = None, *,
                         reduction: str = "mean") -> object:
    """-weight (target log input + (1 - target) log(1 - input)) for probabilities
    `input`, each log clamped at -100 as PyTorch (so 0 and 1 are finite). Target
    must have the input's shape (PyTorch raises too); `weight` broadcasts.

    Input outside [0, 1], or NaN, is rejected when it is concrete (a `LossError`, as
    PyTorch); a traced input has no numbers to check when the graph is built, and
    there such an element gives a NaN loss. PyTorch's gradient divides by
    max(x (1 - x), 1e-12); here it is the exact derivative of the clamped loss, which
    agrees wherever x (1 - x) >= 1e-12.

    >>> round(float(binary_cross_entropy(np.array([0.5, 1.0]), np.array([1.0, 0.0]))), 4)
    50.3466
    """
    _check_reduction(reduction, "binary_cross_entropy")
    _same_size(input, target, "binary_cross_entropy", strict=True)
    if not is_tracer(input):
        p = np.asarray(input)
        outside = ~((p >= 0) & (p <= 1))  # NaN too
        if outside.any():
            raise LossError(f"binary_cross_entropy: input is probabilities in [0, 1] (PyTorch "
                            f"rejects others too); got {p[outside].flat[0]} (use "
                            f"binary_cross_entropy_with_logits for logits)")
    loss = F.neg(F.add(F.mul(target, _clamped_log(input)),
                       F.mul(F.sub(1.0, target), _clamped_log(F.sub(1.0, input)))))
    if weight is not None:
        loss = F.mul(loss, _weight_like(weight, loss))
    return _reduce(loss, reduction)


def binary_cross_entropy_with_logits(input: object, target: object,
                                     weight: object | None = None, *,
                                     reduction: str = "mean",
                                     pos_weight: object | None = None) -> object:
    """Binary cross entropy of sigmoid(input), computed from the logits without
    overflow: max(x, 0) - x y + log(1 + exp(-|x|)). With `pos_weight` (PyTorch's
    formula) the positive term is scaled: (1 - y) x + (1 + (pos_weight - 1) y)
    softplus(-x). Finite, with finite gradients, for every finite logit.

    >>> binary_cross_entropy_with_logits(np.array([1000.0, -1000.0]), np.array([0.0, 0.0]),
    ...                                  reduction="none").tolist()
    [1000.0, 0.0]
    """
    _check_reduction(reduction, "binary_cross_entropy_with_logits")
    _same_size(input, target, "binary_cross_entropy_with_logits", strict=True)
    x, y = input, target
    # exp(-|x|) with |x| written as a where: abs'(0) = 0 would drop the log term's
    # share of the gradient at x = 0 (the same trick as functional.sigmoid).
    nonneg = F.greater_equal(x, 0)
    log_term = F.log1p(F.exp(F.where(nonneg, F.neg(x), x)))
    relu_neg = F.where(nonneg, 0.0, F.neg(x))  # max(-x, 0)
    # (1 - y) x + max(-x, 0) is max(x, 0) - x y, summed in the order that is exact for
    # y = 0 (x + (-x) = 0), before the small log term is added.
    if pos_weight is None:
        loss = F.add(F.add(F.mul(F.sub(1.0, y), x), relu_neg), log_term)
    else:
        lw = F.add(F.mul(F.sub(_weight_like(pos_weight, x), 1.0), y), 1.0)
        loss = F.add(F.add(F.mul(F.sub(1.0, y), x), F.mul(lw, relu_neg)), F.mul(lw, log_term))
    if weight is not None:
        loss = F.mul(loss, _weight_like(weight, loss))
    return _reduce(loss, reduction)


def kl_div(input: object, target: object, *, reduction: str = "mean",
           log_target: bool = False) -> object:
    """Pointwise KL divergence target (log target - input) for log-probabilities `input`
    (target as probabilities, or as log-probabilities with `log_target`); 0 where the
    target is 0. As PyTorch, "mean" divides by every element; "batchmean" divides the
    sum by the batch size input.shape[0] and is the KL divergence of the math.

    >>> p = np.array([[0.5, 0.5]])
    >>> float(kl_div(np.log(np.array([[0.25, 0.75]])), p, reduction="batchmean"))
    0.143...
    """
    _check_reduction(reduction, "kl_div", _REDUCTIONS + ("batchmean",))
    if as_bool(log_target, "kl_div: log_target"):
        loss = F.mul(F.exp(target), F.sub(target, input))
    else:
        zero = F.equal(target, 0)
        xlogx = F.where(zero, 0.0, F.mul(target, F.log(F.where(zero, 1.0, target))))
        loss = F.sub(xlogx, F.mul(target, input))
    if reduction == "batchmean":
        total = F.sum(loss)
        shape = F.type_of(loss).shape
        return F.div(total, shape[0]) if shape else total  # PyTorch: the sum for 0-d input
    return _reduce(loss, reduction)


def sigmoid_focal_loss(inputs: object, targets: object, alpha: float = 0.25,
                       gamma: float = 2.0, reduction: str = "mean") -> object:
    """torchvision.ops.sigmoid_focal_loss: binary cross entropy with logits, scaled by
    (1 - p_t)^gamma (p_t: the probability given to the true label) and, when
    alpha >= 0, by alpha_t = alpha y + (1 - alpha)(1 - y).

    Differs from torchvision: the default reduction is "mean", not "none", as every
    other loss here (a scalar by default, ready for `grad`); pass reduction="none"
    for torchvision's default.

    >>> round(float(sigmoid_focal_loss(np.array([0.0]), np.array([1.0]))), 6)  # .25 .25 log 2
    0.043322
    """
    _check_reduction(reduction, "sigmoid_focal_loss")
    alpha = as_real(alpha, "sigmoid_focal_loss: alpha")
    gamma = as_real(gamma, "sigmoid_focal_loss: gamma", finite=True)
    ce = binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    loss = ce
    if gamma != 0:  # (1 - p_t)^0 at p_t = 1 would have a 0 * inf = nan gradient
        p = F.sigmoid(inputs)
        one_minus_pt = F.add(F.mul(p, F.sub(1.0, targets)), F.mul(F.sub(1.0, p), targets))
        loss = F.mul(loss, F.power(one_minus_pt, gamma))
    if alpha >= 0:
        loss = F.mul(F.add(F.mul(targets, alpha), F.mul(F.sub(1.0, targets), 1.0 - alpha)), loss)
    return _reduce(loss, reduction)


# --------------------------------------------------------------------------- margins


def hinge(scores: object, targets: object, margin: float = 1.0, *,
          reduction: str = "mean") -> object:
    """Binary (SVM) hinge loss max(0, margin - y s) for targets y in {-1, 1}.

    PyTorch has no loss of this name: its `hinge_embedding_loss` is a different loss
    (x where y = 1, max(0, margin - x) where y = -1), provided below under its own
    name; for multi-class hinge use one score per class and ±1 targets.

    >>> hinge(np.array([2.0, 0.5, 0.5]), np.array([1, 1, -1]), reduction="none").tolist()
    [0.0, 0.5, 1.5]
    """
    _check_reduction(reduction, "hinge")
    return _reduce(F.relu(F.sub(margin, F.mul(_like(targets, scores), scores))), reduction)


def squared_hinge(scores: object, targets: object, margin: float = 1.0, *,
                  reduction: str = "mean") -> object:
    """max(0, margin - y s)² for targets y in {-1, 1} (smooth at the margin).

    >>> squared_hinge(np.array([2.0, 0.5, 0.5]), np.array([1, 1, -1]), reduction="none").tolist()
    [0.0, 0.25, 2.25]
    """
    _check_reduction(reduction, "squared_hinge")
    h = F.relu(F.sub(margin, F.mul(_like(targets, scores), scores)))
    return _reduce(F.mul(h, h), reduction)


def hinge_embedding_loss(input: object, target: object, margin: float = 1.0, *,
                         reduction: str = "mean") -> object:
    """PyTorch's hinge_embedding_loss: input (a distance) where target = 1,
    max(0, margin - input) where target = -1 (a target that is neither gets both, as
    PyTorch's formula does).

    >>> hinge_embedding_loss(np.array([0.3, 0.3]), np.array([1, -1]), reduction="none").tolist()
    [0.3, 0.7]
    """
    _check_reduction(reduction, "hinge_embedding_loss")
    loss = F.add(F.where(F.not_equal(target, 1), F.relu(F.sub(margin, input)), 0.0),
                 F.where(F.not_equal(target, -1), input, 0.0))
    return _reduce(loss, reduction)


def margin_ranking_loss(input1: object, input2: object, target: object, margin: float = 0.0,
                        *, reduction: str = "mean") -> object:
    """max(0, -y (x1 - x2) + margin): x1 should rank above x2 where y = 1, below where
    y = -1.

    >>> margin_ranking_loss(np.array([1.0, 1.0]), np.array([0.0, 0.0]), np.array([1, -1]),
    ...                     reduction="none").tolist()
    [0.0, 1.0]
    """
    _check_reduction(reduction, "margin_ranking_loss")
    diff = F.sub(input1, input2)
    loss = F.relu(F.add(F.neg(F.mul(_like(target, diff), diff)), margin))
    return _reduce(loss, reduction)


_COSINE_EPS = 1e-12  # PyTorch's EPSILON in cosine_embedding_loss


def cosine_embedding_loss(input1: object, input2: object, target: object,
                          margin: float = 0.0, *, reduction: str = "mean") -> object:
    """Per row (the last axis): 1 - cos(x1, x2) where y = 1, max(0, cos - margin) where
    y = -1, 0 for other y; cos = x1·x2 / sqrt((|x1|² + 1e-12)(|x2|² + 1e-12)), as PyTorch.

    >>> cosine_embedding_loss(np.array([[1.0, 0.0], [1.0, 1.0]]), np.array([[0.0, 1.0],
    ...     [1.0, 1.0]]), np.array([1, -1]), reduction="none").round(6).tolist()
    [1.0, 1.0]
    """
    _check_reduction(reduction, "cosine_embedding_loss")
    dot = F.sum(F.mul(input1, input2), axis=-1)
    sq1 = F.add(F.sum(F.mul(input1, input1), axis=-1), _COSINE_EPS)
    sq2 = F.add(F.sum(F.mul(input2, input2), axis=-1), _COSINE_EPS)
    cos = F.div(dot, F.sqrt(F.mul(sq1, sq2)))
    loss = F.add(F.where(F.equal(target, 1), F.sub(1.0, cos), 0.0),
                 F.where(F.equal(target, -1), F.relu(F.sub(cos, margin)), 0.0))
    return _reduce(loss, reduction)


def _pairwise_distance(a: object, b: object, p: float, eps: float) -> object:
    # torch.pairwise_distance: the p-norm of (a - b + eps) over the last axis
    d = F.add(F.sub(a, b), eps)
    if p == 2:
        return F.sqrt(F.sum(F.mul(d, d), axis=-1))
    if p == 1:
        return F.sum(F.abs(d), axis=-1)
    if p == math.inf:
        return F.max(F.abs(d), axis=-1)
    return F.power(F.sum(F.power(F.abs(d), float(p)), axis=-1), 1.0 / p)


def triplet_margin_loss(anchor: object, positive: object, negative: object,
                        margin: float = 1.0, p: float = 2.0, eps: float = 1e-6,
                        swap: bool = False, *, reduction: str = "mean") -> object:
    """Per row: max(0, margin + d(a, pos) - d(a, neg)), with d the p-norm of
    (x1 - x2 + eps) over the last axis (torch.pairwise_distance). With `swap`,
    d(a, neg) is replaced by min(d(a, neg), d(pos, neg)).

    Differs from PyTorch: p must be > 0 (or inf); PyTorch also accepts p <= 0, which
    is no norm (p = 0 counts non-zeros and has no gradient).

    >>> a = np.array([[0.0, 0.0]])
    >>> float(triplet_margin_loss(a, a + [[3.0, 4.0]], a + [[0.0, 1.0]], eps=0.0))
    5.0
    """
    _check_reduction(reduction, "triplet_margin_loss")
    p = as_real(p, "triplet_margin_loss: p")
    if not p > 0:
        raise LossError(f"triplet_margin_loss: p must be > 0 (or inf), got {p}")
    d_pos = _pairwise_distance(anchor, positive, p, eps)
    d_neg = _pairwise_distance(anchor, negative, p, eps)
    if as_bool(swap, "triplet_margin_loss: swap"):
        d_neg = F.minimum(d_neg, _pairwise_distance(positive, negative, p, eps))
    return _reduce(F.relu(F.sub(F.add(d_pos, margin), d_neg)), reduction)


# --------------------------------------------------------------------------- short names

mse = mse_loss
l1 = l1_loss
smooth_l1 = smooth_l1_loss
huber = huber_loss
nll = nll_loss
focal = sigmoid_focal_loss
cosine_embedding = cosine_embedding_loss
triplet_margin = triplet_margin_loss
margin_ranking = margin_ranking_loss
hinge_embedding = hinge_embedding_loss
