"""Choosing the GPU: adapter selection, the device, its limits, and clear errors.

`PYASG_WGPU_ADAPTER` picks an adapter by a substring of its name (case-insensitive);
otherwise a discrete GPU is preferred, then an integrated one, then a CPU
rasteriser such as Mesa's lavapipe. The device is created once per process.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

from pyasg.errors import BackendError

NO_ADAPTER_HELP = (
    "wgpu found no GPU adapter. Install a Vulkan driver: on Debian/Ubuntu "
    "`apt-get install mesa-vulkan-drivers` gives lavapipe (a CPU Vulkan driver, enough "
    "for tests); NVIDIA/AMD/Intel GPUs need their vendor's driver with its Vulkan ICD "
    "(if the loader libvulkan1 is missing, install it; if the driver's ICD is not found, "
    "set VK_DRIVER_FILES to its JSON file, e.g. "
    "/usr/share/vulkan/icd.d/nvidia_icd.json)."
)

#: Device features requested where the adapter offers them: timestamp queries, which
#: only `pyasg.profile` uses (pyasg.kernels.wgpu.profile).
OPTIONAL_FEATURES = ("timestamp-query", "timestamp-query-inside-passes")

_RANK = {"discrete-gpu": 0, "DiscreteGPU": 0, "integrated-gpu": 1, "IntegratedGPU": 1,
         "cpu": 3, "CPU": 3}


def _wgpu() -> Any:
    try:
        import wgpu
    except ImportError as e:  # pragma: no cover - the gpu extra is not installed
        raise BackendError("the wgpu backend needs the `wgpu` package: "
                           "pip install 'pyasg[gpu]'") from e
    return wgpu


def adapter_name(adapter: Any) -> str:
    info = adapter.info
    return f"{info.get('device', '?')} ({info.get('adapter_type', '?')}, " \
           f"{info.get('backend_type', '?')})"


@lru_cache(maxsize=1)
def get_adapter() -> Any:
    """The adapter pyasg uses (see the module docstring for the choice)."""
    wgpu = _wgpu()
    try:
        adapters = list(wgpu.gpu.enumerate_adapters_sync())
    except Exception as e:  # the loader itself is missing or broken
        raise BackendError(f"{NO_ADAPTER_HELP} ({type(e).__name__}: {e})") from None
    if not adapters:
        raise BackendError(NO_ADAPTER_HELP)
    wanted = os.environ.get("PYASG_WGPU_ADAPTER")
    if wanted:
        chosen = [a for a in adapters if wanted.lower() in adapter_name(a).lower()]
        if not chosen:
            names = "; ".join(adapter_name(a) for a in adapters)
            raise BackendError(f"PYASG_WGPU_ADAPTER={wanted!r} matches no adapter; found: {names}")
        return chosen[0]
    return min(adapters, key=lambda a: _RANK.get(a.info.get("adapter_type", ""), 2))


@lru_cache(maxsize=1)
def get_device() -> Any:
    """The device (created once), with the adapter's full storage limits requested and
    the `OPTIONAL_FEATURES` it offers."""
    adapter = get_adapter()
    limits = adapter.limits
    wanted = {k: limits[k] for k in ("max-storage-buffer-binding-size", "max-buffer-size",
                                      "max-storage-buffers-per-shader-stage",
                                      "max-compute-workgroup-storage-size",
                                      "max-compute-invocations-per-workgroup")
              if k in limits}
    features = [f for f in OPTIONAL_FEATURES if f in adapter.features]
    return adapter.request_device_sync(required_features=features, required_limits=wanted)
