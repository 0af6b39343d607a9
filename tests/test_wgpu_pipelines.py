"""Pipelines compiled in parallel (`pyasg.kernels.wgpu.pipelines.compile_all`): the same
pipelines as one at a time, cached by source, and a failing kernel named as without threads."""

import numpy as np
import pytest
from wgpu_util import WGPU, require_wgpu

import pyasg

pytestmark = WGPU


def _source(k: int) -> str:
    """A distinct, valid kernel per k (the constant differs)."""
    return ("@group(0) @binding(0) var<storage, read_write> out: array<f32>;\n"
            "@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) i: vec3<u32>)"
            f" {{\n  if (i.x < arrayLength(&out)) {{ out[i.x] = f32(i.x) + {k}.0; }}\n}}\n")


def test_compile_all_fills_the_cache_that_pipeline_reads():
    require_wgpu()
    from pyasg.kernels.wgpu import pipelines

    sources = [_source(1000 + k) for k in range(6)]
    pipelines.compile_all((s, f"kernel {k}") for k, s in enumerate(sources))
    cached = [pipelines._PIPELINES[s] for s in sources]
    assert len({id(p) for p in cached}) == len(sources)
    assert all(pipelines.pipeline(s, "again") is p for s, p in zip(sources, cached))


def test_the_first_failing_kernel_in_order_is_named_with_threads_too(monkeypatch):
    require_wgpu()
    from pyasg.kernels.wgpu import pipelines

    monkeypatch.setattr(pipelines, "THREADS", 4)
    items = [(_source(2000), "good 0"), ("fn main( {", "broken 1"), (_source(2001), "good 2"),
             ("fn main( ) { let x: f32 = true; }", "broken 3")]
    with pytest.raises(pyasg.BackendError, match=r"(?s)broken 1.*1 fn main\( \{"):
        pipelines.compile_all(items)
    assert _source(2000) in pipelines._PIPELINES  # what compiled is kept


@pytest.mark.parametrize("threads", [1, 4])
def test_a_step_compiled_with_and_without_threads_computes_the_same(monkeypatch, threads):
    require_wgpu()
    from pyasg.kernels.wgpu import pipelines

    monkeypatch.setattr(pipelines, "THREADS", threads)
    monkeypatch.setattr(pipelines, "_PIPELINES", {})  # nothing cached: every kernel compiles
    x = np.linspace(-2, 2, 24, dtype=np.float32).reshape(4, 6)
    f = pyasg.jit(lambda a: pyasg.tanh(a @ a.T).sum(axis=0) + pyasg.exp(a).max(), backend="wgpu")
    want = np.tanh(x @ x.T).sum(axis=0) + np.exp(x).max()
    np.testing.assert_allclose(np.asarray(f(x)), want, rtol=1e-5)
    assert len(pipelines._PIPELINES) >= 3
