"""`from_scan`: review a finished ``segaudit scan`` folder.

The folder gives every input: ``regions.csv`` (the regions, most severe
first), ``images.csv`` (image scores), ``per_class.csv`` (the class names, in
id order) and ``masks/<stem>.png`` (each flagged image's issue mask, which
is labelled again to give each region's pixels).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from segaudit._validation import param_error
from segaudit.export._masks import region_map
from segaudit.export._review import ReviewImage, ReviewSet, by_image, check_table, review_image
from segaudit.io._csv import FORMULA_PREFIXES

__all__ = ["IMAGE_PATH_COLUMN", "from_scan", "read_scan_csv", "restore_cell"]

IMAGE_PATH_COLUMN = "image_path"
"""A column of ``images.csv`` or ``regions.csv`` naming each image's file, read when present."""
_TEXT = ("stem", "image", "given_name", "predicted_name", "issue_type", "class", IMAGE_PATH_COLUMN)


def restore_cell(value: str) -> str:
    """Undo the CSV writer's guard: drop the ``'`` put before a formula-like text cell.

    Examples
    --------
    >>> restore_cell("'=1+1"), restore_cell("'plain"), restore_cell("a")
    ('=1+1', "'plain", 'a')
    """
    return value[1:] if value.startswith("'") and value[1:].startswith(FORMULA_PREFIXES) else value


def read_scan_csv(path: Path) -> pd.DataFrame:
    """Read one of the scan's CSVs: text columns as text (no "NA" guessing), cells restored."""
    if not path.is_file():
        raise FileNotFoundError(
            f"from_scan needs {path.name} in the scan folder; {path} is missing"
        )
    frame = pd.read_csv(
        path,
        dtype={c: str for c in _TEXT},
        keep_default_na=False,
        na_values={"mean_self_confidence": ["", "nan", "NaN"], "score": ["", "nan", "NaN"]},
    )
    for col in _TEXT:
        if col in frame.columns:
            frame[col] = frame[col].map(restore_cell)
    return frame


def _read_mask(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("L")) > 0


def from_scan(
    scan_dir: str | os.PathLike[str],
    *,
    file_names: Mapping[str, str] | None = None,
    class_colors: Sequence[Sequence[int]] | None = None,
    connectivity: int = 2,
) -> ReviewSet:
    """Review the results in a scan's output folder.

    Parameters
    ----------
    scan_dir : path
        A folder ``segaudit scan`` wrote (or its stage, before it is published).
    file_names : mapping of str to str, optional
        The image file of each stem, as the labelling tool should see it. Default:
        the ``image_path`` column of ``images.csv`` or ``regions.csv`` when there is
        one, else ``<stem>.png``.
    class_colors : sequence of (r, g, b), optional
        Display colours of the classes.
    connectivity : {1, 2}, default=2
        As the regions were found with (the scan's is 2).

    Returns
    -------
    ReviewSet
        Images with at least one region, read when iterated.

    Raises
    ------
    FileNotFoundError
        If a CSV or the mask of an image with regions is missing.
    ValueError
        If ``regions.csv`` lacks a column, or disagrees with a mask.
    """
    root = Path(scan_dir)
    if not root.is_dir():
        raise param_error("scan_dir", "from_scan", "a scan output folder", f"'{root}'")
    regions = read_scan_csv(root / "regions.csv")
    names = [str(n) for n in read_scan_csv(root / "per_class.csv")["class"]]
    check_table(regions, names, "from_scan")
    if "stem" not in regions.columns:
        raise param_error("regions", "from_scan", "a regions.csv with a stem column", "none")
    images = read_scan_csv(root / "images.csv")
    scores = dict(zip(images["image"], images["score"].astype(float), strict=True))
    paths = dict(file_names or {})
    for table, key in ((images, "image"), (regions, "stem")):
        if IMAGE_PATH_COLUMN in table.columns and file_names is None:
            paths.update(zip(table[key], table[IMAGE_PATH_COLUMN], strict=True))

    def read() -> Iterator[ReviewImage]:
        for i, rows in by_image(regions):
            stem = str(rows["stem"].iloc[0])
            mask_path = root / "masks" / f"{stem}.png"
            if not mask_path.is_file():
                raise FileNotFoundError(
                    f"from_scan needs the issue mask of {stem!r}, which has regions in "
                    f"regions.csv; {mask_path} is missing"
                )
            issues = _read_mask(mask_path)
            ids = region_map(issues, connectivity=connectivity)
            score = scores.get(stem)
            yield review_image(
                i,
                stem,
                str(paths.get(stem, f"{stem}.png")),
                None if score is None or np.isnan(score) else float(score),
                issues,
                ids,
                rows,
                names,
                where=f"{root / 'regions.csv'}",
            )

    return ReviewSet(read, names, class_colors)
