"""pyasg.metrics against hand-computed values and against scikit-learn.

Every metric is checked on small fixtures whose expected values are worked out by
hand in the test (the arithmetic is written out), and on hypothesis-drawn data against
scikit-learn, for every `average`, `zero_division` and `multioutput` mode; a test that
compares with scikit-learn skips itself where scikit-learn is not installed (CI
installs it). Running statistics are checked against numpy over the concatenated
samples, EMA against its closed form, EarlyStopping against sequences traced by hand
and against the running minimum. Expected values never come from pyasg.
"""

from __future__ import annotations

import math
import os
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyasg import metrics as M
from pyasg.errors import PyasgError
from pyasg.events import StepDone, subscribe

AVERAGES = ("binary", "micro", "macro", "weighted", None)
ZERO_DIVISIONS = ("warn", 0, 1, np.nan)
PRF = (("precision", M.precision), ("recall", M.recall), ("f1", M.f1))
REGRESSION = ("mse", "rmse", "mae", "mape", "r2", "explained_variance")
SKLEARN_NAME = {
    "mse": "mean_squared_error", "rmse": "root_mean_squared_error",
    "mae": "mean_absolute_error", "mape": "mean_absolute_percentage_error",
    "r2": "r2_score", "explained_variance": "explained_variance_score",
    "precision": "precision_score", "recall": "recall_score", "f1": "f1_score",
}


def quiet(fn, *args, **kwargs):
    """fn(...) and whether it warned (pyasg's MetricWarning or sklearn's)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = fn(*args, **kwargs)
    return value, bool(caught)


# --------------------------------------------------------------------------- strategies


@st.composite
def label_pairs(draw, max_classes: int = 5):
    """(y_true, y_pred) of int labels, length 1-25, from up to `max_classes` classes."""
    n = draw(st.integers(1, 25))
    classes = draw(st.integers(1, max_classes))
    labels = st.lists(st.integers(0, classes - 1), min_size=n, max_size=n)
    return np.array(draw(labels)), np.array(draw(labels))


@st.composite
def regression_pairs(draw, max_outputs: int = 1):
    """(y_true, y_pred), 1-D or (n, outputs), often constant or holding zeros."""
    n = draw(st.integers(1, 20))
    outputs = draw(st.integers(1, max_outputs))
    value = st.one_of(st.sampled_from([0.0, 1.0, -2.5, 3.0]),
                      st.floats(-100, 100, allow_nan=False, width=64))
    shape = (n,) if outputs == 1 else (n, outputs)
    column = st.lists(value, min_size=n * outputs, max_size=n * outputs)
    return (np.array(draw(column)).reshape(shape), np.array(draw(column)).reshape(shape))


# ---------------------------------------------------------------------- classification fixtures


def test_accuracy_counts_exact_matches():
    # matches at positions 0 and 3 of 4
    assert M.accuracy([0, 1, 2, 3], [0, 2, 1, 3]) == 2 / 4
    assert M.accuracy([0, 1, 2, 3], [0, 2, 1, 3], normalize=False) == 2.0
    assert M.accuracy(["a", "b", "b"], ["a", "b", "a"]) == 2 / 3
    assert M.accuracy(np.array([1.0, 0.0]), [1, 0]) == 1.0  # integral floats are labels


def test_top_k_accuracy_hand_fixture():
    y = [0, 1, 2, 2]
    scores = [[0.5, 0.2, 0.2],   # true 0 ranked 1st: hit for k >= 1
              [0.3, 0.4, 0.2],   # true 1 ranked 1st
              [0.2, 0.4, 0.3],   # true 2 ranked 2nd
              [0.7, 0.2, 0.1]]   # true 2 ranked 3rd
    assert M.top_k_accuracy(y, scores, k=1) == 2 / 4
    assert M.top_k_accuracy(y, scores, k=2) == 3 / 4
    assert M.top_k_accuracy(y, scores, 2, normalize=False) == 3.0


def test_top_k_accuracy_ties_put_the_higher_class_first():
    # scores tie between classes 0 and 1; of equal scores the higher index ranks first
    scores = [[0.4, 0.4, 0.2]]
    assert M.top_k_accuracy([1], scores, k=1) == 1.0
    assert M.top_k_accuracy([0], scores, k=1) == 0.0
    assert M.top_k_accuracy([0], scores, k=2) == 1.0


def test_top_k_accuracy_k_equal_to_classes_warns_and_scores_one():
    with pytest.warns(M.MetricWarning, match="number of classes"):
        assert M.top_k_accuracy([0, 2], [[0.0, 1.0, 2.0], [2.0, 1.0, 0.0]], k=3) == 1.0


# y_true = [1,1,1,0,0,0], y_pred = [1,0,0,1,0,0]: tp = 1 (index 0), fp = 1 (index 3),
# fn = 2 (indices 1, 2), tn = 2 (indices 4, 5)
BIN_T, BIN_P = [1, 1, 1, 0, 0, 0], [1, 0, 0, 1, 0, 0]


def test_binary_precision_recall_f1_by_hand():
    assert M.precision(BIN_T, BIN_P) == 1 / (1 + 1)
    assert M.recall(BIN_T, BIN_P) == pytest.approx(1 / (1 + 2), rel=1e-15)
    assert M.f1(BIN_T, BIN_P) == pytest.approx(2 * 1 / (2 * 1 + 1 + 2), rel=1e-15)
    # pos_label=0 swaps roles: tp = 2, fp = 2, fn = 1
    assert M.precision(BIN_T, BIN_P, pos_label=0) == 2 / 4
    assert M.recall(BIN_T, BIN_P, pos_label=0) == pytest.approx(2 / 3, rel=1e-15)
    assert M.f1(BIN_T, BIN_P, pos_label=0) == pytest.approx(4 / (4 + 2 + 1), rel=1e-15)
    assert M.precision(["no", "yes", "yes"], ["yes", "yes", "no"], pos_label="yes") == 0.5


# y_true = [0,1,2,0,1,2], y_pred = [0,2,1,0,0,1]
#   class 0: tp 2, predicted 3, true 2 -> P 2/3, R 1, F1 2*2/(2*2+1+0) = 0.8
#   class 1: tp 0, predicted 2, true 2 -> P 0, R 0, F1 0
#   class 2: tp 0, predicted 1, true 2 -> P 0, R 0, F1 0
#   micro: tp 2 of 6 predicted and 6 true -> P = R = F1 = 1/3
MC_T, MC_P = [0, 1, 2, 0, 1, 2], [0, 2, 1, 0, 0, 1]
MC_EXPECTED = {
    ("precision", "macro"): 2 / 9, ("precision", "micro"): 1 / 3,
    ("precision", "weighted"): (2 * 2 / 3) / 6,
    ("recall", "macro"): 1 / 3, ("recall", "micro"): 1 / 3, ("recall", "weighted"): 2 / 6,
    ("f1", "macro"): 0.8 / 3, ("f1", "micro"): 1 / 3, ("f1", "weighted"): 2 * 0.8 / 6,
}
MC_PER_CLASS = {"precision": [2 / 3, 0, 0], "recall": [1, 0, 0], "f1": [0.8, 0, 0]}


@pytest.mark.parametrize("name, fn", PRF)
def test_multiclass_averages_by_hand(name, fn):
    for average in ("macro", "micro", "weighted"):
        assert fn(MC_T, MC_P, average=average) == pytest.approx(MC_EXPECTED[name, average],
                                                                rel=1e-14)
    np.testing.assert_allclose(fn(MC_T, MC_P, average=None), MC_PER_CLASS[name], rtol=1e-14)


def test_labels_fix_the_classes_averaged():
    # class 3 is never seen: recall 0/0 -> 0 with a warning, lowering the macro mean
    with pytest.warns(M.MetricWarning, match="recall is ill-defined"):
        assert M.recall(MC_T, MC_P, labels=[0, 1, 2, 3], average="macro") == 1 / 4
    # only class 0: P 2/3
    assert M.precision(MC_T, MC_P, labels=[0], average="macro") == pytest.approx(2 / 3)


def test_zero_division_modes():
    # nothing predicted positive: precision = 0/0
    t, p = [1, 0, 1], [0, 0, 0]
    with pytest.warns(M.MetricWarning, match="precision is ill-defined"):
        assert M.precision(t, p) == 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an explicit choice is silent
        assert M.precision(t, p, zero_division=0) == 0.0
        assert M.precision(t, p, zero_division=1) == 1.0
        assert math.isnan(M.precision(t, p, zero_division=np.nan))
        # recall is defined (0/2) and F1 = 0/(0+2+0): no warning
        assert M.recall(t, p) == 0.0
        assert M.f1(t, p) == 0.0
    # nan leaves the undefined class out of the macro mean: class 1 precision 0/0,
    # class 0 precision 1/3 (one of the three predicted zeros is right)
    assert M.precision(t, p, average="macro", zero_division=np.nan) == pytest.approx(1 / 3)
    # 0 keeps it in: (1/3 + 0) / 2
    assert M.precision(t, p, average="macro", zero_division=0) == pytest.approx(1 / 6)


def test_f1_undefined_only_when_class_absent_everywhere():
    # y all 0, pred all 0, pos_label 1 never appears: tp = fp = fn = 0
    with pytest.warns(M.MetricWarning, match="f1 is ill-defined"):
        assert M.f1([0, 0], [0, 0]) == 0.0
    assert M.f1([0, 0], [0, 0], zero_division=1) == 1.0


def test_confusion_matrices_by_hand():
    t, p = [2, 0, 2, 2, 0, 1], [0, 0, 2, 2, 0, 2]
    # rows true, columns predicted: (0,0) x2; (1,2) x1; (2,0) x1; (2,2) x2
    expected = np.array([[2, 0, 0], [0, 0, 1], [1, 0, 2]])
    np.testing.assert_array_equal(M.confusion_matrix(t, p), expected)
    np.testing.assert_array_equal(M.confusion_matrix(t, p, labels=[2, 0]),
                                  [[2, 1], [0, 2]])
    np.testing.assert_allclose(M.confusion_matrix(t, p, normalize="true"),
                               [[1, 0, 0], [0, 0, 1], [1 / 3, 0, 2 / 3]])
    np.testing.assert_allclose(M.confusion_matrix(t, p, normalize="all"), expected / 6)
    np.testing.assert_array_equal(M.binary_confusion_matrix(BIN_T, BIN_P), [[2, 1], [2, 1]])
    np.testing.assert_array_equal(M.binary_confusion_matrix([0, 0], [0, 0]), [[2, 0], [0, 0]])
    np.testing.assert_array_equal(
        M.binary_confusion_matrix(["a", "b"], ["b", "b"], pos_label="b"), [[0, 1], [0, 1]])


def test_roc_auc_by_hand():
    # positives 0.35, 0.8; negatives 0.1, 0.4: pairs won 0.35>0.1, 0.8>0.1, 0.8>0.4
    assert M.roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 3 / 4
    # positives 0.5, 0.9; negatives 0.5, 0.2: the 0.5/0.5 tie counts 1/2
    assert M.roc_auc([0, 1, 0, 1], [0.5, 0.5, 0.2, 0.9]) == 3.5 / 4
    assert M.roc_auc([1, 0], [0.3, 0.3]) == 0.5
    # the greater label is positive
    assert M.roc_auc([-1, 1, 1], [0.0, 1.0, 2.0]) == 1.0
    assert M.roc_auc(["neg", "pos"], [1.0, 0.0]) == 0.0
    with pytest.warns(M.MetricWarning, match="only the class"):
        assert math.isnan(M.roc_auc([1, 1], [0.2, 0.4]))


# ---------------------------------------------------------------------- regression fixtures

# e = y_pred - y_true = [-0.5, 0.5, 0, 1]; mean(y_true) = 11.5 / 4 = 2.875
REG_T, REG_P = [3.0, -0.5, 2.0, 7.0], [2.5, 0.0, 2.0, 8.0]
SS_TOT = 0.125 ** 2 + 3.375 ** 2 + 0.875 ** 2 + 4.125 ** 2          # = 29.1875
REG_EXPECTED = {
    "mse": (0.25 + 0.25 + 0 + 1) / 4,
    "rmse": math.sqrt(1.5 / 4),
    "mae": (0.5 + 0.5 + 0 + 1) / 4,
    "mape": (0.5 / 3 + 0.5 / 0.5 + 0 / 2 + 1 / 7) / 4,
    "r2": 1 - 1.5 / SS_TOT,
    # y - ŷ = [0.5, -0.5, 0, -1], mean -0.25, deviations [.75, -.25, .25, -.75]
    "explained_variance": 1 - ((0.75 ** 2 * 2 + 0.25 ** 2 * 2) / 4) / (SS_TOT / 4),
}


@pytest.mark.parametrize("name", REGRESSION)
def test_regression_by_hand(name):
    assert getattr(M, name)(REG_T, REG_P) == pytest.approx(REG_EXPECTED[name], rel=1e-14)
    assert M.max_error(REG_T, REG_P) == 1.0


def test_regression_multioutput_by_hand():
    t = [[0.5, 1.0], [-1.0, 1.0], [7.0, -6.0]]
    p = [[0.0, 2.0], [-1.0, 2.0], [8.0, -5.0]]
    # column 0 errors [-.5, 0, 1] -> mse 1.25/3; column 1 errors [1, 1, 1] -> mse 1
    np.testing.assert_allclose(M.mse(t, p, multioutput="raw_values"), [1.25 / 3, 1.0])
    assert M.mse(t, p) == pytest.approx((1.25 / 3 + 1.0) / 2)
    assert M.rmse(t, p) == pytest.approx((math.sqrt(1.25 / 3) + 1.0) / 2)
    assert M.mae(t, p) == pytest.approx((1.5 / 3 + 1.0) / 2)


def test_constant_target_and_single_sample():
    assert M.r2([1.0, 1.0, 1.0], [1.0, 1.0, 1.0]) == 1.0      # perfect on a constant
    assert M.r2([1.0, 1.0, 1.0], [1.0, 2.0, 1.0]) == 0.0      # imperfect on a constant
    assert M.explained_variance([2.0, 2.0], [2.0, 2.0]) == 1.0
    assert M.explained_variance([2.0, 2.0], [3.0, 1.0]) == 0.0
    assert M.r2([1.0, 1.0], [1.0, 2.0], force_finite=False) == -np.inf
    assert math.isnan(M.r2([1.0, 1.0], [1.0, 1.0], force_finite=False))
    with pytest.warns(M.MetricWarning, match="fewer than two samples"):
        assert math.isnan(M.r2([1.0], [2.0]))


def test_mape_guards_zero_targets_with_epsilon():
    eps = 2.220446049250313e-16   # float64 machine epsilon
    assert M.mape([0.0], [1.0]) == 1.0 / eps
    assert M.mape([0.0, 2.0], [0.0, 3.0]) == 0.25


def test_sklearn_names_are_aliases():
    assert M.mean_squared_error is M.mse and M.f1_score is M.f1
    assert M.roc_auc_score is M.roc_auc and M.r2_score is M.r2


# ---------------------------------------------------------------------- against scikit-learn


@pytest.mark.parametrize("average", AVERAGES)
@pytest.mark.parametrize("zero_division", ZERO_DIVISIONS, ids=str)
@given(pair=label_pairs())
def test_precision_recall_f1_match_sklearn(average, zero_division, pair):
    skm = pytest.importorskip("sklearn.metrics")
    t, p = pair
    if average == "binary":
        t, p = t % 2, p % 2
    for name, fn in PRF:
        ours, ours_warned = quiet(fn, t, p, average=average, zero_division=zero_division)
        theirs, they_warned = quiet(getattr(skm, SKLEARN_NAME[name]), t, p, average=average,
                                    zero_division=zero_division)
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, err_msg=name)
        assert ours_warned == they_warned, (name, t, p)


@pytest.mark.parametrize("average", ("micro", "macro", "weighted", None))
@given(pair=label_pairs(max_classes=4))
def test_precision_recall_f1_with_labels_match_sklearn(average, pair):
    skm = pytest.importorskip("sklearn.metrics")
    t, p = pair
    labels = [3, 0, 1, 5]  # unsorted, with a label never drawn and one (2) left out
    for name, fn in PRF:
        ours, _ = quiet(fn, t, p, labels=labels, average=average)
        theirs, _ = quiet(getattr(skm, SKLEARN_NAME[name]), t, p, labels=labels,
                          average=average)
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, err_msg=name)


@given(pair=label_pairs())
def test_accuracy_and_confusion_matrix_match_sklearn(pair):
    skm = pytest.importorskip("sklearn.metrics")
    t, p = pair
    assert M.accuracy(t, p) == skm.accuracy_score(t, p)
    assert M.accuracy(t, p, normalize=False) == skm.accuracy_score(t, p, normalize=False)
    for normalize in (None, "true", "pred", "all"):
        theirs, _ = quiet(skm.confusion_matrix, t, p, normalize=normalize)
        np.testing.assert_allclose(M.confusion_matrix(t, p, normalize=normalize), theirs)
    labels = [4, 0, 2]
    if np.isin(t, labels).any():  # sklearn refuses labels that miss y_true entirely
        np.testing.assert_array_equal(M.confusion_matrix(t, p, labels=labels),
                                      skm.confusion_matrix(t, p, labels=labels))
    tb, pb = t % 2, p % 2
    np.testing.assert_array_equal(M.binary_confusion_matrix(tb, pb),
                                  skm.confusion_matrix(tb, pb, labels=[0, 1]))


@given(data=st.data(), n_classes=st.integers(3, 6), n=st.integers(1, 20))
def test_top_k_accuracy_matches_sklearn(data, n_classes, n):
    skm = pytest.importorskip("sklearn.metrics")
    y = np.array(data.draw(st.lists(st.integers(0, n_classes - 1), min_size=n, max_size=n)))
    # scores from a small set, so that ties are common
    flat = data.draw(st.lists(st.sampled_from([-1.0, 0.0, 0.25, 0.5, 2.0]),
                              min_size=n * n_classes, max_size=n * n_classes))
    scores = np.array(flat).reshape(n, n_classes)
    for k in range(1, n_classes + 1):
        ours, _ = quiet(M.top_k_accuracy, y, scores, k)
        theirs, _ = quiet(skm.top_k_accuracy_score, y, scores, k=k,
                          labels=np.arange(n_classes))
        assert ours == theirs, (k, y, scores)


@given(data=st.data(), n=st.integers(2, 30))
def test_roc_auc_matches_sklearn(data, n):
    skm = pytest.importorskip("sklearn.metrics")
    y = np.array(data.draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)))
    score = st.one_of(st.sampled_from([0.0, 0.5, 1.0]), st.floats(-10, 10, width=64))
    s = np.array(data.draw(st.lists(score, min_size=n, max_size=n)))
    ours, ours_warned = quiet(M.roc_auc, y, s)
    theirs, they_warned = quiet(skm.roc_auc_score, y, s)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15)
    assert ours_warned == they_warned


@pytest.mark.parametrize("name", REGRESSION)
@given(pair=regression_pairs(max_outputs=3))
def test_regression_matches_sklearn(name, pair):
    skm = pytest.importorskip("sklearn.metrics")
    t, p = pair
    ours_fn, theirs_fn = getattr(M, name), getattr(skm, SKLEARN_NAME[name])
    for multioutput in ("uniform_average", "raw_values"):
        ours, _ = quiet(ours_fn, t, p, multioutput=multioutput)
        theirs, _ = quiet(theirs_fn, t, p, multioutput=multioutput)
        np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)
    if name in ("r2", "explained_variance") and len(t) > 1:
        with np.errstate(all="ignore"):
            ours, _ = quiet(ours_fn, t, p, force_finite=False)
            theirs, _ = quiet(theirs_fn, t, p, force_finite=False)
        np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)
    if t.ndim == 1:
        assert M.max_error(t, p) == skm.max_error(t, p)


# --------------------------------------------------------------------------- errors


def _raises(fn, match: str):
    with pytest.raises(M.MetricError, match=match) as info:
        fn()
    err = info.value
    assert isinstance(err, PyasgError) and isinstance(err, ValueError)
    # the error names the user's line: this file, not pyasg's
    assert err.source is not None and os.path.basename(__file__) in err.source
    return err


BAD_INPUT = {
    "length mismatch": (lambda: M.accuracy([0, 1], [0, 1, 1]), r"shape \(2,\).*\(3,\)"),
    "empty": (lambda: M.precision([], [], average="micro"), "empty"),
    "scores to accuracy": (lambda: M.accuracy([0, 1], np.eye(2)), "argmax"),
    "probabilities to accuracy": (lambda: M.accuracy([0, 1], [0.2, 0.9]), "not a class label"),
    "mixed label kinds": (lambda: M.accuracy(["a"], [1]), "mix numeric and string"),
    "bad average": (lambda: M.f1([0, 1], [0, 1], average="samples"), "average must be"),
    "binary on 3 classes": (lambda: M.recall([0, 1, 2], [0, 1, 1]), "average='binary'"),
    "absent pos_label": (lambda: M.precision([2, 3], [3, 3]), "pos_label=1"),
    "bad zero_division": (lambda: M.f1([0, 1], [0, 1], zero_division=0.5), "zero_division"),
    "duplicate labels": (lambda: M.confusion_matrix([0], [0], labels=[0, 0]), "unique"),
    "bad normalize": (lambda: M.confusion_matrix([0], [0], normalize="rows"), "normalize"),
    "k > classes": (lambda: M.top_k_accuracy([0], [[0.1, 0.9]], k=3), "k=3.*2 classes"),
    "k < 1": (lambda: M.top_k_accuracy([0], [[0.1, 0.9]], k=0), "positive int"),
    "label out of range": (lambda: M.top_k_accuracy([2], [[0.1, 0.9]], k=1), r"\[0, 2\)"),
    "1-D scores": (lambda: M.top_k_accuracy([0], [0.1], k=1), "n_samples, n_classes"),
    "nan scores": (lambda: M.top_k_accuracy([0], [[np.nan, 1.0]], k=1), "nan"),
    "multiclass roc": (lambda: M.roc_auc([0, 1, 2], [0.1, 0.2, 0.3]), "3 classes"),
    "roc shape": (lambda: M.roc_auc([0, 1], [0.1, 0.2, 0.3]), r"\(3,\)"),
    "regression shapes": (lambda: M.mse([1.0, 2.0], [1.0]), "shape"),
    "regression empty": (lambda: M.mae([], []), "empty"),
    "regression nan": (lambda: M.r2([1.0, np.nan], [1.0, 2.0]), "nan"),
    "regression strings": (lambda: M.mse(["a"], ["b"]), "numeric"),
    "ragged": (lambda: M.mse([[1.0], [1.0, 2.0]], [1.0, 2.0]), "not an array"),
    "bad multioutput": (lambda: M.r2([1.0, 2.0], [1.0, 2.0], multioutput="variance"),
                        "multioutput"),
    "max_error multioutput": (lambda: M.max_error([[1, 2]], [[1, 2]]), "one output"),
    "rms wrong shape": (lambda: M.RunningMeanStd((3,)).update(np.ones((2, 4))), r"\(2, 4\)"),
    "rms merge shapes": (lambda: M.RunningMeanStd((2,)).merge(M.RunningMeanStd()), "shape"),
    "ema decay": (lambda: M.EMA(1.0), "decay"),
    "bad mode": (lambda: M.EarlyStopping(mode="lowest"), "mode"),
    "negative patience": (lambda: M.EarlyStopping(patience=-1), "patience"),
    "negative min_delta": (lambda: M.EarlyStopping(min_delta=-0.1), "min_delta"),
    "logger vector": (lambda: M.MetricLogger().log(0, loss=np.ones(3)), "'loss'"),
    "logger step": (lambda: M.MetricLogger().log(1.5, loss=1.0), "step must be an int"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_input_raises_metric_error(case):
    fn, match = BAD_INPUT[case]
    _raises(fn, match)


# ---------------------------------------------------------------------- running statistics

batch = st.one_of(
    st.floats(-1e3, 1e3, width=64),
    st.lists(st.floats(-1e3, 1e3, width=64), max_size=8),
)


def _feed(rms: M.RunningMeanStd, batches) -> list[float]:
    seen = []
    for b in batches:
        rms.update(b)
        seen.extend(np.atleast_1d(b).tolist())
    return seen


def _close(actual, expected, atol):
    np.testing.assert_allclose(actual, expected, rtol=1e-9, atol=atol)


@given(batches=st.lists(batch, max_size=8))
def test_running_mean_std_equals_numpy_over_all_samples(batches):
    rms = M.RunningMeanStd()
    seen = np.array(_feed(rms, batches))
    assert rms.count == seen.size
    if seen.size == 0:
        assert math.isnan(rms.mean) and math.isnan(rms.var)
        return
    m = max(1.0, float(np.max(np.abs(seen))))  # errors scale with the magnitude
    _close(rms.mean, np.mean(seen), 1e-10 * m)
    _close(rms.var, np.var(seen), 1e-10 * m * m)
    _close(rms.std, np.std(seen), 1e-6 * m)   # sqrt magnifies rounding near 0
    if seen.size > 1:
        _close(rms.sample_var, np.var(seen, ddof=1), 1e-10 * m * m)
        _close(rms.sample_std, np.std(seen, ddof=1), 1e-6 * m)
    else:
        assert math.isnan(rms.sample_var)


@given(left=st.lists(batch, max_size=5), right=st.lists(batch, max_size=5))
def test_merge_equals_one_accumulator_over_the_concatenation(left, right):
    a, b, whole = M.RunningMeanStd(), M.RunningMeanStd(), M.RunningMeanStd()
    seen = _feed(a, left) + _feed(b, right)
    _feed(whole, left + right)
    assert a.merge(b) is a
    assert a.count == whole.count == len(seen)
    if seen:
        m = max(1.0, max(abs(x) for x in seen))
        _close(a.mean, np.mean(seen), 1e-10 * m)
        _close(a.var, whole.var, 1e-10 * m * m)
        _close(a.var, np.var(seen), 1e-10 * m * m)


@given(seed=st.integers(0, 2**32 - 1), sizes=st.lists(st.integers(0, 6), min_size=1, max_size=5))
def test_running_mean_std_per_feature(seed, sizes):
    rng = np.random.default_rng(seed)
    batches = [rng.normal(3.0, 2.0, size=(n, 3)) for n in sizes]
    rms = M.RunningMeanStd((3,))
    for b in batches:
        rms.update(b)
    rms.update(np.array([1.0, 2.0, 3.0]))  # one sample of shape (3,)
    seen = np.concatenate(batches + [np.array([[1.0, 2.0, 3.0]])])
    np.testing.assert_allclose(rms.mean, seen.mean(axis=0), rtol=1e-10)
    np.testing.assert_allclose(rms.var, seen.var(axis=0), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(rms.std, seen.std(axis=0), rtol=1e-9, atol=1e-12)


@given(values=st.lists(st.floats(-1e3, 1e3, width=64), min_size=1, max_size=20),
       decay=st.floats(0.0, 0.99))
def test_ema_equals_its_closed_form(values, decay):
    corrected, raw = M.EMA(decay), M.EMA(decay, bias_correction=False)
    assert math.isnan(corrected.value)
    for t in range(1, len(values) + 1):
        corrected.update(values[t - 1])
        raw.update(values[t - 1])
        # v_t = (1 - d) Σ_i d^(t-i) x_i ; corrected v_t / (1 - d^t) = Σ w_i x_i / Σ w_i
        weights = [decay ** (t - i) for i in range(1, t + 1)]
        closed = (1 - decay) * sum(w * x for w, x in zip(weights, values))
        mean = sum(w * x for w, x in zip(weights, values)) / sum(weights)
        assert raw.value == pytest.approx(closed, rel=1e-9, abs=1e-9)
        assert corrected.value == pytest.approx(mean, rel=1e-9, abs=1e-9)


def test_ema_by_hand():
    ema = M.EMA(0.9, bias_correction=False)
    ema.update(10.0)           # 0.9*0 + 0.1*10 = 1
    assert ema.update(0.0) == pytest.approx(0.9)  # 0.9*1 + 0.1*0
    assert M.EMA(0.9).update(10.0) == pytest.approx(10.0)   # 1 / (1 - 0.9)
    arr = M.EMA(0.5)
    np.testing.assert_allclose(arr.update(np.array([2.0, 4.0])), [2.0, 4.0])


# --------------------------------------------------------------------------- logger


def test_metric_logger_keeps_epoch_means():
    logger = M.MetricLogger()
    logger.log(0, loss=4.0, acc=0.25)
    logger.log(1, loss=2.0, acc=np.float32(0.75))
    assert logger.end_epoch() == {"loss": 3.0, "acc": 0.5}
    logger.log(2, loss=np.array(1.0))
    logger.log(3, loss=0.0, lr=0.1)
    assert logger.end_epoch() == {"loss": 0.5, "lr": 0.1}
    assert logger.end_epoch() == {}          # an epoch with no logs
    assert logger.epoch == 3
    # history[name][e] is epoch e; nan where the name was not logged
    nan = math.nan
    expected = {"loss": [3.0, 0.5, nan], "acc": [0.5, nan, nan], "lr": [nan, 0.1, nan]}
    assert logger.history.keys() == expected.keys()
    for name, column in expected.items():
        np.testing.assert_array_equal(logger.history[name], column)


def test_metric_logger_publishes_step_done():
    seen: list[StepDone] = []
    unsubscribe = subscribe(seen.append, StepDone)
    try:
        logger = M.MetricLogger(publish=True)
        logger.log(7, loss=0.5, acc=0.9)
        logger.log(8, acc=1.0)
        M.MetricLogger().log(9, loss=0.1)    # publish=False: no event
    finally:
        unsubscribe()
    assert [(e.step, e.metrics) for e in seen] == [(7, {"acc": 0.9}), (8, {"acc": 1.0})]
    assert seen[0].loss == 0.5 and math.isnan(seen[1].loss)


# --------------------------------------------------------------------------- early stopping


def test_early_stopping_min_mode_patience():
    es = M.EarlyStopping("min", patience=2)
    # 5 improves, 4 improves, 4 waits (1), 4 waits (2 = patience): stop
    assert [es.step(v) for v in [5.0, 4.0, 4.0, 4.0]] == [False, False, False, True]
    assert (es.best, es.best_step, es.stopped, es.stopped_step) == (4.0, 1, True, 3)
    assert es.step(0.0) is True and es.best == 4.0   # once stopped, nothing changes


def test_early_stopping_max_mode_keeps_best_step():
    es = M.EarlyStopping("max", patience=2)
    steps = [10, 20, 30, 40, 50]
    out = [es.step(v, step=s) for v, s in zip([0.1, 0.3, 0.2, 0.25, 0.31], steps)]
    assert out == [False, False, False, True, True]
    assert es.best == 0.3 and es.best_step == 20 and es.stopped_step == 40


def test_early_stopping_min_delta_is_strict():
    es = M.EarlyStopping("min", patience=1, min_delta=0.5)
    assert es.step(1.0) is False
    assert es.step(0.5) is True                # 0.5 < 1.0 - 0.5 is false: no improvement
    es = M.EarlyStopping("min", patience=1, min_delta=0.5)
    es.step(1.0)
    assert es.step(0.4) is False and es.best == 0.4 and es.best_step == 1
    es = M.EarlyStopping("max", patience=1, min_delta=0.25)
    assert [es.step(v) for v in [1.0, 1.3, 1.5]] == [False, False, True]
    assert es.best == 1.3


def test_early_stopping_patience_zero_and_non_finite():
    es = M.EarlyStopping("min", patience=0)
    assert [es.step(v) for v in [2.0, 1.0, 1.0]] == [False, False, True]
    es = M.EarlyStopping("min", patience=5)
    assert es.step(1.0) is False and es.step(math.nan) is True
    assert es.best == 1.0
    es = M.EarlyStopping("min", patience=1, check_finite=False)
    assert es.step(math.nan) is True and es.best == math.inf   # nan never improves


@given(values=st.lists(st.floats(-100, 100, width=64), min_size=1, max_size=30),
       mode=st.sampled_from(["min", "max"]))
def test_early_stopping_without_patience_limit_tracks_the_extreme(values, mode):
    es = M.EarlyStopping(mode, patience=len(values) + 1)
    assert not any(es.step(v) for v in values)
    best = min(values) if mode == "min" else max(values)
    assert es.best == best and es.best_step == values.index(best)


@given(values=st.lists(st.integers(0, 5).map(float), min_size=1, max_size=30),
       patience=st.integers(1, 4))
def test_early_stopping_stops_when_a_window_fails_to_beat_the_past(values, patience):
    # with min_delta 0, stop at the first i whose last `patience` values never went
    # below the minimum of everything before them
    expected = next((i for i in range(patience, len(values))
                     if min(values[i - patience + 1:i + 1]) >= min(values[:i - patience + 1])),
                    None)
    es = M.EarlyStopping("min", patience=patience)
    flags = [es.step(v) for v in values]
    first = flags.index(True) if True in flags else None
    assert first == expected
