"""Status words: how a GPU kernel reports bad input (an index out of range) without raising.

A shader cannot raise. A kernel with a `check` (`WgpuKernel.check`) binds one u32 word
of its executable's status buffer as ("status",) and sets it when it meets bad input;
it stays memory-safe meanwhile (a clamped index). Each call clears the words before
its dispatches and, first, copies the previous call's words into a ring of `HISTORY`
copies: all of it device-side commands, so nothing waits for the GPU. A result of
call c carries `checker(c)`; reading it back (which waits anyway) reads call c's
words — the live ones if c is the latest call, else its copy while it is among the
last `HISTORY` calls — and raises `BackendError` naming the node and the user's line,
as numpy raises for the same input. Calls older than that are not checked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from pyasg.asg.graph import Graph
from pyasg.errors import BackendError
from pyasg.kernels.wgpu.array import create_buffer
from pyasg.kernels.wgpu.device import get_device

#: Calls whose words are kept after the next calls ran.
HISTORY = 8


class StatusWords:
    """The status words of one executable's checking nodes (see the module doc).

    >>> StatusWords.__name__
    'StatusWords'
    """

    def __init__(self, graph: Graph, name: str, checks: dict[int, str]) -> None:
        device = get_device()
        self.graph, self.name, self.checks = graph, name, dict(checks)
        # a bound range must start at a multiple of the device's offset alignment
        self.stride = int(device.limits.get("min-storage-buffer-offset-alignment", 256))
        self.slot = {node: k for k, node in enumerate(sorted(checks))}
        self.nbytes = self.stride * len(self.slot)
        self.words = create_buffer(self.nbytes)
        self.history = create_buffer(self.nbytes * HISTORY)
        self.calls = 0
        self._seen: dict[int, np.ndarray] = {}  # call -> its words, once read

    def binding(self, node: int) -> dict[str, Any]:
        """The resource a checking node's ("status",) binding gets: its word."""
        return {"buffer": self.words, "offset": self.stride * self.slot[node], "size": 4}

    def begin(self, encoder: Any, copy: Callable[[Any, Any, int, int], None]) -> int:
        """Record, before a call's dispatches: the previous call's words into the ring,
        then clear them; returns this call's number."""
        if self.calls:
            copy(self.words, self.history, self.nbytes,
                 ((self.calls - 1) % HISTORY) * self.nbytes)
        encoder.clear_buffer(self.words)
        self.calls += 1
        return self.calls

    def checker(self, call: int) -> Callable[[], None]:
        """What reading a result of call `call` runs: raise if a word of it is set."""
        return lambda: self.check(call)

    def check(self, call: int) -> None:
        """Raise `BackendError` if call `call` set a word (see the module doc)."""
        words = self._seen.get(call)
        if words is None:
            queue = get_device().queue
            if call == self.calls:
                raw = queue.read_buffer(self.words, 0, self.nbytes)
            elif self.calls - call < HISTORY:
                raw = queue.read_buffer(self.history, ((call - 1) % HISTORY) * self.nbytes,
                                        self.nbytes)
            else:
                return  # overwritten: too many calls ran since
            words = np.frombuffer(raw, np.uint32)[:: self.stride // 4].copy()
            if len(self._seen) > HISTORY:
                self._seen.clear()
            self._seen[call] = words
        for node, k in self.slot.items():
            if words[k]:
                op = self.graph.nodes[node]
                raise BackendError(f"{op.op} (node %{node}) of {self.name} met "
                                   f"{self.checks[node]} (call {call}); numpy raises "
                                   f"IndexError for the same input", op.source)
