"""The streaming API reaches the scan's outputs: ``update(..., ids=)`` and ``write_scan``.

``LabelAudit.write_scan`` fed from a model loop must write what ``segaudit scan``
writes on the same data (the CSVs, masks, ``summary.json``, exports); the scan
itself gains ``--export`` and ``summary.json``.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import segaudit
from segaudit import LabelAudit
from segaudit._sample import make_sample_dataset
from segaudit.cli import cli
from segaudit.cli._demo import write_sample_folder
from segaudit.cli._main import EXPORT_CHOICES, EXPORT_LABEL_BY
from segaudit.export import EXPORT_FORMATS, LABEL_BY

pytest.importorskip("PIL")
pytest.importorskip("scipy")
from PIL import Image

VOID = 255
CSVS = ("images.csv", "regions.csv", "confusions.csv", "per_class.csv")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    data = make_sample_dataset(n_images=6, height=32, width=40, seed=11, void_border=1)
    root = tmp_path_factory.mktemp("data")
    paths = write_sample_folder(root, data)
    stems = [f"scene_{i:03d}" for i in range(data.labels.shape[0])]
    logits = np.stack([np.load(paths["probs"] / f"{s}.npz")["logits"] for s in stems])
    labels = np.stack([np.asarray(Image.open(paths["masks"] / f"{s}.png")) for s in stems])
    return paths, stems, labels, logits


def _scan(paths, out, *extra):
    args = [
        "scan",
        paths["masks"],
        paths["probs"],
        "--out",
        out,
        "--images",
        paths["images"],
        "--classes",
        paths["classes"],
        "--ignore-index",
        VOID,
        "--from-logits",
        "--quiet",
        *extra,
    ]
    result = CliRunner().invoke(cli, [str(a) for a in args], prog_name="segaudit")
    assert result.exit_code == 0, result.output
    return result


def _untimed(text: str) -> str:
    """`text` with its ISO date-times (when an export was written) blanked."""
    return re.sub(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d:\d\d|Z)?", "<t>", text)


def _audit(labels, logits, stems, batch=4):
    audit = LabelAudit(
        logits.shape[1], ignore_index=VOID, from_logits=True, filter_by="confident_regions"
    )
    for start in range(0, len(stems), batch):
        stop = start + batch
        audit.update(labels[start:stop], logits[start:stop], ids=stems[start:stop])
    return audit


def test_write_scan_writes_what_the_scan_writes(folder, tmp_path) -> None:
    paths, stems, labels, logits = folder
    exports = ["--export", "coco", "--export", "cvat", "--export", "labelstudio"]
    _scan(paths, tmp_path / "cli", *exports)
    audit = _audit(labels, logits, stems)
    assert audit.ids == stems
    result = audit.write_scan(
        tmp_path / "api",
        images=paths["images"],
        classes=paths["classes"],
        exports=("coco", "cvat", "labelstudio"),
        verbose=False,
    )
    cli_out, api_out = tmp_path / "cli", tmp_path / "api"
    assert result.out_dir == api_out and result.files[-1] == api_out / "report.html"
    for name in CSVS:
        a = pd.read_csv(cli_out / name, keep_default_na=False)
        b = pd.read_csv(api_out / name, keep_default_na=False)
        if "mask_path" in a.columns:  # the stream has no mask files; the images are the same
            assert (b["mask_path"] == "").all() and (a["mask_path"] != "").all()
            a, b = a.drop(columns="mask_path"), b.drop(columns="mask_path")
        pd.testing.assert_frame_equal(a, b, check_dtype=False)
    masks = sorted(p.name for p in (cli_out / "masks").iterdir())
    assert masks and masks == sorted(p.name for p in (api_out / "masks").iterdir())
    for name in masks:
        a = np.asarray(Image.open(cli_out / "masks" / name))
        np.testing.assert_array_equal(a, np.asarray(Image.open(api_out / "masks" / name)))
    a = json.loads((cli_out / "summary.json").read_text())
    b = json.loads((api_out / "summary.json").read_text())
    assert a["figures"] == b["figures"] and a["thresholds"] == b["thresholds"]
    assert a["region_types"] == b["region_types"]
    # the exports name each image by its path in the images folder, from either side
    for name in ("coco.json", "labelstudio_tasks.json", "cvat.xml"):
        a, b = ((o / "exports" / name).read_text() for o in (cli_out, api_out))
        assert _untimed(a) == _untimed(b)  # the same but for when each was written
    coco = json.loads((cli_out / "exports" / "coco.json").read_text())
    assert {im["file_name"] for im in coco["images"]} <= {f"{s}.png" for s in stems}
    assert len(coco["annotations"]) == len(pd.read_csv(cli_out / "regions.csv"))


def test_summary_json_holds_the_figures_and_settings(folder, tmp_path) -> None:
    paths, stems, _labels, logits = folder
    result = _scan(paths, tmp_path / "out", "--min-area", "2", "--top", "3")
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    printed = [line.split() for line in result.output.splitlines()]
    assert summary["figures"]["images"] == len(stems)
    assert summary["figures"]["filter by"] == "confident_regions"
    assert ["images", str(len(stems))] in printed
    settings = summary["settings"]
    assert settings["min_area"] == 2 and settings["top"] == 3 and settings["ignore_index"] == VOID
    assert settings["from_logits"] is True and settings["exports"] == []
    assert settings["masks"] == str(paths["masks"].resolve())
    assert len(summary["thresholds"]) == logits.shape[1]
    regions = pd.read_csv(tmp_path / "out" / "regions.csv")
    assert (regions["area"] >= 2).all()
    assert sum(summary["region_types"].values()) == len(regions)
    assert not any((tmp_path / "out" / "exports").iterdir())  # no --export: an empty folder


def test_ids_are_checked_and_all_or_nothing(folder) -> None:
    _, _stems, labels, logits = folder
    audit = LabelAudit(logits.shape[1], ignore_index=VOID, from_logits=True)
    audit.update(labels[:2], logits[:2])
    assert audit.ids == ["000000", "000001"]  # default: the index
    audit.update(labels[2], logits[2], ids="one")  # one image, one id
    bad = [
        (["a"], "2 ids, one per image"),
        (["a", "a"], "unique ids"),
        (["one", "b"], "'one' again"),
        (["a", 3], "non-empty strings"),
        (["a", ""], "non-empty strings"),
    ]
    for ids, message in bad:
        with pytest.raises(ValueError, match=message):
            audit.update(labels[3:5], logits[3:5], ids=ids)
        assert audit.num_images == 3 and audit.ids == ["000000", "000001", "one"]
    audit.update(labels[3:5], logits[3:5], ids=("x/a", "x/b"))
    assert [img.id for img in audit.iter_images()] == ["000000", "000001", "one", "x/a", "x/b"]


@pytest.mark.parametrize("bad", ["../up", "/abs", "a//b", "a/./b", "a\\b"])
def test_ids_that_cannot_name_a_mask_file_are_refused(folder, tmp_path, bad) -> None:
    _, _, labels, logits = folder
    audit = LabelAudit(logits.shape[1], ignore_index=VOID, from_logits=True)
    audit.update(labels[:1], logits[:1], ids=[bad])
    with pytest.raises(ValueError, match="relative names"):
        audit.write_scan(tmp_path / "out", verbose=False)
    assert not (tmp_path / "out").exists()


def test_write_scan_options_are_checked(folder, tmp_path) -> None:
    paths, stems, labels, logits = folder
    empty = LabelAudit(logits.shape[1])
    with pytest.raises(ValueError, match="no batches yet"):
        empty.write_scan(tmp_path / "o1")
    audit = _audit(labels, logits, stems)
    cases = [
        ({"exports": ["pdf"]}, "exports"),
        ({"top": 0}, "top"),
        ({"classes": ["a", "b"]}, "classes"),
        ({"images": {"nope": "x.png"}}, "images"),
        ({"images": paths["images"] / "scene_000.png"}, "images"),
        ({"score_method": "mean"}, "score_method"),
    ]
    for options, name in cases:
        with pytest.raises(ValueError, match=name):
            audit.write_scan(tmp_path / "o2", verbose=False, **options)
    assert not (tmp_path / "o2").exists()
    with pytest.raises(ValueError, match="inside"):  # never into an input folder
        audit.write_scan(paths["images"] / "out", images=paths["images"], verbose=False)


def test_public_label_audit_is_the_stream_audit_plus_write_scan() -> None:
    from segaudit.drivers._stream import LabelAudit as StreamAudit

    assert issubclass(segaudit.LabelAudit, StreamAudit)
    assert segaudit.LabelAudit.__doc__ == StreamAudit.__doc__


def test_export_choices_are_the_librarys() -> None:
    assert EXPORT_CHOICES == EXPORT_FORMATS and EXPORT_LABEL_BY == LABEL_BY


@pytest.mark.parametrize("fail_at", [0, 1])
def test_a_regions_csv_error_in_its_thread_reaches_the_caller(
    folder, tmp_path, monkeypatch, fail_at
):
    """regions.csv is written in a thread beside the report: its error, before or after the
    report's regions are known, is raised by the scan, and no run is published."""
    from segaudit.cli import _scan, run_scan

    paths = folder[0]
    real = _scan.write_csv
    calls = []

    def failing(frame, fh, *, header=True):
        if "region" in frame.columns:  # regions.csv's chunks
            calls.append(len(frame))
            if len(calls) > fail_at:
                raise OSError(28, "No space left on device (test)")
        return real(frame, fh, header=header)

    monkeypatch.setattr(_scan, "write_csv", failing)
    if fail_at:  # a second chunk: the report's regions are picked from the first
        monkeypatch.setattr(_scan.RegionSpool, "ranked", _two_chunks(_scan.RegionSpool.ranked))
    out = tmp_path / "out"
    with pytest.raises(OSError, match="No space left"):
        run_scan(
            paths["masks"],
            paths["probs"],
            out,
            from_logits=True,
            ignore_index=VOID,
            verbose=False,
        )
    assert len(calls) == fail_at + 1
    assert not any((out / name).exists() for name in (*CSVS, "report.html", "summary.json"))


def _two_chunks(ranked):
    def split(self, names, *, chunk=1 << 16):
        return ranked(self, names, chunk=max(self.count // 2, 1))

    return split


def test_the_regions_stage_closes_the_images_it_reads_when_closed_early():
    from segaudit.cli._scan import _with_regions
    from segaudit.drivers._stream import AuditImage

    closed = []

    def images():
        try:
            for i in range(3):
                issues = np.zeros((4, 5), bool)
                issues[1, i] = True
                labels = np.zeros((4, 5), np.uint8)
                img = AuditImage(
                    i, labels, labels.astype(np.int16) + 1, np.zeros((4, 5)), issues, f"s{i}"
                )
                yield img, 0.5
        finally:
            closed.append(True)

    source = images()  # still referenced here: only an explicit close() ends it
    stage = _with_regions(source, 0, None, 1)
    img, softmin, flagged, regions = next(stage)
    assert (img.index, softmin, flagged) == (0, 0.5, 1)
    assert regions["area"].tolist() == [1] and regions["image"].tolist() == [0]
    stage.close()
    assert closed == [True]
