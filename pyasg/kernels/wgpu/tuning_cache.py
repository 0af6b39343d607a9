"""The tuner's disk cache: the plan measured fastest for each problem, one JSON file per adapter.

The file lives in `$PYASG_CACHE_DIR`, else `~/.cache/pyasg`, named by a hash of the
adapter's identity (vendor, device, driver description, backend, adapter type: a new
driver is a new file, since its compiler may prefer other tiles), and holds

    {"version": VERSION, "adapter": "<identity>", "choices": {"<problem key>":
        {"plan": "<plan name>", "seconds": {"<plan name>": s, ...}, "tuning_s": s}}}

A file that is not valid JSON of this shape, or of another `VERSION`, or an entry that
is not a plan name is ignored (as if absent) and replaced at the next write. Writes
merge into what the file holds then (another process may have added choices) and
replace it atomically (a temporary file renamed over it), so a reader never sees half
a file; two processes writing at once lose at most each other's newest choice, which
is then measured again.

>>> import tempfile
>>> cache = TuningCache(Path(tempfile.mkdtemp()) / "t.json", "an adapter")
>>> cache.put("m64 n64 k64", {"plan": "64x64x16/4x4", "seconds": {}})
>>> TuningCache(cache.path, "an adapter").get("m64 n64 k64")["plan"]
'64x64x16/4x4'
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

#: The format of the file; a file of another version is ignored.
VERSION = 1


def cache_dir() -> Path:
    """`$PYASG_CACHE_DIR`, else `~/.cache/pyasg`.

    >>> import os; os.environ["PYASG_CACHE_DIR"] = "/tmp/x"; str(cache_dir())
    '/tmp/x'
    >>> del os.environ["PYASG_CACHE_DIR"]
    """
    given = os.environ.get("PYASG_CACHE_DIR")
    return Path(given) if given else Path.home() / ".cache" / "pyasg"


def cache_path(adapter: str, kind: str = "matmul") -> Path:
    """The cache file of `kind` choices on `adapter` (an identity string).

    >>> cache_path("llvmpipe | Mesa 22.3.6 | Vulkan CPU").name
    'matmul-dd72ecefa6513867.json'
    """
    digest = hashlib.sha256(adapter.encode()).hexdigest()[:16]
    return cache_dir() / f"{kind}-{digest}.json"


def _valid(entry: Any) -> bool:
    return isinstance(entry, dict) and isinstance(entry.get("plan"), str)


class TuningCache:
    """The choices of one adapter's file at `path` (module docstring)."""

    def __init__(self, path: Path, adapter: str) -> None:
        self.path, self.adapter = Path(path), adapter
        self._choices: dict[str, dict] | None = None

    def _read(self) -> dict[str, dict]:
        """The file's valid choices ({} for a missing or corrupt file)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError):
            return {}
        if not isinstance(data, dict) or data.get("version") != VERSION \
                or not isinstance(data.get("choices"), dict):
            return {}
        return {k: v for k, v in data["choices"].items() if isinstance(k, str) and _valid(v)}

    def get(self, key: str) -> dict | None:
        """The entry of problem `key`, or None (the file is read once, then remembered)."""
        if self._choices is None:
            self._choices = self._read()
        return self._choices.get(key)

    def reload(self) -> None:
        """Forget what was read: the next `get` reads the file again."""
        self._choices = None

    def put(self, key: str, entry: dict) -> None:
        """Record `entry` for `key`, merged into the file's current choices. A cache that
        cannot be written (a read-only home) is not an error: the choice is kept in
        memory, and measured again in the next process."""
        choices = self._read()
        choices[key] = entry
        self._choices = dict(choices)
        data = {"version": VERSION, "adapter": self.adapter, "choices": choices}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name,
                                       suffix=".tmp")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    json.dump(data, f, indent=1, sort_keys=True)
                os.replace(tmp, self.path)
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError:
            pass
