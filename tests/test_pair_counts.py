"""The scan's per-image pair counts: the compiled kernel, its numpy twin and a plain count agree."""

from __future__ import annotations

import numpy as np
import pytest

from segaudit.drivers._parts import Tally
from segaudit.kernels import _numba, _numpy


def _image(rng, k, size, label_dtype, argmax_dtype, void, void_flags=True):
    labels = rng.integers(0, k, size).astype(label_dtype)
    predicted = rng.integers(0, k, size).astype(argmax_dtype)
    empty = rng.random(size) < 0.1
    labels[empty] = void
    predicted[empty] = -1  # void exactly where the label is
    mask = (rng.random(size) < 0.3) & ~empty
    if void_flags:  # a flag on a void pixel is not counted (the audit never sets one)
        mask[rng.random(size) < 0.02] = True
    return labels, predicted, mask


def _plain(labels, predicted, mask, k):
    pairs = np.zeros((k, k), np.int64)
    flagged = np.zeros((k, k), np.int64)
    for y, a, m in zip(labels.tolist(), predicted.tolist(), mask.tolist(), strict=True):
        if a >= 0:
            pairs[y, a] += 1
            flagged[y, a] += m
    return pairs.ravel(), flagged.ravel()


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize(
    ("label_dtype", "argmax_dtype", "void"),
    [(np.int16, np.int16, 255), (np.int64, np.int32, -7), (np.uint8, np.int16, 200)],
)
def test_both_kernels_count_as_a_plain_loop(seed, label_dtype, argmax_dtype, void):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(1, 20))
    labels, predicted, mask = _image(
        rng, k, int(rng.integers(0, 3000)), label_dtype, argmax_dtype, void
    )
    for array in (labels, predicted):
        array.flags.writeable = False  # as the audit's images come
    want = _plain(labels, predicted, mask, k)
    for kernels in (_numba, _numpy):
        pairs = np.full(k * k, 3, np.int64)  # counts are added to what is there
        flagged = np.full(k * k, 5, np.int64)
        kernels.pair_counts(labels, predicted, mask, k, pairs, flagged)
        np.testing.assert_array_equal(pairs - 3, want[0])
        np.testing.assert_array_equal(flagged - 5, want[1])


def test_add_image_counts_as_add_and_returns_the_pairs():
    rng = np.random.default_rng(1)
    k = 6
    one, two = Tally(k, 255), Tally(k, 255)
    for _ in range(3):
        labels, predicted, mask = _image(rng, k, 40 * 30, np.int16, np.int16, 255, False)
        shape = (40, 30)
        table = one.add_image(labels.reshape(shape), predicted.reshape(shape), mask.reshape(shape))
        two.add(labels, predicted, mask)
        np.testing.assert_array_equal(table.ravel(), _plain(labels, predicted, mask, k)[0])
        assert table.dtype == np.int64 and table.shape == (k, k)
    np.testing.assert_array_equal(one.confusions, two.confusions)
    np.testing.assert_array_equal(one.pixels, two.pixels)
    np.testing.assert_array_equal(one.flagged, two.flagged)
