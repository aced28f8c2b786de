"""Tests for the self-contained HTML report (`segaudit.report`)."""

from __future__ import annotations

import base64
import hashlib
import io
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import segaudit.report
from _browser import launch
from segaudit.report import (
    ReportImage,
    _context,
    _lists,
    _sections,
    count_pairs,
    read_mask_palette,
    write_report,
)
from segaudit.report._metrics import class_metrics
from segaudit.report._render import FLAG_COLOR, VOID_COLOR, default_palette, fit_size
from segaudit.report._script import SCRIPT

IGNORE = 255
NAMES = ["background", "<b>car</b>", "road & lane", 'sky "blue"']
COLORS = [(10, 20, 30), (200, 0, 200), (0, 200, 0), (0, 0, 250)]


# --------------------------------------------------------------------------- helpers


def make_item(stem: str, score: float, shape=(24, 32), *, seed: int = 0, photo=False):
    rng = np.random.default_rng(seed)
    height, width = shape
    labels = np.zeros(shape, dtype=np.int64)
    labels[height // 4 : height // 2, width // 4 : width // 2] = 1
    labels[height // 2 :, :] = 2
    labels[: height // 8, :] = 3
    labels[-2:, -2:] = IGNORE
    predicted = np.where(labels == IGNORE, 0, labels)
    predicted[height // 4 : height // 3, width // 4 : width // 3] = 3
    issues = (predicted != labels) & (labels != IGNORE)
    image = rng.integers(0, 256, (*shape, 3), dtype=np.uint8) if photo else None
    return ReportImage(stem, score, int(issues.sum()), labels, predicted, issues, image)


def region_rows(rows):
    columns = [
        "stem",
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
    return pd.DataFrame(rows, columns=columns)


@pytest.fixture
def inputs():
    images = [
        make_item("plain", 0.8),
        make_item('odd <"stem">', 0.2, photo=True, seed=1),
        make_item("wide", 0.5, shape=(40, 600)),  # downscaled to 512 wide
    ]
    regions = region_rows(
        [
            ("plain", 6, 8, 8, 10, 4, 1, 3, 0.1, 2.0, "wrong_class"),
            ('odd <"stem">', 6, 8, 8, 10, 4, 1, 3, 0.2, 5.0, "wrong_class"),
            ("elsewhere", 0, 0, 3, 3, 9, IGNORE, 2, np.nan, 1.0, "missing_label"),
            ("wide", 10, 150, 13, 200, 150, "<b>car</b>", 'sky "blue"', 0.3, 3.0, "boundary"),
        ]
    )
    confusions = pd.DataFrame(
        {
            "given_label": ["road & lane", "<b>car</b>"],
            "predicted_label": ["background", 'sky "blue"'],
            "num_pixel_issues": [12, 1234567],
        }
    )
    per_class = pd.DataFrame(
        {
            "class": NAMES,
            "pixels": [1234567, 20, 300, 4],
            "fraction_flagged": [0.123456, 0.0, np.nan, 1.0],
        }
    )
    summary = {"images": 3, "pixels <all>": 20592, "flagged": 0.25}
    return dict(
        images=images,
        regions=regions,
        confusions=confusions,
        per_class=per_class,
        summary=summary,
        class_names=NAMES,
        ignore_index=IGNORE,
        title="Audit <of> & report",
    )


class _Tags(HTMLParser):
    """Collect every start tag with its attributes, the text, and the scripts' text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"
        if self._in_script:
            self.scripts.append("")

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts[-1] += data
        else:
            self.text.append(data)


def parse(path: Path) -> _Tags:
    parser = _Tags()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def images_of(parsed: _Tags, css: str | None = None):
    return [a for t, a in parsed.tags if t == "img" and (css is None or a["class"] == css)]


def decode_png(uri: str) -> np.ndarray:
    prefix = "data:image/png;base64,"
    assert uri.startswith(prefix)
    with Image.open(io.BytesIO(base64.b64decode(uri[len(prefix) :], validate=True))) as pil:
        assert pil.format == "PNG"
        return np.asarray(pil.convert("RGB"))


@pytest.fixture
def report(tmp_path, inputs) -> Path:
    return write_report(tmp_path / "report.html", **inputs)


# --------------------------------------------------------------------------- content


def test_public_api():
    assert segaudit.report.__all__ == [
        "ReportImage",
        "count_pairs",
        "read_mask_palette",
        "write_report",
    ]


def test_returns_path_and_sections(report, tmp_path):
    assert report == tmp_path / "report.html"
    parsed = parse(report)
    ids = {a.get("id") for _, a in parsed.tags}
    assert {"summary", "legend", "per-class", "confusions", "images", "pictures", "regions"} <= ids
    assert "model" not in ids  # no model_confusion given
    text = report.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert "<title>Audit &lt;of&gt; &amp; report</title>" in text


def test_all_text_is_escaped(report):
    text = report.read_text(encoding="utf-8")
    assert "<b>" not in text and "<of>" not in text and '<"stem">' not in text
    assert "&lt;b&gt;car&lt;/b&gt;" in text
    parsed = parse(report)
    allowed = {
        "html",
        "head",
        "meta",
        "title",
        "style",
        "body",
        "header",
        "h1",
        "h2",
        "h3",
        "p",
        "nav",
        "a",
        "main",
        "section",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
        "ul",
        "li",
        "span",
        "article",
        "div",
        "figure",
        "img",
        "figcaption",
        "script",
        "button",
        "label",
        "select",
        "option",
        "input",
    }
    assert {tag for tag, _ in parsed.tags} <= allowed
    stems = {a["data-stem"] for a in images_of(parsed)}
    assert stems == {"plain", 'odd <"stem">', "wide"}
    assert 'sky "blue"' in "".join(parsed.text)


def _csp(parsed: _Tags) -> dict[str, str]:
    metas = [a for t, a in parsed.tags if t == "meta" and a.get("http-equiv")]
    assert len(metas) == 1 and metas[0]["http-equiv"] == "Content-Security-Policy"
    return dict(part.strip().split(" ", 1) for part in metas[0]["content"].split(";"))


def test_self_contained(report):
    parsed = parse(report)
    assert not [t for t, _ in parsed.tags if t in {"link", "iframe", "object", "embed", "form"}]
    scripts = [a for t, a in parsed.tags if t == "script"]
    assert scripts == [{}]  # one inline script, no src
    assert parsed.scripts == [SCRIPT]
    for _, attrs in parsed.tags:
        for name in ("src", "href", "action"):
            value = attrs.get(name)
            assert value is None or value.startswith(("data:image/png;base64,", "#"))
        assert not [name for name in attrs if name.startswith("on")]  # no inline handlers
    csp = _csp(parsed)
    assert csp["default-src"] == "'none'" and csp["img-src"] == "data:"
    digest = base64.b64encode(hashlib.sha256(parsed.scripts[0].encode()).digest()).decode()
    assert csp["script-src"] == f"'sha256-{digest}'"  # this script and nothing else
    assert "http://" not in report.read_text() and "https://" not in report.read_text()


def test_images_ranked_worst_first(report):
    rows = [a for t, a in parse(report).tags if t == "article"]
    assert [(a["data-rank"], a["data-stem"]) for a in rows] == [
        ("1", 'odd <"stem">'),
        ("2", "wide"),
        ("3", "plain"),
    ]


def test_img_tags_and_png_sizes(report, inputs):
    parsed = parse(report)
    shapes = {item.stem: item.labels.shape for item in inputs["images"]}
    for css in ("given", "predicted", "flagged"):
        tags = images_of(parsed, css)
        assert len(tags) == 3
        for attrs in tags:
            expected = fit_size(*shapes[attrs["data-stem"]], max_side=512)
            assert decode_png(attrs["src"]).shape == (*expected, 3)
            assert attrs["alt"]
            assert int(attrs["width"]) % expected[1] == 0
    assert decode_png(images_of(parsed, "given")[1]["src"]).shape == (34, 512, 3)
    crops = images_of(parsed, "crop")
    # the "elsewhere" region has no picture: left out, and the note says so
    assert [(a["data-region"], a["data-stem"]) for a in crops] == [
        ("1", 'odd <"stem">'),
        ("2", "wide"),
        ("3", "plain"),
    ]
    # box rows 6:8 padded by 4 -> 2:12; cols 8:10 -> 4:14
    assert decode_png(crops[0]["src"]).shape == (10, 10, 3)
    # box rows 10:13, cols 150:200 (pad 12) inside a 40 x 600 image -> rows 0:25, cols 138:212
    assert decode_png(crops[1]["src"]).shape == (25, 74, 3)
    assert len(images_of(parsed)) == 3 * 3 + 3
    text = report.read_text()
    assert "elsewhere" not in text and "no crop" not in text
    assert "Showing 3 of 4 regions" in text and "1 regions of images without pictures" in text
    rows = [a for t, a in parsed.tags if t == "tr" and a.get("class") == "region"]
    assert [a["data-region"] for a in rows] == [a["data-region"] for a in crops]


def test_regions_sorted_and_limited(tmp_path, inputs):
    path = write_report(tmp_path / "r.html", **inputs, max_regions=2)
    parsed = parse(path)
    rows = [a for t, a in parsed.tags if t == "tr" and a.get("class") == "region"]
    assert len(rows) == 2
    assert [a["data-stem"] for a in images_of(parsed, "crop")] == ['odd <"stem">', "wide"]
    assert "Showing 2 of 4 regions" in path.read_text()


def test_region_labels_named(tmp_path, inputs):
    inputs["regions"] = _region(given_label=IGNORE, predicted_label=2, issue_type="missing_label")
    page = write_report(tmp_path / "r.html", **inputs).read_text()
    row = page.split('<tr class="region" data-region="1"')[1].split("</tr>")[0]
    assert "<td>missing_label</td><td>void</td><td>road &amp; lane</td>" in row
    assert 'data-given="void"' in row


def test_mask_colours_and_void(tmp_path, inputs):
    item = make_item("one", 0.5)
    inputs.update(images=[item], regions=region_rows([]), class_colors=COLORS)
    parsed = parse(write_report(tmp_path / "r.html", **inputs))
    lut = np.array([*COLORS, VOID_COLOR], dtype=np.uint8)
    index = np.where(item.labels == IGNORE, len(COLORS), item.labels)
    np.testing.assert_array_equal(decode_png(images_of(parsed, "given")[0]["src"]), lut[index])
    index = item.predicted
    np.testing.assert_array_equal(decode_png(images_of(parsed, "predicted")[0]["src"]), lut[index])
    flagged = decode_png(images_of(parsed, "flagged")[0]["src"]).astype(int)
    red = (flagged[..., 0] > 180) & (flagged[..., 1] < 80) & (flagged[..., 2] < 80)
    np.testing.assert_array_equal(red, item.issues)
    swatches = [a["style"] for t, a in parsed.tags if t == "span" and "swatch" in a["class"]]
    assert swatches[:4] == [f"background:#{r:02x}{g:02x}{b:02x}" for r, g, b in COLORS]
    assert len(swatches) == len(COLORS) + 2  # + void + flagged


def test_ignore_index_may_be_a_class_id(tmp_path, inputs):
    # void is 0, as with "--ignore-index 0": a given 0 is void, a predicted 0 is class 0
    labels = np.array([[0, 0, 1, 1], [2, 2, 3, 3], [0, 1, 2, 3]], dtype=np.int64)
    predicted = np.array([[0, 2, 1, 0], [2, 2, 3, 0], [0, 0, 2, 3]], dtype=np.int64)
    issues = (predicted != labels) & (labels != 0)
    item = ReportImage("zero", 0.5, int(issues.sum()), labels, predicted, issues)
    regions = region_rows([("zero", 0, 3, 2, 4, 2, 1, 0, 0.1, 2.0, "wrong_class")])
    confusions = pd.DataFrame(
        {"given_label": [1, 3], "predicted_label": [0, 0], "num_pixel_issues": [5, 4]}
    )
    inputs.update(
        images=[item], regions=regions, confusions=confusions, class_colors=COLORS, ignore_index=0
    )
    parsed = parse(write_report(tmp_path / "r.html", **inputs))
    lut = np.array([*COLORS, VOID_COLOR], dtype=np.uint8)
    given = decode_png(images_of(parsed, "given")[0]["src"])
    np.testing.assert_array_equal(given, lut[np.where(labels == 0, 4, labels)])
    shown = decode_png(images_of(parsed, "predicted")[0]["src"])
    np.testing.assert_array_equal(shown, lut[np.where(labels == 0, 4, predicted)])
    assert (shown[0, 3] == COLORS[0]).all()  # predicted class 0 where the label is 3
    text = "".join(parse(tmp_path / "r.html").text)
    assert "void (ignore_index=0)" in text and "0: background" in text
    region = [a for t, a in parsed.tags if t == "tr" and a.get("class") == "region"]
    assert len(region) == 1
    page = (tmp_path / "r.html").read_text()
    row = page.split('<tr class="region" data-region="1"')[1].split("</tr>")[0]
    assert "<td>&lt;b&gt;car&lt;/b&gt;</td><td>background</td>" in row  # not "void"
    table = page.split('class="confusions"')[1].split("</table>")[0]
    assert "void" not in table and table.count("<td>background</td>") == 2


def test_given_void_is_named_in_regions_when_a_class_id(tmp_path, inputs):
    inputs.update(
        images=[ReportImage("x", 0.5, 1, _L, _L, _ONE)],
        regions=_region(stem="x", given_label=0, predicted_label=0),
        ignore_index=0,
    )
    page = write_report(tmp_path / "r.html", **inputs).read_text()
    row = page.split('<tr class="region" data-region="1"')[1].split("</tr>")[0]
    assert "<td>void</td><td>background</td>" in row


def test_warnings_are_shown_first_and_escaped(tmp_path, inputs):
    warnings = [
        "The model agrees with the labels on 12% of pixels: <shifted> class ids?",
        'Line one\nline "two" & more',
    ]
    path = write_report(tmp_path / "r.html", **inputs, warnings=warnings)
    page = path.read_text(encoding="utf-8")
    parsed = parse(path)
    sections = [a["id"] for t, a in parsed.tags if t == "section"]
    assert sections[0] == "warnings" and sections[1] == "summary"
    box = page.split('<section id="warnings"')[1].split("</section>")[0]
    assert 'class="warnings" role="alert"' in box and "2 warnings" in box
    assert (
        "<li>The model agrees with the labels on 12% of pixels: &lt;shifted&gt; class ids?</li>"
        in box
    )
    assert "<li>Line one\nline &quot;two&quot; &amp; more</li>" in box
    assert "<shifted>" not in page
    assert '<a href="#warnings">Warnings</a>' in page
    assert "section.warnings" in page  # styled to stand out
    plain = write_report(tmp_path / "plain.html", **inputs).read_text(encoding="utf-8")
    assert 'id="warnings"' not in plain and "#warnings" not in plain
    one = write_report(tmp_path / "one.html", **inputs, warnings=("only one",)).read_text()
    assert "<h2>Warning: check the inputs" in one


def test_flagged_pixels_survive_downscaling(tmp_path, inputs):
    labels = np.zeros((1000, 1000), dtype=np.int64)
    issues = np.zeros((1000, 1000), dtype=bool)
    issues[501, 777] = True
    item = ReportImage("big", 0.9, 1, labels, labels, issues)
    inputs.update(images=[item], regions=region_rows([]), class_colors=COLORS)
    parsed = parse(write_report(tmp_path / "r.html", **inputs))
    flagged = decode_png(images_of(parsed, "flagged")[0]["src"]).astype(int)
    assert flagged.shape == (512, 512, 3)
    red = (flagged[..., 0] > 180) & (flagged[..., 1] < 80) & (flagged[..., 2] < 80)
    assert red.sum() == 1
    row, col = np.argwhere(red)[0]
    assert abs(row - 501 * 0.512) <= 1 and abs(col - 777 * 0.512) <= 1


def test_tables_format_numbers(report):
    text = "".join(parse(report).text)
    for expected in ("1,234,567", "0.1235", "n/a", "20,592", "0.25", "pixels <all>"):
        assert expected in text
    confusions = report.read_text().split('class="confusions"')[1].split("</table>")[0]
    assert confusions.index("1,234,567") < confusions.index(">12<")  # most frequent first


def test_empty_report(tmp_path):
    path = write_report(
        tmp_path / "empty.html",
        images=[],
        regions=pd.DataFrame(),
        confusions=pd.DataFrame(),
        per_class=pd.DataFrame(),
        summary={},
        class_names=["a", "b"],
    )
    text = path.read_text()
    assert "No images given." in text and "No regions." in text and "<img" not in text
    assert "No image has flagged pixels." in text


def test_default_palette_is_distinct_and_fixed():
    colors = default_palette(200)
    assert colors == default_palette(200)
    assert len(set(colors)) == 200
    assert all(isinstance(c, int) and 0 <= c <= 255 for rgb in colors for c in rgb)
    assert FLAG_COLOR not in colors and VOID_COLOR not in colors


# --------------------------------------------------------------------------- worklists, matrices


def _heatmap_counts(path: Path, table_id: str) -> dict[tuple[str, str], int]:
    """Read a heat map back: (given name, predicted name) -> count, from its cells."""
    page = path.read_text(encoding="utf-8").split(f'id="{table_id}"')[1].split("</table>")[0]
    parser = _Tags()
    parser.feed(page)
    return {
        (a["data-given"], a["data-predicted"]): int(a["data-count"])
        for t, a in parser.tags
        if t == "td"
    }


def test_flagged_heatmap_holds_every_pair(tmp_path, inputs):
    path = write_report(tmp_path / "r.html", **inputs)
    counts = _heatmap_counts(path, "flagged-heatmap")
    shown = {key: value for key, value in counts.items() if value}
    assert shown == {("road & lane", "background"): 12, ("<b>car</b>", 'sky "blue"'): 1234567}
    # only the classes with off-diagonal pixels are drawn: all four here
    assert {given for given, _ in counts} == set(NAMES)
    cells = [a for t, a in parse(path).tags if t == "td" and "data-count" in a]
    big = next(a for a in cells if a["data-count"] == "1234567")
    assert "background:#7f0000" in big["style"]  # the largest count is the darkest
    assert "1.2M" in path.read_text()


def test_heatmap_limits_classes(tmp_path, inputs):
    names = [f"c{k}" for k in range(30)]
    pairs = pd.DataFrame(
        {
            "given_label": list(range(29)),
            "predicted_label": list(range(1, 30)),
            "num_pixel_issues": list(range(1, 30)),
        }
    )
    inputs.update(images=[], regions=region_rows([]), confusions=pairs, class_names=names)
    inputs.pop("ignore_index")
    path = write_report(tmp_path / "r.html", **inputs, max_heatmap_classes=5)
    counts = _heatmap_counts(path, "flagged-heatmap")
    drawn = sorted({given for given, _ in counts}, key=lambda n: int(n[1:]))
    # weight = pixels given as k or predicted as k, off the diagonal: 2k + 1, and 29 for c29
    assert drawn == ["c24", "c25", "c26", "c27", "c28"]
    assert "5 of 30 classes" in path.read_text()


def test_count_pairs_and_model_metrics(tmp_path, inputs):
    items = inputs["images"]
    matrix = sum(count_pairs(i.labels, i.predicted, 4, ignore_index=IGNORE) for i in items)
    labels = np.concatenate([i.labels.ravel() for i in items])
    predicted = np.concatenate([i.predicted.ravel() for i in items])
    keep = labels != IGNORE
    assert matrix.sum() == keep.sum()
    for g in range(4):
        for p in range(4):
            assert matrix[g, p] == np.sum((labels[keep] == g) & (predicted[keep] == p))
    path = write_report(tmp_path / "r.html", **inputs, model_confusion=matrix)
    page = path.read_text(encoding="utf-8")
    frame, totals = class_metrics(matrix, NAMES)
    for k in range(4):
        hits = np.sum((labels == k) & (predicted == k) & keep)
        union = np.sum(((labels == k) & keep) | ((predicted == k) & keep))
        assert frame["iou"][k] == pytest.approx(hits / union)
        assert frame["pixel_accuracy"][k] == pytest.approx(hits / np.sum((labels == k) & keep))
    assert totals["pixel accuracy"] == pytest.approx(np.mean(labels[keep] == predicted[keep]))
    section = page.split('<section id="model">')[1].split("</section>")[0]
    rows = section.split('id="model-metrics"')[1].split("</table>")[0]
    for k, name in enumerate(NAMES):
        value = frame["iou"][k]
        assert f'data-value="{float(value)!r}"' in rows, name
    assert "&lt;b&gt;car&lt;/b&gt;" in rows
    counts = _heatmap_counts(path, "model-heatmap")
    assert counts[("<b>car</b>", 'sky "blue"')] == matrix[1, 3]
    assert counts[("<b>car</b>", "<b>car</b>")] == matrix[1, 1]  # the diagonal is drawn
    assert '<a href="#model">Model</a>' in page


def test_images_without_flags_are_not_among_the_worst(tmp_path, inputs):
    labels = np.zeros((24, 32), dtype=np.int64)
    clean = ReportImage("clean", 0.0, 0, labels, labels, labels > 0)  # lowest score, no flag
    inputs["images"] = [*inputs["images"], clean]
    path = write_report(tmp_path / "r.html", **inputs)
    cards = [a["data-stem"] for t, a in parse(path).tags if t == "article"]
    assert cards == ['odd <"stem">', "wide", "plain"]
    assert "1 given images without flagged pixels are left out" in path.read_text()
    rows = [a["data-stem"] for t, a in parse(path).tags if t == "tr" and "data-flagged" in a]
    assert rows == cards


def test_image_table_lists_every_image_with_issues(tmp_path, inputs):
    table = pd.DataFrame(
        {
            "image": ["a", "b", "plain", "c", "d"],
            "score": [0.9, 0.1, 0.8, 0.5, 0.0],
            "num_pixel_issues": [3, 5, 7, 0, 2],
        }
    )
    path = write_report(tmp_path / "r.html", **inputs, image_table=table)
    parsed = parse(path)
    rows = [a for t, a in parsed.tags if t == "tr" and "data-flagged" in a]
    assert [a["data-stem"] for a in rows] == ["d", "b", "plain", "a"]  # flagged, worst first
    assert [a["data-pictures"] for a in rows] == ["no", "no", "yes", "no"]
    links = [
        a["href"] for t, a in parsed.tags if t == "a" and a.get("href", "").startswith("#image-")
    ]
    assert "#image-3" in links  # "plain" is the third card
    capped = write_report(tmp_path / "c.html", **inputs, image_table=table, max_image_rows=2)
    rows = [a for t, a in parse(capped).tags if t == "tr" and "data-flagged" in a]
    assert [a["data-stem"] for a in rows] == ["d", "b"]
    assert "2 of 4 images with flagged pixels" in capped.read_text()
    assert "The rest are in images.csv." in capped.read_text()


def test_mask_palette_colours_the_classes(tmp_path, inputs):
    item = make_item("one", 0.5)
    voc = [(0, 0, 0), (128, 0, 0), (0, 128, 0), (128, 128, 0), (0, 0, 128)] + [(9, 9, 9)] * 251
    flat = [c for rgb in voc for c in rgb]  # as PIL's getpalette() gives it
    inputs.update(images=[item], regions=region_rows([]), mask_palette=flat)
    parsed = parse(write_report(tmp_path / "r.html", **inputs))
    lut = np.array([*voc[:4], VOID_COLOR], dtype=np.uint8)
    index = np.where(item.labels == IGNORE, 4, item.labels)
    np.testing.assert_array_equal(decode_png(images_of(parsed, "given")[0]["src"]), lut[index])
    swatches = [a["style"] for t, a in parsed.tags if t == "span" and "swatch" in a["class"]]
    assert swatches[:4] == [
        "background:#000000",
        "background:#800000",
        "background:#008000",
        "background:#808000",
    ]
    # colours from a classes file win over the masks' palette
    inputs["class_colors"] = COLORS
    parsed = parse(write_report(tmp_path / "r2.html", **inputs))
    swatches = [a["style"] for t, a in parsed.tags if t == "span" and "swatch" in a["class"]]
    assert swatches[0] == "background:#0a141e"
    # a short palette colours the first classes; the others keep the default colours
    inputs.update(class_colors=None, mask_palette=voc[:2])
    parsed = parse(write_report(tmp_path / "r3.html", **inputs))
    swatches = [a["style"] for t, a in parsed.tags if t == "span" and "swatch" in a["class"]]
    default = default_palette(4)
    assert swatches[1] == "background:#800000"
    assert swatches[2] == "background:#{:02x}{:02x}{:02x}".format(*default[2])


def test_read_mask_palette(tmp_path):
    mask = Image.fromarray(np.array([[0, 1], [2, 255]], np.uint8), mode="P")
    mask.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [224, 224, 192] * 253)
    mask.save(tmp_path / "voc.png")
    palette = read_mask_palette(tmp_path / "voc.png")
    assert palette[:3] == [(0, 0, 0), (128, 0, 0), (0, 128, 0)] and palette[255] == (224, 224, 192)
    Image.fromarray(np.zeros((2, 2), np.uint8)).save(tmp_path / "grey.png")
    assert read_mask_palette(tmp_path / "grey.png") is None


# --------------------------------------------------------------------------- atomic output


def _failing_png(monkeypatch, after: int) -> None:
    real = _sections.png_data_uri
    calls = iter(range(10**6))

    def fake(rgb):
        if next(calls) >= after:
            raise RuntimeError("disk on fire")
        return real(rgb)

    for module in (_sections, _context, _lists):  # cards, masks, crops
        monkeypatch.setattr(module, "png_data_uri", fake)


def test_crash_midway_leaves_no_file(tmp_path, inputs, monkeypatch):
    _failing_png(monkeypatch, after=4)
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_report(tmp_path / "report.html", **inputs)
    assert list(tmp_path.iterdir()) == []


def test_crash_midway_keeps_previous_report(tmp_path, inputs, monkeypatch):
    path = tmp_path / "report.html"
    path.write_text("previous")
    _failing_png(monkeypatch, after=7)
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_report(path, **inputs)
    assert list(tmp_path.iterdir()) == [path]
    assert path.read_text() == "previous"


def test_overwrites_existing_report(tmp_path, inputs):
    path = tmp_path / "report.html"
    path.write_text("previous")
    write_report(path, **inputs)
    assert path.read_text().startswith("<!DOCTYPE html>")
    assert list(tmp_path.iterdir()) == [path]


def test_missing_folder(tmp_path, inputs):
    with pytest.raises(FileNotFoundError, match="for 'path' does not exist"):
        write_report(tmp_path / "nope" / "report.html", **inputs)


# --------------------------------------------------------------------------- bad input

_L = np.zeros((4, 5), dtype=np.int64)
_B = np.zeros((4, 5), dtype=bool)
_ONE = np.arange(20).reshape(4, 5) == 7  # one flagged pixel


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"stem": ""}, r"'stem' parameter of ReportImage must be a non-empty str\. Got ''"),
        ({"score": 1.5}, r"'score' .* a number in \[0, 1\]\. Got 1\.5 instead"),
        ({"score": float("nan")}, r"'score' .* Got nan instead"),
        ({"num_issues": -1}, r"'num_issues' .* a non-negative int\. Got -1"),
        ({"labels": np.zeros((1, 4, 5), int)}, r"'labels' .* \(H, W\) integer .* \(1, 4, 5\)"),
        ({"labels": _L.astype(float)}, r"'labels' .* dtype float64"),
        ({"predicted": _L[:3]}, r"'predicted' .* labels' shape \(4, 5\)\. Got .* \(3, 5\)"),
        ({"issues": _L}, r"'issues' .* a bool array .* dtype int64"),
        ({"image": np.zeros((4, 5, 3), np.float32)}, r"'image' .* uint8 array of shape"),
        ({"image": np.zeros((4, 5), np.uint8)}, r"'image' .* \(4, 5, 3\)\. Got .* \(4, 5\)"),
    ],
)
def test_report_image_errors(kwargs, match):
    fields = dict(stem="a", score=0.5, num_issues=0, labels=_L, predicted=_L, issues=_B)
    with pytest.raises(ValueError, match=match):
        ReportImage(**{**fields, **kwargs})


def _bad_labels():
    labels = _L.copy()
    labels[2, 3] = 7
    return [ReportImage("x", 0.5, 0, labels, _L, _B)]


def _bad_predicted():
    predicted = _L.copy()
    predicted[1, 0] = 9  # not a class (void is allowed: no prediction is weighed there)
    return [ReportImage("x", 0.5, 0, _L, predicted, _B)]


def _region(**changes):
    row = dict(
        stem="plain",
        bbox_row0=1,
        bbox_col0=1,
        bbox_row1=3,
        bbox_col1=3,
        area=4,
        given_label=1,
        predicted_label=2,
        mean_self_confidence=0.5,
        severity=1.0,
        issue_type="wrong_class",
    )
    return pd.DataFrame([{**row, **changes}])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"class_names": []}, r"'class_names' .* non-empty sequence of str\. Got an empty"),
        ({"class_names": "abc"}, r"'class_names' .* a sequence of str\. Got 'abc'"),
        ({"class_names": ["a", 3, "b", "c"]}, r"Got the non-str item 3 instead"),
        ({"class_colors": COLORS[:2]}, r"'class_colors' .* 4 \(r, g, b\) .* Got 2 colours"),
        ({"class_colors": [*COLORS[:3], (0, 0, 256)]}, r"Got \(0, 0, 256\) for class 3"),
        ({"ignore_index": 2.5}, r"'ignore_index' .* must be None or an int\. Got 2\.5 instead"),
        ({"ignore_index": True}, r"'ignore_index' .* must be None or an int\. Got True instead"),
        ({"warnings": "check"}, r"'warnings' .* a sequence of str\. Got 'check' instead"),
        ({"warnings": ["ok", 3]}, r"'warnings' .* non-empty str\. Got 3 at position 1 instead"),
        ({"warnings": [" "]}, r"'warnings' .* non-empty str\. Got ' ' at position 0 instead"),
        ({"max_regions": -1}, r"'max_regions' .* an int >= 0\. Got -1"),
        ({"max_confusions": 2.5}, r"'max_confusions' .* Got 2\.5"),
        ({"max_side": 0}, r"'max_side' .* an int >= 1\. Got 0"),
        ({"max_image_rows": -1}, r"'max_image_rows' .* an int >= 0\. Got -1"),
        ({"max_heatmap_classes": 0}, r"'max_heatmap_classes' .* an int >= 1\. Got 0"),
        ({"mask_palette": [1, 2]}, r"'mask_palette' .* triplets .* Got an array of shape \(2,\)"),
        ({"mask_palette": [(0, 0, 300)]}, r"'mask_palette' .* ints in 0\.\.255\. Got"),
        ({"model_confusion": np.zeros((3, 3), int)}, r"'model_confusion' .* \(4, 4\) .* \(3, 3\)"),
        (
            {"model_confusion": -np.eye(4, dtype=int)},
            r"'model_confusion' .* non-negative .* Got the negative count -1",
        ),
        ({"model_confusion": np.eye(4)}, r"'model_confusion' .* dtype float64"),
        ({"image_table": pd.DataFrame({"image": ["a"]})}, r"'image_table' .* missing \['score'"),
        ({"title": None}, r"'title' .* a str\. Got None"),
        ({"summary": [1, 2]}, r"'summary' .* a mapping of name to value\. Got list"),
        ({"per_class": {"a": [1]}}, r"'per_class' .* a pandas DataFrame\. Got dict"),
        ({"confusions": pd.DataFrame({"given_label": ["a"]})}, r"'confusions' .* missing \["),
        ({"images": "abc"}, r"'images' .* a sequence of ReportImage\. Got str at position 0"),
        ({"images": [1]}, r"'images' .* sequence of ReportImage\. Got int at position 0"),
        ({"images": [make_item("a", 0.1), make_item("a", 0.2)]}, r"unique stems\. Got 'a' twice"),
        (
            {"images": _bad_labels()},
            r"integers in 0\.\.3 or ignore_index=255\. Got 7 at .*\(2, 3\)",
        ),
        ({"images": _bad_predicted()}, r"Got 9 at \(row, col\) \(1, 0\) of image 'x'\.predicted"),
        ({"regions": _region().drop(columns="severity")}, r"'regions' .* missing \['severity'\]"),
        ({"regions": _region(bbox_row1=99)}, r"inside 'plain' of shape \(24, 32\)\. Got box"),
        (
            {"regions": _region(bbox_col1=1)},
            r"non-empty half-open boxes inside .* Got box \(1, 1, 3, 1\)",
        ),
        ({"regions": _region(bbox_row0=1.5)}, r"an integer 'bbox_row0'\. Got dtype float64"),
        ({"regions": _region(issue_type="oops")}, r"one of \['boundary', .*Got 'oops' in row 0"),
        (
            {"regions": _region(given_label=9)},
            r"'given_label' is a class name or .* Got 9 in row 0",
        ),
    ],
)
def test_write_report_errors(tmp_path, inputs, kwargs, match):
    inputs["images"] = [make_item("plain", 0.5)]
    with pytest.raises(ValueError, match=match):
        write_report(tmp_path / "r.html", **{**inputs, **kwargs})
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def worklist(tmp_path_factory):
    """A report with 60 images with issues (12 drawn), 5 clean ones, and 33 regions."""
    rng = np.random.default_rng(7)
    n = 65
    stems = [f"img{i:02d}" for i in range(n)]
    flagged = np.where(np.arange(n) < 60, rng.integers(1, 500, n), 0)
    image_table = pd.DataFrame(
        {
            "image": stems,
            "score": rng.permutation(n) / n,
            "num_pixel_issues": flagged,
            "fraction_pixel_issues": flagged / 320,
            "method": "region_fraction",
        }
    )
    worst = image_table[image_table["num_pixel_issues"] > 0].sort_values("score")
    drawn = list(worst["image"][:12])
    outside = worst["image"].iloc[20]
    images = [
        make_item(stem, float(worst["score"].iloc[i]), (16, 20), seed=i)
        for i, stem in enumerate(drawn)
    ]
    labels = np.zeros((16, 20), dtype=np.int64)
    images.append(ReportImage("img60", 0.0, 0, labels, labels, labels > 0))  # worst, but clean
    types = ["wrong_class", "missing_label", "spurious_label", "boundary"]
    rows = []
    for i in range(33):
        stem = drawn[i % 12] if i < 30 else outside
        given = int(rng.integers(0, 4))
        confidence = float("nan") if i == 5 else float(rng.random())
        area = int(rng.integers(1, 100))
        rows.append(
            (
                stem,
                2,
                3,
                6,
                9,
                area,
                given,
                (given + 1) % 4,
                confidence,
                float(rng.random()),
                types[i % 4],
            )
        )
    regions = region_rows(rows)
    path = tmp_path_factory.mktemp("worklist") / "report.html"
    write_report(
        path,
        images=images,
        regions=regions,
        confusions=pd.DataFrame(),
        per_class=pd.DataFrame(),
        summary={},
        class_names=NAMES,
        ignore_index=IGNORE,
        image_table=image_table,
    )
    return path, {"image_table": image_table, "regions": regions, "outside": outside}


# --------------------------------------------------------------------------- real browser


@pytest.fixture(scope="module")
def browser():
    with launch() as chromium:
        yield chromium


def visible(page, selector: str, key: str) -> list[str]:
    """The ``data-<key>`` of the rows (or cards) of `selector` that are shown, in page order."""
    script = (
        f"els => els.filter(e => !e.hidden && e.offsetParent !== null).map(e => e.dataset.{key})"
    )
    return page.eval_on_selector_all(selector, script)


def all_rows(page, selector: str, key: str) -> list[str]:
    return page.eval_on_selector_all(selector, f"els => els.map(e => e.dataset.{key})")


@pytest.mark.requires_chromium
def test_report_opens_in_chromium(browser, worklist):
    path, _ = worklist
    with browser.open(path) as (page, log):
        shown = page.eval_on_selector_all(
            "img",
            """els => els.map(i => ({cls: i.className, stem: i.dataset.stem, complete: i.complete,
                width: i.naturalWidth, height: i.naturalHeight,
                shown: i.getBoundingClientRect().width}))""",
        )
        info = page.inner_text('.pager[data-for="image-list"] .page-info')
    assert log.errors == [] and log.requests == []
    assert info == "page 1 of 2 (60 of 60 shown)"  # the script ran: CSP allowed it by its hash
    tags = images_of(parse(path))
    assert len(shown) == len(tags) == 12 * 3 + 30  # 12 cards, 30 of the 33 regions
    for image, attrs in zip(shown, tags, strict=True):
        assert image["complete"] and image["width"] > 0, image
        assert (image["height"], image["width"]) == decode_png(attrs["src"]).shape[:2]
        assert image["stem"] == attrs["data-stem"]
    on_first_pages = [i for i in shown if i["shown"] > 0]
    assert len(on_first_pages) == 10 * 3 + 25  # 10 cards, 25 regions with crops


@pytest.mark.requires_chromium
def test_click_sorts_a_table(browser, worklist):
    path, frames = worklist
    regions = frames["regions"]
    areas = sorted(regions[regions["stem"] != frames["outside"]]["area"])
    with browser.open(path) as (page, log):
        header = page.locator("#region-list thead th", has_text="area")
        assert [float(a) for a in all_rows(page, "#region-list tbody tr", "area")] != areas
        header.click()
        assert header.get_attribute("aria-sort") == "ascending"
        assert [float(a) for a in all_rows(page, "#region-list tbody tr", "area")] == areas
        first_page = [float(a) for a in visible(page, "#region-list tbody tr", "area")]
        assert first_page == areas[:25]
        header.click()
        assert header.get_attribute("aria-sort") == "descending"
        assert [float(a) for a in all_rows(page, "#region-list tbody tr", "area")] == areas[::-1]
        # a text column, in the other table
        before = all_rows(page, "#image-list tbody tr", "stem")
        page.locator("#image-list thead th", has_text="image").click()
        stems = all_rows(page, "#image-list tbody tr", "stem")
        assert stems == sorted(before) != before  # "img00" ... "img59": plain text order
        page.locator("#image-list thead th", has_text="score").click()
        scores = [float(v) for v in all_rows(page, "#image-list tbody tr", "score")]
        assert scores == sorted(frames["image_table"].query("num_pixel_issues > 0")["score"])
    assert log.errors == [] and log.requests == []


@pytest.mark.requires_chromium
def test_filters_hide_rows(browser, worklist):
    path, frames = worklist
    regions = frames["regions"]
    shown_regions = regions[regions["stem"] != frames["outside"]]  # no pictures: left out
    with browser.open(path) as (page, log):
        rows = "#region-list tbody tr"
        page.select_option('select[data-for="region-list"][data-key="type"]', "boundary")
        want = shown_regions[shown_regions["issue_type"] == "boundary"]
        assert set(visible(page, rows, "type")) == {"boundary"}
        assert len(visible(page, rows, "type")) == len(want) < 25
        hidden = page.eval_on_selector_all(rows, "els => els.filter(e => e.hidden).length")
        assert hidden == len(shown_regions) - len(want)
        page.fill('input[data-for="region-list"][data-key="area"]', "40")
        want = want[want["area"] >= 40]
        assert sorted(float(a) for a in visible(page, rows, "area")) == sorted(want["area"])
        page.select_option('select[data-for="region-list"][data-key="given"]', NAMES[2])
        want = want[want["given_label"] == 2]
        assert len(visible(page, rows, "area")) == len(want)
        page.select_option('select[data-for="region-list"][data-key="type"]', "")
        page.select_option('select[data-for="region-list"][data-key="given"]', "")
        page.fill('input[data-for="region-list"][data-key="area"]', "")
        assert len(visible(page, rows, "area")) == 25  # all back, one page
        page.fill('input[data-for="region-list"][data-key="confidence"]', "0.5")
        kept = shown_regions[shown_regions["mean_self_confidence"] <= 0.5]  # NaN drops out
        assert page.inner_text('.pager[data-for="region-list"] .page-info').endswith(
            f"({len(kept)} of {len(shown_regions)} shown)"
        )
        page.fill('input[data-for="image-list"][data-key="stem"]', "IMG1")
        stems = visible(page, "#image-list tbody tr", "stem")
        assert stems and all("img1" in stem for stem in stems)
        assert len(stems) == sum("img1" in s for s in frames["image_table"]["image"][:60])
    assert log.errors == [] and log.requests == []


@pytest.mark.requires_chromium
def test_paging(browser, worklist):
    path, _ = worklist
    with browser.open(path) as (page, log):
        rows = "#image-list tbody tr"
        pager = page.locator('.pager[data-for="image-list"]').first
        assert len(visible(page, rows, "stem")) == 50
        assert pager.locator('[data-step="-1"]').is_disabled()
        first = visible(page, rows, "stem")
        pager.locator('[data-step="1"]').click()
        second = visible(page, rows, "stem")
        assert len(second) == 10 and not set(first) & set(second)
        assert pager.locator('[data-step="1"]').is_disabled()
        assert pager.locator(".page-info").inner_text() == "page 2 of 2 (60 of 60 shown)"
        pager.locator('[data-step="-1"]').click()
        assert visible(page, rows, "stem") == first
        # the picture cards: 10 to a page; a link to the 12th turns to its page
        assert visible(page, "#image-cards > article", "rank") == [str(i) for i in range(1, 11)]
        page.locator('#image-list a[href="#image-12"]').click()
        assert visible(page, "#image-cards > article", "rank") == ["11", "12"]
        assert page.evaluate("location.hash") == "#image-12"
    assert log.errors == [] and log.requests == []


@pytest.mark.requires_chromium
def test_csp_blocks_any_other_script(browser, worklist, tmp_path):
    path, _ = worklist
    tampered = tmp_path / "tampered.html"
    text = path.read_text(encoding="utf-8")
    assert text.count(SCRIPT) == 1
    tampered.write_text(text.replace(SCRIPT, SCRIPT.replace("page ${page + 1}", "p ${page}")))
    with browser.open(tampered) as (page, log):
        shown = len(visible(page, "#image-list tbody tr", "stem"))
    assert len(log.errors) == 1 and "Content Security Policy" in log.errors[0], log.errors
    assert "inline script" in log.errors[0] and "blocked" in log.errors[0]
    assert shown == 60  # nothing ran: every row stays visible
    assert log.requests == []


@pytest.mark.requires_chromium
def test_browser_check_catches_broken_pages(browser, tmp_path):
    page_path = tmp_path / "bad.html"
    page_path.write_text(
        "<!DOCTYPE html><html><head></head><body>"
        '<img src="http://example.invalid/x.png"><img src="data:image/png;base64,AAAA">'
        "<script>console.error('boom')</script></body></html>"
    )
    with browser.open(page_path) as (page, log):
        widths = page.eval_on_selector_all("img", "els => els.map(i => i.naturalWidth)")
    assert log.requests == ["http://example.invalid/x.png"]
    assert "boom" in log.errors
    assert widths == [0, 0]


@pytest.mark.parametrize("seed", range(6))
def test_count_pairs_equals_counting_pixel_by_pixel(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(1, 6))
    dtype = [np.uint8, np.int16, np.int64, np.uint16][seed % 4]
    low = 0 if np.dtype(dtype).kind == "u" else -2
    labels = rng.integers(low, k + 3, (7, 9)).astype(dtype)
    predicted = rng.integers(-1, k + 2, (7, 9)).astype(np.int64)
    ignore = [None, 0, k + 1][seed % 3]
    expected = np.zeros((k, k), dtype=np.int64)
    for given, guess in zip(labels.ravel().tolist(), predicted.ravel().tolist(), strict=True):
        if 0 <= given < k and 0 <= guess < k and given != ignore:
            expected[given, guess] += 1
    got = count_pairs(labels, predicted, k, ignore_index=ignore)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, expected)
