"""The torch backend gives the numpy path's summary, on any device."""

from __future__ import annotations

import re
import subprocess
import sys
from types import ModuleType
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch not installed: pip install 'segaudit[torch]'")

import segaudit  # noqa: E402
from segaudit.kernels import _torch  # noqa: E402
from segaudit.kernels._batch import (  # noqa: E402
    BatchSummary,
    argmax_dtype,
    as_batch,
    summarise_batch,
)
from segaudit.kernels._choice import KERNEL_ENV, get_kernels  # noqa: E402
from segaudit.kernels._protocol import TILE  # noqa: E402
from segaudit.kernels._torch import (  # noqa: E402
    is_tensor,
    summarise_tensor,
    to_numpy,
)

# Exact results on random (often noisy) data: the set-up check's warning is
# beside the point here (it is tested in test_sanity.py).
pytestmark = [
    pytest.mark.requires_torch,
    pytest.mark.filterwarnings("ignore::segaudit.SetupWarning"),
]

DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
    ),
]
TORCH_DTYPES = {np.float16: torch.float16, np.float32: torch.float32, np.float64: torch.float64}


@pytest.fixture(params=["numba", "numpy"])
def kernels(request: pytest.FixtureRequest) -> ModuleType:
    """Both kernels of the numpy path: the torch backend must match each."""
    return get_kernels(request.param)


def make_probs(
    rng: np.random.Generator, n: int, k: int, h: int, w: int, dtype: Any, *, ties: bool = False
) -> np.ndarray:
    """Random probabilities; with `ties`, values from a few levels so argmax ties are common."""
    if ties:
        q = rng.integers(0, 3, (n, k, h, w)).astype(np.float64)
        q[:, 0] += q.sum(axis=1) == 0
    else:
        q = rng.random((n, k, h, w))
    return (q / q.sum(axis=1, keepdims=True)).astype(dtype)


def make_labels(
    rng: np.random.Generator, n: int, k: int, h: int, w: int, ignore_index: int | None
) -> np.ndarray:
    """Random labels, about one pixel in eight void when `ignore_index` is set."""
    labels = rng.integers(0, k, (n, h, w))
    if ignore_index is not None:
        labels[rng.random((n, h, w)) < 0.125] = ignore_index
    return labels


def numpy_path(
    probs: np.ndarray, labels: np.ndarray, kernels: ModuleType, **opts: Any
) -> tuple[BatchSummary, np.ndarray]:
    """The numpy path's summary and full argmax."""
    n, _, h, w = probs.shape
    pb, lb = as_batch(probs, labels)
    argmax = np.empty((n, h * w), dtype=np.int32)
    opts.setdefault("ignore_index", None)
    opts.setdefault("from_logits", False)
    summary = summarise_batch(
        pb,
        lb,
        kernels=kernels,
        num_classes=probs.shape[1],
        image_offset=0,
        shape_hw=(h, w),
        argmax_out=argmax,
        **opts,
    )
    return summary, argmax


def torch_path(probs: Any, labels: Any, **opts: Any) -> tuple[BatchSummary, np.ndarray]:
    """`summarise_tensor` with the numpy path's defaults and the full argmax."""
    k = probs.shape[1]
    opts.setdefault("ignore_index", None)
    opts.setdefault("from_logits", False)
    summary, argmax = summarise_tensor(
        probs,
        labels,
        num_classes=k,
        image_offset=0,
        shape_hw=tuple(probs.shape[2:]),
        keep_argmax=True,
        **opts,
    )
    assert argmax is not None
    return summary, argmax


def bits(a: np.ndarray) -> np.ndarray:
    """Floats as their bit patterns, so that NaN == NaN and -0.0 != 0.0."""
    return a.view(np.dtype(f"u{a.dtype.itemsize}"))


def assert_same(got: BatchSummary, ref: BatchSummary, *, exact: bool = True) -> None:
    """Bit for bit when `exact`; else (logits) the same masks and nearly the same floats.

    The row-sum deviation is compared exactly only where it can be: the compiled
    kernel adds a row in the probabilities' type, its numpy twin in float64.
    """
    for name in ("scores", "disagree", "max_prob", "argmax", "sums", "counts"):
        a, b = getattr(got, name), getattr(ref, name)
        assert (a.dtype, a.shape) == (b.dtype, b.shape), name
    np.testing.assert_array_equal(got.disagree, ref.disagree)
    np.testing.assert_array_equal(got.argmax, ref.argmax)
    np.testing.assert_array_equal(got.counts, ref.counts)
    if exact:
        np.testing.assert_array_equal(bits(got.scores), bits(ref.scores))
        np.testing.assert_array_equal(bits(got.max_prob), bits(ref.max_prob))
        np.testing.assert_array_equal(bits(got.sums), bits(ref.sums))
        assert got.max_row_deviation == pytest.approx(ref.max_row_deviation, rel=0, abs=1e-6)
    else:
        np.testing.assert_array_equal(np.isnan(got.scores), np.isnan(ref.scores))
        np.testing.assert_allclose(got.scores, ref.scores, rtol=1e-14, atol=0)
        np.testing.assert_allclose(got.max_prob, ref.max_prob, rtol=1e-14, atol=0)
        np.testing.assert_allclose(got.sums, ref.sums, rtol=1e-13, atol=0)
        assert got.max_row_deviation == ref.max_row_deviation == 0.0


def assert_same_deviation(
    got: BatchSummary, probs: np.ndarray, labels: np.ndarray, **opts: Any
) -> None:
    """Bit for bit against the compiled kernel, the default."""
    ref, _ = numpy_path(probs, labels, get_kernels("numba"), **opts)
    assert got.max_row_deviation == ref.max_row_deviation


# ---------------------------------------------------------------- same summary


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("ignore_index", [None, 255])
@pytest.mark.parametrize("ties", [False, True])
def test_probabilities_bit_for_bit(
    kernels: ModuleType, dtype: Any, ignore_index: int | None, ties: bool
) -> None:
    rng = np.random.default_rng(0)
    # 3 images of 70 x 90 pixels: more than one tile per image in the numpy path
    probs = make_probs(rng, 3, 5, 70, 90, dtype, ties=ties)
    labels = make_labels(rng, 3, 5, 70, 90, ignore_index)
    assert TILE < 70 * 90
    ref, ref_argmax = numpy_path(probs, labels, kernels, ignore_index=ignore_index)
    got, got_argmax = torch_path(
        torch.from_numpy(probs), torch.from_numpy(labels), ignore_index=ignore_index
    )
    assert_same(got, ref)
    assert_same_deviation(got, probs, labels, ignore_index=ignore_index)
    assert got_argmax.dtype == np.int16
    np.testing.assert_array_equal(got_argmax, ref_argmax)
    if ties:
        assert (np.sort(probs, axis=1)[:, -1] == np.sort(probs, axis=1)[:, -2]).any()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ignore_index", [None, 255])
def test_logits_same_masks(kernels: ModuleType, dtype: Any, ignore_index: int | None) -> None:
    rng = np.random.default_rng(1)
    logits = (rng.standard_normal((2, 6, 40, 50)) * 4).astype(dtype)
    labels = make_labels(rng, 2, 6, 40, 50, ignore_index)
    opts = {"ignore_index": ignore_index, "from_logits": True}
    ref, ref_argmax = numpy_path(logits, labels, kernels, **opts)
    got, got_argmax = torch_path(torch.from_numpy(logits), torch.from_numpy(labels), **opts)
    assert got.scores.dtype == np.float64
    assert_same(got, ref, exact=False)
    np.testing.assert_array_equal(got_argmax, ref_argmax)


def test_logits_may_be_negative_and_huge() -> None:
    logits = np.array([[[[-1e4]], [[-3.0]], [[5e3]]]], dtype=np.float32)
    got, _ = torch_path(torch.from_numpy(logits), np.array([[[1]]]), from_logits=True)
    ref, _ = numpy_path(logits, np.array([[[1]]]), get_kernels("numpy"), from_logits=True)
    assert got.scores[0, 0] == 0.0
    assert_same(got, ref, exact=False)


@pytest.mark.parametrize(
    "label_dtype",
    [np.uint8, np.int8, np.int16, np.int32, np.int64, np.uint16, np.uint32, np.float32, np.float64],
)
@pytest.mark.parametrize("as_tensor", [True, False])
def test_label_types(kernels: ModuleType, label_dtype: Any, as_tensor: bool) -> None:
    rng = np.random.default_rng(2)
    probs = make_probs(rng, 2, 4, 9, 11, np.float32)
    labels = make_labels(rng, 2, 4, 9, 11, 100).astype(label_dtype)
    ref, _ = numpy_path(probs, labels, kernels, ignore_index=100)
    given = torch.from_numpy(labels) if as_tensor else labels
    got, _ = torch_path(torch.from_numpy(probs), given, ignore_index=100)
    assert_same(got, ref)


def test_bool_labels_and_read_only_numpy_labels(kernels: ModuleType) -> None:
    rng = np.random.default_rng(3)
    probs = make_probs(rng, 2, 2, 8, 8, np.float32)
    labels = rng.random((2, 8, 8)) < 0.5
    labels.flags.writeable = False
    ref, _ = numpy_path(probs, labels, kernels)
    got, _ = torch_path(torch.from_numpy(probs), labels)  # no "not writable" warning
    assert_same(got, ref)
    got, _ = torch_path(torch.from_numpy(probs), torch.from_numpy(labels.copy()))
    assert_same(got, ref)


def test_bfloat16_matches_float32_path(kernels: ModuleType) -> None:
    rng = np.random.default_rng(4)
    probs = torch.from_numpy(make_probs(rng, 2, 3, 10, 12, np.float32)).to(torch.bfloat16)
    labels = make_labels(rng, 2, 3, 10, 12, None)
    ref, _ = numpy_path(probs.float().numpy(), labels, kernels)
    got, _ = torch_path(probs, labels)
    assert got.scores.dtype == np.float32
    assert_same(got, ref)


def test_many_classes_use_wider_index(kernels: ModuleType) -> None:
    rng = np.random.default_rng(5)
    probs = make_probs(rng, 1, 300, 4, 5, np.float32)
    labels = make_labels(rng, 1, 300, 4, 5, None)
    ref, ref_argmax = numpy_path(probs, labels, kernels)
    got, got_argmax = torch_path(torch.from_numpy(probs), torch.from_numpy(labels))
    assert got.argmax.dtype == np.int32
    assert_same(got, ref)
    np.testing.assert_array_equal(got_argmax, ref_argmax)


def test_argmax_dtype_holds_the_void_sentinel() -> None:
    assert argmax_dtype(2) == np.int16
    assert argmax_dtype(32768) == np.int16
    assert argmax_dtype(32769) == np.int32
    probs = torch.full((1, 2, 1, 3), 0.5)
    _, argmax = torch_path(probs, torch.tensor([[[0, 9, 1]]]), ignore_index=9)
    np.testing.assert_array_equal(argmax, [[0, -1, 0]])


def test_void_pixels_may_hold_anything(kernels: ModuleType) -> None:
    probs = np.full((1, 3, 2, 2), 1 / 3, dtype=np.float32)
    probs[0, :, 0, 1] = [np.nan, -np.inf, -2.0]
    labels = np.array([[[0, 255], [1, 2]]])
    ref, _ = numpy_path(probs, labels, kernels, ignore_index=255)
    got, _ = torch_path(torch.from_numpy(probs), torch.from_numpy(labels), ignore_index=255)
    assert_same(got, ref)
    assert np.isnan(got.scores[0, 1])
    assert got.counts.sum() == 3


def test_negative_zero_score_is_positive_zero(kernels: ModuleType) -> None:
    probs = np.array([[[[-0.0]], [[1.0]]]], dtype=np.float32)
    ref, _ = numpy_path(probs, np.array([[[0]]]), kernels)
    got, _ = torch_path(torch.from_numpy(probs), torch.tensor([[[0]]]))
    assert bits(got.scores)[0, 0] == 0
    assert_same(got, ref)


def test_views_grad_and_layout() -> None:
    rng = np.random.default_rng(6)
    probs = make_probs(rng, 2, 4, 6, 7, np.float32)
    labels = make_labels(rng, 2, 4, 6, 7, None)
    ref, _ = numpy_path(probs, labels, get_kernels("numpy"))
    channels_last = torch.from_numpy(probs).to(memory_format=torch.channels_last)
    got, _ = torch_path(channels_last.requires_grad_(), torch.from_numpy(labels))
    assert_same(got, ref)
    flat = torch.from_numpy(probs).reshape(2, 4, 42)
    got, _ = summarise_tensor(
        flat,
        labels.reshape(2, 42),
        num_classes=4,
        ignore_index=None,
        from_logits=False,
        image_offset=0,
        shape_hw=(6, 7),
    )
    assert_same(got, ref)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("from_logits", [False, True])
def test_inputs_are_not_modified(dtype: Any, from_logits: bool) -> None:
    rng = np.random.default_rng(11)
    probs = torch.from_numpy(make_probs(rng, 2, 3, 6, 5, np.float64)).to(dtype)
    labels = torch.from_numpy(make_labels(rng, 2, 3, 6, 5, 255))
    before = probs.clone(), labels.clone()
    torch_path(probs, labels, ignore_index=255, from_logits=from_logits)
    assert torch.equal(probs, before[0]) and torch.equal(labels, before[1])


def test_outputs_go_to_given_buffers() -> None:
    rng = np.random.default_rng(7)
    probs = make_probs(rng, 2, 3, 5, 5, np.float32)
    labels = make_labels(rng, 2, 3, 5, 5, 255)
    ref, ref_argmax = numpy_path(probs, labels, get_kernels("numpy"), ignore_index=255)
    scores = np.empty((2, 25), dtype=np.float64)
    disagree = np.empty((2, 25), dtype=np.bool_)
    argmax = np.empty((2, 25), dtype=np.int32)
    got, full = summarise_tensor(
        torch.from_numpy(probs),
        labels,
        num_classes=3,
        ignore_index=255,
        from_logits=False,
        image_offset=0,
        shape_hw=(5, 5),
        scores_out=scores,
        disagree_out=disagree,
        argmax_out=argmax,
    )
    assert got.scores is scores and got.disagree is disagree and full is argmax
    np.testing.assert_array_equal(bits(scores), bits(ref.scores.astype(np.float64)))
    np.testing.assert_array_equal(disagree, ref.disagree)
    np.testing.assert_array_equal(argmax, ref_argmax)
    assert got.max_prob.dtype == np.float64  # as the numpy path: m takes the scores' type


def test_no_argmax_unless_asked() -> None:
    probs = torch.full((1, 2, 2, 2), 0.5)
    summary, full = summarise_tensor(
        probs,
        np.zeros((1, 2, 2), np.int64),
        num_classes=2,
        ignore_index=None,
        from_logits=False,
        image_offset=0,
        shape_hw=(2, 2),
        scores_dtype=np.float64,
    )
    assert full is None
    assert summary.scores.dtype == np.float64


@pytest.mark.parametrize(
    "budget", [3, 12, 65, 1 << 16], ids=["row-pieces", "bands", "images", "all"]
)
@pytest.mark.parametrize("from_logits", [False, True])
def test_chunking_never_changes_results(
    monkeypatch: pytest.MonkeyPatch, budget: int, from_logits: bool
) -> None:
    monkeypatch.setattr(_torch, "CPU_CHUNK_PIXELS", budget)
    rng = np.random.default_rng(12)
    probs = make_probs(rng, 5, 4, 6, 5, np.float32, ties=True)
    if from_logits:
        probs = np.log(probs + 0.01)
    labels = make_labels(rng, 5, 4, 6, 5, 255)
    opts = {"ignore_index": 255, "from_logits": from_logits}
    ref, ref_argmax = numpy_path(probs, labels, get_kernels("numba"), **opts)
    got, got_argmax = torch_path(torch.from_numpy(probs), torch.from_numpy(labels), **opts)
    assert_same(got, ref, exact=not from_logits)
    np.testing.assert_array_equal(got_argmax, ref_argmax)


@pytest.mark.parametrize(
    ("n", "h", "w", "budget"),
    [(5, 6, 5, 3), (5, 6, 5, 12), (5, 6, 5, 65), (2, 3, 4, 1), (3, 1, 7, 100)],
)
def test_chunks_cover_every_pixel_once_in_order(n: int, h: int, w: int, budget: int) -> None:
    seen = []
    for i0, i1, r0, r1, c0, c1 in _torch._chunks(n, h, w, budget):
        assert 0 < (i1 - i0) * (r1 - r0) * (c1 - c0) <= max(budget, 1)
        assert (c0, c1) == (0, w) or r1 == r0 + 1
        seen += [(i, r, c) for i in range(i0, i1) for r in range(r0, r1) for c in range(c0, c1)]
    assert seen == [(i, r, c) for i in range(n) for r in range(h) for c in range(w)]


@pytest.mark.parametrize("device", DEVICES)
def test_on_each_device(device: str) -> None:
    rng = np.random.default_rng(8)
    probs = make_probs(rng, 3, 7, 33, 65, np.float32, ties=True)
    labels = make_labels(rng, 3, 7, 33, 65, 255)
    ref, ref_argmax = numpy_path(probs, labels, get_kernels("numba"), ignore_index=255)
    on_device = torch.from_numpy(probs).to(device)
    for given in (torch.from_numpy(labels).to(device), labels):
        got, argmax = torch_path(on_device, given, ignore_index=255)
        assert_same(got, ref)
        np.testing.assert_array_equal(argmax, ref_argmax)
    logits = torch.from_numpy(np.log(probs + 1e-3)).to(device)
    opts = {"ignore_index": 255, "from_logits": True}
    ref, _ = numpy_path(logits.cpu().numpy(), labels, get_kernels("numba"), **opts)
    got, _ = torch_path(logits, labels, **opts)
    assert_same(got, ref, exact=False)


# ---------------------------------------------------------------- same errors


def message_of(probs: np.ndarray, labels: np.ndarray, kernels: ModuleType, **opts: Any) -> str:
    """The numpy path's error message for this input."""
    _, _, h, w = probs.shape
    pb, lb = as_batch(probs, labels)
    with pytest.raises(ValueError) as info:
        summarise_batch(
            pb, lb, kernels=kernels, num_classes=probs.shape[1], shape_hw=(h, w), **opts
        )
    return str(info.value)


def clean_batch(dtype: Any = np.float32) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(9)
    return make_probs(rng, 3, 4, 5, 6, dtype), make_labels(rng, 3, 4, 5, 6, None)


def _bad_label(p: np.ndarray, y: np.ndarray) -> None:
    y[1, 2, 3] = 4


def _void_label_without_ignore(p: np.ndarray, y: np.ndarray) -> None:
    y[2, 0, 1] = 255
    y[2, 4, 5] = -1


def _fractional_label(p: np.ndarray, y: np.ndarray) -> None:
    y[1, 1, 1] = 2.5


def _nan_prob(p: np.ndarray, y: np.ndarray) -> None:
    p[2, 3, 4, 5] = np.nan


def _inf_prob(p: np.ndarray, y: np.ndarray) -> None:
    p[0, 1, 0, 0] = np.inf
    p[1, 2, 0, 0] = np.nan


def _negative_prob(p: np.ndarray, y: np.ndarray) -> None:
    p[1, 2, 2, 2] = -0.25
    p[2, 0, 0, 0] = np.nan


def _label_before_prob(p: np.ndarray, y: np.ndarray) -> None:
    p[1, 0, 1, 1] = np.nan
    y[1, 1, 1] = 9


CORRUPTIONS = [
    _bad_label,
    _void_label_without_ignore,
    _fractional_label,
    _nan_prob,
    _inf_prob,
    _negative_prob,
    _label_before_prob,
]


@pytest.mark.parametrize("corrupt", CORRUPTIONS, ids=lambda f: f.__name__.strip("_"))
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_errors_match_numpy_path(kernels: ModuleType, corrupt: Any, dtype: Any) -> None:
    probs, labels = clean_batch(dtype)
    labels = labels.astype(np.float64 if corrupt is _fractional_label else np.int64)
    corrupt(probs, labels)
    opts = {"ignore_index": None, "from_logits": False, "image_offset": 10, "where": " in b"}
    expected = message_of(probs, labels, kernels, **opts)
    assert expected.startswith(("labels", "pred_probs")) and "image 1" in expected
    with pytest.raises(ValueError, match=re.escape(expected)):
        summarise_tensor(
            torch.from_numpy(probs),
            torch.from_numpy(labels),
            num_classes=4,
            shape_hw=(5, 6),
            **opts,
        )


def test_error_messages_read_well() -> None:
    probs, labels = clean_batch()
    labels[1, 2, 3] = 7
    with pytest.raises(
        ValueError,
        match=re.escape(
            "labels must be integers in 0..3 or ignore_index=255; got 7 at "
            "image 1, row 2, column 3."
        ),
    ):
        torch_path(torch.from_numpy(probs), torch.from_numpy(labels), ignore_index=255)
    probs, labels = clean_batch()
    probs[0, 2, 4, 1] = -0.5
    with pytest.raises(
        ValueError,
        match=re.escape(
            "pred_probs must be probabilities >= 0; got -0.5 at class 2 of "
            "image 0, row 4, column 1. If these are raw model outputs, pass from_logits=True."
        ),
    ):
        torch_path(torch.from_numpy(probs), torch.from_numpy(labels))
    probs[0, 2, 4, 1] = -np.inf
    with pytest.raises(ValueError, match="pred_probs must be finite; got -inf"):
        torch_path(torch.from_numpy(probs), torch.from_numpy(labels), from_logits=True)


def test_first_problem_of_a_pixel_follows_the_compiled_kernel(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A negative value at a lower class than a NaN of the same pixel: the compiled
    # kernel reports the negative one (it scans classes in order).
    monkeypatch.delenv(KERNEL_ENV, raising=False)
    probs, labels = clean_batch()
    probs[0, 1, 0, 0] = -0.5
    probs[0, 3, 0, 0] = np.nan
    expected = message_of(
        probs, labels, get_kernels("numba"), ignore_index=None, from_logits=False, image_offset=0
    )
    assert "class 1" in expected
    with pytest.raises(ValueError, match=re.escape(expected)):
        torch_path(torch.from_numpy(probs), torch.from_numpy(labels))


def test_bfloat16_error_names_the_value() -> None:
    probs = torch.full((1, 2, 1, 2), 0.5, dtype=torch.bfloat16)
    probs[0, 1, 0, 1] = float("nan")
    with pytest.raises(ValueError, match="got nan at class 1 of image 0, row 0"):
        torch_path(probs, torch.zeros((1, 1, 2), dtype=torch.int64))


# ---------------------------------------------------------------- helpers


def test_is_tensor() -> None:
    assert is_tensor(torch.zeros(2))
    assert not is_tensor(np.zeros(2))
    assert not is_tensor([0.0])


def test_is_tensor_does_not_import_torch() -> None:
    code = (
        "import sys, numpy as np\n"
        "from segaudit.kernels._torch import is_tensor\n"
        "assert not is_tensor(np.zeros(2))\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_to_numpy() -> None:
    t = torch.tensor([1.5, -2.0], dtype=torch.bfloat16)
    out = to_numpy(t)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [1.5, -2.0])
    np.testing.assert_array_equal(to_numpy([1, 2]), [1, 2])
    assert to_numpy(torch.ones(2, requires_grad=True)).dtype == np.float32


# ---------------------------------------------------------------- public API


@pytest.mark.parametrize(
    "opts",
    [{}, {"ignore_index": 255}, {"from_logits": True}, {"downsample": 2}],
    ids=["probs", "ignore", "logits", "downsample"],
)
def test_find_label_issues_on_tensors(opts: dict[str, Any]) -> None:
    rng = np.random.default_rng(10)
    probs = make_probs(rng, 4, 5, 16, 24, np.float32)
    if opts.get("from_logits"):
        probs = np.log(probs)
    labels = make_labels(rng, 4, 5, 16, 24, opts.get("ignore_index"))
    expected = segaudit.find_label_issues(labels, probs, verbose=False, batch_size=1000, **opts)
    got = segaudit.find_label_issues(
        torch.from_numpy(labels), torch.from_numpy(probs), verbose=False, batch_size=1000, **opts
    )
    assert isinstance(got, np.ndarray)
    assert expected.any()
    np.testing.assert_array_equal(got, expected)


def test_quality_scores_on_tensors() -> None:
    rng = np.random.default_rng(13)
    probs = make_probs(rng, 3, 4, 8, 12, np.float32)
    labels = make_labels(rng, 3, 4, 8, 12, 255)
    opts = {"ignore_index": 255, "verbose": False}
    expected = segaudit.get_label_quality_scores(labels, probs, **opts)
    got = segaudit.get_label_quality_scores(
        torch.from_numpy(labels), torch.from_numpy(probs), **opts
    )
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])


def test_bfloat16_tensors_through_the_api() -> None:
    # bfloat16 rows sum to 1 only to bfloat16 precision: no row-sum warning for them
    rng = np.random.default_rng(14)
    probs = torch.from_numpy(make_probs(rng, 3, 19, 16, 24, np.float32)).to(torch.bfloat16)
    labels = make_labels(rng, 3, 19, 16, 24, 255)
    got = segaudit.find_label_issues(
        torch.from_numpy(labels), probs, ignore_index=255, verbose=False
    )
    with pytest.warns(UserWarning, match="do not sum to 1"):  # float32 holding bfloat16 values
        expected = segaudit.find_label_issues(
            labels, probs.float().numpy(), ignore_index=255, verbose=False
        )
    np.testing.assert_array_equal(got, expected)
