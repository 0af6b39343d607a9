"""Initialisers with PyTorch's formulas and fans; every random draw takes a key.

Each returns a numpy array of `shape` (float32 unless `dtype` says otherwise).
Fans follow `torch.nn.init`: for a Linear weight [out, in], fan_in = in and
fan_out = out; for a convolution weight [out, in/groups, kh, kw], both are
multiplied by kh*kw.

>>> import pyasg
>>> w = kaiming_uniform(pyasg.random.key(0), (64, 32), nonlinearity="relu")
>>> bool(abs(w).max() <= (6 / 32) ** 0.5)
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from pyasg.array import random
from pyasg.errors import PyasgError

Shape = Sequence[int]


def fans(shape: Shape) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of this shape, as torch.nn.init computes them."""
    shape = tuple(shape)
    if len(shape) < 2:
        raise PyasgError(f"fan in and fan out need a weight of at least 2 dimensions, "
                         f"got shape {shape}")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """torch.nn.init.calculate_gain: the recommended gain for a nonlinearity."""
    if nonlinearity in ("linear", "identity", "sigmoid") or nonlinearity.startswith("conv"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1.0 + slope**2))
    if nonlinearity == "selu":
        return 0.75
    raise PyasgError(f"unknown nonlinearity {nonlinearity!r}")


def zeros(shape: Shape, dtype: str = "float32") -> np.ndarray:
    """All zeros."""
    return np.zeros(tuple(shape), dtype)


def ones(shape: Shape, dtype: str = "float32") -> np.ndarray:
    """All ones."""
    return np.ones(tuple(shape), dtype)


def constant(shape: Shape, value: float, dtype: str = "float32") -> np.ndarray:
    """All `value`."""
    return np.full(tuple(shape), value, dtype)


def uniform(key: object, shape: Shape, a: float = 0.0, b: float = 1.0,
            dtype: str = "float32") -> np.ndarray:
    """U(a, b)."""
    return np.asarray(random.uniform(key, tuple(shape), a, b, dtype=dtype))


def normal(key: object, shape: Shape, mean: float = 0.0, std: float = 1.0,
           dtype: str = "float32") -> np.ndarray:
    """N(mean, std²)."""
    return np.asarray(random.normal(key, tuple(shape), dtype=dtype) * std + mean, dtype)


def xavier_uniform(key: object, shape: Shape, gain: float = 1.0,
                   dtype: str = "float32") -> np.ndarray:
    """U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out)) (Glorot)."""
    fan_in, fan_out = fans(shape)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform(key, shape, -bound, bound, dtype)


def xavier_normal(key: object, shape: Shape, gain: float = 1.0,
                  dtype: str = "float32") -> np.ndarray:
    """N(0, std²) with std = gain * sqrt(2 / (fan_in + fan_out)) (Glorot)."""
    fan_in, fan_out = fans(shape)
    return normal(key, shape, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), dtype)


def _kaiming_std(shape: Shape, a: float, mode: str, nonlinearity: str) -> float:
    if mode not in ("fan_in", "fan_out"):
        raise PyasgError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = fans(shape)
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform(key: object, shape: Shape, a: float = 0.0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu", dtype: str = "float32") -> np.ndarray:
    """U(-b, b) with b = sqrt(3) * gain / sqrt(fan) (He); PyTorch's defaults."""
    bound = math.sqrt(3.0) * _kaiming_std(shape, a, mode, nonlinearity)
    return uniform(key, shape, -bound, bound, dtype)


def kaiming_normal(key: object, shape: Shape, a: float = 0.0, mode: str = "fan_in",
                   nonlinearity: str = "leaky_relu", dtype: str = "float32") -> np.ndarray:
    """N(0, std²) with std = gain / sqrt(fan) (He); PyTorch's defaults."""
    return normal(key, shape, 0.0, _kaiming_std(shape, a, mode, nonlinearity), dtype)
