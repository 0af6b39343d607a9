"""User pytrees: `register_pytree_node` and `register_dataclass` (JAX's signatures), through
flatten/unflatten, dotted paths, `tree_map`, `grad`, `jit` (whose cache keys on the tree
structure and static fields), `vmap` and an optimiser; and the errors for types that are
not registered or register badly.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import pyasg
from pyasg.optim import SGD, Adam
from pyasg.trace.tree import TreeError, flatten_with_paths


@pyasg.register_dataclass
@dataclasses.dataclass(frozen=True)
class Params:
    """A linear layer's parameters, and a static activation name."""

    w: Any
    b: Any
    act: str = dataclasses.field(default="tanh", metadata={"static": True})


@dataclasses.dataclass
class Momentum:
    """An optimiser state of our own: registered with explicit fields."""

    velocity: Any
    step: Any
    beta: float = 0.9


pyasg.register_dataclass(Momentum, data_fields=["velocity", "step"], meta_fields=["beta"])


class Box:
    """A plain class made a pytree by hand: two children and a static label."""

    def __init__(self, left: Any, right: Any, label: str) -> None:
        self.left, self.right, self.label = left, right, label


pyasg.register_pytree_node(Box, lambda b: ((b.left, b.right), b.label),
                           lambda label, kids: Box(kids[0], kids[1], label))


class Pair(NamedTuple):
    first: Any
    second: Any


def forward(p: Params, x: Any) -> Any:
    y = x @ p.w + p.b
    return pyasg.tanh(y) if p.act == "tanh" else pyasg.relu(y)


def loss(p: Params, x: Any, y: Any) -> Any:
    return ((forward(p, x) - y) ** 2).mean()


def params(seed: int = 0, act: str = "tanh") -> Params:
    rng = np.random.default_rng(seed)
    return Params(rng.normal(size=(3, 2)), rng.normal(size=2), act)


# --------------------------------------------------------------------------- structure


def test_dataclass_fields_are_children_named_by_field_and_static_fields_are_structure() -> None:
    p = params()
    pairs, tree = flatten_with_paths({"layer": p})
    assert [path for path, _ in pairs] == ["layer.w", "layer.b"]
    assert pyasg.unflatten(tree, [leaf for _, leaf in pairs]) == {"layer": p}
    assert pyasg.flatten(params(act="relu"))[1] != pyasg.flatten(p)[1]  # static: structure
    assert pyasg.flatten(params(seed=1))[1] == pyasg.flatten(p)[1]  # data: leaves only
    assert "act='tanh'" in repr(tree)


def test_flatten_order_and_leaves_are_jaxs() -> None:
    jax = pytest.importorskip("jax")

    @dataclasses.dataclass
    class State:
        velocity: Any
        step: Any
        beta: float = dataclasses.field(default=0.9, metadata={"static": True})

    pyasg.register_dataclass(State)
    jax.tree_util.register_dataclass(State)
    # JAX orders dict keys by sorting, pyasg by insertion: sorted keys agree on both
    tree = {"a": Pair(5, [6, None]), "m": State((1, [2, 3]), 4, 0.5), "n": None}
    assert pyasg.tree_leaves(tree) == jax.tree_util.tree_leaves(tree)
    doubled = pyasg.tree_map(lambda v: v * 2, tree)
    assert doubled == jax.tree_util.tree_map(lambda v: v * 2, tree)


@given(st.lists(st.floats(-5, 5), min_size=2, max_size=2), st.sampled_from(["a", "b"]))
def test_custom_nodes_round_trip_through_tree_map(values: list[float], label: str) -> None:
    box = Box(Pair(values[0], [values[1]]), Momentum(values[0], 1, 0.5), label)
    doubled = pyasg.tree_map(lambda v: v * 2, box)
    assert isinstance(doubled, Box) and doubled.label == label
    assert doubled.left == Pair(values[0] * 2, [values[1] * 2])
    assert doubled.right.velocity == values[0] * 2 and doubled.right.beta == 0.5
    assert [p for p, _ in flatten_with_paths(box)[0]] == ["0.first", "0.second.0",
                                                          "1.velocity", "1.step"]


# --------------------------------------------------------------------------- transforms


def test_grad_returns_the_dataclass_and_equals_the_dict_version() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    p = params()
    g = pyasg.grad(loss)(p, x, y)
    assert isinstance(g, Params) and g.act == "tanh"

    def dict_loss(d, x, y):  # noqa: ANN001, ANN202
        return ((pyasg.tanh(x @ d["w"] + d["b"]) - y) ** 2).mean()

    want = pyasg.grad(dict_loss)({"w": p.w, "b": p.b}, x, y)
    np.testing.assert_allclose(g.w, want["w"], rtol=1e-12)
    np.testing.assert_allclose(g.b, want["b"], rtol=1e-12)


def test_custom_class_round_trips_through_jit_and_grad() -> None:
    f = pyasg.jit(lambda box: Box(box.right, box.left * 2.0, box.label + "!"))
    out = f(Box(np.ones(2), np.arange(3.0), "x"))
    assert isinstance(out, Box) and out.label == "x!"
    np.testing.assert_array_equal(out.left, np.arange(3.0))
    np.testing.assert_array_equal(out.right, np.full(2, 2.0))
    g = pyasg.grad(lambda box: (box.left ** 2).sum() + box.right.sum())(
        Box(np.arange(3.0), np.ones(2), "y"))
    assert isinstance(g, Box) and g.label == "y"
    np.testing.assert_array_equal(g.left, 2 * np.arange(3.0))
    np.testing.assert_array_equal(g.right, np.ones(2))


def test_jit_retraces_on_a_new_static_field_and_not_on_new_data() -> None:
    traced = []

    def f(p: Params, x: Any) -> Any:
        traced.append(p.act)
        return forward(p, x)

    jitted = pyasg.jit(f)
    x = np.ones((4, 3))
    jitted(params(0), x)
    jitted(params(1), x)
    assert traced == ["tanh"] and jitted.cache_size == 1
    relu = jitted(params(0, "relu"), x)
    assert traced == ["tanh", "relu"] and jitted.cache_size == 2
    np.testing.assert_allclose(relu, np.maximum(x @ params(0).w + params(0).b, 0))


def test_vmap_over_a_dataclass_batch_with_dataclass_in_axes() -> None:
    @pyasg.register_dataclass
    @dataclasses.dataclass
    class Batch:
        x: Any
        y: Any

    rng = np.random.default_rng(2)
    batch = Batch(rng.normal(size=(6, 3)), rng.normal(size=(2,)))
    p = params()
    per_example = pyasg.vmap(lambda p, b: loss(p, b.x[None], b.y[None]),
                             in_axes=(None, Batch(0, None)))(p, batch)
    want = [loss(p, batch.x[i:i + 1], batch.y[None]) for i in range(6)]
    np.testing.assert_allclose(per_example, want, rtol=1e-12)
    grads = pyasg.vmap(pyasg.grad(lambda p, x: forward(p, x).sum()), in_axes=(None, 0))(
        p, batch.x)
    assert isinstance(grads, Params) and grads.w.shape == (6, 3, 2)


# --------------------------------------------------------------------------- training


def _train(p: Any, opt: Any, steps: int, as_dict: bool) -> tuple[Any, list[float]]:
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(16, 3)), rng.normal(size=(16, 2)) * 0.5

    if as_dict:
        def objective(d, x, y):  # noqa: ANN001, ANN202
            return ((pyasg.tanh(x @ d["w"] + d["b"]) - y) ** 2).mean()
    else:
        objective = loss

    @pyasg.jit
    def step(p, state, x, y):  # noqa: ANN001, ANN202
        value, g = pyasg.value_and_grad(objective)(p, x, y)
        p, state = opt.update(g, state, p)
        return p, state, value

    state = opt.init(p)
    losses = []
    for _ in range(steps):
        p, state, value = step(p, state, x, y)
        losses.append(float(value))
    return p, losses


@pytest.mark.parametrize("opt", [SGD(lr=0.1), Adam(lr=0.05)], ids=["sgd", "adam"])
def test_dataclass_params_train_through_jit_and_an_optimiser_as_a_dict_does(opt: Any) -> None:
    p = params()
    trained, losses = _train(p, opt, 30, as_dict=False)
    assert isinstance(trained, Params) and trained.act == "tanh"
    assert losses[-1] < losses[0] * 0.8
    want, want_losses = _train({"w": p.w, "b": p.b}, opt, 30, as_dict=True)
    np.testing.assert_allclose(losses, want_losses, rtol=1e-12)
    np.testing.assert_allclose(trained.w, want["w"], rtol=1e-12)


def test_a_dataclass_optimiser_state_of_our_own_trains() -> None:
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(16, 3)), rng.normal(size=(16, 2)) * 0.5

    @pyasg.jit
    def step(p: Params, m: Momentum, x: Any, y: Any) -> Any:
        value, g = pyasg.value_and_grad(loss)(p, x, y)
        velocity = pyasg.tree_map(lambda v, g: m.beta * v + g, m.velocity, g)
        p = pyasg.tree_map(lambda w, v: w - 0.1 * v, p, velocity)
        return p, Momentum(velocity, m.step + 1, m.beta), value

    p = params()
    m = Momentum(pyasg.tree_map(np.zeros_like, p), np.int32(0))
    first = None
    for _ in range(40):
        p, m, value = step(p, m, x, y)
        first = float(value) if first is None else first
    assert isinstance(m, Momentum) and int(m.step) == 40 and m.beta == 0.9
    assert isinstance(m.velocity, Params)
    assert float(value) < 0.8 * first
    assert step.cache_size == 1


def test_dataclass_params_save_by_field_paths_and_load_as_the_dataclass(tmp_path: Any) -> None:
    p = params()
    path = tmp_path / "p.safetensors"
    pyasg.io.save(path, {"layer": p})
    flat = pyasg.io.load_flat(path)
    assert sorted(flat) == ["layer.b", "layer.w"]
    np.testing.assert_array_equal(flat["layer.w"], p.w)
    back = pyasg.io.load(path, expected={"layer": p})["layer"]
    assert isinstance(back, Params) and back.act == "tanh"
    np.testing.assert_array_equal(back.b, p.b)


# --------------------------------------------------------------------------- errors


def test_an_unregistered_dataclass_raises_saying_how_to_register_it() -> None:
    @dataclasses.dataclass
    class Loose:
        w: Any

    with pytest.raises(pyasg.TraceError, match=r"'p' is a Loose.*register_dataclass") as e:
        pyasg.jit(lambda p: p.w * 2.0)(Loose(np.ones(2)))
    assert "test_pytrees.py:" in (e.value.source or "")
    with pytest.raises(pyasg.TraceError, match="register_pytree_node"):
        pyasg.grad(lambda p: p.w.sum())(object())


def test_bad_registrations_are_tree_errors() -> None:
    with pytest.raises(TreeError, match="registered already"):
        pyasg.register_dataclass(Params)
    with pytest.raises(TreeError, match="built-in"):
        pyasg.register_pytree_node(dict, lambda d: ((), None), lambda a, k: {})
    with pytest.raises(TreeError, match="needs a class"):
        pyasg.register_pytree_node(Box(1, 2, "x"), lambda b: ((), None), lambda a, k: None)

    class NotADataclass:
        pass

    with pytest.raises(TreeError, match="is not a dataclass"):
        pyasg.register_dataclass(NotADataclass)

    @dataclasses.dataclass
    class Two:
        a: Any
        b: Any

    with pytest.raises(TreeError, match="each init field of Two once"):
        pyasg.register_dataclass(Two, data_fields=["a"], meta_fields=[])
    with pytest.raises(TreeError, match="both data_fields and meta_fields"):
        pyasg.register_dataclass(Two, data_fields=["a", "b"])


def test_flatten_functions_that_break_the_protocol_are_named() -> None:
    class Bad:
        pass

    pyasg.register_pytree_node(Bad, lambda b: [1, 2, 3], lambda a, k: Bad())
    with pytest.raises(TreeError, match="flatten function registered for Bad returned"):
        pyasg.flatten(Bad())

    class Unhashable:
        pass

    pyasg.register_pytree_node(Unhashable, lambda u: ((), [1]), lambda a, k: Unhashable())
    with pytest.raises(TreeError, match="aux data of a Unhashable .* not hashable"):
        pyasg.flatten(Unhashable())
    with pytest.raises(TreeError, match="aux data"):
        pyasg.jit(lambda u: 1.0)(Unhashable())


def test_named_tuples_still_work_as_before() -> None:
    out = pyasg.jit(lambda p: Pair(p.second, p.first + 1.0))(Pair(np.ones(2), np.zeros(1)))
    assert isinstance(out, Pair)
    np.testing.assert_array_equal(out.second, np.full(2, 2.0))
