"""`find_issue_regions`: a dataset's flagged pixels as connected, typed, ranked regions.

The inputs are checked here, once; each image with a flagged pixel is then read
and handed to :func:`~segaudit.regions._image.image_regions`, and the tables
are ranked (:mod:`segaudit.regions._records`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from segaudit._validation import allowed_labels, bad_labels, check_ignore_index, param_error
from segaudit.drivers._models import ModelStack, as_models, is_model_sequence
from segaudit.regions._image import image_regions
from segaudit.regions._records import REGION_DTYPE, rank_regions, regions_frame

__all__ = ["find_issue_regions"]


def _shape(a: Any) -> tuple[int, ...]:
    """Shape of an array-like without reading it (uses ``.shape`` when there is one)."""
    return tuple(int(s) for s in (a.shape if hasattr(a, "shape") else np.shape(a)))


def _read(a: Any, i: int) -> Any:
    """Image `i` of an array-like as a numpy array, or None when `a` is None.

    Of a :class:`~segaudit.drivers._models.ModelStack`, every model's image `i`
    is read once and combined (a slice keeps the image number for messages).
    """
    if a is None:
        return None
    if isinstance(a, ModelStack):
        return a[i : i + 1][0]
    return np.asarray(a[i])


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
    probs_shape = _shape(pred_probs)
    if len(probs_shape) != 4 or probs_shape[:1] + probs_shape[2:] != shape or probs_shape[1] < 2:
        expected = f"shape ({n}, K, {h}, {w}) (N, K, H, W) with K >= 2"
        raise _error("pred_probs", expected, f"shape {probs_shape}")
    return probs_shape[1]


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
    ignore_index: int | None,
    void: np.ndarray | None = None,
) -> None:
    """Class ids must be integers: the label rule of `bad_labels` when K is known, else ``>= 0``.

    Values equal to `ignore_index`, and any value where `void` is True, are allowed.
    """
    if not np.issubdtype(values.dtype, np.integer):
        raise _error(param, "an integer array", f"dtype {values.dtype}")
    if k is None:  # no K to compare with: a class id is only known to be >= 0
        bad = values < 0
        expected = "class ids >= 0"
        if ignore_index is not None:
            bad &= values != ignore_index
            expected += f" or ignore_index={ignore_index}"
    else:
        bad = bad_labels(values, k, ignore_index)
        expected = allowed_labels(k, ignore_index)
    if void is not None:
        bad &= ~void
        expected += " (any value on void pixels)"
    if bad.any():
        row, col = np.argwhere(bad)[0]
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


def find_issue_regions(
    issues: npt.ArrayLike,
    labels: npt.ArrayLike,
    pred_probs: npt.ArrayLike | Sequence[npt.ArrayLike] | None = None,
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
        ``p_label``. Give either this or `predicted`, not both. A list of
        same-shape arrays (M models or folds) is combined per pixel like in
        `find_label_issues`: the per-class median, renormalised
        (:func:`~segaudit.kernels._combine.combine_models`); each array is read
        once per flagged image, and a list of one is the array itself.
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
    probs: Any = pred_probs
    if is_model_sequence(pred_probs):
        probs = as_models(pred_probs, "find_issue_regions", from_logits=False)
    k = _check_inputs(issues, labels, probs, predicted, pixel_scores)
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
        if probs is None:
            predicted_hw, scores_hw = _read(predicted, i), _read(pixel_scores, i)
            void = None if ignore_index is None else labels_hw == ignore_index
            _check_ids("predicted", predicted_hw, i, None, None, void)
        else:
            predicted_hw, scores_hw = _argmax_and_self_confidence(_read(probs, i), labels_hw)
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
