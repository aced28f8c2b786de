"""Input checks at the API boundary, with one message template."""

from __future__ import annotations

import numbers
from typing import cast

import numpy as np
import numpy.typing as npt

from segaudit._typing import ArrayLike, BoolArray, DTypeLike, MaskLike, SliceableArray

__all__ = [
    "as_array_like",
    "check_batch_size",
    "check_bool",
    "check_choice",
    "check_downsample",
    "check_ignore_index",
    "check_issues_mask",
    "check_n_jobs",
    "check_no_nan",
    "check_shapes",
    "allowed_labels",
    "bad_labels",
    "check_labels",
    "label_error",
    "dtype_kind",
    "float_dtype",
    "param_error",
]


def param_error(param: str, func: str, expected: str, got: object) -> ValueError:
    """Build the one message every bad-argument error uses."""
    return ValueError(f"The {param!r} parameter of {func} must be {expected}. Got {got} instead.")


def as_array_like(x: ArrayLike | None, param: str, func: str) -> SliceableArray:
    """Return `x` unchanged if it slices like an array, else `np.asarray(x)`.

    numpy arrays, memmaps, zarr, dask and torch arrays pass through untouched:
    they are read batch by batch and never copied whole.
    """
    if x is None:
        raise param_error(param, func, "an array", "None")
    if hasattr(x, "shape") and hasattr(x, "dtype") and hasattr(x, "__getitem__"):
        return cast("SliceableArray", x)
    try:
        return np.asarray(x)
    except Exception as err:  # pragma: no cover - numpy's own message is kept
        raise param_error(param, func, "an array", type(x).__name__) from err


def check_shapes(
    labels: SliceableArray, pred_probs: SliceableArray, func: str
) -> tuple[int, int, int, int]:
    """Check ``labels (N, H, W)`` against ``pred_probs (N, K, H, W)``; return N, K, H, W."""
    lshape, pshape = tuple(labels.shape), tuple(pred_probs.shape)
    if len(lshape) != 3:
        raise ValueError(
            f"{func}: 'labels' must have shape (N, H, W); got {len(lshape)} dimensions "
            f"with shape {lshape}."
        )
    if len(pshape) != 4:
        raise ValueError(
            f"{func}: 'pred_probs' must have shape (N, K, H, W); got {len(pshape)} dimensions "
            f"with shape {pshape}."
        )
    n, k, h, w = pshape
    if lshape != (n, h, w):
        raise ValueError(
            f"{func}: 'labels' and 'pred_probs' must agree on N, H and W: expected labels of "
            f"shape {(n, h, w)} for pred_probs of shape {pshape}; got labels of shape {lshape}."
        )
    if k < 2:
        raise ValueError(f"{func}: 'pred_probs' must have K >= 2 classes on axis 1; got K={k}.")
    if n == 0 or h == 0 or w == 0:
        raise ValueError(
            f"{func}: need at least one image with at least one pixel; got pred_probs of "
            f"shape {pshape} (N={n}, H={h}, W={w})."
        )
    check_float_dtype(pred_probs.dtype, "pred_probs", func)
    check_label_dtype(labels.dtype, func)
    return n, k, h, w


def dtype_kind(dtype: DTypeLike) -> str:
    """Return numpy's kind letter of a numpy or torch dtype (``"f"``, ``"i"``, ``"u"``, ``"b"``).

    Examples
    --------
    >>> dtype_kind(np.uint8), dtype_kind("float32")
    ('u', 'f')
    """
    try:
        return np.dtype(cast("npt.DTypeLike", dtype)).kind  # a torch dtype raises TypeError
    except TypeError:
        name = str(dtype).rsplit(".", 1)[-1]
        if "float" in name:
            return "f"
        if name == "bool":
            return "b"
        return "u" if name.startswith("uint") else "i" if name.startswith("int") else "O"


def float_dtype(dtype: DTypeLike) -> np.dtype:
    """Return the numpy float dtype of a numpy or torch dtype (bfloat16 as float16)."""
    try:
        return np.dtype(cast("npt.DTypeLike", dtype))  # a torch dtype raises TypeError
    except TypeError:
        name = str(dtype).rsplit(".", 1)[-1]
        return np.dtype(np.float16 if "16" in name else name)


def check_float_dtype(dtype: DTypeLike, param: str, func: str) -> None:
    """Probabilities and logits must be floating point."""
    if dtype_kind(dtype) != "f":
        raise param_error(param, func, "a float16, float32 or float64 array", f"dtype {dtype}")


def check_label_dtype(dtype: DTypeLike, func: str) -> None:
    """Labels must be integers (or floats holding integral values, checked later)."""
    if dtype_kind(dtype) not in "iubf":
        raise param_error("labels", func, "an integer array", f"dtype {dtype}")


def check_batch_size(batch_size: object, func: str) -> None:
    """``batch_size`` is None or a positive integer."""
    if batch_size is None:
        return
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral):
        raise param_error("batch_size", func, "a positive integer or None", repr(batch_size))
    if batch_size <= 0:
        raise param_error("batch_size", func, "a positive integer or None", batch_size)


def check_n_jobs(n_jobs: object, func: str) -> None:
    """``n_jobs`` is None, -1 or a positive integer."""
    if n_jobs is None:
        return
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral):
        raise param_error("n_jobs", func, "a positive integer, -1 or None", repr(n_jobs))
    if n_jobs <= 0 and n_jobs != -1:
        raise param_error("n_jobs", func, "a positive integer, -1 or None", repr(n_jobs))


def check_downsample(downsample: object, h: int, w: int, func: str) -> int:
    """``downsample`` is a positive integer dividing both H and W."""
    if isinstance(downsample, bool) or not isinstance(downsample, numbers.Integral):
        raise param_error("downsample", func, "a positive integer", repr(downsample))
    if downsample <= 0:
        raise param_error("downsample", func, "a positive integer", downsample)
    if h % downsample or w % downsample:
        raise ValueError(
            f"{func}: 'downsample' must divide both the height and the width of the images; "
            f"got H={h}, W={w} and downsample={downsample}."
        )
    return int(downsample)


def check_choice(value: object, param: str, choices: tuple[str, ...], func: str) -> str:
    """``value`` is one of ``choices``."""
    if value not in choices:
        raise param_error(param, func, f"one of {', '.join(map(repr, choices))}", repr(value))
    return str(value)


_INT64_RANGE = "-2**63..2**63-1"


def check_ignore_index(ignore_index: object, func: str) -> int | None:
    """``ignore_index`` is None or an integer that fits in int64 (the kernels' label type)."""
    if ignore_index is None:
        return None
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, numbers.Integral):
        raise param_error("ignore_index", func, "an integer or None", repr(ignore_index))
    if not -(2**63) <= int(ignore_index) < 2**63:
        expected = f"an integer in {_INT64_RANGE} (the range of int64 labels) or None"
        raise param_error("ignore_index", func, expected, repr(ignore_index))
    return int(ignore_index)


def check_bool(value: object, param: str, func: str) -> bool:
    """`value` is a bool (Python's or numpy's), not merely truthy: ``"no"`` is refused."""
    if not isinstance(value, (bool, np.bool_)):
        raise param_error(param, func, "True or False", repr(value))
    return bool(value)


def check_no_nan(values: np.ndarray, param: str, func: str) -> None:
    """Raise for the first NaN of the 1-D `values`, naming its index."""
    nan = np.flatnonzero(np.isnan(values))
    if nan.size:
        raise param_error(param, func, "numbers, not NaN", f"NaN at index {nan[0]}")


def check_issues_mask(issues: MaskLike, shape: tuple[int, ...], func: str) -> BoolArray:
    """``issues`` is a boolean mask of the given shape."""
    arr = np.asarray(issues)
    if arr.shape != tuple(shape):
        raise ValueError(
            f"{func}: 'issues' must be a boolean mask of shape {tuple(shape)} (N, H, W) "
            f"matching labels; got shape {arr.shape}."
        )
    if arr.dtype != np.bool_:
        raise param_error("issues", func, "a boolean mask", f"dtype {arr.dtype}")
    return arr


def allowed_labels(num_classes: int, ignore_index: int | None) -> str:
    """Say which label values are valid: ``integers in 0..K-1 [or ignore_index=v]``."""
    allowed = f"integers in 0..{num_classes - 1}"
    return allowed if ignore_index is None else f"{allowed} or ignore_index={ignore_index}"


def bad_labels(labels: npt.ArrayLike, num_classes: int, ignore_index: int | None) -> BoolArray:
    """Boolean mask of the values of `labels` that are not a class id (nor `ignore_index`).

    The one label-range rule: every reader, driver and summary applies it (the
    compiled kernels apply the same rule pixel by pixel and report through
    :func:`label_error`).

    Examples
    --------
    >>> bad_labels(np.array([0, 2, 3, 255, -1]), 3, 255)
    array([False, False,  True, False,  True])
    >>> bad_labels(np.array([0.0, 1.5]), 3, None)
    array([False,  True])
    """
    values = np.asarray(labels)
    if values.dtype.kind in "iu":  # compared in their own dtype: no int64 copy
        bad = values >= num_classes
        if values.dtype.kind == "i":
            bad |= values < 0
    else:
        as_int = values.astype(np.int64)
        bad = (as_int < 0) | (as_int >= num_classes)
        if values.dtype.kind != "b":
            bad |= as_int != values
    if ignore_index is not None:
        bad &= values != ignore_index
    return bad


def label_error(
    value: object, num_classes: int, ignore_index: int | None, where: str
) -> ValueError:
    """Return the error for a label that is not a class id: what was allowed, given, and where.

    Examples
    --------
    >>> print(label_error(7, 3, 255, "image 2, row 0, column 5"))
    labels must be integers in 0..2 or ignore_index=255; got 7 at image 2, row 0, column 5.
    """
    allowed = allowed_labels(num_classes, ignore_index)
    return ValueError(f"labels must be {allowed}; got {value!r} at {where}.")


def check_labels(
    labels: npt.ArrayLike, num_classes: int, ignore_index: int | None, *, where: str = ""
) -> None:
    """Raise :func:`label_error` for the first bad value of `labels` (an (H, W) or (N, H, W) array).

    `where` names the array (``"image 3"``, a file name), prefixed to the row and column.
    """
    bad = bad_labels(labels, num_classes, ignore_index)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        parts = [f"image {index[0]}"] if len(index) == 3 else []
        parts += [f"row {index[-2]}", f"column {index[-1]}"] if len(index) >= 2 else []
        loc = ", ".join(([where] if where else []) + parts)
        raise label_error(np.asarray(labels)[index].item(), num_classes, ignore_index, loc)
