"""Porting a PyTorch model by name: weights (by the table of rename rules), BatchNorm's
running statistics (into the state tree) and optimiser state move between torch and
pyasg, and the moved model computes what torch's does.

PyTorch is the reference wherever it appears (its modules and optimisers run the
expected values); the tests that need it import it through `torch_module()` and skip
without it, the name-table tests below do not need it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pyasg
from pyasg import io, nn
from pyasg.errors import CheckpointError, PyasgError
from pyasg.io.torch_names import from_torch_names, to_torch_names
from pyasg.nn.checks import ArgumentError, ParamsError
from pyasg.optim import SGD, Adam, AdamW, RMSprop
from pyasg.trace.tree import flatten, flatten_with_paths, unflatten


def torch_module() -> Any:
    return pytest.importorskip("torch")


def leaves(tree: object) -> dict[str, np.ndarray]:
    return {k: np.asarray(v) for k, v in flatten_with_paths(tree)[0]}


def assert_trees_close(got: object, want: object, rtol: float = 1e-10,
                       atol: float = 1e-12) -> None:
    got, want = leaves(got), leaves(want)
    assert sorted(got) == sorted(want)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=rtol, atol=atol, err_msg=k)


# --------------------------------------------------------------------------- the name table


def test_an_attn_outside_a_transformer_block_keeps_its_name():
    # the TransformerEncoderLayer row needs all five children: a lone `attn` MHA and a
    # lone `linear1` are not inside one, so nothing is renamed to self_attn / ff.fc1
    flat = {f"attn.w_{x}.weight": np.eye(2) for x in "qkvo"} | {"linear1.weight": np.eye(2)}
    back = to_torch_names(flat)
    assert sorted(back) == ["attn.in_proj_weight", "attn.out_proj.weight", "linear1.weight"]
    assert sorted(from_torch_names(back)) == sorted(flat)


def test_encoder_layers_inside_a_model_are_renamed_at_their_own_prefix():
    block = nn.TransformerBlock(4, 2, ff_hidden=3)
    params = {"layers": {"0": block.init(pyasg.random.key(0)),
                         "1": block.init(pyasg.random.key(1))}, "head": {"weight": np.ones(2)}}
    names = io.to_torch_state_dict(params)
    assert "layers.1.self_attn.in_proj_weight" in names
    assert "layers.0.linear2.bias" in names and "head.weight" in names
    assert not [n for n in names if ".attn." in n or ".ff." in n or ".w_" in n]
    back = io.from_torch_state_dict(names, expected=params)
    assert_trees_close(back, params, rtol=0, atol=0)


def test_a_users_rule_maps_their_names_both_ways():
    mlp = io.TorchRule("GPT-2 MLP", "FeedForward",
                       (io.TorchName("c_fc.", "fc1."), io.TorchName("c_proj.", "fc2.")))
    sd = {"h.0.mlp.c_fc.weight": np.ones((8, 2)), "h.0.mlp.c_proj.weight": np.ones((2, 8)),
          "h.0.attn.in_proj_weight": np.arange(12.0).reshape(6, 2),
          "h.0.attn.out_proj.weight": np.eye(2), "wte.weight": np.zeros((5, 2))}
    rules = (*io.TORCH_RULES, mlp)
    flat = from_torch_names(sd, rules)
    assert sorted(flat) == ["h.0.attn.w_k.weight", "h.0.attn.w_o.weight", "h.0.attn.w_q.weight",
                            "h.0.attn.w_v.weight", "h.0.mlp.fc1.weight", "h.0.mlp.fc2.weight",
                            "wte.weight"]
    np.testing.assert_array_equal(flat["h.0.attn.w_v.weight"], [[8.0, 9], [10, 11]])
    back = to_torch_names(flat, rules)
    assert sorted(back) == sorted(sd)
    for k in sd:
        np.testing.assert_array_equal(back[k], sd[k])
    # without the user's row, their names pass through unchanged
    assert "h.0.mlp.c_fc.weight" in from_torch_names(sd)


def test_a_stacked_tensor_with_parts_of_other_shapes_is_written_part_by_part():
    # kdim, vdim != embed_dim: PyTorch keeps q/k/v_proj_weight, and one in_proj_bias
    flat = {"a.w_q.weight": np.zeros((4, 4)), "a.w_k.weight": np.zeros((4, 3)),
            "a.w_v.weight": np.zeros((4, 5)), "a.w_o.weight": np.zeros((4, 4))}
    flat |= {f"a.w_{x}.bias": np.full(4, float(i)) for i, x in enumerate("qkv")}
    back = to_torch_names(flat)
    assert sorted(back) == ["a.in_proj_bias", "a.k_proj_weight", "a.out_proj.weight",
                            "a.q_proj_weight", "a.v_proj_weight"]
    np.testing.assert_array_equal(back["a.in_proj_bias"], np.repeat([0.0, 1, 2], 4))


@pytest.mark.parametrize("make, match", [
    (lambda: io.TorchName("linear1.", "ff.fc1"), "one pyasg prefix"),
    (lambda: io.TorchName("weight", "ff.fc1."), "not to a prefix"),
    (lambda: io.TorchName("", "x"), "non-empty dotted string"),
    (lambda: io.TorchName("a..b", "x"), "non-empty dotted string"),
    (lambda: io.TorchName(3, "x"), "int 3"),
    (lambda: io.TorchName("a", ["x", "y"]), "a name or a tuple of names"),
    (lambda: io.TorchRule("T", "P", [io.TorchName("a", "b")]), "tuple of TorchName"),
    (lambda: io.TorchRule("T", "P", (io.TorchName("a", ()),)), "at least one name"),
    (lambda: io.TorchRule("T", "P", (io.TorchName("a", "b"),), torch_marks=("a",)),
     "tuple of non-empty tuples"),
    (lambda: io.from_torch_state_dict({}, rules=io.TORCH_RULES[0]), "sequence of TorchRule"),
])
def test_a_malformed_rule_is_an_argument_error_saying_what_is_wrong(make, match):
    with pytest.raises(ArgumentError, match=match):
        make()


def test_two_names_mapping_to_one_are_refused():
    sd = {"enc.self_attn.in_proj_weight": np.zeros((6, 2)), "enc.attn.w_q.weight": np.zeros(1),
          **{f"enc.{n}.weight": np.zeros(1) for n in ("linear1", "linear2", "norm1", "norm2")}}
    with pytest.raises(CheckpointError, match="two names become 'enc.attn.w_q.weight'"):
        from_torch_names(sd)


# --------------------------------------------------------------------------- transformer blocks


def torch_encoder_layer(torch: Any, E: int, H: int, F: int, norm_first: bool,
                        seed: int) -> Any:
    torch.manual_seed(seed)
    layer = torch.nn.TransformerEncoderLayer(E, H, F, dropout=0.0, activation="gelu",
                                             batch_first=True, norm_first=norm_first,
                                             dtype=torch.float64)
    with torch.no_grad():  # non-zero biases and gains, so a mix-up of names would show
        for p in layer.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    return layer


shapes = st.fixed_dictionaries({
    "B": st.integers(1, 3), "T": st.integers(1, 4), "H": st.integers(1, 2),
    "D": st.integers(1, 3), "F": st.integers(1, 6), "seed": st.integers(0, 2**16)})


@settings(max_examples=15)
@given(shapes, st.booleans())
def test_a_block_with_torchs_weights_computes_torchs_values_and_gradients(s, norm_first):
    torch = torch_module()
    E = s["H"] * s["D"]
    layer = torch_encoder_layer(torch, E, s["H"], s["F"], norm_first, s["seed"])
    block = nn.TransformerBlock(E, s["H"], ff_hidden=s["F"], dtype="float64",
                                norm_first=norm_first)
    template = block.init(pyasg.random.key(0))
    params = io.from_torch_state_dict(layer.state_dict(), expected=template)

    rng = np.random.default_rng(s["seed"])
    x = rng.standard_normal((s["B"], s["T"], E))
    w = rng.standard_normal((s["B"], s["T"], E))  # a loss whose gradient is not ~0
    tx = torch.tensor(x, requires_grad=True)
    out = layer(tx)
    (out * torch.from_numpy(w)).sum().backward()

    np.testing.assert_allclose(block(params, x), out.detach().numpy(), rtol=1e-10, atol=1e-12)
    g_params, g_x = pyasg.grad(lambda p, x: pyasg.sum(block(p, x) * w), argnums=(0, 1))(params, x)
    torch_grads = {n: p.grad for n, p in layer.named_parameters()}
    assert_trees_close(g_params, io.from_torch_state_dict(torch_grads, expected=template))
    np.testing.assert_allclose(g_x, tx.grad.numpy(), rtol=1e-10, atol=1e-12)


@settings(max_examples=10)
@given(shapes, st.booleans())
def test_to_torch_state_dict_loads_into_a_torch_encoder_layer(s, norm_first):
    torch = torch_module()
    E = s["H"] * s["D"]
    block = nn.TransformerBlock(E, s["H"], ff_hidden=s["F"], dtype="float64",
                                norm_first=norm_first)
    params = block.init(pyasg.random.key(s["seed"]))
    layer = torch_encoder_layer(torch, E, s["H"], s["F"], norm_first, 0)
    layer.load_state_dict({k: torch.from_numpy(v)
                           for k, v in io.to_torch_state_dict(params).items()}, strict=True)
    x = np.random.default_rng(s["seed"]).standard_normal((s["B"], s["T"], E))
    with torch.no_grad():
        want = layer(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(block(params, x), want, rtol=1e-10, atol=1e-12)


def test_a_torch_transformer_encoder_runs_as_pyasg_blocks():
    torch = torch_module()
    layer = torch_encoder_layer(torch, 4, 2, 6, norm_first=False, seed=0)
    encoder = torch.nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
    with torch.no_grad():  # the two copies of `layer` made different
        for p in encoder.layers[1].parameters():
            p.add_(torch.randn_like(p) * 0.3)
    blocks = [nn.TransformerBlock(4, 2, ff_hidden=6, dtype="float64", norm_first=False)
              for _ in range(2)]
    template = {"layers": {str(i): b.init(pyasg.random.key(i)) for i, b in enumerate(blocks)}}
    params = io.from_torch_state_dict(encoder.state_dict(), expected=template)
    x = np.random.default_rng(0).standard_normal((2, 5, 4))
    y = x
    for i, block in enumerate(blocks):
        y = block(params["layers"][str(i)], y)
    np.testing.assert_allclose(y, encoder(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-10, atol=1e-12)


def test_pre_ln_stays_the_default_and_post_ln_differs_from_it():
    block, post = nn.TransformerBlock(4, 2), nn.TransformerBlock(4, 2, norm_first=False)
    assert block.norm_first and not post.norm_first
    params = block.init(pyasg.random.key(0))
    x = np.random.default_rng(0).standard_normal((1, 3, 4)).astype(np.float32)
    assert not np.allclose(block(params, x), post(params, x))
    with pytest.raises(ArgumentError, match="norm_first"):
        nn.TransformerBlock(4, 2, norm_first="no")


# --------------------------------------------------------------------------- BatchNorm state


def torch_bn_model(torch: Any, seed: int) -> Any:
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4),
                                torch.nn.ReLU(), torch.nn.Linear(4, 2)).double()
    with torch.no_grad():
        model[1].weight.add_(torch.randn(4) * 0.3)
        model[1].bias.add_(torch.randn(4) * 0.3)
    return model


def pyasg_bn_model() -> nn.Sequential:
    return nn.Sequential(nn.Linear(3, 4, dtype="float64"), nn.BatchNorm1d(4, dtype="float64"),
                         nn.ReLU(), nn.Linear(4, 2, dtype="float64"))


def test_batchnorm_statistics_go_to_the_state_and_evaluate_as_torch():
    torch = torch_module()
    model = torch_bn_model(torch, 0)
    rng = np.random.default_rng(0)
    model.train()
    for _ in range(3):  # running statistics away from their start, batches counted
        model(torch.from_numpy(rng.standard_normal((8, 3))))
    ours = pyasg_bn_model()
    params, state = io.split_torch_state_dict(model.state_dict(), ours)
    assert sorted(params) == ["0", "1", "3"] and sorted(params["1"]) == ["bias", "weight"]
    assert sorted(state["1"]) == ["num_batches_tracked", "running_mean", "running_var"]
    assert int(state["1"]["num_batches_tracked"]) == 3

    x = rng.standard_normal((5, 3))
    model.eval()
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    y, _ = ours(params, x, training=False, state=state)
    np.testing.assert_allclose(y, want, rtol=1e-10, atol=1e-12)

    # one more training batch on both: the statistics stay equal; then back to torch
    model.train()
    with torch.no_grad():
        model(torch.from_numpy(x))
    _, state = ours(params, x, training=True, state=state)
    back = io.to_torch_state_dict(params, state)
    for k, v in model.state_dict().items():
        np.testing.assert_allclose(back[k], v.numpy(), rtol=1e-12, atol=1e-14, err_msg=k)
    fresh = torch_bn_model(torch, 1)
    fresh.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in back.items()},
                          strict=True)


def test_missing_or_extra_running_statistics_are_params_errors():
    torch = torch_module()
    sd = torch_bn_model(torch, 0).state_dict()
    no_stats = {k: v for k, v in sd.items() if "running" not in k}
    with pytest.raises(ParamsError, match="running_mean"):
        io.split_torch_state_dict(no_stats, pyasg_bn_model())
    stateless = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4, track_running_stats=False),
                              nn.ReLU(), nn.Linear(4, 2))
    with pytest.raises(ParamsError, match="running_mean"):
        io.split_torch_state_dict(sd, stateless)


def test_params_and_state_with_one_path_are_refused():
    with pytest.raises(CheckpointError, match="in both params and state"):
        io.to_torch_state_dict({"bn": {"running_mean": np.zeros(2)}},
                               {"bn": {"running_mean": np.zeros(2)}})


# --------------------------------------------------------------------------- optimiser state

E, H, F = 4, 2, 6

#: (pyasg optimiser, the torch optimiser's class name and arguments): the same run.
#: eps is 1e-3, not 1e-8, for a reason: the key projection's bias has an exactly zero
#: gradient in self-attention (it adds one constant to all of a query's scores, which
#: softmax ignores), so both frameworks see rounding noise there (~1e-17), which Adam
#: and RMSprop turn into steps of lr * noise / eps: 1e-11 with eps 1e-8, beyond the
#: tolerance; 1e-16 with eps 1e-3, still small beside sqrt(v) (~1e-2 here).
OPTIMISERS = {
    "AdamW": (lambda: AdamW(lr=0.02, eps=1e-3, weight_decay=0.1), "AdamW",
              {"lr": 0.02, "eps": 1e-3, "weight_decay": 0.1}),
    "Adam-amsgrad": (lambda: Adam(lr=0.02, betas=(0.8, 0.99), eps=1e-3, amsgrad=True,
                                  weight_decay=0.01),
                     "Adam", {"lr": 0.02, "betas": (0.8, 0.99), "eps": 1e-3, "amsgrad": True,
                              "weight_decay": 0.01}),
    "SGD-momentum": (lambda: SGD(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01),
                     "SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.1,
                             "weight_decay": 0.01}),
    "SGD-nesterov": (lambda: SGD(lr=0.05, momentum=0.5, nesterov=True), "SGD",
                     {"lr": 0.05, "momentum": 0.5, "nesterov": True}),
    "RMSprop": (lambda: RMSprop(lr=0.01, eps=1e-3, momentum=0.5, centered=True), "RMSprop",
                {"lr": 0.01, "eps": 1e-3, "momentum": 0.5, "centered": True}),
}


class Run:
    """One training run of a post-LN encoder layer in both frameworks (MSE, float64)."""

    def __init__(self, torch: Any, name: str) -> None:
        make, torch_name, options = OPTIMISERS[name]
        self.torch = torch
        self.layer = torch_encoder_layer(torch, E, H, F, norm_first=False, seed=1)
        self.names = [n for n, _ in self.layer.named_parameters()]
        self.torch_opt = getattr(torch.optim, torch_name)(self.layer.parameters(), **options)
        self.opt = make()
        self.block = nn.TransformerBlock(E, H, ff_hidden=F, dtype="float64", norm_first=False)
        self.template = self.block.init(pyasg.random.key(0))
        rng = np.random.default_rng(2)
        self.batches = [(rng.standard_normal((2, 3, E)), rng.standard_normal((2, 3, E)))
                        for _ in range(6)]

    def torch_steps(self, batches: list) -> None:
        for x, y in batches:
            self.torch_opt.zero_grad()
            loss = ((self.layer(self.torch.from_numpy(x)) - self.torch.from_numpy(y)) ** 2).mean()
            loss.backward()
            self.torch_opt.step()

    def pyasg_steps(self, params: Any, state: Any, batches: list) -> tuple[Any, Any]:
        def loss(p: Any, x: Any, y: Any) -> Any:
            return pyasg.mean((self.block(p, x) - y) ** 2)

        for x, y in batches:
            params, state = self.opt.update(pyasg.grad(loss)(params, x, y), state, params)
        return params, state

    def torch_params(self) -> Any:
        return io.from_torch_state_dict(self.layer.state_dict(), expected=self.template)


@pytest.mark.parametrize("name", sorted(OPTIMISERS))
def test_three_torch_steps_then_three_pyasg_steps_are_six_torch_steps(name):
    torch = torch_module()
    run = Run(torch, name)
    run.torch_steps(run.batches[:3])
    params = run.torch_params()
    state = io.from_torch_optimizer_state(run.torch_opt.state_dict(), run.opt, params,
                                          run.names, step=3)
    assert int(state["step"]) == 3
    params, state = run.pyasg_steps(params, state, run.batches[3:])
    run.torch_steps(run.batches[3:])  # torch's own steps 4-6: the reference
    assert_trees_close(params, run.torch_params())
    # and the optimiser state pyasg ends with is torch's after six steps
    theirs = io.from_torch_optimizer_state(run.torch_opt.state_dict(), run.opt, params,
                                           run.names, step=6)
    assert int(theirs["step"]) == int(state["step"]) == 6
    assert_trees_close({k: v for k, v in state.items() if k != "lr"},
                       {k: v for k, v in theirs.items() if k != "lr"})


@pytest.mark.parametrize("name", sorted(OPTIMISERS))
def test_three_pyasg_steps_then_three_torch_steps_are_six_pyasg_steps(name):
    torch = torch_module()
    run = Run(torch, name)
    start = run.torch_params()
    params, state = run.pyasg_steps(start, run.opt.init(start), run.batches[:3])
    run.layer.load_state_dict({k: torch.from_numpy(v)
                               for k, v in io.to_torch_state_dict(params).items()})
    run.torch_opt.load_state_dict(io.to_torch_optimizer_state(
        state, run.opt, run.names, as_tensor=torch.from_numpy))
    run.torch_steps(run.batches[3:])
    want, _ = run.pyasg_steps(params, state, run.batches[3:])
    assert_trees_close(run.torch_params(), want)


def test_a_fresh_torch_optimiser_is_a_fresh_pyasg_state():
    torch = torch_module()
    run = Run(torch, "AdamW")
    params = run.torch_params()
    state = io.from_torch_optimizer_state(run.torch_opt.state_dict(), run.opt, params,
                                          run.names)
    assert_trees_close(state, run.opt.init(params))
    assert io.to_torch_optimizer_state(state, run.opt, run.names)["state"] == {}


@settings(max_examples=10)
@given(st.sampled_from(sorted(OPTIMISERS)), st.integers(1, 5), st.integers(0, 2**16))
def test_optimiser_state_round_trips_through_torchs_layout(name, step, seed):
    # torch-free: slots of attention's q, k, v are stacked into in_proj_* and split back
    opt = OPTIMISERS[name][0]()
    block = nn.TransformerBlock(4, 2, ff_hidden=3, dtype="float64")
    params = {"blocks": {"0": block.init(pyasg.random.key(seed))}}
    rng = np.random.default_rng(seed)
    state = opt.init(params)
    state["step"] = np.asarray(step, state["step"].dtype)
    for slot in opt.slots:
        leaves_, treedef = flatten(params)
        state[slot] = unflatten(treedef, [rng.standard_normal(p.shape) for p in leaves_])
    names = list(io.to_torch_state_dict(params))
    assert "blocks.0.self_attn.in_proj_weight" in names
    torch_sd = io.to_torch_optimizer_state(state, opt, names)
    assert sorted(torch_sd["state"]) == list(range(len(names)))  # every one has slots
    back = io.from_torch_optimizer_state(torch_sd, opt, params, names, step=step)
    assert_trees_close(back, state, rtol=0, atol=0)


def adam_state_dict(**group: Any) -> dict:
    base = {"lr": 0.01, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0,
            "amsgrad": False, "maximize": False, "decoupled_weight_decay": False,
            "params": [0, 1]}
    slots = {"step": np.float32(2), "exp_avg": np.ones(2), "exp_avg_sq": np.ones(2)}
    return {"state": {0: dict(slots), 1: dict(slots)}, "param_groups": [base | group]}


PARAMS = {"a": np.zeros(2), "b": np.zeros(2)}


@pytest.mark.parametrize("change, match", [
    ({"betas": (0.8, 0.999)}, "betas=\\(0.8, 0.999\\)"),
    ({"decoupled_weight_decay": True}, "decoupled_weight_decay=True"),
    ({"amsgrad": True}, "amsgrad"),
])
def test_other_hyperparameters_in_torch_are_refused_by_name(change, match):
    with pytest.raises(CheckpointError, match=match):
        io.from_torch_optimizer_state(adam_state_dict(**change), Adam(0.01), PARAMS, ["a", "b"])


def test_bad_optimiser_states_are_checkpoint_errors_naming_the_problem():
    def load(sd: Any, opt: Any = None, names: Any = ("a", "b"), **kw: Any) -> Any:
        return io.from_torch_optimizer_state(sd, opt or Adam(0.01), PARAMS, names, **kw)

    with pytest.raises(CheckpointError, match="2 parameters but 1 names"):
        load(adam_state_dict(), names=["a"])
    uneven = adam_state_dict()
    uneven["state"][1]["step"] = np.float32(5)
    with pytest.raises(CheckpointError, match="different numbers of steps"):
        load(uneven)
    with pytest.raises(CheckpointError, match="step=3 was given but the torch state says 2"):
        load(adam_state_dict(), step=3)
    lonely = adam_state_dict()
    del lonely["state"][1]
    with pytest.raises(CheckpointError, match="'b' has no 'exp_avg' after 2 steps"):
        load(lonely)
    with pytest.raises(CheckpointError, match="'state' and 'param_groups'"):
        load({"state": {}})
    sgd = {"state": {}, "param_groups": [{"lr": 0.1, "momentum": 0.0, "dampening": 0.0,
                                          "weight_decay": 0.0, "nesterov": False,
                                          "maximize": False, "params": [0, 1]}]}
    with pytest.raises(CheckpointError, match="keeps no step count; pass step="):
        load(sgd, SGD(0.1))
    assert int(load(sgd, SGD(0.1), step=7)["step"]) == 7
    with pytest.raises(CheckpointError, match="names must be a list"):
        load(adam_state_dict(), names="ab")
    with pytest.raises(CheckpointError, match="lacks \\['exp_avg', 'exp_avg_sq'\\]"):
        io.to_torch_optimizer_state({"step": 1, "lr": 0.1}, Adam(), ["a"])
    assert issubclass(CheckpointError, PyasgError)
