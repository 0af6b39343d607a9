"""Drawing a `Layout` into a Dear PyGui drawlist: boxes with their lines, routed edges
with arrowheads, the selection, the minimap.

`draw_canvas` paints what `pyasg.viewer.layout.layout` placed through a
`pyasg.viewer.view.View`; it knows no graph. A box is filled with its category's
colour (`color_of`), or with what `fill_of(key, box)` says (the app's heat map), in
the canvas and in the minimap alike. Text is drawn in the canvas's monospaced
font at the layout's size times the zoom, so it fits its box at every zoom; below
`MIN_TEXT` pixels only the boxes are drawn (an overview). Boxes and edges entirely
outside the view are skipped. The minimap (`MINIMAP` pixels square, bottom right) is
drawn when the graph does not fit the view: every box as a dot of its colour and the
view as a rectangle; `minimap_hit` turns a click in it into the canvas point to centre.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pyasg.viewer.layout import FONT, LINE, PAD, Box, Key, Layout
from pyasg.viewer.view import View, minimap

__all__ = ["MINIMAP", "Style", "draw_canvas", "minimap_hit", "minimap_shown"]

#: Below this font size in pixels a box's text is not drawn.
MIN_TEXT = 5.0
#: The minimap's side in pixels, and its distance from the canvas's corner.
MINIMAP = 170.0
MINIMAP_MARGIN = 10.0

Color = tuple[int, ...]
#: A box's fill, given its key and box.
FillOf = Callable[[Key, Box], Color]


@dataclass(frozen=True)
class Style:
    """Colours of the canvas (RGB or RGBA)."""

    background: Color = (25, 25, 30)
    edge: Color = (150, 150, 160)
    text: Color = (15, 15, 15)
    dim_text: Color = (45, 45, 45)
    output: Color = (255, 255, 255)
    selected: Color = (255, 255, 0)
    match: Color = (255, 0, 255)
    group_text: Color = (235, 235, 240)
    minimap_back: Color = (40, 40, 48, 230)
    minimap_view: Color = (255, 255, 255)


def _bright(color: Color) -> bool:
    """Whether dark text reads better than light text on `color` (its luma, Rec. 601).

    >>> _bright((88, 92, 110)), _bright((255, 230, 60))
    (False, True)
    """
    r, g, b = color[:3]
    return 0.299 * r + 0.587 * g + 0.114 * b > 150


def minimap_shown(lay: Layout, view: View, view_w: float, view_h: float) -> bool:
    """Whether part of the graph lies outside the view (then the minimap is drawn)."""
    x0, y0 = view.to_screen(0.0, 0.0)
    x1, y1 = view.to_screen(lay.width, lay.height)
    return x0 < -1 or y0 < -1 or x1 > view_w + 1 or y1 > view_h + 1


def _minimap_origin(view_w: float, view_h: float) -> tuple[float, float]:
    return view_w - MINIMAP - MINIMAP_MARGIN, view_h - MINIMAP - MINIMAP_MARGIN


def minimap_hit(lay: Layout, view: View, view_w: float, view_h: float, x: float,
                y: float) -> tuple[float, float] | None:
    """The canvas point under pixel (x, y) when it falls in the shown minimap, else None.

    >>> from pyasg.viewer.layout import Layout
    >>> lay = Layout(boxes={}, edges=[], layers=[], width=1000.0, height=1000.0)
    >>> x, y = minimap_hit(lay, View(1.0, (0.0, 0.0)), 400.0, 400.0, 305.0, 305.0)
    >>> round(x, 6), round(y, 6)
    (500.0, 500.0)
    """
    if not minimap_shown(lay, view, view_w, view_h):
        return None
    ox, oy = _minimap_origin(view_w, view_h)
    if not (ox <= x <= ox + MINIMAP and oy <= y <= oy + MINIMAP):
        return None
    mm, _ = minimap(lay.width, lay.height, view, view_w, view_h, MINIMAP)
    return mm.to_canvas(x - ox, y - oy)


def draw_canvas(dpg: Any, parent: str | int, lay: Layout, view: View, view_w: float,
                view_h: float, color_of: Callable[[str], Color], selected: Key | None = None,
                matches: Iterable[Key] = (), style: Style = Style(),
                fill_of: FillOf | None = None) -> list[str]:
    """Draw `lay` into drawlist `parent` (cleared first); returns the categories drawn.

    `fill_of(key, box)` gives each box's fill in place of `color_of(box.category)`.
    """
    if fill_of is None:
        def fill_of(_key: Key, box: Box) -> Color:
            return color_of(box.category)
    dpg.delete_item(parent, children_only=True)
    dpg.draw_rectangle((0, 0), (view_w, view_h), color=style.background,
                       fill=style.background, parent=parent)
    s = view.scale
    matches = set(matches)

    def visible(x0: float, y0: float, x1: float, y1: float) -> bool:
        return x1 >= 0 and y1 >= 0 and x0 <= view_w and y0 <= view_h

    thickness = max(1.0, 1.4 * min(s, 1.5))
    head = max(3.0, 6.0 * min(s, 1.5))
    for route in lay.routes.values():
        points = [view.to_screen(x, y) for x, y in route]
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        if not visible(min(xs), min(ys), max(xs), max(ys)):
            continue
        tip = points[-1]
        dpg.draw_polyline(points[:-1] + [(tip[0], tip[1] - head)], color=style.edge,
                          thickness=thickness, parent=parent)
        dpg.draw_triangle((tip[0] - head / 2, tip[1] - head), (tip[0] + head / 2, tip[1] - head),
                          tip, color=style.edge, fill=style.edge, parent=parent)

    drawn: list[str] = []
    font = FONT * s
    for key, box in lay.boxes.items():
        if box.category not in drawn:
            drawn.append(box.category)
        p0 = view.to_screen(box.x, box.y)
        p1 = view.to_screen(box.x + box.w, box.y + box.h)
        if not visible(*p0, *p1):
            continue
        fill = fill_of(key, box)
        dpg.draw_rectangle(p0, p1, color=fill, fill=fill, rounding=3 * s, parent=parent)
        border, width = None, 0.0
        if box.is_output:
            border, width = style.output, 3.0
        if key in matches:
            border, width = style.match, 3.0
        if key == selected:
            border, width = style.selected, 4.0
        if border is not None:
            dpg.draw_rectangle(p0, p1, color=border, thickness=width, rounding=3 * s,
                               parent=parent)
        if font < MIN_TEXT:
            continue
        for row, line in enumerate(box.lines):
            light_text = box.collapsed and not _bright(fill)  # a heat colour can be bright
            color = style.group_text if light_text else (style.text if row == 0
                                                         else style.dim_text)
            at = view.to_screen(box.x + PAD, box.y + PAD / 2 + row * LINE + (LINE - FONT) / 2)
            dpg.draw_text(at, line, color=color, size=font, parent=parent)

    if minimap_shown(lay, view, view_w, view_h):
        _draw_minimap(dpg, parent, lay, view, view_w, view_h, fill_of, style)
    return drawn


def _draw_minimap(dpg: Any, parent: str | int, lay: Layout, view: View, view_w: float,
                  view_h: float, fill_of: FillOf, style: Style) -> None:
    ox, oy = _minimap_origin(view_w, view_h)
    mm, (a, b, c, d) = minimap(lay.width, lay.height, view, view_w, view_h, MINIMAP)
    dpg.draw_rectangle((ox, oy), (ox + MINIMAP, oy + MINIMAP), color=style.minimap_view,
                       fill=style.minimap_back, parent=parent)
    for key, box in lay.boxes.items():
        x0, y0 = mm.to_screen(box.x, box.y)
        x1, y1 = mm.to_screen(box.x + box.w, box.y + box.h)
        fill = fill_of(key, box)
        dpg.draw_rectangle((ox + x0, oy + y0), (ox + max(x1, x0 + 1), oy + max(y1, y0 + 1)),
                           color=fill, fill=fill, parent=parent)
    a, b, c, d = (min(max(v, 0.0), MINIMAP) for v in (a, b, c, d))
    dpg.draw_rectangle((ox + a, oy + b), (ox + c, oy + d),
                       color=style.minimap_view, thickness=1.5, parent=parent)
