"""Folder inputs that must never be lost in silence: problems found up front or per item."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

Image = pytest.importorskip("PIL.Image", reason="the io readers need Pillow")
tifffile = pytest.importorskip("tifffile", reason="the TIFF tests need tifffile")

from segaudit.io import (  # noqa: E402
    DatasetError,
    InputProblem,
    ItemError,
    read_class_names,
    read_label_mask,
    read_probs,
    scan_folder,
)

K = 4
SHAPE = (16, 16)


def make_folder(
    root: Path, stems=("a", "b", "c"), *, shape=SHAPE, images: bool = False
) -> tuple[Path, Path, Path]:
    """Masks with labels 1..K-1 and a void (0) top row, softmax-like probabilities."""
    masks, probs, imgs = root / "masks", root / "probs", root / "images"
    for folder in (masks, probs, imgs):
        folder.mkdir(exist_ok=True)
    for seed, stem in enumerate(stems):
        rng = np.random.default_rng(seed)
        labels = rng.integers(1, K, shape, dtype=np.uint8)
        labels[0] = 0
        p = rng.random((K, *shape), dtype=np.float32) + 0.05
        p[(labels, *np.indices(shape))] += 4.0
        Image.fromarray(labels).save(masks / f"{stem}.png")
        np.save(probs / f"{stem}.npy", p / p.sum(axis=0))
        if images:
            rgb = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
            Image.fromarray(rgb).save(imgs / f"{stem}.png")
    return masks, probs, imgs


def load_all(dataset) -> tuple[list[str], list[InputProblem]]:
    """Load every item as a --skip-bad scan loop does: a bad item is skipped, not fatal."""
    loaded, skipped = [], []
    for i in range(len(dataset)):
        try:
            loaded.append(dataset.load(i).stem)
        except ItemError as err:
            skipped.append(err.problem)
    return loaded, skipped


# --------------------------------------------------------------------------- per-item errors


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (np.nan, r"expected finite probabilities; got nan at class 2, row 3, column 5\."),
        (np.inf, r"expected finite probabilities; got inf at class 2, row 3, column 5\."),
        (-0.25, r"expected probabilities >= 0; got -0\.25 at class 2, row 3, column 5\. If the"),
    ],
)
def test_bad_probability_values_are_an_item_error_naming_the_file(tmp_path, value, match):
    masks, probs, _ = make_folder(tmp_path)
    p = np.load(probs / "b.npy")
    p[2, 3, 5] = value
    np.save(probs / "b.npy", p)
    ds = scan_folder(masks, probs, ignore_index=0, from_logits=False).raise_if_problems()
    with pytest.raises(ItemError, match=rf"^{probs / 'b.npy'}: {match}") as caught:
        ds.load(1)
    assert caught.value.problem.stem == "b" and caught.value.problem.path == probs / "b.npy"
    assert isinstance(caught.value, DatasetError) and isinstance(caught.value, ValueError)
    assert "batch" not in str(caught.value) and "LabelAudit" not in str(caught.value)
    assert load_all(ds) == (["a", "c"], [caught.value.problem])


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("layout", ["KHW", "HWK"])
def test_value_check_for_every_dtype_and_layout(tmp_path, dtype, layout):
    masks, probs, _ = make_folder(tmp_path, stems=("a",))
    p = np.load(probs / "a.npy").astype(dtype)
    p[0, 0, 0] = -0.0  # a negative zero is a zero
    p[3, 7, 2] = -0.5

    def save() -> None:
        stored = p if layout == "KHW" else np.moveaxis(p, 0, -1)
        np.save(probs / "a.npy", np.ascontiguousarray(stored))

    save()
    ds = scan_folder(masks, probs, layout=layout, ignore_index=0, from_logits=False)
    match = r"a\.npy: expected probabilities >= 0; got -0\.5 at class 3, row 7, column 2\."
    with pytest.raises(ItemError, match=match):
        ds.load(0)
    p[3, 7, 2] = 0.5
    save()
    assert ds.load(0).probs.dtype == dtype
    p[1, 15, 9] = np.nan
    save()
    unknown = scan_folder(masks, probs, layout=layout, ignore_index=0)
    with pytest.raises(ItemError, match=r"expected finite values; got nan at class 1, row 15, "):
        unknown.load(0)


def test_logits_may_be_negative_but_not_nan(tmp_path):
    masks, probs, _ = make_folder(tmp_path)
    np.save(probs / "a.npy", np.log(np.load(probs / "a.npy")))  # all negative
    p = np.log(np.load(probs / "b.npy"))
    p[0, 0, 1] = -np.inf
    np.save(probs / "b.npy", p)
    logits = scan_folder(masks, probs, ignore_index=0, from_logits=True)
    assert logits.load(0).probs.max() < 0
    with pytest.raises(ItemError, match=r"b\.npy: expected finite logits; got -inf at class 0"):
        logits.load(1)
    unknown = scan_folder(masks, probs, ignore_index=0)  # from_logits=None: only NaN / inf
    assert unknown.from_logits is None and unknown.load(0).stem == "a"
    probabilities = scan_folder(masks, probs, ignore_index=0, from_logits=False)
    with pytest.raises(ItemError, match=r"a\.npy: expected probabilities >= 0; got -"):
        probabilities.load(0)


def test_mask_symlink_dangling_after_the_scan_is_an_item_error(tmp_path):
    masks, probs, _ = make_folder(tmp_path)
    store = tmp_path / "store"
    store.mkdir()
    os.replace(masks / "a.png", store / "a.png")
    (masks / "a.png").symlink_to(store / "a.png")
    ds = scan_folder(masks, probs, ignore_index=0).raise_if_problems()
    (store / "a.png").unlink()
    with pytest.raises(ItemError, match=r"a\.png: broken symbolic link: its target '.*a\.png'"):
        ds.load(0)
    loaded, skipped = load_all(ds)
    assert loaded == ["b", "c"] and [(p.path, p.stem) for p in skipped] == [(masks / "a.png", "a")]


def test_files_corrupt_past_the_header_are_item_errors(tmp_path):
    masks, probs, imgs = make_folder(tmp_path, images=True)
    np.savez_compressed(probs / "b.npz", probs=np.load(probs / "b.npy"))
    (probs / "b.npy").unlink()
    data = bytearray((probs / "b.npz").read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(64)  # the header and the zip index are intact
    (probs / "b.npz").write_bytes(bytes(data))
    png = (imgs / "c.png").read_bytes()
    (imgs / "c.png").write_bytes(png[: len(png) // 2])  # header readable, pixels cut off
    ds = scan_folder(masks, probs, images_dir=imgs, ignore_index=0)
    assert ds.problems == ()  # only headers are read up front
    loaded, skipped = load_all(ds)
    assert loaded == ["a"]
    assert [(p.path, p.stem) for p in skipped] == [(probs / "b.npz", "b"), (imgs / "c.png", "c")]
    assert skipped[0].message.startswith("cannot read the probabilities")
    assert skipped[1].message.startswith("cannot read the image, the file is corrupt")


def test_files_changed_after_the_scan_are_item_errors(tmp_path):
    masks, probs, _ = make_folder(tmp_path)
    ds = scan_folder(masks, probs, ignore_index=0)
    Image.fromarray(np.full(SHAPE, 9, np.uint8)).save(masks / "a.png")  # 9 is not a class
    np.save(probs / "b.npy", np.full((K, 8, 8), 0.25, np.float32))
    (probs / "c.npy").unlink()
    loaded, skipped = load_all(ds)
    assert loaded == []
    assert [str(p) for p in skipped] == [
        f"{masks / 'a.png'}: expected labels to be integers in 0..3 or ignore_index=0; "
        "got 9 in 256 pixels.",
        f"{masks / 'b.png'}: the files changed after scan_folder: expected labels (16, 16) "
        "and probabilities (4, 16, 16); got (16, 16) and (4, 8, 8).",
        f"{probs / 'c.npy'}: the file does not exist (any more).",
    ]
    assert [p.stem for p in skipped] == ["a", "b", "c"]


def test_item_error_pickles_and_keeps_its_problem():
    err = ItemError(InputProblem(Path("x.npy"), "bad", "x"))
    clone = pickle.loads(pickle.dumps(err))
    assert type(clone) is ItemError and clone.problem == err.problem and str(clone) == "x.npy: bad"


def test_problems_left_are_a_dataset_error_not_an_item_error(tmp_path):
    masks, probs, _ = make_folder(tmp_path)
    (probs / "a.npy").unlink()
    ds = scan_folder(masks, probs, ignore_index=0)
    with pytest.raises(DatasetError, match="call raise_if_problems") as caught:
        ds.load(0)
    assert not isinstance(caught.value, ItemError)  # never to be skipped item by item


# --------------------------------------------------------------------------- up front


def test_downsample_that_does_not_divide_is_listed_up_front(tmp_path):
    masks, probs, _ = make_folder(tmp_path, stems=("a",))
    make_folder(tmp_path, stems=("b",), shape=(18, 18))
    ds = scan_folder(masks, probs, ignore_index=0, downsample=3)
    assert [str(p) for p in ds.problems] == [
        f"{masks / 'a.png'}: expected a height and width divisible by downsample=3; got 16x16."
    ]
    assert ds.stems == ["b"] and ds.problems[0].stem == "a"
    assert scan_folder(masks, probs, ignore_index=0, downsample=2).problems == ()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"downsample": 0}, r"'downsample' parameter of scan_folder must be an int >= 1\. Got 0"),
        ({"downsample": True}, r"'downsample' .* Got True instead"),
        ({"downsample": 2.0}, r"'downsample' .* Got 2\.0 instead"),
        ({"from_logits": 1}, r"'from_logits' .* must be True, False or None\. Got 1 instead"),
        ({"from_logits": "yes"}, r"'from_logits' .* Got 'yes' instead"),
    ],
)
def test_bad_new_scan_parameters(tmp_path, kwargs, match):
    masks, probs, _ = make_folder(tmp_path, stems=("a",))
    with pytest.raises(ValueError, match=match):
        scan_folder(masks, probs, **kwargs)


@pytest.mark.parametrize(
    ("array", "mode"),
    [
        (np.full(SHAPE, 40000, np.uint16), "I;16"),
        (np.full(SHAPE, 1.5, np.float32), "F"),
        (np.full(SHAPE, 70000, np.int32), "I"),
    ],
)
def test_images_that_are_not_8_bit_are_listed_up_front(tmp_path, array, mode, monkeypatch):
    masks, probs, imgs = make_folder(tmp_path, images=True)
    # Pillow writes no 32-bit PNG: a TIFF named .png is opened by its content all the same
    Image.fromarray(array).save(imgs / "b.png", format="PNG" if mode == "I;16" else "TIFF")
    with Image.open(imgs / "b.png") as img:
        assert img.mode == mode
    monkeypatch.setattr("segaudit.io._formats.read_image", None)  # the header only is read
    ds = scan_folder(masks, probs, images_dir=imgs, ignore_index=0)
    assert [str(p) for p in ds.problems] == [
        f"{imgs / 'b.png'}: expected an 8-bit colour or grayscale image; got mode {mode!r}."
    ]
    assert ds.problems[0].stem == "b" and ds.stems == ["a", "c"]


@pytest.mark.parametrize("folder", ["masks", "probs", "images"])
def test_broken_symlinks_are_problems_not_ignored(tmp_path, folder):
    masks, probs, imgs = make_folder(tmp_path, images=True)
    suffix = {"masks": ".png", "probs": ".npy", "images": ".png"}[folder]
    link = tmp_path / folder / f"b{suffix}"
    link.unlink()
    link.symlink_to(tmp_path / "gone" / f"b{suffix}")
    ds = scan_folder(masks, probs, images_dir=imgs, ignore_index=0)
    assert [str(p) for p in ds.problems] == [
        f"{link}: broken symbolic link: its target '{tmp_path / 'gone' / f'b{suffix}'}' "
        "does not exist."
    ]
    assert ds.problems[0].stem == "b" and ds.stems == ["a", "c"]


def test_mismatched_probability_size_is_listed_up_front(tmp_path):
    masks, probs, _ = make_folder(tmp_path)
    np.save(probs / "c.npy", np.full((K, 16, 8), 0.25, np.float32))
    ds = scan_folder(masks, probs, ignore_index=0)
    assert len(ds.problems) == 1 and ds.problems[0].path == probs / "c.npy"
    assert "expected size 16x16 like the mask c.png; got 16x8" in ds.problems[0].message


# --------------------------------------------------------------------------- byte order, dtypes


@pytest.mark.parametrize("dtype", [">f2", ">f4", ">f8", "<f4"])
@pytest.mark.parametrize("suffix", [".npy", ".npz"])
def test_big_endian_probabilities_are_returned_native(tmp_path, dtype, suffix):
    values = np.random.default_rng(0).random((K, 3, 5)).astype(dtype)
    path = tmp_path / f"p{suffix}"
    if suffix == ".npy":
        np.save(path, values)
    else:
        np.savez(path, probs=values)
    out = read_probs(path)
    assert out.dtype.isnative and out.dtype.itemsize == np.dtype(dtype).itemsize
    np.testing.assert_array_equal(out, values)
    hwk = read_probs(path, layout="HWK")
    assert hwk.dtype.isnative and hwk.shape == (5, K, 3)


@pytest.mark.skipif(np.dtype(np.longdouble).itemsize <= 8, reason="no extended precision here")
def test_extended_precision_probabilities_become_float64(tmp_path):
    values = np.random.default_rng(0).random((K, 3, 5)).astype(np.longdouble)
    np.save(tmp_path / "p.npy", values)
    out = read_probs(tmp_path / "p.npy")
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, values.astype(np.float64))


def test_big_endian_masks_are_returned_native(tmp_path):
    labels = (np.arange(12).reshape(3, 4) * 300).astype(">u2")
    tifffile.imwrite(tmp_path / "m.tif", labels, byteorder=">")
    Image.fromarray(labels.astype(np.uint16)).save(tmp_path / "m.png")  # stored big-endian
    for name in ("m.tif", "m.png"):
        out = read_label_mask(tmp_path / name)
        assert out.dtype.isnative and out.dtype.kind == "u"
        np.testing.assert_array_equal(out, labels)


def test_scan_of_big_endian_float16_probabilities(tmp_path):
    run_scan = pytest.importorskip("segaudit.cli._scan").run_scan
    masks, probs, _ = make_folder(tmp_path)
    for stem, dtype in (("a", ">f4"), ("b", ">f2"), ("c", "<f2")):
        np.save(probs / f"{stem}.npy", np.load(probs / f"{stem}.npy").astype(dtype))
    result = run_scan(masks, probs, tmp_path / "out", ignore_index=0, verbose=False)
    assert result.summary["images"] == 3 and (tmp_path / "out" / "report.html").is_file()


# --------------------------------------------------------------------------- end to end


def test_scan_names_the_file_with_nan_values(tmp_path):
    run_scan = pytest.importorskip("segaudit.cli._scan").run_scan
    masks, probs, _ = make_folder(tmp_path)
    p = np.load(probs / "b.npy")
    p[1, 2, 3] = np.nan
    np.save(probs / "b.npy", p)
    with pytest.raises(DatasetError, match=r"b\.npy: expected finite probabilities") as caught:
        run_scan(masks, probs, tmp_path / "out", ignore_index=0, verbose=False)
    assert "batch" not in str(caught.value) and "LabelAudit" not in str(caught.value)


def test_scan_with_ignore_index_zero_writes_the_report(tmp_path):
    run_scan = pytest.importorskip("segaudit.cli._scan").run_scan
    masks, probs, _ = make_folder(tmp_path)
    labels = np.asarray(Image.open(masks / "a.png")).copy()
    # a wrong 3x3 patch (one pixel alone would sit between pixels labelled its
    # predicted class and agreeing ones of its label: a border flip, left alone)
    labels[4:7, 4:7] = 1
    Image.fromarray(labels).save(masks / "a.png")
    result = run_scan(masks, probs, tmp_path / "out", ignore_index=0, verbose=False)
    text = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "void (ignore_index=0)" in text and result.summary["flagged pixels"] >= 1


# --------------------------------------------------------------------------- class files


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[" * 100_000 + "]" * 100_000, r"expected a JSON list or object of class names; got JSON"),
        ('{"a":' * 100_000 + "1" + "}" * 100_000, r"nested too deep to read"),
        ('{"0": "road", "0": "sky"}', r"expected each key once in a JSON object; got '0' twice"),
        ('[{"name": "a", "name": "b"}]', r"expected each key once .* got 'name' twice"),
        ('[{"id": -1, "name": "a"}]', r"expected class ids to be non-negative integers; got -1"),
        ('{"\u00b9": "a"}', r"expected class ids to be non-negative integers; got '\u00b9'"),
        ('[{"id": 0, "name": "a"}, {"id": 0, "name": "b"}]', r"got id 0 twice"),
        ('["road", 3]', r"class id 1 to be a name or an object with a string 'name'; got 3"),
        ('[{"name": ["x"]}]', r"with a string 'name'; got \{'name': \['x'\]\}"),
        (
            '[{"name": "a", "color": [0, 0, 256]}]',
            r"\[r, g, b\] ints in 0\.\.255\. Got \[0, 0, 256\]",
        ),
        ('[{"name": "a", "color": [0, 0, 1.5]}]', r"ints in 0\.\.255\. Got \[0, 0, 1\.5\]"),
        (
            '[{"name": "a", "color": ' + "[" * 500 + "]" * 500 + "}]",
            r"ints in 0\.\.255\. Got \[\[\[\[\.\.\.\]\]\]\] for class id 0",
        ),
        ('["a", "a"]', r"must be unique\. Got 'a' twice"),
    ],
)
def test_bad_class_files_name_the_file(tmp_path, text, match):
    path = tmp_path / "classes.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=rf"^{path}: .*{match}"):
        read_class_names(path)


def test_long_names_are_cut_short_in_messages(tmp_path):
    path = tmp_path / "classes.json"
    path.write_text(json.dumps([{"name": "x" * 10_000, "color": [1, 2]}]), encoding="utf-8")
    with pytest.raises(ValueError, match=r"Got \[1, 2\] for class id 0") as caught:
        read_class_names(path)
    path.write_text(json.dumps(["ok", ["y" * 10_000]]), encoding="utf-8")
    with pytest.raises(ValueError, match=r"class id 1 .* got \['yyy") as caught:
        read_class_names(path)
    assert len(str(caught.value)) < 400
