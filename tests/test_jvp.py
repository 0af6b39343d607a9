"""Forward mode: every JVP rule against central differences, the API against JAX, and its
compositions (jit on numpy and wgpu, grad of jvp, jvp of grad, hessian) and errors.

The numerical check is generic: each op with a row in `JVP_RULES` is run on its example
from `test_registry.EXAMPLES` (inputs in float64), and the tangent `jvp_graph` gives
along a random direction is compared with (f(x + h·t) − f(x − h·t)) / 2h of the one-node
graph compiled forward only. JAX (where installed) is the oracle for the public
functions, per op family, on hypothesis-generated inputs. Expected values never come
from pyasg itself.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from gradcheck import assert_close_rel
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from test_registry import example, example_arrays
from wgpu_util import WGPU, require_wgpu

import pyasg
from pyasg import api
from pyasg.asg import ops
from pyasg.asg.graph import GraphBuilder
from pyasg.asg.ops import OPS
from pyasg.asg.rewrite import rebuild
from pyasg.asg.types import TensorType, is_float
from pyasg.errors import GradError, IntegerTangentError, TangentError
from pyasg.transforms.fuse import fuse
from pyasg.transforms.jvp import JVP_RULES, NO_JVP, jvp_graph, zero
from pyasg.transforms.vjp import vjp_graph

SEEDS = st.integers(0, 2**32 - 1)
SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)
BROADCAST_2 = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3,
                                                min_side=1, max_side=4)


def _jax():  # noqa: ANN202
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    return jax


# ------------------------------------------------------------------- every rule, numerically


def _f64(t: TensorType) -> TensorType:
    return TensorType(t.shape, "float64") if is_float(t.dtype) else t


def _one_node(name: str):  # noqa: ANN202
    """The registry's example of op `name` as a one-node graph with float64 inputs."""
    op, types = example(name)
    types64 = tuple(_f64(t) for t in types)
    if name == "Cast":
        op = type(op)("float64")  # a float-to-float cast has a non-zero tangent
    if hasattr(op, "graph"):  # Fused, CustomCall: the sub-graph retyped to float64
        op = dataclasses.replace(op, graph=rebuild(op.graph, input_types=types64))
    if isinstance(op, ops.Remat):  # control flow: its sub-graphs retyped likewise
        op = dataclasses.replace(op, body=rebuild(op.body, input_types=types64))
    if isinstance(op, ops.Scan):  # the body takes one slice of each scanned array
        n = op.n_consts + op.n_carry
        slices = types64[:n] + tuple(TensorType(t.shape[1:], t.dtype) for t in types64[n:])
        op = dataclasses.replace(op, body=rebuild(op.body, input_types=slices))
    if isinstance(op, ops.Cond):  # (the predicate, a bool, is not a branch input)
        op = dataclasses.replace(op, true_branch=rebuild(op.true_branch, input_types=types64[1:]),
                                 false_branch=rebuild(op.false_branch, input_types=types64[1:]))
    b = GraphBuilder()
    return b.build([b.add(op, [b.add_input(f"x{k}", ty) for k, ty in enumerate(types64)])])


#: stop_gradient's tangent is zero by definition, not its value's derivative
RULED = sorted(cls.__name__ for cls in JVP_RULES if cls.__name__ != "StopGradient")


def test_stop_gradient_has_a_zero_tangent_as_in_jax() -> None:
    jax = _jax()
    x = np.array([1.0, 2.0])
    f = lambda x: x * pyasg.stop_gradient(x)  # noqa: E731
    got = pyasg.jvp(f, (x,), (np.ones(2),))[1]
    want = jax.jvp(lambda x: x * jax.lax.stop_gradient(x), (x,), (np.ones(2),))[1]
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("name", RULED)
def test_every_jvp_rule_matches_central_differences(name: str, seed: int) -> None:
    graph = _one_node(name)
    rng = np.random.default_rng(seed)
    arrays = example_arrays(graph.input_types)
    arrays = [a + rng.uniform(-0.2, 0.2, a.shape).astype(a.dtype) if is_float(a.dtype) else a
              for a in arrays]  # still positive (log, sqrt): [0.3, 1.7]
    wrt = [k for k, t in enumerate(graph.input_types) if is_float(t.dtype)]
    tangents = [rng.standard_normal(graph.input_types[k].shape).astype(graph.input_types[k].dtype)
                for k in wrt]
    forward = jvp_graph(graph, wrt)
    out_type = graph.output_types[0]
    assert forward.output_types == (out_type, out_type)
    got = pyasg.jit_to_backend(forward, "numpy")(*arrays, *tangents)[1]
    if not is_float(out_type.dtype):
        assert JVP_RULES[OPS[name]] is zero
        np.testing.assert_array_equal(got, np.zeros(out_type.shape, out_type.dtype))
        return
    run = pyasg.jit_to_backend(graph, "numpy")
    eps = 1e-6 if out_type.dtype == "float64" else 1e-3

    def at(step: float) -> np.ndarray:
        moved = list(arrays)
        for k, t in zip(wrt, tangents):
            moved[k] = (arrays[k] + step * t).astype(arrays[k].dtype)
        return np.asarray(run(*moved)[0], np.float64)

    numeric = (at(eps) - at(-eps)) / (2 * eps)
    rtol = 1e-6 if out_type.dtype == "float64" else 2e-2
    assert_close_rel(got, numeric, rtol, f"JVP of {name}")


def test_the_numeric_check_covers_every_rule_and_every_op_is_accounted_for() -> None:
    for name, cls in OPS.items():
        if name in ("Input", "Constant"):
            continue
        assert (cls in JVP_RULES) != (cls in NO_JVP), name
        if cls in JVP_RULES:
            assert example(name) is not None, f"{name} has a JVP rule but no example"


def test_an_op_without_a_forward_rule_raises_naming_it() -> None:
    x = np.ones((1, 2, 3, 4))
    k = np.ones((1, 2, 5, 4))
    v = np.ones((1, 2, 5, 3))
    grad_q = pyasg.grad(lambda q: pyasg.scaled_dot_product_attention(q, k, v).sum())
    with pytest.raises(GradError, match="attention_.*cannot be differentiated in forward"):
        pyasg.jvp(grad_q, (x,), (x,))


# --------------------------------------------------------------------------- JAX, per op family

UNARY = {
    "exp": (pyasg.exp, "exp"), "log": (pyasg.log, "log"), "sqrt": (pyasg.sqrt, "sqrt"),
    "sin": (pyasg.sin, "sin"), "cos": (pyasg.cos, "cos"), "tanh": (pyasg.tanh, "tanh"),
    "log1p": (pyasg.log1p, "log1p"), "expm1": (pyasg.expm1, "expm1"),
    "abs": (pyasg.abs, "abs"), "neg": (pyasg.negative, "negative"),
    "erf": (pyasg.erf, None), "sign": (pyasg.sign, "sign"),
}
BINARY = ["add", "subtract", "multiply", "divide", "power", "maximum", "minimum", "mod"]


def _jnp_unary(jax, name: str):  # noqa: ANN001, ANN202
    if name == "erf":
        return jax.scipy.special.erf
    return getattr(jax.numpy, UNARY[name][1])


@settings(deadline=None)
@given(st.sampled_from(sorted(UNARY)), SHAPES, SEEDS)
def test_jvp_of_unary_ops_equals_jax(name: str, shape: tuple, seed: int) -> None:
    jax = _jax()
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.2, 2.0, shape) * rng.choice([-1, 1], shape)
    if name in ("log", "sqrt"):
        x = np.abs(x)
    t = rng.standard_normal(shape)
    y, ty = pyasg.jvp(UNARY[name][0], (x,), (t,))
    wy, wty = jax.jvp(_jnp_unary(jax, name), (x,), (t,))
    np.testing.assert_allclose(y, wy, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ty, wty, rtol=1e-12, atol=1e-14)


@settings(deadline=None)
@given(st.sampled_from(BINARY), BROADCAST_2, SEEDS)
def test_jvp_of_broadcasting_binary_ops_equals_jax(name: str, shapes, seed: int) -> None:
    jax = _jax()
    rng = np.random.default_rng(seed)
    (sa, sb), _ = shapes
    a = rng.uniform(0.5, 2.0, sa)
    b = rng.uniform(0.5, 2.0, sb) * (1 if name in ("power", "mod") else rng.choice([-1, 1], sb))
    ta, tb = rng.standard_normal(sa), rng.standard_normal(sb)
    y, ty = pyasg.jvp(getattr(pyasg, name), (a, b), (ta, tb))
    wy, wty = jax.jvp(getattr(jax.numpy, name), (a, b), (ta, tb))
    np.testing.assert_allclose(y, wy, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ty, wty, rtol=1e-10, atol=1e-12)


def test_jvp_at_ties_of_max_and_maximum_equals_jax() -> None:
    """Ties share the tangent evenly (the mean), as JAX's rules do."""
    jax = _jax()
    x = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    t = np.array([[1.0, 2.0, 4.0], [1.0, 5.0, 9.0]])
    cases = [(lambda a: pyasg.max(a, axis=1), lambda a: jax.numpy.max(a, axis=1)),
             (lambda a: pyasg.maximum(a, a[:, :1]), lambda a: jax.numpy.maximum(a, a[:, :1])),
             (lambda a: pyasg.minimum(a, 2.0), lambda a: jax.numpy.minimum(a, 2.0))]
    for f, fj in cases:
        np.testing.assert_allclose(pyasg.jvp(f, (x,), (t,))[1], jax.jvp(fj, (x,), (t,))[1])


@settings(deadline=None)
@given(SHAPES, SEEDS, st.booleans())
def test_jvp_of_reductions_equals_jax(shape: tuple, seed: int, keepdims: bool) -> None:
    jax = _jax()
    jnp = jax.numpy
    rng = np.random.default_rng(seed)
    x, t = rng.standard_normal(shape), rng.standard_normal(shape)
    axis = tuple(range(0, len(shape), 2)) or None

    def f(x, np_):  # noqa: ANN001, ANN202
        return (np_.sum(x * x, axis=axis, keepdims=keepdims)
                + np_.max(x, axis=axis, keepdims=keepdims) * np_.mean(x))

    got = pyasg.jvp(lambda x: f(x, pyasg), (x,), (t,))
    want = jax.jvp(lambda x: f(x, jnp), (x,), (t,))
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-11, atol=1e-12)


@settings(deadline=None)
@given(hnp.array_shapes(min_dims=2, max_dims=3, min_side=2, max_side=5), SEEDS)
def test_jvp_of_shape_and_indexing_ops_equals_jax(shape: tuple, seed: int) -> None:
    jax = _jax()
    jnp = jax.numpy
    rng = np.random.default_rng(seed)
    x, t = rng.standard_normal(shape), rng.standard_normal(shape)
    idx = rng.integers(0, shape[0], 5)

    def f(x, np_):  # noqa: ANN001, ANN202
        y = np_.transpose(x)[::-1, ..., 1:]
        z = np_.concatenate([np_.reshape(x, (-1,)), np_.reshape(y, (-1,))])
        w = np_.take(x, idx, axis=0) * 2.0
        p = np_.pad(x, [(1, 2)] + [(0, 0)] * (x.ndim - 1))
        return (np_.sum(z * z) + np_.sum(np_.tanh(w)) + np_.sum(p * p[::-1])
                + np_.sum(np_.broadcast_to(x[:1], x.shape) * x))

    got = pyasg.jvp(lambda x: f(x, pyasg), (x,), (t,))
    want = jax.jvp(lambda x: f(x, jnp), (x,), (t,))
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-11, atol=1e-11)


@settings(deadline=None)
@given(st.sampled_from([((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 4)), ((2, 3), (3, 4)),
                        ((5, 2, 3), (3, 4)), ((5, 2, 3), (5, 3, 1))]), SEEDS)
def test_jvp_of_matmul_and_where_equals_jax(shapes, seed: int) -> None:
    jax = _jax()
    jnp = jax.numpy
    rng = np.random.default_rng(seed)
    (sa, sb) = shapes
    a, b = rng.standard_normal(sa), rng.standard_normal(sb)
    ta, tb = rng.standard_normal(sa), rng.standard_normal(sb)

    def f(a, b, np_):  # noqa: ANN001, ANN202
        m = a @ b
        return np_.where(m > 0, m * m, np_.sin(m))

    got = pyasg.jvp(lambda a, b: f(a, b, pyasg), (a, b), (ta, tb))
    want = jax.jvp(lambda a, b: f(a, b, jnp), (a, b), (ta, tb))
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-11, atol=1e-12)


@settings(deadline=None, max_examples=10)
@given(st.sampled_from([(1, 1, 0), (2, 1, 1), (1, 2, 1)]), SEEDS)
def test_jvp_of_conv2d_equals_jax(params, seed: int) -> None:
    jax = _jax()
    stride, dilation, padding = params
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal((2, 3, 7, 6)), rng.standard_normal((4, 3, 3, 2))
    tx, tw = rng.standard_normal(x.shape), rng.standard_normal(w.shape)

    def ours(x, w):  # noqa: ANN001, ANN202
        return pyasg.conv2d(x, w, stride=stride, padding=padding, dilation=dilation)

    def theirs(x, w):  # noqa: ANN001, ANN202
        return jax.lax.conv_general_dilated(x, w, (stride, stride), [(padding, padding)] * 2,
                                            rhs_dilation=(dilation, dilation))

    for g, want in zip(pyasg.jvp(ours, (x, w), (tx, tw)), jax.jvp(theirs, (x, w), (tx, tw))):
        np.testing.assert_allclose(g, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("layout", ["bhtd", "bthd"])
@pytest.mark.parametrize("causal", [False, True])
def test_jvp_of_attention_equals_jax(layout: str, causal: bool) -> None:
    jax = _jax()
    jnp = jax.numpy
    rng = np.random.default_rng(3)
    q, k, v = (rng.standard_normal((2, 3, 4, 5)) for _ in range(3))
    h, t = (3, 4) if layout == "bhtd" else (4, 3)  # the bias is [B, H, T, S] in both
    bias = rng.standard_normal((2, h, t, t))
    ts = [rng.standard_normal(a.shape) for a in (q, k, v, bias)]

    def to_bhtd(a, np_):  # noqa: ANN001, ANN202
        return a if layout == "bhtd" else np_.transpose(a, (0, 2, 1, 3))

    def theirs(q, k, v, bias):  # noqa: ANN001, ANN202
        q, k, v = (to_bhtd(a, jnp) for a in (q, k, v))
        s = q @ jnp.swapaxes(k, -1, -2) * 0.5 + bias
        if causal:
            s = jnp.where(jnp.tril(jnp.ones((t, t), bool)), s, -jnp.inf)
        return to_bhtd(jax.nn.softmax(s, axis=-1) @ v, jnp)

    def ours(q, k, v, bias):  # noqa: ANN001, ANN202
        return pyasg.array.primitives.bind(
            pyasg.asg.ops.Attention(0.5, causal, layout), q, k, v, bias)

    got = pyasg.jvp(ours, (q, k, v, bias), tuple(ts))
    want = jax.jvp(theirs, (q, k, v, bias), tuple(ts))
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-11)


# --------------------------------------------------------------------------- jacfwd, hessian


def _mlp(x, np_):  # noqa: ANN001, ANN202
    w = np.linspace(-1.0, 1.0, x.shape[-1] * 3).reshape(x.shape[-1], 3)
    return np_.tanh(x @ w) * np_.exp(-x[..., :1] ** 2)


@settings(deadline=None)
@given(hnp.array_shapes(min_dims=1, max_dims=2, min_side=1, max_side=4), SEEDS)
def test_jacfwd_equals_jax_and_jacrev(shape: tuple, seed: int) -> None:
    jax = _jax()
    x = np.random.default_rng(seed).standard_normal(shape)
    got = pyasg.jacfwd(lambda x: _mlp(x, pyasg))(x)
    want = jax.jacfwd(lambda x: _mlp(x, jax.numpy))(x)
    np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(got, pyasg.jacrev(lambda x: _mlp(x, pyasg))(x), rtol=1e-11,
                               atol=1e-12)
    assert pyasg.jacobian is pyasg.jacrev


@settings(deadline=None)
@given(hnp.array_shapes(min_dims=1, max_dims=2, min_side=1, max_side=3), SEEDS)
def test_hessian_is_forward_over_reverse_and_equals_jax(shape: tuple, seed: int) -> None:
    jax = _jax()
    x = np.random.default_rng(seed).standard_normal(shape)

    def f(x, np_):  # noqa: ANN001, ANN202
        return np_.sum(_mlp(x, np_) ** 2) + np_.sum(np_.sin(x) * x[..., ::-1])

    got = pyasg.hessian(lambda x: f(x, pyasg))(x)
    assert got.shape == shape + shape
    np.testing.assert_allclose(got, jax.hessian(lambda x: f(x, jax.numpy))(x),
                               rtol=1e-10, atol=1e-11)
    # the former definition, reverse over reverse, agrees
    old = pyasg.jacrev(pyasg.grad(lambda x: f(x, pyasg)))(x)
    np.testing.assert_allclose(got, old, rtol=1e-10, atol=1e-12)


# --------------------------------------------------------------------------- compositions


def _loss(x, np_):  # noqa: ANN001, ANN202
    return np_.sum(np_.tanh(x) ** 3 * np_.cos(x[::-1]))


@settings(deadline=None, max_examples=10)
@given(hnp.array_shapes(min_dims=1, max_dims=1, min_side=1, max_side=5), SEEDS)
def test_grad_of_jvp_and_jvp_of_grad_equal_jax(shape: tuple, seed: int) -> None:
    jax = _jax()
    jnp = jax.numpy
    rng = np.random.default_rng(seed)
    x, t = rng.standard_normal(shape), rng.standard_normal(shape)
    got = pyasg.grad(lambda x: pyasg.jvp(lambda y: _loss(y, pyasg), (x,), (t,))[1])(x)
    want = jax.grad(lambda x: jax.jvp(lambda y: _loss(y, jnp), (x,), (t,))[1])(x)
    np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-12)
    got = pyasg.jvp(pyasg.grad(lambda x: _loss(x, pyasg)), (x,), (t,))
    want = jax.jvp(jax.grad(lambda x: _loss(x, jnp)), (x,), (t,))
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-11, atol=1e-12)
    # jvp of jvp: a second directional derivative
    got = pyasg.jvp(lambda x: pyasg.jvp(lambda y: _loss(y, pyasg), (x,), (t,))[1], (x,), (t,))
    want = jax.jvp(lambda x: jax.jvp(lambda y: _loss(y, jnp), (x,), (t,))[1], (x,), (t,))
    np.testing.assert_allclose(got[1], want[1], rtol=1e-10, atol=1e-12)


def test_jvp_takes_pytrees_and_closes_over_outer_values_as_constants() -> None:
    jax = _jax()
    rng = np.random.default_rng(0)
    params = {"w": rng.standard_normal((3, 2)), "b": [rng.standard_normal(2)]}
    tangent = {"w": rng.standard_normal((3, 2)), "b": [rng.standard_normal(2)]}
    x = rng.standard_normal((4, 3))

    def f(p, np_):  # noqa: ANN001, ANN202
        h = np_.tanh(x @ p["w"] + p["b"][0])
        return {"out": h, "sum": (np_.sum(h), np_.mean(h * h))}

    got = pyasg.jvp(lambda p: f(p, pyasg), (params,), (tangent,))
    want = jax.jvp(lambda p: f(p, jax.numpy), (params,), (tangent,))
    for g, w in zip(pyasg.tree_leaves(got), jax.tree_util.tree_leaves(want)):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-13)
    # inside a traced function, an outer traced value closed over has a zero tangent
    outer = pyasg.grad(lambda s: pyasg.jvp(lambda y: s * y * y, (2.0,), (1.0,))[1])
    assert float(outer(np.float64(3.0))) == pytest.approx(4.0)  # d/ds (s · 2·y·t) = 4


@pytest.mark.parametrize("backend", ["numpy", pytest.param("wgpu", marks=WGPU)])
def test_jvp_and_jacfwd_under_jit_match_the_reference(backend: str) -> None:
    if backend == "wgpu":
        require_wgpu()
    rng = np.random.default_rng(1)
    x, t = rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal((3, 4)).astype(
        np.float32)

    def step(x, t):  # noqa: ANN001, ANN202
        y, ty = pyasg.jvp(lambda a: pyasg.tanh(a @ a.T) * pyasg.exp(-a[:, :3]), (x,), (t,))
        h = pyasg.hessian(lambda a: pyasg.sum(pyasg.sin(a) * a))(x[0])
        return y, ty, h

    want = pyasg.jit(step, backend="reference")(x, t)
    got = pyasg.jit(step, backend=backend)(x, t)
    for g, w in zip(got, want):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-4, atol=1e-5)


def test_jvp_graph_output_can_be_differentiated_and_fused_graphs_push_tangents() -> None:
    x = np.linspace(-1.0, 1.0, 6)
    graph = pyasg.make_graph(lambda x: pyasg.sum(pyasg.exp(pyasg.tanh(x) * 2.0) * x))(x)
    forward = jvp_graph(graph)
    fused_forward = jvp_graph(fuse(graph))
    assert any(fuse(graph)[i].op.name == "fused" for i in fuse(graph).live_ids)
    t = np.cos(x)
    a = pyasg.jit_to_backend(forward, "numpy")(x, t)
    b = pyasg.jit_to_backend(fused_forward, "numpy")(x, t)
    for u, v in zip(a, b):
        np.testing.assert_allclose(u, v, rtol=1e-12)
    # reverse over the forward graph: d/dx of the directional derivative, by vjp_graph
    back = vjp_graph(forward, [0], of=1)
    assert back.output_types[-1] == TensorType((6,), "float64")


def test_linearize_equals_jvp_and_its_output_is_the_primal() -> None:
    x = np.array([0.5, -1.0, 2.0])
    f = lambda x: pyasg.sin(x) * x  # noqa: E731
    y, f_jvp = pyasg.linearize(f, x)
    np.testing.assert_allclose(y, np.sin(x) * x, rtol=1e-15)
    for t in (np.ones(3), np.array([0.0, 2.0, -1.0])):
        np.testing.assert_allclose(f_jvp(t), (np.cos(x) * x + np.sin(x)) * t, rtol=1e-14)


# ------------------------------------------------------------------- integer primals, errors


def test_integer_primals_take_their_own_dtype_as_tangent_and_integer_outputs_get_zeros() -> None:
    x = np.array([1.0, 2.0])
    n = np.array([3, 4], np.int32)
    f = lambda x, n: (x * n, n * 2)  # noqa: E731
    (y, m), (ty, tm) = pyasg.jvp(f, (x, n), (np.ones(2), np.full(2, 7, np.int32)))
    np.testing.assert_allclose(ty, [3.0, 4.0])  # the integer tangent's values are ignored
    assert tm.dtype == np.int32 and not tm.any()
    with pytest.raises(IntegerTangentError, match=r"'n'.*i32\[2\].*float0"):
        pyasg.jvp(f, (x, n), (np.ones(2), np.ones(2)))


@pytest.mark.parametrize("tangents, match", [
    (({"a": np.ones(2)},), r"'p.b'"),                     # a missing key
    (({"a": np.ones(2), "b": [np.ones(3)]},), r"p\.b"),   # a list where a leaf is
    (({"a": np.ones(3), "b": np.ones(3)},), r"'p.a'.*f64\[3\].*f64\[2\]"),  # a shape
    (({"a": np.ones(2, np.float32), "b": np.ones(3)},), r"'p.a'.*f32\[2\]"),  # a dtype
    (({"a": "one", "b": np.ones(3)},), r"'p.a'.*not an array"),
])
def test_tangents_not_matching_primals_raise_naming_the_path(tangents, match) -> None:
    primals = ({"a": np.ones(2), "b": np.ones(3)},)

    def f(p):  # noqa: ANN001, ANN202
        return p["a"].sum() + p["b"].sum()

    with pytest.raises(TangentError, match=match):
        pyasg.jvp(f, primals, tangents)
    with pytest.raises(TangentError, match="tuple or list"):
        pyasg.jvp(f, primals[0], tangents)


def test_a_python_number_may_be_a_float_scalars_tangent() -> None:
    y, t = pyasg.jvp(lambda x: x * x, (np.float64(3.0),), (1.0,))
    assert float(t) == 6.0 and np.asarray(t).dtype == np.float64
    y, t = pyasg.jvp(lambda x: x * x, (3.0,), (1.0,))
    assert float(t) == 6.0
    y, t = pyasg.jvp(lambda x: x * x, (3.0,), (np.float64(1.0),))
    assert float(t) == 6.0
    with pytest.raises(TangentError, match=r"f64\[2\]"):
        pyasg.jvp(lambda x: x * x, (3.0,), (np.ones(2),))


def test_jacfwd_refuses_integer_outputs_and_several_arguments() -> None:
    with pytest.raises(GradError, match="float output"):
        pyasg.jacfwd(lambda x: pyasg.argmax(x))(np.ones(3))
    with pytest.raises(GradError, match="float"):
        pyasg.jacfwd(lambda n: n * 2)(np.ones(3, np.int32))


def test_top_level_jvp_and_linearize_compile_once_per_function_and_signature() -> None:
    """What the README's "when does pyasg retrace" says about forward mode."""
    def f(x):  # noqa: ANN001, ANN202
        return pyasg.sin(x) * x

    for k in range(3):
        pyasg.jvp(f, (np.full(2, float(k)),), (np.ones(2),))
    assert api._JVP_CACHE[f][False].cache_size == 1
    _, f_jvp = pyasg.linearize(f, np.ones(2))
    f_jvp(np.ones(2))
    f_jvp(np.zeros(2))
    assert api._JVP_CACHE[f][False].cache_size == 1  # the same signature: nothing new
    pyasg.jvp(f, (np.ones(3),), (np.ones(3),))
    assert api._JVP_CACHE[f][False].cache_size == 2  # a new shape retraces


def test_jvp_with_aux_equals_jax_and_checks_the_arity() -> None:
    jax = _jax()
    x, t = np.array([0.5, 1.5]), np.array([1.0, -1.0])

    def f(x, np_):  # noqa: ANN001, ANN202
        y = np_.sin(x) * x
        return y, {"norm": np_.sum(y * y), "n": 3}

    got = pyasg.jvp(lambda x: f(x, pyasg), (x,), (t,), has_aux=True)
    want = jax.jvp(lambda x: f(x, jax.numpy), (x,), (t,), has_aux=True)
    for g, w in zip(got[:2], want[:2]):
        np.testing.assert_allclose(g, w, rtol=1e-14)
    np.testing.assert_allclose(got[2]["norm"], want[2]["norm"], rtol=1e-14)
    with pytest.raises(GradError, match=r"has_aux=True needs fn to return \(output, aux\)"):
        pyasg.jvp(lambda x: x, (x,), (t,), has_aux=True)
    with pytest.raises(pyasg.PyasgError, match="argument"):
        pyasg.jvp(lambda x, y: x * y, (x,), (t,))


def test_jvp_of_identities_constants_and_empty_arrays() -> None:
    y, t = pyasg.jvp(lambda x: x, (np.ones(2),), (np.full(2, 3.0),))
    np.testing.assert_array_equal(t, [3.0, 3.0])
    (a, b), (ta, tb) = pyasg.jvp(lambda x, y: (y, 2.0), (np.ones(2), np.ones(3)),
                                 (np.ones(2), np.full(3, 5.0)))
    np.testing.assert_array_equal(ta, [5.0, 5.0, 5.0])
    assert float(tb) == 0.0
    assert pyasg.jacfwd(lambda x: x * 2.0)(np.ones((0,))).shape == (0, 0)
    assert pyasg.jvp(lambda x: pyasg.sum(x), (np.ones((2, 0)),), (np.ones((2, 0)),))[1] == 0.0


@pytest.mark.parametrize("fn", [3, "f", [len]])
def test_forward_transforms_of_something_not_callable_raise(fn) -> None:
    with pytest.raises(pyasg.TraceError, match="needs a function to trace"):
        pyasg.jvp(fn, (1.0,), (1.0,))
    with pytest.raises(pyasg.TraceError, match="needs a function to trace"):
        pyasg.linearize(fn, 1.0)
    with pytest.raises(pyasg.CustomDerivativeError, match="decorates a function"):
        pyasg.custom_vjp(fn)
    with pytest.raises(GradError, match="has_aux must be True or False"):
        pyasg.jvp(lambda x: x, (1.0,), (1.0,), has_aux="yes")
