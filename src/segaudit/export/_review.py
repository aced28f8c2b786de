"""What every exporter reads: the flagged regions, image by image, each with its pixels.

A `ReviewSet` is built from the array API's results (`ReviewSet.from_arrays`:
the issue masks and the `find_issue_regions` table) or from a finished scan
folder (`ReviewSet.from_scan`). Images come one at a time, in the order of
their most severe region, so memory holds one image's masks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from segaudit._colors import class_palette
from segaudit._typing import BoolArray
from segaudit._validation import param_error
from segaudit.export._masks import region_crop
from segaudit.regions._records import BBOX_COLUMNS

__all__ = [
    "LABEL_BY",
    "ReviewImage",
    "ReviewRegion",
    "ReviewSet",
    "by_image",
    "check_table",
    "review_image",
]

LABEL_BY = ("predicted", "given")
"""Which class an exported region is drawn as: the model's suggestion, or the given label."""
REGION_COLUMNS = ("image", "region", *BBOX_COLUMNS, "area", "given_label", "predicted_label")
"""Columns a regions table must have (with ``severity`` and ``issue_type``)."""


@dataclass(frozen=True)
class ReviewRegion:
    """One flagged region: its record and its pixels inside its box."""

    region: int
    """Its number in the image (``scipy.ndimage.label`` order), as in ``regions.csv``."""
    box: tuple[int, int, int, int]
    """``(row0, col0, row1, col1)``, half-open like slices."""
    area: int
    given_label: int
    predicted_label: int
    given_class: str
    predicted_class: str
    issue_type: str
    severity: float
    mean_self_confidence: float | None
    mask: BoolArray
    """Its pixels inside `box`, ``(row1 - row0, col1 - col0)``."""

    def label(self, label_by: str) -> int:
        """Return the class id it is drawn as: ``predicted_label`` or ``given_label``."""
        return self.predicted_label if label_by == "predicted" else self.given_label

    def attributes(self) -> dict[str, Any]:
        """Return what each export attaches to the region (JSON-ready values)."""
        return {
            "issue_type": self.issue_type,
            "severity": self.severity,
            "given_class": self.given_class,
            "predicted_class": self.predicted_class,
            "given_label": self.given_label,
            "predicted_label": self.predicted_label,
            "mean_self_confidence": self.mean_self_confidence,
            "region": self.region,
        }


@dataclass(frozen=True)
class ReviewImage:
    """One image with flagged regions."""

    index: int
    """Its number in the regions table (``image`` column)."""
    stem: str
    file_name: str
    """The image file, as the labelling tool should find it."""
    height: int
    width: int
    score: float | None
    """Its label-quality score (lower is worse), when known."""
    issues: BoolArray
    """Every flagged pixel, ``(height, width)``."""
    regions: tuple[ReviewRegion, ...]
    """Most severe first."""


class ReviewSet:
    """The regions to review and the class names: the input of every exporter.

    Parameters
    ----------
    images : callable
        Returns a fresh iterable of `ReviewImage` each time (each exporter reads it once).
    class_names : sequence of str
        Name of class id ``k`` at ``k``.
    class_colors : sequence of (r, g, b), optional
        Display colours of the classes.
    """

    def __init__(
        self,
        images: Callable[[], Iterable[ReviewImage]],
        class_names: Sequence[str],
        class_colors: Sequence[Sequence[int]] | None = None,
    ) -> None:
        self._images = images
        self.class_names = tuple(str(n) for n in class_names)
        self.class_colors = (
            None
            if class_colors is None
            else tuple(tuple(int(c) for c in rgb) for rgb in class_colors)
        )
        if self.class_colors is not None and len(self.class_colors) != len(self.class_names):
            got = f"{len(self.class_colors)} colours for {len(self.class_names)} classes"
            raise param_error("class_colors", "ReviewSet", "one colour per class", got)

    def __iter__(self) -> Iterator[ReviewImage]:
        return iter(self._images())

    def hex_colors(self) -> list[str]:
        """Return each class's colour as ``#rrggbb``: `class_colors`, else segaudit's palette.

        Examples
        --------
        >>> ReviewSet(list, ["a", "b"], [(255, 0, 0), (0, 0, 16)]).hex_colors()
        ['#ff0000', '#000010']
        """
        colors = self.class_colors
        if colors is None:
            colors = tuple(
                tuple(int(c) for c in rgb) for rgb in class_palette(len(self.class_names))
            )
        return [f"#{r:02x}{g:02x}{b:02x}" for r, g, b in colors]


def check_table(regions: pd.DataFrame, names: Sequence[str], func: str) -> None:
    """Raise unless `regions` has the columns of a `find_issue_regions` table, all ids named."""
    missing = [c for c in (*REGION_COLUMNS, "severity", "issue_type") if c not in regions.columns]
    if missing:
        expected = "a find_issue_regions table (with columns image, region, bbox_*, ...)"
        raise param_error("regions", func, expected, f"a table without {missing}")
    ids = np.concatenate([regions["given_label"], regions["predicted_label"]]).astype(np.int64)
    if ids.size and (ids.min() < 0 or ids.max() >= len(names)):
        got = f"class id {ids.max() if ids.max() >= len(names) else ids.min()}"
        raise param_error(
            "class_names", func, f"a name for every class id (0..{len(names) - 1})", got
        )


def by_image(regions: pd.DataFrame) -> Iterator[tuple[int, pd.DataFrame]]:
    """Each image's rows, images in the order of their first (most severe) row."""
    images = regions["image"].to_numpy(dtype=np.int64)
    for _, rows in regions.groupby(images, sort=False):  # groups in order of appearance
        yield int(rows["image"].iloc[0]), rows


def _optional_float(value: Any) -> float | None:
    """Return a float, or None for a missing value (NaN)."""
    number = float(value)
    return None if math.isnan(number) else number


def review_image(
    index: int,
    stem: str,
    file_name: str,
    score: float | None,
    issues_hw: BoolArray,
    ids: np.ndarray,
    rows: pd.DataFrame,
    names: Sequence[str],
    *,
    where: str = "the regions table",
) -> ReviewImage:
    """Build one `ReviewImage` from its numbered regions (`region_map`) and its table rows.

    Raises
    ------
    ValueError
        If a row's area or box disagrees with the pixels of its region in `ids`
        (the table was found with other options, or on another mask).
    """
    found: list[ReviewRegion] = []
    sizes = np.bincount(np.asarray(ids).ravel())  # pixels of each region number, in one pass
    for row in rows.to_dict("records"):
        row0, col0, row1, col1 = (int(row[c]) for c in BBOX_COLUMNS)
        box = (row0, col0, row1, col1)
        crop = region_crop(ids, int(row["region"]), box)
        area = int(np.count_nonzero(crop))
        number = int(row["region"])
        total = int(sizes[number]) if 0 < number < sizes.size else 0
        if area != int(row["area"]) or total != area:
            raise ValueError(
                f"{where} does not match the issue mask of image {stem!r}: region "
                f"{int(row['region'])} has area {int(row['area'])} and box {box} in the table, "
                f"but {total} pixels ({area} inside that box) in the mask; were the regions "
                "found on this mask, with the same ignore_index and connectivity?"
            )
        given, predicted = int(row["given_label"]), int(row["predicted_label"])
        found.append(
            ReviewRegion(
                region=int(row["region"]),
                box=box,
                area=area,
                given_label=given,
                predicted_label=predicted,
                given_class=_name(row, "given", names),
                predicted_class=_name(row, "predicted", names),
                issue_type=str(row["issue_type"]),
                severity=float(row["severity"]),
                mean_self_confidence=_optional_float(row.get("mean_self_confidence", math.nan)),
                mask=crop,
            )
        )
    height, width = issues_hw.shape
    return ReviewImage(index, stem, file_name, height, width, score, issues_hw, tuple(found))


def _name(row: Mapping[Any, Any], which: str, names: Sequence[str]) -> str:
    """Return a region's class name: the table's name column, else `names` by id."""
    value = row.get(f"{which}_name")
    if value is not None and not (isinstance(value, float) and math.isnan(value)):
        return str(value)
    cid = int(row[f"{which}_label"])
    return names[cid] if 0 <= cid < len(names) else str(cid)
