"""`FolderDataset`: matched, checked files, loaded one item at a time."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import NamedTuple, TypeVar

import numpy as np

from segaudit._typing import FloatArray, IntArray
from segaudit._validation import allowed_labels, bad_labels
from segaudit.io._classes import ClassInfo
from segaudit.io._formats import RGBArray, read_image, read_label_mask, read_probs
from segaudit.io._labels import LabelMapping
from segaudit.io._problems import DatasetError, InputProblem, ItemError, problem_of
from segaudit.io._resample import resize_bilinear
from segaudit.io._split_probs import read_split_row

__all__ = [
    "FolderDataset",
    "FolderItem",
    "LoadedItem",
    "MaskCache",
    "label_message",
    "stamp_of",
    "value_message",
]

T = TypeVar("T")
_PIECE = 1 << 18  # float16 values checked per step by `value_message`


@dataclass(frozen=True)
class FolderItem:
    """The files of one matched item, and the (H, W) size of its mask.

    `probs_paths` holds every model's file, in model order (`probs_path` first);
    left empty, it is ``(probs_path,)``. `probs_rows` holds, for a model whose
    file is one ``(N, K, H, W)`` array for the whole split, the item's row in
    it (None for a file of its own); left empty, it is all None. `probs_sizes`
    holds each model's (h, w) as `scan_folder` found it, where it is smaller
    than `shape` (the probabilities are upsampled as they are read); left
    empty, every model's size is `shape`.
    """

    stem: str
    mask_path: Path
    probs_path: Path
    image_path: Path | None
    shape: tuple[int, int]
    probs_paths: tuple[Path, ...] = ()
    probs_rows: tuple[int | None, ...] = ()
    probs_sizes: tuple[tuple[int, int], ...] = ()

    def __post_init__(self) -> None:
        if not self.probs_paths:
            object.__setattr__(self, "probs_paths", (self.probs_path,))
        if not self.probs_rows:
            object.__setattr__(self, "probs_rows", (None,) * len(self.probs_paths))
        if not self.probs_sizes:
            object.__setattr__(self, "probs_sizes", (self.shape,) * len(self.probs_paths))


class LoadedItem(NamedTuple):
    """One loaded item: labels (H, W), probabilities (K, H, W), image (H, W, 3) or None.

    With several models (`FolderDataset.num_models` > 1), `probs` is the list of
    every model's (K, H, W) array, in model order: what `LabelAudit.update` takes.
    """

    stem: str
    labels: IntArray
    probs: FloatArray | list[FloatArray]
    image: RGBArray | None


class MaskCache:
    """Small masks decoded by `scan_folder`'s checks, kept for `FolderDataset.load`.

    A scan of many small images would otherwise decode each mask twice (once
    to check its labels, once to feed it). Each entry is taken once, and only
    while the file's size and modification time are those it was read with,
    so a file changed after the checks is read again. At most
    :data:`MASK_CACHE_PIXELS` pixels in all; masks of more than
    :data:`MASK_CACHE_ITEM` pixels are never kept.
    """

    def __init__(self) -> None:
        self._items: dict[Path, tuple[tuple[int, int], IntArray]] = {}
        self._pixels = 0
        self._lock = threading.Lock()

    def put(self, path: Path, stamp: tuple[int, int], labels: IntArray) -> None:
        """Keep `labels`, read from `path` when it had `stamp` (see `stamp_of`), if they fit."""
        with self._lock:
            if labels.size > MASK_CACHE_ITEM or self._pixels + labels.size > MASK_CACHE_PIXELS:
                return
            self._items[path] = (stamp, labels)
            self._pixels += labels.size

    def take(self, path: Path) -> IntArray | None:
        """Return (and forget) the labels kept for `path`, if the file is unchanged."""
        with self._lock:
            entry = self._items.pop(path, None)
            if entry is not None:
                self._pixels -= entry[1].size
        if entry is None or stamp_of(path) != entry[0]:
            return None
        return entry[1]


MASK_CACHE_ITEM = 1 << 14
"""Masks of at most this many pixels are kept by `MaskCache`."""
MASK_CACHE_PIXELS = 1 << 24
"""`MaskCache` holds at most this many pixels in all."""


def stamp_of(path: Path) -> tuple[int, int]:
    """Return the file's (size, modification time in ns): it changes when the file does."""
    st = os.stat(path)
    return (st.st_size, st.st_mtime_ns)


@dataclass(frozen=True)
class FolderDataset:
    """Matched mask / probability files, checked by `scan_folder`, loaded one item at a time.

    Parameters
    ----------
    items : tuple of FolderItem
        The items without problems, sorted by stem.
    problems : tuple of InputProblem
        Everything wrong with the inputs. While any remain, `load` refuses to run:
        call `raise_if_problems` or `skip_bad` first.
    num_classes : int or None
        K; None only when no probability file could be read.
    layout : {"KHW", "HWK"}, default="KHW"
    ignore_index : int, optional
    classes : ClassInfo, optional
    from_logits : bool, optional
        What the probability files hold, for the value check of `load`: with False,
        negative values are refused too; with None (unknown) only NaN and infinity.
    num_models : int, default=1
        Probability files per item (models or folds, see `FolderItem.probs_paths`).
    mapping : LabelMapping, optional
        Applied to each mask as it is read (colours, label map, reduce-zero-label).
    mask_cache : MaskCache, optional
        Small masks already decoded by the checks (used once each, if unchanged).
    """

    items: tuple[FolderItem, ...]
    problems: tuple[InputProblem, ...] = ()
    num_classes: int | None = None
    layout: str = "KHW"
    ignore_index: int | None = None
    classes: ClassInfo | None = None
    from_logits: bool | None = None
    num_models: int = 1
    mapping: LabelMapping | None = None
    mask_cache: MaskCache = field(default_factory=MaskCache, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[LoadedItem]:
        """Load the items one after another; only one is held at a time.

        The first bad item ends the iteration with its `ItemError`; to skip bad
        items and go on, call `load` for each index instead.
        """
        for i in range(len(self.items)):
            yield self.load(i)

    @property
    def stems(self) -> list[str]:
        """File stems of the items, in order."""
        return [item.stem for item in self.items]

    @property
    def shapes(self) -> list[tuple[int, int]]:
        """(H, W) of each item, in order; sizes may differ between items."""
        return [item.shape for item in self.items]

    def raise_if_problems(self) -> FolderDataset:
        """Return self, or raise a `DatasetError` listing every problem with its file."""
        if self.problems:
            raise DatasetError(self.problems)
        return self

    def skip_bad(self) -> tuple[FolderDataset, list[InputProblem]]:
        """Return the dataset without its problems, and the list of what was skipped.

        Raises
        ------
        DatasetError
            If no item is left to process.
        """
        if not self.items:
            raise DatasetError(self.problems, "no usable item is left after skipping")
        return replace(self, problems=()), list(self.problems)

    def _labels(self, path: Path) -> IntArray:
        """Return the mask at `path`: kept by the checks if unchanged, else read anew."""
        labels = self.mask_cache.take(path)
        return read_label_mask(path, mapping=self.mapping) if labels is None else labels

    def load(self, i: int) -> LoadedItem:
        """Read item `i`: stem, labels (H, W), probabilities (K, H, W), image or None.

        With several models, each model's file is read once, and the
        probabilities are a list of M (K, H, W) arrays. Probabilities smaller
        than the mask, as `scan_folder` found them (`FolderItem.probs_sizes`), are
        upsampled to its size with `resize_bilinear`; masks go through `mapping`.

        The files are checked again as they are read: sizes and K as found by
        `scan_folder`, labels in ``0..K-1`` or `ignore_index`, probabilities finite
        (and >= 0 unless `from_logits` is True or None).

        Raises
        ------
        ItemError
            A problem of this item only, naming its file; other items may be fine.
        DatasetError
            If problems of `scan_folder` remain (see `skip_bad`).
        """
        if self.problems:
            raise DatasetError(
                self.problems,
                "call raise_if_problems() or skip_bad() first; "
                f"{len(self.problems)} input problems",
            )
        item = self.items[i]
        labels = _step(item.mask_path, item.stem, lambda: self._labels(item.mask_path))
        models = []
        files = zip(item.probs_paths, item.probs_rows, item.probs_sizes, strict=True)
        for m, (path, row, stored) in enumerate(files):
            read = (
                partial(read_probs, path, layout=self.layout)
                if row is None
                else partial(read_split_row, path, row, layout=self.layout)
            )
            probs = _step(path, item.stem, read)  # each model's file read once
            if stored != item.shape and probs.shape[1:] == stored:
                probs = resize_bilinear(probs, item.shape)
            problem = self._problem(item, labels, probs, path, check_labels=m == 0)
            if problem is not None:
                raise ItemError(problem)
            models.append(probs)
        image = None
        if item.image_path is not None:
            path = item.image_path
            image = _step(path, item.stem, lambda: read_image(path))
            if image.shape[:2] != item.shape:
                size = f"{item.shape[0]}x{item.shape[1]}"
                got = f"{image.shape[0]}x{image.shape[1]}"
                message = f"the file changed after scan_folder: expected size {size}; got {got}."
                raise ItemError(InputProblem(path, message, item.stem))
        loaded = models[0] if len(models) == 1 else models
        return LoadedItem(item.stem, labels, loaded, image)

    def _problem(
        self,
        item: FolderItem,
        labels: np.ndarray,
        probs: np.ndarray,
        probs_path: Path,
        *,
        check_labels: bool = True,
    ) -> InputProblem | None:
        """Return the first problem of a read item's arrays, if any."""
        k = self.num_classes
        if labels.shape != item.shape or probs.shape != (k, *item.shape):
            message = (
                "the files changed after scan_folder: expected labels "
                f"{item.shape} and probabilities {(k, *item.shape)}; "
                f"got {labels.shape} and {probs.shape}."
            )
            mask_changed = labels.shape != item.shape or len(item.probs_paths) == 1
            return InputProblem(item.mask_path if mask_changed else probs_path, message, item.stem)
        labels_wrong = (
            None
            if k is None or not check_labels
            else label_message(labels, k, self.ignore_index, "")
        )
        if labels_wrong is not None:
            return InputProblem(item.mask_path, labels_wrong, item.stem)
        values_wrong = value_message(probs, self.from_logits)
        if values_wrong is not None:
            return InputProblem(probs_path, values_wrong, item.stem)
        return None


def _step(path: Path, stem: str, read: Callable[[], T]) -> T:
    """Run one reader; turn its error into the `ItemError` of item `stem`."""
    try:
        return read()
    except (DatasetError, OSError) as exc:
        raise ItemError(problem_of(exc, path, stem)) from exc


def label_message(labels: np.ndarray, k: int, ignore_index: int | None, reason: str) -> str | None:
    """Describe the labels that break the label rule of `bad_labels`; None if none.

    Examples
    --------
    >>> labels = np.array([[0, 1], [255, 255]])
    >>> print(label_message(labels, 2, None, "K=2"))  # doctest: +NORMALIZE_WHITESPACE
    expected labels to be integers in 0..1 (K=2); got 255 in 2 pixels; pass ignore_index=255
    if it marks void pixels.
    """
    bad_mask = bad_labels(labels, k, ignore_index)
    if not bad_mask.any():
        return None
    bad = labels[bad_mask]
    values = np.unique(bad)
    shown = ", ".join(str(v) for v in values[:5]) + (", ..." if len(values) > 5 else "")
    hint = ""
    if ignore_index is None and 255 in values:
        hint = "; pass ignore_index=255 if it marks void pixels"
    why = f" ({reason})" if reason else ""
    allowed = allowed_labels(k, ignore_index)
    return f"expected labels to be {allowed}{why}; got {shown} in {bad.size} pixels{hint}."


def value_message(probs: np.ndarray, from_logits: bool | None) -> str | None:
    """Describe the first NaN, infinite or (for probabilities) negative value; None if none.

    A few reductions over the array; the position of a bad value is looked for
    only when there is one.
    """
    if not _has_bad_value(probs, negative=from_logits is False):
        return None
    nonfinite = ~np.isfinite(probs)
    bad = nonfinite if nonfinite.any() else probs < 0
    k, row, col = (int(v) for v in np.argwhere(bad)[0])
    value = probs[k, row, col].item()
    where = f"class {k}, row {row}, column {col}"
    if nonfinite.any():
        kind = {True: "logits", False: "probabilities", None: "values"}[from_logits]
        return f"expected finite {kind}; got {value!r} at {where}."
    return (
        f"expected probabilities >= 0; got {value!r} at {where}. "
        "If the file holds logits, pass from_logits=True (--from-logits)."
    )


def _has_bad_value(probs: np.ndarray, *, negative: bool) -> bool:
    """Whether `probs` holds NaN or infinity (or, with `negative`, a value below 0)."""
    if probs.dtype != np.float16:
        low, high = probs.min(), probs.max()  # NaN propagates through both
        return not (np.isfinite(low) and np.isfinite(high)) or (negative and low < 0)
    # numpy's float16 min / max are slow: read the bits, in storage order, in
    # pieces of at most _PIECE values (one piece for a small image)
    bits = probs.view(np.uint16)
    pieces: Iterator[np.ndarray]
    if bits.flags.c_contiguous or bits.flags.f_contiguous:
        flat = bits.ravel(order="K")  # a view
        pieces = (flat[i : i + _PIECE] for i in range(0, flat.size, _PIECE))
    else:
        pieces = iter(np.moveaxis(bits, int(np.argmax(np.abs(bits.strides))), 0))
    for piece in pieces:
        if np.bitwise_and(piece, 0x7FFF).max() >= 0x7C00:  # exponent all ones: NaN or inf
            return True
        if negative and piece.max() > 0x8000:  # sign bit set, and not -0.0
            return True
    return False
