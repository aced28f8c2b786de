"""Inject realistic annotation mistakes into segmentation masks, with exact ground truth.

An *object* is a connected component (8-connectivity) of one class that is neither
the background nor void. Each object independently, with probability ``rate``,
gets one error whose kind is drawn uniformly from the kinds that apply:

- ``swap``: the whole object is given another non-background class.
- ``miss``: the whole object is erased to background.
- ``spurious``: a new shape (ellipse, rotated rectangle or wobbly blob) with the
  object's area and a random non-background class is painted on background pixels
  of the same image, at a random background pixel; the object itself stays intact.
- ``boundary``: the object's outline is grown or shrunk (one or the other, even odds)
  by 1 to 4 pixels, with a disc-shaped binary dilation. Grown pixels take the
  object's class; shrunk pixels take the class of the nearest non-object pixel.

Errors never overlap: swaps and misses are applied first, then boundaries, then
spurious shapes, each changing only pixels that no earlier error changed. Void
pixels are never changed. An error that would change no pixel is not recorded.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd

from segaudit._optional import require
from segaudit._validation import allowed_labels, bad_labels, param_error
from segaudit.evaluate._shapes import disc, draw_shapes, image_objects, window

__all__ = ["ERROR_COLUMNS", "ERROR_KINDS", "NoisyLabels", "inject_label_noise"]

ERROR_KINDS = ("swap", "miss", "spurious", "boundary")
ERROR_COLUMNS = (
    "error",
    "image",
    "kind",
    "class_before",
    "class_after",
    "shift",
    "top",
    "left",
    "bottom",
    "right",
    "area",
)
_FUNC = "inject_label_noise"
_MAX_SHIFT = 4


class _Noisy(NamedTuple):
    labels: np.ndarray
    truth: np.ndarray
    errors: pd.DataFrame


class NoisyLabels(_Noisy):
    """What `inject_label_noise` returns: ``labels, truth, errors = inject_label_noise(...)``.

    A named tuple of three, with the error id map as one more attribute.

    Attributes
    ----------
    labels : ndarray, shape (N, H, W)
        The corrupted labels, same dtype as the input (a new array).
    truth : ndarray of bool, shape (N, H, W)
        Pixels whose label changed.
    errors : pandas.DataFrame
        One row per injected error, columns `ERROR_COLUMNS`: ``error`` (id, 1-based,
        the row order), ``image``, ``kind``, ``class_before`` and ``class_after``
        (majority class of the changed pixels before and after), ``shift`` (for
        ``boundary``: +d grown or -d shrunk by d pixels; 0 otherwise), ``top``,
        ``left``, ``bottom``, ``right`` (box of the changed pixels, half-open like
        slices) and ``area`` (changed pixels).
    error_ids : ndarray of int32, shape (N, H, W)
        The ``error`` id of each changed pixel, 0 where unchanged (not a tuple
        element: for :func:`~segaudit.evaluate.score_detection`'s per-kind scores).
    """

    error_ids: np.ndarray

    def __new__(
        cls, labels: np.ndarray, truth: np.ndarray, errors: pd.DataFrame, error_ids: np.ndarray
    ) -> NoisyLabels:
        self = super().__new__(cls, labels, truth, errors)
        self.error_ids = error_ids
        return self

    def __getnewargs__(self) -> tuple[np.ndarray, np.ndarray, pd.DataFrame, np.ndarray]:
        """Pickle (and copy) the error ids with the three tuple elements."""
        return (self.labels, self.truth, self.errors, self.error_ids)


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_labels(labels: Any) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.ndim != 3 or 0 in arr.shape:
        expected = "a non-empty integer array of shape (N, H, W)"
        raise param_error("labels", _FUNC, expected, f"shape {arr.shape}")
    if arr.dtype.kind not in "iu":
        raise param_error("labels", _FUNC, "an integer array of shape (N, H, W)", arr.dtype)
    return arr


def _check_kinds(kinds: object) -> tuple[str, ...]:
    if isinstance(kinds, str):
        kinds = (kinds,)
    allowed = f"a non-empty sequence of distinct kinds from {ERROR_KINDS}"
    if not isinstance(kinds, Sequence):
        raise param_error("kinds", _FUNC, allowed, repr(kinds))
    given = tuple(kinds)
    unknown = [k for k in given if k not in ERROR_KINDS]
    if not given or unknown or len(set(given)) != len(given):
        got = f"unknown kinds {unknown!r}" if unknown else repr(given)
        raise param_error("kinds", _FUNC, allowed, got)
    return tuple(str(k) for k in given)


def _check_options(
    rate: Any, seed: Any, background: Any, ignore_index: Any, num_classes: Any
) -> None:
    ok = isinstance(rate, numbers.Real) and not isinstance(rate, bool) and 0.0 <= float(rate) <= 1.0
    if not ok:
        raise param_error("rate", _FUNC, "a number in [0, 1]", repr(rate))
    if not _is_int(seed) or seed < 0:
        raise param_error("seed", _FUNC, "a non-negative integer", repr(seed))
    for name, value in (("background", background), ("ignore_index", ignore_index)):
        if value is not None and not _is_int(value):
            raise param_error(name, _FUNC, "an integer or None", repr(value))
    if background is not None and background == ignore_index:
        raise param_error("background", _FUNC, "different from ignore_index", repr(background))
    if num_classes is not None and (not _is_int(num_classes) or num_classes < 2):
        raise param_error("num_classes", _FUNC, "an integer >= 2 or None", repr(num_classes))
    if num_classes is not None and background is not None and not 0 <= background < num_classes:
        expected = f"a class id in 0..{num_classes - 1} or None"
        raise param_error("background", _FUNC, expected, repr(background))


def _check_values(arr: np.ndarray, ignore_index: int | None, num_classes: int | None) -> None:
    """Labels follow the label rule of `bad_labels` when K is known, else are ``>= 0``."""
    if num_classes is None:  # no K to compare with: a class id is only known to be >= 0
        bad = arr < 0
        if ignore_index is not None:
            bad &= arr != ignore_index
        expected = "class ids >= 0"
        expected += "" if ignore_index is None else f" or ignore_index={ignore_index}"
    else:
        bad = bad_labels(arr, num_classes, ignore_index)
        expected = allowed_labels(num_classes, ignore_index)
    if bad.any():
        i, r, c = np.argwhere(bad)[0]
        got = f"{arr[i, r, c]} at image {i}, row {r}, column {c}"
        raise param_error("labels", _FUNC, expected, got)


def _usable_kinds(
    kinds: tuple[str, ...],
    classes: np.ndarray,
    has_background_pixels: bool,
    background: int | None,
) -> tuple[str, ...]:
    """Return the requested kinds that can apply to these labels; raise when none can."""
    reasons = {
        "swap": None if classes.size >= 2 else "'swap' needs two non-background classes",
        "miss": None if background is not None else "'miss' needs a background class",
        "spurious": None
        if background is not None and has_background_pixels
        else "'spurious' needs background pixels",
        "boundary": None,
    }
    usable = tuple(k for k in kinds if reasons[k] is None)
    if not usable:
        why = "; ".join(str(reasons[k]) for k in kinds)
        got = f"{kinds!r} ({why}; background={background!r}, classes {classes.tolist()})"
        raise param_error("kinds", _FUNC, "kinds that apply to these labels", got)
    return usable


def _majority(values: np.ndarray) -> int:
    """Most frequent value (smallest on ties)."""
    uniq, counts = np.unique(values, return_counts=True)
    return int(uniq[np.argmax(counts)])


class _Image:
    """Mutable state of one image while its errors are applied."""

    def __init__(self, index: int, original: np.ndarray, out: np.ndarray, ids: np.ndarray):
        self.index, self.original, self.out, self.ids = index, original, out, ids
        self.claimed = np.zeros(original.shape, dtype=bool)

    def apply(
        self,
        rows: list[tuple[Any, ...]],
        kind: str,
        window: tuple[slice, slice],
        changed: np.ndarray,
        new: np.ndarray | int,
        shift: int = 0,
    ) -> None:
        """Write the new labels of `changed` (a mask on `window`) and record the error."""
        new_values = np.broadcast_to(np.asarray(new), changed.shape)[changed]
        before = self.original[window][changed]
        keep = new_values != before
        if not keep.any():
            return
        changed = changed.copy()
        changed[changed] = keep
        new_values, before = new_values[keep], before[keep]
        error = len(rows) + 1
        self.out[window][changed] = new_values
        self.ids[window][changed] = error
        self.claimed[window] |= changed
        rr, cc = np.nonzero(changed)
        top, left = int(rr.min() + window[0].start), int(cc.min() + window[1].start)
        bottom = int(rr.max() + window[0].start + 1)
        right = int(cc.max() + window[1].start + 1)
        rows.append(
            (
                error,
                self.index,
                kind,
                _majority(before),
                _majority(new_values),
                shift,
                top,
                left,
                bottom,
                right,
                int(keep.sum()),
            )
        )


def _boundary(
    rng: np.random.Generator,
    state: _Image,
    rows: list[tuple[Any, ...]],
    objects: np.ndarray,
    obj: int,
    cls: int,
    sl: tuple[slice, slice],
    valid: np.ndarray,
) -> None:
    ndi = require("scipy.ndimage", "io", "segaudit.evaluate")
    grow = bool(rng.random() < 0.5)
    d = int(rng.integers(1, _MAX_SHIFT + 1))
    win = window(sl, d + 1, objects.shape)
    inside = objects[win] == obj
    free = valid[win] & ~state.claimed[win]
    if grow:
        ring = ndi.binary_dilation(inside, structure=disc(d)) & ~inside & free
        state.apply(rows, "boundary", win, ring, cls, d)
        return
    other = ~inside & valid[win]
    if not other.any():
        return
    ring = inside & ndi.binary_dilation(other, structure=disc(d)) & free
    near = ndi.distance_transform_edt(~other, return_distances=False, return_indices=True)
    state.apply(rows, "boundary", win, ring, state.original[win][near[0], near[1]], -d)


def _spurious(
    rng: np.random.Generator,
    state: _Image,
    rows: list[tuple[Any, ...]],
    area: int,
    classes: np.ndarray,
    background: int,
) -> None:
    free = (state.original == background) & ~state.claimed
    spots = np.flatnonzero(free)
    cls = int(classes[rng.integers(classes.size)])
    if spots.size == 0:
        return
    cy, cx = np.unravel_index(spots[rng.integers(spots.size)], free.shape)
    reach = int(2 * np.sqrt(area / np.pi)) + 2
    win = window((slice(cy, cy + 1), slice(cx, cx + 1)), reach, free.shape)
    yy, xx = np.mgrid[win[0], win[1]]
    shape = draw_shapes(rng, np.array([area]), np.array([cy]), np.array([cx]), yy, xx)[0]
    shape[cy - win[0].start, cx - win[1].start] = True
    state.apply(rows, "spurious", win, shape & free[win], cls)


def inject_label_noise(
    labels: npt.ArrayLike,
    *,
    kinds: Sequence[str] = ERROR_KINDS,
    rate: float = 0.15,
    seed: int = 0,
    background: int | None = 0,
    ignore_index: int | None = None,
    num_classes: int | None = None,
) -> NoisyLabels:
    """Corrupt segmentation labels with realistic annotation mistakes, keeping the truth.

    Parameters
    ----------
    labels : array_like of int, shape (N, H, W)
        Clean labels (any integer dtype; one image needs shape ``(1, H, W)``). Not modified.
    kinds : sequence of {"swap", "miss", "spurious", "boundary"}, default=all four
        Kinds of error to draw from (see the module notes). Kinds that cannot apply
        to these labels (``swap`` with one non-background class, ``miss`` and
        ``spurious`` without a background class or background pixels) are skipped;
        it is an error when none applies.
    rate : float, default=0.15
        Probability that an object gets an error, independently per object; each
        erroneous object gets one error, its kind drawn uniformly from the applicable
        `kinds`. So about ``rate * objects`` errors in all, and per image about
        ``rate * objects / k`` spurious shapes, k the number of applicable kinds.
        Errors that would change no pixel (e.g. a grown border with no free pixel
        around) are dropped.
    seed : int, default=0
        Seed of ``numpy.random.default_rng``; the result depends on nothing else.
    background : int or None, default=0
        Background class; None means there is none (``miss`` and ``spurious`` then
        never apply, and every class forms objects).
    ignore_index : int or None, default=None
        Void label: void pixels are never changed and never part of an object.
    num_classes : int or None, default=None
        Classes are ``0..num_classes-1``; swaps and spurious shapes draw from the
        non-background ones. None: from the non-background classes present in `labels`.

    Returns
    -------
    NoisyLabels
        Named tuple ``(labels, truth, errors)``: corrupted labels, boolean mask of
        changed pixels and one row per error (columns `ERROR_COLUMNS`, boxes
        half-open); its attribute ``error_ids`` is the error id map. Errors never
        overlap, so per image the ``area`` column sums to ``truth.sum()``.

    Raises
    ------
    ValueError
        For bad options, unknown or empty `kinds`, or labels with nothing to corrupt.

    Examples
    --------
    >>> import numpy as np
    >>> from segaudit.evaluate import inject_label_noise
    >>> labels = np.zeros((1, 8, 8), np.uint8); labels[0, 2:5, 2:6] = 1; labels[0, 6:, 6:] = 2
    >>> noisy = inject_label_noise(labels, kinds=["swap"], rate=1.0)
    >>> noisy.errors[["image", "kind", "class_before", "class_after", "area"]]
       image  kind  class_before  class_after  area
    0      0  swap             1            2    12
    1      0  swap             2            1     4
    >>> int(noisy.truth.sum()), noisy.labels.dtype
    (16, dtype('uint8'))
    """
    arr = _check_labels(labels)
    kinds = _check_kinds(kinds)
    _check_options(rate, seed, background, ignore_index, num_classes)
    _check_values(arr, ignore_index, num_classes)
    valid = np.ones(arr.shape, bool) if ignore_index is None else arr != ignore_index
    per_image = [image_objects(img, background, ignore_index) for img in arr]
    classes = np.unique(arr[valid]) if num_classes is None else np.arange(num_classes)
    classes = classes[classes != background] if background is not None else classes
    if sum(c.size for _, c in per_image) == 0:
        what = f"background={background!r} and ignore_index={ignore_index!r}"
        expected = f"at least one object (a region of a class other than {what}) to corrupt"
        raise param_error("labels", _FUNC, expected, "none")
    has_bg = background is not None and bool((arr == background).any())
    usable = _usable_kinds(kinds, classes, has_bg, background)

    ndi = require("scipy.ndimage", "io", "segaudit.evaluate")
    bg = -1 if background is None else int(background)  # only used when not None
    rng = np.random.default_rng(seed)
    out = arr.copy()
    ids = np.zeros(arr.shape, dtype=np.int32)
    rows: list[tuple[Any, ...]] = []
    for i, (objects, obj_classes) in enumerate(per_image):
        n_obj = obj_classes.size
        hit = rng.random(n_obj) < rate
        kind_of = np.asarray(usable)[rng.integers(len(usable), size=n_obj)]
        if not hit.any():
            continue
        state = _Image(i, arr[i], out[i], ids[i])
        slices = ndi.find_objects(objects, max_label=n_obj)
        areas = np.bincount(objects.ravel(), minlength=n_obj + 1)[1:]
        todo = np.flatnonzero(hit)
        for j in todo[np.isin(kind_of[todo], ("swap", "miss"))]:
            win, cls = slices[j], int(obj_classes[j])
            if kind_of[j] == "swap":
                others = classes[classes != cls]
                new = int(others[rng.integers(others.size)])
            else:
                new = bg
            state.apply(rows, str(kind_of[j]), win, objects[win] == j + 1, new)
        for j in todo[kind_of[todo] == "boundary"]:
            cls = int(obj_classes[j])
            _boundary(rng, state, rows, objects, j + 1, cls, slices[j], valid[i])
        for j in todo[kind_of[todo] == "spurious"]:
            _spurious(rng, state, rows, int(areas[j]), classes, bg)
    errors = pd.DataFrame(rows, columns=list(ERROR_COLUMNS))
    int_columns = [c for c in ERROR_COLUMNS if c != "kind"]
    errors = errors.astype(dict.fromkeys(int_columns, np.int64))
    return NoisyLabels(out, ids > 0, errors, ids)
