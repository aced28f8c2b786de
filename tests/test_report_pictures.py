"""Report pictures built from class ids (palette PNGs) have the pixels of the RGB way."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from segaudit._colors import class_palette, colorize
from segaudit.report._render import (
    FLAG_COLOR,
    Indexed,
    fit_size,
    flagged_picture,
    flagged_view,
    mask_picture,
    png_data_uri,
    resize_nearest,
)


def _decoded(uri: str) -> np.ndarray:
    png = base64.b64decode(uri.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def _rgb(picture: np.ndarray | Indexed) -> np.ndarray:
    return picture.rgb() if isinstance(picture, Indexed) else picture


def _any_pooled(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A pixel of the small picture is flagged when any pixel of its block is."""
    rows = np.arange(size[0] + 1) * mask.shape[0] // size[0]
    cols = np.arange(size[1] + 1) * mask.shape[1] // size[1]
    out = np.zeros(size, dtype=bool)
    for i in range(size[0]):
        for j in range(size[1]):
            out[i, j] = mask[rows[i] : rows[i + 1], cols[j] : cols[j + 1]].any()
    return out


def _reference(labels, issues, palette, ignore_index, max_side, box):
    """The RGB way: colourise, then fade and paint red per pixel in float32, then the box."""
    size = fit_size(*labels.shape, max_side=max_side)
    out = colorize(resize_nearest(labels, size), palette, ignore_index=ignore_index)
    out = out.astype(np.float32)
    flagged = _any_pooled(issues, size)
    out[~flagged] = (1 - 0.4) * out[~flagged] + 0.4 * 255.0
    out[flagged] = (1 - 0.75) * out[flagged] + 0.75 * np.asarray(FLAG_COLOR)
    out = np.rint(out).astype(np.uint8)
    if box is not None:
        row0, col0, row1, col1 = box
        sy, sx = size[0] / labels.shape[0], size[1] / labels.shape[1]
        width = max(1, max(size) // 64)
        pil = Image.fromarray(out)
        ImageDraw.Draw(pil).rectangle(
            (
                int(col0 * sx) - width,
                int(row0 * sy) - width,
                int(np.ceil(col1 * sx)) + width - 1,
                int(np.ceil(row1 * sy)) + width - 1,
            ),
            outline=(255, 221, 0),
            width=width,
        )
        out = np.asarray(pil)
    return out


CASES = [
    # (dtype, low id, high id (exclusive), classes, ignore_index)
    (np.uint8, 0, 19, 19, 255),
    (np.uint8, 0, 256, 19, 255),
    (np.int64, -3, 30, 21, None),
    (np.int32, 0, 5, 5, 0),
    (np.int16, 0, 300, 300, None),  # more than 256 colours: RGB
    (np.int64, 0, 1 << 17, 4, None),  # ids too far apart for one table
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("seed", range(3))
def test_mask_and_overlay_pixels_match_the_rgb_way(case, seed):
    dtype, low, high, k, ignore = case
    rng = np.random.default_rng(seed)
    h, w = (int(v) for v in rng.integers(1, 90, 2))
    labels = rng.integers(low, high, (h, w)).astype(dtype)
    if ignore is not None and rng.random() < 0.7:
        labels[rng.random((h, w)) < 0.2] = ignore
    issues = rng.random((h, w)) < rng.choice([0.0, 0.05, 0.5])
    palette = class_palette(k)
    max_side = int(rng.choice([8, 40, 512]))
    expected = colorize(
        resize_nearest(labels, fit_size(h, w, max_side=max_side)), palette, ignore_index=ignore
    )
    picture = mask_picture(labels, palette, ignore_index=ignore, max_side=max_side)
    np.testing.assert_array_equal(_rgb(picture), expected)
    np.testing.assert_array_equal(_decoded(png_data_uri(picture)), expected)
    for box in (None, (h // 4, w // 4, h // 4 + 1 + h // 3, w // 4 + 1 + w // 2)):
        reference = _reference(labels, issues, palette, ignore, max_side, box)
        picture = flagged_picture(
            labels, issues, None, palette, ignore_index=ignore, max_side=max_side, box=box
        )
        np.testing.assert_array_equal(_rgb(picture), reference)
        np.testing.assert_array_equal(_decoded(png_data_uri(picture)), reference)
        view = flagged_view(
            labels, issues, None, palette, ignore_index=ignore, max_side=max_side, box=box
        )
        np.testing.assert_array_equal(view, reference)


def test_small_maps_become_palette_pngs():
    labels = np.arange(12, dtype=np.uint8).reshape(3, 4) % 5
    issues = labels == 2
    palette = class_palette(5)
    for picture in (
        mask_picture(labels, palette, ignore_index=None, max_side=512),
        flagged_picture(labels, issues, None, palette, ignore_index=None, max_side=512),
    ):
        assert isinstance(picture, Indexed)
        assert picture.index.dtype == np.uint8 and picture.shape == (3, 4, 3)
        png = base64.b64decode(png_data_uri(picture).split(",", 1)[1])
        assert Image.open(io.BytesIO(png)).mode == "P"


def test_overlay_over_an_image_stays_rgb():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, (20, 30))
    image = rng.integers(0, 256, (20, 30, 3)).astype(np.uint8)
    issues = rng.random((20, 30)) < 0.1
    picture = flagged_picture(
        labels, issues, image, class_palette(3), ignore_index=None, max_side=64
    )
    assert isinstance(picture, np.ndarray) and picture.shape == (20, 30, 3)
    expected = image.astype(np.float32)
    expected[~issues] = 0.6 * expected[~issues] + 102.0
    expected[issues] = 0.25 * expected[issues] + 0.75 * np.asarray(FLAG_COLOR)
    np.testing.assert_array_equal(picture, np.rint(expected).astype(np.uint8))


def test_many_classes_few_present_still_make_a_palette_png():
    labels = np.array([[0, 299, 150], [7, 7, 299]], dtype=np.int64)  # 300 class colours
    palette = class_palette(300)
    picture = mask_picture(labels, palette, ignore_index=None, max_side=512)
    assert isinstance(picture, Indexed) and len(picture.palette) == 4
    np.testing.assert_array_equal(picture.rgb(), colorize(labels, palette))
    wide = np.arange(600, dtype=np.int64).reshape(20, 30) % 300  # 300 colours present
    picture = mask_picture(wide, palette, ignore_index=None, max_side=512)
    assert isinstance(picture, np.ndarray)
    np.testing.assert_array_equal(picture, colorize(wide, palette))
