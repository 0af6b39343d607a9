"""Misuse of the array layer and the losses: bad arguments give a `PyasgError`, nothing else.

Two parts. First the cases of issue 14, each a test that failed before its fix: a
boolean mask that does not fit its axis, a probability outside [0, 1], a random draw
of integers, a seed that is not an integer, shape arguments of the wrong type,
sizes no machine holds, Python ints beyond 64 bits.

Then a fuzz suite: every public function of `pyasg.functional` (the numpy-like
surface, indexing and convolutions), of `pyasg.random` and of `pyasg.losses`, called
from a valid call (`VALID`, itself tested) with one or more arguments replaced by
hostile values (None, strings, lists, ragged lists, floats where ints are due,
NaN/inf, huge and negative ints, empty arrays, arrays of strings or objects, …),
eagerly and with an array argument traced. Only `PyasgError` subclasses may escape
(a TypeError, ValueError, IndexError, KeyError, RecursionError or MemoryError is a
defect), and each call must finish within `CALL_LIMIT_S` seconds. The `ci`
hypothesis profile runs 25 cases per function; set PYASG_FUZZ_EXAMPLES (say 2000)
to run more by hand.
"""

from __future__ import annotations

import inspect
import math
import os
import warnings
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from limits import time_limit

import pyasg
from pyasg import functional as F
from pyasg import losses as L
from pyasg import random as R
from pyasg.errors import PyasgError, ShapeError

nan, inf = math.nan, math.inf


def traced(fn: Callable, *arrays: np.ndarray) -> object:
    """Trace `fn` on `arrays` (the graph is built; nothing runs)."""
    return pyasg.make_graph(fn)(*arrays)


# --------------------------------------------------------------------------- issue 14's cases


@pytest.mark.parametrize("shape, mask", [((3,), (2,)), ((3,), (4,)), ((2, 3), (3, 2)),
                                         ((2, 3), (2, 2)), ((2, 3), (3,))])
def test_a_boolean_mask_that_does_not_fit_its_axes_is_a_shape_error(shape, mask):
    x = np.arange(math.prod(shape), dtype=np.float32).reshape(shape)
    m = np.arange(math.prod(mask)).reshape(mask) % 2 == 0
    with pytest.raises(IndexError):  # numpy's answer
        x[m]
    with pytest.raises(ShapeError, match="boolean index of shape"):
        F.getitem(x, m)
    with pytest.raises(ShapeError, match="boolean index of shape"):
        traced(lambda v: v[m], x)


def test_a_boolean_mask_is_checked_against_the_axes_it_covers_after_an_ellipsis():
    x = np.arange(24.0).reshape(2, 3, 4)
    good = np.array([True, False, True, False])
    np.testing.assert_array_equal(F.getitem(x, (..., good)), x[..., good])
    every = np.ones((3, 4), bool)
    np.testing.assert_array_equal(F.getitem(x, (0, every)), x[0, every])
    with pytest.raises(ShapeError, match="axis 2 of an array of shape"):
        F.getitem(x, (..., good[:3]))


@pytest.mark.parametrize("index", [True, False, np.array(True), np.bool_(False)])
def test_a_scalar_boolean_index_is_a_shape_error_not_the_index_one(index):
    with pytest.raises(ShapeError, match="scalar boolean index"):
        F.getitem(np.arange(3.0), index)


@pytest.mark.parametrize("p", [2.0, -0.5, nan, 1.0 + 1e-7])
def test_binary_cross_entropy_rejects_concrete_probabilities_outside_0_1(p):
    with pytest.raises(L.LossError, match="probabilities in"):
        L.binary_cross_entropy(np.array(p), np.array(1.0))
    with pytest.raises(L.LossError, match="probabilities in"):
        L.binary_cross_entropy(np.array([0.5, p]), np.array([1.0, 0.0]))


@pytest.mark.parametrize("draw", ["uniform", "normal"])
@pytest.mark.parametrize("dtype", ["int32", "uint32", "bool", np.int64])
def test_random_floats_refuse_an_integer_dtype(draw, dtype):
    with pytest.raises(ShapeError, match="draws floats"):
        getattr(R, draw)(R.key(0), (2,), dtype=dtype)


@pytest.mark.parametrize("seed", [inf, -inf, nan, 1.5, 3.0, "3", None, True, [1], -1, 2**64])
def test_random_key_refuses_a_seed_that_is_not_an_integer_in_range(seed):
    with pytest.raises(ShapeError, match="seed"):
        R.key(seed)


def test_random_key_takes_numpy_integers():
    np.testing.assert_array_equal(R.key(np.uint64(2**64 - 1)), [2**32 - 1, 2**32 - 1])
    np.testing.assert_array_equal(R.key(np.array(7)), R.key(7))


@pytest.mark.parametrize("call", [
    lambda x: F.reshape(x, None), lambda x: F.reshape(x, "6"), lambda x: F.reshape(x, (2.0, 3)),
    lambda x: F.sum(x, axis=1.5), lambda x: F.sum(x, axis="0"), lambda x: F.sum(x, axis=(0, 0)),
    lambda x: F.mean(x, axis=[None]), lambda x: F.max(x, axis=0.0),
    lambda x: F.transpose(x, (0, 0)), lambda x: F.transpose(x, 1),
    lambda x: F.pad(x, (1, 2, 3)), lambda x: F.pad(x, ((1, 2),) * 3), lambda x: F.pad(x, "1"),
    lambda x: F.pad(x, 1, constant_values="a"),
    lambda x: F.broadcast_to(x, (2, 3.5)), lambda x: F.expand_dims(x, 0.5),
    lambda x: F.squeeze(x, "a"), lambda x: F.split(x, 1.5), lambda x: F.split(x, [None]),
    lambda x: F.getitem(x, slice(None, None, 0)), lambda x: F.getitem(x, slice(0.5, None)),
    lambda x: F.getitem(x, (slice(None), slice(None, None, 0))),
    lambda x: F.sum(x, keepdims="yes"), lambda x: F.argmax(x, axis=None, keepdims=2),
    lambda x: F.var(x, ddof=None), lambda x: F.var(x, ddof=nan),
    lambda x: F.concatenate(None), lambda x: F.stack(5),
])
@pytest.mark.parametrize("mode", ["eager", "traced"])
def test_shape_functions_given_wrong_argument_types_raise_shape_errors(call, mode):
    x = np.ones((2, 3), np.float32)
    with pytest.raises(ShapeError):
        call(x) if mode == "eager" else traced(call, x)


@pytest.mark.parametrize("call", [
    lambda: R.normal(R.key(0), (10**6, 10**6)),
    lambda: R.uniform(R.key(0), (2**40,)),
    lambda: R.bits(R.key(0), (2**62, 4)),
    lambda: F.full((10**6, 10**6), 1.0),
    lambda: F.broadcast_to(np.ones(3), (10**12, 3)),
    lambda: F.add(np.ones((10**6, 1), np.float32), np.ones((1, 10**6), np.float32)),
    lambda: F.one_hot(np.arange(10**6), 10**7),
    lambda: F.pad(np.ones(3), 10**12),
])
def test_absurd_sizes_are_shape_errors_before_numpy_allocates(call):
    with pytest.raises(ShapeError, match="would need .* more than"):
        call()


def test_a_shape_beyond_numpys_limit_is_refused_even_in_a_trace():
    with pytest.raises(ShapeError, match="numpy's limit"):
        traced(lambda x: F.broadcast_to(x, (2**40, 2**40)), np.ones(1, np.float32))
    # a traced result within numpy's limit is the compiling backend's business: recorded
    g = traced(lambda k: R.normal(k, (10**6, 10**6)), R.key(0))
    assert g.output_types[0].shape == (10**6, 10**6)


def test_memory_limit_is_this_machines_physical_memory():
    from pyasg.array import checks  # here, not at the top: the other tests run without it

    assert checks.MEMORY_LIMIT == os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


BIG = "1180591620717411303424"  # 2**70


@pytest.mark.parametrize("call, value", [
    (lambda: F.add(np.ones(2, np.int32), 2**70), BIG),
    (lambda: F.add(np.ones(2, np.int64), 2**70), BIG),
    (lambda: F.add(2**70, 1), BIG),
    (lambda: F.add(np.ones(2, np.int32), 2**40), "1099511627776"),  # numpy 2: OverflowError
    (lambda: F.mul(np.ones(2, np.uint32), -1), "-1"),
    (lambda: F.astype(2**70, "int64"), BIG),
    (lambda: F.where(np.array([True]), 2**70, np.int32(1)), BIG),
    (lambda: F.clamp(np.ones(2, np.int32), min=2**70), BIG),
    (lambda: F.full((2,), 2**70, "int32"), BIG),
    (lambda: F.pad(np.ones(2, np.int32), 1, constant_values=2**40), "1099511627776"),
])
def test_python_ints_that_do_not_fit_are_shape_errors_naming_the_value(call, value):
    with pytest.raises(ShapeError, match=f"{value}.* does not fit"):
        call()


def test_python_ints_beyond_64_bits_inside_a_trace():
    with pytest.raises(ShapeError, match="1180591620717411303424"):
        traced(lambda x: x + 2**70, np.ones(2, np.int32))
    with pytest.raises(ShapeError, match="1180591620717411303424"):
        traced(lambda x: x * 2**70, np.ones(2, np.int64))
    with pytest.raises(PyasgError, match="1180591620717411303424"):
        pyasg.jit(lambda x: x + 1)(2**70)


def test_python_ints_that_numpy_accepts_give_numpys_result():
    np.testing.assert_array_equal(F.add(np.ones(2, np.int64), 2**40), np.ones(2) + 2**40)
    got = F.add(np.ones(2, np.float32), 2**70)
    assert got.dtype == np.float32 and got[0] == np.float32(2.0**70)


def test_integer_clamp_with_a_nan_bound_is_a_shape_error():
    with pytest.raises(ShapeError, match="clamp: min=nan"):
        F.clamp(np.arange(3), min=nan)


# --------------------------------------------------------------------------- the fuzz suite

X = np.array([[0.5, -1.0, 2.0], [0.0, 3.0, -0.25]], np.float32)
IMG = np.linspace(-1, 1, 32, dtype=np.float32).reshape(1, 2, 4, 4)
W = np.full((3, 2, 3, 3), 0.1, np.float32)
IDS = np.array([0, 2], np.int32)
MASK = X > 0
KEY = R.key(0)
PROB = np.array([[0.25, 0.5, 0.75], [0.1, 0.9, 0.5]], np.float32)
SIGNS = np.array([[1, -1, 1], [-1, 1, 1]], np.float32)

#: A valid call of each function: (positional arguments, keyword arguments). Functions
#: not listed take X for each parameter without a default.
VALID: dict[str, tuple[tuple, dict]] = {
    "adaptive_avg_pool2d": ((IMG, 2), {}),
    "astype": ((X, "float64"), {}),
    "avg_pool2d": ((IMG, 2), {}),
    "broadcast_to": ((X, (4, 2, 3)), {}),
    "concatenate": (([X, X],), {}),
    "conv2d": ((IMG, W), {}),
    "conv_transpose2d": ((IMG, np.full((2, 3, 3, 3), 0.1, np.float32)), {}),
    "dot": ((X, X.T), {}),
    "embedding": ((IDS, X.T), {}),
    "expand_dims": ((X, 0), {}),
    "full": (((2, 3), 1.5), {}),
    "getitem": ((X, (0, slice(1, None))), {}),
    "linear": ((X, np.ones((4, 3), np.float32)), {}),
    "logical_and": ((MASK, ~MASK), {}),
    "logical_not": ((MASK,), {}),
    "logical_or": ((MASK, ~MASK), {}),
    "logical_xor": ((MASK, ~MASK), {}),
    "matmul": ((X, X.T), {}),
    "max_pool2d": ((IMG, 2), {}),
    "moveaxis": ((X, 0, 1), {}),
    "one_hot": ((IDS, 3), {}),
    "outer": ((X[0], X[1]), {}),
    "pad": ((X, 1), {}),
    "reshape": ((X, (3, 2)), {}),
    "split": ((X, 3, 1), {}),
    "stack": (([X, X],), {}),
    "swapaxes": ((X, 0, 1), {}),
    "take": ((X, IDS, 1), {}),
    "where": ((MASK, X, 0.0), {}),
    # pyasg.random
    "random.key": ((0,), {}),
    "random.split": ((KEY,), {}),
    "random.bits": ((KEY, (2, 3)), {}),
    "random.uniform": ((KEY, (2, 3)), {}),
    "random.normal": ((KEY, (2, 3)), {}),
    "random.bernoulli": ((KEY, 0.5, (2, 3)), {}),
    "random.dropout": ((X, 0.5, KEY), {}),
    "random.dropout2d": ((IMG, 0.5, KEY), {}),
    # pyasg.losses
    "losses.binary_cross_entropy": ((PROB, PROB), {}),
    "losses.binary_cross_entropy_with_logits": ((X, PROB), {}),
    "losses.cosine_embedding_loss": ((X, X[::-1], np.array([1, -1])), {}),
    "losses.cross_entropy": ((X, IDS), {}),
    "losses.nll_loss": ((X, IDS), {}),
    "losses.hinge": ((X, SIGNS), {}),
    "losses.squared_hinge": ((X, SIGNS), {}),
    "losses.hinge_embedding_loss": ((X, SIGNS), {}),
    "losses.kl_div": ((X, PROB), {}),
    "losses.margin_ranking_loss": ((X, X[::-1], SIGNS), {}),
    "losses.sigmoid_focal_loss": ((X, PROB), {}),
    "losses.triplet_margin_loss": ((X, X[::-1], X * 2), {}),
}

#: Re-exports of other layers, and `attention.py` (another part of issue 14's work).
NOT_FUZZED = {"record", "check_dtype", "is_float", "scaled_dot_product_attention"}


def _public(module: object, prefix: str, names: list[str]) -> dict[str, Callable]:
    return {prefix + n: getattr(module, n) for n in names
            if callable(getattr(module, n)) and not inspect.isclass(getattr(module, n))}


FUNCTIONS: dict[str, Callable] = {
    **_public(F, "", [n for n in dir(F) if not n.startswith("_") and n not in NOT_FUZZED
                      and getattr(getattr(F, n), "__module__", "").startswith("pyasg.array")]),
    **_public(R, "random.", ["key", "split", "bits", "uniform", "normal", "bernoulli",
                             "dropout", "dropout2d"]),
    # the short names (mse, nll, ...) are the same functions
    **_public(L, "losses.", [n for n in L.__all__ if n.endswith("_loss") or n in (
        "binary_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy",
        "hinge", "squared_hinge", "kl_div")]),
}

#: Hostile values: what a confused caller passes where an array, a size, an axis, a
#: flag or a number is due.
HOSTILE = [
    None, "a", "", "float32", b"x", [], (), [1, 2], [[1], [2, 3]], [None], {}, {"a": 1},
    1.5, -1.5, nan, inf, -inf, 0, -1, 3, -(2**70), 2**70, 10**12, True, 1j, object(),
    np.zeros(0, np.float32), np.zeros((0, 3), np.float32), np.zeros((2, 0, 4, 4), np.float32),
    np.array(nan, np.float32), np.full((2, 3), nan, np.float32), np.array(["a"]),
    np.array([1, None], object), np.float64(nan), np.int64(2**62), np.ones((2, 3, 4, 5)),
    np.arange(6, dtype=np.int64), np.array([True, False]), np.array(-1), np.array([-(2**31)]),
    slice(None, None, 0), Ellipsis, print, np.dtype("complex64"), (2, -3), (1.5, 2),
    (2**40, 2**40), [0.5], np.ones(2, np.uint32),
]

#: Each call must end within this (a hang is a defect as much as a raw exception).
CALL_LIMIT_S = 30


def valid_call(name: str) -> tuple[list, dict, list[str]]:
    """(args, kwargs, the names of all parameters that may be replaced)."""
    fn = FUNCTIONS[name]
    params = [p for p in inspect.signature(fn).parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    if name in VALID:
        args, kwargs = VALID[name]
    else:
        args = tuple(X for p in params if p.default is p.empty and p.kind != p.KEYWORD_ONLY)
        kwargs = {}
    return list(args), dict(kwargs), [p.name for p in params]


def call_or_pyasg_error(fn: Callable, *args: object, **kwargs: object) -> None:
    """Call fn; a PyasgError is a fine answer, any other exception (or a hang) a defect."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numpy's RuntimeWarnings on NaN, losses' shape warnings
        try:
            with time_limit(CALL_LIMIT_S):
                fn(*args, **kwargs)
        except PyasgError:
            pass


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_the_valid_call_of_each_fuzzed_function_works(name):
    args, kwargs, _ = valid_call(name)
    FUNCTIONS[name](*args, **kwargs)


@st.composite
def misuses(draw, name: str) -> tuple[list, dict]:  # noqa: ANN001
    """A valid call of `name` with one or more of its arguments replaced by hostile values."""
    args, kwargs, names = valid_call(name)
    chosen = draw(st.lists(st.sampled_from(names), min_size=1, max_size=min(2, len(names)),
                           unique=True))
    for param in chosen:
        value = draw(st.sampled_from(HOSTILE))
        k = names.index(param)
        if k < len(args):
            args[k] = value
        else:
            kwargs[param] = value
    return args, kwargs


def _fuzz_examples() -> int:
    return int(os.environ.get("PYASG_FUZZ_EXAMPLES", settings().max_examples))


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_misuse_raises_only_pyasg_errors(name):
    fn = FUNCTIONS[name]

    @settings(max_examples=_fuzz_examples(), deadline=None)
    @given(st.data())
    def check(data):  # noqa: ANN001, ANN202
        args, kwargs = data.draw(misuses(name))
        call_or_pyasg_error(fn, *args, **kwargs)  # eagerly
        # and with the first float or integer array argument traced
        k = next((k for k, a in enumerate(args) if isinstance(a, np.ndarray)
                  and a.dtype.kind in "biuf"), None)
        if k is not None:
            def with_tracer(t):  # noqa: ANN001, ANN202
                fn(*args[:k], t, *args[k + 1:], **kwargs)
                return t  # what fn gives is not the point: that tracing it fails cleanly

            call_or_pyasg_error(lambda: pyasg.make_graph(with_tracer)(args[k]))

    check()


def test_the_fuzz_suite_covers_every_public_function():
    names = {n for n in dir(F) if not n.startswith("_") and callable(getattr(F, n))
             and not inspect.isclass(getattr(F, n))
             and getattr(getattr(F, n), "__module__", "").startswith("pyasg.array")}
    assert names - NOT_FUZZED <= set(FUNCTIONS)
    assert len(FUNCTIONS) >= 115
