"""The graph layer's fast paths answer exactly as the general code does: a `NodeMap` is
the persistent map of its contents, a builder never changes a graph it built, an op
hashes as its dataclass, and TensorType, check_dtype, promote and broadcast_shapes
accept, reject and compute what their general rules do."""

from __future__ import annotations

import copy
import dataclasses
import pickle

import golden_graphs
import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pyrsistent import PMap, pmap
from strategies import random_cases

from pyasg.asg import ops
from pyasg.asg.graph import Graph, GraphBuilder, NodeMap
from pyasg.asg.ops.base import broadcast_shapes
from pyasg.asg.types import DTYPES, TensorType, check_dtype, promote
from pyasg.errors import ShapeError

# --------------------------------------------------------------------------- NodeMap


@given(st.dictionaries(st.integers(-5, 50), st.integers()))
def test_a_node_map_is_the_persistent_map_of_its_contents(d: dict) -> None:
    m, p = NodeMap(dict(d)), pmap(d)
    assert isinstance(m, PMap)
    assert m == p and p == m and m == d and not (m != p)
    assert hash(m) == hash(p)
    assert len(m) == len(d) and set(m) == set(d) and set(m.keys()) == set(d)
    assert sorted(m.values()) == sorted(d.values()) and dict(m.items()) == d
    for k in range(-6, 52):
        assert (k in m) == (k in d) and m.get(k, "none") == d.get(k, "none")
    assert m.set(99, 1) == p.set(99, 1) and 99 not in m
    e = m.evolver()
    e[100] = 2
    assert e.persistent() == {**d, 100: 2} and 100 not in m
    assert pickle.loads(pickle.dumps(m)) == m
    other = NodeMap({**d, 7: "changed"})
    assert (other == m) == (d.get(7, object()) == "changed" and 7 in d)


def test_graphs_of_plain_pmaps_and_of_builders_are_equal_values() -> None:
    b = GraphBuilder()
    x = b.add_input("x", TensorType((3,)))
    y = b.add(ops.Exp(), (x,))
    built = b.build([y])
    plain = Graph(pmap(dict(built.nodes.items())), built.inputs, built.outputs)
    assert isinstance(plain.nodes, NodeMap)  # every graph reads through the dict
    assert plain == built and hash(plain) == hash(built)
    assert {built: 1}[plain] == 1


@given(random_cases(traced=False))
def test_a_builder_changes_no_graph_it_built_nor_its_base(case) -> None:  # noqa: ANN001
    base = case.graph
    before = (dict(base.nodes.items()), hash(base), base.ids)
    b = GraphBuilder(base)
    first = b.build(list(base.outputs))
    out = base.outputs[0]
    e = b.add(ops.Sin(), (out,))
    second = b.build([e])
    assert (dict(base.nodes.items()), hash(base), base.ids) == before
    assert first == base and e not in first.nodes and e not in base.nodes
    assert len(second) == len(base) + 1 and second.nodes[e].inputs == (out,)


# --------------------------------------------------------------------------- op hashes


def _ops() -> list[ops.Op]:
    """Every op of the saved training steps, fused sub-graphs' ops included."""
    found: list[ops.Op] = []
    stack = [golden_graphs.load(case)[kind] for case in ("W3", "LM-B2-T16-d32-H2-L1-f64")
             for kind in ("simplified", "fused wgpu")]
    while stack:
        graph = stack.pop()
        for node in graph.nodes.values():
            found.append(node.op)
            if isinstance(node.op, ops.Fused):
                stack.append(node.op.graph)
    return found


def test_an_op_hashes_as_its_dataclass_fields_and_forgets_it_when_copied() -> None:
    seen = set()
    for op in _ops():
        values = tuple(getattr(op, f.name) for f in dataclasses.fields(op))
        assert hash(op) == hash(values), op
        assert hash(op) == hash(op)  # cached: the same again
        for clone in (copy.deepcopy(op), pickle.loads(pickle.dumps(op)),
                      dataclasses.replace(op)):
            assert clone == op and hash(clone) == hash(op)
        assert "_hash" not in op.__getstate__()
        seen.add(type(op))
    assert {ops.Fused, ops.Input, ops.Constant, ops.Conv2d, ops.Attention} <= seen


# --------------------------------------------------------------------------- types


def _old_tensor_type_accepts(shape: object, dtype: object) -> bool:
    """TensorType's rule as written before its fast path."""
    return (isinstance(shape, tuple) and all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
        and dtype in DTYPES)


_DIMS = st.one_of(st.integers(-2, 5), st.booleans(), st.floats(0, 3), st.just(np.int64(2)))
_DTYPES = st.one_of(st.sampled_from(DTYPES), st.sampled_from(["float16", "f4", "", "int"]),
                    st.sampled_from([np.float32, np.dtype("float64")]))


@given(st.one_of(st.tuples(*[_DIMS] * 3), st.lists(_DIMS, max_size=3).map(tuple),
                 st.lists(st.integers(0, 3), max_size=2)), _DTYPES)
@example((True, 2), "float32")
@example((2, False), "int32")
@example((np.int64(2),), "float32")
@example((-1, 2), "float32")
@example((2.0,), "float32")
@example([2], "float32")
@example((2, 3), np.dtype("float32"))
@example((2, 3), "float16")
def test_tensor_type_accepts_and_rejects_what_it_did(shape: object, dtype: object) -> None:
    if _old_tensor_type_accepts(shape, dtype):
        t = TensorType(shape, dtype)  # type: ignore[arg-type]
        assert (t.shape, t.dtype) == (shape, dtype)
        assert t == TensorType(shape=shape, dtype=dtype)  # type: ignore[arg-type]
        assert hash(t) == hash((shape, dtype))
    else:
        with pytest.raises(ShapeError):
            TensorType(shape, dtype)  # type: ignore[arg-type]


@pytest.mark.parametrize("dtype", [*DTYPES, np.float32, np.dtype("int32"), "f8", "float",
                                   "i4", np.dtype(">f4"), "float16", "complex64", "nope"])
def test_check_dtype_names_what_numpy_names(dtype: object) -> None:
    try:
        want = np.dtype(dtype).name
    except TypeError:
        want = str(dtype)
    if want in DTYPES:
        assert check_dtype(dtype) == want
    else:
        with pytest.raises(ShapeError):
            check_dtype(dtype)


@given(st.lists(st.sampled_from(DTYPES), min_size=1, max_size=3))
def test_promote_answers_as_numpy_every_time(dtypes: list[str]) -> None:
    want = np.result_type(*dtypes).name
    for _ in range(2):  # the second answer comes from the cache
        assert promote(*dtypes) == want
    assert promote(*[np.dtype(d) for d in dtypes]) == want


def _general_broadcast(*shapes: tuple[int, ...]) -> tuple[int, ...] | None:
    ndim = max((len(s) for s in shapes), default=0)
    out = []
    for axis in range(ndim):
        dims = {s[axis - ndim + len(s)] for s in shapes if axis - ndim + len(s) >= 0}
        dims.discard(1)
        if len(dims) > 1:
            return None
        out.append(dims.pop() if dims else 1)
    return tuple(out)


_SHAPES = st.lists(st.integers(0, 3), max_size=3).map(tuple)


@given(st.lists(_SHAPES, min_size=1, max_size=3))
def test_broadcast_shapes_broadcasts_as_numpy(shapes: list[tuple[int, ...]]) -> None:
    want = _general_broadcast(*shapes)
    if want is None:
        with pytest.raises(ShapeError):
            broadcast_shapes(*shapes)
    else:
        got = broadcast_shapes(*shapes)
        assert got == want == np.broadcast_shapes(*shapes) and type(got) is tuple
