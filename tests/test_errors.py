"""The errors pyasg raises on bad input: type, message, and the user's `file:line`.

Every error is a `PyasgError`, says what was wrong, and points at the line of *this*
file that caused it. Lines are found by a marker comment (`# LINE:<tag>`) on the
offending statement, so the tests do not break when lines above them move.
"""

from __future__ import annotations

import os
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pyasg
from pyasg import BackendError, GradError, PyasgError, ShapeError, TraceError

F32 = np.float32
_FILE = os.path.basename(__file__)
with open(__file__, encoding="utf-8") as _fh:
    _SOURCE_LINES = _fh.read().splitlines()


def line_of(tag: str) -> int:
    """The line number carrying the marker comment `# LINE:<tag>` (exactly one)."""
    marker = f"# LINE:{tag}"
    hits = [n for n, text in enumerate(_SOURCE_LINES, 1)
            if text.rstrip().endswith(marker)]
    assert len(hits) == 1, f"marker {marker!r} found {len(hits)} times"
    return hits[0]


def assert_at(err: PyasgError, tag: str) -> None:
    """`err` names this file and the marked line, both in its text and its `source`."""
    line = line_of(tag)
    pattern = rf"(^|[\\/\s]){re.escape(_FILE)}:{line}(?!\d)"
    assert re.search(pattern, str(err)), f"expected {_FILE}:{line} in:\n{err}"
    assert err.source is not None and re.search(pattern, err.source), err.source


def shape_mentioned(message: str, shape: tuple[int, ...]) -> bool:
    """Whether `message` shows `shape` as [3, 4], (3, 4), [3,4] or (5,)."""
    compact = message.replace(" ", "")
    forms = {
        "[" + ",".join(map(str, shape)) + "]",
        "(" + ",".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")",
        "(" + ",".join(map(str, shape)) + ")",
    }
    return any(form in compact for form in forms)


x34 = np.arange(12, dtype=F32).reshape(3, 4)
x5 = np.ones(5, F32)


# --------------------------------------------------------------------------- shapes


def test_shape_mismatch_traced_names_both_shapes_and_line():
    def f(x, y):
        return x + y  # LINE:shape-traced

    with pytest.raises(ShapeError) as info:
        pyasg.jit(f)(x34, x5)
    err = info.value
    assert isinstance(err, PyasgError)
    assert shape_mentioned(str(err), (3, 4)) and shape_mentioned(str(err), (5,)), str(err)
    assert_at(err, "shape-traced")


def test_shape_mismatch_eager_names_both_shapes_and_line():
    with pytest.raises(ShapeError) as info:
        pyasg.add(x34, x5)  # LINE:shape-eager
    assert shape_mentioned(str(info.value), (3, 4))
    assert shape_mentioned(str(info.value), (5,))
    assert_at(info.value, "shape-eager")


def test_shape_mismatch_with_trace_decorator():
    @pyasg.trace
    def f(x, y):
        return x * y  # LINE:shape-decorator

    with pytest.raises(ShapeError) as info:
        f(x34, x5)
    assert_at(info.value, "shape-decorator")


@st.composite
def non_broadcastable(draw):
    """Two shapes that numpy refuses to broadcast (some aligned pair of dims differ, neither 1)."""
    rank = draw(st.integers(1, 4))
    a = draw(st.lists(st.integers(1, 5), min_size=rank, max_size=rank))
    b = list(a)
    k = draw(st.integers(0, rank - 1))
    a[k] = draw(st.integers(2, 6))
    b[k] = draw(st.integers(2, 6).filter(lambda d: d != a[k]))
    # other aligned dims may be broadcast 1s; extra leading dims on either side
    for i in range(rank):
        if i != k and draw(st.booleans()):
            b[i] = 1
    extra = draw(st.lists(st.integers(1, 4), max_size=2))
    if draw(st.booleans()):
        a = extra + a
    else:
        b = extra + b
    return tuple(a), tuple(b)


@settings(deadline=None)
@given(non_broadcastable(), st.booleans())
def test_property_shape_error_contains_both_shapes(shapes, traced):
    sa, sb = shapes
    with pytest.raises(ValueError):
        np.broadcast_shapes(sa, sb)  # the oracle agrees the shapes do not fit
    a, b = np.zeros(sa, F32), np.zeros(sb, F32)
    with pytest.raises(ShapeError) as info:
        if traced:
            pyasg.make_graph(lambda p, q: p - q)(a, b)
        else:
            pyasg.sub(a, b)
    msg = str(info.value)
    assert shape_mentioned(msg, sa), (sa, msg)
    assert shape_mentioned(msg, sb), (sb, msg)


def test_reshape_to_impossible_shape_traced():
    def f(x):
        return x.reshape(5, 3)  # LINE:reshape-traced

    with pytest.raises(ShapeError) as info:
        pyasg.jit(f)(x34)
    msg = str(info.value)
    assert "reshape" in msg
    assert shape_mentioned(msg, (3, 4)) and shape_mentioned(msg, (5, 3)), msg
    assert_at(info.value, "reshape-traced")


def test_reshape_to_impossible_shape_eager():
    with pytest.raises(ShapeError) as info:
        pyasg.reshape(x34, (5, -1))  # LINE:reshape-eager
    assert "reshape" in str(info.value)
    assert_at(info.value, "reshape-eager")


# --------------------------------------------------------------------------- values used as data


def test_if_on_tracer_names_argument_and_suggests_where():
    def f(x):
        if x.sum() > 0:  # LINE:if-tracer
            return x
        return -x

    with pytest.raises(TraceError) as info:
        pyasg.jit(f)(x34)
    msg = str(info.value)
    assert "'x'" in msg
    assert "where" in msg
    assert_at(info.value, "if-tracer")


def test_if_on_tracer_names_dotted_pytree_path():
    def f(params, x):
        if params["w"].mean() > 1.0:  # LINE:if-dict
            return x
        return x + params["b"]

    with pytest.raises(TraceError) as info:
        pyasg.jit(f)({"w": x34, "b": x5}, x5)
    msg = str(info.value)
    assert "params.w" in msg
    assert "params.b" not in msg and "'x'" not in msg  # only the argument it came from
    assert "where" in msg
    assert_at(info.value, "if-dict")


def test_if_on_tracer_names_nested_path():
    def f(params):
        w = params["blocks"][1]["w"]
        while w.max() > 0:  # LINE:while-nested
            w = w - 1.0
        return w

    with pytest.raises(TraceError) as info:
        pyasg.jit(f)({"blocks": [{"w": x5}, {"w": x5}]})
    assert "params.blocks.1.w" in str(info.value)
    assert_at(info.value, "while-nested")


def test_numpy_ufunc_on_tracer_suggests_pyasg_function():
    def f(x):
        return np.exp(x)  # LINE:np-exp

    with pytest.raises(TraceError) as info:
        pyasg.jit(f)(x34)
    assert "pyasg.exp" in str(info.value)
    assert_at(info.value, "np-exp")


def test_setitem_on_tracer_suggests_functional_update():
    def f(x):
        x[0] = 1  # LINE:setitem
        return x

    with pytest.raises(TraceError) as info:
        pyasg.jit(f)(x34)
    msg = str(info.value)
    assert ".at[" in msg and "where" in msg
    assert_at(info.value, "setitem")


def test_float_of_tracer():
    def f(x):
        return x * float(x.sum())  # LINE:float

    with pytest.raises(TraceError) as info:
        pyasg.jit(f)(x34)
    assert "float()" in str(info.value)
    assert "'x'" in str(info.value)
    assert_at(info.value, "float")


def test_int_of_tracer():
    def f(x):
        return x[: int(x[0, 0])]  # LINE:int

    with pytest.raises(TraceError) as info:
        pyasg.jit(f)(x34)
    assert "int()" in str(info.value)
    assert "static" in str(info.value)
    assert_at(info.value, "int")


def test_iterating_a_tracer():
    def f(x):
        total = 0.0
        for row in x:  # LINE:iter
            total = total + row
        return total

    with pytest.raises(TraceError) as info:
        pyasg.jit(f)(x34)
    msg = str(info.value)
    assert "iterat" in msg and "range(x.shape[0])" in msg
    assert_at(info.value, "iter")


def test_np_asarray_of_tracer():
    def f(x):
        return np.asarray(x)  # LINE:asarray

    with pytest.raises(TraceError) as info:
        pyasg.jit(f)(x34)
    assert "pyasg" in str(info.value)
    assert_at(info.value, "asarray")


def test_np_sum_of_tracer_goes_through_array_function():
    def f(x):
        return np.sum(x)  # LINE:np-sum

    with pytest.raises(TraceError) as info:
        pyasg.jit(f)(x34)
    assert "pyasg.sum" in str(info.value)
    assert_at(info.value, "np-sum")


def test_tracer_used_after_its_trace_ended_names_the_line_that_made_it():
    kept = []

    def leak(x):
        y = x * 2.0  # LINE:leak-made
        kept.append(y)
        return y

    pyasg.jit(leak)(x34)

    with pytest.raises(TraceError) as info:
        kept[0] + 1.0  # LINE:leak-used
    msg = str(info.value)
    assert re.search(rf"{re.escape(_FILE)}:{line_of('leak-made')}(?!\d)", msg), msg
    assert_at(info.value, "leak-used")

    # and inside a later trace, too
    def later(x):
        return x + kept[0]  # LINE:leak-later

    with pytest.raises(TraceError) as info:
        pyasg.jit(later)(x34)
    assert re.search(rf"{re.escape(_FILE)}:{line_of('leak-made')}(?!\d)", str(info.value))
    assert_at(info.value, "leak-later")


def test_traced_boolean_mask_index():
    def f(x):
        return x[x > 3.0]  # LINE:bool-mask

    with pytest.raises(TraceError) as info:
        pyasg.jit(f)(x34)
    assert "where" in str(info.value)
    assert_at(info.value, "bool-mask")


def test_string_argument_suggests_static_argnums():
    def f(x, mode):
        return x

    with pytest.raises(TraceError) as info:
        pyasg.jit(f)(x34, "relu")  # LINE:str-arg
    msg = str(info.value)
    assert "'mode'" in msg and "str" in msg
    assert "static_argnums" in msg
    assert_at(info.value, "str-arg")


# --------------------------------------------------------------------------- backends


def test_unknown_backend_lists_numpy():
    with pytest.raises(BackendError) as info:
        pyasg.jit(lambda x: x + 1.0, backend="nope")(x34)  # LINE:backend
    msg = str(info.value)
    assert "'nope'" in msg and "numpy" in msg
    assert_at(info.value, "backend")


def test_unknown_backend_in_jit_to_backend():
    g = pyasg.make_graph(lambda x: x + 1.0)(x34)
    with pytest.raises(BackendError, match="numpy"):
        pyasg.jit_to_backend(g, "vulkan-please")


def test_out_of_range_gather_at_run_time_is_a_backend_error():
    def f(x, i):
        return pyasg.take(x, i, axis=0)  # LINE:gather

    with pytest.raises(BackendError) as info:
        pyasg.jit(f)(x34, np.array([0, 5], np.int32))
    err = info.value
    assert not isinstance(err, IndexError)
    assert "gather" in str(err)
    assert_at(err, "gather")


def test_out_of_range_index_array_at_run_time_is_a_backend_error():
    def f(x, i):
        return x[:, i]  # LINE:getitem-oob

    with pytest.raises(BackendError) as info:
        pyasg.jit(f)(x34, np.array([1, 4], np.int32))
    assert "gather" in str(info.value)
    assert_at(info.value, "getitem-oob")


def test_out_of_range_static_int_index_is_a_shape_error():
    def f(x):
        return x[3]  # LINE:int-oob

    with pytest.raises(ShapeError) as info:
        pyasg.jit(f)(x34)
    assert "out of bounds" in str(info.value)
    assert_at(info.value, "int-oob")


def test_constant_out_of_range_indices_are_shape_errors_not_index_errors():
    def take_eager():
        return pyasg.take(x34, np.array([1, 5]))  # LINE:take-eager

    def getitem_eager():
        return pyasg.functional.getitem(x34, (np.array([0]), np.array([4])))  # LINE:pair-eager

    def at_traced(x):
        return x.at[np.array([7])].add(1.0)  # LINE:at-const

    def pair_traced(x):
        return x[np.array([0, 1]), np.array([-5, 0])]  # LINE:pair-const

    for call, tag in [(take_eager, "take-eager"), (getitem_eager, "pair-eager"),
                      (lambda: pyasg.jit(at_traced)(x34), "at-const"),
                      (lambda: pyasg.jit(pair_traced)(x34), "pair-const")]:
        with pytest.raises(ShapeError) as info:
            call()
        assert "out of bounds" in str(info.value), tag
        assert_at(info.value, tag)


AXIS_CASES = {  # numpy agrees that none of these axes exists for a 2-d array
    "sum": lambda x: pyasg.sum(x, axis=2),  # LINE:axis-sum
    "max": lambda x: pyasg.max(x, axis=-3),  # LINE:axis-max
    "argmax": lambda x: pyasg.argmax(x, axis=2),  # LINE:axis-argmax
    "softmax": lambda x: pyasg.softmax(x, axis=2),  # LINE:axis-softmax
    "split": lambda x: pyasg.split(x, [1], axis=2),  # LINE:axis-split
    "stack": lambda x: pyasg.stack([x, x], axis=3),  # LINE:axis-stack
    "expand_dims": lambda x: pyasg.expand_dims(x, 3),  # LINE:axis-expand_dims
    "swapaxes": lambda x: pyasg.swapaxes(x, 0, 2),  # LINE:axis-swapaxes
    "moveaxis": lambda x: pyasg.moveaxis(x, 2, 0),  # LINE:axis-moveaxis
    "concatenate": lambda x: pyasg.concatenate([x, x], axis=-3),  # LINE:axis-concatenate
    "take": lambda x: pyasg.take(x, np.array([0]), axis=2),  # LINE:axis-take
}


@pytest.mark.parametrize("name", sorted(AXIS_CASES))
def test_out_of_range_axis_is_a_shape_error_at_the_users_line(name):
    fn = AXIS_CASES[name]
    with pytest.raises(ShapeError) as info:
        fn(x34)
    assert "axis" in str(info.value)
    assert_at(info.value, f"axis-{name}")
    with pytest.raises(ShapeError) as info:
        pyasg.make_graph(fn)(x34)
    assert_at(info.value, f"axis-{name}")


# --------------------------------------------------------------------------- gradients


def test_grad_of_non_scalar_output():
    def f(x):
        return x * 2.0  # LINE:grad-vector

    with pytest.raises(GradError) as info:
        pyasg.grad(f)(x34)
    msg = str(info.value)
    assert "scalar" in msg and shape_mentioned(msg.replace("f32", ""), (3, 4))
    assert_at(info.value, "grad-vector")


def test_grad_with_respect_to_int_argument():
    def f(x, n):
        return (x * n).sum()

    with pytest.raises(GradError) as info:
        pyasg.grad(f, argnums=1)(x34, np.arange(4, dtype=np.int32))  # LINE:grad-int
    msg = str(info.value)
    assert "'n'" in msg and "float" in msg
    assert_at(info.value, "grad-int")


# --------------------------------------------------------------------------- the hierarchy


@pytest.mark.parametrize("cls", [ShapeError, TraceError, BackendError, GradError])
def test_error_classes_are_pyasg_errors(cls):
    assert issubclass(cls, PyasgError)
    assert issubclass(PyasgError, Exception)
    assert cls is getattr(pyasg, cls.__name__)
