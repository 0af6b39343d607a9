"""Pytrees: nested dict / list / tuple / namedtuple / None / registered types of leaves,
and their dotted paths.

Dict keys keep their insertion order (so weights keep a model's order, as in a
PyTorch `state_dict`); `None` is an empty subtree; a type registered with
`register_pytree_node` or `register_dataclass` (JAX's functions, JAX's signatures)
is a container of the children its flatten function gives; anything else is a leaf.
A dataclass is a leaf until it is registered, as in JAX: registering says which
fields are data (children, traced) and which are static (kept in the structure,
so `jit` retraces when they change); an unregistered one passed to a traced
function raises an error that says so (`leaf_hint`).

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
>>> import dataclasses
>>> @register_dataclass
... @dataclasses.dataclass
... class Layer:
...     w: object
...     act: str = dataclasses.field(default="relu", metadata={"static": True})
>>> flatten_with_paths({"layer": Layer(1)})
([('layer.w', 1)], {'layer': Layer(w=*; act='relu')})
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
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

    kind: str  # "leaf", "none", "tuple", "list", "dict", "namedtuple", "custom"
    #: dict keys, the namedtuple class, or for "custom" a `Custom` (type, keys, aux data)
    meta: Any = None
    children: tuple[TreeDef, ...] = ()

    @property
    def keys(self) -> tuple[object, ...]:
        """The keys that name the children in dotted paths (positions for sequences).

        >>> flatten({"a": 1, "b": 2})[1].keys
        ('a', 'b')
        """
        if self.kind == "dict":
            return tuple(self.meta)
        if self.kind == "namedtuple":
            return tuple(self.meta._fields)
        if self.kind == "custom":
            return self.meta.keys
        return tuple(range(len(self.children)))

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
        if self.kind == "custom":
            custom = self.meta
            shown_aux = "" if custom.aux is None else f"; {custom.describe_aux()}"
            return (f"{custom.type.__name__}("
                    + ", ".join(f"{k}={c}" for k, c in zip(custom.keys, inner)) + shown_aux + ")")
        name = self.meta.__name__ if self.kind == "namedtuple" else ""
        return name + "(" + ", ".join(inner) + ("," if len(inner) == 1 and not name else "") + ")"


LEAF = TreeDef("leaf")


# --------------------------------------------------------------------------- registered types


@dataclass(frozen=True)
class Custom:
    """The structure a registered type keeps besides its children: the type, the keys
    naming its children in paths, and its aux data (hashable: it keys `jit`'s cache)."""

    type: type
    keys: tuple[object, ...]
    aux: Any

    def describe_aux(self) -> str:
        entry = _REGISTRY.get(self.type)
        if entry is not None and entry.static_names is not None:  # a dataclass: by name
            return ", ".join(f"{k}={v!r}" for k, v in zip(entry.static_names, self.aux))
        return shown(self.aux, 60)


@dataclass(frozen=True)
class _Entry:
    """How one registered type flattens: x -> ([(key, child)], aux), and back."""

    flatten: Callable[[Any], tuple[list[tuple[object, Any]], Any]]
    unflatten: Callable[[Any, list[Any]], Any]
    #: the names of a registered dataclass's static fields (None for other types)
    static_names: tuple[str, ...] | None = None


#: type -> how it flattens; filled by `register_pytree_node` and `register_dataclass`.
_REGISTRY: dict[type, _Entry] = {}

#: The built-in containers: registering them again would change every pytree.
_BUILTIN = (dict, list, tuple, type(None))


def _check_registrable(nodetype: object, what: str) -> None:
    if not isinstance(nodetype, type):
        raise TreeError(f"{what} needs a class, got {type(nodetype).__name__} "
                        f"{shown(nodetype, 60)}")
    if nodetype in _BUILTIN:
        raise TreeError(f"{what}: {nodetype.__name__} is a built-in pytree container already")
    if nodetype in _REGISTRY:
        raise TreeError(f"{what}: {nodetype.__name__} is registered already (a type is "
                        f"registered once, as in JAX)")


def register_pytree_node(nodetype: type, flatten_func: Callable[[Any], tuple[Iterable, Any]],
                         unflatten_func: Callable[[Any, Iterable], Any]) -> None:
    """Make `nodetype` a pytree container (JAX's signature): `flatten_func(x)` returns
    `(children, aux_data)`, `unflatten_func(aux_data, children)` rebuilds it.

    The children are pytrees themselves; their paths are their positions (`opt.0`).
    `aux_data` is the static part: it must be hashable and comparable, since `jit`
    keys its cache on the tree structure (a new aux value retraces).

    >>> class Pair:
    ...     def __init__(self, a, b): self.a, self.b = a, b
    >>> register_pytree_node(Pair, lambda p: ((p.a, p.b), None), lambda aux, ab: Pair(*ab))
    >>> tree_map(lambda v: v * 10, Pair(1, [2])).b
    [20]
    """
    _check_registrable(nodetype, "register_pytree_node")
    if not callable(flatten_func) or not callable(unflatten_func):
        raise TreeError(f"register_pytree_node({nodetype.__name__}, ...): flatten_func and "
                        f"unflatten_func must be functions")
    name = nodetype.__name__

    def flatten_items(x: Any) -> tuple[list[tuple[object, Any]], Any]:
        got = flatten_func(x)
        if not (isinstance(got, tuple) and len(got) == 2):
            raise TreeError(f"the flatten function registered for {name} returned "
                            f"{shown(got, 60, with_type=True)}; it must return "
                            f"(children, aux_data)")
        children, aux = got
        try:
            children = list(children)
        except TypeError:
            raise TreeError(f"the flatten function registered for {name} returned children "
                            f"{shown(children, 60, with_type=True)}, which is not a sequence"
                            ) from None
        return list(enumerate(children)), aux

    _REGISTRY[nodetype] = _Entry(flatten_items, lambda aux, kids: unflatten_func(aux, kids))


def register_dataclass(nodetype: type | None = None, data_fields: Iterable[str] | None = None,
                       meta_fields: Iterable[str] | None = None,
                       drop_fields: Iterable[str] = ()) -> Any:
    """Make a dataclass a pytree (JAX's `register_dataclass`); usable as a decorator.

    `data_fields` are children (arrays, traced; their paths are the field names),
    `meta_fields` static (kept in the tree structure: hashable, and a change retraces).
    Without either, every init field is data except those declared with
    `dataclasses.field(metadata={"static": True})`. Rebuilding calls the class with
    every field as a keyword, as JAX does. Returns the class.

    >>> @register_dataclass
    ... @dataclasses.dataclass(frozen=True)
    ... class Params:
    ...     w: object
    ...     b: object
    >>> [path for path, _ in flatten_with_paths({"p": Params(1.0, 2.0)})[0]]
    ['p.w', 'p.b']
    """
    if nodetype is None:
        return lambda cls: register_dataclass(cls, data_fields, meta_fields, drop_fields)
    _check_registrable(nodetype, "register_dataclass")
    name = nodetype.__name__
    if data_fields is None and meta_fields is None:
        if not dataclasses.is_dataclass(nodetype):
            raise TreeError(f"register_dataclass({name}): {name} is not a dataclass; pass "
                            f"data_fields and meta_fields, or use register_pytree_node")
        init = [f for f in dataclasses.fields(nodetype) if f.init]
        data = tuple(f.name for f in init if not f.metadata.get("static", False))
        meta = tuple(f.name for f in init if f.metadata.get("static", False))
    elif data_fields is None or meta_fields is None:
        raise TreeError(f"register_dataclass({name}): give both data_fields and meta_fields, "
                        f"or neither (then fields marked metadata={{'static': True}} are meta)")
    else:
        data, meta = _field_names(data_fields, name), _field_names(meta_fields, name)
    drop = _field_names(drop_fields, name)
    if dataclasses.is_dataclass(nodetype):
        init = {f.name for f in dataclasses.fields(nodetype) if f.init}
        listed = set(data) | set(meta) | set(drop)
        if listed != init or len(data) + len(meta) + len(drop) != len(listed):
            raise TreeError(f"register_dataclass({name}): data_fields {list(data)}, "
                            f"meta_fields {list(meta)} and drop_fields {list(drop)} must name "
                            f"each init field of {name} once: {sorted(init)}")

    def flatten_items(x: Any) -> tuple[list[tuple[object, Any]], Any]:
        return [(f, getattr(x, f)) for f in data], tuple(getattr(x, f) for f in meta)

    def rebuild(aux: tuple, kids: list[Any]) -> Any:
        return nodetype(**dict(zip(data, kids)), **dict(zip(meta, aux)))

    _REGISTRY[nodetype] = _Entry(flatten_items, rebuild, meta)
    return nodetype


def _field_names(names: Iterable[str], owner: str) -> tuple[str, ...]:
    if isinstance(names, str) or not all(isinstance(n, str) for n in names):
        raise TreeError(f"register_dataclass({owner}): fields are given as a list of names, "
                        f"got {shown(names, 60, with_type=True)}")
    return tuple(names)


def leaf_hint(leaf: object) -> str:
    """What to do with a leaf that is not an array: register its type, or keep it out
    of the traced arguments (for error messages).

    >>> leaf_hint(object()).startswith("pass it as a static argument")
    True
    """
    kind = type(leaf).__name__
    if dataclasses.is_dataclass(leaf) and not isinstance(leaf, type):
        return (f"a dataclass is a leaf until it is registered: decorate {kind} with "
                f"@pyasg.register_dataclass (its fields become children; mark configuration "
                f"fields dataclasses.field(metadata={{'static': True}})), or pass it as a "
                f"static argument (static_argnums)")
    return (f"pass it as a static argument (static_argnums) or close over it, or make {kind} "
            f"a pytree with pyasg.register_pytree_node / pyasg.register_dataclass")


def _is_namedtuple(x: object) -> bool:
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


def _children(x: object) -> tuple[str, Any, list[tuple[object, Any]]] | None:
    """(kind, meta, [(key, child)]) for containers; None for a leaf."""
    if x is None:
        return "none", None, []
    if isinstance(x, dict):
        return "dict", tuple(x.keys()), list(x.items())
    entry = _REGISTRY.get(type(x))
    if entry is not None:
        items, aux = entry.flatten(x)
        try:
            hash(aux)
        except TypeError:
            raise TreeError(f"the aux data of a {type(x).__name__} ({shown(aux, 60)}) is not "
                            f"hashable; static parts of a pytree key jit's cache, so they "
                            f"must be (use tuples, not lists or arrays)") from None
        return "custom", Custom(type(x), tuple(k for k, _ in items), aux), items
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
    if kind == "custom":
        return _REGISTRY[treedef.meta.type].unflatten(treedef.meta.aux, kids)
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


def broadcast_prefix(prefix: object, tree: object, what: str = "the prefix",
                     against: str = "the tree") -> list[Any]:
    """One entry of `prefix` per leaf of `tree`: `prefix` is a tree prefix of `tree`, and
    each of its leaves (None is one here) stands for the whole subtree at its place, as
    JAX's `in_axes` does. Raises `TreeError` naming the path where they part (`what`
    and `against` name the two trees in its message).

    >>> broadcast_prefix((0, None), ([1, 2], {"a": 3}))
    [0, 0, None]
    """
    out: list[Any] = []
    _prefix(prefix, tree, "", out, f"{what} does not fit {against}", against)
    return out


def _describe_node(x: object) -> str:
    found = _children(x)
    if found is None:
        array = hasattr(x, "shape") and hasattr(x, "dtype")  # numpy's, a tracer, on a device
        return "an array" if array else f"a leaf ({type(x).__name__})"
    kind, meta, items = found
    if kind == "dict":
        return f"a dict with keys {shown(list(meta), 80)}"
    if kind in ("tuple", "list"):
        return f"a {kind} of {len(items)}"
    return f"a {type(x).__name__}"


def _prefix(prefix: object, tree: object, path: str, out: list[Any], what: str,
            against: str) -> None:
    found = None if prefix is None else _children(prefix)
    if found is None:
        out.extend([prefix] * len(flatten(tree)[0]))
        return
    kind, meta, items = found
    other = _children(tree)
    at = shown(path or "(root)")
    if other is None or other[0] != kind:
        fits = False
    elif kind == "dict":
        fits = set(meta) == set(other[1])
    else:
        fits = len(items) == len(other[2]) and type(prefix) is type(tree)
    if not fits:
        raise TreeError(f"{what} at {at}: {_describe_node(prefix)} there, against "
                        f"{_describe_node(tree)} in {against}")
    by_key = dict(items)
    for key, child in other[2]:
        _prefix(by_key[key], child, f"{path}.{key}" if path else str(key), out, what, against)


def tree_leaves(tree: object) -> list[Any]:
    """The leaves of `tree`, in order.

    >>> tree_leaves({"a": [1, 2], "b": None})
    [1, 2]
    """
    return flatten(tree)[0]
