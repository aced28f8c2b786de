"""Label Studio: review tasks with each region as a brush pre-annotation, and the config XML."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from typing import Any

from segaudit._validation import check_choice
from segaudit.export._review import LABEL_BY, ReviewImage, ReviewSet
from segaudit.export._rle import labelstudio_rle
from segaudit.io._atomic import atomic_write

__all__ = ["labelstudio_config", "labelstudio_tasks", "write_labelstudio"]

FROM_NAME = "label"
"""The ``BrushLabels`` tag of the config (each result's ``from_name``)."""
TO_NAME = "image"
"""The ``Image`` tag of the config (each result's ``to_name``; the task's data key)."""


def labelstudio_config(review: ReviewSet) -> str:
    """Return the labelling config: the image, and a brush label per class in its colour.

    Examples
    --------
    >>> from segaudit.export import ReviewSet
    >>> print(labelstudio_config(ReviewSet(list, ["bg", "cat"], [(0, 0, 0), (255, 0, 0)])))
    <View>
      <Header value="$segaudit_header" />
      <Image name="image" value="$image" zoom="true" />
      <BrushLabels name="label" toName="image">
        <Label value="bg" background="#000000" />
        <Label value="cat" background="#ff0000" />
      </BrushLabels>
    </View>
    """
    view = ET.Element("View")
    ET.SubElement(view, "Header", value="$segaudit_header")
    ET.SubElement(view, "Image", name=TO_NAME, value=f"${TO_NAME}", zoom="true")
    brush = ET.SubElement(view, "BrushLabels", name=FROM_NAME, toName=TO_NAME)
    for name, color in zip(review.class_names, review.hex_colors(), strict=True):
        ET.SubElement(brush, "Label", value=name, background=color)
    ET.indent(view)
    return ET.tostring(view, encoding="unicode")


def _task(image: ReviewImage, names: tuple[str, ...], label_by: str, root: str) -> dict[str, Any]:
    """Build one task: the image, and its regions as one prediction to accept or correct."""
    from segaudit._version import __version__

    results = []
    for region in image.regions:
        row0, col0, _, _ = region.box
        rle = labelstudio_rle(region.mask, row0, col0, image.height, image.width)
        note = (
            f"{region.issue_type}: given {region.given_class}, predicted "
            f"{region.predicted_class}, severity {region.severity:.4g}"
        )
        results.append(
            {
                "id": f"r{region.region}",
                "from_name": FROM_NAME,
                "to_name": TO_NAME,
                "type": "brushlabels",
                "original_width": image.width,
                "original_height": image.height,
                "image_rotation": 0,
                "value": {
                    "format": "rle",
                    "rle": rle,
                    "brushlabels": [names[region.label(label_by)]],
                },
                "meta": {"text": [note], "segaudit": region.attributes()},
            }
        )
    score = image.score
    header = f"{image.stem}: {len(image.regions)} flagged region(s)"
    return {
        "data": {
            TO_NAME: root + image.file_name,
            "segaudit_stem": image.stem,
            "segaudit_score": score,
            "segaudit_header": header,
        },
        "predictions": [
            {
                "model_version": f"segaudit {__version__}",
                "score": score if score is not None else 0.0,
                "result": results,
            }
        ],
    }


def labelstudio_tasks(
    review: ReviewSet, *, label_by: str = "predicted", image_root: str = ""
) -> list[dict[str, Any]]:
    """Build the tasks of `review`, one per image with regions (see `write_labelstudio`)."""
    label_by = check_choice(label_by, "label_by", LABEL_BY, "write_labelstudio")
    return [_task(image, review.class_names, label_by, image_root) for image in review]


def write_labelstudio(
    review: ReviewSet,
    tasks_path: str | os.PathLike[str],
    config_path: str | os.PathLike[str] | None = None,
    *,
    label_by: str = "predicted",
    image_root: str = "",
) -> None:
    """Write Label Studio review tasks (JSON) and, if asked, the labelling config (XML).

    Parameters
    ----------
    review : ReviewSet
        The regions, from `from_arrays` or `from_scan`.
    tasks_path : path
        The tasks file to import into a project.
    config_path : path, optional
        Where to write the project's labelling config (`labelstudio_config`).
    label_by : {"predicted", "given"}, default="predicted"
        The brush label each region is drawn with.
    image_root : str, default=""
        Put before each image's file name to make the task's ``image`` URL, e.g.
        ``"/data/local-files/?d=images/"`` for Label Studio's local file storage.

    Notes
    -----
    Each task's ``data`` holds ``image``, ``segaudit_stem``, ``segaudit_score``
    and ``segaudit_header``; its one prediction (``model_version`` "segaudit
    <version>", ``score`` the image score) has one ``brushlabels`` result per
    region: Label Studio's brush RLE of the region's pixels (RGBA, all four
    bytes 255 inside), its issue in ``meta.text`` and every attribute in
    ``meta.segaudit``. Accepting or editing the prediction in Label Studio turns it
    into an annotation, which its converter (``BRUSH_TO_PNG``) exports as masks.
    Files are written atomically.
    """
    tasks = labelstudio_tasks(review, label_by=label_by, image_root=image_root)
    with atomic_write(tasks_path) as fh:
        json.dump(tasks, fh, allow_nan=False)
    if config_path is not None:
        with atomic_write(config_path) as fh:
            fh.write(labelstudio_config(review) + "\n")
