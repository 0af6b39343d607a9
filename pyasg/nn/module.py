"""The layer protocol: a small object that knows its shapes and initialisers.

    params = layer.init(key)             # a dict of arrays (PyTorch state_dict names)
    y = layer(params, x)                 # traceable: works on tracers and on numpy

Conventions every layer follows:

- Parameter names and layouts are PyTorch's `state_dict` ones (Linear `weight`
  [out, in] and `bias`, …), so weights move between the two by name; a layer made
  of layers nests their dicts (`{"w_q": {"weight": …}}` → path `w_q.weight`).
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

>>> import pyasg.random as R
>>> class Scale(Module):
...     def init(self, key): return {"weight": np.ones(3, np.float32)}
...     def __call__(self, params, x): return x * params["weight"]
>>> Scale().param_kinds(prefix="model")
{'model.weight': 'Scale.weight'}
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from pyasg import events
from pyasg.nn.params import check_params

#: What each parameter of each layer kind is, for the viewer and for people.
ROLES: dict[str, str] = {}


def register_roles(kind: str, roles: dict[str, str]) -> None:
    """Record the role of each parameter of a layer kind (`{"weight": "scale γ"}`)."""
    for name, role in roles.items():
        ROLES[f"{kind}.{name}"] = role


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


def _checking(call: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a layer's `__call__` so that it checks its params before it runs."""

    @functools.wraps(call)
    def checked_call(self: Module, *args: Any, **kwargs: Any) -> Any:
        check_params(self, args[0] if args else kwargs.get("params"))
        return call(self, *args, **kwargs)

    checked_call._pyasg_checks = True  # type: ignore[attr-defined]
    return checked_call


class Module:
    """Base of every layer. Subclasses implement `init` and `__call__`."""

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

    def init(self, key: Any) -> dict:
        """Fresh parameters from a random key (`pyasg.random.key(seed)`)."""
        return {}

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
        return {name: child.init_state() for name, child in self.children().items()
                if child.has_state()}

    def has_state(self) -> bool:
        return self.stateful or any(c.has_state() for c in self.children().values())

    def children(self) -> dict[str, Module]:
        """Sub-layers by parameter-name prefix (override in composite layers)."""
        return {}

    def param_kinds(self, params: dict | None = None, prefix: str = "") -> dict[str, str]:
        """Dotted parameter path -> "Kind.name" for this layer and its sub-layers."""
        params = self.init(np.zeros(2, np.uint32)) if params is None else params
        kinds: dict[str, str] = {}
        children = self.children()
        for name, value in params.items():
            path = f"{prefix}.{name}" if prefix else name
            if name in children:
                kinds.update(children[name].param_kinds(value, path))
            elif isinstance(value, dict):
                for sub, _ in _flat(value, path):
                    kinds[sub] = f"{self.kind}.{name}"
            else:
                kinds[path] = f"{self.kind}.{name}"
        return kinds

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
