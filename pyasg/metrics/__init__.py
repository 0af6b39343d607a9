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

from pyasg.metrics._base import MetricError, MetricWarning
from pyasg.metrics.classification import (
    accuracy,
    accuracy_score,
    binary_confusion_matrix,
    confusion_matrix,
    f1,
    f1_score,
    precision,
    precision_score,
    recall,
    recall_score,
    roc_auc,
    roc_auc_score,
    top_k_accuracy,
    top_k_accuracy_score,
)
from pyasg.metrics.regression import (
    explained_variance,
    explained_variance_score,
    mae,
    mape,
    max_error,
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
    mse,
    r2,
    r2_score,
    rmse,
    root_mean_squared_error,
)
from pyasg.metrics.running import EMA, RunningMeanStd
from pyasg.metrics.training import EarlyStopping, MetricLogger

__all__ = [
    "EMA",
    "EarlyStopping",
    "MetricError",
    "MetricLogger",
    "MetricWarning",
    "RunningMeanStd",
    "accuracy",
    "accuracy_score",
    "binary_confusion_matrix",
    "confusion_matrix",
    "explained_variance",
    "explained_variance_score",
    "f1",
    "f1_score",
    "mae",
    "mape",
    "max_error",
    "mean_absolute_error",
    "mean_absolute_percentage_error",
    "mean_squared_error",
    "mse",
    "precision",
    "precision_score",
    "r2",
    "r2_score",
    "recall",
    "recall_score",
    "rmse",
    "roc_auc",
    "roc_auc_score",
    "root_mean_squared_error",
    "top_k_accuracy",
    "top_k_accuracy_score",
]
