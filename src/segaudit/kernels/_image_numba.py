"""Compiled kernel of one image's issue regions: labelling, statistics, the boundary test.

:func:`issue_regions` labels the flagged, non-void pixels with union-find in
one raster pass (provisional labels, the smaller root kept), numbers the
regions by their first pixel in raster order (as ``scipy.ndimage.label``
does), then adds up each region's area, box and scores in raster order and
finds its majority classes from its own pixels. Only the regions that can
still be a boundary strip are looked at around their pixels. Its twin,
:func:`segaudit.kernels._image_numpy.issue_regions`, gives identical results.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from segaudit._typing import BoolArray, FloatArray, IntArray
from segaudit.kernels._jit import njit as _njit
from segaudit.kernels._protocol import BOUNDARY_FRACTION, Int64Array, LabelArray, RegionStats
from segaudit.kernels._regions_numba import _root

__all__ = ["issue_regions"]

Int32Array = npt.NDArray[np.int32]


@_njit()
def _join(parent: Int32Array, a: int, b: int) -> int:
    """Join the sets of `a` and `b` under the smaller root; return it."""
    ra, rb = _root(parent, a), _root(parent, b)
    if ra < rb:
        parent[rb] = ra
        return ra
    parent[ra] = rb
    return rb


@_njit()
def _label(
    issues: BoolArray, labels: LabelArray, ignore_index: np.int64, use_ignore: bool, diagonal: int
) -> tuple[Int32Array, int, Int64Array]:
    """Return the region id of each pixel (0: not flagged), the count, and the flagged pixels.

    `diagonal`: 1 for 8-connected regions, 0 for 4-connected. Flat indices
    (``r * W + c``) keep the loops free of negative-index checks.
    """
    h, w = issues.shape
    flags, values = issues.ravel(), labels.ravel()
    ids = np.zeros(h * w, dtype=np.int32)
    # a new provisional label needs its left neighbour unflagged: at most ceil(w/2) a row
    parent = np.empty(h * ((w + 1) // 2) + 1, dtype=np.int32)
    at = np.empty(h * w, dtype=np.int64)
    made = 0
    count = 0
    for r in range(h):
        row = r * w
        for c in range(w):
            p = row + c
            if not flags[p] or (use_ignore and values[p] == ignore_index):
                continue
            at[count] = p
            count += 1
            lbl = ids[p - 1] if c > 0 else 0
            if r > 0:
                for cc in range(max(c - diagonal, 0), min(c + diagonal + 1, w)):
                    up = ids[p - w + (cc - c)]
                    if up != 0:
                        lbl = up if lbl == 0 else _join(parent, lbl, up)
            if lbl == 0:
                made += 1
                parent[made] = made
                lbl = made
            ids[p] = lbl
    final = np.zeros(made + 1, dtype=np.int32)
    n = 0
    for j in range(count):  # raster order: regions numbered by their first pixel
        p = at[j]
        root = _root(parent, ids[p])
        if final[root] == 0:
            n += 1
            final[root] = n
        ids[p] = final[root]
    return ids.reshape(h, w), n, at[:count].copy()


@_njit()
def _mode(values: LabelArray, members: Int64Array, b: int, e: int, buf: Int64Array) -> int:
    """Most frequent of flat `values` at ``members[b:e]``; ties go to the smallest.

    Indices, not slices: a view per region costs more than its work here.
    """
    size = e - b
    if size == 1:
        return int(values[members[b]])
    if size > 64:  # a large region: numpy's sort
        for j in range(size):
            buf[j] = np.int64(values[members[b + j]])
        buf[:size].sort()
    else:  # insertion sort: most regions are a few pixels
        for j in range(size):
            v = np.int64(values[members[b + j]])
            i = j
            while i > 0 and buf[i - 1] > v:
                buf[i] = buf[i - 1]
                i -= 1
            buf[i] = v
    best, best_n, run_n = buf[0], 0, 0
    for j in range(size):
        run_n = run_n + 1 if j > 0 and buf[j] == buf[j - 1] else 1
        if run_n > best_n:
            best, best_n = buf[j], run_n
    return int(best)


@_njit()
def _is_border(
    labels: LabelArray, r: int, c: int, ignore_index: np.int64, use_ignore: bool
) -> bool:
    """Whether pixel (r, c) is non-void and has a non-void 4-neighbour of another class."""
    h, w = labels.shape
    here = labels[r, c]
    if use_ignore and here == ignore_index:
        return False
    for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        rr, cc = r + dr, c + dc
        if 0 <= rr < h and 0 <= cc < w:
            there = labels[rr, cc]
            if there != here and not (use_ignore and there == ignore_index):
                return True
    return False


@_njit()
def _is_strip(
    ids: Int32Array,
    labels: LabelArray,
    members: Int64Array,
    region: int,
    classes: tuple[int, int],
    ignore_index: np.int64,
    use_ignore: bool,
    width: int,
) -> bool:
    """Tell whether one region (of two classes, at least `min_area` pixels) is a strip."""
    h, w = ids.shape
    area = members.shape[0]
    side = 2 * width + 1
    if area >= side * side:  # thin: no pixel is the centre of a full square of flags
        for p in members:
            r, c = p // w, p % w
            full = width <= r < h - width and width <= c < w - width
            for rr in range(r - width, r + width + 1):
                for cc in range(c - width, c + width + 1):
                    full = full and ids[rr, cc] != 0
                if not full:
                    break
            if full:
                return False
    near = 0  # pixels within chessboard distance width - 1 of a border pixel
    reach = width - 1
    for p in members:
        r, c = p // w, p % w
        found = False
        for rr in range(max(r - reach, 0), min(r + reach + 1, h)):
            for cc in range(max(c - reach, 0), min(c + reach + 1, w)):
                if _is_border(labels, rr, cc, ignore_index, use_ignore):
                    found = True
                    break
            if found:
                break
        near += found
    if near < BOUNDARY_FRACTION * area:
        return False
    given, predicted = classes  # both among the non-void pixels around, outside the region
    seen_given = seen_predicted = False
    for p in members:
        r, c = p // w, p % w
        for rr in range(max(r - width, 0), min(r + width + 1, h)):
            for cc in range(max(c - width, 0), min(c + width + 1, w)):
                value = labels[rr, cc]
                if ids[rr, cc] == region or (use_ignore and value == ignore_index):
                    continue
                seen_given = seen_given or np.int64(value) == given
                seen_predicted = seen_predicted or np.int64(value) == predicted
        if seen_given and seen_predicted:
            return True
    return False


@_njit()
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
    h, w = issues.shape
    ids, n, at = _label(issues, labels, ignore_index, use_ignore, 1 if connectivity == 2 else 0)
    area = np.zeros(n + 1, dtype=np.int64)
    total = np.zeros(n + 1, dtype=np.float64)
    top = np.full(n + 1, h, dtype=np.int64)
    left = np.full(n + 1, w, dtype=np.int64)
    bottom = np.zeros(n + 1, dtype=np.int64)
    right = np.zeros(n + 1, dtype=np.int64)
    flat_ids, flat_scores = ids.ravel(), scores.ravel()
    with_scores = scores.size > 0
    for p in at:  # raster order: the sums are added as the twin adds them
        r, c = p // w, p % w
        i = flat_ids[p]
        area[i] += 1
        if with_scores:
            total[i] += np.float64(flat_scores[p])
        top[i] = min(top[i], r)
        left[i] = min(left[i], c)
        bottom[i] = max(bottom[i], r + 1)
        right[i] = max(right[i], c + 1)
    boxes = np.empty((n, 4), dtype=np.int64)
    boxes[:, 0], boxes[:, 1] = top[1:], left[1:]
    boxes[:, 2], boxes[:, 3] = bottom[1:], right[1:]
    start = np.zeros(n + 1, dtype=np.int64)  # each region's pixels, in raster order
    start[1:] = np.cumsum(area[1:])
    fill = start[:-1].copy()
    members = np.empty(at.shape[0], dtype=np.int64)
    for p in at:
        i = flat_ids[p] - 1
        members[fill[i]] = p
        fill[i] += 1
    buf = np.empty(max(at.shape[0], 1), dtype=np.int64)
    given = np.empty(n, dtype=np.int64)
    predicted_out = np.empty(n, dtype=np.int64)
    boundary = np.zeros(n, dtype=np.bool_)
    flat_labels, flat_predicted = labels.ravel(), predicted.ravel()
    for i in range(n):
        b, e = start[i], start[i + 1]
        given[i] = _mode(flat_labels, members, b, e, buf)
        predicted_out[i] = _mode(flat_predicted, members, b, e, buf)
        if e - b >= min_area and given[i] != predicted_out[i]:
            classes = (given[i], predicted_out[i])
            boundary[i] = _is_strip(
                ids, labels, members[b:e], i + 1, classes, ignore_index, use_ignore, boundary_width
            )
    return area[1:], given, predicted_out, total[1:], boxes, boundary
