"""The fast path of ``confident_regions`` / ``region_fraction``: same results every way.

The region kernel works out each candidate's confidence (``m >= t~_a -
tolerance``) and lean (``m / t~_a``) itself, from m and a as the summary keeps
them (float32 or float64 m; uint8, int32 or int64 a), ``region_fraction``
takes each batch's softmin scores while the batch is read, and the summary
pass adds the agreeing sums per tile (the ``agree_sums`` kernels, which give
the same sums, serve only batches summarised elsewhere). These tests pin that
none of this changes a result.
"""

from __future__ import annotations

import numpy as np
import pytest

import segaudit
from segaudit.engine._scores import flagged_softmin
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
    rows = mask.reshape(len(mask), -1)
    share = 1.0 - rows.sum(axis=1) / mask[0].size
    valid = np.full(len(mask), mask[0].size)
    _, evidence = flagged_softmin(results[0][1].reshape(len(mask), -1), rows, valid, 0.1)
    want = 0.5 * (share * (1 - 1e-3) + 1e-3 * softmin) + 0.5 * evidence
    np.testing.assert_allclose(results[0][0], want, rtol=1e-15, atol=0)


def _summary(kernels, probs, labels, num_classes, **kwargs):
    from segaudit.kernels._batch import as_batch, summarise_batch

    pb, lb = as_batch(probs, labels)
    return summarise_batch(
        pb,
        lb,
        kernels=kernels,
        num_classes=num_classes,
        image_offset=0,
        shape_hw=probs.shape[2:],
        agree=True,
        **kwargs,
    )


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, "logits"])
def test_summary_agreeing_sums_are_the_agree_sums_kernels(dtype):
    # the summary pass adds the agreeing sums per tile; the agree_sums kernels
    # (used for batches summarised on a device) must give the same bits, and
    # so must both kernel paths, on images of several tiles with void pixels
    from segaudit.engine._detect import agreeing_sums
    from segaudit.kernels._choice import get_kernels
    from segaudit.kernels._protocol import TILE

    rng = np.random.default_rng(11)
    n, k, h, w = 3, 5, 61, 97  # 5917 pixels: a full tile and a partial one
    assert TILE < h * w < 2 * TILE
    labels = rng.integers(0, k, size=(n, h, w))
    labels[rng.random(labels.shape) < 0.1] = 255
    logits = rng.normal(size=(n, k, h, w)) * 3
    logits[:, 2] += 2.0 * (labels == 2)  # agreement on class 2 mostly
    from_logits = dtype == "logits"
    probs = logits if from_logits else np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    if not from_logits:
        probs = probs.astype(dtype)
    got = {}
    for name in ("numba", "numpy"):
        kernels = get_kernels(name)
        full = _summary(kernels, probs, labels, k, ignore_index=255, from_logits=from_logits)
        assert full.agree is not None
        sums, counts = full.agree
        assert sums.shape == counts.shape == (n * 2, k)
        again = agreeing_sums(full.scores, full.disagree, labels.reshape(n, -1), k, kernels)
        np.testing.assert_array_equal(sums, again[0])
        np.testing.assert_array_equal(counts, again[1])
        got[name] = (sums, counts, full.scores, full.disagree)
    for a, b in zip(got["numba"], got["numpy"], strict=True):
        np.testing.assert_array_equal(a, b)
    # what they add up: s over labelled pixels where the model agrees, tile by tile
    sums, counts, scores, disagree = got["numba"]
    agree = ~disagree & (labels.reshape(n, -1) != 255)
    flat = labels.reshape(n, -1)
    for i in range(n):
        for j, (j0, j1) in enumerate(((0, TILE), (TILE, h * w))):
            part = agree[i, j0:j1]
            want = np.bincount(flat[i, j0:j1][part], minlength=k)
            np.testing.assert_array_equal(counts[2 * i + j], want)
            sel = flat[i, j0:j1] == 2
            expect = 0.0
            for v in scores[i, j0:j1][part & sel]:  # added in pixel order
                expect += float(v)
            assert sums[2 * i + j, 2] == expect


def test_summary_agreeing_sums_only_when_asked():
    from segaudit.kernels._batch import as_batch, summarise_batch
    from segaudit.kernels._choice import get_kernels

    probs = np.full((1, 2, 3, 4), 0.5)
    labels = np.zeros((1, 3, 4), dtype=np.int64)
    for name in ("numba", "numpy"):
        pb, lb = as_batch(probs, labels)
        plain = summarise_batch(
            pb,
            lb,
            kernels=get_kernels(name),
            num_classes=2,
            ignore_index=None,
            from_logits=False,
            image_offset=0,
            shape_hw=(3, 4),
        )
        assert plain.agree is None
        asked = _summary(get_kernels(name), probs, labels, 2, ignore_index=None, from_logits=False)
        assert asked.agree is not None
        np.testing.assert_array_equal(asked.agree[1], [[12, 0]])
        np.testing.assert_array_equal(asked.agree[0], [[6.0, 0.0]])


@pytest.mark.parametrize("kernel_name", ["numba", "numpy"])
def test_confident_regions_takes_the_summary_sums(kernel_name, monkeypatch):
    # arrays on the CPU: the agreeing sums come from the summary pass, not from
    # a second pass of the agree_sums kernel; the masks and image scores are those
    # that the second pass gives (a device summary's path), for images of
    # several tiles, any batch size and thread count
    from segaudit.engine import _finder
    from segaudit.kernels import _numba, _numpy

    monkeypatch.setenv("SEGAUDIT_KERNEL", kernel_name)
    scenes = make_scenes(6, num_classes=4, height=72, width=64, seed=5)
    labels, probs = scenes.labels, scenes.pred_probs[0]
    per_image = probs[0].size
    results = []
    for batch_size, n_jobs in ((None, None), (per_image, 1), (4 * per_image, 2)):
        mask = segaudit.find_label_issues(
            labels,
            probs,
            filter_by="confident_regions",
            batch_size=batch_size,
            n_jobs=n_jobs,
            verbose=False,
        )
        image, _ = segaudit.get_label_quality_scores(
            labels, probs, method="region_fraction", batch_size=batch_size, verbose=False
        )
        results.append((mask, image))
    assert results[0][0].any()
    for mask, image in results[1:]:
        np.testing.assert_array_equal(mask, results[0][0])
        np.testing.assert_array_equal(image, results[0][1])

    def unused(*args):
        raise AssertionError("agree_sums called")

    module = _numba if kernel_name == "numba" else _numpy
    monkeypatch.setattr(module, "agree_sums", unused)
    mask = segaudit.find_label_issues(labels, probs, filter_by="confident_regions", verbose=False)
    np.testing.assert_array_equal(mask, results[0][0])
    monkeypatch.undo()
    monkeypatch.setenv("SEGAUDIT_KERNEL", kernel_name)
    # the second pass (as for a summary made on a device) gives the same mask
    real_stage = _finder.summarise_block

    def without_agree(*args, **kwargs):
        block = real_stage(*args, **kwargs)
        block.full.agree = None
        return block

    monkeypatch.setattr(_finder, "summarise_block", without_agree)
    mask = segaudit.find_label_issues(labels, probs, filter_by="confident_regions", verbose=False)
    np.testing.assert_array_equal(mask, results[0][0])
