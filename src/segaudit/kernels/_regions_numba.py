"""Compiled kernels of ``filter_by="confident_regions"``: agreeing sums and whole-region flags.

:func:`region_flags` labels the 8-connected regions of candidate pixels that
share a given label with union-find, in one pass over each image's list of
candidates, adds up each region's statistics (each candidate's confidence
worked out from its m and a as the summary keeps them), decides each region
and writes the flags, the images in parallel (``prange``). :func:`agree_sums`
adds s per tile and class over agreeing pixels, as the summary pass does
when asked (for batches summarised elsewhere: on a device). Both have twins in
:mod:`segaudit.kernels._regions_numpy` that give identical results: every sum
is added in pixel order. The per-candidate loops avoid branches on data and
calls with array arguments, which cost more here than the arithmetic.
Arguments are C-ordered in a few dtypes, so each kernel has few
specialisations.
"""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt

from segaudit._typing import BoolArray, FloatArray, IntArray
from segaudit.kernels._jit import njit as _njit
from segaudit.kernels._protocol import TILE, Int64Array, LabelArray, tiles_per_image

__all__ = ["agree_sums", "region_flags"]

_tiles_per_image = _njit()(tiles_per_image)
"""`tiles_per_image` compiled, for the kernels here and in `_numba`."""


@_njit(parallel=True)
def agree_sums(
    scores: FloatArray,
    disagree: BoolArray,
    labels: LabelArray,
    sums: npt.NDArray[np.float64],
    counts: Int64Array,
) -> None:
    """Add s and count per tile and class over agreeing pixels, in pixel order.

    Agreeing: s is not NaN and the pixel is not disagreeing. ``scores``,
    ``disagree``, ``labels`` are ``(n, P)``; ``sums``, ``counts`` ``(T, K)``
    with a row per tile of :data:`~segaudit.kernels._protocol.TILE` pixels
    (image i's tiles first), zeroed by the caller: the sums
    :func:`~segaudit.kernels._numba.summarise` gives when asked for them. A
    label outside ``0..K-1`` is skipped.
    """
    n, p = scores.shape
    per_image = _tiles_per_image(p)
    if n * per_image == 1:  # one tile: the calling thread (waking the pool costs more)
        _agree_row(scores[0], disagree[0], labels[0], sums[0], counts[0])
        return
    for t in numba.prange(n * per_image):
        i = t // per_image
        j0 = (t % per_image) * TILE
        j1 = min(j0 + TILE, p)
        _agree_row(scores[i, j0:j1], disagree[i, j0:j1], labels[i, j0:j1], sums[t], counts[t])


@_njit()
def _agree_row(
    scores: FloatArray,
    disagree: BoolArray,
    labels: LabelArray,
    sums: npt.NDArray[np.float64],
    counts: Int64Array,
) -> None:
    """:func:`agree_sums` of one tile (rows of its pixels, and of length K).

    The running sum of the current label stays in a register while the
    label does not change (other pixels add 0.0, which changes no sum of
    s >= 0), and goes back to `sums` when it does: the same additions in the
    same order as adding each pixel to ``sums[y]``, without a branch per
    disagreeing pixel.
    """
    k = sums.shape[0]
    cur = -1
    acc = 0.0
    cnt = np.int64(0)
    for j in range(scores.shape[0]):
        v = np.float64(scores[j])
        y = np.int64(labels[j])
        ok = (v == v) & ~disagree[j] & (y >= 0) & (y < k)
        if ok & (y != cur):
            if cur >= 0:
                sums[cur] = acc
                counts[cur] = cnt
            cur = y
            acc = sums[y]
            cnt = counts[y]
        acc += v if ok else 0.0
        cnt += ok
    if cur >= 0:
        sums[cur] = acc
        counts[cur] = cnt


@_njit()
def _root(parent: IntArray, j: int) -> int:
    """Root of `j`, halving the path on the way (a union-find of int32 or int64 parents)."""
    while parent[j] != j:
        parent[j] = parent[parent[j]]
        j = parent[j]
    return j


@_njit()
def _positions(cand: BoolArray, where: Int64Array) -> int:
    """Write the pixel index of each candidate of `cand` into ``where[:d]``, in pixel order.

    Branch-free: each pixel's index goes into the next free slot, which only
    a candidate keeps; `where` has one slot more than the d candidates (a
    surplus candidate overwrites the last slot only). Returns how many of
    the d slots hold a candidate.
    """
    d = where.shape[0] - 1
    j = 0
    for q in range(cand.shape[0]):
        where[j] = q
        j += cand[q]
        j = j if j < d else d
    return j


@_njit()
def _connect(
    width: int,
    given: LabelArray,
    scores: FloatArray,
    labels: Int64Array,
    s: npt.NDArray[np.float64],
    where: Int64Array,
    column: Int64Array,
    parent: Int64Array,
) -> None:
    """Union-find over one image's candidates (pixels `where`); every parent precedes its child.

    Gathers each candidate's given label and s (from the rows `given` and
    `scores`) into `labels` and `s`, and its column into `column`, on the
    way. Each
    candidate is joined with its matching earlier neighbours (left, up-left,
    up, up-right): the left one is the candidate just before it, the three
    above are found in ``slots``, the last candidate of each column in rows
    of either parity (checked against `where`). Of those, only the ones not
    joined already are looked at: a matching up pixel is adjacent to the
    other three, so it is joined with them already when they match; else
    up-right is looked at, and left, or up-left when left does not match
    (the two are adjacent). Written out in one loop (no calls with array
    arguments per candidate).
    """
    d = labels.shape[0]
    slots = np.full(2 * width + 3, -1, dtype=np.int64)  # two rows, spare slots around them
    row = 0
    start = 0  # the first pixel of `row`
    for j in range(d):
        q = where[j]
        while q >= start + width:
            start += width
            row += 1
        c = q - start
        column[j] = c
        y = np.int64(given[q])
        labels[j] = y
        s[j] = np.float64(scores[q])
        above = ((row + 1) & 1) * (width + 1) + c + 1  # slot of the pixel above (if a candidate)
        top = q - width
        # the three candidates above that match, tested without branches (-1: none)
        k = slots[above]
        up = k if (k >= 0) & (where[max(k, 0)] == top) & (labels[max(k, 0)] == y) else -1
        k = slots[above + 1]
        ur = k if (k >= 0) & (where[max(k, 0)] == top + 1) & (labels[max(k, 0)] == y) else -1
        ur = ur if c + 1 < width else -1
        k = slots[above - 1]
        ul = k if (k >= 0) & (where[max(k, 0)] == top - 1) & (labels[max(k, 0)] == y) else -1
        ul = ul if c > 0 else -1
        left = j - 1 if (j > 0) & (c > 0) & (where[max(j - 1, 0)] == q - 1) else -1
        left = left if (left >= 0) & (labels[max(left, 0)] == y) else -1
        parent[j] = up if up >= 0 else (ur if ur >= 0 else j)
        other = -1 if up >= 0 else (left if left >= 0 else ul)
        if other >= 0:  # join: the root is the smaller index (first in pixel order)
            ra = j
            while parent[ra] != ra:
                parent[ra] = parent[parent[ra]]
                ra = parent[ra]
            rb = other
            while parent[rb] != rb:
                parent[rb] = parent[parent[rb]]
                rb = parent[rb]
            if ra < rb:
                parent[rb] = ra
            elif rb < ra:
                parent[ra] = rb
        slots[(row & 1) * (width + 1) + c + 1] = j


@_njit()
def _touches(
    cand: BoolArray,
    width: int,
    given: LabelArray,
    labels: Int64Array,
    predicted: IntArray,
    where: Int64Array,
    column: Int64Array,
    root: Int64Array,
    need: npt.NDArray[np.bool_],
) -> tuple[Int64Array, Int64Array]:
    """Count, per region root, its candidates' 4-neighbours (twin: ``_neighbours``).

    Only regions with ``need[root]``. Returns, per root, how many of its
    candidates have a neighbour labelled their predicted class a, and how many
    one that is not a candidate and is labelled their given label y.
    """
    d = labels.shape[0]
    size = cand.shape[0]
    near_a = np.zeros(d, dtype=np.int64)
    near_y = np.zeros(d, dtype=np.int64)
    todo = np.empty(d + 1, dtype=np.int64)  # the candidates of those regions, without branches
    m = 0
    for j in range(d):
        todo[m] = j
        m += need[root[j]]
    for t in range(m):
        j = todo[t]
        r = root[j]
        q = where[j]  # the candidate's pixel
        c = column[j]
        a = np.int64(predicted[j])
        y = labels[j]
        to_a = False
        to_y = False
        if c > 0:
            g = np.int64(given[q - 1])
            to_a |= g == a
            to_y |= (g == y) & ~cand[q - 1]
        if c + 1 < width:
            g = np.int64(given[q + 1])
            to_a |= g == a
            to_y |= (g == y) & ~cand[q + 1]
        if q >= width:
            g = np.int64(given[q - width])
            to_a |= g == a
            to_y |= (g == y) & ~cand[q - width]
        if q + width < size:
            g = np.int64(given[q + width])
            to_a |= g == a
            to_y |= (g == y) & ~cand[q + width]
        near_a[r] += to_a
        near_y[r] += to_y
    return near_a, near_y


@_njit()
def _image_flags(
    cands: BoolArray,
    i: int,
    width: int,
    all_scores: FloatArray,
    all_max_prob: FloatArray,
    offsets: Int64Array,
    floor: npt.NDArray[np.float64],
    share: float,
    all_given: LabelArray,
    all_predicted: IntArray,
    thresholds: npt.NDArray[np.float64],
    strip_floor: npt.NDArray[np.float64],
    strip: npt.NDArray[np.float64],
) -> None:
    """Flag image `i`'s candidates ``cands[i]`` in place (arguments as :func:`region_flags`)."""
    b, e = offsets[i], offsets[i + 1]
    cand, given = cands[i], all_given[i]
    max_prob, predicted = all_max_prob[b:e], all_predicted[b:e]
    d = max_prob.shape[0]
    if d == 0:
        return
    labels = np.empty(d, dtype=np.int64)
    scores = np.empty(d, dtype=np.float64)
    where = np.empty(d + 1, dtype=np.int64)
    column = np.empty(d, dtype=np.int64)
    parent = np.empty(d, dtype=np.int64)
    if _positions(cand, where) < d:  # fewer candidates than records: not a valid call
        return
    where = where[:d]
    _connect(width, given, all_scores[i], labels, scores, where, column, parent)
    size = np.zeros(d, dtype=np.int64)
    sure = np.zeros(d, dtype=np.int64)
    total = np.zeros(d, dtype=np.float64)
    leaning = np.zeros(d, dtype=np.float64)
    multi = np.zeros(d, dtype=np.bool_)  # per root: its candidates have several predicted classes
    kp = np.int64(1)  # more than the largest predicted class
    roots = np.empty(d + 1, dtype=np.int64)  # the regions' roots, in pixel order
    nr = 0
    for j in range(d):
        r = parent[parent[j]]  # parent[j] precedes j: its root is known already
        parent[j] = r
        roots[nr] = j
        nr += r == j
        a = np.int64(predicted[j])
        mp = np.float64(max_prob[j])
        size[r] += 1
        sure[r] += mp >= thresholds[1, a]  # confident: m >= t~_a - tolerance
        total[r] += scores[j]  # in pixel order, as np.bincount adds
        leaning[r] += mp / thresholds[0, a]
        multi[r] |= a != predicted[r]
        kp = max(kp, a + 1)
    # decide what the region statistics decide alone; the 4-neighbour counts
    # (the costly part) only for regions that a strip or a flip could change
    flag = np.empty(d, dtype=np.bool_)  # set (and read) for roots only
    need = np.empty(d, dtype=np.bool_)
    # per root, the shape rules whose bounds on size, mean s and lean hold:
    # bit 1 the strip, 2 the long strip, 4 the unlabelled object
    shape = np.empty(d, dtype=np.int8)
    todo = np.empty(nr + 1, dtype=np.int64)  # the roots that need their neighbours counted
    mixed = np.empty(nr + 1, dtype=np.int64)  # the roots of several predicted classes
    m = 0
    count = 0
    # the long strip (optional; none without it): touch counts, a bound on mean s, a lean
    long_touch = strip[6] if strip.shape[0] > 8 else np.inf
    long_ratio = strip[7] if strip.shape[0] > 8 else 0.0
    long_lean = strip[8] if strip.shape[0] > 8 else np.inf
    # the unlabelled object (optional; none without it): touches as a multiple of
    # the square root of the size, a lean
    hidden_touch = strip[9] if strip.shape[0] > 10 else np.inf
    hidden_lean = strip[10] if strip.shape[0] > 10 else np.inf
    for t in range(nr):  # without branches
        j = roots[t]
        n = np.float64(size[j])
        y = labels[j]
        mean_s = total[j] / n
        lean = leaning[j] / n
        base = ((sure[j] / n >= share) & (mean_s <= strip_floor[y] * strip[4])) | (
            mean_s <= floor[y]
        )
        maybe_strip = (n >= strip[0]) & (mean_s <= strip_floor[y]) & (lean >= strip[2])
        maybe_long = (n >= strip[0]) & (mean_s <= strip_floor[y] * long_ratio) & (lean >= long_lean)
        maybe_hidden = (n >= strip[0]) & (mean_s <= strip_floor[y]) & (lean >= hidden_lean)
        flag[j] = base
        shape[j] = maybe_strip | (maybe_long << 1) | (maybe_hidden << 2)
        want = (base & (n <= strip[3])) | (~base & (maybe_strip | maybe_long | maybe_hidden))
        need[j] = want
        todo[m] = j
        m += want
        mixed[count] = j
        count += multi[j]
    if m > 0:
        near_a, near_y = _touches(
            cand, width, given, labels, predicted, where, column, parent, need
        )
        for t in range(m):  # the shape rules, decided with the counts
            j = todo[t]
            n = np.float64(size[j])
            bounds = shape[j]
            flip = (n <= strip[3]) & (near_a[j] == size[j]) & (near_y[j] == size[j])
            along = ((bounds & 1) != 0) & (near_a[j] >= strip[1] * n) & (near_y[j] >= strip[1] * n)
            long = ((bounds & 2) != 0) & (near_a[j] >= long_touch) & (near_y[j] >= long_touch)
            hidden = (
                ((bounds & 4) != 0) & (near_a[j] == 0) & (near_y[j] >= hidden_touch * np.sqrt(n))
            )
            flag[j] = ~flip & (flag[j] | along | long | hidden)
    # a flagged region whose candidates the model assigns to several classes:
    # its parts of one predicted class are decided alone (see region_flags)
    trim = strip[5] if strip.shape[0] > 5 else -np.inf
    first = d  # the first flagged mixed region's root: no such candidate comes before it
    index = sure  # reused: per flagged mixed root, its number (read only there)
    flagged_mixed = 0
    if trim > -np.inf:
        for t in range(count):
            j = mixed[t]
            if flag[j]:
                index[j] = flagged_mixed
                flagged_mixed += 1
                first = min(first, j)
    if flagged_mixed == 0:
        for j in range(d):
            cand[where[j]] = flag[parent[j]]
        return
    for t in range(nr):  # multi: now only the flagged mixed roots
        multi[roots[t]] &= flag[roots[t]]
    drop = _part_drops(
        parent,
        multi,
        index,
        flagged_mixed,
        kp,
        first,
        labels,
        scores,
        max_prob,
        predicted,
        thresholds,
        floor,
        share,
        strip_floor,
        strip[4],
        trim,
    )
    for j in range(d):
        r = parent[j]
        cand[where[j]] = flag[r] and not (multi[r] and drop[index[r] * kp + predicted[j]])


@_njit()
def _part_drops(
    parent: Int64Array,
    mixed: npt.NDArray[np.bool_],
    index: Int64Array,
    count: int,
    kp: int,
    first: int,
    labels: Int64Array,
    scores: npt.NDArray[np.float64],
    max_prob: FloatArray,
    predicted: IntArray,
    thresholds: npt.NDArray[np.float64],
    floor: npt.NDArray[np.float64],
    share: float,
    strip_floor: npt.NDArray[np.float64],
    ratio: float,
    trim: float,
) -> npt.NDArray[np.bool_]:
    """Which parts of the `count` mixed regions (flagged, several predicted classes) are left out.

    Part ``index[r] * kp + a`` holds the candidates of mixed region (root) r
    with predicted class a; its sums are added in pixel order, from `first`
    (the first mixed root) on. Returns the parts left out, by the rule of
    :func:`region_flags`.
    """
    parts = count * kp
    size = np.zeros(parts, dtype=np.int64)
    sure = np.zeros(parts, dtype=np.int64)
    total = np.zeros(parts, dtype=np.float64)
    leaning = np.zeros(parts, dtype=np.float64)
    label = np.zeros(count, dtype=np.int64)
    for j in range(first, parent.shape[0]):
        r = parent[j]
        if mixed[r]:
            a = np.int64(predicted[j])
            m = np.float64(max_prob[j])
            g = index[r] * kp + a
            size[g] += 1
            sure[g] += m >= thresholds[1, a]
            total[g] += scores[j]
            leaning[g] += m / thresholds[0, a]
            label[index[r]] = labels[j]
    alone = np.zeros(parts, dtype=np.bool_)  # by the confident and implausible rules only
    some = np.zeros(count, dtype=np.bool_)  # per region: one of its parts flagged alone
    for g in range(parts):
        if size[g] > 0:
            n = np.float64(size[g])
            mean_s = total[g] / n
            y = label[g // kp]
            alone[g] = (sure[g] / n >= share and mean_s <= strip_floor[y] * ratio) or (
                mean_s <= floor[y]
            )
            some[g // kp] |= alone[g]
    drop = np.zeros(parts, dtype=np.bool_)
    for g in range(parts):
        if size[g] > 0 and some[g // kp] and not alone[g]:
            n = np.float64(size[g])
            drop[g] = leaning[g] / n < trim and total[g] / n > strip_floor[label[g // kp]]
    return drop


@_njit(parallel=True)
def region_flags(
    cand: BoolArray,
    width: int,
    scores: FloatArray,
    max_prob: FloatArray,
    offsets: Int64Array,
    floor: npt.NDArray[np.float64],
    share: float,
    given: LabelArray,
    predicted: IntArray,
    thresholds: npt.NDArray[np.float64],
    strip_floor: npt.NDArray[np.float64],
    strip: npt.NDArray[np.float64],
) -> None:
    """Flag whole regions of candidates, in place: one image per thread.

    ``cand (n, P)`` holds the candidates of n images of `width` columns,
    ``scores (n, P)`` every pixel's s and ``given (n, P)`` its given label
    (void: outside ``0..K-1``; a candidate's is in ``0..K-1``);
    ``max_prob`` and ``predicted`` (any integer type) hold the candidates' m
    and predicted class a, in pixel order; image i's are
    ``offsets[i]:offsets[i + 1]``. ``thresholds (2, K)`` holds ``t~`` and
    ``t~`` less the tolerance: a candidate is confident when ``m >=
    thresholds[1, a]``, and leans on a by ``m / thresholds[0, a]``. A
    region (8-connected candidates of one
    label y) is flagged whole when its confident share is at least `share`
    and its mean s at most ``strip_floor[y] * strip[4]``, or its mean s is at
    most ``floor[y]``, or it is a strip along a border: at least ``strip[0]``
    pixels, mean s at most ``strip_floor[y]``, mean ``m / t~_a`` at least
    ``strip[2]``, and at least ``strip[1]`` of its pixels 4-adjacent to a
    pixel labelled their a, and as many to a non-candidate pixel labelled y;
    or it is a long strip (optional, ``strip[6:9]``; none without them): at
    least ``strip[0]`` pixels, at least ``strip[6]`` of them 4-adjacent to a
    pixel labelled their a and as many to a non-candidate pixel labelled y,
    mean s at most ``strip_floor[y] * strip[7]`` and mean ``m / t~_a`` at
    least ``strip[8]``; or it is an object the labels leave out (optional,
    ``strip[9:11]``; none without them): at least ``strip[0]`` pixels, none
    4-adjacent to a pixel labelled their a, at least ``strip[9]`` times the
    square root of its size 4-adjacent to a non-candidate pixel labelled y,
    mean s at most ``strip_floor[y]`` and mean ``m / t~_a`` at least
    ``strip[10]``. The 4-neighbours are counted only for the regions that
    one of the shape rules' other bounds (or a flip) leaves open.
    A region of at most ``strip[3]`` pixels that all touch both (a border
    flip of the model's own) is never flagged. In a flagged region whose
    candidates have several predicted classes, its parts (its candidates of
    one predicted class) are decided by the confident and implausible rules;
    when one part is flagged alone, a part that is not, whose mean
    ``m / t~_a`` is below ``strip[5]`` (optional; none without it) and whose
    mean s is above ``strip_floor[y]``, is left out.
    """
    n = cand.shape[0]
    args = (width, scores, max_prob, offsets, floor, share, given, predicted, thresholds)
    if n == 1:  # one image: the calling thread (waking the pool costs more)
        _image_flags(cand, 0, *args, strip_floor, strip)
        return
    for i in numba.prange(n):
        _image_flags(cand, i, *args, strip_floor, strip)
