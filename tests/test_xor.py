"""An XOR MLP 2-8-1 written with the core alone learns: loss < 1e-4 with a fixed seed."""

import numpy as np

import pyasg


def init(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "w1": rng.normal(0.0, 1.0, (2, 8)),
        "b1": np.zeros(8),
        "w2": rng.normal(0.0, 1.0, (8, 1)),
        "b2": np.zeros(1),
    }


def loss_fn(params, x, y):
    hidden = pyasg.tanh(x @ params["w1"] + params["b1"])
    prediction = pyasg.sigmoid(hidden @ params["w2"] + params["b2"])
    return pyasg.mean((prediction - y) ** 2)


@pyasg.trace
def train_step(params, x, y, lr):
    loss, grads = pyasg.value_and_grad(loss_fn)(params, x, y)
    new_params = pyasg.tree_map(lambda p, g: p - lr * g, params, grads)
    return new_params, loss


def test_xor_mlp_learns_with_a_traced_sgd_step():
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
    y = np.array([[0], [1], [1], [0]], dtype=np.float64)
    params = init(seed=0)
    first = None
    for _ in range(3000):
        params, loss = train_step(params, x, y, 2.0)
        first = float(loss) if first is None else first
    assert train_step.cache_size == 1  # one trace, one compile, 3000 runs
    assert float(loss) < 1e-4, (first, float(loss))
    # the trained network computes XOR
    hidden = np.tanh(x @ params["w1"] + params["b1"])
    out = 1 / (1 + np.exp(-(hidden @ params["w2"] + params["b2"])))
    np.testing.assert_array_equal(out.round(), y)
