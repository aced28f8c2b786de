"""Tests for the self-contained HTML report (`segaudit.report`)."""

from __future__ import annotations

import base64
import io
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import segaudit.report
from _browser import find_chromium, load_in_chromium
from segaudit.report import ReportImage, _sections, write_report
from segaudit.report._render import FLAG_COLOR, VOID_COLOR, default_palette, fit_size

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
    """Collect every start tag with its attributes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
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
    assert segaudit.report.__all__ == ["ReportImage", "write_report"]


def test_returns_path_and_sections(report, tmp_path):
    assert report == tmp_path / "report.html"
    parsed = parse(report)
    ids = {a.get("id") for _, a in parsed.tags}
    assert {"summary", "legend", "per-class", "confusions", "images", "regions"} <= ids
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
    }
    assert {tag for tag, _ in parsed.tags} <= allowed
    stems = {a["data-stem"] for a in images_of(parsed)}
    assert stems == {"plain", 'odd <"stem">', "wide"}
    assert 'sky "blue"' in "".join(parsed.text)


def test_self_contained(report):
    parsed = parse(report)
    assert not [t for t, _ in parsed.tags if t in {"script", "link", "iframe", "object"}]
    for _, attrs in parsed.tags:
        for name in ("src", "href"):
            value = attrs.get(name)
            assert value is None or value.startswith(("data:image/png;base64,", "#"))
    csp = [a for t, a in parsed.tags if t == "meta" and a.get("http-equiv")]
    assert csp and "default-src 'none'" in csp[0]["content"]
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
    # the "elsewhere" region has no image: listed without a crop
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
    assert "elsewhere" in text and "no crop" in text


def test_regions_sorted_and_limited(tmp_path, inputs):
    path = write_report(tmp_path / "r.html", **inputs, max_regions=2)
    parsed = parse(path)
    rows = [a for t, a in parsed.tags if t == "tr" and a.get("class") == "region"]
    assert len(rows) == 2
    assert [a["data-stem"] for a in images_of(parsed, "crop")] == ['odd <"stem">', "wide"]
    assert "Showing 2 of 4 regions" in path.read_text()


def test_region_labels_named(report):
    text = "".join(parse(report).text)
    assert "void" in text  # given_label == ignore_index
    assert "missing_label" in text


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
    row = page.split('data-region="1">')[1].split("</tr>")[0]
    assert "<td>&lt;b&gt;car&lt;/b&gt;</td><td>background</td>" in row  # not "void"
    table = page.split('id="confusions"')[1].split("</table>")[0]
    assert "void" not in table and table.count("<td>background</td>") == 2


def test_given_void_is_named_in_regions_when_a_class_id(tmp_path, inputs):
    inputs.update(
        images=[], regions=_region(stem="x", given_label=0, predicted_label=0), ignore_index=0
    )
    page = write_report(tmp_path / "r.html", **inputs).read_text()
    row = page.split('data-region="1">')[1].split("</tr>")[0]
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
    confusions = report.read_text().split('id="confusions"')[1].split("</table>")[0]
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


def test_default_palette_is_distinct_and_fixed():
    colors = default_palette(200)
    assert colors == default_palette(200)
    assert len(set(colors)) == 200
    assert all(isinstance(c, int) and 0 <= c <= 255 for rgb in colors for c in rgb)
    assert FLAG_COLOR not in colors and VOID_COLOR not in colors


# --------------------------------------------------------------------------- atomic output


def _failing_png(monkeypatch, after: int) -> None:
    real = _sections.png_data_uri
    calls = iter(range(10**6))

    def fake(rgb):
        if next(calls) >= after:
            raise RuntimeError("disk on fire")
        return real(rgb)

    monkeypatch.setattr(_sections, "png_data_uri", fake)


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


# --------------------------------------------------------------------------- real browser


@pytest.mark.requires_chromium
def test_report_opens_in_chromium(report, inputs, tmp_path):
    chromium = find_chromium()
    state, errors = load_in_chromium(chromium, report, tmp_path)
    assert errors == []
    assert state["rows"] == len(inputs["images"])
    shown = state["images"]
    assert len(shown) == len(images_of(parse(report)))
    assert [i["cls"] for i in shown].count("crop") == 3
    for image, attrs in zip(shown, images_of(parse(report)), strict=True):
        assert image["complete"] and image["width"] > 0 and image["shown"] > 0, image
        assert (image["height"], image["width"]) == decode_png(attrs["src"]).shape[:2]
        assert image["stem"] == attrs["data-stem"]


@pytest.mark.requires_chromium
def test_browser_check_catches_broken_pages(tmp_path):
    chromium = find_chromium()
    page = tmp_path / "bad.html"
    page.write_text(
        '<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; img-src data:\"></head><body>"
        '<img src="http://example.invalid/x.png"><img src="data:image/png;base64,AAAA">'
        "</body></html>"
    )
    state, errors = load_in_chromium(chromium, page, tmp_path)
    assert any("example.invalid" in error for error in errors)
    assert [image["width"] for image in state["images"]] == [0, 0]
