"""docs/ARCHITECTURE.md's "add a primitive" recipe, followed as written.

The recipe's snippets are applied, each where its `<!-- recipe: FILE | WHERE -->` line
says, to a copy of the package; in a fresh process the copy then passes the registry
and viewer-text checks for the new op without any other edit, differentiates it
correctly, batches it under `vmap`, and computes it the same on every backend (single
and fused, and eagerly).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RECIPE = re.compile(r"<!-- recipe: (?P<file>\S+) \| (?P<where>.+?) -->\n.*?```python\n"
                    r"(?P<code>.*?)```", re.S)

CHECK = textwrap.dedent("""
    import numpy as np
    import pyasg
    from pyasg.array.primitives import cube
    from pyasg.compile.pipeline import jit_to_backend

    assert pyasg.__file__.startswith(%(root)r), pyasg.__file__
    x = np.linspace(-2.0, 2.0, 7)
    np.testing.assert_allclose(cube(x), x ** 3)                      # eager: the reference
    g = pyasg.grad(lambda x: cube(x).sum())(x)
    np.testing.assert_allclose(g, 3 * x ** 2, rtol=1e-12)
    eps = 1e-6                                                       # central differences
    numeric = (cube(x + eps) - cube(x - eps)) / (2 * eps)
    np.testing.assert_allclose(g, numeric, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(pyasg.vmap(cube, in_axes=1)(x[None]), (x ** 3)[:, None])  # batching
    _, t = pyasg.jvp(cube, (x,), (np.ones_like(x),))                # forward mode
    np.testing.assert_allclose(t, 3 * x ** 2, rtol=1e-12)
    xf = x.astype(np.float32)
    for fn in (lambda x: cube(x), lambda x: pyasg.exp(cube(x) * 0.5)):   # single, fused
        graph = pyasg.make_graph(fn)(xf)
        want = jit_to_backend(graph, "reference")(xf)[0]
        backends = ["numpy"] + (["wgpu"] if %(wgpu)r else [])
        for backend in backends:
            got = np.asarray(jit_to_backend(graph, backend)(xf)[0])
            np.testing.assert_allclose(got, want, rtol=1e-5)
    print("recipe ok")
""")


def steps() -> list[tuple[str, str, str]]:
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    return [(m["file"], m["where"], m["code"]) for m in RECIPE.finditer(text)]


def apply(root: Path, file: str, where: str, code: str) -> None:
    path = root / file
    text = path.read_text(encoding="utf-8")
    if where == "end":
        path.write_text(text.rstrip("\n") + "\n\n\n" + code, encoding="utf-8")
        return
    anchor = where.removeprefix("after: ")
    lines = text.splitlines(keepends=True)
    at = next(k for k, line in enumerate(lines) if anchor in line)
    lines.insert(at + 1, code)
    path.write_text("".join(lines), encoding="utf-8")


def test_the_recipe_names_every_place_an_op_lives() -> None:
    files = [f for f, _, _ in steps()]
    assert len(files) == 10
    for f in files:
        assert (ROOT / f).is_file(), f"the recipe names {f}, which does not exist"


def test_the_add_a_primitive_recipe_gives_a_complete_op(tmp_path: Path) -> None:
    copy = tmp_path / "repo"
    ignore = shutil.ignore_patterns("__pycache__", ".hypothesis")
    shutil.copytree(ROOT / "pyasg", copy / "pyasg", ignore=ignore)
    shutil.copytree(ROOT / "tests", copy / "tests", ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", copy)
    for file, where, code in steps():
        apply(copy, file, where, code)
    env = {**os.environ, "PYTHONPATH": str(copy)}
    try:
        from wgpu_util import _adapter_or_none

        has_wgpu = _adapter_or_none() is not None
    except ImportError:
        has_wgpu = False
    run = subprocess.run([sys.executable, "-c", CHECK % {"root": str(copy), "wgpu": has_wgpu}],
                         cwd=copy, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    checks = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
         "tests/test_registry.py", "tests/test_viewer_texts.py", "-k", "Cube or cube"],
        cwd=copy, env=env, capture_output=True, text=True, timeout=600)
    assert checks.returncode == 0, checks.stdout[-4000:] + checks.stderr[-2000:]
    passed = re.search(r"(\d+) passed", checks.stdout)
    assert passed and int(passed.group(1)) >= 8, checks.stdout[-2000:]


@pytest.mark.parametrize("where", ["end", "after: UFUNCS = {"])
def test_apply_puts_a_snippet_where_it_says(tmp_path: Path, where: str) -> None:
    (tmp_path / "m.py").write_text("A = 1\nUFUNCS = {\n}\n", encoding="utf-8")
    apply(tmp_path, "m.py", where, "    'x': 2,\n")
    text = (tmp_path / "m.py").read_text(encoding="utf-8")
    if where == "end":
        assert text.endswith("    'x': 2,\n")
    else:
        assert text == "A = 1\nUFUNCS = {\n    'x': 2,\n}\n"
