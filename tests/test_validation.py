"""Bad input gets a clear error (SPEC.md, last section), from every public function.

Each message must say what was expected and what was given: the shape, the
value, the first bad (image, row, column).
"""

from __future__ import annotations

import re
import warnings

import matplotlib
import numpy as np
import pytest

import segaudit
from conftest import make_dataset

matplotlib.use("Agg")
import matplotlib.pyplot as plt

N, K, H, W = 3, 3, 4, 6


def good():
    return make_dataset(0, N, K, H, W)


def issues_for(labels, probs):
    """An all-flagged mask of the (N, H, W) that `pred_probs` implies (else `labels`)."""
    shape = np.shape(probs)
    if len(shape) == 4:
        return np.ones((shape[0], shape[2], shape[3]), dtype=bool)
    return np.ones(np.shape(labels), dtype=bool)


def _display(labels, probs):
    try:
        return segaudit.display_issues(issues_for(labels, probs), labels, probs)
    finally:
        plt.close("all")


FUNCS = {
    "find_label_issues": lambda lab, p: segaudit.find_label_issues(lab, p, verbose=False),
    "get_label_quality_scores": lambda lab, p: segaudit.get_label_quality_scores(
        lab, p, verbose=False
    ),
    "num_pixel_issues": lambda lab, p: segaudit.get_label_quality_scores(
        lab, p, method="num_pixel_issues", verbose=False
    ),
    "common_label_issues": lambda lab, p: segaudit.common_label_issues(
        issues_for(lab, p), lab, p, verbose=False
    ),
    "filter_by_class": lambda lab, p: segaudit.filter_by_class(0, issues_for(lab, p), lab, p),
    "display_issues": _display,
}
ENGINE = ("find_label_issues", "get_label_quality_scores", "num_pixel_issues")
SUMMARIES = ("common_label_issues", "filter_by_class", "display_issues")


def raises_with(call, *patterns, error=ValueError):
    """Call, expect `error`, and check that its message matches every pattern."""
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    for pattern in patterns:
        assert re.search(pattern, message), f"{pattern!r} not in {message!r}"
    return message


def _params(cases, funcs=tuple(FUNCS)):
    for f in funcs:
        for case in cases:
            yield pytest.param(f, case, id=f"{f}-{case}")


# ---------------------------------------------------------------- shapes

SHAPE_CASES = {
    # name: (labels shape, pred_probs shape, pattern for what was given, for what was expected)
    "labels 2-D": ((H, W), (N, K, H, W), r"\(4, 6\)", r"\(N, H, W\)|\(3, 4, 6\)"),
    "labels 4-D": ((N, 1, H, W), (N, K, H, W), r"\(3, 1, 4, 6\)", r"\(N, H, W\)|\(3, 4, 6\)"),
    "pred_probs 3-D": ((N, H, W), (N, H, W), r"\(3, 4, 6\)", r"\(N, K, H, W\)"),
    "pred_probs 5-D": ((N, H, W), (N, K, H, W, 1), r"\(3, 3, 4, 6, 1\)", r"\(N, K, H, W\)"),
    "N mismatch": ((N - 1, H, W), (N, K, H, W), r"\(2, 4, 6\)", r"\(3, 4, 6\)"),
    "H mismatch": ((N, H - 1, W), (N, K, H, W), r"\(3, 3, 6\)", r"\(3, 4, 6\)"),
    "W mismatch": ((N, H, W + 1), (N, K, H, W), r"\(3, 4, 7\)", r"\(3, 4, 6\)"),
    "K=1": ((N, H, W), (N, 1, H, W), r"K\s*=\s*1|\(3, 1, 4, 6\)", r"K\s*>=\s*2|at least 2"),
    "N=0": ((0, H, W), (0, K, H, W), r"N\s*=\s*0|\(0, 3, 4, 6\)", r"at least one"),
    "H=0": ((N, 0, W), (N, K, 0, W), r"H\s*=\s*0|\(3, 3, 0, 6\)", r"at least one"),
}


@pytest.mark.parametrize(("func", "case"), list(_params(SHAPE_CASES)))
def test_bad_shapes(func, case):
    lshape, pshape, given, expected = SHAPE_CASES[case]
    labels = np.zeros(lshape, dtype=np.int64)
    probs = np.full(pshape, 1.0 / pshape[1] if len(pshape) > 1 and pshape[1] else 1.0)
    raises_with(lambda: FUNCS[func](labels, probs), given, expected)


# ---------------------------------------------------------------- values

WHERE = r"image 2, row 1, column 3"


def _bad_label(value):
    def make():
        labels, probs = good()
        labels = labels.astype(np.float64 if value != int(value) else np.int64)
        labels[2, 1, 3] = value
        return labels, probs

    return make


def _bad_prob(value):
    def make():
        labels, probs = good()
        probs[2, 1, 1, 3] = value
        return labels, probs

    return make


VALUE_CASES = {
    "label 1.5": (_bad_label(1.5), r"1\.5"),
    "label 7": (_bad_label(7), r"\b7\b"),
    "label -1": (_bad_label(-1), r"-1\b"),
    "NaN": (_bad_prob(np.nan), r"nan"),
    "inf": (_bad_prob(np.inf), r"inf"),
}


@pytest.mark.parametrize(("func", "case"), list(_params(VALUE_CASES)))
def test_bad_values_name_the_value_and_the_pixel(func, case):
    make, value = VALUE_CASES[case]
    labels, probs = make()
    raises_with(lambda: FUNCS[func](labels, probs), value, WHERE)


@pytest.mark.parametrize("func", ENGINE)
def test_negative_probabilities_suggest_logits(func):
    """The summaries only use the argmax and accept logits, so only the engine refuses."""
    labels, probs = _bad_prob(-0.25)()
    raises_with(lambda: FUNCS[func](labels, probs), r"-0\.25", WHERE, r"from_logits")


@pytest.mark.parametrize("func", ENGINE)
def test_bad_value_in_a_later_batch_names_the_global_image(func):
    labels, probs = good()
    labels[2, 1, 3] = 9
    call = FUNCS[func]
    with pytest.raises(ValueError, match=WHERE):
        call(labels, probs)
    if func == "find_label_issues":
        with pytest.raises(ValueError, match=WHERE):
            segaudit.find_label_issues(labels, probs, batch_size=1, verbose=False)


@pytest.mark.parametrize("func", list(FUNCS))
@pytest.mark.parametrize("dtype", [np.float64, np.int32, np.uint8])
def test_integral_float_and_int_labels_are_accepted(func, dtype):
    labels, probs = good()
    expected = FUNCS[func](labels, probs)
    got = FUNCS[func](labels.astype(dtype), probs)
    if isinstance(expected, tuple):
        for a, b in zip(got, expected, strict=True):
            np.testing.assert_array_equal(a, b)
    elif hasattr(expected, "equals"):
        assert got.equals(expected)
    elif isinstance(expected, np.ndarray):
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("func", ["find_label_issues", "get_label_quality_scores"])
def test_non_numeric_dtypes_are_refused(func):
    labels, probs = good()
    raises_with(lambda: FUNCS[func](labels.astype(str), probs), r"labels", r"integer", r"<U")
    raises_with(
        lambda: FUNCS[func](labels, (probs > 0.5).astype(np.int64)),
        r"pred_probs",
        r"float",
        r"int64",
    )


# ---------------------------------------------------------------- row sums


@pytest.mark.parametrize("func", ENGINE)
def test_rows_not_summing_to_one_warn_by_how_much(func):
    labels, probs = good()
    with pytest.warns(UserWarning, match=r"sum to 1") as record:
        FUNCS[func](labels, probs * 1.5)
    message = str(record[0].message)
    assert "0.5" in message and "from_logits=True" in message
    assert record[0].filename == __file__  # stacklevel points at the caller


@pytest.mark.parametrize("func", ENGINE)
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("k", [2, 7, 40])
def test_proper_probabilities_do_not_warn(func, dtype, k):
    # a model that is right on most pixels, so that only the row sums could warn
    labels, probs = make_dataset(1, 2, k, 5, 7, noise=0.1, strength=5.0)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        FUNCS[func](labels, probs.astype(dtype))
    assert [str(w.message) for w in record] == []


# ---------------------------------------------------------------- options


def _option(func, **options):
    labels, probs = good()
    if func == "find_label_issues":
        return lambda: segaudit.find_label_issues(labels, probs, verbose=False, **options)
    method = "num_pixel_issues" if func == "num_pixel_issues" else "softmin"
    return lambda: segaudit.get_label_quality_scores(
        labels, probs, method=method, verbose=False, **options
    )


@pytest.mark.parametrize("func", ENGINE)
@pytest.mark.parametrize("value", [0, -1, 1.5, "10", True])
def test_bad_batch_size(func, value):
    raises_with(
        _option(func, batch_size=value),
        r"'batch_size'",
        r"positive integer",
        re.escape(repr(value)) if isinstance(value, str) else re.escape(str(value)),
    )


@pytest.mark.parametrize("func", ENGINE)
@pytest.mark.parametrize("value", [0, -2, 1.5, "2", False])
def test_bad_n_jobs(func, value):
    raises_with(
        _option(func, n_jobs=value), r"'n_jobs'", r"positive integer", re.escape(repr(value))
    )


@pytest.mark.parametrize("func", ["find_label_issues", "num_pixel_issues"])
@pytest.mark.parametrize("value", [4, 3, 5])
def test_downsample_must_divide_height_and_width(func, value):
    raises_with(
        _option(func, downsample=value),
        r"H\s*=\s*4",
        r"W\s*=\s*6",
        rf"(downsample|f)\s*=\s*{value}\b",
    )


@pytest.mark.parametrize("func", ["find_label_issues", "num_pixel_issues"])
@pytest.mark.parametrize("value", [0, -2, 1.5, "2"])
def test_downsample_must_be_a_positive_integer(func, value):
    raises_with(
        _option(func, downsample=value),
        r"'downsample'",
        r"positive integer",
        re.escape(repr(value)),
    )


@pytest.mark.parametrize("func", ["find_label_issues", "num_pixel_issues"])
def test_unknown_label_pooling_lists_the_valid_ones(func):
    raises_with(
        _option(func, downsample=2, label_pooling="median"),
        r"'label_pooling'",
        r"'mode'",
        r"'mean'",
        r"'median'",
    )


@pytest.mark.parametrize("func", ENGINE)
def test_bad_ignore_index(func):
    raises_with(_option(func, ignore_index=1.5), r"'ignore_index'", r"integer", r"1\.5")


@pytest.mark.parametrize("func", ENGINE)
def test_misspelled_option_is_an_error(func):
    with pytest.raises(TypeError, match="downsampel"):
        _option(func, downsampel=2)()


def test_unknown_method_lists_the_valid_ones():
    labels, probs = good()
    raises_with(
        lambda: segaudit.get_label_quality_scores(labels, probs, method="mean"),
        r"'method'",
        r"'softmin'",
        r"'num_pixel_issues'",
        r"'mean'",
    )


@pytest.mark.parametrize("value", [0, -0.1, float("nan"), float("inf"), "0.1", None])
def test_bad_temperature(value):
    labels, probs = good()
    raises_with(
        lambda: segaudit.get_label_quality_scores(labels, probs, temperature=value, verbose=False),
        r"'temperature'",
        r"> 0",
        re.escape(repr(value)),
    )


def test_softmin_warns_that_downsample_does_not_apply():
    labels, probs = good()
    with pytest.warns(UserWarning, match=r"downsample=2.*num_pixel_issues"):
        segaudit.get_label_quality_scores(labels, probs, downsample=2, verbose=False)


# ---------------------------------------------------------------- issues_from_scores


@pytest.mark.parametrize("value", [-0.1, 1.1, float("nan"), "0.5", None])
def test_issues_from_scores_threshold(value):
    raises_with(
        lambda: segaudit.issues_from_scores(np.ones(3), threshold=value),
        r"'threshold'",
        r"\[0, 1\]",
        re.escape(repr(value)),
    )


@pytest.mark.parametrize("threshold", [0, 1])
def test_issues_from_scores_threshold_bounds_are_allowed(threshold):
    assert segaudit.issues_from_scores(np.ones(3), threshold=threshold).dtype.kind == "i"


def test_issues_from_scores_needs_image_scores():
    raises_with(
        lambda: segaudit.issues_from_scores(None, np.ones((2, 2, 2))),
        r"'image_scores'",
        r"\(N,\)",
        r"None",
    )


def test_issues_from_scores_image_scores_must_be_1d():
    raises_with(
        lambda: segaudit.issues_from_scores(np.ones((3, 2))),
        r"'image_scores'",
        r"\(N,\)",
        r"\(3, 2\)",
    )


@pytest.mark.parametrize("shape", [(2, 4, 4), (3, 4), (3, 4, 4, 1)])
def test_issues_from_scores_pixel_scores_must_match(shape):
    raises_with(
        lambda: segaudit.issues_from_scores(np.ones(3), np.ones(shape)),
        r"'pixel_scores'",
        r"\(3, H, W\)",
        re.escape(str(shape)),
    )


# ---------------------------------------------------------------- issue masks and summaries


def _summary_call(func, issues, **options):
    labels, probs = good()
    if func == "common_label_issues":
        return lambda: segaudit.common_label_issues(issues, labels, probs, verbose=False, **options)
    if func == "filter_by_class":
        return lambda: segaudit.filter_by_class(
            options.get("class_index", 0), issues, labels, probs
        )
    return lambda: (segaudit.display_issues(issues, labels, probs, **options), plt.close("all"))


@pytest.mark.parametrize("func", SUMMARIES)
@pytest.mark.parametrize("shape", [(N, H, W - 1), (N + 1, H, W), (H, W)])
def test_issues_mask_of_the_wrong_shape(func, shape):
    raises_with(
        _summary_call(func, np.ones(shape, dtype=bool)),
        r"'issues'",
        re.escape(str(shape)),
        r"\(3, 4, 6\)|\(N, H, W\)",
    )


@pytest.mark.parametrize("func", SUMMARIES)
@pytest.mark.parametrize("dtype", [np.int64, np.float64])
def test_issues_mask_must_be_boolean(func, dtype):
    raises_with(
        _summary_call(func, np.ones((N, H, W), dtype=dtype)),
        r"'issues'",
        r"bool",
        np.dtype(dtype).name,
    )


@pytest.mark.parametrize("value", [3, -1, 1.0, True])
def test_filter_by_class_index(value):
    raises_with(
        _summary_call("filter_by_class", np.ones((N, H, W), bool), class_index=value),
        r"'class_index'",
        r"0\.\.2",
        re.escape(repr(value)),
    )


@pytest.mark.parametrize("func", ["common_label_issues", "display_issues"])
def test_summary_options(func):
    issues = np.ones((N, H, W), dtype=bool)
    raises_with(_summary_call(func, issues, top=-1), r"'top'", r"non-negative", r"-1")
    if func == "common_label_issues":
        raises_with(_summary_call(func, issues, exclude=[3]), r"'exclude'", r"0\.\.2", r"3")
        raises_with(
            _summary_call(func, issues, class_names=["a", "b"]), r"'class_names'", r"3 names", r"2"
        )


def test_display_issues_exclude_needs_labels():
    issues = np.ones((N, H, W), dtype=bool)
    raises_with(lambda: segaudit.display_issues(issues, exclude=[0]), r"'exclude'", r"'labels'")
    raises_with(
        lambda: segaudit.display_issues(issues, None, good()[1], exclude=[0]),
        r"'exclude'",
        r"'labels'",
    )


@pytest.mark.parametrize(
    ("labels_shape", "probs_shape"),
    [((N, H, W - 1), None), (None, (N, K, H, W - 1))],
)
def test_display_issues_checks_the_one_array_given(labels_shape, probs_shape):
    issues = np.ones((N, H, W), dtype=bool)
    labels = None if labels_shape is None else np.zeros(labels_shape, dtype=np.int64)
    probs = None if probs_shape is None else np.full(probs_shape, 1 / K)
    raises_with(
        lambda: segaudit.display_issues(issues, labels, probs),
        r"'issues'",
        r"\(3, 4, 6\)",
        r"\(3, 4, 5\)",
    )


def test_display_issues_pred_probs_alone_of_the_wrong_ndim():
    issues = np.ones((N, H, W), dtype=bool)
    raises_with(
        lambda: segaudit.display_issues(issues, pred_probs=np.ones((K, H, W))),
        r"'pred_probs'",
        r"\(N, K, H, W\)",
        r"\(3, 4, 6\)",
    )
