"""The Dear PyGui viewer: the graph canvas, the node inspector and the live loss chart.

`run(queue, lang, **kwargs)` is the target that `pyasg.viewer.process.launch` starts in
its own process. It reads the JSON texts of `pyasg.viewer.protocol` from `queue` every
frame and:

* keeps every received graph by ``(name, kind)``; the first one is shown, a combo
  switches between them (a graph that arrives again under the shown key replaces it);
* draws the shown graph with `pyasg.viewer.layout.layout` through
  `pyasg.viewer.canvas.draw_canvas`: data flowing top to bottom, each box sized to its
  text (op, output shape, the parameters it reads: `weight.T 32×32 f32`), filled with
  its category's colour (`CATEGORY_COLORS`; a legend names the categories present, in
  the viewer's language), edges routed around boxes, output boxes with a thick border,
  a minimap when the graph does not fit. Module scopes start collapsed
  (`layout.default_collapse`): a click on a ``[+]`` box expands it, a right click on
  any box collapses its scope again, "Expand all" / "Collapse all" do all of them.
  Drag with the left mouse button to pan, turn the wheel to zoom, press F to fit the
  graph to the window (done on open); a search box highlights boxes whose label, op
  name, node name or input path contains the text; the "collapse" box takes scope
  patterns (``blocks.*, embed``) in place of the default;
* a click on a box selects it (on a parameter's line: that parameter): the inspector
  shows first what it is and does (`texts.explain_op`'s what/formula/why, or for a
  parameter its layer and role, `texts.param_heading` and `texts.explain_param`), then
  its live values, then, folded, the technical details: attributes, type, inputs and
  users (buttons that select them), its source line, its scope;
* plots the loss (and one labelled series per metric name) with a point per
  ``StepDone``; a static viewer (``static=True``: `pyasg view FILE`) has no chart, no
  model lab and no training status;
* colours boxes by the step's time, memory or FLOPs once a ``CostReady`` for the shown
  graph has arrived ("Colour by", left of the legend; the inspector adds the cost per
  step), and offers the model lab's changes (``LabOffered``) in a panel right of the
  chart, marking each applied one (``ModelChanged``) on the chart
  (`pyasg.viewer.panels`);
* on ``RunFinished`` shows a status line (the error text if any) and keeps running;
  on ``Close`` (or when the window is closed) returns, so the process exits with 0.

The window fills the screen (`pyasg.viewer.screen.screen_size`) and its panes follow
when it is resized. An unknown `lang` falls back to English with a warning on stderr
(`texts.resolve_lang`).

Live values: selecting a node sends a ``Watch`` request on the ``requests`` queue (given
by `pyasg.viewer.launch`); the ``NodeValues`` that come back (every ``watch_every``
steps, default 5) are shown under the explanations: min / max / mean / std and a
histogram of the node's value and of its gradient. ``ParamsDescribed`` messages tell
the inspector each parameter's recorded layer kind.

Keyword arguments: ``width`` and ``height`` of the window (default: the screen's),
``title``, ``watch_every``, ``static``, and the test hook ``script``.

Test hook ``script``: a list of commands (plain dicts) run one per frame, starting once
the first graph has been drawn. Each has a ``"cmd"`` key:

* ``{"cmd": "wait_graphs", "n": 2}`` / ``{"cmd": "wait_steps", "n": 3}`` /
  ``{"cmd": "wait_values"}`` / ``{"cmd": "wait_finished"}``: hold the script until that
  many graphs / chart points have arrived, live values of the selected node, or a
  ``RunFinished`` (each gives up after ``timeout`` seconds, 30);
* ``{"cmd": "show", "name": "model", "kind": "gradient"}``: switch the shown graph;
* ``{"cmd": "select", "op": "matmul"}`` (first node with that op name),
  ``{"cmd": "select", "id": 3}`` or ``{"cmd": "select", "name": "p.fc.weight"}``
  (node name or input path); ``{"cmd": "select", "id": null}`` clears the selection;
  ``{"cmd": "select", "box": "params.0"}`` selects a box by its layout key (a
  collapsed box: the inspector shows the group, as its "group" line does);
* ``{"cmd": "click", "label": "[+] blocks.0"}``: a left click at the middle of the
  first box with that label, or ``{"cmd": "click", "x": 10, "y": 20}`` at that canvas
  pixel (``"right": true``: a right click), through the same code as the mouse;
  ``{"cmd": "key", "key": "F"}``: the F key;
* ``{"cmd": "zoom", "factor": 3.0}``, ``{"cmd": "pan", "dx": -200, "dy": 0}``;
* ``{"cmd": "search", "text": "tanh"}``, ``{"cmd": "collapse", "prefix": "p.fc"}``,
  ``{"cmd": "expand_all"}``, ``{"cmd": "collapse_all"}``;
* ``{"cmd": "resize", "width": 1200, "height": 800}``: resize the window;
* ``{"cmd": "frames", "n": 5}``: render that many frames;
* ``{"cmd": "screenshot", "path": "/tmp/a.png"}``: `dpg.output_frame_buffer` to a PNG,
  then render frames until the file exists (and a few more);
* ``{"cmd": "dump", "path": "/tmp/state.json"}``: write `App.state` as JSON (written to
  a temporary name and renamed, so a reader never sees half a file): the shown graph
  ``[name, kind]``, every graph key, the selected box and node, the inspector's texts,
  the number of chart points per series, the selected node's live values, the
  categories drawn, their colours and the legend's texts, the search matches, the
  status line, the language, the view (scale, offset, canvas size), each box's label
  and its rectangle on the canvas in pixels, the labels whose measured width does not
  fit their box, the expanded scopes, each pane's rectangle (``panes``);
* ``{"cmd": "open_body", "node": 12, "which": 0}``: open a control-flow node's sub-graph;
* ``{"cmd": "quit"}``: leave the loop (exit code 0);
* ``{"cmd": "heat", "metric": "time"}`` and ``{"cmd": "lab", "what": ..., "path": ...,
  "value": ...}``: the heat map and the model lab (`pyasg.viewer.panels`, whose state
  the dump adds: the heat mode, legend and box colours, the chart's change markers,
  the lab's offers and history).
"""

from __future__ import annotations

import json
import math
import os
import queue as queue_module
import time
from collections.abc import Callable
from typing import Any

from pyasg.asg import Graph
from pyasg.asg.ops import Cond, Control, Fused, WhileLoop
from pyasg.events import GraphReady, NodeValues, ParamsDescribed, RunFinished, StepDone
from pyasg.viewer import texts
from pyasg.viewer.canvas import draw_canvas, minimap_hit
from pyasg.viewer.labels import MONO_FONT, MONO_SIZE, compact, shape_text, step_ticks
from pyasg.viewer.layout import (
    FONT,
    MIN_GROUP,
    PAD,
    Box,
    Key,
    Layout,
    box_nodes,
    default_collapse,
    layout,
)
from pyasg.viewer.panels import LAB_WIDTH, CostLabPanels
from pyasg.viewer.protocol import ProtocolError, decode, encode_watch
from pyasg.viewer.screen import screen_size
from pyasg.viewer.view import View, fit, zoom

__all__ = ["CATEGORY_COLORS", "App", "run"]

#: Box fill colour per op category (RGB); `FALLBACK_COLOR` for any other category.
CATEGORY_COLORS: dict[str, tuple[int, int, int]] = {
    "input": (70, 130, 180),
    "constant": (128, 128, 128),
    "arithmetic": (218, 165, 32),
    "activation": (60, 179, 113),
    "linear": (205, 92, 92),
    "reduction": (147, 112, 219),
    "shape": (0, 170, 170),
    "comparison": (255, 140, 0),
    "selection": (210, 105, 180),
    "identity": (189, 183, 107),
    "cast": (160, 82, 45),
    "indexing": (106, 90, 205),
    "random": (230, 200, 0),
    "convolution": (178, 34, 34),
    "pooling": (46, 139, 87),
    "attention": (220, 120, 160),
    "fused": (120, 160, 220),
    "group": (88, 92, 110),
}
FALLBACK_COLOR = (200, 200, 200)

FONT_PATH = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
#: Histogram bars of a node's live value and of its gradient.
VALUE_BARS = (90, 200, 120)
GRADIENT_BARS = (235, 120, 80)
HEADING = (255, 220, 120)
SECTION = (150, 200, 255)
#: The panes: the inspector's share of the width (at least `INSPECTOR_MIN` pixels), the
#: chart's share of the height, the rows above the canvas.
INSPECTOR_SHARE, INSPECTOR_MIN = 0.3, 340
CHART_SHARE = 0.24
TOOLBAR_H = 92
#: Pixels between the chart and the model lab (Dear PyGui's item spacing).
PANE_GAP = 8


#: a control-flow op's sub-graphs, in `graphs()` order -> the inspector's button texts
SUB_GRAPHS: dict[type, tuple[str, ...]] = {Cond: ("open_true", "open_false"),
                                           WhileLoop: ("open_condition", "open_body")}


def color_of(category: str) -> tuple[int, int, int]:
    """The fill colour of a category's boxes."""
    return CATEGORY_COLORS.get(category, FALLBACK_COLOR)


def _short(value: object, limit: int = 100) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[:limit - 1] + "…"


def pane_sizes(width: int, height: int, chart: bool) -> dict[str, tuple[int, int]]:
    """The panes' (width, height) in a `width` x `height` window: canvas, inspector, and
    under the canvas the chart and, right of it, the model lab (`LAB_WIDTH`, at most
    half the row); without a chart (a static viewer) neither.

    >>> pane_sizes(1600, 1000, chart=True)
    {'canvas': (1092, 670), 'inspector': (-1, 892), 'chart': (704, 214), 'lab': (380, 214)}
    >>> pane_sizes(1600, 1000, chart=False)["canvas"], pane_sizes(400, 400, chart=True)["lab"]
    ((1092, 892), (96, 70))
    """
    inspector_w = max(INSPECTOR_MIN, int(width * INSPECTOR_SHARE))
    canvas_w = max(200, width - inspector_w - 28)
    body_h = max(200, height - TOOLBAR_H - 16)
    chart_h = int(body_h * CHART_SHARE) if chart else 0
    canvas_h = body_h - chart_h - (8 if chart else 0)
    lab_w = min(LAB_WIDTH, (canvas_w - PANE_GAP) // 2) if chart else 0
    chart_w = canvas_w - lab_w - PANE_GAP if chart else 0
    return {"canvas": (canvas_w, canvas_h), "inspector": (-1, body_h),
            "chart": (chart_w, chart_h), "lab": (lab_w, chart_h)}


class App(CostLabPanels):
    """The viewer's state and widgets (one per process; needs a Dear PyGui context);
    the heat map and the model lab are `pyasg.viewer.panels`'."""

    def __init__(self, lang: str = "en", width: int | None = None, height: int | None = None,
                 title: str = "pyasg viewer", script: list[dict[str, Any]] | None = None,
                 requests: Any = None, watch_every: int = 5, static: bool = False) -> None:
        self.lang = texts.resolve_lang(lang)
        screen = screen_size()
        self.width = int(width) if width else screen[0]
        self.height = int(height) if height else screen[1]
        self.title = title
        self.static = bool(static)
        self.script = list(script or [])
        self.requests = requests  # the queue back to training, for live values
        self.watch_every = max(1, int(watch_every))
        self.param_kinds: dict[str, str] = {}
        self.live: dict[tuple[str, str, int], NodeValues] = {}
        self.last_step: int | None = None
        self.graphs: dict[tuple[str, str], Graph] = {}
        self.current: tuple[str, str] | None = None
        self.lay: Layout | None = None
        self.collapse = ""  # the user's patterns; empty: the graph's module scopes
        self.expanded: set[str] = set()
        self.search = ""
        self.matches: set[Key] = set()
        self.selected: Key | None = None
        self.selected_node: int | None = None
        self.inspector_texts: list[str] = []
        self.legend_texts: list[str] = []
        self.series: dict[str, tuple[list[float], list[float]]] = {"loss": ([], [])}
        self.series_items: dict[str, int | str] = {}
        self.status = ""
        self.finished = False
        self.view = View(1.0, (10.0, 10.0))
        self.canvas_size = (400, 300)
        self.dirty = False
        self.quit = False
        self.frames = 0
        self.drawn_categories: list[str] = []
        self._drag_last: tuple[float, float] | None = None
        self._drag_moved = False
        self._wait: tuple[str, int, float] | None = None
        self._pending_shot: tuple[str, int] | None = None
        self.mono_font: Any = None
        self.group_selected = False  # the selection is a collapsed box, not one node
        self.x_ticks: list[int] = []
        self._init_panels()

    # ------------------------------------------------------------------ texts

    def t(self, key: str) -> str:
        return texts.ui_text(key, self.lang)

    @property
    def scale(self) -> float:
        return self.view.scale

    # ---------------------------------------------------------------- widgets

    def build(self) -> None:
        import dearpygui.dearpygui as dpg
        self.dpg = dpg
        dpg.create_context()
        with dpg.font_registry():
            # Dear PyGui 2 loads the glyphs it meets (Cyrillic, Greek, math) by itself;
            # the range hints of 1.x are deprecated no-ops there.
            if os.path.exists(FONT_PATH):
                dpg.bind_font(dpg.add_font(FONT_PATH, 15))
            if os.path.exists(MONO_FONT):
                self.mono_font = dpg.add_font(MONO_FONT, MONO_SIZE)
        dpg.create_viewport(title=self.title, width=self.width, height=self.height,
                            x_pos=0, y_pos=0)
        self._build_window()
        self._build_handlers()
        self._fill_inspector()
        dpg.set_primary_window("main", True)
        dpg.setup_dearpygui()
        dpg.show_viewport()
        dpg.set_viewport_resize_callback(lambda *_: self._apply_sizes())
        self._apply_sizes()

    def _build_window(self) -> None:
        dpg = self.dpg
        sizes = pane_sizes(self.width, self.height, chart=not self.static)
        with dpg.window(tag="main", no_title_bar=True, no_move=True, no_resize=True,
                        no_scrollbar=True):
            with dpg.group(horizontal=True):
                dpg.add_text(self.t("graph") + ":")
                dpg.add_combo([], tag="graph_combo", width=240, callback=self._on_combo)
                dpg.add_input_text(tag="search", hint=self.t("search"), width=160,
                                   callback=self._on_search)
                dpg.add_input_text(tag="collapse", hint=self.t("collapse"), width=200,
                                   on_enter=True, callback=self._on_collapse)
                dpg.add_button(label=self.t("fit"), callback=lambda: self.fit_view())
                dpg.add_button(label=self.t("expand_all"), callback=lambda: self.expand_all())
                dpg.add_button(label=self.t("collapse_all"),
                               callback=lambda: self.collapse_all())
                dpg.add_text("" if self.static else self.t("waiting"), tag="status")
            with dpg.group(horizontal=True, tag="legend_row"):
                self._build_heat_combo()
                dpg.add_text(self.t("legend") + ":", color=SECTION)
                dpg.add_group(tag="legend", horizontal=True)
            dpg.add_text(self.t("help"), tag="help", color=(160, 160, 170))
            with dpg.group(horizontal=True):
                with dpg.group(tag="left"):
                    w, h = sizes["canvas"]
                    with dpg.child_window(tag="canvas_window", width=w, height=h,
                                          no_scrollbar=True, border=False):
                        dpg.add_drawlist(w, h, tag="canvas")
                    if not self.static:
                        with dpg.group(horizontal=True):
                            self._build_chart(sizes["chart"])
                            self._build_lab_panel(sizes["lab"])
                with dpg.child_window(tag="inspector_window", width=-1,
                                      height=sizes["inspector"][1]):
                    dpg.add_text(self.t("inspector"))
                    dpg.add_separator()
                    dpg.add_group(tag="inspector")
        if self.mono_font is not None:
            dpg.bind_item_font("canvas", self.mono_font)

    def _build_chart(self, size: tuple[int, int]) -> None:
        dpg = self.dpg
        with dpg.plot(label=self.t("loss"), width=size[0], height=size[1], tag="chart"):
            dpg.add_plot_legend()
            dpg.add_plot_axis(dpg.mvXAxis, label=self.t("step"), tag="x_axis")
            dpg.add_plot_axis(dpg.mvYAxis, label=self.t("loss"), tag="y_axis")
        self.series_items["loss"] = dpg.add_line_series([], [], label=self.t("loss"),
                                                        parent="y_axis")
        self._build_markers()

    def _build_handlers(self) -> None:
        dpg = self.dpg
        with dpg.handler_registry():
            dpg.add_mouse_wheel_handler(callback=self._on_wheel)
            dpg.add_mouse_click_handler(button=dpg.mvMouseButton_Right,
                                        callback=self._on_right_click)
            dpg.add_key_press_handler(dpg.mvKey_F, callback=self._on_key_f)

    def _apply_sizes(self) -> None:
        """Fit the panes to the window's current size (on start and on every resize)."""
        dpg = self.dpg
        width = dpg.get_viewport_client_width() or self.width
        height = dpg.get_viewport_client_height() or self.height
        sizes = pane_sizes(width, height, chart=not self.static)
        w, h = sizes["canvas"]
        dpg.configure_item("canvas_window", width=w, height=h)
        dpg.configure_item("canvas", width=w, height=h)
        dpg.configure_item("inspector_window", height=sizes["inspector"][1])
        if not self.static:
            dpg.configure_item("chart", width=sizes["chart"][0], height=sizes["chart"][1])
            dpg.configure_item("lab_window", width=sizes["lab"][0], height=sizes["lab"][1])
        self.canvas_size = (w, h)
        self.window_size = (width, height)
        self.dirty = True

    # ----------------------------------------------------------------- events

    def handle(self, message: Any) -> None:
        """Apply one decoded message."""
        if self._handle_panels(message):
            return
        if isinstance(message, GraphReady):
            key = (message.name, message.kind)
            self.graphs[key] = message.graph
            self.dpg.configure_item("graph_combo", items=[self._combo_label(k)
                                                          for k in self.graphs])
            if self.current is None or self.current == key:
                self.show(key)
            if self.static:
                self._set_status(self.t("static"))
            elif not self.finished and not self.status:
                self._set_status(self.t("running"))
        elif isinstance(message, NodeValues):
            key = (message.name, message.kind, message.node)
            self.live[key] = message
            if self.current is not None and key == (*self.current, self.selected_node):
                self._fill_inspector()
        elif isinstance(message, ParamsDescribed):
            self.param_kinds.update(message.kinds)
            if self.selected_node is not None:
                self._fill_inspector()
        elif isinstance(message, StepDone):
            self.last_step = message.step
            self._add_point("loss", message.step, message.loss)
            for name, value in message.metrics.items():
                self._add_point(name, message.step, value)
        elif isinstance(message, RunFinished):
            self.finished = True
            self._set_status(self.t("finished") if message.error is None
                             else self.t("failed") + message.error)
        elif message == {"type": "Close"}:
            self.quit = True

    def _set_status(self, text: str) -> None:
        self.status = text
        self.dpg.set_value("status", text)

    def _combo_label(self, key: tuple[str, str]) -> str:
        return f"{key[0]} / {texts.kind_name(key[1], self.lang)}"

    def _add_point(self, name: str, step: int, value: float) -> None:
        if self.static:
            return
        dpg = self.dpg
        if name not in self.series:
            self.series[name] = ([], [])
        if name not in self.series_items:
            self.series_items[name] = dpg.add_line_series([], [], label=name, parent="y_axis")
        xs, ys = self.series[name]
        xs.append(float(step))
        ys.append(float(value))
        finite = [(x, y) for x, y in zip(xs, ys) if math.isfinite(y)]
        dpg.set_value(self.series_items[name], [[p[0] for p in finite], [p[1] for p in finite]])
        steps = [x for series_xs, _ in self.series.values() for x in series_xs]
        lo, hi = min(steps), max(steps)
        if hi - lo < 1:  # one step: a range around it, not a zero-width axis
            lo, hi = lo - 1, hi + 1
        dpg.set_axis_limits("x_axis", lo, hi)
        self.x_ticks = step_ticks(lo, hi)
        dpg.set_axis_ticks("x_axis", tuple((str(t), float(t)) for t in self.x_ticks))
        dpg.fit_axis_data("y_axis")

    # ---------------------------------------------------------------- graphs

    @property
    def graph(self) -> Graph | None:
        return None if self.current is None else self.graphs[self.current]

    def show(self, key: tuple[str, str]) -> None:
        """Show the graph stored under `key` (fit to the canvas, selection kept if valid)."""
        if key != self.current:
            self.expanded = set()
        self.current = key
        self.dpg.set_value("graph_combo", self._combo_label(key))
        self._relayout(fit=True)

    def open_body(self, node: int, which: int = 0) -> None:
        """Show sub-graph `which` of control-flow node `node` of the shown graph (a scan's
        body, a cond's branch, a while_loop's condition or body) as a graph of its own,
        kind `<kind>/%<node>.<which>` in the graph combo (so the way back is the combo)."""
        graph = self.graph
        if graph is None or node not in graph.nodes or not isinstance(graph[node].op, Control):
            return
        subs = graph[node].op.graphs()
        if not 0 <= which < len(subs):
            return
        name, kind = self.current
        key = (name, f"{kind}/%{node}.{which}")
        self.graphs[key] = subs[which]
        self.dpg.configure_item("graph_combo", items=[self._combo_label(k) for k in self.graphs])
        self.show(key)

    def _patterns(self) -> list[str]:
        """The collapsed scopes: the user's patterns (comma-separated), else the modules."""
        assert self.graph is not None
        typed = [p.strip() for p in self.collapse.split(",") if p.strip()]
        return typed or default_collapse(self.graph)

    def _relayout(self, fit: bool = False) -> None:
        graph = self.graph
        if graph is None:
            return
        try:
            self.lay = layout(graph, collapse=self._patterns(), expanded=self.expanded,
                              lang=self.lang, min_group=MIN_GROUP)
        except Exception as e:  # a bad prefix must not kill the viewer
            self._set_status(self.t("bad_collapse") + f"{type(e).__name__}: {e}"[:200])
            self.lay = layout(graph, lang=self.lang)
        if fit:
            self.fit_view()
        if self.selected_node is not None and self.selected_node not in graph.nodes:
            self.selected_node = None
        self.selected = self._key_of(self.selected_node)
        self._update_matches()
        self._fill_inspector()
        self._fill_legend()
        self.dirty = True

    def fit_view(self) -> None:
        """Show the whole graph, centred in the canvas (the F key)."""
        if self.lay is None:
            return
        self.view = fit(self.lay.width, self.lay.height, *self.canvas_size)
        self.dirty = True

    # ------------------------------------------------------------ collapsing

    def expand(self, key: Key) -> None:
        """Open the collapsed box `key` (its scope's layers become boxes), keeping what
        it opened to where the box was on screen."""
        if not isinstance(key, str) or self.lay is None or key not in self.lay.boxes:
            return
        box = self.lay.boxes[key]
        before = self.view.to_screen(box.x + box.w / 2, box.y)
        nodes = set(box.nodes)
        self.expanded.add(key.split("#")[0])
        self._relayout()
        assert self.lay is not None
        inside = [b for b in self.lay.boxes.values() if nodes.intersection(b.nodes)]
        if inside:
            top = min(inside, key=lambda b: b.y)
            after = self.view.to_screen(top.x + top.w / 2, top.y)
            self.pan(before[0] - after[0], before[1] - after[1])

    def collapse_scope(self, scope: str) -> None:
        """Close `scope` again, and every scope opened under it."""
        self.expanded = {s for s in self.expanded if s != scope and not s.startswith(scope + ".")}
        self._relayout()

    def expand_all(self) -> None:
        if self.lay is not None:
            self.expanded = {p for s in self.lay.scopes.values() if s
                             for p in _prefixes(s)}
            self._relayout(fit=True)

    def collapse_all(self) -> None:
        self.expanded = set()
        self._relayout(fit=True)

    def scope_to_collapse(self, key: Key) -> str | None:
        """The innermost opened scope that box `key` lies in (a right click closes it)."""
        if self.lay is None or key not in self.lay.boxes:
            return None
        scope = key.split("#")[0] if isinstance(key, str) else self.lay.scopes.get(key, "")
        inside = [s for s in self.expanded if scope == s or scope.startswith(s + ".")]
        if isinstance(key, str):
            inside = [s for s in inside if s != scope]
        return max(inside, key=len, default=None)

    def _key_of(self, node: int | None) -> Key | None:
        if node is None or self.lay is None:
            return None
        for key, box in self.lay.boxes.items():
            if node in box.nodes:
                return key
        for key, box in self.lay.boxes.items():  # a parameter: the first box reading it
            if node in box.attrs:
                return key
        return None

    def select_node(self, node: int | None) -> None:
        """Select the box holding graph node `node` (None clears the selection); the
        inspector shows the node even when its box is a collapsed group."""
        self.group_selected = False
        self.selected_node = node
        self.selected = self._key_of(node)
        if self.selected is None:
            self.selected_node = None
        self._request_values()
        self._fill_inspector()
        self.dirty = True

    def _request_values(self) -> None:
        """Ask the training process for the selected node's live values."""
        if self.requests is None or self.current is None or self.selected_node is None:
            return
        try:
            self.requests.put_nowait(encode_watch(*self.current, self.selected_node,
                                                  self.watch_every))
        except (queue_module.Full, ValueError, OSError):
            pass  # training is gone or busy; the next selection asks again

    def select_key(self, key: Key | None) -> None:
        """Select box `key`: a node's box shows the node, a collapsed box the group."""
        if self.lay is None or key not in self.lay.boxes:
            self.select_node(None)
            return
        group = self.lay.boxes[key].collapsed
        self.select_node(self.lay.boxes[key].nodes[0])  # (it clears group_selected)
        self.selected = key
        self.group_selected = group
        if group:
            self._fill_inspector()

    def _node_words(self, node: int) -> list[str]:
        assert self.graph is not None
        n = self.graph[node]
        words = [n.op.name]
        if n.name:
            words.append(n.name)
        path = getattr(n.op, "path", None)
        if path:
            words.append(path)
        return [w.lower() for w in words]

    def _update_matches(self) -> None:
        self.matches = set()
        text = self.search.strip().lower()
        if not text or self.lay is None:
            return
        for key, box in self.lay.boxes.items():
            words = [line.lower() for line in box.lines]
            for node in box.nodes + box.attrs:
                words.extend(self._node_words(node))
            if any(text in w for w in words):
                self.matches.add(key)

    # ---------------------------------------------------------------- drawing

    def draw(self) -> None:
        """Redraw the canvas from the layout, the view and the selection."""
        self.dirty = False
        if self.lay is None:
            self.dpg.delete_item("canvas", children_only=True)
            return
        self.drawn_categories = draw_canvas(self.dpg, "canvas", self.lay, self.view,
                                            *self.canvas_size, color_of,
                                            selected=self.selected, matches=self.matches,
                                            fill_of=self._fill_of)

    def _fill_of(self, key: Key, box: Box) -> tuple[int, int, int]:
        """A box's fill on the canvas: its heat colour in a cost mode, else its category's."""
        return self._box_fill(key, color_of(box.category))

    def _fill_legend(self) -> None:
        dpg = self.dpg
        dpg.delete_item("legend", children_only=True)
        self.legend_texts = []
        if self.lay is None or self._fill_heat_legend():
            return
        present: list[str] = []
        for box in self.lay.boxes.values():
            if box.category not in present:
                present.append(box.category)
        for category in present:
            with dpg.drawlist(14, 14, parent="legend"):
                dpg.draw_rectangle((0, 0), (14, 14), color=color_of(category),
                                   fill=color_of(category))
            name = texts.category_name(category, self.lang)
            self.legend_texts.append(name)
            dpg.add_text(name, parent="legend")

    # -------------------------------------------------------------- inspector

    def _fill_inspector(self) -> None:
        """Explanation first, then live values, then the technical details, folded."""
        dpg = self.dpg
        dpg.delete_item("inspector", children_only=True)
        lines: list[str] = []

        def text(value: str, color: tuple[int, int, int] | None = None,
                 parent: str | int = "inspector", draw: bool = True) -> None:
            lines.append(value)  # what a test reads (`state["inspector"]`)
            if draw:
                kwargs = {"color": color} if color else {}
                dpg.add_text(value, parent=parent, wrap=0, **kwargs)

        def node_button(node: int, parent: str | int) -> None:
            assert self.graph is not None
            n = self.graph[node]
            label = f"%{node} {n.op.name}" + (f" {n.name}" if n.name else "")
            path = getattr(n.op, "path", None)
            if path and path != n.name:
                label += f" {path}"
            lines.append(label)
            dpg.add_button(label=label, parent=parent, user_data=node,
                           callback=lambda _s, _a, u: self.select_node(u))

        graph, lay = self.graph, self.lay
        if graph is None or lay is None or self.selected is None or self.selected_node is None:
            text(self.t("no_selection"))
            self.inspector_texts = lines
            return
        box = lay.boxes[self.selected]
        if box.collapsed and self.group_selected:
            text(f"{self.t('group')}: {box.label}", HEADING)
            text(box.lines[1])
            self._fill_cost(text, box_nodes(lay)[self.selected])  # the group's sum, once
            key = self.selected
            dpg.add_button(label=self.t("expand"), parent="inspector",
                           callback=lambda: self.expand(key))
            lines.append(self.t("expand"))
            with dpg.collapsing_header(label=self.t("nodes"), parent="inspector") as header:
                for node in box.nodes[:80]:
                    node_button(node, header)
            self.inspector_texts = lines
            return
        node = self.selected_node
        n = graph[node]
        path = getattr(n.op, "path", None)
        if n.op.name == "input" and path and "." in path and not path.startswith("captured."):
            # a parameter: its layer and role are the explanation ("input" says nothing)
            kind = texts.recorded_kind(path, self.param_kinds)
            text(texts.param_heading(path, kind, self.lang), HEADING)
            text(f"{self.t('shape')}: {shape_text(n.type.shape, n.type.dtype)}")
            text(f"{self.t('role')}:", SECTION)
            text(texts.explain_param(path, kind, self.lang))
        else:
            text(f"{self.t('op')}: {n.op.name}  ({shape_text(n.type.shape, n.type.dtype)})",
                 HEADING)
            info = texts.explain_op(n.op.name, self.lang)
            for part in ("what", "formula", "why"):
                text(f"{self.t(part)}:", SECTION)
                text(info[part])
        self._fill_cost(text, (node,))  # the node's own: its memory, its kernel
        self._fill_live(text)
        if isinstance(n.op, Control):  # one node that opens into its sub-graphs
            for which, part in enumerate(SUB_GRAPHS.get(type(n.op), ("open_body",))):
                lines.append(self.t(part))
                dpg.add_button(label=self.t(part), parent="inspector",
                               callback=lambda s, a, u: self.open_body(*u),
                               user_data=(node, which))
        scope = self.scope_to_collapse(self.selected)
        if scope is not None:
            label = self.t("collapse_scope").format(scope=scope.split(".", 1)[-1])
            lines.append(label)
            dpg.add_button(label=label, parent="inspector",
                           callback=lambda: self.collapse_scope(scope))
        with dpg.collapsing_header(label=self.t("details"), parent="inspector") as details:
            self._fill_details(node, text, node_button, details)
        self.inspector_texts = lines

    def _fill_details(self, node: int, text: Callable[..., None],
                      node_button: Callable[[int, Any], None], parent: Any) -> None:
        """The folded part: id, attributes, type, inputs, users, source line, scope."""
        graph, lay = self.graph, self.lay
        assert graph is not None and lay is not None
        n = graph[node]
        text(f"{self.t('op')}: {n.op.name}  (%{node}" + (f", {n.name})" if n.name else ")"),
             parent=parent)
        attrs = n.op.attrs()
        if n.op.name == "constant":
            attrs = {}
        if isinstance(n.op, Fused):  # its sub-graph, as the ops it holds
            attrs = {"ops": ", ".join(n.op.op_names)}
        attrs.pop("type", None)
        if attrs:
            text(f"{self.t('attributes')}:", parent=parent)
            for k, v in attrs.items():
                text(f"  {k} = {_short(v)}", parent=parent)
        text(f"{self.t('shape')}: {list(n.type.shape)}   {self.t('dtype')}: {n.type.dtype}",
             parent=parent)
        if n.inputs:
            text(f"{self.t('inputs')}:", parent=parent)
            for j in dict.fromkeys(n.inputs):
                node_button(j, parent)
        users = graph.users.get(node, ())
        if users:
            text(f"{self.t('users')}:", parent=parent)
            for j in users:
                node_button(j, parent)
        if n.source:
            text(f"{self.t('source')}: {n.source}", parent=parent)
        scope = lay.scopes.get(node, "")
        if scope:
            text(f"{self.t('scope')}: {scope}", parent=parent)

    def _fill_live(self, text: Callable[..., None]) -> None:
        """The selected node's latest live values: statistics and histograms."""
        if self.requests is None or self.current is None:
            return
        values = self.live.get((*self.current, self.selected_node))
        heading = self.t("live")
        if values is not None and self.last_step is not None:
            heading += f" ({self.t('at_step')} {self.last_step})"
        text(f"{heading}:", SECTION)
        if values is None:
            text(self.t("live_waiting"))
            return
        for label, summary, color in ((self.t("value"), values.value, VALUE_BARS),
                                      (self.t("gradient"), values.grad, GRADIENT_BARS)):
            if summary is None:
                if label == self.t("gradient") and self.current[1] == "forward":
                    text(f"{label}: {self.t('no_gradient')}")
                continue
            text(f"{label} {summary['shape']}:", color)
            self._stats_table(summary, text)
            if summary["nonfinite"]:
                text(self.t("nonfinite").format(n=summary["nonfinite"]), (255, 90, 90))
            self._histogram(summary, color)
        self.dpg.add_separator(parent="inspector")

    def _stats_table(self, summary: dict[str, Any], text: Callable[..., None]) -> None:
        """min / max / mean / std in a table: one cell per number, never split."""
        dpg = self.dpg
        names = [self.t(f"stat_{k}") for k in ("min", "max", "mean", "std")]
        values = [compact(float(summary[k])) for k in ("min", "max", "mean", "std")]
        with dpg.table(header_row=True, parent="inspector", borders_innerV=True,
                       policy=dpg.mvTable_SizingStretchSame):
            for name in names:
                dpg.add_table_column(label=name)
            with dpg.table_row():
                for value in values:
                    dpg.add_text(value)
        text("  ".join(f"{k} {v}" for k, v in zip(names, values)), draw=False)

    def _histogram(self, summary: dict[str, Any], color: tuple[int, int, int]) -> None:
        dpg = self.dpg
        counts = summary["hist"]
        width, height = 300, 60
        with dpg.drawlist(width, height + 14, parent="inspector"):
            dpg.draw_rectangle((0, 0), (width, height), color=(60, 60, 70), fill=(40, 40, 48))
            top = max(counts) if counts else 0
            bar = width / max(len(counts), 1)
            for k, c in enumerate(counts):
                if c:
                    h = max(1.0, height * c / top)
                    dpg.draw_rectangle((k * bar + 1, height - h), ((k + 1) * bar - 1, height),
                                       color=color, fill=color)
            lo, hi = summary["edges"]
            dpg.draw_text((0, height + 1), compact(float(lo)), size=12)
            dpg.draw_text((width - 60, height + 1), compact(float(hi)), size=12)

    # -------------------------------------------------------------- callbacks

    def _on_combo(self, _sender: Any, value: str) -> None:
        for key in self.graphs:
            if self._combo_label(key) == value:
                self.show(key)
                return

    def _on_search(self, _sender: Any, value: str) -> None:
        self.search = value
        self._update_matches()
        self.dirty = True

    def _on_collapse(self, _sender: Any, value: str) -> None:
        self.collapse = value.strip()
        self.expanded = set()
        self._relayout(fit=True)

    def _typing(self) -> bool:
        return any(self.dpg.is_item_active(tag) for tag in ("search", "collapse"))

    def _on_key_f(self, *_: Any) -> None:
        if not self._typing():
            self.fit_view()

    def _on_wheel(self, _sender: Any, delta: float) -> None:
        if not self.dpg.is_item_hovered("canvas_window"):
            return
        self.view = zoom(self.view, 1.15 if delta > 0 else 1 / 1.15, self._mouse_in_canvas())
        self.dirty = True

    def _on_right_click(self, *_: Any) -> None:
        if self.dpg.is_item_hovered("canvas_window"):
            self.right_click(*self._mouse_in_canvas())

    def _mouse_in_canvas(self) -> tuple[float, float]:
        mx, my = self.dpg.get_mouse_pos(local=False)
        x0, y0 = self.dpg.get_item_rect_min("canvas")
        return mx - x0, my - y0

    def box_at(self, x: float, y: float) -> Key | None:
        """The key of the box under canvas pixel (x, y), if any."""
        if self.lay is None:
            return None
        cx, cy = self.view.to_canvas(x, y)
        for key, box in self.lay.boxes.items():
            if box.x <= cx <= box.x + box.w and box.y <= cy <= box.y + box.h:
                return key
        return None

    def click(self, x: float, y: float) -> None:
        """A left click at canvas pixel (x, y): the minimap centres the view there; a
        collapsed box expands; a parameter's line selects the parameter; a box selects
        its node; empty canvas clears the selection."""
        if self.lay is None:
            return
        w, h = self.canvas_size
        target = minimap_hit(self.lay, self.view, w, h, x, y)
        if target is not None:
            px, py = self.view.to_screen(*target)
            self.view = View(self.view.scale, (self.view.offset[0] + w / 2 - px,
                                               self.view.offset[1] + h / 2 - py))
            self.dirty = True
            return
        key = self.box_at(x, y)
        if key is None:
            self.select_node(None)
            return
        box = self.lay.boxes[key]
        if box.collapsed:
            self.expand(key)
            return
        line_node = box.line_at(self.view.to_canvas(x, y)[1])
        if line_node is not None and line_node not in box.nodes:
            self.select_node(line_node)
        else:
            self.select_key(key)

    def right_click(self, x: float, y: float) -> None:
        """A right click at canvas pixel (x, y): collapse the scope of the box there."""
        key = self.box_at(x, y)
        scope = None if key is None else self.scope_to_collapse(key)
        if scope is not None:
            self.collapse_scope(scope)

    def _poll_mouse(self) -> None:
        """Pan on a left-button drag over the canvas; a click without a drag is a click."""
        dpg = self.dpg
        down = dpg.is_mouse_button_down(dpg.mvMouseButton_Left)
        if down:
            pos = self._mouse_in_canvas()
            if self._drag_last is None:
                if dpg.is_item_hovered("canvas_window"):
                    self._drag_last, self._drag_moved = pos, False
                return
            dx, dy = pos[0] - self._drag_last[0], pos[1] - self._drag_last[1]
            if self._drag_moved or abs(dx) + abs(dy) > 3:
                self._drag_moved = True
                self.pan(dx, dy)
                self._drag_last = pos
        elif self._drag_last is not None:
            if not self._drag_moved:
                self.click(*self._drag_last)
            self._drag_last = None

    def pan(self, dx: float, dy: float) -> None:
        self.view = View(self.view.scale, (self.view.offset[0] + dx, self.view.offset[1] + dy))
        self.dirty = True

    # ------------------------------------------------------------------ state

    def _overflowing(self) -> list[str]:
        """Box lines whose width, as the canvas font renders them, exceeds their box."""
        if self.lay is None or self.mono_font is None:
            return []
        bad = []
        for box in self.lay.boxes.values():
            for line in box.lines:
                size = self.dpg.get_text_size(line, font=self.mono_font)
                if size and size[0] * FONT / MONO_SIZE + 2 * PAD > box.w + 0.5:
                    bad.append(line)
        return bad

    def _screen_boxes(self) -> list[dict[str, Any]]:
        if self.lay is None:
            return []
        out = []
        for key, box in self.lay.boxes.items():
            x0, y0 = self.view.to_screen(box.x, box.y)
            x1, y1 = self.view.to_screen(box.x + box.w, box.y + box.h)
            out.append({"key": key, "label": box.label, "rect": [x0, y0, x1, y1],
                        "collapsed": box.collapsed})
        return out

    def _pane_rects(self) -> dict[str, list[float]]:
        """Each pane's [x, y, width, height] in the window as last drawn (a static viewer
        has no chart and no lab)."""
        dpg = self.dpg
        return {tag: [*dpg.get_item_pos(tag), *dpg.get_item_rect_size(tag)]
                for tag in ("canvas_window", "chart", "lab_window", "inspector_window")
                if dpg.does_item_exist(tag)}

    @property
    def state(self) -> dict[str, Any]:
        """What a test checks (see the module docstring's "dump")."""
        node = self.selected_node
        graph = self.graph
        return {
            "lang": self.lang,
            "graph": list(self.current) if self.current else None,
            "graphs": [list(k) for k in self.graphs],
            "selected": self.selected,
            "selected_node": node,
            "selected_op": graph[node].op.name if graph is not None and node is not None
            else None,
            "inspector": list(self.inspector_texts),
            "chart": {name: len(xs) for name, (xs, _ys) in self.series.items()},
            "chart_shown": not self.static,
            "panes": self._pane_rects(),
            "x_ticks": list(self.x_ticks),
            "combo": self.dpg.get_value("graph_combo"),
            "series_labels": [self.dpg.get_item_label(item)
                              for item in self.series_items.values()],
            "values": self._live_state(),
            "param_kinds": len(self.param_kinds),
            "categories": list(self.drawn_categories),
            "colors": {c: list(color_of(c)) for c in self.drawn_categories},
            "legend": list(self.legend_texts),
            "help": self.t("help"),
            "matches": sorted(map(str, self.matches)),
            "collapse": self.collapse,
            "expanded": sorted(self.expanded),
            "boxes": 0 if self.lay is None else len(self.lay.boxes),
            "screen_boxes": self._screen_boxes(),
            "overflow": self._overflowing(),
            "status": self.status,
            "finished": self.finished,
            "scale": self.view.scale,
            "offset": list(self.view.offset),
            "canvas": list(self.canvas_size),
            "layout_size": [0.0, 0.0] if self.lay is None else [self.lay.width,
                                                                 self.lay.height],
            "window": list(getattr(self, "window_size", (self.width, self.height))),
            "frames": self.frames,
            **self._panel_state(),
        }

    def _live_state(self) -> dict[str, Any] | None:
        if self.current is None or self.selected_node is None:
            return None
        values = self.live.get((*self.current, self.selected_node))
        return None if values is None else {"node": values.node, "value": values.value,
                                            "grad": values.grad}

    # ----------------------------------------------------------------- script

    def _step_script(self) -> None:
        """Run (at most) one script command; called once per frame."""
        if self._pending_shot is not None:
            path, frames = self._pending_shot
            if (os.path.exists(path) and frames >= 3) or frames > 120:
                self._pending_shot = None
            else:
                self._pending_shot = (path, frames + 1)
            return
        if self._wait is not None:
            what, n, deadline = self._wait
            done = {"graphs": len(self.graphs) >= n,
                    "steps": len(self.series["loss"][0]) >= n,
                    "values": self._live_state() is not None,
                    "finished": self.finished}[what]
            if done or time.monotonic() > deadline:
                self._wait = None
            return
        if not self.script or self.graph is None:
            return
        command = self.script.pop(0)
        cmd = command.get("cmd")
        if self._panel_script(command):
            return
        timeout = time.monotonic() + float(command.get("timeout", 30.0))
        if cmd == "wait_graphs":
            self._wait = ("graphs", int(command.get("n", 1)), timeout)
        elif cmd == "wait_steps":
            self._wait = ("steps", int(command.get("n", 1)), timeout)
        elif cmd == "wait_values":
            self._wait = ("values", 0, timeout)
        elif cmd == "wait_finished":
            self._wait = ("finished", 0, timeout)
        elif cmd == "show":
            key = (command["name"], command["kind"])
            if key in self.graphs:
                self.show(key)
        elif cmd == "select" and "box" in command:
            self.select_key(command["box"])
        elif cmd == "select":
            self.select_node(self._find_node(command))
        elif cmd == "search":
            self.dpg.set_value("search", command.get("text", ""))
            self._on_search(None, command.get("text", ""))
        elif cmd == "collapse":
            self.dpg.set_value("collapse", command.get("prefix", ""))
            self._on_collapse(None, command.get("prefix", ""))
        elif cmd == "click":
            self._script_click(command)
        elif cmd == "key" and str(command.get("key", "")).upper() == "F":
            self._on_key_f()
        elif cmd == "zoom":
            w, h = self.canvas_size
            self.view = zoom(self.view, float(command.get("factor", 2.0)), (w / 2, h / 2))
            self.dirty = True
        elif cmd == "pan":
            self.pan(float(command.get("dx", 0.0)), float(command.get("dy", 0.0)))
        elif cmd == "open_body":
            self.open_body(int(command["node"]), int(command.get("which", 0)))
        elif cmd == "expand_all":
            self.expand_all()
        elif cmd == "collapse_all":
            self.collapse_all()
        elif cmd == "resize":
            self.dpg.set_viewport_width(int(command["width"]))
            self.dpg.set_viewport_height(int(command["height"]))
            self.script[:0] = [{"cmd": "_noop"}] * 5  # let the window follow
        elif cmd == "frames":
            self.script[:0] = [{"cmd": "_noop"}] * max(0, int(command.get("n", 1)) - 1)
        elif cmd == "screenshot":
            path = str(command["path"])
            if os.path.exists(path):
                os.remove(path)
            self.dpg.output_frame_buffer(file=path)
            self._pending_shot = (path, 0)
        elif cmd == "dump":
            path = str(command["path"])
            tmp = path + ".tmp"
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(self.state, f, ensure_ascii=False, indent=1)
            os.replace(tmp, path)
        elif cmd == "quit":
            self.quit = True

    def _script_click(self, command: dict[str, Any]) -> None:
        """A click at the middle of the first box labelled `command["label"]`, or at
        canvas pixel (`command["x"]`, `command["y"]`)."""
        if self.lay is None:
            return
        if "x" in command:
            click = self.right_click if command.get("right") else self.click
            click(float(command["x"]), float(command["y"]))
            return
        for box in self.lay.boxes.values():
            if box.label == command.get("label"):
                x, y = self.view.to_screen(box.x + box.w / 2, box.y + box.h / 2)
                (self.right_click if command.get("right") else self.click)(x, y)
                return

    def _find_node(self, command: dict[str, Any]) -> int | None:
        graph = self.graph
        assert graph is not None
        if "id" in command:
            node = command["id"]
            return node if node in graph.nodes else None
        order = self.lay.boxes if self.lay is not None else {}
        shown = [n for box in order.values() for n in box.nodes + box.attrs]
        for node in shown:
            n = graph[node]
            if "op" in command and n.op.name == command["op"]:
                return node
            if "name" in command and command["name"] in (n.name, getattr(n.op, "path", None)):
                return node
        return None

    # ------------------------------------------------------------------- loop

    def loop(self, queue: Any) -> None:
        dpg = self.dpg
        while dpg.is_dearpygui_running() and not self.quit:
            for _ in range(200):  # drain, but keep the frame rate up
                try:
                    text = queue.get_nowait()
                except queue_module.Empty:
                    break
                except (EOFError, OSError, ValueError):  # the training side went away
                    break
                try:
                    self.handle(decode(text))
                except ProtocolError as e:
                    self._set_status(self.t("bad_message") + str(e)[:200])
                if self.quit:
                    break
            if self.quit:
                break
            self._poll_mouse()
            if self.dirty:
                self.draw()
            dpg.render_dearpygui_frame()
            self.frames += 1
            if self.lay is not None and not self.dirty and self.frames > 2:
                self._step_script()
            time.sleep(0.004)


def _prefixes(scope: str) -> list[str]:
    """`a.b.c` -> `a`, `a.b`, `a.b.c`."""
    parts = scope.split(".")
    return [".".join(parts[:n]) for n in range(1, len(parts) + 1)]


def run(queue: Any, lang: str = "en", requests: Any = None, **kwargs: Any) -> None:
    """The viewer process's entry point (see the module docstring)."""
    app = App(lang, requests=requests, **kwargs)
    app.build()
    try:
        app.loop(queue)
    finally:
        app.dpg.destroy_context()
