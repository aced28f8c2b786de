"""`ReportImage`: everything the report shows about one image, checked on construction."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from segaudit._validation import param_error

__all__ = ["ReportImage", "invalid"]


def invalid(param: str, func: str, constraint: str, got: str) -> ValueError:
    """Build the shared error message (see :func:`segaudit._validation.param_error`)."""
    return param_error(param, func, constraint, got)


def _describe(array: np.ndarray) -> str:
    return f"an array of shape {array.shape} and dtype {array.dtype}"


@dataclass(frozen=True)
class ReportImage:
    """One image of the report: its masks, flagged pixels and score.

    Array-likes are converted with `numpy.asarray` (no copy when already arrays).

    Parameters
    ----------
    stem : str
        Image name (file stem); unique within a report. Regions refer to it.
    score : float
        Label-quality score in ``[0, 1]``; lower is worse.
    num_issues : int
        Number of flagged pixels.
    labels : ndarray of int, shape (H, W)
        Given mask; may contain the report's ``ignore_index``.
    predicted : ndarray of int, shape (H, W)
        Model argmax.
    issues : ndarray of bool, shape (H, W)
        Flagged pixels.
    image : ndarray of uint8, shape (H, W, 3), optional
        Original image; flagged pixels are drawn over it when given, over the given
        mask otherwise.

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.zeros((2, 3), dtype=int)
    >>> ReportImage("a", 0.5, 0, labels, labels, np.zeros((2, 3), bool)).labels.shape
    (2, 3)
    >>> ReportImage("a", 1.5, 0, labels, labels, np.zeros((2, 3), bool))
    Traceback (most recent call last):
    ...
    ValueError: The 'score' parameter of ReportImage must be a number in [0, 1]. Got 1.5 instead.
    """

    stem: str
    score: float
    num_issues: int
    labels: np.ndarray
    predicted: np.ndarray
    issues: np.ndarray
    image: np.ndarray | None = None

    def __post_init__(self) -> None:
        func = "ReportImage"
        if not isinstance(self.stem, str) or not self.stem:
            raise invalid("stem", func, "a non-empty str", repr(self.stem))
        score = self.score
        if (
            not isinstance(score, numbers.Real)
            or isinstance(score, bool)
            or math.isnan(score)
            or not 0 <= score <= 1
        ):
            raise invalid("score", func, "a number in [0, 1]", repr(score))
        count = self.num_issues
        if not isinstance(count, numbers.Integral) or isinstance(count, bool) or count < 0:
            raise invalid("num_issues", func, "a non-negative int", repr(count))
        labels = np.asarray(self.labels)
        if labels.ndim != 2 or labels.size == 0 or labels.dtype.kind not in "iu":
            raise invalid("labels", func, "a non-empty (H, W) integer array", _describe(labels))
        for name, kinds in (("predicted", "iu"), ("issues", "b")):
            array = np.asarray(getattr(self, name))
            dtype = "bool" if kinds == "b" else "integer"
            if array.shape != labels.shape or array.dtype.kind not in kinds:
                raise invalid(
                    name,
                    func,
                    f"a {dtype} array of the labels' shape {labels.shape}",
                    _describe(array),
                )
            object.__setattr__(self, name, array)
        object.__setattr__(self, "labels", labels)
        if self.image is not None:
            image = np.asarray(self.image)
            if image.shape != (*labels.shape, 3) or image.dtype != np.uint8:
                raise invalid(
                    "image",
                    func,
                    f"None or a uint8 array of shape {(*labels.shape, 3)}",
                    _describe(image),
                )
            object.__setattr__(self, "image", image)
