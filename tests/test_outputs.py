"""``out=`` masks: written atomically to .npy or zarr, returned read-only."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest

import segaudit
import segaudit.engine._finder
from conftest import make_dataset

VOID = 255
# random data: the model disagrees with the labels too often for the set-up check
pytestmark = pytest.mark.filterwarnings("ignore::segaudit.SetupWarning")
SUFFIXES = ["npy", pytest.param("zarr", marks=pytest.mark.requires_zarr)]


def _data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    labels, probs = make_dataset(seed, n=5, k=3, h=6, w=8)
    rng = np.random.default_rng(seed)
    labels[rng.random(labels.shape) < 0.1] = VOID
    return labels, probs


def _read(result) -> np.ndarray:
    return np.asarray(result[...])


def _snapshot(folder: Path) -> dict[str, str]:
    """Relative path -> content hash of every file under `folder` (hidden ones included)."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _assert_read_only(result, kind: str) -> None:
    if kind == "npy":
        assert isinstance(result, np.memmap)
        assert not result.flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            result[0, 0, 0] = True
    else:
        assert result.read_only
        with pytest.raises(ValueError, match="read-only"):
            result[0] = np.zeros(result.shape[1:], dtype=bool)


# ------------------------------------------------------------------ the array API


@pytest.mark.parametrize("as_str", [False, True], ids=["Path", "str"])
@pytest.mark.parametrize("kind", SUFFIXES)
def test_find_label_issues_out_equals_in_memory(tmp_path, kind: str, as_str: bool) -> None:
    labels, probs = _data()
    expected = segaudit.find_label_issues(labels, probs, ignore_index=VOID, verbose=False)
    assert expected.any()
    out = tmp_path / f"issues.{kind}"
    result = segaudit.find_label_issues(
        labels,
        probs,
        ignore_index=VOID,
        verbose=False,
        batch_size=3 * 48 * 2,
        out=str(out) if as_str else out,
    )
    assert result.shape == expected.shape
    assert result.dtype == np.bool_
    np.testing.assert_array_equal(_read(result), expected)
    _assert_read_only(result, kind)
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temporary left beside it
    if kind == "npy":
        np.testing.assert_array_equal(np.load(out), expected)


@pytest.mark.requires_zarr
def test_zarr_out_reopens_with_zarr(tmp_path) -> None:
    import zarr

    labels, probs = _data(1)
    expected = segaudit.find_label_issues(
        labels, probs, ignore_index=VOID, downsample=2, verbose=False
    )
    segaudit.find_label_issues(
        labels, probs, ignore_index=VOID, downsample=2, verbose=False, out=tmp_path / "m.zarr"
    )
    np.testing.assert_array_equal(
        zarr.open_array(str(tmp_path / "m.zarr"), mode="r")[...], expected
    )


@pytest.mark.parametrize("name", ["issues.npz", "issues.png", "issues", "issues.npy.tmp"])
def test_bad_suffix_is_a_value_error(tmp_path, name: str) -> None:
    labels, probs = _data()
    out = tmp_path / name
    message = (
        r"The 'out' parameter of find_label_issues must be a path ending in '\.npy' or '\.zarr'\. "
        rf"Got {re.escape(repr(out))} instead\."
    )
    with pytest.raises(ValueError, match=message):
        segaudit.find_label_issues(labels, probs, verbose=False, out=out)
    assert list(tmp_path.iterdir()) == []


def test_missing_folder_of_out(tmp_path) -> None:
    labels, probs = _data()
    with pytest.raises(FileNotFoundError, match="The folder of 'out' does not exist"):
        segaudit.find_label_issues(labels, probs, verbose=False, out=tmp_path / "no" / "m.npy")
    assert list(tmp_path.iterdir()) == []


def _nan_in_last_image() -> tuple[np.ndarray, np.ndarray]:
    labels, probs = _data(2)
    probs = probs.copy()
    probs[-1, 1, 5, 7] = np.nan
    return labels, probs


@pytest.mark.parametrize("existing", [False, True], ids=["new", "existing"])
@pytest.mark.parametrize("kind", SUFFIXES)
def test_failure_mid_way_leaves_nothing_half_written(tmp_path, kind: str, existing: bool) -> None:
    out = tmp_path / f"issues.{kind}"
    if existing:  # a complete mask from an earlier run must survive a failed one
        old_labels, old_probs = _data(3)
        segaudit.find_label_issues(old_labels, old_probs, ignore_index=VOID, verbose=False, out=out)
    before = _snapshot(tmp_path)
    assert bool(before) == existing
    labels, probs = _nan_in_last_image()
    # one image per batch: four batches are summarised into the mask before the fifth fails
    with pytest.raises(
        ValueError,
        match=r"pred_probs must be finite; got nan at class 1 of "
        r"image 4, row 5, column 7",
    ):
        segaudit.find_label_issues(
            labels, probs, ignore_index=VOID, verbose=False, batch_size=3 * 48, out=out
        )
    assert _snapshot(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ([out.name] if existing else [])


@pytest.mark.parametrize("kind", SUFFIXES)
def test_success_replaces_an_existing_mask(tmp_path, kind: str) -> None:
    out = tmp_path / f"issues.{kind}"
    a_labels, a_probs = _data(4)
    b_labels, b_probs = _data(5)
    first = segaudit.find_label_issues(a_labels, a_probs, ignore_index=VOID, verbose=False)
    second = segaudit.find_label_issues(b_labels, b_probs, ignore_index=VOID, verbose=False)
    assert not np.array_equal(first, second)
    segaudit.find_label_issues(a_labels, a_probs, ignore_index=VOID, verbose=False, out=out)
    result = segaudit.find_label_issues(
        b_labels, b_probs, ignore_index=VOID, verbose=False, out=out
    )
    np.testing.assert_array_equal(_read(result), second)
    assert [p.name for p in tmp_path.iterdir()] == [out.name]


def _unnormalised() -> tuple[np.ndarray, np.ndarray]:
    labels, probs = make_dataset(6, n=2, k=3, h=4, w=4)
    return labels, probs * 1.5


def test_row_sum_warning_points_at_the_caller() -> None:
    labels, probs = _unnormalised()
    with pytest.warns(UserWarning, match="do not sum to 1") as record:
        segaudit.find_label_issues(labels, probs, verbose=False)
    assert [w.filename for w in record] == [__file__]


def test_row_sum_warning_points_at_the_caller_with_out(tmp_path) -> None:
    labels, probs = _unnormalised()
    with pytest.warns(UserWarning, match="do not sum to 1") as record:
        segaudit.find_label_issues(labels, probs, verbose=False, out=tmp_path / "m.npy")
    assert [w.filename for w in record] == [__file__]


# ------------------------------------------------------------------ LabelAudit


def _audit(labels: np.ndarray, probs: np.ndarray) -> segaudit.LabelAudit:
    audit = segaudit.LabelAudit(3, ignore_index=VOID)
    audit.update(labels[:2], probs[:2])
    audit.update(labels[2], probs[2])
    audit.update(labels[3:], probs[3:])
    return audit


@pytest.mark.parametrize("kind", SUFFIXES)
def test_label_audit_out_equals_in_memory(tmp_path, kind: str) -> None:
    labels, probs = _data(7)
    audit = _audit(labels, probs)
    expected = segaudit.find_label_issues(labels, probs, ignore_index=VOID, verbose=False)
    np.testing.assert_array_equal(audit.find_label_issues(), expected)
    out = tmp_path / f"audit.{kind}"
    result = audit.find_label_issues(out=out)
    np.testing.assert_array_equal(_read(result), expected)
    _assert_read_only(result, kind)
    assert [p.name for p in tmp_path.iterdir()] == [out.name]
    # writing to disk did not consume the audit
    np.testing.assert_array_equal(audit.find_label_issues(), expected)


def test_label_audit_bad_suffix(tmp_path) -> None:
    labels, probs = _data(8)
    audit = _audit(labels, probs)
    with pytest.raises(
        ValueError,
        match=r"The 'out' parameter of LabelAudit\.find_label_issues must be a path ending in",
    ):
        audit.find_label_issues(out=tmp_path / "audit.h5")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("existing", [False, True], ids=["new", "existing"])
@pytest.mark.parametrize("kind", SUFFIXES)
def test_label_audit_failure_mid_way_leaves_nothing(
    tmp_path, monkeypatch, kind: str, existing: bool
) -> None:
    labels, probs = _data(9)
    audit = _audit(labels, probs)
    out = tmp_path / f"audit.{kind}"
    if existing:
        audit.find_label_issues(out=out)
    before = _snapshot(tmp_path)
    real = segaudit.engine._finder.block_mask  # the per-batch mask, called by LabelAudit
    calls = []

    def fail_on_second_batch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk on fire")
        return real(*args, **kwargs)

    monkeypatch.setattr(segaudit.engine._finder, "block_mask", fail_on_second_batch)
    with pytest.raises(RuntimeError, match="disk on fire"):
        audit.find_label_issues(out=out)
    assert len(calls) == 2  # the first batch was written before the failure
    assert _snapshot(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ([out.name] if existing else [])
    monkeypatch.undo()
    expected = segaudit.find_label_issues(labels, probs, ignore_index=VOID, verbose=False)
    np.testing.assert_array_equal(_read(audit.find_label_issues(out=out)), expected)
