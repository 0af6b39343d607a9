"""The viewer's own process, and the handle that feeds it run events.

`launch` starts ``target`` (a ``"module:function"`` path, by default the Dear PyGui app)
in a fresh *spawned* process as ``function(queue, lang, requests=..., **kwargs)`` (the
second queue carries the viewer's requests back) and subscribes to
the run events the viewer reads (`pyasg.viewer.protocol.EVENTS`). Each event crosses
the boundary as the JSON text of `pyasg.viewer.protocol.encode` (read it back with
`decode`); nothing is pickled but that text, the target's path, `lang` and `kwargs`
(which must be plain data).

Guarantees for the training process:

* Forwarding never blocks: events go out with ``queue.put_nowait``; while the queue is
  full an event is dropped and counted in `ViewerHandle.dropped`.
* Closing the window (the viewer process ending, or being killed) never disturbs
  training: the next event sees the process gone, unsubscribes, and is dropped.
* Leaving the ``with`` block normally sends ``RunFinished(None)`` (unless the run
  already published one) and ``Close``, waits up to ``timeout`` seconds for the viewer
  to exit, then terminates it.
* Live values and the model lab: the viewer asks for a node's values on a second
  queue (`Watch` messages), and for model changes (`Change`, published as
  `ChangeRequested` for a `pyasg.train.lab.ModelLab`: `handle_request`); the
  handle's `pyasg.viewer.watch.Watcher`, subscribed while the viewer runs, answers
  the former. The handle reads that queue without waiting each time it
  forwards an event, and closes the watcher when the viewer goes away, so a closed
  viewer costs a training step nothing.
* Leaving it with an exception sends ``RunFinished(error=repr(exc))`` and leaves the
  viewer open on the last state. The process is not a daemon, so at interpreter exit
  Python waits until the window is closed (call `ViewerHandle.close` to end it sooner).
* `ViewerHandle.wait` blocks until the user closes the window: call it when training
  is done to keep the window open (leaving the ``with`` block would close it).
* A viewer started after the model was built still learns it: it is first sent the
  parameter kinds recorded so far and the graphs `pyasg.events.remember_graphs` kept
  (`pyasg.events.recent_graphs`: none unless that was turned on before the step
  compiled; a compilation publishes nothing while nobody listens).
* The viewer dies with the training process: a thread in the viewer waits on the
  parent's sentinel (`multiprocessing.parent_process`) and ends the viewer when the
  parent is gone, so a SIGTERM (or SIGKILL) to a training script or to ``pyasg view``
  leaves no window behind.

The event subscription is removed when the handle is closed or exited, either way.

>>> with launch(lang="en") as viewer:  # doctest: +SKIP
...     for step in range(100):
...         publish(StepDone(step=step, loss=train_step()))
...     viewer.wait()  # until the window is closed
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import queue as queue_module
import signal
import sys
import threading
import time
import types
from collections.abc import Callable
from types import TracebackType
from typing import Any

from pyasg import events
from pyasg.errors import PyasgError
from pyasg.events import ChangeRequested, Event, ParamsDescribed, RunFinished
from pyasg.viewer.protocol import EVENTS, ProtocolError, decode_request, encode, encode_close
from pyasg.viewer.texts import canonical_lang
from pyasg.viewer.watch import Watcher

DEFAULT_TARGET = "pyasg.viewer.app:run"

#: Targets that open a window. Where X11 or Wayland is the window system (not Windows,
#: not macOS), one needs DISPLAY or WAYLAND_DISPLAY, checked before the process starts:
#: without it Dear PyGui's GLFW prints a page of errors and aborts on an assertion.
NEEDS_DISPLAY = frozenset({DEFAULT_TARGET})
NO_DISPLAY = ("no display found (DISPLAY and WAYLAND_DISPLAY are unset), and the viewer "
              "needs a window: run on a desktop, over `ssh -X`, or under `xvfb-run`")


def _display_missing() -> bool:
    """Whether a window cannot open here: an X11/Wayland system with neither variable."""
    return (not sys.platform.startswith(("win", "darwin", "cygwin"))
            and not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"))


class ViewerError(PyasgError):
    """The viewer cannot be started (for example, a malformed target path)."""


def _split_target(path: str) -> tuple[str, str]:
    module, sep, function = path.partition(":")
    if not sep or not module or not function.isidentifier() or not all(
            part.isidentifier() for part in module.split(".")):
        raise ViewerError(f"viewer target must look like 'package.module:function', "
                          f"got {path!r:.80}")
    return module, function


def _resolve(path: str) -> Callable[..., Any]:
    module, function = _split_target(path)
    return getattr(importlib.import_module(module), function)


def _entry(target_path: str, queue: Any, lang: str, kwargs: dict[str, Any]) -> None:
    """Run in the viewer process: import the target by its path and hand it the queues."""
    _die_with_parent()
    _resolve(target_path)(queue, lang, **kwargs)


def _die_with_parent() -> None:
    """In the viewer: end this process as soon as the training process is gone.

    A normal exit of the parent waits for the viewer (it is not a daemon), so the parent
    ends first only when it is killed, by SIGTERM or worse: then nothing would close the
    window. The parent's sentinel (a pipe the parent holds open) says so on every
    platform, at once; Linux's PR_SET_PDEATHSIG would be tied to the thread that started
    the viewer, not to the process.
    """
    parent = multiprocessing.parent_process()
    if parent is None:  # not started by multiprocessing: nobody to outlive
        return

    def watch() -> None:
        parent.join()  # returns when the parent's end of the pipe closes
        if os.name == "posix":
            os.kill(os.getpid(), signal.SIGTERM)  # as if the signal had reached us too
            time.sleep(5.0)  # a handler of the target's may close the window itself
        os._exit(1)  # Windows, or a target that ignored SIGTERM

    threading.Thread(target=watch, name="pyasg-viewer-parent", daemon=True).start()


def handle_request(text: str | bytes, watcher: Watcher) -> bool:
    """Apply one message from the viewer in the training process: a `Watch` goes to
    `watcher`, a model-lab `Change` is published as `pyasg.events.ChangeRequested` (a
    `pyasg.train.lab.ModelLab` applies it at the next step boundary). False for a
    malformed message (nothing is done).

    >>> from pyasg.viewer.protocol import encode_change
    >>> seen = []
    >>> stop = events.subscribe(seen.append, ChangeRequested)
    >>> handle_request(encode_change("lr", "", 0.01), Watcher()), seen
    (True, [ChangeRequested(what='lr', path='', value=0.01)])
    >>> stop(); handle_request("{}", Watcher())
    False
    """
    try:
        request = decode_request(text)
    except ProtocolError:
        return False
    if isinstance(request, ChangeRequested):
        events.publish(request)
    else:
        watcher.request(request.name, request.kind, request.node, request.every)
    return True


class ViewerHandle:
    """A viewer process and the subscription that forwards run events to it.

    `start` spawns the process and subscribes (the event forwarding, and `watcher`
    for live values); `close` unsubscribes, asks the viewer to exit, and terminates it
    after `timeout` seconds. Usable as a context manager.

    `start` first sends the parameter kinds recorded so far and the graphs that
    `pyasg.events.remember_graphs` kept, so a viewer launched after the training step
    compiled can still show it.

    >>> handle = ViewerHandle("tests.viewer_stub:run", "en", {"path": "log.jsonl"})
    >>> handle.alive, handle.dropped
    (False, 0)
    """

    def __init__(self, target: str = DEFAULT_TARGET, lang: str = "en",
                 kwargs: dict[str, Any] | None = None, *, queue_size: int = 1024,
                 close_timeout: float = 20.0) -> None:
        _split_target(target)  # fail here, not in the child; the target is not imported
        self.target = target
        self.lang = canonical_lang(lang)
        self.kwargs = dict(kwargs or {})
        self.queue_size = queue_size
        self.close_timeout = close_timeout
        self.dropped = 0
        self._context = multiprocessing.get_context("spawn")
        self._queue: Any = None
        self._requests: Any = None
        self.bad_requests = 0
        self._process: Any = None
        self._subscriptions: list[Callable[[], None]] = []
        #: The live values the viewer asks for (subscribed while it runs).
        self.watcher = Watcher()
        self._finished_sent = False
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ state

    @property
    def alive(self) -> bool:
        """Whether the viewer process is running."""
        return self._process is not None and self._process.is_alive()

    @property
    def process(self) -> Any:
        """The `multiprocessing` process (None before `start`)."""
        return self._process

    @property
    def exitcode(self) -> int | None:
        """The viewer process's exit code (None while it runs or before `start`)."""
        return None if self._process is None else self._process.exitcode

    # -------------------------------------------------------------- lifecycle

    def start(self) -> ViewerHandle:
        """Spawn the viewer process and subscribe it to the run events it reads."""
        if self._process is not None:
            raise ViewerError("this viewer was already started; launch a new one")
        if self.target in NEEDS_DISPLAY and _display_missing():
            raise ViewerError(NO_DISPLAY, source=None)  # the machine, not a line, is at fault
        self._queue = self._context.Queue(self.queue_size)
        self._requests = self._context.Queue(64)
        # Never wait at interpreter exit for queued events a dead viewer will not read.
        self._queue.cancel_join_thread()
        self._requests.cancel_join_thread()
        self._process = self._context.Process(
            target=_entry, args=(self.target, self._queue, self.lang,
                                 {**self.kwargs, "requests": self._requests}),
            name="pyasg-viewer", daemon=False)
        # A spawned child normally re-imports the parent's __main__; a training script
        # without an `if __name__ == "__main__":` guard would then train (and launch a
        # viewer) again inside it. The viewer needs nothing from __main__, so hide it.
        main = sys.modules.get("__main__")
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            self._process.start()
        finally:
            if main is not None:
                sys.modules["__main__"] = main
        kinds = events.described_params()  # layers initialised before the viewer started
        if kinds:
            self._send(encode(ParamsDescribed(kinds)))
        for ready in events.recent_graphs():  # compiled before it started (if kept)
            self._send(encode(ready))
        self.watcher.start()
        self._subscriptions = [events.subscribe(self._forward, t) for t in EVENTS]
        return self

    @property
    def forwarding(self) -> bool:
        """Whether run events still go to the viewer (and its watch is subscribed)."""
        return bool(self._subscriptions)

    def _stop_forwarding(self) -> None:
        for unsubscribe in self._subscriptions:
            unsubscribe()
        self._subscriptions = []
        self.watcher.close()

    def _read_requests(self) -> None:
        """Apply the viewer's Watch requests, never waiting for one."""
        for _ in range(16):
            try:
                text = self._requests.get_nowait()
            except (queue_module.Empty, ValueError, OSError, EOFError):
                return
            if not handle_request(text, self.watcher):
                self.bad_requests += 1

    def _send(self, text: str) -> bool:
        with self._lock:
            if self._queue is None or not self.alive:
                self.dropped += 1
                return False
            try:
                self._queue.put_nowait(text)
            except (queue_module.Full, ValueError, OSError):  # full, or already closed
                self.dropped += 1
                return False
            return True

    def _forward(self, event: Event) -> None:
        """The event subscriber: encode and enqueue without ever blocking the caller."""
        if not self.alive:  # the window was closed or the viewer crashed
            self.dropped += 1
            self._stop_forwarding()
            return
        if self._send(encode(event)) and isinstance(event, RunFinished):
            self._finished_sent = True
        if self._requests is not None:
            self._read_requests()

    def wait(self, timeout: float | None = None) -> int | None:
        """Block until the viewer process ends (the user closes its window), at most
        `timeout` seconds (None: no limit); return its exit code, None while it runs.

        Call it when training is done: it first tells the viewer the run finished
        (`RunFinished`, unless the run published one), so the window says so while it
        waits. Raises `ViewerError` on a handle never started.

        >>> with launch(lang="en") as viewer:  # doctest: +SKIP
        ...     train()
        ...     viewer.wait()
        0
        """
        if self._process is None:
            raise ViewerError("this viewer was never started: launch() it first")
        if self.alive and not self._finished_sent and self._send(encode(RunFinished(None))):
            self._finished_sent = True
        self._process.join(timeout)
        return self._process.exitcode

    def close(self, timeout: float | None = None) -> int | None:
        """Stop forwarding, ask the viewer to exit, terminate it after `timeout` seconds.

        Returns the process's exit code (None if it was never started).
        """
        self._stop_forwarding()
        if self._process is None:
            return None
        timeout = self.close_timeout if timeout is None else timeout
        if self._process.is_alive():
            try:
                self._queue.put(encode_close(), timeout=min(timeout, 5.0))
            except (queue_module.Full, ValueError, OSError):
                pass  # it will be terminated below
            self._process.join(timeout)
            if self._process.is_alive():
                self._process.terminate()
                self._process.join(5.0)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(5.0)
        for q in (self._queue, self._requests):
            if q is not None:
                q.close()
        self._queue = self._requests = None
        return self._process.exitcode

    def __enter__(self) -> ViewerHandle:
        if self._process is None:
            self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc is None:
            if not self._finished_sent:
                self._send(encode(RunFinished(None)))
            self.close()
            return
        # Training failed: say so, stop forwarding, and leave the window on the last state.
        self._stop_forwarding()
        self._send(encode(RunFinished(error=repr(exc))))

    def __repr__(self) -> str:
        state = "alive" if self.alive else ("not started" if self._process is None
                                            else f"exited {self.exitcode}")
        return f"ViewerHandle({self.target!r}, lang={self.lang!r}, {state})"


def launch(lang: str = "en", target: str = DEFAULT_TARGET, **kwargs: Any) -> ViewerHandle:
    """Start the viewer in its own process, subscribed to run events; returns its handle.

    Call it as a function (then `ViewerHandle.close` it) or use it as a context manager.
    `lang` is a code or a name in any case ("ru", "Russian"). The viewer first gets
    the graphs `pyasg.events.remember_graphs` kept: call that before the step compiles
    to see a step compiled before the launch. `kwargs` go to the target (plain data
    only: they cross the process boundary).

    >>> viewer = launch(lang="ru")  # doctest: +SKIP
    >>> viewer.close()  # doctest: +SKIP
    0
    """
    return ViewerHandle(target, lang, kwargs).start()
