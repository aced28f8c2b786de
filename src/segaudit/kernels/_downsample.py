"""Block pooling for ``downsample=f``: probabilities by mean, labels by mode or mean."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from segaudit._typing import BoolArray, FloatArray
from segaudit.kernels._batch import kernel_floats

__all__ = ["pool_labels", "pool_probs", "softmax"]


def softmax(logits: np.ndarray) -> npt.NDArray[np.float64]:
    """Numerically stable softmax over axis 1, in float64."""
    x = logits.astype(np.float64)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    out: npt.NDArray[np.float64] = e / e.sum(axis=1, keepdims=True)
    return out


def pool_probs(probs: np.ndarray, factor: int, valid: BoolArray | None = None) -> FloatArray:
    """Mean over each f x f block, then renormalise over classes.

    Parameters
    ----------
    probs : ndarray, shape (n, K, H, W)
    factor : int
    valid : ndarray of bool, shape (n, H, W), optional
        Labelled (non-void) pixels: only they enter a block's mean, so what a
        model says under void pixels never matters. A block with no labelled
        pixel keeps the plain mean (its pooled label is void anyway).

    Returns
    -------
    ndarray, shape (n, K, H // f, W // f)
        The dtype the kernels take (see
        :func:`~segaudit.kernels._batch.kernel_floats`: float64 stays float64,
        float32 stays float32). Without `valid` (or with no void pixel) this is
        computed with the same numpy operations as the reference; with it, void
        pixels add exact zeros to the same reduction, so a block without a void
        pixel keeps the reference's bits. Float sums depend on their order
        (numpy's here depends on ``W // f``), so, as in the reference, rounding
        may break an exact tie between classes.
    """
    probs = kernel_floats(probs)
    n, k, h, w = probs.shape
    shape = (n, k, h // factor, factor, w // factor, factor)
    if valid is None or valid.all():
        small = probs.reshape(shape).mean((5, 3))
    else:
        keep = valid.reshape(n, 1, h // factor, factor, w // factor, factor)
        count = keep.sum((5, 3))
        total = np.where(keep, probs.reshape(shape), 0).sum((5, 3), dtype=probs.dtype)
        plain = probs.reshape(shape).mean((5, 3))
        small = np.where(count > 0, total / np.maximum(count, 1).astype(probs.dtype), plain)
    out: FloatArray = small / np.expand_dims(small.sum(axis=1), 1)
    return out


def pool_labels(
    labels: np.ndarray, factor: int, method: str, num_classes: int, ignore_index: int | None
) -> npt.NDArray[np.int64]:
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

    Examples
    --------
    A 2x2 block with two 1s, one 0 and one void pixel; an all-void block stays void:

    >>> labels = np.array([[[1, 1, 9, 9], [0, 9, 9, 9]]])
    >>> pool_labels(labels, 2, "mode", 2, 9)
    array([[[1, 9]]])
    """
    n, h, w = labels.shape
    if not labels.dtype.isnative:
        labels = labels.astype(labels.dtype.newbyteorder("="))
    blocks = labels.reshape(n, h // factor, factor, w // factor, factor)
    if method == "mean":
        if ignore_index is None:
            rounded: npt.NDArray[np.int64] = np.round(blocks.mean((4, 2))).astype(np.int64)
            return rounded
        valid = blocks != ignore_index
        total = np.where(valid, blocks, 0).sum((4, 2), dtype=np.float64)
        count = valid.sum((4, 2))
        mean = np.round(total / np.maximum(count, 1)).astype(np.int64)
        pooled: npt.NDArray[np.int64] = np.where(count > 0, mean, ignore_index)
        return pooled
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
