"""PyTorch `state_dict` names <-> pyasg parameter paths, by a table of rules.

Most names are the same in both (pyasg's layers keep PyTorch's `state_dict` names and
layouts: Linear `weight` [out, in] and `bias`, Conv2d, LayerNorm, Embedding,
Sequential's `0.weight`, …). Where a pyasg layer names or lays out its arrays
otherwise, one row of `TORCH_RULES` says how, and both directions read that row:

=============================  ==========================================================
PyTorch layer                   pyasg layer, and the names that differ
=============================  ==========================================================
TransformerEncoderLayer         TransformerBlock: `self_attn.` is `attn.`, `linear1.` /
                                `linear2.` are `ff.fc1.` / `ff.fc2.` (`norm1.`, `norm2.`
                                the same)
MultiheadAttention              MultiHeadAttention: `in_proj_weight` [3E, E] is
                                `w_q.weight`, `w_k.weight`, `w_v.weight` (rows [0:E],
                                [E:2E], [2E:3E]); `in_proj_bias` likewise the three
                                biases; `q/k/v_proj_weight` (kdim, vdim != E) are
                                `w_q/w_k/w_v.weight`; `out_proj.` is `w_o.`;
                                `bias_k`/`bias_v` are refused (no add_bias_kv)
BatchNorm `running_mean`, …     state, not params: `split_torch_state_dict`
=============================  ==========================================================

A row (`TorchRule`) applies at every prefix where the layer is recognised by its names
(`marks`), so an `attn` that is not inside a TransformerBlock keeps its name. Going
from PyTorch the rows apply in order, going back in reverse order, so the two
directions undo each other. Pass `rules=(*TORCH_RULES, my_rule)` for a model of your
own whose layers name things otherwise.

>>> import numpy as np
>>> sd = {"enc.self_attn.in_proj_weight": np.arange(12.0).reshape(6, 2),
...       "enc.self_attn.out_proj.weight": np.eye(2), "enc.linear1.weight": np.ones((3, 2)),
...       "enc.linear2.weight": np.ones((2, 3)), "enc.norm1.weight": np.ones(2),
...       "enc.norm2.weight": np.ones(2)}
>>> sorted(from_torch_names(sd))[:3]
['enc.attn.w_k.weight', 'enc.attn.w_o.weight', 'enc.attn.w_q.weight']
>>> sorted(to_torch_names(from_torch_names(sd))) == sorted(sd)
True
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from pyasg.errors import shown
from pyasg.io.weights import _as_array, _fail, _nest, match
from pyasg.nn.checks import ArgumentError
from pyasg.nn.module import Module
from pyasg.nn.params import check_params, check_state
from pyasg.trace.tree import flatten_with_paths

Side = Literal["torch", "pyasg"]


def _check_name(name: object, rule: str) -> str:
    if not isinstance(name, str) or not name or name.startswith(".") or ".." in name:
        raise ArgumentError(f"{rule}: a name must be a non-empty dotted string such as "
                            f"'linear1.' or 'in_proj_weight', got {shown(name, with_type=True)}")
    return name


@dataclass(frozen=True)
class TorchName:
    """One name inside a layer: PyTorch's `torch`, pyasg's `pyasg`.

    A name ending in "." is a prefix (a sub-layer: everything under it moves along);
    otherwise it is one tensor. With several pyasg names, PyTorch's tensor is theirs
    stacked along dim 0: split into equal parts when read from PyTorch, concatenated
    when written back (if the parts agree in shape and dtype; if not, a later row may
    name them one by one). With no pyasg name (`()`), pyasg cannot hold it, and
    reading it raises. `why` is what that error, or a split's bad shape, says.

    >>> TorchName("linear1.", "ff.fc1.").pyasg
    ('ff.fc1.',)
    """

    torch: str
    pyasg: str | tuple[str, ...]
    why: str = ""

    def __post_init__(self) -> None:
        rule = f"TorchName({shown(self.torch)}, …)"
        _check_name(self.torch, rule)
        parts = (self.pyasg,) if isinstance(self.pyasg, str) else self.pyasg
        if not isinstance(parts, tuple):
            raise ArgumentError(f"{rule}: pyasg must be a name or a tuple of names, got "
                                f"{shown(self.pyasg, with_type=True)}")
        parts = tuple(_check_name(p, rule) for p in parts)
        prefix = self.torch.endswith(".")
        if prefix and (len(parts) != 1 or not parts[0].endswith(".")):
            raise ArgumentError(f"{rule}: a prefix (ending in '.') maps to one pyasg prefix, "
                                f"got {shown(parts)}")
        if not prefix and any(p.endswith(".") for p in parts):
            raise ArgumentError(f"{rule}: a tensor's name maps to tensor names, not to a "
                                f"prefix; got {shown(parts)}")
        if not isinstance(self.why, str):
            raise ArgumentError(f"{rule}: why must be a str, got {shown(self.why, with_type=True)}")
        object.__setattr__(self, "pyasg", parts)

    def side(self, side: Side) -> tuple[str, ...]:
        """This name on one side: PyTorch's (one name) or pyasg's (one or more)."""
        return (self.torch,) if side == "torch" else self.pyasg  # type: ignore[return-value]


Marks = tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class TorchRule:
    """A PyTorch layer, the pyasg layer that holds its weights, and their `names`.

    The rule applies at a prefix P (e.g. "layers.3.") where the layer is recognised:
    where every name of one of the alternatives of `torch_marks` (reading PyTorch's
    names) or `pyasg_marks` (reading pyasg's) is present under P (a prefix, when it
    ends in ".": some key starts with it). Marks left empty mean one alternative: all
    of that side's names but the refused ones. A key under P that no name of the rule
    covers keeps its name.

    >>> mlp = TorchRule("GPT-2 MLP", "FeedForward",
    ...                 (TorchName("c_fc.", "fc1."), TorchName("c_proj.", "fc2.")))
    >>> from_torch_names({"h.0.mlp.c_fc.bias": 0, "h.0.mlp.c_proj.bias": 1}, rules=[mlp])
    {'h.0.mlp.fc1.bias': array(0), 'h.0.mlp.fc2.bias': array(1)}
    """

    torch_layer: str
    pyasg_layer: str
    names: tuple[TorchName, ...]
    torch_marks: Marks = ()
    pyasg_marks: Marks = ()

    def __post_init__(self) -> None:
        who = f"TorchRule({shown(self.torch_layer)}, …)"
        if not isinstance(self.names, tuple) or not all(isinstance(n, TorchName)
                                                        for n in self.names):
            raise ArgumentError(f"{who}: names must be a tuple of TorchName, got "
                                f"{shown(self.names, with_type=True)}")
        for side in ("torch", "pyasg"):
            marks = getattr(self, f"{side}_marks")
            if not isinstance(marks, tuple) or not all(
                    isinstance(m, tuple) and m for m in marks):
                raise ArgumentError(f"{who}: {side}_marks must be a tuple of non-empty tuples "
                                    f"of names, got {shown(marks, with_type=True)}")
            for alternative in marks:
                for name in alternative:
                    _check_name(name, who)
            if not marks:
                held = tuple(p for n in self.names if n.pyasg for p in n.side(side))
                if not held:
                    raise ArgumentError(f"{who}: a rule needs at least one name pyasg holds")
                object.__setattr__(self, f"{side}_marks", (held,))

    def marks(self, side: Side) -> Marks:
        """The alternatives that recognise the layer, on one side."""
        return getattr(self, f"{side}_marks")


#: The rows for PyTorch's layers whose names pyasg's counterparts change (see the
#: module docstring); everything else is named the same in both.
TRANSFORMER_ENCODER_LAYER = TorchRule(
    "torch.nn.TransformerEncoderLayer", "pyasg.nn.TransformerBlock",
    (TorchName("self_attn.", "attn."), TorchName("linear1.", "ff.fc1."),
     TorchName("linear2.", "ff.fc2."), TorchName("norm1.", "norm1."),
     TorchName("norm2.", "norm2.")))
MULTIHEAD_ATTENTION = TorchRule(
    "torch.nn.MultiheadAttention", "pyasg.nn.MultiHeadAttention",
    (TorchName("in_proj_weight", ("w_q.weight", "w_k.weight", "w_v.weight"),
          why="its first dimension must be 3 * embed_dim"),
     TorchName("q_proj_weight", "w_q.weight"), TorchName("k_proj_weight", "w_k.weight"),
     TorchName("v_proj_weight", "w_v.weight"),
     TorchName("in_proj_bias", ("w_q.bias", "w_k.bias", "w_v.bias"),
          why="its first dimension must be 3 * embed_dim"),
     TorchName("out_proj.", "w_o."),
     TorchName("bias_k", (), why="pyasg's MultiHeadAttention has no add_bias_kv"),
     TorchName("bias_v", (), why="pyasg's MultiHeadAttention has no add_bias_kv")),
    torch_marks=(("in_proj_weight",), ("q_proj_weight",)),
    pyasg_marks=(("w_q.weight", "w_k.weight", "w_v.weight", "w_o.weight"),))
TORCH_RULES: tuple[TorchRule, ...] = (TRANSFORMER_ENCODER_LAYER, MULTIHEAD_ATTENTION)


# --------------------------------------------------------------------------- applying a rule


def _prefixes(key: str) -> Iterator[str]:
    """"" and every dotted prefix of `key`, longest first ("a.b.", "a.", "")."""
    at = key.rfind(".")
    while at >= 0:
        yield key[:at + 1]
        at = key.rfind(".", 0, at)
    yield ""


def _recognised(flat: Mapping[str, Any], marks: Marks) -> set[str]:
    """The prefixes P at which every name of one alternative of `marks` is present."""
    prefixes = {p for key in flat for p in _prefixes(key)}
    present = prefixes | set(flat)
    return {p for p in prefixes if any(all(p + m in present for m in alt) for alt in marks)}


def _split(key: str, value: np.ndarray, name: TorchName, prefix: str) -> list[tuple[str, Any]]:
    parts = name.pyasg
    if value.ndim < 1 or value.shape[0] % len(parts):
        why = name.why or f"its first dimension must divide into {len(parts)} equal parts"
        raise _fail("state_dict", f"{shown(key)} has shape {list(value.shape)}; {why}")
    return [(prefix + part, np.ascontiguousarray(chunk))
            for part, chunk in zip(parts, np.split(value, len(parts)))]


def _map_from_torch(key: str, value: Any, rule: TorchRule, at: set[str]) -> list[tuple[str, Any]]:
    """`key`'s pyasg name(s) under the innermost prefix where `rule` applies to it."""
    for prefix in _prefixes(key):
        if prefix not in at:
            continue
        rest = key[len(prefix):]
        for name in rule.names:
            if name.torch.endswith(".") and rest.startswith(name.torch):
                return [(prefix + name.pyasg[0] + rest[len(name.torch):], value)]
            if rest != name.torch:
                continue
            if not name.pyasg:
                why = name.why or "pyasg has no place for it"
                raise _fail("state_dict", f"{shown(key)}: {why}")
            if len(name.pyasg) == 1:
                return [(prefix + name.pyasg[0], value)]
            return _split(key, value, name, prefix)
    return [(key, value)]


def _map_to_torch(key: str, value: Any, rule: TorchRule, at: set[str]) -> list[tuple[str, Any]]:
    """`key`'s PyTorch name (a part of a stacked tensor that could not be joined is
    named one by one, where a row says how)."""
    for prefix in _prefixes(key):
        if prefix not in at:
            continue
        rest = key[len(prefix):]
        for name in rule.names:
            if len(name.pyasg) != 1:
                continue
            mine = name.pyasg[0]
            if mine.endswith(".") and rest.startswith(mine):
                return [(prefix + name.torch + rest[len(mine):], value)]
            if rest == mine:
                return [(prefix + name.torch, value)]
    return [(key, value)]


def _joins(flat: Mapping[str, Any], rule: TorchRule, at: set[str],
           ) -> tuple[dict[str, tuple[str, np.ndarray]], set[str]]:
    """The stacked tensors to write: first part's key -> (PyTorch's key, the parts
    concatenated), for every stacked name whose parts are all present with one shape
    and dtype; and every part's key."""
    joined: dict[str, tuple[str, np.ndarray]] = {}
    parts_seen: set[str] = set()
    for prefix in sorted(at, key=len, reverse=True):
        for name in rule.names:
            keys = [prefix + p for p in name.pyasg]
            if len(keys) < 2 or any(k not in flat or k in parts_seen for k in keys):
                continue
            parts = [np.asarray(flat[k]) for k in keys]
            first = parts[0]
            if first.ndim < 1 or any(p.shape != first.shape or p.dtype != first.dtype
                                     for p in parts):
                continue
            joined[keys[0]] = (prefix + name.torch, np.concatenate(parts))
            parts_seen.update(keys)
    return joined, parts_seen


def _apply(flat: Mapping[str, Any], rule: TorchRule, reading: Side) -> dict[str, Any]:
    """`flat` with `rule` applied wherever it recognises its layer, reading `reading`'s
    names (and writing the other side's)."""
    at = _recognised(flat, rule.marks(reading))
    if not at:
        return dict(flat)
    joined, parts = _joins(flat, rule, at) if reading == "pyasg" else ({}, set())
    mapped = _map_from_torch if reading == "torch" else _map_to_torch
    out: dict[str, Any] = {}
    for key, value in flat.items():
        if key in joined:
            pairs = [joined[key]]
        elif key in parts:
            continue  # written with the first part, just above
        else:
            pairs = mapped(key, value, rule, at)
        for new, v in pairs:
            if new in out:
                raise _fail("state_dict", f"two names become {shown(new)} under the rule for "
                                          f"{rule.torch_layer}")
            out[new] = v
    return out


def _rules(rules: object) -> tuple[TorchRule, ...]:
    if isinstance(rules, TorchRule) or not isinstance(rules, Sequence) or not all(
            isinstance(r, TorchRule) for r in rules):
        raise ArgumentError(f"rules must be a sequence of TorchRule (such as "
                            f"(*TORCH_RULES, my_rule)), got {shown(rules, with_type=True)}")
    return tuple(rules)


def _numpy(value: Any, name: str) -> np.ndarray:
    arr = _as_array(value, name, "state_dict")
    # a torch tensor from state_dict() shares memory with the live module, which its
    # optimiser changes in place: the numpy array must not see those later steps
    return arr.copy() if hasattr(value, "detach") else arr


def _flat(tree: Any) -> dict[str, np.ndarray]:
    pairs, _ = flatten_with_paths(dict(tree) if isinstance(tree, Mapping) else tree)
    return {name: _numpy(v, name) for name, v in pairs}


# --------------------------------------------------------------------------- public functions


def from_torch_names(state_dict: Mapping[str, Any],
                     rules: Sequence[TorchRule] = TORCH_RULES) -> dict[str, np.ndarray]:
    """PyTorch's flat names -> pyasg's flat dotted paths, values as numpy arrays (split
    where a rule says so; torch tensors copied).

    >>> import numpy as np
    >>> sorted(from_torch_names({"a.in_proj_weight": np.zeros((6, 2)), "b.weight": 0}))
    ['a.w_k.weight', 'a.w_q.weight', 'a.w_v.weight', 'b.weight']
    """
    flat = _flat(state_dict)
    for rule in _rules(rules):
        flat = _apply(flat, rule, "torch")
    return flat


def to_torch_names(flat: Mapping[str, Any],
                   rules: Sequence[TorchRule] = TORCH_RULES) -> dict[str, np.ndarray]:
    """pyasg's flat dotted paths -> PyTorch's names (the inverse of `from_torch_names`).

    >>> import numpy as np
    >>> w = {f"a.w_{x}.weight": np.eye(2) for x in "qkvo"}
    >>> sorted(to_torch_names(w))
    ['a.in_proj_weight', 'a.out_proj.weight']
    """
    out = _flat(flat)
    for rule in reversed(_rules(rules)):
        out = _apply(out, rule, "pyasg")
    return out


def from_torch_state_dict(state_dict: Mapping[str, Any], expected: Any = None,
                          rules: Sequence[TorchRule] = TORCH_RULES) -> Any:
    """PyTorch `state_dict` (tensors or arrays, flat dotted keys) -> pyasg params pytree.

    Names are mapped by `rules` (see the module docstring: TransformerEncoderLayer and
    MultiheadAttention); all others stay. Without `expected` the result is nested
    dicts; with it, the keys, shapes and dtypes are checked as in `load` and the
    structure is `expected`'s. BatchNorm's running statistics stay in the one tree;
    `split_torch_state_dict` puts them in the layer's state instead.

    >>> import numpy as np
    >>> sd = {"attn.in_proj_weight": np.arange(12.0).reshape(6, 2),
    ...       "attn.out_proj.weight": np.eye(2), "fc.weight": np.ones((1, 2))}
    >>> p = from_torch_state_dict(sd)
    >>> sorted(p["attn"]), p["attn"]["w_k"]["weight"].tolist()
    (['w_k', 'w_o', 'w_q', 'w_v'], [[4.0, 5.0], [6.0, 7.0]])
    """
    out = from_torch_names(state_dict, rules)
    if expected is not None:
        return match(out, expected, "state_dict")
    return _nest(out, "state_dict")


def split_torch_state_dict(state_dict: Mapping[str, Any], layer: Module,
                           rules: Sequence[TorchRule] = TORCH_RULES) -> tuple[dict, dict]:
    """PyTorch `state_dict` -> `(params, state)` for the pyasg `layer` that takes it.

    Names map as in `from_torch_state_dict`; the arrays the layer keeps as state
    (`layer.init_state()`'s paths: BatchNorm's `running_mean`, `running_var`,
    `num_batches_tracked`) go to `state`, all others to `params`. Both are nested
    dicts, checked against the layer (`ParamsError` naming each missing or extra
    path and each wrong shape).

    >>> import numpy as np
    >>> from pyasg.nn.norm import BatchNorm
    >>> sd = {"weight": np.ones(2, np.float32), "bias": np.zeros(2, np.float32),
    ...       "running_mean": np.zeros(2, np.float32), "running_var": np.ones(2, np.float32),
    ...       "num_batches_tracked": np.array(5)}
    >>> params, state = split_torch_state_dict(sd, BatchNorm(2))
    >>> sorted(params), int(state["num_batches_tracked"])
    (['bias', 'weight'], 5)
    """
    flat = from_torch_names(state_dict, rules)
    state_paths = {path for path, _ in flatten_with_paths(layer.init_state())[0]}
    params = _nest({k: v for k, v in flat.items() if k not in state_paths}, "state_dict")
    state = _nest({k: v for k, v in flat.items() if k in state_paths}, "state_dict")
    check_params(layer, params)
    if layer.has_state():
        check_state(layer, state)
    return params, state


def to_torch_state_dict(params: Any, state: Any = None,
                        rules: Sequence[TorchRule] = TORCH_RULES) -> dict[str, np.ndarray]:
    """pyasg params (and a layer's state) -> flat dict with PyTorch's names, the inverse
    of `from_torch_state_dict` and `split_torch_state_dict`; `torch.from_numpy` each
    value (or `load_state_dict` a dict of them) to load it into torch.

    >>> import numpy as np
    >>> w = {n: {"weight": np.eye(2), "bias": np.zeros(2)} for n in ("w_q", "w_k", "w_v", "w_o")}
    >>> sorted(to_torch_state_dict({"attn": w}))
    ['attn.in_proj_bias', 'attn.in_proj_weight', 'attn.out_proj.bias', 'attn.out_proj.weight']
    """
    flat = _flat(params)
    if state is not None:
        extra = _flat(state)
        both = sorted(set(flat) & set(extra))
        if both:
            raise _fail("state_dict", f"{shown(both[0])} is in both params and state")
        flat.update(extra)
    return to_torch_names(flat, rules)
