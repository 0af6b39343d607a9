"""Classification metrics with scikit-learn's definitions: accuracy, top-k, precision,
recall, F1, confusion matrices, ROC-AUC."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from pyasg.metrics._base import _NUMERIC, _array, _fail, _flag, _label, _shape, _warn, quote

# --------------------------------------------------------------------------- classification



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
            raise _fail(f"{fn}: {name} holds {quote(bad[0])}, not a class label; threshold "
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
    normalize = _flag("accuracy", "normalize", normalize)
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
    normalize = _flag(fn, "normalize", normalize)
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
        raise _fail(f"{fn}: k must be a positive int; got {quote(k)}")
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
    raise _fail(f"{fn}: zero_division must be 'warn', 0, 1 or nan; got {quote(zero_division)}")


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
                    f"got {quote(average)}")
    zero = _zero_value(fn, zero_division)
    pos_label = _label(fn, "pos_label", pos_label)
    t, p = _label_pair(fn, y_true, y_pred)
    if average == "binary":
        present = np.union1d(t, p)
        if present.size > 2:
            raise _fail(f"{fn}: average='binary' needs two classes, but y_true and y_pred "
                        f"hold {present.size} ({present.tolist()}); use average='macro', "
                        "'micro' or 'weighted'")
        if present.size == 2 and pos_label not in present:
            raise _fail(f"{fn}: pos_label={quote(pos_label, with_type=False)} is not one of "
                        f"the labels {present.tolist()}")
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
    if not (normalize is None or (isinstance(normalize, str) and normalize in _NORMALIZE)):
        raise _fail(f"{fn}: normalize must be one of {', '.join(map(repr, _NORMALIZE))}; "
                    f"got {quote(normalize)}")
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
    pos_label = _label("binary_confusion_matrix", "pos_label", pos_label)
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



accuracy_score = accuracy
top_k_accuracy_score = top_k_accuracy
precision_score = precision
recall_score = recall
f1_score = f1
roc_auc_score = roc_auc
