"""CSV output that spreadsheets cannot run: text cells are neutralised against formula injection.

A file stem or class name such as ``=HYPERLINK(...)`` or ``=cmd|' /C calc'!A0``
would be a live formula once the CSV is opened in Excel, LibreOffice or Sheets.
As OWASP recommends, a text cell that begins with ``=``, ``+``, ``-``, ``@``, a
tab or a carriage return gets a leading single quote, which those programs show
as text. Numeric cells (negative numbers included) are written as they are.
"""

from __future__ import annotations

import csv
import functools
import io
import os
from collections.abc import Callable
from typing import IO, Any

import numpy as np
import pandas as pd

__all__ = ["FORMULA_PREFIXES", "neutralise_cell", "neutralise_frame", "write_csv"]

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
CHUNK_ROWS = 4096
"""Rows turned into text at a time by `write_csv`."""


def _is_formula(value: object) -> bool:
    """Whether `value` is text that a spreadsheet would run as a formula."""
    return isinstance(value, str) and value.startswith(FORMULA_PREFIXES)


def neutralise_cell(value: Any) -> Any:
    """Return `value` with a leading ``'`` if it is text that a spreadsheet would run.

    Examples
    --------
    >>> neutralise_cell("=1+1"), neutralise_cell("-3"), neutralise_cell(-3)
    ("'=1+1", "'-3", -3)
    """
    return "'" + value if _is_formula(value) else value


def neutralise_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Return `frame` with every text cell passed through `neutralise_cell`.

    Columns of numbers and booleans are left as they are; the frame is copied
    only when a text column needs a change. Each distinct value is checked once.
    """
    out = frame
    for name in frame.columns:
        column = frame[name]
        if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            continue
        codes, uniques = pd.factorize(column)
        flags = np.fromiter((_is_formula(v) for v in uniques), dtype=bool, count=len(uniques))
        risky = np.zeros(len(column), dtype=bool)
        known = codes >= 0
        risky[known] = flags[codes[known]]
        if risky.any():
            if out is frame:
                out = frame.copy()
            text = column.astype(object)
            out[name] = text.where(~risky, "'" + text[risky].astype(str))
    return out


def _quoted(value: object) -> str:
    """One text cell as the csv module writes it (pandas' ``to_csv`` quoting, minimal)."""
    if isinstance(value, str):
        return _quoted_text(value)
    return _csv_cell(value)


@functools.lru_cache(maxsize=1 << 14)
def _quoted_text(value: str) -> str:
    """`_quoted` of a string, remembered: stems and class names repeat on many rows."""
    return _csv_cell(value)


def _csv_cell(value: object) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_MINIMAL).writerow([value, ""])
    return buffer.getvalue()[:-2]  # the cell, without the "," of the empty one and the newline


_SMALL_INTS = 1 << 13
"""Integers below this are written through one table of their texts, made once."""


@functools.cache
def _small_ints() -> np.ndarray:
    return np.array([str(i) for i in range(_SMALL_INTS)], dtype=object)


def _int_cells(values: np.ndarray) -> list[str]:
    """``str`` of each integer; small ones (most ids, boxes, areas) from a table of texts."""
    if not values.size:
        return []
    small = (values >= 0) & (values < _SMALL_INTS)
    if not small.any():
        return list(map(str, values.tolist()))
    cells = _small_ints()[np.where(small, values, 0)]
    far = np.flatnonzero(~small)
    if far.size:
        cells[far] = list(map(str, values[far].tolist()))
    return list(cells.tolist())


def _float_cells(values: np.ndarray) -> list[str]:
    """Like pandas: numpy's ``str`` of each value (Python's ``repr`` for float64), NaN empty."""
    if values.dtype == np.float64:  # the same shortest digits as numpy's str, faster
        cells = list(map(repr, values.tolist()))
    else:
        cells = values.astype(str).tolist()
    for j in np.flatnonzero(np.isnan(values)).tolist():
        cells[j] = ""
    return cells


def _text_table(values: Any) -> np.ndarray:
    """Each value's cell (neutralised, quoted) and a last ``""`` for missing ones (code -1)."""
    return np.array([_quoted(neutralise_cell(v)) for v in values] + [""], dtype=object)


Cells = Callable[[int, int], list[str]]
"""Return the cells of rows ``start:stop`` of one column."""


def _column_cells(column: pd.Series) -> Cells | None:
    """Return how to write the column's cells as ``to_csv`` does; None for a dtype left to pandas.

    Text (object or categorical of text) is factorised once for the whole
    column: each distinct value is neutralised and quoted once.
    """
    dtype = column.dtype
    if isinstance(dtype, pd.CategoricalDtype) and dtype.categories.dtype == object:
        table = _text_table(dtype.categories)
        codes = column.cat.codes.to_numpy()
        return lambda start, stop: list(table[codes[start:stop]].tolist())
    values = column.to_numpy()
    kind = values.dtype.kind
    if kind == "O":
        codes, uniques = pd.factorize(values)
        table = _text_table(uniques)
        return lambda start, stop: list(table[codes[start:stop]].tolist())
    if kind == "f":
        return lambda start, stop: _float_cells(values[start:stop])
    if kind in "iu":
        return lambda start, stop: _int_cells(values[start:stop])
    if kind == "b":
        return lambda start, stop: list(np.where(values[start:stop], "True", "False").tolist())
    return None


def write_csv(frame: pd.DataFrame, fh: IO[str], *, header: bool = True) -> None:
    """Write `frame` to the open text file `fh` without its index, text cells neutralised.

    The text is what ``DataFrame.to_csv(fh, index=False)`` writes; columns of
    numbers, booleans, Python objects and categories of text are formatted a
    column at a time (each distinct text once), others by pandas.

    Examples
    --------
    >>> out = io.StringIO()
    >>> write_csv(pd.DataFrame({"a": [1, 2], "b": [0.5, np.nan], "c": ["=x", "y,z"]}), out)
    >>> print(out.getvalue(), end="")
    a,b,c
    1,0.5,'=x
    2,,"y,z"
    """
    columns = [_column_cells(frame.iloc[:, j]) for j in range(frame.shape[1])]
    if len(columns) < 2 or not frame.columns.is_unique or any(c is None for c in columns):
        # one column: csv's own rule for ""
        neutralise_frame(frame).to_csv(fh, index=False, header=header)
        return
    formatters = [c for c in columns if c is not None]
    end = os.linesep
    if header:
        fh.write(",".join(_quoted(name) for name in frame.columns) + end)
    for start in range(0, frame.shape[0], CHUNK_ROWS):  # bounded memory: one chunk of text
        stop = start + CHUNK_ROWS
        cells = [cell(start, stop) for cell in formatters]
        fh.write(end.join(map(",".join, zip(*cells, strict=True))) + end)
