"""What a backend is to the compiler: `Backend`, the `Executable` it returns, `FuseOptions`.

A backend is one small object: its `name`, the dtypes it `converts` (those its
device lacks, computed in others), its `fusion_options()` (how `fuse` may group ops
for it, or None for no fusion) and `compile(graph, name, donated)`, which returns an
`Executable`: a callable taking one array per graph input and returning a tuple of
arrays, with its `graph` (what it runs, after fusion) and `kernel_count`. Adding a
backend is one folder under `pyasg/kernels/` with a class like this and a line in
`pyasg.compile.registry`.

>>> FuseOptions(max_inputs=7).matmul_epilogue
False
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from pyasg.asg.graph import Graph
from pyasg.errors import PyasgError


@dataclass(frozen=True)
class FuseOptions:
    """How `pyasg.transforms.fuse` may group ops for a backend (each field is read by one
    of its rules): the input cap (storage buffers less the output on wgpu), the depth
    cap, whether a matmul heads an elementwise epilogue, whether a reduction takes one,
    whether small shared values are recomputed in each reader's group, and whether a
    matmul reads its operands through views and stores its product transposed."""

    max_inputs: int = 7
    max_depth: int = 32
    matmul_epilogue: bool = False
    reduction_epilogue: bool = True
    #: an elementwise value read by several groups, at most this fraction of the root's
    #: size, is computed again inside each of them (0: never)
    recompute_fraction: float = 0.0
    matmul_views: bool = False

    def __post_init__(self) -> None:
        if self.max_inputs < 1 or self.max_depth < 1:
            raise PyasgError(f"fuse: max_inputs and max_depth must be >= 1, got "
                             f"{self.max_inputs} and {self.max_depth}")


class Executable(Protocol):
    """A compiled graph: `executable(*arrays)` returns one array per graph output."""

    graph: Graph
    kernel_count: int

    def __call__(self, *arrays: Any) -> tuple[Any, ...]: ...


class Backend(ABC):
    """Runs graphs: the one class each backend folder implements (see the module doc)."""

    #: The name `pyasg.jit(backend=...)` and `PYASG_BACKEND` use.
    name: ClassVar[str]
    #: Dtypes the device lacks and what they are computed in (wgpu: float64 -> float32).
    converts: ClassVar[Mapping[str, str]] = {}
    #: The array type that lives on the device: `pyasg.jit` passes such arguments to
    #: the executable as they are (everything else goes through `np.asarray`).
    device_array: ClassVar[type | None] = None

    def fusion_options(self) -> FuseOptions | None:
        """How `fuse` may group ops for this backend; None: it runs graphs unfused."""
        return None

    @abstractmethod
    def compile(self, graph: Graph, name: str = "graph",
                donated: Collection[int] = ()) -> Executable:
        """Resolve every kernel once, plan memory, and return the executable.

        `donated`: positions in `graph.inputs` whose arguments the caller gives away,
        so that outputs of their types may reuse their memory (a backend may ignore it).
        """

    def __repr__(self) -> str:
        return f"<pyasg backend {self.name}>"
