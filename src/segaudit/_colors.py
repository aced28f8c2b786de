"""One deterministic class palette, shared by the plots and the report."""

from __future__ import annotations

import colorsys
from collections.abc import Sequence

import numpy as np

__all__ = ["VOID_COLOR", "class_palette", "colorize"]

VOID_COLOR = (128, 128, 128)
_GOLDEN = 0.618033988749895
_HUE0 = 0.6  # class 0 is blue, not the red used for flagged pixels


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
    """
    pal = np.asarray(palette, dtype=np.uint8)
    ids = np.asarray(labels).astype(np.int64)
    known = (ids >= 0) & (ids < pal.shape[0])
    if ignore_index is not None:
        known &= ids != ignore_index
    out = np.empty((*ids.shape, 3), dtype=np.uint8)
    out[...] = VOID_COLOR
    out[known] = pal[ids[known]]
    return out
