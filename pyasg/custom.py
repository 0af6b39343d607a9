"""Custom derivatives: `custom_vjp` and `custom_jvp`, JAX's protocols.

A decorated function runs as itself; under a trace each call records ONE node, a
`CustomCall` holding the function's own sub-graph (its values) and the key of its
rules (`pyasg.transforms.custom`). `grad` and every reverse-mode transform call the
rules instead of differentiating the sub-graph: `fwd(*args) -> (out, residuals)` and
`bwd(residuals, g) -> (one cotangent per argument)` for `custom_vjp`; for
`custom_jvp` the transpose of the user's (linear) tangent map. `jvp` and the other
forward-mode transforms call `jvp_fn(primals, tangents) -> (out, tangent_out)`;
forward mode through a `custom_vjp` function raises, as in JAX. The compiler inlines
the sub-graph before lowering, so a custom function runs under `jit` on every
backend with no kernel of its own.

Limits (each raises `CustomDerivativeError`): the function takes arrays (pytrees of
them; pass configuration by closing over Python values), returns one array or a
pytree of float arrays of one dtype (carried as ONE flat node, so that `bwd` sees
every output's cotangent at once), and does not close over traced values of an
enclosing trace (pass them as arguments: their derivatives would otherwise be lost).
A graph holding a call cannot be saved (`UnsavableGraphError`); `inline_custom_calls`
drops the rules on purpose.

>>> import pyasg, numpy as np
>>> @custom_vjp
... def clip_gradient(x):
...     return x
>>> clip_gradient.defvjp(lambda x: (x, None),
...                      lambda _, g: (pyasg.minimum(pyasg.maximum(g, -1.0), 1.0),))
>>> pyasg.grad(lambda x: (3.0 * clip_gradient(x)).sum())(np.ones(2)).tolist()
[1.0, 1.0]
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from pyasg.array import functional as F
from pyasg.array import primitives as P
from pyasg.asg import ops
from pyasg.asg.types import TensorType, is_float
from pyasg.errors import CustomDerivativeError, PyasgError, shown, user_source
from pyasg.trace.tracer import (
    Tracer,
    argument_names,
    is_python_scalar,
    is_traced,
    trace_function,
)
from pyasg.trace.tree import TreeDef, flatten_with_paths
from pyasg.transforms.custom import CUSTOM_RULES, CustomRule, packed_graph, register, unpack


class _CustomFunction:
    """What `custom_vjp` and `custom_jvp` share: the wrapped function, its rules' keys
    (one per argument structure, so the same call hash-conses to the same node), and
    the tracing of a call into a `CustomCall` node."""

    kind = "custom"

    def __init__(self, fn: Callable[..., Any]) -> None:
        if not callable(fn):
            raise CustomDerivativeError(f"{self.kind} decorates a function, got "
                                        f"{shown(fn, with_type=True)}")
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.source = user_source()
        #: (argument structure, output structure, output types) -> its rule's key
        self._keys: dict[tuple, int] = {}

    def _defined(self) -> bool:
        raise NotImplementedError

    def _rule(self, in_tree: TreeDef, names: tuple[str, ...], out_tree: TreeDef,
              out_types: tuple[TensorType, ...]) -> CustomRule:
        raise NotImplementedError

    @property
    def _name(self) -> str:
        return getattr(self.fn, "__qualname__", getattr(self.fn, "__name__", "fn"))

    def __call__(self, *args: object, **kwargs: object) -> Any:
        if not self._defined():
            how = "defvjp(fwd, bwd)" if self.kind == "custom_vjp" else "defjvp(jvp_fn)"
            raise CustomDerivativeError(f"{self.kind} function {shown(self._name)}: call "
                                        f"{self._name}.{how} before calling it")
        if kwargs:
            raise CustomDerivativeError(f"{self.kind} function {shown(self._name)} takes "
                                        f"positional arguments only (got keyword "
                                        f"{', '.join(map(repr, kwargs))}); close over "
                                        f"configuration instead")
        names = tuple(argument_names(self.fn, len(args)))
        pairs, tree = flatten_with_paths(dict(zip(names, args)))
        leaves = [leaf for _, leaf in pairs]
        if not is_traced(leaves):  # concrete arrays: the function itself, as in JAX
            return self.fn(*args)
        return self._record(args, names, pairs)

    def _record(self, args: tuple, names: tuple[str, ...], pairs: list) -> Tracer:
        abstract = []
        for path, leaf in pairs:
            try:
                t = F.type_of(leaf)
            except PyasgError:
                raise CustomDerivativeError(
                    f"{self.kind} function {shown(self._name)}: argument {shown(path)} is "
                    f"{shown(leaf, with_type=True)}, not an array; close over Python "
                    f"values instead of passing them") from None
            abstract.append((path, t, is_python_scalar(leaf)
                             or isinstance(leaf, Tracer) and leaf.weak))
        traced = trace_function(self.fn, list(args), name=self._name, abstract=abstract,
                                names=list(names))
        if traced.captured:
            raise CustomDerivativeError(
                f"{self.kind} function {shown(self._name)} uses a traced value of an "
                f"enclosing function ({traced.captured[0].origin()}) that is not among its "
                f"arguments: its derivative would be lost; pass it as an argument",
                self.source)
        out_types = traced.graph.output_types
        graph = traced.graph
        if traced.out_tree.kind != "leaf":  # several outputs: one flat node (see pack)
            dtypes = {t.dtype for t in out_types}
            if len(dtypes) > 1 or not all(is_float(t.dtype) for t in out_types):
                raise CustomDerivativeError(
                    f"{self.kind} function {shown(self._name)} returns "
                    f"{', '.join(map(repr, out_types)) or 'nothing'}: a custom function "
                    f"returns one array, or a pytree of float arrays of one dtype (they "
                    f"travel as one node)", self.source)
            graph = packed_graph(graph)
        in_tree = flatten_with_paths(tuple(args))[1]
        signature = (in_tree, traced.out_tree, out_types)
        key = self._keys.get(signature)
        if key is None:
            key = self._keys[signature] = register(self._rule(in_tree, names,
                                                              traced.out_tree, out_types))
        node = P.bind(ops.CustomCall(graph, self._name, key), *[leaf for _, leaf in pairs])
        return unpack(CUSTOM_RULES[key], node)


class custom_vjp(_CustomFunction):  # noqa: N801 - JAX's name
    """A function with a user-defined reverse-mode derivative (JAX's `jax.custom_vjp`).

    `f.defvjp(fwd, bwd)`: `fwd(*args)` returns `(f(*args), residuals)` (any pytree of
    arrays), `bwd(residuals, g)` the tuple of cotangents, one per positional argument
    (a pytree like it, or None for zero). Forward mode through it raises.

    >>> import pyasg, numpy as np
    >>> @custom_vjp
    ... def square(x):
    ...     return x * x
    >>> square.defvjp(lambda x: (x * x, x), lambda x, g: (2.0 * x * g,))
    >>> float(pyasg.grad(square)(np.float64(3.0)))
    6.0
    """

    kind = "custom_vjp"

    def __init__(self, fn: Callable[..., Any]) -> None:
        super().__init__(fn)
        self.fwd: Callable | None = None
        self.bwd: Callable | None = None

    def defvjp(self, fwd: Callable[..., Any], bwd: Callable[..., Any]) -> None:
        if not (callable(fwd) and callable(bwd)):
            raise CustomDerivativeError(f"{self._name}.defvjp(fwd, bwd) needs two functions, "
                                        f"got {shown(fwd, with_type=True)} and "
                                        f"{shown(bwd, with_type=True)}")
        if self._keys:
            raise CustomDerivativeError(f"{self._name}.defvjp: the rules are already in use "
                                        f"by traced calls; define them once, before calling")
        self.fwd, self.bwd = fwd, bwd

    def _defined(self) -> bool:
        return self.bwd is not None

    def _rule(self, in_tree: TreeDef, names: tuple[str, ...], out_tree: TreeDef,
              out_types: tuple[TensorType, ...]) -> CustomRule:
        return CustomRule(self._name, self.source, in_tree, names, out_tree, out_types,
                          fwd=self.fwd, bwd=self.bwd)


class custom_jvp(_CustomFunction):  # noqa: N801 - JAX's name
    """A function with a user-defined forward-mode derivative (JAX's `jax.custom_jvp`).

    `f.defjvp(jvp_fn)`: `jvp_fn(primals, tangents)` (tuples of the positional
    arguments) returns `(f(*primals), tangent_out)`; `tangent_out` must be linear in
    the tangents, since reverse mode (`grad`) uses its transpose.

    >>> import pyasg, numpy as np
    >>> @custom_jvp
    ... def log1pexp(x):
    ...     return pyasg.log1p(pyasg.exp(x))
    >>> _ = log1pexp.defjvp(lambda p, t: (log1pexp(*p), t[0] * pyasg.sigmoid(p[0])))
    >>> float(pyasg.grad(log1pexp)(np.float64(1000.0)))  # autodiff would give nan
    1.0
    """

    kind = "custom_jvp"

    def __init__(self, fn: Callable[..., Any]) -> None:
        super().__init__(fn)
        self.jvp: Callable | None = None

    def defjvp(self, jvp_fn: Callable[..., Any]) -> Callable[..., Any]:
        if not callable(jvp_fn):
            raise CustomDerivativeError(f"{self._name}.defjvp(jvp_fn) needs a function, got "
                                        f"{shown(jvp_fn, with_type=True)}")
        if self._keys:
            raise CustomDerivativeError(f"{self._name}.defjvp: the rule is already in use "
                                        f"by traced calls; define it once, before calling")
        self.jvp = jvp_fn
        return jvp_fn  # as JAX's: usable as a decorator, `@f.defjvp`

    def _defined(self) -> bool:
        return self.jvp is not None

    def _rule(self, in_tree: TreeDef, names: tuple[str, ...], out_tree: TreeDef,
              out_types: tuple[TensorType, ...]) -> CustomRule:
        return CustomRule(self._name, self.source, in_tree, names, out_tree, out_types,
                          jvp=self.jvp)
