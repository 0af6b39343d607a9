"""The `pyasg` command: the demo, the examples, the viewer, and what this machine can use.

- ``pyasg demo [--steps N] [--backend numpy|wgpu | --gpu] [--visualize] [--lang en|ru]
  [--save DIR] [--resume DIR] ...`` trains a small character-level transformer on
  Python's own standard library and prints a sample (`pyasg.examples.charlm`).
- ``pyasg examples`` lists the examples; ``pyasg run NAME [ARGS...]`` runs one, ARGS
  going to its own flags (``pyasg run charlm`` is ``pyasg demo``).
- ``pyasg view GRAPH.json [--lang en|ru]`` opens a saved graph in the viewer.
- ``pyasg info`` prints versions, the backends there are and the GPU adapter found.
- ``pyasg --version``; ``pyasg help``, or no command at all, prints the help.

Bad arguments anywhere give one line, ``pyasg: error: ...``, and exit code 2; a
`PyasgError` while a command runs gives one line and exit code 1.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import platform
import sys
from collections.abc import Callable, Sequence

from pyasg import events, viewer
from pyasg._version import __version__
from pyasg.errors import PyasgError
from pyasg.examples import _names, available, run
from pyasg.examples._common import OneLineParser
from pyasg.io import load_graph

#: Optional backends, by import name, with the extra that installs each.
OPTIONAL_BACKENDS: dict[str, str] = {"wgpu": "gpu", "dearpygui": "viewer"}

#: Commands whose arguments all belong to an example's own parser (argparse cannot
#: forward "--steps 5" through a subcommand's REMAINDER when it comes first).
FORWARDED: dict[str, str] = {"demo": "charlm"}


def _version() -> str:
    """The installed pyasg version."""
    return __version__


def _distribution_version(name: str) -> str | None:
    """The version of distribution `name`, or None when it is not installed."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _adapter() -> tuple[bool, str]:
    """(usable, one line): the wgpu adapter pyasg would use, or why there is none."""
    if importlib.util.find_spec("wgpu") is None:
        return False, 'none: wgpu is not installed (pip install "pyasg[gpu]")'
    try:
        from pyasg.kernels.wgpu.device import adapter_name, get_adapter  # optional: wgpu

        adapter = get_adapter()
    except Exception as e:  # noqa: BLE001 - any failure here is the answer to "why none"
        message = getattr(e, "message", None) or f"{type(e).__name__}: {e}"
        return False, "none: " + " ".join(str(message).split())
    line = adapter_name(adapter)
    if adapter.info.get("adapter_type") in ("cpu", "CPU"):
        line += (" - a CPU adapter: a software Vulkan driver such as Mesa's lavapipe "
                 "(right answers, CPU speed; no GPU was found)")
    return True, line


def _info() -> str:
    """Versions, which optional backends can be found, and the GPU adapter, one per line.

    A package is looked up with `importlib.util.find_spec`, so "found" means installed;
    the adapter line says whether wgpu can actually reach a GPU (or a CPU driver).
    """
    numpy = _distribution_version("numpy") or "not installed"
    lines = [
        f"pyasg      {_version()}",
        f"python     {platform.python_version()} ({sys.executable})",
        f"numpy      {numpy}",
    ]
    for module, extra in OPTIONAL_BACKENDS.items():
        if importlib.util.find_spec(module) is None:
            state = f'not installed (pip install "pyasg[{extra}]")'
        else:
            state = f"found {_distribution_version(module) or ''}".rstrip()
        lines.append(f"{module:<10} {state}")
    usable, adapter = _adapter()
    lines.append(f"adapter    {adapter}")
    lines.append(f"backends   numpy{', wgpu' if usable else ''} (use with --backend)")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="pyasg",
        description="pyasg: Python functions traced into an Abstract Semantic Graph.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("help", help="show this help")
    commands.add_parser("demo", add_help=False,
                        help="train a small character-level transformer on Python's own "
                             "source and print a sample (pyasg demo --help for its flags)")
    commands.add_parser("examples", help="list the examples")
    run = commands.add_parser("run", help="run an example: pyasg run NAME [ARGS...]")
    run.add_argument("name", nargs="?", help="the example (see pyasg examples)")
    run.add_argument("args", nargs=argparse.REMAINDER, help="the example's own flags")
    commands.add_parser("info", help="show versions, the backends and the GPU adapter")
    view = commands.add_parser("view", help="open a saved graph file (pyasg.save_graph) "
                                            "in the viewer")
    view.add_argument("graph", help="the graph's JSON file")
    view.add_argument("--lang", default="en",
                      help="language of the explanations: en or ru (others fall back to en)")
    return parser


def _view(path: str, lang: str) -> int:
    """Open a graph file in the viewer and wait until its window is closed."""
    try:
        graph = load_graph(path)
    except PyasgError as e:
        print(f"pyasg view: {e.message}", file=sys.stderr)
        return 2
    handle = viewer.launch(lang=lang)
    name = path.rsplit("/", 1)[-1].removesuffix(".json")
    events.publish(events.GraphReady(name, graph, "forward"))
    handle.process.join()
    return 0


def _examples() -> str:

    listing = available()
    width = max(map(len, listing), default=0)
    lines = [f"  {name:<{width}}  {text}" for name, text in listing.items()]
    return "\n".join(["examples (pyasg run NAME [--steps N] [--seed S] ...):", *lines])


def _run_example(name: str | None, args: Sequence[str], command: str | None = None) -> int:

    if name is None or name not in _names():
        what = "which example? give a NAME" if name is None else f"unknown example {name!r}"
        return _usage_error(f"{what}; choose one of {', '.join(_names())}")
    # An example's parser takes its name from sys.argv[0]; make its help and its errors
    # name the command people typed ("pyasg demo", "pyasg run charlm").
    saved, sys.argv[0] = sys.argv[0], command or f"pyasg run {name}"
    try:
        run(name, args)
    finally:
        sys.argv[0] = saved
    return 0


def _usage_error(message: str) -> int:
    print(f"pyasg: error: {message}", file=sys.stderr)
    return 2


def _guarded(command: Callable[[], int]) -> int:
    """Run `command`: a PyasgError is one line and code 1; argparse's exits keep their code."""
    try:
        return command()
    except SystemExit as exit_:
        # A parser (ours or an example's) printed its one-line error (2) or its help (0).
        code = exit_.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except PyasgError as e:
        message = " ".join(str(e).split())  # one line, even for multi-line messages
        print(f"pyasg: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("pyasg: interrupted", file=sys.stderr)
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `pyasg` command on `argv` (default: `sys.argv[1:]`); return the exit code.

    >>> main(["--version"])  # doctest: +SKIP
    pyasg 0.1.0
    0
    >>> main(["run", "nope"])  # doctest: +SKIP
    2
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in FORWARDED:
        name = FORWARDED[argv[0]]
        return _guarded(lambda: _run_example(name, argv[1:], f"pyasg {argv[0]}"))
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        # argparse has printed its one-line error (code 2), or the help for -h (code 0).
        return exit_.code if isinstance(exit_.code, int) else 0
    if args.version:
        print(f"pyasg {_version()}")
    elif args.command == "info":
        print(_info())
    elif args.command == "examples":
        print(_examples())
    elif args.command == "run":
        return _guarded(lambda: _run_example(args.name, args.args))
    elif args.command == "view":
        return _view(args.graph, args.lang)
    else:  # no command, or `pyasg help`
        parser.print_help()
    return 0
