"""A full disk is a clear DiskFullError naming the path, never SIGBUS, and leaves nothing.

Each case runs in a subprocess on a 2 MiB tmpfs: before the fix, writing a
memmap's pages on a full file system killed the process with SIGBUS (exit 135,
no Python error), which would take the test runner down with it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from segaudit.io._space import DiskFullError, reserve, reserved_memmap

TMPFS_BYTES = 2 << 20

# builds a clean data set: mask bytes N*H*W, probabilities float32
PRELUDE = """
import os, sys
import numpy as np
import segaudit
from segaudit.io._space import DiskFullError

FS = sys.argv[1]

def data(n, h=128, w=128, k=2, seed=0):
    rng = np.random.default_rng(seed)
    labels = (rng.random((n, h, w)) < 0.3).astype(np.int64)
    probs = np.empty((n, k, h, w), dtype=np.float32)
    probs[:, 1] = np.where(labels == 1, 0.9, 0.1)
    probs[:, 0] = 1 - probs[:, 1]
    labels[:, :2, :2] = 1 - labels[:, :2, :2]  # a few wrong labels
    return labels, probs
"""


@pytest.fixture
def tmpfs(tmp_path: Path):
    """A 2 MiB tmpfs mounted for the test (needs root; skipped, saying why, otherwise)."""
    where = tmp_path / "fs"
    where.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_BYTES}", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        reason = f"cannot mount a tmpfs (needs root): {done.stderr.strip() or done.returncode}"
        print(reason)
        pytest.skip(reason)
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=False)


def _run(script: str, fs: Path) -> subprocess.CompletedProcess:
    code = PRELUDE + textwrap.dedent(script)
    return subprocess.run(
        [sys.executable, "-c", code, str(fs)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _assert_clean_failure(done: subprocess.CompletedProcess, fs: Path) -> None:
    """Died of a Python exception (not a signal), naming the folder; nothing left behind."""
    assert done.returncode not in (-signal.SIGBUS, 128 + signal.SIGBUS), done.stderr
    assert done.returncode == 1, done.stderr
    assert "DiskFullError: not enough free space in " + str(fs) in done.stderr, done.stderr
    assert os.listdir(fs) == []


def test_out_npy_on_a_full_disk(tmpfs: Path) -> None:
    done = _run(
        """
        labels, probs = data(200)  # a 3.3 MB mask
        segaudit.find_label_issues(labels, probs, verbose=False, out=os.path.join(FS, "m.npy"))
        """,
        tmpfs,
    )
    _assert_clean_failure(done, tmpfs)
    assert f"need {200 * 128 * 128 + 128} bytes" in done.stderr


def test_label_audit_out_npy_on_a_full_disk(tmpfs: Path) -> None:
    done = _run(
        """
        labels, probs = data(200)
        audit = segaudit.LabelAudit(2)
        audit.update(labels, probs)
        try:
            audit.find_label_issues(out=os.path.join(FS, "m.npy"))
        except DiskFullError as err:
            assert err.errno == 28 and err.filename.startswith(FS), (err.errno, err.filename)
            print("caught", err)
        expected = segaudit.find_label_issues(labels, probs, verbose=False)
        assert (audit.find_label_issues() == expected).all()  # the audit is still usable
        raise SystemExit(3)
        """,
        tmpfs,
    )
    assert done.returncode == 3, done.stderr
    assert "caught not enough free space in " + str(tmpfs) in done.stdout
    assert os.listdir(tmpfs) == []


@pytest.mark.requires_zarr
def test_out_zarr_on_a_full_disk(tmpfs: Path) -> None:
    done = _run(
        """
        labels, probs = data(200)
        segaudit.find_label_issues(labels, probs, verbose=False, out=os.path.join(FS, "m.zarr"))
        """,
        tmpfs,
    )
    _assert_clean_failure(done, tmpfs)


def test_spill_on_a_full_disk_uncaught(tmpfs: Path) -> None:
    """The error ends the program: the spill folder is still removed at exit."""
    done = _run(
        """
        audit = segaudit.LabelAudit(2, memory_limit=0, spill_dir=FS)
        for seed in range(100):
            audit.update(*data(4, seed=seed))   # ~14 bytes per pixel: 2 MiB fill quickly
        """,
        tmpfs,
    )
    _assert_clean_failure(done, tmpfs)
    assert "for the spilled summary" in done.stderr


def test_spill_on_a_full_disk_is_all_or_nothing(tmpfs: Path) -> None:
    """Skip the batch that did not fit; the audit equals one fed only the others."""
    done = _run(
        """
        audit = segaudit.LabelAudit(2, memory_limit=0, spill_dir=FS)
        fresh = segaudit.LabelAudit(2)
        kept, failed = [], 0
        for seed in range(12):
            batch = data(4, seed=seed)
            try:
                audit.update(*batch)
            except DiskFullError as err:
                assert FS in str(err) and "need" in str(err), str(err)
                failed += 1
                continue
            fresh.update(*batch)
            kept.append(batch)
        assert failed and kept, (failed, len(kept))
        labels = np.concatenate([b[0] for b in kept])
        probs = np.concatenate([b[1] for b in kept])
        expected = segaudit.find_label_issues(labels, probs, verbose=False)
        assert expected.any()
        assert (audit.find_label_issues() == expected).all()
        assert (audit.thresholds == fresh.thresholds).all()
        assert audit.num_issues == fresh.num_issues
        a_img, a_pix = audit.get_label_quality_scores()
        f_img, f_pix = fresh.get_label_quality_scores()
        assert (a_img == f_img).all() and (a_pix == f_pix).all()
        assert (audit.image_scores() == fresh.image_scores()).all()
        audit.close()
        print("failed", failed, "kept", len(kept))
        """,
        tmpfs,
    )
    assert done.returncode == 0, done.stderr
    assert "failed " in done.stdout
    assert os.listdir(tmpfs) == []


# ------------------------------------------------------------------ the helpers, in process


def test_reserved_memmap_on_a_full_disk_removes_its_file(tmpfs: Path) -> None:
    path = tmpfs / "big.npy"
    with pytest.raises(DiskFullError) as info:
        reserved_memmap(path, dtype=np.float64, shape=(1 << 20,), what="a test array")
    err = info.value
    assert isinstance(err, OSError) and err.errno == 28
    assert err.filename == str(path)
    assert err.need == (1 << 20) * 8 + 128
    assert str(err).startswith(f"not enough free space in {tmpfs} for a test array: need ")
    assert os.listdir(tmpfs) == []


def test_reserved_memmap_that_fits_is_zeroed_and_allocated(tmpfs: Path) -> None:
    path = tmpfs / "small.npy"
    arr = reserved_memmap(path, dtype=np.int16, shape=(100, 1000), what="a test array")
    assert arr.shape == (100, 1000) and arr.dtype == np.int16
    assert not arr.any()
    assert os.stat(path).st_blocks * 512 >= arr.nbytes  # the blocks exist: no hole to fault
    arr[...] = 7
    arr.flush()
    np.testing.assert_array_equal(np.load(path), np.full((100, 1000), 7, dtype=np.int16))


def test_reserve_falls_back_to_writing_zeros(tmp_path: Path, monkeypatch) -> None:
    """Where posix_fallocate is unsupported (EOPNOTSUPP), zeros are written instead."""

    def unsupported(fd, offset, length):
        raise OSError(95, "Operation not supported")

    monkeypatch.setattr(os, "posix_fallocate", unsupported, raising=False)
    path = tmp_path / "f.bin"
    path.write_bytes(b"head")
    reserve(path, 3 << 20, what="a test file", start=4)
    assert path.read_bytes()[:4] == b"head"
    assert os.path.getsize(path) == 3 << 20
    assert os.stat(path).st_blocks * 512 >= 3 << 20


def test_reserve_fallback_on_a_full_disk(tmpfs: Path, monkeypatch) -> None:
    def unsupported(fd, offset, length):
        raise OSError(95, "Operation not supported")

    monkeypatch.setattr(os, "posix_fallocate", unsupported, raising=False)
    monkeypatch.setattr("segaudit.io._space.free_bytes", lambda folder: None)  # no pre-check
    path = tmpfs / "f.bin"
    path.touch()
    with pytest.raises(DiskFullError, match=f"not enough free space in {tmpfs} for a test file"):
        reserve(path, 3 << 20, what="a test file")


def test_out_npy_when_the_mask_fits_but_the_score_summary_does_not(tmpfs: Path) -> None:
    done = _run(
        """
        labels, probs = data(40)  # a 0.66 MB mask, 2.6 MB of float32 scores
        segaudit.find_label_issues(labels, probs, verbose=False, out=os.path.join(FS, "m.npy"))
        """,
        tmpfs,
    )
    _assert_clean_failure(done, tmpfs)
