"""The batches of a :class:`~segaudit.LabelAudit`: checked, summarised, kept whole or not at all.

:func:`check_batch` validates one batch against the audit's options;
:func:`summarise_batch` summarises it into new arrays kept by the audit's
:class:`~segaudit.drivers._store.SummaryStore` without changing the audit, so
that ``LabelAudit.update`` can roll a failed batch back (the store's
``mark``/``rollback``) or commit it in steps that cannot fail. The
:class:`Part` is what the audit keeps of the batch besides the engine's own
entry; :func:`confusions` and :func:`class_counts` read the parts back.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np

from segaudit._typing import LabelsLike, ProbsLike, SliceableArray
from segaudit._validation import as_array_like, check_shapes, float_dtype
from segaudit.drivers._store import SummaryStore
from segaudit.engine._block import BlockSummary, Options, valid_per_image
from segaudit.engine._finder import IssueFinder, Staged
from segaudit.kernels._batch import argmax_dtype
from segaudit.kernels._choice import get_kernels, use_threads
from segaudit.kernels._torch import to_numpy

__all__ = [
    "Part",
    "Tally",
    "check_batch",
    "class_counts",
    "confusions",
    "label_dtype",
    "loosest_dtype",
    "summarise_batch",
]


@dataclass
class Part:
    """What is kept of one batch of n images besides the engine's own entry.

    Attributes
    ----------
    start : int
        Index of the batch's first image among all images of the audit.
    shape : (n, H, W)
        The batch's shape.
    labels : ndarray of int, shape (n, H*W)
        The given labels, in :func:`label_dtype`.
    argmax : ndarray of int, shape (n, H*W)
        The model's argmax (``-1`` on void pixels), in ``argmax_dtype(K)``.
    scores : ndarray of float, shape (n, H*W)
        Full-resolution self-confidence (NaN on void pixels).
    valid : ndarray of int64, shape (n,)
        Labelled pixels per image.
    """

    start: int
    shape: tuple[int, int, int]
    labels: np.ndarray
    argmax: np.ndarray
    scores: np.ndarray
    valid: np.ndarray


def check_batch(
    labels: LabelsLike, pred_probs: ProbsLike, opts: Options, func: str
) -> tuple[SliceableArray, SliceableArray, tuple[int, int, int]]:
    """Check one batch against the audit's options; return it as ``(n, H, W)``, ``(n, K, H, W)``.

    A single image ``(H, W)``, ``(K, H, W)`` gets a leading axis of 1.

    Examples
    --------
    >>> opts = Options(2, None, False, 2, "mode")
    >>> _, _, shape = check_batch(np.zeros((4, 6), int), np.ones((2, 4, 6)) / 2, opts, "f")
    >>> shape
    (1, 4, 6)
    >>> check_batch(np.zeros((1, 4, 5), int), np.ones((1, 2, 4, 5)) / 2, opts, "f")
    Traceback (most recent call last):
    ...
    ValueError: f: 'downsample' must divide both the height and the width of the images; got H=4, W=5 and downsample=2.
    """  # noqa: E501
    given = as_array_like(labels, "labels", func)
    probs = as_array_like(pred_probs, "pred_probs", func)
    if len(given.shape) == 2 and len(probs.shape) == 3:
        given, probs = given[None], probs[None]
    n, k, h, w = check_shapes(given, probs, func)
    if k != opts.num_classes:
        raise ValueError(
            f"{func}: expected pred_probs with K={opts.num_classes} classes on "
            f"axis 1 (num_classes); got shape {tuple(probs.shape)}."
        )
    f = opts.downsample
    if h % f or w % f:
        raise ValueError(
            f"{func}: 'downsample' must divide both the height and the width of the "
            f"images; got H={h}, W={w} and downsample={f}."
        )
    return given, probs, (n, h, w)


def summarise_batch(
    labels: SliceableArray,
    pred_probs: SliceableArray,
    *,
    finder: IssueFinder,
    store: SummaryStore,
    from_logits: bool | None,
    start: int,
    shape: tuple[int, int, int],
    n_jobs: int | None,
) -> tuple[Part, Staged]:
    """Summarise one checked batch and keep its arrays in `store`; `finder` is not changed.

    The kernel writes into new arrays in memory; those the budget cannot hold
    are then spilled (:meth:`SummaryStore.spill`), and the returned part and
    staged block hold the kept arrays. Each array is counted against the
    budget in a fixed order: scores, disagreement, argmax (before the kernel),
    the records of disagreeing pixels (in ``finder.stage``), the given labels,
    and with ``downsample > 1`` the pooled scores of the ranking grid.

    The result is added by ``finder.commit(staged)`` and keeping the part; on
    an error the caller rolls `store` back.
    """
    n, h, w = shape
    p = h * w
    opts = finder.opts
    scores = np.empty((n, p), np.float64)
    disagree = np.empty((n, p), np.bool_)
    argmax = np.empty((n, p), argmax_dtype(opts.num_classes))
    fits = [store.take(a.nbytes) for a in (scores, disagree, argmax)]
    with use_threads(n_jobs):
        staged = finder.stage(
            pred_probs,
            labels,
            from_logits=from_logits,
            image_offset=start,
            scores_out=scores,
            disagree_out=disagree,
            argmax_out=argmax,
        )
    given = np.empty((n, p), label_dtype(opts))
    fits.append(store.take(given.nbytes))
    given[...] = to_numpy(labels).reshape(n, p)  # a copy: never the caller's array
    scores, disagree, argmax, given = (
        a if fit else store.spill(a)
        for a, fit in zip((scores, disagree, argmax, given), fits, strict=True)
    )
    # the summary holds the out arrays themselves: swap in the kept ones
    block = staged.block
    full = replace(block.full, scores=scores, disagree=disagree)
    # the ranking grid is `full` itself when f = 1; with f > 1 its pooled scores are
    # kept (and counted against the budget) as the rest
    pooled = block.rank
    rank = full if pooled is block.full else replace(pooled, scores=store.keep(pooled.scores))
    valid = valid_per_image(full, n)
    return Part(start, shape, given, argmax, scores, valid), replace(
        staged, block=BlockSummary(full, rank)
    )


def label_dtype(opts: Options) -> np.dtype:
    """Compact dtype for the given labels, void included.

    Examples
    --------
    >>> label_dtype(Options(19, 255)), label_dtype(Options(19, -(2**40)))
    (dtype('int16'), dtype('int64'))
    """
    ignore = opts.ignore_index if opts.ignore_index is not None else 0
    if opts.num_classes <= 32767 and -32768 <= ignore <= 32767:
        return np.dtype(np.int16)
    return np.dtype(np.int64)


def loosest_dtype(loosest: np.dtype, probs: SliceableArray, from_logits: bool) -> np.dtype:
    """Return the probability dtype with the widest rounding so far, after one more batch.

    Logits are converted to probabilities in float64, so they never loosen it.

    Examples
    --------
    >>> loosest_dtype(np.dtype(np.float64), np.ones(2, np.float32), False)
    dtype('float32')
    >>> loosest_dtype(np.dtype(np.float32), np.ones(2, np.float16), True)
    dtype('float32')
    """
    if from_logits:
        return loosest
    dtype = float_dtype(probs.dtype)
    return dtype if np.finfo(dtype).eps > np.finfo(loosest).eps else loosest


class Tally:
    """Flagged pixels per (given, predicted) class and labelled / flagged pixels per class.

    Added image by image or batch by batch; the totals do not depend on how.

    Examples
    --------
    >>> tally = Tally(2, None)
    >>> tally.add(np.array([0, 1, 1]), np.array([0, 0, 1]), np.array([False, True, False]))
    >>> tally.confusions.tolist(), tally.pixels.tolist(), tally.flagged.tolist()
    ([[0, 0], [1, 0]], [1, 2], [0, 1])
    """

    def __init__(self, num_classes: int, ignore_index: int | None) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        k = num_classes
        self._pairs = np.zeros(k * k, dtype=np.int64)
        self.pixels = np.zeros(k, dtype=np.int64)
        self.flagged = np.zeros(k, dtype=np.int64)

    @property
    def confusions(self) -> np.ndarray:
        """Flagged pixels per (given, predicted) class, ``(K, K)`` int64."""
        return self._pairs.reshape(self.num_classes, self.num_classes)

    def add(self, labels: np.ndarray, argmax: np.ndarray, mask: np.ndarray) -> None:
        """Count one image or batch: given labels, argmax and issue mask of the same size."""
        k = self.num_classes
        flat = mask.reshape(-1)
        given = labels.reshape(-1)
        flagged = given[flat].astype(np.int64)
        self._pairs += np.bincount(flagged * k + argmax.reshape(-1)[flat], minlength=k * k)
        lab = given.astype(np.int64)
        keep = (lab >= 0) & (lab < k)
        if self.ignore_index is not None:
            keep &= lab != self.ignore_index
        self.pixels += np.bincount(lab[keep], minlength=k)
        self.flagged += np.bincount(flagged, minlength=k)

    def add_image(self, labels: np.ndarray, argmax: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Count one image of an audit, as :meth:`add`; return its labelled pixels per pair.

        The image is as ``LabelAudit.iter_images`` yields it: `argmax` is
        ``-1`` exactly on void pixels, and `mask` is never set there. The
        returned ``(K, K)`` int64 table counts every non-void pixel by (given,
        predicted) class (``report.count_pairs``); one pass over the image
        gives it and this tally's counts.

        Examples
        --------
        >>> tally = Tally(2, 9)
        >>> labels, argmax = np.array([0, 1, 1, 9]), np.array([0, 0, 1, -1])
        >>> tally.add_image(labels, argmax, np.array([False, True, False, False])).tolist()
        [[1, 0], [1, 1]]
        >>> tally.confusions.tolist(), tally.pixels.tolist(), tally.flagged.tolist()
        ([[0, 0], [1, 0]], [1, 2], [0, 1])
        """
        k = self.num_classes
        table = np.zeros((k, k), dtype=np.int64)
        flagged = np.zeros(k * k, dtype=np.int64)
        get_kernels().pair_counts(
            labels.reshape(-1), argmax.reshape(-1), mask.reshape(-1), k, table.reshape(-1), flagged
        )
        self._pairs += flagged
        self.pixels += table.sum(axis=1)
        self.flagged += flagged.reshape(k, k).sum(axis=1)
        return table


def confusions(masks: Iterable[tuple[Part, np.ndarray]], num_classes: int) -> np.ndarray:
    """Count flagged pixels per (given, predicted) class: ``(K, K)`` int64."""
    tally = Tally(num_classes, None)
    for part, mask in masks:
        tally.add(part.labels, part.argmax, mask)
    return tally.confusions


def class_counts(
    masks: Iterable[tuple[Part, np.ndarray]], num_classes: int, ignore_index: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Labelled pixels and flagged pixels per given class, each ``(K,)`` int64."""
    tally = Tally(num_classes, ignore_index)
    for part, mask in masks:
        tally.add(part.labels, part.argmax, mask)
    return tally.pixels, tally.flagged
