"""A spilled summary is written whole, then mapped: same answers, tidy files, clean failures.

``SummaryStore.spill`` writes each array that does not fit in ``memory_limit``
to a ``.npy`` file with plain writes (``io._space.written_memmap``) and keeps
the file memory-mapped. These tests check that a spilled audit answers as an
in-memory one, that the spill folder holds exactly the kept arrays, and that a
write failing for lack of space is a DiskFullError leaving nothing behind.
"""

from __future__ import annotations

import builtins
import errno
import os
from pathlib import Path

import numpy as np
import pytest

import segaudit
import segaudit.io._space
from _audits import same_results
from conftest import make_dataset
from segaudit.io._space import DiskFullError, written_memmap

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
    files = sorted(p.name for p in folder.iterdir())
    assert files == [f"part{i:07d}.npy" for i in range(1, store._count + 1)]
    kept = _kept_arrays(audit)
    assert all(isinstance(a, np.memmap) for a in kept)  # nothing of the batch stayed in RAM
    assert sorted(Path(a.filename).name for a in kept) == files  # each file held once
    assert all(Path(a.filename).parent == folder for a in kept)
    assert sum(a.nbytes for a in kept) == store.spilled
    for a in kept:
        np.testing.assert_array_equal(np.load(a.filename), a)
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


def _failing_open(monkeypatch, fail_at: int, room: int) -> list[str]:
    """Make the `fail_at`-th file written by written_memmap fail after `room` bytes.

    The write fails as on a full disk (ENOSPC) with the first bytes already in
    the file, so a partial file exists until written_memmap removes it.
    Returns the paths opened so far.
    """
    opened: list[str] = []

    class FullFile:
        def __init__(self, path: str, mode: str) -> None:
            self.file = builtins.open(path, mode)  # noqa: SIM115 - closed by __exit__
            self.left = room

        def write(self, data) -> int:
            data = memoryview(data).cast("B")
            if len(data) > self.left:
                self.file.write(data[: self.left])
                self.file.flush()
                self.left = 0
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            self.left -= len(data)
            return self.file.write(data)

        def __enter__(self) -> FullFile:
            return self

        def __exit__(self, *exc: object) -> None:
            self.file.close()

    def fake_open(path, mode="r", *args, **kwargs):
        opened.append(os.fspath(path))
        if len(opened) == fail_at:
            return FullFile(path, mode)
        return builtins.open(path, mode, *args, **kwargs)

    monkeypatch.setattr(segaudit.io._space, "open", fake_open, raising=False)
    return opened


@pytest.mark.parametrize("fail_at", [1, 2, 3, 4, 5, 6])
@pytest.mark.parametrize("room", [0, 100, 130], ids=["nothing", "in-header", "in-data"])
def test_write_failure_is_disk_full_and_leaves_the_audit_unchanged(
    tmp_path, monkeypatch, fail_at: int, room: int
) -> None:
    labels, probs = _data(5, n=6)
    audit = segaudit.LabelAudit(K, ignore_index=VOID, memory_limit=0, spill_dir=tmp_path)
    audit.update(labels[:2], probs[:2])
    folder = _spill_folder(tmp_path)
    files_before = sorted(p.name for p in folder.iterdir())
    mark_before = audit._store.mark()
    opened = _failing_open(monkeypatch, fail_at, room)
    with pytest.raises(DiskFullError) as info:
        audit.update(labels[2:4], probs[2:4])
    monkeypatch.undo()
    assert len(opened) == fail_at
    err = info.value
    assert err.errno == errno.ENOSPC
    assert str(err).startswith(f"not enough free space in {folder} for the spilled summary")
    assert err.filename == opened[-1] and Path(err.filename).parent == folder
    assert not os.path.exists(opened[-1])  # the partial file is gone
    assert sorted(p.name for p in folder.iterdir()) == files_before
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
    _failing_open(monkeypatch, 1, 50)
    with pytest.raises(DiskFullError, match="for the spilled summary"):
        audit.update(labels[:2], probs[:2])
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []
    audit.update(labels[2:], probs[2:])
    fresh = segaudit.LabelAudit(K, ignore_index=VOID)
    fresh.update(labels[2:], probs[2:])
    same_results(audit, fresh)
    audit.close()


# ------------------------------------------------------------------ written_memmap itself


@pytest.mark.parametrize(
    "array",
    [
        np.arange(12, dtype=np.float64).reshape(3, 4),
        np.array([[True, False, True]]),
        np.arange(-5, 5, dtype=np.int16),
        np.arange(20, dtype=np.int8).reshape(4, 5)[:, ::2],  # not contiguous
        np.empty((0, 7), dtype=np.float32),
    ],
    ids=["float64", "bool", "int16", "strided", "empty"],
)
def test_written_memmap_round_trips(tmp_path, array: np.ndarray) -> None:
    path = tmp_path / "a.npy"
    out = written_memmap(path, array, what="a test array")
    assert isinstance(out, np.memmap) and out.flags.writeable
    assert out.dtype == array.dtype and out.shape == array.shape
    np.testing.assert_array_equal(out, array)
    np.testing.assert_array_equal(np.load(path), array)
    header = path.stat().st_size - array.nbytes
    assert 0 < header <= 256 and header % 64 == 0  # a 1.0 header, then the data


def test_written_memmap_checks_the_free_space_first(tmp_path, monkeypatch) -> None:
    """Too little free space: a DiskFullError before any file is made."""
    opened = _failing_open(monkeypatch, 0, 0)  # counts opens, fails none
    monkeypatch.setattr(segaudit.io._space, "free_bytes", lambda folder: 1000)
    path = tmp_path / "a.npy"
    with pytest.raises(DiskFullError) as info:
        written_memmap(path, np.zeros(1000, np.float64), what="a test array")
    assert info.value.need == 8000 + 128
    assert info.value.free == 1000
    assert str(info.value).startswith(f"not enough free space in {tmp_path} for a test array")
    assert opened == []
    assert list(tmp_path.iterdir()) == []
    out = written_memmap(path, np.zeros(100, np.float64), what="a test array")  # 928 bytes fit
    assert path.stat().st_size == 928 and out.shape == (100,)


def test_written_memmap_never_replaces_a_file(tmp_path) -> None:
    path = tmp_path / "a.npy"
    path.write_bytes(b"someone else's")
    with pytest.raises(FileExistsError):
        written_memmap(path, np.zeros(3), what="a test array")
    assert path.read_bytes() == b"someone else's"


def test_written_memmap_removes_its_file_on_an_interrupt(tmp_path, monkeypatch) -> None:
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "memmap", interrupted)  # after the write, before the map
    path = tmp_path / "a.npy"
    with pytest.raises(KeyboardInterrupt):
        written_memmap(path, np.zeros(3), what="a test array")
    assert list(tmp_path.iterdir()) == []


def test_written_memmap_keeps_other_errors(tmp_path, monkeypatch) -> None:
    """An error that is not about space is raised as it is, and the file removed."""

    class BadWrites:
        def __init__(self, path: str, mode: str) -> None:
            self.file = builtins.open(path, mode)  # noqa: SIM115 - closed by __exit__

        def write(self, data) -> int:
            raise OSError(errno.EBADF, os.strerror(errno.EBADF))

        def __enter__(self) -> BadWrites:
            return self

        def __exit__(self, *exc: object) -> None:
            self.file.close()

    monkeypatch.setattr(segaudit.io._space, "open", BadWrites, raising=False)
    with pytest.raises(OSError) as info:
        written_memmap(tmp_path / "a.npy", np.zeros(3), what="a test array")
    assert not isinstance(info.value, DiskFullError) and info.value.errno == errno.EBADF
    assert list(tmp_path.iterdir()) == []
