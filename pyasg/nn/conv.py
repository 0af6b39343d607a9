"""Convolution and pooling layers with PyTorch's constructor arguments, names and
layouts (NCHW; Conv2d weight [out, in/groups, kh, kw], ConvTranspose2d weight
[in, out/groups, kh, kw]), over the functional forms in `pyasg.convolution`.

>>> import pyasg, numpy as np
>>> conv = Conv2d(3, 8, kernel_size=3, padding=1)
>>> params = conv.init(pyasg.random.key(0))
>>> {k: v.shape for k, v in params.items()}
{'weight': (8, 3, 3, 3), 'bias': (8,)}
>>> conv(params, np.zeros((2, 3, 5, 5), np.float32)).shape
(2, 8, 5, 5)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pyasg.array import functional as F
from pyasg.array import random
from pyasg.errors import PyasgError
from pyasg.nn import checks, init
from pyasg.nn.module import Module, register_roles


def _pair(v: int | Sequence[int], kind: str, name: str, within: str) -> tuple[int, int]:
    return checks.ints(v, kind, name, within, length=2)  # type: ignore[return-value]


def _channels(kind: str, in_channels: object, out_channels: object,
              groups: object) -> tuple[int, int, int]:
    c_in = checks.size(in_channels, kind, "in_channels", "[1, inf)")
    c_out = checks.size(out_channels, kind, "out_channels", "[1, inf)")
    g = checks.size(groups, kind, "groups", "[1, inf)")
    if c_in % g or c_out % g:
        raise checks.ArgumentError(f"{kind}: in_channels ({c_in}) and out_channels ({c_out}) "
                                   f"must both be divisible by groups ({g})")
    return c_in, c_out, g


def _check_padding_mode(kind: str, padding_mode: str) -> None:
    # PyTorch also has 'reflect', 'replicate' and 'circular'; pyasg pads with zeros only
    if not (isinstance(padding_mode, str) and padding_mode == "zeros"):
        raise PyasgError(f"{kind}: padding_mode {checks.quote(padding_mode)} is not "
                         f"supported (only 'zeros')")


def _window(kind: str, kernel_size: object, stride: object, dilation: object
            ) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """kernel_size, stride and dilation: each an int or a pair, all >= 1 (stride None:
    the kernel size, as PyTorch's pooling)."""
    kernel = _pair(kernel_size, kind, "kernel_size", "[1, inf)")
    steps = kernel if stride is None else _pair(stride, kind, "stride", "[1, inf)")
    return kernel, steps, _pair(dilation, kind, "dilation", "[1, inf)")


def _uniform_init(key: object, weight_shape: tuple[int, ...], fan_in: int, bias: bool,
                  bias_shape: tuple[int, ...], dtype: str) -> dict:
    # PyTorch's _ConvNd.reset_parameters: kaiming_uniform_(a=sqrt(5)) is U(±1/sqrt(fan_in)),
    # and the bias is U(±1/sqrt(fan_in)) with the same fan_in
    k_w, k_b = random.split(key)
    bound = 1.0 / math.sqrt(fan_in) if fan_in else 0.0
    params = {"weight": init.uniform(k_w, weight_shape, -bound, bound, dtype)}
    if bias:
        params["bias"] = init.uniform(k_b, bias_shape, -bound, bound, dtype)
    return params


class Conv2d(Module):
    """2-d convolution, as torch.nn.Conv2d; weight [out, in/groups, kh, kw], bias [out].

    Initialised as PyTorch: weight and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with
    fan_in = in_channels/groups * kh * kw. `padding` may be an int, a pair, "valid" or
    "same" (stride 1). Only `padding_mode="zeros"` is supported.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | Sequence[int],
                 stride: int | Sequence[int] = 1, padding: int | Sequence[int] | str = 0,
                 dilation: int | Sequence[int] = 1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", dtype: str = "float32") -> None:
        self.in_channels, self.out_channels, self.groups = _channels(
            "Conv2d", in_channels, out_channels, groups)
        _check_padding_mode("Conv2d", padding_mode)
        self.kernel_size, self.stride, self.dilation = _window("Conv2d", kernel_size, stride,
                                                               dilation)
        if isinstance(padding, str):
            self.padding = checks.choice(padding, "Conv2d", "padding", ("valid", "same"))
            if padding == "same" and self.stride != (1, 1):
                raise checks.ArgumentError(f"Conv2d: padding='same' needs stride 1 (as "
                                           f"PyTorch), got stride {self.stride}")
        else:
            self.padding = _pair(padding, "Conv2d", "padding", "[0, inf)")
        self.bias = checks.flag(bias, "Conv2d", "bias")
        self.padding_mode, self.dtype = padding_mode, checks.float_dtype(dtype, "Conv2d")

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        weight = (self.out_channels, self.in_channels // self.groups) + self.kernel_size
        return {"weight": weight, "bias": (self.out_channels,)} if self.bias else {
            "weight": weight}

    def init(self, key: object) -> dict:
        shape = (self.out_channels, self.in_channels // self.groups) + self.kernel_size
        fan_in = init.fans(shape)[0]
        return _uniform_init(key, shape, fan_in, self.bias, (self.out_channels,), self.dtype)

    def __call__(self, params: dict, x: object) -> object:
        return F.conv2d(x, params["weight"], params.get("bias"), self.stride, self.padding,
                        self.dilation, self.groups)


class ConvTranspose2d(Module):
    """Transposed 2-d convolution (the gradient of Conv2d with respect to its input), as
    torch.nn.ConvTranspose2d; weight [in, out/groups, kh, kw], bias [out].

    Output size (in - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1.
    Call with `output_size=(h, w)` to pick `output_padding` from the size you want, as
    PyTorch's forward allows. Initialised as PyTorch, whose fan_in comes from the
    weight's dimension 1: out_channels/groups * kh * kw (a quirk kept for parity).

    >>> import pyasg, numpy as np
    >>> up = ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1)
    >>> params = up.init(pyasg.random.key(0))
    >>> params["weight"].shape, up(params, np.zeros((1, 8, 5, 5), np.float32)).shape
    ((8, 4, 3, 3), (1, 4, 10, 10))
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | Sequence[int],
                 stride: int | Sequence[int] = 1, padding: int | Sequence[int] = 0,
                 output_padding: int | Sequence[int] = 0, groups: int = 1, bias: bool = True,
                 dilation: int | Sequence[int] = 1, padding_mode: str = "zeros",
                 dtype: str = "float32") -> None:
        kind = "ConvTranspose2d"
        self.in_channels, self.out_channels, self.groups = _channels(
            kind, in_channels, out_channels, groups)
        _check_padding_mode(kind, padding_mode)
        self.kernel_size, self.stride, self.dilation = _window(kind, kernel_size, stride,
                                                               dilation)
        self.padding = _pair(padding, kind, "padding", "[0, inf)")
        self.output_padding = _pair(output_padding, kind, "output_padding", "[0, inf)")
        if any(p >= max(s, d) for p, s, d in zip(self.output_padding, self.stride,
                                                 self.dilation)):
            raise checks.ArgumentError(f"{kind}: output_padding {self.output_padding} must be "
                                       f"smaller than stride {self.stride} or dilation "
                                       f"{self.dilation} (as PyTorch)")
        self.bias = checks.flag(bias, kind, "bias")
        self.padding_mode, self.dtype = padding_mode, checks.float_dtype(dtype, kind)

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        weight = (self.in_channels, self.out_channels // self.groups) + self.kernel_size
        return {"weight": weight, "bias": (self.out_channels,)} if self.bias else {
            "weight": weight}

    def init(self, key: object) -> dict:
        shape = (self.in_channels, self.out_channels // self.groups) + self.kernel_size
        fan_in = init.fans(shape)[0]  # shape[1] * kh * kw, exactly as PyTorch
        return _uniform_init(key, shape, fan_in, self.bias, (self.out_channels,), self.dtype)

    def __call__(self, params: dict, x: object,
                 output_size: Sequence[int] | None = None) -> object:
        output_padding = self.output_padding
        if output_size is not None:
            hw = F.type_of(x).shape[-2:]
            wanted = tuple(int(s) for s in output_size)[-2:]
            smallest = tuple((n - 1) * s - 2 * p + d * (k - 1) + 1 for n, s, p, d, k in
                             zip(hw, self.stride, self.padding, self.dilation,
                                 self.kernel_size))
            output_padding = tuple(w - m for w, m in zip(wanted, smallest))
            if len(output_padding) != 2 or min(output_padding) < 0:
                raise PyasgError(f"ConvTranspose2d: output_size {tuple(output_size)} is "
                                 f"smaller than the smallest output {smallest}")
        # conv_transpose2d checks that output_padding < max(stride, dilation)
        return F.conv_transpose2d(x, params["weight"], params.get("bias"), self.stride,
                                  self.padding, output_padding, self.groups, self.dilation)


class MaxPool2d(Module):
    """Max pooling, as torch.nn.MaxPool2d (stride defaults to kernel_size; padding counts
    as -inf). `ceil_mode=True` is not supported (it raises).

    >>> import numpy as np
    >>> MaxPool2d(2)({}, np.arange(16.0).reshape(1, 1, 4, 4)).tolist()
    [[[[5.0, 7.0], [13.0, 15.0]]]]
    """

    def __init__(self, kernel_size: int | Sequence[int], stride: int | Sequence[int] | None = None,
                 padding: int | Sequence[int] = 0, dilation: int | Sequence[int] = 1,
                 return_indices: bool = False, ceil_mode: bool = False) -> None:
        if checks.flag(ceil_mode, "MaxPool2d", "ceil_mode"):
            raise PyasgError("MaxPool2d: ceil_mode=True is not supported")
        self.kernel_size, self.stride, self.dilation = _window("MaxPool2d", kernel_size, stride,
                                                               dilation)
        self.padding = _pair(padding, "MaxPool2d", "padding", "[0, inf)")
        self.return_indices = checks.flag(return_indices, "MaxPool2d", "return_indices")
        self.ceil_mode = False

    def __call__(self, params: dict, x: object) -> object:
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation,
                            self.ceil_mode, self.return_indices)


class AvgPool2d(Module):
    """Average pooling, as torch.nn.AvgPool2d; `count_include_pad` (default True, as
    PyTorch) decides whether padded zeros count in each window's divisor.
    `ceil_mode=True` is not supported (it raises).

    >>> import numpy as np
    >>> x = np.ones((1, 1, 2, 2))  # each 2x2 window holds one pixel and three padded zeros
    >>> AvgPool2d(2, padding=1)({}, x).tolist()
    [[[[0.25, 0.25], [0.25, 0.25]]]]
    >>> AvgPool2d(2, padding=1, count_include_pad=False)({}, x).tolist()
    [[[[1.0, 1.0], [1.0, 1.0]]]]
    """

    def __init__(self, kernel_size: int | Sequence[int], stride: int | Sequence[int] | None = None,
                 padding: int | Sequence[int] = 0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override: int | None = None) -> None:
        if checks.flag(ceil_mode, "AvgPool2d", "ceil_mode"):
            raise PyasgError("AvgPool2d: ceil_mode=True is not supported")
        self.kernel_size, self.stride, _ = _window("AvgPool2d", kernel_size, stride, 1)
        self.padding = _pair(padding, "AvgPool2d", "padding", "[0, inf)")
        self.ceil_mode = False
        self.count_include_pad = checks.flag(count_include_pad, "AvgPool2d",
                                             "count_include_pad")
        self.divisor_override = checks.size(divisor_override, "AvgPool2d", "divisor_override",
                                            "[1, inf)", none=True)

    def __call__(self, params: dict, x: object) -> object:
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed output size, as torch.nn.AdaptiveAvgPool2d (PyTorch's
    windows [floor(i*H/out), ceil((i+1)*H/out)); None keeps that dimension).

    >>> import numpy as np
    >>> AdaptiveAvgPool2d((2, None))({}, np.zeros((1, 3, 7, 5))).shape
    (1, 3, 2, 5)
    """

    def __init__(self, output_size: int | Sequence[int | None]) -> None:
        kind = "AdaptiveAvgPool2d"
        if isinstance(output_size, (list, tuple)):
            if len(output_size) != 2:
                raise checks.ArgumentError(f"{kind}: output_size must be an int or a pair, "
                                           f"got {checks.quote(output_size)}")
            output_size = tuple(checks.size(s, kind, f"output_size[{i}]", "[1, inf)",
                                            none=True) for i, s in enumerate(output_size))
        else:
            output_size = checks.size(output_size, kind, "output_size", "[1, inf)")
        self.output_size = output_size

    def __call__(self, params: dict, x: object) -> object:
        return F.adaptive_avg_pool2d(x, self.output_size)


class GlobalAvgPool2d(Module):
    """The mean of each channel over H and W: [N, C, H, W] -> [N, C, 1, 1].

    The same as AdaptiveAvgPool2d(1) (PyTorch has no GlobalAvgPool2d; that is what
    PyTorch models write). The size-1 axes are kept, as PyTorch's; follow with
    Flatten() for [N, C].

    >>> import numpy as np
    >>> GlobalAvgPool2d()({}, np.arange(8.0).reshape(1, 2, 2, 2)).tolist()
    [[[[1.5]], [[5.5]]]]
    """

    def __call__(self, params: dict, x: object) -> object:
        if F.type_of(x).ndim not in (3, 4):
            raise PyasgError(f"GlobalAvgPool2d: input must be [N, C, H, W] or [C, H, W], "
                             f"got {F.type_of(x)!r}")
        return F.mean(x, axis=(-2, -1), keepdims=True)


register_roles("Conv2d", {
    "weight": "convolution kernel [out, in/groups, kh, kw]: one learned filter per "
              "output channel",
    "bias": "bias: a learned offset per output channel",
})
register_roles("ConvTranspose2d", {
    "weight": "transposed-convolution kernel [in, out/groups, kh, kw]: learned upsampling "
              "filters",
    "bias": "bias: a learned offset per output channel",
})
