"""Running statistics: Welford mean/std (with exact merging) and an exponential moving
average."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from pyasg.metrics._base import _NUMERIC, MetricError, _array, _fail, _flag, quote
from pyasg.nn import checks

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
        self.shape = checks.ints(shape, "RunningMeanStd", "shape", error=MetricError)
        checks.allocate(lambda: None, self.shape, "float64", "RunningMeanStd", MetricError)
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
            raise _fail(f"EMA: decay must be a number in [0, 1); got {quote(decay)}")
        self.decay = float(decay)
        self.bias_correction = _flag("EMA", "bias_correction", bias_correction)
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
