"""``method="region_fraction"``: the formula written out, and the same on every input route."""

from __future__ import annotations

import numpy as np
import pytest

import segaudit
from segaudit.engine._scores import (
    EVIDENCE_WEIGHT,
    SOFTMIN_WEIGHT,
    flagged_per_image,
    flagged_softmin,
    region_image_scores,
)
from segaudit.evaluate import make_scenes

pytest.importorskip("scipy.ndimage")


def _expected(labels, probs, ignore_index, **options):
    """The score from its parts: confident_regions' flags, labelled pixels, softmin, and the
    softmin over the image with every unflagged labelled pixel's s replaced by 1."""
    mask = segaudit.find_label_issues(
        labels, probs, filter_by="confident_regions", ignore_index=ignore_index, **options
    )
    softmin, pixel = segaudit.get_label_quality_scores(
        labels, probs, ignore_index=ignore_index, **options
    )
    flat = np.asarray(labels).reshape(len(labels), -1)
    valid = (flat != ignore_index).sum(axis=1) if ignore_index is not None else flat.shape[1]
    valid = np.broadcast_to(valid, (len(labels),))
    flagged = mask.reshape(len(labels), -1).sum(axis=1).astype(np.float64)
    share = np.where(valid > 0, 1.0 - flagged / np.maximum(valid, 1), 1.0)
    s = np.asarray(pixel, dtype=np.float64).reshape(len(labels), -1)
    q = np.where(mask.reshape(len(labels), -1), s, 1.0)
    z = np.where(np.isnan(s), -np.inf, (1.0 - q) / 0.1)  # void pixels weigh nothing
    w = np.exp(z - z.max(axis=1, keepdims=True))
    evidence = np.nansum(w * q, axis=1) / w.sum(axis=1)
    e = EVIDENCE_WEIGHT
    image = (1.0 - e) * (share * (1.0 - SOFTMIN_WEIGHT) + SOFTMIN_WEIGHT * softmin) + e * evidence
    return image, pixel, int(flagged.sum())


@pytest.mark.parametrize(
    ("size", "models", "ignore_index", "batch_size"),
    [
        ((64, 64), 1, None, None),  # 4096 pixels: counted image by image
        ((40, 48), 1, None, 5 * 40 * 48),  # small images: counted at once; batches of 1
        ((64, 64), 3, None, None),
        ((64, 72), 3, 255, 3 * 5 * 64 * 72),
        ((40, 48), 1, 255, None),
    ],
)
def test_region_fraction_is_its_formula(size, models, ignore_index, batch_size):
    scenes = make_scenes(
        10,
        height=size[0],
        width=size[1],
        models=models,
        model_error_rate=0.2,
        ignore_index=ignore_index,
        void_border=2 if ignore_index is not None else 0,
        seed=7,
    )
    probs = scenes.pred_probs if models > 1 else scenes.pred_probs[0]
    options = {"verbose": False, "batch_size": batch_size}
    image, pixel = segaudit.get_label_quality_scores(
        scenes.labels, probs, method="region_fraction", ignore_index=ignore_index, **options
    )
    want_image, want_pixel, flagged = _expected(scenes.labels, probs, ignore_index, **options)
    assert flagged > 0  # the share term is exercised, not only the softmin tie-break
    # the library adds the flagged pixels only: the same value to the last bits
    np.testing.assert_allclose(image, want_image, rtol=1e-12, atol=0)
    np.testing.assert_array_equal(pixel, want_pixel)


def test_region_fraction_of_memmaps_is_that_of_arrays(tmp_path):
    scenes = make_scenes(8, height=64, width=64, models=2, model_error_rate=0.2, seed=11)
    maps = []
    for i, array in enumerate([scenes.labels, *scenes.pred_probs]):
        m = np.lib.format.open_memmap(tmp_path / f"{i}.npy", "w+", array.dtype, array.shape)
        m[...] = array
        m.flush()
        maps.append(np.load(tmp_path / f"{i}.npy", mmap_mode="r"))
    labels, probs = maps[0], maps[1:]
    options = {"method": "region_fraction", "verbose": False, "batch_size": 2 * 5 * 64 * 64}
    got = segaudit.get_label_quality_scores(labels, probs, **options)
    want = segaudit.get_label_quality_scores(scenes.labels, list(scenes.pred_probs), **options)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    want_image = _expected(labels, probs, None, verbose=False)[0]
    np.testing.assert_allclose(got[0], want_image, rtol=1e-12, atol=0)


@pytest.mark.parametrize("shape", [(3, 4, 5), (3, 64, 64), (2, 70, 70), (0, 64, 64), (4,)])
def test_flagged_per_image_counts_true_pixels(shape):
    rng = np.random.default_rng(0)
    mask = rng.random(shape) < 0.3
    got = flagged_per_image(mask)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, mask.reshape(shape[0], int(np.prod(shape[1:]))).sum(axis=1))
    view = mask[:, ::-1] if mask.ndim > 1 else mask  # not contiguous
    np.testing.assert_array_equal(flagged_per_image(view), got)


def test_flagged_softmin_reads_only_the_flagged_pixels():
    rng = np.random.default_rng(3)
    s = rng.uniform(0.0, 1.0, (4, 50))
    s[:, :5] = np.nan  # void: never flagged, not counted
    mask = rng.uniform(size=s.shape) < 0.3
    mask[:, :5] = False
    mask[2] = False  # no flag: exactly 1
    mask[3, 5:] = True  # every labelled pixel flagged: the plain softmin of s
    valid = np.full(4, 45)
    count, got = flagged_softmin(s, mask, valid, 0.1)
    np.testing.assert_array_equal(count, mask.sum(axis=1))
    for i in range(4):
        q = np.where(mask[i], s[i], 1.0)[5:]  # unflagged labelled pixels count as s = 1
        w = np.exp((1.0 - q) / 0.1)
        np.testing.assert_allclose(got[i], (w * q).sum() / w.sum(), rtol=1e-13)
    assert got[2] == 1.0
    # the unflagged pixels' s does not matter, only how many there are
    other = np.where(mask, s, rng.uniform(0.0, 1.0, s.shape))
    np.testing.assert_array_equal(flagged_softmin(other, mask, valid, 0.1)[1], got)


def test_region_fraction_ranks_the_surer_of_two_equal_flagged_areas_first():
    """Two images with the same flagged area: the one whose flagged pixels the model
    finds less likely (lower s) scores lower; with no flag, softmin orders them."""
    flagged, valid = np.array([20, 20, 0, 0]), np.array([400, 400, 400, 400])
    s = np.full((4, 400), 0.95)
    s[0, :20], s[1, :20] = 0.02, 0.3
    s[3, :5] = 0.1
    mask = np.zeros((4, 400), dtype=bool)
    mask[:2, :20] = True
    temperature = 0.1
    z = (1.0 - s) / temperature
    w = np.exp(z - z.max(axis=1, keepdims=True))
    softmin = (w * s).sum(axis=1) / w.sum(axis=1)
    evidence = flagged_softmin(s, mask, valid, temperature)[1]
    scores = region_image_scores(flagged, valid, softmin, evidence)
    assert scores[0] < scores[1] < scores[3] < scores[2]
    # without the evidence term the two flagged images would tie on their share
    share = region_image_scores(flagged, valid, softmin, np.ones(4))
    assert abs(share[0] - share[1]) < 2e-3 * abs(scores[0] - scores[1])
