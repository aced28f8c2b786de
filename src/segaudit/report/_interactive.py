"""Markup that the report's script (`_script`) makes sortable, filterable and paged.

Every fragment is plain HTML that reads well without the script too: all rows
are there, in the order written.
"""

from __future__ import annotations

import html
import math
import numbers
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = [
    "Cell",
    "Column",
    "Row",
    "js_number",
    "number_filter",
    "pager",
    "select_filter",
    "table",
    "text_filter",
]


@dataclass(frozen=True)
class Column:
    """A header: its text and how it sorts (``"num"``, ``"text"``, or None: not sortable)."""

    title: str
    sort: str | None = None


@dataclass(frozen=True)
class Cell:
    """A body cell: `html_text` is already escaped; `value` is the number it sorts by."""

    html_text: str
    value: float | int | None = None
    numeric: bool = False


@dataclass(frozen=True)
class Row:
    """A body row: its cells and ``data-*`` attributes (names and values are escaped here)."""

    cells: Sequence[Cell]
    data: dict[str, str] = field(default_factory=dict)
    css: str = ""


def _attrs(data: dict[str, str]) -> str:
    return "".join(f' data-{html.escape(k)}="{html.escape(v)}"' for k, v in data.items())


def js_number(value: float | int) -> str:
    """Write a number as JavaScript's ``Number()`` reads it back (``NaN``, ``Infinity`` too).

    Examples
    --------
    >>> [js_number(v) for v in (3, 0.25, float("nan"), float("-inf"))]
    ['3', '0.25', 'NaN', '-Infinity']
    """
    if isinstance(value, numbers.Integral):
        return str(int(value))
    number = float(value)
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "Infinity" if number > 0 else "-Infinity"
    return repr(number)


def _td(cell: Cell) -> str:
    css = ' class="num"' if cell.numeric else ""
    value = "" if cell.value is None else f' data-value="{js_number(cell.value)}"'
    return f"<td{css}{value}>{cell.html_text}</td>"


def _tr(row: Row) -> str:
    css = f' class="{html.escape(row.css)}"' if row.css else ""
    return f"<tr{css}{_attrs(row.data)}>" + "".join(_td(cell) for cell in row.cells) + "</tr>"


def table(
    table_id: str, columns: Sequence[Column], rows: Iterable[Row], *, css: str, page_size: int
) -> str:
    """Render a table whose `columns` sort on a click and whose body shows `page_size` rows a page.

    Missing numbers should be given as ``float("nan")``: they sort last.
    """
    head = "".join(
        f'<th scope="col" data-sort="{c.sort}">{html.escape(c.title)}</th>'
        if c.sort
        else f'<th scope="col">{html.escape(c.title)}</th>'
        for c in columns
    )
    body = "\n".join(_tr(row) for row in rows)
    return (
        f'<table class="{html.escape(css)}" id="{html.escape(table_id)}" '
        f'data-page-size="{page_size}">\n<thead><tr>{head}</tr></thead>\n<tbody>\n'
        f"{body}\n</tbody>\n</table>\n"
    )


def pager(target: str) -> str:
    """Return previous / next buttons and the page line for the element with id `target`."""
    return (
        f'<div class="pager" data-for="{html.escape(target)}">'
        '<button type="button" data-step="-1">&lsaquo; previous</button>'
        '<span class="page-info"></span>'
        '<button type="button" data-step="1">next &rsaquo;</button></div>\n'
    )


def select_filter(target: str, key: str, label: str, options: Sequence[str]) -> str:
    """Return a drop-down keeping the rows whose ``data-<key>`` is the choice ("all": every row)."""
    items = "".join(f'<option value="{html.escape(o)}">{html.escape(o)}</option>' for o in options)
    return (
        f'<label>{html.escape(label)} <select data-for="{html.escape(target)}" '
        f'data-key="{html.escape(key)}" data-op="eq"><option value="">all</option>'
        f"{items}</select></label>"
    )


def number_filter(target: str, key: str, label: str, *, op: str, step: str = "any") -> str:
    """Return a number box keeping the rows whose ``data-<key>`` is >= or <= its value.

    ``op="min"``: at least the value; ``op="max"``: at most. Empty keeps every row.
    """
    return (
        f'<label>{html.escape(label)} <input type="number" step="{step}" '
        f'data-for="{html.escape(target)}" data-key="{html.escape(key)}" data-op="{op}"></label>'
    )


def text_filter(target: str, key: str, label: str) -> str:
    """Return a text box keeping the rows whose ``data-<key>`` contains it (any case)."""
    return (
        f'<label>{html.escape(label)} <input type="search" data-for="{html.escape(target)}" '
        f'data-key="{html.escape(key)}" data-op="has"></label>'
    )
