"""Small masks decoded by scan_folder's checks are fed from memory, unless their file changed."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from segaudit.io import _folder
from segaudit.io._scan_folder import scan_folder

K = 3


def _folder_of(root, shapes):
    masks, probs = root / "masks", root / "probs"
    masks.mkdir()
    probs.mkdir()
    rng = np.random.default_rng(0)
    for i, shape in enumerate(shapes):
        labels = rng.integers(0, K, shape, dtype=np.uint8)
        Image.fromarray(labels).save(masks / f"m{i}.png")
        p = rng.random((K, *shape), dtype=np.float32) + 0.1
        np.save(probs / f"m{i}.npy", p / p.sum(axis=0))
    return masks, probs


@pytest.fixture
def reads(monkeypatch):
    """Count the mask reads of FolderDataset.load."""
    calls = []
    real = _folder.read_label_mask

    def counted(path, **kwargs):
        calls.append(path.name)
        return real(path, **kwargs)

    monkeypatch.setattr(_folder, "read_label_mask", counted)
    return calls


def test_small_masks_are_not_decoded_twice(tmp_path, reads):
    masks, probs = _folder_of(tmp_path, [(8, 8), (12, 6), (200, 100)])
    ds = scan_folder(masks, probs)
    loaded = [ds.load(i) for i in range(len(ds))]
    for item in loaded:
        expected = np.asarray(Image.open(masks / f"{item.stem}.png"))
        np.testing.assert_array_equal(item.labels, expected)
    assert reads == ["m2.png"]  # only the large one (over MASK_CACHE_ITEM pixels) again
    ds.load(0)  # each kept mask is used once: a second load reads the file
    assert reads == ["m2.png", "m0.png"]


def test_a_mask_changed_after_the_checks_is_read_again(tmp_path, reads):
    masks, probs = _folder_of(tmp_path, [(8, 8)])
    ds = scan_folder(masks, probs)
    new = np.full((8, 8), 2, np.uint8)
    Image.fromarray(new).save(masks / "m0.png")
    st = os.stat(masks / "m0.png")  # same size and time would hide the change: move the time
    os.utime(masks / "m0.png", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    np.testing.assert_array_equal(ds.load(0).labels, new)
    assert reads == ["m0.png"]


def test_the_cache_is_bounded(monkeypatch, tmp_path, reads):
    monkeypatch.setattr(_folder, "MASK_CACHE_PIXELS", 100)  # room for one 8x8 mask
    masks, probs = _folder_of(tmp_path, [(8, 8), (8, 8)])
    ds = scan_folder(masks, probs)
    assert [ds.load(i).stem for i in range(2)] == ["m0", "m1"]
    assert reads == ["m1.png"]
