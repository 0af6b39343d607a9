"""Threefry-2x32 (20 rounds), the counter-based generator behind `random_bits`.

The definition every backend follows bit for bit (Salmon et al., "Parallel random
numbers: as easy as 1, 2, 3", SC'11; Random123's reference vectors are in the tests):
element i of the flat output is word i % 2 of threefry(key, counter=(i // 2, 0)).

>>> random_bits(np.array([0, 0], np.uint32), (2,)).tolist()
[1797259609, 2579123966]
"""

from __future__ import annotations

import numpy as np

ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
PARITY = 0x1BD11BDA


def _rotl(x: np.ndarray, r: int) -> np.ndarray:
    return (x << np.uint32(r)) | (x >> np.uint32(32 - r))


def threefry2x32(key: np.ndarray, x0: np.ndarray, x1: np.ndarray) -> tuple[np.ndarray, ...]:
    """Threefry-2x32-20 of counter words (x0, x1) under a uint32[2] key."""
    k0, k1 = np.uint32(key[0]), np.uint32(key[1])
    ks = (k0, k1, np.uint32(k0 ^ k1 ^ np.uint32(PARITY)))
    with np.errstate(over="ignore"):
        x0 = x0.astype(np.uint32) + ks[0]
        x1 = x1.astype(np.uint32) + ks[1]
        for block in range(5):
            for r in ROTATIONS[block % 2]:
                x0 = x0 + x1
                x1 = _rotl(x1, r) ^ x0
            x0 = x0 + ks[(block + 1) % 3]
            x1 = x1 + ks[(block + 2) % 3] + np.uint32(block + 1)
    return x0, x1


def random_bits(key: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """uint32 bits of `shape` from a uint32[2] key."""
    n = int(np.prod(shape, dtype=np.int64))
    blocks = (n + 1) // 2
    y0, y1 = threefry2x32(key, np.arange(blocks, dtype=np.uint32),
                          np.zeros(blocks, dtype=np.uint32))
    return np.stack([y0, y1], axis=1).reshape(-1)[:n].reshape(shape)
