"""`DataLoader`: batches of a dataset as stacked numpy arrays, optionally prefetched in a thread.

`default_collate` turns a list of samples into one batch of the same structure:

- tuples, lists, namedtuples and dicts (any pytree of `pyasg.trace.tree`) are
  collated field by field and keep their type, so `(x, y)` samples give an `(xs,
  ys)` batch and `{"image": …}` samples a `{"image": …}` batch. PyTorch turns
  tuples into lists; here a tuple stays a tuple. Dict keys come from the first
  sample (the others may list them in any order); `None` stays `None`;
- numpy arrays and numpy scalars are stacked on a new first axis with
  `numpy.stack` (numpy's type promotion, where samples differ in dtype);
- Python numbers become arrays as in PyTorch: bools `bool`, ints `int64`,
  floats `float64`, complex numbers `complex128` (a mix takes the widest);
- `str` and `bytes` values are kept as a list;
- anything else goes through `numpy.asarray` and is stacked, and a value numpy
  cannot make a numeric array of raises `DataError`, as do fields whose shapes or
  structure differ between samples (the message names the field and the sample).

Prefetching (`prefetch=k`, k > 0) is PyTorch's `num_workers` in a lighter form: one
daemon thread per iteration reads and collates batches ahead, at most `k` of
them waiting in a bounded queue. The batches are the same, in the same order,
as without it. An exception in the thread (a bad row, a failing transform) is
raised again, as the same object, from the consumer's `next()`, after the
batches made before it; the pass is then over (later `next()` calls stop), with or
without prefetching. Abandoning the iteration (a `break`, an exception in the
training loop, dropping the iterator) stops the thread: the iterator's `close()`,
also called when it is garbage-collected, tells the thread to stop, and the
thread never blocks for long on a full queue, so it ends after the batch it is
making. Threads help where reading or transforming releases the GIL (numpy, file
reads); pure-Python transforms gain little.

>>> import numpy as np
>>> from pyasg.data import ArrayDataset
>>> loader = DataLoader(ArrayDataset(np.arange(10.0), np.arange(10) % 2), batch_size=3)
>>> [(x.tolist(), y.tolist()) for x, y in loader][-1]
([9.0], [1])
>>> len(loader), len(DataLoader(loader.dataset, batch_size=3, drop_last=True))
(4, 3)
"""

from __future__ import annotations

import numbers
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from pyasg.data.dataset import (
    ArrayDataset,
    DataError,
    as_list,
    check_dataset,
    check_int,
    check_seed,
    fail,
)
from pyasg.data.sampler import BatchSampler, RandomSampler, SequentialSampler
from pyasg.nn.checks import quote

__all__ = ["DataLoader", "default_collate"]


def default_collate(batch: Sequence[Any]) -> Any:
    """A list of samples as one batch of the same structure with stacked leaves.

    See the module docstring for each kind of value.

    >>> b = default_collate([{"x": np.zeros(2), "y": 1}, {"y": 0, "x": np.ones(2)}])
    >>> b["x"].tolist(), b["y"].dtype.name
    ([[0.0, 0.0], [1.0, 1.0]], 'int64')
    >>> default_collate([(1.5, "a"), (2.0, "b")])
    (array([1.5, 2. ]), ['a', 'b'])
    """
    samples = as_list(batch, "collate", "the batch", "a sequence of samples")
    if not samples:
        fail("collate: the batch is empty")
    return _collate(samples, "")


def _where(path: str) -> str:
    """Message prefix naming the field of the sample (nothing for the sample itself)."""
    return f"field {path!r}: " if path else ""


def _collate(samples: list[Any], path: str) -> Any:
    first = samples[0]
    if first is None:
        _same_kind(samples, lambda s: s is None, path, "None")
        return None
    if isinstance(first, dict):
        _same_kind(samples, lambda s: isinstance(s, dict), path, "a dict")
        keys = list(first)
        for k, sample in enumerate(samples):
            if len(sample) != len(keys) or any(key not in sample for key in keys):
                fail(f"collate: {_where(path)}sample {k} has keys {list(sample)}, "
                     f"sample 0 has {keys}")
        return {key: _collate([s[key] for s in samples], _join(path, key)) for key in keys}
    if isinstance(first, (tuple, list)):
        kind = type(first)
        _same_kind(samples, lambda s: type(s) is kind, path, kind.__name__)
        for k, sample in enumerate(samples):
            if len(sample) != len(first):
                fail(f"collate: {_where(path)}sample {k} has {len(sample)} fields, "
                     f"sample 0 has {len(first)}")
        fields = [_collate([s[i] for s in samples], _join(path, i)) for i in range(len(first))]
        if hasattr(kind, "_fields"):  # a namedtuple
            return kind(*fields)
        return tuple(fields) if isinstance(first, tuple) else fields
    return _stack(samples, path)


def _join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


def _same_kind(samples: list[Any], ok: Callable[[Any], bool], path: str, what: str) -> None:
    for k, sample in enumerate(samples):
        if not ok(sample):
            fail(f"collate: {_where(path)}{what} in sample 0 but "
                 f"{type(sample).__name__} in sample {k}")


def _is_numpy(x: object) -> bool:
    return isinstance(x, (np.ndarray, np.generic)) and not isinstance(x, (str, bytes))


def _stack(leaves: list[Any], path: str) -> Any:
    if all(_is_numpy(x) for x in leaves):
        return _stack_arrays(leaves, path)
    if all(isinstance(x, str) for x in leaves) or all(isinstance(x, bytes) for x in leaves):
        return list(leaves)
    if all(isinstance(x, numbers.Complex) and not _is_numpy(x) for x in leaves):
        return _python_numbers(leaves, path)
    arrays = []
    for k, x in enumerate(leaves):
        array = np.asarray(x)
        if array.dtype.kind in "OUSV":
            fail(f"collate: {_where(path)}sample {k} holds a {type(x).__name__}, which "
                 "cannot be stacked into a numeric array; pass a collate_fn")
        arrays.append(array)
    return _stack_arrays(arrays, path)


def _stack_arrays(arrays: list[Any], path: str) -> np.ndarray:
    shape = np.shape(arrays[0])
    for k, array in enumerate(arrays):
        if np.shape(array) != shape:
            fail(f"collate: {_where(path)}shape {shape} in sample 0 but "
                 f"{np.shape(array)} in sample {k}; pad the samples to one shape or pass "
                 "a collate_fn")
    return np.stack(arrays)


def _python_numbers(values: list[Any], path: str) -> np.ndarray:
    # PyTorch's dtypes for Python scalars: bool, int64, float64, complex128.
    if all(isinstance(v, bool) for v in values):
        return np.array(values, dtype=np.bool_)
    if all(isinstance(v, numbers.Integral) for v in values):
        try:
            return np.array(values, dtype=np.int64)
        except OverflowError:
            fail(f"collate: {_where(path)}integers outside int64")
    if all(isinstance(v, numbers.Real) for v in values):
        return np.array(values, dtype=np.float64)
    return np.array(values, dtype=np.complex128)  # all numbers.Complex, by the caller


class DataLoader:
    """Batches of `dataset`, as `torch.utils.data.DataLoader`, collated into numpy arrays.

    `batch_size` (default 1), `shuffle`, `sampler`, `batch_sampler`, `collate_fn`
    and `drop_last` mean what they mean in PyTorch, with its rules: `shuffle` and
    `sampler` exclude each other, `batch_sampler` excludes `batch_size`, `shuffle`,
    `sampler` and `drop_last`, and `batch_size=None` turns batching off (each item
    is one sample, passed through `collate_fn` when one is given). Differences:

    - `seed` replaces `generator=`: with `shuffle=True` the loader uses
      `RandomSampler(dataset, seed=seed)`, so each `iter(loader)` is a new epoch
      with its own order and a run replays exactly (see `pyasg.data.sampler`);
      `set_epoch(e)` resumes at epoch `e`. `seed` is ignored without shuffle.
    - no worker processes: `num_workers` must be 0, and `prefetch=k` reads `k`
      batches ahead in a background thread (see the module docstring).
    - batches are numpy arrays (`default_collate`), and tuples stay tuples.
    - `pin_memory`, `timeout`, `worker_init_fn` and the other worker options do
      not exist; only map-style datasets (`__len__` and `__getitem__`) are read.

    For an `ArrayDataset` of numeric arrays with the default collate, a batch is
    read with one fancy index per array, byte for byte what stacking the rows gives.

    >>> from pyasg.data import ArrayDataset
    >>> ds = ArrayDataset(np.arange(10))
    >>> loader = DataLoader(ds, batch_size=4, shuffle=True, seed=0)
    >>> epoch0 = [b[0].tolist() for b in loader]
    >>> epoch1 = [b[0].tolist() for b in loader]
    >>> [len(b) for b in epoch0], epoch0 != epoch1
    ([4, 4, 2], True)
    >>> loader.set_epoch(0); [b[0].tolist() for b in loader] == epoch0
    True
    >>> DataLoader(ds, batch_size=0)
    Traceback (most recent call last):
    ...
    pyasg.data.dataset.DataError: DataLoader: batch_size must be >= 1, got 0...
    """

    def __init__(self, dataset: Any, batch_size: int | None = 1, shuffle: bool = False,
                 sampler: Iterable[int] | None = None,
                 batch_sampler: Iterable[Sequence[int]] | None = None, num_workers: int = 0,
                 collate_fn: Callable[[list[Any]], Any] | None = None, *,
                 drop_last: bool = False, seed: int | None = None, prefetch: int = 0) -> None:
        check_dataset(dataset, "DataLoader")
        seed = check_seed(seed, "DataLoader")
        if check_int(num_workers, "DataLoader: num_workers", minimum=0) != 0:
            fail("DataLoader: there are no worker processes (num_workers must be 0); use "
                 "prefetch=k to read k batches ahead in a background thread")
        for name, flag in (("shuffle", shuffle), ("drop_last", drop_last)):
            if not isinstance(flag, bool):
                fail(f"DataLoader: {name} must be True or False, got {quote(flag)}")
        if collate_fn is not None and not callable(collate_fn):
            fail(f"DataLoader: collate_fn must be callable, got {type(collate_fn).__name__}")
        self.prefetch = check_int(prefetch, "DataLoader: prefetch", minimum=0)
        if batch_size is not None:
            batch_size = check_int(batch_size, "DataLoader: batch_size", minimum=1)
        if sampler is not None and shuffle:
            fail("DataLoader: sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                fail("DataLoader: batch_sampler option is mutually exclusive with "
                     "batch_size, shuffle, sampler, and drop_last")
            batch_size = None
        elif batch_size is None and drop_last:
            fail("DataLoader: batch_size=None option disables auto-batching and is mutually "
                 "exclusive with drop_last")
        if sampler is None:
            sampler = RandomSampler(dataset, seed=seed) if shuffle else SequentialSampler(
                dataset)
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.dataset, self.batch_size, self.drop_last = dataset, batch_size, drop_last
        self.sampler, self.batch_sampler, self.collate_fn = sampler, batch_sampler, collate_fn
        #: The shuffling seed (drawn from entropy when `seed=None`), or None without shuffle.
        self.seed = getattr(sampler, "seed", None) if shuffle else None

    @property
    def _index_sampler(self) -> Iterable[Any]:
        return self.batch_sampler if self.batch_sampler is not None else self.sampler

    def __len__(self) -> int:
        sampler = self._index_sampler
        if not hasattr(sampler, "__len__"):
            fail(f"DataLoader: the sampler ({type(sampler).__name__}) has no length")
        return len(sampler)  # type: ignore[arg-type]

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration epoch `epoch` of the (random) sampler; see `RandomSampler`."""
        for sampler in (self.sampler, getattr(self.batch_sampler, "sampler", None)):
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(epoch)  # type: ignore[union-attr]
                return
        fail("DataLoader.set_epoch: the sampler has no epochs (it is not a random sampler)")

    def __iter__(self) -> LoaderIterator:
        # The index iterator is made here, in the caller's thread: a random sampler
        # moves to its next epoch exactly once per iter(loader).
        return LoaderIterator(iter(self._index_sampler), self._fetcher(), self.prefetch,
                              self._len_or_none())

    def _len_or_none(self) -> int | None:
        try:
            return len(self)
        except (DataError, TypeError):  # a sampler without a length still iterates
            return None

    def _fetcher(self) -> Callable[[Any], Any]:
        """indices → batch (or index → sample without batching); touches no iterator state."""
        dataset, collate = self.dataset, self.collate_fn
        if self.batch_size is None and self.batch_sampler is None:
            if collate is None:
                return lambda i: dataset[i]
            return lambda i: collate(dataset[i])
        if collate is None:
            fast = (isinstance(dataset, ArrayDataset)
                    and type(dataset).__getitem__ is ArrayDataset.__getitem__)

            def fetch(indices: Sequence[int]) -> Any:
                indices = list(indices)
                if fast and indices:
                    batch = dataset._batch(indices)
                    if batch is not None:
                        return batch
                return default_collate([dataset[i] for i in indices])
            return fetch
        return lambda indices: collate([dataset[i] for i in indices])

    def __repr__(self) -> str:
        return (f"DataLoader({self.dataset!r}, batch_size={self.batch_size}, "
                f"drop_last={self.drop_last}, prefetch={self.prefetch})")


_BATCH, _ERROR, _DONE = "batch", "error", "done"
#: How long the thread waits on a full queue before it looks for a stop request again.
_POLL_S = 0.05


class LoaderIterator:
    """One pass over a `DataLoader`: `next()` gives batches; `close()` stops a prefetch thread.

    Also a context manager (`with iter(loader) as it: …`) that closes on exit.
    """

    def __init__(self, indices: Iterator[Any], fetch: Callable[[Any], Any], prefetch: int,
                 length: int | None) -> None:
        self._length = length
        self._finished = False
        self._thread: threading.Thread | None = None
        if prefetch == 0:
            self._indices: Iterator[Any] | None = indices
            self._fetch: Callable[[Any], Any] | None = fetch
            return
        self._indices = self._fetch = None
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=prefetch)
        self._stop = threading.Event()
        # The thread gets the queue, the event and the fetch function, never `self`:
        # otherwise it would keep this iterator alive and an abandoned loop could not
        # be noticed by garbage collection.
        self._thread = threading.Thread(
            target=_produce, args=(indices, fetch, self._queue, self._stop),
            name="pyasg-prefetch", daemon=True)
        self._thread.start()

    def __iter__(self) -> LoaderIterator:
        return self

    def __len__(self) -> int:
        if self._length is None:
            fail("DataLoader: the sampler has no length")
        return self._length

    def __next__(self) -> Any:
        if self._finished:
            raise StopIteration
        if self._thread is None:
            try:
                indices = next(self._indices)  # type: ignore[arg-type]
            except StopIteration:
                self._finished = True
                raise
            try:
                return self._fetch(indices)  # type: ignore[misc]
            except BaseException:
                self._finished = True  # as with prefetching: an error ends the pass
                raise
        kind, value = self._get()
        if kind == _BATCH:
            return value
        self.close()
        if kind == _ERROR:
            raise value
        raise StopIteration

    def _get(self) -> tuple[str, Any]:
        thread = self._thread
        assert thread is not None
        while True:
            try:
                return self._queue.get(timeout=1.0)
            except queue.Empty:
                if not thread.is_alive() and self._queue.empty():
                    return _ERROR, DataError("DataLoader: the prefetch thread ended "
                                             "without a result")

    def close(self, wait: bool = True) -> None:
        """Stop the prefetch thread (if any) and end this iteration; `wait` joins the thread."""
        self._finished = True
        thread = self._thread
        if thread is None:
            return
        self._stop.set()
        while True:  # make room, so a thread blocked on put() sees the stop at once
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        if wait and thread is not threading.current_thread():
            thread.join()
        self._thread = None if not thread.is_alive() else thread

    def __enter__(self) -> LoaderIterator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        # Garbage collection may run in any thread: signal the thread, never wait for it.
        if getattr(self, "_thread", None) is not None:
            try:
                self.close(wait=False)
            except Exception:  # noqa: BLE001 - at interpreter exit modules may be gone
                pass


def _produce(indices: Iterator[Any], fetch: Callable[[Any], Any],
             out: queue.Queue[tuple[str, Any]], stop: threading.Event) -> None:
    """The prefetch thread: fetch batches in order into `out` until done, failed or stopped."""
    try:
        for batch_indices in indices:
            if stop.is_set() or not _put(out, (_BATCH, fetch(batch_indices)), stop):
                return
        item: tuple[str, Any] = (_DONE, None)
    except BaseException as err:  # noqa: BLE001 - every failure goes to the consumer
        item = (_ERROR, err)
    _put(out, item, stop)


def _put(out: queue.Queue[tuple[str, Any]], item: tuple[str, Any],
         stop: threading.Event) -> bool:
    """Put `item`, waiting while the queue is full; False if a stop came first."""
    while not stop.is_set():
        try:
            out.put(item, timeout=_POLL_S)
            return True
        except queue.Full:
            continue
    return False
