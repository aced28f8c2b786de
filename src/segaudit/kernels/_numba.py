"""The compiled per-pixel kernels (numba): one fused pass per batch.

This module implements :class:`~segaudit.kernels._protocol.Kernels`; every
function has a twin in :mod:`segaudit.kernels._numpy` that gives identical
results, and the engine picks one at call time. Compiled with
:func:`~segaudit.kernels._jit.njit` (nogil, cached on disk).

It is longer than most modules (about 600 lines) on purpose: it is the whole
compiled implementation of the protocol, function for function beside its
numpy twin, so that one module is one backend; and the fused pass
(:func:`summarise` with its helpers, float16 widening included) is some 300
lines of hand-unrolled loops (four class planes per pass) that read best in
one piece.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import numpy.typing as npt
from llvmlite import ir  # type: ignore[import-untyped]
from numba import types
from numba.extending import intrinsic, overload

from segaudit._typing import BoolArray, FloatArray, IntArray
from segaudit.kernels._cells_numba import float_cells as float_cells
from segaudit.kernels._cells_numba import int_cells as int_cells
from segaudit.kernels._cells_numba import join_cells as join_cells
from segaudit.kernels._exp import EXP_COEFFS, EXP_LOW, LN2_HI, LN2_LO, LOG2E, MAGIC
from segaudit.kernels._image_numba import issue_regions as issue_regions
from segaudit.kernels._jit import njit as _njit
from segaudit.kernels._pairs_numba import pair_counts as pair_counts
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
)
from segaudit.kernels._regions_numba import _tiles_per_image
from segaudit.kernels._regions_numba import agree_sums as agree_sums
from segaudit.kernels._regions_numba import region_flags as region_flags

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

_OK, _VOID, _BAD_LABEL = 0, 1, 2
(_C2, _C3, _C4, _C5, _C6, _C7, _C8, _C9, _C10, _C11, _C12, _C13) = EXP_COEFFS
_MAGIC_BITS = np.int64(np.float64(MAGIC).view(np.int64))
_BIAS = np.int64(1023)
_HALF_STEP = np.float32(2.0**-24)  # value of the lowest bit of a float16 subnormal


def _tile_buffer(probs: np.ndarray, k_total: int) -> np.ndarray:
    """Return the float32 (K, TILE) buffer a tile of float16 bits is widened into (numba).

    For float32/float64 input, an empty array of that dtype: the tile's values
    are read in place, and the buffer's dtype is theirs either way.
    """
    raise NotImplementedError  # pragma: no cover - compiled through its overload


def _fill_tile(probs: np.ndarray, buf: np.ndarray, img: int, j0: int, size: int) -> None:
    """Widen one tile of float16 bits into `buf` (numba only; nothing for float input)."""
    raise NotImplementedError  # pragma: no cover - compiled through its overload


def _plane(probs: np.ndarray, buf: np.ndarray, img: int, k: int, j0: int, size: int) -> np.ndarray:
    """Class plane `k` of one tile, as values (numba only)."""
    raise NotImplementedError  # pragma: no cover - compiled through its overload


def _value(
    probs: np.ndarray, buf: np.ndarray, img: int, k: int | np.int64, j0: int, jj: int
) -> float:
    """Value of class `k` at pixel `jj` of one tile (numba only)."""
    raise NotImplementedError  # pragma: no cover - compiled through its overload


def _table_sums(
    probs: np.ndarray, table: np.ndarray, img: int, j0: int, size: int, denom: np.ndarray
) -> bool:
    """Add each pixel's exp(x_k) from `table` into `denom`, class by class.

    Float16 bits with a table only (numba only); False, doing nothing, otherwise.
    """
    raise NotImplementedError  # pragma: no cover - compiled through its overload


def _table_exp(probs: np.ndarray, table: np.ndarray, img: int, k: int, j: int) -> float:
    """``table[probs[img, k, j]]`` for float16 bits (numba only)."""
    raise NotImplementedError  # pragma: no cover - compiled through its overload


# numba compares the parameters (annotations included) of an overload's typing
# function and of the implementation it returns: hence no annotations here.


@overload(_tile_buffer, jit_options={"nogil": True})
def _tile_buffer_numba(probs, k_total):  # type: ignore[no-untyped-def]
    if probs.dtype == types.uint16:
        return lambda probs, k_total: np.empty((k_total, TILE), dtype=np.float32)
    return lambda probs, k_total: np.empty((0, 0), dtype=probs.dtype)


@overload(_fill_tile, jit_options={"nogil": True})
def _fill_tile_numba(probs, buf, img, j0, size):  # type: ignore[no-untyped-def]
    if probs.dtype == types.uint16:
        return lambda probs, buf, img, j0, size: _widen_tile(probs, buf, img, j0, size)
    return lambda probs, buf, img, j0, size: None


@overload(_plane, jit_options={"nogil": True})
def _plane_numba(probs, buf, img, k, j0, size):  # type: ignore[no-untyped-def]
    if probs.dtype == types.uint16:
        return lambda probs, buf, img, k, j0, size: buf[k, :size]
    return lambda probs, buf, img, k, j0, size: probs[img, k, j0 : j0 + size]


@overload(_value, jit_options={"nogil": True})
def _value_numba(probs, buf, img, k, j0, jj):  # type: ignore[no-untyped-def]
    if probs.dtype == types.uint16:
        return lambda probs, buf, img, k, j0, jj: buf[k, jj]
    return lambda probs, buf, img, k, j0, jj: probs[img, k, j0 + jj]


@overload(_table_sums, jit_options={"nogil": True})
def _table_sums_numba(probs, table, img, j0, size, denom):  # type: ignore[no-untyped-def]
    if probs.dtype != types.uint16:
        return lambda probs, table, img, j0, size, denom: False

    def add(probs, table, img, j0, size, denom):  # type: ignore[no-untyped-def]
        if table.size == 0:
            return False
        # only the sum here: the label's term is looked up per pixel after, which
        # keeps this loop free of a select per value (it vectorises)
        for k in range(probs.shape[1]):  # class by class, as the shifted path adds
            row = probs[img, k, j0 : j0 + size]
            for jj in range(size):
                denom[jj] += table[row[jj]]
        return True

    return add


@overload(_table_exp, jit_options={"nogil": True})
def _table_exp_numba(probs, table, img, k, j):  # type: ignore[no-untyped-def]
    if probs.dtype != types.uint16:
        return lambda probs, table, img, k, j: 1.0
    return lambda probs, table, img, k, j: table[probs[img, k, j]]


@_njit()
def _class_or_zero(yf: float, k_total: int) -> int:
    """Return the label as a class index when it is one, else 0 (void or bad: unused)."""
    yi = np.int64(yf)
    return yi if yi == yf and 0 <= yi < k_total else 0


@_njit()
def _shifted_exp_sums(
    probs: FloatArray,
    buf: FloatArray,
    lab: LabelArray,
    img: int,
    j0: int,
    size: int,
    best: FloatArray,
    denom: FloatArray,
    e_y: FloatArray,
    jj: int,
) -> None:
    """Set pixel `jj`'s sum of exp(x_k - max) and its label's term, as the tile loop adds them."""
    d = 0.0
    ey = 0.0
    for k in range(probs.shape[1]):
        e = _exp_nonpositive(np.float64(_value(probs, buf, img, k, j0, jj)) - best[jj])
        d += e
        ey = e if lab[jj] == k else ey
    denom[jj] = d
    e_y[jj] = ey


@_njit()
def _widen_tile(probs: UIntArray, buf: FloatArray, img: int, j0: int, size: int) -> None:
    """Write the float32 values of one tile of float16 bits (exact) into ``buf[:, :size]``.

    Normal numbers, infinities and NaNs (payload kept) by moving their bit
    fields; subnormals, rare, in a second pass as multiples of 2**-24.
    """
    out = buf.view(np.uint32)
    for k in range(probs.shape[1]):
        src = probs[img, k, j0 : j0 + size]
        row = out[k, :size]
        tiny = False
        for jj in range(size):
            h = np.uint32(src[jj])
            rest = h & np.uint32(0x7FFF)
            wide = (rest << np.uint32(13)) + np.uint32(112 << 23)
            wide += np.uint32(112 << 23) if rest >= 0x7C00 else np.uint32(0)
            wide = wide if rest >= 0x0400 else np.uint32(0)
            row[jj] = wide | ((h & np.uint32(0x8000)) << np.uint32(16))
            tiny |= np.uint32(rest - np.uint32(1)) < np.uint32(0x03FF)
        if tiny:
            values = buf[k, :size]
            for jj in range(size):
                rest = np.uint32(src[jj]) & np.uint32(0x7FFF)
                if 0 < rest < 0x0400:
                    v = np.float32(rest) * _HALF_STEP
                    values[jj] = -v if src[jj] & 0x8000 else v


@_njit()
def _label_state(
    yf: float, num_classes: int, ignore_index: np.int64, use_ignore: bool
) -> tuple[int | np.int64, int]:
    """Class index of one label (0 unless usable) and whether it is usable, void or bad.

    The label-range rule of :func:`segaudit._validation.bad_labels`, applied
    pixel by pixel inside the kernel; the error message is built from the
    tile's first bad pixel by :func:`segaudit._validation.label_error`.
    """
    yi = np.int64(yf)
    if use_ignore and yi == ignore_index and yi == yf:
        return 0, _VOID
    if yi != yf or yi < 0 or yi >= num_classes:
        return 0, _BAD_LABEL
    return yi, _OK


@_njit()
def _note_problem(
    err: Int64Array,
    state: int,
    probs: FloatArray,
    buf: FloatArray,
    img: int,
    j0: int,
    size: int,
    jj: int,
    total: float,
    maybe_negative: bool,
    from_logits: bool,
) -> None:
    """Keep the tile's first problem in `err` as (code, pixel, class); labels go first."""
    if err[0] != ERR_NONE:
        return
    if state == _BAD_LABEL:
        err[0], err[1], err[2] = ERR_LABEL, j0 + jj, -1
    elif maybe_negative or not math.isfinite(total):
        cls, code = _first_bad_class(probs, buf, img, j0, size, jj, from_logits)
        if code != ERR_NONE:
            err[0], err[1], err[2] = code, j0 + jj, cls


@_njit()
def _four_planes(
    probs: FloatArray, buf: FloatArray, bits: UIntArray, img: int, k: int, j0: int, size: int
) -> tuple[
    FloatArray, FloatArray, FloatArray, FloatArray, UIntArray, UIntArray, UIntArray, UIntArray
]:
    """Return views of class planes k..k+3 of one tile, as values and as bits."""
    stop = j0 + size
    return (
        _plane(probs, buf, img, k, j0, size),
        _plane(probs, buf, img, k + 1, j0, size),
        _plane(probs, buf, img, k + 2, j0, size),
        _plane(probs, buf, img, k + 3, j0, size),
        bits[img, k, j0:stop],
        bits[img, k + 1, j0:stop],
        bits[img, k + 2, j0:stop],
        bits[img, k + 3, j0:stop],
    )


@_njit()
def _first_bad_class(
    probs: FloatArray, buf: FloatArray, img: int, j0: int, size: int, jj: int, from_logits: bool
) -> tuple[int, int]:
    """Class index and error code of the first bad probability of pixel `jj` of a tile."""
    for k in range(probs.shape[1]):
        v = _value(probs, buf, img, k, j0, jj)
        if not math.isfinite(v):
            return k, ERR_NONFINITE
        if v < 0.0 and not from_logits:
            return k, ERR_NEGATIVE
    return -1, ERR_NONE


@intrinsic
def _float_bits(typingctx, x):  # type: ignore[no-untyped-def]
    """Return the bits of a float64 as an int64 (an LLVM bitcast, which vectorises)."""
    sig = types.int64(types.float64)
    return sig, lambda context, builder, signature, args: builder.bitcast(args[0], ir.IntType(64))


@intrinsic
def _bits_float(typingctx, x):  # type: ignore[no-untyped-def]
    """Return the float64 whose bits are an int64 (an LLVM bitcast)."""
    sig = types.float64(types.int64)
    return sig, lambda context, builder, signature, args: builder.bitcast(args[0], ir.DoubleType())


_WIDE_VECTORS = ('"prefer-vector-width"="512"', '"min-legal-vector-width"="512"')
"""LLVM function attributes: vectorise with the CPU's widest registers (AVX-512's 512 bits)."""


@intrinsic
def _wide_vectors(typingctx):  # type: ignore[no-untyped-def]
    """Let LLVM vectorise the calling function with 512-bit registers where the CPU has them.

    On x86 LLVM prefers 256-bit vectors even on AVX-512 CPUs; these function
    attributes lift that for the calling function alone (numba's only
    setting, ``NUMBA_CPU_FEATURES``, would change every numba function in the
    process). Emits no code; a CPU without AVX-512 keeps its widest vectors,
    and other targets ignore the attributes. llvmlite accepts only the
    attributes it knows, so the calling function's own set is told of these two
    (an llvmlite whose attribute sets work otherwise gets no hint).
    """
    sig = types.none()

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        attrs = builder.function.attributes
        try:
            attrs._known = attrs._known | frozenset(_WIDE_VECTORS)
            for name in _WIDE_VECTORS:
                attrs.add(name)
        except (AttributeError, TypeError, ValueError):  # another llvmlite: no hint, same code
            pass
        return context.get_dummy_value()

    return sig, codegen


@_njit()
def _exp_nonpositive(v: float) -> float:
    """``exp(v)`` for ``v <= 0``, as :func:`~segaudit.kernels._exp.exp_nonpositive`.

    Plain arithmetic and bitcasts, so that a loop over pixels vectorises
    (libm's exp does not); the same operations in the same order as the numpy
    twin, so the same bits.
    """
    xc = v if v >= EXP_LOW else EXP_LOW
    t = xc * LOG2E + MAGIC
    n = t - MAGIC
    r = (xc - n * LN2_HI) - n * LN2_LO
    r2 = r * r
    r4 = r2 * r2
    w1 = (_C2 + _C3 * r) + (_C4 + _C5 * r) * r2
    w2 = (_C6 + _C7 * r) + (_C8 + _C9 * r) * r2
    w3 = (_C10 + _C11 * r) + (_C12 + _C13 * r) * r2
    p = 1.0 + (r + r2 * (w1 + (w2 + w3 * r4) * r4))
    # an intrinsic's typing context is passed by numba, not by the caller
    k = _float_bits(t) - _MAGIC_BITS  # type: ignore[call-arg]
    h = k >> 1
    s1 = _bits_float((h + _BIAS) << 52)
    s2 = _bits_float((k - h + _BIAS) << 52)
    return (p * s1) * s2


@_njit()
def _run_bounds(c: int, tiles: int, chunks: int) -> tuple[int, int]:
    """Return the first tile and the end of run `c` of `chunks` runs over `tiles` tiles."""
    return c * tiles // chunks, (c + 1) * tiles // chunks


@_njit()
def _tile_at(t: int, per_image: int, p_total: int) -> tuple[int, int, int]:
    """Return tile `t`'s image, first pixel in that image, and size in pixels."""
    j0 = (t % per_image) * TILE
    return t // per_image, j0, min(j0 + TILE, p_total) - j0


@_njit(parallel=True)
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
    """Fused pass over one batch.

    probs (n, K, P) float32/64, or float16 as its bits (uint16: each tile is
    widened, exactly, into a float32 buffer first), and `bits`, the same
    memory viewed as unsigned integers (a sign bit anywhere sends the tile to
    an exact negativity check), labels (n, P). Writes s and disagree per pixel
    (n, P), and a per pixel when `keep_argmax`; m and a of the disagreeing
    pixels of tile t, in pixel order, at ``m_dis[t * TILE:]``, ``a_dis[t * TILE:]``
    with their number in ``n_dis[t]``; per tile: the float64 sum of s per class,
    added in pixel order (fixed tiles make it independent of batching), class
    counts, the largest |row sum - 1| and the first bad input as (code, pixel,
    class); when `agree_sums` and `agree_counts` have a row per tile (not
    ``(0, K)``), also the sum of s and the count per class over the tile's
    agreeing pixels (labelled, a = y), added in pixel order, as
    :func:`~segaudit.kernels._regions_numba.agree_sums` adds them.

    With `from_logits`, s and m are a softmax's: for float16 logits and a
    non-empty `exp_table` (:func:`~segaudit.kernels._exp.exp_table`), each
    exp(x_k) is looked up and ``p_k = exp(x_k) / sum_j exp(x_j)``; a pixel with
    a logit outside the table (NaN sum), and any logits without a table, take
    ``exp(x_k - max)`` by :func:`_exp_nonpositive`.

    Each tile of up to TILE pixels is swept class plane by class plane, so the
    inner loops run over contiguous memory and vectorise. The tiles are cut
    into `runs` runs (one per thread), each of which makes its scratch buffers
    once; the results do not depend on `runs`.
    """
    n, k_total, p_total = probs.shape
    per_image = _tiles_per_image(p_total)
    tiles = n * per_image
    chunks = min(tiles, max(runs, 1))
    for c in numba.prange(chunks):  # one run of tiles per thread
        _wide_vectors()  # type: ignore[call-arg]  # the prange body is a function of its own
        # scratch made once per run, not per tile: a (K, TILE) buffer is often
        # above malloc's mmap threshold, and mapping it per tile costs page faults
        buf = _tile_buffer(probs, k_total)
        best_run = np.empty(TILE, dtype=buf.dtype)
        arg_run = np.empty(TILE, dtype=np.int32)
        total_run = np.empty(TILE, dtype=buf.dtype)
        denom_run = np.empty(TILE if from_logits else 0, dtype=np.float64)
        e_y_run = np.empty(TILE if from_logits else 0, dtype=np.float64)
        top_run = np.empty(TILE if from_logits else 0, dtype=np.float64)
        first, stop = _run_bounds(c, tiles, chunks)
        for t in range(first, stop):
            img, j0, size = _tile_at(t, per_image, p_total)
            # Row views indexed from 0 keep numba from emitting wraparound checks
            # (which stop LLVM from vectorising); jj below is never negative.
            lab = labels[img, j0 : j0 + size]
            s_row = s_out[img, j0 : j0 + size]
            d_row = disagree_out[img, j0 : j0 + size]
            m_row = m_dis[t * TILE : t * TILE + size]
            a_row = a_dis[t * TILE : t * TILE + size]
            _fill_tile(probs, buf, img, j0, size)
            best = best_run[:size]
            arg = arg_run[:size]
            arg[:] = 0
            total = total_run[:size]
            plane = _plane(probs, buf, img, 0, j0, size)
            signs = bits[img, 0, j0 : j0 + size]
            seen = signs[0] & 0
            for jj in range(size):
                best[jj] = plane[jj]
                total[jj] = plane[jj]
                seen |= signs[jj]
            # Four planes per pass keep (best, arg, total) in registers across them:
            # a quarter of the loads and stores of a plane-by-plane sweep. Same
            # comparisons and additions in class order, so the same results.
            k = 1
            while k + 4 <= k_total:
                p1, p2, p3, p4, s1, s2, s3, s4 = _four_planes(probs, buf, bits, img, k, j0, size)
                k1, k2, k3, k4 = np.int32(k), np.int32(k + 1), np.int32(k + 2), np.int32(k + 3)
                for jj in range(size):
                    b, a, tt = best[jj], arg[jj], total[jj]
                    v = p1[jj]
                    gt = v > b
                    b, a, tt = (v if gt else b), (k1 if gt else a), tt + v
                    v = p2[jj]
                    gt = v > b
                    b, a, tt = (v if gt else b), (k2 if gt else a), tt + v
                    v = p3[jj]
                    gt = v > b
                    b, a, tt = (v if gt else b), (k3 if gt else a), tt + v
                    v = p4[jj]
                    gt = v > b
                    b, a, tt = (v if gt else b), (k4 if gt else a), tt + v
                    best[jj], arg[jj], total[jj] = b, a, tt
                    seen |= s1[jj] | s2[jj] | s3[jj] | s4[jj]
                k += 4
            while k < k_total:
                plane = _plane(probs, buf, img, k, j0, size)
                signs = bits[img, k, j0 : j0 + size]
                kk = np.int32(k)
                for jj in range(size):
                    v = plane[jj]
                    gt = v > best[jj]
                    best[jj] = v if gt else best[jj]
                    arg[jj] = kk if gt else arg[jj]
                    total[jj] += v
                    seen |= signs[jj]
                k += 1
            sign = np.uint64(seen) >> np.uint64(bits.itemsize * 8 - 1)
            maybe_negative = not from_logits and sign != 0
            denom = denom_run[: size if from_logits else 0]
            e_y = e_y_run[: size if from_logits else 0]
            top = top_run[: size if from_logits else 0]  # exp of the largest logit
            if from_logits:
                denom[:] = 0.0
                e_y[:] = 0.0
                if _table_sums(probs, exp_table, img, j0, size, denom):
                    for jj in range(size):
                        if math.isnan(denom[jj]):  # a logit outside the table: shifted
                            _shifted_exp_sums(probs, buf, lab, img, j0, size, best, denom, e_y, jj)
                            top[jj] = 1.0
                        else:
                            y = _class_or_zero(lab[jj], k_total)
                            e_y[jj] = _table_exp(probs, exp_table, img, y, j0 + jj)
                            top[jj] = _table_exp(probs, exp_table, img, arg[jj], j0 + jj)
                else:
                    top[:] = 1.0
                    for k in range(k_total):
                        plane = _plane(probs, buf, img, k, j0, size)
                        for jj in range(size):
                            e = _exp_nonpositive(np.float64(plane[jj]) - best[jj])
                            denom[jj] += e
                            e_y[jj] = e if lab[jj] == k else e_y[jj]
            err = errors[t]
            err[0] = ERR_NONE
            dev = 0.0
            nd = 0
            acc = np.zeros(num_classes, dtype=np.float64)
            cnt = np.zeros(num_classes, dtype=np.int64)
            want = agree_sums.shape[0] > 0  # the same branch for every pixel
            agree = np.zeros(num_classes, dtype=np.float64)
            agree_n = np.zeros(num_classes, dtype=np.int64)
            for jj in range(size):
                yi, state = _label_state(lab[jj], num_classes, ignore_index, use_ignore)
                if state == _VOID:
                    s_row[jj] = np.nan
                    d_row[jj] = False
                    if keep_argmax:
                        a_out[img, j0 + jj] = -1
                    continue
                tot = np.float64(total[jj])
                if state == _BAD_LABEL or maybe_negative or not math.isfinite(tot):  # rare
                    _note_problem(
                        err, state, probs, buf, img, j0, size, jj, tot, maybe_negative, from_logits
                    )
                if from_logits:
                    s = e_y[jj] / denom[jj]
                    m = top[jj] / denom[jj]
                else:
                    s = np.float64(_value(probs, buf, img, yi, j0, jj))
                    m = np.float64(best[jj])
                    d = abs(tot - 1.0)
                    dev = d if d > dev else dev
                s = s + 0.0  # -0.0 becomes +0.0, so that the ordering key is monotone
                s_row[jj] = s
                a = arg[jj]
                if keep_argmax:
                    a_out[img, j0 + jj] = a
                dis = a != yi
                d_row[jj] = dis
                m_row[nd] = m  # written always, kept only if the pixel disagrees (branch-free)
                a_row[nd] = a
                nd += dis
                acc[yi] += s
                cnt[yi] += 1
                if want:  # a disagreeing pixel adds 0.0, which changes no sum of s >= 0
                    agree[yi] += 0.0 if dis else s
                    agree_n[yi] += not dis
            for k in range(num_classes):
                sums[t, k] = acc[k]
                counts[t, k] = cnt[k]
            if want:
                for k in range(num_classes):
                    agree_sums[t, k] = agree[k]
                    agree_counts[t, k] = agree_n[k]
            n_dis[t] = nd
            maxdev[t] = dev


@_njit(parallel=True)
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
    """Scores-only pass over probabilities (not logits): s, row-sum deviation, errors.

    What :func:`summarise` gives for these outputs, bit for bit, without the
    argmax, the disagreement and the class sums: the sweep over the class planes
    only adds them up (four planes per pass) and checks their sign bits.
    """
    n, k_total, p_total = probs.shape
    per_image = _tiles_per_image(p_total)
    tiles = n * per_image
    chunks = min(tiles, max(runs, 1))
    for c in numba.prange(chunks):  # one run of tiles per thread
        _wide_vectors()  # type: ignore[call-arg]
        buf = _tile_buffer(probs, k_total)  # once per run, as in summarise
        total_run = np.empty(TILE, dtype=buf.dtype)
        first, stop = _run_bounds(c, tiles, chunks)
        for t in range(first, stop):
            img, j0, size = _tile_at(t, per_image, p_total)
            lab = labels[img, j0 : j0 + size]
            s_row = s_out[img, j0 : j0 + size]
            _fill_tile(probs, buf, img, j0, size)
            total = total_run[:size]
            plane = _plane(probs, buf, img, 0, j0, size)
            signs = bits[img, 0, j0 : j0 + size]
            seen = signs[0] & 0
            for jj in range(size):
                total[jj] = plane[jj]
                seen |= signs[jj]
            k = 1
            while k + 4 <= k_total:
                p1, p2, p3, p4, s1, s2, s3, s4 = _four_planes(probs, buf, bits, img, k, j0, size)
                for jj in range(size):
                    total[jj] = (((total[jj] + p1[jj]) + p2[jj]) + p3[jj]) + p4[jj]
                    seen |= s1[jj] | s2[jj] | s3[jj] | s4[jj]
                k += 4
            while k < k_total:
                plane = _plane(probs, buf, img, k, j0, size)
                signs = bits[img, k, j0 : j0 + size]
                for jj in range(size):
                    total[jj] += plane[jj]
                    seen |= signs[jj]
                k += 1
            maybe_negative = (np.uint64(seen) >> np.uint64(bits.itemsize * 8 - 1)) != 0
            err = errors[t]
            err[0] = ERR_NONE
            dev = 0.0
            for jj in range(size):
                yi, state = _label_state(lab[jj], num_classes, ignore_index, use_ignore)
                if state == _VOID:
                    s_row[jj] = np.nan
                    continue
                tot = np.float64(total[jj])
                if state == _BAD_LABEL or maybe_negative or not math.isfinite(tot):  # rare
                    _note_problem(
                        err, state, probs, buf, img, j0, size, jj, tot, maybe_negative, False
                    )
                s_row[jj] = np.float64(_value(probs, buf, img, yi, j0, jj)) + 0.0
                d = abs(tot - 1.0)
                dev = d if d > dev else dev
            maxdev[t] = dev


CHUNK = 1 << 18  # keys per parallel chunk of the selection helpers
POOL_CHUNKS = 4
"""The selection kernels use the thread pool from this many chunks (1M keys) on.

Below it they run in the calling thread: a chunk takes a fraction of a
millisecond there, less than waking the pool costs, and when another thread
keeps a core busy (the scan's reader) a parallel region waits for both.
"""


@_njit()
def _chunks(size: int) -> int:
    """Count the CHUNK-sized pieces that cover `size` items."""
    return (size + CHUNK - 1) // CHUNK


# The selection kernels are plain compiled functions that hand pieces of the
# keys to a `prange` loop only when there are many: each piece goes to a plain
# compiled function, which LLVM vectorises. The same loop written inside a
# `prange` body, or a plain call placed in a parallel function next to the
# arrays it allocates, ran five to ten times slower (slower than one thread).


@_njit()
def _in_bucket(key: np.uint64, prefix: np.uint64, shift: int) -> bool:
    """Tell whether `key`'s bits above `shift` equal `prefix` (every key's at shift 64).

    Without a branch: ``key >> 64`` is undefined, so the shift is capped at 63
    and shift 64 answers True whatever it gives.
    """
    inside: bool = (shift == 64) | ((key >> np.uint64(min(shift, 63))) == prefix)
    return inside


@_njit()
def _count_digits(keys: UIntArray, prefix: np.uint64, shift: int, row: Int64Array) -> None:
    """Add to `row` the digit below `shift` of each key whose bits above `shift` equal `prefix`."""
    low = np.uint64(shift - 16)
    for i in range(keys.shape[0]):
        key = np.uint64(keys[i])
        if _in_bucket(key, prefix, shift):
            row[(key >> low) & np.uint64(0xFFFF)] += 1


@_njit(parallel=True)
def _count_digits_pieces(keys: UIntArray, prefix: np.uint64, shift: int, rows: Int64Array) -> None:
    """:func:`_count_digits` of ``rows.shape[0]`` contiguous pieces, one row each, in parallel."""
    size = keys.shape[0]
    pieces = rows.shape[0]
    step = (size + pieces - 1) // pieces
    for c in numba.prange(pieces):
        _count_digits(keys[c * step : min(size, (c + 1) * step)], prefix, shift, rows[c])


@_njit()
def key_histogram(keys: UIntArray, prefix: np.uint64, shift: int, nchunks: int) -> Int64Array:
    """Count the next 16-bit digit of the keys whose bits above `shift` equal `prefix`.

    Keys are flat unsigned ints; the digit is ``(key >> (shift - 16)) & 0xFFFF``.
    Up to `nchunks` contiguous pieces (one per thread) are counted in
    parallel, each into its own row, then the rows are added; fewer keys than
    :data:`POOL_CHUNKS` chunks are counted in the calling thread.
    """
    chunks = _chunks(keys.shape[0])
    pieces = max(1, min(nchunks, chunks)) if chunks >= POOL_CHUNKS else 1
    rows = np.zeros((pieces, 65536), dtype=np.int64)
    if pieces == 1:
        row: Int64Array = rows[0]
        _count_digits(keys, prefix, shift, row)
        return row
    _count_digits_pieces(keys, prefix, shift, rows)
    total: Int64Array = rows.sum(axis=0)
    return total


@_njit()
def _bucket_size(keys: UIntArray, prefix: np.uint64, shift: int) -> int:
    """Count the keys whose bits above `shift` equal `prefix` (all of them at shift 64)."""
    n = 0
    for i in range(keys.shape[0]):
        n += _in_bucket(np.uint64(keys[i]), prefix, shift)
    return n


@_njit()
def _fill_bucket(
    keys: UIntArray,
    prefix: np.uint64,
    shift: int,
    base: int,
    out_k: npt.NDArray[np.uint64],
    out_i: Int64Array,
    pos: int,
) -> None:
    """Write the keys in the bucket and their indices (offset by `base`) from ``out_k[pos]`` on."""
    total = out_k.shape[0]
    for i in range(keys.shape[0]):
        if pos >= total:
            break
        key = np.uint64(keys[i])
        if _in_bucket(key, prefix, shift):
            out_k[pos] = key
            out_i[pos] = base + i
            pos += 1


@_njit(parallel=True)
def _bucket_sizes(keys: UIntArray, prefix: np.uint64, shift: int, found: Int64Array) -> None:
    """``found[c + 1]`` = :func:`_bucket_size` of chunk c, the chunks in parallel."""
    size = keys.shape[0]
    for c in numba.prange(found.shape[0] - 1):
        lo = c * CHUNK
        found[c + 1] = _bucket_size(keys[lo : min(size, lo + CHUNK)], prefix, shift)


@_njit(parallel=True)
def _fill_buckets(
    keys: UIntArray,
    prefix: np.uint64,
    shift: int,
    base: int,
    out_k: npt.NDArray[np.uint64],
    out_i: Int64Array,
    starts: Int64Array,
) -> None:
    """:func:`_fill_bucket` of each chunk c from ``starts[c]`` on, the chunks in parallel."""
    size = keys.shape[0]
    for c in numba.prange(starts.shape[0] - 1):
        lo = c * CHUNK
        _fill_bucket(
            keys[lo : min(size, lo + CHUNK)], prefix, shift, base + lo, out_k, out_i, starts[c]
        )


@_njit()
def gather_bucket(
    keys: UIntArray, prefix: np.uint64, shift: int, base: int, limit: int
) -> tuple[npt.NDArray[np.uint64], Int64Array]:
    """Gather the keys whose bits above `shift` equal `prefix`, with their indices.

    Indices are offset by `base` and come in index order; at most `limit`.
    Chunks are counted in parallel, then filled in parallel at their offsets
    (fewer than :data:`POOL_CHUNKS`: in the calling thread).
    """
    pieces = _chunks(keys.shape[0])
    found = np.zeros(pieces + 1, dtype=np.int64)
    pool = pieces >= POOL_CHUNKS
    if pool:
        _bucket_sizes(keys, prefix, shift, found)
    else:
        found[-1] = _bucket_size(keys, prefix, shift)
    starts = np.cumsum(found)
    total = min(starts[-1], limit)
    out_k = np.empty(total, dtype=np.uint64)
    out_i = np.empty(total, dtype=np.int64)
    if pool:
        _fill_buckets(keys, prefix, shift, base, out_k, out_i, starts)
    else:
        _fill_bucket(keys, prefix, shift, base, out_k, out_i, 0)
    return out_k, out_i


@_njit()
def nth_match(keys: UIntArray, key: np.uint64, nth: int) -> tuple[int, int]:
    """Position of the `nth` (0-based) occurrence of `key`, or -1 with the count seen."""
    seen = 0
    for i in range(keys.shape[0]):
        if np.uint64(keys[i]) == key:
            if seen == nth:
                return i, seen
            seen += 1
    return -1, seen


@_njit()
def compact(per_tile: npt.NDArray[ScalarT], used: Int64Array, tile: int) -> npt.NDArray[ScalarT]:
    """Join the first ``used[t]`` entries of each tile's `tile`-long slot.

    One thread: the copy is a small part of a batch (the disagreeing pixels),
    and starting the thread pool for it cost more than the copy whenever the
    other core was busy (the scan's reader thread), milliseconds a call.
    """
    out = np.empty(used.sum(), dtype=per_tile.dtype)
    pos = 0
    for t in range(used.shape[0]):
        k = used[t]
        out[pos : pos + k] = per_tile[t * tile : t * tile + k]
        pos += k
    return out


@_njit()
def count_above(max_prob: FloatArray, argmax: IntArray, adjusted: FloatArray) -> int:
    """Count ``max_prob[i] >= adjusted[argmax[i]]`` (compared in float64)."""
    total = 0
    for i in range(max_prob.shape[0]):
        total += np.float64(max_prob[i]) >= adjusted[argmax[i]]
    return total


@_njit()
def _compose_piece(
    keys: UIntArray,
    cut_key: np.uint64,
    cut_index: np.int64,
    base: np.int64,
    mask: BoolArray,
    use_mask: bool,
) -> None:
    """:func:`compose_mask` of one piece, without branches (so that it vectorises)."""
    keep = not use_mask
    for i in range(keys.shape[0]):
        key = np.uint64(keys[i])
        below = (key < cut_key) | ((key == cut_key) & (base + i <= cut_index))
        mask[i] = (mask[i] | keep) & below


@_njit(parallel=True)
def _compose_pieces(
    keys: UIntArray,
    cut_key: np.uint64,
    cut_index: np.int64,
    base: np.int64,
    mask: BoolArray,
    use_mask: bool,
) -> None:
    """:func:`_compose_piece` of each chunk, in parallel."""
    size = keys.shape[0]
    for c in numba.prange(_chunks(size)):
        lo = c * CHUNK
        hi = min(size, lo + CHUNK)
        _compose_piece(keys[lo:hi], cut_key, cut_index, base + lo, mask[lo:hi], use_mask)


@_njit()
def compose_mask(
    keys: UIntArray,
    cut_key: np.uint64,
    cut_index: np.int64,
    base: np.int64,
    mask: BoolArray,
    use_mask: bool,
) -> None:
    """Set ``mask[i] = (use_mask ? mask[i] : True) and (key, base + i) <= cutoff``.

    Chunks in parallel; fewer than :data:`POOL_CHUNKS` in the calling thread.
    """
    if _chunks(keys.shape[0]) < POOL_CHUNKS:
        _compose_piece(keys, cut_key, cut_index, base, mask, use_mask)
    else:
        _compose_pieces(keys, cut_key, cut_index, base, mask, use_mask)


@_njit()
def _softmin_row(row: FloatArray, temperature: float) -> float:
    """Softmin score of one image's pixel scores (NaN: ignored); 1.0 when all are NaN.

    The weights' exp is :func:`_exp_nonpositive` (the exponents are at most 0)
    and both sums add in pixel order, as the numpy twin does: the same bits.
    """
    low = np.inf
    for j in range(row.shape[0]):
        v = np.float64(row[j])
        if v < low:
            low = v
    if low == np.inf:
        return 1.0
    shift = (1.0 - low) / temperature
    weights = np.empty(row.shape[0], dtype=np.float64)
    for j in range(row.shape[0]):  # branch-free, so that it vectorises
        v = np.float64(row[j])
        valid = v == v
        e = _exp_nonpositive(((1.0 - v) / temperature - shift) if valid else EXP_LOW)
        weights[j] = e if valid else 0.0
    num = 0.0
    den = 0.0
    for j in range(row.shape[0]):
        v = np.float64(row[j])
        e = weights[j]
        num += (v if v == v else 0.0) * e
        den += e
    return num / den


@_njit(parallel=True)
def softmin(scores: FloatArray, temperature: float, out: FloatArray) -> None:
    """Softmin image score per row of ``scores (n, P)``, skipping NaN (ignored) pixels.

    ``sum_i s_i w_i`` with ``w = softmax((1 - s) / temperature)``, shifted by the
    maximum for stability; a row with no labelled pixel scores 1.0. One row
    runs in the calling thread: waking the thread pool for it costs more than
    it saves.
    """
    n = scores.shape[0]
    if n == 1:
        out[0] = _softmin_row(scores[0], temperature)
        return
    for i in numba.prange(n):
        out[i] = _softmin_row(scores[i], temperature)
