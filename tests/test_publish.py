"""The output folder (`segaudit.io._publish`) and CSV neutralising (`segaudit.io._csv`), alone.

A crash is simulated with SIGKILL in a forked child at every step of a publish;
whatever the step, the visible names show one complete run (the old or the new).
"""

from __future__ import annotations

import csv
import fcntl
import hashlib
import io
import os
import re
import signal
from pathlib import Path

import pandas as pd
import pytest

from segaudit.io import _publish
from segaudit.io._csv import neutralise_cell, neutralise_frame, write_csv
from segaudit.io._publish import (
    PUBLISHED,
    OutputBusyError,
    OutputFolder,
    check_out_dir,
    read_manifest,
)

# ------------------------------------------------------------------ helpers


FOLDERS = ("masks", "exports")
"""Published names that are folders (created empty in every stage)."""


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _stage_run(folder: OutputFolder, tag: str, masks: tuple[str, ...] = ("a", "b")) -> None:
    """Write a fake run into the stage: every file says which run it belongs to."""
    for name in PUBLISHED:
        if name not in FOLDERS:
            (folder.stage / name).write_text(f"{tag} {name}\n")
    for stem in masks:
        (folder.stage / "masks" / f"{stem}.png").write_text(f"{tag} {stem}\n")


def visible_run(out: Path) -> str | None:
    """Return the tag of the one complete run visible in `out`, None if none; fail on a mix."""
    present = [os.path.exists(out / n) for n in PUBLISHED]  # a dangling link shows nothing
    if not any(present):
        return None
    assert all(present), f"some results are missing: {os.listdir(out)}"
    run_dir = Path(os.path.realpath(out / ".segaudit" / "current"))
    manifest = read_manifest(run_dir)
    listed = manifest["files"]
    on_disk = {
        p.relative_to(run_dir).as_posix()
        for p in run_dir.rglob("*")
        if p.is_file() and p.name != "manifest.json"
    }
    assert on_disk == set(listed)
    for rel, digest in listed.items():
        assert _sha(run_dir / rel) == digest
    tags = set()
    for name in PUBLISHED:
        if name not in FOLDERS:
            assert os.path.realpath(out / name) == str(run_dir / name)
            tags.add((out / name).read_text().split()[0])
    seen = {f"masks/{p.name}" for p in (out / "masks").iterdir()}
    assert seen == {rel for rel in listed if rel.startswith("masks/")}
    tags |= {p.read_text().split()[0] for p in (out / "masks").iterdir()}
    assert len(tags) == 1, f"a mix of runs is visible: {tags}"
    return tags.pop()


def _publish_run(out: Path, tag: str, masks: tuple[str, ...] = ("a", "b")) -> list[Path]:
    with OutputFolder(out, version="test") as folder:
        _stage_run(folder, tag, masks)
        return folder.publish()


def _tool_entries(out: Path) -> list[str]:
    return sorted(p.name for p in (out / ".segaudit").iterdir())


# ------------------------------------------------------------------ publishing


def test_publish_makes_the_run_visible_through_links(tmp_path) -> None:
    out = tmp_path / "out"
    files = _publish_run(out, "one")
    assert files[-1] == out / "report.html"
    masks = [out / "masks" / "a.png", out / "masks" / "b.png"]
    assert sorted(files) == sorted([out / n for n in PUBLISHED if n not in FOLDERS] + masks)
    assert visible_run(out) == "one"
    for name in PUBLISHED:
        assert os.readlink(out / name) == f".segaudit/current/{name}"
    assert _tool_entries(out) == ["current", "lock", "runs"]
    assert (out / ".segaudit" / "lock").read_text() == ""  # released


def test_republish_replaces_the_run_and_removes_the_old_one(tmp_path) -> None:
    out = tmp_path / "out"
    _publish_run(out, "one", masks=("a", "b"))
    first = os.path.realpath(out / ".segaudit" / "current")
    _publish_run(out, "two", masks=("c",))
    assert visible_run(out) == "two"
    assert sorted(p.name for p in (out / "masks").iterdir()) == ["c.png"]
    assert not os.path.exists(first)
    assert len(list((out / ".segaudit" / "runs").iterdir())) == 1


def test_failure_before_publish_keeps_the_previous_run(tmp_path) -> None:
    out = tmp_path / "out"
    _publish_run(out, "one")
    with pytest.raises(RuntimeError, match="crash"), OutputFolder(out, version="t") as folder:
        _stage_run(folder, "two")
        raise RuntimeError("crash")
    assert visible_run(out) == "one"
    assert _tool_entries(out) == ["current", "lock", "runs"]


def test_failure_on_a_new_folder_leaves_nothing(tmp_path) -> None:
    out = tmp_path / "a" / "b" / "out"
    with pytest.raises(RuntimeError), OutputFolder(out, version="t") as folder:
        _stage_run(folder, "one")
        raise RuntimeError("crash")
    assert list(tmp_path.iterdir()) == []  # the folders it made are gone again


def test_failure_in_an_existing_folder_leaves_the_users_files(tmp_path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(RuntimeError), OutputFolder(out, version="t"):
        raise RuntimeError("crash")
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    assert (out / "notes.txt").read_text() == "mine"


def test_a_foreign_file_appearing_at_a_published_name_stops_the_publish(tmp_path) -> None:
    out = tmp_path / "out"
    _publish_run(out, "one")
    (out / "regions.csv").unlink()
    (out / "regions.csv").write_text("the user's own")
    with pytest.raises(FileExistsError), OutputFolder(out, version="t") as folder:
        _stage_run(folder, "two")
        folder.publish()
    assert (out / "regions.csv").read_text() == "the user's own"
    assert (out / "report.html").read_text() == "one report.html\n"  # still the old run


# ------------------------------------------------------------------ locking


def test_lock_refuses_a_second_writer_and_names_its_pid(tmp_path) -> None:
    out = tmp_path / "out"
    with OutputFolder(out, version="t") as folder:
        assert (out / ".segaudit" / "lock").read_text().strip() == str(os.getpid())
        os.symlink(".segaudit/current/masks", out / "masks")  # as a publish makes it first
        with pytest.raises(OutputBusyError, match=re.escape(f"to {out} (pid {os.getpid()})")):
            OutputFolder(out, version="t").__enter__()
        assert folder.stage.is_dir()  # the refused writer removed nothing of ours
        assert os.path.islink(out / "masks")
    _publish_run(out, "one")  # free again


def test_lock_held_by_another_open_file(tmp_path) -> None:
    out = tmp_path / "out"
    (out / ".segaudit").mkdir(parents=True)
    with open(out / ".segaudit" / "lock", "w") as fh:
        fh.write("4242\n")
        fh.flush()
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(OutputBusyError, match=r"\(pid 4242\)"):
            _publish_run(out, "one")
    assert (out / ".segaudit" / "lock").read_text() == "4242\n"
    assert _publish_run(out, "one")


# ------------------------------------------------------------------ stale leftovers


def test_stale_leftovers_are_removed_and_foreign_files_kept(tmp_path) -> None:
    out = tmp_path / "out"
    _publish_run(out, "one")
    tool = out / ".segaudit"
    old = tool / "runs" / "20200101T000000-1-00000000"  # a run killed after its rename
    (old / "masks").mkdir(parents=True)
    (old / "masks" / "z.png").write_text("old")
    (old / "manifest.json").write_text('{"files": {"masks/z.png": "x"}}')
    (tool / "runs" / "20200101T000000-2-00000000" / "masks").mkdir(parents=True)  # emptied
    (tool / "runs" / "users-folder").mkdir()  # no manifest: not the tool's
    (tool / "runs" / "users-folder" / "keep.txt").write_text("keep")
    for name in ("stage-20200101T000000-1-0a0b0c0d", "spill-20200101T000000-1-0a0b0c0d"):
        (tool / name / "deep").mkdir(parents=True)
        (tool / name / "deep" / "big.bin").write_bytes(b"\0" * 1000)
    os.symlink("runs/x", tool / "current.0a0b0c0d.tmp")
    (tool / "notes.txt").write_text("mine")
    legacy = out / ".segaudit-abc_1234"  # a killed run of an older version
    legacy.mkdir()
    (legacy / "images.csv").write_text("old")
    (out / ".segaudit-mine").mkdir()  # not that naming: kept
    _publish_run(out, "two")
    assert visible_run(out) == "two"
    assert _tool_entries(out) == ["current", "lock", "notes.txt", "runs"]
    runs = sorted(p.name for p in (tool / "runs").iterdir())
    assert len(runs) == 2 and "users-folder" in runs
    assert (tool / "runs" / "users-folder" / "keep.txt").read_text() == "keep"
    assert not legacy.exists()
    assert (out / ".segaudit-mine").is_dir()


def test_a_users_file_inside_an_old_run_survives_its_removal(tmp_path) -> None:
    out = tmp_path / "out"
    _publish_run(out, "one")
    run_dir = Path(os.path.realpath(out / ".segaudit" / "current"))
    (run_dir / "masks" / "notes.txt").write_text("mine")
    _publish_run(out, "two")
    assert (run_dir / "masks" / "notes.txt").read_text() == "mine"
    assert not (run_dir / "report.html").exists()


# ------------------------------------------------------------------ kill -9 at every step


def _kill_at(monkeypatch, target: object, name: str, call: int) -> None:
    """Make the `call`-th call of ``target.name`` SIGKILL the process instead."""
    real = getattr(target, name)
    count = [0]

    def deadly(*args, **kwargs):
        count[0] += 1
        if count[0] == call:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)

    monkeypatch.setattr(target, name, deadly)


STEPS = [("os", "rename", 1), ("os", "symlink", 1), ("os", "replace", 1), ("os", "replace", 2)]
STEPS += [("_publish", "_sha256", 1), ("_publish", "_remove_run", 1), ("_publish", "_fsync_dir", 2)]


@pytest.mark.parametrize("first", [True, False], ids=["new", "rescan"])
@pytest.mark.parametrize(("module", "name", "call"), STEPS)
def test_kill_at_any_step_of_a_publish(tmp_path, monkeypatch, first, module, name, call) -> None:
    out = tmp_path / "out"
    if not first:
        _publish_run(out, "one")
    pid = os.fork()
    if pid == 0:  # the child publishes run "two" and is killed on the way
        try:
            target = os if module == "os" else _publish
            _kill_at(monkeypatch, target, name, call)
            _publish_run(out, "two", masks=("c",))
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    seen = visible_run(out)
    assert seen in ((None, "two") if first else ("one", "two"))
    if os.WIFSIGNALED(status):
        assert os.WTERMSIG(status) == signal.SIGKILL
    _publish_run(out, "three", masks=("d",))  # the next run cleans up whatever was left
    assert visible_run(out) == "three"
    assert _tool_entries(out) == ["current", "lock", "runs"]
    assert len(list((out / ".segaudit" / "runs").iterdir())) == 1


# ------------------------------------------------------------------ the output folder check


def test_out_dir_overlapping_an_input_is_refused(tmp_path) -> None:
    data = tmp_path / "data"
    (data / "masks").mkdir(parents=True)
    (tmp_path / "link").symlink_to(data / "masks")
    cases = {
        data: "contains the masks folder",
        data / "masks": "is the masks folder",
        data / "masks" / "sub": "lies inside the masks folder",
        tmp_path / "link": "is the masks folder",
        tmp_path / "link" / "x": "lies inside the masks folder",
    }
    for out, words in cases.items():
        with pytest.raises(ValueError, match=words):
            check_out_dir(out, {"masks": data / "masks", "images": None}, "run_scan")
    check_out_dir(tmp_path / "elsewhere", {"masks": data / "masks"}, "run_scan")


def test_out_dir_that_is_a_file_or_holds_foreign_results_is_refused(tmp_path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(ValueError, match=r"must be a folder\. Got the file"):
        check_out_dir(tmp_path / "f", {}, "run_scan")
    out = tmp_path / "out"
    for name in PUBLISHED:
        out.mkdir(exist_ok=True)
        (out / name).mkdir() if name == "masks" else (out / name).write_text("mine")
        words = re.escape(f"'{out / name}' was not written by segaudit")
        with pytest.raises(ValueError, match=words):
            check_out_dir(out, {}, "run_scan")
        (out / name).rmdir() if name == "masks" else (out / name).unlink()
    (out / "masks").symlink_to(tmp_path)  # a link, but not ours
    with pytest.raises(ValueError, match="was not written by segaudit"):
        check_out_dir(out, {}, "run_scan")


# ------------------------------------------------------------------ CSV neutralising


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        ("=1+2", "'=1+2"),
        ("@SUM(1)", "'@SUM(1)"),
        ("+3", "'+3"),
        ("-4", "'-4"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
        ('=HYPERLINK("http://x","y")', '\'=HYPERLINK("http://x","y")'),
        ("road", "road"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_neutralise_cell(cell: str, written: str) -> None:
    assert neutralise_cell(cell) == written


def test_numbers_are_not_touched_and_text_is_read_back_quoted() -> None:
    frame = pd.DataFrame(
        {
            "name": ["=1+2", "sky", "-1"],
            "value": [-1.5, 2.0, -3.0],
            "count": [-1, 0, 7],
            "kind": pd.Categorical(["@x", "y", "@x"]),
        }
    )
    before = frame.copy()
    buffer = io.StringIO()
    write_csv(frame, buffer)
    pd.testing.assert_frame_equal(frame, before)  # the caller's frame is left alone
    rows = list(csv.DictReader(io.StringIO(buffer.getvalue())))
    assert [r["name"] for r in rows] == ["'=1+2", "sky", "'-1"]
    assert [r["value"] for r in rows] == ["-1.5", "2.0", "-3.0"]
    assert [r["count"] for r in rows] == ["-1", "0", "7"]
    assert [r["kind"] for r in rows] == ["'@x", "y", "'@x"]
    safe = pd.DataFrame({"name": ["sky"], "value": [-1.0]})
    assert neutralise_frame(safe) is safe  # nothing to change: no copy
