"""Map-style datasets (torch.utils.data's): rows by index, lazily transformed, combined, split.

A dataset is anything with `__len__` and `__getitem__(i)` for `0 <= i < len`
(PyTorch's map-style protocol); `Dataset` is an optional base that adds
`ds1 + ds2` (a `ConcatDataset`). A sample may be one array or any pytree of
arrays and numbers (tuple, list, dict, namedtuple), and `DataLoader` collates
a batch of them into the same structure of stacked numpy arrays.

Splits are seeded with a plain integer instead of PyTorch's `generator=`: the
same seed gives the same split on every run and every machine with this numpy.

>>> import numpy as np
>>> ds = ArrayDataset(np.arange(10.0).reshape(5, 2), np.array([0, 1, 0, 1, 1]))
>>> x, y = ds[1]
>>> x.tolist(), int(y), len(ds)
([2.0, 3.0], 1, 5)
>>> train, test = random_split(ds, [0.8, 0.2], seed=0)
>>> len(train), len(test), sorted(train.indices + test.indices) == list(range(5))
(4, 1, True)
"""

from __future__ import annotations

import bisect
import math
import numbers
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn

import numpy as np

from pyasg.errors import PyasgError, user_source
from pyasg.nn.checks import quote
from pyasg.trace.tree import flatten_with_paths, unflatten

__all__ = [
    "ArrayDataset", "ConcatDataset", "DataError", "DataIndexError", "Dataset", "MapDataset",
    "Subset", "TensorDataset", "random_split", "train_test_split",
]


class DataError(PyasgError, ValueError):
    """Bad input to the data package: arrays of different lengths, a fraction outside
    (0, 1), a negative weight, a batch size of 0, samples that cannot be stacked, …"""


class DataIndexError(DataError, IndexError):
    """An index outside a dataset. Also an `IndexError`, so `list(dataset)` stops at the end."""


def _source() -> str | None:
    # In the prefetch thread the innermost frame outside pyasg is threading.py, which
    # would only mislead: give no source there.
    if threading.current_thread().name.startswith("pyasg-prefetch"):
        return None
    return user_source()


def fail(message: str, cls: type[DataError] = DataError) -> NoReturn:
    """Raise `cls(message)` with the user's `file:line` (for the whole data package)."""
    raise cls(message, _source())


def is_int(value: object) -> bool:
    """Whether `value` is an integer (Python or numpy), and not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def check_int(value: object, name: str, minimum: int | None = None) -> int:
    """`value` as a Python int, or a `DataError` naming `name` (and `minimum` when below it)."""
    if not is_int(value):
        fail(f"{name} must be an integer, got {quote(value)}")
    value = int(value)  # type: ignore[call-overload]
    if minimum is not None and value < minimum:
        fail(f"{name} must be >= {minimum}, got {value}")
    return value


def check_seed(seed: object, name: str) -> int | None:
    """A seed is None (fresh entropy) or a non-negative integer, as numpy's SeedSequence wants."""
    if seed is None:
        return None
    return check_int(seed, f"{name}: seed", minimum=0)


def check_dataset(dataset: object, name: str) -> None:
    """Map-style datasets have `__len__` and `__getitem__`."""
    if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
        fail(f"{name}: a dataset needs __len__ and __getitem__ (map-style); "
             f"got {type(dataset).__name__}")
    if isinstance(dataset, Mapping):  # has both, but its keys need not be 0..len-1
        fail(f"{name}: a dict is not a dataset (rows are read by position 0..len-1); "
             f"wrap its arrays in ArrayDataset(**d)")


def normalize_index(index: object, length: int, name: str) -> int:
    """`index` in [-length, length) as a non-negative int; else `DataIndexError`."""
    if not is_int(index):
        fail(f"{name}: index must be an integer, got {quote(index)}",
             DataIndexError)
    i = int(index)  # type: ignore[call-overload]
    if not -length <= i < length:
        fail(f"{name}: index {i} is out of range for a dataset of {length} rows",
             DataIndexError)
    return i + length if i < 0 else i


class Dataset:
    """Base of map-style datasets: subclasses give `__getitem__(i)` and `__len__()`.

    Like `torch.utils.data.Dataset`, `a + b` concatenates. Nothing requires this base:
    any object with the two methods is a dataset here.

    >>> class Squares(Dataset):
    ...     def __len__(self): return 4
    ...     def __getitem__(self, i): return normalize_index(i, 4, "Squares") ** 2
    >>> [Squares()[i] for i in range(4)], len(Squares() + Squares())
    ([0, 1, 4, 9], 8)
    """

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must implement __len__")

    def __add__(self, other: Any) -> ConcatDataset:
        return ConcatDataset([self, other])


class ArrayDataset(Dataset):
    """Rows of arrays of equal length: `ds[i]` is `(a[i], b[i], …)`, or a dict for keywords.

    `ArrayDataset(x, y)` is `torch.utils.data.TensorDataset(x, y)` (also importable
    under that name): `ds[i] == (x[i], y[i])`, and one array gives a 1-tuple.
    Keywords give dict samples, `ArrayDataset(image=x, label=y)[i] == {"image": x[i],
    "label": y[i]}`, and any argument may itself be a pytree of arrays (a dict of
    features). Dicts and tuples (namedtuples too) are fields; anything else,
    a list included, is one array taken with `numpy.asarray` (no copy for
    arrays), so `ArrayDataset([0.5, 1.5], [0, 1])` has two rows. Every array must have
    the same number of rows (first axis) as the others; that is checked here.
    Rows are views into the arrays, as in PyTorch.

    >>> ds = ArrayDataset(features=np.zeros((3, 2)), label=np.array([4, 5, 6]))
    >>> sample = ds[-1]
    >>> sample["features"].shape, int(sample["label"]), len(ds)
    ((2,), 6, 3)
    >>> ArrayDataset(np.zeros((3, 2)), np.zeros(4))
    Traceback (most recent call last):
    ...
    pyasg.data.dataset.DataError: ArrayDataset: arrays differ in length: array 0 has 3 rows, ...
    """

    def __init__(self, *arrays: Any, **named: Any) -> None:
        if arrays and named:
            fail("ArrayDataset: give arrays either by position (tuple samples) or by "
                 "keyword (dict samples), not both")
        tree: Any = _as_arrays(dict(named) if named else tuple(arrays), "")
        pairs, self._treedef = flatten_with_paths(tree)
        if not pairs:
            fail("ArrayDataset: needs at least one array")
        leaves = []
        for path, leaf in pairs:
            label = f"array {path}" if not named else repr(path)
            if leaf.ndim == 0:
                fail(f"ArrayDataset: {label} is a scalar; every array needs a first axis "
                     "of rows")
            leaves.append((label, leaf))
        lengths = [(label, len(array)) for label, array in leaves]
        if len({n for _, n in lengths}) > 1:
            fail("ArrayDataset: arrays differ in length: "
                 + ", ".join(f"{label} has {n} rows" for label, n in lengths))
        self._leaves = [array for _, array in leaves]
        self._length = lengths[0][1]
        #: The arrays as given, converted with numpy.asarray (a tuple, or a dict).
        self.arrays = unflatten(self._treedef, self._leaves)

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index: int) -> Any:
        i = normalize_index(index, self._length, "ArrayDataset")
        return unflatten(self._treedef, [array[i] for array in self._leaves])

    def _batch(self, indices: Sequence[int]) -> Any | None:
        """The collated batch of rows `indices` by one fancy index per array, or None where
        that could differ from collating the rows one by one (non-numeric dtypes).

        For numeric arrays `a[[i, j]]` is byte for byte `np.stack([a[i], a[j]])`, so
        DataLoader takes this path for the default collate.
        """
        if not all(array.dtype.kind in "biufc" for array in self._leaves):
            return None
        idx = [normalize_index(i, self._length, "ArrayDataset") for i in indices]
        return unflatten(self._treedef, [array[idx] for array in self._leaves])

    def __repr__(self) -> str:
        return f"ArrayDataset({self._length} rows, {self._treedef!r})"


def _as_arrays(tree: Any, path: str) -> Any:
    """Dicts, tuples and None stay structure; every other value becomes a numpy array.

    Unlike a general pytree, a list here is data (`[0.5, 1.5]` is an array of two
    rows), since that is how numbers most often arrive.
    """
    if tree is None:
        return None
    if isinstance(tree, dict):
        return {k: _as_arrays(v, f"{path}.{k}" if path else str(k)) for k, v in tree.items()}
    if isinstance(tree, tuple):
        items = [_as_arrays(v, f"{path}.{k}" if path else str(k)) for k, v in enumerate(tree)]
        return type(tree)(*items) if hasattr(type(tree), "_fields") else tuple(items)
    try:
        return np.asarray(tree)
    except ValueError as err:  # ragged nested lists
        fail(f"ArrayDataset: {path!r} is not a rectangular array ({err})")


#: PyTorch's name for `ArrayDataset`.
TensorDataset = ArrayDataset


class MapDataset(Dataset):
    """`fn` applied lazily to each sample as it is read: `MapDataset(ds, fn)[i] == fn(ds[i])`.

    With `field=k`, `fn` transforms only `sample[k]` of a tuple, list, namedtuple or
    dict sample and the rest passes through, so `field=0` and `field=1` play the
    parts of torchvision's `transform` and `target_transform`. Nothing is cached:
    a random `fn` gives new values on each read.

    >>> ds = ArrayDataset(np.array([1.0, 2.0]), np.array([0, 1]))
    >>> doubled = MapDataset(ds, lambda x: 2 * x, field=0)
    >>> [(float(x), int(y)) for x, y in (doubled[0], doubled[1])]
    [(2.0, 0), (4.0, 1)]
    """

    def __init__(self, dataset: Any, fn: Callable[[Any], Any], field: Any = None) -> None:
        check_dataset(dataset, "MapDataset")
        if not callable(fn):
            fail(f"MapDataset: fn must be callable, got {type(fn).__name__}")
        self.dataset, self.fn, self.field = dataset, fn, field

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        sample = self.dataset[index]
        if self.field is None:
            return self.fn(sample)
        return _replace_field(sample, self.field, self.fn)

    def __repr__(self) -> str:
        field = "" if self.field is None else f", field={self.field!r}"
        return f"MapDataset({self.dataset!r}, {self.fn!r}{field})"


def _replace_field(sample: Any, field: Any, fn: Callable[[Any], Any]) -> Any:
    if isinstance(sample, dict):
        if field not in sample:
            fail(f"MapDataset: field {quote(field, with_type=False)} is not a key of the sample "
                 f"(keys: {list(sample)})")
        return {**sample, field: fn(sample[field])}
    if isinstance(sample, (tuple, list)):
        if not is_int(field) or not -len(sample) <= field < len(sample):
            fail(f"MapDataset: field {quote(field, with_type=False)} is not a position in a "
                 f"sample of {len(sample)} fields")
        items = list(sample)
        items[field] = fn(items[field])
        if isinstance(sample, tuple) and hasattr(type(sample), "_fields"):
            return type(sample)(*items)  # a namedtuple
        return tuple(items) if isinstance(sample, tuple) else items
    fail(f"MapDataset: field={quote(field)} needs tuple, list or dict samples; "
         f"got {type(sample).__name__}")


class ConcatDataset(Dataset):
    """Datasets one after the other (`torch.utils.data.ConcatDataset`).

    `cumulative_sizes[k]` is the number of rows in the first k+1 datasets.

    >>> ds = ConcatDataset([ArrayDataset(np.arange(2)), ArrayDataset(np.arange(10, 13))])
    >>> len(ds), ds.cumulative_sizes, [int(ds[i][0]) for i in range(len(ds))]
    (5, [2, 5], [0, 1, 10, 11, 12])
    """

    def __init__(self, datasets: Sequence[Any]) -> None:
        self.datasets = as_list(datasets, "ConcatDataset", "datasets", "a list of datasets")
        if not self.datasets:
            fail("ConcatDataset: needs at least one dataset, got none")
        for k, dataset in enumerate(self.datasets):
            check_dataset(dataset, f"ConcatDataset: dataset {k}")
        self.cumulative_sizes: list[int] = []
        total = 0
        for dataset in self.datasets:
            total += len(dataset)
            self.cumulative_sizes.append(total)

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, index: int) -> Any:
        i = normalize_index(index, len(self), "ConcatDataset")
        k = bisect.bisect_right(self.cumulative_sizes, i)
        start = self.cumulative_sizes[k - 1] if k > 0 else 0
        return self.datasets[k][i - start]


class Subset(Dataset):
    """The rows `indices` of `dataset`, in that order (`torch.utils.data.Subset`).

    Indices are checked against the dataset when the subset is made (PyTorch checks
    them on access); negative ones count from the end and are stored as positive.

    >>> sub = Subset(ArrayDataset(np.arange(10, 15)), [4, 0, -2])
    >>> sub.indices, [int(sub[i][0]) for i in range(len(sub))]
    ([4, 0, 3], [14, 10, 13])
    """

    def __init__(self, dataset: Any, indices: Sequence[int]) -> None:
        check_dataset(dataset, "Subset")
        n = len(dataset)
        self.dataset = dataset
        self.indices = [normalize_index(i, n, "Subset") for i in as_list(indices, "Subset")]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> Any:
        return self.dataset[self.indices[normalize_index(index, len(self.indices), "Subset")]]


def as_list(values: Any, name: str, what: str = "indices",
            kind: str = "a sequence of integers") -> list[Any]:
    """`values` (a sequence, an iterable or a 1-D array) as a list, or a `DataError`
    saying that `what` must be `kind`.

    >>> as_list(np.arange(3), "Subset")
    [0, 1, 2]
    """
    if isinstance(values, np.ndarray):
        if values.ndim != 1:
            fail(f"{name}: {what} must be one-dimensional, got shape {values.shape}")
        return values.tolist()
    if isinstance(values, (str, bytes)):  # iterable, but one value, not a sequence of them
        fail(f"{name}: {what} must be {kind}, got {quote(values)}")
    try:
        return list(values)
    except TypeError:
        fail(f"{name}: {what} must be {kind}, got {quote(values)}")


def _rng(seed: int | None) -> np.random.Generator:
    return np.random.default_rng(seed)


def random_split(dataset: Any, lengths: Sequence[int | float],
                 seed: int | None = None) -> list[Subset]:
    """Split `dataset` into non-overlapping random `Subset`s of the given lengths.

    `lengths` are counts that sum to `len(dataset)`, or fractions that sum to 1
    (PyTorch's rule: each split gets floor(n * fraction) rows and the rows left
    over go one at a time to the splits in order). The rows are
    `numpy.random.default_rng(seed).permutation(n)` cut in that order; `seed`
    replaces PyTorch's `generator=` (None: fresh entropy, a different split each call).

    >>> a, b = random_split(ArrayDataset(np.arange(10)), [0.8, 0.2], seed=42)
    >>> c, d = random_split(ArrayDataset(np.arange(10)), [0.8, 0.2], seed=42)
    >>> len(a), len(b), a.indices == c.indices
    (8, 2, True)
    """
    check_dataset(dataset, "random_split")
    seed = check_seed(seed, "random_split")
    n = len(dataset)
    lengths = as_list(lengths, "random_split", "lengths", "a sequence of counts or fractions")
    if not lengths:
        fail("random_split: lengths is empty")
    if all(is_int(x) for x in lengths):
        counts = [int(x) for x in lengths]
        if any(c < 0 for c in counts):
            fail(f"random_split: lengths must not be negative, got {counts}")
    else:
        counts = _fraction_counts(lengths, n)
    if sum(counts) != n:
        fail(f"random_split: lengths {counts} sum to {sum(counts)}, but the dataset has "
             f"{n} rows")
    order = _rng(seed).permutation(n).tolist()
    splits, start = [], 0
    for count in counts:
        splits.append(Subset(dataset, order[start:start + count]))
        start += count
    return splits


def _fraction_counts(fractions: list[Any], n: int) -> list[int]:
    for x in fractions:
        if not isinstance(x, numbers.Real) or isinstance(x, (bool, np.bool_)):
            fail(f"random_split: lengths must be integers or fractions, got {quote(x)}")
        if not 0.0 <= float(x) <= 1.0:  # also rejects NaN
            fail(f"random_split: fraction {quote(x)} is outside [0, 1]")
    total = math.fsum(float(x) for x in fractions)
    if not (math.isclose(total, 1.0) and total <= 1.0 + 1e-9):
        fail(f"random_split: fractions {quote(fractions, 200)} sum to {total}, not 1")
    counts = [math.floor(n * x) for x in fractions]  # as PyTorch: float32 stays float32
    for k in range(n - sum(counts)):
        counts[k % len(counts)] += 1
    return counts


def _split_size(size: Any, n: int, name: str) -> tuple[str, Any] | None:
    """('i', count) or ('f', fraction) for a valid train/test size, None for None.

    A fraction is kept as given (a numpy float32 stays one), so that `size * n`
    rounds as in scikit-learn.
    """
    if size is None:
        return None
    if is_int(size):
        if not 0 < int(size) < n:
            fail(f"train_test_split: {name}={size} should be a positive integer smaller "
                 f"than the number of rows ({n}), or a float in (0, 1)")
        return "i", int(size)
    if isinstance(size, numbers.Real) and not isinstance(size, (bool, np.bool_)):
        if not 0.0 < float(size) < 1.0:
            fail(f"train_test_split: {name}={size} should be a float in (0, 1), or a "
                 f"positive integer smaller than the number of rows ({n})")
        return "f", size
    fail(f"train_test_split: {name} must be an int, a float or None, got {quote(size)}")


def train_test_split(dataset: Any, test_size: float | int | None = None,
                     train_size: float | int | None = None, *, seed: int | None = None,
                     shuffle: bool = True) -> tuple[Subset, Subset]:
    """Split `dataset` into `(train, test)` `Subset`s, as sklearn's `train_test_split`.

    Sizes follow scikit-learn exactly: an int is a count, a float a fraction; the test
    set gets ceil(test_size * n) rows, the train set floor(train_size * n), the
    other one the rest; with neither given, `test_size=0.25`. With `shuffle`, the
    rows are `numpy.random.default_rng(seed).permutation(n)`: the test set is its
    first rows, the train set the next ones (sklearn's order). Without, train is
    the first rows and test the ones after. `seed` replaces sklearn's
    `random_state`; one dataset goes in, not several arrays, and no `stratify`.

    >>> train, test = train_test_split(ArrayDataset(np.arange(10)), test_size=0.2, seed=0)
    >>> len(train), len(test), sorted(train.indices + test.indices) == list(range(10))
    (8, 2, True)
    >>> train_test_split(ArrayDataset(np.arange(10)), test_size=1.5)
    Traceback (most recent call last):
    ...
    pyasg.data.dataset.DataError: train_test_split: test_size=1.5 should be a float in (0, 1), ...
    """
    check_dataset(dataset, "train_test_split")
    seed = check_seed(seed, "train_test_split")
    if not isinstance(shuffle, bool):
        fail(f"train_test_split: shuffle must be True or False, got {quote(shuffle)}")
    n = len(dataset)
    if test_size is None and train_size is None:
        test_size = 0.25
    test = _split_size(test_size, n, "test_size")
    train = _split_size(train_size, n, "train_size")
    if test and train and test[0] == train[0] == "f" and test[1] + train[1] > 1:
        fail(f"train_test_split: test_size={test_size} and train_size={train_size} add "
             "up to more than 1")
    n_test = None if test is None else (math.ceil(test[1] * n) if test[0] == "f" else test[1])
    n_train = None if train is None else (
        math.floor(train[1] * n) if train[0] == "f" else train[1])
    if n_train is None:
        n_train = n - n_test  # type: ignore[operator]
    if n_test is None:
        n_test = n - n_train
    n_train, n_test = int(n_train), int(n_test)
    if n_train + n_test > n:
        fail(f"train_test_split: {n_train} train rows and {n_test} test rows are more than "
             f"the {n} rows of the dataset")
    if n_train == 0:
        fail(f"train_test_split: with {n} rows, test_size={test_size} and "
             f"train_size={train_size}, the train set would be empty")
    if shuffle:
        order = _rng(seed).permutation(n).tolist()
        test_rows, train_rows = order[:n_test], order[n_test:n_test + n_train]
    else:
        train_rows, test_rows = list(range(n_train)), list(range(n_train, n_train + n_test))
    return Subset(dataset, train_rows), Subset(dataset, test_rows)
