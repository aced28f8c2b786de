"""`from_arrays`: review the array API's results (issue masks and a regions table)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from segaudit.export._masks import region_map
from segaudit.export._review import ReviewImage, ReviewSet, by_image, check_table, review_image

__all__ = ["from_arrays"]


def from_arrays(
    issues: npt.ArrayLike,
    regions: pd.DataFrame,
    *,
    class_names: Sequence[str] | None = None,
    labels: npt.ArrayLike | None = None,
    ignore_index: int | None = None,
    connectivity: int = 2,
    stems: Sequence[str] | None = None,
    file_names: Sequence[str] | None = None,
    scores: npt.ArrayLike | None = None,
    class_colors: Sequence[Sequence[int]] | None = None,
) -> ReviewSet:
    """Review the results of the array API.

    Parameters
    ----------
    issues : array-like of bool, shape (N, H, W)
        The flagged pixels the regions were found in; read one image at a time.
    regions : pandas.DataFrame
        The table of :func:`~segaudit.find_issue_regions` on `issues`.
    class_names : sequence of str, optional
        Default: the table's ``given_name`` / ``predicted_name``, else the ids as text.
    labels, ignore_index, connectivity
        As given to `find_issue_regions` (`labels` only to leave out void pixels).
    stems, file_names : sequence of str, optional
        Per image: a name (default ``image_<i>``) and its file (default ``<stem>.png``).
    scores : array-like of float, shape (N,), optional
        Image label-quality scores.
    class_colors : sequence of (r, g, b), optional
        Display colours of the classes.

    Examples
    --------
    >>> import segaudit
    >>> labels = np.zeros((1, 4, 4), int); predicted = labels.copy()
    >>> predicted[0, :2, :2] = 1
    >>> issues = predicted != labels
    >>> table = segaudit.find_issue_regions(issues, labels, predicted=predicted)
    >>> image = next(iter(from_arrays(issues, table, class_names=["bg", "cat"])))
    >>> image.file_name, image.regions[0].predicted_class, int(image.regions[0].mask.sum())
    ('image_0.png', 'cat', 4)
    """
    names = list(class_names) if class_names is not None else _names_of(regions)
    check_table(regions, names, "from_arrays")

    def stem(i: int) -> str:
        return str(stems[i]) if stems is not None else f"image_{i}"

    def images() -> Iterator[ReviewImage]:
        for i, rows in by_image(regions):
            issues_hw = np.asarray(_take(issues, i)).astype(bool, copy=False)
            labels_hw = None if labels is None else np.asarray(_take(labels, i))
            ids = region_map(
                issues_hw, labels_hw, ignore_index=ignore_index, connectivity=connectivity
            )
            name = stem(i)
            file_name = str(file_names[i]) if file_names is not None else f"{name}.png"
            score = None if scores is None else float(np.asarray(scores)[i])
            yield review_image(i, name, file_name, score, issues_hw, ids, rows, names)

    return ReviewSet(images, names, class_colors)


def _take(a: Any, i: int) -> Any:
    """Image `i` of an array-like (a numpy array, memmap, zarr array or nested list)."""
    return a[i] if hasattr(a, "shape") else np.asarray(a)[i]


def _names_of(regions: pd.DataFrame) -> list[str]:
    """Class names from a table's name columns, else the ids as text (up to the largest id)."""
    ids = np.concatenate([regions["given_label"], regions["predicted_label"]]).astype(np.int64)
    k = int(ids.max()) + 1 if ids.size else 0
    names = [str(c) for c in range(k)]
    if {"given_name", "predicted_name"} <= set(regions.columns):
        for col in ("given", "predicted"):
            for cid, name in zip(regions[f"{col}_label"], regions[f"{col}_name"], strict=True):
                names[int(cid)] = str(name)
    return names
