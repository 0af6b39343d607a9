"""A small CNN built from pyasg.nn learns to tell horizontal from vertical stripes with a
plain SGD step (value_and_grad + tree_map) traced into one graph: the loss falls by a
stated factor and every parameter, each conv weight in particular, moves."""

from __future__ import annotations

import numpy as np

import pyasg
from pyasg.nn.basic import Flatten, ReLU, Sequential, SpatialDropout
from pyasg.nn.conv import Conv2d, GlobalAvgPool2d, MaxPool2d
from pyasg.nn.layers import Linear
from pyasg.nn.norm import BatchNorm2d
from pyasg.trace.tree import flatten_with_paths


def stripes(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n noisy 8x8 images [n, 1, 8, 8]: label 0 = horizontal stripes, 1 = vertical,
    with random stripe period (2..4 pixels) and phase."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    period = rng.integers(2, 5, n)[:, None, None]
    phase = rng.uniform(0, 2 * np.pi, n)[:, None, None]
    i, j = np.meshgrid(np.arange(8), np.arange(8), indexing="ij")
    coord = np.where(labels[:, None, None] == 0, i, j)  # rows vary: horizontal stripes
    images = np.sin(2 * np.pi * coord / period + phase) + 0.3 * rng.standard_normal((n, 8, 8))
    return images[:, None].astype(np.float32), labels


def cross_entropy(logits: object, labels: np.ndarray) -> object:
    onehot = np.eye(2, dtype=np.float32)[labels]
    return -pyasg.mean(pyasg.sum(pyasg.log_softmax(logits, axis=-1) * onehot, axis=-1))


def leaves(params: dict) -> dict[str, np.ndarray]:
    return {path: np.array(leaf) for path, leaf in flatten_with_paths(params)[0]}


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float((np.asarray(logits).argmax(-1) == labels).mean())


def test_small_cnn_learns_stripes_and_every_conv_weight_moves():
    model = Sequential(Conv2d(1, 8, 3, padding=1), ReLU(), MaxPool2d(2),
                       Conv2d(8, 16, 3, padding=1), ReLU(), GlobalAvgPool2d(), Flatten(),
                       Linear(16, 2))
    params = model.init(pyasg.random.key(0))
    before = leaves(params)
    x, y = stripes(64, seed=1)

    def loss_fn(params, x):
        return cross_entropy(model(params, x), y)

    @pyasg.trace
    def step(params, x, lr):
        loss, grads = pyasg.value_and_grad(loss_fn)(params, x)
        return pyasg.tree_map(lambda p, g: p - lr * g, params, grads), loss

    losses = []
    for _ in range(60):
        params, loss = step(params, x, np.float32(0.5))
        losses.append(float(loss))
    assert step.cache_size == 1  # one trace, one compile, every step reuses it

    # chance is log 2 = 0.69; learning takes the loss below a tenth of where it began
    # (with this seed it reaches about 0.002 after 60 steps: a wide margin)
    assert losses[-1] < 0.1 * losses[0], (losses[0], losses[-1])
    x_test, y_test = stripes(200, seed=2)
    assert accuracy(model(params, x_test), y_test) >= 0.9

    after = leaves(params)
    assert list(after) == ["0.weight", "0.bias", "3.weight", "3.bias", "7.weight", "7.bias"]
    for name, old in before.items():
        moved = np.linalg.norm(after[name] - old) / np.linalg.norm(old)
        assert moved > 0.01, f"{name} barely moved ({moved:.2e}): did it get a gradient?"
    for name in ("0.weight", "3.weight"):  # every filter of every conv layer learned
        per_filter = np.abs(after[name] - before[name]).reshape(len(before[name]), -1).max(1)
        assert (per_filter > 0).all(), f"{name}: filters {np.flatnonzero(per_filter == 0)}"


def test_cnn_with_batchnorm_and_spatial_dropout_trains_in_one_traced_step():
    """State (running statistics) and the dropout key go in and come out of the step."""
    model = Sequential(Conv2d(1, 8, 3, padding=1), BatchNorm2d(8), ReLU(), MaxPool2d(2),
                       SpatialDropout(0.1), Conv2d(8, 8, 3, padding=1), ReLU(),
                       GlobalAvgPool2d(), Flatten(), Linear(8, 2))
    params, state = model.init(pyasg.random.key(3)), model.init_state()
    before = leaves(params)
    x, y = stripes(64, seed=4)

    def loss_fn(params, state, x, key):
        logits, new_state = model(params, x, key=key, training=True, state=state)
        return cross_entropy(logits, y), new_state

    @pyasg.trace
    def step(params, state, x, key, lr):
        (loss, new_state), grads = pyasg.value_and_grad(loss_fn, has_aux=True)(
            params, state, x, key)
        return pyasg.tree_map(lambda p, g: p - lr * g, params, grads), new_state, loss

    key, losses = pyasg.random.key(5), []
    for _ in range(40):
        key, sub = pyasg.random.split(key)
        params, state, loss = step(params, state, x, sub, np.float32(0.5))
        losses.append(float(loss))
    assert step.cache_size == 1
    # dropout makes single losses noisy: compare the means of the first and last five
    # (about 0.6 and 0.03 with these seeds)
    assert np.mean(losses[-5:]) < 0.25 * np.mean(losses[:5]), (losses[:5], losses[-5:])
    assert int(state["1"]["num_batches_tracked"]) == 40
    assert np.all(state["1"]["running_var"] != 1.0)
    after = leaves(params)
    for name, old in before.items():
        assert not np.array_equal(after[name], old), f"{name} did not move"

    # eval mode: running statistics, no key, any batch size (1 included)
    logits, _ = model(params, x[:1], training=False, state=state)
    assert logits.shape == (1, 2)
    logits, _ = model(params, x, training=False, state=state)
    assert accuracy(logits, y) >= 0.9
