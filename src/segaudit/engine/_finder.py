"""Single-read Confident Learning over a stream of batches.

`summarise_block` runs the fused kernel on one block of whole images (pooling
first when ``downsample > 1``); `block_mask` turns a stored block into its issue
mask once the cutoff is known. `IssueFinder` drives both over a stream: `add`
keeps only the compact summary, `finish` computes the thresholds, the issue
count T and the exact cutoff. Every front end (arrays, streaming, folders,
dask) uses these same pieces.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from types import ModuleType
from typing import Any

import numpy as np

from segaudit.engine._accumulate import Accumulator
from segaudit.engine._select import BlockKeys, Cutoff, KeyBlock, compose, find_cutoff, keys_of
from segaudit.kernels._batch import BatchSummary, Scratch, as_batch, summarise_batch
from segaudit.kernels._downsample import pool_labels, pool_probs, softmax
from segaudit.kernels._torch import is_tensor, on_device, summarise_tensor, to_numpy

__all__ = [
    "MAX_ISSUE_FRACTION",
    "MIN_AGREEMENT",
    "BlockSummary",
    "Entry",
    "IssueFinder",
    "Options",
    "Selection",
    "SetupWarning",
    "Staged",
    "block_mask",
    "setup_problems",
    "summarise_block",
    "valid_per_image",
    "warn_setup",
]

MIN_AGREEMENT = 0.5
"""Below this fraction of labelled pixels where the model's argmax equals the label, warn."""
MAX_ISSUE_FRACTION = 0.3
"""Above this fraction of labelled pixels estimated to be label issues, warn."""

_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_CAUSES = (
    "Likely causes: class ids shifted between the masks and the model (e.g. ADE20K masks "
    "use 0 = 'other' and 1..150 for the classes: apply a label map, or reduce-zero-label, "
    "to make them 0..149 with 0 as ignore_index); a wrong label map or class order; logits "
    "passed as probabilities (use from_logits=True); or a model not trained on these "
    "classes. The flagged pixels are not meaningful until this is fixed."
)


class SetupWarning(UserWarning):
    """The labels and the model disagree so much that the set-up is probably wrong.

    Raised as a warning by ``find_label_issues`` and :class:`~segaudit.LabelAudit`
    when the model's argmax agrees with under half of the labelled pixels, or
    when over 30% of them are estimated to be label issues.
    """

    __module__ = "segaudit"  # where users find it, e.g. for warning filters


def setup_problems(labelled: int, disagreeing: int, num_issues: int) -> list[str]:
    """Return messages describing a probably wrong set-up (empty if it looks sound).

    Parameters
    ----------
    labelled : int
        Labelled (non-void) pixels of the ranking grid.
    disagreeing : int
        Those of them where the model's argmax differs from the label.
    num_issues : int
        T, the estimated number of label issues (an upper bound on the flagged pixels).

    Returns
    -------
    list of str
        One message per failed check: agreement below :data:`MIN_AGREEMENT`,
        issues above :data:`MAX_ISSUE_FRACTION` of the labelled pixels.
    """
    if labelled <= 0:
        return []
    messages = []
    agreement = 1.0 - disagreeing / labelled
    if agreement < MIN_AGREEMENT:
        messages.append(
            f"The model's predicted class agrees with the label on only {agreement:.1%} of "
            f"the {labelled} labelled pixels (under {MIN_AGREEMENT:.0%}). {_CAUSES}"
        )
    fraction = num_issues / labelled
    if fraction > MAX_ISSUE_FRACTION:
        messages.append(
            f"{fraction:.1%} of the {labelled} labelled pixels ({num_issues}) are estimated "
            f"to be label issues (over {MAX_ISSUE_FRACTION:.0%}). {_CAUSES}"
        )
    return messages


def warn_setup(messages: list[str] | tuple[str, ...]) -> None:
    """Emit each message as a :class:`SetupWarning` pointing at the user's call.

    The warning is attributed to the first frame outside the segaudit package,
    whichever public function (or generator) led here.
    """
    if not messages:
        return
    frame: Any = sys._getframe(0)
    level = 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame = frame.f_back
        level += 1
    for message in messages:
        warnings.warn(message, SetupWarning, stacklevel=level)


@dataclass(frozen=True)
class Options:
    """What Confident Learning needs to know about the data.

    Attributes
    ----------
    num_classes : int
        K.
    ignore_index : int or None
        Void label.
    from_logits : bool
        Batches hold logits.
    downsample : int
        Pooling factor f of the ranking grid.
    label_pooling : {"mode", "mean"}
        How labels are pooled when f > 1.
    """

    num_classes: int
    ignore_index: int | None = None
    from_logits: bool = False
    downsample: int = 1
    label_pooling: str = "mode"


@dataclass
class BlockSummary:
    """A block's summary at full resolution and on the ranking grid (the same if f = 1)."""

    full: BatchSummary
    rank: BatchSummary


def summarise_block(
    probs: Any,
    labels: Any,
    opts: Options,
    kernels: ModuleType,
    *,
    image_offset: int,
    where: str = "",
    scores_out: np.ndarray | None = None,
    disagree_out: np.ndarray | None = None,
    argmax_out: np.ndarray | None = None,
    scratch: Scratch | None = None,
) -> BlockSummary:
    """Summarise one block ``probs (n, K, H, W)``, ``labels (n, H, W)`` of whole images.

    Parameters
    ----------
    probs, labels : array_like
        The block.
    opts : Options
        Classes, void label, logits, pooling.
    kernels : module
        Compiled kernels or their numpy twins.
    image_offset : int
        Index of its first image, for error messages.
    where : str, default=""
        Extra context for error messages.
    scores_out : ndarray, optional, shape (n, H*W)
        Where to keep the full-resolution self-confidence.
    disagree_out : ndarray of bool, optional, shape (n, H*W)
        Where to keep the full-resolution disagreement, which `block_mask`
        turns into the issue mask in place.
    argmax_out : ndarray of int, optional, shape (n, H*W)
        Where to keep the full-resolution argmax a(x).
    scratch : Scratch, optional
        Buffers to reuse between blocks.
    """
    h, w = probs.shape[2:]
    common = {
        "kernels": kernels,
        "num_classes": opts.num_classes,
        "ignore_index": opts.ignore_index,
        "image_offset": image_offset,
        "shape_hw": (h, w),
        "where": where,
        "scores_out": scores_out,
        "disagree_out": disagree_out,
        "argmax_out": argmax_out,
        "scratch": scratch,
    }
    f = opts.downsample
    if is_tensor(probs) or is_tensor(labels):
        if f == 1 and on_device(probs):  # summarised on the accelerator; CPU tensors use numba
            full, _ = summarise_tensor(
                probs,
                labels,
                num_classes=opts.num_classes,
                ignore_index=opts.ignore_index,
                from_logits=opts.from_logits,
                image_offset=image_offset,
                shape_hw=(h, w),
                where=where,
                scores_out=scores_out,
                disagree_out=disagree_out,
                argmax_out=argmax_out,
                keep_argmax=argmax_out is not None,
            )
            return BlockSummary(full, full)
        probs, labels = to_numpy(probs), to_numpy(labels)  # zero-copy for CPU tensors
    if f == 1:
        pb, lb = as_batch(probs, labels)
        full = summarise_batch(pb, lb, from_logits=opts.from_logits, **common)
        return BlockSummary(full, full)
    p = softmax(np.asarray(probs)) if opts.from_logits else np.asarray(probs)
    if p.dtype == np.float16:
        p = p.astype(np.float32)
    lab = np.asarray(labels)
    pb, lb = as_batch(p, lab)
    full = summarise_batch(pb, lb, from_logits=False, **common)
    coarse_lab = pool_labels(lab, f, opts.label_pooling, opts.num_classes, opts.ignore_index)
    valid = None if opts.ignore_index is None else lab != opts.ignore_index
    cpb, clb = as_batch(pool_probs(p, f, valid), coarse_lab)
    common.update(shape_hw=(h // f, w // f), scores_out=None, disagree_out=None)
    common.update(argmax_out=None)
    return BlockSummary(full, summarise_batch(cpb, clb, from_logits=False, **common))


def block_mask(
    scores: np.ndarray,
    disagree: np.ndarray,
    base: int,
    shape: tuple[int, int, int],
    downsample: int,
    cutoff: Cutoff | None,
    kernels: ModuleType,
) -> np.ndarray:
    """Turn a block's disagreement into its issue mask, in place.

    Parameters
    ----------
    scores : ndarray
        The block's scores on the ranking grid.
    disagree : ndarray of bool, C-contiguous, n*H*W elements
        Full-resolution disagreement; becomes the mask.
    base : int
        Flat index of the block's first score on the ranking grid.
    shape : (n, H, W)
        Full-resolution shape of the block.
    downsample : int
        f.
    cutoff : Cutoff or None
        From :func:`~segaudit.engine._select.find_cutoff`; None flags nothing.
    kernels : module
        Compiled kernels or their numpy twins.
    """
    block = KeyBlock(keys_of(scores), base)
    flat = disagree.reshape(-1)
    if downsample == 1:
        compose([block], [flat], cutoff, kernels, and_with_mask=True)
        return disagree
    n, h, w = shape
    f = downsample
    candidates = np.empty(scores.size, dtype=np.bool_)
    compose([block], [candidates], cutoff, kernels, and_with_mask=False)
    grid = candidates.reshape(n, h // f, w // f).repeat(f, axis=1).repeat(f, axis=2)
    full = disagree.reshape(n, h, w)
    np.logical_and(full, grid, out=full)
    return disagree


@dataclass
class Entry:
    """One stored batch: scores on the ranking grid and full-resolution disagreement."""

    base: int
    scores: np.ndarray
    disagree: np.ndarray
    shape: tuple[int, int, int]


@dataclass(frozen=True)
class Selection:
    """The outcome of Confident Learning on the whole stream.

    `setup` holds the messages of :func:`setup_problems` (empty when the
    set-up looks sound).
    """

    thresholds: np.ndarray
    num_issues: int
    cutoff: Cutoff | None
    setup: tuple[str, ...] = ()


@dataclass
class Staged:
    """One summarised block not yet added (see :meth:`IssueFinder.stage`)."""

    block: BlockSummary
    records: tuple[np.ndarray, np.ndarray] | None
    shape: tuple[int, int, int]


def valid_per_image(batch: BatchSummary, n: int) -> np.ndarray:
    """Labelled (non-ignored) pixels of each of the batch's n images."""
    return batch.counts.reshape(n, -1).sum(axis=1)


class IssueFinder:
    """Accumulate blocks of a stream, then find the label issues exactly.

    Parameters
    ----------
    opts : Options
        Classes, void label, logits, pooling.
    kernels : module
        Compiled kernels or their numpy twins.
    nchunks : int, default=1
        Parallel chunks for the selection histograms.
    keep : callable, optional
        Where the records of disagreeing pixels are kept (see `Accumulator`).
    """

    def __init__(
        self,
        opts: Options,
        *,
        kernels: ModuleType,
        nchunks: int = 1,
        keep: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        self.opts = opts
        self.kernels = kernels
        self.nchunks = nchunks
        self.acc = Accumulator(opts.num_classes, keep)
        self.entries: list[Entry] = []
        self.pixels = 0
        self.scratch = Scratch()

    def add(
        self, probs: Any, labels: Any, *, from_logits: bool | None = None, **kwargs: Any
    ) -> BatchSummary:
        """Summarise one block (see :func:`summarise_block`) and keep its summary.

        `from_logits`, when given, overrides the option for this block only.

        Returns
        -------
        BatchSummary
            The full-resolution summary of the block.
        """
        return self.commit(self.stage(probs, labels, from_logits=from_logits, **kwargs))

    def stage(
        self, probs: Any, labels: Any, *, from_logits: bool | None = None, **kwargs: Any
    ) -> Staged:
        """Summarise one block as :meth:`add` does, without adding it yet.

        Nothing of the finder changes until :meth:`commit`; on an error (bad
        input, a full spill disk) the block is simply not added.
        """
        opts = self.opts
        if from_logits is not None and from_logits != opts.from_logits:
            opts = replace(opts, from_logits=from_logits)
        kwargs.setdefault("scratch", self.scratch)
        block = summarise_block(probs, labels, opts, self.kernels, **kwargs)
        n, _, h, w = probs.shape
        return Staged(block, self.acc.keep_records(block.rank), (n, h, w))

    def commit(self, staged: Staged) -> BatchSummary:
        """Add a block from :meth:`stage`, whole (nothing here can fail half-way)."""
        block = staged.block
        deviation = max(
            self.acc.max_row_deviation, block.rank.max_row_deviation, block.full.max_row_deviation
        )
        entry = Entry(self.pixels, block.rank.scores, block.full.disagree, staged.shape)
        self.acc.commit(block.rank, staged.records)
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
        if t == 0:
            return Selection(thresholds, 0, None, setup)
        blocks = [KeyBlock(keys_of(e.scores), e.base) for e in self.entries]
        nbits = blocks[0].keys.dtype.itemsize * 8
        cutoff = find_cutoff(t - 1, nbits, BlockKeys(blocks, self.kernels, self.nchunks))
        return Selection(thresholds, t, cutoff, setup)

    def write_mask(self, entry: Entry, selection: Selection) -> np.ndarray:
        """Turn one entry's disagreement into its issue mask, in place; return it."""
        return block_mask(
            entry.scores,
            entry.disagree,
            entry.base,
            entry.shape,
            self.opts.downsample,
            selection.cutoff,
            self.kernels,
        )

    def write_masks(self, selection: Selection) -> None:
        """Turn every stored disagreement into the issue mask, in place."""
        for entry in self.entries:
            self.write_mask(entry, selection)
