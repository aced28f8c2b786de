"""Issue masks written straight to disk (``out=``), atomically: ``.npy`` or zarr.

The one home of publishing a mask at `out`: the in-memory drivers fill a
reserved memmap (:func:`mask_output`), the dask driver lets its workers store
into a zarr folder; both end in :func:`publish_zarr` for a ``.zarr`` target.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from segaudit._typing import StoredMask, StrPath
from segaudit._validation import param_error
from segaudit.io._atomic import _umask
from segaudit.io._space import as_disk_full, reserved_memmap

if TYPE_CHECKING:
    import zarr

__all__ = ["check_output", "mask_output", "output_kind", "publish_zarr"]


def output_kind(out: StrPath, func: str) -> Literal["npy", "zarr"]:
    """Classify an ``out=`` target of `func`: ``"npy"`` or ``"zarr"``; anything else is an error.

    Examples
    --------
    >>> output_kind("masks/issues.zarr/", "f")
    'zarr'
    >>> output_kind("issues.png", "f")
    Traceback (most recent call last):
    ...
    ValueError: The 'out' parameter of f must be a path ending in '.npy' or '.zarr'. Got 'issues.png' instead.
    """  # noqa: E501
    name = str(out)
    if name.endswith(".npy"):
        return "npy"
    if name.rstrip("/").endswith(".zarr"):
        return "zarr"
    raise param_error("out", func, "a path ending in '.npy' or '.zarr'", repr(out))


def check_output(out: StrPath, func: str) -> Literal["npy", "zarr"]:
    """Validate `out` before any work: its kind (see :func:`output_kind`) and its folder."""
    kind = output_kind(out, func)
    parent = Path(out).parent
    if not parent.exists():
        raise FileNotFoundError(f"The folder of 'out' does not exist: {parent}")
    return kind


class MaskOutput:
    """The writable memmap of :func:`mask_output`, then (`result`) the published mask."""

    def __init__(self, array: np.memmap) -> None:
        self.array = array
        self._result: StoredMask | None = None

    @property
    def result(self) -> StoredMask:
        """The mask published at `out`, opened read-only (once the ``with`` block is done)."""
        if self._result is None:
            raise RuntimeError("the mask is published when the 'with' block of mask_output ends")
        return self._result


@contextlib.contextmanager
def mask_output(out: StrPath, shape: tuple[int, ...], *, func: str) -> Iterator[MaskOutput]:
    """Yield a writable bool array of `shape` on disk; publish it at `out` on success.

    The array is a memmap in a temporary file beside `out`, whose disk space is
    reserved first (a full disk raises :class:`~segaudit.io._space.DiskFullError`
    instead of killing the process with SIGBUS). On success a ``.npy`` target
    is renamed into place, and a ``.zarr`` target is written to a temporary
    folder and renamed; on an exception nothing appears at `out` and no
    temporary file is left. After the block, the context value's ``result``
    attribute holds the final array opened read-only.
    """
    final = Path(out)
    kind = check_output(final, func)
    fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.", suffix=".npy.part")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        os.chmod(tmp_path, 0o666 & ~_umask())
        what = f"the issue mask {final.name}"
        holder = MaskOutput(reserved_memmap(tmp_path, dtype=np.bool_, shape=shape, what=what))
        yield holder
        holder.array.flush()
        if kind == "npy":
            del holder.array
            os.replace(tmp_path, final)
            holder._result = np.load(final, mmap_mode="r")
        else:
            mask = holder.array
            holder._result = publish_zarr(
                final, mask.shape, mask.nbytes, partial(_copy_images, mask)
            )
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()


def _copy_images(mask: np.ndarray, target: zarr.Array[Any]) -> None:
    """Copy `mask` into the zarr array `target`, image by image."""
    for i in range(mask.shape[0]):
        target[i] = mask[i]


def publish_zarr(
    final: Path, shape: tuple[int, ...], nbytes: int, write: Callable[[zarr.Array[Any]], None]
) -> zarr.Array[Any]:
    """Create a bool zarr array (one chunk per image), `write` it, then rename it onto `final`.

    The array is built in a hidden ``.{name}.part`` folder beside `final`; on
    an error it is removed (a full disk becomes a
    :class:`~segaudit.io._space.DiskFullError` of `nbytes`) and `final` is left
    as it was. A previous `final` is moved aside, then removed. Returns the
    published array opened read-only.
    """
    try:
        import zarr
    except ImportError as err:
        raise ImportError("Writing masks to zarr needs zarr: pip install 'segaudit[zarr]'") from err
    part = final.with_name(f".{final.name}.part")
    old = final.with_name(f".{final.name}.old")
    for stale in (part, old):
        if stale.exists():
            shutil.rmtree(stale)
    chunks = (1, *shape[1:])  # one chunk per image: concurrent writers never share a chunk
    try:
        target = zarr.create_array(store=str(part), shape=shape, chunks=chunks, dtype=bool)
        write(target)
    except BaseException as err:
        shutil.rmtree(part, ignore_errors=True)
        if isinstance(err, OSError):
            raise as_disk_full(err, part, f"the issue mask {final.name}", nbytes) from err
        raise
    if final.exists():
        os.replace(final, old)
    os.replace(part, final)
    shutil.rmtree(old, ignore_errors=True)
    return zarr.open_array(str(final), mode="r")
