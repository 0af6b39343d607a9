"""The CPU benchmark computes one and the same training step in every framework, and its
command line runs and writes its results. Timings are never asserted."""

from __future__ import annotations

import doctest
import importlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks import hand_numpy, run, workloads
from pyasg.errors import PyasgError
from pyasg.trace.tree import flatten_with_paths

ROOT = Path(__file__).resolve().parent.parent

# Small versions of the architectures (same layers, fewer numbers); W2 with two
# blocks so that the gradient has to flow from one block into the next. lr is large so
# that the update itself, not only the old weights, decides whether params agree.
SMALL = {
    "W1": {"batch": 8, "sizes": (20, 16, 12, 5), "lr": 0.5},
    "W2": {"batch": 2, "seq": 8, "d_model": 16, "heads": 4, "blocks": 2, "lr": 0.5},
    "W3": {"batch": 4, "image": 8, "channels": (1, 4, 6), "lr": 0.5},
}


def leaves(tree: dict) -> dict[str, np.ndarray]:
    return {path: np.asarray(leaf) for path, leaf in flatten_with_paths(tree)[0]}


def pyasg_step(w: workloads.Workload) -> tuple[float, dict[str, np.ndarray]]:
    params, _, loss = w.step(*w.args())
    return float(loss), leaves(params)


def other_step(framework: str, w: workloads.Workload) -> tuple[float, dict[str, np.ndarray]]:
    if framework == "numpy":
        model = hand_numpy.make(w)
        return model.step(w.x, w.y), leaves(model.params)
    pytest.importorskip(framework)
    module = importlib.import_module(f"benchmarks.{framework}_ref")
    model = module.make(w)
    loss = model.step(*model.prepare(w.x, w.y))
    return loss, leaves(model.params())


def assert_same_step(w: workloads.Workload, loss: float, new: dict, ref_loss: float,
                     ref: dict) -> None:
    old = leaves(w.params)
    assert list(new) == list(ref) == list(old)
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-4)
    # the updates lr * grad: compared against the largest update of the whole model,
    # because some gradients are zero by symmetry (the key bias under softmax)
    scale = max(np.abs(ref[k] - old[k]).max() for k in ref)
    assert scale > 1e-3  # the step really moves the weights
    for k in ref:
        np.testing.assert_allclose(new[k], ref[k], rtol=1e-4, atol=1e-6, err_msg=k)
        np.testing.assert_allclose(new[k] - old[k], ref[k] - old[k], rtol=1e-3,
                                   atol=1e-4 * scale, err_msg=f"update of {k}")


@pytest.mark.parametrize("framework", ["numpy", "torch", "jax"])
@pytest.mark.parametrize("name", workloads.WORKLOADS)
def test_one_step_equals_pyasgs(name, framework):
    w = workloads.build(name, **SMALL[name])
    ref_loss, ref = pyasg_step(w)
    loss, new = other_step(framework, w)
    assert_same_step(w, loss, new, ref_loss, ref)


def test_pyasg_w1_loss_is_cross_entropy_by_hand():
    # an anchor outside all the frameworks: the first loss from the formula itself
    w = workloads.mlp(batch=5, sizes=(4, 3, 2))
    p, h = w.params, w.x
    h = np.maximum(h @ p["0"]["weight"].T + p["0"]["bias"], 0)
    logits = (h @ p["2"]["weight"].T + p["2"]["bias"]).astype(np.float64)
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    expected = -logp[np.arange(5), w.y].mean()
    np.testing.assert_allclose(pyasg_step(w)[0], expected, rtol=1e-5)


@settings(max_examples=10, deadline=None)
@given(batch=st.integers(1, 6), sizes=st.lists(st.integers(1, 7), min_size=2, max_size=4),
       seed=st.integers(0, 2**16))
def test_hand_numpy_mlp_matches_pyasg_for_any_sizes(batch, sizes, seed):
    w = workloads.mlp(batch=batch, sizes=sizes, lr=0.5, seed=seed)
    ref_loss, ref = pyasg_step(w)
    model = hand_numpy.make(w)
    loss = model.step(w.x, w.y)
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-4)
    for k, v in leaves(model.params).items():
        np.testing.assert_allclose(v, ref[k], rtol=1e-4, atol=1e-6, err_msg=k)


def test_unknown_workload_and_bad_sizes_raise_pyasg_errors():
    with pytest.raises(PyasgError, match="W9"):
        workloads.build("W9")
    with pytest.raises(PyasgError, match="divisible by 4"):
        workloads.cnn(image=10)
    with pytest.raises(PyasgError, match="multiple of heads"):
        workloads.transformer(d_model=10, heads=4)


@pytest.mark.parametrize("module", ["workloads", "hand_numpy", "run", "torch_ref", "jax_ref"])
def test_docstring_examples(module):
    if module in ("torch_ref", "jax_ref"):
        pytest.importorskip(module.split("_")[0])
    mod = importlib.import_module(f"benchmarks.{module}")
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


def test_quick_run_of_w1_writes_json_and_markdown(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--only", "W1", "--no-plot",
         "--out", str(tmp_path), "--tag", "test"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    [path] = tmp_path.glob("cpu-*-test.json")
    results = json.loads(path.read_text())
    assert list(results["workloads"]) == ["W1"]
    frames = results["workloads"]["W1"]["frameworks"]
    expected = {"pyasg", "numpy"} | {f for f in ("torch", "jax")
                                      if f not in results["skipped"]}
    assert set(frames) == expected
    for r in frames.values():
        assert r["median_ms"] > 0 and r["first_call_s"] > 0 and r["steps"] == 3
        np.testing.assert_allclose(r["first_loss"], frames["pyasg"]["first_loss"], rtol=1e-4)
    for fw in ("pyasg", "numpy"):  # the new params at least are held
        assert frames[fw]["held_bytes"] > 0 and frames[fw]["step_peak_bytes"] >= 0
    assert results["machine"]["threads"] == 2
    assert results["machine"]["env"]["OPENBLAS_NUM_THREADS"] == "2"
    assert "W1" in path.with_suffix(".md").read_text()
    assert "pyasg (numpy)" in proc.stdout
    assert not list(tmp_path.glob("*.png"))  # --no-plot


def test_unknown_workload_on_the_command_line_is_an_argument_error(capsys):
    with pytest.raises(SystemExit) as e:
        run.main(["--only", "W1,W7"])
    assert e.value.code == 2
    assert "W7" in capsys.readouterr().err


def test_plot_writes_a_png_for_workloads_with_different_frameworks(tmp_path):
    pytest.importorskip("matplotlib")
    frame = {"median_ms": 2.0}
    results = {"date": "2000-01-01", "machine": {"threads": 2, "cpu": "test cpu"},
               "workloads": {"W1": {"frameworks": {"pyasg": frame, "numpy": {"median_ms": 1.0}}},
                             "W3": {"frameworks": {"pyasg": frame}}}}
    message = run.plot(results, tmp_path / "p.png")
    assert "p.png" in message
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
