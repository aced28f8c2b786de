"""Synthetic scenes with injected label errors and simulated models' predictions."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from segaudit._optional import require
from segaudit._validation import param_error
from segaudit.evaluate._inject import ERROR_KINDS, inject_label_noise
from segaudit.evaluate._shapes import draw_shapes, image_objects

__all__ = ["Scenes", "make_scenes"]

_FUNC = "make_scenes"
_HESITANT = (0.45, 0.3)  # logit_scale shares of the wrong and the true class on a wrong object


@dataclass(frozen=True, eq=False)
class Scenes:
    """Synthetic scenes from `make_scenes`.

    Attributes
    ----------
    labels : ndarray, shape (N, H, W)
        Given (noisy) labels: `true_labels` after ``inject_label_noise``.
    true_labels : ndarray, shape (N, H, W)
        Clean labels. Both label arrays are uint8 when every id fits, else int32.
    truth, errors, error_ids
        As returned by ``inject_label_noise``: changed pixels, one row per error,
        error id per pixel.
    pred_probs : list of ndarray of float32, shape (N, K, H, W)
        One per model: softmax of `logits`.
    logits : list of ndarray of float32, shape (N, K, H, W)
        One per model.
    model_labels : list of ndarray, shape (N, H, W)
        What each model believes before blurring: the true scene with that model's
        own whole-object mistakes (void pixels keep the scene's class).
    num_classes : int
    background : int or None
    ignore_index : int or None
    """

    labels: np.ndarray
    true_labels: np.ndarray
    truth: np.ndarray
    errors: pd.DataFrame
    error_ids: np.ndarray
    pred_probs: list[np.ndarray]
    logits: list[np.ndarray]
    model_labels: list[np.ndarray]
    num_classes: int
    background: int | None
    ignore_index: int | None


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and bool(np.isfinite(float(value)))
    )


def _check_pair(value: Any, name: str, integer: bool, low: float, high: float) -> tuple[Any, Any]:
    ok = isinstance(value, Sequence) and len(value) == 2
    ok = ok and all((_is_int(v) if integer else _is_real(v)) for v in value)
    ok = ok and low <= value[0] <= value[1] <= high
    if not ok:
        kind = "integers" if integer else "numbers"
        bounds = f"{low} <= min <= max" + ("" if high == np.inf else f" <= {high}")
        raise param_error(name, _FUNC, f"a pair (min, max) of {kind} with {bounds}", repr(value))
    return value[0], value[1]


def _check(name: str, value: Any, ok: bool, expected: str) -> None:
    if not ok:
        raise param_error(name, _FUNC, expected, repr(value))


def _draw_scenes(
    rng: np.random.Generator,
    n: int,
    h: int,
    w: int,
    classes: np.ndarray,
    canvas: int | None,
    objects: tuple[int, int],
    object_size: tuple[float, float],
) -> np.ndarray:
    """Paint random shapes of random classes, later ones on top of earlier ones."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    scenes = np.empty((n, h, w), dtype=np.int64)
    lo, hi = np.log(object_size[0] * h * w), np.log(object_size[1] * h * w)
    for i in range(n):
        count = int(rng.integers(objects[0], objects[1] + 1))
        fill = canvas if canvas is not None else int(classes[rng.integers(classes.size)])
        area = np.exp(rng.uniform(lo, hi, size=count))
        cy, cx = rng.uniform(0, h, size=count), rng.uniform(0, w, size=count)
        cls = classes[rng.integers(classes.size, size=count)]
        masks = draw_shapes(rng, area, cy, cx, yy, xx)
        top = count - 1 - np.argmax(masks[::-1], axis=0)  # the last shape covering a pixel
        scenes[i] = np.where(masks.any(axis=0), cls[top], fill)
    return scenes


def _model(
    rng: np.random.Generator,
    scenes: np.ndarray,
    classes: np.ndarray,
    k: int,
    background: int | None,
    error_rate: float,
    confident: bool,
    blur: float,
    logit_scale: float,
    logit_noise: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One model: (believed labels, float32 logits, float32 probabilities)."""
    believed = scenes.copy()
    wrong = np.zeros(scenes.shape, dtype=bool)
    for i, img in enumerate(scenes):
        objects, obj_classes = image_objects(img, background, None)
        n_obj = obj_classes.size
        mistaken = rng.random(n_obj) < error_rate
        draw = rng.integers(classes.size - 1, size=n_obj)
        # the draw-th class other than the object's own (classes is sorted)
        own = np.searchsorted(classes, obj_classes)
        new = classes[draw + (draw >= own)]
        lut = np.r_[-1, np.where(mistaken, new, -1)]
        mapped = lut[objects]
        wrong[i] = mapped >= 0
        believed[i] = np.where(wrong[i], mapped, img)
    planes = np.arange(k)[None, :, None, None]
    onehot = (believed[:, None] == planes).astype(np.float32)
    if confident:
        logits = np.float32(logit_scale) * onehot
    else:
        true_hot = (scenes[:, None] == planes) & wrong[:, None]
        scale = np.where(wrong, _HESITANT[0] * logit_scale, logit_scale).astype(np.float32)[:, None]
        logits = scale * onehot + np.float32(_HESITANT[1] * logit_scale) * true_hot
    ndi = require("scipy.ndimage", "io", "segaudit.evaluate")
    if blur > 0:
        logits = ndi.gaussian_filter(logits, sigma=(0, 0, blur, blur), mode="nearest")
    if logit_noise > 0:
        noise = ndi.gaussian_filter(
            rng.standard_normal(logits.shape, dtype=np.float32), sigma=(0, 0, 2, 2)
        )
        logits = logits + (logit_noise / noise.std()) * noise
    logits = logits.astype(np.float32)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs = e / e.sum(axis=1, keepdims=True)
    return believed, logits, probs


def make_scenes(
    n_images: int = 50,
    *,
    height: int = 64,
    width: int = 64,
    num_classes: int = 5,
    objects: tuple[int, int] = (3, 8),
    object_size: tuple[float, float] = (0.01, 0.1),
    background: int | None = 0,
    ignore_index: int | None = None,
    void_border: int = 0,
    label_noise_rate: float = 0.15,
    noise_kinds: Sequence[str] = ERROR_KINDS,
    models: int = 1,
    model_error_rate: float = 0.2,
    model_confident: bool = False,
    blur: float = 1.0,
    logit_scale: float = 6.0,
    logit_noise: float = 0.5,
    seed: int = 0,
) -> Scenes:
    """Generate scenes with known label errors and the predictions of simulated models.

    Each image is a background canvas (or, with ``background=None``, a random class)
    with random ellipses, rotated rectangles and wobbly blobs of random classes,
    later ones on top. The given labels are the scenes after ``inject_label_noise``.
    Each model believes the true scene except for its own whole-object mistakes
    (each object, independently with probability `model_error_rate`, taken for
    another class); its logits are ``logit_scale`` times the one-hot belief,
    spatially blurred (soft probabilities near edges) plus smooth noise. Models are
    independent, and each draws from its own seed stream, so adding a model changes
    neither the labels nor the other models.

    Parameters
    ----------
    n_images : int, default=50
        Number of images N.
    height, width : int, default=64
        Image size (at least 8).
    num_classes : int, default=5
        K, the class ids ``0..K-1``; with a background, ``K >= 3``.
    objects : (int, int), default=(3, 8)
        Fewest and most objects per image (at least 1), inclusive.
    object_size : (float, float), default=(0.01, 0.1)
        Range of an object's area as a share of the image, drawn log-uniformly.
    background : int or None, default=0
        Background class; None paints each canvas with a random class.
    ignore_index : int or None, default=None
        Void label, outside ``0..K-1``; needed by `void_border`.
    void_border : int, default=0
        Width of a frame of void pixels around every label mask.
    label_noise_rate : float, default=0.15
        ``rate`` of ``inject_label_noise``.
    noise_kinds : sequence of str, default=all kinds
        ``kinds`` of ``inject_label_noise``.
    models : int, default=1
        Number of simulated models M.
    model_error_rate : float, default=0.2
        Probability that a model takes an object for another class.
    model_confident : bool, default=False
        False: on its mistaken objects a model hesitates (logits ``0.45 logit_scale``
        for the wrong class and ``0.3 logit_scale`` for the true one). True: it is
        as confident there as elsewhere.
    blur : float, default=1.0
        Gaussian sigma, in pixels, of the logit blur; 0 for none.
    logit_scale : float, default=6.0
        Logit of the believed class (others 0) away from edges.
    logit_noise : float, default=0.5
        Standard deviation of the smooth (sigma 2 px) logit noise.
    seed : int, default=0
        Everything is deterministic for a seed.

    Returns
    -------
    Scenes

    Examples
    --------
    >>> from segaudit.evaluate import make_scenes
    >>> scenes = make_scenes(4, height=32, width=32, models=2)
    >>> scenes.labels.shape, len(scenes.pred_probs), scenes.pred_probs[0].shape
    ((4, 32, 32), 2, (4, 5, 32, 32))
    >>> bool(scenes.truth.any()), list(scenes.errors.columns[:3])
    (True, ['error', 'image', 'kind'])
    """
    _check("n_images", n_images, _is_int(n_images) and n_images >= 1, "an integer >= 1")
    for name, value in (("height", height), ("width", width)):
        _check(name, value, _is_int(value) and value >= 8, "an integer >= 8")
    _check("background", background, background is None or _is_int(background), "an int or None")
    min_k = 2 if background is None else 3
    ok = _is_int(num_classes) and num_classes >= min_k
    _check("num_classes", num_classes, ok, f"an integer >= {min_k} with background={background}")
    ok = background is None or 0 <= background < num_classes
    _check("background", background, ok, f"a class id in 0..{num_classes - 1} or None")
    ok = ignore_index is None or (_is_int(ignore_index) and not 0 <= ignore_index < num_classes)
    _check("ignore_index", ignore_index, ok, f"None or an integer outside 0..{num_classes - 1}")
    ok = _is_int(void_border) and void_border >= 0 and 2 * void_border < min(height, width)
    ok = ok and (void_border == 0 or ignore_index is not None)
    _check(
        "void_border", void_border, ok, "an integer >= 0, below half the image, with ignore_index"
    )
    objects = _check_pair(objects, "objects", True, 1, np.inf)
    object_size = _check_pair(object_size, "object_size", False, 1e-6, 1.0)
    _check("models", models, _is_int(models) and models >= 1, "an integer >= 1")
    for name, rate in (
        ("label_noise_rate", label_noise_rate),
        ("model_error_rate", model_error_rate),
    ):
        _check(name, rate, _is_real(rate) and 0 <= rate <= 1, "a number in [0, 1]")
    _check("model_confident", model_confident, isinstance(model_confident, bool), "a bool")
    for name, amount in (("blur", blur), ("logit_noise", logit_noise)):
        _check(name, amount, _is_real(amount) and amount >= 0, "a number >= 0")
    _check("logit_scale", logit_scale, _is_real(logit_scale) and logit_scale > 0, "a number > 0")
    _check("seed", seed, _is_int(seed) and seed >= 0, "a non-negative integer")

    streams = np.random.SeedSequence(seed).spawn(2 + models)
    classes = np.array([c for c in range(num_classes) if c != background])
    scenes = _draw_scenes(
        np.random.default_rng(streams[0]),
        n_images,
        height,
        width,
        classes,
        background,
        objects,
        object_size,
    )
    top = max(num_classes - 1, 0 if ignore_index is None else ignore_index)
    small = (ignore_index is None or ignore_index >= 0) and top <= 255
    true_labels = scenes.astype(np.uint8 if small else np.int32)
    if void_border and ignore_index is not None:  # the checks above: a border needs void
        b = void_border
        true_labels[:, :b] = true_labels[:, -b:] = ignore_index
        true_labels[:, :, :b] = true_labels[:, :, -b:] = ignore_index
    noisy = inject_label_noise(
        true_labels,
        kinds=noise_kinds,
        rate=label_noise_rate,
        seed=int(streams[1].generate_state(1)[0]),
        background=background,
        ignore_index=ignore_index,
        num_classes=num_classes,
    )
    believed, logits, probs = [], [], []
    for m in range(models):
        b_m, l_m, p_m = _model(
            np.random.default_rng(streams[2 + m]),
            scenes,
            classes,
            num_classes,
            background,
            model_error_rate,
            model_confident,
            blur,
            logit_scale,
            logit_noise,
        )
        believed.append(b_m.astype(true_labels.dtype))
        logits.append(l_m)
        probs.append(p_m)
    return Scenes(
        labels=noisy.labels,
        true_labels=true_labels,
        truth=noisy.truth,
        errors=noisy.errors,
        error_ids=noisy.error_ids,
        pred_probs=probs,
        logits=logits,
        model_labels=believed,
        num_classes=num_classes,
        background=background,
        ignore_index=ignore_index,
    )
