"""The CPU benchmark computes one and the same training step in every framework, and its
command line runs and writes its results. Timings are never asserted."""

from __future__ import annotations

import contextlib
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

from benchmarks import hand_numpy, lm, lm_bench, run, workloads
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


# --------------------------------------------------------------------------- the LM step
# benchmarks/lm.py's GPT-like LM (python -m benchmarks.gpu --lm): pyasg, PyTorch and JAX
# compute the same AdamW training step. In float64, so that AdamW's first step,
# g / (|g| + eps), is not noise where a gradient is zero up to rounding (w_k's bias).

LM_TINY = "B2-T8-d16-H2-L1"
LM_STEPS = 3


def _x64():  # noqa: ANN202
    """JAX's 64-bit mode for a `with` block (jax.enable_x64 in newer JAX)."""
    import jax

    if hasattr(jax, "enable_x64"):
        return jax.enable_x64(True)
    from jax.experimental import enable_x64

    return enable_x64()


def _pyasg_lm_steps(config: str, steps: int) -> tuple[list[float], list[dict]]:
    s = lm.build_lm_step(config, "numpy", dtype="float64")
    params, state = s.params, s.opt_state
    losses, trees = [], []
    for _ in range(steps):
        params, state, loss = s.step(params, state, s.ids, s.targets)
        losses.append(float(loss))
        trees.append({k: np.asarray(v) for k, v in lm.flat_params(params).items()})
    return losses, trees


def _float64(params: dict) -> dict:
    return {k: _float64(v) if isinstance(v, dict) else np.asarray(v, np.float64)
            for k, v in params.items()}


def _other_lm_steps(framework: str, config: str, steps: int) -> tuple[list[float], list[dict]]:
    params = _float64(lm.init_params(config))
    batch = lm.make_batch(config)
    if framework == "torch":
        torch = pytest.importorskip("torch")
        from benchmarks import lm_torch

        model = lm_torch.TorchLMStep(config, params, dtype=torch.float64)
        run = contextlib.nullcontext()
    else:
        pytest.importorskip("jax")
        pytest.importorskip("optax")
        import jax.numpy as jnp

        from benchmarks import lm_jax

        run = _x64()
    losses, trees = [], []
    with run:
        if framework == "jax":
            model = lm_jax.JaxLMStep(config, params, dtype=jnp.float64)
        args = model.prepare(*batch)
        for _ in range(steps):
            losses.append(float(model.step(*args)))
            trees.append({k: np.asarray(v) for k, v in lm.flat_params(model.params()).items()})
    return losses, trees


@pytest.mark.parametrize("framework", ["torch", "jax"])
def test_lm_adamw_steps_equal_pyasgs_in_float64(framework):
    ref_losses, ref = _pyasg_lm_steps(LM_TINY, LM_STEPS)
    losses, trees = _other_lm_steps(framework, LM_TINY, LM_STEPS)
    old = {k: np.asarray(v, np.float64) for k, v in lm.flat_params(lm.init_params(LM_TINY)).items()}
    np.testing.assert_allclose(losses[0], ref_losses[0], rtol=1e-5)
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-5)
    assert ref_losses[2] < ref_losses[0]  # it learns
    for step in (0, LM_STEPS - 1):  # after one and after three steps
        assert list(trees[step]) == list(ref[step]) == list(old)
        for k, want in ref[step].items():
            assert trees[step][k].dtype == np.float64, k
            np.testing.assert_allclose(trees[step][k], want, rtol=0, atol=1e-6,
                                       err_msg=f"{k} after {step + 1} step(s)")
    # AdamW's first step moves every weight by about lr (3e-4): the check sees the update
    moved = max(np.abs(ref[0][k] - old[k]).max() for k in old)
    assert 2e-4 < moved < 4e-4


def test_lm_params_are_layers_of_pyasg_nn_and_counted():
    c = lm.parse_config(LM_TINY)
    params = lm.flat_params(lm.init_params(c))
    assert sum(v.size for v in params.values()) == c.n_params()
    assert params["tok.weight"].shape == (256, 16) and params["pos.weight"].shape == (8, 16)
    assert params["blocks.0.attn.w_q.weight"].shape == (16, 16)
    assert params["head.weight"].shape == (256, 16)
    assert set(lm.check_names(c)) <= set(params)
    ids, targets = lm.make_batch(c)
    assert ids.shape == targets.shape == (2, 8) and ids.dtype == np.int32


def test_lm_config_names():
    assert [lm.parse_config(n).name for n in lm.CONFIGS] == list(lm.CONFIGS)
    c = lm.parse_config("B8-T1024-d768-H12-L4")
    assert (c.batch, c.seq, c.d_model, c.heads, c.layers, c.vocab) == (8, 1024, 768, 12, 4, 256)
    assert lm.parse_config("B1-T2-d4-H2-L1-V16").vocab == 16
    with pytest.raises(PyasgError, match="form"):
        lm.parse_config("B16-T64")
    with pytest.raises(PyasgError, match="multiple of heads"):
        lm.parse_config("B1-T2-d10-H4-L1")


def _fake_result(loss: float, shift: float) -> tuple[dict, dict]:
    result = {"first_loss": loss, "median_ms": 2.0, "min_ms": 1.5, "max_ms": 3.0,
              "tflops": 1.0, "first_call_s": 1.0, "device": "test"}
    return result, {"head.bias": np.full(4, 0.5 + shift, np.float32)}


def test_lm_check_marks_a_mismatch_and_the_table_shows_it():
    ref_result, ref_after = _fake_result(5.0, 0.0)
    ref = {"framework": "pyasg", "result": ref_result, "after_one": ref_after}
    frames = {"pyasg": dict(ref_result, check=lm_bench.check(ref_result, ref_after, None))}
    cases = {"torch": (5.0 + 1e-5, 1e-6), "compile": (5.01, 0.0), "jax": (5.0, 1e-4)}
    for fw, (loss, shift) in cases.items():
        result, after = _fake_result(loss, shift)
        result["check"] = lm_bench.check(result, after, ref)
        frames[fw] = result
    assert frames["torch"]["check"]["status"] == "ok"  # within 1e-4 and 1e-5
    assert frames["compile"]["check"]["status"] == "MISMATCH"  # the loss
    assert frames["jax"]["check"]["status"] == "MISMATCH"  # the params
    assert frames["jax"]["check"]["params"]["head.bias"]["max_abs_diff"] > 9e-5
    skipped = {"pyasg": frames["pyasg"], "jax": {"skipped": "jax is not installed"}}
    text = lm_bench.table({"configs": {"A": {"frameworks": frames},
                                       "B": {"frameworks": skipped}}})
    rows = text.splitlines()[2:]
    assert len(rows) == 6  # a failing framework is marked, never dropped
    assert "reference" in rows[0] and "ok (loss" in rows[1]
    assert "MISMATCH" in rows[2] and "MISMATCH" in rows[3]
    assert "skipped: jax is not installed" in rows[5]


@pytest.mark.parametrize("argv, message", [
    (["--lm", "--frameworks", "pyasg,tf"], "unknown framework 'tf'"),
    (["--lm", "--configs", "B16-T64"], "not of the form"),
    (["--configs", LM_TINY], "go with --lm"),
])
def test_lm_command_line_errors_are_argument_errors(argv, message, capsys):
    pytest.importorskip("wgpu")
    from benchmarks import gpu

    with pytest.raises(SystemExit) as e:
        gpu.main(argv)
    assert e.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("module", ["lm", "lm_bench", "lm_torch", "lm_jax"])
def test_lm_docstring_examples(module):
    needs = {"lm_torch": ["torch"], "lm_jax": ["jax", "optax"]}.get(module, [])
    for name in needs:
        pytest.importorskip(name)
    mod = importlib.import_module(f"benchmarks.{module}")
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


@pytest.mark.wgpu
def test_lm_quick_run_of_pyasg_on_wgpu_writes_json(tmp_path):
    from wgpu_util import require_wgpu

    require_wgpu()
    out = tmp_path / "lm.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.gpu", "--lm", "--quick", "--frameworks", "pyasg",
         "--configs", LM_TINY, "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["quick"] and results["frameworks"] == ["pyasg"]
    assert results["machine"]["wgpu_adapter"] and results["machine"]["date"]
    r = results["configs"][LM_TINY]["frameworks"]["pyasg"]
    assert r["median_ms"] > 0 and r["min_ms"] <= r["median_ms"] <= r["max_ms"]
    assert r["first_call_s"] > 0 and r["dispatches"] > 0 and r["jit_cache_size"] == 1
    assert r["check"]["status"] == "reference"
    # the GPU's first loss is numpy's (float32, same params and batch)
    s = lm.build_lm_step(LM_TINY, "numpy")
    np.testing.assert_allclose(r["first_loss"], float(s.step(*s.args())[2]), rtol=1e-5)
    assert LM_TINY in proc.stdout and "pyasg wgpu" in proc.stdout
