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
from typing import Any

import numpy as np
import pandas as pd

from segaudit._validation import (
    as_array_like,
    check_bool,
    check_ignore_index,
    check_issues_mask,
    check_shapes,
    param_error,
)

__all__ = ["common_label_issues", "display_issues", "filter_by_class"]

_PREDICT_BATCH_VALUES = 1 << 24


def _shapes(issues: Any, labels: Any, pred_probs: Any, func: str) -> tuple[np.ndarray, Any, Any]:
    """Validate ``issues (N,H,W)``, ``labels (N,H,W)``, ``pred_probs (N,K,H,W)``."""
    pred_probs = as_array_like(pred_probs, "pred_probs", func)
    labels = as_array_like(labels, "labels", func)
    n, _, h, w = check_shapes(labels, pred_probs, func)
    return check_issues_mask(issues, (n, h, w), func), labels, pred_probs


def _image_labels(labels: Any, i: int, k: int, ignore_index: int | None, func: str) -> np.ndarray:
    """Image i's labels as int64, after checking they are classes (or void)."""
    given = np.asarray(labels[i])
    as_int = given.astype(np.int64)
    bad = (as_int != given) | (as_int < 0) | (as_int >= k)
    if ignore_index is not None:
        bad &= as_int != ignore_index
    if bad.any():
        r, c = np.argwhere(bad)[0]
        allowed = f"integers in 0..{k - 1}" + (
            "" if ignore_index is None else f" or ignore_index={ignore_index}"
        )
        raise ValueError(
            f"{func}: labels must be {allowed}; got {given[r, c].item()!r} at image {i}, "
            f"row {r}, column {c}."
        )
    return as_int


def _predicted(pred_probs: Any, images: np.ndarray, func: str) -> Iterator[tuple[int, np.ndarray]]:
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


def _check_class_index(value: Any, k: int, param: str, func: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 0 <= value < k:
        raise param_error(param, func, f"a class index in 0..{k - 1}", repr(value))
    return int(value)


def _check_top(top: Any, func: str) -> int:
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
    issues: np.ndarray,
    labels: Any,
    pred_probs: Any,
    *,
    ignore_index: int | None = None,
    func: str = "confusion_counts",
) -> np.ndarray:
    """Count flagged pixels per (given, predicted) class pair: a ``(K, K)`` int64 table."""
    ignore_index = check_ignore_index(ignore_index, func)
    issues, labels, pred_probs = _shapes(issues, labels, pred_probs, func)
    k = pred_probs.shape[1]
    table = np.zeros(k * k, dtype=np.int64)
    images = np.flatnonzero(issues.any(axis=(1, 2)))
    for i, predicted in _predicted(pred_probs, images, func):
        given = _image_labels(labels, i, k, ignore_index, func)
        flagged = issues[i] & (given != ignore_index) if ignore_index is not None else issues[i]
        table += np.bincount(given[flagged] * k + predicted[flagged], minlength=k * k)
    return table.reshape(k, k)


def confusion_frame(table: np.ndarray, names: Sequence[str], *, top: int | None) -> pd.DataFrame:
    """Turn a ``(K, K)`` count table into rows, most frequent first (ties by class ids)."""
    given, predicted = np.nonzero(table)
    counts = table[given, predicted]
    order = np.lexsort((predicted, given, -counts))[:top]
    return pd.DataFrame(
        {
            "given_label": [names[g] for g in given[order]],
            "predicted_label": [names[p] for p in predicted[order]],
            "num_pixel_issues": counts[order].astype(np.int64),
        }
    )


def common_label_issues(
    issues: Any,
    labels: Any,
    pred_probs: Any,
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
    top = _check_top(top, func)
    for e in exclude or ():
        table[:, _check_class_index(e, k, "exclude", func)] = 0
    df = confusion_frame(table, names, top=top)
    if verbose:
        for row in df.itertuples(index=False):
            print(
                f"Class {row.given_label!r} is potentially mislabeled as class "
                f"{row.predicted_label!r} for {row.num_pixel_issues} pixels in the dataset"
            )
    return df


def filter_by_class(
    class_index: int,
    issues: Any,
    labels: Any,
    pred_probs: Any,
    *,
    ignore_index: int | None = None,
) -> np.ndarray:
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
    issues, labels, pred_probs = _shapes(issues, labels, pred_probs, func)
    c = _check_class_index(class_index, pred_probs.shape[1], "class_index", func)
    out = np.zeros(issues.shape, dtype=np.bool_)
    k = pred_probs.shape[1]
    for i, predicted in _predicted(pred_probs, np.flatnonzero(issues.any(axis=(1, 2))), func):
        given = _image_labels(labels, i, k, ignore_index, func)
        out[i] = issues[i] & ((given == c) | (predicted == c))
    return out


def display_issues(
    issues: Any,
    labels: Any = None,
    pred_probs: Any = None,
    *,
    class_names: Sequence[str] | None = None,
    exclude: Sequence[int] | None = None,
    top: int | None = 20,
    ignore_index: int | None = None,
    show: bool = True,
    block: bool | None = None,
) -> list[Any]:
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
    if pred_probs is not None:
        pred_probs = as_array_like(pred_probs, "pred_probs", func)
        if len(pred_probs.shape) != 4:
            raise param_error(
                "pred_probs",
                func,
                "an array of shape (N, K, H, W)",
                f"shape {tuple(pred_probs.shape)}",
            )
    if labels is not None:
        labels = as_array_like(labels, "labels", func)
    if pred_probs is not None and labels is not None:
        mask, labels, pred_probs = _shapes(mask, labels, pred_probs, func)
    elif labels is not None:
        check_issues_mask(mask, tuple(labels.shape), func)
    elif pred_probs is not None:
        n, _, h, w = pred_probs.shape
        check_issues_mask(mask, (n, h, w), func)
    if 0 in mask.shape:
        raise ValueError(
            f"{func}: need at least one image with at least one pixel; got "
            f"issues of shape {mask.shape}."
        )
    highest = -1
    if labels is not None:
        k = pred_probs.shape[1] if pred_probs is not None else None
        highest = _check_plot_labels(labels, k, ignore_index, func)
    if pred_probs is not None:
        for _ in _predicted(pred_probs, np.arange(mask.shape[0]), func):
            pass
    if class_names is not None:
        if pred_probs is not None:
            class_names = _check_names(class_names, pred_probs.shape[1], func)
        else:
            class_names = _check_enough_names(class_names, highest + 1, func)
    top = _check_top(top, func)
    figures = plot_issues(mask, labels, pred_probs, class_names, exclude, top, ignore_index)
    if show:
        show_figures(block)
    return figures


def _check_plot_labels(labels: Any, k: int | None, ignore_index: int | None, func: str) -> int:
    """Labels to draw are integers, in ``0..K-1`` when K is known (or void); return the largest."""
    highest = -1
    for i in range(labels.shape[0]):
        given = _image_labels(
            labels, i, k if k is not None else np.iinfo(np.int64).max, ignore_index, func
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
