"""Positional information for attention: sinusoidal, learned, rotary (RoPE) and ALiBi.

Sequences are the second-to-last axis: x is [..., T, dim] (batch-first [B, T, E],
or per head [B, H, T, head_dim] for RoPE). An `offset` places the T positions at
offset..offset+T-1, for decoding one step at a time with a key/value cache. A
Python int offset is checked against max_len when tracing; a traced integer
scalar also works (no retrace per step) but cannot be checked until it runs.

>>> import pyasg, numpy as np
>>> pe = SinusoidalPositionalEncoding(dim=4, max_len=16)
>>> pe({}, np.zeros((2, 3, 4)))[0, 1].round(4).tolist()   # sin(1), cos(1), sin(.01), …
[0.8415, 0.5403, 0.01, 1.0]
>>> rope = RoPE(head_dim=4, max_len=16)
>>> rope.rotate(np.ones((1, 2, 5, 4), np.float32), offset=3).shape
(1, 2, 5, 4)
>>> ALiBi(4).slopes.tolist()
[0.25, 0.0625, 0.015625, 0.00390625]
"""

from __future__ import annotations

import numpy as np

from pyasg.array import functional as F
from pyasg.errors import PyasgError, ShapeError
from pyasg.nn import checks, init
from pyasg.nn.module import Module, register_roles


def _rows(table: object, T: int, offset: object, who: str) -> object:
    """Rows offset..offset+T-1 of `table` [max_len, dim] (numpy or traced)."""
    max_len = F.type_of(table).shape[0]
    if isinstance(offset, np.ndarray) and offset.shape == () and offset.dtype.kind in "iu":
        offset = int(offset)  # a concrete number: check it now
    if isinstance(offset, (int, np.integer)):
        offset = int(offset)
        if offset < 0 or offset + T > max_len:
            raise ShapeError(f"{who}: positions {offset}..{offset + T - 1} do not fit in "
                             f"max_len={max_len} (sequence length {T}, offset {offset})")
        return table[offset:offset + T]
    t = F.type_of(offset)
    if t.shape != () or t.dtype not in ("int32", "int64", "uint32"):
        raise ShapeError(f"{who}: offset must be an int or an integer scalar, got {t!r}")
    if T > max_len:
        raise ShapeError(f"{who}: sequence length {T} exceeds max_len={max_len}")
    # a traced offset: gather the rows (no retrace per decoding step)
    return F.take(table, F.add(offset, np.arange(T, dtype=t.dtype)), axis=0)


def _sequence_length(x: object, dim: int, who: str) -> int:
    t = F.type_of(x)
    if t.ndim < 2 or t.shape[-1] != dim:
        raise ShapeError(f"{who}: input must be [..., T, {dim}], got {t!r}")
    return t.shape[-2]


class SinusoidalPositionalEncoding(Module):
    """x + PE[offset:offset+T], with Vaswani et al.'s table (no parameters):

        PE[pos, 2i] = sin(pos / base^(2i/dim)),  PE[pos, 2i+1] = cos(pos / base^(2i/dim))

    As the PositionalEncoding of PyTorch's tutorial (max_len=5000), but batch-first
    ([..., T, dim]) and without its dropout: put a `Dropout` after it if you want one.
    The table is computed in float64 and cast to x's dtype. An odd `dim` keeps the
    sin column of its last pair.

    >>> import numpy as np
    >>> SinusoidalPositionalEncoding(2, max_len=8)({}, np.zeros((1, 2), np.float32)).tolist()
    [[0.0, 1.0]]
    """

    def __init__(self, dim: int, max_len: int = 5000, base: float = 10000.0) -> None:
        kind = "SinusoidalPositionalEncoding"
        self.dim = checks.size(dim, kind, "dim", "[1, inf)")
        self.max_len = checks.size(max_len, kind, "max_len")
        self.base = checks.real(base, kind, "base", "(0, inf)")
        self._table = checks.allocate(self._make_table, (self.max_len, self.dim), "float64",
                                      kind)

    def _make_table(self) -> np.ndarray:
        pos = np.arange(self.max_len, dtype=np.float64)[:, None]
        freq = self.base ** (-np.arange(0, self.dim, 2, dtype=np.float64) / self.dim)
        table = np.zeros((self.max_len, self.dim))
        table[:, 0::2] = np.sin(pos * freq)
        table[:, 1::2] = np.cos(pos * freq)[:, : self.dim // 2]
        return table

    @property
    def table(self) -> np.ndarray:
        """PE, [max_len, dim] float64."""
        return self._table

    def __call__(self, params: dict, x: object, offset: object = 0) -> object:
        T = _sequence_length(x, self.dim, self.kind)
        rows = _rows(self._table, T, offset, self.kind)
        return F.add(x, F.astype(rows, F.type_of(x).dtype))


class LearnedPositionalEmbedding(Module):
    """x + weight[offset:offset+T]: one learned vector per position, weight [max_len, dim].

    weight is drawn from N(0, std²) with std=0.02 (GPT-2 and BERT's choice): PyTorch's
    nn.Embedding, which people use for this, draws N(0, 1), which swamps token
    embeddings of the usual scale; pass std=1.0 to get PyTorch's.

    >>> import pyasg, numpy as np
    >>> pos = LearnedPositionalEmbedding(max_len=8, dim=4)
    >>> params = pos.init(pyasg.random.key(0))
    >>> params["weight"].shape, pos(params, np.zeros((2, 5, 4), np.float32)).shape
    ((8, 4), (2, 5, 4))
    """

    def __init__(self, max_len: int, dim: int, std: float = 0.02,
                 dtype: str = "float32") -> None:
        kind = "LearnedPositionalEmbedding"
        self.max_len = checks.size(max_len, kind, "max_len")
        self.dim = checks.size(dim, kind, "dim")
        self.std = checks.real(std, kind, "std", "[0, inf)")
        self.dtype = checks.float_dtype(dtype, kind)

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"weight": (self.max_len, self.dim)}

    def init(self, key: object) -> dict:
        return {"weight": init.normal(key, (self.max_len, self.dim), 0.0, self.std, self.dtype)}

    def __call__(self, params: dict, x: object, offset: object = 0) -> object:
        T = _sequence_length(x, self.dim, self.kind)
        return F.add(x, _rows(params["weight"], T, offset, self.kind))


class RoPE(Module):
    """Rotary position embedding (Su et al.), split-half convention (as HF LLaMA/GPT-NeoX):

        x_rot = x * cos(pos θ) + rotate_half(x) * sin(pos θ),  rotate_half(x) = [-x2, x1]

    where x1, x2 are the first and second halves of the last axis and
    θ_i = base^(-2i/head_dim), repeated for both halves. So feature i is paired with
    feature i + head_dim/2 (not with i + 1, the interleaved convention of the paper
    and torchtune). q·k after rotation depends on the positions only through their
    difference. No parameters; the tables are computed in float64 and cast to x's
    dtype. Any T with offset + T <= max_len.

    >>> import numpy as np
    >>> x = np.array([[1.0, 0.0]])                 # one position, head_dim 2
    >>> RoPE(2, max_len=4).rotate(x, offset=1).round(4).tolist()   # angle 1 rad
    [[0.5403, 0.8415]]
    """

    def __init__(self, head_dim: int, max_len: int = 4096, base: float = 10000.0) -> None:
        self.head_dim = checks.size(head_dim, "RoPE", "head_dim", "[1, inf)")
        if self.head_dim % 2:
            raise PyasgError(f"RoPE: head_dim must be positive and even, got {head_dim}")
        self.max_len = checks.size(max_len, "RoPE", "max_len")
        self.base = checks.real(base, "RoPE", "base", "(0, inf)")
        # three float64 tables of [max_len, head_dim] live at once while they are made
        self._cos, self._sin = checks.allocate(self._make_tables,
                                               (3, self.max_len, self.head_dim), "float64",
                                               "RoPE")

    def _make_tables(self) -> tuple[np.ndarray, np.ndarray]:
        inv_freq = self.base ** (-np.arange(0, self.head_dim, 2, dtype=np.float64)
                                 / self.head_dim)
        angles = np.arange(self.max_len, dtype=np.float64)[:, None] * inv_freq
        angles = np.concatenate([angles, angles], axis=-1)  # [max_len, head_dim]
        return np.cos(angles), np.sin(angles)

    def rotate(self, x: object, offset: object = 0) -> object:
        """x [..., T, head_dim] rotated as at positions offset..offset+T-1."""
        T = _sequence_length(x, self.head_dim, self.kind)
        dtype = F.type_of(x).dtype
        cos = F.astype(_rows(self._cos, T, offset, self.kind), dtype)
        sin = F.astype(_rows(self._sin, T, offset, self.kind), dtype)
        half = self.head_dim // 2
        x1, x2 = x[..., :half], x[..., half:]
        rotated = F.concatenate([F.neg(x2), x1], axis=-1)
        return F.add(F.mul(x, cos), F.mul(rotated, sin))

    def __call__(self, params: dict, x: object, offset: object = 0) -> object:
        return self.rotate(x, offset)


def alibi_slopes(num_heads: int) -> np.ndarray:
    """ALiBi's head slopes (Press et al.), by the reference implementation's rule.

    For n a power of two: 2^(-8/n), 2^(-16/n), …, 2^(-8). Otherwise the slopes of the
    largest power of two p < n, followed by every other slope of 2p, the first n - p
    of them (2^(-8/2p·1), 2^(-8/2p·3), …): the new slopes interleave the old ones.

    >>> alibi_slopes(3).tolist()
    [0.0625, 0.00390625, 0.25]
    """
    if checks.size(num_heads, "ALiBi", "num_heads") == 0:
        raise PyasgError(f"ALiBi needs at least one head, got {num_heads}")
    return checks.allocate(lambda: _slopes(int(num_heads)), (int(num_heads),), "float64",
                           "ALiBi")


def _slopes(n: int) -> np.ndarray:
    p = 1 << (n.bit_length() - 1)  # the largest power of two <= n (exact, unlike log2)
    # numpy's float64 power gives Python's 2.0 ** x bit for bit here
    slopes = 2.0 ** (-8.0 * np.arange(1, p + 1) / p)
    extra = 2.0 ** (-8.0 * np.arange(1, 2 * (n - p), 2) / (2 * p))
    return np.concatenate([slopes, extra])


class ALiBi(Module):
    """Attention with linear biases: head h adds -slope_h * distance to the scores.

    `bias(T, S, causal)` is [H, T, S]: query i sits at position i + S - T (the last T
    of S positions, as `causal_mask`). Non-causal: -slope * |pos_i - j| (the symmetric
    form); causal: -slope * (pos_i - j) for j <= pos_i and -inf for the future. Pass it
    as MultiHeadAttention's `position_bias` (and use no positional encoding). No
    parameters. The reference implementation adds slope * j, which differs from the
    causal form only by a constant per row, which softmax ignores.

    >>> ALiBi(2).bias(2, causal=True).tolist()
    [[[0.0, -inf], [-0.0625, 0.0]], [[0.0, -inf], [-0.00390625, 0.0]]]
    """

    def __init__(self, num_heads: int) -> None:
        self.slopes = alibi_slopes(num_heads)
        self.num_heads = len(self.slopes)

    def bias(self, T: int, S: int | None = None, causal: bool = False,
             dtype: str = "float32") -> np.ndarray:
        """The [H, T, S] bias (S defaults to T)."""
        S = T if S is None else int(S)
        distance = (np.arange(T)[:, None] + (S - T)) - np.arange(S)[None, :]  # pos_i - j
        if causal:
            bias = -self.slopes[:, None, None] * np.where(distance >= 0, distance, 0)
            bias = np.where(distance >= 0, bias, -np.inf)
        else:
            bias = -self.slopes[:, None, None] * np.abs(distance)
        return (bias + 0.0).astype(dtype)  # + 0.0: no -0.0 on the diagonal

    def __call__(self, params: dict, scores: object, causal: bool = False) -> object:
        """scores [..., H, T, S] + bias(T, S, causal)."""
        t = F.type_of(scores)
        if t.ndim < 3 or t.shape[-3] != self.num_heads:
            raise ShapeError(f"ALiBi({self.num_heads}): scores must be [..., "
                             f"{self.num_heads}, T, S], got {t!r}")
        return F.add(scores, self.bias(t.shape[-2], t.shape[-1], causal, t.dtype))


register_roles("LearnedPositionalEmbedding", {
    "weight": "position table [max_len, dim]: a learned vector added at each position, "
              "so the model can tell order"})
