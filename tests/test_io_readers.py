"""Readers for mask / probability / image folders and class files, with real file formats."""

from __future__ import annotations

import dataclasses
import json
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest

Image = pytest.importorskip("PIL.Image", reason="the io readers need Pillow")
tifffile = pytest.importorskip("tifffile", reason="the TIFF tests need tifffile")

from segaudit.io import (  # noqa: E402
    DatasetError,
    FolderDataset,
    InputProblem,
    ItemError,
    read_image,
    read_label_mask,
    read_probs,
    scan_folder,
)
from segaudit.io._classes import ClassInfo, read_class_names  # noqa: E402

K = 21


def voc_palette() -> list[int]:
    """The Pascal VOC colour map: class id i is palette index i."""
    palette = []
    for i in range(256):
        r = g = b = 0
        c = i
        for bit in range(8):
            r |= ((c >> 0) & 1) << (7 - bit)
            g |= ((c >> 1) & 1) << (7 - bit)
            b |= ((c >> 2) & 1) << (7 - bit)
            c >>= 3
        palette += [r, g, b]
    return palette


def save_palette_png(path: Path, labels: np.ndarray) -> Path:
    img = Image.fromarray(labels.astype(np.uint8))
    img.putpalette(voc_palette())  # turns the "L" image into a "P" image
    assert img.mode == "P"
    img.save(path)
    return path


def random_labels(shape: tuple[int, int], *, k: int = K, seed: int = 0) -> np.ndarray:
    labels = np.random.default_rng(seed).integers(0, k, size=shape, dtype=np.uint8)
    labels[0, :2] = 255  # void, as along VOC object borders
    return labels


def random_probs(shape: tuple[int, int], *, k: int = K, seed: int = 0) -> np.ndarray:
    p = np.random.default_rng(seed).random((k, *shape), dtype=np.float32)
    return p / p.sum(axis=0)


def make_voc(
    root: Path, stems: list[str], *, shape: tuple[int, int] = (6, 8), images: bool = False
) -> tuple[Path, Path, Path]:
    masks, probs, imgs = root / "SegmentationClass", root / "probs", root / "JPEGImages"
    for d in (masks, probs, imgs):
        d.mkdir(exist_ok=True)
    for seed, stem in enumerate(stems):
        save_palette_png(masks / f"{stem}.png", random_labels(shape, seed=seed))
        np.save(probs / f"{stem}.npy", random_probs(shape, seed=seed))
        if images:
            rgb = np.random.default_rng(seed).integers(0, 256, (*shape, 3), dtype=np.uint8)
            Image.fromarray(rgb).save(imgs / f"{stem}.jpg", quality=95)
    return masks, probs, imgs


# --------------------------------------------------------------------------- label masks


def test_palette_png_returns_palette_indices_and_keeps_void(tmp_path):
    labels = random_labels((5, 7))
    path = save_palette_png(tmp_path / "2007_000032.png", labels)
    out = read_label_mask(path)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, labels)  # indices, not the palette's colours
    assert (out == 255).sum() == 2


def test_grayscale_and_16bit_png(tmp_path):
    gray = np.array([[0, 1], [2, 149]], np.uint8)
    Image.fromarray(gray).save(tmp_path / "g.png")
    wide = np.array([[0, 1000], [40000, 3]], np.uint16)
    Image.fromarray(wide).save(tmp_path / "w.png")
    with Image.open(tmp_path / "w.png") as img:
        assert img.mode == "I;16"
    out_gray, out_wide = read_label_mask(tmp_path / "g.png"), read_label_mask(tmp_path / "w.png")
    assert out_gray.dtype == np.uint8 and out_wide.dtype == np.uint16
    np.testing.assert_array_equal(out_gray, gray)
    np.testing.assert_array_equal(out_wide, wide)


def test_binary_png_becomes_uint8(tmp_path):
    Image.fromarray(np.array([[True, False]])).save(tmp_path / "b.png")
    out = read_label_mask(tmp_path / "b.png")
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, [[1, 0]])


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, np.uint32])
def test_tiff_keeps_its_integer_dtype(tmp_path, dtype):
    labels = (np.arange(12).reshape(3, 4) * 7).astype(dtype)
    tifffile.imwrite(tmp_path / "m.tif", labels)
    out = read_label_mask(tmp_path / "m.tif")
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, labels)


def test_lzw_tiff_falls_back_to_pillow(tmp_path):
    labels = (np.arange(12).reshape(3, 4) * 300).astype(np.uint16)
    Image.fromarray(labels).save(tmp_path / "m.tiff", compression="tiff_lzw")
    np.testing.assert_array_equal(read_label_mask(tmp_path / "m.tiff"), labels)


def test_tiff_without_tifffile_is_read_by_pillow(tmp_path, monkeypatch):
    labels = np.array([[0, 3], [255, 7]], np.uint8)
    Image.fromarray(labels).save(tmp_path / "m.tif")
    monkeypatch.setitem(sys.modules, "tifffile", None)
    np.testing.assert_array_equal(read_label_mask(tmp_path / "m.tif"), labels)


def test_single_channel_axis_is_squeezed(tmp_path):
    tifffile.imwrite(tmp_path / "m.tif", np.ones((3, 4, 1), np.uint8), photometric="minisblack")
    assert read_label_mask(tmp_path / "m.tif").shape == (3, 4)


def test_rgb_png_mask_is_refused(tmp_path):
    Image.fromarray(np.zeros((2, 3, 3), np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(
        DatasetError,
        match=r"rgb\.png: expected a mask of single-channel class ids "
        r"\(palette 'P' or grayscale 'L', 'I;16', 'I'\); got a 'RGB' image",
    ):
        read_label_mask(tmp_path / "rgb.png")


def test_rgb_tiff_mask_is_refused(tmp_path):
    tifffile.imwrite(tmp_path / "rgb.tif", np.zeros((2, 3, 3), np.uint8), photometric="rgb")
    with pytest.raises(
        DatasetError,
        match=r"rgb\.tif: expected a single-channel \(H, W\) mask "
        r"of class ids \(palette or grayscale\); got an array of shape \(2, 3, 3\)",
    ):
        read_label_mask(tmp_path / "rgb.tif")


def test_float_tiff_mask_is_refused(tmp_path):
    tifffile.imwrite(tmp_path / "f.tif", np.zeros((2, 3), np.float32))
    with pytest.raises(DatasetError, match="expected integer class ids in the mask; got float32"):
        read_label_mask(tmp_path / "f.tif")


def test_truncated_png_names_the_file(tmp_path):
    path = save_palette_png(tmp_path / "cut.png", random_labels((64, 64)))
    path.write_bytes(path.read_bytes()[:-60])
    with pytest.raises(DatasetError, match=r"cut\.png: cannot read the mask, the file is corrupt"):
        read_label_mask(path)


def test_text_file_named_png_is_corrupt(tmp_path):
    (tmp_path / "x.png").write_text("not an image")
    with pytest.raises(DatasetError, match=r"x\.png: cannot read the mask.*not an image"):
        read_label_mask(tmp_path / "x.png")


def test_truncated_tiff_reports_both_readers(tmp_path):
    tifffile.imwrite(tmp_path / "x.tif", random_labels((64, 64)))
    data = (tmp_path / "x.tif").read_bytes()
    (tmp_path / "x.tif").write_bytes(data[: len(data) // 2])
    with pytest.raises(
        DatasetError,
        match=r"x\.tif: cannot read the TIFF, the file is corrupt "
        r"\(tifffile: .*; Pillow: image file is truncated",
    ):
        read_label_mask(tmp_path / "x.tif")


def test_missing_mask_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_label_mask(tmp_path / "absent.png")


def test_missing_pillow_says_which_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(ImportError, match=r"needs Pillow: pip install 'segaudit\[io\]'"):
        read_label_mask(tmp_path / "a.png")


# --------------------------------------------------------------------------- probabilities


def test_npy_is_memory_mapped_read_only(tmp_path):
    probs = random_probs((4, 5))
    np.save(tmp_path / "a.npy", probs)
    out = read_probs(tmp_path / "a.npy")
    assert isinstance(out, np.memmap)
    assert not out.flags.writeable
    np.testing.assert_array_equal(out, probs)


def test_hwk_layout_is_returned_as_khw(tmp_path):
    probs = random_probs((4, 5), k=3)
    np.save(tmp_path / "a.npy", np.moveaxis(probs, 0, -1))
    out = read_probs(tmp_path / "a.npy", layout="HWK")
    assert out.shape == (3, 4, 5)
    np.testing.assert_array_equal(out, probs)


def test_fortran_order_npy(tmp_path):
    probs = np.asfortranarray(random_probs((4, 5), k=3))
    np.save(tmp_path / "a.npy", probs)
    np.testing.assert_array_equal(read_probs(tmp_path / "a.npy"), probs)


def test_npz_float16_logits_stay_float16(tmp_path):
    logits = (np.random.default_rng(1).standard_normal((4, 5, K)) * 5).astype(np.float16)
    np.savez_compressed(tmp_path / "a.npz", logits=logits)
    out = read_probs(tmp_path / "a.npz", layout="HWK")
    assert out.dtype == np.float16 and out.shape == (K, 4, 5)
    np.testing.assert_array_equal(out, np.moveaxis(logits, -1, 0))


@pytest.mark.parametrize("key", ["probs", "pred_probs", "logits", "arr_0"])
def test_npz_known_key_wins_over_other_arrays(tmp_path, key):
    probs = random_probs((2, 3), k=4)
    np.savez(tmp_path / "a.npz", **{key: probs, "meta": np.zeros(3)})
    np.testing.assert_array_equal(read_probs(tmp_path / "a.npz"), probs)


def test_npz_single_array_with_any_key(tmp_path):
    probs = random_probs((2, 3), k=4)
    np.savez(tmp_path / "a.npz", output=probs)
    np.testing.assert_array_equal(read_probs(tmp_path / "a.npz"), probs)


@pytest.mark.parametrize(
    ("arrays", "keys"),
    [({"x": 1, "y": 2}, r"\['x', 'y'\]"), ({"probs": 1, "logits": 2}, r"\['probs', 'logits'\]")],
)
def test_npz_ambiguous_keys_are_named(tmp_path, arrays, keys):
    np.savez(tmp_path / "a.npz", **{k: np.zeros((v, 2, 2), np.float32) for k, v in arrays.items()})
    with pytest.raises(
        DatasetError,
        match=r"a\.npz: expected a single array or exactly one of "
        rf"the keys probs, pred_probs, logits, arr_0; got keys {keys}",
    ):
        read_probs(tmp_path / "a.npz")


def test_empty_npz(tmp_path):
    np.savez(tmp_path / "a.npz")
    with pytest.raises(DatasetError, match=r"got keys \[\]"):
        read_probs(tmp_path / "a.npz")


def test_integer_probs_are_refused(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((2, 3, 4), np.int64))
    with pytest.raises(
        DatasetError,
        match=r"a\.npy: expected float16, float32 or float64 "
        "probabilities; got int64",
    ):
        read_probs(tmp_path / "a.npy")


def test_pickled_object_array_is_refused_without_unpickling(tmp_path):
    np.save(tmp_path / "a.npy", np.array([None, 1], dtype=object), allow_pickle=True)
    with pytest.raises(DatasetError, match="got object"):
        read_probs(tmp_path / "a.npy")


def test_two_dimensional_probs_are_refused(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((4, 5), np.float32))
    with pytest.raises(
        DatasetError,
        match=r"expected a 3-D array \(K, H, W\) or \(H, W, K\); "
        r"got shape \(4, 5\)",
    ):
        read_probs(tmp_path / "a.npy")


def test_truncated_npy_is_detected_from_its_size(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((3, 4, 5), np.float32))
    data = (tmp_path / "a.npy").read_bytes()
    (tmp_path / "a.npy").write_bytes(data[:-8])
    with pytest.raises(
        DatasetError,
        match=r"a\.npy: the file is truncated: shape \(3, 4, 5\) of "
        "float32 needs 240 bytes of data; got 232",
    ):
        read_probs(tmp_path / "a.npy")


@pytest.mark.parametrize("name", ["a.npy", "a.npz"])
def test_garbage_probability_file_is_corrupt(tmp_path, name):
    (tmp_path / name).write_bytes(b"\x00garbage" * 10)
    with pytest.raises(
        DatasetError, match=rf"{name}: cannot read the \.np[yz] file, it is corrupt"
    ):
        read_probs(tmp_path / name)


def test_truncated_npz_is_corrupt(tmp_path):
    np.savez_compressed(tmp_path / "a.npz", probs=random_probs((8, 8)))
    data = (tmp_path / "a.npz").read_bytes()
    (tmp_path / "a.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match=r"a\.npz: cannot read the \.npz file, it is corrupt"):
        read_probs(tmp_path / "a.npz")


def test_probs_bad_layout_and_suffix(tmp_path):
    with pytest.raises(
        ValueError,
        match=r"The 'layout' parameter of read_probs must be 'KHW' or 'HWK'\. Got 'khw' instead\.",
    ):
        read_probs(tmp_path / "a.npy", layout="khw")
    with pytest.raises(
        DatasetError, match=r"a\.h5: expected a \.npy, \.npz or \.pt file; got suffix"
    ):
        read_probs(tmp_path / "a.h5")


# --------------------------------------------------------------------------- images


def test_images_become_rgb_uint8(tmp_path):
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    Image.fromarray(gray).save(tmp_path / "g.png")
    rgba = np.zeros((3, 4, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 7
    Image.fromarray(rgba).save(tmp_path / "a.png")
    Image.fromarray(np.full((3, 4, 3), 90, np.uint8)).save(tmp_path / "c.jpg")
    g, a, c = (read_image(tmp_path / n) for n in ("g.png", "a.png", "c.jpg"))
    assert g.shape == a.shape == c.shape == (3, 4, 3)
    assert g.dtype == a.dtype == c.dtype == np.uint8
    np.testing.assert_array_equal(g[..., 1], gray)
    np.testing.assert_array_equal(a[0, 0], [200, 0, 0])
    assert abs(int(c[1, 1, 0]) - 90) <= 2  # JPEG is lossy


def test_16bit_image_and_corrupt_image_are_refused(tmp_path):
    Image.fromarray(np.zeros((2, 2), np.uint16)).save(tmp_path / "w.png")
    with pytest.raises(
        DatasetError,
        match=r"w\.png: expected an 8-bit colour or grayscale image; "
        "got mode 'I;16'",
    ):
        read_image(tmp_path / "w.png")
    (tmp_path / "x.jpg").write_bytes(b"\xff\xd8 broken")
    with pytest.raises(DatasetError, match=r"x\.jpg: cannot read the image, the file is corrupt"):
        read_image(tmp_path / "x.jpg")


# --------------------------------------------------------------------------- class files


def test_text_class_file_skips_blanks_and_comments(tmp_path):
    path = tmp_path / "classes.txt"
    path.write_text("\ufeff# Pascal VOC\nbackground\n\n  aeroplane  # 1\nbicycle\n", "utf-8")
    info = read_class_names(path)
    assert info.names == ("background", "aeroplane", "bicycle")
    assert info.colors is None and info.num_classes == 3


@pytest.mark.parametrize(
    "data",
    [
        ["road", "sidewalk"],
        [{"name": "road"}, {"name": "sidewalk"}],
        [{"id": 1, "name": "sidewalk"}, {"id": 0, "name": "road", "trainId": 0}],
        {"1": "sidewalk", "0": "road"},
        {"0": {"name": "road"}, "1": {"name": "sidewalk"}},
    ],
)
def test_json_class_files_without_colours(tmp_path, data):
    (tmp_path / "c.json").write_text(json.dumps(data))
    assert read_class_names(tmp_path / "c.json") == ClassInfo(("road", "sidewalk"))


def test_json_class_file_with_colours_in_id_order(tmp_path):
    data = [
        {"id": 1, "name": "sidewalk", "color": [244, 35, 232]},
        {"id": 0, "name": "road", "color": [128, 64, 128]},
    ]
    (tmp_path / "c.json").write_text(json.dumps(data))
    info = read_class_names(tmp_path / "c.json")
    assert info.names == ("road", "sidewalk")
    assert info.colors == ((128, 64, 128), (244, 35, 232))


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('["a", ', r"c\.json: not valid JSON \(Expecting value at line 1, column 7\)"),
        (
            "3",
            "expected a JSON list of names, a list of objects or an object mapping id to name; "
            "got a JSON int",
        ),
        ("[]", "expected at least one class; got an empty JSON list"),
        ('{"0": "a", "2": "b"}', r"expected class ids 0\.\.1 without gaps; id 1 is missing"),
        (
            '[{"id": 0, "name": "a"}, {"name": "b"}, {"id": 0, "name": "c"}]',
            "expected each class id once; got id 0 twice",
        ),
        ('{"-1": "a"}', "expected class ids to be non-negative integers; got '-1'"),
        ('[{"id": 0.5, "name": "a"}]', "expected class ids to be non-negative integers; got 0.5"),
        ('[{"label": "a"}]', "expected class id 0 to be a name or an object with a string 'name'"),
        (
            '[{"name": "a", "color": [0, 0, 0]}, {"name": "b"}]',
            r"expected a 'color' for every class or for none; class id 1 \('b'\) has none",
        ),
        (
            '[{"name": "a", "color": [0, 0, 300]}]',
            r"c\.json: The 'colors' parameter of ClassInfo must be \[r, g, b\] ints in "
            r"0\.\.255\. Got \[0, 0, 300\] for class id 0",
        ),
        ('["a", "b", "a"]', r"must be unique\. Got 'a' twice \(ids 0 and 2\)"),
    ],
)
def test_bad_json_class_files(tmp_path, text, match):
    (tmp_path / "c.json").write_text(text)
    with pytest.raises(ValueError, match=match):
        read_class_names(tmp_path / "c.json")


def test_bad_text_class_files(tmp_path):
    (tmp_path / "empty.txt").write_text("# nothing\n\n")
    with pytest.raises(ValueError, match=r"empty\.txt: expected one class name per line, found"):
        read_class_names(tmp_path / "empty.txt")
    (tmp_path / "latin.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin\.txt: expected UTF-8 text; invalid continuation"):
        read_class_names(tmp_path / "latin.txt")


def test_class_info_validates_itself():
    with pytest.raises(ValueError, match=r"non-empty sequence of str\. Got 'road' instead"):
        ClassInfo("road")
    with pytest.raises(ValueError, match=r"sequence of non-empty strings\. Got ' ' for class id 1"):
        ClassInfo(("road", " "))
    with pytest.raises(ValueError, match=r"one colour per class \(2\)\. Got 1 colours instead"):
        ClassInfo(("road", "sky"), colors=[(0, 0, 0)])
    info = ClassInfo(["road"], colors=[[1, 2, 3]])
    assert info.names == ("road",) and info.colors == ((1, 2, 3),)
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.names = ("sky",)


# --------------------------------------------------------------------------- scan_folder


def test_voc_folder_scans_and_streams(tmp_path):
    stems = ["2007_000129", "2007_000032", "2007_000033"]
    masks, probs, imgs = make_voc(tmp_path, stems, images=True)
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(imgs / "2012_999999.jpg")  # unlabelled
    ds = scan_folder(masks, probs, images_dir=imgs, ignore_index=255).raise_if_problems()
    assert ds.stems == sorted(stems)
    assert ds.shapes == [(6, 8)] * 3 and ds.num_classes == K and len(ds) == 3
    stem, labels, p, image = ds.load(0)
    assert stem == "2007_000032"
    np.testing.assert_array_equal(labels, random_labels((6, 8), seed=1))
    np.testing.assert_array_equal(p, random_probs((6, 8), seed=1))
    assert image.shape == (6, 8, 3) and image.dtype == np.uint8
    assert [item.stem for item in ds] == sorted(stems)


def test_iteration_is_lazy(tmp_path):
    masks, probs, _ = make_voc(tmp_path, ["a", "b"])
    ds = scan_folder(masks, probs, ignore_index=255)
    items = iter(ds)
    assert next(items).stem == "a"
    (probs / "b.npy").unlink()  # a later item is read only when it is reached
    with pytest.raises(ItemError, match=r"b\.npy: the file does not exist") as caught:
        next(items)
    assert caught.value.problem == InputProblem(probs / "b.npy", caught.value.problem.message, "b")


def test_scan_reads_only_the_headers_of_probability_files(tmp_path, monkeypatch):
    masks, probs, _ = make_voc(tmp_path, ["a", "b"])
    np.savez(probs / "b.npz", probs=random_probs((6, 8)))
    (probs / "b.npy").unlink()

    def refuse(*args, **kwargs):
        raise AssertionError("np.load called during the scan")

    monkeypatch.setattr(np, "load", refuse)
    ds = scan_folder(masks, probs, ignore_index=255)
    assert ds.problems == () and ds.stems == ["a", "b"]
    with pytest.raises(AssertionError, match=r"np\.load called"):
        ds.load(0)


def test_ade_like_sizes_may_differ(tmp_path):
    masks, probs = tmp_path / "m", tmp_path / "p"
    masks.mkdir(), probs.mkdir()
    for stem, shape in [("ADE_val_1", (5, 7)), ("ADE_val_2", (9, 4))]:
        Image.fromarray(random_labels(shape, k=150)).save(masks / f"{stem}.png")
        np.save(probs / f"{stem}.npy", random_probs(shape, k=150))
    ds = scan_folder(masks, probs, ignore_index=255).raise_if_problems()
    assert ds.shapes == [(5, 7), (9, 4)]
    assert [item.probs.shape for item in ds] == [(150, 5, 7), (150, 9, 4)]


def test_hwk_float16_npz_logits_and_tiff_masks(tmp_path):
    masks, probs = tmp_path / "m", tmp_path / "p"
    masks.mkdir(), probs.mkdir()
    labels = np.random.default_rng(0).integers(0, 300, (6, 8)).astype(np.uint16)
    tifffile.imwrite(masks / "x.tif", labels)
    logits = np.random.default_rng(0).standard_normal((6, 8, 300)).astype(np.float16)
    np.savez_compressed(probs / "x.npz", logits=logits)
    ds = scan_folder(masks, probs, layout="HWK").raise_if_problems()
    item = ds.load(0)
    assert ds.num_classes == 300 and item.probs.dtype == np.float16
    assert item.probs.shape == (300, 6, 8) and item.image is None
    np.testing.assert_array_equal(item.labels, labels)


def test_orphans_on_both_sides_are_listed_and_skippable(tmp_path):
    masks, probs, _ = make_voc(tmp_path, ["a", "b", "c"])
    (probs / "a.npy").unlink()
    (masks / "c.png").unlink()
    ds = scan_folder(masks, probs, ignore_index=255)
    assert ds.stems == ["b"]
    assert [(p.path, p.stem) for p in ds.problems] == [
        (masks / "a.png", "a"),
        (probs / "c.npy", "c"),
    ]
    with pytest.raises(DatasetError) as info:
        ds.raise_if_problems()
    lines = str(info.value).splitlines()
    assert lines[0] == "2 input problems:"
    assert lines[1] == (
        f"  {masks / 'a.png'}: this mask has no probability file; "
        f"expected {probs / 'a'}.npy, .npz or .pt."
    )
    assert lines[2] == (
        f"  {probs / 'c.npy'}: these probabilities have no mask; "
        f"expected {masks / 'c'}.png, .tif or .tiff."
    )
    good, skipped = ds.skip_bad()
    assert skipped == list(ds.problems) and good.problems == ()
    assert [item.stem for item in good] == ["b"]


def test_every_problem_of_one_item_is_reported(tmp_path):
    masks, probs, _ = make_voc(tmp_path, ["a", "b"])
    cut = (masks / "a.png").read_bytes()
    (masks / "a.png").write_bytes(cut[: len(cut) // 2])
    (probs / "a.npy").write_bytes(b"garbage")
    ds = scan_folder(masks, probs, ignore_index=255)
    assert [(p.path.name, p.stem) for p in ds.problems] == [("a.png", "a"), ("a.npy", "a")]
    assert "corrupt" in ds.problems[0].message and "corrupt" in ds.problems[1].message
    assert ds.stems == ["b"]


def test_size_mismatch_suggests_the_other_layout(tmp_path):
    masks, probs, _ = make_voc(tmp_path, ["a", "b"])
    np.save(probs / "a.npy", np.moveaxis(random_probs((6, 8)), 0, -1))  # stored (H, W, K)
    np.save(probs / "b.npy", random_probs((6, 9)))
    problems = scan_folder(masks, probs, ignore_index=255, num_classes=K).problems
    assert len(problems) == 3
    assert problems[0].message == (
        f"expected {K} classes (num_classes={K}); got 6 (shape (6, 8, 21) read as layout='KHW')."
    )
    assert problems[1].message == (
        "expected size 6x8 like the mask a.png; got 8x21 (shape "
        "(6, 8, 21) read as layout='KHW'); with layout='HWK' they match."
    )
    assert problems[2].path == probs / "b.npy"
    assert problems[2].message.startswith("expected size 6x8 like the mask b.png; got 6x9 (")
    assert "they match" not in problems[2].message


def test_out_of_range_labels_name_values_and_pixels(tmp_path):
    masks, probs, _ = make_voc(tmp_path, ["a", "b"])
    labels = np.zeros((6, 8), np.uint8)
    labels[0, :3], labels[1, 0] = 21, 40
    save_palette_png(masks / "a.png", labels)
    ds = scan_folder(masks, probs, ignore_index=255)
    assert [str(p) for p in ds.problems] == [
        f"{masks / 'a.png'}: expected labels to be integers in 0..20 or ignore_index=255 "
        "(as in 2 of the 2 probability files); got 21, 40 in 4 pixels."
    ]


def test_void_without_ignore_index_gets_a_hint(tmp_path):
    masks, probs, _ = make_voc(tmp_path, ["a"])
    (problem,) = scan_folder(masks, probs).problems
    assert problem.message == (
        "expected labels to be integers in 0..20 (as in 1 of the 1 probability files); got "
        "255 in 2 pixels; pass ignore_index=255 if it marks void pixels."
    )


def test_mixed_k_flags_the_odd_file(tmp_path):
    masks, probs, _ = make_voc(tmp_path, ["a", "b", "c"])
    np.save(probs / "b.npy", random_probs((6, 8), k=19))
    ds = scan_folder(masks, probs, ignore_index=255)
    (problem,) = ds.problems
    assert problem.path == probs / "b.npy" and problem.stem == "b"
    assert problem.message == (
        "expected 21 classes (as in 2 of the 3 probability files); got 19 "
        "(shape (19, 6, 8) read as layout='KHW')."
    )
    assert ds.num_classes == K and ds.skip_bad()[0].stems == ["a", "c"]


def test_k_must_match_the_class_names(tmp_path):
    masks, probs, _ = make_voc(tmp_path, ["a", "b"])
    names = [f"class{i}" for i in range(20)]
    ds = scan_folder(masks, probs, ignore_index=255, classes=names)
    assert ds.num_classes == 20 and ds.stems == []
    assert [p.message.split(";")[0] for p in ds.problems if p.path.suffix == ".npy"] == [
        "expected 20 classes (20 class names were given)"
    ] * 2
    with pytest.raises(DatasetError, match=r"^no usable item is left after skipping:\n  "):
        ds.skip_bad()


def test_classes_from_a_file_are_kept(tmp_path):
    masks, probs, _ = make_voc(tmp_path, ["a"])
    (tmp_path / "voc.txt").write_text("\n".join(f"c{i}" for i in range(K)))
    ds = scan_folder(masks, probs, ignore_index=255, classes=tmp_path / "voc.txt")
    assert ds.problems == () and ds.classes.names[20] == "c20"


def test_duplicate_stems_are_ambiguous(tmp_path):
    masks, probs, _ = make_voc(tmp_path, ["a", "b"])
    tifffile.imwrite(masks / "a.tif", random_labels((6, 8)))
    (problem,) = scan_folder(masks, probs, ignore_index=255).problems
    assert problem.path == masks / "a.png"
    assert problem.message == "expected one file per stem; a.png, a.tif share it."


def test_hidden_and_unrelated_files_are_ignored(tmp_path):
    masks, probs, _ = make_voc(tmp_path, ["a"])
    (masks / ".DS_Store").write_bytes(b"\x00")
    (masks / "readme.txt").write_text("VOC masks")
    (probs / ".b.npy.part").write_bytes(b"half written")
    (probs / "sub.npy").mkdir()
    ds = scan_folder(masks, probs, ignore_index=255)
    assert ds.problems == () and ds.stems == ["a"]


def test_empty_folder_is_a_problem(tmp_path):
    masks, probs = tmp_path / "m", tmp_path / "p"
    masks.mkdir(), probs.mkdir()
    np.save(probs / "a.npy", random_probs((2, 2)))
    ds = scan_folder(masks, probs)
    assert str(ds.problems[0]) == f"{masks}: expected .png / .tif / .tiff files; found none."
    assert ds.problems[0].stem is None
    assert ds.problems[1].path == probs / "a.npy"


def test_image_problems(tmp_path):
    masks, probs, imgs = make_voc(tmp_path, ["a", "b", "c", "d"], images=True)
    (imgs / "a.jpg").unlink()
    Image.fromarray(np.zeros((5, 8, 3), np.uint8)).save(imgs / "b.jpg")
    (imgs / "c.jpg").write_bytes(b"broken")
    messages = [
        str(p) for p in scan_folder(masks, probs, images_dir=imgs, ignore_index=255).problems
    ]
    assert messages[0] == (
        f"{masks / 'a.png'}: expected one image {imgs / 'a'}.png, .jpg or .jpeg; got none."
    )
    assert messages[1] == f"{imgs / 'b.jpg'}: expected size 6x8 like the mask b.png; got 5x8."
    assert messages[2].startswith(f"{imgs / 'c.jpg'}: cannot read the image, the file is corrupt")
    assert len(messages) == 3


def test_load_refuses_until_problems_are_resolved(tmp_path):
    masks, probs, _ = make_voc(tmp_path, ["a", "b"])
    (probs / "b.npy").unlink()
    ds = scan_folder(masks, probs, ignore_index=255)
    with pytest.raises(
        DatasetError,
        match=r"^call raise_if_problems\(\) or skip_bad\(\) first; "
        r"1 input problems:\n  .*b\.png: this mask has no probability file",
    ):
        ds.load(0)
    assert ds.skip_bad()[0].load(0).stem == "a"


def test_load_notices_files_changed_after_the_scan(tmp_path):
    masks, probs, _ = make_voc(tmp_path, ["a"])
    ds = scan_folder(masks, probs, ignore_index=255)
    np.save(probs / "a.npy", random_probs((6, 8), k=3))
    with pytest.raises(
        DatasetError,
        match=r"a\.png: the files changed after scan_folder: expected "
        r"labels \(6, 8\) and probabilities \(21, 6, 8\); got \(6, 8\) and \(3, 6, 8\)",
    ):
        ds.load(0)


def test_dataset_error_pickles_with_its_problems():
    err = DatasetError([InputProblem(Path("x.png"), "bad", "x")], "header")
    clone = pickle.loads(pickle.dumps(err))
    assert str(clone) == str(err) == "header:\n  x.png: bad"
    assert clone.problems == err.problems and isinstance(clone, ValueError)


def test_folder_arguments_are_checked(tmp_path):
    masks, probs, _ = make_voc(tmp_path, ["a"])
    with pytest.raises(
        FileNotFoundError,
        match=r"The 'probs_dir' parameter of scan_folder must be "
        r"an existing folder\. Got '.*nope' instead\.",
    ):
        scan_folder(masks, tmp_path / "nope")
    with pytest.raises(
        NotADirectoryError,
        match="The 'images_dir' parameter of scan_folder must "
        r"be a folder. Got the file '.*a\.png' instead.",
    ):
        scan_folder(masks, probs, images_dir=masks / "a.png")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"layout": "CHW"},
            "The 'layout' parameter of scan_folder must be 'KHW' or 'HWK'. Got 'CHW' instead.",
        ),
        (
            {"ignore_index": "255"},
            "The 'ignore_index' parameter of scan_folder must be an int or "
            "None. Got '255' instead.",
        ),
        (
            {"num_classes": 0},
            "The 'num_classes' parameter of scan_folder must be an int >= 1 or "
            "None. Got 0 instead.",
        ),
        ({"num_classes": True}, "The 'num_classes' parameter .* Got True instead."),
        (
            {"num_classes": 3, "classes": ["a", "b"]},
            "The 'num_classes' parameter of scan_folder "
            "must be 2, the number of class names. Got 3 instead.",
        ),
    ],
)
def test_bad_scan_parameters(tmp_path, kwargs, match):
    masks, probs, _ = make_voc(tmp_path, ["a"])
    with pytest.raises(ValueError, match=match):
        scan_folder(masks, probs, **kwargs)


def test_dataset_fields_are_plain_and_frozen(tmp_path):
    masks, probs, _ = make_voc(tmp_path, ["a"])
    ds = scan_folder(masks, probs, ignore_index=255)
    assert isinstance(ds, FolderDataset) and ds.layout == "KHW" and ds.ignore_index == 255
    with pytest.raises(dataclasses.FrozenInstanceError):
        ds.problems = ()
