"""The dask backend: Confident Learning over dask arrays, as a dask graph.

`pred_probs` is read once: one summary task per block of whole images, whose
results stay on the cluster (``dask.persist``, on the active
``dask.distributed`` client if there is one). The confident thresholds and
the issue count are tree reductions over those summaries; the exact
selection is a tree-reduced histogram per radix level plus a gather of the
boundary bucket only. The issue mask and the pixel scores come back as lazy
dask arrays built from the kept summaries, so computing them never reads
`pred_probs` again. Results are identical to the in-memory API for any
chunking and any scheduler.

``filter_by="confident_regions"`` (and ``method="region_fraction"``) keeps,
per block, the agreeing sums and the given labels of the disagreeing pixels
too: the agreeing thresholds are one more tree reduction, and each block's
mask is decided by its own task (regions never cross images), with no
second read of `labels` or `pred_probs`.

Several models (a :class:`~segaudit.drivers._models.ModelStack` of dask or
numpy arrays) are chunked alike, and each summary task reads its block of
every model and combines them, as the in-memory API combines a batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

import numpy as np
import numpy.typing as npt

from segaudit._typing import DaskArray, Delayed, FloatArray, SliceableArray, StoredMask, StrPath
from segaudit.drivers._dask_blocks import (
    Stats,
    count_part,
    image_scores_part,
    issue_scores_part,
    mask_part,
    merge_stats,
    pixel_scores_part,
    region_mask_part,
    region_scores_part,
    stats_of,
    sum_all,
    summarise_part,
)
from segaudit.drivers._dask_graph import (
    DaskKeys,
    import_dask,
    persist,
    tree_reduce,
    whole_image_blocks,
)
from segaudit.drivers._dask_output import write_mask
from segaudit.drivers._models import ModelStack
from segaudit.engine._accumulate import warn_row_sums
from segaudit.engine._block import Options
from segaudit.engine._detect import FILTER_BY, agree_thresholds
from segaudit.engine._finder import Selection
from segaudit.engine._scores import check_method
from segaudit.engine._select import find_cutoff
from segaudit.engine._setup import setup_problems, warn_setup
from segaudit.io._outputs import check_output

__all__ = ["find_label_issues_dask", "quality_scores_dask"]


def _threads(n_jobs: int | None) -> int:
    """Kernel threads per task: dask already runs one task per core, so None means 1."""
    return 1 if n_jobs is None else n_jobs


@dataclass
class _Summaries:
    """The persisted parts (one per block) and what the client knows of the layout."""

    parts: list[Delayed]
    sizes: tuple[int, ...]
    shape: tuple[int, int, int]
    dtype: np.dtype
    """The input dtype whose rounding the row-sum warning allows for."""


def _summarise(
    labels: SliceableArray,
    pred_probs: SliceableArray | ModelStack,
    opts: Options,
    *,
    verbose: bool,
    n_jobs: int | None,
    keep_pixel_scores: bool = False,
    temperature: float | None = None,
) -> _Summaries:
    """Read `pred_probs` once, block by block, and keep the summaries on the cluster.

    A :class:`~segaudit.drivers._models.ModelStack` (several models) is read
    model by model into the same blocks of whole images; each summary task
    combines its block's models before summarising them.
    """
    dask, da = import_dask()
    threads = _threads(n_jobs)
    stack = pred_probs if isinstance(pred_probs, ModelStack) else None
    labels, models = whole_image_blocks(
        labels, stack.arrays if stack is not None else [pred_probs], da
    )
    _, _, h, w = models[0].shape
    sizes = tuple(int(c) for c in models[0].chunks[0])
    per_image = (h // opts.downsample) * (w // opts.downsample)
    task = dask.delayed(summarise_part, pure=True)
    leaves: list[Delayed] = []
    start = 0
    model_blocks = [_delayed_blocks(p) for p in models]
    blocks = zip(zip(*model_blocks, strict=True), _delayed_blocks(labels), sizes, strict=True)
    for pb, lb, size in blocks:
        leaves.append(
            task(
                list(pb) if stack is not None else pb[0],
                lb,
                opts,
                start,
                start * per_image,
                n_jobs=threads,
                keep_pixel_scores=keep_pixel_scores,
                temperature=temperature,
                models_from_logits=stack is not None and stack.from_logits,
            )
        )
        start += size
    parts = persist(dask, leaves, sizes, verbose)
    if stack is not None:
        dtype = stack.input_dtype
    else:
        dtype = np.dtype(np.float64) if opts.from_logits else np.dtype(models[0].dtype)
    return _Summaries(parts, sizes, (start, h, w), dtype)


def _delayed_blocks(x: DaskArray) -> list[Delayed]:
    """Return the blocks of `x` (one chunk along every axis but N) as Delayed objects, in order."""
    return list(x.to_delayed().reshape(-1))  # type: ignore[no-untyped-call]


def _check(s: _Summaries, dask: ModuleType, num_classes: int, stacklevel: int) -> Stats:
    """Reduce the small facts; raise the dataset's first input error; warn on row sums."""
    leaves = [dask.delayed(stats_of, pure=True)(p) for p in s.parts]
    stats: Stats
    (stats,) = dask.compute(tree_reduce(leaves, merge_stats, dask.delayed))
    if stats.error is not None:
        raise ValueError(*stats.error[1].args)
    warn_row_sums(stats.max_row_deviation, s.dtype, num_classes, stacklevel + 1)
    return stats


def _select(
    s: _Summaries, opts: Options, dask: ModuleType, n_jobs: int | None, stacklevel: int
) -> Selection:
    """Thresholds, issue count T and exact cutoff, all as reductions over the parts.

    With ``filter_by="confident_regions"``: T (for the set-up check) and the
    agreeing thresholds instead of a cutoff.
    """
    stats = _check(s, dask, opts.num_classes, stacklevel + 1)
    thresholds = stats.sums.thresholds()
    leaves = [dask.delayed(count_part, pure=True)(p, thresholds) for p in s.parts]
    if opts.filter_by != FILTER_BY[0]:
        (t,) = dask.compute(tree_reduce(leaves, sum_all, dask.delayed))
        setup = tuple(setup_problems(int(stats.sums.counts.sum()), stats.disagreeing, int(t)))
        warn_setup(setup)
        if stats.agree is None:
            raise AssertionError("parts summarised without agreeing sums")  # pragma: no cover
        agree = agree_thresholds(stats.agree, thresholds)
        return Selection(thresholds, int(t), None, setup, agree)
    keys = DaskKeys(s.parts, dask, _threads(n_jobs))
    top = (0, stats.key_bits)  # find_cutoff's first histogram: computed with T, in one trip
    t, keys.known[top] = dask.compute(
        tree_reduce(leaves, sum_all, dask.delayed), keys.histogram_task(*top)
    )
    setup = tuple(setup_problems(int(stats.sums.counts.sum()), stats.disagreeing, int(t)))
    warn_setup(setup)
    if t == 0:
        return Selection(thresholds, 0, None, setup)
    cutoff = find_cutoff(int(t) - 1, stats.key_bits, keys)
    return Selection(thresholds, int(t), cutoff, setup)


def _lazy(
    s: _Summaries,
    func: Callable[..., np.ndarray],
    args: tuple[object, ...],
    dtype: npt.DTypeLike,
    da: ModuleType,
    dask: ModuleType,
) -> DaskArray:
    """Assemble ``func(part, *args)`` of every part into one lazy ``(N, H, W)`` array."""
    _, h, w = s.shape
    blocks = [
        da.from_delayed(dask.delayed(func, pure=True)(p, *args), shape=(n, h, w), dtype=dtype)
        for p, n in zip(s.parts, s.sizes, strict=True)
    ]
    lazy: DaskArray = da.concatenate(blocks, axis=0)
    return lazy


def find_label_issues_dask(
    labels: SliceableArray,
    pred_probs: SliceableArray | ModelStack,
    opts: Options,
    *,
    verbose: bool = True,
    n_jobs: int | None = None,
    out: StrPath | None = None,
    func: str = "find_label_issues",
    stacklevel: int = 2,
) -> DaskArray | StoredMask:
    """Find the label issues of dask (or dask-and-numpy) inputs.

    Parameters
    ----------
    labels : dask or numpy array of int, shape (N, H, W)
    pred_probs : dask or numpy array of float, shape (N, K, H, W), or a ModelStack
        Any chunking; blocks of whole images follow its chunks along N (those
        of the first dask model of a ModelStack).
    opts : Options
        Classes, void label, logits, pooling.
    verbose : bool, default=True
        Progress bar while `pred_probs` is read.
    n_jobs : int, optional
        Threads of the compiled kernels inside each task; None means 1 (dask
        already runs one task per core), -1 all cores. Never changes results.
    out : str or PathLike, optional
        Write the mask to this ``.npy`` file or ``.zarr`` folder instead and
        return it opened read-only. Written atomically (a temporary name beside
        it, renamed on success); a ``.zarr`` folder is written by the workers,
        so it must be on a file system they share.
    func : str, default="find_label_issues"
        The entry point, named in error messages.
    stacklevel : int, default=2
        For the row-sum warning.

    Returns
    -------
    dask.array.Array of bool, shape (N, H, W)
        Lazy; computing it runs only the cheap final per-block tasks. With
        `out`: the written ``np.memmap`` or ``zarr.Array``, read-only.
    """
    dask, da = import_dask()
    if out is not None:
        check_output(out, func)
    s = _summarise(labels, pred_probs, opts, verbose=verbose, n_jobs=n_jobs)
    selection = _select(s, opts, dask, n_jobs, stacklevel + 1)
    if selection.agree_thresholds is not None:
        args = (selection.agree_thresholds, _threads(n_jobs))
        mask = _lazy(s, region_mask_part, args, np.bool_, da, dask)
    else:
        mask = _lazy(s, mask_part, (selection.cutoff, opts.downsample), np.bool_, da, dask)
    return mask if out is None else write_mask(mask, out, dask, func=func)


def quality_scores_dask(
    labels: SliceableArray,
    pred_probs: SliceableArray | ModelStack,
    opts: Options,
    *,
    method: str = "softmin",
    temperature: float = 0.1,
    verbose: bool = True,
    n_jobs: int | None = None,
    stacklevel: int = 2,
) -> tuple[FloatArray, DaskArray]:
    """Image and pixel scores of dask inputs; see ``segaudit.get_label_quality_scores``.

    Returns
    -------
    image_scores : ndarray of float64, shape (N,)
        Computed (N numbers; computing them surfaces input errors and warnings).
    pixel_scores : dask.array.Array of float64, shape (N, H, W)
        Lazy, built from the kept summaries.
    """
    check_method(method, "get_label_quality_scores")
    dask, da = import_dask()
    if method == "softmin":
        s = _summarise(
            labels, pred_probs, opts, verbose=verbose, n_jobs=n_jobs, temperature=float(temperature)
        )
        _check(s, dask, opts.num_classes, stacklevel + 1)
        tasks = [dask.delayed(image_scores_part, pure=True)(p) for p in s.parts]
    elif method == "region_fraction":
        s = _summarise(
            labels, pred_probs, opts, verbose=verbose, n_jobs=n_jobs, keep_pixel_scores=True
        )
        agree = _select(s, opts, dask, n_jobs, stacklevel + 1).agree_thresholds
        task = dask.delayed(region_scores_part, pure=True)
        tasks = [task(p, agree, float(temperature), _threads(n_jobs)) for p in s.parts]
    else:
        s = _summarise(
            labels, pred_probs, opts, verbose=verbose, n_jobs=n_jobs, keep_pixel_scores=True
        )
        cutoff = _select(s, opts, dask, n_jobs, stacklevel + 1).cutoff
        task = dask.delayed(issue_scores_part, pure=True)
        tasks = [task(p, cutoff, opts.downsample) for p in s.parts]
    image_scores = np.concatenate(dask.compute(*tasks)).astype(np.float64, copy=False)
    return image_scores, _lazy(s, pixel_scores_part, (), np.float64, da, dask)
