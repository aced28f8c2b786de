"""The detectors (``filter_by``): the reference's ranking, or whole confident regions.

``"self_confidence"`` is the reference's rule (cleanlab 2.9.0): the T pixels of
lowest self-confidence among those the model disagrees with, T from the
confident joint (:mod:`segaudit.engine._finder`).

``"confident_regions"`` is segaudit's own detector. It decides per *region*,
not per pixel, from the same one-read summary:

1. Thresholds from agreeing pixels: ``t~_k`` = mean s over the pixels labelled
   k that the model also predicts as k (:func:`agreeing_sums`, exact and
   order-independent like the reference's thresholds); the reference's
   ``t_k`` where class k has no such pixel; floored at 2e-6. The reference's
   ``t_k`` averages in the very pixels that are wrong, which lowers it on
   noisy classes; ``t~_k`` is the model's confidence where it is right.
2. Candidates: labelled pixels where the argmax disagrees with the label, cut
   into 8-connected regions within each image, two neighbours joining only
   when their given labels are equal (a wrong object never merges with a
   mislabelled neighbour).
3. A region is flagged whole when at least :data:`CONFIDENT_SHARE` of its
   pixels are confident (``m >= t~_a - 1e-6``, the confident joint with the
   agreeing thresholds) or its given label is implausible (mean s at most
   :data:`IMPLAUSIBLE_RATIO` times ``t~`` of its label).

A region is never flagged in part, so whole mislabelled objects are found,
not their least confident pixels. On synthetic scenes
(``benchmarks/bench_detectors.py``) this raises pixel F1 and region recall
well above the reference when the model is right where the labels are wrong;
prefer ``"self_confidence"`` for parity with cleanlab, or when a ranking of
single pixels is wanted.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from segaudit._optional import require
from segaudit._typing import BoolArray, FloatArray, IntArray
from segaudit._validation import check_choice
from segaudit.engine._accumulate import FLOAT_TOLERANCE
from segaudit.engine._exact import ClassSums

__all__ = [
    "CONFIDENT_SHARE",
    "FILTER_BY",
    "IMPLAUSIBLE_RATIO",
    "RECOMMENDED_FILTER",
    "agree_thresholds",
    "agreeing_sums",
    "check_filter_by",
    "region_block_mask",
    "region_image_mask",
]

FILTER_BY = ("self_confidence", "confident_regions")
"""The detectors (``filter_by``) of :func:`~segaudit.find_label_issues`; the first is default."""

RECOMMENDED_FILTER = "confident_regions"
"""The detector segaudit recommends when parity with the reference is not needed."""

CONFIDENT_SHARE = 0.25
"""A region is flagged when at least this share of its pixels is confidently predicted."""

IMPLAUSIBLE_RATIO = 0.1
"""...or when its mean self-confidence is at most this times its label's agreeing threshold."""

_EIGHT = np.ones((3, 3), dtype=bool)


def check_filter_by(filter_by: Any, func: str) -> str:
    """Check that `filter_by` is one of :data:`FILTER_BY`.

    Examples
    --------
    >>> check_filter_by("confident_regions", "f")
    'confident_regions'
    >>> check_filter_by("regions", "f")
    Traceback (most recent call last):
    ...
    ValueError: The 'filter_by' parameter of f must be one of 'self_confidence', 'confident_regions'. Got 'regions' instead.
    """  # noqa: E501
    return check_choice(filter_by, "filter_by", FILTER_BY, func)


def agreeing_sums(
    scores: FloatArray, disagree: BoolArray, labels: np.ndarray, num_classes: int
) -> tuple[FloatArray, IntArray]:
    """Per image and class, the sum of s and the count over agreeing pixels.

    Agreeing pixels are labelled (s is not NaN) and not disagreeing, so there
    ``a(x) = y(x)``. Each image's sums are added in pixel order, so they do not
    depend on the batch the image came in; :class:`ClassSums` adds them exactly.

    Parameters
    ----------
    scores : ndarray of float, shape (n, P)
        Self-confidence, NaN on void pixels.
    disagree : ndarray of bool, shape (n, P)
        ``a(x) != y(x)`` on labelled pixels.
    labels : ndarray, shape (n, P)
        Given labels (checked: in ``0..K-1`` wherever s is not NaN).
    num_classes : int
        K.

    Returns
    -------
    sums : ndarray of float64, shape (n, K)
    counts : ndarray of int64, shape (n, K)

    Examples
    --------
    >>> s = np.array([[0.9, 0.2, np.nan, 0.7]])
    >>> sums, counts = agreeing_sums(s, np.array([[False, True, False, False]]),
    ...                              np.array([[0, 0, 255, 1]]), 2)
    >>> sums, counts
    (array([[0.9, 0.7]]), array([[1, 1]]))
    """
    n = scores.shape[0]
    k = num_classes
    agree = ~np.asarray(disagree, dtype=np.bool_) & ~np.isnan(scores)
    y = np.where(agree, np.asarray(labels).astype(np.int64, copy=False), 0)
    key = np.where(agree, y + (np.arange(n, dtype=np.int64) * k)[:, None], n * k).ravel()
    weights = np.where(agree, scores, 0.0).astype(np.float64, copy=False).ravel()
    sums = _weighted_counts(key, weights, n * k + 1)[: n * k]
    counts: IntArray = np.bincount(key, minlength=n * k + 1)[: n * k].astype(np.int64)
    return sums.reshape(n, k), counts.reshape(n, k)


def _weighted_counts(key: np.ndarray, weights: np.ndarray, length: int) -> FloatArray:
    """``np.bincount`` with float64 weights (the sums in the order of `key`)."""
    out: FloatArray = np.bincount(key, weights=weights, minlength=length).astype(np.float64)
    return out


def agree_thresholds(sums: ClassSums, fallback: np.ndarray) -> npt.NDArray[np.float64]:
    """Thresholds ``t~_k`` from agreeing pixels; `fallback` (the reference's) where none.

    Examples
    --------
    >>> sums = ClassSums(3)
    >>> sums.add(np.array([[1.5, 0.0, 0.0]]), np.array([[2, 0, 0]]))
    >>> agree_thresholds(sums, np.array([0.5, 0.4, 2e-6]))
    array([7.5e-01, 4.0e-01, 2.0e-06])
    """
    out: npt.NDArray[np.float64] = np.where(sums.counts > 0, sums.thresholds(), fallback)
    return out


def region_image_mask(
    labels: np.ndarray,
    candidates: BoolArray,
    scores: FloatArray,
    max_prob: np.ndarray,
    argmax: np.ndarray,
    thresholds: FloatArray,
) -> BoolArray:
    """Return one image's ``confident_regions`` mask: whole candidate regions, or nothing.

    Parameters
    ----------
    labels : ndarray of int, shape (H, W)
        Given labels (in ``0..K-1`` on candidates).
    candidates : ndarray of bool, shape (H, W)
        Labelled pixels where the argmax disagrees with the label.
    scores : ndarray of float, shape (H, W)
        Self-confidence s.
    max_prob, argmax : ndarray, shape (D,)
        m and a of the D candidates, in pixel order.
    thresholds : ndarray of float64, shape (K,)
        ``t~_k``, the agreeing thresholds.

    Returns
    -------
    ndarray of bool, shape (H, W)

    Examples
    --------
    Two regions labelled 1 where the model says 0: the left one confidently
    (m = 0.9 >= t~_0 = 0.9), the right one not (m = 0.55, s = 0.45):

    >>> labels = np.array([[1, 1, 0, 1]])
    >>> cand = np.array([[True, True, False, True]])
    >>> s = np.array([[0.1, 0.2, 0.9, 0.45]])
    >>> mask = region_image_mask(labels, cand, s, np.array([0.9, 0.8, 0.55]),
    ...                          np.array([0, 0, 0]), np.array([0.9, 0.9]))
    >>> mask.astype(int)
    array([[1, 1, 0, 0]])
    """
    ndi = require("scipy.ndimage", "io", "filter_by='confident_regions'")
    idx = np.flatnonzero(candidates)
    out = np.zeros(candidates.shape, dtype=np.bool_)
    if not idx.size:
        return out
    y = np.asarray(labels).reshape(-1)[idx].astype(np.int64)
    flat = np.zeros(candidates.size, dtype=np.int64)
    flat[idx] = y + 1
    regions, count = _regions(flat.reshape(candidates.shape), ndi)
    rid = regions.reshape(-1)[idx]
    size = np.maximum(np.bincount(rid, minlength=count + 1), 1).astype(np.float64)
    t = np.asarray(thresholds, dtype=np.float64)
    m = np.asarray(max_prob, dtype=np.float64)
    confident = m >= t[np.asarray(argmax, dtype=np.int64)] - FLOAT_TOLERANCE
    share = _weighted_counts(rid, confident.astype(np.float64), count + 1) / size
    s = np.asarray(scores, dtype=np.float64).reshape(-1)[idx]
    mean_s = _weighted_counts(rid, s, count + 1) / size
    label_of = np.zeros(count + 1, dtype=np.int64)
    label_of[rid] = y
    flag = (share >= CONFIDENT_SHARE) | (mean_s <= IMPLAUSIBLE_RATIO * t[label_of])
    flag[0] = False
    out.reshape(-1)[idx] = flag[rid]
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


def region_block_mask(
    scores: FloatArray,
    disagree: BoolArray,
    labels: np.ndarray,
    records: tuple[np.ndarray, np.ndarray] | None,
    shape: tuple[int, int, int],
    thresholds: FloatArray,
) -> BoolArray:
    """Turn a block's disagreement into its ``confident_regions`` mask, in place.

    Parameters
    ----------
    scores : ndarray of float, shape (n, H*W)
        Self-confidence of the block.
    disagree : ndarray of bool, C-contiguous, n*H*W elements
        The block's disagreement: the candidates; becomes the mask.
    labels : ndarray, n*H*W elements
        The block's given labels.
    records : (max_prob, argmax) or None
        m and a of the block's disagreeing pixels in pixel order (None: none).
    shape : (n, H, W)
        The block's shape.
    thresholds : ndarray of float64, shape (K,)
        ``t~_k`` (:func:`agree_thresholds`).

    Returns
    -------
    ndarray of bool
        `disagree`, now the issue mask.
    """
    n, h, w = shape
    cand = disagree.reshape(n, h, w)
    if records is None:
        return disagree
    lab = np.asarray(labels).reshape(n, h, w)
    s = np.asarray(scores).reshape(n, h, w)
    m, a = records
    ends = np.cumsum(cand.reshape(n, -1).sum(axis=1))
    begin = 0
    for i in range(n):
        end = int(ends[i])
        if end > begin:
            cand[i] = region_image_mask(
                lab[i], cand[i], s[i], m[begin:end], a[begin:end], thresholds
            )
        begin = end
    return disagree
