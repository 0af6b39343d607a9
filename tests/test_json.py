"""Graphs to and from JSON: round trips give equal graphs; every defect is a GraphFormatError.

`pytest.raises(GraphFormatError)` is exact on purpose: any other exception escaping
from `graph_from_json` (KeyError, OverflowError, RecursionError, …) fails the test.
"""

from __future__ import annotations

import base64
import copy
import json
import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import random_cases

import pyasg
from pyasg.asg import ops
from pyasg.asg.graph import Graph, GraphBuilder
from pyasg.asg.serialize import graph_from_json, graph_to_json
from pyasg.asg.types import TensorType
from pyasg.errors import GraphFormatError

# --------------------------------------------------------------------------- helpers


def base_fn(x):  # noqa: ANN001, ANN201
    y = x.reshape(3, 2).sum(axis=0, keepdims=True)
    return pyasg.concatenate([y, y * 2.0], axis=1)


def base_graph() -> Graph:
    return pyasg.make_graph(base_fn)(np.arange(6.0).reshape(2, 3))


def base_dict() -> dict:
    return json.loads(graph_to_json(base_graph()))


def node_of(data: dict, op: str) -> dict:
    """The (first) serialised node with this op name."""
    return next(n for n in data["nodes"] if n["op"] == op)


def load_error(text: str | bytes) -> str:
    """The message of the GraphFormatError that loading `text` must raise."""
    with pytest.raises(GraphFormatError) as info:
        graph_from_json(text)
    message = str(info.value)
    assert message.strip(), "a GraphFormatError must say what is wrong"
    return message


def dict_error(data: object) -> str:
    return load_error(json.dumps(data))


def run(graph: Graph, arrays: list[np.ndarray]) -> tuple[np.ndarray, ...]:
    return pyasg.jit_to_backend(graph, "numpy")(*arrays)


def assert_same_graph(loaded: Graph, graph: Graph) -> None:
    assert loaded == graph
    assert hash(loaded) == hash(graph)
    assert graph_to_json(loaded) == graph_to_json(graph)
    assert list(loaded.inputs) == list(graph.inputs)
    assert list(loaded.outputs) == list(graph.outputs)
    for i in graph.ids:
        assert loaded.nodes[i] == graph.nodes[i]


# --------------------------------------------------------------------------- round trips


@settings(deadline=None)
@given(random_cases())
def test_random_graphs_round_trip_to_equal_graphs_that_compute_the_same(case) -> None:  # noqa: ANN001
    graph = case.graph
    text = graph_to_json(graph)
    loaded = graph_from_json(text)
    assert_same_graph(loaded, graph)
    # the module-level functions are the same format
    assert pyasg.graph_from_json(pyasg.graph_to_json(graph)) == graph
    assert graph_from_json(graph_to_json(graph, indent=2)) == graph
    assert graph_from_json(text.encode("utf-8")) == graph
    got, want = run(loaded, case.arrays), run(graph, case.arrays)
    for a, b, r in zip(got, want, case.reference()):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(a, r, rtol=1e-9, atol=1e-9)


def test_json_text_is_stable_and_standard() -> None:
    g = base_graph()
    text = graph_to_json(g)
    assert text == graph_to_json(base_graph())  # the same graph gives the same text
    data = json.loads(text)  # plain JSON: no NaN/Infinity literals
    assert data["format"] == "pyasg.graph" and data["version"] == 1
    assert [n["id"] for n in data["nodes"]] == sorted(n["id"] for n in data["nodes"])


CONSTANTS = [
    np.array([[1.5, -2.25], [0.0, 3.0]], np.float64),
    np.array([1e-300, -1e300, np.pi], np.float64),
    np.array(-7, np.int32),
    np.array([2**40, -(2**40)], np.int64),
    np.array([[True, False, True]]),
    np.array([0, 1, 2**32 - 1], np.uint32),
    np.array([0.5, -0.0], np.float32),
]


@pytest.mark.parametrize("value", CONSTANTS, ids=lambda v: f"{v.dtype}{list(v.shape)}")
def test_constant_of_every_dtype_round_trips_bit_exactly(value: np.ndarray) -> None:
    b = GraphBuilder()
    c = b.add(ops.Constant.of(value))
    g = b.build([c])
    loaded = graph_from_json(graph_to_json(g))
    assert_same_graph(loaded, g)
    (out,) = run(loaded, [])
    assert out.dtype == value.dtype and out.shape == value.shape
    assert out.tobytes() == value.tobytes()


def test_graph_with_constants_of_every_dtype_and_dotted_input_names_round_trips() -> None:
    b = GraphBuilder()
    w = b.add_input("params.blocks.0.attn.w_q", TensorType((2, 3), "float64"))
    bits = b.add_input("rng.key", TensorType((2,), "uint32"))
    ids = b.add_input("batch.ids", TensorType((4,), "int32"))
    mask = b.add_input("batch.mask", TensorType((4,), "bool"))
    k = b.add(ops.Constant.of(np.array([7, 2**32 - 1], np.uint32)))
    r = b.add(ops.RandomBits((3,)), (b.add(ops.Add(), (bits, k)),))
    i = b.add(ops.Add(), (ids, b.add(ops.Constant.of(np.array(1, np.int32)))))
    m = b.add(ops.Equal(), (mask, b.add(ops.Constant.of(np.array(True)))))
    y = b.add(ops.Mul(), (w, b.add(ops.Constant.of(np.array([[0.5], [2.0]])))))
    g = b.build([y, r, i, m])
    loaded = graph_from_json(graph_to_json(g))
    assert_same_graph(loaded, g)
    assert loaded.input_names == ("params.blocks.0.attn.w_q", "rng.key", "batch.ids",
                                  "batch.mask")
    args = [np.arange(6.0).reshape(2, 3), np.array([1, 2], np.uint32),
            np.arange(4, dtype=np.int32), np.array([True, False, True, True])]
    got = run(loaded, args)
    np.testing.assert_array_equal(got[0], args[0] * np.array([[0.5], [2.0]]))
    np.testing.assert_array_equal(got[2], args[2] + 1)
    np.testing.assert_array_equal(got[3], args[3])
    for a, b_ in zip(got, run(g, args)):
        np.testing.assert_array_equal(a, b_)


@pytest.mark.parametrize("value", [-math.inf, math.inf, 1e308, -0.0])
def test_pad_with_a_non_finite_value_round_trips(value: float) -> None:
    b = GraphBuilder()
    x = b.add_input("x", TensorType((2, 2), "float64"))
    p = b.add(ops.Pad(((1, 0, 0), (0, 2, 1)), value), (x,))
    g = b.build([p])
    text = graph_to_json(g)
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON literal {c}"))
    loaded = graph_from_json(text)
    assert_same_graph(loaded, g)
    (out,) = run(loaded, [np.ones((2, 2))])
    expected = np.full((3, 5), value)
    expected[1:, 0:3:2] = 1.0
    np.testing.assert_array_equal(out, expected)


def test_pad_with_nan_round_trips_to_an_equal_graph() -> None:
    b = GraphBuilder()
    x = b.add_input("x", TensorType((2,), "float64"))
    g = b.build([b.add(ops.Pad(((1, 1, 0),), math.nan), (x,))])
    assert graph_from_json(graph_to_json(g)) == g
    assert ops.Pad(((1, 1, 0),), float("nan")) == ops.Pad(((1, 1, 0),), -math.nan)
    assert hash(ops.Pad(((1, 1, 0),), float("nan"))) == hash(ops.Pad(((1, 1, 0),), math.nan))


def test_names_and_sources_survive() -> None:
    b = GraphBuilder()
    x = b.add_input("x.y", TensorType((3,), "float64"), source="model.py:3")
    e = b.add(ops.Exp(), (x,), name="activation \u00e9\u4e2d", source="model.py:4")
    g = b.build([e])
    loaded = graph_from_json(graph_to_json(g))
    assert loaded.nodes[e].name == "activation \u00e9\u4e2d"
    assert loaded.nodes[e].source == "model.py:4"
    assert loaded.nodes[x].source == "model.py:3"
    assert loaded == g


def test_unused_inputs_and_repeated_outputs_round_trip() -> None:
    b = GraphBuilder()
    x = b.add_input("x", TensorType((3,), "float64"))
    b.add_input("unused", TensorType((1,), "float32"))
    t = b.add(ops.Tanh(), (x,))
    b.add(ops.Exp(), (x,))  # dead node
    g = b.build([t, x, t])
    loaded = graph_from_json(graph_to_json(g))
    assert_same_graph(loaded, g)
    assert len(loaded) == 4


# --------------------------------------------------------------------------- defects


@settings(deadline=None)
@given(st.data())
def test_truncated_text_is_a_format_error_at_every_cut(data: st.DataObject) -> None:
    text = graph_to_json(base_graph(), indent=data.draw(st.sampled_from([None, 1])))
    cut = data.draw(st.integers(0, len(text) - 1), label="cut")
    message = load_error(text[:cut])
    assert "JSON" in message
    message = load_error(text[:cut].encode("utf-8"))


def test_truncation_at_every_position_of_a_small_graph() -> None:
    b = GraphBuilder()
    x = b.add_input("x", TensorType((2,), "float64"))
    text = graph_to_json(b.build([b.add(ops.Neg(), (x,))]))
    for cut in range(len(text)):
        with pytest.raises(GraphFormatError):
            graph_from_json(text[:cut])


@pytest.mark.parametrize("text", [
    "", " ", "{", "}", "not json", "{'format': 'pyasg.graph'}", '{"format": "pyasg.graph",}',
    "[1, 2", "\x00", '{"a": 1} trailing',
])
def test_invalid_json_is_a_format_error(text: str) -> None:
    message = load_error(text)
    assert "JSON" in message


def test_invalid_bytes_and_non_text_are_format_errors() -> None:
    assert "JSON" in load_error(b"\xff\xfe\xfa garbage")
    assert "JSON" in load_error(b"\x80")
    with pytest.raises(GraphFormatError):
        graph_from_json(None)  # type: ignore[arg-type]


@pytest.mark.parametrize("text", [
    "[" * 100_000,
    "{\"a\": " * 100_000,
    "[" * 100_000 + "]" * 100_000,
])
def test_deeply_nested_json_is_a_format_error(text: str) -> None:
    load_error(text)


def test_deeply_nested_value_inside_a_valid_file_is_a_format_error() -> None:
    data = base_dict()
    text = json.dumps(data).replace('"attrs": {}', '"attrs": ' + "[" * 50_000 + "]" * 50_000)
    load_error(text)


@pytest.mark.parametrize("depth", [50, 500])
def test_nested_lists_that_parse_but_are_not_attributes_are_a_format_error(depth: int) -> None:
    nested = "[" * depth + "3" + "]" * depth
    text = json.dumps(base_dict()).replace('"axes": [0]', f'"axes": {nested}')
    assert "attrs.axes" in load_error(text)
    text = json.dumps(base_dict()).replace('"attrs": {}', f'"attrs": {nested}')
    assert "attributes" in load_error(text)


@pytest.mark.parametrize("top", ["[]", "null", "42", '"pyasg.graph"', "true"])
def test_top_level_that_is_not_an_object_is_a_format_error(top: str) -> None:
    assert "top level" in load_error(top)


@pytest.mark.parametrize("field,value", [
    ("format", "pyasg.model"), ("format", None), ("format", 1),
    ("version", 2), ("version", 0), ("version", "1"), ("version", None), ("version", [1]),
    ("version", True), ("version", 1.0),
])
def test_wrong_format_or_version_is_a_format_error(field: str, value: object) -> None:
    data = base_dict()
    data[field] = value
    message = dict_error(data)
    assert "format" in message and "version" in message


@pytest.mark.parametrize("name", ["os.system", "__import__", "eval", "Op", "Unary", "Binary",
                                  "Compare", "", "input", "exp", "builtins.exec", "Exp "])
def test_unknown_op_name_is_a_format_error_naming_it(name: str) -> None:
    data = base_dict()
    node_of(data, "Reshape")["op"] = name
    message = dict_error(data)
    assert "unknown op" in message and repr(name)[:40] in message


@pytest.mark.parametrize("name", [None, 3, ["Exp"], {"op": "Exp"}])
def test_op_name_that_is_not_a_string_is_a_format_error(name: object) -> None:
    data = base_dict()
    node_of(data, "Reshape")["op"] = name
    assert "unknown op" in dict_error(data)


@pytest.mark.parametrize("key", ["format", "version", "inputs", "outputs", "nodes"])
def test_missing_top_level_key_is_a_format_error(key: str) -> None:
    data = base_dict()
    del data[key]
    message = dict_error(data)
    assert "format, version, inputs, outputs, nodes" in message


def test_extra_top_level_key_is_a_format_error() -> None:
    data = base_dict()
    data["comment"] = "hello"
    assert "exactly" in dict_error(data)


@pytest.mark.parametrize("key", ["id", "op", "attrs", "inputs", "type", "name", "source"])
def test_missing_node_key_is_a_format_error(key: str) -> None:
    data = base_dict()
    del node_of(data, "Sum")[key]
    message = dict_error(data)
    assert "nodes[2]" in message and "id, op, attrs, inputs, type, name, source" in message


def test_extra_node_key_is_a_format_error() -> None:
    data = base_dict()
    node_of(data, "Sum")["pickle"] = "cos\nsystem\n"
    assert "nodes[2]" in dict_error(data)


def test_node_that_is_not_an_object_is_a_format_error() -> None:
    data = base_dict()
    data["nodes"][1] = ["Reshape"]
    assert "nodes[1]" in dict_error(data)
    data["nodes"] = {"0": data["nodes"][0]}
    assert "nodes must be a list" in dict_error(data)


@pytest.mark.parametrize("op,attrs,needle", [
    ("Sum", {"axes": [0]}, "keepdims"),                                    # missing
    ("Sum", {"axes": [0], "keepdims": True, "dtype": "f8"}, "keepdims"),   # extra
    ("Mul", {"scale": 2}, "attributes []"),                                # extra on no-attr op
    ("Reshape", {}, "shape"),                                              # missing
])
def test_missing_or_extra_attributes_are_format_errors(op: str, attrs: dict, needle: str) -> None:
    data = base_dict()
    node_of(data, op)["attrs"] = attrs
    message = dict_error(data)
    assert "needs exactly the attributes" in message and needle in message


@pytest.mark.parametrize("op,attr,value,needle", [
    ("Sum", "axes", ["0"], "integer"),            # string where int expected
    ("Sum", "axes", [True], "integer"),           # bool where int expected
    ("Sum", "axes", [0.0], "integer"),            # float where int expected
    ("Sum", "axes", 0, "list"),                   # int where a list is expected
    ("Sum", "keepdims", 1, "true or false"),      # int where bool expected
    ("Sum", "keepdims", "true", "true or false"),
    ("Concatenate", "axis", "1", "integer"),
    ("Concatenate", "axis", True, "integer"),
    ("Concatenate", "axis", None, "integer"),
    ("Reshape", "shape", "3,2", "list"),
    ("Reshape", "shape", [3, "2"], "integer"),
    ("Reshape", "shape", [[3, 2]], "integer"),
    ("Constant", "data", 123, "base64"),
    ("Constant", "shape", [True], "integer"),
    ("Constant", "dtype", 64, "string"),
    ("Input", "path", 5, "string"),
    ("Input", "type", [[2, 3], "float64"], "shape"),
    ("Input", "type", {"shape": [2, 3]}, "shape"),
    ("Input", "type", {"shape": [2, 3], "dtype": 64}, "dtype"),
    ("Input", "type", {"shape": [2, -3], "dtype": "float64"}, "non-negative"),
    ("Input", "type", {"shape": [2, 3], "dtype": "float128"}, "float128"),
])
def test_wrong_attribute_types_are_format_errors_naming_the_attribute(
        op: str, attr: str, value: object, needle: str) -> None:
    data = base_dict()
    node = node_of(data, op)
    node["attrs"][attr] = value
    message = dict_error(data)
    k = data["nodes"].index(node)
    assert f"nodes[{k}]" in message and attr in message and needle in message


@pytest.mark.parametrize("value", [True, "zero", None, [0.0], "Infinity", "1e9"])
def test_wrong_float_attribute_is_a_format_error(value: object) -> None:
    b = GraphBuilder()
    x = b.add_input("x", TensorType((2,), "float64"))
    data = json.loads(graph_to_json(b.build([b.add(ops.Pad(((1, 1, 0),), 0.0), (x,))])))
    node_of(data, "Pad")["attrs"]["value"] = value
    message = dict_error(data)
    assert "attrs.value" in message and "number" in message


def test_huge_integer_for_a_float_attribute_is_a_format_error() -> None:
    b = GraphBuilder()
    x = b.add_input("x", TensorType((2,), "float64"))
    text = graph_to_json(b.build([b.add(ops.Pad(((1, 1, 0),), 0.0), (x,))]))
    text = text.replace('"value": 0.0', '"value": 1' + "0" * 400)
    assert "attrs.value" in load_error(text)


@pytest.mark.parametrize("widths", [[[1, 1]], [1, 1, 0], [[1, 1, 0, 0]], [["1", 1, 0]]])
def test_wrong_pad_widths_are_format_errors(widths: object) -> None:
    b = GraphBuilder()
    x = b.add_input("x", TensorType((2,), "float64"))
    data = json.loads(graph_to_json(b.build([b.add(ops.Pad(((1, 1, 0),), 0.0), (x,))])))
    node_of(data, "Pad")["attrs"]["widths"] = widths
    assert "attrs.widths" in dict_error(data)


def test_node_input_referring_to_a_later_node_is_a_format_error() -> None:
    data = base_dict()
    sum_node, mul_node = node_of(data, "Sum"), node_of(data, "Mul")
    sum_node["inputs"] = [mul_node["id"]]  # forward reference: a cycle sum -> mul -> sum
    message = dict_error(data)
    assert f"input {mul_node['id']} does not name an earlier node" in message


def test_node_reading_itself_is_a_format_error() -> None:
    data = base_dict()
    node = node_of(data, "Reshape")
    node["inputs"] = [node["id"]]
    assert "does not name an earlier node" in dict_error(data)


@pytest.mark.parametrize("ref", [99, -1, True, "0", 1.0])
def test_node_input_that_names_no_node_is_a_format_error(ref: object) -> None:
    data = base_dict()
    node_of(data, "Reshape")["inputs"] = [ref]
    message = dict_error(data)
    assert "nodes[1]" in message and ("inputs" in message or "earlier node" in message)


def test_ids_that_do_not_increase_are_a_format_error() -> None:
    data = base_dict()
    data["nodes"][1]["id"] = data["nodes"][0]["id"]
    assert "ids must increase" in dict_error(data)
    data = base_dict()
    data["nodes"][2], data["nodes"][1] = data["nodes"][1], data["nodes"][2]
    with pytest.raises(GraphFormatError):
        graph_from_json(json.dumps(data))


@pytest.mark.parametrize("change", ["shape", "dtype", "rank"])
def test_stored_type_that_disagrees_with_the_inferred_one_is_a_format_error(change: str) -> None:
    data = base_dict()
    node = node_of(data, "Sum")
    if change == "shape":
        node["type"]["shape"] = [1, 3]
    elif change == "dtype":
        node["type"]["dtype"] = "float32"
    else:
        node["type"]["shape"] = [2]
    message = dict_error(data)
    assert "stored type" in message and "f64[1,2]" in message  # names what the inputs give


def test_input_type_that_disagrees_with_its_attribute_is_a_format_error() -> None:
    data = base_dict()
    data["nodes"][0]["type"]["shape"] = [3, 2]
    assert "stored type" in dict_error(data)


def test_retyped_input_is_checked_downstream() -> None:
    data = base_dict()
    data["nodes"][0]["attrs"]["type"]["shape"] = [5, 3]
    data["nodes"][0]["type"]["shape"] = [5, 3]
    message = dict_error(data)
    assert "reshape" in message and "[5, 3]" in message


@pytest.mark.parametrize("nbytes", [0, 7, 9, 16])
def test_constant_whose_bytes_disagree_with_its_shape_is_a_format_error(nbytes: int) -> None:
    data = base_dict()
    node_of(data, "Constant")["attrs"]["data"] = base64.b64encode(b"\0" * nbytes).decode()
    message = dict_error(data)
    assert "Constant" in message or "constant" in message
    assert f"{nbytes} bytes" in message and "8" in message


def test_constant_with_a_bad_dtype_is_a_format_error() -> None:
    data = base_dict()
    node_of(data, "Constant")["attrs"]["dtype"] = "object"
    assert "unsupported dtype" in dict_error(data)


@pytest.mark.parametrize("text", ["!!!!", "AAA", "AAAAAAAAAAA=x", "\u00e9\u00e9\u00e9\u00e9",
                                  "AAAA AAAA AAA="])
def test_bad_base64_is_a_format_error(text: str) -> None:
    data = base_dict()
    node_of(data, "Constant")["attrs"]["data"] = text
    assert "base64" in dict_error(data)


@pytest.mark.parametrize("outputs", [[99], [-1], [0, 99], ["5"], [True], 5, None])
def test_output_id_that_does_not_exist_is_a_format_error(outputs: object) -> None:
    data = base_dict()
    data["outputs"] = outputs
    message = dict_error(data)
    assert "output" in message


def test_input_node_not_listed_in_inputs_is_a_format_error() -> None:
    data = base_dict()
    data["inputs"] = []
    assert "inputs must list every Input node" in dict_error(data)


@pytest.mark.parametrize("inputs", [[0, 0], [0, 1], [1], [0, 99]])
def test_inputs_that_are_not_exactly_the_input_nodes_are_a_format_error(inputs: list) -> None:
    data = base_dict()
    data["inputs"] = inputs
    assert "inputs" in dict_error(data)


def test_duplicate_node_is_a_format_error() -> None:
    data = base_dict()
    dup = copy.deepcopy(node_of(data, "Reshape"))
    dup["id"] = 100
    data["nodes"].append(dup)
    assert "appears twice" in dict_error(data)


@pytest.mark.parametrize("key,value", [("name", 3), ("source", ["a.py", 1]), ("name", True)])
def test_name_and_source_must_be_strings_or_null(key: str, value: object) -> None:
    data = base_dict()
    node_of(data, "Sum")[key] = value
    assert f"nodes[2].{key}" in dict_error(data)


@pytest.mark.parametrize("where,value,says", [
    ("shape", [10**20, 3], "does not fit in 64 bits"), ("shape", [2**63, 1], "64 bits"),
    ("shape", [2**40, 2**40], "at most 281474976710656 (2**48)"),
    ("shape", [2**20, 2**10], "reshape"),  # within the limits: the reshape cannot take it
])
def test_absurd_input_shapes_are_format_errors_not_crashes(where: str, value: list,
                                                           says: str) -> None:
    data = base_dict()
    data["nodes"][0]["attrs"]["type"][where] = value
    data["nodes"][0]["type"][where] = value
    assert says in dict_error(data)


@pytest.mark.parametrize("starts,stops,steps,says", [
    ([10**20, 0], [0, 3], [-1, 1], "64 bits"), ([0, 0], [10**20, 3], [1, 1], "64 bits"),
    ([0, 0], [2, 3], [10**20, 1], "64 bits"), ([0, 0], [2, 3], [0, 1], "slice"),
    ([2**62, 0], [0, 3], [-1, 1], "slice"), ([0, 0], [2, 3], [2**62, 1], "slice"),
])
def test_absurd_slice_attributes_are_format_errors_not_crashes(
        starts: list, stops: list, steps: list, says: str) -> None:
    g = pyasg.make_graph(lambda x: x[::-1])(np.ones((2, 3)))
    data = json.loads(graph_to_json(g))
    node_of(data, "Slice")["attrs"] = {"starts": starts, "stops": stops, "steps": steps}
    assert says in dict_error(data)


def test_huge_integer_literal_is_a_format_error() -> None:
    text = json.dumps(base_dict()).replace('"axes": [0]', '"axes": [' + "9" * 5000 + "]")
    load_error(text)


# --------------------------------------------------------------------------- fuzzing

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.sampled_from([0, 1, -1, 2])
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(["Input", "Exp", "Constant", "float64", "uint32", "inf", "nan", "AAAA", "",
                       "os.system", "shape"])
    | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["shape", "dtype", "id", "op", "x"]), inner, max_size=3),
    max_leaves=6,
)


def _paths(value: object, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for k, v in enumerate(value):
            out += _paths(v, prefix + (k,))
    return out


@settings(deadline=None)
@given(random_cases(max_steps=4), st.data())
def test_any_single_mutation_loads_or_is_a_format_error(case, data: st.DataObject) -> None:  # noqa: ANN001
    raw = json.loads(graph_to_json(case.graph))
    path = data.draw(st.sampled_from(_paths(raw)[1:]), label="path")
    replacement = data.draw(JSON_VALUES, label="replacement")
    target = raw
    for key in path[:-1]:
        target = target[key]
    if data.draw(st.booleans(), label="delete") and isinstance(target, dict):
        del target[path[-1]]
    else:
        target[path[-1]] = replacement
    text = json.dumps(raw)
    try:
        loaded = graph_from_json(text)
    except GraphFormatError as e:
        assert str(e).startswith("bad graph file: "), str(e)
        return
    # whatever loads is a valid graph: it round-trips and agrees with its own types
    assert graph_from_json(graph_to_json(loaded)) == loaded
    for i in loaded.ids:
        node = loaded.nodes[i]
        assert all(j < i for j in node.inputs)
        assert node.op.infer(*(loaded.nodes[j].type for j in node.inputs)) == node.type


def test_error_messages_are_prefixed_and_short() -> None:
    data = base_dict()
    node_of(data, "Reshape")["op"] = "x" * 10_000
    message = dict_error(data)
    assert message.startswith("bad graph file: ")
    assert len(message) < 300
    assert re.search(r"nodes\[1\]", message)


def test_graph_to_json_of_loaded_graph_equals_original_text() -> None:
    text = graph_to_json(base_graph(), indent=None)
    assert graph_to_json(graph_from_json(text)) == text
