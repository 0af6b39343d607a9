"""numpy indexing on traced (and plain) arrays: basic slicing, integer arrays, and `.at`.

Basic indexing (ints, slices with steps, `None`, `...`) becomes one `slice` and one
`reshape`; integer-array indexing becomes `gather` (several arrays are merged
into one flat index, following numpy's placement rules for adjacent and separated
index arrays). A boolean mask that is a traced value would give a data-dependent
shape, so it raises and suggests `where`.

>>> x = np.arange(12.0).reshape(3, 4)
>>> getitem(x, (np.array([0, 2]), np.array([1, 3]))).tolist()
[1.0, 11.0]
"""

from __future__ import annotations

from math import prod

import numpy as np

from pyasg.array import primitives as P
from pyasg.array.checks import quote
from pyasg.errors import ShapeError, TraceError
from pyasg.trace.tracer import Tracer


def _is_index_array(i: object) -> bool:
    return isinstance(i, (Tracer, np.ndarray, list)) and not (
        isinstance(i, np.ndarray) and i.ndim == 0 and i.dtype.kind in "iu")


def _index_array(i: list) -> np.ndarray:
    try:
        return np.asarray(i)
    except ValueError:  # ragged
        raise ShapeError(f"an index list must be rectangular, got {quote(i)}") from None


def _consumed(i: object) -> int:
    """How many axes of x one normalised index item takes."""
    if i is None or i is Ellipsis:
        return 0
    return i.ndim if isinstance(i, np.ndarray) and i.dtype == bool else 1


def _masks_to_positions(shape: tuple[int, ...], items: list[object]) -> list[object]:
    """Each concrete boolean mask as the index arrays of its True positions, after
    checking that it has the shape of the axes it covers (as numpy does)."""
    out: list[object] = []
    dim = 0
    for i in items:
        if isinstance(i, np.ndarray) and i.dtype == bool:
            covered = shape[dim: dim + i.ndim]
            if i.shape != covered:
                axes = f"axis {dim}" if i.ndim == 1 else f"axes {dim} to {dim + i.ndim - 1}"
                raise ShapeError(f"a boolean index of shape {list(i.shape)} does not match the "
                                 f"shape {list(covered)} of what it indexes ({axes} of an "
                                 f"array of shape {list(shape)})")
            out.extend(np.nonzero(i))  # a concrete mask: its positions are static
        else:
            out.append(i)
        dim += _consumed(i)
    return out


def _normalise(shape: tuple[int, ...], index: object) -> list[object]:
    x_ndim = len(shape)
    items = list(index) if isinstance(index, tuple) else [index]
    out: list[object] = []
    for i in items:
        if isinstance(i, list):
            i = _index_array(i)
        if isinstance(i, (bool, np.bool_)) or (isinstance(i, np.ndarray) and i.dtype == bool
                                               and i.ndim == 0):
            raise ShapeError(f"a scalar boolean index ({i!r}) is not supported: use None for "
                             f"a new axis, or a boolean array with one entry per element")
        if isinstance(i, np.ndarray) and i.dtype == bool:
            out.append(i)  # expanded below, once its axes are known
            continue
        if isinstance(i, Tracer) and i.dtype == "bool":
            raise TraceError(
                f"indexing with a traced boolean mask {i.type!r} ({i.origin()}) would give a "
                f"shape that depends on values. Use pyasg.where(mask, x, 0) to keep the shape, "
                f"or compute the mask outside the traced function.")
        if isinstance(i, (Tracer, np.ndarray)) and i.dtype not in ("int32", "int64", "uint32") \
                and not (isinstance(i, np.ndarray) and i.dtype.kind in "iu"):
            raise ShapeError(f"index arrays must be integers or booleans, got {i.dtype}")
        if isinstance(i, np.ndarray) and i.ndim == 0:
            i = int(i)
        if isinstance(i, (np.integer,)):
            i = int(i)
        if not (i is None or i is Ellipsis or isinstance(i, (int, slice)) or _is_index_array(i)):
            raise ShapeError(f"unsupported index {i!r:.60} of type {type(i).__name__}")
        out.append(i)
    if sum(i is Ellipsis for i in out) > 1:
        raise ShapeError("an index can only have a single ellipsis ('...')")
    consumed = sum(_consumed(i) for i in out)
    if consumed > x_ndim:
        raise ShapeError(f"too many indices ({consumed}) for a {x_ndim}-d array")
    positions = [k for k, i in enumerate(out) if i is Ellipsis]
    if positions:
        k = positions[0]
        out[k: k + 1] = [slice(None)] * (x_ndim - consumed)
    else:
        out += [slice(None)] * (x_ndim - consumed)
    return _masks_to_positions(shape, out)


def _slice_range(i: slice, size: int, dim: int) -> tuple[int, int, int]:
    """`slice.indices`, with a ShapeError for a step of 0 or bounds that are not ints."""
    for part in (i.start, i.stop, i.step):
        if part is not None and (isinstance(part, (bool, np.bool_)) or
                                 not isinstance(part, (int, np.integer))):
            raise ShapeError(f"slice {i} on axis {dim}: start, stop and step must be integers "
                             f"or None, got {quote(part)}")
    if i.step == 0:
        raise ShapeError(f"slice {i} on axis {dim}: the step must not be 0")
    return i.indices(size)


def getitem(x: object, index: object) -> object:
    """`x[index]` with numpy's semantics (no boolean masks that are traced values)."""
    shape = P.type_of(x).shape
    items = _normalise(shape, index)
    advanced = any(_is_index_array(i) for i in items)
    starts, stops, steps = [], [], []
    new_shape: list[int] = []
    adv: list[tuple[int, object]] = []  # (axis after the basic step, index array)
    dim = 0
    for i in items:
        if i is None:
            new_shape.append(1)
            continue
        size = shape[dim]
        if isinstance(i, int):
            if not -size <= i < size:
                raise ShapeError(f"index {i} is out of bounds for axis {dim} with size {size}")
            k = i % size
            starts.append(k), stops.append(k + 1), steps.append(1)
            if advanced:
                adv.append((len(new_shape), np.asarray(0, np.int32)))
                new_shape.append(1)
        elif isinstance(i, slice):
            start, stop, step = _slice_range(i, size, dim)
            n = len(range(start, stop, step))
            if n == 0:
                start, stop, step = 0, 0, 1
            elif step < 0 and stop < 0:
                stop = -1
            starts.append(start), stops.append(stop), steps.append(step)
            new_shape.append(n)
        else:
            starts.append(0), stops.append(size), steps.append(1)
            adv.append((len(new_shape), i))
            new_shape.append(size)
        dim += 1
    y = P.reshape(P.slice_axes(x, starts, stops, steps), new_shape)
    if not adv:
        return y
    return _advanced(y, adv)


def _advanced(y: object, adv: list[tuple[int, object]]) -> object:
    shape = P.type_of(y).shape
    axes = [a for a, _ in adv]
    for a, i in adv:  # before merging axes, where a bad index could land in range
        P.check_indices(i, shape[a], "index")
    if len(adv) == 1:  # gather itself counts negative indices back from the end
        return P.take(y, adv[0][1], axis=axes[0])
    idx, bad = [], None
    for a, i in adv:
        i = P.astype(i, "int32") if not isinstance(i, Tracer) else i
        if isinstance(i, Tracer):  # known only at run time: flag it for the gather below
            out = P.where(P.less(i, -shape[a]), True, P.greater_equal(i, shape[a]))
            bad = out if bad is None else P.where(bad, True, out)
        idx.append(P.where(P.less(i, 0), P.add(i, shape[a]), i))  # before merging axes
    idx = P.broadcast_arrays(*idx)
    adjacent = axes == list(range(axes[0], axes[0] + len(axes)))
    if not adjacent:
        rest = [a for a in range(len(shape)) if a not in axes]
        y = P.transpose(y, axes + rest)
        shape = tuple(shape[a] for a in axes + rest)
        axes = list(range(len(axes)))
    first = axes[0]
    merged = shape[:first] + (prod(shape[a] for a in axes),) + shape[axes[-1] + 1:]
    flat = idx[-1]
    stride = 1
    for a, i in zip(reversed(axes[:-1]), reversed(idx[:-1])):
        stride *= shape[a + 1]
        flat = P.add(flat, P.mul(i, stride))
    if bad is not None:  # an index past its own axis must fail, not land on another element
        flat = P.where(bad, merged[first], flat)
    return P.take(P.reshape(y, merged), flat, axis=first)


class _AtIndex:
    def __init__(self, x: object, index: object) -> None:
        self.x, self.index = x, index

    def _ids(self) -> object:
        shape = P.type_of(self.x).shape
        iota = np.arange(prod(shape), dtype=np.int32).reshape(shape)
        return getitem(iota, self.index)

    def add(self, values: object) -> object:
        """A copy of x with `values` added at the index (repeated positions add up)."""
        t = P.type_of(self.x)
        ids = self._ids()
        v = P.broadcast_to(P.astype(values, t.dtype), P.type_of(ids).shape)
        flat = P.scatter_add(v, ids, 0, t.size) if P.type_of(ids).ndim else \
            P.scatter_add(P.reshape(v, (1,)), P.reshape(ids, (1,)), 0, t.size)
        return P.add(self.x, P.reshape(flat, t.shape))

    def set(self, values: object) -> object:
        """A copy of x with `values` written at the index (positions should be unique)."""
        t = P.type_of(self.x)
        ids = P.reshape(self._ids(), (-1,))
        n = P.type_of(ids).shape[0]
        v = P.reshape(P.broadcast_to(P.astype(values, t.dtype), P.type_of(self._ids()).shape),
                      (n,))
        written = P.reshape(P.scatter_add(v, ids, 0, t.size), t.shape)
        hit = P.reshape(P.scatter_add(np.ones(n, np.int32), ids, 0, t.size), t.shape)
        return P.where(P.greater(hit, 0), written, self.x)


class At:
    """`x.at[index].set(v)` / `.add(v)`: functional updates, as in JAX."""

    def __init__(self, x: object) -> None:
        self.x = x

    def __getitem__(self, index: object) -> _AtIndex:
        return _AtIndex(self.x, index)
