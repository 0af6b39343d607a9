"""Counter-based, functional random numbers: a key goes in, bits come out.

A key is a uint32[2] array. The same key gives the same numbers on every backend
(the bits are Threefry-2x32, bit-exact in numpy and WGSL). Keys are split, never
mutated, so random state is passed in and returned explicitly, as in JAX.

>>> k = key(0)
>>> a, b = split(k)
>>> bool((uniform(a, (3,)) == uniform(a, (3,))).all())
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from pyasg.array import functional as F
from pyasg.array import primitives as P
from pyasg.asg.types import DEFAULT_FLOAT, check_dtype
from pyasg.errors import PyasgError, ShapeError


def key(seed: int) -> np.ndarray:
    """A key from an integer seed (0 <= seed < 2**64)."""
    seed = int(seed)
    if not 0 <= seed < 2**64:
        raise PyasgError(f"a seed is an integer in [0, 2**64), got {seed}")
    return np.array([seed >> 32, seed & 0xFFFFFFFF], dtype=np.uint32)


def split(key: object, num: int = 2):
    """`num` new independent keys, as an array of shape [num, 2]: `keys[0]`, `keys[1]`, …"""
    return P.random_bits(key, (num, 2))


def bits(key: object, shape: Sequence[int]):
    """Uniform uint32 bits of `shape`."""
    return P.random_bits(key, tuple(shape))


def uniform(key: object, shape: Sequence[int] = (), minval: float = 0.0, maxval: float = 1.0,
            dtype: object = DEFAULT_FLOAT):
    """Uniform floats in [minval, maxval) (24 random bits each)."""
    top = P.floor_divide(P.random_bits(key, tuple(shape)), np.uint32(256))
    unit = P.mul(P.astype(top, check_dtype(dtype)), 2.0 ** -24)
    if (minval, maxval) == (0.0, 1.0):
        return unit
    return P.add(P.mul(unit, maxval - minval), minval)


def normal(key: object, shape: Sequence[int] = (), dtype: object = DEFAULT_FLOAT):
    """Standard normal floats (Box-Muller on two independent uniform draws)."""
    k = split(key)
    u1 = uniform(F.getitem(k, 0), shape, dtype=dtype)
    u2 = uniform(F.getitem(k, 1), shape, dtype=dtype)
    radius = P.sqrt(P.mul(-2.0, P.log1p(P.neg(u1))))  # 1 - u1 is in (0, 1]: log is finite
    return P.mul(radius, P.cos(P.mul(2.0 * math.pi, u2)))


def bernoulli(key: object, p: float | object = 0.5, shape: Sequence[int] = ()):
    """Booleans that are True with probability `p`."""
    return P.less(uniform(key, shape), p)


def dropout(x: object, p: float, key: object, training: bool = True,
            noise_shape: Sequence[int] | None = None):
    """Zero each element with probability `p` and scale the rest by 1/(1-p) (inverted
    dropout, as PyTorch); the identity when not `training`. The mask comes from `key`
    (same key, same mask, on every backend). `noise_shape` broadcasts one draw over
    axes of size 1 (whole channels: see `dropout2d`)."""
    if not 0.0 <= p <= 1.0:
        raise ShapeError(f"dropout probability must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return F.mul(x, 0.0)
    shape = F.type_of(x).shape if noise_shape is None else tuple(noise_shape)
    keep = bernoulli(key, 1.0 - p, shape)
    return F.where(keep, F.mul(x, 1.0 / (1.0 - p)), 0.0)


def dropout2d(x: object, p: float, key: object, training: bool = True):
    """Spatial dropout: drop whole channels of [N, C, H, W] (or [N, C, L]) input."""
    shape = F.type_of(x).shape
    return dropout(x, p, key, training, noise_shape=shape[:2] + (1,) * (len(shape) - 2))
