"""The CSV cell kernels: compiled float and int text equal to Python's, rows equal to the twin's."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segaudit.kernels import _cells_numpy
from segaudit.kernels._protocol import CELL_WIDTH

numba_cells = pytest.importorskip("segaudit.kernels._cells_numba")


def _cells(kernel, values: np.ndarray) -> tuple[list[str | None], int]:
    """Each cell's text (None where the kernel left it to the caller) and how many those are."""
    out = np.zeros((values.size, CELL_WIDTH), np.uint8)
    lens = np.full(values.size, -2, np.int64)
    kernel(values, out, lens)
    assert (lens >= -1).all() and (lens <= 24).all()
    texts = [None if n < 0 else bytes(out[i, :n]).decode() for i, n in enumerate(lens.tolist())]
    return texts, int((lens < 0).sum())


def _want(values: np.ndarray) -> list[str]:
    return ["" if v != v else repr(v) for v in values.tolist()]


def _check_floats(values: np.ndarray, max_unsure: float = 0.03) -> None:
    values = np.ascontiguousarray(values, dtype=np.float64)
    got, unsure = _cells(numba_cells.float_cells, values)
    want = _want(values)
    wrong = [(w, g) for g, w in zip(got, want, strict=True) if g is not None and g != w]
    assert not wrong, wrong[:5]
    assert unsure <= max(2, max_unsure * values.size)  # Grisu3 vouches for nearly all
    assert _cells(_cells_numpy.float_cells, values) == (want, 0)  # the twin: repr itself


SPECIAL = [0.0, -0.0, np.inf, -np.inf, np.nan, 5e-324, -5e-324, 2.2250738585072014e-308,
           2.225073858507201e-308, 1.7976931348623157e308, 1e16, 1e15, 9999999999999998.0,
           1e-4, 1e-5, 0.00011, 123456789012345680.0, 0.1, 0.2, 0.3, 1 / 3, 2.0**53,
           2.0**53 + 2, 1e22, 1e23, 5e-5, 1.5, 100.0, 1e100, 1e-100, 0.5]  # fmt: skip


@pytest.mark.parametrize("seed", range(3))
def test_float_cells_are_python_repr(seed: int) -> None:
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2**64, 50_000, dtype=np.uint64).view(np.float64)  # every kind
    _check_floats(bits)
    _check_floats(rng.random(50_000))
    _check_floats(rng.random(20_000).astype(np.float32).astype(np.float64))  # widened scores
    _check_floats(rng.standard_normal(20_000) * 10.0 ** rng.integers(-30, 30, 20_000))
    _check_floats(rng.integers(1, 2**52, 20_000, dtype=np.int64).view(np.float64))  # subnormal
    _check_floats(np.arange(-5000, 5000) / 8)


def test_float_cells_special_values_and_powers_of_ten() -> None:
    _check_floats(np.array(SPECIAL), max_unsure=0.2)
    tens = np.array([10.0**k for k in range(-300, 300)])
    _check_floats(np.concatenate([tens, np.nextafter(tens, 0), np.nextafter(tens, np.inf)]))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=50))
def test_float_cells_any_double(values: list[float]) -> None:
    _check_floats(np.array(values), max_unsure=1.0)


def test_int_cells_are_python_str() -> None:
    rng = np.random.default_rng(5)
    values = np.concatenate(
        [
            np.array([0, 1, -1, 9, 10, -10, 99, 100, 2**63 - 1, -(2**63)], dtype=np.int64),
            # every count of digits, at its ends
            np.array([s * (10**k + d) for k in range(19) for d in (-1, 0, 1) for s in (1, -1)]),
            rng.integers(-(2**63), 2**63 - 1, 20_000, dtype=np.int64),
            rng.integers(-1000, 1000, 2000, dtype=np.int64),
        ]
    )
    want = [str(v) for v in values.tolist()]
    for kernel in (numba_cells.int_cells, _cells_numpy.int_cells):
        assert _cells(kernel, values) == (want, 0)


@pytest.mark.parametrize("seed", range(4))
def test_join_cells_matches_the_twin(seed: int) -> None:
    rng = np.random.default_rng(seed)
    rows, k, t = int(rng.integers(0, 40)), int(rng.integers(0, 4)), int(rng.integers(0, 4))
    if k + t == 0:
        k = 1
    slots = rng.integers(32, 127, (k, rows, CELL_WIDTH)).astype(np.uint8)
    slot_lens = rng.integers(0, CELL_WIDTH + 1, (rows, k)).astype(np.int64)
    text_lens = rng.integers(0, 9, (rows, t)).astype(np.int64)
    text = rng.integers(32, 127, int(text_lens.sum()) + 5).astype(np.uint8)
    text_starts = np.array(
        [[int(rng.integers(0, text.size - n + 1)) for n in row] for row in text_lens.tolist()],
        dtype=np.int64,
    ).reshape(rows, t)
    order = rng.permutation(np.r_[np.arange(k), -1 - np.arange(t)]).astype(np.int64)
    end = np.frombuffer(b"\r\n", np.uint8)
    size = int(slot_lens.sum() + text_lens.sum()) + rows * (k + t - 1 + end.size)
    outs = []
    for kernel in (numba_cells.join_cells, _cells_numpy.join_cells):
        out = np.zeros(size, np.uint8)
        kernel(slots, slot_lens, text, text_starts, text_lens, order, end, out)
        outs.append(bytes(out))
    assert outs[0] == outs[1]
    lines = outs[0].split(b"\r\n")[:-1] if rows else []
    assert len(lines) == rows
    for r, line in enumerate(lines):  # the first cell, by hand
        c = int(order[0])
        if c >= 0:
            cell = bytes(slots[c, r, : slot_lens[r, c]])
        else:
            s, n = text_starts[r, -1 - c], text_lens[r, -1 - c]
            cell = bytes(text[s : s + n])
        assert line.startswith(cell + (b"," if k + t > 1 else b""))
