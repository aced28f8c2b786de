"""Each region's pixels: the image's issue mask labelled as the regions were found.

A region of :func:`~segaudit.find_issue_regions` is a connected component of
the flagged, non-void pixels, numbered in ``scipy.ndimage.label`` order
(:func:`~segaudit.regions._image.image_regions`); dropped small regions keep
their numbers. Labelling the same mask the same way gives each region's
pixels back: region ``r`` is ``region_map(...) == r``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from segaudit._optional import require
from segaudit._typing import BoolArray, IntArray

__all__ = ["region_crop", "region_map"]


def region_map(
    issues_hw: npt.ArrayLike,
    labels_hw: npt.ArrayLike | None = None,
    *,
    ignore_index: int | None = None,
    connectivity: int = 2,
) -> IntArray:
    """Label the regions of one image: ``(H, W)`` int32, 0 outside every region.

    The options mean the same as in `find_issue_regions`; `labels_hw` is read
    only to leave out void pixels (``== ignore_index``).

    Examples
    --------
    >>> issues = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 0], [1, 1, 0]], bool)
    >>> region_map(issues).tolist()
    [[1, 0, 0], [0, 1, 0], [0, 0, 0], [2, 2, 0]]
    >>> region_map(issues, connectivity=1).max()
    np.int32(3)
    """
    ndi = require("scipy.ndimage", "io", "Finding each region's pixels")
    mask = np.asarray(issues_hw).astype(bool, copy=False)
    if labels_hw is not None and ignore_index is not None:
        mask = mask & (np.asarray(labels_hw) != ignore_index)
    structure = ndi.generate_binary_structure(2, connectivity)
    lab: IntArray = ndi.label(mask, structure=structure, output=np.int32)[0]
    return lab


def region_crop(regions_hw: IntArray, region: int, box: tuple[int, int, int, int]) -> BoolArray:
    """Pixels of region `region` inside its box ``(row0, col0, row1, col1)`` (half-open).

    Examples
    --------
    >>> lab = np.array([[1, 0], [2, 1]], np.int32)
    >>> region_crop(lab, 1, (0, 0, 2, 2)).astype(int).tolist()
    [[1, 0], [0, 1]]
    """
    row0, col0, row1, col1 = box
    crop: BoolArray = regions_hw[row0:row1, col0:col1] == region
    return crop
