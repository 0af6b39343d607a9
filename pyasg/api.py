"""The function forms users call: `grad`, `value_and_grad`, `jvp`, `linearize`, `jacrev`
(alias `jacobian`), `jacfwd`, `hessian`, `vmap`, `jit`, `trace` and `make_graph`.

Each traces the user's function into a graph and hands it to a graph-to-graph
transform (`pyasg.transforms.vjp`, `pyasg.transforms.jvp`, `pyasg.transforms.batching`)
or to the compiler (`pyasg.compile`). `grad(f)` traces `f` into its own graph,
differentiates that graph and inlines the result into the caller's trace, which is why
`grad(grad(f))` just works; called with concrete arrays, a transformed function is
traced, compiled and cached like a `jit` function.

>>> import pyasg, numpy as np
>>> float(pyasg.grad(lambda x: x ** 3)(np.float64(2.0)))
12.0
"""

from __future__ import annotations

import numbers
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pyasg import events
from pyasg.array import functional as F
from pyasg.asg.graph import Graph
from pyasg.asg.types import TensorType, is_float
from pyasg.compile.cache import Jitted, check_jit_arguments
from pyasg.compile.protocol import Backend
from pyasg.errors import (
    GradError,
    IntegerTangentError,
    PyasgError,
    TangentError,
    TraceError,
    VmapError,
    shown,
)
from pyasg.trace.arguments import Arity, function_arity, static_positions
from pyasg.trace.tracer import (
    Tracer,
    argument_names,
    current_trace,
    inline,
    is_python_scalar,
    is_traced,
    leaf_signature,
    trace_function,
)
from pyasg.trace.tree import (
    TreeError,
    broadcast_prefix,
    flatten,
    flatten_with_paths,
    tree_map,
    unflatten,
)
from pyasg.transforms.batching import batch_graph
from pyasg.transforms.jvp import jvp_graph
from pyasg.transforms.vjp import vjp_graph


def _checked(fn: object, argnums: object, has_aux: object, what: str) -> Arity:
    """The checks of a differentiating transform's own arguments, made where they are
    given: `fn`'s `Arity`; `argnums` an int or a non-empty sequence of ints within it."""
    arity = function_arity(fn, what)
    given = (argnums,) if isinstance(argnums, numbers.Integral) else argnums
    if isinstance(argnums, bool) or not isinstance(given, (list, tuple, range)) or not given \
            or not all(isinstance(a, numbers.Integral) and not isinstance(a, bool)
                       for a in given):
        raise GradError(f"{what}: argnums must be an int or a non-empty sequence of ints, "
                        f"got {type(argnums).__name__} {shown(argnums, 60)}")
    if arity.most is not None:
        for a in given:
            if not -arity.most <= a < arity.most:
                raise GradError(f"{what}: argnums {a} is out of range for a function of "
                                f"{arity.describe()}")
    if not isinstance(has_aux, (bool, np.bool_)):
        raise GradError(f"{what}: has_aux must be True or False, got "
                        f"{type(has_aux).__name__} {shown(has_aux, 60)}")
    return arity


def _argnums(argnums: int | Sequence[int], n: int) -> tuple[int, ...]:
    nums = (argnums,) if isinstance(argnums, numbers.Integral) else tuple(argnums)
    for a in nums:
        if not -n <= a < n:
            raise GradError(f"argnums {a} is out of range for {n} positional argument(s)")
    return tuple(int(a) % n for a in nums)


def _trace_scalar_fn(fn, args, argnums, has_aux, what):  # noqa: ANN001, ANN202
    """Trace fn as a function of the leaves at `argnums`; the rest stay as they are."""
    names = argument_names(fn, len(args))
    diff = {names[i]: args[i] for i in argnums}
    pairs, diff_tree = flatten_with_paths(diff)
    abstract = []
    for path, leaf in pairs:
        t = F.type_of(leaf)
        if not is_float(t.dtype):
            raise GradError(f"{what}: argument '{path}' has type {t!r}; differentiate only "
                            f"with respect to float arrays (pass integer data as another "
                            f"argument, outside argnums)")
        abstract.append((path, t, isinstance(leaf, Tracer) and leaf.weak
                         or is_python_scalar(leaf)))

    def call(*leaves: object) -> object:
        rebuilt = unflatten(diff_tree, list(leaves))
        full = list(args)
        for i in argnums:
            full[i] = rebuilt[names[i]]
        result = fn(*full)
        if has_aux:
            if not (isinstance(result, tuple) and len(result) == 2):
                raise GradError(f"{what} with has_aux=True needs fn to return (value, aux)")
        return result

    traced = trace_function(call, [leaf for _, leaf in pairs],
                            name=getattr(fn, "__name__", "fn"), abstract=abstract,
                            names=[p for p, _ in pairs])
    out_kinds = traced.out_tree.children[0] if has_aux else traced.out_tree
    if out_kinds.kind != "leaf":
        raise GradError(f"{what} needs fn to return one scalar array"
                        f"{' (and aux)' if has_aux else ''}, got structure {out_kinds!r}")
    return traced, pairs, diff_tree


def value_and_grad(fn: Callable[..., Any], argnums: int | Sequence[int] = 0,
                   has_aux: bool = False) -> Callable[..., Any]:
    """A function returning (fn(*args), gradient of fn with respect to args[argnums]).

    With `has_aux`, fn returns (value, aux) and the result is ((value, aux), grads).
    Gradients have the structure of the differentiated arguments (pytrees welcome).

    >>> import numpy as np
    >>> v, g = value_and_grad(lambda w, x: ((w * x) ** 2).sum())(np.ones(2), np.arange(2.0))
    >>> float(v), g.tolist()
    (1.0, [0.0, 2.0])
    """

    arity = _checked(fn, argnums, has_aux, "value_and_grad")

    def value_and_grad_fn(*args: object) -> Any:
        arity.check(getattr(fn, "__name__", "fn"), args)
        if not is_traced(args):
            return _top_level(value_and_grad_fn)(*args)
        nums = _argnums(argnums, len(args))
        traced, pairs, diff_tree = _trace_scalar_fn(fn, args, nums, has_aux, "grad")
        name = getattr(fn, "__name__", "fn")
        mapped = events.has_subscribers(events.GradientInlined)  # where nodes went
        cotangent_ids: dict[int, int] = {}
        graph = vjp_graph(traced.graph, range(len(pairs)), of=0,
                          cotangent_ids=cotangent_ids if mapped else None)
        if events.has_subscribers(events.GraphReady):  # the viewer shows both graphs
            events.publish(events.GraphReady(name, traced.graph, "forward"))
            events.publish(events.GraphReady(name, graph, "gradient"))
        env: dict[int, int] = {}
        outs = inline(graph, [leaf for _, leaf in pairs] + list(traced.captured), env)
        if mapped:
            events.publish(events.GradientInlined(name, current_trace().serial, traced.graph,
                                                  cotangent_ids, env))
        n_out = len(traced.graph.outputs)
        values, grads = outs[:n_out], outs[n_out:]
        result = unflatten(traced.out_tree, values)
        tree = unflatten(diff_tree, grads)
        names = list(tree)
        g = tree[names[0]] if isinstance(argnums, int) else tuple(tree[n] for n in names)
        return result, g

    value_and_grad_fn.__name__ = f"value_and_grad_{getattr(fn, '__name__', 'fn')}"
    return value_and_grad_fn


def grad(fn: Callable[..., Any], argnums: int | Sequence[int] = 0,
         has_aux: bool = False) -> Callable[..., Any]:
    """The gradient of a scalar function with respect to args[argnums].

    >>> import numpy as np
    >>> float(grad(grad(lambda x: x ** 3))(np.float64(2.0)))  # second derivative: 6x
    12.0
    """
    _checked(fn, argnums, has_aux, "grad")
    vg = value_and_grad(fn, argnums, has_aux)

    def grad_fn(*args: object) -> Any:
        if not is_traced(args):
            return _top_level(grad_fn)(*args)
        (value, g) = vg(*args)
        return (g, value[1]) if has_aux else g

    grad_fn.__name__ = f"grad_{getattr(fn, '__name__', 'fn')}"
    return grad_fn


def jacrev(fn: Callable[..., Any], argnums: int = 0) -> Callable[..., Any]:
    """The Jacobian of an array function of one array argument (reverse mode, one row
    per output element): shape = out.shape + x.shape. `jacobian` is the same function.

    >>> import numpy as np
    >>> jacrev(lambda x: x * x)(np.array([1.0, 2.0])).tolist()
    [[2.0, 0.0], [0.0, 4.0]]
    """

    arity = _checked(fn, argnums, False, "jacobian")

    def jacobian_fn(*args: object) -> Any:
        arity.check(getattr(fn, "__name__", "fn"), args)
        if not is_traced(args):
            return _top_level(jacobian_fn)(*args)
        nums = _argnums(argnums, len(args))
        traced, pairs, _ = _trace_scalar_fn(fn, args, nums, False, "jacobian")
        if len(pairs) != 1:
            raise GradError("jacobian differentiates with respect to one array argument")
        graph = traced.graph
        out_type = graph.output_types[0]
        x_type = graph.input_types[0]
        if not is_float(out_type.dtype):
            raise GradError(f"jacobian needs a float output, got {out_type!r}")
        vjp = vjp_graph(graph, [0], of=0, seed=True)
        rows = []
        eye = np.eye(max(out_type.size, 1), dtype=out_type.dtype)
        for k in range(out_type.size):
            seed = eye[k].reshape(out_type.shape)
            outs = inline(vjp, [pairs[0][1]] + list(traced.captured) + [seed])
            rows.append(outs[-1])
        if not rows:
            return F.full(out_type.shape + x_type.shape, 0.0, out_type.dtype)
        return F.reshape(F.stack(rows), out_type.shape + x_type.shape)

    jacobian_fn.__name__ = f"jacobian_{getattr(fn, '__name__', 'fn')}"
    return jacobian_fn


#: The reverse-mode Jacobian under its older name.
jacobian = jacrev


def hessian(fn: Callable[..., Any], argnums: int = 0) -> Callable[..., Any]:
    """The Hessian of a scalar function of one array argument, forward over reverse
    (`jacfwd(jacrev(fn))`, as JAX computes it): shape = x.shape + x.shape.

    >>> import numpy as np
    >>> hessian(lambda x: (x ** 3).sum())(np.array([1.0, 2.0])).tolist()
    [[6.0, 0.0], [0.0, 12.0]]
    """
    _checked(fn, argnums, False, "hessian")
    return jacfwd(jacrev(fn, argnums), argnums)


# --------------------------------------------------------------------------- forward mode


def _tangent_for(path: str, primal: object, tangent: object) -> object:
    """`tangent` checked against `primal` (the leaf at argument path `path`): the same
    shape and dtype; a Python number may stand for a float scalar's tangent, and a
    Python float primal takes any float scalar tangent (cast to the primal's dtype)."""
    p = F.type_of(primal)
    try:
        t = F.type_of(tangent)
    except PyasgError:
        raise TangentError(f"jvp: the tangent of {shown(path)} is "
                           f"{shown(tangent, with_type=True)}, not an array") from None
    if not is_float(p.dtype):
        if is_float(t.dtype):
            raise IntegerTangentError(
                f"jvp: {shown(path)} is {p!r}, an integer/bool primal, but its tangent is "
                f"{t!r}. pyasg has no float0: the tangent of an integer or bool primal has "
                f"the primal's own type (e.g. np.zeros_like(x)), and its values are ignored")
    def weak(x: object) -> bool:
        return is_python_scalar(x) or isinstance(x, Tracer) and x.weak

    # a Python number's dtype is a default, not a choice: either side may be one
    if (weak(tangent) or weak(primal)) and t.shape == p.shape and is_float(p.dtype) \
            and is_float(t.dtype):
        return F.astype(tangent, p.dtype)
    if t != p:
        raise TangentError(f"jvp: the tangent of {shown(path)} has type {t!r}, its primal "
                           f"{p!r}; a tangent has its primal's shape and dtype")
    return tangent


def _check_tangent_tree(primals: object, tangents: object, names: Sequence[str]) -> list:
    """The tangent leaves, in the primals' leaf order, after checking their structure."""
    p_pairs, p_tree = flatten_with_paths(dict(zip(names, primals)))
    t_pairs, t_tree = flatten_with_paths(dict(zip(names, tangents)))
    if p_tree != t_tree:
        p_paths, t_paths = [p for p, _ in p_pairs], [p for p, _ in t_pairs]
        diff = next((f"the primal has {shown(a)} where the tangent has {shown(b)}"
                     for a, b in zip(p_paths, t_paths) if a != b), None)
        if diff is None and len(p_paths) != len(t_paths):
            longer = p_paths if len(p_paths) > len(t_paths) else t_paths
            side = "primals" if longer is p_paths else "tangents"
            diff = f"only the {side} have {shown(longer[min(len(p_paths), len(t_paths))])}"
        raise TangentError(f"jvp: the tangents' structure {shown(t_tree)} differs from the "
                           f"primals' {shown(p_tree)}: "
                           f"{diff or 'the containers differ (tuple, list, dict)'}")
    return [_tangent_for(path, p, t) for (path, p), (_, t) in zip(p_pairs, t_pairs)]


def _as_args(value: object, what: str) -> tuple:
    if not isinstance(value, (tuple, list)):
        raise TangentError(f"jvp: {what} must be a tuple or list of the positional "
                           f"arguments, got {shown(value, with_type=True)}")
    return tuple(value)


def _traced_jvp(fn: Callable[..., Any], primals: tuple, tangents: tuple,
                has_aux: bool = False) -> tuple:
    names = argument_names(fn, len(primals))
    t_leaves = _check_tangent_tree(primals, tangents, names)
    pairs, _ = flatten_with_paths(dict(zip(names, primals)))
    abstract = [(path, F.type_of(leaf), is_python_scalar(leaf)
                 or isinstance(leaf, Tracer) and leaf.weak) for path, leaf in pairs]
    traced = trace_function(fn, list(primals), name=getattr(fn, "__name__", "fn"),
                            abstract=abstract, names=names)
    out_tree = traced.out_tree
    if has_aux:
        if out_tree.kind != "tuple" or len(out_tree.children) != 2:
            raise GradError(f"jvp with has_aux=True needs fn to return (output, aux), got "
                            f"structure {out_tree!r}")
        out_tree, aux_tree = out_tree.children
    wrt = [k for k, (_, t, _) in enumerate(abstract) if is_float(t.dtype)]
    graph = jvp_graph(traced.graph, wrt)
    outs = inline(graph, [leaf for _, leaf in pairs] + list(traced.captured)
                  + [t_leaves[k] for k in wrt])
    n_all, n = len(traced.graph.outputs), out_tree.num_leaves
    result = (unflatten(out_tree, outs[:n]), unflatten(out_tree, outs[n_all:n_all + n]))
    return result + (unflatten(aux_tree, outs[n:n_all]),) if has_aux else result


#: (fn, has_aux) -> its jitted jvp, so that a repeated top-level `jvp(fn, ...)` compiles
#: once (weakly: a function that is gone takes its compiled jvp with it)
_JVP_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def jvp(fn: Callable[..., Any], primals: Sequence[object], tangents: Sequence[object],
        has_aux: bool = False) -> tuple[Any, ...]:
    """`(fn(*primals), J·tangents)`: forward mode, one pass (JAX's `jax.jvp`).

    `primals` and `tangents` are tuples (or lists) of the positional arguments, pytrees
    of the same structure, each tangent of its primal's shape and dtype (an integer or
    bool primal's tangent has the primal's own type, its values ignored: pyasg has no
    float0); outputs' tangents have the outputs' structure and types (zeros for an
    integer output). Raises `TangentError` naming the argument path on a mismatch.
    With `has_aux`, fn returns (output, aux) and jvp returns (output, tangent, aux).

    >>> import numpy as np
    >>> y, t = jvp(lambda x: x ** 3, (np.float64(2.0),), (np.float64(1.0),))
    >>> float(y), float(t)
    (8.0, 12.0)
    """
    arity = function_arity(fn, "jvp")
    if not isinstance(has_aux, (bool, np.bool_)):
        raise GradError(f"jvp: has_aux must be True or False, got {shown(has_aux, with_type=True)}")
    primals = _as_args(primals, "primals")
    tangents = _as_args(tangents, "tangents")
    arity.check(getattr(fn, "__name__", "fn"), primals)
    if is_traced([primals, tangents]):
        return _traced_jvp(fn, primals, tangents, bool(has_aux))
    # checked here too, so that an error names the user's paths, not those of the jit below
    _check_tangent_tree(primals, tangents, argument_names(fn, len(primals)))
    try:
        per_fn = _JVP_CACHE.setdefault(fn, {})
    except TypeError:  # not weakly referable: compiled again per call (see the README)
        per_fn = {}
    jitted = per_fn.get(bool(has_aux))
    if jitted is None:
        jitted = per_fn[bool(has_aux)] = jit(
            lambda p, t: _traced_jvp(fn, tuple(p), tuple(t), bool(has_aux)),
            name=f"jvp_{getattr(fn, '__name__', 'fn')}")
    return jitted(primals, tangents)


def linearize(fn: Callable[..., Any], *primals: object) -> tuple[Any, Callable[..., Any]]:
    """`(fn(*primals), f_jvp)` with `f_jvp(*tangents)` the tangents' image under fn's
    Jacobian at `primals` (JAX's `jax.linearize`). `f_jvp` runs the compiled `jvp`
    (the primal pass is recomputed with it: pyasg does no partial evaluation).

    >>> import numpy as np
    >>> y, f_jvp = linearize(lambda x: x * x, np.array([1.0, 3.0]))
    >>> y.tolist(), f_jvp(np.array([1.0, 1.0])).tolist()
    ([1.0, 9.0], [2.0, 6.0])
    """
    function_arity(fn, "linearize")
    zeros = tree_map(F.zeros_like, list(primals))
    out, _ = jvp(fn, primals, zeros)

    def f_jvp(*tangents: object) -> Any:
        return jvp(fn, primals, tangents)[1]

    f_jvp.__name__ = f"linearized_{getattr(fn, '__name__', 'fn')}"
    return out, f_jvp


def jacfwd(fn: Callable[..., Any], argnums: int = 0) -> Callable[..., Any]:
    """The Jacobian of an array function of one array argument in forward mode (one
    tangent pass per input element): shape = out.shape + x.shape, as `jacrev`'s.

    >>> import numpy as np
    >>> jacfwd(lambda x: x * x)(np.array([1.0, 2.0])).tolist()
    [[2.0, 0.0], [0.0, 4.0]]
    """
    arity = _checked(fn, argnums, False, "jacfwd")

    def jacfwd_fn(*args: object) -> Any:
        arity.check(getattr(fn, "__name__", "fn"), args)
        if not is_traced(args):
            return _top_level(jacfwd_fn)(*args)
        nums = _argnums(argnums, len(args))
        traced, pairs, _ = _trace_scalar_fn(fn, args, nums, False, "jacfwd")
        if len(pairs) != 1:
            raise GradError("jacfwd differentiates with respect to one array argument")
        out_type, x_type = traced.graph.output_types[0], traced.graph.input_types[0]
        if not is_float(out_type.dtype):
            raise GradError(f"jacfwd needs a float output, got {out_type!r}")
        forward = jvp_graph(traced.graph, [0])
        eye = np.eye(max(x_type.size, 1), dtype=x_type.dtype)
        columns = [inline(forward, [pairs[0][1], *traced.captured,
                                    eye[k].reshape(x_type.shape)])[-1]
                   for k in range(x_type.size)]
        if not columns or out_type.size == 0:
            return F.full(out_type.shape + x_type.shape, 0.0, out_type.dtype)
        return F.reshape(F.stack(columns, axis=-1), out_type.shape + x_type.shape)

    jacfwd_fn.__name__ = f"jacfwd_{getattr(fn, '__name__', 'fn')}"
    return jacfwd_fn


def _axes_spec(axes: object, what: str) -> object:
    """`in_axes`/`out_axes` checked where vmap is given them: a pytree whose leaves are
    ints or None (a top-level list is a tuple, as in JAX)."""
    if isinstance(axes, list):
        axes = tuple(axes)
    try:
        leaves = flatten(axes)[0]
    except TreeError as e:
        raise VmapError(f"vmap: {what}: {e.message}") from None
    for leaf in leaves:
        if isinstance(leaf, bool) or not isinstance(leaf, numbers.Integral):
            raise VmapError(f"vmap: {what} must be an int, None, or a pytree (tuple, list, "
                            f"dict...) of them; it holds {shown(leaf, 60, with_type=True)}")
    return axes


def _mapped_leaf(path: str, leaf: object, axis: int) -> tuple[TensorType, int, int]:
    """(type of one example, the normalised axis, the batch size) of a mapped leaf."""
    if isinstance(leaf, Tracer):
        t, weak = leaf.type, leaf.weak
    else:
        shape, dtype, weak = leaf_signature(path, leaf)
        t = TensorType(shape, dtype)
    if weak or t.ndim == 0:
        what = "a Python number" if weak else "a 0-d array"
        raise VmapError(f"vmap: argument {shown(path)} is {what} {t!r}, which has no axis "
                        f"{axis} to map over; give it in_axes None")
    if not -t.ndim <= axis < t.ndim:
        raise VmapError(f"vmap: in_axes {axis} is out of range for argument {shown(path)} of "
                        f"shape {list(t.shape)} ({t.ndim} axes: -{t.ndim} to {t.ndim - 1})")
    axis %= t.ndim
    return TensorType(t.shape[:axis] + t.shape[axis + 1:], t.dtype), axis, t.shape[axis]


def _batch_size(sizes: dict[str, tuple[int, int, tuple[int, ...]]]) -> int:
    if not sizes:
        raise VmapError("vmap needs at least one argument mapped: in_axes is None for every "
                        "array (map one, or call the function directly)")
    found = {size for size, _, _ in sizes.values()}
    if len(found) > 1:
        listed = "; ".join(f"{shown(p)} of shape {list(s)} at axis {a} has {n}"
                           for p, (n, a, s) in list(sizes.items())[:8])
        raise VmapError(f"vmap: the mapped axes have different sizes ({listed}); every "
                        f"mapped axis must have the batch size")
    return found.pop()


def _move_output(value: object, path: str, have: int | None, want: int | None,
                 size: int) -> object:
    """One output of the batched graph with its batch axis at `want` (None: unbatched)."""
    if want is None:
        if have is not None:
            raise VmapError(f"vmap: output {shown(path or 'result')} depends on the mapped "
                            f"arguments, so out_axes None cannot hold it (None is for "
                            f"outputs that are the same for every example); give an axis")
        return value
    t = F.type_of(value)
    ndim = t.ndim + (have is None)
    if not -ndim <= want < ndim:
        raise VmapError(f"vmap: out_axes {want} is out of range for output "
                        f"{shown(path or 'result')}, which has {ndim} axes with the batch "
                        f"axis")
    want %= ndim
    if have is None:  # the same for every example: repeated along the new axis, as JAX
        shape = t.shape[:want] + (size,) + t.shape[want:]
        return F.broadcast_to(F.expand_dims(value, want), shape)
    return F.moveaxis(value, have, want) if have != want else value


def vmap(fn: Callable[..., Any], in_axes: Any = 0, out_axes: Any = 0) -> Callable[..., Any]:
    """`fn` mapped over an axis of its arguments: written for one example, run on a batch.

    `in_axes` says for each positional argument which axis is the batch (negative
    counts from the end) or None (shared by every example): an int or None for all,
    or a tuple with one entry per argument, each a pytree prefix of the argument (a
    dict of axes for a dict argument...). `out_axes` places the batch axis in each
    output the same way. `fn` is traced for one example, its graph batched by
    `pyasg.transforms.batching.batch_graph` (one rule per op) and inlined, so vmap
    composes with `grad`, `jit` and itself: per-example gradients are
    `vmap(grad(loss), in_axes=(None, 0, 0))(params, xs, ys)`. Called with concrete
    arrays it is compiled and cached per input signature, as a `jit` function.
    Not (yet) JAX's: keyword arguments to the mapped function, `axis_size` (one
    argument at least must be mapped) and `axis_name` (there are no collective ops).
    Bad axes raise `VmapError` at the caller's line.

    >>> import numpy as np
    >>> vmap(lambda x, w: x @ w, in_axes=(0, None))(np.ones((4, 3)), np.ones((3, 2))).shape
    (4, 2)
    >>> vmap(lambda x: x.sum(), in_axes=1)(np.arange(6.0).reshape(2, 3)).tolist()
    [3.0, 5.0, 7.0]
    """
    arity = function_arity(fn, "vmap")
    in_spec = _axes_spec(in_axes, "in_axes")
    out_spec = _axes_spec(out_axes, "out_axes")
    name = getattr(fn, "__name__", "fn")

    def vmap_fn(*args: object) -> Any:
        arity.check(name, args)
        if not is_traced(args):
            return _top_level(vmap_fn)(*args)
        if isinstance(in_spec, tuple):
            if len(in_spec) != len(args):
                raise VmapError(f"vmap: in_axes has {len(in_spec)} entries, but {name} was "
                                f"called with {len(args)} positional argument(s); give one "
                                f"entry per argument (or one int/None for all)")
            per_arg = in_spec
        elif isinstance(in_spec, numbers.Integral) or in_spec is None:
            per_arg = (in_spec,) * len(args)
        else:
            raise VmapError(f"vmap: in_axes must be an int, None or a tuple with one entry per "
                            f"argument, got {shown(in_spec, 60, with_type=True)}")
        names = argument_names(fn, len(args))
        tree = dict(zip(names, args))
        try:
            leaf_axes = broadcast_prefix(dict(zip(names, per_arg)), tree, "in_axes",
                                         "the arguments")
        except TreeError as e:
            raise VmapError(f"vmap: {e.message}") from None
        pairs = flatten_with_paths(tree)[0]
        abstract, axes, sizes = [], [], {}
        for (path, leaf), axis in zip(pairs, leaf_axes):
            if axis is None:
                t = leaf.type if isinstance(leaf, Tracer) else TensorType(
                    *leaf_signature(path, leaf)[:2])
                weak = leaf.weak if isinstance(leaf, Tracer) else is_python_scalar(leaf)
                abstract.append((path, t, weak))
                axes.append(None)
                continue
            t, axis, size = _mapped_leaf(path, leaf, int(axis))
            sizes[path] = (size, axis, F.type_of(leaf).shape)
            abstract.append((path, t, False))
            axes.append(axis)
        size = _batch_size(sizes)
        traced = trace_function(fn, args, name, abstract=abstract)
        batched, have = batch_graph(traced.graph, axes + [None] * len(traced.captured), size)
        outs = inline(batched, [leaf for _, leaf in pairs] + list(traced.captured))
        out_paths = [p for p, _ in flatten_with_paths(unflatten(traced.out_tree, outs))[0]]
        try:
            wants = broadcast_prefix(out_spec, unflatten(traced.out_tree, outs), "out_axes",
                                     f"the result of {name}")
        except TreeError as e:
            raise VmapError(f"vmap: {e.message}") from None
        moved = [_move_output(v, p, h, w, size)
                 for v, p, h, w in zip(outs, out_paths, have, wants)]
        return unflatten(traced.out_tree, moved)

    vmap_fn.__name__ = f"vmap_{name}"
    return vmap_fn


def _top_level(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A transformed function called with concrete arrays: trace, compile, cache, run."""
    jitted = getattr(fn, "_pyasg_jitted", None)
    if jitted is None:
        jitted = jit(fn)
        fn._pyasg_jitted = jitted  # type: ignore[attr-defined]
    return jitted


def jit(fn: Callable[..., Any] | None = None, *, backend: str | Backend | None = None,
        static_argnums: Sequence[int] | int = (), name: str | None = None,
        fuse: bool = True, donate_argnums: Sequence[int] | int = ()) -> Any:
    """Trace `fn` once per input signature, simplify, compile for `backend`, and run.

    Usable as `@jit`, `@jit(backend="numpy")` or `jit(fn, static_argnums=1)`.
    Inside another traced function it is inlined (the whole step stays one graph).
    `fuse=False` compiles without `pyasg.transforms.fuse` (to compare, or to debug).

    `donate_argnums`: arguments whose arrays a call gives away (as in JAX), so that
    results of the same shape and dtype reuse their memory: a training step that
    donates its parameters and optimiser state updates them in place and copies
    nothing. On wgpu a donated DeviceArray raises if it is used again (use what the
    step returned); on numpy the results ARE the donated arrays, overwritten (an
    array that is not writeable, not contiguous, or passed twice is not reused).

    >>> import numpy as np
    >>> @jit
    ... def f(x, n):
    ...     return x * n
    >>> f(np.ones(2, np.float32), 3).tolist()
    [3.0, 3.0]
    """
    if fn is None:  # the decorator form: check the options here, the function when given
        check_jit_arguments(None, backend, static_argnums, name, fuse)
        return lambda f: Jitted(f, backend, static_argnums, name, fuse, donate_argnums)
    return Jitted(fn, backend, static_argnums, name, fuse, donate_argnums)


def trace(fn: Callable[..., Any] | None = None, *, static_argnums: Sequence[int] | int = (),
          name: str | None = None, donate_argnums: Sequence[int] | int = ()) -> Any:
    """`@pyasg.trace`: `jit` with the default backend (see `set_default_backend`)."""
    return jit(fn, backend=None, static_argnums=static_argnums, name=name,
               donate_argnums=donate_argnums)


def make_graph(fn: Callable[..., Any], static_argnums: Sequence[int] | int = ()) -> Callable:
    """`make_graph(f)(*example_args)` returns f's `Graph` without running it.

    >>> import pyasg, numpy as np
    >>> print(pyasg.make_graph(lambda x: x + 1.0)(np.ones(2, np.float32)))
    graph(%0: f32[2] x) {
      %1: f32[] = const 1.0  # <doctest ...>:1
      %2: f32[2] = add %0 %1  # <doctest ...>:1
      return %2
    }
    """
    arity = function_arity(fn, "make_graph")
    nums = static_positions(static_argnums, "make_graph", arity)

    def build(*args: object) -> Graph:
        arity.check(getattr(fn, "__name__", "fn"), args)
        n = len(args)
        static = {i % n: args[i % n] for i in nums if -n <= i < n}
        for _, leaf in flatten_with_paths(list(args))[0]:
            if isinstance(leaf, Tracer):
                raise TraceError("make_graph needs example arrays, not traced values")
        return trace_function(fn, args, static=static).graph

    return build
