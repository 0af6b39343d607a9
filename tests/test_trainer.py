"""`pyasg.Trainer` (pyasg/train/): the loop, on the numpy backend with small models.

- fit lowers the loss (regression, classification), with validation metrics that equal
  the metrics computed by hand over the whole validation set;
- gradient accumulation over k micro-batches gives the updates of one k-times bigger
  batch (float64, any sizes: hypothesis), clipping by norm and by value is applied;
- early stopping stops; a run interrupted and resumed from its checkpoints ends with
  the same parameters, optimiser state and random key, bit for bit, as one that never
  stopped (dropout, shuffling, a schedule, accumulation, early stopping, BatchNorm);
- one `StepDone` per step (validation values in its metrics), callbacks in order, the
  CSV log's rows, TensorBoard event files read back (when tensorboardX is installed);
- bad arguments are `PyasgError`s (the whole API fuzz covers the constructor too).
"""

from __future__ import annotations

import csv
import glob
import math
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wgpu_util import require_wgpu

import pyasg
from pyasg import losses, nn, optim
from pyasg.data import ArrayDataset, DataLoader
from pyasg.errors import CheckpointError, PyasgError
from pyasg.metrics import EarlyStopping, accuracy
from pyasg.train import Callback, CSVLogger, LambdaCallback, TrainerError
from pyasg.train.callbacks import HOOKS

# --------------------------------------------------------------------------- data, models


def regression(n: int = 64, seed: int = 0, dtype: str = "float32") -> tuple:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype(dtype)
    y = (x @ np.array([[1.0], [-2.0], [0.5]]) + 0.3).astype(dtype)
    return x, y


def blobs(n: int = 96, seed: int = 0) -> tuple:
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 2.0], [2.0, -1.0], [-2.0, -1.0]], np.float32)
    y = rng.integers(0, 3, size=n)
    x = (centres[y] + 0.5 * rng.normal(size=(n, 2))).astype(np.float32)
    return x, y.astype(np.int64)


def loader(x: np.ndarray, y: np.ndarray, batch_size: int, **kwargs: object) -> DataLoader:
    return DataLoader(ArrayDataset(x, y), batch_size=batch_size, **kwargs)


def mlp(dropout: float = 0.0) -> nn.Module:
    layers = [nn.Linear(2, 16), nn.ReLU()]
    if dropout:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers, nn.Linear(16, 3))


def make(model: nn.Module, loss: object, opt: object, data: object, *args: object,
         **kwargs: object) -> pyasg.Trainer:
    kwargs.setdefault("progress", False)
    return pyasg.Trainer(model, loss, opt, data, *args, **kwargs)


def leaves(tree: object) -> list[np.ndarray]:
    return [np.asarray(a) for a in pyasg.tree_leaves(tree)]


def same_bits(a: object, b: object) -> bool:
    la, lb = leaves(a), leaves(b)
    return len(la) == len(lb) and all(
        x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes()
        for x, y in zip(la, lb))


class Recorder(Callback):
    """Every hook call, as (hook, step) pairs, and the step logs."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self.steps: list[dict] = []
        for hook in HOOKS:
            setattr(self, hook, self._record(hook))

    def _record(self, hook: str):  # noqa: ANN202
        def record(trainer: pyasg.Trainer, *args: object) -> None:
            self.calls.append((hook, trainer.step))
            if hook == "on_step_end":
                self.steps.append(args[0])  # type: ignore[arg-type]
        return record


class Interrupt(Exception):
    """Stands for a crash in the middle of a run."""


def interrupt_at(step: int) -> Callback:
    def on_step_end(trainer: pyasg.Trainer, logs: dict) -> None:
        if logs["step"] == step:
            raise Interrupt(step)
    return LambdaCallback(on_step_end=on_step_end)


# --------------------------------------------------------------------------- fit


def test_fit_lowers_the_loss_on_a_regression():
    x, y = regression()
    trainer = make(nn.Linear(3, 1), losses.mse_loss, optim.Adam(lr=0.05),
                   loader(x, y, 16, shuffle=True, seed=1))
    logs = trainer.fit(epochs=40)
    assert trainer.epoch == 40 and trainer.step == 40 * 4
    assert [h["epoch"] for h in trainer.history] == list(range(40))
    assert trainer.history[-1]["loss"] < trainer.history[0]["loss"] / 100
    assert logs["step"] == 160 and logs["loss"] < 1e-3
    np.testing.assert_allclose(trainer.params["weight"], [[1.0, -2.0, 0.5]], atol=0.02)
    assert trainer._steps.compiled["train"].cache_size == 1  # compiled once, run 160 times


def test_fit_classifies_and_validation_metrics_are_those_of_the_whole_set():
    x, y = blobs(160)
    x_val, y_val = blobs(50, seed=1)
    model = mlp()
    trainer = make(model, losses.cross_entropy, optim.Adam(lr=0.03),
                   loader(x, y, 32, shuffle=True, seed=0), loader(x_val, y_val, 16),
                   metrics={"accuracy": accuracy}, predict="argmax")
    trainer.fit(epochs=8)
    last = trainer.history[-1]
    assert last["val_accuracy"] > 0.9 and last["val_loss"] < trainer.history[0]["val_loss"]
    logits = np.asarray(model(trainer.params, x_val))
    assert last["val_accuracy"] == accuracy(y_val, logits.argmax(axis=1))
    full = float(losses.cross_entropy(logits, y_val))  # batches of 16, 16, 16, 2
    assert math.isclose(last["val_loss"], full, rel_tol=1e-5)
    assert trainer.evaluate() == {"loss": last["val_loss"], "accuracy": last["val_accuracy"]}
    assert trainer.val_logs == {"val_loss": last["val_loss"],
                                "val_accuracy": last["val_accuracy"]}


def test_a_loss_of_params_and_batch_trains_without_a_model():
    x, y = regression()

    def loss(params: dict, batch: tuple) -> object:
        xb, yb = batch
        return pyasg.mean((xb @ params["w"] + params["b"] - yb) ** 2) \
            + 1e-4 * pyasg.sum(params["w"] ** 2)

    start = {"w": np.zeros((3, 1), np.float32), "b": np.zeros(1, np.float32)}
    trainer = make(None, loss, optim.SGD(lr=0.1), loader(x, y, 16), loss_takes="params",
                   params=start)
    trainer.fit(epochs=30)
    assert trainer.history[-1]["loss"] < 1e-3
    assert not start["w"].any()  # the trainer trained its own copy
    np.testing.assert_allclose(trainer.params["w"][:, 0], [1.0, -2.0, 0.5], atol=0.01)


@pytest.mark.wgpu
@pytest.mark.parametrize("accumulate", [1, 2])
def test_a_trainer_on_wgpu_follows_the_numpy_one(accumulate):
    require_wgpu()
    x, y = blobs(64)
    runs = {}
    for backend in ("numpy", "wgpu"):  # donated parameters and optimiser state on both
        trainer = make(mlp(dropout=0.1), losses.cross_entropy, optim.Adam(lr=0.02),
                       loader(x, y, 16, shuffle=True, seed=0), accumulate=accumulate,
                       clip_norm=1.0, backend=backend)
        runs[backend] = [trainer.fit(steps=s)["loss"] for s in range(1, 9)]
    np.testing.assert_allclose(runs["wgpu"], runs["numpy"], rtol=1e-4)


def test_donating_changes_nothing_but_memory():
    x, y = blobs(64)
    runs = [make(mlp(), losses.cross_entropy, optim.AdamW(lr=0.01), loader(x, y, 16),
                 donate=donate) for donate in (True, False)]
    for trainer in runs:
        trainer.fit(steps=10)
    assert same_bits(runs[0].params, runs[1].params)
    assert same_bits(runs[0].opt_state, runs[1].opt_state)


# --------------------------------------------------------------------------- accumulation, clipping


@settings(max_examples=8)
@given(n=st.integers(3, 20), batch=st.integers(1, 4), k=st.integers(1, 4))
def test_accumulating_k_micro_batches_equals_one_big_batch(n, batch, k):
    x, y = regression(n, seed=n, dtype="float64")
    model = nn.Sequential(nn.Linear(3, 4, dtype="float64"), nn.Tanh(),
                          nn.Linear(4, 1, dtype="float64"))

    def run(batch_size: int, accumulate: int) -> pyasg.Trainer:
        trainer = make(model, losses.mse_loss, optim.SGD(lr=0.1, momentum=0.9),
                       loader(x, y, batch_size), accumulate=accumulate)
        trainer.fit(epochs=2)
        return trainer

    small, big = run(batch, k), run(batch * k, 1)
    assert small.step == big.step == 2 * math.ceil(n / (batch * k))
    for a, b in zip(leaves(small.params), leaves(big.params)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    for h_small, h_big in zip(small.history, big.history):
        assert math.isclose(h_small["loss"], h_big["loss"], rel_tol=1e-12)


def test_clipping_by_norm_and_by_value_is_applied():
    x, y = regression(32)
    y = 100 * y  # large gradients
    model = nn.Linear(3, 1)
    params = model.init(pyasg.random.key(0))
    grads = pyasg.grad(lambda p: losses.mse_loss(model(p, x), y))(params)
    norm = math.sqrt(sum(float((g.astype(np.float64) ** 2).sum()) for g in leaves(grads)))

    def one_step(**clip: float) -> tuple:
        trainer = make(model, losses.mse_loss, optim.SGD(lr=1.0), loader(x, y, 32),
                       params=params, **clip)
        logs = trainer.fit(steps=1)
        change = [a - b for a, b in zip(leaves(trainer.params), leaves(params))]
        return logs, change

    logs, change = one_step(clip_norm=1e-3)
    assert math.isclose(logs["grad_norm"], norm, rel_tol=1e-5)
    moved = math.sqrt(sum(float((c.astype(np.float64) ** 2).sum()) for c in change))
    assert 0.99e-3 < moved <= 1.0001e-3
    logs, change = one_step(clip_value=1e-4)
    assert "grad_norm" not in logs
    assert max(float(np.abs(c).max()) for c in change) == pytest.approx(1e-4, rel=1e-3)


# --------------------------------------------------------------------------- early stopping


@pytest.mark.parametrize("validate", [True, False])
def test_early_stopping_stops_when_the_monitored_value_stops_improving(validate):
    x, y = blobs(32)
    stopper = EarlyStopping(patience=2)
    val = loader(x, y, 16) if validate else None
    trainer = make(mlp(), losses.cross_entropy, optim.SGD(lr=0.0), loader(x, y, 16), val,
                   early_stopping=stopper)  # lr 0: nothing ever improves after epoch 0
    trainer.fit(epochs=50)
    assert stopper.stopped and trainer.epoch == 3 and trainer.step == 6
    assert stopper.best_step == 2 and stopper.stopped_step == 6
    assert trainer.monitor == ("val_loss" if validate else "loss")
    assert trainer.fit(epochs=50)["step"] == 6 and trainer.step == 6  # stays stopped


# --------------------------------------------------------------------------- resume


def _resumable(directory: object, data_seed: int | None, **kwargs: object) -> pyasg.Trainer:
    x, y = blobs(45)
    x_val, y_val = blobs(20, seed=7)
    opt = optim.Adam(schedule=optim.WarmupCosineAnnealingLR(0.02, warmup_steps=3, T_max=30))
    return make(mlp(dropout=0.2), losses.cross_entropy, opt,
                loader(x, y, 8, shuffle=True, seed=data_seed), loader(x_val, y_val, 10),
                metrics={"accuracy": accuracy}, predict="argmax", accumulate=2,
                clip_norm=1.0, early_stopping=EarlyStopping(patience=100), seed=4,
                checkpoints=directory, **kwargs)


@settings(max_examples=5)
@given(data=st.data())
def test_a_run_interrupted_and_resumed_ends_bit_for_bit_as_one_never_stopped(
        tmp_path_factory, data):
    # 45 samples in batches of 8: 6 micro-batches an epoch, 3 updates; 14 steps cross
    # four epoch ends, with validation at each. The crash comes after a checkpoint.
    steps = 14
    stop = data.draw(st.integers(2, steps - 1), label="stop")
    every = data.draw(st.integers(1, min(4, stop - 1)), label="every")
    straight = _resumable(None, data_seed=3)
    straight.fit(steps=steps)

    directory = tmp_path_factory.mktemp("ckpt")
    log = directory / "log.csv"
    first = _resumable(directory, data_seed=3, save_every=every,
                       callbacks=[interrupt_at(stop), CSVLogger(log)])
    with pytest.raises(Interrupt):
        first.fit(steps=steps)
    # a new process: new objects, a loader that draws its own shuffling seed
    second = _resumable(directory, data_seed=None, save_every=every, callbacks=[CSVLogger(log)])
    resumed = second.resume()
    assert resumed == (stop - 1) // every * every  # the crash came before step stop's save
    second.fit(steps=steps)

    assert second.step == straight.step == steps
    assert same_bits(second.params, straight.params)
    assert same_bits(second.opt_state, straight.opt_state)
    assert same_bits(second.rng, straight.rng)
    assert second.history == straight.history
    assert second.train_data.seed == 3
    rows = list(csv.DictReader(open(log)))
    assert [int(r["step"]) for r in rows] == list(range(1, steps + 1))


def test_a_stateful_model_resumes_exactly(tmp_path):
    x, y = blobs(48)
    model = nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))

    def trainer(**kwargs: object) -> pyasg.Trainer:
        return make(model, losses.cross_entropy, optim.SGD(lr=0.1, momentum=0.9),
                    loader(x, y, 12, shuffle=True, seed=0), loader(x, y, 24),
                    checkpoints=tmp_path, **kwargs)

    straight = make(model, losses.cross_entropy, optim.SGD(lr=0.1, momentum=0.9),
                    loader(x, y, 12, shuffle=True, seed=0), loader(x, y, 24))
    straight.fit(steps=10)
    with pytest.raises(Interrupt):
        trainer(save_every=3, callbacks=[interrupt_at(7)]).fit(steps=10)
    second = trainer()
    assert second.resume() == 6
    second.fit(steps=10)
    assert same_bits(second.params, straight.params)
    assert same_bits(second.model_state, straight.model_state)
    assert list(second.model_state) == ["1"]  # BatchNorm's running statistics


def test_resume_refuses_a_checkpoint_of_another_model(tmp_path):
    x, y = blobs(32)
    make(mlp(), losses.cross_entropy, optim.SGD(lr=0.1), loader(x, y, 16),
         checkpoints=tmp_path).fit(steps=2)
    other = nn.Sequential(nn.Linear(2, 5), nn.ReLU(), nn.Linear(5, 3))
    trainer = make(other, losses.cross_entropy, optim.SGD(lr=0.1), loader(x, y, 16),
                   checkpoints=tmp_path)
    with pytest.raises(CheckpointError, match="do not fit|is f32"):
        trainer.resume()
    pyasg.io.save_checkpoint(tmp_path / "ckpt-000000000009.safetensors",
                             pyasg.io.Checkpoint(9, trainer.params))
    with pytest.raises(CheckpointError, match="not a pyasg.train.Trainer checkpoint"):
        trainer.resume()
    assert make(mlp(), losses.cross_entropy, optim.SGD(lr=0.1), loader(x, y, 16),
                checkpoints=tmp_path / "none").resume() is None


# ----------------------------------------------------------------------- events, callbacks, logs


def test_every_step_publishes_step_done_and_the_run_ends_with_run_finished():
    x, y = blobs(40)
    seen: list = []
    unsubscribe = [pyasg.subscribe(seen.append, kind)
                   for kind in (pyasg.StepDone, pyasg.RunFinished)]
    recorder = Recorder()
    try:
        make(mlp(), losses.cross_entropy, optim.Adam(lr=0.01), loader(x, y, 16),
             loader(x, y, 20), callbacks=[recorder]).fit(epochs=2)
    finally:
        for stop in unsubscribe:
            stop()
    done = [e for e in seen if isinstance(e, pyasg.StepDone)]
    assert [e.step for e in done] == [1, 2, 3, 4, 5, 6]
    assert [e.loss for e in done] == [logs["loss"] for logs in recorder.steps]
    assert [sorted(e.metrics) for e in done] == [[], [], ["val_loss"]] * 2
    assert done[2].metrics["val_loss"] == recorder.steps[2]["val_loss"]
    finished = [e for e in seen if isinstance(e, pyasg.RunFinished)]
    assert len(finished) == 1 and finished[0].error is None


def test_callbacks_are_called_in_order(tmp_path):
    x, y = blobs(32)
    recorder = Recorder()
    trainer = make(mlp(), losses.cross_entropy, optim.SGD(lr=0.1), loader(x, y, 16),
                   loader(x, y, 32), callbacks=[recorder], checkpoints=tmp_path,
                   save_every=3)
    trainer.fit(epochs=2)
    assert recorder.calls == [
        ("on_fit_start", 0),
        ("on_epoch_start", 0), ("on_step_end", 1), ("on_step_end", 2),
        ("on_validation_end", 2), ("on_epoch_end", 2),
        ("on_epoch_start", 2), ("on_step_end", 3), ("on_checkpoint", 3), ("on_step_end", 4),
        ("on_validation_end", 4), ("on_epoch_end", 4), ("on_checkpoint", 4),
        ("on_fit_end", 4)]
    assert trainer.checkpoints.steps() == [3, 4]


def test_a_failing_run_calls_on_exception_and_reports_the_error():
    x, y = blobs(32)
    recorder = Recorder()
    seen: list = []
    unsubscribe = pyasg.subscribe(seen.append, pyasg.RunFinished)
    try:
        with pytest.raises(Interrupt):
            make(mlp(), losses.cross_entropy, optim.SGD(lr=0.1), loader(x, y, 16),
                 callbacks=[interrupt_at(2), recorder]).fit(steps=5)
    finally:
        unsubscribe()
    assert recorder.calls[-1] == ("on_exception", 2)
    assert "Interrupt" in seen[0].error


def test_the_csv_log_holds_one_row_per_step_with_the_step_logs(tmp_path):
    x, y = blobs(48)
    path = tmp_path / "runs" / "log.csv"
    recorder = Recorder()
    trainer = make(mlp(), losses.cross_entropy, optim.SGD(lr=0.1), loader(x, y, 16),
                   loader(x, y, 48), metrics=[accuracy], predict="argmax", clip_norm=5.0,
                   callbacks=[recorder, CSVLogger(path)])
    trainer.fit(epochs=2)
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["step", "epoch", "loss", "lr", "samples", "samples_per_s", "grad_norm",
                       "val_loss", "val_accuracy"] == trainer.columns
    assert len(rows) == 1 + 6
    for row, logs in zip(rows[1:], recorder.steps):
        values = dict(zip(rows[0], row))
        assert int(values["step"]) == logs["step"] and int(values["epoch"]) == logs["epoch"]
        for name in ("loss", "lr", "samples_per_s", "grad_norm"):
            assert float(values[name]) == logs[name]  # repr: read back exactly
        assert int(values["samples"]) == 16
        has_val = logs["step"] % 3 == 0
        assert (values["val_loss"] != "") == has_val
        if has_val:
            assert float(values["val_accuracy"]) == logs["val_accuracy"]
    trainer2 = make(mlp(), losses.mse_loss, optim.SGD(lr=0.1), loader(x, y, 16),
                    callbacks=[CSVLogger(path)])
    with pytest.raises(TrainerError, match="log to another file"):
        trainer2.fit(steps=1)


def _scalars(logdir: object) -> dict[str, dict[int, float]]:
    """The scalar summaries of every event file under `logdir`, read with tensorboardX's
    own protobuf definitions (TFRecord framing: length, its CRC, the record, its CRC)."""
    from tensorboardX.crc32c import crc32c
    from tensorboardX.proto.event_pb2 import Event

    def masked(data: bytes) -> int:
        crc = crc32c(data)
        return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF

    found: dict[str, dict[int, float]] = {}
    for name in sorted(glob.glob(f"{logdir}/**/events.out.tfevents.*", recursive=True)):
        data = open(name, "rb").read()
        at = 0
        while at < len(data):
            header = data[at:at + 8]
            (length,) = struct.unpack("<Q", header)
            assert struct.unpack("<I", data[at + 8:at + 12])[0] == masked(header)
            record = data[at + 12:at + 12 + length]
            assert struct.unpack("<I", data[at + 12 + length:at + 16 + length])[0] == \
                masked(record)
            at += 16 + length
            event = Event.FromString(record)
            for value in event.summary.value:
                found.setdefault(value.tag, {})[event.step] = value.simple_value
    return found


def test_tensorboard_event_files_read_back(tmp_path):
    pytest.importorskip("tensorboardX")
    from pyasg.train import TensorBoardLogger

    x, y = blobs(32)
    recorder = Recorder()
    make(mlp(), losses.cross_entropy, optim.SGD(lr=0.1), loader(x, y, 8), loader(x, y, 32),
         callbacks=[recorder, TensorBoardLogger(tmp_path / "tb")]).fit(epochs=2)
    scalars = _scalars(tmp_path / "tb")
    assert sorted(scalars) == ["loss", "lr", "samples", "samples_per_s", "val_loss"]
    assert scalars["loss"] == {logs["step"]: pytest.approx(logs["loss"], rel=1e-6)
                               for logs in recorder.steps}
    assert sorted(scalars["val_loss"]) == [4, 8]


def test_the_progress_bar_shows_the_loss_and_samples_per_second(capsys):
    x, y = blobs(32)
    make(mlp(), losses.cross_entropy, optim.SGD(lr=0.1), loader(x, y, 8), progress=True,
         name="blobs").fit(steps=6)
    err = capsys.readouterr().err
    assert "blobs" in err and "6/6" in err and "loss=" in err and "samples/s=" in err


# --------------------------------------------------------------------------- misuse

X, Y = blobs(16)
GOOD = dict(model=mlp(), loss=losses.cross_entropy, optimizer=optim.SGD(lr=0.1),
            train_data=loader(X, Y, 8))


@pytest.mark.parametrize("bad", [
    {"model": "mlp"}, {"model": None}, {"loss": 3}, {"optimizer": optim.SGD},
    {"train_data": "batches"}, {"train_data": {"x": X}}, {"val_data": 5},
    {"metrics": {"acc": 1}}, {"metrics": {"a,b": accuracy}}, {"metrics": "accuracy"},
    {"predict": "max"}, {"loss_takes": "batch"}, {"accumulate": 0}, {"accumulate": 2.0},
    {"clip_norm": -1.0}, {"clip_norm": math.nan}, {"clip_value": "1"}, {"save_every": 5},
    {"checkpoints": 7}, {"early_stopping": 3}, {"monitor": "val_loss"},
    {"early_stopping": EarlyStopping(), "monitor": "val_accuracy"}, {"val_every": 2},
    {"callbacks": [print]}, {"callbacks": "cb"}, {"progress": 1}, {"seed": -1},
    {"seed": 2**70}, {"donate": None}, {"name": ""}, {"backend": 5}, {"backend": "tpu"},
])
def test_bad_arguments_are_pyasg_errors(bad):
    with pytest.raises(PyasgError):
        trainer = pyasg.Trainer(**{**GOOD, **bad})
        trainer.fit(steps=1)  # an unknown backend is found when the step first runs


def test_bad_method_arguments_and_batches_are_trainer_errors():
    trainer = pyasg.Trainer(**GOOD, progress=False)
    for call in (lambda: trainer.fit(), lambda: trainer.fit(epochs=-1),
                 lambda: trainer.fit(steps="3"), lambda: trainer.fit(epochs=1.5),
                 lambda: trainer.evaluate(), lambda: trainer.evaluate(data=3),
                 lambda: trainer.resume(), lambda: trainer.resume("latest"),
                 lambda: trainer.save()):
        with pytest.raises(TrainerError):
            call()
    triples = pyasg.Trainer(**{**GOOD, "train_data": [(X, Y, Y)]}, progress=False)
    with pytest.raises(TrainerError, match=r"\(inputs, targets\)"):
        triples.fit(steps=1)
    empty = pyasg.Trainer(**{**GOOD, "train_data": []}, progress=False)
    with pytest.raises(TrainerError, match="no batches"):
        empty.fit(epochs=1)
    with pytest.raises(TrainerError, match="not a hook"):
        LambdaCallback(on_batch_end=print)


# (no large positive ints: fit(steps=10**9) is a legitimate, long run)
HOSTILE = st.one_of(st.none(), st.booleans(), st.integers(max_value=2) | st.integers(2**63),
                    st.floats(), st.text(max_size=5),
                    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=2),
                                                                          st.integers()))


@settings(max_examples=25)
@given(epochs=HOSTILE, steps=HOSTILE, data=HOSTILE, checkpoint=HOSTILE)
def test_hostile_method_arguments_raise_only_pyasg_errors(epochs, steps, data, checkpoint):
    trainer = pyasg.Trainer(**GOOD, progress=False)
    for call in (lambda: trainer.fit(epochs=epochs, steps=steps),
                 lambda: trainer.evaluate(data), lambda: trainer.resume(checkpoint)):
        try:
            call()
        except PyasgError:
            pass
