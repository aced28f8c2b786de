"""``segaudit evaluate``: injected errors on the user's folder, every detector scored, files out.

The command is driven for real (``CliRunner``) on a small folder of PNG masks and
``.npy`` probabilities built with `make_scenes`; its numbers are checked against
the array API (``inject_label_noise``, ``find_label_issues``,
``get_label_quality_scores``, ``score_detection``) on the same arrays.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import segaudit
from segaudit.cli import cli
from segaudit.cli._evaluate import EVALUATE_FILES, _image_seed, run_evaluate
from segaudit.cli._main import ERROR_KINDS as CLI_KINDS
from segaudit.cli._main import FILTER_CHOICES, SCORE_METHODS
from segaudit.cli._scan import score_method_for
from segaudit.engine._scores import METHODS
from segaudit.evaluate import ERROR_KINDS, inject_label_noise, make_scenes, score_detection
from segaudit.filter import FILTER_BY

PIL = pytest.importorskip("PIL")
pytest.importorskip("matplotlib")
from PIL import Image  # noqa: E402

VOID = 255
K = 5
METRICS = [
    "pixel_precision",
    "pixel_recall",
    "pixel_f1",
    "region_recall",
    "region_precision",
    "image_auprc",
]


@pytest.fixture(scope="module")
def scenes():
    """Clean masks (the truth) with a void frame, and a model that makes its own mistakes."""
    return make_scenes(
        8,
        height=40,
        width=48,
        num_classes=K,
        ignore_index=VOID,
        void_border=1,
        label_noise_rate=0.0,
        seed=5,
    )


def _write(root: Path, scenes) -> tuple[Path, Path]:
    masks, probs = root / "masks", root / "probs"
    masks.mkdir(parents=True)
    probs.mkdir()
    for i, (lab, p) in enumerate(zip(scenes.true_labels, scenes.pred_probs[0], strict=True)):
        Image.fromarray(lab.astype(np.uint8)).save(masks / f"s{i:02d}.png")
        np.save(probs / f"s{i:02d}.npy", p.astype(np.float32))
    return masks, probs


def _hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], prog_name="segaudit")


def _evaluate(masks, probs, out, *extra):
    return _invoke(
        "evaluate", masks, probs, "--out", out, "--ignore-index", VOID, "--quiet", *extra
    )


def _error_line(result) -> str:
    """The one line a refused command prints."""
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2, result.output
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: ")
    return lines[0]


def _oracle(scenes, *, kinds=ERROR_KINDS, rate=0.15, seed=0):
    """The evaluation on whole arrays: per-image injection, then the array API per detector."""
    labels = scenes.true_labels
    noisy = np.empty_like(labels)
    ids = np.zeros(labels.shape, dtype=np.int32)
    frames, offset = [], 0
    for i in range(labels.shape[0]):
        one = inject_label_noise(
            labels[i : i + 1],
            kinds=kinds,
            rate=rate,
            seed=_image_seed(seed, i),
            background=0,
            ignore_index=VOID,
            num_classes=K,
        )
        noisy[i] = one.labels[0]
        ids[i] = np.where(one.error_ids[0] > 0, one.error_ids[0] + offset, 0)
        errors = one.errors.assign(error=one.errors["error"] + offset, image=i)
        frames.append(errors)
        offset += len(errors)
    errors = pd.concat(frames, ignore_index=True)
    probs = scenes.pred_probs[0].astype(np.float32)
    out = {}
    for filter_by in FILTER_BY:
        options = {"ignore_index": VOID, "verbose": False}
        flags = segaudit.find_label_issues(noisy, probs, filter_by=filter_by, **options)
        method = score_method_for(filter_by)
        image_scores, _ = segaudit.get_label_quality_scores(noisy, probs, method=method, **options)
        out[filter_by] = score_detection(
            flags,
            ids > 0,
            image_scores=image_scores,
            errors=errors,
            error_ids=ids,
            ignore_mask=labels == VOID,
        )
    return errors, out


# ------------------------------------------------------------------ the whole run


def test_evaluate_writes_the_comparison_and_matches_the_array_api(scenes, tmp_path) -> None:
    masks, probs = _write(tmp_path / "data", scenes)
    before = _hashes(tmp_path / "data")
    out = tmp_path / "eval"
    result = _evaluate(masks, probs, out)
    assert result.exit_code == 0, result.output
    assert _hashes(tmp_path / "data") == before  # the user's files are only read

    for name in EVALUATE_FILES:
        assert (out / name).is_symlink() and (out / name).is_file()
        assert os.readlink(out / name) == f".segaudit/current/{name}"
    with Image.open(out / "precision_recall.png") as png:
        assert png.format == "PNG" and png.size[0] > 300

    comparison = pd.read_csv(out / "comparison.csv")
    overall = comparison[comparison["kind"] == "all"].set_index("detector")
    assert sorted(overall.index) == sorted(FILTER_BY)
    for filter_by in FILTER_BY:
        assert overall.loc[filter_by, "image_scores"] == score_method_for(filter_by)
    values = overall[METRICS].to_numpy()
    assert np.isfinite(values).all() and (values >= 0).all() and (values <= 1).all()
    kinds = set(comparison["kind"]) - {"all"}
    assert kinds and kinds <= set(ERROR_KINDS)

    expected_errors, expected = _oracle(scenes)
    errors = pd.read_csv(out / "errors.csv")
    assert errors["stem"].tolist() == [f"s{i:02d}" for i in expected_errors["image"]]
    pd.testing.assert_frame_equal(
        errors.drop(columns="stem"), expected_errors, check_dtype=False, check_like=True
    )
    for filter_by, scores in expected.items():
        row = overall.loc[filter_by]
        for metric in METRICS:
            assert row[metric] == pytest.approx(getattr(scores, metric), rel=1e-12), metric
        assert row["flagged_pixels"] == scores.flagged_pixels
        assert row["truth_pixels"] == scores.truth_pixels == int(errors["area"].sum())
        per_kind = scores.table()
        mine = comparison[comparison["detector"] == filter_by].set_index("kind")
        np.testing.assert_allclose(
            mine.loc[per_kind.index, "region_recall"], per_kind["region_recall"]
        )

    for filter_by in FILTER_BY:  # the printed table: one row per detector
        assert any(line.startswith(filter_by) for line in result.output.splitlines())
    assert "image AUPRC" in result.output and "Region recall by error kind" in result.output
    assert f"injected errors        {len(errors)} (" in result.output


def test_run_evaluate_returns_what_it_wrote(scenes, tmp_path) -> None:
    masks, probs = _write(tmp_path / "data", scenes)
    out = tmp_path / "eval"
    result = run_evaluate(
        masks,
        probs,
        out,
        kinds=["swap", "miss"],
        rate=0.5,
        seed=3,
        ignore_index=VOID,
        verbose=False,
    )
    assert sorted(p.name for p in result.files) == sorted(EVALUATE_FILES)
    assert set(result.errors["kind"]) <= {"swap", "miss"}
    assert result.run_dir == (out / ".segaudit" / "current").resolve()
    assert [d.filter_by for d in result.scores] == list(FILTER_BY)
    _, expected = _oracle(scenes, kinds=("swap", "miss"), rate=0.5, seed=3)
    for detector, scores in result.scores.items():
        assert scores.pixel_f1 == pytest.approx(expected[detector.filter_by].pixel_f1, rel=1e-12)
    # a second run replaces the first in one switch; nothing of the first is left
    again = run_evaluate(masks, probs, out, seed=4, ignore_index=VOID, verbose=False)
    assert sorted(os.listdir(out / ".segaudit" / "runs")) == [again.run_dir.name]
    assert pd.read_csv(out / "errors.csv")["error"].tolist() == again.errors["error"].tolist()


def test_different_sizes_and_hwk_layout(tmp_path) -> None:
    masks, probs = tmp_path / "m", tmp_path / "p"
    masks.mkdir()
    probs.mkdir()
    for i, (h, w) in enumerate([(24, 32), (32, 24), (20, 20)]):
        s = make_scenes(1, height=h, width=w, num_classes=4, label_noise_rate=0.0, seed=i)
        Image.fromarray(s.true_labels[0].astype(np.uint8)).save(masks / f"x{i}.png")
        np.save(probs / f"x{i}.npy", np.moveaxis(s.pred_probs[0][0], 0, -1))
    result = _invoke(
        "evaluate",
        masks,
        probs,
        "--out",
        tmp_path / "o",
        "--layout",
        "HWK",
        "--rate",
        "0.6",
        "--kinds",
        "swap, boundary",
        "--quiet",
    )
    assert result.exit_code == 0, result.output
    errors = pd.read_csv(tmp_path / "o" / "errors.csv")
    assert set(errors["stem"]) <= {"x0", "x1", "x2"} and len(errors) > 0
    assert set(errors["kind"]) <= {"swap", "boundary"}


# ------------------------------------------------------------------ refusals: exit 2, one line


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--kinds", "swap,bogus"), "The 'kinds' parameter of run_evaluate must be"),
        (("--kinds", ""), "The 'kinds' parameter of run_evaluate must be"),
        (("--kinds", "swap,swap"), "The 'kinds' parameter of run_evaluate must be"),
        (("--rate", "1.5"), "The 'rate' parameter of run_evaluate must be a number in [0, 1]"),
        (("--rate", "-0.1"), "The 'rate' parameter of run_evaluate must be a number in [0, 1]"),
        (("--rate", "nan"), "The 'rate' parameter of run_evaluate must be a number in [0, 1]"),
        (("--seed", "-1"), "The 'seed' parameter of run_evaluate must be a non-negative"),
        (("--background", "7"), "The 'background' parameter of run_evaluate must be a class id"),
        (("--rate", "0"), "Got no error drawn at rate=0.0"),
    ],
)
def test_bad_options_exit_2_with_one_line(scenes, tmp_path, extra, message) -> None:
    masks, probs = _write(tmp_path / "data", scenes)
    out = tmp_path / "eval"
    line = _error_line(_evaluate(masks, probs, out, *extra))
    assert message in line
    assert not out.exists()


def test_masks_with_nothing_to_corrupt_exit_2(tmp_path) -> None:
    masks, probs = tmp_path / "m", tmp_path / "p"
    masks.mkdir()
    probs.mkdir()
    for i in range(2):
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(masks / f"a{i}.png")
        p = np.zeros((3, 8, 8), np.float32)
        p[0] = 1.0
        np.save(probs / f"a{i}.npy", p)
    result = _invoke("evaluate", masks, probs, "--out", tmp_path / "o", "--quiet")
    line = _error_line(result)
    assert "labels with objects to corrupt" in line and "no object" in line
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("where", ["masks/sub", "masks", "."])
def test_out_overlapping_the_inputs_is_refused(scenes, tmp_path, where) -> None:
    masks, probs = _write(tmp_path / "data", scenes)
    before = _hashes(tmp_path / "data")
    out = tmp_path / "data" / where
    line = _error_line(_evaluate(masks, probs, out))
    assert "must be a folder apart from the input folders" in line
    assert _hashes(tmp_path / "data") == before
    assert not (masks / "sub").exists()


def test_scan_and_evaluate_do_not_share_a_folder(scenes, tmp_path) -> None:
    masks, probs = _write(tmp_path / "data", scenes)
    scanned = tmp_path / "scanned"
    assert (
        _invoke("scan", masks, probs, "--out", scanned, "--ignore-index", VOID, "--quiet").exit_code
        == 0
    )
    before = _hashes(scanned)
    line = _error_line(_evaluate(masks, probs, scanned))
    assert "holds results of another segaudit command" in line
    assert _hashes(scanned) == before
    evaluated = tmp_path / "evaluated"
    assert _evaluate(masks, probs, evaluated).exit_code == 0
    before = _hashes(evaluated)
    line = _error_line(_invoke("scan", masks, probs, "--out", evaluated, "--ignore-index", VOID))
    assert "holds results of another segaudit command" in line
    assert _hashes(evaluated) == before


def test_a_foreign_file_at_a_result_name_is_refused(scenes, tmp_path) -> None:
    masks, probs = _write(tmp_path / "data", scenes)
    out = tmp_path / "eval"
    out.mkdir()
    (out / "comparison.csv").write_text("mine\n")
    line = _error_line(_evaluate(masks, probs, out))
    assert "was not written by segaudit" in line
    assert (out / "comparison.csv").read_text() == "mine\n"


# ------------------------------------------------------------------ the options match the library


def test_command_choices_are_the_librarys() -> None:
    assert set(FILTER_CHOICES) == set(FILTER_BY)
    assert set(SCORE_METHODS) == set(METHODS)
    assert CLI_KINDS == ERROR_KINDS


def test_dataset_layout_options_read_the_masks_as_scan_does(scenes, tmp_path) -> None:
    """Nested ADE-style masks (0 = other, k + 1 = class k), a suffix and a split list.

    The comparison must equal the one on plain masks holding the mapped classes:
    `evaluate` reads a dataset's layout exactly as `scan` does.
    """
    plain_masks, probs = _write(tmp_path / "plain", scenes)
    raw_root = tmp_path / "ade" / "annotations" / "validation"
    stems = [f"s{i:02d}" for i in range(len(scenes.true_labels))]
    for stem, lab in zip(stems, scenes.true_labels, strict=True):
        raw = np.where(lab == VOID, 0, lab.astype(np.int64) + 1).astype(np.uint8)
        (raw_root / stem[:2]).mkdir(parents=True, exist_ok=True)
        Image.fromarray(raw).save(raw_root / stem[:2] / f"{stem}_seg.png")
    split = tmp_path / "val.txt"
    split.write_text("".join(f"s1/{s}\n" if s[1] == "1" else f"s0/{s}\n" for s in stems[:6]))
    probs_nested = tmp_path / "probs_nested"
    for stem in stems:
        (probs_nested / stem[:2]).mkdir(parents=True, exist_ok=True)
        (probs_nested / stem[:2] / f"{stem}.npy").write_bytes((probs / f"{stem}.npy").read_bytes())

    mapped = _evaluate(
        raw_root,
        probs_nested,
        tmp_path / "e1",
        "--reduce-zero-label",
        "--mask-suffix",
        "_seg",
        "--split",
        split,
        "--background",  # a label map implies none; the plain run's default is 0
        0,
    )
    assert mapped.exit_code == 0, mapped.output
    for stem in stems[6:]:  # outside the split: not read
        (plain_masks / f"{stem}.png").unlink()
        (probs / f"{stem}.npy").unlink()
    plain = _evaluate(plain_masks, probs, tmp_path / "e2")
    assert plain.exit_code == 0, plain.output
    a = pd.read_csv(tmp_path / "e1" / "comparison.csv")
    b = pd.read_csv(tmp_path / "e2" / "comparison.csv")
    pd.testing.assert_frame_equal(a, b)
    errors = pd.read_csv(tmp_path / "e1" / "errors.csv")
    assert len(errors) > 0
    assert set(errors["stem"]) <= {f"{s[:2]}/{s}" for s in stems[:6]}
