"""WGSL kernels of the shape ops: they only move 32-bit words, so any GPU dtype works.

- reshape: no kernel at all; the output aliases the input's buffer (both row-major).
- transpose, broadcast_to, slice, pad: one thread per OUTPUT element. The thread
  splits its flat index into output coordinates and computes the flat input offset
  with the node's shapes, strides, starts and steps baked in as constants (pad first
  decides whether the element is padding, then writes the fill value or the input).
- concatenate: one dispatch per operand, each thread copying one operand element to
  its place in the output. Every dispatch binds two buffers, so any number of
  operands stays under WebGPU's limit of 8 storage buffers per shader stage.
"""

from __future__ import annotations

import math

import numpy as np

from pyasg.asg import ops
from pyasg.asg.types import TensorType
from pyasg.kernels import lower
from pyasg.kernels.wgpu.backend import WgpuBackend
from pyasg.kernels.wgpu.codegen import broadcast_offset, coords, grid, literal, strides, wgsl_type
from pyasg.kernels.wgpu.kernel import WgpuKernel
from pyasg.kernels.wgpu.shader import Shader, thread_entry


def _linear(terms: list[tuple[str, int]], base: int = 0) -> str:
    """WGSL u32 expression `base + sum(coef * var)` for (var, coef) terms.

    Negative coefficients are subtracted (u32 wraps modulo 2**32, so the sum is exact
    whenever the true value is a valid offset, which it is for in-bounds threads)."""
    plus = [f"{v} * {c}u" if c != 1 else v for v, c in terms if c > 0]
    minus = [f"{v} * {-c}u" if c != -1 else v for v, c in terms if c < 0]
    expr = " + ".join(([f"{base}u"] if base or not plus else []) + plus)
    return expr + "".join(f" - {m}" for m in minus)


def _copy_shader(ty: str, k: int) -> Shader:
    """A shader reading `in0`, bound to the node's k-th input, and writing `out`."""
    sh = Shader()
    sh.read("in0", ty, ("in", k))
    sh.write("out", ty, ("out",))
    return sh


def copy_kernel(out: TensorType, offset: str, prelude: str = "",
                value: str | None = None) -> WgpuKernel:
    """out[i] = in0[offset] (one thread per output element, coordinates `c0..` in scope).

    With `value`, `prelude` must let `inside`, and padding elements get `value`."""
    if out.size == 0:
        return WgpuKernel()
    body = [f"  if (i >= {out.size}u) {{ return; }}"]
    if out.shape:
        body.append(coords(out.shape))
    if prelude:
        body.append(prelude)
    if value is None:
        body.append(f"  out[i] = in0[{offset}];")
    else:
        # branch rather than select(): a padding element must not read in0 at all
        body.append(f"  if (inside) {{ out[i] = in0[{offset}]; }} else {{ out[i] = {value}; }}")
    sh = _copy_shader(wgsl_type(out), 0)
    return WgpuKernel((sh.dispatch(thread_entry("\n".join(body)), grid(out.size)),))


@lower.register(ops.Reshape, WgpuBackend)
def _(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
    return WgpuKernel(alias=True)  # same words in the same (row-major) order


@lower.register(ops.Transpose, WgpuBackend)
def _(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
    (x,) = in_types
    st = strides(x.shape)
    # output axis a walks input axis perm[a]; size-1 axes contribute nothing
    terms = [(f"c{a}", st[p]) for a, p in enumerate(op.perm) if x.shape[p] != 1]
    return copy_kernel(out_type, _linear(terms))


@lower.register(ops.BroadcastTo, WgpuBackend)
def _(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
    return copy_kernel(out_type, broadcast_offset(out_type.shape, in_types[0].shape))


@lower.register(ops.Slice, WgpuBackend)
def _(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
    (x,) = in_types
    st = strides(x.shape)
    # input index along axis a is start + c * step: fold the starts into one constant
    base = sum(start * s for start, s in zip(op.starts, st))
    terms = [(f"c{a}", step * s) for a, (step, s, n) in
             enumerate(zip(op.steps, st, out_type.shape)) if n != 1]
    return copy_kernel(out_type, _linear(terms, base))


def fill_literal(value: float, dtype: str) -> str:
    """Pad's fill value exactly as the numpy kernel's np.full(shape, value, dtype) stores
    it (rounded to f32, truncated or wrapped to an integer, non-zero as True)."""
    with np.errstate(all="ignore"):
        stored = np.full((), value, dtype=dtype)
    if dtype == "bool":
        return "1u" if stored else "0u"
    return literal(stored.item(), dtype)  # a float32 value round-trips through repr


@lower.register(ops.Pad, WgpuBackend)
def _(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
    (x,) = in_types
    if x.size == 0:  # all padding
        return copy_kernel(out_type, "0u", "  let inside = false;",
                           fill_literal(op.value, out_type.dtype))
    st = strides(x.shape)
    conds, lets, terms = [], [], []
    for a, (d, (lo, _, mid), s) in enumerate(zip(x.shape, op.widths, st)):
        # t = c - lo is an input element iff c >= lo, t % (mid + 1) == 0, t / (mid + 1) < d
        t = f"c{a}" if lo == 0 else f"t{a}"
        if lo:
            lets.append(f"  let t{a} = c{a} - {lo}u;")  # wraps when c < lo: checked first
            conds.append(f"c{a} >= {lo}u")
        if mid:
            conds.append(f"{t} % {mid + 1}u == 0u")
            conds.append(f"{t} / {mid + 1}u < {d}u")
            if d != 1:
                terms.append((f"({t} / {mid + 1}u)", s))
        else:
            conds.append(f"{t} < {d}u")
            if d != 1:
                terms.append((t, s))
    prelude = "\n".join(lets + [f"  let inside = {' && '.join(conds) or 'true'};"])
    return copy_kernel(out_type, _linear(terms), prelude,
                       fill_literal(op.value, out_type.dtype))


@lower.register(ops.Concatenate, WgpuBackend)
def _(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
    axis, shape = op.axis, out_type.shape
    inner = math.prod(shape[axis + 1:])  # elements per step along `axis`
    out_row = shape[axis] * inner  # one output "row": everything from `axis` on
    ty = wgsl_type(out_type)
    dispatches, start = [], 0
    for k, t in enumerate(in_types):
        row = t.shape[axis] * inner  # the operand's part of an output row
        if t.size:
            # operand element i is in row i / row at column i % row of its own block,
            # which starts at column start * inner of the output row
            body = (f"  if (i >= {t.size}u) {{ return; }}\n"
                    f"  out[(i / {row}u) * {out_row}u + {start * inner}u + i % {row}u]"
                    f" = in0[i];")
            dispatches.append(_copy_shader(ty, k).dispatch(thread_entry(body), grid(t.size)))
        start += t.shape[axis]
    return WgpuKernel(tuple(dispatches))
