"""The summary kernels split their tiles into runs (one per thread); no result depends on it.

Each run makes its scratch buffers once instead of once per tile: a ``K x
TILE`` buffer is mapped afresh by malloc on every tile where it sits above the
mmap threshold (musl; glibc with ``MALLOC_MMAP_THRESHOLD_``).
"""

from __future__ import annotations

import numpy as np
import pytest

from segaudit.kernels import _batch, _choice, _numba, _numpy
from segaudit.kernels._protocol import TILE

RUNS = [1, 2, 3, 7, 1000]


def _inputs(dtype: type, from_logits: bool, n: int, p: int, k: int, seed: int):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, (n, p))
    labels[:, ::11] = 255  # void pixels in every tile
    if from_logits:
        probs = rng.normal(0, 3, (n, k, p))
    else:
        probs = rng.dirichlet(np.ones(k), (n, p)).transpose(0, 2, 1)
    return probs.astype(dtype), labels


def _summary(kernels, probs, labels, k, from_logits, runs, monkeypatch):
    monkeypatch.setattr(_batch, "kernel_runs", lambda: runs)
    return _batch.summarise_batch(
        probs,
        labels,
        kernels=kernels,
        num_classes=k,
        ignore_index=255,
        from_logits=from_logits,
        image_offset=0,
        shape_hw=(1, labels.shape[1]),
        argmax_out=np.empty(labels.shape, dtype=np.int32),
        agree=True,
    )


def _same(a, b) -> None:
    np.testing.assert_array_equal(a.scores, b.scores)
    np.testing.assert_array_equal(a.disagree, b.disagree)
    np.testing.assert_array_equal(a.max_prob, b.max_prob)
    np.testing.assert_array_equal(a.argmax, b.argmax)
    np.testing.assert_array_equal(a.sums, b.sums)
    np.testing.assert_array_equal(a.counts, b.counts)
    np.testing.assert_array_equal(a.agree[0], b.agree[0])
    np.testing.assert_array_equal(a.agree[1], b.agree[1])


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("shape", [(1, 3 * TILE + 5), (3, TILE - 7), (2, 9)])
def test_summary_is_the_same_for_any_number_of_runs(dtype, from_logits, shape, monkeypatch):
    n, p = shape
    k = 7
    probs, labels = _inputs(dtype, from_logits, n, p, k, seed=p)
    expected = _summary(_numpy, probs, labels, k, from_logits, 1, monkeypatch)
    for runs in RUNS:  # more runs than tiles too
        got = _summary(_numba, probs, labels, k, from_logits, runs, monkeypatch)
        _same(got, expected)


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_scores_only_kernel_is_the_same_for_any_number_of_runs(dtype, monkeypatch):
    k, n, p = 5, 3, 2 * TILE + 3
    probs, labels = _inputs(dtype, False, n, p, k, seed=4)
    results = []
    for kernels, runs in [(_numpy, 1), *((_numba, r) for r in RUNS)]:
        monkeypatch.setattr(_batch, "kernel_runs", lambda r=runs: r)
        out = np.empty((n, p), dtype=np.float64 if dtype == np.float64 else np.float32)
        dev = _batch.score_batch(
            probs,
            labels,
            kernels=kernels,
            num_classes=k,
            ignore_index=255,
            image_offset=0,
            shape_hw=(1, p),
            scores_out=out,
        )
        results.append((out, dev))
    for out, _ in results[1:]:
        np.testing.assert_array_equal(out, results[0][0])
    assert len({dev for _, dev in results[1:]}) == 1  # the compiled kernels agree exactly


def test_an_input_error_is_found_in_any_run(monkeypatch):
    k, n, p = 4, 2, 3 * TILE
    probs, labels = _inputs(np.float32, False, n, p, k, seed=5)
    labels[1, 2 * TILE + 17] = 9  # in the last tile of the second image
    for runs in RUNS:
        monkeypatch.setattr(_batch, "kernel_runs", lambda r=runs: r)
        with pytest.raises(ValueError, match="9"):
            _summary(_numba, probs, labels, k, False, runs, monkeypatch)


def test_runs_follow_numba_threads(monkeypatch):
    monkeypatch.setenv("SEGAUDIT_KERNEL", "numba")
    with _choice.use_threads(1):
        assert _choice.kernel_runs() == 1
    with _choice.use_threads(None) as threads:
        assert _choice.kernel_runs() == threads
    monkeypatch.setenv("SEGAUDIT_KERNEL", "numpy")
    assert _choice.kernel_runs() == 1
