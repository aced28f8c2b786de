"""The engine against a plain-numpy oracle written from SPEC.md, and its parts.

The oracle keeps every per-pixel value, takes exact means with `fractions`,
and ranks with a full stable argsort: the slow, obviously-correct version of
what the engine does in one read with a radix select.
"""

from __future__ import annotations

import contextlib
import inspect
import os
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import segaudit
from conftest import make_dataset
from segaudit.engine import _select
from segaudit.engine._exact import ClassSums
from segaudit.engine._select import BlockKeys, Cutoff, KeyBlock, compose, find_cutoff, keys_of
from segaudit.kernels import _numba, _numpy
from segaudit.kernels._batch import as_batch, score_batch, score_dtype, summarise_batch
from segaudit.kernels._downsample import pool_probs as engine_pool_probs
from segaudit.kernels._protocol import Kernels

# Exact results on random (often noisy) data: the set-up check's warning is
# beside the point here (it is tested in test_sanity.py).
pytestmark = pytest.mark.filterwarnings("ignore::segaudit.SetupWarning")

KERNELS = {"numba": _numba, "numpy": _numpy}
FLOOR, TOLERANCE = 2e-6, 1e-6
VOID = 255


# ---------------------------------------------------------------- the oracle


def pool_labels(labels, f, pooling, k, ignore_index):
    n, h, w = labels.shape
    out = np.empty((n, h // f, w // f), dtype=np.int64)
    for i in range(n):
        for r in range(h // f):
            for c in range(w // f):
                block = labels[i, r * f : (r + 1) * f, c * f : (c + 1) * f].ravel()
                if ignore_index is not None:
                    block = block[block != ignore_index]
                if block.size == 0:
                    out[i, r, c] = ignore_index
                elif pooling == "mode":
                    out[i, r, c] = np.bincount(block, minlength=k).argmax()
                else:
                    out[i, r, c] = np.round(block.mean())
    return out


def pool_probs(probs, f, labels=None, ignore_index=None):
    """The reference's block mean (numpy's mean over the block axes, in the input's
    precision), renormalised. Void pixels add 0 to a block's sum and are not counted;
    an all-void block keeps the plain mean.

    Not an exact mean on purpose: float sums depend on their order, and exact ties
    between classes (common with quantised probabilities) turn on the last bit. The
    engine promises the reference's bits, so the oracle takes the reference's
    reduction rather than an order of its own (see `test_pooled_tie_stays_a_tie`).
    """
    n, k, h, w = probs.shape
    blocks = probs.reshape(n, k, h // f, f, w // f, f)
    small = blocks.mean(axis=(3, 5))
    if ignore_index is not None:
        valid = (labels != ignore_index).reshape(n, 1, h // f, f, w // f, f)
        count = valid.sum(axis=(3, 5))
        total = np.where(valid, blocks, 0).sum(axis=(3, 5), dtype=probs.dtype)
        labelled = total / np.maximum(count, 1).astype(probs.dtype)
        small = np.where(count > 0, labelled, small)
    return small / small.sum(axis=1, keepdims=True)


def per_pixel(labels, probs, ignore_index):
    """y, s, a, m and the void mask; s is NaN on void pixels."""
    p = np.asarray(probs).astype(np.float64)
    void = np.zeros(labels.shape, bool) if ignore_index is None else labels == ignore_index
    y = np.where(void, 0, labels).astype(np.int64)
    s = np.take_along_axis(p, y[:, None], axis=1)[:, 0]
    s[void] = np.nan
    return y, s, p.argmax(axis=1), p.max(axis=1), void


def oracle_thresholds(y, s, void, k):
    out = np.full(k, FLOOR)
    for c in range(k):
        values = s[(y == c) & ~void]
        if values.size:
            out[c] = max(float(sum(map(Fraction, values.tolist())) / values.size), FLOOR)
    return out


def oracle_rank(labels, probs, ignore_index):
    """SPEC steps 1-3 on one grid: the candidate mask and the disagreement."""
    k = probs.shape[1]
    y, s, a, m, void = per_pixel(labels, probs, ignore_index)
    disagree = (a != y) & ~void
    t = oracle_thresholds(y, s, void, k)
    count = int((disagree & (m >= t[a] - TOLERANCE)).sum())
    order = np.argsort(s.ravel(), kind="stable")  # NaN (void) last
    candidates = np.zeros(s.size, dtype=bool)
    candidates[order[:count]] = True
    return candidates.reshape(s.shape), disagree


def oracle(labels, probs, *, ignore_index=None, downsample=1, pooling="mode"):
    """The issue mask of SPEC.md.

    With downsampling, coarse candidates flag their blocks and the full-resolution
    disagreement decides (the reference does not cross-check on the coarse grid).
    """
    if downsample == 1:
        candidates, disagree = oracle_rank(labels, probs, ignore_index)
        return candidates & disagree
    f, k = downsample, probs.shape[1]
    coarse = pool_labels(labels, f, pooling, k, ignore_index)
    candidates, _ = oracle_rank(coarse, pool_probs(probs, f, labels, ignore_index), ignore_index)
    y, _, a, _, void = per_pixel(labels, probs, ignore_index)
    disagree = (a != y) & ~void
    return candidates.repeat(f, axis=1).repeat(f, axis=2) & disagree


@contextlib.contextmanager
def kernel_env(name):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SEGAUDIT_KERNEL", name)
        yield


# ---------------------------------------------------------------- strategies


@st.composite
def engine_inputs(draw):
    f = draw(st.sampled_from([1, 1, 2, 3]))
    n = draw(st.integers(1, 4))
    k = draw(st.integers(2, 6))
    h, w = f * draw(st.integers(1, 4)), f * draw(st.integers(1, 5))
    quantise = draw(st.sampled_from([None, None, 2, 5]))
    labels, probs = make_dataset(
        draw(st.integers(0, 2**32 - 1)),
        n,
        k,
        h,
        w,
        noise=draw(st.sampled_from([0.0, 0.3, 1.0])),
        quantise=quantise,
    )
    dtypes = [np.float64, np.float32] + ([np.float16] if f == 1 and quantise is None else [])
    probs = probs.astype(draw(st.sampled_from(dtypes)))
    ignore_index = None
    if draw(st.booleans()):
        ignore_index = VOID
        rng = np.random.default_rng(draw(st.integers(0, 2**16)))
        labels = np.where(
            rng.random(labels.shape) < draw(st.sampled_from([0.2, 1.0])), VOID, labels
        )
    options = {
        "downsample": f,
        "label_pooling": draw(st.sampled_from(["mode", "mean"])),
        "ignore_index": ignore_index,
        "batch_size": draw(st.sampled_from([None, 1, k * h * w + 1, 3 * k * h * w - 1])),
        "n_jobs": draw(st.sampled_from([1, 2])),
    }
    return labels, probs, options


def tied_blocks_example():
    """A case hypothesis found: K = 2, f = 2, float32 probabilities in sixtieths, "." void.

    The block of image 2 at rows 2-3, columns 0-1 is labelled 0, 1 / 1, 0 and holds
    the same four probabilities for both classes: an exact tie, which a left-to-right
    float32 sum breaks (class 1 gets 0.50000006) and the reference's reduction keeps.
    """
    labels = [
        "10.11111 1.011000 .1010001 0100.10.",
        "1111.01. 10101111 .000.0.. 10010.01",
        "101101.0 010.1101 01111.0. 100.0.10",
        ".1111110 001.001. 100.0110 011011.1",
    ]
    sixtieths = [
        [
            [12, 15, 15, 20, 20, 15, 12, 45],
            [40, 24, 36, 40, 12, 12, 20, 36],
            [15, 24, 45, 24, 36, 15, 36, 48],
            [12, 45, 48, 24, 12, 20, 20, 48],
        ],
        [
            [20, 20, 24, 20, 15, 40, 40, 20],
            [40, 15, 40, 15, 40, 20, 45, 36],
            [20, 48, 45, 40, 20, 12, 45, 24],
            [24, 36, 40, 36, 36, 12, 12, 12],
        ],
        [
            [20, 12, 15, 12, 48, 40, 15, 20],
            [40, 48, 48, 12, 36, 48, 48, 40],
            [24, 12, 45, 24, 15, 36, 24, 48],
            [48, 36, 24, 40, 20, 45, 12, 20],
        ],
        [
            [36, 24, 45, 40, 24, 20, 45, 45],
            [36, 12, 48, 15, 40, 12, 24, 45],
            [15, 40, 45, 48, 48, 24, 36, 48],
            [24, 48, 45, 20, 12, 12, 40, 48],
        ],
    ]
    grid = [
        [[VOID if ch == "." else int(ch) for ch in row] for row in image.split()]
        for image in labels
    ]
    q = np.array(sixtieths)
    probs = (np.stack([q, 60 - q], axis=1) / 60).astype(np.float32)
    options = {
        "downsample": 2,
        "label_pooling": "mode",
        "ignore_index": VOID,
        "batch_size": None,
        "n_jobs": 1,
    }
    return np.array(grid, dtype=np.int64), probs, options


TIED_BLOCKS = tied_blocks_example()


@settings(deadline=None, max_examples=150)
@given(data=engine_inputs(), name=st.sampled_from(sorted(KERNELS)))
@example(data=TIED_BLOCKS, name="numba")
@example(data=TIED_BLOCKS, name="numpy")
def test_engine_matches_oracle(data, name):
    labels, probs, options = data
    with kernel_env(name):
        mask = segaudit.find_label_issues(labels, probs, verbose=False, **options)
        _, scores = segaudit.get_label_quality_scores(
            labels, probs, method="num_pixel_issues", verbose=False, **options
        )
    expected = oracle(
        labels,
        probs,
        ignore_index=options["ignore_index"],
        downsample=options["downsample"],
        pooling=options["label_pooling"],
    )
    np.testing.assert_array_equal(mask, expected)
    np.testing.assert_array_equal(scores, per_pixel(labels, probs, options["ignore_index"])[1])


def test_oracle_is_not_vacuous():
    """The property test above sees flagged pixels, ties and voids, not just empty masks."""
    labels, probs = make_dataset(0, n=3, k=3, h=4, w=4, quantise=2, noise=0.5)
    labels[0, 0] = VOID
    mask = oracle(labels, probs, ignore_index=VOID)
    candidates, disagree = oracle_rank(labels, probs, VOID)
    assert 0 < mask.sum() < disagree.sum()
    s = per_pixel(labels, probs, VOID)[1]
    boundary = s[candidates].max()
    assert ((s == boundary) & ~candidates).any(), "the tie at the boundary is split"
    np.testing.assert_array_equal(
        segaudit.find_label_issues(labels, probs, ignore_index=VOID, verbose=False), mask
    )


# ---------------------------------------------------------------- pooled ties


def test_found_tied_block_is_not_an_issue(kernel):
    """The example above: its tied block pools to exactly (0.5, 0.5), so it agrees with
    its label 0 and is not counted; one more issue would flag two pixels of image 2."""
    labels, probs, options = TIED_BLOCKS
    valid = labels != VOID
    assert engine_pool_probs(probs, 2, valid)[2, :, 1, 0].tolist() == [0.5, 0.5]
    assert pool_labels(labels, 2, "mode", 2, VOID)[2, 1, 0] == 0  # two 0s, two 1s
    mask = segaudit.find_label_issues(labels, probs, verbose=False, **options)
    disagree = per_pixel(labels, probs, VOID)[2] != labels
    assert disagree[2, :2, 1].all() and not mask[2, :2, :2].any()
    np.testing.assert_array_equal(mask, oracle(labels, probs, ignore_index=VOID, downsample=2))


def _tied_pair(wide, dtype):
    """Two 2x2 blocks side by side (wide) or stacked: the first labelled 0, 1 / 1, 0 with
    the same probabilities for both classes in another order (an exact tie); the second
    labelled 1 where the model says 0 with 0.9."""
    tie = np.array([[0, 1], [1, 0]]), np.array([[0.4, 0.2], [0.8, 0.6]])
    wrong = np.ones((2, 2), dtype=np.int64), np.full((2, 2), 0.9)
    axis = 1 if wide else 0
    labels = np.concatenate([tie[0], wrong[0]], axis=axis)[None]
    p0 = np.concatenate([tie[1], wrong[1]], axis=axis)
    p1 = np.concatenate([tie[1][::-1, ::-1], 1 - wrong[1]], axis=axis)
    return labels, np.stack([p0, p1])[None].astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("void", [False, True])
def test_pooled_tie_stays_a_tie(kernel, dtype, void):
    """A block whose classes hold the same probabilities pools to exactly (0.5, 0.5):
    a(x) = 0, its label, so it is not counted and only the wrong block is flagged.
    A left-to-right float32 sum would give class 1 the larger mean, T = 2, and the
    tied block's two disagreeing pixels would be flagged too."""
    labels, probs = _tied_pair(wide=True, dtype=dtype)
    options = {"downsample": 2}
    if void:  # an all-void block: pooling takes its masked path
        labels = np.concatenate([labels, np.full((1, 2, 2), VOID)], axis=2)
        probs = np.concatenate([probs, np.full((1, 2, 2, 2), 0.5, dtype=dtype)], axis=3)
        options["ignore_index"] = VOID
    one = np.float32
    assert one(0.6) + one(0.8) + one(0.2) + one(0.4) != 2  # the order matters in float32
    valid = labels != VOID if void else None
    assert engine_pool_probs(probs, 2, valid)[0, :, 0, 0].tolist() == [0.5, 0.5]
    mask = segaudit.find_label_issues(labels, probs, verbose=False, **options)
    expected = np.zeros(labels.shape, dtype=bool)
    expected[0, :, 2:4] = True
    np.testing.assert_array_equal(mask, expected)
    np.testing.assert_array_equal(
        mask, oracle(labels, probs, ignore_index=options.get("ignore_index"), downsample=2)
    )


@pytest.mark.parametrize("wide", [True, False])
def test_pooled_probabilities_are_the_references(kernel, wide):
    """Stacked blocks fill whole rows, so numpy (and the reference) sum each block left
    to right and break the float32 tie towards class 1: segaudit follows, bit for bit."""
    reference = pytest.importorskip("cleanlab.segmentation.filter", reason="needs cleanlab")
    labels, probs = _tied_pair(wide, np.float32)
    ours = segaudit.find_label_issues(
        labels, probs, downsample=2, label_pooling="mean", verbose=False
    )
    theirs = reference.find_label_issues(labels, probs, downsample=2, verbose=False, n_jobs=1)
    np.testing.assert_array_equal(ours, theirs)
    assert ours[0, :2, :2].any() != wide  # the tie is broken only in the stacked layout


@settings(deadline=None, max_examples=60)
@given(
    seed=st.integers(0, 2**32 - 1),
    f=st.sampled_from([2, 3]),
    blocks=st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(1, 3)),
    dtype=st.sampled_from([np.float32, np.float64]),
)
def test_pooled_probabilities_are_means_of_labelled_pixels(seed, f, blocks, dtype):
    """Whatever the float order: a block without void pixels has the bits of the
    void-free pooling, what lies under void pixels matters only to all-void blocks,
    and every value is the exact renormalised mean of the labelled pixels (of all
    pixels in an all-void block) up to a few roundings."""
    n, rows, cols = blocks
    labels, probs = make_dataset(seed, n, 3, rows * f, cols * f, quantise=3 if seed % 2 else None)
    probs = probs.astype(dtype)
    rng = np.random.default_rng(seed)
    valid = rng.random(labels.shape) < 0.7
    pooled = engine_pool_probs(probs, f, valid)
    plain = engine_pool_probs(probs, f)
    noisy = np.where(valid[:, None], probs, rng.random(probs.shape).astype(dtype))
    labelled = valid.reshape(n, 1, rows, f, cols, f).any(axis=(3, 5)).repeat(3, axis=1)
    np.testing.assert_array_equal(
        bits(engine_pool_probs(noisy, f, valid)[labelled]), bits(pooled[labelled])
    )
    eps = float(np.finfo(dtype).eps)
    for i, r, c in np.ndindex(n, rows, cols):
        keep = valid[i, r * f : (r + 1) * f, c * f : (c + 1) * f]
        if keep.all() or not keep.any():
            np.testing.assert_array_equal(bits(pooled[i, :, r, c]), bits(plain[i, :, r, c]))
        cells = probs[i, :, r * f : (r + 1) * f, c * f : (c + 1) * f]
        cells = cells[:, keep] if keep.any() else cells.reshape(3, -1)
        sums = [sum(map(Fraction, row.tolist())) for row in cells.astype(np.float64)]
        exact = [float(x / sum(sums)) for x in sums]
        np.testing.assert_allclose(pooled[i, :, r, c], exact, rtol=4 * f * f * eps, atol=0)


def _threshold_case(m):
    """K=2, one row: class 0 has s = 0.5, 0.75 (t0 = 0.625); the last pixel is
    labelled 1 but predicted 0 with probability m, and has the lowest s."""
    p0 = np.array([0.5, 0.75, m])
    probs = np.stack([p0, 1 - p0])[None, :, None, :]
    return np.array([[[0, 0, 1]]]), probs


@pytest.mark.parametrize(
    ("m", "flagged"),
    [
        (0.625 - TOLERANCE, True),  # exactly at t - 1e-6: counted (>=)
        (np.nextafter(0.625 - TOLERANCE, 0), False),  # one ulp below: not counted
        (0.625 - 0.5 * TOLERANCE, True),
        (0.625 - 2 * TOLERANCE, False),
    ],
)
def test_issue_count_tolerance(m, flagged, kernel):
    labels, probs = _threshold_case(m)
    mask = segaudit.find_label_issues(labels, probs, verbose=False)
    assert mask.tolist() == [[[False, False, flagged]]]


@pytest.mark.parametrize("batch_size", [None, 1])
def test_ties_are_broken_by_flat_index(kernel, batch_size):
    """Every pixel is (0.5, 0.5): s = 0.5 everywhere, argmax 0, so the label-1
    pixels disagree and all count (m = 0.5 >= t = 0.5). The T candidates are
    then the first T pixels in (image, row, column) order."""
    labels = np.array([[[0, 1], [1, 0], [1, 0]], [[1, 0], [0, 1], [1, 1]]])
    probs = np.full((2, 2, 3, 2), 0.5)
    t = int((labels == 1).sum())
    mask = segaudit.find_label_issues(labels, probs, verbose=False, batch_size=batch_size)
    first_t = (np.arange(labels.size) < t).reshape(labels.shape)
    np.testing.assert_array_equal(mask, (labels == 1) & first_t)
    assert 0 < mask.sum() < t


# ---------------------------------------------------------------- exact selection


def _sorted_pairs(blocks):
    keys = np.concatenate([b.keys.astype(np.uint64) for b in blocks])
    index = np.concatenate([b.base + np.arange(b.keys.size) for b in blocks])
    order = np.lexsort((index, keys))
    return keys[order], index[order]


@st.composite
def key_blocks(draw):
    nbits = draw(st.sampled_from([32, 64]))
    dtype = np.uint32 if nbits == 32 else np.uint64
    size = draw(st.integers(1, 400))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    top = np.iinfo(dtype).max
    style = draw(st.sampled_from(["equal", "few", "low bits", "extremes", "random", "floats"]))
    if style == "equal":
        keys = np.full(size, rng.integers(0, top, dtype=dtype, endpoint=True), dtype=dtype)
    elif style == "few":
        keys = rng.choice(rng.integers(0, top, size=3, dtype=dtype, endpoint=True), size=size)
    elif style == "low bits":  # one top-level bucket all the way down
        keys = dtype(top - 70000) + rng.integers(0, 3, size=size).astype(dtype)
    elif style == "extremes":
        keys = rng.choice(np.array([0, 1, top - 1, top], dtype=dtype), size=size)
    elif style == "random":
        keys = rng.integers(0, top, size=size, dtype=dtype, endpoint=True)
    else:  # scores in [0, 1] with NaN for void pixels, as the engine makes them
        values = np.round(rng.random(size), 2).astype(np.float32 if nbits == 32 else np.float64)
        values[rng.random(size) < 0.2] = np.nan
        keys = keys_of(values)
    cuts = np.sort(rng.choice(size + 1, size=draw(st.integers(0, 3)), replace=True))
    blocks, base = [], 0
    for part in np.split(keys.astype(dtype), cuts):
        blocks.append(KeyBlock(part, base))
        base += part.size
    return nbits, blocks


@settings(deadline=None, max_examples=150)
@given(
    data=key_blocks(),
    limit=st.sampled_from([1, 3, 50, _select.GATHER_LIMIT]),
    name=st.sampled_from(sorted(KERNELS)),
    nchunks=st.sampled_from([1, 3]),
    choice=st.data(),
)
def test_find_cutoff_is_the_rank_th_pair(data, limit, name, nchunks, choice):
    nbits, blocks = data
    keys, index = _sorted_pairs(blocks)
    rank = choice.draw(st.integers(0, keys.size - 1))
    source = BlockKeys(blocks, KERNELS[name], nchunks)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_select, "GATHER_LIMIT", limit)
        cutoff = find_cutoff(rank, nbits, source)
    assert cutoff == Cutoff(int(keys[rank]), int(index[rank]))
    masks = [np.ones(b.keys.size, dtype=bool) for b in blocks]
    compose(blocks, masks, cutoff, KERNELS[name], and_with_mask=True)
    chosen = np.concatenate(masks)
    assert chosen.sum() == rank + 1
    flat_keys = np.concatenate([b.keys.astype(np.uint64) for b in blocks])
    flat_index = np.arange(flat_keys.size)
    expected = (flat_keys < cutoff.key) | ((flat_keys == cutoff.key) & (flat_index <= cutoff.index))
    np.testing.assert_array_equal(chosen, expected)


class CountingSource:
    """Wraps a KeySource and records which of its paths were used."""

    def __init__(self, inner):
        self.inner, self.calls = inner, []

    def histogram(self, prefix, shift):
        self.calls.append("histogram")
        return self.inner.histogram(prefix, shift)

    def gather(self, prefix, shift, limit):
        self.calls.append("gather")
        return self.inner.gather(prefix, shift, limit)

    def nth(self, key, r):
        self.calls.append("nth")
        return self.inner.nth(key, r)


@pytest.mark.parametrize("name", sorted(KERNELS))
@pytest.mark.parametrize("nbits", [32, 64])
def test_huge_tie_group_uses_the_nth_scan(monkeypatch, name, nbits):
    dtype = np.uint32 if nbits == 32 else np.uint64
    keys = np.full(100, 12345, dtype=dtype)
    keys[::12] = 99  # 9 keys: a bucket small enough to gather
    blocks = [KeyBlock(keys[:40], 0), KeyBlock(keys[40:], 40)]
    monkeypatch.setattr(_select, "GATHER_LIMIT", 10)
    source = CountingSource(BlockKeys(blocks, KERNELS[name], 2))
    ties = np.flatnonzero(keys == 12345)
    small = int((keys == 99).sum())
    for r in (small, small + 37, keys.size - 1):
        source.calls.clear()
        cutoff = find_cutoff(r, nbits, source)
        assert cutoff == Cutoff(12345, int(ties[r - small]))
        assert source.calls == ["histogram"] * (nbits // 16) + ["nth"]
    source.calls.clear()
    assert find_cutoff(1, nbits, source) == Cutoff(99, 12)
    assert "gather" in source.calls


def test_no_candidates_clears_the_mask():
    keys = np.arange(5, dtype=np.uint64)
    mask = np.ones(5, dtype=bool)
    compose([KeyBlock(keys, 0)], [mask], None, _numpy, and_with_mask=False)
    assert not mask.any()


def test_keys_sort_like_scores():
    values = np.array([0.0, 1e-40, 1e-30, 0.1, 0.5, 1.0, np.inf, np.nan])
    for dtype in (np.float32, np.float64):
        keys = keys_of(values.astype(dtype))
        assert np.all(np.diff(keys.astype(np.uint64).astype(object)) > 0)


# ---------------------------------------------------------------- exact class sums


def exact_parts(values):
    """(integer, 2**-32, 2**-64) parts of each value, truncated below 2**-64."""
    out = []
    for v in values:
        scaled = int(Fraction(float(v)) * 2**64)  # floor for v >= 0
        out.append((scaled >> 64, (scaled >> 32) & 0xFFFFFFFF, scaled & 0xFFFFFFFF))
    return np.array(out, dtype=np.int64).reshape(-1, 3)


def add_values(sums, values, classes, chunks):
    """Feed (class, value) pairs to `sums` in the given chunks, as per-tile arrays."""
    k = sums.num_classes
    for chunk in np.array_split(np.arange(len(values)), chunks):
        parts = np.zeros((max(len(chunk), 1), k, 3), dtype=np.int64)
        counts = np.zeros((max(len(chunk), 1), k), dtype=np.int64)
        for row, i in enumerate(chunk):
            parts[row, classes[i]] = exact_parts([values[i]])[0]
            counts[row, classes[i]] = 1
        sums.add(parts, counts)


@settings(deadline=None, max_examples=80)
@given(
    seed=st.integers(0, 2**32 - 1),
    size=st.integers(1, 60),
    k=st.integers(1, 4),
    dtype=st.sampled_from([np.float32, np.float64]),
    chunks=st.integers(1, 7),
)
def test_class_sums_are_exact_and_order_independent(seed, size, k, dtype, chunks):
    rng = np.random.default_rng(seed)
    # values >= 2**-11 have no bits below 2**-64 (float64: 53-bit mantissa)
    values = np.maximum(rng.random(size), 2.0**-11).astype(dtype)
    values[rng.random(size) < 0.2] = 1.0
    classes = rng.integers(0, k, size)
    one = ClassSums(k)
    add_values(one, values, classes, 1)
    perm = rng.permutation(size)
    other = ClassSums(k)
    add_values(other, values[perm], classes[perm], chunks)
    np.testing.assert_array_equal(one.parts, other.parts)
    np.testing.assert_array_equal(one.counts, other.counts)
    left, right = ClassSums(k), ClassSums(k)
    add_values(left, values[: size // 2], classes[: size // 2], 2)
    add_values(right, values[size // 2 :], classes[size // 2 :], 3)
    merged = left.merge(right)
    np.testing.assert_array_equal(merged.parts, one.parts)
    for c in range(k):
        chosen = values[classes == c]
        exact = sum(map(Fraction, chosen.astype(np.float64).tolist()))
        expected = max(float(exact / chosen.size), FLOOR) if chosen.size else FLOOR
        assert one.thresholds()[c] == expected


def test_class_sums_carry_without_overflow():
    """Many tiles of the largest fraction parts: the carries must propagate."""
    sums = ClassSums(1)
    tiles = 100_000
    parts = np.tile(np.array([[[1, 2**32 - 1, 2**32 - 1]]], dtype=np.int64), (tiles, 1, 1))
    sums.add(parts, np.ones((tiles, 1), dtype=np.int64))
    sums.add(parts, np.ones((tiles, 1), dtype=np.int64))
    per_value = 1 + Fraction(2**32 - 1, 2**32) + Fraction(2**32 - 1, 2**64)
    total = 2 * tiles * per_value
    assert (
        Fraction(int(sums.parts[0, 0]))
        + Fraction(int(sums.parts[0, 1]), 2**32)
        + Fraction(int(sums.parts[0, 2]), 2**64)
        == total
    )
    assert 0 <= sums.parts[0, 1] < 2**32 and 0 <= sums.parts[0, 2] < 2**32
    assert sums.thresholds()[0] == float(per_value)


def test_threshold_floor():
    sums = ClassSums(3)
    parts = np.zeros((3, 3), dtype=np.int64)
    parts[1] = exact_parts([1e-7])[0]  # a tiny mean is floored
    sums.add(parts, np.array([0, 1, 2]))  # class 0 has no pixel, class 2 has mean 0
    np.testing.assert_array_equal(sums.thresholds(), [FLOOR, FLOOR, FLOOR])


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_thresholds_do_not_depend_on_batching(name):
    """Through the kernels: identical thresholds whatever the batches, and equal to
    the exact mean up to the rounding of one float64 sum."""
    labels, probs = make_dataset(3, n=7, k=3, h=5, w=9)
    y, s, _, _, void = per_pixel(labels, probs, None)
    exact = oracle_thresholds(y, s, void, 3)
    seen = []
    for per_batch in (1, 2, 7):
        sums = ClassSums(3)
        for start in range(0, 7, per_batch):
            batch = slice(start, start + per_batch)
            summary = run_summary(
                name, probs[batch], labels[batch], ignore_index=None, from_logits=False
            )
            sums.add(summary.sums, summary.counts)
        seen.append(sums.thresholds())
        np.testing.assert_allclose(seen[-1], exact, rtol=4 * np.finfo(float).eps, atol=0)
    for other in seen[1:]:
        np.testing.assert_array_equal(other, seen[0])


# ---------------------------------------------------------------- numba vs numpy twins


def run_summary(name, probs, labels, **options):
    pb, lb = as_batch(probs, labels)
    h, w = labels.shape[1:]
    return summarise_batch(
        pb,
        lb,
        kernels=KERNELS[name],
        num_classes=probs.shape[1],
        image_offset=0,
        shape_hw=(h, w),
        **options,
    )


def run_scores(name, probs, labels, ignore_index=None):
    """The scores-only pass: (scores, max row deviation)."""
    pb, lb = as_batch(probs, labels)
    n, h, w = labels.shape
    out = np.empty((n, h * w), dtype=score_dtype(pb.dtype, False))
    dev = score_batch(
        pb,
        lb,
        kernels=KERNELS[name],
        num_classes=probs.shape[1],
        ignore_index=ignore_index,
        image_offset=0,
        shape_hw=(h, w),
        scores_out=out,
    )
    return out, dev


def random_batch(seed, shape, dtype, label_dtype, void):
    """Labels, probabilities and the void label (or None) of one random batch."""
    n, k, h, w = shape
    labels, probs = make_dataset(seed, n, k, h, w, quantise=None if seed % 3 else 3)
    if void:
        labels[np.random.default_rng(seed).random(labels.shape) < 0.3] = VOID
    return labels.astype(label_dtype), probs.astype(dtype), VOID if void else None


def bits(a):
    a = np.asarray(a)
    return a.view(np.uint64 if a.dtype == np.float64 else np.uint32) if a.dtype.kind == "f" else a


@settings(deadline=None, max_examples=60)
@given(
    seed=st.integers(0, 2**32 - 1),
    shape=st.tuples(st.integers(1, 3), st.integers(2, 6), st.integers(1, 5), st.integers(1, 70)),
    dtype=st.sampled_from([np.float64, np.float32, np.float16]),
    label_dtype=st.sampled_from([np.int64, np.uint8, np.float64]),
    void=st.booleans(),
)
def test_kernels_are_bit_identical(seed, shape, dtype, label_dtype, void):
    labels, probs, ignore = random_batch(seed, shape, dtype, label_dtype, void)
    k = shape[1]
    options = {"ignore_index": ignore, "from_logits": False}
    a = run_summary("numba", probs, labels, **options)
    b = run_summary("numpy", probs, labels, **options)
    for field in ("scores", "disagree", "max_prob", "argmax", "sums", "counts"):
        np.testing.assert_array_equal(
            bits(getattr(a, field)), bits(getattr(b, field)), err_msg=field
        )
    # the row sums feed only the "does not sum to 1" warning; the compiled kernel may
    # add in the input's precision, so allow that rounding
    eps = float(np.finfo(np.float32 if dtype == np.float16 else dtype).eps)
    assert a.max_row_deviation == pytest.approx(b.max_row_deviation, abs=2 * k * eps)


@settings(deadline=None, max_examples=60)
@given(
    seed=st.integers(0, 2**32 - 1),
    shape=st.tuples(st.integers(1, 3), st.integers(2, 11), st.integers(1, 5), st.integers(1, 70)),
    dtype=st.sampled_from([np.float64, np.float32, np.float16]),
    label_dtype=st.sampled_from([np.int64, np.uint8, np.float64]),
    void=st.booleans(),
)
def test_scores_only_pass_equals_the_full_summary(seed, shape, dtype, label_dtype, void):
    """Same scores, bit for bit, and the same row-sum deviation as the fused pass."""
    labels, probs, ignore = random_batch(seed, shape, dtype, label_dtype, void)
    for name in KERNELS:
        full = run_summary(name, probs, labels, ignore_index=ignore, from_logits=False)
        scores, dev = run_scores(name, probs, labels, ignore_index=ignore)
        np.testing.assert_array_equal(bits(scores), bits(full.scores), err_msg=name)
        assert dev == full.max_row_deviation, name


@settings(deadline=None, max_examples=40)
@given(seed=st.integers(0, 2**32 - 1), dtype=st.sampled_from([np.float64, np.float32]))
def test_kernels_agree_on_logits(seed, dtype):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 5, size=(2, 4, 9))
    logits = (rng.normal(size=(2, 5, 4, 9)) * 4).astype(dtype)
    a = run_summary("numba", logits, labels, ignore_index=None, from_logits=True)
    b = run_summary("numpy", logits, labels, ignore_index=None, from_logits=True)
    np.testing.assert_array_equal(a.disagree, b.disagree)
    np.testing.assert_array_equal(a.argmax, b.argmax)
    np.testing.assert_allclose(a.scores, b.scores, rtol=0, atol=1e-15)
    np.testing.assert_allclose(a.max_prob, b.max_prob, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(a.counts, b.counts)


@pytest.mark.parametrize(
    ("where", "value", "message"),
    [
        (
            "label",
            9,
            r"labels must be integers in 0\.\.2 or ignore_index=255; got .*9.* at image 1, "
            r"row 0, column 4100",
        ),
        (
            "prob",
            np.nan,
            r"pred_probs must be finite; got .*nan.* at class 1 of image 1, row 0, "
            r"column 4100",
        ),
        ("prob", -0.5, r"got .*-0\.5.* at class 1 of image 1, row 0, column 4100"),
    ],
)
def test_kernels_report_the_first_bad_pixel_alike(where, value, message):
    """Bad pixels in several tiles (TILE = 4096): both name the first one."""
    labels, probs = make_dataset(0, n=2, k=3, h=1, w=2 * _numba.TILE + 10)
    for col in (8200, 4100):  # the later tile is filled first
        if where == "label":
            labels[1, 0, col] = value
        else:
            probs[1, 1, 0, col] = value
    labels[0, 0, 8195] = VOID  # a void pixel is no error
    for name in KERNELS:
        with pytest.raises(ValueError, match=message):
            run_summary(name, probs, labels, ignore_index=VOID, from_logits=False)
        with pytest.raises(ValueError, match=message):
            run_scores(name, probs, labels, ignore_index=VOID)


@pytest.mark.parametrize("cls", [1, 3, 4, 5, 6])
@pytest.mark.parametrize("value", [np.nan, np.inf, -0.25])
def test_bad_value_in_any_plane_is_found(cls, value):
    """K = 7 sweeps planes 1-4 together and 5-6 one by one: every plane is checked."""
    labels, probs = make_dataset(1, n=1, k=7, h=3, w=5)
    probs[0, cls, 2, 3] = value
    where = f"at class {cls} of image 0, row 2, column 3"
    for name in KERNELS:
        with pytest.raises(ValueError, match=where):
            run_summary(name, probs, labels, ignore_index=None, from_logits=False)
        with pytest.raises(ValueError, match=where):
            run_scores(name, probs, labels)


@settings(deadline=None, max_examples=40)
@given(data=key_blocks(), choice=st.data())
def test_selection_kernels_are_twins(data, choice):
    nbits, blocks = data
    keys = blocks[0].keys if blocks[0].keys.size else np.concatenate([b.keys for b in blocks])
    if keys.size == 0:
        return
    pick = int(keys[choice.draw(st.integers(0, keys.size - 1))])
    for shift in (64 if nbits == 64 else 32, 48, 32, 16):
        if shift > nbits:
            continue
        prefix = np.uint64(pick >> shift) if shift < 64 else np.uint64(0)
        np.testing.assert_array_equal(
            _numba.key_histogram(keys, prefix, shift, 3),
            _numpy.key_histogram(keys, prefix, shift, 1),
        )
        gk, gi = _numba.gather_bucket(keys, prefix, shift, 5, keys.size)
        hk, hi = _numpy.gather_bucket(keys, prefix, shift, 5, keys.size)
        np.testing.assert_array_equal(gk, hk)
        np.testing.assert_array_equal(gi, hi)
    for nth in (0, 1, keys.size):
        assert tuple(_numba.nth_match(keys, np.uint64(pick), nth)) == tuple(
            _numpy.nth_match(keys, np.uint64(pick), nth)
        )
    for use_mask in (True, False):
        masks = [np.arange(keys.size) % 2 == 0 for _ in range(2)]
        _numba.compose_mask(keys, np.uint64(pick), np.int64(7), np.int64(3), masks[0], use_mask)
        _numpy.compose_mask(keys, np.uint64(pick), np.int64(7), np.int64(3), masks[1], use_mask)
        np.testing.assert_array_equal(*masks)


@pytest.mark.parametrize("dtype", [np.uint32, np.uint64])
@pytest.mark.parametrize("size", [2 * _numba.CHUNK, _numba.POOL_CHUNKS * _numba.CHUNK + 123])
def test_selection_kernels_are_twins_over_several_chunks(dtype, size):
    # the compiled kernels split keys into CHUNK-sized pieces, run in parallel
    # from POOL_CHUNKS pieces on; a bucket that spans the pieces, a limit that
    # cuts it and a tie group across their borders come out as from the twins
    rng = np.random.default_rng(size)
    nbits = 8 * np.dtype(dtype).itemsize
    keys = rng.integers(0, 1 << 20, size=size).astype(dtype) << dtype(nbits - 20)
    keys[_numba.CHUNK - 5 : _numba.CHUNK + 5] = keys[0]  # ties across a border
    pick = int(keys[0])
    for shift in (nbits, nbits - 16):
        prefix = np.uint64(pick >> shift) if shift < 64 else np.uint64(0)
        for nchunks in (1, 2, 3):
            np.testing.assert_array_equal(
                _numba.key_histogram(keys, prefix, shift, nchunks),
                _numpy.key_histogram(keys, prefix, shift, 1),
            )
        bucket = int(_numpy.key_histogram(keys, np.uint64(0), nbits, 1)[pick >> (nbits - 16)])
        for limit in (bucket, bucket // 2, 1):
            got = _numba.gather_bucket(keys, prefix, shift, 11, limit)
            want = _numpy.gather_bucket(keys, prefix, shift, 11, limit)
            np.testing.assert_array_equal(got[0], want[0])
            np.testing.assert_array_equal(got[1], want[1])
            assert got[0].size == min(
                limit, (keys >> dtype(shift) == prefix).sum() if shift < 64 else size
            )
    for cut_index in (_numba.CHUNK, size + 20):
        for use_mask in (True, False):
            masks = [np.arange(size) % 3 != 0 for _ in range(2)]
            for mask, kernels in zip(masks, (_numba, _numpy), strict=True):
                kernels.compose_mask(
                    keys, np.uint64(pick), np.int64(cut_index), np.int64(4), mask, use_mask
                )
            np.testing.assert_array_equal(*masks)
            assert masks[0].any() and not masks[0].all()


def test_every_compiled_kernel_has_a_numpy_twin():
    assert set(_numba.__all__) == set(_numpy.__all__)
    for name in _numba.__all__:
        assert callable(getattr(_numpy, name)), name


def _protocol_members() -> list[str]:
    return sorted(
        name
        for name, value in vars(Kernels).items()
        if callable(value) and not name.startswith("_")
    )


@pytest.mark.parametrize("module", [_numba, _numpy], ids=["numba", "numpy"])
def test_kernel_modules_implement_the_protocol_with_its_signatures(module):
    members = _protocol_members()
    assert members == sorted(module.__all__)  # the protocol lists every kernel, no more
    for name in members:
        wanted = inspect.signature(getattr(Kernels, name))
        wanted = wanted.replace(parameters=list(wanted.parameters.values())[1:])  # no self
        assert inspect.signature(getattr(module, name)) == wanted, name


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_count_above_kernels_agree(dtype):
    rng = np.random.default_rng(1)
    max_prob = rng.random(500).astype(dtype)
    argmax = rng.integers(0, 4, 500).astype(np.uint8)
    adjusted = np.array([0.3, 0.5, 0.7, 2e-6]) - 1e-6
    max_prob[:4] = adjusted.astype(dtype)  # ties with the thresholds
    argmax[:4] = np.arange(4)
    expected = int(np.count_nonzero(max_prob.astype(np.float64) >= adjusted[argmax]))
    assert int(_numba.count_above(max_prob, argmax, adjusted)) == expected
    assert int(_numpy.count_above(max_prob, argmax, adjusted)) == expected


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("temperature", [1e-3, 0.1, 5.0])
def test_softmin_kernels_agree(temperature, dtype):
    rng = np.random.default_rng(0)
    scores = rng.random((5, 70_000)).astype(dtype)  # long rows: numpy's sum() would pair
    scores[1, ::3] = np.nan
    scores[2] = np.nan  # no labelled pixel: score 1.0
    scores[3, 5:] = np.nan  # a few labelled pixels
    scores[4] = rng.random(70_000) ** 8  # many low scores
    out = [np.empty(5), np.empty(5)]
    _numba.softmin(scores, temperature, out[0])
    _numpy.softmin(scores, temperature, out[1])
    np.testing.assert_array_equal(out[0], out[1])  # the same bits, whichever kernel
    assert out[0][2] == 1.0
    scores = scores.astype(np.float64)
    valid = scores[0]
    weights = np.exp((1 - valid) / temperature - (1 - valid.min()) / temperature)
    np.testing.assert_allclose(out[0][0], (valid * weights).sum() / weights.sum(), rtol=1e-12)


def test_kernel_setting_is_read_at_call_time(monkeypatch):
    from segaudit.kernels._choice import get_kernels

    monkeypatch.setenv("SEGAUDIT_KERNEL", "numpy")
    assert get_kernels() is _numpy
    monkeypatch.setenv("SEGAUDIT_KERNEL", "NUMBA")
    assert get_kernels() is _numba
    monkeypatch.setenv("SEGAUDIT_KERNEL", "cuda")
    labels, probs = make_dataset(0, n=1)
    with pytest.raises(ValueError, match=r"'SEGAUDIT_KERNEL'.*'numba' or 'numpy'.*'cuda'"):
        segaudit.find_label_issues(labels, probs, verbose=False)
    assert os.environ["SEGAUDIT_KERNEL"] == "cuda"
