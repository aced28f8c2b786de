"""The array front end of the engine: batches of images read from array-likes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from segaudit._progress import progress
from segaudit._typing import LabelsLike, ProbsLike, SliceableArray
from segaudit._validation import (
    as_array_like,
    check_batch_size,
    check_bool,
    check_choice,
    check_downsample,
    check_ignore_index,
    check_n_jobs,
    check_shapes,
    float_dtype,
)
from segaudit.drivers._models import ModelStack, as_models, is_model_sequence
from segaudit.engine._accumulate import warn_row_sums
from segaudit.engine._block import Options, summarise_block, valid_per_image
from segaudit.engine._detect import FILTER_BY, check_filter_by
from segaudit.engine._finder import IssueFinder
from segaudit.engine._scores import region_fraction
from segaudit.kernels._batch import as_batch, score_batch
from segaudit.kernels._choice import get_kernels, use_threads
from segaudit.kernels._torch import on_device, to_numpy

__all__ = [
    "DEFAULT_BATCH_VALUES",
    "Checked",
    "check_inputs",
    "find_issues",
    "images_per_batch",
    "iter_batches",
    "region_fraction_scores",
    "softmin_scores",
]

DEFAULT_BATCH_VALUES = 1 << 24


@dataclass(frozen=True)
class Checked:
    """Validated arguments shared by the entry points, as :func:`check_inputs` returns them."""

    func: str
    labels: SliceableArray
    pred_probs: SliceableArray
    n: int
    k: int
    h: int
    w: int
    batch_size: int | None
    n_jobs: int | None
    verbose: bool
    from_logits: bool
    ignore_index: int | None
    downsample: int
    label_pooling: str
    filter_by: str = "self_confidence"

    def options(self) -> Options:
        """Return the engine options these arguments describe."""
        return Options(
            self.k,
            self.ignore_index,
            self.from_logits,
            self.downsample,
            self.label_pooling,
            self.filter_by,
        )


def check_inputs(
    labels: LabelsLike,
    pred_probs: ProbsLike,
    func: str,
    *,
    batch_size: int | None = None,
    n_jobs: int | None = None,
    verbose: bool = True,
    downsample: int = 1,
    label_pooling: str = "mode",
    from_logits: bool = False,
    ignore_index: int | None = None,
    filter_by: str = "self_confidence",
) -> Checked:
    """Validate the arguments of the entry point `func`, once, at the boundary.

    Parameters are those of :func:`~segaudit.find_label_issues`; a bad one
    raises ``ValueError`` naming it and `func`. Several models' arrays become
    one :class:`~segaudit.drivers._models.ModelStack` (which applies the
    softmax itself, so the engine then sees probabilities).

    Examples
    --------
    >>> c = check_inputs(np.zeros((2, 4, 6), int), np.ones((2, 3, 4, 6)) / 3, "f", downsample=2)
    >>> c.n, c.k, c.h, c.w, c.downsample
    (2, 3, 4, 6, 2)
    >>> check_inputs(np.zeros((2, 4, 6), int), np.ones((2, 3, 4, 6)), "f", verbose="no")
    Traceback (most recent call last):
    ...
    ValueError: The 'verbose' parameter of f must be True or False. Got 'no' instead.
    """
    filter_by = check_filter_by(filter_by, func)
    from_logits = check_bool(from_logits, "from_logits", func)
    labels = as_array_like(labels, "labels", func)
    if is_model_sequence(pred_probs):
        pred_probs = as_models(pred_probs, func, from_logits=from_logits)
        from_logits = from_logits and not isinstance(pred_probs, ModelStack)
    pred_probs = as_array_like(pred_probs, "pred_probs", func)
    n, k, h, w = check_shapes(labels, pred_probs, func)
    check_batch_size(batch_size, func)
    check_n_jobs(n_jobs, func)
    downsample = check_downsample(downsample, h, w, func)
    if filter_by != FILTER_BY[0] and downsample != 1:
        raise ValueError(
            f"{func}: 'downsample' applies to filter_by='self_confidence' only; got "
            f"downsample={downsample} with filter_by={filter_by!r}."
        )
    return Checked(
        func,
        labels,
        pred_probs,
        n,
        k,
        h,
        w,
        batch_size=batch_size,
        n_jobs=n_jobs,
        verbose=check_bool(verbose, "verbose", func),
        from_logits=from_logits,
        ignore_index=check_ignore_index(ignore_index, func),
        downsample=downsample,
        label_pooling=check_choice(label_pooling, "label_pooling", ("mode", "mean"), func),
        filter_by=filter_by,
    )


def images_per_batch(batch_size: int | None, k: int, h: int, w: int) -> int:
    """Images per batch: `batch_size` counts probability values, as in the reference."""
    values = DEFAULT_BATCH_VALUES if batch_size is None else batch_size
    return max(values // (k * h * w), 1)


def iter_batches(
    c: Checked, desc: str
) -> Iterator[tuple[int, int, SliceableArray, SliceableArray]]:
    """Yield ``(start, stop, probs, labels)`` slices, with a progress bar."""
    step = images_per_batch(c.batch_size, c.k, c.h, c.w)
    with progress(c.n, desc, c.verbose) as bar:
        for start in range(0, c.n, step):
            stop = min(start + step, c.n)
            yield start, stop, c.pred_probs[start:stop], c.labels[start:stop]
            bar.update(stop - start)


def find_issues(
    c: Checked,
    *,
    pixel_scores: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    scores: np.ndarray | None = None,
    softmin: tuple[float, np.ndarray] | None = None,
    stacklevel: int = 2,
) -> tuple[np.ndarray, np.ndarray]:
    """Run the engine over validated arrays.

    Parameters
    ----------
    c : Checked
        Validated arguments.
    pixel_scores : ndarray of float64, optional, shape (N, H, W)
        Also fill in the full-resolution self-confidence here.
    mask : ndarray of bool, optional, shape (N, H, W)
        Where to write the mask (e.g. a memmap); allocated when None.
    scores : ndarray of float, optional, shape (N, H*W)
        Where to keep the self-confidence summary when ``downsample == 1`` (e.g.
        a temporary memmap, so memory does not grow with N); allocated per
        batch when None.
    softmin : (temperature, ndarray of float64 (N,)), optional
        With `pixel_scores`: also write each image's softmin score, batch by
        batch, while the batch's scores are fresh in the cache.
    stacklevel : int, default=2
        For the row-sum warning.

    Returns
    -------
    mask : ndarray of bool, shape (N, H, W)
    valid : ndarray of int64, shape (N,)
        Labelled pixels per image.
    """
    kernels = get_kernels()
    p = c.h * c.w
    if mask is None:
        mask = np.zeros((c.n, c.h, c.w), dtype=np.bool_)
    valid = np.zeros(c.n, dtype=np.int64)
    spans: list[tuple[int, int]] = []
    with use_threads(c.n_jobs) as threads:
        finder = IssueFinder(c.options(), kernels=kernels, nchunks=threads)
        for start, stop, probs, labels in iter_batches(c, "reading pred_probs"):
            spans.append((start, stop))
            keep: np.ndarray | None
            if pixel_scores is not None:
                keep = pixel_scores[start:stop].reshape(-1, p)
            else:
                keep = None if scores is None or c.downsample != 1 else scores[start:stop]
            summary = finder.add(
                probs,
                labels,
                image_offset=start,
                scores_out=keep,
                disagree_out=mask[start:stop].reshape(-1, p),
            )
            valid[start:stop] = valid_per_image(summary, stop - start)
            if softmin is not None and keep is not None:
                kernels.softmin(keep, softmin[0], softmin[1][start:stop])
        deviation = max(finder.acc.max_row_deviation, _input_deviation(c))
        warn_row_sums(deviation, _dtype(c), c.k, stacklevel + 1)
        selection = finder.finish()

        def labels_of(i: int) -> np.ndarray:  # the second pass reads the labels again
            start, stop = spans[i]
            return np.asarray(to_numpy(c.labels[start:stop])).reshape(stop - start, p)

        finder.write_masks(selection, labels_of if c.filter_by != FILTER_BY[0] else None)
    return mask, valid


def region_fraction_scores(
    c: Checked, temperature: float, *, stacklevel: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """Image scores of ``method="region_fraction"`` and pixel scores, in one read.

    `c` must have ``filter_by="confident_regions"``.
    """
    pixel_scores = np.empty((c.n, c.h, c.w), dtype=np.float64)
    softmin = np.empty(c.n, dtype=np.float64)
    mask, valid = find_issues(
        c,
        pixel_scores=pixel_scores,
        softmin=(float(temperature), softmin),
        stacklevel=stacklevel + 1,
    )
    image_scores = region_fraction(
        pixel_scores.reshape(c.n, -1), mask.reshape(c.n, -1), valid, softmin, float(temperature)
    )
    return image_scores, pixel_scores


def softmin_scores(
    c: Checked, temperature: float, *, stacklevel: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """Softmin image scores and pixel scores in one read of `pred_probs`.

    Probabilities on the CPU go through the scores-only kernel; logits and
    tensors on an accelerator through the full summary.
    """
    kernels = get_kernels()
    p = c.h * c.w
    pixel_scores = np.empty((c.n, c.h, c.w), dtype=np.float64)
    image_scores = np.empty(c.n, dtype=np.float64)
    opts = Options(c.k, c.ignore_index, c.from_logits)
    deviation = 0.0
    with use_threads(c.n_jobs):
        for start, stop, probs, labels in iter_batches(c, "scoring images"):
            scores = pixel_scores[start:stop].reshape(-1, p)
            if c.from_logits or on_device(probs):
                block = summarise_block(
                    probs, labels, opts, kernels, image_offset=start, scores_out=scores
                )
                dev = block.full.max_row_deviation
            else:
                pb, lb = as_batch(to_numpy(probs), to_numpy(labels))
                dev = score_batch(
                    pb,
                    lb,
                    kernels=kernels,
                    num_classes=c.k,
                    ignore_index=c.ignore_index,
                    image_offset=start,
                    shape_hw=(c.h, c.w),
                    scores_out=scores,
                )
            deviation = max(deviation, dev)
            kernels.softmin(scores, float(temperature), image_scores[start:stop])
    deviation = max(deviation, _input_deviation(c))
    warn_row_sums(deviation, _dtype(c), c.k, stacklevel + 1)
    return image_scores, pixel_scores


def _input_deviation(c: Checked) -> float:
    """Return the largest row-sum deviation of the models' own arrays (0 for one array)."""
    return c.pred_probs.max_row_deviation if isinstance(c.pred_probs, ModelStack) else 0.0


def _dtype(c: Checked) -> np.dtype:
    if isinstance(c.pred_probs, ModelStack):
        return c.pred_probs.input_dtype
    return np.dtype(np.float64) if c.from_logits else float_dtype(c.pred_probs.dtype)
