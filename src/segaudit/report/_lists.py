"""The report's two worklists: every image with issues, and the regions with their crops.

Both are sortable, filterable and paged by the page's script (`_script`).
"""

from __future__ import annotations

import contextlib
import html
from collections.abc import Mapping, Sequence

import pandas as pd

from segaudit.io._prefetch import prefetch
from segaudit.regions import BBOX_COLUMNS, ISSUE_TYPES
from segaudit.report._context import Context, img_tag
from segaudit.report._image import ReportImage
from segaudit.report._interactive import (
    Cell,
    Column,
    Row,
    js_number,
    number_filter,
    pager,
    select_filter,
    table,
    text_filter,
)
from segaudit.report._render import flagged_picture, png_data_uri
from segaudit.report._tables import format_value, is_missing

__all__ = ["crop_tag", "image_list", "region_list"]

IMAGE_PAGE = 50
REGION_PAGE = 25
_CROP_DISPLAY = 160


def _number(value: object) -> float:
    return float("nan") if is_missing(value) else float(value)  # type: ignore[arg-type]


def _num_cell(value: object) -> Cell:
    return Cell(html.escape(format_value(value)), _number(value), numeric=True)


def _stem_cell(stem: str, card: int | None) -> Cell:
    text = f'<span class="stem">{html.escape(stem)}</span>'
    if card is not None:
        text = f'<a href="#image-{card}">{text}</a>'
    return Cell(text)


def image_list(frame: pd.DataFrame, total: int, cards: Mapping[str, int]) -> str:
    """Render the images of `frame` as a sortable, filterable, paged table.

    `frame` has columns ``image``, ``score``, ``num_pixel_issues`` and
    ``fraction_pixel_issues``, worst first. `total` is the number of images with
    issues (`frame` may hold the first ones only); `cards` maps a stem to its picture card's number.
    """
    if len(frame) == 0:
        return '<p class="empty">No image has flagged pixels.</p>\n'
    columns = (
        Column("#", "num"),
        Column("image", "text"),
        Column("score", "num"),
        Column("flagged pixels", "num"),
        Column("fraction flagged", "num"),
        Column("pictures", "text"),
    )
    rows = []
    for rank, (stem, score, flagged, fraction) in enumerate(
        frame[["image", "score", "num_pixel_issues", "fraction_pixel_issues"]].itertuples(
            index=False, name=None
        ),
        start=1,
    ):
        card = cards.get(stem)
        cells = (
            Cell(str(rank), rank, numeric=True),
            _stem_cell(str(stem), card),
            _num_cell(score),
            _num_cell(flagged),
            _num_cell(fraction),
            Cell("yes" if card is not None else "no"),
        )
        data = {
            "stem": str(stem),
            "score": js_number(_number(score)),
            "flagged": js_number(_number(flagged)),
            "pictures": "yes" if card is not None else "no",
        }
        rows.append(Row(cells, data))
    note = (
        f'<p class="note">{len(frame):,} of {total:,} images with flagged pixels, worst (lowest '
        "score) first; click a header to sort, an image to see its pictures when it has them."
        + (" The rest are in images.csv." if len(frame) < total else "")
        + "</p>\n"
    )
    controls = (
        '<div class="controls">'
        + text_filter("image-list", "stem", "image name contains")
        + number_filter("image-list", "score", "score at most", op="max")
        + number_filter("image-list", "flagged", "flagged pixels at least", op="min", step="1")
        + select_filter("image-list", "pictures", "with pictures", ["yes", "no"])
        + "</div>\n"
    )
    return (
        note
        + controls
        + pager("image-list")
        + table("image-list", columns, rows, css="images", page_size=IMAGE_PAGE)
        + pager("image-list")
    )


def crop_tag(record: pd.Series, rank: int, item: ReportImage, context: Context) -> str:
    """Draw the region's box with a margin around it, flagged pixels in red, as an ``<img>``."""
    row0, col0, row1, col1 = (int(record[column]) for column in BBOX_COLUMNS)
    pad = max(4, max(row1 - row0, col1 - col0) // 4)
    top, left = max(0, row0 - pad), max(0, col0 - pad)
    window = (
        slice(top, min(item.labels.shape[0], row1 + pad)),
        slice(left, min(item.labels.shape[1], col1 + pad)),
    )
    picture = flagged_picture(
        item.labels[window],
        item.issues[window],
        None if item.image is None else item.image[window],
        context.palette,
        ignore_index=context.ignore_index,
        max_side=context.crop_side,
        box=(row0 - top, col0 - left, row1 - top, col1 - left),
    )
    alt = f"Region {rank} of {item.stem}: flagged pixels, box outlined"
    return img_tag(
        png_data_uri(picture),
        picture.shape,
        "crop",
        item.stem,
        alt,
        _CROP_DISPLAY,
        extra=f' data-region="{rank}"',
    )


_REGION_COLUMNS = (
    Column("#", "num"),
    Column("image", "text"),
    Column("issue type", "text"),
    Column("given", "text"),
    Column("predicted", "text"),
    Column("area", "num"),
    Column("box (rows, cols)"),
    Column("mean self-confidence", "num"),
    Column("severity", "num"),
    Column("crop"),
)


def region_list(
    frame: pd.DataFrame,
    *,
    total: int,
    left_out: int,
    by_stem: Mapping[str, ReportImage],
    cards: Mapping[str, int],
    context: Context,
) -> str:
    """Render `frame` (regions with pictures, most severe first) with a crop each.

    `total` is the number of regions given; `left_out` how many of them were
    not shown because their image has no pictures in the report.
    """
    note = f'<p class="note">Showing {len(frame):,} of {total:,} regions, most severe first.'
    if left_out:
        note += (
            f" {left_out:,} regions of images without pictures here are left out"
            " (regions.csv lists every region)."
        )
    if not len(frame):
        return note + '</p>\n<p class="empty">No regions.</p>\n'
    note += " Each shows its crop: flagged pixels in red, the box outlined.</p>\n"
    rows = []
    given_names: list[str] = []
    predicted_names: list[str] = []
    records = [record for _, record in frame.iterrows()]

    def crop(rank: int) -> str:
        record = records[rank - 1]
        return crop_tag(record, rank, by_stem[str(record["stem"])], context)

    # crops drawn ahead by two threads (PNG encoding releases the GIL)
    crops = prefetch(crop, range(1, len(records) + 1), depth=4, workers=2)
    with contextlib.closing(crops) as drawn:
        for (rank, record), crop_cell in zip(enumerate(records, start=1), drawn, strict=True):
            rows.append(_region_row(rank, record, crop_cell, cards, context))
    for row in rows:
        given_names.append(row.data["given"])
        predicted_names.append(row.data["predicted"])
    types = [t for t in ISSUE_TYPES if t in set(frame["issue_type"])]
    controls = (
        '<div class="controls">'
        + select_filter("region-list", "type", "issue type", types)
        + select_filter("region-list", "given", "given class", _ordered(given_names, context.names))
        + select_filter(
            "region-list", "predicted", "predicted class", _ordered(predicted_names, context.names)
        )
        + number_filter("region-list", "area", "area at least", op="min", step="1")
        + number_filter("region-list", "confidence", "mean self-confidence at most", op="max")
        + number_filter("region-list", "severity", "severity at least", op="min")
        + "</div>\n"
    )
    return (
        note
        + controls
        + pager("region-list")
        + table("region-list", _REGION_COLUMNS, rows, css="regions", page_size=REGION_PAGE)
        + pager("region-list")
    )


def _region_row(
    rank: int, record: pd.Series, crop_cell: str, cards: Mapping[str, int], context: Context
) -> Row:
    """One row of the region list: the region's record and its crop's ``<img>``."""
    stem = str(record["stem"])
    given = context.label_name(record["given_label"], given=True)
    guess = context.label_name(record["predicted_label"], given=False)
    box = (
        f"{int(record['bbox_row0'])}:{int(record['bbox_row1'])}, "
        f"{int(record['bbox_col0'])}:{int(record['bbox_col1'])}"
    )
    cells = (
        Cell(str(rank), rank, numeric=True),
        _stem_cell(stem, cards.get(stem)),
        Cell(html.escape(str(record["issue_type"]))),
        Cell(html.escape(given)),
        Cell(html.escape(guess)),
        _num_cell(record["area"]),
        Cell(html.escape(box)),
        _num_cell(record["mean_self_confidence"]),
        _num_cell(record["severity"]),
        Cell(crop_cell),
    )
    data = {
        "region": str(rank),
        "stem": stem,
        "type": str(record["issue_type"]),
        "given": given,
        "predicted": guess,
        "area": js_number(_number(record["area"])),
        "confidence": js_number(_number(record["mean_self_confidence"])),
        "severity": js_number(_number(record["severity"])),
    }
    return Row(cells, data, css="region")


def _ordered(shown: Sequence[str], names: Sequence[str]) -> list[str]:
    """Return the distinct names in `shown`: in class order, then others (void, n/a) sorted."""
    present = set(shown)
    known = [name for name in dict.fromkeys(names) if name in present]
    return known + sorted(present - set(known))
