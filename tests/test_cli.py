"""The ``segaudit`` command: real files in, CSVs, masks and a report out, exit codes.

The tests drive the real click command (``CliRunner`` on ``segaudit.cli.cli``) and,
once, the installed module in a fresh interpreter (``python -m segaudit``). Every
output is checked against the array API on the very values the files hold
(float16 logits stay float16).
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import segaudit
import segaudit.report
from conftest import make_dataset
from segaudit.cli import cli, run_scan
from segaudit.cli._scan import score_method_for
from segaudit.filter import FILTER_BY, RECOMMENDED_FILTER
from segaudit.io import DatasetError

PIL = pytest.importorskip("PIL")
from PIL import Image  # noqa: E402

VOID = 255
K = 4
NAMES = ["sky", "road", "car", "tree"]
SRC = Path(segaudit.__file__).resolve().parents[1]


# ------------------------------------------------------------------ writing real files


def _palette() -> list[int]:
    palette = np.zeros((256, 3), dtype=np.uint8)
    palette[:K] = [(70, 130, 180), (128, 64, 128), (0, 0, 142), (107, 142, 35)]
    palette[VOID] = (255, 255, 255)
    return palette.reshape(-1).tolist()


def _save_palette_png(path: Path, labels: np.ndarray) -> None:
    img = Image.fromarray(labels.astype(np.uint8), mode="P")
    img.putpalette(_palette())
    img.save(path)


def _dataset(seed: int, n: int = 5, h: int = 12, w: int = 16):
    """labels (n, h, w) with void, float16 logits (n, K, h, w)."""
    labels, probs = make_dataset(seed, n=n, k=K, h=h, w=w, noise=0.2, strength=2.5)
    rng = np.random.default_rng(seed)
    labels[:, 0, :] = VOID  # a void frame, as in Cityscapes
    labels[rng.random(labels.shape) < 0.05] = VOID
    logits = (3.0 * np.log(probs) + rng.normal(size=probs.shape)).astype(np.float16)
    return labels, logits


def _stems(n: int) -> list[str]:
    return [f"img_{i:02d}" for i in range(n)]


def _write_voc_like(root: Path, labels: np.ndarray, logits16: np.ndarray, *, photos=False):
    """Palette PNG masks with 255 void, float16 logits in .npz, class names as text."""
    masks, probs = root / "masks", root / "probs"
    masks.mkdir(parents=True)
    probs.mkdir()
    for stem, lab, lg in zip(_stems(len(labels)), labels, logits16, strict=True):
        _save_palette_png(masks / f"{stem}.png", lab)
        np.savez_compressed(probs / f"{stem}.npz", logits=lg)
    if photos:
        (root / "images").mkdir()
        rng = np.random.default_rng(0)
        for stem, lab in zip(_stems(len(labels)), labels, strict=True):
            rgb = rng.integers(0, 256, size=(*lab.shape, 3), dtype=np.uint8)
            Image.fromarray(rgb).save(root / "images" / f"{stem}.png")
    (root / "classes.txt").write_text("\n".join(NAMES) + "\n")
    return masks, probs


def _invoke(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args], prog_name="segaudit")


def _scan_args(masks: Path, probs: Path, out: Path, *extra) -> list:
    return ["scan", masks, probs, "--out", out, "--quiet", *extra]


def _files(folder: Path) -> dict[str, str]:
    """Relative path -> content hash of every file under `folder`, hidden ones included."""
    if not folder.exists():
        return {}
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _read_csv(path: Path, *text_columns: str) -> pd.DataFrame:
    """Read a CSV; class names (which may look like numbers) stay text."""
    return pd.read_csv(path, dtype=dict.fromkeys(text_columns, str))


def _summary(output: str) -> dict[str, str]:
    """The one-screen summary's ``key   value`` lines."""
    keys = (
        "images",
        "skipped items",
        "classes",
        "labelled pixels",
        "flagged pixels",
        "images with issues",
        "regions",
        "estimated issues (T)",
        "filter by",
        "image scores",
    )
    found = {}
    for key in keys:
        match = re.search(rf"^  {re.escape(key)} +(\S+)$", output, flags=re.MULTILINE)
        assert match, f"summary line {key!r} missing from:\n{output}"
        found[key] = match.group(1)
    return found


# ------------------------------------------------------------------ oracle checks


def _check_outputs(
    out: Path,
    stems,
    labels,
    pred,
    *,
    ignore_index,
    from_logits,
    names,
    filter_by=RECOMMENDED_FILTER,
):
    """Compare every file of a scan with the array API on the same arrays.

    `filter_by` is the scan's detector; the image scores are its recommended method.
    """
    options = {"ignore_index": ignore_index, "from_logits": from_logits, "verbose": False}
    method = score_method_for(filter_by)
    mask = segaudit.find_label_issues(labels, pred, filter_by=filter_by, **options)
    image_scores, pixel_scores = segaudit.get_label_quality_scores(
        labels, pred, method=method, **options
    )
    valid = (labels != ignore_index) if ignore_index is not None else np.ones_like(mask)
    assert mask.any(), "the data must have issues for this comparison to mean anything"

    images = _read_csv(out / "images.csv")
    assert list(images.columns) == [
        "image",
        "score",
        "num_pixel_issues",
        "fraction_pixel_issues",
        "method",
        "filter_by",
        "mask_path",
        "image_path",
    ]
    assert set(images["method"]) == {method}
    assert set(images["filter_by"]) == {filter_by}
    order = np.lexsort((np.array(stems), image_scores))
    assert images["image"].tolist() == [stems[i] for i in order]  # worst first, ties by stem
    flagged = mask.sum(axis=(1, 2))
    np.testing.assert_array_equal(images["score"], image_scores[order])
    np.testing.assert_array_equal(images["num_pixel_issues"], flagged[order])
    np.testing.assert_allclose(
        images["fraction_pixel_issues"], (flagged / valid.sum(axis=(1, 2)))[order], rtol=1e-15
    )

    for i, stem in enumerate(stems):
        path = out / "masks" / f"{stem}.png"
        if flagged[i]:
            with Image.open(path) as img:
                png = np.asarray(img)
            assert set(np.unique(png).tolist()) <= {0, 255}
            np.testing.assert_array_equal(png > 0, mask[i])
        else:
            assert not path.exists()

    confusions = _read_csv(out / "confusions.csv", "given_label", "predicted_label")
    expected = segaudit.common_label_issues(
        mask, labels, pred, class_names=names, ignore_index=ignore_index, top=K * K, verbose=False
    )
    pd.testing.assert_frame_equal(confusions, expected, check_dtype=False)

    regions = _read_csv(out / "regions.csv", "given_name", "predicted_name")
    assert "issue_type" in regions.columns
    assert set(regions["issue_type"]) <= {
        "wrong_class",
        "missing_label",
        "spurious_label",
        "boundary",
    }
    assert regions["area"].sum() == mask.sum()  # the regions partition the flagged pixels
    assert regions["stem"].tolist() == [stems[i] for i in regions["image"]]
    predicted = np.asarray(pred, dtype=np.float64).argmax(axis=1)
    expected = segaudit.find_issue_regions(
        mask,
        labels,
        predicted=predicted,
        pixel_scores=pixel_scores,
        background=0,
        ignore_index=ignore_index,
        class_names=names,
    )
    same = [c for c in expected.columns if c != "mean_self_confidence" and c != "severity"]
    pd.testing.assert_frame_equal(regions[same], expected[same], check_dtype=False)
    np.testing.assert_allclose(regions["severity"], expected["severity"], rtol=1e-12)

    per_class = _read_csv(out / "per_class.csv", "class")
    assert per_class["class"].tolist() == list(names)
    np.testing.assert_array_equal(per_class["pixels"], np.bincount(labels[valid], minlength=K))
    np.testing.assert_array_equal(per_class["flagged"], np.bincount(labels[mask], minlength=K))

    report = out / "report.html"
    assert report.stat().st_size > 0
    assert report.read_text(encoding="utf-8").lstrip().lower().startswith("<!doctype html")
    others = [p for p in _visible(out) if p != report]
    assert all(p.stat().st_mtime_ns <= report.stat().st_mtime_ns for p in others)
    _assert_one_clean_run(out)  # no staging or spill left
    return mask


PUBLISHED = (
    "images.csv",
    "regions.csv",
    "confusions.csv",
    "per_class.csv",
    "summary.json",
    "masks",
    "exports",
    "report.html",
)


def _visible(out: Path) -> list[Path]:
    """The published files as a user sees them: OUT/<name> and OUT/masks/<stem>.png."""
    found = [out / n for n in PUBLISHED if n not in ("masks", "exports") and (out / n).is_file()]
    return sorted(
        found + sorted((out / "masks").glob("*.png")) + sorted((out / "exports").iterdir())
    )


def _assert_one_clean_run(out: Path) -> None:
    """OUT holds the visible links and `.segaudit` with one run, its lock and `current` only."""
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == [".segaudit"]
    for name in PUBLISHED:
        assert (out / name).is_symlink()
        assert os.readlink(out / name) == f".segaudit/current/{name}"
    tool = out / ".segaudit"
    assert sorted(p.name for p in tool.iterdir()) == ["current", "lock", "runs"]
    runs = [p.name for p in (tool / "runs").iterdir()]
    assert runs == [os.path.basename(os.readlink(tool / "current"))]


# ------------------------------------------------------------------ end to end


@pytest.mark.parametrize("filter_by", [*FILTER_BY, None])
def test_scan_voc_like_folder_matches_array_api(tmp_path, filter_by) -> None:
    """Every detector (None: the default) gives the array API's masks, scores and tables."""
    labels, logits16 = _dataset(1)
    masks, probs = _write_voc_like(tmp_path, labels, logits16, photos=True)
    out = tmp_path / "audit"
    chosen = () if filter_by is None else ("--filter-by", filter_by)
    result = _invoke(
        *_scan_args(
            masks,
            probs,
            out,
            "--ignore-index",
            "255",
            "--from-logits",
            "--classes",
            tmp_path / "classes.txt",
            "--images",
            tmp_path / "images",
            "--top",
            "3",
            *chosen,
        )
    )
    assert result.exit_code == 0, result.output
    used = RECOMMENDED_FILTER if filter_by is None else filter_by
    mask = _check_outputs(
        out,
        _stems(5),
        labels,
        logits16,
        ignore_index=VOID,
        from_logits=True,
        names=NAMES,
        filter_by=used,
    )
    summary = _summary(result.output)
    assert summary["images"] == "5"
    assert summary["classes"] == str(K)
    assert summary["flagged pixels"] == str(int(mask.sum()))
    assert summary["labelled pixels"] == str(int((labels != VOID).sum()))
    assert summary["images with issues"] == str(int(mask.any(axis=(1, 2)).sum()))
    assert summary["filter by"] == used
    assert summary["image scores"] == score_method_for(used)
    if used == "self_confidence":  # the reference flags at most T pixels
        assert int(summary["estimated issues (T)"]) >= mask.sum()
    report = (out / "report.html").read_text(encoding="utf-8")
    assert used in report and score_method_for(used) in report
    assert f"Report: {out / 'report.html'}" in result.output
    assert "Images with the lowest label quality:" in result.output
    assert "Most common confusions (given -> predicted):" in result.output


def test_scan_tiff_masks_hwk_float32_probabilities(tmp_path) -> None:
    tifffile = pytest.importorskip("tifffile")
    labels, probs = make_dataset(2, n=4, k=K, h=10, w=14, noise=0.2)
    probs32 = probs.astype(np.float32)
    (tmp_path / "m").mkdir()
    (tmp_path / "p").mkdir()
    stems = _stems(4)
    for stem, lab, p in zip(stems, labels, probs32, strict=True):
        tifffile.imwrite(tmp_path / "m" / f"{stem}.tif", lab.astype(np.uint16))
        np.save(tmp_path / "p" / f"{stem}.npy", np.ascontiguousarray(np.moveaxis(p, 0, -1)))
    out = tmp_path / "out"
    result = _invoke(*_scan_args(tmp_path / "m", tmp_path / "p", out, "--layout", "HWK"))
    assert result.exit_code == 0, result.output
    _check_outputs(
        out,
        stems,
        labels,
        probs32,
        ignore_index=None,
        from_logits=False,
        names=[str(k) for k in range(K)],
    )


def test_scan_images_of_different_sizes(tmp_path) -> None:
    """Laid end to end in one (1, K, 1, P) array, the images give the exact oracle."""
    sizes = [(8, 12), (12, 16), (6, 10)]
    labels_list, logits_list = [], []
    for i, (h, w) in enumerate(sizes):
        lab, lg = _dataset(10 + i, n=1, h=h, w=w)
        labels_list.append(lab[0])
        logits_list.append(lg[0])
    (tmp_path / "masks").mkdir()
    (tmp_path / "probs").mkdir()
    stems = _stems(3)
    for stem, lab, lg in zip(stems, labels_list, logits_list, strict=True):
        _save_palette_png(tmp_path / "masks" / f"{stem}.png", lab)
        np.savez_compressed(tmp_path / "probs" / f"{stem}.npz", logits=lg)
    out = tmp_path / "out"
    result = _invoke(
        *_scan_args(
            tmp_path / "masks",
            tmp_path / "probs",
            out,
            "--ignore-index",
            "255",
            "--from-logits",
            "--filter-by",
            "self_confidence",  # per pixel: the images laid end to end give the same flags
        )
    )
    assert result.exit_code == 0, result.output
    flat_labels = np.concatenate([lab.reshape(-1) for lab in labels_list])[None, None]
    flat_logits = np.concatenate([lg.reshape(K, -1) for lg in logits_list], axis=1)[None, :, None]
    flat = segaudit.find_label_issues(
        flat_labels, flat_logits, ignore_index=VOID, from_logits=True, verbose=False
    )[0, 0]
    images = _read_csv(out / "images.csv").set_index("image")
    start = 0
    for stem, lab in zip(stems, labels_list, strict=True):
        expected = flat[start : start + lab.size].reshape(lab.shape)
        start += lab.size
        assert images.loc[stem, "num_pixel_issues"] == expected.sum()
        path = out / "masks" / f"{stem}.png"
        if expected.any():
            with Image.open(path) as img:
                np.testing.assert_array_equal(np.asarray(img) > 0, expected)
        else:
            assert not path.exists()
    assert flat.any()


def test_scan_without_issues_exits_0(tmp_path) -> None:
    labels, _ = make_dataset(3, n=3, k=K, h=8, w=8)
    logits = (8.0 * np.moveaxis(np.eye(K)[labels], -1, 1)).astype(np.float16)
    masks, probs = _write_voc_like(tmp_path, labels, logits)
    out = tmp_path / "out"
    result = _invoke(*_scan_args(masks, probs, out, "--from-logits"))
    assert result.exit_code == 0, result.output
    images = _read_csv(out / "images.csv")
    assert images["num_pixel_issues"].tolist() == [0, 0, 0]
    assert len(_read_csv(out / "regions.csv")) == 0
    assert len(_read_csv(out / "confusions.csv")) == 0
    assert not list(out.rglob("*.png"))
    assert (out / "report.html").exists()
    summary = _summary(result.output)
    assert summary["flagged pixels"] == "0"
    assert summary["images with issues"] == "0"
    assert "Images with the lowest label quality:" not in result.output


def test_run_scan_publishes_report_last(tmp_path) -> None:
    labels, logits16 = _dataset(4, n=3)
    masks, probs = _write_voc_like(tmp_path, labels, logits16)
    out = tmp_path / "out"
    result = run_scan(masks, probs, out, ignore_index=VOID, from_logits=True, verbose=False)
    assert result.files[-1] == out / "report.html"
    assert sorted(result.files) == _visible(out)
    assert result.run_dir == (out / ".segaudit" / "current").resolve()
    names = {p.name for p in result.files}
    assert {"images.csv", "regions.csv", "confusions.csv", "per_class.csv"} <= names
    mask = segaudit.find_label_issues(
        labels,
        logits16,
        ignore_index=VOID,
        from_logits=True,
        verbose=False,
        filter_by=RECOMMENDED_FILTER,
    )
    assert result.summary["flagged pixels"] == mask.sum()


def test_run_scan_spilling_writes_only_results(tmp_path) -> None:
    labels, logits16 = _dataset(5, n=3)
    masks, probs = _write_voc_like(tmp_path, labels, logits16)
    reference = run_scan(
        masks, probs, tmp_path / "ram", ignore_index=VOID, from_logits=True, verbose=False
    )
    spilled = run_scan(
        masks,
        probs,
        tmp_path / "disk",
        ignore_index=VOID,
        from_logits=True,
        memory_limit=1000,
        verbose=False,
    )
    pd.testing.assert_frame_equal(spilled.images, reference.images)
    ram = {p.relative_to(tmp_path / "ram") for p in reference.files}
    disk = {p.relative_to(tmp_path / "disk") for p in spilled.files}
    assert disk == ram

    def layout(folder: Path) -> set[str]:  # every file, hidden ones too; run ids aside
        return {re.sub(r"^\.segaudit/runs/[^/]+/", "RUN/", k) for k in _files(folder)}

    assert layout(tmp_path / "disk") == layout(tmp_path / "ram")
    assert "RUN/manifest.json" in layout(tmp_path / "disk")


def test_rescan_into_the_same_folder_leaves_no_stale_masks(tmp_path) -> None:
    labels, logits16 = _dataset(6, n=3)
    masks, probs = _write_voc_like(tmp_path, labels, logits16)
    out = tmp_path / "out"
    assert (
        _invoke(*_scan_args(masks, probs, out, "--ignore-index", "255", "--from-logits")).exit_code
        == 0
    )
    assert list((out / "masks").glob("*.png"))
    clean = 8.0 * np.moveaxis(np.eye(K)[np.where(labels == VOID, 0, labels)], -1, 1)
    for stem, lg in zip(_stems(3), clean.astype(np.float16), strict=True):
        np.savez_compressed(probs / f"{stem}.npz", logits=lg)
    result = _invoke(*_scan_args(masks, probs, out, "--ignore-index", "255", "--from-logits"))
    assert result.exit_code == 0, result.output
    assert _read_csv(out / "images.csv")["num_pixel_issues"].sum() == 0
    assert not list((out / "masks").glob("*.png"))


# ------------------------------------------------------------------ failures and exit codes


def test_failed_report_leaves_no_partial_output(tmp_path, monkeypatch) -> None:
    labels, logits16 = _dataset(7, n=3)
    masks, probs = _write_voc_like(tmp_path, labels, logits16)

    def broken(*args, **kwargs):
        raise RuntimeError("report renderer crashed")

    monkeypatch.setattr(segaudit.report, "write_report", broken)
    out = tmp_path / "fresh"
    with pytest.raises(RuntimeError, match="report renderer crashed"):
        run_scan(masks, probs, out, ignore_index=VOID, from_logits=True, verbose=False)
    assert not out.exists() or list(out.iterdir()) == []

    # through the command: an unexpected failure is exit code 1, nothing is published
    result = _invoke(*_scan_args(masks, probs, out, "--ignore-index", "255", "--from-logits"))
    assert result.exit_code == 1
    assert isinstance(result.exception, RuntimeError)
    assert not out.exists() or list(out.iterdir()) == []


def test_failed_rescan_keeps_the_previous_results(tmp_path, monkeypatch) -> None:
    labels, logits16 = _dataset(8, n=3)
    masks, probs = _write_voc_like(tmp_path, labels, logits16)
    out = tmp_path / "out"
    args = _scan_args(masks, probs, out, "--ignore-index", "255", "--from-logits")
    assert _invoke(*args).exit_code == 0
    before = _files(out)
    assert "report.html" in before

    def broken(*a, **k):
        raise RuntimeError("boom")

    monkeypatch.setattr(segaudit.report, "write_report", broken)
    assert _invoke(*args).exit_code == 1
    assert _files(out) == before
    _assert_one_clean_run(out)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["scan", "--bogus"], "No such option '--bogus'"),
        (["scan", "{m}"], "Missing argument 'PROBS_DIR'"),
        (["scan", "{m}", "{p}"], "Missing option '--out'"),
        (["scan", "{m}", "{p}", "--out", "{o}", "--layout", "CHW"], "Invalid value for '--layout'"),
        (
            ["scan", "{m}", "{p}", "--out", "{o}", "--downsample", "0"],
            "Invalid value for '--downsample'",
        ),
        (["scan", "{m}/nowhere", "{p}", "--out", "{o}"], "does not exist"),
        (["frobnicate"], "No such command 'frobnicate'"),
        (["demo", "--images", "0"], "Invalid value for '--images'"),
    ],
)
def test_bad_usage_exits_2(tmp_path, args: list[str], message: str) -> None:
    labels, logits16 = _dataset(9, n=1)
    masks, probs = _write_voc_like(tmp_path, labels, logits16)
    paths = {"m": masks, "p": probs, "o": tmp_path / "out"}
    result = _invoke(*[a.format(**paths) for a in args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not (tmp_path / "out").exists()


def _broken_folder(root: Path) -> tuple[Path, Path, dict[str, str]]:
    """Two good items and one of each input problem; return the expected problem lines."""
    labels, logits16 = _dataset(11, n=8)
    masks, probs = _write_voc_like(root, labels, logits16)
    stems = _stems(8)
    (probs / f"{stems[2]}.npz").unlink()  # mask without probabilities
    (masks / f"{stems[3]}.png").unlink()  # probabilities without mask
    np.savez_compressed(probs / f"{stems[4]}.npz", logits=logits16[4][:, :, :-1])  # too narrow
    (masks / f"{stems[5]}.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (probs / f"{stems[6]}.npz").write_bytes(b"PK\x03\x04 truncated zip")
    bad = labels[7].copy()
    bad[3, 3] = 9  # outside 0..3 and not void
    _save_palette_png(masks / f"{stems[7]}.png", bad)
    expected = {
        stems[2]: f"{stems[2]}.png: this mask has no probability file",
        stems[3]: f"{stems[3]}.npz: these probabilities have no mask",
        stems[4]: f"{stems[4]}.npz: expected size 12x16 like the mask {stems[4]}.png; got 12x15",
        stems[5]: f"{stems[5]}.png: cannot read the mask, the file is corrupt",
        stems[6]: f"{stems[6]}.npz: cannot read the .npz file, it is corrupt",
        stems[7]: f"{stems[7]}.png: expected labels to be integers in 0..3 or ignore_index=255",
    }
    return masks, probs, expected


def test_bad_input_exits_2_and_lists_every_problem(tmp_path) -> None:
    masks, probs, expected = _broken_folder(tmp_path)
    out = tmp_path / "out"
    result = _invoke(*_scan_args(masks, probs, out, "--ignore-index", "255", "--from-logits"))
    assert result.exit_code == 2, result.output
    assert "input problems, nothing was written" in result.output
    assert f"{len(expected)} input problems:" in result.output
    for line in expected.values():
        assert line in result.output
    assert _files(out) == {}


def test_skip_bad_processes_the_rest_and_lists_what_was_skipped(tmp_path) -> None:
    masks, probs, expected = _broken_folder(tmp_path)
    out = tmp_path / "out"
    result = _invoke(
        *_scan_args(masks, probs, out, "--ignore-index", "255", "--from-logits", "--skip-bad")
    )
    assert result.exit_code == 0, result.output
    skipped = [line for line in result.output.splitlines() if line.startswith("  skipped: ")]
    assert len(skipped) == len(expected)
    for line in expected.values():
        assert any(line in s for s in skipped)
    assert _summary(result.output)["skipped items"] == str(len(expected))
    # the two good items are audited exactly as the array API would on them alone
    labels, logits16 = _dataset(11, n=8)
    good = [0, 1]
    _check_outputs(
        out,
        [_stems(8)[i] for i in good],
        labels[good],
        logits16[good],
        ignore_index=VOID,
        from_logits=True,
        names=[str(k) for k in range(K)],
    )


def test_skip_bad_with_nothing_left_exits_2(tmp_path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "p").mkdir()
    _save_palette_png(tmp_path / "m" / "a.png", np.zeros((4, 4), dtype=np.uint8))
    np.save(tmp_path / "p" / "b.npy", np.full((2, 4, 4), 0.5, dtype=np.float32))
    result = _invoke(*_scan_args(tmp_path / "m", tmp_path / "p", tmp_path / "out", "--skip-bad"))
    assert result.exit_code == 2
    assert "no usable item is left after skipping" in result.output
    assert "a.png: this mask has no probability file" in result.output
    assert "b.npy: these probabilities have no mask" in result.output


def test_bad_values_found_while_reading_exit_2_and_name_the_file(tmp_path) -> None:
    labels, logits16 = _dataset(12, n=3)
    logits16[2, 1, 4, 5] = np.nan
    masks, probs = _write_voc_like(tmp_path, labels, logits16)
    out = tmp_path / "out"
    result = _invoke(*_scan_args(masks, probs, out, "--ignore-index", "255", "--from-logits"))
    assert result.exit_code == 2, result.output
    assert "input problems, nothing was written" in result.output
    assert f"{probs / 'img_02.npz'}: expected finite logits; got nan" in result.output
    assert "row 4, column 5" in result.output
    for engine_words in ("batch", "LabelAudit", "image 2", "Traceback"):
        assert engine_words not in result.output  # the file names the item
    assert _files(out) == {}
    assert not out.exists()


def test_dataset_error_from_run_scan_lists_problems(tmp_path) -> None:
    masks, probs, expected = _broken_folder(tmp_path)
    with pytest.raises(DatasetError) as info:
        run_scan(masks, probs, tmp_path / "out", ignore_index=VOID, verbose=False)
    assert sorted(p.stem for p in info.value.problems) == sorted(expected)
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------ help, demo, real process


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], ["Usage: segaudit", "scan", "evaluate", "demo"]),
        (
            ["scan"],
            [
                "Usage: segaudit scan [OPTIONS] MASKS_DIR PROBS_DIR",
                "--ignore-index",
                "--from-logits",
                "--layout [KHW|HWK]",
                "--skip-bad",
                "--out",
                "--filter-by [self_confidence|confident_regions]",
                "--score-method [softmin|num_pixel_issues|region_fraction]",
            ],
        ),
        (
            ["evaluate"],
            [
                "Usage: segaudit evaluate [OPTIONS] MASKS_DIR PROBS_DIR",
                "--kinds",
                "--rate",
                "--seed",
                "--classes",
                "--ignore-index",
                "--from-logits",
                "--layout [KHW|HWK]",
                "--background",
            ],
        ),
        (["demo"], ["Usage: segaudit demo [OPTIONS]", "--images", "--seed", "--out"]),
    ],
)
def test_help(args: list[str], expected: list[str]) -> None:
    for flag in ("--help", "-h"):
        result = CliRunner().invoke(cli, [*args, flag], prog_name="segaudit")
        assert result.exit_code == 0, result.output
        for text in expected:
            assert text in result.output


def test_demo(tmp_path) -> None:
    out = tmp_path / "demo"
    result = _invoke("demo", "--out", out, "--images", "6", "--quiet")
    match = re.search(r"precision (\d\.\d{3}), recall (\d\.\d{3})", result.output)
    assert match, result.output
    precision, recall = (float(v) for v in match.groups())
    assert 0.5 < precision <= 1.0
    assert 0.3 < recall <= 1.0
    assert _summary(result.output)["images"] == "6"
    assert len(list((out / "sample" / "masks").glob("*.png"))) == 6
    assert (out / "scan" / "report.html").exists()  # the scan's own folder, apart from its inputs
    assert not (out / "report.html").exists()
    assert result.exit_code == 0, result.output
    assert (out / "top_issues.png").exists()


def _run_module(*args, cwd: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [sys.executable, "-m", "segaudit", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_python_m_segaudit_in_a_fresh_interpreter(tmp_path) -> None:
    labels, logits16 = _dataset(13, n=3)
    masks, probs = _write_voc_like(tmp_path, labels, logits16)
    done = _run_module(
        "scan",
        masks,
        probs,
        "--out",
        "audit",
        "--ignore-index",
        "255",
        "--from-logits",
        "--quiet",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    mask = segaudit.find_label_issues(
        labels,
        logits16,
        ignore_index=VOID,
        from_logits=True,
        verbose=False,
        filter_by=RECOMMENDED_FILTER,
    )
    assert _summary(done.stdout)["flagged pixels"] == str(int(mask.sum()))
    images = _read_csv(tmp_path / "audit" / "images.csv").set_index("image")
    np.testing.assert_array_equal(images.loc[_stems(3), "num_pixel_issues"], mask.sum(axis=(1, 2)))
    assert (tmp_path / "audit" / "report.html").exists()
    bad = _run_module("scan", masks, cwd=tmp_path)
    assert bad.returncode == 2
    assert "Missing argument 'PROBS_DIR'" in bad.stderr


def test_filter_by_self_confidence_reproduces_the_reference_outputs(tmp_path) -> None:
    """``--filter-by self_confidence``: the masks of the API's default, LabelAudit's softmin."""
    labels, logits16 = _dataset(14)
    masks, probs = _write_voc_like(tmp_path, labels, logits16)
    out = tmp_path / "out"
    args = ("--ignore-index", "255", "--from-logits", "--filter-by", "self_confidence")
    result = _invoke(*_scan_args(masks, probs, out, *args))
    assert result.exit_code == 0, result.output
    reference = segaudit.find_label_issues(
        labels, logits16, ignore_index=VOID, from_logits=True, verbose=False
    )
    with segaudit.LabelAudit(K, ignore_index=VOID, from_logits=True) as audit:
        audit.update(labels, logits16)
        softmin = audit.image_scores()
    images = _read_csv(out / "images.csv").set_index("image").loc[_stems(5)]
    np.testing.assert_array_equal(images["score"], softmin)
    np.testing.assert_array_equal(images["num_pixel_issues"], reference.sum(axis=(1, 2)))
    assert set(images["method"]) == {"softmin"}
    assert reference.any()
    for stem, expected in zip(_stems(5), reference, strict=True):
        path = out / "masks" / f"{stem}.png"
        if expected.any():
            with Image.open(path) as img:
                np.testing.assert_array_equal(np.asarray(img) > 0, expected)
        else:
            assert not path.exists()
    summary = _summary(result.output)
    assert (summary["filter by"], summary["image scores"]) == ("self_confidence", "softmin")


def test_score_method_overrides_the_detectors_scores(tmp_path) -> None:
    labels, logits16 = _dataset(15, n=3)
    masks, probs = _write_voc_like(tmp_path, labels, logits16)
    out = tmp_path / "out"
    result = _invoke(
        *_scan_args(masks, probs, out, "--from-logits", "--ignore-index", "255"),
        "--score-method",
        "num_pixel_issues",
    )
    assert result.exit_code == 0, result.output
    images = _read_csv(out / "images.csv")
    assert set(images["method"]) == {"num_pixel_issues"}
    np.testing.assert_allclose(images["score"], 1.0 - images["fraction_pixel_issues"])
    summary = _summary(result.output)
    assert (summary["filter by"], summary["image scores"]) == (
        RECOMMENDED_FILTER,
        "num_pixel_issues",
    )


def test_run_scan_refuses_an_unknown_filter_before_any_work(tmp_path) -> None:
    labels, logits16 = _dataset(16, n=2)
    masks, probs = _write_voc_like(tmp_path, labels, logits16)
    with pytest.raises(ValueError, match="The 'filter_by' parameter of run_scan must be one of"):
        run_scan(masks, probs, tmp_path / "out", filter_by="bogus", verbose=False)
    assert not (tmp_path / "out").exists()
    result = _invoke(*_scan_args(masks, probs, tmp_path / "out", "--filter-by", "bogus"))
    assert result.exit_code == 2
    assert "Invalid value for '--filter-by'" in result.output
