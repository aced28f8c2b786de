"""`write_report`: one self-contained HTML file, streamed to disk and renamed into place."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from segaudit.io._atomic import atomic_write
from segaudit.report._context import Context
from segaudit.report._image import ReportImage, invalid
from segaudit.report._metrics import check_matrix, matrix_from_pairs
from segaudit.report._palette import check_mask_palette, class_colors_for
from segaudit.report._sections import Page, iter_document
from segaudit.report._validate import (
    CONFUSION_COLUMNS,
    IMAGE_TABLE_COLUMNS,
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

_FUNC = "write_report"


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
    mask_palette: Sequence[Sequence[int]] | Sequence[int] | np.ndarray | None = None,
    model_confusion: np.ndarray | None = None,
    image_table: pd.DataFrame | None = None,
    ignore_index: int | None = None,
    warnings: Sequence[str] = (),
    title: str = "segaudit report",
    max_regions: int = 200,
    max_confusions: int = 50,
    max_image_rows: int = 20_000,
    max_heatmap_classes: int = 40,
    max_side: int = 512,
) -> Path:
    """Write a self-contained HTML report of the label issues found in a dataset.

    The file needs no network: images are embedded PNG ``data:`` URIs, the CSS
    is inline, and one inline script (allowed by its SHA-256 hash in the page's
    Content-Security-Policy, which forbids every fetch) sorts, filters and pages
    the tables; without it every row is simply shown. It is written atomically:
    on any error no file (and no temporary file) is left at `path`, and an
    existing file stays as it was.

    The page holds: warnings, the summary, the colour legend, the model against
    the labels (per-class IoU and pixel accuracy and a confusion heat map, when
    `model_confusion` is given), the per-class table, a heat map and a list of
    the flagged pixels' (given, predicted) pairs, a table of every image with
    flagged pixels (up to `max_image_rows`), picture cards of the `images` with
    flagged pixels (10 to a page), and the regions of those images, each with a
    crop. Its size is bounded by the pictures asked for: `images` and the
    regions' crops (long side at most 192 pixels); the rest is table rows.

    Parameters
    ----------
    path : str or PathLike
        Destination, e.g. ``"out/report.html"``. Its folder must exist.
    images : sequence of ReportImage
        The images to draw, with unique stems; shown worst first (ascending score,
        ties in the given order), each as given mask, predicted mask and flagged
        pixels. Images with no flagged pixel are left out (the note says how many).
    regions : DataFrame
        One row per region, with columns ``stem`` (the image's stem), ``bbox_row0``,
        ``bbox_col0``, ``bbox_row1``, ``bbox_col1`` (half-open pixel box), ``area``,
        ``given_label``, ``predicted_label`` (class ids, names, or `ignore_index`),
        ``mean_self_confidence``, ``severity`` and ``issue_type`` (one of
        ``wrong_class``, ``missing_label``, ``spurious_label``, ``boundary``). The
        `max_regions` most severe (highest severity) whose image is drawn are listed,
        each with a crop; the others are counted in a note. A frame with no rows may
        lack the columns.
    confusions : DataFrame
        Columns ``given_label``, ``predicted_label`` (names or ids),
        ``num_pixel_issues``: flagged pixels per pair. Drawn as a heat map; the
        `max_confusions` largest counts are also listed.
    per_class : DataFrame
        Any columns, one row per class, shown as is (numbers formatted).
    summary : mapping
        Name → value pairs shown as the dataset summary.
    class_names : sequence of str
        Name of each class id ``0..K-1``.
    class_colors : sequence of (int, int, int), optional
        RGB colour per class (e.g. from a classes file); wins over `mask_palette`.
    mask_palette : sequence of (int, int, int), flat sequence of int, or ndarray, optional
        The masks' own PNG palette (as :func:`read_mask_palette` or PIL's
        ``getpalette()`` give it): entry k colours class k, so palette masks such
        as Pascal VOC's look as in their own viewers. Classes past its end, and
        every class when neither is given, get segaudit's fixed palette.
    model_confusion : array_like of int, shape (K, K), optional
        Labelled pixels per (given class, predicted class) over the whole dataset,
        agreeing pixels on the diagonal (sum :func:`count_pairs` over the images).
        Gives the model's per-class IoU and pixel accuracy and its confusion heat
        map; without it that section is left out.
    image_table : DataFrame, optional
        Every image of the dataset: columns ``image`` (stem), ``score``,
        ``num_pixel_issues`` and optionally ``fraction_pixel_issues`` (as
        ``images.csv``). Its images with flagged pixels are listed, worst first;
        default: the `images`.
    ignore_index : int, optional
        Void label of the given masks, drawn grey. It may be a class id (e.g. 0
        when class 0 is "unlabelled"): then a given 0 is void, a predicted 0 is
        class 0, and the predicted mask is drawn grey where the given mask is void.
    warnings : sequence of str, default=()
        Sentences shown in a box at the top of the page, before everything else
        (e.g. signs that the probabilities do not belong to these labels).
    title : str, default="segaudit report"
        Page title and heading.
    max_regions : int, default=200
        How many regions to list (each with a crop).
    max_confusions : int, default=50
        How many (given, predicted) pairs to list.
    max_image_rows : int, default=20000
        How many images with flagged pixels to list (worst first).
    max_heatmap_classes : int, default=40
        Classes in a heat map, at most: those with the most pixels off the diagonal.
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
    palette = check_mask_palette(mask_palette, _FUNC)
    matrix = check_matrix(model_confusion, num_classes, _FUNC)
    check_ignore_index(ignore_index)
    notes = check_warnings(warnings)
    check_count("max_regions", max_regions)
    check_count("max_confusions", max_confusions)
    check_count("max_image_rows", max_image_rows)
    check_count("max_heatmap_classes", max_heatmap_classes, minimum=1)
    check_count("max_side", max_side, minimum=1)
    if not isinstance(title, str):
        raise invalid("title", _FUNC, "a str", repr(title))
    check_summary(summary)
    check_frame("per_class", per_class, ())
    check_frame("confusions", confusions, CONFUSION_COLUMNS)
    if image_table is not None:
        check_frame("image_table", image_table, IMAGE_TABLE_COLUMNS)
    by_stem = check_images(images, num_classes, ignore_index)
    check_regions(regions, by_stem, num_classes, ignore_index)
    final = Path(path)
    if not final.parent.is_dir():
        raise FileNotFoundError(f"The folder {str(final.parent)!r} for 'path' does not exist.")

    context = Context(
        names, class_colors_for(num_classes, class_colors, palette), ignore_index, max_side
    )
    ranked = sorted(by_stem.values(), key=lambda item: item.score)
    cards = [item for item in ranked if item.num_issues > 0]
    drawn = {item.stem for item in cards}
    top_regions = regions
    if len(regions):
        top_regions = regions.sort_values("severity", ascending=False, kind="stable")
    with_pictures = top_regions[top_regions["stem"].isin(drawn)] if len(regions) else regions
    top_confusions = confusions
    if len(confusions):
        top_confusions = confusions.sort_values("num_pixel_issues", ascending=False, kind="stable")
    rows = _image_rows(image_table, ranked, ignore_index, num_classes)
    page = Page(
        title=title,
        warnings=notes,
        summary=summary,
        per_class=per_class,
        confusions=top_confusions,
        max_confusions=max_confusions,
        flagged_matrix=matrix_from_pairs(confusions, names)[0],
        model_confusion=matrix,
        max_heatmap_classes=max_heatmap_classes,
        cards=cards,
        clean_left_out=len(ranked) - len(cards),
        image_rows=rows.head(max_image_rows),
        images_with_issues=len(rows),
        regions=with_pictures.head(max_regions),
        regions_total=len(regions),
        regions_left_out=len(regions) - len(with_pictures),
        by_stem=by_stem,
    )
    # closed at once on an error: the drawing threads stop before the file is dropped
    with atomic_write(final) as fh, contextlib.closing(iter_document(context, page)) as chunks:
        for chunk in chunks:
            fh.write(chunk)
    return final


def _image_rows(
    table: pd.DataFrame | None,
    ranked: Sequence[ReportImage],
    ignore_index: int | None,
    num_classes: int,
) -> pd.DataFrame:
    """Return the images with flagged pixels, worst first (``images.csv``'s columns)."""
    columns = ["image", "score", "num_pixel_issues", "fraction_pixel_issues"]
    if table is None:
        records = []
        for item in ranked:
            labelled = (item.labels >= 0) & (item.labels < num_classes)
            if ignore_index is not None:
                labelled &= item.labels != ignore_index
            valid = int(labelled.sum())
            fraction = item.num_issues / valid if valid else float("nan")
            records.append((item.stem, float(item.score), int(item.num_issues), fraction))
        frame = pd.DataFrame(records, columns=columns)
    elif len(table) == 0:
        frame = pd.DataFrame(columns=columns)
    else:
        frame = table.copy()
        if "fraction_pixel_issues" not in frame.columns:
            frame["fraction_pixel_issues"] = np.nan
        frame = frame[columns].sort_values("score", kind="stable")
    flagged: pd.DataFrame = frame[frame["num_pixel_issues"] > 0] if len(frame) else frame
    result: pd.DataFrame = flagged.reset_index(drop=True)
    return result
