"""The generators' load/store hooks, run on the GPU, and the elementwise table's registration.

Each generator is handed hooks of the test's own (a scaled read, a shifted or
transposed write, an operand stored transposed) and its kernel is run directly on
buffers; values are small multiples of 1/4, so every sum is exact and the results must
equal numpy's bit for bit. The planner's split passes are included: a split must read
through the source once and write through the sink once (in its last pass).
"""

from __future__ import annotations

import numpy as np
import pytest
from wgpu_util import WGPU, require_wgpu

from pyasg.asg import ops
from pyasg.asg.graph import GraphBuilder
from pyasg.asg.ops import OPS, Fused
from pyasg.asg.types import TensorType
from pyasg.kernels import has_kernel, lower
from pyasg.kernels.wgpu import WgpuBackend, WgpuKernel
from pyasg.kernels.wgpu.array import DeviceArray, create_buffer
from pyasg.kernels.wgpu.device import get_device
from pyasg.kernels.wgpu.elementwise import EXPRESSIONS, Expr, elementwise_pass, expression
from pyasg.kernels.wgpu.fused import fused_kernel
from pyasg.kernels.wgpu.matmul import Matrix, Problem, View, matmul_kernel
from pyasg.kernels.wgpu.pipelines import pipeline
from pyasg.kernels.wgpu.reductions import Reducer, Sink, Source, layout, plan
from pyasg.kernels.wgpu.shader import Buffer

pytestmark = WGPU

X = Buffer("x", "f32", ("in", 0))
OUT = Buffer("out", "f32", ("out",))


def quarters(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).integers(-8, 8, shape) / 4).astype(np.float32)


def run(kernel: WgpuKernel, inputs: list[np.ndarray], out: TensorType) -> np.ndarray:
    """Run `kernel` on `inputs` (its ("in", k) bindings) into a zeroed `out`."""
    require_wgpu()
    device = get_device()
    ins = [DeviceArray.from_numpy(x).buffer for x in inputs]
    result = DeviceArray.from_numpy(np.zeros(out.shape, out.dtype))
    scratch = [create_buffer(n) for n in kernel.scratch]
    where = {"in": lambda k: ins[k], "out": lambda: result.buffer, "tmp": lambda k: scratch[k]}
    encoder = device.create_command_encoder()
    for d in kernel.dispatches:
        pipe = pipeline(d.source, "a test kernel")
        buffers = [where[b[0]](*b[1:]) for b in d.bindings]
        group = device.create_bind_group(layout=pipe.get_bind_group_layout(0), entries=[
            {"binding": k, "resource": {"buffer": buf, "offset": 0, "size": buf.size}}
            for k, buf in enumerate(buffers)])
        compute = encoder.begin_compute_pass()
        compute.set_pipeline(pipe)
        compute.set_bind_group(0, group)
        compute.dispatch_workgroups(*d.workgroups)
        compute.end()
    device.queue.submit([encoder.finish()])
    return result.numpy()


# --------------------------------------------------------------------------- reductions

PATHS = [((5, 7), (1,), 1),       # a thread per output, serial
         ((6, 1000), (1,), 1),    # a workgroup per row
         ((300, 40), (0,), 1),    # column workgroups
         ((3, 70000), (1,), 2),   # row, split in two passes
         ((20000, 3), (0,), 2)]   # column, split


@pytest.mark.parametrize("shape,axes,passes", PATHS)
def test_a_reduction_reads_through_its_source_and_writes_through_its_sink(
        shape: tuple[int, ...], axes: tuple[int, ...], passes: int) -> None:
    x = quarters(shape)
    src = Source(lambda sh, at: f"(2.0 * {X.load(sh, at)})")
    sink = Sink(lambda sh, at, value: OUT.store(sh, at, f"{value} + 1.0"))
    dispatches, scratch = plan(Reducer("sum", "f32"), layout(shape, axes), src, sink)
    assert len(dispatches) == passes
    want = 2 * x.sum(axis=axes) + 1
    got = run(WgpuKernel(dispatches, scratch), [x], TensorType(want.shape))
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("n", [50, 3000, 300_000])  # serial, a workgroup, split
def test_an_argmax_carries_indices_through_its_split(n: int) -> None:
    x = quarters((2, n), seed=1)  # many ties: the first minimum must win
    src = Source(lambda sh, at: f"(-{X.load(sh, at)})")  # argmax of -x: argmin of x
    sink = Sink(Buffer("out", "i32", ("out",)).store)
    dispatches, scratch = plan(Reducer("argmax", "f32"), layout(x.shape, (1,)), src, sink)
    got = run(WgpuKernel(dispatches, scratch), [x], TensorType((2,), "int32"))
    np.testing.assert_array_equal(got, x.argmin(axis=1))


# --------------------------------------------------------------------------- matmul

@pytest.mark.parametrize("m,n,k,passes", [(33, 20, 50, 1), (16, 12, 3000, 2)])
def test_a_gemm_reads_a_view_and_writes_through_its_store(m: int, n: int, k: int,
                                                          passes: int) -> None:
    """A stored transposed (k x m) and read through a view; the product written
    transposed and halved by the store hook (in a split, by the summing pass)."""
    a_t, b = quarters((k, m), seed=2), quarters((k, n), seed=3)
    p = Problem.of(TensorType((m, k)), TensorType((k, n)))
    a = View("a", "at", ("in", 0), "f32", f"  let off = c * {m}u + r;")

    def store(sh, q, value):  # noqa: ANN001, ANN202
        return OUT.store(sh, f"(({q}) % {n}u) * {m}u + ({q}) / {n}u", f"0.5 * {value}")

    kernel = matmul_kernel(TensorType((m, k)), TensorType((k, n)),
                           operands=(a, Matrix.rhs(p, "b", ("in", 1))), store=store)
    assert len(kernel.dispatches) == passes
    got = run(kernel, [a_t, b], TensorType((n, m)))
    np.testing.assert_array_equal(got, 0.5 * (a_t.T @ b).T)


def test_a_fused_product_is_stored_in_its_own_type_whatever_the_epilogue_makes_of_it() -> None:
    # matmul -> cast to int32 inside one group: the store hook takes the f32 product
    b = GraphBuilder()
    x = b.add_input("x", TensorType((5, 6)))
    w = b.add_input("w", TensorType((6, 7)))
    sub = b.build([b.add(ops.Cast("int32"), (b.add(ops.MatMul(), (x, w)),))])
    xs, ws = quarters((5, 6), seed=4), quarters((6, 7), seed=5) * 4
    kernel = fused_kernel(Fused(sub), sub.input_types, TensorType((5, 7), "int32"))
    got = run(kernel, [xs, ws], TensorType((5, 7), "int32"))
    np.testing.assert_array_equal(got, (xs @ ws).astype(np.int32))


# --------------------------------------------------------------------------- elementwise

def test_the_elementwise_pass_reads_and_writes_through_its_hooks() -> None:
    x, y = quarters((4, 5), seed=6), quarters((5,), seed=7)
    t, ty = TensorType((4, 5)), TensorType((5,))
    loads = [lambda sh, at: f"abs({X.load(sh, at)})", Buffer("y", "f32", ("in", 1)).load]
    store = lambda sh, at, value: OUT.store(sh, f"19u - {at}", value)  # noqa: E731 (reversed)
    d = elementwise_pass(t, (t, ty), expression(ops.Sub(), (t, ty), t), loads, store)
    got = run(WgpuKernel((d,)), [x, y], t)
    np.testing.assert_array_equal(got.reshape(-1), (np.abs(x) - y).reshape(-1)[::-1])


def test_every_elementwise_op_has_one_expression_row_and_a_wgpu_kernel() -> None:
    elementwise = {cls for cls in OPS.values() if cls.fusion_role == "elementwise"}
    assert elementwise == set(EXPRESSIONS)
    assert [c.__name__ for c in EXPRESSIONS if not has_kernel(c, WgpuBackend)] == []


def test_the_single_op_and_the_fused_kernels_compute_the_same_row(monkeypatch) -> None:  # noqa: ANN001
    # change Exp's row: both kernels follow it, so neither has an expression of its own
    monkeypatch.setitem(EXPRESSIONS, ops.Exp, lambda op, ins, out: Expr("exp(a) * 1.5"))
    t = TensorType((3, 4))
    x = quarters((3, 4), seed=8)
    b = GraphBuilder()
    sub = b.build([b.add(ops.Neg(), (b.add(ops.Exp(), (b.add_input("x", t),)),))])
    fused_kernel.cache_clear()
    try:
        single = lower(ops.Exp(), WgpuBackend(), in_types=(t,), out_type=t)
        np.testing.assert_allclose(run(single, [x], t), np.exp(x) * 1.5, rtol=1e-6)
        fused = run(fused_kernel(Fused(sub), (t,), t), [x], t)
        np.testing.assert_allclose(fused, -np.exp(x) * 1.5, rtol=1e-6)
    finally:
        fused_kernel.cache_clear()  # its cached kernels hold the patched row
