"""The model lab: change a model while it trains, and go on from its current weights.

A `Change` names what to change, the dotted path of the layer it applies to (the
paths of `layers`, the same as the parameter prefixes: `blocks.0.ff`, `1`), and the
new value. Each kind of change is one row of `RULES`:

- ``activation``: swap an activation layer for another of `ACTIVATION_LAYERS`
  (ReLU <-> GELU <-> Tanh ...), or the activation a `FeedForward` names (its
  `pyasg.nn.transformer.ACTIVATIONS`);
- ``dropout``: set the rate of a Dropout layer;
- ``insert_dropout``: put a Dropout of that rate after a layer of a `Sequential`;
- ``remove_dropout``: take a Dropout out of a `Sequential`;
- ``lr``: set the learning rate the next update uses (the optimiser state's ``lr``).

`changed(model, change)` builds the new model description (the model is never
mutated: a copy is changed). `carry_params` keeps the parameters by their dotted
names; a path the new model has and the old one lacks would get its layer's own
`init` (no change offered here makes one: activations and dropout have no
parameters, which is why only they are offered). `ModelLab`, a `Trainer` callback,
applies requested changes at the next step boundary: it rebuilds the model, keeps
the weights and the optimiser state by path, and the trainer traces and compiles
its step again (`Trainer.replace_model`). Every applied change is recorded with the
step after which it applied (`ModelLab.changes`, written to `record=` as JSON), and
`ModelLab(replay=changes)` applies the same changes at the same steps: the run is
reproduced.

The viewer's lab panel sends its requests as `pyasg.events.ChangeRequested` (through
`pyasg.viewer.protocol`); the lab answers with `LabOffered` (what can be changed
where) and `ModelChanged` (applied after which step, or why not).

>>> from pyasg import nn
>>> model = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1))
>>> [(o["what"], o["path"], o["current"]) for o in offers(model)][:2]
[('activation', '1', 'relu'), ('insert_dropout', '0', None)]
>>> new = changed(model, Change("activation", "1", "gelu"))
>>> type(new[1]).__name__, type(model[1]).__name__
('GELU', 'ReLU')
>>> changed(model, Change("activation", "1", "swish"))
Traceback (most recent call last):
...
pyasg.train.lab.LabError: model lab: unknown activation 'swish' for layer '1' (ReLU); ...
"""

from __future__ import annotations

import copy
import json
import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pyasg import events
from pyasg.array import functional as F
from pyasg.array import random
from pyasg.errors import PyasgError, shown
from pyasg.io.atomic import atomic_write
from pyasg.nn.basic import ELU, GELU, LeakyReLU, ReLU, Sequential, Sigmoid, SiLU, Softplus, Tanh
from pyasg.nn.layers import Dropout
from pyasg.nn.module import Module
from pyasg.nn.transformer import ACTIVATIONS, FeedForward
from pyasg.trace.tree import flatten_with_paths, unflatten
from pyasg.train.callbacks import Callback
from pyasg.train.trainer import _numpy

__all__ = ["ACTIVATION_LAYERS", "RULES", "Change", "LabError", "ModelLab", "RecordError",
           "carry_params",
           "carry_state", "changed", "layers", "load_changes", "offers"]


class LabError(PyasgError):
    """A model-lab change cannot be applied: an unknown kind, a path that names no
    layer, a value that does not fit (the message names what was asked)."""


class RecordError(PyasgError):
    """The model lab made a change but cannot write its record (`ModelLab(record=)`)."""


#: The activation layers the lab swaps between, by name; none has parameters.
ACTIVATION_LAYERS: dict[str, Callable[[], Module]] = {
    "relu": ReLU, "gelu": GELU, "gelu_tanh": lambda: GELU("tanh"), "tanh": Tanh,
    "silu": SiLU, "sigmoid": Sigmoid, "elu": ELU, "leaky_relu": LeakyReLU,
    "softplus": Softplus,
}


@dataclass(frozen=True)
class Change:
    """One change: `what` (a row of `RULES`), the layer `path`, the new `value`; once
    applied, the `step` after which it applied and the value it replaced (`before`).

    >>> Change.from_dict(Change("lr", "", 0.01, step=5).to_dict())
    Change(what='lr', path='', value=0.01, step=5, before=None)
    """

    what: str
    path: str = ""
    value: str | float | None = None
    step: int | None = None
    before: str | float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The change as plain JSON data."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> Change:
        """A change from `to_dict`'s data (raises LabError on anything else)."""
        fields = {"what", "path", "value", "step", "before"}
        if not isinstance(data, dict) or not {"what"} <= set(data) <= fields:
            raise LabError(f"model lab: a recorded change is a dict with keys "
                           f"{sorted(fields)}, got {shown(data, 80)}")
        step = data.get("step")
        if step is not None and (not isinstance(step, int) or isinstance(step, bool)
                                 or step < 0):
            raise LabError(f"model lab: a recorded change's step must be an integer >= 0, "
                           f"got {shown(step)}")
        return cls(str(data["what"]), str(data.get("path", "")), data.get("value"), step,
                   data.get("before"))


# --------------------------------------------------------------------------- the layer tree


def layers(model: Module) -> dict[str, Module]:
    """Every layer of `model` by dotted path ("" is the model itself), outermost first.

    >>> from pyasg import nn
    >>> list(layers(nn.Sequential(nn.Linear(2, 2), nn.Tanh())))
    ['', '0', '1']
    """
    found: dict[str, Module] = {}

    def walk(layer: Module, path: str) -> None:
        found[path] = layer
        for name, child in layer.children().items():
            walk(child, f"{path}.{name}" if path else name)

    walk(model, "")
    return found


def _parent(path: str, tree: dict[str, Module]) -> tuple[str, str]:
    """(the parent's path, the child's name in it) of the layer at `path`."""
    for parent in sorted((p for p in tree if p != path), key=len, reverse=True):
        if parent == "" or path.startswith(parent + "."):
            name = path[len(parent) + 1:] if parent else path
            if name in tree[parent].children():
                return parent, name
    raise LabError(f"model lab: layer {path!r} has no parent layer")  # the root


def _swapped(value: Any, old: Module, new: Module) -> Any:
    """`value` with `old` replaced by `new` wherever it is held (lists, tuples, dicts)."""
    if value is old:
        return new
    if isinstance(value, list):
        return [_swapped(v, old, new) for v in value]
    if isinstance(value, tuple):
        return tuple(_swapped(v, old, new) for v in value)
    if isinstance(value, dict):
        return {k: _swapped(v, old, new) for k, v in value.items()}
    return value


def _replace(model: Module, path: str, new: Module) -> Module:
    """`model` (a private copy, changed in place) with its layer at `path` replaced."""
    if path == "":
        return new
    tree = layers(model)
    parent_path, _ = _parent(path, tree)
    parent, old = tree[parent_path], tree[path]
    for attr, value in list(vars(parent).items()):
        setattr(parent, attr, _swapped(value, old, new))
    return model


# --------------------------------------------------------------------------- the rules


def activation_name(layer: Module) -> str | None:
    """The `ACTIVATION_LAYERS` name of an activation layer (None for any other layer).

    >>> from pyasg import nn
    >>> activation_name(nn.GELU("tanh")), activation_name(nn.Linear(1, 1))
    ('gelu_tanh', None)
    """
    for name, make in ACTIVATION_LAYERS.items():
        made = make()
        if type(made) is type(layer) and vars(made) == vars(layer):
            return name
    return None


def _rate(value: object, change: Change) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not 0.0 <= float(value) < 1.0:
        raise LabError(f"model lab: {change.what} at {change.path!r} needs a dropout rate "
                       f"in [0, 1), got {shown(value, with_type=True)}")
    return float(value)


@dataclass(frozen=True)
class Rule:
    """One kind of change: `offer(path, layer, parent)` says whether and how it applies
    to the layer at `path` ({"current", "choices"} or None); `apply(model, path, value,
    change)` returns (the path to replace, the layer to put there, the value replaced)
    in `model`, a private copy."""

    offer: Callable[[str, Module, Module | None], dict[str, Any] | None]
    apply: Callable[[Module, str, Any, Change], tuple[str, Module, Any]]


def _offer_activation(path: str, layer: Module, parent: Module | None) -> dict | None:
    name = activation_name(layer)
    if name is not None:
        return {"current": name, "choices": sorted(ACTIVATION_LAYERS)}
    if isinstance(layer, FeedForward) and isinstance(layer.activation, str):
        return {"current": layer.activation, "choices": sorted(ACTIVATIONS)}
    return None


def _apply_activation(model: Module, path: str, value: Any, change: Change) -> tuple:
    layer = layers(model)[path]
    if isinstance(layer, FeedForward) and isinstance(layer.activation, str):
        if value not in ACTIVATIONS:
            raise LabError(f"model lab: unknown activation {shown(value)} for the FeedForward "
                           f"at {path!r}; choose one of {', '.join(sorted(ACTIVATIONS))}")
        new = copy.copy(layer)
        new.activation = value
        return path, new, layer.activation
    before = activation_name(layer)
    if before is None:
        raise LabError(f"model lab: layer {path!r} ({type(layer).__name__}) is not an "
                       f"activation layer, nor a FeedForward naming its activation")
    if not isinstance(value, str) or value not in ACTIVATION_LAYERS:
        raise LabError(f"model lab: unknown activation {shown(value)} for layer {path!r} "
                       f"({type(layer).__name__}); choose one of "
                       f"{', '.join(sorted(ACTIVATION_LAYERS))}")
    return path, ACTIVATION_LAYERS[value](), before


def _offer_rate(path: str, layer: Module, parent: Module | None) -> dict | None:
    return {"current": layer.p, "choices": "[0, 1)"} if isinstance(layer, Dropout) else None


def _apply_rate(model: Module, path: str, value: Any, change: Change) -> tuple:
    layer = layers(model)[path]
    if not isinstance(layer, Dropout):
        raise LabError(f"model lab: layer {path!r} ({type(layer).__name__}) is not a "
                       f"Dropout; its rate cannot be set")
    new = copy.copy(layer)
    new.p = _rate(value, change)
    return path, new, layer.p


def _offer_insert(path: str, layer: Module, parent: Module | None) -> dict | None:
    if isinstance(parent, Sequential) and not isinstance(layer, Dropout):
        return {"current": None, "choices": "[0, 1)"}
    return None


def _in_sequential(model: Module, path: str, change: Change) -> tuple[str, Sequential, str]:
    parent_path, name = _parent(path, layers(model))
    parent = layers(model)[parent_path]
    if not isinstance(parent, Sequential):
        raise LabError(f"model lab: {change.what} at {path!r}: the layer is not in a "
                       f"Sequential (its parent is {type(parent).__name__})")
    return parent_path, parent, name


def _apply_insert(model: Module, path: str, value: Any, change: Change) -> tuple:
    rate = _rate(value, change)
    parent_path, parent, name = _in_sequential(model, path, change)
    named = parent.children()
    fresh = f"{name}_dropout"
    k = 2
    while fresh in named:
        fresh, k = f"{name}_dropout{k}", k + 1
    rebuilt: dict[str, Module] = {}
    for n, layer in named.items():
        rebuilt[n] = layer
        if n == name:  # the new layer keeps every other name, so every parameter's path
            rebuilt[fresh] = Dropout(rate)
    return parent_path, Sequential(rebuilt), None


def _offer_remove(path: str, layer: Module, parent: Module | None) -> dict | None:
    if isinstance(parent, Sequential) and isinstance(layer, Dropout) and len(parent) > 1:
        return {"current": layer.p, "choices": None}
    return None


def _apply_remove(model: Module, path: str, value: Any, change: Change) -> tuple:
    parent_path, parent, name = _in_sequential(model, path, change)
    layer = parent[name]
    if not isinstance(layer, Dropout):
        raise LabError(f"model lab: remove_dropout at {path!r}: the layer is a "
                       f"{type(layer).__name__}, not a Dropout")
    if len(parent) == 1:
        raise LabError(f"model lab: remove_dropout at {path!r}: it is the only layer of its "
                       f"Sequential")
    rest = {n: c for n, c in parent.children().items() if n != name}
    return parent_path, Sequential(rest), layer.p


#: The kinds of change, by name; "lr" changes the optimiser state, not the model.
RULES: dict[str, Rule] = {
    "activation": Rule(_offer_activation, _apply_activation),
    "insert_dropout": Rule(_offer_insert, _apply_insert),
    "dropout": Rule(_offer_rate, _apply_rate),
    "remove_dropout": Rule(_offer_remove, _apply_remove),
}
LR = "lr"


def offers(model: Module | None, lr: float | None = None) -> list[dict[str, Any]]:
    """What the lab offers for `model`: one `{"what", "path", "current", "choices"}` per
    kind of change (in `RULES` order) and layer it applies to, and "lr" when `lr` is
    given (`choices`: the names to pick from, or the interval of a number).

    >>> from pyasg import nn
    >>> offers(nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.1)), lr=0.01)[-1]
    {'what': 'lr', 'path': '', 'current': 0.01, 'choices': '(0, inf)'}
    """
    found: list[dict[str, Any]] = []
    if model is not None:
        tree = layers(model)
        parents = {p: None if p == "" else tree[_parent(p, tree)[0]] for p in tree}
        for what, rule in RULES.items():  # by kind of change, then by layer
            for path, layer in tree.items():
                offer = rule.offer(path, layer, parents[path])
                if offer is not None:
                    found.append({"what": what, "path": path, **offer})
    if lr is not None:
        found.append({"what": LR, "path": "", "current": lr, "choices": "(0, inf)"})
    return found


def changed(model: Module, change: Change) -> Module:
    """The model description after `change` (`model` itself is left as it was).

    >>> from pyasg import nn
    >>> m = changed(nn.Sequential(nn.Linear(2, 2), nn.Tanh()), Change("insert_dropout", "0", 0.2))
    >>> list(m.children()), m["0_dropout"].p
    (['0', '0_dropout', '1'], 0.2)
    """
    return _changed(model, change)[0]


def _changed(model: Module, change: Change) -> tuple[Module, Any]:
    """(the new model, the value the change replaced)."""
    rule = RULES.get(change.what)
    if rule is None:
        raise LabError(f"model lab: unknown change {shown(change.what)}; the lab changes "
                       f"{', '.join([*RULES, LR])}")
    if not isinstance(model, Module):
        raise LabError(f"model lab: {change.what} needs a pyasg.nn model, got "
                       f"{shown(model, with_type=True)}")
    tree = layers(model)
    if change.path not in tree:
        near = [p for p in tree if p][:12]
        raise LabError(f"model lab: {change.what} at {change.path!r}: the model "
                       f"({type(model).__name__}) has no layer there; its layers are "
                       f"{', '.join(near)}{' ...' if len(tree) > 13 else ''}")
    private = copy.deepcopy(model)
    path, new, before = rule.apply(private, change.path, change.value, change)
    return _replace(private, path, new), before


# --------------------------------------------------------------------------- params, state


def _same_type(a: Any, b: Any) -> bool:
    return F.type_of(a) == F.type_of(b)


def carry_params(params: Any, model: Module, key: Any) -> tuple[Any, list[str]]:
    """(the params of `model`, taken from `params` by dotted path; the paths that were
    not there and come from `model.init(key)`, each by its own layer's initialiser).

    >>> import pyasg
    >>> from pyasg import nn
    >>> old = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
    >>> p = old.init(pyasg.random.key(0))
    >>> q, new = carry_params(p, changed(old, Change("activation", "1", "tanh")),
    ...                       pyasg.random.key(1))
    >>> new, q["2"]["weight"] is p["2"]["weight"]
    ([], True)
    """
    fresh = model.init(key)
    pairs, treedef = flatten_with_paths(fresh)
    old = dict(flatten_with_paths(params)[0])
    kept = [old[path] if path in old and _same_type(old[path], leaf) else leaf
            for path, leaf in pairs]
    added = [path for (path, leaf), k in zip(pairs, kept) if k is leaf]
    return unflatten(treedef, kept), added


def carry_state(opt_state: dict[str, Any], optimizer: Any, params: Any) -> dict[str, Any]:
    """The optimiser state for `params`: each per-parameter slot kept by path where the
    parameter was there before (fresh, as `optimizer.init`, where not); the step and
    the learning rate as they were."""
    fresh = optimizer.init(params)
    out = dict(fresh)
    for key, value in opt_state.items():
        if key not in getattr(optimizer, "slots", ()):
            out[key] = value  # the scalars: step, lr
            continue
        pairs, treedef = flatten_with_paths(fresh[key])
        old = dict(flatten_with_paths(value)[0])
        out[key] = unflatten(treedef, [old[p] if p in old and _same_type(old[p], leaf)
                                       else leaf for p, leaf in pairs])
    return out


# --------------------------------------------------------------------------- the callback


def load_changes(path: str | Path) -> list[Change]:
    """The changes a `ModelLab(record=path)` wrote, to replay them."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise LabError(f"model lab: cannot read the changes in {path}: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("changes"), list):
        raise LabError(f"model lab: {path} is not a model-lab record ({{'changes': [...]}})")
    return [Change.from_dict(c) for c in data["changes"]]


class ModelLab(Callback):
    """A `Trainer` callback that applies model changes at step boundaries.

    Changes come from `request` (any thread), from the viewer's lab panel (the
    `ChangeRequested` events it sends, while `listen`), and from `replay`: recorded
    changes, each applied after its `step`. A requested change that fails is refused
    (published as `ModelChanged` with its error; training goes on); a replayed one
    that fails raises. `changes` lists what was applied, with steps (after `applied`:
    changes a resumed model already has); with `record` it is also written there
    (JSON) after each change.

    >>> import numpy as np
    >>> from pyasg import nn, losses, optim, train
    >>> from pyasg.data import ArrayDataset, DataLoader
    >>> x = np.linspace(-1, 1, 32, dtype=np.float32)[:, None]
    >>> data = DataLoader(ArrayDataset(x, x ** 2), batch_size=8)
    >>> lab = ModelLab(replay=[Change("activation", "1", "gelu", step=2)])
    >>> model = nn.Sequential(nn.Linear(1, 8), nn.ReLU(), nn.Linear(8, 1))
    >>> trainer = train.Trainer(model, losses.mse_loss, optim.SGD(lr=0.1), data,
    ...                         callbacks=[lab], progress=False)
    >>> _ = trainer.fit(steps=4)
    >>> [(c.what, c.step, c.before, c.value) for c in lab.changes], type(trainer.model[1]).__name__
    ([('activation', 2, 'relu', 'gelu')], 'GELU')
    """

    def __init__(self, replay: Sequence[Change] = (), record: str | Path | None = None,
                 listen: bool = True, seed: int = 0, applied: Sequence[Change] = ()) -> None:
        self.changes: list[Change] = list(applied)
        self.record = None if record is None else Path(record)
        self.listen = bool(listen)
        self._replay = [c if isinstance(c, Change) else Change.from_dict(c) for c in replay]
        if any(c.step is None for c in self._replay):
            raise LabError("model lab: every replayed change needs the step it applied at")
        self._replay.sort(key=lambda c: c.step)  # type: ignore[arg-type, return-value]
        self._pending: list[Change] = []
        self._lock = threading.Lock()
        self._unsubscribe: Callable[[], None] | None = None
        self._key = random.key(seed)

    def request(self, what: str, path: str = "", value: str | float | None = None) -> None:
        """Ask for a change at the next step boundary (thread-safe)."""
        with self._lock:
            self._pending.append(Change(str(what), str(path), value))

    def _on_request(self, event: events.Event) -> None:
        if isinstance(event, events.ChangeRequested):
            self.request(event.what, event.path, event.value)

    # -- hooks

    def on_fit_start(self, trainer: Any) -> None:
        if self.listen and self._unsubscribe is None:
            self._unsubscribe = events.subscribe(self._on_request, events.ChangeRequested)
        self._apply_due(trainer)
        self._offer(trainer)

    def on_step_end(self, trainer: Any, logs: dict[str, Any]) -> None:
        self._apply_due(trainer)

    def on_fit_end(self, trainer: Any, logs: dict[str, Any]) -> None:
        self._stop_listening()

    def on_exception(self, trainer: Any, error: BaseException) -> None:
        self._stop_listening()

    def _stop_listening(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    # -- applying

    def _apply_due(self, trainer: Any) -> None:
        due = []
        while self._replay and self._replay[0].step is not None \
                and self._replay[0].step <= trainer.step:
            due.append(self._replay.pop(0))
        for change in due:
            if change.step != trainer.step:
                raise LabError(f"model lab: the recorded {change.what} at {change.path!r} "
                               f"applied after step {change.step}, but this run starts at "
                               f"step {trainer.step}")
            self._apply(trainer, change)  # a recorded change must apply: it raises
        with self._lock:
            asked, self._pending = self._pending, []
        applied = False
        for change in asked:
            try:
                self._apply(trainer, change)
            except LabError as e:  # refused: the trainer is as it was
                if events.has_subscribers(events.ModelChanged):
                    events.publish(events.ModelChanged(trainer.step, change.what, change.path,
                                                       change.value, error=e.message))
                continue
            applied = True
        if due or applied:
            self._offer(trainer)

    def _apply(self, trainer: Any, change: Change) -> None:
        """Apply one change to `trainer`, record it, and tell the viewer. A LabError
        leaves the trainer as it was; writing the record comes after the change."""
        if change.what == LR:
            before = self._set_lr(trainer, change)
        else:
            if trainer.model is None:
                raise LabError(f"model lab: {change.what} needs the trainer's model, and "
                               f"this trainer has none (loss_takes='params')")
            try:
                model, before = _changed(trainer.model, change)
                self._key, key = random.split(self._key, 2)
                params, _ = carry_params(trainer.params, model, key)
                opt_state = carry_state(trainer.opt_state, trainer.optimizer, params)
            except LabError:
                raise
            except PyasgError as e:  # the new model cannot be built: nothing changed yet
                raise LabError(f"model lab: {change.what} at {change.path!r} cannot be "
                               f"applied: {e.message}") from e
            trainer.replace_model(model, params, opt_state)
        done = Change(change.what, change.path, change.value, trainer.step, _plain(before))
        self.changes.append(done)
        if self.record is not None:
            self._write_record()
        if events.has_subscribers(events.ModelChanged):
            events.publish(events.ModelChanged(trainer.step, change.what, change.path,
                                               change.value, done.before))

    def _write_record(self) -> None:
        """`changes` as JSON at `record` (its directory made if needed). A failure is a
        `RecordError`, not a refusal: the change has been made."""
        path = self.record
        assert path is not None
        text = json.dumps({"changes": [c.to_dict() for c in self.changes]}, indent=1)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise RecordError(f"model lab: cannot make {path.parent} for the record of "
                              f"changes: {e.strerror or e}") from None
        atomic_write(path, lambda tmp: tmp.write_text(text + "\n"), RecordError)

    @staticmethod
    def _set_lr(trainer: Any, change: Change) -> float:
        value = change.value
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not (math.isfinite(float(value)) and float(value) > 0.0):
            raise LabError(f"model lab: lr needs a learning rate > 0, got "
                           f"{shown(value, with_type=True)}")
        if getattr(trainer.optimizer, "schedule", None) is not None:
            raise LabError(f"model lab: lr {value}: the optimiser follows a schedule, which "
                           f"sets the rate of every step; change the schedule instead")
        old = np.asarray(_numpy(trainer.opt_state["lr"]))
        trainer.opt_state = {**trainer.opt_state, "lr": np.asarray(value, old.dtype)}
        return float(str(old[()]))  # the shortest text of its dtype: 0.1, not 0.10000000149

    def _offer(self, trainer: Any) -> None:
        if events.has_subscribers(events.LabOffered):
            lr = None if getattr(trainer.optimizer, "schedule", None) is not None \
                else float(str(np.asarray(_numpy(trainer.opt_state["lr"]))[()]))
            events.publish(events.LabOffered(tuple(offers(trainer.model, lr))))


def _plain(value: Any) -> str | float | None:
    """A replaced value as JSON data (a rate, a name, or None)."""
    if value is None or isinstance(value, str):
        return value
    return float(value)
