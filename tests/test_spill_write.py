"""A spilled summary is written whole, then mapped: same answers, tidy files, clean failures.

``SummaryStore.spill`` appends each array that does not fit in ``memory_limit``
to the spill folder's one file with plain writes (``io._space.ArrayFile``) and
keeps it memory-mapped. These tests check that a spilled audit answers as an
in-memory one, that the spill file holds exactly the kept arrays, and that a
write failing for lack of space is a DiskFullError leaving nothing behind.
"""

from __future__ import annotations

import errno
import itertools
import os
from pathlib import Path

import numpy as np
import pytest

import segaudit
import segaudit.io._space
from _audits import same_results
from conftest import make_dataset
from segaudit.drivers._store import SPILL_FILE
from segaudit.io._space import ALIGN, ArrayFile, DiskFullError

VOID = 255
K = 4
H, W = 16, 16

# random data: the model disagrees with the labels too often for the set-up check
pytestmark = pytest.mark.filterwarnings("ignore::segaudit.SetupWarning")

# per image: scores 8 + disagreement 1 + argmax 1 + labels 2 bytes a pixel, plus records;
# a 2-image batch's scores (4 KiB) never fit in this, its smaller arrays sometimes do
SMALL_LIMIT = 5000

OPTIONS = {
    "plain": {"ignore_index": VOID},
    "downsample=2": {"ignore_index": VOID, "downsample": 2},
    "confident_regions": {"ignore_index": VOID, "filter_by": "confident_regions"},
}


def _data(seed: int, n: int = 8) -> tuple[np.ndarray, np.ndarray]:
    labels, probs = make_dataset(seed, n=n, k=K, h=H, w=W)
    rng = np.random.default_rng(seed)
    labels[rng.random(labels.shape) < 0.1] = VOID
    return labels, probs


def _feed(audit: segaudit.LabelAudit, labels: np.ndarray, probs: np.ndarray) -> None:
    for start in range(0, len(labels), 2):
        audit.update(labels[start : start + 2], probs[start : start + 2])


def _kept_arrays(audit: segaudit.LabelAudit) -> list[np.ndarray]:
    """Every array the audit keeps of its batches: parts, entries and records."""
    arrays: list[np.ndarray] = []
    for part, entry in zip(audit._parts, audit._finder.entries, strict=True):
        arrays += [part.scores, part.argmax, part.labels, entry.disagree]
        if entry.scores is not part.scores:  # downsample > 1: the ranking grid's scores
            arrays.append(entry.scores)
        if entry.records is not None:
            arrays += list(entry.records)
    return arrays


def _spill_folder(parent: Path) -> Path:
    (folder,) = parent.iterdir()
    assert folder.name.startswith("segaudit-")
    return folder


# ------------------------------------------------------------------ same answers


@pytest.mark.parametrize("memory_limit", [0, SMALL_LIMIT], ids=["limit=0", "small-limit"])
@pytest.mark.parametrize("case", list(OPTIONS))
def test_spilled_audit_equals_in_memory_audit(tmp_path, memory_limit: int, case: str) -> None:
    labels, probs = _data(1)
    options = OPTIONS[case]
    spilled = segaudit.LabelAudit(K, memory_limit=memory_limit, spill_dir=tmp_path, **options)
    in_memory = segaudit.LabelAudit(K, memory_limit=None, **options)
    _feed(spilled, labels, probs)
    _feed(in_memory, labels, probs)
    store = spilled._store
    assert store.spilled > 0
    assert (store.in_memory > 0) == (memory_limit > 0)  # the small limit keeps some in RAM
    assert in_memory._store.spilled == 0
    # the same bytes are counted, wherever they went
    assert store.in_memory + store.spilled == in_memory._store.in_memory
    same_results(spilled, in_memory)
    if case == "plain":
        expected = segaudit.find_label_issues(labels, probs, ignore_index=VOID, verbose=False)
        assert expected.any()
        np.testing.assert_array_equal(spilled.find_label_issues(), expected)
    spilled.close()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("memory_limit", [None, 0, SMALL_LIMIT])
def test_the_given_labels_are_copied(tmp_path, memory_limit: int | None) -> None:
    """Changing the caller's labels after update changes nothing of the audit."""
    labels, probs = _data(2)
    reference = segaudit.LabelAudit(K, ignore_index=VOID)
    _feed(reference, labels.copy(), probs)
    audit = segaudit.LabelAudit(K, ignore_index=VOID, memory_limit=memory_limit, spill_dir=tmp_path)
    _feed(audit, labels, probs)
    labels[...] = 0
    for part in audit._parts:
        assert not np.shares_memory(part.labels, labels)
    same_results(audit, reference)
    audit.close()


# ------------------------------------------------------------------ the spill folder


@pytest.mark.parametrize("case", list(OPTIONS))
def test_spill_folder_holds_exactly_the_kept_arrays(tmp_path, case: str) -> None:
    labels, probs = _data(3)
    audit = segaudit.LabelAudit(K, memory_limit=0, spill_dir=tmp_path, **OPTIONS[case])
    _feed(audit, labels, probs)
    folder = _spill_folder(tmp_path)
    store = audit._store
    assert [p.name for p in folder.iterdir()] == [SPILL_FILE]
    path = folder / SPILL_FILE
    kept = [a for a in _kept_arrays(audit) if a.size]  # an empty array is not mapped
    assert len(kept) == store._count
    assert all(isinstance(a, np.memmap) for a in kept)  # nothing of the batch stayed in RAM
    assert all(Path(a.filename) == path for a in kept)
    assert sum(a.nbytes for a in kept) == store.spilled
    spans = sorted((int(a.offset), int(a.offset) + a.nbytes) for a in kept)
    assert all(start % ALIGN == 0 for start, _ in spans)
    assert all(end <= nxt for (_, end), (nxt, _) in itertools.pairwise(spans))  # no overlap
    assert path.stat().st_size == spans[-1][1]
    for a in kept:  # the file's bytes, read without the maps
        on_disk = np.fromfile(path, dtype=a.dtype, count=a.size, offset=int(a.offset))
        np.testing.assert_array_equal(on_disk.reshape(a.shape), a)
    for i, part in enumerate(audit._parts):
        np.testing.assert_array_equal(part.labels, labels[2 * i : 2 * i + 2].reshape(2, -1))
    audit.close()
    assert not folder.exists()
    assert list(tmp_path.iterdir()) == []


def test_no_spill_folder_while_everything_fits(tmp_path) -> None:
    labels, probs = _data(4)
    audit = segaudit.LabelAudit(K, ignore_index=VOID, memory_limit=1 << 30, spill_dir=tmp_path)
    _feed(audit, labels, probs)
    assert audit._store.spilled == 0
    assert not any(isinstance(a, np.memmap) for a in _kept_arrays(audit))
    assert list(tmp_path.iterdir()) == []
    audit.close()


# ------------------------------------------------------------------ a write that fails


def _failing_writes(monkeypatch, fail_at: int, room: int) -> list[int]:
    """Make the `fail_at`-th array appended by ArrayFile fail after `room` bytes.

    The write fails as on a full disk (ENOSPC) with the first bytes already in
    the file, so the file holds part of the array until ArrayFile cuts it.
    Returns the offsets of the appends so far.
    """
    appends: list[int] = []
    real = os.pwrite
    append = ArrayFile.append

    def counting(self, array):
        appends.append(-(-self.size // ALIGN) * ALIGN)
        return append(self, array)

    def fake_pwrite(fd: int, data, offset: int) -> int:
        if len(appends) != fail_at:
            return real(fd, data, offset)
        left = room - (offset - appends[-1])
        if left <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd, memoryview(data)[:left], offset)  # a short write, then the error

    monkeypatch.setattr(ArrayFile, "append", counting)
    monkeypatch.setattr(os, "pwrite", fake_pwrite)
    return appends


@pytest.mark.parametrize("fail_at", [1, 2, 3, 4, 5, 6])
@pytest.mark.parametrize("room", [0, 100, 130], ids=["nothing", "some", "more"])
def test_write_failure_is_disk_full_and_leaves_the_audit_unchanged(
    tmp_path, monkeypatch, fail_at: int, room: int
) -> None:
    labels, probs = _data(5, n=6)
    audit = segaudit.LabelAudit(K, ignore_index=VOID, memory_limit=0, spill_dir=tmp_path)
    audit.update(labels[:2], probs[:2])
    folder = _spill_folder(tmp_path)
    path = folder / SPILL_FILE
    size_before = path.stat().st_size
    content_before = path.read_bytes()
    mark_before = audit._store.mark()
    appends = _failing_writes(monkeypatch, fail_at, room)
    with pytest.raises(DiskFullError) as info:
        audit.update(labels[2:4], probs[2:4])
    monkeypatch.undo()
    assert len(appends) == fail_at
    err = info.value
    assert err.errno == errno.ENOSPC
    assert str(err).startswith(f"not enough free space in {folder} for the spilled summary")
    assert err.filename == str(path)
    assert [p.name for p in folder.iterdir()] == [SPILL_FILE]
    assert path.stat().st_size == size_before  # the batch's arrays are cut off
    assert path.read_bytes() == content_before
    assert audit._store.mark() == mark_before
    assert audit.num_images == 2
    audit.update(labels[4:], probs[4:])  # the loop goes on
    fresh = segaudit.LabelAudit(K, ignore_index=VOID)
    fresh.update(labels[:2], probs[:2])
    fresh.update(labels[4:], probs[4:])
    same_results(audit, fresh)
    audit.close()
    assert list(tmp_path.iterdir()) == []


def test_first_spill_failing_removes_the_spill_folder(tmp_path, monkeypatch) -> None:
    labels, probs = _data(6, n=4)
    audit = segaudit.LabelAudit(K, ignore_index=VOID, memory_limit=0, spill_dir=tmp_path)
    _failing_writes(monkeypatch, 1, 50)
    with pytest.raises(DiskFullError, match="for the spilled summary"):
        audit.update(labels[:2], probs[:2])
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []
    audit.update(labels[2:], probs[2:])
    fresh = segaudit.LabelAudit(K, ignore_index=VOID)
    fresh.update(labels[2:], probs[2:])
    same_results(audit, fresh)
    audit.close()


# ------------------------------------------------------------------ ArrayFile itself


ARRAYS = [
    np.arange(12, dtype=np.float64).reshape(3, 4),
    np.array([[True, False, True]]),
    np.arange(-5, 5, dtype=np.int16),
    np.arange(20, dtype=np.int8).reshape(4, 5)[:, ::2],  # not contiguous
    np.arange(ALIGN + 3, dtype=np.uint8),  # past one alignment step
]


def test_array_file_round_trips(tmp_path) -> None:
    path = tmp_path / "a.bin"
    file = ArrayFile(path, what="test arrays")
    outs = [file.append(a) for a in ARRAYS]
    for out, array in zip(outs, ARRAYS, strict=True):
        assert isinstance(out, np.memmap) and out.flags.writeable
        assert out.dtype == array.dtype and out.shape == array.shape
        assert int(out.offset) % ALIGN == 0
        np.testing.assert_array_equal(out, array)
        on_disk = np.fromfile(path, dtype=array.dtype, count=array.size, offset=int(out.offset))
        np.testing.assert_array_equal(on_disk.reshape(array.shape), array)
    assert file.size == path.stat().st_size == int(outs[-1].offset) + ARRAYS[-1].nbytes
    empty = file.append(np.empty((0, 7), dtype=np.float32))
    assert empty.shape == (0, 7) and not isinstance(empty, np.memmap)
    assert file.size == path.stat().st_size  # nothing written for it
    file.truncate(int(outs[2].offset))  # the last three arrays are gone
    assert path.stat().st_size == file.size == int(outs[2].offset)
    again = file.append(ARRAYS[0])
    assert int(again.offset) == int(outs[2].offset)
    np.testing.assert_array_equal(again, ARRAYS[0])
    file.close()
    np.testing.assert_array_equal(outs[0], ARRAYS[0])  # maps outlive the file handle


def test_array_file_checks_the_free_space_first(tmp_path, monkeypatch) -> None:
    """Too little free space: a DiskFullError before anything is written."""
    path = tmp_path / "a.bin"
    file = ArrayFile(path, what="test arrays")
    file.append(np.zeros(10, np.uint8))
    monkeypatch.setattr(segaudit.io._space, "free_bytes", lambda folder: 1000)
    with pytest.raises(DiskFullError) as info:
        file.append(np.zeros(1000, np.float64))
    assert info.value.need == ALIGN - 10 + 8000  # the padding to the next start, then the data
    assert info.value.free == 1000
    assert str(info.value).startswith(f"not enough free space in {tmp_path} for test arrays")
    assert path.stat().st_size == file.size == 10
    monkeypatch.setattr(segaudit.io._space, "free_bytes", lambda folder: ALIGN + 800)
    out = file.append(np.zeros(100, np.float64))  # fits
    assert path.stat().st_size == ALIGN + 800 and out.shape == (100,)
    file.close()


def test_array_file_never_replaces_a_file(tmp_path) -> None:
    path = tmp_path / "a.bin"
    path.write_bytes(b"someone else's")
    with pytest.raises(FileExistsError):
        ArrayFile(path, what="test arrays")
    assert path.read_bytes() == b"someone else's"


def test_array_file_cuts_a_failed_append_on_an_interrupt(tmp_path, monkeypatch) -> None:
    path = tmp_path / "a.bin"
    file = ArrayFile(path, what="test arrays")
    first = file.append(np.arange(5.0))
    real = os.pwrite

    def interrupted(fd, data, offset):
        real(fd, memoryview(data)[:7], offset)
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "pwrite", interrupted)
    with pytest.raises(KeyboardInterrupt):
        file.append(np.zeros(100))
    monkeypatch.undo()
    assert path.stat().st_size == file.size == 40
    np.testing.assert_array_equal(first, np.arange(5.0))
    file.close()


def test_array_file_keeps_other_errors(tmp_path, monkeypatch) -> None:
    """An error that is not about space is raised as it is, and the file cut back."""

    def bad(fd, data, offset):
        raise OSError(errno.EBADF, os.strerror(errno.EBADF))

    path = tmp_path / "a.bin"
    file = ArrayFile(path, what="test arrays")
    monkeypatch.setattr(os, "pwrite", bad)
    with pytest.raises(OSError) as info:
        file.append(np.zeros(3))
    assert not isinstance(info.value, DiskFullError) and info.value.errno == errno.EBADF
    assert path.stat().st_size == file.size == 0
    file.close()
