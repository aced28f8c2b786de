"""``segaudit scan``: a folder of masks and probabilities in, CSVs, masks and a report out.

Files are streamed through :class:`~segaudit.LabelAudit` (one read of each
probability file, bounded memory); outputs are staged in a hidden folder and
moved into place at the end, ``report.html`` last, so a failed run never leaves
a complete-looking partial report.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from segaudit._progress import progress
from segaudit._region_spool import RegionSpool
from segaudit._regions import image_regions
from segaudit._stream import LabelAudit
from segaudit.io import ClassInfo, DatasetError, FolderDataset, InputProblem, scan_folder
from segaudit.io._atomic import atomic_write
from segaudit.summary import confusion_frame

__all__ = ["ScanResult", "run_scan"]

IMAGE_COLUMNS = ["image", "score", "num_pixel_issues", "fraction_pixel_issues"]


@dataclass
class ScanResult:
    """What a scan found and wrote."""

    out_dir: Path
    images: pd.DataFrame
    regions: pd.DataFrame
    """The most severe regions, as shown in the report (``regions.csv`` has all)."""
    region_types: dict[str, int]
    confusions: pd.DataFrame
    per_class: pd.DataFrame
    summary: dict[str, Any]
    skipped: list[InputProblem] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


@contextlib.contextmanager
def _staging(out_dir: Path) -> Iterator[Path]:
    """Make a hidden folder inside `out_dir`, removed whatever happens."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".segaudit-", dir=out_dir))
    try:
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _publish(stage: Path, out_dir: Path) -> list[Path]:
    """Move staged files into `out_dir`, ``report.html`` last; return their final paths.

    Issue masks left in ``out_dir/masks`` by an earlier scan and not written by
    this one are removed, so the folder always matches ``images.csv``.
    """
    staged = sorted(p for p in stage.rglob("*") if p.is_file())
    staged.sort(key=lambda p: p.name == "report.html")
    published = []
    for src in staged:
        dst = out_dir / src.relative_to(stage)
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dst)
        published.append(dst)
    fresh = set(published)
    for old in (out_dir / "masks").glob("*.png"):
        if old not in fresh:
            old.unlink()
    return published


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    with atomic_write(path) as fh:
        frame.to_csv(fh, index=False)


def _with_stems(regions: pd.DataFrame, stems: list[str]) -> pd.DataFrame:
    regions.insert(0, "stem", [stems[i] for i in regions["image"]])
    return regions


def _write_regions(spool: RegionSpool, names: list[str], stems: list[str], path: Path) -> None:
    """Write every region to `path`, most severe first, one chunk at a time."""
    with atomic_write(path) as fh:
        for i, chunk in enumerate(spool.ranked(names)):
            _with_stems(chunk, stems).to_csv(fh, index=False, header=i == 0)


def _write_mask_png(mask: np.ndarray, path: Path) -> None:
    from PIL import Image

    with atomic_write(path, "wb") as fh:
        Image.fromarray(mask.astype(np.uint8) * 255, mode="L").save(fh, format="PNG")


def _audit(dataset: FolderDataset, audit: LabelAudit, verbose: bool) -> None:
    """Stream every item through the audit; name the file on bad values."""
    with progress(len(dataset), "reading probabilities", verbose) as bar:
        for i, item in enumerate(dataset):
            try:
                audit.update(item.labels, item.probs)
            except ValueError as err:
                files = dataset.items[i]
                message = f"{err} (mask {files.mask_path.name})"
                raise DatasetError([InputProblem(files.probs_path, message, item.stem)]) from err
            bar.update(1)


def _per_class(audit: LabelAudit, names: list[str]) -> pd.DataFrame:
    pixels, flagged = audit.class_counts()
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = np.where(pixels > 0, flagged / np.maximum(pixels, 1), 0.0)
    return pd.DataFrame(
        {
            "class": names,
            "pixels": pixels,
            "flagged": flagged,
            "fraction_flagged": fraction,
            "threshold": audit.thresholds,
        }
    )


def run_scan(
    masks_dir: str | os.PathLike[str],
    probs_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    images_dir: str | os.PathLike[str] | None = None,
    classes: ClassInfo | str | os.PathLike[str] | None = None,
    ignore_index: int | None = None,
    from_logits: bool = False,
    downsample: int = 1,
    layout: str = "KHW",
    top: int = 20,
    background: int | None = 0,
    skip_bad: bool = False,
    memory_limit: int | None = 1 << 30,
    verbose: bool = True,
) -> ScanResult:
    """Scan a folder of masks against a folder of per-image probabilities.

    Parameters
    ----------
    masks_dir, probs_dir : path
        Label masks (PNG/TIFF) and probabilities or logits (``.npy``/``.npz``),
        matched by file stem.
    out_dir : path
        Created if needed; receives ``images.csv``, ``regions.csv``,
        ``confusions.csv``, ``per_class.csv``, ``masks/<stem>.png`` for images
        with issues, and ``report.html``.
    images_dir : path, optional
        Original images, for overlays in the report.
    classes : ClassInfo or path, optional
        Class names (and colours).
    ignore_index : int, optional
        Void label.
    from_logits : bool, default=False
        The probability files hold logits.
    downsample : int, default=1
        As in :func:`~segaudit.find_label_issues`.
    layout : {"KHW", "HWK"}, default="KHW"
        Axis order of the probability files.
    top : int, default=20
        Images (and 5x regions) shown in the report.
    background : int or None, default=0
        Background class id for region issue types.
    skip_bad : bool, default=False
        Skip items with input problems instead of stopping.
    memory_limit : int, optional
        Bytes of summary kept in RAM before spilling to disk.
    verbose : bool, default=True
        Progress bars.

    Raises
    ------
    DatasetError
        Listing every input problem, each with its file (unless `skip_bad`).
    """
    from segaudit.report import ReportImage, write_report

    out = Path(out_dir)
    dataset = scan_folder(masks_dir, probs_dir, images_dir=images_dir, layout=layout,
                          ignore_index=ignore_index, classes=classes)  # fmt: skip
    skipped: list[InputProblem] = []
    if skip_bad:
        dataset, skipped = dataset.skip_bad()
    else:
        dataset.raise_if_problems()
    k = dataset.num_classes
    info = dataset.classes
    names = list(info.names) if info is not None else [str(i) for i in range(k)]
    colors = list(info.colors) if info is not None and info.colors is not None else None
    with contextlib.ExitStack() as stack:
        stage = stack.enter_context(_staging(out))
        spill = stack.enter_context(_staging(out))
        audit = stack.enter_context(LabelAudit(
            k, ignore_index=ignore_index, from_logits=from_logits, downsample=downsample,
            memory_limit=memory_limit, spill_dir=spill,
        ))  # fmt: skip
        _audit(dataset, audit, verbose)
        scores = audit.image_scores()
        worst = set(np.argsort(scores, kind="stable")[:top].tolist())
        (stage / "masks").mkdir()
        spool = stack.enter_context(RegionSpool(spill / "regions.bin"))
        rows, shown = [], []
        with progress(len(dataset), "finding regions", verbose) as bar:
            for img in audit.iter_images():
                stem = dataset.stems[img.index]
                void = img.predicted < 0
                valid = img.labels.size - int(np.count_nonzero(void))
                flagged = int(img.issues.sum())
                rows.append((stem, scores[img.index], flagged, flagged / valid if valid else 0.0))
                if flagged:
                    _write_mask_png(img.issues, stage / "masks" / f"{stem}.png")
                    spool.append(image_regions(img.issues, img.labels, img.predicted, img.scores,
                                               image=img.index, background=background,
                                               ignore_index=ignore_index))  # fmt: skip
                if img.index in worst:
                    photo = dataset.load(img.index).image if images_dir is not None else None
                    predicted = np.where(void, img.labels, img.predicted)
                    score = float(scores[img.index])
                    shown.append(ReportImage(stem, score, flagged, img.labels.copy(), predicted,
                                             img.issues.copy(), photo))  # fmt: skip
                bar.update(1)
        images = pd.DataFrame(rows, columns=IMAGE_COLUMNS).sort_values(
            ["score", "image"], kind="stable"
        )
        confusions = confusion_frame(audit.confusions(), names, top=None)
        per_class = _per_class(audit, names)
        summary = {
            "images": len(dataset),
            "skipped items": len(skipped),
            "classes": k,
            "labelled pixels": int(per_class["pixels"].sum()),
            "flagged pixels": int(per_class["flagged"].sum()),
            "images with issues": int((images["num_pixel_issues"] > 0).sum()),
            "regions": spool.count,
            "estimated issues (T)": audit.num_issues,
        }
        _write_csv(images, stage / "images.csv")
        _write_regions(spool, names, dataset.stems, stage / "regions.csv")
        _write_csv(confusions, stage / "confusions.csv")
        _write_csv(per_class, stage / "per_class.csv")
        regions = _with_stems(spool.head(5 * top, names), dataset.stems)
        shown.sort(key=lambda r: (r.score, r.stem))
        write_report(stage / "report.html", images=shown, regions=regions,
                     confusions=confusions, per_class=per_class, summary=summary,
                     class_names=names, class_colors=colors,
                     ignore_index=ignore_index)  # fmt: skip
        files = _publish(stage, out)
    return ScanResult(out, images.reset_index(drop=True), regions, spool.type_counts(),
                      confusions, per_class, summary, skipped, files)  # fmt: skip
