"""Regression metrics with scikit-learn's definitions: MSE, RMSE, MAE, MAPE, R²,
explained variance, max error."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from pyasg.metrics._base import _NUMERIC, _array, _fail, _flag, _shape, _warn, quote

# --------------------------------------------------------------------------- regression

_MULTIOUTPUT = ("uniform_average", "raw_values")


def _targets(fn: str, y_true: Any, y_pred: Any, multioutput: Any = "uniform_average"
             ) -> tuple[np.ndarray, np.ndarray]:
    """Both as float64 (n_samples, n_outputs), checked."""
    if not (isinstance(multioutput, str) and multioutput in _MULTIOUTPUT):
        raise _fail(f"{fn}: multioutput must be one of {', '.join(map(repr, _MULTIOUTPUT))}; "
                    f"got {quote(multioutput)}")
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
    force_finite = _flag("r2", "force_finite", force_finite)
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
    force_finite = _flag("explained_variance", "force_finite", force_finite)
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




mean_squared_error = mse
root_mean_squared_error = rmse
mean_absolute_error = mae
mean_absolute_percentage_error = mape
r2_score = r2
explained_variance_score = explained_variance
