"""Single-read Confident Learning over a stream of blocks.

`IssueFinder` drives the block functions of :mod:`segaudit.engine._block`
over a stream: `add` keeps only the compact summary of each block, `finish`
computes the thresholds, the issue count T and the exact cutoff, and checks
the set-up (:mod:`segaudit.engine._setup`), and `write_masks` turns the
stored disagreement into issue masks. The names of ``_block`` and ``_setup``
that the drivers use are exported here too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from segaudit._typing import BoolArray, FloatArray, IntArray, SliceableArray
from segaudit.engine._accumulate import Accumulator
from segaudit.engine._block import (
    BlockSummary,
    Options,
    block_mask,
    summarise_block,
)
from segaudit.engine._detect import (
    agree_thresholds,
    agreeing_sums,
    region_block_mask,
)
from segaudit.engine._exact import ClassSums
from segaudit.engine._select import BlockKeys, Cutoff, KeyBlock, find_cutoff, keys_of
from segaudit.engine._setup import (
    setup_problems,
    warn_setup,
)
from segaudit.kernels._batch import BatchSummary, Scratch
from segaudit.kernels._protocol import Kernels
from segaudit.kernels._torch import to_numpy

__all__ = ["Entry", "IssueFinder", "Selection", "Staged"]


@dataclass
class Entry:
    """One stored batch: scores on the ranking grid and full-resolution disagreement.

    `records` are ``(max_prob, argmax)`` of its disagreeing pixels on the
    ranking grid, in pixel order (None when there are none).
    """

    base: int
    scores: FloatArray
    disagree: BoolArray
    shape: tuple[int, int, int]
    records: tuple[FloatArray, IntArray] | None = None


@dataclass(frozen=True)
class Selection:
    """The outcome of Confident Learning on the whole stream.

    `setup` holds the messages of :func:`setup_problems` (empty when the
    set-up looks sound). `num_issues` is the reference's estimate T whatever
    the detector; `agree_thresholds` (``t~_k``) is set for
    ``filter_by="confident_regions"``, which needs no cutoff.
    """

    thresholds: npt.NDArray[np.float64]
    num_issues: int
    cutoff: Cutoff | None
    setup: tuple[str, ...] = ()
    agree_thresholds: npt.NDArray[np.float64] | None = None


@dataclass
class Staged:
    """One summarised block not yet added (see :meth:`IssueFinder.stage`)."""

    block: BlockSummary
    records: tuple[FloatArray, IntArray] | None
    shape: tuple[int, int, int]
    agree: tuple[FloatArray, IntArray] | None = None


class IssueFinder:
    """Accumulate blocks of a stream, then find the label issues exactly.

    Parameters
    ----------
    opts : Options
        Classes, void label, logits, pooling.
    kernels : Kernels
        Compiled kernels or their numpy twins.
    nchunks : int, default=1
        Parallel chunks for the selection histograms.
    keep : callable, optional
        Where the records of disagreeing pixels are kept (see `Accumulator`).

    Examples
    --------
    Of two pixels labelled 1, the model is confident that the first is a 0:

    >>> from segaudit.kernels._choice import get_kernels
    >>> probs = np.array([[[[0.9, 0.95, 0.4]], [[0.1, 0.05, 0.6]]]])
    >>> finder = IssueFinder(Options(num_classes=2), kernels=get_kernels("numpy"))
    >>> summary = finder.add(probs, np.array([[[0, 1, 1]]]), image_offset=0)
    >>> selection = finder.finish(warn=False)
    >>> selection.num_issues
    1
    >>> finder.write_masks(selection)
    >>> summary.disagree  # the disagreement, now the issue mask
    array([[False,  True, False]])
    """

    def __init__(
        self,
        opts: Options,
        *,
        kernels: Kernels,
        nchunks: int = 1,
        keep: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        self.opts = opts
        self.kernels = kernels
        self.nchunks = nchunks
        self.acc = Accumulator(opts.num_classes, keep)
        self.agree = ClassSums(opts.num_classes)  # s over agreeing pixels (confident_regions)
        self.entries: list[Entry] = []
        self.pixels = 0
        self.scratch = Scratch()

    def add(
        self,
        probs: SliceableArray,
        labels: SliceableArray,
        *,
        image_offset: int,
        from_logits: bool | None = None,
        where: str = "",
        scores_out: FloatArray | None = None,
        disagree_out: BoolArray | None = None,
        argmax_out: IntArray | None = None,
    ) -> BatchSummary:
        """Summarise one block (see :func:`summarise_block`) and keep its summary.

        `from_logits`, when given, overrides the option for this block only;
        the other keywords are those of :func:`summarise_block`.

        Returns
        -------
        BatchSummary
            The full-resolution summary of the block.
        """
        staged = self.stage(
            probs,
            labels,
            image_offset=image_offset,
            from_logits=from_logits,
            where=where,
            scores_out=scores_out,
            disagree_out=disagree_out,
            argmax_out=argmax_out,
        )
        return self.commit(staged)

    def stage(
        self,
        probs: SliceableArray,
        labels: SliceableArray,
        *,
        image_offset: int,
        from_logits: bool | None = None,
        where: str = "",
        scores_out: FloatArray | None = None,
        disagree_out: BoolArray | None = None,
        argmax_out: IntArray | None = None,
    ) -> Staged:
        """Summarise one block as :meth:`add` does, without adding it yet.

        Nothing of the finder changes until :meth:`commit`; on an error (bad
        input, a full spill disk) the block is simply not added.
        """
        opts = self.opts
        if from_logits is not None and from_logits != opts.from_logits:
            opts = replace(opts, from_logits=from_logits)
        block = summarise_block(
            probs,
            labels,
            opts,
            self.kernels,
            image_offset=image_offset,
            where=where,
            scores_out=scores_out,
            disagree_out=disagree_out,
            argmax_out=argmax_out,
            scratch=self.scratch,
        )
        n, _, h, w = probs.shape
        agree = None
        if opts.filter_by == "confident_regions":
            full = block.full
            agree = full.agree  # from the summary pass; None if summarised on a device
            if agree is None:
                given = np.asarray(to_numpy(labels)).reshape(n, -1)
                agree = agreeing_sums(
                    full.scores, full.disagree, given, opts.num_classes, self.kernels
                )
        return Staged(block, self.acc.keep_records(block.rank), (n, h, w), agree)

    def commit(self, staged: Staged) -> BatchSummary:
        """Add a block from :meth:`stage`, whole (nothing here can fail half-way)."""
        block = staged.block
        deviation = max(
            self.acc.max_row_deviation, block.rank.max_row_deviation, block.full.max_row_deviation
        )
        entry = Entry(
            self.pixels, block.rank.scores, block.full.disagree, staged.shape, staged.records
        )
        self.acc.commit(block.rank, staged.records)
        if staged.agree is not None:
            self.agree.add(*staged.agree)
        self.acc.max_row_deviation = deviation
        self.entries.append(entry)
        self.pixels += block.rank.scores.size
        return block.full

    def finish(self, *, warn: bool = True) -> Selection:
        """Thresholds, issue count and cutoff over everything added.

        With `warn`, a probably wrong set-up (see :func:`setup_problems`) is
        reported as a :class:`SetupWarning` pointing at the user's call.
        """
        thresholds = self.acc.thresholds()
        t = self.acc.num_issues(thresholds, self.kernels)
        labelled = int(self.acc.sums.counts.sum())
        setup = tuple(setup_problems(labelled, self.acc.disagreeing, t))
        if warn:
            warn_setup(setup)
        if self.opts.filter_by == "confident_regions":
            agree = agree_thresholds(self.agree, thresholds)
            return Selection(thresholds, t, None, setup, agree)
        if t == 0:
            return Selection(thresholds, 0, None, setup)
        blocks = [KeyBlock(keys_of(e.scores), e.base) for e in self.entries]
        nbits = blocks[0].keys.dtype.itemsize * 8
        cutoff = find_cutoff(t - 1, nbits, BlockKeys(blocks, self.kernels, self.nchunks))
        return Selection(thresholds, t, cutoff, setup)

    def write_masks(
        self, selection: Selection, labels: Callable[[int], np.ndarray] | None = None
    ) -> None:
        """Turn every stored disagreement into the issue mask, in place.

        `labels` returns the given labels of the i-th entry, as read again
        (only ``filter_by="confident_regions"`` needs them).
        """
        for i, e in enumerate(self.entries):
            given = None if labels is None else labels(i)
            self.mask(e, selection, e.disagree, given)

    def mask(
        self,
        entry: Entry,
        selection: Selection,
        out: BoolArray,
        labels: np.ndarray | None = None,
    ) -> BoolArray:
        """Write one entry's issue mask into `out`, which holds its disagreement.

        `out` is ``entry.disagree`` itself or a copy of it; `labels` (the
        entry's given labels) is needed for ``filter_by="confident_regions"``.
        """
        if selection.agree_thresholds is not None:
            if labels is None:
                raise ValueError("filter_by='confident_regions' needs the given labels")
            return region_block_mask(
                entry.scores,
                out,
                labels,
                entry.records,
                entry.shape,
                selection.agree_thresholds,
                self.kernels,
            )
        f = self.opts.downsample
        return block_mask(
            entry.scores, out, entry.base, entry.shape, f, selection.cutoff, self.kernels
        )
