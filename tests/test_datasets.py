"""Public datasets as they ship, scanned with one command and no glue.

Each test lays out a small fake of a dataset exactly as it is distributed
(Pascal VOC, Cityscapes, ADE20K, one probability array for a split,
half-resolution probabilities), runs ``segaudit scan`` once, and checks the
CSVs against the array API (`find_label_issues`, `find_issue_regions`) on the
same data after the dataset's own mapping, done here by hand.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import segaudit
from conftest import make_dataset
from segaudit.cli import cli
from segaudit.cli._main import BUILTIN_CLASSES as CLI_CLASSES
from segaudit.cli._main import BUILTIN_LABEL_MAPS as CLI_LABEL_MAPS
from segaudit.filter import RECOMMENDED_FILTER
from segaudit.io import DatasetError, scan_folder
from segaudit.io._datasets import (
    BUILTIN_CLASSES,
    BUILTIN_LABEL_MAPS,
    builtin_classes,
    builtin_label_map,
    voc_colormap,
)
from segaudit.io._labels import LabelMapping, read_label_map
from segaudit.io._resample import resize_bilinear
from segaudit.io._split_probs import open_split

PIL = pytest.importorskip("PIL")
from PIL import Image  # noqa: E402

VOID = 255


# ------------------------------------------------------------------ helpers


def _logits(probs: np.ndarray) -> np.ndarray:
    return np.log(probs).astype(np.float32)


def _save_png(path: Path, ids: np.ndarray, palette: list[tuple[int, int, int]] | None = None):
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(ids.astype(np.uint8), mode="P" if palette else "L")
    if palette:
        img.putpalette([v for c in palette for v in c])
    img.save(path)


def _save_photo(path: Path, shape: tuple[int, int], fmt: str = "JPEG") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = np.random.default_rng(0).integers(0, 256, size=(*shape, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path, format=fmt)


def _scan(*args) -> tuple[str, Path]:
    out = Path(args[args.index("--out") + 1])
    result = CliRunner().invoke(cli, ["scan", *map(str, args), "--quiet"], prog_name="segaudit")
    assert result.exit_code == 0, result.output
    return result.output, out


def _check(
    out: Path,
    stems: list[str],
    labels: np.ndarray,
    probs: np.ndarray,
    *,
    names: tuple[str, ...],
    background: int | None,
    ignore_index: int | None = VOID,
    min_area: int = 1,
) -> np.ndarray:
    """Compare images.csv, per_class.csv and regions.csv with the array API."""
    options = {"ignore_index": ignore_index, "from_logits": True, "verbose": False}
    mask = segaudit.find_label_issues(labels, probs, filter_by=RECOMMENDED_FILTER, **options)
    assert mask.any(), "the data must have issues for the comparison to mean anything"
    _, pixel_scores = segaudit.get_label_quality_scores(
        labels, probs, method="region_fraction", **options
    )
    images = pd.read_csv(out / "images.csv", dtype={"image": str})
    flagged = dict(zip(images["image"], images["num_pixel_issues"], strict=True))
    assert flagged == {s: int(m.sum()) for s, m in zip(stems, mask, strict=True)}
    per_class = pd.read_csv(out / "per_class.csv", dtype={"class": str})
    assert per_class["class"].tolist() == list(names)
    valid = labels != ignore_index if ignore_index is not None else np.ones_like(mask)
    k = len(names)
    np.testing.assert_array_equal(per_class["pixels"], np.bincount(labels[valid], minlength=k))
    regions = pd.read_csv(out / "regions.csv", dtype={"given_name": str, "predicted_name": str})
    expected = segaudit.find_issue_regions(
        mask,
        labels,
        predicted=probs.argmax(axis=1),
        pixel_scores=pixel_scores,
        background=background,
        ignore_index=ignore_index,
        min_area=min_area,
        class_names=list(names),
    )
    assert len(expected), "the data must have regions"
    assert regions["stem"].tolist() == [stems[i] for i in regions["image"]]
    same = [c for c in expected.columns if c not in ("mean_self_confidence", "severity")]
    pd.testing.assert_frame_equal(regions[same], expected[same], check_dtype=False)
    for stem, issues in zip(stems, mask, strict=True):
        png = out / "masks" / f"{stem}.png"
        assert png.exists() == bool(issues.any())
        if issues.any():
            np.testing.assert_array_equal(np.asarray(Image.open(png)) > 0, issues)
    return mask


# ------------------------------------------------------------------ layouts


def test_voc_as_shipped_with_split_and_builtin_classes(tmp_path):
    """VOC2012: JPEGImages, palette PNGs with 255 void, ImageSets/Segmentation/val.txt."""
    n_train, n_val, k = 3, 5, 21
    labels, probs = make_dataset(1, n=n_train + n_val, k=k, h=12, w=16, noise=0.2, strength=2.5)
    labels[:, 0, :] = VOID
    ids = [f"2007_{i:06d}" for i in range(n_train + n_val)]
    voc = tmp_path / "VOCdevkit" / "VOC2012"
    for i, stem in enumerate(ids):
        _save_png(voc / "SegmentationClass" / f"{stem}.png", labels[i], voc_colormap())
        _save_photo(voc / "JPEGImages" / f"{stem}.jpg", labels[i].shape)
    sets = voc / "ImageSets" / "Segmentation"
    sets.mkdir(parents=True)
    (sets / "train.txt").write_text("\n".join(ids[:n_train]) + "\n")
    (sets / "val.txt").write_text("\n".join(ids[n_train:]) + "\n")
    preds = tmp_path / "preds"  # the model's output for val only
    preds.mkdir()
    for i in range(n_train, n_train + n_val):
        np.save(preds / f"{ids[i]}.npy", _logits(probs[i]))

    output, out = _scan(
        voc / "SegmentationClass",
        preds,
        "--images",
        voc / "JPEGImages",
        "--split",
        sets / "val.txt",
        "--classes",
        "voc",
        "--from-logits",
        "--out",
        tmp_path / "out",
    )
    assert "skipped:" not in output  # the train masks without probabilities are not items
    assert "  images                 5\n" in output
    val = slice(n_train, None)
    _check(
        out,
        ids[val],
        labels[val],
        _logits(probs[val]),
        names=builtin_classes("voc").names,
        background=0,
    )


def test_cityscapes_nested_raw_ids_with_suffixes_and_label_map(tmp_path):
    """gtFine/val/<city>/<name>_gtFine_labelIds.png (raw ids) and leftImg8bit images."""
    cities = {"frankfurt": 2, "lindau": 2}
    n, k = sum(cities.values()), 19
    train, probs = make_dataset(2, n=n, k=k, h=16, w=32, noise=0.2, strength=2.5)
    to_raw = {t: raw for raw, t in builtin_label_map("cityscapes").items()}
    raw = np.vectorize(to_raw.get)(train).astype(np.uint8)
    raw[:, :2, :] = 1  # ego vehicle: no train id
    raw[:, -1, :] = 0  # unlabeled
    expected = np.where(raw <= 6, VOID, train)
    stems, i = [], 0
    root = tmp_path / "cityscapes"
    for city, count in cities.items():
        for j in range(count):
            name = f"{city}_{j:06d}_000019"
            gt = root / "gtFine" / "val" / city
            _save_png(gt / f"{name}_gtFine_labelIds.png", raw[i])
            _save_png(gt / f"{name}_gtFine_instanceIds.png", raw[i])  # decoys, as shipped
            _save_png(gt / f"{name}_gtFine_color.png", np.zeros_like(raw[i]))
            (gt / f"{name}_gtFine_polygons.json").write_text("{}")
            _save_photo(
                root / "leftImg8bit" / "val" / city / f"{name}_leftImg8bit.png", raw[i].shape, "PNG"
            )
            (tmp_path / "probs" / city).mkdir(parents=True, exist_ok=True)
            np.save(tmp_path / "probs" / city / f"{name}.npy", _logits(probs[i]))
            stems.append(f"{city}/{name}")
            i += 1

    output, out = _scan(
        root / "gtFine" / "val",
        tmp_path / "probs",
        "--images",
        root / "leftImg8bit" / "val",
        "--mask-suffix",
        "_gtFine_labelIds",
        "--image-suffix",
        "_leftImg8bit",
        "--label-map",
        "cityscapes",
        "--classes",
        "cityscapes",
        "--from-logits",
        "--out",
        tmp_path / "out",
    )
    assert "  models                 1" in output  # the city folders are not models
    # background none is the default with a label map: 0 (road) is a real class
    _check(
        out,
        stems,
        expected,
        _logits(probs),
        names=builtin_classes("cityscapes").names,
        background=None,
    )


def test_ade20k_reduce_zero_label(tmp_path):
    """ADEChallengeData2016/annotations/validation/*.png, 0 = other, classes 1..150."""
    n, k = 4, 150
    labels, probs = make_dataset(3, n=n, k=k, h=10, w=12, noise=0.2, strength=4.0)
    raw = (labels + 1).astype(np.uint8)
    raw[:, :, 0] = 0  # "other"
    expected = np.where(raw == 0, VOID, raw.astype(np.int64) - 1)
    root = tmp_path / "ADEChallengeData2016"
    stems = [f"ADE_val_{i + 1:08d}" for i in range(n)]
    (tmp_path / "logits").mkdir()
    for i, stem in enumerate(stems):
        _save_png(root / "annotations" / "validation" / f"{stem}.png", raw[i])
        _save_photo(root / "images" / "validation" / f"{stem}.jpg", raw[i].shape)
        np.save(tmp_path / "logits" / f"{stem}.npy", _logits(probs[i]))

    _, out = _scan(
        root / "annotations" / "validation",
        tmp_path / "logits",
        "--images",
        root / "images" / "validation",
        "--reduce-zero-label",
        "--classes",
        "ade20k",
        "--from-logits",
        "--out",
        tmp_path / "out",
    )
    _check(
        out,
        stems,
        expected,
        _logits(probs),
        names=builtin_classes("ade20k").names,
        background=None,
    )


def _split_masks(tmp_path: Path, seed: int, n: int = 5, k: int = 4, h: int = 12, w: int = 16):
    labels, probs = make_dataset(seed, n=n, k=k, h=h, w=w, noise=0.2, strength=2.5)
    labels[:, 0, :] = VOID
    stems = [f"img_{i:02d}" for i in range(n)]
    for stem, lab in zip(stems, labels, strict=True):
        _save_png(tmp_path / "masks" / f"{stem}.png", lab)
    return stems, labels, _logits(probs)


@pytest.mark.parametrize("kind", ["npy", "pt", "zarr"])
def test_one_probability_array_for_the_split(tmp_path, kind):
    """(N, K, H, W) in one file, rows in another order than the masks, named beside it."""
    stems, labels, logits = _split_masks(tmp_path, 4)
    order = [3, 0, 4, 1, 2]
    rows = logits[order]
    if kind == "npy":
        path = tmp_path / "probs.npy"
        np.save(path, rows)
        (tmp_path / "probs.ids.txt").write_text("\n".join(stems[i] for i in order) + "\n")
        extra = []
    elif kind == "pt":
        torch = pytest.importorskip("torch")
        path = tmp_path / "logits.pt"
        torch.save(torch.from_numpy(rows), path)
        (tmp_path / "order.txt").write_text("\n".join(stems[i] for i in order))
        extra = ["--order", tmp_path / "order.txt"]
    else:
        zarr = pytest.importorskip("zarr")
        path = tmp_path / "probs.zarr"
        group = zarr.open_group(str(path), mode="w")
        group.create_array("logits", data=rows)
        with warnings.catch_warnings():  # zarr: text arrays have no v3 specification yet
            warnings.simplefilter("ignore", zarr.errors.UnstableSpecificationWarning)
            group.create_array("ids", data=np.array([stems[i] for i in order]))
        extra = []
    _, out = _scan(
        tmp_path / "masks",
        path,
        *extra,
        "--ignore-index",
        VOID,
        "--from-logits",
        "--out",
        tmp_path / "out",
    )
    _check(out, stems, labels, logits, names=("0", "1", "2", "3"), background=0)


def test_split_array_without_ids_is_refused_with_the_way_out(tmp_path):
    _split_masks(tmp_path, 4)
    np.save(tmp_path / "probs.npy", np.zeros((5, 4, 12, 16), np.float32))
    with pytest.raises(DatasetError, match=r"--order FILE .*probs\.ids\.txt beside it"):
        scan_folder(tmp_path / "masks", tmp_path / "probs.npy", ignore_index=VOID)
    (tmp_path / "probs.ids.txt").write_text("img_00\nimg_01\n")
    with pytest.raises(DatasetError, match=r"expected 5 ids, one per row of probs\.npy; got 2"):
        scan_folder(tmp_path / "masks", tmp_path / "probs.npy", ignore_index=VOID)


def test_half_resolution_probabilities_are_upsampled_as_torch_does(tmp_path):
    torch = pytest.importorskip("torch")
    stems, labels, _ = _split_masks(tmp_path, 5, h=16, w=24)
    rng = np.random.default_rng(5)
    low = rng.normal(size=(len(stems), 4, 8, 12)).astype(np.float32)
    rows, cols = np.indices((8, 12))
    low[np.arange(len(stems))[:, None, None], labels[:, ::2, ::2] % 4, rows, cols] += 3
    (tmp_path / "probs").mkdir()
    for stem, one in zip(stems, low, strict=True):
        np.save(tmp_path / "probs" / f"{stem}.npy", one)
    full = torch.nn.functional.interpolate(
        torch.from_numpy(low), size=(16, 24), mode="bilinear", align_corners=False
    ).numpy()
    ours = np.stack([resize_bilinear(one, (16, 24)) for one in low])
    np.testing.assert_allclose(ours, full, rtol=0, atol=1e-6)
    ds = scan_folder(tmp_path / "masks", tmp_path / "probs", ignore_index=VOID)
    np.testing.assert_array_equal(ds.raise_if_problems().load(0).probs, ours[0])
    _, out = _scan(
        tmp_path / "masks",
        tmp_path / "probs",
        "--ignore-index",
        VOID,
        "--from-logits",
        "--out",
        tmp_path / "out",
    )
    _check(out, stems, labels, ours, names=("0", "1", "2", "3"), background=0)


def test_colour_masks_read_through_the_classes_palette(tmp_path):
    stems, labels, logits = _split_masks(tmp_path, 6)
    colors = [(10, 20, 30), (200, 0, 0), (0, 200, 0), (0, 0, 200)]
    palette = np.array([*colors, *[(255, 255, 255)] * 252], np.uint8)
    for stem, lab in zip(stems, labels, strict=True):
        Image.fromarray(palette[lab]).save(tmp_path / "masks" / f"{stem}.png")  # RGB
    classes = [{"name": n, "color": list(c)} for n, c in zip("abcd", colors, strict=True)]
    (tmp_path / "classes.json").write_text(json.dumps(classes))
    (tmp_path / "probs").mkdir()
    for stem, one in zip(stems, logits, strict=True):
        np.save(tmp_path / "probs" / f"{stem}.npy", one)
    _, out = _scan(
        tmp_path / "masks",
        tmp_path / "probs",
        "--classes",
        tmp_path / "classes.json",
        "--ignore-index",
        VOID,
        "--from-logits",
        "--out",
        tmp_path / "out",
    )
    _check(out, stems, labels, logits, names=tuple("abcd"), background=0)


def test_min_area_and_background_none_reach_regions_csv(tmp_path):
    stems, labels, logits = _split_masks(tmp_path, 7, n=4, h=24, w=24)
    (tmp_path / "probs").mkdir()
    for stem, one in zip(stems, logits, strict=True):
        np.save(tmp_path / "probs" / f"{stem}.npy", one)
    _, out = _scan(
        tmp_path / "masks",
        tmp_path / "probs",
        "--ignore-index",
        VOID,
        "--background",
        "none",
        "--min-area",
        3,
        "--memory-limit",
        "1K",
        "--from-logits",
        "--out",
        tmp_path / "out",
    )
    _check(out, stems, labels, logits, names=("0", "1", "2", "3"), background=None, min_area=3)
    regions = pd.read_csv(out / "regions.csv")
    assert len(regions) and regions["area"].min() >= 3
    assert "spurious_label" not in set(regions["issue_type"])  # no background, no spurious


def test_jobs_is_accepted(tmp_path):
    stems, labels, logits = _split_masks(tmp_path, 8, n=3)
    (tmp_path / "probs").mkdir()
    for stem, one in zip(stems, logits, strict=True):
        np.save(tmp_path / "probs" / f"{stem}.npy", one)
    _, out = _scan(
        tmp_path / "masks",
        tmp_path / "probs",
        "--jobs",
        2,
        "--ignore-index",
        VOID,
        "--from-logits",
        "--out",
        tmp_path / "out",
    )
    _check(out, stems, labels, logits, names=("0", "1", "2", "3"), background=0)


# ------------------------------------------------------------------ pieces


def test_split_id_without_a_mask_is_a_problem(tmp_path):
    stems, _, logits = _split_masks(tmp_path, 9, n=2)
    (tmp_path / "probs").mkdir()
    for stem, one in zip(stems, logits, strict=True):
        np.save(tmp_path / "probs" / f"{stem}.npy", one)
    (tmp_path / "val.txt").write_text("img_01\nimg_07\n")
    ds = scan_folder(
        tmp_path / "masks", tmp_path / "probs", ignore_index=VOID, split=tmp_path / "val.txt"
    )
    assert ds.stems == ["img_01"]  # img_00 is not in the split, and its probabilities neither
    assert [str(p) for p in ds.problems] == [
        f"{tmp_path / 'val.txt'}: the split lists 'img_07'; expected a mask "
        f"{tmp_path / 'masks' / 'img_07'}.png (or .tif, .tiff), found none."
    ]


def test_nested_masks_pair_with_flat_probabilities_by_name(tmp_path):
    stems, _, logits = _split_masks(tmp_path, 10, n=2)
    for stem in stems:
        (tmp_path / "masks" / f"{stem}.png").rename(tmp_path / "masks" / f"x_{stem}.png")
    (tmp_path / "masks" / "city").mkdir()
    (tmp_path / "masks" / f"x_{stems[1]}.png").rename(
        tmp_path / "masks" / "city" / f"{stems[1]}.png"
    )
    (tmp_path / "masks" / f"x_{stems[0]}.png").rename(tmp_path / "masks" / f"{stems[0]}.png")
    (tmp_path / "probs").mkdir()
    for stem, one in zip(stems, logits, strict=True):
        np.save(tmp_path / "probs" / f"{stem}.npy", one)
    ds = scan_folder(tmp_path / "masks", tmp_path / "probs", ignore_index=VOID)
    assert ds.raise_if_problems().stems == ["city/img_01", "img_00"]
    np.testing.assert_array_equal(ds.load(0).probs, logits[1])


def test_label_mapping_rules():
    m = LabelMapping({7: 0, 26: 13}, reduce_zero_label=False, ignore_index=VOID)
    raw = np.array([[7, 26, 0, 33]], np.uint8)
    np.testing.assert_array_equal(m.apply(raw), [[0, 13, VOID, VOID]])
    assert raw.tolist() == [[7, 26, 0, 33]]  # input not modified
    ade = LabelMapping(reduce_zero_label=True, ignore_index=VOID)
    np.testing.assert_array_equal(ade.apply(np.array([[0, 1, 150, 255]])), [[VOID, 0, 149, VOID]])
    with pytest.raises(ValueError, match="'ignore_index' parameter of scan_folder must be an int"):
        LabelMapping(reduce_zero_label=True)


def test_label_map_files(tmp_path):
    (tmp_path / "m.json").write_text('{"7": 0, "8": 1, "9": null}')
    assert read_label_map(tmp_path / "m.json") == {7: 0, 8: 1}
    (tmp_path / "m.txt").write_text("7 0\n8: 1  # sidewalk\n")
    assert read_label_map(tmp_path / "m.txt") == {7: 0, 8: 1}
    (tmp_path / "bad.txt").write_text("7 0\n8\n")
    with pytest.raises(ValueError, match=r"bad\.txt, line 2: expected 'raw_id class_id'"):
        read_label_map(tmp_path / "bad.txt")
    assert read_label_map("cityscapes") == builtin_label_map("cityscapes")


def test_builtin_lists():
    voc, city, ade = (builtin_classes(n) for n in ("voc", "cityscapes", "ade20k"))
    assert (voc.num_classes, city.num_classes, ade.num_classes) == (21, 19, 150)
    assert voc.colors is not None and voc.colors[1] == (128, 0, 0) and voc.names[-1] == "tvmonitor"
    assert city.names[0] == "road" and city.names[-1] == "bicycle"
    assert ade.names[:3] == ("wall", "building", "sky") and ade.names[-1] == "flag"
    mapping = builtin_label_map("cityscapes")
    assert sorted(mapping.values()) == list(range(19)) and max(mapping) == 33
    assert (CLI_CLASSES, CLI_LABEL_MAPS) == (BUILTIN_CLASSES, BUILTIN_LABEL_MAPS)


def test_resize_matches_torch_on_odd_sizes_and_dtypes():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    for (h, w, H, W), dtype in [
        ((3, 7, 12, 13), np.float32),
        ((5, 5, 5, 11), np.float64),
        ((1, 1, 3, 3), np.float32),
        ((64, 43, 256, 171), np.float32),
    ]:
        x = rng.random((2, h, w)).astype(dtype)
        ref = torch.nn.functional.interpolate(
            torch.from_numpy(x)[None], size=(H, W), mode="bilinear", align_corners=False
        )[0].numpy()
        ours = resize_bilinear(x, (H, W))
        assert ours.dtype == dtype
        np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-6 if dtype == np.float32 else 1e-12)


def test_pt_files_are_loaded_without_running_code(tmp_path):
    torch = pytest.importorskip("torch")

    class Payload:
        def __reduce__(self):
            return (print, ("ran",))

    torch.save({"probs": torch.zeros(2, 3, 4), "x": Payload()}, tmp_path / "a.pt")
    with pytest.raises(DatasetError, match=r"a\.pt: cannot read"):
        open_split(tmp_path / "a.pt")


def test_pt_files_per_image_are_read_like_npy(tmp_path):
    torch = pytest.importorskip("torch")
    stems, _, logits = _split_masks(tmp_path, 11, n=2)
    (tmp_path / "probs").mkdir()
    for stem, one in zip(stems, logits, strict=True):
        torch.save(torch.from_numpy(one).to(torch.bfloat16), tmp_path / "probs" / f"{stem}.pt")
    ds = scan_folder(tmp_path / "masks", tmp_path / "probs", ignore_index=VOID)
    loaded = ds.raise_if_problems().load(1).probs
    assert loaded.dtype == np.float32  # bfloat16, which numpy lacks, is widened
    expected = torch.from_numpy(logits[1]).to(torch.bfloat16).float().numpy()
    np.testing.assert_array_equal(loaded, expected)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--classes", "vocc", "must be one of voc, cityscapes, ade20k or an existing file"),
        ("--label-map", "kitti", "must be one of cityscapes or an existing file"),
        ("--background", "sky", "must be a class id or 'none'"),
        ("--memory-limit", "lots", "must be a size such as 2G, 512M or 1000000"),
    ],
)
def test_bad_dataset_options_exit_2_before_any_work(tmp_path, option, value, message):
    stems, _, logits = _split_masks(tmp_path, 12, n=1)
    (tmp_path / "probs").mkdir()
    np.save(tmp_path / "probs" / f"{stems[0]}.npy", logits[0])
    args = ["scan", tmp_path / "masks", tmp_path / "probs", "--out", tmp_path / "out"]
    result = CliRunner().invoke(cli, [*map(str, args), option, value], prog_name="segaudit")
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert not (tmp_path / "out").exists()


def test_memory_limit_sizes():
    from segaudit.cli._main import _byte_size

    sizes = [_byte_size(None, None, v) for v in ("1000", "512M", "2G", "1.5K", "4GiB")]  # type: ignore[arg-type]
    assert sizes == [1000, 512 << 20, 2 << 30, 1536, 4 << 30]
