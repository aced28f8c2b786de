"""The compiled `issue_regions` kernel against its scipy twin, and both against scipy's labels."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import ndimage

from segaudit.kernels import _image_numba, _image_numpy
from segaudit.regions._image import image_regions

FIELDS = ("area", "given", "predicted", "total", "boxes", "boundary")


def _both(*args):
    compiled = _image_numba.issue_regions(*args)
    twin = _image_numpy.issue_regions(*args)
    for name, a, b in zip(FIELDS, compiled, twin, strict=True):
        assert a.dtype == b.dtype, name
        np.testing.assert_array_equal(a, b, err_msg=name)
    return compiled


def _noisy(rng, h, w, k, dtype):
    """Blocky labels, a prediction with flips, flags where they differ and a few more."""
    cell = int(rng.integers(1, 6))
    labels = np.kron(rng.integers(0, k, (h // cell + 1, w // cell + 1)), np.ones((cell, cell)))
    labels = labels[:h, :w].astype(dtype)
    predicted = labels.astype(np.int64)
    flip = rng.random((h, w)) < rng.uniform(0.02, 0.6)
    predicted[flip] = rng.integers(0, k, int(flip.sum()))
    issues = (predicted != labels) | (rng.random((h, w)) < 0.03)
    return issues, labels, predicted


@pytest.mark.parametrize("seed", range(40))
def test_compiled_equals_twin_random(seed):
    rng = np.random.default_rng(seed)
    h, w = (int(x) for x in rng.integers(1, 48, 2))
    dtype = (np.uint8, np.int16, np.int32, np.int64)[seed % 4]
    issues, labels, predicted = _noisy(rng, h, w, int(rng.integers(2, 7)), dtype)
    use_ignore = seed % 3 != 0
    if use_ignore:
        labels[rng.random((h, w)) < 0.08] = 5
    scores = rng.random((h, w)).astype((np.float32, np.float64)[seed % 2])
    if seed % 5 == 0:
        scores = np.zeros((0, 0))
    _both(
        issues,
        labels,
        predicted,
        scores,
        np.int64(5),
        use_ignore,
        1 + seed % 2,
        int(rng.integers(1, 5)),
        int(rng.integers(1, 4)),
    )


@pytest.mark.parametrize("seed", range(30))
def test_compiled_equals_twin_shifted_borders(seed):
    """Outlines moved by a few pixels: thin strips along class borders (the boundary test)."""
    rng = np.random.default_rng(100 + seed)
    h, w = (int(x) for x in rng.integers(8, 64, 2))
    labels = np.zeros((h, w), np.int64)
    cut = int(rng.integers(3, w - 3))
    labels[:, cut:] = 1
    labels[int(rng.integers(0, h)) :, : int(rng.integers(1, w))] = 2
    shift = int(rng.integers(1, 4))
    predicted = np.roll(labels, -shift if seed % 2 else shift, axis=1 if seed % 3 else 0)
    issues = (predicted != labels) | (rng.random((h, w)) < 0.02)
    if seed % 4 == 0:
        labels[rng.random((h, w)) < 0.05] = 255
    _both(
        issues,
        labels,
        predicted,
        rng.random((h, w)),
        np.int64(255),
        seed % 4 == 0,
        2 - seed % 2,
        1,
        int(rng.integers(shift, 4)),  # at least the shift: the strips are thin
    )


@pytest.mark.parametrize("shift", [1, 2])
def test_a_moved_border_is_one_strip_in_both(shift):
    labels = np.zeros((30, 40), np.int64)
    labels[:, 20:] = 1
    predicted = np.zeros_like(labels)
    predicted[:, 20 - shift :] = 1
    stats = _both(
        predicted != labels, labels, predicted, np.zeros((0, 0)), np.int64(0), False, 2, 1, 2
    )
    assert stats[0].tolist() == [30 * shift] and stats[5].tolist() == [True]


@settings(max_examples=150, deadline=None)
@given(
    issues=hnp.arrays(bool, hnp.array_shapes(min_dims=2, max_dims=2, max_side=14)),
    seed=st.integers(0, 2**31),
    connectivity=st.sampled_from([1, 2]),
    width=st.integers(1, 3),
    min_area=st.integers(1, 3),
)
def test_compiled_equals_twin_hypothesis(issues, seed, connectivity, width, min_area):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, issues.shape).astype(np.uint8)
    predicted = rng.integers(0, 3, issues.shape)
    args = (issues, labels, predicted, rng.random(issues.shape))
    _both(*args, np.int64(2), bool(seed % 2), connectivity, min_area, width)


@pytest.mark.parametrize("connectivity", [1, 2])
def test_regions_are_numbered_as_scipy_labels_them(connectivity):
    rng = np.random.default_rng(connectivity)
    issues = rng.random((60, 70)) < 0.45
    labels = np.zeros(issues.shape, np.int64)
    structure = ndimage.generate_binary_structure(2, connectivity)
    lab, n = ndimage.label(issues, structure=structure)
    area, *_ = _image_numba.issue_regions(
        issues, labels, labels, np.zeros((0, 0)), np.int64(0), False, connectivity, 1, 2
    )
    np.testing.assert_array_equal(area, np.bincount(lab.ravel(), minlength=n + 1)[1:])


def test_image_regions_same_records_from_either_kernel(monkeypatch):
    from segaudit.kernels import _numba, _numpy
    from segaudit.regions import _image

    rng = np.random.default_rng(7)
    issues, labels, predicted = _noisy(rng, 40, 50, 4, np.uint8)
    labels[rng.random(labels.shape) < 0.05] = 255
    scores = rng.random(labels.shape).astype(np.float32)
    tables = []
    for module in (_numba, _numpy):
        monkeypatch.setattr(_image, "get_kernels", lambda module=module: module)
        tables.append(image_regions(issues, labels, predicted, scores, ignore_index=255))
    assert tables[0].size > 10
    assert tables[0].tobytes() == tables[1].tobytes()
