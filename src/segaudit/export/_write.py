"""`write_exports` and `export_scan`: several formats at once, under fixed file names."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from segaudit._validation import check_choice, param_error
from segaudit.export._coco import write_coco
from segaudit.export._cvat import write_cvat
from segaudit.export._labelstudio import write_labelstudio
from segaudit.export._review import LABEL_BY, ReviewSet
from segaudit.export._scan import from_scan

__all__ = ["EXPORT_FILES", "EXPORT_FORMATS", "export_scan", "write_exports"]

EXPORT_FORMATS = ("coco", "labelstudio", "cvat")
"""The formats `write_exports` writes, as ``segaudit scan --export`` names them."""
EXPORT_FILES = {
    "coco": ("coco.json",),
    "labelstudio": ("labelstudio_tasks.json", "labelstudio_config.xml"),
    "cvat": ("cvat.xml", "cvat_labels.json"),
}
"""The files each format writes, in the output folder."""


def write_exports(
    review: ReviewSet,
    formats: Sequence[str],
    out_dir: str | os.PathLike[str],
    *,
    label_by: str = "predicted",
    image_root: str = "",
) -> list[Path]:
    """Write `review` in each of `formats` into `out_dir`, under the names of `EXPORT_FILES`.

    Parameters
    ----------
    review : ReviewSet
        The regions, from `from_arrays` or `from_scan`.
    formats : sequence of {"coco", "labelstudio", "cvat"}
        Formats to write, each once.
    out_dir : path
        Folder to write into, created if needed.
    label_by : {"predicted", "given"}, default="predicted"
        The class each region is drawn as.
    image_root : str, default=""
        Label Studio only: put before each file name to make the image URL.

    Returns
    -------
    list of Path
        The files written, in the order of `formats`.

    Examples
    --------
    >>> import tempfile
    >>> out = write_exports(ReviewSet(list, ["bg"]), ["cvat", "coco"], tempfile.mkdtemp())
    >>> [p.name for p in out]
    ['cvat.xml', 'cvat_labels.json', 'coco.json']
    """
    chosen = [check_choice(f, "formats", EXPORT_FORMATS, "write_exports") for f in formats]
    if len(set(chosen)) != len(chosen):
        raise param_error("formats", "write_exports", "each format once", list(formats))
    label_by = check_choice(label_by, "label_by", LABEL_BY, "write_exports")
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name in chosen:
        paths = [folder / f for f in EXPORT_FILES[name]]
        if name == "coco":
            write_coco(review, paths[0], label_by=label_by)
        elif name == "labelstudio":
            write_labelstudio(review, paths[0], paths[1], label_by=label_by, image_root=image_root)
        else:
            write_cvat(review, paths[0], paths[1], label_by=label_by)
        written += paths
    return written


def export_scan(
    scan_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    formats: Sequence[str] = EXPORT_FORMATS,
    *,
    file_names: dict[str, str] | None = None,
    label_by: str = "predicted",
    image_root: str = "",
) -> list[Path]:
    """Export the regions of a scan folder (`from_scan`) with `write_exports`.

    The options are those of `from_scan` and `write_exports`. `out_dir` is best
    outside the scan folder, whose files belong to the scan (a later scan stops
    at a file it did not write). Returns the files written.
    """
    review = from_scan(scan_dir, file_names=file_names)
    return write_exports(review, formats, out_dir, label_by=label_by, image_root=image_root)
