"""Bilinear resizing of class-probability planes, as ``torch.nn.functional.interpolate`` does."""

from __future__ import annotations

import numpy as np

from segaudit._typing import FloatArray

__all__ = ["resize_bilinear", "scaled_down"]


def scaled_down(size: tuple[int, int], shape: tuple[int, int]) -> bool:
    """Whether `size` is `shape` made smaller by one factor on both axes, to a pixel.

    Such probabilities are upsampled to the mask's size as they are read.

    Examples
    --------
    >>> scaled_down((128, 171), (512, 683)), scaled_down((12, 15), (12, 16))
    (True, False)
    """
    (h, w), (height, width) = size, shape
    return 0 < h < height and 0 < w < width and abs(width * h / height - w) < 1


def _axis_weights(
    size_in: int, size_out: int, dtype: type[np.floating]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source rows ``i0``, ``i1`` and weight ``w1`` of each output row (half-pixel centres).

    As torch does: the scale in the input's precision, the source position in
    double precision, then rounded to the input's precision.
    """
    scale = np.float64(dtype(size_in) / dtype(size_out))
    src = (scale * (np.arange(size_out) + 0.5) - 0.5).astype(dtype)
    src = np.maximum(src, dtype(0.0))
    i0 = np.minimum(src.astype(np.intp), size_in - 1)
    i1 = np.minimum(i0 + 1, size_in - 1)
    return i0, i1, (src - i0.astype(dtype)).astype(dtype)


def resize_bilinear(planes: np.ndarray, size: tuple[int, int]) -> FloatArray:
    """Resize (K, h, w) planes to (K, H, W) by bilinear interpolation with half-pixel centres.

    The same as ``torch.nn.functional.interpolate(x[None], size, mode="bilinear",
    align_corners=False)[0]`` (to float32 rounding): output pixel ``i`` samples
    the input at ``(i + 0.5) * h / H - 0.5``, clamped at 0, and edge pixels are
    repeated. Whatever the planes hold (probabilities or logits) is resized;
    float16 is computed and returned as float32, float64 stays float64.

    Parameters
    ----------
    planes : ndarray of shape (K, h, w)
    size : (H, W)

    Returns
    -------
    ndarray of shape (K, H, W)

    Examples
    --------
    >>> x = np.array([[[0.0, 1.0]]], np.float32)
    >>> resize_bilinear(x, (1, 4))
    array([[[0.  , 0.25, 0.75, 1.  ]]], dtype=float32)
    """
    dtype = np.float64 if planes.dtype == np.float64 else np.float32
    arr = np.asarray(planes, dtype=dtype)
    _, h, w = arr.shape
    height, width = size
    rows = arr if height == h else _resize_axis(arr, 1, height, dtype)
    return rows if width == w else _resize_axis(rows, 2, width, dtype)


def _resize_axis(arr: np.ndarray, axis: int, size_out: int, dtype: type[np.floating]) -> FloatArray:
    """Resize one axis of `arr`; an integer factor runs as strided slices, one per phase."""
    size_in = arr.shape[axis]
    i0, i1, weight = _axis_weights(size_in, size_out, dtype)
    shape = list(arr.shape)
    shape[axis] = size_out
    out = np.empty(shape, dtype)

    def at(index: slice | np.ndarray) -> tuple[slice | np.ndarray, ...]:
        return (slice(None),) * axis + (index,)

    factor = size_out // size_in
    if factor * size_in != size_out or size_in < 2:
        lo = arr[at(i0)]
        np.subtract(arr[at(i1)], lo, out=out)
        out *= weight.reshape((-1,) + (1,) * (arr.ndim - axis - 1))
        out += lo
        return out
    # output q * factor + r reads a[q + shift] and a[q + shift + 1], with one weight for
    # every q; edges repeat, as the clamped indices do (q = 1 gives the steady state)
    padded = np.concatenate([arr[at(slice(0, 1))], arr, arr[at(slice(-1, None))]], axis=axis)
    diff = np.empty(arr.shape, dtype)
    for r in range(factor):
        j = factor + r
        shift = int(i0[j]) - 1  # 0, or -1 for the phases left of the input pixel's centre
        lo = padded[at(slice(shift + 1, shift + 1 + size_in))]
        np.subtract(padded[at(slice(shift + 2, shift + 2 + size_in))], lo, out=diff)
        diff *= weight[j]
        diff += lo
        out[at(slice(r, None, factor))] = diff
    return out
