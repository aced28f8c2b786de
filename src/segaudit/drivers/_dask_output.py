"""Writing a lazy dask mask to ``out=``, atomically, like the in-memory API.

A ``.zarr`` target is written by the workers themselves (into a hidden
``.{name}.part`` folder beside it, renamed on success), so the mask never
passes through the client; `out` must then be on a file system the workers
share. A ``.npy`` target is filled block by block from the client through
:func:`segaudit.io._outputs.mask_output`, which works on every scheduler.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from types import ModuleType
from typing import Any

from segaudit.io._outputs import mask_output, output_kind
from segaudit.io._space import as_disk_full

__all__ = ["BLOCKS_AT_ONCE", "check_output", "write_mask"]

BLOCKS_AT_ONCE = 8


def check_output(out: str | os.PathLike[str]) -> str:
    """Validate `out` before any work: its kind (``"npy"`` or ``"zarr"``) and its folder."""
    kind = output_kind(out)
    parent = Path(out).parent
    if not parent.exists():
        raise FileNotFoundError(f"The folder of 'out' does not exist: {parent}")
    return kind


def write_mask(mask: Any, out: str | os.PathLike[str], dask: ModuleType) -> Any:
    """Write the lazy bool mask ``(N, H, W)`` to `out`; return it opened read-only."""
    if check_output(out) == "zarr":
        return _write_zarr(mask, Path(out))
    with mask_output(out, mask.shape) as target:
        start = 0
        for first in range(0, mask.numblocks[0], BLOCKS_AT_ONCE):
            stop = min(first + BLOCKS_AT_ONCE, mask.numblocks[0])
            for block in dask.compute(*[mask.blocks[i] for i in range(first, stop)]):
                target.array[start : start + block.shape[0]] = block
                start += block.shape[0]
    return target.result


def _write_zarr(mask: Any, final: Path) -> Any:
    """Let the workers store the mask in a temporary zarr folder, then rename it onto `final`."""
    try:
        import zarr
    except ImportError as err:
        raise ImportError("Writing masks to zarr needs zarr: pip install 'segaudit[zarr]'") from err
    part = final.with_name(f".{final.name}.part")
    old = final.with_name(f".{final.name}.old")
    for stale in (part, old):
        if stale.exists():
            shutil.rmtree(stale)
    _, h, w = mask.shape
    target = zarr.create_array(store=str(part), shape=mask.shape, chunks=(1, h, w), dtype=bool)
    try:
        mask.store(target, lock=False)  # one zarr chunk per image: blocks never share a chunk
    except BaseException as err:
        shutil.rmtree(part, ignore_errors=True)
        if isinstance(err, OSError):
            raise as_disk_full(err, part, f"the issue mask {final.name}", mask.nbytes) from err
        raise
    if final.exists():
        os.replace(final, old)
    os.replace(part, final)
    shutil.rmtree(old, ignore_errors=True)
    return zarr.open_array(str(final), mode="r")
