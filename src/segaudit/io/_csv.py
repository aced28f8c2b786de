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
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
import pandas as pd

from segaudit.kernels._cells_numpy import float_cells as repr_cells
from segaudit.kernels._choice import get_kernels
from segaudit.kernels._protocol import CELL_WIDTH, Kernels

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


Cells = tuple[np.ndarray, np.ndarray, np.ndarray]
"""One text column's cells for a chunk of rows: (bytes, start of each cell, its length)."""


@dataclass(frozen=True, eq=False)
class _Column:
    """How to write one column: numbers through a kernel into slots, or text cells."""

    values: np.ndarray | None = None
    """float64 or int64 values, written by `fill` into fixed-width slots."""
    fill: str = ""
    """The kernel: ``"float_cells"`` or ``"int_cells"``."""
    table: Cells | None = None
    """Every distinct text cell of the column, quoted and encoded once."""
    codes: np.ndarray | None = None
    """Each row's cell in `table`."""
    text: Callable[[int, int], Cells] | None = None
    """The text cells of rows ``start:stop`` (a column without a `table`)."""


def _fill_slots(
    kernels: Kernels, column: _Column, start: int, stop: int, out: np.ndarray, lens: np.ndarray
) -> None:
    """Write a number column's cells of rows ``start:stop`` into its slots."""
    assert column.values is not None
    values = np.ascontiguousarray(column.values[start:stop])
    getattr(kernels, column.fill)(values, out, lens)
    unsure = np.flatnonzero(lens < 0)  # the compiled kernel left these to repr: the twin's
    if unsure.size:
        fixed, fixed_lens = np.empty((unsure.size, out.shape[1]), np.uint8), unsure.copy()
        repr_cells(values[unsure], fixed, fixed_lens)
        out[unsure], lens[unsure] = fixed, fixed_lens


def _texts(texts: list[str]) -> Cells:
    """Cells from their texts: the texts joined and encoded at once, each one's bytes measured."""
    lens = np.array([len(t.encode("utf-8")) for t in texts], dtype=np.int64)
    data = np.frombuffer("".join(texts).encode("utf-8"), dtype=np.uint8)
    starts = np.zeros(len(texts), dtype=np.int64)
    np.cumsum(lens[:-1], out=starts[1:])
    return data, starts, lens


def _table_column(table: np.ndarray, codes: np.ndarray) -> _Column:
    """Return a column of codes into `table` (each distinct text encoded once, for all rows)."""
    return _Column(table=_texts(table.tolist()), codes=codes)


def _float_texts(values: np.ndarray) -> list[str]:
    """Like pandas: numpy's ``str`` of each value (float16/32 or longdouble), NaN empty."""
    cells: list[str] = list(values.astype(str).tolist())
    for j in np.flatnonzero(np.isnan(values)).tolist():
        cells[j] = ""
    return cells


def _text_table(values: Any) -> np.ndarray:
    """Each value's cell (neutralised, quoted) and a last ``""`` for missing ones (code -1)."""
    return np.array([_quoted(neutralise_cell(v)) for v in values] + [""], dtype=object)


def _column(column: pd.Series) -> _Column | None:
    """Return how to write the column's cells as ``to_csv`` does; None for a dtype left to pandas.

    float64 (``repr``) and integer columns (``str``) are written by the
    kernels; text (object or categorical of text) is factorised once for the
    whole column: each distinct value is neutralised and quoted once.
    """
    dtype = column.dtype
    if isinstance(dtype, pd.CategoricalDtype) and dtype.categories.dtype == object:
        return _table_column(_text_table(dtype.categories), column.cat.codes.to_numpy())
    values = column.to_numpy()
    kind = values.dtype.kind
    if kind == "O":
        codes, uniques = pd.factorize(values)
        return _table_column(_text_table(uniques), codes)
    if values.dtype == np.float64:
        return _Column(values=values, fill="float_cells")
    if kind == "f":
        return _Column(text=lambda start, stop: _texts(_float_texts(values[start:stop])))
    if kind in "iu" and (values.size == 0 or values.max() <= np.iinfo(np.int64).max):
        return _Column(values=values.astype(np.int64, copy=False), fill="int_cells")
    if kind == "u":  # above int64
        return _Column(text=lambda start, stop: _texts(list(map(str, values[start:stop].tolist()))))
    if kind == "b":
        return _table_column(np.array(["False", "True"], dtype=object), values.astype(np.intp))
    return None


def write_csv(frame: pd.DataFrame, fh: IO[str], *, header: bool = True) -> None:
    """Write `frame` to the open text file `fh` without its index, text cells neutralised.

    The text is what ``DataFrame.to_csv(fh, index=False)`` writes. Columns of
    numbers, booleans, Python objects and categories of text are written
    :data:`CHUNK_ROWS` rows at a time: float64 and integer cells and the rows
    themselves by the cell kernels (``float_cells``, ``int_cells``,
    ``join_cells``), each distinct text once; a frame with another dtype, or
    one column, is left to pandas.

    Examples
    --------
    >>> out = io.StringIO()
    >>> write_csv(pd.DataFrame({"a": [1, 2], "b": [0.5, np.nan], "c": ["=x", "y,z"]}), out)
    >>> print(out.getvalue(), end="")
    a,b,c
    1,0.5,'=x
    2,,"y,z"
    """
    columns = [_column(frame.iloc[:, j]) for j in range(frame.shape[1])]
    if len(columns) < 2 or not frame.columns.is_unique or any(c is None for c in columns):
        # one column: csv's own rule for ""
        neutralise_frame(frame).to_csv(fh, index=False, header=header)
        return
    chosen = [c for c in columns if c is not None]
    numbers = [c for c in chosen if c.values is not None]
    texts = [c for c in chosen if c.values is None]
    order = np.array(  # slot column j, or text column t as -1 - t
        [numbers.index(c) if c.values is not None else -1 - texts.index(c) for c in chosen],
        dtype=np.int64,
    )
    end = os.linesep
    if header:
        fh.write(",".join(_quoted(name) for name in frame.columns) + end)
    ending = np.frombuffer(end.encode("ascii"), dtype=np.uint8)
    # the tables' cells, for every chunk: one buffer, each table at its offset
    tables = [c.table for c in texts if c.table is not None]
    fixed = np.concatenate([data for data, _, _ in tables] or [np.empty(0, np.uint8)])
    offsets = iter(np.cumsum([0] + [data.size for data, _, _ in tables[:-1]]).tolist())
    table_at = {id(c): next(offsets) for c in texts if c.table is not None}
    kernels = get_kernels()
    for start in range(0, frame.shape[0], CHUNK_ROWS):  # bounded memory: one chunk of text
        stop = min(start + CHUNK_ROWS, frame.shape[0])
        rows = stop - start
        slots = np.empty((len(numbers), rows, CELL_WIDTH), dtype=np.uint8)
        slot_lens = np.empty((len(numbers), rows), dtype=np.int64)
        for j, column in enumerate(numbers):
            _fill_slots(kernels, column, start, stop, slots[j], slot_lens[j])
        text_starts = np.empty((rows, len(texts)), dtype=np.int64)
        text_lens = np.empty((rows, len(texts)), dtype=np.int64)
        pieces = [fixed]  # then the chunk's own text cells of columns without a table
        size = fixed.size
        for t, column in enumerate(texts):
            if column.table is not None and column.codes is not None:
                _, first, length = column.table
                codes = column.codes[start:stop]
                text_starts[:, t] = first[codes] + table_at[id(column)]
                text_lens[:, t] = length[codes]
            elif column.text is not None:
                data, first, length = column.text(start, stop)
                text_starts[:, t] = first + size
                text_lens[:, t] = length
                pieces.append(data)
                size += data.size
        text = pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
        lens = np.ascontiguousarray(slot_lens.T)
        total = int(lens.sum()) + int(text_lens.sum()) + rows * (len(chosen) - 1 + ending.size)
        out = np.empty(total, dtype=np.uint8)
        kernels.join_cells(slots, lens, text, text_starts, text_lens, order, ending, out)
        fh.write(out.tobytes().decode("utf-8"))
