"""Where the streaming summary lives: in memory up to a budget, then in files."""

from __future__ import annotations

import shutil
import tempfile
import weakref
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["SummaryStore"]


class SummaryStore:
    """Allocate summary arrays in RAM until `memory_limit` bytes, then as memmaps.

    Parameters
    ----------
    memory_limit : int or None
        Bytes of summary to keep in memory; None keeps everything in memory.
    spill_dir : path, optional
        Parent of the temporary folder for spilled arrays (default: the system
        temporary folder). The folder is removed by :meth:`close` or at exit.
    """

    def __init__(self, memory_limit: int | None, spill_dir: Any = None) -> None:
        self.memory_limit = memory_limit
        self.spill_parent = spill_dir
        self.in_memory = 0
        self.spilled = 0
        self._dir: Path | None = None
        self._finalizer: weakref.finalize | None = None
        self._count = 0

    def empty(self, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        """Return a new uninitialised array, in memory or spilled to disk."""
        dtype = np.dtype(dtype)
        size = int(np.prod(shape)) * dtype.itemsize
        if self._take(size):
            return np.empty(shape, dtype=dtype)
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="segaudit-", dir=self.spill_parent))
            self._finalizer = weakref.finalize(self, shutil.rmtree, self._dir, True)
        self._count += 1
        self.spilled += size
        path = self._dir / f"part{self._count:07d}.npy"
        return np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)

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

    @property
    def spill_path(self) -> Path | None:
        """The temporary folder holding spilled arrays, if any."""
        return self._dir

    def close(self) -> None:
        """Delete the spilled files."""
        if self._finalizer is not None:
            self._finalizer()
