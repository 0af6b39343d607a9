"""The runnable examples (pyasg/examples): each learns, the digits ones reach their stated
test accuracy at default settings, their data are what they claim, and each runs as a script.

Loss factors below were chosen from runs over seeds 0-4 at the step counts given: the
smallest first_loss / final_loss seen is noted next to each, well above the factor asked.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from wgpu_util import WGPU, require_wgpu

import pyasg
from pyasg.errors import PyasgError

EXAMPLES = Path(__file__).resolve().parents[1] / "pyasg" / "examples"

# name: (reduced steps, factor the loss must fall by). In comments: the smallest factor
# seen over seeds 0-4 at that step count. Minibatch examples report one batch's loss,
# which is noisy, hence their lower factors.
LEARNS = {
    "linear_regression": (30, 50),        # 360
    "xor": (100, 30),                     # 246
    "spiral": (150, 10),                  # 47
    "patterns": (200, 2),                 # 5.8
    "digits_mlp": (200, 4),               # 9.7
    "digits_cnn": (100, 5),               # 23
    "transformer_classifier": (100, 5),   # 17
    "char_rnn": (40, 1.4),                # 1.64
}


def run(name: str, *argv: str) -> tuple[dict[str, float], list[str]]:
    """Example `name`'s metrics and the lines it printed (stdout only)."""
    module = importlib.import_module(f"pyasg.examples.{name}")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        metrics = module.main(list(argv))
    return metrics, out.getvalue().splitlines()


@pytest.mark.parametrize("name", sorted(LEARNS))
def test_example_loss_falls_by_its_factor_at_reduced_steps(name):
    steps, factor = LEARNS[name]
    compiled = []
    unsubscribe = pyasg.subscribe(
        lambda e: compiled.append(e.name) if e.kind == "forward" else None, pyasg.GraphReady)
    try:
        metrics, lines = run(name, "--steps", str(steps), "--seed", "0")
    finally:
        unsubscribe()
    # one training step, traced and compiled once, run `steps` times
    assert compiled.count(f"{name}_train_step") == 1, compiled
    assert all(isinstance(v, float) and np.isfinite(v) for v in metrics.values()), metrics
    assert metrics["final_loss"] <= metrics["first_loss"] / factor, metrics
    # the final metric is the last thing printed
    assert lines[-1].startswith(f"{name}: first_loss "), lines[-1]


@pytest.mark.parametrize("name", sorted(LEARNS))
def test_example_follows_the_contract(name):
    from pyasg.examples import describe

    module = importlib.import_module(f"pyasg.examples.{name}")
    first_line = module.__doc__.strip().splitlines()[0]
    assert describe(name) == first_line and first_line.endswith("."), first_line
    source = (EXAMPLES / f"{name}.py").read_text()
    assert 'if __name__ == "__main__":\n    main()' in source
    assert "from ." not in source  # absolute imports, so the file runs as a script
    with pytest.raises(SystemExit) as exc:  # --steps must be >= 1: argparse exits with 2
        with contextlib.redirect_stderr(io.StringIO()):
            module.main(["--steps", "0"])
    assert exc.value.code == 2


def test_same_seed_same_run_other_seed_other_run():
    a, _ = run("spiral", "--steps", "20", "--seed", "3")
    b, _ = run("spiral", "--steps", "20", "--seed", "3")
    c, _ = run("spiral", "--steps", "20", "--seed", "4")
    assert a == b
    assert a["first_loss"] != c["first_loss"]


# --------------------------------------------------------------------------- per example


def test_linear_regression_finds_the_least_squares_line():
    from pyasg.examples.linear_regression import make_data

    metrics, lines = run("linear_regression", "--seed", "0")
    x, y = make_data(256, seed=0)
    # the exact minimiser of the mean squared error, by numpy's least squares
    (w, b), *_ = np.linalg.lstsq(np.hstack([x, np.ones_like(x)]).astype(np.float64),
                                 y[:, 0].astype(np.float64), rcond=None)
    assert abs(metrics["weight"] - w) < 1e-3 and abs(metrics["bias"] - b) < 1e-3, (metrics, w, b)
    assert abs(w - 2.0) < 0.05 and abs(b - 1.0) < 0.05  # and that line is y = 2x + 1
    # the residual variance is the noise's, 0.05²
    assert metrics["final_loss"] == pytest.approx(np.mean((x * w + b - y) ** 2), rel=1e-3)
    printed = lines[-1].split()
    assert float(printed[printed.index("weight") + 1]) == pytest.approx(w, abs=1e-2)
    assert float(printed[printed.index("bias") + 1]) == pytest.approx(b, abs=1e-2)


def test_xor_prints_its_four_predictions_and_gets_all_right():
    metrics, lines = run("xor")
    assert metrics["accuracy"] == 1.0
    predictions = {line.split(" = ")[0]: float(line.split(" = ")[1]) for line in lines[:4]}
    assert set(predictions) == {"xor(0, 0)", "xor(0, 1)", "xor(1, 0)", "xor(1, 1)"}
    for inputs, p in predictions.items():
        a, b = int(inputs[4]), int(inputs[7])
        assert abs(p - (a ^ b)) < 0.1, (inputs, p)


def test_spiral_is_cs231n_spiral_and_is_learned():
    from pyasg.examples.spiral import make_spiral

    x, y = make_spiral(100, 3, seed=0)
    radius = np.hypot(x[:, 0], x[:, 1])
    np.testing.assert_allclose(radius, np.tile(np.linspace(0, 1, 100), 3), atol=1e-6)
    assert np.bincount(y).tolist() == [100, 100, 100]
    metrics, _ = run("spiral")
    assert metrics["accuracy"] >= 0.97, metrics


def test_patterns_are_stripes_and_checkerboards():
    from pyasg.examples.patterns import make_patterns

    x, y = make_patterns(400, seed=5, noise=0.0)
    img = x[:, 0]
    row_const = (img == img[:, :, :1]).all(axis=(1, 2))     # every row one colour
    col_const = (img == img[:, :1, :]).all(axis=(1, 2))     # every column one colour
    shifted_down = np.roll(img, 1, axis=1)  # diagonal stripes: constant along a diagonal
    diag = ((img[:, 1:, 1:] == shifted_down[:, 1:, :-1]).all(axis=(1, 2))
            | (img[:, 1:, :-1] == shifted_down[:, 1:, 1:]).all(axis=(1, 2)))
    # a checkerboard is the product of its first column and its first row (±1 values)
    outer = img[:, :, :1] * img[:, :1, :] * img[:, :1, :1]
    checker = (img == outer).all(axis=(1, 2)) & ~row_const & ~col_const
    np.testing.assert_array_equal(row_const & ~col_const, y == 0)
    np.testing.assert_array_equal(col_const & ~row_const, y == 1)
    assert diag[y == 2].all() and not checker[y == 2].any()
    assert checker[y == 3].all()
    assert np.bincount(y, minlength=4).min() > 60


def test_patterns_generalise_to_new_images():
    metrics, _ = run("patterns")
    assert metrics["test_accuracy"] >= 0.95, metrics


def test_digits_split_is_stratified_disjoint_and_seeded():
    from sklearn.datasets import load_digits

    from pyasg.examples.digits_mlp import load_digits_split

    digits = load_digits()
    x_train, y_train, x_test, y_test = load_digits_split(seed=0)
    assert len(y_train) + len(y_test) == len(digits.target) == 1797
    counts = np.bincount(digits.target)
    assert np.all(np.abs(np.bincount(y_test) - counts / 4) <= 0.5)  # a quarter of each class
    rows = {tuple(r) for r in x_train} | {tuple(r) for r in x_test}
    assert len(rows) == len({tuple(r) for r in digits.data / 16.0})  # every image, once
    train_rows = {tuple(r) for r in x_train}
    assert not any(tuple(r) in train_rows for r in x_test)
    other = load_digits_split(seed=1)
    assert not np.array_equal(other[3], y_test) or not np.array_equal(other[2], x_test)


def test_digits_without_sklearn_raise_a_pyasg_error_naming_the_install(monkeypatch):
    from pyasg.examples.digits_mlp import load_digits_split

    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # import fails
    with pytest.raises(PyasgError, match="pip install scikit-learn"):
        load_digits_split()


def test_digits_mlp_default_reaches_95_percent_test_accuracy():
    metrics, lines = run("digits_mlp")
    assert metrics["test_accuracy"] >= 0.95, metrics
    assert "test_accuracy" in lines[-1]


def test_digits_cnn_default_reaches_97_percent_test_accuracy():
    metrics, _ = run("digits_cnn")
    assert metrics["test_accuracy"] >= 0.97, metrics


def test_transformer_task_needs_order_and_is_learned():
    from pyasg.examples.transformer_classifier import A, B, make_sequences

    ids, labels = make_sequences(500, seed=2)
    pos_a, pos_b = (ids == A).argmax(axis=1), (ids == B).argmax(axis=1)
    np.testing.assert_array_equal(labels, pos_a < pos_b)
    # same token counts in both classes: a bag of tokens cannot tell them apart
    assert ((ids == A).sum(1) == 1).all() and ((ids == B).sum(1) == 1).all()
    metrics, _ = run("transformer_classifier", "--steps", "100")
    assert metrics["test_accuracy"] >= 0.9, metrics  # chance is 0.5 (seeds 0-4: >= 0.979)


def test_transformer_head_sees_the_sequence_only_through_attention():
    """With every attention output projection zeroed, the CLS position's logits are the
    same for all inputs: what the head reads about the sequence came through attention."""
    from pyasg.examples.transformer_classifier import Classifier, make_sequences

    model = Classifier()
    params = model.init(pyasg.random.key(0))
    ids, _ = make_sequences(16, seed=0)
    logits = np.asarray(model(params, ids))
    assert np.ptp(logits, axis=0).max() > 1e-3  # it does depend on the input...
    for block in params["blocks"].values():
        block["attn"]["w_o"] = {k: np.zeros_like(v) for k, v in block["attn"]["w_o"].items()}
    logits = np.asarray(model(params, ids))
    assert np.ptp(logits, axis=0).max() < 1e-6  # ...only through attention


# --------------------------------------------------------------------------- as scripts


@pytest.mark.parametrize("name", sorted(LEARNS))
def test_example_runs_as_a_script(name):
    done = subprocess.run([sys.executable, str(EXAMPLES / f"{name}.py"), "--steps", "2"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines()[-1].startswith(f"{name}: first_loss "), done.stdout


# --------------------------------------------------------------------------- wgpu


@WGPU
@pytest.mark.parametrize("name,steps", [("xor", 30), ("digits_cnn", 10)])
def test_example_on_wgpu_follows_numpy(name, steps):
    require_wgpu()
    cpu, _ = run(name, "--steps", str(steps))
    gpu, _ = run(name, "--steps", str(steps), "--backend", "wgpu")
    assert gpu["first_loss"] == pytest.approx(cpu["first_loss"], rel=1e-5)
    assert gpu["final_loss"] == pytest.approx(cpu["final_loss"], rel=1e-2)
