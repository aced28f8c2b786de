"""Disk space for memory-mapped files, reserved or written before they are mapped.

Writing to a page of a memory-mapped file whose blocks the file system cannot
allocate kills the process with SIGBUS: no exception, no clean-up. A memmap
segaudit writes through is therefore created by :func:`reserved_memmap`, which
allocates the file's blocks first (``posix_fallocate``, or writing zeros where
the file system does not support it); arrays that are complete before they go
to disk are appended to one file by :class:`ArrayFile` with plain writes, each
mapped only then. Both turn a full disk or quota into a :class:`DiskFullError` naming
the folder and the bytes needed, and leave no partial file.
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "ArrayFile",
    "DiskFullError",
    "as_disk_full",
    "reserve",
    "reserved_memmap",
]

# errors that mean "no room": full file system, quota, or an I/O error while allocating
SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG})
# posix_fallocate not supported by the file system (or the platform): write zeros instead
_UNSUPPORTED = frozenset({errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL, errno.ENOTSUP})
_ZEROS = 1 << 20


class DiskFullError(OSError):
    """Not enough disk space (or quota) for a file segaudit writes.

    An :class:`OSError` whose ``errno`` is the system's (``ENOSPC``, ``EDQUOT``
    or ``EIO``) and whose ``filename`` is the file that could not be written.

    Parameters
    ----------
    path : path
        The file that could not be written.
    what : str
        What it holds, e.g. ``"the issue mask"``.
    need : int
        Bytes it needs.
    code : int, default=errno.ENOSPC
        The system's error number.
    """

    def __init__(
        self, path: str | os.PathLike[str], what: str, need: int, code: int = errno.ENOSPC
    ) -> None:
        folder = Path(path).parent
        self.need = int(need)
        self.free = free_bytes(folder)
        free = "unknown" if self.free is None else f"{self.free}"
        self.message = (
            f"not enough free space in {folder} for {what}: need {self.need} bytes, "
            f"{free} free ({os.strerror(code)}; writing {path})"
        )
        super().__init__(code, self.message)
        self.filename = os.fspath(path)

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild,
            (self.__class__, self.errno, self.message, self.filename, self.need, self.free),
        )


def _rebuild(
    cls: type[DiskFullError], code: int, message: str, filename: str, need: int, free: int | None
) -> DiskFullError:
    """Unpickle a DiskFullError without touching the file system again."""
    err: DiskFullError = OSError.__new__(cls, code, message)
    OSError.__init__(err, code, message)
    err.message, err.filename, err.need, err.free = message, filename, need, free
    return err


def free_bytes(folder: str | os.PathLike[str]) -> int | None:
    """Bytes an unprivileged user may still write in `folder`, or None if unknown."""
    try:
        st = os.statvfs(folder)
    except (OSError, AttributeError):
        return None
    if st.f_blocks == 0:  # pseudo file systems report no size at all
        return None
    return int(st.f_bavail) * int(st.f_frsize)


def as_disk_full(err: OSError, path: str | os.PathLike[str], what: str, need: int) -> OSError:
    """Return a :class:`DiskFullError` for a space error, else `err` unchanged."""
    if isinstance(err, DiskFullError) or err.errno not in SPACE_ERRNOS:
        return err
    return DiskFullError(path, what, need, err.errno)


def reserve(path: str | os.PathLike[str], size: int, *, what: str, start: int = 0) -> None:
    """Allocate the blocks of bytes ``[start, size)`` of the existing file `path`.

    Data already in the file is kept; the file grows to `size` if shorter.
    After this, writing those bytes through a memory map cannot fail for lack
    of space.

    Raises
    ------
    DiskFullError
        When the file system (or a quota) cannot hold `size` bytes.
    """
    free = free_bytes(Path(path).parent)
    try:
        have = os.stat(path).st_blocks * 512
    except (OSError, AttributeError):
        have = 0
    if free is not None and size - have > free:
        raise DiskFullError(path, what, size)
    if size <= start:
        return
    fd = os.open(path, os.O_RDWR)
    try:
        try:
            _allocate(fd, start, size)
        finally:
            os.close(fd)
    except OSError as err:
        raise as_disk_full(err, path, what, size) from err


def _allocate(fd: int, start: int, size: int) -> None:
    """posix_fallocate where supported, else write zeros over ``[start, size)``."""
    fallocate = getattr(os, "posix_fallocate", None)
    if fallocate is not None:
        try:
            fallocate(fd, start, size - start)
            return
        except OSError as err:
            if err.errno not in _UNSUPPORTED:
                raise
    zeros = bytes(min(_ZEROS, size - start))
    pos = start
    while pos < size:
        pos += os.pwrite(fd, zeros[: min(len(zeros), size - pos)], pos)
    os.fsync(fd)  # a network file system reports a full disk only when the data leaves


def reserved_memmap(
    path: str | os.PathLike[str], *, dtype: Any, shape: tuple[int, ...], what: str
) -> np.memmap:
    """Create a zero-filled ``.npy`` memmap at `path` whose disk space is reserved.

    Parameters
    ----------
    path : path
        The new file (replaced if it exists).
    dtype, shape
        Of the array.
    what : str
        What it holds, for the error message.

    Raises
    ------
    DiskFullError
        When the space cannot be reserved; `path` is removed then.
    """
    path = Path(path)
    try:
        probe = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
        offset = int(probe.offset)
        size = offset + int(probe.nbytes)
        del probe  # nothing written yet: the file is a header and a hole
        reserve(path, size, what=what, start=offset)
        return np.lib.format.open_memmap(path, mode="r+")
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        if isinstance(err, OSError) and not isinstance(err, DiskFullError):
            size = int(np.prod(shape)) * np.dtype(dtype).itemsize
            raise as_disk_full(err, path, what, size) from err
        raise


ALIGN = mmap.ALLOCATIONGRANULARITY
"""Each array of an :class:`ArrayFile` starts at a multiple of this (a map starts there)."""


class ArrayFile:
    """A new file that whole arrays are appended to, each mapped once it is written.

    The file is created once: creating a file cost about as much as writing
    2 MB to it, and the scan spills several small arrays per image. Each array is written with
    plain writes at the next multiple of :data:`ALIGN`, then mapped, so a full
    disk is a :class:`DiskFullError` and never a SIGBUS; an append that fails
    leaves the file as it was before it.

    Parameters
    ----------
    path : path
        The new file; it must not exist.
    what : str
        What it holds, for error messages.

    Raises
    ------
    FileExistsError
        If `path` exists (it is left as it is).
    DiskFullError
        When the file cannot be created for lack of space.
    """

    def __init__(self, path: str | os.PathLike[str], *, what: str) -> None:
        self.path = Path(path)
        self.what = what
        self.size = 0
        """Bytes in use: the end of the last array appended (and not truncated)."""
        try:
            self._fh = open(self.path, "x+b", buffering=0)  # noqa: SIM115 - closed by close()
        except OSError as err:
            raise as_disk_full(err, self.path, what, 0) from err

    def append(self, array: np.ndarray) -> np.ndarray:
        """Write `array` at the file's end; return it memory-mapped, ``"r+"``.

        The map is opened ``"r+"`` so that compiled kernels see the same
        (writable) array type as in memory; read it only. An empty array is
        returned as a copy (nothing to map).

        Raises
        ------
        DiskFullError
            When the free space is known to be too small, or the write fails
            for lack of space; the file is as it was before the call.
        """
        if array.dtype.hasobject:
            raise ValueError(f"cannot write an array of Python objects to {self.path}")
        if array.nbytes == 0:
            empty: np.ndarray = array.copy()
            return empty
        start = -(-self.size // ALIGN) * ALIGN
        need = start + array.nbytes - self.size
        free = free_bytes(self.path.parent)
        if free is not None and need > free:
            raise DiskFullError(self.path, self.what, need)
        data = np.ascontiguousarray(array).data.cast("B")
        try:
            pos = 0
            while pos < len(data):
                pos += os.pwrite(self._fh.fileno(), data[pos:], start + pos)
        except BaseException as err:
            self.truncate(self.size)
            if isinstance(err, OSError):
                raise as_disk_full(err, self.path, self.what, need) from err
            raise
        self.size = start + array.nbytes
        return np.memmap(self._fh, dtype=array.dtype, mode="r+", offset=start, shape=array.shape)

    def truncate(self, size: int) -> None:
        """Cut the file to `size` bytes: the arrays appended after that point are gone."""
        self._fh.truncate(size)
        self.size = size

    def close(self) -> None:
        """Close the file (arrays already mapped stay readable)."""
        self._fh.close()
