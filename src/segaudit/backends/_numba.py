"""The compiled per-pixel kernels (numba): one fused pass per batch.

Every function here has a twin in :mod:`segaudit.backends._numpy` that gives
identical results; the engine picks one at call time.
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["compose_mask", "gather_bucket", "key_histogram", "nth_match", "softmin", "summarise"]

TILE = 4096
_TWO32 = 4294967296.0

ERR_NONE = 0
ERR_LABEL = 1
ERR_NONFINITE = 2
ERR_NEGATIVE = 3


@numba.njit(parallel=True, nogil=True, cache=True)
def summarise(
    probs, labels, num_classes, ignore_index, use_ignore, from_logits,
    s_out, m_out, a_out, disagree_out, sums, counts, maxdev, errors,
):  # fmt: skip
    """Fused pass over one batch.

    probs (n, K, P) float32/64, labels (n, P); writes s, m, a and disagree per
    pixel (n, P), exact per-class sums of s as (integer, 2**-32, 2**-64) parts
    per tile, class counts per tile, the largest |row sum - 1| per tile and the
    first bad input per tile as (code, pixel, class).
    """
    n, k_total, p_total = probs.shape
    tiles_per_image = (p_total + TILE - 1) // TILE
    for t in numba.prange(n * tiles_per_image):
        img = t // tiles_per_image
        j0 = (t % tiles_per_image) * TILE
        j1 = min(j0 + TILE, p_total)
        errors[t, 0] = ERR_NONE
        dev = 0.0
        for j in range(j0, j1):
            yf = labels[img, j]
            yi = np.int64(yf)
            if use_ignore and yi == ignore_index and yi == yf:
                s_out[img, j] = np.nan
                m_out[img, j] = np.nan
                a_out[img, j] = -1
                disagree_out[img, j] = False
                continue
            if yi != yf or yi < 0 or yi >= num_classes:
                if errors[t, 0] == ERR_NONE:
                    errors[t, 0] = ERR_LABEL
                    errors[t, 1] = j
                    errors[t, 2] = -1
                yi = 0
            best = probs[img, 0, j]
            arg = 0
            total = 0.0
            for k in range(k_total):
                v = probs[img, k, j]
                if not math.isfinite(v):
                    if errors[t, 0] == ERR_NONE:
                        errors[t, 0] = ERR_NONFINITE
                        errors[t, 1] = j
                        errors[t, 2] = k
                    v = 0.0
                elif v < 0.0 and not from_logits and errors[t, 0] == ERR_NONE:
                    errors[t, 0] = ERR_NEGATIVE
                    errors[t, 1] = j
                    errors[t, 2] = k
                if v > best:
                    best = v
                    arg = k
                total += v
            if from_logits:
                denom = 0.0
                for k in range(k_total):
                    denom += math.exp(np.float64(probs[img, k, j]) - best)
                s = math.exp(np.float64(probs[img, yi, j]) - best) / denom
                m = 1.0 / denom
            else:
                s = probs[img, yi, j]
                m = best
                d = abs(total - 1.0)
                if d > dev:
                    dev = d
            if s == 0.0:
                s = 0.0  # turn -0.0 into +0.0 so that the ordering key is monotone
            s_out[img, j] = s
            m_out[img, j] = m
            a_out[img, j] = arg
            disagree_out[img, j] = arg != yi
            s64 = np.float64(s)
            ip = math.floor(s64)
            frac = (s64 - ip) * _TWO32
            f1 = math.floor(frac)
            f2 = math.floor((frac - f1) * _TWO32)
            sums[t, yi, 0] += np.int64(ip)
            sums[t, yi, 1] += np.int64(f1)
            sums[t, yi, 2] += np.int64(f2)
            counts[t, yi] += 1
        maxdev[t] = dev


@numba.njit(parallel=True, nogil=True, cache=True)
def key_histogram(keys, prefix, shift, nchunks):
    """Count the next 16-bit digit of the keys whose bits above `shift` equal `prefix`.

    Keys are flat unsigned ints; the digit is ``(key >> (shift - 16)) & 0xFFFF``.
    """
    size = keys.shape[0]
    out = np.zeros((nchunks, 65536), dtype=np.int64)
    step = (size + nchunks - 1) // nchunks
    low = shift - 16
    for c in numba.prange(nchunks):
        i1 = min((c + 1) * step, size)
        for i in range(c * step, i1):
            key = np.uint64(keys[i])
            if shift == 64 or (key >> np.uint64(shift)) == prefix:
                out[c, (key >> np.uint64(low)) & np.uint64(0xFFFF)] += 1
    return out.sum(axis=0)


@numba.njit(nogil=True, cache=True)
def gather_bucket(keys, prefix, shift, base, limit):
    """Gather the keys whose bits above `shift` equal `prefix`, with their indices.

    Indices are offset by `base` and come in index order; at most `limit`.
    """
    out_k = np.empty(limit, dtype=np.uint64)
    out_i = np.empty(limit, dtype=np.int64)
    n = 0
    for i in range(keys.shape[0]):
        key = np.uint64(keys[i])
        if shift == 64 or (key >> np.uint64(shift)) == prefix:
            if n == limit:
                break
            out_k[n] = key
            out_i[n] = base + i
            n += 1
    return out_k[:n], out_i[:n]


@numba.njit(nogil=True, cache=True)
def nth_match(keys, key, nth):
    """Position of the `nth` (0-based) occurrence of `key`, or -1 with the count seen."""
    seen = 0
    for i in range(keys.shape[0]):
        if np.uint64(keys[i]) == key:
            if seen == nth:
                return i, seen
            seen += 1
    return -1, seen


@numba.njit(parallel=True, nogil=True, cache=True)
def compose_mask(keys, cut_key, cut_index, base, mask, use_mask):
    """Set ``mask[i] = (use_mask ? mask[i] : True) and (key, base + i) <= cutoff``."""
    size = keys.shape[0]
    for i in numba.prange(size):
        key = np.uint64(keys[i])
        below = key < cut_key or (key == cut_key and base + i <= cut_index)
        if use_mask:
            mask[i] = mask[i] and below
        else:
            mask[i] = below


@numba.njit(parallel=True, nogil=True, cache=True)
def softmin(scores, temperature, out):
    """Softmin image score per row of ``scores (n, P)``, skipping NaN (ignored) pixels.

    ``sum_i s_i w_i`` with ``w = softmax((1 - s) / temperature)``, shifted by the
    maximum for stability; a row with no labelled pixel scores 1.0.
    """
    n, p = scores.shape
    for i in numba.prange(n):
        low = np.inf
        for j in range(p):
            v = np.float64(scores[i, j])
            if v < low:
                low = v
        if low == np.inf:
            out[i] = 1.0
            continue
        shift = (1.0 - low) / temperature
        num = 0.0
        den = 0.0
        for j in range(p):
            v = np.float64(scores[i, j])
            if v == v:
                e = math.exp((1.0 - v) / temperature - shift)
                num += v * e
                den += e
        out[i] = num / den
