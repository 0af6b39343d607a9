"""WGSL kernels of the convolutions and of the max-pool indices (NCHW, f32).

Every size (batch, channels, spatial sizes, kernel, stride, padding, dilation,
groups) is baked into the shader as a constant. The ops take floats only and the
executable rejects float64 before lowering (jit converts it), so operands are f32.
Where a thread owns an output position (Conv2d, MaxPool2dIndices) it computes the
range of kernel taps that land inside the input (`taps` below), so taps in the
padding cost nothing and no inner loop tests bounds.

- `Conv2d` (direct convolution): one thread per output pixel and block of OB
  output channels of one group (OB = 4, 2 or 1, whatever divides the group's
  output channels). It loops over the group's C/g input channels and the valid
  kh x kw taps; each input value it loads is used for OB products, and the
  threads of a workgroup mostly share a channel block, so the weight loads are
  mostly broadcasts.
- `Conv2dBackwardInput` (also the transposed convolution): gather form, so no
  atomics: one thread per INPUT pixel and block of CB input channels of one group
  (CB = 4, 2 or 1, as OB). A kernel tap (i, j) links input row h to output row
  ho = (h + p - i*d) / s, which contributes when the division is exact and
  0 <= ho < Ho (likewise for columns); the thread sums, over those taps and the
  O/g output channels of its group, gradient x weight, each gradient value
  loaded once for its CB channels.
- `Conv2dBackwardWeight`: one workgroup of 256 threads per (output channel,
  input channel of its group, block of at most 16 kernel taps). The threads
  stride over the N*Ho*Wo output positions (consecutive threads take
  consecutive positions, so loads coalesce), each loading the output gradient
  once and keeping one partial sum per tap of the block in registers; then one
  tree reduction in workgroup memory per tap. The reduced length can be large
  (32*28*28 = 25088 for a first layer), which is why a workgroup, not a thread,
  owns a weight.
- `MaxPool2dIndices`: one thread per output window, scanning the window in
  row-major (kh, kw) order, numpy's order, and keeping the FIRST maximum
  (strictly greater replaces; the first NaN wins and stops the scan, as
  numpy's argmax). The scan covers the window's real pixels only, from -inf at
  its first real tap, so the padding never wins, and a window whose real pixels
  are all -inf gives its first real tap's index, as the reference and PyTorch.

WebGPU limits respected: 3 storage buffers per dispatch, workgroups on a 2-d grid
(<= 65535 per dimension), 256 threads and 1 KiB of workgroup memory per group.
"""

from __future__ import annotations

from pyasg.asg import ops
from pyasg.kernels import lower
from pyasg.kernels.wgpu.backend import WgpuBackend
from pyasg.kernels.wgpu.codegen import WORKGROUP, grid
from pyasg.kernels.wgpu.kernel import WgpuKernel
from pyasg.kernels.wgpu.shader import Shader, group_entry, thread_entry

#: Taps per workgroup of the weight gradient: one f32 partial sum each per thread.
WEIGHT_TAP_BLOCK = 16

def _shader(inputs: tuple[str, ...], out_elem: str) -> Shader:
    """A shader reading f32 arrays named `inputs` (bound to ("in", 0), ("in", 1), ...)
    and writing `out`, an array of `out_elem`."""
    shader = Shader()
    for k, name in enumerate(inputs):
        shader.read(name, "f32", ("in", k))
    shader.write("out", out_elem, ("out",))
    return shader


def _channel_block(out_per_group: int) -> int:
    """Output channels per thread: the largest of 4, 2, 1 that divides O/groups."""
    return next(b for b in (4, 2, 1) if out_per_group % b == 0)


@lower.register(ops.Conv2d, WgpuBackend)
def conv2d_kernel(op, backend, in_types, out_type):  # noqa: ANN001, ANN201
    """Direct convolution: a thread per (n, block of OB output channels, ho, wo)."""
    n, c, h, w = in_types[0].shape
    o, cg, kh, kw = in_types[1].shape
    _, _, ho, wo = out_type.shape
    (sh, sw), (ph, pw), (dh, dw) = op.stride, op.padding, op.dilation
    og = o // op.groups
    ob = _channel_block(og)
    threads = n * (o // ob) * ho * wo
    accs = "\n".join(f"  var acc{b} = 0.0;" for b in range(ob))
    fmas = "\n".join(f"          acc{b} = acc{b} + v * wt[wr + {b * cg * kh * kw}u];"
                     for b in range(ob))
    stores = "\n".join(f"  out[ob + {b * ho * wo}u] = acc{b};" for b in range(ob))
    body = f"""  if (i >= {threads}u) {{ return; }}
  let ow = i32(i % {wo}u);
  let oh = i32((i / {wo}u) % {ho}u);
  let ncb = i / {ho * wo}u;              // n * (O / OB) + channel block
  let o0 = (ncb % {o // ob}u) * {ob}u;   // first output channel of the block
  let nn = ncb / {o // ob}u;
  let grp = o0 / {og}u;
  let xg = (nn * {c}u + grp * {cg}u) * {h * w}u;
  let h0 = oh * {sh} - {ph};
  let w0 = ow * {sw} - {pw};
  let ri = taps(h0, {dh}, {kh}, {h});
  let rj = taps(w0, {dw}, {kw}, {w});
{accs}
  for (var cc = 0u; cc < {cg}u; cc = cc + 1u) {{
    let xc = xg + cc * {h * w}u;
    let wc = (o0 * {cg}u + cc) * {kh * kw}u;
    for (var ki = ri.x; ki < ri.y; ki = ki + 1) {{
      let xr = i32(xc) + (h0 + ki * {dh}) * {w} + w0;   // < 0 when w0 < 0; xr + kj*dw is not
      for (var kj = rj.x; kj < rj.y; kj = kj + 1) {{
        let v = x[u32(xr + kj * {dw})];
        let wr = wc + u32(ki * {kw} + kj);
{fmas}
      }}
    }}
  }}
  let ob = ((nn * {o}u + o0) * {ho}u + u32(oh)) * {wo}u + u32(ow);
{stores}"""
    shader = _shader(("x", "wt"), "f32")
    shader.helper("taps")
    return WgpuKernel((shader.dispatch(thread_entry(body), grid(threads)),))


@lower.register(ops.Conv2dBackwardInput, WgpuBackend)
def conv2d_backward_input_kernel(op, backend, in_types, out_type):  # noqa: ANN001, ANN201
    """Gather form of the input gradient: a thread per (n, block of CB channels, h, w)."""
    n, o, ho, wo = in_types[0].shape
    _, cg, kh, kw = in_types[1].shape
    _, c, h, w = out_type.shape
    (sh, sw), (ph, pw), (dh, dw) = op.stride, op.padding, op.dilation
    og = o // op.groups

    def exact(var: str, s: int, size: int) -> str:
        # the tap reaches an output position: t >= 0, t divisible by s, t / s < size
        div = f" || {var} % {s} != 0" if s > 1 else ""
        return f"if ({var} < 0{div} || {var} / {s} >= {size}) {{ continue; }}"

    cb = _channel_block(cg)
    threads = n * (c // cb) * h * w
    accs = "\n".join(f"  var acc{b} = 0.0;" for b in range(cb))
    fmas = "\n".join(f"        acc{b} = acc{b} + v * wt[wq + {b * kh * kw}u + k];"
                     for b in range(cb))
    stores = "\n".join(f"  out[ib + {b * h * w}u] = acc{b};" for b in range(cb))
    body = f"""  if (i >= {threads}u) {{ return; }}
  let iw = i32(i % {w}u);
  let ih = i32((i / {w}u) % {h}u);
  let ncb = i / {h * w}u;               // n * (C / CB) + channel block
  let c0 = (ncb % {c // cb}u) * {cb}u;  // first input channel of the block
  let nn = ncb / {c // cb}u;
  let grp = c0 / {cg}u;
  let gg = (nn * {o}u + grp * {og}u) * {ho * wo}u;   // g[nn, first channel of the group]
{accs}
  for (var oo = 0u; oo < {og}u; oo = oo + 1u) {{
    let gq = gg + oo * {ho * wo}u;
    let wq = ((grp * {og}u + oo) * {cg}u + c0 % {cg}u) * {kh * kw}u;   // w[o, c0 % C/g]
    for (var ki = 0; ki < {kh}; ki = ki + 1) {{
      let th = ih + {ph} - ki * {dh};
      {exact("th", sh, ho)}
      for (var kj = 0; kj < {kw}; kj = kj + 1) {{
        let tw = iw + {pw} - kj * {dw};
        {exact("tw", sw, wo)}
        let v = g[gq + u32((th / {sh}) * {wo} + tw / {sw})];
        let k = u32(ki * {kw} + kj);
{fmas}
      }}
    }}
  }}
  let ib = ((nn * {c}u + c0) * {h}u + u32(ih)) * {w}u + u32(iw);
{stores}"""
    shader = _shader(("g", "wt"), "f32")
    return WgpuKernel((shader.dispatch(thread_entry(body), grid(threads)),))


@lower.register(ops.Conv2dBackwardWeight, WgpuBackend)
def conv2d_backward_weight_kernel(op, backend, in_types, out_type):  # noqa: ANN001, ANN201
    """A workgroup per (o, c, block of taps): strided partial sums, then tree reductions."""
    n, c, h, w = in_types[0].shape
    _, o, ho, wo = in_types[1].shape
    _, cg, kh, kw = out_type.shape
    (sh, sw), (ph, pw), (dh, dw) = op.stride, op.padding, op.dilation
    og = o // op.groups
    kk = kh * kw
    blocks = -(-kk // WEIGHT_TAP_BLOCK)
    tb = -(-kk // blocks)                 # taps per block, as even as possible
    groups = o * cg * blocks
    length = n * ho * wo
    tail = f"k < {kk}u && " if blocks * tb != kk else ""
    body = f"""  let wgi = wid.x + wid.y * nwg.x;  // uniform in the workgroup: may return early
  if (wgi >= {groups}u) {{ return; }}
  let blk = wgi % {blocks}u;
  let oc = wgi / {blocks}u;            // o * C/g + cc: the weight's first two indices
  let cc = oc % {cg}u;
  let oo = oc / {cg}u;
  let xg = ((oo / {og}u) * {cg}u + cc) * {h * w}u;   // x[0, group's channel cc]
  var acc: array<f32, {tb}>;
  for (var t = lid; t < {length}u; t = t + {WORKGROUP}u) {{
    let pc = t % {wo}u;                // output position (nn, pr, pc)
    let pr = (t / {wo}u) % {ho}u;
    let nn = t / {ho * wo}u;
    let gv = g[((nn * {o}u + oo) * {ho}u + pr) * {wo}u + pc];
    let xn = nn * {c * h * w}u + xg;
    let h0 = i32(pr) * {sh} - {ph};
    let w0 = i32(pc) * {sw} - {pw};
    for (var b = 0u; b < {tb}u; b = b + 1u) {{
      let k = blk * {tb}u + b;
      let hi = h0 + i32(k / {kw}u) * {dh};
      let wi = w0 + i32(k % {kw}u) * {dw};
      if ({tail}hi >= 0 && hi < {h} && wi >= 0 && wi < {w}) {{
        acc[b] = acc[b] + gv * x[xn + u32(hi * {w} + wi)];
      }}
    }}
  }}
  for (var b = 0u; b < {tb}u; b = b + 1u) {{
    red[lid] = acc[b];
    workgroupBarrier();
    for (var s = {WORKGROUP // 2}u; s > 0u; s = s >> 1u) {{
      if (lid < s) {{ red[lid] = red[lid] + red[lid + s]; }}
      workgroupBarrier();
    }}
    let k = blk * {tb}u + b;
    if (lid == 0u && k < {kk}u) {{ out[oc * {kk}u + k] = red[0]; }}
    workgroupBarrier();                // red[0] is read before the next tap overwrites it
  }}"""
    shader = _shader(("x", "g"), "f32")
    shader.workgroup("red", f"array<f32, {WORKGROUP}>")
    return WgpuKernel((shader.dispatch(group_entry(body, WORKGROUP), grid(groups, 1)),))


@lower.register(ops.MaxPool2dIndices, WgpuBackend)
def max_pool2d_indices_kernel(op, backend, in_types, out_type):  # noqa: ANN001, ANN201
    """A thread per window: the flat index of its first maximum, numpy's argmax order."""
    n, c, h, w = in_types[0].shape
    ho, wo = out_type.shape[2:]
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = (op.kernel_size, op.stride, op.padding,
                                              op.dilation)
    body = f"""  if (i >= {out_type.size}u) {{ return; }}
  let ow = i32(i % {wo}u);
  let oh = i32((i / {wo}u) % {ho}u);
  let base = i32(i / {ho * wo}u) * {h * w};   // x[n, c] (x.size < 2**31: checked by infer)
  let h0 = oh * {sh} - {ph};
  let w0 = ow * {sw} - {pw};
  let ri = taps(h0, {dh}, {kh}, {h});
  let rj = taps(w0, {dw}, {kw}, {w});
  var best = bitcast<f32>(0xff800000u);       // -inf
  var idx = base + (h0 + ri.x * {dh}) * {w} + w0 + rj.x * {dw};  // the first real tap
  var nan = false;
  for (var ki = ri.x; ki < ri.y; ki = ki + 1) {{
    for (var kj = rj.x; kj < rj.y; kj = kj + 1) {{
      let at = base + (h0 + ki * {dh}) * {w} + w0 + kj * {dw};
      let v = x[at];
      if (!nan && (v > best || is_nan(v))) {{
        best = v;
        idx = at;
        nan = is_nan(v);
      }}
    }}
  }}
  out[i] = idx;"""
    shader = _shader(("x",), "i32")
    shader.helper("taps")
    shader.helper("is_nan")
    return WgpuKernel((shader.dispatch(thread_entry(body), grid(out_type.size)),))
