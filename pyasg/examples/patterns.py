"""A small CNN tells noisy 8x8 stripes (horizontal, vertical, diagonal) from checkerboards.

The 8x8 images are generated here: square-wave stripes or checkerboards with a random
stripe width, a random phase (shift) and Gaussian noise, so no single pixel gives the
class away and the network must learn oriented edge detectors. Training reads
minibatches from a `DataLoader`; accuracy is measured on images it never saw.

    python pyasg/examples/patterns.py --steps 600

>>> x, y = make_patterns(8, seed=0)
>>> x.shape, x.dtype.name, sorted(set(y.tolist())) <= [0, 1, 2, 3]
((8, 1, 8, 8), 'float32', True)
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

import pyasg
from pyasg.data import ArrayDataset, DataLoader
from pyasg.examples._common import (
    example_parser,
    finish,
    to_numpy,
    train_loop,
)
from pyasg.metrics import accuracy
from pyasg.nn import Conv2d, Flatten, GlobalAvgPool2d, Linear, MaxPool2d, ReLU, Sequential
from pyasg.nn.losses import cross_entropy
from pyasg.optim import Adam

CLASSES = ("horizontal", "vertical", "diagonal", "checkerboard")
SIZE = 8


def _square_wave(coord: np.ndarray, width: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """+1 / -1 bands `width` pixels wide along `coord`, shifted by `shift` pixels."""
    return np.where(((coord + shift) // width) % 2 == 0, 1.0, -1.0)


def make_patterns(n: int, seed: int, noise: float = 0.6) -> tuple[np.ndarray, np.ndarray]:
    """n noisy 8x8 images [n, 1, 8, 8] (float32) and their labels [n] (indices of CLASSES).

    Stripes are 1 to 3 pixels wide; diagonal stripes (either diagonal) and checkerboard
    squares 2 or 3, since a checkerboard of 1-pixel squares *is* 1-pixel diagonal stripes.

    >>> x, y = make_patterns(2000, seed=1, noise=0.0)
    >>> np.unique(x).tolist(), bool(np.bincount(y).min() > 400)
    ([-1.0, 1.0], True)
    """
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(CLASSES), n)
    shape = (n, 1, 1)
    narrow = labels[:, None, None] < 2  # horizontal and vertical may be 1 pixel wide
    width = np.where(narrow, rng.integers(1, 4, shape), rng.integers(2, 4, shape))
    shift_a = rng.integers(0, 6, shape)
    shift_b = rng.integers(0, 6, shape)
    direction = rng.choice([-1, 1], shape)
    i, j = np.meshgrid(np.arange(SIZE), np.arange(SIZE), indexing="ij")
    rows = _square_wave(i, width, shift_a)
    columns = _square_wave(j, width, shift_a)
    diagonal = _square_wave(i + direction * j + SIZE, width, shift_a)
    checker = _square_wave(i, width, shift_a) * _square_wave(j, width, shift_b)
    images = np.select([labels[:, None, None] == k for k in range(4)],
                       [rows, columns, diagonal, checker])
    images = images + noise * rng.standard_normal(images.shape)
    return images[:, None].astype(np.float32), labels


def make_model() -> Sequential:
    """Two 3x3 convolutions (8 and 16 filters), max pooling, global average, Linear(16, 4).

    >>> model = make_model()
    >>> model(model.init(pyasg.random.key(0)), np.zeros((2, 1, 8, 8), np.float32)).shape
    (2, 4)
    """
    return Sequential(Conv2d(1, 8, 3, padding=1), ReLU(), MaxPool2d(2),
                      Conv2d(8, 16, 3, padding=1), ReLU(), GlobalAvgPool2d(), Flatten(),
                      Linear(16, len(CLASSES)))


def forever(loader: DataLoader) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The loader's batches, epoch after epoch (each epoch in a new order)."""
    while True:
        yield from loader


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Train on 2000 generated images, test on 1000 others; return losses and accuracies."""
    parser = example_parser(__doc__.splitlines()[0], steps=600)
    parser.add_argument("--lr", type=float, default=0.01,
                        help="Adam learning rate (default 0.01)")
    parser.add_argument("--batch-size", type=int, default=64, help="batch size (default 64)")
    args = parser.parse_args(argv)

    # Train and test images come from different streams of the same seed.
    x_train, y_train = make_patterns(2000, seed=2 * args.seed)
    x_test, y_test = make_patterns(1000, seed=2 * args.seed + 1)
    # drop_last: every batch has one shape, so the step is traced and compiled once.
    loader = DataLoader(ArrayDataset(x_train, y_train), batch_size=args.batch_size,
                        shuffle=True, drop_last=True, seed=args.seed)
    model = make_model()
    opt = Adam(lr=args.lr)
    params = model.init(pyasg.random.key(args.seed))
    state = opt.init(params)

    def loss_fn(params: dict, x: object, y: object) -> object:
        return cross_entropy(model(params, x), y)

    @pyasg.jit(backend=args.backend, name="patterns_train_step")
    def train_step(params: dict, state: dict, x: object, y: object) -> tuple:
        loss, grads = pyasg.value_and_grad(loss_fn)(params, x, y)
        params, state = opt.update(grads, state, params)
        return params, state, loss

    batches = forever(loader)
    params, state, first_loss, loss = train_loop("patterns", args.steps, train_step,
                                               params, state, lambda step: next(batches))

    params = to_numpy(params)
    train_pred = np.asarray(model(params, x_train)).argmax(axis=1)
    test_pred = np.asarray(model(params, x_test)).argmax(axis=1)
    return finish("patterns", {"first_loss": first_loss, "final_loss": loss,
                               "accuracy": accuracy(y_train, train_pred),
                               "test_accuracy": accuracy(y_test, test_pred)})


if __name__ == "__main__":
    main()
