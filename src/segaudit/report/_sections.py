"""The pieces of the report page: header, tables, image rows and region crops."""

from __future__ import annotations

import html
import numbers
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from segaudit.regions import BBOX_COLUMNS
from segaudit.report._image import ReportImage
from segaudit.report._render import (
    FLAG_COLOR,
    VOID_COLOR,
    colorize,
    fit_size,
    flagged_view,
    png_data_uri,
    resize_nearest,
)
from segaudit.report._style import CSP, STYLE
from segaudit.report._tables import (
    format_value,
    is_missing,
    render_legend,
    render_mapping,
    render_table,
)

__all__ = ["Context", "iter_document"]

_VIEW_DISPLAY = 256  # small images are shown enlarged (pixelated) to at least this size
_CROP_DISPLAY = 160
_REGION_HEADERS = (
    "#",
    "image",
    "issue type",
    "given",
    "predicted",
    "area",
    "box (rows, cols)",
    "mean self-confidence",
    "severity",
    "crop",
)


def iter_document(
    context: Context,
    *,
    title: str,
    warnings: Sequence[str],
    summary: Mapping[str, object],
    per_class: pd.DataFrame,
    confusions: pd.DataFrame,
    max_confusions: int,
    ranked: Sequence[ReportImage],
    regions: pd.DataFrame,
    max_regions: int,
    by_stem: Mapping[str, ReportImage],
) -> Iterator[str]:
    """Yield the HTML page in pieces, one image row at a time (inputs already checked)."""
    yield _head(title, warned=bool(warnings))
    if warnings:
        yield _warnings(warnings)
    yield _section(
        "summary",
        "Dataset summary",
        render_mapping(summary, css_class="summary", empty="No summary given."),
    )
    legend = render_legend(
        context.names,
        context.palette,
        ignore_index=context.ignore_index,
        void_color=VOID_COLOR,
        flag_color=FLAG_COLOR,
    )
    yield _section("legend", "Colours", legend)
    yield _section(
        "per-class",
        "Per-class statistics",
        render_table(per_class, css_class="per-class", empty="No per-class statistics given."),
    )
    yield _confusions(confusions, max_confusions, context)
    yield '<section id="images">\n<h2>Images, worst first</h2>\n'
    if not ranked:
        yield '<p class="empty">No images given.</p>\n'
    for rank, item in enumerate(ranked, start=1):
        yield _image_row(rank, item, context)
    yield "</section>\n"
    yield _regions(regions, max_regions, by_stem, context)
    yield "</main>\n</body>\n</html>\n"


class Context:
    """What every section needs to draw masks and name classes."""

    def __init__(
        self, names: list[str], palette: np.ndarray, ignore_index: int | None, max_side: int
    ) -> None:
        self.names = names
        self.palette = palette
        self.ignore_index = ignore_index
        self.max_side = max_side

    @property
    def void_is_class(self) -> bool:
        """Whether `ignore_index` is also a class id (void in given masks only)."""
        return self.ignore_index is not None and 0 <= self.ignore_index < len(self.names)

    def label_name(self, value: object, *, given: bool) -> str:
        """Name a class id (or pass a name through); void and missing get a word.

        `ignore_index` reads "void" in given labels; in predicted labels only when
        it is not a class id.
        """
        if is_missing(value):
            return "n/a"
        if isinstance(value, numbers.Real) and float(value).is_integer():
            label = int(float(value))
            if label == self.ignore_index and (given or not self.void_is_class):
                return "void"
            if 0 <= label < len(self.names):
                return self.names[label]
        return str(value)

    def mask_png(self, mask: np.ndarray, *, ignore_index: int | None) -> str:
        """Colourise `mask` (void: `ignore_index` and ids outside the classes) as a PNG URI."""
        size = fit_size(*mask.shape, max_side=self.max_side)
        return png_data_uri(
            colorize(resize_nearest(mask, size), self.palette, ignore_index=ignore_index)
        )

    def given_png(self, item: ReportImage) -> str:
        """Draw the given mask as a PNG URI, void in grey."""
        return self.mask_png(item.labels, ignore_index=self.ignore_index)

    def predicted_png(self, item: ReportImage) -> str:
        """Draw the predicted mask; grey where the given one is void if void is a class id."""
        if not self.void_is_class:
            return self.mask_png(item.predicted, ignore_index=self.ignore_index)
        shown = np.where(item.labels == self.ignore_index, -1, item.predicted)
        return self.mask_png(shown, ignore_index=None)


def _head(title: str, *, warned: bool) -> str:
    text = html.escape(title)
    warning_link = '<a href="#warnings">Warnings</a> ' if warned else ""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{text}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n"
        f'<header>\n<h1>{text}</h1>\n<p class="note">Written by segaudit; self-contained '
        "(all pictures are embedded, nothing is fetched).</p>\n<nav>"
        f'{warning_link}<a href="#summary">Summary</a> <a href="#legend">Colours</a> '
        '<a href="#per-class">Per class</a> <a href="#confusions">Confusions</a> '
        '<a href="#images">Images</a> <a href="#regions">Regions</a></nav>\n</header>\n<main>\n'
    )


def _warnings(warnings: Sequence[str]) -> str:
    items = "\n".join(f"<li>{html.escape(text)}</li>" for text in warnings)
    heading = "Warning" if len(warnings) == 1 else f"{len(warnings)} warnings"
    return (
        f'<section id="warnings" class="warnings" role="alert">\n<h2>{heading}: '
        f"check the inputs before trusting the results</h2>\n<ul>\n{items}\n</ul>\n</section>\n"
    )


def _section(anchor: str, heading: str, body: str) -> str:
    return f'<section id="{anchor}">\n<h2>{html.escape(heading)}</h2>\n{body}</section>\n'


def _confusions(frame: pd.DataFrame, limit: int, context: Context) -> str:
    shown = frame.head(limit).copy()
    if len(shown):
        for column in ("given_label", "predicted_label"):
            given = column == "given_label"
            shown[column] = [context.label_name(v, given=given) for v in shown[column]]
    note = f'<p class="note">Showing {len(shown):,} of {len(frame):,} pairs.</p>\n'
    table = render_table(shown, css_class="confusions", empty="No confusions.")
    return _section("confusions", "Top confusions (given → predicted)", note + table)


def _img(
    uri: str, shape: tuple[int, ...], css: str, stem: str, alt: str, least: int, extra: str = ""
) -> str:
    factor = max(1, least // max(shape[:2]))
    return (
        f'<img class="{css}" data-stem="{html.escape(stem)}"{extra} '
        f'alt="{html.escape(alt)}" width="{shape[1] * factor}" height="{shape[0] * factor}" '
        f'src="{uri}">'
    )


def _figure(uri: str, shape: tuple[int, ...], css: str, stem: str, caption: str) -> str:
    image = _img(uri, shape, css, stem, f"{caption} of {stem}", _VIEW_DISPLAY)
    return f"<figure>{image}<figcaption>{html.escape(caption)}</figcaption></figure>\n"


def _image_row(rank: int, item: ReportImage, context: Context) -> str:
    size = fit_size(*item.labels.shape, max_side=context.max_side)
    flagged = flagged_view(
        item.labels,
        item.issues,
        item.image,
        context.palette,
        ignore_index=context.ignore_index,
        max_side=context.max_side,
    )
    base = "image" if item.image is not None else "given mask"
    stem = html.escape(item.stem)
    height, width = item.labels.shape
    meta = (
        f"score {format_value(float(item.score))} · {format_value(int(item.num_issues))} "
        f"flagged pixels · {width} x {height} px"
    )
    return (
        f'<article class="image-row" id="image-{rank}" data-stem="{stem}" data-rank="{rank}">\n'
        f'<h3>#{rank} <span class="stem">{stem}</span></h3>\n'
        f'<p class="meta">{html.escape(meta)}</p>\n<div class="views">\n'
        + _figure(context.given_png(item), size, "given", item.stem, "Given mask")
        + _figure(context.predicted_png(item), size, "predicted", item.stem, "Predicted mask")
        + _figure(
            png_data_uri(flagged),
            flagged.shape,
            "flagged",
            item.stem,
            f"Flagged pixels over the {base}",
        )
        + "</div>\n</article>\n"
    )


def _crop(record: pd.Series, rank: int, item: ReportImage, context: Context) -> str:
    row0, col0, row1, col1 = (int(record[column]) for column in BBOX_COLUMNS)
    pad = max(4, max(row1 - row0, col1 - col0) // 4)
    top, left = max(0, row0 - pad), max(0, col0 - pad)
    window = (
        slice(top, min(item.labels.shape[0], row1 + pad)),
        slice(left, min(item.labels.shape[1], col1 + pad)),
    )
    picture = flagged_view(
        item.labels[window],
        item.issues[window],
        None if item.image is None else item.image[window],
        context.palette,
        ignore_index=context.ignore_index,
        max_side=context.max_side,
        box=(row0 - top, col0 - left, row1 - top, col1 - left),
    )
    alt = f"Region {rank} of {item.stem}: flagged pixels, box outlined"
    return _img(
        png_data_uri(picture),
        picture.shape,
        "crop",
        item.stem,
        alt,
        _CROP_DISPLAY,
        extra=f' data-region="{rank}"',
    )


def _regions(
    frame: pd.DataFrame, limit: int, by_stem: Mapping[str, ReportImage], context: Context
) -> str:
    shown = frame.head(limit)
    note = f'<p class="note">Showing {len(shown):,} of {len(frame):,} regions, most severe first.'
    if not len(shown):
        return _section("regions", "Top regions", note + '</p>\n<p class="empty">No regions.</p>\n')
    note += " A crop appears when the region's image is among the images above.</p>\n"
    head = "".join(f"<th>{html.escape(h)}</th>" for h in _REGION_HEADERS)
    rows = []
    for rank, (_, record) in enumerate(shown.iterrows(), start=1):
        item = by_stem.get(record["stem"])
        crop = (
            _crop(record, rank, item, context)
            if item is not None
            else '<span class="no-crop">no crop</span>'
        )
        box = (
            f"{int(record['bbox_row0'])}:{int(record['bbox_row1'])}, "
            f"{int(record['bbox_col0'])}:{int(record['bbox_col1'])}"
        )
        texts = (
            str(rank),
            str(record["stem"]),
            str(record["issue_type"]),
            context.label_name(record["given_label"], given=True),
            context.label_name(record["predicted_label"], given=False),
            format_value(record["area"]),
            box,
            format_value(record["mean_self_confidence"]),
            format_value(record["severity"]),
        )
        cells = "".join(f"<td>{html.escape(text)}</td>" for text in texts)
        rows.append(f'<tr class="region" data-region="{rank}">{cells}<td>{crop}</td></tr>')
    table = (
        f'<table class="regions">\n<thead><tr>{head}</tr></thead>\n<tbody>\n'
        + "\n".join(rows)
        + "\n</tbody>\n</table>\n"
    )
    return _section("regions", "Top regions", note + table)
