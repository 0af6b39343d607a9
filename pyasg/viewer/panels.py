"""The app's heat-map and model-lab panels: the Dear PyGui side of `cost` and `lab`.

`CostLabPanels` is mixed into `pyasg.viewer.app.App`, whose own code calls it at a
few points only (`_build_heat_combo`, `_build_lab_panel`, `_handle_panels`,
`_box_fill`, `_fill_heat_legend`, `_fill_cost`, `_panel_state`, `_panel_script`):

* a "Colour by" combo left of the legend: category (the app's own colours), or the
  step's time, memory or FLOPs per box (`pyasg.viewer.cost.box_heat`, the ramp
  `heat_color`) for a graph whose `CostReady` has arrived; the legend becomes the
  ramp from no cost to the costliest box's figure;
* the inspector's "Cost per step" section (`cost.inspector_lines`): time, FLOPs,
  memory, the ops of a fused node and its generated kernel;
* the "Model lab" panel right of the loss chart: the changes the training process
  offers (`LabOffered`), a value, "Apply at the next step" (a `Change` request on
  the queue back to training), and the changes made; each applied change is a
  vertical line on the loss chart at its step (`lab.LabView.markers`).

Script commands (see the app's docstring): ``{"cmd": "heat", "metric": "time"}`` and
``{"cmd": "lab", "what": "activation", "path": "1", "value": "gelu"}`` (it sets the lab
panel's widgets and presses Apply, as a user would).
"""

from __future__ import annotations

import queue as queue_module
from typing import Any

from pyasg.errors import PyasgError
from pyasg.events import CostReady, ModelChanged
from pyasg.viewer import texts
from pyasg.viewer.cost import (
    METRICS,
    NO_COST,
    StepCost,
    box_heat,
    format_value,
    heat_color,
    inspector_lines,
)
from pyasg.viewer.lab import LabView, describe
from pyasg.viewer.layout import box_nodes

#: What the combo offers: the app's category colours, then the cost metrics.
HEAT_MODES: tuple[str, ...] = ("category", *METRICS)
#: Colour of the chart's model-change lines and of the lab's headings.
MARKER_COLOR = (255, 120, 200)
LAB_HEADING = (150, 200, 255)
#: The model lab's width in pixels, right of the loss chart (the app's `pane_sizes`).
LAB_WIDTH = 380


class CostLabPanels:
    """The heat map and the model lab of the viewer (see the module docstring)."""

    dpg: Any
    lang: str
    requests: Any
    current: tuple[str, str] | None
    graphs: dict[tuple[str, str], Any]
    lay: Any
    dirty: bool
    # and the App's _set_status, _fill_legend, _fill_inspector

    def _init_panels(self) -> None:
        self.costs: dict[tuple[str, str], StepCost] = {}
        self.heat = "category"
        self.lab = LabView()
        self._heat_cache: tuple[Any, str, StepCost, dict[Any, float | None]] | None = None
        self.heat_legend: list[str] = []
        self._marker_item: Any = None
        self._fits: dict[tuple[str, str], tuple[Any, StepCost, bool]] = {}

    def _lt(self, key: str) -> str:
        return texts.lab_text(key, self.lang)

    # ---------------------------------------------------------------- widgets

    def _build_heat_combo(self) -> None:
        dpg = self.dpg
        dpg.add_text(self._lt("heat") + ":")
        dpg.add_combo([self._lt(f"heat_{m}") for m in HEAT_MODES], tag="heat_combo",
                      default_value=self._lt("heat_category"), width=110,
                      callback=lambda _s, value: self.set_heat(self._mode_of(value)))

    def _build_lab_panel(self, size: tuple[int, int]) -> None:
        """The model lab's pane, `size` (width, height) pixels; the app resizes it."""
        dpg = self.dpg
        with dpg.child_window(tag="lab_window", width=size[0], height=size[1]):
            dpg.add_text(self._lt("lab"), color=LAB_HEADING)
            dpg.add_separator()
            dpg.add_group(tag="lab_panel")
        self._fill_lab()

    def _build_markers(self) -> None:
        self._marker_item = self.dpg.add_inf_line_series([], label=self._lt("lab_marker"),
                                                         parent="y_axis")

    def _mode_of(self, label: str) -> str:
        for mode in HEAT_MODES:
            if self._lt(f"heat_{mode}") == label:
                return mode
        return "category"

    # ----------------------------------------------------------------- events

    def _handle_panels(self, message: Any) -> bool:
        """Take a CostReady, LabOffered or ModelChanged message; False for others."""
        if isinstance(message, CostReady):
            self.costs[(message.name, message.kind)] = StepCost.from_dict(message.cost)
            self._heat_cache = None
            if self.current == (message.name, message.kind):
                self._refresh()
            return True
        if self.lab.handle(message):
            if isinstance(message, ModelChanged):
                self._update_markers()
                if message.error is not None:
                    self._set_status(self._lt("lab_refused") + message.error)
            self._fill_lab()
            return True
        return False

    def _refresh(self) -> None:
        self._fill_legend()
        self._fill_inspector()
        self.dirty = True

    def set_heat(self, mode: str) -> None:
        """Colour boxes by `mode` ("category", "time", "memory", "flops")."""
        self.heat = mode if mode in HEAT_MODES else "category"
        self.dpg.set_value("heat_combo", self._lt(f"heat_{self.heat}"))
        self._heat_cache = None
        self._refresh()

    # ---------------------------------------------------------------- heat map

    @property
    def cost(self) -> StepCost | None:
        """The cost of the shown graph, when one has arrived for this very graph (a step
        compiled again, after a model-lab change, has none until it is measured)."""
        if self.current is None:
            return None
        cost = self.costs.get(self.current)
        graph = self.graphs.get(self.current)
        if cost is None or graph is None:
            return None
        fits = self._fits.get(self.current)
        if fits is None or fits[0] is not graph or fits[1] is not cost:
            fits = self._fits[self.current] = (graph, cost, cost.fits(graph))
        return cost if fits[2] else None

    def _heat(self) -> dict[Any, float | None] | None:
        """Each box's heat under the current mode (None: colour by category)."""
        cost = self.cost
        if self.heat == "category" or cost is None or self.lay is None:
            return None
        cached = self._heat_cache
        if cached is None or cached[0] is not self.lay or cached[1] != self.heat \
                or cached[2] is not cost:  # the objects themselves: an id can be reused
            cached = self._heat_cache = (self.lay, self.heat, cost,
                                         box_heat(cost, box_nodes(self.lay), self.heat))
        return cached[3]

    def _box_fill(self, key: Any, category_color: tuple[int, int, int]) -> tuple[int, int, int]:
        """A box's fill: its heat colour in a cost mode, else its category's."""
        heat = self._heat()
        return category_color if heat is None else heat_color(heat.get(key))

    def _fill_heat_legend(self) -> bool:
        """The ramp legend of a cost mode (True), or False to draw the categories."""
        dpg = self.dpg
        if self.heat == "category":
            self.heat_legend = []
            return False
        cost = self.cost
        lines: list[str] = []
        if cost is None or self.lay is None:
            lines.append(self._lt("heat_waiting"))
            dpg.add_text(lines[-1], parent="legend")
            self.heat_legend = lines
            return True
        top = max((cost.value(nodes, self.heat) for nodes in box_nodes(self.lay).values()),
                  default=0.0)
        lines.append(self._lt("heat_legend").format(metric=self._lt(f"heat_{self.heat}")))
        dpg.add_text(lines[-1], parent="legend")
        with dpg.drawlist(14, 14, parent="legend"):
            dpg.draw_rectangle((0, 0), (14, 14), color=NO_COST, fill=NO_COST)
        lines.append(self._lt("heat_none"))
        dpg.add_text(lines[-1], parent="legend")
        lines.append(format_value(0.0, self.heat))
        dpg.add_text(lines[-1], parent="legend")
        width, steps = 180, 36
        with dpg.drawlist(width, 14, parent="legend"):
            for k in range(steps):
                c = heat_color(k / (steps - 1))
                dpg.draw_rectangle((k * width / steps, 0), ((k + 1) * width / steps, 14),
                                   color=c, fill=c)
        lines.append(format_value(top, self.heat))
        dpg.add_text(lines[-1], parent="legend")
        self.heat_legend = lines
        return True

    def _fill_cost(self, text: Any, nodes: tuple[int, ...]) -> None:
        """The inspector's cost section for the selected box's nodes."""
        cost = self.cost
        if cost is None:
            return
        text(f"{self._lt('cost')}:", LAB_HEADING)
        for line in inspector_lines(cost, nodes, self._lt):
            text(line)

    # --------------------------------------------------------------- model lab

    def _offer_label(self, offer: dict[str, Any]) -> str:
        key = "lab_" + offer["what"]  # a kind this viewer has no words for: its name
        what = self._lt(key) if key in texts.LAB_TEXT else offer["what"]
        label = f"{what} {offer['path']}".rstrip()
        return label + (f" ({offer['current']})" if offer["current"] is not None else "")

    def _fill_lab(self) -> None:
        dpg = self.dpg
        if not dpg.does_item_exist("lab_panel"):  # a static viewer has no lab
            return
        dpg.delete_item("lab_panel", children_only=True)
        lab = self.lab
        if not lab.offers:
            dpg.add_text(self._lt("lab_waiting"), parent="lab_panel", wrap=0)
        else:
            labels = [self._offer_label(o) for o in lab.offers]
            dpg.add_text(self._lt("lab_change") + ":", parent="lab_panel")
            dpg.add_combo(labels, tag="lab_offer", default_value=labels[0], width=-1,
                          parent="lab_panel", callback=lambda *_: self._fill_choices())
            dpg.add_text(self._lt("lab_value") + ":", parent="lab_panel")
            dpg.add_combo([], tag="lab_choice", width=-1, parent="lab_panel")
            dpg.add_input_text(tag="lab_number", width=-1, parent="lab_panel")
            dpg.add_button(label=self._lt("lab_apply"), parent="lab_panel",
                           callback=lambda *_: self._apply_from_widgets())
            self._fill_choices()
        if lab.history:
            dpg.add_text(self._lt("lab_history") + ":", parent="lab_panel", color=LAB_HEADING)
            for change in lab.history[-12:]:
                said = describe(change.what, change.path, change.value, change.before)
                line = f"{change.step}: {said}"
                if change.error is not None:
                    line = f"{self._lt('lab_refused')}{line} — {change.error}"
                dpg.add_text(line, parent="lab_panel", wrap=0)

    def _chosen_offer(self) -> dict[str, Any] | None:
        label = self.dpg.get_value("lab_offer")
        for offer in self.lab.offers:
            if self._offer_label(offer) == label:
                return offer
        return None

    def _fill_choices(self) -> None:
        dpg = self.dpg
        offer = self._chosen_offer()
        choices = None if offer is None else offer["choices"]
        listed = isinstance(choices, list)
        dpg.configure_item("lab_choice", items=choices if listed else [], show=listed)
        if listed:
            others = [c for c in choices if c != offer["current"]] or choices
            dpg.set_value("lab_choice", others[0])
        dpg.configure_item("lab_number", show=isinstance(choices, str),
                           hint=choices if isinstance(choices, str) else "")

    def _apply_from_widgets(self) -> None:
        offer = self._chosen_offer()
        if offer is None:
            return
        value = (self.dpg.get_value("lab_choice") if isinstance(offer["choices"], list)
                 else self.dpg.get_value("lab_number") if offer["choices"] is not None
                 else None)
        self.request_change(offer["what"], offer["path"], value)

    def request_change(self, what: str, path: str, value: object) -> None:
        """Send a model-lab change to the training process (the status line says so)."""
        try:
            text = self.lab.request(what, path, value)
        except PyasgError as e:
            self._set_status(self._lt("lab_bad_value") + e.message)
            return
        if self.requests is None:
            return
        try:
            self.requests.put_nowait(text)
        except (queue_module.Full, ValueError, OSError):
            return  # training is gone or busy
        self._set_status(self._lt("lab_sent") + describe(what, path, value))

    def _update_markers(self) -> None:
        if self._marker_item is not None:
            self.dpg.set_value(self._marker_item, [[float(s) for s, _ in self.lab.markers]])

    # ------------------------------------------------------------ state, script

    def _panel_state(self) -> dict[str, Any]:
        heat = self._heat()
        return {
            "heat": self.heat,
            "heat_legend": list(self.heat_legend),
            "heat_colors": {} if heat is None else {str(k): list(heat_color(v))
                                                    for k, v in heat.items()},
            "costs": [list(k) for k in self.costs],
            "markers": [list(m) for m in self.lab.markers],
            "lab_offers": len(self.lab.offers),
            "lab_history": [[c.step, c.what, c.path, c.value, c.error]
                            for c in self.lab.history],
            "lab_sent": len(self.lab.sent),
        }

    def _panel_script(self, command: dict[str, Any]) -> bool:
        """Run a "heat" or "lab" script command (True), or say it is not one (False)."""
        if command.get("cmd") == "heat":
            self.set_heat(str(command.get("metric", "category")))
            return True
        if command.get("cmd") == "lab":  # as a user does: pick, type, press Apply
            self._pick(command["what"], command.get("path", ""), command.get("value"))
            return True
        return False

    def _pick(self, what: str, path: str, value: object) -> None:
        """Set the lab panel's widgets to (`what`, `path`, `value`) and press Apply."""
        dpg = self.dpg
        offer = next((o for o in self.lab.offers if (o["what"], o["path"]) == (what, path)),
                     None)
        if offer is None:  # not offered: the request says so on the status line
            self.request_change(what, path, value)
            return
        dpg.set_value("lab_offer", self._offer_label(offer))
        self._fill_choices()
        if isinstance(offer["choices"], list):
            dpg.set_value("lab_choice", str(value))
        elif offer["choices"] is not None:
            dpg.set_value("lab_number", str(value))
        self._apply_from_widgets()
