"""Run headless (no display, no XDG_RUNTIME_DIR, as root in a container), pyasg says
one clear line or nothing: never GLFW's page of errors, never Mesa's XDG noise.

- The viewer with neither DISPLAY nor WAYLAND_DISPLAY: `pyasg.viewer.launch` raises
  `ViewerError` saying no display was found, before any process starts; `pyasg demo -v`
  and `pyasg view` print that as their one error line (exit code 1).
- `pyasg info` and a wgpu computation with XDG_RUNTIME_DIR unset or relative print
  nothing on stderr (`pyasg.kernels.wgpu.device.quiet_wayland_probe`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from wgpu_util import WGPU, require_wgpu

import pyasg
from pyasg.kernels.wgpu.device import quiet_wayland_probe
from pyasg.viewer.process import ViewerError

ROOT = Path(__file__).resolve().parent.parent


def run(args: list[str], drop: tuple[str, ...] = (), timeout: float = 240,
        **extra: str) -> subprocess.CompletedProcess:
    """`python args...` in a fresh process, with the variables in `drop` unset."""
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(extra)
    return subprocess.run([sys.executable, *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=env)


NO_DISPLAY = ("DISPLAY", "WAYLAND_DISPLAY")


# --------------------------------------------------------------------------- no display


def test_launch_without_a_display_is_one_viewer_error_before_any_process(monkeypatch, tmp_path):
    for var in NO_DISPLAY:
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ViewerError, match="no display found") as info:
        pyasg.viewer.launch(lang="en")
    assert "\n" not in str(info.value)  # one line, and no user line: the machine is at fault
    # only the window needs a display: a target that opens none still starts
    handle = pyasg.viewer.launch(target="viewer_stub:run", path=str(tmp_path / "log.jsonl"))
    try:
        assert handle.process is not None
    finally:
        handle.close(timeout=20)


@pytest.mark.parametrize("argv", [["demo", "-v", "--steps", "1"],
                                  ["demo", "--visualize", "--steps", "1"]])
def test_demo_with_the_viewer_and_no_display_says_so_in_one_line(argv):
    done = run(["-m", "pyasg", *argv], drop=NO_DISPLAY)
    lines = [s for s in done.stderr.splitlines() if s.strip()]
    assert done.returncode == 1, done.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("pyasg: error: no display found"), lines
    assert "Glfw" not in done.stderr and "Assertion" not in done.stderr


def test_view_with_no_display_says_so_in_one_line(tmp_path):
    path = tmp_path / "g.json"
    pyasg.save_graph(path, pyasg.make_graph(lambda x: x * 2.0)(np.ones(2, np.float32)))
    done = run(["-m", "pyasg", "view", str(path)], drop=NO_DISPLAY)
    lines = [s for s in done.stderr.splitlines() if s.strip()]
    assert done.returncode == 1 and len(lines) == 1, done.stderr[-2000:]
    assert "no display found" in lines[0] and "Traceback" not in done.stderr


# --------------------------------------------------------------------------- XDG_RUNTIME_DIR


@WGPU
@pytest.mark.parametrize("xdg", [None, "relative/dir"], ids=["unset", "relative"])
def test_info_prints_no_xdg_runtime_dir_noise(xdg):
    require_wgpu()
    extra = {} if xdg is None else {"XDG_RUNTIME_DIR": xdg}
    done = run(["-m", "pyasg", "info"], drop=("XDG_RUNTIME_DIR",), **extra)
    assert done.returncode == 0, done.stderr
    assert "XDG_RUNTIME_DIR" not in done.stderr and done.stderr.strip() == "", done.stderr
    assert "adapter" in done.stdout


@WGPU
def test_a_wgpu_computation_prints_no_xdg_runtime_dir_noise():
    require_wgpu()
    code = ("import numpy as np, pyasg; f = pyasg.jit(lambda x: x * 2.0, backend='wgpu'); "
            "print(np.asarray(f(np.ones(2, np.float32))))")
    done = run(["-c", code], drop=("XDG_RUNTIME_DIR",))
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "", done.stderr
    assert "[2. 2.]" in done.stdout


def test_a_usable_xdg_runtime_dir_is_left_alone(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert quiet_wayland_probe() is None and os.environ["XDG_RUNTIME_DIR"] == str(tmp_path)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "missing"))
    made = quiet_wayland_probe()
    assert made is not None and os.environ["XDG_RUNTIME_DIR"] == made
    assert os.stat(made).st_mode & 0o777 == 0o700  # private, as the XDG spec asks
