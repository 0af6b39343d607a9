"""An honest first run: the command's BLAS threads, a viewer started after the step
compiled, the viewer dying with its training process, saved files' modes, and a
one-line error for `save_graph`'s arguments swapped."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pyasg
from pyasg import cli
from pyasg.errors import GraphFormatError
from pyasg.events import GraphReady, ParamsDescribed, RunFinished
from pyasg.viewer.process import ViewerError, ViewerHandle, launch
from pyasg.viewer.protocol import decode

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent
STUB = "viewer_stub:run"
LINUX = pytest.mark.skipif(not sys.platform.startswith("linux"),
                           reason="reads a process's state from /proc")


# --------------------------------------------------------------------------- threads

#: Runs the command as the console script does (`main()` reads sys.argv), then prints
#: the thread variables and, where threadpoolctl is installed, the BLAS pools' sizes.
PROBE = textwrap.dedent("""
    import json, os
    from pyasg.cli import main
    code = main()
    try:
        import threadpoolctl
        blas = sorted({p["num_threads"] for p in threadpoolctl.threadpool_info()
                       if p["user_api"] == "blas"})
    except ImportError:
        blas = None
    names = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
    print(json.dumps({"pid": os.getpid(), "code": code, "blas": blas,
                      "env": {v: os.environ.get(v) for v in names}}))
""")
VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def probe(*args: str, **env: str) -> dict:
    """Run `python -c PROBE args...` with the thread variables unset, except `env`."""
    environ = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    environ.update(env)
    child = subprocess.Popen([sys.executable, "-c", PROBE, *args], cwd=ROOT, env=environ,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = child.communicate(timeout=240)
    assert child.returncode == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["pid"] == child.pid  # restarted in place, not in a child process
    return result


def test_a_training_command_runs_with_one_blas_thread_by_default():
    result = probe("run", "linear_regression", "--steps", "2", "-q")
    assert result["code"] == 0
    assert result["env"] == dict.fromkeys(VARIABLES, "1")
    assert result["blas"] in (None, [1])


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="OpenBLAS caps its pool at the cores")
def test_threads_flag_sets_the_count_and_wins_over_the_environment():
    result = probe("--threads", "2", "run", "linear_regression", "--steps", "2", "-q",
                   OMP_NUM_THREADS="1")
    assert result["env"] == dict.fromkeys(VARIABLES, "2")
    assert result["blas"] in (None, [2])


def test_a_count_the_user_set_is_kept_and_other_commands_are_left_alone():
    kept = probe("run", "linear_regression", "--steps", "2", "-q", OPENBLAS_NUM_THREADS="2")
    assert kept["env"] == {"OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": None,
                           "MKL_NUM_THREADS": None}
    untouched = probe("examples")
    assert untouched["env"] == dict.fromkeys(VARIABLES)


@pytest.mark.parametrize("argv", [["--threads"], ["--threads", "0", "demo"],
                                  ["demo", "--threads=many"]])
def test_a_bad_threads_flag_is_one_line_and_exit_2(argv, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("pyasg: error: argument --threads")


# --------------------------------------------------------------------------- replay


@pytest.fixture
def remembering():
    """`remember_graphs` on for one test; off (and forgotten) after it."""
    pyasg.events.remember_graphs()
    yield
    pyasg.events.remember_graphs(False)


def _compiled_step(name: str):
    def step(x):
        return pyasg.tanh(x @ x.T).sum() * 2.0

    x = np.arange(6, dtype=np.float32).reshape(2, 3) / 6
    jitted = pyasg.jit(step, name=name)
    jitted(x)  # compiled now, before any viewer
    return jitted, pyasg.make_graph(step)(x)


def _received(path: Path) -> list:
    if not path.exists():
        return []
    return [decode(line) for line in path.read_text(encoding="utf-8").splitlines()[1:]]


def test_a_viewer_launched_after_a_step_compiled_receives_its_graphs(tmp_path, remembering):
    jitted, traced = _compiled_step("first_run_replayed")
    log = tmp_path / "log.jsonl"
    with launch(target=STUB, path=str(log)):
        pass
    mine = [m for m in _received(log) if isinstance(m, GraphReady)
            and m.name == "first_run_replayed"]
    assert "forward" in {m.kind for m in mine}
    forward = next(m.graph for m in mine if m.kind == "forward")
    assert forward.output_types == traced.output_types and len(forward) == len(traced)
    assert jitted.cache_size == 1


def test_without_remember_graphs_compiling_publishes_nothing_for_a_later_viewer(tmp_path):
    pyasg.events.remember_graphs(False)
    _compiled_step("first_run_not_replayed")
    log = tmp_path / "log.jsonl"
    with launch(target=STUB, path=str(log)):
        pass
    assert not [m for m in _received(log) if isinstance(m, GraphReady)]
    assert not pyasg.events.has_subscribers(GraphReady)


def test_remember_graphs_takes_a_flag():
    with pytest.raises(pyasg.PyasgError, match="True or False"):
        pyasg.events.remember_graphs("yes")


def test_recent_graphs_keep_the_newest_of_each_name_and_a_bounded_number(remembering):
    graph = pyasg.make_graph(lambda x: x * 2.0)(np.ones(2, np.float32))
    for i in range(pyasg.events.RECENT_GRAPHS + 3):
        pyasg.publish(GraphReady(f"first_run_bound_{i}", graph))
    pyasg.publish(GraphReady("first_run_bound_4", graph))
    names = [e.name for e in pyasg.events.recent_graphs()]
    assert len(names) == pyasg.events.RECENT_GRAPHS and names[-1] == "first_run_bound_4"
    assert names.count("first_run_bound_4") == 1 and "first_run_bound_0" not in names


@pytest.mark.display
@pytest.mark.skipif(not os.environ.get("DISPLAY"), reason="needs an X display (xvfb-run)")
def test_the_window_shows_a_step_compiled_before_it_opened(tmp_path, remembering):
    _, traced = _compiled_step("first_run_window")
    state = tmp_path / "state.json"
    script = [{"cmd": "frames", "n": 2}, {"cmd": "show", "name": "first_run_window",
                                           "kind": "forward"},
              {"cmd": "frames", "n": 2}, {"cmd": "dump", "path": str(state)},
              {"cmd": "quit"}]
    handle = launch(target="pyasg.viewer.app:run", script=script)
    try:
        assert handle.wait(timeout=60) == 0
    finally:
        handle.close(timeout=10)
    shown = json.loads(state.read_text(encoding="utf-8"))
    assert shown["graph"] == ["first_run_window", "forward"]
    assert shown["boxes"] > 0 and "Waiting" not in shown["status"]


def test_wait_says_the_run_finished_and_blocks_until_the_viewer_ends(tmp_path):
    log = tmp_path / "log.jsonl"
    handle = launch(target=STUB, path=str(log), idle=2.0)  # "closed" 2 s after the last
    start = time.monotonic()
    assert handle.wait(timeout=60) == 0
    assert time.monotonic() - start >= 1.5  # it waited for the viewer to end
    # parameter kinds described by earlier tests in this process reach a later viewer
    # first, by design; what wait adds is the RunFinished
    received = [e for e in _received(log) if not isinstance(e, ParamsDescribed)]
    assert received == [RunFinished(None)]
    assert handle.close() == 0


def test_wait_on_a_viewer_never_started_is_a_viewer_error():
    with pytest.raises(ViewerError, match="never started"):
        ViewerHandle(STUB, "en", {"path": "unused.jsonl"}).wait()


# --------------------------------------------------------------------------- SIGTERM


def _gone(pid: int) -> bool:
    """Whether process `pid` has ended (a zombie nobody reaped has ended too)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return text.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def _wait(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@LINUX
def test_sigterm_to_a_training_script_ends_its_viewer(tmp_path):
    log = tmp_path / "log.jsonl"
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(f"""
        import sys, time
        sys.path[:0] = [{str(TESTS)!r}, {str(ROOT)!r}]
        from pyasg.viewer.process import launch
        handle = launch(target={STUB!r}, path={str(log)!r}, idle=120.0)
        print(handle.process.pid, flush=True)
        time.sleep(120)
    """))
    trainer = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    viewer = None
    try:
        viewer = int(trainer.stdout.readline())
        assert _wait(log.exists, 60), trainer.stderr.read()  # the viewer is up
        trainer.send_signal(signal.SIGTERM)
        assert trainer.wait(30) == -signal.SIGTERM
        assert _wait(lambda: _gone(viewer), 15), "the viewer outlived its training process"
    finally:
        trainer.kill()
        trainer.wait(10)
        if viewer is not None and not _gone(viewer):
            os.kill(viewer, signal.SIGKILL)


def _viewer_child(pid: int) -> int | None:
    """The spawned viewer among the children of `pid` (not the resource tracker)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return None
    for child in map(int, children):
        try:
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                return child
        except OSError:
            continue
    return None


@LINUX
@pytest.mark.display
@pytest.mark.skipif(not os.environ.get("DISPLAY"), reason="needs an X display (xvfb-run)")
def test_sigterm_to_pyasg_view_closes_the_window(tmp_path):
    path = tmp_path / "model.json"
    pyasg.save_graph(path, pyasg.make_graph(lambda x: pyasg.tanh(x))(np.ones(3, np.float32)))
    command = subprocess.Popen([sys.executable, "-m", "pyasg", "view", str(path)], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    viewer = None
    try:
        assert _wait(lambda: _viewer_child(command.pid) is not None, 60)
        viewer = _viewer_child(command.pid)
        time.sleep(1.0)  # the window is open
        command.send_signal(signal.SIGTERM)
        assert command.wait(30) == -signal.SIGTERM
        assert _wait(lambda: _gone(viewer), 15), "the window outlived pyasg view"
    finally:
        command.kill()
        command.wait(10)
        if viewer is not None and not _gone(viewer):
            os.kill(viewer, signal.SIGKILL)


# --------------------------------------------------------------------------- file modes


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _save_all(directory: Path) -> list[Path]:
    """A weights file, a checkpoint and a graph file, written by pyasg.io."""
    params = {"w": np.ones((2, 3), np.float32), "b": np.zeros(3, np.float32)}
    graph = pyasg.make_graph(lambda x: x + 1.0)(np.ones(2, np.float32))
    return [pyasg.io.save(directory / "weights.safetensors", params),
            pyasg.io.CheckpointManager(directory / "ckpt").save(1, params),
            pyasg.save_graph(directory / "model.json", graph)]


@settings(max_examples=8, deadline=None)
@given(umask=st.integers(0, 0o077))  # the owner keeps read and write: files stay writable
def test_saved_files_get_the_mode_open_gives_under_the_umask(tmp_path_factory, umask):
    directory = tmp_path_factory.mktemp("modes")
    old = os.umask(umask)
    try:
        with open(directory / "by_open.txt", "w"):
            pass
        saved = _save_all(directory)
    finally:
        os.umask(old)
    want = _mode(directory / "by_open.txt")
    assert want == 0o666 & ~umask  # what POSIX says open() does
    assert {p.name: oct(_mode(p)) for p in saved} == {p.name: oct(want) for p in saved}


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_overwriting_keeps_the_mode_of_the_file_replaced(tmp_path):
    first = _save_all(tmp_path)
    for path in first:
        os.chmod(path, 0o640)
    reference = tmp_path / "by_open.txt"
    reference.write_text("x")
    os.chmod(reference, 0o640)
    with open(reference, "w"):  # open() keeps an existing file's mode
        pass
    assert [_mode(p) for p in _save_all(tmp_path)] == [_mode(reference)] * len(first)


# --------------------------------------------------------------------------- save_graph


def test_save_graph_with_its_arguments_swapped_says_so_in_one_line(tmp_path):
    graph = pyasg.make_graph(lambda x: x * 3.0)(np.ones(2, np.float32))
    target = tmp_path / "model.json"
    with pytest.raises(GraphFormatError) as info:
        pyasg.io.save_graph(graph, str(target))
    message = info.value.message  # str() adds the caller's line: "at tests/…:N"
    assert "\n" not in message and "swap" in message and str(target) in message
    assert not target.exists() and list(tmp_path.iterdir()) == []
    with pytest.raises(GraphFormatError, match="needs a Graph"):
        pyasg.io.save_graph(target, "not a graph")  # the right order, a wrong graph
