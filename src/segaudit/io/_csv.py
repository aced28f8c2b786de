"""CSV output that spreadsheets cannot run: text cells are neutralised against formula injection.

A file stem or class name such as ``=HYPERLINK(...)`` or ``=cmd|' /C calc'!A0``
would be a live formula once the CSV is opened in Excel, LibreOffice or Sheets.
As OWASP recommends, a text cell that begins with ``=``, ``+``, ``-``, ``@``, a
tab or a carriage return gets a leading single quote, which those programs show
as text. Numeric cells (negative numbers included) are written as they are.
"""

from __future__ import annotations

from typing import IO, Any

import pandas as pd

__all__ = ["FORMULA_PREFIXES", "neutralise_cell", "neutralise_frame", "write_csv"]

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


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
    only when a text column needs a change.
    """
    out = frame
    for name in frame.columns:
        column = frame[name]
        if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            continue
        text = column.astype(object)
        risky = text.map(_is_formula)
        if risky.any():
            if out is frame:
                out = frame.copy()
            out[name] = text.where(~risky.astype(bool), "'" + text[risky].astype(str))
    return out


def write_csv(frame: pd.DataFrame, fh: IO[str], *, header: bool = True) -> None:
    """Write `frame` to the open text file `fh` without its index, text cells neutralised."""
    neutralise_frame(frame).to_csv(fh, index=False, header=header)
