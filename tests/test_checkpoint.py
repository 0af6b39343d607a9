"""Checkpoints: complete round trips, rotation by step number with the best kept, resume
from the directory alone, bit-identical optimiser resumption, and no lost checkpoint
when the writer is killed with SIGKILL at random moments."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import pyasg
from pyasg.errors import CheckpointError
from pyasg.io import Checkpoint, CheckpointManager, load_checkpoint, save_checkpoint
from pyasg.nn import Dropout, Linear
from pyasg.optim import Adam
from pyasg.trace.tree import flatten, flatten_with_paths

REPO = Path(pyasg.__file__).resolve().parents[1]


def assert_bit_identical(a: object, b: object) -> None:
    assert flatten(a)[1] == flatten(b)[1]
    for (path, x), (_, y) in zip(flatten_with_paths(a)[0], flatten_with_paths(b)[0]):
        x, y = np.asarray(x), np.asarray(y)
        assert (x.dtype, x.shape, x.tobytes()) == (y.dtype, y.shape, y.tobytes()), path


def tiny(step: int) -> dict:
    return {"w": np.full(2, step, np.float32)}


def fill(manager: CheckpointManager, steps: list[int], losses: list[float] | None = None) -> None:
    for i, step in enumerate(steps):
        metadata = {} if losses is None else {"loss": losses[i]}
        manager.save(step, tiny(step), metadata=metadata)


# --------------------------------------------------------------------------- one checkpoint


def test_a_checkpoint_round_trips_every_part(tmp_path):
    params = {"fc": {"weight": np.ones((2, 3), np.float32), "bias": np.zeros(2, np.float32)},
              "blocks": [np.arange(3.0), np.arange(2.0)]}
    opt_state = Adam().init(params)
    rng = pyasg.random.key(7)
    ckpt = Checkpoint(step=11, params=params, opt_state=opt_state, rng=rng, epoch=2,
                      metadata={"loss": 0.25, "tags": ["a", "b"], "nan": float("nan")})
    save_checkpoint(tmp_path / "c.safetensors", ckpt)
    back = load_checkpoint(tmp_path / "c.safetensors")
    assert (back.step, back.epoch) == (11, 2)
    assert back.metadata["tags"] == ["a", "b"] and np.isnan(back.metadata["nan"])
    assert_bit_identical(back.params, params)
    assert_bit_identical(back.opt_state, opt_state)
    assert_bit_identical(back.rng, rng)
    assert back.opt_state["step"].dtype == np.int32


@pytest.mark.parametrize(("kwargs", "says"), [
    ({"step": -1}, "step must be"), ({"step": 1.5}, "step must be"),
    ({"step": True}, "step must be"), ({"epoch": "2"}, "epoch must be"),
    ({"metadata": {"x": object()}}, "must be JSON"), ({"metadata": [1]}, "must be a dict"),
])
def test_bad_checkpoints_are_refused_before_writing(tmp_path, kwargs, says):
    fields = {"step": 1, "params": tiny(1), **kwargs}
    with pytest.raises(CheckpointError, match=says):
        save_checkpoint(tmp_path / "c.safetensors", Checkpoint(**fields))
    assert os.listdir(tmp_path) == []


def test_a_weights_file_is_not_a_checkpoint(tmp_path):
    pyasg.io.save(tmp_path / "w.safetensors", tiny(1))
    with pytest.raises(CheckpointError, match="not a pyasg checkpoint"):
        load_checkpoint(tmp_path / "w.safetensors")


# --------------------------------------------------------------------------- the manager


def test_max_to_keep_2_after_steps_9_10_11_keeps_10_and_11(tmp_path):
    manager = CheckpointManager(tmp_path, max_to_keep=2)
    fill(manager, [9, 10, 11])
    assert manager.steps() == [10, 11]
    assert sorted(os.listdir(tmp_path)) == ["ckpt-000000000010.safetensors",
                                            "ckpt-000000000011.safetensors"]


def test_rotation_compares_steps_as_numbers_not_strings(tmp_path):
    big = 10**12  # one digit more than the padding: as strings "1000…" < "9999…"
    manager = CheckpointManager(tmp_path, max_to_keep=1)
    fill(manager, [big - 1, big])
    assert manager.steps() == [big]
    assert CheckpointManager(tmp_path).load_latest().step == big


@pytest.mark.parametrize(("mode", "best"), [("min", 2), ("max", 4)])
def test_the_best_checkpoint_survives_rotation(tmp_path, mode, best):
    manager = CheckpointManager(tmp_path, max_to_keep=2, best_metric="loss", mode=mode)
    fill(manager, [1, 2, 3, 4, 5, 6], [0.5, 0.1, float("nan"), 0.9, 0.3, 0.4])
    assert manager.steps() == sorted({best, 5, 6})
    assert manager.best_step() == best
    assert manager.load_best().step == best
    # a fresh manager finds the same from the directory alone
    assert CheckpointManager(tmp_path, best_metric="loss", mode=mode).best_step() == best


def test_a_new_best_releases_the_old_one(tmp_path):
    manager = CheckpointManager(tmp_path, max_to_keep=1, best_metric="acc", mode="max")
    for step, acc in [(1, 0.5), (2, 0.4), (3, 0.7), (4, 0.6)]:
        manager.save(step, tiny(step), metadata={"acc": acc})
    assert manager.steps() == [3, 4]


def test_best_metric_must_be_in_the_metadata(tmp_path):
    manager = CheckpointManager(tmp_path, best_metric="loss")
    with pytest.raises(CheckpointError, match="loss"):
        manager.save(1, tiny(1), metadata={"acc": 1.0})
    assert os.listdir(tmp_path) == []


def test_load_latest_works_from_disk_alone(tmp_path):
    assert CheckpointManager(tmp_path / "none").load_latest() is None
    assert CheckpointManager(tmp_path).load_latest() is None
    fill(CheckpointManager(tmp_path, max_to_keep=None), [3, 20, 100])
    latest = CheckpointManager(tmp_path).load_latest()
    assert latest.step == 100 and latest.params["w"].tolist() == [100.0, 100.0]
    assert CheckpointManager(tmp_path).load(20).params["w"][0] == 20


def test_a_damaged_newest_checkpoint_does_not_stop_a_resume(tmp_path):
    manager = CheckpointManager(tmp_path, max_to_keep=3)
    fill(manager, [1, 2, 3])
    newest = manager.path(3)
    newest.write_bytes(newest.read_bytes()[:-5])  # truncated by something outside pyasg
    with pytest.warns(RuntimeWarning, match="ckpt-000000000003"):
        assert CheckpointManager(tmp_path).load_latest().step == 2
    raw = bytearray(manager.path(2).read_bytes())
    raw[-3] ^= 1  # a flipped bit
    manager.path(2).write_bytes(bytes(raw))
    with pytest.warns(RuntimeWarning):
        assert CheckpointManager(tmp_path).load_latest().step == 1
    manager.path(1).write_bytes(b"garbage")
    with pytest.warns(RuntimeWarning), pytest.raises(CheckpointError, match="no checkpoint"):
        CheckpointManager(tmp_path).load_latest()


def test_temporary_and_foreign_files_are_ignored_and_stale_temporaries_removed(tmp_path):
    manager = CheckpointManager(tmp_path, max_to_keep=2)
    fill(manager, [5])
    stale = tmp_path / ".ckpt-000000000006.safetensors.999-abcd.tmp"
    stale.write_bytes(b"half a checkpoint")
    for name in ("ckpt-7.safetensors", "notes.txt", "ckpt-000000000008.safetensors.bak"):
        (tmp_path / name).write_bytes(b"x")
    assert manager.steps() == [5]
    assert manager.load_latest().step == 5
    manager.save(6, tiny(6))
    assert not stale.exists()
    assert manager.steps() == [5, 6]


def test_a_file_whose_name_and_record_disagree_is_skipped(tmp_path):
    manager = CheckpointManager(tmp_path, max_to_keep=None)
    fill(manager, [1, 2])
    os.replace(manager.path(1), manager.path(9))
    with pytest.warns(RuntimeWarning, match="records step 1"):
        assert manager.load_latest().step == 2


@pytest.mark.parametrize(("kwargs", "says"), [
    ({"max_to_keep": 0}, "max_to_keep"), ({"max_to_keep": 1.5}, "max_to_keep"),
    ({"mode": "best"}, "mode"), ({"best_metric": 3}, "best_metric"),
])
def test_bad_manager_arguments_are_checkpoint_errors(tmp_path, kwargs, says):
    with pytest.raises(CheckpointError, match=says):
        CheckpointManager(tmp_path, **kwargs)


def test_loading_a_missing_step_names_the_file(tmp_path):
    with pytest.raises(CheckpointError, match="ckpt-000000000004.safetensors: no such file"):
        CheckpointManager(tmp_path).load(4)


# --------------------------------------------------------------------------- resuming training


def test_an_adam_run_resumed_from_a_checkpoint_continues_bit_identically(tmp_path):
    fc1, fc2, drop = Linear(4, 8), Linear(8, 2), Dropout(0.25)
    keys = pyasg.random.split(pyasg.random.key(0))
    params = {"fc1": fc1.init(keys[0]), "fc2": fc2.init(keys[1])}
    opt = Adam(lr=0.01)
    data = np.random.default_rng(0)
    x = data.standard_normal((16, 4)).astype(np.float32)
    y = data.standard_normal((16, 2)).astype(np.float32)

    @pyasg.trace
    def train_step(params, state, key, x, y):
        keys = pyasg.random.split(key)
        key, sub = keys[0], keys[1]

        def loss_fn(p):
            h = drop({}, pyasg.relu(fc1(p["fc1"], x)), key=sub, training=True)
            return pyasg.mean((fc2(p["fc2"], h) - y) ** 2)

        loss, grads = pyasg.value_and_grad(loss_fn)(params)
        params, state = opt.update(grads, state, params)
        return params, state, key, loss

    def run(params, state, key, steps):
        for _ in range(steps):
            params, state, key, _ = train_step(params, state, key, x, y)
        return params, state, key

    start = (params, opt.init(params), pyasg.random.key(1))
    p6, s6, k6 = run(*start, 6)

    p3, s3, k3 = run(*start, 3)
    CheckpointManager(tmp_path).save(3, p3, opt_state=s3, rng=k3, epoch=0)
    del p3, s3, k3
    ckpt = CheckpointManager(tmp_path).load_latest()  # a fresh manager: the disk only
    assert ckpt.step == 3 and int(ckpt.opt_state["step"]) == 3
    p, s, k = run(ckpt.params, ckpt.opt_state, ckpt.rng, 3)

    assert_bit_identical(p, p6)
    assert_bit_identical(s, s6)
    assert_bit_identical(k, k6)


# --------------------------------------------------------------------------- killed writers

#: A writer that resumes from the newest checkpoint, says so, and then saves forever.
#: Each checkpoint's payload is derived from its step, so a torn write would show.
WRITER = textwrap.dedent("""
    import sys
    import numpy as np
    from pyasg.io import CheckpointManager

    manager = CheckpointManager(sys.argv[1], max_to_keep=2)
    latest = manager.load_latest()
    step = 0 if latest is None else latest.step
    print("resumed", step, flush=True)
    n = int(sys.argv[2])
    while True:
        step += 1
        payload = np.arange(n, dtype=np.int64) * 31 + step
        manager.save(step, {"payload": payload, "step": np.int64(step)},
                     opt_state={"count": np.full(3, step, np.int32)}, rng=np.uint32([0, step]),
                     epoch=step // 10, metadata={"step": step, "sum": int(payload.sum())})
""")

KILLS = 50
PAYLOAD = 1 << 17  # 128 Ki int64: 1 MiB per checkpoint


def check_complete(ckpt: Checkpoint) -> None:
    """Every part of the checkpoint agrees with its step: nothing torn, nothing mixed."""
    step = ckpt.step
    expected = np.arange(PAYLOAD, dtype=np.int64) * 31 + step
    assert np.array_equal(ckpt.params["payload"], expected)
    assert int(ckpt.params["step"]) == step
    assert ckpt.opt_state["count"].tolist() == [step] * 3
    assert ckpt.rng.tolist() == [0, step]
    assert ckpt.epoch == step // 10
    assert ckpt.metadata == {"step": step, "sum": int(expected.sum())}


def kill_lane(directory: Path, seed: int, kills: int) -> dict[str, int]:
    """Start the writer, let it save for a random moment, SIGKILL it; check; repeat."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
    delays = random.Random(seed)
    last, torn = 0, 0
    for _ in range(kills):
        child = subprocess.Popen([sys.executable, "-c", WRITER, str(directory), str(PAYLOAD)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        try:
            line = child.stdout.readline().decode()  # blocks until the imports are done
            assert line.split() == ["resumed", str(last)], (
                line + child.stderr.read().decode() if not line else line)
            time.sleep(delays.uniform(0.0, 0.3))
            assert child.poll() is None, child.stderr.read().decode()
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
            child.stdout.close()
            child.stderr.close()
        torn += any(name.endswith(".tmp") for name in os.listdir(directory))
        manager = CheckpointManager(directory, max_to_keep=2)
        latest = manager.load_latest()  # a damaged file would warn: warnings are errors here
        if latest is None:  # killed before its first save finished
            assert last == 0
            continue
        check_complete(latest)
        for step in manager.steps():  # every file under a final name is complete
            check_complete(manager.load(step))
        assert latest.step >= last  # a kill never loses a completed save
        last = latest.step
    return {"last": last, "torn": torn}


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")
@pytest.mark.filterwarnings("error")
def test_a_writer_killed_at_random_moments_never_loses_a_checkpoint(tmp_path):
    # two writers in two directories at once: the imports, not the saves, take the time
    from concurrent.futures import ThreadPoolExecutor

    lanes = 2
    for i in range(lanes):
        (tmp_path / str(i)).mkdir()
    with ThreadPoolExecutor(lanes) as pool:
        futures = [pool.submit(kill_lane, tmp_path / str(i), seed=i, kills=KILLS // lanes)
                   for i in range(lanes)]
        results = [f.result() for f in futures]
    assert all(r["last"] > 20 for r in results), results  # it really saved, many times
    assert sum(r["torn"] for r in results) > 0, results  # and some kills hit a save mid-write
