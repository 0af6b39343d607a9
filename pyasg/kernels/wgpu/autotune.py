"""Choosing a kernel by measurement at compile time: each candidate timed on the device.

`Tuner.choose(key, candidates, build, size)` returns one of `candidates` (anything
with a `name`), the first being the rule's choice:

1. with `PYASG_AUTOTUNE=0` (or "false", "off", "no"), or a single candidate: the rule's;
2. a choice already made for `key` in this process (identical products are tuned
   once), else one in the adapter's disk cache (`tuning_cache`; an entry naming no
   current candidate is ignored);
3. once this process has spent `process_budget_s` tuning: the rule's, unrecorded;
4. else each candidate is built (`build(candidate)`, a `WgpuKernel`) and timed by
   `measure(name, kernel, workspace, budget_s)` in the order given, the rule's first,
   until `product_budget_s` of this product's tuning has passed (compiling included;
   `budget_s` is what is left of it, which the device timer keeps to); then
   `refine(best)` gives more candidates (other read orders of the best tile), timed
   under the same budget. The fastest wins, but beats the rule's only when at least
   `MARGIN` faster (timing noise never swaps a kernel for an equal one). A candidate
   whose kernel fails to compile is skipped. The choice is remembered and written to
   the disk cache with the times measured.

The budgets bound the compile-time cost: with `PRODUCT_BUDGET_S` and
`PROCESS_BUDGET_S`, a step whose products are all new costs at most the process
budget the first time on a machine, nothing later (a hit costs a dictionary look-up).
`Tuner.choices` records how every key was decided (`Choice`), for reports.

>>> tuner = Tuner(measure=lambda name, kernel, ws, budget: {"a": 2.0, "b": 1.0}[name],
...               cache=None)
>>> from types import SimpleNamespace as C
>>> tuner.choose("k", [C(name="a"), C(name="b")], build=lambda c: None, size=len).name
'b'
>>> tuner.choices["k"].how, tuner.choices["k"].seconds
('measured', {'a': 2.0, 'b': 1.0})
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from pyasg.errors import BackendError
from pyasg.kernels.wgpu.device import get_adapter
from pyasg.kernels.wgpu.kernel import WgpuKernel
from pyasg.kernels.wgpu.measure import Workspace, device_seconds
from pyasg.kernels.wgpu.tuning_cache import TuningCache, cache_path

#: Seconds of tuning (compiling and timing candidates) per product, and per process.
#: lavapipe: about 0.5-2 s for a product of 0.1-1 GFLOP (its pipelines compile in
#: ~0.1 s each, runs take ms); expected on a GPU: 0.1-0.4 s (compiles dominate).
PRODUCT_BUDGET_S = 2.0
PROCESS_BUDGET_S = 30.0
#: A candidate replaces the rule's choice only when this much faster.
MARGIN = 0.03
OFF = ("0", "false", "off", "no")

#: `measure(name, kernel, workspace, budget_s)`: device seconds a run of the candidate's
#: kernel, measured in about `budget_s` of wall time at most (compiling included).
Measure = Callable[[str, WgpuKernel, Workspace, float], float]


class Candidate(Protocol):
    name: str


C = TypeVar("C", bound=Candidate)


def enabled() -> bool:
    """Whether tuning is on (`PYASG_AUTOTUNE` is not "0", "false", "off" or "no").

    >>> import os; os.environ["PYASG_AUTOTUNE"] = "0"; enabled()
    False
    >>> del os.environ["PYASG_AUTOTUNE"]; enabled()
    True
    """
    return os.environ.get("PYASG_AUTOTUNE", "1").strip().lower() not in OFF


def adapter_identity(info: Any = None) -> str:
    """The identity the disk cache is kept per: vendor, device, driver, backend, type.

    >>> adapter_identity({"vendor": "nvidia", "device": "H200", "description": "550.1",
    ...                   "backend_type": "Vulkan", "adapter_type": "DiscreteGPU"})
    'nvidia | H200 | 550.1 | Vulkan | DiscreteGPU'
    """
    info = get_adapter().info if info is None else info
    return " | ".join(str(info.get(k, "?")) for k in
                      ("vendor", "device", "description", "backend_type", "adapter_type"))


def _measure_on_device(name: str, kernel: WgpuKernel, workspace: Workspace,
                       budget_s: float) -> float:
    return device_seconds(kernel, workspace, budget_s)


@dataclass
class Choice:
    """How one key was decided: the plan's name; `how` ("rule", "off", "memory", "disk",
    "measured", "over budget"); the seconds measured per candidate; the tuning time."""

    plan: str
    how: str
    seconds: dict[str, float] = field(default_factory=dict)
    tuning_s: float = 0.0


_DEFAULT_CACHE = object()


class Tuner:
    """Chooses among candidate kernels by timing them (module docstring).

    `measure`, `clock` and `cache` are injectable (tests give a fake timer, a fake
    clock and a cache file of their own); `cache=None` keeps choices in memory only;
    the default is the adapter's file under `tuning_cache.cache_dir()`, found anew at
    each choice (so `PYASG_CACHE_DIR` may change between them).
    """

    def __init__(self, measure: Measure = _measure_on_device,
                 clock: Callable[[], float] = time.perf_counter,
                 cache: Any = _DEFAULT_CACHE,
                 product_budget_s: float = PRODUCT_BUDGET_S,
                 process_budget_s: float = PROCESS_BUDGET_S) -> None:
        self.measure, self.clock = measure, clock
        self.product_budget_s, self.process_budget_s = product_budget_s, process_budget_s
        self._cache = cache
        self._files: dict[Any, TuningCache] = {}
        self._memory: dict[str, str] = {}
        #: seconds this tuner has spent measuring
        self.spent = 0.0
        self.choices: dict[str, Choice] = {}
        #: how many choices were asked for, and the key of the latest (for reports)
        self.asked, self.last = 0, ""

    def cache(self) -> TuningCache | None:
        """The disk cache in use (None: memory only)."""
        if self._cache is not _DEFAULT_CACHE:
            return self._cache
        adapter = adapter_identity()
        path = cache_path(adapter)
        if path not in self._files:
            self._files[path] = TuningCache(path, adapter)
        return self._files[path]

    def clear(self) -> None:
        """Forget this process's choices; the disk cache is read again at the next one."""
        self._memory.clear()
        self.choices.clear()
        for c in [self._cache, *self._files.values()]:
            if isinstance(c, TuningCache):
                c.reload()

    def choose(self, key: str, candidates: Sequence[C], build: Callable[[C], WgpuKernel],
               size: Callable[[tuple], int],
               refine: Callable[[C], Sequence[C]] | None = None) -> C:
        """The candidate to run for problem `key` (module docstring); `size(bound)`: the
        bytes of an ("in", k) or ("out",) binding of its kernels."""
        first = candidates[0]
        self.asked, self.last = self.asked + 1, key
        if not enabled():  # not remembered: tuning may be turned on again
            self.choices[key] = Choice(first.name, "off")
            return first
        if len(candidates) == 1 and refine is None:
            return self._decided(key, first, "rule")
        known = {c.name: c for c in candidates}
        for c in candidates:
            for r in refine(c) if refine else ():
                known.setdefault(r.name, r)
        name = self._memory.get(key)
        if name in known:
            return known[name]
        cache = self.cache()
        entry = cache.get(key) if cache is not None else None
        if entry is not None and entry["plan"] in known:
            return self._decided(key, known[entry["plan"]], "disk", entry.get("seconds", {}))
        if self.spent >= self.process_budget_s:
            self.choices[key] = Choice(first.name, "over budget")
            return first
        start = self.clock()
        workspace = Workspace(size)
        seconds: dict[str, float] = {}
        self._time(candidates, build, workspace, seconds, start)
        if refine is not None and seconds:
            best = min(seconds, key=seconds.get)
            self._time(refine(known[best]), build, workspace, seconds, start)
        tuning = self.clock() - start
        self.spent += tuning
        if first.name not in seconds:  # the rule's own kernel could not be timed
            return self._decided(key, first, "rule", seconds, tuning)
        best = min(seconds, key=seconds.get)
        if seconds[best] > seconds[first.name] * (1 - MARGIN):
            best = first.name
        if cache is not None:
            cache.put(key, {"plan": best, "seconds": seconds, "tuning_s": round(tuning, 4)})
        return self._decided(key, known[best], "measured", seconds, tuning)

    def _time(self, candidates: Sequence[C], build: Callable[[C], WgpuKernel],
              workspace: Workspace, seconds: dict[str, float], start: float) -> None:
        """Time each candidate not yet timed into `seconds`, within the product's budget
        (the first of a product is always timed)."""
        for c in candidates:
            if c.name in seconds:
                continue
            if seconds and self.clock() - start >= self.product_budget_s:
                return
            try:
                left = self.product_budget_s - (self.clock() - start)
                seconds[c.name] = float(self.measure(c.name, build(c), workspace, left))
            except BackendError:  # this device cannot compile it: not a candidate here
                continue

    def _decided(self, key: str, c: C, how: str, seconds: dict | None = None,
                 tuning: float = 0.0) -> C:
        self._memory[key] = c.name
        self.choices[key] = Choice(c.name, how, dict(seconds or {}), tuning)
        return c


#: The process's tuner, which the matmul kernel uses.
TUNER = Tuner()
