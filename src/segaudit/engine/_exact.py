"""Order-independent sums of self-confidences per class.

The kernel adds s per class within each fixed tile of an image (a float64 sum
in pixel order, so the same on every run). Each tile total t >= 0 is then
split into integer parts ``(floor(t), 2**32 * frac, 2**64 * frac)`` (the last
truncated below 2**-64) and added as int64. Integer addition is associative,
so the confident thresholds do not depend on batch size, chunking, thread count
or machine: a requirement the float running mean of the reference does not meet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

__all__ = ["THRESHOLD_FLOOR", "ClassSums", "split_exact"]

THRESHOLD_FLOOR = 2e-6
_MASK32 = (1 << 32) - 1


def _normalise(parts: np.ndarray) -> np.ndarray:
    """Carry the two fractional parts so that each stays below 2**32."""
    out = parts.astype(np.int64, copy=True)
    out[..., 1] += out[..., 2] >> 32
    out[..., 2] &= _MASK32
    out[..., 0] += out[..., 1] >> 32
    out[..., 1] &= _MASK32
    return out


def split_exact(totals: np.ndarray) -> np.ndarray:
    """Split float totals ``(..., K)`` >= 0 into int64 parts ``(..., K, 3)``."""
    t = np.asarray(totals, dtype=np.float64)
    ip = np.floor(t)
    frac = (t - ip) * 4294967296.0
    f1 = np.floor(frac)
    f2 = np.floor((frac - f1) * 4294967296.0)
    return np.stack([ip, f1, f2], axis=-1).astype(np.int64)


@dataclass
class ClassSums:
    """Per-class exact sum of self-confidence and pixel count.

    Parameters
    ----------
    num_classes : int
        K.
    """

    num_classes: int
    parts: np.ndarray = field(init=False)
    counts: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.parts = np.zeros((self.num_classes, 3), dtype=np.int64)
        self.counts = np.zeros(self.num_classes, dtype=np.int64)

    def add(self, parts: np.ndarray, counts: np.ndarray) -> None:
        """Add per-tile sums and counts.

        Parameters
        ----------
        parts : ndarray
            Float64 tile totals ``(T, K)``, or integer parts ``(T, K, 3)`` or ``(K, 3)``.
        counts : ndarray of int
            ``(T, K)`` or ``(K,)``.
        """
        parts = np.asarray(parts)
        if parts.dtype.kind == "f":
            parts = split_exact(parts)
        parts = parts.astype(np.int64, copy=False)
        counts = np.asarray(counts, dtype=np.int64)
        if parts.ndim == 3:
            parts = _normalise(parts).sum(axis=0)
            counts = counts.sum(axis=0)
        self.parts = _normalise(self.parts + _normalise(parts))
        self.counts = self.counts + counts

    def merge(self, other: ClassSums) -> ClassSums:
        """Return the sum of two partial results (for tree reductions)."""
        out = ClassSums(self.num_classes)
        out.add(self.parts, self.counts)
        out.add(other.parts, other.counts)
        return out

    def thresholds(self) -> np.ndarray:
        """Confident thresholds ``t_k``: mean self-confidence of class k, floored at 2e-6."""
        out = np.full(self.num_classes, THRESHOLD_FLOOR)
        for k in range(self.num_classes):
            count = int(self.counts[k])
            if count:
                ip, f1, f2 = (int(v) for v in self.parts[k])
                total = Fraction((ip << 64) + (f1 << 32) + f2, count << 64)
                out[k] = max(float(total), THRESHOLD_FLOOR)
        return out
