"""Exports for the review round-trip, each loaded back with the target tool's own library.

Every decoded region is checked against facts that do not come from the
exporter: it is one 8-connected piece, lies inside the issue mask, has the
area, box and majority classes that ``regions.csv`` gives, and the regions of
an image tile its issue mask exactly.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import ndimage

import segaudit
from segaudit._sample import make_sample_dataset
from segaudit.cli import run_scan
from segaudit.cli._demo import write_sample_folder
from segaudit.export import (
    EXPORT_FILES,
    EXPORT_FORMATS,
    ReviewSet,
    export_scan,
    from_arrays,
    from_scan,
    region_map,
    write_exports,
    write_labelstudio,
)
from segaudit.export._rle import box_runs, coco_rle, labelstudio_rle
from segaudit.filter import RECOMMENDED_FILTER
from segaudit.io._csv import write_csv
from segaudit.regions._image import image_regions

VOID = 255
BBOX = ("bbox_row0", "bbox_col0", "bbox_row1", "bbox_col1")
# pycocotools' decoder (2.0.11) still calls __array__ the numpy 1 way
PYCOCOTOOLS_NUMPY2 = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)


@pytest.fixture(scope="module")
def scan(tmp_path_factory):
    """A real scan folder of five sample scenes (void border, float16 logits)."""
    data = make_sample_dataset(n_images=5, height=40, width=56, seed=7, void_border=1)
    root = tmp_path_factory.mktemp("data")
    paths = write_sample_folder(root, data)
    out = root / "scan"
    run_scan(
        paths["masks"],
        paths["probs"],
        out,
        images_dir=paths["images"],
        classes=paths["classes"],
        ignore_index=VOID,
        from_logits=True,
        verbose=False,
    )
    predicted = data.logits.astype(np.float16).astype(np.float32).argmax(axis=1)
    with open(out / "regions.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) >= 10, "the sample should give enough regions to test"
    return data, paths, out, predicted, rows


def _issues(out: Path, stem: str) -> np.ndarray:
    return np.asarray(Image.open(out / "masks" / f"{stem}.png")) > 0


def _majority(values: np.ndarray) -> int:
    ids, counts = np.unique(values, return_counts=True)
    return int(ids[np.argmax(counts)])  # ties: the smallest id, as segaudit breaks them


def check_regions(decoded, scan) -> None:
    """`decoded` maps (stem, region) to a full-image mask read back by a tool's library."""
    data, _, out, predicted, rows = scan
    assert sorted(decoded) == sorted((r["stem"], int(r["region"])) for r in rows)
    union: dict[str, np.ndarray] = {}
    for row in rows:
        stem, i = row["stem"], int(row["image"])
        mask = decoded[stem, int(row["region"])]
        issues = _issues(out, stem)
        assert mask.shape == issues.shape
        assert not (mask & ~issues).any(), "a region pixel that is not flagged"
        assert ndimage.label(mask, structure=np.ones((3, 3)))[1] == 1, "not one piece"
        assert int(mask.sum()) == int(row["area"])
        rr, cc = np.nonzero(mask)
        box = (rr.min(), cc.min(), rr.max() + 1, cc.max() + 1)
        assert box == tuple(int(row[c]) for c in BBOX)
        assert _majority(data.labels[i][mask]) == int(row["given_label"])
        assert _majority(predicted[i][mask]) == int(row["predicted_label"])
        seen = union.setdefault(stem, np.zeros_like(mask))
        assert not (seen & mask).any(), "two regions share a pixel"
        seen |= mask
    for stem, seen in union.items():
        np.testing.assert_array_equal(seen, _issues(out, stem))


def _attributes_match(attrs: dict, row: dict) -> None:
    assert attrs["issue_type"] == row["issue_type"]
    assert attrs["given_class"] == row["given_name"]
    assert attrs["predicted_class"] == row["predicted_name"]
    assert float(attrs["severity"]) == pytest.approx(float(row["severity"]), rel=1e-5)


# --- the pieces ----------------------------------------------------------------------------


@pytest.mark.parametrize("connectivity", [1, 2])
def test_region_map_numbers_regions_as_find_issue_regions_does(connectivity):
    rng = np.random.default_rng(connectivity)
    labels = rng.integers(0, 3, (30, 40))
    labels[:3] = VOID
    issues = rng.random((30, 40)) < 0.3
    predicted = (labels + 1) % 3
    table = image_regions(
        issues, labels, predicted, ignore_index=VOID, connectivity=connectivity, min_area=3
    )
    ids = region_map(issues, labels, ignore_index=VOID, connectivity=connectivity)
    assert 0 < len(table) < ids.max()  # some regions were dropped by min_area; ids are kept
    assert not ids[:3].any()  # void pixels are never in a region
    for rec in table:
        rr, cc = np.nonzero(ids == rec["region"])
        assert rr.size == rec["area"]
        box = (rr.min(), cc.min(), rr.max() + 1, cc.max() + 1)
        assert box == tuple(rec[c] for c in BBOX)


def _cvat_decode(rle: str, left: int, top: int, width: int, height: int, shape) -> np.ndarray:
    """Decode a CVAT ``<mask>`` as CVAT documents it: 0/1 runs over the box, row-major."""
    counts = [int(c) for c in rle.split(",")]
    assert sum(counts) == width * height
    box = np.repeat(np.arange(len(counts)) % 2 == 1, counts).reshape(height, width)
    out = np.zeros(shape, dtype=bool)
    out[top : top + height, left : left + width] = box
    return out


@PYCOCOTOOLS_NUMPY2
def test_encoders_agree_with_the_tools_own_codecs():
    mask_utils = pytest.importorskip("pycocotools.mask", reason="pycocotools is not installed")
    brush = pytest.importorskip(
        "label_studio_converter.brush", reason="label-studio-converter is not installed"
    )
    rng = np.random.default_rng(0)
    for _ in range(100):
        h, w = (int(v) for v in rng.integers(1, 30, 2))
        r0, c0 = int(rng.integers(0, h)), int(rng.integers(0, w))
        r1, c1 = int(rng.integers(r0 + 1, h + 1)), int(rng.integers(c0 + 1, w + 1))
        full = np.zeros((h, w), bool)
        full[r0:r1, c0:c1] = rng.random((r1 - r0, c1 - c0)) < rng.random()
        crop = full[r0:r1, c0:c1]
        ours = coco_rle(crop, r0, c0, h, w)
        ref = mask_utils.encode(np.asfortranarray(full.astype(np.uint8)))
        assert ours["counts"] == ref["counts"].decode()  # byte for byte as pycocotools writes it
        back = mask_utils.decode({"size": ours["size"], "counts": ours["counts"].encode()})
        np.testing.assert_array_equal(back.astype(bool), full)
        rgba = brush.decode_rle(labelstudio_rle(crop, r0, c0, h, w)).reshape(h, w, 4)
        np.testing.assert_array_equal(rgba, np.repeat(full[..., None] * 255, 4, axis=2))
        rle = ", ".join(str(c) for c in box_runs(crop))
        np.testing.assert_array_equal(_cvat_decode(rle, c0, r0, c1 - c0, r1 - r0, (h, w)), full)
    # runs longer than Label Studio's widest length field are split
    big = np.ones((200, 400), bool)
    assert brush.decode_rle(labelstudio_rle(big, 0, 0, 200, 400)).min() == 255


# --- round trips from a scan folder --------------------------------------------------------


@pytest.fixture(scope="module")
def exported(scan, tmp_path_factory):
    _, _, out, _, _ = scan
    target = tmp_path_factory.mktemp("exports")
    files = export_scan(out, target, EXPORT_FORMATS)
    assert [p.name for p in files] == [n for f in EXPORT_FORMATS for n in EXPORT_FILES[f]]
    assert not [p for p in target.iterdir() if p.name.startswith(".")]  # no temporary left
    return target


@PYCOCOTOOLS_NUMPY2
def test_coco_loads_in_pycocotools_with_the_same_regions(scan, exported):
    coco_api = pytest.importorskip("pycocotools.coco", reason="pycocotools is not installed")
    data, _, _, _, rows = scan
    coco = coco_api.COCO(str(exported / "coco.json"))
    names = {c["id"]: c["name"] for c in coco.loadCats(coco.getCatIds())}
    assert list(names.values()) == list(data.class_names)
    by_key = {(r["stem"], int(r["region"])): r for r in rows}
    decoded = {}
    for ann in coco.loadAnns(coco.getAnnIds()):
        image = coco.loadImgs(ann["image_id"])[0]
        key = (image["segaudit_stem"], ann["attributes"]["region"])
        row = by_key[key]
        assert image["file_name"] == row["image_path"]  # the scan's CSVs carry the paths
        assert image["file_name"].endswith(f"/images/{key[0]}.png")
        assert names[ann["category_id"]] == row["predicted_name"]
        assert ann["area"] == int(row["area"])
        x, y, w, h = ann["bbox"]
        assert (y, x, y + h, x + w) == tuple(int(row[c]) for c in BBOX)
        _attributes_match(ann["attributes"], row)
        decoded[key] = coco.annToMask(ann).astype(bool)
    check_regions(decoded, scan)


def test_labelstudio_tasks_convert_back_to_the_same_regions(scan, exported, tmp_path):
    converter = pytest.importorskip(
        "label_studio_converter", reason="label-studio-converter is not installed"
    )
    _, _, _, _, rows = scan
    tasks = json.loads((exported / "labelstudio_tasks.json").read_text())
    config = (exported / "labelstudio_config.xml").read_text()
    by_key = {(r["stem"], int(r["region"])): r for r in rows}
    # a reviewer accepts every prediction: Label Studio exports them as annotations
    for number, task in enumerate(tasks, start=1):
        task["id"] = number
        task["annotations"] = [{"id": number, "result": task["predictions"][0]["result"]}]
    accepted = tmp_path / "export.json"
    accepted.write_text(json.dumps(tasks))
    out = tmp_path / "numpy"
    out.mkdir()
    convert = converter.Converter(config=config, project_dir=str(tmp_path))
    convert.convert(str(accepted), str(out), "BRUSH_TO_NUMPY", is_dir=False)
    decoded = {}
    for task in tasks:
        stem = task["data"]["segaudit_stem"]
        assert task["data"]["image"].endswith(f"/images/{stem}.png")  # images.csv's path
        counters: dict[str, int] = {}
        for result in task["predictions"][0]["result"]:
            key = (stem, result["meta"]["segaudit"]["region"])
            label = result["value"]["brushlabels"][0]
            assert label == by_key[key]["predicted_name"]
            _attributes_match(result["meta"]["segaudit"], by_key[key])
            n = counters.get(label, 0)
            counters[label] = n + 1
            name = f"task-{task['id']}-annotation-{task['id']}-by--label-{label}-{n}.npy"
            decoded[key] = np.load(out / name) > 0
    assert len(list(out.iterdir())) == len(rows)
    check_regions(decoded, scan)


def test_cvat_xml_decodes_to_the_same_regions(scan, exported):
    data, _, _, _, rows = scan
    root = ET.parse(exported / "cvat.xml").getroot()
    assert root.findtext("version") == "1.1"
    labels = root.findall("meta/task/labels/label")
    assert [lab.findtext("name") for lab in labels] == list(data.class_names)
    declared = {a.findtext("name") for a in labels[0].findall("attributes/attribute")}
    raw = json.loads((exported / "cvat_labels.json").read_text())  # for CVAT's task creation
    assert [spec["name"] for spec in raw] == list(data.class_names)
    assert {a["name"] for a in raw[0]["attributes"]} == declared
    assert [spec["color"] for spec in raw] == [lab.findtext("color") for lab in labels]
    by_key = {(r["stem"], int(r["region"])): r for r in rows}
    decoded = {}
    for image in root.findall("image"):
        stem = Path(image.get("name")).stem
        shape = (int(image.get("height")), int(image.get("width")))
        for mask in image.findall("mask"):
            attrs = {a.get("name"): a.text for a in mask.findall("attribute")}
            assert set(attrs) <= declared
            key = (stem, int(attrs["region"]))
            assert mask.get("label") == by_key[key]["predicted_name"]
            _attributes_match(attrs, by_key[key])
            box = (int(mask.get(k)) for k in ("left", "top", "width", "height"))
            decoded[key] = _cvat_decode(mask.get("rle"), *box, shape)
    check_regions(decoded, scan)


def test_label_by_given_files_regions_under_the_given_class(scan, tmp_path):
    _, _, out, _, rows = scan
    (path,) = write_exports(from_scan(out), ["coco"], tmp_path, label_by="given")
    doc = json.loads(path.read_text())
    names = {c["id"]: c["name"] for c in doc["categories"]}
    given = sorted((r["stem"], int(r["region"]), r["given_name"]) for r in rows)
    images = {im["id"]: im["segaudit_stem"] for im in doc["images"]}
    got = [
        (images[a["image_id"]], a["attributes"]["region"], names[a["category_id"]])
        for a in doc["annotations"]
    ]
    assert sorted(got) == given


# --- the array API and the scan folder give the same export ----------------------------------


def test_from_arrays_matches_from_scan(scan):
    data, _, out, _, rows = scan
    logits = data.logits.astype(np.float16)
    options = {"ignore_index": VOID, "from_logits": True, "verbose": False}
    issues = segaudit.find_label_issues(
        data.labels, logits, filter_by=RECOMMENDED_FILTER, **options
    )  # the scan's detector
    probs = np.exp(logits.astype(np.float64))
    probs /= probs.sum(axis=1, keepdims=True)
    table = segaudit.find_issue_regions(
        issues, data.labels, probs, ignore_index=VOID, class_names=data.class_names
    )
    stems = [f"scene_{i:03d}" for i in range(len(issues))]
    arrays = from_arrays(issues, table, labels=data.labels, ignore_index=VOID, stems=stems)
    assert arrays.class_names == tuple(data.class_names)

    def regions(review: ReviewSet) -> dict:
        return {
            (im.stem, r.region): (r.box, r.issue_type, r.mask.tobytes())
            for im in review
            for r in im.regions
        }

    from_folder = regions(from_scan(out))
    assert len(from_folder) == len(rows)
    assert regions(arrays) == from_folder
    # images come in the order of their most severe region
    first = list(dict.fromkeys(r["stem"] for r in rows))
    assert [im.stem for im in from_scan(out)] == first


def test_a_table_from_another_mask_is_refused():
    issues = np.zeros((1, 6, 6), bool)
    issues[0, 1:3, 1:3] = True
    labels = np.zeros((1, 6, 6), int)
    table = segaudit.find_issue_regions(issues, labels, predicted=labels + issues)
    other = np.zeros_like(issues)
    other[0, 1:3, 1:2] = True  # region 1 has 2 pixels here, 4 in the table
    with pytest.raises(ValueError, match=r"region 1 has area 4 .* but 2 pixels"):
        list(from_arrays(other, table))


def test_bad_options_name_what_was_expected(scan, tmp_path):
    review = from_scan(scan[2])
    with pytest.raises(ValueError, match="'formats' parameter of write_exports"):
        write_exports(review, ["yolo"], tmp_path)
    with pytest.raises(ValueError, match="each format once"):
        write_exports(review, ["coco", "coco"], tmp_path)
    with pytest.raises(ValueError, match="'label_by' parameter"):
        write_exports(review, ["cvat"], tmp_path, label_by="truth")
    table = segaudit.find_issue_regions(
        np.ones((1, 2, 2), bool), np.zeros((1, 2, 2), int), predicted=np.full((1, 2, 2), 3)
    )
    with pytest.raises(ValueError, match=r"'class_names' .*\(0\.\.1\)\. Got class id 3"):
        from_arrays(np.ones((1, 2, 2), bool), table, class_names=["a", "b"])
    with pytest.raises(FileNotFoundError, match=r"regions\.csv"):
        from_scan(tmp_path)
    assert not list(tmp_path.iterdir())


# --- FiftyOne ------------------------------------------------------------------------------


FRESH_CHILD = "SEGAUDIT_TEST_FRESH_CHILD"


def _in_a_fresh_process(name: str) -> None:
    """Run test `name` of this file in a new interpreter; skip or fail as it does.

    FiftyOne's dependency voxel51-eta reads its own package metadata in a way
    that fails (``KeyError: 'author'``) once ``importlib_metadata`` >= 8 is
    imported in the process, as dask.distributed does earlier in the suite.
    """
    command = [sys.executable, "-m", "pytest", f"{__file__}::{name}", "-q", "-rs"]
    env = {**os.environ, FRESH_CHILD: "1"}
    child = subprocess.run(
        [*command, "-p", "no:cacheprovider"], capture_output=True, text=True, timeout=900, env=env
    )
    output = child.stdout + child.stderr
    assert child.returncode == 0, output[-4000:]
    skipped = [line for line in output.splitlines() if line.startswith("SKIPPED")]
    if skipped:
        pytest.skip(f"in a fresh process: {skipped[0]}")
    assert " passed" in output, output[-4000:]


def _fiftyone():
    """Import fiftyone, or skip saying why."""
    try:
        import fiftyone as fo
    except ImportError as err:
        pytest.skip(f"fiftyone cannot be imported here ({err}); pip install 'segaudit[fiftyone]'")
    try:
        fo.Dataset().delete()  # starts the bundled MongoDB
    except Exception as err:
        pytest.skip(f"fiftyone is installed but its database does not start here: {err}")
    return fo


# FiftyOne's own calls into its dependencies (psutil, strawberry, pymongo) warn
@pytest.mark.filterwarnings("ignore::DeprecationWarning:fiftyone")
@pytest.mark.filterwarnings("ignore:No uuidRepresentation is specified:DeprecationWarning")
def test_fiftyone_dataset_from_scan_has_the_regions(scan, tmp_path, monkeypatch):
    fresh = os.environ.get(FRESH_CHILD) == "1"
    if not fresh and "eta" not in sys.modules and "importlib_metadata" in sys.modules:
        _in_a_fresh_process("test_fiftyone_dataset_from_scan_has_the_regions")
        return
    # its database in a temp folder, and no usage reports (read when fiftyone is imported)
    monkeypatch.setenv("FIFTYONE_DATABASE_DIR", str(tmp_path / "fiftyone-db"))
    monkeypatch.setenv("FIFTYONE_DO_NOT_TRACK", "true")
    fo = _fiftyone()
    from segaudit.integrations.fiftyone import add_results, dataset_from_scan

    data, paths, out, _, rows = scan
    dataset = dataset_from_scan(out, paths["images"])
    try:
        assert len(dataset) == data.labels.shape[0]
        decoded = {}
        for sample in dataset:
            stem = sample["segaudit_stem"]
            assert Path(sample.filepath) == paths["images"] / f"{stem}.png"
            assert sample["segaudit_score"] is not None
            if not (out / "masks" / f"{stem}.png").exists():
                assert sample["segaudit_regions"] is None
                continue
            flags = sample["segaudit_flags"].mask
            np.testing.assert_array_equal(flags > 0, _issues(out, stem))
            h, w = flags.shape
            for det in sample["segaudit_regions"].detections:
                x, y, bw, bh = det.bounding_box
                left, top = round(x * w), round(y * h)
                full = np.zeros((h, w), bool)
                full[top : top + det.mask.shape[0], left : left + det.mask.shape[1]] = det.mask
                assert (round(bw * w), round(bh * h)) == det.mask.shape[::-1]
                decoded[stem, det["region"]] = full
                assert det.label == det["predicted_class"]
        check_regions(decoded, scan)
        # the same results added to a dataset the user already has
        mine = fo.Dataset()
        mine.add_samples([fo.Sample(filepath=str(p)) for p in sorted(paths["images"].iterdir())])
        updated = add_results(mine, from_scan(out), prefix="sa", label_by="given")
        assert updated == len({r["stem"] for r in rows})
        labels = [d.label for s in mine if s["sa_regions"] for d in s["sa_regions"].detections]
        assert sorted(labels) == sorted(r["given_name"] for r in rows)
        mine.delete()
    finally:
        dataset.delete()


def test_file_names_and_image_root_make_the_task_urls(tmp_path):
    issues = np.zeros((2, 5, 5), bool)
    issues[1, 1:3, 2:4] = True
    labels = np.zeros((2, 5, 5), int)
    table = segaudit.find_issue_regions(issues, labels, predicted=labels + 2 * issues)
    review = from_arrays(
        issues, table, stems=["a", "b"], file_names=["x/a.jpg", "x/b.jpg"], scores=[0.9, 0.1]
    )
    write_labelstudio(review, tmp_path / "t.json", image_root="/data/local-files/?d=")
    (task,) = json.loads((tmp_path / "t.json").read_text())  # only the image with a region
    assert task["data"]["image"] == "/data/local-files/?d=x/b.jpg"
    assert task["predictions"][0]["score"] == 0.1
    (result,) = task["predictions"][0]["result"]
    assert result["value"]["brushlabels"] == ["2"]  # no class names: the ids as text
    assert result["meta"]["segaudit"]["issue_type"] == "missing_label"


def test_readme_export_block_runs_after_the_usage_block(tmp_path, monkeypatch):
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    blocks = {}
    for title in ("## Usage", "## Export and review"):
        section = readme[readme.index(title) :]
        blocks[title] = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    usage, export = blocks["## Usage"][0], blocks["## Export and review"][1]
    assert "from_arrays" in export
    data = make_sample_dataset(n_images=3, seed=3, void_border=2)
    np.save(tmp_path / "labels.npy", data.labels)
    np.save(tmp_path / "pred_probs.npy", data.pred_probs)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(usage + export, "README.md", "exec"), namespace)
    doc = json.loads((tmp_path / "review" / "coco.json").read_text())
    assert len(doc["annotations"]) == len(namespace["regions"]) > 0
    assert (tmp_path / "review" / "cvat.xml").is_file()
    assert (tmp_path / "review" / "labelstudio_config.xml").is_file()


def test_from_scan_reads_stems_the_csv_writer_guarded(scan, tmp_path):
    """A stem like ``=x`` is ``'=x`` in the CSVs (formula guard) but names ``masks/=x.png``."""
    _, _, out, _, rows = scan
    stem = rows[0]["stem"]
    (tmp_path / "masks").mkdir()
    for path in (out / "masks").iterdir():
        name = f"={stem}.png" if path.stem == stem else path.name
        (tmp_path / "masks" / name).write_bytes(path.read_bytes())
    for name, col in (("regions.csv", "stem"), ("images.csv", "image"), ("per_class.csv", None)):
        frame = pd.read_csv(out / name, keep_default_na=False)
        frame = frame.drop(columns=["mask_path", "image_path"], errors="ignore")  # default names
        if col is not None:
            frame[col] = frame[col].replace({stem: f"={stem}"})
        with open(tmp_path / name, "w", newline="") as fh:
            write_csv(frame, fh)
    assert f"'={stem}" in (tmp_path / "regions.csv").read_text()
    images = {im.stem: im for im in from_scan(tmp_path)}
    assert f"={stem}" in images and stem not in images
    assert images[f"={stem}"].file_name == f"={stem}.png"
    assert images[f"={stem}"].score is not None
