"""infer_shapes: re-specialise a traced graph to new input types, and refuse misfits."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from strategies import random_cases

import pyasg
from pyasg.asg import ops
from pyasg.asg.graph import Graph, GraphBuilder
from pyasg.asg.types import TensorType
from pyasg.errors import ShapeError

F64 = "float64"


def mlp(x, w1, b1, w2, b2):  # noqa: ANN001, ANN201
    """x [batch, 3, 4] -> flattened features -> hidden tanh layer -> 2 outputs."""
    h = pyasg.tanh(x.reshape(-1, 12) @ w1 + b1)
    return h @ w2 + b2, pyasg.max(h, axis=1, keepdims=True)


def mlp_numpy(x, w1, b1, w2, b2):  # noqa: ANN001, ANN201
    h = np.tanh(x.reshape(-1, 12) @ w1 + b1)
    return h @ w2 + b2, h.max(axis=1, keepdims=True)


def params(rng: np.random.Generator) -> list[np.ndarray]:
    return [rng.normal(size=(12, 5)), rng.normal(size=(5,)), rng.normal(size=(5, 2)),
            rng.normal(size=(1, 2))]


def types_of(arrays: list[np.ndarray]) -> list[TensorType]:
    return [TensorType(a.shape, a.dtype.name) for a in arrays]


def run(graph: Graph, arrays: list[np.ndarray]) -> tuple[np.ndarray, ...]:
    return pyasg.jit_to_backend(graph, "numpy")(*arrays)


@pytest.mark.parametrize("batch", [1, 7, 32])
def test_mlp_respecialised_to_a_new_batch_size_runs_like_numpy(batch: int) -> None:
    rng = np.random.default_rng(batch)
    p = params(rng)
    g = pyasg.make_graph(mlp)(rng.normal(size=(4, 3, 4)), *p)
    assert g.output_types == (TensorType((4, 2), F64), TensorType((4, 1), F64))
    x = rng.normal(size=(batch, 3, 4))
    g2 = pyasg.infer_shapes(g, types_of([x, *p]))
    assert g2.output_types == (TensorType((batch, 2), F64), TensorType((batch, 1), F64))
    assert g2.input_names == g.input_names
    assert g2.input_types[0] == TensorType((batch, 3, 4), F64)
    for got, want in zip(run(g2, [x, *p]), mlp_numpy(x, *p)):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    # the original graph is untouched and still runs at its own batch size
    assert g.input_types[0] == TensorType((4, 3, 4), F64)


def test_respecialising_to_the_same_types_gives_an_equal_graph() -> None:
    rng = np.random.default_rng(0)
    g = pyasg.make_graph(mlp)(rng.normal(size=(4, 3, 4)), *params(rng))
    assert pyasg.infer_shapes(g, list(g.input_types)) == g
    assert pyasg.infer_shapes(g) == g


def test_respecialise_to_another_float_dtype() -> None:
    rng = np.random.default_rng(1)
    p = params(rng)
    g = pyasg.make_graph(lambda x, w: pyasg.tanh(x.reshape(-1, 12) @ w))(
        np.ones((2, 3, 4)), p[0])
    x32, w32 = rng.normal(size=(6, 3, 4)).astype(np.float32), p[0].astype(np.float32)
    g2 = pyasg.infer_shapes(g, types_of([x32, w32]))
    assert g2.output_types == (TensorType((6, 5), "float32"),)
    (out,) = run(g2, [x32, w32])
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, np.tanh(x32.reshape(-1, 12) @ w32), rtol=1e-5)


@settings(deadline=None)
@given(random_cases())
def test_retyping_random_graphs_to_their_own_types_is_the_identity(case) -> None:  # noqa: ANN001
    g = case.graph
    again = pyasg.infer_shapes(g, list(g.input_types))
    if set(g.live_ids) | set(g.inputs) == set(g.ids):
        assert again == g  # nothing dead: the very same graph
    else:
        assert len(again) < len(g)  # dead nodes are dropped, not re-checked
    assert pyasg.infer_shapes(again, list(again.input_types)) == again
    for a, b in zip(run(again, case.arrays), case.reference()):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)


def test_incompatible_batch_for_a_fixed_reshape_names_the_shapes() -> None:
    rng = np.random.default_rng(2)
    p = params(rng)
    g = pyasg.make_graph(mlp)(rng.normal(size=(4, 3, 4)), *p)
    with pytest.raises(ShapeError) as info:
        pyasg.infer_shapes(g, [TensorType((4, 5, 5), F64), *types_of(p)])
    message = str(info.value)
    assert "[4, 5, 5]" in message and "12" in message, message
    assert info.value.source and "test_infer_shapes.py" in info.value.source  # the user's line


def test_incompatible_weight_names_both_shapes() -> None:
    rng = np.random.default_rng(3)
    p = params(rng)
    g = pyasg.make_graph(mlp)(rng.normal(size=(4, 3, 4)), *p)
    bad = types_of(p)
    bad[0] = TensorType((13, 5), F64)
    with pytest.raises(ShapeError) as info:
        pyasg.infer_shapes(g, [TensorType((4, 3, 4), F64), *bad])
    message = str(info.value)
    assert "f64[4,12]" in message and "f64[13,5]" in message, message


def test_incompatible_broadcast_names_both_shapes() -> None:
    g = pyasg.make_graph(lambda a, b: a + b)(np.ones((4, 1)), np.ones((1, 8)))
    assert pyasg.infer_shapes(g, [TensorType((4, 1), F64), TensorType((8,), F64)]
                              ).output_types == (TensorType((4, 8), F64),)
    with pytest.raises(ShapeError) as info:
        pyasg.infer_shapes(g, [TensorType((4, 2), F64), TensorType((1, 8), F64)])
    assert "[4, 2]" in str(info.value) and "[1, 8]" in str(info.value)


def test_incompatible_dtypes_are_a_shape_error() -> None:
    g = pyasg.make_graph(lambda a, b: a * b)(np.ones(3), np.ones(3))
    with pytest.raises(ShapeError) as info:
        pyasg.infer_shapes(g, [TensorType((3,), F64), TensorType((3,), "float32")])
    assert "f64[3]" in str(info.value) and "f32[3]" in str(info.value)


@pytest.mark.parametrize("n", [0, 1, 3])
def test_wrong_number_of_types_is_a_shape_error(n: int) -> None:
    g = pyasg.make_graph(lambda a, b: a - b)(np.ones(3), np.ones(3))
    with pytest.raises(ShapeError) as info:
        pyasg.infer_shapes(g, [TensorType((3,), F64)] * n)
    assert "2 inputs" in str(info.value) and f"{n} types" in str(info.value)


def test_unlisted_input_node_is_a_shape_error() -> None:
    b = GraphBuilder()
    x = b.add_input("x", TensorType((2,), F64))
    stray = b.add(ops.Input("stray", TensorType((2,), F64)))
    g = b.build([b.add(ops.Add(), (x, stray))], inputs=[x])
    with pytest.raises(ShapeError):
        pyasg.infer_shapes(g, [TensorType((2,), F64)])


def test_nodes_no_output_needs_are_not_rechecked() -> None:
    def f(x):
        x.reshape(2, 3)  # dead: fits [6] but not [5]
        return x * 2.0

    g = pyasg.make_graph(f)(np.ones(6))
    g5 = pyasg.infer_shapes(g, [TensorType((5,), "float64")])
    assert g5.output_types == (TensorType((5,), "float64"),)
