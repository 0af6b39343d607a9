"""The canvas's view transform: canvas units to pixels, fit to the window, the minimap.

Pure arithmetic, no GUI, so that "the whole graph is visible after fitting" is a test
without a display. A `View` maps a canvas point p to the pixel ``p * scale + offset``.

>>> v = fit(1000.0, 500.0, 420.0, 320.0)
>>> v.scale, v.to_screen(0.0, 0.0), v.to_screen(1000.0, 500.0)
(0.4, (10.0, 60.0), (410.0, 260.0))
>>> v.to_canvas(*v.to_screen(123.0, 45.0))
(123.0, 45.0)
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MAX_SCALE", "MIN_SCALE", "View", "fit", "minimap", "zoom"]

#: The zoom range of the wheel (fitting a huge graph may go lower: it always shows all).
MIN_SCALE = 0.01
MAX_SCALE = 4.0
#: Fitting never enlarges past this: a three-node graph is not drawn in giant letters.
FIT_MAX_SCALE = 1.25


@dataclass(frozen=True)
class View:
    """`scale` pixels per canvas unit and the pixel `offset` of the canvas origin."""

    scale: float
    offset: tuple[float, float]

    def to_screen(self, x: float, y: float) -> tuple[float, float]:
        return x * self.scale + self.offset[0], y * self.scale + self.offset[1]

    def to_canvas(self, px: float, py: float) -> tuple[float, float]:
        return (px - self.offset[0]) / self.scale, (py - self.offset[1]) / self.scale


def fit(width: float, height: float, view_w: float, view_h: float,
        margin: float = 10.0) -> View:
    """The view that shows a `width` x `height` canvas whole inside `view_w` x `view_h`
    pixels, `margin` free on every side, centred.

    >>> fit(10.0, 10.0, 100.0, 100.0).scale  # small graphs are not blown up
    1.25
    """
    room_w, room_h = max(view_w - 2 * margin, 1.0), max(view_h - 2 * margin, 1.0)
    scale = min(room_w / max(width, 1.0), room_h / max(height, 1.0), FIT_MAX_SCALE)
    return View(scale, ((view_w - width * scale) / 2, (view_h - height * scale) / 2))


def zoom(view: View, factor: float, at: tuple[float, float]) -> View:
    """`view` zoomed by `factor` about pixel `at` (the canvas point under it stays put).

    >>> zoom(View(1.0, (0.0, 0.0)), 2.0, (10.0, 10.0))
    View(scale=2.0, offset=(-10.0, -10.0))
    >>> zoom(View(0.001, (0.0, 0.0)), 0.5, (0.0, 0.0)).scale  # never below a fitted view
    0.001
    """
    scale = min(MAX_SCALE, max(min(MIN_SCALE, view.scale), view.scale * factor))
    k = scale / view.scale
    return View(scale, (at[0] - (at[0] - view.offset[0]) * k,
                        at[1] - (at[1] - view.offset[1]) * k))


def minimap(width: float, height: float, view: View, view_w: float, view_h: float,
            size: float) -> tuple[View, tuple[float, float, float, float]]:
    """The minimap's own view of the whole canvas in a `size` x `size` square, and the
    rectangle (x0, y0, x1, y1), in minimap pixels, of what the main view shows.

    >>> mm, rect = minimap(100.0, 100.0, View(1.0, (0.0, 0.0)), 50.0, 50.0, 100.0)
    >>> mm.scale, rect
    (0.8, (10.0, 10.0, 50.0, 50.0))
    """
    mm = fit(width, height, size, size, margin=size / 10)
    x0, y0 = view.to_canvas(0.0, 0.0)
    x1, y1 = view.to_canvas(view_w, view_h)
    (a, b), (c, d) = mm.to_screen(x0, y0), mm.to_screen(x1, y1)
    return mm, (a, b, c, d)
