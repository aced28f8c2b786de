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


def _int_cells(values: np.ndarray) -> list[str]:
    """``str`` of each integer; through a table of texts when it is shorter than the column."""
    if values.size and values.min() >= 0 and values.max() < values.size:
        table = np.array(list(map(str, range(int(values.max()) + 1))), dtype=object)
        return list(table[values].tolist())
    return list(map(str, values.tolist()))


def _cells(column: pd.Series) -> list[str] | None:
    """Return the column's cells as ``to_csv`` writes them; None for a dtype left to pandas."""
    values = column.to_numpy()
    kind = values.dtype.kind
    if kind == "f":  # like pandas: numpy's str() of each value, NaN as the empty cell
        if values.dtype == np.float64:  # Python's repr: the same shortest digits, faster
            cells = list(map(repr, values.tolist()))
        else:
            cells = values.astype(str).tolist()
        for j in np.flatnonzero(np.isnan(values)).tolist():
            cells[j] = ""
        return cells
    if kind in "iu":
        return _int_cells(values)
    if kind == "b":
        return list(np.where(values, "True", "False").tolist())
    if kind == "O":  # each distinct value formatted once; missing values are empty cells
        codes, uniques = pd.factorize(column)
        table = np.array([_quoted(v) for v in uniques] + [""], dtype=object)
        return list(table[codes].tolist())
    return None


def write_csv(frame: pd.DataFrame, fh: IO[str], *, header: bool = True) -> None:
    """Write `frame` to the open text file `fh` without its index, text cells neutralised.

    The text is what ``DataFrame.to_csv(fh, index=False)`` writes; columns of
    numbers, booleans and Python objects are formatted a column at a time
    (each distinct text once), others by pandas.

    Examples
    --------
    >>> out = io.StringIO()
    >>> write_csv(pd.DataFrame({"a": [1, 2], "b": [0.5, np.nan], "c": ["=x", "y,z"]}), out)
    >>> print(out.getvalue(), end="")
    a,b,c
    1,0.5,'=x
    2,,"y,z"
    """
    frame = neutralise_frame(frame)
    kinds = [frame.iloc[:, j].to_numpy().dtype.kind for j in range(frame.shape[1])]
    if len(kinds) < 2 or any(k not in "fiubO" for k in kinds) or not frame.columns.is_unique:
        frame.to_csv(fh, index=False, header=header)  # one column: csv's own rule for ""
        return
    end = os.linesep
    if header:
        fh.write(",".join(_quoted(name) for name in frame.columns) + end)
    for start in range(0, frame.shape[0], CHUNK_ROWS):  # bounded memory: one chunk of text
        chunk = frame.iloc[start : start + CHUNK_ROWS]
        columns = [_cells(chunk.iloc[:, j]) for j in range(chunk.shape[1])]
        fh.write(end.join(map(",".join, zip(*columns, strict=True))) + end)
