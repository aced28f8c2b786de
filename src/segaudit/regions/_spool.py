"""Regions of a whole dataset on disk: appended image by image, read back ranked.

A scan can find millions of regions; keeping them as Python records or as one
DataFrame would grow memory with the dataset. The spool appends each image's
`REGION_DTYPE` table to a binary file and, at the end, ranks them with one
argsort of the severity column (16 bytes per region) and hands them back in
chunks, so only one chunk is ever a DataFrame.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from segaudit.io._space import as_disk_full
from segaudit.regions._records import ISSUE_TYPES, REGION_DTYPE, rank_regions, regions_frame

__all__ = ["RegionSpool"]


class RegionSpool:
    """An append-only file of region records, read back most severe first.

    Parameters
    ----------
    path : path
        The spool file; created (truncated) now, owned by the caller's folder.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        # unbuffered: a write error (a full disk) surfaces in append(), which undoes it
        self._file = open(self.path, "wb", buffering=0)  # noqa: SIM115 - closed by reading or close()
        self.count = 0
        self._types = np.zeros(len(ISSUE_TYPES), dtype=np.int64)
        self._order: np.ndarray | None = None

    def append(self, table: np.ndarray) -> None:
        """Add one image's regions; images must come in increasing order.

        All or nothing: on a write error (e.g.
        :class:`~segaudit.io._space.DiskFullError`) the spool is as it was.
        """
        if self._file.closed:
            raise RuntimeError("RegionSpool: append() after reading.")
        table = np.asarray(table, dtype=REGION_DTYPE)
        end = self._file.tell()
        data = memoryview(table.tobytes())
        try:
            while data:
                data = data[self._file.write(data) :]
        except OSError as err:  # e.g. a full disk: drop the partial write, keep the spool whole
            self._file.truncate(end)
            self._file.seek(end)
            raise as_disk_full(err, self.path, "the region spool", end + table.nbytes) from err
        self.count += table.size
        self._types += np.bincount(table["issue_type"], minlength=len(ISSUE_TYPES))

    def type_counts(self) -> dict[str, int]:
        """Regions per issue type, for the types that occur."""
        return {t: int(c) for t, c in zip(ISSUE_TYPES, self._types, strict=True) if c}

    def _table(self) -> np.ndarray:
        if not self._file.closed:
            self._file.close()
        if self.count == 0:
            return np.empty(0, dtype=REGION_DTYPE)
        return np.memmap(self.path, dtype=REGION_DTYPE, mode="r", shape=(self.count,))

    def ranked(
        self, class_names: Sequence[str] | None, *, chunk: int = 1 << 16
    ) -> Iterator[pd.DataFrame]:
        """Yield the regions as DataFrames of at most `chunk` rows, most severe first."""
        table = self._table()
        if self._order is None:
            self._order = rank_regions(table)
        if self.count == 0:
            yield regions_frame(table, class_names)
        for start in range(0, self.count, chunk):
            yield regions_frame(table[self._order[start : start + chunk]], class_names)

    def head(self, n: int, class_names: Sequence[str] | None) -> pd.DataFrame:
        """Return the `n` most severe regions as one DataFrame."""
        top: pd.DataFrame = next(self.ranked(class_names, chunk=max(n, 1))).head(n)
        return top

    def close(self) -> None:
        """Close the file (the caller removes its folder)."""
        self._file.close()

    def __enter__(self) -> RegionSpool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
