"""The `pyasg` command: the demo, the examples, the viewer, and what this machine can use.

- ``pyasg demo [--steps N] [--backend numpy|wgpu | --gpu] [--visualize] [--lang en|ru]
  [--save DIR] [--resume DIR] ...`` trains a small character-level transformer on
  Python's own standard library and prints a sample (`pyasg.examples.charlm`).
- ``pyasg examples`` lists the examples; ``pyasg run NAME [ARGS...]`` runs one, ARGS
  going to its own flags (``pyasg run charlm`` is ``pyasg demo``).
- ``pyasg view GRAPH.json [--lang en|ru]`` opens a saved graph in the viewer.
- ``pyasg profile [--backend numpy|wgpu] [--batch B] [--seq T] [--d-model E] [--heads H]
  [--layers L] [--top N] [--json FILE] ...`` times every kernel of the demo's training
  step (`pyasg.profile`) and prints the table.
- ``pyasg info`` prints versions, the backends there are and the GPU adapter found.
- ``pyasg --version`` (``-V``); ``pyasg help``, or no command at all, prints the help.
- ``--threads N``, anywhere on the line: the BLAS/OpenMP threads (`threads_for`).

``--lang`` takes a code or a name in any case (``ru``, ``Russian``). Bad arguments
anywhere give one line, ``pyasg: error: ...``, and exit code 2; a `PyasgError` while a
command runs gives one line and exit code 1.

Threads: OpenBLAS, MKL and OpenMP read their thread counts once, when numpy loads
them, and ``import pyasg`` loads numpy before any of this module runs (both the
console script and ``python -m pyasg`` import the package first). So the command,
when it must change them, sets the variables and restarts itself in place
(`os.execv`, the same process id and arguments: a second start of the interpreter
and of ``import pyasg``, 1.7 s on a busy 2-core machine). The models of the demo and
the examples are small: their matrix products are too short for threads to pay, and
on a shared machine a spinning BLAS thread waits for a busy core (the demo took 177 s
with the default threads and 102 s with one on a loaded 2-core machine). A count the
user set in the environment is kept; ``--threads N`` overrides both.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import platform
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from pyasg import events, viewer
from pyasg._version import __version__
from pyasg.compile.profile import PROFILERS, Profile, profile
from pyasg.errors import PyasgError
from pyasg.examples import _names, available, charlm, run
from pyasg.examples._common import BACKEND_CHOICES, OneLineParser, positive_int
from pyasg.io import load_graph
from pyasg.viewer.texts import canonical_lang

#: Optional backends, by import name, with the extra that installs each.
OPTIONAL_BACKENDS: dict[str, str] = {"wgpu": "gpu", "dearpygui": "viewer"}

#: Commands whose arguments all belong to an example's own parser (argparse cannot
#: forward "--steps 5" through a subcommand's REMAINDER when it comes first).
FORWARDED: dict[str, str] = {"demo": "charlm"}

#: The variables through which OpenBLAS, OpenMP and MKL take their thread counts.
THREAD_VARIABLES: tuple[str, ...] = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                     "MKL_NUM_THREADS")
#: Commands that train or time a model, and the BLAS threads they get by default.
COMPUTING: frozenset[str] = frozenset({"demo", "run", "profile"})
DEFAULT_THREADS = 1


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


def take_threads(argv: Sequence[str]) -> tuple[int | None, list[str]]:
    """(N of ``--threads N`` or ``--threads=N`` anywhere in `argv`, or None; the rest).

    Raises `argparse.ArgumentTypeError` (its message one line) for a missing or bad N.

    >>> take_threads(["demo", "--threads", "2", "--steps", "5"])
    (2, ['demo', '--steps', '5'])
    >>> take_threads(["info"])
    (None, ['info'])
    """
    threads, rest, args = None, [], list(argv)
    while args:
        arg = args.pop(0)
        if arg == "--threads" or arg.startswith("--threads="):
            value = arg.partition("=")[2] if "=" in arg else (args.pop(0) if args else None)
            if value is None:
                raise argparse.ArgumentTypeError("argument --threads: expected one argument")
            try:
                threads = positive_int(value)
            except argparse.ArgumentTypeError as e:
                raise argparse.ArgumentTypeError(f"argument --threads: {e}") from None
        else:
            rest.append(arg)
    return threads, rest


def threads_for(command: str | None, flag: int | None,
                environ: Mapping[str, str]) -> int | None:
    """The BLAS threads a command should run with, or None to leave them as they are:
    `flag` (``--threads N``) if given; else, for a command that trains or times a model
    (`COMPUTING`), `DEFAULT_THREADS` unless the user set one of `THREAD_VARIABLES`.

    >>> threads_for("demo", None, {}), threads_for("demo", 4, {"OMP_NUM_THREADS": "2"})
    (1, 4)
    >>> threads_for("demo", None, {"OMP_NUM_THREADS": "2"}), threads_for("info", None, {})
    (None, None)
    """
    if flag is not None:
        return flag
    if command in COMPUTING and not any(v in environ for v in THREAD_VARIABLES):
        return DEFAULT_THREADS
    return None


def _restart_with_threads(threads: int) -> int | None:
    """Set `THREAD_VARIABLES` to `threads` and restart this command in place so that
    the BLAS libraries read them; None (nothing to do) when they already say so.

    Returns the exit code only where a process cannot replace itself (Windows: the
    command runs as a child); elsewhere `os.execv` does not return.
    """
    wanted = str(threads)
    if all(os.environ.get(v) == wanted for v in THREAD_VARIABLES):
        return None
    os.environ.update({v: wanted for v in THREAD_VARIABLES})
    # sys.orig_argv: the interpreter's own flags too, and the console script's path or
    # "-m pyasg"; the restarted command sees the variables set and goes on.
    command = [sys.executable, *sys.orig_argv[1:]]
    sys.stdout.flush()
    sys.stderr.flush()
    if os.name != "posix":
        return subprocess.call(command)
    try:
        os.execv(sys.executable, command)
    except OSError:
        return None  # cannot restart: run with the threads numpy already has
    return None  # not reached


def _command_of(argv: Sequence[str]) -> str | None:
    """The command word of a ``pyasg`` line: its first argument that is not a flag."""
    return next((a for a in argv if not a.startswith("-")), None)


def _canonical_langs(argv: Sequence[str]) -> list[str]:
    """`argv` with the value of every ``--lang`` as a code (``Russian`` -> ``ru``)."""
    out = list(argv)
    for i, arg in enumerate(out):
        if arg == "--lang" and i + 1 < len(out):
            out[i + 1] = canonical_lang(out[i + 1])
        elif arg.startswith("--lang="):
            out[i] = "--lang=" + canonical_lang(arg.partition("=")[2])
    return out


def _parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="pyasg",
        description="pyasg: Python functions traced into an Abstract Semantic Graph.",
    )
    parser.add_argument("--version", "-V", action="store_true",
                        help="print the version and exit")
    parser.add_argument("--threads", type=positive_int, metavar="N",
                        help=f"BLAS/OpenMP threads (default for demo, run and profile: "
                             f"{DEFAULT_THREADS}, unless {', '.join(THREAD_VARIABLES)} "
                             f"is set); may come anywhere on the line")
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
                      help="language of the explanations: en or ru, or english or russian, "
                           "in any case (others fall back to en)")
    _profile_flags(commands.add_parser(
        "profile", help="time every kernel of the demo's training step (pyasg.profile)",
        description="Time every kernel of the demo's training step (the character-level "
                    "transformer of pyasg demo: forward, gradient, clipping, AdamW) and "
                    "print where the time goes."))
    return parser


def _non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    return 0 if text.strip() == "0" else positive_int(text)


def _profile_flags(p: argparse.ArgumentParser) -> None:
    defaults = charlm.ModelConfig()
    p.add_argument("--backend", choices=BACKEND_CHOICES, default="numpy",
                   help="where the step runs (default numpy)")
    for flag, default, what in (
            ("--batch", 16, "sequences per step"),
            ("--seq", defaults.context, "characters per sequence"),
            ("--d-model", defaults.embed_dim, "model width"),
            ("--heads", defaults.num_heads, "attention heads (must divide --d-model)"),
            ("--layers", defaults.num_layers, "transformer blocks"),
            ("--top", 20, "nodes and op groups shown"),
            ("--repeat", 10, "timed rounds")):
        p.add_argument(flag, type=positive_int, default=default, metavar="N",
                       help=f"{what} (default {default})")
    p.add_argument("--warmup", type=_non_negative_int, default=2, metavar="N",
                   help="untimed steps first (default 2)")
    p.add_argument("--method", help="the backend's timing method (numpy: instrumented; "
                                    "wgpu: timestamps, pass-timestamps or isolated; default: "
                                    "the best the device has)")
    p.add_argument("--json", metavar="FILE", help="also write the profile as JSON to FILE")


def _view(path: str, lang: str) -> int:
    """Open a graph file in the viewer and wait until its window is closed."""
    try:
        graph = load_graph(path)
    except PyasgError as e:
        print(f"pyasg view: {e.message}", file=sys.stderr)
        return 2
    # static: a saved graph has no training to report, so no status and no loss chart
    handle = viewer.launch(lang=canonical_lang(lang), static=True)
    name = path.rsplit("/", 1)[-1].removesuffix(".json")
    events.publish(events.GraphReady(name, graph, "forward"))
    handle.process.join()  # not wait(): no run finished, a saved graph is being looked at
    return 0


def profile_demo_step(backend: str, batch: int, seq: int, d_model: int, heads: int,
                      layers: int, repeat: int = 10, warmup: int = 2,
                      method: str | None = None) -> Profile:
    """The profile of the demo's training step (`pyasg.examples.charlm`) at these sizes,
    on a batch of random characters (the times do not depend on the text).

    >>> p = profile_demo_step("numpy", 1, 4, 8, 2, 1, repeat=1, warmup=0)  # doctest: +SKIP
    >>> p.name                                                           # doctest: +SKIP
    'charlm_train_step'
    """
    config = charlm.ModelConfig(context=seq, embed_dim=d_model, num_heads=heads,
                                num_layers=layers)
    data = np.random.default_rng(0).integers(0, len(charlm.VOCAB), batch * seq + seq + 2,
                                             dtype=np.int32)
    trainer = charlm.Trainer(config, backend=backend, batch_size=batch, data=data)
    x, y = charlm.batch(data, trainer.seed, 1, batch, seq)
    return profile(trainer._train_step, trainer.params, trainer.opt_state, x, y,
                   repeat=repeat, warmup=warmup, method=method)


def _profile(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """`pyasg profile`: check the flags (exit 2), profile, print, maybe write JSON."""
    if args.d_model % args.heads:
        parser.error(f"--d-model {args.d_model} is not a multiple of --heads {args.heads}")
    methods = PROFILERS[args.backend]().METHODS
    if args.method is not None and args.method not in methods:
        parser.error(f"--method {args.method!r} is not one of the {args.backend} backend's: "
                     f"{', '.join(methods)}")
    sizes = {"batch": args.batch, "seq": args.seq, "d_model": args.d_model,
             "heads": args.heads, "layers": args.layers}
    result = profile_demo_step(args.backend, **sizes, repeat=args.repeat,
                               warmup=args.warmup, method=args.method)
    print("pyasg profile: the demo's training step, " +
          ", ".join(f"{k} {v}" for k, v in sizes.items()))
    print(result.table(top=args.top))
    if args.json:
        try:
            Path(args.json).write_text(json.dumps({"model": sizes, **result.to_dict()},
                                                  indent=1, allow_nan=False) + "\n")
        except OSError as e:
            print(f"pyasg: error: cannot write {args.json}: {e.strerror or e}", file=sys.stderr)
            return 1
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

    Without `argv` this process is the command (the console script, ``python -m
    pyasg``), and it restarts itself where the BLAS threads must change (see the
    module's docstring); with `argv` (a caller in Python) ``--threads`` is taken but
    cannot change the threads of the numpy already loaded.

    >>> main(["--version"])  # doctest: +SKIP
    pyasg 0.1.0
    0
    >>> main(["run", "nope"])  # doctest: +SKIP
    2
    """
    program = argv is None
    try:
        threads, argv = take_threads(sys.argv[1:] if argv is None else argv)
    except argparse.ArgumentTypeError as e:
        return _usage_error(str(e))
    if program:
        wanted = threads_for(_command_of(argv), threads, os.environ)
        code = None if wanted is None else _restart_with_threads(wanted)
        if code is not None:
            return code
    argv = _canonical_langs(argv)
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
        return _guarded(lambda: _view(args.graph, args.lang))  # no display: one line
    elif args.command == "profile":
        return _guarded(lambda: _profile(args, parser))
    else:  # no command, or `pyasg help`
        parser.print_help()
    return 0
