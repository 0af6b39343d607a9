"""The base of every primitive op, the two leaves (`Input`, `Constant`), and shape helpers.

An op is a frozen, hashable dataclass: its fields are its attributes, `infer(*types)`
is its mandatory shape rule (the output type, or a `ShapeError` naming both shapes),
and its class variables say what it is to the rest of the system: `category` (what the
viewer colours it by), `differentiable`, `arity`, and `fusion_role` and, for views,
`view_kind` (how `pyasg.transforms.fuse` may group it). Every concrete subclass
registers itself in `OPS` by class name, the only way a serialised graph names an op.
An op's hash (that of its fields, as a dataclass's) is computed once and kept: graphs
hash-cons by (op, inputs), so each op is hashed again and again.

>>> Input("x", TensorType((2,))).infer()
f32[2]
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, fields
from operator import attrgetter
from typing import ClassVar

import numpy as np

from pyasg.asg.types import TensorType, check_dtype
from pyasg.errors import ShapeError

#: How `pyasg.transforms.fuse` may put an op into a group with others (its rules read
#: roles, never op classes): "elementwise" (each output element from the same-place
#: element of every input, with broadcasting), "view" (moves elements only: inside a
#: kernel it is index arithmetic), "reduction" (folds axes), "contraction" (a matmul),
#: "leaf" (inputs and constants) and "opaque" (always a kernel of its own).
FUSION_ROLES = ("elementwise", "view", "reduction", "contraction", "leaf", "opaque")

#: Every concrete op class by its name by its name: the only way a serialised graph names an op.
OPS: dict[str, type[Op]] = {}


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def broadcast_shapes(*shapes: tuple[int, ...], op: str = "broadcast") -> tuple[int, ...]:
    """numpy's broadcasting rule; raises `ShapeError` naming every shape.

    >>> broadcast_shapes((4, 1), (1, 8))
    (4, 8)
    """
    if len(shapes) == 2:  # the common cases, answered without the general loop
        a, b = shapes
        if type(a) is tuple and type(b) is tuple and (a == b or not b):
            return a
        if type(b) is tuple and not a:
            return b
    ndim = max((len(s) for s in shapes), default=0)
    out = []
    for axis in range(ndim):
        dims = {s[axis - ndim + len(s)] for s in shapes if axis - ndim + len(s) >= 0}
        dims.discard(1)
        if len(dims) > 1:
            shown = " and ".join(str(list(s)) for s in shapes)
            raise ShapeError(f"{op}: shapes {shown} cannot be broadcast together")
        out.append(dims.pop() if dims else 1)
    return tuple(out)


def normalize_axis(axis: int, ndim: int, op: str) -> int:
    if not -ndim <= axis < max(ndim, 1) or (ndim == 0 and axis not in (0, -1)):
        raise ShapeError(f"{op}: axis {axis} is out of range for a {ndim}-d operand")
    return axis % ndim if ndim else 0


#: op class -> a function giving the values its hash covers (the dataclass's: its
#: compared fields, in order), as one tuple
_HASHED: dict[type, Callable[[Op], tuple]] = {}


def _hashed_values(cls: type) -> Callable[[Op], tuple]:
    names = tuple(f.name for f in fields(cls) if f.compare and f.hash in (None, True))
    if not names:
        return lambda op: ()
    if len(names) == 1:
        (name,) = names
        return lambda op: (getattr(op, name),)
    return attrgetter(*names)


def _cached_hash(op: Op) -> int:
    """The dataclass hash of `op` (of its compared fields, in order), computed once."""
    values = op.__dict__
    cached = values.get("_hash")
    if cached is None:
        of = _HASHED.get(type(op))
        if of is None:
            of = _HASHED[type(op)] = _hashed_values(type(op))
        cached = values["_hash"] = hash(of(op))
    return cached


def _describe(types: tuple[TensorType, ...]) -> str:
    return ", ".join(repr(t) for t in types)


@dataclass(frozen=True)
class Op:
    """Base of every primitive. Subclasses set `category` and implement `infer`."""

    category: ClassVar[str] = "arithmetic"
    differentiable: ClassVar[bool] = True
    #: Number of inputs, or -1 for any number (concatenate).
    arity: ClassVar[int] = 1
    name: ClassVar[str] = "op"
    abstract: ClassVar[bool] = True
    fusion_role: ClassVar[str] = "opaque"
    #: For a "view" op, what it does to element positions (the fusion rules read it where
    #: views differ): "identity" (none move: a no-op), "broadcast" (size-1 axes repeat:
    #: index arithmetic in a kernel), "permute" (axes permuted: a kernel reads or writes
    #: through permuted strides) or "reshape" (same order, axes regrouped).
    view_kind: ClassVar[str | None] = None
    #: True for an op that the compiler replaces by its sub-graph (its `graph`
    #: attribute) before any backend sees it (`CustomCall`): it has no kernels.
    inlined: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        # an explicit __hash__, which @dataclass(frozen=True) then keeps for its own
        cls.__hash__ = _cached_hash  # type: ignore[method-assign]
        if "name" not in cls.__dict__:
            cls.name = _snake(cls.__name__)
        if not cls.__dict__.get("abstract", False):
            cls.abstract = False
            OPS[cls.__name__] = cls

    def infer(self, *inputs: TensorType) -> TensorType:
        """The output type for these input types; raises `ShapeError` if they do not fit."""
        raise NotImplementedError

    def check_arity(self, n: int) -> None:
        if self.arity >= 0 and n != self.arity:
            raise ShapeError(f"{self.name} takes {self.arity} input(s), got {n}")
        if self.arity < 0 and n < 1:
            raise ShapeError(f"{self.name} takes at least one input")

    def __getstate__(self) -> dict[str, object]:
        # a copy or pickle hashes again: str hashes differ between processes
        state = dict(self.__dict__)
        state.pop("_hash", None)
        return state

    def label(self) -> str:
        """A short name for a box in the viewer: the op's name unless it says more.

        >>> Input("x", TensorType(())).label()
        'input'
        """
        return self.name

    def attrs(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def __str__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.attrs().items())
        return f"{self.name}[{shown}]" if shown else self.name


@dataclass(frozen=True)
class Input(Op):
    """A graph input (argument leaf or parameter), named by its pytree path."""

    path: str
    type: TensorType
    category: ClassVar[str] = "input"
    arity: ClassVar[int] = 0
    fusion_role: ClassVar[str] = "leaf"

    def infer(self) -> TensorType:
        return self.type


@dataclass(frozen=True, repr=False)
class Constant(Op):
    """A literal array baked into the graph (raw little-endian bytes, shape, dtype)."""

    data: bytes
    shape: tuple[int, ...]
    dtype: str
    category: ClassVar[str] = "constant"
    arity: ClassVar[int] = 0
    fusion_role: ClassVar[str] = "leaf"

    @classmethod
    def of(cls, value: object, dtype: str | None = None) -> Constant:
        arr = np.asarray(value, dtype=dtype)
        arr = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
        return cls(np.ascontiguousarray(arr).tobytes(), tuple(arr.shape), check_dtype(arr.dtype))

    @property
    def value(self) -> np.ndarray:
        arr = np.frombuffer(self.data, dtype=np.dtype(self.dtype).newbyteorder("<"))
        return arr.reshape(self.shape).astype(self.dtype)

    def infer(self) -> TensorType:
        t = TensorType(self.shape, self.dtype)  # TensorType accepts canonical names only
        if len(self.data) != t.nbytes:
            raise ShapeError(f"constant holds {len(self.data)} bytes, {t!r} needs {t.nbytes}")
        return t

    def __repr__(self) -> str:
        t = TensorType(self.shape, self.dtype)
        if t.size <= 4:
            return f"Constant({self.value.tolist()!r}, {t!r})"
        return f"Constant({t!r})"

    def __str__(self) -> str:
        t = TensorType(self.shape, self.dtype)
        return f"const {self.value.tolist()!r}" if t.size <= 4 else f"const <{t.nbytes} bytes>"


