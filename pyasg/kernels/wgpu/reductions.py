"""WGSL kernels of the reductions: Sum, Max and ArgMax over any set of axes.

Shapes are static, so each node gets its own shader with sizes and strides baked in.
The input's dimensions are first simplified: size-1 dimensions are dropped and
neighbouring dimensions that are both kept or both reduced are merged, so a tensor
is seen as alternating kept and reduced groups. Output element `o` starts at
`kept_off(o)` and its reduced element `r` sits at `red_off(r)` past it; in the common
"reduce the trailing axes" case that is one multiply-add.

The algorithm is chosen by R, the number of elements reduced into each output, and
by whether the innermost dimension is reduced ("row" reduction) or kept ("column"):

- R <= 64 (`SMALL`): one thread per output, a serial loop over R. Neighbouring
  threads own neighbouring outputs, so a column reduction reads coalesced.
- R > 64, row: one WORKGROUP per output. Thread t folds r = t, t + W, t + 2W, ...
  (neighbouring threads read neighbouring addresses), four loads in flight per
  iteration; the W partial results go to workgroup shared memory and are combined
  by a tree (log2 W steps, unrolled by the generator, a barrier after each).
- R > 64, column: a workgroup of LX x LY threads owns LX neighbouring outputs (LX up
  to 32, the contiguous run of the innermost kept dimension), so each row of it
  reads LX neighbouring addresses; its LY lanes stride over R and a tree over the
  LY lanes in shared memory combines them. (A workgroup per output would read one
  word per cache line here.)
- Too few workgroups for a GPU (fewer than `TARGET_GROUPS`, e.g. a whole-tensor sum
  or a bias gradient summed over many rows): R is SPLIT into parts. Pass 1 runs one
  workgroup per (outputs, part) and writes partial results to scratch buffers, laid
  out [output][part] for a row and [part][output] for a column reduction, so that
  pass 2, which reduces the partials with the same planner (never splitting again),
  again reads them coalesced.

All grids of workgroups are 2-d where needed (any number of outputs fits under the
65535-per-dimension limit); the early `return` of surplus workgroups depends on the
workgroup id alone, so every barrier stays in uniform control flow.

Sum accumulates in the tensor's dtype (int32 stays int32 and wraps, as numpy's int32
sum does). Max propagates NaN, as numpy does. ArgMax carries (value, index) pairs and
a pair beats another only if its value is greater, or equal with a smaller index (a
NaN counts as greater than everything), so it returns numpy's FIRST maximum whatever
order the threads and the tree combine in. NaN is tested on the bits, because WGSL
lets a compiler assume that float comparisons never see a NaN.

Hooks: a pass reads element `at` of what it reduces through its `Source` (a `Load`:
the input tensor, a fused group's prologue, a split's partials) and writes output
element `at` through its `Sink` (a `Store`: the output, a fused group's epilogue, a
split's partials), so the planner never knows what surrounds it.

Every pass is a `kernel.Part` (its generator, run alone or inside a merged shader by
`horizontal.py`), so it calls the functions it declares by the names the shader gives
them: `comb`, `kept_off` and `red_off` are their names alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pyasg.asg import ops
from pyasg.asg.types import TensorType
from pyasg.kernels import lower
from pyasg.kernels.wgpu.backend import WgpuBackend
from pyasg.kernels.wgpu.codegen import strides, wgsl_type
from pyasg.kernels.wgpu.horizontal import alone, parts_kernel
from pyasg.kernels.wgpu.kernel import Dispatch, Part, WgpuKernel
from pyasg.kernels.wgpu.shader import Buffer, Load, Shader, Store

#: Reduced sizes up to this run one thread per output with a serial loop.
SMALL = 64
#: Split R while a reduction has fewer workgroups than this (enough to fill a big GPU).
TARGET_GROUPS = 1024
#: ... as long as every thread of a part still folds at least this many elements. A
#: second pass costs a dispatch: on an H100 a W2 training step (its bias and norm
#: gradients are column sums over 1024 rows) took 0.97 ms with 16 here and 0.73-0.81 ms
#: with 128 (75 -> 65 dispatches).
MIN_ITERATIONS = 128
#: Most parts R is split into.
MAX_PARTS = 1024
#: Most neighbouring outputs one workgroup of a column reduction owns.
LANES = 32
#: Loads each thread issues per loop iteration (independent: in flight together).
UNROLL = 4


@dataclass(frozen=True)
class Layout:
    """The input seen as merged dimensions: (size, input stride), outermost first."""

    kept: tuple[tuple[int, int], ...]
    reduced: tuple[tuple[int, int], ...]
    outputs: int
    count: int  # R, the number of elements reduced into each output


def layout(shape: tuple[int, ...], axes: tuple[int, ...]) -> Layout:
    """Drop size-1 dimensions, merge neighbours of one kind (both kept or both reduced).

    Merging is exact for a row-major tensor: the merged dimension's stride is that of
    its innermost member, and a dropped size-1 dimension never separates two strides.

    >>> layout((4, 1, 5, 6), (2, 3))
    Layout(kept=((4, 30),), reduced=((30, 1),), outputs=4, count=30)
    """
    groups: list[list] = []  # [size, stride, reduced]
    for d, (n, st) in enumerate(zip(shape, strides(shape))):
        if n == 1:
            continue
        red = d in axes
        if groups and groups[-1][2] == red:
            groups[-1][0] *= n
            groups[-1][1] = st
        else:
            groups.append([n, st, red])
    kept = tuple((n, st) for n, st, red in groups if not red)
    reduced = tuple((n, st) for n, st, red in groups if red)
    return Layout(kept, reduced, math.prod(n for n, _ in kept),
                  math.prod(n for n, _ in reduced))


def offset_fn(sh: Shader, name: str, groups: tuple[tuple[int, int], ...]) -> str:
    """Declare `fn name(q: u32) -> u32`: the input offset of flat index q over merged
    `groups` (see `Layout`); returns `name`."""
    if len(groups) <= 1:
        stride = groups[0][1] if groups else 0
        value = "0u" if not groups else "q" if stride == 1 else f"q * {stride}u"
        return sh.function(name, "q: u32", f"  return {value};", "u32")
    lines = ["  var q = q0;", "  var off = 0u;"]
    for size, stride in reversed(groups[1:]):  # innermost first: q % size is its coordinate
        lines.append(f"  off += (q % {size}u) * {stride}u;")
        lines.append(f"  q = q / {size}u;")
    lines.append(f"  return off + q * {groups[0][1]}u;")
    return sh.function(name, "q0: u32", "\n".join(lines), "u32")


@dataclass(frozen=True)
class Reducer:
    """What is reduced: 'sum', 'max' or 'argmax', of WGSL element type `ty`."""

    kind: str
    ty: str

    def declare(self, sh: Shader) -> str:
        """Declare the function the passes call, `comb(a, b)` or `better(bv, bi, av, ai)`;
        returns the name `sh` gave it."""
        t, nan = self.ty, self.ty == "f32"
        if nan and self.kind != "sum":
            sh.helper("is_nan")
        if self.kind == "sum":
            return sh.function("comb", f"a: {t}, b: {t}", "  return a + b;", t)
        if self.kind == "max":
            guard = ("  if (is_nan(a)) { return a; }\n  if (is_nan(b)) { return b; }\n"
                     if nan else "")
            return sh.function("comb", f"a: {t}, b: {t}", f"{guard}  return max(a, b);", t)
        guard = ("  let an = is_nan(av);\n  let bn = is_nan(bv);\n"
                 "  if (an || bn) { return bn && (!an || bi < ai); }\n" if nan else "")
        return sh.function("better", f"bv: {t}, bi: u32, av: {t}, ai: u32",
                           "  // does (bv, bi) beat (av, ai)? ties go to the smaller index: "
                           f"numpy's first max\n{guard}  return bv > av || (bv == av && bi < ai);",
                           "bool")

    @property
    def zero(self) -> str:
        return {"f32": "0.0", "i32": "0", "u32": "0u"}[self.ty]

    def result(self) -> str:
        """The value written to the output from the accumulators `acc` (and `ai`)."""
        return "i32(ai)" if self.kind == "argmax" else "acc"


@dataclass(frozen=True)
class Source:
    """What a pass folds: the value at input offset `at` through `value`; for argmax also
    its index, through `index`, or (None) the reduced position r itself."""

    value: Load
    index: Load | None = None

    def load(self, sh: Shader, r: str, red_off: str = "red_off") -> tuple[str, str]:
        """(value, index) of reduced element r of the output whose offset is `base`
        (`red_off`: the name of the shader's reduced-offset function)."""
        at = f"base + {red_off}({r})"
        return self.value(sh, at), (r if self.index is None else self.index(sh, at))


@dataclass(frozen=True)
class Sink:
    """Where a pass writes output element `at`: the result through `value`; with `index`
    (a split's partials of an argmax), the pair itself: `acc` through value, `ai` through
    index."""

    value: Store
    index: Store | None = None

    def write(self, sh: Shader, red: Reducer, at: str) -> list[str]:
        if self.index is None:
            return [self.value(sh, at, red.result())]
        return [self.value(sh, at, "acc"), self.index(sh, at, "ai")]


def partials(ty: str, argmax: bool) -> tuple[Source, Sink]:
    """Partial results in scratch: values ("tmp", 0) and, for argmax, indices ("tmp", 1)."""
    values = Buffer("tmp0", ty, ("tmp", 0))
    index = Buffer("tmp1", "u32", ("tmp", 1)) if argmax else None
    return (Source(values.load, index.load if index else None),
            Sink(values.store, index.store if index else None))


@dataclass(frozen=True)
class _Names:
    """The functions a pass calls, by the names its shader gave them."""

    comb: str  # comb(a, b), or better(bv, bi, av, ai) for an argmax
    kept: str  # kept_off(o): where output o's elements start
    red: str   # red_off(r): where reduced element r sits past that


def _declare(sh: Shader, red: Reducer, lay: Layout) -> _Names:
    """Declare the reducer's function and the layout's offset functions in `sh`."""
    return _Names(red.declare(sh), offset_fn(sh, "kept_off", lay.kept),
                  offset_fn(sh, "red_off", lay.reduced))


def _fold(sh: Shader, red: Reducer, src: Source, r: str, indent: str, fn: _Names) -> str:
    """WGSL folding element r into the accumulators `acc` (and `ai`)."""
    v, i = src.load(sh, r, fn.red)
    if red.kind != "argmax":
        return f"{indent}acc = {fn.comb}(acc, {v});\n"
    return (f"{indent}{{\n{indent}  let v = {v};\n{indent}  let vi = {i};\n"
            f"{indent}  if ({fn.comb}(v, vi, acc, ai)) {{ acc = v; ai = vi; }}\n{indent}}}\n")


def serial_part(red: Reducer, lay: Layout, src: Source, sink: Sink) -> Part:
    """One thread per output element, a serial loop over the R reduced elements."""
    def emit(sh: Shader) -> str:
        fn = _declare(sh, red, lay)
        if red.kind == "sum":
            init, first = f"  var acc = {red.zero};\n", "0u"
        else:  # start from element 0: max and argmax have no identity for every dtype
            v0, i0 = src.load(sh, "0u", fn.red)
            init = f"  var acc = {v0};\n" + (f"  var ai = {i0};\n" if red.kind == "argmax"
                                              else "")
            first = "1u"
        loop = (f"  for (var r = {first}; r < {lay.count}u; r++) {{\n"
                f"{_fold(sh, red, src, 'r', '    ', fn)}  }}\n")
        store = "\n".join(f"  {s}" for s in sink.write(sh, red, "i"))
        return (f"  if (i >= {lay.outputs}u) {{ return; }}\n  let base = {fn.kept}(i);\n"
                f"{init}{loop}{store}")
    return Part.of_threads(emit, lay.outputs)


def workgroup_part(red: Reducer, lay: Layout, src: Source, sink: Sink, lanes: int, depth: int,
                   parts: int, per_part: int, column: bool) -> Part:
    """Workgroups of `lanes` outputs x `depth` threads folding R (see the docstring).

    With `parts` > 1, workgroup (outputs, p) folds r in [p * per_part, ...) and writes
    its partial result through `sink` at [o][p], or [p][o] for a `column`.
    """
    wg = lanes * depth
    groups = -(-lay.outputs // lanes) * parts

    def emit(sh: Shader) -> str:
        return _workgroup_body(sh, red, lay, src, sink, lanes, depth, parts, per_part, column)
    return Part(emit, groups, wg)


def _workgroup_body(sh: Shader, red: Reducer, lay: Layout, src: Source, sink: Sink,
                    lanes: int, depth: int, parts: int, per_part: int, column: bool) -> str:
    """The body of `workgroup_part`, seeing `g` and `lid`."""
    fn = _declare(sh, red, lay)
    wg, outs, argmax = lanes * depth, lay.outputs, red.kind == "argmax"
    groups = -(-outs // lanes) * parts
    sv = sh.workgroup("sv", f"array<{red.ty}, {wg}>")
    si = sh.workgroup("si", f"array<u32, {wg}>") if argmax else ""
    if parts == 1:
        span = f"  let ob = g;\n  let lo = 0u;\n  let hi = {lay.count}u;\n"
    else:
        span = (f"  let ob = g / {parts}u;\n  let p = g % {parts}u;\n"
                f"  let lo = p * {per_part}u;\n  let hi = min(lo + {per_part}u, {lay.count}u);\n")
    # Lanes past the last output reduce a copy of it (they must reach the barriers)
    # and write nothing.
    span += (f"  let lx = lid % {lanes}u;\n  let ly = lid / {lanes}u;\n"
             f"  let o_raw = ob * {lanes}u + lx;\n  let o = min(o_raw, {outs - 1}u);\n"
             f"  let base = {fn.kept}(o);\n")
    if red.kind == "sum":
        init = f"  var acc = {red.zero};\n"
    else:  # threads with nothing to fold start from the part's last element: harmless
        v0, i0 = src.load(sh, "r0", fn.red)
        init = f"  let r0 = min(lo + ly, hi - 1u);\n  var acc = {v0};\n" + (
            f"  var ai = {i0};\n" if argmax else "")
    unrolled = "".join(_fold(sh, red, src, f"r + {k * depth}u", "    ", fn)
                       for k in range(UNROLL))
    loop = (f"  var r = lo + ly;\n"
            f"  for (; r + {(UNROLL - 1) * depth}u < hi; r += {UNROLL * depth}u) {{\n"
            f"{unrolled}  }}\n"
            f"  for (; r < hi; r += {depth}u) {{\n{_fold(sh, red, src, 'r', '    ', fn)}  }}\n")
    tree = [f"  {sv}[lid] = acc;" + (f"\n  {si}[lid] = ai;" if argmax else ""),
            "  workgroupBarrier();"]
    s = depth // 2
    while s >= 1:  # unrolled: each step halves the live partials of every output
        o = f"lid + {s * lanes}u"
        if argmax:
            tree.append(f"  if (ly < {s}u && {fn.comb}({sv}[{o}], {si}[{o}], {sv}[lid], "
                        f"{si}[lid])) {{\n    {sv}[lid] = {sv}[{o}];\n"
                        f"    {si}[lid] = {si}[{o}];\n  }}")
        else:
            tree.append(f"  if (ly < {s}u) {{ {sv}[lid] = {fn.comb}({sv}[lid], {sv}[{o}]); }}")
        tree.append("  workgroupBarrier();")
        s //= 2
    at = "o" if parts == 1 else f"p * {outs}u + o" if column else f"o * {parts}u + p"
    store = "\n".join(f"    {x}" for x in sink.write(sh, red, at))
    return (
        f"  if (g >= {groups}u) {{ return; }}  // uniform: the same for the whole workgroup\n"
        f"{span}{init}{loop}" + "\n".join(tree) + "\n"
        f"  if (ly == 0u && o_raw < {outs}u) {{\n    let acc = {sv}[lid];\n"
        + (f"    let ai = {si}[lid];\n" if argmax else "") + f"{store}\n  }}")


def fill_part(size: int, value: str, store: Store) -> Part:
    """One thread per output element writing `value` through `store` (an empty sum)."""
    def emit(sh: Shader) -> str:
        return f"  if (i >= {size}u) {{ return; }}\n  {store(sh, 'i', value)}"
    return Part.of_threads(emit, size)


def _pow2(n: int) -> int:
    return 1 << max(0, n - 1).bit_length()


def plan(red: Reducer, lay: Layout, src: Source, sink: Sink,
         split: bool = True) -> tuple[tuple[Dispatch, ...], tuple[int, ...]]:
    """The dispatches (and scratch byte sizes) reducing `lay` from `src` into `sink`:
    the passes of `plan_parts`, each alone.

    A split's first pass writes partials to scratch; its second reads them and writes
    through `sink`, so a fused epilogue runs once per output, in the last pass.

    >>> out = Sink(Buffer("out", "f32", ("out",)).store)
    >>> x = Source(Buffer("x", "f32", ("in", 0)).load)
    >>> dispatches, scratch = plan(Reducer("sum", "f32"), layout((300_000,), (0,)), x, out)
    >>> [d.bindings for d in dispatches], scratch
    ([(('in', 0), ('tmp', 0)), (('tmp', 0), ('out',))], (36,))
    """
    parts, scratch = plan_parts(red, lay, src, sink, split)
    return tuple(alone(p) for p in parts), scratch


def plan_parts(red: Reducer, lay: Layout, src: Source, sink: Sink,
               split: bool = True) -> tuple[tuple[Part, ...], tuple[int, ...]]:
    """The passes (as `Part`s) and scratch byte sizes reducing `lay` (see `plan`).

    >>> parts, _ = plan_parts(Reducer("sum", "f32"), layout((64, 300), (0,)),
    ...                       Source(Buffer("x", "f32", ("in", 0)).load),
    ...                       Sink(Buffer("out", "f32", ("out",)).store))
    >>> [(p.groups, p.size, p.threads) for p in parts]  # 64 rows: a thread per column
    [(2, 256, True)]
    """
    if lay.count <= SMALL:
        return (serial_part(red, lay, src, sink),), ()
    column = bool(lay.kept) and lay.kept[-1][1] == 1  # the innermost dimension is kept
    if column:
        lanes = min(LANES, _pow2(lay.kept[-1][0]))
        depth = 256 // lanes
    else:
        lanes = 1
        depth = 256 if lay.count >= 2048 else 128 if lay.count >= 512 else 64
    groups = -(-lay.outputs // lanes)
    parts = 1
    if split:
        parts = max(1, min(MAX_PARTS, -(-TARGET_GROUPS // groups),
                           lay.count // (MIN_ITERATIONS * depth)))
    per_part = -(-lay.count // parts)
    parts = -(-lay.count // per_part)  # every part non-empty
    if parts == 1:
        return (workgroup_part(red, lay, src, sink, lanes, depth, 1, per_part, column),), ()
    argmax = red.kind == "argmax"
    part_src, part_sink = partials(red.ty, argmax)
    first = workgroup_part(red, lay, src, part_sink, lanes, depth, parts, per_part, column)
    # pass 2 reduces the partials: [outputs][parts] (row) or [parts][outputs] (column)
    outs = lay.outputs
    tmp = (Layout(((outs, 1),), ((parts, outs),), outs, parts) if column
           else Layout(((outs, parts),), ((parts, 1),), outs, parts))
    second, _ = plan_parts(red, tmp, part_src, sink, split=False)
    return (first,) + second, (outs * parts * 4,) * (2 if argmax else 1)


def reduce_kernel(red: Reducer, in_type: TensorType, axes: tuple[int, ...],
                  out_type: TensorType) -> WgpuKernel:
    """The kernel of one Sum / Max / ArgMax node (see the module docstring)."""
    lay = layout(in_type.shape, axes)
    if lay.outputs == 0:
        return WgpuKernel()  # nothing to write
    out = Sink(Buffer("out", wgsl_type(out_type), ("out",)).store)
    if lay.count == 0:  # only Sum gets here (empty max/argmax are shape errors): zeros
        return parts_kernel((fill_part(lay.outputs, red.zero, out.value),))
    parts, scratch = plan_parts(red, lay, Source(Buffer("x", red.ty, ("in", 0)).load), out)
    return parts_kernel(parts, scratch)


@lower.register(ops.Sum, WgpuBackend)
def _(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
    return reduce_kernel(Reducer("sum", wgsl_type(in_types[0])), in_types[0], op.axes,
                         out_type)


@lower.register(ops.Max, WgpuBackend)
def _(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
    return reduce_kernel(Reducer("max", wgsl_type(in_types[0])), in_types[0], op.axes,
                         out_type)


@lower.register(ops.ArgMax, WgpuBackend)
def _(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
    return reduce_kernel(Reducer("argmax", wgsl_type(in_types[0])), in_types[0], (op.axis,),
                         out_type)
