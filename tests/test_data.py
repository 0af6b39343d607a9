"""pyasg.data: datasets, splits, samplers, the DataLoader (collate, prefetch) and transforms.

Expected values come from hand-written fixtures, from numpy written out here, from
scipy's chi-square quantiles and from scikit-learn, never from the code under test.
Random draws use fixed seeds and the property tests that judge frequencies are
derandomized, so a test that passes once passes every time.
"""

from __future__ import annotations

import collections
import gc
import math
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.stats import chi2

from pyasg import PyasgError
from pyasg.data import (
    ArrayDataset,
    BatchSampler,
    ConcatDataset,
    DataError,
    DataIndexError,
    DataLoader,
    Dataset,
    MapDataset,
    RandomSampler,
    SequentialSampler,
    Subset,
    SubsetRandomSampler,
    TensorDataset,
    WeightedRandomSampler,
    default_collate,
    random_split,
    train_test_split,
)
from pyasg.data.transforms import (
    Clip,
    Compose,
    Flatten,
    Log,
    MinMaxScale,
    Normalize,
    OneHot,
    RandomNoise,
    StandardScale,
)

Point = collections.namedtuple("Point", "x y")


def same_bytes(a, b) -> bool:
    """Equal dtype, shape and bytes: the strictest equality of two arrays."""
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


class Rows(Dataset):
    """A plain dataset over the rows of `arrays` (no ArrayDataset fast path)."""

    def __init__(self, *arrays):
        self.arrays = arrays

    def __len__(self):
        return len(self.arrays[0])

    def __getitem__(self, i):
        return tuple(a[i] for a in self.arrays)


def ten_rows():
    return ArrayDataset(np.arange(10, dtype=np.float32) * 10, np.arange(10))


# =========================================================================== datasets


def test_array_dataset_rows_are_tuples_of_rows():
    x, y = np.arange(12.0).reshape(6, 2), np.array([5, 4, 3, 2, 1, 0])
    ds = ArrayDataset(x, y)
    assert len(ds) == 6
    for i in range(-6, 6):
        xi, yi = ds[i]
        assert same_bytes(xi, x[i]) and same_bytes(yi, y[i])
    assert TensorDataset is ArrayDataset
    assert [r[1] for r in list(ds)] == [5, 4, 3, 2, 1, 0]  # iteration stops at the end
    (only,) = ArrayDataset(y)[2]
    assert only == 3


def test_array_dataset_keywords_and_pytrees_give_that_structure():
    ds = ArrayDataset(image=np.zeros((3, 2, 2)), meta={"id": np.array([7, 8, 9]),
                                                      "w": [1.0, 2.0, 3.0]})
    sample = ds[1]
    assert list(sample) == ["image", "meta"] and list(sample["meta"]) == ["id", "w"]
    assert sample["image"].shape == (2, 2) and sample["meta"]["id"] == 8
    assert sample["meta"]["w"] == 2.0
    lists = ArrayDataset([0.5, 1.5], [[0, 1], [2, 3]])  # a list is an array, not fields
    assert len(lists) == 2 and lists[1][0] == 1.5 and lists[1][1].tolist() == [2, 3]


@pytest.mark.parametrize("index", [6, -7, 100])
def test_array_dataset_index_out_of_range_is_an_index_error(index):
    with pytest.raises(DataIndexError, match=f"index {index} is out of range .* 6 rows") as e:
        ArrayDataset(np.zeros(6))[index]
    assert isinstance(e.value, IndexError) and isinstance(e.value, PyasgError)


@pytest.mark.parametrize("index", [1.0, "1", None, True, np.array([1, 2])])
def test_array_dataset_index_must_be_an_int(index):
    with pytest.raises(DataIndexError, match="index must be an integer"):
        ArrayDataset(np.zeros(6))[index]


def test_array_dataset_mismatched_lengths_name_both():
    with pytest.raises(DataError, match="array 0 has 10 rows, array 1 has 9 rows"):
        ArrayDataset(np.zeros((10, 3)), np.zeros(9))
    with pytest.raises(DataError, match="'x' has 2 rows, 'y' has 3 rows"):
        ArrayDataset(x=np.zeros(2), y=np.zeros(3))


@pytest.mark.parametrize("args, kwargs, message", [
    ((), {}, "at least one array"),
    ((np.zeros(3),), {"y": np.zeros(3)}, "not both"),
    ((np.float32(1.0),), {}, "array 0 is a scalar"),
    (([[1, 2], [3]],), {}, "'0' is not a rectangular array"),
    ((None,), {}, "at least one array"),
])
def test_array_dataset_bad_arguments(args, kwargs, message):
    with pytest.raises(DataError, match=message):
        ArrayDataset(*args, **kwargs)


def test_map_dataset_is_lazy_and_transforms_whole_samples_or_one_field():
    calls = []

    def double(v):
        calls.append(v)
        return 2 * v

    base = ArrayDataset(np.array([1.0, 2.0, 3.0]), np.array([0, 1, 2]))
    whole = MapDataset(base, lambda s: (s[0] + s[1],))
    assert calls == [] and len(whole) == 3 and whole[2] == (5.0,)
    first = MapDataset(base, double, field=0)
    assert calls == []  # nothing computed until a row is read
    x, y = first[1]
    assert (x, y) == (4.0, 1) and calls == [2.0]
    assert first[1] == (4.0, 1) and len(calls) == 2  # not cached
    assert MapDataset(Rows(np.array([1]), np.array([2])), double, field=-1)[0] == (1, 4)


def test_map_dataset_field_keeps_dict_list_and_namedtuple_samples():
    class Samples(Dataset):
        def __init__(self, sample):
            self.sample = sample

        def __len__(self):
            return 1

        def __getitem__(self, i):
            return self.sample

    assert MapDataset(Samples({"a": 1, "b": 2}), str, field="b")[0] == {"a": 1, "b": "2"}
    assert MapDataset(Samples([1, 2]), str, field=0)[0] == ["1", 2]
    out = MapDataset(Samples(Point(1, 2)), str, field=1)[0]
    assert isinstance(out, Point) and out == Point(1, "2")


@pytest.mark.parametrize("sample, field, message", [
    ({"a": 1}, "b", "field 'b' is not a key"),
    ((1, 2), 2, "not a position in a sample of 2 fields"),
    ((1, 2), "a", "not a position"),
    (np.zeros(2), 0, "needs tuple, list or dict samples"),
])
def test_map_dataset_bad_field(sample, field, message):
    with pytest.raises(DataError, match=message):
        MapDataset([sample], abs, field=field)[0]


def test_map_dataset_needs_a_dataset_and_a_callable():
    with pytest.raises(DataError, match="fn must be callable"):
        MapDataset([1, 2], 3)
    with pytest.raises(DataError, match="needs __len__ and __getitem__"):
        MapDataset(5, abs)


def test_concat_dataset_reads_the_datasets_in_order():
    a, empty, b = ArrayDataset(np.array([0, 1])), ArrayDataset(np.zeros(0)), [10, 11, 12]
    ds = ConcatDataset([a, empty, b])
    assert ds.cumulative_sizes == [2, 2, 5] and len(ds) == 5
    got = [ds[i] for i in range(5)]
    assert [int(v[0]) for v in got[:2]] == [0, 1] and got[2:] == [10, 11, 12]
    assert ds[-1] == 12 and ds[-5][0] == 0
    with pytest.raises(DataIndexError, match="index 5 is out of range"):
        ds[5]
    assert len(a + ArrayDataset(np.zeros(4))) == 6


def test_concat_dataset_bad_input():
    with pytest.raises(DataError, match="at least one dataset"):
        ConcatDataset([])
    with pytest.raises(DataError, match="dataset 1: a dataset needs __len__"):
        ConcatDataset([[1], 2])


def test_subset_reads_its_indices_in_order():
    sub = Subset(ArrayDataset(np.arange(100, 110)), [9, 0, -1, 3])
    assert sub.indices == [9, 0, 9, 3]
    assert [int(sub[i][0]) for i in range(len(sub))] == [109, 100, 109, 103]
    assert int(sub[-1][0]) == 103
    with pytest.raises(DataIndexError):
        sub[4]
    assert Subset(ArrayDataset(np.arange(3)), np.array([2, 1])).indices == [2, 1]


@pytest.mark.parametrize("indices, error", [
    ([10], DataIndexError), ([-11], DataIndexError), ([1.5], DataIndexError),
    (5, DataError), (np.zeros((2, 2), int), DataError),
])
def test_subset_checks_indices_when_made(indices, error):
    with pytest.raises(error):
        Subset(ArrayDataset(np.arange(10)), indices)


# =========================================================================== splits


def test_seeded_split_of_point_eight_is_deterministic():
    ds = ArrayDataset(np.arange(10))
    train, test = random_split(ds, [0.8, 0.2], seed=0)
    again = random_split(ds, [0.8, 0.2], seed=0)
    assert (len(train), len(test)) == (8, 2)
    assert train.indices == again[0].indices and test.indices == again[1].indices
    assert sorted(train.indices + test.indices) == list(range(10))
    # The documented order: numpy's permutation for the seed, cut in order.
    order = np.random.default_rng(0).permutation(10).tolist()
    assert train.indices == order[:8] and test.indices == order[8:]
    other = [random_split(ds, [0.8, 0.2], seed=s)[0].indices for s in range(1, 6)]
    assert any(o != train.indices for o in other)


@pytest.mark.parametrize("n, fractions, sizes", [
    (10, [0.3, 0.3, 0.4], [3, 3, 4]),           # PyTorch's documented example
    (10, [0.33, 0.33, 0.34], [4, 3, 3]),        # floors 3, 3, 3; the 1 left goes to split 0
    (7, [0.5, 0.5], [4, 3]),
    (5, [0.1, 0.1, 0.8], [1, 0, 4]),            # floors 0, 0, 4; 1 left to split 0
    (3, [1.0, 0.0], [3, 0]),
])
def test_random_split_fractions_follow_pytorch_rounding(n, fractions, sizes):
    splits = random_split(ArrayDataset(np.arange(n)), fractions, seed=3)
    assert [len(s) for s in splits] == sizes


@given(n=st.integers(0, 200), cuts=st.lists(st.integers(1, 50), min_size=1, max_size=5),
       seed=st.integers(0, 2**32))
def test_random_split_is_a_partition_with_counts_or_fractions(n, cuts, seed):
    total = sum(cuts)
    fractions = [c / total for c in cuts]
    if not math.isclose(math.fsum(fractions), 1.0):
        return
    parts = random_split(ArrayDataset(np.arange(n)), fractions, seed=seed)
    sizes = [len(p) for p in parts]
    floors = [math.floor(n * f) for f in fractions]
    assert sum(sizes) == n
    assert all(0 <= s - f <= 1 for s, f in zip(sizes, floors))
    assert sorted(i for p in parts for i in p.indices) == list(range(n))
    counts = random_split(ArrayDataset(np.arange(n)), sizes, seed=seed)
    assert [p.indices for p in counts] == [p.indices for p in parts]


@pytest.mark.parametrize("lengths, message", [
    ([0.5, 0.4], "sum to 0.9"),
    ([0.7, 0.7], "sum to 1.4"),
    ([1.5, -0.5], "outside \\[0, 1\\]"),
    ([float("nan"), 1.0], "outside"),
    ([5, 4], "sum to 9, but the dataset has 10 rows"),
    ([11, -1], "must not be negative"),
    ([], "lengths is empty"),
    (["a", 0.5], "integers or fractions"),
    ([True, 0.5], "integers or fractions"),
])
def test_random_split_bad_lengths(lengths, message):
    with pytest.raises(DataError, match=message):
        random_split(ArrayDataset(np.arange(10)), lengths, seed=0)


@pytest.mark.parametrize("seed", [-1, 1.5, "0", True])
def test_random_split_bad_seed(seed):
    with pytest.raises(DataError, match="seed"):
        random_split(ArrayDataset(np.arange(10)), [5, 5], seed=seed)


@given(n=st.integers(2, 60), data=st.data())
def test_train_test_split_sizes_match_sklearn(n, data):
    sklearn = pytest.importorskip("sklearn.model_selection")
    kind = data.draw(st.sampled_from(["float", "int", "both", "default", "train"]))
    test_size = train_size = None
    if kind in ("float", "both"):
        test_size = data.draw(st.floats(0.01, 0.99))
    if kind == "int":
        test_size = data.draw(st.integers(1, n - 1))
    if kind in ("both", "train"):
        train_size = data.draw(st.floats(0.01, 0.99))
    try:
        tr, te = sklearn.train_test_split(np.arange(n), test_size=test_size,
                                          train_size=train_size, random_state=0)
    except ValueError:
        with pytest.raises(DataError):
            train_test_split(ArrayDataset(np.arange(n)), test_size, train_size, seed=0)
        return
    train, test = train_test_split(ArrayDataset(np.arange(n)), test_size, train_size, seed=0)
    assert (len(train), len(test)) == (len(tr), len(te))
    assert not set(train.indices) & set(test.indices)


def test_train_test_split_order_and_no_shuffle():
    ds = ArrayDataset(np.arange(10))
    train, test = train_test_split(ds, test_size=0.3, seed=5)
    order = np.random.default_rng(5).permutation(10).tolist()
    assert test.indices == order[:3] and train.indices == order[3:]
    train, test = train_test_split(ds, test_size=2, train_size=5, shuffle=False)
    assert train.indices == [0, 1, 2, 3, 4] and test.indices == [5, 6]
    assert [len(s) for s in train_test_split(ds, seed=0)] == [7, 3]  # default test 0.25


@pytest.mark.parametrize("kwargs, message", [
    ({"test_size": 1.5}, "test_size=1.5 should be a float in \\(0, 1\\)"),
    ({"test_size": 0.0}, "test_size=0.0"),
    ({"test_size": 10}, "test_size=10 should be a positive integer smaller"),
    ({"test_size": -2}, "test_size=-2"),
    ({"train_size": 1.0}, "train_size=1.0"),
    ({"test_size": 0.6, "train_size": 0.6}, "more than 1"),
    ({"test_size": 6, "train_size": 5}, "more than the 10 rows"),
    ({"test_size": "half"}, "must be an int, a float or None"),
    ({"shuffle": 1}, "shuffle must be True or False"),
    ({"seed": -3}, "seed must be >= 0"),
])
def test_train_test_split_bad_sizes(kwargs, message):
    with pytest.raises(DataError, match=message):
        train_test_split(ArrayDataset(np.arange(10)), **kwargs)


# =========================================================================== samplers


def test_sequential_sampler():
    assert list(SequentialSampler(range(4))) == [0, 1, 2, 3]
    assert len(SequentialSampler([1, 2])) == 2 and list(SequentialSampler([])) == []
    with pytest.raises(DataError, match="needs __len__"):
        SequentialSampler(iter([1]))


def test_random_sampler_new_order_each_epoch_and_reproducible():
    a, b = RandomSampler(range(10), seed=11), RandomSampler(range(10), seed=11)
    epochs_a = [list(a) for _ in range(5)]
    epochs_b = [list(b) for _ in range(5)]
    assert epochs_a == epochs_b
    assert all(sorted(e) == list(range(10)) for e in epochs_a)
    assert len({tuple(e) for e in epochs_a}) == 5
    # The documented derivation: epoch e is default_rng([seed, e]).permutation(n).
    for e, order in enumerate(epochs_a):
        assert order == np.random.default_rng([11, e]).permutation(10).tolist()
    a.set_epoch(3)
    assert list(a) == epochs_a[3] and list(a) == epochs_a[4]


def test_random_sampler_epoch_moves_at_iter_not_at_first_next():
    s = RandomSampler(range(6), seed=2)
    first, second = iter(s), iter(s)
    assert list(second) == np.random.default_rng([2, 1]).permutation(6).tolist()
    assert list(first) == np.random.default_rng([2, 0]).permutation(6).tolist()


def test_random_sampler_without_seed_keeps_the_seed_it_drew():
    s = RandomSampler(range(20))
    assert isinstance(s.seed, int) and s.seed >= 0
    assert list(s) == list(RandomSampler(range(20), seed=s.seed))


def test_random_sampler_num_samples_and_replacement():
    s = RandomSampler(range(4), num_samples=10, seed=0)
    out = list(s)
    assert len(out) == len(s) == 10
    assert sorted(out[:4]) == sorted(out[4:8]) == [0, 1, 2, 3] and len(set(out[8:])) == 2
    r = list(RandomSampler(range(3), replacement=True, num_samples=300, seed=0))
    assert len(r) == 300 and set(r) == {0, 1, 2}
    grows = [0, 1]
    s = RandomSampler(grows, seed=0)
    grows.append(2)
    assert len(s) == 3 and sorted(s) == [0, 1, 2]  # the length is read at each epoch


@pytest.mark.parametrize("kwargs, message", [
    ({"data_source": []}, "positive integer, got 0 \\(the dataset is empty\\)"),
    ({"data_source": range(3), "num_samples": 0}, "positive integer, got 0"),
    ({"data_source": range(3), "num_samples": 2.5}, "num_samples must be an integer"),
    ({"data_source": range(3), "replacement": "yes"}, "replacement must be True or False"),
    ({"data_source": range(3), "seed": -1}, "seed must be >= 0"),
    ({"data_source": 3}, "needs __len__"),
])
def test_random_sampler_bad_arguments(kwargs, message):
    with pytest.raises(DataError, match=message):
        RandomSampler(**kwargs)


def test_set_epoch_needs_a_non_negative_int():
    with pytest.raises(DataError, match="epoch must be >= 0"):
        RandomSampler(range(3), seed=0).set_epoch(-1)


def test_subset_random_sampler():
    s = SubsetRandomSampler(np.array([5, 7, 9, 11]), seed=4)
    orders = [list(s) for _ in range(3)]
    assert all(sorted(o) == [5, 7, 9, 11] for o in orders) and len(s) == 4
    idx = [5, 7, 9, 11]
    expected = [[idx[k] for k in np.random.default_rng([4, e]).permutation(4)] for e in range(3)]
    assert orders == expected
    with pytest.raises(DataError, match="indices must be integers"):
        SubsetRandomSampler([1, 2.0])


weights_3_to_6 = st.lists(st.floats(0.5, 5.0), min_size=3, max_size=6)


@settings(max_examples=25, derandomize=True, database=None)
@given(weights=weights_3_to_6)
def test_weighted_sampling_with_replacement_matches_the_weights(weights):
    draws = 20_000
    sampler = WeightedRandomSampler(weights, draws, seed=20240601)
    counts = np.bincount(np.array(list(sampler)), minlength=len(weights))
    expected = draws * np.asarray(weights) / np.sum(weights)
    statistic = np.sum((counts - expected) ** 2 / expected)
    assert statistic < chi2.ppf(0.999, df=len(weights) - 1)


@settings(max_examples=10, derandomize=True, database=None)
@given(weights=weights_3_to_6)
def test_weighted_sampling_without_replacement_first_draw_matches_the_weights(weights):
    sampler = WeightedRandomSampler(weights, len(weights), replacement=False, seed=99)
    epochs = 2000
    orders = [list(sampler) for _ in range(epochs)]
    assert all(sorted(o) == list(range(len(weights))) for o in orders)
    counts = np.bincount([o[0] for o in orders], minlength=len(weights))
    expected = epochs * np.asarray(weights) / np.sum(weights)
    statistic = np.sum((counts - expected) ** 2 / expected)
    assert statistic < chi2.ppf(0.999, df=len(weights) - 1)


def test_weighted_sampling_without_replacement_orders_have_successive_probabilities():
    # P(order a, b, c) = w_a / W * w_b / (W - w_a): drawing one at a time from what is left.
    w = np.array([1.0, 2.0, 3.0, 4.0])
    sampler = WeightedRandomSampler(w, 2, replacement=False, seed=5)
    epochs = 12_000
    pairs = collections.Counter(tuple(sampler) for _ in range(epochs))
    total = w.sum()
    cells = [(a, b) for a in range(4) for b in range(4) if a != b]
    expected = np.array([epochs * w[a] / total * w[b] / (total - w[a]) for a, b in cells])
    observed = np.array([pairs[c] for c in cells])
    assert sum(pairs.values()) == epochs and set(pairs) <= set(cells)
    statistic = np.sum((observed - expected) ** 2 / expected)
    assert statistic < chi2.ppf(0.999, df=len(cells) - 1)


def test_weighted_sampling_without_replacement_favours_heavy_weights():
    w = [1.0] * 9 + [50.0]
    sampler = WeightedRandomSampler(w, 3, replacement=False, seed=0)
    draws = [list(sampler) for _ in range(500)]
    assert all(len(set(d)) == 3 for d in draws)
    first_is_heavy = sum(d[0] == 9 for d in draws)
    assert first_is_heavy > 400  # expected 500 * 50 / 59 = 424; the seed is fixed


def test_zero_weights_are_never_drawn():
    w = [0.0, 3.0, 0.0, 1.0, 0.0]
    assert set(WeightedRandomSampler(w, 5000, seed=1)) == {1, 3}
    assert sorted(WeightedRandomSampler(w, 2, replacement=False, seed=1)) == [1, 3]


def test_weighted_sampler_epochs_differ_and_replay():
    a = WeightedRandomSampler([1, 2, 3], 50, seed=8)
    b = WeightedRandomSampler([1, 2, 3], 50, seed=8)
    ea, eb = [list(a), list(a)], [list(b), list(b)]
    assert ea == eb and ea[0] != ea[1] and len(a) == 50


@pytest.mark.parametrize("weights, num_samples, replacement, message", [
    ([1.0, -0.5, 2.0], 3, True, "must not be negative; weight 1 is -0.5"),
    ([1.0, float("nan")], 3, True, "must be finite; weight 1 is nan"),
    ([1.0, float("inf")], 3, True, "must be finite"),
    ([0.0, 0.0], 3, True, "all zero"),
    ([], 3, True, "non-empty 1-D"),
    ([[1.0, 2.0]], 3, True, "non-empty 1-D"),
    (["1", "2"], 3, True, "real numbers"),
    ([1.0, 2.0], 0, True, "num_samples must be >= 1"),
    ([1.0, 2.0], 2.0, True, "num_samples must be an integer"),
    ([1.0, 0.0, 2.0], 3, False, "cannot draw 3 indices without replacement from 2 positive"),
    ([1.0, 2.0], 1, "no", "replacement must be True or False"),
    ([1e308, 1e308], 1, True, "sum to infinity"),
])
def test_weighted_sampler_bad_arguments(weights, num_samples, replacement, message):
    with pytest.raises(DataError, match=message):
        WeightedRandomSampler(weights, num_samples, replacement=replacement, seed=0)


def test_batch_sampler_groups_indices():
    assert list(BatchSampler(range(7), 3, False)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(BatchSampler(range(7), 3, True)) == [[0, 1, 2], [3, 4, 5]]
    assert list(BatchSampler(range(6), 3, True)) == [[0, 1, 2], [3, 4, 5]]
    assert [len(BatchSampler(range(n), 3, d)) for n in (0, 5, 6, 7) for d in (False, True)] \
        == [0, 0, 2, 1, 2, 2, 3, 2]
    with pytest.raises(DataError, match="has no length"):
        len(BatchSampler(iter(range(3)), 2, False))


@pytest.mark.parametrize("batch_size, drop_last, message", [
    (0, False, "batch_size must be >= 1, got 0"),
    (-2, False, "batch_size must be >= 1, got -2"),
    (2.0, False, "batch_size must be an integer"),
    (True, False, "batch_size must be an integer"),
    (2, 0, "drop_last must be True or False"),
])
def test_batch_sampler_bad_arguments(batch_size, drop_last, message):
    with pytest.raises(DataError, match=message):
        BatchSampler(range(5), batch_size, drop_last)


# =========================================================================== DataLoader


def test_loader_of_ten_rows_in_batches_of_three():
    ds = ten_rows()
    batches = list(DataLoader(ds, batch_size=3))
    assert [len(y) for _, y in batches] == [3, 3, 3, 1]
    assert len(DataLoader(ds, batch_size=3)) == 4
    assert [y.tolist() for _, y in batches] == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    assert same_bytes(batches[3][0], np.array([90.0], np.float32))
    dropped = list(DataLoader(ds, batch_size=3, drop_last=True))
    assert [len(y) for _, y in dropped] == [3, 3, 3]
    assert len(DataLoader(ds, batch_size=3, drop_last=True)) == 3


def test_loader_default_batch_size_is_one():
    batches = list(DataLoader(ten_rows()))
    assert len(batches) == 10 and all(y.shape == (1,) for _, y in batches)


def test_shuffled_order_is_reproducible_with_a_seed_and_differs_between_epochs():
    def epochs(loader, n):
        return [np.concatenate([y for _, y in loader]).tolist() for _ in range(n)]

    a = epochs(DataLoader(ten_rows(), batch_size=3, shuffle=True, seed=42), 4)
    b = epochs(DataLoader(ten_rows(), batch_size=3, shuffle=True, seed=42), 4)
    assert a == b
    assert len({tuple(e) for e in a}) == 4
    assert all(sorted(e) == list(range(10)) for e in a)
    for e, order in enumerate(a):
        assert order == np.random.default_rng([42, e]).permutation(10).tolist()
    assert epochs(DataLoader(ten_rows(), batch_size=3, shuffle=True, seed=43), 1)[0] != a[0]
    resumed = DataLoader(ten_rows(), batch_size=3, shuffle=True, seed=42)
    resumed.set_epoch(2)
    assert epochs(resumed, 2) == a[2:]


def test_shuffled_order_is_the_same_in_another_process():
    script = (
        "import numpy as np\n"
        "from pyasg.data import ArrayDataset, DataLoader, WeightedRandomSampler, random_split\n"
        "ds = ArrayDataset(np.arange(10))\n"
        "loader = DataLoader(ds, batch_size=3, shuffle=True, seed=42)\n"
        "print([[b[0].tolist() for b in loader] for _ in range(2)])\n"
        "print(random_split(ds, [0.8, 0.2], seed=7)[1].indices)\n"
        "print(list(WeightedRandomSampler([1, 2, 3], 8, seed=3)))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, env={"PYTHONHASHSEED": "123", "PATH": ""},
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
                         ).stdout
    loader = DataLoader(ArrayDataset(np.arange(10)), batch_size=3, shuffle=True, seed=42)
    here = "\n".join([
        str([[b[0].tolist() for b in loader] for _ in range(2)]),
        str(random_split(ArrayDataset(np.arange(10)), [0.8, 0.2], seed=7)[1].indices),
        str(list(WeightedRandomSampler([1, 2, 3], 8, seed=3))),
    ])
    assert out.strip() == here


def test_loader_without_seed_exposes_the_seed_it_drew():
    loader = DataLoader(ten_rows(), batch_size=4, shuffle=True)
    replay = DataLoader(ten_rows(), batch_size=4, shuffle=True, seed=loader.seed)
    assert [y.tolist() for _, y in loader] == [y.tolist() for _, y in replay]
    assert DataLoader(ten_rows()).seed is None


def test_collate_keeps_the_structure_of_samples():
    samples = [
        {"img": np.full((2, 2), i, np.float32), "pair": (i, float(i)), "p": Point(i, [i, True]),
         "name": f"s{i}", "none": None}
        for i in range(3)
    ]
    batch = default_collate(samples)
    assert list(batch) == ["img", "pair", "p", "name", "none"]
    assert same_bytes(batch["img"], np.stack([np.full((2, 2), i, np.float32) for i in range(3)]))
    assert isinstance(batch["pair"], tuple)
    assert same_bytes(batch["pair"][0], np.array([0, 1, 2], np.int64))
    assert same_bytes(batch["pair"][1], np.array([0.0, 1.0, 2.0], np.float64))
    assert isinstance(batch["p"], Point) and isinstance(batch["p"].y, list)
    assert same_bytes(batch["p"].y[1], np.array([True, True, True]))
    assert batch["name"] == ["s0", "s1", "s2"] and batch["none"] is None


@pytest.mark.parametrize("values, expected", [
    ([True, False], np.array([True, False])),
    ([1, 2], np.array([1, 2], np.int64)),
    ([True, 2], np.array([1, 2], np.int64)),
    ([1, 2.5], np.array([1.0, 2.5], np.float64)),
    ([1, 2j], np.array([1, 2j], np.complex128)),
    ([np.float32(1), np.float32(2)], np.array([1, 2], np.float32)),
    ([np.int8(1), np.int16(2)], np.array([1, 2], np.int16)),
    ([np.array(1.5, np.float16)] * 2, np.array([1.5, 1.5], np.float16)),
    ([np.float32(1), 2.0], np.array([1, 2], np.float64)),
])
def test_collate_dtypes_of_leaves(values, expected):
    assert same_bytes(default_collate(values), expected)


def test_collate_dict_keys_may_come_in_any_order():
    batch = default_collate([{"a": 1, "b": 2.0}, {"b": 3.0, "a": 4}])
    assert list(batch) == ["a", "b"] and batch["a"].tolist() == [1, 4]


@pytest.mark.parametrize("samples, message", [
    ([], "the batch is empty"),
    ([np.zeros(2), np.zeros(3)], "shape \\(2,\\) in sample 0 but \\(3,\\) in sample 1"),
    ([{"x": np.zeros(2)}, {"x": np.zeros((2, 1))}], "field 'x': shape"),
    ([{"a": 1}, {"b": 1}], "sample 1 has keys \\['b'\\], sample 0 has \\['a'\\]"),
    ([(1, 2), (1, 2, 3)], "sample 1 has 3 fields, sample 0 has 2"),
    ([(1, 2), [1, 2]], "tuple in sample 0 but list in sample 1"),
    ([{"a": (1, 2)}, {"a": 3}], "field 'a': tuple in sample 0 but int in sample 1"),
    ([None, 1], "None in sample 0 but int in sample 1"),
    ([1, "a"], "sample 1 holds a str"),
    ([object(), object()], "holds a object"),
    ([2**70, 1], "integers outside int64"),
])
def test_collate_errors_name_the_field_and_sample(samples, message):
    with pytest.raises(DataError, match=message):
        default_collate(samples)


@settings(max_examples=25)
@given(data=st.data())
def test_array_dataset_batches_equal_stacked_rows_byte_for_byte(data):
    dtype = data.draw(st.sampled_from(
        [np.bool_, np.int8, np.uint16, np.int64, np.float16, np.float32, np.float64,
         np.complex64]))
    n = data.draw(st.integers(1, 12))
    x = data.draw(hnp.arrays(dtype, (n,) + data.draw(hnp.array_shapes(min_dims=0,
                                                                      max_dims=2,
                                                                      max_side=3))))
    y = data.draw(hnp.arrays(np.int32, (n,)))
    batch = data.draw(st.lists(st.integers(-n, n - 1), min_size=1, max_size=8))
    fast = next(iter(DataLoader(ArrayDataset(x, y), batch_sampler=[batch])))
    slow = next(iter(DataLoader(Rows(x, y), batch_sampler=[batch])))
    expected_x = np.stack([x[i] for i in batch])
    expected_y = np.stack([y[i] for i in batch])
    assert same_bytes(fast[0], expected_x) and same_bytes(fast[1], expected_y)
    assert same_bytes(slow[0], expected_x) and same_bytes(slow[1], expected_y)


def test_loader_with_sampler_batch_sampler_and_collate_fn():
    ds = ten_rows()
    got = [y.tolist() for _, y in DataLoader(ds, batch_size=4, sampler=[9, 8, 7, 0, 1])]
    assert got == [[9, 8, 7, 0], [1]]
    got = [y.tolist() for _, y in DataLoader(ds, batch_sampler=[[3], [1, 2]])]
    assert got == [[3], [1, 2]]
    sizes = list(DataLoader(ds, batch_size=4, collate_fn=len))
    assert sizes == [4, 4, 2]
    weighted = DataLoader(ds, batch_size=5, sampler=WeightedRandomSampler([0] * 9 + [1], 10))
    assert [y.tolist() for _, y in weighted] == [[9] * 5, [9] * 5]


def test_loader_without_batching_yields_samples():
    ds = ten_rows()
    items = list(DataLoader(ds, batch_size=None))
    assert len(items) == 10 and items[4][1] == 4
    assert list(DataLoader(ds, batch_size=None, collate_fn=lambda s: int(s[1]) * 2))[:3] \
        == [0, 2, 4]


@pytest.mark.parametrize("kwargs, message", [
    ({"batch_size": 0}, "batch_size must be >= 1, got 0"),
    ({"batch_size": -1}, "batch_size must be >= 1"),
    ({"batch_size": 2.0}, "batch_size must be an integer"),
    ({"batch_size": True}, "batch_size must be an integer"),
    ({"shuffle": "yes"}, "shuffle must be True or False"),
    ({"drop_last": 1}, "drop_last must be True or False"),
    ({"shuffle": True, "sampler": [0, 1]}, "sampler option is mutually exclusive with shuffle"),
    ({"batch_sampler": [[0]], "batch_size": 2}, "batch_sampler option is mutually exclusive"),
    ({"batch_sampler": [[0]], "drop_last": True}, "batch_sampler option is mutually exclusive"),
    ({"batch_size": None, "drop_last": True}, "mutually exclusive with drop_last"),
    ({"num_workers": 2}, "use prefetch=k"),
    ({"prefetch": -1}, "prefetch must be >= 0"),
    ({"collate_fn": 3}, "collate_fn must be callable"),
    ({"shuffle": True, "seed": -5}, "seed must be >= 0"),
])
def test_loader_bad_arguments(kwargs, message):
    with pytest.raises(DataError, match=message):
        DataLoader(ten_rows(), **kwargs)


def test_loader_needs_a_map_style_dataset_and_set_epoch_a_random_sampler():
    with pytest.raises(DataError, match="needs __len__ and __getitem__"):
        DataLoader(iter([1, 2]))
    with pytest.raises(DataError, match="not a random sampler"):
        DataLoader(ten_rows()).set_epoch(1)


def test_loader_length_needs_a_sized_sampler():
    loader = DataLoader(ten_rows(), batch_size=2, sampler=iter([0, 1, 2]))
    with pytest.raises(DataError, match="has no length"):
        len(loader)
    assert [y.tolist() for _, y in loader] == [[0, 1], [2]]


# ----------------------------------------------------------------------- prefetching


class Faulty(Dataset):
    """Rows 0..n-1, except that reading row `bad` raises `error`."""

    def __init__(self, n, bad, error):
        self.n, self.bad, self.error = n, bad, error

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if i == self.bad:
            raise self.error
        return np.float32(i)


def prefetch_threads():
    return {t for t in threading.enumerate() if t.name == "pyasg-prefetch"}


@pytest.mark.parametrize("prefetch", [1, 2, 5])
def test_prefetching_gives_the_same_batches(prefetch):
    def loader(k):
        noisy = MapDataset(ten_rows(), RandomNoise(std=1.0, seed=3), field=0)
        return DataLoader(noisy, batch_size=3, shuffle=True, seed=9, prefetch=k)

    plain, ahead = loader(0), loader(prefetch)
    for _ in range(2):
        a, b = list(plain), list(ahead)
        assert len(a) == len(b) == 4
        assert all(same_bytes(x, u) and same_bytes(y, v) for (x, y), (u, v) in zip(a, b))


@pytest.mark.parametrize("prefetch", [0, 2])
def test_an_error_while_reading_is_raised_in_the_loop_after_earlier_batches(prefetch):
    error = KeyError("row 4 is corrupt")
    it = iter(DataLoader(Faulty(8, 4, error), batch_size=2, prefetch=prefetch))
    assert next(it).tolist() == [0.0, 1.0] and next(it).tolist() == [2.0, 3.0]
    with pytest.raises(KeyError) as caught:
        next(it)
    assert caught.value is error
    with pytest.raises(StopIteration):
        next(it)


def test_abandoned_prefetching_iteration_stops_its_thread():
    before = prefetch_threads()
    loader = DataLoader(ArrayDataset(np.arange(1000)), batch_size=1, prefetch=2)
    for batch in loader:
        assert batch[0].tolist() == [0]
        started = prefetch_threads() - before
        break
    assert len(started) == 1
    gc.collect()
    (thread,) = started
    thread.join(timeout=5)
    assert not thread.is_alive()


def test_an_exception_in_the_training_loop_stops_the_thread():
    before = prefetch_threads()
    with pytest.raises(ZeroDivisionError):
        for _ in DataLoader(ArrayDataset(np.arange(1000)), prefetch=3):
            started = prefetch_threads() - before
            raise ZeroDivisionError
    gc.collect()
    for thread in started:
        thread.join(timeout=5)
        assert not thread.is_alive()


def test_close_and_with_join_the_thread():
    before = prefetch_threads()
    it = iter(DataLoader(ArrayDataset(np.arange(1000)), prefetch=2))
    next(it)
    (thread,) = prefetch_threads() - before
    it.close()
    assert not thread.is_alive()
    with pytest.raises(StopIteration):
        next(it)
    with iter(DataLoader(ArrayDataset(np.arange(1000)), prefetch=2)) as it2:
        assert len(it2) == 1000 and next(it2)[0].tolist() == [0]
    with pytest.raises(StopIteration):
        next(it2)


def test_prefetching_to_the_end_leaves_no_thread():
    before = prefetch_threads()
    batches = list(DataLoader(ten_rows(), batch_size=3, prefetch=8))
    assert len(batches) == 4
    for thread in prefetch_threads() - before:
        thread.join(timeout=5)
        assert not thread.is_alive()


# =========================================================================== transforms


CHW = np.arange(2 * 3 * 2, dtype=np.float32).reshape(2, 3, 2)  # 2 channels of 3x2


def test_normalize_per_channel_hand_fixture():
    t = Normalize(mean=[1.0, 7.0], std=[2.0, 0.5])
    out = t(CHW)
    expected = np.array([[[-0.5, 0.0], [0.5, 1.0], [1.5, 2.0]],
                         [[-2.0, 0.0], [2.0, 4.0], [6.0, 8.0]]], np.float32)
    assert same_bytes(out, expected)
    assert same_bytes(Normalize(1.0, 2.0)(np.array([3, 5])), np.array([1.0, 2.0], np.float32))


def test_normalize_sample_and_batch_agree_and_keep_float_dtypes():
    rng = np.random.default_rng(0)
    batch = rng.normal(size=(4, 3, 5, 5))
    t = Normalize([0.1, 0.2, 0.3], [1.0, 2.0, 3.0])
    assert same_bytes(t(batch), np.stack([t(s) for s in batch]))
    for dtype in (np.float16, np.float32, np.float64):
        x = batch.astype(dtype)
        m = np.array([0.1, 0.2, 0.3]).astype(dtype)[:, None, None]
        s = np.array([1.0, 2.0, 3.0]).astype(dtype)[:, None, None]
        assert same_bytes(t(x), (x - m) / s)
    assert t(np.zeros((3, 1, 1), np.uint8)).dtype == np.float32


def test_normalize_fit_gives_per_channel_mean_and_population_std():
    data = np.array([[[0.0, 2.0], [10.0, 10.0]], [[4.0, 6.0], [20.0, 40.0]]])  # (N, C, L)
    t = Normalize.fit(data, axis=1)
    # Channel 0 holds 0, 2, 4, 6: mean 3, population variance (9+1+1+9)/4 = 5.
    # Channel 1 holds 10, 10, 20, 40: mean 20, variance (100+100+0+400)/4 = 150.
    assert t.mean.tolist() == [3.0, 20.0]
    assert np.allclose(t.std, [math.sqrt(5.0), math.sqrt(150.0)], rtol=1e-15)
    assert t.axis == -2
    assert same_bytes(t(data[0]), t(data)[0])


@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=4, max_dims=4, max_side=4),
                  elements=st.floats(-100, 100)))
def test_normalized_data_has_zero_mean_and_unit_std_per_channel(data):
    per_channel = data.transpose(1, 0, 2, 3).reshape(data.shape[1], -1)
    if np.any(per_channel.std(axis=1) < 1e-3):
        return  # nearly constant channels: the std is too small to judge
    out = Normalize.fit(data, axis=1)(data)
    flat = out.transpose(1, 0, 2, 3).reshape(data.shape[1], -1)
    assert np.allclose(flat.mean(axis=1), 0.0, atol=1e-9)
    assert np.allclose(flat.std(axis=1), 1.0, atol=1e-9)


@pytest.mark.parametrize("make, message", [
    (lambda: Normalize([1.0, 2.0], [1.0, 0.0]), "std must be positive"),
    (lambda: Normalize([1.0], [-1.0]), "std must be positive"),
    (lambda: Normalize([1.0, 2.0], [1.0, 1.0, 1.0]), "mean has 2 channels but std has 3"),
    (lambda: Normalize([[1.0]], [1.0]), "one value per channel"),
    (lambda: Normalize([float("nan")], [1.0]), "must be finite"),
    (lambda: Normalize(["a"], [1.0]), "must be real numbers"),
    (lambda: Normalize([1.0], [1.0], axis=0), "axis must count from the end"),
    (lambda: Normalize([1.0, 2.0, 3.0], [1.0, 1.0, 1.0])(CHW), "3 channels on axis -3"),
    (lambda: Normalize([1.0, 2.0], [1.0, 1.0])(np.zeros(2)), "2 channels on axis -3"),
    (lambda: Normalize(0.0, 1.0)(np.array(["a"])), "expects real numbers"),
    (lambda: Normalize.fit(np.ones((4, 2, 3)), axis=1), "channels \\[0, 1\\] are constant"),
    (lambda: Normalize.fit(np.zeros((2, 3)), axis=2), "axis 2 is out of range"),
    (lambda: Normalize.fit(np.array([[1.0, np.nan]]), axis=1), "NaN or infinity"),
    (lambda: Normalize.fit(np.zeros((0, 3)), axis=1), "non-empty"),
])
def test_normalize_bad_input(make, message):
    with pytest.raises(DataError, match=message):
        make()


def test_minmax_scale_hand_fixture_and_constant_features():
    data = np.array([[0.0, 10.0, 5.0], [4.0, 30.0, 5.0], [2.0, 20.0, 5.0]])
    t = MinMaxScale.fit(data)
    assert t.data_min.tolist() == [0.0, 10.0, 5.0] and t.data_max.tolist() == [4.0, 30.0, 5.0]
    assert t(data).tolist() == [[0.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.5, 0.5, 0.0]]
    wide = MinMaxScale.fit(data, feature_range=(-1, 1))
    assert wide(data).tolist() == [[-1.0, -1.0, -1.0], [1.0, 1.0, -1.0], [0.0, 0.0, -1.0]]
    assert same_bytes(t(data[1].astype(np.float32)), np.array([1.0, 1.0, 0.0], np.float32))
    assert t(np.array([8.0, 40.0, 6.0])).tolist() == [2.0, 1.5, 1.0]  # no clipping


def test_standard_scale_hand_fixture_and_constant_features():
    data = np.array([[1.0, 5.0], [3.0, 5.0], [5.0, 5.0]])
    t = StandardScale.fit(data)
    assert t.mean.tolist() == [3.0, 5.0]
    assert np.allclose(t.std, [math.sqrt(8.0 / 3.0), 1.0], rtol=1e-15)
    assert t(np.array([3.0, 5.0])).tolist() == [0.0, 0.0]
    # 0.1 three times has a float64 mean of 0.1 + 1 ulp and a std of rounding error only;
    # it is still constant, so it maps to 0, not to -1.
    tenths = StandardScale.fit(np.full((3, 1), 0.1))
    assert tenths.std.tolist() == [1.0] and np.all(np.abs(tenths(np.full(1, 0.1))) < 1e-15)
    with pytest.raises(DataError, match="channels \\[0\\] are constant"):
        Normalize.fit(np.full((3, 1), 0.1), axis=-1)
    assert same_bytes(StandardScale([1.0, 2.0], [2.0, 4.0])(np.array([[5, 6]], np.int16)),
                      np.array([[2.0, 1.0]], np.float32))


@given(hnp.arrays(np.float64, st.tuples(st.integers(2, 20), st.integers(1, 4)),
                  elements=st.floats(-1e3, 1e3)))
def test_scalers_agree_with_scikit_learn(data):
    preprocessing = pytest.importorskip("sklearn.preprocessing")
    spread = np.ptp(data, axis=0)
    if np.any((spread > 0) & (spread < 1e-6 * (1 + np.abs(data).max(axis=0)))):
        return  # sklearn treats nearly constant features as constant; we use exact zero
    mm = preprocessing.MinMaxScaler(feature_range=(-2.0, 3.0)).fit(data)
    assert np.allclose(MinMaxScale.fit(data, (-2.0, 3.0))(data), mm.transform(data),
                       rtol=1e-9, atol=1e-9)
    ss = preprocessing.StandardScaler().fit(data)
    assert np.allclose(StandardScale.fit(data)(data), ss.transform(data), rtol=1e-7,
                       atol=1e-7)


@pytest.mark.parametrize("make, message", [
    (lambda: MinMaxScale([0.0, 2.0], [1.0, 1.0]), "data_min is above data_max at \\[\\[1\\]\\]"),
    (lambda: MinMaxScale([0.0], [1.0, 2.0]), "data_min has shape \\(1,\\) but data_max"),
    (lambda: MinMaxScale(0.0, 1.0, (1, 1)), "must be smaller than maximum"),
    (lambda: MinMaxScale(0.0, 1.0, (0, 1, 2)), "must be a pair"),
    (lambda: MinMaxScale(0.0, 1.0, (0, float("inf"))), "finite real number"),
    (lambda: MinMaxScale([0.0, 0.0], [1.0, 1.0])(np.zeros(3)), "do not fit an input of shape"),
    (lambda: MinMaxScale.fit(np.array([[np.inf]])), "NaN or infinity"),
    (lambda: MinMaxScale.fit(np.float64(3.0)), "non-empty array of samples"),
    (lambda: StandardScale([0.0], [0.0]), "std must be positive"),
    (lambda: StandardScale([0.0, 1.0], [1.0]), "mean has shape \\(2,\\) but std"),
    (lambda: StandardScale([0.0, 0.0], [1.0, 1.0])(np.zeros((2, 3))), "last axes must be"),
    (lambda: StandardScale.fit(np.array(["a", "b"])), "expects real numbers"),
])
def test_scalers_bad_input(make, message):
    with pytest.raises(DataError, match=message):
        make()


def test_one_hot():
    labels = np.array([[2, 0], [1, 1]])
    out = OneHot(3)(labels)
    assert same_bytes(out, np.eye(3, dtype=np.float32)[labels])
    assert same_bytes(OneHot(4, dtype=np.int64)(2), np.array([0, 0, 1, 0], np.int64))
    assert OneHot(2)(np.zeros(0, np.uint8)).shape == (0, 2)
    for labels, message in [(np.array([0, 3]), "label 3 is outside \\[0, 3\\)"),
                            (np.array([-1]), "label -1"),
                            (np.array([1.0]), "labels must be integers")]:
        with pytest.raises(DataError, match=message):
            OneHot(3)(labels)
    with pytest.raises(DataError, match="num_classes must be >= 1"):
        OneHot(0)
    with pytest.raises(DataError, match="not a numpy dtype"):
        OneHot(2, dtype="no-such-type")


def test_clip():
    x = np.array([-2.0, 0.5, np.nan, 9.0], np.float32)
    assert same_bytes(Clip(-1.0, 1.0)(x), np.clip(x, -1.0, 1.0))
    assert same_bytes(Clip(min=0.0)(x), np.array([0.0, 0.5, np.nan, 9.0], np.float32))
    assert same_bytes(Clip(max=0)(np.array([-3, 4])), np.array([-3, 0]))
    with pytest.raises(DataError, match="at least one of min and max"):
        Clip()
    with pytest.raises(DataError, match="min \\(2\\) is above max \\(1\\)"):
        Clip(2, 1)
    with pytest.raises(DataError, match="finite real number"):
        Clip(min=float("nan"))


def test_log():
    x = np.array([1.0, 2.0, 1e-30], np.float64)
    assert same_bytes(Log()(x), np.log(x))
    assert same_bytes(Log(offset=1.0)(x), np.log1p(x))
    assert same_bytes(Log(offset=0.5)(x.astype(np.float32)),
                      np.log(x.astype(np.float32) + np.float32(0.5)))
    assert Log()(np.array([1, 4], np.int32)).dtype == np.float32
    assert np.isnan(Log()(np.array([np.nan]))[0])
    with pytest.raises(DataError, match="undefined for x = 0.0"):
        Log()(np.array([1.0, 0.0]))
    with pytest.raises(DataError, match="undefined for x = -2.0"):
        Log(offset=1.0)(np.array([-2.0]))


def test_flatten():
    x = np.arange(24).reshape(2, 3, 4)
    assert same_bytes(Flatten()(x), x.reshape(24))
    assert same_bytes(Flatten(start_dim=1)(x), x.reshape(2, 12))
    assert same_bytes(Flatten(0, 1)(x), x.reshape(6, 4))
    assert same_bytes(Flatten(-2, -1)(x), x.reshape(2, 12))
    assert Flatten()(np.float32(3)).shape == (1,)
    assert Flatten(start_dim=1)(np.zeros((0, 3, 2))).shape == (0, 6)
    with pytest.raises(DataError, match="start_dim=3 is out of range"):
        Flatten(start_dim=3)(x)
    with pytest.raises(DataError, match="comes after end_dim"):
        Flatten(2, 1)(x)


def test_random_noise_is_seeded_and_advances():
    x = np.linspace(0, 1, 6, dtype=np.float32).reshape(2, 3)
    t = RandomNoise(mean=0.5, std=2.0, seed=17)
    rng = np.random.default_rng(17)
    for _ in range(3):  # each call draws the next noise from the seeded generator
        expected = x + rng.normal(0.5, 2.0, size=x.shape).astype(np.float32)
        assert same_bytes(t(x), expected)
    assert same_bytes(RandomNoise(std=0.0, seed=0)(x), x)
    assert RandomNoise(seed=0)(np.zeros(2, np.int64)).dtype == np.float32
    unseeded = RandomNoise(std=1.0)
    assert same_bytes(unseeded(x), RandomNoise(std=1.0, seed=unseeded.seed)(x))
    with pytest.raises(DataError, match="std must not be negative"):
        RandomNoise(std=-1.0)
    with pytest.raises(DataError, match="seed must be >= 0"):
        RandomNoise(seed=-1)


def test_compose_applies_in_order_and_transforms_serve_samples_and_batches():
    t = Compose([Clip(0.0, 10.0), StandardScale([5.0, 5.0], [5.0, 2.5]), Flatten()])
    assert t(np.array([20.0, 0.0])).tolist() == [1.0, -2.0]
    with pytest.raises(DataError, match="transform 1 is not callable"):
        Compose([Flatten(), 3])
    x = np.random.default_rng(1).uniform(1, 9, size=(5, 2))
    ds = MapDataset(ArrayDataset(x, np.arange(5)), Log(), field=0)
    per_sample = next(iter(DataLoader(ds, batch_size=5)))[0]
    assert np.allclose(per_sample, Log()(x), rtol=1e-15)
    for t in (Normalize([1.0, 2.0], [3.0, 4.0], axis=-1), MinMaxScale([0.0, 1.0], [9.0, 9.0]),
              StandardScale([1.0, 2.0], [3.0, 4.0]), Clip(2.0, 3.0)):
        assert same_bytes(t(x), np.stack([t(row) for row in x])), t


def test_transform_reprs_name_their_arguments():
    assert repr(Normalize([0.5], [0.25], axis=-1)) == "Normalize(mean=[0.5], std=[0.25], axis=-1)"
    assert repr(Clip(0, 1)) == "Clip(min=0, max=1)"
    assert "Flatten(start_dim=0, end_dim=-1)" in repr(Compose([Flatten()]))
