"""An index out of range raises on wgpu as on numpy (and the reference), never clamps.

A shader cannot raise: the gather and scatter-add kernels set their node's status word
and stay memory-safe, and reading any result of that call raises `BackendError`
naming the node (`pyasg.kernels.wgpu.status`). numpy raises at the call itself.
"""

from __future__ import annotations

import numpy as np
import pytest
from wgpu_util import WGPU, require_wgpu

import pyasg
from pyasg.errors import BackendError

pytestmark = WGPU

TABLE = np.arange(12, dtype=np.float32).reshape(4, 3)


def embed(table, ids):  # noqa: ANN001, ANN201
    return pyasg.take(table, ids, axis=0).sum()


@pytest.mark.parametrize("ids", [[0, 9], [1, -5], [4]], ids=["past-end", "before-start", "n"])
@pytest.mark.parametrize("backend", ["numpy", "reference", "wgpu"])
def test_a_gather_index_out_of_range_raises_on_every_backend(backend: str, ids: list) -> None:
    if backend == "wgpu":
        require_wgpu()
    f = pyasg.jit(embed, backend=backend)
    with pytest.raises(BackendError, match="out of range|IndexError|index"):
        np.asarray(f(TABLE, np.array(ids, np.int32)))


def test_in_range_and_negative_indices_agree_with_numpy_on_wgpu() -> None:
    require_wgpu()
    ids = np.array([0, 3, -1, -4, 2], np.int32)
    got = float(pyasg.jit(embed, backend="wgpu")(TABLE, ids))
    assert got == float(TABLE[ids].sum())


def test_the_gradient_of_an_embedding_with_a_bad_id_raises_on_wgpu() -> None:
    require_wgpu()
    g = pyasg.jit(pyasg.grad(embed), backend="wgpu")
    with pytest.raises(BackendError, match="out of range"):
        np.asarray(g(TABLE, np.array([1, 7], np.int32)))


def test_a_later_good_call_is_not_blamed_and_an_earlier_bad_one_still_raises() -> None:
    require_wgpu()
    f = pyasg.jit(embed, backend="wgpu")
    bad = f(TABLE, np.array([9], np.int32))
    good = f(TABLE, np.array([2], np.int32))
    assert float(good) == float(TABLE[2].sum())  # its own status words are clear
    with pytest.raises(BackendError, match="call 1"):
        float(bad)  # the words of call 1 were kept when call 2 began


def test_cross_entropy_with_a_label_out_of_range_raises_on_wgpu() -> None:
    require_wgpu()
    logits = np.zeros((2, 3), np.float32)
    f = pyasg.jit(lambda z, y: pyasg.losses.cross_entropy(z, y), backend="wgpu")
    assert np.isclose(float(f(logits, np.array([0, 2], np.int32))), np.log(3.0))
    with pytest.raises(BackendError, match="out of range"):
        float(f(logits, np.array([0, 3], np.int32)))
