"""The canvas's texts and how wide they are: shapes, dtypes, compact numbers, text widths.

The canvas draws its labels in DejaVu Sans Mono (`MONO_FONT`), a monospaced font, so a
label's width is its length times one advance (`CHAR_WIDTH` of the font size): the
layout sizes every box to its longest line and no label is ever cut.

>>> shape_text((2, 16, 32), "float32"), shape_text((), "int32")
('2×16×32 f32', 'scalar i32')
>>> compact(0.001653), compact(12345678.0), compact(-0.5), compact(float("nan"))
('0.00165', '1.23e7', '-0.5', 'nan')
>>> text_width("matmul", 26.0)
81.0
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["CHAR_WIDTH", "MONO_FONT", "MONO_SIZE", "compact", "dtype_text", "shape_text",
           "step_ticks", "text_width"]

#: The canvas font: every glyph the canvas draws has the same advance in it.
MONO_FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"
#: The pixel size Dear PyGui loads it at; text is drawn scaled from it.
MONO_SIZE = 26
#: One character's advance per pixel of font size. Dear ImGui's font size is the
#: height from descent to ascent (2384 font units in DejaVu Sans Mono), the advance is
#: 1233 units, and at the loaded size it comes out rounded up to half a pixel
#: (13.447 -> 13.5 at 26 px, as `dpg.get_text_size` measures).
CHAR_WIDTH = math.ceil(1233 / 2384 * MONO_SIZE * 2) / 2 / MONO_SIZE

#: Short dtype names, as a box's shape line shows them.
DTYPE_SHORT: dict[str, str] = {
    "float32": "f32", "float16": "f16", "bfloat16": "bf16", "float64": "f64",
    "int32": "i32", "int64": "i64", "int16": "i16", "int8": "i8",
    "uint32": "u32", "uint8": "u8", "bool": "bool",
}


def text_width(text: str, size: float) -> float:
    """The width of `text` drawn in the canvas font at `size` pixels (an em).

    >>> text_width("", 13.0), text_width("ab", 13.0)
    (0.0, 13.5)
    """
    return round(len(text) * CHAR_WIDTH * size, 6)


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
