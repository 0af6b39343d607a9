"""`pyasg.vmap`: batching per op family against `jax.vmap` (the oracle where installed),
composition with `grad`, `jit` and itself, per-example gradients against the Python loop,
and the errors for axes that do not fit.

Every family draws its batch size, the batch axis of every argument (None too, negative
axes too) and the values with hypothesis; the same function runs under `jax.vmap` with
the same axes in 64-bit mode, and the two must agree.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import random_cases

import pyasg
from pyasg.asg import ops
from pyasg.transforms.batching import BATCH_RULES, batch_graph

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
jnp = jax.numpy
lax = jax.lax


# --------------------------------------------------------------------------- the harness


class Arg:
    """One argument of a case: its shape for one example; floats in [lo, hi), or
    integer indices in [-n, n) with `index=n`."""

    def __init__(self, *shape: int, lo: float = -2.0, hi: float = 2.0, index: int = 0) -> None:
        self.shape, self.lo, self.hi, self.index = shape, lo, hi, index

    def draw(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        if self.index:
            return rng.integers(-self.index, self.index, shape).astype(np.int32)
        return rng.uniform(self.lo, self.hi, shape)


def _erf(m):  # noqa: ANN001, ANN202
    return pyasg.erf if m is pyasg else jax.scipy.special.erf


def _logsumexp(m):  # noqa: ANN001, ANN202
    return pyasg.logsumexp if m is pyasg else jax.scipy.special.logsumexp


def _softmax(m):  # noqa: ANN001, ANN202
    return pyasg.softmax if m is pyasg else jax.nn.softmax


#: family -> [(name, per-example args, f(m, *args) with m = pyasg or jax.numpy)]
FAMILIES: dict[str, list[tuple[str, list[Arg], object]]] = {
    "unary": [
        ("exp", [Arg(3, 2)], lambda m, x: m.exp(x)),
        ("tanh", [Arg(4)], lambda m, x: m.tanh(x)),
        ("sin_cos", [Arg(2, 3)], lambda m, x: m.sin(x) * m.cos(x)),
        ("log_sqrt", [Arg(3, lo=0.5)], lambda m, x: m.log(x) + m.sqrt(x)),
        ("log1p_expm1", [Arg(2, 2, lo=0.0)], lambda m, x: m.log1p(x) - m.expm1(x)),
        ("abs_sign_neg", [Arg(5)], lambda m, x: m.abs(x) * m.sign(x) - (-x)),
        ("erf", [Arg(3)], lambda m, x: _erf(m)(x)),
        ("scalar", [Arg()], lambda m, x: m.exp(x) * 2.0),
        ("stop_gradient", [Arg(3)],
         lambda m, x: (pyasg if m is pyasg else jax.lax).stop_gradient(x) * x),
    ],
    "binary": [
        ("add_mul", [Arg(3, 1, 4), Arg(4)], lambda m, x, y: x * y + (x - y)),
        ("div", [Arg(2, 3), Arg(2, 3, lo=0.5)], lambda m, x, y: x / y),
        ("max_min", [Arg(3, 1), Arg(1, 2)], lambda m, x, y: m.maximum(x, y) - m.minimum(x, y)),
        ("pow", [Arg(3, lo=0.5), Arg(3)], lambda m, x, y: x ** y),
        ("floordiv_mod", [Arg(4), Arg(lo=0.5)], lambda m, x, y: m.floor_divide(x, y) + x % y),
        ("scalar_vector", [Arg(), Arg(2, 3)], lambda m, x, y: x * y),
        ("where", [Arg(2, 3), Arg(3)], lambda m, x, y: m.where(x > y, x, y * 2.0)),
        ("compare", [Arg(2, 3), Arg(3)],
         lambda m, x, y: (x >= y).astype("float64") + (x != y).astype("float64")
         - (x <= y).astype("float64")),
    ],
    "reduction": [
        ("sum_axis", [Arg(3, 4)], lambda m, x: m.sum(x, axis=1)),
        ("sum_all", [Arg(2, 3)], lambda m, x: m.sum(x)),
        ("sum_keepdims", [Arg(2, 3, 2)], lambda m, x: m.sum(x, axis=(0, 2), keepdims=True)),
        ("max", [Arg(3, 4)], lambda m, x: m.max(x, axis=0)),
        ("argmax", [Arg(3, 4)], lambda m, x: m.argmax(x, axis=1)),
        ("argmax_keepdims", [Arg(3, 4)], lambda m, x: m.argmax(x, axis=0, keepdims=True)),
        ("mean_var", [Arg(4, 3)], lambda m, x: m.mean(x, axis=0) + m.var(x, axis=1).sum()),
        ("logsumexp", [Arg(3, 4)], lambda m, x: _logsumexp(m)(x, axis=-1)),
        ("softmax", [Arg(2, 5)], lambda m, x: _softmax(m)(x, axis=-1)),
    ],
    "shape": [
        ("reshape", [Arg(3, 4)], lambda m, x: m.reshape(x, (2, 6))),
        ("ravel", [Arg(2, 3)], lambda m, x: m.reshape(x, (-1,))),
        ("transpose", [Arg(2, 3, 4)], lambda m, x: m.transpose(x, (2, 0, 1))),
        ("broadcast_to", [Arg(3, 1)], lambda m, x: m.broadcast_to(x, (2, 3, 4))),
        ("swapaxes", [Arg(2, 3)], lambda m, x: m.swapaxes(x, 0, 1) * 1.0),
        ("slice", [Arg(4, 5)], lambda m, x: x[1:, ::-2]),
        ("basic_index", [Arg(3, 4)], lambda m, x: x[::-1, 0] + x[1, None, 2]),
        ("concatenate", [Arg(2, 3), Arg(2, 1)], lambda m, x, y: m.concatenate([x, y], axis=1)),
        ("stack", [Arg(3), Arg(3)], lambda m, x, y: m.stack([x, y, x], axis=1)),
        ("pad", [Arg(2, 3)], lambda m, x: m.pad(x, ((1, 0), (0, 2)))),
        ("expand_squeeze", [Arg(3, 1)], lambda m, x: m.expand_dims(m.squeeze(x, 1), 0)),
        ("astype_int", [Arg(3, 2, lo=-5, hi=5)], lambda m, x: x.astype("int32")),
        ("astype_float32", [Arg(3)], lambda m, x: x.astype("float32")),
    ],
    "matmul": [
        ("vec_mat", [Arg(3), Arg(3, 2)], lambda m, a, b: a @ b),
        ("mat_vec", [Arg(2, 3), Arg(3)], lambda m, a, b: a @ b),
        ("vec_vec", [Arg(3), Arg(3)], lambda m, a, b: a @ b),
        ("mat_mat", [Arg(2, 3), Arg(3, 4)], lambda m, a, b: a @ b),
        ("batched_mat", [Arg(2, 2, 3), Arg(3, 4)], lambda m, a, b: a @ b),
        ("vec_batched", [Arg(3), Arg(2, 3, 4)], lambda m, a, b: a @ b),
        ("mat_batched", [Arg(2, 3), Arg(2, 3, 4)], lambda m, a, b: a @ b),
        ("batched_batched", [Arg(2, 2, 3), Arg(1, 3, 2)], lambda m, a, b: a @ b),
    ],
    "indexing": [
        ("take", [Arg(5, 3), Arg(4, index=5)], lambda m, x, i: m.take(x, i, axis=0)),
        ("take_axis1", [Arg(2, 4, 3), Arg(2, 2, index=4)], lambda m, x, i: m.take(x, i, axis=1)),
        ("advanced", [Arg(4, 3), Arg(2, index=4)], lambda m, x, i: x[i] * 2.0),
        ("scatter_add", [Arg(5, 2), Arg(3, index=5), Arg(3, 2)],
         lambda m, x, i, v: x.at[i].add(v)),
        ("scatter_add_axis1", [Arg(2, 4), Arg(3, index=4), Arg(2, 3)],
         lambda m, x, i, v: x.at[:, i].add(v)),
    ],
}


def _jax_conv(x, w, stride=1, padding=0, groups=1):  # noqa: ANN001, ANN202
    one = x.ndim == 3
    y = lax.conv_general_dilated(x[None] if one else x, w, (stride, stride),
                                 [(padding, padding)] * 2, feature_group_count=groups)
    return y[0] if one else y


def _conv(m, x, w, stride=1, padding=0, groups=1):  # noqa: ANN001, ANN202
    if m is pyasg:
        return pyasg.conv2d(x, w, stride=stride, padding=padding, groups=groups)
    return _jax_conv(x, w, stride, padding, groups)


def _pool(m, x):  # noqa: ANN001, ANN202
    if m is pyasg:
        return pyasg.max_pool2d(x, 2)
    return lax.reduce_window(x, -jnp.inf, lax.max, (1,) * (x.ndim - 2) + (2, 2),
                             (1,) * (x.ndim - 2) + (2, 2), "VALID")


def _attention(m, q, k, v, bias=None, causal=False):  # noqa: ANN001, ANN202
    if m is pyasg:
        return pyasg.scaled_dot_product_attention(q, k, v, bias, is_causal=causal)
    s = q @ jnp.swapaxes(k, -1, -2) / math.sqrt(q.shape[-1])
    if bias is not None:
        s = s + bias
    if causal:
        t, n = s.shape[-2:]
        s = jnp.where(jnp.tril(jnp.ones((t, n), bool), n - t), s, -jnp.inf)
    return jax.nn.softmax(s, axis=-1) @ v


def _grad(m, f, argnums=0):  # noqa: ANN001, ANN202
    return (pyasg.grad if m is pyasg else jax.grad)(f, argnums)


FAMILIES["conv"] = [
    ("conv_chw", [Arg(2, 5, 5), Arg(3, 2, 3, 3)], lambda m, x, w: _conv(m, x, w, padding=1)),
    ("conv_nchw_stride", [Arg(2, 2, 6, 6), Arg(2, 2, 3, 3)],
     lambda m, x, w: _conv(m, x, w, stride=2)),
    ("conv_groups", [Arg(1, 4, 5, 5), Arg(2, 2, 2, 2)], lambda m, x, w: _conv(m, x, w, groups=2)),
    ("conv_grads", [Arg(1, 2, 5, 5), Arg(3, 2, 3, 3)],
     lambda m, x, w: _grad(m, lambda x, w: (_conv(m, x, w, padding=1) ** 2).sum(), (0, 1))(x, w)),
    ("max_pool", [Arg(2, 4, 4)], lambda m, x: _pool(m, x)),
    ("max_pool_grad", [Arg(1, 2, 4, 6)],
     lambda m, x: _grad(m, lambda x: (_pool(m, x) ** 2).sum())(x)),
]
FAMILIES["attention"] = [
    ("attention", [Arg(1, 2, 3, 4), Arg(1, 2, 5, 4), Arg(1, 2, 5, 3)],
     lambda m, q, k, v: _attention(m, q, k, v)),
    ("attention_causal", [Arg(2, 1, 4, 2), Arg(2, 1, 4, 2), Arg(2, 1, 4, 2)],
     lambda m, q, k, v: _attention(m, q, k, v, causal=True)),
    ("attention_bias", [Arg(1, 2, 3, 4), Arg(1, 2, 5, 4), Arg(1, 2, 5, 3), Arg(1, 1, 1, 5)],
     lambda m, q, k, v, b: _attention(m, q, k, v, b)),
    ("attention_batch_bias", [Arg(2, 1, 3, 2), Arg(2, 1, 3, 2), Arg(2, 1, 3, 2), Arg(2, 1, 3, 3)],
     lambda m, q, k, v, b: _attention(m, q, k, v, b)),
    ("attention_grads", [Arg(1, 2, 3, 4), Arg(1, 2, 5, 4), Arg(1, 2, 5, 3), Arg(1, 2, 1, 5)],
     lambda m, q, k, v, b: _grad(m, lambda q, k, v, b: (_attention(m, q, k, v, b) ** 2).sum(),
                                 (0, 1, 2, 3))(q, k, v, b)),
]

CASES = [(family, *case) for family, cases in FAMILIES.items() for case in cases]


@st.composite
def axes_and_size(draw: st.DrawFn, args: list[Arg]) -> tuple[tuple, int]:
    """An in_axes entry per argument (None, or an axis of the batched argument, negative
    ones too), at least one not None; and a batch size."""
    axes = []
    for a in args:
        n = len(a.shape) + 1
        axes.append(draw(st.one_of(st.none(), st.integers(-n, n - 1))))
    if all(a is None for a in axes):
        k = draw(st.integers(0, len(args) - 1))
        axes[k] = draw(st.integers(-(len(args[k].shape) + 1), len(args[k].shape)))
    return tuple(axes), draw(st.integers(1, 3))


def batched_args(args: list[Arg], axes: tuple, size: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for a, axis in zip(args, axes):
        if axis is None:
            out.append(a.draw(rng, a.shape))
            continue
        axis %= len(a.shape) + 1
        out.append(a.draw(rng, a.shape[:axis] + (size,) + a.shape[axis:]))
    return out


def assert_trees_close(got: object, want: object) -> None:
    """Equal trees (dicts by key: JAX orders them by key, pyasg by insertion), integer
    leaves exactly, float leaves to float64 rounding."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == set(want), (got, want)
        for k in want:
            assert_trees_close(got[k], want[k])
        return
    if isinstance(want, (tuple, list)):
        assert type(got) is type(want) and len(got) == len(want), (got, want)
        for g, w in zip(got, want):
            assert_trees_close(g, w)
        return
    w = np.asarray(want)
    assert np.shape(got) == w.shape, (np.shape(got), w.shape)
    if w.dtype.kind in "biu":
        np.testing.assert_array_equal(got, w)
    else:
        np.testing.assert_allclose(got, w, rtol=1e-9, atol=1e-11)


def check_case(fn: object, args: list[Arg], axes: tuple, size: int, seed: int,
               out_axes: object = 0) -> None:
    xs = batched_args(args, axes, size, seed)
    want = jax.vmap(lambda *a: fn(jnp, *a), in_axes=axes, out_axes=out_axes)(
        *map(jnp.asarray, xs))
    got = pyasg.vmap(lambda *a: fn(pyasg, *a), in_axes=axes, out_axes=out_axes)(*xs)
    assert_trees_close(got, want)


# --------------------------------------------------------------------------- per family


@pytest.mark.parametrize("family, name, args, fn", CASES, ids=[c[1] for c in CASES])
@given(data=st.data())
def test_vmap_equals_jax_vmap(family: str, name: str, args: list[Arg], fn: object,
                              data: st.DataObject) -> None:
    axes, size = data.draw(axes_and_size(args))
    out_axes = data.draw(st.sampled_from([0, -1]))
    check_case(fn, args, axes, size, data.draw(st.integers(0, 2**16)), out_axes)


def test_every_family_covers_the_ops_it_names() -> None:
    """The cases reach every batching rule of their family: the traced graphs of all
    cases together hold every op class that has a rule, except those reached only by
    fusion (Fused), random bits, custom calls and control flow, which have tests of their
    own (below, tests/test_custom_vmap.py, tests/test_control_flow.py)."""
    seen: set[type] = set()
    for _, _, args, fn in CASES:
        xs = [a.draw(np.random.default_rng(0), a.shape) for a in args]
        graph = pyasg.make_graph(lambda *a, fn=fn: fn(pyasg, *a))(*xs)
        seen |= {type(graph.nodes[i].op) for i in graph.live_ids}
    missing = {c.__name__ for c in BATCH_RULES} - {c.__name__ for c in seen} - {
        "Fused", "RandomBits", "CustomCall", "Cond", "Remat", "Scan"}
    assert not missing, missing


# --------------------------------------------------------------------------- out_axes, trees


def test_out_axes_pytrees_and_unbatched_outputs_broadcast_as_jax() -> None:
    def f(m, x, w):  # noqa: ANN001, ANN202
        return {"y": x @ w, "pair": (x.sum(), w * 2.0)}

    x, w = np.arange(12.0).reshape(4, 3), np.arange(6.0).reshape(3, 2)
    for out_axes in (0, 1, -1, {"y": 1, "pair": (0, None)}, {"y": -2, "pair": 0}):
        if out_axes == 1 or out_axes == -1:
            spec = {"y": out_axes, "pair": (0, 0)}  # a 0-d output has axis 0 only
        else:
            spec = out_axes
        want = jax.vmap(lambda x, w: f(jnp, x, w), in_axes=(0, None), out_axes=spec)(x, w)
        got = pyasg.vmap(lambda x, w: f(pyasg, x, w), in_axes=(0, None), out_axes=spec)(x, w)
        assert_trees_close(got, want)


def test_in_axes_pytree_prefixes_as_jax() -> None:
    rng = np.random.default_rng(1)
    params = {"w": rng.normal(size=(3, 2)), "b": rng.normal(size=(5, 2))}
    x = rng.normal(size=(3, 5))

    def f(m, p, x):  # noqa: ANN001, ANN202
        return m.tanh(x @ p["w"] + p["b"])

    in_axes = ({"w": None, "b": 0}, 1)
    want = jax.vmap(lambda p, x: f(jnp, p, x), in_axes=in_axes)(params, x)
    got = pyasg.vmap(lambda p, x: f(pyasg, p, x), in_axes=[{"w": None, "b": 0}, 1])(params, x)
    assert_trees_close(got, want)


def test_nested_vmap_equals_jax() -> None:
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(3, 4, 2)), rng.normal(size=(4, 2))

    def f(m, a, b):  # noqa: ANN001, ANN202
        return (a * b).sum() + m.exp(a)

    inner = (0, 0)
    want = jax.vmap(jax.vmap(lambda a, b: f(jnp, a, b), inner), (0, None), 1)(x, y)
    got = pyasg.vmap(pyasg.vmap(lambda a, b: f(pyasg, a, b), inner), (0, None), 1)(x, y)
    assert_trees_close(got, want)
    # the axes of the inner vmap are the outer example's: batch over the last axis first
    want = jax.vmap(jax.vmap(lambda a: f(jnp, a, a), -1), 0)(x)
    got = pyasg.vmap(pyasg.vmap(lambda a: f(pyasg, a, a), -1), 0)(x)
    assert_trees_close(got, want)


def _mlp_loss(m, params, x, y):  # noqa: ANN001, ANN202
    h = m.tanh(x @ params["w1"] + params["b1"])
    return ((h @ params["w2"] + params["b2"] - y) ** 2).mean()


@given(st.integers(1, 5), st.integers(0, 2**16),
       st.sampled_from([((None, 0, 0), False), ((0, 0, 0), True), ((None, 1, -1), False),
                        (({"w1": None, "b1": 0, "w2": None, "b2": None}, 0, None), True)]))
def test_vmap_of_grad_equals_jax_per_example_gradients(size: int, seed: int,
                                                       spec: tuple) -> None:
    in_axes, per_example_params = spec
    rng = np.random.default_rng(seed)
    params = {"w1": rng.normal(size=(4, 8)), "b1": rng.normal(size=8),
              "w2": rng.normal(size=(8, 2)), "b2": rng.normal(size=2)}
    if per_example_params:  # every example its own parameters where in_axes says so
        axes = {k: 0 for k in params} if in_axes[0] == 0 else in_axes[0]
        params = {k: v if axes[k] is None else rng.normal(size=(size,) + v.shape)
                  for k, v in params.items()}
    x = rng.normal(size=(size, 4)) if in_axes[1] == 0 else rng.normal(size=(4, size))
    y = {0: rng.normal(size=(size, 2)), -1: rng.normal(size=(2, size)),
         None: rng.normal(size=2)}[in_axes[2]]
    want = jax.vmap(jax.grad(lambda p, x, y: _mlp_loss(jnp, p, x, y)), in_axes)(params, x, y)
    got = pyasg.vmap(pyasg.grad(lambda p, x, y: _mlp_loss(pyasg, p, x, y)),
                     in_axes=in_axes)(params, x, y)
    assert_trees_close(got, want)


def test_grad_of_vmap_equals_jax() -> None:
    rng = np.random.default_rng(4)
    w, x = rng.normal(size=(3, 2)), rng.normal(size=(5, 3))

    def loss(m, vm, gr):  # noqa: ANN001, ANN202
        return gr(lambda w, x: (vm(lambda x: m.sin(x @ w), in_axes=0)(x) ** 2).sum())(w, x)

    want = loss(jnp, jax.vmap, jax.grad)
    got = loss(pyasg, pyasg.vmap, pyasg.grad)
    assert_trees_close(got, want)


@given(st.integers(1, 4), st.integers(0, 2**16))
def test_vmap_of_hessian_rows_equals_jax(size: int, seed: int) -> None:
    x = np.random.default_rng(seed).normal(size=(size, 3))

    def f(m, x):  # noqa: ANN001, ANN202
        return (m.sin(x) * x[0]).sum()

    want = jax.vmap(jax.grad(lambda x: jax.grad(lambda x: f(jnp, x))(x)[1]))(x)
    got = pyasg.vmap(pyasg.grad(lambda x: pyasg.grad(lambda x: f(pyasg, x))(x)[1]))(x)
    assert_trees_close(got, want)


# --------------------------------------------------------------------------- pyasg's own oracle


def _per_example(fn: object, args: list[np.ndarray], axes: tuple) -> list:
    size = next(np.shape(a)[ax] for a, ax in zip(args, axes) if ax is not None)
    return [fn(*[a if ax is None else np.take(a, i, axis=ax) for a, ax in zip(args, axes)])
            for i in range(size)]


@given(random_cases(), st.data())
def test_batching_a_random_graph_is_the_loop_over_examples(case: object,
                                                          data: st.DataObject) -> None:
    """Graph level, no JAX: random graphs (every op of tests/strategies.py, written op by
    op or traced), random batch axes per input: the batched graph on the reference
    backend equals the original graph run example by example, and the numpy backend
    (simplified and fused) equals that."""
    graph = case.graph
    size = data.draw(st.integers(1, 3))
    axes = [data.draw(st.one_of(st.none(), st.integers(0, t.ndim)))
            for t in graph.input_types]
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    examples = [[a if ax is None else rng.uniform(-2, 2, a.shape)
                 for a, ax in zip(case.arrays, axes)] for _ in range(size)]
    batched_inputs = [a if ax is None else np.stack([e[k] for e in examples], axis=ax)
                      for k, (a, ax) in enumerate(zip(case.arrays, axes))]
    batched, out_axes = batch_graph(graph, axes, size)
    got = pyasg.jit_to_backend(batched, "reference")(*batched_inputs)
    fast = pyasg.jit_to_backend(pyasg.simplify(batched), "numpy")(*batched_inputs)
    run = pyasg.jit_to_backend(graph, "reference")
    loop = [run(*e) for e in examples]
    for k, (g, f, ax) in enumerate(zip(got, fast, out_axes)):
        want = [outs[k] for outs in loop]
        if ax is None:  # unbatched: the same for every example
            for w in want:
                np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)
        else:
            np.testing.assert_allclose(g, np.stack(want, axis=ax), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(f, g, rtol=1e-9, atol=1e-9)


def test_random_bits_follow_jax_semantics() -> None:
    """An unbatched key is one draw shared by the batch; batched keys draw each its own
    bits, those of the loop over the keys."""
    key = pyasg.random.key(7)
    x = np.zeros((4, 3))
    shared = pyasg.vmap(lambda x, k: x + pyasg.random.uniform(k, (3,)), in_axes=(0, None))(x, key)
    assert np.all(shared == shared[0])
    np.testing.assert_array_equal(shared[0], pyasg.random.uniform(key, (3,)))
    keys = pyasg.random.split(key, 4)
    own = pyasg.vmap(lambda k: pyasg.random.normal(k, (2, 3)))(keys)
    loop = np.stack([pyasg.random.normal(keys[i], (2, 3)) for i in range(4)])
    np.testing.assert_array_equal(own, loop)
    assert not np.all(own == own[0])
    mapped_on_1 = pyasg.vmap(lambda k: pyasg.random.bits(k, (5,)), in_axes=1)(keys.T)
    np.testing.assert_array_equal(mapped_on_1, np.stack([pyasg.random.bits(k, (5,))
                                                         for k in keys]))


def test_dropout_under_vmap_with_per_example_keys_is_the_loop() -> None:
    keys = pyasg.random.split(pyasg.random.key(1), 3)
    x = np.arange(30.0).reshape(3, 10) + 1.0
    got = pyasg.vmap(lambda x, k: pyasg.dropout(x, 0.5, k))(x, keys)
    want = np.stack([pyasg.dropout(x[i], 0.5, keys[i]) for i in range(3)])
    np.testing.assert_array_equal(got, want)


def test_a_fused_node_is_batched_through_its_sub_graph() -> None:
    from pyasg.compile.registry import get_backend
    from pyasg.transforms.fuse.apply import fuse

    graph = pyasg.make_graph(lambda x, y: pyasg.exp(x * y) + y)(np.ones((2, 3)), np.ones(3))
    fused = fuse(graph, get_backend("numpy").fusion_options())
    assert any(isinstance(fused.nodes[i].op, ops.Fused) for i in fused.live_ids)
    batched, out_axes = batch_graph(fused, [1, None], 4)
    assert out_axes == (0,) or out_axes == (1,)
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(2, 4, 3)), rng.normal(size=3)
    (got,) = pyasg.jit_to_backend(batched, "reference")(x, y)
    want = np.stack([np.exp(x[:, i] * y) + y for i in range(4)])
    np.testing.assert_allclose(np.moveaxis(got, out_axes[0], 0), want, rtol=1e-12)


def test_batch_graph_keeps_unbatched_work_unbatched() -> None:
    graph = pyasg.make_graph(lambda x, w: x * pyasg.exp(w).sum())(np.ones(3), np.ones(2))
    batched, out_axes = batch_graph(graph, [0, None], 5)
    sums = [batched.nodes[i] for i in batched.live_ids if isinstance(batched.nodes[i].op, ops.Sum)]
    assert [n.type.shape for n in sums] == [()]  # exp(w).sum() is computed once
    assert out_axes == (0,)


def test_out_of_range_indices_still_fail_when_both_operands_are_batched() -> None:
    """Indices of one example never read another's rows: an index out of its example's
    range stays out of range of the whole batch (the gather raises as without vmap)."""
    x = np.arange(12.0).reshape(2, 3, 2)
    with pytest.raises(pyasg.PyasgError, match="out of|index"):
        pyasg.vmap(lambda x, i: pyasg.take(x, i, axis=0))(x, np.array([[0, 3], [1, 2]]))
    ok = pyasg.vmap(lambda x, i: pyasg.take(x, i, axis=0))(x, np.array([[0, -1], [-3, 2]]))
    np.testing.assert_array_equal(ok, np.stack([x[0][[0, -1]], x[1][[-3, 2]]]))


# --------------------------------------------------------------------------- jit and per-example


def _mlp() -> tuple[object, dict]:
    model = pyasg.nn.Sequential(pyasg.nn.Linear(4, 16), pyasg.nn.Tanh(), pyasg.nn.Linear(16, 3))
    params = model.init(pyasg.random.key(0))
    return model, params


def _per_example_grads(backend: str) -> tuple[object, object]:
    model, params = _mlp()
    rng = np.random.default_rng(6)
    x = rng.normal(size=(8, 4)).astype(np.float32)
    y = rng.integers(0, 3, 8).astype(np.int32)

    def loss(params, x, y):  # noqa: ANN001, ANN202
        logits = model(params, x[None])
        return pyasg.losses.cross_entropy(logits, y[None])

    step = pyasg.jit(pyasg.vmap(pyasg.grad(loss), in_axes=(None, 0, 0)), backend=backend)
    got = step(params, x, y)
    one = pyasg.jit(pyasg.grad(loss), backend="reference")
    loop = [one(params, x[i], y[i]) for i in range(8)]
    want = pyasg.tree_map(lambda *g: np.stack(g), *loop)
    return got, want


def test_per_example_gradients_of_an_mlp_are_the_loop_on_numpy() -> None:
    got, want = _per_example_grads("numpy")
    pyasg.tree_map(lambda g, w: np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6),
                   got, want)
    assert pyasg.flatten(got)[1] == pyasg.flatten(want)[1]


@pytest.mark.wgpu
def test_per_example_gradients_of_an_mlp_are_the_loop_on_wgpu() -> None:
    from wgpu_util import require_wgpu

    require_wgpu()
    got, want = _per_example_grads("wgpu")
    pyasg.tree_map(lambda g, w: np.testing.assert_allclose(np.asarray(g), w, rtol=1e-4,
                                                           atol=1e-5), got, want)


@pytest.mark.wgpu
@pytest.mark.parametrize("name", ["batched_mat", "take", "conv_grads", "attention_bias",
                                  "scatter_add_axis1", "max_pool_grad", "softmax"])
def test_batched_graphs_run_the_same_on_wgpu(name: str) -> None:
    from wgpu_util import wgpu_parity

    _, _, args, fn = next(c for c in CASES if c[1] == name)
    axes = tuple(0 if k % 2 == 0 else None for k in range(len(args)))
    xs = [a.astype(np.float32) if a.dtype.kind == "f" else a
          for a in batched_args(args, axes, 3, 0)]
    wgpu_parity(pyasg.vmap(lambda *a: fn(pyasg, *a), in_axes=axes), *xs, atol=1e-4, rtol=1e-4)


def test_an_empty_batch_and_closures_over_outer_values() -> None:
    got = pyasg.vmap(lambda x, w: pyasg.tanh(x @ w).sum(), in_axes=(0, None))(
        np.ones((0, 3)), np.ones((3, 2)))
    assert got.shape == (0,)
    assert pyasg.vmap(lambda k: pyasg.random.bits(k, (2,)))(np.zeros((0, 2), np.uint32)).shape \
        == (0, 2)
    conv = pyasg.vmap(lambda x, w: pyasg.conv2d(x, w), in_axes=(None, 0))(
        np.ones((2, 5, 5)), np.ones((0, 3, 2, 3, 3)))
    assert conv.shape == (0, 3, 3, 3)
    xs, ys = np.arange(3.0), np.arange(4.0)
    # the inner function closes over the outer example: batched by the outer vmap
    outer = pyasg.vmap(lambda x: pyasg.vmap(lambda y: x * y + pyasg.sin(x))(ys))(xs)
    np.testing.assert_allclose(outer, np.outer(xs, ys) + np.sin(xs)[:, None], rtol=1e-12)
    # a jit argument captured by the mapped function is shared by every example
    w = np.arange(6.0).reshape(3, 2)
    f = pyasg.jit(lambda w, xs: pyasg.vmap(lambda x: x @ w)(xs))
    np.testing.assert_allclose(f(w, np.ones((5, 3))), np.ones((5, 3)) @ w, rtol=1e-12)


def test_jit_caches_a_vmap_per_signature() -> None:
    calls = []

    def f(x):  # noqa: ANN001, ANN202
        calls.append(1)
        return x * 2.0

    mapped = pyasg.vmap(f)
    mapped(np.ones((3, 2)))
    mapped(np.zeros((3, 2)))
    assert len(calls) == 1  # same shapes: traced once
    mapped(np.ones((4, 2)))
    assert len(calls) == 2  # a new batch size is a new signature
    jitted = pyasg.jit(lambda x: pyasg.vmap(f)(x) + 1.0)
    np.testing.assert_array_equal(jitted(np.ones((2, 2))), np.full((2, 2), 3.0))


# --------------------------------------------------------------------------- errors


def _here_lineno(err: pyasg.PyasgError) -> None:
    assert err.source is not None and "test_vmap.py:" in err.source, err.source


@pytest.mark.parametrize("in_axes, args, message", [
    ((0,), (np.ones(3), np.ones(3)), "in_axes has 1 entries, but .* 2 positional"),
    (2, (np.ones(3), np.ones(3)), "in_axes 2 is out of range for argument 'x' of shape \\[3\\]"),
    (-3, (np.ones((2, 3)), np.ones((2, 3))), "out of range"),
    (0, (np.ones(3), np.ones(4)), "different sizes .*'x' .* has 3; 'y' .* has 4"),
    (None, (np.ones(3), np.ones(3)), "at least one argument mapped"),
    ((0, {"a": 0}), (np.ones(3), np.ones(3)), "in_axes does not fit the arguments at 'y'"),
    (0, (1.0, np.ones(3)), "'x' is a Python number"),
    (0, (np.float64(1.0), np.ones(3)), "'x' is a 0-d array"),
    ({"x": 0}, (np.ones(3), np.ones(3)), "in_axes must be an int, None or a tuple"),
])
def test_bad_in_axes_raise_vmap_errors_at_the_callers_line(in_axes: object, args: tuple,
                                                          message: str) -> None:
    with pytest.raises(pyasg.VmapError, match=message) as e:
        pyasg.vmap(lambda x, y: x + y, in_axes=in_axes)(*args)
    _here_lineno(e.value)


@pytest.mark.parametrize("axes", ["0", 1.0, True, (0, "x"), [0, [1.5]]])
def test_axes_must_be_ints_or_none_where_vmap_is_given_them(axes: object) -> None:
    with pytest.raises(pyasg.VmapError, match="int, None"):
        pyasg.vmap(lambda x: x, in_axes=axes)
    with pytest.raises(pyasg.VmapError, match="int, None"):
        pyasg.vmap(lambda x: x, out_axes=axes)


def test_bad_out_axes_name_the_output() -> None:
    with pytest.raises(pyasg.VmapError, match="output 'result' depends on the mapped"):
        pyasg.vmap(lambda x: x * 2.0, out_axes=None)(np.ones(3))
    with pytest.raises(pyasg.VmapError, match="out_axes 3 is out of range for output '1'"):
        pyasg.vmap(lambda x: (x, x), out_axes=(0, 3))(np.ones((2, 2)))
    with pytest.raises(pyasg.VmapError, match="out_axes does not fit the result"):
        pyasg.vmap(lambda x: (x, x), out_axes=(0, 0, 0))(np.ones(2))
    shared = pyasg.vmap(lambda x, w: (x * w, w), in_axes=(0, None), out_axes=(0, None))(
        np.ones((2, 3)), np.arange(3.0))
    np.testing.assert_array_equal(shared[1], np.arange(3.0))


def test_an_unregistered_dataclass_argument_says_how_to_register_it() -> None:
    import dataclasses

    @dataclasses.dataclass
    class Batch:
        x: object

    with pytest.raises(pyasg.TraceError, match="register_dataclass"):
        pyasg.vmap(lambda b: b.x)(Batch(np.ones(3)))
