"""The reference kernels that are not one numpy call, against independent definitions.

The oracle is only as good as its definitions, so the non-trivial ones are checked
against code that shares nothing with them: the convolutions against
`scipy.signal.correlate` (a kernel dilated with zeros, the padded image, the output
subsampled by the stride) and against PyTorch (`conv2d`, `conv_transpose2d`, and its
autograd for both gradients) where it is installed; the two gradients against the
forward by the adjoint identity <conv(x, w), g> = <x, dx(g, w)> = <w, dw(x, g)>;
max-pool indices against `torch.nn.functional.max_pool2d(return_indices=True)`, ties
and NaN included; scatter-add against a Python loop and `np.add.at`; random bits
against Random123's known answer and the plain-Python Threefry of `tests/test_random.py`;
slices against Python's own slicing.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from scipy.signal import correlate
from test_random import KNOWN_ANSWERS, threefry_reference

import pyasg
from pyasg.asg import ops
from pyasg.asg.graph import GraphBuilder
from pyasg.asg.types import TensorType
from pyasg.kernels.reference import evaluate

F64 = np.float64


@st.composite
def conv_settings(draw: st.DrawFn) -> dict:
    """A small convolution of any kind: groups 1-3, kernels 1-3, strides 1-3, padding
    0-2, dilation 1-2, batch 1-2, and a seed for its values."""
    groups = draw(st.integers(1, 3))
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    smallest = [max(1, d * (k - 1) + 1 - 2 * p) for k, p, d in zip(kernel, padding, dilation)]
    size = tuple(draw(st.integers(low, low + 4)) for low in smallest)
    params = (stride, padding, dilation, groups)
    n, cg, og = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal((n, groups * cg, *size))
    w = rng.standard_normal((groups * og, cg, *kernel))
    g = rng.standard_normal((n, groups * og, *ops.Conv2d(*params).out_hw(size, kernel)))
    return dict(params=params, size=size, kernel=kernel, x=x, w=w, g=g)


def convolutions(s: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The reference's conv2d(x, w), its input gradient at g, its weight gradient at g."""
    p = s["params"]
    return (evaluate(ops.Conv2d(*p), s["x"], s["w"]),
            evaluate(ops.Conv2dBackwardInput(*p, input_size=s["size"]), s["g"], s["w"]),
            evaluate(ops.Conv2dBackwardWeight(*p, kernel_size=s["kernel"]), s["x"], s["g"]))


def scipy_conv2d(x: np.ndarray, w: np.ndarray, stride: tuple, padding: tuple,
                 dilation: tuple, groups: int) -> np.ndarray:
    """PyTorch's conv2d from scipy's 2-d correlation of single planes."""
    (ph, pw), (sh, sw), (dh, dw) = padding, stride, dilation
    out_c, cg, kh, kw = w.shape
    dilated = np.zeros((out_c, cg, dh * (kh - 1) + 1, dw * (kw - 1) + 1))
    dilated[:, :, ::dh, ::dw] = w
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    per_group = out_c // groups
    planes = [[sum(correlate(xp[n, (o // per_group) * cg + c], dilated[o, c], mode="valid")
                   for c in range(cg))[::sh, ::sw]
               for o in range(out_c)] for n in range(x.shape[0])]
    return np.array(planes)


def torch_or_skip():  # noqa: ANN201
    return pytest.importorskip("torch")


# --------------------------------------------------------------------------- convolutions


@given(conv_settings())
def test_conv2d_is_scipys_correlation(s: dict) -> None:
    np.testing.assert_allclose(convolutions(s)[0], scipy_conv2d(s["x"], s["w"], *s["params"]),
                               rtol=1e-12, atol=1e-12)


@given(conv_settings())
def test_both_gradients_are_adjoints_of_conv2d(s: dict) -> None:
    """<conv(x, w), g> = <x, dx(g, w)> = <w, dw(x, g)>: each gradient is the transpose
    of the forward map in its argument (conv is linear in each)."""
    y, dx, dw = convolutions(s)
    forward = np.vdot(y, s["g"])
    np.testing.assert_allclose(np.vdot(s["x"], dx), forward, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(np.vdot(s["w"], dw), forward, rtol=1e-10, atol=1e-10)


@given(conv_settings())
def test_convolutions_match_torch_and_its_autograd(s: dict) -> None:
    torch = torch_or_skip()
    stride, padding, dilation, groups = s["params"]
    x = torch.tensor(s["x"], requires_grad=True)
    w = torch.tensor(s["w"], requires_grad=True)
    y = torch.nn.functional.conv2d(x, w, None, stride, padding, dilation, groups)
    (y * torch.tensor(s["g"])).sum().backward()
    ours = convolutions(s)
    for got, want in zip(ours, (y.detach(), x.grad, w.grad)):
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-12, atol=1e-12)


@given(conv_settings())
def test_the_input_gradient_is_torchs_conv_transpose2d(s: dict) -> None:
    """conv_transpose2d with the output padding that gives back the input size."""
    torch = torch_or_skip()
    stride, padding, dilation, groups = s["params"]
    ho, wo = s["g"].shape[2:]
    # what the stride left over: always less than it, as torch requires
    output_padding = tuple(n - ((o - 1) * step - 2 * p + d * (k - 1) + 1) for n, o, step, p, d, k
                           in zip(s["size"], (ho, wo), stride, padding, dilation, s["kernel"]))
    want = torch.nn.functional.conv_transpose2d(
        torch.tensor(s["g"]), torch.tensor(s["w"]), None, stride, padding, output_padding,
        groups, dilation)
    np.testing.assert_allclose(convolutions(s)[1], want.numpy(), rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- max pooling


@st.composite
def pool_cases(draw: st.DrawFn) -> tuple[ops.MaxPool2dIndices, np.ndarray]:
    """Windows of every shape over few distinct values (ties), NaN and infinities."""
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    op = ops.MaxPool2dIndices(kernel, (draw(st.integers(1, 3)), draw(st.integers(1, 3))),
                              tuple(draw(st.integers(0, k // 2)) for k in kernel),
                              (draw(st.integers(1, 2)), draw(st.integers(1, 2))))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 6)),
             draw(st.integers(1, 6)))
    try:
        op.infer(TensorType(shape, "float64"))
    except pyasg.ShapeError:  # the kernel does not fit, or a window lies all in padding
        assume(False)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    choices = np.array([-1.0, 0.0, 1.0, np.nan, np.inf, -np.inf])
    x = choices[rng.choice(len(choices), size=shape, p=[.3, .3, .2, .05, .05, .1])]
    return op, x


def torch_pool(torch, op: ops.MaxPool2dIndices, x: np.ndarray):  # noqa: ANN001, ANN201
    """torch's indices (flat per plane) and each window's NaN count."""
    args = (op.kernel_size, op.stride, op.padding, op.dilation)
    _, idx = torch.nn.functional.max_pool2d(torch.tensor(x), *args, return_indices=True)
    counts = torch.nn.functional.unfold(torch.tensor(np.isnan(x), dtype=torch.float64),
                                        op.kernel_size, op.dilation, op.padding, op.stride)
    return idx.numpy(), counts.reshape(x.shape[0], x.shape[1], -1, idx.shape[2] * idx.shape[3]
                                       ).sum(axis=2).reshape(idx.shape).numpy()


@given(pool_cases())
def test_max_pool_indices_match_torch(case: tuple) -> None:
    """The first maximum of the real pixels (padding never wins, -inf windows give their
    first real tap); a NaN is the maximum. torch's indices count within each plane."""
    torch = torch_or_skip()
    op, x = case
    n, c, h, w = x.shape
    ours = evaluate(op, x)
    plane = (np.arange(n * c) * h * w).reshape(n, c, 1, 1)
    theirs, nans = torch_pool(torch, op, x)
    one_nan = nans <= 1
    np.testing.assert_array_equal((ours - plane)[one_nan], theirs[one_nan])
    # several NaNs: ours is the first of them (np.argmax), torch's the last
    flat = x.ravel()
    assert np.all(np.isnan(flat[ours[~one_nan]]))
    assert np.all((ours - plane)[~one_nan] < theirs[~one_nan])


def test_max_pool_takes_the_first_nan_where_torch_takes_the_last() -> None:
    """The one deliberate difference from PyTorch's CPU kernel (which updates on every
    NaN): the reference follows np.argmax, and the numpy and wgpu kernels follow it."""
    torch = torch_or_skip()
    x = np.array([1.0, np.nan, 3.0, np.nan]).reshape(1, 1, 1, 4)
    op = ops.MaxPool2dIndices((1, 4), (1, 1), (0, 0), (1, 1))
    assert evaluate(op, x).item() == 1
    assert torch_pool(torch, op, x)[0].item() == 3


def test_max_pool_padding_never_wins() -> None:
    """All real pixels -inf: the index of the first real tap, as PyTorch (whose padding
    is never compared)."""
    x = np.full((1, 1, 3, 3), -np.inf)
    got = evaluate(ops.MaxPool2dIndices((3, 3), (1, 1), (1, 1), (1, 1)), x)
    assert got.ravel().tolist() == [0, 0, 1, 0, 0, 1, 3, 3, 4]


# --------------------------------------------------------------------------- indexing


@st.composite
def scatter_cases(draw: st.DrawFn) -> tuple[ops.ScatterAdd, np.ndarray, np.ndarray]:
    """Updates [lead, indices, trail] with repeated and negative indices."""
    lead = tuple(draw(st.lists(st.integers(0, 3), max_size=2)))
    idx_shape = tuple(draw(st.lists(st.integers(0, 4), max_size=2)))
    trail = tuple(draw(st.lists(st.integers(0, 3), max_size=1)))
    size = draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    idx = rng.integers(-size, size, idx_shape).astype(draw(st.sampled_from(["int32", "int64"])))
    updates = rng.integers(-9, 10, lead + idx_shape + trail).astype(np.float64)
    return ops.ScatterAdd(len(lead), size), updates, idx


@given(scatter_cases())
def test_scatter_add_is_a_loop_of_additions(case: tuple) -> None:
    op, updates, idx = case
    lead, k = updates.shape[:op.axis], idx.ndim
    want = np.zeros(lead + (op.size,) + updates.shape[op.axis + k:])
    for head in np.ndindex(*lead):
        for pos in np.ndindex(*idx.shape):
            want[head + (idx[pos] % op.size,)] += updates[head + pos]
    got = evaluate(op, updates, idx)
    np.testing.assert_array_equal(got, want)  # integer-valued: every order is exact
    along = np.zeros_like(want)
    np.add.at(along, (slice(None),) * op.axis + (idx,), updates)
    np.testing.assert_array_equal(got, along)


@given(st.lists(st.integers(0, 6), min_size=1, max_size=3), st.data())
def test_slices_are_pythons_slicing(shape: list, data: st.DataObject) -> None:
    """Every (start, stop, step) that `slice.indices` gives, empty ranges included,
    selects what Python selects (the op holds the resolved triple)."""
    x = np.arange(np.prod(shape)).reshape(shape)
    index = tuple(slice(data.draw(st.none() | st.integers(-8, 8)),
                        data.draw(st.none() | st.integers(-8, 8)),
                        data.draw(st.sampled_from([None, 1, 2, 3, -1, -2]))) for _ in shape)
    triples = [s.indices(d) for s, d in zip(index, shape)]
    got = evaluate(ops.Slice(*(tuple(t[k] for t in triples) for k in range(3))), x)
    np.testing.assert_array_equal(got, x[index])


# --------------------------------------------------------------------------- random bits


def test_random_bits_give_random123s_known_answer() -> None:
    """Key 0, counter (0, 0): the first two words of the stream (through the backend)."""
    key, counter, expected = KNOWN_ANSWERS[0]
    assert counter == (0, 0)
    b = GraphBuilder()
    k = b.add_input("key", TensorType((2,), "uint32"))
    graph = b.build([b.add(ops.RandomBits((2,)), (k,))])
    (got,) = pyasg.jit_to_backend(graph, "reference")(np.array(key, np.uint32))
    assert got.tolist() == list(expected)


@given(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1),
       st.lists(st.integers(0, 4), max_size=3))
def test_random_bits_follow_the_plain_python_threefry(k0: int, k1: int, shape: list) -> None:
    """Element i is word i % 2 of threefry(key, (i // 2, 0)), in row-major order."""
    got = evaluate(ops.RandomBits(tuple(shape)), np.array([k0, k1], np.uint32))
    n = int(np.prod(shape))
    words = [w for block in range((n + 1) // 2) for w in threefry_reference((k0, k1), (block, 0))]
    assert got.dtype == np.uint32
    np.testing.assert_array_equal(got.ravel(), np.array(words[:n], np.uint32))
