"""WGSL kernel of matmul: a tiled, register-blocked GEMM generated from a Python template.

numpy's semantics: batched, batch dimensions broadcast, a 1-D left operand is a row
(M = 1) and a 1-D right operand a column (N = 1), their unit dimension dropped from
the result (which leaves the row-major layout unchanged, so the kernel never knows).

Algorithm (`gemm_pass`): the output of every batch is cut into TM x TN tiles, one
workgroup per tile (tiles and batches are flattened onto a 2-d grid of workgroups,
so any size fits under 65535 per dimension). The workgroup walks K in steps of TK:
its threads cooperatively copy a TM x TK tile of A (stored transposed, k-major) and a
TK x TN tile of B into workgroup memory, wait at a barrier, and then every thread
multiplies its RM x RN block of outputs from the shared tiles. Loads are
bounds-checked (zeros outside A and B), so M, N and K need not be multiples of the
tile; writes are bounds-checked too. When K (for A) or N (for B) is a multiple of 4
the global loads are vec4 loads.

Performance (the issue's measurements on a real GPU: 0.4 TFLOP/s for a plain 16x16
tile, 2.4 with 8x8 outputs per thread in a private array, 25 once the accumulators
were named vec4 variables): the generator UNROLLS the register block in Python, so
the accumulators are named variables `acc_<row>_<colgroup>` of type vec4 (or vec2,
or scalar, as RN allows) and never a private array indexed by a loop variable, which
drivers put in slow local memory. A thread's columns are interleaved (column group c
of thread x is c * threads_x + x) so that neighbouring threads read neighbouring
vectors of the B tile (no bank conflicts); rows likewise.

Tile shapes are parameters (`Tile`); `choose_tile` takes a 128 x 128 tile with 8 x 8
outputs per thread (16 vec4 accumulators, k loop unrolled too) when M and N are both
>= 128, 64 x 64 with 4 x 4 when both are >= 64, else 32 x 32 with 2 x 2.

Split K (`choose_splits`): when the output has too few tiles to fill a GPU but K is
long (a weight gradient X^T @ dY, a long dot product), each tile's K is split over
several workgroups that write partial products to a scratch buffer, and a second
dispatch (the reduction module's column sum) adds them up. On an H200 that took a
512 x 8192 @ 8192 x 512 product from 1.3 ms to 0.28 ms. Where a default tile alone
gives `FEW_GROUPS` workgroups of short K (`_unsplit_tile`: a weight gradient of a
small layer), the product runs in one pass: the second dispatch would cost more.

Hooks: the GEMM reads each operand through an `Operand` (`Matrix`: a row-major matrix
per batch, the fast path with vec4 loads where rows allow; `View`: a function from
(batch, row, col) to the offset of an input, so that transposes, reshapes and
broadcasts cost index arithmetic, not a copy) and writes every product element
through a `Store` (the output, vec4 where rows allow; a split's partials; or a fused
group's transposed place and elementwise epilogue, from `fused.py`). A split's second
pass carries the final store.

lavapipe (CI) checks that every variant is right; the defaults were measured on an
H200 through Vulkan (see the comment at `LARGE`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from pyasg.asg import ops
from pyasg.asg.types import TensorType
from pyasg.kernels import lower
from pyasg.kernels.wgpu.backend import WgpuBackend
from pyasg.kernels.wgpu.codegen import broadcast_offset, coords, grid, wgsl_type
from pyasg.kernels.wgpu.kernel import Dispatch, WgpuKernel
from pyasg.kernels.wgpu.reductions import Layout, Reducer, Sink, partials, plan
from pyasg.kernels.wgpu.shader import Buffer, Shader, Store, group_entry

LANES = "xyzw"
#: Split K while the output tiles are fewer workgroups than this ...
TARGET_GROUPS = 256
#: ... into at most this many splits of at least MIN_SPLIT_K each,
MAX_SPLITS = 64
MIN_SPLIT_K = 256
#: ... whose partial products take at most this many bytes.
SPLIT_BYTES = 64 << 20
#: No split where a default tile gives at least this many workgroups whose threads each
#: do at most this many multiply-adds: the second dispatch would cost more than the
#: extra parallelism saves (estimates: a dispatch boundary costs a few microseconds).
FEW_GROUPS = 16
MAX_THREAD_MACS = 16384


@dataclass(frozen=True)
class Tile:
    """A workgroup computes a tm x tn output tile stepping K by tk; each thread rm x rn."""

    tm: int
    tn: int
    tk: int
    rm: int
    rn: int
    unroll: bool = False  # unroll the loop over the k of a tile in the generated source

    def __post_init__(self) -> None:
        if self.tm % self.rm or self.tn % self.rn or self.threads > 256:
            raise ValueError(f"bad tile {self}: rm | tm, rn | tn, at most 256 threads")
        if 4 * self.tk * (self.tm + self.tn) > 16384:
            raise ValueError(f"tile {self} needs more than 16 KiB of workgroup memory")

    @property
    def threads(self) -> int:
        return (self.tm // self.rm) * (self.tn // self.rn)

    @property
    def vm(self) -> int:
        """Vector width of the A tile's rows (the As reads)."""
        return _width(self.rm)

    @property
    def vn(self) -> int:
        """Vector width of the accumulators and of the B tile."""
        return _width(self.rn)


def _width(n: int) -> int:
    return 4 if n % 4 == 0 else 2 if n % 2 == 0 else 1


# Measured on an H200 through Vulkan, 4096^3 float32, per call including the
# executable's buffer copies: LARGE 21.7 TFLOP/s (19.6 with tk=8, 18.8 with the k loop
# left to the driver), MEDIUM 18.2, SMALL 11.2.
SMALL = Tile(tm=32, tn=32, tk=16, rm=2, rn=2, unroll=True)
MEDIUM = Tile(tm=64, tn=64, tk=16, rm=4, rn=4, unroll=True)
LARGE = Tile(tm=128, tn=128, tk=16, rm=8, rn=8, unroll=True)  # 16 KiB of tiles: the limit


def choose_tile(m: int, n: int, k: int) -> Tile:
    """The default tile for an m x k @ k x n product (see the module docstring)."""
    if m >= 128 and n >= 128:
        return LARGE
    if m >= 64 and n >= 64:
        return MEDIUM
    return SMALL


def _vec(width: int, ty: str) -> str:
    return ty if width == 1 else f"vec{width}<{ty}>"


def _lane(expr: str, width: int, j: int) -> str:
    return expr if width == 1 else f"{expr}.{LANES[j]}"


@dataclass(frozen=True)
class Problem:
    """One matmul node: batch shapes (output, A, B), sizes, and the element type."""

    batch: tuple[int, ...]
    a_batch: tuple[int, ...]
    b_batch: tuple[int, ...]
    m: int
    n: int
    k: int
    ty: str

    @classmethod
    def of(cls, a: TensorType, b: TensorType) -> Problem:
        sa = (1,) + a.shape if a.ndim == 1 else a.shape
        sb = b.shape + (1,) if b.ndim == 1 else b.shape
        batch = tuple(x if y == 1 else y for x, y in _aligned(sa[:-2], sb[:-2]))
        return cls(batch, sa[:-2], sb[:-2], sa[-2], sb[-1], sa[-1], wgsl_type(a))


def _aligned(x: tuple[int, ...], y: tuple[int, ...]) -> list[tuple[int, int]]:
    n = max(len(x), len(y))
    return list(zip((1,) * (n - len(x)) + x, (1,) * (n - len(y)) + y))


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

    def setup(self, sh: Shader, bt: str) -> str:
        sh.function(f"{self.name}_off", "bt: u32, r: u32, c: u32",
                    f"{self.offset}\n  return off;", "u32")
        return ""

    def load(self, sh: Shader, bt: str, row: str, col: str) -> str:
        array = sh.read(self.array, self.ty, self.bound)
        return f"{array}[{self.name}_off({bt}, {row}, {col})]"


def gemm_pass(p: Problem, t: Tile, a: Operand, b: Operand, store: Store,
              store4: Store | None = None, splits: int = 1, k_split: int = 0) -> Dispatch:
    """The batched, broadcast, bounds-checked tiled matmul of `p` (module docstring):
    operands read through `a` and `b`, product element q (flat, row-major) written by
    `store(q, value)`, or four at once by `store4(q / 4, vec4)` where given and the
    output rows are whole vec4s.

    With `splits` > 1, workgroup (tile, s) sums only k in [s * k_split, ...) (k_split a
    multiple of tk, so no k-tile straddles two splits) and stores its partial product
    as slice s of a [splits][batch][m][n] array.
    """
    sh = Shader()
    ty, vm, vn = p.ty, t.vm, t.vn
    tx_n, ty_n = t.tn // t.rn, t.tm // t.rm  # threads along N and along M
    tiles_n, tiles_m = -(-p.n // t.tn), -(-p.m // t.tm)
    n_out = math.prod(p.batch)
    groups = tiles_n * tiles_m * n_out * splits
    vec_a = a.vec4 and t.tk % 4 == 0
    vec_b = b.vec4 and t.vn == 4  # and the B tile is vec4 too
    vec_out = store4 is not None and p.n % 4 == 0 and t.vn == 4
    sh.workgroup("As", f"array<{_vec(vm, ty)}, {t.tk * t.tm // vm}>")  # [k][m]
    sh.workgroup("Bs", f"array<{_vec(vn, ty)}, {t.tk * t.tn // vn}>")  # [k][n]

    def store_a(k: str, m: str, value: str) -> str:
        """As[k][m] = value (one lane of a vector when vm > 1)."""
        if vm == 1:
            return f"As[({k}) * {t.tm}u + {m}] = {value};"
        return f"As[({k}) * {t.tm // vm}u + {m} / {vm}u][{m} % {vm}u] = {value};"

    lines: list[str] = []
    emit = lines.append
    emit(f"  let g = wid.x + wid.y * nwg.x;\n  if (g >= {groups}u) {{ return; }}"
         "  // uniform: the same for the whole workgroup")
    if splits > 1:
        emit(f"  let s = g % {splits}u;\n  let gt = g / {splits}u;\n"
             f"  let k_lo = s * {k_split}u;\n  let k_hi = min(k_lo + {k_split}u, {p.k}u);")
    else:
        emit(f"  let gt = g;\n  let k_lo = 0u;\n  let k_hi = {p.k}u;")
    emit(f"  let tn = gt % {tiles_n}u;\n  let tm = (gt / {tiles_n}u) % {tiles_m}u;\n"
         f"  let bt = gt / {tiles_n * tiles_m}u;")
    emit(f"  let m0 = tm * {t.tm}u;\n  let n0 = tn * {t.tn}u;")
    emit("\n".join(x for x in (a.setup(sh, "bt"), b.setup(sh, "bt")) if x))

    # ---- cooperative loads of the A tile (transposed into As) and the B tile
    load_a: list[str] = []
    n_a = t.tm * t.tk // (4 if vec_a else 1)
    for s in range(-(-n_a // t.threads)):
        e = f"lid + {s * t.threads}u"
        guard = f"  if ({e} < {n_a}u) {{" if (s + 1) * t.threads > n_a else "  {"
        if vec_a:
            load_a += [guard, f"    let e = {e};", f"    let m = e / {t.tk // 4}u;",
                       f"    let kq = (e % {t.tk // 4}u) * 4u;",
                       "    let gm = m0 + m;", "    let gk = k0 + kq;",
                       f"    var v = vec4<{ty}>();",
                       f"    if (gm < {p.m}u && gk < {p.k}u) "
                       f"{{ v = {a.load4(sh, 'bt', 'gm', 'gk')}; }}"]
            load_a += ["    " + store_a(f"kq + {j}u", "m", f"v.{LANES[j]}") for j in range(4)]
        else:
            load_a += [guard, f"    let e = {e};", f"    let m = e / {t.tk}u;",
                       f"    let kk = e % {t.tk}u;", "    let gm = m0 + m;",
                       "    let gk = k0 + kk;", f"    var v = {ty}();",
                       f"    if (gm < {p.m}u && gk < {p.k}u) "
                       f"{{ v = {a.load(sh, 'bt', 'gm', 'gk')}; }}",
                       "    " + store_a("kk", "m", "v")]
        load_a.append("  }")
    load_b: list[str] = []
    n_b = t.tk * t.tn // (4 if vec_b else 1)
    for s in range(-(-n_b // t.threads)):
        e = f"lid + {s * t.threads}u"
        guard = f"  if ({e} < {n_b}u) {{" if (s + 1) * t.threads > n_b else "  {"
        if vec_b:
            load_b += [guard, f"    let e = {e};", f"    let kk = e / {t.tn // 4}u;",
                       f"    let nq = e % {t.tn // 4}u;", "    let gk = k0 + kk;",
                       "    let gn = n0 + nq * 4u;", f"    var v = vec4<{ty}>();",
                       f"    if (gk < {p.k}u && gn < {p.n}u) "
                       f"{{ v = {b.load4(sh, 'bt', 'gk', 'gn')}; }}",
                       "    Bs[e] = v;"]
        else:
            target = (f"Bs[e / {vn}u][e % {vn}u]" if vn > 1 else "Bs[e]")  # e = kk*tn + n
            load_b += [guard, f"    let e = {e};", f"    let kk = e / {t.tn}u;",
                       f"    let n = e % {t.tn}u;", "    let gk = k0 + kk;",
                       "    let gn = n0 + n;", f"    var v = {ty}();",
                       f"    if (gk < {p.k}u && gn < {p.n}u) "
                       f"{{ v = {b.load(sh, 'bt', 'gk', 'gn')}; }}",
                       f"    {target} = v;"]
        load_b.append("  }")

    # ---- the register block: rows (g * ty_n + ty) * vm + j, column groups c * tx_n + tx
    rows = [(g, j) for g in range(t.rm // vm) for j in range(vm)]
    cols = range(t.rn // vn)
    accs = [f"acc_{r}_{c}" for r in range(t.rm) for c in cols]
    emit(f"  let tx = lid % {tx_n}u;\n  let ty = lid / {tx_n}u;")
    emit("\n".join(f"  var {name} = {_vec(vn, ty)}();" for name in accs))
    emit(f"  for (var k0 = k_lo; k0 < k_hi; k0 += {t.tk}u) {{")
    emit("\n".join("  " + line for line in load_a + load_b))
    emit("    workgroupBarrier();")
    step = []
    for g in range(t.rm // vm):
        step.append(f"let a{g} = As[k * {t.tm // vm}u + {g * ty_n}u + ty];")
    for c in cols:
        step.append(f"let b{c} = Bs[k * {t.tn // vn}u + {c * tx_n}u + tx];")
    for r, (g, j) in enumerate(rows):
        for c in cols:
            step.append(f"acc_{r}_{c} += {_lane(f'a{g}', vm, j)} * b{c};")
    if t.unroll:  # k is a constant in each copy
        for k in range(t.tk):
            emit(f"    {{\n      let k = {k}u;\n" + "\n".join("      " + x for x in step)
                 + "\n    }")
    else:
        emit(f"    for (var k = 0u; k < {t.tk}u; k++) {{\n"
             + "\n".join("      " + x for x in step) + "\n    }")
    emit("    workgroupBarrier();\n  }")
    # ---- bounds-checked writes (whole vec4s when the rows of the output are whole vec4s)
    emit(f"  let o_base = {'(s * ' + str(n_out) + 'u + bt)' if splits > 1 else 'bt'}"
         f" * {p.m * p.n}u;")
    for r, (g, j) in enumerate(rows):
        emit(f"  let row{r} = m0 + ({g * ty_n}u + ty) * {vm}u + {j}u;")
        emit(f"  if (row{r} < {p.m}u) {{")
        for c in cols:
            col, acc = f"col{r}_{c}", f"acc_{r}_{c}"
            emit(f"    let {col} = n0 + ({c * tx_n}u + tx) * {vn}u;")
            where = f"o_base + row{r} * {p.n}u + {col}"
            if vec_out:
                emit(f"    if ({col} < {p.n}u) {{ {store4(sh, f'({where}) / 4u', acc)} }}")
                continue
            for lane in range(vn):
                emit(f"    if ({col} + {lane}u < {p.n}u) "
                     f"{{ {store(sh, f'{where} + {lane}u', _lane(acc, vn, lane))} }}")
        emit("  }")
    return sh.dispatch(group_entry("\n".join(lines), t.threads), grid(groups, 1))


def choose_splits(p: Problem, t: Tile) -> tuple[int, int]:
    """(splits, k per split): split K when the tiles alone are too few workgroups to fill
    a GPU (skinny products, weight gradients X^T @ dY with a long K), as long as every
    split keeps `MIN_SPLIT_K` of K and the partials fit `SPLIT_BYTES`."""
    groups = -(-p.n // t.tn) * -(-p.m // t.tm) * math.prod(p.batch)
    out_bytes = 4 * p.m * p.n * math.prod(p.batch)
    splits = min(MAX_SPLITS, -(-TARGET_GROUPS // groups), p.k // MIN_SPLIT_K,
                 SPLIT_BYTES // out_bytes)
    if splits <= 1:
        return 1, p.k
    k_split = -(-p.k // splits)
    k_split = -(-k_split // t.tk) * t.tk  # whole k-tiles
    return -(-p.k // k_split), k_split


def _unsplit_tile(p: Problem, t: Tile) -> Tile | None:
    """A tile that runs `p` in one pass where a split would not pay: the largest of `t`
    and the smaller defaults that gives at least `FEW_GROUPS` workgroups whose threads
    each do at most `MAX_THREAD_MACS` multiply-adds; None if none does."""
    for c in [t] + [x for x in (MEDIUM, SMALL) if x.tm * x.tn < t.tm * t.tn]:
        groups = -(-p.n // c.tn) * -(-p.m // c.tm) * math.prod(p.batch)
        if groups >= FEW_GROUPS and c.rm * c.rn * p.k <= MAX_THREAD_MACS:
            return c
    return None


def matmul_kernel(a: TensorType, b: TensorType, tile: Tile | None = None,
                  split: bool = True, operands: tuple[Operand, Operand] | None = None,
                  store: Store | None = None) -> WgpuKernel:
    """The kernel of one MatMul node, or, with `operands` and `store`, of the fused group
    it heads (views in, epilogue out); `tile` overrides `choose_tile`.

    Split K: pass 1 writes `splits` partial products to a scratch buffer, laid out
    [split][batch][m][n], and the reduction planner's column sum (coalesced: neighbouring
    threads own neighbouring outputs) adds them into the output, through `store` where
    one is given. A split is a second dispatch and a round trip through memory: where a
    default tile alone gives enough short workgroups (`_unsplit_tile`), the product
    runs in one pass instead.
    """
    p = Problem.of(a, b)
    size = p.m * p.n * math.prod(p.batch)
    if size == 0:
        return WgpuKernel()  # an empty result: nothing to write
    t = tile or choose_tile(p.m, p.n, p.k)
    splits, k_split = choose_splits(p, t) if split else (1, p.k)
    if splits > 1 and tile is None:
        one_pass = _unsplit_tile(p, t)
        if one_pass is not None:
            t, splits, k_split = one_pass, 1, p.k
    lhs, rhs = operands or (Matrix.lhs(p, "a", ("in", 0)), Matrix.rhs(p, "b", ("in", 1)))
    vec4 = f"vec4<{p.ty}>"
    # a fused store is scalar: its epilogue runs per element
    final, final4 = ((store, None) if store is not None else
                     (Buffer("out", p.ty, ("out",)).store, Buffer("out", vec4, ("out",)).store))
    if splits == 1:
        return WgpuKernel((gemm_pass(p, t, lhs, rhs, final, final4),))
    part, part4 = Buffer("part", p.ty, ("tmp", 0)), Buffer("part", vec4, ("tmp", 0))
    gemm = gemm_pass(p, t, lhs, rhs, part.store, part4.store, splits, k_split)
    summed = Layout(((size, 1),), ((splits, size),), size, splits)
    total, _ = plan(Reducer("sum", p.ty), summed, partials(p.ty, False)[0], Sink(final),
                    split=False)
    return WgpuKernel((gemm,) + total, scratch=(4 * size * splits,))


@lower.register(ops.MatMul, WgpuBackend)
def _(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
    return matmul_kernel(in_types[0], in_types[1])
