"""``segaudit scan``: a folder of masks and probabilities in, CSVs, masks and a report out.

Files are streamed through :class:`~segaudit.LabelAudit` (one read of each
probability file, bounded memory); outputs are staged in the output folder's
``.segaudit/stage-<id>`` and published as a whole by
:class:`~segaudit.io._publish.OutputFolder`: a failed or killed run never
changes what is visible, and never touches a file it did not write.
"""

from __future__ import annotations

import contextlib
import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from segaudit._progress import progress
from segaudit._validation import check_choice, param_error
from segaudit.drivers._stream import LabelAudit
from segaudit.engine._setup import SetupWarning
from segaudit.filter import FILTER_BY, RECOMMENDED_FILTER
from segaudit.io import (
    ClassInfo,
    DatasetError,
    FolderDataset,
    FolderItem,
    InputProblem,
    read_image,
    scan_folder,
)
from segaudit.io._atomic import atomic_write
from segaudit.io._csv import write_csv
from segaudit.io._publish import OutputFolder, check_out_dir
from segaudit.io._scan_folder import model_folders
from segaudit.rank import RECOMMENDED_METHOD
from segaudit.regions._image import image_regions
from segaudit.regions._spool import RegionSpool
from segaudit.summary import confusion_frame

__all__ = ["ProbsDirs", "ScanResult", "model_path", "probs_inputs", "run_scan", "score_method_for"]

ProbsDirs = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]
"""A probability folder, or several (one per model; see `model_folders`)."""

IMAGE_COLUMNS = ["image", "score", "num_pixel_issues", "fraction_pixel_issues", "method"]


def score_method_for(filter_by: str) -> str:
    """Return the image-score method that goes with a detector.

    ``"softmin"`` (the reference's) for ``"self_confidence"``, else the
    recommended method (``"region_fraction"``), which scores an image by the
    share of its labelled pixels in flagged regions.

    Examples
    --------
    >>> score_method_for("self_confidence"), score_method_for("confident_regions")
    ('softmin', 'region_fraction')
    """
    return "softmin" if filter_by == "self_confidence" else RECOMMENDED_METHOD


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
    """The visible paths written, ``report.html`` last."""
    run_dir: Path | None = None
    """The complete run behind the visible paths, ``OUT/.segaudit/runs/<id>``."""
    warnings: list[str] = field(default_factory=list)
    """Signs of a wrong set-up (:meth:`~segaudit.LabelAudit.setup_warnings`)."""


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    with atomic_write(path) as fh:
        write_csv(frame, fh)


def _with_stems(regions: pd.DataFrame, stems: list[str]) -> pd.DataFrame:
    regions.insert(0, "stem", [stems[i] for i in regions["image"]])
    return regions


def _write_regions(spool: RegionSpool, names: list[str], stems: list[str], path: Path) -> None:
    """Write every region to `path`, most severe first, one chunk at a time."""
    with atomic_write(path) as fh:
        for i, chunk in enumerate(spool.ranked(names)):
            write_csv(_with_stems(chunk, stems), fh, header=i == 0)


def _write_mask_png(mask: np.ndarray, path: Path) -> None:
    from PIL import Image

    with atomic_write(path, "wb") as fh:
        Image.fromarray(mask.astype(np.uint8) * 255, mode="L").save(fh, format="PNG")


_ENGINE_WHERE = (
    (re.compile(r"LabelAudit\.update \(batch \d+\): "), ""),
    (re.compile(r" of image \d+, "), ", "),
    (re.compile(r"\bimage \d+, "), ""),
    (re.compile(r" in batch \d+"), ""),
)


def _reason(err: ValueError) -> str:
    """Return the engine's message without batch and image numbers (the file names the item)."""
    text = str(err)
    for pattern, replacement in _ENGINE_WHERE:
        text = pattern.sub(replacement, text)
    return text


def _feed(dataset: FolderDataset, i: int, audit: LabelAudit) -> InputProblem | None:
    """Read item `i` into the audit; return its problem instead if it has one."""
    files = dataset.items[i]
    try:
        item = dataset.load(i)
    except DatasetError as err:  # an ItemError: this item's file and reason
        return replace(err.problems[0], stem=files.stem)
    except OSError as err:
        path = Path(err.filename) if err.filename else files.mask_path
        return InputProblem(path, f"cannot read the file ({err.strerror or err}).", files.stem)
    try:
        audit.update(item.labels, item.probs)  # several models: [p1, ..., pM]
    except ValueError as err:  # the audit is left as it was (see LabelAudit.update)
        message = f"{_reason(err)} (mask {files.mask_path.name})"
        return InputProblem(model_path(files, str(err)), message, files.stem)
    return None


_MODEL_INDEX = re.compile(r"pred_probs\[(\d+)\]")


def model_path(files: FolderItem, message: str) -> Path:
    """Return the probability file an engine message is about (``pred_probs[m]``: model m).

    Examples
    --------
    >>> item = FolderItem("a", Path("m/a.png"), Path("p0/a.npy"), None, (1, 1),
    ...                   (Path("p0/a.npy"), Path("p1/a.npy")))
    >>> model_path(item, "pred_probs[1] must be finite").as_posix()
    'p1/a.npy'
    >>> model_path(item, "bad K").as_posix()
    'p0/a.npy'
    """
    found = _MODEL_INDEX.search(message)
    m = int(found.group(1)) if found else 0
    return files.probs_paths[m] if m < len(files.probs_paths) else files.probs_path


def probs_inputs(probs_dir: ProbsDirs) -> dict[str, Path]:
    """Return the probability folders by name, for `check_out_dir`: those given, each model's."""
    given = [probs_dir] if isinstance(probs_dir, (str, os.PathLike)) else list(probs_dir)
    folders = [Path(p) for p in given] + model_folders(probs_dir)
    unique = list(dict.fromkeys(folders))
    return {
        "probabilities" if i == 0 else f"probabilities #{i + 1}": folder
        for i, folder in enumerate(unique)
    }


def _audit(
    dataset: FolderDataset, audit: LabelAudit, *, skip_bad: bool, verbose: bool
) -> tuple[list[int], list[InputProblem]]:
    """Stream every item through the audit; return the items kept and the problems skipped.

    Raises
    ------
    DatasetError
        Naming the file, on the first bad item unless `skip_bad`; if none is left.
    """
    kept: list[int] = []
    skipped: list[InputProblem] = []
    with progress(len(dataset), "reading probabilities", verbose) as bar:
        for i in range(len(dataset)):
            problem = _feed(dataset, i, audit)
            if problem is None:
                kept.append(i)
            elif skip_bad:
                skipped.append(problem)
            else:
                raise DatasetError([problem])
            bar.update(1)
    if not kept:
        raise DatasetError(skipped, "no usable item is left after skipping")
    return kept, skipped


def _per_class(audit: LabelAudit, names: list[str]) -> pd.DataFrame:
    pixels, flagged = audit.class_counts()
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = np.where(pixels > 0, flagged / np.maximum(pixels, 1), 0.0)
    frame: pd.DataFrame = pd.DataFrame(
        {
            "class": names,
            "pixels": pixels,
            "flagged": flagged,
            "fraction_flagged": fraction,
            "threshold": audit.thresholds,
        }
    )
    return frame


def run_scan(
    masks_dir: str | os.PathLike[str],
    probs_dir: ProbsDirs,
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
    filter_by: str = RECOMMENDED_FILTER,
    score_method: str | None = None,
    memory_limit: int | None = 1 << 30,
    verbose: bool = True,
) -> ScanResult:
    """Scan a folder of masks against a folder of per-image probabilities.

    Parameters
    ----------
    masks_dir, probs_dir : path
        Label masks (PNG/TIFF) and probabilities or logits (``.npy``/``.npz``),
        matched by file stem. Several models (or folds): `probs_dir` a list of
        folders, or a folder holding only sub-folders, one per model
        (:func:`~segaudit.io._scan_folder.model_folders`). Each item's files
        are read once and combined by :meth:`~segaudit.LabelAudit.update`
        (per-class median); the summary's ``models`` says how many.
    out_dir : path
        The scan's own folder, created if needed; it must neither be, contain
        nor lie inside an input folder. Visible results: ``images.csv``,
        ``regions.csv``, ``confusions.csv``, ``per_class.csv``, ``masks/<stem>.png``
        for images with issues, and ``report.html``. Each is a link through
        ``.segaudit/current``, which points to the complete run
        ``.segaudit/runs/<id>/`` (with ``manifest.json``: run id, files, sha256)
        and is replaced in one rename, so readers see the old run or the new one.
        A lock (``.segaudit/lock``) keeps a second scan out; files the scan did
        not write are never changed or deleted (a foreign file at one of those
        names stops the scan).
    images_dir : path, optional
        Original images, for overlays in the report.
    classes : ClassInfo or path, optional
        Class names (and colours).
    ignore_index : int, optional
        Void label.
    from_logits : bool, default=False
        The probability files hold logits.
    downsample : int, default=1
        As in :func:`~segaudit.find_label_issues`; checked against every size first.
        Only with ``filter_by="self_confidence"`` and image scores other than
        ``"region_fraction"``.
    layout : {"KHW", "HWK"}, default="KHW"
        Axis order of the probability files.
    top : int, default=20
        Images (and 5x regions) shown in the report.
    background : int or None, default=0
        Background class id for region issue types.
    skip_bad : bool, default=False
        Skip items with input problems, found up front or while reading,
        instead of stopping; they are left out of every output.
    filter_by : {"confident_regions", "self_confidence"}, default="confident_regions"
        The detector, as in :func:`~segaudit.find_label_issues`;
        ``"self_confidence"`` gives the reference's (cleanlab's) flags.
    score_method : {"softmin", "num_pixel_issues", "region_fraction"}, optional
        Image scores, as in :func:`~segaudit.get_label_quality_scores`; default:
        `score_method_for` `filter_by` (``"region_fraction"`` for
        ``"confident_regions"``, ``"softmin"`` for ``"self_confidence"``). Named in
        the summary and in the ``method`` column of ``images.csv``.
    memory_limit : int, optional
        Bytes of summary kept in RAM before spilling to ``.segaudit/spill-<id>``.
    verbose : bool, default=True
        Progress bars.

    Returns
    -------
    ScanResult
        Its `files` are the visible paths, ``report.html`` last.

    Raises
    ------
    ValueError
        If `out_dir` is a file, overlaps an input folder or holds a file the
        scan did not write at a result's name (before any work).
    DatasetError
        Listing every input problem, each with its file (unless `skip_bad`).
    OutputBusyError
        If another scan is writing to `out_dir`.
    OSError
        If `out_dir` cannot be written (not writable, disk full); what this run
        wrote is removed and the previous results stay visible.

    Notes
    -----
    CSV text cells (stems, class names) that begin with ``=``, ``+``, ``-``,
    ``@``, a tab or a carriage return get a leading ``'`` so that spreadsheets
    show them as text instead of running them as formulas.
    """
    from segaudit import __version__
    from segaudit.report import ReportImage, write_report

    out = Path(out_dir)
    filter_by = check_choice(filter_by, "filter_by", FILTER_BY, "run_scan")
    method = score_method_for(filter_by) if score_method is None else score_method
    if downsample != 1 and (filter_by != "self_confidence" or method == "region_fraction"):
        raise param_error(
            "downsample",
            "run_scan",
            "1 with filter_by='confident_regions' or image scores 'region_fraction' "
            "(use filter_by='self_confidence' to rank blocks)",
            downsample,
        )
    inputs = {"masks": masks_dir, **probs_inputs(probs_dir), "images": images_dir}
    check_out_dir(out, inputs, "run_scan")
    with contextlib.ExitStack() as stack:
        folder = stack.enter_context(OutputFolder(out, version=__version__))
        dataset = scan_folder(
            masks_dir,
            probs_dir,
            images_dir=images_dir,
            layout=layout,
            ignore_index=ignore_index,
            classes=classes,
            downsample=downsample,
            from_logits=from_logits,
        )
        skipped: list[InputProblem] = []
        if skip_bad:
            dataset, skipped = dataset.skip_bad()
        else:
            dataset.raise_if_problems()
        k = dataset.num_classes
        if k is None:  # not reached: with no readable probability file, every item is a problem
            raise DatasetError(dataset.problems, "no probability file could be read")
        info = dataset.classes
        names = list(info.names) if info is not None else [str(i) for i in range(k)]
        colors = list(info.colors) if info is not None and info.colors is not None else None
        stage, spill = folder.stage, folder.spill
        audit = stack.enter_context(
            LabelAudit(
                k,
                ignore_index=ignore_index,
                from_logits=from_logits,
                downsample=downsample,
                memory_limit=memory_limit,
                spill_dir=spill,
                filter_by=filter_by,
            )
        )
        kept, late = _audit(dataset, audit, skip_bad=skip_bad, verbose=verbose)
        skipped += late
        items = [dataset.items[i] for i in kept]
        stems = [item.stem for item in items]
        # shown in the summary and the report instead of as Python warnings
        stack.enter_context(warnings.catch_warnings())
        warnings.simplefilter("ignore", SetupWarning)
        setup = audit.setup_warnings()
        scores = audit.image_scores(method=method)
        worst = set(np.argsort(scores, kind="stable")[:top].tolist())
        spool = stack.enter_context(RegionSpool(spill / "regions.bin"))
        rows, shown = [], []
        with progress(len(items), "finding regions", verbose) as bar:
            for img in audit.iter_images():
                stem = stems[img.index]
                void = img.predicted < 0
                valid = img.labels.size - int(np.count_nonzero(void))
                flagged = int(img.issues.sum())
                fraction = flagged / valid if valid else 0.0
                rows.append((stem, scores[img.index], flagged, fraction, method))
                if flagged:
                    _write_mask_png(img.issues, stage / "masks" / f"{stem}.png")
                    spool.append(
                        image_regions(
                            img.issues,
                            img.labels,
                            img.predicted,
                            img.scores,
                            image=img.index,
                            background=background,
                            ignore_index=ignore_index,
                        )
                    )
                if img.index in worst:
                    path = items[img.index].image_path
                    photo = read_image(path) if path is not None else None
                    predicted = np.where(void, img.labels, img.predicted)
                    score = float(scores[img.index])
                    shown.append(
                        ReportImage(
                            stem,
                            score,
                            flagged,
                            img.labels.copy(),
                            predicted,
                            img.issues.copy(),
                            photo,
                        )
                    )
                bar.update(1)
        images = pd.DataFrame(rows, columns=IMAGE_COLUMNS).sort_values(
            ["score", "image"], kind="stable"
        )
        confusions = confusion_frame(audit.confusions(), names, top=None)
        per_class = _per_class(audit, names)
        summary = {
            "images": len(items),
            "skipped items": len(skipped),
            "classes": k,
            "models": dataset.num_models,
            "labelled pixels": int(per_class["pixels"].sum()),
            "flagged pixels": int(per_class["flagged"].sum()),
            "images with issues": int((images["num_pixel_issues"] > 0).sum()),
            "regions": spool.count,
            "estimated issues (T)": audit.num_issues,
            "filter by": filter_by,
            "image scores": method,
        }
        _write_csv(images, stage / "images.csv")
        _write_regions(spool, names, stems, stage / "regions.csv")
        _write_csv(confusions, stage / "confusions.csv")
        _write_csv(per_class, stage / "per_class.csv")
        regions = _with_stems(spool.head(5 * top, names), stems)
        shown.sort(key=lambda r: (r.score, r.stem))
        write_report(
            stage / "report.html",
            images=shown,
            regions=regions,
            confusions=confusions,
            per_class=per_class,
            summary=summary,
            class_names=names,
            class_colors=colors,
            ignore_index=ignore_index,
            warnings=setup,
        )
        files = folder.publish()
    return ScanResult(
        out,
        images.reset_index(drop=True),
        regions,
        spool.type_counts(),
        confusions,
        per_class,
        summary,
        skipped,
        files,
        folder.run_dir,
        setup,
    )
