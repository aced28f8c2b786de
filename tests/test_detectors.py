"""The detectors (``filter_by``): the default unchanged, ``confident_regions`` against an oracle.

The oracle is a plain numpy re-implementation of ``confident_regions`` (as in
``benchmarks/bench_detectors.py``): the whole dataset at once, connected
components labelled over all images with a structure that joins pixels within
an image only. The engine reads ``pred_probs`` once in batches and labels one
image at a time; both must give identical masks.
"""

from __future__ import annotations

import numpy as np
import pytest

import segaudit
from conftest import make_dataset
from segaudit.engine._detect import (
    CONFIDENT_RATIO,
    CONFIDENT_SHARE,
    FLIP_SIZE,
    IMPLAUSIBLE_RATIO,
    LONG_STRIP_LEAN,
    LONG_STRIP_RATIO,
    LONG_STRIP_TOUCH,
    STRIP_LEAN,
    STRIP_RATIO,
    STRIP_SIZE,
    STRIP_TOUCH,
    TRIM_LEAN,
    UNLABELLED_LEAN,
    UNLABELLED_TOUCH,
)
from segaudit.evaluate import make_scenes, score_detection
from segaudit.filter import FILTER_BY, RECOMMENDED_FILTER
from segaudit.rank import METHODS, RECOMMENDED_METHOD

ndi = pytest.importorskip("scipy.ndimage")

FLOOR = 2e-6


# ---------------------------------------------------------------- the oracle


def _thresholds(y, s, keep, k, fallback=None):
    """Mean s per class over `keep`; where a class has none: FLOOR, or with a
    `fallback` (the agreeing thresholds), the mean of the other classes' means,
    else `fallback` itself when no class has any."""
    n = np.bincount(y[keep], minlength=k)
    mean = np.bincount(y[keep], s[keep], minlength=k) / np.maximum(n, 1)
    t = np.maximum(mean, FLOOR)
    if fallback is None:
        return np.where(n > 0, t, FLOOR)
    return np.where(n > 0, t, t[n > 0].mean()) if (n > 0).any() else fallback


def oracle_regions(labels, probs, ignore_index=None):
    """Return the confident_regions mask and the region id of every candidate pixel."""
    p = np.asarray(probs)
    y = np.asarray(labels).astype(np.int64)
    k = p.shape[1]
    valid = np.ones(y.shape, bool) if ignore_index is None else y != ignore_index
    yc = np.where(valid, y, 0)
    a = p.argmax(axis=1)
    s = np.take_along_axis(p, yc[:, None], axis=1)[:, 0].astype(np.float64)
    m = p.max(axis=1).astype(np.float64)
    t = _thresholds(yc, s, valid, k)
    t_agree = _thresholds(yc, s, valid & (a == yc), k, fallback=t)
    cand = valid & (a != yc)
    regions = _components(cand, yc)
    flag = _decide(regions, cand, y, yc, valid, a, s, m, t_agree)
    mask = flag[regions]
    # a flagged region of several predicted classes: its parts (its candidates of one
    # predicted class) decided alone by the confident and implausible rules; a part
    # not flagged alone, where the model is unsure (mean m / t~_a below TRIM_LEAN)
    # and the label keeps mean s above STRIP_RATIO t~_y, is left out when another
    # part is flagged alone
    code = np.where(cand, regions * k + a + 1, 0)
    parts = np.searchsorted(np.unique(np.r_[0, code.ravel()]), code)  # 0: no candidate
    alone = _decide(parts, cand, y, yc, valid, a, s, m, t_agree, shape_rules=False)
    region_of = np.zeros(alone.size, np.int64)
    region_of[parts[cand]] = regions[cand]
    some = np.zeros(flag.size, bool)
    some[region_of[alone]] = True
    size = np.maximum(np.bincount(parts.ravel(), minlength=alone.size), 1)
    mean_lean = np.bincount(parts.ravel(), np.where(cand, m / t_agree[a], 0).ravel()) / size
    mean_s = np.bincount(parts.ravel(), np.where(cand, s, 0).ravel()) / size
    label_of = np.zeros(alone.size, np.int64)
    label_of[parts[cand]] = yc[cand]
    unsure = (mean_lean < TRIM_LEAN) & (mean_s > STRIP_RATIO * t_agree[label_of])
    drop = ~alone & some[region_of] & unsure
    drop[0] = False
    return mask & ~drop[parts], regions


def _components(cand, key):
    """8-connected components (within an image) of candidates with equal `key`; 0 elsewhere."""
    structure = np.zeros((3, 3, 3), bool)
    structure[1] = True  # 8-connected, within one image
    regions = np.zeros(cand.shape, np.int64)
    count = 0
    for c in np.unique(key[cand]):
        part, found = ndi.label(cand & (key == c), structure=structure)
        regions[part > 0] = part[part > 0] + count
        count += found
    return regions


def _decide(regions, cand, y, yc, valid, a, s, m, t_agree, shape_rules=True):
    """Which regions (ids of `regions`, 0 unused) the rules of confident_regions flag
    (without `shape_rules`: the confident and implausible rules only)."""
    count = int(regions.max())
    size = np.maximum(np.bincount(regions.ravel(), minlength=count + 1), 1)
    confident = (m >= t_agree[a] - 1e-6) & cand
    share = np.bincount(regions.ravel(), confident.ravel(), count + 1) / size
    mean_s = np.bincount(regions.ravel(), np.where(cand, s, 0).ravel(), count + 1) / size
    label_of = np.zeros(count + 1, np.int64)
    label_of[regions[cand]] = yc[cand]
    # the strip rule: 4-neighbours labelled a, and agreeing (non-candidate) ones labelled y
    padded = np.pad(np.where(valid, y, -1), ((0, 0), (1, 1), (1, 1)), constant_values=-1)
    padded_cand = np.pad(cand, ((0, 0), (1, 1), (1, 1)))
    near_a = np.zeros(y.shape, bool)
    near_y = np.zeros(y.shape, bool)
    h, w = y.shape[1:]
    for dr, dc in ((0, -1), (0, 1), (-1, 0), (1, 0)):
        nb = padded[:, 1 + dr : 1 + dr + h, 1 + dc : 1 + dc + w]
        nb_cand = padded_cand[:, 1 + dr : 1 + dr + h, 1 + dc : 1 + dc + w]
        near_a |= cand & (nb == a)
        near_y |= cand & (nb == yc) & ~nb_cand
    lean = np.where(cand, m / t_agree[a], 0.0)
    mean_lean = np.bincount(regions.ravel(), lean.ravel(), count + 1) / size
    touch_a = np.bincount(regions.ravel(), near_a.ravel(), count + 1)
    touch_y = np.bincount(regions.ravel(), near_y.ravel(), count + 1)
    strip_floor = STRIP_RATIO * t_agree[label_of]
    strip = (
        (size >= STRIP_SIZE)
        & (mean_s <= strip_floor)
        & (mean_lean >= STRIP_LEAN)
        & (touch_a >= STRIP_TOUCH * size)
        & (touch_y >= STRIP_TOUCH * size)
    )
    # the long strip: counts along both sides instead of shares (its bound as the kernels write it)
    long_strip = (
        (size >= STRIP_SIZE)
        & (mean_s <= strip_floor * (LONG_STRIP_RATIO / STRIP_RATIO))
        & (mean_lean >= LONG_STRIP_LEAN)
        & (touch_a >= LONG_STRIP_TOUCH)
        & (touch_y >= LONG_STRIP_TOUCH)
    )
    # the unlabelled object: nothing labelled a beside it, agreeing pixels of y around it
    unlabelled = (
        (size >= STRIP_SIZE)
        & (mean_s <= strip_floor)
        & (mean_lean >= UNLABELLED_LEAN)
        & (touch_a == 0)
        & (touch_y >= UNLABELLED_TOUCH * np.sqrt(size))
    )
    implausible = mean_s <= IMPLAUSIBLE_RATIO * t_agree[label_of]
    # the confident rule's bound, computed as the kernels do
    sure = (share >= CONFIDENT_SHARE) & (mean_s <= strip_floor * (CONFIDENT_RATIO / STRIP_RATIO))
    flag = sure | implausible
    if shape_rules:
        flag |= strip | long_strip | unlabelled
        # a border flip of the model's own: a tiny region, every pixel touching both sides
        flag &= ~((size <= FLIP_SIZE) & (touch_a == size) & (touch_y == size))
    flag[0] = False
    return flag


def _regions_mask(labels, probs, **options):
    return segaudit.find_label_issues(
        labels, probs, verbose=False, filter_by="confident_regions", **options
    )


@pytest.fixture(scope="module")
def scenes():
    return make_scenes(12, height=40, width=48, num_classes=5, model_error_rate=0.2, seed=3)


# ---------------------------------------------------------------- API


def test_constants():
    assert FILTER_BY == ("self_confidence", "confident_regions")
    assert RECOMMENDED_FILTER in FILTER_BY
    assert RECOMMENDED_METHOD == "region_fraction" and RECOMMENDED_METHOD in METHODS


def test_unknown_filter_by_lists_the_valid_ones():
    labels, probs = make_dataset(0)
    with pytest.raises(
        ValueError,
        match=r"'filter_by' parameter of find_label_issues.*"
        r"'self_confidence', 'confident_regions'. Got 'regions'",
    ):
        segaudit.find_label_issues(labels, probs, filter_by="regions", verbose=False)
    with pytest.raises(ValueError, match="'filter_by' parameter of LabelAudit"):
        segaudit.LabelAudit(4, filter_by=None)


def test_unknown_method_lists_region_fraction():
    labels, probs = make_dataset(0)
    with pytest.raises(ValueError, match="'region_fraction'"):
        segaudit.get_label_quality_scores(labels, probs, method="regions", verbose=False)


def test_downsample_is_refused_with_confident_regions():
    labels, probs = make_dataset(0, h=6, w=8)
    with pytest.raises(ValueError, match="'downsample' applies to filter_by='self_confidence'"):
        _regions_mask(labels, probs, downsample=2)
    with pytest.raises(ValueError, match="'downsample' applies to filter_by='self_confidence'"):
        segaudit.LabelAudit(4, downsample=2, filter_by="confident_regions")


@pytest.mark.requires_dask
def test_dask_runs_confident_regions_with_one_or_several_models():
    import dask
    import dask.array as da

    labels, probs = make_dataset(0)
    lab, prb = da.from_array(labels, chunks=2), da.from_array(probs, chunks=(2, -1, -1, -1))
    with dask.config.set(scheduler="sync"):
        np.testing.assert_array_equal(
            _regions_mask(lab, prb).compute(), _regions_mask(labels, probs)
        )
        options = {"method": "region_fraction", "verbose": False}
        got = segaudit.get_label_quality_scores(lab, prb, **options)[0]
        want = segaudit.get_label_quality_scores(labels, probs, **options)[0]
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
        # several models: the in-memory list's answer (tests/test_dask.py tests more)
        other = np.ascontiguousarray(probs[::-1])  # another model: the images' order reversed
        lazy = _regions_mask(lab, [prb, da.from_array(other, chunks=(3, -1, -1, -1)), prb])
        np.testing.assert_array_equal(lazy.compute(), _regions_mask(labels, [probs, other, probs]))


# ---------------------------------------------------------------- the default is unchanged


@pytest.mark.parametrize("seed", [0, 1])
def test_default_is_the_reference_method(seed):
    labels, probs = make_dataset(seed, n=4, noise=0.4)
    default = segaudit.find_label_issues(labels, probs, verbose=False)
    explicit = segaudit.find_label_issues(labels, probs, verbose=False, filter_by="self_confidence")
    np.testing.assert_array_equal(default, explicit)
    # the reference's rule, written out: a != y and among the T lowest s
    a = probs.argmax(axis=1)
    s = np.take_along_axis(probs, labels[:, None], axis=1)[:, 0]
    t = _thresholds(labels, s, np.ones(labels.shape, bool), probs.shape[1])
    cand = a != labels
    big_t = int((cand & (probs.max(axis=1) >= t[a] - 1e-6)).sum())
    order = np.lexsort((np.arange(s.size), s.ravel()))[:big_t]
    expected = np.zeros(s.size, bool)
    expected[order] = True
    np.testing.assert_array_equal(default, expected.reshape(s.shape) & cand)


def test_default_audit_is_unchanged():
    labels, probs = make_dataset(2, n=4, noise=0.4)
    audit = segaudit.LabelAudit(4)
    audit.update(labels, probs)
    expected = segaudit.find_label_issues(labels, probs, verbose=False)
    np.testing.assert_array_equal(audit.find_label_issues(), expected)


# ---------------------------------------------------------------- against the oracle


def test_matches_the_oracle_on_scenes(scenes, kernel):
    probs = scenes.pred_probs[0]
    expected, _ = oracle_regions(scenes.labels, probs)
    assert expected.any() and not expected.all()
    np.testing.assert_array_equal(_regions_mask(scenes.labels, probs), expected)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_the_oracle_on_random_data_with_void(seed):
    labels, probs = make_dataset(seed, n=5, k=4, h=9, w=11, noise=0.3)
    labels = labels.copy()
    labels[:, 0, :3] = 255
    expected, _ = oracle_regions(labels, probs, ignore_index=255)
    got = _regions_mask(labels, probs, ignore_index=255)
    np.testing.assert_array_equal(got, expected)
    assert not got[labels == 255].any()


def test_whole_regions_only(scenes):
    probs = scenes.pred_probs[0]
    mask = _regions_mask(scenes.labels, probs)
    _, regions = oracle_regions(scenes.labels, probs)
    ids = regions[regions > 0]
    flagged = np.bincount(ids, mask[regions > 0], minlength=regions.max() + 1)
    size = np.bincount(ids, minlength=regions.max() + 1)
    assert ((flagged == 0) | (flagged == size)).all()  # all or nothing per region
    assert (flagged > 0).sum() >= 1
    assert not mask[regions == 0].any()  # only disagreeing pixels


# ---------------------------------------------------------------- invariance


@pytest.mark.parametrize(
    "options", [{"batch_size": 1}, {"batch_size": 3 * 5 * 40 * 48}, {"n_jobs": 1}, {"n_jobs": 2}]
)
def test_batch_size_and_n_jobs_never_change_the_mask(scenes, options, kernel):
    probs = scenes.pred_probs[0]
    expected = _regions_mask(scenes.labels, probs)
    np.testing.assert_array_equal(_regions_mask(scenes.labels, probs, **options), expected)


def test_memmap_and_out(scenes, tmp_path, kernel):
    probs = scenes.pred_probs[0]
    expected = _regions_mask(scenes.labels, probs)
    np.save(tmp_path / "p.npy", probs)
    np.save(tmp_path / "y.npy", scenes.labels)
    prb = np.load(tmp_path / "p.npy", mmap_mode="r")
    lab = np.load(tmp_path / "y.npy", mmap_mode="r")
    np.testing.assert_array_equal(_regions_mask(lab, prb, batch_size=7), expected)
    stored = _regions_mask(lab, prb, out=tmp_path / "mask.npy")
    np.testing.assert_array_equal(np.asarray(stored), expected)


def test_logits_and_probabilities_agree(scenes):
    logits = scenes.logits[0].astype(np.float64)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs = e / e.sum(axis=1, keepdims=True)
    np.testing.assert_array_equal(
        _regions_mask(scenes.labels, logits, from_logits=True),
        oracle_regions(scenes.labels, probs)[0],
    )


def test_label_audit_gives_the_same_results(scenes, kernel):
    probs = scenes.pred_probs[0]
    expected = _regions_mask(scenes.labels, probs)
    audit = segaudit.LabelAudit(scenes.num_classes, filter_by="confident_regions")
    for start in range(0, len(probs), 5):
        audit.update(scenes.labels[start : start + 5], probs[start : start + 5])
    np.testing.assert_array_equal(audit.find_label_issues(), expected)
    issues = np.stack([image.issues for image in audit.iter_images()])
    np.testing.assert_array_equal(issues, expected)
    flagged = expected.sum(axis=(1, 2))
    size = expected[0].size
    np.testing.assert_allclose(
        audit.image_scores(method="num_pixel_issues"), 1 - flagged / size, rtol=0, atol=0
    )


# ---------------------------------------------------------------- region_fraction


def test_region_fraction_scores(scenes):
    probs = scenes.pred_probs[0]
    mask = _regions_mask(scenes.labels, probs)
    image, pixel = segaudit.get_label_quality_scores(
        scenes.labels, probs, method="region_fraction", verbose=False
    )
    softmin, pixel_ref = segaudit.get_label_quality_scores(scenes.labels, probs, verbose=False)
    np.testing.assert_array_equal(pixel, pixel_ref)
    share = 1 - mask.sum(axis=(1, 2)) / mask[0].size
    q = np.where(mask, pixel, 1.0).reshape(len(mask), -1)  # unflagged pixels: s = 1
    w = np.exp((1.0 - q) / 0.1 - ((1.0 - q) / 0.1).max(axis=1, keepdims=True))
    evidence = (w * q).sum(axis=1) / w.sum(axis=1)
    want = 0.5 * (share * (1 - 1e-3) + 1e-3 * softmin) + 0.5 * evidence
    np.testing.assert_allclose(image, want, rtol=0, atol=1e-12)
    for filter_by in FILTER_BY:  # region_fraction counts confident_regions' flags either way
        audit = segaudit.LabelAudit(scenes.num_classes, filter_by=filter_by)
        audit.update(scenes.labels, probs)
        np.testing.assert_allclose(
            audit.image_scores(method="region_fraction"), image, rtol=0, atol=1e-12
        )


def test_region_fraction_needs_full_resolution_audit(scenes):
    audit = segaudit.LabelAudit(scenes.num_classes, downsample=2)
    audit.update(scenes.labels, scenes.pred_probs[0])
    with pytest.raises(ValueError, match="region_fraction' needs an audit with downsample=1"):
        audit.image_scores(method="region_fraction")


# ---------------------------------------------------------------- detection quality


def _quality(scenes, mask):
    return score_detection(mask, scenes.truth, errors=scenes.errors, error_ids=scenes.error_ids)


@pytest.mark.parametrize("seed", [0, 1])
def test_beats_the_reference_when_the_model_is_right(seed):
    scenes = make_scenes(30, num_classes=5, model_error_rate=0.0, seed=seed)
    probs = scenes.pred_probs[0]
    ref = _quality(scenes, segaudit.find_label_issues(scenes.labels, probs, verbose=False))
    ours = _quality(scenes, _regions_mask(scenes.labels, probs))
    assert ours.pixel_f1 >= ref.pixel_f1 + 0.03, (ours.pixel_f1, ref.pixel_f1)
    assert ours.region_recall > ref.region_recall, (ours.region_recall, ref.region_recall)
    assert ours.region_recall >= 0.9


# ---------------------------------------------------------------- compiled kernels vs numpy twins


def _region_inputs(rng, n, h, w, k, density, blob):
    """Candidates of n images with blobby labels; their data in pixel order."""
    coarse = rng.integers(0, k, size=(n, -(-h // blob), -(-w // blob)))
    labels = np.repeat(np.repeat(coarse, blob, axis=1), blob, axis=2)[:, :h, :w]
    noise = rng.random((n, h, w)) < 0.1
    labels = np.where(noise, rng.integers(0, k, size=(n, h, w)), labels)
    cand = (rng.random((n, h, w)) < density).reshape(n, -1)
    d = int(cand.sum())
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.count_nonzero(cand, axis=1), out=offsets[1:])
    given = labels.reshape(n, -1)[cand].astype(np.int64)
    scores = rng.random(d) * rng.random()
    floor = rng.random(k) * 0.3
    # the strip rule's inputs, with loose limits so that it fires often; a != y
    predicted = (given + rng.integers(1, max(k, 2), size=d)) % max(k, 2)
    # t~ of the predicted classes (and t~ less a tolerance), m around them: a
    # share of the candidates confident (m >= t~_a - tolerance), m / t~_a spread
    t = 0.05 + rng.random(max(k, 2))
    thresholds = np.stack([t, t - 1e-6])
    max_prob = t[predicted] * rng.random(d) * 2 * rng.random()
    # size, touch, lean, flip size, the confident rule's bound over the strip's
    strip = [
        rng.integers(1, 6),
        rng.random(),
        rng.random() * 0.6,
        rng.integers(0, 4),
        rng.random() * 3,
        rng.random() * 1.5,  # the parts' lean bound (rule 4)
        # the long strip: touch counts, its bound on mean s over the strip's (above 1
        # too: the kernels must count the touches of every region it may flag), lean
        rng.integers(1, 3),
        0.5 + rng.random() * 1.5,
        rng.random() * 0.5,
        # the unlabelled object: touches of y over the square root of the size, lean
        rng.random() * 2,
        rng.random() * 0.8,
    ]
    strip = np.array(strip, dtype=np.float64)
    image = labels.reshape(n, -1).astype(np.uint8)
    tail = (image, predicted, thresholds, rng.random(k), strip)
    # s of every pixel: the kernels read the candidates' (and their labels from `image`)
    full = np.where(cand, 0.0, 0.75)
    full[cand] = scores
    return cand, (full, max_prob, offsets, floor), tail


def _both_region_flags(cand, w, *args):
    from segaudit.kernels import _regions_numba, _regions_numpy

    compiled, twin = cand.copy(), cand.copy()
    _regions_numba.region_flags(compiled, w, *args)
    _regions_numpy.region_flags(twin, w, *args)
    return compiled, twin


@pytest.mark.parametrize("seed", range(6))
def test_region_flags_compiled_equals_numpy(seed):
    rng = np.random.default_rng(seed)
    n, h, w = int(rng.integers(1, 6)), int(rng.integers(1, 40)), int(rng.integers(1, 40))
    k = int(rng.integers(1, 8))
    cand, head, tail = _region_inputs(
        rng, n, h, w, k, rng.uniform(0.05, 0.95), int(rng.integers(1, 9))
    )
    compiled, twin = _both_region_flags(cand, w, *head, CONFIDENT_SHARE, *tail)
    np.testing.assert_array_equal(compiled, twin)
    assert not (compiled & ~cand).any()  # only candidates are flagged
    # float32 s: both read it the same way
    single = (head[0].astype(np.float32), *head[1:])
    compiled32, twin32 = _both_region_flags(cand, w, *single, CONFIDENT_SHARE, *tail)
    np.testing.assert_array_equal(compiled32, twin32)


def test_region_flags_compiled_equals_numpy_hypothesis():
    hyp = pytest.importorskip("hypothesis")
    st = hyp.strategies

    @hyp.settings(max_examples=150, deadline=None, derandomize=True)
    @hyp.given(
        n=st.integers(1, 3),
        h=st.integers(1, 12),
        w=st.integers(1, 12),
        k=st.integers(1, 4),
        density=st.floats(0.0, 1.0),
        blob=st.integers(1, 5),
        seed=st.integers(0, 2**32 - 1),
    )
    def check(n, h, w, k, density, blob, seed):
        rng = np.random.default_rng(seed)
        cand, head, tail = _region_inputs(rng, n, h, w, k, density, blob)
        compiled, twin = _both_region_flags(cand, w, *head, CONFIDENT_SHARE, *tail)
        np.testing.assert_array_equal(compiled, twin)
        limits = tail[-1]

        def both(strip):
            strip = np.array(strip, dtype=np.float64)
            got = _both_region_flags(cand, w, *head, CONFIDENT_SHARE, *tail[:-1], strip)
            np.testing.assert_array_equal(got[0], got[1])
            return got[0]

        # no parts left out (rule 4 off: a sixth limit of 0): a superset of the flags
        whole = both([*limits[:5], 0.0, *limits[6:]])
        assert not (compiled & ~whole).any()
        # (rule 4 off from here) the long strip off (no limits from the seventh on, or
        # more touches than any region has): a subset
        short = both([*limits[:5], 0.0])
        np.testing.assert_array_equal(both(limits[:5]), short)
        np.testing.assert_array_equal(both([*limits[:5], 0.0, np.inf, *limits[7:9]]), short)
        assert not (short & ~whole).any()
        if (whole & ~short).any():
            fired.append(seed)
        # the unlabelled object off (no limits from the tenth on, or an infinite touch
        # factor): a subset, the long strip still on
        seen = both([*limits[:5], 0.0, *limits[6:9]])
        np.testing.assert_array_equal(both([*limits[:9], np.inf, limits[10]]), both(limits[:9]))
        np.testing.assert_array_equal(both([*limits[:5], 0.0, *limits[6:9], np.inf, 1.0]), seen)
        assert not (short & ~seen).any() and not (seen & ~whole).any()
        if (whole & ~seen).any():
            hidden.append(seed)
        # the strip rules off (no region is that large): a subset
        without = both([np.inf, 0.0, 0.0, *limits[3:5], 0.0, *limits[6:]])
        assert not (without & ~short).any()
        # no border flips: a superset of the flags (the same when strip[3] is 0)
        with_flips = both([*limits[:3], 0.0, limits[4], 0.0, *limits[6:]])
        assert not (whole & ~with_flips).any()
        if limits[3] == 0:
            np.testing.assert_array_equal(with_flips, whole)

    fired = []  # the examples where the long strip flags regions the other rules leave
    hidden = []  # ... where the unlabelled object does
    check()
    assert len(set(fired)) >= 3, fired  # small inputs: few hold a long strip
    assert len(set(hidden)) >= 3, hidden


def test_region_flags_long_strip_compiled_equals_numpy():
    # larger random inputs, where the long strip often flags regions the other rules
    # leave; its bound on mean s is drawn above the strip's too, so the compiled
    # kernel must count the touches of every region it may flag
    rng = np.random.default_rng(11)
    fired = 0
    for _ in range(60):
        n, h, w, k = int(rng.integers(1, 4)), *rng.integers(8, 30, size=2), int(rng.integers(2, 5))
        cand, head, tail = _region_inputs(
            rng, n, h, w, k, rng.uniform(0.2, 0.9), int(rng.integers(2, 8))
        )
        limits = tail[-1]
        compiled, twin = _both_region_flags(cand, w, *head, CONFIDENT_SHARE, *tail)
        np.testing.assert_array_equal(compiled, twin)
        off = np.array([*limits[:5], 0.0])
        whole, twin_whole = _both_region_flags(
            cand, w, *head, CONFIDENT_SHARE, *tail[:-1], np.array([*off, *limits[6:]])
        )
        np.testing.assert_array_equal(whole, twin_whole)
        short = _both_region_flags(cand, w, *head, CONFIDENT_SHARE, *tail[:-1], off)[0]
        assert not (short & ~whole).any()
        fired += bool((whole & ~short).any())
    assert fired >= 10, fired


def test_region_flags_spirals_and_crossings():
    # shapes that need late merges: a spiral, a U whose arms join at the bottom,
    # diagonal crossings of two labels (8-connected within each label)
    from segaudit.kernels import _regions_numba, _regions_numpy

    spiral = np.zeros((11, 11), bool)
    spiral[0, :], spiral[:, 10], spiral[10, :], spiral[2:, 0] = True, True, True, True
    spiral[2, 0:9], spiral[2:9, 8], spiral[8, 2:9], spiral[4:9, 2] = True, True, True, True
    u = np.zeros((11, 11), bool)
    u[:, 1], u[:, 9], u[10, 1:10] = True, True, True
    cross = np.zeros((11, 11), bool)
    np.fill_diagonal(cross, True)
    cross[np.arange(11), 10 - np.arange(11)] = True
    labels = np.where(np.add.outer(np.arange(11), np.arange(11)) % 2 == 0, 1, 2)
    for shape in (spiral, u, cross, ~cross):
        for lab in (np.ones((11, 11), np.int64), labels):
            cand = shape.reshape(1, -1).copy()
            d = int(cand.sum())
            given = lab.reshape(1, -1)[cand].astype(np.int64)
            max_prob = np.full(d, 0.7)
            max_prob[-1] = 1.0  # one confident pixel (m >= t~_a) at the end of the shape
            args = (np.full((1, 121), 0.5), max_prob, np.array([0, d]), np.zeros(3))
            image = lab.reshape(1, -1)
            for size in (np.inf, 1.0):  # the strip rule off, and on with loose limits
                strip = np.array([size, 0.1, 0.5, 2.0, 1.0])
                tail = (image, 3 - given, np.ones((2, 4)), np.ones(3), strip)
                compiled, twin = cand.copy(), cand.copy()
                _regions_numba.region_flags(compiled, 11, *args, 1.0 / d, *tail)
                _regions_numpy.region_flags(twin, 11, *args, 1.0 / d, *tail)
                np.testing.assert_array_equal(compiled, twin)
    # the U of one label is one region: one confident pixel flags it all
    cand = u.reshape(1, -1).copy()
    d = int(cand.sum())
    max_prob = np.zeros(d)
    max_prob[-1] = 1.0
    args = (np.full((1, 121), 0.5), max_prob, np.array([0, d]), np.zeros(2))
    off = (u.reshape(1, -1).astype(np.int64), np.zeros(d, np.int64), np.ones((2, 2)), np.ones(2))
    _regions_numba.region_flags(
        cand, 11, *args, 1.0 / d, *off, np.array([np.inf, 1.0, 1.0, 0.0, 1.0])
    )
    np.testing.assert_array_equal(cand.reshape(11, 11), u)


@pytest.mark.parametrize("label_dtype", [np.uint8, np.int16, np.int64, np.float64])
@pytest.mark.parametrize("score_dtype", [np.float32, np.float64])
def test_agree_sums_compiled_equals_numpy(label_dtype, score_dtype):
    from segaudit.engine._detect import agreeing_sums
    from segaudit.kernels._choice import get_kernels

    rng = np.random.default_rng(7)
    n, p, k = 4, 300, 6
    labels = rng.integers(0, k, size=(n, p)).astype(label_dtype)
    scores = rng.random((n, p)).astype(score_dtype)
    void = rng.random((n, p)) < 0.1
    scores[void] = np.nan
    if label_dtype == np.float64:
        labels[void] = np.nan
    disagree = rng.random((n, p)) < 0.3
    compiled = agreeing_sums(scores, disagree, labels, k, get_kernels("numba"))
    twin = agreeing_sums(scores, disagree, labels, k, get_kernels("numpy"))
    np.testing.assert_array_equal(compiled[0], twin[0])
    np.testing.assert_array_equal(compiled[1], twin[1])
    agree = ~disagree & ~void
    assert compiled[1].sum() == agree.sum()
    expected = [np.bincount(labels[i][agree[i]].astype(int), minlength=k) for i in range(n)]
    np.testing.assert_array_equal(compiled[1], np.stack(expected))


def test_kernels_give_the_same_masks_on_many_scenes():
    for seed in range(4):
        scenes = make_scenes(
            6, height=33, width=29, num_classes=3 + 3 * seed, model_error_rate=0.25, seed=seed
        )
        probs = scenes.pred_probs[0]
        masks = []
        for name in ("numba", "numpy"):
            with pytest.MonkeyPatch.context() as mp:
                mp.setenv("SEGAUDIT_KERNEL", name)
                masks.append(_regions_mask(scenes.labels, probs))
        np.testing.assert_array_equal(masks[0], masks[1])
        np.testing.assert_array_equal(masks[0], oracle_regions(scenes.labels, probs)[0])


def test_region_block_mask_writes_into_a_strided_disagreement(kernel):
    from segaudit.engine._detect import region_block_mask

    rng = np.random.default_rng(5)
    n, h, w, k = 3, 9, 10, 4
    labels = rng.integers(0, k, size=(n, h, w))
    cand = rng.random((n, h * w)) < 0.4
    d = int(cand.sum())
    records = (rng.random(d), rng.integers(0, k, size=d))
    scores = rng.random((n, h * w))
    t = rng.random(k)
    expected = region_block_mask(scores, cand.copy(), labels, records, (n, h, w), t)
    assert expected.any() and not np.array_equal(expected, cand)
    wide = np.zeros((n, 2 * h * w), dtype=bool)
    strided = wide[:, ::2]  # not contiguous: the mask must still land in it
    strided[...] = cand
    got = region_block_mask(scores, strided, labels, records, (n, h, w), t)
    assert got is strided
    np.testing.assert_array_equal(strided, expected)
    assert not wide[:, 1::2].any()


def _one_image_mask(labels, cand, s, m, a, t):
    """``region_block_mask`` of one image: candidates `cand` with s, m, a given per pixel."""
    from segaudit.engine._detect import region_block_mask

    h, w = labels.shape
    flat = cand.reshape(-1)
    records = (m.reshape(-1)[flat], a.reshape(-1)[flat])
    mask = region_block_mask(
        s.reshape(1, -1), flat.copy(), labels, records, (1, h, w), np.asarray(t, float)
    )
    return mask.reshape(h, w)


def _ring_scene(grown):
    """A 6x6 object of class 2 on background 0, its outline grown by 1 px in the labels
    (`grown`) or not; the model is right on the object and unsure on the ring."""
    labels = np.zeros((14, 14), np.int64)
    labels[3:11, 3:11] = 2 if grown else 0
    labels[4:10, 4:10] = 2
    ring = np.zeros((14, 14), bool)
    ring[3:11, 3:11] = True
    ring[4:10, 4:10] = False
    return labels, ring


def test_strip_rule_flags_an_outline_drawn_one_pixel_too_wide(kernel):
    labels, ring = _ring_scene(grown=True)
    t = [0.9, 0.9, 0.9]
    # the ring is labelled 2 and the model says 0 there, unsure: s = 0.15 (above
    # 0.1 t~ = 0.09, so not implausible), m = 0.8 < t~_0 (not confident)
    s, m, a = np.full(ring.shape, 0.15), np.full(ring.shape, 0.8), np.zeros(ring.shape, np.int64)
    mask = _one_image_mask(labels, ring, s, m, a, t)
    np.testing.assert_array_equal(mask, ring)  # the whole ring: every pixel of it
    assert STRIP_RATIO * t[2] >= 0.15 > IMPLAUSIBLE_RATIO * t[2] and 0.8 / t[0] >= STRIP_LEAN
    # the same strip where the model hardly prefers 0 (m / t~_0 below STRIP_LEAN)
    low = np.full(ring.shape, 0.9 * STRIP_LEAN * t[0])
    assert not _one_image_mask(labels, ring, s, low, a, t).any()
    # a shorter strip than STRIP_SIZE is left alone: two ring sides cut off
    short = ring.copy()
    short[:, 7:] = False
    short[7:, :] = False
    assert short.sum() < STRIP_SIZE
    assert not _one_image_mask(labels, short, s, m, a, t).any()


def test_strip_rule_leaves_a_compact_unsure_blob(kernel):
    # the model's own mistake: a whole 6x6 object labelled 2, called 0 (or 1),
    # equally unsure; it touches no agreeing pixel labelled 2
    labels = np.zeros((14, 14), np.int64)
    labels[4:10, 4:10] = 2
    blob = labels == 2
    s, m = np.full(blob.shape, 0.15), np.full(blob.shape, 0.8)
    for predicted in (0, 1):
        a = np.full(blob.shape, predicted, np.int64)
        assert not _one_image_mask(labels, blob, s, m, a, [0.9, 0.9, 0.9]).any()
    # a thin object the model misses (a 1 px line of 12 labelled 2) is not a strip either
    labels = np.zeros((5, 16), np.int64)
    labels[2, 2:14] = 2
    line = labels == 2
    s, m, a = np.full(line.shape, 0.15), np.full(line.shape, 0.8), np.zeros(line.shape, np.int64)
    assert not _one_image_mask(labels, line, s, m, a, [0.9, 0.9, 0.9]).any()
    assert line.sum() >= STRIP_SIZE and STRIP_TOUCH > 0


def test_strip_rule_flags_an_outline_drawn_two_pixels_too_wide(kernel):
    # a 12x12 object of class 2 on background 0, its outline grown by 2 px in the
    # labels; the model is right and unsure on the ring: its outer pixels touch
    # background labels, its inner ones the object (but at the 4 corners): 60 and
    # 48 of 112
    labels = np.zeros((20, 20), np.int64)
    labels[2:18, 2:18] = 2
    ring = labels == 2
    ring[4:16, 4:16] = False
    s, m, a = np.full(ring.shape, 0.15), np.full(ring.shape, 0.8), np.zeros(ring.shape, np.int64)
    mask = _one_image_mask(labels, ring, s, m, a, [0.9, 0.9, 0.9])
    np.testing.assert_array_equal(mask, ring)
    assert STRIP_TOUCH * 112 <= 48


def _wide_outline(width):
    """A 12x12 object of class 2 on background 0, its outline grown by `width` px in the
    labels: the candidates (the model says 0 there) and how many of them touch each side."""
    size = 12 + 2 * width + 4
    labels = np.zeros((size, size), np.int64)
    labels[2 : size - 2, 2 : size - 2] = 2
    ring = labels == 2
    ring[2 + width : size - 2 - width, 2 + width : size - 2 - width] = False
    pad = np.pad(labels, 1, constant_values=-1)
    pad_ring = np.pad(ring, 1)
    near_a = np.zeros(ring.shape, bool)
    near_y = np.zeros(ring.shape, bool)
    for dr, dc in ((0, -1), (0, 1), (-1, 0), (1, 0)):
        nb = pad[1 + dr : 1 + dr + size, 1 + dc : 1 + dc + size]
        near_a |= ring & (nb == 0)
        near_y |= ring & (nb == 2) & ~pad_ring[1 + dr : 1 + dr + size, 1 + dc : 1 + dc + size]
    return labels, ring, int(near_a.sum()), int(near_y.sum())


def test_long_strip_rule_flags_a_wide_outline_beside_both_sides(kernel, monkeypatch):
    # an outline grown by 4 px: 76 of its 256 pixels touch the background, 48 the
    # object; both shares below STRIP_TOUCH, both counts above LONG_STRIP_TOUCH
    labels, ring, near_a, near_y = _wide_outline(4)
    n = int(ring.sum())
    assert (n, near_a, near_y) == (256, 76, 48)
    assert max(near_a, near_y) < STRIP_TOUCH * n and min(near_a, near_y) >= LONG_STRIP_TOUCH
    # the model says 0, unsure (m = 0.8 < t~_0, m / t~_0 = 0.89); s = 0.15, above the
    # implausible bound, at most the long strip's
    t = [0.9, 0.9, 0.9]
    s, m, a = np.full(ring.shape, 0.15), np.full(ring.shape, 0.8), np.zeros(ring.shape, np.int64)
    assert IMPLAUSIBLE_RATIO * t[2] < 0.15 <= LONG_STRIP_RATIO * t[2]
    assert 0.8 / t[0] >= LONG_STRIP_LEAN and t[0] > 0.8
    np.testing.assert_array_equal(_one_image_mask(labels, ring, s, m, a, t), ring)
    # the other rules alone leave it: only the long strip flags it
    monkeypatch.setattr("segaudit.engine._detect.LONG_STRIP_TOUCH", np.inf)
    assert not _one_image_mask(labels, ring, s, m, a, t).any()


def test_long_strip_rule_leaves_a_strip_where_the_label_keeps_its_share(kernel):
    labels, ring, _, _ = _wide_outline(4)
    t = [0.9, 0.9, 0.9]
    m, a = np.full(ring.shape, 0.8), np.zeros(ring.shape, np.int64)
    # mean s 0.17: above LONG_STRIP_RATIO t~_2 (0.1575), below STRIP_RATIO t~_2 (0.18)
    s = np.full(ring.shape, 0.17)
    assert LONG_STRIP_RATIO * t[2] < 0.17 <= STRIP_RATIO * t[2]
    assert not _one_image_mask(labels, ring, s, m, a, t).any()
    # s within the bound, but the model leans on 0 less than LONG_STRIP_LEAN
    low = np.full(ring.shape, 0.65)
    assert STRIP_LEAN <= 0.65 / t[0] < LONG_STRIP_LEAN
    assert not _one_image_mask(labels, ring, np.full(ring.shape, 0.15), low, a, t).any()
    # a short wide outline (3 px around a 4x4 object): 16 pixels touch the object
    small = np.zeros((14, 14), np.int64)
    small[2:12, 2:12] = 2
    short = small == 2
    short[5:9, 5:9] = False
    assert short.sum() == 84 and LONG_STRIP_TOUCH > 16 and STRIP_TOUCH * 84 > 16
    s_short = np.full(short.shape, 0.15)
    m_short, a_short = np.full(short.shape, 0.8), np.zeros(short.shape, np.int64)
    assert not _one_image_mask(small, short, s_short, m_short, a_short, t).any()


def _unlabelled_scene():
    """Background 0 everywhere in the labels; the model sees a 6x6 object of class 2
    (the candidates), unsure: s = 0.15, m = 0.5 (below t~_2 and STRIP_LEAN t~_2)."""
    labels = np.zeros((14, 14), np.int64)
    blob = np.zeros(labels.shape, bool)
    blob[4:10, 4:10] = True
    s, m, a = np.full(blob.shape, 0.15), np.full(blob.shape, 0.5), np.full(blob.shape, 2)
    return labels, blob, s, m, a


def test_unlabelled_object_rule_flags_an_object_left_out_of_the_labels(kernel, monkeypatch):
    labels, blob, s, m, a = _unlabelled_scene()
    t = [0.9, 0.9, 0.9]
    assert IMPLAUSIBLE_RATIO * t[0] < 0.15 <= STRIP_RATIO * t[0]
    assert UNLABELLED_LEAN <= 0.5 / t[2] < STRIP_LEAN and t[2] > 0.5
    # 20 of its 36 pixels touch agreeing background, none a pixel labelled 2
    assert UNLABELLED_TOUCH * np.sqrt(36) <= 20 and blob.sum() >= STRIP_SIZE
    np.testing.assert_array_equal(_one_image_mask(labels, blob, s, m, a, t), blob)
    # the other rules alone leave it: only the unlabelled object flags it
    monkeypatch.setattr("segaudit.engine._detect.UNLABELLED_TOUCH", np.inf)
    assert not _one_image_mask(labels, blob, s, m, a, t).any()


def test_unlabelled_object_rule_leaves_what_is_outlined_or_unsure(kernel):
    labels, blob, s, m, a = _unlabelled_scene()
    t = [0.9, 0.9, 0.9]
    # a column labelled 2 beside it: the labels have something of its class there
    beside = labels.copy()
    beside[4:10, 10] = 2
    assert not _one_image_mask(beside, blob, s, m, a, t).any()
    # the label keeps more than STRIP_RATIO of its usual confidence
    assert not _one_image_mask(labels, blob, np.full(blob.shape, 0.19), m, a, t).any()
    assert STRIP_RATIO * t[0] < 0.19
    # the model leans on 2 less than UNLABELLED_LEAN
    assert not _one_image_mask(labels, blob, s, np.full(blob.shape, 0.35), a, t).any()
    assert 0.35 / t[2] < UNLABELLED_LEAN
    # smaller than STRIP_SIZE (3x3)
    small = np.zeros(blob.shape, bool)
    small[4:7, 4:7] = True
    assert small.sum() < STRIP_SIZE
    assert not _one_image_mask(labels, small, s, m, a, t).any()
    # nearly the whole image (6 x 13 of 6 x 14): only the 6 pixels of its last column
    # touch agreeing background, fewer than sqrt(78)
    wide_labels = np.zeros((6, 14), np.int64)
    wide = np.ones(wide_labels.shape, bool)
    wide[:, 13] = False
    assert UNLABELLED_TOUCH * np.sqrt(wide.sum()) > 6
    full = (np.full(wide.shape, 0.15), np.full(wide.shape, 0.5), np.full(wide.shape, 2))
    assert not _one_image_mask(wide_labels, wide, *full, t).any()


def test_one_pixel_border_flip_of_the_model_is_not_flagged(kernel):
    # a 6x6 object of class 2 on background 0, labelled right; the model calls one
    # pixel of its outline 0, confidently (s = 0.05 is also implausible)
    labels = np.zeros((12, 12), np.int64)
    labels[3:9, 3:9] = 2
    t = [0.9, 0.9, 0.9]
    flip = np.zeros(labels.shape, bool)
    flip[3, 5] = True
    s, m, a = np.full(flip.shape, 0.05), np.full(flip.shape, 0.95), np.zeros(flip.shape, np.int64)
    assert FLIP_SIZE >= 1 and not _one_image_mask(labels, flip, s, m, a, t).any()
    # two pixels of the outline are more than a flip: flagged
    flip[3, 6] = True
    assert FLIP_SIZE < 2
    np.testing.assert_array_equal(_one_image_mask(labels, flip, s, m, a, t), flip)
    # a one-pixel object labelled 2 that the model calls 0 touches no agreeing 2: flagged
    speck = np.zeros((7, 7), np.int64)
    speck[3, 3] = 2
    alone = speck == 2
    np.testing.assert_array_equal(
        _one_image_mask(speck, alone, s[:7, :7], m[:7, :7], a[:7, :7], t), alone
    )


def test_confident_region_is_flagged_only_where_its_label_is_unlikely(kernel):
    # inside a 6x6 object labelled 2 the model calls a 3x3 patch 1, confidently
    # (m = 0.95 >= t~_1); with s = 0.3 the label keeps a fair share: the model's noise
    labels = np.zeros((12, 12), np.int64)
    labels[3:9, 3:9] = 2
    patch = np.zeros(labels.shape, bool)
    patch[4:7, 4:7] = True
    t = [0.9, 0.9, 0.9]
    m, a = np.full(patch.shape, 0.95), np.ones(patch.shape, np.int64)
    likely = np.full(patch.shape, 0.3)
    assert CONFIDENT_RATIO * t[2] < 0.3
    assert not _one_image_mask(labels, patch, likely, m, a, t).any()
    unlikely = np.full(patch.shape, 0.15)
    assert IMPLAUSIBLE_RATIO * t[2] < 0.15 <= CONFIDENT_RATIO * t[2]
    np.testing.assert_array_equal(_one_image_mask(labels, patch, unlikely, m, a, t), patch)


def test_a_class_the_model_never_confirms_is_judged_by_the_others_thresholds():
    # class 1 appears only where the model says 0: its own mean s (0.175) would
    # be its threshold, and no region of it could look unlikely
    labels = np.zeros((1, 4, 6), dtype=np.int64)
    labels[0, :2, :2] = 1
    probs = np.zeros((1, 3, 4, 6))
    probs[0, 0], probs[0, 1] = 0.9, 0.1
    probs[0, :2, 0, 0] = 0.6, 0.4
    mask = segaudit.find_label_issues(labels, probs, filter_by="confident_regions", verbose=False)
    assert mask[0, :2, :2].all() and mask.sum() == 4
    np.testing.assert_array_equal(mask, oracle_regions(labels, probs)[0])


def test_a_wrong_label_is_not_flagged_with_the_models_own_unsure_mistake_next_to_it(kernel):
    # one region labelled 1 (12x6 px): in its left half the label is wrong (the model
    # says 2, sure: m 0.95, s 0.02); in its right half the model errs (it says 3,
    # unsure: m 0.6, s 0.3). Whole, it is flagged (half confident, mean s 0.16);
    # each part decided alone, only the left one is.
    labels = np.zeros((12, 16), np.int64)
    labels[3:9, 2:14] = 1
    cand = labels == 1
    left = cand.copy()
    left[:, 8:] = False
    right = cand & ~left
    t = [0.9, 0.9, 0.9, 0.9]
    a = np.where(left, 2, 3)
    s, m = np.where(left, 0.02, 0.3), np.where(left, 0.95, 0.6)
    np.testing.assert_array_equal(_one_image_mask(labels, cand, s, m, a, t), left)
    assert TRIM_LEAN > 0.6 / 0.9 and STRIP_RATIO * 0.9 < 0.3
    # where the model is sure of its own prediction (m / t~_3 >= TRIM_LEAN), or the
    # label unlikely (mean s <= STRIP_RATIO t~_1), the region stays whole
    sure = np.where(left, 0.95, 0.85)
    np.testing.assert_array_equal(_one_image_mask(labels, cand, s, sure, a, t), cand)
    unlikely = np.where(left, 0.02, 0.15)
    np.testing.assert_array_equal(_one_image_mask(labels, cand, unlikely, m, a, t), cand)
    # one predicted class all over (no parts to decide): flagged whole, as before
    one = np.full(labels.shape, 2)
    np.testing.assert_array_equal(_one_image_mask(labels, cand, s, m, one, t), cand)
    assert right.sum() == 36
