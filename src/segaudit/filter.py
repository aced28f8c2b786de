"""Pixel-level label issues (mirrors ``cleanlab.segmentation.filter``)."""

from __future__ import annotations

from pathlib import Path
from tempfile import TemporaryDirectory
from typing import overload

from segaudit._typing import BoolArray, DaskArray, LabelsLike, ProbsLike, StoredMask, StrPath
from segaudit._validation import float_dtype
from segaudit.drivers._arrays import check_inputs, find_issues
from segaudit.drivers._dask_graph import uses_dask
from segaudit.engine._detect import FILTER_BY as FILTER_BY
from segaudit.engine._detect import RECOMMENDED_FILTER as RECOMMENDED_FILTER
from segaudit.io._outputs import mask_output
from segaudit.io._space import reserved_memmap
from segaudit.kernels._batch import score_dtype

__all__ = ["find_label_issues"]


@overload
def find_label_issues(
    labels: DaskArray,
    pred_probs: ProbsLike,
    *,
    batch_size: int | None = ...,
    n_jobs: int | None = ...,
    verbose: bool = ...,
    downsample: int = ...,
    label_pooling: str = ...,
    from_logits: bool = ...,
    ignore_index: int | None = ...,
    filter_by: str = ...,
    out: None = ...,
) -> DaskArray: ...


@overload
def find_label_issues(
    labels: LabelsLike,
    pred_probs: DaskArray,
    *,
    batch_size: int | None = ...,
    n_jobs: int | None = ...,
    verbose: bool = ...,
    downsample: int = ...,
    label_pooling: str = ...,
    from_logits: bool = ...,
    ignore_index: int | None = ...,
    filter_by: str = ...,
    out: None = ...,
) -> DaskArray: ...


@overload
def find_label_issues(
    labels: LabelsLike,
    pred_probs: ProbsLike,
    *,
    batch_size: int | None = ...,
    n_jobs: int | None = ...,
    verbose: bool = ...,
    downsample: int = ...,
    label_pooling: str = ...,
    from_logits: bool = ...,
    ignore_index: int | None = ...,
    filter_by: str = ...,
    out: None = ...,
) -> BoolArray: ...


@overload
def find_label_issues(
    labels: LabelsLike,
    pred_probs: ProbsLike,
    *,
    batch_size: int | None = ...,
    n_jobs: int | None = ...,
    verbose: bool = ...,
    downsample: int = ...,
    label_pooling: str = ...,
    from_logits: bool = ...,
    ignore_index: int | None = ...,
    filter_by: str = ...,
    out: StrPath,
) -> StoredMask: ...


def find_label_issues(
    labels: LabelsLike,
    pred_probs: ProbsLike,
    *,
    batch_size: int | None = None,
    n_jobs: int | None = None,
    verbose: bool = True,
    downsample: int = 1,
    label_pooling: str = "mode",
    from_logits: bool = False,
    ignore_index: int | None = None,
    filter_by: str = "self_confidence",
    out: StrPath | None = None,
) -> BoolArray | DaskArray | StoredMask:
    """Find the mislabeled pixels of a segmentation dataset with Confident Learning.

    `pred_probs` is read once, in batches; only a compact per-pixel summary is
    kept. A pixel is flagged when the model's argmax disagrees with its label
    and its self-confidence is among the T lowest of the dataset, T being the
    number of disagreeing pixels whose predicted-class probability reaches that
    class's confident threshold (its mean self-confidence). That is the
    reference's method (``filter_by="self_confidence"``); segaudit's
    ``"confident_regions"`` flags whole regions instead (see `filter_by`).

    Parameters
    ----------
    labels : array_like of int, shape (N, H, W)
        Given class of each pixel, in ``0..K-1`` (or `ignore_index`). Any integer
        type (or floats holding integers), in either byte order.
    pred_probs : array_like of float, shape (N, K, H, W), or a list of them
        Per-pixel class probabilities (float16/32/64, in either byte order;
        longdouble is rounded to float64 one batch at a time), or logits with
        ``from_logits=True``. numpy, memmap, zarr or any array sliceable along N.
        A list (or tuple) of same-shape arrays, one per model or
        cross-validation fold, is combined per pixel as the per-class *median*
        of the M probability vectors, renormalised to sum to 1 (logits: each
        model's softmax first), batch by batch, each array read once. The
        median ignores one dissenting model (a mean would pull the confidence
        on real errors below the threshold). One array in a list gives exactly
        the single-array result.
    batch_size : int, optional
        Probability values per batch (images per batch = ``batch_size // (K*H*W)``,
        at least 1). Never changes the result. Default: about 16 million values.
    n_jobs : int, optional
        Threads for the compiled kernel; None or -1 uses all cores. Never
        changes the result.
    verbose : bool, default=True
        Show a progress bar. Must be a bool (``"no"`` is an error, not True).
    downsample : int, default=1
        Rank on a grid pooled over ``f x f`` blocks (f must divide H and W); each
        flagged block flags its pixels that disagree with the model at full
        resolution.
    label_pooling : {"mode", "mean"}, default="mode"
        How labels are pooled when ``downsample > 1``: the block's majority class,
        or the reference's rounded mean of class ids.
    from_logits : bool, default=False
        `pred_probs` holds raw scores; a stable softmax is applied batch by batch.
    ignore_index : int, optional
        Label of void pixels: never flagged, never counted. Must fit in int64.
    filter_by : {"self_confidence", "confident_regions"}, default="self_confidence"
        The detector. ``"self_confidence"``: the reference's pixel ranking
        above, bit for bit (use it for parity with cleanlab). ``"confident_regions"``
        (recommended, :data:`RECOMMENDED_FILTER`): thresholds ``t~_k`` are the
        mean self-confidence over pixels labelled k *and* predicted k; the
        disagreeing pixels are cut into 8-connected regions of one given label
        per image, and each region is flagged whole or not at all: when at
        least 25% of its pixels have ``m >= t~_a`` (the predicted class is
        confident) and its mean self-confidence is at most 0.25 ``t~_y``, when
        its mean self-confidence is at most 0.1 ``t~_y`` (the label is
        implausible), or when its shape and place say that an outline was
        drawn a few pixels off or an object was left out of the labels (the
        README's "Choosing a method" describes every rule).
        It finds whole mislabelled objects rather than their least confident
        pixels, does not take `downsample`, and runs on dask arrays and lists
        of them too.
    out : path, optional
        Write the mask to this ``.npy`` file or ``.zarr`` folder instead of
        memory (for masks larger than RAM) and return it opened read-only
        (a ``np.memmap`` or a ``zarr.Array``). Written atomically: after an
        error nothing appears at `out`.

    Returns
    -------
    ndarray of bool, shape (N, H, W)
        True where the given label is likely wrong. With dask inputs (the
        labels, `pred_probs` or one model's array), a lazy
        ``dask.array.Array`` (the summaries stay on the cluster; see the README).

    Raises
    ------
    ValueError
        On mismatched shapes, K < 2, labels outside ``0..K-1``, NaN, infinite or
        negative probabilities, or bad options (e.g. ``from_logits="no"``); the
        message names the offender, and the image, row and column of a bad value.
        Also for an empty list of models, and for models of different shapes.

    Warns
    -----
    UserWarning
        When probabilities do not sum to 1 (they may be logits).

    Examples
    --------
    >>> import numpy as np
    >>> from segaudit import find_label_issues
    >>> labels = np.zeros((1, 2, 3), dtype=int)
    >>> labels[0, 0, 0] = 1                      # one pixel labelled 1 ...
    >>> probs = np.zeros((1, 2, 2, 3))
    >>> probs[0, 0], probs[0, 1] = 0.9, 0.1      # ... where the model sees 0
    >>> find_label_issues(labels, probs, verbose=False).astype(int)
    array([[[1, 0, 0],
            [0, 0, 0]]])

    A mislabelled 2x2 square: the reference ranks single pixels, while
    ``"confident_regions"`` flags the region whole:

    >>> labels = np.zeros((1, 4, 4), dtype=int); labels[0, :2, :2] = 1
    >>> probs = np.zeros((1, 2, 4, 4)); probs[0, 0], probs[0, 1] = 0.9, 0.1
    >>> probs[0, :, 0, 0] = 0.6, 0.4                   # unsure at one pixel
    >>> find_label_issues(labels, probs, verbose=False).astype(int)
    array([[[0, 1, 0, 0],
            [1, 1, 0, 0],
            [0, 0, 0, 0],
            [0, 0, 0, 0]]])
    >>> find_label_issues(labels, probs, verbose=False, filter_by="confident_regions").astype(int)
    array([[[1, 1, 0, 0],
            [1, 1, 0, 0],
            [0, 0, 0, 0],
            [0, 0, 0, 0]]])
    """
    c = check_inputs(
        labels,
        pred_probs,
        "find_label_issues",
        batch_size=batch_size,
        n_jobs=n_jobs,
        verbose=verbose,
        downsample=downsample,
        label_pooling=label_pooling,
        from_logits=from_logits,
        ignore_index=ignore_index,
        filter_by=filter_by,
    )
    if uses_dask(c.labels, c.pred_probs):
        from segaudit.drivers._dask import find_label_issues_dask

        return find_label_issues_dask(
            c.labels,
            c.pred_probs,
            c.options(),
            verbose=c.verbose,
            n_jobs=c.n_jobs,
            out=out,
            func=c.func,
            stacklevel=2,
        )
    if out is None:
        return find_issues(c, stacklevel=2)[0]
    with (
        mask_output(out, (c.n, c.h, c.w), func=c.func) as target,
        TemporaryDirectory(dir=Path(out).parent, prefix=".segaudit-") as tmp,
    ):
        # the score summary goes to disk too, so memory does not grow with N
        dtype = score_dtype(float_dtype(c.pred_probs.dtype), c.from_logits)
        scores = reserved_memmap(
            Path(tmp) / "scores.npy", dtype=dtype, shape=(c.n, c.h * c.w), what="the score summary"
        )
        find_issues(c, mask=target.array, scores=scores, stacklevel=2)
        del scores
    return target.result
