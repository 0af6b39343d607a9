"""Matmul tiles: a GEMM workgroup's block, the device limits it must fit, a product's candidates.

A `Tile` is the shape of one workgroup's work (a tm x tn block of the output, K
stepped by tk, each thread an rm x rn register block, one or two shared-memory
buffers); a `Plan` is how one product runs (a tile, K split over several workgroups
or not, the order in which threads read a scalar operand). `Limits` are what a
device lets a workgroup use (WebGPU guarantees 16 KiB of workgroup memory and 256
threads; NVIDIA offers 48 KiB and 1024, lavapipe 32 KiB and 1024): a tile that does
not fit is never a candidate.

`default_plan` is the rule (what the kernel did before tuning, measured on an H200:
see `LARGE`): a 128 x 128 tile when M and N are both >= 128, else 64 x 64, else
32 x 32; K split when the tiles are too few workgroups (`choose_splits`), unless a
smaller tile runs the product well in one pass (`unsplit_tile`).

`candidates` lists the plans worth timing for a product, the rule's first, so a tuner
that measures them can never pick something slower than the rule on the device where
it runs: double-buffered tiles from `CATALOGUE` that fit the device and are not mostly
padding, the ones that give enough workgroups first and, among them, the largest
(most reuse of each loaded element); where K is long and the tiles few (weight
gradients X^T @ dY with K = B*T), K splits as well (`split_plans`); batched attention
products (K or N the head size) their own tiles first (`attention_tiles`). `orders` gives the
read orders worth trying for an operand read through a view (a transposed weight is
contiguous along K, not along its rows).

>>> p = Problem.of(TensorType((2048, 256)), TensorType((256, 1024)))
>>> default_plan(p).name
'128x128x16/8x8'
>>> [c.name for c in candidates(p, Limits(storage=16384, threads=256))][:3]
['128x128x16/8x8', '128x128x8/8x8/2buf', '128x64x8/8x8/2buf']
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

from pyasg.asg.types import TensorType
from pyasg.kernels.wgpu.codegen import wgsl_type

#: Split K while the output tiles are fewer workgroups than this ...
TARGET_GROUPS = 256
#: ... into at most this many splits of at least MIN_SPLIT_K each,
MAX_SPLITS = 64
MIN_SPLIT_K = 256
#: ... whose partial products take at most this many bytes.
SPLIT_BYTES = 64 << 20
#: No split where a default tile gives at least this many workgroups whose threads each
#: do at most this many multiply-adds: the second dispatch would cost more than the
#: extra parallelism saves (estimates: a dispatch boundary costs a few microseconds).
FEW_GROUPS = 16
MAX_THREAD_MACS = 16384
#: Candidates: a tile must fill at least this fraction of its grid with real outputs,
MIN_FILL = 0.6
#: ... is tried after the others when it gives fewer workgroups than this,
MIN_GROUPS = 64
#: ... is not tried when it gives more than FINER times the workgroups of the largest,
FINER = 4
#: ... and a product gets at most this many (the rule's plan included).
MAX_CANDIDATES = 8
#: Bytes per element: every GPU dtype is 4 bytes (see `array.GPU_DTYPES`).
ELEMENT = 4


@dataclass(frozen=True)
class Limits:
    """What one workgroup may use on a device: bytes of workgroup memory, threads.

    >>> Limits.of({"max-compute-workgroup-storage-size": 49152,
    ...            "max-compute-invocations-per-workgroup": 1024,
    ...            "max-compute-workgroup-size-x": 1024})
    Limits(storage=49152, threads=1024)
    >>> Limits.of({})  # WebGPU's defaults, which every device offers
    Limits(storage=16384, threads=256)
    """

    storage: int = 16384
    threads: int = 256

    @classmethod
    def of(cls, limits: Mapping[str, int]) -> Limits:
        """The limits in a device's `limits` mapping (WebGPU's names; defaults where
        absent). Threads are the smaller of the invocations and the x size: the GEMM's
        workgroups are one-dimensional."""
        return cls(int(limits.get("max-compute-workgroup-storage-size", cls.storage)),
                   int(min(limits.get("max-compute-invocations-per-workgroup", cls.threads),
                           limits.get("max-compute-workgroup-size-x", cls.threads))))


@dataclass(frozen=True)
class Tile:
    """A workgroup computes a tm x tn output tile stepping K by tk; each thread rm x rn.

    `buffers`: 1, the A and B tiles are loaded, then multiplied (two barriers a step);
    2, the next K step is loaded into registers while the current one is multiplied,
    then stored into the other half of the workgroup memory (one barrier a step).
    `unroll`: the loop over the k of a tile is unrolled in the generated source.

    >>> t = Tile(128, 128, 16, 8, 8, buffers=2)
    >>> t.threads, t.storage, t.fits(Limits()), t.fits(Limits(storage=49152))
    (256, 32768, False, True)
    """

    tm: int
    tn: int
    tk: int
    rm: int
    rn: int
    unroll: bool = True
    buffers: int = 1

    def __post_init__(self) -> None:
        sizes = (self.tm, self.tn, self.tk, self.rm, self.rn)
        if min(sizes) < 1 or self.tm % self.rm or self.tn % self.rn \
                or self.buffers not in (1, 2):
            raise ValueError(f"bad tile {self}: positive sizes, rm | tm, rn | tn, "
                             f"1 or 2 buffers")

    @property
    def threads(self) -> int:
        return (self.tm // self.rm) * (self.tn // self.rn)

    @property
    def storage(self) -> int:
        """Bytes of workgroup memory: the A and B tiles, once per buffer."""
        return ELEMENT * self.tk * (self.tm + self.tn) * self.buffers

    @property
    def vm(self) -> int:
        """Vector width of the A tile's rows (the As reads)."""
        return width(self.rm)

    @property
    def vn(self) -> int:
        """Vector width of the accumulators and of the B tile."""
        return width(self.rn)

    def fits(self, limits: Limits) -> bool:
        """Whether a device with `limits` can run the tile."""
        return self.threads <= limits.threads and self.storage <= limits.storage

    @property
    def name(self) -> str:
        return (f"{self.tm}x{self.tn}x{self.tk}/{self.rm}x{self.rn}"
                + ("/2buf" if self.buffers == 2 else "") + ("" if self.unroll else "/loop"))


def width(n: int) -> int:
    """The widest WGSL vector (4, 2 or 1 lanes) that divides `n`."""
    return 4 if n % 4 == 0 else 2 if n % 2 == 0 else 1


# The rule's tiles, measured on an H200 through Vulkan, 4096^3 float32, per call
# including the executable's buffer copies: LARGE 21.7 TFLOP/s (19.6 with tk=8, 18.8
# with the k loop left to the driver), MEDIUM 18.2, SMALL 11.2. They fit WebGPU's
# default limits, so the rule runs on any device.
SMALL = Tile(tm=32, tn=32, tk=16, rm=2, rn=2)
MEDIUM = Tile(tm=64, tn=64, tk=16, rm=4, rn=4)
LARGE = Tile(tm=128, tn=128, tk=16, rm=8, rn=8)  # 16 KiB of tiles

#: The tuner's tiles, double-buffered. All fit 32 KiB (lavapipe's limit, so CI runs
#: every one); 8 x 8 register blocks where the tile allows (16 vec4 accumulators: the
#: most that stayed in registers on the H200), 512 threads for the device that has them.
CATALOGUE = (
    Tile(128, 128, 16, 8, 8, buffers=2),  # 32 KiB, 256 threads
    Tile(128, 128, 8, 8, 8, buffers=2),   # 16 KiB
    Tile(128, 128, 16, 4, 8, buffers=2),  # 32 KiB, 512 threads of 4 x 8
    Tile(128, 64, 16, 8, 8, buffers=2),   # 24 KiB, 128 threads
    Tile(64, 128, 16, 8, 8, buffers=2),
    Tile(128, 64, 8, 8, 8, buffers=2),    # 12 KiB
    Tile(64, 128, 8, 8, 8, buffers=2),
    Tile(64, 64, 16, 4, 4, buffers=2),    # 16 KiB, 256 threads
    Tile(64, 64, 32, 4, 4, buffers=2),    # 32 KiB: K = 64 (attention scores) in 2 steps
    Tile(32, 64, 16, 4, 4, buffers=2),    # 12 KiB, 128 threads
    Tile(64, 32, 16, 4, 4, buffers=2),
    Tile(32, 32, 16, 2, 2, buffers=2),    # 8 KiB, 256 threads
)
#: Batched attention's own: scores-like products (q @ k^T, dO @ v^T: K = the head
#: size, 64, a T x T output) take all of K in one or two steps; mixed ones (p @ v,
#: dS @ k: N = 64, K = T) a tile as narrow as N with 256 threads.
SCORES = (
    Tile(64, 64, 64, 4, 4),               # 32 KiB: K = 64 in one step, one barrier pair
    Tile(128, 128, 32, 8, 8),             # 32 KiB: K = 64 in two
    Tile(64, 64, 32, 4, 4, buffers=2),
)
MIXED = (
    Tile(128, 64, 16, 8, 4, buffers=2),   # 24 KiB, 256 threads of 8 x 4
    Tile(64, 64, 32, 4, 4, buffers=2),
)
ATTENTION = tuple(dict.fromkeys(SCORES + MIXED))


@dataclass(frozen=True)
class Problem:
    """One matmul node: batch shapes (output, A, B), sizes, and the element type."""

    batch: tuple[int, ...]
    a_batch: tuple[int, ...]
    b_batch: tuple[int, ...]
    m: int
    n: int
    k: int
    ty: str

    @classmethod
    def of(cls, a: TensorType, b: TensorType) -> Problem:
        """The product a @ b (numpy's semantics: a 1-d a is a row, a 1-d b a column).

        >>> Problem.of(TensorType((3, 4)), TensorType((2, 4, 5)))
        Problem(batch=(2,), a_batch=(), b_batch=(2,), m=3, n=5, k=4, ty='f32')
        """
        sa = (1,) + a.shape if a.ndim == 1 else a.shape
        sb = b.shape + (1,) if b.ndim == 1 else b.shape
        batch = tuple(x if y == 1 else y for x, y in _aligned(sa[:-2], sb[:-2]))
        return cls(batch, sa[:-2], sb[:-2], sa[-2], sb[-1], sa[-1], wgsl_type(a))

    @property
    def batches(self) -> int:
        return math.prod(self.batch)

    @property
    def flops(self) -> int:
        """2 per multiply-add."""
        return 2 * self.m * self.n * self.k * self.batches

    def groups(self, t: Tile) -> int:
        """Workgroups of tile `t` over every batch (one K split)."""
        return -(-self.n // t.tn) * -(-self.m // t.tm) * self.batches

    def fill(self, t: Tile) -> float:
        """The fraction of tile `t`'s grid that is real output (1.0: no padding)."""
        return self.m * self.n / (-(-self.n // t.tn) * t.tn * -(-self.m // t.tm) * t.tm)


def _aligned(x: tuple[int, ...], y: tuple[int, ...]) -> list[tuple[int, int]]:
    n = max(len(x), len(y))
    return list(zip((1,) * (n - len(x)) + x, (1,) * (n - len(y)) + y))


@dataclass(frozen=True)
class Plan:
    """How one product runs: `tile`; K cut into `splits` parts of `k_split` (a multiple
    of tk) whose partial products a second pass adds up; and which index neighbouring
    threads take when they load scalar elements of A (`a_order` "mk": along k, for rows
    stored contiguously; "km": along m) and of B (`b_order` "kn": along n; "nk": along k);
    "km4" and "nk4" load four elements down a column of a transposed operand as one vec4
    (`operands.Transposed`: A = X^T read along m, B = W^T read along k).

    >>> Plan(MEDIUM, splits=4, k_split=512, b_order="nk").name
    '64x64x16/4x4/split4x512/b:nk'
    """

    tile: Tile
    splits: int = 1
    k_split: int = 0
    a_order: str = "mk"
    b_order: str = "kn"

    def __post_init__(self) -> None:
        if self.a_order not in ("mk", "km", "km4") or self.b_order not in ("kn", "nk", "nk4"):
            raise ValueError(f"bad read orders {self.a_order!r}, {self.b_order!r}")
        if self.splits > 1 and (self.k_split < 1 or self.k_split % self.tile.tk):
            raise ValueError(f"a split's K ({self.k_split}) must be whole tiles of "
                             f"{self.tile.tk}")

    @property
    def name(self) -> str:
        return "/".join([self.tile.name]
                        + ([f"split{self.splits}x{self.k_split}"] if self.splits > 1 else [])
                        + ([f"a:{self.a_order}"] if self.a_order != "mk" else [])
                        + ([f"b:{self.b_order}"] if self.b_order != "kn" else []))


def choose_tile(m: int, n: int, k: int) -> Tile:
    """The rule's tile for an m x k @ k x n product (see the module docstring).

    >>> choose_tile(256, 100, 64) is MEDIUM
    True
    """
    if m >= 128 and n >= 128:
        return LARGE
    if m >= 64 and n >= 64:
        return MEDIUM
    return SMALL


def choose_splits(p: Problem, t: Tile) -> tuple[int, int]:
    """(splits, k per split): split K when the tiles alone are too few workgroups to fill
    a GPU (skinny products, weight gradients X^T @ dY with a long K), as long as every
    split keeps `MIN_SPLIT_K` of K and the partials fit `SPLIT_BYTES`.

    >>> choose_splits(Problem.of(TensorType((64, 4096)), TensorType((4096, 64))), MEDIUM)
    (16, 256)
    """
    splits = min(MAX_SPLITS, -(-TARGET_GROUPS // p.groups(t)), p.k // MIN_SPLIT_K,
                 SPLIT_BYTES // (ELEMENT * p.m * p.n * p.batches))
    return k_splits(p, t, splits)


def k_splits(p: Problem, t: Tile, splits: int) -> tuple[int, int]:
    """(splits, k per split) for about `splits` parts of whole k-tiles ((1, K) for one)."""
    if splits <= 1:
        return 1, p.k
    k_split = -(-p.k // splits)
    k_split = -(-k_split // t.tk) * t.tk  # whole k-tiles
    return -(-p.k // k_split), k_split


def unsplit_tile(p: Problem, t: Tile) -> Tile | None:
    """A tile that runs `p` in one pass where a split would not pay: the largest of `t`
    and the smaller rule tiles that gives at least `FEW_GROUPS` workgroups whose threads
    each do at most `MAX_THREAD_MACS` multiply-adds; None if none does."""
    for c in [t] + [x for x in (MEDIUM, SMALL) if x.tm * x.tn < t.tm * t.tn]:
        if p.groups(c) >= FEW_GROUPS and c.rm * c.rn * p.k <= MAX_THREAD_MACS:
            return c
    return None


def plan_of(p: Problem, t: Tile, split: bool = True) -> Plan:
    """Tile `t` for `p`, K split by `choose_splits` where `split`."""
    splits, k_split = choose_splits(p, t) if split else (1, p.k)
    return Plan(t, splits, k_split if splits > 1 else 0)


def default_plan(p: Problem, split: bool = True) -> Plan:
    """The rule's plan (module docstring); it fits every device.

    >>> default_plan(Problem.of(TensorType((128, 1024)), TensorType((1024, 128)))).name
    '32x32x16/2x2'
    """
    t = choose_tile(p.m, p.n, p.k)
    plan = plan_of(p, t, split)
    if plan.splits > 1:
        one_pass = unsplit_tile(p, t)
        if one_pass is not None:
            return Plan(one_pass)
    return plan


def split_plans(p: Problem, tiles: list[Tile]) -> list[Plan]:
    """For each tile shape in `tiles` (its first tile of that tm x tn), K split into as
    many parts as give about `TARGET_GROUPS` workgroups, each keeping `MIN_SPLIT_K` of
    K, the partials within `SPLIT_BYTES`; square tiles first, the largest first."""
    most = min(MAX_SPLITS, p.k // MIN_SPLIT_K, SPLIT_BYTES // (ELEMENT * p.m * p.n * p.batches))
    shapes: dict[tuple[int, int], Tile] = {}
    for t in tiles:
        shapes.setdefault((t.tm, t.tn), t)
    plans = []
    for t in sorted(shapes.values(), key=lambda t: (t.tm != t.tn, -t.tm * t.tn)):
        splits, k_split = k_splits(p, t, min(most, -(-TARGET_GROUPS // p.groups(t))))
        if splits > 1:
            plans.append(Plan(t, splits, k_split))
    return plans


def skinny(p: Problem) -> bool:
    """Whether `p` is a weight gradient X^T @ dY's shape (m, n the layer's widths, K =
    B*T long beside them) whose rule tiles are too few workgroups for a GPU: K splits
    are tried for it."""
    return (p.groups(choose_tile(p.m, p.n, p.k)) < TARGET_GROUPS
            and p.k >= max(2 * MIN_SPLIT_K, 2 * p.m, 2 * p.n))


def _one_pass(p: Problem, tiles: list[Tile]) -> list[Tile]:
    """`tiles` in the order worth trying: those giving at least `MIN_GROUPS` workgroups,
    the largest first but each tile shape before a second variant of one, and none
    giving more than `FINER` times the workgroups of the largest (it would only add
    parallelism where there is plenty); then the others, the most workgroups first."""
    good = [t for t in tiles if p.groups(t) >= MIN_GROUPS]
    rest = sorted((t for t in tiles if p.groups(t) < MIN_GROUPS), key=lambda t: -p.groups(t))
    if good:
        largest = max(t.tm * t.tn for t in good)
        finest = FINER * min(p.groups(t) for t in good if t.tm * t.tn == largest)
        good = sorted((t for t in good if p.groups(t) <= finest), key=lambda t: -t.tm * t.tn)
    seen: dict[tuple[int, int], int] = {}
    variant = []
    for t in good:  # the how-many-th tile of its shape each is
        seen[t.tm, t.tn] = seen.get((t.tm, t.tn), -1) + 1
        variant.append(seen[t.tm, t.tn])
    order = sorted(range(len(good)), key=lambda i: variant[i])  # stable: sizes kept
    return [good[i] for i in order] + rest


def attention_tiles(p: Problem) -> tuple[Tile, ...]:
    """The tiles of its own a batched attention product gets (`SCORES`, `MIXED`): many
    batches (B*H heads) of a short K (the head size) or a narrow N (the head size).

    >>> [t.name for t in attention_tiles(Problem.of(TensorType((96, 1024, 64)),
    ...                                             TensorType((96, 64, 1024))))][:1]
    ['64x64x64/4x4']
    """
    if p.batches < 2 or p.m < 64:
        return ()
    if p.k <= 128 and p.n >= 64:
        return SCORES
    if p.n <= 128 and p.k >= 128:
        return MIXED
    return ()


def candidates(p: Problem, limits: Limits, split: bool = True) -> list[Plan]:
    """The plans worth timing for `p` on a device with `limits`, the rule's first (module
    docstring); at most `MAX_CANDIDATES`.

    >>> dw = Problem.of(TensorType((256, 8192)), TensorType((8192, 256)))
    >>> [c.name for c in candidates(dw, Limits(storage=32768, threads=1024))][:4]
    ['128x128x16/8x8/split32x256', '32x32x16/2x2/2buf', '128x128x16/8x8/2buf/split32x256', \
'32x64x16/4x4/2buf']
    """
    first = default_plan(p, split)
    tiles = [t for t in CATALOGUE if t.fits(limits) and p.fill(t) >= MIN_FILL]
    own = [t for t in attention_tiles(p) if t.fits(limits) and p.fill(t) >= MIN_FILL]
    plans = [Plan(t) for t in own + _one_pass(p, tiles)]
    if split and skinny(p):  # one pass and split, taking turns
        splits = split_plans(p, [t for t in tiles if p.groups(t) < TARGET_GROUPS])
        plans = [x for pair in zip(plans, splits) for x in pair] + \
            plans[len(splits):] + splits[len(plans):]
    found = [first]
    for plan in plans:
        if plan not in found:
            found.append(plan)
    return found[:MAX_CANDIDATES]


def orders(plan: Plan, a_free: bool, b_free: bool, a_down: bool = False,
           b_down: bool = False) -> list[Plan]:
    """`plan` with the other read orders of the operands whose layout is unknown (read
    through a view: `a_free`, `b_free`), and the vec4 orders down the columns of a
    transposed operand (`a_down`, `b_down`: "km4", "nk4"; the k-tile a multiple of 4).

    >>> [x.name for x in orders(Plan(SMALL), True, False)]
    ['32x32x16/2x2/a:km']
    >>> [x.name for x in orders(Plan(SMALL), False, True, b_down=True)]
    ['32x32x16/2x2/b:nk', '32x32x16/2x2/b:nk4']
    """
    vec = plan.tile.tk % 4 == 0
    a_all = (("mk", "km") + (("km4",) if a_down else ())) if a_free else (plan.a_order,)
    b_all = (("kn", "nk") + (("nk4",) if b_down and vec else ())) if b_free \
        else (plan.b_order,)
    return [replace(plan, a_order=x, b_order=y) for x in a_all for y in b_all
            if (x, y) != (plan.a_order, plan.b_order)]
