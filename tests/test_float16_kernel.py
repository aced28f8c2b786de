"""float16 probabilities go into the fused kernels as they are, widened tile by tile.

The compiled kernels take float16 as its bits (uint16) and widen each tile into
float32 themselves; every result must be what the same values give as float32,
with the compiled kernels and with their numpy twins. float16 logits take their
exp from a table (``kernels._exp.exp_table``): the same results as float32 but
for the last bits of s and m, and the two kernel sets agree bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest

from segaudit.kernels import _numba, _numpy
from segaudit.kernels._batch import BatchSummary, as_batch, score_batch, summarise_batch
from segaudit.kernels._protocol import TILE

FIELDS = ("scores", "disagree", "max_prob", "argmax", "sums", "counts")
EXACT = ("disagree", "argmax", "counts")
"""The fields that never depend on the exp's last bits."""


def test_every_float16_bit_pattern_widens_exactly():
    bits = np.arange(1 << 16, dtype=np.uint16).reshape(1, 16, TILE)
    buf = np.empty((16, TILE), np.float32)
    _numba._widen_tile(bits, buf, 0, 0, TILE)
    expected = bits.view(np.float16)[0].astype(np.float32)
    # NaN payloads and signed zeros included: compared bit for bit
    assert np.array_equal(buf.view(np.uint32), expected.view(np.uint32))


def _probs(rng: np.random.Generator, logits: bool) -> np.ndarray:
    n, k, h, w = 2, 7, 40, 110  # two tiles per image, the second one partial
    if logits:
        x = rng.normal(scale=4.0, size=(n, k, h, w))
    else:
        x = rng.dirichlet(np.full(k, 0.05), size=(n, h, w)).transpose(0, 3, 1, 2)
    x = x.astype(np.float16)
    flat = x.reshape(-1)
    picks = rng.choice(flat.size, 40, replace=False)
    flat[picks[:30]] = np.array([6e-8, 3e-5, 1e-6, 0.0, -0.0], np.float16).repeat(6)
    return x


def _run(kernels: object, probs: np.ndarray, labels: np.ndarray, logits: bool) -> BatchSummary:
    pb, lb = as_batch(probs, labels)
    k = probs.shape[1]
    return summarise_batch(
        pb,
        lb,
        kernels=kernels,  # type: ignore[arg-type]
        num_classes=k,
        ignore_index=255,
        from_logits=logits,
        image_offset=0,
        shape_hw=probs.shape[2:],
        argmax_out=np.empty(lb.shape, np.int16),
    )


@pytest.mark.parametrize("logits", [False, True])
@pytest.mark.parametrize("kernels", [_numba, _numpy], ids=["numba", "numpy"])
def test_float16_gives_the_float32_results(kernels, logits):
    rng = np.random.default_rng(5)
    probs = _probs(rng, logits)
    labels = rng.integers(0, probs.shape[1], size=(probs.shape[0], *probs.shape[2:]))
    labels[:, :3, :5] = 255
    assert as_batch(probs, labels)[0].dtype == np.float16  # no copy into float32
    half = _run(kernels, probs, labels, logits)
    single = _run(kernels, probs.astype(np.float32), labels, logits)
    for name in FIELDS:
        a, b = getattr(half, name), getattr(single, name)
        assert a.dtype == b.dtype, name
        if logits and name not in EXACT:  # the table's exp: the last bits may differ
            np.testing.assert_allclose(a, b, rtol=1e-14, atol=0, err_msg=name)
        else:
            np.testing.assert_array_equal(a, b, err_msg=name)
    assert half.max_row_deviation == single.max_row_deviation


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("seed", range(4))
def test_float16_logits_table_and_shifted_paths(seed: int) -> None:
    """Both kernel sets give the same bits, close to a float64 softmax; out-of-range pixels
    (a logit beyond the table) take the shifted path, as float32 logits do."""
    rng = np.random.default_rng(seed)
    n, k, h, w = 3, 6, 50, 90
    x = rng.normal(scale=[2.0, 8.0, 30.0][seed % 3], size=(n, k, h, w))
    far = rng.random((n, h, w)) < 0.02  # a logit outside +-256 on these pixels
    x[:, 1][far] = rng.choice([300.0, -300.0, 60000.0, -60000.0], far.sum())
    x = x.astype(np.float16)
    labels = rng.integers(0, k, size=(n, h, w))
    labels[:, :2, :] = 255
    got = {name: _run(mod, x, labels, True) for name, mod in (("numba", _numba), ("numpy", _numpy))}
    for field in FIELDS:
        a, b = getattr(got["numba"], field), getattr(got["numpy"], field)
        np.testing.assert_array_equal(a, b, err_msg=field)  # bit for bit
    probs = _softmax(x.astype(np.float64))
    scores = got["numba"].scores.reshape(n, h, w)
    expected = np.take_along_axis(probs, labels.clip(0, k - 1)[:, None], axis=1)[:, 0]
    void = labels == 255
    assert np.isnan(scores[void]).all()
    np.testing.assert_allclose(scores[~void], expected[~void], rtol=1e-13, atol=1e-300)
    single = _run(_numba, x.astype(np.float32), labels, True)
    on_far = far.reshape(n, -1) & ~void.reshape(n, -1)
    assert on_far.any()
    np.testing.assert_array_equal(
        got["numba"].scores.reshape(n, -1)[on_far], single.scores.reshape(n, -1)[on_far]
    )


@pytest.mark.parametrize("kernels", [_numba, _numpy], ids=["numba", "numpy"])
def test_bad_float16_values_are_named(kernels):
    probs = np.full((1, 3, 4, 5), 1 / 3, np.float16)
    probs[0, 2, 1, 3] = -0.25
    labels = np.zeros((1, 4, 5), np.uint8)
    pb, lb = as_batch(probs, labels)
    with pytest.raises(ValueError, match=r"got -0\.25 at class 2 of image 0, row 1, column 3"):
        score_batch(
            pb,
            lb,
            kernels=kernels,
            num_classes=3,
            ignore_index=None,
            image_offset=0,
            shape_hw=(4, 5),
            scores_out=np.empty((1, 20), np.float32),
        )
    probs[0, 2, 1, 3] = np.inf
    with pytest.raises(ValueError, match=r"must be finite; got inf at class 2"):
        _run(kernels, probs, labels, True)
