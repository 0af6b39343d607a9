"""The shader builder, and that no WGSL generator edits text another function produced.

The builder: bindings numbered in the order first asked for (each recording what it is
bound to), everything declared once however often it is asked for, a name with two
meanings or an unknown helper a clear error, and one fixed order of sections. The
generators: read with `ast`, none of `pyasg/kernels/wgpu/*.py` patches or searches
shader text (`.replace`, `re`, `"..." in source`); every helper of the table compiles.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from wgpu_util import WGPU, require_wgpu

from pyasg.errors import BackendError
from pyasg.kernels.wgpu.helpers import HELPERS
from pyasg.kernels.wgpu.shader import Buffer, Shader, group_entry, thread_entry

WGPU_DIR = Path(__file__).resolve().parent.parent / "pyasg" / "kernels" / "wgpu"


def binding_lines(source: str) -> dict[str, int]:
    """name -> binding number, from the rendered declarations."""
    return {m[1]: int(m[0]) for m in re.findall(r"@binding\((\d+)\) var<storage, \w+> (\w+):",
                                                 source)}


# --------------------------------------------------------------------------- the builder

def test_bindings_are_numbered_in_the_order_first_asked_for() -> None:
    sh = Shader()
    sh.write("tmp0", "f32", ("tmp", 0))
    sh.read("in1", "i32", ("in", 1))
    sh.write("out", "u32", ("out",))
    sh.read("in1", "i32", ("in", 1))  # again: no new binding
    sh.read("in0", "vec4<f32>", ("in", 0))
    source = sh.render(thread_entry(""))
    assert sh.bindings == (("tmp", 0), ("in", 1), ("out",), ("in", 0))
    assert binding_lines(source) == {"tmp0": 0, "in1": 1, "out": 2, "in0": 3}
    assert "var<storage, read_write> tmp0: array<f32>;" in source
    assert "var<storage, read> in0: array<vec4<f32>>;" in source
    assert sh.dispatch(thread_entry(""), (3, 1, 1)).bindings == sh.bindings


def test_a_helper_or_function_asked_for_twice_is_emitted_once() -> None:
    sh = Shader()
    for _ in range(3):
        assert sh.helper("erf_f") == "erf_f"
        assert sh.function("twice", "x: f32", "  return 2.0 * x;", "f32") == "twice"
        assert sh.workgroup("tile", "array<f32, 64>") == "tile"
    source = sh.render(thread_entry(""))
    assert source.count("fn erf_f(") == 1 and source.count("fn twice(") == 1
    assert source.count("var<workgroup> tile: array<f32, 64>;") == 1
    assert "fn twice(x: f32) -> f32 {\n  return 2.0 * x;\n}" in source


def test_an_unknown_helper_is_a_clear_error() -> None:
    with pytest.raises(BackendError, match="no WGSL helper 'erf'.*known: erf_f, expm1_f"):
        Shader().helper("erf")


def test_a_name_with_two_meanings_is_an_error() -> None:
    sh = Shader()
    sh.read("x", "f32", ("in", 0))
    with pytest.raises(BackendError, match="'x' is declared twice"):
        sh.read("x", "vec4<f32>", ("in", 0))  # a scalar and a vector view of one name
    with pytest.raises(BackendError, match="'x' is declared twice"):
        sh.write("x", "f32", ("in", 0))
    with pytest.raises(BackendError, match=r"\('in', 0\) is bound twice"):
        sh.read("x4", "vec4<f32>", ("in", 0))  # one buffer, two bindings
    sh.function("f", "a: f32", "  return a;", "f32")
    with pytest.raises(BackendError, match="'f' is declared twice"):
        sh.function("f", "a: f32", "  return -a;", "f32")
    with pytest.raises(BackendError, match="'is_nan' is declared twice"):
        sh.function("is_nan", "a: f32", "  return false;", "bool")
        sh.helper("is_nan")
    with pytest.raises(BackendError, match="'f' is declared twice"):
        sh.workgroup("f", "array<f32, 4>")


def test_sections_render_in_one_fixed_order_whatever_the_order_of_requests() -> None:
    def build(order: list[str]) -> str:
        sh = Shader()
        steps = {"function": lambda: sh.function("f", "", "  return;"),
                 "helper": lambda: sh.helper("mod_f"),
                 "workgroup": lambda: sh.workgroup("tile", "array<f32, 4>"),
                 "binding": lambda: sh.read("x", "f32", ("in", 0))}
        for step in order:
            steps[step]()
        return sh.render(group_entry("  // body", 64))

    a = build(["function", "helper", "workgroup", "binding"])
    b = build(["binding", "workgroup", "helper", "function"])
    assert a == b
    marks = ["@binding(0)", "fn mod_f(", "var<workgroup> tile", "fn f()", "@compute"]
    assert [a.index(m) for m in marks] == sorted(a.index(m) for m in marks)


def test_a_buffer_gives_the_plain_load_and_store_hooks() -> None:
    sh = Shader()
    x, out = Buffer("x", "f32", ("in", 0)), Buffer("out", "f32", ("out",))
    assert out.store(sh, "i + 1u", x.load(sh, "2u * i")) == "out[i + 1u] = x[2u * i];"
    assert sh.bindings == (("in", 0), ("out",))


def test_every_helper_defines_the_function_it_is_named_by() -> None:
    for name, text in HELPERS.items():
        assert re.match(rf"fn {name}\(", text), name
        assert len(re.findall(r"^fn (\w+)\(", text, re.M)) == 1, name


@WGPU
def test_every_helper_compiles() -> None:
    from pyasg.kernels.wgpu.pipelines import pipeline

    require_wgpu()
    sh = Shader()
    for name in HELPERS:
        sh.helper(name)
    out = sh.write("out", "f32", ("out",))
    calls = ["log1p_f(1.0)", "expm1_f(1.0)", "erf_f(1.0)", "tanh_f(1.0)", "pow_f(2.0, 3.0)",
             "f32(pow_i(2, 3))", "f32(pow_u(2u, 3u))", "f32(floordiv_i(7, -2))",
             "f32(mod_i(7, -2))", "mod_f(7.0, -2.0)", "select(0.0, 1.0, is_nan(1.0))",
             "f32(taps(-1, 1, 3, 5).x)", "max_f(1.0, 2.0)", "min_f(1.0, 2.0)", "sign_f(-1.0)",
             "select(0.0, 1.0, ordered_f(1.0, 2.0))"]
    assert len(calls) == len(HELPERS)
    body = "\n".join(f"  {out}[{k}u] = {c};" for k, c in enumerate(calls))
    pipeline(sh.render(thread_entry(f"  if (i > 0u) {{ return; }}\n{body}")), "every helper")


# --------------------------------------------------------------------------- no patching

#: Method names that edit or search text.
TEXT_METHODS = {"replace", "find", "rfind", "count", "split", "rsplit", "splitlines",
                "partition", "rpartition", "startswith", "endswith", "removeprefix",
                "removesuffix"}
#: (file, what) -> why it is no patching of generated WGSL.
ALLOWED = {
    ("pipelines.py", ".splitlines()"):
        "numbers the lines of a shader that failed to compile, for the error message",
    ("measure.py", "text search: 'timestamp-query' in self.device.features"):
        "asks whether the device has a feature (a set of names), no shader text",
    ("tuning_cache.py", ".replace()"): "os.replace: the atomic rename of the cache file",
}


def _code_literal(node: ast.AST) -> bool:
    """An f-string, or a string literal that is code rather than a key (`"v" in types`)."""
    if isinstance(node, ast.JoinedStr):
        return True
    return isinstance(node, ast.Constant) and isinstance(node.value, str) \
        and not node.value.isidentifier()


def _text_named(node: ast.AST) -> bool:
    """A name or attribute that says it holds source text (`source`, `d.source`, ...)."""
    name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")
    return any(w in name.lower() for w in ("source", "text", "wgsl", "shader"))


def text_patching(tree: ast.AST) -> list[str]:
    """What in `tree` edits or searches text: text methods, `re`, `in` on text."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in TEXT_METHODS:
                found.append(f".{node.func.attr}()")
        if isinstance(node, ast.Import) and any(a.name == "re" for a in node.names):
            found.append("import re")
        if isinstance(node, ast.ImportFrom) and node.module == "re":
            found.append("from re import")
        if isinstance(node, ast.Attribute) and getattr(node.value, "id", None) == "re":
            found.append(f"re.{node.attr}")
        if isinstance(node, ast.Compare) and any(isinstance(o, (ast.In, ast.NotIn))
                                                 for o in node.ops):
            if _code_literal(node.left) or any(_text_named(x) for x in node.comparators):
                found.append(f"text search: {ast.unparse(node)}")
    return found


def test_the_detector_catches_the_old_patches() -> None:
    patches = {
        'source = d.source.replace(store, f"store({at}, acc);")': ".replace()",
        'missing = [h for h in helpers if f"fn {h}(" not in source]': "text search",
        'if "out[i] = acc;" in d.source: pass': "text search",
        'import re\nsource = re.sub("a", "b", source)': "re.sub",
        'at = store.split("= ")[1]': ".split()",
    }
    for snippet, what in patches.items():
        assert any(what in f for f in text_patching(ast.parse(snippet))), snippet
    clean = ("if d in axes and k not in used and 'v' in types:\n"
             "    names = dict(given)\n    x = '\\n'.join(lines)")
    assert text_patching(ast.parse(clean)) == []


def test_no_generator_patches_or_searches_shader_text() -> None:
    found = {(path.name, what) for path in sorted(WGPU_DIR.glob("*.py"))
             for what in text_patching(ast.parse(path.read_text()))}
    unexpected = sorted(found - set(ALLOWED))
    assert not unexpected, f"text patching in the wgpu generators: {unexpected}"
    assert set(ALLOWED) <= found, f"ALLOWED lists what no longer exists: {set(ALLOWED) - found}"
