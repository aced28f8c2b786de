"""HTML tables for the report: numbers formatted for reading, every piece of text escaped."""

from __future__ import annotations

import html
import math
import numbers
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = ["format_value", "is_missing", "render_legend", "render_mapping", "render_table"]


def is_missing(value: object) -> bool:
    """Return whether `value` is None, NA, NaT or a float NaN."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, numbers.Integral)
        and (math.isnan(float(value)))
    )


def format_value(value: object) -> str:
    """Format one table cell as plain (not yet escaped) text.

    Integers get thousands separators, floats four significant digits (large ones
    are rounded to whole numbers), missing values read ``n/a``.

    Examples
    --------
    >>> [format_value(v) for v in (1234567, 0.123456, 2.0, 98765.4, float("nan"), "a<b")]
    ['1,234,567', '0.1235', '2', '98,765', 'n/a', 'a<b']
    """
    if is_missing(value):
        return "n/a"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    if isinstance(value, numbers.Real):
        number = float(value)
        if math.isinf(number):
            return "inf" if number > 0 else "-inf"
        if abs(number) >= 1e4 or (number.is_integer() and abs(number) < 1e15):
            return f"{number:,.0f}"
        return f"{number:.4g}"
    return str(value)


def _is_numeric(value: object) -> bool:
    return isinstance(value, numbers.Number) and not isinstance(value, (bool, np.bool_))


def _cell(value: object, *, tag: str = "td") -> str:
    css = ' class="num"' if _is_numeric(value) else ""
    return f"<{tag}{css}>{html.escape(format_value(value))}</{tag}>"


def render_table(frame: pd.DataFrame, *, css_class: str, empty: str) -> str:
    """Render every column of `frame` (and a meaningful index) as an HTML table.

    Parameters
    ----------
    frame : DataFrame
        The data. A default ``RangeIndex`` is dropped; any other index becomes the
        first column(s).
    css_class : str
        ``class`` attribute of the ``<table>``.
    empty : str
        Sentence shown instead of the table when `frame` has no rows.

    Returns
    -------
    str
        HTML fragment.
    """
    if len(frame) == 0:
        return f'<p class="empty">{html.escape(empty)}</p>\n'
    if not isinstance(frame.index, pd.RangeIndex):
        frame = frame.reset_index()
    head = "".join(f"<th>{html.escape(str(col))}</th>" for col in frame.columns)
    rows = [
        "<tr>" + "".join(_cell(value) for value in row) + "</tr>"
        for row in frame.itertuples(index=False, name=None)
    ]
    body = "\n".join(rows)
    return (
        f'<table class="{html.escape(css_class)}">\n<thead><tr>{head}</tr></thead>\n'
        f"<tbody>\n{body}\n</tbody>\n</table>\n"
    )


def render_mapping(mapping: Mapping[str, object], *, css_class: str, empty: str) -> str:
    """Render key → value pairs as a two-column HTML table (keys as row headers)."""
    if not mapping:
        return f'<p class="empty">{html.escape(empty)}</p>\n'
    rows = "\n".join(
        f'<tr><th scope="row">{html.escape(str(key))}</th>{_cell(value)}</tr>'
        for key, value in mapping.items()
    )
    return f'<table class="{html.escape(css_class)}">\n<tbody>\n{rows}\n</tbody>\n</table>\n'


def _swatch(color: Sequence[int], name: str, *, css_class: str = "swatch") -> str:
    hex_color = "#{:02x}{:02x}{:02x}".format(*(int(c) for c in color))
    return (
        f'<li><span class="{css_class}" style="background:{hex_color}"></span>'
        f"{html.escape(name)}</li>"
    )


def render_legend(
    class_names: Sequence[str],
    palette: np.ndarray,
    *,
    ignore_index: int | None,
    void_color: Sequence[int],
    flag_color: Sequence[int],
) -> str:
    """Render the colour legend: one swatch per class, then void and flagged pixels."""
    items = [
        _swatch(color, f"{k}: {name}")
        for k, (name, color) in enumerate(zip(class_names, palette, strict=True))
    ]
    if ignore_index is not None:
        items.append(_swatch(void_color, f"void (ignore_index={ignore_index})"))
    items.append(_swatch(flag_color, "flagged pixel (overlay)", css_class="swatch flag"))
    return '<ul class="legend">\n' + "\n".join(items) + "\n</ul>\n"
