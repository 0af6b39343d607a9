"""The numpy executable's memory plan: buffers are reused, and results stay right.

Three kinds of evidence:

- the plan is really used (`plan.inplace`, `out=` in the generated source);
- results of random graphs equal a reference interpreter that evaluates node by node
  with no reuse at all, and the strategy's numpy reference; calling twice with other
  inputs shows no state leaks from one call to the next, and inputs are never written;
- the plan is checked statically against an independent liveness analysis: a buffer
  is written only when no value (or view of it) that lives in it is read later.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from strategies import random_cases

import pyasg
from pyasg.asg import ops
from pyasg.asg.graph import Graph
from pyasg.kernels import lower
from pyasg.kernels.numpy import NumpyBackend, evaluate
from pyasg.transforms.jit import MemoryPlan


def interpret(graph: Graph, arrays: list[np.ndarray]) -> list[np.ndarray]:
    """Evaluate node by node with the numpy kernels, every value a fresh array."""
    env: dict[int, np.ndarray] = dict(zip(graph.inputs, (np.array(a) for a in arrays)))
    for i in graph.live_ids:
        if i in env:
            continue
        node = graph.nodes[i]
        if isinstance(node.op, ops.Constant):
            env[i] = node.op.value
        else:
            env[i] = np.array(evaluate(node.op, *(env[j] for j in node.inputs)))
    return [env[i] for i in graph.outputs]


def check_kernels_do_not_alias(graph: Graph, arrays: list[np.ndarray]) -> None:
    """A kernel that does not declare `view` must return fresh memory: the memory plan
    trusts that flag, so an undeclared view would be overwritten behind its back."""
    backend = NumpyBackend()
    env: dict[int, np.ndarray] = dict(zip(graph.inputs, (np.array(a) for a in arrays)))
    for i in graph.live_ids:
        if i in env:
            continue
        node = graph.nodes[i]
        if isinstance(node.op, ops.Constant):
            env[i] = node.op.value
            continue
        args = [env[j] for j in node.inputs]
        kernel = lower(node.op, backend, in_types=tuple(graph.nodes[j].type for j in node.inputs),
                       out_type=node.type)
        out = np.asarray(kernel.fn(*args))
        if not kernel.view:
            for j, a in zip(node.inputs, args):
                assert not np.shares_memory(out, a), (
                    f"the kernel of %{i} ({node.op}) returns memory of its input %{j} "
                    f"without declaring view=True")
        env[i] = out


def schedule_of(executable: pyasg.Executable) -> list[int]:
    """The order the generated code computes values in (from its source)."""
    return [int(m) for m in re.findall(r"^\s*v(\d+) = ", executable.source, re.M)]


def view_kernels(graph: Graph) -> set[int]:
    """Nodes whose numpy kernel says its result may share memory with its first input."""
    backend = NumpyBackend()
    views = set()
    for i in graph.live_ids:
        node = graph.nodes[i]
        if isinstance(node.op, (ops.Input, ops.Constant)):
            continue
        kernel = lower(node.op, backend, in_types=tuple(graph.nodes[j].type for j in node.inputs),
                       out_type=node.type)
        if kernel.view:
            views.add(i)
    return views


def check_plan(graph: Graph, executable: pyasg.Executable) -> None:
    """An independent check that no buffer is overwritten while something still reads it."""
    plan = executable.plan
    order = schedule_of(executable)
    assert sorted(order) == sorted(i for i in graph.live_ids if i not in graph.inputs)
    pos = {i: k for k, i in enumerate(order)}
    pos.update({i: -1 for i in graph.inputs})
    end = len(order)
    last_read = {i: pos[i] for i in pos}
    for i in order:
        for j in graph.nodes[i].inputs:
            last_read[j] = max(last_read[j], pos[i])
    for i in graph.outputs:
        last_read[i] = end
    views = view_kernels(graph)
    # the physical buffer each value lives in: None for inputs and constants (never
    # written), the input's for views, the reused buffer for in-place nodes
    buffer: dict[int, int | None] = {}
    logical: dict[int, int | None] = {}  # the non-view value a view looks into
    for i in [*graph.inputs, *order]:
        node = graph.nodes[i]
        if isinstance(node.op, (ops.Input, ops.Constant)):
            buffer[i] = logical[i] = None
        elif i in views:
            buffer[i], logical[i] = buffer[node.inputs[0]], logical[node.inputs[0]]
        elif i in plan.inplace:
            j = plan.inplace[i]
            assert j in node.inputs, f"%{i} writes into %{j}, which it does not read"
            assert graph.nodes[j].type == node.type, f"%{i} reuses %{j} of another type"
            assert buffer[j] is not None, f"%{i} writes into input/constant memory (%{j})"
            assert j not in views, f"%{i} writes into %{j}, a view"
            buffer[i], logical[i] = buffer[j], i
        else:
            buffer[i] = logical[i] = i
    # every logical value lives from its definition to the last read of it or its views
    live_until: dict[int, int] = {}
    for i in order:
        if logical[i] is not None:
            live_until[logical[i]] = max(live_until.get(logical[i], -1), last_read[i])
    for i, j in plan.inplace.items():
        assert live_until[logical[j]] <= pos[i], (
            f"%{i} overwrites the buffer of %{j}, which is still read at position "
            f"{live_until[logical[j]]} > {pos[i]}\n{executable.source}")
    for at, dead in plan.release_after.items():
        for d in dead:
            assert d not in graph.outputs, f"output %{d} is released"
            assert last_read[d] <= pos[at], f"%{d} is released at %{at} but read later"


def run_checked(graph: Graph, *input_sets: list[np.ndarray]) -> list[tuple[np.ndarray, ...]]:
    """Run the executable on each input set in turn, checking it against `interpret`."""
    ex = pyasg.jit_to_backend(graph, "numpy")
    check_plan(graph, ex)
    check_kernels_do_not_alias(graph, input_sets[0])
    results = []
    for arrays in input_sets:
        before = [np.array(a, copy=True) for a in arrays]
        got = ex(*arrays)
        for a, b in zip(arrays, before):
            np.testing.assert_array_equal(a, b, err_msg="the executable wrote into an input")
        want = interpret(graph, arrays)
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert np.shape(g) == w.shape and np.asarray(g).dtype == w.dtype
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12 * float(
                np.max(np.abs(w), initial=1.0)))
        results.append(tuple(np.array(g, copy=True) for g in got))
    return results


# --------------------------------------------------------------------------- the plan is used


def test_elementwise_chain_reuses_one_buffer() -> None:
    def f(x):  # noqa: ANN001, ANN202
        return pyasg.cos(pyasg.sin(pyasg.tanh(pyasg.exp(x)) * 3.0) + 1.0)

    x = np.linspace(-1, 1, 12).reshape(3, 4)
    g = pyasg.make_graph(f)(x)
    ex = pyasg.jit_to_backend(g)
    assert ex.plan.inplace, ex.source
    assert "out=" in ex.source
    assert len(ex.plan.inplace) >= 4  # tanh, mul, sin, add, cos all fit in exp's buffer
    check_plan(g, ex)
    (out,) = ex(x)
    np.testing.assert_allclose(out, np.cos(np.sin(np.tanh(np.exp(x)) * 3.0) + 1.0), rtol=1e-15)


def test_values_are_released_after_their_last_reader() -> None:
    g = pyasg.make_graph(lambda x: pyasg.sum(pyasg.exp(x) * pyasg.sin(x)))(np.ones(5))
    ex = pyasg.jit_to_backend(g)
    released = {d for dead in ex.plan.release_after.values() for d in dead}
    internal = set(g.live_ids) - set(g.outputs) - set(g.inputs) - {
        i for i in g.live_ids if isinstance(g.nodes[i].op, ops.Constant)}
    assert released == internal
    assert "del v" in ex.source
    check_plan(g, ex)


def test_inputs_are_never_written() -> None:
    def f(x, y):  # noqa: ANN001, ANN202
        return pyasg.exp(x) + y, -y

    x, y = np.ones(3), np.arange(3.0)
    ex = pyasg.jit_to_backend(pyasg.make_graph(f)(x, y))
    assert all(j not in ex.graph.inputs for j in ex.plan.inplace.values())
    a, b = ex(x, y)
    np.testing.assert_array_equal(x, 1.0)
    np.testing.assert_array_equal(y, [0.0, 1.0, 2.0])
    np.testing.assert_allclose(a, np.e + y)
    np.testing.assert_array_equal(b, -y)


# --------------------------------------------------------------------------- random graphs


@settings(deadline=None)
@given(random_cases())
def test_random_graphs_match_a_no_reuse_interpreter_and_numpy(case) -> None:  # noqa: ANN001
    g = case.graph
    first, second, third = run_checked(g, case.arrays, case.other_arrays, case.arrays)
    for out, ref in zip(first, case.reference(case.arrays)):
        np.testing.assert_allclose(out, ref, rtol=1e-9, atol=1e-9)
    for out, ref in zip(second, case.reference(case.other_arrays)):
        np.testing.assert_allclose(out, ref, rtol=1e-9, atol=1e-9)
    for a, b in zip(first, third):  # the same inputs again: the same answer
        np.testing.assert_array_equal(a, b)


@settings(deadline=None)
@given(random_cases())
def test_simplified_random_graphs_match_too(case) -> None:  # noqa: ANN001
    run_checked(pyasg.simplify(case.graph), case.arrays, case.other_arrays)


@settings(deadline=None)
@given(random_cases())
def test_results_of_one_call_survive_the_next(case) -> None:  # noqa: ANN001
    ex = pyasg.jit_to_backend(case.graph)
    first = ex(*case.arrays)
    kept = [np.array(a, copy=True) for a in first]
    second = ex(*case.other_arrays)
    for a, b in zip(first, kept):
        np.testing.assert_array_equal(a, b, err_msg="a later call overwrote an earlier result")
    for s in second:  # the caller may write into results without breaking the next call
        if isinstance(s, np.ndarray) and s.flags.writeable and s.size:
            s[...] = np.nan
    for a, r in zip(ex(*case.arrays), case.reference(case.arrays)):
        np.testing.assert_allclose(a, r, rtol=1e-9, atol=1e-9)


# --------------------------------------------------------------------------- views


def test_output_view_of_an_intermediate_is_not_overwritten() -> None:
    def f(x):  # noqa: ANN001, ANN202
        y = pyasg.exp(x)
        v = y.T                       # an output that looks into y's buffer
        r = y.reshape(-1)             # another one
        z = pyasg.tanh(y) * 2.0       # y's last direct reader: would reuse y's buffer
        return z, v, r

    x = np.linspace(-1, 1, 6).reshape(2, 3)
    g = pyasg.make_graph(f)(x)
    (z, v, r), = run_checked(g, [x])
    np.testing.assert_allclose(z, np.tanh(np.exp(x)) * 2.0, rtol=1e-15)
    np.testing.assert_allclose(v, np.exp(x).T, rtol=1e-15)
    np.testing.assert_allclose(r, np.exp(x).reshape(-1), rtol=1e-15)


def test_view_of_a_dying_value_read_later() -> None:
    def f(x, w):  # noqa: ANN001, ANN202
        y = pyasg.exp(x)
        t = y.T                        # a view of y ...
        z = y + 1.0                    # ... y dies here: the in-place candidate
        return z, t @ w                # ... but the view is read afterwards

    x = np.linspace(-1, 1, 12).reshape(3, 4)
    w = np.arange(6.0).reshape(3, 2)
    g = pyasg.make_graph(f)(x, w)
    (z, tw), = run_checked(g, [x, w])
    np.testing.assert_allclose(z, np.exp(x) + 1.0, rtol=1e-15)
    np.testing.assert_allclose(tw, np.exp(x).T @ w, rtol=1e-14)


@pytest.mark.parametrize("view", ["transpose", "reshape", "slice", "broadcast", "stop_gradient",
                                  "chain"])
def test_every_kind_of_view_keeps_its_buffer_alive(view: str) -> None:
    def look(y):  # noqa: ANN001, ANN202
        if view == "transpose":
            return y.T
        if view == "reshape":
            return y.reshape(-1, 2)
        if view == "slice":
            return y[::-1, 1:]
        if view == "broadcast":
            return pyasg.broadcast_to(y, (2, 4, 4))
        if view == "stop_gradient":
            return pyasg.stop_gradient(y)
        return y.T.reshape(2, 8)[:, ::2]

    def f(x):  # noqa: ANN001, ANN202
        y = pyasg.exp(x)
        v = look(y)
        z = pyasg.sin(y)               # y's last direct reader
        z = pyasg.cos(z) * 2.0         # keep writing in place
        return pyasg.sum(v) + pyasg.sum(z), z

    def f_np(x):  # noqa: ANN001, ANN202
        y = np.exp(x)
        v = {"transpose": y.T, "reshape": y.reshape(-1, 2), "slice": y[::-1, 1:],
             "broadcast": np.broadcast_to(y, (2, 4, 4)), "stop_gradient": y,
             "chain": y.T.reshape(2, 8)[:, ::2]}[view]
        z = np.cos(np.sin(y)) * 2.0
        return v.sum() + z.sum(), z

    x = np.linspace(-1, 1, 16).reshape(4, 4)
    g = pyasg.make_graph(f)(x)
    (s, z), = run_checked(g, [x])
    want_s, want_z = f_np(x)
    np.testing.assert_allclose(s, want_s, rtol=1e-13)
    np.testing.assert_allclose(z, want_z, rtol=1e-15)


def test_in_place_write_that_reads_its_own_transpose() -> None:
    def f(x):  # noqa: ANN001, ANN202
        y = pyasg.exp(x)
        return (y + y.T,)              # y and its view die together here

    x = np.arange(9.0).reshape(3, 3) / 9
    (out,), = run_checked(pyasg.make_graph(f)(x), [x])
    np.testing.assert_allclose(out, np.exp(x) + np.exp(x).T, rtol=1e-15)


def test_matmul_into_a_dying_operand() -> None:
    def f(x, w):  # noqa: ANN001, ANN202
        return (pyasg.exp(x) @ w,)

    x, w = np.arange(9.0).reshape(3, 3) / 9, np.arange(9.0).reshape(3, 3) - 4
    (out,), = run_checked(pyasg.make_graph(f)(x, w), [x, w])
    np.testing.assert_allclose(out, np.exp(x) @ w, rtol=1e-14)


# --------------------------------------------------------------------------- where


def test_where_written_into_its_dying_x_branch() -> None:
    def f(x):  # noqa: ANN001, ANN202
        y = pyasg.exp(x)
        return (pyasg.where(x > 0.0, y, x * 0.5),)

    x = np.linspace(-1, 1, 7)
    g = pyasg.make_graph(f)(x)
    (out,), = run_checked(g, [x])
    np.testing.assert_allclose(out, np.where(x > 0, np.exp(x), x * 0.5), rtol=1e-15)


def test_where_written_into_its_dying_y_branch() -> None:
    def f(x):  # noqa: ANN001, ANN202
        return (pyasg.where(x > 0.0, x, pyasg.exp(x)),)

    x = np.linspace(-1, 1, 7)
    (out,), = run_checked(pyasg.make_graph(f)(x), [x])
    np.testing.assert_allclose(out, np.where(x > 0, x, np.exp(x)), rtol=1e-15)


def test_bool_where_written_into_its_dying_condition() -> None:
    def f(a, b):  # noqa: ANN001, ANN202
        return (pyasg.where(a > b, a < 0.0, b < 0.0),)

    a, b = np.array([1.0, -1.0, 2.0, -2.0]), np.array([0.5, 0.5, -3.0, 3.0])
    (out,), = run_checked(pyasg.make_graph(f)(a, b), [a, b])
    np.testing.assert_array_equal(out, np.where(a > b, a < 0, b < 0))


@pytest.mark.parametrize("transposed", ["x", "y"])
def test_where_whose_other_branch_is_a_view_of_the_reused_buffer(transposed: str) -> None:
    def f(x):  # noqa: ANN001, ANN202
        y = pyasg.exp(x)               # dies in the where, together with its transpose
        a, b = (y.T, y) if transposed == "x" else (y, y.T)
        return (pyasg.where(x > 0.5, a, b),)

    x = np.arange(16.0).reshape(4, 4) / 16
    y = np.exp(x)
    a, b = (y.T, y) if transposed == "x" else (y, y.T)
    (out,), = run_checked(pyasg.make_graph(f)(x), [x])
    np.testing.assert_array_equal(out, np.where(x > 0.5, a, b))


def test_in_place_add_of_a_broadcast_slice_of_itself() -> None:
    def f(x):  # noqa: ANN001, ANN202
        y = pyasg.exp(x)
        return (y + y[0:1, :] * y[:, ::-1],)

    x = np.arange(16.0).reshape(4, 4) / 16
    y = np.exp(x)
    (out,), = run_checked(pyasg.make_graph(f)(x), [x])
    np.testing.assert_allclose(out, y + y[0:1] * y[:, ::-1], rtol=1e-15)


def test_where_with_broadcast_branches() -> None:
    def f(x, y):  # noqa: ANN001, ANN202
        e = pyasg.exp(x)               # [4, 8], dies in the where
        return (pyasg.where(y > 0.0, e, y),)

    x = np.linspace(-1, 1, 32).reshape(4, 8)
    y = np.linspace(-1, 1, 8).reshape(1, 8)
    (out,), = run_checked(pyasg.make_graph(f)(x, y), [x, y])
    np.testing.assert_allclose(out, np.where(y > 0, np.exp(x), y), rtol=1e-15)


# --------------------------------------------------------------------------- outputs


def test_constant_and_input_outputs_survive_callers_writes() -> None:
    def f(x):  # noqa: ANN001, ANN202
        return np.array([1.0, 2.0]), x, x * 2.0

    x = np.array([3.0, 4.0])
    ex = pyasg.jit_to_backend(pyasg.make_graph(f)(x))
    c, _, _ = ex(x)
    c[...] = -1.0
    c2, same, doubled = ex(x)
    np.testing.assert_array_equal(c2, [1.0, 2.0])
    np.testing.assert_array_equal(same, x)
    np.testing.assert_array_equal(doubled, 2 * x)


def test_the_same_output_twice() -> None:
    def f(x):  # noqa: ANN001, ANN202
        y = pyasg.tanh(x)
        return y, y, pyasg.exp(y)

    x = np.linspace(-1, 1, 5)
    (a, b, e), = run_checked(pyasg.make_graph(f)(x), [x])
    np.testing.assert_allclose(a, np.tanh(x), rtol=1e-15)
    np.testing.assert_allclose(b, np.tanh(x), rtol=1e-15)
    np.testing.assert_allclose(e, np.exp(np.tanh(x)), rtol=1e-15)


def test_the_plan_checker_catches_a_buffer_overwritten_while_a_view_is_read() -> None:
    def f(x, w):  # noqa: ANN001, ANN202
        y = pyasg.exp(x)
        return y + 1.0, y.T @ w

    g = pyasg.make_graph(f)(np.ones((3, 4)), np.ones((3, 2)))
    ex = pyasg.jit_to_backend(g)
    check_plan(g, ex)
    y = next(i for i in g.ids if isinstance(g.nodes[i].op, ops.Exp))
    z = next(i for i in g.ids if isinstance(g.nodes[i].op, ops.Add))
    assert z not in ex.plan.inplace  # the real plan does not do this ...
    ex.plan = MemoryPlan({z: y}, ex.plan.release_after)  # ... a broken one would
    with pytest.raises(AssertionError, match="still read"):
        check_plan(g, ex)
    ex.plan = MemoryPlan({}, {z: (y,)})  # releasing y while y.T is still to be read
    with pytest.raises(AssertionError, match="read later"):
        check_plan(g, ex)
