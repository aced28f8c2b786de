"""The scan pipeline (issue #11): read-ahead thread, small images in batches, one mask pass."""

from __future__ import annotations

import errno
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import segaudit.cli._scan_feed as scan_feed
from segaudit.cli import run_scan
from segaudit.cli._scan import _Worst
from segaudit.drivers._parts import Tally
from segaudit.drivers._stream import AuditImage, LabelAudit
from segaudit.io import DatasetError
from segaudit.io._folder import FolderDataset
from segaudit.io._prefetch import THREAD_PREFIX, ahead, prefetch
from test_cli import VOID, _dataset, _write_voc_like

OPTIONS = {"from_logits": True, "ignore_index": VOID, "verbose": False, "top": 3}


# ------------------------------------------------------------------------- prefetch


def test_prefetch_yields_in_order_and_reads_at_most_depth_ahead() -> None:
    loaded: list[int] = []
    threads: set[str] = set()

    def load(key: int) -> int:
        threads.add(threading.current_thread().name)
        loaded.append(key)
        return key * 10

    ahead = []
    out = []
    for i, value in enumerate(prefetch(load, range(20), depth=2)):
        time.sleep(0.002)  # a slow consumer: the reader runs ahead and then waits
        ahead.append(len(loaded) - i)
        out.append(value)
    assert out == [k * 10 for k in range(20)]
    assert threads and all(name.startswith(THREAD_PREFIX) for name in threads)
    assert max(ahead) <= 1 + 2  # the one in hand and at most `depth` more
    assert max(ahead) >= 2  # it did read ahead


def test_prefetch_loads_the_next_key_while_the_consumer_holds_one() -> None:
    # depth=1 (the scan's setting for large images): key i+1 loads while the
    # consumer works on key i, so reading and computing overlap
    started = [threading.Event() for _ in range(6)]

    def load(key: int) -> int:
        started[key].set()
        return key

    for value in prefetch(load, range(6), depth=1):
        assert started[value + 1].wait(timeout=10)
        if value == 4:
            break


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_prefetch_keeps_the_order_with_several_readers(workers: int) -> None:
    def load(key: int) -> int:
        time.sleep(0.001 * (key % 3))  # later keys may finish first
        return key

    assert list(prefetch(load, range(50), depth=8, workers=workers)) == list(range(50))


def test_prefetch_raises_the_error_at_its_place_and_stops() -> None:
    loaded: list[int] = []

    def load(key: int) -> int:
        loaded.append(key)
        if key == 3:
            raise OSError(errno.EIO, "bad sector", f"file_{key}.npz")
        return key

    got = []
    with pytest.raises(OSError, match="bad sector") as info:
        for value in prefetch(load, range(100), depth=2):
            got.append(value)
    assert got == [0, 1, 2]
    assert info.value.filename == "file_3.npz"
    assert loaded[:4] == [0, 1, 2, 3]
    assert len(loaded) <= 5  # at most `depth` - 1 keys read past the error, then none


def test_prefetch_stops_its_thread_when_the_consumer_stops() -> None:
    loaded: list[int] = []
    reader = prefetch(lambda k: loaded.append(k) or k, range(10_000), depth=2)
    for value in reader:
        if value == 5:
            break
    reader.close()
    assert not any(t.name.startswith(THREAD_PREFIX) for t in threading.enumerate())
    assert len(loaded) < 100


def test_prefetch_rejects_a_bad_depth() -> None:
    with pytest.raises(ValueError, match="must be >= 1; got depth=0, workers=1"):
        next(prefetch(lambda k: k, range(3), depth=0))


# -------------------------------------------------------------------- scan: reading


def _folder(root: Path, n: int, seed: int = 3, h: int = 12, w: int = 16) -> tuple[Path, Path]:
    labels, logits = _dataset(seed, n=n, h=h, w=w)
    return _write_voc_like(root, labels, logits)


def _outputs(out: Path) -> dict[str, object]:
    """Every visible CSV's bytes and every mask's pixels."""
    found: dict[str, object] = {}
    for path in sorted(out.glob("*.csv")):
        found[path.name] = path.read_bytes()
    for path in sorted((out / "masks").glob("*.png")):
        with Image.open(path) as img:
            found[f"masks/{path.name}"] = np.asarray(img).tobytes()
    return found


def test_a_read_error_in_the_reader_thread_names_the_file(tmp_path, monkeypatch) -> None:
    masks, probs = _folder(tmp_path / "in", n=5)
    real = FolderDataset.load
    threads: set[str] = set()

    def load(self: FolderDataset, i: int):
        threads.add(threading.current_thread().name)
        if self.items[i].stem == "img_02":
            raise OSError(errno.EIO, "Input/output error", str(self.items[i].probs_path))
        return real(self, i)

    monkeypatch.setattr(FolderDataset, "load", load)
    out = tmp_path / "out"
    with pytest.raises(DatasetError) as info:
        run_scan(masks, probs, out, **OPTIONS)
    (problem,) = info.value.problems
    assert problem.path == probs / "img_02.npz"
    assert problem.stem == "img_02"
    assert "cannot read the file (Input/output error)" in problem.message
    assert threads and all(n.startswith(THREAD_PREFIX) for n in threads)  # read there
    assert not (out / "images.csv").exists()

    result = run_scan(masks, probs, out, skip_bad=True, **OPTIONS)
    assert [p.path for p in result.skipped] == [probs / "img_02.npz"]
    assert sorted(result.images["image"]) == ["img_00", "img_01", "img_03", "img_04"]


def test_an_unexpected_error_of_the_reader_is_not_swallowed(tmp_path, monkeypatch) -> None:
    masks, probs = _folder(tmp_path / "in", n=3)
    real = FolderDataset.load

    def load(self: FolderDataset, i: int):
        if i == 1:
            raise RuntimeError("reader bug")
        return real(self, i)

    monkeypatch.setattr(FolderDataset, "load", load)
    with pytest.raises(RuntimeError, match="reader bug"):
        run_scan(masks, probs, tmp_path / "out", skip_bad=True, **OPTIONS)
    assert not (tmp_path / "out" / "images.csv").exists()


def _count_updates(monkeypatch) -> list[int]:
    sizes: list[int] = []
    real = LabelAudit.update

    def update(self, labels, pred_probs, **options):
        sizes.append(1 if np.ndim(labels) == 2 else len(labels))
        return real(self, labels, pred_probs, **options)

    monkeypatch.setattr(LabelAudit, "update", update)
    return sizes


def test_small_images_in_batches_give_the_same_outputs_as_one_by_one(tmp_path, monkeypatch) -> None:
    masks, probs = _folder(tmp_path / "in", n=9, h=8, w=8)
    sizes = _count_updates(monkeypatch)
    batched = run_scan(masks, probs, tmp_path / "batched", **OPTIONS)
    assert sizes == [9]  # one update for all nine 8x8 images
    sizes.clear()
    monkeypatch.setattr(scan_feed, "BATCH_PIXELS", 1)  # every image alone, as before
    alone = run_scan(masks, probs, tmp_path / "alone", **OPTIONS)
    assert sizes == [1] * 9
    assert batched.summary == alone.summary
    assert _outputs(tmp_path / "batched") == _outputs(tmp_path / "alone")
    assert _outputs(tmp_path / "alone")  # something was compared


def test_a_batch_the_engine_refuses_is_fed_again_image_by_image(tmp_path, monkeypatch) -> None:
    masks, probs = _folder(tmp_path / "in", n=5, h=8, w=8)
    bad = _dataset(3, n=5, h=8, w=8)[0][2]  # the third image's labels
    real = LabelAudit.update
    sizes: list[int] = []

    def update(self, labels, pred_probs, **options):
        batch = np.asarray(labels).reshape(-1, *bad.shape)
        sizes.append(len(batch))
        if any(np.array_equal(lab, bad) for lab in batch):  # refused before any change
            raise ValueError(
                f"LabelAudit.update (the batch starting at image {self.num_images}): labels "
                f"must be integers in 0..3; got 7 at image 2, row 1, column 2."
            )
        return real(self, labels, pred_probs, **options)

    monkeypatch.setattr(LabelAudit, "update", update)
    with pytest.raises(DatasetError) as info:
        run_scan(masks, probs, tmp_path / "out", **OPTIONS)
    (problem,) = info.value.problems
    assert problem.stem == "img_02"
    assert problem.path == probs / "img_02.npz"
    assert sizes == [5, 1, 1, 1]  # the batch, then one by one up to the bad image
    sizes.clear()
    result = run_scan(masks, probs, tmp_path / "out", skip_bad=True, **OPTIONS)
    assert [p.stem for p in result.skipped] == ["img_02"]
    assert sorted(result.images["image"]) == ["img_00", "img_01", "img_03", "img_04"]


def test_large_images_are_fed_one_at_a_time(tmp_path, monkeypatch) -> None:
    masks, probs = _folder(tmp_path / "in", n=3, h=12, w=16)
    monkeypatch.setattr(scan_feed, "BATCH_PIXELS", 12 * 16)  # these images are "large"
    sizes = _count_updates(monkeypatch)
    run_scan(masks, probs, tmp_path / "out", **OPTIONS)
    assert sizes == [1, 1, 1]


# --------------------------------------------------------------- scan: the one pass


def _image(index: int) -> AuditImage:
    labels = np.full((2, 2), index % 3)
    return AuditImage(index, labels, labels.copy(), np.zeros((2, 2)), np.zeros((2, 2), bool))


@pytest.mark.parametrize("top", [0, 1, 3, 7, 40])
def test_the_worst_images_are_those_of_a_stable_argsort(top: int) -> None:
    rng = np.random.default_rng(top)
    scores = rng.choice([0.1, 0.5, 0.5, 0.9, np.nan, 0.2], size=30)
    worst = _Worst(top)
    for i, score in enumerate(scores):
        worst.offer(_image(i), float(score), 0)
    kept = sorted(k.index for k in worst.images())
    assert kept == sorted(np.argsort(scores, kind="stable")[:top].tolist())


# ------------------------------------------------------------- scan: the output pass


def test_ahead_yields_in_order_and_raises_the_error_at_its_place() -> None:
    def items():
        yield from range(5)
        raise OSError(errno.EIO, "bad sector")

    got = []
    with pytest.raises(OSError, match="bad sector"):
        for value in ahead(items(), depth=2):
            got.append(value)
    assert got == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="'depth' must be >= 1"):
        next(ahead(iter(range(3)), depth=0))


def test_ahead_stops_its_thread_and_closes_the_iteration_when_the_consumer_stops() -> None:
    closed = threading.Event()

    def items():
        try:
            yield from range(10_000)
        finally:
            closed.set()

    reader = ahead(items(), depth=2)
    for value in reader:
        if value == 5:
            break
    reader.close()
    assert closed.is_set()
    assert not any(t.name.startswith(THREAD_PREFIX) for t in threading.enumerate())


@pytest.mark.parametrize("ignore_index", [None, 255, 2])
def test_tally_add_image_counts_as_add_and_count_pairs(ignore_index) -> None:
    # images as iter_images yields them: argmax -1 exactly on void, no flag on void
    from segaudit.report import count_pairs

    rng = np.random.default_rng(7)
    k = 5
    one, both = Tally(k, ignore_index), Tally(k, ignore_index)
    model = np.zeros((k, k), dtype=np.int64)
    model_both = np.zeros((k, k), dtype=np.int64)
    for _ in range(4):
        labels = rng.integers(0, k, size=(9, 11)).astype(np.int16)
        argmax = rng.integers(0, k, size=(9, 11)).astype(np.int8)
        mask = rng.random((9, 11)) < 0.3
        if ignore_index is not None:
            void = (rng.random((9, 11)) < 0.2) | (labels == ignore_index)
            labels[void], argmax[void], mask[void] = ignore_index, -1, False
        model += one.add_image(labels, argmax, mask)
        both.add(labels, argmax, mask)
        model_both += count_pairs(labels, argmax, k, ignore_index=ignore_index)
    assert np.array_equal(model, model_both) and model.dtype == np.int64
    assert np.array_equal(one.confusions, both.confusions)
    assert np.array_equal(one.pixels, both.pixels)
    assert np.array_equal(one.flagged, both.flagged)


def test_iter_scored_gives_the_softmin_scores_of_image_scores() -> None:
    rng = np.random.default_rng(3)
    audit = LabelAudit(4, ignore_index=9, from_logits=True)
    for n in (1, 3, 2):
        labels = rng.integers(0, 4, size=(n, 6, 7))
        labels[:, 0, 0] = 9
        audit.update(labels, rng.normal(size=(n, 4, 6, 7)))
    scored = list(audit._iter_scored(softmin=True))
    images = list(audit.iter_images())
    assert [s for _, s in scored] == audit.image_scores(method="softmin").tolist()
    assert [img.index for img, _ in scored] == [img.index for img in images]
    for (img, _), same in zip(scored, images, strict=True):
        assert np.array_equal(img.issues, same.issues)
    assert all(np.isnan(s) for _, s in audit._iter_scored(softmin=False))
