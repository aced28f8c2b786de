"""``method="region_fraction"``: the formula written out, bit for bit, on every input route."""

from __future__ import annotations

import numpy as np
import pytest

import segaudit
from segaudit.engine._scores import SOFTMIN_WEIGHT, flagged_per_image
from segaudit.evaluate import make_scenes

pytest.importorskip("scipy.ndimage")


def _expected(labels, probs, ignore_index, **options):
    """The score from its parts: confident_regions' flags, labelled pixels, softmin."""
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
    image = share * (1.0 - SOFTMIN_WEIGHT) + SOFTMIN_WEIGHT * softmin
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
    np.testing.assert_array_equal(image, want_image)
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
    np.testing.assert_array_equal(got[0], _expected(labels, probs, None, verbose=False)[0])


@pytest.mark.parametrize("shape", [(3, 4, 5), (3, 64, 64), (2, 70, 70), (0, 64, 64), (4,)])
def test_flagged_per_image_counts_true_pixels(shape):
    rng = np.random.default_rng(0)
    mask = rng.random(shape) < 0.3
    got = flagged_per_image(mask)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, mask.reshape(shape[0], int(np.prod(shape[1:]))).sum(axis=1))
    view = mask[:, ::-1] if mask.ndim > 1 else mask  # not contiguous
    np.testing.assert_array_equal(flagged_per_image(view), got)
