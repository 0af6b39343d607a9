"""WGSL kernels of the attention ops: flash attention, forward and backward, never T x S.

Every kernel keeps one row of its problem per thread and streams the other side through
workgroup memory in tiles, so no [B, H, T, S] value is ever written (the ops are
`pyasg.asg.ops.attention`; memory stays O(B·H·(T + S)·d)):

- ROW kernels, one workgroup per (batch·head, block of `ROWS`, or `LONG_ROWS`, query
  rows), one query row per thread, q (and dout) in registers as named vec4 variables;
  the keys (and values) go through workgroup memory in tiles of C rows, loaded
  cooperatively: `Attention` (output), `AttentionLSE` (row log-sum-exp),
  `AttentionGradQ` (dq_i = scale Σ_j ds_ij k_j) and `AttentionGradScores` (writes ds
  itself: the one T x S result, asked for only by a bias that wants a gradient).
- COLUMN kernels, one workgroup per (batch·head, block of `ROWS`, or `LONG_ROWS`, keys),
  one key row per thread; the queries, dout and the per-row lse (and delta) go through
  workgroup memory:
  `AttentionGradK` (dk_j = scale Σ_i ds_ij q_i) and `AttentionGradV` (Σ_i p_ij dout_i).

The forward is an online softmax: a running max m, sum l and accumulator per row. A
lazy rescale (FlashAttention-3's trick) moves m only when a score exceeds it by more
than `RESCALE`: every weight exp(s - m) then stays below exp(RESCALE), so neither l nor
the accumulator can overflow, the ratio acc / l is unchanged, and scores that rise
along the keys (ALiBi) do not rescale at every key. The backward kernels recompute
each probability as exp(s - lse) from the forward's row log-sum-exp.

Masks: a causal tile that no row of the block may see is never loaded, and within a
tile each thread's loop stops at its row's last visible key (so a hidden key is not
read for it, as the reference defines); the bias is read through its broadcast strides
(a [B, 1, 1, S] key-padding bias is S floats per batch, nothing more). A score of -inf
has weight exactly 0; a row with no weight gives 0 and lse -inf; a NaN score makes its
row NaN. NaN and -inf are tested on the bits, because WGSL lets a compiler assume that
float comparisons never see them.

Limits: tiles fit WebGPU's portable 16 KiB of workgroup memory (`SHARED_BYTES`), 64
threads a workgroup, workgroups on a 2-d grid (`codegen.grid`), at most 8 storage
buffers (a gradient kernel binds 7 inputs and its output), no subgroup operations.
Head dims up to `MAX_HEAD_DIM` (registers hold whole rows). Rows of a multiple of 4
floats are loaded and stored as vec4.

Measured on an H200 through Vulkan (float32, causal, B=8, H=12, T=1024, D=64): forward
3.0 ms (the composite softmax 3.5 ms, PyTorch's float32 sdpa 0.5 ms), forward and
backward 6.7 ms (composite 5.9, PyTorch 2.7), 217 MiB of buffers for the step instead of
the composite's 1349; D=32 (H=16): forward 1.4 ms (composite 2.9), both 4.4 ms (6.7).
So the kernels save memory and, at D=32, time; a row per thread leaves the H200 far
from PyTorch's tiled kernels (more rows per thread, or keys split across threads, is
the next step).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from pyasg.asg import ops
from pyasg.asg.types import TensorType
from pyasg.errors import BackendError
from pyasg.kernels import lower
from pyasg.kernels.wgpu.backend import WgpuBackend
from pyasg.kernels.wgpu.codegen import grid, literal
from pyasg.kernels.wgpu.kernel import Dispatch, WgpuKernel

#: Threads per workgroup = query rows (row kernels) or key rows (column kernels) of a
#: block: `ROWS`, or `LONG_ROWS` where the sequence has at least `LONG` positions.
#: Measured on an H200 (float32, causal, D = 64, all five kernels of a step):
#: B8-H12-T1024 7.0 ms with 64 rows, 5.5 with 128; B32-H8-T256 1.8 with 64, 2.5 with
#: 128 (each key tile serves twice the rows, but with few blocks a head, a causal
#: block's masked corner costs more). 32 rows, or 32 KiB tiles, were slower at both.
ROWS = 64
LONG_ROWS = 128
LONG = 512
#: Workgroup memory a kernel's tiles may take: WebGPU's portable minimum.
SHARED_BYTES = 16384
#: Most rows in one tile.
MAX_TILE = 64
#: Largest head dim (q, k or v row): a thread keeps whole rows in registers.
MAX_HEAD_DIM = 256
#: The running max moves only when a score exceeds it by more than this (exp(8) ~ 3e3).
RESCALE = 8.0

NEG_INF = "bitcast<f32>(0xff800000u)"
NAN = "bitcast<f32>(0x7fc00000u)"
HELPERS = """fn is_nan(x: f32) -> bool {
  // on the bits: WGSL lets compilers assume that float comparisons never see a NaN
  return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}

fn is_neg_inf(x: f32) -> bool {
  return bitcast<u32>(x) == 0xff800000u;
}"""


@dataclass(frozen=True)
class Problem:
    """One attention node's sizes, its attributes, and its bias's broadcast strides."""

    B: int
    H: int
    T: int
    S: int
    D: int
    Dv: int
    scale: float
    causal: bool
    layout: str
    #: element strides of the bias over (B, H, T, S), 0 on broadcast axes; None: no bias
    bias: tuple[int, int, int, int] | None
    #: rows of a block = threads of a workgroup (`ROWS` or `LONG_ROWS`)
    threads: int = ROWS

    @classmethod
    def of(cls, op: ops.Op, in_types: tuple[TensorType, ...]) -> Problem:
        n = len(op.operands)
        t = dict(zip(op.operands, in_types))
        B, H, T, D = op.shape(*t["q"].shape)  # the swap of "bthd" is its own inverse
        S = op.shape(*t["k"].shape)[2]
        values = t["v"] if "v" in t else t.get("dout")
        Dv = values.shape[3] if values is not None else 0
        strides = None
        if len(in_types) > n:
            shape = in_types[n].shape
            steps, step = [], 1
            for d in reversed(shape):
                steps.append(step if d != 1 else 0)
                step *= d
            strides = tuple(steps[::-1])
        for what, dim in (("q and k", D), ("v", Dv)):
            if dim > MAX_HEAD_DIM:
                raise BackendError(f"the wgpu attention kernels take head dims up to "
                                   f"{MAX_HEAD_DIM}; {what} have {dim}")
        threads = LONG_ROWS if max(T, S) >= LONG else ROWS
        return cls(B, H, T, S, D, Dv, op.scale, op.is_causal, op.layout, strides, threads)

    def row(self, i: str, length: int) -> str:
        """The row index of position `i` of batch·head `bh` (the shader's `b`, `h`) in a
        [B, H, length, ·] value of this layout; lse and delta share it as their index."""
        if self.layout == "bhtd":
            return f"bh * {length}u + {i}"
        return f"(b * {length}u + {i}) * {self.H}u + h"

    @property
    def offset(self) -> int:
        """S - T: query i is position i + S - T of the keys (the causal mask's convention)."""
        return self.S - self.T


def _quads(width: int) -> int:
    """vec4s per row (at least 1, so that a 0-wide row is one vec4 of zeros)."""
    return max(1, -(-width // 4))


@dataclass(frozen=True)
class Rows:
    """A bound [rows, width] matrix of f32 (per batch·head): vec4 elements where rows are
    whole vec4s, else scalars."""

    name: str
    width: int
    vec: bool

    @property
    def quads(self) -> int:
        return _quads(self.width)

    def row(self, base: str) -> list[str]:
        """vec4 expressions of one row, whose first element (or vec4, when `vec`) is `base`."""
        if self.vec:
            return [f"{self.name}[{base} + {c}u]" for c in range(self.quads)]
        out = []
        for c in range(self.quads):
            lanes = [f"{self.name}[{base} + {4 * c + lane}u]" if 4 * c + lane < self.width
                     else "0.0" for lane in range(4)]
            out.append(f"vec4<f32>({', '.join(lanes)})")
        return out

    def start(self, row: str) -> str:
        """The index of the first element (vec4 when `vec`) of row `row`."""
        return f"({row}) * {self.quads if self.vec else self.width}u"

    def load_tile(self, dst: str, row: Callable[[str], str], n: str, threads: int) -> str:
        """Statements: the tile's rows r < n, row(r) of this matrix, into workgroup array
        `dst` (row-major vec4s); neighbouring threads load neighbouring elements."""
        if self.vec:
            return (f"    for (var e = lid; e < ({n}) * {self.quads}u; e += {threads}u) {{\n"
                    f"      {dst}[e] = {self.name}[{self.start(row(f'e / {self.quads}u'))}"
                    f" + e % {self.quads}u];\n    }}")
        w = self.width
        return (f"    for (var e = lid; e < ({n}) * {w}u; e += {threads}u) {{\n"
                f"      let d = e % {w}u;\n"
                f"      {dst}[(e / {w}u) * {self.quads}u + d / 4u][d % 4u] = "
                f"{self.name}[{self.start(row(f'e / {w}u'))} + d];\n    }}")


class _Source:
    """The declarations of one shader: storage bindings in order, and workgroup arrays."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.bound: list[tuple] = []
        self.shared: list[str] = []

    def bind(self, name: str, elem: str, bound: tuple, writable: bool = False) -> str:
        access = "read_write" if writable else "read"
        self.lines.append(f"@group(0) @binding({len(self.bound)}) var<storage, {access}> "
                          f"{name}: array<{elem}>;")
        self.bound.append(bound)
        return name

    def rows(self, name: str, width: int, size: int, k: int) -> Rows:
        """Input k, a matrix with rows of `width` floats, bound as vec4s where it can be
        (a non-empty buffer: an empty one's 4-byte placeholder holds no vec4)."""
        vec = width % 4 == 0 and size > 0
        self.bind(name, "vec4<f32>" if vec else "f32", ("in", k))
        return Rows(name, width, vec)

    def tile(self, name: str, rows: int, quads: int) -> str:
        self.shared.append(f"var<workgroup> {name}: array<vec4<f32>, {rows * quads}>;")
        return name

    def scalars(self, name: str, rows: int) -> str:
        self.shared.append(f"var<workgroup> {name}: array<f32, {rows}>;")
        return name

    def dispatch(self, body: list[str], groups: int, threads: int) -> Dispatch:
        entry = (f"@compute @workgroup_size({threads})\n"
                 "fn main(@builtin(workgroup_id) wid: vec3<u32>,\n"
                 "        @builtin(num_workgroups) nwg: vec3<u32>,\n"
                 "        @builtin(local_invocation_index) lid: u32) {\n"
                 f"  let g = wid.x + wid.y * nwg.x;\n"
                 f"  if (g >= {groups}u) {{ return; }}  // uniform: the same for the group\n"
                 + "\n".join(body) + "\n}\n")
        source = "\n\n".join(["\n".join(self.lines), HELPERS, "\n".join(self.shared), entry])
        return Dispatch(source, grid(groups, 1), tuple(self.bound))


def tile_rows(quads_per_row: int, floats_per_row: int = 0) -> int:
    """Rows of a tile whose rows take `quads_per_row` vec4s and `floats_per_row` scalars
    of workgroup memory, within `SHARED_BYTES` and `MAX_TILE`."""
    return max(1, min(MAX_TILE, SHARED_BYTES // (16 * quads_per_row + 4 * floats_per_row)))


def _dot(a: list[str], b: list[str]) -> str:
    return " + ".join(f"dot({x}, {y})" for x, y in zip(a, b))


def _bias_base(p: Problem, bias: str | None, row: str, t_axis: bool) -> list[str]:
    """`let boff`: the bias offset of (bh, row) without the other axis's term."""
    if bias is None:
        return []
    sb, sh, st, ss = p.bias
    axis = f" + ({row}) * {st}u" if t_axis else f" + ({row}) * {ss}u"
    return [f"  let boff = b * {sb}u + h * {sh}u{axis};"]


def _store_row(name: str, width: int, vec: bool, base: str, values: list[str],
               indent: str) -> list[str]:
    """Store vec4 `values` as row `base` (the row's index) of an f32 [rows, width] output."""
    if vec:
        return [f"{indent}{name}[({base}) * {len(values)}u + {c}u] = {v};"
                for c, v in enumerate(values)]
    lines = [f"{indent}let ob = ({base}) * {width}u;"]
    for c, v in enumerate(values):
        lines += [f"{indent}{name}[ob + {4 * c + lane}u] = ({v}).{'xyzw'[lane]};"
                  for lane in range(4) if 4 * c + lane < width]
    return lines


def row_kernel(p: Problem, kind: str, inputs: dict[str, int],
               has_bias: bool) -> WgpuKernel:
    """A query row per thread; kind "out" (the attention), "lse", "dq" or "ds"."""
    T, S, D, Dv = p.T, p.S, p.D, p.Dv
    src = _Source()
    with_v = kind != "lse"
    backward = kind in ("dq", "ds")
    q = src.rows("q", D, p.B * p.H * T * D, inputs["q"])
    k = src.rows("k", D, p.B * p.H * S * D, inputs["k"])
    v = src.rows("v", Dv, p.B * p.H * S * Dv, inputs["v"]) if with_v else None
    if backward:
        dout = src.rows("dout", Dv, p.B * p.H * T * Dv, inputs["dout"])
        src.bind("lse", "f32", ("in", inputs["lse"]))
        src.bind("delta", "f32", ("in", inputs["delta"]))
    bias = src.bind("bias", "f32", ("in", inputs["bias"])) if has_bias else None
    out_width = {"out": Dv, "lse": 1, "dq": D, "ds": S}[kind]
    out_vec = kind in ("out", "dq") and out_width % 4 == 0
    src.bind("out", "vec4<f32>" if out_vec else "f32", ("out",), writable=True)
    c_rows = tile_rows(k.quads + (v.quads if v else 0))
    kt = src.tile("kt", c_rows, k.quads)
    vt = src.tile("vt", c_rows, v.quads) if v else None
    blocks = -(-T // p.threads)
    groups = p.B * p.H * blocks

    body = [f"  let bh = g / {blocks}u;",
            f"  let b = bh / {p.H}u;",
            f"  let h = bh % {p.H}u;",
            f"  let r0 = (g % {blocks}u) * {p.threads}u;",
            "  let i = r0 + lid;",
            f"  let row = min(i, {T - 1}u);  // rows past T compute row T-1 and store nothing",
            f"  let qb = {q.start(p.row('row', T))};"]
    body += [f"  let q{c} = {x} * {literal(p.scale, 'float32')};"
             for c, x in enumerate(q.row("qb"))]
    body += _bias_base(p, bias, "row", t_axis=True)
    if backward:
        body.append(f"  let db = {dout.start(p.row('row', T))};")
        body += [f"  let do{c} = {x};" for c, x in enumerate(dout.row("db"))]
        body += [f"  let lse_i = lse[{p.row('row', T)}];",
                 f"  let delta_i = delta[{p.row('row', T)}];"]
        accs = [f"acc{c}" for c in range(k.quads if kind == "dq" else 0)]
    else:
        body += [f"  var m = {NEG_INF};", "  var l = 0.0;", "  var bad = false;"]
        accs = [f"acc{c}" for c in range(v.quads if v else 0)]
    body += [f"  var {a} = vec4<f32>();" for a in accs]
    if p.causal:  # keys j < lim are visible to this row; none past kv_end to the block
        body += [f"  let lim = i32(row) + {p.offset + 1};",
                 f"  let kv_end = u32(clamp(i32(min(r0 + {p.threads}u, {T}u)) + {p.offset}, "
                 f"0, {S}));"]
    else:
        body.append(f"  let kv_end = {S}u;")
    body += [f"  for (var kv0 = 0u; kv0 < kv_end; kv0 += {c_rows}u) {{",
             f"    let n = min({c_rows}u, kv_end - kv0);",
             "    workgroupBarrier();  // the previous tile is read",
             k.load_tile(kt, lambda r: p.row(f"kv0 + {r}", S), "n", p.threads)]
    if v:
        body.append(v.load_tile(vt, lambda r: p.row(f"kv0 + {r}", S), "n", p.threads))
    body.append("    workgroupBarrier();")
    jn = "u32(clamp(lim - i32(kv0), 0, i32(n)))" if p.causal else "n"
    body += [f"    let jn = {jn};",
             "    for (var j = 0u; j < jn; j++) {",
             f"      let kq = j * {k.quads}u;",
             f"      var s = {_dot([f'q{c}' for c in range(k.quads)], [f'{kt}[kq + {c}u]' for c in range(k.quads)])};"]  # noqa: E501
    if bias:
        body.append(f"      s += bias[boff + (kv0 + j) * {p.bias[3]}u];")
    vrow = [f"{vt}[vq + {c}u]" for c in range(v.quads)] if v else []
    if v:
        body.append(f"      let vq = j * {v.quads}u;")
    if backward:
        body += ["      let p = select(exp(s - lse_i), 0.0, is_neg_inf(s));",
                 f"      let ds = p * ({_dot([f'do{c}' for c in range(v.quads)], vrow)} "
                 "- delta_i);"]
        if kind == "dq":
            body += [f"      acc{c} += ds * {kt}[kq + {c}u];" for c in range(k.quads)]
        else:
            body.append(f"      if (i < {T}u) {{ out[(bh * {T}u + i) * {S}u + kv0 + j] = ds; }}")
    else:
        body += ["      if (is_nan(s)) { bad = true; }",
                 "      let live = !is_nan(s) && !is_neg_inf(s);",
                 f"      if (live && s > m + {RESCALE}) {{  // lazily: rarely, and never overflowing",  # noqa: E501
                 "        let a = select(exp(m - s), 0.0, is_neg_inf(m));",
                 "        l *= a;"]
        body += [f"        {a} *= a;" for a in accs]
        body += ["        m = s;", "      }",
                 "      let p = select(0.0, exp(s - m), live);",
                 "      l += p;"]
        body += [f"      {a} += p * {x};" for a, x in zip(accs, vrow)]
    body += ["    }", "  }", f"  if (i >= {T}u) {{ return; }}"]
    if kind == "out":
        body += ["  let inv = select(1.0 / l, 1.0, l == 0.0);  // no weight: acc, 0 (or NaN)"]
        values = [f"select({a} * inv, vec4<f32>({NAN}), bad)" for a in accs]
        body += _store_row("out", Dv, out_vec, p.row("i", T), values, "  ")
    elif kind == "lse":
        body += [f"  var lse_i = select(m + log(l), {NEG_INF}, is_neg_inf(m));",
                 f"  if (bad) {{ lse_i = {NAN}; }}",
                 f"  out[{p.row('i', T)}] = lse_i;"]
    elif kind == "dq":
        values = [f"{a} * {literal(p.scale, 'float32')}" for a in accs]
        body += _store_row("out", D, out_vec, p.row("i", T), values, "  ")
    elif p.causal:  # ds: the keys this row may not see have gradient 0
        body += [f"  for (var j = u32(clamp(lim, 0, {S})); j < {S}u; j++) {{",
                 f"    out[(bh * {T}u + i) * {S}u + j] = 0.0;", "  }"]
    return WgpuKernel((src.dispatch(body, groups, p.threads),))


def column_kernel(p: Problem, kind: str, inputs: dict[str, int],
                  has_bias: bool) -> WgpuKernel:
    """A key row per thread; kind "dk" or "dv"."""
    T, S, D, Dv = p.T, p.S, p.D, p.Dv
    src = _Source()
    q = src.rows("q", D, p.B * p.H * T * D, inputs["q"])
    k = src.rows("k", D, p.B * p.H * S * D, inputs["k"])
    v = src.rows("v", Dv, p.B * p.H * S * Dv, inputs["v"]) if kind == "dk" else None
    dout = src.rows("dout", Dv, p.B * p.H * T * Dv, inputs["dout"])
    src.bind("lse", "f32", ("in", inputs["lse"]))
    if kind == "dk":
        src.bind("delta", "f32", ("in", inputs["delta"]))
    bias = src.bind("bias", "f32", ("in", inputs["bias"])) if has_bias else None
    width = D if kind == "dk" else Dv
    out_vec = width % 4 == 0
    src.bind("out", "vec4<f32>" if out_vec else "f32", ("out",), writable=True)
    scalars = 2 if kind == "dk" else 1
    c_rows = tile_rows(q.quads + dout.quads, scalars)
    qt = src.tile("qt", c_rows, q.quads)
    dt = src.tile("dt", c_rows, dout.quads)
    lt = src.scalars("lt", c_rows)
    et = src.scalars("et", c_rows) if kind == "dk" else None
    blocks = -(-S // p.threads)
    groups = p.B * p.H * blocks

    body = [f"  let bh = g / {blocks}u;",
            f"  let b = bh / {p.H}u;",
            f"  let h = bh % {p.H}u;",
            f"  let c0 = (g % {blocks}u) * {p.threads}u;",
            "  let j = c0 + lid;",
            f"  let col = min(j, {S - 1}u);  // keys past S compute key S-1 and store nothing",
            f"  let kb = {k.start(p.row('col', S))};"]
    body += [f"  let k{c} = {x} * {literal(p.scale, 'float32')};"
             for c, x in enumerate(k.row("kb"))]
    if v:
        body.append(f"  let vb = {v.start(p.row('col', S))};")
        body += [f"  let v{c} = {x};" for c, x in enumerate(v.row("vb"))]
    body += _bias_base(p, bias, "col", t_axis=False)
    accs = [f"acc{c}" for c in range(_quads(width))]
    body += [f"  var {a} = vec4<f32>();" for a in accs]
    if p.causal:  # rows i >= lo see this key; none before q_start sees the block
        body += [f"  let lo = i32(col) - {p.offset};",
                 f"  let q_start = u32(clamp(i32(c0) - {p.offset}, 0, {T}));"]
    else:
        body.append("  let q_start = 0u;")
    body += [f"  for (var q0 = q_start; q0 < {T}u; q0 += {c_rows}u) {{",
             f"    let n = min({c_rows}u, {T}u - q0);",
             "    workgroupBarrier();  // the previous tile is read",
             q.load_tile(qt, lambda r: p.row(f"q0 + {r}", T), "n", p.threads),
             dout.load_tile(dt, lambda r: p.row(f"q0 + {r}", T), "n", p.threads),
             f"    for (var e = lid; e < n; e += {p.threads}u) {{",
             f"      {lt}[e] = lse[{p.row('q0 + e', T)}];"]
    if et:
        body.append(f"      {et}[e] = delta[{p.row('q0 + e', T)}];")
    body += ["    }", "    workgroupBarrier();"]
    first = "u32(clamp(lo - i32(q0), 0, i32(n)))" if p.causal else "0u"
    qrow = [f"{qt}[rq + {c}u]" for c in range(q.quads)]
    drow = [f"{dt}[rd + {c}u]" for c in range(dout.quads)]
    body += [f"    for (var r = {first}; r < n; r++) {{",
             f"      let rq = r * {q.quads}u;",
             f"      let rd = r * {dout.quads}u;",
             f"      var s = {_dot(qrow, [f'k{c}' for c in range(k.quads)])};"]
    if bias:
        body.append(f"      s += bias[boff + (q0 + r) * {p.bias[2]}u];")
    body.append(f"      let p = select(exp(s - {lt}[r]), 0.0, is_neg_inf(s));")
    if kind == "dk":
        body.append(f"      let ds = p * ({_dot(drow, [f'v{c}' for c in range(v.quads)])} "
                    f"- {et}[r]);")
        body += [f"      {a} += ds * {x};" for a, x in zip(accs, qrow)]
    else:
        body += [f"      {a} += p * {x};" for a, x in zip(accs, drow)]
    body += ["    }", "  }", f"  if (j >= {S}u) {{ return; }}"]
    scale = f" * {literal(p.scale, 'float32')}" if kind == "dk" else ""
    body += _store_row("out", width, out_vec, p.row("j", S),
                       [f"{a}{scale}" for a in accs], "  ")
    return WgpuKernel((src.dispatch(body, groups, p.threads),))


#: op class -> (kernel generator, kind)
KERNELS = {
    ops.Attention: (row_kernel, "out"),
    ops.AttentionLSE: (row_kernel, "lse"),
    ops.AttentionGradQ: (row_kernel, "dq"),
    ops.AttentionGradScores: (row_kernel, "ds"),
    ops.AttentionGradK: (column_kernel, "dk"),
    ops.AttentionGradV: (column_kernel, "dv"),
}


def attention_kernel(op: ops.Op, in_types: tuple[TensorType, ...],
                     out_type: TensorType) -> WgpuKernel:
    """The kernel of one attention node (see the module docstring)."""
    if math.prod(out_type.shape) == 0:
        return WgpuKernel()  # an empty result: nothing to write
    generate, kind = KERNELS[type(op)]
    inputs = {name: k for k, name in enumerate(op.operands)}
    inputs["bias"] = len(op.operands)
    return generate(Problem.of(op, in_types), kind, inputs, len(in_types) > len(op.operands))


@lower.register(ops.Attention, WgpuBackend)
@lower.register(ops.AttentionLSE, WgpuBackend)
@lower.register(ops.AttentionGradQ, WgpuBackend)
@lower.register(ops.AttentionGradK, WgpuBackend)
@lower.register(ops.AttentionGradV, WgpuBackend)
@lower.register(ops.AttentionGradScores, WgpuBackend)
def _(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
    return attention_kernel(op, in_types, out_type)
