"""Pytrees: nested dict / list / tuple / namedtuple / None of leaves, and their dotted paths.

Dict keys keep their insertion order (so weights keep a model's order, as in a
PyTorch `state_dict`); `None` is an empty subtree; anything else is a leaf.

>>> leaves, tree = flatten({"w": 1, "b": [2, 3]})
>>> leaves, unflatten(tree, [10, 20, 30])
([1, 2, 3], {'w': 10, 'b': [20, 30]})
>>> [p for p, _ in flatten_with_paths({"blocks": [{"w_q": 0}]})[0]]
['blocks.0.w_q']
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from pyasg.errors import PyasgError


@dataclass(frozen=True)
class TreeDef:
    """The structure of a pytree without its leaves; hashable, so it can key a cache."""

    kind: str  # "leaf", "none", "tuple", "list", "dict", "namedtuple"
    meta: Any = None  # dict keys, or the namedtuple class
    children: tuple[TreeDef, ...] = ()

    @property
    def num_leaves(self) -> int:
        if self.kind == "leaf":
            return 1
        return sum(c.num_leaves for c in self.children)

    def __repr__(self) -> str:
        if self.kind == "leaf":
            return "*"
        if self.kind == "none":
            return "None"
        inner = [repr(c) for c in self.children]
        if self.kind == "dict":
            return "{" + ", ".join(f"{k!r}: {c}" for k, c in zip(self.meta, inner)) + "}"
        if self.kind == "list":
            return "[" + ", ".join(inner) + "]"
        name = self.meta.__name__ if self.kind == "namedtuple" else ""
        return name + "(" + ", ".join(inner) + ("," if len(inner) == 1 and not name else "") + ")"


LEAF = TreeDef("leaf")


def _is_namedtuple(x: object) -> bool:
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


def _children(x: object) -> tuple[str, Any, list[tuple[object, Any]]] | None:
    """(kind, meta, [(key, child)]) for containers; None for a leaf."""
    if x is None:
        return "none", None, []
    if isinstance(x, dict):
        return "dict", tuple(x.keys()), list(x.items())
    if _is_namedtuple(x):
        return "namedtuple", type(x), list(zip(type(x)._fields, x))
    if isinstance(x, tuple):
        return "tuple", None, list(enumerate(x))
    if isinstance(x, list):
        return "list", None, list(enumerate(x))
    return None


def _walk(x: object, path: str, out: list[tuple[str, Any]]) -> TreeDef:
    found = _children(x)
    if found is None:
        out.append((path, x))
        return LEAF
    kind, meta, items = found
    kids = tuple(_walk(child, f"{path}.{key}" if path else str(key), out) for key, child in items)
    return TreeDef(kind, meta, kids)


def flatten_with_paths(tree: object, prefix: str = "") -> tuple[list[tuple[str, Any]], TreeDef]:
    """Leaves with their dotted paths, in order, and the structure."""
    out: list[tuple[str, Any]] = []
    treedef = _walk(tree, prefix, out)
    return out, treedef


def flatten(tree: object) -> tuple[list[Any], TreeDef]:
    """The leaves of `tree`, in order, and its structure."""
    pairs, treedef = flatten_with_paths(tree)
    return [leaf for _, leaf in pairs], treedef


def unflatten(treedef: TreeDef, leaves: list[Any] | tuple[Any, ...]) -> Any:
    """Rebuild a pytree of structure `treedef` from `leaves`."""
    if len(leaves) != treedef.num_leaves:
        raise PyasgError(f"tree {treedef!r} needs {treedef.num_leaves} leaves, got {len(leaves)}")
    return _build(treedef, iter(leaves))


def _build(treedef: TreeDef, leaves: Iterator[Any]) -> Any:
    kind = treedef.kind
    if kind == "leaf":
        return next(leaves)
    if kind == "none":
        return None
    kids = [_build(c, leaves) for c in treedef.children]
    if kind == "dict":
        return dict(zip(treedef.meta, kids))
    if kind == "list":
        return kids
    if kind == "namedtuple":
        return treedef.meta(*kids)
    return tuple(kids)


def tree_map(fn: Callable[..., Any], tree: object, *rest: object) -> Any:
    """Apply `fn` leafwise to one or more trees of the same structure.

    >>> tree_map(lambda a, b: a + b, {"w": 1}, {"w": 2})
    {'w': 3}
    """
    leaves, treedef = flatten(tree)
    others = []
    for other in rest:
        other_leaves, other_def = flatten(other)
        if other_def != treedef:
            raise PyasgError(f"tree_map: structures differ: {treedef!r} vs {other_def!r}")
        others.append(other_leaves)
    return unflatten(treedef, [fn(*xs) for xs in zip(leaves, *others)])


def tree_leaves(tree: object) -> list[Any]:
    """The leaves of `tree`, in order."""
    return flatten(tree)[0]
