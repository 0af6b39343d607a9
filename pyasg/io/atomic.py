"""Atomic file writes: a temporary name in the same directory, fsync, rename, fsync of
the directory — so a process killed mid-save leaves the old file (or none), never a
half-written one; the file gets the permissions `open()` would have given it."""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

from pyasg.errors import CheckpointError, PyasgError, shown_path
from pyasg.io.paths import checked_path

PathLike = str | os.PathLike


def temp_name(path: Path) -> Path:
    """A fresh temporary name beside `path`: hidden, ending in `.tmp`, unique per writer."""
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")


def file_mode(path: Path) -> int:
    """The permission bits `open(path, "w")` would leave `path` with: those of the
    regular file already there (writing keeps them), else 0o666 less the umask.

    The umask is read by creating an empty file beside `path` (a temporary name, removed
    at once): the kernel applies it, and any default ACL of the directory, exactly as it
    would for `open()`; `os.umask` could only be read by changing it for every thread.

    >>> import tempfile, os
    >>> old = os.umask(0o027)
    >>> mode = file_mode(Path(tempfile.mkdtemp()) / "new.txt")
    >>> _ = os.umask(old)
    >>> oct(mode)
    '0o640'
    """
    try:
        existing = os.stat(path)
    except OSError:
        existing = None
    if existing is not None and stat.S_ISREG(existing.st_mode):
        return stat.S_IMODE(existing.st_mode)
    probe = temp_name(path)
    fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        return stat.S_IMODE(os.fstat(fd).st_mode)
    finally:
        os.close(fd)
        with suppress(OSError):
            os.unlink(probe)


def atomic_write(path: PathLike, write: Callable[[Path], None],
                 error: type[PyasgError] = CheckpointError) -> Path:
    """Create `path` so that it is either absent/old or complete, never half-written.

    `write(tmp)` creates the file at a temporary name in the same directory; it is
    then flushed to disk (fsync), renamed over `path` (atomic within a file system)
    and the directory is fsynced so the rename itself survives a power cut. A
    process killed at any moment leaves the old file (or none) under `path`, and at
    worst a stray `.….tmp` file. Failures raise `error` naming the path, and so does a
    `path` that is not a file path (None, a number, a NUL character, a directory name).

    The file gets the permissions `open()` would give it (`file_mode`): those of the
    file it replaces, else 0o666 less the umask, whatever mode `write` created the
    temporary with (a private 0o600 would hide a shared checkpoint from its group).

    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "hello.txt")
    >>> _ = atomic_write(p, lambda tmp: tmp.write_text("hi"))
    >>> open(p).read(), sorted(os.listdir(os.path.dirname(p)))
    ('hi', ['hello.txt'])
    """
    path = checked_path(path, "pyasg.io.atomic_write", error=error)
    if path.name in ("", ".", ".."):
        raise error(f"{shown_path(path)}: names a directory, not a file to write")
    try:
        parent_is_dir = path.parent.is_dir()
    except OSError as e:  # a name too long to stat, a parent we may not search
        raise error(f"{shown_path(path)}: cannot write ({e.strerror or e})") from None
    if not parent_is_dir:
        raise error(f"{shown_path(path)}: the directory {shown_path(path.parent)} does not exist")
    tmp = temp_name(path)
    try:
        mode = file_mode(path)
        write(tmp)
        fd = os.open(tmp, os.O_RDWR)  # writable: Windows' fsync needs that
        try:
            if hasattr(os, "fchmod"):  # on the open file: a mode without write is fine
                os.fchmod(fd, mode)
            os.fsync(fd)
        finally:
            os.close(fd)
        if not hasattr(os, "fchmod"):  # Windows: only the read-only flag exists
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException as e:  # KeyboardInterrupt too: never leave the temporary behind
        with suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise error(f"{shown_path(path)}: cannot write ({e.strerror or e})") from None
        raise
    fsync_dir(path.parent)
    return path


def fsync_dir(directory: Path) -> None:
    """Flush a directory's entries (a rename) to disk; a no-op where that is impossible."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # Windows cannot open directories; its renames are journalled anyway
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on directories; nothing more can be done
    finally:
        os.close(fd)
