"""LabelAudit: the streaming API gives the array API's answers, whatever the batching."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

import segaudit
from _audits import same_results
from conftest import make_dataset
from segaudit.io._space import ArrayFile

VOID = 255
K = 4

# random data: the model disagrees with the labels too often for the set-up check
# (tests/test_sanity.py covers that warning)
pytestmark = pytest.mark.filterwarnings("ignore::segaudit.SetupWarning")


# ------------------------------------------------------------------ data and oracles


def _with_void(labels: np.ndarray, seed: int, fraction: float = 0.15) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = labels.copy()
    out[rng.random(labels.shape) < fraction] = VOID
    return out


def _logits(seed: int, n: int = 6, h: int = 8, w: int = 8) -> tuple[np.ndarray, np.ndarray]:
    labels, probs = make_dataset(seed, n=n, k=K, h=h, w=w)
    rng = np.random.default_rng(seed + 100)
    return labels, 3.0 * np.log(probs) + rng.normal(size=probs.shape)


def _plain(seed: int) -> tuple[np.ndarray, np.ndarray]:
    return make_dataset(seed, n=6, k=K, h=8, w=8)


def _void(seed: int) -> tuple[np.ndarray, np.ndarray]:
    labels, probs = make_dataset(seed, n=6, k=K, h=8, w=8)
    return _with_void(labels, seed), probs


def _ties(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Quantised probabilities: many bit-identical scores, so tie-breaking matters."""
    return make_dataset(seed, n=6, k=K, h=8, w=8, quantise=3)


def _void_logits(seed: int) -> tuple[np.ndarray, np.ndarray]:
    labels, logits = _logits(seed)
    return _with_void(labels, seed), logits


# name -> (data builder, options shared by LabelAudit and the array API)
CASES: dict[str, tuple[Callable[[int], tuple[np.ndarray, np.ndarray]], dict]] = {
    "plain": (_plain, {}),
    "ties": (_ties, {}),
    "ignore_index": (_void, {"ignore_index": VOID}),
    "from_logits": (_void_logits, {"from_logits": True, "ignore_index": VOID}),
    "downsample=2": (_void, {"downsample": 2, "ignore_index": VOID}),
    "downsample=2,mean": (_plain, {"downsample": 2, "label_pooling": "mean"}),
}

# name -> sizes of the successive update() batches over 6 images; 0 means one (H, W) image
BATCHINGS = {
    "one-per-update": [1] * 6,
    "uneven": [1, 3, 2],
    "all-at-once": [6],
    "single-images-2d": [0] * 6,
}


def _feed(audit: segaudit.LabelAudit, labels, probs, sizes, **update_options) -> None:
    start = 0
    for size in sizes:
        if size == 0:
            audit.update(labels[start], probs[start], **update_options)
            start += 1
        else:
            audit.update(
                labels[start : start + size], probs[start : start + size], **update_options
            )
            start += size
    assert start == labels.shape[0]


def _softmin_options(options: dict) -> dict:
    """Softmin scores use every pixel: downsample and label_pooling do not apply."""
    return {k: v for k, v in options.items() if k in ("ignore_index", "from_logits")}


def _reference(labels, probs, options):
    mask = segaudit.find_label_issues(labels, probs, verbose=False, **options)
    soft_image, soft_pixel = segaudit.get_label_quality_scores(
        labels, probs, verbose=False, **_softmin_options(options)
    )
    count_image, _ = segaudit.get_label_quality_scores(
        labels, probs, method="num_pixel_issues", verbose=False, **options
    )
    return mask, soft_image, soft_pixel, count_image


def _assert_same_as_reference(audit, labels, probs, options) -> None:
    mask, soft_image, soft_pixel, count_image = _reference(labels, probs, options)
    assert audit.num_images == labels.shape[0]
    got = audit.find_label_issues()
    assert got.dtype == np.bool_
    np.testing.assert_array_equal(got, mask)
    image, pixel = audit.get_label_quality_scores()
    np.testing.assert_array_equal(image, soft_image)
    np.testing.assert_array_equal(pixel, soft_pixel)
    image, _ = audit.get_label_quality_scores(method="num_pixel_issues")
    np.testing.assert_array_equal(image, count_image)
    np.testing.assert_array_equal(audit.image_scores(), soft_image)
    np.testing.assert_array_equal(audit.image_scores(method="num_pixel_issues"), count_image)


# ------------------------------------------------------------------ identical to the array API


@pytest.mark.parametrize("batching", list(BATCHINGS))
@pytest.mark.parametrize("case", list(CASES))
def test_matches_array_api_for_every_batching(case: str, batching: str) -> None:
    build, options = CASES[case]
    labels, probs = build(3)
    audit = segaudit.LabelAudit(K, **options)
    _feed(audit, labels, probs, BATCHINGS[batching])
    mask = segaudit.find_label_issues(labels, probs, verbose=False, **options)
    assert mask.any() and not mask.all()  # the comparison below is not vacuous
    _assert_same_as_reference(audit, labels, probs, options)


def test_thresholds_and_num_issues_follow_confident_learning() -> None:
    """Plain-numpy oracle: t_k = mean self-confidence of class k, T = confident disagreements."""
    labels, probs = _void(11)
    audit = segaudit.LabelAudit(K, ignore_index=VOID)
    _feed(audit, labels, probs, [2, 1, 3])
    valid = labels != VOID
    safe = np.where(valid, labels, 0)
    s = np.take_along_axis(probs, safe[:, None], axis=1)[:, 0]
    expected = np.array(
        [
            float(
                sum(map(Fraction, s[valid & (labels == k)].tolist()), Fraction(0))
                / np.count_nonzero(valid & (labels == k))
            )
            for k in range(K)
        ]
    )
    np.testing.assert_allclose(audit.thresholds, expected, rtol=1e-14, atol=0)
    predicted = probs.argmax(axis=1)
    top = probs.max(axis=1)
    confident = valid & (predicted != safe) & (top >= audit.thresholds[predicted] - 1e-6)
    assert audit.num_issues == int(confident.sum()) > 0
    mask = audit.find_label_issues()
    assert mask.sum() <= audit.num_issues
    assert not (mask & ~valid).any()


@pytest.mark.parametrize(
    ("dtype", "from_logits"),
    [
        (np.float64, False),
        (np.float32, False),
        (np.float32, True),
        (np.float16, True),
        (np.float16, False),
    ],
    ids=["float64", "float32", "float32-logits", "float16-logits", "float16"],
)
def test_float_dtypes_match_array_api(dtype, from_logits: bool) -> None:
    labels, values = _void_logits(5) if from_logits else _void(5)
    values = values.astype(dtype)
    options = {"ignore_index": VOID, "from_logits": from_logits}
    audit = segaudit.LabelAudit(K, **options)
    _feed(audit, labels, values, [2, 2, 2])
    _assert_same_as_reference(audit, labels, values, options)


def test_mixed_dtypes_across_updates_match_float64_array() -> None:
    """float32 values are exact in float64: batches of either give the float64 answer."""
    labels, probs = _void(6)
    probs32 = probs.astype(np.float32)
    audit = segaudit.LabelAudit(K, ignore_index=VOID)
    audit.update(labels[:3], probs32[:3])
    audit.update(labels[3:], probs32[3:].astype(np.float64))
    _assert_same_as_reference(audit, labels, probs32.astype(np.float64), {"ignore_index": VOID})


@pytest.mark.parametrize("audit_logits", [False, True])
def test_from_logits_per_update_override(audit_logits: bool) -> None:
    """The per-update flag wins over the audit's; both orders give the array API's answer."""
    labels, logits = _void_logits(8)
    audit = segaudit.LabelAudit(K, ignore_index=VOID, from_logits=audit_logits)
    _feed(audit, labels, logits, [2, 4], from_logits=True)
    _assert_same_as_reference(audit, labels, logits, {"ignore_index": VOID, "from_logits": True})


def test_from_logits_override_mixes_logits_and_probabilities() -> None:
    """One stream, logits in one batch and probabilities in the next, either default."""
    labels, logits = _void_logits(9)
    _, probs = _void(9)
    results = []
    for default in (False, True):
        audit = segaudit.LabelAudit(K, ignore_index=VOID, from_logits=default)
        audit.update(labels[:3], logits[:3], from_logits=True)
        audit.update(labels[3:], probs[3:], from_logits=False)
        results.append((audit.find_label_issues(), *audit.get_label_quality_scores()))
    for a, b in zip(*results, strict=True):
        np.testing.assert_array_equal(a, b)
    # pixel scores are per pixel: each half equals the array API on that half alone
    pixel = results[0][2]
    _, head = segaudit.get_label_quality_scores(
        labels[:3], logits[:3], verbose=False, ignore_index=VOID, from_logits=True
    )
    _, tail = segaudit.get_label_quality_scores(
        labels[3:], probs[3:], verbose=False, ignore_index=VOID
    )
    np.testing.assert_array_equal(pixel, np.concatenate([head, tail]))


# ------------------------------------------------------------------ spilling to disk


def test_spill_gives_identical_results_and_close_removes_files(tmp_path) -> None:
    labels, probs = _void(12)
    options = {"ignore_index": VOID}
    spill = tmp_path / "spill"
    spill.mkdir()
    audit = segaudit.LabelAudit(K, memory_limit=1000, spill_dir=spill, **options)
    _feed(audit, labels, probs, [1, 2, 3])
    files = [p for p in spill.rglob("*") if p.is_file()]
    assert files, "a 1000-byte memory limit must spill the summary to spill_dir"
    # the (max prob, argmax) records of disagreeing pixels spill too, not only the scores
    records = audit._finder.acc.max_prob + audit._finder.acc.argmax
    assert any(isinstance(r, np.memmap) for r in records)
    assert sum(r.nbytes for r in records if not isinstance(r, np.memmap)) <= 1000
    _assert_same_as_reference(audit, labels, probs, options)
    in_memory = segaudit.LabelAudit(K, memory_limit=None, **options)
    _feed(in_memory, labels, probs, [1, 2, 3])
    np.testing.assert_array_equal(audit.find_label_issues(), in_memory.find_label_issues())
    audit.close()
    assert list(spill.iterdir()) == []
    audit.close()  # closing twice is harmless


def test_context_manager_removes_spilled_files(tmp_path) -> None:
    labels, probs = _plain(13)
    with segaudit.LabelAudit(K, memory_limit=1000, spill_dir=tmp_path) as audit:
        _feed(audit, labels, probs, [3, 3])
        assert any(p.is_file() for p in tmp_path.rglob("*"))
        mask = audit.find_label_issues()
        assert mask.any()
    assert list(tmp_path.iterdir()) == []


def test_no_spill_below_the_memory_limit(tmp_path) -> None:
    labels, probs = _plain(14)
    with segaudit.LabelAudit(K, memory_limit=10**9, spill_dir=tmp_path) as audit:
        _feed(audit, labels, probs, [6])
        audit.find_label_issues()
        assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ images of different sizes


SIZES = [(4, 6), (8, 8), (2, 10), (8, 8), (6, 4)]


def _ragged(seed: int, *, logits: bool = False):
    items = []
    for i, (h, w) in enumerate(SIZES):
        labels, probs = make_dataset(seed + i, n=1, k=K, h=h, w=w, quantise=3)
        labels = _with_void(labels, seed + i, 0.1)
        items.append((labels[0], np.log(probs[0]) if logits else probs[0]))
    return items


def _flat_oracle(items, **options):
    """All pixels in one (1, K, 1, P) image, in image then row-major order.

    Confident Learning ranks pixels by (score, flat index) over the whole dataset, so
    laying every image end to end keeps every tie-break: an exact oracle for images
    of different sizes.
    """
    labels = np.concatenate([lab.reshape(-1) for lab, _ in items])[None, None]
    probs = np.concatenate([p.reshape(K, -1) for _, p in items], axis=1)[None, :, None]
    flat = segaudit.find_label_issues(labels, probs, verbose=False, **options)[0, 0]
    out, start = [], 0
    for lab, _ in items:
        out.append(flat[start : start + lab.size].reshape(lab.shape))
        start += lab.size
    return out


@pytest.mark.parametrize("from_logits", [False, True])
def test_images_of_different_sizes(from_logits: bool) -> None:
    items = _ragged(20, logits=from_logits)
    options = {"ignore_index": VOID, "from_logits": from_logits}
    expected = _flat_oracle(items, **options)
    assert sum(int(m.sum()) for m in expected) > 0
    audit = segaudit.LabelAudit(K, **options)
    audit.update(items[0][0], items[0][1])
    audit.update(np.stack([items[1][0]]), np.stack([items[1][1]]))
    audit.update(items[2][0], items[2][1])
    audit.update(np.stack([items[3][0]]), np.stack([items[3][1]]))
    audit.update(items[4][0], items[4][1])
    masks = audit.find_label_issues()
    assert isinstance(masks, list)
    assert [m.shape for m in masks] == SIZES
    for got, want in zip(masks, expected, strict=True):
        np.testing.assert_array_equal(got, want)
    image, pixels = audit.get_label_quality_scores()
    assert isinstance(pixels, list)
    for i, (lab, p) in enumerate(items):
        one_image, one_pixels = segaudit.get_label_quality_scores(
            lab[None], p[None], verbose=False, **options
        )
        assert image[i] == one_image[0]
        np.testing.assert_array_equal(pixels[i], one_pixels[0])
    counts, _ = audit.get_label_quality_scores(method="num_pixel_issues")
    for i, (lab, _) in enumerate(items):
        valid = np.count_nonzero(lab != VOID)
        assert counts[i] == 1.0 - expected[i].sum() / valid


def test_different_sizes_do_not_depend_on_batching_order() -> None:
    """Same images, same order, different grouping into batches: same masks."""
    items = _ragged(30)
    one = segaudit.LabelAudit(K, ignore_index=VOID)
    for lab, p in items:
        one.update(lab, p)
    grouped = segaudit.LabelAudit(K, ignore_index=VOID)
    grouped.update(items[0][0], items[0][1])
    grouped.update(items[1][0], items[1][1])
    grouped.update(items[2][0], items[2][1])
    grouped.update(np.stack([items[3][0]]), np.stack([items[3][1]]))
    grouped.update(items[4][0][None], items[4][1][None])
    for a, b in zip(one.find_label_issues(), grouped.find_label_issues(), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(one.thresholds, grouped.thresholds)


def test_different_sizes_refuse_out(tmp_path) -> None:
    items = _ragged(40)
    audit = segaudit.LabelAudit(K, ignore_index=VOID)
    for lab, p in items:
        audit.update(lab, p)
    with pytest.raises(ValueError, match="'out' needs images of one size"):
        audit.find_label_issues(out=tmp_path / "issues.npy")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ errors name the image


def _small(seed: int) -> tuple[np.ndarray, np.ndarray]:
    labels, probs = make_dataset(seed, n=1, k=3, h=4, w=4)
    return labels[0], probs[0]


def _bad_batches():
    labels, probs = _small(99)
    bad_label = labels.copy()
    bad_label[2, 1] = 7
    nan = probs.copy()
    nan[1, 3, 0] = np.nan
    negative = probs.copy()
    negative[0, 0, 2] = -0.5
    return {
        "label out of range": (
            (bad_label, probs),
            r"labels must be integers in 0\.\.2; got 7 at image 37, row 2, column 1\.$",
        ),
        "wrong K": (
            (labels, probs[:2]),
            r"LabelAudit\.update \(the batch starting at image 37\): expected pred_probs with "
            r"K=3 classes on axis 1 "
            r"\(num_classes\); got shape \(1, 2, 4, 4\)\.",
        ),
        "NaN": (
            (labels, nan),
            r"pred_probs must be finite; got nan at class 1 of image 37, row 3, column 0\.$",
        ),
        "negative": ((labels, negative), r"image 37, row 0, column 2\. If these are raw"),
        "3-D pred_probs": (
            (labels[None], probs),
            r"LabelAudit\.update \(the batch starting at image 37\): 'pred_probs' must have "
            r"shape \(N, K, H, W\); "
            r"got 3 dimensions",
        ),
        "H and W disagree": (
            (labels[None, :, :3], probs[None]),
            r"LabelAudit\.update \(the batch starting at image 37\): 'labels' and 'pred_probs' "
            r"must agree on N, H "
            r"and W",
        ),
    }


def _audit_37_then(bad_labels, bad_probs, message):
    """Feed 37 valid one-image batches, then a bad one that must fail naming image 37."""
    good = [_small(i) for i in range(38)]
    audit = segaudit.LabelAudit(3)
    # ten images in the first batch: the bad one is batch 28 but image 37
    audit.update(np.stack([lab for lab, _ in good[:10]]), np.stack([p for _, p in good[:10]]))
    for lab, p in good[10:37]:
        audit.update(lab, p)
    with pytest.raises(ValueError, match=message):
        audit.update(bad_labels, bad_probs)
    assert audit.num_images == 37
    audit.update(*good[37])  # still usable afterwards
    labels = np.stack([lab for lab, _ in good])
    probs = np.stack([p for _, p in good])
    fresh = segaudit.LabelAudit(3)
    fresh.update(labels, probs)
    return audit, fresh, labels, probs


@pytest.mark.parametrize("problem", list(_bad_batches()))
def test_bad_batch_37_is_named_and_not_half_added(problem: str) -> None:
    (bad_labels, bad_probs), message = _bad_batches()[problem]
    audit, fresh, labels, probs = _audit_37_then(bad_labels, bad_probs, message)
    # the failed batch left no trace: same selection as the 38 valid images alone
    expected = segaudit.find_label_issues(labels, probs, verbose=False)
    assert expected.any()
    np.testing.assert_array_equal(audit.find_label_issues(), expected)
    np.testing.assert_array_equal(audit.thresholds, fresh.thresholds)
    assert audit.num_issues == fresh.num_issues


def test_after_a_bad_batch_every_result_matches_a_clean_audit() -> None:
    (bad_labels, bad_probs), message = _bad_batches()["label out of range"]
    audit, fresh, labels, _ = _audit_37_then(bad_labels, bad_probs, message)
    for a, b in zip(
        audit.get_label_quality_scores(), fresh.get_label_quality_scores(), strict=True
    ):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(audit.confusions(), fresh.confusions())
    for a, b in zip(audit.class_counts(), fresh.class_counts(), strict=True):
        np.testing.assert_array_equal(a, b)
    images = list(audit.iter_images())
    assert [img.index for img in images] == list(range(38))
    np.testing.assert_array_equal(np.stack([img.labels for img in images]), labels)


def test_downsample_that_does_not_divide_names_the_image() -> None:
    labels, probs = make_dataset(0, n=2, k=3, h=4, w=4)
    audit = segaudit.LabelAudit(3, downsample=2)
    audit.update(labels, probs)
    odd_labels, odd_probs = make_dataset(1, n=1, k=3, h=4, w=5)
    with pytest.raises(
        ValueError, match=r"\(the batch starting at image 2\): 'downsample' must divide .*W=5"
    ):
        audit.update(odd_labels, odd_probs)
    assert audit.num_images == 2
    np.testing.assert_array_equal(
        audit.find_label_issues(),
        segaudit.find_label_issues(labels, probs, downsample=2, verbose=False),
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"num_classes": 1},
            r"The 'num_classes' parameter of LabelAudit must be an integer "
            r">= 2\. Got 1 instead\.",
        ),
        ({"num_classes": 2.0}, r"'num_classes' parameter of LabelAudit .* Got 2\.0 instead"),
        ({"num_classes": True}, r"'num_classes' parameter of LabelAudit .* Got True instead"),
        (
            {"num_classes": 3, "downsample": 0},
            r"The 'downsample' parameter of LabelAudit must "
            r"be a positive integer\. Got 0 instead\.",
        ),
        (
            {"num_classes": 3, "label_pooling": "max"},
            r"The 'label_pooling' parameter of LabelAudit must be one of 'mode', 'mean'\. "
            r"Got 'max' instead\.",
        ),
    ],
)
def test_constructor_messages(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        segaudit.LabelAudit(**kwargs)


def test_results_before_any_update_raise() -> None:
    audit = segaudit.LabelAudit(3)
    calls = (
        audit.find_label_issues,
        audit.get_label_quality_scores,
        audit.image_scores,
        audit.confusions,
    )
    for call in calls:
        with pytest.raises(ValueError, match=r"no batches yet; call update\(\) at least once"):
            call()
    with pytest.raises(ValueError, match="no batches yet"):
        _ = audit.thresholds


def test_score_options_are_checked() -> None:
    labels, probs = _plain(1)
    audit = segaudit.LabelAudit(K)
    audit.update(labels, probs)
    with pytest.raises(
        ValueError,
        match=r"The 'method' parameter of "
        r"LabelAudit\.get_label_quality_scores must be one of",
    ):
        audit.get_label_quality_scores(method="mean")
    with pytest.raises(ValueError, match=r"'temperature' parameter .* Got 0 instead"):
        audit.get_label_quality_scores(temperature=0)
    with pytest.raises(ValueError, match=r"'method' parameter of LabelAudit\.image_scores"):
        audit.image_scores(method="mean")
    image, _ = audit.get_label_quality_scores(temperature=0.02)
    expected, _ = segaudit.get_label_quality_scores(labels, probs, temperature=0.02, verbose=False)
    np.testing.assert_array_equal(image, expected)


# ------------------------------------------------------------------ results, caching, helpers


def test_find_twice_and_update_after_find() -> None:
    labels, probs = _void(21)
    audit = segaudit.LabelAudit(K, ignore_index=VOID)
    _feed(audit, labels[:4], probs[:4], [2, 2])
    first = audit.find_label_issues()
    again = audit.find_label_issues()
    np.testing.assert_array_equal(first, again)
    assert first is not again  # a fresh array: editing one result cannot corrupt the next
    first[...] = ~first
    np.testing.assert_array_equal(audit.find_label_issues(), again)
    thresholds_before = audit.thresholds.copy()
    # a new batch must invalidate the cached selection
    audit.update(labels[4:], probs[4:])
    assert audit.num_images == 6
    _assert_same_as_reference(audit, labels, probs, {"ignore_index": VOID})
    assert not np.array_equal(audit.thresholds, thresholds_before)
    four = segaudit.find_label_issues(labels[:4], probs[:4], ignore_index=VOID, verbose=False)
    np.testing.assert_array_equal(again, four)


def test_iter_images() -> None:
    labels, probs = _void(22)
    audit = segaudit.LabelAudit(K, ignore_index=VOID)
    _feed(audit, labels, probs, [1, 3, 2])
    mask = audit.find_label_issues()
    _, pixel = audit.get_label_quality_scores()
    seen = list(audit.iter_images())
    assert [img.index for img in seen] == list(range(6))
    valid = labels != VOID
    for img in seen:
        i = img.index
        assert isinstance(img, segaudit.AuditImage)
        np.testing.assert_array_equal(img.labels, labels[i])
        expected_pred = np.where(valid[i], probs[i].argmax(axis=0), -1)
        np.testing.assert_array_equal(img.predicted, expected_pred)
        np.testing.assert_array_equal(img.scores, pixel[i])
        assert np.isnan(img.scores[~valid[i]]).all()
        np.testing.assert_array_equal(img.issues, mask[i])


@pytest.mark.parametrize("memory_limit", [None, 0])
def test_iter_images_views_are_read_only(tmp_path, memory_limit) -> None:
    """A caller's write to a yielded image cannot change the audit's later answers."""
    labels, probs = _void(24)
    audit = segaudit.LabelAudit(K, ignore_index=VOID, memory_limit=memory_limit, spill_dir=tmp_path)
    _feed(audit, labels, probs, [2, 4])
    fresh = segaudit.LabelAudit(K, ignore_index=VOID)
    _feed(fresh, labels, probs, [6])
    for img in audit.iter_images():
        for name in ("labels", "predicted", "scores"):
            view = getattr(img, name)
            with pytest.raises(ValueError, match="read-only"):
                view[0, 0] = 1
            view.copy()[0, 0] = 1  # a copy is the caller's own
        img.issues[...] = True  # the mask is made for this pass: the caller's to change
    same_results(audit, fresh)
    audit.close()


def test_confusions_equal_common_label_issues() -> None:
    labels, probs = _void(23)
    audit = segaudit.LabelAudit(K, ignore_index=VOID)
    _feed(audit, labels, probs, [2, 4])
    table = audit.confusions()
    assert table.shape == (K, K) and table.dtype == np.int64
    mask = segaudit.find_label_issues(labels, probs, ignore_index=VOID, verbose=False)
    frame = segaudit.common_label_issues(
        mask, labels, probs, ignore_index=VOID, top=K * K, verbose=False
    )
    expected = np.zeros((K, K), dtype=np.int64)
    for row in frame.itertuples(index=False):
        expected[int(row.given_label), int(row.predicted_label)] = row.num_pixel_issues
    np.testing.assert_array_equal(table, expected)
    assert table.sum() == mask.sum() > 0
    assert np.trace(table) == 0  # a flagged pixel always disagrees with the model


def test_class_counts() -> None:
    labels, probs = _void(24)
    audit = segaudit.LabelAudit(K, ignore_index=VOID)
    _feed(audit, labels, probs, [5, 1])
    pixels, flagged = audit.class_counts()
    valid = labels != VOID
    np.testing.assert_array_equal(pixels, np.bincount(labels[valid], minlength=K))
    mask = audit.find_label_issues()
    np.testing.assert_array_equal(flagged, np.bincount(labels[mask], minlength=K))
    assert pixels.dtype == flagged.dtype == np.int64
    assert flagged.sum() == mask.sum() > 0


# ------------------------------------------------------------------ update is all or nothing


def _fail_on_call(target: Callable, fail_at: int, error: BaseException) -> Callable:
    calls = []

    def wrapper(*args, **kwargs):
        calls.append(1)
        if len(calls) == fail_at:
            raise error
        return target(*args, **kwargs)

    wrapper.calls = calls  # type: ignore[attr-defined]
    return wrapper


def _file_bytes(folder: Path) -> int:
    """The bytes of every file under `folder` (the spill file's size)."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


# a spilled batch writes, in order: the max prob and argmax records of disagreeing pixels
# (in the engine's stage), then the scores, disagreement, argmax and given labels (after it)
SPILL_STEPS = {
    1: "max prob records",
    2: "argmax records",
    3: "scores",
    4: "disagreement",
    5: "argmax",
    6: "given labels",
}


@pytest.mark.parametrize("fail_at", list(SPILL_STEPS), ids=list(SPILL_STEPS.values()))
def test_spill_failure_leaves_the_audit_as_it_was(tmp_path, monkeypatch, fail_at: int) -> None:
    labels, probs = _void(31)
    spill = tmp_path / "spill"
    spill.mkdir()
    audit = segaudit.LabelAudit(K, ignore_index=VOID, memory_limit=0, spill_dir=spill)
    audit.update(labels[:2], probs[:2])
    files_before = sorted(p.name for p in spill.rglob("*"))
    spilled_before = audit._store.spilled
    bytes_before = _file_bytes(spill)
    failing = _fail_on_call(ArrayFile.append, fail_at, OSError(28, "No space left on device"))
    monkeypatch.setattr(ArrayFile, "append", failing)
    with pytest.raises(OSError, match="No space left on device"):
        audit.update(labels[2:4], probs[2:4])
    assert len(failing.calls) == fail_at
    monkeypatch.undo()
    # nothing of the failed batch is counted, kept or left on disk
    assert audit.num_images == 2
    assert audit._store.spilled == spilled_before
    assert sorted(p.name for p in spill.rglob("*")) == files_before
    assert _file_bytes(spill) == bytes_before  # the batch's arrays are cut off the spill file
    audit.update(labels[4:], probs[4:])  # the loop goes on with the next batch
    fresh = segaudit.LabelAudit(K, ignore_index=VOID, memory_limit=0, spill_dir=tmp_path)
    fresh.update(labels[:2], probs[:2])
    fresh.update(labels[4:], probs[4:])
    same_results(audit, fresh)
    assert audit._store.spilled == fresh._store.spilled
    good = np.r_[0:2, 4:6]
    expected = segaudit.find_label_issues(
        labels[good], probs[good], ignore_index=VOID, verbose=False
    )
    assert expected.any()
    np.testing.assert_array_equal(audit.find_label_issues(), expected)
    audit.close()
    fresh.close()
    assert list(spill.iterdir()) == []


def test_first_spill_failure_leaves_no_spill_folder(tmp_path, monkeypatch) -> None:
    labels, probs = _plain(32)
    audit = segaudit.LabelAudit(K, memory_limit=0, spill_dir=tmp_path)
    failing = _fail_on_call(ArrayFile.append, 2, OSError(28, "disk full"))
    monkeypatch.setattr(ArrayFile, "append", failing)
    with pytest.raises(OSError, match="disk full"):
        audit.update(labels[:3], probs[:3])
    assert list(tmp_path.iterdir()) == []
    assert not audit._store.mark().had_dir
    monkeypatch.undo()
    audit.update(labels[3:], probs[3:])
    fresh = segaudit.LabelAudit(K)
    fresh.update(labels[3:], probs[3:])
    same_results(audit, fresh)
    audit.close()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("where", ["records", "labels copy", "kernel"])
def test_in_memory_failure_leaves_the_audit_as_it_was(monkeypatch, where: str) -> None:
    """The same without spilling: a failure after the kernel ran adds nothing."""
    import segaudit.drivers._parts
    import segaudit.engine._finder

    labels, probs = _void(33)
    audit = segaudit.LabelAudit(K, ignore_index=VOID, memory_limit=None)
    audit.update(labels[:3], probs[:3])
    memory_before = audit._store.in_memory
    audit.find_label_issues()  # a cached selection must not survive either
    error = OSError(5, "Input/output error")
    if where == "records":
        monkeypatch.setattr(audit._finder.acc, "_keep", _fail_on_call(lambda a: a, 2, error))
    elif where == "labels copy":
        monkeypatch.setattr(
            segaudit.drivers._parts, "to_numpy", _fail_on_call(np.asarray, 1, error)
        )
    else:
        real = segaudit.engine._finder.summarise_block
        monkeypatch.setattr(
            segaudit.engine._finder, "summarise_block", _fail_on_call(real, 1, error)
        )
    with pytest.raises(OSError, match="Input/output error"):
        audit.update(labels[3:5], probs[3:5])
    monkeypatch.undo()
    assert audit._store.in_memory == memory_before
    assert len(audit._finder.entries) == len(audit._parts) == 1
    audit.update(labels[5:], probs[5:])
    fresh = segaudit.LabelAudit(K, ignore_index=VOID)
    fresh.update(labels[:3], probs[:3])
    fresh.update(labels[5:], probs[5:])
    same_results(audit, fresh)
    assert audit._store.in_memory == fresh._store.in_memory


def test_keyboard_interrupt_during_update_is_rolled_back(tmp_path, monkeypatch) -> None:
    labels, probs = _plain(34)
    audit = segaudit.LabelAudit(K, memory_limit=0, spill_dir=tmp_path)
    audit.update(labels[:2], probs[:2])
    before = sorted(p.name for p in tmp_path.rglob("*"))
    bytes_before = _file_bytes(tmp_path)
    failing = _fail_on_call(ArrayFile.append, 5, KeyboardInterrupt())
    monkeypatch.setattr(ArrayFile, "append", failing)
    with pytest.raises(KeyboardInterrupt):
        audit.update(labels[2:], probs[2:])
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
    assert _file_bytes(tmp_path) == bytes_before
    assert audit.num_images == 2
    monkeypatch.undo()
    fresh = segaudit.LabelAudit(K)
    fresh.update(labels[:2], probs[:2])
    same_results(audit, fresh)
    audit.close()


# ------------------------------------------------------------------ option checks


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"memory_limit": -1},
            r"The 'memory_limit' parameter of LabelAudit must be a number "
            r"of bytes >= 0 \(an integer\) or None\. Got -1 instead\.",
        ),
        ({"memory_limit": "1GB"}, r"'memory_limit' parameter of LabelAudit .* Got '1GB' instead"),
        ({"memory_limit": 1.5e9}, r"'memory_limit' parameter .* Got 1500000000\.0 instead"),
        ({"memory_limit": True}, r"'memory_limit' parameter .* Got True instead"),
        (
            {"n_jobs": 0},
            r"The 'n_jobs' parameter of LabelAudit must be a positive integer, -1 "
            r"or None\. Got 0 instead\.",
        ),
        ({"n_jobs": -2}, r"'n_jobs' parameter of LabelAudit .* Got -2 instead"),
        ({"n_jobs": 2.0}, r"'n_jobs' parameter of LabelAudit .* Got 2\.0 instead"),
        ({"n_jobs": True}, r"'n_jobs' parameter of LabelAudit .* Got True instead"),
        (
            {"from_logits": "no"},
            r"The 'from_logits' parameter of LabelAudit must be True or "
            r"False\. Got 'no' instead\.",
        ),
        ({"from_logits": 1}, r"'from_logits' parameter of LabelAudit .* Got 1 instead"),
        ({"from_logits": None}, r"'from_logits' parameter of LabelAudit .* Got None instead"),
    ],
)
def test_bad_options_are_rejected(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        segaudit.LabelAudit(K, **kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"memory_limit": 0},
        {"memory_limit": np.int64(10**6)},
        {"memory_limit": None},
        {"n_jobs": -1},
        {"n_jobs": 1},
        {"n_jobs": None},
        {"from_logits": np.bool_(True)},
    ],
    ids=str,
)
def test_good_options_are_accepted(kwargs: dict) -> None:
    labels, logits = _void_logits(35)
    options = {"ignore_index": VOID, "from_logits": True}
    audit = segaudit.LabelAudit(K, **{**options, **kwargs})
    _feed(audit, labels, logits, [3, 3], from_logits=True)
    _assert_same_as_reference(audit, labels, logits, options)
    audit.close()


def test_update_from_logits_must_be_a_bool() -> None:
    labels, probs = _plain(36)
    audit = segaudit.LabelAudit(K)
    audit.update(labels[:2], probs[:2])
    with pytest.raises(
        ValueError,
        match=r"The 'from_logits' parameter of LabelAudit\.update \(the batch starting at "
        r"image 2\) must be True or False\. Got 'no' instead\.",
    ):
        audit.update(labels[2:], probs[2:], from_logits="no")
    assert audit.num_images == 2
    audit.update(labels[2:], probs[2:], from_logits=np.bool_(False))
    _assert_same_as_reference(audit, labels, probs, {})


def test_error_in_a_later_image_of_a_batch_names_its_index_in_the_audit() -> None:
    """Batch 2 holds images 5..8; a bad label in its third image is image 7."""
    labels, probs = make_dataset(37, n=9, k=3, h=4, w=4)
    audit = segaudit.LabelAudit(3)
    audit.update(labels[:4], probs[:4])
    audit.update(labels[4], probs[4])
    bad = labels[5:].copy()
    bad[2, 3, 1] = 9
    with pytest.raises(ValueError, match=r"got 9 at image 7, row 3, column 1\.$"):
        audit.update(bad, probs[5:])
    assert audit.num_images == 5
