"""Path arguments checked before use, and files opened only when they are regular files.

Every io entry point passes its path argument through `checked_path` first, so
`None`, a number, a list, an empty string or a name with a NUL character is a
clear error naming the function and the argument, not a `TypeError` from deep in
`open` (or worse: `open(1)` is stdout, and closing it closes stdout).

Readers open through `open_regular`: a FIFO, a device, a socket or a directory
under a file's name is refused before a byte is read. A FIFO would block `open()`
forever waiting for a writer, so the file is opened with `O_NONBLOCK` and checked
with `fstat` on the open descriptor: a file swapped for a FIFO between the check
and the open is caught too.

>>> import tempfile, os
>>> d = tempfile.mkdtemp(); fifo = os.path.join(d, "w.safetensors"); os.mkfifo(fifo)
>>> open_regular(checked_path(fifo, "load", "path"))
Traceback (most recent call last):
pyasg.errors.CheckpointError: .../w.safetensors: is a FIFO (named pipe), not a regular file
...
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from pyasg.errors import CheckpointError, PyasgError, shown, shown_path

#: What a non-regular file is, by its `stat` test: the words an error uses for it.
KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)

# O_NONBLOCK: opening a FIFO returns at once instead of waiting for a writer; O_NOCTTY:
# opening a terminal never makes it ours. Both are 0 where the OS has no such flag.
_READ_FLAGS = (os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
               | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))


def checked_path(path: object, function: str, argument: str = "path",
                 error: type[PyasgError] = CheckpointError) -> Path:
    """`path` as a `Path`, after checking that it can name a file at all.

    A str, bytes or `os.PathLike` that is not empty and holds no NUL character is a
    path; anything else raises `error` naming `function` and `argument`.

    >>> checked_path("runs/w.safetensors", "save").name
    'w.safetensors'
    >>> checked_path(None, "load")
    Traceback (most recent call last):
    pyasg.errors.CheckpointError: load: path must be a file path (str or os.PathLike), got None
    ...
    """
    if isinstance(path, (str, bytes, os.PathLike)):
        try:
            text = os.fsdecode(path)
        except TypeError:  # a PathLike whose __fspath__ returns something else
            text = None
        if text is not None:
            if not text:
                raise error(f"{function}: {argument} is empty; it must name a file")
            if "\0" in text:
                raise error(f"{function}: {argument} {shown(text)} contains a NUL character, "
                            f"which no file name can hold")
            return Path(text)
    raise error(f"{function}: {argument} must be a file path (str or os.PathLike), got "
                f"{shown(path)}" + ("" if path is None else f" ({type(path).__name__})"))


def _kind(mode: int) -> str | None:
    """What a file of this `st_mode` is, if it is not a regular file."""
    if stat.S_ISREG(mode):
        return None
    return next((words for test, words in KINDS if test(mode)), "not a regular file")


def open_regular(path: Path, error: type[PyasgError] = CheckpointError) -> BinaryIO:
    """`path` opened for binary reading, if it is a regular file; else `error` naming it.

    >>> import tempfile
    >>> open_regular(Path(tempfile.mkdtemp()))
    Traceback (most recent call last):
    pyasg.errors.CheckpointError: ...: is a directory, not a regular file
    ...
    """
    try:
        fd = os.open(path, _READ_FLAGS)
    except FileNotFoundError:
        raise error(f"{shown_path(path)}: no such file") from None
    except OSError as e:
        try:  # a socket cannot be opened at all: say what it is rather than ENXIO
            kind = _kind(os.stat(path).st_mode)
        except OSError:
            kind = None
        reason = f"is {kind}, not a regular file" if kind else f"cannot open ({e.strerror or e})"
        raise error(f"{shown_path(path)}: {reason}") from None
    try:
        kind = _kind(os.fstat(fd).st_mode)
        if kind is not None:
            raise error(f"{shown_path(path)}: is {kind}, not a regular file")
        if _READ_FLAGS & getattr(os, "O_NONBLOCK", 0):
            os.set_blocking(fd, True)  # a regular file: reads block as usual again
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
