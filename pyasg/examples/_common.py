"""Helpers the examples share: a command-line parser, a progress bar, step reporting.

Every example builds its flags with `example_parser` (so ``--steps``, ``--seed``,
``--backend`` and ``--quiet``/``-q`` look and fail the same everywhere: one line, exit
code 2), shows its training with `progress` (a tqdm bar with the loss and steps/s,
none after ``-q``), and calls `report_step` once per step so that a viewer
(``pyasg.viewer.launch``) sees the loss.

>>> args = example_parser("Demo.", steps=100).parse_args(["--steps", "3"])
>>> args.steps, args.seed, args.backend
(3, 0, 'numpy')
"""

from __future__ import annotations

import argparse
import contextvars
import math
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import numpy as np

from pyasg import events
from pyasg.trace.tree import tree_map

__all__ = ["BACKEND_CHOICES", "OneLineParser", "example_parser", "finish", "positive_int",
           "progress", "report_step", "to_numpy"]

#: The values of ``--backend``; ``--gpu`` is short for ``--backend wgpu``.
BACKEND_CHOICES: tuple[str, ...] = ("numpy", "wgpu")

#: Whether the flags an example parsed last said ``--quiet``: the examples hand
#: `train_loop` their step count, not their flags, so it reads ``--quiet`` here.
_quiet: contextvars.ContextVar[bool] = contextvars.ContextVar("quiet", default=False)


class OneLineParser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line (``PROG: error: ...``), exit code 2.

    A usage dump hides the one line that matters; ``--help`` still shows everything.

    >>> OneLineParser(prog="demo").parse_args(["--nope"])
    Traceback (most recent call last):
    ...
    SystemExit: 2
    """

    def error(self, message: str) -> NoReturn:
        # Subcommand parsers are named "pyasg run" etc.; the error names the program.
        self.exit(2, f"{self.prog.split()[0]}: error: {message}\n")


class ExampleParser(OneLineParser):
    """`example_parser`'s parser: parsing also records ``--quiet`` for `train_loop`.

    >>> p = ExampleParser(prog="x"); _ = p.add_argument("-q", dest="quiet", action="store_true")
    >>> _ = p.parse_args(["-q"]); _quiet.get()
    True
    >>> _ = p.parse_args([]); _quiet.get()
    False
    """

    def parse_known_args(self, args: Sequence[str] | None = None,
                         namespace: argparse.Namespace | None = None
                         ) -> tuple[argparse.Namespace, list[str]]:
        parsed, rest = super().parse_known_args(args, namespace)
        _quiet.set(bool(getattr(parsed, "quiet", False)))
        return parsed, rest


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (``--steps 0`` would train nothing and say so late)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def example_parser(description: str, steps: int, *, seed: int = 0, backend: bool = True,
                   prog: str | None = None) -> argparse.ArgumentParser:
    """A parser with ``--steps N`` (default `steps`), ``--seed S``, ``--quiet``/``-q``
    (no progress bar) and, when `backend`, ``--backend numpy|wgpu`` and its alias
    ``--gpu``. Add the example's own flags to it (one may define its own ``--quiet``).

    >>> p = example_parser("Fit a line.", steps=50, backend=False, prog="line")
    >>> p.parse_args([]).steps
    50
    >>> example_parser("x", steps=5).parse_args(["--gpu"]).backend
    'wgpu'
    >>> example_parser("x", steps=5).parse_args(["-q"]).quiet
    True
    """
    # "resolve": an example that adds its own --quiet/-q (charlm) replaces this one
    parser = ExampleParser(prog=prog, description=description, conflict_handler="resolve")
    parser.add_argument("--steps", type=positive_int, default=steps, metavar="N",
                        help=f"training steps (default {steps})")
    parser.add_argument("--seed", type=int, default=seed, metavar="S",
                        help=f"random seed (default {seed})")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    if backend:
        parser.add_argument("--backend", choices=BACKEND_CHOICES, default="numpy",
                            help="where the graphs run (default numpy; wgpu: GPU via WebGPU, "
                                 "or lavapipe on a CPU)")
        parser.add_argument("--gpu", dest="backend", action="store_const", const="wgpu",
                            help="short for --backend wgpu")
    return parser


def progress(steps: int, desc: str, *, initial: int = 0, disable: bool = False,
             file: Any = None) -> Any:
    """A tqdm bar over `steps` steps that shows steps/s; put the loss in with
    ``bar.set_postfix(loss=...)`` and advance with ``bar.update()``. Close it (or use it
    as a context manager) when training ends.

    The bar goes to `file` (default stderr), so stdout holds only the example's results.
    Where it is not a terminal (a log, a test) tqdm still writes, at most once a second.
    `initial` is the step a resumed run starts from (the bar then ends at initial + steps).

    >>> import io
    >>> out = io.StringIO()
    >>> with progress(3, "demo", file=out) as bar:
    ...     for _ in range(3):
    ...         bar.set_postfix(loss=0.5, refresh=False); bar.update()
    >>> "3/3" in out.getvalue() and "loss=0.5" in out.getvalue()
    True
    """
    from tqdm.auto import tqdm

    file = sys.stderr if file is None else file
    tty = bool(getattr(file, "isatty", lambda: False)())
    return tqdm(total=initial + steps, initial=initial, desc=desc,
                unit="step", file=file, disable=disable, dynamic_ncols=tty,
                mininterval=0.1 if tty else 1.0, leave=True)


def report_step(step: int, loss: float, metrics: dict[str, float] | None = None) -> None:
    """Publish `pyasg.events.StepDone` for this step (cheap when nobody listens).

    >>> report_step(1, 0.25)
    """
    if events.has_subscribers(events.StepDone):
        events.publish(events.StepDone(step, float(loss), dict(metrics or {})))


def to_numpy(value: Any) -> Any:
    """A backend array (numpy or wgpu) as a numpy array; pytrees are mapped leaf by leaf.

    >>> import numpy as np
    >>> to_numpy({"w": np.ones(2, np.float32)})["w"].tolist()
    [1.0, 1.0]
    """
    def one(x: Any) -> Any:
        numpy = getattr(x, "numpy", None)  # device arrays read back on request
        return numpy() if callable(numpy) else np.asarray(x)

    return tree_map(one, value)


def train_loop(name: str, steps: int, train_step: Callable[..., tuple], params: Any,
               state: Any, batch: Callable[[int], tuple]) -> tuple[Any, Any, float, float]:
    """Run `params, state, loss = train_step(params, state, *batch(step))` for steps
    1..`steps` under a progress bar (none when the example's flags said ``--quiet``),
    publishing each loss (`report_step`).

    Returns the final params and state, and the first and last loss.

    >>> import numpy as np
    >>> def halve(p, s, x): return p / 2, s, float(p)
    >>> train_loop("halve", 3, halve, 8.0, None, lambda step: (None,), )[::2]
    (1.0, 8.0)
    """
    first_loss = loss = float("nan")
    with progress(steps, name, disable=steps < 1 or _quiet.get()) as bar:
        for step in range(1, steps + 1):
            params, state, loss_value = train_step(params, state, *batch(step))
            loss = float(to_numpy(loss_value))
            first_loss = loss if step == 1 else first_loss
            report_step(step, loss)
            bar.set_postfix(loss=loss, refresh=False)
            bar.update()
    return params, state, first_loss, loss


def finish(name: str, metrics: dict[str, float]) -> dict[str, float]:
    """Print one line with an example's final metrics (to stdout); return them.

    A rate (a name ending in ``_per_s``) that could not be measured (NaN: one step has
    no steps after the compiling one to time) is left out of the line, not printed as
    "nan"; it stays in the returned dict.

    >>> finish("line", {"first_loss": 2.0, "final_loss": 0.125})
    line: first_loss 2  final_loss 0.125
    {'first_loss': 2.0, 'final_loss': 0.125}
    >>> _ = finish("one", {"final_loss": 1.5, "steps_per_s": float("nan")})
    one: final_loss 1.5
    """
    shown = {k: v for k, v in metrics.items()
             if not (k.endswith("_per_s") and isinstance(v, float) and math.isnan(v))}
    print(f"{name}: " + "  ".join(f"{k} {v:.4g}" for k, v in shown.items()))
    return metrics
