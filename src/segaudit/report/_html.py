"""`write_report`: one self-contained HTML file, streamed to disk and renamed into place."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from segaudit.io._atomic import atomic_write
from segaudit.report._image import ReportImage, invalid
from segaudit.report._render import palette_array
from segaudit.report._sections import Context, iter_document
from segaudit.report._validate import (
    CONFUSION_COLUMNS,
    check_class_names,
    check_count,
    check_frame,
    check_ignore_index,
    check_images,
    check_palette,
    check_regions,
    check_summary,
    check_warnings,
)

__all__ = ["write_report"]


def write_report(
    path: str | os.PathLike[str],
    *,
    images: Sequence[ReportImage],
    regions: pd.DataFrame,
    confusions: pd.DataFrame,
    per_class: pd.DataFrame,
    summary: Mapping[str, object],
    class_names: Sequence[str],
    class_colors: Sequence[tuple[int, int, int]] | None = None,
    ignore_index: int | None = None,
    warnings: Sequence[str] = (),
    title: str = "segaudit report",
    max_regions: int = 50,
    max_confusions: int = 50,
    max_side: int = 512,
) -> Path:
    """Write a self-contained HTML report of the label issues found in a dataset.

    The file needs no network: images are embedded PNG ``data:`` URIs, the CSS is
    inline, there is no JavaScript. It is written atomically: on any error no file
    (and no temporary file) is left at `path`, and an existing file stays as it was.

    Parameters
    ----------
    path : str or PathLike
        Destination, e.g. ``"out/report.html"``. Its folder must exist.
    images : sequence of ReportImage
        The images to show, with unique stems; shown worst first (ascending score,
        ties in the given order), each as given mask, predicted mask and flagged pixels.
    regions : DataFrame
        One row per region, with columns ``stem`` (the image's stem), ``bbox_row0``,
        ``bbox_col0``, ``bbox_row1``, ``bbox_col1`` (half-open pixel box), ``area``,
        ``given_label``, ``predicted_label`` (class ids, names, or `ignore_index`),
        ``mean_self_confidence``, ``severity`` and ``issue_type`` (one of
        ``wrong_class``, ``missing_label``, ``spurious_label``, ``boundary``). The
        `max_regions` most severe (highest severity) are listed, with a crop when
        their stem is in `images`. A frame with no rows may lack the columns.
    confusions : DataFrame
        Columns ``given_label``, ``predicted_label``, ``num_pixel_issues``; the
        `max_confusions` largest counts are shown.
    per_class : DataFrame
        Any columns, one row per class, shown as is (numbers formatted).
    summary : mapping
        Name → value pairs shown as the dataset summary.
    class_names : sequence of str
        Name of each class id ``0..K-1``.
    class_colors : sequence of (int, int, int), optional
        RGB colour per class; default: a fixed palette of distinct hues.
    ignore_index : int, optional
        Void label of the given masks, drawn grey. It may be a class id (e.g. 0
        when class 0 is "unlabelled"): then a given 0 is void, a predicted 0 is
        class 0, and the predicted mask is drawn grey where the given mask is void.
    warnings : sequence of str, default=()
        Sentences shown in a box at the top of the page, before everything else
        (e.g. signs that the probabilities do not belong to these labels).
    title : str, default="segaudit report"
        Page title and heading.
    max_regions : int, default=50
        How many regions to list.
    max_confusions : int, default=50
        How many (given, predicted) pairs to list.
    max_side : int, default=512
        Long side, in pixels, of the embedded pictures; larger images are downscaled
        (nearest neighbour for masks; a downscaled pixel is flagged if any pixel
        under it is).

    Returns
    -------
    Path
        `path`.

    Examples
    --------
    >>> import numpy as np, pandas as pd, tempfile, pathlib
    >>> labels = np.array([[0, 1], [1, 255]])
    >>> item = ReportImage("img0", 0.25, 1, labels, np.array([[0, 1], [0, 1]]),
    ...                    np.array([[False, False], [True, False]]))
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "report.html"
    >>> write_report(out, images=[item], regions=pd.DataFrame(), confusions=pd.DataFrame(),
    ...              per_class=pd.DataFrame(), summary={"images": 1},
    ...              class_names=["sky", "<road>"], ignore_index=255).name
    'report.html'
    >>> "&lt;road&gt;" in out.read_text()
    True
    """
    names = check_class_names(class_names)
    num_classes = len(names)
    check_palette(class_colors, num_classes)
    check_ignore_index(ignore_index)
    notes = check_warnings(warnings)
    check_count("max_regions", max_regions)
    check_count("max_confusions", max_confusions)
    check_count("max_side", max_side, minimum=1)
    if not isinstance(title, str):
        raise invalid("title", "write_report", "a str", repr(title))
    check_summary(summary)
    check_frame("per_class", per_class, ())
    check_frame("confusions", confusions, CONFUSION_COLUMNS)
    by_stem = check_images(images, num_classes, ignore_index)
    check_regions(regions, by_stem, num_classes, ignore_index)
    final = Path(path)
    if not final.parent.is_dir():
        raise FileNotFoundError(f"The folder {str(final.parent)!r} for 'path' does not exist.")

    context = Context(names, palette_array(class_colors, num_classes), ignore_index, max_side)
    ranked = sorted(by_stem.values(), key=lambda item: item.score)
    top_regions = regions
    if len(regions):
        top_regions = regions.sort_values("severity", ascending=False, kind="stable")
    top_confusions = confusions
    if len(confusions):
        top_confusions = confusions.sort_values("num_pixel_issues", ascending=False, kind="stable")
    with atomic_write(final) as fh:
        for chunk in iter_document(
            context,
            title=title,
            warnings=notes,
            summary=summary,
            per_class=per_class,
            confusions=top_confusions,
            max_confusions=max_confusions,
            ranked=ranked,
            regions=top_regions,
            max_regions=max_regions,
            by_stem=by_stem,
        ):
            fh.write(chunk)
    return final
