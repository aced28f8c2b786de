"""Image scores from the engine's outputs: the methods, their options, one formula each."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import numpy.typing as npt

from segaudit._validation import check_choice, param_error

__all__ = [
    "METHODS",
    "RECOMMENDED_METHOD",
    "SOFTMIN_TEMPERATURE",
    "SOFTMIN_WEIGHT",
    "check_method",
    "check_temperature",
    "flagged_per_image",
    "issue_image_scores",
    "region_image_scores",
]

METHODS = ("softmin", "num_pixel_issues", "region_fraction")
"""Image-score methods of :func:`~segaudit.get_label_quality_scores`."""

RECOMMENDED_METHOD = "region_fraction"
"""The image score segaudit recommends when parity with the reference is not needed."""

SOFTMIN_TEMPERATURE = 0.1
"""The softmin temperature of the image scores when none is given (the reference's default)."""

SOFTMIN_WEIGHT = 1e-3
"""Weight of the softmin term of ``"region_fraction"``: it only orders images of equal share."""


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


def region_image_scores(flagged: np.ndarray, valid: np.ndarray, softmin: np.ndarray) -> np.ndarray:
    """Return the ``"region_fraction"`` score: the unflagged share, ties broken by softmin.

    ``(1 - flagged / valid) * (1 - 1e-3) + 1e-3 * softmin``, `flagged` being
    the pixels ``filter_by="confident_regions"`` flags. Images with no flag
    (most of them) are still ordered, by their softmin score.

    Parameters
    ----------
    flagged, valid : ndarray of int, shape (N,)
        Flagged and labelled (non-void) pixels of each image.
    softmin : ndarray of float, shape (N,)
        The images' softmin scores.

    Examples
    --------
    >>> region_image_scores(np.array([0, 0, 5]), np.array([10, 10, 10]),
    ...                     np.array([0.9, 0.2, 0.9]))
    array([0.9999, 0.9992, 0.5004])
    """
    share = issue_image_scores(flagged, valid)
    w = SOFTMIN_WEIGHT
    out: np.ndarray = share * (1.0 - w) + w * np.asarray(softmin, dtype=np.float64)
    return out
