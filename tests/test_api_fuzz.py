"""Every public function and class of `pyasg` called with wrong-typed arguments: only a
`PyasgError` may escape, and no call may hang.

The arguments are None, strings (empty, a megabyte, NUL), numbers (NaN, inf, 2**70,
bools), lists, dicts, tuples, numpy arrays (NaN, empty, strings, objects), and pytrees
that contain themselves or nest 5,000 deep. Each case runs under `CASE_SECONDS`
(SIGALRM), so a hang is a failure, not a stuck CI job.

Two parts: every name in `pyasg.__all__` that is a function or a class (`PUBLIC`, kept
complete by a test) called directly; then the function forms (`jit`, `grad`, ...)
built around a function that works on any pytree, and called with the same values.

Size: the "ci" hypothesis profile runs 25 examples a test (a few hundred calls in
all); ``HYPOTHESIS_PROFILE=fuzz`` runs the long campaign by hand (tests/conftest.py).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from limits import time_limit

import pyasg
from pyasg import PyasgError
from pyasg.compile import registry

#: The longest one call may take before it counts as a hang (a jit compile takes < 1 s).
CASE_SECONDS = 20.0


def only_pyasg_errors(call: Callable[[], Any]) -> None:
    """Run `call` under the time limit; anything but a result or a PyasgError fails."""
    with time_limit(CASE_SECONDS):
        try:
            call()
        except PyasgError:
            pass


# --------------------------------------------------------------------------- hostile values


def _deep(depth: int, wrap: Callable[[object], object]) -> object:
    tree: object = 1.0
    for _ in range(depth):
        tree = wrap(tree)
    return tree


SELF_LIST: list = [1.0]
SELF_LIST.append(SELF_LIST)
SELF_DICT: dict = {"w": 1.0}
SELF_DICT["self"] = SELF_DICT

FIXED = {
    "None": None, "empty str": "", "a megabyte": "x" * 2**20, "NUL": "\x00", "bytes": b"\x00",
    "nan": math.nan, "inf": math.inf, "-inf": -math.inf, "-0.0": -0.0, "0": 0, "-1": -1,
    "2**70": 2**70, "-2**70": -(2**70), "2**31": 2**31, "True": True, "[]": [], "{}": {},
    "()": (), "[None]": [None], "[[]]": [[]], "{'': None}": {"": None}, "(1.5, 'a')": (1.5, "a"),
    "a list in itself": SELF_LIST, "a dict in itself": SELF_DICT,
    "5,000 deep lists": _deep(5_000, lambda t: [t]),
    "5,000 deep dicts": _deep(5_000, lambda t: {"k": t}),
    "object()": object(), "Ellipsis": Ellipsis, "range(3)": range(3), "slice": slice(None),
    "1+2j": 1 + 2j, "np.float64(nan)": np.float64("nan"), "np.int64(2**62)": np.int64(2**62),
    "f32[nan, inf]": np.array([np.nan, np.inf], np.float32),
    "f32[0]": np.array([], np.float32), "f64[0, 3]": np.zeros((0, 3)),
    "a str array": np.array("s"), "an object array": np.array([object()], dtype=object),
    "i64[2, 2]": np.array([[1, 2], [3, 4]]),
}
DEEP = FIXED["5,000 deep lists"]


class Fixed(str):
    """The name of a `FIXED` value: what hypothesis draws and prints (printing a 5,000-deep
    list itself would exhaust the recursion limit of its own pretty-printer)."""


def value(spec: object) -> object:
    """The value a drawn spec stands for."""
    return FIXED[spec] if isinstance(spec, Fixed) else spec


HOSTILE = st.one_of(
    st.sampled_from([Fixed(name) for name in FIXED]),
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8),
    st.lists(st.integers() | st.floats() | st.text(max_size=3) | st.none(), max_size=4),
    st.dictionaries(st.text(max_size=3), st.integers() | st.floats() | st.none(), max_size=3),
    st.tuples(st.integers(), st.floats()),
)

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


@st.composite
def arguments(draw: st.DrawFn, fn: Callable[..., Any]) -> tuple[list, dict]:
    """Specs of hostile arguments that fit `fn`'s signature (see `value`): every required
    positional one, each optional one half the time (by keyword), up to two for `*args`."""
    args: list = []
    kwargs: dict = {}
    for p in inspect.signature(fn).parameters.values():
        if p.kind in _POSITIONAL and p.default is p.empty:
            args.append(draw(HOSTILE))
        elif p.kind is p.VAR_POSITIONAL:
            args.extend(draw(st.lists(HOSTILE, max_size=2)))
        elif p.kind is not p.VAR_KEYWORD and draw(st.booleans()):
            kwargs[p.name] = draw(HOSTILE)
    return args, kwargs


# --------------------------------------------------------------------------- the public names

#: Public names that are types, not things to call.
NOT_CALLED = {
    "Backend": "an abstract base class to subclass (calling it is Python's own TypeError)",
    "Executable": "a Protocol, a type for annotations (never instantiated)",
}



def _public() -> dict[str, Any]:
    return {name: getattr(pyasg, name) for name in pyasg.__all__
            if inspect.isclass(getattr(pyasg, name)) or inspect.isfunction(getattr(pyasg, name))}


PUBLIC = _public()


def test_every_public_function_and_class_is_fuzzed():
    assert sorted(PUBLIC) == sorted([*CALLED, *NOT_CALLED])
    assert len(CALLED) >= 35  # guard against an __all__ that lost its names


CALLED = sorted(set(PUBLIC) - set(NOT_CALLED))


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    """A fuzzed call may set the default backend or write files: keep both local."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(registry, "_default_backend", None)
    monkeypatch.delenv("PYASG_BACKEND", raising=False)
    subscribers = list(pyasg.events._subscribers)
    yield
    pyasg.events._subscribers[:] = subscribers
    pyasg.events._listened.clear()


@pytest.mark.parametrize("name", CALLED)
@given(data=st.data())
def test_a_public_name_given_wrong_types_raises_only_pyasg_errors(name, data):
    fn = PUBLIC[name]
    specs, named = data.draw(arguments(fn), label="arguments")
    args, kwargs = [value(v) for v in specs], {k: value(v) for k, v in named.items()}
    only_pyasg_errors(lambda: fn(*args, **kwargs))


# --------------------------------------------------------------------------- the function forms


def _double(tree: object) -> object:
    return pyasg.tree_map(lambda a: a * 2.0, tree)


def _square_sum(tree: object) -> object:
    return sum(((a * a).sum() for a in pyasg.tree_leaves(tree)), 0.0)


#: Function forms around functions that work on any pytree of arrays, so that what
#: fails is pyasg taking the values, not the function's own arithmetic on a list.
FORMS: dict[str, tuple[Callable[..., Any], int]] = {
    "jit": (pyasg.jit(_double), 1),
    "jit two": (pyasg.jit(lambda x, y: _double((x, y))), 2),
    "jit static": (pyasg.jit(lambda x, n: _double(x), static_argnums=1), 2),
    "jit reference": (pyasg.jit(_double, backend="reference"), 1),
    "trace": (pyasg.trace(_double), 1),
    "make_graph": (pyasg.make_graph(_double), 1),
    "grad": (pyasg.grad(_square_sum), 1),
    "value_and_grad": (pyasg.value_and_grad(_square_sum), 1),
    "jacobian": (pyasg.jacobian(_double), 1),
    "hessian": (pyasg.hessian(_square_sum), 1),
    "vmap": (pyasg.vmap(_double), 1),
    "vmap two": (pyasg.vmap(lambda x, y: _double((x, y)), in_axes=(0, None)), 2),
    "vmap grad": (pyasg.vmap(pyasg.grad(_square_sum)), 1),
    "tree_map": (lambda a, b: pyasg.tree_map(lambda u, v: u, a, b), 2),
    "unflatten": (lambda leaves: pyasg.unflatten(pyasg.flatten([1, [2]])[1], leaves), 1),
    "profile": (lambda x: pyasg.profile(_double, x, repeat=1, warmup=0), 1),
}


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning")  # 1e308 * 2 is inf, rightly
@given(data=st.data())
def test_a_function_form_called_with_wrong_types_raises_only_pyasg_errors(form, data):
    fn, count = FORMS[form]
    specs = data.draw(st.lists(HOSTILE, min_size=count, max_size=count), label="arguments")
    only_pyasg_errors(lambda: fn(*[value(v) for v in specs]))


@pytest.mark.parametrize("form", ["jit", "grad", "make_graph"])
@given(count=st.integers(0, 4).filter(lambda n: n != 1))
def test_a_function_form_called_with_the_wrong_count_raises_only_pyasg_errors(form, count):
    fn, _ = FORMS[form]
    only_pyasg_errors(lambda: fn(*[np.ones(2, np.float32)] * count))
