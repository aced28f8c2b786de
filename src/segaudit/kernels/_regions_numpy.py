"""Numpy (and scipy) twins of :mod:`segaudit.kernels._regions_numba`.

Same signatures and the same results, bit for bit: sums are added in pixel
order (``np.bincount``), regions are the 8-connected candidates of one given
label (``scipy.ndimage.label``). Used with ``SEGAUDIT_KERNEL=numpy`` and to
test the compiled kernels; needs scipy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from segaudit._optional import require
from segaudit._typing import BoolArray, FloatArray, IntArray
from segaudit.kernels._protocol import TILE, Int64Array, LabelArray, tiles_per_image

__all__ = ["agree_sums", "region_flags"]

_EIGHT = np.ones((3, 3), dtype=bool)


def agree_sums(
    scores: FloatArray,
    disagree: BoolArray,
    labels: LabelArray,
    sums: npt.NDArray[np.float64],
    counts: Int64Array,
) -> None:
    """Add s and count per tile and class over agreeing pixels, in pixel order.

    Examples
    --------
    >>> sums, counts = np.zeros((1, 2)), np.zeros((1, 2), dtype=np.int64)
    >>> agree_sums(np.array([[0.9, 0.2, np.nan, 0.7]]), np.array([[False, True, False, False]]),
    ...            np.array([[0, 0, 255, 1]]), sums, counts)
    >>> sums, counts
    (array([[0.9, 0.7]]), array([[1, 1]]))
    """
    n, p = scores.shape
    k = sums.shape[1]
    per_image = tiles_per_image(p)
    rows = n * per_image
    agree = ~disagree & ~np.isnan(scores)
    y = np.where(agree, labels, 0).astype(np.int64)
    agree &= (y >= 0) & (y < k)
    tile = np.arange(n, dtype=np.int64)[:, None] * per_image + np.arange(p) // TILE
    key = np.where(agree, y + tile * k, rows * k).ravel()
    weights = np.where(agree, scores, 0.0).astype(np.float64, copy=False).ravel()
    sums += np.bincount(key, weights=weights, minlength=rows * k + 1)[: rows * k].reshape(rows, k)
    counts += np.bincount(key, minlength=rows * k + 1)[: rows * k].reshape(rows, k)


def region_flags(
    cand: BoolArray,
    width: int,
    scores: FloatArray,
    max_prob: FloatArray,
    offsets: Int64Array,
    floor: npt.NDArray[np.float64],
    share: float,
    given: LabelArray,
    predicted: IntArray,
    thresholds: npt.NDArray[np.float64],
    strip_floor: npt.NDArray[np.float64],
    strip: npt.NDArray[np.float64],
) -> None:
    """Flag whole regions of candidates, in place (see the compiled twin).

    Examples
    --------
    Two regions labelled 1 where the model says 0: the left one half
    confident (m = 0.9 >= t~_0 = 0.9), the right one not:

    >>> cand = np.array([[True, True, False, True]])
    >>> t = np.array([[0.9, 0.9], [0.9, 0.9]])
    >>> region_flags(cand, 4, np.array([[0.1, 0.2, 0.9, 0.45]]), np.array([0.9, 0.8, 0.55]),
    ...              np.array([0, 3]), np.array([0.0, 0.09]), 0.25,
    ...              np.array([[1, 1, 0, 1]]), np.array([0, 0, 0]), t,
    ...              np.array([0.0, 0.18]), np.array([10.0, 0.4, 0.7, 1.0, 1.25]))
    >>> cand.astype(int)
    array([[1, 1, 0, 0]])
    """
    a_all = np.asarray(predicted).astype(np.int64, copy=False)
    m_all = np.asarray(max_prob).astype(np.float64, copy=False)
    confident_all = m_all >= thresholds[1].take(a_all)
    lean_all = m_all / thresholds[0].take(a_all)
    ndi = require("scipy.ndimage", "io", "filter_by='confident_regions' (numpy kernels)")
    trim = strip[5] if strip.shape[0] > 5 else -np.inf
    for i in range(cand.shape[0]):
        b, e = int(offsets[i]), int(offsets[i + 1])
        if e == b:
            continue
        idx = np.flatnonzero(cand[i])
        y = given[i][idx].astype(np.int64)
        s_i = scores[i][idx].astype(np.float64)
        a = a_all[b:e]
        flat = np.zeros(cand.shape[1], dtype=np.int64)
        flat[idx] = y + 1
        regions, count = _regions(flat.reshape(-1, width), ndi)
        rid = regions.reshape(-1)[idx]
        near, near_cand = _neighbours(cand[i].reshape(-1, width), given[i].reshape(-1, width), idx)
        hits_a = (near == a[:, None]).any(axis=1)
        hits_y = ((near == y[:, None]) & ~near_cand).any(axis=1)
        pixel = (confident_all[b:e], s_i, lean_all[b:e], hits_a, hits_y, y)
        flag = _decide(rid, count + 1, pixel, floor, share, strip_floor, strip)
        keep = flag[rid]
        # a flagged region of several predicted classes: its parts (one class each) alone
        mixed = np.zeros(count + 1, dtype=bool)
        mixed[rid[a != _first(rid, a, count + 1)[rid]]] = True
        mixed &= flag
        if mixed.any():
            # a part: the candidates of one region with one predicted class
            _, pid = np.unique(rid * (int(a.max()) + 1) + a, return_inverse=True)
            pid = pid.reshape(-1)
            part_count = int(pid.max())
            length = part_count + 1  # parts: by the confident and implausible rules only
            size = np.maximum(np.bincount(pid, minlength=length), 1).astype(np.float64)
            label_of = np.zeros(length, dtype=np.int64)
            label_of[pid] = y
            sure = _sums(pid, confident_all[b:e].astype(np.float64), length) / size
            mean_s = _sums(pid, s_i, length) / size
            alone = (sure >= share) & (mean_s <= strip_floor[label_of] * strip[4])
            alone |= mean_s <= floor[label_of]
            some = np.zeros(count + 1, dtype=bool)
            some[rid[alone[pid]]] = True
            unsure = (_sums(pid, lean_all[b:e], length) / size < trim) & (
                mean_s > strip_floor[label_of]
            )
            keep &= ~(mixed[rid] & some[rid] & ~alone[pid] & unsure[pid])
        cand[i, idx] = keep


def _first(rid: np.ndarray, values: np.ndarray, length: int) -> np.ndarray:
    """Return the value at each region's first pixel (in pixel order); 0 for unused ids.

    Examples
    --------
    >>> _first(np.array([2, 1, 2]), np.array([7, 8, 9]), 3)
    array([0, 8, 7])
    """
    out = np.zeros(length, dtype=values.dtype)
    ids, first = np.unique(rid, return_index=True)
    out[ids] = values[first]
    return out


def _decide(
    rid: np.ndarray,
    length: int,
    pixel: tuple[np.ndarray, ...],
    floor: npt.NDArray[np.float64],
    share: float,
    strip_floor: npt.NDArray[np.float64],
    strip: npt.NDArray[np.float64],
) -> npt.NDArray[np.bool_]:
    """Decide each region id of `rid` from its pixels' (confident, s, lean, hits_a, hits_y, y)."""
    confident, scores, lean, hits_a, hits_y, y = pixel
    size = np.maximum(np.bincount(rid, minlength=length), 1).astype(np.float64)
    sure = _sums(rid, confident.astype(np.float64), length) / size
    mean_s = _sums(rid, scores, length) / size
    mean_lean = _sums(rid, lean, length) / size
    near_a = np.bincount(rid, weights=hits_a, minlength=length)
    near_y = np.bincount(rid, weights=hits_y, minlength=length)
    label_of = np.zeros(length, dtype=np.int64)
    label_of[rid] = y
    along = (
        (size >= strip[0])
        & (mean_s <= strip_floor[label_of])
        & (mean_lean >= strip[2])
        & (near_a >= strip[1] * size)
        & (near_y >= strip[1] * size)
    )
    if strip.shape[0] > 8:  # the long strip: touch counts, a bound on mean s, a lean
        along |= (
            (size >= strip[0])
            & (mean_s <= strip_floor[label_of] * strip[7])
            & (mean_lean >= strip[8])
            & (near_a >= strip[6])
            & (near_y >= strip[6])
        )
    if strip.shape[0] > 10:  # the unlabelled object: nothing labelled a beside it, y around it
        along |= (
            (size >= strip[0])
            & (mean_s <= strip_floor[label_of])
            & (mean_lean >= strip[10])
            & (near_a == 0)
            & (near_y >= strip[9] * np.sqrt(size))
        )
    flip = (size <= strip[3]) & (near_a == size) & (near_y == size)
    sure_enough = (sure >= share) & (mean_s <= strip_floor[label_of] * strip[4])
    flag: npt.NDArray[np.bool_] = (sure_enough | (mean_s <= floor[label_of]) | along) & ~flip
    return flag


def _neighbours(
    cand: np.ndarray, given: np.ndarray, idx: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Labels of the 4 neighbours (left, right, up, down) of one image's candidates.

    Returns the given labels ``(D, 4)`` of the neighbours of the candidates
    `idx` (flat), -1 outside the image, and which neighbours are candidates.

    Examples
    --------
    >>> near, is_cand = _neighbours(np.array([[True, True]]), np.array([[3, 2]]), np.array([0]))
    >>> near, is_cand
    (array([[-1,  2, -1, -1]]), array([[False,  True, False, False]]))
    """
    h, w = cand.shape
    g = np.full((h + 2, w + 2), -1, dtype=np.int64)
    g[1:-1, 1:-1] = given
    c = np.zeros((h + 2, w + 2), dtype=bool)
    c[1:-1, 1:-1] = cand
    r, col = np.divmod(idx, w)
    r, col = r + 1, col + 1
    rows = np.stack([r, r, r - 1, r + 1], axis=1)
    cols = np.stack([col - 1, col + 1, col, col], axis=1)
    return g[rows, cols], c[rows, cols]


def _sums(key: np.ndarray, weights: np.ndarray, length: int) -> npt.NDArray[np.float64]:
    """``np.bincount`` with float64 weights (added in the order of `key`)."""
    out: npt.NDArray[np.float64] = np.bincount(key, weights=weights, minlength=length).astype(
        np.float64, copy=False
    )
    return out


def _regions(classes: np.ndarray, ndi: Any) -> tuple[np.ndarray, int]:
    """Label the 8-connected regions of one given label: ``classes`` is label + 1, 0 elsewhere.

    Most components of the candidates hold one label: they are labelled in
    one call; only components where two labels touch are labelled again, one
    label at a time, within the bounding box of that label's pixels among them.
    Region ids need not be consecutive.

    Examples
    --------
    >>> from scipy import ndimage
    >>> regions, count = _regions(np.array([[1, 1, 0, 2], [0, 2, 0, 2]]), ndimage)
    >>> regions                 # component 1 mixed 1 and 2: split into 3 and 4
    array([[3, 3, 0, 2],
           [0, 4, 0, 2]])
    """
    cand = classes > 0
    regions, count = ndi.label(cand, structure=_EIGHT)
    regions = regions.astype(np.int64, copy=False)
    count = int(count)
    mixed = np.zeros(count + 1, dtype=np.bool_)
    for a, b in (
        (np.s_[:, :-1], np.s_[:, 1:]),
        (np.s_[:-1, :], np.s_[1:, :]),
        (np.s_[:-1, :-1], np.s_[1:, 1:]),
        (np.s_[:-1, 1:], np.s_[1:, :-1]),
    ):
        touch = cand[a] & cand[b] & (classes[a] != classes[b])
        mixed[regions[a][touch]] = True
    mixed[0] = False
    if not mixed.any():
        return regions, count
    redo = mixed[regions]
    split = np.where(redo, classes, 0)
    regions[redo] = 0
    for k, box in enumerate(ndi.find_objects(split)):
        if box is None:
            continue
        inside = split[box] == k + 1
        lab, found = ndi.label(inside, structure=_EIGHT)
        regions[box][inside] = lab[inside] + count
        count += int(found)
    return regions, count
