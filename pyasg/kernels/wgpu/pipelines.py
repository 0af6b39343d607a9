"""Compute pipelines: one per WGSL source text, cached for the process, compiled in parallel.

A pipeline costs a driver compile. On an H200 through NVIDIA's Vulkan driver the LM
benchmark's B32-T256-L6 step has 77 distinct kernels at ~68 ms each: 5.2 s of a 7.9 s
first call on a fresh machine (2026-12-02; a second process finds them in the driver's
own disk cache and takes 0.4 s). wgpu-native's calls release the GIL (cffi), Vulkan lets
pipelines be created from several threads at once, and wgpu-py captures each call's
errors per thread, so `compile_all` gives an executable's missing sources to a pool of
threads before it records its commands; `pipeline` then finds them here.

A source that fails to compile raises `BackendError` naming its node, with the source's
lines numbered. When a parallel compile fails, the missing sources are compiled again
one at a time in the executable's order, so the error is the first failing kernel's,
exactly as without threads.

>>> src = "@compute @workgroup_size(1) fn main() {}"
>>> compile_all([(src, "an empty kernel")])     # doctest: +SKIP
>>> pipeline(src, "an empty kernel") is pipeline(src, "again")   # doctest: +SKIP
True
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pyasg.errors import BackendError
from pyasg.kernels.wgpu.device import get_device

#: WGSL source -> its compute pipeline, for the whole process.
_PIPELINES: dict[str, Any] = {}
#: Threads compiling at once (`PYASG_WGPU_COMPILE_THREADS`; 1 compiles in the caller).
THREADS = int(os.environ.get("PYASG_WGPU_COMPILE_THREADS", min(8, os.cpu_count() or 1)))


def _compile(source: str) -> Any:
    device = get_device()
    module = device.create_shader_module(code=source)
    return device.create_compute_pipeline(layout="auto",
                                          compute={"module": module, "entry_point": "main"})


def _failed(source: str, what: str, error: Exception) -> BackendError:
    numbered = "\n".join(f"{k + 1:4d} {line}" for k, line in enumerate(source.splitlines()))
    return BackendError(f"the WGSL kernel of {what} failed to compile: {error}\n{numbered}")


def pipeline(source: str, what: str) -> Any:
    """The compute pipeline of a WGSL source (cached by text); a compile error names `what`."""
    found = _PIPELINES.get(source)
    if found is None:
        try:
            found = _compile(source)
        except Exception as e:
            raise _failed(source, what, e) from None
        _PIPELINES[source] = found
    return found


def compile_all(kernels: Iterable[tuple[str, str]]) -> None:
    """Compile every (source, what) not cached yet, `THREADS` at a time (module docstring)."""
    missing = {}
    for source, what in kernels:
        if source not in _PIPELINES:
            missing.setdefault(source, what)
    if len(missing) > 1 and THREADS > 1:
        get_device()  # opened once, here, not by racing workers
        with ThreadPoolExecutor(min(THREADS, len(missing))) as pool:
            futures = {source: pool.submit(_compile, source) for source in missing}
        for source, future in futures.items():
            if future.exception() is None:
                _PIPELINES[source] = future.result()
    for source, what in missing.items():  # one at a time: what a thread failed, or all
        pipeline(source, what)
