"""The compile layer: the backend protocol, the registry, the pipeline and the jit cache."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from wgpu_util import require_wgpu

import pyasg
from pyasg.asg import ops
from pyasg.compile.pipeline import jit_to_backend, lower_graph
from pyasg.compile.protocol import Backend, FuseOptions
from pyasg.compile.registry import get_backend
from pyasg.errors import BackendError, ShapeError
from pyasg.kernels.reference import ReferenceExecutable


class CountingBackend(Backend):
    """A backend of a test's own: the reference executable, with fusion options and a
    count of what the compiler asked it."""

    name = "counting"

    def __init__(self, options: FuseOptions | None) -> None:
        self.options, self.compiled = options, []

    def fusion_options(self) -> FuseOptions | None:
        return self.options

    def compile(self, graph, name="graph", donated=()):  # noqa: ANN001, ANN201
        self.compiled.append(graph)
        return ReferenceExecutable(graph, name)


def test_lower_returns_the_executable_of_its_own_arguments_signature() -> None:
    f = pyasg.jit(lambda x: x * 2.0, backend="numpy")
    f(np.ones(2, np.float32))
    f(np.ones(5, np.float32))
    assert f.lower(np.ones(2, np.float32)).graph.input_types == (pyasg.TensorType((2,)),)
    assert f.lower(np.ones(5, np.float32)).graph.input_types == (pyasg.TensorType((5,)),)
    assert f.cache_size == 2


def test_a_backend_of_ones_own_runs_through_jit_without_registering_a_name() -> None:
    backend = CountingBackend(FuseOptions(max_inputs=4))
    f = pyasg.jit(lambda x: pyasg.exp(x * 2.0 + 1.0).sum(), backend=backend)
    out = f(np.arange(3, dtype=np.float64))
    np.testing.assert_allclose(out, np.exp(np.arange(3) * 2.0 + 1.0).sum())
    (graph,) = backend.compiled
    # its fusion options were used: the elementwise chain and the sum are one Fused node
    assert [graph.nodes[i].op.name for i in graph.live_ids] == ["input", "fused"]


def test_a_backend_without_fusion_options_gets_the_graph_unfused() -> None:
    backend = CountingBackend(None)
    graph = pyasg.make_graph(lambda x: pyasg.exp(x * 2.0))(np.ones(3, np.float32))
    lowered = lower_graph(graph, backend)
    assert lowered == graph
    assert not any(isinstance(n.op, ops.Fused) for n in lowered.nodes.values())


def test_a_backend_that_lacks_a_dtype_gets_it_converted() -> None:
    class Narrow(CountingBackend):
        converts = {"float64": "float32"}

    backend = Narrow(None)
    out = jit_to_backend(pyasg.make_graph(lambda x: x + 1.0)(np.ones(2)), backend)
    assert backend.compiled[0].output_types == (pyasg.TensorType((2,), "float32"),)
    assert out(np.ones(2, np.float32))[0].dtype == np.float32


def test_the_registry_makes_each_backend_once_and_names_the_choices() -> None:
    assert get_backend("numpy") is get_backend("numpy")
    assert get_backend("reference").name == "reference"
    with pytest.raises(BackendError, match="available: numpy, reference, wgpu"):
        get_backend("tpu")


def test_the_reference_backend_runs_a_training_step_like_numpy() -> None:
    rng = np.random.default_rng(0)
    w, x = rng.standard_normal((3, 2)), rng.standard_normal((5, 3))

    def step(w, x):  # noqa: ANN001, ANN202
        loss, g = pyasg.value_and_grad(lambda w: pyasg.mean(pyasg.tanh(x @ w) ** 2))(w)
        return w - 0.1 * g, loss

    want = pyasg.jit(step, backend="numpy")(w, x)
    got = pyasg.jit(step, backend="reference")(w, x)
    for a, b in zip(want, got):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_an_error_names_the_users_line_by_default() -> None:
    # raised deep inside pyasg (the backend registry), located at the caller's line
    line = inspect.currentframe().f_lineno + 2
    with pytest.raises(BackendError) as caught:
        get_backend("tpu")
    assert caught.value.source.endswith(f"test_compile.py:{line}")
    assert str(caught.value).endswith(caught.value.source)
    assert ShapeError("no place", None).source is None
    assert ShapeError("given", "model.py:3").source == "model.py:3"


@pytest.mark.wgpu
@pytest.mark.parametrize("value, says", [
    (np.array([2**40 + 1, 3]), "holds 1099511627777, which int32 cannot hold"),
    (np.array([-(2**31) - 1]), "which int32 cannot hold"),
    (np.array([1e300, 1.0]), "holds 1e\\+300, which float32 cannot hold"),
])
def test_a_64_bit_argument_that_does_not_fit_32_bits_is_refused_on_wgpu(value, says) -> None:
    """wgpu computes int64/float64 in 32 bits: a value that would change (2**40 + 1 to
    1, 1e300 to inf) is refused at upload, naming the argument; one that fits runs."""
    require_wgpu()
    f = pyasg.jit(lambda x: x + 0, backend="wgpu")
    with pytest.raises(BackendError, match=says):
        f(value)
    fits = value.clip(-(2**31), 2**31 - 1) if value.dtype.kind == "i" else np.array([1e30, 1.0])
    np.testing.assert_array_equal(np.asarray(f(fits)), fits.astype(np.asarray(f(fits)).dtype))
