"""One batch through the fused kernel: the per-pixel summary and its error checks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from segaudit._typing import ArrayLike
from segaudit._validation import label_error
from segaudit.kernels._choice import kernel_runs
from segaudit.kernels._exp import NO_TABLE, exp_table
from segaudit.kernels._protocol import (
    ERR_LABEL,
    ERR_NEGATIVE,
    ERR_NONFINITE,
    TILE,
    Kernels,
    LabelArray,
    UIntArray,
    tiles_per_image,
)

__all__ = [
    "BatchSummary",
    "Scratch",
    "argmax_dtype",
    "as_batch",
    "index_dtype",
    "kernel_floats",
    "kernel_labels",
    "score_batch",
    "score_dtype",
    "summarise_batch",
]


class Scratch:
    """Reusable per-batch buffers, so a stream of batches does not fault in new pages.

    Owned by one caller (e.g. an `IssueFinder`); not shared between threads.
    """

    def __init__(self) -> None:
        self._buffers: dict[str, np.ndarray] = {}

    def get(self, name: str, size: int, dtype: np.dtype) -> np.ndarray:
        """Return an uninitialised 1-D buffer of `size` elements of `dtype`."""
        buf = self._buffers.get(name)
        if buf is None or buf.size < size or buf.dtype != dtype:
            buf = np.empty(size, dtype=dtype)
            self._buffers[name] = buf
        return buf[:size]


@dataclass
class BatchSummary:
    """What the engine keeps of one batch of n images with P pixels each.

    Attributes
    ----------
    scores : ndarray, shape (n, P)
        Self-confidence s(x); NaN on ignored pixels.
    disagree : ndarray of bool, shape (n, P)
        a(x) != y(x) on labelled pixels.
    max_prob, argmax : ndarray, shape (D,)
        m(x) and a(x) of the D disagreeing pixels, in pixel order.
    sums : ndarray, shape (T, K) float64 or (T, K, 3) int64
        Per-class sums of s, per tile: float64 totals added in pixel order, or
        their exact integer parts (see :mod:`segaudit.engine._exact`).
    counts : ndarray of int64, shape (T, K)
        Labelled pixels per class, per tile.
    max_row_deviation : float
        Largest ``|sum_k p_k(x) - 1|`` (0 for logits).
    agree : (sums, counts) or None
        Per-class float64 sums of s and counts over the agreeing pixels
        (a = y), per tile ``(T, K)``, added in pixel order, when asked for.
    """

    scores: np.ndarray
    disagree: np.ndarray
    max_prob: np.ndarray
    argmax: np.ndarray
    sums: np.ndarray
    counts: np.ndarray
    max_row_deviation: float
    agree: tuple[np.ndarray, np.ndarray] | None = None


def score_dtype(probs_dtype: npt.DTypeLike, from_logits: bool) -> np.dtype:
    """float32 scores hold float16/float32 probabilities exactly; else float64.

    Wider types (float64 in either byte order, longdouble) are read as float64.
    """
    if from_logits or np.dtype(probs_dtype).itemsize >= 8:
        return np.dtype(np.float64)
    return np.dtype(np.float32)


def index_dtype(num_classes: int) -> np.dtype:
    """Smallest integer type that holds a class index (a(x) of the disagreeing pixels).

    Examples
    --------
    >>> index_dtype(256), index_dtype(257)
    (dtype('uint8'), dtype('int32'))
    """
    return np.dtype(np.uint8 if num_classes <= 256 else np.int32)


def argmax_dtype(num_classes: int) -> np.dtype:
    """Integer type of a full argmax a(x): holds the classes 0..K-1 and -1 on void pixels.

    The one rule for every full argmax kept (the torch backend's, the stream's).

    Examples
    --------
    >>> argmax_dtype(32768), argmax_dtype(32769)
    (dtype('int16'), dtype('int32'))
    """
    return np.dtype(np.int16 if num_classes <= 32768 else np.int32)


def kernel_floats(values: np.ndarray) -> np.ndarray:
    """Return `values` as the kernels take them: float32 or float64, native byte order.

    No copy when they already are; otherwise a copy of this one batch:
    float16 (and non-float) values become float32, longdouble (float96/float128)
    becomes float64 (rounded: the kernels compute in float64 at most), and
    big-endian data on a little-endian machine (or the reverse) is byte-swapped.
    """
    dtype = values.dtype
    if dtype.kind != "f" or dtype.itemsize <= 2:
        return values.astype(np.float32)
    if dtype.itemsize > 8:
        return values.astype(np.float64)
    if not dtype.isnative:
        return values.astype(dtype.newbyteorder("="))
    return values


def kernel_labels(labels: np.ndarray) -> np.ndarray:
    """Return labels as the kernels take them: native integers, or float64.

    bool becomes uint8 (a view); other floats become float64 and non-native
    byte order is swapped (copies of this one batch).
    """
    dtype = labels.dtype
    if dtype == np.bool_:
        return labels.view(np.uint8)
    if dtype.kind == "f" and dtype != np.dtype(np.float64):
        return labels.astype(np.float64)
    if not dtype.isnative:
        return labels.astype(dtype.newbyteorder("="))
    return labels


def as_batch(probs: ArrayLike, labels: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Turn one batch slice into kernel-ready ``(n, K, P)`` and ``(n, P)`` arrays.

    No copy for C-ordered, native float16/float32/float64 numpy input (the
    fused kernels widen float16 tile by tile); otherwise the batch (only) is
    converted, see :func:`kernel_floats` and :func:`kernel_labels`.
    """
    p = np.asarray(probs)
    if p.dtype.kind == "f" and p.dtype.itemsize == 2:
        p = p if p.dtype.isnative else p.astype(np.float16)
    else:
        p = kernel_floats(p)
    lab = kernel_labels(np.asarray(labels))
    n, k = p.shape[:2]
    return p.reshape(n, k, -1), lab.reshape(n, -1)


def summarise_batch(
    probs: np.ndarray,
    labels: np.ndarray,
    *,
    kernels: Kernels,
    num_classes: int,
    ignore_index: int | None,
    from_logits: bool,
    image_offset: int,
    shape_hw: tuple[int, int],
    where: str = "",
    scores_out: np.ndarray | None = None,
    disagree_out: np.ndarray | None = None,
    argmax_out: np.ndarray | None = None,
    scratch: Scratch | None = None,
    agree: bool = False,
) -> BatchSummary:
    """Run the fused kernel on ``probs (n, K, P)`` and ``labels (n, P)``.

    Parameters
    ----------
    probs, labels : ndarray
        One batch from :func:`as_batch`.
    kernels : Kernels
        :mod:`segaudit.kernels._numba` or its numpy twin.
    num_classes : int
        K.
    ignore_index : int or None
        Label of void pixels.
    from_logits : bool
        Apply a softmax over K first.
    image_offset : int
        Index of the batch's first image in the dataset, for error messages.
    shape_hw : (int, int)
        (H, W) of the images, for error messages.
    where : str, default=""
        Extra context for error messages (e.g. ``" in batch 37"``).
    scores_out : ndarray, optional, shape (n, P)
        Where to write s (float32 or float64); allocated when None.
    disagree_out : ndarray of bool, optional, shape (n, P)
        Where to write the disagreement mask; allocated when None.
    argmax_out : ndarray of int, optional, shape (n, P)
        Where to keep a(x) of every pixel (-1 on ignored pixels), if wanted.
    scratch : Scratch, optional
        Buffers to reuse between batches.
    agree : bool, default=False
        Also sum s per tile and class over the agreeing pixels
        (:attr:`BatchSummary.agree`).

    Raises
    ------
    ValueError
        On a label outside ``0..K-1`` (other than `ignore_index`), a non-integer
        label, or a NaN, infinite or negative probability; the message names the
        first such pixel.
    """
    n, _, p = probs.shape
    if scores_out is None:
        scores_out = np.empty((n, p), dtype=score_dtype(probs.dtype, from_logits))
    if disagree_out is None:
        disagree_out = np.empty((n, p), dtype=np.bool_)
    keep_argmax = argmax_out is not None
    a_out = argmax_out if argmax_out is not None else np.empty((1, 1), dtype=np.int32)
    tiles = n * tiles_per_image(p)
    values = _kernel_values(probs)
    scratch = scratch or Scratch()
    m_dis = scratch.get("m", tiles * TILE, scores_out.dtype)
    a_dis = scratch.get("a", tiles * TILE, index_dtype(num_classes))
    n_dis = np.zeros(tiles, dtype=np.int64)
    sums = np.zeros((tiles, num_classes), dtype=np.float64)
    counts = np.zeros((tiles, num_classes), dtype=np.int64)
    maxdev = np.zeros(tiles, dtype=np.float64)
    errors = np.zeros((tiles, 3), dtype=np.int64)
    agree_rows = tiles if agree else 0
    agree_sums = np.zeros((agree_rows, num_classes), dtype=np.float64)
    agree_counts = np.zeros((agree_rows, num_classes), dtype=np.int64)
    table = exp_table() if from_logits and values.dtype == np.uint16 else NO_TABLE
    kernels.summarise(
        values,
        *_common_args(values, labels, num_classes, ignore_index),
        from_logits,
        table,
        keep_argmax,
        scores_out,
        disagree_out,
        a_out,
        m_dis,
        a_dis,
        n_dis,
        sums,
        counts,
        maxdev,
        errors,
        agree_sums,
        agree_counts,
        kernel_runs(),
    )
    _raise_first_error(
        errors, probs, labels, image_offset, shape_hw, where, num_classes, ignore_index
    )
    return BatchSummary(
        scores=scores_out,
        disagree=disagree_out,
        max_prob=kernels.compact(m_dis, n_dis, TILE),
        argmax=kernels.compact(a_dis, n_dis, TILE),
        sums=sums,
        counts=counts,
        max_row_deviation=float(maxdev.max(initial=0.0)),
        agree=(agree_sums, agree_counts) if agree else None,
    )


def score_batch(
    probs: np.ndarray,
    labels: np.ndarray,
    *,
    kernels: Kernels,
    num_classes: int,
    ignore_index: int | None,
    image_offset: int,
    shape_hw: tuple[int, int],
    scores_out: np.ndarray,
    where: str = "",
) -> float:
    """Write the self-confidence of probabilities (not logits) into `scores_out`.

    The scores-only twin of :func:`summarise_batch`: the same scores, checks and
    errors, without argmax, disagreement or class sums. Returns the largest
    ``|sum_k p_k(x) - 1|``.
    """
    tiles = probs.shape[0] * tiles_per_image(probs.shape[2])
    maxdev = np.zeros(tiles, dtype=np.float64)
    errors = np.zeros((tiles, 3), dtype=np.int64)
    values = _kernel_values(probs)
    kernels.self_confidence(
        values,
        *_common_args(values, labels, num_classes, ignore_index),
        scores_out,
        maxdev,
        errors,
        kernel_runs(),
    )
    _raise_first_error(
        errors, probs, labels, image_offset, shape_hw, where, num_classes, ignore_index
    )
    return float(maxdev.max(initial=0.0))


def _kernel_values(probs: np.ndarray) -> np.ndarray:
    """`probs` as the kernels take them: float16 values as their bits (uint16), no copy."""
    return probs.view(np.uint16) if probs.dtype == np.float16 else probs


def _common_args(
    probs: np.ndarray, labels: LabelArray, num_classes: int, ignore_index: int | None
) -> tuple[UIntArray, LabelArray, int, np.int64, bool]:
    """Return the kernels' arguments after `probs`: sign bits, labels, K, void label, use it."""
    bits = probs.view(f"u{probs.dtype.itemsize}")
    if ignore_index is None:
        return bits, labels, num_classes, np.int64(0), False
    return bits, labels, num_classes, np.int64(ignore_index), True


def _raise_first_error(
    errors: np.ndarray,
    probs: np.ndarray,
    labels: np.ndarray,
    image_offset: int,
    shape_hw: tuple[int, int],
    where: str,
    num_classes: int,
    ignore_index: int | None,
) -> None:
    """Raise for the first bad pixel (lowest image, then pixel) of the batch, if any."""
    bad = np.flatnonzero(errors[:, 0])
    if not bad.size:
        return
    p = probs.shape[2]
    per_image = tiles_per_image(p)
    first = min(bad, key=lambda t: (t // per_image, errors[t, 1]))
    code, j, cls = (int(v) for v in errors[first])
    img = first // per_image
    w = shape_hw[1]
    loc = f"image {image_offset + img}, row {j // w}, column {j % w}{where}"
    if code == ERR_LABEL:
        raise label_error(labels[img, j].item(), num_classes, ignore_index, loc)
    value = probs[img, cls, j].item()
    if code == ERR_NONFINITE:
        raise ValueError(f"pred_probs must be finite; got {value!r} at class {cls} of {loc}.")
    if code == ERR_NEGATIVE:
        raise ValueError(
            f"pred_probs must be probabilities >= 0; got {value!r} at class {cls} of {loc}. "
            "If these are raw model outputs, pass from_logits=True."
        )
    raise AssertionError(f"unknown kernel error code {code}")  # pragma: no cover
