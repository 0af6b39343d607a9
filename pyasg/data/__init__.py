"""Data: datasets, samplers, a DataLoader and transforms, in PyTorch's names (torch.utils.data).

Plain Python and numpy, nothing traced: a `DataLoader` yields numpy batches that
go straight into a compiled training step. Randomness is seeded with integers
and counted by epoch (see `pyasg.data.sampler`), so a run replays exactly.

>>> import numpy as np
>>> from pyasg.data import ArrayDataset, DataLoader, random_split
>>> from pyasg.data.transforms import StandardScale
>>> x, y = np.arange(20.0).reshape(10, 2), np.arange(10) % 2
>>> train, test = random_split(ArrayDataset(x, y), [0.8, 0.2], seed=0)
>>> scale = StandardScale.fit(x[train.indices])
>>> batches = [(scale(xb), yb) for xb, yb in DataLoader(train, batch_size=3, shuffle=True,
...                                                      seed=0)]
>>> [len(yb) for _, yb in batches], batches[0][0].dtype.name
([3, 3, 2], 'float64')
"""

from pyasg.data import transforms
from pyasg.data.dataset import (
    ArrayDataset,
    ConcatDataset,
    DataError,
    DataIndexError,
    Dataset,
    MapDataset,
    Subset,
    TensorDataset,
    random_split,
    train_test_split,
)
from pyasg.data.loader import DataLoader, LoaderIterator, default_collate
from pyasg.data.sampler import (
    BatchSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
    SubsetRandomSampler,
    WeightedRandomSampler,
)

__all__ = [
    "ArrayDataset", "BatchSampler", "ConcatDataset", "DataError", "DataIndexError",
    "DataLoader", "Dataset", "LoaderIterator", "MapDataset", "RandomSampler", "Sampler",
    "SequentialSampler", "Subset", "SubsetRandomSampler", "TensorDataset",
    "WeightedRandomSampler", "default_collate", "random_split", "train_test_split",
    "transforms",
]
