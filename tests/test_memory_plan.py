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

import dataclasses
import re
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import random_cases

import pyasg
from pyasg.asg import ops
from pyasg.asg.graph import Graph, GraphBuilder
from pyasg.asg.types import TensorType
from pyasg.compile.pipeline import lower_graph
from pyasg.kernels import lower
from pyasg.kernels.numpy import Executable, NumpyBackend, evaluate, memory
from pyasg.kernels.numpy import executable as jit_module
from pyasg.kernels.numpy.fused import fused_kernel


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


def schedule_of(executable: Executable) -> list[int]:
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


def build(graph: Graph, fuse: bool = False, poison: bool = False) -> Executable:
    """The numpy executable of `graph`, fused as jit_to_backend does or not at all."""
    if fuse:
        graph = lower_graph(graph, NumpyBackend())
    return Executable(graph, NumpyBackend(), "test", poison=poison)


def check_plan(executable: Executable) -> None:
    """An independent check that no buffer is overwritten while something still reads it:
    two values whose lifetimes (their views' included) overlap never share a static
    buffer, except a kernel writing in place over an input that dies at it."""
    graph, plan = executable.graph, executable.plan
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
    # the value whose memory each value lives in: None for inputs and constants, the
    # looked-into value for views, itself otherwise
    home: dict[int, int | None] = {}
    for i in [*graph.inputs, *order]:
        node = graph.nodes[i]
        if isinstance(node.op, (ops.Input, ops.Constant)):
            home[i] = None
        elif i in views:
            home[i] = home[node.inputs[0]]
        else:
            home[i] = i
    live_until: dict[int, int] = {}
    for i in order:
        if home[i] is not None:
            live_until[home[i]] = max(live_until.get(home[i], -1), last_read[i])
    for i, b in plan.buffer_of.items():
        assert home[i] == i, f"%{i} is a view but has a buffer of its own"
        dtype, size = plan.buffers[b]
        t = graph.nodes[i].type
        assert dtype == t.dtype and size >= t.size * np.dtype(t.dtype).itemsize, (
            f"%{i} ({t}) does not fit buffer {b} ({dtype}, {size} bytes)")
        assert f"out=b{b}_" in executable.source.split(f"v{i} = ", 1)[1].split("\n")[0]
    for i in graph.outputs:
        assert home[i] not in plan.buffer_of, f"output %{i} lives in a static buffer"
    sharing: dict[int, list[int]] = {}
    for i, b in plan.buffer_of.items():
        sharing.setdefault(b, []).append(i)
    for b, values in sharing.items():
        values.sort(key=pos.__getitem__)
        for a, c in zip(values, values[1:]):
            if plan.inplace.get(c) == a:
                assert a in graph.nodes[c].inputs, f"%{c} writes into %{a}, not its input"
                assert graph.nodes[a].type == graph.nodes[c].type
                assert live_until[a] <= pos[c], (
                    f"%{c} overwrites %{a} in place, which is still read at position "
                    f"{live_until[a]} > {pos[c]}\n{executable.source}")
            else:
                assert live_until[a] < pos[c], (
                    f"%{c} reuses buffer {b} of %{a}, which is still read at position "
                    f"{live_until[a]} >= {pos[c]}\n{executable.source}")
    for i, j in plan.inplace.items():
        assert plan.buffer_of[i] == plan.buffer_of[j]
    # a kernel's temporaries (a fused group's scratch) never hold a value that is live
    # while it runs: not its inputs, not its own result, not anything read later
    for i, taken in plan.scratch_of.items():
        assert len(set(taken)) == len(taken), f"%{i} gets one scratch buffer twice"
        for v, b in plan.buffer_of.items():
            if b in taken:
                assert not pos[v] <= pos[i] <= live_until[v], (
                    f"scratch buffer {b} of %{i} holds %{v}, live from {pos[v]} to "
                    f"{live_until[v]}\n{executable.source}")
        line = executable.source.split(f"v{i} = ", 1)[1].split("\n")[0]
        assert all(f"b{b}_" in line.split("scratch=", 1)[1] for b in taken)
    for at, dead in plan.release_after.items():
        for d in dead:
            assert d not in graph.outputs, f"output %{d} is released"
            assert last_read[d] <= pos[at], f"%{d} is released at %{at} but read later"


def run_checked(graph: Graph, *input_sets: list[np.ndarray],
                fuse: bool = False) -> list[tuple[np.ndarray, ...]]:
    """Run the executable (poisoned, and not) on each input set in turn, checking it
    against `interpret`."""
    plain, poisoned = build(graph, fuse), build(graph, fuse, poison=True)
    check_plan(plain)
    check_kernels_do_not_alias(graph, input_sets[0])
    results = []
    for arrays in input_sets:
        want = interpret(graph, arrays)
        for ex in (poisoned, plain):
            before = [np.array(a, copy=True) for a in arrays]
            got = ex(*arrays)
            for a, b in zip(arrays, before):
                np.testing.assert_array_equal(a, b, err_msg="the executable wrote into an input")
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
    ex = build(g)
    assert "out=" in ex.source
    # exp, tanh, mul, sin and add all live in one buffer (cos is the output)
    assert len(ex.plan.inplace) == 4 and ex.plan.buffer_count == 1, ex.source
    check_plan(ex)
    (out,) = ex(x)
    np.testing.assert_allclose(out, np.cos(np.sin(np.tanh(np.exp(x)) * 3.0) + 1.0), rtol=1e-15)


def test_buffers_are_reused_across_shapes_of_one_size_and_dtype() -> None:
    def f(x, w):  # noqa: ANN001, ANN202
        a = pyasg.exp(x) @ w             # [4, 6]
        b = pyasg.tanh(a.reshape(6, 4))  # read through a view: not in place
        c = pyasg.sum(b, axis=1)         # a's and b's buffers are free after this
        d = pyasg.sin(w.T @ x.T)         # [6, 4] of the same size: a freed buffer
        return c, pyasg.sum(d * 2.0)

    x, w = np.linspace(-1, 1, 32).reshape(4, 8), np.linspace(-1, 1, 48).reshape(8, 6)
    g = pyasg.make_graph(f)(x, w)
    ex = build(g)
    check_plan(ex)
    naive = sum(g.nodes[i].type.size * 8 for i in ex.plan.buffer_of)
    assert ex.plan.static_bytes < naive
    shapes_per_buffer: dict[int, set] = {}
    for i, b in ex.plan.buffer_of.items():
        shapes_per_buffer.setdefault(b, set()).add(g.nodes[i].type.shape)
    assert any(len(s) > 1 for s in shapes_per_buffer.values()), ex.source
    c, e = ex(x, w)
    np.testing.assert_allclose(c, np.tanh((np.exp(x) @ w).reshape(6, 4)).sum(1), rtol=1e-13)
    np.testing.assert_allclose(e, (np.sin(w.T @ x.T) * 2.0).sum(), rtol=1e-13)


def test_the_plan_reports_counts_and_bytes() -> None:
    def f(x, w):  # noqa: ANN001, ANN202
        return (pyasg.sum(pyasg.exp(x) @ w),)

    x, w = np.ones((4, 8), np.float32), np.ones((8, 8), np.float32)
    ex = build(pyasg.make_graph(f)(x, w))
    plan = ex.plan
    # by hand: exp [4, 8] f32 = 128 B; the matmul (128 B) writes over it in place (it
    # dies there and has the same type); the sum, a 0-d output, is 4 B per call
    assert plan.kernel_count == ex.kernel_count == 3
    assert plan.buffer_count == 1 and plan.static_bytes == 128
    assert plan.naive_bytes == 128 + 128 + 4
    assert plan.output_bytes == 4 and plan.planned_peak_bytes == 132
    assert len(plan.inplace) == 1
    text = plan.report()
    assert "3 kernels" in text and "1 static buffers" in text and "naive" in text


def test_values_kernels_allocate_are_released_after_their_last_reader() -> None:
    def f(x):  # noqa: ANN001, ANN202
        return pyasg.sum(pyasg.argmax(pyasg.exp(x), axis=1) * 2)

    g = pyasg.make_graph(f)(np.arange(12.0).reshape(3, 4))
    ex = build(g)
    argmax = next(i for i in g.live_ids if isinstance(g.nodes[i].op, ops.ArgMax))
    assert ex.plan.allocating == (argmax,)  # argmax cannot take out= (see reductions.py)
    released = {d for dead in ex.plan.release_after.values() for d in dead}
    assert released == {argmax}
    assert f"del v{argmax}" in ex.source
    check_plan(ex)
    np.testing.assert_array_equal(ex(np.arange(12.0).reshape(3, 4))[0], 2 * 3 * 3)


def test_inputs_are_never_written() -> None:
    def f(x, y):  # noqa: ANN001, ANN202
        return pyasg.exp(x) + y, -y

    x, y = np.ones(3), np.arange(3.0)
    ex = pyasg.jit_to_backend(pyasg.make_graph(f)(x, y))
    assert all(j not in ex.graph.inputs for j in ex.plan.inplace.values())
    assert not set(ex.graph.inputs) & set(ex.plan.buffer_of)
    a, b = ex(x, y)
    np.testing.assert_array_equal(x, 1.0)
    np.testing.assert_array_equal(y, [0.0, 1.0, 2.0])
    np.testing.assert_allclose(a, np.e + y)
    np.testing.assert_array_equal(b, -y)


# --------------------------------------------------------------------------- random graphs


@settings(deadline=None)
@given(random_cases(), st.booleans())
def test_random_graphs_match_a_no_reuse_interpreter_and_numpy(case, fuse) -> None:  # noqa: ANN001
    g = case.graph
    first, second, third = run_checked(g, case.arrays, case.other_arrays, case.arrays, fuse=fuse)
    for out, ref in zip(first, case.reference(case.arrays)):
        np.testing.assert_allclose(out, ref, rtol=1e-9, atol=1e-9)
    for out, ref in zip(second, case.reference(case.other_arrays)):
        np.testing.assert_allclose(out, ref, rtol=1e-9, atol=1e-9)
    for a, b in zip(first, third):  # the same inputs again: the same answer
        np.testing.assert_array_equal(a, b)


@settings(deadline=None)
@given(random_cases(), st.booleans())
def test_simplified_random_graphs_match_too(case, fuse) -> None:  # noqa: ANN001
    run_checked(pyasg.simplify(case.graph), case.arrays, case.other_arrays, fuse=fuse)


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


def test_the_plan_checker_and_poison_catch_a_broken_plan(monkeypatch) -> None:  # noqa: ANN001
    def f(x, w):  # noqa: ANN001, ANN202
        y = pyasg.exp(x)
        z = pyasg.tanh(x)
        return (y.T @ w + pyasg.sum(z),)

    x, w = np.linspace(-1, 1, 12).reshape(3, 4), np.linspace(-1, 1, 6).reshape(3, 2)
    g = pyasg.make_graph(f)(x, w)
    check_plan(build(g))
    y = next(i for i in g.ids if isinstance(g.nodes[i].op, ops.Exp))
    z = next(i for i in g.ids if isinstance(g.nodes[i].op, ops.Tanh))
    real = memory.plan_memory

    def broken(graph, schedule, kernels, donated=()):  # noqa: ANN001, ANN202
        plan = real(graph, schedule, kernels, donated)  # y and z (both live) share one buffer
        buffer_of = {**plan.buffer_of, z: plan.buffer_of[y]}
        free = {k: tuple(b for b in v if b != plan.buffer_of[z])
                for k, v in plan.free_after.items()}
        after_z = schedule[schedule.index(z) + 1]
        free[after_z] = free.get(after_z, ()) + (plan.buffer_of[y],)  # freed too early
        return dataclasses.replace(plan, buffer_of=buffer_of, free_after=free)

    monkeypatch.setattr(jit_module, "plan_memory", broken)
    with pytest.raises(AssertionError, match="still read"):
        check_plan(build(g))
    (got,) = build(g, poison=True)(x, w)
    assert np.isnan(got).all()  # the poisoned run shows the overlap


def test_a_call_while_the_buffers_are_busy_runs_on_fresh_buffers() -> None:
    def f(x, w):  # noqa: ANN001, ANN202
        return (pyasg.sum(pyasg.tanh(x @ w) @ w.T, axis=0),)

    rng = np.random.default_rng(0)
    w = rng.standard_normal((6, 6))
    ex = build(pyasg.make_graph(f)(np.ones((5, 6)), w))
    assert ex.plan.buffer_count >= 1
    xs = [rng.standard_normal((5, 6)) for _ in range(4)]
    want = [(np.tanh(x @ w) @ w.T).sum(0) for x in xs]
    with ex._lock:  # as if another thread were inside: the call must not wait or clash
        np.testing.assert_allclose(ex(xs[0], w)[0], want[0], rtol=1e-13)
    results: dict[int, list] = {}

    def worker(k: int) -> None:
        results[k] = [ex(xs[(k + n) % 4], w)[0] for n in range(50)]

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k, outs in results.items():
        for n, out in enumerate(outs):
            np.testing.assert_allclose(out, want[(k + n) % 4], rtol=1e-13)


# --------------------------------------------------------------------------- real training steps


def _mlp_step_graph() -> tuple[Graph, list[np.ndarray]]:
    layers = [pyasg.nn.Linear(12, 16), pyasg.nn.Linear(16, 16), pyasg.nn.Linear(16, 5)]
    params = {str(i): layer.init(pyasg.random.key(i)) for i, layer in enumerate(layers)}

    def step(p, x, y):  # noqa: ANN001, ANN202
        def loss(p):  # noqa: ANN001, ANN202
            h = pyasg.relu(layers[0](p["0"], x))
            h = pyasg.relu(layers[1](p["1"], h))
            return pyasg.losses.cross_entropy(layers[2](p["2"], h), y)

        value, grads = pyasg.value_and_grad(loss)(p)
        return pyasg.tree_map(lambda a, g: a - 0.1 * g, p, grads), value

    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 12)).astype(np.float32)
    y = rng.integers(0, 5, 8).astype(np.int32)
    g = pyasg.simplify(pyasg.make_graph(step)(params, x, y))
    leaves = [np.asarray(v) for _, v in pyasg.trace.tree.flatten_with_paths(
        {"p": params, "x": x, "y": y})[0]]
    return g, leaves


def _transformer_step_graph() -> tuple[Graph, list[np.ndarray]]:
    block = pyasg.nn.TransformerBlock(16, 4, causal=True)
    params = block.init(pyasg.random.key(0))

    def step(p, x, y):  # noqa: ANN001, ANN202
        value, grads = pyasg.value_and_grad(lambda p: pyasg.mean((block(p, x) - y) ** 2))(p)
        return pyasg.tree_map(lambda a, g: a - 0.1 * g, p, grads), value

    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 8, 16)).astype(np.float32)
    y = rng.standard_normal((2, 8, 16)).astype(np.float32)
    g = pyasg.simplify(pyasg.make_graph(step)(params, x, y))
    leaves = [np.asarray(v) for _, v in pyasg.trace.tree.flatten_with_paths(
        {"p": params, "x": x, "y": y})[0]]
    return g, leaves


@pytest.mark.parametrize("fuse", [False, True])
@pytest.mark.parametrize("make", [_mlp_step_graph, _transformer_step_graph])
def test_poisoned_training_steps_match_the_no_reuse_interpreter(make, fuse) -> None:  # noqa: ANN001
    g, arrays = make()
    ex = build(g, fuse, poison=True)
    check_plan(ex)
    assert ex.plan.buffer_count > 0 and "# poison" in ex.source
    want = interpret(g, arrays)
    for _ in range(2):  # the second call runs on buffers the first one poisoned
        got = ex(*arrays)
        for a, b in zip(got, want):
            assert np.all(np.isfinite(a))
            # float32, and folded / batched GEMMs may round differently
            np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)


def test_a_fused_groups_slot_lives_while_a_view_of_a_view_of_it_is_read() -> None:
    """Inside a fused kernel, y's slot stays y's until the broadcast of its transpose has
    been read: the neg reading y last must not write over it (it once did, when only a
    view's direct readers kept its input's slot alive)."""
    b = GraphBuilder()
    x = b.add_input("x", TensorType((2, 2)))
    y = b.add(ops.Exp(), (x,))
    seen = b.add(ops.BroadcastTo((3, 2, 2)), (b.add(ops.Transpose((1, 0)), (y,)),))
    w = b.add(ops.Neg(), (y,))                # y's last direct reader, of y's type
    s = b.add(ops.Sin(), (seen,))             # reads y's memory after the neg
    sub = b.build([b.add(ops.Add(), (s, b.add(ops.BroadcastTo((3, 2, 2)), (w,))))])
    kernel = fused_kernel(ops.Fused(sub))
    xv = np.arange(4, dtype=np.float32).reshape(2, 2) / 4
    e = np.exp(xv)
    np.testing.assert_allclose(kernel.fn(xv), np.sin(np.broadcast_to(e.T, (3, 2, 2))) - e,
                               rtol=1e-6)


def test_fused_kernels_take_their_temporaries_from_the_plan() -> None:
    """A transformer block's step with fusion: every group's temporaries are static
    buffers of the plan (checked by check_plan and poisoned after each group runs),
    the results equal the interpreter's, and no kernel holds arrays of its own."""
    block = pyasg.nn.TransformerBlock(16, 2, causal=True)
    params = block.init(pyasg.random.key(0))
    x = np.random.default_rng(0).standard_normal((2, 5, 16)).astype(np.float32)

    def step(p, x):  # noqa: ANN001, ANN202
        return pyasg.value_and_grad(lambda p: pyasg.mean(block(p, x) ** 2))(p)

    graph = pyasg.make_graph(step)(params, x)
    ex = build(graph, True, poison=True)
    assert ex.plan.scratch_of, "no fused group with temporaries: the test checks nothing"
    check_plan(ex)
    for i, kernel in ex.kernels.items():
        cells = [c.cell_contents for c in (getattr(kernel.fn, "__closure__", None) or ())]
        assert not any(isinstance(c, np.ndarray) and c.flags.writeable and c.size > 1
                       for c in cells), f"kernel of %{i} keeps a private array"
    arrays = [np.asarray(leaf) for _, leaf in
              pyasg.trace.tree.flatten_with_paths({"p": params, "x": x})[0]]
    want = interpret(graph, arrays)
    for got, w in zip(ex(*arrays), want):
        np.testing.assert_allclose(got, w, rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("fuse", [False, True])
def test_convolution_temporaries_come_from_the_plan(fuse: bool) -> None:  # noqa: FBT001
    """A CNN step: the convolutions' im2col columns and padded images are the plan's
    scratch buffers (checked, and poisoned after each kernel), and results equal the
    interpreter's."""
    model = pyasg.nn.Sequential(pyasg.nn.Conv2d(2, 4, 3, padding=1), pyasg.nn.ReLU(),
                                pyasg.nn.MaxPool2d(2), pyasg.nn.Conv2d(4, 3, 3, padding=1),
                                pyasg.nn.Flatten(), pyasg.nn.Linear(3 * 3 * 3, 2))
    params = model.init(pyasg.random.key(1))
    x = np.random.default_rng(0).standard_normal((3, 2, 6, 6)).astype(np.float32)

    def step(p, x):  # noqa: ANN001, ANN202
        return pyasg.value_and_grad(lambda p: pyasg.mean(model(p, x) ** 2))(p)

    graph = pyasg.make_graph(step)(params, x)
    ex = build(graph, fuse, poison=True)
    convs = [i for i in ex.plan.scratch_of if "conv2d" in ex.graph.nodes[i].op.name]
    assert len(convs) >= 3  # forward, and both backward convolutions
    check_plan(ex)
    arrays = [np.asarray(leaf) for _, leaf in
              pyasg.trace.tree.flatten_with_paths({"p": params, "x": x})[0]]
    for got, want in zip(ex(*arrays), interpret(graph, arrays)):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6)
