"""A small synthetic dataset with known, injected label errors (for the demo and tests)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SAMPLE_CLASSES", "SampleDataset", "make_sample_dataset"]

SAMPLE_CLASSES = ("background", "road", "car", "person", "tree")


@dataclass(frozen=True)
class SampleDataset:
    """Synthetic street-like scenes.

    Attributes
    ----------
    labels : ndarray of uint8, shape (N, H, W)
        Given masks, with injected errors (and void pixels when asked for).
    pred_probs : ndarray of float32, shape (N, K, H, W)
        A plausible model's probabilities, computed from the true masks.
    logits : ndarray of float32, shape (N, K, H, W)
        The same model's logits (``pred_probs`` is their softmax).
    true_labels : ndarray of uint8, shape (N, H, W)
        The masks before corruption.
    injected : ndarray of bool, shape (N, H, W)
        Where the given label differs from the truth.
    class_names : tuple of str
    """

    labels: np.ndarray
    pred_probs: np.ndarray
    logits: np.ndarray
    true_labels: np.ndarray
    injected: np.ndarray
    class_names: tuple[str, ...]


def _scene(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Draw one scene: road band, trees, cars and people as simple shapes."""
    lab = np.zeros((h, w), dtype=np.uint8)
    lab[int(h * rng.uniform(0.55, 0.7)) :, :] = 1
    yy, xx = np.mgrid[0:h, 0:w]
    for _ in range(rng.integers(1, 4)):  # trees: discs
        cy, cx, r = rng.integers(h // 5, h // 2), rng.integers(0, w), rng.integers(h // 10, h // 5)
        lab[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = 4
    for _ in range(rng.integers(1, 4)):  # cars: boxes on the road
        y0, x0 = rng.integers(int(h * 0.6), h - h // 8), rng.integers(0, w - w // 5)
        lab[y0 : y0 + rng.integers(h // 12, h // 7), x0 : x0 + rng.integers(w // 10, w // 5)] = 2
    for _ in range(rng.integers(0, 3)):  # people: thin boxes
        y0, x0 = rng.integers(h // 3, h - h // 4), rng.integers(0, w - 6)
        lab[y0 : y0 + rng.integers(h // 8, h // 5), x0 : x0 + rng.integers(3, 7)] = 3
    return lab


def _corrupt(rng: np.random.Generator, true: np.ndarray, k: int) -> np.ndarray:
    """Inject annotator mistakes: a swapped object, a missed object, a shifted border."""
    from scipy import ndimage

    given: np.ndarray = true.copy()
    objects, count = ndimage.label(true >= 2)
    if count:
        picks = rng.choice(np.arange(1, count + 1), size=min(count, 2), replace=False)
        swap = objects == picks[0]
        cls = int(np.bincount(true[swap]).argmax())
        given[swap] = rng.choice([c for c in range(2, k) if c != cls])  # wrong class
        if len(picks) > 1 and rng.random() < 0.5:
            given[objects == picks[1]] = 0  # missing label
    if rng.random() < 0.5:  # border drawn a few pixels too low
        rows = np.flatnonzero((true == 1).any(axis=1))
        if rows.size:
            top = rows[0]
            band = slice(top, top + int(rng.integers(2, 5)))
            given[band][true[band] == 1] = 0
    return given


def _model(rng: np.random.Generator, true: np.ndarray, k: int) -> np.ndarray:
    """Return logits of a model that is right almost everywhere and unsure near borders."""
    from scipy import ndimage

    onehot = (true[None] == np.arange(k)[:, None, None]).astype(np.float64)
    soft = np.stack([ndimage.uniform_filter(c, size=5, mode="nearest") for c in onehot])
    noise = ndimage.gaussian_filter(rng.normal(size=soft.shape), sigma=(0, 3, 3)) * 6.0
    logits: np.ndarray = (7.0 * soft + noise).astype(np.float32)
    return logits


def make_sample_dataset(
    *,
    n_images: int = 24,
    height: int = 96,
    width: int = 128,
    seed: int = 0,
    void_border: int = 0,
) -> SampleDataset:
    """Generate the sample dataset deterministically.

    Parameters
    ----------
    n_images, height, width : int
        Dataset size.
    seed : int, default=0
        The same seed gives the same data on every machine.
    void_border : int, default=0
        Width of a frame of void pixels (label 255) around each mask, as in
        Cityscapes; 0 for none.

    Returns
    -------
    SampleDataset

    Examples
    --------
    >>> from segaudit._sample import make_sample_dataset
    >>> data = make_sample_dataset(n_images=2, height=32, width=48)
    >>> data.pred_probs.shape, bool(data.injected.any())
    ((2, 5, 32, 48), True)
    """
    rng = np.random.default_rng(seed)
    k = len(SAMPLE_CLASSES)
    true = np.stack([_scene(rng, height, width) for _ in range(n_images)])
    given = np.stack([_corrupt(rng, t, k) for t in true])
    logits = np.stack([_model(rng, t, k) for t in true])
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs = e / e.sum(axis=1, keepdims=True)
    injected = given != true
    if void_border:
        b = void_border
        for arr in (given, true):
            arr[:, :b], arr[:, -b:], arr[:, :, :b], arr[:, :, -b:] = 255, 255, 255, 255
        injected[:, :b], injected[:, -b:], injected[:, :, :b], injected[:, :, -b:] = (False,) * 4
    return SampleDataset(given, probs, logits, true, injected, SAMPLE_CLASSES)
