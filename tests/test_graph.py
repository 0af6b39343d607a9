"""The ASG itself: hash-consing, graphs as values, order, views, persistence, sources."""

from __future__ import annotations

import inspect
import os

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from strategies import random_cases

import pyasg
from pyasg.asg import ops
from pyasg.asg.graph import Graph, GraphBuilder, prune
from pyasg.asg.serialize import graph_to_json
from pyasg.asg.types import TensorType
from pyasg.errors import ShapeError

F64 = "float64"
x3 = np.array([0.5, -1.0, 2.0])


def count(graph: Graph, op_class: type, live: bool = True) -> int:
    ids = graph.live_ids if live else graph.ids
    return sum(isinstance(graph.nodes[i].op, op_class) for i in ids)


# --------------------------------------------------------------------------- hash-consing


def test_builder_returns_the_existing_node_for_the_same_op_and_inputs() -> None:
    b = GraphBuilder()
    x = b.add_input("x", TensorType((3,), F64))
    y = b.add_input("y", TensorType((3,), F64))
    e1 = b.add(ops.Exp(), (x,))
    assert b.add(ops.Exp(), (x,)) == e1
    assert b.add(ops.Exp(), [x]) == e1  # a list is the same inputs
    assert b.add(ops.Exp(), (y,)) != e1
    s1 = b.add(ops.Sum((0,), False), (x,))
    assert b.add(ops.Sum((0,), False), (x,)) == s1
    assert b.add(ops.Sum((0,), True), (x,)) != s1  # attributes are part of the key
    assert b.add(ops.Sub(), (x, y)) != b.add(ops.Sub(), (y, x))  # and input order
    c1 = b.add(ops.Constant.of(np.array([1.0, 2.0])))
    assert b.add(ops.Constant.of(np.array([1.0, 2.0]))) == c1
    assert b.add(ops.Constant.of(np.array([1.0, 2.0], np.float32))) != c1
    g = b.build([e1])
    assert len(g) == len({(n.op, n.inputs) for n in g.nodes.values()})


def test_tracing_x_times_2_twice_records_one_mul() -> None:
    g = pyasg.make_graph(lambda x: x * 2 + x * 2)(x3)
    assert count(g, ops.Mul) == 1
    assert count(g, ops.Constant) == 1
    add = g.nodes[g.outputs[0]]
    assert isinstance(add.op, ops.Add) and add.inputs[0] == add.inputs[1]
    (out,) = pyasg.jit_to_backend(g)(x3)
    np.testing.assert_allclose(out, x3 * 2 + x3 * 2)


def test_common_subexpressions_across_statements_are_one_node() -> None:
    def f(x):  # noqa: ANN001, ANN202
        a = pyasg.tanh(x.reshape(3, 1))
        b = pyasg.tanh(x.reshape(3, 1))
        return a + b, a * b

    g = pyasg.make_graph(f)(x3)
    assert count(g, ops.Tanh) == 1 and count(g, ops.Reshape) == 1


# --------------------------------------------------------------------------- values


def mlp(x, w):  # noqa: ANN001, ANN201
    return pyasg.tanh(x @ w).sum(axis=1)


def mlp_other(x, w):  # noqa: ANN001, ANN201
    return pyasg.sin(x @ w).sum(axis=1)


X = np.ones((4, 3))
W = np.ones((3, 2))


def test_graphs_are_values() -> None:
    g1 = pyasg.make_graph(mlp)(X, W)
    g2 = pyasg.make_graph(mlp)(X * 2, W - 1)  # other numbers, same shapes: the same graph
    assert g1 is not g2
    assert g1 == g2 and hash(g1) == hash(g2)
    assert {g1: "compiled"}[g2] == "compiled"
    g3 = pyasg.make_graph(mlp_other)(X, W)
    assert g3 != g1
    g4 = pyasg.make_graph(mlp)(np.ones((5, 3)), W)  # other shapes: another graph
    assert g4 != g1
    g5 = pyasg.make_graph(mlp)(X.astype(np.float32), W.astype(np.float32))
    assert g5 != g1


@settings(deadline=None)
@given(random_cases(traced=False))
def test_rebuilt_graphs_are_equal_and_hash_equal(case) -> None:  # noqa: ANN001
    from strategies import build_graph

    again = build_graph(case.recipe)
    assert again == case.graph and hash(again) == hash(case.graph)


def test_graph_is_immutable() -> None:
    g = pyasg.make_graph(mlp)(X, W)
    with pytest.raises(AttributeError):
        g.nodes = None  # type: ignore[misc]
    with pytest.raises((AttributeError, TypeError)):
        g.nodes[0] = None  # type: ignore[index]
    outputs = list(g.outputs)
    g.outputs.append(0)  # a pvector returns a new vector; the graph keeps its own
    g.nodes.set(0, None)
    assert list(g.outputs) == outputs and g.nodes[0] is not None
    node = g.nodes[g.outputs[0]]
    with pytest.raises(AttributeError):
        node.inputs = ()  # type: ignore[misc]


# --------------------------------------------------------------------------- order


@settings(deadline=None)
@given(random_cases())
def test_topological_order_puts_every_node_after_its_inputs(case) -> None:  # noqa: ANN001
    g = case.graph
    for order in (g.topological_order(), g.topological_order(live_only=False), g.ids,
                  g.live_ids):
        position = {i: k for k, i in enumerate(order)}
        assert len(position) == len(order)
        for i in order:
            for j in g.nodes[i].inputs:
                assert position[j] < position[i]
    assert set(g.ids) == set(g.nodes.keys())
    # live_ids is exactly the set of nodes the outputs reach
    reach, stack = set(), list(g.outputs)
    while stack:
        i = stack.pop()
        if i not in reach:
            reach.add(i)
            stack.extend(g.nodes[i].inputs)
    assert set(g.live_ids) == reach
    assert set(prune(g).ids) == reach | set(g.inputs)


def test_live_ids_exclude_dead_nodes() -> None:
    b = GraphBuilder()
    x = b.add_input("x", TensorType((3,), F64))
    u = b.add_input("unused", TensorType((1,), F64))
    dead = b.add(ops.Exp(), (x,))
    dead2 = b.add(ops.Sin(), (dead,))
    live = b.add(ops.Tanh(), (x,))
    g = b.build([live])
    assert g.live_ids == (x, live)
    assert dead not in g.live_ids and dead2 not in g.live_ids and u not in g.live_ids
    assert g.topological_order(live_only=False) == (x, u, dead, dead2, live)
    p = prune(g)
    assert set(p.ids) == {x, u, live} and list(p.inputs) == [x, u]
    assert prune(p) is p


def test_users_lists_each_reader_once() -> None:
    g = pyasg.make_graph(lambda x: pyasg.exp(x) * pyasg.exp(x) + x)(x3)
    exp_id = next(i for i in g.ids if isinstance(g.nodes[i].op, ops.Exp))
    (mul_id,) = g.users[exp_id]
    assert isinstance(g.nodes[mul_id].op, ops.Mul)
    assert len(g.users[g.inputs[0]]) == 2


# --------------------------------------------------------------------------- views


def test_to_networkx_has_the_nodes_edges_and_attributes() -> None:
    def f(x, w):  # noqa: ANN001, ANN202
        h = x @ w
        return pyasg.tanh(h) - h, h

    g = pyasg.make_graph(f)(X, W)
    nxg = g.to_networkx()
    assert isinstance(nxg, nx.DiGraph)
    assert nx.is_directed_acyclic_graph(nxg)
    assert set(nxg.nodes) == set(g.ids)
    assert set(nxg.edges) == {(j, i) for i in g.ids for j in g.nodes[i].inputs}
    for i in g.ids:
        node, data = g.nodes[i], nxg.nodes[i]
        assert data["op"] == node.op.name
        assert data["category"] == node.op.category
        assert data["type"] == repr(node.type)
        assert data["name"] == node.name
        assert data["source"] == node.source
        assert data["output"] == (i in g.outputs)
        for k, j in enumerate(node.inputs):
            if node.inputs.count(j) == 1:
                assert nxg.edges[j, i]["index"] == k
    sub = next(i for i in g.ids if isinstance(g.nodes[i].op, ops.Sub))
    assert [nxg.edges[j, sub]["index"] for j in g.nodes[sub].inputs] == [0, 1]
    # layers for drawing come straight from networkx
    assert sum(len(layer) for layer in nx.topological_generations(nxg)) == len(g)


def test_str_shows_every_op_the_inputs_and_the_outputs() -> None:
    def f(x, w):  # noqa: ANN001, ANN202
        h = (x @ w).reshape(-1)
        return pyasg.maximum(h, 0.0)[1:], h.sum()

    g = pyasg.make_graph(f)(X, W)
    text = str(g)
    for i in g.ids:
        node = g.nodes[i]
        if isinstance(node.op, ops.Input):
            assert node.op.path in text
        elif isinstance(node.op, ops.Constant):
            assert f"const {node.op.value.tolist()!r}" in text
        else:
            assert node.op.name in text
        assert f"%{i}" in text
        assert repr(node.type) in text
    assert "return " + ", ".join(f"%{i}" for i in g.outputs) in text
    assert os.path.basename(__file__) in text  # user sources are shown


# --------------------------------------------------------------------------- persistence


def test_extending_a_graph_leaves_it_unchanged_and_shares_its_nodes() -> None:
    base = pyasg.make_graph(mlp)(X, W)
    text, h, n = graph_to_json(base), hash(base), len(base)
    b = GraphBuilder(base)
    out = base.outputs[0]
    tanh = b.node(out).inputs[0]
    assert b.add(ops.Tanh(), b.node(tanh).inputs) == tanh  # hash-conses with base's nodes
    e = b.add(ops.Exp(), (out,))
    new_input = b.add_input("extra", TensorType((4,), F64))
    y = b.add(ops.Add(), (e, new_input))
    new = b.build([y])
    assert graph_to_json(base) == text and hash(base) == h and len(base) == n
    assert len(new) == n + 3 and new != base
    assert list(new.inputs) == list(base.inputs) + [new_input]
    assert min(e, new_input, y) > max(base.ids)
    for i in base.ids:
        assert new.nodes[i] is base.nodes[i]
    # a second extension of the same base is independent of the first
    b2 = GraphBuilder(base)
    z = b2.add(ops.Sin(), (out,))
    other = b2.build([z])
    assert z not in new.nodes or new.nodes[z] != other.nodes[z]
    assert graph_to_json(base) == text
    got = pyasg.jit_to_backend(new)(X, W, np.arange(4.0))
    np.testing.assert_allclose(got[0], np.exp(np.tanh(X @ W).sum(1)) + np.arange(4.0))


def test_build_twice_from_one_builder_gives_two_independent_graphs() -> None:
    b = GraphBuilder()
    x = b.add_input("x", TensorType((3,), F64))
    g1 = b.build([x])
    e = b.add(ops.Exp(), (x,))
    g2 = b.build([e])
    assert len(g1) == 1 and len(g2) == 2
    assert e not in g1.nodes


# --------------------------------------------------------------------------- errors


def bad_add(x, y):  # noqa: ANN001, ANN201
    return x + y


BAD_ADD_LINE = inspect.getsourcelines(bad_add)[1] + 1


def test_shape_error_carries_the_users_file_and_line() -> None:
    with pytest.raises(ShapeError) as info:
        pyasg.make_graph(bad_add)(np.ones((2, 3)), np.ones((4,)))
    err = info.value
    where = f"{os.path.basename(__file__)}:{BAD_ADD_LINE}"
    assert err.source is not None and err.source.endswith(where), err.source
    assert where in str(err)
    assert "[2, 3]" in err.message and "[4]" in err.message


def test_shape_error_from_a_method_call_points_at_that_line() -> None:
    def f(x):  # noqa: ANN001, ANN202
        y = pyasg.exp(x)
        return y.reshape(4, 4)

    line = inspect.getsourcelines(f)[1] + 2
    with pytest.raises(ShapeError) as info:
        pyasg.make_graph(f)(np.ones((2, 3)))
    assert info.value.source.endswith(f"{os.path.basename(__file__)}:{line}")
    assert "[2, 3]" in str(info.value) and "[4, 4]" in str(info.value)


def test_builder_shape_error_keeps_the_given_source() -> None:
    b = GraphBuilder()
    x = b.add_input("x", TensorType((2, 3), F64))
    y = b.add_input("y", TensorType((3, 3), F64))
    with pytest.raises(ShapeError) as info:
        b.add(ops.MatMul(), (y, x), source="model.py:42")
    assert info.value.source == "model.py:42" and "model.py:42" in str(info.value)
    with pytest.raises(ShapeError):
        b.add(ops.Exp(), (x, y))  # wrong arity is a ShapeError too
