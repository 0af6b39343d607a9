"""scan, fori_loop, cond, while_loop: JAX is the oracle (x64), central differences check
every gradient, every backend matches the reference, and bad bodies raise errors that
name both types.

The functions here are written once against a namespace (`pyasg` or `jax.numpy` plus
`jax.lax`), so the pyasg and JAX sides compute the same thing by construction.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
from gradcheck import check_grad
from hypothesis import given
from hypothesis import strategies as st
from wgpu_util import WGPU, wgpu_parity

import pyasg
from pyasg.asg.graph import Graph
from pyasg.errors import BranchMismatchError, CarryTypeError, ControlFlowError, GradError

jax = pytest.importorskip("jax")
jnp = jax.numpy
jax.config.update("jax_enable_x64", True)

PYASG = SimpleNamespace(np=pyasg, scan=pyasg.scan, cond=pyasg.cond,
                        while_loop=pyasg.while_loop, fori_loop=pyasg.fori_loop)
JAX = SimpleNamespace(np=jnp, scan=jax.lax.scan, cond=jax.lax.cond,
                      while_loop=jax.lax.while_loop, fori_loop=jax.lax.fori_loop)

BACKENDS = ("reference", "numpy")


def rnn(ns: SimpleNamespace, reverse: bool = False):  # noqa: ANN201
    """An RNN-like scan with a pytree carry, a const closed over, and two ys."""

    def f(w, h0, xs):
        def body(carry, x):
            h, n = carry["h"], carry["n"]
            h2 = ns.np.tanh(h @ w + x)
            return {"h": h2, "n": n + 1}, (h2 * h2, ns.np.sum(h2))

        carry, (sq, tot) = ns.scan(body, {"h": h0, "n": np.int32(0)}, xs, reverse=reverse)
        return carry["h"], carry["n"], sq, tot

    return f


def loss_of(f):  # noqa: ANN001, ANN201
    def loss(*args):
        h, n, sq, tot = f(*args)
        return (h * h).sum() + (sq * 0.5).sum() + (tot * tot).sum()

    return loss


def case(seed: int, length: int, d: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(d, d)) * 0.6, rng.normal(size=d), rng.normal(size=(length, d)))


def assert_same(got, want, rtol=1e-10, atol=1e-12):  # noqa: ANN001
    got, want = pyasg.tree_leaves(got), jax.tree_util.tree_leaves(want)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        w = np.asarray(w)
        g = np.asarray(g)
        assert g.shape == w.shape, (g.shape, w.shape)
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)


# --------------------------------------------------------------------------- scan


@given(seed=st.integers(0, 2**31), length=st.integers(0, 6), d=st.integers(1, 4),
       reverse=st.booleans(), backend=st.sampled_from(BACKENDS))
def test_scan_equals_jax(seed: int, length: int, d: int, reverse: bool, backend: str) -> None:
    args = case(seed, length, d)
    got = pyasg.jit(rnn(PYASG, reverse), backend=backend)(*args)
    want = rnn(JAX, reverse)(*args)
    assert_same(got, want)
    assert np.asarray(got[1]).dtype == np.int32


@given(seed=st.integers(0, 2**31), length=st.integers(0, 5), d=st.integers(1, 3),
       reverse=st.booleans(), backend=st.sampled_from(BACKENDS))
def test_scan_gradients_equal_jax(seed: int, length: int, d: int, reverse: bool,
                                  backend: str) -> None:
    args = case(seed, length, d)
    got = pyasg.jit(pyasg.grad(loss_of(rnn(PYASG, reverse)), argnums=(0, 1, 2)),
                    backend=backend)(*args)
    want = jax.grad(loss_of(rnn(JAX, reverse)), argnums=(0, 1, 2))(*args)
    assert_same(got, want, rtol=1e-9, atol=1e-11)


def test_scan_gradient_against_central_differences() -> None:
    # short: through more tanh steps d/dh0 shrinks below what differences resolve
    w, h0, xs = case(3, 3, 3)
    check_grad(lambda w, h0, xs: rnn(PYASG)(w, h0, xs)[2], w, h0, xs, argnums=(0, 1, 2))
    check_grad(lambda w, h0, xs: rnn(PYASG, True)(w, h0, xs)[0], w, h0, xs, argnums=(0, 1, 2))


def sine_scan(ns: SimpleNamespace):  # noqa: ANN201
    def f(a, xs):
        return ns.scan(lambda c, x: (ns.np.sin(c * a + x), c * x), a * 0.5, xs)

    return f


def test_grad_of_grad_through_scan() -> None:
    xs = np.random.default_rng(5).normal(size=(6,))

    def first(a: object) -> object:
        c, ys = sine_scan(PYASG)(a, xs)
        return c + ys.sum()

    d1 = pyasg.grad(first)
    # the second derivative, checked against central differences of the first
    check_grad(lambda a: d1(a), np.float64(0.7), argnums=0)
    want = jax.grad(jax.grad(lambda a: (lambda r: r[0] + r[1].sum())(sine_scan(JAX)(a, xs))))(0.7)
    for backend in BACKENDS:
        got = pyasg.jit(pyasg.grad(d1), backend=backend)(np.float64(0.7))
        np.testing.assert_allclose(got, want, rtol=1e-10)


def test_scan_over_nothing_with_a_length_and_ys_none() -> None:
    c, ys = pyasg.scan(lambda c, _: (c * 2.0, None), np.float64(1.0), None, length=5)
    assert float(c) == 32.0 and ys is None


def test_nested_scan_equals_jax() -> None:
    def f(ns: SimpleNamespace, xs: object) -> object:
        def outer(c, row):
            inner, _ = ns.scan(lambda a, v: (a * v + 1.0, None), c, row)
            return inner, inner

        return ns.scan(outer, 0.5, xs)

    xs = np.random.default_rng(2).normal(size=(4, 3))
    assert_same(pyasg.jit(lambda x: f(PYASG, x))(xs), f(JAX, xs))
    got = pyasg.grad(lambda x: f(PYASG, x)[1].sum())(xs)
    assert_same(got, jax.grad(lambda x: f(JAX, x)[1].sum())(xs), rtol=1e-9)


@pytest.mark.parametrize("length", [8, 64])
def test_graph_size_does_not_grow_with_length(length: int) -> None:
    w, h0, xs = case(0, length, 3)
    sizes = {n: len(pyasg.make_graph(rnn(PYASG))(*case(0, n, 3)).nodes) for n in (8, length)}
    grads = {n: len(pyasg.make_graph(pyasg.grad(loss_of(rnn(PYASG))))(*case(0, n, 3)).nodes)
             for n in (8, length)}
    assert sizes[8] == sizes[length] and grads[8] == grads[length]


def test_a_python_loop_unrolls_but_scan_does_not() -> None:
    def unrolled(x):
        for _ in range(50):
            x = x * 1.01
        return x

    def scanned(x):
        return pyasg.fori_loop(0, 50, lambda i, v: v * 1.01, x)

    x = np.float64(1.0)
    assert len(pyasg.make_graph(unrolled)(x).nodes) > 50
    assert len(pyasg.make_graph(scanned)(x).nodes) <= 4
    np.testing.assert_allclose(pyasg.jit(scanned)(x), pyasg.jit(unrolled)(x), rtol=1e-12)


def test_scan_graph_round_trips_through_json_and_hash_conses() -> None:
    w, h0, xs = case(1, 4, 2)
    graph = pyasg.make_graph(pyasg.grad(loss_of(rnn(PYASG))))(w, h0, xs)
    back = pyasg.graph_from_json(json.loads(json.dumps(pyasg.graph_to_json(graph))))
    assert back == graph and hash(back) == hash(graph)
    np.testing.assert_allclose(pyasg.jit_to_backend(back)(w, h0, xs)[0],
                               pyasg.jit_to_backend(graph)(w, h0, xs)[0])
    twice = pyasg.make_graph(lambda a, x: [sine_scan(PYASG)(a, x)[0],
                                           sine_scan(PYASG)(a, x)[0]])(np.float64(1), xs[:, 0])
    assert twice.outputs[0] == twice.outputs[1]  # the same scan is one node


def test_fusion_leaves_control_flow_ops_whole() -> None:
    xs = np.random.default_rng(0).normal(size=(5,))
    f = pyasg.grad(lambda a, x: (pyasg.exp(sine_scan(PYASG)(a, x)[1]) * 2.0 + 1.0).sum())
    graph = pyasg.make_graph(f)(np.float64(0.3), xs)
    lowered = pyasg.compile.pipeline.lower_graph(graph, pyasg.compile.registry.get_backend("numpy"))
    scans = [n for n in lowered.nodes.values() if n.op.name == "scan"]
    assert scans and all(isinstance(n.op.body, Graph) for n in scans)
    for n in lowered.nodes.values():
        if n.op.name == "fused":
            assert "scan" not in n.op.op_names
    np.testing.assert_allclose(pyasg.jit(f)(np.float64(0.3), xs),
                               jax.grad(lambda a: (jnp.exp(sine_scan(JAX)(a, xs)[1]) * 2.0
                                                   + 1.0).sum())(0.3), rtol=1e-10)


# --------------------------------------------------------------------------- fori_loop


@given(lo=st.integers(-3, 3), n=st.integers(-2, 6), seed=st.integers(0, 2**31))
def test_fori_loop_equals_jax(lo: int, n: int, seed: int) -> None:
    x = np.random.default_rng(seed).normal(size=(3,))

    def f(ns: SimpleNamespace, x: object) -> object:
        return ns.fori_loop(lo, lo + n, lambda i, v: ns.np.sin(v) + i * 0.25, x)

    assert_same(pyasg.jit(lambda x: f(PYASG, x))(x), f(JAX, x))
    assert_same(pyasg.grad(lambda x: f(PYASG, x).sum())(x),
                jax.grad(lambda x: f(JAX, x).sum())(x))


def test_fori_loop_with_traced_bounds_is_a_while_loop() -> None:
    def f(ns: SimpleNamespace, n: object, x: object) -> object:
        return ns.fori_loop(0, n, lambda i, v: v * 2.0 + 1.0, x)

    for n in (0, 1, 5):
        got = pyasg.jit(lambda n, x: f(PYASG, n, x))(np.int32(n), np.float64(1.5))
        np.testing.assert_allclose(got, f(JAX, np.int32(n), np.float64(1.5)))
    with pytest.raises(GradError, match="while_loop"):
        pyasg.grad(lambda x, n: f(PYASG, n, x))(np.float64(1.0), np.int32(3))


# --------------------------------------------------------------------------- cond


def branchy(ns: SimpleNamespace):  # noqa: ANN201
    def f(p, a, b):
        k = a * 3.0  # closed over by the true branch only
        return ns.cond(p > 0, lambda x, y: (x * y + k, ns.np.sin(x)),
                       lambda x, y: (x - y, ns.np.cos(y) * x), a, b)

    return f


@given(p=st.floats(-2, 2), seed=st.integers(0, 2**31), backend=st.sampled_from(BACKENDS))
def test_cond_and_its_gradient_equal_jax(p: float, seed: int, backend: str) -> None:
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(2, 3))
    args = (np.float64(p), a, b)
    assert_same(pyasg.jit(branchy(PYASG), backend=backend)(*args), branchy(JAX)(*args))

    def loss(ns: SimpleNamespace):  # noqa: ANN202
        return lambda p, a, b: (lambda r: (r[0] * r[1]).sum())(branchy(ns)(p, a, b))

    got = pyasg.jit(pyasg.grad(loss(PYASG), argnums=(1, 2)), backend=backend)(*args)
    assert_same(got, jax.grad(loss(JAX), argnums=(1, 2))(*args))


def test_cond_gradient_against_central_differences() -> None:
    a, b = np.random.default_rng(4).normal(size=(2, 3))
    for p in (1.0, -1.0):
        check_grad(lambda a, b, p=p: branchy(PYASG)(np.float64(p), a, b)[1], a, b,
                   argnums=(0, 1))


def test_cond_inside_scan_and_its_second_derivative() -> None:
    xs = np.random.default_rng(7).normal(size=(6,))

    def f(ns: SimpleNamespace, a: object) -> object:
        body = lambda c, x: (ns.cond(x > 0, lambda c: c * a, lambda c: ns.np.sin(c + a), c),  # noqa: E731
                             None)
        return ns.scan(body, a, xs)[0]

    np.testing.assert_allclose(pyasg.jit(lambda a: f(PYASG, a))(np.float64(0.4)),
                               f(JAX, 0.4), rtol=1e-12)
    np.testing.assert_allclose(pyasg.grad(pyasg.grad(lambda a: f(PYASG, a)))(np.float64(0.4)),
                               jax.grad(jax.grad(lambda a: f(JAX, a)))(0.4), rtol=1e-9)


# --------------------------------------------------------------------------- while_loop


@given(limit=st.floats(0.5, 50), backend=st.sampled_from(BACKENDS))
def test_while_loop_equals_jax(limit: float, backend: str) -> None:
    def f(ns: SimpleNamespace, x: object, limit: object) -> object:
        return ns.while_loop(lambda s: s[1].sum() < limit,
                             lambda s: (s[0] + 1, s[1] * 1.5 + 0.1), (np.int32(0), x))

    x = np.array([0.1, 0.2])
    assert_same(pyasg.jit(lambda x, lim: f(PYASG, x, lim), backend=backend)(x, np.float64(limit)),
                f(JAX, x, np.float64(limit)))


def test_while_loop_has_no_reverse_mode_gradient() -> None:
    def f(x: object) -> object:
        return pyasg.while_loop(lambda v: v.sum() < 10.0, lambda v: v * 2.0, x).sum()

    assert float(pyasg.jit(f)(np.ones(2))) == 16.0
    with pytest.raises(GradError, match="while_loop.*trip count"):
        pyasg.grad(f)(np.ones(2))
    # an integer counter alone does not put the loop on a float path
    g = pyasg.grad(lambda x: x * pyasg.while_loop(lambda n: n < 3, lambda n: n + 1,
                                                   np.int32(0)).astype(np.float64))
    assert float(g(np.float64(2.0))) == 3.0


# --------------------------------------------------------------------------- errors


def test_a_carry_that_changes_dtype_names_both_types() -> None:
    with pytest.raises(CarryTypeError, match=r"'carry' is f32\[3\].*returns is f64\[3\]"):
        pyasg.scan(lambda c, x: (c + x, None), np.zeros(3, np.float32), np.ones((2, 3)))


def test_a_carry_that_changes_shape_or_structure() -> None:
    with pytest.raises(CarryTypeError, match=r"'carry.h' is f64\[3\].*f64\[1,3\]"):
        pyasg.scan(lambda c, x: ({"h": c["h"][None]}, None), {"h": np.zeros(3)}, np.ones((2, 3)))
    with pytest.raises(CarryTypeError, match="structure"):
        pyasg.scan(lambda c, x: ((c, c), None), np.zeros(3), np.ones((2, 3)))
    with pytest.raises(CarryTypeError, match=r"body_fun returns is f64\[2\]"):
        pyasg.while_loop(lambda v: v.sum() < 1, lambda v: pyasg.concatenate([v, v]), np.ones(1))


def test_mismatched_branches_name_both() -> None:
    with pytest.raises(BranchMismatchError, match=r"true_fn's 'result' is f64\[3\].*f32\[3\]"):
        pyasg.cond(True, lambda x: x, lambda x: x.astype(np.float32), np.ones(3))
    with pytest.raises(BranchMismatchError, match="structure"):
        pyasg.cond(True, lambda x: (x, x), lambda x: x, np.ones(3))


def test_bad_calls_raise_control_flow_errors() -> None:
    with pytest.raises(ControlFlowError, match="pair"):
        pyasg.scan(lambda c, x: c, 0.0, np.ones(3))
    with pytest.raises(ControlFlowError, match="leading axes disagree"):
        pyasg.scan(lambda c, x: (c, None), 0.0, (np.ones(3), np.ones(4)))
    with pytest.raises(ControlFlowError, match="no length"):
        pyasg.scan(lambda c, x: (c, None), 0.0, None)
    with pytest.raises(ControlFlowError, match="0-d"):
        pyasg.scan(lambda c, x: (c, None), 0.0, np.float64(1))
    with pytest.raises(ControlFlowError, match="scalar"):
        pyasg.cond(np.ones(2) > 0, lambda x: x, lambda x: x, 1.0)
    with pytest.raises(ControlFlowError, match="bool scalar"):
        pyasg.while_loop(lambda v: v, lambda v: v, np.float64(1.0))
    with pytest.raises(ControlFlowError, match="must be a function"):
        pyasg.cond(True, 3, lambda x: x, 1.0)
    with pytest.raises(ControlFlowError, match="not an array"):
        pyasg.scan(lambda c, x: (c, None), "text", np.ones(3))


# --------------------------------------------------------------------------- backends


@WGPU
@pytest.mark.parametrize("reverse", [False, True])
def test_wgpu_scan_and_its_gradient_equal_the_reference(reverse: bool) -> None:
    w, h0, xs = (a.astype(np.float32) for a in case(9, 5, 3))
    wgpu_parity(rnn(PYASG, reverse), w, h0, xs)
    wgpu_parity(pyasg.grad(loss_of(rnn(PYASG, reverse)), argnums=(0, 1, 2)), w, h0, xs,
                atol=1e-4, rtol=1e-4)


@WGPU
def test_wgpu_cond_and_fori_loop_equal_the_reference() -> None:
    a, b = np.random.default_rng(3).normal(size=(2, 3)).astype(np.float32)
    for p in (np.float32(1), np.float32(-1)):
        wgpu_parity(branchy(PYASG), p, a, b)
        wgpu_parity(pyasg.grad(lambda p, a, b: branchy(PYASG)(p, a, b)[0].sum(), argnums=(1, 2)),
                    p, a, b)
    wgpu_parity(lambda x: pyasg.fori_loop(0, 7, lambda i, v: pyasg.sin(v) + 0.5, x), a)


@WGPU
@given(seed=st.integers(0, 2**31), length=st.integers(0, 4), d=st.integers(1, 3),
       reverse=st.booleans())
def test_wgpu_scans_equal_the_reference_for_any_length(seed: int, length: int, d: int,
                                                       reverse: bool) -> None:
    w, h0, xs = (a.astype(np.float32) for a in case(seed, length, d))
    wgpu_parity(rnn(PYASG, reverse), w, h0, xs, atol=1e-5, rtol=1e-4)


@WGPU
def test_wgpu_swapped_carries_nested_scans_and_checkpoint() -> None:
    xs = np.random.default_rng(8).normal(size=(5, 2)).astype(np.float32)

    def swap(xs):  # each step's new carries are the old ones, exchanged
        return pyasg.scan(lambda c, x: ((c[1], c[0] + x), c[0] * 2.0),
                          (xs[0], xs[1] * 3.0), xs)

    def nested(xs):
        return pyasg.scan(lambda c, row: (pyasg.scan(lambda a, v: (a * 0.5 + v, a), c, row)[0],
                                          c), np.float32(0.25), xs)

    block = pyasg.checkpoint(lambda a, b: (pyasg.tanh(a * b), a - b))
    for fn in (swap, nested, lambda xs: block(xs, xs * 2.0),
               pyasg.grad(lambda xs: (block(xs, xs + 1.0)[0] ** 2).sum())):
        wgpu_parity(fn, xs, atol=1e-5, rtol=1e-4)


@WGPU
def test_wgpu_gru_step_equals_the_reference() -> None:
    layer = pyasg.nn.GRU(3, 4, num_layers=2, batch_first=True)
    params = layer.init(pyasg.random.key(0))
    x = np.random.default_rng(1).normal(size=(2, 5, 3)).astype(np.float32)
    names = sorted(params)

    def loss(x, *ws):  # wgpu_parity passes arrays, not a params tree
        return (layer(dict(zip(names, ws)), x)[0] ** 2).sum()

    wgpu_parity(pyasg.grad(loss, argnums=tuple(range(len(names) + 1))), x,
                *(params[k] for k in names), atol=1e-5, rtol=1e-4)


@WGPU
@given(limit=st.floats(0.5, 50, width=32))
def test_wgpu_while_loop_reads_its_predicate_back_and_equals_the_reference(limit: float) -> None:
    def f(x, limit):
        n, v = pyasg.while_loop(lambda s: s[1].sum() < limit,
                                lambda s: (s[0] + 1, s[1] * 1.5 + 0.1), (np.int32(0), x * 1.0))
        return n, pyasg.exp(v * 0.1) + 1.0  # device work before and after the loop

    wgpu_parity(f, np.array([0.1, 0.2], np.float32), np.float32(limit))


@WGPU
def test_wgpu_while_loop_inside_a_scan_body_is_refused_by_name() -> None:
    from pyasg.errors import BackendError

    def f(xs):
        body = lambda c, x: (pyasg.while_loop(lambda v: v < 10.0, lambda v: v * 2.0, c + x),  # noqa: E731
                             None)
        return pyasg.scan(body, np.float32(1.0), xs)[0]

    with pytest.raises(BackendError, match="while_loop inside the body of a scan"):
        pyasg.jit(f, backend="wgpu")(np.ones(3, np.float32))
    assert float(pyasg.jit(f)(np.ones(3, np.float32))) > 10.0


def test_numpy_runs_one_loop_per_scan_for_all_its_outputs() -> None:
    """Forward values, the gradient's residuals and a backward scan's several gradients
    share one pass over the time axis, counted in executable calls (the step's own, then
    one body call per iteration); the rnn loss reads three of the scan's outputs, and
    their cotangents share one backward scan too (`CONSTRUCT_VJP_RULES`)."""
    import pyasg.kernels.numpy.executable as executable

    def calls(fn, *args) -> int:  # noqa: ANN001
        fn(*args)
        before = next(executable._call_ids)
        fn(*args)
        return next(executable._call_ids) - before - 1

    w, h0, xs = case(2, 6, 3)
    one_output = pyasg.jit(pyasg.grad(lambda w, h0, xs: (rnn(PYASG)(w, h0, xs)[2] ** 2).sum(),
                                      argnums=(0, 1, 2)))
    assert calls(one_output, w, h0, xs) == 1 + 6 + 6
    three = pyasg.jit(pyasg.grad(loss_of(rnn(PYASG)), argnums=(0, 1, 2)))
    assert calls(three, w, h0, xs) == 1 + 6 + 6


def test_simplify_goes_into_the_bodies() -> None:
    f = lambda xs: pyasg.scan(lambda c, x: (c * 1.0 + x * 1.0 + 0.0, None), 0.5, xs)[0]  # noqa: E731
    xs = np.arange(4.0)
    graph = pyasg.make_graph(f)(xs)
    (before,) = [n.op.body for n in graph.nodes.values() if n.op.name == "scan"]
    (after,) = [n.op.body for n in pyasg.simplify(graph).nodes.values() if n.op.name == "scan"]
    assert [after.nodes[i].op.name for i in after.live_ids if i not in after.inputs] == ["add"]
    assert len(after.live_ids) < len(before.live_ids)
    np.testing.assert_allclose(pyasg.jit(f)(xs), 6.5)


def test_the_viewer_labels_each_loop_node_with_its_length_and_output() -> None:
    from pyasg.viewer.layout import layout
    from pyasg.viewer.texts import explain_op

    w, h0, xs = case(0, 7, 2)
    graph = pyasg.make_graph(pyasg.value_and_grad(loss_of(rnn(PYASG))))(w, h0, xs)
    labels = {box.label for box in layout(graph).boxes.values()}
    assert {"scan ×7: carry 0", "scan ×7: y 0", "scan ×7: kept carry 0"} <= labels
    assert any(label.startswith("scan ×7 rev: ") for label in labels)
    assert "reverse scan" in explain_op("scan", "en")["why"]
    assert "обратный scan" in explain_op("scan", "ru")["why"]


def test_fori_loop_index_is_weak_like_a_python_int() -> None:
    got = pyasg.fori_loop(0, 4, lambda i, v: v * 0.5 + i, np.float32(1))
    assert got.dtype == np.float32
    want = jax.lax.fori_loop(0, 4, lambda i, v: v * 0.5 + i, np.float32(1))
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_a_scan_without_carry_and_one_over_integer_indices_equal_jax() -> None:
    rng = np.random.default_rng(0)
    xs, table = rng.normal(size=(4, 3)), rng.normal(size=(5, 3))
    ids = np.array([0, 3, 1, 4, 3], np.int32)

    def mapped(ns: SimpleNamespace, xs: object) -> object:
        return ns.scan(lambda c, x: ((), ns.np.sin(x) * 2.0), (), xs)[1]

    def gathered(ns: SimpleNamespace, t: object) -> object:
        take = pyasg.take if ns is PYASG else jnp.take
        return ns.scan(lambda c, i: (c + take(t, i, axis=0), None), np.zeros(3), ids)[0]

    for f, arg in ((mapped, xs), (gathered, table)):
        assert_same(pyasg.jit(lambda a, f=f: f(PYASG, a))(arg), f(JAX, arg))
        assert_same(pyasg.grad(lambda a, f=f: (f(PYASG, a) ** 2).sum())(arg),
                    jax.grad(lambda a, f=f: (f(JAX, a) ** 2).sum())(arg))


def test_hessian_through_scan_equals_jax() -> None:
    xs = np.random.default_rng(1).normal(size=(5,))

    def f(ns: SimpleNamespace, a: object) -> object:
        return ns.scan(lambda c, x: (ns.np.sin(c * a) + x, None), a, xs)[0]

    np.testing.assert_allclose(pyasg.hessian(lambda a: f(PYASG, a))(np.float64(0.3)),
                               jax.hessian(lambda a: f(JAX, a))(0.3), rtol=1e-10)


def test_vmap_and_forward_mode_through_a_while_loop_say_they_are_not_written_yet():
    # the registry's explicit marks (NO_BATCH_RULE, NO_JVP) reach the user as errors
    def f(x):
        return pyasg.scan(lambda c, v: (c + v, c * v), x[0], x)[1].sum()

    x = np.arange(1.0, 4.0)
    with pytest.raises(pyasg.VmapError, match="vmap of a while_loop"):
        pyasg.vmap(lambda v: pyasg.while_loop(lambda a: a.sum() < 9.0, lambda a: a * 2.0, v))(
            np.stack([x, x]))
    w = lambda v: pyasg.while_loop(lambda a: a.sum() < 9.0, lambda a: a * 2.0, v)  # noqa: E731
    with pytest.raises(pyasg.GradError, match="forward mode through a while_loop"):
        pyasg.jvp(w, (x,), (np.ones_like(x),))
    np.testing.assert_allclose(pyasg.jacfwd(f)(x), pyasg.jacrev(f)(x), rtol=1e-12)


def _rnn(h0, xs, w):
    return pyasg.scan(lambda h, x: (pyasg.tanh(h @ w + x), h.sum() * x), h0, xs)


@pytest.mark.parametrize("in_axes", [(0, 0, None), (None, 1, None), (None, None, 0),
                                     (0, None, 0)])
def test_vmap_of_scan_and_its_per_example_gradients_equal_the_loop(in_axes):
    rng = np.random.default_rng(5)
    args = [rng.normal(size=(3,)), rng.normal(size=(5, 3)), rng.normal(size=(3, 3)) * 0.5]
    batched = [a if ax is None else np.stack([a * (1 + 0.1 * i) for i in range(4)], ax)
               for a, ax in zip(args, in_axes)]

    def example(i):
        return [a if ax is None else np.take(b, i, axis=ax)
                for a, b, ax in zip(args, batched, in_axes)]

    got = pyasg.vmap(_rnn, in_axes=in_axes)(*batched)
    for k in range(2):
        np.testing.assert_allclose(got[k], np.stack([_rnn(*example(i))[k] for i in range(4)]),
                                   rtol=1e-12)
    loss = lambda *a: pyasg.sum(_rnn(*a)[1]) + pyasg.sum(_rnn(*a)[0] ** 2)  # noqa: E731
    per = pyasg.vmap(pyasg.grad(loss, argnums=(0, 1, 2)), in_axes=in_axes)(*batched)
    for k in range(3):
        np.testing.assert_allclose(
            per[k], np.stack([pyasg.grad(loss, argnums=(0, 1, 2))(*example(i))[k]
                              for i in range(4)]), rtol=1e-10, atol=1e-12)


def test_vmap_of_scan_equals_jax():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy

    def jrnn(h0, xs, w):
        return jax.lax.scan(lambda h, x: (jnp.tanh(h @ w + x), h.sum() * x), h0, xs)

    rng = np.random.default_rng(6)
    h0, xs, w = rng.normal(size=(4, 3)), rng.normal(size=(4, 6, 3)), rng.normal(size=(3, 3))
    want = jax.vmap(jrnn, in_axes=(0, 0, None))(h0, xs, w)
    got = pyasg.vmap(_rnn, in_axes=(0, 0, None))(h0, xs, w)
    for g, x in zip(got, want):
        np.testing.assert_allclose(g, np.asarray(x), rtol=1e-12)


def _cond_fn(x):
    return pyasg.cond(x.sum() > 0, lambda a: pyasg.sin(a) * 2.0, lambda a: a * a, x)


def _remat_fn(x):
    return pyasg.checkpoint(lambda a: pyasg.tanh(a) * a)(x)


@pytest.mark.parametrize("fn", [_cond_fn, _remat_fn], ids=["cond", "checkpoint"])
def test_vmap_jvp_and_per_example_grads_through_cond_and_checkpoint_equal_the_loop(fn):
    x = np.array([0.3, -1.2, 2.0])
    xs = np.stack([x, -x, 2 * x])  # predicates of both signs: cond becomes a select
    np.testing.assert_allclose(pyasg.vmap(fn)(xs), np.stack([fn(v) for v in xs]), rtol=1e-12)
    loss = lambda a: pyasg.sum(fn(a))  # noqa: E731
    np.testing.assert_allclose(pyasg.vmap(pyasg.grad(loss))(xs),
                               np.stack([pyasg.grad(loss)(v) for v in xs]), rtol=1e-12)
    for v in xs:
        _, t = pyasg.jvp(fn, (v,), (np.ones(3),))
        np.testing.assert_allclose(t, pyasg.jacrev(fn)(v).sum(axis=1), rtol=1e-12)
        np.testing.assert_allclose(pyasg.hessian(loss)(v),
                                   pyasg.jacrev(pyasg.jacrev(loss))(v), rtol=1e-10, atol=1e-12)


def test_vmap_of_a_cond_with_a_shared_predicate_stays_a_cond():
    xs = np.arange(6.0).reshape(2, 3)
    g = pyasg.make_graph(pyasg.vmap(
        lambda p, a: pyasg.cond(p, lambda b: b * 2.0, lambda b: -b, a), in_axes=(None, 0)))(
        np.bool_(True), xs)
    assert [g[i].op.name for i in g.live_ids].count("cond") == 1


def test_vmap_and_jvp_through_cond_equal_jax():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy

    def jf(x):
        return jax.lax.cond(x.sum() > 0, lambda a: jnp.sin(a) * 2.0, lambda a: a * a, x)

    rng = np.random.default_rng(7)
    xs = rng.normal(size=(5, 3))
    np.testing.assert_allclose(pyasg.vmap(_cond_fn)(xs), np.asarray(jax.vmap(jf)(xs)),
                               rtol=1e-12)
    t = rng.normal(size=3)
    want = jax.jvp(jf, (xs[0],), (t,))[1]
    np.testing.assert_allclose(pyasg.jvp(_cond_fn, (xs[0],), (t,))[1], np.asarray(want),
                               rtol=1e-12)


def test_jvp_through_scan_equals_jax():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy

    def jrnn(h0, xs, w):
        h, ys = jax.lax.scan(lambda h, x: (jnp.tanh(h @ w + x), h.sum() * x), h0, xs)
        return jnp.concatenate([h, ys.reshape(-1)])

    def rnn(h0, xs, w):
        h, ys = _rnn(h0, xs, w)
        return pyasg.concatenate([h, ys.reshape(-1)])

    rng = np.random.default_rng(8)
    primals = (rng.normal(size=3), rng.normal(size=(6, 3)), rng.normal(size=(3, 3)) * 0.5)
    tangents = tuple(rng.normal(size=p.shape) for p in primals)
    want = jax.jvp(jrnn, primals, tangents)
    got = pyasg.jvp(rnn, primals, tangents)
    for g, x in zip(got, want):
        np.testing.assert_allclose(g, np.asarray(x), rtol=1e-12, atol=1e-12)
