"""Numpy twin of :mod:`segaudit.kernels._pairs_numba`: one image's (given, predicted) pairs."""

from __future__ import annotations

import numpy as np

from segaudit._typing import BoolArray, IntArray
from segaudit.kernels._protocol import Int64Array, LabelArray

__all__ = ["pair_counts"]


def pair_counts(
    labels: LabelArray,
    predicted: IntArray,
    mask: BoolArray,
    num_classes: int,
    pairs: Int64Array,
    flagged: Int64Array,
) -> None:
    """Add each non-void pixel to its (given, predicted) pair: all of them, and the flagged.

    Examples
    --------
    >>> pairs, flagged = np.zeros(4, np.int64), np.zeros(4, np.int64)
    >>> pair_counts(np.array([0, 1, 1, 9]), np.array([0, 0, 1, -1]),
    ...             np.array([False, True, False, True]), 2, pairs, flagged)
    >>> pairs.tolist(), flagged.tolist()
    ([1, 0, 1, 1], [0, 0, 1, 0])
    """
    k = num_classes
    pair = labels.astype(np.intp)
    pair *= k
    pair += predicted
    pair[predicted < 0] = k * k  # void: one bin past the table
    pairs += np.bincount(pair, minlength=k * k + 1)[: k * k]
    flagged += np.bincount(pair[mask], minlength=k * k + 1)[: k * k]
