"""The exceptions pyasg raises on bad input (every one a `PyasgError`), and `user_source`.

An error names where it happened: the user's ``file:line``, found by `user_source`
when the error is made (the innermost frame outside the pyasg package), unless the
code raising it passes a better `source` (a graph node's recorded line) or None.

This module imports nothing of pyasg, so every layer (including `asg`) may use it.

>>> str(ShapeError("bad", source="model.py:3"))
'bad\\n  at model.py:3'
"""

from __future__ import annotations

import os
import reprlib
import sys

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_SHORT_NAMES: dict[str, str] = {}


def _short(filename: str) -> str:
    short = _SHORT_NAMES.get(filename)
    if short is None:
        cwd = os.getcwd() + os.sep
        short = filename[len(cwd):] if filename.startswith(cwd) else os.path.basename(filename)
        _SHORT_NAMES[filename] = short
    return short


#: The most characters an error message quotes of one value (besides the cut marker).
MAX_QUOTED = 160

_REPR = reprlib.Repr()
# reprlib cuts inside containers while it writes, so a huge or deeply nested value costs
# no more than its quotation (a plain repr would write all of it first, or recurse)
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 3, MAX_QUOTED, MAX_QUOTED
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 8


def _ends(limit: int, head_share: float) -> tuple[int, int]:
    tail = limit - int(limit * head_share)
    return limit - tail, tail


def shorten(text: str, limit: int = MAX_QUOTED, head_share: float = 2 / 3) -> str:
    """`text` itself if it has at most `limit` characters, else its start (`head_share`
    of `limit`) and its end around a marker that says how many characters were cut.

    >>> shorten("x" * 1000, 30)
    'xxxxxxxxxxxxxxxxxxxx…[970 more]…xxxxxxxxxx'
    """
    if len(text) <= limit:
        return text
    head, tail = _ends(limit, head_share)
    return f"{text[:head]}…[{len(text) - head - tail} more]…{text[len(text) - tail:]}"


def shown(value: object, limit: int = MAX_QUOTED, with_type: bool = False) -> str:
    """`repr(value)` as an error message may quote it: cut to about `limit` characters
    (its two ends kept), since a message must never echo a megabyte of input; never
    raises (a value whose repr fails is shown by its type). `with_type` puts the
    type's name first, for messages that say what was given where a kind was due.

    >>> shown("a" * 10_000, 20)
    "'aaaaaaaaaaaaa'…[9980 more]…'aaaaaaa'"
    >>> shown([1, 2]), shown(1.5, with_type=True)
    ('[1, 2]', 'float 1.5')
    """
    if isinstance(value, (str, bytes)) and len(value) > limit:
        # quote the two ends only: repr-ing a megabyte to cut it would cost the megabyte
        head, tail = _ends(limit, 2 / 3)
        text = (f"{value[:head]!r}…[{len(value) - head - tail} more]…"
                f"{value[len(value) - tail:]!r}")
    else:
        try:
            text = shorten(_REPR.repr(value), limit)
        except Exception:  # noqa: BLE001 - a broken __repr__ must not hide the real error
            text = f"<{type(value).__name__}>"
    return f"{type(value).__name__} {text}" if with_type else text


def shown_path(path: object, limit: int = MAX_QUOTED) -> str:
    """A path as an error message shows it: its text, cut to about `limit` characters,
    keeping more of the end (the file name) than of the start.

    >>> shown_path("/data/" + "d" * 500 + "/model.safetensors", 40)
    '/data/ddddddd…[484 more]…ddddddddd/model.safetensors'
    """
    if isinstance(path, (str, bytes, os.PathLike)):
        try:
            text = os.fsdecode(path)
        except Exception:  # noqa: BLE001 - a PathLike whose __fspath__ fails
            return shown(path, limit)
        return shorten(text, limit, head_share=1 / 3)
    return shown(path, limit)


#: pyasg's own examples are user code: their model's lines are what a node's source names.
_EXAMPLES_DIR = os.path.join(_PACKAGE_DIR, "examples") + os.sep


def _is_launcher(frame: object) -> bool:
    """Whether `frame` is a console-script wrapper of the `pyasg` command (``bin/pyasg``:
    ``from pyasg.cli import main; sys.exit(main())``), which is nobody's model."""
    main = frame.f_globals.get("main")  # type: ignore[attr-defined]
    return frame.f_globals.get("__name__") == "__main__" and \
        getattr(main, "__module__", None) == "pyasg.cli"  # type: ignore[attr-defined]


def _is_user_file(filename: str) -> bool:
    if filename.startswith("<frozen"):
        return False
    return not filename.startswith(_PACKAGE_DIR) or filename.startswith(_EXAMPLES_DIR)


def user_source() -> str | None:
    """`file:line` of the innermost caller that is user code (None if there is none): a
    frame outside the pyasg package or in its examples (`pyasg demo` runs
    ``pyasg/examples/charlm.py``), never the ``pyasg`` command's launcher script.

    >>> user_source() is None or ":" in user_source()
    True
    """
    frame = sys._getframe(1)
    while frame is not None:
        if _is_user_file(frame.f_code.co_filename) and not _is_launcher(frame):
            return f"{_short(frame.f_code.co_filename)}:{frame.f_lineno}"
        frame = frame.f_back
    return None


class _Here:
    """The default `source` of an error: the user's line where it is made."""

    def __repr__(self) -> str:
        return "HERE"


HERE = _Here()


class PyasgError(Exception):
    """Base class of every error pyasg raises on bad input.

    `source` is the user's ``file:line`` that caused it: by default where the error is
    made (`user_source`); pass a node's recorded source instead, or None for none.
    """

    def __init__(self, message: str, source: str | None | _Here = HERE) -> None:
        if source is HERE:
            source = user_source()
        if not isinstance(message, str):  # a user's value raised as the message
            message = shown(message)
        if source is not None and not isinstance(source, str):
            source = shown(source)
        self.message = message
        self.source = source
        super().__init__(f"{message}\n  at {source}" if source else message)


class ShapeError(PyasgError):
    """Operand shapes or dtypes do not fit the operation."""


class TraceError(PyasgError):
    """A traced value was used as Python data, or a tracer outlived its trace."""


class GradError(PyasgError):
    """`grad` was asked for something it cannot differentiate."""


class VmapError(PyasgError, ValueError):
    """`vmap` was given axes that do not fit its arguments or results (a ValueError, as
    JAX's), or cannot batch an op."""


class GraphFormatError(PyasgError):
    """A serialised graph is malformed, truncated or tampered with."""


class BackendError(PyasgError):
    """A backend is unknown, unavailable, or cannot run this graph."""


class CheckpointError(PyasgError):
    """A weights or checkpoint file is missing, damaged or does not match."""


class NoForwardRuleError(GradError):
    """Forward mode reached an op that has no JVP rule (`transforms.jvp.NO_JVP` says why)."""


class TangentError(GradError):
    """`jvp` tangents do not fit their primals: the structure, a shape or a dtype differs."""


class IntegerTangentError(TangentError):
    """A float tangent was given for an integer or bool primal (pyasg has no float0: the
    tangent of such a primal has the primal's own dtype, and its values are ignored)."""


class CustomDerivativeError(GradError):
    """A `custom_vjp` / `custom_jvp` function or its rules were defined or used wrongly."""


class UnsavableGraphError(GraphFormatError):
    """A graph holds what a file cannot: a call of a custom-derivative function, whose
    rules are Python code (saving the primal alone would change its gradients)."""
class ControlFlowError(PyasgError):
    """A `scan`, `cond`, `while_loop`, `fori_loop` or `checkpoint` was called wrongly."""


class CarryTypeError(ControlFlowError):
    """A loop body returned a carry of another structure, shape or dtype than it was given."""


class BranchMismatchError(ControlFlowError):
    """The two branches of a `cond` return values of different structures, shapes or dtypes."""
