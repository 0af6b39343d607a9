"""Real graphs for the viewer's tests: the demo's (`pyasg demo`) and the digits CNN's.

Each is traced by the example's own code: the demo's `charlm.Trainer` at small sizes
(one step publishes its graphs, caught here), the CNN's `make_model` through
`value_and_grad` of its cross-entropy.
"""

from __future__ import annotations

import functools

import numpy as np

import pyasg
from pyasg import events
from pyasg.asg import Graph
from pyasg.examples import charlm, digits_cnn
from pyasg.nn.losses import cross_entropy

#: The demo's sizes here: two blocks as the demo has, narrower and shorter.
DEMO_CONFIG = charlm.ModelConfig(context=16, embed_dim=32, num_heads=2, num_layers=2)


@functools.cache
def demo_graphs() -> dict[tuple[str, str], Graph]:
    """Every graph one training step of the demo publishes, by (name, kind): the loss's
    forward and gradient graphs, and the whole step's."""
    got: dict[tuple[str, str], Graph] = {}
    stop = events.subscribe(lambda e: got.setdefault((e.name, e.kind), e.graph),
                            events.GraphReady)
    try:
        trainer = charlm.Trainer(DEMO_CONFIG, data=np.arange(2000, dtype=np.int32) % 90)
        trainer.train_step()
    finally:
        stop()
    return got


def demo_forward() -> Graph:
    return demo_graphs()[("loss_fn", "forward")]


def demo_gradient() -> Graph:
    return demo_graphs()[("loss_fn", "gradient")]


@functools.cache
def cnn_gradient() -> Graph:
    """The digits CNN's loss and gradients for a batch of 4 images."""
    model = digits_cnn.make_model()
    params = model.init(pyasg.random.key(0))

    def loss(p, x, y):
        return pyasg.value_and_grad(lambda p: cross_entropy(model(p, x), y))(p)

    x = np.zeros((4, 1, 8, 8), np.float32)
    return pyasg.make_graph(loss)(params, x, np.zeros(4, np.int32))


@functools.cache
def cnn_forward() -> Graph:
    model = digits_cnn.make_model()
    params = model.init(pyasg.random.key(0))
    return pyasg.make_graph(lambda p, x: model(p, x))(params, np.zeros((4, 1, 8, 8), np.float32))
