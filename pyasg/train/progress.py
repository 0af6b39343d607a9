"""The progress bar of `Trainer.fit`: a tqdm bar of optimiser steps with the loss and the
throughput in samples per second.

The throughput on the bar is over the whole fit so far, leaving out its first step (which
includes tracing and compiling the step); each step's own figure is in its logs
(`samples_per_s`). The bar goes to stderr, so stdout keeps a script's results; where
stderr is not a terminal (a log file, a test) tqdm writes at most once a second.

>>> import io
>>> out = io.StringIO()
>>> bar = ProgressBar(total=2, initial=0, desc="fit", enabled=True, file=out)
>>> bar.step(loss=0.5, samples=32, seconds=1.0); bar.step(loss=0.25, samples=32, seconds=0.5)
>>> bar.close()
>>> "2/2" in out.getvalue(), "loss=0.25" in out.getvalue(), "samples/s=64" in out.getvalue()
(True, True, True)
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["ProgressBar"]


class ProgressBar:
    """A tqdm bar over `total` steps (None: unknown) starting at `initial`; `enabled=False`
    shows nothing."""

    def __init__(self, total: int | None, initial: int, desc: str, enabled: bool,
                 file: Any = None) -> None:
        self.bar: Any = None
        self.steps = 0
        self.samples = 0
        self.seconds = 0.0
        if not enabled:
            return
        from tqdm.auto import tqdm  # the bar's own import: `import pyasg` stays light

        file = sys.stderr if file is None else file
        tty = bool(getattr(file, "isatty", lambda: False)())
        self.bar = tqdm(total=total, initial=initial, desc=desc, unit="step", file=file,
                        dynamic_ncols=tty, mininterval=0.1 if tty else 1.0, leave=True)

    def step(self, loss: float, samples: int, seconds: float) -> None:
        """One update of `samples` samples done in `seconds`, with this loss."""
        self.steps += 1
        if self.steps == 1:  # the first step holds the compilation: its rate stands alone
            rate = samples / seconds if seconds > 0 else float("nan")
        else:
            self.samples += samples
            self.seconds += seconds
            rate = self.samples / self.seconds if self.seconds > 0 else float("nan")
        if self.bar is None:
            return
        self.bar.set_postfix({"loss": f"{loss:.4g}", "samples/s": f"{rate:.4g}"},
                             refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
