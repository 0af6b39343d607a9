"""The Dear PyGui viewer: the graph canvas, the node inspector and the live loss chart.

`run(queue, lang, **kwargs)` is the target that `pyasg.viewer.process.launch` starts in
its own process. It reads the JSON texts of `pyasg.viewer.protocol` from `queue` every
frame and:

* keeps every received graph by ``(name, kind)``; the first one is shown, a combo
  switches between them (a graph that arrives again under the shown key replaces it);
* draws the shown graph with `pyasg.viewer.layout.layout` in a drawlist inside a
  scrollable child window: one rectangle per box filled with its category's colour
  (`CATEGORY_COLORS`; a legend lists the categories present), edges as arrows, output
  boxes with a thick border, labels. Drag with the left mouse button to pan, turn the
  wheel to zoom; a search box highlights boxes whose label, op name, node name or input
  path contains the text; "collapse prefix" relayouts with ``collapse=[prefix]``;
* a click on a box selects it: the inspector shows the op, its attributes, its type,
  its inputs and users (buttons that select them), its source line and
  `texts.explain_op`'s what/formula/why; for an `Input` with a dotted path also the
  parameter's role (`texts.explain_param`);
* plots the loss (and one series per metric name) with a point per ``StepDone``;
* colours boxes by the step's time, memory or FLOPs once a ``CostReady`` for the shown
  graph has arrived, and offers the model lab's changes (``LabOffered``), marking each
  applied one (``ModelChanged``) on the chart (`pyasg.viewer.panels`);
* on ``RunFinished`` shows a status line (the error text if any) and keeps running;
  on ``Close`` (or when the window is closed) returns, so the process exits with 0.

An unknown `lang` falls back to English with a warning on stderr (`texts.resolve_lang`).

Live values: selecting a node sends a ``Watch`` request on the ``requests`` queue (given
by `pyasg.viewer.launch`); the ``NodeValues`` that come back (every ``watch_every``
steps, default 5) are shown under the explanations: min / max / mean / std and a
histogram of the node's value and of its gradient. ``ParamsDescribed`` messages tell
the inspector each parameter's recorded layer kind.

Keyword arguments: ``width`` and ``height`` of the window (1280 x 820), ``title``,
``watch_every``, and the test hook ``script``.

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
* ``{"cmd": "search", "text": "tanh"}``, ``{"cmd": "collapse", "prefix": "p.fc"}``;
* ``{"cmd": "frames", "n": 5}``: render that many frames;
* ``{"cmd": "screenshot", "path": "/tmp/a.png"}``: `dpg.output_frame_buffer` to a PNG,
  then render frames until the file exists (and a few more);
* ``{"cmd": "dump", "path": "/tmp/state.json"}``: write `App.state` as JSON (written to
  a temporary name and renamed, so a reader never sees half a file): the shown graph
  ``[name, kind]``, every graph key, the selected box and node, the inspector's texts,
  the number of chart points per series, the selected node's live values, the
  categories drawn and their colours, the search matches, the status line, the
  language;
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
from pyasg.asg.ops import Fused
from pyasg.events import GraphReady, NodeValues, ParamsDescribed, RunFinished, StepDone
from pyasg.viewer import texts
from pyasg.viewer.layout import Key, Layout, layout
from pyasg.viewer.panels import CostLabPanels
from pyasg.viewer.protocol import ProtocolError, decode, encode_watch

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
    "group": (105, 105, 120),
}
FALLBACK_COLOR = (200, 200, 200)

FONT_PATH = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
BACKGROUND = (25, 25, 30)
EDGE_COLOR = (150, 150, 160)
TEXT_COLOR = (15, 15, 15)
OUTPUT_BORDER = (255, 255, 255)
SELECTED_BORDER = (255, 255, 0)
MATCH_BORDER = (255, 0, 255)
MARGIN = 20.0
#: Histogram bars of a node's live value and of its gradient.
VALUE_BARS = (90, 200, 120)
GRADIENT_BARS = (235, 120, 80)

#: Labels that `texts.UI_TEXT` does not have.
_EXTRA_TEXT: dict[str, dict[str, str]] = {
    "collapse": {"en": "Collapse: blocks.*", "ru": "Свернуть: blocks.*"},
    "waiting": {"en": "Waiting for a graph…", "ru": "Ожидание графа…"},
    "running": {"en": "Running", "ru": "Идёт обучение"},
    "finished": {"en": "Run finished", "ru": "Обучение завершено"},
    "failed": {"en": "Run failed: ", "ru": "Ошибка обучения: "},
    "nodes": {"en": "Nodes", "ru": "Узлы"},
    "group": {"en": "Collapsed group", "ru": "Свёрнутая группа"},
    "bad_message": {"en": "Bad message: ", "ru": "Неверное сообщение: "},
    "bad_collapse": {"en": "Cannot collapse: ", "ru": "Не удалось свернуть: "},
}


def color_of(category: str) -> tuple[int, int, int]:
    """The fill colour of a category's boxes."""
    return CATEGORY_COLORS.get(category, FALLBACK_COLOR)


def _short(value: object, limit: int = 100) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[:limit - 1] + "…"


class App(CostLabPanels):
    """The viewer's state and widgets (one per process; needs a Dear PyGui context);
    the heat map and the model lab are `pyasg.viewer.panels`'."""

    def __init__(self, lang: str = "en", width: int = 1280, height: int = 820,
                 title: str = "pyasg viewer", script: list[dict[str, Any]] | None = None,
                 requests: Any = None, watch_every: int = 5) -> None:
        self.lang = texts.resolve_lang(lang)
        self.width, self.height, self.title = int(width), int(height), title
        self.script = list(script or [])
        self.requests = requests  # the queue back to training, for live values
        self.watch_every = max(1, int(watch_every))
        self.param_kinds: dict[str, str] = {}
        self.live: dict[tuple[str, str, int], NodeValues] = {}
        self.last_step: int | None = None
        self.graphs: dict[tuple[str, str], Graph] = {}
        self.current: tuple[str, str] | None = None
        self.lay: Layout | None = None
        self.collapse = ""
        self.search = ""
        self.matches: set[Key] = set()
        self.selected: Key | None = None
        self.selected_node: int | None = None
        self.inspector_texts: list[str] = []
        self.series: dict[str, tuple[list[float], list[float]]] = {"loss": ([], [])}
        self.series_items: dict[str, int | str] = {}
        self.status = ""
        self.finished = False
        self.scale = 1.0
        self.offset = [MARGIN, MARGIN]
        self.dirty = False
        self.quit = False
        self.frames = 0
        self.drawn_categories: list[str] = []
        self._drag_last: tuple[float, float] | None = None
        self._drag_moved = False
        self._wait: tuple[str, int, float] | None = None
        self._pending_shot: tuple[str, int] | None = None
        self._init_panels()

    # ------------------------------------------------------------------ texts

    def t(self, key: str) -> str:
        table = texts.UI_TEXT.get(key) or texts.LAB_TEXT.get(key) or _EXTRA_TEXT[key]
        return table.get(self.lang, table["en"])

    # ---------------------------------------------------------------- widgets

    def build(self) -> None:
        import dearpygui.dearpygui as dpg
        self.dpg = dpg
        dpg.create_context()
        if os.path.exists(FONT_PATH):
            # Dear PyGui 2 loads the glyphs it meets (Cyrillic, Greek, math) by itself;
            # the range hints of 1.x are deprecated no-ops there.
            with dpg.font_registry():
                font = dpg.add_font(FONT_PATH, 15)
            dpg.bind_font(font)
        dpg.create_viewport(title=self.title, width=self.width, height=self.height)
        canvas_w = int(self.width * 0.64)
        canvas_h = int(self.height * 0.56)
        with dpg.window(tag="main", no_title_bar=True, no_move=True, no_resize=True):
            with dpg.group(horizontal=True):
                dpg.add_text(self.t("graph") + ":")
                dpg.add_combo([], tag="graph_combo", width=220, callback=self._on_combo)
                dpg.add_input_text(tag="search", hint=self.t("search"), width=160,
                                   callback=self._on_search)
                dpg.add_input_text(tag="collapse", hint=self.t("collapse"), width=200,
                                   on_enter=True, callback=self._on_collapse)
                self._build_heat_combo()
                dpg.add_text(self.t("waiting"), tag="status")
            dpg.add_group(tag="legend", horizontal=True)
            with dpg.group(horizontal=True):
                with dpg.child_window(tag="canvas_window", width=canvas_w, height=canvas_h,
                                      horizontal_scrollbar=True):
                    dpg.add_drawlist(canvas_w - 16, canvas_h - 16, tag="canvas")
                with dpg.child_window(tag="inspector_window", width=-1, height=canvas_h):
                    dpg.add_text(self.t("inspector"))
                    dpg.add_separator()
                    dpg.add_group(tag="inspector")
            with dpg.group(horizontal=True):
                with dpg.plot(label=self.t("loss"), height=-1, width=-self.lab_width, tag="chart"):
                    dpg.add_plot_legend()
                    dpg.add_plot_axis(dpg.mvXAxis, label=self.t("step"), tag="x_axis")
                    dpg.add_plot_axis(dpg.mvYAxis, label=self.t("loss"), tag="y_axis")
                self._build_lab_panel()
        self.series_items["loss"] = dpg.add_line_series([], [], label=self.t("loss"),
                                                        parent="y_axis")
        self._build_markers()
        with dpg.handler_registry():
            dpg.add_mouse_wheel_handler(callback=self._on_wheel)
        self._fill_inspector()
        dpg.set_primary_window("main", True)
        dpg.setup_dearpygui()
        dpg.show_viewport()

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
            if not self.finished and not self.status:
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

    @staticmethod
    def _combo_label(key: tuple[str, str]) -> str:
        return f"{key[0]} / {key[1]}"

    def _add_point(self, name: str, step: int, value: float) -> None:
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
        dpg.fit_axis_data("x_axis")
        dpg.fit_axis_data("y_axis")

    # ---------------------------------------------------------------- graphs

    @property
    def graph(self) -> Graph | None:
        return None if self.current is None else self.graphs[self.current]

    def show(self, key: tuple[str, str]) -> None:
        """Show the graph stored under `key` (fit to the canvas, selection kept if valid)."""
        self.current = key
        self.dpg.set_value("graph_combo", self._combo_label(key))
        self._relayout(fit=True)

    def _relayout(self, fit: bool = False) -> None:
        graph = self.graph
        if graph is None:
            return
        try:
            # several prefixes, comma-separated: "blocks.*, embed"
            prefixes = [p.strip() for p in self.collapse.split(",") if p.strip()]
            self.lay = layout(graph, collapse=prefixes)
        except Exception as e:  # a bad prefix must not kill the viewer
            self._set_status(self.t("bad_collapse") + f"{type(e).__name__}: {e}"[:200])
            self.lay = layout(graph)
        if fit:
            self._fit()
        if self.selected_node is not None and self.selected_node not in graph.nodes:
            self.selected_node = None
        self.selected = self._key_of(self.selected_node)
        self._update_matches()
        self._fill_inspector()
        self._fill_legend()
        self.dirty = True

    def _fit(self) -> None:
        assert self.lay is not None
        cw, ch = self.dpg.get_item_width("canvas"), self.dpg.get_item_height("canvas")
        sx = (cw - 2 * MARGIN) / max(self.lay.width, 1.0)
        sy = (ch - 2 * MARGIN) / max(self.lay.height, 1.0)
        self.scale = max(0.25, min(1.0, sx, sy))
        self.offset = [MARGIN, MARGIN]

    def _key_of(self, node: int | None) -> Key | None:
        if node is None or self.lay is None:
            return None
        for key, box in self.lay.boxes.items():
            if node in box.nodes:
                return key
        return None

    def select_node(self, node: int | None) -> None:
        """Select the box holding graph node `node` (None clears the selection)."""
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
        if self.lay is None or key not in self.lay.boxes:
            self.select_node(None)
            return
        self.select_node(self.lay.boxes[key].nodes[0])
        self.selected = key

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
            words = [box.label.lower()]
            for node in box.nodes:
                words.extend(self._node_words(node))
            if any(text in w for w in words):
                self.matches.add(key)

    # ---------------------------------------------------------------- drawing

    def _to_screen(self, x: float, y: float) -> tuple[float, float]:
        return x * self.scale + self.offset[0], y * self.scale + self.offset[1]

    def draw(self) -> None:
        """Redraw the canvas from the layout, the view transform and the selection."""
        dpg = self.dpg
        dpg.delete_item("canvas", children_only=True)
        self.dirty = False
        lay = self.lay
        if lay is None:
            return
        s = self.scale
        view_w = dpg.get_item_width("canvas_window") - 16
        view_h = dpg.get_item_height("canvas_window") - 16
        need_w = max(view_w, int(lay.width * s + self.offset[0] + MARGIN))
        need_h = max(view_h, int(lay.height * s + self.offset[1] + MARGIN))
        dpg.configure_item("canvas", width=need_w, height=need_h)
        dpg.draw_rectangle((0, 0), (need_w, need_h), color=BACKGROUND, fill=BACKGROUND,
                           parent="canvas")
        for src, dst in lay.edges:
            a, b = lay.boxes[src], lay.boxes[dst]
            p_tail = self._to_screen(a.x + a.w, a.y + a.h / 2)
            p_tip = self._to_screen(b.x, b.y + b.h / 2)
            dpg.draw_arrow(p_tip, p_tail, color=EDGE_COLOR, thickness=max(1.0, 1.5 * s),
                           size=max(3, int(5 * s)), parent="canvas")
        drawn: list[str] = []
        font_size = max(8.0, 14.0 * s)
        for key, box in lay.boxes.items():
            fill = self._box_fill(key, color_of(box.category))
            if box.category not in drawn:
                drawn.append(box.category)
            p0 = self._to_screen(box.x, box.y)
            p1 = self._to_screen(box.x + box.w, box.y + box.h)
            dpg.draw_rectangle(p0, p1, color=fill, fill=fill, rounding=3 * s, parent="canvas")
            border, thickness = None, 0.0
            if box.is_output:
                border, thickness = OUTPUT_BORDER, 4.0
            if key in self.matches:
                border, thickness = MATCH_BORDER, 3.0
            if key == self.selected:
                border, thickness = SELECTED_BORDER, 4.0
            if border is not None:
                dpg.draw_rectangle(p0, p1, color=border, thickness=thickness, rounding=3 * s,
                                   parent="canvas")
            max_chars = max(3, int(box.w * s / (font_size * 0.55)))
            label = box.label if len(box.label) <= max_chars else box.label[:max_chars - 1] + "…"
            dpg.draw_text((p0[0] + 5 * s, p0[1] + (box.h * s - font_size) / 2), label,
                          color=TEXT_COLOR, size=font_size, parent="canvas")
        self.drawn_categories = drawn

    def _fill_legend(self) -> None:
        dpg = self.dpg
        dpg.delete_item("legend", children_only=True)
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
            dpg.add_text(category, parent="legend")

    # -------------------------------------------------------------- inspector

    def _fill_inspector(self) -> None:
        dpg = self.dpg
        dpg.delete_item("inspector", children_only=True)
        lines: list[str] = []

        def text(value: str, color: tuple[int, int, int] | None = None) -> None:
            lines.append(value)
            kwargs = {"color": color} if color else {}
            dpg.add_text(value, parent="inspector", wrap=0, **kwargs)

        def node_button(node: int) -> None:
            assert self.graph is not None
            n = self.graph[node]
            label = f"%{node} {n.op.name}" + (f" {n.name}" if n.name else "")
            path = getattr(n.op, "path", None)
            if path and path != n.name:
                label += f" {path}"
            lines.append(label)
            dpg.add_button(label=label, parent="inspector", user_data=node,
                           callback=lambda _s, _a, u: self.select_node(u))

        graph, lay = self.graph, self.lay
        if graph is None or lay is None or self.selected is None or self.selected_node is None:
            text(self.t("no_selection"))
            self.inspector_texts = lines
            return
        box = lay.boxes[self.selected]
        if box.collapsed:
            text(f"{self.t('group')}: {box.label}", (255, 220, 120))
            self._fill_cost(text, box.nodes)  # the box's sum
            text(f"{self.t('nodes')}:")
            for node in box.nodes[:50]:
                node_button(node)
            self.inspector_texts = lines
            return
        node = self.selected_node
        n = graph[node]
        heading = f"{self.t('op')}: {n.op.name}  (%{node}" + (f", {n.name})" if n.name else ")")
        text(heading, (255, 220, 120))
        attrs = n.op.attrs()
        if n.op.name == "constant":
            attrs = {}
        if isinstance(n.op, Fused):  # its sub-graph, as the ops it holds
            attrs = {"ops": ", ".join(n.op.op_names)}
        attrs.pop("type", None)
        if attrs:
            text(f"{self.t('attributes')}:")
            for k, v in attrs.items():
                text(f"  {k} = {_short(v)}")
        text(f"{self.t('shape')}: {list(n.type.shape)}   {self.t('dtype')}: {n.type.dtype}")
        self._fill_cost(text, box.nodes)
        self._fill_live(text)  # near the top: it changes while training runs
        if n.inputs:
            text(f"{self.t('inputs')}:")
            for j in dict.fromkeys(n.inputs):
                node_button(j)
        users = graph.users.get(node, ())
        if users:
            text(f"{self.t('users')}:")
            for j in users:
                node_button(j)
        if n.source:
            text(f"{self.t('source')}: {n.source}")
        dpg.add_separator(parent="inspector")
        info = texts.explain_op(n.op.name, self.lang)
        for part in ("what", "formula", "why"):
            text(f"{self.t(part)}:", (150, 200, 255))
            text(info[part])
        path = getattr(n.op, "path", None)
        if n.op.name == "input" and path and "." in path:
            kind = texts.recorded_kind(path, self.param_kinds)
            text(f"{self.t('role')}:", (150, 200, 255))
            if kind is not None:
                text(f"{self.t('layer_kind')}: {kind}")
            text(texts.explain_param(path, kind, self.lang))
        self.inspector_texts = lines

    def _fill_live(self, text: Callable[..., None]) -> None:
        """The selected node's latest live values: statistics and histograms."""
        if self.requests is None or self.current is None:
            return
        values = self.live.get((*self.current, self.selected_node))
        heading = self.t("live")
        if values is not None and self.last_step is not None:
            heading += f" ({self.t('at_step')} {self.last_step})"
        text(f"{heading}:", (150, 200, 255))
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
            text(self.t("stats").format(**summary))
            if summary["nonfinite"]:
                text(self.t("nonfinite").format(n=summary["nonfinite"]), (255, 90, 90))
            self._histogram(summary, color)
        self.dpg.add_separator(parent="inspector")

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
            dpg.draw_text((0, height + 1), f"{lo:.3g}", size=12)
            dpg.draw_text((width - 60, height + 1), f"{hi:.3g}", size=12)

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
        self._relayout(fit=True)

    def _on_wheel(self, _sender: Any, delta: float) -> None:
        if not self.dpg.is_item_hovered("canvas_window"):
            return
        mx, my = self._mouse_in_canvas()
        old = self.scale
        self.scale = min(4.0, max(0.1, old * (1.15 if delta > 0 else 1 / 1.15)))
        # keep the canvas point under the cursor in place
        self.offset[0] = mx - (mx - self.offset[0]) * self.scale / old
        self.offset[1] = my - (my - self.offset[1]) * self.scale / old
        self.dirty = True

    def _mouse_in_canvas(self) -> tuple[float, float]:
        mx, my = self.dpg.get_mouse_pos(local=False)
        x0, y0 = self.dpg.get_item_rect_min("canvas")
        return mx - x0, my - y0

    def box_at(self, x: float, y: float) -> Key | None:
        """The key of the box under canvas pixel (x, y), if any."""
        if self.lay is None:
            return None
        cx = (x - self.offset[0]) / self.scale
        cy = (y - self.offset[1]) / self.scale
        for key, box in self.lay.boxes.items():
            if box.x <= cx <= box.x + box.w and box.y <= cy <= box.y + box.h:
                return key
        return None

    def _poll_mouse(self) -> None:
        """Pan on a left-button drag over the canvas; select on a click without a drag."""
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
                self.offset[0] += dx
                self.offset[1] += dy
                self._drag_last = pos
                self.dirty = True
        elif self._drag_last is not None:
            if not self._drag_moved:
                self.select_key(self.box_at(*self._drag_last))
            self._drag_last = None

    # ------------------------------------------------------------------ state

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
            "values": self._live_state(),
            "param_kinds": len(self.param_kinds),
            "categories": list(self.drawn_categories),
            "colors": {c: list(color_of(c)) for c in self.drawn_categories},
            "matches": sorted(map(str, self.matches)),
            "collapse": self.collapse,
            "boxes": 0 if self.lay is None else len(self.lay.boxes),
            "status": self.status,
            "finished": self.finished,
            "scale": self.scale,
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
        elif cmd == "select":
            self.select_node(self._find_node(command))
        elif cmd == "search":
            self.dpg.set_value("search", command.get("text", ""))
            self._on_search(None, command.get("text", ""))
        elif cmd == "collapse":
            self.dpg.set_value("collapse", command.get("prefix", ""))
            self._on_collapse(None, command.get("prefix", ""))
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

    def _find_node(self, command: dict[str, Any]) -> int | None:
        graph = self.graph
        assert graph is not None
        if "id" in command:
            node = command["id"]
            return node if node in graph.nodes else None
        order = self.lay.boxes if self.lay is not None else {}
        shown = [n for box in order.values() for n in box.nodes]
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


def run(queue: Any, lang: str = "en", requests: Any = None, **kwargs: Any) -> None:
    """The viewer process's entry point (see the module docstring)."""
    app = App(lang, requests=requests, **kwargs)
    app.build()
    try:
        app.loop(queue)
    finally:
        app.dpg.destroy_context()
