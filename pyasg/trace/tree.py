"""Pytrees: nested dict / list / tuple / namedtuple / None of leaves, and their dotted paths.

Dict keys keep their insertion order (so weights keep a model's order, as in a
PyTorch `state_dict`); `None` is an empty subtree; anything else is a leaf.

A pytree is at most `MAX_DEPTH` (100) containers deep and never contains itself:
either raises `TreeError` naming the path where it happened, instead of Python's
RecursionError (the walks here, and the hash and repr of a `TreeDef`, recurse once
per level; 100 levels leave the interpreter's default limit of 1,000 frames room
for the caller's own).

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

from pyasg.errors import PyasgError, shown

#: The deepest nesting of containers a pytree may have (see the module docstring).
MAX_DEPTH = 100


class TreeError(PyasgError, ValueError):
    """A pytree is too deep, contains itself, or does not fit the structure asked for."""


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


def _walk(x: object, path: str, out: list[tuple[str, Any]], open_: set[int]) -> TreeDef:
    """The structure of `x` (at `path`), appending its leaves to `out`; `open_` holds the
    ids of the containers `x` sits in, to catch one that contains itself."""
    found = _children(x)
    if found is None:
        out.append((path, x))
        return LEAF
    if id(x) in open_:
        raise TreeError(f"the pytree contains itself: the {type(x).__name__} at "
                        f"{shown(path or '(root)')} is one of its own containers")
    if len(open_) >= MAX_DEPTH:
        raise TreeError(f"the pytree is nested deeper than {MAX_DEPTH} containers (at "
                        f"{shown(path)}); flatten it, or keep deep data out of pytrees")
    kind, meta, items = found
    open_.add(id(x))
    kids = tuple([_walk(child, f"{path}.{key}" if path else str(key), out, open_)
                  for key, child in items])
    open_.discard(id(x))
    return TreeDef(kind, meta, kids)


def flatten_with_paths(tree: object, prefix: str = "") -> tuple[list[tuple[str, Any]], TreeDef]:
    """Leaves with their dotted paths, in order, and the structure.

    >>> flatten_with_paths([1, {"a": 2}], prefix="x")[0]
    [('x.0', 1), ('x.1.a', 2)]
    """
    out: list[tuple[str, Any]] = []
    treedef = _walk(tree, prefix, out, set())
    return out, treedef


def flatten(tree: object) -> tuple[list[Any], TreeDef]:
    """The leaves of `tree`, in order, and its structure.

    >>> flatten((1, None, [2]))
    ([1, 2], (*, None, [*]))
    """
    pairs, treedef = flatten_with_paths(tree)
    return [leaf for _, leaf in pairs], treedef


def unflatten(treedef: TreeDef, leaves: list[Any] | tuple[Any, ...]) -> Any:
    """Rebuild a pytree of structure `treedef` from `leaves`.

    >>> unflatten(flatten({"w": 0})[1], [5])
    {'w': 5}
    """
    if not isinstance(treedef, TreeDef):
        raise TreeError(f"unflatten needs a TreeDef (the second result of flatten), got "
                        f"{type(treedef).__name__} {shown(treedef, 60)}")
    if not isinstance(leaves, (list, tuple)):
        raise TreeError(f"unflatten needs the leaves as a list or a tuple, got "
                        f"{type(leaves).__name__} {shown(leaves, 60)}")
    if len(leaves) != treedef.num_leaves:
        raise TreeError(f"tree {shown(treedef)} needs {treedef.num_leaves} leaves, "
                        f"got {len(leaves)}")
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
    if not callable(fn):
        raise TreeError(f"tree_map needs a function first, got {type(fn).__name__} "
                        f"{shown(fn, 60)}")
    leaves, treedef = flatten(tree)
    others = []
    for other in rest:
        other_leaves, other_def = flatten(other)
        if other_def != treedef:
            raise TreeError(f"tree_map: structures differ: {shown(treedef)} vs "
                            f"{shown(other_def)}")
        others.append(other_leaves)
    return unflatten(treedef, [fn(*xs) for xs in zip(leaves, *others)])


def tree_leaves(tree: object) -> list[Any]:
    """The leaves of `tree`, in order.

    >>> tree_leaves({"a": [1, 2], "b": None})
    [1, 2]
    """
    return flatten(tree)[0]
