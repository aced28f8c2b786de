"""The softmax's exponential (kernels/_exp.py): accurate, and the same bits in both kernel sets."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from segaudit.kernels import _numba
from segaudit.kernels._exp import EXP_LOW, LOGIT_LIMIT, exp_nonpositive, exp_table


@numba.njit
def _exp_each(x: np.ndarray, out: np.ndarray) -> None:
    for i in range(x.shape[0]):
        out[i] = _numba._exp_nonpositive(x[i])


def _compiled(x: np.ndarray) -> np.ndarray:
    out = np.empty(x.shape[0])
    _exp_each(np.asarray(x, dtype=np.float64), out)
    return out


def _ulps(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    return np.abs(got - want) / np.spacing(want)


def test_within_one_ulp_of_numpy_exp_over_the_whole_range():
    rng = np.random.default_rng(0)
    x = np.concatenate(
        [
            -rng.random(400_000) * 40,  # the range of logits that matters
            -rng.random(100_000) * 760,  # down to and past underflow
            -rng.random(50_000) * 1e-6,
            -np.logspace(-300, 2.87, 2000),
            [-0.0, 0.0, -708.39, -709.1, -744.44, -745.13, -745.14, EXP_LOW, -1e30, -np.inf],
        ]
    )
    want = np.exp(x)
    got = exp_nonpositive(x)
    assert _ulps(got, want).max() <= 1.0
    assert np.array_equal(got == 0.0, want == 0.0)  # underflows where numpy does
    assert got[x == 0.0].tolist() == [1.0, 1.0]  # the largest logit counts exactly 1


@pytest.mark.parametrize("size", [1, 3, 4096])
def test_compiled_and_numpy_give_the_same_bits(size):
    rng = np.random.default_rng(size)
    x = -np.abs(rng.normal(scale=30, size=size))
    x[: min(size, 2)] = [0.0, -745.0][: min(size, 2)]
    assert np.array_equal(_compiled(x).view(np.int64), exp_nonpositive(x).view(np.int64))


@settings(max_examples=200, deadline=None)
@given(arrays(np.float64, st.integers(1, 64), elements=st.floats(-1e6, 0.0)))
def test_same_bits_for_any_nonpositive_input(x):
    got = _compiled(x)
    assert np.array_equal(got.view(np.int64), exp_nonpositive(x).view(np.int64))
    assert _ulps(got, np.exp(x)).max() <= 1.0


def test_exp_table_is_exp_of_every_float16_in_range() -> None:
    table = exp_table()
    assert table.shape == (1 << 16,) and table.dtype == np.float64
    assert not table.flags.writeable
    x = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16).astype(np.float64)
    inside = np.abs(x) <= LOGIT_LIMIT
    assert np.isnan(table[~inside]).all()  # beyond the limit, infinities, NaNs
    ref = np.exp(x[inside])
    assert (np.abs(table[inside] - ref) <= np.spacing(ref)).all()  # within 1 ulp
    np.testing.assert_array_equal(table[inside], exp_nonpositive(x[inside]))
    # any K of them add up to a finite number: no sum overflows
    assert np.isfinite(table[inside].max() * (1 << 20))
