"""Label-quality scores per pixel and per image (mirrors ``cleanlab.segmentation.rank``)."""

from __future__ import annotations

import numbers
import warnings
from typing import overload

import numpy as np
import numpy.typing as npt

from segaudit._typing import BoolArray, DaskArray, FloatArray, IntArray, LabelsLike, ProbsLike
from segaudit._validation import check_no_nan, param_error
from segaudit.drivers._arrays import (
    check_inputs,
    find_issues,
    region_fraction_scores,
    softmin_scores,
)
from segaudit.drivers._dask_graph import uses_dask
from segaudit.engine._scores import METHODS as METHODS
from segaudit.engine._scores import RECOMMENDED_METHOD as RECOMMENDED_METHOD
from segaudit.engine._scores import (
    check_method,
    check_temperature,
    flagged_per_image,
    issue_image_scores,
)

__all__ = ["get_label_quality_scores", "issues_from_scores"]


@overload
def get_label_quality_scores(
    labels: DaskArray,
    pred_probs: ProbsLike,
    *,
    method: str = ...,
    batch_size: int | None = ...,
    n_jobs: int | None = ...,
    verbose: bool = ...,
    downsample: int = ...,
    temperature: float = ...,
    from_logits: bool = ...,
    ignore_index: int | None = ...,
    label_pooling: str = ...,
) -> tuple[FloatArray, DaskArray]: ...


@overload
def get_label_quality_scores(
    labels: LabelsLike,
    pred_probs: DaskArray,
    *,
    method: str = ...,
    batch_size: int | None = ...,
    n_jobs: int | None = ...,
    verbose: bool = ...,
    downsample: int = ...,
    temperature: float = ...,
    from_logits: bool = ...,
    ignore_index: int | None = ...,
    label_pooling: str = ...,
) -> tuple[FloatArray, DaskArray]: ...


@overload
def get_label_quality_scores(
    labels: LabelsLike,
    pred_probs: ProbsLike,
    *,
    method: str = ...,
    batch_size: int | None = ...,
    n_jobs: int | None = ...,
    verbose: bool = ...,
    downsample: int = ...,
    temperature: float = ...,
    from_logits: bool = ...,
    ignore_index: int | None = ...,
    label_pooling: str = ...,
) -> tuple[FloatArray, FloatArray]: ...


def get_label_quality_scores(
    labels: LabelsLike,
    pred_probs: ProbsLike,
    *,
    method: str = "softmin",
    batch_size: int | None = None,
    n_jobs: int | None = None,
    verbose: bool = True,
    downsample: int = 1,
    temperature: float = 0.1,
    from_logits: bool = False,
    ignore_index: int | None = None,
    label_pooling: str = "mode",
) -> tuple[FloatArray, FloatArray | DaskArray]:
    """Score every image and pixel by how likely its label is correct (1 good, 0 bad).

    Parameters
    ----------
    labels : array_like of int, shape (N, H, W)
        Given class of each pixel, in ``0..K-1`` (or `ignore_index`).
    pred_probs : array_like of float, shape (N, K, H, W), or a list of them
        Per-pixel class probabilities, or logits with ``from_logits=True``;
        float16/32/64 in either byte order (longdouble is rounded to float64
        one batch at a time). A list of same-shape arrays (several models or
        folds) is combined per pixel by the per-class median, renormalised, as
        in :func:`~segaudit.find_label_issues`; pixel scores are then the
        combined self-confidence.
    method : {"softmin", "num_pixel_issues", "region_fraction"}, default="softmin"
        ``"softmin"``: ``sum_i s_i w_i`` with ``w = softmax((1 - s) / temperature)``
        over the image's pixels, which weighs the worst pixels most.
        ``"num_pixel_issues"``: 1 minus the fraction of the image's pixels that
        :func:`~segaudit.find_label_issues` flags.
        ``"region_fraction"`` (recommended, :data:`RECOMMENDED_METHOD`):
        ``0.5 ((1 - flagged / labelled) (1 - 1e-3) + 1e-3 softmin) + 0.5 e``,
        flagged being the pixels of ``filter_by="confident_regions"`` and
        ``e`` the softmin with every unflagged pixel's s counted as 1: images
        are ranked by how much of them is flagged and how sure the model is
        that the worst flagged pixels are mislabelled; images without a flag
        by softmin. Prefer it to softmin when the model is reliable, or makes
        unsure mistakes of its own; softmin is the reference's score.
    batch_size : int, optional
        Probability values per batch; never changes the result.
    n_jobs : int, optional
        Threads; None or -1 uses all cores.
    verbose : bool, default=True
        Show a progress bar.
    downsample : int, default=1
        Only for ``"num_pixel_issues"``: passed to ``find_label_issues``.
    temperature : float, default=0.1
        Softmin temperature, > 0 (also for both softmin terms of ``"region_fraction"``).
    from_logits : bool, default=False
        `pred_probs` holds raw scores; softmax is applied batch by batch.
    ignore_index : int, optional
        Label of void pixels: their pixel score is NaN and they are left out of
        the image score. An image with no labelled pixel scores 1.0.
    label_pooling : {"mode", "mean"}, default="mode"
        Only for ``"num_pixel_issues"`` with ``downsample > 1``.

    Returns
    -------
    image_scores : ndarray of float64, shape (N,)
    pixel_scores : ndarray of float64, shape (N, H, W)
        Self-confidence ``p_{label}(x)`` of each pixel. With dask inputs, a
        lazy ``dask.array.Array``.

    Examples
    --------
    >>> import numpy as np
    >>> from segaudit import get_label_quality_scores
    >>> labels = np.array([[[0, 1]]])
    >>> probs = np.array([[[[0.9, 0.8]], [[0.1, 0.2]]]])
    >>> image, pixel = get_label_quality_scores(labels, probs, verbose=False)
    >>> pixel
    array([[[0.9, 0.2]]])
    >>> bool(image[0] < 0.25)     # dominated by the worst pixel
    True
    """
    func = "get_label_quality_scores"
    check_method(method, func)
    check_temperature(temperature, func)
    if method != "num_pixel_issues" and downsample != 1:
        warnings.warn(
            f"downsample={downsample!r} only applies to method='num_pixel_issues'; "
            f"{method} scores use every pixel.",
            UserWarning,
            stacklevel=2,
        )
        downsample = 1
    c = check_inputs(
        labels,
        pred_probs,
        func,
        batch_size=batch_size,
        n_jobs=n_jobs,
        verbose=verbose,
        downsample=downsample,
        label_pooling=label_pooling,
        from_logits=from_logits,
        ignore_index=ignore_index,
        filter_by="confident_regions" if method == "region_fraction" else "self_confidence",
    )
    if uses_dask(c.labels, c.pred_probs):
        from segaudit.drivers._dask import quality_scores_dask

        return quality_scores_dask(
            c.labels,
            c.pred_probs,
            c.options(),
            method=method,
            temperature=float(temperature),
            verbose=c.verbose,
            n_jobs=c.n_jobs,
            stacklevel=2,
        )
    if method == "softmin":
        return softmin_scores(c, float(temperature), stacklevel=2)
    if method == "region_fraction":
        return region_fraction_scores(c, float(temperature), stacklevel=2)
    pixel_scores = np.empty((c.n, c.h, c.w), dtype=np.float64)
    mask, valid = find_issues(c, pixel_scores=pixel_scores, stacklevel=2)
    return issue_image_scores(flagged_per_image(mask), valid), pixel_scores


@overload
def issues_from_scores(
    image_scores: npt.ArrayLike, pixel_scores: None = ..., threshold: float = ...
) -> IntArray: ...


@overload
def issues_from_scores(
    image_scores: npt.ArrayLike, pixel_scores: npt.ArrayLike, threshold: float = ...
) -> BoolArray: ...


def issues_from_scores(
    image_scores: npt.ArrayLike,
    pixel_scores: npt.ArrayLike | None = None,
    threshold: float = 0.1,
) -> BoolArray | IntArray:
    """Turn scores into issues: pixels below `threshold`, or the worst images.

    Parameters
    ----------
    image_scores : array_like of float, shape (N,)
        From :func:`get_label_quality_scores`. NaN is an error (an image score
        is never NaN; a NaN would silently drop its image).
    pixel_scores : array_like of float, shape (N, H, W), optional
        If given, return the pixels whose score is below `threshold`. NaN marks
        a void pixel (as :func:`get_label_quality_scores` returns them with
        `ignore_index`): it is never an issue.
    threshold : float, default=0.1
        In ``[0, 1]``.

    Returns
    -------
    ndarray
        With `pixel_scores`: bool mask (N, H, W), ``pixel_scores < threshold``.
        Without: indices of the images scoring below `threshold`, lowest score
        first (ties by index). Unlike the reference, the first image at or
        above the threshold is not included.

    Examples
    --------
    >>> from segaudit import issues_from_scores
    >>> issues_from_scores([0.5, 0.05, 0.01, 0.1], threshold=0.1)
    array([2, 1])
    """
    func = "issues_from_scores"
    if image_scores is None:
        raise param_error("image_scores", func, "an array of shape (N,)", "None")
    ok = isinstance(threshold, numbers.Real) and not isinstance(threshold, bool)
    if not ok or not 0 <= threshold <= 1:
        raise param_error("threshold", func, "a number in [0, 1]", repr(threshold))
    scores = np.asarray(image_scores, dtype=np.float64)
    if scores.ndim != 1:
        raise param_error("image_scores", func, "an array of shape (N,)", f"shape {scores.shape}")
    check_no_nan(scores, "image_scores", func)
    if pixel_scores is not None:
        pixels = np.asarray(pixel_scores)
        if pixels.ndim != 3 or pixels.shape[0] != scores.shape[0]:
            raise param_error(
                "pixel_scores",
                func,
                f"an array of shape ({scores.shape[0]}, H, W)",
                f"shape {pixels.shape}",
            )
        return pixels < threshold
    order = np.argsort(scores, kind="stable")
    return order[scores[order] < threshold]
