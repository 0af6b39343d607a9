"""Saved graphs of real training steps, before and after each transform: the oracle
`test_transform_golden.py` compares today's `vjp_graph`, `simplify` and `fuse` against.

For each case (the CPU benchmark's W1, W2, W3 and two small LM configs) the file
`tests/data/golden/<case>.json.gz` holds, as `pyasg.graph_to_json` writes them: every
graph `value_and_grad` differentiated while the step was traced ("forward") with the
positions it differentiated by ("wrt") and what `vjp_graph` made of it ("gradient");
the traced step ("traced"); `simplify` of it ("simplified"); and `lower_graph` of
that for numpy and for wgpu's fusion options ("fused numpy", "fused wgpu": dtypes
converted, then fused). The transforms' speed work must leave every one unchanged.

They were written by the code before that work (`python tests/golden_graphs.py
--write`); a change that MEANS to give other graphs (a new simplification or fusion
rule) writes them again with the same command and says so in its commit.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path
from typing import Any

import pyasg
import pyasg.api
from benchmarks import lm, workloads
from pyasg.asg.graph import Graph
from pyasg.compile.pipeline import lower_graph
from pyasg.compile.protocol import FuseOptions
from pyasg.compile.registry import get_backend
from pyasg.transforms.dtypes import convert_dtypes
from pyasg.transforms.fuse import fuse
from pyasg.transforms.simplify import simplify
from pyasg.transforms.vjp import vjp_graph

DATA = Path(__file__).resolve().parent / "data" / "golden"

#: case -> how to build its step: a workload of benchmarks.workloads, or an LM config
#: (with its dtype)
CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "W1": ("workload", {}),
    "W2": ("workload", {}),
    "W3": ("workload", {}),
    "LM-B4-T32-d64-H4-L2": ("lm", {"dtype": "float32"}),
    "LM-B2-T16-d32-H2-L1-f64": ("lm", {"dtype": "float64"}),
}

#: the fusion options of wgpu on an adapter with 8 storage buffers per stage (lavapipe,
#: NVIDIA): written out so that no GPU is needed to check them
WGPU_OPTIONS = FuseOptions(max_inputs=7, matmul_epilogue=True, matmul_views=True,
                           recompute_fraction=1 / 16)
#: the dtypes wgpu converts (its backend's `converts`)
WGPU_CONVERTS = {"float64": "float32", "int64": "int32"}


def step_of(case: str) -> tuple[Any, tuple]:
    """The plain step function of `case` and its first call's arguments."""
    kind, extra = CASES[case]
    if kind == "workload":
        w = workloads.build(case)
        return w.step.__wrapped__, w.args()
    config = case.removeprefix("LM-").removesuffix("-f64")
    step = lm.build_lm_step(config, "numpy", **extra)
    return step.step.__wrapped__, step.args()


def lower_wgpu(graph: Graph) -> Graph:
    """What `lower_graph` gives for wgpu (converted, fused), without a GPU."""
    return fuse(convert_dtypes(graph, WGPU_CONVERTS), WGPU_OPTIONS)


def gradient(forward: Graph, wrt: list[int], of: int) -> Graph:
    """`vjp_graph` called from this one line: the seed constant's source is the first
    line outside pyasg, so saving and checking call it from the same place."""
    return vjp_graph(forward, wrt, of)


def compute(case: str) -> dict[str, Any]:
    """Every graph of `case`, made by the code as it is now."""
    fn, args = step_of(case)
    grads: list[dict[str, Any]] = []
    original = pyasg.api.vjp_graph

    def recording(graph: Graph, wrt: Any, of: int = 0, **kwargs: Any) -> Graph:
        grads.append({"forward": graph, "wrt": list(wrt), "of": of,
                      "gradient": gradient(graph, list(wrt), of)})
        return original(graph, wrt, of, **kwargs)

    pyasg.api.vjp_graph = recording
    try:
        traced = pyasg.make_graph(fn)(*args)
    finally:
        pyasg.api.vjp_graph = original
    simplified = simplify(traced)
    return {"grads": grads, "traced": traced, "simplified": simplified,
            "fused numpy": lower_graph(simplified, get_backend("numpy")),
            "fused wgpu": lower_wgpu(simplified)}


def _encode(value: Any) -> Any:
    if isinstance(value, Graph):
        return json.loads(pyasg.graph_to_json(value))
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and value.get("format") == "pyasg.graph":
        return pyasg.graph_from_json(json.dumps(value))
    if isinstance(value, dict):
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def write(case: str) -> Path:
    """Save `case`'s graphs as made now."""
    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / f"{case}.json.gz"
    text = json.dumps(_encode(compute(case)), sort_keys=True)
    path.write_bytes(gzip.compress(text.encode(), mtime=0))
    return path


def load(case: str) -> dict[str, Any]:
    """`case`'s saved graphs (as `compute` returns them)."""
    return _decode(json.loads(gzip.decompress((DATA / f"{case}.json.gz").read_bytes())))


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/golden_graphs.py --write")
    for name in CASES:
        print(write(name), flush=True)
