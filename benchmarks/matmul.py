"""Matmul sweep of the wgpu backend: per shape the plan chosen, GPU time, TFLOP/s, against torch.

    python -m benchmarks.gpu --matmul [--quick] [--configs B16-T64-d128-H4-L1,...] [--out FILE]

Shapes: square n x n @ n x n (n = 1024, 2048, 4096; --quick 256, 512), and the GEMMs
of the GPT-like LM (benchmarks/lm.py) for each config, with the layouts the training
step gives them (nn.Linear stores W as [out, in], so the forward reads W transposed):

- `x@W^T` B*T x d x d (attention projections), `x@W1^T` B*T x 4d x d (FFN up),
  `h@W2^T` B*T x d x 4d (FFN down): the right operand a transposed view;
- `dY@W` B*T x d x d: the input gradient, plain;
- `dW` d x d and `dW1` 4d x d with K = B*T: weight gradients dY^T @ X, the left operand
  a transposed view (skinny: split K or not);
- `q@k^T` [B, H] x T x T x head (K = 64), `p@v` [B, H] x T x head x T: the batched
  attention products of the composite attention.

Each shape is one `pyasg.jit_to_backend(graph, "wgpu")` executable (a transposed
operand is a view fused into the GEMM, as in the step); compiling it tunes the plan
(`pyasg.kernels.wgpu.autotune`: "measured" the first time on a machine, "disk" later,
"rule" under `TUNE_FLOPS` or with PYASG_AUTOTUNE=0). Its time is the GPU time of its
dispatches by `pyasg.kernels.wgpu.profile` (timestamp queries where the adapter has
them), the median over rounds; torch.matmul (CUDA, TF32 off) is timed as
`benchmarks.gpu.timed` does, back-to-back calls and one synchronize per round.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

import pyasg
from benchmarks import lm
from benchmarks.gpu import timed
from pyasg.asg.types import TensorType
from pyasg.kernels.wgpu import DeviceArray
from pyasg.kernels.wgpu import matmul as mm
from pyasg.kernels.wgpu.device import adapter_name, get_adapter
from pyasg.kernels.wgpu.profile import time_executable
from pyasg.kernels.wgpu.tiles import Problem, default_plan

SQUARE = (1024, 2048, 4096)
QUICK_SQUARE = (256, 512)

#: layout -> the product of its two operands (pyasg, or torch: the same expression)
LAYOUTS: dict[str, Callable] = {
    "plain": lambda a, b: a @ b,
    "a^T": lambda a, b: pyasg.swapaxes(a, -1, -2) @ b,  # a stored k x m
    "b^T": lambda a, b: a @ pyasg.swapaxes(b, -1, -2),  # b stored n x k
}
TORCH = {"plain": lambda a, b: a @ b, "a^T": lambda a, b: a.transpose(-1, -2) @ b,
         "b^T": lambda a, b: a @ b.transpose(-1, -2)}


@dataclass(frozen=True)
class Shape:
    """One product: `batch` x (m x k @ k x n), its operands stored as `layout` says."""

    name: str
    batch: tuple[int, ...]
    m: int
    n: int
    k: int
    layout: str = "plain"

    @property
    def flops(self) -> int:
        return 2 * self.m * self.n * self.k * int(np.prod(self.batch, dtype=np.int64))

    def operand_shapes(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The stored shapes of the two operands."""
        a = (self.k, self.m) if self.layout == "a^T" else (self.m, self.k)
        b = (self.n, self.k) if self.layout == "b^T" else (self.k, self.n)
        return self.batch + a, self.batch + b


def lm_shapes(config: str) -> list[Shape]:
    """The GEMMs of one LM config (module docstring).

    >>> [s.name for s in lm_shapes("B2-T16-d32-H2-L1")][:2]
    ['B2-T16-d32-H2-L1 x@W^T', 'B2-T16-d32-H2-L1 x@W1^T']
    """
    c = lm.parse_config(config)
    bt, d, h, t = c.tokens, c.d_model, c.heads, c.seq
    head = d // h
    return [Shape(f"{c.name} {name}", batch, m, n, k, layout) for name, batch, m, n, k, layout
            in [("x@W^T", (), bt, d, d, "b^T"), ("x@W1^T", (), bt, 4 * d, d, "b^T"),
                ("h@W2^T", (), bt, d, 4 * d, "b^T"), ("dY@W", (), bt, d, d, "plain"),
                ("dW", (), d, d, bt, "a^T"), ("dW1", (), 4 * d, d, bt, "a^T"),
                ("q@k^T", (c.batch, h), t, t, head, "b^T"),
                ("p@v", (c.batch, h), t, head, t, "plain")]]


def shapes(quick: bool, configs: list[str]) -> list[Shape]:
    """The sweep: squares, then each config's GEMMs (duplicates once)."""
    square = [Shape(f"n={n}", (), n, n, n) for n in (QUICK_SQUARE if quick else SQUARE)]
    found: dict[tuple, Shape] = {}
    for s in square + [s for c in configs for s in lm_shapes(c)]:
        found.setdefault((s.batch, s.m, s.n, s.k, s.layout), s)
    return list(found.values())


def bench_pyasg(s: Shape, repeat: int) -> dict:
    """Compile (tuning the plan), then the GPU time of the product's dispatches."""
    rng = np.random.default_rng(0)
    sa, sb = s.operand_shapes()
    a = rng.standard_normal(sa, dtype=np.float32)
    b = rng.standard_normal(sb, dtype=np.float32)
    asked = mm.TUNER.asked
    start = time.perf_counter()
    exe = pyasg.jit_to_backend(pyasg.make_graph(LAYOUTS[s.layout])(a, b), "wgpu")
    compile_s = time.perf_counter() - start
    if mm.TUNER.asked > asked:
        choice = mm.TUNER.choices[mm.TUNER.last]
        plan, how, tuning_s = choice.plan, choice.how, choice.tuning_s
    else:  # not tuned: the rule's (the layout does not change it)
        ta, tb = TensorType(sa), TensorType(sb)
        vb = TensorType(sb[:-2] + sb[-2:][::-1]) if s.layout == "b^T" else tb
        va = TensorType(sa[:-2] + sa[-2:][::-1]) if s.layout == "a^T" else ta
        plan, how, tuning_s = default_plan(Problem.of(va, vb)).name, "rule", 0.0
    args = [DeviceArray.from_numpy(a), DeviceArray.from_numpy(b)]
    timing = time_executable(exe, args, repeat=repeat, warmup=2)
    seconds = sum(k.seconds for k in timing.kernels)
    return {"plan": plan, "how": how, "tuning_s": tuning_s, "compile_s": compile_s,
            "dispatches": exe.kernel_count, "ms": seconds * 1e3,
            "tflops": s.flops / seconds / 1e12 if seconds else float("nan"),
            "method": timing.method}


def bench_torch(s: Shape, reps_flops: float = 2e11) -> dict | None:
    """torch's time of the same product (CUDA, TF32 off), or None without CUDA."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    torch.backends.cuda.matmul.allow_tf32 = False
    sa, sb = s.operand_shapes()
    a = torch.randn(*sa, device="cuda")
    b = torch.randn(*sb, device="cuda")
    f = TORCH[s.layout]
    reps = max(3, min(1000, int(reps_flops / s.flops)))
    seconds = timed(lambda: f(a, b), torch.cuda.synchronize, reps)
    return {"ms": seconds * 1e3, "tflops": s.flops / seconds / 1e12,
            "device": torch.cuda.get_device_name(0)}


def run(quick: bool = False, configs: list[str] | None = None,
        out: str | None = None) -> dict:
    """The sweep (module docstring): prints a table, returns (and writes) the figures."""
    configs = list(configs or (lm.QUICK_CONFIGS if quick else lm.CONFIGS))
    rows = []
    print(f"matmul on {adapter_name(get_adapter())} ({time.strftime('%Y-%m-%d')}); "
          f"GPU time of the dispatches; torch.matmul fp32, TF32 off")
    print(f"{'shape':<34} {'batch':>8} {'m':>6} {'n':>6} {'k':>6} {'layout':>6}  "
          f"{'plan':<34} {'how':>8} {'ms':>8} {'TFLOP/s':>8} {'torch ms':>9} "
          f"{'TFLOP/s':>8} {'ratio':>6}")
    for s in shapes(quick, configs):
        try:
            ours = bench_pyasg(s, repeat=3 if quick else 10)
        except pyasg.PyasgError as e:  # e.g. a buffer over the device's binding limit
            print(f"{s.name:<34} skipped: {e}")
            rows.append({"shape": asdict(s), "skipped": str(e)})
            continue
        theirs = bench_torch(s)
        ratio = ours["tflops"] / theirs["tflops"] if theirs else None
        rows.append({"shape": asdict(s), "flops": s.flops, "pyasg": ours, "torch": theirs,
                     "ratio": ratio})
        torch_cols = (f"{theirs['ms']:9.3f} {theirs['tflops']:8.2f} {ratio:6.2f}" if theirs
                      else f"{'-':>9} {'-':>8} {'-':>6}")
        print(f"{s.name:<34} {str(list(s.batch)):>8} {s.m:>6} {s.n:>6} {s.k:>6} "
              f"{s.layout:>6}  {ours['plan']:<34} {ours['how']:>8} {ours['ms']:8.3f} "
              f"{ours['tflops']:8.2f} {torch_cols}")
    summary = summarise(rows)
    for line in summary["lines"]:
        print(line)
    results = {"date": time.strftime("%Y-%m-%d"), "adapter": adapter_name(get_adapter()),
               "tuning_s": mm.TUNER.spent, "rows": rows, "summary": summary}
    if out:
        with open(out, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)
    return results


def summarise(rows: list[dict]) -> dict:
    """The issue's targets: the ratio to torch at n = 1024 and 4096, and the mean ratio
    over the LM's GEMMs (`lines` says them in words)."""
    ratios = {r["shape"]["name"]: r["ratio"] for r in rows if r.get("ratio") is not None}
    lm_ratios = [v for k, v in ratios.items() if not k.startswith("n=")]
    out = {"n=1024": ratios.get("n=1024"), "n=4096": ratios.get("n=4096"),
           "lm_mean": sum(lm_ratios) / len(lm_ratios) if lm_ratios else None}
    out["lines"] = [
        f"of torch: n=1024 {_pct(out['n=1024'])} (target 60%), n=4096 {_pct(out['n=4096'])} "
        f"(target 75%), the LM's GEMMs on average {_pct(out['lm_mean'])} (target 70%)",
        f"tuning this run: {mm.TUNER.spent:.1f} s"]
    return out


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"
