"""Transforms: callables from array to array, to apply per sample or per batch.

Each transform is an object `t` with `t(x) -> array` (torchvision's protocol), so
it composes (`Compose`), and goes either into a dataset, applied to each sample
as it is read (`MapDataset(ds, t, field=0)`, torchvision's `transform=`), or
into the training loop, applied to each collated batch (`x = t(x)`).

Both give the same numbers, because every transform works on the trailing
axes: per-channel statistics are laid along a *negative* axis (`Normalize(…,
axis=-3)` is the C of a (C, H, W) sample and of an (N, C, H, W) batch), and
fitted statistics cover the trailing feature axes. Two exceptions: `Flatten`
counts `start_dim` from the front (use 0 on a sample, 1 on a batch, as
`torch.flatten` and `nn.Flatten`), and `RandomNoise` draws its numbers in the
order it is called, so the noise depends on how the calls are grouped.

Dtypes: a transform that computes in floating point (`Normalize`,
`MinMaxScale`, `StandardScale`, `Log`, `RandomNoise`) keeps a floating input's
dtype, converts integer and bool input to float32 first, and casts its own
statistics (kept in float64) to that dtype before the arithmetic, as torchvision
casts `mean` and `std` to the tensor's dtype. Fitted statistics are computed in
float64. `Clip` keeps `numpy.clip`'s dtype, `OneHot` takes a `dtype`.

Fitting: `Normalize.fit(data, axis)`, `MinMaxScale.fit(data)` and
`StandardScale.fit(data)` are class methods that return a new transform; the
constructors take the statistics themselves. Transforms are not changed by use
(except `RandomNoise`'s generator), so one can serve many datasets and threads.

>>> import numpy as np
>>> images = np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2)      # (N, C, H, W)
>>> t = Compose([Normalize.fit(images, axis=1), Flatten()])
>>> t(images[0]).shape, t.transforms[0].mean.tolist()
((12,), [7.5, 11.5, 15.5])
"""

from __future__ import annotations

import math
import numbers
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pyasg.data.dataset import DataError, as_list, check_int, check_seed, fail
from pyasg.nn.checks import allocate, quote

__all__ = [
    "Clip", "Compose", "Flatten", "Log", "MinMaxScale", "Normalize", "OneHot", "RandomNoise",
    "StandardScale", "Transform",
]


class Transform:
    """Base of the transforms: `t(x)` returns a new array and leaves `x` alone."""

    def __call__(self, x: Any) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} must implement __call__")

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={_show(v)}" for k, v in vars(self).items()
                         if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


def _show(value: Any) -> str:
    return repr(value.tolist()) if isinstance(value, np.ndarray) else repr(value)


def _float_input(x: Any, name: str) -> np.ndarray:
    """`x` as an array of a floating dtype: floats kept, integers and bools to float32."""
    array = np.asarray(x)
    if array.dtype.kind == "f":
        return array
    if array.dtype.kind in "biu":
        return array.astype(np.float32)
    fail(f"{name}: expects real numbers, got an array of dtype {array.dtype}")


def _real_data(data: Any, name: str) -> np.ndarray:
    """Data to fit on: a non-empty real array with a first axis of samples."""
    array = np.asarray(data)
    if array.dtype.kind not in "biuf":
        fail(f"{name}: expects real numbers, got an array of dtype {array.dtype}")
    if array.ndim == 0 or array.size == 0:
        fail(f"{name}: needs a non-empty array of samples, got shape {array.shape}")
    return array


def _stat(values: Any, name: str) -> np.ndarray:
    """A statistic as a finite float64 array."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        fail(f"{name} must be real numbers, got {quote(values)}")
    if not np.all(np.isfinite(array)):
        fail(f"{name} must be finite, got {quote(array.tolist())}")
    return array


def _real(value: Any, name: str) -> float:
    if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)) \
            or not math.isfinite(value):
        fail(f"{name} must be a finite real number, got {quote(value)}")
    return float(value)


def _constant(mean: np.ndarray, std: np.ndarray, n: int) -> np.ndarray:
    """Where a statistic comes from constant values, up to rounding (scikit-learn's test).

    A constant column whose mean is not exactly representable has a tiny non-zero
    std made of rounding error; dividing by it would turn the constant into ±1.
    """
    eps = np.finfo(np.float64).eps
    var = std**2
    return var <= n * eps * var + (n * mean * eps) ** 2


def _check_trailing(x: np.ndarray, shape: tuple[int, ...], name: str) -> None:
    """Statistics of shape `shape` apply to inputs that end with that shape."""
    if shape and x.shape[x.ndim - len(shape):] != shape:
        fail(f"{name}: statistics of shape {shape} do not fit an input of shape {x.shape}; "
             f"its last axes must be {shape}")


class Compose(Transform):
    """Apply `transforms` in order (`torchvision.transforms.Compose`).

    >>> Compose([Clip(min=0.0), Log(offset=1.0)])(np.array([-1.0, 0.0]))
    array([0., 0.])
    """

    def __init__(self, transforms: Sequence[Callable[[Any], Any]]) -> None:
        self.transforms = as_list(transforms, "Compose", "transforms", "a list of callables")
        for k, t in enumerate(self.transforms):
            if not callable(t):
                fail(f"Compose: transform {k} is not callable: {quote(t)}")

    def __call__(self, x: Any) -> Any:
        for t in self.transforms:
            x = t(x)
        return x


class Normalize(Transform):
    """(x - mean) / std per channel (`torchvision.transforms.Normalize`).

    `mean` and `std` are numbers or one value per channel, laid along `axis` of
    the input. `axis` counts from the end, so one transform serves a sample and a
    batch: -3 (the default, torchvision's) for (C, H, W) images, -1 for features
    last. A single mean and std apply to every element, whatever the shape.
    `std` must be positive (torchvision rejects zeros only). There is no
    `inplace=`: the input is never changed.

    `Normalize.fit(data, axis)` computes each channel's mean and *population*
    standard deviation (ddof=0, numpy's default and what torchvision recipes
    compute their constants with) over every other axis of `data`, in float64;
    a constant channel is an error, as its std would be 0 (constant up to
    rounding, by scikit-learn's test: var <= n·eps·var + (n·eps·mean)²).

    >>> t = Normalize(mean=[1.0, 10.0], std=[2.0, 5.0], axis=-1)
    >>> t(np.array([[3.0, 0.0], [1.0, 20.0]])).tolist()
    [[1.0, -2.0], [0.0, 2.0]]
    >>> f = Normalize.fit(np.array([[1.0, 0.0], [3.0, 4.0]]), axis=-1)
    >>> f.mean.tolist(), f.std.tolist()
    ([2.0, 2.0], [1.0, 2.0])
    """

    def __init__(self, mean: Any, std: Any, axis: int = -3) -> None:
        self.mean = np.atleast_1d(_stat(mean, "Normalize: mean"))
        self.std = np.atleast_1d(_stat(std, "Normalize: std"))
        for name, v in (("mean", self.mean), ("std", self.std)):
            if v.ndim != 1:
                fail(f"Normalize: {name} must be a number or one value per channel, got "
                     f"shape {v.shape}")
        if len(self.mean) != len(self.std) and 1 not in (len(self.mean), len(self.std)):
            fail(f"Normalize: mean has {len(self.mean)} channels but std has "
                 f"{len(self.std)}")
        if np.any(self.std <= 0):
            fail(f"Normalize: std must be positive (it divides), got {quote(self.std.tolist())}")
        self.axis = check_int(axis, "Normalize: axis")
        if self.axis >= 0:
            fail(f"Normalize: axis must count from the end (negative), so that a sample and "
                 f"a batch agree: -3 for (C, H, W), -1 for features last; got {axis}")

    def __call__(self, x: Any) -> np.ndarray:
        x = _float_input(x, "Normalize")
        channels = max(len(self.mean), len(self.std))
        if channels == 1:
            shape: tuple[int, ...] = ()
        else:
            if x.ndim < -self.axis or x.shape[self.axis] != channels:
                fail(f"Normalize: {channels} channels on axis {self.axis} do not fit an "
                     f"input of shape {x.shape}")
            shape = (-1,) + (1,) * (-self.axis - 1)
        mean = self.mean.astype(x.dtype).reshape(shape)
        std = self.std.astype(x.dtype).reshape(shape)
        return (x - mean) / std

    @classmethod
    def fit(cls, data: Any, axis: int = -3) -> Normalize:
        """The `Normalize` with each channel's mean and population std over `data`.

        `axis` is the channel axis of `data` (1 or -3 for (N, C, H, W) images, -1 for
        (N, features)); the transform keeps it counted from the end.

        >>> Normalize.fit(np.array([[0, 2], [2, 6]]), axis=0).std.tolist()
        [1.0, 2.0]
        """
        d = _real_data(data, "Normalize.fit")
        ax = check_int(axis, "Normalize.fit: axis")
        if not -d.ndim <= ax < d.ndim:
            fail(f"Normalize.fit: axis {axis} is out of range for data of shape {d.shape}")
        ax %= d.ndim
        others = tuple(i for i in range(d.ndim) if i != ax)
        mean = d.mean(axis=others, dtype=np.float64)
        std = d.std(axis=others, dtype=np.float64)
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(std))):
            fail("Normalize.fit: the data contain NaN or infinity")
        constant = _constant(mean, std, d.size // d.shape[ax])
        if np.any(constant):
            fail(f"Normalize.fit: channels {np.flatnonzero(constant).tolist()} are constant "
                 "(std 0), so they cannot be normalised")
        return cls(mean, std, axis=ax - d.ndim)


class MinMaxScale(Transform):
    """Rescale each feature from [data_min, data_max] to `feature_range`
    (scikit-learn's `MinMaxScaler`).

    Computes `(x - data_min) / (data_max - data_min) * (hi - lo) + lo`; a feature
    with `data_max == data_min` divides by 1 instead (sklearn's rule), so it maps
    to `lo`. Values outside the fitted range go outside `feature_range` (no
    clipping, sklearn's default). `MinMaxScale.fit(data)` takes the minimum and
    maximum over the first axis (samples) of `data`, so the statistics have the
    shape of one sample and the transform applies to anything ending in it.

    >>> t = MinMaxScale.fit(np.array([[0.0, 10.0], [4.0, 30.0]]))
    >>> t(np.array([1.0, 20.0])).tolist(), MinMaxScale(0.0, 2.0, (-1, 1))(1.0).tolist()
    ([0.25, 0.5], 0.0)
    """

    def __init__(self, data_min: Any, data_max: Any,
                 feature_range: tuple[float, float] = (0.0, 1.0)) -> None:
        self.data_min = _stat(data_min, "MinMaxScale: data_min")
        self.data_max = _stat(data_max, "MinMaxScale: data_max")
        if self.data_min.shape != self.data_max.shape:
            fail(f"MinMaxScale: data_min has shape {self.data_min.shape} but data_max has "
                 f"{self.data_max.shape}")
        if np.any(self.data_min > self.data_max):
            fail("MinMaxScale: data_min is above data_max at "
                 f"{np.argwhere(self.data_min > self.data_max).tolist()}")
        if not (isinstance(feature_range, (tuple, list)) and len(feature_range) == 2):
            fail(f"MinMaxScale: feature_range must be a pair (min, max), got "
                 f"{quote(feature_range)}")
        lo = _real(feature_range[0], "MinMaxScale: feature_range[0]")
        hi = _real(feature_range[1], "MinMaxScale: feature_range[1]")
        if not lo < hi:
            fail(f"MinMaxScale: minimum of desired feature range must be smaller than "
                 f"maximum, got {quote(feature_range)}")
        self.feature_range = (lo, hi)
        span = self.data_max - self.data_min
        self._range = np.where(span == 0, 1.0, span)

    def __call__(self, x: Any) -> np.ndarray:
        x = _float_input(x, "MinMaxScale")
        _check_trailing(x, self.data_min.shape, "MinMaxScale")
        lo, hi = self.feature_range
        t = x.dtype.type
        return ((x - self.data_min.astype(x.dtype)) / self._range.astype(x.dtype)
                * t(hi - lo) + t(lo))

    @classmethod
    def fit(cls, data: Any, feature_range: tuple[float, float] = (0.0, 1.0)) -> MinMaxScale:
        """The `MinMaxScale` for the per-feature minimum and maximum of `data` over axis 0."""
        d = _real_data(data, "MinMaxScale.fit")
        lo, hi = d.min(axis=0).astype(np.float64), d.max(axis=0).astype(np.float64)
        if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
            fail("MinMaxScale.fit: the data contain NaN or infinity")
        return cls(lo, hi, feature_range)


class StandardScale(Transform):
    """(x - mean) / std per feature (scikit-learn's `StandardScaler`).

    `StandardScale.fit(data)` takes the mean and the population std (ddof=0, as
    sklearn) of each feature over the first axis (samples) of `data`, in float64;
    a constant feature gets std 1 (sklearn's rule, and its test for "constant up
    to rounding"), so it maps to 0. Given by hand,
    `std` must be positive. Statistics have the shape of one sample; the transform
    applies to anything ending in that shape (a sample or a batch).

    >>> t = StandardScale.fit(np.array([[1.0, 5.0], [3.0, 5.0]]))
    >>> t.mean.tolist(), t.std.tolist(), t(np.array([3.0, 7.0])).tolist()
    ([2.0, 5.0], [1.0, 1.0], [1.0, 2.0])
    """

    def __init__(self, mean: Any, std: Any) -> None:
        self.mean = _stat(mean, "StandardScale: mean")
        self.std = _stat(std, "StandardScale: std")
        if self.mean.shape != self.std.shape:
            fail(f"StandardScale: mean has shape {self.mean.shape} but std has "
                 f"{self.std.shape}")
        if np.any(self.std <= 0):
            fail(f"StandardScale: std must be positive (it divides), got "
                 f"{quote(self.std.tolist())}")

    def __call__(self, x: Any) -> np.ndarray:
        x = _float_input(x, "StandardScale")
        _check_trailing(x, self.mean.shape, "StandardScale")
        return (x - self.mean.astype(x.dtype)) / self.std.astype(x.dtype)

    @classmethod
    def fit(cls, data: Any) -> StandardScale:
        """The `StandardScale` for the per-feature mean and population std of `data`."""
        d = _real_data(data, "StandardScale.fit")
        mean = d.mean(axis=0, dtype=np.float64)
        std = d.std(axis=0, dtype=np.float64)
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(std))):
            fail("StandardScale.fit: the data contain NaN or infinity")
        return cls(mean, np.where(_constant(mean, std, len(d)), 1.0, std))


class OneHot(Transform):
    """Integer labels to one-hot vectors: shape (*x.shape, num_classes).

    Like `torch.nn.functional.one_hot`, but `num_classes` is required (a sample
    alone cannot tell how many classes there are) and the result is float32 by
    default (`dtype=`), ready for a loss; torch gives int64. Labels must be
    integers in [0, num_classes).

    >>> OneHot(3)(np.array([2, 0])).tolist()
    [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    """

    def __init__(self, num_classes: int, dtype: Any = "float32") -> None:
        self.num_classes = check_int(num_classes, "OneHot: num_classes", minimum=1)
        try:
            self.dtype = np.dtype(dtype)
        except TypeError:
            fail(f"OneHot: dtype {quote(dtype)} is not a numpy dtype")

    def __call__(self, x: Any) -> np.ndarray:
        labels = np.asarray(x)
        if labels.dtype.kind not in "iu":
            fail(f"OneHot: labels must be integers, got an array of dtype {labels.dtype}")
        bad = (labels < 0) | (labels >= self.num_classes)
        if np.any(bad):
            fail(f"OneHot: label {labels[bad].flat[0]} is outside [0, {self.num_classes})")
        # each label becomes a row of num_classes: say so if no machine holds the result
        shape = labels.shape + (self.num_classes,)
        out = allocate(lambda: np.zeros(shape, self.dtype), shape, self.dtype, "OneHot",
                       DataError)
        np.put_along_axis(out, labels[..., None], 1, axis=-1)
        return out


class Clip(Transform):
    """Limit values to [min, max] (`torch.clamp`'s names; `numpy.clip`'s result and dtype).

    Either bound may be None, not both; `min` above `max` is an error (torch and
    numpy would quietly give `max` everywhere). NaN stays NaN.

    >>> Clip(min=0, max=1)(np.array([-0.5, 0.5, 2.0])).tolist()
    [0.0, 0.5, 1.0]
    """

    def __init__(self, min: float | None = None, max: float | None = None) -> None:
        if min is None and max is None:
            fail("Clip: at least one of min and max must not be None")
        lo = None if min is None else _real(min, "Clip: min")
        hi = None if max is None else _real(max, "Clip: max")
        if lo is not None and hi is not None and lo > hi:
            fail(f"Clip: min ({min}) is above max ({max})")
        # Keep the bounds as given (an int stays an int), since numpy.clip's dtype follows.
        self.min, self.max = min, max

    def __call__(self, x: Any) -> np.ndarray:
        return np.clip(np.asarray(x), self.min, self.max)


class Log(Transform):
    """Natural logarithm of `x + offset`.

    `offset=1` is computed as `numpy.log1p(x)`, exact for small x where
    log(1 + x) would round 1 + x first; any other offset as `numpy.log(x + offset)`.
    Values with `x + offset <= 0` are an error, not NaN or -inf; NaN stays NaN.

    >>> Log()(np.array([1.0, np.e])).tolist(), float(Log(offset=1)(np.float64(1e-20)))
    ([0.0, 1.0], 1e-20)
    """

    def __init__(self, offset: float = 0.0) -> None:
        self.offset = _real(offset, "Log: offset")

    def __call__(self, x: Any) -> np.ndarray:
        x = _float_input(x, "Log")
        offset = x.dtype.type(self.offset)
        if np.any(x <= -offset):
            fail(f"Log: log(x + {self.offset}) is undefined for x = "
                 f"{x[x <= -offset].flat[0]}; shift the data with offset=")
        if self.offset == 1.0:
            return np.log1p(x)
        return np.log(x + offset)


class Flatten(Transform):
    """Merge axes start_dim..end_dim into one (`torch.flatten`'s arguments and defaults).

    The default flattens a whole sample; on a batch use `start_dim=1`, as
    `torch.nn.Flatten`. A 0-d input becomes shape (1,), as in torch.

    >>> Flatten()(np.zeros((2, 3, 4))).shape, Flatten(start_dim=1)(np.zeros((2, 3, 4))).shape
    ((24,), (2, 12))
    """

    def __init__(self, start_dim: int = 0, end_dim: int = -1) -> None:
        self.start_dim = check_int(start_dim, "Flatten: start_dim")
        self.end_dim = check_int(end_dim, "Flatten: end_dim")

    def __call__(self, x: Any) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim == 0:
            return x.reshape(1)
        dims = []
        for name, d in (("start_dim", self.start_dim), ("end_dim", self.end_dim)):
            if not -x.ndim <= d < x.ndim:
                fail(f"Flatten: {name}={d} is out of range for an input of shape {x.shape}")
            dims.append(d % x.ndim)
        start, end = dims
        if start > end:
            fail(f"Flatten: start_dim ({self.start_dim}) comes after end_dim "
                 f"({self.end_dim}) for an input of shape {x.shape}")
        # math.prod, not -1: reshape cannot infer -1 when another axis has size 0.
        merged = math.prod(x.shape[start:end + 1])
        return x.reshape(x.shape[:start] + (merged,) + x.shape[end + 1:])


class RandomNoise(Transform):
    """Add Gaussian noise: `x + N(mean, std**2)` drawn afresh on each call.

    torchvision.transforms.v2's `GaussianNoise(mean, sigma)` with `std` for
    sigma (torch.normal's name) and no clipping (add `Clip(0, 1)` for images).
    The noise comes from one `numpy.random.default_rng(seed)` that advances with
    each call, so the k-th call gives the same noise in every run; `seed=None`
    draws a seed from fresh entropy and keeps it in `seed`. Noise is drawn in
    float64 (`Generator.normal`) and cast to the input's dtype before adding.
    Calls are serialised by a lock; with a prefetching DataLoader, a loop left
    early may have used noise for batches it never saw.

    >>> a, b = RandomNoise(std=0.5, seed=1), RandomNoise(std=0.5, seed=1)
    >>> x = np.zeros(3, np.float32)
    >>> first = a(x)
    >>> bool(np.array_equal(first, b(x))), bool(np.array_equal(first, a(x))), first.dtype.name
    (True, False, 'float32')
    """

    def __init__(self, mean: float = 0.0, std: float = 0.1, seed: int | None = None) -> None:
        self.mean = _real(mean, "RandomNoise: mean")
        self.std = _real(std, "RandomNoise: std")
        if self.std < 0:
            fail(f"RandomNoise: std must not be negative, got {std}")
        seed = check_seed(seed, "RandomNoise")
        self.seed = int(np.random.SeedSequence().entropy) if seed is None else seed
        self._rng = np.random.default_rng(self.seed)
        self._lock = threading.Lock()

    def __call__(self, x: Any) -> np.ndarray:
        x = _float_input(x, "RandomNoise")
        with self._lock:
            noise = self._rng.normal(self.mean, self.std, size=x.shape)
        return x + noise.astype(x.dtype)

