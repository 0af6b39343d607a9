"""The `pyasg` command: version, help, and what this installation can use.

`pyasg --version` prints the version; `pyasg info` prints the versions of pyasg,
Python and numpy and which optional backends are installed; `pyasg view GRAPH.json
[--lang en|ru]` opens a saved graph in the viewer; `pyasg help`, or no command at
all, prints the help.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import platform
import sys
from collections.abc import Sequence

#: Optional backends, by import name, with the extra that installs each.
OPTIONAL_BACKENDS: dict[str, str] = {"wgpu": "gpu", "dearpygui": "viewer"}


def _version() -> str:
    """The installed pyasg version (imported here, not at module load)."""
    from pyasg import __version__

    return __version__


def _distribution_version(name: str) -> str | None:
    """The version of distribution `name`, or None when it is not installed."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _info() -> str:
    """Versions, and which optional backends can be found, one per line.

    A backend is looked up with `importlib.util.find_spec`, so it is not
    imported: "found" means the package is installed, not that a GPU adapter
    or a display is there to use it.
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
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pyasg",
        description="pyasg: Python functions traced into an Abstract Semantic Graph.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("help", help="show this help")
    commands.add_parser("info", help="show versions and which optional backends are installed")
    view = commands.add_parser("view", help="open a saved graph file (pyasg.save_graph) "
                                            "in the viewer")
    view.add_argument("graph", help="the graph's JSON file")
    view.add_argument("--lang", default="en",
                      help="language of the explanations: en or ru (others fall back to en)")
    return parser


def _view(path: str, lang: str) -> int:
    """Open a graph file in the viewer and wait until its window is closed."""
    from pyasg import events
    from pyasg.errors import PyasgError
    from pyasg.io import load_graph
    from pyasg.viewer import launch

    try:
        graph = load_graph(path)
    except PyasgError as e:
        print(f"pyasg view: {e.message}", file=sys.stderr)
        return 2
    handle = launch(lang=lang)
    name = path.rsplit("/", 1)[-1].removesuffix(".json")
    events.publish(events.GraphReady(name, graph, "forward"))
    handle.process.join()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `pyasg` command on `argv` (default: `sys.argv[1:]`); return the exit code.

    >>> main(["--version"])  # doctest: +SKIP
    pyasg 0.1.0
    0
    """
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        # argparse has printed its usage and one-line error (code 2), or the help for -h (code 0).
        return exit_.code if isinstance(exit_.code, int) else 0
    if args.version:
        print(f"pyasg {_version()}")
    elif args.command == "info":
        print(_info())
    elif args.command == "view":
        return _view(args.graph, args.lang)
    else:  # no command, or `pyasg help`
        parser.print_help()
    return 0
