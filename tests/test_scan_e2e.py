"""End to end: real files in a temp folder through `segaudit scan`, against the array API."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from scipy.special import softmax

import segaudit
from segaudit._sample import make_sample_dataset
from segaudit.cli import cli, run_scan
from segaudit.cli._demo import write_sample_folder
from segaudit.cli._scan import score_method_for
from segaudit.filter import FILTER_BY, RECOMMENDED_FILTER

VOID = 255


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Six sample scenes written as palette PNGs (255 void) and float16 logits (.npz)."""
    data = make_sample_dataset(n_images=6, height=32, width=48, seed=3, void_border=1)
    root = tmp_path_factory.mktemp("data")
    paths = write_sample_folder(root, data)
    logits = data.logits.astype(np.float16)  # exactly what the files hold
    return data, paths, logits


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("filter_by", FILTER_BY)
def test_scan_matches_the_array_api(dataset, tmp_path, filter_by):
    data, paths, logits = dataset
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli,
        [
            "scan",
            str(paths["masks"]),
            str(paths["probs"]),
            "--out",
            str(out),
            "--images",
            str(paths["images"]),
            "--classes",
            str(paths["classes"]),
            "--ignore-index",
            "255",
            "--from-logits",
            "--quiet",
            "--filter-by",
            filter_by,
        ],
    )
    assert result.exit_code == 0, result.output
    options = {"ignore_index": VOID, "from_logits": True, "verbose": False}
    expected = segaudit.find_label_issues(data.labels, logits, filter_by=filter_by, **options)
    method = score_method_for(filter_by)
    scores, _ = segaudit.get_label_quality_scores(data.labels, logits, method=method, **options)
    rows = {r["image"]: r for r in read_csv(out / "images.csv")}
    assert list(read_csv(out / "images.csv")[0]) == [
        "image",
        "score",
        "num_pixel_issues",
        "fraction_pixel_issues",
        "method",
        "filter_by",
        "mask_path",
        "image_path",
    ]
    assert {r["method"] for r in rows.values()} == {method}
    assert {r["filter_by"] for r in rows.values()} == {filter_by}
    for stem, row in rows.items():  # the files' absolute paths
        assert Path(row["mask_path"]) == (paths["masks"] / f"{stem}.png").resolve()
        assert Path(row["image_path"]).parent == paths["images"].resolve()
        assert Path(row["image_path"]).stem == stem and Path(row["image_path"]).is_file()
    for i in range(data.labels.shape[0]):
        stem = f"scene_{i:03d}"
        row = rows[stem]
        assert int(row["num_pixel_issues"]) == int(expected[i].sum())
        assert float(row["score"]) == pytest.approx(scores[i], abs=1e-12)
        valid = int((data.labels[i] != VOID).sum())
        assert float(row["fraction_pixel_issues"]) == pytest.approx(expected[i].sum() / valid)
        png = out / "masks" / f"{stem}.png"
        if expected[i].any():
            np.testing.assert_array_equal(np.asarray(Image.open(png)) > 0, expected[i])
        else:
            assert not png.exists()
    regions = read_csv(out / "regions.csv")
    assert sum(int(r["area"]) for r in regions) == int(expected.sum())
    for r in regions:
        assert (r["mask_path"], r["image_path"]) == (
            rows[r["stem"]]["mask_path"],
            rows[r["stem"]]["image_path"],
        )
    severity = [float(r["severity"]) for r in regions]
    assert severity == sorted(severity, reverse=True)
    probs = softmax(logits.astype(np.float64), axis=1)
    frame = segaudit.find_issue_regions(
        expected, data.labels, probs, ignore_index=VOID, class_names=data.class_names
    )
    assert len(frame) == len(regions) > 0
    exact = [
        "region",
        "bbox_row0",
        "bbox_col0",
        "bbox_row1",
        "bbox_col1",
        "area",
        "given_label",
        "predicted_label",
        "given_name",
        "predicted_name",
        "issue_type",
    ]
    want = {(f"scene_{r['image']:03d}", r["region"]): r for r in frame.to_dict("records")}
    for row in regions:
        ref = want[row["stem"], int(row["region"])]
        assert int(row["image"]) == ref["image"]
        assert [str(ref[c]) for c in exact] == [row[c] for c in exact]
        assert float(row["severity"]) == pytest.approx(ref["severity"], rel=1e-6, abs=1e-9)
    confusions = read_csv(out / "confusions.csv")
    table = segaudit.common_label_issues(
        expected,
        data.labels,
        logits,
        top=1000,
        verbose=False,
        class_names=data.class_names,
        ignore_index=VOID,
    )
    assert [
        (r["given_label"], r["predicted_label"], int(r["num_pixel_issues"])) for r in confusions
    ] == list(table.itertuples(index=False, name=None))
    html = (out / "report.html").read_text()
    assert "scene_" in html and "data:image/png;base64," in html
    assert filter_by in html and method in html  # the summary names the method
    assert "Images with the lowest label quality" in result.output
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == [".segaudit"]
    assert sorted(p.name for p in (out / ".segaudit").iterdir()) == ["current", "lock", "runs"]


def test_hwk_layout_and_float32_npy(tmp_path):
    data = make_sample_dataset(n_images=3, height=16, width=24, seed=5)
    masks, probs = tmp_path / "m", tmp_path / "p"
    masks.mkdir()
    probs.mkdir()
    for i in range(3):
        Image.fromarray(data.labels[i]).save(masks / f"a{i}.png")
        np.save(probs / f"a{i}.npy", np.moveaxis(data.pred_probs[i], 0, -1))
    res = run_scan(masks, probs, tmp_path / "o", layout="HWK", verbose=False)
    expected = segaudit.find_label_issues(
        data.labels, data.pred_probs, filter_by=RECOMMENDED_FILTER, verbose=False
    )
    assert res.images.set_index("image").loc[
        [f"a{i}" for i in range(3)], "num_pixel_issues"
    ].tolist() == [int(m.sum()) for m in expected]


def test_no_issues_exits_zero(tmp_path):
    labels = np.zeros((2, 8, 8), dtype=np.uint8)
    masks, probs = tmp_path / "m", tmp_path / "p"
    masks.mkdir()
    probs.mkdir()
    for i in range(2):
        Image.fromarray(labels[i]).save(masks / f"x{i}.png")
        p = np.zeros((2, 8, 8), np.float32)
        p[0] = 1.0
        np.save(probs / f"x{i}.npy", p)
    result = CliRunner().invoke(
        cli, ["scan", str(masks), str(probs), "--out", str(tmp_path / "o"), "--quiet"]
    )
    assert result.exit_code == 0, result.output
    assert "flagged pixels         0" in result.output


def _broken_folder(tmp_path: Path) -> tuple[Path, Path]:
    masks, probs = tmp_path / "m", tmp_path / "p"
    masks.mkdir()
    probs.mkdir()
    for i in range(3):
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(masks / f"ok{i}.png")
        np.save(probs / f"ok{i}.npy", np.full((2, 8, 8), 0.5, np.float32))
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(masks / "orphan_mask.png")
    np.save(probs / "orphan_probs.npy", np.full((2, 8, 8), 0.5, np.float32))
    Image.fromarray(np.zeros((8, 9), np.uint8)).save(masks / "wide.png")
    np.save(probs / "wide.npy", np.full((2, 8, 8), 0.5, np.float32))
    (masks / "corrupt.png").write_bytes(b"\x89PNG not really")
    np.save(probs / "corrupt.npy", np.full((2, 8, 8), 0.5, np.float32))
    return masks, probs


def test_bad_input_lists_every_problem_and_exits_2(tmp_path):
    masks, probs = _broken_folder(tmp_path)
    out = tmp_path / "o"
    result = CliRunner().invoke(cli, ["scan", str(masks), str(probs), "--out", str(out)])
    assert result.exit_code == 2
    for name in ("orphan_mask.png", "orphan_probs.npy", "wide", "corrupt.png"):
        assert name in result.output
    assert not (out / "report.html").exists()


def test_skip_bad_processes_the_rest(tmp_path):
    masks, probs = _broken_folder(tmp_path)
    out = tmp_path / "o"
    result = CliRunner().invoke(
        cli, ["scan", str(masks), str(probs), "--out", str(out), "--skip-bad", "--quiet"]
    )
    assert result.exit_code == 0, result.output
    assert "skipped" in result.output and "corrupt.png" in result.output
    stems = [r["image"] for r in read_csv(out / "images.csv")]
    assert sorted(stems) == ["ok0", "ok1", "ok2"]


def test_bad_usage_exits_2(tmp_path):
    runner = CliRunner()
    assert runner.invoke(cli, ["scan"]).exit_code == 2
    assert runner.invoke(cli, ["scan", str(tmp_path), str(tmp_path), "--bogus"]).exit_code == 2
    assert (
        runner.invoke(
            cli, ["scan", str(tmp_path / "nope"), str(tmp_path), "--out", str(tmp_path / "o")]
        ).exit_code
        == 2
    )


def test_help():
    runner = CliRunner()
    for args in ([], ["scan"], ["evaluate"], ["demo"]):
        result = runner.invoke(cli, [*args, "--help"])
        assert result.exit_code == 0 and "Usage" in result.output


def test_failure_leaves_no_partial_report(dataset, tmp_path, monkeypatch):
    _, paths, _ = dataset
    import segaudit.report

    def explode(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(segaudit.report, "write_report", explode)
    out = tmp_path / "o"
    with pytest.raises(RuntimeError, match="disk full"):
        run_scan(
            paths["masks"], paths["probs"], out, ignore_index=VOID, from_logits=True, verbose=False
        )
    assert not out.exists()  # created by the run, removed again: no CSVs, masks or staging


def test_unexpected_failure_exits_1(dataset, tmp_path, monkeypatch):
    _, paths, _ = dataset
    import segaudit.report

    monkeypatch.setattr(segaudit.report, "write_report", lambda *a, **k: 1 / 0)
    result = CliRunner().invoke(
        cli,
        [
            "scan",
            str(paths["masks"]),
            str(paths["probs"]),
            "--out",
            str(tmp_path / "o"),
            "--ignore-index",
            "255",
            "--from-logits",
            "--quiet",
        ],
    )
    assert result.exit_code == 1


def test_console_module_runs_demo(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(Path(segaudit.__file__).parents[1])}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "segaudit",
            "demo",
            "--out",
            str(tmp_path / "d"),
            "--images",
            "4",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "precision" in proc.stdout and "recall" in proc.stdout
    assert (tmp_path / "d" / "scan" / "report.html").exists()
    assert (tmp_path / "d" / "top_issues.png").exists()
