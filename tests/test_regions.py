from __future__ import annotations

from collections import deque

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from segaudit.kernels import _image_numpy as image_module
from segaudit.kernels._image_numpy import _majority
from segaudit.regions._find import find_issue_regions
from segaudit.regions._image import image_regions
from segaudit.regions._records import ISSUE_TYPES, REGION_DTYPE

COLUMNS = [
    "image",
    "region",
    "bbox_row0",
    "bbox_col0",
    "bbox_row1",
    "bbox_col1",
    "area",
    "given_label",
    "predicted_label",
    "mean_self_confidence",
    "severity",
    "issue_type",
]


def one_hot(predicted, k, confidence=0.9):
    """pred_probs (N, K, H, W) whose argmax is `predicted`, with max prob `confidence`."""
    other = (1 - confidence) / (k - 1)
    probs = np.full((predicted.shape[0], k, *predicted.shape[1:]), other)
    np.put_along_axis(probs, predicted[:, None], confidence, axis=1)
    return probs


def regions(labels, predicted, **kwargs):
    labels, predicted = np.asarray(labels)[None], np.asarray(predicted)[None]
    return find_issue_regions(predicted != labels, labels, predicted=predicted, **kwargs)


def split(h=12, w=12, left=1, right=2, col=6):
    """A label map with class `left` before column `col` and `right` from it on."""
    labels = np.full((h, w), right)
    labels[:, :col] = left
    return labels


@pytest.fixture
def dataset():
    """Three images, one hand-placed mistake of each type (image 2 is clean)."""
    labels = np.zeros((3, 20, 20), dtype=np.int64)
    labels[0, :, :10] = 1
    labels[1, 2:7, 2:7] = 4  # an object where the model sees background
    labels[1, 10:, :10], labels[1, 10:, 10:] = 1, 2
    predicted = labels.copy()
    predicted[0, 3:7, 3:7] = 3  # class 3 labelled as class 1
    predicted[0, 12:17, 12:17] = 2  # an object labelled background
    predicted[1, 2:7, 2:7] = 0
    predicted[1, 10:, 10:12] = 1  # the 1|2 border is two pixels off
    return labels, predicted


def test_one_mistake_of_each_type(dataset):
    labels, predicted = dataset
    df = find_issue_regions(predicted != labels, labels, predicted=predicted)
    assert list(df.columns) == COLUMNS
    got = {(r.image, r.given_label, r.predicted_label): r.issue_type for r in df.itertuples()}
    assert got == {
        (0, 1, 3): "wrong_class",
        (0, 0, 2): "missing_label",
        (1, 4, 0): "spurious_label",
        (1, 2, 1): "boundary",
    }
    row = df[df.issue_type == "boundary"].iloc[0]
    assert (row.bbox_row0, row.bbox_col0, row.bbox_row1, row.bbox_col1) == (10, 10, 20, 12)
    assert row.area == 20
    assert df["mean_self_confidence"].isna().all()
    assert df["severity"].tolist() == df["area"].astype(float).tolist()


def test_ranked_by_severity_then_image_and_region(dataset):
    labels, predicted = dataset
    df = find_issue_regions(predicted != labels, labels, predicted=predicted)
    assert df["severity"].tolist() == [25.0, 25.0, 20.0, 16.0]
    assert df[["image", "region"]].values.tolist() == [[0, 2], [1, 1], [1, 2], [0, 1]]
    assert df.index.tolist() == [0, 1, 2, 3]


def test_severity_is_expected_number_of_wrong_pixels():
    labels = np.zeros((2, 8, 8), int)
    predicted = labels.copy()
    predicted[0, 0:2, 0:2] = 1  # area 4, s = 0.5: severity 2
    predicted[0, 5:8, 5:8] = 1  # area 9, s = 0.9: severity 0.9
    predicted[1, 0:2, 0:2] = 1  # area 4, s = 0.5: ties with image 0, ranks after it
    scores = np.where(predicted != labels, 0.5, 1.0)
    scores[0, 5:8, 5:8] = 0.9
    df = find_issue_regions(predicted != labels, labels, predicted=predicted, pixel_scores=scores)
    assert df[["image", "region"]].values.tolist() == [[0, 1], [1, 1], [0, 2]]
    np.testing.assert_allclose(df["severity"], [2.0, 2.0, 0.9])
    np.testing.assert_allclose(df["mean_self_confidence"], [0.5, 0.5, 0.9])


def test_pred_probs_gives_argmax_and_self_confidence(dataset):
    labels, predicted = dataset
    probs = one_hot(predicted, 5, confidence=0.8)
    df = find_issue_regions(predicted != labels, labels, probs)
    expected = find_issue_regions(
        predicted != labels,
        labels,
        predicted=predicted,
        pixel_scores=np.take_along_axis(probs, labels[:, None], axis=1)[:, 0],
    )
    pd.testing.assert_frame_equal(df, expected)
    np.testing.assert_allclose(df["mean_self_confidence"], 0.05)
    np.testing.assert_allclose(df["severity"], df["area"] * 0.95)


def test_pred_probs_ties_go_to_lowest_class():
    labels = np.zeros((1, 2, 2), int)
    probs = np.zeros((1, 3, 2, 2))
    probs[0, 1:] = 0.5  # classes 1 and 2 tie everywhere
    df = find_issue_regions(np.ones((1, 2, 2), bool), labels, probs)
    assert df["predicted_label"].tolist() == [1]
    assert df["mean_self_confidence"].tolist() == [0.0]


def test_majority_breaks_ties_to_smallest_class():
    labels = np.zeros((1, 1, 4), int)
    predicted = np.array([[[2, 2, 1, 1]]])
    df = find_issue_regions(np.ones((1, 1, 4), bool), labels, predicted=predicted)
    assert df["predicted_label"].tolist() == [1]
    ids = np.array([1, 1, 1, 2, 2, 2])
    assert _majority(ids, np.array([5, -3, 5, 7, 7, 9]), 2).tolist() == [5, 7]


@pytest.mark.parametrize("seed", range(20))
def test_majority_by_table_equals_majority_by_sorting(seed, monkeypatch):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 40))
    ids = np.concatenate([np.arange(1, n + 1), rng.integers(1, n + 1, int(rng.integers(0, 300)))])
    low = int(rng.integers(-4, 4))
    values = rng.integers(low, low + int(rng.integers(1, 5)), ids.size)
    for dtype in (np.int64, np.int16) if low < 0 else (np.uint8, np.int64):
        table = _majority(ids, values.astype(dtype), n)
        monkeypatch.setattr(image_module, "_DENSE_COUNTS", 0)  # the sorting way
        sorting = _majority(ids, values.astype(dtype), n)
        monkeypatch.undo()
        assert table.dtype == sorting.dtype == np.int64
        np.testing.assert_array_equal(table, sorting)


@pytest.mark.parametrize("width", [1, 2])
@pytest.mark.parametrize("shift", [-1, 1])
def test_shifted_border_strip_is_boundary(width, shift):
    labels = split()
    predicted = split(col=6 + shift * width)
    df = regions(labels, predicted)
    assert df["issue_type"].tolist() == ["boundary"]
    assert df["area"].tolist() == [12 * width]


def test_boundary_wins_over_background_types():
    labels = split(left=0, right=3)
    df = regions(labels, split(left=0, right=3, col=4))  # object drawn 2 px too wide
    assert df["issue_type"].tolist() == ["boundary"]
    df = regions(labels, split(left=0, right=3, col=8))  # object drawn 2 px too narrow
    assert df["issue_type"].tolist() == ["boundary"]


def test_outline_of_object_drawn_too_big_is_boundary():
    labels = np.zeros((12, 12), int)
    labels[2:10, 2:10] = 5
    predicted = np.zeros_like(labels)
    predicted[3:9, 3:9] = 5
    df = regions(labels, predicted)
    assert df["issue_type"].tolist() == ["boundary"]
    assert df["area"].tolist() == [64 - 36]


def test_small_isolated_objects_are_not_boundaries():
    labels = np.zeros((9, 9), int)
    labels[3:6, 3:6] = 4
    assert regions(labels, np.zeros_like(labels))["issue_type"].tolist() == ["spurious_label"]
    predicted = np.zeros_like(labels)
    predicted[3:6, 3:6] = 4
    df = regions(np.zeros_like(labels), predicted)
    assert df["issue_type"].tolist() == ["missing_label"]


def test_thick_strip_needs_a_wider_boundary_width():
    labels, predicted = split(), split(col=10)  # a 4-pixel strip
    assert regions(labels, predicted)["issue_type"].tolist() == ["wrong_class"]
    df = regions(labels, predicted, boundary_width=4)
    assert df["issue_type"].tolist() == ["boundary"]


def test_strip_predicted_as_a_third_class_is_not_boundary():
    labels = split()
    predicted = labels.copy()
    predicted[:, 6:8] = 7
    assert regions(labels, predicted)["issue_type"].tolist() == ["wrong_class"]


def test_background_none_types_everything_else_as_wrong_class(dataset):
    labels, predicted = dataset
    df = find_issue_regions(predicted != labels, labels, predicted=predicted, background=None)
    assert sorted(df["issue_type"]) == ["boundary", "wrong_class", "wrong_class", "wrong_class"]


def test_background_id_is_a_parameter():
    labels = np.full((1, 6, 6), 9)
    predicted = labels.copy()
    predicted[0, 1:3, 1:3] = 2
    df = find_issue_regions(predicted != labels, labels, predicted=predicted, background=9)
    assert df["issue_type"].tolist() == ["missing_label"]


def test_connectivity_4_vs_8():
    issues = np.zeros((1, 4, 4), bool)
    issues[0, [0, 1, 2], [0, 1, 2]] = True  # a diagonal line
    labels = np.zeros((1, 4, 4), int)
    predicted = np.where(issues, 1, 0)
    eight = find_issue_regions(issues, labels, predicted=predicted)
    four = find_issue_regions(issues, labels, predicted=predicted, connectivity=1)
    assert eight["area"].tolist() == [3]
    assert (eight.bbox_row1[0], eight.bbox_col1[0]) == (3, 3)
    assert sorted(four["area"]) == [1, 1, 1]
    assert four["region"].tolist() == [1, 2, 3]


def test_min_area_drops_small_regions_and_keeps_ids(dataset):
    labels, predicted = dataset
    issues = predicted != labels
    issues[0, 0, 19] = True  # a single stray pixel, region 1 of image 0
    full = find_issue_regions(issues, labels, predicted=predicted)
    kept = find_issue_regions(issues, labels, predicted=predicted, min_area=17)
    assert full["area"].sum() == issues.sum()
    assert kept["area"].min() >= 17
    assert len(kept) == 3
    merged = kept.merge(full, on=["image", "region"], suffixes=("", "_full"))
    assert (merged["area"] == merged["area_full"]).all()


def test_ignore_index_pixels_never_form_regions():
    labels = np.zeros((1, 5, 5), np.uint8)
    labels[0, :, 2] = 255
    predicted = np.ones((1, 5, 5), int)
    df = find_issue_regions(np.ones((1, 5, 5), bool), labels, predicted=predicted, ignore_index=255)
    assert df["area"].tolist() == [10, 10]  # void column splits the image
    assert df["bbox_col1"].tolist() == [2, 5]


def test_void_border_is_not_a_boundary():
    labels = split(left=1, right=255)
    predicted = labels.copy()
    predicted[:, 4:6] = 2  # a strip of class 1 along the void
    df = regions(labels, predicted, ignore_index=255)
    assert df["issue_type"].tolist() == ["wrong_class"]


def test_class_names_add_name_columns(dataset):
    labels, predicted = dataset
    names = ["bg", "road", "car", "tree", "sign"]
    df = find_issue_regions(predicted != labels, labels, predicted=predicted, class_names=names)
    assert list(df.columns) == [*COLUMNS[:9], "given_name", "predicted_name", *COLUMNS[9:]]
    assert df["given_name"].tolist() == [names[i] for i in df["given_label"]]
    assert df["predicted_name"].tolist() == [names[i] for i in df["predicted_label"]]


def test_no_flagged_pixels_gives_empty_typed_frame():
    labels = np.zeros((2, 4, 4), int)
    df = find_issue_regions(np.zeros((2, 4, 4), bool), labels, predicted=labels)
    assert df.empty
    assert list(df.columns) == COLUMNS
    assert df["area"].dtype == np.int64
    assert df["severity"].dtype == np.float64
    assert df["issue_type"].dtype == object
    df = find_issue_regions(np.zeros((2, 4, 4), bool), labels, predicted=labels, class_names=[])
    assert "given_name" in df.columns


class CountingReads:
    """An array-like that records which images were read."""

    def __init__(self, array):
        self.array, self.shape, self.reads = array, array.shape, []

    def __getitem__(self, i):
        self.reads.append(i)
        return self.array[i]


def test_array_likes_read_one_image_at_a_time(dataset):
    labels, predicted = dataset
    probs = CountingReads(one_hot(predicted, 5))
    issues = (predicted != labels).tolist()
    df = find_issue_regions(issues, CountingReads(labels), probs)
    assert len(df) == 4
    assert probs.reads == [0, 1]  # image 2 has no flagged pixel


def test_inputs_are_not_modified(dataset):
    labels, predicted = dataset
    issues = predicted != labels
    for a in (labels, predicted, issues):
        a.setflags(write=False)
    find_issue_regions(issues, labels, predicted=predicted, pixel_scores=np.ones(labels.shape))


def test_image_regions_returns_records_in_label_order():
    labels = np.zeros((6, 6), int)
    predicted = labels.copy()
    predicted[4:6, 0:2] = 1
    predicted[0, 5] = 1
    out = image_regions(predicted != labels, labels, predicted, image=7)
    assert out.dtype == REGION_DTYPE
    assert out["region"].tolist() == [1, 2]
    assert out["area"].tolist() == [1, 4]
    assert set(out["image"].tolist()) == {7}
    assert [ISSUE_TYPES[t] for t in out["issue_type"]] == ["missing_label"] * 2


def test_regions_are_tight_and_sum_to_flagged_pixels(dataset):
    labels, predicted = dataset
    issues = predicted != labels
    df = find_issue_regions(issues, labels, predicted=predicted)
    assert df["area"].sum() == issues.sum()
    for r in df.itertuples():
        box = issues[r.image, r.bbox_row0 : r.bbox_row1, r.bbox_col0 : r.bbox_col1]
        assert box.sum() >= r.area


# --- errors ---------------------------------------------------------------------------


def args():
    labels = np.zeros((2, 4, 5), int)
    return {"issues": np.ones((2, 4, 5), bool), "labels": labels, "predicted": labels + 1}


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (
            {"predicted": None},
            r"'pred_probs' .* given, or else 'predicted' \(exactly one of the two\)\. Got neither",
        ),
        ({"pred_probs": np.zeros((2, 2, 4, 5))}, r"'pred_probs' .* Got both"),
        ({"issues": np.ones((4, 5), bool)}, r"'issues' .* \(N, H, W\) array\. Got shape \(4, 5\)"),
        ({"issues": np.ones((0, 4, 5), bool)}, r"'issues' .* non-empty .* shape \(0, 4, 5\)"),
        ({"labels": np.zeros((2, 5, 4), int)}, r"'labels' .* shape \(2, 4, 5\) .* \(2, 5, 4\)"),
        ({"predicted": np.zeros((1, 4, 5), int)}, r"'predicted' .* Got shape \(1, 4, 5\)"),
        ({"pixel_scores": np.ones((2, 4))}, r"'pixel_scores' .* Got shape \(2, 4\)"),
        ({"labels": np.zeros((2, 4, 5))}, r"'labels' .* integer array\. Got dtype float64"),
        (
            {"labels": np.full((2, 4, 5), -1)},
            r"class ids >= 0\. Got -1 at image 0, row 0, column 0",
        ),
        ({"connectivity": 3}, r"'connectivity' .* must be 1 or 2\. Got 3 instead"),
        ({"min_area": 0}, r"'min_area' .* integer >= 1\. Got 0 instead"),
        ({"boundary_width": True}, r"'boundary_width' .* Got True instead"),
        ({"boundary_width": 1.5}, r"'boundary_width' .* Got 1.5 instead"),
        ({"background": "0"}, r"'background' .* an integer or None\. Got '0' instead"),
        ({"ignore_index": 2.5}, r"'ignore_index' .* an integer or None\. Got 2.5 instead"),
        ({"predicted": np.ones((2, 4, 5))}, r"'predicted' .* integer array\. Got dtype float64"),
        ({"class_names": ["bg"]}, r"'class_names' .* Got 1 names and class id 1 instead"),
    ],
)
def test_bad_input_is_named(change, match):
    kwargs = {**args(), **change}
    with pytest.raises(ValueError, match=match):
        find_issue_regions(**kwargs)


def test_pixel_scores_with_pred_probs_is_an_error():
    kwargs = args()
    del kwargs["predicted"]
    probs = np.full((2, 2, 4, 5), 0.5)
    with pytest.raises(ValueError, match=r"'pixel_scores' .* None when 'pred_probs' is given"):
        find_issue_regions(**kwargs, pred_probs=probs, pixel_scores=np.ones((2, 4, 5)))


@pytest.mark.parametrize(
    ("shape", "got"), [((2, 1, 4, 5), r"\(2, 1, 4, 5\)"), ((2, 3, 5, 4), r"\(2, 3, 5, 4\)")]
)
def test_bad_pred_probs_shape(shape, got):
    kwargs = args()
    del kwargs["predicted"]
    with pytest.raises(ValueError, match=rf"\(2, K, 4, 5\) .* K >= 2\. Got shape {got}"):
        find_issue_regions(**kwargs, pred_probs=np.zeros(shape))


def test_label_outside_classes_names_value_and_place():
    kwargs = args()
    del kwargs["predicted"]
    kwargs["labels"][1, 2, 3] = 3
    probs = np.full((2, 3, 4, 5), 1 / 3)
    with pytest.raises(ValueError, match=r"integers in 0\.\.2\. Got 3 at image 1, row 2, column 3"):
        find_issue_regions(**kwargs, pred_probs=probs)
    with pytest.raises(ValueError, match=r"0\.\.2 or ignore_index=255\. Got 3 at image 1, row 2"):
        find_issue_regions(**kwargs, pred_probs=probs, ignore_index=255)
    kwargs["labels"][1, 2, 3] = 255
    df = find_issue_regions(**kwargs, pred_probs=probs, ignore_index=255)
    assert df["area"].sum() == 2 * 4 * 5 - 1


# --- properties -----------------------------------------------------------------------


def flood_fill_regions(mask, connectivity):
    """Plain-Python oracle: (area, bbox) of each connected component of `mask`."""
    steps = [(-1, 0), (1, 0), (0, -1), (0, 1)]
    if connectivity == 2:
        steps += [(-1, -1), (-1, 1), (1, -1), (1, 1)]
    seen = np.zeros_like(mask)
    out = []
    for start in zip(*np.nonzero(mask), strict=True):
        if seen[start]:
            continue
        seen[start] = True
        queue, pixels = deque([start]), []
        while queue:
            r, c = queue.popleft()
            pixels.append((r, c))
            for dr, dc in steps:
                q = (r + dr, c + dc)
                inside = 0 <= q[0] < mask.shape[0] and 0 <= q[1] < mask.shape[1]
                if inside and mask[q] and not seen[q]:
                    seen[q] = True
                    queue.append(q)
        rows, cols = zip(*pixels, strict=True)
        out.append((len(pixels), min(rows), min(cols), max(rows) + 1, max(cols) + 1))
    return sorted(out)


@settings(max_examples=60, deadline=None)
@given(
    issues=hnp.arrays(bool, st.tuples(st.integers(1, 3), st.integers(1, 9), st.integers(1, 9))),
    connectivity=st.sampled_from([1, 2]),
    seed=st.integers(0, 2**16),
)
def test_regions_match_a_flood_fill_oracle(issues, connectivity, seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, issues.shape)
    predicted = rng.integers(0, 3, issues.shape)
    df = find_issue_regions(issues, labels, predicted=predicted, connectivity=connectivity)
    assert df["area"].sum() == issues.sum()
    assert set(df["issue_type"]) <= {"boundary", "missing_label", "spurious_label", "wrong_class"}
    for i in range(issues.shape[0]):
        mine = df[df.image == i][["area", "bbox_row0", "bbox_col0", "bbox_row1", "bbox_col1"]]
        got = sorted(tuple(int(v) for v in row) for row in mine.values)
        assert got == flood_fill_regions(issues[i], connectivity)


def issue_types_oracle(issues, labels, predicted, width, connectivity, background, void=None):
    """Plain-Python issue types per region id, straight from the documented rules."""
    from scipy import ndimage

    h, w = labels.shape
    valid = labels != void
    issues = issues & valid
    structure = ndimage.generate_binary_structure(2, connectivity)
    lab, n = ndimage.label(issues, structure=structure)
    border = np.zeros_like(issues)
    for r in range(h):
        for c in range(w):
            for q in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
                inside = 0 <= q[0] < h and 0 <= q[1] < w
                if inside and valid[q] and valid[r, c] and labels[q] != labels[r, c]:
                    border[r, c] = True
    pts = np.argwhere(border)
    types = {}
    for k in range(1, n + 1):
        pixels = np.argwhere(lab == k)
        g = np.bincount(labels[lab == k]).argmax()
        p = np.bincount(predicted[lab == k]).argmax()
        near = [len(pts) and np.abs(pts - x).max(axis=1).min() < width for x in pixels]
        inside = np.pad(lab == k, 1)
        thin = ndimage.distance_transform_cdt(inside, metric="chessboard").max() <= width
        ring = {
            int(labels[r, c])
            for r in range(h)
            for c in range(w)
            if lab[r, c] != k and valid[r, c] and np.abs(pixels - (r, c)).max(axis=1).min() <= width
        }
        if p != g and np.mean(near) >= 0.8 and thin and {g, p} <= ring:
            types[k] = "boundary"
        elif g == background != p:
            types[k] = "missing_label"
        elif g != background == p:
            types[k] = "spurious_label"
        else:
            types[k] = "wrong_class"
    return types


@settings(max_examples=120, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 12), st.integers(1, 12)),
    width=st.integers(1, 3),
    connectivity=st.sampled_from([1, 2]),
    seed=st.integers(0, 2**16),
    void=st.sampled_from([None, 255]),
)
def test_issue_types_match_a_plain_python_oracle(shape, width, connectivity, seed, void):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, (4, 4)).repeat(3, 0).repeat(3, 1)[: shape[0], : shape[1]]
    predicted = np.where(rng.random(shape) < 0.3, rng.integers(0, 4, shape), labels)
    predicted = np.where(rng.random(shape) < 0.5, np.roll(labels, 1, axis=seed % 2), predicted)
    if void is not None:  # void pixels, never predicted
        labels = np.where(rng.random(shape) < 0.15, void, labels)
        predicted = np.where(labels == void, 1, predicted)
    issues = predicted != labels
    df = regions(
        labels, predicted, boundary_width=width, connectivity=connectivity, ignore_index=void
    )
    expected = issue_types_oracle(issues, labels, predicted, width, connectivity, 0, void=void)
    assert dict(zip(df["region"], df["issue_type"], strict=True)) == expected


@pytest.mark.parametrize("seed", range(6))
def test_ring_check_is_the_same_at_once_and_offset_by_offset(monkeypatch, seed):
    from segaudit.kernels import _image_numpy, _numpy
    from segaudit.regions import _image

    monkeypatch.setattr(_image, "get_kernels", lambda: _numpy)  # the twin's two ways
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(5, 40)), int(rng.integers(5, 40)))
    labels = rng.integers(0, 4, shape)
    labels[rng.random(shape) < 0.1] = 255
    predicted = np.where(rng.random(shape) < 0.3, rng.integers(0, 4, shape), labels)
    issues = rng.random(shape) < 0.3
    kwargs = {"ignore_index": 255, "boundary_width": int(rng.integers(1, 4)), "background": 0}
    scores = rng.random(shape)
    at_once = _image.image_regions(issues, labels, predicted, scores, **kwargs)
    monkeypatch.setattr(_image_numpy, "_RING_AT_ONCE", 0)
    one_by_one = _image.image_regions(issues, labels, predicted, scores, **kwargs)
    np.testing.assert_array_equal(at_once, one_by_one)
    assert (at_once["issue_type"] == _image.ISSUE_TYPES.index("boundary")).any() or seed > 2
