"""The numpy backend equals the reference backend, the oracle, on every op.

Every op in `OPS` has a case in `CASES` (an op added without one fails
`test_every_op_has_a_parity_case`): hypothesis draws its attributes, shapes (broadcast,
empty axes, 0-d), dtypes (every one the op takes) and values (NaN, infinities, signed
zeros, subnormals, integer extremes). The one-op graph runs on the reference backend
and on numpy as the single kernel (`evaluate`, which allocates) and compiled one of
four `WAYS`: fused or unfused, from the graph's inputs or from computed copies of them
(which the memory plan may overwrite in place, and fusion pulls into the op's group).
Whole graphs follow: fused elementwise chains, and `tests/strategies.py`'s graphs.

They agree bitwise (same values, same NaNs, same signs of zero), except the rows of
`DIFFERENCES`: each is a speed trick of a numpy kernel, with the bound it keeps, and a
test near the end of this file pins the difference itself. The last tests are numpy
bugs this suite found and the cases avoid: strict xfails until they are fixed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from pyrsistent import pvector
from strategies import random_cases

import pyasg
from pyasg.asg import ops
from pyasg.asg.graph import Graph, GraphBuilder
from pyasg.asg.types import TensorType
from pyasg.errors import ShapeError
from pyasg.kernels import numpy as numpy_kernels
from pyasg.kernels import reference
from pyasg.kernels.numpy.elementwise import erf_float32

# NaN, infinities and integer overflow are inputs on purpose: numpy's warnings are noise
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

FLOATS = ("float32", "float64")
INTS = ("int32", "int64", "uint32")
NUMBERS = FLOATS + INTS
DTYPES = ("bool",) + NUMBERS
LEAVES = {"Input", "Constant"}
SPECIALS = (math.nan, math.inf, -math.inf, 0.0, -0.0)

#: erf_float32 is within 1e-7 of erf (its docstring); the reference is erf rounded to
#: float32, within half an ulp of 1 (2**-25) of it
ERF_BOUND = 1e-7 + 2.0**-25


# --------------------------------------------------------------------------- values


def elements(dtype: str, bounded: bool = False) -> st.SearchStrategy:
    """Any value of `dtype`; `bounded`: floats in [-1e3, 1e3] or NaN/inf/+-0, so that
    sums of a few dozen terms cannot overflow in one order and not in another."""
    if dtype == "bool":
        return st.booleans()
    if dtype in INTS:
        info = np.iinfo(dtype)
        return st.integers(int(info.min), int(info.max))
    width = 32 if dtype == "float32" else 64
    if bounded:
        return st.floats(-1e3, 1e3, width=width) | st.sampled_from(SPECIALS)
    return st.floats(width=width)


def array(dtype: str, shape: tuple[int, ...], bounded: bool = False,
          values: st.SearchStrategy | None = None) -> st.SearchStrategy:
    return hnp.arrays(np.dtype(dtype), shape,
                      elements=values if values is not None else elements(dtype, bounded))


SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)


def broadcast(n: int) -> st.SearchStrategy:
    return hnp.mutually_broadcastable_shapes(num_shapes=n, min_dims=0, max_dims=3,
                                             min_side=0, max_side=4).map(lambda s: s.input_shapes)


# --------------------------------------------------------------------------- the cases
# each: a strategy of (op, [arrays]) that the op's shape rule accepts


def _unary(cls: type[ops.Unary]) -> st.SearchStrategy:
    @st.composite
    def case(draw: st.DrawFn) -> tuple:
        dtype = draw(st.sampled_from(FLOATS if cls.float_only else NUMBERS))
        return cls(), [draw(array(dtype, draw(SHAPES)))]
    return case()


def _binary(cls: type[ops.Binary]) -> st.SearchStrategy:
    @st.composite
    def case(draw: st.DrawFn) -> tuple:
        if issubclass(cls, ops.Compare):
            dtype = draw(st.sampled_from(DTYPES))
        else:
            dtype = draw(st.sampled_from(FLOATS if cls.float_only else NUMBERS))
        sa, sb = draw(broadcast(2))
        # numpy refuses integers to negative integer powers (on both backends alike)
        exponents = st.integers(0, 40) if cls is ops.Pow and dtype in INTS else None
        return cls(), [draw(array(dtype, sa)), draw(array(dtype, sb, values=exponents))]
    return case()


@st.composite
def _where(draw: st.DrawFn) -> tuple:
    dtype = draw(st.sampled_from(DTYPES))
    sc, sx, sy = draw(broadcast(3))
    zero = draw(st.sampled_from([None, "x", "y"]))  # the numpy kernel's select-zero path
    if zero is not None and dtype != "bool":
        full = np.broadcast_shapes(sc, sx, sy)
        sc, sx, sy = (full, (), full) if zero == "x" else (full, full, ())
    c, x, y = draw(array("bool", sc)), draw(array(dtype, sx)), draw(array(dtype, sy))
    if zero == "x" and dtype != "bool":
        x = np.zeros((), dtype)
    elif zero == "y" and dtype != "bool":
        y = np.zeros((), dtype)
    return ops.Where(), [c, x, y]


@st.composite
def _cast(draw: st.DrawFn) -> tuple:
    src, dst = draw(st.sampled_from(DTYPES)), draw(st.sampled_from(DTYPES))
    values = None
    if src in FLOATS and dst in INTS:  # NaN and out-of-range values have no defined int
        values = st.integers(0 if dst == "uint32" else -100, 100).map(float)
    return ops.Cast(dst), [draw(array(src, draw(SHAPES), values=values))]


@st.composite
def _stop_gradient(draw: st.DrawFn) -> tuple:
    return ops.StopGradient(), [draw(array(draw(st.sampled_from(DTYPES)), draw(SHAPES)))]


@st.composite
def _reduction(draw: st.DrawFn, cls: type) -> tuple:
    dtypes = NUMBERS if cls is ops.Sum else DTYPES
    dtype, shape = draw(st.sampled_from(dtypes)), draw(SHAPES)
    allowed = [a for a, d in enumerate(shape) if d or cls is ops.Sum]  # max: no empty axis
    axes = tuple(sorted(draw(st.lists(st.sampled_from(allowed), unique=True)) if allowed else ()))
    return cls(axes, draw(st.booleans())), [draw(array(dtype, shape, bounded=True))]


@st.composite
def _argmax(draw: st.DrawFn) -> tuple:
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    dtype = draw(st.sampled_from(DTYPES))
    axis = draw(st.integers(0, len(shape) - 1))
    return ops.ArgMax(axis, draw(st.booleans())), [draw(array(dtype, shape))]


@st.composite
def _reshape(draw: st.DrawFn) -> tuple:
    shape = draw(SHAPES)
    size = math.prod(shape)
    target = list(draw(st.permutations(shape))) + [1] * draw(st.integers(0, 2))
    target = draw(st.permutations(target)) if target else []
    if size and target and draw(st.booleans()):
        target[draw(st.integers(0, len(target) - 1))] = -1
    if draw(st.booleans()):
        target = [size]
    return ops.Reshape(tuple(target)), [draw(array(draw(st.sampled_from(DTYPES)), shape))]


@st.composite
def _transpose(draw: st.DrawFn) -> tuple:
    shape = draw(SHAPES)
    perm = tuple(draw(st.permutations(range(len(shape)))))
    return ops.Transpose(perm), [draw(array(draw(st.sampled_from(DTYPES)), shape))]


@st.composite
def _broadcast_to(draw: st.DrawFn) -> tuple:
    shape = draw(SHAPES)
    lead = tuple(draw(st.lists(st.integers(0, 3), max_size=2)))
    target = lead + tuple(draw(st.integers(0, 3)) if d == 1 else d for d in shape)
    return ops.BroadcastTo(target), [draw(array(draw(st.sampled_from(DTYPES)), shape))]


@st.composite
def _slice(draw: st.DrawFn) -> tuple:
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=5))
    triples = []
    for d in shape:  # as Python's slicing resolves them (slice.indices), empty ones too
        step = draw(st.sampled_from([1, 2, 3, -1, -2]))
        start = draw(st.none() | st.integers(-d - 1, d + 1))
        stop = draw(st.none() | st.integers(-d - 1, d + 1))
        triple = slice(start, stop, step).indices(d)
        # an empty one as the tracer writes it (test_numpy_slices_an_empty_range_...)
        triples.append(triple if len(range(*triple)) else (0, 0, 1))
    starts, stops, steps = zip(*triples)
    return ops.Slice(starts, stops, steps), [draw(array(draw(st.sampled_from(DTYPES)), shape))]


@st.composite
def _pad(draw: st.DrawFn) -> tuple:
    dtype, shape = draw(st.sampled_from(DTYPES)), draw(SHAPES)
    widths = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2)), draw(st.integers(0, 2)))
                   for _ in shape)
    fills = [0.0, 1.0, 2.5] + ([-1.0, math.inf, -math.inf, math.nan, -0.0]
                               if dtype in FLOATS else [-1.0] if dtype != "uint32" else [])
    return ops.Pad(widths, draw(st.sampled_from(fills))), [draw(array(dtype, shape))]


@st.composite
def _concatenate(draw: st.DrawFn) -> tuple:
    dtype = draw(st.sampled_from(DTYPES))
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=3))
    axis = draw(st.integers(0, len(shape) - 1))
    sizes = draw(st.lists(st.integers(0, 3), min_size=1, max_size=3))
    xs = [draw(array(dtype, shape[:axis] + (n,) + shape[axis + 1:])) for n in sizes]
    return ops.Concatenate(axis), xs


@st.composite
def _matmul(draw: st.DrawFn) -> tuple:
    dtype = draw(st.sampled_from(NUMBERS))
    m, k, n = (draw(st.integers(0, 4)) for _ in range(3))
    batch_a, batch_b = draw(hnp.mutually_broadcastable_shapes(
        num_shapes=2, max_dims=2, min_side=0, max_side=3)).input_shapes
    sa = (k,) if draw(st.integers(0, 4)) == 0 else batch_a + (m, k)
    sb = (k,) if draw(st.integers(0, 4)) == 0 else batch_b + (k, n)
    return ops.MatMul(), [draw(array(dtype, sa, bounded=True)),
                          draw(array(dtype, sb, bounded=True))]


def _indices(dtype: str, shape: tuple[int, ...], size: int) -> st.SearchStrategy:
    low = 0 if dtype == "uint32" else -size  # numpy counts negative indices from the end
    return array(dtype, shape, values=st.integers(low, size - 1))


@st.composite
def _gather(draw: st.DrawFn) -> tuple:
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=4))
    axis = draw(st.integers(0, len(shape) - 1))
    idx_shape = draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=3))
    assume(shape[axis] or 0 in idx_shape)  # nothing can be taken from an empty axis
    idx = draw(_indices(draw(st.sampled_from(INTS)), idx_shape, max(shape[axis], 1)))
    return ops.Gather(axis), [draw(array(draw(st.sampled_from(DTYPES)), shape)), idx]


@st.composite
def _scatter_add(draw: st.DrawFn) -> tuple:
    lead = draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=3))
    idx_shape = draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=4))
    trail = draw(hnp.array_shapes(min_dims=0, max_dims=1, min_side=0, max_side=3))
    size = draw(st.integers(1, 4))
    idx = draw(_indices(draw(st.sampled_from(INTS)), idx_shape, size))
    updates = draw(array(draw(st.sampled_from(NUMBERS)), lead + idx_shape + trail,
                         bounded=True))
    return ops.ScatterAdd(len(lead), size), [updates, idx]


@st.composite
def _random_bits(draw: st.DrawFn) -> tuple:
    key = draw(array("uint32", (2,)))
    return ops.RandomBits(draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0,
                                                max_side=5))), [key]


@st.composite
def conv_settings(draw: st.DrawFn) -> dict:
    """A convolution of every kind: groups, strides, padding, dilation, batch 1 or 2."""
    groups = draw(st.integers(1, 3))
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    smallest = [max(1, d * (k - 1) + 1 - 2 * p) for k, p, d in zip(kernel, padding, dilation)]
    size = tuple(draw(st.integers(low, low + 4)) for low in smallest)
    params = (stride, padding, dilation, groups)
    out = ops.Conv2d(*params).out_hw(size, kernel)
    # batch >= 1: test_numpy_convolves_an_empty_batch
    return dict(n=draw(st.integers(1, 2)), c=groups * draw(st.integers(1, 3)),
                o=groups * draw(st.integers(1, 3)), kernel=kernel, size=size, out=out,
                params=params, dtype=draw(st.sampled_from(FLOATS)))


@st.composite
def _conv(draw: st.DrawFn, which: str) -> tuple:
    s = draw(conv_settings())
    n, c, o, dt, params = s["n"], s["c"], s["o"], s["dtype"], s["params"]
    x = array(dt, (n, c, *s["size"]), bounded=True)
    w = array(dt, (o, c // params[3], *s["kernel"]), bounded=True)
    g = array(dt, (n, o, *s["out"]), bounded=True)
    if which == "forward":
        return ops.Conv2d(*params), [draw(x), draw(w)]
    if which == "input":
        return ops.Conv2dBackwardInput(*params, input_size=s["size"]), [draw(g), draw(w)]
    return ops.Conv2dBackwardWeight(*params, kernel_size=s["kernel"]), [draw(x), draw(g)]


@st.composite
def _max_pool(draw: st.DrawFn) -> tuple:
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    op = ops.MaxPool2dIndices(kernel, (draw(st.integers(1, 3)), draw(st.integers(1, 3))),
                              tuple(draw(st.integers(0, k // 2)) for k in kernel),
                              (draw(st.integers(1, 2)), draw(st.integers(1, 2))))
    dtype = draw(st.sampled_from(FLOATS))
    shape = (draw(st.integers(0, 2)), draw(st.integers(1, 2)),
             draw(st.integers(1, 6)), draw(st.integers(1, 6)))
    try:
        op.infer(TensorType(shape, dtype))
    except ShapeError:  # a kernel that does not fit, or a window all in the padding
        assume(False)
    # few distinct values: ties everywhere, so "the FIRST maximum" is what is compared
    values = st.sampled_from([-1.0, 0.0, 1.0, -0.0, math.nan, math.inf, -math.inf])
    return op, [draw(array(dtype, shape, values=values))]


@st.composite
def _attention(draw: st.DrawFn, cls: type) -> tuple:
    """q, k, v (or their gradients' inputs, lse and delta consistent with them) in either
    layout, causal or not, with or without a broadcast bias that may block keys (-inf)."""
    B, H, T, S, D, Dv = (draw(st.integers(1, 3)) for _ in range(6))
    attrs = (draw(st.sampled_from([0.5, 1.0, 0.125])), draw(st.booleans()),
             draw(st.sampled_from(["bhtd", "bthd"])))
    forward, lse_op, op = ops.Attention(*attrs), ops.AttentionLSE(*attrs), cls(*attrs)
    dtype = draw(st.sampled_from(FLOATS))
    q, k, v, dout = (draw(array(dtype, forward.shape(*dims), bounded=True))
                     for dims in ((B, H, T, D), (B, H, S, D), (B, H, S, Dv), (B, H, T, Dv)))
    bias = []
    if draw(st.booleans()):
        bias = [draw(array(dtype, tuple(n if draw(st.booleans()) else 1 for n in (B, H, T, S)),
                           values=st.sampled_from([0.0, -1.5, 2.0, -math.inf])))]
    lse = reference.evaluate(lse_op, q, k, *bias)
    delta = np.sum(dout * reference.evaluate(forward, q, k, v, *bias), axis=-1)
    inputs = {ops.Attention: [q, k, v], ops.AttentionLSE: [q, k],
              ops.AttentionGradV: [q, k, dout, lse]}.get(cls, [q, k, v, dout, lse, delta])
    return op, inputs + bias


def _control_node(fn: Callable, arrays: list, name: str, draw: st.DrawFn) -> tuple:
    """One node of op `name` from tracing `fn` on `arrays`, its output index drawn."""
    graph = pyasg.make_graph(fn)(*arrays)
    found = [n for n in graph.nodes.values() if n.op.name == name]
    node = found[0]
    op = node.op.with_index(draw(st.integers(0, node.op.output_count() - 1)))
    operands = Graph(graph.nodes, graph.inputs, pvector(node.inputs))  # the node's inputs
    return op, list(pyasg.jit_to_backend(operands, "reference")(*arrays))


@st.composite
def _scan(draw: st.DrawFn) -> tuple:
    """An elementwise body with a const, two carries and two ys, any length (0 too)."""
    dtype, length = draw(st.sampled_from(FLOATS)), draw(st.integers(0, 4))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=2, max_side=3))
    k, c, xs = (draw(array(dtype, s, bounded=True)) for s in (shape, shape, (length, *shape)))
    reverse = draw(st.booleans())

    def f(k, c, xs):
        body = lambda cs, x: ((pyasg.sin(cs[0] * k) + x, cs[1] - x), (cs[0] * cs[1], x * 2.0))  # noqa: E731
        return pyasg.scan(body, (c, c * 0.5), xs, reverse=reverse)

    return _control_node(f, [k, c, xs], "scan", draw)


@st.composite
def _cond(draw: st.DrawFn) -> tuple:
    dtype = draw(st.sampled_from(FLOATS))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=2, max_side=3))
    a, b = (draw(array(dtype, shape, bounded=True)) for _ in range(2))
    p = np.asarray(draw(st.booleans()))

    def f(p, a, b):
        return pyasg.cond(p, lambda a, b: (a * b, pyasg.exp(a)), lambda a, b: (a - b, b), a, b)

    return _control_node(f, [p, a, b], "cond", draw)


@st.composite
def _while_loop(draw: st.DrawFn) -> tuple:
    dtype = draw(st.sampled_from(FLOATS))
    x = draw(array(dtype, (draw(st.integers(1, 3)),), values=st.floats(0.125, 2.0, width=32)))
    limit = np.asarray(draw(st.floats(0.0, 30.0)), dtype)

    def f(x, limit):
        return pyasg.while_loop(lambda s: s[1].sum() < limit,
                                lambda s: (s[0] + 1, s[1] * 1.5 + 0.25), (np.int32(0), x))

    return _control_node(f, [x, limit], "while_loop", draw)


@st.composite
def _remat(draw: st.DrawFn) -> tuple:
    dtype = draw(st.sampled_from(FLOATS))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=2, max_side=3))
    a, b = (draw(array(dtype, shape, bounded=True)) for _ in range(2))
    return _control_node(pyasg.checkpoint(lambda a, b: (pyasg.tanh(a) * b, a + b)), [a, b],
                         "remat", draw)


#: elementwise ops that may appear in a fused chain (Erf has its own bound: not here)
CHAIN_OPS = sorted((cls for cls in ops.OPS.values()
                    if issubclass(cls, (ops.Unary, ops.Binary))
                    and not issubclass(cls, ops.Compare) and cls is not ops.Erf),
                   key=lambda cls: cls.__name__)


@st.composite
def elementwise_chains(draw: st.DrawFn, max_steps: int = 6) -> tuple[Graph, list]:
    """A graph of 1-6 elementwise ops (any of `CHAIN_OPS`, comparisons feeding a where
    with a zero branch, casts) over 1-3 broadcasting inputs of one dtype, and its inputs."""
    dtype = draw(st.sampled_from(NUMBERS))
    shapes = draw(broadcast(draw(st.integers(1, 3))))
    b = GraphBuilder()
    vals = [b.add_input(f"x{k}", TensorType(s, dtype)) for k, s in enumerate(shapes)]
    arrays = [draw(array(dtype, s)) for s in shapes]
    usable = [cls for cls in CHAIN_OPS if dtype in FLOATS or not cls.float_only]
    if dtype in INTS:  # an integer to a negative power raises: not a parity question
        usable.remove(ops.Pow)
    for _ in range(draw(st.integers(1, max_steps))):
        a, c = draw(st.sampled_from(vals)), draw(st.sampled_from(vals))
        kind = draw(st.sampled_from(["op", "op", "op", "where", "cast"]))
        if kind == "where":
            cond = b.add(draw(st.sampled_from([ops.Greater(), ops.Equal()])), (a, c))
            zero = b.add(ops.Constant.of(np.zeros((), dtype)))
            picked = (cond, a, zero) if draw(st.booleans()) else (cond, zero, a)
            vals.append(b.add(ops.Where(), picked))
        elif kind == "cast":  # to another dtype and back: exact for these values or not
            other = draw(st.sampled_from(FLOATS if dtype in FLOATS else INTS))
            vals.append(b.add(ops.Cast(dtype), (b.add(ops.Cast(other), (a,)),)))
        else:
            cls = draw(st.sampled_from(usable))
            vals.append(b.add(cls(), (a,) if issubclass(cls, ops.Unary) else (a, c)))
    return b.build([vals[-1]]), arrays


@st.composite
def _fused(draw: st.DrawFn) -> tuple:
    sub, arrays = draw(elementwise_chains())
    return ops.Fused(sub), arrays


@st.composite
def _custom_call(draw: st.DrawFn) -> tuple:
    # the values are the sub-graph's (the compiler inlines it); the rule key is never
    # looked up here, since nothing is differentiated: -1 names no rule
    sub, arrays = draw(elementwise_chains())
    return ops.CustomCall(sub, "chain", -1), arrays


CASES: dict[str, st.SearchStrategy] = {
    **{name: _unary(cls) for name, cls in ops.OPS.items() if issubclass(cls, ops.Unary)},
    **{name: _binary(cls) for name, cls in ops.OPS.items() if issubclass(cls, ops.Binary)},
    "Where": _where(),
    "Cast": _cast(),
    "StopGradient": _stop_gradient(),
    "Sum": _reduction(ops.Sum),
    "Max": _reduction(ops.Max),
    "ArgMax": _argmax(),
    "Reshape": _reshape(),
    "Transpose": _transpose(),
    "BroadcastTo": _broadcast_to(),
    "Slice": _slice(),
    "Pad": _pad(),
    "Concatenate": _concatenate(),
    "MatMul": _matmul(),
    "Gather": _gather(),
    "ScatterAdd": _scatter_add(),
    "RandomBits": _random_bits(),
    "Conv2d": _conv("forward"),
    "Conv2dBackwardInput": _conv("input"),
    "Conv2dBackwardWeight": _conv("weight"),
    "MaxPool2dIndices": _max_pool(),
    "Fused": _fused(),
    "CustomCall": _custom_call(),
    "Scan": _scan(),
    "Cond": _cond(),
    "WhileLoop": _while_loop(),
    "Remat": _remat(),
    **{name: _attention(cls) for name, cls in ops.OPS.items() if cls.category == "attention"},
}


# --------------------------------------------------------------------------- comparing


def assert_bitwise(got: np.ndarray, want: np.ndarray) -> None:
    """Same shape, dtype, values, NaN positions and signs of zero."""
    assert got.shape == want.shape and got.dtype == want.dtype, (got, want)
    np.testing.assert_array_equal(got, want)  # NaN equals NaN in the same places
    if want.dtype.kind == "f":
        real = ~np.isnan(want)
        np.testing.assert_array_equal(np.signbit(got[real]), np.signbit(want[real]),
                                      err_msg="a zero of the other sign")


def assert_within(got: np.ndarray, want: np.ndarray, bound: np.ndarray | float) -> None:
    """Same NaNs and infinities; finite values differ by at most `bound`."""
    assert got.shape == want.shape and got.dtype == want.dtype, (got, want)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(got[np.isinf(want)], want[np.isinf(want)])
    finite = np.isfinite(want)
    excess = np.abs(got.astype(np.float64) - want)[finite] - np.broadcast_to(bound, want.shape)[
        finite]
    assert np.all(excess <= 0), f"off by {excess.max()} more than the bound"


@dataclass(frozen=True)
class Rounding:
    """A sum of products in another order (or precision): off by at most `terms(op,
    *arrays)` roundings of the sum of the absolute products (the op in float64 on
    |arrays|), for results of `dtypes`; bitwise for the others."""

    terms: Callable[..., int]
    dtypes: tuple[str, ...] = FLOATS

    def __call__(self, op: ops.Op, arrays: list, got: np.ndarray, want: np.ndarray) -> None:
        if want.dtype.name not in self.dtypes:
            return assert_bitwise(got, want)
        wide = [np.abs(a).astype(np.float64) if a.dtype.kind == "f" else a for a in arrays]
        scale = reference.evaluate(op, *wide)
        info = np.finfo(want.dtype)
        assert_within(got, want, self.terms(op, *arrays) * (info.eps * scale + info.tiny))


def _where_rule(op: ops.Op, arrays: list, got: np.ndarray, want: np.ndarray) -> None:
    """where(c, x, 0) as x * c: bitwise, but a -0.0 may come out +0.0 (never the other
    way round; test_where_fast_path_gives_plus_zero_for_a_selected_minus_zero)."""
    assert got.shape == want.shape and got.dtype == want.dtype, (got, want)
    np.testing.assert_array_equal(got, want)
    if want.dtype.kind == "f":
        real = ~np.isnan(want)
        flipped = np.signbit(got[real]) != np.signbit(want[real])
        assert np.all(np.signbit(want[real][flipped])), "a +0.0 came out -0.0"


def _erf_rule(op: ops.Op, arrays: list, got: np.ndarray, want: np.ndarray) -> None:
    """float32 erf is Eigen's rational polynomial (test_erf_float32_is_within_its_bound)."""
    if want.dtype == np.float32:
        return assert_within(got, want, ERF_BOUND)
    assert_bitwise(got, want)


#: op name -> how numpy may differ from the reference (every other op: bitwise equal)
DIFFERENCES: dict[str, Callable[..., None]] = {
    "Where": _where_rule,
    "Erf": _erf_rule,
    # a chain of CHAIN_OPS (no erf): bitwise but for where's sign of zero
    "Fused": _where_rule,
    "CustomCall": _where_rule,  # inlined: the same chains as Fused's
    # [..., m, k] @ [k, n] as one GEMM of the folded rows (test_matmul_folds_...)
    "MatMul": Rounding(lambda op, a, b: a.shape[-1]),
    # im2col + GEMM against a sum over kernel offsets (test_convolutions_are_...)
    "Conv2d": Rounding(lambda op, x, w: math.prod(w.shape[1:])),
    "Conv2dBackwardInput": Rounding(lambda op, g, w: w.shape[0] // op.groups
                                    * math.prod(w.shape[2:])),
    "Conv2dBackwardWeight": Rounding(lambda op, x, g: g.shape[0] * math.prod(g.shape[2:])),
    # float32 sums along axis 0 by bincount: in float64, rounded once (test_scatter_...)
    "ScatterAdd": Rounding(lambda op, u, i: max(i.size, 1), dtypes=("float32",)),
}


# --------------------------------------------------------------------------- running


def one_op_graph(op: ops.Op, arrays: list, staged: bool) -> Graph:
    """op applied to the inputs; `staged`: to a computed copy of each (Cast to its own
    dtype), a buffer the op may write into and a producer fusion may take in."""
    b = GraphBuilder()
    xs = [b.add_input(f"x{k}", TensorType.of(a)) for k, a in enumerate(arrays)]
    if staged:
        xs = [b.add(ops.Cast(b.type_of(x).dtype), (x,)) for x in xs]
    return b.build([b.add(op, xs)])


#: the ways a compiled graph runs the op: (from computed copies?, fused?)
WAYS = tuple((staged, fuse) for staged in (False, True) for fuse in (True, False))


def numpy_results(op: ops.Op, arrays: list,
                  ways: tuple[tuple[bool, bool], ...] = WAYS) -> dict[str, np.ndarray]:
    """op's value on numpy: the single kernel, and compiled each of these `ways`."""
    # an inlined op (CustomCall) has no single kernel: the compiled ways inline it
    out = {} if op.inlined else {"evaluate": np.asarray(numpy_kernels.evaluate(op, *arrays))}
    for staged, fuse in ways:
        graph = one_op_graph(op, arrays, staged)
        (value,) = pyasg.jit_to_backend(graph, "numpy", fuse=fuse)(*arrays)
        out[f"{'staged' if staged else 'direct'}, fuse={fuse}"] = np.asarray(value)
    return out


def check_parity(op: ops.Op, arrays: list,
                 ways: tuple[tuple[bool, bool], ...] = WAYS) -> None:
    (want,) = pyasg.jit_to_backend(one_op_graph(op, arrays, False), "reference")(*arrays)
    compare = DIFFERENCES.get(type(op).__name__)
    for how, got in numpy_results(op, arrays, ways).items():
        try:
            if compare is None:
                assert_bitwise(got, want)
            else:
                compare(op, arrays, got, want)
        except AssertionError as e:
            raise AssertionError(f"numpy ({how}) differs from the reference on {op}:\n{e}") \
                from None


# --------------------------------------------------------------------------- the tests


@pytest.mark.parametrize("name", sorted(set(ops.OPS) - LEAVES))
def test_every_op_has_a_parity_case(name: str) -> None:
    assert name in CASES, f"{name} has no case in test_parity_numpy.CASES"


@pytest.mark.parametrize("name", sorted(CASES))
@given(data=st.data())
def test_numpy_equals_the_reference(name: str, data: st.DataObject) -> None:
    op, arrays = data.draw(CASES[name], label="op, arrays")
    # one compiled way per example (hypothesis spreads them): four compiles cost 4x
    check_parity(op, arrays, (data.draw(st.sampled_from(WAYS), label="(staged, fuse)"),))


@given(elementwise_chains())
def test_fused_elementwise_chains_equal_the_reference(case: tuple) -> None:
    """Whole graphs fused by numpy's options (one group or several) and unfused."""
    graph, arrays = case
    (want,) = pyasg.jit_to_backend(graph, "reference")(*arrays)
    for fuse in (True, False):
        (got,) = pyasg.jit_to_backend(graph, "numpy", fuse=fuse)(*arrays)
        _where_rule(None, arrays, np.asarray(got), want)


@given(random_cases())
def test_random_graphs_equal_the_reference(case) -> None:  # noqa: ANN001
    """tests/strategies.py's graphs: reshapes, transposes, slices, pads, concatenations,
    reductions and matmuls among elementwise ops, float64, fused and unfused."""
    want = pyasg.jit_to_backend(case.graph, "reference")(*case.arrays)
    for fuse in (True, False):
        got = pyasg.jit_to_backend(case.graph, "numpy", fuse=fuse)(*case.arrays)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-9)


def test_the_rounding_bound_catches_a_wrong_product() -> None:
    """A last-bit difference passes; a value off by 1e-4 (or a lost term) fails."""
    op, rule = ops.MatMul(), DIFFERENCES["MatMul"]
    a, b = np.linspace(1, 2, 50, dtype=np.float32), np.ones((50, 1), np.float32)
    want = reference.evaluate(op, a, b)
    rule(op, [a, b], np.nextafter(want, np.float32(np.inf)), want)
    for wrong in (want * np.float32(1 + 1e-4), want - a[7], want * np.nan):
        with pytest.raises(AssertionError):
            rule(op, [a, b], wrong.astype(np.float32), want)


# --------------------------------------------------------------------------- the differences


def test_where_fast_path_gives_plus_zero_for_a_selected_minus_zero() -> None:
    c = np.array([True, True, False, True])
    x = np.array([-0.0, 1.0, np.inf, -2.0], np.float32)
    zero = np.zeros((), np.float32)
    want = reference.evaluate(ops.Where(), c, x, zero)
    got = numpy_kernels.evaluate(ops.Where(), c, x, zero)
    assert np.signbit(want[0]) and not np.signbit(got[0])  # -0.0 selected: +0.0 on numpy
    np.testing.assert_array_equal(got, want)  # otherwise equal, the unselected inf too
    assert not np.signbit(got[2]) and not np.signbit(want[2])
    # without a zero branch numpy takes np.where: the sign of zero is kept
    full = np.ones(4, np.float32)
    assert np.signbit(numpy_kernels.evaluate(ops.Where(), c, x, full)[0])


def test_erf_float32_is_within_its_bound() -> None:
    """Eigen's polynomial on a dense float32 grid of [-5, 5] (and the ends of the range):
    within ERF_BOUND of the reference, and not bitwise (else the row would be stale)."""
    x = np.concatenate([np.linspace(-5, 5, 200_001, dtype=np.float32),
                        np.array([np.inf, -np.inf, np.nan, 0.0, -0.0,
                                  np.finfo(np.float32).max], np.float32)])
    want = reference.evaluate(ops.Erf(), x)
    got = erf_float32(x)
    assert_within(got, want, ERF_BOUND)
    assert np.nanmax(np.abs(got.astype(np.float64) - want)) > 2.0**-25  # an approximation
    assert_within(numpy_kernels.evaluate(ops.Erf(), x), want, ERF_BOUND)
    # float64 (and a float32 0-d value) go through scipy's erf: bitwise
    assert_bitwise(numpy_kernels.evaluate(ops.Erf(), x.astype(np.float64)),
                   reference.evaluate(ops.Erf(), x.astype(np.float64)))
    assert_bitwise(numpy_kernels.evaluate(ops.Erf(), np.float32(0.3)[()]),
                   reference.evaluate(ops.Erf(), np.asarray(np.float32(0.3))))


def test_scatter_add_along_axis_0_sums_float32_in_float64() -> None:
    """bincount adds in float64 and rounds once; the reference (np.add.at) adds in
    float32 one update at a time: 2**24 + 1 + 1 is 2**24 + 2 on numpy, 2**24 there."""
    op = ops.ScatterAdd(0, 2)
    updates = np.array([2.0**24, 1.0, 1.0, 5.0], np.float32)
    idx = np.array([0, 0, 0, 1], np.int32)
    assert reference.evaluate(op, updates, idx).tolist() == [2.0**24, 5.0]
    assert numpy_kernels.evaluate(op, updates, idx).tolist() == [2.0**24 + 2, 5.0]
    # with a trailing axis numpy takes np.add.at too: the reference's sum exactly
    op2 = ops.ScatterAdd(0, 2)
    u2, i2 = updates.reshape(4, 1), idx
    assert_bitwise(numpy_kernels.evaluate(op2, u2, i2), reference.evaluate(op2, u2, i2))


def test_matmul_folds_batches_into_one_gemm() -> None:
    """[3, 17, 33] @ [33, 9] is one [51, 33] @ [33, 9] GEMM on numpy, three in the
    reference's np.matmul: bit for bit the folded GEMM, and within the MatMul row of the
    reference (whether BLAS rounds the two differently depends on its version and the
    CPU: OpenBLAS 0.3.31 with numpy 2.4 gives the same bits here, older ones did not)."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 17, 33)).astype(np.float32), \
        rng.standard_normal((33, 9)).astype(np.float32)
    want = reference.evaluate(ops.MatMul(), a, b)
    got = numpy_kernels.evaluate(ops.MatMul(), a, b)
    assert_bitwise(got, np.matmul(a.reshape(51, 33), b).reshape(3, 17, 9))
    DIFFERENCES["MatMul"](ops.MatMul(), [a, b], got, want)


def test_convolutions_are_im2col_products() -> None:
    """The three convolutions on numpy are GEMMs over im2col columns: not the bits of
    the reference's sum over kernel offsets, within their rows."""
    rng = np.random.default_rng(1)
    params = ((2, 1), (1, 2), (1, 2), 2)
    x = rng.standard_normal((2, 4, 9, 8)).astype(np.float32)
    w = rng.standard_normal((6, 2, 3, 3)).astype(np.float32)
    g = rng.standard_normal(ops.Conv2d(*params).infer(
        TensorType.of(x), TensorType.of(w)).shape).astype(np.float32)
    for op, arrays in ((ops.Conv2d(*params), [x, w]),
                       (ops.Conv2dBackwardInput(*params, input_size=(9, 8)), [g, w]),
                       (ops.Conv2dBackwardWeight(*params, kernel_size=(3, 3)), [x, g])):
        want, got = reference.evaluate(op, *arrays), numpy_kernels.evaluate(op, *arrays)
        assert not np.array_equal(got, want), op
        DIFFERENCES[type(op).__name__](op, arrays, got, want)


def test_max_pool_never_picks_the_padding() -> None:
    """A window whose real pixels are all -inf: the first real tap, not a padding tap
    (-inf as well), whose flat index is negative or another row's pixel, so that
    max_pool2d would return that pixel's value (9.0 here, not -inf)."""
    x = np.array([[1.0, 2.0, 9.0], [-np.inf, -np.inf, 7.0]], np.float32).reshape(1, 1, 2, 3)
    op = ops.MaxPool2dIndices((1, 2), (1, 1), (0, 1), (1, 1))
    check_parity(op, [x])
    assert reference.evaluate(op, x)[0, 0, 1].tolist() == [3, 3, 5, 5]
    check_parity(ops.MaxPool2dIndices((3, 3), (1, 1), (1, 1), (1, 1)),
                 [np.full((1, 1, 3, 3), -np.inf, np.float32)])


def test_a_sum_over_a_transposed_view_rounds_in_another_order() -> None:
    """numpy's transpose is a view and np.sum adds a strided axis in another order
    than the reference's contiguous copy: why whole graphs compare within rounding."""
    x = np.random.default_rng(2).standard_normal((300, 7)).astype(np.float32)
    b = GraphBuilder()
    t = b.add(ops.Transpose((1, 0)), (b.add_input("x", TensorType.of(x)),))
    graph = b.build([b.add(ops.Sum((1,)), (t,))])
    (want,) = pyasg.jit_to_backend(graph, "reference")(x)
    for fuse in (True, False):
        (got,) = pyasg.jit_to_backend(graph, "numpy", fuse=fuse)(x)
        assert not np.array_equal(got, want)
        np.testing.assert_allclose(got, want, rtol=300 * 2**-23)


# --------------------------------------------------------------------------- edge cases
# numpy kernels that once disagreed with the reference (an empty slice read from the
# end; an empty batch's columns reshaped with -1)


def test_numpy_slices_an_empty_range_as_the_shape_rule_counts() -> None:
    triple = slice(-5, None, -1).indices(1)  # what the op holds for x[-5::-1] of 1 element
    assert triple == (-1, -1, -1)
    check_parity(ops.Slice(*((v,) for v in triple)), [np.array([1.0], np.float32)])


_EMPTY_BATCH = {
    # name: (op, the arrays' shapes)
    "conv2d": (ops.Conv2d((1, 1), (1, 1), (1, 1), 1), ((0, 2, 4, 4), (3, 2, 3, 3))),
    "conv2d_grouped": (ops.Conv2d((1, 1), (1, 1), (1, 1), 2), ((0, 2, 4, 4), (4, 1, 3, 3))),
    "backward_input": (ops.Conv2dBackwardInput((1, 1), (1, 1), (1, 1), 1, input_size=(4, 4)),
                       ((0, 3, 4, 4), (3, 2, 3, 3))),
    "backward_weight": (ops.Conv2dBackwardWeight((1, 1), (1, 1), (1, 1), 1,
                                                 kernel_size=(3, 3)),
                        ((0, 2, 4, 4), (0, 3, 4, 4))),
}


@pytest.mark.parametrize("name", sorted(_EMPTY_BATCH))
def test_numpy_convolves_an_empty_batch(name: str) -> None:
    op, shapes = _EMPTY_BATCH[name]
    check_parity(op, [np.ones(s, np.float32) for s in shapes])
