"""Twins of :mod:`segaudit.kernels._cells_numba`: the same CSV cell bytes, in Python and numpy.

``float_cells`` and ``int_cells`` write Python's own ``repr`` / ``str`` (so a
float cell is never left to the caller); ``join_cells`` gathers the cells'
bytes with one fancy index. Used until the compiled kernels are ready.
"""

from __future__ import annotations

import functools

import numpy as np

from segaudit._typing import FloatArray
from segaudit.kernels._protocol import Int64Array, UIntArray

__all__ = ["float_cells", "int_cells", "join_cells"]


_SMALL_INTS = 1 << 13
"""Integers below this are written from one table of their texts, made once."""


def _fixed(texts: list[str], width: int) -> tuple[np.ndarray, np.ndarray]:
    """Return ASCII `texts` as rows of `width` bytes (one conversion), and their lengths."""
    rows = np.array(texts, dtype=f"S{width}").view(np.uint8).reshape(len(texts), width)
    return rows, np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))


@functools.cache
def _small_ints(width: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the texts of ``0.._SMALL_INTS-1`` as rows of `width` bytes, and their lengths."""
    return _fixed([str(i) for i in range(_SMALL_INTS)], width)


def float_cells(values: FloatArray, out: UIntArray, lens: Int64Array) -> None:
    """Write ``repr`` of each float64 value into ``out[i, :lens[i]]``; NaN is empty.

    Examples
    --------
    >>> out, lens = np.zeros((3, 32), np.uint8), np.zeros(3, np.int64)
    >>> float_cells(np.array([0.1, np.nan, -2e-7]), out, lens)
    >>> [bytes(out[i, : lens[i]]).decode() for i in range(3)]
    ['0.1', '', '-2e-07']
    """
    texts = list(map(repr, values.tolist()))
    for j in np.flatnonzero(np.isnan(values)).tolist():
        texts[j] = ""
    out[:], lens[:] = _fixed(texts, out.shape[1])


def int_cells(values: Int64Array, out: UIntArray, lens: Int64Array) -> None:
    """Write ``str`` of each int64 value into ``out[i, :lens[i]]``.

    Examples
    --------
    >>> out, lens = np.zeros((3, 32), np.uint8), np.zeros(3, np.int64)
    >>> int_cells(np.array([0, -45, 2**63 - 1]), out, lens)
    >>> [bytes(out[i, : lens[i]]).decode() for i in range(3)]
    ['0', '-45', '9223372036854775807']
    """
    width = out.shape[1]
    table, sizes = _small_ints(width)
    small = (values >= 0) & (values < _SMALL_INTS)
    at = np.where(small, values, 0)
    out[:] = table[at]  # most ids, boxes and areas: rows of one table of texts
    lens[:] = sizes[at]
    far = np.flatnonzero(~small)
    if far.size:
        out[far], lens[far] = _fixed(list(map(str, values[far].tolist())), width)


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
    r"""Write CSV rows of slot and text cells, in `order` (see the compiled twin).

    Examples
    --------
    Column 0 from slot column 0, column 1 from text column 0:

    >>> slots = np.zeros((1, 2, 4), np.uint8); slots[0, :, 0] = [ord("a"), ord("b")]
    >>> text = np.frombuffer(b"xyz", np.uint8)
    >>> out = np.zeros(9, np.uint8)
    >>> join_cells(slots, np.array([[1], [1]]), text, np.array([[0], [2]]), np.array([[2], [1]]),
    ...            np.array([0, -1]), np.frombuffer(b"\n", np.uint8), out)
    >>> bytes(out)
    b'a,xy\nb,z\n'
    """
    rows, width = slot_lens.shape[0], slots.shape[2]
    if not rows:
        return
    # one buffer: the slots (j, r), then the text; every cell a (start, length) in it
    data = np.concatenate([slots.reshape(-1), text])
    starts = np.empty((rows, order.size), dtype=np.int64)
    lens = np.empty((rows, order.size), dtype=np.int64)
    for c, j in enumerate(order.tolist()):
        if j >= 0:
            starts[:, c] = (j * rows + np.arange(rows)) * width
            lens[:, c] = slot_lens[:, j]
        else:
            starts[:, c] = slots.size + text_starts[:, -1 - j]
            lens[:, c] = text_lens[:, -1 - j]
    columns = order.size
    sep = np.frombuffer(b",", dtype=np.uint8)
    # every piece in row order: cell, comma, cell, ..., end; as (source, start, length)
    pieces = columns * 2
    start = np.zeros((rows, pieces), dtype=np.int64)
    length = np.zeros((rows, pieces), dtype=np.int64)
    source = np.zeros((rows, pieces), dtype=np.int64)
    start[:, 0::2] = starts
    length[:, 0::2] = lens
    length[:, 1:-1:2] = 1
    source[:, 1:-1:2] = 1
    length[:, -1] = end.size
    source[:, -1] = 2
    buffer = np.concatenate([data, sep, end])
    base = np.array([0, data.size, data.size + 1], dtype=np.int64)
    first = (start + base[source]).ravel()
    size = length.ravel()
    offsets = np.repeat(first - np.concatenate(([0], np.cumsum(size)[:-1])), size)
    out[: size.sum()] = buffer[offsets + np.arange(size.sum())]
