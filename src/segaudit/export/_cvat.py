"""CVAT: "CVAT for images 1.1" XML, each region a ``<mask>`` with its issue attributes."""

from __future__ import annotations

import datetime
import json
import os
import xml.etree.ElementTree as ET
from typing import Any

from segaudit._validation import check_choice
from segaudit.export._review import LABEL_BY, ReviewImage, ReviewSet
from segaudit.export._rle import box_runs
from segaudit.io._atomic import atomic_write
from segaudit.regions._records import ISSUE_TYPES

__all__ = ["cvat_document", "cvat_labels", "write_cvat"]

_TEXT_ATTRIBUTES = ("severity", "mean_self_confidence", "region")


def cvat_labels(review: ReviewSet) -> list[dict[str, Any]]:
    """Return CVAT's label specs: one per class, with the issue attributes of every region.

    The list is what CVAT's "Raw" label constructor takes when a task is created,
    and what ``<meta>`` of the XML declares.

    Examples
    --------
    >>> spec = cvat_labels(ReviewSet(list, ["bg", "cat"]))[1]
    >>> spec["name"], [a["name"] for a in spec["attributes"]][:3]
    ('cat', ['issue_type', 'given_class', 'predicted_class'])
    """
    names = list(review.class_names)
    selects = {"issue_type": list(ISSUE_TYPES), "given_class": names, "predicted_class": names}
    attributes = [
        {"name": n, "mutable": False, "input_type": "select", "default_value": v[0], "values": v}
        for n, v in selects.items()
    ] + [
        {"name": n, "mutable": False, "input_type": "text", "default_value": "", "values": []}
        for n in _TEXT_ATTRIBUTES
    ]
    return [
        {"name": name, "color": color, "type": "any", "attributes": attributes}
        for name, color in zip(names, review.hex_colors(), strict=True)
    ]


def _meta(root: ET.Element, review: ReviewSet, size: int) -> None:
    """Add the ``<meta>`` block: the task and its labels (`cvat_labels`)."""
    meta = ET.SubElement(root, "meta")
    task = ET.SubElement(meta, "task")
    ET.SubElement(task, "name").text = "segaudit review"
    ET.SubElement(task, "size").text = str(size)
    ET.SubElement(task, "mode").text = "annotation"
    labels = ET.SubElement(task, "labels")
    for spec in cvat_labels(review):
        label = ET.SubElement(labels, "label")
        for key in ("name", "color", "type"):
            ET.SubElement(label, key).text = spec[key]
        attributes = ET.SubElement(label, "attributes")
        for attribute in spec["attributes"]:
            node = ET.SubElement(attributes, "attribute")
            for key in ("name", "mutable", "input_type", "default_value"):
                ET.SubElement(node, key).text = str(attribute[key])
            ET.SubElement(node, "values").text = "\n".join(attribute["values"])
    stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    ET.SubElement(meta, "dumped").text = stamp


def _image(
    root: ET.Element, image: ReviewImage, number: int, names: tuple[str, ...], by: str
) -> None:
    """Add one ``<image>`` with a ``<mask>`` per region."""
    node = ET.SubElement(
        root,
        "image",
        id=str(number),
        name=image.file_name,
        width=str(image.width),
        height=str(image.height),
    )
    for region in image.regions:
        row0, col0, row1, col1 = region.box
        mask = ET.SubElement(
            node,
            "mask",
            label=names[region.label(by)],
            source="auto",
            occluded="0",
            rle=", ".join(str(int(c)) for c in box_runs(region.mask)),
            left=str(col0),
            top=str(row0),
            width=str(col1 - col0),
            height=str(row1 - row0),
            z_order="0",
        )
        values = region.attributes()
        for name in ("issue_type", "given_class", "predicted_class", *_TEXT_ATTRIBUTES):
            value = values[name]
            text = "" if value is None else f"{value:.6g}" if isinstance(value, float) else value
            ET.SubElement(mask, "attribute", name=name).text = str(text)


def cvat_document(review: ReviewSet, *, label_by: str = "predicted") -> ET.ElementTree:
    """Build the CVAT for images 1.1 XML of `review` (see `write_cvat`)."""
    label_by = check_choice(label_by, "label_by", LABEL_BY, "write_cvat")
    root = ET.Element("annotations")
    ET.SubElement(root, "version").text = "1.1"
    images = ET.Element("images")
    count = 0
    for count, image in enumerate(review, start=1):
        _image(images, image, count - 1, review.class_names, label_by)
    _meta(root, review, count)
    root.extend(list(images))
    tree = ET.ElementTree(root)
    ET.indent(tree)
    return tree


def write_cvat(
    review: ReviewSet,
    path: str | os.PathLike[str],
    labels_path: str | os.PathLike[str] | None = None,
    *,
    label_by: str = "predicted",
) -> None:
    """Write the regions as a "CVAT for images 1.1" annotation file (XML, written atomically).

    Parameters
    ----------
    review : ReviewSet
        The regions, from `from_arrays` or `from_scan`.
    path : path
        The ``.xml`` file to write (CVAT imports it alone, or zipped as ``annotations.xml``).
    labels_path : path, optional
        Where to write the labels (`cvat_labels`, JSON), to paste into CVAT's
        "Raw" label constructor when creating the task.
    label_by : {"predicted", "given"}, default="predicted"
        The label each mask carries.

    Notes
    -----
    ``<meta>`` declares one label per class, each with the attributes
    ``issue_type``, ``given_class``, ``predicted_class`` (select) and
    ``severity``, ``mean_self_confidence``, ``region`` (text). Each image with
    regions is an ``<image>`` (``name`` its file name) with one ``<mask>`` per
    region: ``left``, ``top``, ``width``, ``height`` give the region's box and
    ``rle`` the counts of alternating 0 / 1 runs over the box, row by row,
    starting with 0s, as CVAT writes them.
    """
    tree = cvat_document(review, label_by=label_by)
    with atomic_write(path) as fh:
        fh.write('<?xml version="1.0" encoding="utf-8"?>\n')
        tree.write(fh, encoding="unicode")
        fh.write("\n")
    if labels_path is not None:
        with atomic_write(labels_path) as fh:
            json.dump(cvat_labels(review), fh, indent=1)
