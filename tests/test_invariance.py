"""Invariance of every entry point under options that must not change results.

One registry of entry points (``ENTRY_POINTS``) and one of input variants
(``VARIANTS``), as sklearn's ``metrics/tests/test_common.py`` does: batch size,
n_jobs, kernel, dtype (float32/float16 holding the same values), memory layout,
read-only and memory-mapped input. The float dtypes need a word: segaudit's
thresholds are exact means of the given values, so float32 values and the same
values in float64 give bit-identical thresholds, ranks and masks (the
reference, rounding its means to float32, does not promise this).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

import segaudit
from conftest import make_dataset, softmax

# Exact results on random (often noisy) data: the set-up check's warning is
# beside the point here (it is tested in test_sanity.py).
pytestmark = pytest.mark.filterwarnings("ignore::segaudit.SetupWarning")

VOID = 255


# ---------------------------------------------------------------- entry points


def _mask(**fixed):
    def run(labels, probs, **options):
        return {
            "mask": segaudit.find_label_issues(labels, probs, verbose=False, **fixed, **options)
        }

    return run


def _scores(**fixed):
    def run(labels, probs, **options):
        image, pixel = segaudit.get_label_quality_scores(
            labels, probs, verbose=False, **fixed, **options
        )
        return {"image": image, "pixel": pixel}

    return run


ENTRY_POINTS: dict[str, Callable[..., dict[str, np.ndarray]]] = {
    "find_label_issues": _mask(),
    "find_label_issues[downsample=2]": _mask(downsample=2),
    "find_label_issues[downsample=2,mean]": _mask(downsample=2, label_pooling="mean"),
    "softmin": _scores(),
    "softmin[temperature=0.02]": _scores(temperature=0.02),
    "num_pixel_issues": _scores(method="num_pixel_issues"),
    "num_pixel_issues[downsample=2]": _scores(method="num_pixel_issues", downsample=2),
}


def assert_same(got, expected, *, image_atol=0.0, pixel_atol=0.0):
    """Masks must be identical; scores identical unless a tolerance is named."""
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key].shape == value.shape, key
        assert got[key].dtype == value.dtype, key
        if value.dtype == np.bool_:
            np.testing.assert_array_equal(got[key], value, err_msg=key)
        else:
            atol = image_atol if key == "image" else pixel_atol
            np.testing.assert_allclose(got[key], value, rtol=0, atol=atol, err_msg=key)


# ---------------------------------------------------------------- inputs


def continuous():
    """Continuous probabilities that float32 holds exactly (no ties)."""
    labels, probs = make_dataset(7, n=5, k=4, h=6, w=8, noise=0.4)
    return labels, probs.astype(np.float32).astype(np.float64)


def dyadic():
    """Probabilities w / 32 summing to exactly 1, exact in float16 (many ties)."""
    labels, probs = make_dataset(8, n=5, k=4, h=6, w=8, noise=0.4)
    weights = np.floor(probs * 32).astype(np.int64)
    top = probs.argmax(axis=1)[:, None]
    rest = 32 - weights.sum(axis=1, keepdims=True)
    np.put_along_axis(weights, top, np.take_along_axis(weights, top, axis=1) + rest, axis=1)
    assert (weights.sum(axis=1) == 32).all()
    return labels, weights / 32.0


BASES = {"continuous": continuous, "dyadic": dyadic}


@dataclass
class Variant:
    """Turn (labels, probs) into an equivalent input, and say how to compare."""

    make: Callable[..., tuple[Any, Any, dict[str, Any]]]
    bases: tuple[str, ...] = ("continuous", "dyadic")
    env: dict[str, str] = field(default_factory=dict)
    image_atol: float = 0.0
    marks: tuple[Any, ...] = ()


def _batch(images):
    def make(labels, probs, tmp_path):
        image = int(np.prod(probs.shape[1:]))
        return labels, probs, {"batch_size": max(int(images * image), 1)}

    return make


def _transposed(labels, probs, tmp_path):
    p = np.ascontiguousarray(probs.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    lab = np.ascontiguousarray(labels.transpose(2, 1, 0)).transpose(2, 1, 0)
    assert not p.flags.c_contiguous and not lab.flags.c_contiguous
    return lab, p, {}


def _strided(labels, probs, tmp_path):
    n, k, h, w = probs.shape
    big = np.full((n, k, 2 * h, 3 * w), 7.0)  # junk between the used elements
    big[:, :, ::2, ::3] = probs
    big_labels = np.full((n, 2 * h, 3 * w), 99)
    big_labels[:, ::2, ::3] = labels
    return big_labels[:, ::2, ::3], big[:, :, ::2, ::3], {}


def _read_only(labels, probs, tmp_path):
    labels, probs = labels.copy(), probs.copy()
    labels.setflags(write=False)
    probs.setflags(write=False)
    return labels, probs, {}


def _npy_memmap(labels, probs, tmp_path):
    np.save(tmp_path / "labels.npy", labels)
    np.save(tmp_path / "probs.npy", probs)
    lab = np.load(tmp_path / "labels.npy", mmap_mode="r")
    prb = np.load(tmp_path / "probs.npy", mmap_mode="r")
    assert isinstance(prb, np.memmap) and not prb.flags.writeable
    return lab, prb, {}


def _raw_memmap(labels, probs, tmp_path):
    path = tmp_path / "probs.f32"
    probs.astype(np.float32).tofile(path)
    return labels, np.memmap(path, dtype=np.float32, mode="r", shape=probs.shape), {}


def _zarr(labels, probs, tmp_path):
    import zarr

    z = zarr.open_array(
        tmp_path / "p.zarr",
        mode="w",
        shape=probs.shape,
        dtype=probs.dtype,
        chunks=(2, probs.shape[1], 3, 5),
    )
    z[...] = probs
    return labels, zarr.open_array(tmp_path / "p.zarr", mode="r"), {}


def _dask(labels, probs, tmp_path):
    import dask.array as da

    return da.from_array(labels, chunks=(2, 3, 8)), da.from_array(probs, chunks=(3, 2, 6, 4)), {}


VARIANTS = {
    "batch_size=1": Variant(lambda lab, p, tmp: (lab, p, {"batch_size": 1})),
    "batch_size=1 image+1": Variant(_batch(1.01)),
    "batch_size=2 images-1": Variant(_batch(1.99)),
    "batch_size=huge": Variant(lambda lab, p, tmp: (lab, p, {"batch_size": 10**12})),
    "n_jobs=1": Variant(lambda lab, p, tmp: (lab, p, {"n_jobs": 1})),
    "n_jobs=2": Variant(lambda lab, p, tmp: (lab, p, {"n_jobs": 2})),
    "n_jobs=-1": Variant(lambda lab, p, tmp: (lab, p, {"n_jobs": -1})),
    # the numpy twins sum the softmin weights in another order
    "kernel=numpy": Variant(
        lambda lab, p, tmp: (lab, p, {}), env={"SEGAUDIT_KERNEL": "numpy"}, image_atol=1e-12
    ),
    "float32": Variant(lambda lab, p, tmp: (lab, p.astype(np.float32), {})),
    "float16": Variant(lambda lab, p, tmp: (lab, p.astype(np.float16), {}), bases=("dyadic",)),
    "int32 labels": Variant(lambda lab, p, tmp: (lab.astype(np.int32), p, {})),
    "uint8 labels": Variant(lambda lab, p, tmp: (lab.astype(np.uint8), p, {})),
    "float labels": Variant(lambda lab, p, tmp: (lab.astype(np.float64), p, {})),
    "nested lists": Variant(lambda lab, p, tmp: (lab.tolist(), p.tolist(), {})),
    "fortran order": Variant(
        lambda lab, p, tmp: (np.asfortranarray(lab), np.asfortranarray(p), {})
    ),
    "transposed views": Variant(_transposed),
    "strided views": Variant(_strided),
    "read-only": Variant(_read_only),
    "np.load memmap": Variant(_npy_memmap),
    "np.memmap float32": Variant(_raw_memmap),
    "zarr": Variant(_zarr, marks=(pytest.mark.requires_zarr,)),
    "dask": Variant(_dask, marks=(pytest.mark.requires_dask,)),
}


def fingerprint(*arrays):
    digest = hashlib.sha256()
    for a in arrays:
        a = np.asarray(a)
        digest.update(str((a.shape, a.dtype)).encode())
        digest.update(np.ascontiguousarray(a).tobytes())
    return digest.hexdigest()


def _cases():
    for vname, variant in VARIANTS.items():
        for base in variant.bases:
            for entry in ENTRY_POINTS:
                yield pytest.param(
                    entry, vname, base, id=f"{entry}-{vname}-{base}", marks=variant.marks
                )


@pytest.fixture(scope="module")
def baselines():
    out = {}
    for base, make in BASES.items():
        labels, probs = make()
        out[base] = (labels, probs, {e: run(labels, probs) for e, run in ENTRY_POINTS.items()})
    return out


@pytest.mark.parametrize(("entry", "variant", "base"), list(_cases()))
def test_invariance(entry, variant, base, baselines, tmp_path, monkeypatch):
    labels, probs, expected = baselines[base]
    v = VARIANTS[variant]
    lab, prb, options = v.make(labels, probs, tmp_path)
    before = fingerprint(lab, prb)
    for key, value in v.env.items():
        monkeypatch.setenv(key, value)
    got = ENTRY_POINTS[entry](lab, prb, **options)
    assert_same(got, expected[entry], image_atol=v.image_atol)
    assert fingerprint(lab, prb) == before, "the input was modified"


def test_baselines_are_not_trivial(baselines):
    """The invariances above compare masks with issues in them, and ties in dyadic data."""
    for labels, probs, results in baselines.values():
        mask = results["find_label_issues"]["mask"]
        disagree = probs.argmax(axis=1) != labels
        assert 0 < mask.sum() < disagree.sum()
        assert results["find_label_issues[downsample=2]"]["mask"].any()
    labels, probs, _ = baselines["dyadic"]
    s = np.take_along_axis(probs, labels[:, None], axis=1)
    assert len(np.unique(s)) < s.size // 2


def test_kernel_fixture_sets_the_environment(kernel):
    assert os.environ["SEGAUDIT_KERNEL"] == kernel


# ---------------------------------------------------------------- from_logits


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_from_logits_equals_numpy_softmax(entry, dtype, kernel):
    rng = np.random.default_rng(3)
    labels, _ = make_dataset(3, n=4, k=5, h=6, w=4)
    logits = rng.normal(size=(4, 5, 6, 4)) * 3 + 2 * np.eye(5)[labels].transpose(0, 3, 1, 2)
    logits = logits.astype(dtype)
    before = fingerprint(logits)
    got = ENTRY_POINTS[entry](labels, logits, from_logits=True)
    expected = ENTRY_POINTS[entry](labels, softmax(logits))
    # exp may differ in its last bit between numpy and the compiled kernel
    assert_same(got, expected, image_atol=1e-12, pixel_atol=1e-15)
    assert fingerprint(logits) == before


# ---------------------------------------------------------------- ignore_index


def _with_voids(seed, garbage=None):
    labels, probs = make_dataset(seed, n=4, k=3, h=6, w=8, noise=0.4)
    rng = np.random.default_rng(seed)
    void = rng.random(labels.shape) < 0.3
    void[2] = True  # an image with no labelled pixel
    labels = np.where(void, VOID, labels)
    if garbage is not None:
        probs = np.where(void[:, None], garbage, probs)
    return labels, probs, void


def _compact(labels, probs, keep):
    """The kept pixels, in flat order, as one image of one row."""
    k = probs.shape[1]
    lab = labels[keep][None, None, :]
    prb = np.moveaxis(probs, 1, -1)[keep].T.reshape(1, k, 1, -1)
    return lab, np.ascontiguousarray(prb)


@pytest.mark.parametrize("batch_size", [None, 1])
def test_void_pixels_are_neither_flagged_nor_counted(kernel, batch_size):
    """Void pixels behave exactly as if they had been cut out of the dataset.

    Cutting keeps the flat order of the other pixels, so even ties break alike.
    """
    labels, probs, void = _with_voids(0)
    mask = segaudit.find_label_issues(
        labels, probs, ignore_index=VOID, verbose=False, batch_size=batch_size
    )
    lab, prb = _compact(labels, probs, ~void)
    expected = np.zeros(labels.shape, dtype=bool)
    expected[~void] = segaudit.find_label_issues(lab, prb, verbose=False).ravel()
    assert expected.any()
    np.testing.assert_array_equal(mask, expected)

    image, pixel = segaudit.get_label_quality_scores(
        labels,
        probs,
        method="num_pixel_issues",
        ignore_index=VOID,
        verbose=False,
        batch_size=batch_size,
    )
    valid = (~void).sum(axis=(1, 2))
    with np.errstate(invalid="ignore"):
        expected_image = np.where(valid > 0, 1 - expected.sum(axis=(1, 2)) / valid, 1.0)
    np.testing.assert_allclose(image, expected_image, rtol=0, atol=1e-12)
    assert np.isnan(pixel[void]).all()
    np.testing.assert_array_equal(
        pixel[~void],
        np.take_along_axis(probs, np.where(void, 0, labels)[:, None], axis=1)[:, 0][~void],
    )


def test_void_pixels_leave_softmin_scores_alone(kernel):
    labels, probs, void = _with_voids(1)
    image, pixel = segaudit.get_label_quality_scores(
        labels, probs, ignore_index=VOID, verbose=False
    )
    for i in range(labels.shape[0]):
        keep = ~void[i]
        if not keep.any():
            assert image[i] == 1.0
            continue
        lab, prb = _compact(labels[i : i + 1], probs[i : i + 1], keep[None])
        alone, _ = segaudit.get_label_quality_scores(lab, prb, verbose=False)
        np.testing.assert_allclose(image[i], alone[0], rtol=0, atol=1e-12)
    assert np.isnan(pixel[void]).all() and not np.isnan(pixel[~void]).any()


@pytest.mark.parametrize("garbage", [0.0, 0.9])
@pytest.mark.parametrize("entry", ["find_label_issues", "softmin", "num_pixel_issues"])
def test_probabilities_under_void_pixels_do_not_matter(entry, garbage):
    """Rows that are not even probabilities (all 0, or summing to 2.7) are ignored,
    without a warning, since void pixels are never counted anywhere."""
    labels, probs, _ = _with_voids(2)
    _, junk, _ = _with_voids(2, garbage=garbage)
    run = ENTRY_POINTS[entry]
    assert_same(run(labels, junk, ignore_index=VOID), run(labels, probs, ignore_index=VOID))


@pytest.mark.parametrize("label_pooling", ["mode", "mean"])
def test_probabilities_under_void_pixels_do_not_matter_when_downsampling(label_pooling):
    labels, probs, _ = _with_voids(2)
    _, junk, _ = _with_voids(2, garbage=0.9)
    options = {"ignore_index": VOID, "downsample": 2, "label_pooling": label_pooling}
    run = ENTRY_POINTS["find_label_issues"]
    assert_same(run(labels, junk, **options), run(labels, probs, **options))
