"""Where the streaming summary lives: in memory up to a budget, then in files."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import weakref
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from segaudit._typing import StrPath
from segaudit.io._space import as_disk_full, reserved_memmap

__all__ = ["Mark", "SummaryStore"]


@dataclass(frozen=True)
class Mark:
    """The state of a store at one moment, to roll back to (see :meth:`SummaryStore.mark`)."""

    in_memory: int
    spilled: int
    count: int
    had_dir: bool


class SummaryStore:
    """Allocate summary arrays in RAM until `memory_limit` bytes, then as memmaps.

    Parameters
    ----------
    memory_limit : int or None
        Bytes of summary to keep in memory; None keeps everything in memory.
    spill_dir : path, optional
        Parent of the temporary folder for spilled arrays (default: the system
        temporary folder). The folder is removed by :meth:`close` or at exit.

    Notes
    -----
    The disk space of every spilled array is reserved when it is created, so a
    full disk raises :class:`~segaudit.io._space.DiskFullError` there and then,
    never SIGBUS on a later write; :meth:`mark` and :meth:`rollback` undo the
    allocations of a failed step.
    """

    def __init__(self, memory_limit: int | None, spill_dir: StrPath | None = None) -> None:
        self.memory_limit = memory_limit
        self.spill_parent = spill_dir
        self.in_memory = 0
        self.spilled = 0
        self._dir: Path | None = None
        self._finalizer: weakref.finalize[..., SummaryStore] | None = None
        self._count = 0

    def empty(self, shape: tuple[int, ...], dtype: npt.DTypeLike) -> np.ndarray:
        """Return a new uninitialised array, in memory or spilled to disk."""
        dtype = np.dtype(dtype)
        size = int(np.prod(shape)) * dtype.itemsize
        if self._take(size):
            return np.empty(shape, dtype=dtype)
        if self._dir is None:
            self._dir = _make_dir(self.spill_parent)
            self._finalizer = weakref.finalize(self, shutil.rmtree, self._dir, True)
        path = self._dir / f"part{self._count + 1:07d}.npy"
        try:
            out = reserved_memmap(path, dtype=dtype, shape=shape, what="the spilled summary")
        except BaseException:
            self._drop_empty_dir()
            raise
        self._count += 1
        self.spilled += size
        return out

    def keep(self, array: np.ndarray) -> np.ndarray:
        """Keep `array`: as it is while it fits in the budget, else as a copy on disk."""
        if self._take(array.nbytes):
            return array
        out = self.empty(array.shape, array.dtype)
        out[...] = array
        return out

    def _take(self, size: int) -> bool:
        """Count `size` bytes against the memory budget if they fit; say whether they did."""
        if self.memory_limit is None or self.in_memory + size <= self.memory_limit:
            self.in_memory += size
            return True
        return False

    def mark(self) -> Mark:
        """Return the current state, for :meth:`rollback`."""
        return Mark(self.in_memory, self.spilled, self._count, self._dir is not None)

    def rollback(self, mark: Mark) -> None:
        """Forget everything allocated since `mark`: budget counts and spilled files.

        The arrays handed out since then must no longer be used.
        """
        if self._dir is not None:
            for i in range(mark.count + 1, self._count + 1):
                with contextlib.suppress(FileNotFoundError):
                    (self._dir / f"part{i:07d}.npy").unlink()
        self.in_memory, self.spilled, self._count = mark.in_memory, mark.spilled, mark.count
        if not mark.had_dir:
            self._drop_empty_dir()

    def _drop_empty_dir(self) -> None:
        """Remove the spill folder if it holds no part (e.g. its first spill failed)."""
        if self._dir is not None and self._count == 0 and self._finalizer is not None:
            self._finalizer()
            self._dir, self._finalizer = None, None

    def close(self) -> None:
        """Delete the spilled files."""
        if self._finalizer is not None:
            self._finalizer()


def _make_dir(parent: StrPath | None) -> Path:
    """Create the spill folder; a full disk is a :class:`DiskFullError`."""
    try:
        return Path(tempfile.mkdtemp(prefix="segaudit-", dir=parent))
    except OSError as err:
        where = Path(parent if parent is not None else tempfile.gettempdir()) / "segaudit-*"
        raise as_disk_full(err, where, "the spill folder", 0) from err
