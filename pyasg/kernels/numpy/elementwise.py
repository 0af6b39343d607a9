"""numpy kernels of the elementwise ops: one ufunc each, written into planned buffers."""

from __future__ import annotations

import math

import numpy as np

from pyasg.asg import ops
from pyasg.kernels import lower
from pyasg.kernels.numpy.backend import NumpyBackend, NumpyKernel

try:  # scipy's erf is fast; math.erf is exact but runs per element in Python.
    from scipy.special import erf as _erf
except ImportError:  # pragma: no cover - exercised by test_erf_fallback
    _erf = None


def erf_fallback(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """erf with the standard library, elementwise (used when scipy is missing)."""
    result = np.asarray(np.frompyfunc(math.erf, 1, 1)(x)).astype(x.dtype)  # 0-d: a float
    if out is None:
        return result
    out[...] = result
    return out


UFUNCS = {
    ops.Neg: np.negative, ops.Abs: np.absolute, ops.Sign: np.sign, ops.Exp: np.exp,
    ops.Log: np.log, ops.Log1p: np.log1p, ops.Expm1: np.expm1, ops.Sqrt: np.sqrt,
    ops.Sin: np.sin, ops.Cos: np.cos, ops.Tanh: np.tanh,
    ops.Erf: _erf if _erf is not None else erf_fallback,
    ops.Add: np.add, ops.Sub: np.subtract, ops.Mul: np.multiply, ops.Div: np.true_divide,
    ops.FloorDiv: np.floor_divide, ops.Mod: np.remainder, ops.Pow: np.power,
    ops.Maximum: np.maximum, ops.Minimum: np.minimum,
    ops.Less: np.less, ops.LessEqual: np.less_equal, ops.Greater: np.greater,
    ops.GreaterEqual: np.greater_equal, ops.Equal: np.equal, ops.NotEqual: np.not_equal,
}


def _register_ufunc(op_class: type, ufunc) -> None:  # noqa: ANN001
    @lower.register(op_class, NumpyBackend)
    def _(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
        return NumpyKernel(ufunc, writes_out=True)


for _cls, _ufunc in UFUNCS.items():
    _register_ufunc(_cls, _ufunc)


@lower.register(ops.Where, NumpyBackend)
def _(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
    def where(c, x, y, out=None):  # noqa: ANN001, ANN202
        # the memory plan only ever passes a dying full-size x or y as `out`
        if out is None:
            return np.where(c, x, y)
        if out is c:  # a bool where may be planned into its dying condition's buffer
            out[...] = np.where(c, x, y)
        elif out is y:
            np.copyto(out, x, where=c)
        else:
            np.copyto(out, y, where=np.logical_not(c))
        return out

    return NumpyKernel(where, writes_out=True)


@lower.register(ops.Cast, NumpyBackend)
def _(op, backend, in_types, out_type):  # noqa: ANN001, ANN202
    dtype = np.dtype(op.dtype)

    def cast(x, out=None):  # noqa: ANN001, ANN202
        if out is None:
            return x.astype(dtype)
        np.copyto(out, x, casting="unsafe")
        return out

    return NumpyKernel(cast, writes_out=True)
