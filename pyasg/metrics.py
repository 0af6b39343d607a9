"""Evaluation metrics, running statistics, a per-epoch logger and early stopping.

Metrics are plain numpy on concrete arrays (the results of a step), never traced.
Their names, arguments and definitions are scikit-learn's; each short name has its
scikit-learn name as an alias (`mse` is `mean_squared_error`, `f1` is `f1_score`, …).
None takes `sample_weight`. Every metric returns a Python float, except per-class or
per-output values (`average=None`, `multioutput="raw_values"`) and confusion matrices.

- Classification labels are 1-D arrays of class labels (ints, bools or strings).
  `accuracy` takes labels; scores or logits go to `top_k_accuracy` (or take
  ``argmax(axis=1)`` first). A float array with non-integer values is refused, since it
  is almost always probabilities passed where labels were meant.
- `precision`, `recall`, `f1` take ``average="binary" | "micro" | "macro" | "weighted"``
  or None (per class) and ``zero_division="warn" | 0 | 1 | nan`` with scikit-learn's
  default "warn": an undefined ratio (a 0/0) counts as 0.0 and a `MetricWarning` says
  so; 0 or 1 set the value silently; nan leaves it out of the average.
- Bad input (mismatched or empty arrays, an unknown average, k above the number of
  classes, …) raises `MetricError`, a `PyasgError` and a `ValueError` (what
  scikit-learn raises), naming what was wrong and the caller's line.

>>> import numpy as np
>>> accuracy([0, 1, 2, 3], [0, 2, 1, 3])
0.5
>>> round(f1([0, 1, 2, 0, 1, 2], [0, 2, 1, 0, 0, 1], average="macro"), 4)
0.2667
>>> rms = RunningMeanStd(); rms.update(np.array([1.0, 2.0])); rms.update(3.0)
>>> rms.mean, rms.var
(2.0, 0.6666666666666666)
"""

from __future__ import annotations

import math
import sys
import warnings
from typing import Any

import numpy as np

from pyasg import events
from pyasg.errors import PyasgError
from pyasg.trace.tracer import user_source

__all__ = [
    "EMA", "EarlyStopping", "MetricError", "MetricLogger", "MetricWarning",
    "RunningMeanStd", "accuracy", "accuracy_score", "binary_confusion_matrix",
    "confusion_matrix", "explained_variance", "explained_variance_score", "f1", "f1_score",
    "mae", "mape", "max_error", "mean_absolute_error", "mean_absolute_percentage_error",
    "mean_squared_error", "mse", "precision", "precision_score", "r2", "r2_score", "recall",
    "recall_score", "rmse", "roc_auc", "roc_auc_score", "root_mean_squared_error",
    "top_k_accuracy", "top_k_accuracy_score",
]


class MetricError(PyasgError, ValueError):
    """A metric got input it cannot score: mismatched or empty arrays, scores where
    labels were meant, an unknown `average`, `k` above the number of classes, …"""


class MetricWarning(UserWarning):
    """A metric is undefined for this input and was given a conventional value
    (scikit-learn's `UndefinedMetricWarning`)."""


def _fail(message: str) -> MetricError:
    return MetricError(message, user_source())


def _warn(message: str) -> None:
    # Point the warning at the user's call, however deep inside this module we are.
    frame, level = sys._getframe(0), 1
    while frame is not None and frame.f_code.co_filename == __file__:
        frame, level = frame.f_back, level + 1
    warnings.warn(message, MetricWarning, stacklevel=level)


def _array(fn: str, name: str, y: Any) -> np.ndarray:
    try:
        return np.asarray(y)
    except (ValueError, TypeError) as e:  # ragged nested lists and the like
        raise _fail(f"{fn}: {name} is not an array: {e}") from None


def _shape(a: np.ndarray) -> str:
    return "(" + ", ".join(map(str, a.shape)) + ("," if a.ndim == 1 else "") + ")"


# --------------------------------------------------------------------------- classification

_NUMERIC = "biuf"


def _labels(name: str, fn: str, y: Any) -> np.ndarray:
    a = _array(fn, name, y)
    if a.ndim != 1:
        hint = (" (scores or logits? take argmax(axis=1), or use top_k_accuracy)"
                if a.ndim == 2 else "")
        raise _fail(f"{fn}: {name} must be a 1-D array of class labels; "
                    f"got shape {_shape(a)}{hint}")
    if a.size == 0:
        raise _fail(f"{fn}: {name} is empty; a metric needs at least one sample")
    if a.dtype.kind == "f":
        bad = a[~np.isfinite(a) | (a != np.round(a))]
        if bad.size:
            raise _fail(f"{fn}: {name} holds {bad[0]!r}, not a class label; threshold "
                        "probabilities or take argmax first")
    elif a.dtype.kind not in _NUMERIC + "USO":
        raise _fail(f"{fn}: {name} has dtype {a.dtype}, not class labels")
    return a


def _label_pair(fn: str, y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    t, p = _labels("y_true", fn, y_true), _labels("y_pred", fn, y_pred)
    if t.shape != p.shape:
        raise _fail(f"{fn}: y_true has shape {_shape(t)} but y_pred has {_shape(p)}; "
                    "they must hold one label per sample")
    if (t.dtype.kind in _NUMERIC) != (p.dtype.kind in _NUMERIC):
        raise _fail(f"{fn}: y_true ({t.dtype}) and y_pred ({p.dtype}) mix numeric and "
                    "string labels")
    return t, p


def _label_set(fn: str, labels: Any) -> np.ndarray:
    a = np.asarray(labels)
    if a.ndim != 1 or a.size == 0:
        raise _fail(f"{fn}: labels must be a non-empty 1-D list; got shape {_shape(a)}")
    if np.unique(a).size != a.size:
        raise _fail(f"{fn}: labels must be unique; got {a.tolist()}")
    return a


def _index_of(y: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Position of each y in `labels` (in the order given), -1 where it is not there."""
    order = np.argsort(labels, kind="stable")
    ordered = labels[order]
    at = np.minimum(np.searchsorted(ordered, y), ordered.size - 1)
    return np.where(ordered[at] == y, order[at], -1)


def accuracy(y_true: Any, y_pred: Any, *, normalize: bool = True) -> float:
    """Fraction of labels predicted exactly (the count when `normalize` is False).

    >>> accuracy([1, 0, 1, 1], [1, 1, 1, 0]), accuracy([1, 0], [1, 1], normalize=False)
    (0.5, 1.0)
    """
    t, p = _label_pair("accuracy", y_true, y_pred)
    hits = t == p
    return float(hits.mean() if normalize else hits.sum())


def top_k_accuracy(y_true: Any, y_score: Any, k: int = 2, *, normalize: bool = True) -> float:
    """Fraction of samples whose true class is among the `k` highest scores.

    `y_score` is (n_samples, n_classes) scores, logits or probabilities; `y_true` holds
    column indices 0 … n_classes-1. Tied scores rank as scikit-learn ranks them (a
    stable sort, reversed): of equal scores, the higher class index comes first.
    k == n_classes scores 1.0 with a `MetricWarning`; k > n_classes is an error.

    >>> top_k_accuracy([0, 1, 2, 2], [[0.5, 0.2, 0.2], [0.3, 0.4, 0.2],
    ...                               [0.2, 0.4, 0.3], [0.7, 0.2, 0.1]], k=2)
    0.75
    """
    fn = "top_k_accuracy"
    t = _labels("y_true", fn, y_true)
    s = _array(fn, "y_score", y_score)
    if s.ndim != 2 or s.dtype.kind not in _NUMERIC:
        raise _fail(f"{fn}: y_score must be numeric (n_samples, n_classes) scores; got "
                    f"{s.dtype} of shape {_shape(s)}")
    if s.shape[0] != t.shape[0]:
        raise _fail(f"{fn}: y_true has {t.shape[0]} samples but y_score has shape "
                    f"{_shape(s)}")
    if not np.all(np.isfinite(s)):
        raise _fail(f"{fn}: y_score holds nan or inf")
    n_classes = s.shape[1]
    if t.dtype.kind not in _NUMERIC:
        raise _fail(f"{fn}: y_true must hold class indices (the columns of y_score); got "
                    f"dtype {t.dtype}")
    if t.min() < 0 or t.max() >= n_classes:
        raise _fail(f"{fn}: y_true must hold class indices in [0, {n_classes}) (the columns "
                    f"of y_score); got values from {t.min()!r} to {t.max()!r}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise _fail(f"{fn}: k must be a positive int; got {k!r}")
    if k > n_classes:
        raise _fail(f"{fn}: k={k} is more than the {n_classes} classes of y_score")
    if k == n_classes:
        _warn(f"top_k_accuracy: k={k} equals the number of classes, so every sample is a hit")
    t = t.astype(np.int64)
    own = s[np.arange(t.size), t][:, None]
    # rank of the true class = classes scored higher + equal-scored classes after it
    later = np.arange(n_classes)[None, :] > t[:, None]
    rank = (s > own).sum(axis=1) + ((s == own) & later).sum(axis=1)
    hits = rank < k
    return float(hits.mean() if normalize else hits.sum())


_AVERAGES = ("binary", "micro", "macro", "weighted", None)


def _zero_value(fn: str, zero_division: Any) -> float:
    if isinstance(zero_division, str) and zero_division == "warn":
        return 0.0
    if (isinstance(zero_division, (int, float, np.number)) and not isinstance(zero_division, bool)
            and (zero_division in (0, 1) or math.isnan(zero_division))):
        return float(zero_division)
    raise _fail(f"{fn}: zero_division must be 'warn', 0, 1 or nan; got {zero_division!r}")


def _ratio(num: np.ndarray, den: np.ndarray, value: float, warning: str | None) -> np.ndarray:
    undefined = den == 0
    out = num / np.where(undefined, 1, den)
    out[undefined] = value
    if warning is not None and undefined.any():
        _warn(warning + "; it is set to 0.0. Pass zero_division to choose the value.")
    return out


def _prf(metric: str, y_true: Any, y_pred: Any, labels: Any, pos_label: Any, average: Any,
         zero_division: Any) -> float | np.ndarray:
    fn = metric
    if not (average is None or (isinstance(average, str) and average in _AVERAGES)):
        raise _fail(f"{fn}: average must be one of {', '.join(map(repr, _AVERAGES))}; "
                    f"got {average!r}")
    zero = _zero_value(fn, zero_division)
    t, p = _label_pair(fn, y_true, y_pred)
    if average == "binary":
        present = np.union1d(t, p)
        if present.size > 2:
            raise _fail(f"{fn}: average='binary' needs two classes, but y_true and y_pred "
                        f"hold {present.size} ({present.tolist()}); use average='macro', "
                        "'micro' or 'weighted'")
        if present.size == 2 and pos_label not in present:
            raise _fail(f"{fn}: pos_label={pos_label!r} is not one of the labels "
                        f"{present.tolist()}")
        classes = np.asarray([pos_label])
    else:
        classes = np.union1d(t, p) if labels is None else _label_set(fn, labels)
    ti, pi = _index_of(t, classes), _index_of(p, classes)
    n = classes.size
    true_sum = np.bincount(ti[ti >= 0], minlength=n)
    pred_sum = np.bincount(pi[pi >= 0], minlength=n)
    tp = np.bincount(ti[(ti == pi) & (ti >= 0)], minlength=n)
    if average == "micro":
        tp, true_sum, pred_sum = tp.sum(keepdims=True), true_sum.sum(keepdims=True), \
            pred_sum.sum(keepdims=True)
    # scikit-learn warns only for the metric asked for, and only under "warn"
    warn = isinstance(zero_division, str)  # only "warn" passes _zero_value as a str
    if metric == "precision":
        num, den, why = tp, pred_sum, "precision is ill-defined: no sample predicted as a class"
    elif metric == "recall":
        num, den, why = tp, true_sum, "recall is ill-defined: a class has no true sample"
    else:  # F1 = 2tp / (2tp + fp + fn), undefined only when a class is nowhere at all
        num, den, why = 2 * tp, true_sum + pred_sum, \
            "f1 is ill-defined: a class is neither true nor predicted"
    score = _ratio(num, den, zero, why if warn else None)
    if average is None:
        return score
    if average in ("binary", "micro"):
        return float(score[0])
    keep = ~np.isnan(score)  # zero_division=nan leaves undefined classes out
    if not keep.any():
        return math.nan
    weights = true_sum[keep] if average == "weighted" else None
    if weights is not None and weights.sum() == 0:
        weights = None  # as scikit-learn: no true samples at all, so weigh equally
    return float(np.average(score[keep], weights=weights))


def precision(y_true: Any, y_pred: Any, *, labels: Any = None, pos_label: Any = 1,
              average: str | None = "binary", zero_division: Any = "warn") -> float | np.ndarray:
    """tp / (tp + fp): of the samples predicted as a class, the fraction that are.

    average: "binary" scores `pos_label` only; "micro" pools the counts of all classes;
    "macro" is the mean over classes; "weighted" weighs classes by their true count;
    None returns one value per class (of `labels`, default every label seen, sorted).

    >>> precision([1, 1, 1, 0, 0, 0], [1, 0, 0, 1, 0, 0])
    0.5
    """
    return _prf("precision", y_true, y_pred, labels, pos_label, average, zero_division)


def recall(y_true: Any, y_pred: Any, *, labels: Any = None, pos_label: Any = 1,
           average: str | None = "binary", zero_division: Any = "warn") -> float | np.ndarray:
    """tp / (tp + fn): of the samples of a class, the fraction predicted as it.

    Arguments as `precision`.

    >>> round(recall([1, 1, 1, 0, 0, 0], [1, 0, 0, 1, 0, 0]), 4)
    0.3333
    """
    return _prf("recall", y_true, y_pred, labels, pos_label, average, zero_division)


def f1(y_true: Any, y_pred: Any, *, labels: Any = None, pos_label: Any = 1,
       average: str | None = "binary", zero_division: Any = "warn") -> float | np.ndarray:
    """Harmonic mean of precision and recall, 2tp / (2tp + fp + fn) per class.

    Arguments as `precision`; "macro" averages the per-class F1 (not the F1 of the
    averaged precision and recall), as scikit-learn does.

    >>> f1([1, 1, 1, 0, 0, 0], [1, 0, 0, 1, 0, 0])
    0.4
    """
    return _prf("f1", y_true, y_pred, labels, pos_label, average, zero_division)


_NORMALIZE = (None, "true", "pred", "all")


def confusion_matrix(y_true: Any, y_pred: Any, *, labels: Any = None,
                     normalize: str | None = None) -> np.ndarray:
    """Counts C[i, j] of samples of true class labels[i] predicted as labels[j].

    `labels` (default: every label seen, sorted) fixes the rows and columns; samples
    with a label outside it are left out. `normalize` divides by the row sums ("true"),
    the column sums ("pred") or the total ("all"); an empty row or column gives 0.

    >>> confusion_matrix([2, 0, 2, 2, 0, 1], [0, 0, 2, 2, 0, 2])
    array([[2, 0, 0],
           [0, 0, 1],
           [1, 0, 2]])
    """
    fn = "confusion_matrix"
    if normalize not in _NORMALIZE:
        raise _fail(f"{fn}: normalize must be one of {', '.join(map(repr, _NORMALIZE))}; "
                    f"got {normalize!r}")
    t, p = _label_pair(fn, y_true, y_pred)
    classes = np.union1d(t, p) if labels is None else _label_set(fn, labels)
    n = classes.size
    ti, pi = _index_of(t, classes), _index_of(p, classes)
    both = (ti >= 0) & (pi >= 0)
    cm = np.bincount(ti[both] * n + pi[both], minlength=n * n).reshape(n, n).astype(np.int64)
    if normalize is None:
        return cm
    total = {"true": cm.sum(axis=1, keepdims=True), "pred": cm.sum(axis=0, keepdims=True),
             "all": cm.sum()}[normalize]
    with np.errstate(all="ignore"):
        return np.nan_to_num(cm / total)


def binary_confusion_matrix(y_true: Any, y_pred: Any, *, pos_label: Any = 1) -> np.ndarray:
    """[[tn, fp], [fn, tp]] with `pos_label` positive and every other label negative.

    Always 2 x 2 (even when one class is absent), laid out as scikit-learn's
    ``confusion_matrix(..., labels=[negative, positive])``, so ``.ravel()`` is
    ``tn, fp, fn, tp``.

    >>> binary_confusion_matrix([1, 1, 1, 0, 0, 0], [1, 0, 0, 1, 0, 0]).ravel().tolist()
    [2, 1, 2, 1]
    """
    t, p = _label_pair("binary_confusion_matrix", y_true, y_pred)
    t, p = (t == pos_label).astype(np.int64), (p == pos_label).astype(np.int64)
    return np.bincount(t * 2 + p, minlength=4).reshape(2, 2).astype(np.int64)


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1 … n of x, tied values sharing the mean of their ranks."""
    order = np.argsort(x, kind="stable")
    xs = x[order]
    starts = np.flatnonzero(np.r_[True, xs[1:] != xs[:-1]])
    ends = np.r_[starts[1:], xs.size]  # one past each run of equal values
    mean_rank = (starts + ends + 1) / 2.0  # ranks start+1 … end, averaged
    ranks = np.empty(x.size)
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def roc_auc(y_true: Any, y_score: Any) -> float:
    """Area under the ROC curve of a binary problem.

    `y_true` holds two labels, the greater of which is positive (as scikit-learn's
    ``np.unique`` order); `y_score` one score per sample, higher meaning more positive.
    Computed as the Mann-Whitney statistic, the chance that a random positive outscores
    a random negative with ties counting 1/2, which equals the trapezoidal area under
    the ROC curve that scikit-learn integrates. One class only: nan, with a
    `MetricWarning` (as scikit-learn).

    >>> roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    fn = "roc_auc"
    t = _labels("y_true", fn, y_true)
    s = _array(fn, "y_score", y_score)
    if s.ndim != 1 or s.dtype.kind not in _NUMERIC:
        raise _fail(f"{fn}: y_score must be a 1-D array of numeric scores; got "
                    f"{s.dtype} of shape {_shape(s)}")
    if s.shape != t.shape:
        raise _fail(f"{fn}: y_true has shape {_shape(t)} but y_score has {_shape(s)}")
    if not np.all(np.isfinite(s)):
        raise _fail(f"{fn}: y_score holds nan or inf")
    classes = np.unique(t)
    if classes.size > 2:
        raise _fail(f"{fn}: y_true holds {classes.size} classes; only binary ROC-AUC is "
                    "supported")
    if classes.size < 2:
        _warn(f"roc_auc is undefined: y_true holds only the class {classes[0]!r}; "
              "returning nan")
        return math.nan
    positive = t == classes[1]
    n_pos = int(positive.sum())
    n_neg = t.size - n_pos
    ranks = _average_ranks(s.astype(np.float64))
    u = ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


# --------------------------------------------------------------------------- regression

_MULTIOUTPUT = ("uniform_average", "raw_values")


def _targets(fn: str, y_true: Any, y_pred: Any, multioutput: Any = "uniform_average"
             ) -> tuple[np.ndarray, np.ndarray]:
    """Both as float64 (n_samples, n_outputs), checked."""
    if not (isinstance(multioutput, str) and multioutput in _MULTIOUTPUT):
        raise _fail(f"{fn}: multioutput must be one of {', '.join(map(repr, _MULTIOUTPUT))}; "
                    f"got {multioutput!r}")
    out = []
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        a = _array(fn, name, y)
        if a.dtype.kind not in _NUMERIC:
            raise _fail(f"{fn}: {name} must be numeric; got dtype {a.dtype}")
        if a.ndim not in (1, 2):
            raise _fail(f"{fn}: {name} must be 1-D (n_samples,) or 2-D (n_samples, "
                        f"n_outputs); got shape {_shape(a)}")
        if a.shape[0] == 0:
            raise _fail(f"{fn}: {name} is empty; a metric needs at least one sample")
        if not np.all(np.isfinite(a)):
            raise _fail(f"{fn}: {name} holds nan or inf")
        out.append(a.astype(np.float64).reshape(a.shape[0], -1))
    t, p = out
    if t.shape != p.shape:
        raise _fail(f"{fn}: y_true has shape {_shape(np.asarray(y_true))} but y_pred has "
                    f"{_shape(np.asarray(y_pred))}")
    return t, p


def _over_outputs(per_output: np.ndarray, multioutput: str) -> float | np.ndarray:
    return per_output if multioutput == "raw_values" else float(per_output.mean())


def mse(y_true: Any, y_pred: Any, *, multioutput: str = "uniform_average") -> float | np.ndarray:
    """Mean squared error, mean((y_true - y_pred)²), per output then averaged.

    >>> mse([3, -0.5, 2, 7], [2.5, 0.0, 2, 8])
    0.375
    """
    t, p = _targets("mse", y_true, y_pred, multioutput)
    return _over_outputs(((t - p) ** 2).mean(axis=0), multioutput)


def rmse(y_true: Any, y_pred: Any, *, multioutput: str = "uniform_average"
         ) -> float | np.ndarray:
    """Root mean squared error; with several outputs, the mean of their RMSEs.

    >>> rmse([1.0, 1.0], [4.0, -2.0])
    3.0
    """
    t, p = _targets("rmse", y_true, y_pred, multioutput)
    return _over_outputs(np.sqrt(((t - p) ** 2).mean(axis=0)), multioutput)


def mae(y_true: Any, y_pred: Any, *, multioutput: str = "uniform_average") -> float | np.ndarray:
    """Mean absolute error, mean(|y_true - y_pred|).

    >>> mae([3, -0.5, 2, 7], [2.5, 0.0, 2, 8])
    0.5
    """
    t, p = _targets("mae", y_true, y_pred, multioutput)
    return _over_outputs(np.abs(t - p).mean(axis=0), multioutput)


def mape(y_true: Any, y_pred: Any, *, multioutput: str = "uniform_average"
         ) -> float | np.ndarray:
    """Mean absolute percentage error as a fraction (not %): mean(|e| / max(|y|, eps)).

    eps is float64's machine epsilon (as scikit-learn), so a zero target gives a huge
    but finite error instead of inf.

    >>> mape([1.0, 2.0], [1.5, 1.0])
    0.5
    """
    t, p = _targets("mape", y_true, y_pred, multioutput)
    ratio = np.abs(p - t) / np.maximum(np.abs(t), np.finfo(np.float64).eps)
    return _over_outputs(ratio.mean(axis=0), multioutput)


def _explained(num: np.ndarray, den: np.ndarray, multioutput: str, force_finite: bool
               ) -> float | np.ndarray:
    if force_finite:
        # scikit-learn: a constant target scores 1.0 if predicted exactly, else 0.0
        score = np.ones_like(num)
        ok = (num != 0) & (den != 0)
        score[ok] = 1.0 - num[ok] / den[ok]
        score[(num != 0) & (den == 0)] = 0.0
    else:
        with np.errstate(all="ignore"):
            score = 1.0 - num / den
    return _over_outputs(score, multioutput)


def r2(y_true: Any, y_pred: Any, *, multioutput: str = "uniform_average",
       force_finite: bool = True) -> float | np.ndarray:
    """Coefficient of determination, 1 - Σ(y - ŷ)² / Σ(y - mean y)².

    A constant target scores 1.0 when predicted exactly and 0.0 otherwise (unless
    `force_finite` is False: nan or -inf). Fewer than two samples: nan with a
    `MetricWarning`. Both as scikit-learn.

    >>> r2([1.0, 2.0, 3.0], [1.0, 2.0, 4.0])
    0.5
    """
    t, p = _targets("r2", y_true, y_pred, multioutput)
    if t.shape[0] < 2:
        _warn("r2 is undefined for fewer than two samples; returning nan")
        return math.nan
    num = ((t - p) ** 2).sum(axis=0)
    den = ((t - t.mean(axis=0)) ** 2).sum(axis=0)  # exactly 0 for a constant target
    return _explained(num, den, multioutput, force_finite)


def explained_variance(y_true: Any, y_pred: Any, *, multioutput: str = "uniform_average",
                       force_finite: bool = True) -> float | np.ndarray:
    """1 - Var(y - ŷ) / Var(y): R² that forgives a constant offset of the predictions.

    Constant targets as `r2`.

    >>> explained_variance([1.0, 2.0, 3.0], [2.0, 3.0, 4.0])
    1.0
    """
    t, p = _targets("explained_variance", y_true, y_pred, multioutput)
    d = t - p
    num = ((d - d.mean(axis=0)) ** 2).mean(axis=0)
    den = ((t - t.mean(axis=0)) ** 2).mean(axis=0)
    return _explained(num, den, multioutput, force_finite)


def max_error(y_true: Any, y_pred: Any) -> float:
    """The largest absolute error, max |y_true - y_pred| (single output only).

    >>> max_error([3, 2, 7, 1], [9, 2, 7, 1])
    6.0
    """
    t, p = _targets("max_error", y_true, y_pred)
    if t.shape[1] != 1:
        raise _fail(f"max_error: takes one output; got {t.shape[1]} (shape "
                    f"{_shape(np.asarray(y_true))})")
    return float(np.abs(t - p).max())


# scikit-learn's names for the same functions
accuracy_score = accuracy
top_k_accuracy_score = top_k_accuracy
precision_score = precision
recall_score = recall
f1_score = f1
roc_auc_score = roc_auc
mean_squared_error = mse
root_mean_squared_error = rmse
mean_absolute_error = mae
mean_absolute_percentage_error = mape
r2_score = r2
explained_variance_score = explained_variance


# --------------------------------------------------------------------------- running statistics


def _out(a: np.ndarray) -> float | np.ndarray:
    return float(a) if a.ndim == 0 else a.copy()


class RunningMeanStd:
    """Mean and variance of a stream of samples of one `shape`, without storing them.

    `update` takes one sample (an array of `shape`, or a scalar when `shape` is ()) or a
    batch (shape ``(n, *shape)``; n may be 0). Each batch's own mean and squared
    deviations are folded in with Chan et al.'s parallel formula, which is Welford's
    update for a batch of one; `merge` folds in another accumulator the same way, so
    statistics gathered in parts equal those of the whole up to rounding.
    `var`/`std` are population statistics (ddof=0), `sample_var`/`sample_std` use
    ddof=1; with no samples they are nan, as is `sample_var` with one.

    >>> a, b = RunningMeanStd(), RunningMeanStd()
    >>> a.update([1.0, 2.0]); b.update([3.0, 4.0])
    >>> a.merge(b).count, a.mean, a.sample_var
    (4, 2.5, 1.6666666666666667)
    """

    def __init__(self, shape: tuple[int, ...] = ()) -> None:
        self.shape = tuple(int(d) for d in shape)
        self.count = 0
        self._mean = np.zeros(self.shape)
        self._m2 = np.zeros(self.shape)  # sum of squared deviations from the mean

    def _fold(self, n: int, mean: np.ndarray, m2: np.ndarray) -> None:
        if n == 0:
            return
        total = self.count + n
        delta = mean - self._mean
        self._mean = self._mean + delta * (n / total)
        self._m2 = self._m2 + m2 + delta ** 2 * (self.count * n / total)
        self.count = total

    def update(self, x: Any) -> None:
        """Add one sample, or a batch of samples along the first axis."""
        a = _array("RunningMeanStd.update", "x", x)
        if a.dtype.kind not in _NUMERIC:
            raise _fail(f"RunningMeanStd.update: takes numbers; got {a.dtype}")
        a = a.astype(np.float64)
        if a.shape == self.shape:
            a = a[None]
        elif a.shape[1:] != self.shape:
            raise _fail(f"RunningMeanStd.update: a sample has shape {self.shape}, so x must "
                        f"have shape {self.shape} or (n, *{self.shape}); got {a.shape}")
        if a.shape[0]:
            mean = a.mean(axis=0)
            self._fold(a.shape[0], mean, ((a - mean) ** 2).sum(axis=0))

    def merge(self, other: RunningMeanStd) -> RunningMeanStd:
        """Fold `other`'s samples into this one (in place) and return self."""
        if not isinstance(other, RunningMeanStd) or other.shape != self.shape:
            raise _fail(f"RunningMeanStd.merge: needs a RunningMeanStd of shape {self.shape}; "
                        f"got {getattr(other, 'shape', type(other).__name__)}")
        self._fold(other.count, other._mean, other._m2)
        return self

    def _nan_unless(self, ok: bool, a: np.ndarray) -> float | np.ndarray:
        return _out(a if ok else np.full(self.shape, np.nan))

    @property
    def mean(self) -> float | np.ndarray:
        return self._nan_unless(self.count > 0, self._mean)

    @property
    def var(self) -> float | np.ndarray:
        return self._nan_unless(self.count > 0, self._m2 / max(self.count, 1))

    @property
    def std(self) -> float | np.ndarray:
        return np.sqrt(self.var) if self.shape else math.sqrt(self.var)

    @property
    def sample_var(self) -> float | np.ndarray:
        return self._nan_unless(self.count > 1, self._m2 / max(self.count - 1, 1))

    @property
    def sample_std(self) -> float | np.ndarray:
        return np.sqrt(self.sample_var) if self.shape else math.sqrt(self.sample_var)


class EMA:
    """Exponential moving average, ``v ← decay·v + (1 - decay)·x``, starting from v = 0.

    With `bias_correction` (the default) `value` is v / (1 - decay^t) after t updates,
    as Adam corrects its moments: the weighted mean of every value seen, with weights
    decay^age, so the first value is returned as it is instead of pulled towards 0.
    Without it `value` is the raw v. Before any update `value` is nan. Values may be
    scalars or arrays of one shape.

    >>> ema = EMA(0.5)
    >>> ema.update(1.0), ema.update(4.0)
    (1.0, 3.0)
    >>> EMA(0.5, bias_correction=False).update(4.0)
    2.0
    """

    def __init__(self, decay: float, bias_correction: bool = True) -> None:
        if isinstance(decay, bool) or not isinstance(decay, (int, float, np.floating)) \
                or not 0.0 <= decay < 1.0:
            raise _fail(f"EMA: decay must be a number in [0, 1); got {decay!r}")
        self.decay = float(decay)
        self.bias_correction = bias_correction
        self.count = 0
        self._v: np.ndarray = np.zeros(())

    def update(self, x: Any) -> float | np.ndarray:
        """Fold in `x` and return the new `value`."""
        a = _array("EMA.update", "x", x)
        if a.dtype.kind not in _NUMERIC:
            raise _fail(f"EMA.update: takes numbers; got {a.dtype}")
        if self.count and a.shape != self._v.shape:
            raise _fail(f"EMA.update: earlier values had shape {self._v.shape}; got {a.shape}")
        self._v = self.decay * self._v + (1.0 - self.decay) * a.astype(np.float64)
        self.count += 1
        return self.value

    @property
    def value(self) -> float | np.ndarray:
        if self.count == 0:
            return math.nan
        if self.bias_correction:
            return _out(self._v / (1.0 - self.decay ** self.count))
        return _out(self._v)


# --------------------------------------------------------------------------- logging, stopping


def _scalar(where: str, value: Any) -> float:
    a = _array(where, "value", value)
    if a.size != 1 or a.dtype.kind not in _NUMERIC:
        raise _fail(f"{where}: must be a real number; got {a.dtype} of shape {a.shape}")
    return float(a.reshape(()))


def _step(where: str, step: Any) -> int:
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)):
        raise _fail(f"{where}: step must be an int; got {step!r}")
    return int(step)


class MetricLogger:
    """Collects named values per step and keeps their mean per epoch.

    `log(step, loss=…, acc=…)` records values within the current epoch; `end_epoch()`
    appends each name's mean over that epoch to `history[name]` and returns those
    means. `history[name][e]` is always epoch e: a name not logged in an epoch gets nan
    there (also for the epochs before it first appeared), and so does every name of an
    epoch with no logs. With `publish=True` each `log` call also publishes
    ``pyasg.events.StepDone(step, loss, metrics)``: `loss` is the value named "loss"
    (nan when there is none) and `metrics` holds the other values.

    >>> logger = MetricLogger()
    >>> logger.log(1, loss=1.0, acc=0.5); logger.log(2, loss=0.5)
    >>> logger.end_epoch()
    {'loss': 0.75, 'acc': 0.5}
    >>> logger.log(3, loss=0.25); _ = logger.end_epoch(); logger.history
    {'loss': [0.75, 0.25], 'acc': [0.5, nan]}
    """

    def __init__(self, publish: bool = False) -> None:
        self.publish = publish
        self.history: dict[str, list[float]] = {}
        self.epoch = 0  # completed epochs
        self._current: dict[str, list[float]] = {}

    def log(self, step: int, **values: Any) -> None:
        """Record `values` (real scalars) for `step` in the current epoch."""
        step = _step("MetricLogger.log", step)
        floats = {k: _scalar(f"MetricLogger.log: value {k!r}", v) for k, v in values.items()}
        for name, value in floats.items():
            self._current.setdefault(name, []).append(value)
        if self.publish:
            loss = floats.get("loss", math.nan)
            metrics = {k: v for k, v in floats.items() if k != "loss"}
            events.publish(events.StepDone(step=step, loss=loss, metrics=metrics))

    def end_epoch(self) -> dict[str, float]:
        """Close the epoch; return the mean of each value logged in it."""
        means = {k: float(np.mean(v)) for k, v in self._current.items()}
        for name in means:
            self.history.setdefault(name, [math.nan] * self.epoch)
        for name, column in self.history.items():
            column.append(means.get(name, math.nan))
        self.epoch += 1
        self._current = {}
        return means


class EarlyStopping:
    """Says when a monitored value has stopped improving.

    `step(value)` returns True once `patience` consecutive values failed to improve
    (patience=0: at the first that fails). Improving means beating `best` by more than
    `min_delta`: value < best - min_delta in "min" mode, value > best + min_delta in
    "max" mode (PyTorch Lightning's rule; equal to best + min_delta is no improvement).
    `best` starts at +inf ("min") or -inf ("max"), so the first finite value improves.
    `best_step` is the `step` given with the best value (default: the 0-based count of
    calls); `wait` counts the values since then; `stopped_step` is where it stopped.
    With `check_finite` (Lightning's default) a nan or inf value stops at once. Once
    stopped, `step` keeps returning True and changes nothing.

    >>> stopper = EarlyStopping("min", patience=2)
    >>> [stopper.step(v) for v in [3.0, 2.0, 2.5, 2.1]]
    [False, False, False, True]
    >>> stopper.best, stopper.best_step
    (2.0, 1)
    """

    def __init__(self, mode: str = "min", patience: int = 3, min_delta: float = 0.0,
                 check_finite: bool = True) -> None:
        if mode not in ("min", "max"):
            raise _fail(f"EarlyStopping: mode must be 'min' or 'max'; got {mode!r}")
        if isinstance(patience, bool) or not isinstance(patience, (int, np.integer)) \
                or patience < 0:
            raise _fail(f"EarlyStopping: patience must be an int >= 0; got {patience!r}")
        delta = _scalar("EarlyStopping: min_delta", min_delta)
        if not delta >= 0.0:
            raise _fail(f"EarlyStopping: min_delta must be >= 0 (the direction comes from "
                        f"mode); got {min_delta!r}")
        self.mode, self.patience, self.min_delta = mode, int(patience), delta
        self.check_finite = check_finite
        self.best = math.inf if mode == "min" else -math.inf
        self.best_step: int | None = None
        self.wait = 0  # values since the last improvement
        self.stopped = False
        self.stopped_step: int | None = None
        self._calls = 0

    def improves(self, value: float) -> bool:
        """Whether `value` would count as an improvement on `best`."""
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def step(self, value: Any, step: int | None = None) -> bool:
        """Record `value` (at `step`); return whether training should stop."""
        value = _scalar("EarlyStopping.step: value", value)
        at = self._calls if step is None else _step("EarlyStopping.step", step)
        self._calls += 1
        if self.stopped:
            return True
        if self.check_finite and not math.isfinite(value):
            self.stopped = True
        elif self.improves(value):
            self.best, self.best_step, self.wait = value, at, 0
        else:
            self.wait += 1
            self.stopped = self.wait >= self.patience
        if self.stopped:
            self.stopped_step = at
        return self.stopped
