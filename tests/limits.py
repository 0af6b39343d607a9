"""A time limit for a test or a case: SIGALRM raises `Hung` when it runs too long.

`Hung` is a BaseException, so no `except Exception` in the code under test hides it.
Signals need the main thread (and a POSIX system): elsewhere the limit is not armed,
and callers keep their own deadlines on every wait.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Hung(BaseException):
    """A call ran past its time limit."""


@contextmanager
def time_limit(seconds: float, what: str = "the call") -> Iterator[None]:
    """Raise `Hung` inside the block if it runs longer than `seconds`."""
    if not hasattr(signal, "setitimer") or \
            threading.current_thread() is not threading.main_thread():
        yield
        return

    def alarm(signum: int, frame: object) -> None:
        raise Hung(f"{what} took longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
