"""`pyasg.custom_vjp` and `pyasg.custom_jvp`: JAX's protocols, checked against JAX, under
`jit` on numpy and wgpu, through saving, and for every misuse a clear error.

The two examples are JAX's own: a gradient-clipping identity (custom_vjp: the values
pass, the cotangent is clipped) and the numerically stable log1pexp (custom_jvp: the
automatic derivative of log(1 + eˣ) is nan for large x, the custom one is σ(x)).
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from gradcheck import check_grad
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from wgpu_util import WGPU, require_wgpu

import pyasg
from pyasg.asg import ops
from pyasg.asg.ops import OPS, Op
from pyasg.asg.serialize import graph_from_json
from pyasg.asg.types import TensorType
from pyasg.errors import CustomDerivativeError, GradError, GraphFormatError, UnsavableGraphError
from pyasg.kernels.reference import KERNELS
from pyasg.transforms.vjp import VJP_RULES, vjp_rule

SEEDS = st.integers(0, 2**32 - 1)
SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)


def _jax():  # noqa: ANN202
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    return jax


# --------------------------------------------------------------------------- the examples


@pyasg.custom_vjp
def clip_gradient(lo, hi, x):
    return x  # the identity; its cotangent is clipped to [lo, hi]


def _clip_fwd(lo, hi, x):
    return x, (lo, hi)


def _clip_bwd(res, g):
    lo, hi = res
    return (None, None, pyasg.clip(g, lo, hi))


clip_gradient.defvjp(_clip_fwd, _clip_bwd)


@pyasg.custom_jvp
def log1pexp(x):
    return pyasg.log(1.0 + pyasg.exp(x))


@log1pexp.defjvp
def _log1pexp_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return log1pexp(x), t * (1.0 - 1.0 / (1.0 + pyasg.exp(x)))


def _jax_examples(jax):  # noqa: ANN001, ANN202
    jnp = jax.numpy

    @jax.custom_vjp
    def clip(lo, hi, x):
        return x

    clip.defvjp(lambda lo, hi, x: (x, (lo, hi)),
                lambda res, g: (None, None, jnp.clip(g, res[0], res[1])))

    @jax.custom_jvp
    def l1pe(x):
        return jnp.log(1.0 + jnp.exp(x))

    @l1pe.defjvp
    def _(primals, tangents):
        (x,), (t,) = primals, tangents
        return l1pe(x), t * (1.0 - 1.0 / (1.0 + jnp.exp(x)))

    return clip, l1pe


# --------------------------------------------------------------------------- against JAX


@settings(deadline=None)
@given(SHAPES, SEEDS)
def test_clip_gradient_values_and_gradients_equal_jax(shape: tuple, seed: int) -> None:
    jax = _jax()
    clip, _ = _jax_examples(jax)
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal(shape) * 3, rng.standard_normal(shape) * 4

    def loss(x, np_, c):  # noqa: ANN001, ANN202
        return np_.sum(np_.sin(c(-0.5, 0.5, x * 2.0)) * w)

    np.testing.assert_allclose(pyasg.jit(lambda x: clip_gradient(-0.5, 0.5, x))(x), x)
    got = pyasg.grad(lambda x: loss(x, pyasg, clip_gradient))(x)
    want = jax.grad(lambda x: loss(x, jax.numpy, clip))(x)
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-14)
    assert np.all(np.abs(got) <= 1.0 + 1e-12)  # 2 · clip(...) : |g| <= 2 · 0.5


@settings(deadline=None, max_examples=10)
@given(SHAPES, SEEDS)
def test_log1pexp_values_jvp_gradients_and_hessian_equal_jax(shape: tuple, seed: int) -> None:
    jax = _jax()
    _, l1pe = _jax_examples(jax)
    rng = np.random.default_rng(seed)
    x, t = rng.standard_normal(shape) * 5, rng.standard_normal(shape)
    np.testing.assert_allclose(pyasg.jit(log1pexp)(x), l1pe(x), rtol=1e-13)
    for g, w in zip(pyasg.jvp(log1pexp, (x,), (t,)), jax.jvp(l1pe, (x,), (t,))):
        np.testing.assert_allclose(g, w, rtol=1e-13, atol=1e-15)
    f = lambda x: pyasg.sum(log1pexp(x) * x)  # noqa: E731
    fj = lambda x: jax.numpy.sum(l1pe(x) * x)  # noqa: E731
    np.testing.assert_allclose(pyasg.grad(f)(x), jax.grad(fj)(x), rtol=1e-12, atol=1e-14)
    flat = x.reshape(-1)
    np.testing.assert_allclose(pyasg.hessian(lambda v: f(v))(flat),
                               jax.hessian(lambda v: fj(v))(flat), rtol=1e-11, atol=1e-13)


def test_log1pexp_gradient_is_finite_where_autodiff_gives_nan() -> None:
    x = np.array([-1000.0, -5.0, 0.0, 5.0, 1000.0])
    with np.errstate(over="ignore", invalid="ignore"):
        plain = pyasg.grad(lambda x: pyasg.sum(pyasg.log(1.0 + pyasg.exp(x))))(x)
        custom = pyasg.grad(lambda x: pyasg.sum(log1pexp(x)))(x)
    assert np.isnan(plain[-1])  # exp(1000) / (1 + exp(1000)) = inf / inf
    with np.errstate(over="ignore"):
        want = 1.0 / (1.0 + np.exp(-x))
    np.testing.assert_allclose(custom, want, rtol=1e-13)


@settings(deadline=None, max_examples=10)
@given(hnp.array_shapes(min_dims=1, max_dims=2, min_side=1, max_side=4), SEEDS)
def test_custom_vjp_with_pytree_arguments_and_residuals_equals_jax(shape, seed) -> None:
    """fwd keeps a pytree of residuals; bwd returns cotangents for a dict argument and
    for a broadcast bias; JAX's custom_vjp on the same definition is the oracle."""
    jax = _jax()
    jnp = jax.numpy

    def make(np_, custom):  # noqa: ANN001, ANN202
        @custom
        def affine_tanh(p, x):
            return np_.tanh(x * p["w"] + p["b"])

        def fwd(p, x):
            y = np_.tanh(x * p["w"] + p["b"])
            return y, {"y": y, "x": x, "w": p["w"]}

        def bwd(res, g):
            dz = g * (1.0 - res["y"] * res["y"])
            return ({"w": dz * res["x"], "b": np_.sum(dz, axis=0)}, dz * res["w"])

        affine_tanh.defvjp(fwd, bwd)
        return affine_tanh

    ours, theirs = make(pyasg, pyasg.custom_vjp), make(jnp, jax.custom_vjp)
    rng = np.random.default_rng(seed)
    p = {"w": rng.standard_normal(shape), "b": rng.standard_normal(shape[1:])}
    x = rng.standard_normal(shape)
    got = pyasg.grad(lambda p, x: pyasg.sum(ours(p, x) ** 2), argnums=(0, 1))(p, x)
    want = jax.grad(lambda p, x: jnp.sum(theirs(p, x) ** 2), argnums=(0, 1))(p, x)
    pairs = [(got[0]["w"], want[0]["w"]), (got[0]["b"], want[0]["b"]), (got[1], want[1])]
    for g, w in pairs:  # by key: JAX's leaves of a dict are in sorted key order
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-14)
    check_grad(lambda x: ours(p, x), x)  # and the rule is the true derivative


def test_custom_jvp_under_jacfwd_jacrev_and_second_order_grad_equal_jax() -> None:
    jax = _jax()
    _, l1pe = _jax_examples(jax)
    x = np.linspace(-3.0, 3.0, 5)
    np.testing.assert_allclose(pyasg.jacfwd(log1pexp)(x), jax.jacfwd(l1pe)(x), rtol=1e-13)
    np.testing.assert_allclose(pyasg.jacrev(log1pexp)(x), jax.jacrev(l1pe)(x), rtol=1e-13)
    g2 = pyasg.grad(pyasg.grad(lambda v: log1pexp(v)))(np.float64(0.7))
    np.testing.assert_allclose(g2, jax.grad(jax.grad(l1pe))(0.7), rtol=1e-13)


# --------------------------------------------------------------------------- under jit


def _train_step(x, w):  # noqa: ANN001, ANN202
    def loss(w):  # noqa: ANN001, ANN202
        h = clip_gradient(-0.1, 0.1, x @ w)
        return pyasg.mean(log1pexp(h) - h * 0.5)
    return pyasg.value_and_grad(loss)(w)


@pytest.mark.parametrize("backend", ["numpy", pytest.param("wgpu", marks=WGPU)])
def test_custom_derivatives_under_jit_match_the_reference_backend(backend: str) -> None:
    if backend == "wgpu":
        require_wgpu()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 5)).astype(np.float32)
    w = rng.standard_normal((5, 3)).astype(np.float32)
    want = pyasg.jit(_train_step, backend="reference")(x, w)
    got = pyasg.jit(_train_step, backend=backend)(x, w)
    for g, v in zip(got, want):
        np.testing.assert_allclose(np.asarray(g), np.asarray(v), rtol=1e-5, atol=1e-6)
    # the clipped cotangent: d/dh mean(...) is bounded, so |dw| <= 0.1 · sum|x| / rows
    bound = 0.1 * np.abs(x).sum(axis=0)[:, None] / 8 * 3
    assert np.all(np.abs(np.asarray(got[1])) <= bound + 1e-6)
    # and the lowered graph holds no custom call: every backend runs plain primitives
    graph = pyasg.make_graph(_train_step)(x, w)
    assert any(graph[i].op.name == "custom_call" for i in graph.live_ids)
    lowered = pyasg.inline_custom_calls(graph)
    assert not any(lowered[i].op.name == "custom_call" for i in lowered.live_ids)


@pytest.mark.parametrize("backend", ["numpy", pytest.param("wgpu", marks=WGPU)])
def test_jvp_through_a_custom_jvp_under_jit(backend: str) -> None:
    if backend == "wgpu":
        require_wgpu()
    x = np.linspace(-4.0, 4.0, 9).astype(np.float32)
    step = pyasg.jit(lambda x, t: pyasg.jvp(log1pexp, (x,), (t,)), backend=backend)
    y, ty = step(x, np.ones_like(x))
    np.testing.assert_allclose(np.asarray(y), np.log1p(np.exp(x)), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(ty), 1.0 / (1.0 + np.exp(-x)), rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- saving


def test_saving_a_graph_with_a_custom_call_raises_naming_the_function(tmp_path) -> None:
    graph = pyasg.make_graph(lambda x: log1pexp(x) * 2.0)(np.ones(3))
    path = tmp_path / "g.json"
    with pytest.raises(UnsavableGraphError, match="log1pexp.*custom derivative"):
        pyasg.save_graph(path, graph)
    assert not path.exists()  # nothing half-written
    with pytest.raises(UnsavableGraphError, match="log1pexp"):
        pyasg.graph_to_json(pyasg.vjp_graph(graph, [0], seed=True))
    # inlined on purpose: saved, loaded, the same values (the custom rule is gone)
    pyasg.save_graph(path, pyasg.inline_custom_calls(graph))
    loaded = pyasg.load_graph(path)
    x = np.array([0.5, -2.0, 30.0])
    np.testing.assert_allclose(pyasg.jit_to_backend(loaded, "numpy")(x)[0],
                               2 * np.log1p(np.exp(x)), rtol=1e-14)


def test_a_file_naming_a_custom_call_is_refused() -> None:
    graph = pyasg.make_graph(lambda x: log1pexp(x))(np.ones(3))
    text = pyasg.graph_to_json(pyasg.inline_custom_calls(graph))
    data = json.loads(text)
    data["nodes"][-1]["op"] = "CustomCall"
    with pytest.raises(GraphFormatError, match="CustomCall.*cannot be loaded"):
        graph_from_json(json.dumps(data))


# --------------------------------------------------------------------------- misuse


def test_forward_mode_through_a_custom_vjp_raises_naming_it() -> None:
    with pytest.raises(GradError, match="clip_gradient.*forward mode|forward mode.*clip_gradient"):
        pyasg.jvp(lambda x: clip_gradient(-1.0, 1.0, x), (np.ones(2),), (np.ones(2),))


def test_calling_before_the_rules_are_defined_raises() -> None:
    @pyasg.custom_vjp
    def f(x):
        return x

    with pytest.raises(CustomDerivativeError, match=r"f\.defvjp\(fwd, bwd\)"):
        f(np.ones(2))
    g = pyasg.custom_jvp(lambda x: x)
    with pytest.raises(CustomDerivativeError, match="defjvp"):
        pyasg.jit(g)(np.ones(2))
    with pytest.raises(CustomDerivativeError, match="needs two functions"):
        f.defvjp(lambda x: x, 3)


def _with_rules(fwd, bwd):  # noqa: ANN001, ANN202
    @pyasg.custom_vjp
    def f(x, n):
        return x * 2.0

    f.defvjp(fwd, bwd)
    return f


@pytest.mark.parametrize("fwd, bwd, match", [
    (lambda x, n: x * 2.0, lambda r, g: (g, None), r"fwd must return \(output, residuals\)"),
    (lambda x, n: (x * 2.0, None), lambda r, g: g, r"tuple of 2 cotangent\(s\).*\(x, n\)"),
    (lambda x, n: (x * 2.0, None), lambda r, g: (g[:1], None), r"'x'.*f64\[1\].*f64\[3\]"),
    (lambda x, n: (x * 2.0, None), lambda r, g: (g, g), r"'n', an integer argument"),
    (lambda x, n: (x[:2], None), lambda r, g: (g, None), "the output fwd returned"),
    (lambda x, n: (x, None), lambda r, g: ("zero", None), "not an array"),
])
def test_a_bad_rule_raises_naming_the_function_and_argument(fwd, bwd, match) -> None:
    f = _with_rules(fwd, bwd)
    with pytest.raises(CustomDerivativeError, match=match):
        pyasg.grad(lambda x: pyasg.sum(f(x, np.int32(3))))(np.ones(3))


def test_closing_over_a_traced_value_or_returning_unfit_outputs_raises() -> None:
    def outer(s):  # noqa: ANN001, ANN202
        @pyasg.custom_vjp
        def scaled(x):
            return x * s  # s is the enclosing function's traced argument

        scaled.defvjp(lambda x: (x * s, None), lambda r, g: (g * s,))
        return pyasg.sum(scaled(np.ones(2)))

    with pytest.raises(CustomDerivativeError, match=r"enclosing function.*argument 's'"):
        pyasg.grad(outer)(np.float64(2.0))

    @pyasg.custom_jvp
    def with_count(x):
        return x, pyasg.argmax(x)  # an integer output cannot share the float node

    with_count.defjvp(lambda p, t: (with_count(*p), t))
    with pytest.raises(CustomDerivativeError, match="one array, or a pytree of float arrays"):
        pyasg.jit(with_count)(np.ones(2))

    @pyasg.custom_jvp
    def pair(x):
        return x, x * 2.0

    pair.defjvp(lambda p, t: (pair(*p), (t[0], t[0] * 2.0, t[0])))  # one tangent too many
    with pytest.raises(CustomDerivativeError, match="structure"):
        pyasg.jvp(pair, (np.ones(2),), (np.ones(2),))


def test_a_custom_function_on_concrete_arrays_is_the_function_itself() -> None:
    x = np.array([1.0, -2.0])
    np.testing.assert_allclose(log1pexp(x), np.log1p(np.exp(x)), rtol=1e-15)
    np.testing.assert_array_equal(clip_gradient(-1.0, 1.0, x), x)


# --------------------------------------------------------------------------- the old way


def test_a_custom_gradient_by_subclassing_op_still_works() -> None:
    """Before custom_vjp, a custom gradient was an Op subclass with a VJP_RULES row and
    kernels (docs/ARCHITECTURE.md's recipe). That still works (here on the reference
    backend, which needs only a KERNELS row); custom_vjp needs no kernel at all."""
    before = dict(OPS)
    try:
        @dataclasses.dataclass(frozen=True)
        class HalfGradient(Op):
            """The identity, whose gradient is halved."""

            def infer(self, x: TensorType) -> TensorType:
                return x

        KERNELS[HalfGradient] = lambda op, x: x.copy()
        vjp_rule(HalfGradient)(lambda op, g, out, x: (pyasg.multiply(g, 0.5),))
        f = lambda x: pyasg.sum(pyasg.array.primitives.bind(HalfGradient(), x) * x)  # noqa: E731
        graph = pyasg.vjp_graph(pyasg.make_graph(f)(np.ones(3)), [0])
        value, grad = pyasg.jit_to_backend(graph, "reference")(np.array([1.0, 2.0, 3.0]))
        assert float(value) == 14.0
        np.testing.assert_allclose(grad, [1.5, 3.0, 4.5])  # x/2 + x
        # the same through the new API, with no kernel of its own
        half = pyasg.custom_vjp(lambda x: x)
        half.defvjp(lambda x: (x, None), lambda r, g: (g * 0.5,))
        np.testing.assert_allclose(pyasg.grad(lambda x: pyasg.sum(half(x) * x))(
            np.array([1.0, 2.0, 3.0])), [1.5, 3.0, 4.5])
    finally:
        OPS.clear()
        OPS.update(before)
        for table in (KERNELS, VJP_RULES):
            for cls in [c for c in table if c.__name__ == "HalfGradient"]:
                del table[cls]
    assert ops.CustomCall in VJP_RULES


def test_the_viewer_protocol_carries_a_graph_with_a_custom_call_for_display() -> None:
    """The viewer is sent every traced graph: a custom call must not break it (it is
    shown, never run, there), while a file still refuses it."""
    from pyasg.events import GraphReady
    from pyasg.viewer.protocol import decode, encode

    graph = pyasg.make_graph(lambda x: log1pexp(x) * 2.0)(np.ones(3))
    back = decode(encode(GraphReady("f", graph, "forward")))
    assert back.graph == graph
    assert any(back.graph[i].op.name == "custom_call" for i in back.graph.live_ids)


def test_nested_custom_functions_and_a_fwd_that_calls_the_function_itself() -> None:
    """A custom_vjp whose primal calls a custom_jvp and whose fwd calls itself (JAX's
    usual pattern); a custom_jvp with an integer argument: gradients against central
    differences, values after the compiler's (recursive) inlining."""
    @pyasg.custom_vjp
    def softplus_sq(x):
        return log1pexp(x) ** 2

    def fwd(x):
        return softplus_sq(x), x  # records a custom call inside the gradient's graph

    softplus_sq.defvjp(fwd, lambda x, g: (g * 2.0 * log1pexp(x) * pyasg.sigmoid(x),))

    @pyasg.custom_jvp
    def power(x, n):
        return x ** n

    power.defjvp(lambda p, t: (power(*p), t[0] * pyasg.astype(p[1], p[0].dtype)
                               * p[0] ** (p[1] - 1)))
    x = np.array([-2.0, 0.3, 1.7])
    np.testing.assert_allclose(pyasg.jit(softplus_sq)(x), np.log1p(np.exp(x)) ** 2, rtol=1e-14)
    check_grad(softplus_sq, x)
    check_grad(lambda x: power(x, np.int32(3)), x)
    check_grad(lambda x: power(softplus_sq(x), np.int32(2)), x)
    lowered = pyasg.inline_custom_calls(pyasg.make_graph(pyasg.grad(
        lambda x: pyasg.sum(power(softplus_sq(x), np.int32(2)))))(x))
    assert not any(lowered[i].op.name == "custom_call" for i in lowered.live_ids)


@settings(deadline=None, max_examples=10)
@given(hnp.array_shapes(min_dims=1, max_dims=2, min_side=1, max_side=4), SEEDS)
def test_custom_functions_with_several_outputs_equal_jax(shape, seed) -> None:
    """A custom_vjp returning a pair whose bwd is NOT linear (it clips each output's
    cotangent), and a custom_jvp returning a dict: one node carries every output, so
    bwd sees all the cotangents at once, as JAX's does."""
    jax = _jax()
    jnp = jax.numpy

    def make(np_, custom_vjp, custom_jvp):  # noqa: ANN001, ANN202
        @custom_vjp
        def polar(x, y):
            return np_.sqrt(x * x + y * y), np_.tanh(y * x)

        def fwd(x, y):
            return polar(x, y), (x, y)

        def bwd(res, gs):
            x, y = res
            g_r, g_t = np_.clip(gs[0], -0.3, 0.3), np_.clip(gs[1], -0.3, 0.3)
            r, sech2 = np_.sqrt(x * x + y * y), 1.0 - np_.tanh(x * y) ** 2
            return (g_r * x / r + g_t * sech2 * y, g_r * y / r + g_t * sech2 * x)

        polar.defvjp(fwd, bwd)

        @custom_jvp
        def stats(x):
            return {"sq": x * x, "sin": np_.sin(x)}

        @stats.defjvp
        def _(primals, tangents):
            (x,), (t,) = primals, tangents
            return stats(x), {"sq": 2.0 * x * t, "sin": np_.cos(x) * t}

        def loss(x, y):
            r, th = polar(x, y)
            s = stats(r * th)
            return np_.sum(r * th * 3.0 + s["sq"] - s["sin"] * y)

        return loss, stats

    ours, our_stats = make(pyasg, pyasg.custom_vjp, pyasg.custom_jvp)
    theirs, their_stats = make(jnp, jax.custom_vjp, jax.custom_jvp)
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(0.5, 2.0, shape), rng.uniform(-2.0, 2.0, shape)
    np.testing.assert_allclose(pyasg.jit(ours)(x, y), theirs(x, y), rtol=1e-13)
    got = pyasg.grad(ours, argnums=(0, 1))(x, y)
    want = jax.grad(theirs, argnums=(0, 1))(x, y)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-14)
    t = rng.standard_normal(shape)
    (out, tout), (wout, wtout) = pyasg.jvp(our_stats, (x,), (t,)), jax.jvp(their_stats, (x,), (t,))
    for key in ("sq", "sin"):
        np.testing.assert_allclose(out[key], wout[key], rtol=1e-14)
        np.testing.assert_allclose(tout[key], wtout[key], rtol=1e-13, atol=1e-15)
