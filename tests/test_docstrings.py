"""Every docstring example in the package runs and prints what it shows."""

import doctest
import importlib
import pkgutil

import pytest

import pyasg

MODULES = sorted(
    m.name for m in pkgutil.walk_packages(pyasg.__path__, "pyasg.")
    if not m.name.startswith(("pyasg.viewer.app", "pyasg.__main__"))  # app: Dear PyGui
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    result = doctest.testmod(module, optionflags=flags, verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
