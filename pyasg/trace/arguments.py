"""What a traced function is given, checked where it is given: the function, its static
argument positions, and each call's number of arguments.

`jit`, `grad` and `make_graph` take a function and the positions of its static
arguments; each call of the result passes the arguments positionally. A bad one of
any of them is a `TraceError` naming the function, raised before anything is traced
(never a TypeError from inside the trace, nor an error only at the first call).

>>> arity = function_arity(lambda x, n=2: x, "jit")
>>> arity.describe()
'1 to 2 positional arguments (x, n)'
>>> static_positions(1, "jit", arity)
(1,)
"""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pyasg.errors import TraceError, shown

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


@dataclass(frozen=True)
class Arity:
    """How many positional arguments a function takes: `least` to `most` (None: any
    number), with the parameters' names for messages. Checking a call is two integer
    comparisons, so a jit function does it on every call."""

    least: int = 0
    most: int | None = None
    names: tuple[str, ...] = ()

    def describe(self) -> str:
        """The count in words, as an error message says it.

        >>> Arity(2, 2, ("x", "y")).describe()
        '2 positional arguments (x, y)'
        """
        if self.most is None:
            count = f"at least {self.least}"
        elif self.least == self.most:
            count = str(self.most)
        else:
            count = f"{self.least} to {self.most}"
        plural = "" if count == "1" else "s"
        named = f" ({', '.join(self.names)})" if self.names else ""
        return f"{count} positional argument{plural}{named}"

    def check(self, name: str, args: Sequence[object]) -> None:
        """Raise `TraceError` unless `len(args)` positional arguments fit.

        >>> Arity(1, 1, ("x",)).check("f", [1, 2])
        Traceback (most recent call last):
          ...
        pyasg.errors.TraceError: f takes 1 positional argument (x), but was called with 2...
        """
        n = len(args)
        if n < self.least or (self.most is not None and n > self.most):
            raise TraceError(f"{str(name)[:80]} takes {self.describe()}, but was called with {n}")


def function_arity(fn: object, what: str) -> Arity:
    """The `Arity` of `fn`; `TraceError` if it is not callable, or cannot be called with
    positional arguments alone (a keyword-only parameter without a default). A callable
    whose signature Python cannot tell (some builtins) takes any number.

    >>> function_arity(3, "jit")
    Traceback (most recent call last):
      ...
    pyasg.errors.TraceError: jit needs a function to trace, got int 3...
    """
    if not callable(fn):
        raise TraceError(f"{what} needs a function to trace, got {type(fn).__name__} "
                         f"{shown(fn, 60)}")
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return Arity()
    positional = [p for p in params if p.kind in _POSITIONAL]
    keyword_only = [p.name for p in params if p.kind is p.KEYWORD_ONLY and p.default is p.empty]
    if keyword_only:
        raise TraceError(f"{what}: {_name_of(fn)} has the keyword-only argument "
                         f"'{keyword_only[0]}' without a default, which a traced call (only "
                         f"positional arguments) cannot pass; give it a default, or bind it "
                         f"first with functools.partial")
    least = sum(1 for p in positional if p.default is p.empty)
    variadic = any(p.kind is p.VAR_POSITIONAL for p in params)
    return Arity(least, None if variadic else len(positional), tuple(p.name for p in positional))


def _is_int(x: object) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def static_positions(static_argnums: Any, what: str, arity: Arity | None = None
                     ) -> tuple[int, ...]:
    """`static_argnums` (an int, a sequence of ints, or None for none) as a tuple, each
    position checked against `arity` when the function's is known; `TraceError` otherwise.

    >>> static_positions("a", "jit")
    Traceback (most recent call last):
      ...
    pyasg.errors.TraceError: jit: static_argnums must be an int or a sequence ..., got str 'a'...
    """
    if static_argnums is None:
        return ()
    given = (static_argnums,) if _is_int(static_argnums) else static_argnums
    if not isinstance(given, (list, tuple, range)) or not all(_is_int(i) for i in given):
        raise TraceError(f"{what}: static_argnums must be an int or a sequence of ints, got "
                         f"{type(static_argnums).__name__} {shown(static_argnums, 60)}")
    nums = tuple(int(i) for i in given)
    most = arity.most if arity is not None else None
    for i in nums:
        if most is not None and not -most <= i < most:
            raise TraceError(f"{what}: static_argnums {i} is out of range for a function "
                             f"of {arity.describe()}")
    return nums


def _name_of(fn: Callable[..., Any]) -> str:
    return str(getattr(fn, "__name__", type(fn).__name__))[:80]
