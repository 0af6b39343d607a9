"""CPU benchmark: one training step (forward, loss, gradient, SGD; float32) of three
workloads in pyasg (numpy backend), hand-written numpy, PyTorch eager and JAX jit.

    python -m benchmarks [--quick] [--only W1,W2] [--out DIR] [--tag NAME] [--no-plot]

Run it as `python -m benchmarks` (benchmarks/__main__.py): that sets the BLAS and XLA
thread counts before numpy, torch or jax are imported. Importing this module does
not. What is reported, per workload and framework: the median step time over many
steps after warm-up, its ratio to pyasg's, the first call's time (pyasg: trace +
grad + compile + run; torch: the first step; JAX: compile + run), the peak of memory
allocated during one step (tracemalloc, numpy-based frameworks only), and for pyasg
what its executable's memory plan says. Memory (tracemalloc, so numpy-based frameworks
only): "held" is what a fresh runner keeps between steps (updated params, buffers,
pyasg's executable), "step peak" what one step allocates on top of it. Also the
first call of a 12-block W2.
Results: a table on stdout, DIR/cpu-<date>-<tag>.json and .md, and a bar chart
(docs/benchmarks-cpu.png when DIR is benchmarks/results, else DIR/benchmarks-cpu.png).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import hand_numpy
from benchmarks.workloads import WORKLOADS, Workload, build

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
PLOT = ROOT / "docs" / "benchmarks-cpu.png"
FRAMEWORKS = ("pyasg", "numpy", "torch", "jax")
LABELS = {"pyasg": "pyasg (numpy)", "numpy": "numpy by hand", "torch": "PyTorch eager",
          "jax": "JAX jit"}


# --------------------------------------------------------------------------- frameworks


class PyasgRunner:
    """pyasg's jitted step with its params and optimiser state kept between calls."""

    def __init__(self, w: Workload) -> None:
        self.w = w
        self.params, self.opt_state = w.params, w.opt_state

    @staticmethod
    def prepare(x: np.ndarray, y: np.ndarray) -> tuple:
        return x, y

    def step(self, x: np.ndarray, y: np.ndarray) -> float:
        self.params, self.opt_state, loss = self.w.step(self.params, self.opt_state, x, y)
        return float(loss)


class NumpyRunner:
    """The hand-written numpy model (it updates its params in place)."""

    def __init__(self, w: Workload) -> None:
        self.model = hand_numpy.make(w)

    @staticmethod
    def prepare(x: np.ndarray, y: np.ndarray) -> tuple:
        return x, y

    def step(self, x: np.ndarray, y: np.ndarray) -> float:
        return self.model.step(x, y)


def frameworks(threads: int) -> tuple[dict[str, Callable[[Workload], Any]], dict[str, str]]:
    """The runners that can be made here, and why the others are skipped."""
    makers: dict[str, Callable[[Workload], Any]] = {"pyasg": PyasgRunner,
                                                      "numpy": NumpyRunner}
    skipped: dict[str, str] = {}
    try:
        import torch

        torch.set_num_threads(threads)
        from benchmarks import torch_ref

        makers["torch"] = torch_ref.make
    except ImportError as e:
        skipped["torch"] = f"torch is not installed ({e})"
    try:
        from benchmarks import jax_ref

        makers["jax"] = jax_ref.make
    except ImportError as e:
        skipped["jax"] = f"jax is not installed ({e}); pip install jax jaxlib"
    return makers, skipped


# --------------------------------------------------------------------------- measuring


def _memory(make: Callable[[Workload], Any], w: Workload) -> dict[str, int]:
    """Memory as tracemalloc sees it (numpy reports its array buffers to it; torch and
    XLA do not), for a fresh runner: `held_bytes` is what it keeps between steps after
    two steps (new params, preallocated buffers; for pyasg also its traced graphs and
    compiled executable, with the buffers its memory plan allocates once), and
    `step_peak_bytes` the most a third step allocates on top of that."""
    w = build(w.name, lr=w.lr, **w.config)  # a fresh jit cache: it compiles in here
    gc.collect()
    tracemalloc.start()
    try:
        runner = make(w)
        x, y = runner.prepare(w.x, w.y)
        runner.step(x, y)
        runner.step(x, y)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        runner.step(x, y)
        return {"held_bytes": held, "step_peak_bytes": tracemalloc.get_traced_memory()[1] - held}
    finally:
        tracemalloc.stop()


def _plan_numbers(w: Workload, runner: PyasgRunner) -> dict[str, Any]:
    """What pyasg's executable says about itself: kernel count and, where the memory
    plan exposes them, its byte counts (looked up by name: the plan is changing)."""
    exe = w.step.lower(runner.params, runner.opt_state, w.x, w.y)
    out: dict[str, Any] = {"kernel_count": getattr(exe, "kernel_count", None)}
    graph = getattr(exe, "graph", None)
    if graph is not None:
        out["graph_nodes"] = len(graph.nodes)
    for owner, prefix in ((getattr(exe, "plan", None), "plan."), (exe, "executable.")):
        if owner is None:
            continue
        for attr in dir(owner):
            if attr.startswith("_") or not any(s in attr for s in ("bytes", "peak", "naive")):
                continue
            try:
                value = getattr(owner, attr)
            except Exception:  # noqa: BLE001 - a property that fails is just not reported
                continue
            if isinstance(value, (int, float, np.integer, np.floating)):
                out[prefix + attr] = int(value) if float(value).is_integer() else float(value)
    return out


def measure(name: str, make: Callable[[Workload], Any], w: Workload, warmup: int,
            min_steps: int, max_steps: int, budget_s: float) -> dict[str, Any]:
    """First call, warm-up, then timed steps (each timed alone) until `min_steps` are done
    and `budget_s` has passed (or `max_steps`); the median is the figure."""
    runner = make(w)
    x, y = runner.prepare(w.x, w.y)
    start = time.perf_counter()
    first_loss = runner.step(x, y)
    first_call = time.perf_counter() - start
    for _ in range(warmup):
        runner.step(x, y)
    times: list[float] = []
    began = time.perf_counter()
    while len(times) < max_steps and (len(times) < min_steps
                                      or time.perf_counter() - began < budget_s):
        t = time.perf_counter()
        loss = runner.step(x, y)
        times.append(time.perf_counter() - t)
    result: dict[str, Any] = {
        "median_ms": statistics.median(times) * 1e3,
        "min_ms": min(times) * 1e3,
        "p90_ms": float(np.percentile(times, 90)) * 1e3,
        "steps": len(times),
        "first_call_s": first_call,
        "first_loss": first_loss,
        "last_loss": loss,
    }
    if name == "pyasg":
        result["plan"] = _plan_numbers(w, runner)
    del runner
    if name in ("pyasg", "numpy"):
        result.update(_memory(make, w))
    else:
        result.update(held_bytes=None, step_peak_bytes=None,
                      memory_note="n/a: its allocator does not report to tracemalloc, and "
                                  "it has no per-step peak counter on CPU")
    return result


def first_call_deep(blocks: int = 12, quick: bool = False) -> dict[str, Any]:
    """pyasg's first call (trace + grad + compile + run) of a `blocks`-deep W2."""
    sizes = {"batch": 2, "seq": 16} if quick else {}
    w = build("W2", blocks=blocks, **sizes)
    start = time.perf_counter()
    w.step(*w.args())
    seconds = time.perf_counter() - start
    start = time.perf_counter()
    w.step(*w.args())
    second = time.perf_counter() - start
    exe = w.step.lower(*w.args())
    return {"blocks": blocks, "config": dict(w.config), "first_call_s": seconds,
            "second_call_s": second, "kernel_count": getattr(exe, "kernel_count", None)}


# --------------------------------------------------------------------------- machine


def machine_info(threads: int) -> dict[str, Any]:
    """CPU, cores, Python and library versions, BLAS (from numpy.show_config).

    >>> info = machine_info(2)
    >>> info["threads"], info["numpy"] == np.__version__
    (2, True)
    """
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor() or "unknown"
    info: dict[str, Any] = {
        "cpu": cpu, "logical_cores": os.cpu_count(), "threads": threads,
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else None,
        "python": platform.python_version(), "platform": platform.platform(),
        "numpy": np.__version__,
        "env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                               "MKL_NUM_THREADS", "XLA_FLAGS")},
    }
    try:
        deps = np.show_config(mode="dicts").get("Build Dependencies", {})
        info["blas"] = {k: {f: v.get(f) for f in ("name", "version", "openblas configuration")
                            if v.get(f)} for k, v in deps.items()}
    except Exception as e:  # noqa: BLE001 - numpy < 1.26 has no mode="dicts"
        info["blas"] = f"unavailable ({e})"
    import pyasg

    info["pyasg"] = pyasg.__version__
    for mod in ("torch", "jax", "jaxlib", "scipy"):
        m = sys.modules.get(mod)
        info[mod] = getattr(m, "__version__", None) if m is not None else None
    return info


# --------------------------------------------------------------------------- reporting


def _fmt_bytes(n: int | None) -> str:
    if n is None:
        return "n/a"
    return f"{n / 2**20:.2f} MiB" if n >= 2**20 else f"{n / 2**10:.1f} KiB"


def table_rows(results: dict[str, Any]) -> list[list[str]]:
    rows = []
    for wname, wres in results["workloads"].items():
        base = wres["frameworks"].get("pyasg", {}).get("median_ms")
        for fw, r in wres["frameworks"].items():
            ratio = f"{r['median_ms'] / base:.2f}" if base else "-"
            rows.append([wname, LABELS.get(fw, fw), f"{r['median_ms']:.2f}", ratio,
                         f"{r['first_call_s'] * 1e3:.0f}", _fmt_bytes(r["step_peak_bytes"]),
                         _fmt_bytes(r["held_bytes"]),
                         f"{r['first_loss']:.5f}", str(r["steps"])])
    return rows


HEADER = ["workload", "framework", "median ms/step", "time / pyasg", "first call ms",
          "step peak mem", "held mem", "loss (step 1)", "steps timed"]


def text_table(results: dict[str, Any]) -> str:
    rows = [HEADER] + table_rows(results)
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    lines = ["  ".join(c.rjust(w) if i >= 2 else c.ljust(w)
                       for i, (c, w) in enumerate(zip(r, widths))) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines) + "\n" + _notes(results, markdown=False)


def _notes(results: dict[str, Any], markdown: bool) -> str:
    b = "- " if markdown else ""
    out = []
    for wname, wres in results["workloads"].items():
        out.append(f"{b}{wname}: {wres['title']}")
        plan = wres["frameworks"].get("pyasg", {}).get("plan")
        if plan:
            out.append(f"{b}{wname} pyasg executable: " + ", ".join(
                f"{k} {_fmt_bytes(v) if 'bytes' in k else v}" for k, v in plan.items()))
    deep = results.get("w2_deep")
    if deep:
        out.append(f"{b}W2 with {deep['blocks']} blocks, pyasg first call (trace + grad + "
                   f"compile + run): {deep['first_call_s']:.2f} s; a later call "
                   f"{deep['second_call_s'] * 1e3:.0f} ms; {deep['kernel_count']} kernels")
    for fw, why in results["skipped"].items():
        out.append(f"{b}skipped {fw}: {why}")
    m = results["machine"]
    out.append(f"{b}{m['cpu']}, {m['threads']} threads, Python {m['python']}, numpy "
               f"{m['numpy']}, torch {m.get('torch')}, jax {m.get('jax')}")
    return "\n".join(out) + "\n"


def markdown_table(results: dict[str, Any]) -> str:
    lines = [f"# CPU benchmark, {results['date']} ({results['tag']})", "",
             "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(r) + " |" for r in table_rows(results)]
    return "\n".join(lines) + "\n\n" + _notes(results, markdown=True)


def plot(results: dict[str, Any], path: Path) -> str:
    """A bar chart of the median step time per workload, one bar per framework."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: no plot (pip install 'pyasg[bench]')"
    names = list(results["workloads"])
    fws = [f for f in FRAMEWORKS if any(f in results["workloads"][w]["frameworks"]
                                        for w in names)]
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.6), squeeze=False)
    for ax, wname in zip(axes[0], names):
        res = results["workloads"][wname]["frameworks"]
        present = [f for f in fws if f in res]
        values = [res[f]["median_ms"] for f in present]
        bars = ax.bar(range(len(present)), values, color=[f"C{fws.index(f)}" for f in present])
        ax.bar_label(bars, fmt="%.1f", fontsize=8)
        ax.set_xticks(range(len(present)), [LABELS[f] for f in present], rotation=20,
                      ha="right", fontsize=8)
        ax.set_title(wname, fontsize=10)
        ax.set_ylabel("ms per training step (median)")
    m = results["machine"]
    fig.suptitle(f"CPU, {m['threads']} threads: {m['cpu']} ({results['date']})", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return f"plot: {path}"


# --------------------------------------------------------------------------- main


class _Progress:
    """A tqdm bar on stderr when tqdm is installed, else one line per item."""

    def __init__(self, total: int) -> None:
        try:
            from tqdm import tqdm

            self.bar = tqdm(total=total, file=sys.stderr, leave=False)
        except ImportError:
            self.bar = None

    def next(self, what: str) -> None:
        if self.bar is None:
            print(f"{what} ...", file=sys.stderr, flush=True)
        else:
            self.bar.set_description(what)
            self.bar.update()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def main(argv: list[str] | None = None, threads: int = 2) -> dict[str, Any]:
    """Run the benchmark; returns the results (also written as JSON and markdown)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="a few steps at small sizes (to check the script itself)")
    parser.add_argument("--only", default=",".join(WORKLOADS),
                        help="comma-separated workloads (default: W1,W2,W3)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="directory for the results")
    parser.add_argument("--tag", default=platform.node() or "host",
                        help="name in the result files (default: the host name)")
    parser.add_argument("--no-plot", action="store_true", help="do not draw the bar chart")
    parser.add_argument("--threads", type=int, default=threads,
                        help="threads (set before numpy is imported by python -m benchmarks)")
    args = parser.parse_args(argv)
    only = [s.strip().upper() for s in args.only.split(",") if s.strip()]
    bad = [s for s in only if s not in WORKLOADS]
    if bad or not only:
        parser.error(f"--only: unknown workload(s) {bad}; choose from {', '.join(WORKLOADS)}")
    tag = "".join(c if c.isalnum() or c in "-_." else "-" for c in args.tag)

    makers, skipped = frameworks(args.threads)
    if args.quick:
        counts = {"warmup": 1, "min_steps": 3, "max_steps": 3, "budget_s": 0.0}
        sizes = {"W1": {"batch": 16}, "W2": {"batch": 2, "seq": 16}, "W3": {"batch": 4}}
    else:
        counts = {"warmup": 5, "min_steps": 20, "max_steps": 500, "budget_s": 4.0}
        sizes = {}
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"), "tag": tag, "quick": args.quick,
        "settings": counts, "skipped": skipped, "workloads": {},
    }
    progress = _Progress(len(only) * len(makers) + ("W2" in only))
    for wname in only:
        frames: dict[str, Any] = {}
        for fw in FRAMEWORKS:
            if fw not in makers:
                continue
            w = build(wname, **sizes.get(wname, {}))  # fresh: the first call is a first
            progress.next(f"{wname} {fw}")
            frames[fw] = measure(fw, makers[fw], w, **counts)
        results["workloads"][wname] = {"title": w.title, "config": _jsonable(w.config),
                                       "frameworks": frames}
    if "W2" in only:
        progress.next("W2 x12 first call")
        results["w2_deep"] = first_call_deep(12, quick=args.quick)
    progress.close()
    results["machine"] = machine_info(args.threads)

    print(text_table(results))
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"cpu-{results['date']}-{tag}"
    stem.with_suffix(".json").write_text(json.dumps(_jsonable(results), indent=2) + "\n")
    stem.with_suffix(".md").write_text(markdown_table(results))
    print(f"results: {stem}.json, {stem}.md")
    if not args.no_plot:
        target = PLOT if args.out.resolve() == RESULTS.resolve() else args.out / PLOT.name
        print(plot(results, target))
    return results


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    return value
