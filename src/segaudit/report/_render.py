"""Turn masks and images into small embedded PNGs: palettes, overlays, downscaling, crops."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from segaudit._colors import LUT_MAX, VOID_COLOR, class_palette, color_table, colorize

__all__ = [
    "FLAG_COLOR",
    "VOID_COLOR",
    "Indexed",
    "colorize",
    "default_palette",
    "fit_size",
    "flagged_picture",
    "flagged_view",
    "mask_picture",
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
    At the array's own size, `array` itself is returned.
    """
    height, width = array.shape[:2]
    if (height, width) == tuple(size):
        return array
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


@dataclass(frozen=True)
class Indexed:
    """A picture of at most 256 colours: a palette index per pixel.

    Attributes
    ----------
    index : ndarray of uint8, shape (h, w)
        Each pixel's entry of `palette`.
    palette : ndarray of uint8, shape (n, 3)
        RGB colours, ``n <= 256``.
    """

    index: np.ndarray
    palette: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        """The shape of the RGB picture, ``(h, w, 3)``."""
        height, width = self.index.shape
        return height, width, 3

    def rgb(self) -> np.ndarray:
        """Return the picture as ``(h, w, 3)`` uint8."""
        rgb: np.ndarray = self.palette[self.index]
        return rgb


Picture = np.ndarray | Indexed
"""An RGB ``(h, w, 3)`` uint8 array, or the same picture as palette indices."""


def _class_codes(
    ids: np.ndarray, palette: np.ndarray, ignore_index: int | None
) -> tuple[np.ndarray, np.ndarray] | None:
    """Return ``(codes, colours)``: ``colours[codes]`` is ``colorize(ids, ...)``; None if too wide.

    The codes are the ids less the smallest one, for integer maps spanning fewer
    than `LUT_MAX` ids (`colorize`'s own table).
    """
    if ids.dtype.kind not in "iub" or not ids.size:
        return None
    lo, hi = int(ids.min()), int(ids.max())
    if hi - lo >= LUT_MAX:
        return None
    pal = np.asarray(palette, dtype=np.uint8)
    if lo >= 0 and hi < 256:  # one byte a pixel: cheaper lookups (and `flagged_picture` shifts)
        codes = ids.astype(np.uint8, copy=False)
        if lo:
            codes = codes - np.uint8(lo)
    else:
        codes = np.subtract(ids, lo, dtype=np.intp)
    return codes, color_table(lo, hi, pal, ignore_index=ignore_index)


def _pack(codes: np.ndarray, colours: np.ndarray) -> Picture:
    """Return ``colours[codes]``: `Indexed` by its distinct colours, RGB beyond 256 of them.

    The palette holds the distinct colours of the table (one lookup per pixel),
    or, when the table has more than 256, those of the pixels.
    """
    table = _distinct(colours, np.arange(len(colours)))
    if table is None:  # count the colours the pixels use
        used = np.flatnonzero(np.bincount(codes.ravel(), minlength=len(colours)))
        table = _distinct(colours, used)
        if table is None:
            rgb: np.ndarray = colours[codes]
            return rgb
    index, palette = table
    return Indexed(np.take(index, codes), palette)


def _distinct(colours: np.ndarray, used: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Return (uint8 position of each `used` colour's entry, the distinct colours) or None.

    None when the `used` entries of `colours` hold more than 256 distinct colours.
    """
    wide = colours[used].astype(np.uint32)
    keys = (wide[:, 0] << 16) | (wide[:, 1] << 8) | wide[:, 2]
    unique, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    if unique.size > 256:
        return None
    index = np.zeros(len(colours), dtype=np.uint8)
    index[used] = inverse
    return index, colours[used[first]]


def mask_picture(
    ids: np.ndarray, palette: np.ndarray, *, ignore_index: int | None, max_side: int
) -> Picture:
    """Colour a class map as `colorize` does, scaled down (nearest) to `max_side`.

    Returns an `Indexed` picture built from the class ids (one lookup per pixel,
    no RGB pass) when the map spans fewer than `LUT_MAX` ids and at most 256
    colours occur; else the RGB array.
    """
    small = resize_nearest(ids, fit_size(*ids.shape, max_side=max_side))
    found = _class_codes(small, palette, ignore_index)
    if found is None:
        rgb: np.ndarray = colorize(small, palette, ignore_index=ignore_index)
        return rgb
    return _pack(*found)


def _shade(rgb: np.ndarray, flagged: np.ndarray) -> np.ndarray:
    """Fade the pixels of ``(..., 3)`` `rgb` towards white, draw the `flagged` ones red."""
    out = rgb.astype(np.float32)
    out[~flagged] = (1 - _FADE) * out[~flagged] + _FADE * 255.0
    out[flagged] = (1 - _FLAG_ALPHA) * out[flagged] + _FLAG_ALPHA * np.asarray(FLAG_COLOR)
    shaded: np.ndarray = np.rint(out).astype(np.uint8)
    return shaded


def flagged_picture(
    labels: np.ndarray,
    issues: np.ndarray,
    image: np.ndarray | None,
    palette: np.ndarray,
    *,
    ignore_index: int | None,
    max_side: int,
    box: tuple[int, int, int, int] | None = None,
) -> Picture:
    """`flagged_view` as a `Picture`: over the given mask, computed on its palette.

    Each pixel's colour depends only on its class colour and whether it is
    flagged, so the fading and the red are computed once per colour (the same
    float32 arithmetic, so the same values) and the picture is an `Indexed` one
    when it has at most 256 colours. Over an image, the RGB array.
    """
    size = fit_size(*labels.shape, max_side=max_side)
    scale = (size[0] / labels.shape[0], size[1] / labels.shape[1])
    flagged = _resize_any(issues, size)
    if image is None:
        small = resize_nearest(labels, size)
        found = _class_codes(small, palette, ignore_index)
        if found is not None:
            codes, colours = found
            n = len(colours)
            shaded = np.concatenate(
                [
                    _shade(colours, np.zeros(n, dtype=bool)),
                    _shade(colours, np.ones(n, dtype=bool)),
                    np.array([_BOX_COLOR], dtype=np.uint8),
                ]
            )
            if codes.dtype == np.uint8 and 2 * n < 256:
                codes = np.where(flagged, codes + np.uint8(n), codes)
            else:
                codes = np.where(flagged, codes.astype(np.intp) + n, codes)
            if box is not None:
                codes[_box_pixels(size, box, scale=scale)] = 2 * n
            return _pack(codes, shaded)
        base = colorize(small, palette, ignore_index=ignore_index)
    else:
        base = _resize_photo(image, size)
    out = _shade(base, flagged)
    if box is not None:
        out = _outline(out, box, scale=scale)
    return out


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
    picture = flagged_picture(
        labels, issues, image, palette, ignore_index=ignore_index, max_side=max_side, box=box
    )
    return picture.rgb() if isinstance(picture, Indexed) else picture


def _frame_corners(
    shape: tuple[int, ...], box: tuple[int, int, int, int], scale: tuple[float, float]
) -> tuple[tuple[int, int, int, int], int]:
    """Return the frame (x0, y0, x1, y1) just outside `box` in a `shape` picture, and its width."""
    row0, col0, row1, col1 = box
    width = max(1, max(shape[:2]) // 64)
    corners = (
        int(col0 * scale[1]) - width,
        int(row0 * scale[0]) - width,
        int(np.ceil(col1 * scale[1])) + width - 1,
        int(np.ceil(row1 * scale[0])) + width - 1,
    )
    return corners, width


def _outline(
    rgb: np.ndarray, box: tuple[int, int, int, int], *, scale: tuple[float, float]
) -> np.ndarray:
    """Draw the half-open `box` (input coordinates) as a yellow frame just outside it."""
    corners, width = _frame_corners(rgb.shape, box, scale)
    pil = Image.fromarray(rgb)
    ImageDraw.Draw(pil).rectangle(corners, outline=_BOX_COLOR, width=width)
    return np.asarray(pil)


def _box_pixels(
    size: tuple[int, int], box: tuple[int, int, int, int], *, scale: tuple[float, float]
) -> np.ndarray:
    """Return the pixels that `_outline` paints in a picture of `size`, as a boolean mask."""
    corners, width = _frame_corners(size, box, scale)
    canvas = Image.new("L", (size[1], size[0]), 0)
    ImageDraw.Draw(canvas).rectangle(corners, outline=1, width=width)
    drawn: np.ndarray = np.asarray(canvas).astype(bool)
    return drawn


def png_data_uri(rgb: Picture) -> str:
    """Encode an ``(H, W, 3)`` uint8 array (or an `Indexed` picture) as a ``data:image/png`` URI.

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
    buffer = io.BytesIO()
    if isinstance(rgb, Indexed):
        _palette_image(rgb.index, rgb.palette).save(buffer, format="PNG", compress_level=1)
    else:
        rgb = np.ascontiguousarray(rgb)
        image = Image.fromarray(rgb)
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
    return _palette_image(index, table)


def _palette_image(index: np.ndarray, palette: np.ndarray) -> Image.Image:
    """Return a Pillow ``P`` image of uint8 `index` into ``(n, 3)`` uint8 `palette`."""
    height, width = index.shape
    image = Image.frombuffer("P", (width, height), np.ascontiguousarray(index), "raw", "P", 0, 1)
    image.putpalette(np.ascontiguousarray(palette, dtype=np.uint8).tobytes())
    return image


def _color_keys(rgb: np.ndarray) -> np.ndarray:
    """One integer per colour of ``(..., 3)`` uint8 `rgb`: ``r << 16 | g << 8 | b``."""
    wide = rgb.astype(np.uint32)
    keys: np.ndarray = (wide[..., 0] << 16) | (wide[..., 1] << 8) | wide[..., 2]
    return keys
