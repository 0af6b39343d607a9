"""wgpu parity of the convolution and pooling kernels (pyasg/kernels/wgpu/conv.py).

Every expected value comes from the reference backend running the same traced graph
(`wgpu_parity`), except for long reductions, which are checked against float64
with a bound proportional to the sum of the absolute products (numpy's float32
matmul is itself no closer than that). Shapes are small: CI runs these on
lavapipe, a CPU.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import pyasg
from pyasg.array import primitives as P
from pyasg.asg.ops import (
    Conv2d,
    Conv2dBackwardInput,
    Conv2dBackwardWeight,
    MaxPool2dIndices,
    conv_output_size,
)
from pyasg.kernels.reference import evaluate
from tests.wgpu_util import WGPU, run_both, wgpu_parity

pytestmark = WGPU


def _rand(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


# ---------------------------------------------------------------------------- conv2d

CONV_CASES = {
    # name: (x shape, w shape, stride, padding, dilation, groups)
    "grouped_strided_dilated": ((2, 4, 7, 7), (6, 2, 3, 3), 2, 1, 2, 2),
    "stride1_no_padding": ((2, 3, 6, 5), (4, 3, 3, 3), 1, 0, 1, 1),
    "asymmetric_a": ((1, 3, 9, 8), (5, 3, 2, 3), (1, 2), (2, 0), (1, 3), 1),
    "asymmetric_b": ((2, 2, 8, 10), (3, 2, 3, 2), (3, 1), (0, 2), (2, 1), 1),
    "padding_beyond_kernel": ((1, 2, 4, 4), (2, 2, 2, 2), 2, 3, 1, 1),  # all-padding windows
    "one_by_one": ((2, 5, 4, 6), (7, 5, 1, 1), 1, 0, 1, 1),
    "one_by_one_strided": ((2, 4, 5, 5), (6, 2, 1, 1), 2, 0, 1, 2),
    "depthwise": ((2, 4, 6, 6), (4, 1, 3, 3), 1, 1, 1, 4),
    "depthwise_multiplier": ((1, 3, 6, 7), (6, 1, 3, 3), 2, 1, 1, 3),
    "odd_groups_blocks": ((1, 6, 5, 5), (9, 2, 3, 3), 1, 1, 1, 3),  # O/g = 3: blocks of 1
    "large_kernel": ((1, 2, 9, 9), (2, 2, 5, 5), 1, 2, 1, 1),
}


@pytest.mark.parametrize("case", sorted(CONV_CASES))
def test_conv2d(case: str) -> None:
    xs, ws, stride, padding, dilation, groups = CONV_CASES[case]
    rng = np.random.default_rng(0)
    x, w = _rand(rng, *xs), _rand(rng, *ws)
    wgpu_parity(lambda x, w: pyasg.conv2d(x, w, stride=stride, padding=padding,
                                          dilation=dilation, groups=groups), x, w)


def test_conv2d_with_bias_and_same_padding() -> None:
    rng = np.random.default_rng(1)
    x, w, b = _rand(rng, 2, 3, 6, 6), _rand(rng, 4, 3, 3, 2), _rand(rng, 4)
    wgpu_parity(lambda x, w, b: pyasg.conv2d(x, w, b, padding="same"), x, w, b)


# ---------------------------------------------------------------------------- transposed

@pytest.mark.parametrize("stride, padding, output_padding, groups, dilation", [
    (2, 1, 1, 1, 1),
    (2, 1, 1, 2, 2),
    ((3, 2), (0, 1), (2, 0), 1, (1, 2)),
    (1, 0, 0, 4, 1),
])
def test_conv_transpose2d(stride, padding, output_padding, groups,  # noqa: ANN001
                          dilation) -> None:
    rng = np.random.default_rng(2)
    x = _rand(rng, 2, 4, 5, 4)
    w = _rand(rng, 4, 1 if groups == 4 else 3, 3, 3)  # [C_in, C_out / groups, kh, kw]
    wgpu_parity(lambda x, w: pyasg.conv_transpose2d(
        x, w, stride=stride, padding=padding, output_padding=output_padding, groups=groups,
        dilation=dilation), x, w)


# ---------------------------------------------------------------------------- gradients

@pytest.mark.parametrize("xs, ws, stride, padding, dilation, groups", [
    ((2, 4, 7, 7), (6, 2, 3, 3), 2, 1, 2, 2),
    ((1, 3, 6, 5), (2, 3, 2, 3), (1, 2), (1, 0), 1, 1),
    ((2, 4, 5, 5), (4, 1, 3, 3), 1, 1, 1, 4),
])
def test_conv2d_gradients(xs, ws, stride, padding, dilation, groups) -> None:  # noqa: ANN001
    """pyasg.grad of sum(conv2d(x, w) * r) builds Conv2dBackwardInput and ...Weight."""
    rng = np.random.default_rng(3)
    x, w = _rand(rng, *xs), _rand(rng, *ws)

    def conv(x, w):  # noqa: ANN001, ANN202
        return pyasg.conv2d(x, w, stride=stride, padding=padding, dilation=dilation,
                            groups=groups)

    r = _rand(rng, *conv(x, w).shape)

    def loss(x, w, r):  # noqa: ANN001, ANN202
        return (conv(x, w) * r).sum()

    wgpu_parity(pyasg.grad(loss, argnums=(0, 1)), x, w, r)


def test_conv2d_backward_weight_long_reduction() -> None:
    """25 taps (two blocks, the second with a tail) summed over 8*20*20 = 3200 positions."""
    rng = np.random.default_rng(4)
    x, g = _rand(rng, 8, 2, 20, 20), _rand(rng, 8, 3, 20, 20)
    op = Conv2dBackwardWeight((1, 1), (2, 2), (1, 1), 1, kernel_size=(5, 5))
    _, (got,) = run_both(lambda x, g: P.bind(op, x, g), x, g)
    exact = evaluate(op, x.astype(np.float64), g.astype(np.float64))
    scale = evaluate(op, np.abs(x).astype(np.float64), np.abs(g).astype(np.float64))
    assert np.all(np.abs(got - exact) <= 1e-6 * scale + 1e-6)


def test_conv2d_backward_weight_two_dimensional_grid() -> None:
    """300 x 300 weights: 90000 workgroups, more than 65535 in one dimension."""
    rng = np.random.default_rng(5)
    x, g = _rand(rng, 1, 300, 2, 2), _rand(rng, 1, 300, 2, 2)
    op = Conv2dBackwardWeight((1, 1), (0, 0), (1, 1), 1, kernel_size=(1, 1))
    wgpu_parity(lambda x, g: P.bind(op, x, g), x, g)


# ---------------------------------------------------------------------------- max pooling

POOL_CASES = [
    # kernel, stride, padding, dilation
    ((2, 2), (2, 2), (0, 0), (1, 1)),
    ((3, 3), (2, 2), (1, 1), (1, 1)),
    ((3, 2), (1, 2), (1, 1), (2, 1)),
    ((2, 3), (2, 1), (0, 1), (1, 2)),
]


@pytest.mark.parametrize("kernel, stride, padding, dilation", POOL_CASES)
def test_max_pool2d_indices(kernel, stride, padding, dilation) -> None:  # noqa: ANN001
    """Integer-valued input: many ties, so "the FIRST maximum" is what is tested."""
    x = np.random.default_rng(6).integers(-3, 3, (2, 3, 7, 8)).astype(np.float32)
    op = MaxPool2dIndices(kernel, stride, padding, dilation)
    wgpu_parity(lambda x: P.bind(op, x), x)


def test_max_pool2d_indices_nan_and_infinities() -> None:
    """The first NaN wins (numpy's argmax); real -inf pixels still lose to nothing but a
    later larger value; a window of -inf gives its first real tap, as the reference."""
    x = _rand(np.random.default_rng(7), 1, 2, 4, 4)
    x[0, 0, 1, 1] = np.nan
    x[0, 0, 1, 2] = np.nan
    x[0, 0, 2:, :] = -np.inf
    x[0, 1] = -np.inf
    x[0, 1, 3, 3] = np.inf
    for kernel, padding in (((2, 2), (1, 1)), ((3, 3), (1, 1)), ((2, 2), (0, 0))):
        op = MaxPool2dIndices(kernel, (1, 1), padding, (1, 1))
        wgpu_parity(lambda x: P.bind(op, x), x)  # noqa: B023 - called at once


def test_max_pool2d_window_all_padding_is_rejected_by_the_shape_rule() -> None:
    """Dilation 2, padding 1 on a 1x1 input: the only window's taps are all padding, so
    no index is defined (PyTorch returns -inf there); the shape rule refuses it."""
    x = _rand(np.random.default_rng(8), 1, 2, 1, 1)
    op = MaxPool2dIndices((2, 2), (1, 1), (1, 1), (2, 2))
    with pytest.raises(pyasg.ShapeError, match="entirely in the padding"):
        pyasg.make_graph(lambda x: P.bind(op, x))(x)


@pytest.mark.parametrize("kernel, stride, padding, dilation", POOL_CASES[:2])
def test_max_pool2d_and_gradient(kernel, stride, padding, dilation) -> None:  # noqa: ANN001
    """max_pool2d = gather at the indices; its gradient a scatter-add (indexing kernels)."""
    rng = np.random.default_rng(9)
    x = rng.integers(-3, 3, (2, 3, 7, 8)).astype(np.float32)
    y = pyasg.max_pool2d(x, kernel, stride, padding, dilation)
    r = _rand(rng, *y.shape)

    def pooled(x, r):  # noqa: ANN001, ANN202
        y, idx = pyasg.max_pool2d(x, kernel, stride, padding, dilation, return_indices=True)
        return y, idx, pyasg.grad(lambda x: (pyasg.max_pool2d(
            x, kernel, stride, padding, dilation) * r).sum())(x)

    wgpu_parity(pooled, x, r)


# ---------------------------------------------------------------------------- avg pooling

@pytest.mark.parametrize("count_include_pad", [True, False])
def test_avg_pool2d_and_gradient(count_include_pad: bool) -> None:
    rng = np.random.default_rng(10)
    x = _rand(rng, 2, 3, 7, 6)
    y = pyasg.avg_pool2d(x, 3, 2, 1, count_include_pad=count_include_pad)
    r = _rand(rng, *y.shape)

    def pooled(x, r):  # noqa: ANN001, ANN202
        def avg(x):  # noqa: ANN001, ANN202
            return pyasg.avg_pool2d(x, 3, 2, 1, count_include_pad=count_include_pad)

        return avg(x), pyasg.grad(lambda x: (avg(x) * r).sum())(x)

    wgpu_parity(pooled, x, r)


@pytest.mark.parametrize("output_size", [(3, 2), 1, (None, 4)])
def test_adaptive_avg_pool2d(output_size) -> None:  # noqa: ANN001
    """Two matmuls with constant averaging matrices (the matmul kernels)."""
    x = _rand(np.random.default_rng(11), 2, 3, 7, 5)
    wgpu_parity(lambda x: pyasg.adaptive_avg_pool2d(x, output_size), x)


# ---------------------------------------------------------------------------- generated

@st.composite
def conv_settings(draw: st.DrawFn) -> dict:
    """Small convolutions of every kind: groups, blocks of 1/2/4 channels, any padding."""
    groups = draw(st.integers(1, 3))
    cg, og = draw(st.integers(1, 4)), draw(st.integers(1, 5))
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 3)), draw(st.integers(0, 3)))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    smallest = [max(1, d * (k - 1) + 1 - 2 * p)  # at least one output position
                for k, p, d in zip(kernel, padding, dilation)]
    size = tuple(draw(st.integers(low, max(low, 9))) for low in smallest)
    out = tuple(conv_output_size(n, k, s, p, d)
                for n, k, s, p, d in zip(size, kernel, stride, padding, dilation))
    return dict(n=draw(st.integers(1, 2)), groups=groups, c=groups * cg, o=groups * og,
                kernel=kernel, stride=stride, padding=padding, dilation=dilation, size=size,
                out=out, seed=draw(st.integers(0, 2**16)))


@given(s=conv_settings())
def test_generated_convolutions(s: dict) -> None:
    """The three convolution primitives of one setting, in one graph."""
    rng = np.random.default_rng(s["seed"])
    x = _rand(rng, s["n"], s["c"], *s["size"])
    w = _rand(rng, s["o"], s["c"] // s["groups"], *s["kernel"])
    g = _rand(rng, s["n"], s["o"], *s["out"])
    params = (s["stride"], s["padding"], s["dilation"], s["groups"])

    def convs(x, w, g):  # noqa: ANN001, ANN202
        return (P.bind(Conv2d(*params), x, w),
                P.bind(Conv2dBackwardInput(*params, input_size=s["size"]), g, w),
                P.bind(Conv2dBackwardWeight(*params, kernel_size=s["kernel"]), x, g))

    wgpu_parity(convs, x, w, g)
