"""Primitive ops for convolution and pooling (NCHW), with their shape rules.

Three convolutions close under differentiation: `Conv2d`, and its gradients with
respect to the input (`Conv2dBackwardInput`, which is also the transposed
convolution) and to the weight (`Conv2dBackwardWeight`); each one's VJP is written
with the other two, so gradients of any order exist. Max pooling needs one more
primitive, `MaxPool2dIndices`, which says where each window's maximum is; the
pooling itself is then a gather and its gradient a scatter-add. Average and
adaptive pooling are composites (a convolution, two matmuls) in `functional`.

>>> Conv2d((2, 2), (1, 1), (1, 1), 1).infer(TensorType((1, 3, 8, 8)), TensorType((4, 3, 3, 3)))
f32[1,4,4,4]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from pyasg.asg.ops.base import Op
from pyasg.asg.types import FLOAT_DTYPES, TensorType
from pyasg.errors import ShapeError


def conv_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """PyTorch's output length: floor((size + 2p - d(k - 1) - 1) / s) + 1."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _check_params(name: str, *pairs: tuple[str, tuple[int, ...], int]) -> None:
    for label, value, low in pairs:
        if len(value) != 2 or any(not isinstance(v, int) or v < low for v in value):
            raise ShapeError(f"{name}: {label} must be two integers >= {low}, got {value}")


@dataclass(frozen=True)
class _ConvBase(Op):
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int
    abstract: ClassVar[bool] = True
    category: ClassVar[str] = "convolution"
    arity: ClassVar[int] = 2

    def _check(self) -> None:
        _check_params(self.name, ("stride", self.stride, 1), ("padding", self.padding, 0),
                      ("dilation", self.dilation, 1))
        if self.groups < 1:
            raise ShapeError(f"{self.name}: groups must be >= 1, got {self.groups}")

    def out_hw(self, hw: tuple[int, int], khw: tuple[int, int]) -> tuple[int, int]:
        return tuple(conv_output_size(n, k, s, p, d) for n, k, s, p, d in
                     zip(hw, khw, self.stride, self.padding, self.dilation))

    def _check_weight(self, channels: int, w: TensorType, where: str) -> int:
        """Checks w against `channels` input channels; returns the output channels."""
        if w.ndim != 4:
            raise ShapeError(f"{self.name}: weight must be [out, in/groups, kh, kw], got {w!r}")
        if channels % self.groups or w.shape[0] % self.groups:
            raise ShapeError(f"{self.name}: groups={self.groups} must divide the input channels "
                             f"({channels}) and output channels ({w.shape[0]})")
        if w.shape[1] * self.groups != channels:
            raise ShapeError(f"{self.name}: {where} has {channels} channels but weight {w!r} "
                             f"expects {w.shape[1]} x groups {self.groups} = "
                             f"{w.shape[1] * self.groups}")
        return w.shape[0]

    def _check_types(self, *ts: TensorType) -> None:
        if len({t.dtype for t in ts}) != 1 or ts[0].dtype not in FLOAT_DTYPES:
            raise ShapeError(f"{self.name}: operands need one float dtype, got "
                             f"{', '.join(map(repr, ts))}")
        for t in ts:
            if t.ndim != 4:
                raise ShapeError(f"{self.name}: operands must be 4-d (NCHW), got {t!r}")


@dataclass(frozen=True)
class Conv2d(_ConvBase):
    """2-d cross-correlation of x [N,C,H,W] with w [O,C/groups,kh,kw] (PyTorch's conv2d)."""

    def infer(self, x: TensorType, w: TensorType) -> TensorType:
        self._check()
        self._check_types(x, w)
        out_c = self._check_weight(x.shape[1], w, f"input {x!r}")
        ho, wo = self.out_hw(x.shape[2:], w.shape[2:])
        if ho < 1 or wo < 1:
            raise ShapeError(f"conv2d: kernel {list(w.shape[2:])} (dilation {self.dilation}) "
                             f"does not fit input {x!r} padded by {self.padding}")
        return TensorType((x.shape[0], out_c, ho, wo), x.dtype)


@dataclass(frozen=True)
class Conv2dBackwardInput(_ConvBase):
    """Gradient of conv2d w.r.t. its input (spatial size `input_size`); = conv_transpose2d."""

    input_size: tuple[int, ...] = (1, 1)

    def infer(self, g: TensorType, w: TensorType) -> TensorType:
        self._check()
        self._check_types(g, w)
        if g.shape[1] != w.shape[0]:
            raise ShapeError(f"{self.name}: gradient {g!r} has {g.shape[1]} channels, weight "
                             f"{w!r} has {w.shape[0]} outputs")
        channels = w.shape[1] * self.groups
        self._check_weight(channels, w, "the input")
        if self.out_hw(self.input_size, w.shape[2:]) != g.shape[2:]:
            raise ShapeError(f"{self.name}: an input of size {list(self.input_size)} gives "
                             f"{list(self.out_hw(self.input_size, w.shape[2:]))}, "
                             f"not {list(g.shape[2:])}")
        return TensorType((g.shape[0], channels) + tuple(self.input_size), g.dtype)


@dataclass(frozen=True)
class Conv2dBackwardWeight(_ConvBase):
    """Gradient of conv2d with respect to its weight, of spatial size `kernel_size`."""

    kernel_size: tuple[int, ...] = (1, 1)

    def infer(self, x: TensorType, g: TensorType) -> TensorType:
        self._check()
        self._check_types(x, g)
        _check_params(self.name, ("kernel_size", self.kernel_size, 1))
        if x.shape[0] != g.shape[0] or x.shape[1] % self.groups or g.shape[1] % self.groups:
            raise ShapeError(f"{self.name}: input {x!r} and gradient {g!r} do not fit "
                             f"groups={self.groups}")
        if self.out_hw(x.shape[2:], self.kernel_size) != g.shape[2:]:
            raise ShapeError(f"{self.name}: input {x!r} gives a different output size than "
                             f"gradient {g!r}")
        return TensorType((g.shape[1], x.shape[1] // self.groups) + tuple(self.kernel_size),
                          x.dtype)


@dataclass(frozen=True)
class MaxPool2dIndices(Op):
    """Flat index (into x.ravel(), int32) of each pooling window's first maximum."""

    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    category: ClassVar[str] = "pooling"
    differentiable: ClassVar[bool] = False

    def infer(self, x: TensorType) -> TensorType:
        _check_params(self.name, ("kernel_size", self.kernel_size, 1), ("stride", self.stride, 1),
                      ("padding", self.padding, 0), ("dilation", self.dilation, 1))
        if x.ndim != 4 or x.dtype not in FLOAT_DTYPES:
            raise ShapeError(f"max_pool2d: input must be a float NCHW array, got {x!r}")
        if any(p > k // 2 for p, k in zip(self.padding, self.kernel_size)):
            raise ShapeError(f"max_pool2d: padding {self.padding} must be at most half the "
                             f"kernel {self.kernel_size}")
        if x.size >= 2**31:
            raise ShapeError(f"max_pool2d: input {x!r} is too large for int32 indices")
        ho, wo = (conv_output_size(n, k, s, p, d) for n, k, s, p, d in zip(
            x.shape[2:], self.kernel_size, self.stride, self.padding, self.dilation))
        if ho < 1 or wo < 1:
            raise ShapeError(f"max_pool2d: kernel {self.kernel_size} does not fit input {x!r}")
        for size, n, k, s, p, d in zip(x.shape[2:], (ho, wo), self.kernel_size, self.stride,
                                       self.padding, self.dilation):
            for o in range(n):  # with dilation a window can miss every real pixel
                if not any(0 <= o * s - p + t * d < size for t in range(k)):
                    raise ShapeError(f"max_pool2d: window {o} of an axis of size {size} lies "
                                     f"entirely in the padding (kernel {k}, stride {s}, "
                                     f"padding {p}, dilation {d})")
        return TensorType(x.shape[:2] + (ho, wo), "int32")
