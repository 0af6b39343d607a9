"""WGSL kernel of matmul: a tiled, register-blocked GEMM, its tile chosen per shape.

numpy's semantics: batched, batch dimensions broadcast, a 1-D left operand is a row
(M = 1) and a 1-D right operand a column (N = 1), their unit dimension dropped from
the result (which leaves the row-major layout unchanged, so the kernel never knows).

Algorithm (`gemm_pass`, for a `tiles.Plan`): the output of every batch is cut into
TM x TN tiles, one workgroup per tile (tiles and batches are flattened onto a 2-d grid
of workgroups, so any size fits under 65535 per dimension). The workgroup walks K in
steps of TK: its threads cooperatively copy a TM x TK tile of A (stored transposed,
k-major) and a TK x TN tile of B into workgroup memory, and every thread multiplies
its RM x RN block of outputs from the shared tiles. With one buffer the copy and the
multiplication take turns (a barrier after each); with two (double buffering), each
thread first loads its share of the NEXT k-tile from memory into registers, then
multiplies the current tile (the loads' latency hides behind the arithmetic), then
stores the registers into the other half of the workgroup memory, and one barrier a
step suffices (no thread overwrites a half before everyone has finished reading it:
that reading was before the previous barrier). Loads are bounds-checked (zeros
outside A and B and past the split's K), so M, N and K need not be multiples of the
tile; writes are bounds-checked too. When K (for A) or N (for B) is a multiple of 4
the global loads are vec4 loads; scalar loads go in the plan's read order (along a
row, or, for an operand read through a transposing view, along the column).

Performance (the issue's measurements on a real GPU: 0.4 TFLOP/s for a plain 16x16
tile, 2.4 with 8x8 outputs per thread in a private array, 25 once the accumulators
were named vec4 variables): the generator UNROLLS the register block in Python, so
the accumulators are named variables `acc_<row>_<colgroup>` of type vec4 (or vec2,
or scalar, as RN allows) and never a private array indexed by a loop variable, which
drivers put in slow local memory. A thread's columns are interleaved (column group c
of thread x is c * threads_x + x) so that neighbouring threads read neighbouring
vectors of the B tile (no bank conflicts); rows likewise. Shared-memory reads are
whole vectors (vec4 for 4 rows of A and 4 columns of B).

The plan (`choose_plan`): products of fewer than `TUNE_FLOPS` take the rule's plan
(`tiles.default_plan`, the tiles of 2026-12 measured on an H200); bigger ones are
tuned (`autotune.TUNER`): each of `tiles.candidates` (the rule's plan first, then
double-buffered tiles that fit the device's real workgroup limits, K splits for
skinny weight-gradient shapes, other read orders for operands read through views) is
compiled and timed on the device, the fastest kept, per adapter and problem (`key`:
sizes, batches, operand layouts, fused or not), in memory and on disk.

Split K (`tiles.choose_splits`): when the output has too few tiles to fill a GPU but
K is long (a weight gradient X^T @ dY, a long dot product), each tile's K is split
over several workgroups that write partial products to a scratch buffer, and a second
dispatch (the reduction module's column sum) adds them up. On an H200 that took a
512 x 8192 @ 8192 x 512 product from 1.3 ms to 0.28 ms.

Hooks: the GEMM reads each operand through an `operands.Operand` (`Matrix`: a
row-major matrix per batch, the fast path with vec4 loads where rows allow; `View`:
a function from (batch, row, col) to the offset of an input, so that transposes,
reshapes and broadcasts cost index arithmetic, not a copy) and writes every product
element through a `Store` (the output, vec4 where rows allow; a split's partials; or
a fused group's transposed place and elementwise epilogue, from `fused.py`). A split's
second pass carries the final store.

lavapipe (CI) checks that every plan is right.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from pyasg.asg import ops
from pyasg.asg.types import TensorType
from pyasg.kernels import lower
from pyasg.kernels.wgpu.autotune import TUNER
from pyasg.kernels.wgpu.backend import WgpuBackend
from pyasg.kernels.wgpu.codegen import grid
from pyasg.kernels.wgpu.device import get_device
from pyasg.kernels.wgpu.kernel import Dispatch, WgpuKernel
from pyasg.kernels.wgpu.operands import Matrix, Operand, Transposed, View
from pyasg.kernels.wgpu.reductions import Layout, Reducer, Sink, partials
from pyasg.kernels.wgpu.reductions import plan as reduction_plan
from pyasg.kernels.wgpu.shader import Buffer, Shader, Store, group_entry
from pyasg.kernels.wgpu.tiles import (
    Limits,
    Plan,
    Problem,
    Tile,
    candidates,
    orders,
    plan_of,
)

__all__ = ["Matrix", "Operand", "Problem", "Transposed", "View", "choose_plan", "gemm_pass",
           "matmul_kernel", "problem_key"]

LANES = "xyzw"
#: Products of fewer FLOPs (2 per multiply-add) run the rule's plan untimed: their
#: time is mostly a dispatch's fixed cost (a few microseconds on a GPU), and timing
#: costs a compile per candidate.
TUNE_FLOPS = 1 << 27
#: The version of the generated kernels in the tuner's keys: bump it when a change to
#: `gemm_pass` makes earlier measurements stale.
GENERATOR = 1


@lru_cache(maxsize=1)
def device_limits() -> Limits:
    """The workgroup limits of the device (`device.get_device` requests the adapter's)."""
    return Limits.of(get_device().limits)


def _vec(width: int, ty: str) -> str:
    return ty if width == 1 else f"vec{width}<{ty}>"


def _lane(expr: str, width: int, j: int) -> str:
    return expr if width == 1 else f"{expr}.{LANES[j]}"


@dataclass(frozen=True)
class _Loads:
    """One operand's share of a tile copy: lets computed once (which element each load
    slot of the thread takes), the loads from memory into registers `v<slot>` (at the
    k-tile starting at `kf`), and the stores of the registers into workgroup memory."""

    lets: list[str]
    fetch: list[str]
    put: list[str]


def _slots(items: int, threads: int, prefix: str) -> list[tuple[str, int, bool]]:
    """(element index name, slot, partial?) of each load slot: element lid + s * threads
    of the `items`, the last slot partial where they do not divide evenly."""
    return [(f"e{prefix}{s}", s, (s + 1) * threads > items) for s in range(-(-items // threads))]


def _a_loads(sh: Shader, p: Problem, plan: Plan, a: Operand, vec: bool,
             down: bool = False) -> _Loads:
    """The A tile (tm x tk at (m0, kf)), stored transposed: As[k][m]. `vec`: vec4s along
    k (rows of A); `down`: vec4s along m (down a column of a transposed A)."""
    t, ty, vm = plan.tile, p.ty, plan.tile.vm
    if down:
        return _a_loads_down(sh, p, plan, a)
    items = t.tm * t.tk // (4 if vec else 1)
    lets, fetch, put = [], [], []
    for e, s, partial in _slots(items, t.threads, "a"):
        lets.append(f"  let {e} = lid + {s * t.threads}u;")
        if vec:  # a vec4 along k (a row of A)
            lets += [f"  let ma{s} = {e} / {t.tk // 4}u;",
                     f"  let ka{s} = ({e} % {t.tk // 4}u) * 4u;"]
        elif plan.a_order == "mk":  # neighbouring threads along k ("km4" lands below)
            lets += [f"  let ma{s} = {e} / {t.tk}u;", f"  let ka{s} = {e} % {t.tk}u;"]
        else:  # along m
            lets += [f"  let ka{s} = {e} / {t.tm}u;", f"  let ma{s} = {e} % {t.tm}u;"]
        lets.append(f"  let gma{s} = m0 + ma{s};")
        guard = f"{e} < {items}u && " if partial else ""
        value = (a.load4 if vec else a.load)(sh, "bt", f"gma{s}", f"gka{s}")
        fetch += [f"  let gka{s} = kf + ka{s};",
                  f"  var va{s} = {_vec(4 if vec else 1, ty)}();",
                  f"  if ({guard}gma{s} < {p.m}u && gka{s} < k_hi) {{ va{s} = {value}; }}"]
        lanes = [(f"ka{s} + {j}u", f"va{s}.{LANES[j]}") for j in range(4)] if vec else \
            [(f"ka{s}", f"va{s}")]
        stores = []
        for k, v in lanes:
            if vm == 1:
                stores.append(f"  As[wa + ({k}) * {t.tm}u + ma{s}] = {v};")
            else:
                stores.append(f"  As[wa + ({k}) * {t.tm // vm}u + ma{s} / {vm}u]"
                              f"[ma{s} % {vm}u] = {v};")
        put += [f"  if ({e} < {items}u) {{", *("  " + x for x in stores), "  }"] \
            if partial else stores
    return _Loads(lets, fetch, put)


def _a_loads_down(sh: Shader, p: Problem, plan: Plan, a: Transposed) -> _Loads:
    """The A tile of a transposed A in vec4s of four rows m at one k: each is four
    neighbouring elements of As[k][m], one vec4 store where the A tile is vec4 (vm 4)."""
    t, vm = plan.tile, plan.tile.vm
    items, per_k = t.tm * t.tk // 4, t.tm // 4
    lets, fetch, put = [], [], []
    for e, s, partial in _slots(items, t.threads, "a"):
        lets += [f"  let {e} = lid + {s * t.threads}u;", f"  let ka{s} = {e} / {per_k}u;",
                 f"  let ma{s} = ({e} % {per_k}u) * 4u;", f"  let gma{s} = m0 + ma{s};"]
        guard = f"{e} < {items}u && " if partial else ""
        fetch += [f"  let gka{s} = kf + ka{s};", f"  var va{s} = vec4<{p.ty}>();",
                  f"  if ({guard}gma{s} < {p.m}u && gka{s} < k_hi) "
                  f"{{ va{s} = {a.load_down4(sh, 'bt', f'gma{s}', f'gka{s}')}; }}"]
        row = f"wa + ka{s} * {t.tm // vm}u"
        if vm == 4:
            stores = [f"  As[{row} + ma{s} / 4u] = va{s};"]
        elif vm == 1:
            stores = [f"  As[{row} + ma{s} + {j}u] = va{s}.{LANES[j]};" for j in range(4)]
        else:
            stores = [f"  As[{row} + (ma{s} + {j}u) / {vm}u][{j % vm}u] = va{s}.{LANES[j]};"
                      for j in range(4)]
        put += [f"  if ({e} < {items}u) {{", *("  " + x for x in stores), "  }"] \
            if partial else stores
    return _Loads(lets, fetch, put)


def _b_loads_down(sh: Shader, p: Problem, plan: Plan, b: Transposed) -> _Loads:
    """The B tile of a transposed B in vec4s of four k at one column n: four elements
    of Bs[k][n], one per k."""
    t, vn = plan.tile, plan.tile.vn
    items, per_n = t.tk * t.tn // 4, t.tk // 4
    lets, fetch, put = [], [], []
    for e, s, partial in _slots(items, t.threads, "b"):
        lets += [f"  let {e} = lid + {s * t.threads}u;", f"  let nb{s} = {e} / {per_n}u;",
                 f"  let kb{s} = ({e} % {per_n}u) * 4u;", f"  let gnb{s} = n0 + nb{s};"]
        guard = f"{e} < {items}u && " if partial else ""
        fetch += [f"  let gkb{s} = kf + kb{s};", f"  var vb{s} = vec4<{p.ty}>();",
                  f"  if ({guard}gkb{s} < k_hi && gnb{s} < {p.n}u) "
                  f"{{ vb{s} = {b.load_down4(sh, 'bt', f'gkb{s}', f'gnb{s}')}; }}"]
        if vn == 1:
            stores = [f"  Bs[wb + (kb{s} + {j}u) * {t.tn}u + nb{s}] = vb{s}.{LANES[j]};"
                      for j in range(4)]
        else:
            stores = [f"  Bs[wb + (kb{s} + {j}u) * {t.tn // vn}u + nb{s} / {vn}u]"
                      f"[nb{s} % {vn}u] = vb{s}.{LANES[j]};" for j in range(4)]
        put += [f"  if ({e} < {items}u) {{", *("  " + x for x in stores), "  }"] \
            if partial else stores
    return _Loads(lets, fetch, put)


def _b_loads(sh: Shader, p: Problem, plan: Plan, b: Operand, vec: bool,
             down: bool = False) -> _Loads:
    """The B tile (tk x tn at (kf, n0)): Bs[k][n]. `vec`: vec4s along n (rows of B);
    `down`: vec4s along k (down a column of a transposed B)."""
    t, ty, vn = plan.tile, p.ty, plan.tile.vn
    if down:
        return _b_loads_down(sh, p, plan, b)
    items = t.tk * t.tn // (4 if vec else 1)
    lets, fetch, put = [], [], []
    for e, s, partial in _slots(items, t.threads, "b"):
        lets.append(f"  let {e} = lid + {s * t.threads}u;")
        if vec:  # a vec4 along n (a row of B)
            lets += [f"  let kb{s} = {e} / {t.tn // 4}u;",
                     f"  let nb{s} = ({e} % {t.tn // 4}u) * 4u;"]
        elif plan.b_order == "kn":  # neighbouring threads along n
            lets += [f"  let kb{s} = {e} / {t.tn}u;", f"  let nb{s} = {e} % {t.tn}u;"]
        else:  # along k
            lets += [f"  let nb{s} = {e} / {t.tk}u;", f"  let kb{s} = {e} % {t.tk}u;"]
        lets.append(f"  let gnb{s} = n0 + nb{s};")
        guard = f"{e} < {items}u && " if partial else ""
        value = (b.load4 if vec else b.load)(sh, "bt", f"gkb{s}", f"gnb{s}")
        fetch += [f"  let gkb{s} = kf + kb{s};",
                  f"  var vb{s} = {_vec(4 if vec else 1, ty)}();",
                  f"  if ({guard}gkb{s} < k_hi && gnb{s} < {p.n}u) {{ vb{s} = {value}; }}"]
        if vec or vn == 1:  # whole vectors of the tile, or scalars
            store = f"  Bs[wb + kb{s} * {t.tn // vn}u + nb{s} / {vn}u] = vb{s};"
        else:
            store = (f"  Bs[wb + kb{s} * {t.tn // vn}u + nb{s} / {vn}u][nb{s} % {vn}u]"
                     f" = vb{s};")
        put += [f"  if ({e} < {items}u) {{", "  " + store, "  }"] if partial else [store]
    return _Loads(lets, fetch, put)


def _multiply(tile: Tile, double: bool) -> list[str]:
    """Every thread's multiply-adds over one k-tile in As/Bs (at offsets ra, rb where
    `double`): rows (g * ty_n + ty) * vm + j, column groups c * tx_n + tx."""
    vm, vn = tile.vm, tile.vn
    tx_n, ty_n = tile.tn // tile.rn, tile.tm // tile.rm
    ra, rb = ("ra + ", "rb + ") if double else ("", "")
    rows = [(g, j) for g in range(tile.rm // vm) for j in range(vm)]
    cols = range(tile.rn // vn)

    def step(a_at: Callable[[int], str], b_at: Callable[[int], str]) -> list[str]:
        lines = [f"let a{g} = As[{ra}{a_at(g)} + ty];" for g in range(tile.rm // vm)]
        lines += [f"let b{c} = Bs[{rb}{b_at(c)} + tx];" for c in cols]
        lines += [f"acc_{r}_{c} += {_lane(f'a{g}', vm, j)} * b{c};"
                  for r, (g, j) in enumerate(rows) for c in cols]
        return lines

    if not tile.unroll:
        body = step(lambda g: f"k * {tile.tm // vm}u + {g * ty_n}u",
                    lambda c: f"k * {tile.tn // vn}u + {c * tx_n}u")
        return [f"  for (var k = 0u; k < {tile.tk}u; k++) {{", *("    " + x for x in body),
                "  }"]
    out = []
    for k in range(tile.tk):  # each k a constant in its copy
        body = step(lambda g, k=k: f"{k * (tile.tm // vm) + g * ty_n}u",
                    lambda c, k=k: f"{k * (tile.tn // vn) + c * tx_n}u")
        out += ["  {", *("    " + x for x in body), "  }"]
    return out


def _indent(lines: list[str], by: str = "  ") -> list[str]:
    return [by + x for x in lines]


def gemm_pass(p: Problem, plan: Plan, a: Operand, b: Operand, store: Store,
              store4: Store | None = None) -> Dispatch:
    """The batched, broadcast, bounds-checked tiled matmul of `p` run by `plan` (module
    docstring): operands read through `a` and `b`, product element q (flat, row-major)
    written by `store(q, value)`, or four at once by `store4(q / 4, vec4)` where given
    and the output rows are whole vec4s.

    With `plan.splits` > 1, workgroup (tile, s) sums only k in [s * k_split, ...)
    (k_split a multiple of tk, so no k-tile straddles two splits) and stores its partial
    product as slice s of a [splits][batch][m][n] array.
    """
    sh = Shader()
    t, ty = plan.tile, p.ty
    vm, vn, double = t.vm, t.vn, t.buffers == 2
    tx_n, ty_n = t.tn // t.rn, t.tm // t.rm  # threads along N and along M
    tiles_n, tiles_m = -(-p.n // t.tn), -(-p.m // t.tm)
    n_out, splits = p.batches, plan.splits
    groups = tiles_n * tiles_m * n_out * splits
    vec_a = a.vec4 and t.tk % 4 == 0
    vec_b = b.vec4 and vn == 4  # and the B tile is vec4 too
    vec_out = store4 is not None and p.n % 4 == 0 and vn == 4
    a_vecs, b_vecs = t.tk * t.tm // vm, t.tk * t.tn // vn  # one buffer's vectors
    sh.workgroup("As", f"array<{_vec(vm, ty)}, {a_vecs * t.buffers}>")  # [k][m]
    sh.workgroup("Bs", f"array<{_vec(vn, ty)}, {b_vecs * t.buffers}>")  # [k][n]

    lines: list[str] = []
    emit = lines.append
    emit(f"  let g = wid.x + wid.y * nwg.x;\n  if (g >= {groups}u) {{ return; }}"
         "  // uniform: the same for the whole workgroup")
    if splits > 1:
        emit(f"  let s = g % {splits}u;\n  let gt = g / {splits}u;\n"
             f"  let k_lo = s * {plan.k_split}u;\n"
             f"  let k_hi = min(k_lo + {plan.k_split}u, {p.k}u);")
    else:
        emit(f"  let gt = g;\n  let k_lo = 0u;\n  let k_hi = {p.k}u;")
    emit(f"  let tn = gt % {tiles_n}u;\n  let tm = (gt / {tiles_n}u) % {tiles_m}u;\n"
         f"  let bt = gt / {tiles_n * tiles_m}u;")
    emit(f"  let m0 = tm * {t.tm}u;\n  let n0 = tn * {t.tn}u;")
    emit("\n".join(x for x in (a.setup(sh, "bt"), b.setup(sh, "bt")) if x))
    emit(f"  let tx = lid % {tx_n}u;\n  let ty = lid / {tx_n}u;")
    # vec4s down the columns of a transposed operand where the plan's order asks and the
    # operand allows (else that order's scalar loads, along m or k: the same elements)
    down_a = plan.a_order == "km4" and getattr(a, "vec4_down", False)
    down_b = plan.b_order == "nk4" and getattr(b, "vec4_down", False) and t.tk % 4 == 0
    la = _a_loads(sh, p, plan, a, vec_a and not down_a, down_a)
    lb = _b_loads(sh, p, plan, b, vec_b and not down_b, down_b)
    emit("\n".join(la.lets + lb.lets))
    rows = [(g, j) for g in range(t.rm // vm) for j in range(vm)]
    cols = range(t.rn // vn)
    emit("\n".join(f"  var acc_{r}_{c} = {_vec(vn, ty)}();"
                   for r in range(t.rm) for c in cols))
    fetch, put, multiply = la.fetch + lb.fetch, la.put + lb.put, _multiply(t, double)
    if not double:
        body = ["  let kf = k0;", "  let wa = 0u;", "  let wb = 0u;", *fetch, *put,
                "  workgroupBarrier();", *multiply, "  workgroupBarrier();"]
        emit(f"  for (var k0 = k_lo; k0 < k_hi; k0 += {t.tk}u) {{")
        emit("\n".join(_indent(body)) + "\n  }")
    else:  # the first k-tile into buffer 0; then load the next while multiplying
        first = ["  let kf = k_lo;", "  let wa = 0u;", "  let wb = 0u;", *fetch, *put]
        emit("  {\n" + "\n".join(_indent(first)) + "\n  }\n  workgroupBarrier();")
        emit("  var ra = 0u;\n  var rb = 0u;")
        body = [f"  let kf = k0 + {t.tk}u;", *fetch, *multiply,
                f"  let wa = {a_vecs}u - ra;", f"  let wb = {b_vecs}u - rb;", *put,
                "  workgroupBarrier();", "  ra = wa;", "  rb = wb;"]
        emit(f"  for (var k0 = k_lo; k0 < k_hi; k0 += {t.tk}u) {{")
        emit("\n".join(_indent(body)) + "\n  }")
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


def _kernel(p: Problem, plan: Plan, a: Operand, b: Operand, final: Store,
            final4: Store | None) -> WgpuKernel:
    """`plan`'s kernel: one GEMM, or a split's GEMM into partials and their sum."""
    if plan.splits == 1:
        return WgpuKernel((gemm_pass(p, plan, a, b, final, final4),))
    size = p.m * p.n * p.batches
    vec4 = f"vec4<{p.ty}>"
    part, part4 = Buffer("part", p.ty, ("tmp", 0)), Buffer("part", vec4, ("tmp", 0))
    gemm = gemm_pass(p, plan, a, b, part.store, part4.store)
    summed = Layout(((size, 1),), ((plan.splits, size),), size, plan.splits)
    total, _ = reduction_plan(Reducer("sum", p.ty), summed, partials(p.ty, False)[0],
                              Sink(final), split=False)
    return WgpuKernel((gemm,) + total, scratch=(4 * size * plan.splits,))


def problem_key(p: Problem, a: Operand, b: Operand, fused: bool, split: bool = True) -> str:
    """The tuner's key of a product: what its candidates' speed depends on.

    >>> p = Problem.of(TensorType((2048, 256)), TensorType((256, 1024)))
    >>> problem_key(p, Matrix.lhs(p, "a", ("in", 0)), Matrix.rhs(p, "b", ("in", 1)), False)
    'f32 batch[] a[] b[] m2048 n1024 k256 A:rows4 B:rows4 plain g1'
    """
    def layout(x: Operand) -> str:
        return getattr(x, "layout", type(x).__name__)

    return (f"{p.ty} batch{list(p.batch)} a{list(p.a_batch)} b{list(p.b_batch)} "
            f"m{p.m} n{p.n} k{p.k} A:{layout(a)} B:{layout(b)} "
            f"{'fused' if fused else 'plain'}{'' if split else ' unsplit'} g{GENERATOR}")


def choose_plan(p: Problem, a: Operand, b: Operand, fused: bool, split: bool,
                build: Callable[[Plan], WgpuKernel]) -> Plan:
    """The plan `p` runs (module docstring): the rule's under `TUNE_FLOPS`, else the
    tuner's choice among `tiles.candidates` on this device (`build(plan)` makes a
    candidate's kernel)."""
    plans = candidates(p, device_limits(), split)
    if p.flops < TUNE_FLOPS:
        return plans[0]
    a_free, b_free = not isinstance(a, Matrix), not isinstance(b, Matrix)
    a_down, b_down = getattr(a, "vec4_down", False), getattr(b, "vec4_down", False)
    refine = (lambda x: orders(x, a_free, b_free, a_down, b_down)) if a_free or b_free \
        else None
    out = 4 * p.m * p.n * p.batches
    biggest = 4 * max(p.m * p.k * math.prod(p.a_batch), p.k * p.n * math.prod(p.b_batch),
                      p.m * p.n * p.batches)
    return TUNER.choose(problem_key(p, a, b, fused, split), plans, build,
                        lambda bound: out if bound[0] == "out" else biggest, refine)


def matmul_kernel(a: TensorType, b: TensorType, tile: Tile | None = None,
                  split: bool = True, operands: tuple[Operand, Operand] | None = None,
                  store: Store | None = None, plan: Plan | None = None) -> WgpuKernel:
    """The kernel of one MatMul node, or, with `operands` and `store`, of the fused group
    it heads (views in, epilogue out). `plan` (or `tile`, K split by the rule where
    `split`) overrides `choose_plan`; it must fit the device (else ValueError).

    Split K: pass 1 writes `splits` partial products to a scratch buffer, laid out
    [split][batch][m][n], and the reduction planner's column sum (coalesced: neighbouring
    threads own neighbouring outputs) adds them into the output, through `store` where
    one is given.
    """
    p = Problem.of(a, b)
    if p.m * p.n * p.batches == 0:
        return WgpuKernel()  # an empty result: nothing to write
    lhs, rhs = operands or (Matrix.lhs(p, "a", ("in", 0)), Matrix.rhs(p, "b", ("in", 1)))
    vec4 = f"vec4<{p.ty}>"
    # a fused store is scalar: its epilogue runs per element
    final, final4 = ((store, None) if store is not None else
                     (Buffer("out", p.ty, ("out",)).store, Buffer("out", vec4, ("out",)).store))

    def build(chosen: Plan) -> WgpuKernel:
        return _kernel(p, chosen, lhs, rhs, final, final4)

    if plan is None and tile is not None:
        plan = plan_of(p, tile, split)
    if plan is None:
        plan = choose_plan(p, lhs, rhs, store is not None, split, build)
    elif not plan.tile.fits(device_limits()):
        raise ValueError(f"tile {plan.tile.name} needs {plan.tile.threads} threads and "
                         f"{plan.tile.storage} bytes of workgroup memory; this device "
                         f"allows {device_limits()}")
    return build(plan)


@lower.register(ops.MatMul, WgpuBackend)
def _(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
    return matmul_kernel(in_types[0], in_types[1])
