"""Running totals over batches: class sums, disagreement records, row-sum check."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

from segaudit.engine._exact import ClassSums
from segaudit.kernels._batch import BatchSummary
from segaudit.kernels._protocol import Kernels

__all__ = ["FLOAT_TOLERANCE", "Accumulator", "count_issues"]

FLOAT_TOLERANCE = 1e-6


def count_issues(
    thresholds: np.ndarray, max_prob: np.ndarray, argmax: np.ndarray, kernels: Kernels
) -> int:
    """Count disagreeing pixels with ``m(x) >= t_{a(x)} - 1e-6``."""
    if max_prob.size == 0:
        return 0
    return int(kernels.count_above(max_prob, argmax, thresholds - FLOAT_TOLERANCE))


class Accumulator:
    """Everything the engine keeps between the single read and the selection.

    Parameters
    ----------
    num_classes : int
        K.
    keep : callable, optional
        Where the per-batch records of disagreeing pixels are kept: called with
        each array, returns the array to hold (e.g. a copy on disk); default: as is.
    """

    def __init__(
        self, num_classes: int, keep: Callable[[np.ndarray], np.ndarray] | None = None
    ) -> None:
        self.num_classes = num_classes
        self._keep = keep if keep is not None else (lambda a: a)
        self.sums = ClassSums(num_classes)
        self.max_prob: list[np.ndarray] = []
        self.argmax: list[np.ndarray] = []
        self.max_row_deviation = 0.0
        self.disagreeing = 0  # labelled pixels of the ranking grid where a(x) != y(x)

    def keep_records(self, batch: BatchSummary) -> tuple[np.ndarray, np.ndarray] | None:
        """Return the batch's records of disagreeing pixels as they will be held.

        Changes nothing here: a failure (e.g. a full spill disk) leaves the
        totals as they were. Pass the result to :meth:`commit`.
        """
        if not batch.max_prob.size:
            return None
        return self._keep(batch.max_prob), self._keep(batch.argmax)

    def commit(self, batch: BatchSummary, records: tuple[np.ndarray, np.ndarray] | None) -> None:
        """Fold one batch in, with its records from :meth:`keep_records`.

        Nothing here can fail half-way: the batch is added whole or not at all.
        """
        sums = ClassSums(self.num_classes)
        sums.add(self.sums.parts, self.sums.counts)
        sums.add(batch.sums, batch.counts)
        deviation = max(self.max_row_deviation, batch.max_row_deviation)
        self.sums = sums
        if records is not None:
            self.max_prob.append(records[0])
            self.argmax.append(records[1])
            self.disagreeing += int(records[0].size)
        self.max_row_deviation = deviation

    def thresholds(self) -> np.ndarray:
        """Confident threshold per class."""
        return self.sums.thresholds()

    def num_issues(self, thresholds: np.ndarray, kernels: Kernels) -> int:
        """Return the number of label issues T."""
        pairs = zip(self.max_prob, self.argmax, strict=True)
        return sum(count_issues(thresholds, m, a, kernels) for m, a in pairs)


def warn_row_sums(deviation: float, dtype: np.dtype, num_classes: int, stacklevel: int) -> None:
    """Warn when the largest ``|sum_k p_k - 1|`` exceeds what rounding explains."""
    tolerance = max(1e-4, 4.0 * num_classes * float(np.finfo(dtype).eps))
    if deviation > tolerance:
        warnings.warn(
            f"pred_probs do not sum to 1 over the classes (axis 1): the largest deviation is "
            f"{deviation:.3g} (tolerance {tolerance:.1g}). If these are logits or other raw "
            "model outputs, pass from_logits=True.",
            UserWarning,
            stacklevel=stacklevel + 1,
        )
