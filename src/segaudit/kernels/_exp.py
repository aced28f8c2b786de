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
"""

from __future__ import annotations

import math

import numpy as np

from segaudit._typing import FloatArray

__all__ = ["EXP_COEFFS", "EXP_LOW", "LN2_HI", "LN2_LO", "LOG2E", "MAGIC", "exp_nonpositive"]

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

_MAGIC_BITS = np.int64(np.float64(MAGIC).view(np.int64))
_BIAS = np.int64(1023)


def exp_nonpositive(x: FloatArray) -> FloatArray:
    """Return ``exp(x)`` for float64 ``x <= 0``, as the compiled kernel computes it.

    Parameters
    ----------
    x : ndarray of float64
        Exponents, at most 0 (larger values are not supported).

    Returns
    -------
    ndarray of float64
        Same shape; within 1 ulp of ``np.exp(x)``, exactly 1 at 0.
    """
    xc = np.maximum(np.asarray(x, dtype=np.float64), EXP_LOW)
    t = xc * LOG2E + MAGIC
    n = t - MAGIC
    r = (xc - n * LN2_HI) - n * LN2_LO
    c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13 = EXP_COEFFS
    r2 = r * r
    r4 = r2 * r2
    w1 = (c2 + c3 * r) + (c4 + c5 * r) * r2
    w2 = (c6 + c7 * r) + (c8 + c9 * r) * r2
    w3 = (c10 + c11 * r) + (c12 + c13 * r) * r2
    p = 1.0 + (r + r2 * (w1 + (w2 + w3 * r4) * r4))
    k = t.view(np.int64) - _MAGIC_BITS
    h = k >> 1
    s1 = ((h + _BIAS) << 52).view(np.float64)
    s2 = ((k - h + _BIAS) << 52).view(np.float64)
    out: FloatArray = (p * s1) * s2
    return out
