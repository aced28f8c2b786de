"""Image scores from the engine's outputs: the methods, their options, one formula each."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import numpy.typing as npt

from segaudit._validation import check_choice, param_error

__all__ = [
    "EVIDENCE_WEIGHT",
    "METHODS",
    "RECOMMENDED_METHOD",
    "SOFTMIN_TEMPERATURE",
    "SOFTMIN_WEIGHT",
    "check_method",
    "check_temperature",
    "flagged_per_image",
    "flagged_softmin",
    "issue_image_scores",
    "region_fraction",
    "region_image_scores",
]

METHODS = ("softmin", "num_pixel_issues", "region_fraction")
"""Image-score methods of :func:`~segaudit.get_label_quality_scores`."""

RECOMMENDED_METHOD = "region_fraction"
"""The image score segaudit recommends when parity with the reference is not needed."""

SOFTMIN_TEMPERATURE = 0.1
"""The softmin temperature of the image scores when none is given (the reference's default)."""

SOFTMIN_WEIGHT = 1e-3
"""Weight of the softmin term of ``"region_fraction"``'s share: it orders images of equal share."""

EVIDENCE_WEIGHT = 0.5
"""Weight of the flagged pixels' softmin (:func:`flagged_softmin`) in ``"region_fraction"``."""


def check_method(method: Any, func: str) -> str:
    """Check that `method` is one of `METHODS`."""
    check_choice(method, "method", METHODS, func)
    return str(method)


def check_temperature(temperature: Any, func: str) -> float:
    """Check that the softmin temperature is a finite number > 0."""
    ok = isinstance(temperature, numbers.Real) and not isinstance(temperature, bool)
    if not ok or not math.isfinite(temperature) or temperature <= 0:
        raise param_error("temperature", func, "a finite number > 0", repr(temperature))
    return float(temperature)


_COUNT_ROW_PIXELS = 4096
"""Images of at least this many pixels are counted one by one (see :func:`flagged_per_image`)."""


def flagged_per_image(mask: np.ndarray) -> npt.NDArray[np.int64]:
    """Return the number of True pixels of each image of ``mask (N, ...)``.

    Image by image with ``np.count_nonzero`` when images are large (a sum over
    an axis converts every bool first, several times slower); at once when
    they are small, so that many tiny images cost no Python loop.

    Examples
    --------
    >>> flagged_per_image(np.array([[[True, False], [True, True]], [[False] * 2, [False, True]]]))
    array([3, 1])
    """
    m = np.asarray(mask)
    rows = m.reshape(m.shape[0], math.prod(m.shape[1:]))
    if rows.shape[1] < _COUNT_ROW_PIXELS:
        counts: npt.NDArray[np.int64] = rows.sum(axis=1, dtype=np.int64)
        return counts
    return np.fromiter((np.count_nonzero(row) for row in rows), dtype=np.int64, count=len(rows))


def issue_image_scores(flagged: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Return ``1 - flagged / valid`` per image; 1.0 for an image with no labelled pixel.

    Parameters
    ----------
    flagged, valid : ndarray of int, shape (N,)
        Flagged and labelled (non-void) pixels of each image.

    Examples
    --------
    >>> issue_image_scores(np.array([0, 3, 0]), np.array([10, 12, 0]))
    array([1.  , 0.75, 1.  ])
    """
    flagged = np.asarray(flagged, dtype=np.float64)
    valid = np.asarray(valid)
    return np.where(valid > 0, 1.0 - flagged / np.maximum(valid, 1), 1.0)


def flagged_softmin(
    scores: np.ndarray, mask: np.ndarray, valid: np.ndarray, temperature: float
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Return each image's flagged pixels and softmin score with the unflagged counted as ``s = 1``.

    ``sum(w s) / sum(w)`` over the labelled pixels, ``w = exp((1 - s) / T)``,
    where ``s`` is the self-confidence of a flagged pixel and 1 elsewhere: how
    sure the model is that the worst flagged pixels are mislabelled. Only the
    flagged pixels are read (one scan of `mask` gives both results); 1.0 for an
    image with none.

    Parameters
    ----------
    scores : ndarray of float, shape (N, P)
        Self-confidence per pixel (NaN on void pixels, which are never flagged).
    mask : ndarray of bool, shape (N, P)
        The flagged pixels.
    valid : ndarray of int, shape (N,)
        Labelled (non-void) pixels of each image.
    temperature : float
        The softmin temperature T, > 0.

    Returns
    -------
    flagged : ndarray of int64, shape (N,)
        Flagged pixels per image.
    evidence : ndarray of float64, shape (N,)
        The softmin scores.

    Examples
    --------
    >>> s = np.array([[0.1, 0.9, 0.9, 0.9], [0.5, 0.5, 0.5, 0.5]])
    >>> m = np.array([[True, False, False, False], [False] * 4])
    >>> flagged, evidence = flagged_softmin(s, m, np.array([4, 4]), 0.1)
    >>> flagged, evidence.round(4)
    (array([1, 0]), array([0.1003, 1.    ]))
    """
    n = len(scores)
    out = np.ones(n, dtype=np.float64)
    rows = np.asarray(mask).reshape(n, -1)
    flat = np.flatnonzero(rows)  # image by image, in pixel order (2-D nonzero: 3x slower)
    bounds = np.searchsorted(flat, np.arange(n + 1) * rows.shape[1])
    count = np.diff(bounds).astype(np.int64)
    if not flat.size:
        return count, out
    has = np.flatnonzero(count)
    starts = bounds[has]  # each image's flagged pixels: one run of `flat`
    s = np.asarray(scores).reshape(-1)[flat].astype(np.float64)
    z = (1.0 - s) / temperature
    top = np.maximum.reduceat(z, starts)
    rest = np.asarray(valid, dtype=np.int64)[has] - count[has]  # unflagged labelled: z = 0
    top = np.where(rest > 0, np.maximum(top, 0.0), top)
    w = np.exp(z - np.repeat(top, count[has]))
    other = rest * np.exp(-top)
    num = np.add.reduceat(w * s, starts)
    den = np.add.reduceat(w, starts)
    out[has] = (num + other) / (den + other)
    return count, out


def region_image_scores(
    flagged: np.ndarray, valid: np.ndarray, softmin: np.ndarray, evidence: np.ndarray
) -> np.ndarray:
    """Return the ``"region_fraction"`` score: the unflagged share and the flags' softmin.

    ``(1 - e) * ((1 - flagged / valid) * (1 - 1e-3) + 1e-3 * softmin) + e * evidence``
    with ``e = 0.5``, `flagged` being the pixels ``filter_by="confident_regions"``
    flags and `evidence` their :func:`flagged_softmin`. An image scores lower
    the more of it is flagged and the surer the model is that its worst
    flagged pixels are mislabelled. Images with no flag (most of them) are
    still ordered, by their softmin score.

    Parameters
    ----------
    flagged, valid : ndarray of int, shape (N,)
        Flagged and labelled (non-void) pixels of each image.
    softmin : ndarray of float, shape (N,)
        The images' softmin scores.
    evidence : ndarray of float, shape (N,)
        The images' :func:`flagged_softmin` scores.

    Examples
    --------
    >>> region_image_scores(np.array([0, 0, 5]), np.array([10, 10, 10]),
    ...                     np.array([0.9, 0.2, 0.9]), np.array([1.0, 1.0, 0.1]))
    array([0.99995, 0.9996 , 0.3002 ])
    """
    share = issue_image_scores(flagged, valid)
    w, e = SOFTMIN_WEIGHT, EVIDENCE_WEIGHT
    out: np.ndarray = (1.0 - e) * (share * (1.0 - w) + w * np.asarray(softmin, dtype=np.float64))
    return out + e * np.asarray(evidence, dtype=np.float64)


def region_fraction(
    scores: np.ndarray, mask: np.ndarray, valid: np.ndarray, softmin: np.ndarray, temperature: float
) -> np.ndarray:
    """Return the ``"region_fraction"`` scores of images from their pixels' s and flags.

    :func:`region_image_scores` of the flag counts and :func:`flagged_softmin`
    of ``scores (N, P)`` and ``mask (N, P)``, `valid` and `softmin` per image:
    the one computation every route (arrays, dask, ``LabelAudit``, the scan) makes.

    Examples
    --------
    >>> s = np.array([[0.1, 0.9, 0.9, 0.9]])
    >>> region_fraction(s, s < 0.5, np.array([4]), np.array([0.2]), 0.1).round(4)
    array([0.4249])
    """
    flagged, evidence = flagged_softmin(scores, mask, valid, temperature)
    return region_image_scores(flagged, valid, softmin, evidence)
