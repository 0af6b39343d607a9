"""numpy kernel of `Fused`: generated Python that runs the group with ufunc `out=`.

When the kernel is built (compile time) every value of the group gets a scratch
slot, reused by the shared liveness analysis inside the group
(`pyasg.compile.liveness`; transposes, broadcasts and stop_gradients are views that
keep their input's slot alive): an elementwise op writes into the slot of an input
that dies at it (same shape and dtype: exact for ufuncs), otherwise into a slot
freed earlier. The slots are the kernel's `scratch` (shape, dtype)
list: an executable's memory plan gives them static buffers, live only while the
kernel runs (`scratch=`); called alone, the kernel allocates them. The root
writes into `out` (allocated per call only when the caller gives none). A matmul
head writes straight into `out` when it has the output's type and the epilogue
then runs in place on it; such a kernel says `inplace=False` (the head would
overwrite an input the epilogue still reads), and if it is given one of its inputs
as `out` anyway, it allocates.

Each op runs through its own numpy kernel (`lower`, when that kernel takes `out=`),
in the same order as unfused, so results are bitwise equal to the unfused graph's
and every speed-up of a single kernel (a folded matmul, a faster erf) carries over.

>>> import pyasg, numpy as np
>>> from pyasg.transforms.fuse import fuse
>>> g = fuse(pyasg.make_graph(lambda x: pyasg.exp(x) * 2.0)(np.zeros(2, np.float32)))
>>> node = g.nodes[g.outputs[0]]
>>> k = fused_kernel(node.op)
>>> k.fn(np.zeros(2, np.float32)).tolist()
[2.0, 2.0]
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from pyasg.asg import ops
from pyasg.asg.ops import Fused
from pyasg.compile.liveness import Allocator, liveness
from pyasg.kernels import lower
from pyasg.kernels.numpy.backend import NUMPY, NumpyBackend, NumpyKernel
from pyasg.kernels.numpy.elementwise import UFUNCS, select_zero

_ELEMENTWISE = (ops.Unary, ops.Binary)


def _where(c: np.ndarray, x: np.ndarray, y: np.ndarray, out: np.ndarray) -> np.ndarray:
    if not select_zero(c, x, y, out):
        out[...] = np.where(c, x, y)  # numpy's where has no out=: one temporary
    return out


def _cast(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    np.copyto(out, x, casting="unsafe")
    return out


def _reduce(func: Any, axes: tuple[int, ...], keepdims: bool, dtype: Any) -> Any:
    if not axes:  # reducing over no axes is a copy (np.max(axis=()) refuses)
        return lambda x, out: _cast(x, out)
    if func is np.sum:
        return lambda x, out: np.sum(x, axis=axes, keepdims=keepdims, dtype=dtype, out=out)
    return lambda x, out: np.max(x, axis=axes, keepdims=keepdims, out=out)


#: Ops whose value is a view of their first input inside a fused group (no code of their own).
_VIEWS = (ops.StopGradient, ops.BroadcastTo, ops.Transpose)
#: The key of the group's `out` in the slot allocator: no slot is ever drawn from it.
_OUT = "out"


@lru_cache(maxsize=1024)
def fused_kernel(op: Fused) -> NumpyKernel:
    """Generate, compile and return the kernel of one fused group (cached by sub-graph)."""
    sub = op.graph
    root = sub.outputs[0]
    root_type = sub.nodes[root].type
    live = liveness(sub, sub.live_ids, [i for i in sub.live_ids
                                        if isinstance(sub.nodes[i].op, _VIEWS)])
    alloc = Allocator(live)
    scope: dict[str, Any] = {"np": np}
    var = {j: f"x{k}" for k, j in enumerate(sub.inputs)}
    names: dict[int, str] = {}  # allocator buffer -> `out`, or the name of a slot
    specs: list[tuple[tuple[int, ...], str]] = []  # the slots, in the order `scratch=` has them
    body: list[str] = []
    head_writes_out = False

    def target(i: int, node: Any) -> str:
        """Where %i is written: `out` (the root; a matmul head of the root's type, whose
        epilogue then runs in place on it), else a slot (over a dying input of its type,
        for ops that write in place exactly: ufuncs and casts)."""
        nonlocal head_writes_out
        t = node.type
        if i == root:
            return "out"
        if isinstance(node.op, ops.MatMul) and t == root_type:
            head_writes_out = True
            names[alloc.take(i, _OUT, 0)] = "out"
            return "out"
        b = alloc.take(i, (t.shape, t.dtype), t.size * np.dtype(t.dtype).itemsize,
                       inplace=isinstance(node.op, _ELEMENTWISE + (ops.Cast,)))
        if b not in names:
            names[b] = f"s{len(specs)}"
            specs.append((tuple(t.shape), str(t.dtype)))
        return names[b]

    def emit(i: int) -> None:
        nonlocal head_writes_out
        node = sub.nodes[i]
        args = [var[j] for j in node.inputs]
        if isinstance(node.op, ops.Constant):
            value = node.op.value
            value.flags.writeable = False
            scope[f"c{i}"] = value
            var[i] = f"c{i}"
            return
        if isinstance(node.op, _VIEWS):  # its readers keep the input's buffer alive
            if isinstance(node.op, ops.StopGradient):
                var[i] = args[0]
            else:
                var[i] = f"b{i}"
                if isinstance(node.op, ops.BroadcastTo):
                    body.append(f"    b{i} = np.broadcast_to({args[0]}, {node.op.shape!r})")
                else:
                    body.append(f"    b{i} = np.transpose({args[0]}, {node.op.perm!r})")
            if i == root:  # a view as the group's value: it must still land in `out`
                body.append(f"    np.copyto(out, {var[i]})")
                head_writes_out = True  # `out` may not be one of the inputs
            return
        var[i] = target(i, node)
        fn = f"f{i}"
        single = None if isinstance(node.op, ops.Where) else lower(
            node.op, NUMPY, in_types=tuple(sub.nodes[j].type for j in node.inputs),
            out_type=node.type)
        if single is not None and single.writes_out:
            scope[fn] = single.fn  # the op's own kernel, written into our buffer: same bits
        elif isinstance(node.op, _ELEMENTWISE):
            scope[fn] = UFUNCS[type(node.op)]
        elif isinstance(node.op, ops.Where):
            scope[fn] = _where  # the single where kernel assumes `out` holds x or y
        elif isinstance(node.op, ops.Cast):
            scope[fn] = _cast
        elif isinstance(node.op, ops.MatMul):
            scope[fn] = np.matmul
        elif isinstance(node.op, (ops.Sum, ops.Max)):
            scope[fn] = _reduce(np.sum if isinstance(node.op, ops.Sum) else np.max,
                                node.op.axes, node.op.keepdims, np.dtype(node.type.dtype))
        else:
            raise NotImplementedError(f"fused numpy kernel: no code for {node.op.name}")
        body.append(f"    {fn}({', '.join(args)}, out={var[i]})  # {node.op.name}")

    inputs = set(sub.inputs)
    for i in live.schedule:
        if i not in inputs:
            emit(i)
        alloc.step()  # storages whose last reader ran free their slots
    slots = [f"s{k}" for k in range(len(specs))]
    params = [var[j] for j in sub.inputs]
    guard = "out is None"
    if head_writes_out:  # the head writes `out` before the epilogue reads every input
        guard += "".join(f" or out is {p}" for p in params)
    scope["out_shape"], scope["out_dtype"] = root_type.shape, np.dtype(root_type.dtype)
    scope["specs"] = tuple(specs)
    unpack = [f"    {', '.join(slots)}, = scratch"] if slots else []
    lines = [f"def fused({', '.join(params)}, out=None, scratch=None):",
             f"    if {guard}:", "        out = np.empty(out_shape, out_dtype)",
             "    if scratch is None:  # called outside an executable's plan",
             "        scratch = tuple(np.empty(shape, dtype) for shape, dtype in specs)",
             *unpack, *body, "    return out"]
    source = "\n".join(lines)
    text = f"def make({', '.join(scope)}):\n" + "\n".join(
        "    " + line for line in lines) + "\n    return fused\n"
    namespace: dict[str, Any] = {}
    exec(compile(text, f"<pyasg fused: {op}>", "exec"), namespace)  # noqa: S102 - generated
    fn = namespace["make"](**scope)
    fn.source = source  # type: ignore[attr-defined]
    # a matmul head writes `out` before the epilogue has read every input
    return NumpyKernel(fn, writes_out=True, inplace=not head_writes_out, scratch=tuple(specs))


@lower.register(Fused, NumpyBackend)
def _(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
    return fused_kernel(op)
