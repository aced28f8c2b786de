"""The dask backend gives the in-memory API's answers, on every scheduler and chunking."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest

dask = pytest.importorskip("dask", reason="the dask backend needs the optional 'dask' extra")
da = pytest.importorskip("dask.array", reason="the dask backend needs the optional 'dask' extra")

import segaudit  # noqa: E402
import segaudit.engine._select as select_module  # noqa: E402
from segaudit.drivers import _dask_blocks  # noqa: E402
from segaudit.drivers._dask import (  # noqa: E402
    find_label_issues_dask,
    quality_scores_dask,
)
from segaudit.drivers._dask_graph import import_dask, is_dask_array  # noqa: E402
from segaudit.engine._block import Options  # noqa: E402

pytestmark = pytest.mark.requires_dask

N, K, H, W = 7, 4, 12, 12

# pred_probs chunkings; labels always get a different one, to test the alignment.
CHUNKINGS = {
    "one-image": (1, -1, -1, -1),
    "three-images": (3, -1, -1, -1),
    "uneven": ((2, 4, 1), -1, -1, -1),
    "spatial": (3, -1, 5, 4),
    "classes": (2, 2, -1, -1),
    "single": (-1, -1, -1, -1),
}
LABEL_CHUNKS = (2, 5, 7)

# (options of the public API, how the data is made)
CASES = {
    "plain": ({}, {}),
    "ignore_index": ({"ignore_index": 255}, {"void": True}),
    "from_logits": ({"from_logits": True}, {"logits": True}),
    "downsample-mode": ({"downsample": 2}, {}),
    "downsample-mean": (
        {"downsample": 2, "label_pooling": "mean", "ignore_index": 255},
        {"void": True},
    ),
    "ties": ({}, {"ties": True}),
    "float64": ({}, {"dtype": np.float64}),
    "float16-downsample": (
        {"downsample": 3, "ignore_index": 255},
        {"dtype": np.float16, "void": True},
    ),
}


def make_data(*, seed=0, dtype=np.float32, ties=False, void=False, logits=False):
    """Random probabilities, labels that mostly follow them, some flipped."""
    rng = np.random.default_rng(seed)
    if ties:
        table = rng.dirichlet(np.ones(K), size=5)
        probs = table[rng.integers(0, 5, (N, H, W))]
    else:
        probs = rng.dirichlet(np.full(K, 0.5), size=(N, H, W))
    labels = probs.argmax(-1)
    flip = rng.random(labels.shape) < 0.25
    labels[flip] = rng.integers(0, K, flip.sum())
    if logits:
        probs = np.log(probs) * 3.0 + 1.5
    if void:
        labels[rng.random(labels.shape) < 0.1] = 255
        labels[1] = 255  # an image with no labelled pixel
    return labels, np.ascontiguousarray(probs.transpose(0, 3, 1, 2).astype(dtype))


def to_dask(labels, probs, chunks):
    return da.from_array(labels, chunks=LABEL_CHUNKS), da.from_array(probs, chunks=chunks)


def options(kwargs):
    return Options(K, **kwargs)


@pytest.fixture(params=["sync", "threads"])
def local(request):
    with dask.config.set(scheduler=request.param):
        yield request.param


@pytest.fixture(scope="module")
def client():
    """Two worker processes on loopback that import this checkout of segaudit."""
    distributed = pytest.importorskip(
        "distributed", reason="the distributed tests need dask.distributed"
    )
    src = str(Path(segaudit.__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", path)
        cluster = distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        )
    with cluster, distributed.Client(cluster, set_as_default=False) as c:
        yield c


@pytest.mark.parametrize("chunks", CHUNKINGS.values(), ids=CHUNKINGS.keys())
def test_mask_matches_numpy_for_any_chunking(local, chunks):
    labels, probs = make_data()
    expected = segaudit.find_label_issues(labels, probs, verbose=False)
    assert expected.any()
    mask = find_label_issues_dask(*to_dask(labels, probs, chunks), options({}), verbose=False)
    assert isinstance(mask, da.Array)
    assert mask.shape == (N, H, W) and mask.dtype == np.bool_
    np.testing.assert_array_equal(mask.compute(), expected)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
@pytest.mark.parametrize("chunks", ["uneven", "spatial"])
def test_mask_matches_numpy_with_options(case, chunks):
    kwargs, data = case
    labels, probs = make_data(**data)
    expected = segaudit.find_label_issues(labels, probs, verbose=False, **kwargs)
    with dask.config.set(scheduler="threads"):
        mask = find_label_issues_dask(
            *to_dask(labels, probs, CHUNKINGS[chunks]), options(kwargs), verbose=False
        )
        np.testing.assert_array_equal(mask.compute(), expected)


@pytest.mark.parametrize("method", ["softmin", "num_pixel_issues"])
@pytest.mark.parametrize("case", ["plain", "ignore_index", "downsample-mean", "from_logits"])
def test_scores_match_numpy(local, method, case):
    kwargs, data = CASES[case]
    if method == "softmin":
        kwargs = {k: v for k, v in kwargs.items() if k not in ("downsample", "label_pooling")}
    labels, probs = make_data(**data)
    image, pixel = segaudit.get_label_quality_scores(
        labels, probs, method=method, verbose=False, temperature=0.2, **kwargs
    )
    got_image, got_pixel = quality_scores_dask(
        *to_dask(labels, probs, CHUNKINGS["uneven"]),
        options(kwargs),
        method=method,
        temperature=0.2,
        verbose=False,
    )
    assert isinstance(got_image, np.ndarray) and isinstance(got_pixel, da.Array)
    assert got_pixel.dtype == np.float64
    np.testing.assert_array_equal(got_image, image)
    np.testing.assert_array_equal(got_pixel.compute(), pixel)


def test_exact_selection_through_gathers_and_tie_scans(monkeypatch, local):
    # A tiny gather limit sends find_cutoff through every level and the tie scan.
    labels, probs = make_data(ties=True)
    for limit in (0, 3, 50):
        monkeypatch.setattr(select_module, "GATHER_LIMIT", limit)
        expected = segaudit.find_label_issues(labels, probs, verbose=False)
        mask = find_label_issues_dask(
            *to_dask(labels, probs, CHUNKINGS["uneven"]), options({}), verbose=False
        )
        np.testing.assert_array_equal(mask.compute(), expected)


@pytest.mark.parametrize("which", ["labels", "pred_probs"])
def test_one_dask_input_is_enough(local, which):
    labels, probs = make_data()
    expected = segaudit.find_label_issues(labels, probs, verbose=False)
    dl, dp = to_dask(labels, probs, CHUNKINGS["uneven"])
    args = (dl, probs) if which == "labels" else (labels, dp)
    assert is_dask_array(args[0]) or is_dask_array(args[1])
    mask = find_label_issues_dask(*args, options({}), verbose=False)
    np.testing.assert_array_equal(mask.compute(), expected)


def test_no_issues_at_all(local):
    labels, probs = make_data()
    labels = probs.argmax(1)
    dl, dp = to_dask(labels, probs, CHUNKINGS["three-images"])
    assert not find_label_issues_dask(dl, dp, options({}), verbose=False).compute().any()
    image, _ = quality_scores_dask(dl, dp, options({}), method="num_pixel_issues", verbose=False)
    np.testing.assert_array_equal(image, np.ones(N))


def test_both_kernels_give_the_same_answer(kernel):
    labels, probs = make_data(ties=True, void=True)
    expected = segaudit.find_label_issues(labels, probs, verbose=False, ignore_index=255)
    with dask.config.set(scheduler="sync"):
        mask = find_label_issues_dask(
            *to_dask(labels, probs, CHUNKINGS["spatial"]),
            options({"ignore_index": 255}),
            verbose=False,
        )
        np.testing.assert_array_equal(mask.compute(), expected)


def test_mask_is_lazy_and_reads_pred_probs_once(monkeypatch):
    calls = []
    summarise = _dask_blocks.summarise_block

    def counting(*args, **kwargs):
        calls.append(kwargs["image_offset"])
        return summarise(*args, **kwargs)

    monkeypatch.setattr(_dask_blocks, "summarise_block", counting)
    labels, probs = make_data()
    expected = segaudit.find_label_issues(labels, probs, verbose=False)
    dl, dp = to_dask(labels, probs, CHUNKINGS["three-images"])
    with dask.config.set(scheduler="sync"):
        mask = find_label_issues_dask(dl, dp, options({}), verbose=False)
        assert sorted(calls) == [0, 3, 6]  # one read of each block of pred_probs
        assert mask.chunks[0] == (3, 3, 1)
        graph = dict(mask.__dask_graph__())
        assert not any(dp.name in str(key) for key in graph)
        first, second = mask.compute(), mask.compute()
    assert sorted(calls) == [0, 3, 6]
    np.testing.assert_array_equal(first, expected)
    np.testing.assert_array_equal(second, expected)  # the kept summaries are not modified


def first_error(labels, probs, **kwargs):
    with pytest.raises(ValueError) as info:
        segaudit.find_label_issues(labels, probs, verbose=False, **kwargs)
    return str(info.value)


@pytest.mark.parametrize("chunks", ["one-image", "uneven", "spatial"])
def test_errors_name_the_first_bad_image(local, chunks):
    labels, probs = make_data()
    labels[4, 2, 3] = 9
    probs[6, 1, 0, 0] = np.nan
    message = first_error(labels, probs)
    assert re.search(r"got \S*9\)? at image 4, row 2, column 3", message)
    with pytest.raises(ValueError, match=re.escape(message)):
        find_label_issues_dask(
            *to_dask(labels, probs, CHUNKINGS[chunks]), options({}), verbose=False
        )
    labels[4, 2, 3] = 0
    message = first_error(labels, probs)
    assert re.search(r"got \S*nan\)? at class 1 of image 6, row 0, column 0", message)
    with pytest.raises(ValueError, match=re.escape(message)):
        quality_scores_dask(*to_dask(labels, probs, CHUNKINGS[chunks]), options({}), verbose=False)


def test_row_sums_warn_like_numpy(local):
    labels, probs = make_data()
    probs = probs * np.float32(1.1)
    with pytest.warns(UserWarning, match="do not sum to 1") as expected:
        segaudit.find_label_issues(labels, probs, verbose=False)
    for run in (find_label_issues_dask, quality_scores_dask):
        with pytest.warns(UserWarning, match="do not sum to 1") as got:
            run(*to_dask(labels, probs, CHUNKINGS["uneven"]), options({}), verbose=False)
        assert [str(w.message) for w in got] == [str(w.message) for w in expected]


def test_unknown_method():
    labels, probs = make_data()
    with pytest.raises(ValueError, match=r"'method' parameter .* Got 'median' instead"):
        quality_scores_dask(
            *to_dask(labels, probs, CHUNKINGS["uneven"]), options({}), method="median"
        )


def test_progress_bar(local, capsys):
    labels, probs = make_data()
    expected = segaudit.find_label_issues(labels, probs, verbose=False)
    mask = find_label_issues_dask(
        *to_dask(labels, probs, CHUNKINGS["uneven"]), options({}), verbose=True
    )
    np.testing.assert_array_equal(mask.compute(), expected)
    assert "reading pred_probs" in capsys.readouterr().err


@pytest.mark.requires_zarr
@pytest.mark.parametrize("name", ["mask.zarr", "mask.npy"])
def test_output_is_written_atomically(local, tmp_path, name):
    out = tmp_path / name
    for seed in (0, 1):  # the second run replaces the first
        labels, probs = make_data(seed=seed)
        expected = segaudit.find_label_issues(labels, probs, verbose=False)
        got = find_label_issues_dask(
            *to_dask(labels, probs, CHUNKINGS["uneven"]), options({}), verbose=False, out=out
        )
        np.testing.assert_array_equal(got[:], expected)
        np.testing.assert_array_equal(read_mask(out), expected)
        assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def read_mask(out):
    if out.suffix == ".npy":
        return np.load(out)
    import zarr

    return zarr.open_array(str(out), mode="r")[:]


def test_bad_output_fails_before_any_work(monkeypatch, tmp_path):
    monkeypatch.setattr(_dask_blocks, "summarise_block", None)  # any read would fail
    labels, probs = make_data()
    dl, dp = to_dask(labels, probs, CHUNKINGS["uneven"])
    with pytest.raises(
        ValueError, match=r"'out' parameter of find_label_issues must be a path ending in '.npy'"
    ):
        find_label_issues_dask(dl, dp, options({}), verbose=False, out=tmp_path / "mask.tif")
    with pytest.raises(FileNotFoundError, match="folder of 'out' does not exist"):
        find_label_issues_dask(dl, dp, options({}), verbose=False, out=tmp_path / "x" / "m.npy")


def test_input_error_leaves_no_output(local, tmp_path):
    labels, probs = make_data()
    labels[3, 0, 0] = 99
    with pytest.raises(ValueError, match="image 3, row 0, column 0"):
        find_label_issues_dask(
            *to_dask(labels, probs, CHUNKINGS["uneven"]),
            options({}),
            verbose=False,
            out=tmp_path / "mask.npy",
        )
    assert list(tmp_path.iterdir()) == []


def test_missing_dask_says_which_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "dask", None)
    monkeypatch.setitem(sys.modules, "dask.array", None)
    with pytest.raises(ImportError, match=re.escape("pip install 'segaudit[dask]'")) as info:
        import_dask()
    assert isinstance(info.value.__cause__, ImportError)
    assert not is_dask_array(np.zeros(3))


def test_numpy_inputs_do_not_use_dask():
    labels, probs = make_data()
    assert not is_dask_array(labels) and not is_dask_array(probs)
    assert all(map(is_dask_array, to_dask(labels, probs, CHUNKINGS["uneven"])))


def test_public_api_dispatches_dask_inputs(tmp_path):
    labels, probs = make_data(void=True)
    dl, dp = to_dask(labels, probs, CHUNKINGS["spatial"])
    expected = segaudit.find_label_issues(labels, probs, verbose=False, ignore_index=255)
    image, pixel = segaudit.get_label_quality_scores(labels, probs, verbose=False, ignore_index=255)
    with dask.config.set(scheduler="threads"):
        mask = segaudit.find_label_issues(dl, dp, verbose=False, ignore_index=255)
        got_image, got_pixel = segaudit.get_label_quality_scores(
            dl, dp, verbose=False, ignore_index=255
        )
        assert isinstance(mask, da.Array) and isinstance(got_pixel, da.Array)
        np.testing.assert_array_equal(mask.compute(), expected)
        np.testing.assert_array_equal(got_image, image)
        np.testing.assert_array_equal(got_pixel.compute(), pixel)
        written = segaudit.find_label_issues(
            dl, dp, verbose=False, ignore_index=255, out=tmp_path / "mask.npy"
        )
        np.testing.assert_array_equal(written, expected)
        with pytest.warns(UserWarning, match="do not sum to 1") as record:
            segaudit.find_label_issues(dl, dp * 1.1, verbose=False, ignore_index=255)
    assert record[0].filename == __file__  # the warning points at the caller


# dask.distributed: two worker processes, the same answers.

DISTRIBUTED_CASES = ["plain", "ignore_index", "downsample-mean", "from_logits", "ties"]


@pytest.mark.parametrize("case", DISTRIBUTED_CASES)
@pytest.mark.parametrize("chunks", ["uneven", "spatial"])
def test_distributed_mask_matches_numpy(client, case, chunks):
    kwargs, data = CASES[case]
    labels, probs = make_data(**data)
    expected = segaudit.find_label_issues(labels, probs, verbose=False, **kwargs)
    with dask.config.set(scheduler=client):
        mask = find_label_issues_dask(
            *to_dask(labels, probs, CHUNKINGS[chunks]), options(kwargs), verbose=False
        )
        assert isinstance(mask, da.Array)
        np.testing.assert_array_equal(mask.compute(), expected)


@pytest.mark.parametrize("method", ["softmin", "num_pixel_issues"])
def test_distributed_scores_match_numpy(client, method):
    kwargs = (
        {"ignore_index": 255} if method == "softmin" else {"ignore_index": 255, "downsample": 2}
    )
    labels, probs = make_data(void=True)
    image, pixel = segaudit.get_label_quality_scores(
        labels, probs, method=method, verbose=False, **kwargs
    )
    with dask.config.set(scheduler=client):
        got_image, got_pixel = quality_scores_dask(
            *to_dask(labels, probs, CHUNKINGS["spatial"]),
            options(kwargs),
            method=method,
            verbose=False,
        )
        np.testing.assert_array_equal(got_image, image)
        np.testing.assert_array_equal(got_pixel.compute(), pixel)


def test_distributed_errors_and_progress(client, capsys):
    labels, probs = make_data()
    expected = segaudit.find_label_issues(labels, probs, verbose=False)
    with dask.config.set(scheduler=client):
        mask = find_label_issues_dask(
            *to_dask(labels, probs, CHUNKINGS["one-image"]), options({}), verbose=True
        )
        np.testing.assert_array_equal(mask.compute(), expected)
        assert "reading pred_probs" in capsys.readouterr().err
        labels[5, 0, 9] = -1
        labels[6, 0, 0] = 7
        message = first_error(labels, probs)
        assert "image 5, row 0, column 9" in message
        with pytest.raises(ValueError, match=re.escape(message)):
            find_label_issues_dask(
                *to_dask(labels, probs, CHUNKINGS["one-image"]), options({}), verbose=False
            )


@pytest.mark.requires_zarr
@pytest.mark.parametrize("name", ["mask.zarr", "mask.npy"])
def test_distributed_output(client, tmp_path, name):
    labels, probs = make_data(ties=True)
    expected = segaudit.find_label_issues(labels, probs, verbose=False)
    with dask.config.set(scheduler=client):
        got = find_label_issues_dask(
            *to_dask(labels, probs, CHUNKINGS["uneven"]),
            options({}),
            verbose=False,
            out=str(tmp_path / name),
        )
    np.testing.assert_array_equal(read_mask(tmp_path / name), expected)
    np.testing.assert_array_equal(got[:], expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_distributed_tie_scan(client, monkeypatch):
    monkeypatch.setattr(select_module, "GATHER_LIMIT", 0)  # read on the client only
    labels, probs = make_data(ties=True)
    expected = segaudit.find_label_issues(labels, probs, verbose=False)
    with dask.config.set(scheduler=client):
        mask = find_label_issues_dask(
            *to_dask(labels, probs, CHUNKINGS["uneven"]), options({}), verbose=False
        )
        np.testing.assert_array_equal(mask.compute(), expected)


# filter_by="confident_regions" and method="region_fraction" (issue #10)

REGION_CASES = {
    "plain": ({}, {}),
    "ignore_index": ({"ignore_index": 255}, {"void": True}),
    "from_logits": ({"from_logits": True}, {"logits": True}),
    "float64": ({}, {"dtype": np.float64}),
}


def _blobby(seed=0, **data):
    """make_data, with labels in blocks so that regions span several pixels."""
    labels, probs = make_data(seed=seed, **data)
    blocks = np.repeat(np.repeat(labels[:, ::3, ::3], 3, axis=1), 3, axis=2)[:, :H, :W]
    return np.where(labels == 255, 255, blocks), probs


@pytest.mark.parametrize("case", REGION_CASES.values(), ids=REGION_CASES.keys())
@pytest.mark.parametrize("chunks", ["one-image", "uneven", "spatial", "single"])
def test_confident_regions_mask_matches_numpy(local, case, chunks):
    kwargs, data = case
    labels, probs = _blobby(**data)
    expected = segaudit.find_label_issues(
        labels, probs, verbose=False, filter_by="confident_regions", **kwargs
    )
    default = segaudit.find_label_issues(labels, probs, verbose=False, **kwargs)
    assert expected.any() and not np.array_equal(expected, default)
    opts = Options(K, filter_by="confident_regions", **kwargs)
    mask = find_label_issues_dask(*to_dask(labels, probs, CHUNKINGS[chunks]), opts, verbose=False)
    assert isinstance(mask, da.Array) and mask.dtype == np.bool_
    np.testing.assert_array_equal(mask.compute(), expected)


@pytest.mark.parametrize("case", ["plain", "ignore_index"])
def test_region_fraction_scores_match_numpy(local, case):
    kwargs, data = REGION_CASES[case]
    labels, probs = _blobby(**data)
    image, pixel = segaudit.get_label_quality_scores(
        labels, probs, method="region_fraction", verbose=False, temperature=0.2, **kwargs
    )
    got_image, got_pixel = quality_scores_dask(
        *to_dask(labels, probs, CHUNKINGS["uneven"]),
        Options(K, filter_by="confident_regions", **kwargs),
        method="region_fraction",
        temperature=0.2,
        verbose=False,
    )
    np.testing.assert_array_equal(got_image, image)  # softmin: the same bits either way
    np.testing.assert_array_equal(got_pixel.compute(), pixel)


def test_confident_regions_reads_pred_probs_once(monkeypatch):
    labels, probs = _blobby()
    expected = segaudit.find_label_issues(
        labels, probs, verbose=False, filter_by="confident_regions"
    )
    calls = []
    real = _dask_blocks.summarise_part

    def counting(*args, **kwargs):
        calls.append(args[0].shape[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(_dask_blocks, "summarise_part", counting)
    import segaudit.drivers._dask as dask_driver

    monkeypatch.setattr(dask_driver, "summarise_part", counting)
    with dask.config.set(scheduler="sync"):
        mask = find_label_issues_dask(
            *to_dask(labels, probs, CHUNKINGS["three-images"]),
            Options(K, filter_by="confident_regions"),
            verbose=False,
        )
        np.testing.assert_array_equal(mask.compute(), expected)
    assert sum(calls) == N  # every image summarised once, the mask from the kept parts


def test_confident_regions_distributed(client):
    labels, probs = _blobby(void=True)
    expected = segaudit.find_label_issues(
        labels, probs, verbose=False, filter_by="confident_regions", ignore_index=255
    )
    with dask.config.set(scheduler=client):
        mask = find_label_issues_dask(
            *to_dask(labels, probs, CHUNKINGS["uneven"]),
            Options(K, ignore_index=255, filter_by="confident_regions"),
            verbose=False,
        )
        np.testing.assert_array_equal(mask.compute(), expected)


# Several models (a list of pred_probs arrays): combined per block, the in-memory list's answers.

MODEL_CHUNKS = [CHUNKINGS["one-image"], CHUNKINGS["uneven"], CHUNKINGS["spatial"]]


def make_models(*, logits=False, void=False, dtypes=(np.float32, np.float64, np.float16)):
    """Three models' arrays (different seeds and dtypes) and the labels of the first."""
    labels, first = _blobby(seed=0, logits=logits, void=void, dtype=dtypes[0])
    pairs = zip((1, 2), dtypes[1:], strict=True)
    others = [make_data(seed=s, logits=logits, dtype=d)[1] for s, d in pairs]
    return labels, [first, *others]


def dask_models(probs, which=(0, 1, 2)):
    """The models as dask arrays, each chunked its own way (the others stay numpy)."""
    return [
        da.from_array(p, chunks=MODEL_CHUNKS[i]) if i in which else p for i, p in enumerate(probs)
    ]


MODEL_CASES = {
    "plain": ({}, {}),
    "from_logits": ({"from_logits": True}, {"logits": True}),
    "ignore_index": ({"ignore_index": 255}, {"void": True}),
}


@pytest.mark.parametrize("case", MODEL_CASES.values(), ids=MODEL_CASES.keys())
@pytest.mark.parametrize("which", [(0, 1, 2), (1,), ()], ids=["all-dask", "one-dask", "labels"])
@pytest.mark.parametrize("filter_by", ["self_confidence", "confident_regions"])
def test_models_mask_matches_numpy(local, case, which, filter_by):
    kwargs, data = case
    labels, probs = make_models(**data)
    expected = segaudit.find_label_issues(
        labels, probs, verbose=False, filter_by=filter_by, **kwargs
    )
    single = segaudit.find_label_issues(
        labels, probs[0], verbose=False, filter_by=filter_by, **kwargs
    )
    assert expected.any() and not np.array_equal(expected, single)  # the combination matters
    dl = da.from_array(labels, chunks=LABEL_CHUNKS) if not which else labels
    mask = segaudit.find_label_issues(
        dl, dask_models(probs, which), verbose=False, filter_by=filter_by, **kwargs
    )
    assert isinstance(mask, da.Array)
    np.testing.assert_array_equal(mask.compute(), expected)


@pytest.mark.parametrize("method", ["softmin", "num_pixel_issues", "region_fraction"])
@pytest.mark.parametrize("case", ["plain", "from_logits"])
def test_models_scores_match_numpy(local, method, case):
    kwargs, data = MODEL_CASES[case]
    labels, probs = make_models(**data)
    image, pixel = segaudit.get_label_quality_scores(
        labels, probs, method=method, verbose=False, **kwargs
    )
    got_image, got_pixel = segaudit.get_label_quality_scores(
        da.from_array(labels, chunks=LABEL_CHUNKS),
        dask_models(probs),
        method=method,
        verbose=False,
        **kwargs,
    )
    np.testing.assert_array_equal(got_image, image)
    np.testing.assert_array_equal(got_pixel.compute(), pixel)


def test_models_read_each_block_once(monkeypatch):
    import segaudit.drivers._dask_blocks as blocks

    labels, probs = make_models()
    expected = segaudit.find_label_issues(labels, probs, verbose=False)
    calls = []
    real = blocks.combine_models

    def counting(batches, **kwargs):
        calls.append((len(batches), batches[0].shape[0], kwargs["image_offset"]))
        return real(batches, **kwargs)

    monkeypatch.setattr(blocks, "combine_models", counting)
    with dask.config.set(scheduler="sync"):
        mask = segaudit.find_label_issues(labels, dask_models(probs), verbose=False)
        assert sorted(calls) == [(3, 1, i) for i in range(N)]  # model 0's chunks: one image
        assert mask.chunks[0] == (1,) * N
        np.testing.assert_array_equal(mask.compute(), expected)
        np.testing.assert_array_equal(mask.compute(), expected)
    assert len(calls) == N  # the mask comes from the kept summaries, not a second read


def test_models_errors_and_warnings_match_numpy(local):
    labels, probs = make_models()
    probs[2][5, 1, 3, 4] = np.nan
    message = first_error(labels, probs)
    assert "pred_probs[2]" in message and "image 5, row 3, column 4" in message
    for func in (segaudit.find_label_issues, segaudit.get_label_quality_scores):
        with pytest.raises(ValueError, match=re.escape(message)):
            func(da.from_array(labels, chunks=LABEL_CHUNKS), dask_models(probs), verbose=False)
    labels, probs = make_models()
    probs[1] = probs[1] * 1.1
    with pytest.warns(UserWarning, match="do not sum to 1") as expected:
        segaudit.find_label_issues(labels, probs, verbose=False)
    with pytest.warns(UserWarning, match="do not sum to 1") as got:
        segaudit.find_label_issues(labels, dask_models(probs), verbose=False)
    assert [str(w.message) for w in got] == [str(w.message) for w in expected]


def test_models_bad_lists_fail_clearly():
    labels, probs = make_models()
    models = dask_models(probs)
    with pytest.raises(ValueError, match=r"arrays of one shape.*\(7, 4, 12, 12\) at index 0"):
        segaudit.find_label_issues(labels, [models[0], models[1][:, :, :6]], verbose=False)
    with pytest.raises(ValueError, match="non-empty list"):
        segaudit.find_label_issues(da.from_array(labels), [], verbose=False)


def test_models_distributed(client):
    labels, probs = make_models(logits=True)
    options = {"from_logits": True, "filter_by": "confident_regions", "verbose": False}
    expected = segaudit.find_label_issues(labels, probs, **options)
    with dask.config.set(scheduler=client):
        mask = segaudit.find_label_issues(labels, dask_models(probs), **options)
        np.testing.assert_array_equal(mask.compute(), expected)
