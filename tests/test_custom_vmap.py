"""Custom derivatives under vmap: each example keeps the user's rule (not the primal's
autodiff), checked against the loop over examples and, where installed, against JAX."""

import numpy as np
import pytest
from wgpu_util import WGPU, require_wgpu

import pyasg


@pyasg.custom_vjp
def clip_gradient(x):
    return x * 1.0


def _clip_fwd(x):
    return x * 1.0, ()


def _clip_bwd(_, g):
    return (pyasg.clip(g, -0.5, 0.5),)


clip_gradient.defvjp(_clip_fwd, _clip_bwd)


@pyasg.custom_jvp
def log1pexp(x):
    return pyasg.log(1.0 + pyasg.exp(x))


def _log1pexp_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return log1pexp(x), t * (1.0 - 1.0 / (1.0 + pyasg.exp(x)))


log1pexp.defjvp(_log1pexp_jvp)


def _loss(w, x):
    return pyasg.sum(clip_gradient(x @ w) ** 2) + pyasg.sum(log1pexp(x * 3.0))


def test_per_example_gradients_through_custom_rules_equal_the_loop():
    rng = np.random.default_rng(0)
    w, xs = rng.normal(size=(3, 2)), rng.normal(size=(6, 3)) * 2.0
    for argnums in (0, 1):
        per = pyasg.vmap(pyasg.grad(_loss, argnums=argnums), in_axes=(None, 0))(w, xs)
        loop = np.stack([pyasg.grad(_loss, argnums=argnums)(w, x) for x in xs])
        np.testing.assert_allclose(per, loop, rtol=1e-12, atol=1e-12)
    # the clipping rule did act: the autodiff gradient of x @ w squared differs
    plain = np.stack([2 * (x @ w)[None, :] * x[:, None] for x in xs])
    assert not np.allclose(pyasg.vmap(pyasg.grad(_loss), in_axes=(None, 0))(w, xs), plain)


def test_vmap_of_a_custom_jvp_keeps_its_rule_in_forward_mode():
    x = np.linspace(-3.0, 3.0, 8).reshape(4, 2)
    f = pyasg.vmap(log1pexp)
    out, t = pyasg.jvp(f, (x,), (np.ones_like(x),))
    np.testing.assert_allclose(out, np.log1p(np.exp(x)), rtol=1e-12)
    np.testing.assert_allclose(t, 1.0 / (1.0 + np.exp(-x)), rtol=1e-12)


def test_a_shared_argument_gets_its_cotangent_summed_over_the_batch():
    rng = np.random.default_rng(1)
    w, xs = rng.normal(size=(3, 2)), rng.normal(size=(5, 3))
    total = pyasg.grad(lambda w: pyasg.sum(pyasg.vmap(_loss, in_axes=(None, 0))(w, xs)))(w)
    loop = sum(pyasg.grad(_loss)(w, x) for x in xs)
    np.testing.assert_allclose(total, loop, rtol=1e-12)


@pytest.mark.parametrize("backend", ["numpy", pytest.param("wgpu", marks=WGPU)])
def test_vmap_under_jit_equals_the_loop_on_each_backend(backend):
    if backend == "wgpu":
        require_wgpu()
    rng = np.random.default_rng(2)
    w = rng.normal(size=(3, 2)).astype(np.float32)
    xs = (rng.normal(size=(4, 3)) * 2.0).astype(np.float32)
    loop = np.stack([pyasg.grad(_loss)(w, x) for x in xs])
    step = pyasg.jit(pyasg.vmap(pyasg.grad(_loss), in_axes=(None, 0)), backend=backend)
    np.testing.assert_allclose(np.asarray(step(w, xs)), loop, rtol=1e-5, atol=1e-6)


def test_custom_vjp_under_vmap_equals_jax():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy

    @jax.custom_vjp
    def jclip(x):
        return x * 1.0

    jclip.defvjp(lambda x: (x * 1.0, ()), lambda _, g: (jnp.clip(g, -0.5, 0.5),))

    def jloss(w, x):
        return jnp.sum(jclip(x @ w) ** 2) + jnp.sum(jnp.log1p(jnp.exp(x * 3.0)))

    rng = np.random.default_rng(3)
    w, xs = rng.normal(size=(3, 2)), rng.normal(size=(6, 3)) * 2.0
    want = jax.vmap(jax.grad(jloss), in_axes=(None, 0))(w, xs)
    got = pyasg.vmap(pyasg.grad(_loss), in_axes=(None, 0))(w, xs)
    np.testing.assert_allclose(got, np.asarray(want), rtol=1e-10)
