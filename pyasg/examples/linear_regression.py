"""One Linear(1, 1) layer learns y = 2x + 1 from noisy samples (SGD, squared error).

The smallest complete training loop: a `Linear` layer, `mse_loss`, SGD, and one
traced step (`value_and_grad` and the optimiser update in one graph, compiled once).

    python pyasg/examples/linear_regression.py --steps 200

>>> metrics = main(["--steps", "60"])  # doctest: +ELLIPSIS
linear_regression: first_loss ... weight ... bias ...
>>> abs(metrics["weight"] - 2.0) < 0.1 and abs(metrics["bias"] - 1.0) < 0.1
True
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
from pyasg.nn import Linear
from pyasg.nn.losses import mse_loss
from pyasg.optim import SGD

TRUE_WEIGHT, TRUE_BIAS, NOISE = 2.0, 1.0, 0.05


def make_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n points x ~ U(-1, 1) with y = 2x + 1 + N(0, 0.05²), as float32 columns [n, 1].

    >>> x, y = make_data(4, seed=0)
    >>> x.shape, y.dtype.name
    ((4, 1), 'float32')
    """
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, (n, 1))
    y = TRUE_WEIGHT * x + TRUE_BIAS + NOISE * rng.standard_normal((n, 1))
    return x.astype(np.float32), y.astype(np.float32)


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Fit the line; print and return the learned weight and bias and the losses.

    >>> main(["--steps", "1"])["first_loss"] > 0  # doctest: +ELLIPSIS
    linear_regression: ...
    True
    """
    parser = example_parser(__doc__.splitlines()[0], steps=100)
    parser.add_argument("--lr", type=float, default=0.5, help="SGD learning rate (default 0.5)")
    args = parser.parse_args(argv)

    x, y = make_data(256, args.seed)
    model = Linear(1, 1)
    opt = SGD(lr=args.lr)
    params = model.init(pyasg.random.key(args.seed))
    state = opt.init(params)

    def loss_fn(params: dict, x: object, y: object) -> object:
        return mse_loss(model(params, x), y)

    # Forward, gradient and update are one graph: traced once, run every step.
    @pyasg.jit(backend=args.backend, name="linear_regression_train_step")
    def train_step(params: dict, state: dict, x: object, y: object) -> tuple:
        loss, grads = pyasg.value_and_grad(loss_fn)(params, x, y)
        params, state = opt.update(grads, state, params)
        return params, state, loss

    params, state, first_loss, loss = train_loop("linear_regression", args.steps, train_step,
                                               params, state, lambda step: (x, y))

    params = to_numpy(params)
    return finish("linear_regression", {
        "first_loss": first_loss, "final_loss": loss,
        "weight": float(params["weight"][0, 0]), "bias": float(params["bias"][0]),
    })


if __name__ == "__main__":
    main()
