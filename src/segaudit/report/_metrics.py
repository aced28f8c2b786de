"""Given x predicted count matrices for the report, and the model's per-class IoU and accuracy."""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np
import pandas as pd

from segaudit.report._image import invalid

__all__ = ["check_matrix", "class_metrics", "count_pairs", "matrix_from_pairs"]


def count_pairs(
    labels: np.ndarray, predicted: np.ndarray, num_classes: int, *, ignore_index: int | None = None
) -> np.ndarray:
    """Count labelled pixels per (given class, predicted class): ``(K, K)`` int64.

    Sum it over a dataset's images and pass it as ``write_report(model_confusion=...)``.
    Pixels whose given label is void (`ignore_index`, or outside ``0..K-1``) or
    whose prediction is outside ``0..K-1`` (e.g. ``-1`` on void) are not counted.

    Parameters
    ----------
    labels, predicted : ndarray of int, same shape
        Given mask and model argmax.
    num_classes : int
        K.
    ignore_index : int, optional
        Void label of `labels`.

    Examples
    --------
    >>> count_pairs(np.array([[0, 1, 1, 255]]), np.array([[0, 0, 1, -1]]), 2, ignore_index=255)
    array([[1, 0],
           [1, 1]])
    """
    k = num_classes
    given = np.asarray(labels).reshape(-1)
    guess = np.asarray(predicted).reshape(-1)
    keep = (given >= 0) & (given < k) & (guess >= 0) & (guess < k)
    if ignore_index is not None:
        keep &= given != ignore_index
    pair = given.astype(np.intp) * k + guess.astype(np.intp)
    pair[~keep] = k * k  # one bin past the table for every pixel not counted
    table = np.bincount(pair, minlength=k * k + 1)[: k * k]
    return table.astype(np.int64).reshape(k, k)


def _class_index(value: object, names: Sequence[str]) -> int | None:
    if isinstance(value, str):
        return names.index(value) if value in names else None
    if isinstance(value, numbers.Real) and float(value).is_integer():
        label = int(float(value))
        return label if 0 <= label < len(names) else None
    return None


def matrix_from_pairs(frame: pd.DataFrame, names: Sequence[str]) -> tuple[np.ndarray, int]:
    """Sum a ``(given_label, predicted_label, num_pixel_issues)`` frame into a ``(K, K)`` matrix.

    Labels may be class names or ids. Returns the matrix and the count of pixels
    in rows whose labels are neither (void, say), which the matrix leaves out.

    Examples
    --------
    >>> frame = pd.DataFrame({"given_label": ["a", 1, 255], "predicted_label": ["b", "a", 0],
    ...                       "num_pixel_issues": [5, 2, 7]})
    >>> matrix, left_out = matrix_from_pairs(frame, ["a", "b"])
    >>> matrix.tolist(), left_out
    ([[0, 5], [2, 0]], 7)
    """
    k = len(names)
    matrix = np.zeros((k, k), dtype=np.int64)
    left_out = 0
    if len(frame) == 0:
        return matrix, left_out
    for given, guess, count in frame[
        ["given_label", "predicted_label", "num_pixel_issues"]
    ].itertuples(index=False, name=None):
        row, col = _class_index(given, names), _class_index(guess, names)
        if row is None or col is None:
            left_out += int(count)
        else:
            matrix[row, col] += int(count)
    return matrix, left_out


def check_matrix(matrix: object, num_classes: int, func: str) -> np.ndarray | None:
    """Return `matrix` as a ``(K, K)`` int64 array of counts, or None; raise when it is not one."""
    if matrix is None:
        return None
    array = np.asarray(matrix)
    shape = (num_classes, num_classes)
    if array.shape != shape or array.dtype.kind not in "iu" or (array < 0).any():
        got = f"an array of shape {array.shape} and dtype {array.dtype}"
        if array.shape == shape and array.dtype.kind in "iu":
            got = f"the negative count {int(array.min())}"
        raise invalid(
            "model_confusion", func, f"None or a {shape} array of non-negative integers", got
        )
    return array.astype(np.int64)


def class_metrics(
    matrix: np.ndarray, names: Sequence[str]
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Per-class IoU and pixel accuracy of the model against the labels, from a count matrix.

    Rows of `matrix` are given classes, columns predicted ones. For class k:
    IoU = C[k, k] / (row k + column k - C[k, k]); pixel accuracy (recall) =
    C[k, k] / row k; NaN where the denominator is 0. The totals are the overall
    pixel accuracy and the mean IoU over classes with a defined IoU.

    Examples
    --------
    >>> frame, totals = class_metrics(np.array([[3, 1], [0, 4]]), ["a", "b"])
    >>> frame["iou"].round(3).tolist(), frame["pixel_accuracy"].tolist()
    ([0.75, 0.8], [0.75, 1.0])
    >>> round(totals["pixel accuracy"], 3), round(totals["mean IoU"], 3)
    (0.875, 0.775)
    """
    counts = matrix.astype(np.float64)
    hits = np.diag(counts)
    given = counts.sum(axis=1)
    predicted = counts.sum(axis=0)
    union = given + predicted - hits
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, hits / np.where(union > 0, union, 1), np.nan)
        accuracy = np.where(given > 0, hits / np.where(given > 0, given, 1), np.nan)
    frame = pd.DataFrame(
        {
            "class": list(names),
            "labelled_pixels": matrix.sum(axis=1).astype(np.int64),
            "predicted_pixels": matrix.sum(axis=0).astype(np.int64),
            "iou": iou,
            "pixel_accuracy": accuracy,
        }
    )
    total = counts.sum()
    defined = iou[~np.isnan(iou)]
    totals = {
        "pixel accuracy": float(hits.sum() / total) if total else float("nan"),
        "mean IoU": float(defined.mean()) if defined.size else float("nan"),
    }
    return frame, totals
