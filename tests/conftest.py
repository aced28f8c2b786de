"""Shared fixtures and data builders for the segaudit test suite."""

from __future__ import annotations

import importlib
import os

import numpy as np
import pytest

# The library's default ("auto") serves small calls with the numpy twins; the suite
# runs the compiled kernels unless told otherwise (SEGAUDIT_KERNEL=auto|numpy pytest),
# so that every test that does not choose exercises numba. test_cold_start.py
# covers "auto".
os.environ.setdefault("SEGAUDIT_KERNEL", "numba")

# marker name -> (module to import, extra that provides it)
OPTIONAL = {
    "requires_torch": ("torch", "torch"),
    "requires_dask": ("dask.array", "dask"),
    "requires_zarr": ("zarr", "zarr"),
}


def _importorskip(module: str, extra: str) -> None:
    try:
        importlib.import_module(module)
    except ImportError as err:
        pytest.skip(f"needs {module!r} (pip install 'segaudit[{extra}]'): {err}")


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip tests marked ``requires_<extra>``, saying why, when the import fails."""
    for marker in item.iter_markers():
        if marker.name in OPTIONAL:
            _importorskip(*OPTIONAL[marker.name])


@pytest.fixture(params=["numba", "numpy"])
def kernel(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test once with the compiled kernels and once with their numpy twins."""
    monkeypatch.setenv("SEGAUDIT_KERNEL", request.param)
    return request.param


def softmax(logits: np.ndarray, axis: int = 1) -> np.ndarray:
    """Plain float64 softmax, shifted by the maximum."""
    x = np.asarray(logits, dtype=np.float64)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def make_dataset(
    seed: int,
    n: int = 3,
    k: int = 4,
    h: int = 6,
    w: int = 8,
    *,
    noise: float = 0.3,
    strength: float = 2.0,
    quantise: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``labels (n, h, w)`` int64 and ``pred_probs (n, k, h, w)`` float64.

    A random "true" mask; the model leans towards it by `strength`; a fraction
    `noise` of the labels is resampled uniformly. Continuous probabilities have
    no exact ties. With `quantise=q`, probabilities are integer weights in
    ``1..q`` (plus ``q`` on the true class) divided by their row sum, so many
    pixels share bit-identical probabilities.
    """
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, size=(n, h, w))
    onehot = np.moveaxis(np.eye(k)[truth], -1, 1)
    if quantise is None:
        probs = softmax(rng.normal(size=(n, k, h, w)) + strength * onehot)
    else:
        weights = rng.integers(1, quantise + 1, size=(n, k, h, w)) + quantise * onehot
        probs = weights / weights.sum(axis=1, keepdims=True)
    labels = truth.copy()
    flip = rng.random(size=truth.shape) < noise
    labels[flip] = rng.integers(0, k, size=int(flip.sum()))
    return labels.astype(np.int64), np.ascontiguousarray(probs)
