"""Forward parity of pyasg's numpy-like functions with numpy / scipy / closed forms.

Every function is checked twice on the same input: eagerly (numpy arrays in, the
numpy kernels run at once) and traced (through `pyasg.jit`, so a graph is built,
simplified, compiled and run). Expected values always come from numpy, scipy or a
formula written here, never from pyasg itself.
"""

from __future__ import annotations

import math

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
import scipy.special as sps
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import pyasg
from pyasg.kernels.numpy.elementwise import erf_fallback

FLOATS = (np.float32, np.float64)
TOL = {np.dtype(np.float32): dict(rtol=2e-5, atol=2e-6),
       np.dtype(np.float64): dict(rtol=1e-10, atol=1e-12)}


# --------------------------------------------------------------------------- helpers


def both(fn, *args):
    """(eager result, traced result) of `fn(*args)`; the traced one goes through jit."""
    return fn(*args), pyasg.jit(fn)(*args)


def check(actual, expected, dtype=None, **tol):
    """`actual` is a numpy array of `expected`'s shape (and dtype), with close values."""
    assert isinstance(actual, (np.ndarray, np.generic)), type(actual)
    expected = np.asarray(expected)
    assert np.shape(actual) == expected.shape, (np.shape(actual), expected.shape)
    want = np.dtype(dtype) if dtype is not None else expected.dtype
    assert np.asarray(actual).dtype == want, (np.asarray(actual).dtype, want)
    if want.kind in "biu":
        np.testing.assert_array_equal(actual, expected)
    else:
        np.testing.assert_allclose(actual, expected, **{**TOL[want], **tol})


def check_both(fn, args, expected, dtype=None, **tol):
    eager, traced = both(fn, *args)
    check(eager, expected, dtype, **tol)
    check(traced, expected, dtype, **tol)


float_dtypes = st.sampled_from(FLOATS)
shapes = hnp.array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=5)
nonempty = hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=5)


def float_arrays(dtype, shape, lo=-10.0, hi=10.0):
    """Arrays of `dtype` with values in [lo, hi] (drawn as float64, then cast)."""
    elements = st.floats(lo, hi, allow_nan=False, allow_infinity=False)
    return hnp.arrays(np.float64, shape, elements=elements).map(lambda a: a.astype(dtype))


@st.composite
def array_and_axis(draw, lo=-10.0, hi=10.0, min_dims=1, tuple_axes=True, dtypes=FLOATS):
    """A float array and an axis argument: None, an int (maybe negative) or a tuple."""
    dtype = draw(st.sampled_from(dtypes))
    shape = draw(hnp.array_shapes(min_dims=min_dims, max_dims=4, min_side=1, max_side=5))
    x = draw(float_arrays(dtype, shape, lo, hi))
    ndim = len(shape)
    choices = [st.none(), st.integers(-ndim, ndim - 1)] if ndim else [st.none()]
    if tuple_axes and ndim:
        choices.append(hnp.valid_tuple_axes(ndim, min_size=1))
    axis = draw(st.one_of(*choices))
    return x, axis


def count(shape, axis):
    if axis is None:
        return math.prod(shape)
    axes = (axis,) if isinstance(axis, int) else axis
    return math.prod(shape[a] for a in axes)


# --------------------------------------------------------------------------- elementwise


np_erf = np.vectorize(math.erf, otypes=[np.float64])

UNARY = {
    # name: (pyasg function, reference, (lo, hi) domain)
    "exp": (pyasg.exp, np.exp, (-20, 20)),
    "log": (pyasg.log, np.log, (1e-3, 100)),
    "log1p": (pyasg.log1p, np.log1p, (-0.9, 100)),
    "expm1": (pyasg.expm1, np.expm1, (-20, 20)),
    "sqrt": (pyasg.sqrt, np.sqrt, (0, 100)),
    "sin": (pyasg.sin, np.sin, (-10, 10)),
    "cos": (pyasg.cos, np.cos, (-10, 10)),
    "tanh": (pyasg.tanh, np.tanh, (-10, 10)),
    "abs": (pyasg.abs, np.abs, (-10, 10)),
    "sign": (pyasg.sign, np.sign, (-10, 10)),
    "neg": (pyasg.neg, np.negative, (-10, 10)),
    "erf": (pyasg.erf, lambda x: np_erf(x).astype(x.dtype), (-5, 5)),
    "square": (pyasg.square, np.square, (-10, 10)),
    "reciprocal": (pyasg.reciprocal, np.reciprocal, (0.1, 10)),
    "rsqrt": (pyasg.rsqrt, lambda x: 1 / np.sqrt(x), (0.1, 10)),
    "sigmoid": (pyasg.sigmoid, sps.expit, (-30, 30)),
    "relu": (pyasg.relu, lambda x: np.maximum(x, 0).astype(x.dtype), (-10, 10)),
    "silu": (pyasg.silu, lambda x: x * sps.expit(x), (-30, 30)),
    "leaky_relu": (pyasg.leaky_relu, lambda x: np.where(x > 0, x, 0.01 * x), (-10, 10)),
    "elu": (pyasg.elu, lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0))), (-10, 10)),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@settings(deadline=None)
@given(data=st.data())
def test_unary_parity(name, data):
    fn, ref, (lo, hi) = UNARY[name]
    dtype = data.draw(float_dtypes)
    x = data.draw(float_arrays(dtype, data.draw(shapes), lo, hi))
    check_both(fn, (x,), ref(x).astype(dtype), dtype)


BINARY = {
    "add": (pyasg.add, np.add, None),
    "sub": (pyasg.sub, np.subtract, None),
    "mul": (pyasg.mul, np.multiply, None),
    "div": (pyasg.div, np.divide, "nonzero"),
    "power": (pyasg.power, np.power, "positive"),
    "maximum": (pyasg.maximum, np.maximum, None),
    "minimum": (pyasg.minimum, np.minimum, None),
    "floor_divide": (pyasg.floor_divide, np.floor_divide, "nonzero"),
    "mod": (pyasg.mod, np.mod, "nonzero"),
}
COMPARE = {
    "less": (pyasg.less, np.less), "less_equal": (pyasg.less_equal, np.less_equal),
    "greater": (pyasg.greater, np.greater),
    "greater_equal": (pyasg.greater_equal, np.greater_equal),
    "equal": (pyasg.equal, np.equal), "not_equal": (pyasg.not_equal, np.not_equal),
}


@st.composite
def broadcast_pair(draw, dtypes=FLOATS, lo=-10.0, hi=10.0):
    bshapes = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=4, max_side=4))
    da, db = draw(st.sampled_from(dtypes)), draw(st.sampled_from(dtypes))
    a = draw(float_arrays(da, bshapes.input_shapes[0], lo, hi))
    b = draw(float_arrays(db, bshapes.input_shapes[1], lo, hi))
    return a, b


@pytest.mark.parametrize("name", sorted(BINARY))
@settings(deadline=None)
@given(pair=broadcast_pair())
def test_binary_parity_with_broadcasting(name, pair):
    fn, ref, domain = BINARY[name]
    a, b = pair
    if domain == "positive":
        a = np.abs(a) + a.dtype.type(0.5)
        b = b / b.dtype.type(4)
    elif domain == "nonzero":
        b = np.where(np.abs(b) < 0.5, b.dtype.type(1), b)
    expected = ref(a, b)
    tol = {}
    if name == "power":
        tol = dict(rtol=1e-4 if expected.dtype == np.float32 else 1e-9)
    check_both(fn, (a, b), expected, expected.dtype, **tol)


@pytest.mark.parametrize("name", sorted(COMPARE))
@settings(deadline=None)
@given(pair=broadcast_pair(lo=-2, hi=2))
def test_comparison_parity(name, pair):
    fn, ref = COMPARE[name]
    a, b = pair
    a, b = np.round(a), np.round(b)  # make ties common
    check_both(fn, (a, b), ref(a, b), np.bool_)


@settings(deadline=None)
@given(pair=broadcast_pair(lo=-2, hi=2))
def test_logical_ops_on_computed_masks(pair):
    # the masks are computed inside the graph, so their buffers die at the logical op
    a, b = pair
    pa, pb = a > 0, b < 0.5
    cases = [
        (lambda p, q: pyasg.logical_not(pyasg.greater(p, 0)), lambda p, q: ~(p > 0), ~pa),
        (lambda p, q: pyasg.logical_and(pyasg.greater(p, 0), pyasg.less(q, 0.5)),
         lambda p, q: (p > 0) & (q < 0.5), pa & pb),
        (lambda p, q: pyasg.logical_or(pyasg.greater(p, 0), pyasg.less(q, 0.5)),
         lambda p, q: (p > 0) | (q < 0.5), pa | pb),
        (lambda p, q: pyasg.logical_xor(pyasg.greater(p, 0), pyasg.less(q, 0.5)),
         lambda p, q: (p > 0) ^ (q < 0.5), pa ^ pb),
    ]
    for fn, operators, expected in cases:
        check_both(fn, (a, b), expected, np.bool_)
        check(pyasg.jit(operators)(a, b), expected, np.bool_)


@settings(deadline=None)
@given(pair=broadcast_pair(dtypes=(np.int32,), lo=-50, hi=50))
def test_integer_floor_divide_and_mod_follow_numpy(pair):
    a, b = (x.astype(np.int32) for x in pair)
    b = np.where(b == 0, np.int32(7), b)
    check_both(pyasg.floor_divide, (a, b), np.floor_divide(a, b), np.int32)
    check_both(pyasg.mod, (a, b), np.mod(a, b), np.int32)


@settings(deadline=None)
@given(x=float_arrays(np.float64, shapes, -30, 30))
def test_gelu_exact_is_the_erf_form(x):
    expected = 0.5 * x * (1 + np_erf(x / math.sqrt(2.0)))
    check_both(pyasg.gelu, (x,), expected, np.float64)
    check_both(lambda v: pyasg.gelu(v, approximate=False), (x,), expected, np.float64)


@settings(deadline=None)
@given(x=float_arrays(np.float64, shapes, -30, 30))
def test_gelu_approximate_is_the_tanh_form(x):
    expected = 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    check_both(lambda v: pyasg.gelu(v, approximate=True), (x,), expected, np.float64)


def torch_softplus(x, beta, threshold):
    """torch.nn.functional.softplus: log1p(exp(beta x)) / beta, x where beta x > threshold."""
    with np.errstate(over="ignore"):
        smooth = np.log1p(np.exp(beta * x)) / beta
    return np.where(beta * x > threshold, x, smooth)


@settings(deadline=None)
@given(x=float_arrays(np.float64, shapes, -60, 60),
       beta=st.sampled_from([0.5, 1.0, 2.0, 3.0]), threshold=st.sampled_from([20.0, 5.0, 1.0]))
def test_softplus_matches_torch_definition(x, beta, threshold):
    expected = torch_softplus(x, beta, threshold)
    check_both(lambda v: pyasg.softplus(v, beta=beta, threshold=threshold), (x,), expected,
               np.float64)


def test_softplus_defaults_and_threshold_is_exactly_linear():
    x = np.array([-100.0, -1.0, 0.0, 1.0, 19.0, 20.0, 20.5, 100.0])
    check_both(pyasg.softplus, (x,), torch_softplus(x, 1.0, 20.0), np.float64)
    assert pyasg.softplus(x)[-1] == 100.0 and pyasg.softplus(x)[-2] == 20.5
    assert pyasg.softplus(np.array([0.0]))[0] == pytest.approx(math.log(2.0), rel=1e-15)


def test_relu_at_zero_is_zero():
    x = np.array([-1.0, -0.0, 0.0, 1e-30, 2.0])
    expected = np.array([0.0, 0.0, 0.0, 1e-30, 2.0])
    check_both(pyasg.relu, (x,), expected, np.float64)
    eager, traced = both(pyasg.relu, x)
    assert not np.signbit(eager[:3]).any() and not np.signbit(traced[:3]).any()


@settings(deadline=None)
@given(x=float_arrays(np.float64, shapes, -10, 10),
       slope=st.floats(0.0, 0.5), alpha=st.floats(0.1, 2.0))
def test_leaky_relu_and_elu_parameters(x, slope, alpha):
    check_both(lambda v: pyasg.leaky_relu(v, slope), (x,), np.where(x > 0, x, slope * x))
    check_both(lambda v: pyasg.elu(v, alpha), (x,),
               np.where(x > 0, x, alpha * (np.exp(np.minimum(x, 0)) - 1)))


@settings(deadline=None)
@given(x=float_arrays(np.float64, shapes, -10, 10),
       lo=st.one_of(st.none(), st.floats(-5, 0)), hi=st.one_of(st.none(), st.floats(0, 5)))
def test_clamp(x, lo, hi):
    expected = x
    if lo is not None:
        expected = np.maximum(expected, lo)
    if hi is not None:
        expected = np.minimum(expected, hi)
    check_both(lambda v: pyasg.clamp(v, lo, hi), (x,), expected, np.float64)


@settings(deadline=None)
@given(data=st.data())
def test_where_broadcasts_three_ways(data):
    bs = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=3, max_dims=4, max_side=4))
    c = data.draw(hnp.arrays(np.bool_, bs.input_shapes[0]))
    dtype = data.draw(float_dtypes)
    x = data.draw(float_arrays(dtype, bs.input_shapes[1]))
    y = data.draw(float_arrays(dtype, bs.input_shapes[2]))
    check_both(pyasg.where, (c, x, y), np.where(c, x, y), dtype)


# --------------------------------------------------------------------------- reductions


REDUCTIONS = {
    "sum": (pyasg.sum, np.sum),
    "mean": (pyasg.mean, np.mean),
    "max": (pyasg.max, np.max),
    "min": (pyasg.min, np.min),
}


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@settings(deadline=None)
@given(xa=array_and_axis(), keepdims=st.booleans())
def test_reduction_parity(name, xa, keepdims):
    fn, ref = REDUCTIONS[name]
    x, axis = xa
    expected = ref(x, axis=axis, keepdims=keepdims)
    check_both(lambda v: fn(v, axis=axis, keepdims=keepdims), (x,), expected, x.dtype)


@pytest.mark.parametrize("name", ["var", "std"])
@settings(deadline=None)
@given(xa=array_and_axis(), keepdims=st.booleans(), ddof=st.sampled_from([0, 1]))
def test_var_std_parity_with_ddof(name, xa, keepdims, ddof):
    x, axis = xa
    assume(count(x.shape, axis) > ddof)
    fn, ref = getattr(pyasg, name), getattr(np, name)
    expected = ref(x, axis=axis, ddof=ddof, keepdims=keepdims)
    tol = dict(rtol=1e-4, atol=1e-5) if x.dtype == np.float32 else {}
    check_both(lambda v: fn(v, axis=axis, ddof=ddof, keepdims=keepdims), (x,), expected,
               x.dtype, **tol)


def test_var_ddof1_is_the_sample_variance():
    x = np.array([1.0, 2.0, 4.0, 7.0])
    m = x.mean()
    check_both(lambda v: pyasg.var(v, ddof=1), (x,), ((x - m) ** 2).sum() / 3, np.float64)
    check_both(lambda v: pyasg.var(v, ddof=1), (x,), np.var(x, ddof=1), np.float64)
    check_both(lambda v: pyasg.std(v, ddof=1), (x,), np.std(x, ddof=1), np.float64)


@settings(deadline=None)
@given(x=hnp.arrays(np.int32, nonempty, elements=st.integers(-3, 3)), keepdims=st.booleans())
def test_integer_sum_and_mean(x, keepdims):
    check_both(lambda v: pyasg.sum(v, axis=-1, keepdims=keepdims), (x,),
               np.sum(x, axis=-1, keepdims=keepdims).astype(np.int32), np.int32)
    # documented: the mean of integers is float32 (numpy: float64)
    check_both(lambda v: pyasg.mean(v, axis=0), (x,), np.mean(x, axis=0), np.float32)


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint32])
@settings(deadline=None)
@given(data=st.data())
def test_integer_max_min_over_the_full_range(dtype, data):
    info = np.iinfo(dtype)
    x = data.draw(hnp.arrays(dtype, nonempty, elements=st.one_of(
        st.sampled_from([info.min, info.max, 0, 1]), st.integers(info.min, info.max))))
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    check_both(lambda v: pyasg.max(v, axis=axis), (x,), np.max(x, axis=axis), dtype)
    check_both(lambda v: pyasg.min(v, axis=axis), (x,), np.min(x, axis=axis), dtype)
    check_both(lambda v: pyasg.argmax(v, axis=axis), (x,), np.argmax(x, axis=axis), np.int32)
    check_both(lambda v: pyasg.argmin(v, axis=axis), (x,), np.argmin(x, axis=axis), np.int32)


def test_min_and_argmin_at_integer_extremes():
    u = np.array([0, 1, 7], np.uint32)
    check_both(pyasg.min, (u,), np.uint32(0), np.uint32)
    check_both(pyasg.argmin, (u,), 0, np.int32)
    i = np.array([5, np.iinfo(np.int32).min, 0], np.int32)
    check_both(pyasg.min, (i,), np.iinfo(np.int32).min, np.int32)
    check_both(pyasg.argmin, (i,), 1, np.int32)


@pytest.mark.parametrize("name", ["argmax", "argmin"])
@settings(deadline=None)
@given(data=st.data(), keepdims=st.booleans())
def test_argmax_argmin_first_index_like_numpy(name, data, keepdims):
    dtype = data.draw(st.sampled_from(FLOATS + (np.int32,)))
    shape = data.draw(nonempty)
    # few distinct values, so ties are the rule
    x = data.draw(hnp.arrays(dtype, shape, elements=st.integers(0, 3))).astype(dtype)
    axis = data.draw(st.one_of(st.none(), st.integers(-x.ndim, x.ndim - 1)))
    if axis is None:
        keepdims = False
    fn, ref = getattr(pyasg, name), getattr(np, name)
    expected = ref(x, axis=axis, keepdims=keepdims)
    check_both(lambda v: fn(v, axis=axis, keepdims=keepdims), (x,), expected, np.int32)


def test_argmax_ties_return_first_index():
    x = np.array([[1.0, 5.0, 5.0], [7.0, 7.0, 7.0]], np.float32)
    check_both(lambda v: pyasg.argmax(v, axis=1), (x,), np.array([1, 0]), np.int32)
    check_both(pyasg.argmax, (x,), 3, np.int32)
    check_both(lambda v: pyasg.argmin(v, axis=0), (x,), np.array([0, 0, 0]), np.int32)


@settings(deadline=None)
@given(xa=array_and_axis(lo=-50, hi=50), keepdims=st.booleans())
def test_logsumexp_parity(xa, keepdims):
    x, axis = xa
    if axis is None:
        axis = tuple(range(x.ndim))
    expected = sps.logsumexp(x.astype(np.float64), axis=axis, keepdims=keepdims)
    tol = dict(rtol=1e-5, atol=1e-5) if x.dtype == np.float32 else {}
    check_both(lambda v: pyasg.logsumexp(v, axis=axis, keepdims=keepdims), (x,),
               expected.astype(x.dtype), x.dtype, **tol)


def test_logsumexp_does_not_overflow():
    for dtype in FLOATS:
        x = np.array([1000.0, 1000.0], dtype)
        eager, traced = both(pyasg.logsumexp, x)
        for r in (eager, traced):
            assert np.isfinite(r)
            assert float(r) == pytest.approx(1000.0 + math.log(2.0), rel=1e-6)
    x = np.array([[-1000.0, -1000.0], [0.0, 0.0]])
    check_both(lambda v: pyasg.logsumexp(v, axis=1), (x,),
               np.array([-1000.0 + math.log(2.0), math.log(2.0)]), np.float64)


def test_logsumexp_of_all_minus_infinity_is_minus_infinity():
    x = np.array([-np.inf, -np.inf])
    with np.errstate(all="ignore"):
        eager, traced = both(lambda v: pyasg.logsumexp(v, axis=0), x)
    assert eager == -np.inf and traced == -np.inf


@settings(deadline=None)
@given(xa=array_and_axis(lo=-50, hi=50, tuple_axes=False))
def test_softmax_and_log_softmax_parity(xa):
    x, axis = xa
    axis = -1 if axis is None else axis
    x64 = x.astype(np.float64)
    tol = dict(rtol=1e-5, atol=1e-6) if x.dtype == np.float32 else {}
    check_both(lambda v: pyasg.softmax(v, axis=axis), (x,),
               sps.softmax(x64, axis=axis).astype(x.dtype), x.dtype, **tol)
    if x.dtype == np.float32:  # x - logsumexp(x) cancels: errors of an ulp of max|x|
        tol = dict(rtol=1e-5, atol=4 * np.finfo(np.float32).eps * max(1.0, np.abs(x).max()))
    check_both(lambda v: pyasg.log_softmax(v, axis=axis), (x,),
               sps.log_softmax(x64, axis=axis).astype(x.dtype), x.dtype, **tol)


def test_softmax_of_huge_logits_is_finite():
    x = np.array([1000.0, 1000.0, -1000.0], np.float32)
    check_both(pyasg.softmax, (x,), np.array([0.5, 0.5, 0.0], np.float32), np.float32)


def numpy_layer_norm(x, axis, eps, w=None, b=None):
    mu = x.mean(axis=axis, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=axis, keepdims=True)
    y = (x - mu) / np.sqrt(var + eps)
    if w is not None:
        y = y * w
    if b is not None:
        y = y + b
    return y


@settings(deadline=None)
@given(data=st.data(), eps=st.sampled_from([1e-5, 1e-3, 0.1]), affine=st.booleans())
def test_layer_norm_equals_numpy_implementation(data, eps, affine):
    dtype = data.draw(float_dtypes)
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=2, max_side=5))
    x = data.draw(float_arrays(dtype, shape))
    k = data.draw(st.integers(1, len(shape)))  # normalise over the last k axes
    axis = tuple(range(len(shape) - k, len(shape))) if k > 1 else -1
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else {}
    if affine:
        w = data.draw(float_arrays(dtype, shape[len(shape) - k:]))
        b = data.draw(float_arrays(dtype, shape[len(shape) - k:]))
        check_both(lambda v, w, b: pyasg.layer_norm(v, axis=axis, eps=eps, weight=w, bias=b),
                   (x, w, b), numpy_layer_norm(x, axis, eps, w, b), dtype, **tol)
    else:
        check_both(lambda v: pyasg.layer_norm(v, axis=axis, eps=eps), (x,),
                   numpy_layer_norm(x, axis, eps), dtype, **tol)


# --------------------------------------------------------------------------- shapes


@st.composite
def reshape_pair(draw):
    """(source shape, target shape) with equal sizes, target maybe with one -1."""
    factors = draw(st.lists(st.integers(1, 3), max_size=6))

    def group(fs):
        if not fs:
            return ()
        cuts = sorted(draw(st.sets(st.integers(1, len(fs) - 1), max_size=len(fs) - 1))) \
            if len(fs) > 1 else []
        bounds = [0, *cuts, len(fs)]
        return tuple(math.prod(fs[a:b]) for a, b in zip(bounds, bounds[1:]))

    src = group(factors)
    shuffled = draw(st.permutations(factors))
    dst = list(group(list(shuffled)))
    if dst and draw(st.booleans()):
        dst[draw(st.integers(0, len(dst) - 1))] = -1
    return src, tuple(dst)


@settings(deadline=None)
@given(pair=reshape_pair())
def test_reshape_parity(pair):
    src, dst = pair
    x = np.arange(math.prod(src), dtype=np.float32).reshape(src)
    check_both(lambda v: pyasg.reshape(v, dst), (x,), np.reshape(x, dst), np.float32)
    check_both(lambda v: v.reshape(dst), (x,), np.reshape(x, dst), np.float32)


@settings(deadline=None)
@given(data=st.data())
def test_transpose_parity(data):
    shape = data.draw(shapes)
    x = np.arange(math.prod(shape), dtype=np.float64).reshape(shape)
    axes = data.draw(st.one_of(st.none(), st.permutations(range(len(shape)))))
    check_both(lambda v: pyasg.transpose(v, axes), (x,), np.transpose(x, axes), np.float64)
    check_both(lambda v: v.T, (x,), x.T, np.float64)


@settings(deadline=None)
@given(data=st.data())
def test_stack_and_concatenate_parity(data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    n = data.draw(st.integers(1, 4))
    dtype = data.draw(float_dtypes)
    xs = [data.draw(float_arrays(dtype, shape)) for _ in range(n)]
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)))
    check_both(lambda v: pyasg.stack(v, axis=axis), (xs,), np.stack(xs, axis=axis), dtype)
    caxis = data.draw(st.integers(-len(shape), len(shape) - 1))
    # along the concatenation axis the sizes may differ
    ys = [data.draw(float_arrays(dtype, shape[:caxis % len(shape)]
                                 + (data.draw(st.integers(1, 3)),)
                                 + shape[caxis % len(shape) + 1:])) for _ in range(n)]
    check_both(lambda v: pyasg.concatenate(v, axis=caxis), (ys,),
               np.concatenate(ys, axis=caxis), dtype)


def test_concatenate_promotes_like_numpy():
    a, b = np.ones(2, np.float32), np.zeros(3, np.float64)
    check_both(pyasg.concatenate, ([a, b],), np.concatenate([a, b]), np.float64)


@settings(deadline=None)
@given(data=st.data())
def test_split_parity_sections_and_indices(data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=8))
    x = np.arange(math.prod(shape), dtype=np.float32).reshape(shape)
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    n = shape[axis]
    sections = data.draw(st.sampled_from([d for d in range(1, n + 1) if n % d == 0]))
    indices = sorted(data.draw(st.lists(st.integers(0, n), max_size=4)))
    for how in (sections, indices):
        expected = np.split(x, how, axis=axis)
        eager, traced = both(lambda v, how=how: pyasg.split(v, how, axis=axis), x)
        assert len(eager) == len(traced) == len(expected)
        for e, t, want in zip(eager, traced, expected):
            check(e, want)
            check(t, want)


def test_split_into_unequal_sections_is_a_shape_error():
    with pytest.raises(pyasg.ShapeError):
        pyasg.split(np.arange(10.0), 3)


@settings(deadline=None)
@given(data=st.data())
def test_take_parity(data):
    shape = data.draw(nonempty)
    x = np.arange(math.prod(shape), dtype=np.float64).reshape(shape)
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    n = shape[axis]
    idx = data.draw(hnp.arrays(np.int32, hnp.array_shapes(min_dims=0, max_dims=2, max_side=3),
                               elements=st.integers(-n, n - 1)))
    check_both(lambda v, i: pyasg.take(v, i, axis=axis), (x, idx), np.take(x, idx, axis=axis),
               np.float64)


@settings(deadline=None)
@given(data=st.data())
def test_one_hot(data):
    k = data.draw(st.integers(1, 6))
    ids = data.draw(hnp.arrays(np.int32, hnp.array_shapes(min_dims=0, max_dims=3, max_side=4),
                               elements=st.integers(0, k - 1)))
    expected = np.eye(k, dtype=np.float32)[ids]
    check_both(lambda i: pyasg.one_hot(i, k), (ids,), expected, np.float32)
    check_both(lambda i: pyasg.one_hot(i, k, dtype="float64"), (ids,),
               expected.astype(np.float64), np.float64)


def test_one_hot_out_of_range_id_is_a_zero_row():
    check_both(lambda i: pyasg.one_hot(i, 3), (np.array([0, 3, -1], np.int32),),
               np.array([[1, 0, 0], [0, 0, 0], [0, 0, 0]], np.float32), np.float32)


@settings(deadline=None)
@given(data=st.data())
def test_matmul_parity(data):
    m, k, n = (data.draw(st.integers(1, 4)) for _ in range(3))
    batch = data.draw(hnp.array_shapes(min_dims=0, max_dims=2, max_side=3))
    dtype = data.draw(float_dtypes)
    a = data.draw(float_arrays(dtype, batch + (m, k)))
    b = data.draw(float_arrays(dtype, (k, n)))
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else {}
    check_both(pyasg.matmul, (a, b), a @ b, dtype, **tol)
    check_both(lambda p, q: p @ q, (a, b), a @ b, dtype, **tol)
    v = data.draw(float_arrays(dtype, (k,)))
    check_both(pyasg.matmul, (a, v), a @ v, dtype, **tol)


# --------------------------------------------------------------------------- dtype rules


def test_float32_array_with_python_float_stays_float32():
    a = np.array([1.5, -2.0, 3.25], np.float32)
    for name, fn in [("add", lambda v: v + 2.5), ("radd", lambda v: 2.5 + v),
                     ("mul", lambda v: v * 0.1), ("div", lambda v: v / 3.0),
                     ("rsub", lambda v: 1.0 - v), ("pow", lambda v: v ** 2.0),
                     ("maximum", lambda v: pyasg.maximum(v, 0.5))]:
        want = fn(a)  # numpy's own answer (NEP 50: the Python float is weak)
        assert want.dtype == np.float32, name
        traced = pyasg.jit(fn)(a)
        check(traced, want, np.float32)
    check(pyasg.add(a, 2.5), a + 2.5, np.float32)
    check(pyasg.mul(0.1, a), 0.1 * a, np.float32)
    # a Python float argument to a jitted function is weak too
    check(pyasg.jit(lambda v, s: v * s)(a, 0.1), a * 0.1, np.float32)


def test_float32_plus_float64_array_is_float64():
    a = np.array([1.5, 2.0], np.float32)
    b = np.array([0.1, 0.2], np.float64)
    want = a + b
    assert want.dtype == np.float64
    check_both(pyasg.add, (a, b), want, np.float64)
    check_both(lambda p, q: p * q, (a, b), a * b, np.float64)
    check_both(pyasg.where, (np.array([True, False]), a, b), np.where([True, False], a, b),
               np.float64)


def test_int32_array_with_python_int_stays_int32():
    a = np.array([1, -2, 3], np.int32)
    for fn in (lambda v: v + 3, lambda v: 3 * v, lambda v: v - 1, lambda v: v // 2,
               lambda v: v % 2, lambda v: pyasg.maximum(v, 0)):
        want = fn(a)
        assert want.dtype == np.int32
        check(pyasg.jit(fn)(a), want, np.int32)
    check(pyasg.add(a, 3), a + 3, np.int32)
    check(pyasg.jit(lambda v, s: v + s)(a, 7), a + 7, np.int32)


def test_documented_difference_int_array_with_python_float_is_float32():
    a = np.array([1, 2], np.int32)
    check_both(lambda v: pyasg.mul(v, 0.5), (a,), np.array([0.5, 1.0]), np.float32)
    check_both(pyasg.exp, (a,), np.exp(a.astype(np.float32)), np.float32)


def test_python_numbers_run_eagerly():
    assert float(pyasg.exp(1.0)) == pytest.approx(math.e, rel=1e-6)
    assert int(pyasg.add(2, 3)) == 5
    assert float(pyasg.sigmoid(0.0)) == 0.5


# --------------------------------------------------------------------------- erf fallback


@pytest.mark.parametrize("dtype", FLOATS)
@settings(deadline=None)
@given(data=st.data())
def test_erf_fallback_equals_math_erf(dtype, data):
    x = data.draw(float_arrays(dtype, shapes, -6, 6))
    expected = np.array([math.erf(float(v)) for v in x.ravel()], dtype).reshape(x.shape)
    got = erf_fallback(x)
    assert got.dtype == dtype and got.shape == x.shape
    np.testing.assert_array_equal(got, expected)
    out = np.empty_like(x)
    assert erf_fallback(x, out=out) is out
    np.testing.assert_array_equal(out, expected)
