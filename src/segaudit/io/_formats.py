"""Read one file: a mask of class ids, a probability array, an original image."""

from __future__ import annotations

import functools
import os
import pickle
import struct
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

from segaudit._optional import require
from segaudit._typing import FloatArray, IntArray
from segaudit._validation import param_error
from segaudit.io._labels import LabelMapping
from segaudit.io._problems import DatasetError, fail

__all__ = [
    "ERRORS",
    "IMAGE_MODES",
    "IMAGE_SUFFIXES",
    "MASK_SUFFIXES",
    "PROBS_SUFFIXES",
    "check_layout",
    "image_header",
    "probe",
    "read_image",
    "read_label_mask",
    "read_probs",
]

PathLike = str | os.PathLike[str]
RGBArray = npt.NDArray[np.uint8]
MASK_SUFFIXES = (".png", ".tif", ".tiff")
PROBS_SUFFIXES = (".npy", ".npz", ".pt")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
IMAGE_MODES = ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "CMYK", "YCbCr")
#: What a corrupt file may raise while being read.
ERRORS = (OSError, ValueError, EOFError, SyntaxError, struct.error, zipfile.BadZipFile, zlib.error)
_NPZ_KEYS = ("probs", "pred_probs", "logits", "arr_0")
_READ_PIECE = 1 << 18  # bytes read at a time from a .npz member
_MASK_MODES = ("1", "L", "P", "I;16", "I;16L", "I;16B", "I;16N", "I")


def _pillow() -> ModuleType:
    """``PIL.Image``, or an ImportError naming the extra."""
    return require("PIL.Image", "io", "Reading PNG, TIFF and JPEG files", package="Pillow")


def _native(arr: np.ndarray) -> np.ndarray:
    """Return `arr` in the machine's byte order (a copy only when it is not)."""
    return arr if arr.dtype.isnative else arr.astype(arr.dtype.newbyteorder("="))


def read_label_mask(path: PathLike, *, mapping: LabelMapping | None = None) -> IntArray:
    """Read a mask of class ids from a PNG or TIFF file.

    Parameters
    ----------
    path : str or PathLike
        A single-channel PNG (grayscale ``L``, 16-bit ``I;16``, ``I``, or palette ``P``,
        whose palette index is the class id, as in Pascal VOC) or a TIFF (read with
        tifffile when installed, which keeps any integer dtype, else with Pillow).
        An RGB (or RGBA) PNG is read only with a `mapping` that has a palette.
    mapping : LabelMapping, optional
        Turns colours into ids (through its palette) and stored ids into class ids
        (label map, reduce-zero-label) as the mask is read.

    Returns
    -------
    ndarray of shape (H, W)
        Integer class ids (uint8, uint16 or int32, as stored, in native byte order).
        Void values such as 255 are returned as they are.

    Raises
    ------
    DatasetError
        If the file is corrupt, has colour channels (without a palette to read
        them, or with colours missing from it and no ignore index), or holds
        non-integer values.

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
    colors = mapping is not None and mapping.palette is not None
    if path.suffix.lower() in (".tif", ".tiff"):
        arr = _read_tiff(path)
    else:
        arr = _read_pil_mask(path, colors=colors)
    if colors and arr.ndim == 3 and arr.shape[-1] in (3, 4):
        arr = _colors_to_ids(arr[..., :3], path, mapping)  # type: ignore[arg-type]
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim != 2:
        raise fail(
            path,
            "expected a single-channel (H, W) mask of class ids (palette or "
            f"grayscale); got an array of shape {arr.shape}.",
        )
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    if arr.dtype.kind not in "ui":
        raise fail(path, f"expected integer class ids in the mask; got {arr.dtype} values.")
    return _native(arr) if mapping is None else mapping.apply(_native(arr))


def _colors_to_ids(rgb: np.ndarray, path: Path, mapping: LabelMapping) -> np.ndarray:
    ids, unknown = mapping.colors_to_ids(rgb)
    if unknown and mapping.ignore_index is None:
        shown = ", ".join(str(list(c)) for c in unknown[:5]) + (", ..." if len(unknown) > 5 else "")
        raise fail(
            path,
            f"expected only the classes' colours in a colour mask; got {shown}. Add them to "
            "the classes file, or pass ignore_index to make them void.",
        )
    return ids


def _read_pil_mask(path: Path, *, colors: bool = False) -> np.ndarray:
    Image = _pillow()
    modes = (*_MASK_MODES, "RGB", "RGBA") if colors else _MASK_MODES
    try:
        with Image.open(path) as img:
            mode = img.mode
            arr = np.asarray(img) if mode in modes else None
    except FileNotFoundError:
        raise
    except ERRORS as exc:
        reason = f"cannot read the mask, the file is corrupt or not an image ({exc})."
        raise fail(path, reason) from exc
    if arr is None:
        raise fail(
            path,
            "expected a mask of single-channel class ids (palette 'P' or grayscale "
            f"'L', 'I;16', 'I'); got a {mode!r} image. For colour masks, give classes "
            "with colours (--classes).",
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
    except ERRORS as exc:  # e.g. LZW without imagecodecs: Pillow can still decode it
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
        raise fail(path, reason) from exc


def read_probs(path: PathLike, *, layout: str = "KHW") -> FloatArray:
    """Read one image's class probabilities or logits from a ``.npy``, ``.npz`` or ``.pt`` file.

    Parameters
    ----------
    path : str or PathLike
        A ``.npy`` file (memory-mapped, read-only, so nothing is read before it is used),
        or a ``.npz`` holding a single array or exactly one of the keys ``probs``,
        ``pred_probs``, ``logits`` or ``arr_0``, or a ``.pt`` file holding a tensor
        (or a dict with one of those keys), loaded with ``torch.load(weights_only=True)``,
        memory-mapped; bfloat16 becomes float32.
    layout : {"KHW", "HWK"}, default="KHW"
        Axis order of the stored array.

    Returns
    -------
    ndarray of shape (K, H, W)
        float16, float32 or float64 as stored, in native byte order (a big-endian
        file is read into memory and converted); float128 becomes float64. For
        ``"HWK"`` a transposed view.

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
    check_layout(layout, "read_probs")
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        arr = _read_npz(path)  # opened once, its header checked on the way
    else:
        probe(path)  # the header's checks and their errors
    try:
        if suffix == ".pt":
            arr = load_pt(path)
        elif suffix == ".npy":
            arr = np.load(path, mmap_mode="r")
        arr = arr.astype(np.float64) if arr.dtype.itemsize > 8 else _native(arr)
    except (FileNotFoundError, DatasetError):
        raise
    except (*ERRORS, RuntimeError) as exc:
        raise fail(path, f"cannot read the probabilities ({exc}).") from exc
    return arr if layout == "KHW" else np.moveaxis(arr, -1, 0)


def check_layout(layout: str, func: str) -> None:
    """Raise unless `layout` is ``"KHW"`` or ``"HWK"``."""
    if layout not in ("KHW", "HWK"):
        raise param_error("layout", func, "'KHW' or 'HWK'", repr(layout))


def probe(path: Path) -> tuple[tuple[int, ...], str | None]:
    """Read only the header: the stored shape, and the array's key in a ``.npz``."""
    suffix, key = path.suffix.lower(), None
    if suffix not in PROBS_SUFFIXES:
        raise fail(path, f"expected a .npy, .npz or .pt file; got suffix {suffix!r}.")
    try:
        if suffix == ".pt":
            arr = load_pt(path)
            shape, dtype, offset, available = arr.shape, arr.dtype, 0, arr.nbytes
        elif suffix == ".npy":
            with open(path, "rb") as fh:
                shape, _, dtype, offset = _npy_header(fh)
            available = path.stat().st_size - offset
        else:
            with zipfile.ZipFile(path) as zf:
                shape, key, _ = _npz_member(zf, path, read=False)
            return shape, key
    except (FileNotFoundError, DatasetError):
        raise
    except (*ERRORS, RuntimeError) as exc:  # torch raises RuntimeError on a corrupt file
        raise _corrupt(path, exc) from exc
    _check_header(path, shape, dtype, available)
    return shape, key


def _corrupt(path: Path, exc: BaseException) -> DatasetError:
    return fail(path, f"cannot read the {path.suffix.lower()} file, it is corrupt ({exc}).")


def _npz_member(
    zf: zipfile.ZipFile, path: Path, *, read: bool
) -> tuple[tuple[int, ...], str, np.ndarray | None]:
    """Check the header of a ``.npz``'s array; return its shape, key and (if `read`) data."""
    names = {n.removesuffix(".npy"): n for n in zf.namelist()}
    key = _pick_key(list(names), path)
    info = zf.getinfo(names[key])
    with zf.open(info) as fh:
        shape, fortran, dtype, offset = _npy_header(fh)
        _check_header(path, shape, dtype, info.file_size - offset)
        arr = None
        if read:
            arr = _stored_data(info, path, offset, shape, fortran, dtype)
            if arr is None:
                arr = _array_data(fh, path, shape, fortran, dtype)
    return shape, key, arr


_LOCAL_HEADER = struct.Struct("<4s5H3L2H")
"""A zip member's local header: signature, ..., name length, extra length (30 bytes)."""


@functools.cache
def _crc32() -> Callable[..., int]:
    """Return zlib-ng's ``crc32`` when it is installed, else zlib's: the same values.

    zlib-ng's uses the CPU's carry-less multiply (about 8x zlib 1.2's speed
    here); the check of a ``.npz`` member's CRC-32 was most of its reading time.
    """
    try:
        from zlib_ng import zlib_ng
    except ImportError:
        return zlib.crc32
    return zlib_ng.crc32


def _stored_data(
    info: zipfile.ZipInfo,
    path: Path,
    offset: int,
    shape: tuple[int, ...],
    fortran: bool,
    dtype: np.dtype,
) -> np.ndarray | None:
    """Read a stored (uncompressed) member's array straight into it; None for other members.

    One read into the array (zipfile would read into bytes, then copy), and the
    same check of the member's CRC-32 as zipfile's.
    """
    nbytes = int(np.prod(shape)) * dtype.itemsize
    plain = info.compress_type == zipfile.ZIP_STORED and not info.flag_bits & 1
    if not plain or info.file_size != offset + nbytes:
        return None
    flat = np.empty(int(np.prod(shape)), dtype)
    out = flat.data.cast("B")
    with open(path, "rb", buffering=0) as raw:
        raw.seek(info.header_offset)
        local = raw.read(_LOCAL_HEADER.size)
        if len(local) != _LOCAL_HEADER.size or local[:4] != b"PK\x03\x04":
            return None  # zipfile's own reading says what is wrong
        name_len, extra_len = _LOCAL_HEADER.unpack(local)[-2:]
        raw.seek(info.header_offset + _LOCAL_HEADER.size + name_len + extra_len)
        crc32 = _crc32()
        crc = crc32(raw.read(offset))  # the .npy header, parsed already
        pos = 0
        while pos < nbytes:
            got = raw.readinto(out[pos:])
            if not got:
                break
            pos += got
    if pos != nbytes:
        raise fail(path, f"cannot read the probabilities (got {pos} of {nbytes} bytes).")
    if crc32(out, crc) != info.CRC:
        raise fail(path, f"cannot read the probabilities (Bad CRC-32 for file {info.filename!r}).")
    return flat.reshape(shape[::-1]).T if fortran else flat.reshape(shape)


def _array_data(
    fh: Any, path: Path, shape: tuple[int, ...], fortran: bool, dtype: np.dtype
) -> np.ndarray:
    """Read the data that follows a checked ``.npy`` header (a writeable array).

    In pieces of :data:`_READ_PIECE` bytes, each copied once into the array.
    """
    flat = np.empty(int(np.prod(shape)), dtype)
    out = flat.view(np.uint8)
    pos = 0
    try:
        while pos < out.size:
            piece = fh.read(min(_READ_PIECE, out.size - pos))
            if not piece:
                break
            out[pos : pos + len(piece)] = np.frombuffer(piece, np.uint8)
            pos += len(piece)
    except (*ERRORS, RuntimeError) as exc:  # zipfile: a bad CRC, a damaged stream
        raise fail(path, f"cannot read the probabilities ({exc}).") from exc
    if pos != out.size:
        raise fail(path, f"cannot read the probabilities (got {pos} of {out.size} bytes).")
    return flat.reshape(shape[::-1]).T if fortran else flat.reshape(shape)


def _read_npz(path: Path) -> np.ndarray:
    """Read a ``.npz``'s array, opening it and parsing its header once; `probe`'s errors."""
    try:
        with zipfile.ZipFile(path) as zf:
            arr = _npz_member(zf, path, read=True)[2]
    except (FileNotFoundError, DatasetError):
        raise
    except (*ERRORS, RuntimeError) as exc:
        raise _corrupt(path, exc) from exc
    assert arr is not None
    return arr


def _check_header(path: Path, shape: tuple[int, ...], dtype: np.dtype, available: int) -> None:
    """Raise unless a stored array is float, 3-D and has all its bytes."""
    if dtype.kind != "f" or dtype.itemsize not in (2, 4, 8, 12, 16):
        raise fail(path, f"expected float16, float32 or float64 probabilities; got {dtype}.")
    if len(shape) != 3:
        raise fail(path, f"expected a 3-D array (K, H, W) or (H, W, K); got shape {shape}.")
    needed = int(np.prod(shape)) * dtype.itemsize
    if available < needed:
        raise fail(
            path,
            f"the file is truncated: shape {shape} of {dtype} needs {needed} bytes "
            f"of data; got {available}.",
        )


def load_pt(path: Path) -> np.ndarray:
    """Load a ``.pt`` tensor (or a dict holding one under a known key) as a numpy array.

    Only tensors and plain containers are unpickled (``weights_only=True``); the
    file is memory-mapped, so nothing is read before it is used (bfloat16,
    which numpy lacks, is converted to float32 in memory).
    """
    torch = require("torch", "torch", "Reading .pt files")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as exc:  # more than tensors and containers: not run
        first = str(exc).strip().splitlines()[0]
        raise fail(path, f"cannot read the .pt file with weights_only=True ({first}).") from exc
    if isinstance(obj, dict):
        tensors = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
        obj = tensors[_pick_key(list(tensors), path)] if tensors else None
    if not isinstance(obj, torch.Tensor):
        raise fail(path, f"expected a tensor in the .pt file; got {type(obj).__name__}.")
    tensor = obj.detach()
    if tensor.dtype == torch.bfloat16:
        tensor = tensor.float()
    arr: np.ndarray = tensor.numpy()
    return arr


def _npy_header(fh: Any) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """Return a ``.npy`` header's shape, Fortran order and dtype, and where the data starts."""
    fmt = np.lib.format
    version = fmt.read_magic(fh)
    if version not in ((1, 0), (2, 0)):
        raise ValueError(f"unsupported .npy format version {version}")
    read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
    shape, fortran, dtype = read(fh)
    return tuple(shape), bool(fortran), dtype, fh.tell()


def _pick_key(keys: list[str], path: Path) -> str:
    known = [k for k in _NPZ_KEYS if k in keys]
    if len(keys) == 1 or len(known) == 1:
        return keys[0] if len(keys) == 1 else known[0]
    raise fail(
        path,
        f"expected a single array or exactly one of the keys {', '.join(_NPZ_KEYS)}; "
        f"got keys {keys}.",
    )


def image_header(path: Path) -> tuple[int, int]:
    """Return an image's (H, W) from its header; raise unless `read_image` can read it.

    Raises
    ------
    DatasetError
        If the header is corrupt or the mode is not 8-bit (e.g. 16-bit grayscale).
    """
    try:
        with _pillow().open(path) as img:
            mode, size = img.mode, (img.height, img.width)
    except FileNotFoundError:
        raise
    except ERRORS as exc:
        raise fail(path, f"cannot read the image, the file is corrupt ({exc}).") from exc
    if mode not in IMAGE_MODES:
        raise fail(path, f"expected an 8-bit colour or grayscale image; got mode {mode!r}.")
    return size


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
            rgb = np.asarray(img.convert("RGB")) if mode in IMAGE_MODES else None
    except FileNotFoundError:
        raise
    except ERRORS as exc:
        raise fail(path, f"cannot read the image, the file is corrupt ({exc}).") from exc
    if rgb is None:
        raise fail(path, f"expected an 8-bit colour or grayscale image; got mode {mode!r}.")
    return rgb
