"""FiftyOne: segaudit's results as fields of a FiftyOne dataset, to browse in its app.

Per image with regions: the flag mask (``fo.Segmentation``, 1 where a pixel is
flagged), the image's label-quality score, and the regions
(``fo.Detections``, each with its instance mask, class and issue
attributes). Needs the ``fiftyone`` extra.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from segaudit._optional import require
from segaudit._validation import check_choice, param_error
from segaudit.export._review import LABEL_BY, ReviewImage, ReviewSet
from segaudit.export._scan import IMAGE_PATH_COLUMN, from_scan, read_scan_csv

__all__ = ["add_results", "dataset_from_scan"]


def _fo() -> Any:
    return require("fiftyone", "fiftyone", "The FiftyOne integration")


def _stem(filepath: str) -> str:
    return Path(filepath).stem


def _detections(fo: Any, image: ReviewImage, names: tuple[str, ...], label_by: str) -> Any:
    """Build the regions of one image as ``fo.Detections`` (relative boxes, box-sized masks)."""
    found = []
    for region in image.regions:
        row0, col0, row1, col1 = region.box
        box = [
            col0 / image.width,
            row0 / image.height,
            (col1 - col0) / image.width,
            (row1 - row0) / image.height,
        ]
        attributes = region.attributes()
        found.append(
            fo.Detection(
                label=names[region.label(label_by)],
                bounding_box=box,
                mask=region.mask.copy(),
                **{k: v for k, v in attributes.items() if v is not None},
            )
        )
    return fo.Detections(detections=found)


def _set(sample: Any, fo: Any, image: ReviewImage, review: ReviewSet, p: str, by: str) -> None:
    """Write one image's results into its sample's fields (not yet saved)."""
    sample[f"{p}_flags"] = fo.Segmentation(mask=image.issues.astype(np.uint8))
    sample[f"{p}_score"] = image.score
    sample[f"{p}_regions"] = _detections(fo, image, review.class_names, by)


def add_results(
    dataset: Any,
    review: ReviewSet,
    *,
    key: Callable[[str], str] = _stem,
    prefix: str = "segaudit",
    label_by: str = "predicted",
) -> int:
    """Add segaudit's results to the matching samples of an existing FiftyOne dataset.

    Parameters
    ----------
    dataset : fiftyone.core.dataset.Dataset
        Its samples are matched to the images of `review` by ``key(filepath)``
        against each image's stem; samples with no match are left as they are.
    review : ReviewSet
        The regions, from :func:`~segaudit.export.from_arrays` or
        :func:`~segaudit.export.from_scan`.
    key : callable, default: the file path's stem
        Maps a sample's ``filepath`` to an image stem.
    prefix : str, default="segaudit"
        Fields written: ``<prefix>_flags`` (``fo.Segmentation``: 1 where
        flagged, 0 elsewhere), ``<prefix>_score`` (float, lower is worse) and
        ``<prefix>_regions`` (``fo.Detections``: one per region, labelled with
        the `label_by` class, its mask the size of its box, with the attributes
        ``issue_type``, ``severity``, ``given_class``, ``predicted_class``,
        ``given_label``, ``predicted_label``, ``mean_self_confidence`` and ``region``).
    label_by : {"predicted", "given"}, default="predicted"
        The class each detection is labelled with.

    Returns
    -------
    int
        How many samples were updated.

    Raises
    ------
    ValueError
        If two samples map to the same stem.
    """
    fo = _fo()
    label_by = check_choice(label_by, "label_by", LABEL_BY, "add_results")
    by_stem: dict[str, str] = {}
    for sample_id, filepath in zip(*dataset.values(["id", "filepath"]), strict=True):
        stem = key(filepath)
        if stem in by_stem:
            got = f"two samples with the stem {stem!r}"
            raise param_error("key", "add_results", "one sample per stem", got)
        by_stem[stem] = sample_id
    updated = 0
    for image in review:
        sample_id = by_stem.get(image.stem)
        if sample_id is None:
            continue
        sample = dataset[sample_id]
        _set(sample, fo, image, review, prefix, label_by)
        sample.save()
        updated += 1
    return updated


def dataset_from_scan(
    scan_dir: str | os.PathLike[str],
    images_dir: str | os.PathLike[str],
    *,
    name: str | None = None,
    file_names: Mapping[str, str] | None = None,
    prefix: str = "segaudit",
    label_by: str = "predicted",
) -> Any:
    """Build a FiftyOne dataset of a scan's images with segaudit's results.

    Parameters
    ----------
    scan_dir : path
        A folder ``segaudit scan`` wrote.
    images_dir : path
        The images; each image's file is ``images_dir / file_name``, with the
        file names of :func:`~segaudit.export.from_scan`.
    name : str, optional
        The dataset's name (FiftyOne picks one if None); it is not persistent.
    file_names : mapping of str to str, optional
        As in :func:`~segaudit.export.from_scan`.
    prefix, label_by
        As in `add_results`.

    Returns
    -------
    fiftyone.core.dataset.Dataset
        One sample per image of ``images.csv`` (field ``segaudit_stem``, and the
        score); those with regions also get the flags and regions of `add_results`.
    """
    fo = _fo()
    label_by = check_choice(label_by, "label_by", LABEL_BY, "dataset_from_scan")
    review = from_scan(scan_dir, file_names=file_names)
    images = read_scan_csv(Path(scan_dir) / "images.csv")
    root = Path(images_dir)
    names = dict(file_names or {})
    if file_names is None and IMAGE_PATH_COLUMN in images.columns:
        names = dict(zip(images["image"], images[IMAGE_PATH_COLUMN], strict=True))
    samples: dict[str, Any] = {}
    for stem, score in zip(images["image"], images["score"].astype(float), strict=True):
        sample = fo.Sample(filepath=str(root / names.get(stem, f"{stem}.png")))
        sample[f"{prefix}_stem"] = stem
        sample[f"{prefix}_score"] = None if np.isnan(score) else float(score)
        samples[stem] = sample
    for image in review:
        sample = samples.get(image.stem)
        if sample is None:  # not in images.csv: a scan folder never has one
            sample = samples[image.stem] = fo.Sample(filepath=str(root / image.file_name))
            sample[f"{prefix}_stem"] = image.stem
        _set(sample, fo, image, review, prefix, label_by)
    dataset = fo.Dataset(name)
    dataset.add_samples(list(samples.values()))
    return dataset
