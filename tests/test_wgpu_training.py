"""Whole training steps on wgpu equal the reference backend: a TransformerBlock and a
small CNN."""

import numpy as np
from wgpu_util import WGPU, require_wgpu

import pyasg
from pyasg import nn

pytestmark = WGPU


def _flat(tree):  # noqa: ANN001, ANN202
    return [np.asarray(leaf) for leaf in pyasg.tree_leaves(tree)]


def test_transformer_block_loss_and_gradients_match_the_reference_within_1e_4():
    require_wgpu()
    block = nn.TransformerBlock(32, 4, causal=True)
    params = block.init(pyasg.random.key(0))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 8, 32)).astype(np.float32)
    y = rng.standard_normal((2, 8, 32)).astype(np.float32)
    pad = np.zeros((2, 8), bool)
    pad[1, 6:] = True

    def loss_fn(params, x, y, pad):  # noqa: ANN001, ANN202
        return pyasg.mean((block(params, x, key_padding_mask=pad) - y) ** 2)

    def step(params, x, y, pad):  # noqa: ANN001, ANN202
        return pyasg.value_and_grad(loss_fn)(params, x, y, pad)

    loss_np, grads_np = pyasg.jit(step, backend="reference")(params, x, y, pad)
    loss_gpu, grads_gpu = pyasg.jit(step, backend="wgpu")(params, x, y, pad)
    assert abs(float(loss_gpu) - float(loss_np)) <= 1e-4 * max(1.0, abs(float(loss_np)))
    for g, w in zip(_flat(grads_gpu), _flat(grads_np)):
        np.testing.assert_allclose(g, w, atol=1e-4, rtol=1e-4)


def test_training_steps_keep_weights_on_the_gpu_and_follow_the_reference():
    require_wgpu()
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(4 * 4 * 4, 3))
    params = model.init(pyasg.random.key(1))
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 1, 8, 8)).astype(np.float32)
    labels = rng.integers(0, 3, 6).astype(np.int32)

    def step(params, x, labels):  # noqa: ANN001, ANN202
        def loss_fn(params):  # noqa: ANN001, ANN202
            return pyasg.losses.cross_entropy(model(params, x), labels)

        loss, grads = pyasg.value_and_grad(loss_fn)(params)
        return pyasg.tree_map(lambda p, g: p - 0.1 * g, params, grads), loss

    cpu, gpu = pyasg.jit(step, backend="reference"), pyasg.jit(step, backend="wgpu")
    p_cpu, p_gpu = params, params
    for _ in range(5):
        p_cpu, loss_cpu = cpu(p_cpu, x, labels)
        p_gpu, loss_gpu = gpu(p_gpu, x, labels)
        np.testing.assert_allclose(float(loss_gpu), float(loss_cpu), rtol=1e-4, atol=1e-5)
    for g, w in zip(_flat(p_gpu), _flat(p_cpu)):
        np.testing.assert_allclose(g, w, atol=1e-4, rtol=1e-4)
