"""fuse's rules table, row by row: switching each rule off changes the groups of a small
graph chosen for it as stated; every rule has such a case; with any rule off the fused
graph still means the same; unknown rule names are errors; views declare their kind."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_fuse import matmul_graphs, random_graphs

import pyasg
from pyasg.asg import ops
from pyasg.asg.graph import Graph
from pyasg.compile.pipeline import default_pipeline
from pyasg.kernels.reference import run_graph
from pyasg.transforms.fuse import RULES, FuseOptions, UnknownRuleError, find_groups, fuse, without

NUMPY = FuseOptions(max_inputs=32, matmul_epilogue=True)
WGPU = FuseOptions(max_inputs=7, matmul_epilogue=True, matmul_views=True,
                   recompute_fraction=1 / 16)
X = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
W = X.T.copy()
BIAS = np.arange(3, dtype=np.float32)
SQUARE = np.linspace(-1, 1, 16, dtype=np.float32).reshape(4, 4)


def traced(fn: Callable, *arrays: np.ndarray) -> Callable[[], tuple[Graph, list]]:
    return lambda: (default_pipeline(pyasg.make_graph(fn)(*arrays)), list(arrays))


def names(g: Graph, groups: list[list[int]]) -> list[tuple[str, ...]]:
    return [tuple(g.nodes[i].op.name for i in group) for group in groups]


# --------------------------------------------------------------------------- graphs


def multi_use(x):  # noqa: ANN001, ANN201
    a = pyasg.exp(x * 3.0)
    return pyasg.sin(a) * 2.0, pyasg.cos(a) + 1.0


def leaf_operand(x):  # noqa: ANN001, ANN201  (-x read by the add and by a transpose leaf)
    n = -x
    return (n + n.T).T


def graph_output(x):  # noqa: ANN001, ANN201
    y = pyasg.exp(x) * 2.0
    return y, pyasg.tanh(y) + 1.0


def deep(x):  # noqa: ANN001, ANN201
    for _ in range(10):
        x = pyasg.sin(x)
    return x


def softmax_with_guard(x):  # noqa: ANN001, ANN201  (the guarded row sums: read twice)
    e = pyasg.exp(x - pyasg.max(x, axis=1, keepdims=True))
    s = pyasg.sum(e, axis=1, keepdims=True)
    safe = pyasg.where(s > 0.0, s, 1.0)
    return e / safe, pyasg.log(safe) * 2.0 + x


def prologue_and_epilogue(x):  # noqa: ANN001, ANN201  (e read by the sum and the product)
    e = pyasg.exp(x)
    return pyasg.sum(e, axis=1, keepdims=True) * e


def two_reductions(x):  # noqa: ANN001, ANN201  (the inner sum has the outer's shape)
    return pyasg.sum(pyasg.exp(pyasg.sum(x, axis=1, keepdims=True)), axis=1, keepdims=True)


def six_products(*a):  # noqa: ANN002, ANN201
    return pyasg.tanh(a[0] * a[1] + a[2] * a[3] - a[4] * a[5])


# --------------------------------------------------------------------------- the cases

GUARD = ("constant", "greater", "constant", "where")  # the guarded sum, recomputed


@dataclass(frozen=True)
class Case:
    """Rule `rule` on `graph` with `options`: the groups (op names) with it and without."""

    rule: str
    graph: Callable[[], tuple[Graph, list]]
    options: FuseOptions
    on: list[tuple[str, ...]]
    off: list[tuple[str, ...]]


CASES = [
    # start: without the rule, nothing roots a group here
    Case("elementwise root", traced(lambda x: pyasg.tanh(x * 2.0), X), NUMPY,
         [("constant", "mul", "tanh")], []),
    Case("reduction root", traced(lambda x: pyasg.sum(pyasg.exp(x)), X), NUMPY,
         [("exp", "sum")], []),
    Case("matmul with views", traced(lambda x, w: x @ w.T, X, X), WGPU,
         [("transpose", "matmul")], []),
    Case("store transpose root", traced(lambda x, w: (x @ w).T, X, W), WGPU,
         [("matmul", "transpose")], []),
    # grow: without the rule, that producer stays outside (or is read, not copied)
    Case("scalar constant", traced(lambda x: pyasg.exp(x) * 2.0, X), NUMPY,
         [("exp", "constant", "mul")], [("exp", "mul")]),
    Case("shared small value", traced(softmax_with_guard, np.ones((8, 16), np.float32)), WGPU,
         [("sub", "exp"), GUARD, (*GUARD, "div"), (*GUARD, "log", "constant", "mul", "add")],
         [("sub", "exp"), ("sum", *GUARD), ("log", "constant", "mul", "add")]),
    Case("store transpose", traced(lambda x, w: pyasg.tanh((x @ w).T), X, W), WGPU,
         [("matmul", "transpose", "tanh")], [("transpose", "tanh")]),
    Case("transpose leaf", traced(lambda x, y: pyasg.sum(x.T * y, axis=0), X, W), NUMPY,
         [("transpose", "mul", "sum")], [("mul", "sum")]),
    Case("broadcast", traced(lambda x, b: pyasg.tanh(x + pyasg.broadcast_to(b, (3, 4))),
                             X, X[0]), NUMPY,
         [("broadcast_to", "add", "tanh")], [("add", "tanh")]),
    Case("elementwise producer", traced(lambda x: pyasg.tanh(pyasg.exp(x)), X), NUMPY,
         [("exp", "tanh")], []),
    Case("reduction epilogue", traced(lambda x: pyasg.sqrt(pyasg.sum(pyasg.exp(x), axis=1)),
                                      X), NUMPY,
         [("exp", "sum", "sqrt")], [("exp", "sum")]),
    Case("matmul operand views", traced(lambda x, w, b: pyasg.tanh(x @ w.T + b), X, X, BIAS),
         WGPU, [("transpose", "matmul", "add", "tanh")], [("matmul", "add", "tanh")]),
    Case("matmul head", traced(lambda x, w, b: pyasg.tanh(x @ w + b), X, W, BIAS), NUMPY,
         [("matmul", "add", "tanh")], [("add", "tanh")]),
    # break: without the rule, the producer joins (computed twice where others read it)
    Case("multi-use", traced(multi_use, X), NUMPY,
         [("constant", "mul", "exp"), ("sin", "constant", "mul"), ("cos", "constant", "add")],
         [("constant", "mul", "exp", "sin", "constant", "mul"),
          ("constant", "mul", "exp", "cos", "constant", "add")]),
    Case("leaf operand", traced(leaf_operand, SQUARE), NUMPY,
         [("transpose", "add")], [("neg", "transpose", "add")]),
    Case("graph output", traced(graph_output, X), NUMPY,
         [("exp", "constant", "mul"), ("tanh", "constant", "add")],
         [("exp", "constant", "mul", "tanh", "constant", "add")]),
    Case("input cap", traced(six_products, *[X + k for k in range(6)]),
         FuseOptions(max_inputs=2), [("sub", "tanh")],
         [("mul", "mul", "add", "mul", "sub", "tanh")]),
    Case("input cap", traced(lambda x, w: x @ w.T, X, X),  # the group row: a matmul's operands
         FuseOptions(max_inputs=1, matmul_epilogue=True, matmul_views=True),
         [], [("transpose", "matmul")]),
    Case("depth cap", traced(deep, X), FuseOptions(max_depth=4),
         [("sin",) * 2, ("sin",) * 4, ("sin",) * 4], [("sin",) * 10]),
    Case("one head", traced(two_reductions, X), NUMPY,
         [("exp", "sum")], [("sum", "exp", "sum")]),
    Case("prologue and epilogue", traced(prologue_and_epilogue, np.ones((4, 1), np.float32)),
         NUMPY, [("sum", "mul")], [("exp", "sum", "mul")]),
    Case("single op", traced(pyasg.exp, X), NUMPY, [], [("exp",)]),
]


def test_every_rule_has_a_case_and_every_case_a_rule() -> None:
    assert {c.rule for c in CASES} == {r.name for r in RULES}
    # a rule with two rows (input cap: joins and whole groups) has a case for each
    assert [c.rule for c in CASES].count("input cap") == 2


@pytest.mark.parametrize("case", CASES, ids=[f"{c.rule}-{k}" for k, c in enumerate(CASES)])
def test_switching_a_rule_off_changes_the_groups_as_stated(case: Case) -> None:
    g, arrays = case.graph()
    assert names(g, find_groups(g, case.options)) == case.on
    assert names(g, find_groups(g, case.options, disabled={case.rule})) == case.off
    # either way, the fused graph computes what the graph does (a value pulled into a
    # group while others read it, is computed twice)
    want = run_graph(g, arrays)
    for disabled in (frozenset(), {case.rule}):
        got = run_graph(fuse(g, case.options, disabled), arrays)
        for x, y in zip(got, want, strict=True):
            np.testing.assert_array_equal(x, y)


def test_without_the_multi_use_rule_a_shared_producer_is_computed_twice() -> None:
    g, _ = traced(multi_use, X)()
    exps = lambda f: sum(op.name == "exp" or "exp" in getattr(op, "op_names", ())  # noqa: E731
                         for op in (f.nodes[i].op for i in f.live_ids))
    assert exps(fuse(g, NUMPY)) == 1 and exps(fuse(g, NUMPY, disabled={"multi-use"})) == 2
    kernels = [pyasg.jit_to_backend(fuse(g, NUMPY, d), fuse=False).kernel_count
               for d in ((), {"multi-use"})]
    assert kernels == [3, 2]


# --------------------------------------------------------------------------- any rule off

ANY_RULE = sorted({r.name for r in RULES})
GROWING = sorted({r.name for r in RULES if r.stage in ("start", "grow")})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(random_graphs(), matmul_graphs()), st.sampled_from(ANY_RULE),
       st.sampled_from([NUMPY, WGPU]))
def test_with_any_rule_off_the_fused_graph_means_the_same(case, rule, options) -> None:  # noqa: ANN001
    g, arrays = case
    want = run_graph(g, arrays)
    got = run_graph(fuse(g, options, disabled={rule}), arrays)
    for x, y in zip(got, want, strict=True):
        np.testing.assert_array_equal(x, y)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_graphs(), st.sampled_from(GROWING))
def test_with_a_start_or_grow_rule_off_numpy_runs_the_groups(case, rule) -> None:  # noqa: ANN001
    g, arrays = case
    want = pyasg.jit_to_backend(g, fuse=False)(*arrays)
    got = pyasg.jit_to_backend(fuse(g, NUMPY, disabled={rule}), fuse=False)(*arrays)
    for x, y in zip(got, want, strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-6)


# --------------------------------------------------------------------------- the table


def test_an_unknown_rule_name_is_an_error_naming_the_rules() -> None:
    g, _ = traced(lambda x: pyasg.exp(x) * 2.0, X)()
    with pytest.raises(UnknownRuleError, match="'multi use'.*multi-use"):
        fuse(g, disabled={"multi use"})
    with pytest.raises(UnknownRuleError, match="a collection of rule names"):
        find_groups(g, disabled="multi-use")
    assert issubclass(UnknownRuleError, pyasg.PyasgError)


def test_the_table_minus_rows_is_the_table_without_them() -> None:
    assert without(()) == RULES
    assert [r.name for r in without({"multi-use", "single op"})] == [
        r.name for r in RULES if r.name not in ("multi-use", "single op")]


def test_every_rule_is_documented_and_every_stage_known() -> None:
    for rule in RULES:
        assert rule.stage in ("start", "grow", "break")
        assert len(rule.doc) > 40, rule.name  # its docstring is its documentation
        assert (rule.stage == "break") == bool(rule.judges), rule.name


def test_every_view_op_declares_what_it_does_to_positions() -> None:
    # the rules tell views apart by `view_kind`; a view without one would join nothing
    views = {cls.__name__: cls.view_kind for cls in ops.OPS.values()
             if cls.fusion_role == "view"}
    assert views == {"Reshape": "reshape", "Transpose": "permute", "BroadcastTo": "broadcast",
                     "StopGradient": "identity"}
    assert all(cls.view_kind is None for cls in ops.OPS.values() if cls.fusion_role != "view")
