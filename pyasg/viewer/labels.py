"""The canvas's texts and how wide they are: shapes, dtypes, compact numbers, text widths.

The canvas draws its labels in DejaVu Sans Mono (`MONO_FONT`), a monospaced font, so a
label's width is its length times one advance (`CHAR_EM` of the font size): the layout
sizes every box to its longest line and no label is ever cut.

>>> shape_text((2, 16, 32), "float32"), shape_text((), "int32")
('2×16×32 f32', 'scalar i32')
>>> compact(0.001653), compact(12345678.0), compact(-0.5), compact(float("nan"))
('0.00165', '1.23e7', '-0.5', 'nan')
>>> text_width("matmul", 10.0)
36.123047
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["CHAR_EM", "MONO_FONT", "compact", "dtype_text", "shape_text", "step_ticks",
           "text_width"]

#: The canvas font: every glyph the canvas draws has the same advance in it.
MONO_FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"
#: DejaVu Sans Mono's advance (1233 of 2048 font units), in ems.
CHAR_EM = 1233 / 2048

#: Short dtype names, as a box's shape line shows them.
DTYPE_SHORT: dict[str, str] = {
    "float32": "f32", "float16": "f16", "bfloat16": "bf16", "float64": "f64",
    "int32": "i32", "int64": "i64", "int16": "i16", "int8": "i8",
    "uint32": "u32", "uint8": "u8", "bool": "bool",
}


def text_width(text: str, size: float) -> float:
    """The width of `text` drawn in the canvas font at `size` pixels (an em).

    >>> text_width("", 14.0), round(text_width("ab", 14.0), 3)
    (0.0, 16.857)
    """
    return round(len(text) * CHAR_EM * size, 6)


def dtype_text(dtype: str) -> str:
    """A dtype's short name (`float32` -> `f32`; an unknown name as it is)."""
    return DTYPE_SHORT.get(dtype, dtype)


def shape_text(shape: Sequence[int], dtype: str) -> str:
    """`2×16×32 f32`: the dimensions joined by ×, then the short dtype; `scalar` for ()."""
    dims = "×".join(str(d) for d in shape) if len(shape) else "scalar"
    return f"{dims} {dtype_text(dtype)}"


def compact(x: float) -> str:
    """Three significant digits, no `+` or leading zeros in an exponent: `1.23e7`, `-4e-5`.

    One token without spaces, so a wrapped line never splits it.

    >>> compact(3.0), compact(1e-5), compact(0.0)
    ('3', '1e-5', '0')
    """
    if not math.isfinite(x):
        return str(x)
    text = f"{x:.3g}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}e{int(exponent)}"
    return text


def step_ticks(lo: float, hi: float, most: int = 8) -> list[int]:
    """At most `most` whole steps from `lo` to `hi`, 1, 2 or 5 times a power of ten apart:
    the loss chart's x ticks. (Dear PyGui's automatic ticks, ten or more to an axis,
    draw one of them as an unlabelled full-height line.)

    >>> step_ticks(0, 4), step_ticks(0, 37), step_ticks(995, 1001)
    ([0, 1, 2, 3, 4], [0, 10, 20, 30], [995, 996, 997, 998, 999, 1000, 1001])
    """
    span = max(hi - lo, 1.0)
    step, power = 1, 1
    while span / step > most - 1:
        for mult in (1, 2, 5):
            step = mult * power
            if span / step <= most - 1:
                break
        else:
            power *= 10
            continue
        break
    first = math.ceil(lo / step) * step
    return list(range(int(first), int(math.floor(hi)) + 1, step))
