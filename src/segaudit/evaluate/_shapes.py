"""Shapes and objects for the evaluation tools: random blobs, connected objects, windows."""

from __future__ import annotations

import numpy as np

from segaudit._optional import require

__all__ = ["EIGHT", "disc", "draw_shapes", "image_objects", "window"]

EIGHT = np.ones((3, 3), dtype=bool)
"""8-connectivity structure for ``scipy.ndimage.label``."""


def disc(radius: int) -> np.ndarray:
    """Boolean disc of the given radius, shape ``(2 radius + 1, 2 radius + 1)``.

    Examples
    --------
    >>> disc(1).astype(int)
    array([[0, 1, 0],
           [1, 1, 1],
           [0, 1, 0]])
    """
    r = np.arange(-radius, radius + 1)
    return r[:, None] ** 2 + r[None, :] ** 2 <= radius * radius


def draw_shapes(
    rng: np.random.Generator,
    area: np.ndarray,
    cy: np.ndarray,
    cx: np.ndarray,
    yy: np.ndarray,
    xx: np.ndarray,
) -> np.ndarray:
    """Masks of random shapes, one per entry of `area`, on the grid ``(yy, xx)``.

    Each shape is an ellipse, a rotated rectangle or a star-shaped blob (radius
    ``r0 (1 + sum_j c_j cos(j phi + p_j))``, j = 2..4), of about the given area,
    centred at ``(cy, cx)``; it lies within ``2 sqrt(area / pi) + 1`` of its centre.
    Returns a boolean array of shape ``(len(area), *yy.shape)``.
    """
    n = len(area)
    col = (-1,) + (1,) * yy.ndim  # one entry per shape, broadcast over the grid
    kind = rng.integers(0, 3, size=n)
    angle = rng.uniform(0.0, np.pi, size=n).reshape(col)
    aspect = rng.uniform(0.35, 1.0, size=n).reshape(col)
    wave = rng.uniform(0.0, 0.25, size=(n, 3)) * np.exp(1j * rng.uniform(0, 2 * np.pi, (n, 3)))
    a = np.asarray(area, dtype=np.float64).reshape(col)
    # u + iv: the grid in each shape's rotated frame
    w = (xx[None] - np.reshape(cx, col) + 1j * (yy[None] - np.reshape(cy, col))) * np.exp(
        -1j * angle
    )
    out = np.empty(w.shape, dtype=bool)
    e, r, b = kind == 0, kind == 1, kind == 2
    semi = np.sqrt(a / (np.pi * aspect))
    out[e] = (w[e].real / semi[e]) ** 2 + (w[e].imag / (semi[e] * aspect[e])) ** 2 <= 1.0
    side = np.sqrt(a / aspect)
    out[r] = (np.abs(w[r].real) <= side[r] / 2) & (np.abs(w[r].imag) <= side[r] * aspect[r] / 2)
    if b.any():
        rho = np.abs(w[b])
        z = w[b] / np.maximum(rho, 1e-9)  # exp(i phi)
        # sum_j c_j cos(j phi + p_j) = Re sum_j (c_j exp(i p_j)) exp(i j phi), j = 2..4
        z2 = z * z
        harmonics = sum(
            (wave[b, j].reshape(col) * zj).real for j, zj in enumerate((z2, z2 * z, z2 * z2))
        )
        out[b] = rho <= np.sqrt(a[b] / np.pi) * (1.0 + harmonics)
    return out


def image_objects(
    img: np.ndarray, background: int | None, ignore_index: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Objects of one image: an int32 map (0 = no object, ids ``1..n``) and their classes.

    Objects are the 8-connected components of each class other than `background`
    and `ignore_index`, numbered class by class (ascending), then in scan order.
    """
    ndi = require("scipy.ndimage", "io", "segaudit.evaluate")
    objects = np.zeros(img.shape, dtype=np.int32)
    classes = []
    n = 0
    for c in np.unique(img).tolist():
        if c in (background, ignore_index):
            continue
        lab, k = ndi.label(img == c, structure=EIGHT)
        objects[lab > 0] = lab[lab > 0] + n
        classes.append(np.full(k, c, dtype=np.int64))
        n += k
    return objects, np.concatenate([np.empty(0, np.int64), *classes])


def window(sl: tuple[slice, slice], margin: int, shape: tuple[int, int]) -> tuple[slice, slice]:
    """Grow the box `sl` by `margin` on every side, clipped to `shape`.

    Examples
    --------
    >>> window((slice(0, 2), slice(3, 4)), 1, (5, 5))
    (slice(0, 3, None), slice(2, 5, None))
    """
    (r, c), (h, w) = sl, shape
    rows = slice(max(r.start - margin, 0), min(r.stop + margin, h))
    cols = slice(max(c.start - margin, 0), min(c.stop + margin, w))
    return rows, cols
