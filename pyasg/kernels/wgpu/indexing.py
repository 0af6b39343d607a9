"""WGSL kernels of gather (np.take) and scatter-add (np.add.at into zeros).

Both see their big operand as [outer, n, inner]: `outer` is the product of the axes
before `axis`, `n` the indexed axis, `inner` the product of the axes after it, and
the K = indices.size index positions replace `n` (gather's output and scatter-add's
updates are [outer, K, inner]). A thread with flat index i there has
o = i / (K * inner), j = i / inner % K, r = i % inner, and its element of the
[outer, n, inner] side is o * n * inner + idx[j] * inner + r.

Indices: int32 or uint32 (int64 is converted before it reaches the GPU). A negative
index counts from the end, as in numpy. An index still outside [0, n) raises, as on
numpy: a shader cannot raise, so the thread sets its node's status word (`check`, a
("status",) binding) and reads a clamped index instead (it must never touch memory
outside its buffers), and the executable raises `BackendError` when a result of that
call is read. (Concrete indices are also range-checked at trace time.)

- gather: one thread per output element reads x at the (wrapped, clamped) index.
- scatter-add: the output is cleared first (`zero_output`), then one thread per
  update adds it in atomically, so repeated indices accumulate: int32 and uint32
  with atomicAdd, bool (numpy adds booleans as a logical or) with atomicOr, float32
  with a compare-exchange loop on an atomic<u32> holding the float's bits. Float sums
  arrive in any order, so they match numpy up to rounding, not bit for bit.
"""

from __future__ import annotations

import math

from pyasg.asg import ops
from pyasg.asg.types import TensorType
from pyasg.kernels import lower
from pyasg.kernels.wgpu.backend import WgpuBackend
from pyasg.kernels.wgpu.codegen import grid, wgsl_type
from pyasg.kernels.wgpu.kernel import WgpuKernel
from pyasg.kernels.wgpu.shader import Shader, thread_entry


def split_index(shape: tuple[int, ...], axis: int, k: int) -> tuple[int, int]:
    """(outer, inner) of `shape` around `axis`, where the axis has been replaced by the
    k index positions (k = 0 for an empty index, so read `shape`, not a product)."""
    return math.prod(shape[:axis]), math.prod(shape[axis + k:])


#: What a set status word of an indexing kernel means.
OUT_OF_RANGE = "an index out of range"


def index_code(indices: TensorType, n: int, k: int, inner: int) -> str:
    """WGSL lets `o`, `r` and `idx`: thread i's outer and inner coordinates and its
    index into an axis of length n >= 1, wrapped if negative; an index outside
    [-n, n) sets the status word and is clamped into [0, n)."""
    lines = [f"  let o = i / {k * inner}u;",
             f"  let j = (i / {inner}u) % {k}u;",
             f"  let r = i % {inner}u;"]
    if wgsl_type(indices) == "i32":
        lines += ["  let v = indices[j];",
                  f"  if (v < -{n} || v >= {n}) {{ atomicMax(&status[0], 1u); }}",
                  f"  let idx = u32(clamp(select(v, v + {n}, v < 0), 0, {n - 1}));"]
    else:
        lines += [f"  if (indices[j] >= {n}u) {{ atomicMax(&status[0], 1u); }}",
                  f"  let idx = min(indices[j], {n - 1}u);"]
    return "\n".join(lines)


def _shader(data: tuple[str, str], indices: TensorType, out_elem: str) -> Shader:
    """A shader reading `data` (name, element type) at ("in", 0) and `indices` at
    ("in", 1), writing `out`, an array of `out_elem`, and the node's status word."""
    sh = Shader()
    sh.read(*data, ("in", 0))
    sh.read("indices", wgsl_type(indices), ("in", 1))
    sh.write("out", out_elem, ("out",))
    sh.write("status", "atomic<u32>", ("status",))
    return sh


@lower.register(ops.Gather, WgpuBackend)
def _(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
    x, indices = in_types
    if out_type.size == 0:
        return WgpuKernel()  # also covers an empty x, which has no element to clamp to
    n, k = x.shape[op.axis], indices.size
    _, inner = split_index(out_type.shape, op.axis, indices.ndim)
    ty = wgsl_type(x)
    body = (f"  if (i >= {out_type.size}u) {{ return; }}\n"
            f"{index_code(indices, n, k, inner)}\n"
            f"  out[i] = x[(o * {n}u + idx) * {inner}u + r];")
    sh = _shader(("x", ty), indices, ty)
    return WgpuKernel((sh.dispatch(thread_entry(body), grid(out_type.size)),),
                      check=OUT_OF_RANGE)


# out[at] += u, atomically, per stored type; `out` is array<atomic<...>>.
ATOMIC_ADD = {
    "int32": ("atomic<i32>", "  atomicAdd(&out[at], u);"),
    "uint32": ("atomic<u32>", "  atomicAdd(&out[at], u);"),
    "bool": ("atomic<u32>", "  if (u != 0u) { atomicOr(&out[at], 1u); }"),
    # No float atomics in WGSL: retry a compare-exchange of the bits until no other
    # thread changed the word between our read and our write (lock-free, so no
    # thread can block another forever).
    "float32": ("atomic<u32>", """  var old = atomicLoad(&out[at]);
  loop {
    let got = atomicCompareExchangeWeak(&out[at], old, bitcast<u32>(bitcast<f32>(old) + u));
    if (got.exchanged) { break; }
    old = got.old_value;
  }"""),
}


@lower.register(ops.ScatterAdd, WgpuBackend)
def _(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
    updates, indices = in_types
    if updates.size == 0 or out_type.size == 0:
        return WgpuKernel(zero_output=True)  # nothing to add (or nowhere to add it)
    n, k = op.size, indices.size
    _, inner = split_index(updates.shape, op.axis, indices.ndim)
    stored, add = ATOMIC_ADD[out_type.dtype]
    body = (f"  if (i >= {updates.size}u) {{ return; }}\n"
            f"{index_code(indices, n, k, inner)}\n"
            f"  let at = (o * {n}u + idx) * {inner}u + r;\n"
            f"  let u = updates[i];\n{add}")
    sh = _shader(("updates", wgsl_type(updates)), indices, stored)
    return WgpuKernel((sh.dispatch(thread_entry(body), grid(updates.size)),), zero_output=True,
                      check=OUT_OF_RANGE)
