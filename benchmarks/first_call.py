"""Where the first call of a training step spends its time: trace, grad, simplify, fuse, compile.

A jitted step's first call traces the Python function (value_and_grad inside it runs
`vjp_graph` and inlines the gradient), simplifies the graph, then per backend converts
its dtypes and fuses it (`lower_graph`) and compiles it (`backend.compile`); only
then does it run. This script times each phase separately, the same way `pyasg.jit`
runs them, for the LM configs of `benchmarks/lm.py` and the CPU benchmark's W2:

    python -m benchmarks.first_call                # the DEFAULT_CONFIGS, numpy
    python -m benchmarks.first_call --configs B2-T16-d32-H2-L1 --backends numpy,wgpu
    python -m benchmarks.first_call --repeat 5     # one cold round, four warm ones
    python -m benchmarks.first_call --profile /tmp/prof   # + one cProfile .prof per config

Phases: "trace" is the whole trace of the step (its "grad" part is the time inside
`vjp_graph`, its "inline" part the time spent inlining the gradient into the step);
"simplify"; then per backend "fuse" (dtype conversion and fusion) and "compile" (the
backend's compile: kernel look-up, memory plan, code generation). On wgpu the compile
is run twice: cold (every WGSL kernel compiled by the driver, lavapipe here) and again
with the compiled pipelines cached by source text ("wgpu compile, cached pipelines"),
which leaves the Python side (codegen, planning, bind groups). "<backend> start" is
the backend's first use (wgpu opens its device), not counted in the total. Nothing is
run on the arrays. Each phase is timed in wall seconds and in this process's CPU
seconds ("(cpu)"), which a loaded machine disturbs less. `--out FILE` writes every
round as JSON.

With `--profile DIR`, each config's whole first call (all phases, every backend) is
also run under cProfile once and its stats written to DIR/<config>.prof (open with
`python -m pstats` or snakeviz); the top functions by cumulative time are printed.

>>> rounds = measure("B2-T8-d16-H2-L1", ["numpy"], repeat=1)
>>> sorted(rounds[0])  # doctest: +NORMALIZE_WHITESPACE
['grad', 'inline', 'nodes fused numpy', 'nodes simplified', 'nodes traced', 'numpy compile',
 'numpy compile (cpu)', 'numpy fuse', 'numpy fuse (cpu)', 'numpy start', 'numpy start (cpu)',
 'simplify', 'simplify (cpu)', 'total numpy', 'total numpy (cpu)', 'trace', 'trace (cpu)']
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import pstats
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyasg.api
from benchmarks import lm, workloads
from pyasg.compile.pipeline import lower_graph
from pyasg.compile.registry import get_backend
from pyasg.transforms.simplify import simplify

#: what the script measures when no --configs are given
DEFAULT_CONFIGS = ("B16-T64-d128-H4-L1", "B32-T256-d512-H8-L6", "W2")


def build(config: str) -> tuple[Callable[..., Any], tuple]:
    """The plain (unjitted) step function of `config` and its first call's arguments
    (numpy arrays): an LM config name or a workload of `benchmarks.workloads`."""
    if config in workloads.WORKLOADS:
        w = workloads.build(config)
        return w.step.__wrapped__, w.args()
    step = lm.build_lm_step(config, "numpy")
    return step.step.__wrapped__, step.args()


@contextlib.contextmanager
def _timed(module: Any, name: str, into: dict[str, float], key: str) -> Iterator[None]:
    """Add the time spent in `module.name` (re-bound for the duration) to `into[key]`."""
    original = getattr(module, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            into[key] = into.get(key, 0.0) + time.perf_counter() - start

    setattr(module, name, wrapper)
    try:
        yield
    finally:
        setattr(module, name, original)


class _Phases:
    """Wall and CPU seconds of each phase, in the order they ran."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.process_time()
        yield
        self.times[name] = time.perf_counter() - wall
        self.times[f"{name} (cpu)"] = time.process_time() - cpu


def first_call(fn: Callable[..., Any], args: tuple, backends: list[str]) -> dict[str, float]:
    """One first call's phases: wall seconds, CPU seconds under "<phase> (cpu)" (this
    process's: less disturbed by a loaded machine), node counts under "nodes ..."."""
    phase = _Phases()
    times = phase.times
    inner: dict[str, float] = {"grad": 0.0, "inline": 0.0}
    with _timed(pyasg.api, "vjp_graph", inner, "grad"), \
            _timed(pyasg.api, "inline", inner, "inline"), phase("trace"):
        traced = pyasg.make_graph(fn)(*args)
    times.update(inner)
    with phase("simplify"):
        graph = simplify(traced)
    times["nodes traced"], times["nodes simplified"] = len(traced.live_ids), len(graph.live_ids)
    for name in backends:
        backend = get_backend(name)
        with phase(f"{name} start"):  # wgpu: the device, opened once per process
            backend.fusion_options()
        with phase(f"{name} fuse"):
            fused = lower_graph(graph, backend)
        times[f"nodes fused {name}"] = len(fused.live_ids)
        with phase(f"{name} compile"):
            backend.compile(fused, "step")
        if name == "wgpu":  # again, every WGSL pipeline cached: the Python side alone
            with phase("wgpu compile, cached pipelines"):
                backend.compile(fused, "step")
        for unit in ("", " (cpu)"):
            times[f"total {name}{unit}"] = sum(times[f"{p}{unit}"] for p in (
                "trace", "simplify", f"{name} fuse", f"{name} compile"))
    return times


def measure(config: str, backends: list[str], repeat: int = 4) -> list[dict[str, float]]:
    """`repeat` rounds of `first_call` for `config`, each on a freshly traced graph."""
    fn, args = build(config)
    return [first_call(fn, args, backends) for _ in range(repeat)]


def profile(config: str, backends: list[str], out: Path, top: int = 25) -> Path:
    """One first call of `config` under cProfile; its stats go to out/<config>.prof."""
    fn, args = build(config)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{config}.prof"
    profiler = cProfile.Profile()
    profiler.enable()
    first_call(fn, args, backends)
    profiler.disable()
    profiler.dump_stats(str(path))
    stats = pstats.Stats(str(path), stream=sys.stdout)
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    return path


def report(config: str, rounds: list[dict[str, float]]) -> str:
    """A table of each phase: the first round (cold: the process's first compile, its
    caches empty), then min, median and max of the later rounds (warm)."""
    warm = rounds[1:] or rounds
    lines = [f"{config}: {len(rounds)} round(s); seconds: cold, then warm min / median / max"]
    for key in rounds[0]:
        values = [r[key] for r in warm]
        if key.startswith("nodes"):
            lines.append(f"  {key:38s} {int(values[0]):>8d}")
            continue
        lines.append(f"  {key:38s} {rounds[0][key]:8.3f}   {min(values):8.3f} "
                     f"{statistics.median(values):8.3f} {max(values):8.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """The command line (see the module docstring)."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.first_call", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", default=",".join(DEFAULT_CONFIGS),
                   help="comma-separated LM config names and/or W1, W2, W3")
    p.add_argument("--backends", default="numpy", help="comma-separated: numpy, wgpu")
    p.add_argument("--repeat", type=int, default=4,
                   help="rounds per config (the first is cold)")
    p.add_argument("--out", type=Path, default=None, help="write every round as JSON here")
    p.add_argument("--profile", type=Path, default=None,
                   help="also write one cProfile .prof per config into this folder")
    ns = p.parse_args(argv)
    backends = [b for b in ns.backends.split(",") if b]
    results = {}
    for config in [c for c in ns.configs.split(",") if c]:
        results[config] = measure(config, backends, ns.repeat)
        print(report(config, results[config]), flush=True)
        if ns.out is not None:
            ns.out.write_text(json.dumps(results, indent=1))
        if ns.profile is not None:
            print(f"  profile: {profile(config, backends, ns.profile)}", flush=True)


if __name__ == "__main__":
    main()
