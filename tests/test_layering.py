"""The import structure of `pyasg/` is a specification: layers point one way, no cycles.

Read with `ast` (nothing is imported):

- no `pyasg` module is imported inside a function body, except the few lazy imports
  listed in `LAZY` with their reason (an optional dependency);
- the module-level imports between pyasg modules form no cycle;
- every module belongs to a layer of `docs/ARCHITECTURE.md`'s table, and imports only
  modules of its own layer or of layers below it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "pyasg"
ARCHITECTURE = ROOT / "docs" / "ARCHITECTURE.md"

#: (importing module, imported module) -> why the import waits for a call.
LAZY = {
    ("pyasg.compile.registry", "pyasg.kernels.wgpu"):
        "the wgpu backend needs the optional `wgpu` package: imported when asked for",
    ("pyasg.cli", "pyasg.kernels.wgpu.device"):
        "`pyasg info` reports the adapter only where the optional `wgpu` is installed",
    ("pyasg.compile.profile", "pyasg.kernels.wgpu.profile"):
        "the wgpu profiler, like the wgpu backend, is imported only when it is asked for",
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(name: str, imported: str | None) -> str:
    """`from name import imported`: the submodule if it is one, else the module."""
    if imported is not None and f"{name}.{imported}" in MODULES:
        return f"{name}.{imported}"
    return name


def _imports(tree: ast.AST, module: str) -> list[tuple[str, bool]]:
    """(imported pyasg module, inside a function?) for every import in `tree`."""
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                      ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend((a.name, in_function) for a in child.names
                             if a.name.split(".")[0] == "pyasg")
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0 \
                    and child.module.split(".")[0] == "pyasg":
                found.extend((_resolve(child.module, a.name), in_function)
                             for a in child.names)
            visit(child, inner)

    visit(tree, False)
    return found


IMPORTS = {m: _imports(ast.parse(p.read_text()), m) for m, p in MODULES.items()}


def test_no_pyasg_import_inside_a_function_but_the_listed_lazy_ones() -> None:
    found = {(m, target) for m, imports in IMPORTS.items() for target, inner in imports
             if inner}
    unexpected = sorted(found - set(LAZY))
    assert not unexpected, ("imports inside function bodies (fix the layering instead): "
                            f"{unexpected}")
    assert set(LAZY) <= found, f"LAZY lists imports that no longer exist: {set(LAZY) - found}"


def test_no_import_cycle_between_modules() -> None:
    edges = {m: sorted({t for t, inner in imports if not inner and t != m and t in MODULES})
             for m, imports in IMPORTS.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in edges[m]:
            if state.get(t) == 1:
                cycle = stack[stack.index(t):] + [t]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m)


def layers() -> list[list[str]]:
    """The module prefixes of each row of the architecture map's layer table, lowest first."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    table = text.split("<!-- layers -->", 2)[1]
    rows = []
    for line in table.splitlines():
        if line.startswith("|") and "`" in line.split("|")[2]:
            rows.append(re.findall(r"`(pyasg[\w.]*)`", line.split("|")[2]))
    return rows[::-1]  # the table lists the top layer first


def layer_of(module: str, table: list[list[str]]) -> int:
    """The layer of the longest prefix that names `module` (or a package above it)."""
    best, depth = -1, -1
    for k, prefixes in enumerate(table):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and p.count(".") > depth:
                best, depth = k, p.count(".")
    return best


def test_every_module_imports_only_its_own_layer_or_below() -> None:
    table = layers()
    assert len(table) >= 8, "docs/ARCHITECTURE.md lost its layer table"
    unplaced = [m for m in MODULES if layer_of(m, table) < 0]
    assert not unplaced, f"modules in no layer of docs/ARCHITECTURE.md: {unplaced}"
    upward = [(m, t) for m, imports in IMPORTS.items() for t, inner in imports
              if not inner and t in MODULES and layer_of(t, table) > layer_of(m, table)]
    assert not upward, f"imports against the layer order of docs/ARCHITECTURE.md: {upward}"
