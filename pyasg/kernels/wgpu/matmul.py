"""WGSL kernel of matmul: a tiled, register-blocked GEMM generated from a Python template.

numpy's semantics: batched, batch dimensions broadcast, a 1-D left operand is a row
(M = 1) and a 1-D right operand a column (N = 1), their unit dimension dropped from
the result (which leaves the row-major layout unchanged, so the kernel never knows).

Algorithm (`gemm_source`): the output of every batch is cut into TM x TN tiles, one
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

Fused (`Fusion`, from `fused.py`): a matmul heading a fused group reads an operand
through its views (a WGSL function from (batch, row, col) to the input's offset:
transposes, reshapes and broadcasts cost index arithmetic, not a copy) and writes
every product element through the group's `store` (a transposed place, an
elementwise epilogue); a split's second pass carries the store.

lavapipe (CI) checks that every variant is right; the defaults were measured on an
H200 through Vulkan (see the comment at `LARGE`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pyasg.asg import ops
from pyasg.asg.types import TensorType
from pyasg.errors import BackendError
from pyasg.kernels import lower
from pyasg.kernels.wgpu.backend import WgpuBackend
from pyasg.kernels.wgpu.codegen import bindings, broadcast_offset, coords, grid, wgsl_type
from pyasg.kernels.wgpu.kernel import Dispatch, WgpuKernel
from pyasg.kernels.wgpu.reductions import Layout, Reducer, partials_source, plan

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


def batch_fn(name: str, out_batch: tuple[int, ...], in_batch: tuple[int, ...]) -> str:
    """`fn name(bt: u32) -> u32`: which matrix of an operand output batch `bt` uses."""
    if math.prod(in_batch) <= 1:
        return f"fn {name}(bt: u32) -> u32 {{ return 0u; }}"
    if in_batch == out_batch[len(out_batch) - len(in_batch):] \
            and math.prod(in_batch) == math.prod(out_batch):
        return f"fn {name}(bt: u32) -> u32 {{ return bt; }}"
    return (f"fn {name}(bt: u32) -> u32 {{\n{coords(out_batch, 'bt')}\n"
            f"  return {broadcast_offset(out_batch, in_batch)};\n}}")


@dataclass(frozen=True)
class View:
    """Where a fused GEMM reads an operand: group input `k`, and `offset`, the WGSL
    lets of a function of (bt, r, c) that end in `off`, the flat offset of element
    (r, c) of output batch bt (transposes, reshapes, broadcasts of the input); None for
    a row-major matrix per batch, the plain kernel's fast path (vec4 where rows allow)."""

    k: int
    offset: str | None = None


@dataclass(frozen=True)
class Fusion:
    """What a fused group adds to a matmul: its operands' views, and `store`, the WGSL of
    `fn store(q: u32, r: T)` that writes product element q (the flat index in the
    product's row-major order) through the group's epilogue; `reads` are the group
    inputs `store` reads and `types` the WGSL element type of every group input."""

    a: View
    b: View
    store: str
    reads: tuple[int, ...]
    types: tuple[str, ...]


def _vec_loads(p: Problem, t: Tile, fusion: Fusion | None) -> tuple[bool, bool, bool]:
    """vec4 global loads of A and B, vec4 stores: where rows are whole vec4s (K > 0: an
    empty operand's 4-byte placeholder is too small to bind as an array of vec4), the
    operand is a plain matrix, and its binding is read by nothing else."""
    vec_a = p.k > 0 and p.k % 4 == 0 and t.tk % 4 == 0
    vec_b = p.k > 0 and p.n % 4 == 0 and t.vn == 4  # and the B tile is vec4 too
    if fusion is None:
        return vec_a, vec_b, p.n % 4 == 0 and t.vn == 4
    a, b = fusion.a, fusion.b
    vec_a = vec_a and a.offset is None and a.k != b.k and a.k not in fusion.reads
    vec_b = vec_b and b.offset is None and b.k != a.k and b.k not in fusion.reads
    return vec_a, vec_b, False  # a fused store is scalar: the epilogue runs per element


def gemm_bindings(p: Problem, t: Tile, splits: int,
                  fusion: Fusion | None) -> tuple[str, tuple[tuple, ...]]:
    """The binding declarations of the GEMM pass and what is bound, in order."""
    ty = p.ty
    vec_a, vec_b, vec_out = _vec_loads(p, t, fusion)
    out = ("out4" if vec_out else "out", _vec(4 if vec_out else 1, ty), True)
    sink: tuple = ("out",) if splits == 1 else ("tmp", 0)
    if fusion is None:
        decls = [("a4" if vec_a else "a", _vec(4 if vec_a else 1, ty), False),
                 ("b4" if vec_b else "b", _vec(4 if vec_b else 1, ty), False), out]
        return bindings(decls), (("in", 0), ("in", 1), sink)
    vec = {fusion.a.k: vec_a, fusion.b.k: vec_b}
    ks = list(dict.fromkeys([fusion.a.k, fusion.b.k]
                            + (list(fusion.reads) if splits == 1 else [])))
    decls = [(f"in{k}", _vec(4 if vec.get(k) else 1, fusion.types[k]), False) for k in ks]
    return bindings(decls + [out]), tuple(("in", k) for k in ks) + (sink,)


def gemm_source(p: Problem, t: Tile, splits: int = 1, k_split: int = 0,
                fusion: Fusion | None = None) -> str:
    """The WGSL of a batched, broadcast, bounds-checked tiled matmul (module docstring).

    With `splits` > 1, workgroup (tile, s) sums only k in [s * k_split, ...) (k_split a
    multiple of tk, so no k-tile straddles two splits) and writes its partial product
    to slice s of a [splits][batch][m][n] buffer bound where the output would be.
    With `fusion`, operands are read through their views and (unsplit) every product
    element is written by `store`.
    """
    ty, vm, vn = p.ty, t.vm, t.vn
    tx_n, ty_n = t.tn // t.rn, t.tm // t.rm  # threads along N and along M
    tiles_n, tiles_m = -(-p.n // t.tn), -(-p.m // t.tm)
    n_out = math.prod(p.batch)
    groups = tiles_n * tiles_m * math.prod(p.batch) * splits
    vec_a, vec_b, vec_out = _vec_loads(p, t, fusion)
    decls, _ = gemm_bindings(p, t, splits, fusion)
    a_arr, b_arr = ("a", "b") if fusion is None else (f"in{fusion.a.k}", f"in{fusion.b.k}")
    a_view = fusion.a.offset if fusion else None
    b_view = fusion.b.offset if fusion else None
    if vec_a:
        a_arr = "a4" if fusion is None else a_arr
    if vec_b:
        b_arr = "b4" if fusion is None else b_arr
    shared = (f"var<workgroup> As: array<{_vec(vm, ty)}, {t.tk * t.tm // vm}>;  // [k][m]\n"
              f"var<workgroup> Bs: array<{_vec(vn, ty)}, {t.tk * t.tn // vn}>;  // [k][n]")

    def store_a(k: str, m: str, value: str) -> str:
        """As[k][m] = value (one lane of a vector when vm > 1)."""
        if vm == 1:
            return f"As[({k}) * {t.tm}u + {m}] = {value};"
        return f"As[({k}) * {t.tm // vm}u + {m} / {vm}u][{m} % {vm}u] = {value};"

    lines: list[str] = []
    emit = lines.append
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
                       f"{{ v = {a_arr}[(a_base + gm * {p.k}u + gk) / 4u]; }}"]
            load_a += ["    " + store_a(f"kq + {j}u", "m", f"v.{LANES[j]}") for j in range(4)]
        else:
            load_a += [guard, f"    let e = {e};", f"    let m = e / {t.tk}u;",
                       f"    let kk = e % {t.tk}u;", "    let gm = m0 + m;",
                       "    let gk = k0 + kk;", f"    var v = {ty}();",
                       f"    if (gm < {p.m}u && gk < {p.k}u) "
                       + (f"{{ v = {a_arr}[a_off(bt, gm, gk)]; }}" if a_view is not None
                          else f"{{ v = {a_arr}[a_base + gm * {p.k}u + gk]; }}"),
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
                       f"{{ v = {b_arr}[(b_base + gk * {p.n}u + gn) / 4u]; }}",
                       "    Bs[e] = v;"]
        else:
            target = (f"Bs[e / {vn}u][e % {vn}u]" if vn > 1 else "Bs[e]")  # e = kk*tn + n
            load_b += [guard, f"    let e = {e};", f"    let kk = e / {t.tn}u;",
                       f"    let n = e % {t.tn}u;", "    let gk = k0 + kk;",
                       "    let gn = n0 + n;", f"    var v = {ty}();",
                       f"    if (gk < {p.k}u && gn < {p.n}u) "
                       + (f"{{ v = {b_arr}[b_off(bt, gk, gn)]; }}" if b_view is not None
                          else f"{{ v = {b_arr}[b_base + gk * {p.n}u + gn]; }}"),
                       f"    {target} = v;"]
        load_b.append("  }")

    # ---- the register block: rows (g * ty_n + ty) * vm + j, column groups c * tx_n + tx
    rows = [(g, j) for g in range(t.rm // vm) for j in range(vm)]
    cols = range(t.rn // vn)
    accs = [f"acc_{r}_{c}" for r in range(t.rm) for c in cols]

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
    emit(f"  let a_base = a_batch(bt) * {p.m * p.k}u;\n"
         f"  let b_base = b_batch(bt) * {p.k * p.n}u;")
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
            if fusion is not None and splits == 1:
                for lane in range(vn):
                    emit(f"    if ({col} + {lane}u < {p.n}u) "
                         f"{{ store({where} + {lane}u, {_lane(acc, vn, lane)}); }}")
                continue
            if vec_out:
                emit(f"    if ({col} < {p.n}u) {{ out4[({where}) / 4u] = {acc}; }}")
                continue
            for lane in range(vn):
                emit(f"    if ({col} + {lane}u < {p.n}u) "
                     f"{{ out[{where} + {lane}u] = {_lane(acc, vn, lane)}; }}")
        emit("  }")

    entry = (f"@compute @workgroup_size({t.threads})\n"
             "fn main(@builtin(workgroup_id) wid: vec3<u32>,\n"
             "        @builtin(num_workgroups) nwg: vec3<u32>,\n"
             "        @builtin(local_invocation_index) lid: u32) {\n"
             + "\n".join(lines) + "\n}\n")
    views = [f"fn {name}(bt: u32, r: u32, c: u32) -> u32 {{\n{lets}\n  return off;\n}}"
             for name, lets in (("a_off", a_view), ("b_off", b_view)) if lets is not None]
    store = [fusion.store] if fusion is not None and splits == 1 else []
    return "\n\n".join([decls, shared, batch_fn("a_batch", p.batch, p.a_batch),
                        batch_fn("b_batch", p.batch, p.b_batch), *views, *store, entry])


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


def _store_through(d: Dispatch, fusion: Fusion) -> Dispatch:
    """The split's final pass `d`, writing every sum through `fusion.store`."""
    for store in ("out[o] = acc;", "out[i] = acc;"):
        if store in d.source:
            at = store[4]
            source = d.source.replace(store, f"store({at}, acc);")
            break
    else:
        raise BackendError("internal: no store in the split matmul's final pass")
    n = len(d.bindings)
    decls = "\n".join(f"@group(0) @binding({n + m}) var<storage, read> in{k}: "
                      f"array<{fusion.types[k]}>;" for m, k in enumerate(fusion.reads))
    return Dispatch("\n\n".join(x for x in (source, decls, fusion.store) if x), d.workgroups,
                    d.bindings + tuple(("in", k) for k in fusion.reads))


def matmul_kernel(a: TensorType, b: TensorType, tile: Tile | None = None,
                  split: bool = True, fusion: Fusion | None = None) -> WgpuKernel:
    """The kernel of one MatMul node, or with `fusion` of a fused group it heads;
    `tile` overrides `choose_tile`.

    Split K: pass 1 writes `splits` partial products to a scratch buffer, laid out
    [split][batch][m][n], and the reduction planner's column sum (coalesced: neighbouring
    threads own neighbouring outputs) adds them into the output, through the fused
    group's `store` where there is one. A split is a second dispatch and a round trip
    through memory: where a default tile alone gives enough short workgroups
    (`_unsplit_tile`), the product runs in one pass instead.
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
    groups = -(-p.n // t.tn) * -(-p.m // t.tm) * math.prod(p.batch) * splits
    gemm = Dispatch(gemm_source(p, t, splits, k_split, fusion), grid(groups, 1),
                    gemm_bindings(p, t, splits, fusion)[1])
    if splits == 1:
        return WgpuKernel((gemm,))
    partials = Layout(((size, 1),), ((splits, size),), size, splits)
    total, _ = plan(Reducer("sum", p.ty), partials, partials_source(p.ty, False), p.ty,
                    split=False)
    if fusion is not None:
        total = tuple(_store_through(d, fusion) if ("out",) in d.bindings else d
                      for d in total)
    return WgpuKernel((gemm,) + total, scratch=(4 * size * splits,))


@lower.register(ops.MatMul, WgpuBackend)
def _(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
    return matmul_kernel(in_types[0], in_types[1])
