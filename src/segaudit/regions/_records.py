"""The region record: its columns, the issue types, ranking, and the DataFrame form.

Every table of regions (one image's, a dataset's spool, the report's input)
uses these names, so they are defined here once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from segaudit._validation import param_error

__all__ = [
    "BBOX_COLUMNS",
    "ISSUE_TYPES",
    "REGION_DTYPE",
    "rank_regions",
    "regions_frame",
]

ISSUE_TYPES = ("boundary", "missing_label", "spurious_label", "wrong_class")
"""Issue types in the order they are decided; ``REGION_DTYPE["issue_type"]`` indexes it."""
BBOX_COLUMNS = ("bbox_row0", "bbox_col0", "bbox_row1", "bbox_col1")
"""A region's bounding box, half-open like slices: rows ``row0:row1``, columns ``col0:col1``."""
INT_COLUMNS = ("image", "region", *BBOX_COLUMNS, "area", "given_label", "predicted_label")
REGION_DTYPE = np.dtype(
    [(c, np.int64) for c in INT_COLUMNS]
    + [("mean_self_confidence", np.float64), ("severity", np.float64), ("issue_type", np.int8)]
)
"""One region as :func:`~segaudit.regions._image.image_regions` returns it."""


def rank_regions(table: np.ndarray) -> np.ndarray:
    """Order that ranks `table` most severe first, ties by (image, region).

    `table` must be in (image, region) order, as image tables concatenated
    image by image are; the stable sort then breaks ties that way.

    Examples
    --------
    >>> table = np.zeros(3, REGION_DTYPE); table["severity"] = [1.0, 3.0, 1.0]
    >>> rank_regions(table).tolist()
    [1, 0, 2]
    """
    return np.argsort(-table["severity"], kind="stable")


def regions_frame(table: np.ndarray, class_names: Sequence[str] | None) -> pd.DataFrame:
    """Build the DataFrame of a `REGION_DTYPE` table, rows in the table's order.

    Raises
    ------
    ValueError
        If `class_names` has no name for a class id in the table.
    """
    data: dict[str, Any] = {c: np.asarray(table[c], dtype=np.int64) for c in INT_COLUMNS}
    if class_names is not None:
        ids = np.r_[data["given_label"], data["predicted_label"]]
        if ids.size and ids.max() >= len(class_names):
            got = f"{len(class_names)} names and class id {ids.max()}"
            expected = "a name for every class id in the regions"
            raise param_error("class_names", "find_issue_regions", expected, got)
        names = np.array(list(class_names), dtype=object)
        for col in ("given", "predicted"):
            data[f"{col}_name"] = names[data[f"{col}_label"]]
    for col in ("mean_self_confidence", "severity"):
        data[col] = np.asarray(table[col], dtype=np.float64)
    data["issue_type"] = np.array(ISSUE_TYPES, dtype=object)[table["issue_type"]]
    frame: pd.DataFrame = pd.DataFrame(data)  # the stubs type the constructor as Any
    return frame
