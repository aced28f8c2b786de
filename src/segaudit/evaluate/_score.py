"""Score a detector's flagged pixels against known, injected label errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from segaudit._optional import require
from segaudit._validation import param_error
from segaudit.evaluate._inject import ERROR_KINDS

__all__ = ["DetectionScores", "average_precision", "score_detection"]

_FUNC = "score_detection"
_TABLE_COLUMNS = (
    "truth_pixels",
    "flagged_pixels",
    "pixel_precision",
    "pixel_recall",
    "pixel_f1",
    "regions",
    "regions_found",
    "region_recall",
    "flagged_regions",
    "region_precision",
    "image_auprc",
)


def _ratio(num: float, den: float) -> float:
    """``num / den``, NaN when ``den`` is 0."""
    return float(num) / float(den) if den else float("nan")


@dataclass(frozen=True, eq=False)
class DetectionScores:
    """Detection quality of flagged pixels against injected errors (see `score_detection`).

    Attributes
    ----------
    pixel_precision, pixel_recall, pixel_f1 : float
        Over non-ignored pixels. Precision is NaN when nothing is flagged, recall
        NaN when nothing is corrupted; ``F1 = 2 TP / (2 TP + FP + FN)``, 0 when
        ``TP = 0`` and NaN only when there are neither flags nor errors.
    region_recall : float
        Share of injected regions with at least half of their pixels flagged (NaN
        without regions).
    region_precision : float
        Share of flagged regions (8-connected) touching a corrupted pixel (NaN
        without flags).
    image_auprc : float
        Average precision of ``-image_scores`` for "the image has a corrupted
        pixel"; NaN without `image_scores` or without such an image.
    flagged_pixels, truth_pixels, true_positives, flagged_regions, flagged_regions_hit : int
        The counts behind the ratios.
    image_prevalence : float
        Share of images with a corrupted pixel: the AUPRC of random scores.
    regions : pandas.DataFrame
        One row per injected region: ``region`` (the error id, or the component
        number), ``image``, ``kind`` (with `errors`; else missing), ``pixels``,
        ``flagged`` and ``found``.
    """

    pixel_precision: float
    pixel_recall: float
    pixel_f1: float
    region_recall: float
    region_precision: float
    image_auprc: float
    flagged_pixels: int
    truth_pixels: int
    true_positives: int
    flagged_regions: int
    flagged_regions_hit: int
    image_prevalence: float
    regions: pd.DataFrame

    def table(self) -> pd.DataFrame:
        """Summary table: a row ``"all"``, then one per error kind present.

        Kind rows carry the pixel and region recall of that kind's errors (and
        their counts); the other columns are NaN there, as flags are not
        attributed to a kind.

        Returns
        -------
        pandas.DataFrame
            Index ``"all"`` and the kinds; columns ``truth_pixels``,
            ``flagged_pixels``, ``pixel_precision``, ``pixel_recall``, ``pixel_f1``,
            ``regions``, ``regions_found``, ``region_recall``, ``flagged_regions``,
            ``region_precision``, ``image_auprc``.

        Examples
        --------
        >>> import numpy as np
        >>> from segaudit.evaluate import score_detection
        >>> truth = np.zeros((1, 4, 4), bool); truth[0, :2, :2] = True
        >>> score_detection(truth, truth).table()[["pixel_f1", "region_recall"]]
             pixel_f1  region_recall
        all       1.0            1.0
        """
        rows = {
            "all": {
                "truth_pixels": self.truth_pixels,
                "flagged_pixels": self.flagged_pixels,
                "pixel_precision": self.pixel_precision,
                "pixel_recall": self.pixel_recall,
                "pixel_f1": self.pixel_f1,
                "regions": len(self.regions),
                "regions_found": int(self.regions["found"].sum()),
                "region_recall": self.region_recall,
                "flagged_regions": self.flagged_regions,
                "region_precision": self.region_precision,
                "image_auprc": self.image_auprc,
            }
        }
        if "kind" in self.regions:
            for kind in [k for k in ERROR_KINDS if (self.regions["kind"] == k).any()]:
                part = self.regions[self.regions["kind"] == kind]
                pixels, found = int(part["pixels"].sum()), int(part["found"].sum())
                rows[kind] = {
                    "truth_pixels": pixels,
                    "pixel_recall": _ratio(part["flagged"].sum(), pixels),
                    "regions": len(part),
                    "regions_found": found,
                    "region_recall": _ratio(found, len(part)),
                }
        table = pd.DataFrame.from_dict(rows, orient="index").reindex(columns=list(_TABLE_COLUMNS))
        typed: pd.DataFrame = table.astype(dict.fromkeys(_TABLE_COLUMNS, np.float64))
        return typed


def average_precision(y_true: npt.ArrayLike, score: npt.ArrayLike) -> float:
    """Average precision of `score` (higher = more likely positive) for binary `y_true`.

    Same definition as ``sklearn.metrics.average_precision_score``:
    ``sum_n (R_n - R_{n-1}) P_n`` over the distinct score thresholds, tied scores
    forming one threshold. NaN when there is no positive.

    Parameters
    ----------
    y_true : array_like of bool, shape (n,)
        Which items are positive.
    score : array_like of float, shape (n,)
        Ranking score, higher first.

    Returns
    -------
    float

    Examples
    --------
    >>> from segaudit.evaluate import average_precision
    >>> average_precision([True, False, True, False], [0.9, 0.8, 0.7, 0.1])
    0.8333333333333333
    """
    y = np.asarray(y_true, dtype=bool).ravel()
    s = np.asarray(score, dtype=np.float64).ravel()
    if not y.any():
        return float("nan")
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]
    tp = np.cumsum(y)[last]
    precision = tp / (last + 1.0)
    recall = tp / tp[-1]
    return float(np.sum(np.diff(recall, prepend=0.0) * precision))


def _check_mask(x: Any, param: str, shape: tuple[int, ...] | None) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype != np.bool_:
        raise param_error(param, _FUNC, "a boolean array of shape (N, H, W)", f"dtype {arr.dtype}")
    if (shape is None and arr.ndim != 3) or (shape is not None and arr.shape != shape):
        expected = "of shape (N, H, W)" if shape is None else f"of shape {shape}, like flags"
        raise param_error(param, _FUNC, f"a boolean array {expected}", f"shape {arr.shape}")
    return arr


def _check_errors(
    errors: Any, error_ids: Any, truth: np.ndarray, valid: np.ndarray
) -> tuple[np.ndarray | None, pd.DataFrame | None]:
    if errors is not None and error_ids is None:
        raise param_error(
            "error_ids", _FUNC, "given with errors (the error id map of inject_label_noise)", None
        )
    if error_ids is None:
        return None, None
    ids = np.asarray(error_ids)
    if ids.shape != truth.shape or ids.dtype.kind not in "iu":
        got = f"dtype {ids.dtype}, shape {ids.shape}"
        raise param_error("error_ids", _FUNC, f"an integer array of shape {truth.shape}", got)
    if ((ids > 0) != truth)[valid].any() or (ids < 0).any():
        raise param_error(
            "error_ids", _FUNC, "positive exactly where truth is True (0 elsewhere)", "a mismatch"
        )
    if errors is None:
        return ids, None
    if not isinstance(errors, pd.DataFrame) or not {"error", "kind"} <= set(errors.columns):
        got = type(errors).__name__
        raise param_error("errors", _FUNC, "a DataFrame with columns 'error' and 'kind'", got)
    missing = np.setdiff1d(np.unique(ids[ids > 0]), errors["error"].to_numpy())
    if missing.size:
        raise param_error(
            "errors", _FUNC, "a row for every id in error_ids", f"no row for id {missing[0]}"
        )
    return ids, errors


def _volume_label(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected components of each image of an (N, H, W) mask, numbered across images."""
    structure = np.zeros((3, 3, 3), dtype=bool)
    structure[1] = True
    ndi = require("scipy.ndimage", "io", "segaudit.evaluate")
    lab, n = ndi.label(mask, structure=structure)
    return lab, int(n)


def score_detection(
    flags: npt.ArrayLike,
    truth: npt.ArrayLike,
    *,
    image_scores: npt.ArrayLike | None = None,
    errors: pd.DataFrame | None = None,
    error_ids: npt.ArrayLike | None = None,
    ignore_mask: npt.ArrayLike | None = None,
) -> DetectionScores:
    """Measure how well flagged pixels find known label errors: pixels, regions, images.

    Parameters
    ----------
    flags : array_like of bool, shape (N, H, W)
        Pixels a detector flags (e.g. `segaudit.find_label_issues`).
    truth : array_like of bool, shape (N, H, W)
        Pixels whose label is wrong (``inject_label_noise(...).truth``).
    image_scores : array_like of float, shape (N,), optional
        Label quality per image, lower = more likely wrong (as
        `segaudit.get_label_quality_scores`), for the image AUPRC.
    errors : pandas.DataFrame, optional
        ``inject_label_noise(...).errors``; needs `error_ids`. Adds per-kind rows to
        `DetectionScores.table`.
    error_ids : array_like of int, shape (N, H, W), optional
        ``inject_label_noise(...).error_ids``: each error is one injected region.
        Without it, injected regions are the 8-connected components of `truth`.
    ignore_mask : array_like of bool, shape (N, H, W), optional
        Pixels left out of every count (e.g. void); an image with errors only there
        counts as clean.

    Returns
    -------
    DetectionScores
        Pixel precision, recall and F1; region recall (a region is found when at
        least half of its pixels are flagged); region precision (share of the
        8-connected flagged regions that touch a corrupted pixel); image AUPRC.

    Examples
    --------
    >>> import numpy as np
    >>> from segaudit.evaluate import score_detection
    >>> truth = np.zeros((2, 4, 4), bool); truth[0, :2, :2] = True
    >>> flags = np.zeros_like(truth); flags[0, 0, :2] = True; flags[1, 3, 3] = True
    >>> s = score_detection(flags, truth, image_scores=[0.2, 0.9])
    >>> s.pixel_precision, s.pixel_recall, s.region_recall, s.region_precision, s.image_auprc
    (0.6666666666666666, 0.5, 1.0, 0.5, 1.0)
    """
    f = _check_mask(flags, "flags", None)
    t = _check_mask(truth, "truth", f.shape)
    if ignore_mask is None:
        valid = np.ones(f.shape, dtype=bool)
    else:
        valid = ~_check_mask(ignore_mask, "ignore_mask", f.shape)
    ids, errs = _check_errors(errors, error_ids, t, valid)
    f, t = f & valid, t & valid
    tp, n_flag, n_truth = int((f & t).sum()), int(f.sum()), int(t.sum())

    if ids is None:
        region_map, _ = _volume_label(t)
    else:
        region_map = np.where(valid, ids, 0)
    hw = f.shape[1] * f.shape[2]
    region, first, pixels = np.unique(region_map, return_index=True, return_counts=True)
    flagged = np.bincount(region_map[f], minlength=region[-1] + 1)[region]
    keep = region > 0
    regions = pd.DataFrame(
        {
            "region": region[keep].astype(np.int64),
            "image": first[keep] // hw,
            "pixels": pixels[keep],
            "flagged": flagged[keep],
        }
    )
    if errs is not None:
        kinds = pd.Series(errs["kind"].to_numpy(), index=errs["error"].to_numpy())
        regions.insert(2, "kind", kinds.reindex(regions["region"].to_numpy()).to_numpy())
    regions["found"] = 2 * regions["flagged"] >= regions["pixels"]

    flag_map, n_flag_regions = _volume_label(f)
    hit = np.unique(flag_map[f & t]).size

    positive = t.any(axis=(1, 2))
    auprc = float("nan")
    if image_scores is not None:
        scores = np.asarray(image_scores)
        ok = scores.shape == (f.shape[0],) and scores.dtype.kind in "iuf"
        if not ok or not np.isfinite(scores).all():
            expected = f"finite numbers of shape ({f.shape[0]},), one per image"
            raise param_error("image_scores", _FUNC, expected, f"{scores.dtype} {scores.shape}")
        auprc = average_precision(positive, -scores.astype(np.float64))
    return DetectionScores(
        pixel_precision=_ratio(tp, n_flag),
        pixel_recall=_ratio(tp, n_truth),
        pixel_f1=_ratio(2 * tp, n_flag + n_truth),
        region_recall=_ratio(regions["found"].sum(), len(regions)),
        region_precision=_ratio(hit, n_flag_regions),
        image_auprc=auprc,
        flagged_pixels=n_flag,
        truth_pixels=n_truth,
        true_positives=tp,
        flagged_regions=int(n_flag_regions),
        flagged_regions_hit=int(hit),
        image_prevalence=float(positive.mean()),
        regions=regions,
    )
