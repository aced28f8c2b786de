"""`scan_folder`: match masks to probability files and list every input problem up front."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segaudit._validation import param_error
from segaudit.io._classes import ClassInfo, read_class_names
from segaudit.io._datasets import BUILTIN_CLASSES, builtin_classes
from segaudit.io._folder import FolderDataset, FolderItem, MaskCache, label_message, stamp_of
from segaudit.io._formats import (
    IMAGE_SUFFIXES,
    MASK_SUFFIXES,
    PROBS_SUFFIXES,
    check_layout,
    image_header,
    probe,
    read_label_mask,
)
from segaudit.io._labels import LabelMapping, read_label_map
from segaudit.io._problems import DatasetError, InputProblem, broken_link_message, problem_of
from segaudit.io._resample import scaled_down
from segaudit.io._split_probs import SplitProbs, is_split_array, open_split, read_ids

__all__ = ["model_folders", "resolve_classes", "scan_folder"]

PathLike = str | os.PathLike[str]
Shape = tuple[int, int]


def model_folders(
    probs_dirs: PathLike | Sequence[PathLike], *, masks_dir: PathLike | None = None
) -> list[Path]:
    """Return the probability folder (or whole-split array) of each model, in order.

    Each folder given is one model, unless it holds only sub-folders (hidden
    entries aside) and `masks_dir` has none of those names (then the
    sub-folders mirror the masks' nested folders, as Cityscapes' cities do):
    then each sub-folder, sorted by name, is one model. The models must hold
    the same stems; `scan_folder` reports a stem missing from one of them.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ("fold1", "fold0"):
    ...     (root / name).mkdir()
    >>> [p.name for p in model_folders(root)]
    ['fold0', 'fold1']
    >>> (root / "fold0" / "a.npy").touch()
    >>> [p.name for p in model_folders([root / "fold0", root / "fold1"])]
    ['fold0', 'fold1']
    """
    given = [probs_dirs] if isinstance(probs_dirs, (str, os.PathLike)) else list(probs_dirs)
    if not given:
        raise param_error("probs_dir", "scan_folder", "a folder, or a non-empty list", "[]")
    folders: list[Path] = []
    for folder in map(Path, given):
        if is_split_array(folder):  # one array for the whole split: one model
            folders.append(folder)
            continue
        entries = _visible(folder) if folder.is_dir() else []
        if entries and all(e.is_dir() for e in entries):
            subfolders = [Path(e.path) for e in entries]
            if not _mirrored(subfolders, masks_dir):
                folders.extend(subfolders)
                continue
        folders.append(folder)
    return folders


def scan_folder(
    masks_dir: PathLike,
    probs_dir: PathLike | Sequence[PathLike],
    *,
    images_dir: PathLike | None = None,
    layout: str = "KHW",
    ignore_index: int | None = None,
    num_classes: int | None = None,
    classes: ClassInfo | Sequence[str] | PathLike | None = None,
    downsample: int = 1,
    from_logits: bool | None = None,
    mask_suffix: str = "",
    image_suffix: str = "",
    probs_suffix: str = "",
    split: PathLike | Sequence[str] | None = None,
    label_map: PathLike | Mapping[int, int] | None = None,
    reduce_zero_label: bool = False,
    order: PathLike | None = None,
) -> FolderDataset:
    """Match masks to probability files by name and check them all before any work.

    Masks are read whole (they are small); probability files and images only up to
    their header. Folders are searched recursively (hidden files and folders
    skipped, other suffixes ignored) and files are paired by their path in their
    folder without the suffix: ``val/a/x.png`` with ``val/a/x.npy``; a folder whose
    files all lie at its top pairs by name alone. The item's stem is that path
    (``a/x``). Sizes may differ between items (as in ADE20K).

    Parameters
    ----------
    masks_dir : str or PathLike
        Folder of ``.png`` / ``.tif`` / ``.tiff`` masks (see `read_label_mask`):
        class ids, or colours with a `classes` palette.
    probs_dir : str or PathLike, or a sequence of them
        Folder of ``.npy`` / ``.npz`` / ``.pt`` probabilities or logits (see
        `read_probs`), or one ``(N, K, H, W)`` array for the whole split (a
        ``.npy``, ``.pt`` or zarr store; see `open_split` and `order`).
        Probabilities smaller than their mask are upsampled as they are read
        (`resize_bilinear`, as ``torch.nn.functional.interpolate`` with
        ``mode="bilinear", align_corners=False``). Several models (or folds): a
        sequence, or a folder holding only sub-folders, one per model (see
        `model_folders`). Every model must have a file for each stem, of the
        same shape; the items are then loaded with one array per model
        (`LoadedItem.probs` a list).
    images_dir : str or PathLike, optional
        Folder of ``.png`` / ``.jpg`` / ``.jpeg`` originals; extra images are ignored.
    layout : {"KHW", "HWK"}, default="KHW"
        Axis order of the probability arrays.
    ignore_index : int, optional
        Label value of void pixels (255 in VOC and Cityscapes, or a class id such
        as 0), allowed in any mask. Needed with `label_map` and `reduce_zero_label`.
    num_classes : int, optional
        Expected K. By default the number of `classes`, else the most common K.
    classes : ClassInfo, sequence of str, str or PathLike, optional
        Class names (and colours): a class file for `read_class_names`, or
        ``"voc"``, ``"cityscapes"`` or ``"ade20k"`` (see `builtin_classes`).
    downsample : int, default=1
        The factor the audit will pool by: it must divide every image's H and W.
    from_logits : bool, optional
        Kept for `FolderDataset.load`, which refuses negative values unless this
        is True or None (unknown).
    mask_suffix, image_suffix, probs_suffix : str, default=""
        Cut from the end of file names (before the extension) when pairing;
        with one given, files of that folder without it are ignored. Cityscapes:
        ``"_gtFine_labelIds"`` and ``"_leftImg8bit"``.
    split : str, PathLike or sequence of str, optional
        The ids to scan (a file with one a line, as VOC's ``val.txt``); an id
        with a ``/`` is a path in the folder, one without matches the file name.
        Files not listed are ignored; a listed id without a mask is a problem.
    label_map : str, PathLike or mapping, optional
        Raw mask id to class id (see `read_label_map`; ``"cityscapes"`` built in).
        Raw ids left out become `ignore_index`.
    reduce_zero_label : bool, default=False
        Mask value 0 becomes `ignore_index` and ``k`` becomes ``k - 1`` (ADE20K).
    order : str or PathLike, optional
        For a whole-split array: the id of each row, one a line. By default the
        file beside it, ``<name>.ids.txt`` (or ``.ids.npy``), or a zarr group's
        ``ids``.

    Returns
    -------
    FolderDataset
        Its `problems` record, each with its file: masks without probabilities and
        the reverse, several files for one stem, broken symbolic links, unreadable
        files, size mismatches, sizes that `downsample` does not divide, images
        that are not 8-bit, K differing from the reference, and labels outside
        ``0..K-1`` that are not `ignore_index`.

    Raises
    ------
    FileNotFoundError
        If a folder does not exist.
    ValueError
        If a parameter is invalid or `num_classes` disagrees with `classes`.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> from PIL import Image
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> Image.fromarray(np.array([[0, 255]], np.uint8)).save(root / "a.png")
    >>> np.save(root / "a.npy", np.full((2, 1, 2), 0.5, np.float32))
    >>> ds = scan_folder(root, root, ignore_index=255).raise_if_problems()
    >>> ds.stems, ds.num_classes, ds.load(0).probs.shape
    (['a'], 2, (2, 1, 2))
    """
    check_layout(layout, "scan_folder")
    _check_params(ignore_index, num_classes, downsample, from_logits)
    info = resolve_classes(classes)
    if info is not None and num_classes is not None and info.num_classes != num_classes:
        expected = f"{info.num_classes}, the number of class names"
        raise param_error("num_classes", "scan_folder", expected, num_classes)
    mapping = LabelMapping(
        None if label_map is None else read_label_map(label_map),
        reduce_zero_label=reduce_zero_label,
        ignore_index=ignore_index,
        palette=None if info is None else info.colors,
    )
    probs_dirs = model_folders(probs_dir, masks_dir=masks_dir)
    scan = _Scan(Path(masks_dir), probs_dirs, layout, ignore_index, downsample, mapping=mapping)
    masks = _index(scan.masks_dir, "masks_dir", MASK_SUFFIXES, mask_suffix)
    models = [_probs_files(folder, probs_suffix, order) for folder in scan.probs_dirs]
    if images_dir is not None:
        scan.images_dir = Path(images_dir)
        scan.images = _index(scan.images_dir, "images_dir", IMAGE_SUFFIXES, image_suffix)
    for files, kinds, suffix in (
        (masks, MASK_SUFFIXES, mask_suffix),
        *((model, PROBS_SUFFIXES, probs_suffix) for model in models),
    ):
        if not files.found and files.split is None:
            ending = f" named *{suffix}" if suffix else ""
            message = f"expected {' / '.join(kinds)} files{ending}; found none."
            scan.problems.append(InputProblem(files.folder, message))
    keys = _selected(masks, split, (mask_suffix, image_suffix), scan)
    scan.broken = _broken(masks).union(*map(_broken, models))
    matched = {key: [model.get(key) for model in models] for key in keys}
    for key, found in matched.items():
        for m, paths in enumerate(found):
            if len(masks.found[key]) == len(paths) == 1 and not (
                scan.broken and paths[0] in scan.broken
            ):
                scan.headers[m, key] = models[m].header(key, paths[0])
    scan.reference_k(num_classes, info)
    if split is None:  # probabilities without a mask are problems, unless a split chose
        for m, model in enumerate(models):
            used = {model.resolve(key) for key in keys}
            for key in model.found.keys() - used:
                matched.setdefault(key, [[] for _ in models])[m] = model.found[key]
    items = [
        scan.check(key, masks.found.get(key, []), found, [m.row(key) for m in models])
        for key, found in sorted(matched.items())
    ]
    return FolderDataset(
        items=tuple(item for item in items if item is not None),
        problems=tuple(scan.problems),
        num_classes=scan.k,
        layout=layout,
        ignore_index=ignore_index,
        classes=info,
        from_logits=from_logits,
        num_models=len(models),
        mapping=mapping if mapping.maps_ids or mapping.palette is not None else None,
        mask_cache=scan.masks,
    )


def _visible(folder: Path) -> list[os.DirEntry[str]]:
    """Return the entries of `folder` but hidden ones, by name (one listing, no call per entry)."""
    with os.scandir(folder) as it:
        return sorted((e for e in it if not e.name.startswith(".")), key=lambda e: e.name)


def _mirrored(entries: list[Path], masks_dir: PathLike | None) -> bool:
    """Tell whether `masks_dir` has a sub-folder named as one of `entries`."""
    return masks_dir is not None and any((Path(masks_dir) / p.name).is_dir() for p in entries)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_params(ignore_index: Any, num_classes: Any, downsample: Any, from_logits: Any) -> None:
    for name, value, low in (("ignore_index", ignore_index, None), ("num_classes", num_classes, 1)):
        if value is not None and (not _is_int(value) or (low is not None and value < low)):
            kind = "an int" if low is None else f"an int >= {low}"
            raise param_error(name, "scan_folder", f"{kind} or None", repr(value))
    if not _is_int(downsample) or downsample < 1:
        raise param_error("downsample", "scan_folder", "an int >= 1", repr(downsample))
    if from_logits not in (None, True, False) or _is_int(from_logits):
        raise param_error("from_logits", "scan_folder", "True, False or None", repr(from_logits))


def resolve_classes(classes: ClassInfo | Sequence[str] | PathLike | None) -> ClassInfo | None:
    """Return the class names (and colours) `classes` gives: a file, built-in name or list."""
    if classes is None or isinstance(classes, ClassInfo):
        return classes
    if isinstance(classes, str) and classes in BUILTIN_CLASSES and not Path(classes).exists():
        return builtin_classes(classes)
    if isinstance(classes, (str, os.PathLike)):
        return read_class_names(classes)
    return ClassInfo(tuple(classes))


def _is_broken(path: Path) -> bool:
    return path.is_symlink() and not path.exists()


def _broken(files: _Files) -> set[Path]:
    """Return the broken links among `files` (known from the listing, or asked of the system)."""
    if files.broken is not None:
        return set(files.broken)
    return {p for p in {p for paths in files.found.values() for p in paths} if _is_broken(p)}


def _index(folder: Path, param: str, suffixes: tuple[str, ...], strip: str = "") -> _Files:
    """Map each file's key (its path in `folder`, without suffix and `strip`) to its files.

    Searched recursively; hidden files and folders are skipped, broken links kept.
    """
    if not folder.is_dir():
        if folder.exists():
            message = param_error(param, "scan_folder", "a folder", f"the file '{folder}'")
            raise NotADirectoryError(str(message))
        message = param_error(param, "scan_folder", "an existing folder", f"'{folder}'")
        raise FileNotFoundError(str(message))
    found: dict[str, list[Path]] = {}
    broken: set[Path] = set()
    _index_into(found, broken, folder, "", suffixes, strip)
    return _Files(folder, found, broken=frozenset(broken))


def _index_into(
    found: dict[str, list[Path]],
    broken: set[Path],
    folder: Path,
    prefix: str,
    suffixes: tuple[str, ...],
    strip: str,
) -> None:
    """Add the files of `folder` (keys start with `prefix`), then of its sub-folders, by name.

    Broken links are also added to `broken`.

    One directory listing per folder: its entries tell files, folders and
    broken links apart without a system call per file. As `os.walk`: an
    unreadable folder is skipped, a link to a folder is not followed.
    """
    try:
        with os.scandir(folder) as it:
            entries = sorted((e for e in it if not e.name.startswith(".")), key=lambda e: e.name)
    except OSError:
        return
    subfolders = []
    for entry in entries:
        if entry.is_dir():
            if not entry.is_symlink():
                subfolders.append(entry)
            continue
        stem, dot, ext = entry.name.rpartition(".")
        if not dot or not stem or "." + ext.lower() not in suffixes:
            continue
        if strip and not stem.endswith(strip):
            continue
        dangling = not entry.is_file() and entry.is_symlink() and not os.path.exists(entry.path)
        if entry.is_file() or dangling:
            key = prefix + stem[: len(stem) - len(strip)]
            path = Path(entry.path)
            found.setdefault(key, []).append(path)
            if dangling:
                broken.add(path)
    for entry in subfolders:
        _index_into(found, broken, Path(entry.path), prefix + entry.name + "/", suffixes, strip)


@dataclass
class _Files:
    """The files of one folder (or the rows of one whole-split array) by key."""

    folder: Path
    found: dict[str, list[Path]]
    split: SplitProbs | None = None
    broken: frozenset[Path] | None = None
    """The broken links among `found`, as the listing saw them (None: not known)."""

    def __post_init__(self) -> None:
        self.flat = all("/" not in key for key in self.found)
        self.by_name: dict[str, str] = {key: key for key in self.found} if self.flat else {}
        ids = () if self.split is None else self.split.ids
        self.rows = {key: r for r, key in enumerate(ids)}

    def resolve(self, key: str) -> str | None:
        """Return the own key that pairs with `key` (a flat folder pairs by name alone)."""
        if key in self.found:
            return key
        return self.by_name.get(key.rsplit("/", 1)[-1])

    def get(self, key: str) -> list[Path]:
        """Return the files paired with `key` (none, one, or several: a problem)."""
        own = self.resolve(key)
        return [] if own is None else self.found[own]

    def row(self, key: str) -> int | None:
        """Return the row of `key` in a whole-split array, else None."""
        own = self.resolve(key)
        if self.split is None or own is None:
            return None
        return self.rows[own]

    def header(self, key: str, path: Path) -> tuple[tuple[int, ...], str | None] | InputProblem:
        """Return the stored shape of one item's probabilities, or the problem reading it."""
        if self.split is not None:
            return self.split.shape[1:], None
        try:
            return probe(path)
        except (DatasetError, OSError) as exc:
            return problem_of(exc, path, key)


def _probs_files(path: Path, strip: str, order: PathLike | None) -> _Files:
    """Index one model's probabilities: a folder of files, or a whole-split array."""
    if not is_split_array(path):
        return _index(path, "probs_dir", PROBS_SUFFIXES, strip)
    split = open_split(path, order)
    ids = [i[: len(i) - len(strip)] if strip and i.endswith(strip) else i for i in split.ids]
    split = SplitProbs(split.path, split.shape, tuple(ids))
    return _Files(path, {i: [path] for i in ids}, split)


def _selected(
    masks: _Files, split: PathLike | Sequence[str] | None, strips: tuple[str, ...], scan: _Scan
) -> list[str]:
    """Return the mask keys to scan: all, or the split's (an id without a mask is a problem)."""
    if split is None:
        return sorted(masks.found)
    if isinstance(split, (str, os.PathLike)):
        where, ids = Path(split), read_ids(Path(split))
    else:
        where, ids = masks.folder, [str(i) for i in split]
    by_name: dict[str, list[str]] = {}
    for key in masks.found:
        by_name.setdefault(key.rsplit("/", 1)[-1], []).append(key)
    keys: list[str] = []
    for raw in ids:
        wanted = _bare_id(raw, strips)
        found = [wanted] if wanted in masks.found else by_name.get(wanted, [])
        if len(found) == 1:
            keys.append(found[0])
        elif found:
            shown = ", ".join(found[:3])
            scan.add(where, raw, f"the split's id {raw!r} names several masks: {shown}.")
        else:
            expected = f"a mask {masks.folder / wanted}{MASK_SUFFIXES[0]} (or .tif, .tiff)"
            scan.add(where, raw, f"the split lists {raw!r}; expected {expected}, found none.")
    return sorted(dict.fromkeys(keys))


def _bare_id(raw: str, strips: tuple[str, ...]) -> str:
    """Return a split's id without a file extension or a name suffix."""
    name = raw.strip().replace("\\", "/")
    for suffix in (*MASK_SUFFIXES, *IMAGE_SUFFIXES):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    for strip in strips:
        if strip and name.endswith(strip):
            name = name[: -len(strip)]
    return name


def _khw(shape: tuple[int, ...], layout: str) -> tuple[int, int, int]:
    return (shape[0], shape[1], shape[2]) if layout == "KHW" else (shape[2], shape[0], shape[1])


@dataclass
class _Scan:
    """Settings and results of one `scan_folder` call."""

    masks_dir: Path
    probs_dirs: list[Path]
    layout: str
    ignore_index: int | None
    downsample: int = 1
    mapping: LabelMapping | None = None
    images_dir: Path | None = None
    images: _Files | None = None
    headers: dict[tuple[int, str], Any] = field(default_factory=dict)
    problems: list[InputProblem] = field(default_factory=list)
    broken: set[Path] = field(default_factory=set)
    """Broken links among the files found."""
    k: int | None = None
    k_reason: str = ""
    masks: MaskCache = field(default_factory=MaskCache)
    """Small masks decoded by the checks, for the loader."""

    def reference_k(self, num_classes: int | None, info: ClassInfo | None) -> None:
        """Choose the expected K, and say why."""
        ks = Counter(
            _khw(h[0], self.layout)[0]
            for h in self.headers.values()
            if not isinstance(h, InputProblem)
        )
        if num_classes is not None:
            self.k, self.k_reason = num_classes, f"num_classes={num_classes}"
        elif info is not None:
            self.k, self.k_reason = info.num_classes, f"{info.num_classes} class names were given"
        elif ks:
            self.k, count = ks.most_common(1)[0]
            self.k_reason = f"as in {count} of the {ks.total()} probability files"

    def add(self, path: Path, stem: str, message: str) -> None:
        """Record one problem of the item `stem`."""
        self.problems.append(InputProblem(path, message, stem))

    def check(
        self,
        stem: str,
        masks: list[Path],
        models: list[list[Path]],
        rows: Sequence[int | None] = (),
    ) -> FolderItem | None:
        """Record every problem of one stem (`models`: its files in each model's folder).

        `rows`: its row in each model's whole-split array (None for a folder).
        """
        start = len(self.problems)
        for paths in (masks, *models):
            if len(paths) > 1:
                names = ", ".join(p.name for p in paths)
                self.add(paths[0], stem, f"expected one file per stem; {names} share it.")
        present = [paths[0] for paths in models if paths]
        several = len(models) > 1
        for folder, probs in zip(self.probs_dirs, models, strict=True):
            if probs or not (masks or several):
                continue
            if folder.is_dir() and not is_split_array(folder):
                expected = f"{folder / stem}.npy, .npz or .pt"
            else:
                expected = f"a row with id {stem!r} in {folder} (its ids list has none)"
            if masks:
                what = "model's probability file" if several else "probability file"
                self.add(masks[0], stem, f"this mask has no {what}; expected {expected}.")
            else:
                expected = f"{expected}, like {present[0]}"
                self.add(present[0], stem, f"a model's file is missing; expected {expected}.")
        if not masks:
            expected = f"{self.masks_dir / stem}.png, .tif or .tiff"
            self.add(present[0], stem, f"these probabilities have no mask; expected {expected}.")
        for path in (*masks, *(p for paths in models for p in paths)) if self.broken else ():
            if path in self.broken:
                self.add(path, stem, broken_link_message(path))
        if len(self.problems) > start:
            return None
        shape = self._check_mask(stem, masks[0])
        for m, probs in enumerate(models):
            self._check_probs(stem, m, probs[0], shape, masks[0])
        image = self._check_image(stem, masks[0], shape)
        if len(self.problems) > start or shape is None:
            return None
        probs_paths = tuple(paths[0] for paths in models)
        probs_rows = tuple(rows) if any(r is not None for r in rows) else ()
        sizes = tuple(self._size(m, stem) for m in range(len(models)))
        return FolderItem(
            stem, masks[0], probs_paths[0], image, shape, probs_paths, probs_rows, sizes
        )

    def _size(self, model: int, stem: str) -> Shape:
        """Return the (h, w) of one model's probabilities for `stem`, as checked."""
        _, h, w = _khw(self.headers[model, stem][0], self.layout)
        return (h, w)

    def _check_mask(self, stem: str, path: Path) -> Shape | None:
        try:
            stamp = stamp_of(path)  # before the read: a later change shows
            labels = read_label_mask(path, mapping=self.mapping)
        except (DatasetError, OSError) as exc:
            self.problems.append(problem_of(exc, path, stem))
            return None
        self.masks.put(path, stamp, labels)
        if self.k is not None:
            message = label_message(labels, self.k, self.ignore_index, self.k_reason)
            if message is not None:
                self.add(path, stem, message)
        h, w = labels.shape
        f = self.downsample
        if h % f or w % f:
            self.add(
                path,
                stem,
                f"expected a height and width divisible by downsample={f}; got {h}x{w}.",
            )
        return (h, w)

    def _check_probs(
        self, stem: str, model: int, path: Path, shape: Shape | None, mask: Path
    ) -> None:
        header = self.headers[model, stem]
        if isinstance(header, InputProblem):
            self.problems.append(header)
            return
        raw = header[0]
        k, h, w = _khw(raw, self.layout)
        read_as = f"shape {raw} read as layout={self.layout!r}"
        if self.k is not None and k != self.k:
            self.add(
                path, stem, f"expected {self.k} classes ({self.k_reason}); got {k} ({read_as})."
            )
        if shape is not None and (h, w) != shape and not scaled_down((h, w), shape):
            other = "HWK" if self.layout == "KHW" else "KHW"
            hint = f"; with layout={other!r} they match" if _khw(raw, other)[1:] == shape else ""
            expected = f"{shape[0]}x{shape[1]} like the mask {mask.name}"
            self.add(path, stem, f"expected size {expected}; got {h}x{w} ({read_as}){hint}.")

    def _check_image(self, stem: str, mask: Path, shape: Shape | None) -> Path | None:
        if self.images is None or self.images_dir is None:
            return None
        found = self.images.get(stem)
        if len(found) != 1:
            got = ", ".join(p.name for p in found) or "none"
            expected = f"{self.images_dir / stem}.png, .jpg or .jpeg"
            self.add(mask, stem, f"expected one image {expected}; got {got}.")
            return None
        try:
            size = image_header(found[0])
        except (DatasetError, OSError) as exc:
            self.problems.append(problem_of(exc, found[0], stem))
            return None
        if shape is not None and size != shape:
            expected = f"{shape[0]}x{shape[1]} like the mask {mask.name}"
            self.add(found[0], stem, f"expected size {expected}; got {size[0]}x{size[1]}.")
        return found[0]
