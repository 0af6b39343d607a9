"""The size of the screen the viewer opens on, so that its window fills it.

Dear PyGui does not say how large the monitor is, so this asks the system: the X
server named by ``$DISPLAY`` (Xvfb's screen too) through Xlib, or Windows'
``GetSystemMetrics``; anything else (no display, no Xlib, macOS) gets `FALLBACK`.

>>> w, h = screen_size()
>>> w >= 320 and h >= 240
True
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

__all__ = ["FALLBACK", "screen_size"]

#: The window's size when the screen's cannot be found.
FALLBACK = (1280, 820)


def _x11_size(display_name: str) -> tuple[int, int] | None:
    name = ctypes.util.find_library("X11")
    if name is None:
        return None
    try:
        xlib = ctypes.cdll.LoadLibrary(name)
    except OSError:
        return None
    xlib.XOpenDisplay.restype = ctypes.c_void_p
    xlib.XOpenDisplay.argtypes = [ctypes.c_char_p]
    xlib.XDefaultScreen.argtypes = [ctypes.c_void_p]
    xlib.XDisplayWidth.argtypes = [ctypes.c_void_p, ctypes.c_int]
    xlib.XDisplayHeight.argtypes = [ctypes.c_void_p, ctypes.c_int]
    xlib.XCloseDisplay.argtypes = [ctypes.c_void_p]
    display = xlib.XOpenDisplay(display_name.encode())
    if not display:
        return None
    try:
        screen = xlib.XDefaultScreen(display)
        return int(xlib.XDisplayWidth(display, screen)), int(xlib.XDisplayHeight(display, screen))
    finally:
        xlib.XCloseDisplay(display)


def screen_size() -> tuple[int, int]:
    """The screen's (width, height) in pixels, or `FALLBACK` where it cannot be found."""
    size: tuple[int, int] | None = None
    if sys.platform == "win32":
        metrics = ctypes.windll.user32.GetSystemMetrics  # type: ignore[attr-defined]
        size = (int(metrics(0)), int(metrics(1)))
    elif os.environ.get("DISPLAY"):
        size = _x11_size(os.environ["DISPLAY"])
    if size is None or size[0] < 320 or size[1] < 240:
        return FALLBACK
    return size
