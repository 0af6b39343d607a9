"""The VJP rules of the control-flow ops (rows of `pyasg.transforms.vjp.VJP_RULES`).

Each rule builds its backward pass from the same ops users write, so a gradient can be
differentiated again:

- `Scan`: a forward scan that also stacks the carry entering every iteration (the
  residuals), then a REVERSE scan whose body is the VJP of the forward body at that
  iteration (`vjp_graph` of the body, inlined): it carries the carries' cotangents and
  the consts' gradient sums, and stacks the xs' cotangents. `grad(grad(...))` through a
  scan differentiates that reverse scan by the same rule.
- `Cond`: a `Cond` of the two branches' VJPs, on the same predicate.
- `Remat` (checkpoint): the body's VJP inlined into the backward pass, so the body's
  values are recomputed there instead of kept from the forward pass.
- `WhileLoop`: raises `GradError` (its trip count is dynamic; JAX refuses too).

>>> import pyasg, numpy as np
>>> xs = np.ones(3, np.float32)
>>> f = lambda w: pyasg.scan(lambda c, x: (c * w + x, None), np.float32(0), xs)[0]
>>> float(pyasg.grad(f)(np.float32(2.0)))  # d/dw (w² + w + 1) at 2
5.0
"""

from __future__ import annotations

from collections.abc import Sequence

from pyrsistent import pvector

from pyasg.array import control as C
from pyasg.array import functional as F
from pyasg.array import primitives as P
from pyasg.asg import ops
from pyasg.asg.graph import Graph, GraphBuilder, prune
from pyasg.asg.rewrite import copy_into
from pyasg.asg.types import TensorType, is_float
from pyasg.errors import GradError
from pyasg.trace.tracer import inline
from pyasg.transforms.vjp import CONSTRUCT_VJP_RULES, vjp_graph, vjp_rule


def _float_positions(xs: Sequence[object]) -> list[int]:
    return [k for k, x in enumerate(xs) if is_float(x.dtype)]


def _renamed(graph: Graph) -> Graph:
    """`graph` with its inputs named in0, in1, ...: `vjp_graph` adds an input named
    `cotangent`, which a sub-graph made by an earlier VJP already has."""
    b = GraphBuilder()
    feeds = {i: b.add_input(f"in{k}", graph.nodes[i].type) for k, i in enumerate(graph.inputs)}
    env = copy_into(b, graph, feeds)
    return b.build([env[i] for i in graph.outputs])


def _dot_graph(body: Graph, cotangent_of: Sequence[int]) -> Graph:
    """A scalar graph of `body`'s inputs and one cotangent per listed output:
    sum over them of sum(output * cotangent). Its gradients with respect to the body's
    inputs are the body's vector-Jacobian product for those cotangents."""
    body = _renamed(body)
    b = GraphBuilder(body)
    total = None
    for k in cotangent_of:
        out = body.outputs[k]
        ct = b.add_input(f"cotangent.{k}", body.nodes[out].type)
        axes = tuple(range(body.nodes[out].type.ndim))
        term = b.add(ops.Sum(axes), (b.add(ops.Mul(), (out, ct)),))
        total = term if total is None else b.add(ops.Add(), (total, term))
    if total is None:  # no float output: a zero scalar (its gradients are zeros)
        total = b.add(ops.Constant.of(0.0, "float32"))
    return prune(b.build([total]))


@vjp_rule(ops.Scan)
def _(op, g, out, *inputs):  # noqa: ANN001, ANN202
    return scan_vjp(op.with_index(0), {op.index: g}, {op.index: out}, *inputs)


def scan_vjp(op: ops.Scan, cts: dict[int, object], outs: dict[int, object],
             *inputs: object) -> tuple:  # noqa: C901
    """The VJP of a scan for the cotangents `cts` of its outputs (by index): ONE reverse
    scan for all of them (`CONSTRUCT_VJP_RULES`: the backward pass is linear in the
    cotangents, so the outputs share it)."""
    nc, ncar, body = op.n_consts, op.n_carry, op.body
    consts, init, xs = inputs[:nc], inputs[nc:nc + ncar], inputs[nc + ncar:]
    nothing = (None,) * len(inputs)
    cts = {k: g for k, g in cts.items() if is_float(outs[k].dtype)}
    if not cts:
        return nothing
    # the carry entering each iteration, stacked: what the backward body recomputes from;
    # outputs of this very construct where it keeps them (`Scan.kept_carries`)
    kept = op.kept_carries()
    if kept is not None:
        residuals = [P.bind(op.with_index(kept + c), *inputs) for c in range(ncar)]
    else:
        carry_in = pvector(list(body.outputs[:ncar]) + list(body.inputs[nc:nc + ncar]))
        residual_op = ops.Scan(prune(Graph(body.nodes, body.inputs, carry_in)), op.length,
                               nc, ncar, op.reverse)
        residuals = [P.bind(residual_op.with_index(ncar + c), *inputs) for c in range(ncar)]
    fk, fc, fx = _float_positions(consts), _float_positions(init), _float_positions(xs)
    ys = sorted(k for k in cts if k >= ncar)  # the stacked outputs with a cotangent
    with_ct = fc + ys
    dot = _dot_graph(body, with_ct)
    wrt = fk + [nc + c for c in fc] + [nc + ncar + k for k in fx]
    if not wrt:
        return nothing
    back = vjp_graph(dot, wrt)

    def backward_body(kc: list, carry: list, xt: list) -> tuple[list, list]:
        ct_carry, sums = carry[:len(fc)], carry[len(fc):]
        res, x_t, ct_y = xt[:ncar], xt[ncar:ncar + len(xs)], xt[ncar + len(xs):]
        grads = inline(back, [*kc, *res, *x_t, *ct_carry, *ct_y])[1:]
        d_consts = grads[:len(fk)]
        d_carry = grads[len(fk):len(fk) + len(fc)]
        d_xs = grads[len(fk) + len(fc):]
        return list(d_carry) + [F.add(s, d) for s, d in zip(sums, d_consts)], list(d_xs)

    ct_init = [cts[c] if c in cts else F.zeros_like(init[c]) for c in fc]
    sums = [F.zeros_like(consts[k]) for k in fk]
    stacked = [*residuals, *xs, *(cts[k] for k in ys)]
    types = lambda vs: [TensorType(v.shape, v.dtype) for v in vs]  # noqa: E731
    slices = [TensorType(v.shape[1:], v.dtype) for v in stacked]
    traced = C.trace_body(backward_body, [types(consts), types(ct_init + sums), slices],
                          ["consts", "carry", "x"], "scan backward body")
    n_back = len(fc) + len(fk)
    reverse = C.scan_op(traced.graph, op.length, len(traced.captured) + nc, n_back,
                        not op.reverse)
    back_inputs = [*traced.captured, *consts, *ct_init, *sums, *stacked]

    def result(index: int) -> object:
        return P.bind(reverse.with_index(index), *back_inputs)

    found: dict[int, object] = {}
    for m, c in enumerate(fc):
        found[nc + c] = result(m)
    for m, k in enumerate(fk):
        found[k] = result(len(fc) + m)
    for m, k in enumerate(fx):
        found[nc + ncar + k] = result(n_back + m)
    return tuple(found.get(k) for k in range(len(inputs)))


CONSTRUCT_VJP_RULES[ops.Scan] = scan_vjp


@vjp_rule(ops.Cond)
def _(op, g, out, pred, *operands):  # noqa: ANN001, ANN202
    fo = _float_positions(operands)
    if not is_float(out.dtype) or not fo:
        return (None,) * (1 + len(operands))
    n_out = op.output_count()
    branches = [vjp_graph(_renamed(b), fo, op.index, seed=True) for b in op.graphs()]
    back = ops.Cond(*branches)
    found = {k: P.bind(back.with_index(n_out + m), pred, *operands, g) for m, k in enumerate(fo)}
    return (None,) + tuple(found.get(k) for k in range(len(operands)))


@vjp_rule(ops.Remat)
def _(op, g, out, *xs):  # noqa: ANN001, ANN202
    # the body's own VJP, inlined: its forward values are recomputed in the backward
    # pass, where the gradient needs them, from the node's inputs alone
    wrt = _float_positions(xs)
    if not wrt or not is_float(out.dtype):
        return (None,) * len(xs)
    back = vjp_graph(_renamed(op.body), wrt, op.index, seed=True)
    grads = inline(back, [*xs, g])[op.output_count():]
    found = dict(zip(wrt, grads))
    return tuple(found.get(k) for k in range(len(xs)))


@vjp_rule(ops.WhileLoop)
def _(op, g, out, *inputs):  # noqa: ANN001, ANN202
    raise GradError("reverse-mode differentiation does not go through while_loop: its trip "
                    "count is known only at run time, so no backward pass can be planned for "
                    "it (JAX refuses too). Use pyasg.fori_loop with Python int bounds or "
                    "pyasg.scan with a static length, or stop_gradient the loop's inputs")
