"""Choosing the GPU: adapter selection, the device, its limits, and clear errors.

`PYASG_WGPU_ADAPTER` picks an adapter by a substring of its name (case-insensitive);
otherwise a discrete GPU is preferred, then an integrated one, then a CPU
rasteriser such as Mesa's lavapipe. The device is created once per process.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
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


def quiet_wayland_probe() -> str | None:
    """Point XDG_RUNTIME_DIR at a private temporary directory when it is unset, relative
    or not a directory; returns the directory made (None when the variable was usable).

    Why: creating the Vulkan instance, Mesa probes for a Wayland display, and
    libwayland prints "error: XDG_RUNTIME_DIR is invalid or not set" (four times) when
    the variable is missing or not an absolute path, as it is when run headless or as
    root over ssh or in a container. pyasg computes and needs no display; with an empty
    private directory (mode 0700, as the XDG spec wants; removed at exit) the probe
    finds no Wayland socket and stays silent. A usable directory is left alone, so a
    real Wayland session is never redirected.

    >>> import os
    >>> saved = dict(os.environ)
    >>> os.environ["XDG_RUNTIME_DIR"] = "relative"
    >>> made = quiet_wayland_probe()
    >>> os.environ["XDG_RUNTIME_DIR"] == made and os.path.isdir(made)
    True
    >>> quiet_wayland_probe() is None  # now usable: left as it is
    True
    >>> os.environ.clear(); os.environ.update(saved)
    """
    current = os.environ.get("XDG_RUNTIME_DIR", "")
    if os.path.isabs(current) and os.path.isdir(current):
        return None
    made = tempfile.mkdtemp(prefix="pyasg-xdg-runtime-")  # mode 0700
    atexit.register(shutil.rmtree, made, ignore_errors=True)
    os.environ["XDG_RUNTIME_DIR"] = made
    return made


@lru_cache(maxsize=1)
def get_adapter() -> Any:
    """The adapter pyasg uses (see the module docstring for the choice)."""
    wgpu = _wgpu()
    quiet_wayland_probe()  # before the Vulkan instance exists: see its docstring
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
