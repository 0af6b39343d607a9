"""The entry checks of the public transforms: each is given a `Graph`, and its other
arguments fit that graph, or it raises an error naming the transform and what it got.

A transform walks the graph it is given; without these checks `simplify(3)` would be
an AttributeError from inside the walk. `require_graph` is for every function that
takes a graph from a user (`jit_to_backend` too).

>>> require_graph("g", "infer_shapes")
Traceback (most recent call last):
  ...
pyasg.asg.graph.GraphTypeError: infer_shapes needs a Graph, got str 'g' (...)...
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping

from pyasg.asg.graph import GraphTypeError, require_graph
from pyasg.asg.types import DTYPES
from pyasg.errors import GradError, ShapeError, shown

__all__ = ["GraphTypeError", "dtype_mapping", "output_position", "positions", "require_graph"]


def _is_int(x: object) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def positions(value: object, count: int, what: str, name: str) -> tuple[int, ...]:
    """`value`, a sequence of ints, each a position in `range(count)`; `GradError` if not.

    >>> positions([0, 2], 2, "vjp_graph", "wrt")
    Traceback (most recent call last):
      ...
    pyasg.errors.GradError: vjp_graph: wrt 2 is not a position of the graph's 2 inputs...
    """
    items = value if isinstance(value, (list, tuple, range)) else None
    if items is None or not all(_is_int(k) for k in items):
        raise GradError(f"{what}: {name} must be a sequence of ints (positions in "
                        f"graph.inputs), got {type(value).__name__} {shown(value, 60)}")
    for k in items:
        if not 0 <= k < count:
            raise GradError(f"{what}: {name} {k} is not a position of the graph's {count} "
                            f"inputs")
    return tuple(int(k) for k in items)


def output_position(of: object, count: int, what: str) -> int:
    """`of`, the position of one of `count` outputs; `GradError` if it is not one."""
    if not _is_int(of) or not 0 <= of < count:
        raise GradError(f"{what}: of must be the position of one of the graph's {count} "
                        f"outputs, got {type(of).__name__} {shown(of, 60)}")
    return int(of)


def dtype_mapping(mapping: object, what: str) -> Mapping[str, str]:
    """`mapping` if it maps dtype names to dtype names; `ShapeError` naming the bad entry."""
    if not isinstance(mapping, Mapping):
        raise ShapeError(f"{what} needs a mapping of dtype names (\"float64\": \"float32\"), "
                         f"got {type(mapping).__name__} {shown(mapping, 60)}")
    for key, value in mapping.items():
        for side in (key, value):
            if not isinstance(side, str) or side not in DTYPES:
                raise ShapeError(f"{what}: {shown(side, 60)} (in {shown(key, 60)}: "
                                 f"{shown(value, 60)}) is not a dtype name; pyasg has "
                                 f"{', '.join(DTYPES)}")
    return mapping
