"""COCO: each region an annotation with a compressed RLE mask and its issue attributes."""

from __future__ import annotations

import datetime
import json
import os
from typing import Any

from segaudit._validation import check_choice
from segaudit.export._review import LABEL_BY, ReviewSet
from segaudit.export._rle import coco_rle
from segaudit.io._atomic import atomic_write

__all__ = ["coco_document", "write_coco"]


def coco_document(review: ReviewSet, *, label_by: str = "predicted") -> dict[str, Any]:
    """Build the COCO dataset of the regions in `review` (see `write_coco`)."""
    label_by = check_choice(label_by, "label_by", LABEL_BY, "write_coco")
    from segaudit._version import __version__

    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for image in review:
        image_id = len(images) + 1
        images.append(
            {
                "id": image_id,
                "file_name": image.file_name,
                "height": image.height,
                "width": image.width,
                "segaudit_stem": image.stem,
                "segaudit_score": image.score,
            }
        )
        for region in image.regions:
            row0, col0, row1, col1 = region.box
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": region.label(label_by) + 1,
                    "segmentation": coco_rle(region.mask, row0, col0, image.height, image.width),
                    "area": region.area,
                    "bbox": [col0, row0, col1 - col0, row1 - row0],
                    "iscrowd": 0,
                    "attributes": region.attributes(),
                }
            )
    categories = [
        {"id": k + 1, "name": name, "supercategory": "", "segaudit_class_id": k}
        for k, name in enumerate(review.class_names)
    ]
    info = {
        "description": f"segaudit label-issue regions to review (drawn as the {label_by} class)",
        "version": __version__,
        "date_created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    return {
        "info": info,
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": categories,
    }


def write_coco(
    review: ReviewSet, path: str | os.PathLike[str], *, label_by: str = "predicted"
) -> None:
    """Write the regions as a COCO instance-segmentation file (JSON, written atomically).

    Parameters
    ----------
    review : ReviewSet
        The regions, from `from_arrays` or `from_scan`.
    path : path
        The ``.json`` file to write; its folder must exist.
    label_by : {"predicted", "given"}, default="predicted"
        The class each region is filed under: the model's suggestion or the given label.

    Notes
    -----
    One image per image with regions (``file_name``, ``height``, ``width``, plus
    ``segaudit_stem`` and ``segaudit_score``); one annotation per region with
    ``segmentation`` as pycocotools' compressed RLE (column-major), ``bbox``
    ``[x, y, width, height]``, ``area`` in pixels, ``iscrowd`` 0 and
    ``attributes``: ``issue_type``, ``severity``, ``given_class``,
    ``predicted_class``, ``given_label``, ``predicted_label``,
    ``mean_self_confidence`` and ``region`` (its number in ``regions.csv``). Category
    ``k + 1`` is class id ``k`` (COCO ids start at 1).
    """
    document = coco_document(review, label_by=label_by)
    with atomic_write(path) as fh:
        json.dump(document, fh, allow_nan=False)
