"""`scan_folder`: match masks to probability files and list every input problem up front."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segaudit._validation import param_error
from segaudit.io._classes import ClassInfo, read_class_names
from segaudit.io._folder import FolderDataset, FolderItem, label_message
from segaudit.io._formats import (
    IMAGE_SUFFIXES,
    MASK_SUFFIXES,
    PROBS_SUFFIXES,
    check_layout,
    image_header,
    probe,
    read_label_mask,
)
from segaudit.io._problems import DatasetError, InputProblem, broken_link_message, problem_of

__all__ = ["model_folders", "scan_folder"]

PathLike = str | os.PathLike[str]
Shape = tuple[int, int]


def model_folders(probs_dirs: PathLike | Sequence[PathLike]) -> list[Path]:
    """Return the probability folder of each model, in order.

    Each folder given is one model, unless it holds only sub-folders (hidden
    entries aside): then each sub-folder, sorted by name, is one model. The
    models must hold the same stems; `scan_folder` reports a stem missing from
    one of them.

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
        entries = (
            [p for p in sorted(folder.iterdir()) if not p.name.startswith(".")]
            if folder.is_dir()
            else []
        )
        if entries and all(p.is_dir() for p in entries):
            folders.extend(entries)
        else:
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
) -> FolderDataset:
    """Match masks to probability files by stem and check them all before any work.

    Masks are read whole (they are small); probability files and images only up to
    their header. Files are matched by name without the suffix: ``2007_000032.png``
    with ``2007_000032.npy``. Hidden files and other suffixes are ignored, and sizes
    may differ between items (as in ADE20K).

    Parameters
    ----------
    masks_dir : str or PathLike
        Folder of ``.png`` / ``.tif`` / ``.tiff`` masks (see `read_label_mask`).
    probs_dir : str or PathLike, or a sequence of them
        Folder of ``.npy`` / ``.npz`` probabilities or logits (see `read_probs`).
        Several models (or folds): a sequence of folders, or a folder holding
        only sub-folders, one per model (see `model_folders`). Every model must
        have a file for each stem, of the same shape; the items are then
        loaded with one array per model (`LoadedItem.probs` a list).
    images_dir : str or PathLike, optional
        Folder of ``.png`` / ``.jpg`` / ``.jpeg`` originals; extra images are ignored.
    layout : {"KHW", "HWK"}, default="KHW"
        Axis order of the probability arrays.
    ignore_index : int, optional
        Label value of void pixels (255 in VOC and Cityscapes, or a class id such
        as 0), allowed in any mask.
    num_classes : int, optional
        Expected K. By default the number of `classes`, else the most common K.
    classes : ClassInfo, sequence of str, str or PathLike, optional
        Class names, or a class file for `read_class_names`.
    downsample : int, default=1
        The factor the audit will pool by: it must divide every image's H and W.
    from_logits : bool, optional
        Kept for `FolderDataset.load`, which refuses negative values unless this
        is True or None (unknown).

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
    info = _class_info(classes)
    if info is not None and num_classes is not None and info.num_classes != num_classes:
        expected = f"{info.num_classes}, the number of class names"
        raise param_error("num_classes", "scan_folder", expected, num_classes)
    scan = _Scan(Path(masks_dir), model_folders(probs_dir), layout, ignore_index, downsample)
    masks = _index(scan.masks_dir, "masks_dir", MASK_SUFFIXES)
    models = [_index(folder, "probs_dir", PROBS_SUFFIXES) for folder in scan.probs_dirs]
    if images_dir is not None:
        scan.images_dir = Path(images_dir)
        scan.images = _index(scan.images_dir, "images_dir", IMAGE_SUFFIXES)
    folders: list[tuple[Path, dict[str, list[Path]], tuple[str, ...]]]
    folders = [(scan.masks_dir, masks, MASK_SUFFIXES)]
    folders += [
        (d, index, PROBS_SUFFIXES) for d, index in zip(scan.probs_dirs, models, strict=True)
    ]
    for folder, found, kinds in folders:
        if not found:
            message = f"expected {' / '.join(kinds)} files; found none."
            scan.problems.append(InputProblem(folder, message))
    stems = set(masks).union(*models)
    for stem in sorted(stems & masks.keys()):
        for m, index in enumerate(models):
            files = index.get(stem, [])
            if len(masks[stem]) == len(files) == 1 and not _is_broken(files[0]):
                try:
                    scan.headers[m, stem] = probe(files[0])
                except (DatasetError, OSError) as exc:
                    scan.headers[m, stem] = problem_of(exc, files[0], stem)
    scan.reference_k(num_classes, info)
    items = [
        scan.check(stem, masks.get(stem, []), [probs.get(stem, []) for probs in models])
        for stem in sorted(stems)
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
    )


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


def _class_info(classes: ClassInfo | Sequence[str] | PathLike | None) -> ClassInfo | None:
    if classes is None or isinstance(classes, ClassInfo):
        return classes
    if isinstance(classes, (str, os.PathLike)):
        return read_class_names(classes)
    return ClassInfo(tuple(classes))


def _is_broken(path: Path) -> bool:
    return path.is_symlink() and not path.exists()


def _index(folder: Path, param: str, suffixes: tuple[str, ...]) -> dict[str, list[Path]]:
    """Map stem to the files of `folder` with one of `suffixes`, broken links included."""
    if not folder.is_dir():
        if folder.exists():
            message = param_error(param, "scan_folder", "a folder", f"the file '{folder}'")
            raise NotADirectoryError(str(message))
        message = param_error(param, "scan_folder", "an existing folder", f"'{folder}'")
        raise FileNotFoundError(str(message))
    found: dict[str, list[Path]] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in suffixes or path.name.startswith("."):
            continue
        if path.is_file() or _is_broken(path):
            found.setdefault(path.stem, []).append(path)
    return found


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
    images_dir: Path | None = None
    images: dict[str, list[Path]] | None = None
    headers: dict[tuple[int, str], Any] = field(default_factory=dict)
    problems: list[InputProblem] = field(default_factory=list)
    k: int | None = None
    k_reason: str = ""

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

    def check(self, stem: str, masks: list[Path], models: list[list[Path]]) -> FolderItem | None:
        """Record every problem of one stem (`models`: its files in each model's folder)."""
        start = len(self.problems)
        for paths in (masks, *models):
            if len(paths) > 1:
                names = ", ".join(p.name for p in paths)
                self.add(paths[0], stem, f"expected one file per stem; {names} share it.")
        present = [paths[0] for paths in models if paths]
        several = len(models) > 1
        for folder, probs in zip(self.probs_dirs, models, strict=True):
            if not probs and masks:
                expected = f"{folder / stem}.npy or .npz"
                what = "model's probability file" if several else "probability file"
                self.add(masks[0], stem, f"this mask has no {what}; expected {expected}.")
            elif not probs and several:
                expected = f"{folder / stem}.npy or .npz, like {present[0]}"
                self.add(present[0], stem, f"a model's file is missing; expected {expected}.")
        if not masks:
            expected = f"{self.masks_dir / stem}.png, .tif or .tiff"
            self.add(present[0], stem, f"these probabilities have no mask; expected {expected}.")
        for path in (*masks, *(p for paths in models for p in paths)):
            if _is_broken(path):
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
        return FolderItem(stem, masks[0], probs_paths[0], image, shape, probs_paths)

    def _check_mask(self, stem: str, path: Path) -> Shape | None:
        try:
            labels = read_label_mask(path)
        except (DatasetError, OSError) as exc:
            self.problems.append(problem_of(exc, path, stem))
            return None
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
        if shape is not None and (h, w) != shape:
            other = "HWK" if self.layout == "KHW" else "KHW"
            hint = f"; with layout={other!r} they match" if _khw(raw, other)[1:] == shape else ""
            expected = f"{shape[0]}x{shape[1]} like the mask {mask.name}"
            self.add(path, stem, f"expected size {expected}; got {h}x{w} ({read_as}){hint}.")

    def _check_image(self, stem: str, mask: Path, shape: Shape | None) -> Path | None:
        if self.images is None or self.images_dir is None:
            return None
        found = self.images.get(stem, [])
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
