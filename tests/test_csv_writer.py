"""`io._csv.write_csv` writes what pandas' ``to_csv`` writes, a column at a time."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

import segaudit.io._csv as csv_module
from segaudit.io._csv import neutralise_frame, write_csv

SPECIAL = [
    0.0,
    -0.0,
    np.nan,
    np.inf,
    -np.inf,
    1e-300,
    5e-324,
    1e22,
    1e16,
    123456789.123,
    0.1,
    1 / 3,
]
TEXT = ["a", "", "x,y", 'say "hi"', "two\nlines", "cr\rhere", " lead", "=SUM(A1)", "-3", "@x", None]


def _pandas(frame: pd.DataFrame, header: bool = True) -> str:
    out = io.StringIO()
    neutralise_frame(frame).to_csv(out, index=False, header=header)
    return out.getvalue()


def _ours(frame: pd.DataFrame, header: bool = True) -> str:
    out = io.StringIO()
    write_csv(frame, out, header=header)
    return out.getvalue()


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("header", [True, False])
@pytest.mark.parametrize("chunk", [7, 4096])
def test_same_text_as_pandas(seed: int, header: bool, chunk: int, monkeypatch) -> None:
    monkeypatch.setattr(csv_module, "CHUNK_ROWS", chunk)  # several chunks, or one
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 60))
    frame = pd.DataFrame(
        {
            "i": rng.integers(-(2**62), 2**62, n),
            "u": rng.integers(0, 255, n).astype(np.uint8),
            "f": np.where(rng.random(n) < 0.3, rng.choice(SPECIAL, n), rng.normal(0, 1e3, n)),
            "f32": rng.random(n).astype(np.float32),
            "b": rng.random(n) < 0.5,
            "text": pd.Series(rng.choice(np.array(TEXT, dtype=object), n), dtype=object),
            "a,b": rng.random(n),
        }
    )
    assert _ours(frame, header) == _pandas(frame, header)


def test_other_dtypes_and_one_column_are_left_to_pandas() -> None:
    frames = [
        pd.DataFrame({"only": ["", "x"]}),
        pd.DataFrame({"t": pd.to_datetime(["2020-01-01", "2021-05-06"]), "v": [1, 2]}),
        pd.DataFrame({"c": pd.Categorical(["a", "=b"]), "v": [1.5, 2.5]}),
    ]
    for frame in frames:
        assert _ours(frame) == _pandas(frame)


def test_formula_cells_are_neutralised_once_per_value() -> None:
    frame = pd.DataFrame({"stem": ["=a", "b", "=a", None], "n": [1, 2, 3, 4]})
    text = _ours(frame)
    assert text.splitlines() == ["stem,n", "'=a,1", "b,2", "'=a,3", ",4"]
    assert frame["stem"].tolist()[0] == "=a"  # the input is not changed
