"""Behaviour of the summaries: common_label_issues, filter_by_class, display_issues."""

from __future__ import annotations

from collections import Counter

import matplotlib
import numpy as np
import pytest

import segaudit
from conftest import make_dataset

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

# The data are deliberately noisy (many issues to summarise and rank): the
# set-up check's warning is expected there (it is tested in test_sanity.py).
pytestmark = pytest.mark.filterwarnings("ignore::segaudit.SetupWarning")

NAMES = ["road", "car", "tree", "sky"]


@pytest.fixture(scope="module")
def data():
    labels, probs = make_dataset(4, n=6, k=4, h=5, w=7, noise=0.6)
    issues = segaudit.find_label_issues(labels, probs, verbose=False)
    assert issues.any() and not issues.all()
    return labels, probs, issues


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def pair_counts(issues, labels, probs):
    """(given, predicted) -> number of flagged pixels, one pixel at a time."""
    predicted = probs.argmax(axis=1)
    return Counter(
        (int(labels[i, r, c]), int(predicted[i, r, c])) for i, r, c in np.argwhere(issues)
    )


def rows(df):
    return list(df.itertuples(index=False, name=None))


# ---------------------------------------------------------------- common_label_issues


def test_common_label_issues_counts_every_flagged_pixel(data):
    labels, probs, issues = data
    df = segaudit.common_label_issues(issues, labels, probs, top=100, verbose=False)
    assert list(df.columns) == ["given_label", "predicted_label", "num_pixel_issues"]
    counts = pair_counts(issues, labels, probs)
    assert {(int(g), int(p)): n for g, p, n in rows(df)} == counts
    assert df["num_pixel_issues"].sum() == issues.sum()
    # most frequent first, ties by given then predicted class id
    keys = [(-n, int(g), int(p)) for g, p, n in rows(df)]
    assert keys == sorted(keys)
    assert len({n for *_, n in rows(df)}) < len(df), "no tie in counts: ordering of ties untested"


@pytest.mark.parametrize("top", [0, 1, 3, 100])
def test_top_keeps_the_first_rows(data, top):
    labels, probs, issues = data
    full = segaudit.common_label_issues(issues, labels, probs, top=100, verbose=False)
    df = segaudit.common_label_issues(issues, labels, probs, top=top, verbose=False)
    assert rows(df) == rows(full)[:top]
    assert list(df.columns) == list(full.columns)


def test_default_top_is_20():
    labels, probs = make_dataset(5, n=6, k=8, h=8, w=8, noise=1.0, strength=4.0)
    issues = segaudit.find_label_issues(labels, probs, verbose=False)
    pairs = len(pair_counts(issues, labels, probs))
    assert pairs > 20
    assert len(segaudit.common_label_issues(issues, labels, probs, verbose=False)) == 20


@pytest.mark.parametrize("exclude", [[0], [1, 3], [0, 1, 2, 3]])
def test_exclude_drops_predicted_classes(data, exclude):
    labels, probs, issues = data
    df = segaudit.common_label_issues(
        issues, labels, probs, exclude=exclude, top=100, verbose=False
    )
    expected = {k: n for k, n in pair_counts(issues, labels, probs).items() if k[1] not in exclude}
    assert {(int(g), int(p)): n for g, p, n in rows(df)} == expected


def test_class_names_label_the_rows(data):
    labels, probs, issues = data
    plain = segaudit.common_label_issues(issues, labels, probs, verbose=False)
    named = segaudit.common_label_issues(issues, labels, probs, class_names=NAMES, verbose=False)
    assert rows(named) == [(NAMES[int(g)], NAMES[int(p)], n) for g, p, n in rows(plain)]


def test_verbose_prints_one_line_per_row(data, capsys):
    labels, probs, issues = data
    df = segaudit.common_label_issues(issues, labels, probs, class_names=NAMES, top=5)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(df) == 5
    for line, (given, predicted, n) in zip(lines, rows(df), strict=True):
        assert given in line and predicted in line and str(n) in line
        assert line.index(given) < line.index(predicted)


def test_quiet_prints_nothing(data, capsys):
    labels, probs, issues = data
    segaudit.common_label_issues(issues, labels, probs, verbose=False)
    segaudit.filter_by_class(1, issues, labels, probs)
    out, err = capsys.readouterr()
    assert out == "" and err == ""


def test_no_issues_gives_an_empty_frame(data, capsys):
    labels, probs, issues = data
    df = segaudit.common_label_issues(np.zeros_like(issues), labels, probs)
    assert df.empty and list(df.columns) == ["given_label", "predicted_label", "num_pixel_issues"]
    assert capsys.readouterr().out == ""


def test_summaries_accept_logits(data):
    """Only the argmax is used, so logits give the same answers, with no warning."""
    labels, probs, issues = data
    logits = np.log(probs) + 3.0
    df = segaudit.common_label_issues(issues, labels, probs, verbose=False)
    assert rows(segaudit.common_label_issues(issues, labels, logits, verbose=False)) == rows(df)
    np.testing.assert_array_equal(
        segaudit.filter_by_class(2, issues, labels, logits),
        segaudit.filter_by_class(2, issues, labels, probs),
    )


def test_summaries_read_memmaps_without_writing(data, tmp_path):
    labels, probs, issues = data
    np.save(tmp_path / "p.npy", probs)
    np.save(tmp_path / "l.npy", labels)
    mp = np.load(tmp_path / "p.npy", mmap_mode="r")
    ml = np.load(tmp_path / "l.npy", mmap_mode="r")
    frozen = issues.copy()
    frozen.setflags(write=False)
    df = segaudit.common_label_issues(frozen, ml, mp, verbose=False)
    assert rows(df) == rows(segaudit.common_label_issues(issues, labels, probs, verbose=False))
    np.testing.assert_array_equal(
        segaudit.filter_by_class(0, frozen, ml, mp),
        segaudit.filter_by_class(0, issues, labels, probs),
    )
    np.testing.assert_array_equal(np.load(tmp_path / "p.npy"), probs)
    np.testing.assert_array_equal(frozen, issues)


# ---------------------------------------------------------------- filter_by_class


def test_filter_by_class(data):
    labels, probs, issues = data
    predicted = probs.argmax(axis=1)
    union = np.zeros_like(issues)
    for c in range(4):
        got = segaudit.filter_by_class(c, issues, labels, probs)
        assert got.dtype == np.bool_ and got.shape == issues.shape
        np.testing.assert_array_equal(got, issues & ((labels == c) | (predicted == c)))
        union |= got
    np.testing.assert_array_equal(union, issues)


def test_filter_by_class_with_array_likes(data):
    labels, probs, issues = data
    got = segaudit.filter_by_class(1, issues.tolist(), labels.tolist(), probs.tolist())
    np.testing.assert_array_equal(got, segaudit.filter_by_class(1, issues, labels, probs))


# ---------------------------------------------------------------- display_issues


def overlay_mask(fig):
    """The flagged pixels drawn in the last panel (RGBA overlay, red where flagged)."""
    image = np.asarray(fig.axes[-1].images[0].get_array())
    assert image.ndim == 3 and image.shape[-1] == 4
    return image[..., 3] > 0


def test_display_issues_most_flagged_images_first(data):
    labels, probs, issues = data
    figures = segaudit.display_issues(issues, labels, probs, top=4)
    assert len(figures) == 4 and all(isinstance(f, Figure) for f in figures)
    counts = issues.sum(axis=(1, 2))
    order = sorted(range(len(counts)), key=lambda i: (-counts[i], i))[:4]
    for fig, i in zip(figures, order, strict=True):
        assert len(fig.axes) == 3
        np.testing.assert_array_equal(overlay_mask(fig), issues[i])


@pytest.mark.parametrize(
    ("with_labels", "with_probs", "panels"),
    [(False, False, 1), (True, False, 2), (False, True, 2), (True, True, 3)],
)
def test_display_issues_panels(data, with_labels, with_probs, panels):
    labels, probs, issues = data
    figures = segaudit.display_issues(
        issues, labels if with_labels else None, probs if with_probs else None, top=2
    )
    assert len(figures) == 2
    assert all(len(f.axes) == panels for f in figures)


def test_display_issues_legend_with_class_names(data):
    labels, probs, issues = data
    figures = segaudit.display_issues(issues, labels, probs, class_names=NAMES, top=3)
    assert len(figures) == 1 + 3
    legend = figures[0].legends[0]
    assert [t.get_text() for t in legend.get_texts()] == NAMES


def test_display_issues_exclude_hides_given_classes(data):
    labels, probs, issues = data
    figures = segaudit.display_issues(issues, labels, probs, exclude=[0, 2], top=len(labels))
    counts = issues.sum(axis=(1, 2))
    order = sorted(range(len(counts)), key=lambda i: (-counts[i], i))
    for fig, i in zip(figures, order, strict=True):
        np.testing.assert_array_equal(overlay_mask(fig), issues[i] & ~np.isin(labels[i], [0, 2]))


@pytest.mark.parametrize("top", [0, 100])
def test_display_issues_top(data, top):
    labels, probs, issues = data
    assert len(segaudit.display_issues(issues, labels, probs, top=top)) == min(top, len(labels))
