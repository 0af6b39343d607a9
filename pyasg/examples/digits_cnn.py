"""A small CNN reads the 8x8 handwritten digits as images (>= 97% test accuracy).

The same data and the same stratified split as `digits_mlp`, seen as 1x8x8 images:
two 3x3 convolutions with ReLU, 2x2 max pooling, and two Linear layers. Weight sharing
over positions lets it beat the MLP with fewer weights in its first layers. One traced
step holds the forward pass, `value_and_grad` and the Adam update.

    python pyasg/examples/digits_cnn.py --steps 600

>>> model = make_model()
>>> model(model.init(pyasg.random.key(0)), np.zeros((2, 1, 8, 8), np.float32)).shape
(2, 10)
"""

from __future__ import annotations

import numpy as np

import pyasg
from pyasg.data import ArrayDataset, DataLoader
from pyasg.examples._common import (
    example_parser,
    finish,
    to_numpy,
    train_loop,
)
from pyasg.examples.digits_mlp import forever, load_digits_split
from pyasg.metrics import accuracy
from pyasg.nn import Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential
from pyasg.nn.losses import cross_entropy
from pyasg.optim import Adam, CosineAnnealingLR


def make_model() -> Sequential:
    """[N, 1, 8, 8] -> conv 16 -> conv 32 -> max pool -> [N, 512] -> 64 -> 10 logits."""
    return Sequential(Conv2d(1, 16, 3, padding=1), ReLU(),
                      Conv2d(16, 32, 3, padding=1), ReLU(), MaxPool2d(2), Flatten(),
                      Linear(32 * 4 * 4, 64), ReLU(), Linear(64, 10))


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Train on the training split; print and return losses, train and test accuracy."""
    parser = example_parser(__doc__.splitlines()[0], steps=600)
    parser.add_argument("--lr", type=float, default=0.01,
                        help="Adam's initial learning rate (default 0.01)")
    parser.add_argument("--batch-size", type=int, default=64, help="batch size (default 64)")
    args = parser.parse_args(argv)

    x_train, y_train, x_test, y_test = load_digits_split(args.seed)
    x_train, x_test = x_train.reshape(-1, 1, 8, 8), x_test.reshape(-1, 1, 8, 8)
    # drop_last: every batch has one shape, so the step is traced and compiled once.
    loader = DataLoader(ArrayDataset(x_train, y_train), batch_size=args.batch_size,
                        shuffle=True, drop_last=True, seed=args.seed)
    model = make_model()
    # The rate anneals to zero over the run: the last steps settle instead of jitter.
    opt = Adam(schedule=CosineAnnealingLR(args.lr, T_max=args.steps))
    params = model.init(pyasg.random.key(args.seed))
    state = opt.init(params)

    def loss_fn(params: dict, x: object, y: object) -> object:
        return cross_entropy(model(params, x), y)

    @pyasg.jit(backend=args.backend, name="digits_cnn_train_step")
    def train_step(params: dict, state: dict, x: object, y: object) -> tuple:
        loss, grads = pyasg.value_and_grad(loss_fn)(params, x, y)
        params, state = opt.update(grads, state, params)
        return params, state, loss

    batches = forever(loader)
    params, state, first_loss, loss = train_loop("digits_cnn", args.steps, train_step,
                                               params, state, lambda step: next(batches))

    params = to_numpy(params)
    train_pred = np.asarray(model(params, x_train)).argmax(axis=1)
    test_pred = np.asarray(model(params, x_test)).argmax(axis=1)
    return finish("digits_cnn", {"first_loss": first_loss, "final_loss": loss,
                                 "accuracy": accuracy(y_train, train_pred),
                                 "test_accuracy": accuracy(y_test, test_pred)})


if __name__ == "__main__":
    main()
