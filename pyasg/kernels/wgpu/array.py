"""DeviceArray: a tensor that lives in a GPU buffer; numpy arrays go up once, come back
only when asked (`np.asarray(x)`).

The GPU holds float32, int32, uint32 and bool (as u32) — four bytes per element.

>>> import numpy as np
>>> x = DeviceArray.from_numpy(np.arange(3, dtype=np.float32))  # doctest: +SKIP
>>> np.asarray(x)                                               # doctest: +SKIP
array([0., 1., 2.], dtype=float32)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pyasg.asg.types import TensorType
from pyasg.errors import BackendError
from pyasg.kernels.wgpu.device import get_device

GPU_DTYPES = {"float32": np.float32, "int32": np.int32, "uint32": np.uint32, "bool": np.uint32}


class Counters:
    """How often buffers were created and bytes moved (the residency tests read these)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.buffers_created = 0
        self.uploads = 0
        self.upload_bytes = 0
        self.readbacks = 0
        self.submissions = 0
        #: device-to-device copies an executable records (arguments in, results out)
        self.copies = 0
        self.copy_bytes = 0


COUNTERS = Counters()


def check_gpu_type(t: TensorType, what: str) -> None:
    if t.dtype not in GPU_DTYPES:
        raise BackendError(
            f"{what} has dtype {t.dtype}; the wgpu backend computes in float32, int32, uint32 "
            f"and bool. Cast it (x.astype('float32') / 'int32'), or call through pyasg.jit, "
            f"which converts float64 and int64 arguments to float32 and int32 for wgpu")


def create_buffer(nbytes: int) -> Any:
    import wgpu

    device = get_device()
    limit = device.limits.get("max-storage-buffer-binding-size", 2**27)
    if nbytes > limit:
        raise BackendError(f"a {nbytes}-byte tensor exceeds this GPU's largest storage "
                           f"buffer binding ({limit} bytes)")
    COUNTERS.buffers_created += 1
    usage = wgpu.BufferUsage.STORAGE | wgpu.BufferUsage.COPY_SRC | wgpu.BufferUsage.COPY_DST
    return device.create_buffer(size=max(4, (nbytes + 3) // 4 * 4), usage=usage)


class DeviceArray:
    """A tensor in a GPU buffer: `shape`, `dtype`, and the buffer that holds it.

    `np.asarray(x)` (or `x.numpy()`) reads it back; arithmetic happens in graphs.
    An array donated to a step (`pyasg.jit(..., donate_argnums=...)`) gave its memory
    to the step's results: any later use of it raises `BackendError`.
    """

    __array_priority__ = 1000

    def __init__(self, buffer: Any, type: TensorType) -> None:
        self._buffer = buffer
        self.type = type
        #: where the array was donated (the step's name), or None while it is usable
        self.donated_to: str | None = None
        #: run when the values are read back: raises if the kernels that made them met
        #: bad input (`pyasg.kernels.wgpu.status`)
        self.status_check: Any = None

    @property
    def buffer(self) -> Any:
        """The GPU buffer holding the values (a donated array has none)."""
        if self.donated_to is not None:
            raise BackendError(f"this {self.type!r} array was donated to {self.donated_to} "
                               f"(donate_argnums): its memory now holds that step's results; "
                               f"use the arrays the step returned instead")
        return self._buffer

    def donate(self, to: str) -> None:
        """Give the array's memory away: every later use raises `BackendError`."""
        self.donated_to = to

    def rehome(self, buffer: Any) -> None:
        """Move the array to `buffer` (its values were copied there by the caller)."""
        self._buffer = buffer

    @property
    def shape(self) -> tuple[int, ...]:
        return self.type.shape

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.type.dtype)

    @property
    def ndim(self) -> int:
        return self.type.ndim

    @property
    def size(self) -> int:
        return self.type.size

    @classmethod
    def from_numpy(cls, value: object, dtype: str | None = None) -> DeviceArray:
        """Upload `value` (once) into a new buffer."""
        arr = np.asarray(value, dtype=dtype)
        t = TensorType.of(arr)
        check_gpu_type(t, "an uploaded array")
        buffer = create_buffer(t.size * 4)
        upload(buffer, arr)
        return cls(buffer, t)

    def numpy(self) -> np.ndarray:
        """A numpy copy of the values (one read-back)."""
        buffer = self.buffer  # a donated array raises here
        if self.size == 0:
            return np.zeros(self.shape, self.dtype)
        COUNTERS.readbacks += 1
        raw = get_device().queue.read_buffer(buffer, 0, self.size * 4)
        if self.status_check is not None:
            self.status_check()
        arr = np.frombuffer(raw, dtype=GPU_DTYPES[self.type.dtype], count=self.size)
        return arr.astype(self.dtype).reshape(self.shape)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        arr = self.numpy()
        return arr if dtype is None else arr.astype(dtype)

    def __float__(self) -> float:
        return float(self.numpy())

    def __int__(self) -> int:
        return int(self.numpy())

    def item(self) -> Any:
        return self.numpy().item()

    def tolist(self) -> Any:
        return self.numpy().tolist()

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        donated = f", donated to {self.donated_to}" if self.donated_to else ""
        return f"DeviceArray({self.type!r}{donated})"


def upload(buffer: Any, arr: np.ndarray) -> None:
    """Write a numpy array into a buffer (bool as u32)."""
    if arr.size == 0:
        return
    data = np.ascontiguousarray(arr, dtype=GPU_DTYPES[np.dtype(arr.dtype).name])
    COUNTERS.uploads += 1
    COUNTERS.upload_bytes += data.nbytes
    get_device().queue.write_buffer(buffer, 0, data)
