"""Input checks for `write_report`, run before anything is written."""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from segaudit._validation import allowed_labels, bad_labels
from segaudit.regions import BBOX_COLUMNS, ISSUE_TYPES
from segaudit.report._image import ReportImage, invalid
from segaudit.report._tables import is_missing

__all__ = [
    "CONFUSION_COLUMNS",
    "IMAGE_TABLE_COLUMNS",
    "REGION_COLUMNS",
    "check_class_names",
    "check_count",
    "check_frame",
    "check_ignore_index",
    "check_images",
    "check_palette",
    "check_regions",
    "check_summary",
    "check_warnings",
]

_FUNC = "write_report"
REGION_COLUMNS = (
    "stem",
    *BBOX_COLUMNS,
    "area",
    "given_label",
    "predicted_label",
    "mean_self_confidence",
    "severity",
    "issue_type",
)
CONFUSION_COLUMNS = ("given_label", "predicted_label", "num_pixel_issues")
IMAGE_TABLE_COLUMNS = ("image", "score", "num_pixel_issues")


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def check_class_names(class_names: Sequence[str]) -> list[str]:
    """Return the class names as a list; at least one, all str."""
    if isinstance(class_names, str) or not isinstance(class_names, Sequence):
        raise invalid("class_names", _FUNC, "a sequence of str", repr(class_names))
    names = list(class_names)
    bad = [name for name in names if not isinstance(name, str)]
    if not names or bad:
        got = "an empty sequence" if not names else f"the non-str item {bad[0]!r}"
        raise invalid("class_names", _FUNC, "a non-empty sequence of str", got)
    return names


def check_palette(class_colors: Sequence[Sequence[int]] | None, num_classes: int) -> None:
    """Check `class_colors`: None, or one ``(r, g, b)`` triplet in ``0..255`` per class."""
    if class_colors is None:
        return
    constraint = f"None or {num_classes} (r, g, b) triplets of ints in 0..255, one per class"
    colors = list(class_colors)
    if len(colors) != num_classes:
        raise invalid("class_colors", _FUNC, constraint, f"{len(colors)} colours")
    for k, color in enumerate(colors):
        parts = list(color) if isinstance(color, Sequence | np.ndarray) else [color]
        if len(parts) != 3 or not all(_is_int(c) and 0 <= c <= 255 for c in parts):
            raise invalid("class_colors", _FUNC, constraint, f"{color!r} for class {k}")


def check_ignore_index(ignore_index: int | None) -> None:
    """Check that `ignore_index` is None or an int (a class id such as 0 is allowed)."""
    if ignore_index is not None and not _is_int(ignore_index):
        raise invalid("ignore_index", _FUNC, "None or an int", repr(ignore_index))


def check_warnings(warnings: Sequence[str]) -> list[str]:
    """Return the warnings as a list; each a non-empty str."""
    if isinstance(warnings, str) or not isinstance(warnings, Sequence):
        raise invalid("warnings", _FUNC, "a sequence of str", repr(warnings)[:80])
    items = list(warnings)
    for i, text in enumerate(items):
        if not isinstance(text, str) or not text.strip():
            got = f"{text!r} at position {i}"[:80]
            raise invalid("warnings", _FUNC, "a sequence of non-empty str", got)
    return items


def check_count(name: str, value: int, *, minimum: int = 0) -> None:
    """Check an int option such as `max_regions` against its `minimum`."""
    if not _is_int(value) or value < minimum:
        raise invalid(name, _FUNC, f"an int >= {minimum}", repr(value))


def check_summary(summary: Mapping[str, object]) -> None:
    """Check that `summary` is a mapping."""
    if not isinstance(summary, Mapping):
        raise invalid("summary", _FUNC, "a mapping of name to value", type(summary).__name__)


def _check_range(
    array: np.ndarray, stem: str, field: str, num_classes: int, ignore_index: int | None
) -> None:
    bad = bad_labels(array, num_classes, ignore_index)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        allowed = allowed_labels(num_classes, ignore_index)
        got = f"{int(array[where])} at (row, col) {where} of image {stem!r}.{field}"
        raise invalid("images", _FUNC, f"masks holding only {allowed}", got)


def check_images(
    images: Sequence[ReportImage], num_classes: int, ignore_index: int | None
) -> dict[str, ReportImage]:
    """Check every image and its mask values; return them keyed by stem (in order)."""
    if not isinstance(images, Sequence):
        raise invalid("images", _FUNC, "a sequence of ReportImage", type(images).__name__)
    by_stem: dict[str, ReportImage] = {}
    for i, item in enumerate(images):
        if not isinstance(item, ReportImage):
            got = f"{type(item).__name__} at position {i}"
            raise invalid("images", _FUNC, "a sequence of ReportImage", got)
        if item.stem in by_stem:
            raise invalid("images", _FUNC, "images with unique stems", f"{item.stem!r} twice")
        _check_range(item.labels, item.stem, "labels", num_classes, ignore_index)
        _check_range(item.predicted, item.stem, "predicted", num_classes, ignore_index)
        by_stem[item.stem] = item
    return by_stem


def check_frame(name: str, frame: pd.DataFrame, required: Sequence[str]) -> None:
    """Check that `frame` is a DataFrame holding `required` columns (unless it has no rows)."""
    if not isinstance(frame, pd.DataFrame):
        raise invalid(name, _FUNC, "a pandas DataFrame", type(frame).__name__)
    missing = [col for col in required if col not in frame.columns]
    if missing and len(frame):
        constraint = f"a DataFrame with columns {list(required)}"
        raise invalid(name, _FUNC, constraint, f"one missing {missing}")


def _check_label(value: object, row: int, column: str, num_classes: int, ignore: object) -> None:
    if isinstance(value, str) or is_missing(value):
        return
    if isinstance(value, numbers.Real) and float(value).is_integer():
        label = int(float(value))
        if 0 <= label < num_classes or label == ignore:
            return
    constraint = f"a class name or a class id in 0..{num_classes - 1}"
    if ignore is not None:
        constraint += f" or ignore_index={ignore}"
    got = f"{value!r} in row {row}"
    raise invalid("regions", _FUNC, f"a DataFrame whose {column!r} is {constraint}", got)


def check_regions(
    regions: pd.DataFrame,
    by_stem: Mapping[str, ReportImage],
    num_classes: int,
    ignore_index: int | None,
) -> None:
    """Check the columns, boxes, labels and issue types of `regions`."""
    check_frame("regions", regions, REGION_COLUMNS)
    if len(regions) == 0:
        return
    for column in BBOX_COLUMNS:
        if not pd.api.types.is_integer_dtype(regions[column]):
            got = f"dtype {regions[column].dtype}"
            raise invalid("regions", _FUNC, f"a DataFrame with an integer {column!r}", got)
    for row, record in enumerate(regions.itertuples(index=False)):
        box = tuple(int(getattr(record, col)) for col in BBOX_COLUMNS)
        item = by_stem.get(record.stem) if isinstance(record.stem, str) else None
        height, width = item.labels.shape if item is not None else (np.inf, np.inf)
        if not (0 <= box[0] < box[2] <= height and 0 <= box[1] < box[3] <= width):
            where = "" if item is None else f" inside {record.stem!r} of shape {(height, width)}"
            constraint = f"a DataFrame of non-empty half-open boxes{where}"
            raise invalid("regions", _FUNC, constraint, f"box {box} in row {row}")
        if record.issue_type not in ISSUE_TYPES:
            constraint = f"a DataFrame whose 'issue_type' is one of {list(ISSUE_TYPES)}"
            raise invalid("regions", _FUNC, constraint, f"{record.issue_type!r} in row {row}")
        for column in ("given_label", "predicted_label"):
            _check_label(getattr(record, column), row, column, num_classes, ignore_index)
