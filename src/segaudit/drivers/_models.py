"""Several models (or cross-validation folds) given as one ``pred_probs``: checked, read together.

A list or tuple of same-shape arrays is wrapped in a :class:`ModelStack`: an
array-like whose slices are the models' slices, read together batch by batch
(each array is read once) and combined by
:func:`~segaudit.kernels._combine.combine_models` (per-class median,
renormalised). The engine sees one probability array.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeGuard

import numpy as np

from segaudit._typing import ProbsLike, SliceableArray
from segaudit._validation import as_array_like, check_float_dtype, param_error
from segaudit.kernels._combine import combine_models
from segaudit.kernels._torch import to_numpy

__all__ = ["ModelStack", "as_models", "is_model_sequence"]


def _is_array(x: object) -> bool:
    return hasattr(x, "shape") and hasattr(x, "dtype") and hasattr(x, "__getitem__")


def is_model_sequence(pred_probs: object) -> TypeGuard[list[Any] | tuple[Any, ...]]:
    """Return True for a list or tuple meant as several models' arrays.

    That is: empty, or holding at least one array object (a nested list of
    numbers stays one array, as numpy reads it).

    Examples
    --------
    >>> is_model_sequence([np.zeros((1, 2, 1, 1))] * 3), is_model_sequence([[[[0.5]]]])
    (True, False)
    """
    if not isinstance(pred_probs, (list, tuple)):
        return False
    return not pred_probs or any(_is_array(x) for x in pred_probs)


class ModelStack:
    """M same-shape probability (or logit) arrays, sliced together and combined.

    Parameters
    ----------
    arrays : list of array_like, each (N, K, H, W)
        At least two, of one shape (see :func:`as_models`).
    from_logits : bool
        The arrays hold logits.

    Attributes
    ----------
    max_row_deviation : float
        Largest ``|sum_k p_k - 1|`` of the models' own rows read so far.
    input_dtype : numpy dtype
        The models' float dtype with the widest rounding (for the row-sum warning).
    image_offset : int
        Index of the arrays' first image among all images, for error messages.
    """

    def __init__(self, arrays: list[SliceableArray], *, from_logits: bool) -> None:
        self.arrays = arrays
        self.from_logits = from_logits
        self.max_row_deviation = 0.0
        self.image_offset = 0  # index of image 0 of these arrays, for error messages
        dtypes = [np.dtype(np.float64) if from_logits else _float(a.dtype) for a in arrays]
        self.input_dtype = max(dtypes, key=lambda d: np.finfo(d).eps)

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of every model's array."""
        return tuple(self.arrays[0].shape)

    @property
    def dtype(self) -> np.dtype:
        """float64: the combined probabilities."""
        return np.dtype(np.float64)

    def __len__(self) -> int:
        return int(self.shape[0])

    def __getitem__(self, key: Any) -> np.ndarray:
        """Read `key` of every model and return the combined ``(n, K, H, W)`` probabilities."""
        batches = [np.asarray(to_numpy(a[key])) for a in self.arrays]
        offset = self.image_offset
        if isinstance(key, slice) and key.start is not None:
            offset += int(key.start)
        probs, deviation = combine_models(
            batches, from_logits=self.from_logits, image_offset=offset
        )
        self.max_row_deviation = max(self.max_row_deviation, deviation)
        return probs


def _float(dtype: Any) -> np.dtype:
    try:
        return np.dtype(dtype) if np.dtype(dtype).kind == "f" else np.dtype(np.float64)
    except TypeError:  # a torch dtype
        return np.dtype(np.float32)


def as_models(pred_probs: Sequence[ProbsLike], func: str, *, from_logits: bool) -> SliceableArray:
    """Check a sequence of models' arrays; return the one array, or a :class:`ModelStack`.

    One array is returned as is, so M = 1 gives exactly the single-array result.

    Raises
    ------
    ValueError
        On an empty sequence, an element that is not an array, or arrays of
        different shapes (naming the index and both shapes).

    Examples
    --------
    >>> as_models([], "f", from_logits=False)
    Traceback (most recent call last):
    ...
    ValueError: The 'pred_probs' parameter of f must be an array, or a non-empty list of same-shape arrays (one per model). Got an empty list instead.
    >>> as_models([np.zeros((1, 2, 3, 3)), np.zeros((1, 2, 3, 4))], "f", from_logits=False)
    Traceback (most recent call last):
    ...
    ValueError: The 'pred_probs' parameter of f must be arrays of one shape. Got shape (1, 2, 3, 3) at index 0 and shape (1, 2, 3, 4) at index 1 instead.
    """  # noqa: E501
    if not pred_probs:
        expected = "an array, or a non-empty list of same-shape arrays (one per model)"
        raise param_error("pred_probs", func, expected, f"an empty {type(pred_probs).__name__}")
    arrays: list[SliceableArray] = []
    for i, x in enumerate(pred_probs):
        if not _is_array(x):
            expected = "a list of arrays (one per model), each (N, K, H, W)"
            raise param_error("pred_probs", func, expected, f"{type(x).__name__} at index {i}")
        array = as_array_like(x, f"pred_probs[{i}]", func)
        check_float_dtype(array.dtype, f"pred_probs[{i}]", func)
        first = arrays[0] if arrays else array
        if tuple(array.shape) != tuple(first.shape):
            raise param_error(
                "pred_probs",
                func,
                "arrays of one shape",
                f"shape {tuple(first.shape)} at index 0 and shape {tuple(array.shape)} "
                f"at index {i}",
            )
        arrays.append(array)
    if len(arrays) == 1:
        return arrays[0]
    return ModelStack(arrays, from_logits=from_logits)
