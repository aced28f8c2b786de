"""One block of whole images: its summary, and its issue mask once the cutoff is known.

`summarise_block` runs the fused kernel on one block (pooling first when
``downsample > 1``; on the tensor's device for accelerator tensors);
`block_mask` turns a stored block's disagreement into its issue mask. Every
front end (arrays, streaming, folders, dask) uses these two, through
:class:`~segaudit.engine._finder.IssueFinder` or directly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from segaudit._typing import BoolArray, FloatArray, IntArray, SliceableArray
from segaudit.engine._select import Cutoff, KeyBlock, compose, keys_of
from segaudit.kernels._batch import BatchSummary, Scratch, as_batch, summarise_batch
from segaudit.kernels._downsample import pool_labels, pool_probs, softmax
from segaudit.kernels._protocol import Kernels
from segaudit.kernels._torch import is_tensor, on_device, summarise_tensor, to_numpy

__all__ = ["BlockSummary", "Options", "block_mask", "summarise_block", "valid_per_image"]


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
    filter_by : {"self_confidence", "confident_regions"}
        The detector (see :mod:`segaudit.engine._detect`).
    """

    num_classes: int
    ignore_index: int | None = None
    from_logits: bool = False
    downsample: int = 1
    label_pooling: str = "mode"
    filter_by: str = "self_confidence"


@dataclass
class BlockSummary:
    """A block's summary at full resolution and on the ranking grid (the same if f = 1)."""

    full: BatchSummary
    rank: BatchSummary


def summarise_block(
    probs: SliceableArray,
    labels: SliceableArray,
    opts: Options,
    kernels: Kernels,
    *,
    image_offset: int,
    where: str = "",
    scores_out: FloatArray | None = None,
    disagree_out: BoolArray | None = None,
    argmax_out: IntArray | None = None,
    scratch: Scratch | None = None,
) -> BlockSummary:
    """Summarise one block ``probs (n, K, H, W)``, ``labels (n, H, W)`` of whole images.

    Parameters
    ----------
    probs, labels : array_like
        The block: numpy arrays, memmaps or torch tensors (summarised on their
        device when ``downsample == 1``).
    opts : Options
        Classes, void label, logits, pooling.
    kernels : Kernels
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

    With ``opts.filter_by="confident_regions"`` the full-resolution summary
    also holds the agreeing sums (:attr:`BatchSummary.agree`), except on an
    accelerator.

    Returns
    -------
    BlockSummary
        The block at full resolution, and on the ranking grid (the same object
        when ``downsample == 1``).

    Examples
    --------
    Pixel (0, 1) is labelled 1 but the model says 0: it disagrees.

    >>> from segaudit.kernels._choice import get_kernels
    >>> probs = np.array([[[[0.9, 0.8]], [[0.1, 0.2]]]])
    >>> block = summarise_block(probs, np.array([[[0, 1]]]), Options(num_classes=2),
    ...                         get_kernels("numpy"), image_offset=0)
    >>> block.full.disagree, block.full.scores
    (array([[False,  True]]), array([[0.9, 0.2]]))
    """
    h, w = probs.shape[2:]
    f = opts.downsample
    agree = opts.filter_by == "confident_regions"
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
        full = summarise_batch(
            pb,
            lb,
            kernels=kernels,
            num_classes=opts.num_classes,
            ignore_index=opts.ignore_index,
            from_logits=opts.from_logits,
            image_offset=image_offset,
            shape_hw=(h, w),
            where=where,
            scores_out=scores_out,
            disagree_out=disagree_out,
            argmax_out=argmax_out,
            scratch=scratch,
            agree=agree,
        )
        return BlockSummary(full, full)
    p = softmax(np.asarray(probs)) if opts.from_logits else np.asarray(probs)
    if p.dtype == np.float16:
        p = p.astype(np.float32)
    lab = np.asarray(labels)
    pb, lb = as_batch(p, lab)
    full = summarise_batch(
        pb,
        lb,
        kernels=kernels,
        num_classes=opts.num_classes,
        ignore_index=opts.ignore_index,
        from_logits=False,
        image_offset=image_offset,
        shape_hw=(h, w),
        where=where,
        scores_out=scores_out,
        disagree_out=disagree_out,
        argmax_out=argmax_out,
        scratch=scratch,
        agree=agree,
    )
    coarse_lab = pool_labels(lab, f, opts.label_pooling, opts.num_classes, opts.ignore_index)
    valid = None if opts.ignore_index is None else lab != opts.ignore_index
    cpb, clb = as_batch(pool_probs(p, f, valid), coarse_lab)
    rank = summarise_batch(
        cpb,
        clb,
        kernels=kernels,
        num_classes=opts.num_classes,
        ignore_index=opts.ignore_index,
        from_logits=False,
        image_offset=image_offset,
        shape_hw=(h // f, w // f),
        where=where,
        scratch=scratch,
    )
    return BlockSummary(full, rank)


def block_mask(
    scores: FloatArray,
    disagree: BoolArray,
    base: int,
    shape: tuple[int, int, int],
    downsample: int,
    cutoff: Cutoff | None,
    kernels: Kernels,
) -> BoolArray:
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
    kernels : Kernels
        Compiled kernels or their numpy twins.

    Returns
    -------
    ndarray of bool
        `disagree`, now the issue mask.

    Examples
    --------
    With the cutoff at the lower of two disagreeing pixels, only it stays:

    >>> from segaudit.kernels._choice import get_kernels
    >>> from segaudit.engine._select import keys_of
    >>> scores = np.array([[0.2, 0.5, 0.1]])
    >>> cutoff = Cutoff(int(keys_of(scores)[0]), 0)
    >>> block_mask(scores, np.array([[True, True, False]]), 0, (1, 1, 3), 1, cutoff,
    ...            get_kernels("numpy"))
    array([[ True, False, False]])
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


def valid_per_image(batch: BatchSummary, n: int) -> npt.NDArray[np.int64]:
    """Labelled (non-ignored) pixels of each of the batch's n images."""
    valid: npt.NDArray[np.int64] = batch.counts.reshape(n, -1).sum(axis=1)
    return valid
