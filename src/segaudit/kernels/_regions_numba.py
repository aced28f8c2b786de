"""Compiled kernels of ``filter_by="confident_regions"``: agreeing sums and whole-region flags.

:func:`region_flags` labels the 8-connected regions of candidate pixels that
share a given label with union-find, in one raster pass per image, adds up
each region's statistics, decides each region and writes the flags, the
images in parallel (``prange``). :func:`agree_sums` adds s per image and class
over agreeing pixels. Both have twins in :mod:`segaudit.kernels._regions_numpy`
that give identical results: every sum is added in pixel order. Arguments
have fixed dtypes and C order, so each kernel has few specialisations.
"""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt

from segaudit._typing import BoolArray, FloatArray
from segaudit.kernels._jit import njit as _njit
from segaudit.kernels._protocol import Int64Array, LabelArray

__all__ = ["agree_sums", "region_flags"]


@_njit(parallel=True)
def agree_sums(
    scores: FloatArray,
    disagree: BoolArray,
    labels: LabelArray,
    sums: npt.NDArray[np.float64],
    counts: Int64Array,
) -> None:
    """Add s and count per image and class over agreeing pixels, in pixel order.

    Agreeing: s is not NaN and the pixel is not disagreeing. ``scores``,
    ``disagree``, ``labels`` are ``(n, P)``; ``sums``, ``counts`` ``(n, K)``,
    zeroed by the caller. A label outside ``0..K-1`` is skipped.
    """
    n = scores.shape[0]
    if n == 1:  # one image: the calling thread (waking the pool costs more)
        _agree_row(scores[0], disagree[0], labels[0], sums[0], counts[0])
        return
    for i in numba.prange(n):
        _agree_row(scores[i], disagree[i], labels[i], sums[i], counts[i])


@_njit()
def _agree_row(
    scores: FloatArray,
    disagree: BoolArray,
    labels: LabelArray,
    sums: npt.NDArray[np.float64],
    counts: Int64Array,
) -> None:
    """:func:`agree_sums` of one image (rows of length P and K)."""
    k = sums.shape[0]
    for j in range(scores.shape[0]):
        v = np.float64(scores[j])
        if v == v and not disagree[j]:
            y = np.int64(labels[j])
            if 0 <= y < k:
                sums[y] += v
                counts[y] += 1


@_njit()
def _root(parent: Int64Array, j: int) -> int:
    """Root of `j`, halving the path on the way."""
    while parent[j] != j:
        parent[j] = parent[parent[j]]
        j = parent[j]
    return j


@_njit()
def _join(parent: Int64Array, a: int, b: int) -> None:
    """Merge the sets of `a` and `b`; the root is the smaller index (first in pixel order)."""
    ra = _root(parent, a)
    rb = _root(parent, b)
    if ra < rb:
        parent[rb] = ra
    elif rb < ra:
        parent[ra] = rb


@_njit()
def _same(labels: Int64Array, q: int, y: int) -> bool:
    """Tell whether candidate `q` (-1: none) has label `y`."""
    return q >= 0 and labels[q] == y


@_njit()
def _connect(
    cand: BoolArray,
    width: int,
    given: LabelArray,
    scores: FloatArray,
    labels: Int64Array,
    s: npt.NDArray[np.float64],
    where: Int64Array,
    parent: Int64Array,
) -> None:
    """Union-find over one image's candidates, row by row; every parent precedes its child.

    Gathers each candidate's given label, s (from the rows `given` and
    `scores`) and pixel index into `labels`, `s` and `where`, in pixel order,
    on the way. Each
    candidate is joined with its matching earlier neighbours (left, up-left,
    up, up-right); of those, only the ones not joined already are looked at:
    a matching up pixel is adjacent to the other three, so it is joined with
    them already when they match; else up-right is looked at, and left, or
    up-left when left does not match (the two are adjacent).
    """
    prev = np.full(width, -1, dtype=np.int64)  # candidate index above each column, or -1
    cur = np.full(width, -1, dtype=np.int64)
    j = 0
    for r in range(cand.shape[0] // width):
        row = r * width
        for c in range(width):
            if not cand[row + c]:
                cur[c] = -1
                continue
            y = np.int64(given[row + c])
            labels[j] = y
            s[j] = np.float64(scores[row + c])
            where[j] = row + c
            up = prev[c]
            if _same(labels, up, y):
                parent[j] = up
            else:
                parent[j] = j
                if c + 1 < width and _same(labels, prev[c + 1], y):
                    parent[j] = prev[c + 1]
                if c > 0:
                    if _same(labels, cur[c - 1], y):
                        _join(parent, j, cur[c - 1])
                    elif _same(labels, prev[c - 1], y):
                        _join(parent, j, prev[c - 1])
            cur[c] = j
            j += 1
        prev, cur = cur, prev


@_njit()
def _touches(
    cand: BoolArray,
    width: int,
    given: LabelArray,
    labels: Int64Array,
    predicted: Int64Array,
    where: Int64Array,
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
    for j in range(d):
        r = root[j]
        if not need[r]:
            continue
        q = where[j]  # the candidate's pixel
        c = q % width
        a = predicted[j]
        y = labels[j]
        to_a = False
        to_y = False
        for step in range(4):
            if step == 0:
                if c == 0:
                    continue
                nb = q - 1
            elif step == 1:
                if c + 1 == width:
                    continue
                nb = q + 1
            elif step == 2:
                nb = q - width
                if nb < 0:
                    continue
            else:
                nb = q + width
                if nb >= size:
                    continue
            g = np.int64(given[nb])
            to_a |= g == a
            to_y |= g == y and not cand[nb]
        near_a[r] += to_a
        near_y[r] += to_y
    return near_a, near_y


@_njit()
def _image_flags(
    cands: BoolArray,
    i: int,
    width: int,
    all_scores: FloatArray,
    all_confident: BoolArray,
    offsets: Int64Array,
    floor: npt.NDArray[np.float64],
    share: float,
    all_given: LabelArray,
    all_predicted: Int64Array,
    all_lean: npt.NDArray[np.float64],
    strip_floor: npt.NDArray[np.float64],
    strip: npt.NDArray[np.float64],
) -> None:
    """Flag image `i`'s candidates ``cands[i]`` in place (arguments as :func:`region_flags`)."""
    b, e = offsets[i], offsets[i + 1]
    cand, given = cands[i], all_given[i]
    confident, predicted, lean = all_confident[b:e], all_predicted[b:e], all_lean[b:e]
    d = confident.shape[0]
    if d == 0:
        return
    labels = np.empty(d, dtype=np.int64)
    scores = np.empty(d, dtype=np.float64)
    where = np.empty(d, dtype=np.int64)
    parent = np.empty(d, dtype=np.int64)
    _connect(cand, width, given, all_scores[i], labels, scores, where, parent)
    size = np.zeros(d, dtype=np.int64)
    sure = np.zeros(d, dtype=np.int64)
    total = np.zeros(d, dtype=np.float64)
    leaning = np.zeros(d, dtype=np.float64)
    multi = np.zeros(d, dtype=np.bool_)  # per root: its candidates have several predicted classes
    kp = np.int64(1)  # more than the largest predicted class
    for j in range(d):
        r = parent[parent[j]]  # parent[j] precedes j: its root is known already
        parent[j] = r
        size[r] += 1
        if confident[j]:
            sure[r] += 1
        total[r] += scores[j]  # in pixel order, as np.bincount adds
        leaning[r] += lean[j]
        a = predicted[j]
        if a != predicted[r]:
            multi[r] = True
        if a >= kp:
            kp = a + 1
    # decide what the region statistics decide alone; the 4-neighbour counts
    # (the costly part) only for regions that a strip or a flip could change
    flag = np.zeros(d, dtype=np.bool_)
    need = np.zeros(d, dtype=np.bool_)
    for j in range(d):
        if parent[j] == j:
            n = np.float64(size[j])
            y = labels[j]
            mean_s = total[j] / n
            base = (sure[j] / n >= share and mean_s <= strip_floor[y] * strip[4]) or (
                mean_s <= floor[y]
            )
            maybe_strip = n >= strip[0] and mean_s <= strip_floor[y] and leaning[j] / n >= strip[2]
            flag[j] = base
            need[j] = (base and n <= strip[3]) or (not base and maybe_strip)
    near_a, near_y = _touches(cand, width, given, labels, predicted, where, parent, need)
    for j in range(d):
        if need[j]:
            n = np.float64(size[j])
            flip = n <= strip[3] and near_a[j] == size[j] and near_y[j] == size[j]
            along = near_a[j] >= strip[1] * n and near_y[j] >= strip[1] * n
            flag[j] = not flip and (flag[j] or along)
    # a flagged region whose candidates the model assigns to several classes:
    # its parts of one predicted class are decided alone (see region_flags)
    trim = strip[5] if strip.shape[0] > 5 else -np.inf
    count = 0
    first = d  # the first mixed region's root: no mixed candidate comes before it
    index = sure  # reused: per mixed root, its number (read only there)
    if trim > -np.inf:
        for j in range(d):
            if parent[j] == j and flag[j] and multi[j]:
                index[j] = count
                count += 1
                first = min(first, j)
    if count == 0:
        for j in range(d):
            if not flag[parent[j]]:
                cand[where[j]] = False
        return
    drop = _part_drops(
        parent,
        flag,
        multi,
        index,
        count,
        kp,
        first,
        labels,
        scores,
        confident,
        predicted,
        lean,
        floor,
        share,
        strip_floor,
        strip[4],
        trim,
    )
    for j in range(d):
        r = parent[j]
        if not flag[r] or (multi[r] and drop[index[r] * kp + predicted[j]]):
            cand[where[j]] = False


@_njit()
def _part_drops(
    parent: Int64Array,
    flag: npt.NDArray[np.bool_],
    multi: npt.NDArray[np.bool_],
    index: Int64Array,
    count: int,
    kp: int,
    first: int,
    labels: Int64Array,
    scores: npt.NDArray[np.float64],
    confident: BoolArray,
    predicted: Int64Array,
    lean: npt.NDArray[np.float64],
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
        if flag[r] and multi[r]:
            g = index[r] * kp + predicted[j]
            size[g] += 1
            if confident[j]:
                sure[g] += 1
            total[g] += scores[j]
            leaning[g] += lean[j]
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
    confident: BoolArray,
    offsets: Int64Array,
    floor: npt.NDArray[np.float64],
    share: float,
    given: LabelArray,
    predicted: Int64Array,
    lean: npt.NDArray[np.float64],
    strip_floor: npt.NDArray[np.float64],
    strip: npt.NDArray[np.float64],
) -> None:
    """Flag whole regions of candidates, in place: one image per thread.

    ``cand (n, P)`` holds the candidates of n images of `width` columns,
    ``scores (n, P)`` every pixel's s and ``given (n, P)`` its given label
    (void: outside ``0..K-1``; a candidate's is in ``0..K-1``);
    ``predicted`` (int64), ``confident`` (bool), ``lean`` (float64) hold the
    candidates' predicted class a, ``m >= t~_a`` and ``m / t~_a``, in pixel
    order; image i's are ``offsets[i]:offsets[i + 1]``. A region (8-connected candidates of one
    label y) is flagged whole when its confident share is at least `share`
    and its mean s at most ``strip_floor[y] * strip[4]``, or its mean s is at
    most ``floor[y]``, or it is a strip along a border: at least ``strip[0]``
    pixels, mean s at most ``strip_floor[y]``, mean ``m / t~_a`` at least
    ``strip[2]``, and at least ``strip[1]`` of its pixels 4-adjacent to a
    pixel labelled their a, and as many to a non-candidate pixel labelled y.
    A region of at most ``strip[3]`` pixels that all touch both (a border
    flip of the model's own) is never flagged. In a flagged region whose
    candidates have several predicted classes, its parts (its candidates of
    one predicted class) are decided by the confident and implausible rules;
    when one part is flagged alone, a part that is not, whose mean
    ``m / t~_a`` is below ``strip[5]`` (optional; none without it) and whose
    mean s is above ``strip_floor[y]``, is left out.
    """
    n = cand.shape[0]
    args = (width, scores, confident, offsets, floor, share, given, predicted, lean)
    if n == 1:  # one image: the calling thread (waking the pool costs more)
        _image_flags(cand, 0, *args, strip_floor, strip)
        return
    for i in numba.prange(n):
        _image_flags(cand, i, *args, strip_floor, strip)
