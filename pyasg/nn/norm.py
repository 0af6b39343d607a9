"""Batch normalisation over any channel axis, with running statistics kept as state.

Parameters are PyTorch's (`weight` γ, `bias` β, each [C]); the running statistics
are state, not parameters (`running_mean`, `running_var`, `num_batches_tracked`,
PyTorch's buffer names), so a torch `state_dict` splits into the two by name.

>>> import numpy as np
>>> bn = BatchNorm(3, eps=0.0, momentum=0.5, dtype="float64")
>>> params, state = bn.init(None), bn.init_state()
>>> y, state = bn(params, np.array([[1.0, 2, 3], [4, 5, 6]]), state=state, training=True)
>>> y.tolist()
[[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]]
>>> state["running_mean"].tolist()  # 0.5 * 0 + 0.5 * [2.5, 3.5, 4.5]
[1.25, 1.75, 2.25]
>>> state["running_var"].tolist()  # 0.5 * 1 + 0.5 * 4.5 (unbiased: 2/1 * 2.25)
[2.75, 2.75, 2.75]
"""

from __future__ import annotations

import math

import numpy as np

from pyasg.array import functional as F
from pyasg.errors import PyasgError, ShapeError
from pyasg.nn import checks, init
from pyasg.nn.module import Module, register_roles
from pyasg.nn.params import check_state


class BatchNorm(Module):
    """Normalise each channel by its statistics over every other axis, then scale by
    `weight` (γ) and shift by `bias` (β), as torch.nn.BatchNorm1d/2d/3d.

    `axis` is the channel axis: 1 (PyTorch's layout, the default) for [N, C],
    [N, C, L] and [N, C, H, W]; -1 for channels-last input such as [N, L, C].
    PyTorch has no such argument (it always uses axis 1).

    Call as `y, new_state = bn(params, x, state=state, training=…)`:

    - training: normalise with the batch mean and the biased batch variance, and
      return running statistics updated as PyTorch does, new = (1 - m) old + m batch,
      with the UNBIASED batch variance (n / (n - 1) times the biased one). With
      `momentum=None` m is 1 / num_batches_tracked (a cumulative average, as PyTorch).
      The updates carry no gradient (PyTorch's buffers have none).
    - eval (`training=False`): normalise with the running statistics, so any batch
      size works, 1 included; the state comes back unchanged.

    With `track_running_stats=False` the layer keeps no state, always uses batch
    statistics (as PyTorch), is not `stateful`, and returns `y` alone.

    >>> import numpy as np
    >>> bn = BatchNorm(2, axis=-1)  # channels last
    >>> y, _ = bn(bn.init(None), np.ones((1, 5, 2), np.float32), state=bn.init_state(),
    ...           training=False)
    >>> y.shape
    (1, 5, 2)
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, axis: int = 1,
                 dtype: str = "float32") -> None:
        self.num_features = checks.size(num_features, "BatchNorm", "num_features")
        self.eps = checks.real(eps, "BatchNorm", "eps", "[0, inf)")
        # a Python float, kept as given: 1 - momentum is then taken in float64
        self.momentum = checks.real(momentum, "BatchNorm", "momentum", "[0, 1]", none=True)
        self.affine = checks.flag(affine, "BatchNorm", "affine")
        self.track_running_stats = checks.flag(track_running_stats, "BatchNorm",
                                               "track_running_stats")
        self.axis = checks.integer(axis, "BatchNorm", "axis")
        self.dtype = checks.float_dtype(dtype, "BatchNorm")
        # an instance attribute on purpose: without running statistics there is no state
        self.stateful = self.track_running_stats

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        c = (self.num_features,)
        return {"weight": c, "bias": c} if self.affine else {}

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        if not self.track_running_stats:
            return {}
        c = (self.num_features,)
        return {"running_mean": c, "running_var": c, "num_batches_tracked": ()}

    def init(self, key: object) -> dict:
        """weight ones and bias zeros, as PyTorch (no randomness: `key` is unused)."""
        if not self.affine:
            return {}
        return {"weight": init.ones((self.num_features,), self.dtype),
                "bias": init.zeros((self.num_features,), self.dtype)}

    def init_state(self) -> dict:
        """running_mean zeros, running_var ones, num_batches_tracked int64 0 (PyTorch)."""
        if not self.track_running_stats:
            return {}
        return {"running_mean": init.zeros((self.num_features,), self.dtype),
                "running_var": init.ones((self.num_features,), self.dtype),
                "num_batches_tracked": np.zeros((), np.int64)}

    def _channel_axis(self, ndim: int) -> int:
        if not -ndim <= self.axis < ndim:
            raise ShapeError(f"BatchNorm axis {self.axis} is out of range for a "
                             f"{ndim}-d input")
        return self.axis % ndim

    def __call__(self, params: dict, x: object, state: dict | None = None,
                 training: bool = True) -> object:
        t = F.type_of(x)
        axis = self._channel_axis(t.ndim)
        if t.shape[axis] != self.num_features:
            raise ShapeError(f"BatchNorm({self.num_features}) got input {t!r} with "
                             f"{t.shape[axis]} channels on axis {self.axis}")
        if self.track_running_stats and state is None:
            raise PyasgError("BatchNorm with running statistics needs state=… "
                             "(from layer.init_state()) and returns (y, new_state)")
        if self.track_running_stats:
            check_state(self, state)
        reduce_axes = tuple(a for a in range(t.ndim) if a != axis)
        per_channel = tuple(-1 if a == axis else 1 for a in range(t.ndim))  # [C] -> broadcast

        def channel(v: object) -> object:
            return F.reshape(v, per_channel)

        if training or not self.track_running_stats:
            n = math.prod(t.shape[a] for a in reduce_axes)
            if n < 2 and training:
                # PyTorch refuses too: one value per channel has no variance to normalise by
                raise ShapeError(f"BatchNorm in training mode needs more than one value per "
                                 f"channel, got input {t!r}")
            mean = F.mean(x, reduce_axes, keepdims=True)
            centred = F.sub(x, mean)
            var = F.mean(F.mul(centred, centred), reduce_axes, keepdims=True)  # biased
        else:
            mean, var = channel(state["running_mean"]), channel(state["running_var"])
            centred = F.sub(x, mean)
        y = F.mul(centred, F.rsqrt(F.add(var, self.eps)))
        if self.affine:
            y = F.add(F.mul(y, channel(params["weight"])), channel(params["bias"]))
        if not self.track_running_stats:
            return y
        if not training:
            return y, state
        return y, self._updated(state, F.reshape(mean, (-1,)), F.reshape(var, (-1,)), n)

    def _updated(self, state: dict, mean: object, var: object, n: int) -> dict:
        count = F.add(state["num_batches_tracked"], np.int64(1))
        if self.momentum is None:  # cumulative moving average, PyTorch's momentum=None
            m: object = F.div(1.0, F.astype(count, F.type_of(mean).dtype))
            keep: object = F.sub(1.0, m)
        else:  # Python floats: F.sub(1.0, 0.1) would be a float32 array, rounding 0.9
            m, keep = self.momentum, 1.0 - self.momentum
        unbiased = F.mul(var, n / (n - 1))

        def blend(old: object, batch: object) -> object:
            # statistics are buffers: no gradient flows into them, as in PyTorch
            new = F.add(F.mul(old, keep), F.mul(F.stop_gradient(batch), m))
            return F.astype(new, F.type_of(old).dtype)  # state keeps its dtype: no retrace

        return {"running_mean": blend(state["running_mean"], mean),
                "running_var": blend(state["running_var"], unbiased),
                "num_batches_tracked": count}


#: PyTorch's names; the channel axis is 1 for all of them, as in PyTorch.
BatchNorm1d = BatchNorm
BatchNorm2d = BatchNorm

register_roles("BatchNorm", {
    "weight": "scale γ: per-channel gain after normalising with batch statistics",
    "bias": "shift β: per-channel offset after normalising with batch statistics",
    "running_mean": "running mean: per-channel mean used in eval mode (state, not trained)",
    "running_var": "running variance: per-channel variance used in eval mode (state, "
                   "not trained)",
    "num_batches_tracked": "how many training batches updated the running statistics "
                           "(state)",
})
