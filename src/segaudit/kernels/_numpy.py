"""Pure-numpy twins of the compiled kernels in :mod:`segaudit.kernels._numba`.

Implements :class:`~segaudit.kernels._protocol.Kernels` with the same
signatures, function for function, and never imports numba.

Same arguments and the same outputs, bit for bit, for everything that decides a
result: self-confidence, argmax, disagreement, per-tile class sums (added in
pixel order, as the kernel does), counts, the selection and the softmin image
scores (their weights' exp is :func:`~segaudit.kernels._exp.exp_nonpositive`
and their sums add in pixel order, through ``cumsum``). One number agrees only
to rounding: the largest row-sum deviation (the kernel adds float32 rows in
float32; it only feeds a warning). With ``from_logits`` both take the
exponential from :func:`~segaudit.kernels._exp.exp_table` (float16 logits) or
compute it with :func:`~segaudit.kernels._exp.exp_nonpositive`, so it agrees
too. Used when numba is switched off
(``SEGAUDIT_KERNEL=numpy``), by the default choice (``"auto"``, see
:mod:`segaudit.kernels._auto`) until the compiled kernel for a call's argument
types is ready, and to test the compiled kernels.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from segaudit._typing import BoolArray, FloatArray, IntArray
from segaudit.kernels._cells_numpy import float_cells as float_cells
from segaudit.kernels._cells_numpy import int_cells as int_cells
from segaudit.kernels._cells_numpy import join_cells as join_cells
from segaudit.kernels._exp import EXP_LOW, NO_TABLE, exp_nonpositive
from segaudit.kernels._image_numpy import issue_regions as issue_regions
from segaudit.kernels._pairs_numpy import pair_counts as pair_counts
from segaudit.kernels._protocol import (
    ERR_LABEL,
    ERR_NEGATIVE,
    ERR_NONE,
    ERR_NONFINITE,
    TILE,
    Int64Array,
    LabelArray,
    ScalarT,
    UIntArray,
    tiles_per_image,
)
from segaudit.kernels._regions_numpy import agree_sums as agree_sums
from segaudit.kernels._regions_numpy import region_flags as region_flags

__all__ = [
    "agree_sums",
    "float_cells",
    "int_cells",
    "issue_regions",
    "pair_counts",
    "join_cells",
    "compact",
    "compose_mask",
    "count_above",
    "gather_bucket",
    "key_histogram",
    "nth_match",
    "region_flags",
    "self_confidence",
    "softmin",
    "summarise",
]


def summarise(
    probs: FloatArray,
    bits: UIntArray,
    labels: LabelArray,
    num_classes: int,
    ignore_index: np.int64,
    use_ignore: bool,
    from_logits: bool,
    exp_table: FloatArray,
    keep_argmax: bool,
    s_out: FloatArray,
    disagree_out: BoolArray,
    a_out: IntArray,
    m_dis: FloatArray,
    a_dis: IntArray,
    n_dis: Int64Array,
    sums: npt.NDArray[np.float64],
    counts: Int64Array,
    maxdev: npt.NDArray[np.float64],
    errors: Int64Array,
    agree_sums: npt.NDArray[np.float64],
    agree_counts: Int64Array,
    runs: int,
) -> None:
    """Numpy twin of :func:`segaudit.kernels._numba.summarise` (all tiles at once: no `runs`)."""
    half_bits = probs if probs.dtype == np.uint16 else None
    if half_bits is not None:  # float16 values, passed as their bits
        probs = probs.view(np.float16)
    n, _, p_total = probs.shape
    tiles = tiles_per_image(p_total)
    errors[:, 0] = ERR_NONE
    lab = np.asarray(labels)
    yi = lab.astype(np.int64)
    void = (yi == ignore_index) & (yi == lab) if use_ignore else np.zeros(lab.shape, bool)
    bad_label = ~void & ((yi != lab) | (yi < 0) | (yi >= num_classes))
    finite = np.isfinite(probs)
    bad_value = ~finite if from_logits else ~finite | (probs < 0)
    bad_value &= ~void[:, None, :]
    first = np.full(errors.shape[0], np.iinfo(np.int64).max)
    if bad_label.any():
        _first_pixel_error(errors, first, ERR_LABEL, bad_label, tiles, None)
    if bad_value.any():
        _first_pixel_error(errors, first, ERR_NONFINITE, bad_value, tiles, finite)
    yi = np.where(void | bad_label, 0, yi)
    clean = np.where(finite, probs, 0)
    arg = clean.argmax(axis=1)
    best = np.take_along_axis(clean, arg[:, None, :], axis=1)[:, 0, :]
    if from_logits:
        denom = np.zeros(lab.shape)
        e_y = np.zeros(lab.shape)
        top = np.ones(lab.shape)  # exp of the largest logit
        shifted = np.ones(lab.shape, dtype=bool)
        if half_bits is not None and exp_table.size:
            for k in range(probs.shape[1]):  # class by class, in the kernel's order
                denom += exp_table[half_bits[:, k, :]]
            e_y = exp_table[np.take_along_axis(half_bits, yi[:, None, :], axis=1)[:, 0, :]]
            top = exp_table[np.take_along_axis(half_bits, arg[:, None, :], axis=1)[:, 0, :]]
            shifted = np.isnan(denom)  # a logit outside the table
        if shifted.any():
            x, b, y = clean.transpose(0, 2, 1)[shifted], best[shifted], yi[shifted]
            d = np.zeros(b.shape)
            ey = np.zeros(b.shape)
            for k in range(probs.shape[1]):
                e = exp_nonpositive(x[:, k].astype(np.float64) - b)
                d += e
                ey = np.where(y == k, e, ey)
            denom[shifted], e_y[shifted], top[shifted] = d, ey, 1.0
        s = e_y / denom
        m = top / denom
        dev = np.zeros(lab.shape)
    else:
        s = np.take_along_axis(clean, yi[:, None, :], axis=1)[:, 0, :].astype(np.float64)
        m = best
        dev = np.abs(clean.astype(np.float64).sum(axis=1) - 1.0)
    s = np.where(s == 0.0, 0.0, s)
    s_out[...] = np.where(void, np.nan, s)
    if keep_argmax:
        a_out[...] = np.where(void, -1, arg)
    dis = ~void & (arg != yi)
    disagree_out[...] = dis
    img, j = np.nonzero(dis)
    tile = img * tiles + j // TILE
    n_dis[:] = np.bincount(tile, minlength=n_dis.shape[0])
    rank = np.arange(tile.shape[0]) - (np.cumsum(n_dis) - n_dis)[tile]
    m_dis[tile * TILE + rank] = m[img, j]
    a_dis[tile * TILE + rank] = arg[img, j]
    tile_of = np.arange(n)[:, None] * tiles + np.arange(p_total)[None, :] // TILE
    keep = ~void
    bins = tile_of[keep] * num_classes + yi[keep]
    size = sums.size
    # bincount adds its weights in input order, like the kernel's loop over pixels
    sums.reshape(-1)[:] = np.bincount(bins, weights=s[keep], minlength=size)
    counts.reshape(-1)[:] = np.bincount(bins, minlength=size)
    if agree_sums.shape[0] > 0:  # over agreeing pixels, per tile, in pixel order
        agree = keep & ~dis
        bins = tile_of[agree] * num_classes + yi[agree]
        agree_sums.reshape(-1)[:] = np.bincount(bins, weights=s[agree], minlength=size)
        agree_counts.reshape(-1)[:] = np.bincount(bins, minlength=size)
    dev = np.where(keep, dev, 0.0)
    maxdev[:] = 0.0
    np.maximum.at(maxdev, tile_of.ravel(), dev.ravel())


def self_confidence(
    probs: FloatArray,
    bits: UIntArray,
    labels: LabelArray,
    num_classes: int,
    ignore_index: np.int64,
    use_ignore: bool,
    s_out: FloatArray,
    maxdev: npt.NDArray[np.float64],
    errors: Int64Array,
    runs: int,
) -> None:
    """Numpy twin of :func:`segaudit.kernels._numba.self_confidence` (via `summarise`)."""
    n, _, p = probs.shape
    tiles = errors.shape[0]
    summarise(
        probs,
        bits,
        labels,
        num_classes,
        ignore_index,
        use_ignore,
        False,
        NO_TABLE,
        False,
        s_out,
        np.empty((n, p), np.bool_),
        np.empty((1, 1), np.int32),
        np.empty(tiles * TILE, s_out.dtype),
        np.empty(tiles * TILE, np.int32),
        np.zeros(tiles, np.int64),
        np.zeros((tiles, num_classes)),
        np.zeros((tiles, num_classes), np.int64),
        maxdev,
        errors,
        np.zeros((0, num_classes)),
        np.zeros((0, num_classes), np.int64),
        runs,
    )


def _first_pixel_error(
    errors: np.ndarray,
    first: np.ndarray,
    code: int,
    bad: np.ndarray,
    tiles: int,
    finite: np.ndarray | None,
) -> None:
    """Keep, per tile, the problem at the lowest pixel (labels before probabilities).

    For probabilities (``bad`` is (n, K, P)) the class is the first bad one, and
    the code says whether it is not finite or negative.
    """
    if bad.ndim == 3:
        pix = bad.any(axis=1)
        cls = bad.argmax(axis=1)
    else:
        pix, cls = bad, np.full(bad.shape, -1)
    img, j = np.nonzero(pix)
    tile = img * tiles + j // TILE
    tile, pos = np.unique(tile, return_index=True)  # nonzero is ordered: first j per tile
    for t, i, jj in zip(tile, img[pos], j[pos], strict=True):
        if jj < first[t]:
            first[t] = jj
            k = cls[i, jj]
            this = code if finite is None or not finite[i, k, jj] else ERR_NEGATIVE
            errors[t] = (this, jj, k)


def key_histogram(keys: UIntArray, prefix: np.uint64, shift: int, nchunks: int) -> Int64Array:
    """Numpy twin of :func:`segaudit.kernels._numba.key_histogram`."""
    keys = np.asarray(keys).astype(np.uint64, copy=False)
    if shift < 64:
        keys = keys[(keys >> np.uint64(shift)) == np.uint64(prefix)]
    digits = (keys >> np.uint64(shift - 16)) & np.uint64(0xFFFF)
    return np.bincount(digits.astype(np.int64), minlength=65536).astype(np.int64)


def gather_bucket(
    keys: UIntArray, prefix: np.uint64, shift: int, base: int, limit: int
) -> tuple[npt.NDArray[np.uint64], Int64Array]:
    """Numpy twin of :func:`segaudit.kernels._numba.gather_bucket`."""
    keys = np.asarray(keys).astype(np.uint64, copy=False)
    if shift < 64:
        idx = np.flatnonzero((keys >> np.uint64(shift)) == np.uint64(prefix))[:limit]
    else:
        idx = np.arange(min(limit, keys.shape[0]))
    return keys[idx], idx.astype(np.int64) + base


def nth_match(keys: UIntArray, key: np.uint64, nth: int) -> tuple[int, int]:
    """Numpy twin of :func:`segaudit.kernels._numba.nth_match`."""
    hits = np.flatnonzero(np.asarray(keys).astype(np.uint64, copy=False) == np.uint64(key))
    if nth < hits.shape[0]:
        return int(hits[nth]), nth
    return -1, int(hits.shape[0])


def compact(per_tile: npt.NDArray[ScalarT], used: Int64Array, tile: int) -> npt.NDArray[ScalarT]:
    """Numpy twin of :func:`segaudit.kernels._numba.compact`."""
    parts = [per_tile[t * tile : t * tile + k] for t, k in enumerate(used.tolist()) if k]
    return np.concatenate(parts) if parts else per_tile[:0].copy()


def count_above(max_prob: FloatArray, argmax: IntArray, adjusted: FloatArray) -> int:
    """Numpy twin of :func:`segaudit.kernels._numba.count_above`."""
    return int(np.count_nonzero(max_prob.astype(np.float64) >= adjusted[argmax]))


def compose_mask(
    keys: UIntArray,
    cut_key: np.uint64,
    cut_index: np.int64,
    base: np.int64,
    mask: BoolArray,
    use_mask: bool,
) -> None:
    """Numpy twin of :func:`segaudit.kernels._numba.compose_mask`."""
    keys = np.asarray(keys).astype(np.uint64, copy=False)
    index = np.arange(keys.shape[0], dtype=np.int64) + base
    cut_key = np.uint64(cut_key)
    below = (keys < cut_key) | ((keys == cut_key) & (index <= cut_index))
    if use_mask:
        mask &= below
    else:
        mask[...] = below


def softmin(scores: FloatArray, temperature: float, out: FloatArray) -> None:
    """Numpy twin of :func:`segaudit.kernels._numba.softmin`.

    Examples
    --------
    A row with no labelled pixel (all NaN) scores 1.0:

    >>> out = np.empty(2)
    >>> softmin(np.array([[0.5, 0.5], [np.nan, np.nan]]), 0.1, out)
    >>> out
    array([0.5, 1. ])
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.shape[1] == 0:
        out[...] = 1.0
        return
    valid = ~np.isnan(s)
    low = np.where(valid, s, np.inf).min(axis=1)
    shift = (1.0 - low) / temperature
    with np.errstate(invalid="ignore"):  # rows of NaN only: replaced by 1.0 below
        x = np.where(valid, (1.0 - s) / temperature - shift[:, None], EXP_LOW)
    e = np.where(valid, exp_nonpositive(x), 0.0)
    # running sums add in pixel order, as the compiled loop does (a sum() is pairwise)
    num = np.cumsum(np.where(valid, s, 0.0) * e, axis=1)[:, -1]
    den = np.cumsum(e, axis=1)[:, -1]
    with np.errstate(invalid="ignore", divide="ignore"):
        out[...] = np.where(np.isinf(low), 1.0, num / den)
