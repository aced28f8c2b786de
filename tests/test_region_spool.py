from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from segaudit.regions._find import find_issue_regions
from segaudit.regions._image import image_regions
from segaudit.regions._records import ISSUE_TYPES, REGION_DTYPE
from segaudit.regions._spool import RegionSpool

NAMES = ["bg", "road", "car", "person"]


def _images(seed: int, n: int = 5):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, (n, 4, 4)).repeat(4, 1).repeat(4, 2)
    predicted = np.where(rng.random(labels.shape) < 0.3, rng.integers(0, 4, labels.shape), labels)
    scores = rng.random(labels.shape).round(1)  # coarse scores: many severity ties
    return predicted != labels, labels, predicted, scores


@pytest.mark.parametrize("chunk", [1, 3, 7, 1 << 16])
def test_ranked_chunks_equal_find_issue_regions(tmp_path, chunk):
    issues, labels, predicted, scores = _images(0)
    spool = RegionSpool(tmp_path / "r.bin")
    for i in range(len(labels)):
        spool.append(image_regions(issues[i], labels[i], predicted[i], scores[i], image=i))
    got = pd.concat(list(spool.ranked(NAMES, chunk=chunk)), ignore_index=True)
    want = find_issue_regions(
        issues, labels, predicted=predicted, pixel_scores=scores, class_names=NAMES
    )
    assert len(want) > 20 and want["severity"].duplicated().any()
    pd.testing.assert_frame_equal(got, want)
    pd.testing.assert_frame_equal(spool.head(4, NAMES), want.head(4))
    counts = want["issue_type"].value_counts().to_dict()
    assert spool.type_counts() == counts
    assert set(counts) <= set(ISSUE_TYPES)
    spool.close()


def test_empty_spool_gives_typed_empty_frame(tmp_path):
    spool = RegionSpool(tmp_path / "r.bin")
    frames = list(spool.ranked(NAMES))
    assert len(frames) == 1 and len(frames[0]) == 0
    assert "issue_type" in frames[0].columns and spool.type_counts() == {}
    assert len(spool.head(5, NAMES)) == 0


def test_append_after_reading_is_refused(tmp_path):
    spool = RegionSpool(tmp_path / "r.bin")
    list(spool.ranked(None))
    with pytest.raises(RuntimeError, match="after reading"):
        spool.append(np.empty(0, dtype=REGION_DTYPE))


class _FullAfterHalf:
    """The spool's file, on a disk that fills up half-way through the next write."""

    def __init__(self, raw):
        self.raw = raw
        self.armed = True

    def write(self, data):
        if not self.armed:
            return self.raw.write(data)
        if len(data) > 1:
            return self.raw.write(data[: len(data) // 2])
        self.armed = False
        raise OSError(28, "No space left on device")

    def __getattr__(self, name):
        return getattr(self.raw, name)


def test_a_full_disk_mid_append_leaves_the_spool_whole(tmp_path):
    from segaudit.io._space import DiskFullError

    issues, labels, predicted, scores = _images(1)
    tables = [
        image_regions(issues[i], labels[i], predicted[i], scores[i], image=i)
        for i in range(len(labels))
    ]
    assert all(t.size > 1 for t in tables)
    spool = RegionSpool(tmp_path / "r.bin")
    spool.append(tables[0])
    counts = spool.type_counts()
    spool._file = _FullAfterHalf(spool._file)
    with pytest.raises(DiskFullError, match=f"not enough free space in {tmp_path} for the region"):
        spool.append(tables[1])
    assert spool.count == tables[0].size
    assert spool.type_counts() == counts
    assert (tmp_path / "r.bin").stat().st_size == tables[0].nbytes  # the half table is gone
    for table in tables[2:]:  # the scan may skip that image and go on
        spool.append(table)
    kept = [0, *range(2, len(labels))]
    got = pd.concat(list(spool.ranked(NAMES)), ignore_index=True)
    want = find_issue_regions(
        issues[kept],
        labels[kept],
        predicted=predicted[kept],
        pixel_scores=scores[kept],
        class_names=NAMES,
    )
    want["image"] = np.asarray(kept)[want["image"]]
    pd.testing.assert_frame_equal(got, want)
    spool.close()
