"""Structured control flow, as in `jax.lax`: `scan`, `fori_loop`, `cond`, `while_loop`.

A Python loop unrolls while tracing (50 iterations, 50 copies of the body); these
functions trace their body ONCE into a sub-graph held by one op
(`pyasg.asg.ops.control`), so the graph's size does not grow with the trip count.
Bodies are functions of pytrees; values they close over (traced or concrete) become
the op's extra inputs. Every loop's trip count is static except `while_loop`'s (and
`fori_loop`'s with traced bounds, which becomes a `while_loop`): reverse-mode
gradients flow through `scan`, `fori_loop` with static bounds and `cond`, not through
`while_loop`, whose trip count is only known at run time (JAX has the same rule).

A body must give back what it was given: a carry of another structure, shape or dtype
raises `CarryTypeError`, branches of `cond` that disagree `BranchMismatchError`, both
naming the two types and the path of the leaf.

>>> import pyasg, numpy as np
>>> carry, ys = scan(lambda c, x: (c + x, c * x), np.float32(1), np.arange(3, dtype=np.float32))
>>> float(carry), ys.tolist()
(4.0, [0.0, 1.0, 4.0])
>>> float(fori_loop(0, 5, lambda i, v: v * 2.0, np.float32(1)))
32.0
>>> float(cond(np.bool_(False), lambda a: a + 1.0, lambda a: a - 1.0, np.float32(3)))
2.0
>>> int(while_loop(lambda v: v < 100, lambda v: v * 3, np.int32(1)))
243
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pyrsistent import pvector

from pyasg.array import primitives as P
from pyasg.asg import ops
from pyasg.asg.graph import Graph, GraphBuilder
from pyasg.asg.rewrite import copy_into
from pyasg.asg.types import DEFAULT_FLOAT, DEFAULT_INT, TensorType
from pyasg.errors import BranchMismatchError, CarryTypeError, ControlFlowError, PyasgError, shown
from pyasg.trace.tracer import Tracer, is_python_scalar, trace_function
from pyasg.trace.tree import TreeDef, flatten, flatten_with_paths, unflatten

__all__ = ["cond", "fori_loop", "scan", "scan_op", "trace_body", "while_loop"]


def as_leaf(x: object, what: str) -> Tracer | np.ndarray:
    """A pytree leaf as an array: a tracer as it is, a Python number in pyasg's default
    dtype, anything array-like through numpy; `ControlFlowError` for anything else."""
    if isinstance(x, Tracer):
        return x
    try:
        if is_python_scalar(x):
            dtype = "bool" if isinstance(x, bool) else (DEFAULT_INT if isinstance(x, int)
                                                       else DEFAULT_FLOAT)
            return np.asarray(x, dtype)
        arr = np.asarray(x)
        TensorType.of(arr)
    except (TypeError, ValueError, OverflowError, PyasgError) as e:
        raise ControlFlowError(f"{what} is a {type(x).__name__} {shown(x, 60)}, not an array "
                               f"or a number pyasg holds ({str(e)[:120]})") from None
    return arr


def _leaves(tree: object, what: str) -> tuple[list[tuple[str, Tracer | np.ndarray]], TreeDef]:
    pairs, treedef = flatten_with_paths(tree, prefix=what)
    return [(path, as_leaf(leaf, f"{what}: leaf {shown(path)}")) for path, leaf in pairs], treedef


@dataclass(frozen=True)
class Body:
    """A traced body: its graph (inputs: the captured values, then the arguments' leaves),
    the outer values it captured, and the paths, types and structure of its result."""

    graph: Graph
    captured: tuple[Tracer, ...]
    out_paths: tuple[str, ...]
    out_tree: TreeDef

    @property
    def out_types(self) -> tuple[TensorType, ...]:
        return self.graph.output_types


def trace_body(fn: Callable[..., Any], args: Sequence[object], names: Sequence[str],
               what: str, weak: Sequence[bool] = ()) -> Body:
    """Trace `fn(*args)` once on the types of `args`' leaves (values are not read).

    >>> b = trace_body(lambda c: c * 2.0, [np.ones(3, np.float32)], ["carry"], "body")
    >>> b.graph.input_types, b.out_types
    ((f32[3],), (f32[3],))
    """
    if not callable(fn):
        raise ControlFlowError(f"{what} must be a function, got {type(fn).__name__} "
                               f"{shown(fn, 60)}")
    pairs, _ = flatten_with_paths(dict(zip(names, args)))
    weak = list(weak) + [False] * (len(pairs) - len(weak))
    abstract = [(path, leaf if isinstance(leaf, TensorType) else P.type_of(leaf), w)
                for (path, leaf), w in zip(pairs, weak)]
    traced = trace_function(fn, list(args), name=what, abstract=abstract, names=list(names))
    graph = traced.graph
    n = len(pairs)
    # the op's convention: captured values first, then the arguments
    inputs = list(graph.inputs[n:]) + list(graph.inputs[:n])
    graph = Graph(graph.nodes, pvector(inputs), graph.outputs)
    out_paths = tuple(p for p, _ in flatten_with_paths(_placeholder(traced.out_tree))[0])
    return Body(graph, traced.captured, out_paths, traced.out_tree)


def _placeholder(tree: TreeDef) -> object:
    return unflatten(tree, [0] * tree.num_leaves)


def merge_captured(*bodies: Body) -> tuple[list[Tracer], list[Graph]]:
    """One list of captured values for bodies that run side by side, and each body's
    graph taking all of them (those it does not read as unused inputs), then its own
    arguments."""
    consts: list[Tracer] = []
    seen: dict[int, int] = {}
    for body in bodies:
        for t in body.captured:
            if id(t) not in seen:
                seen[id(t)] = len(consts)
                consts.append(t)
    graphs = []
    for body in bodies:
        if len(body.captured) == len(consts):
            graphs.append(body.graph)
            continue
        g, b = body.graph, GraphBuilder()
        new = [b.add_input(f"captured.{k}", t.type) for k, t in enumerate(consts)]
        feeds = {g.inputs[k]: new[seen[id(t)]] for k, t in enumerate(body.captured)}
        for i in g.inputs[len(body.captured):]:
            feeds[i] = b.add_input(g.nodes[i].op.path, g.nodes[i].type)
        env = copy_into(b, g, feeds)
        graphs.append(b.build([env[i] for i in g.outputs]))
    return consts, graphs


def _check_same(tree_a: TreeDef, types_a: Sequence[TensorType], tree_b: TreeDef,
                types_b: Sequence[TensorType], paths: Sequence[str], error: type[PyasgError],
                a: str, b: str) -> None:
    """`error` naming both sides unless the two structures and leaf types agree."""
    if tree_a != tree_b:
        raise error(f"{a} has the structure {tree_a!r}, but {b} has {tree_b!r}")
    for path, ta, tb in zip(paths, types_a, types_b):
        if ta != tb:
            raise error(f"{a} {shown(path)} is {ta!r}, but {b} is {tb!r} (same shape and "
                        f"dtype needed: cast with .astype, or start from a value of the "
                        f"type the body gives)")


def _weak(tree: object) -> list[bool]:
    """Which leaves are weakly typed (Python numbers, or tracers of them): as in JAX, a
    weak initial carry takes the dtype its body gives it."""
    return [is_python_scalar(x) or (isinstance(x, Tracer) and x.weak) for x in flatten(tree)[0]]


def _adopt_weak(weak: Sequence[bool], pairs: list, out_types: Sequence[TensorType]) -> list:
    """The carry leaves, the weak ones converted to the dtype the body returns for them
    when only the dtype differs; None if none changed."""
    changed, out = False, []
    for (path, leaf), w, t in zip(pairs, weak, out_types):
        if w and P.type_of(leaf) != t and P.type_of(leaf).shape == t.shape:
            leaf = P.astype(leaf, t.dtype)
            changed = True
        out.append((path, leaf))
    return out if changed else None


def _bind_all(op: ops.Control, inputs: Sequence[object]) -> list[object]:
    return [P.bind(op.with_index(k), *inputs) for k in range(op.output_count())]


def scan(f: Callable[[Any, Any], tuple[Any, Any]], init: object, xs: object = None,
         length: int | None = None, reverse: bool = False) -> tuple[Any, Any]:
    """Loop `f(carry, x) -> (carry, y)` over the leading axis of `xs`, as `jax.lax.scan`.

    Returns the final carry and the ys stacked along a new leading axis. `init`, `xs`
    and the ys are pytrees; `xs=None` with a static `length` scans over nothing. The
    body is traced once: the graph holds one `Scan` node per result, whatever the length.

    >>> c, ys = scan(lambda c, x: (c + x, c), 0.0, np.ones(4, np.float32), reverse=True)
    >>> float(c), ys.tolist()
    (4.0, [3.0, 2.0, 1.0, 0.0])
    """
    return _scan(f, init, xs, length, reverse)


def _scan(f: Callable[[Any, Any], tuple[Any, Any]], init: object, xs: object,
          length: int | None, reverse: bool, weak_x: bool = False) -> tuple[Any, Any]:
    """`scan`; with `weak_x` the slices of xs are weakly typed (fori_loop's index, which
    then adapts to the dtype it meets, as a Python int does)."""
    if not isinstance(reverse, (bool, np.bool_)):
        raise ControlFlowError(f"scan: reverse must be a bool, got "
                               f"{shown(reverse, with_type=True)}")
    carry, carry_tree = _leaves(init, "carry")
    x_pairs, x_tree = _leaves(xs, "xs")
    lengths = set()
    for path, x in x_pairs:
        if P.type_of(x).ndim == 0:
            raise ControlFlowError(f"scan: {shown(path)} is a 0-d array; every leaf of xs is "
                                   f"scanned over its leading axis")
        lengths.add(P.type_of(x).shape[0])
    if length is not None:
        if not isinstance(length, (int, np.integer)) or isinstance(length, bool) or length < 0:
            raise ControlFlowError(f"scan: length must be an int >= 0, got "
                                   f"{shown(length, with_type=True)}")
        lengths.add(int(length))
    if len(lengths) != 1:
        found = ", ".join(f"{shown(p)}: {P.type_of(x).shape[0]}" for p, x in x_pairs)
        raise ControlFlowError(
            "scan: xs is empty and no length was given" if not lengths else
            f"scan: the leading axes disagree ({found}" + (f", length={length}" if length
                                                           is not None else "") + ")")
    n = lengths.pop()
    slices = [TensorType(P.type_of(x).shape[1:], P.type_of(x).dtype) for _, x in x_pairs]
    weak = _weak(init)
    for attempt in range(2):  # twice when a weak carry takes the body's dtype
        carry_types = [P.type_of(c) for _, c in carry]
        weak_leaves = (weak if attempt == 0 else [False] * len(carry)) + [weak_x] * len(slices)
        body = trace_body(f, [unflatten(carry_tree, carry_types), unflatten(x_tree, slices)],
                          ["carry", "x"], "scan body", weak_leaves)
        tree = body.out_tree
        if tree.kind not in ("tuple", "list") or len(tree.children) != 2:
            raise ControlFlowError(f"scan: the body must return a pair (carry, y), it "
                                   f"returned the structure {tree!r}")
        ncar = tree.children[0].num_leaves
        if tree.children[0] != carry_tree:
            break
        adopted = _adopt_weak(weak, carry, body.out_types[:ncar])
        if adopted is None or attempt:
            break
        carry = adopted
    _check_same(carry_tree, carry_types, tree.children[0], body.out_types[:ncar],
                [path for path, _ in carry], CarryTypeError, "the carry going into the body",
                "the carry the body returns")
    op = scan_op(body.graph, n, len(body.captured), ncar, bool(reverse))
    inputs = [*body.captured, *(c for _, c in carry), *(x for _, x in x_pairs)]
    outs = [P.bind(op.with_index(k), *inputs) for k in range(len(body.graph.outputs))]
    return unflatten(carry_tree, outs[:ncar]), unflatten(tree.children[1], outs[ncar:])


def scan_op(body: Graph, length: int, n_consts: int, n_carry: int,
            reverse: bool = False) -> ops.Scan:
    """The `Scan` op of `body` (consts, carries, x slices) -> (carries, ys), with the
    entering carries appended as ys (`Scan.kept_carries`): a gradient's residuals then
    belong to the same construct as the forward values (one loop computes both).

    >>> from pyasg.asg.graph import GraphBuilder
    >>> b = GraphBuilder()
    >>> c, x = b.add_input("c", TensorType(())), b.add_input("x", TensorType(()))
    >>> op = scan_op(b.build([b.add(ops.Add(), (c, x))]), 3, 0, 1)
    >>> op.output_count(), op.kept_carries()
    (2, 1)
    """
    outputs = [*body.outputs, *body.inputs[n_consts:n_consts + n_carry]]
    return ops.Scan(Graph(body.nodes, body.inputs, pvector(outputs)), length, n_consts,
                    n_carry, reverse)


def _static_int(x: object) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def fori_loop(lower: object, upper: object, body_fun: Callable[[Any, Any], Any],
              init_val: object) -> Any:
    """`val = body_fun(i, val)` for i in range(lower, upper), as `jax.lax.fori_loop`.

    With Python int bounds the loop is a `scan` over the int32 indices (static trip
    count: differentiable), the index weakly typed like a Python int (`v + i` keeps
    v's float32); with traced bounds it is a `while_loop` (not reverse-mode
    differentiable, as in JAX).

    >>> float(fori_loop(1, 4, lambda i, v: v + i, np.float32(0)))
    6.0
    """
    if not callable(body_fun):
        raise ControlFlowError(f"fori_loop: body_fun must be a function, got "
                               f"{type(body_fun).__name__} {shown(body_fun, 60)}")
    for name, bound in (("lower", lower), ("upper", upper)):
        if isinstance(bound, (bool, np.bool_)):
            raise ControlFlowError(f"fori_loop: {name} must be an int (or an int array), "
                                   f"got the bool {bound}")
    if _static_int(lower) and _static_int(upper):
        indices = np.arange(int(lower), max(int(lower), int(upper)), dtype=DEFAULT_INT)
        return _scan(lambda v, i: (body_fun(i, v), None), init_val, indices, None, False,
                     weak_x=True)[0]
    lo = P.astype(as_leaf(lower, "fori_loop: lower"), DEFAULT_INT)
    hi = P.astype(as_leaf(upper, "fori_loop: upper"), DEFAULT_INT)
    for name, bound in (("lower", lo), ("upper", hi)):
        if P.type_of(bound).shape != ():
            raise ControlFlowError(f"fori_loop: {name} must be a scalar, got "
                                   f"{P.type_of(bound)!r}")
    _, val = while_loop(lambda s: P.less(s[0], hi),
                        lambda s: (P.add(s[0], 1), body_fun(s[0], s[1])), (lo, init_val))
    return val


def cond(pred: object, true_fn: Callable[..., Any], false_fn: Callable[..., Any],
         *operands: object) -> Any:
    """`true_fn(*operands)` if `pred` else `false_fn(*operands)`, as `jax.lax.cond`.

    `pred` is a scalar (bool, or a number compared with 0). Both branches are traced
    and must return the same structure of the same types; only the chosen one runs.

    >>> float(cond(np.float32(2) > 1, lambda a, b: a * b, lambda a, b: a + b, 3.0, 4.0))
    12.0
    """
    p = as_leaf(pred, "cond: the predicate")
    if P.type_of(p).shape != ():
        raise ControlFlowError(f"cond: the predicate must be a scalar, got {P.type_of(p)!r}"
                               f" (use pyasg.where for an elementwise choice)")
    if P.type_of(p).dtype != "bool":
        p = P.not_equal(p, 0)
    pairs, tree = _leaves(tuple(operands), "operands")
    leaves = [x for _, x in pairs]
    args = list(unflatten(tree, [P.type_of(x) for x in leaves]))
    names = [f"operand{k}" for k in range(len(args))]
    t = trace_body(true_fn, args, names, "cond true_fn")
    f = trace_body(false_fn, args, names, "cond false_fn")
    _check_same(t.out_tree, t.out_types, f.out_tree, f.out_types,
                ["result." + q if q else "result" for q in t.out_paths], BranchMismatchError,
                "true_fn's", "false_fn's")
    consts, (tg, fg) = merge_captured(t, f)
    outs = _bind_all(ops.Cond(tg, fg), [p, *consts, *leaves])
    return unflatten(t.out_tree, outs)


def while_loop(cond_fun: Callable[[Any], Any], body_fun: Callable[[Any], Any],
               init_val: object) -> Any:
    """`val = body_fun(val)` while `cond_fun(val)`, as `jax.lax.while_loop`.

    The trip count is known only at run time, so reverse-mode gradients through it
    raise `GradError` (use `fori_loop` with static bounds, or `scan`).

    >>> int(while_loop(lambda v: v[0] < 5, lambda v: (v[0] + 1, v[1] * 2), (0, 1))[1])
    32
    """
    pairs, tree = _leaves(init_val, "carry")
    weak = _weak(init_val)
    for attempt in range(2):  # twice when a weak carry takes the body's dtype
        leaves = [x for _, x in pairs]
        types = [P.type_of(x) for x in leaves]
        example = unflatten(tree, types)
        b = trace_body(body_fun, [example], ["carry"], "while_loop body_fun",
                       weak if attempt == 0 else ())
        adopted = None if b.out_tree != tree else _adopt_weak(weak, pairs, b.out_types)
        if adopted is None or attempt:
            break
        pairs = adopted
    c = trace_body(cond_fun, [example], ["carry"], "while_loop cond_fun")
    if c.out_tree.kind != "leaf" or c.out_types != (TensorType((), "bool"),):
        shown_types = ", ".join(repr(t) for t in c.out_types)
        raise ControlFlowError(f"while_loop: cond_fun must return one bool scalar, it returned"
                               f" {c.out_tree!r} of ({shown_types})")
    _check_same(tree, types, b.out_tree, b.out_types, [p for p, _ in pairs], CarryTypeError,
                "the carry going into body_fun", "the carry body_fun returns")
    consts, (cg, bg) = merge_captured(c, b)
    outs = _bind_all(ops.WhileLoop(cg, bg, len(consts)), [*consts, *leaves])
    return unflatten(tree, outs)
