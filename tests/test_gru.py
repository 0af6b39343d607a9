"""nn.GRU and nn.RNN on scan: PyTorch's weights load by name and give PyTorch's outputs
and gradients; central differences check the gradients without torch; the graph does
not grow with the sequence length."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
from gradcheck import check_grad
from hypothesis import given, settings
from hypothesis import strategies as st

import pyasg
from pyasg.errors import ShapeError
from pyasg.nn import GRU, RNN


def _params(layer: object, seed: int, dtype: str = "float64") -> dict:
    return {k: np.asarray(v, dtype) for k, v in layer.init(pyasg.random.key(seed)).items()}


def _torch_layer(torch, layer: object, params: dict):  # noqa: ANN001, ANN202
    kind = type(layer).__name__
    kwargs = {"nonlinearity": layer.nonlinearity} if kind == "RNN" else {}
    module = getattr(torch.nn, kind)(layer.input_size, layer.hidden_size, layer.num_layers,
                                     bias=layer.bias, batch_first=layer.batch_first,
                                     **kwargs).double()
    module.load_state_dict({k: torch.tensor(v) for k, v in params.items()})  # same names
    return module


CONFIGS = st.fixed_dictionaries({
    "kind": st.sampled_from(["GRU", "RNN-tanh", "RNN-relu"]),
    "input_size": st.integers(1, 4), "hidden_size": st.integers(1, 4),
    "num_layers": st.integers(1, 2), "bias": st.booleans(), "batch_first": st.booleans(),
    "steps": st.integers(1, 5), "batch": st.integers(0, 3),  # batch 0: unbatched input
    "with_h0": st.booleans(), "seed": st.integers(0, 2**31),
})


def _make(c: dict) -> object:
    sizes = (c["input_size"], c["hidden_size"], c["num_layers"])
    if c["kind"] == "GRU":
        return GRU(*sizes, bias=c["bias"], batch_first=c["batch_first"], dtype="float64")
    return RNN(*sizes, nonlinearity=c["kind"].split("-")[1], bias=c["bias"],
               batch_first=c["batch_first"], dtype="float64")


@given(c=CONFIGS)
@settings(max_examples=20)
def test_outputs_and_gradients_equal_torch(c: dict) -> None:
    torch = pytest.importorskip("torch")
    layer = _make(c)
    params = _params(layer, c["seed"])
    rng = np.random.default_rng(c["seed"])
    t, n, i, h = c["steps"], c["batch"], c["input_size"], c["hidden_size"]
    shape = (t, i) if n == 0 else ((n, t, i) if c["batch_first"] else (t, n, i))
    x = rng.normal(size=shape)
    h0 = rng.normal(size=(c["num_layers"], h) if n == 0 else (c["num_layers"], n, h)) \
        if c["with_h0"] else None

    def loss(params, x, h0):
        out, h_n = layer(params, x, h0)
        return (out * out).sum() + (h_n * 1.5).sum()

    out, h_n = pyasg.jit(lambda p, x, h0: layer(p, x, h0))(params, x, h0)
    grads = pyasg.grad(loss, argnums=(0, 1))(params, x, h0)

    module = _torch_layer(torch, layer, params)
    tx = torch.tensor(x, requires_grad=True)
    t_out, t_h = module(tx, None if h0 is None else torch.tensor(h0))
    ((t_out * t_out).sum() + (t_h * 1.5).sum()).backward()
    np.testing.assert_allclose(out, t_out.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(h_n, t_h.detach().numpy(), rtol=1e-10, atol=1e-12)
    for name, p in module.named_parameters():
        np.testing.assert_allclose(grads[0][name], p.grad.numpy(), rtol=1e-9, atol=1e-11,
                                   err_msg=name)
    np.testing.assert_allclose(grads[1], tx.grad.numpy(), rtol=1e-9, atol=1e-11)


def test_gru_gradients_against_central_differences() -> None:
    layer = GRU(3, 4, num_layers=2, dtype="float64")
    params = _params(layer, 0)
    x = np.random.default_rng(1).normal(size=(4, 2, 3))
    names = sorted(params)

    def f(x, *ws):
        out, h_n = layer(dict(zip(names, ws)), x)
        return pyasg.concatenate([out.reshape(-1), h_n.reshape(-1)])

    check_grad(f, x, *(params[k] for k in names), argnums=tuple(range(len(names) + 1)))


@pytest.mark.parametrize("kind", [GRU, RNN])
def test_graph_size_does_not_grow_with_sequence_length(kind: type) -> None:
    layer = kind(3, 5, num_layers=2)
    params = layer.init(pyasg.random.key(0))

    def loss(params, x):
        out, _ = layer(params, x)
        return (out * out).mean()

    def size(steps: int) -> tuple[int, int]:
        x = np.zeros((steps, 2, 3), np.float32)
        forward = pyasg.make_graph(lambda p, x: layer(p, x)[0])(params, x)
        backward = pyasg.make_graph(pyasg.grad(loss))(params, x)
        return len(forward.nodes), len(backward.nodes)

    assert size(8) == size(64)


def test_gru_runs_on_numpy_and_reference_alike() -> None:
    layer = GRU(2, 3)
    params = layer.init(pyasg.random.key(3))
    x = np.random.default_rng(0).normal(size=(6, 2, 2)).astype(np.float32)
    fn = pyasg.grad(lambda p, x: (layer(p, x)[0] ** 2).sum())
    got = pyasg.jit(fn, backend="numpy")(params, x)
    want = pyasg.jit(fn, backend="reference")(params, x)
    for k in params:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-6)


def test_bad_inputs_say_what_was_expected() -> None:
    layer = GRU(3, 4)
    params = layer.init(pyasg.random.key(0))
    with pytest.raises(ShapeError, match=r"input must be \[T, N, 3\]"):
        layer(params, np.zeros((5, 2, 4), np.float32))
    with pytest.raises(ShapeError, match=r"h0 must be \[1, 2, 4\]"):
        layer(params, np.zeros((5, 2, 3), np.float32), np.zeros((2, 4), np.float32))
    with pytest.raises(pyasg.PyasgError, match="nonlinearity"):
        RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(pyasg.PyasgError, match="num_layers"):
        GRU(3, 4, num_layers=2**40)  # refused at once, not after naming 2**40 layers
    assert layer.param_kinds(prefix="enc") == {f"enc.{k}": f"GRU.{k.rsplit('_l', 1)[0]}"
                                               for k in params}


def test_char_rnn_example_graph_does_not_grow_with_the_window() -> None:
    from pyasg.examples import char_rnn

    def nodes(context: int) -> float:
        with contextlib.redirect_stdout(io.StringIO()):
            return char_rnn.main(["--steps", "1", "--quiet", "--context", str(context),
                                  "--hidden", "8", "--sample-length", "0"])["graph_nodes"]

    assert nodes(8) == nodes(64)
