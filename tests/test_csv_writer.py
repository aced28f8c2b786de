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


def test_many_floats_are_written_as_pandas_writes_them() -> None:
    rng = np.random.default_rng(7)
    n = 20_000
    values = np.concatenate(
        [
            rng.random(n),
            rng.random(n).astype(np.float32).astype(np.float64),  # widened scores
            1 - rng.random(n).astype(np.float32).astype(np.float64),
            rng.standard_normal(n) * 10.0 ** rng.integers(-310, 308, n),
            np.array([*SPECIAL, 1e-5, 1e-4, 9.999999999999999e15, -1e16, 2.5, 1e300]),
        ]
    )
    with np.errstate(over="ignore"):
        narrow = values.astype(np.float32)
    frame = pd.DataFrame({"f": values, "f32": narrow, "i": np.arange(values.size)})
    assert _ours(frame) == _pandas(frame)
    cells = [line.split(",")[0] for line in _ours(frame).splitlines()[1:]]
    assert cells == ["" if np.isnan(v) else repr(v) for v in values.tolist()]


@pytest.mark.parametrize("chunk", [5, 4096])
def test_categories_and_integers_of_any_size(chunk: int, monkeypatch) -> None:
    monkeypatch.setattr(csv_module, "CHUNK_ROWS", chunk)
    rng = np.random.default_rng(3)
    n = 200
    categories = np.array(["=a", "b,c", "", "plain", "@x"], dtype=object)
    codes = rng.integers(-1, categories.size, n)
    large = rng.integers(-(10**12), 10**12, n)
    frame = pd.DataFrame(
        {
            "cat": pd.Categorical.from_codes(codes, categories=categories),
            "small": rng.integers(0, 100, n),
            "mixed": np.where(rng.random(n) < 0.5, rng.integers(0, 9000, n), large),
            "u64": rng.integers(0, 2**63, n, dtype=np.uint64) * np.uint64(2),
            "empty": pd.Series([""] * n, dtype=object),
        }
    )
    assert _ours(frame) == _pandas(frame)
    assert frame["cat"].tolist()[0] in (*categories, np.nan)  # the input is not changed
