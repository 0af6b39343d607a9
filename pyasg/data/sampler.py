"""Samplers (torch.utils.data's): which rows, in what order, and how they are batched.

A sampler is an iterable of row indices; `BatchSampler` groups one into lists.

Randomness is seeded and counted by epoch instead of PyTorch's `generator=`. A
random sampler holds a `seed` (an int; None draws one from fresh entropy and
keeps it, so it can be logged) and an `epoch` counter. Each `iter(sampler)`
draws its order from `numpy.random.default_rng([seed, epoch])` and then adds 1
to `epoch`, so every epoch has its own order, and the k-th epoch of a run is the
same in every run (torch's `RandomSampler` with a seeded generator behaves alike,
but through one generator's running state). `set_epoch(e)` makes the next
iteration epoch `e`, for resuming a run, as `DistributedSampler.set_epoch`
does; unlike it, the counter then goes on by itself.

>>> s = RandomSampler(range(5), seed=3)
>>> first, second = list(s), list(s)
>>> sorted(first), first != second
([0, 1, 2, 3, 4], True)
>>> s.set_epoch(0); list(s) == first
True
>>> list(BatchSampler(SequentialSampler(range(5)), batch_size=2, drop_last=False))
[[0, 1], [2, 3], [4]]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from pyasg.data.dataset import DataError, as_list, check_int, check_seed, fail, is_int
from pyasg.nn.checks import allocate, quote

__all__ = [
    "BatchSampler", "RandomSampler", "Sampler", "SequentialSampler", "SubsetRandomSampler",
    "WeightedRandomSampler",
]


class Sampler:
    """Base of samplers: `__iter__` gives row indices; `__len__`, when known, how many."""

    def __iter__(self) -> Iterator[int]:
        raise NotImplementedError(f"{type(self).__name__} must implement __iter__")


class SequentialSampler(Sampler):
    """0, 1, …, len(data_source) - 1, every epoch (`torch.utils.data.SequentialSampler`).

    >>> list(SequentialSampler([10, 20, 30]))
    [0, 1, 2]
    """

    def __init__(self, data_source: Any) -> None:
        if not hasattr(data_source, "__len__"):
            fail(f"SequentialSampler: data_source needs __len__, got "
                 f"{type(data_source).__name__}")
        self.data_source = data_source

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class _EpochSeeded(Sampler):
    """A seed and an epoch counter: epoch e draws from `default_rng([seed, e])`."""

    def _init_seed(self, seed: int | None, name: str) -> None:
        seed = check_seed(seed, name)
        # Keep a drawn seed, so that an unseeded run can still be logged and replayed.
        self.seed: int = int(np.random.SeedSequence().entropy) if seed is None else seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration epoch `epoch` (the ones after it count on from there)."""
        self.epoch = check_int(epoch, f"{type(self).__name__}.set_epoch: epoch", minimum=0)

    def _next_rng(self) -> np.random.Generator:
        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        return rng


class RandomSampler(_EpochSeeded):
    """Rows in a random order: a new permutation each epoch (`torch.utils.data.RandomSampler`).

    Without replacement, `num_samples` (default `len(data_source)`) indices are
    whole permutations one after another, the last one cut short, as in PyTorch.
    With `replacement=True`, they are drawn uniformly and independently. See the
    module docstring for `seed` (PyTorch's `generator=`) and the epoch counter.

    >>> s = RandomSampler(range(4), num_samples=6, seed=0)
    >>> order = list(s)
    >>> len(order), sorted(order[:4]), len(set(order[4:]))
    (6, [0, 1, 2, 3], 2)
    """

    def __init__(self, data_source: Any, replacement: bool = False,
                 num_samples: int | None = None, seed: int | None = None) -> None:
        if not hasattr(data_source, "__len__"):
            fail(f"RandomSampler: data_source needs __len__, got {type(data_source).__name__}")
        if not isinstance(replacement, bool):
            fail(f"RandomSampler: replacement must be True or False, got {quote(replacement)}")
        self.data_source, self.replacement = data_source, replacement
        self._num_samples = None if num_samples is None else check_int(
            num_samples, "RandomSampler: num_samples")
        if self.num_samples <= 0:
            fail(f"RandomSampler: num_samples should be a positive integer, got "
                 f"{self.num_samples}" + (" (the dataset is empty)" if num_samples is None
                                          else ""))
        self._init_seed(seed, "RandomSampler")

    @property
    def num_samples(self) -> int:
        """How many indices an epoch gives: `num_samples`, or the dataset's length now."""
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self) -> Iterator[int]:
        n, count = len(self.data_source), self.num_samples
        if n == 0:
            fail("RandomSampler: the dataset is empty")
        # The order is drawn now, not on the first next(): the epoch counter moves at
        # iter() time, whatever thread later consumes the indices.
        rng = self._next_rng()
        return iter(_indices(lambda: self._order(rng, n, count), count, "RandomSampler"))

    def _order(self, rng: np.random.Generator, n: int, count: int) -> list[int]:
        if self.replacement:
            return rng.integers(0, n, size=count).tolist()
        whole, rest = divmod(count, n)
        parts = [rng.permutation(n) for _ in range(whole)]
        if rest:
            parts.append(rng.permutation(n)[:rest])
        return np.concatenate(parts).tolist()

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(_EpochSeeded):
    """The given `indices` in a random order, new each epoch
    (`torch.utils.data.SubsetRandomSampler`; `seed` as in the module docstring).

    >>> sorted(SubsetRandomSampler([7, 3, 9], seed=1))
    [3, 7, 9]
    """

    def __init__(self, indices: Sequence[int], seed: int | None = None) -> None:
        values = as_list(indices, "SubsetRandomSampler")
        for i in values:
            if not is_int(i):
                fail(f"SubsetRandomSampler: indices must be integers, got {quote(i)}")
        self.indices = [int(i) for i in values]
        self._init_seed(seed, "SubsetRandomSampler")

    def __iter__(self) -> Iterator[int]:
        order = self._next_rng().permutation(len(self.indices))
        return iter([self.indices[k] for k in order.tolist()])

    def __len__(self) -> int:
        return len(self.indices)


class WeightedRandomSampler(_EpochSeeded):
    """`num_samples` indices drawn with probability proportional to `weights`
    (`torch.utils.data.WeightedRandomSampler`; `seed` as in the module docstring).

    With replacement (the default), each draw is independent: index i has
    probability weights[i] / sum(weights), found by inverse CDF on uniforms from
    the epoch's generator. Without, each index comes at most once and every draw
    favours the heavy among those left, as `torch.multinomial(replacement=False)`:
    each index gets the key E_i / weights[i] with E_i ~ Exponential(1), and the
    smallest `num_samples` keys, in increasing order, are the draws
    (Efraimidis-Spirakis; the same distribution as drawing one at a time in
    proportion to the weights left). Zero weights are never drawn. Weights must
    be finite, non-negative and not all zero; without replacement, `num_samples`
    may not exceed the number of positive weights.

    >>> s = WeightedRandomSampler([0.0, 1.0, 3.0], num_samples=1000, seed=0)
    >>> counts = np.bincount(list(s), minlength=3)
    >>> int(counts[0]), bool(650 < counts[2] < 850)
    (0, True)
    >>> sorted(WeightedRandomSampler([1, 2, 0, 4], 3, replacement=False, seed=0))
    [0, 1, 3]
    """

    def __init__(self, weights: Sequence[float], num_samples: int,
                 replacement: bool = True, seed: int | None = None) -> None:
        try:
            w = np.asarray(weights)
        except ValueError:  # ragged
            w = np.asarray(None)
        if w.dtype.kind not in "biuf":  # not strings that numpy would parse as numbers
            fail(f"WeightedRandomSampler: weights must be a sequence of real numbers, got "
                 f"{quote(weights)}")
        w = w.astype(np.float64)
        if w.ndim != 1 or w.size == 0:
            fail(f"WeightedRandomSampler: weights must be a non-empty 1-D sequence, got "
                 f"shape {w.shape}")
        if not np.all(np.isfinite(w)):
            fail(f"WeightedRandomSampler: weights must be finite; weight "
                 f"{int(np.flatnonzero(~np.isfinite(w))[0])} is {w[~np.isfinite(w)][0]}")
        if np.any(w < 0):
            first = int(np.flatnonzero(w < 0)[0])
            fail(f"WeightedRandomSampler: weights must not be negative; weight {first} is "
                 f"{w[first]}")
        with np.errstate(over="ignore"):
            total = w.sum()
        if not total > 0:
            fail("WeightedRandomSampler: weights are all zero; nothing can be drawn")
        if not np.isfinite(total):
            fail("WeightedRandomSampler: the weights sum to infinity in float64; scale them "
                 "down")
        if not isinstance(replacement, bool):
            fail(f"WeightedRandomSampler: replacement must be True or False, got "
                 f"{quote(replacement)}")
        self.num_samples = check_int(num_samples, "WeightedRandomSampler: num_samples", 1)
        positive = int(np.count_nonzero(w))
        if not replacement and self.num_samples > positive:
            fail(f"WeightedRandomSampler: cannot draw {self.num_samples} indices without "
                 f"replacement from {positive} positive weights")
        self.weights, self.replacement = w, replacement
        self._init_seed(seed, "WeightedRandomSampler")

    def __iter__(self) -> Iterator[int]:
        rng = self._next_rng()
        if self.replacement:
            cdf = np.cumsum(self.weights)
            cdf /= cdf[-1]  # exactly 1.0 at the end, so u in [0, 1) always lands
            # side="right": u in [cdf[i-1], cdf[i]) picks i, an empty interval for w[i] = 0.
            return iter(_indices(lambda: np.searchsorted(
                cdf, rng.random(self.num_samples), side="right").tolist(), self.num_samples,
                "WeightedRandomSampler"))
        with np.errstate(divide="ignore"):
            keys = rng.exponential(size=self.weights.size) / self.weights  # w = 0: +inf
        return iter(np.argsort(keys, kind="stable")[:self.num_samples].tolist())

    def __len__(self) -> int:
        return self.num_samples


class BatchSampler(Sampler):
    """Indices of `sampler` in lists of `batch_size` (`torch.utils.data.BatchSampler`).

    The last list is shorter when the sampler's length is not a multiple of
    `batch_size`, or left out with `drop_last=True`. `sampler` is any iterable of
    indices; `len()` needs it to have a length.

    >>> list(BatchSampler(range(7), batch_size=3, drop_last=True))
    [[0, 1, 2], [3, 4, 5]]
    >>> len(BatchSampler(range(7), batch_size=3, drop_last=False))
    3
    """

    def __init__(self, sampler: Iterable[int], batch_size: int, drop_last: bool) -> None:
        if not hasattr(sampler, "__iter__"):
            fail(f"BatchSampler: sampler must be an iterable of indices, got "
                 f"{type(sampler).__name__}")
        self.batch_size = check_int(batch_size, "BatchSampler: batch_size", minimum=1)
        if not isinstance(drop_last, bool):
            fail(f"BatchSampler: drop_last must be True or False, got {quote(drop_last)}")
        self.sampler, self.drop_last = sampler, drop_last

    def __iter__(self) -> Iterator[list[int]]:
        # iter(sampler) now, so a random sampler's epoch moves when the epoch starts.
        return _batches(iter(self.sampler), self.batch_size, self.drop_last)

    def __len__(self) -> int:
        if not hasattr(self.sampler, "__len__"):
            fail(f"BatchSampler: the sampler ({type(self.sampler).__name__}) has no length")
        n = len(self.sampler)  # type: ignore[arg-type]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)


def _indices(make: Callable[[], list[int]], count: int, name: str) -> list[int]:
    """`make()`, an epoch's `count` indices drawn at once, or a `DataError` when they
    cannot be held (a Python list takes about 40 bytes an index: its pointer and int)."""
    return allocate(make, (count, 5), np.int64, name, DataError,
                    thing=f"an epoch of {count} indices (a list)")


def _batches(indices: Iterator[int], size: int, drop_last: bool) -> Iterator[list[int]]:
    batch: list[int] = []
    for i in indices:
        batch.append(i)
        if len(batch) == size:
            yield batch
            batch = []
    if batch and not drop_last:
        yield batch

