"""Disk space for memory-mapped files, reserved or written before they are mapped.

Writing to a page of a memory-mapped file whose blocks the file system cannot
allocate kills the process with SIGBUS: no exception, no clean-up. A memmap
segaudit writes through is therefore created by :func:`reserved_memmap`, which
allocates the file's blocks first (``posix_fallocate``, or writing zeros where
the file system does not support it); an array that is complete before it goes
to disk is written by :func:`written_memmap` with plain writes, and only then
mapped. Both turn a full disk or quota into a :class:`DiskFullError` naming
the folder and the bytes needed, and leave no partial file.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["DiskFullError", "as_disk_full", "reserve", "reserved_memmap", "written_memmap"]

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


def written_memmap(path: str | os.PathLike[str], array: np.ndarray, *, what: str) -> np.memmap:
    """Write `array` to the new ``.npy`` file `path`, then return the file memory-mapped.

    One plain write of the header and the data: the file's blocks are
    allocated by the write itself, so a full disk is an error of the write,
    never a SIGBUS of a later page fault.

    Parameters
    ----------
    path : path
        The new file; it must not exist.
    array : ndarray
        What to write (a numeric dtype).
    what : str
        What it holds, for the error message.

    Returns
    -------
    numpy.memmap
        The file's array, opened ``"r+"`` so that compiled kernels see the
        same (writable) array type as in memory. Read it only: on a
        copy-on-write file system an overwrite needs new blocks again.

    Raises
    ------
    DiskFullError
        When the free space is known to be too small (nothing is written
        then), or the write fails for lack of space.
    FileExistsError
        If `path` exists (it is left as it is).

    Notes
    -----
    On any failure after `path` is created (an interrupt included) the
    partial file is removed.
    """
    path = Path(path)
    if array.dtype.hasobject:
        raise ValueError(f"cannot write an array of Python objects to {path}")
    if not array.flags.c_contiguous:
        array = np.ascontiguousarray(array)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, np.lib.format.header_data_from_array_1_0(array))
    offset = header.tell()
    size = offset + array.nbytes
    free = free_bytes(path.parent)
    if free is not None and size > free:
        raise DiskFullError(path, what, size)
    try:
        f = open(path, "xb")  # noqa: SIM115 - closed below, before the file is mapped
    except OSError as err:
        raise as_disk_full(err, path, what, size) from err
    try:
        with f:
            f.write(header.getbuffer())
            f.write(array.data)
        # mapped after the header just written: np.load would read and parse it again
        return np.memmap(path, dtype=array.dtype, mode="r+", offset=offset, shape=array.shape)
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        if isinstance(err, OSError):
            raise as_disk_full(err, path, what, size) from err
        raise
