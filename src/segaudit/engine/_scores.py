"""Image scores from the engine's outputs: the methods, their options, one formula each."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from segaudit._validation import check_choice, param_error

__all__ = ["METHODS", "check_method", "check_temperature", "issue_image_scores"]

METHODS = ("softmin", "num_pixel_issues")
"""Image-score methods of :func:`~segaudit.get_label_quality_scores`."""


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
