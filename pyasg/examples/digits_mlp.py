"""A 64-128-10 MLP reads scikit-learn's 8x8 handwritten digits (>= 95% test accuracy).

The 1797 images of scikit-learn's bundled digits set (``sklearn.datasets.load_digits``:
no download) are split once, stratified by class and fixed by the seed, into 75% for
training and 25% for testing. Minibatches of 64 come from a shuffling `DataLoader`;
one traced step holds the forward pass, `value_and_grad` and the Adam update.

    python pyasg/examples/digits_mlp.py --steps 800

>>> x_train, y_train, x_test, y_test = load_digits_split(seed=0)
>>> x_train.shape, x_test.shape, np.bincount(y_test).tolist()[:3]
((1347, 64), (450, 64), [44, 46, 44])
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

import pyasg
from pyasg.data import ArrayDataset, DataLoader
from pyasg.errors import PyasgError
from pyasg.examples._common import (
    example_parser,
    finish,
    to_numpy,
    train_loop,
)
from pyasg.metrics import accuracy
from pyasg.nn import Linear, ReLU, Sequential
from pyasg.nn.losses import cross_entropy
from pyasg.optim import Adam, CosineAnnealingLR


class MissingDependencyError(PyasgError):
    """An example needs a package that is not installed."""


def load_digits_split(seed: int = 0, test_fraction: float = 0.25
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's digits as `(x_train, y_train, x_test, y_test)`, pixels scaled to [0, 1].

    x is float32 [N, 64] (rows of the 8x8 image), y int64 class labels. The split is
    stratified: each digit gives round(test_fraction * its count) images to the test
    set, chosen by a permutation from `seed`. Raises `MissingDependencyError` (a
    `PyasgError`) when scikit-learn is not installed.

    >>> x_train, _, _, y_test = load_digits_split(seed=3)
    >>> bool((y_test == load_digits_split(seed=3)[3]).all()), float(x_train.max())
    (True, 1.0)
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise MissingDependencyError(
            "the digits examples read scikit-learn's bundled 8x8 digits; install it with "
            "`pip install scikit-learn`") from None
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)  # pixel values are 0..16
    y = digits.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    test = []
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        test.extend(members[:round(test_fraction * len(members))])
    is_test = np.zeros(len(y), bool)
    is_test[test] = True
    return x[~is_test], y[~is_test], x[is_test], y[is_test]


def forever(loader: DataLoader) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The loader's batches, epoch after epoch (each epoch in a new order)."""
    while True:
        yield from loader


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Train on the training split; print and return losses, train and test accuracy."""
    parser = example_parser(__doc__.splitlines()[0], steps=800)
    parser.add_argument("--lr", type=float, default=3e-3,
                        help="Adam's initial learning rate (default 0.003)")
    parser.add_argument("--batch-size", type=int, default=64, help="batch size (default 64)")
    parser.add_argument("--hidden", type=int, default=128, help="hidden width (default 128)")
    args = parser.parse_args(argv)

    x_train, y_train, x_test, y_test = load_digits_split(args.seed)
    # drop_last: every batch has one shape, so the step is traced and compiled once.
    loader = DataLoader(ArrayDataset(x_train, y_train), batch_size=args.batch_size,
                        shuffle=True, drop_last=True, seed=args.seed)
    model = Sequential(Linear(64, args.hidden), ReLU(), Linear(args.hidden, 10))
    # The rate anneals to zero over the run: the last steps settle instead of jitter.
    opt = Adam(schedule=CosineAnnealingLR(args.lr, T_max=args.steps))
    params = model.init(pyasg.random.key(args.seed))
    state = opt.init(params)

    def loss_fn(params: dict, x: object, y: object) -> object:
        return cross_entropy(model(params, x), y)

    @pyasg.jit(backend=args.backend, name="digits_mlp_train_step")
    def train_step(params: dict, state: dict, x: object, y: object) -> tuple:
        loss, grads = pyasg.value_and_grad(loss_fn)(params, x, y)
        params, state = opt.update(grads, state, params)
        return params, state, loss

    batches = forever(loader)
    params, state, first_loss, loss = train_loop("digits_mlp", args.steps, train_step,
                                               params, state, lambda step: next(batches))

    params = to_numpy(params)
    train_pred = np.asarray(model(params, x_train)).argmax(axis=1)
    test_pred = np.asarray(model(params, x_test)).argmax(axis=1)
    return finish("digits_mlp", {"first_loss": first_loss, "final_loss": loss,
                                 "accuracy": accuracy(y_train, train_pred),
                                 "test_accuracy": accuracy(y_test, test_pred)})


if __name__ == "__main__":
    main()
