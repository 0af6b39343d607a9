"""Composite modules from attributes (issue 15, point 1).

A `pyasg.nn.Module` subclass that holds layers as attributes (directly or in lists,
tuples and dicts) and writes only `__call__(self, params, x)` gets `init`,
`children`, `param_kinds` and the params check from them; keys are split by name, so
adding a layer leaves the others' initial values alone; and the PyTorch habits
(`forward`, `model(x)`) fail with errors that say what to write instead.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import pyasg
from pyasg import events, nn
from pyasg.errors import PyasgError
from pyasg.examples import charlm
from pyasg.nn.checks import ParamsError
from pyasg.nn.module import ROLES, Module, ModuleError, name_key

KEY = pyasg.random.key(0)


def f32(*shape: int) -> np.ndarray:
    return np.random.default_rng(sum(shape)).standard_normal(shape).astype(np.float32)


def shapes(tree: Any) -> Any:
    return {k: shapes(v) for k, v in tree.items()} if isinstance(tree, dict) else tree.shape


def same(a: Any, b: Any) -> bool:
    flat_a, flat_b = pyasg.tree_leaves(a), pyasg.tree_leaves(b)
    return shapes(a) == shapes(b) and all(np.array_equal(x, y) for x, y in zip(flat_a, flat_b))


class MLP(Module):
    def __init__(self, d_in: int = 3, d_hidden: int = 8, d_out: int = 2) -> None:
        self.fc1 = nn.Linear(d_in, d_hidden)
        self.fc2 = nn.Linear(d_hidden, d_out)

    def __call__(self, params: dict, x: object) -> object:
        return self.fc2(params["fc2"], pyasg.tanh(self.fc1(params["fc1"], x)))


class Block(Module):
    def __init__(self, d: int) -> None:
        self.norm = nn.LayerNorm(d)
        self.attn = nn.MultiHeadAttention(d, 2)

    def __call__(self, params: dict, x: object) -> object:
        return x + self.attn(params["attn"], self.norm(params["norm"], x))


class Stack(Module):
    """Embedding, a list of blocks, a dict of heads, an activation and a private layer."""

    def __init__(self, d: int = 8, depth: int = 2) -> None:
        self.embed = nn.Linear(4, d)
        self.act = nn.ReLU()  # no params: no entry
        self.blocks = [Block(d) for _ in range(depth)]
        self.heads = {"mean": nn.Linear(d, 1), "scale": nn.Linear(d, 1, bias=False)}
        self.sizes = [4, d]  # not layers: ignored
        self._helper = nn.Linear(2, 2)  # private: not a sub-layer

    def __call__(self, params: dict, x: object) -> object:
        h = self.act(params.get("act", {}), self.embed(params["embed"], x))
        for i, block in enumerate(self.blocks):
            h = block(params["blocks"][str(i)], h)
        return {name: head(params["heads"][name], h) for name, head in self.heads.items()}


# --------------------------------------------------------------------------- the tree


def test_init_derives_the_tree_from_the_attributes_in_assignment_order():
    model = MLP()
    params = model.init(KEY)
    assert shapes(params) == {"fc1": {"weight": (8, 3), "bias": (8,)},
                              "fc2": {"weight": (2, 8), "bias": (2,)}}
    assert list(model.children()) == ["fc1", "fc2"]
    assert model.param_shapes() == {}  # it declares its arrays: none of its own
    assert model(params, f32(5, 3)).shape == (5, 2)


def test_lists_and_dicts_of_layers_nest_by_index_and_key():
    model = Stack()
    params = model.init(KEY)
    assert list(model.children()) == ["embed", "act", "blocks.0", "blocks.1", "heads.mean",
                                      "heads.scale"]
    assert list(params) == ["embed", "blocks", "heads"]  # act has no params, _helper is private
    assert list(params["blocks"]) == ["0", "1"]
    assert shapes(params["blocks"]["1"]["attn"]["w_q"]) == {"weight": (8, 8), "bias": (8,)}
    assert shapes(params["heads"]) == {"mean": {"weight": (1, 8), "bias": (1,)},
                                       "scale": {"weight": (1, 8)}}
    y = model(params, f32(2, 3, 4))
    assert y["mean"].shape == y["scale"].shape == (2, 3, 1)


def test_each_child_gets_the_key_of_its_name():
    model = Stack()
    params = model.init(KEY)
    assert same(params["embed"], model.embed.init(name_key(KEY, "embed")))
    assert same(params["blocks"]["1"], model.blocks[1].init(name_key(KEY, "blocks.1")))
    assert same(params["heads"]["scale"], model.heads["scale"].init(name_key(KEY, "heads.scale")))


def test_nested_lists_tuples_and_dicts_at_any_depth():
    class Deep(Module):
        def __init__(self) -> None:
            self.grid = [[nn.Linear(2, 2), nn.Linear(2, 3)], ({"x": nn.Linear(2, 4)},)]
            self.empty = []

        def __call__(self, params: dict, x: object) -> object:
            g = params["grid"]
            return (self.grid[0][1](g["0"]["1"], self.grid[0][0](g["0"]["0"], x)),
                    self.grid[1][0]["x"](g["1"]["0"]["x"], x))

    model = Deep()
    assert list(model.children()) == ["grid.0.0", "grid.0.1", "grid.1.0.x"]
    params = model.init(KEY)
    assert shapes(params)["grid"]["1"]["0"]["x"] == {"weight": (4, 2), "bias": (4,)}
    a, b = model(params, f32(1, 2))
    assert a.shape == (1, 3) and b.shape == (1, 4)


def test_the_derived_tree_is_the_one_charlm_writes_by_hand():
    config = charlm.ModelConfig(context=8, embed_dim=16, num_heads=2, num_layers=2)
    by_hand = charlm.CharLM(config)

    class Derived(Module):
        def __init__(self) -> None:
            self.tok = by_hand.tok
            self.pos = by_hand.pos
            self.blocks = by_hand.blocks
            self.norm = by_hand.norm
            self.head = by_hand.head

        def __call__(self, params: dict, ids: object) -> object:
            return by_hand(params, ids)

    derived = Derived()
    params = derived.init(KEY)
    assert shapes(params) == shapes(by_hand.init(KEY))  # same names and shapes
    assert list(derived.children()) == list(by_hand.children())
    ids = np.zeros((1, 8), np.int32)
    assert derived(params, ids).shape == by_hand(params, ids).shape


def test_layers_with_their_own_init_keep_it():
    assert nn.Linear(3, 2).children() == {}
    block = nn.TransformerBlock(8, 2)
    assert list(block.init(KEY)) == list(block.children())
    # a built-in composite inside a derived one: its own tree, under the attribute name
    class Wrap(Module):
        def __init__(self) -> None:
            self.block = block

        def __call__(self, params: dict, x: object) -> object:
            return self.block(params["block"], x)

    assert same(Wrap().init(KEY)["block"], block.init(name_key(KEY, "block")))


def test_a_key_of_none_is_passed_on():
    class Norms(Module):
        def __init__(self) -> None:
            self.norms = [nn.LayerNorm(3), nn.BatchNorm1d(3)]

        def __call__(self, params: dict, x: object) -> object:
            return x

    params = Norms().init(None)
    assert shapes(params) == {"norms": {"0": {"weight": (3,), "bias": (3,)},
                                        "1": {"weight": (3,), "bias": (3,)}}}


def test_state_nests_like_params():
    class Net(Module):
        def __init__(self) -> None:
            self.fc = nn.Linear(3, 3)
            self.norms = [nn.BatchNorm1d(3), nn.BatchNorm1d(3)]

        def __call__(self, params: dict, x: object, state: dict, training: bool) -> object:
            h = self.fc(params["fc"], x)
            new = {"norms": {}}
            for i, norm in enumerate(self.norms):
                h, new["norms"][str(i)] = norm(params["norms"][str(i)], h,
                                               state=state["norms"][str(i)], training=training)
            return h, new

    model = Net()
    assert model.has_state()
    state = model.init_state()
    assert list(state) == ["norms"] and list(state["norms"]) == ["0", "1"]
    y, state = model(model.init(KEY), f32(4, 3), state=state, training=True)
    assert y.shape == (4, 3) and list(state["norms"]) == ["0", "1"]


def test_own_arrays_beside_the_layers_by_overriding_init():
    class Scaled(Module):
        """The documented pattern for a layer's own arrays: super().init for the layers."""

        def __init__(self) -> None:
            self.fc = nn.Linear(3, 2)

        def param_shapes(self) -> dict:
            return {"scale": (2,)}

        def init(self, key: object) -> dict:
            return {**super().init(key), "scale": pyasg.random.uniform(name_key(key, "scale"),
                                                                       (2,))}

        def __call__(self, params: dict, x: object) -> object:
            return self.fc(params["fc"], x) * params["scale"]

    model = Scaled()
    params = model.init(KEY)
    assert shapes(params) == {"fc": {"weight": (2, 3), "bias": (2,)}, "scale": (2,)}
    assert model.param_kinds(params) == {"fc.weight": "Linear.weight", "fc.bias": "Linear.bias",
                                         "scale": "Scaled.scale"}
    assert model(params, f32(1, 3)).shape == (1, 2)
    with pytest.raises(ParamsError, match=r"params\.scale \(Scaled\.scale\) has shape \(3,\)"):
        model({**params, "scale": np.ones(3, np.float32)}, f32(1, 3))


# --------------------------------------------------------------------------- determinism


def test_the_same_key_gives_the_same_params_and_another_key_others():
    assert same(Stack().init(KEY), Stack().init(pyasg.random.key(0)))
    a, b = MLP().init(KEY), MLP().init(pyasg.random.key(1))
    assert not np.array_equal(a["fc1"]["weight"], b["fc1"]["weight"])


def test_the_layers_of_one_model_start_different():
    params = Stack().init(KEY)
    w0 = params["blocks"]["0"]["attn"]["w_q"]["weight"]
    w1 = params["blocks"]["1"]["attn"]["w_q"]["weight"]
    assert not np.array_equal(w0, w1)


def test_adding_or_reordering_a_layer_leaves_the_others_values_alone():
    class Wider(Module):
        def __init__(self) -> None:
            self.fc0 = nn.Linear(3, 3)  # new, before the others
            self.fc2 = nn.Linear(8, 2)  # the others, in another order
            self.fc1 = nn.Linear(3, 8)
            self.extra = [nn.Linear(2, 2)]

        def __call__(self, params: dict, x: object) -> object:
            return x

    before, after = MLP().init(KEY), Wider().init(KEY)
    assert same(before["fc1"], after["fc1"]) and same(before["fc2"], after["fc2"])
    # a third block in a list: the first two keep their values
    two, three = Stack(depth=2).init(KEY), Stack(depth=3).init(KEY)
    assert same(two["blocks"]["0"], three["blocks"]["0"])
    assert same(two["blocks"]["1"], three["blocks"]["1"])
    assert same(two["heads"], three["heads"]) and same(two["embed"], three["embed"])


def test_the_name_key_is_stable_across_processes_and_versions():
    # blake2b of the name, never Python's salted hash(): pinned, as checkpoints and
    # reproducible runs rely on a model starting from the same values
    assert name_key(KEY, "fc1").tolist() == name_key(pyasg.random.key(0), "fc1").tolist()
    assert name_key(KEY, "fc1").tolist() == PINNED_FC1
    assert name_key(KEY, "fc1").dtype == np.uint32 and name_key(KEY, "fc1").shape == (2,)
    with pytest.raises(ModuleError, match="the name is a str"):
        name_key(KEY, 1)


PINNED_FC1 = [722985473, 1962861283]


# --------------------------------------------------------------------------- training


def test_a_two_layer_composite_mlp_learns_with_sgd():
    model = MLP(2, 16, 1)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 2)).astype(np.float32)
    y = np.tanh(x @ np.array([[1.5], [-2.0]], np.float32))

    def loss_fn(params: dict, x: object, y: object) -> object:
        return pyasg.mean((model(params, x) - y) ** 2)

    @pyasg.jit
    def step(params: dict, x: object, y: object) -> tuple:
        loss, grads = pyasg.value_and_grad(loss_fn)(params, x, y)
        return pyasg.tree_map(lambda p, g: p - 0.5 * g, params, grads), loss

    params = model.init(KEY)
    losses = []
    for _ in range(30):
        params, loss = step(params, x, y)
        losses.append(float(loss))
    assert shapes(params) == shapes(model.init(KEY))
    assert losses[-1] < 0.2 * losses[0], losses


# --------------------------------------------------------------------------- kinds


def test_param_kinds_follow_nested_paths():
    model = Stack()
    params = model.init(KEY)
    kinds = model.param_kinds(params)
    assert list(kinds) == [path for path, _ in _flat_paths(params)]
    assert kinds["embed.weight"] == "Linear.weight"
    assert kinds["blocks.0.attn.w_q.weight"] == "Linear.weight"
    assert kinds["blocks.1.norm.bias"] == "LayerNorm.bias"
    assert kinds["heads.scale.weight"] == "Linear.weight"
    assert all(kind in ROLES for kind in kinds.values())
    assert MLP().param_kinds(prefix="model") == {
        "model.fc1.weight": "Linear.weight", "model.fc1.bias": "Linear.bias",
        "model.fc2.weight": "Linear.weight", "model.fc2.bias": "Linear.bias"}


def test_charlms_blocks_are_described_by_their_layers():
    lm = charlm.CharLM(charlm.ModelConfig(context=8, embed_dim=16, num_heads=2, num_layers=1))
    kinds = lm.param_kinds(lm.init(KEY))
    assert kinds["blocks.0.attn.w_q.weight"] == "Linear.weight"
    assert kinds["blocks.0.norm1.weight"] == "LayerNorm.weight"


def test_the_outermost_init_describes_the_params_to_the_viewer():
    seen: list[dict] = []
    off = events.subscribe(lambda e: seen.append(e.kinds), events.ParamsDescribed)
    try:
        model = Stack()
        params = model.init(KEY)
    finally:
        off()
    assert seen == [model.param_kinds(params)]  # one event: the children's inits are inner
    assert seen[0]["blocks.1.attn.w_o.weight"] == "Linear.weight"
    assert events.described_params()["heads.mean.bias"] == "Linear.bias"


def _flat_paths(tree: dict, prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for k, v in tree.items():
        path = f"{prefix}.{k}" if prefix else k
        out.extend(_flat_paths(v, path) if isinstance(v, dict) else [(path, v)])
    return out


# --------------------------------------------------------------------------- teaching errors


def test_a_forward_method_says_to_rename_it():
    class TorchStyle(Module):
        def __init__(self) -> None:
            self.fc = nn.Linear(3, 2)

        def forward(self, x: object) -> object:
            return x

    model = TorchStyle()
    params = model.init(KEY)  # init works: it is the call that is missing
    with pytest.raises(ModuleError, match=r"TorchStyle defines forward but no __call__: pyasg "
                       r"layers are called as layer\(params, x\); rename forward to "
                       r"__call__\(self, params, x\)") as info:
        model(params, f32(1, 3))
    assert isinstance(info.value, PyasgError) and isinstance(info.value, TypeError)
    with pytest.raises(ModuleError, match="rename forward"):
        model(f32(1, 3))


def test_a_layer_without_call_says_to_write_one():
    class Nothing(Module):
        pass

    with pytest.raises(ModuleError, match=r"Nothing defines no __call__: .*"
                       r"write __call__\(self, params, x\)"):
        Nothing()({}, f32(1))


MODEL_X = r"called with only x \(f32\[4,3\]\) and no params: pyasg layers are called as " \
          r"layer\(params, x\).*params = layer.init\(pyasg.random.key\(0\)\)"


@pytest.mark.parametrize("layer", [MLP(), nn.Linear(3, 2), nn.Sequential(nn.Linear(3, 2)),
                                   nn.ReLU()], ids=lambda m: type(m).__name__)
def test_calling_a_model_without_params_says_how_to_make_them(layer):
    with pytest.raises(ModuleError, match=f"{type(layer).__name__} was {MODEL_X}") as info:
        layer(f32(4, 3))
    assert isinstance(info.value, TypeError)  # what Python raised for it before


def test_calling_without_params_inside_a_trace_says_so_too():
    model = MLP()
    with pytest.raises(ModuleError, match=MODEL_X):
        pyasg.make_graph(lambda x: pyasg.sum(model(x)))(f32(4, 3))


def test_params_after_x_say_to_swap_them():
    model = MLP()
    with pytest.raises(ModuleError, match=r"MLP was called with an array \(f32\[4,3\]\) and "
                       r"then a dict: .* the params first; swap them"):
        model(f32(4, 3), model.init(KEY))


def test_a_users_layer_whose_params_are_an_array_may_still_take_one():
    class Scale(Module):
        def init(self, key: object) -> object:
            return np.full(3, 2.0, np.float32)

        def __call__(self, w: object, x: object = None) -> object:
            return w if x is None else w * x

    layer = Scale()
    assert layer(layer.init(KEY)).tolist() == [2.0, 2.0, 2.0]  # w alone binds: no mistake
    assert layer(layer.init(KEY), np.ones(3, np.float32)).tolist() == [2.0, 2.0, 2.0]


def tree_error(model: Module, params: object, x: object) -> str:
    with pytest.raises(ParamsError) as info:
        model(params, x)
    return str(info.value)


def test_missing_and_extra_keys_of_a_derived_composite_are_named():
    model, x = MLP(), f32(1, 3)
    params = model.init(KEY)
    message = tree_error(model, {"fc1": params["fc1"], "fc3": params["fc2"]}, x)
    assert message.startswith("MLP: the params do not fit the layer (make them with "
                              "layer.init(key))")
    assert "params (MLP) lacks 'fc2'" in message
    assert "params (MLP) has entries ['fc3'] that name no layer or parameter of MLP " \
           "(it has: fc1, fc2)" in message
    del params["fc1"]["bias"]
    assert "params.fc1 (Linear) lacks 'bias'" in tree_error(model, params, x)
    assert "params (MLP) is NoneType None; it must be a dict" in tree_error(model, None, x)


def test_missing_and_extra_entries_of_a_list_of_layers_are_named():
    model, x = Stack(), f32(1, 2, 4)
    good = model.init(KEY)

    def without(*path: str) -> dict:
        params = model.init(KEY)
        node = params
        for part in path[:-1]:
            node = node[part]
        del node[path[-1]]
        return params

    assert "params (Stack) lacks 'blocks.1'" in tree_error(model, without("blocks", "1"), x)
    assert "params (Stack) lacks 'blocks'\n" in tree_error(model, without("blocks"), x) + "\n"
    assert "params (Stack) lacks 'heads.scale'" in tree_error(model, without("heads", "scale"), x)
    assert "params.blocks.0.attn.w_k (Linear) lacks 'weight'" in tree_error(
        model, without("blocks", "0", "attn", "w_k", "weight"), x)
    extra = {**good, "blocks": {**good["blocks"], "2": good["blocks"]["1"]}}
    assert "params.blocks (Stack) has entries ['2'] that name no layer in Stack.blocks " \
           "(it has: 0, 1)" in tree_error(model, extra, x)
    as_list = {**good, "blocks": [good["blocks"]["0"], good["blocks"]["1"]]}
    assert "params.blocks (Stack) is list [" in tree_error(model, as_list, x)
    assert "it must be a dict of the layers 0, 1" in tree_error(model, as_list, x)
    # an entry for a layer without params is fine, empty or left out
    assert model({**good, "act": {}}, x)["mean"].shape == (1, 2, 1)


def test_dict_keys_must_name_params():
    class BadKeys(Module):
        def __init__(self, key: object) -> None:
            self.heads = {key: nn.Linear(2, 2)}

        def __call__(self, params: dict, x: object) -> object:
            return x

    for key in (1, "", "a.b"):
        with pytest.raises(ModuleError, match=r"BadKeys\.heads: a dict of layers is keyed by "
                           r"non-empty strings without '\.'"):
            BadKeys(key).init(KEY)
    assert list(BadKeys("ok").children()) == ["heads.ok"]


def test_a_layer_that_holds_itself_is_refused():
    class Loop(Module):
        def __init__(self) -> None:
            self.fc = nn.Linear(2, 2)

        def __call__(self, params: dict, x: object) -> object:
            return x

    a = Loop()
    a.me = a
    with pytest.raises(ModuleError, match=r"Loop\.me is the layer itself"):
        a.init(KEY)
    b, c = Loop(), Loop()
    b.other, c.other = c, b
    with pytest.raises(ModuleError, match="holds itself through its sub-layers"):
        b.init(KEY)
    a = Loop()
    a._me = a  # a private back-reference is fine
    assert list(a.init(KEY)) == ["fc"]


# --------------------------------------------------------------------------- random nesting


LEAF = st.integers(1, 3)  # a Linear(2, n)
NAMES = st.sampled_from(["a", "b", "c", "x1", "long_name"])
NEST = st.recursive(LEAF, lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(NAMES, inner, max_size=3)
                    | st.tuples(inner, inner), max_leaves=8)


def build(spec: Any) -> Any:
    if isinstance(spec, int):
        return nn.Linear(2, spec)
    if isinstance(spec, dict):
        return {k: build(v) for k, v in spec.items()}
    return type(spec)(build(v) for v in spec)


def leaves(spec: Any, path: str) -> list[tuple[str, int]]:
    if isinstance(spec, int):
        return [(path, spec)]
    items = spec.items() if isinstance(spec, dict) else enumerate(spec)
    return [leaf for k, v in items for leaf in leaves(v, f"{path}.{k}")]


class Nest(Module):
    """Linear layers nested in lists, tuples and dicts; applies every one to x."""

    def __init__(self, specs: dict[str, Any]) -> None:
        for name, spec in specs.items():
            setattr(self, name, build(spec))

    def __call__(self, params: dict, x: object) -> list:
        out = []
        for path, layer in self.children().items():
            node = params
            for part in path.split("."):
                node = node[part]
            out.append(layer(node, x))
        return out


@given(specs=st.dictionaries(st.sampled_from(["p", "q", "r"]), NEST, min_size=1, max_size=3),
       data=st.data())
def test_any_nesting_of_linear_layers_inits_calls_and_checks(specs, data):
    model = Nest(specs)
    expected = [leaf for name, spec in specs.items() for leaf in leaves(spec, name)]
    assert [(path, layer.out_features) for path, layer in model.children().items()] == expected
    params = model.init(KEY)
    x = f32(3, 2)
    outputs = model(params, x)
    assert [y.shape for y in outputs] == [(3, n) for _, n in expected]
    for path, layer in model.children().items():
        node = params
        for part in path.split("."):
            node = node[part]
        assert same(node, layer.init(name_key(KEY, path)))
    kinds = model.param_kinds(params)
    assert set(kinds.values()) <= {"Linear.weight", "Linear.bias"}
    assert len(kinds) == 2 * len(expected)
    if not expected:
        assert params == {}
        return
    # remove any one entry of the tree: a ParamsError that names it
    paths = [p for p in _all_paths(params)]
    path = data.draw(st.sampled_from(paths), label="removed")
    broken = model.init(KEY)
    node = broken
    for part in path[:-1]:
        node = node[part]
    del node[path[-1]]
    with pytest.raises(ParamsError) as info:
        model(broken, x)
    message = str(info.value)
    if path[-1] in ("weight", "bias"):  # a Linear's own array
        reported = f"params.{'.'.join(path[:-1])} (Linear) lacks '{path[-1]}'"
    else:  # a layer, or a whole list or dict of them
        reported = f"params (Nest) lacks '{'.'.join(path)}'"
    assert reported in message, (path, message)


def _all_paths(tree: dict, prefix: tuple = ()) -> list[tuple]:
    out = []
    for k, v in tree.items():
        out.append((*prefix, k))
        if isinstance(v, dict):
            out.extend(_all_paths(v, (*prefix, k)))
    return out
