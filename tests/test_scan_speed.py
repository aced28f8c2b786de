"""The scan's fifth speed pass (issue #11): the same results from cheaper steps."""

from __future__ import annotations

import numpy as np
import pytest

from segaudit.regions import ISSUE_TYPES
from segaudit.regions._image import image_regions
from test_regions import issue_types_oracle
from test_report_pictures import test_mask_and_overlay_pixels_match_the_rgb_way as _check_pictures

# --------------------------------------------------------------- report pictures

BYTE_CASES = [
    # (dtype, low id, high id (exclusive), classes, ignore_index): ids in 0..255
    (np.int16, 5, 40, 40, None),  # byte codes less the smallest id; flags shifted in bytes
    (np.int16, 5, 40, 40, 255),  # 251 colours: flags shifted past a byte
    (np.uint8, 3, 200, 200, None),
    (np.int64, 0, 128, 128, 0),
]


@pytest.mark.parametrize("case", BYTE_CASES)
@pytest.mark.parametrize("seed", range(3))
def test_pictures_from_byte_codes_match_the_rgb_way(case, seed):
    _check_pictures(case, seed)


# ------------------------------------------------------------------ image regions


def _blocky(rng, shape, block):
    h, w = shape
    cells = rng.integers(0, 4, (h // block + 1, w // block + 1))
    return cells.repeat(block, 0).repeat(block, 1)[:h, :w]


@pytest.mark.parametrize("seed", range(8))
def test_issue_types_with_wide_regions_near_the_edges_match_the_oracle(seed):
    # regions of 25+ pixels (the thickness test runs on a box around them), touching
    # the image's edges or not, beside 1-pixel regions spread over the image
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(12, 26)), int(rng.integers(12, 26)))
    labels = _blocky(rng, shape, int(rng.integers(3, 8)))
    void = 255 if seed % 2 else None
    if void is not None:
        labels = np.where(rng.random(shape) < 0.05, void, labels)
    predicted = np.where(rng.random(shape) < 0.03, rng.integers(0, 4, shape), labels)
    predicted = np.where(_blocky(rng, shape, 6) == 0, np.roll(labels, 2, axis=seed % 2), predicted)
    # one wrong 7x7 square, at the image's edge for half of the seeds
    top = 0 if seed < 4 else int(rng.integers(0, shape[0] - 7))
    left = int(rng.integers(0, shape[1] - 7))
    square = (slice(top, top + 7), slice(left, left + 7))
    predicted[square] = (labels[square] + 1) % 4
    if void is not None:
        predicted = np.where(labels == void, 1, predicted)
    width = int(rng.integers(1, 3))
    connectivity = 1 + seed % 2
    out = _assert_types_match_the_oracle(labels, predicted, width, connectivity, void)
    assert (out["area"] >= (2 * width + 1) ** 2).any()


def _assert_types_match_the_oracle(labels, predicted, width, connectivity, void):
    """Check `image_regions`' issue types (flags: predicted != labels) against the oracle."""
    issues = predicted != labels
    out = image_regions(
        issues,
        labels,
        predicted,
        boundary_width=width,
        connectivity=connectivity,
        ignore_index=void,
    )
    expected = issue_types_oracle(issues, labels, predicted, width, connectivity, 0, void=void)
    got = {int(r): ISSUE_TYPES[t] for r, t in zip(out["region"], out["issue_type"], strict=True)}
    assert got == expected
    return out


@pytest.mark.parametrize("seed", range(6))
def test_issue_types_of_random_maps_match_the_oracle(seed):
    # many small maps: regions touching each side of the windows' boxes
    rng = np.random.default_rng(100 + seed)
    for case in range(12):
        shape = (int(rng.integers(1, 16)), int(rng.integers(1, 16)))
        labels = _blocky(rng, shape, int(rng.integers(1, 6)))
        void = (None, 255, 0)[case % 3]
        if void is not None:
            labels = np.where(rng.random(shape) < 0.1, void, labels)
        predicted = np.where(rng.random(shape) < 0.3, rng.integers(0, 4, shape), labels)
        if case % 2:
            predicted = np.where(rng.random(shape) < 0.5, np.roll(labels, 1, axis=1), predicted)
        width, connectivity = int(rng.integers(1, 4)), int(rng.integers(1, 3))
        _assert_types_match_the_oracle(labels, predicted, width, connectivity, void)
