"""Runnable examples: each is a module here with `main(argv) -> dict[str, float]`.

An example is a module ``pyasg/examples/<name>.py`` (a name not starting with ``_``)
whose docstring's first line describes it in one line, and whose
``main(argv: list[str] | None = None) -> dict[str, float]`` parses its own flags (at
least ``--steps N`` and ``--seed S``; see `pyasg.examples._common.example_parser`),
trains, prints its final metric and returns its metrics, "first_loss" and
"final_loss" among them. Each also runs as a script, ``python pyasg/examples/<name>.py``.
The examples ship inside the package so that ``pyasg run NAME`` works from an installed
wheel; the repository's root ``examples/`` is a link to this folder.

>>> "charlm" in available()
True
>>> run("nope", [])
Traceback (most recent call last):
...
pyasg.examples.UnknownExampleError: unknown example 'nope'; choose one of ...
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import pkgutil
from collections.abc import Sequence
from pathlib import Path

from pyasg.errors import PyasgError

__all__ = ["UnknownExampleError", "available", "describe", "run"]


class UnknownExampleError(PyasgError):
    """No example has that name."""


def _names() -> list[str]:
    # Sorted, so that listings and error messages are the same on every machine.
    return sorted(m.name for m in pkgutil.iter_modules(__path__)
                  if not m.name.startswith("_") and not m.ispkg)


def describe(name: str) -> str:
    """The first line of example `name`'s module docstring, read without importing it.

    Reading the source (not importing) keeps ``pyasg examples`` fast and lets one
    broken example not hide the others.

    >>> describe("charlm").startswith("A character-level")
    True
    """
    _check(name)
    spec = importlib.util.find_spec(f"{__name__}.{name}")
    origin = spec.origin if spec is not None else None
    try:
        source = Path(origin).read_text(encoding="utf-8") if origin else ""
        doc = ast.get_docstring(ast.parse(source)) or ""
    except (OSError, SyntaxError, ValueError) as e:
        return f"(cannot read its description: {e})"
    return doc.strip().splitlines()[0] if doc.strip() else "(no description)"


def available() -> dict[str, str]:
    """Every example, name -> one-line description, in alphabetical order.

    >>> list(available())[:1] == sorted(available())[:1]
    True
    """
    return {name: describe(name) for name in _names()}


def _check(name: str) -> None:
    names = _names()
    if name not in names:
        raise UnknownExampleError(
            f"unknown example {name!r}; choose one of {', '.join(names) or '(none found)'}")


def run(name: str, argv: Sequence[str] | None = None) -> dict[str, float]:
    """Run example `name` with command-line arguments `argv`; return its metrics.

    Raises `UnknownExampleError` (a `PyasgError`) naming the examples there are.

    >>> metrics = run("charlm", ["--steps", "2"])  # doctest: +SKIP
    """
    _check(name)
    module = importlib.import_module(f"{__name__}.{name}")
    return module.main(list(argv) if argv is not None else [])
