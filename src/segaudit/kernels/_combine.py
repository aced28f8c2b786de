"""Several models' predictions of one batch, combined into one probability array.

The combination is the per-class **median** of the M probability vectors of a
pixel, renormalised to sum to 1 (with logits, each model's softmax first). A
median ignores one dissenting model out of three: where two models agree that
a label is wrong, the third model's own mistake does not hide the error, and
where one model alone is wrong, the other two outvote it. A mean would pull
the predicted class's probability on real errors below the confident
threshold as soon as one model hesitates.
"""

from __future__ import annotations

import numpy as np

from segaudit.kernels._batch import kernel_floats
from segaudit.kernels._downsample import softmax

__all__ = ["check_model_batch", "combine_models", "row_deviation"]


def row_deviation(probs: np.ndarray) -> float:
    """Largest ``|sum_k p_k(x) - 1|`` of a batch ``(n, K, ...)``; 0 for an empty one."""
    if not probs.size:
        return 0.0
    total = probs.sum(axis=1, dtype=np.float64)
    return float(np.abs(total - 1.0).max())


def check_model_batch(probs: np.ndarray, model: int, image_offset: int, from_logits: bool) -> None:
    """Raise for the first NaN, infinite (or, for probabilities, negative) value of a model.

    Examples
    --------
    >>> batch = np.full((1, 2, 1, 2), 0.5); batch[0, 1, 0, 1] = -0.5
    >>> check_model_batch(batch, 2, 4, False)
    Traceback (most recent call last):
    ...
    ValueError: pred_probs[2] must be probabilities >= 0; got -0.5 at class 1 of image 4, row 0, column 1. If these are raw model outputs, pass from_logits=True.
    """  # noqa: E501
    finite = np.isfinite(probs)
    bad = ~finite if from_logits else ~finite | (probs < 0)
    if not bad.any():
        return
    img, cls, row, col = (int(v) for v in np.argwhere(bad)[0])
    value = probs[img, cls, row, col].item()
    loc = f"class {cls} of image {image_offset + img}, row {row}, column {col}"
    if not np.isfinite(value):
        raise ValueError(f"pred_probs[{model}] must be finite; got {value!r} at {loc}.")
    raise ValueError(
        f"pred_probs[{model}] must be probabilities >= 0; got {value!r} at {loc}. "
        "If these are raw model outputs, pass from_logits=True."
    )


def _median(arrays: list[np.ndarray]) -> np.ndarray:
    """Element-wise median of float64 arrays; for three, the middle value by min and max.

    Examples
    --------
    >>> _median([np.array([3.0, 1.0]), np.array([1.0, 2.0]), np.array([2.0, 0.5])])
    array([2., 1.])
    """
    if len(arrays) == 3:
        a, b, c = arrays
        low: np.ndarray = np.minimum(a, b)  # new arrays: the inputs stay as given
        high: np.ndarray = np.maximum(a, b)
        np.minimum(high, c, out=high)
        np.maximum(low, high, out=low)
        return low
    median: np.ndarray = np.median(np.stack(arrays), axis=0)
    return median


def combine_models(
    batches: list[np.ndarray], *, from_logits: bool, image_offset: int = 0
) -> tuple[np.ndarray, float]:
    """Combine M models' batches ``(n, K, H, W)`` into one float64 probability batch.

    Parameters
    ----------
    batches : list of ndarray, each (n, K, H, W)
        The same images, one array per model (M >= 2).
    from_logits : bool
        The batches hold logits: each model's softmax is taken first.
    image_offset : int, default=0
        Index of the batch's first image, for error messages.

    Returns
    -------
    probs : ndarray of float64, shape (n, K, H, W)
        Per-class median over the models, renormalised to sum to 1.
    deviation : float
        Largest ``|sum_k p_k - 1|`` among the models' own rows (0 for logits),
        for the row-sum warning.

    Raises
    ------
    ValueError
        On a NaN, infinite or negative value, naming the model, class, image,
        row and column.

    Examples
    --------
    Model 2 disagrees; the median follows models 0 and 1:

    >>> a = np.array([0.8, 0.2]).reshape(1, 2, 1, 1)
    >>> b = np.array([0.7, 0.3]).reshape(1, 2, 1, 1)
    >>> c = np.array([0.1, 0.9]).reshape(1, 2, 1, 1)
    >>> probs, _ = combine_models([a, b, c], from_logits=False)
    >>> probs.ravel()
    array([0.7, 0.3])
    """
    stack = []
    deviation = 0.0
    for i, batch in enumerate(batches):
        values = kernel_floats(np.asarray(batch))
        check_model_batch(values, i, image_offset, from_logits)
        if from_logits:
            stack.append(softmax(values))
        else:
            deviation = max(deviation, row_deviation(values))
            stack.append(values.astype(np.float64, copy=False))
    median = _median(stack)
    total = median.sum(axis=1, keepdims=True)
    np.divide(median, total, out=median, where=total > 0)
    return median, deviation
