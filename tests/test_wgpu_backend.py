"""The wgpu backend as a whole: every primitive has a kernel, arrays stay on the GPU,
one submission per step, dtypes and errors."""

import os
import subprocess
import sys

import numpy as np
import pytest
from wgpu_util import WGPU, require_wgpu

import pyasg
from pyasg.asg.ops import OPS
from pyasg.kernels import has_kernel

pytestmark = WGPU


def test_every_primitive_has_a_wgpu_kernel():
    from pyasg.kernels.wgpu import WgpuBackend

    missing = [name for name, cls in OPS.items() if name not in ("Input", "Constant")
               and not cls.inlined  # replaced by its sub-graph before lowering
               and not has_kernel(cls, WgpuBackend)]
    assert not missing, f"primitives without a wgpu kernel: {missing}"


def test_results_are_device_arrays_that_read_back_with_np_asarray():
    require_wgpu()
    from pyasg.kernels.wgpu import DeviceArray

    f = pyasg.jit(lambda x: x * 2.0 + 1.0, backend="wgpu")
    out = f(np.arange(4, dtype=np.float32))
    assert isinstance(out, DeviceArray) and out.shape == (4,)
    np.testing.assert_array_equal(np.asarray(out), [1.0, 3.0, 5.0, 7.0])


def test_a_second_step_allocates_nothing_and_uploads_no_parameters():
    require_wgpu()
    from pyasg.kernels.wgpu import COUNTERS

    @pyasg.jit(backend="wgpu")
    def step(params, x):
        return {k: p - 0.1 * (p * x) for k, p in params.items()}, x * 0.0

    params = {"w": np.ones((64, 64), np.float32), "b": np.zeros(64, np.float32)}
    x = np.full(64, 0.5, np.float32)
    params, _ = step(params, x)  # compiles; numpy parameters go up once
    counts = []
    for _ in range(3):
        COUNTERS.reset()
        params, _ = step(params, x)
        counts.append((COUNTERS.buffers_created, COUNTERS.uploads, COUNTERS.upload_bytes,
                       COUNTERS.submissions, COUNTERS.readbacks))
    # only the data batch x (64 floats) goes up; parameters stay resident; one submission
    assert counts == [(0, 1, 64 * 4, 1, 0)] * 3
    np.testing.assert_allclose(np.asarray(params["w"]), (1 - 0.05) ** 4, rtol=1e-6)


def test_float64_and_int64_arguments_compute_in_32_bits_as_documented():
    require_wgpu()
    f = pyasg.jit(lambda a, n: a * n, backend="wgpu")
    out = f(np.array([0.5, 1.5]), np.array([2, 3], np.int64))
    assert out.dtype == np.float32
    np.testing.assert_allclose(np.asarray(out), [1.0, 4.5])


def test_a_float64_graph_compiled_directly_is_converted_to_float32():
    require_wgpu()
    g = pyasg.make_graph(lambda x: x * 2.0)(np.ones(3))
    out = pyasg.jit_to_backend(g, "wgpu")(np.ones(3, np.float32))[0]
    assert out.dtype == np.float32


def test_a_shader_that_does_not_compile_names_the_op_and_shows_the_wgsl():
    require_wgpu()
    from pyasg.kernels.wgpu.pipelines import pipeline

    with pytest.raises(pyasg.BackendError, match=r"(?s)add \(node.*1 fn main\("):
        pipeline("fn main( {", "add (node %3)")


def test_no_adapter_names_the_debian_package_that_provides_one():
    require_wgpu()
    code = ("import pyasg, numpy as np\n"
            "try:\n"
            "    pyasg.jit(lambda x: x + 1.0, backend='wgpu')(np.ones(2, np.float32))\n"
            "except pyasg.BackendError as e:\n"
            "    print(e)\n")
    env = dict(os.environ, PYASG_WGPU_ADAPTER="no-such-gpu-anywhere")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=120).stdout
    assert "no-such-gpu-anywhere" in out and "matches no adapter" in out
    from pyasg.kernels.wgpu.device import NO_ADAPTER_HELP

    assert "mesa-vulkan-drivers" in NO_ADAPTER_HELP


def test_unknown_backend_lists_wgpu():
    with pytest.raises(pyasg.BackendError, match="wgpu"):
        pyasg.jit(lambda x: x, backend="cuda")(np.ones(1))
