"""The pieces of the report page, in order: header, tables, heat maps, worklists, pictures."""

from __future__ import annotations

import html
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from segaudit.io._prefetch import Prefetch
from segaudit.report._context import Context, img_tag
from segaudit.report._heatmap import render_heatmap
from segaudit.report._image import ReportImage
from segaudit.report._interactive import Cell, Column, Row, pager, table
from segaudit.report._lists import image_list, region_list
from segaudit.report._metrics import class_metrics
from segaudit.report._render import (
    FLAG_COLOR,
    VOID_COLOR,
    fit_size,
    flagged_picture,
    png_data_uri,
)
from segaudit.report._script import SCRIPT
from segaudit.report._style import CSP, STYLE
from segaudit.report._tables import format_value, render_legend, render_mapping, render_table

__all__ = ["CARD_PAGE", "Page", "iter_document"]

_VIEW_DISPLAY = 256  # small images are shown enlarged (pixelated) to at least this size
#: Picture cards per page.
CARD_PAGE = 10
CARDS_AHEAD = 8
"""Picture cards drawn ahead by the drawing threads (each held as its HTML, ~0.2 MB at 512 px)."""


@dataclass(frozen=True)
class Page:
    """Everything the page shows, checked and ordered by `write_report`."""

    title: str
    warnings: Sequence[str]
    summary: Mapping[str, object]
    per_class: pd.DataFrame
    confusions: pd.DataFrame
    max_confusions: int
    flagged_matrix: np.ndarray
    model_confusion: np.ndarray | None
    max_heatmap_classes: int
    cards: Sequence[ReportImage]
    clean_left_out: int
    image_rows: pd.DataFrame
    images_with_issues: int
    regions: pd.DataFrame
    regions_total: int
    regions_left_out: int
    by_stem: Mapping[str, ReportImage]


def iter_document(context: Context, page: Page) -> Generator[str, None, None]:
    """Yield the HTML page in pieces, one picture card at a time (inputs already checked).

    The cards are drawn by two threads from the start (PNG encoding and much of
    the drawing release the GIL), while the tables before them are made.
    """
    ranked = list(enumerate(page.cards, start=1))
    with Prefetch(
        lambda pair: _card(*pair, context), ranked, depth=CARDS_AHEAD, workers=2
    ) as drawn:
        yield from _document(context, page, drawn)


def _document(context: Context, page: Page, drawn: Iterator[str]) -> Iterator[str]:
    yield _head(page.title, warned=bool(page.warnings), model=page.model_confusion is not None)
    if page.warnings:
        yield _warnings(page.warnings)
    yield _section(
        "summary",
        "Dataset summary",
        render_mapping(page.summary, css_class="summary", empty="No summary given."),
    )
    legend = render_legend(
        context.names,
        context.palette,
        ignore_index=context.ignore_index,
        void_color=VOID_COLOR,
        flag_color=FLAG_COLOR,
    )
    yield _section("legend", "Colours", legend)
    if page.model_confusion is not None:
        yield _model(page.model_confusion, page.max_heatmap_classes, context)
    yield _section(
        "per-class",
        "Per-class statistics",
        render_table(page.per_class, css_class="per-class", empty="No per-class statistics given."),
    )
    yield _confusions(page, context)
    cards = {item.stem: n for n, item in enumerate(page.cards, start=1)}
    yield _section(
        "images",
        "Images with issues",
        image_list(page.image_rows, page.images_with_issues, cards),
    )
    yield from _cards(page, drawn)
    yield _section(
        "regions",
        "Regions",
        region_list(
            page.regions,
            total=page.regions_total,
            left_out=page.regions_left_out,
            by_stem=page.by_stem,
            cards=cards,
            context=context,
        ),
    )
    yield f"</main>\n<script>{SCRIPT}</script>\n</body>\n</html>\n"


def _head(title: str, *, warned: bool, model: bool) -> str:
    text = html.escape(title)
    warning_link = '<a href="#warnings">Warnings</a> ' if warned else ""
    model_link = '<a href="#model">Model</a> ' if model else ""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{text}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n"
        f'<header>\n<h1>{text}</h1>\n<p class="note">Written by segaudit; self-contained '
        "(all pictures are embedded, nothing is fetched). Click a column header to sort; "
        "the boxes above a table filter it.</p>\n<nav>"
        f'{warning_link}<a href="#summary">Summary</a> <a href="#legend">Colours</a> '
        f'{model_link}<a href="#per-class">Per class</a> <a href="#confusions">Confusions</a> '
        '<a href="#images">Images</a> <a href="#pictures">Pictures</a> '
        '<a href="#regions">Regions</a></nav>\n</header>\n<main>\n'
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


def _model(matrix: np.ndarray, limit: int, context: Context) -> str:
    frame, totals = class_metrics(matrix, context.names)
    rows = [
        Row(
            (
                Cell(html.escape(name)),
                Cell(format_value(int(labelled)), int(labelled), numeric=True),
                Cell(format_value(int(predicted)), int(predicted), numeric=True),
                Cell(html.escape(format_value(iou)), float(iou), numeric=True),
                Cell(html.escape(format_value(accuracy)), float(accuracy), numeric=True),
            ),
            {"class": name},
        )
        for name, labelled, predicted, iou, accuracy in frame.itertuples(index=False, name=None)
    ]
    columns = (
        Column("class", "text"),
        Column("labelled pixels", "num"),
        Column("predicted pixels", "num"),
        Column("IoU", "num"),
        Column("pixel accuracy", "num"),
    )
    note = (
        f'<p class="note">The model (argmax) against the given labels over every labelled '
        f"pixel: pixel accuracy {format_value(totals['pixel accuracy'])}, mean IoU "
        f"{format_value(totals['mean IoU'])} (over classes that occur). Per class, IoU = "
        "agreeing / (labelled + predicted - agreeing) and pixel accuracy = agreeing / "
        "labelled. Low values point at a class the model or the labels get wrong.</p>\n"
    )
    heatmap = render_heatmap(
        matrix,
        context.names,
        table_id="model-heatmap",
        limit=limit,
        by_row=True,
        what="pixels",
    )
    body = (
        note
        + table("model-metrics", columns, rows, css="metrics", page_size=max(1, len(rows)))
        + "<h3>Confusion matrix of the model against the labels</h3>\n"
        + heatmap
    )
    return _section("model", "Model against the labels", body)


def _confusions(page: Page, context: Context) -> str:
    heatmap = render_heatmap(
        page.flagged_matrix,
        context.names,
        table_id="flagged-heatmap",
        limit=page.max_heatmap_classes,
        by_row=False,
        what="flagged pixels",
    )
    shown = page.confusions.head(page.max_confusions).copy()
    if len(shown):
        for column in ("given_label", "predicted_label"):
            given = column == "given_label"
            shown[column] = [context.label_name(v, given=given) for v in shown[column]]
    note = f'<p class="note">Showing {len(shown):,} of {len(page.confusions):,} pairs.</p>\n'
    listing = render_table(shown, css_class="confusions", empty="No confusions.")
    body = (
        '<p class="note">Flagged pixels by given and predicted class.</p>\n'
        + heatmap
        + "<h3>Most frequent pairs</h3>\n"
        + note
        + listing
    )
    return _section("confusions", "Confusions of the flagged pixels (given → predicted)", body)


def _cards(page: Page, drawn: Iterator[str]) -> Iterator[str]:
    yield '<section id="pictures">\n<h2>Pictures of the worst images</h2>\n'
    note = (
        f"{len(page.cards):,} images with flagged pixels, worst (lowest score) first, "
        f"{CARD_PAGE} to a page: given mask, predicted mask, flagged pixels."
    )
    if page.clean_left_out:
        note += f" {page.clean_left_out:,} given images without flagged pixels are left out."
    yield f'<p class="note">{html.escape(note)}</p>\n'
    if not page.cards:
        yield '<p class="empty">No images given.</p>\n'
        yield "</section>\n"
        return
    yield pager("image-cards")
    yield f'<div id="image-cards" data-page-size="{CARD_PAGE}">\n'
    yield from drawn
    yield "</div>\n" + pager("image-cards") + "</section>\n"


def _figure(uri: str, shape: tuple[int, ...], css: str, stem: str, caption: str) -> str:
    image = img_tag(uri, shape, css, stem, f"{caption} of {stem}", _VIEW_DISPLAY)
    return f"<figure>{image}<figcaption>{html.escape(caption)}</figcaption></figure>\n"


def _card(rank: int, item: ReportImage, context: Context) -> str:
    size = fit_size(*item.labels.shape, max_side=context.max_side)
    flagged = flagged_picture(
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
