"""Hypothesis strategies for random pyasg graphs, with an independent numpy reference.

A drawn case is a *recipe*: 1-3 float64 inputs of small, mutually broadcastable shapes
(such as [4, 1] and [1, 8]), then 1-12 random steps (elementwise unary and binary ops
with broadcasting, constants including 0 and 1, trivial algebra that `simplify`
removes, repeated subexpressions, reductions, reshape and transpose chains,
broadcast_to, slices, pads, concatenate, matmul, where with comparisons), then 1-3
outputs. The same recipe is replayed three ways:

- `BuilderNS`: op by op with `GraphBuilder` (every node exactly as written, so
  identity reshapes, `x * 1` and the like really are in the graph);
- `TracerNS`: by tracing a Python function through `pyasg.make_graph` with the public
  functional API (which already drops some no-ops);
- `NumpyNS`: with plain numpy, the reference the tests compare against.

Values stay finite and moderate: inputs lie in [-2, 2], every step tracks a bound on
its magnitude, and a step whose bound could pass `LIMIT` is squashed with tanh.

    random_graphs()  -> (Graph, [float64 arrays])
    random_cases()   -> Case(graph, arrays, other_arrays, recipe) with .reference(arrays)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import strategies as st

import pyasg
from pyasg.array import primitives as P
from pyasg.asg import ops
from pyasg.asg.graph import Graph, GraphBuilder
from pyasg.asg.types import TensorType

F64 = "float64"
#: Inputs are drawn from [-INPUT_BOUND, INPUT_BOUND].
INPUT_BOUND = 2.0
#: A step whose magnitude bound exceeds this is squashed with tanh.
LIMIT = 1e3


# --------------------------------------------------------------------------- namespaces


class NumpyNS:
    """The reference: every step in plain numpy."""

    def const(self, value: np.ndarray) -> np.ndarray:
        return np.array(value, dtype=np.float64)

    def neg(self, x): return np.negative(x)  # noqa: ANN001, ANN201, E704
    def abs(self, x): return np.abs(x)  # noqa: ANN001, ANN201, E704
    def exp(self, x): return np.exp(x)  # noqa: ANN001, ANN201, E704
    def expm1(self, x): return np.expm1(x)  # noqa: ANN001, ANN201, E704
    def log1p(self, x): return np.log1p(x)  # noqa: ANN001, ANN201, E704
    def tanh(self, x): return np.tanh(x)  # noqa: ANN001, ANN201, E704
    def sin(self, x): return np.sin(x)  # noqa: ANN001, ANN201, E704
    def cos(self, x): return np.cos(x)  # noqa: ANN001, ANN201, E704
    def sqrt(self, x): return np.sqrt(x)  # noqa: ANN001, ANN201, E704
    def sign(self, x): return np.sign(x)  # noqa: ANN001, ANN201, E704
    def stop_gradient(self, x): return x  # noqa: ANN001, ANN201, E704
    def add(self, a, b): return np.add(a, b)  # noqa: ANN001, ANN201, E704
    def sub(self, a, b): return np.subtract(a, b)  # noqa: ANN001, ANN201, E704
    def mul(self, a, b): return np.multiply(a, b)  # noqa: ANN001, ANN201, E704
    def div(self, a, b): return np.true_divide(a, b)  # noqa: ANN001, ANN201, E704
    def pow(self, a, b): return np.power(a, b)  # noqa: ANN001, ANN201, E704
    def maximum(self, a, b): return np.maximum(a, b)  # noqa: ANN001, ANN201, E704
    def minimum(self, a, b): return np.minimum(a, b)  # noqa: ANN001, ANN201, E704
    def greater(self, a, b): return np.greater(a, b)  # noqa: ANN001, ANN201, E704
    def where(self, c, x, y): return np.where(c, x, y)  # noqa: ANN001, ANN201, E704
    def cast(self, x, dtype): return np.asarray(x).astype(dtype)  # noqa: ANN001, ANN201, E704
    def matmul(self, a, b): return np.matmul(a, b)  # noqa: ANN001, ANN201, E704

    def sum(self, x, axes, keepdims):  # noqa: ANN001, ANN201
        return np.sum(x, axis=axes, keepdims=keepdims)

    def max(self, x, axes, keepdims):  # noqa: ANN001, ANN201
        return np.max(x, axis=axes, keepdims=keepdims) if axes else np.array(x)

    def reshape(self, x, shape): return np.reshape(x, shape)  # noqa: ANN001, ANN201, E704
    def transpose(self, x, perm): return np.transpose(x, perm)  # noqa: ANN001, ANN201, E704
    def broadcast_to(self, x, shape): return np.broadcast_to(x, shape)  # noqa: ANN001, ANN201, E704

    def slice(self, x, triples):  # noqa: ANN001, ANN201
        return np.asarray(x)[tuple(slice(*t) for t in triples)]

    def concatenate(self, xs, axis): return np.concatenate(xs, axis=axis)  # noqa: ANN001, ANN201, E704

    def pad(self, x, widths, value):  # noqa: ANN001, ANN201
        x = np.asarray(x)
        shape = tuple(lo + hi + d + max(d - 1, 0) * mid
                      for d, (lo, hi, mid) in zip(x.shape, widths))
        out = np.full(shape, value, dtype=x.dtype)
        out[tuple(slice(lo, lo + (d - 1) * (mid + 1) + 1, mid + 1)
                  for d, (lo, _, mid) in zip(x.shape, widths))] = x
        return out


class BuilderNS:
    """Every step as exactly the nodes written, through `GraphBuilder` (ids are handles)."""

    def __init__(self) -> None:
        self.b = GraphBuilder()

    def _add(self, op: ops.Op, *xs: int) -> int:
        return self.b.add(op, xs)

    def shape(self, x: int) -> tuple[int, ...]:
        return self.b.type_of(x).shape

    def const(self, value: np.ndarray) -> int:
        return self._add(ops.Constant.of(np.asarray(value, dtype=np.float64)))

    def neg(self, x): return self._add(ops.Neg(), x)  # noqa: ANN001, ANN201, E704
    def abs(self, x): return self._add(ops.Abs(), x)  # noqa: ANN001, ANN201, E704
    def exp(self, x): return self._add(ops.Exp(), x)  # noqa: ANN001, ANN201, E704
    def expm1(self, x): return self._add(ops.Expm1(), x)  # noqa: ANN001, ANN201, E704
    def log1p(self, x): return self._add(ops.Log1p(), x)  # noqa: ANN001, ANN201, E704
    def tanh(self, x): return self._add(ops.Tanh(), x)  # noqa: ANN001, ANN201, E704
    def sin(self, x): return self._add(ops.Sin(), x)  # noqa: ANN001, ANN201, E704
    def cos(self, x): return self._add(ops.Cos(), x)  # noqa: ANN001, ANN201, E704
    def sqrt(self, x): return self._add(ops.Sqrt(), x)  # noqa: ANN001, ANN201, E704
    def sign(self, x): return self._add(ops.Sign(), x)  # noqa: ANN001, ANN201, E704
    def stop_gradient(self, x): return self._add(ops.StopGradient(), x)  # noqa: ANN001, ANN201, E704
    def add(self, a, b): return self._add(ops.Add(), a, b)  # noqa: ANN001, ANN201, E704
    def sub(self, a, b): return self._add(ops.Sub(), a, b)  # noqa: ANN001, ANN201, E704
    def mul(self, a, b): return self._add(ops.Mul(), a, b)  # noqa: ANN001, ANN201, E704
    def div(self, a, b): return self._add(ops.Div(), a, b)  # noqa: ANN001, ANN201, E704
    def pow(self, a, b): return self._add(ops.Pow(), a, b)  # noqa: ANN001, ANN201, E704
    def maximum(self, a, b): return self._add(ops.Maximum(), a, b)  # noqa: ANN001, ANN201, E704
    def minimum(self, a, b): return self._add(ops.Minimum(), a, b)  # noqa: ANN001, ANN201, E704
    def greater(self, a, b): return self._add(ops.Greater(), a, b)  # noqa: ANN001, ANN201, E704
    def where(self, c, x, y): return self._add(ops.Where(), c, x, y)  # noqa: ANN001, ANN201, E704
    def cast(self, x, dtype): return self._add(ops.Cast(dtype), x)  # noqa: ANN001, ANN201, E704
    def matmul(self, a, b): return self._add(ops.MatMul(), a, b)  # noqa: ANN001, ANN201, E704

    def sum(self, x, axes, keepdims):  # noqa: ANN001, ANN201
        return self._add(ops.Sum(tuple(axes), keepdims), x)

    def max(self, x, axes, keepdims):  # noqa: ANN001, ANN201
        return self._add(ops.Max(tuple(axes), keepdims), x)

    def reshape(self, x, shape): return self._add(ops.Reshape(tuple(shape)), x)  # noqa: ANN001, ANN201, E704
    def transpose(self, x, perm): return self._add(ops.Transpose(tuple(perm)), x)  # noqa: ANN001, ANN201, E704
    def broadcast_to(self, x, shape): return self._add(ops.BroadcastTo(tuple(shape)), x)  # noqa: ANN001, ANN201, E704

    def slice(self, x, triples):  # noqa: ANN001, ANN201
        idx = [slice(*t).indices(d) for t, d in zip(triples, self.shape(x))]
        return self._add(ops.Slice(*(tuple(v[k] for v in idx) for k in range(3))), x)

    def concatenate(self, xs, axis): return self._add(ops.Concatenate(axis), *xs)  # noqa: ANN001, ANN201, E704

    def pad(self, x, widths, value):  # noqa: ANN001, ANN201
        return self._add(ops.Pad(tuple(tuple(w) for w in widths), float(value)), x)


class TracerNS:
    """Every step through pyasg's public functions, on tracers (constants stay numpy)."""

    def const(self, value: np.ndarray) -> np.ndarray:
        return np.array(value, dtype=np.float64)

    def __getattr__(self, name: str) -> Any:
        return getattr(pyasg, name)

    def pow(self, a, b): return pyasg.power(a, b)  # noqa: ANN001, ANN201, E704
    def cast(self, x, dtype): return pyasg.astype(x, dtype)  # noqa: ANN001, ANN201, E704

    def sum(self, x, axes, keepdims):  # noqa: ANN001, ANN201
        return pyasg.sum(x, axis=tuple(axes), keepdims=keepdims)

    def max(self, x, axes, keepdims):  # noqa: ANN001, ANN201
        return pyasg.max(x, axis=tuple(axes), keepdims=keepdims)

    def slice(self, x, triples):  # noqa: ANN001, ANN201
        return x[tuple(slice(*t) for t in triples)]

    def concatenate(self, xs, axis): return pyasg.concatenate(list(xs), axis=axis)  # noqa: ANN001, ANN201, E704
    def pad(self, x, widths, value): return P.pad_general(x, widths, value)  # noqa: ANN001, ANN201, E704


# --------------------------------------------------------------------------- steps

# Each step kind: fn(ns, *operands, **params) -> value. Operands are earlier values.

UNARY: dict[str, Any] = {
    "tanh": lambda ns, x: ns.tanh(x),
    "sin": lambda ns, x: ns.sin(x),
    "cos": lambda ns, x: ns.cos(x),
    "neg": lambda ns, x: ns.neg(x),
    "abs": lambda ns, x: ns.abs(x),
    "sign": lambda ns, x: ns.sign(x),
    "exp_tanh": lambda ns, x: ns.exp(ns.tanh(x)),
    "expm1_tanh": lambda ns, x: ns.expm1(ns.tanh(x)),
    "sqrt_abs1": lambda ns, x: ns.sqrt(ns.add(ns.abs(x), ns.const(1.0))),
    "log1p_abs": lambda ns, x: ns.log1p(ns.abs(x)),
    "stop_gradient": lambda ns, x: ns.stop_gradient(x),
}
UNARY_BOUND: dict[str, Any] = {
    "tanh": lambda b: 1.0, "sin": lambda b: 1.0, "cos": lambda b: 1.0, "neg": lambda b: b,
    "abs": lambda b: b, "sign": lambda b: 1.0, "exp_tanh": lambda b: math.e,
    "expm1_tanh": lambda b: math.e, "sqrt_abs1": lambda b: math.sqrt(b + 1),
    "log1p_abs": lambda b: math.log1p(b), "stop_gradient": lambda b: b,
}

BINARY: dict[str, Any] = {
    "add": lambda ns, a, b: ns.add(a, b),
    "sub": lambda ns, a, b: ns.sub(a, b),
    "mul": lambda ns, a, b: ns.mul(a, b),
    "maximum": lambda ns, a, b: ns.maximum(a, b),
    "minimum": lambda ns, a, b: ns.minimum(a, b),
    "div_safe": lambda ns, a, b: ns.div(a, ns.add(ns.abs(b), ns.const(1.0))),
}
BINARY_BOUND: dict[str, Any] = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a + b, "mul": lambda a, b: a * b,
    "maximum": max, "minimum": max, "div_safe": lambda a, b: a,
}

#: x OP c that simplify may rewrite to x (when c has x's shape or less).
TRIVIAL: dict[str, Any] = {
    "mul1": lambda ns, x, c: ns.mul(x, c),
    "1mul": lambda ns, x, c: ns.mul(c, x),
    "add0": lambda ns, x, c: ns.add(x, c),
    "0add": lambda ns, x, c: ns.add(c, x),
    "sub0": lambda ns, x, c: ns.sub(x, c),
    "div1": lambda ns, x, c: ns.div(x, c),
    "pow1": lambda ns, x, c: ns.pow(x, c),
}
TRIVIAL_VALUE = {"mul1": 1.0, "1mul": 1.0, "add0": 0.0, "0add": 0.0, "sub0": 0.0,
                 "div1": 1.0, "pow1": 1.0}


def _step_unary(ns, x, *, name):  # noqa: ANN001, ANN202
    return UNARY[name](ns, x)


def _step_binary(ns, a, b, *, name):  # noqa: ANN001, ANN202
    return BINARY[name](ns, a, b)


def _step_const_op(ns, x, *, name, value, const_first):  # noqa: ANN001, ANN202
    c = ns.const(value)
    return BINARY[name](ns, c, x) if const_first else BINARY[name](ns, x, c)


def _step_trivial(ns, x, *, name, value):  # noqa: ANN001, ANN202
    return TRIVIAL[name](ns, x, ns.const(value))


def _step_noop(ns, x, *, name):  # noqa: ANN001, ANN202
    shape = _shape_of(ns, x)
    if name == "negneg":
        return ns.neg(ns.neg(x))
    if name == "cast_same":
        return ns.cast(x, F64)
    if name == "broadcast_same":
        return ns.broadcast_to(x, shape)
    if name == "reshape_same":
        return ns.reshape(x, shape)
    if name == "transpose_identity":
        return ns.transpose(x, tuple(range(len(shape))))
    if name == "slice_full":
        return ns.slice(x, [(None, None, None)] * len(shape))
    if name == "sum_no_axes":
        return ns.sum(x, (), False)
    if name == "max_no_axes":
        return ns.max(x, (), False)
    raise AssertionError(name)


def _step_fold(ns, x, *, name, c1, c2, outer):  # noqa: ANN001, ANN202
    folded = BINARY[name](ns, ns.const(c1), ns.const(c2))  # constants only: simplify folds
    return BINARY[outer](ns, x, folded)


def _step_cse(ns, x, *, name, via_one):  # noqa: ANN001, ANN202
    first = UNARY[name](ns, x)
    again = UNARY[name](ns, ns.mul(x, ns.const(1.0)) if via_one else x)
    return ns.add(first, again)


def _step_sum(ns, x, *, axes, keepdims):  # noqa: ANN001, ANN202
    return ns.sum(x, axes, keepdims)


def _step_max(ns, x, *, axes, keepdims):  # noqa: ANN001, ANN202
    return ns.max(x, axes, keepdims)


def _step_reshape(ns, x, *, shapes):  # noqa: ANN001, ANN202
    for shape in shapes:
        x = ns.reshape(x, shape)
    return x


def _step_transpose(ns, x, *, perms):  # noqa: ANN001, ANN202
    for perm in perms:
        x = ns.transpose(x, perm)
    return x


def _step_broadcast(ns, x, *, shape):  # noqa: ANN001, ANN202
    return ns.broadcast_to(x, shape)


def _step_slice(ns, x, *, triples):  # noqa: ANN001, ANN202
    return ns.slice(x, triples)


def _step_pad(ns, x, *, widths, value):  # noqa: ANN001, ANN202
    return ns.pad(x, widths, value)


def _step_concat(ns, *xs, axis):  # noqa: ANN001, ANN202
    return ns.concatenate(xs, axis)


def _step_matmul(ns, a, *rest, swap, const):  # noqa: ANN001, ANN202
    if const is not None:
        b = ns.const(const)
    elif swap:
        nd = len(_shape_of(ns, a))
        b = a if nd == 1 else ns.transpose(a, tuple(range(nd - 2)) + (nd - 1, nd - 2))
    else:
        b = rest[0]
    return ns.matmul(a, b)


def _step_where(ns, a, p, y):  # noqa: ANN001, ANN202
    return ns.where(ns.greater(a, p), a, y)


#: Steps that need an operand with at least one axis.
NEEDS_AXIS = frozenset({"sum", "max", "slice", "pad", "concat", "matmul", "transpose"})

STEPS: dict[str, Any] = {
    "unary": _step_unary, "binary": _step_binary, "const_op": _step_const_op,
    "trivial": _step_trivial, "noop": _step_noop, "fold": _step_fold, "cse": _step_cse,
    "sum": _step_sum, "max": _step_max, "reshape": _step_reshape,
    "transpose": _step_transpose, "broadcast": _step_broadcast, "slice": _step_slice,
    "pad": _step_pad, "concat": _step_concat, "matmul": _step_matmul, "where": _step_where,
}


def _shape_of(ns: object, x: object) -> tuple[int, ...]:
    if isinstance(ns, BuilderNS):
        return ns.shape(x)  # type: ignore[arg-type]
    return tuple(x.shape) if hasattr(x, "shape") else np.shape(x)  # type: ignore[union-attr]


@dataclass(frozen=True)
class Step:
    kind: str
    operands: tuple[int, ...]
    params: dict = field(default_factory=dict)
    #: wrap the result in tanh (to keep values bounded)
    squash: bool = False

    def __repr__(self) -> str:
        shown = {k: (f"array{list(np.shape(v))}" if isinstance(v, np.ndarray) and v.ndim else v)
                 for k, v in self.params.items()}
        return (f"{self.kind}{list(self.operands)}{shown}"
                + (" |> tanh" if self.squash else ""))


@dataclass(frozen=True)
class Recipe:
    input_shapes: tuple[tuple[int, ...], ...]
    steps: tuple[Step, ...]
    outputs: tuple[int, ...]


def replay(ns: object, recipe: Recipe, inputs: list) -> list:
    """Run `recipe` in namespace `ns` from these input handles; returns the output handles."""
    vals = list(inputs)
    for step in recipe.steps:
        out = STEPS[step.kind](ns, *(vals[i] for i in step.operands), **step.params)
        vals.append(ns.tanh(out) if step.squash else out)
    return [vals[i] for i in recipe.outputs]


def reference(recipe: Recipe, arrays: list[np.ndarray]) -> list[np.ndarray]:
    """The recipe's outputs computed with plain numpy (independent of pyasg)."""
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        return [np.asarray(v) for v in replay(NumpyNS(), recipe, [np.asarray(a) for a in arrays])]


def input_names(n: int) -> list[str]:
    return [f"args.{k}" for k in range(n)]


def build_graph(recipe: Recipe) -> Graph:
    """The recipe as a graph, node by node with `GraphBuilder`."""
    ns = BuilderNS()
    ids = [ns.b.add_input(name, TensorType(shape, F64))
           for name, shape in zip(input_names(len(recipe.input_shapes)), recipe.input_shapes)]
    return ns.b.build(replay(ns, recipe, ids))


def trace_graph(recipe: Recipe, arrays: list[np.ndarray]) -> Graph:
    """The recipe as a graph, traced through `pyasg.make_graph` and the public functions."""

    def fn(*args):  # noqa: ANN002, ANN202
        return tuple(replay(TracerNS(), recipe, list(args)))

    return pyasg.make_graph(fn)(*arrays)


@dataclass
class Case:
    """A drawn graph, two sets of inputs for it, and the recipe it came from."""

    graph: Graph
    arrays: list[np.ndarray]
    other_arrays: list[np.ndarray]
    recipe: Recipe
    traced: bool

    def reference(self, arrays: list[np.ndarray] | None = None) -> list[np.ndarray]:
        return reference(self.recipe, self.arrays if arrays is None else arrays)

    def __repr__(self) -> str:
        steps = "\n".join(f"  v{len(self.recipe.input_shapes) + k} = {s!r}"
                          for k, s in enumerate(self.recipe.steps))
        return (f"Case(traced={self.traced}, inputs={list(self.recipe.input_shapes)}, "
                f"outputs={list(self.recipe.outputs)}\n{steps}\n{self.graph})")


# --------------------------------------------------------------------------- drawing


def _broadcastable(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    try:
        np.broadcast_shapes(a, b)
        return True
    except ValueError:
        return False


def _matmul_ok(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    if not a or not b:
        return False
    try:
        np.matmul(np.zeros(a), np.zeros(b))
        return True
    except ValueError:
        return False


def _factors(n: int) -> list[int]:
    out, p = [], 2
    while n > 1:
        while n % p == 0:
            out.append(p)
            n //= p
        p += 1
    return out


@st.composite
def _sub_shape(draw: st.DrawFn, shape: tuple[int, ...]) -> tuple[int, ...]:
    """A shape that broadcasts to `shape`: leading axes dropped, some axes set to 1."""
    drop = draw(st.integers(0, len(shape)))
    kept = shape[drop:]
    return tuple(d if draw(st.booleans()) else 1 for d in kept)


@st.composite
def _reshape_target(draw: st.DrawFn, shape: tuple[int, ...]) -> tuple[int, ...]:
    size = math.prod(shape)
    parts = draw(st.permutations(_factors(size)))
    groups: list[int] = []
    for f in parts:
        if groups and draw(st.booleans()):
            groups[-1] *= f
        else:
            groups.append(f)
    for _ in range(draw(st.integers(0, 2 if len(groups) < 4 else 0))):
        groups.insert(draw(st.integers(0, len(groups))), 1)
    target = tuple(groups)
    if target and draw(st.integers(0, 3)) == 0:
        k = draw(st.integers(0, len(target) - 1))
        target = target[:k] + (-1,) + target[k + 1:]
    return target


@st.composite
def _slice_triples(draw: st.DrawFn, shape: tuple[int, ...]) -> list[tuple]:
    triples = []
    for d in shape:
        step = draw(st.sampled_from([None, 1, 2, -1, -2, 3]))
        start = draw(st.one_of(st.none(), st.integers(-d, d - 1)))
        stop = draw(st.one_of(st.none(), st.integers(-d - 1, d)))
        if not len(range(*slice(start, stop, step).indices(d))):
            start, stop = None, None
        triples.append((start, stop, step))
    return triples


@st.composite
def _constant(draw: st.DrawFn, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    kind = draw(st.sampled_from(["zeros", "ones", "uniform", "uniform"]))
    if kind == "zeros":
        return np.zeros(shape)
    if kind == "ones":
        return np.ones(shape)
    return np.round(rng.uniform(-INPUT_BOUND, INPUT_BOUND, shape), 3)


@st.composite
def _input_shapes(draw: st.DrawFn) -> tuple[tuple[int, ...], ...]:
    master = tuple(draw(st.lists(st.sampled_from([1, 2, 3, 4, 8]), min_size=0, max_size=3)))
    if draw(st.integers(0, 4)) == 0:
        master = draw(st.sampled_from([(4, 8), (2, 4, 8), (3, 4)]))
    n = draw(st.integers(1, 3))
    return tuple(draw(_sub_shape(master)) if k else master for k in range(n))


@st.composite
def random_recipes(draw: st.DrawFn, max_steps: int = 12) -> tuple[Recipe, list, list]:
    """A recipe and two sets of float64 inputs for it (values in [-2, 2])."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    input_shapes = draw(_input_shapes())
    arrays = [rng.uniform(-INPUT_BOUND, INPUT_BOUND, s) for s in input_shapes]
    other = [rng.uniform(-INPUT_BOUND, INPUT_BOUND, s) for s in input_shapes]
    shapes = [tuple(s) for s in input_shapes]
    bounds = [INPUT_BOUND] * len(shapes)
    vals = [np.asarray(a) for a in arrays]
    steps: list[Step] = []
    kinds = sorted(STEPS)

    for _ in range(draw(st.integers(1, max_steps))):
        n = len(vals)
        i = draw(st.one_of(st.just(n - 1), st.integers(0, n - 1)))
        sx, bx = shapes[i], bounds[i]
        kind = draw(st.sampled_from(kinds))
        if (kind in NEEDS_AXIS and not sx) or (kind == "transpose" and len(sx) < 2):
            kind = "unary"
        operands: tuple[int, ...] = (i,)
        params: dict = {}
        bound = bx
        if kind == "unary":
            params["name"] = draw(st.sampled_from(sorted(UNARY)))
            bound = UNARY_BOUND[params["name"]](bx)
        elif kind == "binary":
            j = draw(st.sampled_from([k for k in range(n) if _broadcastable(sx, shapes[k])]))
            operands = (i, j)
            params["name"] = draw(st.sampled_from(sorted(BINARY)))
            bound = BINARY_BOUND[params["name"]](bx, bounds[j])
        elif kind == "const_op":
            cshape = draw(st.one_of(_sub_shape(sx), st.just(())))
            params["name"] = draw(st.sampled_from(sorted(BINARY)))
            params["value"] = draw(_constant(cshape, rng))
            params["const_first"] = draw(st.booleans())
            cb = float(np.max(np.abs(params["value"]), initial=0.0))
            bound = BINARY_BOUND[params["name"]](*((cb, bx) if params["const_first"] else (bx, cb)))
        elif kind == "trivial":
            params["name"] = name = draw(st.sampled_from(sorted(TRIVIAL)))
            # the constant has x's shape, less (broadcast), or MORE (then x op c is
            # not the same type as x, and simplify must keep it)
            bigger = (2,) + tuple(sx)
            cshape = draw(st.sampled_from([(), tuple(sx), bigger]) | _sub_shape(sx))
            params["value"] = np.full(cshape, TRIVIAL_VALUE[name])
        elif kind == "noop":
            params["name"] = draw(st.sampled_from(
                ["negneg", "cast_same", "broadcast_same", "reshape_same", "transpose_identity",
                 "slice_full", "sum_no_axes", "max_no_axes"]))
        elif kind == "fold":
            params["name"] = draw(st.sampled_from(["add", "sub", "mul", "maximum"]))
            params["outer"] = draw(st.sampled_from(["add", "mul", "sub"]))
            cshape = draw(_sub_shape(sx))
            params["c1"] = draw(_constant(cshape, rng))
            params["c2"] = draw(_constant(draw(_sub_shape(cshape)), rng))
            bound = BINARY_BOUND[params["outer"]](bx, 4 * INPUT_BOUND ** 2)
        elif kind == "cse":
            params["name"] = draw(st.sampled_from(sorted(UNARY)))
            params["via_one"] = draw(st.booleans())
            bound = 2 * UNARY_BOUND[params["name"]](bx)
        elif kind in ("sum", "max"):
            axes = draw(st.lists(st.integers(0, len(sx) - 1), min_size=1, unique=True))
            params["axes"] = tuple(sorted(axes))
            params["keepdims"] = draw(st.booleans())
            if kind == "sum":
                bound = bx * math.prod(sx[a] for a in params["axes"])
        elif kind == "reshape":
            first = draw(_reshape_target(sx))
            params["shapes"] = [first]
            if draw(st.booleans()):
                resolved = np.empty(sx).reshape(first).shape
                again = draw(_reshape_target(resolved))
                params["shapes"].append(draw(st.sampled_from([sx, again])))
        elif kind == "transpose":
            first = tuple(draw(st.permutations(range(len(sx)))))
            perms = [first]
            if draw(st.booleans()):
                inverse = tuple(int(k) for k in np.argsort(first))
                perms.append(draw(st.sampled_from(
                    [inverse, tuple(draw(st.permutations(range(len(sx)))))])))
            params["perms"] = perms
        elif kind == "broadcast":
            lead = tuple(draw(st.lists(st.sampled_from([1, 2, 3]), max_size=1 if sx else 2)))
            body = tuple(draw(st.sampled_from([1, 2, 3])) if d == 1 else d for d in sx)
            params["shape"] = lead + body
        elif kind == "slice":
            params["triples"] = draw(_slice_triples(sx))
        elif kind == "pad":
            params["widths"] = tuple(
                (draw(st.integers(0, 2)), draw(st.integers(0, 2)), draw(st.integers(0, 1)))
                for _ in sx)
            params["value"] = draw(st.sampled_from([0.0, 1.5, -2.0]))
            bound = max(bx, 2.0)
        elif kind == "concat":
            axis = draw(st.integers(0, len(sx) - 1))
            fits = [k for k in range(n) if len(shapes[k]) == len(sx) and all(
                a == b for ax, (a, b) in enumerate(zip(shapes[k], sx)) if ax != axis)]
            others = draw(st.lists(st.sampled_from(fits), min_size=1, max_size=2))
            operands = (i, *others)
            params["axis"] = axis
            bound = max(bounds[k] for k in operands)
        elif kind == "matmul":
            fits = [k for k in range(n) if _matmul_ok(sx, shapes[k])]
            how = draw(st.sampled_from(["swap", "const"] + (["value"] if fits else [])))
            params["swap"] = how == "swap"
            params["const"] = None
            inner = sx[-1]
            if how == "value":
                j = draw(st.sampled_from(fits))
                operands = (i, j)
                bj = bounds[j]
            elif how == "const":
                cshape = (inner,) if draw(st.booleans()) else (inner, draw(st.integers(1, 3)))
                params["const"] = draw(_constant(cshape, rng))
                bj = float(np.max(np.abs(params["const"]), initial=0.0))
            else:
                bj = bx
            bound = bx * bj * inner
        elif kind == "where":
            p = draw(st.sampled_from([k for k in range(n) if _broadcastable(sx, shapes[k])]))
            y = draw(st.sampled_from([k for k in range(n) if _broadcastable(
                np.broadcast_shapes(sx, shapes[p]), shapes[k])]))
            operands = (i, p, y)
            bound = max(bx, bounds[y])
        step = Step(kind, operands, params, squash=bound > LIMIT)
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            out = np.asarray(STEPS[kind](NumpyNS(), *(vals[k] for k in operands), **params))
            if step.squash:
                out, bound = np.tanh(out), 1.0
        assert np.all(np.isfinite(out)), (step, out)
        steps.append(step)
        vals.append(out)
        shapes.append(tuple(out.shape))
        bounds.append(bound)

    n = len(vals)
    extra = draw(st.lists(st.integers(0, n - 1), max_size=2))
    outputs = (n - 1, *extra)
    return Recipe(tuple(input_shapes), tuple(steps), outputs), arrays, other


@st.composite
def random_cases(draw: st.DrawFn, traced: bool | None = None, max_steps: int = 12) -> Case:
    """A `Case`: a graph (GraphBuilder, or traced when `traced`; drawn when None),
    two sets of float64 inputs, and the recipe, whose `reference` is numpy."""
    recipe, arrays, other = draw(random_recipes(max_steps=max_steps))
    if traced is None:
        traced = draw(st.booleans())
    graph = trace_graph(recipe, arrays) if traced else build_graph(recipe)
    return Case(graph, arrays, other, recipe, traced)


def random_graphs(traced: bool | None = None, max_steps: int = 12) -> st.SearchStrategy:
    """(Graph, list of float64 input arrays): see the module docstring."""
    return random_cases(traced=traced, max_steps=max_steps).map(lambda c: (c.graph, c.arrays))
