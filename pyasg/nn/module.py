"""The layer protocol: a small object that knows its shapes and initialisers.

    params = layer.init(key)             # a dict of arrays (PyTorch state_dict names)
    y = layer(params, x)                 # traceable: works on tracers and on numpy

Conventions every layer follows:

- Parameter names and layouts are PyTorch's `state_dict` ones (Linear `weight`
  [out, in] and `bias`, …), so weights move between the two by name; a layer made
  of layers nests their dicts (`{"w_q": {"weight": …}}` → path `w_q.weight`).
- A model made of layers needs no `init` of its own: the layers it holds as
  attributes (also in lists, tuples and dicts, at any depth) are its `children()`,
  in assignment order, named by attribute (`fc1`; `blocks.0` for `blocks[0]`), and
  `Module.init` builds `{"fc1": fc1.init(k1), "blocks": {"0": …}}` from them. Each
  child's key is the parent's key folded with the child's name (`name_key`), so
  adding, removing or reordering a layer leaves every other layer's initial values
  as they were. Layers without parameters (activations, dropout) get no entry.
  Attributes whose name starts with `_` are private: not sub-layers.
- Non-trainable buffers (BatchNorm's running statistics) are *state*, kept apart
  from params: `state = layer.init_state()`; a layer with `stateful = True` is
  called as `y, new_state = layer(params, x, state=state, training=…)`.
- Randomness (dropout) is an explicit `key=` argument; `training=False` needs none.
- A layer says which arrays it expects, `layer.param_shapes()` (and
  `state_shapes()`); every call checks the params tree it is given against them and
  the sub-layers (`pyasg.nn.params`), so a missing or misspelt key, a None or a
  wrong shape is a `ParamsError` naming the path, never a raw KeyError.
- Every parameter records its layer kind and role for the viewer:
  `layer.param_kinds()` maps dotted paths to e.g. `"LayerNorm.weight"`, and
  `ROLES["LayerNorm.weight"]` says "scale γ". The outermost `init` call records
  these kinds with `pyasg.events.describe_params`, which is how the viewer learns
  them.
- The PyTorch habits fail with a `ModuleError` that says what to write instead: a
  `forward` method (pyasg calls `__call__(self, params, x)`), and `model(x)`
  without the params (a pyasg layer keeps no weights inside: they are passed in).

A layer's own arrays next to its sub-layers (a learned scale, say) are not found
from attributes: such a layer writes `init`, taking its sub-layers' params from
`super().init(key)` and its own from `name_key(key, "scale")`, and says their
shapes in `param_shapes` so that calls check them.

>>> import pyasg.random as R
>>> class Scale(Module):
...     def init(self, key): return {"weight": np.ones(3, np.float32)}
...     def __call__(self, params, x): return x * params["weight"]
>>> Scale().param_kinds(prefix="model")
{'model.weight': 'Scale.weight'}
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import threading
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np

from pyasg import events
from pyasg.array import functional as F
from pyasg.array import random
from pyasg.array.primitives import is_tracer
from pyasg.errors import PyasgError, shown
from pyasg.nn.params import check_params

#: What each parameter of each layer kind is, for the viewer and for people.
ROLES: dict[str, str] = {}


class ModuleError(PyasgError, TypeError):
    """A layer was defined or called as a PyTorch module is (a `forward` method,
    `model(x)` without params), or holds its sub-layers in a way pyasg cannot name.

    Also a `TypeError`, which is what Python raises for the same calls otherwise.
    """


def register_roles(kind: str, roles: dict[str, str]) -> None:
    """Record the role of each parameter of a layer kind (`{"weight": "scale γ"}`)."""
    for name, role in roles.items():
        ROLES[f"{kind}.{name}"] = role


def name_key(key: object, name: str) -> Any:
    """The key for the part called `name` of something initialised from `key`.

    It depends on `key` and `name` alone (a stable hash of the name, never Python's
    per-process `hash`), so the parts of a model get the same values whatever else
    the model holds. `Module.init` gives each sub-layer `name_key(key, its_name)`.

    >>> import pyasg
    >>> k = pyasg.random.key(0)
    >>> bool((name_key(k, "fc1") == name_key(k, "fc1")).all())
    True
    >>> bool((name_key(k, "fc1") == name_key(k, "fc2")).any())
    False
    """
    if not isinstance(name, str):
        raise ModuleError(f"name_key: the name is a str, got {shown(name, 60)}")
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=8,
                             person=b"pyasg.nn").digest()
    words = np.frombuffer(digest, ">u4").astype(np.uint32)
    return random.bits(F.add(random.bits(key, (2,)), words), (2,))


_initialising = threading.local()


def _describing(init: Callable[..., dict]) -> Callable[..., dict]:
    """Wrap a layer's `init` so that its outermost call describes the parameters made."""

    @functools.wraps(init)
    def described_init(self: Module, *args: Any, **kwargs: Any) -> dict:
        depth = getattr(_initialising, "depth", 0)
        _initialising.depth = depth + 1
        try:
            params = init(self, *args, **kwargs)
        finally:
            _initialising.depth = depth
        if depth == 0 and isinstance(params, dict):
            try:
                kinds = self.param_kinds(params)
            except Exception:  # a custom layer's unusual params: nothing to describe
                kinds = {}
            if kinds:
                events.describe_params(kinds)
        return params

    described_init._pyasg_describes = True  # type: ignore[attr-defined]
    return described_init


def _is_array(x: object) -> bool:
    return isinstance(x, (np.ndarray, np.generic)) or is_tracer(x)


def _type_text(x: object) -> str:
    try:
        return repr(F.type_of(x))
    except PyasgError:
        return shown(x, 40)


def _call_mistake(layer: Module, call: Callable[..., Any], args: tuple,
                  kwargs: dict) -> str | None:
    """What is wrong with how `layer` was called, where it is the PyTorch habit of
    `model(x)` (or `model(x, params)`); None where the call looks like a pyasg one."""
    if not args or "params" in kwargs or not _is_array(args[0]):
        return None
    name = layer.kind
    if len(args) >= 2 and isinstance(args[1], Mapping):
        return (f"{name} was called with an array ({_type_text(args[0])}) and then a dict: "
                f"pyasg layers are called as layer(params, x), the params first; swap them")
    if len(args) == 1:
        try:
            inspect.signature(call).bind(layer, *args, **kwargs)
            fits = True
        except TypeError:
            fits = False
        if not fits or _takes_a_dict(layer):
            return (f"{name} was called with only x ({_type_text(args[0])}) and no params: "
                    f"pyasg layers are called as layer(params, x), and keep no weights "
                    f"inside. Make the params once, params = layer.init(pyasg.random.key(0)), "
                    f"and pass them to every call: layer(params, x)")
    return None


def _takes_a_dict(layer: Module) -> bool:
    try:
        return layer.param_shapes() is not None or bool(layer.children())
    except Exception:  # a user's layer whose methods fail: let its call say so
        return False


def _checking(call: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a layer's `__call__` so that it checks its params before it runs."""

    @functools.wraps(call)
    def checked_call(self: Module, *args: Any, **kwargs: Any) -> Any:
        mistake = _call_mistake(self, call, args, kwargs)
        if mistake:
            raise ModuleError(mistake)
        check_params(self, args[0] if args else kwargs.get("params"))
        return call(self, *args, **kwargs)

    checked_call._pyasg_checks = True  # type: ignore[attr-defined]
    return checked_call


# --------------------------------------------------------------------------- sub-layers


def _part_name(key: object, owner: str) -> str:
    if not isinstance(key, str) or not key or "." in key:
        raise ModuleError(f"{owner}: a dict of layers is keyed by non-empty strings "
                          f"without '.' (they name the layers' params), got {shown(key, 40)}")
    return key


def _find(value: object, name: str, found: dict[str, Module], seen: set[int],
          owner: str) -> None:
    """Put the layers in attribute `value` into `found`, by dotted name."""
    if isinstance(value, Module):
        found[name] = value
        return
    if not isinstance(value, (list, tuple, dict)) or not value or id(value) in seen:
        return
    seen.add(id(value))
    items = (value.items() if isinstance(value, dict)
             else ((str(i), item) for i, item in enumerate(value)))
    for key, item in items:
        if isinstance(item, (Module, list, tuple, dict)):
            before = len(found)
            _find(item, f"{name}.{key}", found, seen, owner)
            if isinstance(value, dict) and len(found) > before:
                _part_name(key, f"{owner}.{name}")
    seen.discard(id(value))


def _discover(layer: Module) -> dict[str, Module]:
    """The layers held in `layer`'s public attributes, in assignment order."""
    found: dict[str, Module] = {}
    owner = type(layer).__name__
    for name, value in vars(layer).items():
        if name.startswith("_"):
            continue
        _find(value, name, found, set(), owner)
    for name, child in found.items():
        if child is layer:
            raise ModuleError(f"{owner}.{name} is the layer itself: a layer cannot hold "
                              f"itself (keep a back-reference in an attribute named _{name})")
    return found


def _put(tree: dict, dotted: str, value: object, groups: set[int], owner: str) -> None:
    """tree[a][b] = value for dotted name "a.b", making the inner dicts (noted in
    `groups`) as needed."""
    *outer, last = dotted.split(".")
    node = tree
    for part in outer:
        if part not in node:
            node[part] = {}
            groups.add(id(node[part]))
        elif id(node[part]) not in groups:
            raise ModuleError(f"{owner}: the sub-layer names {part!r} and {dotted!r} clash "
                              f"(one names a layer, the other a layer inside it)")
        node = node[part]
    if last in node:
        raise ModuleError(f"{owner}: two sub-layers are both named {dotted!r}")
    node[last] = value


_active = threading.local()


class Module:
    """Base of every layer. Subclasses implement `__call__(self, params, x)`, and `init`
    unless the params are those of the layers they hold (see the module docstring).

    A model made of layers: assign them as attributes, in `__init__`, and write
    `__call__`; `init`, `children` and `param_kinds` follow from the attributes.

    >>> import pyasg, numpy as np
    >>> from pyasg.nn import Linear
    >>> class Block(Module):
    ...     def __init__(self, d):
    ...         self.fc = Linear(d, d)
    ...     def __call__(self, params, x):
    ...         return x + pyasg.tanh(self.fc(params["fc"], x))
    >>> class MLP(Module):
    ...     def __init__(self, d_in, d, d_out, depth=2):
    ...         self.fc1 = Linear(d_in, d)
    ...         self.blocks = [Block(d) for _ in range(depth)]
    ...         self.fc2 = Linear(d, d_out)
    ...     def __call__(self, params, x):
    ...         x = pyasg.tanh(self.fc1(params["fc1"], x))
    ...         for i, block in enumerate(self.blocks):
    ...             x = block(params["blocks"][str(i)], x)
    ...         return self.fc2(params["fc2"], x)
    >>> model = MLP(3, 8, 1)
    >>> params = model.init(pyasg.random.key(0))
    >>> list(params), list(params["blocks"]), params["blocks"]["1"]["fc"]["weight"].shape
    (['fc1', 'blocks', 'fc2'], ['0', '1'], (8, 8))
    >>> list(model.children())
    ['fc1', 'blocks.0', 'blocks.1', 'fc2']
    >>> model.param_kinds(params)["blocks.0.fc.weight"]
    'Linear.weight'
    >>> model(params, np.ones((4, 3), np.float32)).shape
    (4, 1)

    The PyTorch habit of calling `model(x)` says what to do instead:

    >>> model(np.ones((4, 3), np.float32))
    Traceback (most recent call last):
    ...
    pyasg.nn.module.ModuleError: MLP was called with only x (f32[4,3]) and no params: ...

    and a params tree that does not fit names what is missing and what is extra:

    >>> del params["blocks"]["1"]
    >>> model(params, np.ones((4, 3), np.float32))
    Traceback (most recent call last):
    ...
    pyasg.nn.checks.ParamsError: MLP: the params do not fit the layer (make them with ...
      params (MLP) lacks 'blocks.1'
    ...
    """

    #: The layer kind the viewer explains parameters by ("Linear" for `Linear.weight`):
    #: the class name, unless a class sets it.
    kind: ClassVar[str] = "Module"
    #: Stateful layers take `state=` and return `(y, new_state)`.
    stateful: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "kind" not in cls.__dict__:
            cls.kind = cls.__name__
        init = cls.__dict__.get("init")
        if init is not None and not getattr(init, "_pyasg_describes", False):
            cls.init = _describing(init)  # type: ignore[method-assign]
        call = cls.__dict__.get("__call__")
        if call is not None and not getattr(call, "_pyasg_checks", False):
            cls.__call__ = _checking(call)  # type: ignore[method-assign]

    @_describing
    def init(self, key: Any) -> dict:
        """Fresh parameters from a random key (`pyasg.random.key(seed)`).

        This default gives each sub-layer (`children()`) `name_key(key, name)` and
        nests their params by the dotted names (`blocks.0` → `["blocks"]["0"]`),
        leaving out sub-layers without parameters; a layer of its own arrays
        overrides it. A key of None is passed on as None.
        """
        children = self.children()
        if not children:
            return {}
        active = getattr(_active, "layers", None)
        if active is None:
            active = _active.layers = set()
        if id(self) in active:
            raise ModuleError(f"{self.kind} holds itself through its sub-layers "
                              f"({', '.join(children)}): a layer tree has no cycles (keep a "
                              f"back-reference in an attribute whose name starts with _)")
        active.add(id(self))
        try:
            params: dict = {}
            groups: set[int] = set()
            for name, child in children.items():
                sub = child.init(None if key is None else name_key(key, name))
                if isinstance(sub, dict) and not sub:
                    continue
                _put(params, name, sub, groups, self.kind)
            return params
        finally:
            active.discard(id(self))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """A layer computes in its own `__call__(self, params, x)`; this one says so."""
        name = type(self).__name__
        if callable(getattr(type(self), "forward", None)):
            raise ModuleError(f"{name} defines forward but no __call__: pyasg layers are "
                              f"called as layer(params, x); rename forward to "
                              f"__call__(self, params, x), and take the weights from params "
                              f"(made by layer.init(key)) rather than from self")
        raise ModuleError(f"{name} defines no __call__: pyasg layers are called as "
                          f"layer(params, x); write __call__(self, params, x) returning the "
                          f"output")

    def param_shapes(self) -> dict[str, tuple[int, ...]] | None:
        """This layer's own parameters by name and shape (not its sub-layers'), which
        every call checks the params against; None where a layer does not say.

        A layer that keeps `Module.init` has none: {}. A layer with its own `init`
        overrides this, or gets no check of its own arrays (a user's layer may).
        """
        return {} if type(self).init is Module.init else None

    def state_shapes(self) -> dict[str, tuple[int, ...]] | None:
        """This layer's own state arrays by name and shape (BatchNorm's statistics)."""
        return {} if not self.stateful else None

    def init_state(self) -> dict:
        """Fresh non-trainable state (running statistics); empty for most layers."""
        state: dict = {}
        groups: set[int] = set()
        for name, child in self.children().items():
            if child.has_state():
                _put(state, name, child.init_state(), groups, self.kind)
        return state

    def has_state(self) -> bool:
        return self.stateful or any(c.has_state() for c in self.children().values())

    def children(self) -> dict[str, Module]:
        """Sub-layers by parameter-name prefix: by default the layers held in public
        attributes, directly or in lists, tuples and dicts (`blocks.0` for
        `self.blocks[0]`), in assignment order. A layer that names its sub-layers'
        params otherwise overrides it."""
        return _discover(self)

    def param_kinds(self, params: dict | None = None, prefix: str = "") -> dict[str, str]:
        """Dotted parameter path -> "Kind.name" for this layer and its sub-layers."""
        params = self.init(np.zeros(2, np.uint32)) if params is None else params
        kinds: dict[str, str] = {}
        self._kinds_into(kinds, params, prefix, "", self.children())
        return kinds

    def _kinds_into(self, kinds: dict[str, str], tree: Mapping, prefix: str, group: str,
                    children: dict[str, Module]) -> None:
        for name, value in tree.items():
            path = f"{prefix}.{name}" if prefix else str(name)
            inner = f"{group}.{name}" if group else str(name)
            if inner in children:
                kinds.update(children[inner].param_kinds(value, path))
            elif isinstance(value, Mapping) and any(c.startswith(f"{inner}.") for c in children):
                self._kinds_into(kinds, value, path, inner, children)
            elif isinstance(value, dict):
                for sub, _ in _flat(value, path):
                    kinds[sub] = f"{self.kind}.{inner}"
            else:
                kinds[path] = f"{self.kind}.{inner}"

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items()
                           if not isinstance(v, Module) and not k.startswith("_"))
        return f"{type(self).__name__}({fields})"


def _flat(tree: dict, prefix: str) -> list[tuple[str, Any]]:
    out = []
    for k, v in tree.items():
        path = f"{prefix}.{k}"
        out.extend(_flat(v, path) if isinstance(v, dict) else [(path, v)])
    return out
