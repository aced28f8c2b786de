"""Sixth pass of the scan's speed (issue #11): the label rule without an int64 copy."""

from __future__ import annotations

import numpy as np
import pytest

from segaudit._validation import bad_labels
from segaudit.report._image import ReportImage
from segaudit.report._validate import check_images

DTYPES = [np.uint8, np.int8, np.uint16, np.int16, np.int32, np.uint32, np.int64, np.uint64]


def _rule(values: np.ndarray, num_classes: int, ignore_index: int | None) -> np.ndarray:
    """The label rule written out on Python integers (exact for every dtype)."""
    flat = [int(v) for v in values.ravel()]
    bad = [(v < 0 or v >= num_classes) and v != ignore_index for v in flat]
    return np.array(bad, dtype=bool).reshape(values.shape)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ignore_index", [None, 255, -1, 0, 3, 300])
@pytest.mark.parametrize("num_classes", [1, 4, 255, 256, 1000])
def test_integer_labels_follow_the_rule(
    dtype: type, ignore_index: int | None, num_classes: int
) -> None:
    info = np.iinfo(dtype)
    rng = np.random.default_rng(num_classes)
    edges = [0, 1, num_classes - 1, num_classes, num_classes + 1, 255, 256, -1, 300, 3]
    edges += [info.min, info.max]
    edges = [e for e in edges if info.min <= e <= info.max]
    for _ in range(40):
        size = int(rng.integers(0, 6))
        picks = rng.integers(0, len(edges), size).tolist()
        values: np.ndarray = np.array([edges[i] for i in picks], dtype=dtype).reshape(size, 1)
        got = bad_labels(values, num_classes, ignore_index)
        np.testing.assert_array_equal(got, _rule(values, num_classes, ignore_index))
        assert got.dtype == np.bool_ and got.shape == values.shape


def test_other_dtypes_keep_the_rule() -> None:
    for values, expected in [
        (np.array([0.0, 1.5]), [False, True]),
        (np.array([0.0, 2.0, -1.0]), [False, False, True]),
        (np.array([True, False]), [False, False]),
        (np.array([255.0, 1.0]), [False, False]),
    ]:
        np.testing.assert_array_equal(bad_labels(values, 3, 255), expected)


def test_a_bad_label_is_still_named() -> None:
    labels = np.zeros((3, 4), dtype=np.uint8)
    labels[1, 2] = 7
    item = ReportImage("a", 0.5, 0, labels, np.zeros((3, 4), np.int64), np.zeros((3, 4), bool))
    with pytest.raises(ValueError, match=r"7 at \(row, col\) \(1, 2\) of image 'a'.labels"):
        check_images([item], 5, 255)
    assert list(check_images([item], 8, 255)) == ["a"]
