"""Several models (or folds) on the command line: ``--probs`` repeated, or a folder of sub-folders.

A small folder of PNG masks and three models' ``.npy`` probabilities; the scan's
masks are checked against ``find_label_issues(labels, [p1, p2, p3])`` on the
very arrays the files hold, and ``find_issue_regions`` against the combined array.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import segaudit
from conftest import make_dataset
from segaudit.cli import cli, run_scan
from segaudit.cli._evaluate import run_evaluate
from segaudit.io import DatasetError, model_folders, scan_folder
from segaudit.kernels._combine import combine_models

PIL = pytest.importorskip("PIL")
from PIL import Image  # noqa: E402

K, N, H, W = 3, 6, 16, 20
MODELS = ("model_a", "model_b", "model_c")


def _stems(n: int = N) -> list[str]:
    return [f"s{i:02d}" for i in range(n)]


def _arrays(seed: int = 1) -> tuple[np.ndarray, list[np.ndarray]]:
    """labels (N, H, W) with label noise, three models' float32 probabilities (N, K, H, W)."""
    labels, probs = make_dataset(seed, n=N, k=K, h=H, w=W, noise=0.15, strength=3.0)
    rng = np.random.default_rng(seed)
    models = []
    for _ in MODELS:
        noisy = probs * np.exp(0.6 * rng.normal(size=probs.shape))
        models.append((noisy / noisy.sum(axis=1, keepdims=True)).astype(np.float32))
    return labels, models


def _write(root: Path, labels: np.ndarray, models: list[np.ndarray]) -> tuple[Path, Path]:
    """masks/<stem>.png and probs/<model>/<stem>.npy."""
    masks, probs = root / "masks", root / "probs"
    masks.mkdir(parents=True)
    for stem, lab in zip(_stems(), labels, strict=True):
        Image.fromarray(lab.astype(np.uint8)).save(masks / f"{stem}.png")
    for name, arrays in zip(MODELS, models, strict=True):
        (probs / name).mkdir(parents=True)
        for stem, p in zip(_stems(), arrays, strict=True):
            np.save(probs / name / f"{stem}.npy", p)
    return masks, probs


def _invoke(*args: object):
    return CliRunner().invoke(cli, [str(a) for a in args], prog_name="segaudit")


def _flagged(out: Path) -> np.ndarray:
    found = np.zeros((N, H, W), bool)
    for i, stem in enumerate(_stems()):
        path = out / "masks" / f"{stem}.png"
        if path.exists():
            with Image.open(path) as png:
                found[i] = np.asarray(png) > 0
    return found


@pytest.fixture
def data(tmp_path):
    labels, models = _arrays()
    masks, probs = _write(tmp_path / "data", labels, models)
    return labels, models, masks, probs


# ------------------------------------------------------------------ the library


def test_find_issue_regions_takes_a_list_of_models() -> None:
    labels, models = _arrays()
    issues = segaudit.find_label_issues(labels, models, filter_by="confident_regions")
    assert issues.any()
    single = segaudit.find_issue_regions(issues, labels, models[0])
    pd.testing.assert_frame_equal(segaudit.find_issue_regions(issues, labels, [models[0]]), single)
    combined, _ = combine_models(models, from_logits=False)
    expected = segaudit.find_issue_regions(issues, labels, combined)
    for given in (models, tuple(models)):
        pd.testing.assert_frame_equal(segaudit.find_issue_regions(issues, labels, given), expected)


def test_find_issue_regions_refuses_bad_model_lists() -> None:
    labels, models = _arrays()
    issues = np.ones_like(labels, bool)
    with pytest.raises(ValueError, match="non-empty list of same-shape arrays"):
        segaudit.find_issue_regions(issues, labels, [])
    with pytest.raises(ValueError, match=r"shape \(6, 3, 16, 20\) at index 0 .* at index 1"):
        segaudit.find_issue_regions(issues, labels, [models[0], models[1][:, :, :, :10]])


def test_model_folders_rule(tmp_path) -> None:
    (tmp_path / "p" / "b").mkdir(parents=True)
    (tmp_path / "p" / "a").mkdir()
    (tmp_path / "p" / ".hidden").touch()
    assert model_folders(tmp_path / "p") == [tmp_path / "p" / "a", tmp_path / "p" / "b"]
    (tmp_path / "p" / "x.npy").touch()  # a file too: the folder is one model
    assert model_folders(tmp_path / "p") == [tmp_path / "p"]
    assert model_folders([tmp_path / "p", tmp_path / "p" / "a"]) == [
        tmp_path / "p",
        tmp_path / "p" / "a",
    ]


# ------------------------------------------------------------------ scan


@pytest.mark.parametrize("how", ["sub-folders", "repeated --probs"])
def test_scan_combines_the_models_like_the_array_api(data, tmp_path, how) -> None:
    labels, models, masks, probs = data
    out = tmp_path / "out"
    if how == "sub-folders":
        args = [masks, probs]
    else:
        args = [
            masks,
            probs / MODELS[0],
            "--probs",
            probs / MODELS[1],
            "--probs",
            probs / MODELS[2],
        ]
    result = _invoke("scan", *args, "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    expected = segaudit.find_label_issues(labels, models, filter_by="confident_regions")
    assert expected.any()
    np.testing.assert_array_equal(_flagged(out), expected)
    assert any(line.split() == ["models", "3"] for line in result.output.splitlines())
    assert "models" in (out / "report.html").read_text(encoding="utf-8")


def test_run_scan_and_scan_folder_read_each_model(data, tmp_path) -> None:
    _labels, models, masks, probs = data
    dataset = scan_folder(masks, probs).raise_if_problems()
    assert dataset.num_models == 3
    item = dataset.load(2)
    assert [p.parent.name for p in dataset.items[2].probs_paths] == list(MODELS)
    for m, arrays in enumerate(models):
        np.testing.assert_array_equal(item.probs[m], arrays[2])
    result = run_scan(masks, [probs / m for m in MODELS], tmp_path / "out", verbose=False)
    assert result.summary["models"] == 3
    one = run_scan(masks, probs / MODELS[0], tmp_path / "one", verbose=False)
    assert one.summary["models"] == 1


def test_missing_or_misshapen_model_file_is_reported_up_front(data, tmp_path) -> None:
    labels, models, masks, probs = data
    (probs / MODELS[1] / "s01.npy").unlink()
    np.save(probs / MODELS[2] / "s03.npy", models[2][3][:, :, :10])
    out = tmp_path / "out"
    result = _invoke("scan", masks, probs, "--out", out, "--quiet")
    assert result.exit_code == 2, result.output
    assert "nothing was written" in result.output
    assert str(probs / MODELS[1] / "s01") in result.output  # the missing file, expected
    assert str(probs / MODELS[2] / "s03.npy") in result.output  # the file at fault
    assert "expected size 16x20" in result.output
    assert not (out / "images.csv").exists()

    result = _invoke("scan", masks, probs, "--out", out, "--quiet", "--skip-bad")
    assert result.exit_code == 0, result.output
    images = pd.read_csv(out / "images.csv")
    assert sorted(images["image"]) == ["s00", "s02", "s04", "s05"]
    assert result.output.count("skipped: ") == 2
    kept = [0, 2, 4, 5]
    expected = segaudit.find_label_issues(
        labels[kept], [m[kept] for m in models], filter_by="confident_regions"
    )
    np.testing.assert_array_equal(_flagged(out)[kept], expected)


def test_a_model_without_masks_is_named(data, tmp_path) -> None:
    _labels, models, masks, probs = data
    np.save(probs / MODELS[0] / "extra.npy", models[0][0])
    with pytest.raises(DatasetError) as err:
        scan_folder(masks, probs).raise_if_problems()
    problems = err.value.problems
    assert {p.path for p in problems} == {probs / MODELS[0] / "extra.npy"}
    messages = [p.message for p in problems]
    assert sum("have no mask" in m for m in messages) == 1
    for name in MODELS[1:]:  # the other two models lack it
        assert any(f"expected {probs / name / 'extra'}.npy" in m for m in messages)


@pytest.mark.parametrize("where", ["inside a sub-folder model", "inside a --probs folder"])
def test_out_inside_a_model_folder_is_refused(data, tmp_path, where) -> None:
    _labels, _models, masks, probs = data
    if where == "inside a sub-folder model":
        args = [masks, probs]
    else:
        args = [masks, probs / MODELS[0], "--probs", probs / MODELS[1]]
    out = probs / MODELS[1] / "out"
    result = _invoke("scan", *args, "--out", out, "--quiet")
    assert result.exit_code == 2, result.output
    assert "lies inside" in result.output and not out.exists()
    result = _invoke("evaluate", *args, "--out", out, "--quiet")
    assert result.exit_code == 2, result.output
    assert "lies inside" in result.output and not out.exists()


# ------------------------------------------------------------------ evaluate


def test_evaluate_with_several_models(data, tmp_path) -> None:
    _labels, models, masks, probs = data
    pytest.importorskip("matplotlib")
    out = tmp_path / "eval"
    result = _invoke("evaluate", masks, probs, "--out", out, "--quiet", "--rate", "0.5")
    assert result.exit_code == 0, result.output
    assert "3 models combined" in result.output
    repeated = _invoke(
        "evaluate",
        masks,
        probs / MODELS[0],
        "--probs",
        probs / MODELS[1],
        "--probs",
        probs / MODELS[2],
        "--out",
        tmp_path / "eval2",
        "--quiet",
        "--rate",
        "0.5",
    )
    assert repeated.exit_code == 0, repeated.output
    comparison = pd.read_csv(out / "comparison.csv")
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "eval2" / "comparison.csv"), comparison)

    # the same as one model whose probabilities are the combined ones
    combined, _ = combine_models(models, from_logits=False)
    folder = tmp_path / "combined"
    folder.mkdir()
    for stem, p in zip(_stems(), combined, strict=True):
        np.save(folder / f"{stem}.npy", p)
    one = run_evaluate(masks, folder, tmp_path / "eval3", rate=0.5, verbose=False)
    assert one.num_models == 1
    several = run_evaluate(masks, probs, tmp_path / "eval4", rate=0.5, verbose=False)
    assert several.num_models == 3
    pd.testing.assert_frame_equal(several.comparison, one.comparison)
