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
from pyasg.array.checks import as_bool, as_dtype, as_int, as_real, as_shape, as_size, quote
from pyasg.asg.types import DEFAULT_FLOAT, is_float
from pyasg.errors import ShapeError


def key(seed: int) -> np.ndarray:
    """A key from an integer seed (0 <= seed < 2**64; not a float, which would round).

    >>> key(2**32 + 5).tolist()
    [1, 5]
    """
    if isinstance(seed, np.ndarray) and seed.ndim == 0 and seed.dtype.kind in "iu":
        seed = seed.item()
    seed = as_int(seed, "random.key: the seed")
    if not 0 <= seed < 2**64:
        raise ShapeError(f"random.key: a seed is an integer in [0, 2**64), got {seed}")
    return np.array([seed >> 32, seed & 0xFFFFFFFF], dtype=np.uint32)


def _float_dtype(dtype: object, name: str) -> str:
    dtype = as_dtype(dtype, f"random.{name}: dtype")
    if not is_float(dtype):
        raise ShapeError(f"random.{name} draws floats: dtype must be float32 or float64, got "
                         f"{dtype}")
    return dtype


def _key(key: object, name: str) -> object:
    t = P.type_of(key)
    if t.shape != (2,) or t.dtype not in ("uint32", "int32", "int64"):
        raise ShapeError(f"random.{name}: a key is a uint32[2] array (from random.key or "
                         f"random.split), got {t!r}")
    if not P.is_tracer(key) and t.dtype != "uint32":
        words = np.asarray(key)
        if ((words < 0) | (words >= 2**32)).any():
            raise ShapeError(f"random.{name}: a key holds two 32-bit words, got {quote(key)}")
    return key


def split(key: object, num: int = 2):
    """`num` new independent keys, as an array of shape [num, 2]: `keys[0]`, `keys[1]`, …

    >>> split(key(0), 3).shape
    (3, 2)
    """
    return P.random_bits(_key(key, "split"), (as_size(num, "random.split: num"), 2))


def bits(key: object, shape: Sequence[int]):
    """Uniform uint32 bits of `shape`.

    >>> bits(key(0), (2, 3)).dtype
    dtype('uint32')
    """
    return P.random_bits(_key(key, "bits"), as_shape(shape, "random.bits: shape"))


def _is_number(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def uniform(key: object, shape: Sequence[int] = (), minval: float = 0.0, maxval: float = 1.0,
            dtype: object = DEFAULT_FLOAT):
    """Uniform floats in [minval, maxval) (24 random bits each); the bounds may be arrays
    that broadcast with `shape`.

    >>> float(uniform(key(0), (1000,)).max()) < 1.0
    True
    """
    dtype = _float_dtype(dtype, "uniform")
    top = P.floor_divide(P.random_bits(_key(key, "uniform"), as_shape(
        shape, "random.uniform: shape")), np.uint32(256))
    unit = P.mul(P.astype(top, dtype), 2.0 ** -24)
    if _is_number(minval) and _is_number(maxval):
        if (minval, maxval) == (0.0, 1.0):
            return unit
        span = maxval - minval  # in Python's float64, rounded once into dtype
    else:
        span = P.sub(maxval, minval)
    return P.add(P.mul(unit, span), minval)


def normal(key: object, shape: Sequence[int] = (), dtype: object = DEFAULT_FLOAT):
    """Standard normal floats (Box-Muller on two independent uniform draws).

    >>> normal(key(0), (2,), dtype="float64").dtype
    dtype('float64')
    """
    dtype = _float_dtype(dtype, "normal")
    shape = as_shape(shape, "random.normal: shape")
    k = split(key)
    u1 = uniform(F.getitem(k, 0), shape, dtype=dtype)
    u2 = uniform(F.getitem(k, 1), shape, dtype=dtype)
    radius = P.sqrt(P.mul(-2.0, P.log1p(P.neg(u1))))  # 1 - u1 is in (0, 1]: log is finite
    return P.mul(radius, P.cos(P.mul(2.0 * math.pi, u2)))


def bernoulli(key: object, p: float | object = 0.5, shape: Sequence[int] = ()):
    """Booleans that are True with probability `p`.

    >>> bernoulli(key(0), 0.0, (3,)).tolist()
    [False, False, False]
    """
    return P.less(uniform(key, shape), p)


def dropout(x: object, p: float, key: object, training: bool = True,
            noise_shape: Sequence[int] | None = None):
    """Zero each element with probability `p` and scale the rest by 1/(1-p) (inverted
    dropout, as PyTorch); the identity when not `training`. The mask comes from `key`
    (same key, same mask, on every backend). `noise_shape` broadcasts one draw over
    axes of size 1 (whole channels: see `dropout2d`)."""
    p = as_real(p, "dropout: p")
    if not 0.0 <= p <= 1.0:
        raise ShapeError(f"dropout probability must be in [0, 1], got {p}")
    if not as_bool(training, "dropout: training") or p == 0.0:
        return x
    if p == 1.0:
        return F.mul(x, 0.0)
    shape = F.type_of(x).shape if noise_shape is None else as_shape(noise_shape,
                                                                    "dropout: noise_shape")
    keep = bernoulli(key, 1.0 - p, shape)
    return F.where(keep, F.mul(x, 1.0 / (1.0 - p)), 0.0)


def dropout2d(x: object, p: float, key: object, training: bool = True):
    """Spatial dropout: drop whole channels of [N, C, H, W] (or [N, C, L]) input."""
    shape = F.type_of(x).shape
    return dropout(x, p, key, training, noise_shape=shape[:2] + (1,) * (len(shape) - 2))
