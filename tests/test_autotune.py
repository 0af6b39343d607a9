"""The tuner: the fastest candidate by measurement, cached in memory and on disk, within budgets.

Most tests inject a fake timer (seconds per candidate name) and a fake clock, and a
cache file of their own, so they need no GPU and are exact; the last ones run the
matmul kernel's tuning on lavapipe: the winner is the kernel that runs, and it is
right.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from wgpu_util import WGPU, require_wgpu, wgpu_parity

import pyasg
from pyasg.asg.types import TensorType
from pyasg.errors import BackendError
from pyasg.kernels.wgpu import autotune, fused, measure, tuning_cache
from pyasg.kernels.wgpu import matmul as mm
from pyasg.kernels.wgpu.autotune import Tuner
from pyasg.kernels.wgpu.kernel import WgpuKernel
from pyasg.kernels.wgpu.tiles import Problem
from pyasg.kernels.wgpu.tuning_cache import TuningCache

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Cand:
    name: str


CANDS = [Cand("rule"), Cand("a"), Cand("b"), Cand("c")]
TIMES = {"rule": 4.0, "a": 3.0, "b": 1.0, "c": 2.0}


class Timer:
    """A fake `measure`: `times[name]` seconds (or `times(name)`), each call advancing a
    fake clock by `cost`."""

    def __init__(self, times: dict[str, float] | Callable[[str], float] = TIMES,
                 cost: float = 0.1) -> None:
        self.times, self.cost, self.now, self.calls = times, cost, 0.0, []

    def clock(self) -> float:
        return self.now

    def __call__(self, name: str, kernel: object, workspace: object, budget: float) -> float:
        self.calls.append(name)
        self.now += self.cost
        return self.times(name) if callable(self.times) else self.times[name]


def tuner(tmp_path: Path, timer: Timer | None = None, **budgets: float) -> Tuner:
    timer = timer or Timer()
    return Tuner(measure=timer, clock=timer.clock,
                 cache=TuningCache(tmp_path / "tiles.json", "a fake adapter"), **budgets)


def choose(t: Tuner, key: str = "problem", cands: list = CANDS, refine=None):  # noqa: ANN001, ANN201
    return t.choose(key, cands, build=lambda c: WgpuKernel(), size=lambda bound: 4,
                    refine=refine)


def test_the_fastest_candidate_wins_and_is_written_to_the_cache(tmp_path: Path) -> None:
    t = tuner(tmp_path)
    assert choose(t).name == "b"
    assert t.measure.calls == ["rule", "a", "b", "c"]  # the rule's first
    data = json.loads((tmp_path / "tiles.json").read_text())
    assert data["version"] == tuning_cache.VERSION and data["adapter"] == "a fake adapter"
    assert data["choices"]["problem"]["plan"] == "b"
    assert data["choices"]["problem"]["seconds"] == TIMES
    assert t.choices["problem"].how == "measured"


def test_the_rules_choice_stays_unless_another_is_clearly_faster(tmp_path: Path) -> None:
    near = {"rule": 1.0, "a": 1.0 - autotune.MARGIN / 2, "b": 1.2, "c": 1.5}
    assert choose(tuner(tmp_path, Timer(near))).name == "rule"  # within the noise
    clear = dict(near, a=1.0 - 2 * autotune.MARGIN)
    assert choose(tuner(tmp_path, Timer(clear)), key="other").name == "a"


def test_identical_products_are_tuned_once_in_a_process(tmp_path: Path) -> None:
    t = tuner(tmp_path)
    assert [choose(t).name for _ in range(3)] == ["b", "b", "b"]
    assert len(t.measure.calls) == len(CANDS)
    choose(t, key="another problem")
    assert len(t.measure.calls) == 2 * len(CANDS)


def test_a_cleared_tuner_reads_its_choice_back_from_the_disk(tmp_path: Path) -> None:
    t = tuner(tmp_path)
    choose(t)
    t.clear()
    assert choose(t).name == "b" and t.choices["problem"].how == "disk"
    assert len(t.measure.calls) == len(CANDS)  # nothing measured again
    fresh = tuner(tmp_path, Timer({}))  # a timer that knows no candidate: must not run
    assert choose(fresh).name == "b"


def test_a_new_process_reads_the_choice_back(tmp_path: Path) -> None:
    choose(tuner(tmp_path))
    code = f"""
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from pyasg.kernels.wgpu.autotune import Tuner
from pyasg.kernels.wgpu.kernel import WgpuKernel
from pyasg.kernels.wgpu.tuning_cache import TuningCache

@dataclass(frozen=True)
class Cand:
    name: str

def never(*args):
    raise AssertionError("measured again")

t = Tuner(measure=never, cache=TuningCache(Path({str(tmp_path / 'tiles.json')!r}),
                                           "a fake adapter"))
cands = [Cand(n) for n in ("rule", "a", "b", "c")]
print(t.choose("problem", cands, lambda c: WgpuKernel(), lambda b: 4).name,
      t.choices["problem"].how)
"""
    env = {k: v for k, v in os.environ.items() if k != "PYASG_AUTOTUNE"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True, timeout=300)
    assert out.stdout.split() == ["b", "disk"]


def _file(choices: object, version: int = tuning_cache.VERSION) -> bytes:
    return json.dumps({"version": version, "choices": choices}).encode()


@pytest.mark.parametrize("content", [
    b"{ not json", b"\xff\xfe\x00 not utf-8", json.dumps([1, 2]).encode(),
    _file({"problem": {"plan": "a"}}, version=-1),       # another format's file
    _file({"problem": {"plan": "no such candidate"}}),  # a plan that is no candidate
    _file({"problem": {"plan": 3}}), _file([1])])
def test_a_corrupt_or_stale_cache_file_is_ignored_and_rewritten(tmp_path: Path,
                                                                content: bytes) -> None:
    (tmp_path / "tiles.json").write_bytes(content)
    t = tuner(tmp_path)
    assert choose(t).name == "b" and t.choices["problem"].how == "measured"
    data = json.loads((tmp_path / "tiles.json").read_text())
    assert data["choices"]["problem"]["plan"] == "b"


def test_writes_merge_with_what_another_process_wrote_meanwhile(tmp_path: Path) -> None:
    t = tuner(tmp_path)
    choose(t, key="one")
    other = TuningCache(tmp_path / "tiles.json", "a fake adapter")
    other.put("from another process", {"plan": "c", "seconds": {}})
    choose(t, key="two")
    choices = json.loads((tmp_path / "tiles.json").read_text())["choices"]
    assert set(choices) == {"one", "two", "from another process"}


def test_an_unwritable_cache_is_no_error(tmp_path: Path) -> None:
    (tmp_path / "a file").write_text("")
    t = Tuner(measure=Timer(), cache=TuningCache(tmp_path / "a file" / "tiles.json", "x"))
    assert choose(t).name == "b" and choose(t).name == "b"


def test_autotune_off_takes_the_rules_choice_and_measures_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYASG_AUTOTUNE", "0")
    t = tuner(tmp_path)
    assert choose(t).name == "rule" and t.measure.calls == []
    assert t.choices["problem"].how == "off" and not (tmp_path / "tiles.json").exists()
    monkeypatch.setenv("PYASG_AUTOTUNE", "1")  # turned on again: tuned now
    assert choose(t).name == "b"


def test_a_products_budget_stops_the_measuring_but_the_rules_is_always_timed(
        tmp_path: Path) -> None:
    timer = Timer(cost=1.0)  # each candidate takes a second of the fake clock
    t = tuner(tmp_path, timer, product_budget_s=1.5)
    assert choose(t).name == "a"  # b, the fastest, was never timed
    assert timer.calls == ["rule", "a"]
    assert t.spent == pytest.approx(2.0)
    tight = tuner(tmp_path, Timer(cost=1.0), product_budget_s=0.0)
    assert choose(tight, key="tight").name == "rule" and tight.measure.calls == ["rule"]


def test_the_measure_is_told_what_is_left_of_the_products_budget(tmp_path: Path) -> None:
    left = []

    def timer(name: str, kernel: object, workspace: object, budget: float) -> float:
        left.append(budget)
        clock.now += 0.5
        return TIMES[name]

    clock = Timer()
    t = Tuner(measure=timer, clock=clock.clock, cache=None, product_budget_s=2.0)
    choose(t)
    assert left == [2.0, 1.5, 1.0, 0.5]


def test_past_the_process_budget_products_take_the_rules_choice_unrecorded(
        tmp_path: Path) -> None:
    timer = Timer(cost=1.0)
    t = tuner(tmp_path, timer, product_budget_s=10.0, process_budget_s=3.5)
    assert choose(t, key="first").name == "b"  # 4 s: the budget is now spent
    assert choose(t, key="second").name == "rule"
    assert t.choices["second"].how == "over budget"
    assert "second" not in json.loads((tmp_path / "tiles.json").read_text())["choices"]


def test_a_candidate_that_does_not_compile_is_skipped(tmp_path: Path) -> None:
    def build(c: Cand) -> WgpuKernel:
        if c.name in ("b", "rule"):
            raise BackendError("the WGSL kernel of a candidate failed to compile")
        return WgpuKernel()

    t = tuner(tmp_path)
    assert t.choose("p", CANDS, build, lambda b: 4).name == "rule"  # its own failed
    assert t.choices["p"].how == "rule" and set(t.choices["p"].seconds) == {"a", "c"}
    t2 = tuner(tmp_path)
    ok = [c for c in CANDS if c.name != "rule"]
    assert t2.choose("q", [Cand("rule")] + ok, lambda c: build(c) if c.name == "b"
                     else WgpuKernel(), lambda b: 4).name == "c"


def test_refined_candidates_are_timed_after_the_best(tmp_path: Path) -> None:
    times = dict(TIMES, **{"b/x": 0.5, "b/y": 2.0})
    t = tuner(tmp_path, Timer(times))

    def refine(c: Cand) -> list[Cand]:
        return [Cand(f"{c.name}/x"), Cand(f"{c.name}/y")] if c.name == "b" else []

    assert choose(t, refine=refine).name == "b/x"
    assert t.measure.calls == ["rule", "a", "b", "c", "b/x", "b/y"]
    t.clear()
    assert choose(t, refine=refine).name == "b/x"  # a refined name is known to the cache


def test_the_cache_file_is_per_adapter_under_the_cache_dir(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PYASG_CACHE_DIR", str(tmp_path))
    a, b = tuning_cache.cache_path("gpu A | driver 1"), tuning_cache.cache_path("gpu A | 2")
    assert a.parent == tmp_path and a != b
    monkeypatch.delenv("PYASG_CACHE_DIR")
    assert tuning_cache.cache_dir() == Path.home() / ".cache" / "pyasg"


# --------------------------------------------------------------------------- on the device

def test_the_problem_key_says_sizes_layouts_and_fusion() -> None:
    p = Problem.of(TensorType((2, 64, 48)), TensorType((48, 80)))
    a, b = mm.Matrix.lhs(p, "a", ("in", 0)), mm.View("b", "in1", ("in", 1), "f32",
                                                     "  let off = c * 48u + r;")
    key = mm.problem_key(p, a, b, fused=True)
    assert "batch[2] a[2] b[] m64 n80 k48" in key and "A:rows4" in key
    assert "B:view-" in key and "fused" in key
    other = mm.View("b", "in1", ("in", 1), "f32", "  let off = r * 80u + c;")
    assert mm.problem_key(p, a, other, fused=True) != key  # another layout


@WGPU
def test_a_tuned_product_runs_the_winner_and_is_right(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    require_wgpu()
    a, b = TensorType((96, 72)), TensorType((72, 80))
    p = Problem.of(a, b)
    plans = mm.candidates(p, mm.device_limits())
    winner = plans[-1].name
    timer = Timer({c.name: (0.5 if c.name == winner else 1.0) for c in plans})
    t = Tuner(measure=timer, clock=timer.clock, cache=TuningCache(tmp_path / "t.json", "x"))
    monkeypatch.setattr(mm, "TUNER", t)
    monkeypatch.setattr(mm, "TUNE_FLOPS", 0)  # tune even this small product
    kernel = mm.matmul_kernel(a, b)
    assert timer.calls == [c.name for c in plans]
    threads = plans[-1].tile.threads
    assert f"@workgroup_size({threads})" in kernel.dispatches[0].source
    rng = np.random.default_rng(0)
    x, y = (rng.integers(-4, 5, (96, 72)) / 4).astype(np.float32), \
        (rng.integers(-4, 5, (72, 80)) / 4).astype(np.float32)
    wgpu_parity(lambda x, y: x @ y, x, y)
    assert t.choices[mm.problem_key(p, *mm_operands(p), False)].plan == winner


def mm_operands(p: Problem) -> tuple:
    return mm.Matrix.lhs(p, "a", ("in", 0)), mm.Matrix.rhs(p, "b", ("in", 1))


@WGPU
def test_a_fused_product_through_views_tries_the_other_read_orders(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    require_wgpu()
    timer = Timer(lambda name: 1.0 if "/a:km" in name else 2.0, cost=0.0)
    t = Tuner(measure=timer, clock=timer.clock, cache=None)
    monkeypatch.setattr(mm, "TUNER", t)
    monkeypatch.setattr(mm, "TUNE_FLOPS", 0)
    rng = np.random.default_rng(1)
    x = (rng.integers(-4, 5, (2, 40, 36)) / 4).astype(np.float32)
    w = (rng.integers(-4, 5, (28, 40)) / 4).astype(np.float32)
    fused.fused_kernel.cache_clear()  # else a kernel built under another tuner
    wgpu_parity(lambda x, w: pyasg.swapaxes(x, -1, -2) @ w.T + 1.0, x, w)
    (key, choice), = t.choices.items()
    assert "A:view-" in key and "B:view-" in key and "fused" in key
    assert any("/a:km" in n for n in timer.calls) and any("/b:nk" in n for n in timer.calls)
    assert "/a:km" in choice.plan  # the fake timer's favourite: and it was right


@WGPU
def test_a_small_product_is_never_tuned(monkeypatch: pytest.MonkeyPatch) -> None:
    require_wgpu()
    timer = Timer({})
    monkeypatch.setattr(mm, "TUNER", Tuner(measure=timer, cache=None))
    assert 2 * 64 * 64 * 64 < mm.TUNE_FLOPS
    mm.matmul_kernel(TensorType((64, 64)), TensorType((64, 64)))
    assert timer.calls == []


@WGPU
def test_the_device_timer_times_rounds_within_its_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    require_wgpu()
    kernel = mm.matmul_kernel(TensorType((64, 48)), TensorType((48, 32)))
    workspace = measure.Workspace(lambda bound: 4 * 64 * 48)
    rounds = []
    original = measure._Clock.round

    def counted(self, runs, reps):  # noqa: ANN001, ANN202
        rounds.append(reps)
        return original(self, runs, reps)

    monkeypatch.setattr(measure._Clock, "round", counted)
    seconds = measure.device_seconds(kernel, workspace)
    assert 0 < seconds < 1 and math.isfinite(seconds)
    # a warm-up, a run to see how long one takes, then the rounds
    assert len(rounds) == 2 + measure.ROUNDS and rounds[:2] == [1, 1]
    rounds.clear()
    assert measure.device_seconds(kernel, workspace, budget_s=0.0) > 0
    assert rounds == [1, 1]  # no budget left: the time of the run after the warm-up


@WGPU
def test_the_real_tuner_on_this_device_picks_a_candidate_and_caches_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    require_wgpu()
    monkeypatch.setenv("PYASG_CACHE_DIR", str(tmp_path))
    t = Tuner()
    monkeypatch.setattr(mm, "TUNER", t)
    monkeypatch.setattr(mm, "TUNE_FLOPS", 0)
    rng = np.random.default_rng(3)
    x = (rng.integers(-4, 5, (128, 60)) / 4).astype(np.float32)
    y = (rng.integers(-4, 5, (60, 124)) / 4).astype(np.float32)
    wgpu_parity(lambda x, y: x @ y, x, y)
    (choice,) = t.choices.values()
    assert choice.how == "measured" and choice.plan in choice.seconds
    assert len(choice.seconds) > 1
    assert all(s > 0 for s in choice.seconds.values())
    (path,) = tmp_path.glob("matmul-*.json")
    assert path == tuning_cache.cache_path(autotune.adapter_identity())
