"""One probability array for a whole split: ``(N, K, H, W)`` in ``.npy``, zarr or ``.pt``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from segaudit._optional import require
from segaudit._typing import FloatArray
from segaudit.io._formats import ERRORS, check_layout, load_pt
from segaudit.io._problems import DatasetError, fail

__all__ = ["SplitProbs", "ids_beside", "is_split_array", "open_split", "read_ids", "read_split_row"]

PathLike = str | os.PathLike[str]
SPLIT_SUFFIXES = (".npy", ".pt", ".zarr")
_KEYS = ("probs", "pred_probs", "logits")


def is_split_array(path: Path) -> bool:
    """Whether `path` names a whole-split array (a file, or a zarr store) rather than a folder."""
    if path.is_dir():
        return path.suffix.lower() == ".zarr" or any(
            (path / name).exists() for name in (".zarray", ".zgroup", "zarr.json")
        )
    return path.exists() or path.is_symlink()


@dataclass(frozen=True)
class SplitProbs:
    """An opened whole-split array: where it is, its stored shape and the id of each row."""

    path: Path
    shape: tuple[int, ...]
    ids: tuple[str, ...]


def _open(path: Path) -> tuple[Any, list[str] | None]:
    """Return the (N, ...) array (memory-mapped or lazy) and the ids stored with it, if any."""
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return np.load(path, mmap_mode="r"), None
    if suffix == ".pt":
        return load_pt(path), None
    if suffix == ".zarr" or path.is_dir():
        zarr = require("zarr", "zarr", "Reading zarr probabilities")
        store = zarr.open(str(path), mode="r")
        if hasattr(store, "shape"):
            return store, None
        keys = [k for k in _KEYS if k in store]
        if len(keys) != 1:
            raise fail(path, f"expected a zarr array, or a group with one of {', '.join(_KEYS)}.")
        ids = [str(v) for v in store["ids"][:]] if "ids" in store else None
        return store[keys[0]], ids
    raise fail(path, f"expected a .npy, .pt or .zarr probability array; got suffix {suffix!r}.")


def read_ids(path: Path) -> list[str]:
    """Ids one a line (blank lines and ``#`` comments skipped), or a ``.npy`` of strings."""
    if path.suffix.lower() == ".npy":
        return [str(v) for v in np.load(path, allow_pickle=False).ravel()]
    lines = (line.split("#", 1)[0].strip() for line in path.read_text("utf-8-sig").splitlines())
    return [line for line in lines if line]


def ids_beside(path: Path) -> Path | None:
    """Return the ids file beside a split array (``probs.ids.txt`` or ``.ids.npy``), if any."""
    for suffix in (".ids.txt", ".ids.npy"):
        candidate = path.with_suffix(suffix)
        if candidate.is_file():
            return candidate
    return None


def open_split(path: PathLike, order: PathLike | None = None) -> SplitProbs:
    r"""Open a whole-split probability array and name its rows.

    Parameters
    ----------
    path : str or PathLike
        ``(N, K, H, W)`` (or ``(N, H, W, K)``): a ``.npy`` (memory-mapped), a
        zarr array or group (with an array ``probs``, ``pred_probs`` or
        ``logits``, and optionally ``ids``), or a ``.pt`` tensor.
    order : str or PathLike, optional
        The id of each row, one a line (or a ``.npy`` of strings). By default
        the ids stored in a zarr group, else the file beside `path`:
        ``<name>.ids.txt`` or ``<name>.ids.npy``.

    Raises
    ------
    DatasetError
        If the array cannot be read, is not 4-D float, or has no ids, or ids
        that are not N unique names.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> np.save(root / "probs.npy", np.zeros((2, 3, 4, 5), np.float32))
    >>> _ = (root / "probs.ids.txt").write_text("b\na\n")
    >>> split = open_split(root / "probs.npy")
    >>> split.shape, split.ids
    ((2, 3, 4, 5), ('b', 'a'))
    """
    path = Path(path)
    try:
        arr, stored = _open(path)
        ids_file = Path(order) if order is not None else ids_beside(path)
        ids = read_ids(ids_file) if ids_file is not None else stored
    except (FileNotFoundError, DatasetError):
        raise
    except (*ERRORS, RuntimeError, KeyError) as exc:
        raise fail(path, f"cannot read the probability array ({exc}).") from exc
    shape = tuple(int(n) for n in arr.shape)
    if np.dtype(arr.dtype).kind != "f" or len(shape) != 4:
        raise fail(path, f"expected a 4-D float array (N, K, H, W); got {arr.dtype} {shape}.")
    if ids is None:
        raise fail(
            path,
            f"expected the ids of its {shape[0]} rows: --order FILE (order=), or "
            f"{path.with_suffix('.ids.txt').name} beside it, one id a line.",
        )
    where = ids_file if ids_file is not None else path
    if len(ids) != shape[0]:
        raise fail(where, f"expected {shape[0]} ids, one per row of {path.name}; got {len(ids)}.")
    if len(set(ids)) != len(ids):
        twice = next(i for i in ids if ids.count(i) > 1)
        raise fail(where, f"expected each id once; got {twice!r} twice.")
    return SplitProbs(path, shape, tuple(ids))


def read_split_row(path: PathLike, row: int, *, layout: str = "KHW") -> FloatArray:
    """Read row `row` of a whole-split array as (K, H, W) (see `open_split`).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "probs.npy"
    >>> np.save(p, np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2))
    >>> read_split_row(p, 1)[0]
    array([[12., 13.],
           [14., 15.]], dtype=float32)
    """
    check_layout(layout, "read_split_row")
    path = Path(path)
    try:
        arr, _ = _open(path)
        one = np.asarray(arr[row])
    except (FileNotFoundError, DatasetError):
        raise
    except (*ERRORS, RuntimeError, KeyError) as exc:
        raise fail(path, f"cannot read row {row} of the probability array ({exc}).") from exc
    one = one.astype(np.float64) if one.dtype.itemsize > 8 else one
    if not one.dtype.isnative:
        one = one.astype(one.dtype.newbyteorder("="))
    return one if layout == "KHW" else np.moveaxis(one, -1, 0)
