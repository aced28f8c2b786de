"""Block pooling for ``downsample=f``: probabilities by mean, labels by mode or mean."""

from __future__ import annotations

import numpy as np

__all__ = ["pool_labels", "pool_probs", "softmax"]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Numerically stable softmax over axis 1, in float64."""
    x = logits.astype(np.float64)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def pool_probs(probs: np.ndarray, factor: int) -> np.ndarray:
    """Mean over each f x f block, then renormalise over classes.

    Parameters
    ----------
    probs : ndarray, shape (n, K, H, W)
    factor : int

    Returns
    -------
    ndarray, shape (n, K, H // f, W // f)
        Same dtype; computed with the same numpy operations as the reference.
    """
    n, k, h, w = probs.shape
    small = probs.reshape(n, k, h // factor, factor, w // factor, factor).mean((5, 3))
    return small / np.expand_dims(small.sum(axis=1), 1)


def pool_labels(
    labels: np.ndarray, factor: int, method: str, num_classes: int, ignore_index: int | None
) -> np.ndarray:
    """Pool labels over f x f blocks.

    Parameters
    ----------
    labels : ndarray, shape (n, H, W)
    factor : int
    method : {"mode", "mean"}
        ``"mode"``: the most frequent class of the block (ties: smallest id).
        ``"mean"``: the rounded mean of the class ids (the reference's rule).
    num_classes : int
    ignore_index : int or None
        Void pixels are left out of both; an all-void block stays void.

    Returns
    -------
    ndarray of int64, shape (n, H // f, W // f)
    """
    n, h, w = labels.shape
    blocks = labels.reshape(n, h // factor, factor, w // factor, factor)
    valid = None if ignore_index is None else blocks != ignore_index
    if method == "mean":
        if valid is None:
            return np.round(blocks.mean((4, 2))).astype(np.int64)
        total = np.where(valid, blocks, 0).sum((4, 2), dtype=np.float64)
        count = valid.sum((4, 2))
        mean = np.round(total / np.maximum(count, 1)).astype(np.int64)
        return np.where(count > 0, mean, ignore_index)
    best = np.full((n, h // factor, w // factor), -1, dtype=np.int64)
    best_count = np.zeros(best.shape, dtype=np.int64)
    for k in range(num_classes):
        count = (blocks == k).sum((4, 2))
        better = count > best_count
        best[better] = k
        best_count[better] = count[better]
    if ignore_index is not None:
        best[best_count == 0] = ignore_index
    return best
