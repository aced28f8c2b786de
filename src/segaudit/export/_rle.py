"""Run-length encodings of a region's pixels, as COCO, CVAT and Label Studio store masks.

Every encoder starts from the sorted flat indices of the set pixels in the
order the format walks the image, so the work is proportional to the region's
area, never to the image's:

- COCO (pycocotools' compressed RLE): the whole image, column-major, counts of
  alternating 0 / 1 runs starting with 0s, packed into a string of 6-bit
  characters (5 bits of value and a continuation bit, offset by 48; from the
  third count on, each is stored as the difference to the count two before).
- CVAT ("CVAT for images 1.1" ``<mask>``): the region's box, row-major,
  counts of alternating 0 / 1 runs starting with 0s.
- Label Studio brush: the whole image as RGBA bytes, row-major, ``(0, 0, 0, 0)``
  outside and ``(255, 255, 255, 255)`` inside, packed as in ``rle-pack``: a
  32-bit value count, the word size minus 1 (5 bits), four run-length widths
  minus 1 (4 bits each), then runs, every bit most significant first.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from segaudit._typing import IntArray

__all__ = ["box_runs", "coco_rle", "coco_rle_string", "labelstudio_rle", "runs"]

_LS_WORD = 8  # bits per value
_LS_SIZES = (3, 4, 8, 16)  # run-length widths, as Label Studio writes them
_LS_MAX_RUN = 1 << _LS_SIZES[-1]


def runs(flat: IntArray, total: int) -> IntArray:
    """Count the alternating 0 / 1 runs over ``0..total-1``, where `flat` (sorted) are the 1s.

    The first count is of 0s (it is 0 when the first value is a 1); the counts
    add up to `total`, and the last count is never an empty run of 0s.

    Examples
    --------
    >>> runs(np.array([1, 2, 5]), 7).tolist()
    [1, 2, 2, 1, 1]
    >>> runs(np.array([0, 1]), 2).tolist()
    [0, 2]
    """
    flat = np.asarray(flat, dtype=np.int64)
    if flat.size == 0:
        return np.array([total], dtype=np.int64)
    step = np.flatnonzero(np.diff(flat) != 1)
    starts = flat[np.concatenate(([0], step + 1))]
    stops = flat[np.concatenate((step, [flat.size - 1]))] + 1
    edges = np.empty(2 * starts.size + 2, dtype=np.int64)
    edges[0], edges[-1] = 0, total
    edges[1:-1:2], edges[2:-1:2] = starts, stops
    counts: IntArray = np.diff(edges)
    return counts[:-1] if counts[-1] == 0 else counts


def coco_rle(crop: np.ndarray, row0: int, col0: int, height: int, width: int) -> dict[str, Any]:
    """Encode a box of an image as pycocotools' compressed RLE: ``{"size", "counts"}``.

    `crop` is the box's mask, its top-left pixel at (`row0`, `col0`).

    Examples
    --------
    >>> coco_rle(np.array([[1], [1]], bool), 1, 0, 3, 2)
    {'size': [3, 2], 'counts': '123'}
    """
    cols, rows = np.nonzero(np.asarray(crop, dtype=bool).T)  # column-major: sorted by column
    flat = (cols + col0) * height + rows + row0
    return {"size": [height, width], "counts": coco_rle_string(runs(flat, height * width))}


def coco_rle_string(counts: IntArray) -> str:
    """Pack run counts into pycocotools' compressed RLE string.

    Examples
    --------
    >>> coco_rle_string(np.array([1, 2, 2, 1, 1]))
    '122OO'
    """
    out: list[str] = []
    values = [int(c) for c in counts]
    for i, value in enumerate(values):
        x = value - values[i - 2] if i > 2 else value
        while True:
            chunk = x & 0x1F
            x >>= 5  # arithmetic shift: a negative difference ends at -1
            more = x != -1 if chunk & 0x10 else x != 0
            out.append(chr(chunk + (0x20 if more else 0) + 48))
            if not more:
                break
    return "".join(out)


def box_runs(crop: np.ndarray) -> IntArray:
    """CVAT's mask counts of a box (row-major, 0s first).

    Examples
    --------
    >>> box_runs(np.array([[0, 1], [1, 1]], bool)).tolist()
    [1, 3]
    """
    box = np.asarray(crop, dtype=bool)
    return runs(np.flatnonzero(box), box.size)


def _bits(values: IntArray, width: int) -> np.ndarray:
    """Each value as `width` bits, most significant first: ``(len(values), width)`` uint8."""
    shifts = np.arange(width - 1, -1, -1, dtype=np.int64)
    return ((np.asarray(values, dtype=np.int64)[:, None] >> shifts) & 1).astype(np.uint8)


@functools.lru_cache(maxsize=8)
def _ls_header(num: int) -> np.ndarray:
    """Return the header bits of a brush RLE of `num` values (read-only; images share sizes)."""
    fields = [(num, 32), (_LS_WORD - 1, 5)] + [(s - 1, 4) for s in _LS_SIZES]
    bits = np.concatenate([_bits(np.array([v]), w).ravel() for v, w in fields])
    bits.setflags(write=False)
    return bits


def labelstudio_rle(crop: np.ndarray, row0: int, col0: int, height: int, width: int) -> list[int]:
    """Label Studio's brush RLE bytes of a box, its top-left pixel at (`row0`, `col0`).

    Every run is written as a repeated value with the widest length field, in
    pieces of at most 65536 values; Label Studio's decoders read any mix.

    Examples
    --------
    >>> rle = labelstudio_rle(np.array([[1]], bool), 0, 1, 1, 2)
    >>> len(rle), rle[:4]
    (14, [0, 0, 0, 8])
    """
    rows, cols = np.nonzero(np.asarray(crop, dtype=bool))  # row-major: sorted
    flat = (rows + row0) * width + cols + col0
    counts = runs(flat, height * width) * 4  # four RGBA bytes per pixel
    values = np.where(np.arange(counts.size) % 2 == 1, 255, 0)
    keep = counts > 0
    counts, values = counts[keep], values[keep]
    pieces = -(-counts // _LS_MAX_RUN)
    lengths = np.full(int(pieces.sum()), _LS_MAX_RUN, dtype=np.int64)
    last = np.cumsum(pieces) - 1
    lengths[last] = counts - (pieces - 1) * _LS_MAX_RUN
    values = np.repeat(values, pieces)
    # one run: repeat bit 1, width index 3 (16 bits), length - 1, the value
    index = len(_LS_SIZES) - 1
    word = (1 << 26) | (index << 24) | ((lengths - 1) << _LS_WORD) | values
    bits = np.concatenate([_ls_header(height * width * 4), _bits(word, 27).ravel()])
    out: list[int] = np.packbits(bits).tolist()
    return out
