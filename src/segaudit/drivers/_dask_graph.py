"""Graph plumbing of the dask backend: blocks of whole images, tree reductions, selection.

Nothing here reads data on the client: it builds task graphs over the
persisted parts (see :mod:`segaudit.drivers._dask_blocks`) and computes
only small results (sums, counts, 65536-bin histograms, the boundary bucket).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any, TypeGuard, cast

import numpy as np

from segaudit._progress import ProgressBar, progress
from segaudit._typing import DaskArray, SliceableArray
from segaudit.drivers._dask_blocks import (
    gather_part,
    histogram_part,
    match_count_part,
    nth_part,
    sum_all,
)
from segaudit.drivers._models import ModelStack

__all__ = [
    "DaskKeys",
    "import_dask",
    "is_dask_array",
    "persist",
    "tree_reduce",
    "uses_dask",
    "whole_image_blocks",
]

SPLIT_EVERY = 8


def import_dask() -> tuple[ModuleType, ModuleType]:
    """Import ``dask`` and ``dask.array``, or say which extra to install."""
    try:
        import dask
        import dask.array as da
    except ImportError as err:
        raise ImportError(
            "segaudit's dask backend needs dask; install it with: pip install 'segaudit[dask]'"
        ) from err
    return dask, da


def is_dask_array(x: object) -> TypeGuard[DaskArray]:
    """Return True if `x` is a dask array (checked without importing dask)."""
    module = sys.modules.get("dask.array")
    return module is not None and isinstance(x, module.Array)


def uses_dask(labels: object, pred_probs: object) -> bool:
    """Return True if `labels`, `pred_probs` or one model's array of a ``ModelStack`` is dask."""
    models = pred_probs.arrays if isinstance(pred_probs, ModelStack) else [pred_probs]
    return any(is_dask_array(x) for x in (labels, *models))


def whole_image_blocks(
    labels: SliceableArray, models: Sequence[SliceableArray], da: ModuleType
) -> tuple[DaskArray, list[DaskArray]]:
    """Return dask ``(labels, [pred_probs, ...])`` chunked into matching blocks of whole images.

    The first dask array of `models` keeps its chunks along N (empty chunks
    dropped); every model gets those N-chunks and one chunk along K, H and W,
    and labels follow them. With no dask model, the N-chunks are those of
    `labels`. A non-dask input is wrapped lazily (``da.from_array``).
    """
    lead = next((p for p in models if is_dask_array(p)), None)
    if lead is None:  # then labels is the dask array
        n_chunks = cast("DaskArray", labels).chunks[0]
        lead = da.from_array(models[0], chunks=(n_chunks, -1, -1, -1))
    _, k, h, w = lead.shape
    chunks = tuple(c for c in lead.chunks[0] if c)
    if any(c != c for c in chunks):
        raise ValueError(
            "pred_probs must have known chunk sizes along N; call "
            "pred_probs.compute_chunk_sizes() first."
        )
    blocks = (chunks, (k,), (h,), (w,))
    probs = [
        da.rechunk(p, blocks) if is_dask_array(p) else da.from_array(p, chunks=blocks)
        for p in models
    ]
    if is_dask_array(labels):
        return da.rechunk(labels, (chunks, (h,), (w,))), probs
    return da.from_array(labels, chunks=(chunks, (h,), (w,))), probs


def tree_reduce(
    leaves: Sequence[Any], combine: Callable[[list[Any]], Any], delayed: Callable[..., Any]
) -> Any:
    """Combine delayed `leaves` in a tree, `SPLIT_EVERY` at a time; return the root."""
    level = list(leaves)
    while len(level) > 1:
        level = [
            delayed(combine, pure=True)(level[i : i + SPLIT_EVERY])
            for i in range(0, len(level), SPLIT_EVERY)
        ]
    return level[0]


def persist(
    dask: ModuleType, leaves: Sequence[Any], sizes: Sequence[int], verbose: bool
) -> list[Any]:
    """Persist the summary tasks (on the active client, if any), with a progress bar.

    Parameters
    ----------
    dask : module
    leaves : sequence of Delayed
        One summary task per block.
    sizes : sequence of int
        Images per block, for the progress bar.
    verbose : bool
        Show a progress bar of images read.
    """
    if not verbose:
        return list(dask.persist(*leaves))
    from dask.callbacks import Callback

    images = {leaf.key: n for leaf, n in zip(leaves, sizes, strict=True)}
    with progress(sum(sizes), "reading pred_probs", verbose) as bar:
        with Callback(posttask=_Advance(bar, images)):  # type: ignore[no-untyped-call]
            parts = list(dask.persist(*leaves))
        _follow_futures(parts, images, bar)
    return parts


class _Advance:
    """Local-scheduler callback: advance the bar when a summary task finishes."""

    def __init__(self, bar: ProgressBar, images: dict[Any, int]) -> None:
        self.bar = bar
        self.images = images

    def __call__(self, key: Any, *_: Any) -> None:
        self.bar.update(self.images.get(key, 0))


def _follow_futures(parts: list[Any], images: dict[Any, int], bar: ProgressBar) -> None:
    """On dask.distributed, advance the bar as the persisted futures finish."""
    try:
        from distributed import as_completed, futures_of
    except ImportError:  # pragma: no cover - local schedulers only
        return
    futures = futures_of(parts)  # type: ignore[no-untyped-call]
    if not futures:
        return
    done = as_completed(futures, loop=futures[0].client.loop)  # type: ignore[no-untyped-call]
    for future in done:
        bar.update(images.get(future.key, 0))


class DaskKeys:
    """A :class:`~segaudit.engine._select.KeySource` over persisted parts.

    Histograms are tree-reduced on the cluster; a gather brings back only the
    boundary bucket; a tie scan counts matches per part, then scans one part.
    A histogram computed in advance (see `histogram_task`) can be put in
    `known`, keyed by ``(prefix, shift)``, to save a round trip.
    """

    def __init__(self, parts: Sequence[Any], dask: ModuleType, n_jobs: int | None) -> None:
        self.parts = parts
        self.dask = dask
        self.n_jobs = n_jobs
        self.known: dict[tuple[int, int], np.ndarray] = {}

    def histogram_task(self, prefix: int, shift: int) -> Any:
        """Return the delayed, tree-reduced histogram (to compute along with other results)."""
        delayed = self.dask.delayed
        leaves = [
            delayed(histogram_part, pure=True)(p, prefix, shift, self.n_jobs) for p in self.parts
        ]
        return tree_reduce(leaves, sum_all, delayed)

    def histogram(self, prefix: int, shift: int) -> np.ndarray:
        """Count the next digit over every part (or return the one computed in advance)."""
        if (prefix, shift) in self.known:
            return self.known.pop((prefix, shift))
        (total,) = self.dask.compute(self.histogram_task(prefix, shift))
        return np.asarray(total)

    def gather(self, prefix: int, shift: int, limit: int) -> tuple[np.ndarray, np.ndarray]:
        """Collect the bucket from every part, in flat-index order."""
        delayed = self.dask.delayed
        pieces = self.dask.compute(
            *[delayed(gather_part, pure=True)(p, prefix, shift, limit) for p in self.parts]
        )
        keys = np.concatenate([k for k, _ in pieces])
        index = np.concatenate([i for _, i in pieces])
        return keys, index

    def nth(self, key: int, r: int) -> int:
        """Return the flat index of the r-th pixel whose key equals `key`."""
        delayed = self.dask.delayed
        counts = self.dask.compute(
            *[delayed(match_count_part, pure=True)(p, key) for p in self.parts]
        )
        for part, seen in zip(self.parts, counts, strict=True):
            if r < seen:
                (index,) = self.dask.compute(delayed(nth_part, pure=True)(part, key, r))
                return int(index)
            r -= seen
        raise AssertionError("tie group shorter than its histogram count")  # pragma: no cover
