"""Weights and graph files: safetensors round trips are bit-exact, every bad file is a
CheckpointError naming the path (never another exception, never a partial load),
`expected=` reports every difference at once, PyTorch's names map onto pyasg's, and a
graph file runs exactly like the graph it was saved from.

`pytest.raises(CheckpointError)` is exact on purpose: a KeyError, struct.error or
ValueError escaping from a loader fails the test. torch is optional: the tests that
use it import it inside the test, and each has a torch-free twin.
"""

from __future__ import annotations

import collections
import json
import os
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pyasg
from pyasg import io
from pyasg.asg.types import TensorType
from pyasg.errors import CheckpointError, GraphFormatError, ShapeError
from pyasg.io.weights import checksum
from pyasg.nn import Conv2d, Embedding, LayerNorm, Linear, MultiHeadAttention
from pyasg.trace.tree import flatten, flatten_with_paths

#: Every dtype a file can hold; the first six are pyasg's own.
DTYPES = ["bool", "int32", "int64", "uint32", "float32", "float64",
          "int8", "uint8", "int16", "uint16", "uint64", "float16"]


def leaves(tree: object) -> dict:
    return dict(flatten_with_paths(tree)[0])


def assert_bit_identical(a: object, b: object) -> None:
    """Same structure, and every leaf has the same dtype, shape and bytes (NaN payloads,
    -0.0 and all)."""
    assert flatten(a)[1] == flatten(b)[1]
    for (path, x), (_, y) in zip(flatten_with_paths(a)[0], flatten_with_paths(b)[0]):
        x, y = np.asarray(x), np.asarray(y)
        assert (x.dtype, x.shape) == (y.dtype, y.shape), path
        assert x.tobytes() == y.tobytes(), path


def load_error(path: Path, expected: object = None) -> str:
    """The message of the CheckpointError that loading `path` must raise; it names the path."""
    with pytest.raises(CheckpointError) as info:
        io.load(path, expected)
    message = str(info.value)
    assert str(path) in message
    return message


def sample(tmp_path: Path) -> Path:
    path = tmp_path / "w.safetensors"
    io.save(path, {"a": np.arange(6, dtype=np.float32).reshape(2, 3),
                   "b": {"c": np.array([1, 2], np.int64), "d": np.array(True)}})
    return path


def header_of(path: Path) -> tuple[dict, bytes]:
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def write_with_header(path: Path, header: dict, data: bytes) -> None:
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)


# --------------------------------------------------------------------------- round trips


@st.composite
def arrays(draw: st.DrawFn) -> np.ndarray:
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    shape = tuple(draw(st.lists(st.integers(0, 4), max_size=3)))
    n = int(np.prod(shape))
    if dtype.kind == "b":
        return np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)),
                        bool).reshape(shape)
    # arbitrary bytes: NaNs with payloads, infinities, -0.0 and subnormals included
    raw = draw(st.binary(min_size=n * dtype.itemsize, max_size=n * dtype.itemsize))
    return np.frombuffer(raw, dtype).reshape(shape).copy()


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.from_regex(r"[a-z_][a-z0-9_]{0,6}", fullmatch=True), arrays(),
                       min_size=1, max_size=5), arrays())
def test_round_trip_is_bit_exact_for_every_dtype(tree, extra):
    params = {"layer": tree, "blocks": [extra, {"x": extra}], "pair": (extra, None)}
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "w.safetensors"
        io.save(path, params)
        assert_bit_identical(io.load(path), params)
        assert_bit_identical(io.load(path, expected=params), params)
        assert os.listdir(d) == ["w.safetensors"]


@pytest.mark.parametrize("dtype", DTYPES)
def test_each_dtype_is_preserved_with_its_extremes(tmp_path, dtype):
    info = np.finfo(dtype) if np.dtype(dtype).kind == "f" else (
        np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None)
    values = [0, 1] if info is None else [info.min, info.max, 0]
    x = np.array(values, dtype)
    if x.dtype.kind == "f":
        x = np.concatenate([x, np.array([np.nan, -np.inf, -0.0], dtype)])
    io.save(tmp_path / "w.safetensors", {"x": x})
    assert_bit_identical(io.load(tmp_path / "w.safetensors"), {"x": x})


def test_strided_and_big_endian_arrays_are_saved_by_value(tmp_path):
    base = np.arange(12.0).reshape(3, 4)
    params = {"strided": base[:, ::2], "transposed": base.T,
              "big_endian": np.arange(3, dtype=">i4"), "scalar": 2.5, "flag": True}
    io.save(tmp_path / "w.safetensors", params)
    loaded = io.load(tmp_path / "w.safetensors")
    for k in ("strided", "transposed", "big_endian"):
        np.testing.assert_array_equal(loaded[k], params[k])
    assert loaded["big_endian"].dtype == np.dtype("int32")
    assert loaded["scalar"].shape == () and loaded["scalar"].dtype == np.float64
    assert loaded["flag"].dtype == bool and bool(loaded["flag"])


def test_structure_comes_back_without_expected(tmp_path):
    Pair = collections.namedtuple("Pair", "left right")
    params = {"z": [np.ones(1), (np.zeros(2), None)], 3: {"a": np.ones(1)},
              "nt": Pair(np.ones(1), np.zeros(1)), "empty": {}}
    io.save(tmp_path / "w.safetensors", params)
    loaded = io.load(tmp_path / "w.safetensors")
    assert list(loaded) == ["z", 3, "nt", "empty"]  # insertion order, int keys kept
    assert isinstance(loaded["z"], list) and isinstance(loaded["z"][1], tuple)
    assert loaded["z"][1][1] is None and loaded["empty"] == {}
    assert list(loaded["nt"]) == ["left", "right"]  # a namedtuple comes back as a dict
    assert list(io.load_flat(tmp_path / "w.safetensors")) == [
        "z.0", "z.1.0", "3.a", "nt.left", "nt.right"]
    # with `expected`, the exact structure, namedtuple included
    assert isinstance(io.load(tmp_path / "w.safetensors", expected=params)["nt"], Pair)


def test_model_params_round_trip_and_feed_the_same_compiled_function(tmp_path):
    block = pyasg.nn.TransformerBlock(8, 2)
    params = block.init(pyasg.random.key(0))
    io.save(tmp_path / "block.safetensors", params)
    loaded = io.load(tmp_path / "block.safetensors")
    assert_bit_identical(loaded, params)
    assert "attn.w_q.weight" in io.load_flat(tmp_path / "block.safetensors")
    x = np.random.default_rng(0).standard_normal((2, 3, 8)).astype(np.float32)
    run = pyasg.trace(block)
    np.testing.assert_array_equal(run(loaded, x), run(params, x))


def test_metadata_holds_the_version_and_the_users_keys(tmp_path):
    path = tmp_path / "w.safetensors"
    io.save(path, {"w": np.zeros(1)}, metadata={"epoch": "3", "note": "ü ✓"})
    assert io.read_metadata(path) == {"epoch": "3", "note": "ü ✓",
                                      "pyasg.version": pyasg.__version__}
    # and the file is an ordinary safetensors file
    assert safetensors.numpy.load_file(path)["w"].tolist() == [0.0]


@pytest.mark.parametrize("metadata", [{"n": 3}, {1: "x"}, {"pyasg.version": "9"}, ["x"]])
def test_bad_metadata_is_refused_before_writing(tmp_path, metadata):
    with pytest.raises(CheckpointError, match="metadata"):
        io.save(tmp_path / "w.safetensors", {"w": np.zeros(1)}, metadata=metadata)
    assert os.listdir(tmp_path) == []


# --------------------------------------------------------------------------- expected=


def test_expected_reports_every_difference_in_one_error(tmp_path):
    io.save(tmp_path / "w.safetensors", {"fc": {"weight": np.zeros((4, 3), np.float32),
                                                "bias": np.zeros(4, np.float32)},
                                         "extra": np.zeros(1), "ids": np.zeros(2, np.int64)})
    expected = {"fc": {"weight": np.zeros((3, 4), np.float32), "bias": np.zeros(4, np.float32)},
                "norm": {"weight": np.zeros(4)}, "ids": np.zeros(2, np.int32)}
    message = load_error(tmp_path / "w.safetensors", expected)
    assert "missing: norm.weight" in message
    assert "unexpected: extra" in message
    assert "'fc.weight' has shape [4, 3], expected [3, 4]" in message
    assert "'ids' has dtype int64, expected int32" in message


def test_expected_gives_its_structure_and_accepts_types(tmp_path):
    params = {"blocks": [{"w": np.ones((2, 2), np.float32)}, {"w": np.zeros((2, 2),
                                                                             np.float32)}]}
    safetensors.numpy.save_file(leaves(params), tmp_path / "w.safetensors")  # no tree stored
    assert isinstance(io.load(tmp_path / "w.safetensors")["blocks"], dict)  # guessed: dicts
    spec = {"blocks": [{"w": TensorType((2, 2))}, {"w": TensorType((2, 2))}]}
    assert_bit_identical(io.load(tmp_path / "w.safetensors", expected=spec), params)


# --------------------------------------------------------------------------- bad files


@pytest.mark.parametrize("cut", [0, 1, 7, 8, 9, 40, -30, -9, -1])
def test_a_truncated_file_is_a_checkpoint_error(tmp_path, cut):
    path = sample(tmp_path)
    raw = path.read_bytes()
    path.write_bytes(raw[:cut % len(raw)])
    load_error(path)


def test_every_truncation_is_a_checkpoint_error(tmp_path):
    path = sample(tmp_path)
    raw = path.read_bytes()
    for n in range(len(raw)):
        path.write_bytes(raw[:n])
        load_error(path)


@pytest.mark.parametrize(("lie", "says"), [
    (lambda h: h["a"].update(shape=[3, 3]), "needs 36 bytes"),
    (lambda h: h["a"].update(data_offsets=[0, 1000]), "needs 24 bytes"),
    (lambda h: h["a"].update(data_offsets=[8, 32]), "overlaps"),  # b.c is [0, 16]
    (lambda h: h["a"].update(dtype="F64"), "needs 48 bytes"),
    (lambda h: h["a"].update(dtype="BF16"), "no numpy equivalent"),
    (lambda h: h["a"].update(shape=[-2, -3]), "non-negative"),
    (lambda h: h["a"].update(shape=[2, True]), "non-negative"),
    (lambda h: h.update(z={"dtype": "F32", "shape": [0, 2**70], "data_offsets": [0, 0]}),
     "numpy cannot make"),
    (lambda h: h["a"].update(data_offsets=[24]), "data_offsets"),
    (lambda h: h["a"].pop("dtype"), "exactly dtype"),
    (lambda h: h.update(__metadata__={"x": 1}), "__metadata__"),
    (lambda h: h.update(q="not an entry"), "tensor 'q'"),
])
def test_a_header_that_lies_is_a_checkpoint_error(tmp_path, lie, says):
    path = sample(tmp_path)
    header, data = header_of(path)
    lie(header)
    write_with_header(path, header, data)
    assert says in load_error(path)


def test_header_length_and_data_size_must_agree_with_the_file(tmp_path):
    path = sample(tmp_path)
    raw = path.read_bytes()
    path.write_bytes(struct.pack("<Q", 2**63) + raw[8:])
    assert "claims" in load_error(path)
    path.write_bytes(raw + b"\0" * 8)
    assert "not described" in load_error(path)
    header, data = header_of(sample(tmp_path))
    write_with_header(path, header, data[:-1])
    assert "truncated" in load_error(path)


@pytest.mark.parametrize("content", [
    b"", b"hello", b"PK\x03\x04" + bytes(100), b"\x89HDF\r\n\x1a\n" + bytes(64),
    struct.pack("<Q", 4) + b"[1] ", struct.pack("<Q", 2) + b"{}" + b"x",
    struct.pack("<Q", 4) + b"\xff\xfe{}", struct.pack("<Q", 7) + b'{"a":1}',
    struct.pack("<Q", 13) + b'{"a":1,"a":2}', json.dumps({"not": "safetensors"}).encode(),
], ids=["empty", "text", "zip", "hdf5", "json-list", "trailing", "not-utf8", "bad-entry",
        "duplicate-key", "plain-json"])
def test_a_non_safetensors_file_is_a_checkpoint_error(tmp_path, content):
    path = tmp_path / "w.safetensors"
    path.write_bytes(content)
    load_error(path)
    with pytest.raises(CheckpointError, match="w.safetensors"):
        io.read_metadata(path)


def test_missing_files_and_directories_are_checkpoint_errors(tmp_path):
    assert "no such file" in load_error(tmp_path / "nope.safetensors")
    load_error(tmp_path)  # a directory


def test_flipped_data_bits_fail_the_checksum(tmp_path):
    path = sample(tmp_path)
    raw = bytearray(path.read_bytes())
    raw[-20] ^= 0x10
    path.write_bytes(bytes(raw))
    assert "CRC-32" in load_error(path)


def test_header_damage_that_still_parses_is_caught(tmp_path):
    path = tmp_path / "w.safetensors"
    io.save(path, {"w": np.zeros(2, np.float32)}, metadata={"epoch": "3"})
    raw = path.read_bytes()
    path.write_bytes(raw.replace(b'"epoch":"3"', b'"epoch":"4"'))
    assert "CRC-32" in load_error(path)
    path.write_bytes(raw.replace(b"pyasg.tree", b"pyasg.tre_"))
    assert "but not pyasg.tree" in load_error(path)


def test_bool_bytes_other_than_0_and_1_are_refused(tmp_path):
    path = tmp_path / "w.safetensors"
    write_with_header(path, {"m": {"dtype": "BOOL", "shape": [2], "data_offsets": [0, 2]}},
                      b"\x01\x02")
    assert "0 or 1" in load_error(path)


@pytest.mark.parametrize(("tree", "says"), [
    ('{"dict": [["a", 0], ["zz", 0]]}', "has no tensor"),
    ('{"dict": [["a", 0]]}', "does not match"),
    ('{"dict": [["a", 0], ["a", 0]]}', "malformed"),
    ('{"set": []}', "malformed"),
    ("[0]", "malformed"),
    ("{", "not valid JSON"),
    ("[" * 100_000 + "]" * 100_000, "not valid JSON"),  # too deep for the parser
])
def test_a_stored_tree_that_does_not_match_the_tensors_is_refused(tmp_path, tree, says):
    path = sample(tmp_path)
    arrays = io.load_flat(path)
    header, data = header_of(path)
    metadata = header["__metadata__"]
    metadata["pyasg.tree"] = tree
    # a consistent checksum, so that the tree check itself is what refuses the file
    metadata["pyasg.crc32"] = checksum(arrays, metadata)
    write_with_header(path, header, data)
    assert says in load_error(path)


@settings(deadline=None, max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_damage_loads_identically_or_is_a_checkpoint_error(data):
    with tempfile.TemporaryDirectory() as d:
        path = sample(Path(d))
        original = io.load(path)
        raw = bytearray(path.read_bytes())
        for _ in range(data.draw(st.integers(1, 4))):
            i = data.draw(st.integers(0, len(raw) - 1))
            raw[i] = data.draw(st.integers(0, 255))
        path.write_bytes(bytes(raw))
        try:
            loaded = io.load(path)
        except CheckpointError as e:
            assert str(path) in str(e)
        else:  # only harmless bytes changed (JSON whitespace, the header's padding, or
            # every one of pyasg's keys, so that it reads as a foreign file: by path, then)
            a, b = leaves(loaded), leaves(original)
            assert a.keys() == b.keys()
            assert all(a[k].dtype == b[k].dtype and a[k].tobytes() == b[k].tobytes() for k in a)


# --------------------------------------------------------------------------- bad saves


@pytest.mark.parametrize(("params", "says"), [
    (np.zeros(3), "bare array"),
    ({"z": np.zeros(2, np.complex64)}, "complex64"),
    ({"s": np.array(["a"])}, "cannot hold"),
    ({"o": object()}, "cannot hold"),
    ({"a.b": np.zeros(1), "a": {"b": np.zeros(1)}}, "same path"),
    ({(1, 2): np.zeros(1)}, "keys must be str or int"),
])
def test_bad_params_are_refused_and_nothing_is_written(tmp_path, params, says):
    with pytest.raises(CheckpointError, match=says):
        io.save(tmp_path / "w.safetensors", params)
    assert os.listdir(tmp_path) == []


def test_saving_into_a_missing_directory_is_a_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        io.save(tmp_path / "no" / "w.safetensors", {"w": np.zeros(1)})


@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"),
                                     RuntimeError("safetensors bug"), KeyboardInterrupt()])
def test_a_failed_save_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch,
                                                                  failure):
    path = sample(tmp_path)
    before = path.read_bytes()

    def broken(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"half a file")
        raise failure

    monkeypatch.setattr(safetensors.numpy, "save_file", broken)
    with pytest.raises((CheckpointError, KeyboardInterrupt)) as info:
        io.save(path, {"w": np.ones(3)})
    if isinstance(failure, Exception):
        assert info.type is CheckpointError and str(path) in str(info.value)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["w.safetensors"]


@pytest.mark.parametrize("stage", ["fsync", "replace"])
def test_a_save_that_fails_before_the_rename_keeps_the_old_file(tmp_path, monkeypatch, stage):
    path = sample(tmp_path)
    before = path.read_bytes()

    def broken(*args):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, stage, broken)
    with pytest.raises(CheckpointError, match="Input/output error"):
        io.save(path, {"w": np.ones(3)})
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["w.safetensors"]


# --------------------------------------------------------------------------- PyTorch names


def pyasg_model() -> tuple[dict, dict]:
    """Layers like the PyTorch model of the torch test, and their params."""
    layers = {"fc": Linear(3, 4), "conv": Conv2d(4, 6, 3, groups=2), "ln": LayerNorm(4),
              "emb": Embedding(5, 4), "attn": MultiHeadAttention(4, 2),
              "cross": MultiHeadAttention(4, 2, kdim=3, vdim=5)}
    keys = pyasg.random.split(pyasg.random.key(0), len(layers))
    return layers, {name: layer.init(k) for (name, layer), k in zip(layers.items(), keys)}


def torch_style_state_dict(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """What torch's state_dict() of that model holds, with its names and layouts."""
    shapes = {"fc.weight": (4, 3), "fc.bias": (4,), "conv.weight": (6, 2, 3, 3),
              "conv.bias": (6,), "ln.weight": (4,), "ln.bias": (4,), "emb.weight": (5, 4),
              "attn.in_proj_weight": (12, 4), "attn.in_proj_bias": (12,),
              "attn.out_proj.weight": (4, 4), "attn.out_proj.bias": (4,),
              "cross.q_proj_weight": (4, 4), "cross.k_proj_weight": (4, 3),
              "cross.v_proj_weight": (4, 5), "cross.in_proj_bias": (12,),
              "cross.out_proj.weight": (4, 4), "cross.out_proj.bias": (4,)}
    return {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}


def check_mapping(params: dict, sd: dict) -> None:
    """`params` (pyasg names) hold exactly the values of `sd` (PyTorch names)."""
    flat = leaves(params)
    for name in ("fc.weight", "fc.bias", "conv.weight", "conv.bias", "ln.weight", "ln.bias",
                 "emb.weight"):
        np.testing.assert_array_equal(flat[name], sd[name])
    for i, x in enumerate("qkv"):
        np.testing.assert_array_equal(flat[f"attn.w_{x}.weight"],
                                      sd["attn.in_proj_weight"][4 * i:4 * i + 4])
        np.testing.assert_array_equal(flat[f"attn.w_{x}.bias"],
                                      sd["attn.in_proj_bias"][4 * i:4 * i + 4])
        np.testing.assert_array_equal(flat[f"cross.w_{x}.weight"], sd[f"cross.{x}_proj_weight"])
        np.testing.assert_array_equal(flat[f"cross.w_{x}.bias"],
                                      sd["cross.in_proj_bias"][4 * i:4 * i + 4])
    for mha in ("attn", "cross"):
        for kind in ("weight", "bias"):
            np.testing.assert_array_equal(flat[f"{mha}.w_o.{kind}"], sd[f"{mha}.out_proj.{kind}"])


def test_a_file_with_torch_names_maps_onto_pyasg_layers(tmp_path):
    sd = torch_style_state_dict(np.random.default_rng(0))
    safetensors.numpy.save_file(sd, tmp_path / "torch.safetensors")
    layers, template = pyasg_model()
    params = io.from_torch_state_dict(io.load_flat(tmp_path / "torch.safetensors"),
                                      expected=template)
    assert flatten(params)[1] == flatten(template)[1]
    check_mapping(params, sd)
    # and back: to_torch_state_dict gives the original names and values
    back = io.to_torch_state_dict(params)
    assert sorted(back) == sorted(sd)
    for k in sd:
        np.testing.assert_array_equal(back[k], sd[k])


def test_torch_names_that_pyasg_cannot_hold_are_refused():
    with pytest.raises(CheckpointError, match="3 \\* embed_dim"):
        io.from_torch_state_dict({"a.in_proj_weight": np.zeros((4, 4))})
    with pytest.raises(CheckpointError, match="add_bias_kv"):
        io.from_torch_state_dict({"a.in_proj_weight": np.zeros((6, 2)),
                                  "a.bias_k": np.zeros((1, 1, 2))})
    _, template = pyasg_model()
    with pytest.raises(CheckpointError, match="missing: fc.weight"):
        io.from_torch_state_dict({"fc.weights": np.zeros((4, 3))}, expected=template)


def test_torch_safetensors_files_load_into_pyasg_layers(tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = torch.nn.ModuleDict({
        "fc": torch.nn.Linear(3, 4), "conv": torch.nn.Conv2d(4, 6, 3, groups=2),
        "ln": torch.nn.LayerNorm(4), "emb": torch.nn.Embedding(5, 4),
        "attn": torch.nn.MultiheadAttention(4, 2, batch_first=True),
        "cross": torch.nn.MultiheadAttention(4, 2, kdim=3, vdim=5, batch_first=True)})
    with torch.no_grad():  # non-zero biases and gains, so a mix-up would show
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    save_file(model.state_dict(), tmp_path / "torch.safetensors")

    layers, template = pyasg_model()
    params = io.from_torch_state_dict(io.load(tmp_path / "torch.safetensors"),
                                      expected=template)
    check_mapping(params, {k: v.numpy() for k, v in model.state_dict().items()})

    rng = np.random.default_rng(1)
    x3, img = rng.standard_normal((2, 3)), rng.standard_normal((1, 4, 5, 5))
    seq, kv3, kv5 = (rng.standard_normal(s) for s in ((2, 5, 4), (2, 6, 3), (2, 6, 5)))
    ids = np.array([[0, 4, 2]])
    cases = [("fc", (x3,)), ("conv", (img,)), ("ln", (seq,)), ("attn", (seq, seq, seq)),
             ("cross", (seq, kv3, kv5))]
    with torch.no_grad():
        for name, args in cases:
            args = [a.astype(np.float32) for a in args]
            ours = layers[name](params[name], *args)
            theirs = model[name](*(torch.from_numpy(a) for a in args))
            theirs = theirs[0] if isinstance(theirs, tuple) else theirs
            np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-5, atol=1e-5, err_msg=name)
        np.testing.assert_array_equal(layers["emb"](params["emb"], ids),
                                      model["emb"](torch.from_numpy(ids)).numpy())

    # pyasg's own file loads into torch through to_torch_state_dict
    io.save(tmp_path / "ours.safetensors", params)
    sd = {k: torch.from_numpy(v)
          for k, v in io.to_torch_state_dict(io.load(tmp_path / "ours.safetensors")).items()}
    model.load_state_dict(sd)  # strict: every name and shape must fit


# --------------------------------------------------------------------------- graph files


def transformer_step_graph() -> tuple[pyasg.Graph, list[np.ndarray]]:
    """One SGD training step of TransformerBlock(16, 2) as a graph, and its inputs."""
    block = pyasg.nn.TransformerBlock(16, 2)
    opt = pyasg.optim.SGD(lr=0.1)
    params = block.init(pyasg.random.key(0))
    state = opt.init(params)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 5, 16)).astype(np.float32)
    y = rng.standard_normal((2, 5, 16)).astype(np.float32)

    def step(params, state, x, y):
        def loss_fn(p):
            return pyasg.mean((block(p, x, is_causal=True) - y) ** 2)

        loss, grads = pyasg.value_and_grad(loss_fn)(params)
        params, state = opt.update(grads, state, params)
        return loss, params, state

    args = [params, state, x, y]
    return pyasg.make_graph(step)(*args), [np.asarray(a) for a in flatten(args)[0]]


def test_a_transformer_training_step_runs_identically_from_a_graph_file(tmp_path):
    graph, inputs = transformer_step_graph()
    io.save_graph(tmp_path / "step.json", graph)
    loaded = io.load_graph(tmp_path / "step.json")
    assert loaded == pyasg.infer_shapes(graph)
    assert loaded.input_types == graph.input_types
    assert loaded.output_types == graph.output_types
    ours = pyasg.jit_to_backend(loaded, "numpy")(*inputs)
    theirs = pyasg.jit_to_backend(graph, "numpy")(*inputs)
    assert len(ours) == len(theirs) > 2
    for a, b in zip(ours, theirs):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()
    assert os.listdir(tmp_path) == ["step.json"]


def graph_file(tmp_path: Path) -> Path:
    g = pyasg.make_graph(lambda x: pyasg.exp(x).sum(axis=1))(np.ones((2, 3), np.float32))
    return io.save_graph(tmp_path / "g.json", g)


def test_load_graph_re_specialises_to_new_input_types(tmp_path):
    path = graph_file(tmp_path)
    h = io.load_graph(path, [TensorType((5, 3))])
    assert h.output_types == (TensorType((5,)),)
    with pytest.raises(ShapeError, match="g.json"):
        io.load_graph(path, [TensorType((5, 3)), TensorType((1,))])


@pytest.mark.parametrize("damage", [
    lambda t: t[: len(t) // 2], lambda t: "", lambda t: "[]", lambda t: "\x00\x01",
    lambda t: t.replace('"float32"', '"float16"', 1),
    lambda t: t.replace('"shape": [2, 3]', '"shape": [2, 4]', 1),
    lambda t: t.replace('"Exp"', '"Eval"'),
], ids=["truncated", "empty", "list", "binary", "bad-dtype", "bad-shape", "unknown-op"])
def test_a_bad_graph_file_is_a_graph_format_error_naming_the_path(tmp_path, damage):
    path = graph_file(tmp_path)
    text = path.read_text()
    damaged = damage(text)
    assert damaged != text
    path.write_text(damaged)
    with pytest.raises(GraphFormatError, match="g.json"):
        io.load_graph(path)


def test_graph_file_errors_for_missing_files_and_non_graphs(tmp_path):
    with pytest.raises(GraphFormatError, match="no such file"):
        io.load_graph(tmp_path / "nope.json")
    with pytest.raises(GraphFormatError, match="needs a Graph"):
        io.save_graph(tmp_path / "g.json", {"not": "a graph"})
    graph = io.load_graph(graph_file(tmp_path))
    with pytest.raises(GraphFormatError, match="does not exist"):
        io.save_graph(tmp_path / "no" / "g.json", graph)
    assert os.listdir(tmp_path) == ["g.json"]
