"""Memory of a training gradient with and without `pyasg.checkpoint` (remat), by the memory plan.

A stack of `--layers` pre-LN TransformerBlocks (pyasg.nn, small d_model) and the
gradient of a mean-square loss with respect to every parameter. Without checkpointing,
every block's activations stay alive from the forward pass to its backward pass; with
each block wrapped in `pyasg.checkpoint`, only the blocks' inputs do, and each block's
activations are recomputed inside its backward pass. The numbers are the numpy
backend's memory plan (`pyasg.kernels.numpy.memory`, over the liveness of
`pyasg.compile.liveness`): its static buffers, the outputs allocated per call, the
peak of values kernels allocate themselves, and the plan of one checkpointed block's
forward (run on buffers of its own, allocated for that call); nothing is timed. It also runs both
gradients once and reports their largest difference (they must agree).

    python -m benchmarks.remat
    python -m benchmarks.remat --layers 12 --d-model 32 --batch 4 --seq 64

>>> r = measure(layers=2, d_model=8, heads=2, batch=1, seq=4)
>>> r["checkpointed"]["peak_bytes"] < r["plain"]["peak_bytes"], r["max_grad_difference"] < 1e-5
(True, True)
"""

from __future__ import annotations

import argparse

import numpy as np

import pyasg
from pyasg import nn
from pyasg.asg import ops
from pyasg.asg.ops.control import restrict
from pyasg.kernels.numpy.backend import NUMPY
from pyasg.kernels.numpy.executable import Executable


def _peak(plan: object) -> int:
    return plan.planned_peak_bytes + plan.allocating_peak_bytes


def _plan_numbers(fn: object, *args: object) -> tuple[dict[str, int], object]:
    graph = pyasg.simplify(pyasg.make_graph(fn)(*args))
    ex = pyasg.jit_to_backend(graph, "numpy")
    plan = ex.plan
    # a checkpointed block's forward runs its own executable, on buffers made for that
    # call alone (pyasg.kernels.numpy.control): one of them is alive at a time, on top
    # of the outer plan's
    nested = [_peak(Executable(restrict(n.op.body, (n.op.index,)), NUMPY).plan)
              for n in ex.graph.nodes.values() if isinstance(n.op, ops.Remat)]
    numbers = {"static_bytes": plan.static_bytes, "output_bytes": plan.output_bytes,
               "allocating_peak_bytes": plan.allocating_peak_bytes,
               "nested_peak_bytes": max(nested, default=0),
               "peak_bytes": _peak(plan) + max(nested, default=0),
               "kernels": plan.kernel_count}
    return numbers, ex


def measure(layers: int = 12, d_model: int = 32, heads: int = 4, batch: int = 4,
            seq: int = 64, seed: int = 0) -> dict:
    """Memory-plan figures of the gradient with and without checkpointed blocks."""
    blocks = [nn.TransformerBlock(d_model, heads, causal=True) for _ in range(layers)]
    keys = pyasg.random.split(pyasg.random.key(seed), layers)
    params = [b.init(k) for b, k in zip(blocks, keys)]
    x = np.random.default_rng(seed).normal(size=(batch, seq, d_model)).astype(np.float32)

    def loss(params: list, x: object, remat: bool) -> object:
        for block, p in zip(blocks, params):
            x = pyasg.checkpoint(block)(p, x) if remat else block(p, x)
        return (x * x).mean()

    results, grads = {}, {}
    for name, remat in (("plain", False), ("checkpointed", True)):
        grad = pyasg.grad(lambda p, x, remat=remat: loss(p, x, remat))
        results[name], ex = _plan_numbers(grad, params, x)
        leaves = pyasg.tree_leaves(params)
        grads[name] = ex(*leaves, x)
    results["max_grad_difference"] = max(float(np.max(np.abs(a - b)))
                                         for a, b in zip(grads["plain"], grads["checkpointed"]))
    results["config"] = dict(layers=layers, d_model=d_model, heads=heads, batch=batch, seq=seq)
    return results


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--d-model", type=int, default=32)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seq", type=int, default=64)
    args = parser.parse_args(argv)
    r = measure(args.layers, args.d_model, args.heads, args.batch, args.seq)
    c = r["config"]
    print(f"{c['layers']} TransformerBlocks, d_model {c['d_model']}, {c['heads']} heads, "
          f"batch {c['batch']}, sequence {c['seq']}: gradient of a loss, numpy memory plan")
    for name in ("plain", "checkpointed"):
        n = r[name]
        print(f"  {name:>12}: peak {n['peak_bytes'] / 2**20:7.3f} MiB  (static buffers "
              f"{n['static_bytes'] / 2**20:.3f} MiB, outputs {n['output_bytes'] / 2**20:.3f} "
              f"MiB, allocated by kernels {n['allocating_peak_bytes'] / 2**20:.3f} MiB, one "
              f"checkpointed block's forward {n['nested_peak_bytes'] / 2**20:.3f} MiB; "
              f"{n['kernels']} kernels)")
    ratio = r["checkpointed"]["peak_bytes"] / r["plain"]["peak_bytes"]
    print(f"  checkpointed / plain peak: {ratio:.2f}; largest gradient difference "
          f"{r['max_grad_difference']:.2e}")
    return r


if __name__ == "__main__":
    main()
