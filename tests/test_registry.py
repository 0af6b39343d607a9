"""Every primitive op in `OPS` is complete: a frozen hashable dataclass with a one-line
docstring, a category, a shape rule, a reference kernel, a numpy kernel, a wgpu kernel
(none for an `inlined` op, which the compiler replaces by its sub-graph), a VJP rule
(or `differentiable = False`), a JVP rule (or an entry in `transforms.jvp.NO_JVP`),
attributes that the JSON format can encode, and an example here (an instance and input
types) that the reference backend runs.

These tests are parametrised over `OPS` itself, so an op added without a kernel, a
VJP rule or a batching rule (`pyasg.transforms.batching.BATCH_RULES`, or a reason in
`NO_BATCH_RULE`) fails here by name. `test_the_checks_catch_an_incomplete_op` shows that they do.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re

import numpy as np
import pytest
from wgpu_util import WGPU

import pyasg
from pyasg.asg import ops
from pyasg.asg.graph import GraphBuilder
from pyasg.asg.ops import OPS, Op
from pyasg.asg.serialize import attr_kinds, decode_attr, encode_attr
from pyasg.asg.types import TensorType
from pyasg.compile.pipeline import lower_graph
from pyasg.compile.registry import get_backend
from pyasg.errors import GraphFormatError, ShapeError
from pyasg.kernels import has_kernel
from pyasg.kernels.numpy import NumpyBackend, evaluate
from pyasg.kernels.reference import KERNELS
from pyasg.transforms.batching import BATCH_RULES, NO_BATCH_RULE
from pyasg.transforms.jvp import JVP_RULES, NO_JVP, zero
from pyasg.transforms.vjp import VJP_RULES

ALL = sorted(OPS)
LEAVES = {"Input", "Constant"}

#: Example values of every attribute kind that serialize.py supports. An attribute of a
#: kind not listed here cannot be saved: add a case to encode_attr/decode_attr first.
def _example_graph() -> object:
    """A one-op sub-graph, the attribute of a Fused node."""
    b = GraphBuilder()
    x = b.add_input("in0", TensorType((2, 3)))
    return b.build([b.add(ops.Exp(), (x,))])


def _custom_call_example() -> Op:
    """A CustomCall node's op: 2·exp(x) with its derivative given as a custom JVP (no
    constant in its sub-graph, so tests may retype it)."""
    @pyasg.custom_jvp
    def twice_exp(x: object) -> object:
        return pyasg.exp(x) + pyasg.exp(x)

    twice_exp.defjvp(lambda p, tangents: (twice_exp(*p), tangents[0] * twice_exp(*p)))
    graph = pyasg.make_graph(twice_exp)(np.ones((2, 3), np.float32))
    return graph[graph.outputs[0]].op
def _loop_body(*types: TensorType, outputs: str = "add,mul") -> object:
    """A sub-graph of a control-flow example: from inputs a, b(, ...) of `types`, the
    outputs named in `outputs` (add: a + b, mul: a * b, less: a < b summed to a scalar)."""
    b = GraphBuilder()
    xs = [b.add_input(f"in{k}", ty) for k, ty in enumerate(types)]
    made = {"add": lambda: b.add(ops.Add(), (xs[-2], xs[-1])),
            "mul": lambda: b.add(ops.Mul(), (xs[-2], xs[-1])),
            "less": lambda: b.add(ops.Less(), (b.add(ops.Sum((0, 1)), (xs[-1],)),
                                               b.add(ops.Constant.of(np.float32(4.0)), ())))}
    return b.build([made[name]() for name in outputs.split(",")])


KIND_EXAMPLES: dict[str, list[object]] = {
    "int": [0, 3, -2, 2**40],
    "bool": [False, True],
    "float": [0.0, -1.5, 1e-300, math.inf, -math.inf],
    "str": ["float32", "params.blocks.0.w", "\u00e9\u4e2d"],
    "bytes": [b"", b"\x00\x01\xfe\xff" * 3],
    "TensorType": [TensorType((), "bool"), TensorType((2, 0, 3), "uint32")],
    "tuple[int, ...]": [(), (1,), (0, -1, 5)],
    "tuple[tuple[int, int, int], ...]": [(), ((1, 2, 0),), ((0, 0, 1), (3, 0, 0))],
    "Graph": [_example_graph()],
}

F32 = "float32"


def t(*shape: int, dtype: str = F32) -> TensorType:
    return TensorType(tuple(shape), dtype)


#: q, k, v, dout, lse, delta of the attention gradient ops.
ATTENTION_GRAD = (t(1, 2, 3, 4), t(1, 2, 5, 4), t(1, 2, 5, 3), t(1, 2, 3, 3), t(1, 2, 3),
                  t(1, 2, 3))

#: For the ops we know: an instance and input types its shape rule accepts.
EXAMPLES: dict[str, tuple[Op, tuple[TensorType, ...]]] = {
    "Input": (ops.Input("x", t(2, 3)), ()),
    "Constant": (ops.Constant.of(np.arange(6, dtype=np.float32).reshape(2, 3)), ()),
    "Cast": (ops.Cast("int32"), (t(2, 3),)),
    "Sum": (ops.Sum((1,), True), (t(2, 3),)),
    "Max": (ops.Max((0,), False), (t(2, 3),)),
    "ArgMax": (ops.ArgMax(1, False), (t(2, 3),)),
    "Reshape": (ops.Reshape((3, -1)), (t(2, 3),)),
    "Transpose": (ops.Transpose((1, 0)), (t(2, 3),)),
    "BroadcastTo": (ops.BroadcastTo((4, 2, 3)), (t(2, 1),)),
    "Slice": (ops.Slice((1, 2), (2, -1), (1, -1)), (t(2, 3),)),
    "Pad": (ops.Pad(((1, 0, 1), (0, 2, 0)), -1.0), (t(2, 3),)),
    "Concatenate": (ops.Concatenate(1), (t(2, 3), t(2, 1))),
    "MatMul": (ops.MatMul(), (t(4, 2, 3), t(3, 5))),
    "Gather": (ops.Gather(1), (t(2, 3), t(4, dtype="int32"))),
    "ScatterAdd": (ops.ScatterAdd(1, 3), (t(2, 4), t(4, dtype="int32"))),
    "RandomBits": (ops.RandomBits((2, 3)), (t(2, dtype="uint32"),)),
    "Where": (ops.Where(), (t(2, 1, dtype="bool"), t(3), t(2, 3))),
    "StopGradient": (ops.StopGradient(), (t(2, 3),)),
    "Conv2d": (ops.Conv2d((1, 1), (1, 1), (1, 1), 1), (t(1, 2, 5, 5), t(3, 2, 3, 3))),
    "Conv2dBackwardInput": (ops.Conv2dBackwardInput((2, 2), (1, 1), (1, 1), 1,
                                                    input_size=(5, 5)),
                            (t(1, 3, 3, 3), t(3, 2, 3, 3))),
    "Conv2dBackwardWeight": (ops.Conv2dBackwardWeight((1, 1), (1, 1), (1, 1), 1,
                                                      kernel_size=(3, 3)),
                             (t(1, 2, 5, 5), t(1, 3, 5, 5))),
    "MaxPool2dIndices": (ops.MaxPool2dIndices((2, 2), (2, 2), (0, 0), (1, 1)),
                         (t(1, 2, 4, 4),)),
    "Fused": (ops.Fused(_example_graph()), (t(2, 3),)),
    "CustomCall": (_custom_call_example(), (t(2, 3),)),
    "Attention": (ops.Attention(0.5, True), (t(1, 2, 3, 4), t(1, 2, 5, 4), t(1, 2, 5, 3),
                                             t(1, 1, 1, 5))),
    "AttentionLSE": (ops.AttentionLSE(0.5, True, "bthd"), (t(1, 3, 2, 4), t(1, 5, 2, 4))),
    "AttentionGradQ": (ops.AttentionGradQ(0.5), ATTENTION_GRAD),
    "AttentionGradK": (ops.AttentionGradK(0.5, True), ATTENTION_GRAD),
    "AttentionGradV": (ops.AttentionGradV(0.5), ATTENTION_GRAD[:2] + ATTENTION_GRAD[3:5]),
    "AttentionGradScores": (ops.AttentionGradScores(0.5), ATTENTION_GRAD + (t(1, 2, 3, 5),)),
    # carry c [2, 3], xs [4, 2, 3]: c + x carried, c * x stacked
    "Scan": (ops.Scan(_loop_body(t(2, 3), t(2, 3)), 4, 0, 1, False, 1), (t(2, 3), t(4, 2, 3))),
    "Cond": (ops.Cond(_loop_body(t(2, 3), t(2, 3), outputs="add"),
                      _loop_body(t(2, 3), t(2, 3), outputs="mul")),
             (t(dtype="bool"), t(2, 3), t(2, 3))),
    # const k, carry c: c + k while sum(c) < 4 (the example values are > 0.5: it ends)
    "WhileLoop": (ops.WhileLoop(_loop_body(t(2, 3), t(2, 3), outputs="less"),
                                _loop_body(t(2, 3), t(2, 3), outputs="add"), 1, 0),
                  (t(2, 3), t(2, 3))),
    "Remat": (ops.Remat(_loop_body(t(2, 3), t(2, 3), outputs="add,mul"), 1), (t(2, 3), t(2, 3))),
}


def example(name: str) -> tuple[Op, tuple[TensorType, ...]] | None:
    """An instance of op `name` and suitable input types, where we know them."""
    if name in EXAMPLES:
        return EXAMPLES[name]
    cls = OPS[name]
    if issubclass(cls, ops.Compare):
        return cls(), (t(2, 1), t(3))
    if issubclass(cls, ops.Binary):
        return cls(), (t(2, 1), t(3))
    if issubclass(cls, ops.Unary):
        return cls(), (t(2, 3),)
    return None


def generic_instance(cls: type[Op]) -> Op:
    """An instance built from one example value per attribute kind."""
    values = {"str": "float32", "tuple[int, ...]": (1, 1), "int": 1}
    kwargs = {}
    for name, kind in attr_kinds(cls).items():
        kwargs[name] = values.get(kind, KIND_EXAMPLES.get(kind, [None])[0])
    return cls(**kwargs)


def instance(name: str) -> Op:
    found = example(name)
    return found[0] if found else generic_instance(OPS[name])


# --------------------------------------------------------------------------- the checks

def registry_problems(cls: type[Op]) -> list[str]:
    """Everything incomplete about op class `cls` (empty: complete)."""
    problems = []
    name = cls.__name__
    if not dataclasses.is_dataclass(cls) or not cls.__dataclass_params__.frozen:
        problems.append("is not a frozen dataclass")
    if cls.__hash__ is None:
        problems.append("is not hashable")
    if cls.infer is Op.infer:
        problems.append("does not implement infer")
    if cls not in KERNELS and name not in LEAVES:
        problems.append("has no reference kernel")
    if not has_kernel(cls, NumpyBackend) and name not in LEAVES and not cls.inlined:
        problems.append("has no numpy kernel")
    if name not in LEAVES and cls.differentiable and cls not in VJP_RULES:
        problems.append("has no VJP rule and does not say differentiable = False")
    if name not in LEAVES and cls not in BATCH_RULES and cls not in NO_BATCH_RULE:
        problems.append("has no batching rule and no reason in NO_BATCH_RULE")
    if name not in LEAVES and cls not in JVP_RULES and cls not in NO_JVP:
        problems.append("has no JVP rule and no NO_JVP entry saying why")
    if not isinstance(cls.category, str) or not re.fullmatch(r"[a-z][a-z_]*", cls.category):
        problems.append(f"has no category string (got {cls.category!r})")
    for field, kind in attr_kinds(cls).items():
        if kind not in KIND_EXAMPLES:
            problems.append(f"attribute {field}: {kind} cannot be serialised")
    return problems


# --------------------------------------------------------------------------- per op


def test_the_registry_holds_concrete_ops_by_class_name() -> None:
    assert len(OPS) >= 40
    for name, cls in OPS.items():
        assert cls.__name__ == name
        assert issubclass(cls, Op) and not cls.abstract
    for base in (Op, ops.Unary, ops.Binary, ops.Compare):
        assert base.__name__ not in OPS


@pytest.mark.parametrize("name", ALL)
def test_op_is_a_frozen_hashable_dataclass(name: str) -> None:
    cls = OPS[name]
    assert dataclasses.is_dataclass(cls)
    assert cls.__dataclass_params__.frozen, f"{name} must be @dataclass(frozen=True)"
    op = instance(name)
    with pytest.raises(dataclasses.FrozenInstanceError):
        op.category = "changed"  # type: ignore[misc]
    fields = dataclasses.fields(cls)
    if fields:
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(op, fields[0].name, getattr(op, fields[0].name))
    twin = cls(**op.attrs())
    assert twin == op and hash(twin) == hash(op)
    assert {op: 1}[twin] == 1


@pytest.mark.parametrize("name", ALL)
def test_op_has_a_one_line_docstring(name: str) -> None:
    cls = OPS[name]
    doc = cls.__dict__.get("__doc__")
    assert doc and doc.strip(), f"{name} needs a docstring"
    assert not doc.startswith(f"{name}("), f"{name} has only dataclass's generated docstring"
    summary = doc.strip().split("\n\n")[0]
    assert "\n" not in summary, (
        f"{name}: the first paragraph of the docstring must be one line (the viewer shows it), "
        f"got {summary!r}")


@pytest.mark.parametrize("name", ALL)
def test_op_has_a_category(name: str) -> None:
    category = OPS[name].category
    assert isinstance(category, str) and re.fullmatch(r"[a-z][a-z_]*", category), category


@pytest.mark.parametrize("name", ALL)
def test_op_implements_infer(name: str) -> None:
    cls = OPS[name]
    assert cls.infer is not Op.infer, f"{name} does not override Op.infer"
    found = example(name)
    if found is not None:
        op, types = found
        out = op.infer(*types)
        assert isinstance(out, TensorType)
        return
    # an op this test does not know: its shape rule answers, or refuses with ShapeError
    op = generic_instance(cls)
    n = cls.arity if cls.arity >= 0 else 2
    for types in ((t(2, 3),) * n, (t(1, 2, 4, 4),) * n):
        try:
            out = op.infer(*types)
        except ShapeError:
            continue
        assert isinstance(out, TensorType)


def example_arrays(types: tuple[TensorType, ...]) -> list[np.ndarray]:
    """Values of these types that every example accepts (indices 0 or 1, floats ~1)."""
    rng = np.random.default_rng(0)
    arrays = []
    for ty in types:
        if ty.dtype == "bool":
            arrays.append(rng.random(ty.shape) < 0.5)
        elif ty.dtype in ("int32", "uint32", "int64"):
            arrays.append(rng.integers(0, 2, ty.shape).astype(ty.dtype))
        else:
            arrays.append(rng.uniform(0.5, 1.5, ty.shape).astype(ty.dtype))
    return arrays


@pytest.mark.parametrize("name", sorted(n for n in ALL if example(n) and n not in LEAVES
                                         and not OPS[n].inlined))
def test_numpy_kernel_agrees_with_the_shape_rule(name: str) -> None:
    op, types = example(name)  # type: ignore[misc]
    want = op.infer(*types)
    got = evaluate(op, *example_arrays(types))
    assert got.shape == want.shape and got.dtype == np.dtype(want.dtype), (got, want)


@pytest.mark.parametrize("name", sorted(set(ALL) - LEAVES))
def test_the_reference_backend_runs_the_example_graph(name: str) -> None:
    """The op's example as a one-node graph: the reference backend runs it, in the shape
    rule's type, and numpy's value is the same (tests/test_parity_numpy.py is exact)."""
    found = example(name)
    assert found is not None, f"{name} has no example in test_registry.EXAMPLES"
    op, types = found
    b = GraphBuilder()
    graph = b.build([b.add(op, [b.add_input(f"x{k}", ty) for k, ty in enumerate(types)])])
    arrays = example_arrays(types)
    (got,) = pyasg.jit_to_backend(graph, "reference")(*arrays)
    assert TensorType.of(got) == graph.output_types[0]
    np.testing.assert_allclose(pyasg.jit_to_backend(graph, "numpy")(*arrays)[0], got,
                               rtol=1e-6)


@pytest.mark.parametrize("name", ALL)
def test_op_has_a_reference_kernel(name: str) -> None:
    if name in LEAVES:
        pytest.skip("Input and Constant are leaves: the executable binds them directly")
    assert OPS[name] in KERNELS, f"{name} has no kernel in pyasg.kernels.reference.KERNELS"


@pytest.mark.parametrize("name", ALL)
def test_op_has_a_numpy_kernel(name: str) -> None:
    if name in LEAVES:
        pytest.skip("Input and Constant are leaves: the executable binds them directly")
    if OPS[name].inlined:
        return  # test_an_inlined_op_never_reaches_a_backend
    assert has_kernel(OPS[name], NumpyBackend), f"{name} has no numpy kernel"


@pytest.mark.parametrize("name", sorted(n for n in ALL if OPS[n].inlined))
def test_an_inlined_op_never_reaches_a_backend(name: str) -> None:
    """An `inlined` op has no kernels: lowering replaces it by its sub-graph (the value
    is still the reference kernel's: test_the_reference_backend_runs_the_example_graph)."""
    op, types = example(name)  # type: ignore[misc]
    b = GraphBuilder()
    graph = b.build([b.add(op, [b.add_input(f"x{k}", ty) for k, ty in enumerate(types)])])
    for backend in ("numpy", "reference"):
        lowered = lower_graph(graph, get_backend(backend), fuse=False)
        assert not any(type(lowered[i].op) is OPS[name] for i in lowered.live_ids)
    assert not has_kernel(OPS[name], NumpyBackend)


@pytest.mark.parametrize("name", ALL)
def test_op_has_a_jvp_rule_or_says_why_not(name: str) -> None:
    cls = OPS[name]
    if name in LEAVES:
        return  # leaves: a tangent starts (inputs) or is zero (constants) there
    assert (cls in JVP_RULES) != (cls in NO_JVP), (
        f"{name} needs exactly one of: a JVP rule in pyasg.transforms.jvp.JVP_RULES, or an "
        f"entry in NO_JVP saying why it has none")
    if cls in NO_JVP:
        assert isinstance(NO_JVP[cls], str) and NO_JVP[cls]
    if not cls.differentiable and cls in JVP_RULES:
        # a non-differentiable op's forward rule is the documented zero rule
        assert JVP_RULES[cls] is zero, name


@WGPU
@pytest.mark.parametrize("name", sorted(set(ALL) - LEAVES))
def test_op_has_a_wgpu_kernel(name: str) -> None:
    """Registered kernels need the `wgpu` package, not an adapter (CI has both)."""
    wgpu_backend = pytest.importorskip("pyasg.kernels.wgpu")
    if OPS[name].inlined:
        return  # test_an_inlined_op_never_reaches_a_backend
    assert has_kernel(OPS[name], wgpu_backend.WgpuBackend), f"{name} has no wgpu kernel"


@pytest.mark.parametrize("name", ALL)
def test_op_has_a_vjp_rule_or_says_it_is_not_differentiable(name: str) -> None:
    cls = OPS[name]
    if name in LEAVES:
        return  # leaves: the gradient starts or stops there
    assert cls in VJP_RULES or cls.differentiable is False, (
        f"{name} has no VJP rule in pyasg.transforms.vjp and does not set differentiable = False")
    if cls in VJP_RULES:
        assert callable(VJP_RULES[cls])


@pytest.mark.parametrize("name", ALL)
def test_op_has_a_batching_rule_or_says_why_not(name: str) -> None:
    cls = OPS[name]
    if name in LEAVES:
        return  # leaves: batch_graph gives inputs their batch axes itself
    assert cls in BATCH_RULES or cls in NO_BATCH_RULE, (
        f"{name} has no batching rule in pyasg.transforms.batching.BATCH_RULES and no "
        f"reason in NO_BATCH_RULE")
    if cls in BATCH_RULES:
        assert callable(BATCH_RULES[cls])
    else:
        assert isinstance(NO_BATCH_RULE[cls], str) and NO_BATCH_RULE[cls].strip()


@pytest.mark.parametrize("name", ALL)
def test_every_attribute_kind_round_trips_through_json(name: str) -> None:
    for field, kind in attr_kinds(OPS[name]).items():
        assert kind in KIND_EXAMPLES, (
            f"{name}.{field} has type {kind!r}, which serialize.py does not encode")
        for value in KIND_EXAMPLES[kind]:
            text = json.dumps(encode_attr(kind, value), allow_nan=False)
            back = decode_attr(kind, json.loads(text), f"{name}.{field}")
            assert back == value and type(back) is type(value), (kind, value, back)
    op = instance(name)
    kinds = attr_kinds(OPS[name])
    encoded = {k: encode_attr(kinds[k], v) for k, v in op.attrs().items()}
    decoded = {k: decode_attr(kinds[k], v, k) for k, v in json.loads(json.dumps(encoded)).items()}
    assert OPS[name](**decoded) == op


def test_every_supported_kind_is_really_supported() -> None:
    for kind, values in KIND_EXAMPLES.items():
        for value in values:
            encoded = json.loads(json.dumps(encode_attr(kind, value), allow_nan=False))
            assert decode_attr(kind, encoded, "x") == value
    with pytest.raises(GraphFormatError):
        decode_attr("list[object]", [], "x")


@pytest.mark.parametrize("name", ALL)
def test_op_is_complete(name: str) -> None:
    assert registry_problems(OPS[name]) == []


# --------------------------------------------------------------------------- the checks work


def test_the_checks_catch_an_incomplete_op() -> None:
    before = dict(OPS)
    try:
        @dataclasses.dataclass(frozen=True)
        class Frobnicate(Op):
            """A new op someone forgot to finish."""

            amount: int

            def infer(self, x: TensorType) -> TensorType:
                return x

        @dataclasses.dataclass(frozen=True)
        class Quux(Op):
            """A new op with an attribute JSON cannot hold."""

            table: dict
            category = "Not A Category"  # type: ignore[assignment]

        assert OPS["Frobnicate"] is Frobnicate  # registering happened by subclassing
        problems = registry_problems(Frobnicate)
        assert "has no reference kernel" in problems
        assert "has no numpy kernel" in problems
        assert "has no VJP rule and does not say differentiable = False" in problems
        assert "has no batching rule and no reason in NO_BATCH_RULE" in problems
        NO_BATCH_RULE[Frobnicate] = "a test op"
        assert "has no batching rule and no reason in NO_BATCH_RULE" not in \
            registry_problems(Frobnicate)
        del NO_BATCH_RULE[Frobnicate]
        assert "has no JVP rule and no NO_JVP entry saying why" in problems
        quux = registry_problems(Quux)
        assert "does not implement infer" in quux
        assert any("cannot be serialised" in p for p in quux)
        assert any("category" in p for p in quux)
        Frobnicate.differentiable = False  # type: ignore[misc]
        assert "has no VJP rule and does not say differentiable = False" not in \
            registry_problems(Frobnicate)
    finally:
        OPS.clear()
        OPS.update(before)
    assert "Frobnicate" not in OPS
