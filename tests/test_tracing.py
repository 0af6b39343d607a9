"""Tracing: pytrees and their paths, input names, the jit cache, inlining, Python control
flow on static facts, output structure, backend choice, and events."""

from __future__ import annotations

from collections import namedtuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pyasg
from pyasg import BackendError, GraphReady, RunFinished, StepDone
from pyasg.compile import registry as jit_module
from pyasg.events import Called, Compiled, GradientInlined
from pyasg.trace.tree import TreeDef, flatten_with_paths

F32 = np.float32
Point = namedtuple("Point", ["x", "y"])
Layer = namedtuple("Layer", ["w", "b", "extra"])


def op_names(graph):
    return [graph[i].op.name for i in graph.topological_order()]


# --------------------------------------------------------------------------- pytrees


leaves = st.one_of(st.integers(), st.floats(allow_nan=False), st.text(max_size=3),
                   st.builds(lambda n: np.arange(n, dtype=F32), st.integers(0, 3)))
keys = st.text("abcdefgh_", min_size=1, max_size=4)
trees = st.recursive(
    st.one_of(leaves, st.none()),
    lambda kids: st.one_of(
        st.lists(kids, max_size=3),
        st.lists(kids, max_size=3).map(tuple),
        st.dictionaries(keys, kids, max_size=3),
        st.builds(Point, kids, kids),
    ),
    max_leaves=12,
)


def same_tree(a, b):
    """Structural equality, types included (a tuple is not a list, a namedtuple keeps its
    class), comparing arrays by value."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same_tree(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same_tree(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and np.array_equal(a, b)
    return a == b


@given(trees)
def test_flatten_unflatten_round_trip(tree):
    flat, treedef = pyasg.flatten(tree)
    assert isinstance(treedef, TreeDef)
    assert treedef.num_leaves == len(flat)
    assert same_tree(pyasg.unflatten(treedef, flat), tree)
    hash(treedef)  # a cache key
    # the paths list the same leaves in the same order, and paths are unique
    pairs, treedef2 = flatten_with_paths(tree)
    assert treedef2 == treedef
    assert [leaf for _, leaf in pairs] == flat or all(
        x is y for (_, x), y in zip(pairs, flat))
    assert len({p for p, _ in pairs}) == len(pairs)


@given(trees)
def test_tree_map_keeps_structure(tree):
    marked = pyasg.tree_map(lambda leaf: f"leaf:{id(leaf)}", tree)
    flat, treedef = pyasg.flatten(tree)
    flat2, treedef2 = pyasg.flatten(marked)
    assert treedef2 == treedef
    assert flat2 == [f"leaf:{id(leaf)}" for leaf in flat]


def test_none_is_an_empty_subtree_and_namedtuples_keep_their_class():
    tree = {"a": None, "b": [None, 1], "c": Layer(w=2, b=None, extra=(3,))}
    flat, treedef = pyasg.flatten(tree)
    assert flat == [1, 2, 3]
    back = pyasg.unflatten(treedef, [10, 20, 30])
    assert back == {"a": None, "b": [None, 10], "c": Layer(w=20, b=None, extra=(30,))}
    assert type(back["c"]) is Layer and type(back["c"].extra) is tuple
    assert isinstance(back["b"], list)


def test_dotted_paths():
    params = {"blocks": [{"attn": {"w_q": 1, "w_k": 2}, "mlp": Layer(3, 4, None)}],
              "head": (5, [6])}
    pairs, _ = flatten_with_paths(params)
    assert [p for p, _ in pairs] == [
        "blocks.0.attn.w_q", "blocks.0.attn.w_k", "blocks.0.mlp.w", "blocks.0.mlp.b",
        "head.0", "head.1.0"]
    assert [v for _, v in pairs] == [1, 2, 3, 4, 5, 6]
    pairs, _ = flatten_with_paths(params, prefix="params")
    assert pairs[0][0] == "params.blocks.0.attn.w_q"


def test_dict_insertion_order_is_kept_not_sorted():
    tree = {"zeta": 1, "alpha": 2, "mid": {"y": 3, "b": 4}}
    flat, treedef = pyasg.flatten(tree)
    assert flat == [1, 2, 3, 4]
    back = pyasg.unflatten(treedef, flat)
    assert list(back) == ["zeta", "alpha", "mid"] and list(back["mid"]) == ["y", "b"]
    # the order is part of the structure
    assert pyasg.flatten({"alpha": 2, "zeta": 1})[1] != pyasg.flatten({"zeta": 1, "alpha": 2})[1]


def test_unflatten_with_wrong_leaf_count_is_a_pyasg_error():
    _, treedef = pyasg.flatten({"a": 1, "b": [2]})
    with pytest.raises(pyasg.PyasgError):
        pyasg.unflatten(treedef, [1])


def test_tree_map_with_different_structures_is_a_pyasg_error():
    with pytest.raises(pyasg.PyasgError):
        pyasg.tree_map(lambda a, b: a + b, {"w": 1}, {"v": 1})


# --------------------------------------------------------------------------- input names


def test_graph_input_names_follow_parameters_and_dict_paths():
    def loss(params, x, labels):
        h = x @ params["blocks"][0]["attn"]["w_q"]
        return ((h - labels) ** 2).mean() + params["bias"].sum()

    params = {"blocks": [{"attn": {"w_q": np.ones((3, 2), F32)}}], "bias": np.zeros(2, F32)}
    g = pyasg.make_graph(loss)(params, np.ones((4, 3), F32), np.ones((4, 2), F32))
    assert g.input_names == ("params.blocks.0.attn.w_q", "params.bias", "x", "labels")
    assert [t.shape for t in g.input_types] == [(3, 2), (2,), (4, 3), (4, 2)]


def test_input_names_for_varargs_and_static_args():
    def f(x, n, *rest):
        return x * n + rest[0] + rest[1]

    a = np.ones(2, F32)
    g = pyasg.make_graph(f, static_argnums=1)(a, 3, a, a)
    assert g.input_names == ("x", "rest.0", "rest.1")


# --------------------------------------------------------------------------- the jit cache


def test_same_shapes_compile_once_new_batch_size_retraces():
    calls = []

    @pyasg.jit
    def f(x):
        calls.append(x.shape)
        return pyasg.tanh(x).sum(axis=0)

    a = np.random.default_rng(0).normal(size=(4, 3)).astype(F32)
    np.testing.assert_allclose(f(a), np.tanh(a).sum(axis=0), rtol=1e-6)
    np.testing.assert_allclose(f(a * 2), np.tanh(a * 2).sum(axis=0), rtol=1e-6)
    assert f.cache_size == 1 and calls == [(4, 3)]
    b = np.ones((7, 3), F32)
    np.testing.assert_allclose(f(b), np.tanh(b).sum(axis=0), rtol=1e-6)
    assert f.cache_size == 2 and calls == [(4, 3), (7, 3)]
    f(a)
    f(b)
    assert f.cache_size == 2 and len(calls) == 2


def test_new_dtype_or_tree_structure_retraces():
    f = pyasg.jit(lambda t: pyasg.tree_map(lambda v: v * 2, t))
    f({"a": np.ones(2, F32)})
    f({"a": np.ones(2, np.float64)})
    f({"a": np.ones(2, F32), "b": np.ones(2, F32)})
    f({"a": np.ones(2, F32)})
    assert f.cache_size == 3


def test_python_scalars_with_different_values_do_not_retrace():
    calls = []

    @pyasg.jit
    def scale(x, s):
        calls.append(1)
        return x * s

    x = np.arange(3, dtype=F32)
    np.testing.assert_array_equal(scale(x, 2.0), x * 2)
    np.testing.assert_array_equal(scale(x, 3.5), x * 3.5)  # not frozen into the graph
    np.testing.assert_array_equal(scale(x, -1.0), -x)
    assert scale.cache_size == 1 and len(calls) == 1
    assert scale(x, 2.0).dtype == F32  # a Python float stays weak


def test_static_argnums_retrace_and_are_python_data():
    calls = []

    def f(x, flag, n):
        calls.append((flag, n))
        if flag:  # a static value: plain Python data
            x = pyasg.relu(x)
        for _ in range(n):
            x = x * 2.0
        return x

    jf = pyasg.jit(f, static_argnums=(1, 2))
    x = np.array([-1.0, 2.0], F32)
    np.testing.assert_array_equal(jf(x, True, 1), np.array([0.0, 4.0], F32))
    np.testing.assert_array_equal(jf(x, False, 1), np.array([-2.0, 4.0], F32))
    np.testing.assert_array_equal(jf(x, True, 3), np.array([0.0, 16.0], F32))
    np.testing.assert_array_equal(jf(x, True, 1), np.array([0.0, 4.0], F32))
    assert jf.cache_size == 3 and calls == [(True, 1), (False, 1), (True, 3)]


def test_static_argnums_accepts_an_int_and_negative_positions():
    jf = pyasg.jit(lambda x, mode: pyasg.exp(x) if mode == "exp" else pyasg.sin(x),
                   static_argnums=-1)
    x = np.array([0.5], np.float64)
    np.testing.assert_allclose(jf(x, "exp"), np.exp(x))
    np.testing.assert_allclose(jf(x, "sin"), np.sin(x))
    assert jf.cache_size == 2


def test_jitted_function_called_inside_a_trace_is_inlined():
    @pyasg.jit
    def inner(x):
        return pyasg.sin(x) * 3.0

    def outer(x):
        return pyasg.exp(inner(x) + 1.0)

    x = np.linspace(-1, 1, 5)
    g = pyasg.make_graph(outer)(x)
    names = op_names(g)
    assert "sin" in names and "exp" in names and "mul" in names
    assert len(g.inputs) == 1 and len(g.outputs) == 1
    assert inner.cache_size == 0  # nothing was compiled for the inner function
    jouter = pyasg.jit(outer)
    np.testing.assert_allclose(jouter(x), np.exp(np.sin(x) * 3.0 + 1.0), rtol=1e-12)
    assert inner.cache_size == 0 and jouter.cache_size == 1


def test_python_control_flow_on_shapes_is_unrolled():
    def f(x):
        total = x[0] * 0.0
        for i in range(x.shape[0]):
            total = total + x[i] * float(i + 1)
        if x.ndim == 2:
            total = total.sum()
        if x.shape[-1] > 100:
            raise AssertionError("not taken")
        return total, len(x), x.size

    x = np.arange(12.0).reshape(4, 3)
    total, n, size = pyasg.jit(f)(x)
    weights = np.arange(1, 5)[:, None]
    np.testing.assert_allclose(total, (x * weights).sum())
    assert int(n) == 4 and int(size) == 12
    v = np.arange(3.0)
    total, n, _ = pyasg.jit(f)(v)
    np.testing.assert_allclose(total, (v * np.arange(1, 4)).sum())
    assert total.shape == ()


def test_returned_pytrees_keep_structure():
    def f(x):
        return {"out": [x, (x * 2.0, None)], "pt": Point(x.sum(), 3.0), "empty": ()}

    x = np.arange(3.0)
    r = pyasg.jit(f)(x)
    assert list(r) == ["out", "pt", "empty"]
    assert isinstance(r["out"], list) and isinstance(r["out"][1], tuple)
    assert r["out"][1][1] is None and r["empty"] == ()
    assert type(r["pt"]) is Point
    np.testing.assert_array_equal(r["out"][0], x)
    np.testing.assert_array_equal(r["out"][1][0], x * 2)
    assert float(r["pt"].x) == 3.0 and float(r["pt"].y) == 3.0


def test_constant_outputs_are_writable_copies():
    table = np.arange(3.0)

    @pyasg.jit
    def f(x):
        return x + 1.0, table, 5.0

    x = np.zeros(3)
    _, t1, c1 = f(x)
    for out in (t1, c1):
        assert isinstance(out, np.ndarray) and out.flags.writeable
    t1[0] = 100.0
    c1[...] = -1.0
    _, t2, c2 = f(x)  # the compiled constants are untouched
    np.testing.assert_array_equal(t2, np.arange(3.0))
    assert float(c2) == 5.0
    assert not np.shares_memory(t1, t2) and not np.shares_memory(t2, table)
    table[1] = 7.0  # the closure's array was captured by value at trace time
    np.testing.assert_array_equal(f(x)[1], np.arange(3.0))


# --------------------------------------------------------------------------- backends


@pytest.fixture
def clean_backend(monkeypatch):
    monkeypatch.setattr(jit_module, "_default_backend", None)
    monkeypatch.delenv("PYASG_BACKEND", raising=False)
    return monkeypatch


def test_set_default_backend_unknown_name(clean_backend):
    with pytest.raises(BackendError) as info:
        pyasg.set_default_backend("nope")
    assert "'nope'" in str(info.value) and "numpy" in str(info.value)
    assert pyasg.default_backend() == "numpy"  # unchanged
    pyasg.set_default_backend("numpy")
    assert pyasg.default_backend() == "numpy"


def test_pyasg_backend_env_var_is_honoured(clean_backend):
    clean_backend.setenv("PYASG_BACKEND", "nope")
    assert pyasg.default_backend() == "nope"
    f = pyasg.trace(lambda x: x * 2.0)
    with pytest.raises(BackendError, match="nope"):
        f(np.ones(2, F32))
    clean_backend.setenv("PYASG_BACKEND", "numpy")
    np.testing.assert_array_equal(f(np.ones(2, F32)), np.full(2, 2.0, F32))
    # an explicit backend wins over the environment
    clean_backend.setenv("PYASG_BACKEND", "nope")
    np.testing.assert_array_equal(pyasg.jit(lambda x: x + 1.0, backend="numpy")(np.ones(1)),
                                  [2.0])


def test_set_default_backend_wins_over_env_var(clean_backend):
    clean_backend.setenv("PYASG_BACKEND", "nope")
    pyasg.set_default_backend("numpy")
    assert pyasg.default_backend() == "numpy"
    np.testing.assert_array_equal(pyasg.trace(lambda x: -x)(np.ones(2)), -np.ones(2))


# --------------------------------------------------------------------------- events


@pytest.fixture
def subscribed():
    """subscribe(...) that is always undone at the end of the test."""
    undo = []

    def sub(callback, event_type=pyasg.events.Event):
        unsubscribe = pyasg.subscribe(callback, event_type)
        undo.append(unsubscribe)
        return unsubscribe

    yield sub
    for unsubscribe in undo:
        unsubscribe()


def test_graph_ready_once_per_compile_with_the_graph(subscribed):
    seen = []
    subscribed(seen.append, GraphReady)

    @pyasg.jit
    def model(x):
        return pyasg.exp(x).sum()

    model(np.ones(3, F32))
    model(np.zeros(3, F32))  # cached: no new event
    # the traced graph, then the graph that runs (here exp and sum fused into one node)
    assert [e.kind for e in seen] == ["forward", "fused"]
    event = seen[0]
    assert event.name == "model"
    assert isinstance(event.graph, pyasg.Graph)
    assert "exp" in op_names(event.graph) and event.graph.input_names == ("x",)
    assert "fused" in op_names(seen[1].graph)
    model(np.ones(5, F32))  # a new signature compiles again
    assert len(seen) == 4 and seen[2].graph.input_types[0].shape == (5,)


def test_a_raising_subscriber_does_not_break_compilation(subscribed, capsys):
    seen = []

    def broken(event):
        raise RuntimeError("subscriber bug")

    subscribed(broken, GraphReady)
    subscribed(seen.append, GraphReady)  # later subscribers still get the event
    out = pyasg.jit(lambda x: x * 3.0)(np.ones(2, F32))
    np.testing.assert_array_equal(out, np.full(2, 3.0, F32))
    assert len(seen) == 1
    assert "subscriber bug" in capsys.readouterr().err


def test_unsubscribe_stops_delivery(subscribed):
    seen = []
    unsubscribe = subscribed(seen.append, GraphReady)
    pyasg.jit(lambda x: x + 1.0)(np.ones(2, F32))
    unsubscribe()
    pyasg.jit(lambda x: x + 2.0)(np.ones(2, F32))
    assert len(seen) == 1
    unsubscribe()  # twice is harmless


def test_step_done_and_run_finished_are_delivered_by_type(subscribed):
    steps, everything = [], []
    subscribed(steps.append, StepDone)
    subscribed(everything.append)
    pyasg.publish(StepDone(step=1, loss=0.5, metrics={"acc": 0.9}))
    pyasg.publish(StepDone(step=2, loss=0.25))
    pyasg.publish(RunFinished())
    assert [(e.step, e.loss) for e in steps] == [(1, 0.5), (2, 0.25)]
    assert steps[0].metrics == {"acc": 0.9} and steps[1].metrics == {}
    assert [type(e) for e in everything] == [StepDone, StepDone, RunFinished]


def test_has_subscribers_follows_every_subscription_and_its_end(subscribed):
    class Probe(StepDone):
        pass

    assert not pyasg.events.has_subscribers(Probe)
    off_all = subscribed(print)  # every event, so also Probe
    assert pyasg.events.has_subscribers(Probe)
    off_all()
    assert not pyasg.events.has_subscribers(Probe)
    off_sub = subscribed(print, Probe)  # a listener of the subclass: a StepDone is wanted
    assert pyasg.events.has_subscribers(StepDone) and pyasg.events.has_subscribers(Probe)
    off_sub()
    assert not pyasg.events.has_subscribers(StepDone)


def test_compiled_once_and_called_per_call_with_the_arrays_themselves(subscribed):
    compiled, called = [], []
    subscribed(compiled.append, Compiled)
    subscribed(called.append, Called)

    @pyasg.jit(backend="numpy")
    def model(x, y):
        return pyasg.exp(x).sum() + y

    x, y = np.ones(3, F32), np.float32(2.0)
    model(x, y)
    model(x, y)
    (event,) = compiled
    assert event.name == "model" and event.published["forward"] is event.traced
    assert event.traced.input_names == ("x", "y") and "exp" in op_names(event.traced)
    assert "fused" in op_names(event.published["fused"])
    assert [(c.entry, c.calls) for c in called] == [(event.entry, 1), (event.entry, 2)]
    assert called[0].arguments[0] is x  # the caller's array: no copy
    model(np.ones(4, F32), y)  # a new signature is a new entry
    assert len({e.entry for e in compiled}) == 2 and called[-1].entry == compiled[-1].entry


def test_tracing_compiling_and_calls_publish_nothing_while_nobody_listens(monkeypatch):
    published = []
    monkeypatch.setattr(pyasg.events, "publish", published.append)
    step = pyasg.jit(pyasg.value_and_grad(lambda w: (w * w).sum()), backend="numpy")
    for _ in range(3):
        step(np.ones(2, F32))
    assert published == []


def test_gradient_inlined_names_the_trace_that_compiled_names_again(subscribed):
    inlined, compiled = [], []
    subscribed(inlined.append, GradientInlined)
    subscribed(compiled.append, Compiled)

    def loss(w, x):
        return pyasg.mean(pyasg.tanh(x @ w) ** 2)

    @pyasg.jit(backend="numpy")
    def step(w, x):
        return pyasg.value_and_grad(loss)(w, x)

    step(np.ones((3, 2), F32), np.ones((4, 3), F32))
    (inner,), (outer,) = inlined, compiled
    assert inner.name == "loss" and inner.trace == outer.trace
    forward, traced = inner.forward, outer.traced
    for i in forward.ids:  # each forward op sits at its placed node of the step's graph
        if forward.nodes[i].op.name != "input":
            assert traced.nodes[inner.placed[i]].op == forward.nodes[i].op
    w_grad = inner.placed[inner.cotangents[forward.inputs[0]]]
    assert w_grad == traced.outputs[1]  # d loss / d w is the step's gradient output
    seed = traced.nodes[inner.placed[inner.cotangents[forward.outputs[0]]]]
    assert seed.op.name == "constant" and float(seed.op.value) == 1.0


@settings(deadline=None, max_examples=10)
@given(st.lists(st.integers(1, 4), min_size=1, max_size=6))
def test_cache_size_counts_distinct_batch_sizes(batches):
    f = pyasg.jit(lambda x: x.mean(axis=0))
    for n in batches:
        x = np.arange(n * 2, dtype=F32).reshape(n, 2)
        np.testing.assert_allclose(f(x), x.mean(axis=0), rtol=1e-6)
    assert f.cache_size == len(set(batches))


def test_value_and_grad_publishes_its_forward_and_gradient_graphs():
    seen = []
    unsubscribe = pyasg.subscribe(lambda e: seen.append((e.name, e.kind, e.graph)),
                                  pyasg.GraphReady)
    try:
        def loss(w, x):
            return pyasg.mean((x @ w) ** 2)

        pyasg.grad(loss)(np.ones((3, 1), np.float32), np.ones((4, 3), np.float32))
    finally:
        unsubscribe()
    kinds = {(name, kind) for name, kind, _ in seen}
    assert ("loss", "forward") in kinds and ("loss", "gradient") in kinds
    forward = next(g for n, k, g in seen if (n, k) == ("loss", "forward"))
    gradient = next(g for n, k, g in seen if (n, k) == ("loss", "gradient"))
    assert len(gradient.outputs) == len(forward.outputs) + 1  # value, then d loss / d w
