"""Single-read Confident Learning over a stream of batches.

`IssueFinder.add` runs the fused kernel on each batch as it arrives and keeps
only the compact summary; `finish` computes the thresholds, the issue count T
and the exact cutoff; `write_masks` turns the stored summary into issue masks.
Every front end (arrays, streaming, folders) drives this one class.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from segaudit.engine._accumulate import Accumulator
from segaudit.engine._batch import BatchSummary, as_batch, summarise_batch
from segaudit.engine._downsample import pool_labels, pool_probs, softmax
from segaudit.engine._select import BlockKeys, Cutoff, KeyBlock, compose, find_cutoff, keys_of

__all__ = ["Entry", "IssueFinder", "Selection", "valid_per_image"]


@dataclass
class Entry:
    """One stored batch: scores on the ranking grid and full-resolution disagreement."""

    base: int
    scores: np.ndarray
    disagree: np.ndarray
    shape: tuple[int, int, int]


@dataclass(frozen=True)
class Selection:
    """The outcome of Confident Learning on the whole stream."""

    thresholds: np.ndarray
    num_issues: int
    cutoff: Cutoff | None


def valid_per_image(batch: BatchSummary, n: int) -> np.ndarray:
    """Labelled (non-ignored) pixels of each of the batch's n images."""
    return batch.counts.reshape(n, -1).sum(axis=1)


class IssueFinder:
    """Accumulate batches, then find the label issues exactly.

    Parameters
    ----------
    num_classes : int
        K.
    kernels : module
        Compiled kernels or their numpy twins.
    ignore_index : int or None
        Void label.
    from_logits : bool
        Batches hold logits.
    downsample : int
        Pooling factor f of the ranking grid.
    label_pooling : {"mode", "mean"}
        How labels are pooled when f > 1.
    nchunks : int
        Parallel chunks for the selection histograms.
    """

    def __init__(
        self,
        num_classes: int,
        *,
        kernels: ModuleType,
        ignore_index: int | None = None,
        from_logits: bool = False,
        downsample: int = 1,
        label_pooling: str = "mode",
        nchunks: int = 1,
    ) -> None:
        self.num_classes = num_classes
        self.kernels = kernels
        self.ignore_index = ignore_index
        self.from_logits = from_logits
        self.downsample = downsample
        self.label_pooling = label_pooling
        self.nchunks = nchunks
        self.acc = Accumulator(num_classes)
        self.entries: list[Entry] = []
        self.pixels = 0

    def add(
        self,
        probs: Any,
        labels: Any,
        *,
        image_offset: int,
        where: str = "",
        scores_out: np.ndarray | None = None,
        disagree_out: np.ndarray | None = None,
        argmax_out: np.ndarray | None = None,
    ) -> BatchSummary:
        """Summarise one batch ``probs (n, K, H, W)``, ``labels (n, H, W)``.

        Parameters
        ----------
        probs, labels : ndarray
            The batch.
        image_offset : int
            Index of its first image, for error messages.
        where : str, default=""
            Extra context for error messages.
        scores_out : ndarray, optional, shape (n, H*W)
            Where to keep the full-resolution self-confidence.
        disagree_out : ndarray of bool, optional, shape (n, H*W)
            Where to keep the disagreement mask, which `write_masks` turns into
            the issue mask in place.
        argmax_out : ndarray of int, optional, shape (n, H*W)
            Where to keep the full-resolution argmax a(x).

        Returns
        -------
        BatchSummary
            The full-resolution summary of the batch.
        """
        n, _, h, w = probs.shape
        common = {
            "kernels": self.kernels,
            "num_classes": self.num_classes,
            "ignore_index": self.ignore_index,
            "image_offset": image_offset,
            "shape_hw": (h, w),
            "where": where,
            "scores_out": scores_out,
            "disagree_out": disagree_out,
            "argmax_out": argmax_out,
        }
        f = self.downsample
        if f == 1:
            pb, lb = as_batch(probs, labels)
            full = summarise_batch(pb, lb, from_logits=self.from_logits, **common)
            self.acc.add(full)
            self._store(full.scores, full.disagree, (n, h, w))
            return full
        p = softmax(np.asarray(probs)) if self.from_logits else np.asarray(probs)
        if p.dtype == np.float16:
            p = p.astype(np.float32)
        lab = np.asarray(labels)
        pb, lb = as_batch(p, lab)
        full = summarise_batch(pb, lb, from_logits=False, **common)
        coarse_lab = pool_labels(lab, f, self.label_pooling, self.num_classes, self.ignore_index)
        cpb, clb = as_batch(pool_probs(p, f), coarse_lab)
        common.update(shape_hw=(h // f, w // f), scores_out=None, disagree_out=None)
        common.update(argmax_out=None)
        coarse = summarise_batch(cpb, clb, from_logits=False, **common)
        self.acc.add(coarse)
        self.acc.max_row_deviation = max(self.acc.max_row_deviation, full.max_row_deviation)
        self._store(coarse.scores, full.disagree, (n, h, w))
        return full

    def _store(self, scores: np.ndarray, disagree: np.ndarray, shape: tuple[int, int, int]) -> None:
        self.entries.append(Entry(self.pixels, scores, disagree, shape))
        self.pixels += scores.size

    def finish(self) -> Selection:
        """Thresholds, issue count and cutoff over everything added."""
        thresholds = self.acc.thresholds()
        t = self.acc.num_issues(thresholds)
        if t == 0:
            return Selection(thresholds, 0, None)
        blocks = [KeyBlock(keys_of(e.scores), e.base) for e in self.entries]
        nbits = blocks[0].keys.dtype.itemsize * 8
        cutoff = find_cutoff(t - 1, nbits, BlockKeys(blocks, self.kernels, self.nchunks))
        return Selection(thresholds, t, cutoff)

    def write_mask(self, entry: Entry, selection: Selection) -> np.ndarray:
        """Turn one entry's disagreement into its issue mask, in place; return it."""
        f = self.downsample
        block = KeyBlock(keys_of(entry.scores), entry.base)
        flat = entry.disagree.reshape(-1)
        if f == 1:
            compose([block], [flat], selection.cutoff, self.kernels, and_with_mask=True)
            return entry.disagree
        n, h, w = entry.shape
        candidates = np.empty(entry.scores.size, dtype=np.bool_)
        compose([block], [candidates], selection.cutoff, self.kernels, and_with_mask=False)
        grid = candidates.reshape(n, h // f, w // f).repeat(f, axis=1).repeat(f, axis=2)
        full = entry.disagree.reshape(n, h, w)
        np.logical_and(full, grid, out=full)
        return entry.disagree

    def write_masks(self, selection: Selection) -> None:
        """Turn every stored disagreement into the issue mask, in place."""
        for entry in self.entries:
            self.write_mask(entry, selection)
