"""check_grad: pyasg's reverse-mode gradient against central differences in float64.

`f` takes float64 arrays and returns an array of any shape. The output is projected
onto a fixed random array `r` (seeded, so a failure reproduces) to give a scalar
L(x) = sum(f(x) * r); pyasg's `grad` of L is compared with central differences of L.

The numerical side never touches `pyasg.grad`: L is evaluated forward only, through
`pyasg.jit` (the same tracing and kernels as the differentiated function, so both
sides compute the same function), once per perturbed element.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

import pyasg

#: Seed of the projection array r, so every failure reproduces.
PROJECTION_SEED = 20240601


def _fmt(a: np.ndarray) -> str:
    return np.array2string(np.asarray(a), precision=10, max_line_width=120, threshold=200)


def projection(shape: tuple[int, ...], seed: int = PROJECTION_SEED) -> np.ndarray:
    """The fixed random array the output is projected onto (float64, standard normal)."""
    return np.random.default_rng(seed).standard_normal(shape)


def numeric_grad(loss: Callable[..., object], args: Sequence[np.ndarray], argnum: int,
                 eps: float = 1e-6) -> np.ndarray:
    """Central differences of the scalar `loss` with respect to `args[argnum]`.

    The step is eps * max(1, |x_i|) per element; the difference is divided by the step
    actually taken ((x + h) - (x - h) in floating point), not by 2h.
    """
    args = list(args)
    x = np.array(args[argnum], dtype=np.float64, copy=True)
    g = np.zeros_like(x)
    flat, gflat = x.reshape(-1), g.reshape(-1)
    for k in range(flat.size):
        orig = flat[k]
        h = eps * max(1.0, abs(orig))
        plus, minus = orig + h, orig - h
        flat[k] = plus
        args[argnum] = x.copy()
        lp = float(np.asarray(loss(*args)))
        flat[k] = minus
        args[argnum] = x.copy()
        lm = float(np.asarray(loss(*args)))
        flat[k] = orig
        gflat[k] = (lp - lm) / (plus - minus)
    return g


def rel_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """||a - n|| / max(||a||, ||n||, 1e-8)."""
    a = np.asarray(analytic, np.float64)
    n = np.asarray(numeric, np.float64)
    scale = max(np.linalg.norm(a), np.linalg.norm(n), 1e-8)
    return float(np.linalg.norm(a - n) / scale)


def assert_close_rel(analytic: object, expected: object, rtol: float, what: str = "") -> None:
    """Assert rel_error(analytic, expected) <= rtol, showing both arrays on failure."""
    a = np.asarray(analytic, np.float64)
    e = np.asarray(expected, np.float64)
    assert a.shape == e.shape, f"{what}: shape {a.shape} != expected shape {e.shape}"
    assert np.all(np.isfinite(a)), f"{what}: non-finite gradient\n{_fmt(a)}"
    err = rel_error(a, e)
    assert err <= rtol, (
        f"{what}: relative error {err:.3e} > {rtol:.1e}\n"
        f"analytic (pyasg):\n{_fmt(a)}\nexpected:\n{_fmt(e)}\ndifference:\n{_fmt(a - e)}"
    )


def check_grad(f: Callable[..., object], *args: object, argnums: int | Sequence[int] = 0,
               rtol: float = 1e-6, eps: float = 1e-6) -> None:
    """Assert that pyasg.grad of sum(f(*args) * r) matches central differences.

    Arguments at `argnums` are converted to float64 arrays; the others are passed
    through unchanged (integer indices, for example).
    """
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    args = list(args)
    for i in nums:
        args[i] = np.asarray(args[i], dtype=np.float64)

    out = np.asarray(pyasg.jit(f)(*args))
    assert out.dtype == np.float64, f"f returned {out.dtype}, check_grad needs float64"
    r = projection(out.shape)

    def loss(*a: object) -> object:
        return pyasg.sum(pyasg.mul(f(*a), r))

    analytic = pyasg.grad(loss, argnums=nums)(*args)
    forward = pyasg.jit(loss)
    for i, g in zip(nums, analytic):
        g = np.asarray(g)
        assert g.dtype == np.float64, f"gradient of argument {i} has dtype {g.dtype}"
        numeric = numeric_grad(forward, args, i, eps)
        assert_close_rel(g, numeric, rtol, f"d/d(arg {i}) of {getattr(f, '__name__', 'f')}")
