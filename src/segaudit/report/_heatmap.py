"""A given x predicted count matrix drawn as an HTML heat map (escaped names, inline colours)."""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np

__all__ = ["compact_count", "pick_classes", "render_heatmap"]

_LOW = np.array([255.0, 255.0, 255.0])
_HIGH = np.array([127.0, 0.0, 0.0])


def compact_count(count: int) -> str:
    """Write a count in at most four characters.

    Examples
    --------
    >>> [compact_count(c) for c in (0, 7, 999, 1234, 56789, 2_500_000, 3 * 10**9)]
    ['', '7', '999', '1.2k', '57k', '2.5M', '3.0G']
    """
    if count <= 0:
        return ""
    for size, unit in ((10**9, "G"), (10**6, "M"), (10**3, "k")):
        if count >= size:
            value = count / size
            return f"{value:.1f}{unit}" if value < 10 else f"{value:.0f}{unit}"
    return str(count)


def pick_classes(matrix: np.ndarray, limit: int) -> np.ndarray:
    """Return the ids (ascending) of at most `limit` classes with the most off-diagonal counts.

    Classes with no off-diagonal count are left out.

    Examples
    --------
    >>> pick_classes(np.array([[9, 1, 0], [0, 9, 0], [5, 0, 9]]), 2).tolist()
    [0, 2]
    """
    off = matrix - np.diag(np.diag(matrix))
    weight = off.sum(axis=0) + off.sum(axis=1)
    order = np.argsort(-weight, kind="stable")[:limit]
    return np.sort(order[weight[order] > 0])


def _colour(value: float) -> tuple[str, str]:
    rgb = np.rint(_LOW + (_HIGH - _LOW) * value).astype(int)
    text = "#fff" if value > 0.55 else "#1d1d1f"
    return "#{:02x}{:02x}{:02x}".format(*rgb), text


def render_heatmap(
    matrix: np.ndarray,
    names: Sequence[str],
    *,
    table_id: str,
    limit: int,
    by_row: bool,
    what: str,
) -> str:
    """Render the given (rows) x predicted (columns) `matrix` as a heat map table.

    Parameters
    ----------
    matrix : ndarray of int64, shape (K, K)
        Pixel counts.
    names : sequence of str
        Class names.
    table_id : str
        ``id`` of the table.
    limit : int
        At most this many classes (those with the most off-diagonal pixels).
    by_row : bool
        Shade each cell by its share of its row (the given class's pixels),
        diagonal outlined; otherwise by the count on a log scale over the table.
    what : str
        What the counts are, for the cells' tooltips (e.g. "flagged pixels").

    Returns
    -------
    str
        HTML fragment: a note and the table (or a sentence when nothing is off the diagonal).
    """
    shown = pick_classes(matrix, limit)
    if shown.size == 0:
        return '<p class="empty">No pixel is predicted as another class.</p>\n'
    sub = matrix[np.ix_(shown, shown)]
    rows = matrix[shown].sum(axis=1)
    if by_row:
        scale = sub / np.maximum(rows, 1)[:, None]
        key = "shaded by share of the given class's pixels; diagonal outlined"
    else:
        scale = np.log1p(sub) / np.log1p(max(int(sub.max()), 1))
        key = "shaded by count, log scale"
    left = len(names) - shown.size
    note = (
        f'<p class="note">Rows: given class; columns: predicted class; {html.escape(key)} '
        f'<span class="scale"></span>. {shown.size:,} of {len(names):,} classes'
        + (
            f" ({left:,} with no pixel predicted as another class, or beyond the first {limit:,})"
            if left
            else ""
        )
        + ".</p>\n"
    )
    labels = [html.escape(names[k]) for k in shown]
    head = "".join(f'<th class="pred" scope="col">{name}</th>' for name in labels)
    body = []
    for i, k in enumerate(shown):
        cells = []
        for j, c in enumerate(shown):
            count = int(sub[i, j])
            background, text = _colour(float(scale[i, j]))
            share = count / rows[i] if rows[i] else 0.0
            tip = (
                f"given {names[k]} → predicted {names[c]}: {count:,} {what}"
                f" ({share:.1%} of the given class's)"
            )
            css = ' class="diag"' if k == c and by_row else ""
            cells.append(
                f'<td{css} data-given="{labels[i]}" data-predicted="{labels[j]}" '
                f'data-count="{count}" style="background:{background};color:{text}" '
                f'title="{html.escape(tip)}">{compact_count(count)}</td>'
            )
        body.append(f'<tr><th scope="row">{labels[i]}</th>{"".join(cells)}</tr>')
    return (
        note + f'<table class="heatmap" id="{html.escape(table_id)}">\n<thead><tr><th>given \\ '
        f"predicted</th>{head}</tr></thead>\n<tbody>\n" + "\n".join(body) + "\n</tbody>\n</table>\n"
    )
