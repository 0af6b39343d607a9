"""The backends by name, and the default one.

numpy and the reference backend are always there; wgpu is imported only when it is
asked for, because it needs the optional `wgpu` package (and a GPU adapter). A
backend object is made once per process.

>>> get_backend("numpy").name, get_backend("reference").name
('numpy', 'reference')
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cache

from pyasg.compile.protocol import Backend
from pyasg.errors import BackendError, shown
from pyasg.kernels.numpy import NumpyBackend
from pyasg.kernels.reference import ReferenceBackend


def _wgpu() -> Backend:
    try:
        from pyasg.kernels.wgpu import WgpuBackend  # optional: needs the `wgpu` package
    except ImportError as e:
        raise BackendError("the wgpu backend needs the `wgpu` package: "
                           "pip install 'pyasg[gpu]'") from e
    return WgpuBackend()


#: name -> the function that makes the backend; adding a backend is one line here.
BACKENDS: dict[str, Callable[[], Backend]] = {
    "numpy": NumpyBackend, "reference": ReferenceBackend, "wgpu": _wgpu}
_default_backend: str | None = None


@cache
def _make(name: str) -> Backend:
    return BACKENDS[name]()


def check_backend(backend: object, what: str = "backend") -> None:
    """Raise `BackendError` unless `backend` is a `Backend` or the name of one; nothing is
    made (so `jit(f, backend="wgpu")` checks the name without opening a GPU).

    >>> check_backend(5)
    Traceback (most recent call last):
      ...
    pyasg.errors.BackendError: backend must be a backend's name (...) or a Backend, got int 5...
    """
    if isinstance(backend, Backend):
        return
    names = ", ".join(sorted(BACKENDS))
    if not isinstance(backend, str):
        raise BackendError(f"{what} must be a backend's name ({names}) or a Backend, got "
                           f"{type(backend).__name__} {shown(backend, 60)}")
    if backend not in BACKENDS:
        raise BackendError(f"unknown {what} {shown(backend, 60)}; available: {names}")


def get_backend(backend: str | Backend) -> Backend:
    """The backend object for a name (made once), or `backend` itself if it is one.

    >>> get_backend("nope")
    Traceback (most recent call last):
      ...
    pyasg.errors.BackendError: unknown backend 'nope'; available: numpy, reference, wgpu...
    """
    check_backend(backend)
    if isinstance(backend, Backend):
        return backend
    return _make(backend)


def set_default_backend(name: str) -> None:
    """Choose the backend `@pyasg.trace` uses (also settable with PYASG_BACKEND).

    >>> set_default_backend("numpy"); default_backend()
    'numpy'
    """
    global _default_backend
    if not isinstance(name, str):  # a Backend object has no name to store
        check_backend(name, "the default backend")
        raise BackendError(f"set_default_backend takes a backend's name, got "
                           f"{type(name).__name__} {shown(name, 60)}")
    get_backend(name)
    _default_backend = name


def default_backend() -> str:
    """The backend `@pyasg.trace` uses: set_default_backend, else PYASG_BACKEND, else numpy."""
    return _default_backend or os.environ.get("PYASG_BACKEND") or "numpy"
