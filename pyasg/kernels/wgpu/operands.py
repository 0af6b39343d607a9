"""How the GEMM reads its operands: a row-major matrix per batch, or a view of an input.

An `Operand` gives the WGSL of one element (row, col) of its matrix for output batch
`bt` (and, where `vec4`, of four neighbouring elements of a row at once), and says
how it lays its elements out in memory (`layout`: the tuner keeps its choices per
layout, since a transposed operand may want its threads to read along another index).

>>> from pyasg.asg.types import TensorType
>>> p = Problem.of(TensorType((8, 16)), TensorType((16, 4)))
>>> Matrix.lhs(p, "a", ("in", 0)).layout, Matrix.rhs(p, "b", ("in", 1), False).layout
('rows4', 'rows')
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Protocol

from pyasg.kernels.wgpu.codegen import broadcast_offset, coords
from pyasg.kernels.wgpu.shader import Shader
from pyasg.kernels.wgpu.tiles import Problem


def batch_fn(sh: Shader, name: str, out_batch: tuple[int, ...],
             in_batch: tuple[int, ...]) -> str:
    """Declare `fn name(bt: u32) -> u32`: which matrix of an operand output batch `bt`
    uses; returns `name`."""
    if math.prod(in_batch) <= 1:
        return sh.function(name, "bt: u32", "  return 0u;", "u32")
    if in_batch == out_batch[len(out_batch) - len(in_batch):] \
            and math.prod(in_batch) == math.prod(out_batch):
        return sh.function(name, "bt: u32", "  return bt;", "u32")
    return sh.function(name, "bt: u32", f"{coords(out_batch, 'bt')}\n"
                       f"  return {broadcast_offset(out_batch, in_batch, var='bt')};", "u32")


class Operand(Protocol):
    """How the GEMM reads one operand: element (row, col) of its matrix for output batch
    `bt` (WGSL u32 expressions). `load4` (called only where `vec4`) reads elements
    (row, col .. col + 3) as one vec4, col a multiple of 4."""

    vec4: bool

    @property
    def layout(self) -> str:
        """How the elements lie in memory, for the tuner's key ("rows", "rows4", "view-<hash>")."""

    def setup(self, sh: Shader, bt: str) -> str:
        """WGSL lets run once per workgroup before any load ("" for none)."""

    def load(self, sh: Shader, bt: str, row: str, col: str) -> str: ...

    def load4(self, sh: Shader, bt: str, row: str, col: str) -> str: ...


@dataclass(frozen=True)
class Matrix:
    """An operand stored as one row-major `rows` x `cols` matrix per batch of its own
    (`batch`, broadcast against the product's `out_batch`) in binding `array`: the plain
    kernel's fast path. `vectorise`: whether the binding may be read as vec4s (not
    where something else reads it as scalars).

    >>> from pyasg.asg.types import TensorType
    >>> p = Problem.of(TensorType((8, 16)), TensorType((16, 4)))
    >>> sh = Shader()
    >>> a = Matrix.lhs(p, "a", ("in", 0))
    >>> a.setup(sh, "bt"), a.load4(sh, "bt", "gm", "gk")
    ('  let a_base = a_batch(bt) * 128u;', 'a[(a_base + gm * 16u + gk) / 4u]')
    """

    name: str  # "a" or "b": names its lets and functions
    array: str
    bound: tuple
    ty: str
    rows: int
    cols: int
    batch: tuple[int, ...]
    out_batch: tuple[int, ...]
    vectorise: bool = True

    @classmethod
    def lhs(cls, p: Problem, array: str, bound: tuple, vectorise: bool = True) -> Matrix:
        """The left operand of `p`: m x k matrices."""
        return cls("a", array, bound, p.ty, p.m, p.k, p.a_batch, p.batch, vectorise)

    @classmethod
    def rhs(cls, p: Problem, array: str, bound: tuple, vectorise: bool = True) -> Matrix:
        """The right operand of `p`: k x n matrices."""
        return cls("b", array, bound, p.ty, p.k, p.n, p.b_batch, p.batch, vectorise)

    @property
    def vec4(self) -> bool:
        # rows of whole vec4s; an empty operand's 4-byte placeholder is too small to bind
        # as an array of vec4
        return self.vectorise and self.rows * self.cols > 0 and self.cols % 4 == 0

    @property
    def layout(self) -> str:
        return "rows4" if self.vec4 else "rows"

    def setup(self, sh: Shader, bt: str) -> str:
        fn = batch_fn(sh, f"{self.name}_batch", self.out_batch, self.batch)
        return f"  let {self.name}_base = {fn}({bt}) * {self.rows * self.cols}u;"

    def _at(self, row: str, col: str) -> str:
        return f"{self.name}_base + {row} * {self.cols}u + {col}"

    def load(self, sh: Shader, bt: str, row: str, col: str) -> str:
        return f"{sh.read(self.array, self.ty, self.bound)}[{self._at(row, col)}]"

    def load4(self, sh: Shader, bt: str, row: str, col: str) -> str:
        array = sh.read(self.array, f"vec4<{self.ty}>", self.bound)
        return f"{array}[({self._at(row, col)}) / 4u]"


@dataclass(frozen=True)
class View:
    """An operand read through views of the input in binding `array`: `offset`, the
    WGSL lets of a function of (bt, r, c) ending in `off`, the flat offset of element
    (r, c) for output batch bt (transposes, reshapes, broadcasts; see `fused.py`)."""

    name: str  # "a" or "b": names its function
    array: str
    bound: tuple
    ty: str
    offset: str
    vec4 = False

    @property
    def layout(self) -> str:
        # the offset's text says everything about the layout: its strides and shapes
        return "view-" + hashlib.sha256(self.offset.encode()).hexdigest()[:12]

    def setup(self, sh: Shader, bt: str) -> str:
        sh.function(f"{self.name}_off", "bt: u32, r: u32, c: u32",
                    f"{self.offset}\n  return off;", "u32")
        return ""

    def load(self, sh: Shader, bt: str, row: str, col: str) -> str:
        array = sh.read(self.array, self.ty, self.bound)
        return f"{array}[{self.name}_off({bt}, {row}, {col})]"


@dataclass(frozen=True)
class Transposed:
    """An operand that is the transpose of a row-major matrix in binding `array`: its
    element (row, col) is stored at col * rows + row (a weight W [n, k] read as W^T, or
    a layer input X [B*T, d] read as X^T). Its contiguous direction is down a column, so
    `load_down4` reads elements (row .. row + 3, col) as one vec4, row a multiple of 4,
    where `vec4_down` (the tuner's read orders "km4" for A and "nk4" for B use it).
    Scalar `load`s work as a view's do. `vectorise`: as `Matrix`'s.

    >>> t = Transposed("b", "w", ("in", 1), "f32", rows=16, cols=8)
    >>> t.layout, t.load(Shader(), "bt", "gk", "gn")
    ('cols4', 'w[gn * 16u + gk]')
    """

    name: str
    array: str
    bound: tuple
    ty: str
    rows: int
    cols: int
    vectorise: bool = True
    vec4 = False  # no vec4 along a row

    @property
    def vec4_down(self) -> bool:
        return self.vectorise and self.rows * self.cols > 0 and self.rows % 4 == 0

    @property
    def layout(self) -> str:
        return "cols4" if self.vec4_down else "cols"

    def setup(self, sh: Shader, bt: str) -> str:
        return ""

    def load(self, sh: Shader, bt: str, row: str, col: str) -> str:
        return f"{sh.read(self.array, self.ty, self.bound)}[{col} * {self.rows}u + {row}]"

    def load_down4(self, sh: Shader, bt: str, row: str, col: str) -> str:
        array = sh.read(self.array, f"vec4<{self.ty}>", self.bound)
        return f"{array}[({col} * {self.rows}u + {row}) / 4u]"
