"""Shared type aliases.

The inputs of the public API are array-likes: anything numpy can convert
(arrays, nested lists), or anything with a shape, a dtype and slicing along
the first axis (numpy memmaps, zarr arrays, torch tensors, dask arrays), which
is read batch by batch and never copied whole. ``dask`` and ``zarr`` are
optional: their types are imported only for the type checker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import os

    import dask.array
    import torch
    import zarr
    from dask.delayed import Delayed as _Delayed

__all__ = [
    "ArrayLike",
    "BoolArray",
    "DTypeLike",
    "DaskArray",
    "Delayed",
    "FloatArray",
    "IntArray",
    "LabelsLike",
    "MaskLike",
    "ProbsLike",
    "SliceableArray",
    "StoredMask",
    "StrPath",
]


class SliceableArray(Protocol):
    """An array-like with a shape, a dtype and slicing along the first axis."""

    @property
    def shape(self) -> tuple[int, ...]: ...

    @property
    def dtype(self) -> Any: ...  # a numpy dtype, or a torch dtype for tensors

    def __getitem__(self, key: Any, /) -> Any: ...


ArrayLike: TypeAlias = "npt.ArrayLike | SliceableArray"
#: A lazy dask array (the dask backend's inputs and results).
DaskArray: TypeAlias = "dask.array.Array"
#: A dask task (or a persisted result) of the dask backend.
Delayed: TypeAlias = "_Delayed"
#: Given labels, integers ``(N, H, W)`` (or ``(H, W)`` for one image).
LabelsLike: TypeAlias = ArrayLike
#: Class probabilities or logits, floats ``(N, K, H, W)`` (or ``(K, H, W)``).
ProbsLike: TypeAlias = ArrayLike
#: A boolean issue mask ``(N, H, W)``, converted whole with ``np.asarray``.
MaskLike: TypeAlias = "npt.ArrayLike"
#: A numpy dtype, or the dtype of a torch tensor.
DTypeLike: TypeAlias = "npt.DTypeLike | torch.dtype"
#: A file or folder path.
StrPath: TypeAlias = "str | os.PathLike[str]"

FloatArray: TypeAlias = npt.NDArray[np.floating[Any]]
IntArray: TypeAlias = npt.NDArray[np.integer[Any]]
BoolArray: TypeAlias = npt.NDArray[np.bool_]
#: A mask written with ``out=``: a read-only ``.npy`` memmap or a zarr array.
StoredMask: TypeAlias = "BoolArray | zarr.Array[Any]"
