"""The model lab: changes asked through the viewer's protocol, applied between steps.

The viewer is played by its own pure parts: `pyasg.viewer.lab.LabView` makes the
request text and reads the messages back, each event going through
`protocol.encode` and `decode` as it does between the processes, and
`pyasg.viewer.process.handle_request` is what the training side's handle does with
a text from the viewer's queue. No display, no second process.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pyasg
from pyasg import events, losses, nn, optim
from pyasg.data import ArrayDataset, DataLoader
from pyasg.errors import PyasgError
from pyasg.trace.tree import flatten_with_paths
from pyasg.train import LambdaCallback, Trainer
from pyasg.train.changes import (
    ACTIVATION_LAYERS,
    LR,
    RULES,
    Change,
    LabError,
    carry_params,
    changed,
    layers,
    offers,
)
from pyasg.train.lab import RECORD, ModelLab, load_changes
from pyasg.viewer import protocol
from pyasg.viewer.lab import LabRequestError, LabView
from pyasg.viewer.process import handle_request
from pyasg.viewer.watch import Watcher

BATCH, N = 16, 64


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, 3)).astype(np.float32)
    y = (np.sin(x.sum(axis=1, keepdims=True)) + 0.1).astype(np.float32)
    return x, y


def _loader():
    x, y = _data()
    return DataLoader(ArrayDataset(x, y), batch_size=BATCH)  # in order: batch k = rows k*16..


def _batch_of_step(step: int):
    """The batch training step `step` (1-based) takes from `_loader()`."""
    x, y = _data()
    k = (step - 1) % (N // BATCH)
    return x[k * BATCH:(k + 1) * BATCH], y[k * BATCH:(k + 1) * BATCH]


def _mlp(act: nn.Module | None = None):
    return nn.Sequential(nn.Linear(3, 16), act or nn.ReLU(), nn.Linear(16, 1))


def _copy(tree):
    return pyasg.tree_map(lambda a: np.array(a, copy=True), tree)


class FakeViewer:
    """The viewer's side: every event the viewer reads, as the JSON text it receives."""

    def __init__(self):
        self.view = LabView()
        self.received = []
        self._stops = [events.subscribe(self._receive, t) for t in protocol.EVENTS]

    def _receive(self, event):
        message = protocol.decode(protocol.encode(event))
        self.received.append(message)
        self.view.handle(message)

    def send(self, what, path, value):
        """The viewer asks (checked against the offers), training's handle takes it."""
        assert handle_request(self.view.request(what, path, value), Watcher())

    def close(self):
        for stop in self._stops:
            stop()


@pytest.fixture
def viewer():
    fake = FakeViewer()
    yield fake
    fake.close()


def _at_step(step, fn):
    return LambdaCallback(on_step_end=lambda trainer, logs: fn(trainer, logs)
                          if trainer.step == step else None)


def _losses():
    seen = {}
    return seen, LambdaCallback(on_step_end=lambda trainer, logs: seen.__setitem__(
        trainer.step, logs["loss"]))


def test_relu_to_gelu_through_the_protocol_continues_from_the_same_weights(viewer, tmp_path):
    snapshot = {}

    def ask(trainer, logs):
        snapshot["params"] = _copy(trainer.params)
        viewer.send("activation", "1", "gelu")

    lab = ModelLab(record=tmp_path / "run" / "changes.json")  # the directory is made
    seen, log = _losses()
    trainer = Trainer(_mlp(), losses.mse_loss, optim.Adam(lr=0.01), _loader(),
                      callbacks=[_at_step(3, ask), lab, log], progress=False)
    trainer.fit(steps=6)

    # the change applied after step 3: step 4 ran the new model on the old weights
    assert [(c.what, c.path, c.value, c.step, c.before) for c in lab.changes] == [
        ("activation", "1", "gelu", 3, "relu")]
    assert type(trainer.model[1]) is nn.GELU
    x4, y4 = _batch_of_step(4)
    expected = float(losses.mse_loss(_mlp(nn.GELU())(snapshot["params"], x4), y4))
    with_relu = float(losses.mse_loss(_mlp(nn.ReLU())(snapshot["params"], x4), y4))
    assert seen[4] == pytest.approx(expected, rel=1e-5, abs=1e-7)
    assert abs(expected - with_relu) > 1e-3  # the new model does compute something else
    # the viewer's chart data carries the marker at that step; the offers followed
    assert viewer.view.markers == [(3, "activation 1: relu → gelu")]
    assert any(o["what"] == "activation" and o["current"] == "gelu"
               for o in viewer.view.offers)
    assert load_changes(tmp_path / "run" / "changes.json") == lab.changes


def test_a_recorded_run_replays_to_the_same_weights(viewer):
    live = ModelLab()
    asked = _at_step(2, lambda t, logs: viewer.send("activation", "1", "tanh"))
    dropped = _at_step(4, lambda t, logs: viewer.send("insert_dropout", "1", 0.25))
    first = Trainer(_mlp(), losses.mse_loss, optim.SGD(lr=0.05), _loader(),
                    callbacks=[asked, dropped, live], progress=False)
    first.fit(steps=7)
    assert [c.step for c in live.changes] == [2, 4]

    again = ModelLab(replay=json.loads(json.dumps([c.to_dict() for c in live.changes])),
                     listen=False)
    second = Trainer(_mlp(), losses.mse_loss, optim.SGD(lr=0.05), _loader(),
                     callbacks=[again], progress=False)
    second.fit(steps=7)
    assert again.changes == live.changes
    for a, b in zip(pyasg.tree_leaves(first.params), pyasg.tree_leaves(second.params)):
        np.testing.assert_array_equal(a, b)
    assert list(second.model.children()) == ["0", "1", "1_dropout", "2"]


def test_a_learning_rate_change_takes_effect_at_the_next_update(viewer):
    snapshot = {}

    def ask(trainer, logs):
        snapshot["params"] = _copy(trainer.params)
        viewer.send("lr", "", "0.001")  # typed into the viewer as text

    lrs = {}
    log = LambdaCallback(on_step_end=lambda t, logs: lrs.__setitem__(t.step, logs["lr"]))
    trainer = Trainer(_mlp(), losses.mse_loss, optim.SGD(lr=0.1), _loader(),
                      callbacks=[_at_step(2, ask), ModelLab(), log], progress=False)
    trainer.fit(steps=3)
    assert lrs[2] == pytest.approx(0.1) and lrs[3] == pytest.approx(0.001)
    # plain SGD: step 3 moved every weight by exactly 0.001 x its gradient
    x3, y3 = _batch_of_step(3)
    model = _mlp()
    grads = pyasg.grad(lambda p: losses.mse_loss(model(p, x3), y3))(snapshot["params"])
    want = pyasg.tree_map(lambda p, g: p - np.float32(0.001) * g, snapshot["params"], grads)
    for got, exp in zip(pyasg.tree_leaves(trainer.params), pyasg.tree_leaves(want)):
        np.testing.assert_allclose(got, exp, rtol=1e-5, atol=1e-7)
    assert viewer.view.markers == [(2, "lr: 0.1 → 0.001")]


@pytest.mark.parametrize("change, message", [
    (Change("activation", "7", "gelu"), r"activation at '7': the model \(Sequential\) has no "
                                        r"layer there; its layers are 0, 1, 2"),
    (Change("activation", "0", "gelu"), r"layer '0' \(Linear\) is not an activation layer"),
    (Change("activation", "1", "swish"), r"unknown activation 'swish' for layer '1' \(ReLU\); "
                                         r"choose one of elu, gelu"),
    (Change("activation", "1", 3.0), r"unknown activation 3.0"),
    (Change("dropout", "1", 0.5), r"layer '1' \(ReLU\) is not a Dropout"),
    (Change("insert_dropout", "1", 1.5), r"insert_dropout at '1' needs a dropout rate in "
                                         r"\[0, 1\), got float 1.5"),
    (Change("insert_dropout", "", 0.1), r"layer '' has no parent layer"),
    (Change("remove_dropout", "1"), r"remove_dropout at '1': the layer is a ReLU, not a "
                                    r"Dropout"),
    (Change("teleport", "1"), r"unknown change 'teleport'; the lab changes activation, "
                              r"insert_dropout, dropout, remove_dropout, insert_layernorm, lr"),
    (Change("insert_layernorm", "1"), r"insert_layernorm at '1': a LayerNorm goes after a "
                                      r"Linear \(whose width it normalises\), not a ReLU"),
    (Change("insert_layernorm", "0", 0.5), r"insert_layernorm at '0' takes no value, got "
                                           r"float 0.5"),
])
def test_invalid_changes_name_what_was_asked(change, message):
    with pytest.raises(LabError, match=message) as info:
        changed(_mlp(), change)
    assert isinstance(info.value, PyasgError)


def test_a_refused_request_is_reported_and_training_goes_on(viewer):
    lab = ModelLab()
    ask = _at_step(1, lambda t, logs: (handle_request(protocol.encode_change(
        "activation", "0", "gelu"), Watcher()), handle_request(protocol.encode_change(
            "lr", "", -1.0), Watcher())))
    trainer = Trainer(_mlp(), losses.mse_loss, optim.SGD(lr=0.1), _loader(),
                      callbacks=[ask, lab], progress=False)
    trainer.fit(steps=3)
    assert trainer.step == 3 and lab.changes == [] and type(trainer.model[1]) is nn.ReLU
    errors = [c.error for c in viewer.view.history]
    assert len(errors) == 2 and "layer '0' (Linear) is not an activation layer" in errors[0]
    assert "lr needs a learning rate > 0, got float -1.0" in errors[1]
    assert viewer.view.markers == []


def test_a_replayed_change_that_cannot_apply_raises():
    lab = ModelLab(replay=[Change("lr", "", 0.01, step=1)], listen=False)
    trainer = Trainer(_mlp(), losses.mse_loss,
                      optim.SGD(schedule=optim.StepLR(0.1, step_size=2)), _loader(),
                      callbacks=[lab], progress=False)
    with pytest.raises(LabError, match="lr 0.01: the optimiser follows a schedule"):
        trainer.fit(steps=3)


def test_the_viewer_refuses_what_is_not_offered():
    view = LabView()
    view.handle(events.LabOffered(tuple(offers(_mlp(), lr=0.1))))
    with pytest.raises(LabRequestError, match=r"dropout at '1' is not offered for this model"):
        view.request("dropout", "1", 0.5)
    with pytest.raises(LabRequestError, match=r"takes one of elu, .*got 'swish'"):
        view.request("activation", "1", "swish")
    assert view.sent == []


def test_dropout_insert_rate_and_remove_keep_every_parameter_path():
    model = _mlp()
    params = model.init(pyasg.random.key(0))
    inserted = changed(model, Change("insert_dropout", "1", 0.2))
    assert list(inserted.children()) == ["0", "1", "1_dropout", "2"]
    assert list(model.children()) == ["0", "1", "2"]  # the old description is untouched
    kept, added = carry_params(params, inserted, pyasg.random.key(1))
    assert added == []
    assert all(a is b for a, b in zip(pyasg.tree_leaves(kept), pyasg.tree_leaves(params)))
    rated = changed(inserted, Change("dropout", "1_dropout", 0.5))
    assert rated["1_dropout"].p == 0.5 and inserted["1_dropout"].p == 0.2
    removed = changed(rated, Change("remove_dropout", "1_dropout"))
    assert list(removed.children()) == ["0", "1", "2"]
    x = np.ones((4, 3), np.float32)
    np.testing.assert_array_equal(removed(params, x), model(params, x))
    y = rated(params, x, key=pyasg.random.key(3), training=True)
    hidden = model[1]({}, model[0](params["0"], x))
    mask = np.asarray(pyasg.random.dropout(hidden, 0.5, pyasg.random.split(
        pyasg.random.key(3), 4)[2], True))
    np.testing.assert_allclose(y, model[2](params["2"], mask), rtol=1e-6)


def test_a_feedforward_activation_swap_matches_a_block_built_with_it():
    block = nn.TransformerBlock(8, 2, activation="gelu")
    params = block.init(pyasg.random.key(0))
    assert [o["path"] for o in offers(block) if o["what"] == "activation"] == ["ff"]
    swapped = changed(block, Change("activation", "ff", "relu"))
    assert block.ff.activation == "gelu" and swapped.ff.activation == "relu"
    x = np.random.default_rng(1).normal(size=(2, 3, 8)).astype(np.float32)
    reference = nn.TransformerBlock(8, 2, activation="relu")
    np.testing.assert_array_equal(swapped(params, x), reference(params, x))
    with pytest.raises(LabError, match=r"unknown activation 'tanh' for the FeedForward at 'ff'"):
        changed(block, Change("activation", "ff", "tanh"))


MODELS = {
    "mlp": lambda: _mlp(),
    "dropout": lambda: nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Dropout(0.1),
                                     nn.Linear(4, 2), nn.GELU("tanh")),
    "block": lambda: nn.TransformerBlock(4, 2),
}


@settings(deadline=None, max_examples=40)
@given(name=st.sampled_from(sorted(MODELS)), pick=st.integers(0, 10_000), rate=st.floats(0, 0.99))
def test_every_offered_change_applies_and_new_parameters_come_from_their_layer(name, pick,
                                                                               rate):
    model = MODELS[name]()
    offered = offers(model)
    offer = offered[pick % len(offered)]
    choices = offer["choices"]
    value = (choices[pick % len(choices)] if isinstance(choices, list)
             else None if choices is None else rate)
    new = changed(model, Change(offer["what"], offer["path"], value))
    params = model.init(pyasg.random.key(0))
    carried, added = carry_params(params, new, pyasg.random.key(1))
    old_paths = {p for p, _ in flatten_with_paths(params)[0]}
    new_pairs = dict(flatten_with_paths(carried)[0])
    assert set(new_pairs) - set(added) <= old_paths  # every other one was kept by path
    if offer["what"] != "insert_layernorm":
        assert added == []  # activations and dropout bring no parameters
        return
    # the new LayerNorm's own init: scale 1, shift 0, of the Linear's width
    width = layers(model)[offer["path"]].out_features
    prefix = offer["path"].rpartition(".")[0]
    norm = f"{prefix + '.' if prefix else ''}{offer['path'].rpartition('.')[2]}_norm"
    assert sorted(added) == [f"{norm}.bias", f"{norm}.weight"]
    np.testing.assert_array_equal(new_pairs[f"{norm}.weight"], np.ones(width, np.float32))
    np.testing.assert_array_equal(new_pairs[f"{norm}.bias"], np.zeros(width, np.float32))


def test_activation_table_names_parameter_free_layers():
    for name, make in ACTIVATION_LAYERS.items():
        assert make().init(pyasg.random.key(0)) == {}, name


def test_replace_model_refuses_a_change_of_statefulness():
    trainer = Trainer(_mlp(), losses.mse_loss, optim.SGD(lr=0.1), _loader(), progress=False)
    stateful = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    with pytest.raises(PyasgError, match="must have state"):
        trainer.replace_model(stateful, trainer.params, trainer.opt_state)


def test_lab_messages_round_trip_and_bad_ones_are_refused():
    offered = events.LabOffered(tuple(offers(_mlp(), lr=0.1)))
    assert protocol.decode(protocol.encode(offered)) == offered
    change = events.ModelChanged(3, "activation", "1", "gelu", "relu")
    assert protocol.decode(protocol.encode(change)) == change
    assert protocol.decode_request(protocol.encode_change("dropout", "2", 0.3)) == \
        events.ChangeRequested("dropout", "2", 0.3)
    bad = protocol.encode_change("lr", "", 0.1).replace("0.1", "1e999")  # inf in JSON
    with pytest.raises(protocol.ProtocolError, match="Change.value must be a string, a finite"):
        protocol.decode_request(bad)
    with pytest.raises(protocol.ProtocolError, match="goes from the viewer to training"):
        protocol.decode(protocol.encode_change("lr", "", 0.1))
    with pytest.raises(protocol.ProtocolError, match="must be a string, a finite number"):
        protocol.encode_change("lr", "", float("inf"))
    assert not handle_request('{"protocol": "pyasg.viewer"}', Watcher())


def test_the_demo_swaps_a_blocks_activation_and_resumes_with_it(tmp_path):
    from pyasg.examples import charlm
    from pyasg.nn.losses import cross_entropy

    config = charlm.ModelConfig(context=8, embed_dim=16, num_heads=2, num_layers=2)
    data = np.random.default_rng(0).integers(0, len(charlm.VOCAB), 400, dtype=np.int32)
    trainer = charlm.Trainer(config, batch_size=2, data=data)
    lab = ModelLab(record=tmp_path / RECORD)
    lab.on_fit_start(trainer)
    assert {(o["path"], o["current"]) for o in offers(trainer.model)
            if o["what"] == "activation"} == {("blocks.0.ff", "gelu"), ("blocks.1.ff", "gelu")}
    for _ in range(2):
        trainer.train_step()
    lab.request("activation", "blocks.0.ff", "relu")
    snapshot = _copy(trainer.params)
    lab.on_step_end(trainer, {})
    loss = trainer.train_step()

    reference = charlm.CharLM(config)  # built by hand, not by the lab
    reference.blocks[0].ff.activation = "relu"
    x, y = charlm.batch(data, trainer.seed, 3, 2, 8)
    logits = reference(snapshot, x)
    want = float(cross_entropy(pyasg.reshape(logits, (-1, len(charlm.VOCAB))), y.reshape(-1)))
    assert loss == pytest.approx(want, rel=1e-5)
    assert [(c.path, c.step) for c in lab.changes] == [("blocks.0.ff", 2)]

    trainer.save(tmp_path, loss)
    resumed = charlm.Trainer.resume(tmp_path, batch_size=2, data=data)
    assert [b.ff.activation for b in resumed.model.blocks] == ["relu", "gelu"]
    assert resumed.train_step() == pytest.approx(trainer.train_step(), rel=1e-6)


def test_every_kind_of_change_has_a_label_in_both_languages():
    from pyasg.viewer.texts import LAB_TEXT, LANGS

    for what in (*RULES, LR):
        assert all(LAB_TEXT[f"lab_{what}"][lang] for lang in LANGS), what
    assert all(set(entry) == set(LANGS) and all(entry.values()) for entry in LAB_TEXT.values())


VALUES = st.one_of(st.none(), st.text(max_size=20),
                   st.floats(allow_nan=False, allow_infinity=False))


@given(what=st.text(max_size=12), path=st.text(max_size=12), value=VALUES, before=VALUES,
       step=st.integers(0, 2**31), error=st.one_of(st.none(), st.text(max_size=30)))
def test_lab_messages_round_trip_whatever_they_hold(what, path, value, before, step, error):
    asked = protocol.decode_request(protocol.encode_change(what, path, value))
    assert asked == events.ChangeRequested(what, path, value)
    done = events.ModelChanged(step, what, path, value, before, error)
    assert protocol.decode(protocol.encode(done)) == done


def test_inserting_a_layernorm_starts_it_at_its_init_and_training_goes_on(viewer):
    snapshot, after = {}, {}

    def ask(trainer, logs):
        snapshot["params"], snapshot["opt"] = _copy(trainer.params), _copy(trainer.opt_state)
        viewer.send("insert_layernorm", "0", None)

    def look(trainer, logs):  # after the lab, before step 3
        after["opt"] = _copy(trainer.opt_state)

    seen, log = _losses()
    trainer = Trainer(_mlp(), losses.mse_loss, optim.Adam(lr=0.01), _loader(),
                      callbacks=[_at_step(2, ask), ModelLab(), _at_step(2, look), log],
                      progress=False)
    trainer.fit(steps=4)
    assert list(trainer.model.children()) == ["0", "0_norm", "1", "2"]
    # step 3 ran the new model: the old weights, the LayerNorm at γ = 1, β = 0
    by_hand = nn.Sequential({"0": nn.Linear(3, 16), "0_norm": nn.LayerNorm(16),
                             "1": nn.ReLU(), "2": nn.Linear(16, 1)})
    params = {**snapshot["params"], "0_norm": {"weight": np.ones(16, np.float32),
                                               "bias": np.zeros(16, np.float32)}}
    x3, y3 = _batch_of_step(3)
    assert seen[3] == pytest.approx(float(losses.mse_loss(by_hand(params, x3), y3)), rel=1e-5)
    # the old parameters' Adam moments and step count went on; the new ones' are zeros
    for slot in ("exp_avg", "exp_avg_sq"):
        for layer in ("0", "2"):
            for name, value in snapshot["opt"][slot][layer].items():
                np.testing.assert_array_equal(after["opt"][slot][layer][name], value)
        for value in after["opt"][slot]["0_norm"].values():
            np.testing.assert_array_equal(value, np.zeros(16, np.float32))
    assert int(after["opt"]["step"]) == int(snapshot["opt"]["step"]) == 2
    assert viewer.view.markers == [(2, "insert_layernorm 0")]


def test_a_layer_that_cannot_be_replaced_is_refused_not_ignored():
    class Rebuilding(nn.Module):  # its children() makes new layers on every call
        def children(self):
            return {"act": nn.ReLU()}

        def __call__(self, params, x):
            return self.children()["act"]({}, x)

    with pytest.raises(LabError, match=r"cannot replace the layer at 'act': its parent "
                                       r"\(Rebuilding\) does not hold it"):
        changed(Rebuilding(), Change("activation", "act", "gelu"))


def test_with_checkpoints_the_record_is_saved_with_the_run_and_rebuilds_the_model(tmp_path):
    from pyasg.train.changes import replayed

    ask = _at_step(2, lambda t, logs: lab.request("activation", "1", "tanh"))
    lab = ModelLab()
    trainer = Trainer(_mlp(), losses.mse_loss, optim.SGD(lr=0.1), _loader(), callbacks=[ask, lab],
                      checkpoints=tmp_path, save_every=2, progress=False)
    trainer.fit(steps=4)
    assert load_changes(tmp_path / RECORD) == lab.changes
    # a new process: the model rebuilt from the record, the weights from the checkpoint
    again = Trainer(replayed(_mlp(), load_changes(tmp_path / RECORD)), losses.mse_loss,
                    optim.SGD(lr=0.1), _loader(), checkpoints=tmp_path, progress=False)
    assert again.resume() == 4 and type(again.model[1]) is nn.Tanh
    x = _data()[0]
    np.testing.assert_array_equal(again.model(again.params, x), trainer.model(trainer.params, x))


@pytest.mark.wgpu
def test_the_lab_changes_a_model_training_on_wgpu():
    from wgpu_util import require_wgpu

    require_wgpu()
    snapshot = {}

    def ask(trainer, logs):
        snapshot["params"] = pyasg.tree_map(lambda a: np.array(a.numpy()), trainer.params)
        lab.request("activation", "1", "gelu")
        lab.request("lr", "", 0.002)

    lab = ModelLab()
    seen, log = _losses()
    trainer = Trainer(_mlp(), losses.mse_loss, optim.Adam(lr=0.01), _loader(), backend="wgpu",
                      callbacks=[_at_step(2, ask), lab, log], progress=False)
    trainer.fit(steps=4)
    assert [c.what for c in lab.changes] == ["activation", "lr"]
    x3, y3 = _batch_of_step(3)
    want = float(losses.mse_loss(_mlp(nn.GELU())(snapshot["params"], x3), y3))
    assert seen[3] == pytest.approx(want, rel=1e-4, abs=1e-6)  # wgpu: float32, its own erf
    assert trainer.logs["lr"] == pytest.approx(0.002)  # what step 4 used
