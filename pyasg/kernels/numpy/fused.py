"""numpy kernel of `Fused`: generated Python that runs the group with ufunc `out=`.

When the kernel is built (compile time) every value of the group gets a scratch
slot, reused by liveness inside the group: an elementwise op writes into the slot
of an input that dies at it (same shape and dtype: exact for ufuncs), otherwise
into a slot freed earlier. The slots are the kernel's `scratch` (shape, dtype)
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


@lru_cache(maxsize=1024)
def fused_kernel(op: Fused) -> NumpyKernel:
    """Generate, compile and return the kernel of one fused group (cached by sub-graph)."""
    sub = op.graph
    order = [i for i in sub.live_ids if i not in sub.inputs]
    root = sub.outputs[0]
    root_type = sub.nodes[root].type
    users: dict[int, list[int]] = {i: [] for i in sub.live_ids}
    for i in order:
        for j in sub.nodes[i].inputs:
            users[j].append(i)
    last = {i: max(us) for i, us in users.items() if us}
    scope: dict[str, Any] = {"np": np}
    var = {j: f"x{k}" for k, j in enumerate(sub.inputs)}
    buffers: dict[int, str] = {}  # value -> name of the buffer it lives in
    slots: list[str] = []  # the temporaries, in the order `scratch=` hands them over
    specs: list[tuple[tuple[int, ...], str]] = []
    free: dict[tuple, list[str]] = {}
    body: list[str] = []
    head_writes_out = False

    def take(i: int, prefer: list[int]) -> str:
        t = sub.nodes[i].type
        key = (t.shape, t.dtype)
        for j in prefer:  # a dying input of the same type: ufuncs write in place exactly
            name = buffers.get(j)
            if name is not None and last.get(j) == i and sub.nodes[j].type == t:
                return name
        stack = free.get(key)
        if stack:
            return stack.pop()
        name = f"s{i}"
        slots.append(name)
        specs.append((tuple(t.shape), str(t.dtype)))
        return name

    for i in order:
        node = sub.nodes[i]
        args = [var[j] for j in node.inputs]
        if isinstance(node.op, ops.Constant):
            value = node.op.value
            value.flags.writeable = False
            scope[f"c{i}"] = value
            var[i] = f"c{i}"
            continue
        if isinstance(node.op, ops.StopGradient):
            var[i] = args[0]  # an alias: its readers keep the input's buffer alive
            last[node.inputs[0]] = max(last.get(node.inputs[0], i), last.get(i, i))
            if i == root:
                body.append(f"    np.copyto(out, {args[0]})")
                head_writes_out = True
            continue
        if isinstance(node.op, (ops.BroadcastTo, ops.Transpose)):
            var[i] = f"b{i}"
            if isinstance(node.op, ops.BroadcastTo):
                body.append(f"    b{i} = np.broadcast_to({args[0]}, {node.op.shape!r})")
            else:
                body.append(f"    b{i} = np.transpose({args[0]}, {node.op.perm!r})")
            if node.inputs[0] in buffers:  # a view keeps the buffer it looks into alive
                last[node.inputs[0]] = max(last.get(node.inputs[0], i), last.get(i, i))
            if i == root:  # a view as the group's value: it must still land in `out`
                body.append(f"    np.copyto(out, b{i})")
                head_writes_out = True  # `out` may not be one of the inputs
            continue
        in_place = isinstance(node.op, _ELEMENTWISE + (ops.Cast,))
        if i == root:
            target = "out"
        elif isinstance(node.op, ops.MatMul) and node.type == root_type:
            target, head_writes_out = "out", True
        else:
            target = take(i, list(node.inputs) if in_place else [])
        buffers[i] = target
        var[i] = target
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
        body.append(f"    {fn}({', '.join(args)}, out={target})  # {node.op.name}")
        for j in set(node.inputs):  # values that die here free their buffers (not `out`)
            name = buffers.get(j)
            if last.get(j) == i and name not in (None, "out", target):
                t = sub.nodes[j].type
                free.setdefault((t.shape, t.dtype), []).append(name)
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
