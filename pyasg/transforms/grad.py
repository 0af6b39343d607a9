"""Reverse-mode differentiation as a graph-to-graph transform, and the function forms.

`vjp_graph(graph, wrt)` returns a new graph whose extra outputs are the gradients:
the gradient is itself an ASG, so it can be simplified, shown, and differentiated
again. `grad(f)` traces `f` into its own graph, differentiates that graph and inlines
the result into the caller's trace, which is why `grad(grad(f))` just works.

>>> import pyasg, numpy as np
>>> float(pyasg.grad(lambda x: x ** 3)(np.float64(2.0)))
12.0
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pyasg import events
from pyasg import functional as F
from pyasg.asg.graph import Graph, prune
from pyasg.asg.ops import Constant, Input
from pyasg.asg.types import is_float
from pyasg.errors import GradError
from pyasg.trace.tracer import (
    Trace,
    Tracer,
    argument_names,
    current_trace,
    inline,
    is_python_scalar,
    trace_function,
    user_source,
)
from pyasg.trace.tree import flatten_with_paths, unflatten
from pyasg.transforms.vjp import VJP_RULES
from pyasg.watch import WatchMap


def _needed(graph: Graph, wrt: set[int], of: int) -> set[int]:
    """Float nodes on some path from a `wrt` input to node `of`."""
    forward = set(wrt)
    for i in graph.ids:
        node = graph.nodes[i]
        if i not in forward and is_float(node.type.dtype) and any(j in forward
                                                                  for j in node.inputs):
            forward.add(i)
    needed, stack = set(), [of] if of in forward else []
    while stack:
        i = stack.pop()
        if i in needed:
            continue
        needed.add(i)
        stack.extend(j for j in graph.nodes[i].inputs if j in forward)
    return needed


def vjp_graph(graph: Graph, wrt: Sequence[int], of: int = 0, seed: bool = False,
              cotangent_ids: dict[int, int] | None = None) -> Graph:
    """Append to `graph` the gradients of output `of` with respect to inputs `wrt`.

    `wrt` are positions in `graph.inputs`. Without `seed` the output must be a float
    scalar (its cotangent is 1); with `seed` a new last input named `cotangent` of
    the output's type carries it (a vector-Jacobian product). The new graph's
    outputs are the old ones followed by one gradient per `wrt` entry. Node ids of
    `graph` keep their meaning in the result; `cotangent_ids`, when given, receives
    for each node of `graph` on a differentiated path the id of the node holding its
    total cotangent (the gradient of the output with respect to that node).
    """
    out_id = graph.outputs[of]
    out_type = graph.nodes[out_id].type
    wrt_ids = [graph.inputs[k] for k in wrt]
    for k, i in zip(wrt, wrt_ids):
        t = graph.nodes[i].type
        if not is_float(t.dtype):
            raise GradError(f"cannot differentiate with respect to input '{graph.input_names[k]}'"
                            f" of type {t!r}: gradients need float inputs")
    if not is_float(out_type.dtype) or (not seed and out_type.shape != ()):
        raise GradError(f"grad needs a float scalar output, got {out_type!r}; reduce it "
                        f"first (.sum(), .mean()) or use pyasg.jacobian",
                        graph.nodes[out_id].source)
    needed = _needed(graph, set(wrt_ids), out_id)
    trace = Trace("grad", base=graph)
    with trace:
        if seed:
            cotangents: dict[int, Tracer] = {out_id: trace.new_input("cotangent", out_type)}
        else:
            cotangents = {out_id: trace.constant(np.ones((), out_type.dtype))}
        for i in reversed(graph.ids):
            if i not in cotangents or i not in needed:
                continue
            node = graph.nodes[i]
            if isinstance(node.op, (Input, Constant)):
                continue
            rule = VJP_RULES.get(type(node.op))
            if rule is None:
                raise GradError(f"op '{node.op.name}' has no gradient rule (it is not "
                                f"differentiable), but the output depends on it through a "
                                f"float path; wrap its input in pyasg.stop_gradient if that is "
                                f"intended", node.source)
            trace.source_override = node.source
            inputs = [trace.tracer(j) for j in node.inputs]
            in_cts = rule(node.op, cotangents[i], trace.tracer(i), *inputs)
            for j, ct in zip(node.inputs, in_cts):
                if ct is None or j not in needed:
                    continue
                ct = trace.lift(ct)
                if ct.type != graph.nodes[j].type:
                    raise GradError(f"internal: the VJP of {node.op.name} gave {ct.type!r} for "
                                    f"an input of type {graph.nodes[j].type!r}", node.source)
                cotangents[j] = F.add(cotangents[j], ct) if j in cotangents else ct
        trace.source_override = None
        grads = [cotangents[i] if i in cotangents else F.zeros_like(trace.tracer(i))
                 for i in wrt_ids]
        outputs = list(graph.outputs) + [trace.lift(g).node for g in grads]
    result = prune(trace.builder.build(outputs))
    if cotangent_ids is not None:
        cotangent_ids.update({i: c for i, ct in cotangents.items()
                              if (c := ct.node) in result.nodes})
    return result


# --------------------------------------------------------------------------- function forms


def _argnums(argnums: int | Sequence[int], n: int) -> tuple[int, ...]:
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    for a in nums:
        if not -n <= a < n:
            raise GradError(f"argnums {a} is out of range for {n} positional argument(s)")
    return tuple(a % n for a in nums)


def _is_traced(args: Sequence[object]) -> bool:
    if current_trace() is not None:
        return True
    leaves, _ = flatten_with_paths(list(args))
    return any(isinstance(leaf, Tracer) for _, leaf in leaves)


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
                            f"argument, outside argnums)", user_source())
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

    def value_and_grad_fn(*args: object) -> Any:
        if not _is_traced(args):
            return _top_level(value_and_grad_fn)(*args)
        nums = _argnums(argnums, len(args))
        traced, pairs, diff_tree = _trace_scalar_fn(fn, args, nums, has_aux, "grad")
        shown = events.has_subscribers(events.GraphReady)  # the viewer shows both graphs
        cotangent_ids: dict[int, int] = {}
        graph = vjp_graph(traced.graph, range(len(pairs)), of=0,
                          cotangent_ids=cotangent_ids if shown else None)
        if shown:
            name = getattr(fn, "__name__", "fn")
            events.publish(events.GraphReady(name, traced.graph, "forward"))
            events.publish(events.GraphReady(name, graph, "gradient"))
        env: dict[int, int] = {}
        outs = inline(graph, [leaf for _, leaf in pairs] + list(traced.captured), env)
        if shown:
            _record_watch_maps(name, traced.graph, cotangent_ids, env)
        n_out = len(traced.graph.outputs)
        values, grads = outs[:n_out], outs[n_out:]
        result = unflatten(traced.out_tree, values)
        tree = unflatten(diff_tree, grads)
        names = list(tree)
        g = tree[names[0]] if isinstance(argnums, int) else tuple(tree[n] for n in names)
        return result, g

    value_and_grad_fn.__name__ = f"value_and_grad_{getattr(fn, '__name__', 'fn')}"
    return value_and_grad_fn


def _record_watch_maps(name: str, forward: Graph, cotangent_ids: dict[int, int],
                       env: dict[int, int]) -> None:
    """Tell the enclosing trace where the published graphs' nodes went (live values)."""
    trace = current_trace()
    if trace is None:
        return
    trace.watch_maps[(name, "forward")] = WatchMap(
        values={i: env[i] for i in forward.ids if i in env},
        grads={i: env[c] for i, c in cotangent_ids.items() if c in env})
    trace.watch_maps[(name, "gradient")] = WatchMap(values=dict(env))


def grad(fn: Callable[..., Any], argnums: int | Sequence[int] = 0,
         has_aux: bool = False) -> Callable[..., Any]:
    """The gradient of a scalar function with respect to args[argnums].

    >>> import numpy as np
    >>> float(grad(grad(lambda x: x ** 3))(np.float64(2.0)))  # second derivative: 6x
    12.0
    """
    vg = value_and_grad(fn, argnums, has_aux)

    def grad_fn(*args: object) -> Any:
        if not _is_traced(args):
            return _top_level(grad_fn)(*args)
        (value, g) = vg(*args)
        return (g, value[1]) if has_aux else g

    grad_fn.__name__ = f"grad_{getattr(fn, '__name__', 'fn')}"
    return grad_fn


def jacobian(fn: Callable[..., Any], argnums: int = 0) -> Callable[..., Any]:
    """The Jacobian of an array function of one array argument (reverse mode, one row
    per output element): shape = out.shape + x.shape.

    >>> import numpy as np
    >>> jacobian(lambda x: x * x)(np.array([1.0, 2.0])).tolist()
    [[2.0, 0.0], [0.0, 4.0]]
    """

    def jacobian_fn(*args: object) -> Any:
        if not _is_traced(args):
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


def hessian(fn: Callable[..., Any], argnums: int = 0) -> Callable[..., Any]:
    """The Hessian of a scalar function of one array argument: the Jacobian of its
    gradient, shape = x.shape + x.shape.

    >>> import numpy as np
    >>> hessian(lambda x: (x ** 3).sum())(np.array([1.0, 2.0])).tolist()
    [[6.0, 0.0], [0.0, 12.0]]
    """
    return jacobian(grad(fn, argnums), argnums)


def _top_level(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A transformed function called with concrete arrays: trace, compile, cache, run."""
    jitted = getattr(fn, "_pyasg_jitted", None)
    if jitted is None:
        from pyasg.transforms.jit import jit

        jitted = jit(fn)
        fn._pyasg_jitted = jitted  # type: ignore[attr-defined]
    return jitted
