"""The fast path of ``confident_regions`` / ``region_fraction``: same results every way.

The region kernel works out each candidate's confidence (``m >= t~_a -
tolerance``) and lean (``m / t~_a``) itself, from m and a as the summary keeps
them (float32 or float64 m; uint8, int32 or int64 a), and ``region_fraction``
takes each batch's softmin scores while the batch is read. These tests pin
that neither changes a result.
"""

from __future__ import annotations

import numpy as np
import pytest

import segaudit
from segaudit.evaluate import make_scenes

pytest.importorskip("scipy")


def _inputs(rng, n, h, w, k, density):
    """Candidates of n images, their m and a in pixel order, and every pixel's s and label."""
    labels = rng.integers(0, k, size=(n, h * w))
    cand = rng.random((n, h * w)) < density
    d = int(cand.sum())
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.count_nonzero(cand, axis=1), out=offsets[1:])
    predicted = (labels[cand] + rng.integers(1, k, size=d)) % k
    t = 0.05 + rng.random(k)
    max_prob = t[predicted] * rng.random(d) * 2
    scores = rng.random((n, h * w)) * 0.5
    return cand, offsets, labels, predicted, max_prob, t, scores


def _flags(module, cand, w, offsets, labels, predicted, max_prob, t, scores):
    out = cand.copy()
    k = t.shape[0]
    module.region_flags(
        out,
        w,
        scores,
        max_prob,
        offsets,
        0.1 * t,
        0.25,
        labels,
        predicted,
        np.stack([t, t - 1e-6]),
        0.2 * t,
        np.array([3.0, 0.4, 0.3, 1.0, 1.25, 0.8]),
    )
    assert out.shape == cand.shape and k > 0
    return out


@pytest.mark.parametrize("seed", range(4))
def test_region_flags_same_for_every_record_dtype_and_kernel(seed):
    from segaudit.kernels import _regions_numba, _regions_numpy

    rng = np.random.default_rng(seed)
    n, h, w, k = 3, 17, 23, 5
    cand, offsets, labels, predicted, max_prob, t, scores = _inputs(rng, n, h, w, k, 0.45)
    expected = _flags(_regions_numpy, cand, w, offsets, labels, predicted, max_prob, t, scores)
    assert expected.any() and not np.array_equal(expected, cand)
    assert not (expected & ~cand).any()
    m32 = max_prob.astype(np.float32)
    for module in (_regions_numba, _regions_numpy):
        for a_dtype in (np.uint8, np.int32, np.int64):
            a = predicted.astype(a_dtype)
            got = _flags(module, cand, w, offsets, labels, a, max_prob, t, scores)
            np.testing.assert_array_equal(got, expected)
            # float32 m: read as float64 by both, the same flags in both
            got32 = _flags(module, cand, w, offsets, labels, a, m32, t, scores)
            ref32 = _flags(_regions_numpy, cand, w, offsets, labels, predicted, m32, t, scores)
            np.testing.assert_array_equal(got32, ref32)


def test_region_flags_confidence_is_m_against_t_less_the_tolerance():
    # one 2-pixel region labelled 1, predicted 0 by the model: its pixels are
    # confident exactly when m >= t~_0 - 1e-6 (the second row of the thresholds)
    from segaudit.kernels import _regions_numba, _regions_numpy

    t = np.array([0.8, 0.9])
    labels = np.array([[1, 1, 0]])
    cand = np.array([[True, True, False]])
    scores = np.array([[0.2, 0.2, 0.9]])  # above 0.1 t~_1: not implausible
    for m, flagged in ((0.8 - 1e-6, True), (0.8 - 2e-6, False)):
        for module in (_regions_numba, _regions_numpy):
            out = cand.copy()
            module.region_flags(
                out,
                3,
                scores,
                np.array([m, m]),
                np.array([0, 2]),
                0.1 * t,
                1.0,  # both pixels must be confident
                labels,
                np.array([0, 0], np.uint8),
                np.stack([t, t - 1e-6]),
                0.2 * t,
                np.array([np.inf, 0.4, 0.7, 0.0, 1.25]),
            )
            np.testing.assert_array_equal(out, cand & flagged, err_msg=f"{m} {module.__name__}")


@pytest.mark.parametrize("kernel_name", ["numba", "numpy"])
def test_region_fraction_same_for_any_batch_size_and_threads(kernel_name, monkeypatch):
    # softmin is now taken batch by batch: the image scores must not move
    monkeypatch.setenv("SEGAUDIT_KERNEL", kernel_name)
    scenes = make_scenes(7, num_classes=4, seed=3)
    labels, probs = scenes.labels, scenes.pred_probs[0]
    per_pixel = probs.shape[1] * probs.shape[2] * probs.shape[3]
    results = []
    for batch_size, n_jobs in ((None, None), (per_pixel, 1), (3 * per_pixel, 2)):
        image, pixel = segaudit.get_label_quality_scores(
            labels,
            probs,
            method="region_fraction",
            batch_size=batch_size,
            n_jobs=n_jobs,
            verbose=False,
        )
        results.append((image, pixel))
    for image, pixel in results[1:]:
        np.testing.assert_array_equal(image, results[0][0])
        np.testing.assert_array_equal(pixel, results[0][1])
    # the softmin part is the softmin method's own score
    softmin, _ = segaudit.get_label_quality_scores(labels, probs, verbose=False)
    mask = segaudit.find_label_issues(labels, probs, filter_by="confident_regions", verbose=False)
    share = 1.0 - mask.reshape(len(mask), -1).sum(axis=1) / mask[0].size
    np.testing.assert_array_equal(results[0][0], share * (1 - 1e-3) + 1e-3 * softmin)
