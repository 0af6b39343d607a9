"""The GPT-like LM training-step benchmark: `python -m benchmarks.gpu --lm`.

One float32 training step of benchmarks/lm.py's character LM (forward, cross-entropy
over all B*T positions, gradient, AdamW) per config, in:

- **pyasg** on wgpu: the whole step is one `pyasg.jit(..., backend="wgpu")` function
  (lm.build_lm_step) with params and optimiser state donated (`donate_argnums=(0, 1)`,
  as the JAX runner's); they are fed back as the DeviceArrays the step returns, so they
  stay on the GPU and are updated in place. "host ms" is the mean time a call spends
  on the host (checks, recording, submitting), which overlaps the GPU's work of the
  calls before it. The dispatch count is `kernel_count` of the
  executable in that jit's cache for the step's arguments, got with `step.lower(...)`
  after the timing (a cache hit: no second compile).
- **torch**: PyTorch eager on CUDA (TF32 off), torch.nn modules, torch.optim.AdamW.
- **compile**: the same under torch.compile (loss forward, its AOTAutograd backward,
  and the optimiser step compiled; lm_torch.py). Recorded as skipped, with the
  reason, where compiling fails.
- **jax**: `jax.jit` with optax.adamw, params and optimiser state donated, matmul
  precision "highest".

All start from the same params (drawn by pyasg) and the same batch. Per config and
framework: the median time of a step with the min and max over rounds (rounds of
back-to-back steps, waited for once per round: `_wait` for wgpu,
torch.cuda.synchronize, block_until_ready), the first call in seconds (pyasg: trace +
grad + compile + run; torch eager: the first step; torch.compile and JAX: compile +
run), and a check against pyasg: the first loss within a relative 1e-4 and, after one
step, lm.check_names' parameters within 1e-5 (AdamW's first step moves each weight
by about lr = 3e-4). A framework that fails it is marked MISMATCH, not dropped.

Without a CUDA device (torch) or a GPU (JAX) a framework is skipped, except with
--quick, where it runs on the CPU to check the script, labelled with its device.
The JSON (--out) is rewritten after every framework, so a run cut short keeps what
it measured.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from benchmarks.lm import CONFIGS, QUICK_CONFIGS, LMConfig, check_names, flat_params, parse_config

# JAX takes 75% of the GPU's memory at its first use unless told not to, which would
# starve the frameworks that run after it; this must be set before jax is imported.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

FRAMEWORKS = ("pyasg", "torch", "compile", "jax")
LABELS = {"pyasg": "pyasg wgpu", "torch": "PyTorch eager", "compile": "torch.compile",
          "jax": "JAX jit"}
LOSS_RTOL = 1e-4
PARAM_ATOL = 1e-5
PARAM_RTOL = 1e-5


class Skip(Exception):
    """A framework that cannot run here (not installed, no GPU): recorded, not fatal."""


def log(message: str) -> None:
    print(message, flush=True)


# --------------------------------------------------------------------------- runners


class Runner:
    """One framework's step on one config: `step()` (not waited for), `wait()`,
    `params()` (the current params as a pyasg tree), `device` and `extra()`."""

    device = "?"

    def step(self) -> Any:
        raise NotImplementedError

    def wait(self) -> None:
        raise NotImplementedError

    def params(self) -> dict:
        raise NotImplementedError

    def extra(self) -> dict:
        return {}


class PyasgRunner(Runner):
    def __init__(self, config: LMConfig, quick: bool) -> None:
        from benchmarks.gpu import _wait
        from benchmarks.lm import build_lm_step
        from pyasg.kernels.wgpu.device import adapter_name, get_adapter

        try:
            self.device = adapter_name(get_adapter())
        except Exception as e:  # noqa: BLE001 - no adapter: skip, with wgpu's reason
            raise Skip(f"no wgpu adapter: {e}") from None
        self.lm = build_lm_step(config, "wgpu", donate=True)
        self.state = [self.lm.params, self.lm.opt_state]
        self.wait = _wait  # type: ignore[method-assign]
        self.host_s: list[float] = []

    def step(self) -> Any:
        lm = self.lm
        start = time.perf_counter()
        self.state[0], self.state[1], loss = lm.step(self.state[0], self.state[1], lm.ids,
                                                     lm.targets)
        self.host_s.append(time.perf_counter() - start)
        return loss

    def params(self) -> dict:
        return self.state[0]

    def extra(self) -> dict:
        lm = self.lm
        exe = lm.step.lower(self.state[0], self.state[1], lm.ids, lm.targets)
        warm = self.host_s[3:] or self.host_s  # past the first calls (compile, first runs)
        out = {"dispatches": exe.kernel_count, "jit_cache_size": lm.step.cache_size,
               "host_ms": 1e3 * statistics.median(warm)}
        if lm.step.cache_size != 1:
            log(f"  warning: pyasg traced the step {lm.step.cache_size} times (the "
                f"signatures of the fed-back DeviceArrays differ from the first call's)")
        return out


def _torch_device(quick: bool) -> str:
    try:
        import torch
    except ImportError:
        raise Skip("torch is not installed") from None
    if torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        return "cuda"
    if quick:
        return "cpu"
    raise Skip("torch has no CUDA device")


class TorchRunner(Runner):
    def __init__(self, config: LMConfig, params: dict, batch: tuple, quick: bool,
                 compile: bool) -> None:
        dev = _torch_device(quick)
        import torch

        from benchmarks import lm_torch

        if compile:
            # a fresh compile per config: dynamo's caches are per code object, and the
            # step of another config would otherwise recompile with dynamic shapes
            torch._dynamo.reset()

        self.model = lm_torch.TorchLMStep(config, params, device=dev, compile=compile)
        self.batch = self.model.prepare(*batch)
        self.device = (f"cuda: {torch.cuda.get_device_name(0)}" if dev == "cuda"
                       else "cpu")

    def step(self) -> Any:
        return self.model.step(*self.batch)

    def wait(self) -> None:
        self.model.synchronize()

    def params(self) -> dict:
        return self.model.params()


class JaxRunner(Runner):
    def __init__(self, config: LMConfig, params: dict, batch: tuple, quick: bool) -> None:
        try:
            import jax
        except ImportError:
            raise Skip("jax is not installed") from None
        try:
            import optax  # noqa: F401
        except ImportError:
            raise Skip("optax is not installed") from None
        device = jax.devices()[0]
        if device.platform == "cpu" and not quick:
            raise Skip("JAX has no GPU (its devices are CPUs)")
        jax.config.update("jax_default_matmul_precision", "highest")
        from benchmarks import lm_jax

        self.model = lm_jax.JaxLMStep(config, params, device=device)
        self.batch = self.model.prepare(*batch)
        self.device = f"{device.platform}: {device.device_kind}"

    def step(self) -> Any:
        return self.model.step(*self.batch)

    def wait(self) -> None:
        self.model.synchronize()

    def params(self) -> dict:
        return self.model.params()


def make_runner(framework: str, config: LMConfig, quick: bool) -> Runner:
    from benchmarks.lm import init_params, make_batch

    if framework == "pyasg":
        return PyasgRunner(config, quick)
    params, batch = init_params(config), make_batch(config)
    if framework in ("torch", "compile"):
        return TorchRunner(config, params, batch, quick, compile=framework == "compile")
    if framework == "jax":
        return JaxRunner(config, params, batch, quick)
    raise ValueError(f"unknown framework {framework!r}")


def _free_memory() -> None:
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


# --------------------------------------------------------------------------- measuring


def measure(runner: Runner, config: LMConfig, quick: bool) -> tuple[dict, dict]:
    """The first call, the check values after it, then the timed rounds."""
    from benchmarks.gpu import timed_rounds

    start = time.perf_counter()
    loss = float(runner.step())  # reading the loss back waits for the step
    first_call = time.perf_counter() - start
    wanted = check_names(config)
    flat = flat_params(runner.params())
    after_one = {k: np.array(flat[k], np.float32) for k in wanted}

    # the second call, alone (a framework that compiles again here shows it), then an
    # estimate of the step time from the third, to size the rounds
    times_s = []
    for _ in range(2):
        start = time.perf_counter()
        runner.step()
        runner.wait()
        times_s.append(time.perf_counter() - start)
    second_call, estimate = times_s
    if quick:
        reps, rounds, warmup = 2, 2, 1
    else:
        reps, rounds, warmup = int(min(50, max(2, round(0.25 / max(estimate, 1e-6))))), 5, 2
    times = timed_rounds(runner.step, runner.wait, reps, rounds, warmup)
    ms = [t * 1e3 for t in times]
    median = statistics.median(ms)
    result = {"device": runner.device, "first_call_s": first_call,
              "second_call_s": second_call, "first_loss": loss,
              "median_ms": median, "min_ms": min(ms), "max_ms": max(ms), "round_ms": ms,
              "reps": reps, "rounds": rounds, "tflops": config.flops() / (median * 1e-3) / 1e12}
    result.update(runner.extra())
    return result, after_one


def check(result: dict, after_one: dict, ref: dict | None) -> dict:
    """The loss and the updated params against the reference framework's."""
    if ref is None:
        return {"status": "reference"}
    ref_loss = ref["result"]["first_loss"]
    loss_rel = abs(result["first_loss"] - ref_loss) / max(abs(ref_loss), 1e-30)
    params = {}
    ok = loss_rel <= LOSS_RTOL
    for name, value in after_one.items():
        want = ref["after_one"][name]
        diff = float(np.abs(value - want).max()) if value.size else 0.0
        close = bool(np.allclose(value, want, rtol=PARAM_RTOL, atol=PARAM_ATOL))
        params[name] = {"max_abs_diff": diff, "ok": close}
        ok = ok and close
    return {"status": "ok" if ok else "MISMATCH", "against": ref["framework"],
            "loss_rel_diff": loss_rel, "params": params}


def run_one(framework: str, config: LMConfig, quick: bool, ref: dict | None) -> dict:
    """Measure one framework on one config; never raises (a failure is recorded)."""
    runner = None
    try:
        runner = make_runner(framework, config, quick)
        result, after_one = measure(runner, config, quick)
    except Skip as e:
        return {"skipped": str(e)}
    except Exception as e:  # noqa: BLE001 - one framework's failure must not end the run
        line = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
        print(traceback.format_exc(limit=-3), file=sys.stderr, flush=True)
        key = "skipped" if framework == "compile" else "failed"
        what = "torch.compile failed: " if framework == "compile" else ""
        return {key: what + line[:500]}
    finally:
        del runner
        _free_memory()
    result["check"] = check(result, after_one, ref)
    result["_after_one"] = after_one
    return result


# --------------------------------------------------------------------------- reporting


def machine_info() -> dict:
    info: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M:%S"),
                            "host": platform.node(), "python": platform.python_version(),
                            "platform": platform.platform(), "numpy": np.__version__}
    for name in ("torch", "jax", "jaxlib", "optax", "wgpu"):
        try:
            module = __import__(name)
            info[name] = getattr(module, "__version__", "?")
        except ImportError:
            info[name] = None
    torch = sys.modules.get("torch")
    if torch is not None:
        info["torch_cuda"] = torch.version.cuda
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    try:
        smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                              "--format=csv,noheader"], capture_output=True, text=True,
                             timeout=20)
        if smi.returncode == 0:
            info["nvidia_smi"] = smi.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        from pyasg.kernels.wgpu.device import adapter_name, get_adapter

        adapter = get_adapter()
        info["wgpu_adapter"] = adapter_name(adapter)
        info["wgpu_adapter_info"] = {k: str(v) for k, v in dict(adapter.info).items()}
    except Exception as e:  # noqa: BLE001
        info["wgpu_adapter"] = f"none ({type(e).__name__})"
    return info


def _cell(r: dict, pyasg_ms: float | None) -> list[str]:
    if "median_ms" not in r:
        return ["-", "-", "-", "-", "-", "-", "-",
                "skipped: " + r["skipped"] if "skipped" in r else "FAILED: " + r["failed"]]
    spread = f"{r['median_ms']:.2f} ({r['min_ms']:.2f}-{r['max_ms']:.2f})"
    ratio = f"{r['median_ms'] / pyasg_ms:.2f}" if pyasg_ms else "-"
    c = r["check"]
    if c["status"] == "reference":
        status = "reference"
    else:
        worst = max((p["max_abs_diff"] for p in c["params"].values()), default=0.0)
        status = f"{c['status']} (loss {c['loss_rel_diff']:.1e}, params {worst:.1e})"
    return [spread, ratio, f"{r['tflops']:.2f}", f"{r['first_call_s']:.1f}",
            str(r.get("dispatches", "-")),
            f"{r['host_ms']:.2f}" if "host_ms" in r else "-", f"{r['first_loss']:.6f}", status]


HEADER = ["config", "framework", "device", "median ms (min-max)", "x pyasg", "TFLOP/s",
          "first s", "dispatches", "host ms", "first loss", "check"]


def table(results: dict) -> str:
    rows = [HEADER]
    for name, entry in results["configs"].items():
        frames = entry["frameworks"]
        pyasg_ms = frames.get("pyasg", {}).get("median_ms")
        for fw, r in frames.items():
            device = r.get("device", "-")
            rows.append([name, LABELS[fw], device[:28], *_cell(r, pyasg_ms)])
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER) - 1)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[-1]
             for row in rows]
    return "\n".join([lines[0], "-" * len(lines[0]), *lines[1:]])


def _write(results: dict, out: str | None) -> None:
    if not out:
        return
    tmp = out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
    os.replace(tmp, out)


def run(configs: Sequence[str], frameworks: Sequence[str], quick: bool = False,
        out: str | None = None, progress: Callable[[str], None] = log) -> dict:
    """Benchmark `frameworks` on `configs`; returns (and writes to `out`) the results."""
    started = time.perf_counter()
    results: dict[str, Any] = {"benchmark": "lm", "quick": quick, "machine": machine_info(),
                               "frameworks": list(frameworks), "configs": {},
                               "tolerances": {"loss_rtol": LOSS_RTOL, "param_atol": PARAM_ATOL,
                                              "param_rtol": PARAM_RTOL}}
    m = results["machine"]
    progress(f"LM training-step benchmark ({'quick, ' if quick else ''}{m['date']}): wgpu "
             f"{m.get('wgpu_adapter')}, torch {m.get('torch')}, jax {m.get('jax')}, "
             f"optax {m.get('optax')}")
    for name in configs:
        c = parse_config(name)
        entry = {"batch": c.batch, "seq": c.seq, "d_model": c.d_model, "heads": c.heads,
                 "layers": c.layers, "vocab": c.vocab, "params": c.n_params(),
                 "step_gflop": c.flops() / 1e9, "checked": list(check_names(c)),
                 "frameworks": {}}
        results["configs"][c.name] = entry
        progress(f"{c.name}: {c.n_params() / 1e6:.2f} M params, {c.flops() / 1e9:.1f} "
                 f"GFLOP a step")
        ref = None
        for fw in frameworks:
            t0 = time.perf_counter()
            r = run_one(fw, c, quick, ref)
            after_one = r.pop("_after_one", None)
            if ref is None and after_one is not None:
                ref = {"framework": fw, "result": r, "after_one": after_one}
            entry["frameworks"][fw] = r
            _write(results, out)
            progress(f"  {LABELS[fw]:<14} {' | '.join(_cell(r, None))}  "
                     f"[{time.perf_counter() - t0:.1f} s, total "
                     f"{time.perf_counter() - started:.0f} s]")
    results["total_s"] = time.perf_counter() - started
    _write(results, out)
    progress("")
    progress(table(results))
    progress(f"total {results['total_s']:.0f} s")
    return results


def parse_list(text: str | None, default: Sequence[str], allowed: Sequence[str] | None,
               what: str) -> list[str]:
    """A comma list (or the default), checked: ValueError names what is wrong."""
    items = [t.strip() for t in text.split(",") if t.strip()] if text else list(default)
    if not items:
        raise ValueError(f"no {what} given")
    for item in items:
        if allowed is not None and item not in allowed:
            raise ValueError(f"unknown {what} {item!r}; choose from {', '.join(allowed)}")
        if allowed is None:
            try:
                parse_config(item)
            except Exception as e:  # noqa: BLE001 - pyasg's error, as a ValueError
                raise ValueError(str(e)) from None
    return items


def main(configs: str | None, frameworks: str | None, quick: bool, out: str | None) -> dict:
    """The --lm part of benchmarks.gpu's command line."""
    return run(parse_list(configs, QUICK_CONFIGS if quick else CONFIGS, None, "config"),
               parse_list(frameworks, FRAMEWORKS, FRAMEWORKS, "framework"), quick, out)
