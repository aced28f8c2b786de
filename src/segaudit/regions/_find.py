"""Region-level label issues: connected groups of flagged pixels, typed and ranked.

Flagged pixels are grouped, one image at a time, into connected components
(``scipy.ndimage.label``). Each region gets a bounding box, an area, its majority
given and predicted class, its mean self-confidence, a severity and one issue type,
decided in this order:

1. ``boundary``: a thin strip along the border between two given segments, which
   the model assigns to the segment on its other side (see `find_issue_regions`).
2. ``missing_label``: given background, predicted an object.
3. ``spurious_label``: given an object, predicted background.
4. ``wrong_class``: anything else.

Void pixels (``ignore_index``) are not a segment: they never join a region, a
void/class border is not a border, and void is never an adjacent class.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from segaudit._validation import check_ignore_index, param_error

__all__ = [
    "ISSUE_TYPES",
    "REGION_DTYPE",
    "find_issue_regions",
    "image_regions",
    "rank_regions",
    "regions_frame",
]

_BOUNDARY_FRACTION = 0.8  # share of a region's pixels that must lie near a border
_BBOX = ("bbox_row0", "bbox_col0", "bbox_row1", "bbox_col1")
_INT_COLUMNS = ("image", "region", *_BBOX, "area", "given_label", "predicted_label")
ISSUE_TYPES = ("boundary", "missing_label", "spurious_label", "wrong_class")
REGION_DTYPE = np.dtype(
    [(c, np.int64) for c in _INT_COLUMNS]
    + [("mean_self_confidence", np.float64), ("severity", np.float64), ("issue_type", np.int8)]
)
"""One region as :func:`image_regions` returns it; ``issue_type`` indexes `ISSUE_TYPES`."""


def _ndimage() -> ModuleType:
    """Import ``scipy.ndimage``, or say which extra provides it."""
    try:
        from scipy import ndimage
    except ImportError as err:  # pragma: no cover - scipy is installed in the test env
        raise ImportError(
            "Region-level issues need scipy; install it with: pip install 'segaudit[io]'"
        ) from err
    return ndimage


def _border_map(labels_hw: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Pixels with a 4-neighbour of a different class, void pairs excluded."""
    border = np.zeros(labels_hw.shape, dtype=bool)
    for axis in (0, 1):
        head = [slice(None), slice(None)]
        tail = [slice(None), slice(None)]
        head[axis], tail[axis] = slice(1, None), slice(None, -1)
        h, t = tuple(head), tuple(tail)
        change = (labels_hw[h] != labels_hw[t]) & valid[h] & valid[t]
        border[h] |= change
        border[t] |= change
    return border


def _majority(region_ids: np.ndarray, values: np.ndarray, n_regions: int) -> np.ndarray:
    """Most frequent value per region (ids ``1..n_regions``); ties go to the smallest."""
    uniq, inv = np.unique(values, return_inverse=True)
    keys, counts = np.unique(region_ids.astype(np.int64) * uniq.size + inv, return_counts=True)
    region, value = keys // uniq.size, keys % uniq.size
    order = np.lexsort((value, -counts, region))
    region, value = region[order], value[order]
    first = np.flatnonzero(np.r_[True, region[1:] != region[:-1]])
    out = np.empty(n_regions, dtype=np.int64)
    out[region[first] - 1] = uniq[value[first]]
    return out


def _ring_has(
    lab: np.ndarray,
    mask: np.ndarray,
    labels_hw: np.ndarray,
    valid: np.ndarray,
    wanted: tuple[np.ndarray, ...],
    asked: np.ndarray,
    width: int,
) -> np.ndarray:
    """Whether every class in `wanted` occurs near each `asked` region; False elsewhere.

    A class occurs near region ``R`` when some non-void pixel of that class, not in
    ``R``, lies within chessboard distance `width` of a pixel of ``R``. Each pixel of
    an asked region looks at its ``(2 width + 1)**2`` window, one offset at a time,
    over padded flat copies of the maps (the padding is void).
    """
    stride = lab.shape[1] + 2 * width
    pad = ((width, width), (width, width))
    lab_p = np.pad(lab, pad).ravel()
    labels_p = np.pad(labels_hw, pad).ravel()
    valid_p = np.pad(valid, pad).ravel()
    rows, cols = np.nonzero(mask)
    region = lab[rows, cols]
    sel = asked[region - 1]
    region = region[sel]
    base = (rows[sel] + width) * stride + cols[sel] + width
    classes = [c[region - 1] for c in wanted]
    seen = [np.zeros(region.size, dtype=bool) for _ in wanted]
    for dr in range(-width, width + 1):
        for dc in range(-width, width + 1):
            at = base + (dr * stride + dc)
            other = valid_p[at] & (lab_p[at] != region)
            label = labels_p[at]
            for c, s in zip(classes, seen, strict=True):
                s |= other & (label == c)
    found = [np.bincount(region, weights=s, minlength=asked.size + 1)[1:] > 0 for s in seen]
    return asked & np.logical_and.reduce(found)


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
    ndi = _ndimage()
    labels_hw, predicted_hw = np.asarray(labels_hw), np.asarray(predicted_hw)
    valid = np.ones(labels_hw.shape, bool) if ignore_index is None else labels_hw != ignore_index
    mask = np.asarray(issues_hw).astype(bool, copy=False) & valid
    structure = ndi.generate_binary_structure(2, connectivity)
    lab, n = ndi.label(mask, structure=structure)
    if n == 0:
        return np.empty(0, dtype=REGION_DTYPE)
    ids = lab[mask]
    area = np.bincount(ids, minlength=n + 1)[1:]
    given = _majority(ids, labels_hw[mask], n)
    predicted = _majority(ids, predicted_hw[mask], n)
    if scores_hw is None:
        mean_conf = np.full(n, np.nan)
        severity = area.astype(np.float64)
    else:
        total = np.bincount(ids, weights=np.asarray(scores_hw, np.float64)[mask], minlength=n + 1)
        mean_conf = total[1:] / area
        severity = area - total[1:]
    border = _border_map(labels_hw, valid)
    near_count = np.zeros(n)
    if border.any():
        near = ndi.distance_transform_cdt(~border, metric="chessboard") < boundary_width
        near_count = np.bincount(ids, weights=near[mask], minlength=n + 1)[1:]
    # A pixel whose chessboard distance to the region's outside exceeds the width is the
    # centre of a (2w+1)-square lying wholly inside its region: min == max over the square.
    size = 2 * boundary_width + 1
    lo = ndi.minimum_filter(lab, size=size, mode="constant")
    thick = mask & (lo == ndi.maximum_filter(lab, size=size, mode="constant"))
    thin = np.bincount(ids, weights=thick[mask], minlength=n + 1)[1:] == 0
    keep = area >= min_area
    candidate = keep & thin & (near_count >= _BOUNDARY_FRACTION * area) & (given != predicted)
    kind = np.full(n, ISSUE_TYPES.index("wrong_class"), dtype=np.int8)
    if background is not None:
        kind[(given == background) & (predicted != background)] = 1
        kind[(given != background) & (predicted == background)] = 2
    if candidate.any():
        both = (given, predicted)
        kind[_ring_has(lab, mask, labels_hw, valid, both, candidate, boundary_width)] = 0
    boxes = np.array(
        [(s[0].start, s[1].start, s[0].stop, s[1].stop) for s in ndi.find_objects(lab)],
        dtype=np.int64,
    ).reshape(n, 4)
    out = np.empty(int(keep.sum()), dtype=REGION_DTYPE)
    out["image"] = image
    out["region"] = np.flatnonzero(keep) + 1
    for j, name in enumerate(_BBOX):
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


def _shape(a: Any) -> tuple[int, ...]:
    """Shape of an array-like without reading it (uses ``.shape`` when there is one)."""
    return tuple(int(s) for s in (a.shape if hasattr(a, "shape") else np.shape(a)))


def _read(a: Any, i: int) -> Any:
    """Image `i` of an array-like as a numpy array, or None when `a` is None."""
    return None if a is None else np.asarray(a[i])


def _argmax_and_self_confidence(
    probs: np.ndarray, labels_hw: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Predicted class (lowest id on ties) and ``p_label`` of one image ``(K, H, W)``."""
    safe = np.where((labels_hw >= 0) & (labels_hw < probs.shape[0]), labels_hw, 0)
    return probs.argmax(axis=0), np.take_along_axis(probs, safe[None], axis=0)[0]


def _check_inputs(
    issues: Any, labels: Any, pred_probs: Any, predicted: Any, pixel_scores: Any
) -> int | None:
    """Check that the arrays agree in shape; return K when ``pred_probs`` is given."""
    if (pred_probs is None) == (predicted is None):
        got = "neither" if predicted is None else "both"
        raise _error("pred_probs", "given, or else 'predicted' (exactly one of the two)", got)
    if pred_probs is not None and pixel_scores is not None:
        raise _error("pixel_scores", "None when 'pred_probs' is given", "an array")
    shape = _shape(issues)
    if len(shape) != 3 or 0 in shape:
        raise _error("issues", "a non-empty (N, H, W) array", f"shape {shape}")
    others = {"labels": labels, "predicted": predicted, "pixel_scores": pixel_scores}
    for name, arr in others.items():
        if arr is not None and _shape(arr) != shape:
            raise _error(name, f"shape {shape} (N, H, W) like 'issues'", f"shape {_shape(arr)}")
    if pred_probs is None:
        return None
    n, h, w = shape
    got = _shape(pred_probs)
    if len(got) != 4 or (got[0], got[2], got[3]) != shape or got[1] < 2:
        expected = f"shape ({n}, K, {h}, {w}) (N, K, H, W) with K >= 2"
        raise _error("pred_probs", expected, f"shape {got}")
    return got[1]


def _error(param: str, expected: str, got: str) -> ValueError:
    """Build the shared message template for this function's parameters."""
    return param_error(param, "find_issue_regions", expected, got)


def _check_option(name: str, value: Any, allowed: str, ok: bool) -> None:
    """Raise for a bad keyword option (booleans are never accepted as numbers)."""
    if not ok or isinstance(value, bool):
        raise _error(name, allowed, repr(value))


def _check_ids(
    param: str,
    values: np.ndarray,
    image: int,
    k: int | None,
    ignore_index: Any,
    void: np.ndarray | None = None,
) -> None:
    """Class ids must be integers in ``0..K-1`` (``>= 0`` without K), void aside.

    Values equal to `ignore_index`, and any value where `void` is True, are allowed.
    """
    if not np.issubdtype(values.dtype, np.integer):
        raise _error(param, "an integer array", f"dtype {values.dtype}")
    bad = (values < 0) if k is None else (values < 0) | (values >= k)
    if ignore_index is not None:
        bad &= values != ignore_index
    if void is not None:
        bad &= ~void
    if bad.any():
        row, col = np.argwhere(bad)[0]
        expected = "class ids >= 0" if k is None else f"class ids in 0..{k - 1}"
        if ignore_index is not None:
            expected += f" or ignore_index={ignore_index!r}"
        if void is not None:
            expected += " (any value on void pixels)"
        got = f"{values[row, col]} at image {image}, row {row}, column {col}"
        raise _error(param, expected, got)


def _check_background(background: Any, k: int | None) -> None:
    """``background`` is None or a class id: in ``0..K-1`` when K is known, else ``>= 0``."""
    if background is None:
        return
    if not isinstance(background, (int, np.integer)) or isinstance(background, bool):
        raise _error("background", "an integer or None", repr(background))
    if background < 0 or background >= (2**63 if k is None else k):
        expected = "None or a class id " + ("(>= 0)" if k is None else f"in 0..{k - 1}")
        raise _error("background", expected, repr(background))


def rank_regions(table: np.ndarray) -> np.ndarray:
    """Order that ranks `table` most severe first, ties by (image, region).

    `table` must be in (image, region) order, as :func:`image_regions` tables
    concatenated image by image are; the stable sort then breaks ties that way.
    """
    return np.argsort(-table["severity"], kind="stable")


def regions_frame(table: np.ndarray, class_names: Sequence[str] | None) -> pd.DataFrame:
    """Build the DataFrame of a `REGION_DTYPE` table, rows in the table's order."""
    data: dict[str, Any] = {c: np.asarray(table[c], dtype=np.int64) for c in _INT_COLUMNS}
    if class_names is not None:
        ids = np.r_[data["given_label"], data["predicted_label"]]
        if ids.size and ids.max() >= len(class_names):
            got = f"{len(class_names)} names and class id {ids.max()}"
            raise _error("class_names", "a name for every class id in the regions", got)
        names = np.array(list(class_names), dtype=object)
        for col in ("given", "predicted"):
            data[f"{col}_name"] = names[data[f"{col}_label"]]
    for col in ("mean_self_confidence", "severity"):
        data[col] = np.asarray(table[col], dtype=np.float64)
    data["issue_type"] = np.array(ISSUE_TYPES, dtype=object)[table["issue_type"]]
    return pd.DataFrame(data)


def find_issue_regions(
    issues: npt.ArrayLike,
    labels: npt.ArrayLike,
    pred_probs: npt.ArrayLike | None = None,
    *,
    predicted: npt.ArrayLike | None = None,
    pixel_scores: npt.ArrayLike | None = None,
    background: int | None = 0,
    ignore_index: int | None = None,
    connectivity: int = 2,
    min_area: int = 1,
    boundary_width: int = 2,
    class_names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Group flagged pixels into connected regions, type each one and rank them.

    Parameters
    ----------
    issues : array-like of bool, shape (N, H, W)
        Flagged pixels, e.g. from `find_label_issues`. Read one image at a time.
    labels : array-like of int, shape (N, H, W)
        Given labels, class ids ``0..K-1`` or `ignore_index`.
    pred_probs : array-like of float, shape (N, K, H, W), optional
        Class probabilities; read only for images with a flagged pixel. The predicted
        class is the argmax (lowest id on ties) and the pixel score the self-confidence
        ``p_label``. Give either this or `predicted`, not both.
    predicted : array-like of int, shape (N, H, W), optional
        Predicted class per pixel, instead of `pred_probs`; e.g. the
        ``predicted`` of :meth:`LabelAudit.iter_images`. Values on void pixels
        (``labels == ignore_index``) are never read, so the ``-1`` that
        ``iter_images`` gives there is fine.
    pixel_scores : array-like of float, shape (N, H, W), optional
        Self-confidence per pixel, only together with `predicted`.
    background : int or None, default=0
        Background class id, in ``0..K-1`` (K from `pred_probs`; ``>= 0`` with
        `predicted`); None means no class is background.
    ignore_index : int or None, default=None
        Void label. Void pixels never join a region, and a void/class edge is not a border.
    connectivity : {1, 2}, default=2
        1 joins 4-neighbours, 2 also diagonal neighbours.
    min_area : int, default=1
        Regions with fewer pixels are dropped (their ids are kept by the others).
    boundary_width : int, default=2
        How far from a border, in pixels, a boundary strip may reach.
    class_names : sequence of str, optional
        Adds ``given_name`` and ``predicted_name`` columns.

    Returns
    -------
    pandas.DataFrame
        One row per region, columns ``image``, ``region`` (1-based, in
        ``scipy.ndimage.label`` order), ``bbox_row0``, ``bbox_col0``, ``bbox_row1``,
        ``bbox_col1`` (half-open, like slices), ``area``, ``given_label``,
        ``predicted_label`` (majority classes, ties to the smallest id), the name
        columns, ``mean_self_confidence`` (NaN without scores), ``severity`` and
        ``issue_type``; most severe first, ties by (image, region).

    Notes
    -----
    ``severity = area * (1 - mean_self_confidence)``, the expected number of wrongly
    labelled pixels; without scores it is the area. A border pixel has a 4-neighbour
    of another (non-void) class. With ``g``, ``p`` the majority given and predicted
    classes, the issue type is the first that holds:

    - ``boundary``: ``p != g``; at least 80% of the pixels lie at chessboard distance
      ``< boundary_width`` from a border pixel; the region is thin (its chessboard
      distance transform never exceeds `boundary_width`); and the non-void pixels
      within `boundary_width` around it include both class ``p`` and class ``g``.
    - ``missing_label``: ``g == background != p``.
    - ``spurious_label``: ``g != background == p``.
    - ``wrong_class``: otherwise.

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.zeros((1, 6, 6), int)
    >>> predicted = labels.copy(); predicted[0, 1:4, 1:4] = 2
    >>> issues = predicted != labels
    >>> find_issue_regions(issues, labels, predicted=predicted)[["area", "issue_type"]]
       area     issue_type
    0     9  missing_label
    >>> len(find_issue_regions(issues, labels, predicted=predicted, min_area=10))
    0
    """
    k = _check_inputs(issues, labels, pred_probs, predicted, pixel_scores)
    _check_option("connectivity", connectivity, "1 or 2", connectivity in (1, 2))
    for name, value in (("min_area", min_area), ("boundary_width", boundary_width)):
        ok = isinstance(value, (int, np.integer)) and value >= 1
        _check_option(name, value, "an integer >= 1", ok)
    ignore_index = check_ignore_index(ignore_index, "find_issue_regions")
    _check_background(background, k)
    # a wider strip than the image changes nothing (every distance is smaller)
    boundary_width = min(int(boundary_width), max(_shape(issues)[1:]))
    tables = [np.empty(0, dtype=REGION_DTYPE)]
    for i in range(_shape(issues)[0]):
        issues_hw = _read(issues, i).astype(bool, copy=False)
        if not issues_hw.any():
            continue
        labels_hw = _read(labels, i)
        _check_ids("labels", labels_hw, i, k, ignore_index)
        if pred_probs is None:
            predicted_hw, scores_hw = _read(predicted, i), _read(pixel_scores, i)
            void = None if ignore_index is None else labels_hw == ignore_index
            _check_ids("predicted", predicted_hw, i, None, None, void)
        else:
            predicted_hw, scores_hw = _argmax_and_self_confidence(_read(pred_probs, i), labels_hw)
        tables.append(
            image_regions(
                issues_hw,
                labels_hw,
                predicted_hw,
                scores_hw,
                image=i,
                background=background,
                ignore_index=ignore_index,
                connectivity=connectivity,
                min_area=min_area,
                boundary_width=boundary_width,
            )
        )
    table = np.concatenate(tables)
    return regions_frame(table[rank_regions(table)], class_names)
