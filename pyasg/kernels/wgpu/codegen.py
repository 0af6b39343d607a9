"""The WGSL vocabulary of the generators: types, grids, literals, index arithmetic.

Every kernel is generated from Python with the shapes of its node baked in as
constants. Threads are laid out on a 2-d grid so that no dimension exceeds 65535
workgroups (WebGPU's portable limit); `shader.thread_entry` recovers the flat thread
index. (A shader itself is put together by `shader.Shader`.)

>>> grid(70_000 * 256)
(35000, 2, 1)
>>> broadcast_offset((4, 3), (1, 3))
'c1 * 1u'
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pyasg.asg.types import TensorType

WORKGROUP = 256
MAX_GROUPS = 65535

WGSL_TYPES = {"float32": "f32", "int32": "i32", "uint32": "u32", "bool": "u32"}


def wgsl_type(t: TensorType | str) -> str:
    """The WGSL scalar type that stores a dtype (bool is u32 0/1)."""
    return WGSL_TYPES[t.dtype if isinstance(t, TensorType) else t]


def grid(threads: int, per_group: int = WORKGROUP) -> tuple[int, int, int]:
    """Workgroup counts (x, y, 1) covering `threads`, with x and y <= 65535."""
    groups = max(1, -(-threads // per_group))
    if groups <= MAX_GROUPS:
        return (groups, 1, 1)
    y = -(-groups // MAX_GROUPS)
    return (-(-groups // y), y, 1)


def strides(shape: Sequence[int]) -> list[int]:
    """Row-major element strides."""
    out, step = [], 1
    for d in reversed(shape):
        out.append(step)
        step *= d
    return out[::-1]


def coords(shape: Sequence[int], var: str = "i", prefix: str = "c") -> str:
    """WGSL lets `c0..c{n-1}` for the multi-index of flat index `var` in `shape`."""
    lines, rest = [], var
    for axis, st in enumerate(strides(shape)):
        if axis == len(shape) - 1:
            lines.append(f"  let {prefix}{axis} = {rest};")
        else:
            lines.append(f"  let {prefix}{axis} = {rest} / {st}u;")
            lines.append(f"  let r{prefix}{axis} = {rest} % {st}u;")
            rest = f"r{prefix}{axis}"
    return "\n".join(lines)


def broadcast_offset(out_shape: Sequence[int], in_shape: Sequence[int],
                     prefix: str = "c", var: str = "i") -> str:
    """WGSL u32 expression: the flat offset into an input broadcast to `out_shape`,
    from the output coordinates `c0..` (see `coords`), or `var`, the flat output
    index, where the shapes are equal."""
    if tuple(in_shape) == tuple(out_shape):
        return var
    lead = len(out_shape) - len(in_shape)
    terms = [f"{prefix}{lead + a} * {st}u" for a, (d, st) in
             enumerate(zip(in_shape, strides(in_shape))) if d != 1]
    return " + ".join(terms) if terms else "0u"


def literal(value: float | int, dtype: str) -> str:
    """A WGSL literal of `dtype`, holding what numpy would store (f32 rounding, wrapping)."""
    ty = wgsl_type(dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        stored = np.asarray(value).astype({"f32": np.float32, "i32": np.int32,
                                           "u32": np.uint32}[ty] if dtype != "bool" else bool)
    if ty == "f32":
        bits = int(stored.view(np.uint32))
        if not np.isfinite(stored):  # inf and nan have no literal in WGSL
            return f"bitcast<f32>({bits}u)"
        return f"f32({float(stored)!r})"
    if ty == "i32":
        return f"i32({int(stored)})"
    return f"{int(stored)}u"
