"""Read masks, probabilities and images from folders; report every input problem up front."""

from __future__ import annotations

import os
import struct
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from segaudit._typing import FloatArray, IntArray
from segaudit.io._classes import ClassInfo, read_class_names

__all__ = [
    "DatasetError",
    "FolderDataset",
    "FolderItem",
    "InputProblem",
    "LoadedItem",
    "read_image",
    "read_label_mask",
    "read_probs",
    "scan_folder",
]

PathLike = str | os.PathLike[str]
Shape = tuple[int, int]
RGBArray = npt.NDArray[np.uint8]
_NPZ_KEYS = ("probs", "pred_probs", "logits", "arr_0")
_MASKS, _PROBS, _IMAGES = (".png", ".tif", ".tiff"), (".npy", ".npz"), (".png", ".jpg", ".jpeg")
_MASK_MODES = ("1", "L", "P", "I;16", "I;16L", "I;16B", "I;16N", "I")
_IMAGE_MODES = ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "CMYK", "YCbCr")
_ERRORS = (OSError, ValueError, EOFError, SyntaxError, struct.error, zipfile.BadZipFile, zlib.error)


@dataclass(frozen=True)
class InputProblem:
    """One problem with the input files, naming the file at fault.

    Parameters
    ----------
    path : Path
        The file (or folder) at fault.
    message : str
        What was expected and what was found.
    stem : str, optional
        The item it belongs to; None when it concerns no single item (an empty folder).
    """

    path: Path
    message: str
    stem: str | None = None

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class DatasetError(ValueError):
    """Input files that cannot be used; the message lists every problem, one per line.

    Parameters
    ----------
    problems : sequence of InputProblem
        Kept as the `problems` attribute.
    header : str, optional
        First line of the message; by default the number of problems.
    """

    def __init__(self, problems: Sequence[InputProblem], header: str | None = None) -> None:
        self.problems, self.header = tuple(problems), header
        lines = [str(p) for p in self.problems]
        if header is None and len(lines) == 1:
            super().__init__(lines[0])
        else:
            head = header or f"{len(lines)} input problems"
            super().__init__("\n  ".join([f"{head}:", *lines]))

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.problems, self.header))


def _fail(path: Path, message: str) -> DatasetError:
    return DatasetError([InputProblem(path, message)])


def _pillow() -> Any:
    try:
        from PIL import Image
    except ImportError as exc:
        message = "Reading PNG, TIFF and JPEG files needs Pillow: pip install 'segaudit[io]'"
        raise ImportError(message) from exc
    return Image


def read_label_mask(path: PathLike) -> IntArray:
    """Read a mask of class ids from a PNG or TIFF file.

    Parameters
    ----------
    path : str or PathLike
        A single-channel PNG (grayscale ``L``, 16-bit ``I;16``, ``I``, or palette ``P``,
        whose palette index is the class id, as in Pascal VOC) or a TIFF (read with
        tifffile when installed, which keeps any integer dtype, else with Pillow).

    Returns
    -------
    ndarray of shape (H, W)
        Integer class ids (uint8, uint16 or int32, as stored). Void values such as 255
        are returned as they are.

    Raises
    ------
    DatasetError
        If the file is corrupt, has colour channels, or holds non-integer values.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> from PIL import Image
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "2007_000032.png"
    >>> img = Image.fromarray(np.array([[0, 15, 255]], np.uint8))
    >>> img.putpalette([0, 0, 0, 128, 0, 0] * 128)  # now a VOC-like palette image
    >>> img.save(p)
    >>> read_label_mask(p)
    array([[  0,  15, 255]], dtype=uint8)
    """
    path = Path(path)
    arr = _read_tiff(path) if path.suffix.lower() in (".tif", ".tiff") else _read_pil_mask(path)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim != 2:
        raise _fail(
            path,
            "expected a single-channel (H, W) mask of class ids (palette or "
            f"grayscale); got an array of shape {arr.shape}.",
        )
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    if arr.dtype.kind not in "ui":
        raise _fail(path, f"expected integer class ids in the mask; got {arr.dtype} values.")
    return arr.astype(arr.dtype.newbyteorder("="), copy=False)


def _read_pil_mask(path: Path) -> np.ndarray:
    Image = _pillow()
    try:
        with Image.open(path) as img:
            mode = img.mode
            arr = np.asarray(img) if mode in _MASK_MODES else None
    except FileNotFoundError:
        raise
    except _ERRORS as exc:
        reason = f"cannot read the mask, the file is corrupt or not an image ({exc})."
        raise _fail(path, reason) from exc
    if arr is None:
        raise _fail(
            path,
            "expected a mask of single-channel class ids (palette 'P' or grayscale "
            f"'L', 'I;16', 'I'); got a {mode!r} image. Convert colour masks to ids first.",
        )
    return arr


def _read_tiff(path: Path) -> np.ndarray:
    try:
        import tifffile
    except ImportError:
        return _read_pil_mask(path)
    try:
        arr = np.asarray(tifffile.imread(path))
    except FileNotFoundError:
        raise
    except _ERRORS as exc:  # e.g. LZW without imagecodecs: Pillow can still decode it
        first = str(exc)
    else:
        if arr.size:
            return arr
        first = "no image data"
    try:
        return _read_pil_mask(path)
    except DatasetError as exc:
        second = exc.__cause__ or exc.problems[0].message
        reason = f"cannot read the TIFF, the file is corrupt (tifffile: {first}; Pillow: {second})."
        raise _fail(path, reason) from exc


def read_probs(path: PathLike, *, layout: str = "KHW") -> FloatArray:
    """Read one image's class probabilities or logits from a ``.npy`` or ``.npz`` file.

    Parameters
    ----------
    path : str or PathLike
        A ``.npy`` file (memory-mapped, read-only, so nothing is read before it is used),
        or a ``.npz`` holding a single array or exactly one of the keys ``probs``,
        ``pred_probs``, ``logits`` or ``arr_0``.
    layout : {"KHW", "HWK"}, default="KHW"
        Axis order of the stored array.

    Returns
    -------
    ndarray of shape (K, H, W)
        float16, float32 or float64 as stored; for ``"HWK"`` a transposed view.

    Raises
    ------
    DatasetError
        If the file is corrupt or truncated, holds no float array with 3 axes, or the
        ``.npz`` keys are ambiguous.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.npz"
    >>> np.savez(p, logits=np.zeros((4, 5, 21), np.float16))
    >>> read_probs(p, layout="HWK").shape
    (21, 4, 5)
    """
    _check_layout(layout, "read_probs")
    path = Path(path)
    _, key = _probe(path)
    try:
        if key is None:
            arr = np.load(path, mmap_mode="r")
        else:
            with np.load(path) as npz:
                arr = npz[key]
    except FileNotFoundError:
        raise
    except _ERRORS as exc:
        raise _fail(path, f"cannot read the probabilities ({exc}).") from exc
    return arr if layout == "KHW" else np.moveaxis(arr, -1, 0)


def _check_layout(layout: str, func: str) -> None:
    if layout not in ("KHW", "HWK"):
        raise ValueError(
            f"The 'layout' parameter of {func} must be 'KHW' or 'HWK'. Got {layout!r} instead."
        )


def _probe(path: Path) -> tuple[tuple[int, ...], str | None]:
    """Read only the header: the stored shape, and the array's key in a ``.npz``."""
    suffix, key = path.suffix.lower(), None
    if suffix not in _PROBS:
        raise _fail(path, f"expected a .npy or .npz file; got suffix {suffix!r}.")
    try:
        if suffix == ".npy":
            with open(path, "rb") as fh:
                shape, dtype, offset = _npy_header(fh)
            available = path.stat().st_size - offset
        else:
            with zipfile.ZipFile(path) as zf:
                names = {n.removesuffix(".npy"): n for n in zf.namelist()}
                key = _pick_key(list(names), path)
                with zf.open(names[key]) as fh:
                    shape, dtype, offset = _npy_header(fh)
                available = zf.getinfo(names[key]).file_size - offset
    except (FileNotFoundError, DatasetError):
        raise
    except _ERRORS as exc:
        raise _fail(path, f"cannot read the {suffix} file, it is corrupt ({exc}).") from exc
    if dtype.kind != "f" or dtype.itemsize not in (2, 4, 8):
        raise _fail(path, f"expected float16, float32 or float64 probabilities; got {dtype}.")
    if len(shape) != 3:
        raise _fail(path, f"expected a 3-D array (K, H, W) or (H, W, K); got shape {shape}.")
    needed = int(np.prod(shape)) * dtype.itemsize
    if available < needed:
        raise _fail(
            path,
            f"the file is truncated: shape {shape} of {dtype} needs {needed} bytes "
            f"of data; got {available}.",
        )
    return shape, key


def _npy_header(fh: Any) -> tuple[tuple[int, ...], np.dtype, int]:
    fmt = np.lib.format
    version = fmt.read_magic(fh)
    if version not in ((1, 0), (2, 0)):
        raise ValueError(f"unsupported .npy format version {version}")
    read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
    shape, _, dtype = read(fh)
    return tuple(shape), dtype, fh.tell()


def _pick_key(keys: list[str], path: Path) -> str:
    known = [k for k in _NPZ_KEYS if k in keys]
    if len(keys) == 1 or len(known) == 1:
        return keys[0] if len(keys) == 1 else known[0]
    raise _fail(
        path,
        f"expected a single array or exactly one of the keys {', '.join(_NPZ_KEYS)}; "
        f"got keys {keys}.",
    )


def read_image(path: PathLike) -> RGBArray:
    """Read an original image (PNG or JPEG, colour or grayscale) for overlays.

    Parameters
    ----------
    path : str or PathLike
        An 8-bit image; alpha is dropped, grayscale and palette are expanded.

    Returns
    -------
    ndarray of shape (H, W, 3), uint8

    Raises
    ------
    DatasetError
        If the file is corrupt, or not 8-bit (e.g. 16-bit grayscale).
    """
    path = Path(path)
    Image = _pillow()
    try:
        with Image.open(path) as img:
            mode = img.mode
            rgb = np.asarray(img.convert("RGB")) if mode in _IMAGE_MODES else None
    except FileNotFoundError:
        raise
    except _ERRORS as exc:
        raise _fail(path, f"cannot read the image, the file is corrupt ({exc}).") from exc
    if rgb is None:
        raise _fail(path, f"expected an 8-bit colour or grayscale image; got mode {mode!r}.")
    return rgb


@dataclass(frozen=True)
class FolderItem:
    """The files of one matched item, and the (H, W) size of its mask."""

    stem: str
    mask_path: Path
    probs_path: Path
    image_path: Path | None
    shape: tuple[int, int]


class LoadedItem(NamedTuple):
    """One loaded item: labels (H, W), probabilities (K, H, W), image (H, W, 3) or None."""

    stem: str
    labels: IntArray
    probs: FloatArray
    image: RGBArray | None


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
    """

    items: tuple[FolderItem, ...]
    problems: tuple[InputProblem, ...] = ()
    num_classes: int | None = None
    layout: str = "KHW"
    ignore_index: int | None = None
    classes: ClassInfo | None = None

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[LoadedItem]:
        """Load the items one after another; only one is held at a time."""
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

    def load(self, i: int) -> LoadedItem:
        """Read item `i`: stem, labels (H, W), probabilities (K, H, W), image or None."""
        if self.problems:
            raise DatasetError(
                self.problems,
                "call raise_if_problems() or skip_bad() first; "
                f"{len(self.problems)} input problems",
            )
        item = self.items[i]
        labels = read_label_mask(item.mask_path)
        probs = read_probs(item.probs_path, layout=self.layout)
        if labels.shape != item.shape or probs.shape != (self.num_classes, *item.shape):
            raise _fail(
                item.mask_path,
                "the files changed after scan_folder: expected labels "
                f"{item.shape} and probabilities {(self.num_classes, *item.shape)}; "
                f"got {labels.shape} and {probs.shape}.",
            )
        image = None if item.image_path is None else read_image(item.image_path)
        return LoadedItem(item.stem, labels, probs, image)


def scan_folder(
    masks_dir: PathLike,
    probs_dir: PathLike,
    *,
    images_dir: PathLike | None = None,
    layout: str = "KHW",
    ignore_index: int | None = None,
    num_classes: int | None = None,
    classes: ClassInfo | Sequence[str] | PathLike | None = None,
) -> FolderDataset:
    """Match masks to probability files by stem and check them all before any work.

    Masks are read whole (they are small); probability files only up to their header.
    Files are matched by name without the suffix: ``2007_000032.png`` with
    ``2007_000032.npy``. Hidden files and other suffixes are ignored, and sizes may
    differ between items (as in ADE20K).

    Parameters
    ----------
    masks_dir : str or PathLike
        Folder of ``.png`` / ``.tif`` / ``.tiff`` masks (see `read_label_mask`).
    probs_dir : str or PathLike
        Folder of ``.npy`` / ``.npz`` probabilities or logits (see `read_probs`).
    images_dir : str or PathLike, optional
        Folder of ``.png`` / ``.jpg`` / ``.jpeg`` originals; extra images are ignored.
    layout : {"KHW", "HWK"}, default="KHW"
        Axis order of the probability arrays.
    ignore_index : int, optional
        Label value of void pixels (255 in VOC and Cityscapes), allowed in any mask.
    num_classes : int, optional
        Expected K. By default the number of `classes`, else the most common K.
    classes : ClassInfo, sequence of str, str or PathLike, optional
        Class names, or a class file for `read_class_names`.

    Returns
    -------
    FolderDataset
        Its `problems` record, each with its file: masks without probabilities and
        the reverse, several files for one stem, unreadable files, size mismatches,
        K differing from the reference, and labels outside ``0..K-1`` that are not
        `ignore_index`.

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
    _check_layout(layout, "scan_folder")
    for name, value, low in (("ignore_index", ignore_index, None), ("num_classes", num_classes, 1)):
        if value is not None and (
            not isinstance(value, int)
            or isinstance(value, bool)
            or (low is not None and value < low)
        ):
            kind = "an int" if low is None else f"an int >= {low}"
            raise ValueError(
                f"The {name!r} parameter of scan_folder must be {kind} or None. "
                f"Got {value!r} instead."
            )
    info = _class_info(classes)
    if info is not None and num_classes is not None and info.num_classes != num_classes:
        raise ValueError(
            f"The 'num_classes' parameter of scan_folder must match the "
            f"{info.num_classes} class names. Got {num_classes} instead."
        )
    scan = _Scan(Path(masks_dir), Path(probs_dir), layout, ignore_index)
    masks = _index(scan.masks_dir, "masks_dir", _MASKS)
    probs = _index(scan.probs_dir, "probs_dir", _PROBS)
    if images_dir is not None:
        scan.images_dir = Path(images_dir)
        scan.images = _index(scan.images_dir, "images_dir", _IMAGES)
    for folder, found, kinds in ((scan.masks_dir, masks, _MASKS), (scan.probs_dir, probs, _PROBS)):
        if not found:
            message = f"expected {' / '.join(kinds)} files; found none."
            scan.problems.append(InputProblem(folder, message))
    for stem in sorted(masks.keys() & probs.keys()):
        if len(masks[stem]) == len(probs[stem]) == 1:
            try:
                scan.headers[stem] = _probe(probs[stem][0])
            except (DatasetError, OSError) as exc:
                scan.headers[stem] = _problem(exc, probs[stem][0], stem)
    scan.reference_k(num_classes, info)
    items = [
        scan.check(stem, masks.get(stem, []), probs.get(stem, []))
        for stem in sorted(masks.keys() | probs.keys())
    ]
    return FolderDataset(
        items=tuple(item for item in items if item is not None),
        problems=tuple(scan.problems),
        num_classes=scan.k,
        layout=layout,
        ignore_index=ignore_index,
        classes=info,
    )


def _class_info(classes: ClassInfo | Sequence[str] | PathLike | None) -> ClassInfo | None:
    if classes is None or isinstance(classes, ClassInfo):
        return classes
    if isinstance(classes, (str, os.PathLike)):
        return read_class_names(classes)
    return ClassInfo(tuple(classes))


def _index(folder: Path, param: str, suffixes: tuple[str, ...]) -> dict[str, list[Path]]:
    if not folder.is_dir():
        if folder.exists():
            raise NotADirectoryError(
                f"The {param!r} parameter of scan_folder must be a folder. "
                f"Got the file '{folder}' instead."
            )
        raise FileNotFoundError(
            f"The {param!r} parameter of scan_folder must be an existing "
            f"folder. Got '{folder}', which does not exist."
        )
    found: dict[str, list[Path]] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in suffixes and not path.name.startswith(".") and path.is_file():
            found.setdefault(path.stem, []).append(path)
    return found


def _problem(exc: DatasetError | OSError, path: Path, stem: str) -> InputProblem:
    message = exc.problems[0].message if isinstance(exc, DatasetError) else str(exc)
    return InputProblem(path, message, stem)


def _khw(shape: tuple[int, ...], layout: str) -> tuple[int, int, int]:
    return (shape[0], shape[1], shape[2]) if layout == "KHW" else (shape[2], shape[0], shape[1])


@dataclass
class _Scan:
    """Settings and results of one `scan_folder` call."""

    masks_dir: Path
    probs_dir: Path
    layout: str
    ignore_index: int | None
    images_dir: Path | None = None
    images: dict[str, list[Path]] | None = None
    headers: dict[str, Any] = field(default_factory=dict)
    problems: list[InputProblem] = field(default_factory=list)
    k: int | None = None
    k_reason: str = ""

    def reference_k(self, num_classes: int | None, info: ClassInfo | None) -> None:
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

    def check(self, stem: str, masks: list[Path], probs: list[Path]) -> FolderItem | None:
        """Record every problem of one stem; return its item if it has none."""
        start = len(self.problems)
        for paths in (masks, probs):
            if len(paths) > 1:
                names = ", ".join(p.name for p in paths)
                self.add(paths[0], stem, f"expected one file per stem; {names} share it.")
        if not probs:
            expected = f"{self.probs_dir / stem}.npy or .npz"
            self.add(masks[0], stem, f"this mask has no probability file; expected {expected}.")
        if not masks:
            expected = f"{self.masks_dir / stem}.png, .tif or .tiff"
            self.add(probs[0], stem, f"these probabilities have no mask; expected {expected}.")
        if len(self.problems) > start:
            return None
        shape = self._check_mask(stem, masks[0])
        self._check_probs(stem, probs[0], shape, masks[0])
        image = self._check_image(stem, masks[0], shape)
        if len(self.problems) > start or shape is None:
            return None
        return FolderItem(stem, masks[0], probs[0], image, shape)

    def _check_mask(self, stem: str, path: Path) -> Shape | None:
        try:
            labels = read_label_mask(path)
        except (DatasetError, OSError) as exc:
            self.problems.append(_problem(exc, path, stem))
            return None
        if self.k is not None:
            bad = (labels < 0) | (labels >= self.k)
            if self.ignore_index is not None:
                bad &= labels != self.ignore_index
            if bad.any():
                self.add(path, stem, self._label_message(labels[bad], self.k))
        return (labels.shape[0], labels.shape[1])

    def _label_message(self, bad: np.ndarray, k: int) -> str:
        values = np.unique(bad)
        shown = ", ".join(str(v) for v in values[:5]) + (", ..." if len(values) > 5 else "")
        void = "" if self.ignore_index is None else f" or ignore_index={self.ignore_index}"
        hint = ""
        if self.ignore_index is None and 255 in values:
            hint = "; pass ignore_index=255 if it marks void pixels"
        return (
            f"expected labels 0..{k - 1}{void} ({self.k_reason}); got {shown} "
            f"in {bad.size} pixels{hint}."
        )

    def _check_probs(self, stem: str, path: Path, shape: Shape | None, mask: Path) -> None:
        header = self.headers[stem]
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
            with _pillow().open(found[0]) as img:
                size = (img.height, img.width)
        except _ERRORS as exc:
            self.add(found[0], stem, f"cannot read the image, the file is corrupt ({exc}).")
            return None
        if shape is not None and size != shape:
            expected = f"{shape[0]}x{shape[1]} like the mask {mask.name}"
            self.add(found[0], stem, f"expected size {expected}; got {size[0]}x{size[1]}.")
        return found[0]
