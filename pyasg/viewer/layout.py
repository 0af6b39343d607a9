"""Where the viewer draws each node: module scopes collapsed into boxes, parameters inside
the boxes of the ops that read them, the rest a layered drawing flowing top to bottom.

Pure geometry, no GUI: `layout(graph)` returns boxes in canvas units that the canvas
draws as they are, each sized to its longest line of text (`labels.text_width`: the
canvas font is monospaced, so no label is ever cut).

Steps:

1. Only live nodes and the graph inputs are laid out (`graph.live_ids | graph.inputs`).
2. Attributes: a parameter (an `Input` with a dotted path, see `scopes`) or a
   `Constant` that some laid-out node reads, and that is not an output, is no box of
   its own: it is a line (`weight 64×64 f32`) inside the box of each node reading it,
   as Netron draws a MatMul's weight. Everything else is a *main* node.
3. Collapsing: every main node whose `scopes` entry is a collapsed prefix (or lies
   under it, on dotted boundaries) goes into one box keyed by that prefix. A prefix
   may start at any component (`blocks.0.attn` finds `params.blocks.0.attn`) and may
   use `*` for one component: `blocks.*` makes one box per block. The outermost
   prefix given wins. A scope in `expanded` is opened: its nodes go into the boxes
   of its child scopes one component deeper (each collapsed unless expanded too),
   and a node directly in it stands alone. `default_collapse` picks the module
   scopes the viewer starts with.
   A box must not create a cycle, which can happen when its nodes are interleaved
   with outside nodes (the forward and backward halves of a layer in a gradient
   graph): such a group is **split** into as few boxes as the greedy rule below finds,
   keyed `prefix`, `prefix#2`, `prefix#3`, … in topological order. Nodes are visited
   in id (topological) order; a node joins the group's newest box unless one of its
   inputs lies in another box that the newest box already reaches, in which case it
   starts a new box. So the collapsed graph is always a DAG. A group of fewer than
   `min_group` nodes (default 2) is drawn as its nodes.
4. The boxes and the edges between them are drawn by `pyasg.viewer.sugiyama.draw`:
   layers top to bottom, long edges bent around the boxes between, crossings reduced
   by barycentre sweeps, x by least squares under the order.

>>> from pyasg.asg import GraphBuilder, TensorType
>>> from pyasg.asg.ops import Add, Exp, MatMul
>>> b = GraphBuilder()
>>> x = b.add_input("x", TensorType((2, 3)))
>>> w = b.add_input("p.fc.weight", TensorType((3, 3)))
>>> h = b.add(MatMul(), (x, w))
>>> y = b.add(Add(), (b.add(Exp(), (h,)), h))
>>> g = b.build([y])
>>> scopes(g)
{0: '', 1: 'p.fc', 2: 'p.fc', 3: 'p.fc', 4: 'p.fc'}
>>> lay = layout(g)
>>> [[lay.boxes[k].label for k in layer] for layer in lay.layers]
[['x'], ['matmul'], ['exp'], ['add']]
>>> lay.boxes[h].lines, lay.boxes[h].line_nodes
(('matmul', '2×3 f32', 'weight 3×3 f32'), (2, None, 1))
>>> lay.boxes[y].is_output, count_crossings(lay)
(True, 0)
>>> small = layout(g, collapse=["p.fc"])
>>> small.layers, small.edges, small.boxes["p.fc"].lines
([[0], ['p.fc']], [(0, 'p.fc')], ('[+] fc', '3 ops'))
>>> layout(g, collapse=["p.fc"], expanded=["p.fc"]).edges
[(0, 2), (2, 3), (3, 4), (2, 4)]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from pyasg.asg import Graph
from pyasg.asg.ops import Constant, Input
from pyasg.viewer import sugiyama, texts
from pyasg.viewer.labels import compact, shape_text, text_width

__all__ = ["Box", "Key", "Layout", "box_nodes", "count_crossings", "default_collapse",
           "group_title", "layout", "scopes"]

#: A box key: a node id, or a collapsed prefix (`"p.attn"`, `"p.attn#2"` when split).
Key = int | str

#: The path prefix of a value an inner trace captured from the outer one (data, not a
#: parameter).
CAPTURED = "captured."
#: The canvas font size, a line's height and a box's padding, in canvas units.
FONT = 13.0
LINE = 17.0
PAD = 7.0
#: The gaps between boxes in a layer and between layers.
GAP = (26.0, 40.0)
#: The fewest nodes a scope needs to be collapsed by default (`default_collapse`).
MIN_GROUP = 3


@dataclass(frozen=True)
class Box:
    """One drawn rectangle: a node (with its attributes), or a collapsed group of nodes.

    `category` is the op's category, or `"group"` for a collapsed box; `nodes` are
    the main graph ids it stands for, `attrs` the parameters and constants drawn
    inside it; `is_output` when any node is a graph output. `lines` are the texts
    drawn, top down (`lines[0]` is `label`), and `line_nodes` the node each line
    stands for (a click on an attribute's line selects that parameter), or None.
    """

    x: float
    y: float
    w: float
    h: float
    layer: int
    label: str
    category: str
    nodes: tuple[int, ...]
    is_output: bool
    collapsed: bool
    lines: tuple[str, ...] = ()
    line_nodes: tuple[int | None, ...] = ()
    attrs: tuple[int, ...] = ()

    def line_at(self, y: float) -> int | None:
        """The node of the line at canvas height `y` inside this box (None: none)."""
        row = int((y - self.y - PAD / 2) // LINE)
        return self.line_nodes[row] if 0 <= row < len(self.line_nodes) else None


@dataclass
class Layout:
    """Boxes by key, deduplicated edges between keys, keys per layer in drawing order.

    `routes` are each edge's polyline (from the bottom of its source to the top of
    its target, bending where it passes layers); `ranks` and `segments` are the
    layers with the bend points and the edges between adjacent ranks (for counting
    crossings); `expanded` the opened scopes.
    """

    boxes: dict[Key, Box]
    edges: list[tuple[Key, Key]]
    layers: list[list[Key]]
    width: float
    height: float
    scopes: dict[int, str] = field(default_factory=dict)
    routes: dict[tuple[Key, Key], list[tuple[float, float]]] = field(default_factory=dict)
    ranks: list[list[object]] = field(default_factory=list)
    segments: list[tuple[object, object]] = field(default_factory=list)
    expanded: frozenset[str] = frozenset()


# --------------------------------------------------------------------------- scopes


def _common_prefix(names: Iterable[str]) -> str:
    """Longest common dotted prefix: `a.b.c`, `a.b.d` -> `a.b`; `a.b`, `` -> ``."""
    parts_list = [n.split(".") if n else [] for n in names]
    if not parts_list:
        return ""
    common = parts_list[0]
    for parts in parts_list[1:]:
        k = 0
        while k < min(len(common), len(parts)) and common[k] == parts[k]:
            k += 1
        common = common[:k]
    return ".".join(common)


def _match(scope: str, pattern: str) -> str | None:
    """The prefix of `scope` that `pattern` names, or None.

    A pattern is a dotted name whose parts are matched on whole components, `*`
    standing for any one; it may start at any component (`blocks.0.attn` finds
    `params.blocks.0.attn`), the leftmost place winning.

    >>> _match("ps.blocks.3.attn", "blocks.*"), _match("ps.blocks.3", "ps.blocks.3.attn")
    ('ps.blocks.3', None)
    """
    parts, want = scope.split("."), pattern.split(".")
    for start in range(len(parts) - len(want) + 1):
        if all(w in ("*", p) for w, p in zip(want, parts[start:])):
            return ".".join(parts[:start + len(want)])
    return None


def scopes(graph: Graph) -> dict[int, str]:
    """Each node's layer scope (a dotted prefix), used for collapsing.

    Rule:

    - an `Input`'s scope is its path minus the last component
      (`params.blocks.0.attn.w_q.weight` -> `params.blocks.0.attn.w_q`; a
      top-level input such as `x`, and a value an inner trace captured from the
      outer one (`captured.0`), has scope `""`). An input with a non-empty scope
      counts as a *parameter*;
    - any other node takes the longest common dotted prefix of the scopes of
      the parameters it reads directly; else the scope of its newest (highest
      id) input that has a non-empty scope, so activations inherit the scope of
      the layer that made them, and what layers share — the residual stream
      `h + attn(h)`, a cotangent flowing back through a gradient graph — joins
      the newest layer it reads (a block collapses whole); else `""`;
    - a node that has no scoped input (a constant, what is computed from constants
      or from data only, such as the layer norm that opens the first block) gets the
      common prefix of its users' scopes instead (`""` if they have none or share none);
    - a node that reads no parameter, all of whose users have one same non-empty
      scope, takes that scope (visited from the outputs back): what feeds one layer
      only belongs to it, so the normalising ops of a layer norm, which read the
      residual stream, join the norm and not the layer before.

    >>> from pyasg.asg import GraphBuilder, TensorType
    >>> from pyasg.asg.ops import Constant, Mul
    >>> b = GraphBuilder()
    >>> x = b.add_input("x", TensorType((3,)))
    >>> s = b.add_input("params.blocks.0.scale", TensorType((3,)))
    >>> y = b.add(Mul(), (b.add(Mul(), (x, s)), b.add(Constant.of([2, 2, 2], "float32"))))
    >>> scopes(b.build([y]))
    {0: '', 1: 'params.blocks.0', 2: 'params.blocks.0', 3: 'params.blocks.0', 4: 'params.blocks.0'}
    """
    result: dict[int, str | None] = {}
    direct: set[int] = set()  # inputs, and the nodes that read a parameter
    for i in graph.ids:
        node = graph.nodes[i]
        if isinstance(node.op, Input):
            direct.add(i)
            path = node.op.path
            data = "." not in path or path.startswith(CAPTURED)
            result[i] = "" if data else path.rsplit(".", 1)[0]
            continue
        params = [result[j] for j in node.inputs
                  if isinstance(graph.nodes[j].op, Input) and result[j]]
        if params:
            direct.add(i)
            result[i] = _common_prefix(params)
            continue
        # A node the layers share (the residual stream `h + attn(h)`, a cotangent
        # flowing back) joins the newest layer it reads: the one that made its newest
        # scoped input. So a block collapses whole, its residual add included.
        scoped = [(j, s) for j in node.inputs if (s := result[j])]
        if scoped:
            result[i] = max(scoped)[1]
        else:
            result[i] = None  # decided by its users below
    users = graph.users
    for i in reversed(graph.ids):
        if result[i] is None:
            known = [s for u in users[i] if (s := result[u]) is not None]
            result[i] = _common_prefix(known) if known else ""
        elif i not in direct and users[i]:
            # what feeds one layer only belongs to it: the normalising ops of a layer
            # norm read the residual stream (another layer's scope) but serve the norm
            theirs = {result[u] for u in users[i]}
            if len(theirs) == 1 and (only := theirs.pop()):
                result[i] = only
    return {i: s or "" for i, s in result.items()}


# --------------------------------------------------------------------------- grouping


def _reaches(succ: dict[Key, set[Key]], start: Key, targets: set[Key]) -> bool:
    seen, stack = {start}, [start]
    while stack:
        for n in succ[stack.pop()]:
            if n in targets:
                return True
            if n not in seen:
                seen.add(n)
                stack.append(n)
    return False


def _box_prefix(scope: str, prefixes: Sequence[str], expanded: frozenset[str]) -> str | None:
    """The collapsed prefix whose box holds a node of `scope`, or None (it stands alone).

    >>> _box_prefix("p.b.0.attn.w_q", ["b.*"], frozenset({"p.b.0"}))
    'p.b.0.attn'
    >>> _box_prefix("p.b.0", ["b.*"], frozenset({"p.b.0"})) is None
    True
    """
    found = next((m for p in prefixes if (m := _match(scope, p)) is not None), None)
    if found is None:
        return None
    parts = scope.split(".")
    for n in range(found.count(".") + 1, len(parts) + 1):
        candidate = ".".join(parts[:n])
        if candidate not in expanded:
            return candidate
    return None


def _group(graph: Graph, ids: Sequence[int], scope: dict[int, str],
           collapse: Sequence[str], expanded: frozenset[str] = frozenset()) -> dict[int, Key]:
    """Box key of each laid-out node; collapsed groups are split where needed to stay a DAG."""
    # Outermost prefix first, so that `p` wins over `p.attn`.
    prefixes = sorted(dict.fromkeys(collapse), key=lambda p: (p.count("."), len(p)))
    key_of: dict[int, Key] = {}
    succ: dict[Key, set[Key]] = {}
    newest: dict[str, str] = {}
    pieces: dict[str, int] = {}
    for i in ids:
        prefix = _box_prefix(scope[i], prefixes, expanded)
        in_keys = {key_of[j] for j in graph.nodes[i].inputs if j in key_of}
        if prefix is None:
            key: Key = i
        else:
            key = newest.get(prefix, prefix)
            others = in_keys - {key}
            if key in succ and others and _reaches(succ, key, others):
                pieces[prefix] = pieces.get(prefix, 1) + 1
                key = f"{prefix}#{pieces[prefix]}"
            newest[prefix] = key
        key_of[i] = key
        succ.setdefault(key, set())
        for k in in_keys:
            if k != key:
                succ[k].add(key)
    return key_of




def _dissolve_small(key_of: dict[int, Key], min_group: int) -> dict[int, Key]:
    """A group of fewer than `min_group` nodes is drawn as its nodes."""
    count: dict[Key, int] = {}
    for k in key_of.values():
        count[k] = count.get(k, 0) + 1
    return {i: (i if isinstance(k, str) and count[k] < min_group else k)
            for i, k in key_of.items()}


def box_nodes(lay: Layout) -> dict[Key, tuple[int, ...]]:
    """Each box's nodes and the attributes drawn inside it that no earlier box draws: every
    node of the layout once (a parameter read by several boxes belongs to the first, the
    box a click on it selects), so that sums over boxes (the heat map's) count it once.

    >>> from pyasg.asg import GraphBuilder, TensorType
    >>> from pyasg.asg.ops import Mul
    >>> b = GraphBuilder()
    >>> x, w = b.add_input("x", TensorType((3,))), b.add_input("p.w", TensorType((3,)))
    >>> h = b.add(Mul(), (x, w))
    >>> box_nodes(layout(b.build([b.add(Mul(), (h, w))])))  # w is drawn in both muls
    {0: (0,), 2: (2, 1), 3: (3,)}
    """
    seen: set[int] = set()
    out: dict[Key, tuple[int, ...]] = {}
    for key, box in lay.boxes.items():
        out[key] = box.nodes + tuple(i for i in box.attrs if i not in seen)
        seen.update(box.attrs)
    return out


def default_collapse(graph: Graph) -> list[str]:
    """The module scopes the viewer shows collapsed at first: below the argument's root,
    through containers of numbered layers (`blocks.0`, `blocks.1`) and scopes with one
    child, the first scopes holding at least `MIN_GROUP` main nodes.

    >>> from pyasg.asg import GraphBuilder, TensorType
    >>> from pyasg.asg.ops import Mul
    >>> b = GraphBuilder()
    >>> h = b.add_input("x", TensorType((3,)))
    >>> for i in range(2):
    ...     w = b.add_input(f"p.blocks.{i}.fc.w", TensorType((3,)))
    ...     h = b.add(Mul(), (b.add(Mul(), (b.add(Mul(), (h, w)), w)), w))
    >>> default_collapse(b.build([h]))
    ['p.blocks.0', 'p.blocks.1']
    """
    ids = sorted(set(graph.live_ids) | set(graph.inputs))
    scope = scopes(graph)
    attrs = _attributes(graph, ids, scope)
    count: dict[str, int] = {}
    for i in ids:
        if i in attrs or not scope[i]:
            continue
        parts = scope[i].split(".")
        for n in range(1, len(parts) + 1):
            prefix = ".".join(parts[:n])
            count[prefix] = count.get(prefix, 0) + 1
    children: dict[str, list[str]] = {}
    for prefix in count:
        parent = prefix.rsplit(".", 1)[0] if "." in prefix else ""
        children.setdefault(parent, []).append(prefix)
    chosen: list[str] = []

    def visit(prefix: str) -> None:
        kids = children.get(prefix, [])
        numbered = bool(kids) and all(k.rsplit(".", 1)[-1].isdigit() for k in kids)
        container = "." not in prefix or numbered
        if count[prefix] >= MIN_GROUP and not container:
            chosen.append(prefix)
            return
        for kid in kids:
            visit(kid)

    for root in children.get("", []):
        visit(root)
    return chosen


# --------------------------------------------------------------------------- labels


#: Op categories whose node, when it reads attributes only, is an attribute too: a view
#: or a cast of a weight (`x @ transpose(W)` shows `weight.T` inside the matmul).
DERIVED_CATEGORIES = frozenset({"shape", "cast"})
#: How a derived attribute's line names what was done to the weight.
DERIVED_SUFFIX: dict[str, str] = {"transpose": ".T"}


def _attributes(graph: Graph, ids: Sequence[int], scope: dict[int, str]) -> set[int]:
    """Parameters and constants read by a laid-out node, and views or casts of them only,
    that are not outputs."""
    outputs = set(graph.outputs)
    read = {j for i in ids for j in graph.nodes[i].inputs}
    found: set[int] = set()
    for i in ids:  # ids are in topological order: a view's inputs are decided first
        if i not in read or i in outputs:
            continue
        node = graph.nodes[i]
        op = node.op
        if (isinstance(op, Constant) or (isinstance(op, Input) and scope[i])
                or (op.category in DERIVED_CATEGORIES and node.inputs
                    and all(j in found for j in node.inputs))):
            found.add(i)
    return found


def _attribute_line(graph: Graph, i: int) -> str:
    node = graph.nodes[i]
    op = node.op
    shape = shape_text(node.type.shape, node.type.dtype)
    if isinstance(op, Constant):
        if node.type.size <= 4:
            return "const " + " ".join(compact(float(v)) for v in op.value.reshape(-1))
        return f"const {shape}"
    while not isinstance(op, (Input, Constant)):  # a view of a weight: name the weight
        suffix = DERIVED_SUFFIX.get(op.name, f".{op.name}")
        base = _attribute_line(graph, node.inputs[0]).split(" ", 1)[0]
        return f"{base}{suffix} {shape}"
    return f"{op.path.rsplit('.', 1)[-1]} {shape}"


def group_title(key: str) -> str:
    """A collapsed box's first line: the scope without the argument's name, its piece.

    >>> group_title("params.blocks.0"), group_title("p.attn#2"), group_title("model")
    ('[+] blocks.0', '[+] attn #2', '[+] model')
    """
    base, _, piece = key.partition("#")
    short = base.split(".", 1)[1] if "." in base else base
    return f"[+] {short}" + (f" #{piece}" if piece else "")


def _node_lines(graph: Graph, i: int, attrs: set[int]) -> tuple[list[str], list[int | None]]:
    node = graph.nodes[i]
    title = node.op.path if isinstance(node.op, Input) else node.op.label()
    lines, owners = [title, shape_text(node.type.shape, node.type.dtype)], [i, None]
    for j in dict.fromkeys(node.inputs):
        if j in attrs:
            lines.append(_attribute_line(graph, j))
            owners.append(_root(graph, j))  # a click on `weight.T` selects the weight
    return lines, owners


def _root(graph: Graph, i: int) -> int:
    """The parameter or constant a derived attribute is a view of."""
    while graph.nodes[i].inputs:
        i = graph.nodes[i].inputs[0]
    return i


def _closure(graph: Graph, direct: Iterable[int]) -> tuple[int, ...]:
    """`direct` attributes and everything they are derived from, in id order."""
    seen: set[int] = set()
    stack = list(direct)
    while stack:
        i = stack.pop()
        if i not in seen:
            seen.add(i)
            stack.extend(graph.nodes[i].inputs)
    return tuple(sorted(seen))


# --------------------------------------------------------------------------- layout


def layout(graph: Graph, collapse: Iterable[str] = (), expanded: Iterable[str] = (),
           lang: str = "en", min_group: int = 2) -> Layout:
    """Lay `graph` out top to bottom (see the module docstring).

    `collapse` lists scope prefixes (see `scopes`) whose nodes become one box each,
    `expanded` the scopes opened again; a group of fewer than `min_group` nodes is
    drawn as its nodes (the viewer passes `MIN_GROUP`: a box saying "2 ops" hides more
    than it saves); `lang` is the language of a group's count line.

    >>> from pyasg.asg import GraphBuilder, TensorType
    >>> from pyasg.asg.ops import Exp
    >>> b = GraphBuilder()
    >>> x = b.add_input("x", TensorType((3,)))
    >>> lay = layout(b.build([b.add(Exp(), (x,))]))
    >>> lay.boxes[1].lines, lay.boxes[1].y > lay.boxes[0].y
    (('exp', '3 f32'), True)
    """
    collapse = tuple(collapse)
    for prefix in collapse:
        if not isinstance(prefix, str) or not prefix or prefix.strip(".") != prefix:
            raise ValueError(f"collapse prefix must be a non-empty dotted name, got {prefix!r}")
    opened = frozenset(expanded)
    ids = sorted(set(graph.live_ids) | set(graph.inputs))
    scope = scopes(graph)
    attrs = _attributes(graph, ids, scope)
    main = [i for i in ids if i not in attrs]
    key_of = _dissolve_small(_group(graph, main, scope, collapse, opened), min_group)

    members: dict[Key, list[int]] = {}
    for i in main:
        members.setdefault(key_of[i], []).append(i)
    edges: dict[tuple[Key, Key], None] = {}
    for i in main:
        for j in graph.nodes[i].inputs:
            if j in key_of and key_of[j] != key_of[i]:
                edges[(key_of[j], key_of[i])] = None
    edge_list = list(edges)

    content: dict[Key, tuple[list[str], list[int | None], tuple[int, ...]]] = {}
    for k, nodes in members.items():
        inside = _closure(graph, (j for i in nodes for j in graph.nodes[i].inputs
                                  if j in attrs))
        if isinstance(k, str):
            count = texts.ui_text("group_count", lang).format(n=len(nodes))
            content[k] = ([group_title(k), count], [nodes[0], None], inside)
        else:
            lines, owners = _node_lines(graph, k, attrs)
            content[k] = (lines, owners, inside)
    sizes = {k: (max(text_width(t, FONT) for t in lines) + 2 * PAD, len(lines) * LINE + PAD)
             for k, (lines, _, _) in content.items()}
    drawing = sugiyama.draw(list(members), edge_list, sizes, gap=GAP,
                            first={k: float(v[0]) for k, v in members.items()})

    outputs = set(graph.outputs)
    boxes: dict[Key, Box] = {}
    for k, nodes in members.items():
        lines, owners, inside = content[k]
        (x, y), (w, h) = drawing.xy[k], sizes[k]
        if isinstance(k, str):
            category = "group"
        else:
            category = graph.nodes[k].op.category
        boxes[k] = Box(x=x, y=y, w=w, h=h, layer=drawing.layer_of[k], label=lines[0],
                       category=category, nodes=tuple(nodes),
                       is_output=bool(outputs.intersection(nodes)), collapsed=isinstance(k, str),
                       lines=tuple(lines), line_nodes=tuple(owners), attrs=inside)
    return Layout(boxes=boxes, edges=edge_list, layers=drawing.layers, width=drawing.width,
                  height=drawing.height, scopes={i: scope[i] for i in ids},
                  routes=drawing.routes, ranks=drawing.ranks, segments=drawing.segments,
                  expanded=opened)


def count_crossings(lay: Layout) -> int:
    """How many pairs of edge segments between adjacent layers cross (shared ends do not).

    >>> from pyasg.asg import GraphBuilder, TensorType
    >>> from pyasg.asg.ops import Add
    >>> b = GraphBuilder()
    >>> x, y = b.add_input("x", TensorType(())), b.add_input("y", TensorType(()))
    >>> count_crossings(layout(b.build([b.add(Add(), (x, y))])))
    0
    """
    return sugiyama.count_crossings(lay.ranks, lay.segments)
