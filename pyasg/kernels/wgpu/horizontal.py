"""Horizontal fusion's shaders: a kernel's `Part` run alone, or many parts as ONE dispatch.

A merged shader runs part k on its workgroups [start_k, start_k + groups_k): its entry
point takes the flat workgroup index g, finds the part by a binary search of `if`s on
g, and calls that part's function `part<k>(g - start_k, lid)`. g depends on the
workgroup id alone, so every workgroup of a part takes the same branch and a part's
barriers stay in uniform control flow.

Each part is generated afresh into the merged shader by its own generator (`emit`),
through a `Scope`: the part's view of the shader, in which the functions it declares
get a prefix of their own (two fused groups both have an `op5`), its bindings become
the merged shader's (one per buffer, however many parts read it), and workgroup
variables of one name and type are shared (one part runs per workgroup). Helpers are
global already. Nothing is pasted from another shader's text, and a part computes
exactly what it computes alone: the same generator writes the same arithmetic.

>>> from pyasg.kernels.wgpu.kernel import Part
>>> def negate(sh):
...     x, out = sh.read("x", "f32", ("in", 0)), sh.write("out", "f32", ("out",))
...     return f"  if (i >= 10u) {{ return; }}\\n  {out}[i] = -{x}[i];"
>>> a = Part.of_threads(negate, 10)
>>> d = merge([(a, {("in", 0): ("value", 1), ("out",): ("value", 2)}),
...            (a, {("in", 0): ("value", 1), ("out",): ("value", 3)})])
>>> d.bindings, d.workgroups  # -%1 into %2 and into %3: %1 is bound once
((('value', 1), ('value', 2), ('value', 3)), (2, 1, 1))
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

from pyasg.errors import BackendError
from pyasg.kernels.wgpu.codegen import grid
from pyasg.kernels.wgpu.kernel import Dispatch, Part, WgpuKernel
from pyasg.kernels.wgpu.shader import Shader, group_entry, thread_entry

#: The entry point's flat workgroup index, over a 2-d grid (`codegen.grid`).
_FLAT_GROUP = "  let g = wid.x + wid.y * nwg.x;"


def alone(part: Part) -> Dispatch:
    """`part` as a dispatch of its own (what its generator used to build directly).

    >>> from pyasg.kernels.wgpu.kernel import Part
    >>> d = alone(Part.of_threads(lambda sh: f"  {sh.write('out', 'f32', ('out',))}[i] = 1.0;",
    ...                           600))
    >>> d.bindings, d.workgroups
    ((('out',),), (3, 1, 1))
    """
    sh = Shader()
    body = part.emit(sh)
    if part.threads:
        return sh.dispatch(thread_entry(body, part.size), grid(part.groups, 1))
    return sh.dispatch(group_entry(f"{_FLAT_GROUP}\n{body}", part.size), grid(part.groups, 1))


def parts_kernel(parts: Sequence[Part], scratch: Sequence[int] = ()) -> WgpuKernel:
    """The kernel of `parts`: each part alone as one of its dispatches, and the parts
    themselves, so that the kernel may also run merged with others."""
    return WgpuKernel(tuple(alone(p) for p in parts), scratch=tuple(scratch),
                      parts=tuple(parts))


class Scope:
    """Part `prefix`'s view of a merged shader `sh` (see the module doc): `bound_of` maps
    each binding the part asks for (`("in", k)`, `("out",)`, `("tmp", k)`) to what the
    merged dispatch binds there; `names` (binding -> name) and `shared` (workgroup
    variable (name, type) -> name) are common to every part of the shader."""

    def __init__(self, sh: Shader, prefix: str, bound_of: Mapping[tuple, Hashable],
                 names: dict[Hashable, str], shared: dict[tuple[str, str], str]) -> None:
        self.sh, self.prefix, self.bound_of = sh, prefix, bound_of
        self.names, self.shared = names, shared

    def bind(self, name: str, elem: str, bound: tuple, writable: bool = False) -> str:
        key = self.bound_of.get(tuple(bound))
        if key is None:
            raise BackendError(f"internal: a merged part asks for {bound}, which it was not "
                               f"given (it has {sorted(self.bound_of)})", source=None)
        merged = self.names.setdefault(key, f"b{len(self.names)}")
        return self.sh.bind(merged, elem, key, writable)

    def read(self, name: str, elem: str, bound: tuple) -> str:
        return self.bind(name, elem, bound)

    def write(self, name: str, elem: str, bound: tuple) -> str:
        return self.bind(name, elem, bound, writable=True)

    def helper(self, name: str) -> str:
        return self.sh.helper(name)

    def function(self, name: str, params: str, body: str, returns: str | None = None) -> str:
        return self.sh.function(f"{self.prefix}{name}", params, body, returns)

    def workgroup(self, name: str, type: str) -> str:
        found = self.shared.get((name, type))
        if found is None:
            taken = set(self.shared.values())
            found = name if name not in taken else f"{name}_{len(self.shared)}"
            self.shared[(name, type)] = self.sh.workgroup(found, type)
        return found


def _branch(spans: Sequence[tuple[int, str]], indent: str) -> str:
    """WGSL calling the part whose workgroups hold g: a binary search on the starts."""
    if len(spans) == 1:
        start, fn = spans[0]
        return f"{indent}{fn}({'g' if start == 0 else f'g - {start}u'}, lid);"
    mid = len(spans) // 2
    inner = indent + "  "
    return (f"{indent}if (g < {spans[mid][0]}u) {{\n{_branch(spans[:mid], inner)}\n"
            f"{indent}}} else {{\n{_branch(spans[mid:], inner)}\n{indent}}}")


def merge(parts: Sequence[tuple[Part, Mapping[tuple, Hashable]]]) -> Dispatch:
    """ONE dispatch running each (part, bound_of) on workgroups of its own, in order; its
    bindings are the `bound_of` values, each once. The parts must share a workgroup size.
    """
    size = parts[0][0].size
    if any(p.size != size for p, _ in parts):
        raise BackendError(f"internal: merged parts of workgroup sizes "
                           f"{sorted({p.size for p, _ in parts})}", source=None)
    sh = Shader()
    names: dict[Hashable, str] = {}
    shared: dict[tuple[str, str], str] = {}
    spans, start = [], 0
    for k, (part, bound_of) in enumerate(parts):
        body = part.emit(Scope(sh, f"p{k}_", bound_of, names, shared))
        if part.threads:  # the flat thread index of a one-dimensional workgroup
            body = f"  let i = g * {size}u + lid;\n{body}"
        spans.append((start, sh.function(f"part{k}", "g: u32, lid: u32", body)))
        start += part.groups
    entry = (f"{_FLAT_GROUP}\n  if (g >= {start}u) {{ return; }}  // the grid's rounding\n"
             f"{_branch(spans, '  ')}")
    return sh.dispatch(group_entry(entry, size), grid(start, 1))
