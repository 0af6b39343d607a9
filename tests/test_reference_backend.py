"""The reference backend as an executable: errors name the node, arguments must have the
graph's types, kernels may not coerce, results never alias, and it is what eager calls
and constant folding evaluate with."""

from __future__ import annotations

import numpy as np
import pytest
from wgpu_util import WGPU, require_wgpu

import pyasg
from pyasg.asg import ops
from pyasg.asg.graph import GraphBuilder
from pyasg.asg.types import TensorType
from pyasg.errors import BackendError
from pyasg.kernels.numpy.elementwise import erf_float32
from pyasg.kernels.reference import KERNELS, NodeFailed, ReferenceBackend, evaluate

X = np.arange(6, dtype=np.float32).reshape(3, 2)


def gathered(x, i):  # noqa: ANN001, ANN201
    return pyasg.take(x, i, axis=0) * 2.0


def gather_graph() -> pyasg.Graph:
    return pyasg.make_graph(gathered)(X, np.array([0, 2], np.int32))


def test_a_failing_kernel_is_a_backend_error_naming_the_node_and_the_users_line() -> None:
    graph = gather_graph()
    (node_id,) = [i for i in graph.live_ids if isinstance(graph.nodes[i].op, ops.Gather)]
    with pytest.raises(BackendError) as info:
        pyasg.jit_to_backend(graph, "reference")(X, np.array([0, 5], np.int32))
    e = info.value
    assert isinstance(e, NodeFailed) and e.node_id == node_id
    assert isinstance(e.error, IndexError) and e.__cause__ is e.error
    assert f"gather[axis=0] (node %{node_id}) failed while running graph: IndexError" in str(e)
    assert e.source == graph.nodes[node_id].source
    assert e.source.startswith("tests/test_reference_backend.py:")


@pytest.mark.parametrize("backend", ["numpy", "reference"])
def test_an_out_of_range_gather_index_raises_on_both_cpu_backends(backend: str) -> None:
    run = pyasg.jit_to_backend(gather_graph(), backend)
    for bad in ([0, 3], [-4, 0]):
        with pytest.raises(BackendError, match=r"gather\[axis=0\] \(node %\d+\).*IndexError"):
            run(X, np.array(bad, np.int32))
    # in range from the end, as numpy indexes: the last row, then the first
    np.testing.assert_array_equal(run(X, np.array([-1, -3], np.int32))[0], 2 * X[[2, 0]])


def test_an_error_inside_a_fused_node_names_the_fused_node() -> None:
    """A graph fused for numpy, run on the reference: the sub-graph's failure is the
    fused node's (the node of the graph that was run), with the original error."""
    def f(x, e):  # noqa: ANN001, ANN202
        return x ** e + 1

    ints = np.array([2, 3], np.int32)
    fused = pyasg.jit_to_backend(pyasg.make_graph(f)(ints, ints), "numpy").graph
    (node_id,) = [i for i in fused.live_ids if isinstance(fused.nodes[i].op, ops.Fused)]
    run = ReferenceBackend().compile(fused, "f")
    np.testing.assert_array_equal(run(ints, ints)[0], ints ** ints + 1)
    with pytest.raises(NodeFailed) as info:
        run(ints, np.array([1, -1], np.int32))  # integers to negative powers: numpy refuses
    assert info.value.node_id == node_id
    assert isinstance(info.value.error, ValueError)
    assert f"fused[pow, add] (node %{node_id}) failed while running f: ValueError" in \
        str(info.value)


@pytest.mark.parametrize("backend", ["reference", "numpy", pytest.param("wgpu", marks=WGPU)])
@pytest.mark.parametrize("argument, message", [
    (np.zeros((3, 2), np.float64), r"input x is float64\[3, 2\], expected f32\[3,2\]"),
    (np.zeros((2, 3), np.float32), r"input x is float32\[2, 3\], expected f32\[3,2\]"),
    (np.zeros((1, 2), np.float32), r"input x is float32\[1, 2\]"),  # numpy would broadcast
    ([[0.0, 1.0]] * 3, r"input x is a list, not an array"),
    ("7", r"input x is a str, not an array"),
    (None, r"input x is a NoneType, not an array"),
])
def test_arguments_must_have_the_graphs_input_types(argument: object, message: str,
                                                    backend: str) -> None:
    """An executable computes what the graph says, never a promoted or broadcast variant
    of it (every backend: `compile.arguments`)."""
    if backend == "wgpu":
        require_wgpu()
    run = pyasg.jit_to_backend(gather_graph(), backend)
    with pytest.raises(BackendError, match=message):
        run(argument, np.array([0, 1], np.int32))
    with pytest.raises(BackendError, match="takes 2 arrays, got 1"):
        run(X)


def test_a_kernel_of_the_wrong_type_is_an_error_not_a_cast(monkeypatch) -> None:  # noqa: ANN001
    x = np.ones(3, np.float32)
    monkeypatch.setitem(KERNELS, ops.Neg, lambda op, x: -x.astype(np.float64))
    with pytest.raises(BackendError, match=r"reference kernel of neg gave float64\[3\], its "
                                           r"shape rule says f32\[3\]"):
        evaluate(ops.Neg(), x)
    monkeypatch.setitem(KERNELS, ops.Neg, lambda op, x: -x.reshape(3, 1))
    with pytest.raises(BackendError, match=r"gave float32\[3, 1\]"):
        evaluate(ops.Neg(), x)
    monkeypatch.delitem(KERNELS, ops.Neg)
    with pytest.raises(BackendError, match="the reference backend has no kernel for neg"):
        evaluate(ops.Neg(), x)


def test_results_never_alias_the_arguments() -> None:
    b = GraphBuilder()
    x = b.add_input("x", TensorType((3,)))
    graph = b.build([x, b.add(ops.StopGradient(), (x,)), b.add(ops.Reshape((3,)), (x,))])
    arg = np.ones(3, np.float32)
    run = pyasg.jit_to_backend(graph, "reference")
    assert run.kernel_count == 2  # the stop_gradient and the reshape; the input is no kernel
    for out in run(arg):
        assert not np.shares_memory(out, arg)
        out[...] = 7
    np.testing.assert_array_equal(arg, 1)


def test_eager_calls_and_constant_folding_evaluate_with_the_reference() -> None:
    """erf of float32: the reference's (scipy's, rounded once), not numpy's polynomial."""
    x = np.linspace(-3, 3, 10_001, dtype=np.float32)
    want = evaluate(ops.Erf(), x)
    assert not np.array_equal(erf_float32(x), want)  # so the two can be told apart
    np.testing.assert_array_equal(pyasg.erf(x), want)
    b = GraphBuilder()
    graph = b.build([b.add(ops.Erf(), (b.add(ops.Constant.of(x[:50])),))])
    folded = pyasg.simplify(graph)
    (out,) = folded.outputs
    assert isinstance(folded.nodes[out].op, ops.Constant)
    np.testing.assert_array_equal(folded.nodes[out].op.value, want[:50])
