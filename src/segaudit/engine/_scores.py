"""Image scores from the engine's outputs: the methods, their options, one formula each."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from segaudit._validation import check_choice, param_error

__all__ = [
    "METHODS",
    "RECOMMENDED_METHOD",
    "SOFTMIN_WEIGHT",
    "check_method",
    "check_temperature",
    "issue_image_scores",
    "region_image_scores",
]

METHODS = ("softmin", "num_pixel_issues", "region_fraction")
"""Image-score methods of :func:`~segaudit.get_label_quality_scores`."""

RECOMMENDED_METHOD = "region_fraction"
"""The image score segaudit recommends when parity with the reference is not needed."""

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
