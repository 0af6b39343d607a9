"""The rules table groups exactly as the loop it replaced (`fuse_legacy`): the training
steps of W1, W2, W3 and the charlm demo, and random graphs, with the numpy and wgpu
options and a few that stress the caps and switches. (A change meant to group
differently deletes this test and `fuse_legacy.py`.)"""

from __future__ import annotations

import fuse_legacy
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import random_graphs as strategy_graphs
from test_fuse import matmul_graphs, random_graphs

import pyasg
from benchmarks import workloads
from pyasg.asg.graph import Graph
from pyasg.compile.pipeline import default_pipeline
from pyasg.compile.registry import get_backend
from pyasg.examples import charlm
from pyasg.transforms.fuse import FuseOptions, find_groups

OPTIONS = {
    "numpy": get_backend("numpy").fusion_options(),
    "wgpu": FuseOptions(max_inputs=7, matmul_epilogue=True, matmul_views=True,
                        recompute_fraction=1 / 16),
    "recompute": FuseOptions(max_inputs=32, matmul_epilogue=True, recompute_fraction=1 / 4),
    "tight": FuseOptions(max_inputs=2, max_depth=3, matmul_epilogue=True, matmul_views=True,
                         recompute_fraction=1 / 2),
    "no epilogues": FuseOptions(max_inputs=3, reduction_epilogue=False),
}


def step_graph(w: workloads.Workload) -> Graph:
    return default_pipeline(pyasg.make_graph(w.step.fn)(*w.args()))


def charlm_graph() -> Graph:
    config = charlm.ModelConfig(context=8, embed_dim=16, num_heads=2, num_layers=1)
    trainer = charlm.Trainer(config, data=np.arange(400, dtype=np.int32) % 50)
    x, y = charlm.batch(trainer.data, seed=0, step=0, batch_size=2, context=8)
    step = trainer._train_step.fn
    return default_pipeline(pyasg.make_graph(step)(trainer.params, trainer.opt_state, x, y))


@pytest.fixture(scope="module")
def steps() -> dict[str, Graph]:
    return {"W1": step_graph(workloads.build("W1", batch=2, sizes=(12, 8, 4))),
            "W2": step_graph(workloads.build("W2", batch=2, seq=8, d_model=16, heads=4,
                                             blocks=2)),
            "W3": step_graph(workloads.build("W3", batch=2, image=8, channels=(1, 4, 6))),
            "charlm": charlm_graph()}


def assert_same_groups(g: Graph, options: FuseOptions) -> list[list[int]]:
    new = find_groups(g, options)
    assert new == fuse_legacy.find_groups(g, options)
    return new


@pytest.mark.parametrize("name", list(OPTIONS))
def test_training_steps_group_as_before(steps, name: str) -> None:  # noqa: ANN001
    for step in steps.values():
        assert assert_same_groups(step, OPTIONS[name])


def test_w2_at_the_benchmark_size_groups_as_before() -> None:
    g = step_graph(workloads.build("W2", batch=2))
    for options in (OPTIONS["numpy"], OPTIONS["wgpu"]):
        assert assert_same_groups(g, options)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(random_graphs(), matmul_graphs(), strategy_graphs()),
       st.sampled_from(list(OPTIONS)))
def test_random_graphs_group_as_before(case, name: str) -> None:  # noqa: ANN001
    assert_same_groups(case[0], OPTIONS[name])
