"""The shader builder: one WGSL compute shader's declarations, rendered in one fixed order.

No generator edits text that another function produced. A generator asks a `Shader`
for what its code uses: a storage binding (`read`, `write`), a helper function of the
`HELPERS` table (`helper`), a workgroup variable (`workgroup`), a function of its own
(`function`). Generators compose through hooks: a `Load` gives the WGSL that reads one
element at an index expression, a `Store` the statement that writes one (`Buffer`
gives both for a plain array; a fused group passes its prologue, epilogue or
transposed store instead). Whoever asks for a thing again gets the same declaration;
asking for a name with another meaning is an error.

Bindings are numbered in the order first asked for, each recording what it is bound
to (`("in", k)`, `("out",)`, `("tmp", k)`: see `kernel.py`). `render` writes the
bindings, the helpers, the workgroup variables, the functions and the entry point, in
that order; the same requests in the same order give the same text, so pipelines cache.

>>> sh = Shader()
>>> x, out = Buffer("x", "f32", ("in", 0)), Buffer("out", "f32", ("out",))
>>> print(out.store(sh, "i", f"{sh.helper('tanh_f')}({x.load(sh, 'i')})"))
out[i] = tanh_f(x[i]);
>>> sh.bindings
(('in', 0), ('out',))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pyasg.errors import BackendError
from pyasg.kernels.wgpu.codegen import WORKGROUP
from pyasg.kernels.wgpu.helpers import HELPERS
from pyasg.kernels.wgpu.kernel import Dispatch

#: `load(sh, at)`: the WGSL expression of the element at index expression `at`.
Load = Callable[["Shader", str], str]
#: `store(sh, at, value)`: the WGSL statement writing `value` to element `at`.
Store = Callable[["Shader", str, str], str]


@dataclass(frozen=True)
class _Binding:
    elem: str
    writable: bool
    bound: tuple


@dataclass(frozen=True)
class _Function:
    params: str
    returns: str | None
    body: str


class Shader:
    """One compute shader under construction (see the module docstring).

    >>> sh = Shader()
    >>> sh.read("a", "f32", ("in", 1)), sh.write("out", "f32", ("out",))
    ('a', 'out')
    >>> sh.read("a", "f32", ("in", 1))  # the same binding again: declared once
    'a'
    >>> sh.bindings
    (('in', 1), ('out',))
    """

    def __init__(self) -> None:
        self._bindings: dict[str, _Binding] = {}
        self._helpers: list[str] = []
        self._workgroup: dict[str, str] = {}
        self._functions: dict[str, _Function] = {}
        self._names: dict[str, object] = {}  # every module-scope name -> its declaration

    def _declare(self, name: str, what: object) -> bool:
        """Claim module-scope `name` for `what`: True if new, False if already so declared."""
        known = self._names.get(name)
        if known is None:
            self._names[name] = what
            return True
        if known != what:
            raise BackendError(f"internal: the WGSL name {name!r} is declared twice, as "
                               f"{known} and as {what}", source=None)
        return False

    def bind(self, name: str, elem: str, bound: tuple, writable: bool = False) -> str:
        """A storage binding `name: array<elem>` bound to `bound`; returns `name`.

        >>> Shader().bind("tmp0", "u32", ("tmp", 0), writable=True)
        'tmp0'
        """
        binding = _Binding(elem, writable, tuple(bound))
        for other, b in self._bindings.items():
            if b.bound == binding.bound and other != name:
                raise BackendError(f"internal: {bound} is bound twice, as {other!r} and as "
                                   f"{name!r}", source=None)
        if self._declare(name, binding):
            self._bindings[name] = binding
        return name

    def read(self, name: str, elem: str, bound: tuple) -> str:
        """A read-only storage binding (see `bind`)."""
        return self.bind(name, elem, bound)

    def write(self, name: str, elem: str, bound: tuple) -> str:
        """A read-write storage binding (see `bind`)."""
        return self.bind(name, elem, bound, writable=True)

    def helper(self, name: str) -> str:
        """The helper function `name` of `HELPERS`, emitted once; returns `name`.

        >>> Shader().helper("erf")
        Traceback (most recent call last):
        ...
        pyasg.errors.BackendError: internal: no WGSL helper 'erf' (known: erf_f, ...)
        """
        if name not in HELPERS:
            raise BackendError(f"internal: no WGSL helper {name!r} (known: "
                               f"{', '.join(sorted(HELPERS))})", source=None)
        if self._declare(name, "helper"):
            self._helpers.append(name)
        return name

    def workgroup(self, name: str, type: str) -> str:
        """A workgroup variable `var<workgroup> name: type;`; returns `name`."""
        if self._declare(name, f"var<workgroup> {type}"):
            self._workgroup[name] = type
        return name

    def function(self, name: str, params: str, body: str, returns: str | None = None) -> str:
        """A function `fn name(params) -> returns { body }` of the generator's; returns `name`.

        >>> sh = Shader()
        >>> sh.function("twice", "x: f32", "  return 2.0 * x;", "f32")
        'twice'
        >>> print(sh.render("// entry"))
        fn twice(x: f32) -> f32 {
          return 2.0 * x;
        }
        <BLANKLINE>
        // entry
        """
        fn = _Function(params, returns, body)
        if self._declare(name, fn):
            self._functions[name] = fn
        return name

    @property
    def bindings(self) -> tuple[tuple, ...]:
        """What each binding is bound to, in binding order."""
        return tuple(b.bound for b in self._bindings.values())

    def render(self, entry: str) -> str:
        """The WGSL source: bindings, helpers, workgroup variables, functions, `entry`."""
        decls = "\n".join(
            f"@group(0) @binding({k}) var<storage, {'read_write' if b.writable else 'read'}> "
            f"{name}: array<{b.elem}>;" for k, (name, b) in enumerate(self._bindings.items()))
        shared = "\n".join(f"var<workgroup> {name}: {t};" for name, t in self._workgroup.items())
        functions = [f"fn {name}({f.params})" + (f" -> {f.returns}" if f.returns else "")
                     + f" {{\n{f.body}\n}}" for name, f in self._functions.items()]
        parts = [decls, *(HELPERS[h] for h in self._helpers), shared, *functions, entry]
        return "\n\n".join(p for p in parts if p)

    def dispatch(self, entry: str, workgroups: tuple[int, int, int]) -> Dispatch:
        """The rendered shader run on `workgroups`, with its bindings."""
        return Dispatch(self.render(entry), workgroups, self.bindings)


def thread_entry(body: str, size: int = WORKGROUP) -> str:
    """The entry point `main`, `size` threads a workgroup, whose body sees `i`, the flat
    thread index over a 2-d grid of workgroups (`codegen.grid`).

    >>> print(thread_entry("  out[i] = 1.0;", 64).splitlines()[-3])
      let i = gid.x + gid.y * nwg.x * 64u;
    """
    return (f"@compute @workgroup_size({size})\n"
            "fn main(@builtin(global_invocation_id) gid: vec3<u32>,\n"
            "        @builtin(num_workgroups) nwg: vec3<u32>) {\n"
            f"  let i = gid.x + gid.y * nwg.x * {size}u;\n"
            f"{body}\n"
            "}\n")


def group_entry(body: str, size: int) -> str:
    """The entry point `main`, `size` threads a workgroup, whose body sees `wid` (the
    workgroup's id), `nwg` (the grid's size) and `lid` (the thread's index in it).

    >>> group_entry("", 256).splitlines()[0]
    '@compute @workgroup_size(256)'
    """
    return (f"@compute @workgroup_size({size})\n"
            "fn main(@builtin(workgroup_id) wid: vec3<u32>,\n"
            "        @builtin(num_workgroups) nwg: vec3<u32>,\n"
            "        @builtin(local_invocation_index) lid: u32) {\n"
            f"{body}\n"
            "}\n")


@dataclass(frozen=True)
class Buffer:
    """A storage binding read or written one element at a time: `load` and `store` are
    the plain hooks.

    >>> sh = Shader()
    >>> Buffer("out4", "vec4<f32>", ("out",)).store(sh, "q / 4u", "v")
    'out4[q / 4u] = v;'
    """

    name: str
    elem: str
    bound: tuple

    def load(self, sh: Shader, at: str) -> str:
        return f"{sh.read(self.name, self.elem, self.bound)}[{at}]"

    def store(self, sh: Shader, at: str, value: str) -> str:
        return f"{sh.write(self.name, self.elem, self.bound)}[{at}] = {value};"
