"""One deterministic class palette, shared by the plots and the report."""

from __future__ import annotations

import colorsys
from collections.abc import Sequence

import numpy as np

__all__ = ["LUT_MAX", "VOID_COLOR", "class_palette", "color_table", "colorize"]

VOID_COLOR = (128, 128, 128)
_GOLDEN = 0.618033988749895
_HUE0 = 0.6  # class 0 is blue, not the red used for flagged pixels
LUT_MAX = 1 << 16
"""Integer maps spanning fewer ids than this are coloured through one lookup table."""


def class_palette(num_classes: int) -> np.ndarray:
    """Distinct RGB colours for K classes, ``(K, 3)`` uint8, the same on every call.

    Hues step by the golden ratio from blue; saturation and value cycle so that
    neighbouring ids differ in brightness too.

    Examples
    --------
    >>> class_palette(2).tolist()
    [[85, 148, 242], [175, 242, 24]]
    """
    out = np.empty((num_classes, 3), dtype=np.uint8)
    for k in range(num_classes):
        hue = (_HUE0 + k * _GOLDEN) % 1.0
        sat = (0.65, 0.9, 0.5)[k % 3]
        val = (0.95, 0.75, 0.85)[(k // 3) % 3]
        out[k] = [round(c * 255) for c in colorsys.hsv_to_rgb(hue, sat, val)]
    return out


def colorize(
    labels: np.ndarray,
    palette: np.ndarray | Sequence[Sequence[int]],
    *,
    ignore_index: int | None = None,
) -> np.ndarray:
    """Colour a class map: ``(H, W)`` ids to ``(H, W, 3)`` uint8.

    Ids outside the palette (void, ignore_index) are drawn in grey.

    Examples
    --------
    >>> colorize(np.array([[0, 1, 255]]), [[1, 2, 3], [4, 5, 6]], ignore_index=1).tolist()
    [[[1, 2, 3], [128, 128, 128], [128, 128, 128]]]
    """
    pal = np.asarray(palette, dtype=np.uint8)
    ids = np.asarray(labels)
    if ids.dtype.kind in "iub" and ids.size:
        lo, hi = int(ids.min()), int(ids.max())
        if hi - lo < LUT_MAX:  # one table lookup per pixel
            lut = color_table(lo, hi, pal, ignore_index=ignore_index)
            colored: np.ndarray = lut[np.subtract(ids, lo, dtype=np.intp)]
            return colored
    ids = ids.astype(np.int64)
    known = (ids >= 0) & (ids < pal.shape[0])
    if ignore_index is not None:
        known &= ids != ignore_index
    out = np.empty((*ids.shape, 3), dtype=np.uint8)
    out[...] = VOID_COLOR
    out[known] = pal[ids[known]]
    return out


def color_table(
    lo: int, hi: int, palette: np.ndarray, *, ignore_index: int | None = None
) -> np.ndarray:
    """Return the colour of each id ``lo..hi`` as `colorize` draws it, ``(hi - lo + 1, 3)`` uint8.

    Examples
    --------
    >>> color_table(-1, 1, np.array([[1, 2, 3], [4, 5, 6]], np.uint8)).tolist()
    [[128, 128, 128], [1, 2, 3], [4, 5, 6]]
    """
    lut = np.empty((hi - lo + 1, 3), dtype=np.uint8)
    lut[...] = VOID_COLOR
    first, last = max(lo, 0), min(hi, palette.shape[0] - 1)
    if first <= last:
        lut[first - lo : last - lo + 1] = palette[first : last + 1]
    if ignore_index is not None and lo <= ignore_index <= hi:
        lut[ignore_index - lo] = VOID_COLOR
    return lut
