"""Class colours for the report: the classes file's, else the masks' own PNG palette, else ours."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from PIL import Image

from segaudit._colors import class_palette
from segaudit.report._image import invalid

__all__ = ["check_mask_palette", "class_colors_for", "read_mask_palette"]

RGB = tuple[int, int, int]


def read_mask_palette(path: str | os.PathLike[str]) -> list[RGB] | None:
    """Return the palette of a palette-mode (``"P"``) mask PNG, or None for other images.

    Pascal VOC masks are such PNGs: pixel value k is drawn in palette colour k,
    so the report can draw class k in the colours the dataset's own viewers use.

    Parameters
    ----------
    path : str or PathLike
        A mask file.

    Returns
    -------
    list of (int, int, int) or None
        One ``(r, g, b)`` per palette entry (usually 256).

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> from PIL import Image
    >>> mask = Image.fromarray(np.zeros((2, 2), np.uint8), mode="P")
    >>> mask.putpalette([0, 0, 0, 128, 0, 0])
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "m.png"
    >>> mask.save(path)
    >>> read_mask_palette(path)[:2]
    [(0, 0, 0), (128, 0, 0)]
    """
    with Image.open(path) as image:
        if image.mode not in ("P", "PA"):
            return None
        flat = image.getpalette() or []
    return [(flat[i], flat[i + 1], flat[i + 2]) for i in range(0, len(flat) - 2, 3)]


def check_mask_palette(mask_palette: object, func: str) -> np.ndarray | None:
    """Return `mask_palette` as ``(P, 3)`` uint8, or None; it may be flat (PIL's) or triplets."""
    if mask_palette is None:
        return None
    constraint = "None, or (r, g, b) triplets (or a flat list of them) of ints in 0..255"
    try:
        array = np.asarray(mask_palette)
    except (TypeError, ValueError):
        array = np.asarray([], dtype=object)
    if array.ndim == 1 and array.size % 3 == 0:
        array = array.reshape(-1, 3)
    ok = (
        array.ndim == 2
        and array.shape[1:] == (3,)
        and array.shape[0] > 0
        and array.dtype.kind in "iu"
        and bool(((array >= 0) & (array <= 255)).all())
    )
    if not ok:
        got = f"an array of shape {array.shape} and dtype {array.dtype}"
        raise invalid("mask_palette", func, constraint, got)
    return array.astype(np.uint8)


def class_colors_for(
    num_classes: int,
    class_colors: Sequence[Sequence[int]] | None,
    mask_palette: np.ndarray | None,
) -> np.ndarray:
    """Return the ``(K, 3)`` uint8 colours of the classes.

    `class_colors` (from a classes file) win; else entry k of the masks'
    `mask_palette` colours class k, and classes past its end get the shared
    palette (:func:`segaudit._colors.class_palette`); else the shared palette.

    Examples
    --------
    >>> class_colors_for(3, None, np.array([[0, 0, 0], [128, 0, 0]], np.uint8)).tolist()
    [[0, 0, 0], [128, 0, 0], [242, 121, 240]]
    >>> class_colors_for(1, [(1, 2, 3)], None).tolist()
    [[1, 2, 3]]
    """
    if class_colors is not None:
        return np.asarray(class_colors, dtype=np.uint8).reshape(num_classes, 3)
    colors = class_palette(num_classes)
    if mask_palette is not None:
        shared = min(num_classes, len(mask_palette))
        colors[:shared] = mask_palette[:shared]
    return colors
