"""The detectors (``filter_by``): the reference's ranking, or whole confident regions.

``"self_confidence"`` is the reference's rule (cleanlab 2.9.0): the T pixels of
lowest self-confidence among those the model disagrees with, T from the
confident joint (:mod:`segaudit.engine._finder`).

``"confident_regions"`` is segaudit's own detector. It decides per *region*,
not per pixel, from the same one-read summary:

1. Thresholds from agreeing pixels: ``t~_k`` = mean s over the pixels labelled
   k that the model also predicts as k (:func:`agreeing_sums`, exact and
   order-independent like the reference's thresholds; the summary pass adds
   them per tile when asked); where class k has no
   such pixel, the mean ``t~`` of the classes that have; floored at 2e-6. The reference's
   ``t_k`` averages in the very pixels that are wrong, which lowers it on
   noisy classes; ``t~_k`` is the model's confidence where it is right.
2. Candidates: labelled pixels where the argmax disagrees with the label, cut
   into 8-connected regions within each image, two neighbours joining only
   when their given labels are equal (a wrong object never merges with a
   mislabelled neighbour).
3. A region is flagged whole when its given label is implausible (mean s at
   most :data:`IMPLAUSIBLE_RATIO` times ``t~`` of its label y); or when at
   least :data:`CONFIDENT_SHARE` of its pixels are confident (``m >= t~_a -
   1e-6``, the confident joint with the agreeing thresholds) and its mean s
   is at most :data:`CONFIDENT_RATIO` times ``t~_y`` (where the model is
   noisy, a region it is confident on but where the label keeps a fair share
   of probability is its noise, not a wrong label); or when it is a strip
   along a border of its predicted class (an outline drawn a few pixels off):
   at least :data:`STRIP_SIZE` pixels, mean s at most :data:`STRIP_RATIO`
   times ``t~_y``, mean ``m / t~_a`` at least :data:`STRIP_LEAN`, and at least
   :data:`STRIP_TOUCH` of its pixels 4-adjacent to a pixel labelled their
   predicted class a, and as many to an agreeing pixel labelled y (an outline
   one or two pixels off has about half of its pixels on each side); or when
   it is a long strip (a wide outline drawn a few pixels off beside both sides
   for a long way, whose shares stay below :data:`STRIP_TOUCH`): at least
   :data:`STRIP_SIZE` pixels, at least :data:`LONG_STRIP_TOUCH` of them
   4-adjacent to a pixel labelled their a and as many to an agreeing pixel
   labelled y, mean s at most :data:`LONG_STRIP_RATIO` times ``t~_y`` and mean
   ``m / t~_a`` at least :data:`LONG_STRIP_LEAN`; or when it is an object the
   labels leave out (drawn in its surroundings' label: a missed object): at
   least :data:`STRIP_SIZE` pixels, none 4-adjacent to a pixel labelled their
   a, at least :data:`UNLABELLED_TOUCH` times the square root of its size
   4-adjacent to an agreeing pixel labelled y, mean s at most
   :data:`STRIP_RATIO` times ``t~_y`` and mean ``m / t~_a`` at least
   :data:`UNLABELLED_LEAN`. A model's own mistake on a
   whole object touches no agreeing pixel of its label, so the shape rules
   leave it out. A region of at most :data:`FLIP_SIZE` pixels that all touch
   both a pixel labelled their a and an agreeing one labelled y is the
   model's own border flip, never flagged.
4. A flagged region whose pixels the model assigns to several classes (a
   wrong label that touches the model's own mistake on a neighbour of the
   same given label) is decided again part by part: its candidates of each
   predicted class a (a part) go through the confident and implausible
   rules (not the shape rules), and when one part is
   flagged alone, a part that is not is left out where the model is unsure
   of its own prediction (mean ``m / t~_a`` below :data:`TRIM_LEAN`) and the
   label keeps a fair share of its usual confidence (mean s above
   :data:`STRIP_RATIO` times ``t~_y``): the model's own mistake, joined to a
   wrong label, is no longer flagged with it.

The per-pixel work runs in the kernels (the summary pass, or
:meth:`Kernels.agree_sums` for a batch it did not sum, and
:meth:`Kernels.region_flags`: a compiled union-find labelling, images in
parallel, or its scipy twin, with identical results); the region kernel
reads the candidates' label and s from the full rows and works out their
``m >= t~_a`` and ``m / t~_a`` from the kept m and a, image by image.

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

from segaudit._typing import BoolArray, FloatArray, IntArray
from segaudit._validation import check_choice
from segaudit.engine._accumulate import FLOAT_TOLERANCE
from segaudit.engine._exact import ClassSums
from segaudit.engine._scores import flagged_per_image
from segaudit.kernels._choice import get_kernels
from segaudit.kernels._protocol import Kernels, tiles_per_image

__all__ = [
    "CONFIDENT_RATIO",
    "CONFIDENT_SHARE",
    "FILTER_BY",
    "FLIP_SIZE",
    "IMPLAUSIBLE_RATIO",
    "LONG_STRIP_LEAN",
    "LONG_STRIP_RATIO",
    "LONG_STRIP_TOUCH",
    "RECOMMENDED_FILTER",
    "STRIP_LEAN",
    "STRIP_RATIO",
    "STRIP_SIZE",
    "STRIP_TOUCH",
    "TRIM_LEAN",
    "UNLABELLED_LEAN",
    "UNLABELLED_TOUCH",
    "agree_thresholds",
    "agreeing_sums",
    "candidate_regions",
    "check_filter_by",
    "region_block_mask",
]

FILTER_BY = ("self_confidence", "confident_regions")
"""The detectors (``filter_by``) of :func:`~segaudit.find_label_issues`; the first is default."""

RECOMMENDED_FILTER = "confident_regions"
"""The detector segaudit recommends when parity with the reference is not needed."""

IMPLAUSIBLE_RATIO = 0.1
"""A region is flagged when its mean self-confidence is at most this times its label's ``t~``;"""

CONFIDENT_SHARE = 0.25
"""...or when at least this share of its pixels is confidently predicted (``m >= t~_a``)"""

CONFIDENT_RATIO = 0.25
"""...and its mean self-confidence is at most this times its label's ``t~``;"""

STRIP_SIZE = 10
"""...or when it is a strip along a border (see the module): of at least this many pixels,"""

STRIP_RATIO = 0.2
"""...with mean self-confidence at most this times its label's agreeing threshold,"""

STRIP_LEAN = 0.7
"""...mean ``m / t~_a`` at least this (the model prefers a about as surely as where it is right),"""

STRIP_TOUCH = 0.4
"""...and this share of its pixels next to pixels labelled their a, and to agreeing ones of y."""

LONG_STRIP_TOUCH = 20
"""...or when this many of its pixels touch each side, whatever the shares (a long strip),"""

LONG_STRIP_RATIO = 0.175
"""...its mean self-confidence at most this times its label's ``t~`` (<= :data:`STRIP_RATIO`),"""

LONG_STRIP_LEAN = 0.75
"""...and mean ``m / t~_a`` at least this (the long strip's pixels, at least :data:`STRIP_SIZE`)."""

UNLABELLED_TOUCH = 1.0
"""...or when, touching no pixel labelled a, this times the square root of its size touch y,"""

UNLABELLED_LEAN = 0.45
"""...with mean self-confidence at most :data:`STRIP_RATIO` ``t~_y`` and mean ``m / t~_a`` this."""

FLIP_SIZE = 1
"""A region of at most this many pixels, all next to both of those, is the model's border flip."""

TRIM_LEAN = 0.8
"""A part of a flagged region with mean ``m / t~_a`` below this may be left out (rule 4)."""


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
    scores: FloatArray,
    disagree: BoolArray,
    labels: np.ndarray,
    num_classes: int,
    kernels: Kernels | None = None,
) -> tuple[FloatArray, IntArray]:
    """Per tile and class, the sum of s and the count over agreeing pixels.

    Agreeing pixels are labelled (s is not NaN) and not disagreeing, so there
    ``a(x) = y(x)``. Each tile of :data:`~segaudit.kernels._protocol.TILE`
    pixels of an image is added in pixel order (the sums the summary pass
    gives when asked, :attr:`~segaudit.kernels._batch.BatchSummary.agree`),
    so they do not depend on the batch the image came in; :class:`ClassSums`
    adds them exactly.

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
    kernels : Kernels, optional
        The kernel module (default: :func:`~segaudit.kernels._choice.get_kernels`).

    Returns
    -------
    sums : ndarray of float64, shape (T, K)
        T tiles: ``ceil(P / TILE)`` per image, image by image.
    counts : ndarray of int64, shape (T, K)

    Examples
    --------
    >>> s = np.array([[0.9, 0.2, np.nan, 0.7]])
    >>> sums, counts = agreeing_sums(s, np.array([[False, True, False, False]]),
    ...                              np.array([[0, 0, 255, 1]]), 2)
    >>> sums, counts
    (array([[0.9, 0.7]]), array([[1, 1]]))
    """
    n = scores.shape[0]
    pixels = scores.size // n if n else 0
    rows = n * tiles_per_image(pixels)
    sums = np.zeros((rows, num_classes), dtype=np.float64)
    counts = np.zeros((rows, num_classes), dtype=np.int64)
    if rows:
        (kernels or get_kernels()).agree_sums(
            _c_order(scores, (n, -1), _SCORE_DTYPES),
            _c_order(disagree, (n, -1), (np.dtype(np.bool_),)),
            _label_block(labels, n),
            sums,
            counts,
        )
    return sums, counts


_SCORE_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_LABEL_DTYPES = (np.dtype(np.uint8), np.dtype(np.int64))
_INDEX_DTYPES = (np.dtype(np.uint8), np.dtype(np.int32), np.dtype(np.int64))


def _c_order(x: np.ndarray, shape: tuple[int, ...], dtypes: tuple[np.dtype, ...]) -> np.ndarray:
    """`x` reshaped to `shape`, C-contiguous, in one of `dtypes` (the last one if not)."""
    x = np.asarray(x).reshape(shape)
    dtype = x.dtype if x.dtype in dtypes and x.dtype.isnative else dtypes[-1]
    return np.ascontiguousarray(x, dtype=dtype)


def _label_block(labels: np.ndarray, n: int) -> np.ndarray:
    """Labels ``(n, P)`` as uint8 or int64 (void pixels of float labels become -1)."""
    y = np.asarray(labels)
    if y.dtype.kind == "f":
        y = np.where(np.isfinite(y), y, -1)
    return _c_order(y, (n, -1), _LABEL_DTYPES)


def agree_thresholds(sums: ClassSums, fallback: np.ndarray) -> npt.NDArray[np.float64]:
    """Thresholds ``t~_k`` from agreeing pixels; for a class with none, their mean over the others.

    A class the model never confirms has no confidence of its own to compare
    with; the reference's ``t_k`` (`fallback`) would average only the pixels
    in doubt, so that none of them could look unlikely. The mean ``t~`` of the
    classes that have agreeing pixels (the model's usual confidence where it
    is right) stands in; `fallback` where no class has any.

    Examples
    --------
    >>> sums = ClassSums(3)
    >>> sums.add(np.array([[1.5, 0.0, 0.0]]), np.array([[2, 0, 0]]))
    >>> agree_thresholds(sums, np.array([0.5, 0.4, 2e-6]))
    array([0.75, 0.75, 0.75])
    >>> agree_thresholds(ClassSums(2), np.array([0.5, 0.4]))
    array([0.5, 0.4])
    """
    seen = sums.counts > 0
    out: npt.NDArray[np.float64]
    if not seen.any():
        out = np.array(fallback, dtype=np.float64)
        return out
    t = sums.thresholds()
    out = np.where(seen, t, t[seen].mean())
    return out


def region_block_mask(
    scores: FloatArray,
    disagree: BoolArray,
    labels: np.ndarray,
    records: tuple[np.ndarray, np.ndarray] | None,
    shape: tuple[int, int, int],
    thresholds: FloatArray,
    kernels: Kernels | None = None,
) -> BoolArray:
    """Turn a block's disagreement into its ``confident_regions`` mask, in place.

    Parameters
    ----------
    scores : ndarray of float, shape (n, H*W)
        Self-confidence of the block.
    disagree : ndarray of bool, n*H*W elements
        The block's disagreement: the candidates; becomes the mask.
    labels : ndarray, n*H*W elements
        The block's given labels.
    records : (max_prob, argmax) or None
        m and a of the block's disagreeing pixels in pixel order (None: none).
    shape : (n, H, W)
        The block's shape.
    thresholds : ndarray of float64, shape (K,)
        ``t~_k`` (:func:`agree_thresholds`).
    kernels : Kernels, optional
        The kernel module (default: :func:`~segaudit.kernels._choice.get_kernels`).

    Returns
    -------
    ndarray of bool
        `disagree`, now the issue mask.

    Examples
    --------
    Two regions labelled 1 where the model says 0: the left one confidently
    (m = 0.9 >= t~_0 = 0.9), the right one not (m = 0.55, s = 0.45):

    >>> cand = np.array([True, True, False, True])
    >>> records = (np.array([0.9, 0.8, 0.55]), np.array([0, 0, 0]))
    >>> mask = region_block_mask(np.array([[0.1, 0.2, 0.9, 0.45]]), cand, np.array([1, 1, 0, 1]),
    ...                          records, (1, 1, 4), np.array([0.9, 0.9]))
    >>> mask.astype(int)
    array([1, 1, 0, 0])
    """
    if records is None:
        return disagree
    return candidate_regions(disagree, shape, scores, records, thresholds, kernels, labels=labels)


def candidate_regions(
    disagree: BoolArray,
    shape: tuple[int, int, int],
    scores: FloatArray,
    records: tuple[np.ndarray, np.ndarray],
    thresholds: FloatArray,
    kernels: Kernels | None = None,
    *,
    labels: np.ndarray,
) -> BoolArray:
    """Flag whole regions of the candidates in `disagree`, in place.

    Parameters
    ----------
    disagree : ndarray of bool, n*H*W elements
        The candidates; becomes the mask.
    shape : (n, H, W)
        The block's shape.
    scores : ndarray of float, n*H*W elements
        Self-confidence of the block (the kernel reads the candidates').
    records : (max_prob, argmax)
        m and a of the D candidates, in pixel order.
    thresholds : ndarray of float64, shape (K,)
        ``t~_k`` (:func:`agree_thresholds`).
    kernels : Kernels, optional
        The kernel module (default: :func:`~segaudit.kernels._choice.get_kernels`).
    labels : ndarray, n*H*W elements
        The block's given labels, every pixel.

    Returns
    -------
    ndarray of bool
        `disagree`, now the issue mask.
    """
    n, _, w = shape
    t = np.asarray(thresholds, dtype=np.float64)
    m, a = records
    work = disagree.reshape(n, -1)  # a copy when `disagree` is not contiguous
    view = work.flags.c_contiguous and np.may_share_memory(work, disagree)
    if not view:
        work = np.ascontiguousarray(work)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(flagged_per_image(work), out=offsets[1:])
    if offsets[-1] != np.size(m) or not np.size(scores) == np.size(labels) == work.size:
        raise AssertionError("the candidates' data do not match the candidates")  # pragma: no cover
    (kernels or get_kernels()).region_flags(
        work,
        w,
        _c_order(scores, work.shape, _SCORE_DTYPES),
        _records(m, _SCORE_DTYPES),
        offsets,
        IMPLAUSIBLE_RATIO * t,
        CONFIDENT_SHARE,
        _label_block(labels, n),
        _records(a, _INDEX_DTYPES),
        np.stack([t, t - FLOAT_TOLERANCE]),  # m / t~_a, and m >= t~_a - tolerance
        STRIP_RATIO * t,
        np.array(  # the confident and long strip rules' bounds on mean s: multiples of the strip's
            [
                STRIP_SIZE,
                STRIP_TOUCH,
                STRIP_LEAN,
                FLIP_SIZE,
                CONFIDENT_RATIO / STRIP_RATIO,
                TRIM_LEAN,
                LONG_STRIP_TOUCH,
                LONG_STRIP_RATIO / STRIP_RATIO,  # the long strip's bound, as the confident's
                LONG_STRIP_LEAN,
                UNLABELLED_TOUCH,
                UNLABELLED_LEAN,
            ],
            dtype=np.float64,
        ),
    )
    if not view:
        disagree[...] = work.reshape(disagree.shape)
    return disagree


def _records(x: np.ndarray, dtypes: tuple[np.dtype, ...]) -> np.ndarray:
    """Return the candidates' m or a as the region kernel takes them: 1-D, C order, as kept."""
    return _c_order(x, (-1,), dtypes)
