"""simplify: never changes a result, never grows the graph, and removes what it promises.

Expected values come from numpy (or from running the unsimplified graph, for the
property that simplify changes nothing).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from pyrsistent import pmap, pvector
from strategies import random_cases

import pyasg
from pyasg.asg import ops
from pyasg.asg.graph import Graph, GraphBuilder, Node
from pyasg.asg.serialize import graph_to_json
from pyasg.asg.types import TensorType
from pyasg.transforms.simplify import FOLD_LIMIT, simplify

F64 = "float64"


def run(graph: Graph, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    return pyasg.jit_to_backend(graph, "numpy")(*arrays)


def op_names(graph: Graph) -> list[str]:
    """Class names of the ops of the nodes the outputs depend on, in order."""
    return [type(graph.nodes[i].op).__name__ for i in graph.live_ids]


def all_op_names(graph: Graph) -> list[str]:
    return [type(graph.nodes[i].op).__name__ for i in graph.ids]


def assert_close(got: np.ndarray, want: np.ndarray, rtol: float = 1e-12) -> None:
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, want.shape)
    scale = float(np.max(np.abs(want), initial=1.0))
    np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-13 * scale)


# --------------------------------------------------------------------------- properties


@settings(deadline=None)
@given(random_cases())
def test_simplify_never_changes_results_nor_grows_the_graph(case) -> None:  # noqa: ANN001
    g = case.graph
    before_json = graph_to_json(g)
    s = simplify(g)
    assert isinstance(s, Graph)
    assert graph_to_json(g) == before_json, "simplify must not mutate its argument"
    assert len(s) <= len(g)
    assert len(s.live_ids) <= len(g.live_ids)
    # the interface is untouched: the same inputs in order, the same output types
    assert s.input_names == g.input_names
    assert s.input_types == g.input_types
    assert s.output_types == g.output_types
    for arrays in (case.arrays, case.other_arrays):
        want = run(g, *arrays)
        got = run(s, *arrays)
        assert len(got) == len(want)
        for a, b, r in zip(got, want, case.reference(arrays)):
            assert_close(a, b)
            assert_close(a, r, rtol=1e-9)


@settings(deadline=None)
@given(random_cases())
def test_simplify_is_idempotent(case) -> None:  # noqa: ANN001
    once = simplify(case.graph)
    twice = simplify(once)
    assert len(twice) == len(once)
    assert op_names(twice) == op_names(once)
    for a, b in zip(run(twice, *case.arrays), run(once, *case.arrays)):
        assert_close(a, b)


@settings(deadline=None)
@given(random_cases(traced=False))
def test_simplified_graphs_hold_no_dead_nodes_and_no_duplicates(case) -> None:  # noqa: ANN001
    s = simplify(case.graph)
    assert set(s.ids) == set(s.live_ids) | set(s.inputs)
    keys = [(s.nodes[i].op, s.nodes[i].inputs) for i in s.ids]
    assert len(keys) == len(set(keys))
    for i in s.ids:
        assert all(j < i for j in s.nodes[i].inputs)


# --------------------------------------------------------------------------- trivial algebra

x23 = np.array([[1.5, -2.0, 0.25], [3.0, -0.5, 7.0]])


def builder_graph(make, shape=(2, 3)):  # noqa: ANN001, ANN201
    """A graph with one float64 input `x` and the node(s) `make(b, x)` builds, as output."""
    b = GraphBuilder()
    x = b.add_input("x", TensorType(shape, F64))
    return b.build([make(b, x)])


def const(b: GraphBuilder, value: object) -> int:
    return b.add(ops.Constant.of(np.asarray(value, dtype=np.float64)))


TRIVIAL_BUILT = {
    "x*1": lambda b, x: b.add(ops.Mul(), (x, const(b, 1.0))),
    "1*x": lambda b, x: b.add(ops.Mul(), (const(b, 1.0), x)),
    "x*ones": lambda b, x: b.add(ops.Mul(), (x, const(b, np.ones((2, 3))))),
    "x*ones_row": lambda b, x: b.add(ops.Mul(), (x, const(b, np.ones((1, 3))))),
    "x+0": lambda b, x: b.add(ops.Add(), (x, const(b, 0.0))),
    "0+x": lambda b, x: b.add(ops.Add(), (const(b, np.zeros(3)), x)),
    "x-0": lambda b, x: b.add(ops.Sub(), (x, const(b, 0.0))),
    "x/1": lambda b, x: b.add(ops.Div(), (x, const(b, 1.0))),
    "x**1": lambda b, x: b.add(ops.Pow(), (x, const(b, 1.0))),
    "--x": lambda b, x: b.add(ops.Neg(), (b.add(ops.Neg(), (x,)),)),
    "----x": lambda b, x: b.add(ops.Neg(), (b.add(ops.Neg(), (b.add(ops.Neg(), (
        b.add(ops.Neg(), (x,)),)),)),)),
    "reshape(reshape)": lambda b, x: b.add(ops.Reshape((2, 3)), (b.add(ops.Reshape((6,)), (x,)),)),
    "reshape same": lambda b, x: b.add(ops.Reshape((2, -1)), (x,)),
    "transpose(transpose)": lambda b, x: b.add(ops.Transpose((1, 0)), (
        b.add(ops.Transpose((1, 0)), (x,)),)),
    "transpose identity": lambda b, x: b.add(ops.Transpose((0, 1)), (x,)),
    "broadcast_to same": lambda b, x: b.add(ops.BroadcastTo((2, 3)), (x,)),
    "cast same": lambda b, x: b.add(ops.Cast(F64), (x,)),
    "full slice": lambda b, x: b.add(ops.Slice((0, 0), (2, 3), (1, 1)), (x,)),
    "sum over no axes": lambda b, x: b.add(ops.Sum(()), (x,)),
    "max over no axes": lambda b, x: b.add(ops.Max((), True), (x,)),
    "x*1+0-0": lambda b, x: b.add(ops.Sub(), (b.add(ops.Add(), (
        b.add(ops.Mul(), (x, const(b, 1.0))), const(b, 0.0))), const(b, 0.0))),
}


@pytest.mark.parametrize("name", sorted(TRIVIAL_BUILT))
def test_trivial_algebra_disappears(name: str) -> None:
    g = builder_graph(TRIVIAL_BUILT[name])
    assert len(g.live_ids) > 1
    s = simplify(g)
    assert all_op_names(s) == ["Input"], str(s)
    assert list(s.outputs) == list(s.inputs)
    (out,) = run(s, x23)
    np.testing.assert_array_equal(out, x23)
    np.testing.assert_array_equal(run(g, x23)[0], x23)


TRIVIAL_TRACED = {
    "x*1": lambda x: x * 1.0,
    "1*x": lambda x: 1.0 * x,
    "x+0": lambda x: x + 0.0,
    "0+x": lambda x: 0.0 + x,
    "x-0": lambda x: x - 0.0,
    "x/1": lambda x: x / 1.0,
    "x**1": lambda x: x ** 1.0,
    "--x": lambda x: pyasg.neg(-x),
    "x*ones": lambda x: x * np.ones((2, 3)),
    "reshape(reshape)": lambda x: x.reshape(6).reshape(2, 3),
    "reshape(reshape(reshape))": lambda x: x.reshape(3, 2).reshape(6, 1).reshape(2, 3),
    "x.T.T": lambda x: x.T.T,
    "mixed": lambda x: ((x * 1.0 + 0.0).T.T - 0.0) / 1.0,
}


@pytest.mark.parametrize("name", sorted(TRIVIAL_TRACED))
def test_trivial_algebra_written_by_a_user_disappears(name: str) -> None:
    g = pyasg.make_graph(TRIVIAL_TRACED[name])(x23)
    assert len(g.live_ids) > 1, "the trace should record something to simplify"
    s = simplify(g)
    assert op_names(s) == ["Input"], str(s)
    assert list(s.outputs) == list(s.inputs)
    np.testing.assert_array_equal(run(s, x23)[0], x23)


def test_reshape_chain_becomes_one_reshape() -> None:
    x = np.arange(24.0).reshape(2, 3, 4)
    g = pyasg.make_graph(lambda x: x.reshape(6, 4).reshape(4, 6).reshape(3, 8))(x)
    s = simplify(g)
    assert op_names(s) == ["Input", "Reshape"]
    assert s.output_types == (TensorType((3, 8), F64),)
    np.testing.assert_array_equal(run(s, x)[0], x.reshape(3, 8))


def test_reshape_chain_with_a_shared_middle_keeps_the_middle() -> None:
    x = np.arange(6.0)
    g = pyasg.make_graph(lambda x: (x.reshape(2, 3), x.reshape(2, 3).reshape(3, 2)))(x)
    s = simplify(g)
    assert len(s) <= len(g)
    a, b = run(s, x)
    np.testing.assert_array_equal(a, x.reshape(2, 3))
    np.testing.assert_array_equal(b, x.reshape(3, 2))


@pytest.mark.parametrize("p1,p2", [
    ((1, 2, 0), (2, 0, 1)),   # inverse permutations: identity
    ((1, 0, 2), (1, 0, 2)),   # a swap twice: identity
    ((1, 2, 0), (1, 2, 0)),   # not identity: one transpose remains
    ((2, 1, 0), (0, 2, 1)),
])
def test_transpose_chain(p1: tuple, p2: tuple) -> None:
    x = np.arange(24.0).reshape(2, 3, 4)
    g = pyasg.make_graph(lambda x: x.transpose(p1).transpose(p2))(x)
    want = x.transpose(p1).transpose(p2)
    s = simplify(g)
    if want.shape == x.shape and np.array_equal(want, x):
        assert op_names(s) == ["Input"]
    else:
        assert op_names(s) == ["Input", "Transpose"]
    np.testing.assert_array_equal(run(s, x)[0], want)


def test_transpose_chain_of_three() -> None:
    x = np.arange(24.0).reshape(2, 3, 4)
    g = pyasg.make_graph(lambda x: x.transpose(1, 2, 0).transpose(2, 0, 1).transpose(0, 2, 1))(x)
    s = simplify(g)
    assert op_names(s) == ["Input", "Transpose"]
    np.testing.assert_array_equal(run(s, x)[0], x.transpose(0, 2, 1))


# --------------------------------------------------------------------------- what must stay


def test_x_times_one_that_broadcasts_x_up_is_kept() -> None:
    x = np.array([1.0, -2.0, 3.0])
    for fn in (lambda x: x * np.ones((2, 3)), lambda x: np.ones((2, 3)) * x,
               lambda x: x + np.zeros((4, 1, 3)), lambda x: x - np.zeros((2, 3)),
               lambda x: x / np.ones((2, 1)), lambda x: x ** np.ones((2, 3))):
        g = pyasg.make_graph(fn)(x)
        s = simplify(g)
        assert s.output_types == g.output_types, str(s)
        (out,) = run(s, x)
        np.testing.assert_array_equal(out, np.asarray(fn(x)))


def test_x_plus_zero_with_a_different_dtype_constant_is_not_dropped_silently() -> None:
    # x (float64) + a float32 0 promotes through a cast; the result keeps x's type.
    x = np.array([1.0, 2.0])
    g = pyasg.make_graph(lambda x: x + np.zeros(2, np.float32))(x)
    s = simplify(g)
    assert s.output_types == g.output_types
    np.testing.assert_array_equal(run(s, x)[0], x)


def test_multiplying_by_a_constant_that_is_not_all_ones_is_kept() -> None:
    x = np.array([1.0, 2.0])
    g = pyasg.make_graph(lambda x: x * np.array([1.0, 2.0]) + np.array([0.0, 1.0]))(x)
    s = simplify(g)
    assert "Mul" in op_names(s) and "Add" in op_names(s)
    np.testing.assert_array_equal(run(s, x)[0], x * [1.0, 2.0] + [0.0, 1.0])


def test_stop_gradient_is_kept() -> None:
    x = np.array([0.5, -1.0])
    g = pyasg.make_graph(lambda x: pyasg.stop_gradient(pyasg.exp(x)) * 1.0)(x)
    s = simplify(g)
    assert op_names(s) == ["Input", "Exp", "StopGradient"]
    np.testing.assert_array_equal(run(s, x)[0], np.exp(x))


def test_stop_gradient_still_stops_the_gradient_after_simplify() -> None:
    def f(x):  # noqa: ANN001, ANN202
        return pyasg.sum(x * pyasg.stop_gradient(x * 1.0))

    x = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(pyasg.grad(f)(x), x)  # d/dx sum(x * c) = c = x


def test_a_constant_output_stays_a_correct_constant() -> None:
    b = GraphBuilder()
    b.add_input("x", TensorType((2,), F64))
    c = b.add(ops.Add(), (const(b, [1.0, 2.0]), const(b, [10.0, 20.0])))
    s = simplify(b.build([c, c]))
    assert op_names(s) == ["Constant"]
    first, second = run(s, np.zeros(2))
    np.testing.assert_array_equal(first, [11.0, 22.0])
    first[0] = -1.0  # outputs are the caller's arrays: not the graph's constant
    np.testing.assert_array_equal(run(s, np.zeros(2))[0], [11.0, 22.0])


# --------------------------------------------------------------------------- folding


def test_constant_only_subexpression_folds_into_one_constant_under_its_views() -> None:
    c1, c2, c3 = np.array([1.0, 2.0, 3.0]), np.array([[0.5], [2.0]]), np.array(4.0)

    def make(b: GraphBuilder, x: int) -> int:
        k = b.add(ops.Add(), (b.add(ops.Exp(), (const(b, c1),)),
                              b.add(ops.Mul(), (const(b, c2), const(b, c3)))))
        k = b.add(ops.Reshape((2, 3)), (b.add(ops.Transpose((1, 0)), (k,)),))
        return b.add(ops.Mul(), (x, k))

    g = builder_graph(make)
    s = simplify(g)
    # the arithmetic folds; the transpose and reshape of its result stay views of it
    assert op_names(s) == ["Input", "Constant", "Transpose", "Reshape", "Mul"]
    folded = next(s.nodes[i].op for i in s.ids if isinstance(s.nodes[i].op, ops.Constant))
    np.testing.assert_allclose(folded.value, np.exp(c1) + c2 * c3, rtol=1e-15)
    assert folded.value.dtype == np.float64
    expected = (np.exp(c1) + c2 * c3).T.reshape(2, 3)
    np.testing.assert_allclose(run(s, x23)[0], x23 * expected, rtol=1e-15)


def test_a_broadcast_constant_stays_a_scalar_whatever_the_batch() -> None:
    # the gradient of a mean holds a broadcast of 1/n: folding it would store a dense
    # batch-sized array (8000 bytes at batch 1000), whose size would depend on the batch
    def constant_bytes(batch: int) -> int:
        x = np.ones((batch, 2), np.float32)
        w = np.ones((2, 1), np.float32)
        g = simplify(pyasg.make_graph(pyasg.grad(lambda w, x: pyasg.mean(pyasg.tanh(x @ w))))(
            w, x))
        return sum(len(g.nodes[i].op.data) for i in g.live_ids
                   if isinstance(g.nodes[i].op, ops.Constant))

    assert constant_bytes(1000) == constant_bytes(3000) <= 64


def test_folding_keeps_integer_and_bool_dtypes() -> None:
    b = GraphBuilder()
    i = b.add_input("i", TensorType((3,), "int32"))
    k = b.add(ops.Mul(), (b.add(ops.Constant.of(np.array([1, 2, 3], np.int32))),
                          b.add(ops.Constant.of(np.array(2, np.int32)))))
    m = b.add(ops.Less(), (b.add(ops.Constant.of(np.array([1.0, 5.0, 3.0]))),
                           b.add(ops.Constant.of(np.array(3.0)))))
    out = b.add(ops.Where(), (m, b.add(ops.Add(), (i, k)), i))
    s = simplify(b.build([out]))
    assert op_names(s).count("Constant") == 2 and "Less" not in op_names(s)
    got = run(s, np.array([10, 20, 30], np.int32))[0]
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, [12, 20, 30])


def test_folding_never_bloats_the_graph() -> None:
    def make(b: GraphBuilder, x: int) -> int:
        big = b.add(ops.BroadcastTo((200, 2, 3)), (const(b, 2.0),))
        return b.add(ops.Mul(), (x, big))

    g = builder_graph(make)
    s = simplify(g)
    for i in s.ids:
        op = s.nodes[i].op
        if isinstance(op, ops.Constant):
            assert s.nodes[i].type.size <= FOLD_LIMIT
    np.testing.assert_array_equal(run(s, x23)[0], np.broadcast_to(x23 * 2.0, (200, 2, 3)))


def test_a_fold_that_cannot_run_is_left_in_place() -> None:
    # sqrt(-1) folds to nan with a warning at most; an impossible matmul never gets this far.
    def make(b: GraphBuilder, x: int) -> int:
        return b.add(ops.Add(), (x, b.add(ops.Sqrt(), (const(b, -1.0),))))

    s = simplify(builder_graph(make))
    assert np.isnan(run(s, x23)[0]).all()


# --------------------------------------------------------------------------- CSE and DCE


def test_the_same_expression_traced_twice_is_one_node_already() -> None:
    x = np.array([0.1, 0.2])
    g = pyasg.make_graph(lambda x: pyasg.tanh(pyasg.exp(x)) + pyasg.tanh(pyasg.exp(x)))(x)
    assert op_names(g).count("Exp") == 1 and op_names(g).count("Tanh") == 1
    add = g.nodes[g.outputs[0]]
    assert add.inputs[0] == add.inputs[1]
    np.testing.assert_allclose(run(simplify(g), x)[0], 2 * np.tanh(np.exp(x)), rtol=1e-15)


def test_simplify_merges_duplicate_nodes_in_a_hand_made_graph() -> None:
    t = TensorType((2,), F64)
    nodes = {0: Node(ops.Input("x", t), (), t, "x"),
             1: Node(ops.Exp(), (0,), t), 2: Node(ops.Exp(), (0,), t),
             3: Node(ops.Sin(), (1,), t), 4: Node(ops.Sin(), (2,), t),
             5: Node(ops.Add(), (3, 4), t)}
    g = Graph(pmap(nodes), pvector([0]), pvector([5]))
    s = simplify(g)
    assert op_names(s) == ["Input", "Exp", "Sin", "Add"]
    x = np.array([0.3, -0.7])
    np.testing.assert_allclose(run(s, x)[0], 2 * np.sin(np.exp(x)), rtol=1e-15)


def test_expressions_equal_after_rewriting_are_merged() -> None:
    x = np.array([0.3, -0.7, 2.0])
    def f(x):  # noqa: ANN001, ANN202
        return pyasg.sin(x * 1.0) * pyasg.sin(x + 0.0) - pyasg.sin(pyasg.neg(-x))

    g = pyasg.make_graph(f)(x)
    assert op_names(g).count("Sin") == 3
    s = simplify(g)
    assert op_names(s).count("Sin") == 1, str(s)
    np.testing.assert_allclose(run(s, x)[0], np.sin(x) ** 2 - np.sin(x), rtol=1e-15)


def test_dead_nodes_go_but_every_input_stays_in_order() -> None:
    b = GraphBuilder()
    a = b.add_input("params.a", TensorType((2,), F64))
    bb = b.add_input("params.b", TensorType((3,), F64))
    c = b.add_input("unused", TensorType((4, 1), "float32"))
    b.add(ops.Exp(), (a,))                 # dead
    b.add(ops.Sin(), (c,))                 # dead, and reads an unused input
    out = b.add(ops.Tanh(), (bb,))
    g = b.build([out])
    s = simplify(g)
    assert s.input_names == ("params.a", "params.b", "unused")
    assert s.input_types == g.input_types
    assert all_op_names(s) == ["Input", "Input", "Input", "Tanh"]
    args = [np.zeros(2), np.array([0.0, 1.0, -1.0]), np.zeros((4, 1), np.float32)]
    np.testing.assert_array_equal(run(s, *args)[0], np.tanh(args[1]))


def test_outputs_that_are_inputs_or_repeated_are_kept() -> None:
    b = GraphBuilder()
    x = b.add_input("x", TensorType((2,), F64))
    y = b.add_input("y", TensorType((2,), F64))
    e = b.add(ops.Mul(), (y, const(b, 1.0)))
    s = simplify(b.build([x, e, x, e]))
    assert len(s.outputs) == 4
    xs, ys = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    for got, want in zip(run(s, xs, ys), [xs, ys, xs, ys]):
        np.testing.assert_array_equal(got, want)
