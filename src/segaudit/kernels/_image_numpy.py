"""Numpy (and scipy) twin of :mod:`segaudit.kernels._image_numba`: one image's regions.

Flagged pixels are grouped by ``scipy.ndimage.label``; each region's area,
box, majority given and predicted class, sum of scores and whether it is a
boundary strip are worked out with whole-image numpy operations. Used with
``SEGAUDIT_KERNEL=numpy``, while the compiled kernel is not ready, and to
test it; needs scipy.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import cast

import numpy as np

from segaudit._optional import require
from segaudit._typing import BoolArray, FloatArray, IntArray
from segaudit.kernels._protocol import BOUNDARY_FRACTION, Int64Array, LabelArray, RegionStats

__all__ = ["issue_regions"]

_DENSE_COUNTS = 1 << 18  # most (region, value) pairs counted in a table by `_majority`
_Pixels = tuple[np.ndarray, np.ndarray, np.ndarray]
"""The flagged pixels' rows, columns and region ids, in raster order."""


def _border_map(labels_hw: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Pixels with a 4-neighbour of a different class, void pairs excluded."""
    border = np.zeros(labels_hw.shape, dtype=bool)
    for axis in (0, 1):
        head = [slice(None), slice(None)]
        tail = [slice(None), slice(None)]
        head[axis], tail[axis] = slice(1, None), slice(None, -1)
        h, t = tuple(head), tuple(tail)
        change = (labels_hw[h] != labels_hw[t]) & valid[h] & valid[t]
        border[h] |= change
        border[t] |= change
    return border


def _majority(region_ids: np.ndarray, values: np.ndarray, n_regions: int) -> np.ndarray:
    """Most frequent value per region (ids ``1..n_regions``); ties go to the smallest.

    Integer values spanning a small range are counted in one table of
    (region, value) pairs (`np.bincount`); others through sorted unique pairs.
    """
    if values.dtype.kind in "iu" and values.size:
        lo, hi = int(values.min()), int(values.max())
        span = hi - lo + 1
        if (n_regions + 1) * span <= _DENSE_COUNTS:
            keys = region_ids.astype(np.intp) * span + np.subtract(values, lo, dtype=np.intp)
            counts = np.bincount(keys, minlength=(n_regions + 1) * span)
            # argmax: the first of equal counts, the smallest value
            best: np.ndarray = counts.reshape(n_regions + 1, span)[1:].argmax(axis=1)
            return (best + lo).astype(np.int64)
    uniq, inv = np.unique(values, return_inverse=True)
    keys, counts = np.unique(region_ids.astype(np.int64) * uniq.size + inv, return_counts=True)
    region, value = keys // uniq.size, keys % uniq.size
    order = np.lexsort((value, -counts, region))
    region, value = region[order], value[order]
    first = np.flatnonzero(np.r_[True, region[1:] != region[:-1]])
    out = np.empty(n_regions, dtype=np.int64)
    out[region[first] - 1] = uniq[value[first]]
    return out


_RING_AT_ONCE = 1 << 16
"""`_ring_has` looks at every offset at once while pixels x offsets is at most this."""


def _ring_has(
    lab: np.ndarray,
    pixels: _Pixels,
    labels_hw: np.ndarray,
    ignore_index: int | None,
    wanted: tuple[np.ndarray, ...],
    asked: np.ndarray,
    width: int,
) -> np.ndarray:
    """Whether every class in `wanted` occurs near each `asked` region; False elsewhere.

    A class occurs near region ``R`` when some non-void pixel of that class, not in
    ``R``, lies within chessboard distance `width` of a pixel of ``R``. Each pixel of
    an asked region looks at its ``(2 width + 1)**2`` window: the maps are read at
    those places only (places outside the image are void).
    """
    h, w = lab.shape
    lab_f, labels_f = lab.ravel(), labels_hw.ravel()
    rows, cols, region = pixels
    sel = asked[region - 1]
    region = region[sel]
    rows, cols = rows[sel], cols[sel]
    classes = [c[region - 1] for c in wanted]
    steps = np.arange(-width, width + 1)
    moved = rows[:, None] + steps  # whether each step down (right) stays in the image
    row_in = (moved >= 0) & (moved < h)
    moved = cols[:, None] + steps
    col_in = (moved >= 0) & (moved < w)
    base = rows * w + cols

    def look(at: np.ndarray, inside: np.ndarray, own: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Whether each place is a non-void pixel outside the region, and its label."""
        at = np.where(inside, at, 0)
        label = labels_f[at]
        other = inside & (lab_f[at] != own)
        if ignore_index is not None:
            other &= label != ignore_index
        return other, label

    if rows.size * steps.size**2 <= _RING_AT_ONCE:  # every offset in one step
        inside = (row_in[:, :, None] & col_in[:, None, :]).reshape(rows.size, -1)
        offsets = (steps[:, None] * w + steps[None, :]).ravel()
        other, label = look(base[:, None] + offsets, inside, region[:, None])
        seen = [(other & (label == c[:, None])).any(axis=1) for c in classes]
    else:  # one offset at a time, in bounded memory
        seen = [np.zeros(region.size, dtype=bool) for _ in wanted]
        for i, dr in enumerate(steps.tolist()):
            for j, dc in enumerate(steps.tolist()):
                other, label = look(base + (dr * w + dc), row_in[:, i] & col_in[:, j], region)
                for c, s in zip(classes, seen, strict=True):
                    s |= other & (label == c)
    found = [np.bincount(region, weights=s, minlength=asked.size + 1)[1:] > 0 for s in seen]
    near_all: BoolArray = asked & np.logical_and.reduce(found)
    return near_all


def _padded(array: np.ndarray, width: int) -> np.ndarray:
    """Return ``np.pad(array, width)``: zeros around a copy (one allocation, one copy)."""
    h, w = array.shape
    out = np.zeros((h + 2 * width, w + 2 * width), dtype=array.dtype)
    out[width : width + h, width : width + w] = array
    return out


def _window(flags: np.ndarray, size: int, every: bool) -> np.ndarray:
    """Whether any (or every) pixel of the ``size x size`` square around each pixel is True.

    Pixels outside the image count as False. Separable: rows, then columns,
    over shifted slices of a padded copy (``size`` odd).
    """
    r = size // 2
    if r == 0:
        same: np.ndarray = flags.copy()
        return same
    h, w = flags.shape
    padded = _padded(flags.astype(np.bool_, copy=False), r)
    combine = np.logical_and if every else np.logical_or
    rows: np.ndarray = padded[0:h].copy()
    for d in range(1, 2 * r + 1):
        combine(rows, padded[d : d + h], out=rows)
    out: np.ndarray = rows[:, 0:w].copy()
    for d in range(1, 2 * r + 1):
        combine(out, rows[:, d : d + w], out=out)
    return out


def _around(
    maps: tuple[np.ndarray, ...],
    rows: np.ndarray,
    cols: np.ndarray,
    margin: int,
    compute: Callable[..., np.ndarray],
) -> np.ndarray:
    """Return ``compute(*maps)`` at the pixels ``(rows, cols)``, computed on a box around them.

    The box holds the pixels and `margin` more on every side (clipped to the
    image): `compute` must give, at each pixel, a value that depends only on
    the maps within `margin` of it (outside the image counting as it does there).
    """
    h, w = maps[0].shape
    top, left = max(int(rows.min()) - margin, 0), max(int(cols.min()) - margin, 0)
    bottom, right = min(int(rows.max()) + margin + 1, h), min(int(cols.max()) + margin + 1, w)
    box = (slice(top, bottom), slice(left, right))
    values: np.ndarray = compute(*(m[box] for m in maps))[rows - top, cols - left]
    return values


def _boxes(shape: tuple[int, ...], pixels: _Pixels, n: int) -> np.ndarray:
    """Bounding boxes ``(n, 4)`` (row0, col0, row1, col1; half-open) of regions ``1..n``."""
    rows, cols, ids = pixels
    at = ids - 1
    boxes = np.empty((4, n), dtype=np.int64)
    boxes[0] = shape[0]
    boxes[1] = shape[1]
    boxes[2:] = 0
    np.minimum.at(boxes[0], at, rows)
    np.minimum.at(boxes[1], at, cols)
    np.maximum.at(boxes[2], at, rows + 1)
    np.maximum.at(boxes[3], at, cols + 1)
    out: np.ndarray = boxes.T
    return out


def issue_regions(
    issues: BoolArray,
    labels: LabelArray,
    predicted: IntArray,
    scores: FloatArray,
    ignore_index: np.int64,
    use_ignore: bool,
    connectivity: int,
    min_area: int,
    boundary_width: int,
) -> RegionStats:
    """Return the regions of one image's flagged pixels; see :meth:`Kernels.issue_regions`."""
    ndi = require("scipy.ndimage", "io", "Finding region-level issues")
    valid = labels != ignore_index if use_ignore else np.ones(labels.shape, bool)
    mask = issues & valid
    lab, n = ndi.label(mask, structure=_structure(connectivity))
    if n == 0:
        return _empty()
    at = np.flatnonzero(mask)  # the flagged pixels, in raster order, found once
    rows, cols = np.divmod(at, mask.shape[1])
    ids = lab.ravel()[at]
    area = np.bincount(ids, minlength=n + 1)[1:]
    given = _majority(ids, labels.ravel()[at], n)
    predicted_out = _majority(ids, predicted.ravel()[at], n)
    if scores.size:
        picked = scores.ravel()[at].astype(np.float64)
        total = np.bincount(ids, weights=picked, minlength=n + 1)[1:]
    else:
        total = np.zeros(n)
    # a boundary region is kept, of two classes, thin and near a border: the windows
    # below are looked at only around the pixels of regions that can still be one
    maybe = (area >= min_area) & (given != predicted_out)
    side = 2 * boundary_width + 1
    # A pixel whose chessboard distance to the region's outside exceeds the width is the
    # centre of a (2w+1)-square lying wholly inside the mask (a full square is connected,
    # so inside its region): the mask eroded by that square. A region of fewer pixels
    # than the square holds no such pixel.
    wide = maybe & (area >= side * side)
    thin = np.ones(n, dtype=bool)
    if wide.any():
        sel = wide[ids - 1]
        thick = _around(
            (mask,), rows[sel], cols[sel], side // 2, lambda m: _window(m, side, every=True)
        )
        thin = np.bincount(ids[sel], weights=thick, minlength=n + 1)[1:] == 0
    need = maybe & thin
    near_count = np.zeros(n)
    if need.any():
        # chessboard distance to a border pixel < width: a border pixel in the (2w-1)-square
        # (a border pixel is one with a 4-neighbour of another class)
        sel = need[ids - 1]
        near = _around(
            (labels, valid),
            rows[sel],
            cols[sel],
            boundary_width,
            lambda lab_box, valid_box: _window(
                _border_map(lab_box, valid_box), 2 * boundary_width - 1, every=False
            ),
        )
        near_count = np.bincount(ids[sel], weights=near, minlength=n + 1)[1:]
    candidate = need & (near_count >= BOUNDARY_FRACTION * area)
    boundary = np.zeros(n, dtype=bool)
    if candidate.any():
        both = (given, predicted_out)
        void = int(ignore_index) if use_ignore else None
        boundary = _ring_has(lab, (rows, cols, ids), labels, void, both, candidate, boundary_width)
    boxes = _boxes(mask.shape, (rows, cols, ids), n)
    stats = (area, given, predicted_out, total, np.ascontiguousarray(boxes), boundary)
    return cast(RegionStats, stats)


def _empty() -> RegionStats:
    """No regions."""
    none: Int64Array = np.zeros(0, dtype=np.int64)
    return none, none, none, np.zeros(0), np.zeros((0, 4), np.int64), np.zeros(0, bool)


@functools.cache
def _structure(connectivity: int) -> np.ndarray:
    """``scipy.ndimage.generate_binary_structure(2, connectivity)``, built once (read-only)."""
    ndi = require("scipy.ndimage", "io", "Finding region-level issues")
    out: np.ndarray = ndi.generate_binary_structure(2, connectivity)
    out.flags.writeable = False
    return out
