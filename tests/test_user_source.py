"""A node's source line is the user's: the demo's model lines, never the `pyasg` launcher.

`pyasg demo` runs `pyasg/examples/charlm.py` from the console script ``bin/pyasg``; every
node of its graphs used to read ``pyasg:8`` (the launcher's line), because the example
lives inside the package and so counted as pyasg's own code.
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from collections import Counter

import viewer_graphs

import pyasg
from pyasg.examples import charlm

#: The subprocesses import this checkout's pyasg, not another one installed.
ENV = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(pyasg.__file__))}


def _model_lines() -> set[int]:
    """The lines of the demo's model: `CharLM.__call__` and the `Trainer`'s
    `_compile`, which defines the loss (it compiles again after a model-lab change)."""
    lines = set()
    for code in (charlm.CharLM.__call__, charlm.Trainer._compile):
        body, first = inspect.getsourcelines(code)
        lines |= set(range(first, first + len(body)))
    return lines


def _check_sources(graph) -> Counter:
    sources = Counter(graph.nodes[i].source for i in graph.live_ids
                      if graph.nodes[i].op.name != "input")
    model = _model_lines()
    for source in sources:
        assert source is not None
        path, line = source.rsplit(":", 1)
        assert path.endswith("examples/charlm.py") or path == "charlm.py", sources
        assert int(line) in model, source
    return sources


def test_the_demos_nodes_name_the_lines_of_its_model():
    sources = _check_sources(viewer_graphs.demo_forward())
    # the model's lines, several of them (embedding, blocks, head, loss), not one
    assert len(sources) >= 3, sources


def test_the_gradient_nodes_name_the_demos_lines_too():
    _check_sources(viewer_graphs.demo_gradient())


LAUNCHER = """import sys
from pyasg.cli import main
import numpy as np
import pyasg
graph = pyasg.make_graph(pyasg.exp)(np.ones(2, np.float32))
print(sorted({repr(graph.nodes[i].source) for i in graph.live_ids}))
"""


def test_the_console_script_launcher_is_never_a_source(tmp_path):
    script = tmp_path / "pyasg"
    script.write_text(LAUNCHER)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, cwd=str(tmp_path), env=ENV)
    assert done.returncode == 0, done.stderr
    assert "pyasg:" not in done.stdout and "None" in done.stdout, done.stdout


def test_a_users_script_is_a_source(tmp_path):
    script = tmp_path / "model.py"
    script.write_text(LAUNCHER.replace("from pyasg.cli import main\n", ""))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, cwd=str(tmp_path), env=ENV)
    assert done.returncode == 0, done.stderr
    assert "'model.py:4'" in done.stdout, done.stdout  # the make_graph line
