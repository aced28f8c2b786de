"""`segaudit scan` never loses a user's data: its output folder, crashes, hostile names, bad input.

Each test reproduces a way the scan used to destroy, mix or leak data (or show a
traceback) and checks the fixed behaviour through the real command.
"""

from __future__ import annotations

import concurrent.futures
import csv
import fcntl
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import segaudit
from segaudit.drivers._stream import LabelAudit
from segaudit.io._publish import PUBLISHED, read_manifest
from test_cli import VOID, K, _check_outputs, _dataset, _files, _save_palette_png, _stems

PIL = pytest.importorskip("PIL")

SRC = Path(segaudit.__file__).resolve().parents[1]
OPTIONS = ("--ignore-index", "255", "--from-logits", "--quiet")
NUMBERED = [str(k) for k in range(K)]


# ------------------------------------------------------------------ helpers


def _write(root: Path, stems: list[str], labels, logits, names=None) -> tuple[Path, Path]:
    masks, probs = root / "masks", root / "probs"
    masks.mkdir(parents=True)
    probs.mkdir()
    for stem, lab, lg in zip(stems, labels, logits, strict=True):
        _save_palette_png(masks / f"{stem}.png", lab)
        np.savez_compressed(probs / f"{stem}.npz", logits=lg)
    if names is not None:
        (root / "classes.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
    return masks, probs


def _data(root: Path, seed: int = 1, n: int = 4, **size) -> tuple[Path, Path]:
    labels, logits = _dataset(seed, n=n, **size)
    return _write(root, _stems(n), labels, logits)


def _scan(masks: Path, probs: Path, out: Path, *extra):
    args = ["scan", masks, probs, "--out", out, *OPTIONS, *extra]
    return CliRunner().invoke(segaudit.cli.cli, [str(a) for a in args], prog_name="segaudit")


def _error_line(result) -> str:
    """The one line of a refused run (exit 2, no traceback)."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: ")
    return lines[0]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def visible_run(out: Path) -> str | None:
    """Return the id of the one complete run visible in `out`; None if none; fail on a mix."""
    present = [os.path.exists(out / n) for n in PUBLISHED]
    if not any(present):
        return None
    assert all(present), f"a partial result is visible: {sorted(os.listdir(out))}"
    run_dir = Path(os.path.realpath(out / ".segaudit" / "current"))
    manifest = read_manifest(run_dir)
    listed = manifest["files"]
    assert run_dir.name == manifest["run_id"]
    on_disk = {
        p.relative_to(run_dir).as_posix()
        for p in run_dir.rglob("*")
        if p.is_file() and p.name != "manifest.json"
    }
    assert on_disk == set(listed)
    for name in PUBLISHED:
        assert os.path.realpath(out / name) == str(run_dir / name)  # all from the same run
        if name not in ("masks", "exports"):  # folders
            assert _sha(out / name) == listed[name]
    shown = {f"masks/{p.name}": _sha(p) for p in (out / "masks").iterdir()}
    assert shown == {rel: h for rel, h in listed.items() if rel.startswith("masks/")}
    with open(out / "images.csv", newline="") as fh:
        flagged = {r["image"] for r in csv.DictReader(fh) if int(r["num_pixel_issues"])}
    assert {f"masks/{s}.png" for s in flagged} == set(shown)
    return manifest["run_id"]


def _assert_clean(out: Path) -> None:
    """Only the lock, `current` and the one visible run are left in `.segaudit`."""
    tool = out / ".segaudit"
    assert sorted(p.name for p in tool.iterdir()) == ["current", "lock", "runs"]
    assert [p.name for p in (tool / "runs").iterdir()] == [visible_run(out)]
    assert not [p for p in out.iterdir() if p.name.startswith(".segaudit-")]


def _module(*args) -> list[str]:
    return [sys.executable, "-m", "segaudit", *map(str, args)]


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }


# ------------------------------------------------------------------ the inputs are never touched


def test_out_over_the_input_masks_is_refused_and_the_masks_are_untouched(tmp_path) -> None:
    """`segaudit scan data/masks data/probs --out data` used to overwrite and delete masks."""
    data = tmp_path / "data"
    masks, probs = _data(data)
    (tmp_path / "photos").mkdir()
    (tmp_path / "link").symlink_to(masks)
    before = {"masks": _files(masks), "probs": _files(probs)}
    cases = {
        data: "contains the masks folder",
        masks: "is the masks folder",
        masks / "sub": "lies inside the masks folder",
        probs: "is the probabilities folder",
        tmp_path / "link": "is the masks folder",
        tmp_path / "link" / "deeper": "lies inside the masks folder",
        tmp_path / "photos" / "out": "lies inside the images folder",
    }
    for out, words in cases.items():
        line = _error_line(_scan(masks, probs, out, "--images", tmp_path / "photos"))
        assert words in line and "'out_dir'" in line
        assert {"masks": _files(masks), "probs": _files(probs)} == before
    assert sorted(p.name for p in data.iterdir()) == ["masks", "probs"]
    assert not (masks / "sub").exists() and not (tmp_path / "photos" / "out").exists()
    with pytest.raises(ValueError, match="contains the masks folder"):
        segaudit.cli.run_scan(masks, probs, data, verbose=False)  # the API is safe too


def test_foreign_files_in_out_survive_or_stop_the_run(tmp_path) -> None:
    masks, probs = _data(tmp_path / "in")
    for name, content in (("report.html", b"<p>my notes</p>"), ("masks/x.png", b"\x89PNG mine")):
        out = tmp_path / f"out_{name.replace('/', '_')}"
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(content)
        before = _files(out)
        line = _error_line(_scan(masks, probs, out))
        assert f"'{out / name.split('/')[0]}' was not written by segaudit" in line
        assert _files(out) == before  # byte-identical, nothing added
    out = tmp_path / "shared"
    (out / "sub").mkdir(parents=True)
    (out / "notes.txt").write_text("keep me")
    (out / "sub" / "data.csv").write_text("=1+2\n")
    mine = _files(out)
    for _ in range(2):  # a first run and a rescan leave them alone
        result = _scan(masks, probs, out)
        assert result.exit_code == 0, result.output
        assert {k: v for k, v in _files(out).items() if k in mine} == mine
        assert sorted(os.listdir(out)) == sorted([".segaudit", "notes.txt", "sub", *PUBLISHED])
    visible_run(out)
    _assert_clean(out)


def test_results_of_an_old_version_are_not_overwritten(tmp_path) -> None:
    masks, probs = _data(tmp_path / "in")
    out = tmp_path / "out"
    out.mkdir()
    (out / "images.csv").write_text("image,score\n")  # real files, as segaudit 0.1 wrote them
    line = _error_line(_scan(masks, probs, out))
    assert "images.csv' was not written by segaudit; move it away" in line
    assert (out / "images.csv").read_text() == "image,score\n"


# ------------------------------------------------------------------ kill -9, two scans, stale files


def _wait_for_lock(out: Path, proc: subprocess.Popen) -> bool:
    """Return True once `proc` holds the lock on `out`, False if it ended first."""
    lock = out / ".segaudit" / "lock"
    while proc.poll() is None:
        try:
            if lock.read_text().strip() == str(proc.pid):
                return True
        except OSError:
            pass
        time.sleep(0.001)
    return False


def test_kill_9_never_leaves_a_mixed_or_partial_result_visible(tmp_path) -> None:
    """Four folders, each: a complete run, then five runs killed at random points.

    The kill times are fixed fractions (seeded) of the folder's own first run,
    timed from taking the lock to exiting, so they land anywhere in a scan.
    """
    labels, logits = _dataset(21, n=6, h=24, w=32)
    masks, probs = _write(tmp_path / "in", _stems(6), labels, logits)
    # the kills alternate between two datasets, so that runs differ in their files
    other = logits.copy()
    other[:, 0] += np.float16(1.5)
    masks2, probs2 = _write(tmp_path / "in2", _stems(6), labels, other)
    fractions = np.random.default_rng(20240607).uniform(0.0, 1.2, size=(4, 5))
    outs = [tmp_path / f"out{j}" for j in range(len(fractions))]

    def start(out: Path, inputs: tuple[Path, Path]) -> subprocess.Popen:
        cmd = _module("scan", *inputs, "--out", out, *OPTIONS)
        log = open(out.with_suffix(".log"), "a")  # noqa: SIM115 - the child writes to it
        with log:
            return subprocess.Popen(cmd, env=_env(), stdout=log, stderr=log)

    def kill_runs(j: int) -> list[tuple[str, str, bool]]:
        out = outs[j]
        began = time.monotonic()
        proc = start(out, (masks, probs))
        if _wait_for_lock(out, proc):  # (a loaded machine may not show it: time it all)
            began = time.monotonic()
        assert proc.wait(timeout=120) == 0, out.with_suffix(".log").read_text()
        window = time.monotonic() - began
        seen = [(visible_run(out) or "", f"first run {j}", False)]
        for r, fraction in enumerate(fractions[j]):
            proc = start(out, (masks, probs) if r % 2 else (masks2, probs2))
            if _wait_for_lock(out, proc):
                time.sleep(fraction * window)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=120)
            tool = out / ".segaudit"
            staged = any(p.name.startswith(("stage-", "spill-")) for p in tool.iterdir())
            where = f"kill {j}.{r} after {fraction:.2f} of {window:.2f}s"
            seen.append((visible_run(out) or "", where, staged))
        return seen

    with concurrent.futures.ThreadPoolExecutor(len(outs)) as pool:
        results = [s for batch in pool.map(kill_runs, range(len(outs))) for s in batch]
    for run_id, where, _ in results:
        assert run_id, f"{where}: the previous results disappeared"
    killed_mid_run = [where for _, where, staged in results if staged]
    assert killed_mid_run, "no kill landed inside a scan: the test did not test anything"
    for out in outs:  # the next run removes what the killed ones left
        result = _scan(masks, probs, out)
        assert result.exit_code == 0, result.output
        _assert_clean(out)
    published = len({run_id for run_id, _, _ in results}) - len(outs)
    print(
        f"{len(killed_mid_run)} of 20 kills left staging or spill folders; "
        f"{published} killed runs had published"
    )


def test_a_second_scan_into_a_locked_out_fails_at_once(tmp_path) -> None:
    masks, probs = _data(tmp_path / "in")
    out = tmp_path / "out"
    assert _scan(masks, probs, out).exit_code == 0
    before = _files(out)
    with open(out / ".segaudit" / "lock", "r+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running scan holds it
        fh.write("4242\n")
        fh.flush()
        line = _error_line(_scan(masks, probs, out))
        assert f"another segaudit scan is writing to {out} (pid 4242)" in line
        fh.truncate(0)
    assert _files(out) == before


def test_two_scans_started_together_never_mix(tmp_path) -> None:
    masks, probs = _data(tmp_path / "in", n=6)
    out = tmp_path / "out"
    procs = [
        subprocess.Popen(
            _module("scan", masks, probs, "--out", out, *OPTIONS),
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    done = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    assert 0 in [code for code, _ in done]
    for code, err in done:
        assert code == 0 or (code == 2 and "another segaudit scan is writing to" in err), err
        assert "Traceback" not in err
    visible_run(out)
    _assert_clean(out)


def test_stale_folders_of_killed_runs_are_removed_by_the_next_run(tmp_path) -> None:
    masks, probs = _data(tmp_path / "in")
    out = tmp_path / "out"
    assert _scan(masks, probs, out).exit_code == 0
    tool = out / ".segaudit"
    stale = [tool / "stage-20200101T000000-7-0123abcd", tool / "spill-20200101T000000-7-0123abcd"]
    for folder in stale:
        (folder / "segaudit-x").mkdir(parents=True)
        (folder / "segaudit-x" / "part0000001.npy").write_bytes(b"\0" * 100_000)
    legacy = out / ".segaudit-k2j4_9zq"  # what segaudit 0.1 left when killed (up to 119 MB)
    legacy.mkdir()
    (legacy / "regions.bin").write_bytes(b"\0" * 100_000)
    assert _scan(masks, probs, out).exit_code == 0
    for folder in [*stale, legacy]:
        assert not folder.exists()
    _assert_clean(out)


# ------------------------------------------------------------------ hostile names


def test_csv_cells_that_spreadsheets_would_run_are_neutralised(tmp_path) -> None:
    stems = ["=1+2", "@SUM(1)", "+3", '=HYPERLINK("x","y")', "-4", "plain"]
    names = ["=cmd|' /C calc'!A0", "@SUM(A1)", "-1", "+road"]
    labels, logits = _dataset(31, n=len(stems))
    masks, probs = _write(tmp_path / "in", stems, labels, logits, names)
    out = tmp_path / "out"
    result = _scan(masks, probs, out, "--classes", tmp_path / "in" / "classes.txt")
    assert result.exit_code == 0, result.output
    quoted = {s: ("'" + s if s != "plain" else s) for s in stems}
    safe_names = ["'" + n for n in names]

    def rows(name: str) -> list[dict[str, str]]:
        with open(out / name, newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))

    assert sorted(r["image"] for r in rows("images.csv")) == sorted(quoted.values())
    regions = rows("regions.csv")
    assert regions and {r["stem"] for r in regions} <= set(quoted.values())
    assert {r["given_name"] for r in regions} | {r["predicted_name"] for r in regions} <= set(
        safe_names
    )
    confusions = rows("confusions.csv")
    assert confusions
    assert {r["given_label"] for r in confusions} <= set(safe_names)
    assert [r["class"] for r in rows("per_class.csv")] == safe_names
    for name in ("images.csv", "regions.csv", "confusions.csv", "per_class.csv"):
        for row in rows(name):
            for cell in row.values():
                if cell[:1] in ("=", "+", "-", "@", "\t", "\r"):
                    float(cell)  # only numbers may start so (negative ones are untouched)
    # the masks keep the real stems as file names
    assert {p.stem for p in (out / "masks").iterdir()} <= set(stems)


def test_control_characters_from_data_are_escaped_in_cli_output(tmp_path) -> None:
    evil = "\x1b]0;pwned\x07img"
    stems = [evil, "b\x9bc", "plain"]
    names = ["sky\x1b[31m", "road", "car", "tree"]
    labels, logits = _dataset(32, n=3)
    masks, probs = _write(tmp_path / "in", stems, labels, logits, names)
    _save_palette_png(masks / "orphan\x1b[2J.png", labels[0])  # a mask without probabilities
    classes = tmp_path / "in" / "classes.txt"
    out = tmp_path / "out\x07dir"
    runs = {
        "scan": _scan(masks, probs, out, "--classes", classes, "--skip-bad"),
        "refused": _scan(masks, probs, out / "x", "--classes", classes),  # input problems
    }
    assert runs["scan"].exit_code == 0, runs["scan"].output
    assert runs["refused"].exit_code == 2
    for result in runs.values():
        text = result.output
        assert not any((ord(c) < 32 and c != "\n") or 0x7F <= ord(c) <= 0x9F for c in text), text
    shown = runs["scan"].output
    assert "\\x1b]0;pwned\\x07img" in shown  # the worst images list
    assert "skipped: " in shown and "orphan\\x1b[2J.png" in shown
    assert "out\\x07dir" in shown
    assert "sky\\x1b[31m" in shown  # the confusions list
    assert "orphan\\x1b[2J.png" in runs["refused"].output


# ------------------------------------------------------------------ output folder problems: exit 2


@pytest.fixture
def small_disk(tmp_path):
    """Mount tmpfs folders (root only); skip, saying why, where that is not possible."""
    mounted: list[Path] = []

    def mount(size: str, *, read_only: bool = False) -> Path:
        path = tmp_path / f"disk{len(mounted)}"
        path.mkdir()
        options = f"size={size}" + (",ro" if read_only else "")
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            reason = f"cannot mount a tmpfs (needs root): {done.stderr.strip()}"
            print(reason)
            pytest.skip(reason)
        mounted.append(path)
        return path

    yield mount
    for path in mounted:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_full_disk_exits_2_and_keeps_the_previous_run(tmp_path, small_disk) -> None:
    disk = small_disk("512k")
    out = disk / "out"
    small = _data(tmp_path / "small", n=2, h=8, w=8)
    assert _scan(*small, out).exit_code == 0
    before = _files(out)
    first = visible_run(out)
    labels, logits = _dataset(33, n=24, h=96, w=128)
    big = _write(tmp_path / "big", _stems(24), labels, logits)
    photos = tmp_path / "big" / "images"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for stem in _stems(24):  # noise does not compress: the report gets big
        rgb = rng.integers(0, 256, size=(96, 128, 3), dtype=np.uint8)
        PIL.Image.fromarray(rgb).save(photos / f"{stem}.png")
    line = _error_line(_scan(*big, out, "--images", photos, "--top", "24"))
    assert f"cannot write the results to {out}" in line
    assert "No space left on device" in line or "requested and" in line
    assert _files(out) == before  # no partial file, the previous run intact
    assert visible_run(out) == first
    # on a new folder: nothing at all is left
    line = _error_line(_scan(*big, disk / "new", "--images", photos, "--top", "24"))
    assert f"cannot write the results to {disk / 'new'}" in line
    assert sorted(os.listdir(disk)) == ["out"]


def test_out_that_cannot_be_written_exits_2_before_any_work(tmp_path, small_disk) -> None:
    masks, probs = _data(tmp_path / "in")
    if os.geteuid() == 0:
        parent = small_disk("64k", read_only=True)
        reason = "Read-only file system"
    else:
        parent = tmp_path / "locked"
        parent.mkdir(mode=0o555)
        reason = "Permission denied"
    for out in (parent / "out", parent):
        line = _error_line(_scan(masks, probs, out))
        assert f"cannot write the results to {out}" in line and reason in line
    assert os.listdir(parent) == []


def test_out_that_is_a_file_exits_2(tmp_path) -> None:
    masks, probs = _data(tmp_path / "in")
    (tmp_path / "out").write_text("mine")
    line = _error_line(_scan(masks, probs, tmp_path / "out"))
    assert "must be a folder" in line and "the file" in line
    assert (tmp_path / "out").read_text() == "mine"


@pytest.mark.parametrize("option", ["--ignore-index", "--background"])
def test_class_ids_beyond_the_label_dtype_exit_2(tmp_path, option) -> None:
    masks, probs = _data(tmp_path / "in")
    args = ["scan", masks, probs, "--out", tmp_path / "out", option, str(2**70)]
    result = CliRunner().invoke(segaudit.cli.cli, [str(a) for a in args])
    assert result.exit_code == 2, result.output
    assert "must be an integer in the label dtype range" in result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, OverflowError)
    assert not (tmp_path / "out").exists()


def test_classes_json_nested_too_deep_exits_2(tmp_path) -> None:
    masks, probs = _data(tmp_path / "in")
    deep = tmp_path / "classes.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    result = _scan(masks, probs, tmp_path / "out", "--classes", deep)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, RecursionError)
    assert str(deep) in result.output
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------ --skip-bad, read-time problems


def test_skip_bad_skips_a_problem_found_while_reading(tmp_path) -> None:
    labels, logits = _dataset(34, n=5)
    logits[1, 2, 3, 4] = np.nan  # found only when the file is read in full
    masks, probs = _write(tmp_path / "in", _stems(5), labels, logits)
    out = tmp_path / "out"
    result = _scan(masks, probs, out, "--skip-bad")
    assert result.exit_code == 0, result.output
    assert f"skipped: {probs / 'img_01.npz'}: expected finite logits" in result.output
    keep = [0, 2, 3, 4]  # the items after the skipped one keep their own stems and masks
    _check_outputs(
        out,
        [_stems(5)[i] for i in keep],
        labels[keep],
        logits[keep],
        ignore_index=VOID,
        from_logits=True,
        names=NUMBERED,
    )


def test_an_item_the_audit_rejects_is_skipped_or_named_by_its_file(tmp_path, monkeypatch) -> None:
    labels, logits = _dataset(35, n=4)
    masks, probs = _write(tmp_path / "in", _stems(4), labels, logits)
    real = LabelAudit.update

    def update(self, batch_labels, pred_probs, **options):
        batch = np.asarray(batch_labels).reshape(-1, *labels.shape[1:])
        # the third file, alone or in a batch of small images; rejected before any
        # change, as the engine does
        if any(np.array_equal(lab, labels[2]) for lab in batch):
            raise ValueError(
                "LabelAudit.update (batch 2): labels must be integers in 0..3; "
                "got 7 at image 2, row 1, column 2 in batch 2."
            )
        return real(self, batch_labels, pred_probs, **options)

    monkeypatch.setattr(LabelAudit, "update", update)
    out = tmp_path / "out"
    result = _scan(masks, probs, out)
    line = result.output.strip().splitlines()
    assert result.exit_code == 2, result.output
    assert line[-1] == (
        f"{probs / 'img_02.npz'}: labels must be integers in 0..3; got 7 at "
        "row 1, column 2. (mask img_02.png)"
    )
    assert not out.exists()
    result = _scan(masks, probs, out, "--skip-bad")
    assert result.exit_code == 0, result.output
    assert f"skipped: {probs / 'img_02.npz'}: labels must be" in result.output
    keep = [0, 1, 3]
    _check_outputs(
        out,
        [_stems(4)[i] for i in keep],
        labels[keep],
        logits[keep],
        ignore_index=VOID,
        from_logits=True,
        names=NUMBERED,
    )


def test_downsample_is_checked_against_every_size_before_any_work(tmp_path) -> None:
    labels, logits = _dataset(36, n=3, h=12, w=16)
    masks, probs = _write(tmp_path / "in", _stems(3), labels, logits)
    odd_labels, odd_logits = _dataset(37, n=1, h=12, w=15)
    _save_palette_png(masks / "odd.png", odd_labels[0])
    np.savez_compressed(probs / "odd.npz", logits=odd_logits[0])
    out = tmp_path / "out"
    result = _scan(masks, probs, out, "--downsample", "2")  # the default detector: no blocks
    assert _error_line(result).startswith(
        "Error: The 'downsample' parameter of run_scan must be 1 with filter_by='confident_regions'"
    )
    assert not out.exists()
    blocks = ("--downsample", "2", "--filter-by", "self_confidence")
    result = _scan(masks, probs, out, *blocks)
    assert result.exit_code == 2, result.output
    assert "odd.png" in result.output and "downsample" in result.output
    assert "Traceback" not in result.output and "batch" not in result.output
    assert not out.exists()
    result = _scan(masks, probs, out, *blocks, "--skip-bad")
    assert result.exit_code == 0, result.output
    assert "skipped: " in result.output and "odd.png" in result.output
    with open(out / "images.csv", newline="") as fh:
        assert sorted(r["image"] for r in csv.DictReader(fh)) == _stems(3)


# ------------------------------------------------------------------ the demo owns its folder


def test_demo_refuses_a_folder_with_other_files(tmp_path) -> None:
    out = tmp_path / "mine"
    (out / "sample" / "masks").mkdir(parents=True)
    (out / "sample" / "masks" / "scene_000.png").write_bytes(b"my own mask")
    result = CliRunner().invoke(segaudit.cli.cli, ["demo", "--out", str(out), "--images", "2"])
    line = _error_line(result)
    assert "holds other files" in line
    assert (out / "sample" / "masks" / "scene_000.png").read_bytes() == b"my own mask"
    assert sorted(os.listdir(out)) == ["sample"]


def test_manifest_lists_every_file_with_its_hash(tmp_path) -> None:
    masks, probs = _data(tmp_path / "in")
    out = tmp_path / "out"
    result = segaudit.cli.run_scan(
        masks, probs, out, ignore_index=VOID, from_logits=True, verbose=False
    )
    manifest = json.loads((result.run_dir / "manifest.json").read_text())
    assert manifest["run_id"] == result.run_dir.name == visible_run(out)
    assert manifest["version"] == segaudit.__version__
    assert sorted(out / rel for rel in manifest["files"]) == sorted(result.files)


def test_a_wrong_set_up_is_warned_in_the_summary_and_the_report(tmp_path) -> None:
    labels, logits = _dataset(3, n=4)
    shifted = np.where(labels == VOID, VOID, (labels + 1) % K)  # ids off by one, as ADE20K's 0
    masks, probs = _write(tmp_path / "shifted", _stems(4), shifted, logits)
    result = _scan(masks, probs, tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "WARNING: " in result.output and "class ids" in result.output
    report = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "class ids" in report
    masks, probs = _write(tmp_path / "clean", _stems(4), labels, logits)
    clean = _scan(masks, probs, tmp_path / "out2")
    assert clean.exit_code == 0 and "WARNING" not in clean.output
    assert "class ids" not in (tmp_path / "out2" / "report.html").read_text(encoding="utf-8")
