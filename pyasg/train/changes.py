"""What a running model can be changed into: the model lab's rules, and what carries over.

A `Change` names what to change, the dotted path of the layer it applies to (the
paths of `layers`, the same as the parameter prefixes: `blocks.0.ff`, `1`), and the
new value. Each kind of change to the model is one row of `RULES`:

- ``activation``: swap an activation layer for another of `ACTIVATION_LAYERS`
  (ReLU <-> GELU <-> Tanh ...), or the activation a `FeedForward` names (its
  `pyasg.nn.transformer.ACTIVATIONS`);
- ``dropout``: set the rate of a Dropout layer;
- ``insert_dropout``: put a Dropout of that rate after a layer of a `Sequential`
  (named after it, so no other layer's name, nor any parameter's path, changes);
- ``remove_dropout``: take a Dropout out of a `Sequential`;
- ``insert_layernorm``: put a LayerNorm after a Linear of a `Sequential` (its width
  is the Linear's `out_features`): the one change that brings parameters, offered
  where their initialisation is defined, LayerNorm's own (γ = 1, β = 0);

and ``lr`` (`LR`) sets the learning rate the next update uses (the optimiser state's
``lr``; `pyasg.train.lab.ModelLab` applies it).

`changed(model, change)` builds the new model description; the model itself is never
mutated (a deep copy is changed). `carry_params` keeps the parameters by their
dotted paths, and `carry_state` the optimiser's per-parameter slots; a path the new
model has and the old one lacks takes its layer's own `init`, and fresh slots
(zeros). A change that would need parameters without a defined initialisation is
not offered: activations and dropout have none, a LayerNorm after a Linear has its
own. (The optimiser's step count is shared: Adam's bias correction treats a new
parameter's zero moments as if it had trained all along, so its first updates are
about (1 - β₁)/√(1 - β₂) ≈ 3 times the usual size with the default betas.)

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
pyasg.train.changes.LabError: model lab: unknown activation 'swish' for layer '1' (ReLU); ...
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from pyasg.array import functional as F
from pyasg.errors import PyasgError, shown
from pyasg.nn.basic import ELU, GELU, LeakyReLU, ReLU, Sequential, Sigmoid, SiLU, Softplus, Tanh
from pyasg.nn.layers import Dropout, LayerNorm, Linear
from pyasg.nn.module import Module
from pyasg.nn.transformer import ACTIVATIONS, FeedForward
from pyasg.trace.tree import flatten_with_paths, unflatten

__all__ = ["ACTIVATION_LAYERS", "LR", "RULES", "Change", "LabError", "Rule", "activation_name",
           "carry_params", "carry_state", "change_model", "changed", "layers", "offers",
           "replayed"]


class LabError(PyasgError):
    """A model-lab change cannot be applied: an unknown kind, a path that names no
    layer, a value that does not fit (the message names what was asked)."""


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
    if layers(model).get(path) is not new:  # a `children()` that builds its layers anew
        raise LabError(f"model lab: cannot replace the layer at {path!r}: its parent "
                       f"({type(parent).__name__}) does not hold it in an attribute")
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


def _inserted(model: Module, path: str, change: Change, suffix: str,
              layer: Module) -> tuple[str, Module, None]:
    """The Sequential holding the layer at `path`, with `layer` after it, named
    `<name>_<suffix>` so that no other layer's name, nor any parameter's path, changes."""
    parent_path, parent, name = _in_sequential(model, path, change)
    named = parent.children()
    fresh, k = f"{name}_{suffix}", 2
    while fresh in named:
        fresh, k = f"{name}_{suffix}{k}", k + 1
    rebuilt: dict[str, Module] = {}
    for n, child in named.items():
        rebuilt[n] = child
        if n == name:
            rebuilt[fresh] = layer
    return parent_path, Sequential(rebuilt), None


def _apply_insert(model: Module, path: str, value: Any, change: Change) -> tuple:
    return _inserted(model, path, change, "dropout", Dropout(_rate(value, change)))


def _offer_insert_norm(path: str, layer: Module, parent: Module | None) -> dict | None:
    # only after a Linear: its out_features is the width the LayerNorm normalises, and
    # LayerNorm's init (γ = 1, β = 0) defines the new parameters
    if isinstance(parent, Sequential) and isinstance(layer, Linear):
        return {"current": None, "choices": None}
    return None


def _apply_insert_norm(model: Module, path: str, value: Any, change: Change) -> tuple:
    layer = layers(model)[path]
    if not isinstance(layer, Linear):
        raise LabError(f"model lab: insert_layernorm at {path!r}: a LayerNorm goes after a "
                       f"Linear (whose width it normalises), not a {type(layer).__name__}")
    if value is not None:
        raise LabError(f"model lab: insert_layernorm at {path!r} takes no value, got "
                       f"{shown(value, with_type=True)}")
    return _inserted(model, path, change, "norm", LayerNorm(layer.out_features,
                                                            dtype=layer.dtype))


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
    "insert_layernorm": Rule(_offer_insert_norm, _apply_insert_norm),
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
    return change_model(model, change)[0]


def change_model(model: Module, change: Change) -> tuple[Module, Any]:
    """(the model description after `change`, the value the change replaced).

    >>> from pyasg import nn
    >>> new, before = change_model(nn.Sequential(nn.Tanh()), Change("activation", "0", "relu"))
    >>> type(new[0]).__name__, before
    ('ReLU', 'tanh')
    """
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


def replayed(model: Module, changes: Sequence[Change], until: int | None = None) -> Module:
    """The model description after the model `changes` of a record (those applied up to
    step `until`, if given), in order; learning-rate changes are left out: they live in
    the optimiser state a checkpoint holds.

    >>> from pyasg import nn
    >>> m = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    >>> done = [Change("activation", "1", "tanh", step=3), Change("lr", "", 0.1, step=4),
    ...         Change("activation", "1", "gelu", step=9)]
    >>> type(replayed(m, done, until=5)[1]).__name__, type(replayed(m, done)[1]).__name__
    ('Tanh', 'GELU')
    """
    for change in changes:
        if change.what != LR and (until is None or (change.step or 0) <= until):
            model = changed(model, change)
    return model


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
