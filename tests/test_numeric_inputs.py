"""Every valid numeric input works, and every invalid one gets a clear error.

Byte order, float widths (float16 to longdouble), integer range of
``ignore_index``, real booleans, NaN scores, class names, the ``predicted``
maps that ``LabelAudit.iter_images`` yields, ``plt.show`` in
``display_issues``, and the numba cache location on a read-only install.
Engine results are compared with native-order float64 input, with the
compiled kernels and with their numpy twins (the ``kernel`` fixture).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import matplotlib
import numpy as np
import pytest

import segaudit
from conftest import make_dataset

matplotlib.use("Agg")
import matplotlib.pyplot as plt

N, K, H, W = 4, 3, 6, 8


def dataset(k: int = K, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """A well-behaved dataset: a good model and a few wrong labels (no set-up warning)."""
    return make_dataset(seed, N, k, H, W, noise=0.1, strength=3.0)


def no_warnings(call):
    """Run `call`, fail on any warning, return its result."""
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        out = call()
    assert [str(w.message) for w in record] == []
    return out


# ------------------------------------------------------------ engine entry points


def _engine(name):
    """Entry points of the engine, as ``(labels, probs, **opts) -> tuple of arrays``."""
    calls = {
        "find_label_issues": lambda lab, p, **o: (
            segaudit.find_label_issues(lab, p, verbose=False, **o),
        ),
        "find_label_issues downsample": lambda lab, p, **o: (
            segaudit.find_label_issues(lab, p, verbose=False, downsample=2, **o),
        ),
        "softmin": lambda lab, p, **o: segaudit.get_label_quality_scores(
            lab, p, verbose=False, **o
        ),
        "num_pixel_issues": lambda lab, p, **o: segaudit.get_label_quality_scores(
            lab, p, method="num_pixel_issues", verbose=False, **o
        ),
        "LabelAudit": _audit,
    }
    return calls[name]


def _audit(labels, probs, *, batch_size=None, ignore_index=None, from_logits=False):
    audit = segaudit.LabelAudit(
        num_classes=probs.shape[1], ignore_index=ignore_index, from_logits=from_logits
    )
    step = 1 if batch_size else len(labels)
    for i in range(0, len(labels), step):
        audit.update(labels[i : i + step], probs[i : i + step])
    return audit.find_label_issues(), *audit.get_label_quality_scores()


ENGINE = [
    "find_label_issues",
    "find_label_issues downsample",
    "softmin",
    "num_pixel_issues",
    "LabelAudit",
]


def assert_same(got, expected):
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert g.dtype == e.dtype
        np.testing.assert_array_equal(g, e)


PROBS_VARIANTS = {
    # name: (probability dtype, dtype of the native reference input)
    "big-endian float32": (">f4", "<f4"),
    "big-endian float64": (">f8", "<f8"),
    "big-endian float16": (">f2", "<f2"),
    "longdouble": (np.longdouble, "<f8"),
    "little-endian float32": ("<f4", "<f4"),
}
LABEL_VARIANTS = [">i8", ">i4", ">u2", ">f8", "<i8", "u1"]


@pytest.mark.parametrize("func", ENGINE)
@pytest.mark.parametrize("variant", list(PROBS_VARIANTS))
def test_probability_dtypes_give_the_native_results(kernel, func, variant):
    labels, probs = dataset()
    dtype, native = PROBS_VARIANTS[variant]
    expected = no_warnings(lambda: _engine(func)(labels, probs.astype(native)))
    got = no_warnings(lambda: _engine(func)(labels, probs.astype(native).astype(dtype)))
    assert_same(got, expected)


@pytest.mark.parametrize("func", ENGINE)
@pytest.mark.parametrize("dtype", LABEL_VARIANTS)
def test_label_dtypes_give_the_native_results(kernel, func, dtype):
    labels, probs = dataset()
    expected = _engine(func)(labels, probs)
    assert_same(no_warnings(lambda: _engine(func)(labels.astype(dtype), probs)), expected)


@pytest.mark.parametrize("func", ENGINE)
def test_big_endian_logits_and_void(kernel, func):
    labels, probs = dataset()
    labels[0, :2] = 255
    logits = np.log(probs) + 0.7
    opts = {"from_logits": True, "ignore_index": 255}
    expected = _engine(func)(labels, logits, **opts)
    got = no_warnings(lambda: _engine(func)(labels.astype(">i4"), logits.astype(">f8"), **opts))
    assert_same(got, expected)


@pytest.mark.parametrize("func", ENGINE)
def test_big_endian_memmap_is_read_batch_by_batch(kernel, func, tmp_path):
    labels, probs = dataset()
    np.save(tmp_path / "p.npy", probs.astype(">f4"))
    np.save(tmp_path / "y.npy", labels.astype(">i2"))
    mp = np.load(tmp_path / "p.npy", mmap_mode="r")
    my = np.load(tmp_path / "y.npy", mmap_mode="r")
    assert mp.dtype == np.dtype(">f4") and not mp.flags.writeable
    opts = {"batch_size": K * H * W}  # one image per batch
    expected = _engine(func)(labels, probs.astype(np.float32), **opts)
    assert_same(no_warnings(lambda: _engine(func)(my, mp, **opts)), expected)
    np.testing.assert_array_equal(mp, probs.astype(">f4"))  # never written to


def test_find_label_issues_out_keeps_float64_precision_of_big_endian_input(kernel, tmp_path):
    # the score summary on disk must be float64 for '>f8' (a float32 one would round ties)
    labels, probs = make_dataset(5, N, K, H, W, quantise=3, noise=0.1)
    expected = segaudit.find_label_issues(labels, probs, verbose=False)
    got = segaudit.find_label_issues(
        labels, probs.astype(">f8"), verbose=False, out=tmp_path / "m.npy"
    )
    np.testing.assert_array_equal(got, expected)


def test_score_summary_type_follows_the_width_not_the_byte_order():
    from segaudit.kernels._batch import score_dtype

    for dtype in (">f8", "<f8", np.longdouble):
        assert score_dtype(np.dtype(dtype), False) == np.float64
    for dtype in (">f4", "<f2", ">f2"):
        assert score_dtype(np.dtype(dtype), False) == np.float32


@pytest.mark.parametrize(("dtype", "native"), [(">f4", "<f4"), (np.longdouble, "<f8")])
def test_summaries_take_any_byte_order_and_width(dtype, native):
    labels, probs = dataset()
    probs = probs.astype(native)
    issues = segaudit.find_label_issues(labels, probs, verbose=False)
    assert issues.any()
    p, y = probs.astype(dtype), labels.astype(">i8")
    pd_expected = segaudit.common_label_issues(issues, labels, probs, verbose=False)
    assert segaudit.common_label_issues(issues, y, p, verbose=False).equals(pd_expected)
    np.testing.assert_array_equal(
        segaudit.filter_by_class(1, issues, y, p),
        segaudit.filter_by_class(1, issues, labels, probs),
    )
    regions = segaudit.find_issue_regions(issues, y, p)
    expected = segaudit.find_issue_regions(issues, labels, probs)
    assert len(regions) > 0 and regions.equals(expected)
    try:
        assert len(segaudit.display_issues(issues, y, p, show=False)) > 0
    finally:
        plt.close("all")


def test_bad_value_in_big_endian_input_names_the_value_and_pixel(kernel):
    labels, probs = dataset()
    probs = probs.astype(">f4")
    probs[2, 1, 3, 4] = np.nan
    with pytest.raises(ValueError, match=r"got nan at class 1 of image 2, row 3, column 4\.$"):
        segaudit.find_label_issues(labels, probs, verbose=False, batch_size=K * H * W)
    labels = labels.astype(">i8")
    labels[3, 5, 7] = 9
    with pytest.raises(ValueError, match=r"got 9 at image 3, row 5, column 7\.$"):
        segaudit.get_label_quality_scores(labels, dataset()[1], verbose=False)


# ------------------------------------------------------------ float16 row sums


def _float16_probabilities(k: int, how: str) -> tuple[np.ndarray, np.ndarray]:
    labels, probs = make_dataset(7, 3, k, 4, 4, noise=0.05, strength=6.0)
    # 2 x 2 blocks of one class, so that downsample=2 keeps the model right
    labels = labels.repeat(2, axis=1).repeat(2, axis=2)
    probs = probs.repeat(2, axis=2).repeat(2, axis=3)
    if how == "rounded":
        return labels, probs.astype(np.float16)
    logits = np.log(probs).astype(np.float16)  # a softmax computed in float16 arithmetic
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return labels, (e / e.sum(axis=1, keepdims=True, dtype=np.float16)).astype(np.float16)


@pytest.mark.parametrize("func", ENGINE)
@pytest.mark.parametrize("k", [2, 19, 150])
@pytest.mark.parametrize("how", ["rounded", "float16 softmax"])
def test_valid_float16_probabilities_do_not_warn(kernel, func, k, how):
    labels, probs = _float16_probabilities(k, how)
    deviation = np.abs(probs.astype(np.float64).sum(axis=1) - 1).max()
    assert deviation > 1e-4  # more than the float32/float64 tolerance: rounding is visible
    no_warnings(lambda: _engine(func)(labels, probs))
    no_warnings(lambda: _engine(func)(labels, probs.astype(">f2")))


@pytest.mark.parametrize("func", ["find_label_issues", "softmin"])
def test_float16_rows_far_from_one_still_warn(kernel, func):
    labels, probs = _float16_probabilities(19, "rounded")
    with pytest.warns(UserWarning, match=r"do not sum to 1.*from_logits=True"):
        _engine(func)(labels, (probs * 1.2).astype(np.float16))


# ------------------------------------------------------------ ignore_index range

TOO_BIG = [2**63, -(2**63) - 1, 10**30]


def _ignore_index_calls(value):
    labels, probs = dataset()
    issues = np.ones(labels.shape, bool)
    return {
        "find_label_issues": lambda: segaudit.find_label_issues(
            labels, probs, verbose=False, ignore_index=value
        ),
        "get_label_quality_scores": lambda: segaudit.get_label_quality_scores(
            labels, probs, verbose=False, ignore_index=value
        ),
        "common_label_issues": lambda: segaudit.common_label_issues(
            issues, labels, probs, verbose=False, ignore_index=value
        ),
        "filter_by_class": lambda: segaudit.filter_by_class(
            0, issues, labels, probs, ignore_index=value
        ),
        "display_issues": lambda: segaudit.display_issues(
            issues, labels, probs, ignore_index=value, show=False
        ),
        "find_issue_regions": lambda: segaudit.find_issue_regions(
            issues, labels, probs, ignore_index=value
        ),
        "LabelAudit": lambda: segaudit.LabelAudit(num_classes=K, ignore_index=value),
    }


@pytest.mark.parametrize("func", list(_ignore_index_calls(0)))
@pytest.mark.parametrize("value", TOO_BIG)
def test_ignore_index_must_fit_in_int64(func, value):
    with pytest.raises(ValueError, match=r"'ignore_index' .*") as info:
        _ignore_index_calls(value)[func]()
    message = str(info.value)
    assert "-2**63..2**63-1" in message and f"Got {value} instead" in message
    assert func.split(".")[0] in message


@pytest.mark.parametrize("func", list(_ignore_index_calls(0)))
@pytest.mark.parametrize("value", [2**63 - 1, -(2**63)])
def test_ignore_index_at_the_int64_limits_works(func, value):
    try:
        _ignore_index_calls(value)[func]()
    finally:
        plt.close("all")


# ------------------------------------------------------------ real booleans


def _bool_calls(param, value):
    labels, probs = dataset()
    issues = np.ones(labels.shape, bool)
    engine = {
        "find_label_issues": lambda: segaudit.find_label_issues(
            labels, probs, **{"verbose": False, param: value}
        ),
        "get_label_quality_scores": lambda: segaudit.get_label_quality_scores(
            labels, probs, **{"verbose": False, param: value}
        ),
        "num_pixel_issues": lambda: segaudit.get_label_quality_scores(
            labels, probs, method="num_pixel_issues", **{"verbose": False, param: value}
        ),
    }
    if param == "verbose":
        engine["common_label_issues"] = lambda: segaudit.common_label_issues(
            issues, labels, probs, verbose=value
        )
    return engine


@pytest.mark.parametrize("param", ["from_logits", "verbose"])
@pytest.mark.parametrize("value", ["no", "False", 0, 1, None, 0.0, [False]])
def test_bool_options_must_be_real_bools(param, value):
    for func, call in _bool_calls(param, value).items():
        name = "get_label_quality_scores" if func == "num_pixel_issues" else func
        with pytest.raises(ValueError, match=rf"'{param}' parameter of {name} ") as info:
            call()
        assert f"must be True or False. Got {value!r} instead." in str(info.value)


@pytest.mark.parametrize("value", [np.bool_(False), False])
def test_numpy_bools_are_bools(value, capsys):
    labels, probs = dataset()
    expected = segaudit.find_label_issues(labels, probs, verbose=False)
    got = segaudit.find_label_issues(labels, probs, verbose=value, from_logits=value)
    np.testing.assert_array_equal(got, expected)
    segaudit.common_label_issues(got, labels, probs, verbose=value)
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(("param", "value"), [("show", "yes"), ("show", 1), ("block", "no")])
def test_display_issues_bool_options(param, value):
    labels, probs = dataset()
    with pytest.raises(ValueError, match=rf"'{param}' .* True or False\. Got {value!r} instead"):
        segaudit.display_issues(np.ones(labels.shape, bool), labels, probs, **{param: value})


# ------------------------------------------------------------ issues_from_scores NaN


@pytest.mark.parametrize("at", [0, 2])
def test_issues_from_scores_refuses_nan_image_scores(at):
    scores = np.array([0.5, 0.05, 0.01, 0.2])
    scores[at] = np.nan
    match = rf"'image_scores' .* numbers, not NaN\. Got NaN at index {at} instead"
    with pytest.raises(ValueError, match=match):
        segaudit.issues_from_scores(scores, threshold=0.5)
    with pytest.raises(ValueError, match=match):
        segaudit.issues_from_scores(scores, np.zeros((4, 2, 2)), threshold=0.5)


def test_nan_pixel_scores_are_void_pixels_never_issues():
    labels, probs = dataset()
    labels[1, 0, :] = 255
    image, pixel = segaudit.get_label_quality_scores(labels, probs, verbose=False, ignore_index=255)
    assert np.isnan(pixel[1, 0]).all() and not np.isnan(image).any()
    mask = segaudit.issues_from_scores(image, pixel, threshold=1.0)
    assert not mask[1, 0].any()
    np.testing.assert_array_equal(mask, ~np.isnan(pixel))


# ------------------------------------------------------------ display_issues


@pytest.mark.parametrize("names", [["a", "b"], ["a", "b", "c", "d"]])
def test_display_issues_needs_one_name_per_class(names):
    labels, probs = dataset()
    issues = np.ones(labels.shape, bool)
    with pytest.raises(ValueError, match=rf"'class_names' .* 3 names .* Got {len(names)} instead"):
        segaudit.display_issues(issues, labels, probs, class_names=names, show=False)


def test_display_issues_names_without_pred_probs_cover_every_label():
    labels, _ = dataset()
    labels[0, 0, 0] = 4
    issues = np.ones(labels.shape, bool)
    match = r"'class_names' .* at least 5 names \(one per class id 0\.\.4 in labels\)\. Got 3"
    with pytest.raises(ValueError, match=match):
        segaudit.display_issues(issues, labels, class_names=["a", "b", "c"], show=False)
    try:
        figures = segaudit.display_issues(issues, labels, class_names=list("abcdef"), show=False)
        assert len(figures) == 1 + N  # the legend, then one figure per image
    finally:
        plt.close("all")


def test_display_issues_calls_plt_show_once_and_returns_the_figures(monkeypatch):
    labels, probs = dataset()
    calls = []
    monkeypatch.setattr(plt, "show", lambda **kw: calls.append(kw))
    issues = segaudit.find_label_issues(labels, probs, verbose=False)
    try:
        figures = segaudit.display_issues(issues, labels, probs, top=2)
        assert calls == [{}] and len(figures) == 2
        segaudit.display_issues(issues, labels, probs, top=2, block=False)
        assert calls == [{}, {"block": False}]
        segaudit.display_issues(issues, labels, probs, top=2, show=False)
        assert len(calls) == 2
    finally:
        plt.close("all")


def test_display_issues_on_agg_with_a_display_does_not_warn(monkeypatch):
    # matplotlib warns "non-interactive, and thus cannot be shown" here; the figures are returned
    monkeypatch.setenv("DISPLAY", ":0")
    labels, probs = dataset()
    try:
        figures = no_warnings(
            lambda: segaudit.display_issues(np.ones(labels.shape, bool), labels, probs, top=1)
        )
        assert len(figures) == 1
    finally:
        plt.close("all")


# ------------------------------------------------------------ find_issue_regions


@pytest.mark.parametrize("background", [3, 99, -1, 2**64])
def test_regions_background_must_be_a_class(background):
    labels, probs = dataset()
    issues = np.ones(labels.shape, bool)
    match = rf"'background' .* None or a class id in 0\.\.2\. Got {background} instead"
    with pytest.raises(ValueError, match=match):
        segaudit.find_issue_regions(issues, labels, probs, background=background)


def test_regions_background_with_predicted_must_be_non_negative():
    labels, _ = dataset()
    with pytest.raises(ValueError, match=r"'background' .* class id \(>= 0\)\. Got -1 instead"):
        segaudit.find_issue_regions(
            np.ones(labels.shape, bool), labels, predicted=labels, background=-1
        )


def test_regions_accept_the_predicted_maps_of_iter_images():
    labels, probs = dataset()
    labels[:, :2, :3] = 255
    audit = segaudit.LabelAudit(num_classes=K, ignore_index=255)
    audit.update(labels, probs)
    images = list(audit.iter_images())
    assert any((im.predicted == -1).any() for im in images)
    stack = {f: np.stack([getattr(im, f) for im in images]) for f in ("issues", "predicted")}
    scores = np.stack([im.scores for im in images])
    got = segaudit.find_issue_regions(
        stack["issues"], labels, predicted=stack["predicted"], pixel_scores=scores, ignore_index=255
    )
    filled = np.where(labels == 255, 0, stack["predicted"])
    expected = segaudit.find_issue_regions(
        stack["issues"], labels, predicted=filled, pixel_scores=scores, ignore_index=255
    )
    assert len(got) > 0 and got.equals(expected)
    from_probs = segaudit.find_issue_regions(stack["issues"], labels, probs, ignore_index=255)
    assert got.drop(columns="mean_self_confidence").equals(
        from_probs.drop(columns="mean_self_confidence")
    )


def test_regions_still_refuse_negative_predictions_on_labelled_pixels():
    labels, _ = dataset()
    labels[0, 0, 0] = 255
    predicted = labels.copy()
    predicted[labels == 255] = -1
    predicted[2, 3, 4] = -1
    with pytest.raises(ValueError, match=r"'predicted' .* Got -1 at image 2, row 3, column 4"):
        segaudit.find_issue_regions(
            np.ones(labels.shape, bool), labels, predicted=predicted, ignore_index=255
        )


def test_regions_huge_boundary_width_is_the_image_size():
    labels, probs = dataset()
    issues = segaudit.find_label_issues(labels, probs, verbose=False)
    expected = segaudit.find_issue_regions(issues, labels, probs, boundary_width=max(H, W))
    got = segaudit.find_issue_regions(issues, labels, probs, boundary_width=2**62)
    assert len(got) > 0 and got.equals(expected)


# ------------------------------------------------------------ numba cache location

_CACHE_SCRIPT = textwrap.dedent(
    """
    import sys, tempfile
    if sys.argv[1] == "no-temp":
        tempfile.tempdir = "/dev/null/not-a-folder"
    import numpy as np
    import segaudit
    from segaudit.kernels import _jit, _numba
    assert _numba.__file__.startswith(sys.argv[2]), _numba.__file__
    print("CACHE", _jit.CACHE, _jit.CACHE_DIR)
    data = np.load(sys.argv[3])
    image, pixel = segaudit.get_label_quality_scores(data["labels"], data["probs"],
                                                     verbose=False)
    np.save(sys.argv[4], np.concatenate([image, pixel.ravel()]))
    """
)


def _read_only_install(tmp_path: Path) -> Path:
    """Copy the package where numba's in-tree cache cannot be created (even by root)."""
    site = tmp_path / "site"
    src = Path(segaudit.__file__).parent
    shutil.copytree(src, site / "segaudit", ignore=shutil.ignore_patterns("__pycache__"))
    (site / "segaudit" / "kernels" / "__pycache__").write_text("a file, not a folder")
    return site


@pytest.mark.parametrize("case", ["temp folder", "no-temp"])
def test_kernels_work_where_numba_cannot_cache(tmp_path, case):
    site = _read_only_install(tmp_path)
    labels, probs = dataset()
    np.savez(tmp_path / "data.npz", labels=labels, probs=probs)
    blocked = "/dev/null/not-a-folder"
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    env.update(
        HOME=blocked,
        XDG_CACHE_HOME=blocked,
        NUMBA_CACHE_DIR=blocked,
        TMPDIR=str(tmp_path / "tmp"),
        PYTHONPATH=str(site),
        PYTHONDONTWRITEBYTECODE="1",
        SEGAUDIT_KERNEL="numba",
    )
    (tmp_path / "tmp").mkdir()
    script = tmp_path / "run.py"
    script.write_text(_CACHE_SCRIPT)
    mode = "no-temp" if case == "no-temp" else "temp"
    run = subprocess.run(
        [
            sys.executable,
            str(script),
            mode,
            str(site),
            str(tmp_path / "data.npz"),
            str(tmp_path / "out.npy"),
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr
    notices = [line for line in run.stderr.splitlines() if "segaudit:" in line]
    assert len(notices) == 1, run.stderr
    folder = tmp_path / "tmp" / f"segaudit-numba-cache-{os.getuid()}"
    if case == "no-temp":
        assert "CACHE False None" in run.stdout
        assert re.search(r"compiled again in every new process", notices[0])
        assert not folder.exists()
    else:
        assert f"CACHE True {folder}" in run.stdout
        assert re.search(rf"caching them in {re.escape(str(folder))} instead", notices[0])
        assert any(folder.rglob("*.nbi"))  # numba's cache index files landed there
    image, pixel = segaudit.get_label_quality_scores(labels, probs, verbose=False)
    out = np.load(tmp_path / "out.npy")
    np.testing.assert_array_equal(out[N:], pixel.ravel())
    np.testing.assert_allclose(out[:N], image, rtol=1e-12)


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="folder ownership is a POSIX notion")
def test_a_temp_cache_folder_of_someone_else_is_never_used(tmp_path, monkeypatch):
    from segaudit.kernels import _jit

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    folder = tmp_path / f"segaudit-numba-cache-{os.getuid()}"
    folder.mkdir(mode=0o777)
    folder.chmod(0o777)  # writable by anyone: compiled code there cannot be trusted
    assert _jit._private_temp_folder() is None
    folder.chmod(0o700)
    assert _jit._private_temp_folder() == str(folder)
    folder.rmdir()
    (tmp_path / "elsewhere").mkdir()
    folder.symlink_to(tmp_path / "elsewhere")
    assert _jit._private_temp_folder() is None


# ------------------------------------------------------------ error locations


def test_errors_name_the_global_image_never_a_batch(kernel):
    labels, probs = dataset()
    probs[3, 2, 1, 5] = np.inf
    labels[2, 4, 6] = 7
    one_image = K * H * W
    calls = {
        "find_label_issues": lambda: segaudit.find_label_issues(
            labels, probs, verbose=False, batch_size=one_image
        ),
        "get_label_quality_scores": lambda: segaudit.get_label_quality_scores(
            labels, probs, verbose=False, batch_size=one_image
        ),
    }
    for call in calls.values():
        with pytest.raises(ValueError, match=r"got 7 at image 2, row 4, column 6\.$") as info:
            call()
        assert "batch" not in str(info.value)
    labels[2, 4, 6] = 0
    for call in calls.values():
        with pytest.raises(ValueError, match=r"got inf at class 2 of image 3, row 1, column 5\.$"):
            call()
    audit = segaudit.LabelAudit(num_classes=K)
    audit.update(labels[:2], probs[:2])
    with pytest.raises(ValueError, match=r"got inf at class 2 of image 3, row 1, column 5\.$"):
        audit.update(labels[2:], probs[2:])
