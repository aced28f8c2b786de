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
from segaudit._typing import BoolArray, FloatArray
from segaudit.kernels._protocol import Int64Array, LabelArray

__all__ = ["agree_sums", "region_flags"]

_EIGHT = np.ones((3, 3), dtype=bool)


def agree_sums(
    scores: FloatArray,
    disagree: BoolArray,
    labels: LabelArray,
    sums: npt.NDArray[np.float64],
    counts: Int64Array,
) -> None:
    """Add s and count per image and class over agreeing pixels, in pixel order.

    Examples
    --------
    >>> sums, counts = np.zeros((1, 2)), np.zeros((1, 2), dtype=np.int64)
    >>> agree_sums(np.array([[0.9, 0.2, np.nan, 0.7]]), np.array([[False, True, False, False]]),
    ...            np.array([[0, 0, 255, 1]]), sums, counts)
    >>> sums, counts
    (array([[0.9, 0.7]]), array([[1, 1]]))
    """
    n, k = sums.shape
    agree = ~disagree & ~np.isnan(scores)
    y = np.where(agree, labels, 0).astype(np.int64)
    agree &= (y >= 0) & (y < k)
    key = np.where(agree, y + (np.arange(n, dtype=np.int64) * k)[:, None], n * k).ravel()
    weights = np.where(agree, scores, 0.0).astype(np.float64, copy=False).ravel()
    sums += np.bincount(key, weights=weights, minlength=n * k + 1)[: n * k].reshape(n, k)
    counts += np.bincount(key, minlength=n * k + 1)[: n * k].reshape(n, k)


def region_flags(
    cand: BoolArray,
    width: int,
    labels: Int64Array,
    confident: BoolArray,
    scores: npt.NDArray[np.float64],
    offsets: Int64Array,
    floor: npt.NDArray[np.float64],
    share: float,
) -> None:
    """Flag whole regions of candidates, in place (see the compiled twin).

    Examples
    --------
    Two regions labelled 1: the left one half confident, the right one not:

    >>> cand = np.array([[True, True, False, True]])
    >>> region_flags(cand, 4, np.array([1, 1, 1]), np.array([True, False, False]),
    ...              np.array([0.1, 0.2, 0.45]), np.array([0, 3]), np.array([0.0, 0.09]), 0.25)
    >>> cand.astype(int)
    array([[1, 1, 0, 0]])
    """
    ndi = require("scipy.ndimage", "io", "filter_by='confident_regions' (numpy kernels)")
    for i in range(cand.shape[0]):
        b, e = int(offsets[i]), int(offsets[i + 1])
        if e == b:
            continue
        idx = np.flatnonzero(cand[i])
        y = labels[b:e]
        flat = np.zeros(cand.shape[1], dtype=np.int64)
        flat[idx] = y + 1
        regions, count = _regions(flat.reshape(-1, width), ndi)
        rid = regions.reshape(-1)[idx]
        size = np.maximum(np.bincount(rid, minlength=count + 1), 1).astype(np.float64)
        sure = _sums(rid, confident[b:e].astype(np.float64), count + 1) / size
        mean_s = _sums(rid, scores[b:e], count + 1) / size
        label_of = np.zeros(count + 1, dtype=np.int64)
        label_of[rid] = y
        flag = (sure >= share) | (mean_s <= floor[label_of])
        cand[i, idx] = flag[rid]


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
