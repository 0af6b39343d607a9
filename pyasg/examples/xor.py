"""A 2-8-1 MLP (tanh, then a sigmoid output) learns XOR with binary cross entropy.

XOR is the classic problem a single linear layer cannot solve: the hidden layer has
to bend the plane. The whole step (forward, `value_and_grad`, Adam update) is one
traced graph; the four predictions are printed at the end.

    python pyasg/examples/xor.py --steps 300

>>> metrics = main(["--steps", "300"])  # doctest: +ELLIPSIS
xor(0, 0) = 0...
>>> metrics["accuracy"]
1.0
"""

from __future__ import annotations

import numpy as np

import pyasg
from pyasg.examples._common import (
    example_parser,
    finish,
    to_numpy,
    train_loop,
)
from pyasg.metrics import accuracy
from pyasg.nn import Linear, Sequential, Sigmoid, Tanh
from pyasg.nn.losses import binary_cross_entropy
from pyasg.optim import Adam

#: The four inputs and their XOR.
X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
Y = np.array([[0], [1], [1], [0]], dtype=np.float32)


def make_model(hidden: int = 8) -> Sequential:
    """2 -> hidden (tanh) -> 1 (sigmoid): outputs are probabilities of "1".

    >>> params = make_model().init(pyasg.random.key(0))
    >>> make_model()(params, X).shape
    (4, 1)
    """
    return Sequential(Linear(2, hidden), Tanh(), Linear(hidden, 1), Sigmoid())


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Train on the four XOR rows; print each prediction; return losses and accuracy."""
    parser = example_parser(__doc__.splitlines()[0], steps=300)
    parser.add_argument("--lr", type=float, default=0.05, help="Adam learning rate "
                        "(default 0.05)")
    args = parser.parse_args(argv)

    model = make_model()
    opt = Adam(lr=args.lr)
    params = model.init(pyasg.random.key(args.seed))
    state = opt.init(params)

    def loss_fn(params: dict, x: object, y: object) -> object:
        return binary_cross_entropy(model(params, x), y)

    @pyasg.jit(backend=args.backend, name="xor_train_step")
    def train_step(params: dict, state: dict, x: object, y: object) -> tuple:
        loss, grads = pyasg.value_and_grad(loss_fn)(params, x, y)
        params, state = opt.update(grads, state, params)
        return params, state, loss

    params, state, first_loss, loss = train_loop("xor", args.steps, train_step,
                                               params, state, lambda step: (X, Y))

    # Evaluated eagerly: the layers run on numpy arrays as well as on traced values.
    probs = np.asarray(model(to_numpy(params), X))[:, 0]
    for (a, b), p in zip(X.astype(int), probs):
        print(f"xor({a}, {b}) = {p:.3f}")
    return finish("xor", {"first_loss": first_loss, "final_loss": loss,
                          "accuracy": accuracy(Y[:, 0].astype(int), (probs > 0.5).astype(int))})


if __name__ == "__main__":
    main()
