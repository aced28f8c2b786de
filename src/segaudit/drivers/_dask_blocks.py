"""The tasks of the dask backend: what runs on a worker, one block of whole images at a time.

Each block of ``pred_probs`` is read once, by :func:`summarise_part`, into a
:class:`Part` that the cluster keeps (persists). Every later task reads only
parts: the class sums and row-sum check (:func:`stats_of`), the issue count,
the selection histograms and gathers, and finally the issue mask and scores.
These functions are plain picklable top-level functions with no dask import,
so workers need only numpy, numba and segaudit.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce
from typing import Any

import numpy as np

from segaudit.engine._accumulate import count_issues
from segaudit.engine._block import Options, block_mask, summarise_block, valid_per_image
from segaudit.engine._detect import FILTER_BY, agreeing_sums, candidate_regions
from segaudit.engine._exact import ClassSums
from segaudit.engine._scores import issue_image_scores, region_fraction
from segaudit.engine._select import Cutoff, keys_of
from segaudit.kernels._choice import get_kernels, use_threads
from segaudit.kernels._combine import combine_models

__all__ = [
    "Part",
    "Stats",
    "count_part",
    "gather_part",
    "histogram_part",
    "image_scores_part",
    "issue_scores_part",
    "mask_part",
    "match_count_part",
    "merge_stats",
    "nth_part",
    "pixel_scores_part",
    "region_mask_part",
    "region_scores_part",
    "stats_of",
    "sum_all",
    "summarise_part",
]


@dataclass
class Part:
    """What the cluster keeps of one block of n whole images, starting at image `start`.

    Attributes
    ----------
    start : int
        Index of the block's first image.
    shape : (n, H, W)
        Full-resolution shape of the block.
    base : int
        Flat index of the block's first score on the ranking grid.
    sums : ClassSums
        Exact class sums of the self-confidence on the ranking grid.
    max_row_deviation : float
        Largest ``|sum_k p_k(x) - 1|`` at full resolution.
    error : ValueError or None
        The input error of the block's first bad pixel; nothing else is kept then.
    scores : ndarray, optional
        Self-confidence on the ranking grid, flat (for the selection).
    disagree : ndarray of bool, optional, shape (n, H*W)
        Full-resolution disagreement (the mask, before the selection).
    max_prob, argmax : ndarray, optional
        m(x) and a(x) of the disagreeing pixels of the ranking grid.
    valid : ndarray of int64, optional, shape (n,)
        Labelled pixels per image at full resolution.
    pixel_scores : ndarray, optional, shape (n, H*W)
        Full-resolution self-confidence (the same array as `scores` when f = 1).
    image_scores : ndarray of float64, optional, shape (n,)
        Softmin image scores.
    agree : ClassSums, optional
        Exact class sums of s over agreeing pixels (``filter_by="confident_regions"``).
    labels : ndarray, optional, shape (n, H*W)
        Given labels of every pixel (the same: the region kernel reads them).
    """

    start: int
    shape: tuple[int, int, int]
    base: int
    sums: ClassSums
    max_row_deviation: float = 0.0
    error: ValueError | None = None
    scores: np.ndarray | None = None
    disagree: np.ndarray | None = None
    max_prob: np.ndarray | None = None
    argmax: np.ndarray | None = None
    valid: np.ndarray | None = None
    pixel_scores: np.ndarray | None = None
    image_scores: np.ndarray | None = None
    agree: ClassSums | None = None
    labels: np.ndarray | None = None


def summarise_part(
    probs: np.ndarray | list[np.ndarray],
    labels: np.ndarray,
    opts: Options,
    start: int,
    base: int,
    *,
    n_jobs: int | None,
    keep_pixel_scores: bool,
    temperature: float | None,
    models_from_logits: bool = False,
) -> Part:
    """Read one block ``probs (n, K, H, W)``, ``labels (n, H, W)`` into a :class:`Part`.

    A list of blocks (several models' arrays, logits if `models_from_logits`)
    is first combined by :func:`~segaudit.kernels._combine.combine_models`, as
    the in-memory API combines a batch; `opts` then describes probabilities.

    With a `temperature`, only what the softmin scores need is kept; otherwise
    what the selection needs, plus the full-resolution scores if
    `keep_pixel_scores`; with ``filter_by="confident_regions"`` also the
    agreeing sums and the block's given labels (the mask then needs no
    second read of `labels`). An input error is returned in the
    part, not raised, so that the client can report the first one of the
    dataset.
    """
    n, _, h, w = (probs[0] if isinstance(probs, list) else probs).shape
    kernels = get_kernels()
    part = Part(start, (n, h, w), base, ClassSums(opts.num_classes))
    deviation = 0.0
    with use_threads(n_jobs):
        try:
            if isinstance(probs, list):
                probs, deviation = combine_models(
                    probs, from_logits=models_from_logits, image_offset=start
                )
            block = summarise_block(probs, labels, opts, kernels, image_offset=start)
        except ValueError as err:
            part.error = err
            return part
        part.sums.add(block.rank.sums, block.rank.counts)
        part.max_row_deviation = max(block.full.max_row_deviation, deviation)
        if temperature is not None:
            part.pixel_scores = block.full.scores
            part.image_scores = np.empty(n, dtype=np.float64)
            kernels.softmin(block.full.scores, float(temperature), part.image_scores)
            return part
    part.scores = block.rank.scores
    part.disagree = block.full.disagree
    part.max_prob = block.rank.max_prob
    part.argmax = block.rank.argmax
    part.valid = valid_per_image(block.full, n)
    if keep_pixel_scores:
        part.pixel_scores = block.full.scores
    if opts.filter_by != FILTER_BY[0]:
        full = block.full
        given = np.asarray(labels).reshape(n, -1)
        sums = full.agree
        if sums is None:  # summarised on a device
            with use_threads(n_jobs):
                sums = agreeing_sums(full.scores, full.disagree, given, opts.num_classes, kernels)
        part.agree = ClassSums(opts.num_classes)
        part.agree.add(*sums)
        part.labels = given
    return part


@dataclass
class Stats:
    """The reduced small facts of all parts: class sums, row-sum deviation, first error.

    `key_bits` is the width of the selection keys (0 for softmin parts);
    `disagreeing` counts the labelled pixels of the ranking grid where the
    model's argmax differs from the label (for the set-up check); `agree`
    holds the agreeing sums of ``filter_by="confident_regions"``.
    """

    sums: ClassSums
    max_row_deviation: float
    error: tuple[int, ValueError] | None
    key_bits: int
    disagreeing: int = 0
    agree: ClassSums | None = None

    def merge(self, other: Stats) -> Stats:
        """Combine two partial results; the error of the lowest image wins."""
        errors = [e for e in (self.error, other.error) if e is not None]
        first = min(errors, key=lambda e: e[0]) if errors else None
        deviation = max(self.max_row_deviation, other.max_row_deviation)
        bits = max(self.key_bits, other.key_bits)
        disagreeing = self.disagreeing + other.disagreeing
        agree = self.agree if other.agree is None else other.agree
        if self.agree is not None and other.agree is not None:
            agree = self.agree.merge(other.agree)
        sums = self.sums.merge(other.sums)
        return Stats(sums, deviation, first, bits, disagreeing, agree)


def stats_of(part: Part) -> Stats:
    """Return the small facts of one part."""
    error = None if part.error is None else (part.start, part.error)
    bits = 0 if part.scores is None else part.scores.dtype.itemsize * 8
    disagreeing = 0 if part.max_prob is None else int(part.max_prob.size)
    return Stats(part.sums, part.max_row_deviation, error, bits, disagreeing, part.agree)


def merge_stats(items: list[Stats]) -> Stats:
    """Tree-reduction step for :class:`Stats`."""
    return reduce(Stats.merge, items)


def sum_all(items: list[Any]) -> Any:
    """Tree-reduction step for counts and histograms."""
    return reduce(lambda a, b: a + b, items)


def count_part(part: Part, thresholds: np.ndarray) -> int:
    """Count the part's disagreeing pixels whose predicted class clears its threshold."""
    return count_issues(thresholds, _need(part.max_prob), _need(part.argmax), get_kernels())


def histogram_part(part: Part, prefix: int, shift: int, n_jobs: int | None) -> np.ndarray:
    """Count the next digit of the part's keys: its share of one histogram (65536,)."""
    kernels = get_kernels()
    with use_threads(n_jobs) as threads:
        keys = keys_of(_need(part.scores))
        return np.asarray(kernels.key_histogram(keys, np.uint64(prefix), shift, threads))


def gather_part(part: Part, prefix: int, shift: int, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the part's share of the bucket: (keys, flat indices), in index order."""
    kernels = get_kernels()
    keys = keys_of(_need(part.scores))
    k, i = kernels.gather_bucket(keys, np.uint64(prefix), shift, part.base, limit)
    return np.asarray(k), np.asarray(i)


def match_count_part(part: Part, key: int) -> int:
    """Count the part's keys equal to `key`."""
    keys = keys_of(_need(part.scores))
    _, seen = get_kernels().nth_match(keys, np.uint64(key), keys.shape[0])
    return int(seen)


def nth_part(part: Part, key: int, r: int) -> int:
    """Return the flat index of the part's r-th (0-based) key equal to `key`."""
    pos, _ = get_kernels().nth_match(keys_of(_need(part.scores)), np.uint64(key), r)
    if pos < 0:
        raise AssertionError("tie group shorter than its count")  # pragma: no cover
    return part.base + int(pos)


def mask_part(part: Part, cutoff: Cutoff | None, downsample: int) -> np.ndarray:
    """Return the part's issue mask ``(n, H, W)``; the kept disagreement is not changed."""
    disagree = _need(part.disagree).copy()
    mask = block_mask(
        _need(part.scores), disagree, part.base, part.shape, downsample, cutoff, get_kernels()
    )
    return mask.reshape(part.shape)


def region_mask_part(part: Part, agree_thresholds: np.ndarray, n_jobs: int | None) -> np.ndarray:
    """Return the part's ``confident_regions`` mask ``(n, H, W)`` (the kept data unchanged)."""
    disagree: np.ndarray = _need(part.disagree).copy()
    records = (_need(part.max_prob), _need(part.argmax))
    with use_threads(n_jobs):
        candidate_regions(
            disagree,
            part.shape,
            _need(part.scores),
            records,
            agree_thresholds,
            get_kernels(),
            labels=_need(part.labels),
        )
    return disagree.reshape(part.shape)


def region_scores_part(
    part: Part, agree_thresholds: np.ndarray, temperature: float, n_jobs: int | None
) -> np.ndarray:
    """Return the part's ``"region_fraction"`` image scores (see :func:`region_fraction`)."""
    n = part.shape[0]
    mask = region_mask_part(part, agree_thresholds, n_jobs).reshape(n, -1)
    softmin = np.empty(n, dtype=np.float64)
    pixel_scores = _need(part.pixel_scores).astype(np.float64).reshape(n, -1)
    with use_threads(n_jobs):
        get_kernels().softmin(pixel_scores, float(temperature), softmin)
    return region_fraction(pixel_scores, mask, _need(part.valid), softmin, float(temperature))


def issue_scores_part(part: Part, cutoff: Cutoff | None, downsample: int) -> np.ndarray:
    """Return ``1 - flagged / labelled`` per image (1.0 for an image with no labelled pixel)."""
    flagged = mask_part(part, cutoff, downsample).sum(axis=(1, 2))
    return issue_image_scores(flagged, _need(part.valid))


def image_scores_part(part: Part) -> np.ndarray:
    """Return the part's softmin image scores."""
    return _need(part.image_scores)


def pixel_scores_part(part: Part) -> np.ndarray:
    """Return a float64 copy of the part's full-resolution self-confidence ``(n, H, W)``."""
    return _need(part.pixel_scores).astype(np.float64).reshape(part.shape)


def _need(x: np.ndarray | None) -> np.ndarray:
    if x is None:
        raise AssertionError("this part was summarised without that field")  # pragma: no cover
    return x
