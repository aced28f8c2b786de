"""Compiled CSV cells: numbers as the text Python writes for them, rows joined, no Python per row.

:func:`float_cells` writes ``repr(float(v))`` for float64 values: the shortest
digits that read back as the same double, nearest to it, in Python's layout
(positional from 1e-4 to below 1e16, else ``d.ddde+XX``). The digits come from
Grisu3 (F. Loitsch, "Printing floating-point numbers quickly and accurately
with integers", PLDI 2010): 64-bit integer arithmetic and a table of cached
powers of ten. Grisu3 knows when its answer might not be the shortest or the
nearest (about 0.5% of doubles); those cells are left to the caller (length
-1), which writes ``repr`` there. So every cell is exactly ``repr``'s text.

:func:`int_cells` writes ``str`` of int64 values, and :func:`join_cells` joins
cells given as byte ranges of one buffer into CSV rows. Twins (the same
bytes, in Python and numpy): :mod:`segaudit.kernels._cells_numpy`.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from segaudit._typing import FloatArray
from segaudit.kernels._jit import njit as _njit
from segaudit.kernels._protocol import Int64Array, UIntArray

__all__ = ["float_cells", "int_cells", "join_cells"]


def _cached_powers() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """10**k for k = -348, -340, ..., 340 as (64-bit significand, binary exponent, k).

    The significand is normalised (top bit set) and rounded to nearest, from
    exact integers.
    """
    sig, bexp, dexp = [], [], []
    for k in range(-348, 341, 8):
        if k >= 0:
            num, den = 10**k, 1
        else:
            num, den = 1, 10**-k
        # f * 2**e ~ num / den with 2**63 <= f < 2**64
        e = num.bit_length() - den.bit_length() - 64
        while True:
            scaled_num, scaled_den = (num << -e, den) if e < 0 else (num, den << e)
            f = (2 * scaled_num + scaled_den) // (2 * scaled_den)  # rounded to nearest
            if f >= 1 << 64:
                e += 1
            elif f < 1 << 63:
                e -= 1
            else:
                break
        sig.append(f)
        bexp.append(e)
        dexp.append(k)
    return (
        np.array(sig, dtype=np.uint64),
        np.array(bexp, dtype=np.int64),
        np.array(dexp, dtype=np.int64),
    )


_POW_F, _POW_E, _POW_K = _cached_powers()
_FIRST_K = -348
_K_STEP = 8
_LOG10_2 = 0.30102999566398114
_M32 = np.uint64(0xFFFFFFFF)
_TOP = np.uint64(1) << np.uint64(63)
_HIDDEN = np.uint64(1) << np.uint64(52)
_FRACTION = _HIDDEN - np.uint64(1)
_ONE = np.uint64(1)
_TEN = np.uint64(10)
_ZERO = np.uint64(48)  # "0"
_MIN_TARGET = -60
_MAX_TARGET = -32


@_njit()
def _times(f1: np.uint64, f2: np.uint64) -> np.uint64:
    """Return the upper 64 bits of the 128-bit product, rounded (the exponents add 64)."""
    a, b = f1 >> np.uint64(32), f1 & _M32
    c, d = f2 >> np.uint64(32), f2 & _M32
    ac, bc, ad, bd = a * c, b * c, a * d, b * d
    tmp = (bd >> np.uint64(32)) + (ad & _M32) + (bc & _M32) + (_ONE << np.uint64(31))
    high: np.uint64 = ac + (ad >> np.uint64(32)) + (bc >> np.uint64(32)) + (tmp >> np.uint64(32))
    return high


@_njit()
def _normalize(f: np.uint64, e: int) -> tuple[np.uint64, int]:
    """Shift `f` left until its top bit is set; lower `e` to match."""
    while (f & (np.uint64(0xFFC) << np.uint64(52))) == 0:
        f = f << np.uint64(10)
        e -= 10
    while (f & _TOP) == 0:
        f = f << _ONE
        e -= 1
    return f, e


@_njit()
def _round_weed(
    buf: UIntArray,
    length: int,
    distance_too_high_w: np.uint64,
    unsafe_interval: np.uint64,
    rest: np.uint64,
    ten_kappa: np.uint64,
    unit: np.uint64,
) -> bool:
    """Move the last digit towards w while it stays safe; say whether the digits are sure."""
    small = distance_too_high_w - unit
    big = distance_too_high_w + unit
    while (
        rest < small
        and unsafe_interval - rest >= ten_kappa
        and (rest + ten_kappa < small or small - rest >= rest + ten_kappa - small)
    ):
        buf[length - 1] -= 1
        rest += ten_kappa
    if (
        rest < big
        and unsafe_interval - rest >= ten_kappa
        and (rest + ten_kappa < big or big - rest > rest + ten_kappa - big)
    ):
        return False
    sure: bool = np.uint64(2) * unit <= rest and rest <= unsafe_interval - np.uint64(4) * unit
    return sure


@_njit()
def _grisu3(bits: np.uint64, buf: UIntArray) -> tuple[bool, int, int]:
    """Shortest digits of the double ``v > 0`` (finite; its `bits`) into `buf`.

    Returns (sure, length, decimal exponent): v is about ``digits * 10**exponent``.
    """
    biased = int((bits >> np.uint64(52)) & np.uint64(0x7FF))
    fraction = bits & _FRACTION
    if biased == 0:
        f, e = fraction, -1074
    else:
        f, e = fraction + _HIDDEN, biased - 1075
    # boundaries m-, m+: halfway to the neighbouring doubles
    plus_f, plus_e = _normalize((f << _ONE) + _ONE, e - 1)
    if fraction == 0 and biased > 1:  # the lower neighbour is twice as close
        minus_f, minus_e = (f << np.uint64(2)) - _ONE, e - 2
    else:
        minus_f, minus_e = (f << _ONE) - _ONE, e - 1
    minus_f = minus_f << np.uint64(minus_e - plus_e)
    w_f, w_e = _normalize(f, e)
    # a cached power c = 10**mk bringing w's exponent into [-60, -32]
    low = _MIN_TARGET - (w_e + 64)
    k = math.ceil((low + 63) * _LOG10_2)
    index = (-_FIRST_K + k - 1) // _K_STEP + 1
    c_f, c_e, mk = _POW_F[index], _POW_E[index], _POW_K[index]
    scaled_e = w_e + c_e + 64
    w_s = _times(w_f, c_f)
    low_s = _times(minus_f, c_f)
    high_s = _times(plus_f, c_f)
    # digit generation, on the interval widened by one unit either way
    unit = _ONE
    too_low = low_s - unit
    too_high = high_s + unit
    unsafe = too_high - too_low
    shift = np.uint64(-scaled_e)
    one = _ONE << shift
    integrals = too_high >> shift
    fractionals = too_high & (one - _ONE)
    divisor = _ONE
    kappa = 1
    while divisor * _TEN <= integrals:
        divisor *= _TEN
        kappa += 1
    length = 0
    while kappa > 0:
        digit = integrals // divisor
        buf[length] = np.uint8(_ZERO + digit)
        length += 1
        integrals %= divisor
        kappa -= 1
        rest = (integrals << shift) + fractionals
        if rest < unsafe:
            sure = _round_weed(buf, length, too_high - w_s, unsafe, rest, divisor << shift, unit)
            return sure, length, kappa - mk
        divisor //= _TEN
    while True:
        fractionals *= _TEN
        unit *= _TEN
        unsafe *= _TEN
        digit = fractionals >> shift
        buf[length] = np.uint8(_ZERO + digit)
        length += 1
        fractionals &= one - _ONE
        kappa -= 1
        if fractionals < unsafe:
            distance = (too_high - w_s) * unit
            sure = _round_weed(buf, length, distance, unsafe, fractionals, one, unit)
            return sure, length, kappa - mk


@_njit()
def _repr_layout(row: UIntArray, start: int, digits: UIntArray, length: int, point: int) -> int:
    """Write the digits (value ``0.d1d2... * 10**point``) in repr's layout; return the end."""
    at = start
    if -4 < point <= 16:  # positional
        if point <= 0:
            row[at] = 48
            row[at + 1] = 46
            at += 2
            for _ in range(-point):
                row[at] = 48
                at += 1
            for i in range(length):
                row[at] = digits[i]
                at += 1
        elif point < length:
            for i in range(point):
                row[at] = digits[i]
                at += 1
            row[at] = 46
            at += 1
            for i in range(point, length):
                row[at] = digits[i]
                at += 1
        else:
            for i in range(length):
                row[at] = digits[i]
                at += 1
            for _ in range(point - length):
                row[at] = 48
                at += 1
            row[at] = 46
            row[at + 1] = 48
            at += 2
        return at
    row[at] = digits[0]
    at += 1
    if length > 1:
        row[at] = 46
        at += 1
        for i in range(1, length):
            row[at] = digits[i]
            at += 1
    exponent = point - 1
    row[at] = 101  # e
    row[at + 1] = 45 if exponent < 0 else 43
    at += 2
    exponent = abs(exponent)
    if exponent >= 100:
        row[at] = 48 + exponent // 100
        at += 1
    row[at] = 48 + (exponent // 10) % 10
    row[at + 1] = 48 + exponent % 10
    return at + 2


_CHUNK = 4096
"""Values per step of the cell kernels (one scratch buffer each)."""


@_njit()
def _put3(row: UIntArray, at: int, a: int, b: int, c: int) -> int:
    row[at], row[at + 1], row[at + 2] = a, b, c
    return at + 3


@_njit(parallel=True)
def float_cells(values: FloatArray, out: UIntArray, lens: Int64Array) -> None:
    """Write ``repr`` of each float64 value into ``out[i, :lens[i]]`` (ASCII).

    NaN gets an empty cell (length 0, as pandas writes a missing value); a
    value whose shortest digits Grisu3 cannot vouch for gets length -1, for
    the caller to write with ``repr``. `out` has
    :data:`~segaudit.kernels._protocol.CELL_WIDTH` columns.
    """
    n = values.shape[0]
    bits = values.view(np.uint64)
    for c in numba.prange((n + _CHUNK - 1) // _CHUNK):
        digits = np.empty(20, dtype=np.uint8)
        for i in range(c * _CHUNK, min(n, (c + 1) * _CHUNK)):
            v = values[i]
            row = out[i]
            if math.isnan(v):
                lens[i] = 0
                continue
            at = 0
            if math.copysign(1.0, v) < 0.0:
                row[0] = 45  # -
                at = 1
            positive = bits[i] & ~_TOP
            if math.isinf(v):
                lens[i] = _put3(row, at, 105, 110, 102)  # inf
            elif positive == 0:
                lens[i] = _put3(row, at, 48, 46, 48)  # 0.0
            else:
                sure, length, exponent = _grisu3(positive, digits)
                lens[i] = _repr_layout(row, at, digits, length, length + exponent) if sure else -1


@_njit(parallel=True)
def int_cells(values: Int64Array, out: UIntArray, lens: Int64Array) -> None:
    """Write ``str`` of each int64 value into ``out[i, :lens[i]]`` (ASCII).

    The digits are counted first, then written last to first in place (no
    buffer and no row view per value).
    """
    n = values.shape[0]
    for c in numba.prange((n + _CHUNK - 1) // _CHUNK):
        for i in range(c * _CHUNK, min(n, (c + 1) * _CHUNK)):
            v = values[i]
            negative = v < 0
            # |v| as uint64 (the most negative int64 has no positive twin)
            u = np.uint64(-(v + 1)) + _ONE if negative else np.uint64(v)
            k = 1
            rest = u
            while rest >= _TEN:
                rest //= _TEN
                k += 1
            at = 1 if negative else 0
            if negative:
                out[i, 0] = 45
            j = at + k - 1
            while True:
                out[i, j] = np.uint8(_ZERO + u % _TEN)
                u //= _TEN
                j -= 1
                if u == 0:
                    break
            lens[i] = at + k


@_njit(parallel=True)
def join_cells(
    slots: UIntArray,
    slot_lens: Int64Array,
    text: UIntArray,
    text_starts: Int64Array,
    text_lens: Int64Array,
    order: Int64Array,
    end: UIntArray,
    out: UIntArray,
) -> None:
    """Write CSV rows of cells: fixed-width slots and byte ranges of `text`, in `order`.

    Column c of row r is ``slots[j, r, :slot_lens[r, j]]`` where ``order[c] = j
    >= 0``, else ``text[text_starts[r, t]:][:text_lens[r, t]]`` with ``t =
    -1 - order[c]``. Cells are joined by commas and each row ends with `end`;
    `out` holds exactly the rows' bytes. Rows are written in parallel, each at
    its offset.
    """
    rows = slot_lens.shape[0]
    columns = order.size
    first = np.empty(rows + 1, dtype=np.int64)
    first[0] = 0
    fixed = columns - 1 + end.size
    for r in range(rows):
        size = fixed
        for j in range(slot_lens.shape[1]):
            size += slot_lens[r, j]
        for t in range(text_lens.shape[1]):
            size += text_lens[r, t]
        first[r + 1] = first[r] + size
    for r in numba.prange(rows):
        at = first[r]
        for c in range(columns):
            if c:
                out[at] = 44  # ,
                at += 1
            j = order[c]
            if j >= 0:
                n = slot_lens[r, j]
                out[at : at + n] = slots[j, r, :n]
            else:
                s = text_starts[r, -1 - j]
                n = text_lens[r, -1 - j]
                out[at : at + n] = text[s : s + n]
            at += n
        out[at : at + end.size] = end
