"""WGSL kernel of random_bits: Threefry-2x32-20 in u32 arithmetic, bit-exact with numpy.

Element i of the flat output is word i % 2 of threefry(key, counter=(i // 2, 0)),
the layout of `pyasg.kernels.reference.random`. One thread per output element computes
its whole block (so the two threads of a block both do the 20 rounds: no shared
memory and no synchronisation, and an odd size needs no special case). The rounds
are unrolled from the numpy kernel's own rotation table, so the two cannot drift
apart; u32 addition wraps modulo 2**32 in WGSL exactly as numpy's uint32 does.
"""

from __future__ import annotations

from pyasg.asg import ops
from pyasg.kernels import lower
from pyasg.kernels.reference.random import PARITY, ROTATIONS
from pyasg.kernels.wgpu.backend import WgpuBackend
from pyasg.kernels.wgpu.codegen import grid
from pyasg.kernels.wgpu.kernel import WgpuKernel
from pyasg.kernels.wgpu.shader import Shader, thread_entry


def threefry_body(size: int) -> str:
    """The shader body: out[i] = word i % 2 of Threefry-2x32-20(key, (i / 2, 0))."""
    lines = [f"  if (i >= {size}u) {{ return; }}",
             "  let ks0 = key[0];",
             "  let ks1 = key[1];",
             f"  let ks2 = ks0 ^ ks1 ^ {PARITY:#x}u;",
             "  var x0 = (i >> 1u) + ks0;",
             "  var x1 = ks1;  // the counter's second word is 0"]
    for block in range(5):
        for r in ROTATIONS[block % 2]:
            lines += ["  x0 = x0 + x1;",
                      f"  x1 = ((x1 << {r}u) | (x1 >> {32 - r}u)) ^ x0;"]
        lines += [f"  x0 = x0 + ks{(block + 1) % 3};",
                  f"  x1 = x1 + ks{(block + 2) % 3} + {block + 1}u;"]
    lines.append("  out[i] = select(x0, x1, (i & 1u) == 1u);")
    return "\n".join(lines)


@lower.register(ops.RandomBits, WgpuBackend)
def _(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
    size = out_type.size
    if size == 0:
        return WgpuKernel()
    sh = Shader()
    sh.read("key", "u32", ("in", 0))
    sh.write("out", "u32", ("out",))
    return WgpuKernel((sh.dispatch(thread_entry(threefry_body(size)), grid(size)),))
