"""Every differentiable primitive's VJP rule against central differences (float64).

One test (at least) per op class with a VJP rule; `OP_TESTS` maps each op class name
to its test, and `test_every_differentiable_op_has_a_gradient_test` fails when an op
is added to `pyasg.asg.ops.OPS` with a VJP rule (or marked differentiable) but no
test here. Each op test also checks, through `make_graph`, that the function it
differentiates really records that op, so a test cannot silently stop covering it.

Values are drawn away from the op's singularities and kinks (positive arguments to
log/sqrt, denominators away from 0, distinct values for max/min/abs, quotients away
from integers for mod/floor_divide), and away from stationary points where the
derivative is tiny next to the value (sin near pi/2, pow with base 1 or exponent 0):
central differences with step 1e-6 carry a rounding error of ~1e-10 * |value|, so a
derivative 1e-5 times smaller than the value cannot be checked to 1e-6.
Expected values come from central differences or from numpy by hand, never from pyasg.
"""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import check_grad, projection
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import pyasg
from pyasg.array.primitives import bind, pad_general, scatter_add, slice_axes
from pyasg.asg import ops
from pyasg.transforms.vjp import VJP_RULES

# --------------------------------------------------------------------------- strategies

SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)
SHAPES_1 = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)
BROADCAST_2 = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3,
                                                min_side=1, max_side=4)
BROADCAST_3 = hnp.mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=3,
                                                min_side=1, max_side=4)
SEEDS = st.integers(0, 2**32 - 1)


def floats(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


def away_from_zero(lo: float, hi: float) -> st.SearchStrategy[float]:
    """|v| in [lo, hi], either sign."""
    return st.one_of(floats(lo, hi), floats(-hi, -lo))


def arrays(shape: tuple[int, ...], elements: st.SearchStrategy[float]) -> st.SearchStrategy:
    return hnp.arrays(np.float64, shape, elements=elements)


def distinct(seed: int, *shapes: tuple[int, ...], gap: float = 0.05,
             offset: float = 0.0) -> list[np.ndarray]:
    """Arrays whose values are all different (across all arrays, at least `gap` apart)."""
    sizes = [int(np.prod(s, dtype=np.int64)) for s in shapes]
    rng = np.random.default_rng(seed)
    grid = (np.arange(sum(sizes)) - sum(sizes) / 2) * gap + offset
    values = rng.permutation(grid) + rng.uniform(0, gap / 4)
    out, k = [], 0
    for s, n in zip(shapes, sizes):
        out.append(values[k:k + n].reshape(s))
        k += n
    return out


def graph_ops(f, *args) -> set[str]:  # noqa: ANN001
    graph = pyasg.make_graph(f)(*args)
    return {type(node.op).__name__ for node in graph.nodes.values()}


def check(op_name: str, f, *args, argnums=0, **kw) -> None:  # noqa: ANN001
    """check_grad, after asserting that f really records `op_name`."""
    recorded = graph_ops(f, *args)
    assert op_name in recorded, f"the test of {op_name} does not record it: {sorted(recorded)}"
    check_grad(f, *args, argnums=argnums, **kw)


# --------------------------------------------------------------------------- unary


UNARY = {
    # op class name: (function, strategy of its argument's elements)
    "Neg": (pyasg.neg, floats(-5, 5)),
    "Abs": (pyasg.abs, away_from_zero(0.1, 5)),
    "Sign": (pyasg.sign, away_from_zero(0.1, 5)),
    "Exp": (pyasg.exp, floats(-4, 4)),
    "Log": (pyasg.log, floats(0.1, 10)),
    "Log1p": (pyasg.log1p, floats(-0.8, 10)),
    "Expm1": (pyasg.expm1, floats(-4, 4)),
    "Sqrt": (pyasg.sqrt, floats(0.1, 10)),
    "Sin": (pyasg.sin, st.one_of(floats(-1.2, 1.2), floats(2.0, 4.2))),  # |cos| >= 0.36
    "Cos": (pyasg.cos, st.one_of(floats(0.4, 2.7), floats(-2.7, -0.4))),  # |sin| >= 0.38
    "Tanh": (pyasg.tanh, floats(-3, 3)),
    "Erf": (pyasg.erf, floats(-2, 2)),
}


def _unary_test(name: str):  # noqa: ANN202
    fn, elements = UNARY[name]

    @settings(deadline=None)
    @given(data=st.data())
    def test(data: st.DataObject) -> None:
        x = data.draw(SHAPES.flatmap(lambda s: arrays(s, elements)), label="x")
        check(name, fn, x)

    test.__name__ = f"test_grad_{name.lower()}"
    return test


test_grad_neg = _unary_test("Neg")
test_grad_abs = _unary_test("Abs")
test_grad_sign = _unary_test("Sign")
test_grad_exp = _unary_test("Exp")
test_grad_log = _unary_test("Log")
test_grad_log1p = _unary_test("Log1p")
test_grad_expm1 = _unary_test("Expm1")
test_grad_sqrt = _unary_test("Sqrt")
test_grad_sin = _unary_test("Sin")
test_grad_cos = _unary_test("Cos")
test_grad_tanh = _unary_test("Tanh")
test_grad_erf = _unary_test("Erf")


def test_grad_sign_and_abs_hand_values() -> None:
    x = np.array([-2.0, -0.5, 0.25, 3.0])
    np.testing.assert_array_equal(pyasg.grad(lambda v: pyasg.sign(v).sum())(x), np.zeros(4))
    np.testing.assert_array_equal(pyasg.grad(lambda v: pyasg.abs(v).sum())(x),
                                  np.array([-1.0, -1.0, 1.0, 1.0]))


# --------------------------------------------------------------------------- binary


def _bin_data(data: st.DataObject, a_elems, b_elems):  # noqa: ANN001, ANN202
    (sa, sb), _ = data.draw(BROADCAST_2, label="shapes")
    a = data.draw(arrays(sa, a_elems), label="a")
    b = data.draw(arrays(sb, b_elems), label="b")
    return a, b


BINARY_SMOOTH = {
    "Add": (pyasg.add, floats(-5, 5), floats(-5, 5)),
    "Sub": (pyasg.sub, floats(-5, 5), floats(-5, 5)),
    "Mul": (pyasg.mul, floats(-5, 5), floats(-5, 5)),
    "Div": (pyasg.div, floats(-5, 5), away_from_zero(0.5, 3)),
    # base away from 1 and exponent away from 0, or one partial derivative is ~0
    "Pow": (pyasg.power, st.one_of(floats(0.3, 0.7), floats(1.4, 3)), away_from_zero(0.3, 2.5)),
}


def _binary_test(name: str):  # noqa: ANN202
    fn, a_elems, b_elems = BINARY_SMOOTH[name]

    @settings(deadline=None)
    @given(data=st.data())
    def test(data: st.DataObject) -> None:
        a, b = _bin_data(data, a_elems, b_elems)
        check(name, fn, a, b, argnums=(0, 1))

    test.__name__ = f"test_grad_{name.lower()}_broadcast"
    return test


test_grad_add_broadcast = _binary_test("Add")
test_grad_sub_broadcast = _binary_test("Sub")
test_grad_mul_broadcast = _binary_test("Mul")
test_grad_div_broadcast = _binary_test("Div")
test_grad_pow_broadcast = _binary_test("Pow")


@pytest.mark.parametrize("name", sorted(BINARY_SMOOTH))
@pytest.mark.parametrize("sa, sb", [((4, 1), (1, 8)), ((3,), (2, 3)), ((2, 3), (3,)),
                                    ((5,), ()), ((), (2, 2))])
def test_grad_binary_explicit_broadcasts(name: str, sa: tuple, sb: tuple) -> None:
    fn, _, _ = BINARY_SMOOTH[name]
    rng = np.random.default_rng(7)
    a = rng.uniform(0.5, 2.0, sa)  # positive: fine for every op here (pow base, divisor)
    b = rng.uniform(0.5, 2.0, sb) * np.where(rng.random(sb) < 0.5, -1.0, 1.0)
    check(name, fn, a, b, argnums=(0, 1))


def test_grad_vector_divided_by_scalar_sums_over_the_vector() -> None:
    x = np.array([1.5, -2.0, 0.25, 4.0, -0.75])
    s = np.array(1.7)
    gx, gs = pyasg.grad(lambda x, s: (x / s).sum(), argnums=(0, 1))(x, s)
    assert np.shape(gs) == ()
    np.testing.assert_allclose(gs, -np.sum(x / s**2), rtol=1e-12)
    np.testing.assert_allclose(gx, np.full(5, 1 / 1.7), rtol=1e-12)
    check_grad(pyasg.div, x, s, argnums=(0, 1))


def test_grad_broadcast_4x1_plus_1x8_hand_values() -> None:
    a = np.arange(4.0).reshape(4, 1)
    b = np.arange(8.0).reshape(1, 8)
    r = projection((4, 8))
    ga, gb = pyasg.grad(lambda a, b: ((a + b) * r).sum(), argnums=(0, 1))(a, b)
    np.testing.assert_allclose(ga, r.sum(axis=1, keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(gb, r.sum(axis=0, keepdims=True), rtol=1e-12)


@settings(deadline=None)
@given(data=st.data(), seed=SEEDS)
def test_grad_maximum_broadcast(data: st.DataObject, seed: int) -> None:
    (sa, sb), _ = data.draw(BROADCAST_2, label="shapes")
    a, b = distinct(seed, sa, sb)  # no ties: max is differentiable everywhere
    check("Maximum", pyasg.maximum, a, b, argnums=(0, 1))


@settings(deadline=None)
@given(data=st.data(), seed=SEEDS)
def test_grad_minimum_broadcast(data: st.DataObject, seed: int) -> None:
    (sa, sb), _ = data.draw(BROADCAST_2, label="shapes")
    a, b = distinct(seed, sa, sb)
    check("Minimum", pyasg.minimum, a, b, argnums=(0, 1))


def test_grad_maximum_minimum_hand_values() -> None:
    a = np.array([1.0, 5.0, -2.0])
    b = np.array([3.0, 2.0, -1.0])
    ga, gb = pyasg.grad(lambda a, b: pyasg.maximum(a, b).sum(), argnums=(0, 1))(a, b)
    np.testing.assert_array_equal(ga, [0.0, 1.0, 0.0])
    np.testing.assert_array_equal(gb, [1.0, 0.0, 1.0])
    ga, gb = pyasg.grad(lambda a, b: pyasg.minimum(a, b).sum(), argnums=(0, 1))(a, b)
    np.testing.assert_array_equal(ga, [1.0, 0.0, 1.0])
    np.testing.assert_array_equal(gb, [0.0, 1.0, 0.0])


# mod / floor_divide: a / b must stay away from integers (their discontinuities).
# With |b| in [1, 1.2] and |a| in [0.3, 0.8] or [1.5, 1.9], |a / b| lies in
# [0.25, 0.8] or [1.25, 1.9] for every pair, whatever the broadcast pairs up.
MOD_A = st.one_of(floats(0.3, 0.8), floats(1.5, 1.9), floats(-0.8, -0.3), floats(-1.9, -1.5))
MOD_B = away_from_zero(1.0, 1.2)


@settings(deadline=None)
@given(data=st.data())
def test_grad_mod_broadcast(data: st.DataObject) -> None:
    a, b = _bin_data(data, MOD_A, MOD_B)
    check("Mod", pyasg.mod, a, b, argnums=(0, 1))


@settings(deadline=None)
@given(data=st.data())
def test_grad_floor_divide_broadcast(data: st.DataObject) -> None:
    a, b = _bin_data(data, MOD_A, MOD_B)
    check("FloorDiv", pyasg.floor_divide, a, b, argnums=(0, 1))


def test_grad_mod_hand_values() -> None:
    a = np.array([1.7, -0.5, 1.6])
    b = np.array([1.1, 1.1, -1.05])
    ga, gb = pyasg.grad(lambda a, b: pyasg.mod(a, b).sum(), argnums=(0, 1))(a, b)
    np.testing.assert_allclose(ga, np.ones(3), rtol=0, atol=0)
    np.testing.assert_allclose(gb, -np.floor(a / b), rtol=0, atol=0)


# --------------------------------------------------------------------------- where, cast,
# stop_gradient


@settings(deadline=None)
@given(data=st.data(), seed=SEEDS)
def test_grad_where_both_branches_broadcast(data: st.DataObject, seed: int) -> None:
    (sc, sx, sy), _ = data.draw(BROADCAST_3, label="shapes")
    cond = np.random.default_rng(seed).random(sc) < 0.5
    x = data.draw(arrays(sx, floats(-5, 5)), label="x")
    y = data.draw(arrays(sy, floats(-5, 5)), label="y")
    check("Where", lambda c, x, y: pyasg.where(c, x, y), cond, x, y, argnums=(1, 2))


def test_grad_where_hand_values_with_broadcast_condition() -> None:
    cond = np.array([[True], [False]])  # [2, 1], broadcast against [2, 3]
    x = np.arange(6.0).reshape(2, 3)
    y = np.array([10.0, 20.0, 30.0])  # [3]
    r = projection((2, 3))
    gx, gy = pyasg.grad(lambda x, y: (pyasg.where(cond, x, y) * r).sum(), argnums=(0, 1))(x, y)
    np.testing.assert_allclose(gx, np.where(cond, r, 0.0), rtol=1e-15)
    np.testing.assert_allclose(gy, np.where(cond, 0.0, r).sum(axis=0), rtol=1e-15)


@settings(deadline=None)
@given(x=SHAPES.flatmap(lambda s: arrays(s, floats(-3, 3))))
def test_grad_cast_through_float32(x: np.ndarray) -> None:
    # The float32 round trip rounds x to ~6e-8 relative. A central difference with the
    # usual step 1e-6 would see that rounding as ~6% noise, so the step is 1e-3 (the
    # function is linear after the cast, so the large step adds no truncation error)
    # and the tolerance 1e-4 covers what rounding remains (~1.2e-7 / 1e-3).
    def f(x):  # noqa: ANN001, ANN202
        return pyasg.astype(pyasg.astype(x, "float32"), "float64") * 3.0

    check("Cast", f, x, rtol=1e-4, eps=1e-3)


def test_grad_cast_float32_input_gives_float32_gradient() -> None:
    x = np.array([0.5, -1.25, 2.0], np.float32)
    g = pyasg.grad(lambda x: (pyasg.astype(x, "float64") ** 2).sum())(x)
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, 2 * x.astype(np.float64), rtol=1e-7)
    # and a float64 -> float32 cast inside a float64 function
    x64 = np.array([0.5, -1.25, 2.0])
    g64 = pyasg.grad(lambda x: pyasg.astype(pyasg.astype(x, "float32") * 2.0, "float64").sum())(
        x64)
    assert g64.dtype == np.float64
    np.testing.assert_allclose(g64, np.full(3, 2.0), rtol=1e-7)


def test_grad_stop_gradient_is_exactly_zero() -> None:
    x = np.array([[0.5, -1.5, 2.0], [3.0, 0.25, -4.0]])
    assert "StopGradient" in graph_ops(lambda x: pyasg.stop_gradient(x) * x, x)
    # d/dx sum(sg(x) * x) = sg(x) = x, not 2x
    g = pyasg.grad(lambda x: (pyasg.stop_gradient(x) * x).sum())(x)
    np.testing.assert_array_equal(g, x)
    # the only path goes through stop_gradient: exactly zero
    g0 = pyasg.grad(lambda x: (pyasg.exp(pyasg.stop_gradient(x)) ** 2).sum())(x)
    np.testing.assert_array_equal(g0, np.zeros_like(x))
    # d/dx sum(x * sg(x)^2 + sg(x)) = x^2
    g2 = pyasg.grad(lambda x: (x * pyasg.stop_gradient(x) ** 2 + pyasg.stop_gradient(x)).sum())(x)
    np.testing.assert_allclose(g2, x**2, rtol=1e-15)


# --------------------------------------------------------------------------- reductions


@st.composite
def axes_and_array(draw, elements=None):  # noqa: ANN001, ANN201
    shape = draw(SHAPES)
    nd = len(shape)
    axis = draw(st.one_of(
        st.none(),
        st.lists(st.integers(0, max(nd - 1, 0)), unique=True, max_size=nd).map(tuple),
        st.integers(-nd, nd - 1) if nd else st.none(),
    ))
    if isinstance(axis, tuple):  # some negative spellings of the same axes
        axis = tuple(a - nd if draw(st.booleans()) else a for a in axis)
    keepdims = draw(st.booleans())
    return shape, axis, keepdims


@settings(deadline=None)
@given(spec=axes_and_array(), data=st.data())
def test_grad_sum_axes(spec: tuple, data: st.DataObject) -> None:
    shape, axis, keepdims = spec
    x = data.draw(arrays(shape, floats(-5, 5)), label="x")
    check("Sum", lambda x: pyasg.sum(x, axis=axis, keepdims=keepdims), x)


@settings(deadline=None)
@given(spec=axes_and_array(), seed=SEEDS)
def test_grad_max_axes(spec: tuple, seed: int) -> None:
    shape, axis, keepdims = spec
    (x,) = distinct(seed, shape)  # distinct values: a unique maximum per slice
    check("Max", lambda x: pyasg.max(x, axis=axis, keepdims=keepdims), x)


def test_grad_max_hand_value() -> None:
    x = np.array([[1.0, 7.0, 3.0], [9.0, -2.0, 4.0]])
    g = pyasg.grad(lambda x: pyasg.max(x, axis=1).sum())(x)
    np.testing.assert_array_equal(g, [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])


def test_grad_sum_hand_value_keepdims() -> None:
    x = np.arange(24.0).reshape(2, 3, 4)
    r = projection((2, 1, 4))
    g = pyasg.grad(lambda x: (pyasg.sum(x, axis=1, keepdims=True) * r).sum())(x)
    np.testing.assert_allclose(g, np.broadcast_to(r, (2, 3, 4)), rtol=1e-15)


# --------------------------------------------------------------------------- shape ops


@st.composite
def reshapes(draw):  # noqa: ANN001, ANN201
    shape = draw(SHAPES)
    size = int(np.prod(shape, dtype=np.int64))
    # a random factorisation of size into 1..3 factors, possibly with a -1
    dims = []
    rest = size
    for _ in range(draw(st.integers(0, 2))):
        divisors = [d for d in range(1, rest + 1) if rest % d == 0]
        d = draw(st.sampled_from(divisors))
        dims.append(d)
        rest //= d
    dims.append(rest)
    dims = draw(st.permutations(dims))
    if draw(st.booleans()):
        dims[draw(st.integers(0, len(dims) - 1))] = -1
    return shape, tuple(dims)


@settings(deadline=None)
@given(spec=reshapes(), data=st.data())
def test_grad_reshape(spec: tuple, data: st.DataObject) -> None:
    shape, new = spec
    x = data.draw(arrays(shape, floats(-5, 5)), label="x")
    f = lambda x: pyasg.reshape(x, new) * 1.5  # noqa: E731
    target = np.empty(shape).reshape(new).shape
    if target != shape:
        check("Reshape", f, x)
    else:
        check_grad(f, x)  # an identity reshape records nothing; still differentiable


def test_grad_reshape_with_minus_one_explicit() -> None:
    x = np.random.default_rng(1).standard_normal((2, 3, 4))
    check("Reshape", lambda x: pyasg.reshape(x, (-1, 4)) ** 2, x)
    check("Reshape", lambda x: x.reshape(3, -1) ** 2, x)
    check("Reshape", lambda x: pyasg.reshape(x, (-1,)) ** 2, x)


@settings(deadline=None)
@given(data=st.data())
def test_grad_transpose(data: st.DataObject) -> None:
    shape = data.draw(hnp.array_shapes(min_dims=2, max_dims=4, min_side=1, max_side=4),
                      label="shape")
    perm = data.draw(st.permutations(range(len(shape))).filter(lambda p: p != sorted(p)),
                     label="perm")
    x = data.draw(arrays(shape, floats(-5, 5)), label="x")
    check("Transpose", lambda x: pyasg.transpose(x, perm), x)


def test_grad_transpose_T_attribute() -> None:
    x = np.random.default_rng(2).standard_normal((3, 5))
    check("Transpose", lambda x: x.T @ np.arange(3.0), x)


@settings(deadline=None)
@given(data=st.data())
def test_grad_broadcast_to(data: st.DataObject) -> None:
    (src,), target = data.draw(hnp.mutually_broadcastable_shapes(
        num_shapes=1, min_dims=0, max_dims=3, min_side=1, max_side=4,
        base_shape=data.draw(SHAPES_1, label="base")), label="shapes")
    x = data.draw(arrays(src, floats(-5, 5)), label="x")
    f = lambda x: pyasg.broadcast_to(x, target)  # noqa: E731
    if src != target:
        check("BroadcastTo", f, x)
    else:
        check_grad(f, x)


def test_grad_broadcast_to_hand_value() -> None:
    x = np.array([[1.0], [2.0]])
    r = projection((3, 2, 4))
    g = pyasg.grad(lambda x: (pyasg.broadcast_to(x, (3, 2, 4)) * r).sum())(x)
    np.testing.assert_allclose(g, r.sum(axis=(0, 2))[:, None], rtol=1e-13)


@pytest.mark.parametrize("index", [
    (slice(None, None, 2),),
    (slice(None, None, -1),),
    (slice(1, 3), slice(None, None, -2)),
    (slice(-1, 0, -1), slice(1, None, 3)),
    (Ellipsis, slice(None, None, -3)),
    (1, slice(None, None, -1)),
    (slice(None), None, slice(3, 0, -2)),
], ids=repr)
def test_grad_slice_explicit(index: tuple) -> None:
    x = np.random.default_rng(3).standard_normal((4, 6))
    check("Slice", lambda x: x[index], x)


def test_grad_slice_hand_value_reverse_step() -> None:
    x = np.arange(12.0).reshape(3, 4)
    r = projection((2, 2))
    g = pyasg.grad(lambda x: (x[1:3, ::-2] * r).sum())(x)
    expected = np.zeros((3, 4))
    expected[1:3, ::-2] = r
    np.testing.assert_array_equal(g, expected)


@st.composite
def slices(draw):  # noqa: ANN001, ANN201
    shape = draw(SHAPES_1)
    index = []
    for d in shape:
        start = draw(st.one_of(st.none(), st.integers(-d - 1, d + 1)))
        stop = draw(st.one_of(st.none(), st.integers(-d - 1, d + 1)))
        step = draw(st.one_of(st.none(), st.integers(-3, 3).filter(bool)))
        index.append(slice(start, stop, step))
    return shape, tuple(index)


@settings(deadline=None)
@given(spec=slices(), data=st.data())
def test_grad_slice_generated(spec: tuple, data: st.DataObject) -> None:
    shape, index = spec
    x = data.draw(arrays(shape, floats(-5, 5)), label="x")
    expected_shape = np.empty(shape)[index].shape
    f = lambda x: x[index] * 2.0  # noqa: E731
    out = pyasg.jit(f)(x)
    np.testing.assert_array_equal(out, x[index] * 2.0)  # forward agrees with numpy
    assert out.shape == expected_shape
    check_grad(f, x)
    if expected_shape != shape:
        assert "Slice" in graph_ops(f, x)


@settings(deadline=None)
@given(data=st.data())
def test_grad_slice_axes_primitive(data: st.DataObject) -> None:
    shape = data.draw(SHAPES_1, label="shape")
    starts, stops, steps = [], [], []
    for d in shape:
        s = slice(data.draw(st.integers(-d, d - 1)), data.draw(st.integers(-d - 1, d)),
                  data.draw(st.integers(-3, 3).filter(bool))).indices(d)
        if len(range(*s)) == 0:
            s = (0, d, 1)
        elif s[2] < 0 and s[1] < 0:
            s = (s[0], -1, s[2])
        starts.append(s[0]), stops.append(s[1]), steps.append(s[2])
    x = data.draw(arrays(shape, floats(-5, 5)), label="x")
    check_grad(lambda x: slice_axes(x, starts, stops, steps), x)


@st.composite
def pad_widths(draw):  # noqa: ANN001, ANN201
    shape = draw(SHAPES_1)
    widths = [(draw(st.integers(0, 2)), draw(st.integers(0, 2)), draw(st.integers(0, 2)))
              for _ in shape]
    if all(w == (0, 0, 0) for w in widths):
        widths[0] = (1, 0, 1)
    return shape, widths


@settings(deadline=None)
@given(spec=pad_widths(), data=st.data(), value=floats(-2, 2))
def test_grad_pad_interior(spec: tuple, data: st.DataObject, value: float) -> None:
    shape, widths = spec
    x = data.draw(arrays(shape, floats(-5, 5)), label="x")
    check("Pad", lambda x: pad_general(x, widths, value), x)


def test_grad_pad_hand_value_interior() -> None:
    x = np.array([1.0, 2.0, 3.0])
    r = projection((1 + 3 + 2 * 2 + 2,))  # low 1, high 2, interior 2: 10 elements
    g = pyasg.grad(lambda x: (pad_general(x, [(1, 2, 2)], 5.0) * r).sum())(x)
    np.testing.assert_array_equal(g, r[1:8:3])


def test_grad_pad_numpy_form() -> None:
    x = np.random.default_rng(4).standard_normal((2, 3))
    check("Pad", lambda x: pyasg.pad(x, ((1, 0), (2, 1)), constant_values=-1.0), x)


@settings(deadline=None)
@given(data=st.data(), n=st.integers(2, 3))
def test_grad_concatenate(data: st.DataObject, n: int) -> None:
    base = data.draw(SHAPES_1, label="shape")
    axis = data.draw(st.integers(-len(base), len(base) - 1), label="axis")
    xs = []
    for k in range(n):
        s = list(base)
        s[axis] = data.draw(st.integers(1, 3), label=f"size{k}")
        xs.append(data.draw(arrays(tuple(s), floats(-5, 5)), label=f"x{k}"))
    check("Concatenate", lambda *xs: pyasg.concatenate(xs, axis=axis), *xs,
          argnums=tuple(range(n)))


def test_grad_concatenate_same_operand_twice() -> None:
    x = np.array([1.0, -2.0, 3.0])
    r = projection((6,))
    g = pyasg.grad(lambda x: (pyasg.concatenate([x, x]) * r).sum())(x)
    np.testing.assert_allclose(g, r[:3] + r[3:], rtol=1e-15)


# --------------------------------------------------------------------------- matmul


@pytest.mark.parametrize("sa, sb", [
    ((3, 4), (4, 5)),
    ((2, 3, 4), (2, 4, 5)),
    ((2, 3, 4), (4, 5)),
    ((3, 4), (2, 4, 5)),
    ((2, 1, 3, 4), (3, 4, 2)),
    ((4,), (4, 5)),
    ((3, 4), (4,)),
    ((4,), (4,)),
    ((2, 3, 4), (4,)),
    ((4,), (2, 4, 3)),
    ((1, 4), (4, 1)),
], ids=str)
def test_grad_matmul(sa: tuple, sb: tuple) -> None:
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal(sa), rng.standard_normal(sb)
    out = pyasg.jit(pyasg.matmul)(a, b)
    np.testing.assert_allclose(out, a @ b, rtol=1e-12, atol=1e-12)
    check("MatMul", pyasg.matmul, a, b, argnums=(0, 1))


def test_grad_matmul_hand_value() -> None:
    rng = np.random.default_rng(6)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 5))
    r = projection((3, 5))
    ga, gb = pyasg.grad(lambda a, b: ((a @ b) * r).sum(), argnums=(0, 1))(a, b)
    np.testing.assert_allclose(ga, r @ b.T, rtol=1e-12)
    np.testing.assert_allclose(gb, a.T @ r, rtol=1e-12)


@settings(deadline=None)
@given(data=st.data())
def test_grad_matmul_generated_batches(data: st.DataObject) -> None:
    (ba, bb), _ = data.draw(hnp.mutually_broadcastable_shapes(
        num_shapes=2, min_dims=0, max_dims=2, min_side=1, max_side=3), label="batch")
    n, k, m = (data.draw(st.integers(1, 4), label=c) for c in "nkm")
    a = data.draw(arrays(ba + (n, k), floats(-3, 3)), label="a")
    b = data.draw(arrays(bb + (k, m), floats(-3, 3)), label="b")
    check("MatMul", pyasg.matmul, a, b, argnums=(0, 1))


# --------------------------------------------------------------------------- gather, scatter


@settings(deadline=None)
@given(data=st.data())
def test_grad_gather_repeated_indices(data: st.DataObject) -> None:
    shape = data.draw(SHAPES_1, label="shape")
    axis = data.draw(st.integers(0, len(shape) - 1), label="axis")
    d = shape[axis]
    ishape = data.draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=5),
                       label="index shape")
    idx = data.draw(hnp.arrays(np.int64, ishape, elements=st.integers(0, d - 1)), label="idx")
    x = data.draw(arrays(shape, floats(-5, 5)), label="x")
    check("Gather", lambda x, i: pyasg.take(x, i, axis=axis), x, idx)
    # by hand: the gradient of sum(take(x, idx) * r) scatters r back with np.add.at
    out_shape = shape[:axis] + ishape + shape[axis + 1:]
    r = projection(out_shape)
    g = pyasg.grad(lambda x: (pyasg.take(x, idx, axis=axis) * r).sum())(x)
    expected = np.zeros(shape)
    moved = np.moveaxis(expected, axis, 0)  # a view: np.add.at writes into expected
    r_moved = np.moveaxis(r.reshape(shape[:axis] + (idx.size,) + shape[axis + 1:]), axis, 0)
    np.add.at(moved, idx.reshape(-1), r_moved)
    np.testing.assert_allclose(g, expected, rtol=1e-13, atol=1e-13)


def test_grad_gather_accumulates_repeated_rows() -> None:
    x = np.arange(12.0).reshape(4, 3)
    idx = np.array([2, 0, 2, 2, 3])
    r = projection((5, 3))
    g = pyasg.grad(lambda x: (pyasg.take(x, idx) * r).sum())(x)
    expected = np.zeros((4, 3))
    np.add.at(expected, idx, r)
    np.testing.assert_allclose(g, expected, rtol=1e-14)
    np.testing.assert_allclose(g[2], r[0] + r[2] + r[3], rtol=1e-14)
    np.testing.assert_array_equal(g[1], np.zeros(3))


@settings(deadline=None)
@given(data=st.data())
def test_grad_scatter_add(data: st.DataObject) -> None:
    ishape = data.draw(hnp.array_shapes(min_dims=1, max_dims=2, min_side=1, max_side=4),
                       label="index shape")
    lead = data.draw(hnp.array_shapes(min_dims=0, max_dims=1, min_side=1, max_side=3),
                     label="lead")
    tail = data.draw(hnp.array_shapes(min_dims=0, max_dims=1, min_side=1, max_side=3),
                     label="tail")
    size = data.draw(st.integers(1, 5), label="size")
    axis = len(lead)
    idx = data.draw(hnp.arrays(np.int64, ishape, elements=st.integers(0, size - 1)), label="idx")
    u = data.draw(arrays(lead + ishape + tail, floats(-5, 5)), label="updates")
    check("ScatterAdd", lambda u, i: scatter_add(u, i, axis, size), u, idx)
    # by hand: d/du sum(scatter_add(u) * r) = r taken back at the indices
    r = projection(lead + (size,) + tail)
    g = pyasg.grad(lambda u: (scatter_add(u, idx, axis, size) * r).sum())(u)
    np.testing.assert_allclose(g, np.take(r, idx, axis=axis), rtol=1e-14)


def test_scatter_add_forward_accumulates() -> None:
    u = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    idx = np.array([1, 1, 0])
    out = pyasg.jit(lambda u: scatter_add(u, idx, 0, 3))(u)
    expected = np.zeros((3, 2))
    np.add.at(expected, idx, u)
    np.testing.assert_array_equal(out, expected)


# --------------------------------------------------------------------------- convolutions


def np_conv2d(x: np.ndarray, w: np.ndarray, stride: tuple, padding: tuple, dilation: tuple,
              groups: int) -> np.ndarray:
    """Direct cross-correlation in numpy (PyTorch's conv2d), one kernel tap at a time."""
    n, _, h, wd = x.shape
    o, cg, kh, kw = w.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wo = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    og = o // groups
    out = np.zeros((n, o, ho, wo))
    for gi in range(groups):
        xs = xp[:, gi * cg:(gi + 1) * cg]
        ws = w[gi * og:(gi + 1) * og]
        for i in range(kh):
            for j in range(kw):
                patch = xs[:, :, i * dh: i * dh + sh * (ho - 1) + 1: sh,
                           j * dw: j * dw + sw * (wo - 1) + 1: sw]
                out[:, gi * og:(gi + 1) * og] += np.einsum("nchw,oc->nohw", patch, ws[:, :, i, j])
    return out


@st.composite
def conv_configs(draw):  # noqa: ANN001, ANN201
    groups = draw(st.integers(1, 2))
    cin, cout = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, 1)), draw(st.integers(0, 1)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    size = tuple(draw(st.integers(max(1, d * (k - 1) + 1 - 2 * p), 5))
                 for k, p, d in zip(kernel, padding, dilation))  # at least one output
    out = tuple((n + 2 * p - d * (k - 1) - 1) // s + 1
                for n, k, s, p, d in zip(size, kernel, stride, padding, dilation))
    batch = draw(st.integers(1, 2))
    seed = draw(SEEDS)
    return dict(groups=groups, cin=cin, cout=cout, kernel=kernel, stride=stride,
                padding=padding, dilation=dilation, size=size, out=out, batch=batch, seed=seed)


def _conv_arrays(c: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(c["seed"])
    x = rng.standard_normal((c["batch"], c["cin"]) + c["size"])
    w = rng.standard_normal((c["cout"], c["cin"] // c["groups"]) + c["kernel"])
    g = rng.standard_normal((c["batch"], c["cout"]) + c["out"])
    return x, w, g


def _conv_params(c: dict) -> dict:
    return {k: c[k] for k in ("stride", "padding", "dilation", "groups")}


@settings(deadline=None)
@given(c=conv_configs())
def test_grad_conv2d(c: dict) -> None:
    x, w, _ = _conv_arrays(c)
    p = _conv_params(c)

    def f(x, w):  # noqa: ANN001, ANN202
        return pyasg.conv2d(x, w, **p)

    np.testing.assert_allclose(pyasg.jit(f)(x, w), np_conv2d(x, w, **p), rtol=1e-12, atol=1e-12)
    check("Conv2d", f, x, w, argnums=(0, 1))


@settings(deadline=None)
@given(c=conv_configs())
def test_grad_conv2d_backward_input(c: dict) -> None:
    x, w, g = _conv_arrays(c)
    p = _conv_params(c)
    op = ops.Conv2dBackwardInput(**p, input_size=c["size"])

    def f(g, w):  # noqa: ANN001, ANN202
        return bind(op, g, w)

    # forward: the adjoint of conv2d in x, <conv(x, w), g> = <x, backward_input(g, w)>
    np.testing.assert_allclose((x * pyasg.jit(f)(g, w)).sum(),
                               (np_conv2d(x, w, **p) * g).sum(), rtol=1e-10, atol=1e-10)
    check("Conv2dBackwardInput", f, g, w, argnums=(0, 1))


@settings(deadline=None)
@given(c=conv_configs())
def test_grad_conv2d_backward_weight(c: dict) -> None:
    x, w, g = _conv_arrays(c)
    p = _conv_params(c)
    op = ops.Conv2dBackwardWeight(**p, kernel_size=c["kernel"])

    def f(x, g):  # noqa: ANN001, ANN202
        return bind(op, x, g)

    # forward: the adjoint of conv2d in w, <conv(x, w), g> = <w, backward_weight(x, g)>
    np.testing.assert_allclose((w * pyasg.jit(f)(x, g)).sum(),
                               (np_conv2d(x, w, **p) * g).sum(), rtol=1e-10, atol=1e-10)
    check("Conv2dBackwardWeight", f, x, g, argnums=(0, 1))


@settings(deadline=None, max_examples=10)
@given(causal=st.booleans(), layout=st.sampled_from(["bhtd", "bthd"]),
       t=st.integers(1, 4), s=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_grad_attention(causal: bool, layout: str, t: int, s: int, seed: int) -> None:
    # q, k, v and a broadcast bias; the gradient graph is the attention gradient ops
    # (tests/test_attention_op.py checks them against the reference and on wgpu)
    rng = np.random.default_rng(seed)
    op = ops.Attention(0.7, causal, layout)
    q, k, v = (rng.standard_normal(op.shape(1, 2, n, d)) for n, d in ((t, 3), (s, 3), (s, 2)))
    bias = rng.standard_normal((1, 2, 1, s))

    def f(q, k, v, bias):  # noqa: ANN001, ANN202
        return bind(op, q, k, v, bias)

    check("Attention", f, q, k, v, bias, argnums=(0, 1, 2, 3))


def test_grad_conv2d_hand_value() -> None:
    # a 1x1 convolution is a matmul over channels: d/dw sum(conv(x, w) * r) = sum r x^T
    rng = np.random.default_rng(8)
    x, w = rng.standard_normal((2, 3, 4, 5)), rng.standard_normal((6, 3, 1, 1))
    r = projection((2, 6, 4, 5))
    gx, gw = pyasg.grad(lambda x, w: (pyasg.conv2d(x, w) * r).sum(), argnums=(0, 1))(x, w)
    np.testing.assert_allclose(gw[:, :, 0, 0], np.einsum("nohw,nchw->oc", r, x), rtol=1e-12)
    np.testing.assert_allclose(gx, np.einsum("nohw,oc->nchw", r, w[:, :, 0, 0]), rtol=1e-12)


def test_second_order_through_conv2d() -> None:
    # d/dw of sum(grad_x(sum(conv(x, w)^2))) checked against central differences in w
    rng = np.random.default_rng(9)
    x, w = rng.standard_normal((1, 2, 4, 4)), rng.standard_normal((2, 2, 2, 2))

    def inner(x, w):  # noqa: ANN001, ANN202
        return (pyasg.conv2d(x, w, stride=1, padding=1) ** 2).sum()

    check_grad(lambda w, x: pyasg.grad(inner)(x, w), w, x)


# --------------------------------------------------------------------------- coverage


def test_grad_fused() -> None:
    """A Fused node (a reduction with prologue and epilogue, and an elementwise chain with
    broadcasting) inside a differentiated function, against central differences."""
    from pyasg.trace.tracer import inline
    from pyasg.transforms.fuse import fuse

    def body(x, b):
        h = pyasg.tanh(x * b + 1.0)
        return pyasg.exp(h.sum(axis=1, keepdims=True) * 0.5) - h * h

    x0 = np.random.default_rng(1).normal(size=(3, 4))
    b0 = np.random.default_rng(2).normal(size=(4,))
    fused = fuse(pyasg.make_graph(body)(x0, b0))
    assert any(n.op.name == "fused" for n in fused.nodes.values())

    def f(x, b):
        return inline(fused, [x, b])[0]

    np.testing.assert_allclose(pyasg.jit(f)(x0, b0), pyasg.jit(body)(x0, b0), rtol=1e-12)
    check_grad(f, x0, b0, argnums=(0, 1))


@pyasg.custom_vjp
def _sin_times(x, y):
    return pyasg.sin(x) * y


_sin_times.defvjp(lambda x, y: (pyasg.sin(x) * y, (x, y)),
                  lambda res, g: (g * pyasg.cos(res[0]) * res[1],
                                  pyasg.sum(g * pyasg.sin(res[0]), axis=0)))


@pyasg.custom_jvp
def _exp_times(x, y):
    return pyasg.exp(x) * y


@_exp_times.defjvp
def _exp_times_jvp(primals, tangents):
    (x, y), (tx, ty) = primals, tangents
    out = pyasg.exp(x) * y
    return out, tx * out + ty * pyasg.exp(x)


@settings(deadline=None)
@given(SHAPES_1, SEEDS)
def test_grad_custom_call(shape, seed) -> None:
    """A CustomCall's VJP: a custom_vjp (the user's bwd, with a broadcast argument) and a
    custom_jvp (the transpose of the user's tangent map), both true derivatives here,
    against central differences of the primal function."""
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(-2, 2, shape), rng.uniform(-2, 2, shape[1:])
    for fn in (_sin_times, _exp_times):
        graph = pyasg.make_graph(fn)(x, y)
        assert [graph[i].op.name for i in graph.live_ids].count("custom_call") == 1
        check_grad(fn, x, y, argnums=(0, 1))
def _records(f, *args, name: str) -> None:  # noqa: ANN001
    assert any(n.op.name == name for n in pyasg.make_graph(f)(*args).nodes.values())


@given(seed=SEEDS, length=st.integers(0, 4), reverse=st.booleans())
@settings(max_examples=10)
def test_grad_scan(seed: int, length: int, reverse: bool) -> None:
    """Every input of a scan (const, carry, xs) and both kinds of output (final carry and
    stacked ys), through a matmul and tanh body."""
    rng = np.random.default_rng(seed)
    w, h0, xs = rng.normal(size=(2, 2)) * 0.7, rng.normal(size=2), rng.normal(size=(length, 2))

    def f(w, h0, xs):
        h, ys = pyasg.scan(lambda h, x: (pyasg.tanh(h @ w + x), h * x), h0, xs, reverse=reverse)
        return pyasg.concatenate([h, ys.reshape(-1)])

    _records(f, w, h0, xs, name="scan")
    check_grad(f, w, h0, xs, argnums=(0, 1, 2))


def test_grad_cond() -> None:
    """Both branches, each closing over a value of its own."""
    a0, b0 = np.random.default_rng(3).normal(size=(2, 3))
    for p in (True, False):
        def f(a, b, p=p):
            k = pyasg.exp(b)
            return pyasg.cond(np.bool_(p), lambda x: pyasg.sin(x) * k, lambda x: x * a, a * b)

        _records(f, a0, b0, name="cond")
        check_grad(f, a0, b0, argnums=(0, 1))


def test_grad_remat() -> None:
    x0, w0 = np.random.default_rng(4).normal(size=(2, 3, 3))

    def f(x, w):
        block = pyasg.checkpoint(lambda x, w: (pyasg.tanh(x @ w), pyasg.sin(x) * w))
        a, b = block(x, w)
        return a * b + a

    _records(f, x0, w0, name="remat")
    check_grad(f, x0, w0, argnums=(0, 1))


def test_grad_while_loop_raises() -> None:
    """No reverse mode through a dynamic trip count (the rule raises, naming the op)."""
    def f(x):
        return pyasg.while_loop(lambda v: v.sum() < 5.0, lambda v: v * 2.0, x)

    _records(f, np.ones(2), name="while_loop")
    with pytest.raises(pyasg.GradError, match="while_loop"):
        pyasg.grad(lambda x: f(x).sum())(np.ones(2))


OP_TESTS = {
    "Scan": test_grad_scan,
    "Cond": test_grad_cond,
    "Remat": test_grad_remat,
    "WhileLoop": test_grad_while_loop_raises,
    "Fused": test_grad_fused,
    "CustomCall": test_grad_custom_call,
    "Neg": test_grad_neg,
    "Abs": test_grad_abs,
    "Sign": test_grad_sign,
    "Exp": test_grad_exp,
    "Log": test_grad_log,
    "Log1p": test_grad_log1p,
    "Expm1": test_grad_expm1,
    "Sqrt": test_grad_sqrt,
    "Sin": test_grad_sin,
    "Cos": test_grad_cos,
    "Tanh": test_grad_tanh,
    "Erf": test_grad_erf,
    "Add": test_grad_add_broadcast,
    "Sub": test_grad_sub_broadcast,
    "Mul": test_grad_mul_broadcast,
    "Div": test_grad_div_broadcast,
    "Pow": test_grad_pow_broadcast,
    "Maximum": test_grad_maximum_broadcast,
    "Minimum": test_grad_minimum_broadcast,
    "Mod": test_grad_mod_broadcast,
    "FloorDiv": test_grad_floor_divide_broadcast,
    "Where": test_grad_where_both_branches_broadcast,
    "Cast": test_grad_cast_through_float32,
    "StopGradient": test_grad_stop_gradient_is_exactly_zero,
    "Sum": test_grad_sum_axes,
    "Max": test_grad_max_axes,
    "Reshape": test_grad_reshape,
    "Transpose": test_grad_transpose,
    "BroadcastTo": test_grad_broadcast_to,
    "Slice": test_grad_slice_generated,
    "Pad": test_grad_pad_interior,
    "Concatenate": test_grad_concatenate,
    "MatMul": test_grad_matmul,
    "Gather": test_grad_gather_repeated_indices,
    "ScatterAdd": test_grad_scatter_add,
    "Conv2d": test_grad_conv2d,
    "Conv2dBackwardInput": test_grad_conv2d_backward_input,
    "Conv2dBackwardWeight": test_grad_conv2d_backward_weight,
    "Attention": test_grad_attention,
}

LEAVES = {"Input", "Constant"}


def test_every_differentiable_op_has_a_gradient_test() -> None:
    with_rule = {cls.__name__ for cls in VJP_RULES} - LEAVES
    declared = {name for name, cls in ops.OPS.items() if cls.differentiable} - LEAVES
    missing_rule = declared - with_rule
    assert not missing_rule, f"differentiable ops without a VJP rule: {sorted(missing_rule)}"
    missing_test = (with_rule | declared) - set(OP_TESTS)
    assert not missing_test, (
        f"ops with a VJP rule but no gradient test in {__name__}: {sorted(missing_test)}; "
        f"add a test and an entry in OP_TESTS")
    unknown = set(OP_TESTS) - set(ops.OPS)
    assert not unknown, f"OP_TESTS names ops that do not exist: {sorted(unknown)}"
    for name, test in OP_TESTS.items():
        assert globals().get(test.__name__) is test, f"{name}: {test.__name__} is not collected"


def test_non_differentiable_ops_have_no_rule() -> None:
    for name, cls in ops.OPS.items():
        if not cls.differentiable:
            assert cls not in VJP_RULES, f"{name} is marked not differentiable but has a rule"
