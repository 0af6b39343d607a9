"""Initialisers with PyTorch's formulas and fans; every random draw takes a key.

Each returns a numpy array of `shape` (float32 unless `dtype` says otherwise).
Fans follow `torch.nn.init`: for a Linear weight [out, in], fan_in = in and
fan_out = out; for a convolution weight [out, in/groups, kh, kw], both are
multiplied by kh*kw. A weight with no elements is returned empty (PyTorch: a no-op),
whatever its fans. Every argument is checked (`pyasg.nn.checks`), and an array no
machine or not this one can hold is an `ArgumentError`, not numpy's MemoryError.

>>> import pyasg
>>> w = kaiming_uniform(pyasg.random.key(0), (64, 32), nonlinearity="relu")
>>> bool(abs(w).max() <= (6 / 32) ** 0.5)
True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from pyasg.array import random
from pyasg.asg.types import DTYPES
from pyasg.errors import PyasgError
from pyasg.nn import checks

Shape = Sequence[int]

#: calculate_gain's table: the gain of each nonlinearity that needs no parameter.
GAINS = {"linear": 1.0, "identity": 1.0, "sigmoid": 1.0, "tanh": 5.0 / 3.0,
         "relu": math.sqrt(2.0), "selu": 0.75}


def _shape(shape: object, who: str) -> tuple[int, ...]:
    return checks.ints(shape, f"init.{who}", "shape")


def _made(make: Callable[[], np.ndarray], shape: tuple[int, ...], dtype: str,
          who: str) -> np.ndarray:
    return checks.allocate(make, shape, dtype, f"init.{who}")


def fans(shape: Shape) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of this shape, as torch.nn.init computes them.

    >>> fans((8, 3, 5, 5))
    (75, 200)
    """
    shape = _shape(shape, "fans")
    if len(shape) < 2:
        raise PyasgError(f"fan in and fan out need a weight of at least 2 dimensions, "
                         f"got shape {shape}")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """torch.nn.init.calculate_gain: the recommended gain for a nonlinearity.

    >>> calculate_gain("tanh"), calculate_gain("leaky_relu", 0.0) == math.sqrt(2.0)
    (1.6666666666666667, True)
    """
    if not isinstance(nonlinearity, str):
        raise PyasgError(f"calculate_gain: nonlinearity must be a name, got "
                         f"{checks.quote(nonlinearity)}")
    if nonlinearity.startswith("conv"):  # conv1d, conv_transpose2d, …: linear
        return 1.0
    if nonlinearity == "leaky_relu":
        slope = checks.real(param, "calculate_gain", "param (the negative slope)", none=True)
        slope = 0.01 if slope is None else slope
        return math.sqrt(2.0 / (1.0 + slope * slope))  # a huge slope: inf, not OverflowError
    if nonlinearity not in GAINS:
        raise PyasgError(f"unknown nonlinearity {checks.quote(nonlinearity)}; known: "
                         f"{', '.join(sorted(GAINS))}, leaky_relu, conv*")
    return GAINS[nonlinearity]


def zeros(shape: Shape, dtype: str = "float32") -> np.ndarray:
    """All zeros.

    >>> zeros((2,), "int32").tolist()
    [0, 0]
    """
    shape, dtype = _shape(shape, "zeros"), checks.float_dtype(dtype, "init.zeros",
                                                               allowed=DTYPES)
    return _made(lambda: np.zeros(shape, dtype), shape, dtype, "zeros")


def ones(shape: Shape, dtype: str = "float32") -> np.ndarray:
    """All ones.

    >>> ones(2).tolist()
    [1.0, 1.0]
    """
    shape, dtype = _shape(shape, "ones"), checks.float_dtype(dtype, "init.ones",
                                                              allowed=DTYPES)
    return _made(lambda: np.ones(shape, dtype), shape, dtype, "ones")


def constant(shape: Shape, value: float, dtype: str = "float32") -> np.ndarray:
    """All `value`.

    >>> constant((1, 2), 0.5).tolist()
    [[0.5, 0.5]]
    """
    shape = _shape(shape, "constant")
    dtype = checks.float_dtype(dtype, "init.constant", allowed=DTYPES)
    value = checks.real(value, "init.constant", "value", "[-inf, inf]")
    return _made(lambda: np.full(shape, value, dtype), shape, dtype, "constant")


def uniform(key: object, shape: Shape, a: float = 0.0, b: float = 1.0,
            dtype: str = "float32") -> np.ndarray:
    """U(a, b).

    >>> import pyasg
    >>> bool((uniform(pyasg.random.key(0), (100,), -1.0, 1.0) >= -1.0).all())
    True
    """
    shape, dtype = _shape(shape, "uniform"), checks.float_dtype(dtype, "init.uniform")
    a, b = checks.real(a, "init.uniform", "a"), checks.real(b, "init.uniform", "b")
    return _made(lambda: np.asarray(random.uniform(key, shape, a, b, dtype=dtype)), shape,
                 dtype, "uniform")


def normal(key: object, shape: Shape, mean: float = 0.0, std: float = 1.0,
           dtype: str = "float32") -> np.ndarray:
    """N(mean, std²).

    >>> import pyasg
    >>> normal(pyasg.random.key(0), (2, 3), std=0.02).shape
    (2, 3)
    """
    shape, dtype = _shape(shape, "normal"), checks.float_dtype(dtype, "init.normal")
    mean = checks.real(mean, "init.normal", "mean")
    std = checks.real(std, "init.normal", "std", "[0, inf)")
    return _made(lambda: np.asarray(random.normal(key, shape, dtype=dtype) * std + mean,
                                    dtype), shape, dtype, "normal")


def xavier_uniform(key: object, shape: Shape, gain: float = 1.0,
                   dtype: str = "float32") -> np.ndarray:
    """U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out)) (Glorot)."""
    gain = checks.real(gain, "init.xavier_uniform", "gain")
    fan_in, fan_out = fans(shape)
    if fan_in * fan_out == 0:  # no elements: PyTorch's no-op
        return zeros(shape, checks.float_dtype(dtype, "init.xavier_uniform"))
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform(key, shape, -bound, bound, dtype)


def xavier_normal(key: object, shape: Shape, gain: float = 1.0,
                  dtype: str = "float32") -> np.ndarray:
    """N(0, std²) with std = gain * sqrt(2 / (fan_in + fan_out)) (Glorot)."""
    gain = checks.real(gain, "init.xavier_normal", "gain")
    fan_in, fan_out = fans(shape)
    if fan_in * fan_out == 0:  # no elements: PyTorch's no-op
        return zeros(shape, checks.float_dtype(dtype, "init.xavier_normal"))
    return normal(key, shape, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), dtype)


def _kaiming_std(shape: Shape, a: float, mode: str, nonlinearity: str) -> float | None:
    """gain / sqrt(fan); None for a weight with no elements (nothing to draw)."""
    mode = checks.choice(mode, "init.kaiming", "mode", ("fan_in", "fan_out"))
    gain = calculate_gain(nonlinearity, a)
    fan_in, fan_out = fans(shape)
    if fan_in * fan_out == 0:
        return None
    fan = fan_in if mode == "fan_in" else fan_out
    return gain / math.sqrt(fan)


def kaiming_uniform(key: object, shape: Shape, a: float = 0.0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu", dtype: str = "float32") -> np.ndarray:
    """U(-b, b) with b = sqrt(3) * gain / sqrt(fan) (He); PyTorch's defaults."""
    std = _kaiming_std(shape, a, mode, nonlinearity)
    if std is None:  # no elements: PyTorch's no-op
        return zeros(shape, checks.float_dtype(dtype, "init.kaiming_uniform"))
    bound = math.sqrt(3.0) * std
    return uniform(key, shape, -bound, bound, dtype)


def kaiming_normal(key: object, shape: Shape, a: float = 0.0, mode: str = "fan_in",
                   nonlinearity: str = "leaky_relu", dtype: str = "float32") -> np.ndarray:
    """N(0, std²) with std = gain / sqrt(fan) (He); PyTorch's defaults."""
    std = _kaiming_std(shape, a, mode, nonlinearity)
    if std is None:  # no elements: PyTorch's no-op
        return zeros(shape, checks.float_dtype(dtype, "init.kaiming_normal"))
    return normal(key, shape, 0.0, std, dtype)
