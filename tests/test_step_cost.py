"""The step's cost on the graph (`pyasg.viewer.cost`): no display needed.

On the demo's training step (the character-level transformer of `pyasg demo`, small)
on numpy: every row of `pyasg.profile` lands on a node of the graph that ran, the
nodes' times add up to the profile's kernel total, the layout's boxes (collapsed or
not) hold every node once, fused nodes show their ops and their generated kernel,
and memory and FLOPs agree with the memory plan and an independent count.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from wgpu_util import WGPU, require_wgpu

import pyasg
from pyasg.asg.ops import Fused, Input, MatMul
from pyasg.examples import charlm
from pyasg.kernels.numpy.fused import fused_kernel
from pyasg.kernels.numpy.memory import nbytes
from pyasg.viewer import protocol
from pyasg.viewer.cost import (
    HEAT_STOPS,
    NO_COST,
    CostError,
    StepCost,
    box_heat,
    heat_color,
    inspector_lines,
    measure,
    step_cost,
)
from pyasg.viewer.layout import box_nodes, layout


@pytest.fixture(scope="module")
def demo():
    config = charlm.ModelConfig(context=8, embed_dim=16, num_heads=2, num_layers=2)
    data = np.random.default_rng(0).integers(0, len(charlm.VOCAB), 500, dtype=np.int32)
    trainer = charlm.Trainer(config, batch_size=4, data=data)
    x, y = charlm.batch(data, trainer.seed, 1, 4, 8)
    step = trainer._train_step
    args = (trainer.params, trainer.opt_state, x, y)
    executable = step.lower(*args)
    report = pyasg.profile(step, *args, repeat=2, warmup=1)
    return report, executable, step_cost(report, executable)


def test_every_timed_kernel_lands_on_its_node_and_the_sum_is_the_profiles(demo):
    report, executable, cost = demo
    assert report.rows and len(report.rows) == len(executable.kernels)
    for row in report.rows:
        node = cost.nodes[row.node]
        assert (node.seconds, node.dispatches, node.op) == (row.seconds, row.dispatches, row.op)
    assert cost.kernel_seconds == pytest.approx(report.kernel_seconds, rel=1e-12)
    ran = {i for i, c in cost.nodes.items() if c.dispatches}
    assert ran == set(executable.kernels)
    assert all(c.seconds == 0.0 for i, c in cost.nodes.items() if i not in ran)
    assert cost.step_seconds == report.step_seconds


@pytest.mark.parametrize("collapse", [[], ["blocks.*"], ["params", "opt_state"]])
def test_the_viewers_boxes_hold_every_nodes_cost_once(demo, collapse):
    report, executable, cost = demo
    lay = layout(executable.graph, collapse=collapse)
    owned = box_nodes(lay)
    assert set(owned) == set(lay.boxes)
    # parameters (and their transposes) are drawn inside the boxes that read them
    assert any(set(lay.boxes[k].nodes) < set(nodes) for k, nodes in owned.items())
    boxed = [i for nodes in owned.values() for i in nodes]
    assert len(boxed) == len(set(boxed)) and set(cost.nodes) <= set(boxed)
    total = math.fsum(cost.value(nodes, "time") for nodes in owned.values())
    assert total == pytest.approx(report.kernel_seconds, rel=1e-9)
    heat = box_heat(cost, owned, "time")
    shares = [v for v in heat.values() if v is not None]
    assert max(shares) == 1.0 and min(shares) > 0.0
    # a box without a kernel (an input) costs no time: the "no cost" colour
    inputs = [k for k, b in lay.boxes.items()
              if all(isinstance(executable.graph.nodes[i].op, Input) for i in b.nodes)]
    assert inputs and all(heat[k] is None for k in inputs)


def test_a_fused_node_shows_its_ops_and_its_generated_python(demo):
    _, executable, cost = demo
    fused = [i for i in cost.nodes if isinstance(executable.graph.nodes[i].op, Fused)]
    assert fused
    for i in fused:
        op = executable.graph.nodes[i].op
        assert cost.nodes[i].ops == op.op_names and len(op.op_names) >= 2
        source = cost.nodes[i].source
        assert source == fused_kernel(op).fn.source and source.startswith("def fused(")
        for name in op.op_names:
            if name not in ("transpose", "broadcast_to", "stop_gradient"):  # views: no call
                assert f"# {name}" in source
    unfused = [i for i, c in cost.nodes.items() if c.dispatches and i not in fused]
    assert unfused and all(cost.nodes[i].source is None for i in unfused)  # library kernels


def test_memory_follows_the_memory_plan(demo):
    _, executable, cost = demo
    plan, graph = executable.plan, executable.graph
    for i, c in cost.nodes.items():
        scratch = sum(plan.buffers[b][1] for b in plan.scratch_of.get(i, ()))
        if isinstance(graph.nodes[i].op, Input):
            assert c.bytes == 0 and "argument" in c.memory
        elif i in plan.buffer_of and i not in plan.inplace:
            assert c.bytes == nbytes(graph.nodes[i].type) + scratch
            assert c.memory.startswith(f"static buffer {plan.buffer_of[i]} ")
        elif i in plan.inplace:
            assert c.memory.startswith(f"in place of %{plan.inplace[i]}")
    assert any(c.memory.startswith("static buffer") for c in cost.nodes.values())
    assert cost.total_bytes > 0


def test_flops_are_two_per_multiply_add(demo):
    _, executable, cost = demo
    graph = executable.graph
    matmuls = [i for i in cost.nodes if isinstance(graph.nodes[i].op, MatMul)]
    assert matmuls
    for i in matmuls:
        a, b = (graph.nodes[j].type.shape for j in graph.nodes[i].inputs)
        out = graph.nodes[i].type.shape
        assert cost.nodes[i].flops == 2 * math.prod(out) * a[-1]
        assert b[-1] == out[-1]


def test_the_inspector_fields(demo):
    _, executable, cost = demo
    i = max((i for i in cost.nodes if isinstance(executable.graph.nodes[i].op, Fused)),
            key=lambda i: cost.nodes[i].seconds)
    c = cost.nodes[i]
    lines = inspector_lines(cost, [i], lambda key: key)
    assert lines[0] == (f"cost_time: {c.seconds * 1e3:.3f} ms "
                        f"({c.seconds / cost.step_seconds * 100:.1f}% cost_of_step)")
    assert lines[2].startswith("cost_memory: ") and c.memory in lines[2]
    assert f"cost_ops: {', '.join(c.ops)}" in lines
    assert lines[-2:] == ["cost_source:", c.source]
    box = inspector_lines(cost, list(cost.nodes), lambda key: key)
    assert box[0].startswith(f"cost_time: {cost.kernel_seconds * 1e3:.3f} ms")
    assert inspector_lines(cost, [10**9], lambda key: key) == ["cost_none"]


def test_cost_data_crosses_the_protocol_and_bad_data_is_named(demo):
    _, _, cost = demo
    back = StepCost.from_dict(cost.to_dict())
    assert back == cost
    event = protocol.decode(protocol.encode(pyasg.events.CostReady("s", "fused",
                                                                   cost.to_dict())))
    assert StepCost.from_dict(event.cost) == cost
    data = cost.to_dict()
    node = next(iter(data["nodes"]))
    data["nodes"][node]["seconds"] = -1.0
    with pytest.raises(CostError, match=rf"nodes\[{node}\].seconds must be a finite number"):
        StepCost.from_dict(data)
    with pytest.raises(protocol.ProtocolError, match="CostReady.cost"):
        protocol.encode(pyasg.events.CostReady("s", "fused", {"nodes": {}}))


def test_a_profile_of_another_step_is_refused(demo):
    report, _, _ = demo
    other = pyasg.jit(lambda x: pyasg.exp(x))
    x = np.ones(3, np.float32)
    with pytest.raises(CostError, match=r"times node %\d+, which is not a node that runs in"):
        step_cost(report, other.lower(x))


def test_measure_leaves_donated_arguments_untouched():
    step = pyasg.jit(lambda p, x: {"w": p["w"] - 0.1 * (x @ p["w"]).sum()},
                     donate_argnums=(0,))
    params = {"w": np.ones((3, 3), np.float32)}
    cost = measure(step, params, np.ones((2, 3), np.float32), repeat=2, warmup=1)
    np.testing.assert_array_equal(params["w"], np.ones((3, 3), np.float32))
    assert cost.kernel_seconds > 0 and cost.graph is not None


@given(st.lists(st.floats(0, 1), min_size=2, max_size=20))
def test_the_ramp_is_continuous_and_ends_at_its_stops(fractions):
    assert heat_color(0.0) == HEAT_STOPS[0][1] and heat_color(1.0) == HEAT_STOPS[-1][1]
    for f in fractions:
        near = heat_color(min(1.0, f + 1e-6))
        assert max(abs(a - b) for a, b in zip(heat_color(f), near)) <= 1
    assert heat_color(None) == NO_COST


@WGPU
def test_wgpu_nodes_show_their_wgsl():
    require_wgpu()
    step = pyasg.jit(lambda a, b: pyasg.reshape(pyasg.tanh(a @ b) * 2.0 + 1.0, (64,)).sum(),
                     backend="wgpu")
    a, b = np.ones((8, 4), np.float32), np.ones((4, 8), np.float32)
    report = pyasg.profile(step, a, b, repeat=2, warmup=1)
    cost = step_cost(report, step.lower(a, b))
    assert cost.kernel_seconds == pytest.approx(report.kernel_seconds, rel=1e-12)
    ran = [c for c in cost.nodes.values() if c.dispatches]
    assert ran and all(c.source and "@compute" in c.source for c in ran)
    assert cost.kernel_seconds > 0 and all(c.bytes > 0 for c in ran)
    graph = cost.graph
    for i, c in cost.nodes.items():
        if graph.nodes[i].op.name == "reshape":  # an alias: its input's buffer
            assert c.bytes == 0 and c.memory.startswith("an alias of %")
        elif not isinstance(graph.nodes[i].op, Input):
            assert c.memory.startswith("a device buffer (")


def test_a_cost_fits_only_the_graph_it_was_measured_on(demo):
    _, executable, cost = demo
    assert cost.fits(executable.graph)
    assert StepCost.from_dict(cost.to_dict()).fits(executable.graph)  # as the viewer has it
    config = charlm.ModelConfig(context=8, embed_dim=16, num_heads=2, num_layers=2)
    data = np.random.default_rng(0).integers(0, len(charlm.VOCAB), 500, dtype=np.int32)
    trainer = charlm.Trainer(config, batch_size=4, data=data)
    trainer.model.blocks[0].ff.activation = "relu"  # the step a model-lab change compiles
    trainer._compile()
    x, y = charlm.batch(data, trainer.seed, 1, 4, 8)
    again = trainer._train_step.lower(trainer.params, trainer.opt_state, x, y)
    assert not cost.fits(again.graph)
