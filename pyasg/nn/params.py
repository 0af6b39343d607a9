"""The check of a params (or state) tree against the layer it is given to.

A layer says what it expects with `param_shapes()` (its own arrays by name and
shape; None when it does not say) and `children()` (its sub-layers, each under its
own key); `state_shapes()` does the same for running statistics. `check_params`
walks the given tree along the layer and reports, in one `ParamsError`, every
missing key, every key that names no parameter or sub-layer, every leaf that is no
float array and every array of the wrong shape, each at its dotted path from the
layer called (`params.attn.w_q lacks 'bias'`). A sub-layer without parameters may
be left out, as a PyTorch `state_dict` has no key for it. A layer that declares no
shapes (a user's own layer) is not checked, beyond its declared children.

Dotted child names are inner dicts: children "blocks.0" and "blocks.1" (a list of
layers) take `params["blocks"]["0"]` and `["1"]`. A whole list that is missing is
reported by its name ('blocks'), one that is no dict as such, and, in a layer that
declares its arrays (as one built from its attributes does: `Module.init`), an entry
of the list that names none of its layers as extra.

Only structure, shapes and float-ness are checked, never dtypes: float64 params in
a layer made with the float32 default are fine, as before.

>>> import numpy as np
>>> from pyasg.nn.layers import Linear
>>> check_params(Linear(3, 2), {"weight": np.zeros((2, 3), np.float32), "bais": 0.0})
Traceback (most recent call last):
...
pyasg.nn.checks.ParamsError: Linear: the params do not fit the layer (make them with ...
  params (Linear) lacks 'bias'
  params (Linear) has entries ['bais'] that name no layer or parameter of Linear ...
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from pyasg.array import functional as F
from pyasg.asg.types import is_float
from pyasg.errors import PyasgError
from pyasg.nn.checks import ParamsError, quote

#: At most this many problems are listed in one error (the count of the rest follows).
MAX_LISTED = 12


class Layer(Protocol):
    """What the check reads of a layer (`pyasg.nn.module.Module` has all of it)."""

    kind: str

    def param_shapes(self) -> dict[str, tuple[int, ...]] | None: ...
    def state_shapes(self) -> dict[str, tuple[int, ...]] | None: ...
    def children(self) -> dict[str, Any]: ...
    def has_state(self) -> bool: ...


def _expects(layer: Layer, shapes_of: str) -> bool:
    """Whether `layer` needs any entry at all (else it may be left out of its parent)."""
    own = getattr(layer, shapes_of)()
    if own:
        return True
    return any(_expects(child, shapes_of) for child in layer.children().values())


def _leaf_problem(leaf: object, shape: tuple[int, ...], floats: bool) -> str | None:
    try:
        t = F.type_of(leaf)
    except PyasgError:
        return f"is {quote(leaf)}, not an array"
    if floats and not is_float(t.dtype):
        return f"is {t!r}; it must be a float array"
    if t.shape != tuple(shape):
        return f"has shape {t.shape}, expected {tuple(shape)}"
    return None


_ABSENT = object()


def _entry(tree: Mapping, dotted: str) -> object:
    """tree[a][b] for a child named "a.b" (`children()` names a list's layers so, as
    "blocks.0", with their params under params["blocks"]["0"]); `_ABSENT` if not there."""
    if dotted in tree:
        return tree[dotted]
    node: object = tree
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return _ABSENT
        node = node[part]
    return node


class _Expects(dict):
    """Whether each child needs an entry (`_expects`), worked out when first asked."""

    def __init__(self, children: Mapping[str, Layer], shapes_of: str) -> None:
        super().__init__()
        self.children, self.shapes_of = children, shapes_of

    def __missing__(self, name: str) -> bool:
        self[name] = needs = _expects(self.children[name], self.shapes_of)
        return needs


def _groups(children: Mapping[str, object]) -> dict[str, list[str]]:
    """The inner dicts that dotted child names imply: {"blocks": ["0", "1"]} for
    children "blocks.0" and "blocks.1" (a list of layers), at every depth."""
    groups: dict[str, list[str]] = {}
    for name in children:
        parts = name.split(".")
        for depth in range(1, len(parts)):
            group = ".".join(parts[:depth])
            if group not in children:
                names = groups.setdefault(group, [])
                if parts[depth] not in names:
                    names.append(parts[depth])
    return groups


def _absent_names(tree: Mapping, children: Mapping[str, Layer], expects: Mapping[str, bool],
                  groups: Mapping[str, list[str]]) -> list[str]:
    """The names to report missing: a child's, or that of the whole group it is in
    ("blocks" rather than "blocks.0", "blocks.1") where none of the group is there;
    none under a group that is there but no dict (reported as such)."""
    out: list[str] = []
    for name in children:
        if not expects[name] or _entry(tree, name) is not _ABSENT:
            continue
        parts = name.split(".")
        report = name
        for depth in range(1, len(parts)):
            group = ".".join(parts[:depth])
            if group not in groups:
                continue
            node = _entry(tree, group)
            if node is not _ABSENT and not isinstance(node, Mapping):
                report = None  # the group's own problem says it
                break
            inside = [c for c in children if c.startswith(f"{group}.")]
            if node is _ABSENT and all(_entry(tree, c) is _ABSENT for c in inside):
                report = group
                break
        if report is not None and report not in out:
            out.append(report)
    return out


def _group_problems(layer: Layer, tree: Mapping, path: str, own: object,
                    children: Mapping[str, Layer], expects: Mapping[str, bool],
                    groups: Mapping[str, list[str]]) -> list[str]:
    """An inner dict of sub-layers (a list's, "blocks") that is no dict, or, in a
    layer that declares its arrays, has entries that name none of its layers."""
    found: list[str] = []
    for group, names in groups.items():
        node = _entry(tree, group)
        if node is _ABSENT:
            continue
        where = f"{path}.{group} ({layer.kind})"
        if not isinstance(node, Mapping):
            inside = [c for c in children if c.startswith(f"{group}.")]
            if own is not None or any(expects[c] for c in inside):
                found.append(f"{where} is {quote(node)}; it must be a dict of the layers "
                             f"{', '.join(names)}")
        elif own is not None:
            extra = [k for k in node if k not in names]
            if extra:
                found.append(f"{where} has entries {[str(k)[:40] for k in extra][:MAX_LISTED]} "
                             f"that name no layer in {layer.kind}.{group} "
                             f"(it has: {', '.join(names)})")
    return found


def _problems(layer: Layer, tree: object, path: str, shapes_of: str,
              floats: bool) -> list[str]:
    own = getattr(layer, shapes_of)()
    children = {name: child for name, child in layer.children().items()
                if shapes_of == "param_shapes" or child.has_state()}
    if own is None and not children:
        return []  # a layer that says nothing of its params: nothing to check
    where = f"{path} ({layer.kind})"
    if not isinstance(tree, Mapping):
        return [f"{where} is {quote(tree)}; it must be a dict"]
    found: list[str] = []
    expects = _Expects(children, shapes_of)
    groups = _groups(children)
    expected = {**(own or {}), **children, **{k.split(".")[0]: None for k in children}}
    missing = [k for k in (own or {}) if k not in tree]
    missing += _absent_names(tree, children, expects, groups)
    if missing:
        found.append(f"{where} lacks {', '.join(repr(k) for k in missing)}")
    if own is not None:
        extra = [k for k in tree if k not in expected]
        if extra:
            names = ", ".join(dict.fromkeys(
                [*(own or {}), *(k.split(".")[0] for k in children)])) or "none"
            found.append(f"{where} has entries {[str(k)[:40] for k in extra][:MAX_LISTED]} "
                         f"that name no layer or parameter of {layer.kind} "
                         f"(it has: {names})")
    found.extend(_group_problems(layer, tree, path, own, children, expects, groups))
    for name, shape in (own or {}).items():
        if name in tree:
            problem = _leaf_problem(tree[name], shape, floats)
            if problem:
                found.append(f"{path}.{name} ({layer.kind}.{name}) {problem}")
    for name, child in children.items():
        entry = _entry(tree, name)
        if entry is not _ABSENT:
            found.extend(_problems(child, entry, f"{path}.{name}", shapes_of, floats))
    return found


def _check(layer: Layer, tree: object, root: str, shapes_of: str, floats: bool) -> None:
    found = _problems(layer, tree, root, shapes_of, floats)
    if not found:
        return
    listed = found[:MAX_LISTED]
    if len(found) > MAX_LISTED:
        listed.append(f"... and {len(found) - MAX_LISTED} more")
    make = "layer.init(key)" if root == "params" else "layer.init_state()"
    raise ParamsError(f"{layer.kind}: the {root} do not fit the layer (make them with "
                      f"{make}):\n  " + "\n  ".join(listed))


def check_params(layer: Layer, params: object) -> None:
    """Raise `ParamsError` unless `params` fits `layer` (see the module docstring).

    >>> import numpy as np
    >>> from pyasg.nn.norm import BatchNorm
    >>> check_params(BatchNorm(2), {"weight": np.ones(2), "bias": np.zeros(2)})
    """
    _check(layer, params, "params", "param_shapes", floats=True)


def check_state(layer: Layer, state: object) -> None:
    """Raise `ParamsError` unless `state` fits `layer`'s `state_shapes` and stateful
    children (any dtype: a step counter is an integer).

    >>> from pyasg.nn.norm import BatchNorm
    >>> bn = BatchNorm(2)
    >>> check_state(bn, bn.init_state())
    """
    _check(layer, state, "state", "state_shapes", floats=False)
