"""wgpu elementwise kernels equal numpy, with broadcasting, for every dtype the GPU has."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wgpu_util import WGPU, wgpu_parity

import pyasg

pytestmark = WGPU

UNARY = {
    "neg": pyasg.neg, "abs": pyasg.abs, "sign": pyasg.sign, "exp": pyasg.exp,
    "log": lambda x: pyasg.log(pyasg.abs(x) + 0.1), "log1p": lambda x: pyasg.log1p(x * x),
    "expm1": pyasg.expm1, "sqrt": lambda x: pyasg.sqrt(pyasg.abs(x)), "sin": pyasg.sin,
    "cos": pyasg.cos, "tanh": lambda x: pyasg.tanh(x * 10.0), "erf": pyasg.erf,
}

BINARY = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
    "div": lambda a, b: a / (pyasg.abs(b) + 0.5), "maximum": pyasg.maximum,
    "minimum": pyasg.minimum, "pow": lambda a, b: pyasg.abs(a) ** b,
    "floor_div": lambda a, b: a // (pyasg.abs(b) + 0.5),
    "mod": lambda a, b: a % (pyasg.abs(b) + 0.5),
    "less": lambda a, b: a < b, "less_equal": lambda a, b: a <= b,
    "greater": lambda a, b: a > b, "greater_equal": lambda a, b: a >= b,
    "equal": lambda a, b: a == pyasg.maximum(a, b), "not_equal": lambda a, b: a != b,
}

BROADCASTS = [((5, 3), (1, 3)), ((5, 1), (1, 3)), ((3,), (2, 3)), ((4, 1, 6), (5, 1)),
              ((300,), ()), ((2, 3, 4), (2, 3, 4)), ((1,), (7, 1))]


def data(shape, seed=0):  # noqa: ANN001, ANN201
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32) * 2


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_matches_numpy(name):
    wgpu_parity(UNARY[name], data((7, 41)))


@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize("shapes", BROADCASTS, ids=str)
def test_binary_with_broadcasting_matches_numpy(name, shapes):
    wgpu_parity(BINARY[name], data(shapes[0], 1), data(shapes[1], 2))


@settings(deadline=None)
@given(shape=st.lists(st.integers(1, 6), min_size=0, max_size=3),
       drop=st.lists(st.booleans(), min_size=3, max_size=3), seed=st.integers(0, 99))
def test_generated_broadcasts_match_numpy(shape, drop, seed):
    other = [1 if d else n for n, d in zip(shape, drop)]
    wgpu_parity(lambda a, b, c: pyasg.where(a > b, a * c, b - c), data(tuple(shape), seed),
                data(tuple(other), seed + 1), data(tuple(shape[1:]), seed + 2))


def test_integer_ops_follow_numpy_signs():
    a = np.array([-7, -6, -1, 0, 5, 7, 9], np.int32)
    b = np.array([2, -4, 3, 5, -3, 7, 2], np.int32)
    wgpu_parity(lambda a, b: (a // b, a % b, a * b - a, pyasg.maximum(a, b), a ** 2,
                              pyasg.abs(a), -a, pyasg.sign(a)), a, b)


def test_negative_bases_with_integer_powers_and_zero_powers():
    a = np.array([-2.0, -0.5, 0.0, 0.0, 3.0], np.float32)
    b = np.array([3.0, 2.0, 0.0, 2.0, -1.0], np.float32)
    wgpu_parity(lambda a, b: a ** b, a, b)


def test_where_cast_and_bool_logic():
    x = data((6, 5))
    wgpu_parity(lambda x: (pyasg.where(x > 0, x, 0.0), (x > 0).astype("float32"),
                           x.astype("int32"), (x > 0) & (x < 1), ~(x > 0),
                           pyasg.relu(x), pyasg.sigmoid(x), pyasg.gelu(x),
                           pyasg.gelu(x, approximate=True), pyasg.softplus(x)), x)


def test_large_tensors_cross_many_workgroups():
    wgpu_parity(lambda a, b: pyasg.exp(-a * a) + b, data((70_001,)), data((1,)))
