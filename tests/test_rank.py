"""Behaviour of the scores: get_label_quality_scores and issues_from_scores."""

from __future__ import annotations

import re

import numpy as np
import pytest

import segaudit
from conftest import make_dataset

# The data are deliberately noisy (many issues to summarise and rank): the
# set-up check's warning is expected there (it is tested in test_sanity.py).
pytestmark = pytest.mark.filterwarnings("ignore::segaudit.SetupWarning")

VOID = 255


def direct_softmin(s, temperature):
    s = s[~np.isnan(s)].astype(np.float64)
    z = (1 - s) / temperature
    w = np.exp(z - z.max())
    return float((s * w).sum() / w.sum())


# ---------------------------------------------------------------- get_label_quality_scores


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_pixel_scores_are_the_probability_of_the_given_label(dtype, kernel):
    labels, probs = make_dataset(1)
    probs = probs.astype(dtype)
    for method in ("softmin", "num_pixel_issues"):
        image, pixel = segaudit.get_label_quality_scores(
            labels, probs, method=method, verbose=False
        )
        assert image.dtype == pixel.dtype == np.float64
        assert image.shape == (3,) and pixel.shape == labels.shape
        expected = np.take_along_axis(probs, labels[:, None], axis=1)[:, 0].astype(np.float64)
        np.testing.assert_array_equal(pixel, expected)


@pytest.mark.parametrize("temperature", [1e-4, 0.01, 0.1, 1.0, 100.0])
def test_softmin_formula(temperature, kernel):
    labels, probs = make_dataset(2, n=4)
    image, pixel = segaudit.get_label_quality_scores(
        labels, probs, temperature=temperature, verbose=False
    )
    assert np.isfinite(image).all()
    for i in range(4):
        s = pixel[i].ravel()
        np.testing.assert_allclose(image[i], direct_softmin(s, temperature), rtol=1e-12)
        assert s.min() - 1e-15 <= image[i] <= s.mean() + 1e-15


def test_softmin_temperature_moves_between_min_and_mean():
    labels, probs = make_dataset(3, n=2)
    cold, pixel = segaudit.get_label_quality_scores(labels, probs, temperature=1e-5, verbose=False)
    hot, _ = segaudit.get_label_quality_scores(labels, probs, temperature=1e5, verbose=False)
    np.testing.assert_allclose(cold, pixel.min(axis=(1, 2)), atol=1e-9)
    np.testing.assert_allclose(hot, pixel.mean(axis=(1, 2)), atol=1e-5)


def test_perfect_image_scores_one():
    labels = np.zeros((2, 3, 3), dtype=int)
    probs = np.zeros((2, 2, 3, 3))
    probs[:, 0] = 1.0
    probs[1, 0, 1, 1], probs[1, 1, 1, 1] = 0.2, 0.8
    image, _ = segaudit.get_label_quality_scores(labels, probs, verbose=False)
    assert image[0] == 1.0 and image[1] < 0.25


@pytest.mark.parametrize("downsample", [1, 2])
@pytest.mark.parametrize("label_pooling", ["mode", "mean"])
def test_num_pixel_issues_is_one_minus_the_flagged_fraction(downsample, label_pooling):
    labels, probs = make_dataset(4, n=4, k=3, h=6, w=8, noise=0.5)
    options = {"downsample": downsample, "label_pooling": label_pooling, "verbose": False}
    mask = segaudit.find_label_issues(labels, probs, **options)
    image, _ = segaudit.get_label_quality_scores(
        labels, probs, method="num_pixel_issues", **options
    )
    assert mask.any()
    np.testing.assert_allclose(image, 1 - mask.mean(axis=(1, 2)), rtol=0, atol=1e-15)


@pytest.mark.parametrize("method", ["softmin", "num_pixel_issues"])
def test_void_pixels_score_nan_and_a_void_image_scores_one(method):
    labels, probs = make_dataset(5, n=3)
    labels[1] = VOID
    labels[0, 0, :3] = VOID
    image, pixel = segaudit.get_label_quality_scores(
        labels, probs, method=method, ignore_index=VOID, verbose=False
    )
    assert image[1] == 1.0
    assert np.isnan(pixel[labels == VOID]).all()
    assert not np.isnan(pixel[labels != VOID]).any()
    if method == "softmin":
        np.testing.assert_allclose(image[0], direct_softmin(pixel[0].ravel(), 0.1), rtol=1e-12)


# ---------------------------------------------------------------- issues_from_scores


def test_issues_from_scores_most_severe_first_ties_by_index():
    scores = np.array([0.5, 0.05, 0.01, 0.05, 0.1, 0.0, 0.05])
    got = segaudit.issues_from_scores(scores, threshold=0.1)
    assert got.tolist() == [5, 2, 1, 3, 6]
    assert got.dtype.kind == "i"


def test_issues_from_scores_threshold_is_strict():
    scores = np.array([0.2, 0.1, 0.3])
    assert segaudit.issues_from_scores(scores, threshold=0.1).tolist() == []
    assert segaudit.issues_from_scores(scores, threshold=0.0).tolist() == []
    assert segaudit.issues_from_scores(scores, threshold=1.0).tolist() == [1, 0, 2]


def test_issues_from_scores_with_pixel_scores():
    rng = np.random.default_rng(0)
    pixel = np.round(rng.random((3, 4, 5)), 1)
    pixel[0, 0, 0] = np.nan  # a void pixel is never an issue
    got = segaudit.issues_from_scores(np.nanmean(pixel, axis=(1, 2)), pixel, threshold=0.3)
    assert got.dtype == np.bool_ and got.shape == pixel.shape
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(got, pixel < 0.3)
    assert not got[0, 0, 0]


def test_issues_from_scores_accepts_lists():
    assert segaudit.issues_from_scores([0.3, 0.01, 0.02]).tolist() == [1, 2]


def test_scores_round_trip_to_issues():
    labels, probs = make_dataset(6, n=8, noise=0.0)
    labels[3, :3, :4] = (labels[3, :3, :4] + 1) % 4  # one badly labelled image
    image, pixel = segaudit.get_label_quality_scores(labels, probs, verbose=False)
    worst = segaudit.issues_from_scores(image, threshold=float(np.sort(image)[1]))
    assert worst.tolist() == [3]
    mask = segaudit.issues_from_scores(image, pixel, threshold=0.2)
    assert mask[3, :3, :4].mean() > mask[np.arange(8) != 3].mean()


# ---------------------------------------------------------------- progress bars


CALLS = {
    "find_label_issues": lambda lab, p, v: segaudit.find_label_issues(lab, p, verbose=v),
    "softmin": lambda lab, p, v: segaudit.get_label_quality_scores(lab, p, verbose=v),
    "num_pixel_issues": lambda lab, p, v: segaudit.get_label_quality_scores(
        lab, p, method="num_pixel_issues", verbose=v
    ),
}


@pytest.mark.parametrize("call", sorted(CALLS))
def test_verbose_shows_a_progress_bar_on_stderr(call, capsys):
    labels, probs = make_dataset(7, n=5)
    CALLS[call](labels, probs, True)
    out, err = capsys.readouterr()
    assert out == ""
    # a tqdm bar over the 5 images (it redraws at most every 0.1 s, then clears itself)
    assert re.search(r"\d+%\|.*\| \d/5 \[", err), err


@pytest.mark.parametrize("call", sorted(CALLS))
def test_quiet_writes_nothing(call, capsys):
    labels, probs = make_dataset(7, n=5)
    CALLS[call](labels, probs, False)
    assert capsys.readouterr() == ("", "")
