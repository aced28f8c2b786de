"""The exponential of a softmax over logits, as both kernel sets compute it.

``exp(x)`` for ``x <= 0`` (a logit minus its pixel's largest) in plain float64
arithmetic that a compiler can vectorise: ``x = n ln2 + r`` with ``|r| <=
ln2 / 2`` (Cody-Waite, ``n`` rounded by the 1.5 * 2**52 trick), the
degree-13 Taylor polynomial of ``exp(r)`` as ``1 + (r + r**2 q(r))`` with
``q`` evaluated in Estrin's scheme (short dependency chains), then two exact scalings by
powers of two (so that results down to the smallest subnormal need no
branch). Within 1 ulp of a correctly rounded exp (checked against
``np.exp`` in the tests). The compiled kernel
(:func:`segaudit.kernels._numba.summarise`) and its numpy twin run the same
operations in the same order, so they agree bit for bit; libm's ``exp`` is
scalar and was most of the kernel's time on logits.

Float16 logits have 65,536 possible values, so the kernels take their
exponentials from :func:`exp_table` instead: ``exp(x)`` of every float16 ``x``
in ``[-LOGIT_LIMIT, LOGIT_LIMIT]``, by the same operations (exact there too:
the scalings stay within range up to ``x = 709``), and NaN elsewhere. A softmax
needs no shift by the largest logit then, ``p_k = exp(x_k) / sum_j exp(x_j)``;
a pixel with a logit outside the table's range (its sum is NaN) takes the
shifted path.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from segaudit._typing import FloatArray

__all__ = [
    "EXP_COEFFS",
    "EXP_LOW",
    "LN2_HI",
    "LN2_LO",
    "LOG2E",
    "LOGIT_LIMIT",
    "MAGIC",
    "NO_TABLE",
    "exp_nonpositive",
    "exp_table",
]

LOG2E = 1.4426950408889634
LN2_HI = 6.93147180369123816490e-01
"""ln 2 with its low 32 bits zero, so that ``n * LN2_HI`` is exact for |n| < 2**11."""
LN2_LO = 1.90821492927058770002e-10
MAGIC = 6755399441055744.0
"""1.5 * 2**52: adding it rounds a float64 of magnitude < 2**51 to an integer."""
EXP_LOW = -745.5
"""Below this, exp underflows to 0; inputs are raised to it (so n fits the scaling)."""
EXP_COEFFS = tuple(1.0 / math.factorial(k) for k in range(2, 14))
"""Taylor coefficients of exp from degree 2 to 13 (the tail after ``1 + r``)."""

LOGIT_LIMIT = 256.0
"""Float16 logits within +-this take their exp from :func:`exp_table`: any K of them sum
to a finite float64, and each exp and each ratio of two is a normal number."""
NO_TABLE = np.empty(0, dtype=np.float64)
"""The kernels' table argument when the logits are not float16 (or are probabilities)."""

_MAGIC_BITS = np.int64(np.float64(MAGIC).view(np.int64))
_BIAS = np.int64(1023)


_CHUNK = 4096
"""Elements per step of the numpy version: its temporaries stay in the cache."""


def exp_nonpositive(x: FloatArray) -> FloatArray:
    """Return ``exp(x)`` for float64 ``x <= 0``, as the compiled kernel computes it.

    The operations of the compiled version, one numpy call each, in place on
    stretches of :data:`_CHUNK` elements (the same roundings, so the same
    bits; about 20x the time of ``np.exp``).

    Parameters
    ----------
    x : ndarray of float64
        Exponents, at most 0 (and up to 709 for :func:`exp_table`; larger
        values are not supported).

    Returns
    -------
    ndarray of float64
        Same shape; within 1 ulp of ``np.exp(x)``, exactly 1 at 0.

    Examples
    --------
    >>> exp_nonpositive(np.array([0.0, -1.0, -800.0]))
    array([1.        , 0.36787944, 0.        ])
    """
    values = np.asarray(x, dtype=np.float64)
    flat = values.reshape(-1)
    out = np.empty_like(flat)
    c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13 = EXP_COEFFS
    buf = np.empty((8, min(_CHUNK, flat.size)))
    for i0 in range(0, flat.size, _CHUNK):
        size = min(_CHUNK, flat.size - i0)
        xc, t, n, r, r2, w, v, u = (row[:size] for row in buf)
        np.maximum(flat[i0 : i0 + size], EXP_LOW, out=xc)
        np.multiply(xc, LOG2E, out=t)
        t += MAGIC
        np.subtract(t, MAGIC, out=n)
        np.multiply(n, LN2_HI, out=w)
        np.subtract(xc, w, out=r)
        np.multiply(n, LN2_LO, out=w)
        r -= w  # r = (xc - n LN2_HI) - n LN2_LO
        np.multiply(r, r, out=r2)
        np.multiply(r, c3, out=w)
        w += c2
        np.multiply(r, c5, out=v)
        v += c4
        v *= r2
        w += v  # w1 = (c2 + c3 r) + (c4 + c5 r) r2
        np.multiply(r, c7, out=v)
        v += c6
        np.multiply(r, c9, out=u)
        u += c8
        u *= r2
        v += u  # w2 = (c6 + c7 r) + (c8 + c9 r) r2
        np.multiply(r, c11, out=u)
        u += c10
        np.multiply(r, c13, out=xc)
        xc += c12
        xc *= r2
        u += xc  # w3 = (c10 + c11 r) + (c12 + c13 r) r2
        np.multiply(r2, r2, out=xc)  # r4
        u *= xc
        u += v
        u *= xc
        u += w  # w1 + (w2 + w3 r4) r4
        u *= r2
        u += r
        u += 1.0  # p = 1 + (r + r2 (...))
        k = t.view(np.int64)  # n, from the bits of t
        k -= _MAGIC_BITS
        h = n.view(np.int64)
        np.right_shift(k, 1, out=h)
        k -= h
        k += _BIAS
        k <<= 52  # 2**(n - n // 2)
        h += _BIAS
        h <<= 52  # 2**(n // 2)
        u *= h.view(np.float64)
        u *= k.view(np.float64)
        out[i0 : i0 + size] = u
    result: FloatArray = out.reshape(values.shape)
    return result


@functools.cache
def exp_table() -> FloatArray:
    """Return ``exp(x)`` for each float16 ``x``, indexed by its bits; NaN outside the range.

    Computed once, by :func:`exp_nonpositive`'s operations, so the same bits on
    every platform and for both kernel sets. Entries for values outside
    ``[-LOGIT_LIMIT, LOGIT_LIMIT]``, infinities and NaNs are NaN: a sum that
    meets one is NaN, which sends the pixel to the shifted softmax.

    Returns
    -------
    ndarray of float64, shape (65536,), read-only

    Examples
    --------
    >>> table = exp_table()
    >>> bits = np.array([0.0, 1.0, 300.0], dtype=np.float16).view(np.uint16)
    >>> table[bits]
    array([1.        , 2.71828183,        nan])
    """
    x = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16).astype(np.float64)
    inside = np.abs(x) <= LOGIT_LIMIT  # False for NaN
    table = np.full(x.shape, np.nan)
    table[inside] = exp_nonpositive(x[inside])
    table.flags.writeable = False
    return table
