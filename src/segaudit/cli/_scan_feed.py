"""The scan's reading side: files read ahead in a thread, small images fed in batches.

:func:`feed_audit` reads every item of a :class:`~segaudit.io.FolderDataset`
into a :class:`~segaudit.LabelAudit`. A background thread
(:func:`~segaudit.io._prefetch.prefetch`; two for small images) reads and
decodes the next items while the engine summarises the current ones. Consecutive small images of one
size are stacked and given to ``LabelAudit.update`` together, up to
`BATCH_PIXELS` pixels, so that per-call costs do not dominate; images of that
size or more go one at a time, as before, so memory stays bounded. A batch that
the engine refuses is fed again image by image (``update`` is all or nothing),
so a bad item is named and skipped exactly as when fed alone.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np

from segaudit._progress import progress
from segaudit.drivers._stream import LabelAudit
from segaudit.io import DatasetError, FolderDataset, FolderItem, InputProblem
from segaudit.io._folder import LoadedItem
from segaudit.io._prefetch import prefetch

__all__ = ["BATCH_PIXELS", "PREFETCH_DEPTH", "feed_audit", "model_path", "reason"]

BATCH_PIXELS = 1 << 16
"""Smaller images of one size are fed together up to this many pixels (one 256x256 image)."""
PREFETCH_DEPTH = 1
"""Items read ahead of the one being summarised (one reader thread)."""
SMALL_PREFETCH_DEPTH = 16
"""Items read ahead at most, by two reader threads, when every image is under `BATCH_PIXELS`:
as many as fit in `BATCH_PIXELS`, so never more data ahead than one image at that size."""

_ENGINE_WHERE = (
    (re.compile(r"LabelAudit\.update \(batch \d+\): "), ""),
    (re.compile(r" of image \d+, "), ", "),
    (re.compile(r"\bimage \d+, "), ""),
    (re.compile(r" in batch \d+"), ""),
)


def reason(err: ValueError) -> str:
    """Return the engine's message without batch and image numbers (the file names the item).

    Examples
    --------
    >>> reason(ValueError("pred_probs must be finite; got nan at class 0 of image 3, row 1, column 2."))
    'pred_probs must be finite; got nan at class 0, row 1, column 2.'
    """  # noqa: E501
    text = str(err)
    for pattern, replacement in _ENGINE_WHERE:
        text = pattern.sub(replacement, text)
    return text


_MODEL_INDEX = re.compile(r"pred_probs\[(\d+)\]")


def model_path(files: FolderItem, message: str) -> Path:
    """Return the probability file an engine message is about (``pred_probs[m]``: model m).

    Examples
    --------
    >>> item = FolderItem("a", Path("m/a.png"), Path("p0/a.npy"), None, (1, 1),
    ...                   (Path("p0/a.npy"), Path("p1/a.npy")))
    >>> model_path(item, "pred_probs[1] must be finite").as_posix()
    'p1/a.npy'
    >>> model_path(item, "bad K").as_posix()
    'p0/a.npy'
    """
    found = _MODEL_INDEX.search(message)
    m = int(found.group(1)) if found else 0
    return files.probs_paths[m] if m < len(files.probs_paths) else files.probs_path


Loaded = tuple[LoadedItem | None, InputProblem | None]


def load_item(dataset: FolderDataset, i: int) -> Loaded:
    """Read item `i`; return its problem instead (naming its file) if it has one."""
    files = dataset.items[i]
    try:
        return dataset.load(i), None
    except DatasetError as err:  # an ItemError: this item's file and reason
        return None, replace(err.problems[0], stem=files.stem)
    except OSError as err:
        path = Path(err.filename) if err.filename else files.mask_path
        return None, InputProblem(
            path, f"cannot read the file ({err.strerror or err}).", files.stem
        )


def _update_one(files: FolderItem, item: LoadedItem, audit: LabelAudit) -> InputProblem | None:
    """Give one item to the audit; return its problem if the engine refuses it."""
    try:
        audit.update(item.labels, item.probs)  # several models: [p1, ..., pM]
    except ValueError as err:  # the audit is left as it was (see LabelAudit.update)
        message = f"{reason(err)} (mask {files.mask_path.name})"
        return InputProblem(model_path(files, str(err)), message, files.stem)
    return None


def _batchable(item: LoadedItem) -> bool:
    """Whether the item is small and of one model: worth stacking with its neighbours."""
    return isinstance(item.probs, np.ndarray) and item.labels.size < BATCH_PIXELS


def _same_kind(a: LoadedItem, b: LoadedItem) -> bool:
    """Whether two batchable items stack: same shapes and dtypes."""
    pa, pb = a.probs, b.probs
    return (
        isinstance(pa, np.ndarray)
        and isinstance(pb, np.ndarray)
        and a.labels.shape == b.labels.shape
        and a.labels.dtype == b.labels.dtype
        and pa.shape == pb.shape
        and pa.dtype == pb.dtype
    )


def feed_group(
    dataset: FolderDataset, group: list[tuple[int, LoadedItem]], audit: LabelAudit
) -> Iterator[tuple[int, InputProblem | None]]:
    """Give items of one size to the audit in one update; one by one if that fails.

    Yields each item's index and its problem (None when it was added); one by
    one, an item is added only when the previous result has been taken.
    """
    if len(group) > 1:
        labels = np.stack([item.labels for _, item in group])
        probs = np.stack([item.probs for _, item in group])
        try:
            audit.update(labels, probs)
        except ValueError:  # the audit is as it was: find the bad items one at a time
            pass
        else:
            return iter([(i, None) for i, _ in group])
        finally:
            del labels, probs
    return ((i, _update_one(dataset.items[i], item, audit)) for i, item in group)


def feed_audit(
    dataset: FolderDataset,
    audit: LabelAudit,
    *,
    skip_bad: bool,
    verbose: bool,
    load: Callable[[FolderDataset, int], Loaded] = load_item,
    jobs: int | None = None,
) -> tuple[list[int], list[InputProblem]]:
    """Stream every item through the audit; return the items kept and the problems skipped.

    Items are read ahead in a thread and added in their order; results do not
    depend on how they were batched. `jobs` sets the reader threads (default:
    1 for large images, 2 for small ones) and reads at least that many items ahead.

    Raises
    ------
    DatasetError
        Naming the file, on the first bad item unless `skip_bad`; if none is left.
    """
    kept: list[int] = []
    skipped: list[InputProblem] = []
    with progress(len(dataset), "reading probabilities", verbose) as bar:

        def record(results: Iterable[tuple[int, InputProblem | None]]) -> None:
            for i, problem in results:
                if problem is None:
                    kept.append(i)
                elif skip_bad:
                    skipped.append(problem)
                else:
                    raise DatasetError([problem])
                bar.update(1)

        group: list[tuple[int, LoadedItem]] = []
        pixels = 0
        largest = max((h * w for h, w in (item.shape for item in dataset.items)), default=1)
        depth, workers = PREFETCH_DEPTH, 1
        if largest < BATCH_PIXELS:  # small images: read several ahead, as much data as one
            depth = max(PREFETCH_DEPTH, min(SMALL_PREFETCH_DEPTH, BATCH_PIXELS // max(largest, 1)))
            workers = 2
        if jobs is not None:
            workers, depth = jobs, max(depth, jobs)
        keys = range(len(dataset))
        reader = prefetch(partial(load, dataset), keys, depth=depth, workers=workers)
        with contextlib.closing(reader) as items:  # an error here stops the reader too
            for i, (item, problem) in enumerate(items):
                if item is None or (group and not _same_kind(group[0][1], item)):
                    record(feed_group(dataset, group, audit))  # earlier items first
                    group, pixels = [], 0
                if item is None:
                    assert problem is not None
                    record([(i, problem)])
                    continue
                group.append((i, item))
                pixels += item.labels.size
                if not _batchable(item) or pixels >= BATCH_PIXELS:
                    record(feed_group(dataset, group, audit))
                    group, pixels = [], 0
                del item  # not held while the reader loads the next items
            record(feed_group(dataset, group, audit))
    if not kept:
        raise DatasetError(skipped, "no usable item is left after skipping")
    return kept, skipped
