"""Writing a lazy dask mask to ``out=``, atomically, like the in-memory API.

A ``.zarr`` target is written by the workers themselves (into the hidden
folder of :func:`segaudit.io._outputs.publish_zarr`, renamed on success), so
the mask never passes through the client; `out` must then be on a file
system the workers share. A ``.npy`` target is filled block by block from the
client through :func:`segaudit.io._outputs.mask_output`, which works on every
scheduler.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from segaudit._typing import DaskArray, StoredMask, StrPath
from segaudit.io._outputs import check_output, mask_output, publish_zarr

if TYPE_CHECKING:
    import zarr

__all__ = ["BLOCKS_AT_ONCE", "write_mask"]

BLOCKS_AT_ONCE = 8


def write_mask(mask: DaskArray, out: StrPath, dask: ModuleType, *, func: str) -> StoredMask:
    """Write the lazy bool mask ``(N, H, W)`` to `out`; return it opened read-only."""
    if check_output(out, func) == "zarr":
        return publish_zarr(Path(out), mask.shape, int(mask.nbytes), partial(_store, mask))
    with mask_output(out, mask.shape, func=func) as target:
        start = 0
        for first in range(0, mask.numblocks[0], BLOCKS_AT_ONCE):
            stop = min(first + BLOCKS_AT_ONCE, mask.numblocks[0])
            for block in dask.compute(*[mask.blocks[i] for i in range(first, stop)]):
                target.array[start : start + block.shape[0]] = block
                start += block.shape[0]
    return target.result


def _store(mask: DaskArray, target: zarr.Array[Any]) -> None:
    """Let the workers store `mask` into `target` (one chunk per image: no lock needed)."""
    import dask.array as da

    # dask's annotations ask for an array-like target; any object with __setitem__ is stored into
    da.store(mask, target, lock=False)  # type: ignore[arg-type]
