"""Regions of one image: connected groups of flagged pixels, typed and measured.

Flagged pixels are grouped into connected components, numbered as
``scipy.ndimage.label`` numbers them, and measured by the kernel
:meth:`~segaudit.kernels._protocol.Kernels.issue_regions` (compiled, or its
scipy twin: the same records). Each region gets a bounding box, an area, its
majority given and predicted class, its mean self-confidence, a severity and
one issue type, decided in this order:

1. ``boundary``: a thin strip along the border between two given segments, which
   the model assigns to the segment on its other side (see
   :func:`~segaudit.regions.find_issue_regions`).
2. ``missing_label``: given background, predicted an object.
3. ``spurious_label``: given an object, predicted background.
4. ``wrong_class``: anything else.

Void pixels (``ignore_index``) are not a segment: they never join a region, a
void/class border is not a border, and void is never an adjacent class.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from segaudit.kernels._choice import get_kernels
from segaudit.regions._records import BBOX_COLUMNS, ISSUE_TYPES, REGION_DTYPE

__all__ = ["image_regions"]

_TYPE = {name: code for code, name in enumerate(ISSUE_TYPES)}


def image_regions(
    issues_hw: npt.ArrayLike,
    labels_hw: npt.ArrayLike,
    predicted_hw: npt.ArrayLike,
    scores_hw: npt.ArrayLike | None = None,
    *,
    image: int = 0,
    background: int | None = 0,
    ignore_index: int | None = None,
    connectivity: int = 2,
    min_area: int = 1,
    boundary_width: int = 2,
) -> np.ndarray:
    """Regions of one image ``(H, W)`` as a `REGION_DTYPE` record array, in label order.

    Options mean the same as in `find_issue_regions`; inputs are not validated here.

    Examples
    --------
    >>> import numpy as np
    >>> issues = np.zeros((4, 4), bool); issues[1:3, 1:3] = True
    >>> labels = np.ones((4, 4), int); predicted = np.where(issues, 3, 1)
    >>> out = image_regions(issues, labels, predicted)
    >>> out["area"], out["predicted_label"], [ISSUE_TYPES[t] for t in out["issue_type"]]
    (array([4]), array([3]), ['wrong_class'])
    """
    labels_hw = _integers(np.asarray(labels_hw))
    predicted_hw = _integers(np.asarray(predicted_hw))
    issues = np.ascontiguousarray(np.asarray(issues_hw), dtype=bool)
    scores = np.zeros((0, 0)) if scores_hw is None else _floats(np.asarray(scores_hw))
    void = np.int64(0 if ignore_index is None else ignore_index)
    area, given, predicted, total, boxes, strip = get_kernels().issue_regions(
        issues,
        labels_hw,
        predicted_hw,
        scores,
        void,
        ignore_index is not None,
        int(connectivity),
        int(min_area),
        int(boundary_width),
    )
    n = area.shape[0]
    if n == 0:
        return np.empty(0, dtype=REGION_DTYPE)
    mean_conf: np.ndarray
    severity: np.ndarray
    if scores_hw is None:
        mean_conf = np.full(n, np.nan)
        severity = area.astype(np.float64)
    else:
        mean_conf = total / area
        severity = area - total
    keep = area >= min_area
    kind = np.full(n, _TYPE["wrong_class"], dtype=np.int8)
    if background is not None:
        kind[(given == background) & (predicted != background)] = _TYPE["missing_label"]
        kind[(given != background) & (predicted == background)] = _TYPE["spurious_label"]
    kind[strip] = _TYPE["boundary"]
    out = np.empty(int(keep.sum()), dtype=REGION_DTYPE)
    out["image"] = image
    out["region"] = np.flatnonzero(keep) + 1
    for j, name in enumerate(BBOX_COLUMNS):
        out[name] = boxes[keep, j]
    fields = {
        "area": area,
        "given_label": given,
        "predicted_label": predicted,
        "mean_self_confidence": mean_conf,
        "severity": severity,
        "issue_type": kind,
    }
    for name, values in fields.items():
        out[name] = values[keep]
    return out


def _integers(values: np.ndarray) -> np.ndarray:
    """`values` C-ordered in native byte order, as int64 unless they are integers already."""
    dtype = values.dtype
    if dtype.kind not in "iu":
        dtype = np.dtype(np.int64)
    return np.ascontiguousarray(values, dtype=dtype.newbyteorder("="))


def _floats(values: np.ndarray) -> np.ndarray:
    """Scores C-ordered: float32 or float64 as given, any other dtype as float64."""
    dtype = values.dtype
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        dtype = np.dtype(np.float64)
    return np.ascontiguousarray(values, dtype=dtype)
