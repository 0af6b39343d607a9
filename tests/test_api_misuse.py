"""API misuse is a clear `PyasgError` at the call that took the bad value, never a raw
Python exception, a RecursionError or a message that echoes a megabyte of input.

Pytrees that contain themselves or nest deeper than `MAX_DEPTH`; `jit`, `grad`,
`make_graph`, `subscribe` and the transforms given the wrong kind of argument; jit
functions called with the wrong number of arguments; Python ints that do not fit the
weak int dtype; and what errors quote. (The fuzz over every public name is
`test_api_fuzz.py`.)
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import pyasg
from pyasg import BackendError, GradError, PyasgError, ShapeError, TraceError
from pyasg import events as events_module
from pyasg.compile import registry
from pyasg.errors import shown
from pyasg.events import EventError
from pyasg.trace.tree import MAX_DEPTH, TreeError
from pyasg.transforms.checks import GraphTypeError
from pyasg.transforms.dtypes import convert_dtypes

F32 = np.float32
MESSAGE_LIMIT = 1_000  # an error quoting user input stays well under this


WRAP = {"list": lambda t: [t], "tuple": lambda t: (t,), "dict": lambda t: {"k": t}}


def nested(depth: int, kind: str = "list", leaf: object = 1.0) -> object:
    """A pytree `depth` containers deep around one leaf."""
    tree = leaf
    for _ in range(depth):
        tree = WRAP[kind](tree)
    return tree


def self_containing(kind: str) -> object:
    if kind == "list":
        tree: list = [1.0]
        tree.append(tree)
        return tree
    tree_d: dict = {"w": 1.0}
    tree_d["again"] = {"inner": tree_d}
    return tree_d


def a_graph() -> pyasg.Graph:
    return pyasg.make_graph(lambda x: (x * 2.0).sum())(np.ones(3, F32))


# --------------------------------------------------------------------------- pytrees

TREE_USES = {
    "flatten": pyasg.flatten,
    "tree_leaves": pyasg.tree_leaves,
    "tree_map": lambda t: pyasg.tree_map(lambda a: a, t),
    "jit argument": lambda t: pyasg.jit(lambda x: 1.0)(t),
    "jit output": lambda t: pyasg.jit(lambda x: t)(np.ones(2, F32)),
    "grad argument": lambda t: pyasg.grad(lambda x: 1.0)(t),
    "make_graph argument": lambda t: pyasg.make_graph(lambda x: 1.0)(t),
}


@pytest.mark.parametrize("use", TREE_USES, ids=str)
@pytest.mark.parametrize("kind", ["list", "dict"])
def test_a_pytree_that_contains_itself_is_a_tree_error_naming_where(use, kind):
    with pytest.raises(TreeError, match="contains itself") as info:
        TREE_USES[use](self_containing(kind))
    assert "again.inner" in str(info.value) or kind == "list"
    shared = [1.0, 2.0]  # twice in one tree, but inside neither of its uses: no cycle
    TREE_USES[use]({"a": shared, "b": [shared]})


@pytest.mark.parametrize("use", TREE_USES, ids=str)
@pytest.mark.parametrize("kind", ["list", "tuple", "dict"])
def test_a_5000_deep_pytree_is_a_tree_error_with_a_short_message(use, kind):
    with pytest.raises(TreeError, match=f"deeper than {MAX_DEPTH}") as info:
        TREE_USES[use](nested(5_000, kind))
    assert len(str(info.value)) < MESSAGE_LIMIT


@pytest.mark.parametrize("kind", ["list", "tuple", "dict"])
def test_the_depth_limit_is_exactly_max_depth(kind):
    leaves, treedef = pyasg.flatten(nested(MAX_DEPTH, kind))
    assert leaves == [1.0] and pyasg.unflatten(treedef, [2.0]) == nested(MAX_DEPTH, kind, 2.0)
    with pytest.raises(TreeError):
        pyasg.flatten(nested(MAX_DEPTH + 1, kind))
    # a jit argument at the limit works ('x' itself is the outermost level)
    double = pyasg.jit(lambda t: pyasg.tree_map(lambda a: a * 2.0, t))
    out = double(nested(MAX_DEPTH - 1, kind, np.ones(2, F32)))
    assert pyasg.tree_leaves(out)[0].tolist() == [2.0, 2.0]
    with pytest.raises(TreeError):
        double(nested(MAX_DEPTH, kind, np.ones(2, F32)))


@pytest.mark.parametrize("call", [
    lambda: pyasg.unflatten("not a treedef", [1]),
    lambda: pyasg.unflatten(pyasg.flatten([1])[1], 5),
    lambda: pyasg.tree_map(5, [1]),
], ids=["treedef", "leaves", "fn"])
def test_tree_functions_given_the_wrong_things_raise_tree_error(call):
    with pytest.raises(TreeError):
        call()


# ----------------------------------------------------------------------- jit's own arguments


@pytest.mark.parametrize("backend", [5, None.__class__, ["numpy"], 1.5])
def test_jit_with_a_backend_that_is_not_one_raises_at_jit(backend):
    with pytest.raises(BackendError, match="backend must be a backend's name"):
        pyasg.jit(lambda x: x, backend=backend)
    with pytest.raises(BackendError):
        pyasg.jit(backend=backend)  # the decorator form: at once, not when decorating


def test_jit_with_an_unknown_backend_name_raises_at_jit_naming_the_choices():
    with pytest.raises(BackendError, match="unknown backend 'nope'.*numpy"):
        pyasg.jit(lambda x: x, backend="nope")


@pytest.mark.parametrize("nums", ["a", 1.5, [0, "a"], (0, None), True, {0: 1}])
def test_static_argnums_that_are_not_ints_raise_trace_error_at_jit(nums):
    for make in (lambda: pyasg.jit(lambda x, n: x, static_argnums=nums),
                 lambda: pyasg.jit(static_argnums=nums),
                 lambda: pyasg.trace(lambda x, n: x, static_argnums=nums),
                 lambda: pyasg.make_graph(lambda x, n: x, static_argnums=nums)):
        with pytest.raises(TraceError, match="static_argnums must be an int or a sequence"):
            make()


def test_static_argnums_out_of_the_functions_range_raise_at_jit():
    with pytest.raises(TraceError, match=r"static_argnums 2 is out of range.*2 positional"):
        pyasg.jit(lambda x, n: x, static_argnums=2)
    pyasg.jit(lambda *xs: xs[0], static_argnums=5)  # any count: nothing to check yet


@pytest.mark.parametrize("fn", [3, "f", None, [len]])
def test_transforms_of_something_not_callable_raise_trace_error(fn):
    makers = [pyasg.jit, pyasg.make_graph, pyasg.grad, pyasg.value_and_grad,
              pyasg.jacobian, pyasg.hessian, pyasg.jacfwd, pyasg.jacrev]
    for make in makers if fn is not None else makers[1:]:  # jit(None) is the decorator form
        with pytest.raises(TraceError, match="needs a function to trace"):
            make(fn)


def test_jit_name_and_fuse_are_checked():
    with pytest.raises(TraceError, match="name must be a str"):
        pyasg.jit(lambda x: x, name=5)
    with pytest.raises(TraceError, match="fuse must be True or False"):
        pyasg.jit(lambda x: x, fuse="no")


@pytest.mark.parametrize("argnums", ["a", (), 1.5, [0, None], True])
def test_grad_argnums_that_are_not_ints_raise_grad_error_at_grad(argnums):
    for make in (pyasg.grad, pyasg.value_and_grad, pyasg.jacobian, pyasg.jacfwd,
                 pyasg.hessian):
        with pytest.raises(GradError, match="argnums must be an int"):
            make(lambda x: x.sum(), argnums=argnums)


def test_grad_argnums_out_of_range_and_bad_has_aux_raise_at_grad():
    with pytest.raises(GradError, match="argnums 3 is out of range"):
        pyasg.grad(lambda x, y: x.sum(), argnums=3)
    with pytest.raises(GradError, match="has_aux must be True or False"):
        pyasg.grad(lambda x: x.sum(), has_aux="yes")


def test_a_required_keyword_only_parameter_is_refused_at_jit():
    def f(x, *, scale):
        return x * scale

    with pytest.raises(TraceError, match="keyword-only argument 'scale'.*functools.partial"):
        pyasg.jit(f)


# ------------------------------------------------------------------- the number of arguments

CALLS = {
    "jit": lambda f: pyasg.jit(f),
    "trace": lambda f: pyasg.trace(f),
    "make_graph": lambda f: pyasg.make_graph(f),
    "grad": lambda f: pyasg.grad(lambda x, y: f(x, y).sum()),
    "value_and_grad": lambda f: pyasg.value_and_grad(lambda x, y: f(x, y).sum()),
    "jacobian": lambda f: pyasg.jacobian(f),
    "jacfwd": lambda f: pyasg.jacfwd(f),
}


@pytest.mark.parametrize("form", CALLS)
@pytest.mark.parametrize("count", [0, 1, 3])
def test_a_call_with_the_wrong_number_of_arguments_names_the_count_before_tracing(form, count):
    ran = []

    def add(x, y):
        ran.append(True)
        return x + y

    fn = CALLS[form](add)
    with pytest.raises(TraceError, match=rf"takes 2 positional arguments \(x, y\), but was "
                                         rf"called with {count}") as info:
        fn(*[np.ones(2, F32)] * count)
    assert not ran  # refused before anything was traced
    assert "<lambda>" in str(info.value) or "add" in str(info.value)


def test_the_count_message_says_a_range_for_defaults_and_a_minimum_for_varargs():
    with pytest.raises(TraceError, match=r"1 to 2 positional arguments \(x, n\).*called with 3"):
        pyasg.jit(lambda x, n=2: x * n)(1.0, 2.0, 3.0)
    with pytest.raises(TraceError, match=r"at least 1 positional argument.*called with 0"):
        pyasg.jit(lambda x, *rest: x)()
    assert float(pyasg.jit(lambda x, n=2.0: x * n)(np.float32(3.0))) == 6.0


def test_a_jit_function_inlined_in_another_trace_checks_its_count_too():
    inner = pyasg.jit(lambda x, y: x + y)
    with pytest.raises(TraceError, match="called with 1"):
        pyasg.jit(lambda x: inner(x))(np.ones(2, F32))


# --------------------------------------------------------------------------- events


def test_subscribe_with_an_event_type_that_is_not_one_raises_and_publish_keeps_working():
    before = list(events_module._subscribers)
    for bad in (5, "StepDone", int, None, (pyasg.StepDone,)):
        with pytest.raises(EventError, match="subclass of pyasg.events.Event"):
            pyasg.subscribe(print, bad)
    with pytest.raises(EventError, match="callback must be callable"):
        pyasg.subscribe(5)
    assert events_module._subscribers == before  # nothing half-subscribed
    pyasg.publish(pyasg.StepDone(step=1, loss=0.5))  # still fine


@pytest.mark.parametrize("bad", ["step 3", 5, None, {"step": 1}])
def test_publish_of_something_that_is_not_an_event_raises(bad):
    seen = []
    off = pyasg.subscribe(seen.append)
    try:
        with pytest.raises(EventError, match="publish takes an event"):
            pyasg.publish(bad)
    finally:
        off()
    assert seen == []


def test_has_subscribers_and_describe_params_check_their_arguments():
    with pytest.raises(EventError):
        events_module.has_subscribers(5)
    with pytest.raises(EventError, match="dict of str paths"):
        events_module.describe_params(["w"])


# --------------------------------------------------------------------------- the transforms


@pytest.mark.parametrize("call", [
    lambda: pyasg.simplify(3),
    lambda: pyasg.infer_shapes("g"),
    lambda: pyasg.vjp_graph(None, [0]),
    lambda: convert_dtypes([1], {}),
], ids=["simplify", "infer_shapes", "vjp_graph", "convert_dtypes"])
def test_a_transform_given_something_that_is_not_a_graph_says_so(call):
    with pytest.raises(GraphTypeError, match="needs a Graph, got") as info:
        call()
    assert isinstance(info.value, TypeError)  # and still an `except TypeError` catches it


def test_jit_to_backend_given_something_that_is_not_a_graph_says_so():
    with pytest.raises(GraphTypeError):
        pyasg.jit_to_backend(3)


@pytest.mark.parametrize("call, error, match", [
    (lambda g: pyasg.vjp_graph(g, [1]), GradError, "wrt 1 is not a position"),
    (lambda g: pyasg.vjp_graph(g, "0"), GradError, "wrt must be a sequence of ints"),
    (lambda g: pyasg.vjp_graph(g, [0], of=2), GradError, "of must be the position"),
    (lambda g: pyasg.vjp_graph(g, [0], cotangent_ids=[]), GradError, "cotangent_ids"),
    (lambda g: pyasg.infer_shapes(g, [3]), ShapeError, "list of TensorType"),
    (lambda g: convert_dtypes(g, {"float32": "float128"}), ShapeError, "'float128'.*dtype"),
    (lambda g: convert_dtypes(g, ["float32"]), ShapeError, "mapping of dtype names"),
], ids=["wrt", "wrt-type", "of", "cotangent_ids", "input_types", "dtype", "mapping"])
def test_a_transforms_other_arguments_must_fit_the_graph(call, error, match):
    with pytest.raises(error, match=match):
        call(a_graph())


def test_set_default_backend_refuses_what_is_not_a_name(monkeypatch):
    monkeypatch.setattr(registry, "_default_backend", None)
    for bad in ([], 5, registry.get_backend("numpy")):
        with pytest.raises(BackendError):
            pyasg.set_default_backend(bad)
    assert registry._default_backend is None


# --------------------------------------------------------------------------- big ints


@pytest.mark.parametrize("value", [2**70, -(2**70), 2**64, 2**31, -(2**31) - 1])
def test_a_python_int_that_does_not_fit_int32_is_a_trace_error_naming_the_argument(value):
    with pytest.raises(TraceError, match=r"argument 'x' is the Python int .* does not fit "
                                         r"int32"):
        pyasg.jit(lambda x: x + 1)(value)
    with pytest.raises(TraceError, match=r"argument 'p.b.1' is the Python int"):
        pyasg.jit(lambda p: p["a"])({"a": 1.0, "b": [0, value]})


@given(st.integers(-(2**40), 2**40) | st.sampled_from([-(2**31), 2**31 - 1, 2**31]))
def test_a_python_int_argument_is_exact_where_it_fits_int32_and_refused_elsewhere(value):
    identity = pyasg.jit(lambda x: x + 0)
    if -(2**31) <= value < 2**31:
        out = identity(value)
        assert out.dtype == np.int32 and int(out) == value
    else:
        with pytest.raises(TraceError, match="does not fit int32"):
            identity(value)


def test_an_argument_whose_array_conversion_fails_is_a_trace_error_naming_it():
    class Unreadable:
        def __array__(self, *args: object, **kwargs: object) -> np.ndarray:
            raise ValueError("no numbers here")

    with pytest.raises(TraceError, match="argument 'x': a Unreadable that cannot be read as "
                                         "an array .no numbers here."):
        pyasg.jit(lambda x: x)(Unreadable())


# --------------------------------------------------------------------------- what errors quote

MEGABYTE = "x" * 1_000_000


def test_shown_cuts_long_text_and_survives_a_repr_that_fails():
    assert "…[999840 more]…" in shown(MEGABYTE) and len(shown(MEGABYTE)) < 200
    assert len(shown(nested(5_000))) < 20  # reprlib stops three levels down

    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError("no")

    assert shown(Broken()).startswith("<Broken")
    assert shown([1, 2]) == "[1, 2]" and shown("ab") == "'ab'"


@pytest.mark.parametrize("call", [
    lambda: pyasg.jit(lambda x: x)({MEGABYTE: "z"}),
    lambda: pyasg.jit(lambda x: x, backend=MEGABYTE),
    lambda: pyasg.jit(lambda x: x, static_argnums=[MEGABYTE]),
    lambda: pyasg.jit(lambda x: x, name=[MEGABYTE]),
    lambda: pyasg.grad(lambda x: x, argnums=MEGABYTE),
    lambda: pyasg.subscribe(print, MEGABYTE),
    lambda: pyasg.publish(MEGABYTE),
    lambda: pyasg.simplify(MEGABYTE),
    lambda: pyasg.tree_map(lambda a, b: a, list(range(10**5)), list(range(10**5 + 1))),
    lambda: pyasg.unflatten(pyasg.flatten(list(range(10**5)))[1], [1]),
    lambda: pyasg.set_default_backend(MEGABYTE),
], ids=["key", "backend", "static", "name", "argnums", "subscribe", "publish", "simplify",
        "tree_map", "unflatten", "default_backend"])
def test_an_error_never_echoes_a_huge_input_in_full(call):
    with pytest.raises(PyasgError) as info:
        call()
    assert len(str(info.value)) < MESSAGE_LIMIT, str(info.value)[:300]
