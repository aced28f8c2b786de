"""Where the streaming summary lives: in memory up to a budget, then in files."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import weakref
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from segaudit._typing import StrPath
from segaudit.io._space import ArrayFile, as_disk_full

__all__ = ["Mark", "SummaryStore"]

_WHAT = "the spilled summary"
SPILL_FILE = "summary.bin"
"""The one file of the spill folder: the spilled arrays, one after another."""


@dataclass(frozen=True)
class Mark:
    """The state of a store at one moment, to roll back to (see :meth:`SummaryStore.mark`)."""

    in_memory: int
    spilled: int
    count: int
    had_dir: bool
    file_size: int


class SummaryStore:
    """Keep summary arrays in RAM until `memory_limit` bytes, then in files on disk.

    Parameters
    ----------
    memory_limit : int or None
        Bytes of summary to keep in memory; None keeps everything in memory.
    spill_dir : path, optional
        Parent of the temporary folder for spilled arrays (default: the system
        temporary folder). The folder is removed by :meth:`close` or at exit.

    Notes
    -----
    Arrays are made and filled in memory, then handed to :meth:`keep` (or to
    :meth:`take`, and to :meth:`spill` if they did not fit). One that does not
    fit in the budget is appended whole to the spill folder's one file,
    :data:`SPILL_FILE`, by plain writes, then mapped
    (:class:`~segaudit.io._space.ArrayFile`; one file, created once: creating
    a file per array cost more than writing the array): no page of a map is
    ever written before the file system allocated it, so a full disk is a
    :class:`~segaudit.io._space.DiskFullError` from the free-space check or
    the write, never a SIGBUS, and no partial array stays.
    The audit only reads kept arrays (issue masks are made in copies). Until
    it is spilled an array is in RAM, so a batch's summary is briefly in
    memory whatever the budget. :meth:`mark` and :meth:`rollback` undo what a
    failed step kept.
    """

    def __init__(self, memory_limit: int | None, spill_dir: StrPath | None = None) -> None:
        self.memory_limit = memory_limit
        self.spill_parent = spill_dir
        self.in_memory = 0
        self.spilled = 0
        self._dir: Path | None = None
        self._file: ArrayFile | None = None
        self._finalizer: weakref.finalize[..., SummaryStore] | None = None
        self._count = 0

    def keep(self, array: np.ndarray) -> np.ndarray:
        """Keep `array`: as it is while it fits in the budget, else as a copy on disk."""
        if self.take(array.nbytes):
            return array
        return self.spill(array)

    def take(self, size: int) -> bool:
        """Count `size` bytes against the memory budget if they fit; say whether they did.

        An array whose bytes did not fit goes to :meth:`spill`.
        """
        if self.memory_limit is None or self.in_memory + size <= self.memory_limit:
            self.in_memory += size
            return True
        return False

    def spill(self, array: np.ndarray) -> np.ndarray:
        """Append `array` to the spill file; return it memory-mapped.

        Raises
        ------
        DiskFullError
            When the spill folder cannot hold it (nothing of it is left then).
        """
        file = self._open()
        try:
            out = file.append(array)
        except BaseException:
            self._drop_empty_dir()
            raise
        self._count += 1
        self.spilled += array.nbytes
        return out

    def _open(self) -> ArrayFile:
        """Return the spill file, making the spill folder and the file on first use."""
        if self._file is None:
            folder = _make_dir(self.spill_parent)
            try:
                self._file = ArrayFile(folder / SPILL_FILE, what=_WHAT)
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)
                raise
            self._dir = folder
            self._finalizer = weakref.finalize(self, _remove, self._file, folder)
        return self._file

    def mark(self) -> Mark:
        """Return the current state, for :meth:`rollback`."""
        size = 0 if self._file is None else self._file.size
        return Mark(self.in_memory, self.spilled, self._count, self._dir is not None, size)

    def rollback(self, mark: Mark) -> None:
        """Forget everything kept since `mark`: budget counts and spilled arrays.

        The arrays handed out since then must no longer be used.
        """
        if self._file is not None and self._file.size != mark.file_size:
            self._file.truncate(mark.file_size)
        self.in_memory, self.spilled, self._count = mark.in_memory, mark.spilled, mark.count
        if not mark.had_dir:
            self._drop_empty_dir()

    def _drop_empty_dir(self) -> None:
        """Remove the spill folder if it holds no array (e.g. its first spill failed)."""
        if self._dir is not None and self._count == 0 and self._finalizer is not None:
            self._finalizer()
            self._dir, self._file, self._finalizer = None, None, None

    def close(self) -> None:
        """Delete the spilled file and its folder."""
        if self._finalizer is not None:
            self._finalizer()


def _remove(file: ArrayFile, folder: Path) -> None:
    """Close the spill file and remove its folder (mapped arrays stay readable)."""
    with contextlib.suppress(OSError):
        file.close()
    shutil.rmtree(folder, ignore_errors=True)


def _make_dir(parent: StrPath | None) -> Path:
    """Create the spill folder; a full disk is a :class:`DiskFullError`."""
    try:
        return Path(tempfile.mkdtemp(prefix="segaudit-", dir=parent))
    except OSError as err:
        where = Path(parent if parent is not None else tempfile.gettempdir()) / "segaudit-*"
        raise as_disk_full(err, where, "the spill folder", 0) from err
