"""Turn masks and images into small embedded PNGs: palettes, overlays, downscaling, crops."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image, ImageDraw

from segaudit._colors import VOID_COLOR, class_palette, colorize

__all__ = [
    "FLAG_COLOR",
    "VOID_COLOR",
    "colorize",
    "default_palette",
    "fit_size",
    "flagged_view",
    "png_data_uri",
    "resize_nearest",
]

RGB = tuple[int, int, int]

#: Colour of void (``ignore_index``) pixels in rendered masks.
#: Colour of flagged pixels in overlays.
FLAG_COLOR: RGB = (255, 0, 0)
_FLAG_ALPHA = 0.75  # flagged pixels: mostly red
_FADE = 0.4  # other pixels: faded towards white, so red stands out even over reddish classes
_BOX_COLOR: RGB = (255, 221, 0)


def default_palette(num_classes: int) -> list[RGB]:
    """Return the shared class palette (:func:`segaudit._colors.class_palette`) as tuples.

    Examples
    --------
    >>> default_palette(2)
    [(85, 148, 242), (175, 242, 24)]
    """
    return [(int(r), int(g), int(b)) for r, g, b in class_palette(num_classes)]


def fit_size(height: int, width: int, *, max_side: int) -> tuple[int, int]:
    """Return ``(height, width)`` scaled down (never up) so the long side is at most `max_side`.

    Examples
    --------
    >>> fit_size(1024, 300, max_side=512)
    (512, 150)
    >>> fit_size(4000, 1, max_side=512)
    (512, 1)
    """
    scale = min(1.0, max_side / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize_nearest(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of the first two axes of `array` to ``size = (h, w)``.

    Works on any dtype (class ids stay class ids; no new values are invented).
    """
    height, width = array.shape[:2]
    rows = ((np.arange(size[0]) + 0.5) * height / size[0]).astype(np.intp)
    cols = ((np.arange(size[1]) + 0.5) * width / size[1]).astype(np.intp)
    resized: np.ndarray = array[rows[:, None], cols[None, :]]
    return resized


def _block_edges(length: int, out: int) -> np.ndarray:
    return (np.arange(out) * length // out).astype(np.intp)


def _resize_any(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Downscale a boolean mask so that an output pixel is set when any pixel of its block is."""
    if mask.shape == size:
        return mask
    pooled = np.maximum.reduceat(mask.view(np.uint8), _block_edges(mask.shape[0], size[0]), axis=0)
    pooled = np.maximum.reduceat(pooled, _block_edges(mask.shape[1], size[1]), axis=1)
    return pooled.astype(bool)


def _resize_photo(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if image.shape[:2] == size:
        return image
    pil = Image.fromarray(np.ascontiguousarray(image))
    return np.asarray(pil.resize((size[1], size[0]), Image.Resampling.BOX))


def flagged_view(
    labels: np.ndarray,
    issues: np.ndarray,
    image: np.ndarray | None,
    palette: np.ndarray,
    *,
    ignore_index: int | None,
    max_side: int,
    box: tuple[int, int, int, int] | None = None,
) -> np.ndarray:
    """Draw flagged pixels in red over the faded image (or the colourised given mask).

    Parameters
    ----------
    labels : ndarray of int, shape (H, W)
        Given mask; the background when `image` is None.
    issues : ndarray of bool, shape (H, W)
        Flagged pixels. When downscaling, a pixel stays flagged if any pixel of its
        block is, so no flagged pixel disappears from the picture.
    image : ndarray of uint8, shape (H, W, 3), optional
        Original image.
    palette : ndarray of uint8, shape (K, 3)
        Class colours.
    ignore_index : int, optional
        Void label.
    max_side : int
        Long side of the result, at most.
    box : (row0, col0, row1, col1), optional
        Half-open rectangle, in input coordinates, to outline in yellow just outside.

    Returns
    -------
    ndarray of uint8, shape (h, w, 3)
    """
    size = fit_size(*labels.shape, max_side=max_side)
    if image is None:
        base = colorize(resize_nearest(labels, size), palette, ignore_index=ignore_index)
    else:
        base = _resize_photo(image, size)
    flagged = _resize_any(issues, size)
    out = base.astype(np.float32)
    out[~flagged] = (1 - _FADE) * out[~flagged] + _FADE * 255.0
    out[flagged] = (1 - _FLAG_ALPHA) * out[flagged] + _FLAG_ALPHA * np.asarray(FLAG_COLOR)
    out = np.rint(out).astype(np.uint8)
    if box is not None:
        out = _outline(out, box, scale=(size[0] / labels.shape[0], size[1] / labels.shape[1]))
    return out


def _outline(
    rgb: np.ndarray, box: tuple[int, int, int, int], *, scale: tuple[float, float]
) -> np.ndarray:
    """Draw the half-open `box` (input coordinates) as a yellow frame just outside it."""
    row0, col0, row1, col1 = box
    width = max(1, max(rgb.shape[:2]) // 64)
    pil = Image.fromarray(rgb)
    ImageDraw.Draw(pil).rectangle(
        (
            int(col0 * scale[1]) - width,
            int(row0 * scale[0]) - width,
            int(np.ceil(col1 * scale[1])) + width - 1,
            int(np.ceil(row1 * scale[0])) + width - 1,
        ),
        outline=_BOX_COLOR,
        width=width,
    )
    return np.asarray(pil)


def png_data_uri(rgb: np.ndarray) -> str:
    """Encode an ``(H, W, 3)`` uint8 array as a ``data:image/png;base64,...`` URI.

    Pictures of at most 256 colours (masks, and overlays drawn over them) are
    stored as palette PNGs, a byte per pixel instead of three; every picture at
    zlib level 1. Either is faster to encode than Pillow's default, and the
    decoded pixels are the same.

    Examples
    --------
    >>> import io
    >>> rgb = np.array([[[255, 0, 0], [0, 0, 255]]], np.uint8)
    >>> png = base64.b64decode(png_data_uri(rgb).split(",")[1])
    >>> Image.open(io.BytesIO(png)).mode, np.array_equal(
    ...     np.asarray(Image.open(io.BytesIO(png)).convert("RGB")), rgb)
    ('P', True)
    """
    rgb = np.ascontiguousarray(rgb)
    image = Image.fromarray(rgb)
    buffer = io.BytesIO()
    (_indexed(image, rgb) or image).save(buffer, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _indexed(image: Image.Image, rgb: np.ndarray) -> Image.Image | None:
    """Return `image` as a palette image if it has at most 256 colours, else None."""
    colors = image.getcolors(256) if image.mode == "RGB" else None  # None beyond 256
    if colors is None:
        return None
    table = np.array([color for _, color in colors], dtype=np.uint8).reshape(-1, 3)
    keys = _color_keys(table)
    order = np.argsort(keys)
    index = order[np.searchsorted(keys[order], _color_keys(rgb))].astype(np.uint8)
    height, width = index.shape
    indexed = Image.frombuffer("P", (width, height), index.tobytes(), "raw", "P", 0, 1)
    indexed.putpalette(table.tobytes())
    return indexed


def _color_keys(rgb: np.ndarray) -> np.ndarray:
    """One integer per colour of ``(..., 3)`` uint8 `rgb`: ``r << 16 | g << 8 | b``."""
    wide = rgb.astype(np.uint32)
    keys: np.ndarray = (wide[..., 0] << 16) | (wide[..., 1] << 8) | wide[..., 2]
    return keys
