from __future__ import annotations

import doctest
import importlib
import pickle

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

import segaudit
import segaudit.evaluate as ev
from segaudit.evaluate import (
    ERROR_COLUMNS,
    average_precision,
    inject_label_noise,
    make_scenes,
    score_detection,
)

EIGHT = np.ones((3, 3), bool)


def blocky_labels(seed, n=4, h=24, w=32, k=4, void=None):
    """Blocky random masks: a coarse random grid upsampled by 4, mostly background."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(1, k, size=(n, h // 4, w // 4))
    coarse[rng.random(coarse.shape) < 0.6] = 0
    labels = coarse.repeat(4, axis=1).repeat(4, axis=2)
    if void is not None:
        labels[:, :2] = void
        labels[rng.random(labels.shape) < 0.02] = void
    return labels


def border_map(labels):
    """Pixels with a 4-neighbour of a different label."""
    border = np.zeros(labels.shape, bool)
    for axis in (0, 1):
        change = np.diff(labels, axis=axis) != 0
        head = [slice(None)] * 2
        tail = [slice(None)] * 2
        head[axis], tail[axis] = slice(1, None), slice(None, -1)
        border[tuple(head)] |= change
        border[tuple(tail)] |= change
    return border


def check_invariants(labels, noisy, background=0, ignore_index=None, kinds=ev.ERROR_KINDS):
    out, truth, errors = noisy
    ids = noisy.error_ids
    assert out.dtype == labels.dtype and out.shape == labels.shape
    assert not np.shares_memory(out, labels)
    np.testing.assert_array_equal(truth, out != labels)
    np.testing.assert_array_equal(ids > 0, truth)
    assert list(errors.columns) == list(ERROR_COLUMNS)
    np.testing.assert_array_equal(errors["error"], np.arange(1, len(errors) + 1))
    assert set(errors["kind"]) <= set(kinds)
    per_image = errors.groupby("image")["area"].sum().reindex(range(len(labels)), fill_value=0)
    np.testing.assert_array_equal(per_image.to_numpy(), truth.sum(axis=(1, 2)))
    counts = np.bincount(ids.ravel(), minlength=len(errors) + 1)[1:]
    np.testing.assert_array_equal(counts, errors["area"])
    if ignore_index is not None:
        void = labels == ignore_index
        assert (out[void] == ignore_index).all() and not truth[void].any()
        assert not (out[~void] == ignore_index).any()
    for row in errors.itertuples():
        img, mask = row.image, ids[row.image] == row.error
        rr, cc = np.nonzero(mask)
        assert (row.top, row.left, row.bottom, row.right) == (
            rr.min(),
            cc.min(),
            rr.max() + 1,
            cc.max() + 1,
        )
        before, after = labels[img][mask], out[img][mask]
        if row.kind in ("swap", "miss"):
            # the whole object: the 8-connected component of its class, and nothing else
            comp, _ = ndimage.label(labels[img] == row.class_before, structure=EIGHT)
            (obj,) = np.unique(comp[mask])
            np.testing.assert_array_equal(mask, comp == obj)
            assert (before == row.class_before).all() and (after == row.class_after).all()
            assert row.class_after != row.class_before and row.shift == 0
            if row.kind == "swap":
                assert row.class_after != background
            else:
                assert row.class_after == background
        elif row.kind == "spurious":
            assert (before == background).all() and (after == row.class_after).all()
            assert row.class_after != background and row.shift == 0
        else:
            assert 1 <= abs(row.shift) <= 4
            dist = ndimage.distance_transform_cdt(~border_map(labels[img]), metric="chessboard")
            assert dist[mask].max() <= abs(row.shift)
            if row.shift > 0:  # grown: the object's class spreads
                assert (after == row.class_after).all()
            else:  # shrunk: the object's pixels give way
                assert (before == row.class_before).all()


# --- inject_label_noise ------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.uint16, np.int64])
def test_inject_any_int_dtype_read_only_input_untouched(dtype):
    labels = blocky_labels(0).astype(dtype)
    keep = labels.copy()
    labels.flags.writeable = False
    noisy = inject_label_noise(labels, rate=0.5, seed=3)
    np.testing.assert_array_equal(labels, keep)
    assert noisy.labels.flags.writeable
    assert noisy.truth.dtype == bool and noisy.error_ids.dtype == np.int32
    assert len(noisy.errors) > 0
    check_invariants(labels, noisy)


def test_inject_unpacks_as_labels_truth_errors():
    labels = blocky_labels(2)
    noisy = inject_label_noise(labels, rate=0.5, seed=1)
    corrupted, truth, errors = noisy  # the three values the harness promises
    assert corrupted is noisy.labels and truth is noisy.truth and errors is noisy.errors
    np.testing.assert_array_equal(truth, corrupted != labels)
    assert noisy.error_ids.shape == labels.shape  # the id map: an attribute, not a fourth value
    again = pickle.loads(pickle.dumps(noisy))
    assert len(again) == 3
    np.testing.assert_array_equal(again.error_ids, noisy.error_ids)
    pd.testing.assert_frame_equal(again.errors, errors)


def test_inject_is_deterministic_for_a_seed():
    labels = blocky_labels(1)
    a = inject_label_noise(labels, rate=0.4, seed=7)
    b = inject_label_noise(labels.tolist(), rate=0.4, seed=7)  # array-likes too
    for name in ("labels", "truth", "error_ids"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    pd.testing.assert_frame_equal(a.errors, b.errors)
    c = inject_label_noise(labels, rate=0.4, seed=8)
    assert not np.array_equal(a.labels, c.labels)


@pytest.mark.parametrize("kind", ["swap", "miss", "spurious", "boundary"])
def test_each_kind_does_what_it_claims(kind):
    labels = blocky_labels(2, n=6)
    noisy = inject_label_noise(labels, kinds=[kind], rate=0.8, seed=1)
    assert set(noisy.errors["kind"]) == {kind}
    check_invariants(labels, noisy, kinds=(kind,))


def test_boundary_grows_and_shrinks_by_one_to_four_pixels():
    labels = np.zeros((30, 40, 40), np.uint8)
    labels[:, 10:30, 12:28] = 1
    labels[:, 32:38, 2:10] = 2
    noisy = inject_label_noise(labels, kinds="boundary", rate=1.0, seed=0)
    shifts = noisy.errors["shift"]
    assert (shifts > 0).any() and (shifts < 0).any()
    assert set(shifts.abs()) == {1, 2, 3, 4}
    check_invariants(labels, noisy, kinds=("boundary",))
    # a rectangle grown by d with a disc: each side moves out by exactly d pixels
    big = noisy.errors[(noisy.errors["class_after"] == 1) & (noisy.errors["shift"] > 0)]
    for row in big.itertuples():
        d = row.shift
        assert (row.top, row.left, row.bottom, row.right) == (10 - d, 12 - d, 30 + d, 28 + d)


def test_void_is_never_changed_nor_counted():
    labels = blocky_labels(4, n=6, void=255).astype(np.uint8)
    noisy = inject_label_noise(labels, rate=1.0, seed=2, ignore_index=255)
    assert set(noisy.errors["kind"]) == set(ev.ERROR_KINDS)
    check_invariants(labels, noisy, ignore_index=255)


def test_rate_zero_and_rate_one():
    labels = blocky_labels(5)
    none = inject_label_noise(labels, rate=0.0)
    np.testing.assert_array_equal(none.labels, labels)
    assert none.errors.empty and list(none.errors.columns) == list(ERROR_COLUMNS)
    every = inject_label_noise(labels, kinds=("swap",), rate=1.0)
    n_objects = sum(
        ndimage.label(img == c, structure=EIGHT)[1] for img in labels for c in (1, 2, 3)
    )
    assert len(every.errors) == n_objects


def test_rate_is_the_share_of_objects_with_an_error():
    labels = blocky_labels(6, n=200)
    n_objects = sum(
        ndimage.label(img == c, structure=EIGHT)[1] for img in labels for c in (1, 2, 3)
    )
    noisy = inject_label_noise(labels, kinds=("swap", "miss", "spurious"), rate=0.3, seed=0)
    share = len(noisy.errors) / n_objects
    assert abs(share - 0.3) < 4 * np.sqrt(0.3 * 0.7 / n_objects)
    counts = noisy.errors["kind"].value_counts()
    assert counts.min() > 0.2 * len(noisy.errors)  # kinds drawn evenly


def test_num_classes_widens_the_swap_choices():
    labels = np.zeros((50, 8, 8), np.uint8)
    labels[:, 2:6, 2:6] = 1
    labels[:, 0, 0] = 2
    present = inject_label_noise(labels, kinds="swap", rate=1.0)
    assert set(present.errors["class_after"]) == {1, 2}
    wide = inject_label_noise(labels, kinds="swap", rate=1.0, num_classes=6)
    assert set(wide.errors["class_after"]) == {1, 2, 3, 4, 5}


def test_no_background_skips_miss_and_spurious():
    labels = blocky_labels(7)
    noisy = inject_label_noise(labels, rate=1.0, background=None)
    assert set(noisy.errors["kind"]) == {"swap", "boundary"}
    check_invariants(labels, noisy, background=None, kinds=("swap", "boundary"))
    with pytest.raises(ValueError, match="'miss' needs a background class"):
        inject_label_noise(labels, kinds=["miss"], background=None)


@pytest.mark.parametrize(
    ("labels", "options", "match"),
    [
        (np.zeros((4, 4), int), {}, r"'labels' .* shape \(N, H, W\).* Got shape \(4, 4\)"),
        (np.zeros((0, 4, 4), int), {}, "Got shape"),
        (np.zeros((1, 4, 4)), {}, "'labels' .* integer array.* Got float64"),
        (np.full((1, 4, 4), -1), {}, r"class ids >= 0. Got -1 at image 0, row 0, column 0"),
        (np.full((1, 4, 4), 7), {"num_classes": 5}, r"integers in 0..4. Got 7"),
        (np.zeros((2, 4, 4), int), {}, "at least one object .* to corrupt. Got none"),
        (np.ones((2, 4, 4), int), {"kinds": ["spurious"]}, "'spurious' needs background pixels"),
        (np.ones((2, 4, 4), int), {"kinds": ["swap"]}, "'swap' needs two non-background"),
        (np.ones((1, 4, 4), int), {"kinds": []}, "'kinds' .* non-empty sequence"),
        (np.ones((1, 4, 4), int), {"kinds": ["swap", "typo"]}, r"unknown kinds \['typo'\]"),
        (np.ones((1, 4, 4), int), {"kinds": ["swap", "swap"]}, "distinct kinds"),
        (np.ones((1, 4, 4), int), {"kinds": 3}, "'kinds'"),
        (np.ones((1, 4, 4), int), {"rate": 1.5}, r"'rate' .* in \[0, 1\]. Got 1.5"),
        (np.ones((1, 4, 4), int), {"rate": -0.1}, r"'rate'"),
        (np.ones((1, 4, 4), int), {"rate": float("nan")}, r"'rate'"),
        (np.ones((1, 4, 4), int), {"rate": True}, r"'rate'"),
        (np.ones((1, 4, 4), int), {"seed": -1}, "'seed' .* non-negative integer"),
        (np.ones((1, 4, 4), int), {"seed": 1.0}, "'seed'"),
        (np.ones((1, 4, 4), int), {"background": 1.0}, "'background' .* integer or None"),
        (np.ones((1, 4, 4), int), {"ignore_index": "x"}, "'ignore_index'"),
        (np.ones((1, 4, 4), int), {"ignore_index": 0}, "different from ignore_index"),
        (np.ones((1, 4, 4), int), {"num_classes": 1}, "'num_classes' .* >= 2"),
        (np.ones((1, 4, 4), int), {"num_classes": 3, "background": 4}, "in 0..2 or None"),
    ],
)
def test_inject_rejects_bad_input(labels, options, match):
    with pytest.raises(ValueError, match=match) as info:
        inject_label_noise(labels, **options)
    assert "inject_label_noise" in str(info.value)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    rate=st.floats(0, 1),
    kinds=st.lists(st.sampled_from(ev.ERROR_KINDS), min_size=1, max_size=4, unique=True),
    void=st.booleans(),
)
def test_inject_invariants_hold_for_any_input(seed, rate, kinds, void):
    labels = blocky_labels(seed, n=2, h=16, w=20, void=9 if void else None)
    if not (labels[labels != 9] > 0).any():
        return
    noisy = inject_label_noise(labels, kinds=kinds, rate=rate, seed=seed, ignore_index=9)
    check_invariants(labels, noisy, ignore_index=9, kinds=kinds)


# --- score_detection ---------------------------------------------------------------------


def test_pixel_scores_by_hand():
    truth = np.zeros((1, 5, 5), bool)
    truth[0, 0, :4] = True  # 4 corrupted pixels
    flags = np.zeros_like(truth)
    flags[0, 0, 1:3] = True  # 2 hits
    flags[0, 4, 4] = True  # 1 false alarm
    s = score_detection(flags, truth)
    assert (s.true_positives, s.flagged_pixels, s.truth_pixels) == (2, 3, 4)
    assert s.pixel_precision == pytest.approx(2 / 3)
    assert s.pixel_recall == pytest.approx(2 / 4)
    assert s.pixel_f1 == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    assert s.region_recall == 1.0  # exactly half of the region flagged counts as found
    assert (s.flagged_regions, s.flagged_regions_hit, s.region_precision) == (2, 1, 0.5)
    assert np.isnan(s.image_auprc)


def test_region_recall_half_rule_and_connectivity():
    truth = np.zeros((1, 6, 9), bool)
    truth[0, 0, 0:4] = True  # region A, 4 px: 2 flagged -> found (exactly 50%)
    truth[0, 3, 0:3] = True  # region B, 3 px: 1 flagged -> missed (33%)
    truth[0, 5, 5:8] = True  # region C, 3 px: 2 flagged -> found
    truth[0, 4, 8] = True  # diagonal neighbour of C: same region with 8-connectivity
    flags = np.zeros_like(truth)
    flags[0, 0, 2:4] = True
    flags[0, 3, 0] = True
    flags[0, 5, 5:7] = True
    flags[0, 1, 4] = True  # diagonal to region A's flags: one flagged region with them
    s = score_detection(flags, truth)
    regions = s.regions.set_index("region")
    assert regions["pixels"].tolist() == [4, 3, 4]
    assert regions["flagged"].tolist() == [2, 1, 2]
    assert regions["found"].tolist() == [True, False, True]
    assert s.region_recall == pytest.approx(2 / 3)
    assert (s.flagged_regions, s.flagged_regions_hit) == (3, 3)
    assert s.region_precision == 1.0


def test_error_ids_split_touching_errors_and_give_per_kind_rows():
    truth = np.zeros((2, 4, 6), bool)
    truth[0, 1, 0:6] = True
    ids = np.zeros(truth.shape, np.int32)
    ids[0, 1, 0:2], ids[0, 1, 2:6] = 1, 2  # two touching errors
    truth[1, 0, 0] = True
    ids[1, 0, 0] = 3
    errors = pd.DataFrame(
        {"error": [1, 2, 3], "image": [0, 0, 1], "kind": ["swap", "miss", "swap"]}
    )
    flags = np.zeros_like(truth)
    flags[0, 1, 0:3] = True  # error 1 fully, error 2 one pixel of four
    merged = score_detection(flags, truth)
    assert len(merged.regions) == 2 and merged.region_recall == 0.5
    s = score_detection(flags, truth, errors=errors, error_ids=ids, image_scores=[0.1, 0.5])
    assert s.regions[["region", "image", "kind", "pixels", "flagged"]].values.tolist() == [
        [1, 0, "swap", 2, 2],
        [2, 0, "miss", 4, 1],
        [3, 1, "swap", 1, 0],
    ]
    assert s.region_recall == pytest.approx(1 / 3)
    table = s.table()
    assert table.index.tolist() == ["all", "swap", "miss"]
    assert table.loc["swap", "pixel_recall"] == pytest.approx(2 / 3)
    assert table.loc["miss", "pixel_recall"] == pytest.approx(1 / 4)
    assert table.loc["swap", "region_recall"] == 0.5
    assert table.loc["miss", "regions_found"] == 0
    assert table.loc["all", "pixel_recall"] == pytest.approx(3 / 7)
    assert np.isnan(table.loc["swap", "pixel_precision"])
    assert s.image_auprc == 1.0 and s.image_prevalence == 1.0


def test_no_flags_and_no_truth():
    truth = np.zeros((2, 3, 3), bool)
    truth[0, 1, 1] = True
    none = np.zeros_like(truth)
    s = score_detection(none, truth)
    assert np.isnan(s.pixel_precision) and s.pixel_recall == 0 and s.pixel_f1 == 0
    assert s.region_recall == 0 and np.isnan(s.region_precision)
    s = score_detection(truth, none)
    assert s.pixel_precision == 0 and np.isnan(s.pixel_recall) and s.pixel_f1 == 0
    assert np.isnan(s.region_recall) and s.region_precision == 0
    s = score_detection(none, none, image_scores=[0.5, 0.5])
    assert np.isnan(s.pixel_f1) and np.isnan(s.image_auprc) and s.regions.empty
    assert s.table().loc["all", "regions"] == 0


def test_ignore_mask_leaves_pixels_out():
    truth = np.zeros((2, 3, 3), bool)
    truth[0, 0, 0] = truth[1, 2, 2] = True
    flags = truth.copy()
    flags[0, 1, 1] = True
    ignore = np.zeros_like(truth)
    ignore[0, 1, 1] = ignore[1, 2, 2] = True
    s = score_detection(flags, truth, ignore_mask=ignore, image_scores=[0.0, 1.0])
    assert (s.flagged_pixels, s.truth_pixels, s.pixel_precision, s.pixel_f1) == (1, 1, 1.0, 1.0)
    assert len(s.regions) == 1 and s.image_prevalence == 0.5


def test_average_precision_matches_sklearn():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    for trial in range(30):
        n = int(rng.integers(2, 40))
        y = rng.random(n) < 0.4
        y[0] = True
        s = rng.integers(0, 5, size=n) / 4 if trial % 2 else rng.random(n)  # ties every other
        assert average_precision(y, s) == pytest.approx(metrics.average_precision_score(y, s))
        truth = np.zeros((n, 2, 2), bool)
        truth[y, 0, 0] = True
        got = score_detection(truth, truth, image_scores=s).image_auprc
        assert got == pytest.approx(metrics.average_precision_score(y, -s))
    assert np.isnan(average_precision([False, False], [0.1, 0.2]))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**16), density=st.floats(0.0, 0.5))
def test_perfect_flags_score_one_and_no_flags_score_zero(seed, density):
    rng = np.random.default_rng(seed)
    truth = rng.random((3, 7, 9)) < density
    scores = np.where(truth.any(axis=(1, 2)), 0.2, 0.9)
    s = score_detection(truth, truth, image_scores=scores)
    if truth.any():
        assert s.pixel_f1 == s.pixel_recall == s.pixel_precision == 1.0
        assert s.region_recall == s.region_precision == 1.0
        assert s.image_auprc == 1.0
        none = score_detection(np.zeros_like(truth), truth)
        assert none.pixel_recall == none.region_recall == none.pixel_f1 == 0.0
    else:
        assert np.isnan(s.pixel_f1) and np.isnan(s.image_auprc)


@pytest.mark.parametrize(
    ("args", "options", "match"),
    [
        ((np.zeros((1, 2, 2)), np.zeros((1, 2, 2), bool)), {}, "'flags' .* boolean.* float64"),
        ((np.zeros((2, 2), bool), np.zeros((2, 2), bool)), {}, r"'flags' .* Got shape \(2, 2\)"),
        ((np.zeros((1, 2, 2), bool), np.zeros((1, 2, 3), bool)), {}, "'truth' .* like flags"),
        (
            (np.zeros((1, 2, 2), bool), np.zeros((1, 2, 2), bool)),
            {"ignore_mask": np.zeros((1, 2, 2), int)},
            "'ignore_mask' .* boolean",
        ),
        (
            (np.zeros((1, 2, 2), bool), np.zeros((1, 2, 2), bool)),
            {"image_scores": [0.1, 0.2]},
            r"'image_scores' .* shape \(1,\)",
        ),
        (
            (np.zeros((1, 2, 2), bool), np.zeros((1, 2, 2), bool)),
            {"image_scores": [np.nan]},
            "'image_scores' .* finite",
        ),
        (
            (np.zeros((1, 2, 2), bool), np.zeros((1, 2, 2), bool)),
            {"errors": pd.DataFrame({"error": [], "kind": []})},
            "'error_ids' .* given with errors",
        ),
        (
            (np.zeros((1, 2, 2), bool), np.ones((1, 2, 2), bool)),
            {"error_ids": np.zeros((1, 2, 2), int)},
            "'error_ids' .* positive exactly where truth is True",
        ),
        (
            (np.zeros((1, 2, 2), bool), np.zeros((1, 2, 2), bool)),
            {"error_ids": np.zeros((1, 2, 2))},
            "'error_ids' .* integer array",
        ),
        (
            (np.zeros((1, 2, 2), bool), np.ones((1, 2, 2), bool)),
            {"error_ids": np.ones((1, 2, 2), int), "errors": pd.DataFrame({"error": [2]})},
            "'errors' .* columns 'error' and 'kind'",
        ),
        (
            (np.zeros((1, 2, 2), bool), np.ones((1, 2, 2), bool)),
            {
                "error_ids": np.ones((1, 2, 2), int),
                "errors": pd.DataFrame({"error": [2], "kind": ["swap"]}),
            },
            "'errors' .* a row for every id in error_ids. Got no row for id 1",
        ),
    ],
)
def test_score_rejects_bad_input(args, options, match):
    with pytest.raises(ValueError, match=match) as info:
        score_detection(*args, **options)
    assert "score_detection" in str(info.value)


# --- make_scenes -------------------------------------------------------------------------


def test_scenes_shapes_and_probabilities():
    sc = make_scenes(6, height=32, width=40, num_classes=4, models=2, seed=1)
    assert sc.labels.shape == sc.true_labels.shape == sc.truth.shape == (6, 32, 40)
    assert sc.labels.dtype == sc.true_labels.dtype == np.uint8
    assert len(sc.pred_probs) == len(sc.logits) == len(sc.model_labels) == 2
    for probs, logits in zip(sc.pred_probs, sc.logits, strict=True):
        assert probs.shape == logits.shape == (6, 4, 32, 40)
        assert probs.dtype == logits.dtype == np.float32
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
        e = np.exp(logits.astype(np.float64))
        np.testing.assert_allclose(probs, e / e.sum(axis=1, keepdims=True), atol=1e-6)
    check_invariants(sc.true_labels, ev.NoisyLabels(sc.labels, sc.truth, sc.errors, sc.error_ids))
    assert (sc.num_classes, sc.background, sc.ignore_index) == (4, 0, None)
    assert set(np.unique(sc.true_labels)) == {0, 1, 2, 3}


def test_scenes_are_deterministic_and_models_independent():
    a = make_scenes(5, models=1, seed=3)
    b = make_scenes(5, models=3, seed=3)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.pred_probs[0], b.pred_probs[0])
    pd.testing.assert_frame_equal(a.errors, b.errors)
    assert not np.array_equal(b.model_labels[1], b.model_labels[2])
    assert not np.allclose(b.pred_probs[0], b.pred_probs[1])
    c = make_scenes(5, models=1, seed=4)
    assert not np.array_equal(a.true_labels, c.true_labels)


def test_model_mistakes_are_whole_objects():
    sc = make_scenes(20, models=2, model_error_rate=0.3, seed=5)
    n_wrong = 0
    for believed in sc.model_labels:
        for img, seen in zip(sc.true_labels, believed, strict=True):
            objects, _ = ev._shapes.image_objects(img, 0, None)
            wrong = seen != img
            assert not wrong[objects == 0].any()  # the background is never mistaken
            per_object = np.bincount(objects[wrong], minlength=objects.max() + 1)
            size = np.bincount(objects.ravel())
            hit = per_object > 0
            np.testing.assert_array_equal(per_object[hit], size[hit])  # all or nothing
            for obj in np.flatnonzero(hit):
                assert np.unique(seen[objects == obj]).size == 1
            n_wrong += hit.sum()
    assert n_wrong > 0


def test_models_are_right_inside_objects_and_unsure_where_wrong():
    sc = make_scenes(20, model_error_rate=0.0, seed=6)
    far = ndimage.distance_transform_cdt(~np.stack([border_map(t) for t in sc.true_labels]))
    far = far >= 4
    argmax = sc.pred_probs[0].argmax(axis=1)
    assert (argmax[far] == sc.true_labels[far]).mean() > 0.99
    edge = ~far
    assert sc.pred_probs[0].max(axis=1)[edge].mean() < sc.pred_probs[0].max(axis=1)[far].mean()
    for confident, low, high in ((False, 0.4, 0.8), (True, 0.9, 1.0)):
        sc = make_scenes(20, model_error_rate=0.3, model_confident=confident, seed=6)
        wrong = (sc.model_labels[0] != sc.true_labels) & far
        top = sc.pred_probs[0].max(axis=1)[wrong].mean()
        assert low < top < high


def test_void_border_and_no_background():
    sc = make_scenes(6, ignore_index=255, void_border=3, seed=2)
    frame = np.ones((64, 64), bool)
    frame[3:-3, 3:-3] = False
    assert (sc.labels[:, frame] == 255).all() and (sc.true_labels[:, frame] == 255).all()
    assert not (sc.labels[:, ~frame] == 255).any() and not sc.truth[:, frame].any()
    sc = make_scenes(6, background=None, num_classes=3, label_noise_rate=0.5, seed=2)
    assert set(sc.errors["kind"]) <= {"swap", "boundary"}
    big = make_scenes(2, ignore_index=300, num_classes=3)
    assert big.labels.dtype == np.int32


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"n_images": 0}, "'n_images' .* >= 1"),
        ({"height": 4}, "'height' .* >= 8"),
        ({"num_classes": 2}, r"'num_classes' .* >= 3 with background=0"),
        ({"background": 7}, "'background' .* class id in 0..4"),
        ({"ignore_index": 2}, "'ignore_index' .* outside 0..4"),
        ({"void_border": 2}, "'void_border' .* with ignore_index"),
        ({"objects": (0, 3)}, r"'objects' .* pair \(min, max\) of integers"),
        ({"objects": (5, 3)}, "'objects'"),
        ({"object_size": (0.1, 2.0)}, "'object_size' .* <= 1.0"),
        ({"models": 0}, "'models' .* >= 1"),
        ({"label_noise_rate": 2}, r"'label_noise_rate' .* in \[0, 1\]"),
        ({"model_error_rate": -1}, "'model_error_rate'"),
        ({"model_confident": 1}, "'model_confident' .* a bool"),
        ({"blur": -1}, "'blur' .* >= 0"),
        ({"logit_scale": 0}, "'logit_scale' .* > 0"),
        ({"seed": -2}, "'seed'"),
        ({"noise_kinds": ["typo"]}, "inject_label_noise.* unknown kinds"),
    ],
)
def test_scenes_reject_bad_input(options, match):
    with pytest.raises(ValueError, match=match):
        make_scenes(**{"n_images": 2, **options})


# --- the whole loop ----------------------------------------------------------------------


def test_reference_method_finds_injected_errors(monkeypatch):
    monkeypatch.setenv("SEGAUDIT_KERNEL", "numpy")  # no JIT compile wait; same results
    sc = make_scenes(40, model_error_rate=0.1, seed=0)
    flags = segaudit.find_label_issues(sc.labels, sc.pred_probs[0], verbose=False)
    image_scores, _ = segaudit.get_label_quality_scores(sc.labels, sc.pred_probs[0], verbose=False)
    s = score_detection(
        flags, sc.truth, image_scores=image_scores, errors=sc.errors, error_ids=sc.error_ids
    )
    assert s.pixel_recall > 0.5 and s.pixel_precision > 0.5 and s.region_recall > 0.5
    assert s.image_auprc > s.image_prevalence
    table = s.table()
    assert set(table.index) == {"all", *sc.errors["kind"]}
    assert (table.loc[list(sc.errors["kind"].unique()), "pixel_recall"] > 0.3).all()


def test_reference_method_with_void(monkeypatch):
    monkeypatch.setenv("SEGAUDIT_KERNEL", "numpy")
    sc = make_scenes(20, ignore_index=255, void_border=4, seed=1)
    flags = segaudit.find_label_issues(sc.labels, sc.pred_probs[0], ignore_index=255, verbose=False)
    s = score_detection(flags, sc.truth, ignore_mask=sc.labels == 255)
    assert s.pixel_recall > 0.3


@pytest.mark.parametrize("module", ["_inject", "_score", "_scenes"])
def test_docstring_examples(module):
    mod = importlib.import_module(f"segaudit.evaluate.{module}")
    result = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.attempted > 0 and result.failed == 0


def test_public_namespace():
    assert sorted(ev.__all__) == sorted(
        [
            "ERROR_COLUMNS",
            "ERROR_KINDS",
            "DetectionScores",
            "NoisyLabels",
            "Scenes",
            "average_precision",
            "inject_label_noise",
            "make_scenes",
            "score_detection",
        ]
    )
    for name in ev.__all__:
        assert getattr(ev, name).__doc__ or name.isupper()
