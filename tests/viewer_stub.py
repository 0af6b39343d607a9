"""A stand-in viewer for tests: logs each message it receives to a file, exits on Close.

The file gets one JSON line ``{"ready": lang, "kwargs": {...}}``, then each received
message's text (after checking it with `decode`), one per line.
"""

from __future__ import annotations

import json
import queue as queue_module
import time
from typing import Any

from pyasg.viewer.protocol import decode, encode_watch


def run(queue: Any, lang: str, path: str, wait: float = 0.0, idle: float = 60.0,
        requests: Any = None, watch: dict[str, Any] | None = None) -> None:
    """Log messages from `queue` to `path`; `wait` seconds before reading; give up after
    `idle` seconds without a message (so a failed test leaves no process behind).
    `watch` ({"name", "kind", "node", "every"}) is sent back on `requests` at once."""
    with open(path, "a", encoding="utf-8") as log:
        log.write(json.dumps({"ready": lang, "kwargs": {"wait": wait}}) + "\n")
        log.flush()
        if watch is not None and requests is not None:
            requests.put(encode_watch(**watch))
        time.sleep(wait)
        while True:
            try:
                text = queue.get(timeout=idle)
            except queue_module.Empty:
                return
            message = decode(text)
            log.write(text + "\n")
            log.flush()
            if message == {"type": "Close"}:
                return
