"""Differential tests against the reference, cleanlab 2.9.0 (``cleanlab.segmentation``).

The reference is called with ``n_jobs=1`` (its default forks a process pool per
batch) and ``verbose=False``. Where segaudit deliberately differs (SPEC.md), the
tests state the exact relationship instead of demanding equality:

* the reference breaks ties in self-confidence with an unstable sort, so for
  inputs with exact ties at the boundary only the tie-aware property is checked;
* in float32 the reference rounds its confident thresholds to float32, segaudit
  uses the exact mean, so a pixel sitting on the threshold may be counted by one
  and not the other;
* ``issues_from_scores`` without pixel scores drops the reference's extra image.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import segaudit
from conftest import make_dataset

# Exact results on random (often noisy) data: the set-up check's warning is
# beside the point here (it is tested in test_sanity.py).
pytestmark = pytest.mark.filterwarnings("ignore::segaudit.SetupWarning")

ref_filter = pytest.importorskip(
    "cleanlab.segmentation.filter", reason="differential tests need cleanlab==2.9.0"
)
ref_rank = pytest.importorskip("cleanlab.segmentation.rank")
ref_summary = pytest.importorskip("cleanlab.segmentation.summary")
ref_batched = pytest.importorskip("cleanlab.experimental.label_issues_batched")

REF_DEFAULT_BATCH = 10_000  # the reference's default batch_size, in probability values
FLOOR, TOLERANCE = 2e-6, 1e-6


# ---------------------------------------------------------------- helpers


def ours_mask(labels, probs, **options):
    return segaudit.find_label_issues(labels, probs, verbose=False, **options)


def ref_mask(labels, probs, **options):
    options.setdefault("n_jobs", 1)
    return ref_filter.find_label_issues(labels, probs, verbose=False, **options)


def summary_of(labels, probs):
    """Self-confidence s, max prob m, argmax a (float64; exact for float32 input)."""
    p = np.asarray(probs).astype(np.float64)
    s = np.take_along_axis(p, labels[:, None].astype(np.int64), axis=1)[:, 0]
    return s, p.max(axis=1), p.argmax(axis=1)


def exact_thresholds(labels, s, k):
    out = np.full(k, FLOOR)
    for c in range(k):
        values = s[labels == c]
        if values.size:
            out[c] = max(float(sum(map(Fraction, values.tolist())) / values.size), FLOOR)
    return out


def float32_style_thresholds(labels, probs, images_per_batch):
    """Thresholds as the reference forms them: a running mean of per-batch means,
    each batch mean taken by numpy in the dtype of `pred_probs` (float32 here)."""
    k = probs.shape[1]
    thresholds, seen = np.zeros(k), np.zeros(k)
    for start in range(0, labels.shape[0], images_per_batch):
        lab = labels[start : start + images_per_batch]
        prb = probs[start : start + images_per_batch]
        s = np.take_along_axis(prb, lab[:, None], axis=1)[:, 0]
        for c in range(k):
            values = s[lab == c]
            if values.size:
                total = seen[c] + values.size
                batch_mean = float(np.mean(values))  # rounded to the dtype of `probs`
                thresholds[c] = (seen[c] * thresholds[c] + values.size * batch_mean) / total
                seen[c] = total
        thresholds = np.maximum(thresholds, FLOOR)
    return thresholds


def counted(labels, m, a, thresholds):
    """Disagreeing pixels whose predicted-class probability reaches its threshold."""
    return (a != labels) & (m >= thresholds[a] - TOLERANCE)


def ranked_mask(s, disagree, t):
    """The T lowest (s, flat index), crossed with disagreement (SPEC steps 3-4)."""
    order = np.argsort(s.ravel(), kind="stable")
    candidates = np.zeros(s.size, dtype=bool)
    candidates[order[:t]] = True
    return candidates.reshape(s.shape) & disagree


def assert_tie_aware(ours, ref, s, disagree, t):
    """Equal except inside the group of pixels tied with the T-th smallest score.

    Inside that group both flag only disagreeing pixels, and at most as many as
    there are slots left; when the group is homogeneous the counts are equal.
    """
    if t == 0:
        assert not ours.any() and not ref.any()
        return
    boundary = np.sort(s.ravel(), kind="stable")[t - 1]
    tie = s == boundary
    np.testing.assert_array_equal(ours[~tie], ref[~tie])
    slots = t - int((s < boundary).sum())
    for mask in (ours, ref):
        assert not (mask & tie & ~disagree).any()
        flagged = int((mask & tie).sum())
        assert flagged <= min(slots, int((tie & disagree).sum()))
        assert flagged >= slots - int((tie & ~disagree).sum())
    if (disagree[tie]).all() or not disagree[tie].any():
        assert ours.sum() == ref.sum()


def assert_same_frame(ours, ref):
    assert list(ours.columns) == list(ref.columns)
    assert ours.values.tolist() == ref.values.tolist()
    if len(ref):
        pd.testing.assert_frame_equal(ours, ref)


# ---------------------------------------------------------------- strategies


@st.composite
def datasets(draw, *, factor=1):
    n = draw(st.integers(1, 5))
    k = draw(st.integers(2, 6))
    h = factor * draw(st.integers(1, 8 if factor == 1 else 3))
    w = factor * draw(st.integers(1, 9 if factor == 1 else 3))
    noise = draw(st.sampled_from([0.0, 0.2, 0.5, 1.0]))
    seed = draw(st.integers(0, 2**32 - 1))
    return make_dataset(seed, n, k, h, w, noise=noise)


def batch_sizes(labels, probs):
    """None, less than one image, and sizes that do not divide the dataset."""
    image = int(np.prod(probs.shape[1:]))
    return st.sampled_from([None, 1, image - 1 or 1, image + 1, 2 * image + 3, 10**9])


# ---------------------------------------------------------------- find_label_issues


@settings(deadline=None, max_examples=300)
@given(data=datasets(), choice=st.data(), n_jobs=st.sampled_from([1, 2]))
def test_float64_masks_identical_for_any_batch_size(data, choice, n_jobs):
    labels, probs = data
    batch_size = choice.draw(batch_sizes(labels, probs))
    ours = ours_mask(labels, probs, batch_size=batch_size, n_jobs=n_jobs)
    ref = ref_mask(labels, probs, batch_size=batch_size)
    np.testing.assert_array_equal(ours, ref)


@settings(deadline=None, max_examples=150)
@given(f=st.sampled_from([2, 4]), choice=st.data(), n_jobs=st.sampled_from([1, 2]))
def test_float64_masks_identical_with_downsample_mean_pooling(f, choice, n_jobs):
    labels, probs = choice.draw(datasets(factor=f))
    batch_size = choice.draw(batch_sizes(labels, probs))
    ours = ours_mask(
        labels, probs, downsample=f, label_pooling="mean", batch_size=batch_size, n_jobs=n_jobs
    )
    ref = ref_mask(labels, probs, downsample=f, batch_size=batch_size)
    np.testing.assert_array_equal(ours, ref)


@pytest.mark.parametrize("downsample", [1, 2])
def test_reference_with_a_process_pool_agrees(downsample):
    labels, probs = make_dataset(3, n=3, k=3, h=4, w=6, noise=0.4)
    options = {"downsample": downsample}
    ours = ours_mask(labels, probs, n_jobs=2, label_pooling="mean", **options)
    np.testing.assert_array_equal(ours, ref_mask(labels, probs, n_jobs=2, **options))


def test_downsample_default_pooling_differs_from_reference_only_through_labels():
    """With K > 2 the reference's rounded mean invents classes; mode pooling does not.

    Where every block is uniform in its labels the two poolings coincide, so the
    masks must then be identical.
    """
    labels, probs = make_dataset(11, n=2, k=5, h=4, w=6, noise=0.0)
    labels = labels[:, ::2, ::2].repeat(2, axis=1).repeat(2, axis=2)
    np.testing.assert_array_equal(
        ours_mask(labels, probs, downsample=2), ref_mask(labels, probs, downsample=2)
    )


def test_mean_pooling_invents_a_class_that_mode_pooling_does_not():
    """SPEC: the reference rounds the mean class id of a block, so a block of 0s and
    2s becomes class 1. Here that invented label is the only issue it finds."""
    labels = np.array([[[0, 2, 1, 1], [2, 0, 1, 1]]])
    probs = np.zeros((1, 3, 2, 4))
    probs[0, :, :, :2] = np.array([0.8, 0.05, 0.15])[:, None, None]  # the model sees 0
    probs[0, :, :, 2:] = np.array([0.1, 0.8, 0.1])[:, None, None]  # and 1 on the right
    ref = ref_mask(labels, probs, downsample=2)
    assert ref.tolist() == [[[False, True, False, False], [True, False, False, False]]]
    np.testing.assert_array_equal(ours_mask(labels, probs, downsample=2, label_pooling="mean"), ref)
    assert not ours_mask(labels, probs, downsample=2).any()


def test_reference_thresholds_model_matches_label_inspector():
    """Check the float32 threshold model used below against the reference itself."""
    labels, probs = make_dataset(5, n=5, k=4, h=3, w=5)
    probs = probs.astype(np.float32)
    per_batch = 2
    inspector = ref_batched.LabelInspector(num_class=4, verbose=False, n_jobs=1)
    for start in range(0, 5, per_batch):
        lab = labels[start : start + per_batch].ravel()
        prb = np.moveaxis(probs[start : start + per_batch], 1, -1).reshape(-1, 4)
        inspector.update_confident_thresholds(lab, prb)
    np.testing.assert_array_equal(
        inspector.get_confident_thresholds(silent=True),
        float32_style_thresholds(labels, probs, per_batch),
    )


@settings(deadline=None, max_examples=200)
@given(data=datasets(), choice=st.data())
def test_float32_differs_only_where_threshold_rounding_decides(data, choice):
    labels, probs64 = data
    probs = probs64.astype(np.float32)
    k, h, w = probs.shape[1:]
    batch_size = choice.draw(batch_sizes(labels, probs))
    ours = ours_mask(labels, probs, batch_size=batch_size)
    ref = ref_mask(labels, probs, batch_size=batch_size)

    s, m, a = summary_of(labels, probs)
    disagree = a != labels
    t_exact = exact_thresholds(labels, s, k)
    per_batch = max((batch_size or REF_DEFAULT_BATCH) // (k * h * w), 1)
    t_ref = float32_style_thresholds(labels, probs, per_batch)
    n_exact = int(counted(labels, m, a, t_exact).sum())
    n_ref = int(counted(labels, m, a, t_ref).sum())

    np.testing.assert_array_equal(ours, ranked_mask(s, disagree, n_exact))
    assert_tie_aware(ranked_mask(s, disagree, n_ref), ref, s, disagree, n_ref)
    # every pixel counted by one rule and not the other sits between the two
    # thresholds, which differ by float32 rounding only
    moved = counted(labels, m, a, t_exact) ^ counted(labels, m, a, t_ref)
    for i in np.flatnonzero(moved):
        c = a.ravel()[i]
        low, high = sorted((t_exact[c], t_ref[c]))
        assert low - TOLERANCE <= m.ravel()[i] < high - TOLERANCE
        assert high - low <= 4 * np.spacing(np.float32(high))
    if n_exact == n_ref:
        assert_tie_aware(ours, ref, s, disagree, n_exact)


def _boundary_case():
    """A K=2 image whose only disagreeing pixel sits between the float32 mean and
    the exact mean of class 0's self-confidences (found by a seeded search)."""
    rng = np.random.default_rng(1)
    while True:
        s0 = rng.uniform(0.5, 0.9, 7).astype(np.float32)
        rounded = float(np.mean(s0))
        exact = float(sum(map(Fraction, s0.tolist())) / 7)
        low, high = sorted((rounded, exact))
        v = np.float32(high - TOLERANCE)
        while float(v) >= high - TOLERANCE:
            v = np.nextafter(v, np.float32(0))
        if float(v) >= low - TOLERANCE:
            p0 = np.append(s0, v)[None, None, :]
            probs = np.concatenate([p0, np.float32(1) - p0], axis=1)[:, :, None, :]
            labels = np.zeros((1, 1, 8), dtype=np.int64)
            labels[0, 0, 7] = 1
            return labels, probs, rounded > exact


def test_float32_threshold_rounding_can_flip_one_pixel():
    labels, probs, ref_threshold_higher = _boundary_case()
    ours, ref = ours_mask(labels, probs), ref_mask(labels, probs)
    # the disagreeing pixel (column 7) reaches the exact threshold but not the
    # float32-rounded one, or the other way round: it is the only difference
    differing = np.argwhere(ours != ref)
    assert differing.tolist() == [[0, 0, 7]]
    assert ours[0, 0, 7] == ref_threshold_higher
    # in float64 (same values) there is no float32 rounding and no difference
    probs64 = probs.astype(np.float64)
    np.testing.assert_array_equal(ours_mask(labels, probs64), ours)


# ---------------------------------------------------------------- structured inputs


def _structured(name):
    rng = np.random.default_rng(STRUCTURED.index(name))
    if name == "absent class":
        labels, probs = make_dataset(1, k=4, noise=0.3)
        labels[labels == 3] = 0
        return labels, probs
    if name == "all agree":
        labels, probs = make_dataset(2)
        return probs.argmax(axis=1), probs
    if name == "all disagree":
        labels, probs = make_dataset(3)
        return (probs.argmax(axis=1) + 1) % probs.shape[1], probs
    if name == "K=2":
        return make_dataset(4, k=2, noise=0.4)
    if name == "1xW":
        return make_dataset(5, n=4, h=1, w=9)
    if name == "Hx1":
        return make_dataset(6, n=4, h=7, w=1)
    if name == "1x1":
        return make_dataset(7, n=6, h=1, w=1, noise=0.5)
    if name == "argmax ties":
        labels, _ = make_dataset(8, k=3)
        rows = np.array([[0.4, 0.4, 0.2], [0.2, 0.4, 0.4], [0.4, 0.2, 0.4], [0.5, 0.3, 0.2]])
        pick = rng.integers(0, len(rows), size=labels.shape)
        return labels, np.ascontiguousarray(np.moveaxis(rows[pick], -1, 1))
    if name == "constant map":
        labels, _ = make_dataset(9, k=3, noise=1.0)
        probs = np.empty((*labels.shape[:1], 3, *labels.shape[1:]))
        probs[:] = np.array([0.6, 0.3, 0.1])[None, :, None, None]
        return labels, probs
    if name == "uniform":
        labels, _ = make_dataset(10, k=4, noise=1.0)
        return labels, np.full((labels.shape[0], 4, *labels.shape[1:]), 0.25)
    if name == "quantised":
        return make_dataset(11, n=4, k=3, quantise=3, noise=0.5)
    raise AssertionError(name)


STRUCTURED = [
    "absent class",
    "all agree",
    "all disagree",
    "K=2",
    "1xW",
    "Hx1",
    "1x1",
    "argmax ties",
    "constant map",
    "uniform",
    "quantised",
]


@pytest.mark.parametrize("batch_size", [None, 1, 37])
@pytest.mark.parametrize("name", STRUCTURED)
def test_structured_inputs(name, batch_size):
    labels, probs = _structured(name)
    ours = ours_mask(labels, probs, batch_size=batch_size)
    ref = ref_mask(labels, probs, batch_size=batch_size)
    s, m, a = summary_of(labels, probs)
    t = int(counted(labels, m, a, exact_thresholds(labels, s, probs.shape[1])).sum())
    np.testing.assert_array_equal(ours, ranked_mask(s, a != labels, t))
    assert_tie_aware(ours, ref, s, a != labels, t)
    if name == "all agree":
        assert not ours.any()
    if name in {"K=2", "1xW", "Hx1", "1x1", "absent class", "all disagree"}:
        np.testing.assert_array_equal(ours, ref)  # continuous: no ties at all


# ---------------------------------------------------------------- scores


@settings(deadline=None, max_examples=60)
@given(
    data=datasets(),
    temperature=st.sampled_from([0.01, 0.1, 0.5, 2.0]),
    dtype=st.sampled_from([np.float64, np.float32]),
)
def test_softmin_scores(data, temperature, dtype):
    labels, probs = data
    probs = probs.astype(dtype)
    image, pixel = segaudit.get_label_quality_scores(
        labels, probs, temperature=temperature, verbose=False
    )
    ref_image, ref_pixel = ref_rank.get_label_quality_scores(
        labels, probs, temperature=temperature, verbose=False, n_jobs=1
    )
    np.testing.assert_allclose(image, ref_image, rtol=0, atol=1e-9)
    np.testing.assert_allclose(pixel, ref_pixel, rtol=0, atol=1e-9)


@settings(deadline=None, max_examples=50)
@given(data=datasets(factor=2), downsample=st.sampled_from([1, 2]), choice=st.data())
def test_num_pixel_issues_scores(data, downsample, choice):
    labels, probs = data
    batch_size = choice.draw(batch_sizes(labels, probs))
    options = {"method": "num_pixel_issues", "downsample": downsample, "batch_size": batch_size}
    image, pixel = segaudit.get_label_quality_scores(
        labels, probs, label_pooling="mean", verbose=False, **options
    )
    ref_image, ref_pixel = ref_rank.get_label_quality_scores(
        labels, probs, verbose=False, n_jobs=1, **options
    )
    np.testing.assert_allclose(image, ref_image, rtol=0, atol=1e-9)
    np.testing.assert_allclose(pixel, ref_pixel, rtol=0, atol=1e-9)


# ---------------------------------------------------------------- issues_from_scores


@settings(deadline=None, max_examples=100)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 30),
    threshold=st.floats(0, 1),
    quantised=st.booleans(),
)
def test_issues_from_scores(seed, n, threshold, quantised):
    rng = np.random.default_rng(seed)
    image = rng.random(n)
    if quantised:
        image = np.round(image * 4) / 4  # ties, and scores equal to the threshold
    pixel = rng.random((n, 2, 3))
    ref_pixels = ref_rank.issues_from_scores(image, pixel, threshold=threshold)
    np.testing.assert_array_equal(
        segaudit.issues_from_scores(image, pixel, threshold=threshold), ref_pixels
    )

    ours = segaudit.issues_from_scores(image, threshold=threshold)
    ref = ref_rank.issues_from_scores(image, threshold=threshold)
    below = int((image < threshold).sum())
    # the reference returns one image more (the first at or above the threshold)
    # whenever there is one; segaudit drops exactly that image
    assert len(ref) == min(below + 1, n)
    assert len(ours) == below
    assert sorted(ours.tolist()) == sorted(ref[:below].tolist())
    expected = sorted(np.flatnonzero(image < threshold), key=lambda i: (image[i], i))
    assert ours.tolist() == expected
    if len(np.unique(image)) == n:
        np.testing.assert_array_equal(ours, ref[:below])


# ---------------------------------------------------------------- summaries


SUMMARY_OPTIONS = [
    {},
    {"class_names": ["road", "car", "tree", "sky"]},
    {"exclude": [0]},
    {"exclude": [1, 3], "top": 3},
    {"top": 1},
    {"top": 0},
]


@pytest.mark.parametrize("options", SUMMARY_OPTIONS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_common_label_issues(seed, options, capsys):
    labels, probs = make_dataset(seed, n=3, k=4, h=5, w=6, noise=0.6)
    issues = ours_mask(labels, probs)
    ours = segaudit.common_label_issues(issues, labels, probs, verbose=False, **options)
    ref = ref_summary.common_label_issues(issues, labels, probs, verbose=False, **options)
    assert_same_frame(ours, ref)
    assert "Class" not in capsys.readouterr().out


def test_common_label_issues_without_issues():
    labels, probs = _structured("all agree")
    issues = ours_mask(labels, probs)
    assert not issues.any()
    ours = segaudit.common_label_issues(issues, labels, probs, verbose=False)
    assert_same_frame(ours, ref_summary.common_label_issues(issues, labels, probs, verbose=False))


@pytest.mark.parametrize("seed", [0, 1])
def test_filter_by_class(seed):
    labels, probs = make_dataset(seed, n=3, k=4, h=5, w=6, noise=0.6)
    issues = ours_mask(labels, probs)
    assert issues.any()
    for c in range(4):
        np.testing.assert_array_equal(
            segaudit.filter_by_class(c, issues, labels, probs),
            ref_summary.filter_by_class(c, issues, labels, probs),
        )
