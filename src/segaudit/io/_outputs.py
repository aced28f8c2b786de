"""Issue masks written straight to disk (``out=``), atomically: ``.npy`` or zarr."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from segaudit.io._atomic import _umask
from segaudit.io._space import as_disk_full, reserved_memmap

__all__ = ["mask_output", "output_kind"]


def output_kind(out: Any) -> str:
    """Classify an ``out=`` target: ``"npy"`` or ``"zarr"``; anything else is an error."""
    name = str(out)
    if name.endswith(".npy"):
        return "npy"
    if name.rstrip("/").endswith(".zarr"):
        return "zarr"
    raise ValueError(
        f"The 'out' parameter must be a path ending in '.npy' or '.zarr'. Got {out!r} instead."
    )


@contextlib.contextmanager
def mask_output(out: str | os.PathLike[str], shape: tuple[int, ...]) -> Iterator[Any]:
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
    kind = output_kind(final)
    if not final.parent.exists():
        raise FileNotFoundError(f"The folder of 'out' does not exist: {final.parent}")
    fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.", suffix=".npy.part")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        os.chmod(tmp_path, 0o666 & ~_umask())
        what = f"the issue mask {final.name}"
        holder = _Output(reserved_memmap(tmp_path, dtype=np.bool_, shape=shape, what=what))
        yield holder
        holder.array.flush()
        if kind == "npy":
            del holder.array
            os.replace(tmp_path, final)
            holder.result = np.load(final, mmap_mode="r")
        else:
            holder.result = _publish_zarr(holder.array, final)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()


class _Output:
    """The writable array, then the published result."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = array
        self.result: Any = None


def _publish_zarr(mask: np.ndarray, final: Path) -> Any:
    """Copy `mask` into a zarr array at a temporary path, then rename it onto `final`."""
    try:
        import zarr
    except ImportError as err:
        raise ImportError("Writing masks to zarr needs zarr: pip install 'segaudit[zarr]'") from err
    part = final.with_name(f".{final.name}.part")
    if part.exists():
        shutil.rmtree(part)
    chunks = (1, *mask.shape[1:])
    try:
        z = zarr.create_array(store=str(part), shape=mask.shape, chunks=chunks, dtype=bool)
        for i in range(mask.shape[0]):
            z[i] = mask[i]
    except BaseException as err:
        shutil.rmtree(part, ignore_errors=True)
        if isinstance(err, OSError):
            raise as_disk_full(err, part, f"the issue mask {final.name}", mask.nbytes) from err
        raise
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old")
        os.replace(final, old)
    os.replace(part, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return zarr.open_array(str(final), mode="r")
