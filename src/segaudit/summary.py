"""Dataset-level summaries of label issues (mirrors ``cleanlab.segmentation.summary``).

Deliberate differences from the reference:

- :func:`filter_by_class` raises ``ValueError`` for a class index outside
  ``0..K-1``, where the reference returns an all-False mask: no pixel can have
  such a class, so asking for one is a mistake (e.g. a void label or an
  off-by-one class id) that an empty answer would hide.
- :func:`display_issues` returns the figures it draws (the reference returns
  None); like the reference it then calls ``matplotlib.pyplot.show()``
  (``show=False`` skips that).
- Class names must match the classes: K names when K is known (from
  `pred_probs`), else at least one per class id in `labels`.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from segaudit._typing import BoolArray, IntArray, LabelsLike, MaskLike, ProbsLike, SliceableArray
from segaudit._validation import (
    as_array_like,
    check_bool,
    check_ignore_index,
    check_issues_mask,
    check_labels,
    check_shapes,
    param_error,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["common_label_issues", "display_issues", "filter_by_class"]


def _shapes(
    issues: MaskLike, labels: LabelsLike, pred_probs: ProbsLike, func: str
) -> tuple[BoolArray, SliceableArray, SliceableArray]:
    """Validate ``issues (N,H,W)``, ``labels (N,H,W)``, ``pred_probs (N,K,H,W)``."""
    probs = as_array_like(pred_probs, "pred_probs", func)
    given = as_array_like(labels, "labels", func)
    n, _, h, w = check_shapes(given, probs, func)
    return check_issues_mask(issues, (n, h, w), func), given, probs


def _image_labels(labels: SliceableArray, i: int, k: int, ignore_index: int | None) -> IntArray:
    """Image i's labels as int64, after checking they are classes (or void).

    Examples
    --------
    >>> _image_labels(np.array([[[0, 1]], [[2, 255]]]), 1, 3, 255)
    array([[  2, 255]])
    >>> _image_labels(np.array([[[0, 1]], [[2, 3]]]), 1, 3, 255)
    Traceback (most recent call last):
    ...
    ValueError: labels must be integers in 0..2 or ignore_index=255; got 3 at image 1, row 0, column 1.
    """  # noqa: E501
    given = np.asarray(labels[i])
    check_labels(given, k, ignore_index, where=f"image {i}")
    return given.astype(np.int64)


def _predicted(
    pred_probs: SliceableArray, images: IntArray, func: str
) -> Iterator[tuple[int, IntArray]]:
    """Yield ``(image, argmax map)`` for the given images, reading each once."""
    for i in images:
        probs = np.asarray(pred_probs[int(i)])
        finite = np.isfinite(probs)
        if not finite.all():
            k, r, c = np.argwhere(~finite)[0]
            raise ValueError(
                f"{func}: pred_probs must be finite; got {probs[k, r, c].item()!r} at class "
                f"{k} of image {int(i)}, row {r}, column {c}."
            )
        yield int(i), probs.argmax(axis=0)


def _check_class_index(value: object, k: int, param: str, func: str) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or not 0 <= int(value) < k
    ):
        raise param_error(param, func, f"a class index in 0..{k - 1}", repr(value))
    return int(value)


def _check_top(top: object, func: str) -> int:
    if top is None:
        return 20
    if isinstance(top, bool) or not isinstance(top, numbers.Integral) or top < 0:
        raise param_error("top", func, "a non-negative integer", repr(top))
    return int(top)


def _check_names(class_names: Sequence[str] | None, k: int, func: str) -> list[str]:
    if class_names is None:
        return [str(i) for i in range(k)]
    names = [str(x) for x in class_names]
    if len(names) != k:
        raise param_error("class_names", func, f"{k} names (one per class)", f"{len(names)}")
    return names


def confusion_counts(
    issues: MaskLike,
    labels: LabelsLike,
    pred_probs: ProbsLike,
    *,
    ignore_index: int | None = None,
    func: str = "confusion_counts",
) -> np.ndarray:
    """Count flagged pixels per (given, predicted) class pair: a ``(K, K)`` int64 table."""
    ignore_index = check_ignore_index(ignore_index, func)
    mask, given_labels, probs = _shapes(issues, labels, pred_probs, func)
    k = probs.shape[1]
    table = np.zeros(k * k, dtype=np.int64)
    images = np.flatnonzero(mask.any(axis=(1, 2)))
    for i, predicted in _predicted(probs, images, func):
        given = _image_labels(given_labels, i, k, ignore_index)
        flagged = mask[i] & (given != ignore_index) if ignore_index is not None else mask[i]
        table += np.bincount(given[flagged] * k + predicted[flagged], minlength=k * k)
    return table.reshape(k, k)


def confusion_frame(table: np.ndarray, names: Sequence[str], *, top: int | None) -> pd.DataFrame:
    """Turn a ``(K, K)`` count table into rows, most frequent first (ties by class ids)."""
    given, predicted = np.nonzero(table)
    counts = table[given, predicted]
    order = np.lexsort((predicted, given, -counts))[:top]
    frame: pd.DataFrame = pd.DataFrame(
        {
            "given_label": [names[g] for g in given[order]],
            "predicted_label": [names[p] for p in predicted[order]],
            "num_pixel_issues": counts[order].astype(np.int64),
        }
    )
    return frame


def common_label_issues(
    issues: MaskLike,
    labels: LabelsLike,
    pred_probs: ProbsLike,
    *,
    class_names: Sequence[str] | None = None,
    exclude: Sequence[int] | None = None,
    top: int | None = 20,
    verbose: bool = True,
    ignore_index: int | None = None,
) -> pd.DataFrame:
    """Tabulate the most frequent (given label, predicted label) pairs among issues.

    Parameters
    ----------
    issues : array_like of bool, shape (N, H, W)
        From :func:`~segaudit.find_label_issues`.
    labels : array_like of int, shape (N, H, W)
    pred_probs : array_like of float, shape (N, K, H, W)
        Probabilities or logits (only the argmax is used).
    class_names : sequence of str, optional
        K names; default ``"0"``, ``"1"``, ...
    exclude : sequence of int, optional
        Predicted classes to leave out.
    top : int, default=20
        At most this many rows (None: 20, as in the reference).
    verbose : bool, default=True
        Print one line per row.
    ignore_index : int, optional
        Label of void pixels (allowed in `labels`, never counted).

    Returns
    -------
    pandas.DataFrame
        Columns ``given_label``, ``predicted_label``, ``num_pixel_issues``; most
        frequent first, ties by given then predicted class id.

    Examples
    --------
    >>> import numpy as np
    >>> from segaudit import common_label_issues
    >>> issues = np.array([[[True, True, False]]])
    >>> labels = np.array([[[1, 1, 0]]])
    >>> probs = np.array([[[[0.9, 0.8, 0.7]], [[0.1, 0.2, 0.3]]]])
    >>> common_label_issues(issues, labels, probs, class_names=["sky", "tree"], verbose=False)
      given_label predicted_label  num_pixel_issues
    0        tree             sky                 2
    """
    func = "common_label_issues"
    verbose = check_bool(verbose, "verbose", func)
    table = confusion_counts(issues, labels, pred_probs, ignore_index=ignore_index, func=func)
    k = table.shape[0]
    names = _check_names(class_names, k, func)
    for e in exclude or ():
        table[:, _check_class_index(e, k, "exclude", func)] = 0
    df = confusion_frame(table, names, top=_check_top(top, func))
    if verbose:
        for row in df.itertuples(index=False):
            print(
                f"Class {row.given_label!r} is potentially mislabeled as class "
                f"{row.predicted_label!r} for {row.num_pixel_issues} pixels in the dataset"
            )
    return df


def filter_by_class(
    class_index: int,
    issues: MaskLike,
    labels: LabelsLike,
    pred_probs: ProbsLike,
    *,
    ignore_index: int | None = None,
) -> BoolArray:
    """Keep the issues whose given or predicted class is `class_index`.

    Parameters
    ----------
    class_index : int
        A class in ``0..K-1``. Unlike the reference (which returns an all-False
        mask), any other value is a ``ValueError``: no pixel can have it.
    issues : array_like of bool, shape (N, H, W)
    labels : array_like of int, shape (N, H, W)
    pred_probs : array_like of float, shape (N, K, H, W)
    ignore_index : int, optional
        Label of void pixels (allowed in `labels`).

    Returns
    -------
    ndarray of bool, shape (N, H, W)

    Examples
    --------
    >>> import numpy as np
    >>> from segaudit import filter_by_class
    >>> issues = np.array([[[True, True]]])
    >>> labels = np.array([[[0, 2]]])
    >>> probs = np.array([[[[0.1, 0.1]], [[0.8, 0.1]], [[0.1, 0.8]]]])
    >>> filter_by_class(1, issues, labels, probs)
    array([[[ True, False]]])
    """
    func = "filter_by_class"
    ignore_index = check_ignore_index(ignore_index, func)
    mask, given_labels, probs = _shapes(issues, labels, pred_probs, func)
    k = probs.shape[1]
    c = _check_class_index(class_index, k, "class_index", func)
    out = np.zeros(mask.shape, dtype=np.bool_)
    for i, predicted in _predicted(probs, np.flatnonzero(mask.any(axis=(1, 2))), func):
        given = _image_labels(given_labels, i, k, ignore_index)
        out[i] = mask[i] & ((given == c) | (predicted == c))
    return out


def display_issues(
    issues: MaskLike,
    labels: LabelsLike | None = None,
    pred_probs: ProbsLike | None = None,
    *,
    class_names: Sequence[str] | None = None,
    exclude: Sequence[int] | None = None,
    top: int | None = 20,
    ignore_index: int | None = None,
    show: bool = True,
    block: bool | None = None,
) -> list[Figure]:
    """Plot the images with the most flagged pixels (needs matplotlib).

    Each figure shows the given mask, the predicted mask and the flagged pixels
    in red; with `class_names`, a first figure holds the class legend. As in
    the reference, ``matplotlib.pyplot.show()`` is called once they are drawn,
    so a script shows them; the figures are also returned.

    Parameters
    ----------
    issues : array_like of bool, shape (N, H, W)
    labels : array_like of int, shape (N, H, W), optional
    pred_probs : array_like of float, shape (N, K, H, W), optional
    class_names : sequence of str, optional
        One name per class: K names with `pred_probs`, else at least one per
        class id in `labels`.
    exclude : sequence of int, optional
        Hide flagged pixels whose given label is one of these (needs `labels`).
    top : int, default=20
        How many images.
    ignore_index : int, optional
        Label of void pixels (allowed in `labels`, drawn grey).
    show : bool, default=True
        Call ``matplotlib.pyplot.show()`` once the figures are drawn (with a
        non-interactive backend such as Agg this shows nothing, silently).
    block : bool, optional
        Passed to ``matplotlib.pyplot.show(block=...)`` when given.

    Returns
    -------
    list of matplotlib.figure.Figure

    Raises
    ------
    ValueError
        On mismatched shapes, labels that are not classes, non-finite
        probabilities, too few or too many class names, or bad options.
    """
    from segaudit._plot import plot_issues, show_figures

    func = "display_issues"
    show = check_bool(show, "show", func)
    if block is not None:
        block = check_bool(block, "block", func)
    ignore_index = check_ignore_index(ignore_index, func)
    if exclude and labels is None:
        raise ValueError(f"{func}: 'exclude' needs 'labels' to know each pixel's given class.")
    mask = np.asarray(issues)
    if mask.ndim != 3 or mask.dtype != np.bool_:
        raise param_error(
            "issues",
            func,
            "a boolean mask of shape (N, H, W)",
            f"{mask.dtype} array of shape {mask.shape}",
        )
    probs = None if pred_probs is None else as_array_like(pred_probs, "pred_probs", func)
    if probs is not None and len(probs.shape) != 4:
        raise param_error(
            "pred_probs", func, "an array of shape (N, K, H, W)", f"shape {tuple(probs.shape)}"
        )
    given = None if labels is None else as_array_like(labels, "labels", func)
    if probs is not None and given is not None:
        mask, given, probs = _shapes(mask, given, probs, func)
    elif given is not None:
        check_issues_mask(mask, tuple(given.shape), func)
    elif probs is not None:
        n, _, h, w = probs.shape
        check_issues_mask(mask, (n, h, w), func)
    if 0 in mask.shape:
        raise ValueError(
            f"{func}: need at least one image with at least one pixel; got "
            f"issues of shape {mask.shape}."
        )
    highest = -1
    if given is not None:
        highest = _check_plot_labels(given, None if probs is None else probs.shape[1], ignore_index)
    if probs is not None:
        for _ in _predicted(probs, np.arange(mask.shape[0]), func):
            pass
    names = None
    if class_names is not None:
        if probs is not None:
            names = _check_names(class_names, probs.shape[1], func)
        else:
            names = _check_enough_names(class_names, highest + 1, func)
    top = _check_top(top, func)
    figures: list[Figure] = plot_issues(mask, given, probs, names, exclude, top, ignore_index)
    if show:
        show_figures(block)
    return figures


def _check_plot_labels(labels: SliceableArray, k: int | None, ignore_index: int | None) -> int:
    """Labels to draw are integers, in ``0..K-1`` when K is known (or void); return the largest."""
    highest = -1
    for i in range(labels.shape[0]):
        given = _image_labels(
            labels, i, k if k is not None else int(np.iinfo(np.int64).max), ignore_index
        )
        if ignore_index is not None:
            given = given[given != ignore_index]
        highest = max(highest, int(given.max(initial=-1)))
    return highest


def _check_enough_names(class_names: Sequence[str], needed: int, func: str) -> list[str]:
    """Without K, `labels` tell how many names are needed: one per class id up to the largest."""
    names = [str(x) for x in class_names]
    if len(names) < needed:
        raise param_error(
            "class_names",
            func,
            f"at least {needed} names (one per class id 0..{needed - 1} in labels)",
            f"{len(names)}",
        )
    return names
