"""GPU benchmark of the wgpu backend against PyTorch CUDA on the same GPU.

    python -m benchmarks.gpu [--out results.json] [--quick]
    python -m benchmarks.gpu --matmul [--configs B16-T64-d128-H4-L1,...] [--quick] [--out FILE]
    python -m benchmarks.gpu --lm [--configs B16-T64-d128-H4-L1,...]
                             [--frameworks pyasg,torch,compile,jax] [--quick] [--out FILE]

Prints a table and writes the raw figures as JSON:
- matmul TFLOP/s at n = 1024, 2048, 4096 (float32) vs torch.matmul with TF32 OFF, with
  the plan the tuner chose (GPU time of the dispatches, and a call's time with the
  executable's input and output copies);
- elementwise bandwidth (a + b, GB/s counting bytes read and written) vs a
  device-to-device copy (wgpu's copy_buffer_to_buffer and torch's clone);
- per-dispatch overhead: a chain of 200 tiny adds in one submission;
- a TransformerBlock training step (batch 16, seq 64, d_model 128, 4 heads, MSE,
  plain SGD) in ms vs the same model in PyTorch CUDA eager.

`--matmul` runs only the matmul sweep instead: squares and the LM configs' GEMMs, per
shape the plan chosen, ms and TFLOP/s against torch.matmul (benchmarks/matmul.py).
`--lm` runs only the GPT-like LM training-step benchmark instead (pyasg wgpu, PyTorch
eager, torch.compile, JAX; see benchmarks/lm_bench.py).

GPU time is measured from the host: `reps` calls submitted back to back, then one
wait for the queue (wgpu) or `torch.cuda.synchronize()`, median of several rounds.
See benchmarks/README.md for running it on a machine whose Vulkan loader is missing.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np

import pyasg
from pyasg.kernels.wgpu import DeviceArray
from pyasg.kernels.wgpu.device import adapter_name, get_adapter, get_device

_FENCE: list = []


def _wait() -> None:
    """Block until the GPU has finished all submitted work (a 4-byte read-back waits for
    it; wgpu-py 0.32's on_submitted_work_done_sync fails on wgpu-native)."""
    if not _FENCE:
        from pyasg.kernels.wgpu.array import create_buffer

        _FENCE.append(create_buffer(4))
    get_device().queue.read_buffer(_FENCE[0], 0, 4)


def timed_rounds(run: Callable[[], object], wait: Callable[[], None], reps: int,
                 rounds: int = 5, warmup: int = 1) -> list[float]:
    """Seconds per call in each of `rounds` rounds of `reps` back-to-back calls, each
    round waited for once (after `warmup` calls, waited for)."""
    for _ in range(warmup):
        run()
    wait()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(reps):
            run()
        wait()
        times.append((time.perf_counter() - start) / reps)
    return times


def timed(run: Callable[[], object], wait: Callable[[], None], reps: int,
          rounds: int = 5) -> float:
    """Median seconds per call over `rounds` rounds of `reps` back-to-back calls."""
    return statistics.median(timed_rounds(run, wait, reps, rounds))


def bench_matmul(sizes: list[int]) -> list[dict]:
    """n x n @ n x n: the plan chosen and the dispatches' GPU time (benchmarks/matmul.py),
    and a call's time with the executable's copies in and out (as measured before)."""
    from benchmarks import matmul

    rows = []
    for n in sizes:
        kernel = matmul.bench_pyasg(matmul.Shape(f"n={n}", (), n, n, n), repeat=5)
        rng = np.random.default_rng(0)
        a = DeviceArray.from_numpy(rng.standard_normal((n, n), dtype=np.float32))
        b = DeviceArray.from_numpy(rng.standard_normal((n, n), dtype=np.float32))
        graph = pyasg.make_graph(lambda a, b: a @ b)(np.zeros((n, n), np.float32),
                                                     np.zeros((n, n), np.float32))
        exe = pyasg.jit_to_backend(graph, "wgpu")  # the plan is tuned (cached) by now
        reps = max(3, int(2e11 / (2 * n**3)))
        seconds = timed(lambda exe=exe, a=a, b=b: exe(a, b), _wait, reps)
        rows.append({"n": n, "plan": kernel["plan"], "how": kernel["how"],
                     "wgpu_tflops": kernel["tflops"], "wgpu_ms": kernel["ms"],
                     "wgpu_call_ms": seconds * 1e3,
                     "wgpu_call_tflops": 2 * n**3 / seconds / 1e12})
    return rows


def bench_bandwidth(n: int, chain: int = 10) -> dict:
    """a + b, `chain` times in one graph, minus a graph with the same copies in and out."""
    x = DeviceArray.from_numpy(np.ones(n, np.float32))
    y = DeviceArray.from_numpy(np.ones(n, np.float32))

    def adds(a, b):  # noqa: ANN001, ANN202
        for _ in range(chain):
            a = a + b
        return a

    zeros = np.zeros(n, np.float32)
    # unfused: this measures one kernel per add (fused, the chain is one kernel)
    exe = pyasg.jit_to_backend(pyasg.make_graph(adds)(zeros, zeros), "wgpu", fuse=False)
    ident = pyasg.jit_to_backend(_copy_graph(n), "wgpu")
    t_adds = timed(lambda: exe(x, y), _wait, 10)
    t_copies = timed(lambda: ident(x, y), _wait, 10)
    device = get_device()

    def copy() -> None:
        enc = device.create_command_encoder()
        enc.copy_buffer_to_buffer(x.buffer, 0, y.buffer, 0, n * 4)
        device.queue.submit([enc.finish()])

    t_copy = timed(copy, _wait, 20)
    per_add = max(t_adds - t_copies, 1e-9) / chain
    return {"elements": n, "wgpu_add_gbs": 3 * n * 4 / per_add / 1e9,
            "wgpu_copy_gbs": 2 * n * 4 / t_copy / 1e9}


def _copy_graph(n: int):  # noqa: ANN202
    """A graph whose executable does only the copies in and out (its output is `a`)."""
    zeros = np.zeros(n, np.float32)
    return pyasg.make_graph(lambda a, b: a)(zeros, zeros)


def bench_dispatch_overhead(chain: int = 200) -> dict:
    def f(x):  # noqa: ANN001, ANN202
        for _ in range(chain):
            x = x + 1.0
        return x

    x = np.zeros(256, np.float32)
    graph = pyasg.make_graph(f)(x)
    exe = pyasg.jit_to_backend(graph, "wgpu", fuse=False)  # one dispatch per add
    xd = DeviceArray.from_numpy(x)
    seconds = timed(lambda: exe(xd), _wait, 20)
    return {"dispatches": exe.kernel_count, "us_per_dispatch": seconds / exe.kernel_count * 1e6}


def transformer_step(backend: str, fuse: bool = True):  # noqa: ANN201
    from pyasg import nn

    block = nn.TransformerBlock(128, 4, causal=True)
    params = block.init(pyasg.random.key(0))

    def loss_fn(params, x, y):  # noqa: ANN001, ANN202
        return pyasg.mean((block(params, x) - y) ** 2)

    @pyasg.jit(backend=backend, fuse=fuse)
    def step(params, x, y):  # noqa: ANN001, ANN202
        loss, grads = pyasg.value_and_grad(loss_fn)(params, x, y)
        return pyasg.tree_map(lambda p, g: p - 0.01 * g, params, grads), loss

    return step, params


def bench_transformer() -> dict:
    """The training step with fusion (as `pyasg.jit` compiles it) and without."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 64, 128), dtype=np.float32)
    y = rng.standard_normal((16, 64, 128), dtype=np.float32)
    xd, yd = DeviceArray.from_numpy(x), DeviceArray.from_numpy(y)
    result = {}
    for fuse, key in ((True, ""), (False, "unfused_")):
        step, params = transformer_step("wgpu", fuse)
        state = {"params": params}

        def run() -> None:
            state["params"], _ = step(state["params"], xd, yd)  # noqa: B023 - run now

        seconds = timed(run, _wait, 20)
        exe = step.lower(state["params"], xd, yd)
        result.update({f"{key}wgpu_ms": seconds * 1e3, f"{key}dispatches": exe.kernel_count})
    return result


def bench_torch(sizes: list[int], n_bw: int) -> dict:
    try:
        import torch
    except ImportError:
        return {"skipped": "torch is not installed"}
    if not torch.cuda.is_available():
        return {"skipped": "torch has no CUDA device"}
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dev = "cuda"
    sync = torch.cuda.synchronize
    out: dict = {"device": torch.cuda.get_device_name(0), "matmul": []}
    for n in sizes:
        a = torch.randn(n, n, device=dev)
        b = torch.randn(n, n, device=dev)
        reps = max(3, int(2e11 / (2 * n**3)))
        s = timed(lambda a=a, b=b: a @ b, sync, reps)
        out["matmul"].append({"n": n, "torch_tflops": 2 * n**3 / s / 1e12})
    x = torch.ones(n_bw, device=dev)
    y = torch.ones(n_bw, device=dev)
    out["torch_add_gbs"] = 3 * n_bw * 4 / timed(lambda: x + y, sync, 50) / 1e9
    out["torch_copy_gbs"] = 2 * n_bw * 4 / timed(lambda: x.clone(), sync, 50) / 1e9

    block = torch.nn.TransformerEncoderLayer(128, 4, 512, dropout=0.0, batch_first=True,
                                             norm_first=True, activation="gelu").to(dev)
    opt = torch.optim.SGD(block.parameters(), lr=0.01)
    xt = torch.randn(16, 64, 128, device=dev)
    yt = torch.randn(16, 64, 128, device=dev)
    mask = torch.nn.Transformer.generate_square_subsequent_mask(64, device=dev)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss = ((block(xt, src_mask=mask, is_causal=True) - yt) ** 2).mean()
        loss.backward()
        opt.step()

    out["transformer_ms"] = timed(step, sync, 20) * 1e3
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="write the results as JSON here")
    parser.add_argument("--quick", action="store_true", help="small sizes (for lavapipe)")
    parser.add_argument("--lm", action="store_true",
                        help="only the GPT-like LM training-step benchmark (lm_bench.py)")
    parser.add_argument("--matmul", action="store_true",
                        help="only the matmul sweep: squares and the LM's GEMMs (matmul.py)")
    parser.add_argument("--configs", help="--lm, --matmul: comma list of configs such as "
                        "B16-T64-d128-H4-L1 (default: the four of lm.CONFIGS; with --quick "
                        "two tiny ones)")
    parser.add_argument("--frameworks", help="--lm: comma list of pyasg,torch,compile,jax "
                        "(default: all)")
    args = parser.parse_args(argv)
    if args.lm:
        from benchmarks import lm_bench

        try:
            if args.configs is not None:
                lm_bench.parse_list(args.configs, (), None, "config")
            lm_bench.parse_list(args.frameworks, lm_bench.FRAMEWORKS, lm_bench.FRAMEWORKS,
                                "framework")
        except ValueError as e:
            parser.error(str(e))
        return lm_bench.main(args.configs, args.frameworks, args.quick, args.out)
    if args.matmul:
        from benchmarks import lm_bench, matmul

        if args.lm or args.frameworks:
            parser.error("--matmul goes with --configs, --quick and --out only")
        try:
            configs = (lm_bench.parse_list(args.configs, (), None, "config")
                       if args.configs is not None else None)
        except ValueError as e:
            parser.error(str(e))
        return matmul.run(args.quick, configs, args.out)
    if args.configs or args.frameworks:
        parser.error("--configs and --frameworks go with --lm")
    sizes = [128, 256] if args.quick else [1024, 2048, 4096]
    n_bw = 1 << 16 if args.quick else 1 << 26
    adapter = get_adapter()
    results = {
        "date": time.strftime("%Y-%m-%d"),
        "adapter": adapter_name(adapter),
        "host": platform.node(),
        "matmul": bench_matmul(sizes),
        "bandwidth": bench_bandwidth(n_bw),
        "dispatch": bench_dispatch_overhead(),
        "transformer": bench_transformer(),
        "torch": bench_torch(sizes, n_bw),
    }
    print(f"pyasg wgpu on {results['adapter']} ({results['date']})")
    torch_mm = {r["n"]: r["torch_tflops"] for r in results["torch"].get("matmul", [])}
    print(f"{'matmul n':>10} {'wgpu TFLOP/s':>13} {'with copies':>12} {'torch TFLOP/s':>14} "
          f"{'ratio':>6}  plan")
    for r in results["matmul"]:
        t = torch_mm.get(r["n"])
        ratio = f"{r['wgpu_tflops'] / t:6.2f}" if t else "     -"
        print(f"{r['n']:>10} {r['wgpu_tflops']:>13.2f} {r['wgpu_call_tflops']:>12.2f} "
              f"{t or float('nan'):>14.2f} {ratio}  {r['plan']} ({r['how']})")
    bw = results["bandwidth"]
    print(f"elementwise add {bw['wgpu_add_gbs']:.0f} GB/s, device copy {bw['wgpu_copy_gbs']:.0f} "
          f"GB/s (torch add {results['torch'].get('torch_add_gbs', float('nan')):.0f}, copy "
          f"{results['torch'].get('torch_copy_gbs', float('nan')):.0f})")
    print(f"per dispatch {results['dispatch']['us_per_dispatch']:.2f} us")
    tr = results["transformer"]
    print(f"TransformerBlock step {tr['wgpu_ms']:.2f} ms ({tr['dispatches']} dispatches; "
          f"unfused {tr['unfused_wgpu_ms']:.2f} ms, {tr['unfused_dispatches']} dispatches), "
          f"torch eager {results['torch'].get('transformer_ms', float('nan')):.2f} ms")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    main()
