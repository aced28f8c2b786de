"""``segaudit scan``: a folder of masks and probabilities in, CSVs, masks and a report out.

Files are streamed through :class:`~segaudit.LabelAudit` (one read of each
probability file, bounded memory); outputs are staged in the output folder's
``.segaudit/stage-<id>`` and published as a whole by
:class:`~segaudit.io._publish.OutputFolder`: a failed or killed run never
changes what is visible, and never touches a file it did not write.
"""

from __future__ import annotations

import contextlib
import heapq
import json
import os
import warnings
from collections import deque
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from segaudit._progress import progress
from segaudit._validation import check_choice, param_error
from segaudit.cli._scan_feed import feed_audit, model_path, reason
from segaudit.drivers._parts import Tally
from segaudit.drivers._stream import AuditImage, LabelAudit
from segaudit.engine._scores import (
    SOFTMIN_TEMPERATURE,
    issue_image_scores,
    region_fraction,
)
from segaudit.engine._setup import SetupWarning
from segaudit.filter import FILTER_BY, RECOMMENDED_FILTER
from segaudit.io import (
    ClassInfo,
    DatasetError,
    InputProblem,
    read_image,
    scan_folder,
)
from segaudit.io._atomic import atomic_write
from segaudit.io._csv import write_csv
from segaudit.io._prefetch import ahead
from segaudit.io._publish import OutputFolder, check_out_dir
from segaudit.io._scan_folder import model_folders
from segaudit.rank import RECOMMENDED_METHOD
from segaudit.regions._image import image_regions
from segaudit.regions._records import REGION_DTYPE
from segaudit.regions._spool import RegionSpool
from segaudit.summary import confusion_frame

__all__ = ["ProbsDirs", "ScanResult", "model_path", "probs_inputs", "run_scan", "score_method_for"]

ProbsDirs = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]
"""A probability folder, or several (one per model; see `model_folders`)."""

_reason = reason  # the engine message without numbers; cli._evaluate imports it from here

IMAGE_COLUMNS = [
    "image",
    "score",
    "num_pixel_issues",
    "fraction_pixel_issues",
    "method",
    "filter_by",
    "mask_path",
    "image_path",
]
"""Columns of ``images.csv``: ``method`` names the image scores, ``filter_by`` the detector;
the paths are absolute, empty where there is no file."""


def score_method_for(filter_by: str) -> str:
    """Return the image-score method that goes with a detector.

    ``"softmin"`` (the reference's) for ``"self_confidence"``, else the
    recommended method (``"region_fraction"``), which scores an image by the
    share of its labelled pixels in flagged regions and the softmin of its
    flagged pixels.

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
    names = np.asarray(stems, dtype=object)
    regions.insert(0, "stem", names[regions["image"].to_numpy(dtype=np.intp)])
    return regions


def _per_image(values: Sequence[str]) -> Callable[[pd.Series], pd.Series]:
    """Return ``image -> values[image]``, categorical (the CSV writer formats each value once)."""
    codes, uniques = pd.factorize(np.asarray(values, dtype=object))
    dtype = pd.CategoricalDtype(pd.Index(uniques, dtype=object))

    def pick(image: pd.Series) -> pd.Series:
        at = codes[image.to_numpy(dtype=np.intp)]
        column: pd.Series = pd.Series(pd.Categorical.from_codes(at, dtype=dtype), index=image.index)
        return column

    return pick


def _write_regions(
    spool: RegionSpool,
    names: list[str],
    stems: list[str],
    paths: dict[str, list[str]],
    path: Path,
    drawn: set[int],
    n: int,
    *,
    picked: Future[pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """Write every region to `path`, most severe first, one chunk at a time.

    `paths` maps a column name to each image's value (the files' paths). The
    per-image columns are categorical: the CSV writer formats each value once.
    Returns the `n` most severe regions of the images in `drawn` (the
    report's pictures), picked on the way; `picked` (optional) is given them
    as soon as they are known, while the rest of the file is still written.
    """
    stem_of = _per_image(stems)
    columns = {name: _per_image(values) for name, values in paths.items()}
    parts: list[pd.DataFrame] = []
    count = 0
    with atomic_write(path) as fh:
        for i, chunk in enumerate(spool.ranked(names)):
            if count < n:  # a copy of the rows wanted only: the chunk's selection is let go
                parts.append(chunk[chunk["image"].isin(drawn)].head(n - count).copy())
                count += len(parts[-1])
                if count >= n and picked is not None:
                    picked.set_result(pd.concat(parts, ignore_index=True).head(n))
            for name, values in columns.items():
                chunk[name] = values(chunk["image"])
            chunk.insert(0, "stem", stem_of(chunk["image"]))
            write_csv(chunk, fh, header=i == 0)
    if picked is not None and picked.done():
        return picked.result()
    regions = pd.concat(parts, ignore_index=True).head(n) if parts else spool.head(0, names)
    if picked is not None:
        picked.set_result(regions)
    return regions


def _regions_csv(
    pool: ThreadPoolExecutor, *args: Any
) -> tuple[Future[pd.DataFrame], Future[pd.DataFrame]]:
    """Start `_write_regions` (`args`) in `pool`: (the report's regions, the whole write).

    The report's regions come first, so that the report can be made while the
    file is written; an error before they are known is raised by both.
    """
    picked: Future[pd.DataFrame] = Future()

    def write() -> pd.DataFrame:
        try:
            return _write_regions(*args, picked=picked)
        except BaseException as exc:
            if not picked.done():
                picked.set_exception(exc)
            raise

    return picked, pool.submit(write)


PNG_COMPRESS_LEVEL = 1
"""zlib level of the issue-mask PNGs: fast; the masks are mostly empty and compress well anyway."""
PENDING_WRITES = 2
"""Mask PNGs queued for the writer thread at most (each holds one (H, W) mask)."""
AHEAD_IMAGES = 2
"""Images whose issue masks are made ahead of the output pass, in a thread."""


def _write_mask_png(mask: np.ndarray, path: Path) -> None:
    from PIL import Image

    pixels = mask.view(np.uint8) * np.uint8(255)
    with atomic_write(path, "wb") as fh:
        image = Image.fromarray(pixels, mode="L")
        image.save(fh, format="PNG", compress_level=PNG_COMPRESS_LEVEL)


class _MaskWriter:
    """Write mask PNGs in one thread (Pillow's encoder and fsync release the GIL), in order.

    At most `PENDING_WRITES` masks wait; an error of a write is raised by the
    next `submit` or by `close`.
    """

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="segaudit-png")
        self._pending: deque[Future[None]] = deque()

    def submit(self, mask: np.ndarray, path: Path) -> None:
        while len(self._pending) >= PENDING_WRITES:
            self._pending.popleft().result()
        self._pending.append(self._pool.submit(_write_mask_png, mask, path))

    def close(self) -> None:
        """Wait for every write; raise the first error."""
        try:
            while self._pending:
                self._pending.popleft().result()
        finally:
            self._abort()

    def _abort(self) -> None:
        """Drop the writes not started; wait for the one running (errors are not raised)."""
        self._pending.clear()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> _MaskWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:  # the scan failed: its error is the one to see
            self._abort()


def probs_inputs(probs_dir: ProbsDirs) -> dict[str, Path]:
    """Return the probability folders by name, for `check_out_dir`: those given, each model's."""
    given = [probs_dir] if isinstance(probs_dir, (str, os.PathLike)) else list(probs_dir)
    folders = [Path(p) for p in given] + model_folders(probs_dir)
    unique = list(dict.fromkeys(folders))
    return {
        "probabilities" if i == 0 else f"probabilities #{i + 1}": folder
        for i, folder in enumerate(unique)
    }


Scorer = Callable[[AuditImage, int, int, float], float]
"""``score(image, flagged, valid, softmin)``: an image's score from its issue mask (and counts)."""


def _image_scorer(audit: LabelAudit, method: str) -> tuple[bool, Scorer]:
    """Return whether the scorer needs each image's softmin score, and the scorer.

    ``"softmin"``, ``"num_pixel_issues"`` and, when the audit's detector is
    ``"confident_regions"``, ``"region_fraction"`` come from the one pass over
    ``iter_images``' masks, with the softmin score computed in that pass (the
    same functions, the same values); other scores are asked of the audit.
    """
    if method == "softmin":
        return True, lambda img, flagged, valid, softmin: softmin
    if method == "num_pixel_issues":
        return False, lambda img, flagged, valid, softmin: float(
            issue_image_scores(np.array([flagged]), np.array([valid]))[0]
        )
    if method == "region_fraction" and audit.options.filter_by == "confident_regions":

        def region_score(img: AuditImage, flagged: int, valid: int, softmin: float) -> float:
            scores, issues = img.scores.reshape(1, -1), img.issues.reshape(1, -1)
            labelled, softmins = np.array([valid]), np.array([softmin])
            image = region_fraction(scores, issues, labelled, softmins, SOFTMIN_TEMPERATURE)
            return float(image[0])

        return True, region_score
    scores = audit.image_scores(method=method)
    return False, lambda img, flagged, valid, softmin: float(scores[img.index])


@dataclass(frozen=True)
class _Kept:
    """One image kept for the report: its position, score, flagged pixels and maps."""

    index: int
    score: float
    flagged: int
    labels: np.ndarray
    predicted: np.ndarray
    issues: np.ndarray


class _Worst:
    """The `top` images of lowest score, ties by position, NaN last; copied as the pass goes.

    The same images as the first `top` of ``np.argsort(scores, kind="stable")``,
    without knowing every score first; at most `top` images are held.
    """

    def __init__(self, top: int) -> None:
        self.top = top
        self._heap: list[tuple[tuple[bool, float, int], _Kept]] = []

    def offer(self, img: AuditImage, score: float, flagged: int) -> None:
        """Keep a copy of `img` if it is among the `top` worst so far."""
        if self.top <= 0:
            return
        nan = score != score
        # heapq is a min-heap: with negated keys its root is the best-kept image's opposite,
        # the worst of the kept ones (the highest score, the latest position)
        neg = (not nan, 0.0 if nan else -score, -img.index)
        if len(self._heap) >= self.top and neg <= self._heap[0][0]:
            return
        void = img.predicted < 0
        kept = _Kept(
            img.index,
            score,
            flagged,
            img.labels.copy(),
            np.where(void, img.labels, img.predicted),
            img.issues.copy(),
        )
        if len(self._heap) < self.top:
            heapq.heappush(self._heap, (neg, kept))
        else:
            heapq.heapreplace(self._heap, (neg, kept))

    def images(self) -> list[_Kept]:
        """Return the kept images, in no particular order."""
        return [kept for _, kept in self._heap]


def _per_class(tally: Tally, thresholds: np.ndarray, names: list[str]) -> pd.DataFrame:
    pixels, flagged = tally.pixels, tally.flagged
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = np.where(pixels > 0, flagged / np.maximum(pixels, 1), 0.0)
    frame: pd.DataFrame = pd.DataFrame(
        {
            "class": names,
            "pixels": pixels,
            "flagged": flagged,
            "fraction_flagged": fraction,
            "threshold": thresholds,
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
    folder_options: Mapping[str, Any] | None = None,
    min_area: int = 1,
    jobs: int | None = None,
    exports: Sequence[str] = (),
    export_label_by: str = "predicted",
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
        ``regions.csv`` (both with the files' paths), ``confusions.csv``,
        ``per_class.csv``, ``summary.json`` (figures and settings),
        ``masks/<stem>.png`` for images with issues, ``exports/`` and
        ``report.html``. Each is a link through
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
        ``"self_confidence"`` gives the reference's (cleanlab's) flags. Named in
        the summary and in the ``filter_by`` column of ``images.csv``.
    score_method : {"softmin", "num_pixel_issues", "region_fraction"}, optional
        Image scores, as in :func:`~segaudit.get_label_quality_scores`; default:
        `score_method_for` `filter_by` (``"region_fraction"`` for
        ``"confident_regions"``, ``"softmin"`` for ``"self_confidence"``). Named in
        the summary and in the ``method`` column of ``images.csv``.
    memory_limit : int, optional
        Bytes of summary kept in RAM before spilling to ``.segaudit/spill-<id>``.
    verbose : bool, default=True
        Progress bars.
    folder_options : mapping, optional
        Dataset layout keywords of :func:`~segaudit.io.scan_folder`
        (``mask_suffix``, ``image_suffix``, ``probs_suffix``, ``split``,
        ``label_map``, ``reduce_zero_label``, ``order``).
    min_area : int, default=1
        Regions of fewer pixels are left out of ``regions.csv`` and the report
        (their pixels stay in the masks).
    jobs : int, optional
        Threads reading files ahead (default: chosen from the image size).
    exports : sequence of {"coco", "labelstudio", "cvat"}, default=()
        Review files to write into ``exports/`` (see :mod:`segaudit.export`).
    export_label_by : {"predicted", "given"}, default="predicted"
        Class an exported region is drawn with.

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
    from segaudit._version import __version__

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
    exports = check_exports(exports, export_label_by, "run_scan")
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
            **dict(folder_options or {}),
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
        audit = stack.enter_context(
            LabelAudit(
                k,
                ignore_index=ignore_index,
                from_logits=from_logits,
                downsample=downsample,
                memory_limit=memory_limit,
                spill_dir=folder.spill,
                filter_by=filter_by,
            )
        )
        kept, late = feed_audit(dataset, audit, skip_bad=skip_bad, verbose=verbose, jobs=jobs)
        skipped += late
        items = [dataset.items[i] for i in kept]
        mapped = dataset.mapping is not None and (
            dataset.mapping.maps_ids or dataset.mapping.palette is not None
        )
        settings = {
            "masks": str(Path(masks_dir).resolve()),
            "probabilities": [str(p.resolve()) for p in probs_inputs(probs_dir).values()],
            "images": None if images_dir is None else str(Path(images_dir).resolve()),
            "from_logits": from_logits,
            "downsample": downsample,
            "layout": layout,
            "dataset_options": {k: str(v) for k, v in (folder_options or {}).items()},
            "models": dataset.num_models,
        }
        return write_outputs(
            audit,
            folder,
            [item.stem for item in items],
            OutputSettings(
                *class_display(info, k),
                method=method,
                background=background,
                top=top,
                min_area=min_area,
                exports=exports,
                export_label_by=export_label_by,
                palette_from=None if mapped or not items else items[0].mask_path,
                images_root=None if images_dir is None else Path(images_dir),
                settings=settings,
            ),
            image_paths=[item.image_path for item in items],
            mask_paths=[item.mask_path for item in items],
            skipped=skipped,
            num_models=dataset.num_models,
            verbose=verbose,
        )


def check_exports(exports: Sequence[str], label_by: str, func: str) -> tuple[str, ...]:
    """Return the export formats, checked and without repeats."""
    from segaudit.export import EXPORT_FORMATS, LABEL_BY

    if isinstance(exports, str):
        exports = [exports]
    chosen = tuple(dict.fromkeys(check_choice(e, "exports", EXPORT_FORMATS, func) for e in exports))
    check_choice(label_by, "export_label_by", LABEL_BY, func)
    return chosen


def class_display(info: ClassInfo | None, k: int) -> tuple[list[str], list[Any] | None]:
    """Return the class names (``"0"``, ``"1"``, ... without `info`) and colours (or None)."""
    names = list(info.names) if info is not None else [str(i) for i in range(k)]
    return names, list(info.colors) if info is not None and info.colors else None


@dataclass(frozen=True)
class OutputSettings:
    """How the scan's outputs are written (the settings are also in ``summary.json``)."""

    names: list[str]
    colors: list[Any] | None
    method: str
    background: int | None = 0
    top: int = 20
    min_area: int = 1
    exports: tuple[str, ...] = ()
    export_label_by: str = "predicted"
    palette_from: Path | None = None
    """A mask PNG whose own palette colours the report when no class colours are given."""
    images_root: Path | None = None
    """Exports name an image by its path relative to this folder (else its absolute path)."""
    settings: dict[str, Any] = field(default_factory=dict)


def _path_texts(paths: Sequence[Path | None]) -> list[str]:
    """Return each path absolute, its folder's links resolved (once per folder), or ``""``."""
    folders: dict[str, str] = {}
    texts = []
    for path in paths:
        if path is None:
            texts.append("")
            continue
        parent, name = os.path.split(os.fspath(path))
        folder = folders.get(parent)
        if folder is None:
            folder = folders[parent] = str(Path(parent).resolve())
        texts.append(os.path.join(folder, name))
    return texts


_NO_REGIONS = np.empty(0, dtype=REGION_DTYPE)


def _with_regions(
    images: Generator[tuple[AuditImage, float], None, None],
    background: int | None,
    ignore_index: int | None,
    min_area: int,
) -> Iterator[tuple[AuditImage, float, int, np.ndarray]]:
    """Each image and its softmin score, with its count of flagged pixels and its regions.

    `images` is closed when this generator is (the read-ahead thread closes it early).
    """
    with contextlib.closing(images):
        for img, softmin in images:
            flagged = int(np.count_nonzero(img.issues))
            regions = _NO_REGIONS
            if flagged:
                regions = image_regions(
                    img.issues,
                    img.labels,
                    img.predicted,
                    img.scores,
                    image=img.index,
                    background=background,
                    ignore_index=ignore_index,
                    min_area=min_area,
                )
            yield img, softmin, flagged, regions


def write_outputs(
    audit: LabelAudit,
    folder: OutputFolder,
    ids: Sequence[str],
    opts: OutputSettings,
    *,
    image_paths: Sequence[Path | None] | None = None,
    mask_paths: Sequence[Path | None] | None = None,
    skipped: Sequence[InputProblem] = (),
    num_models: int = 1,
    verbose: bool = True,
) -> ScanResult:
    """Write a finished audit's results into `folder`'s stage, then publish them.

    The one pass over :meth:`~segaudit.LabelAudit.iter_images` writes the issue
    masks (``masks/<id>.png``) and spools the regions; then ``images.csv``,
    ``regions.csv``, ``confusions.csv``, ``per_class.csv``, ``summary.json``,
    ``exports/`` and ``report.html`` are written and the run is published.
    `ids` name the images (`audit`'s order); `image_paths` and `mask_paths`
    (optional, one per image) are written into the CSVs and used for overlays.
    """
    from segaudit.report import ReportImage, read_mask_palette, write_report

    k = audit.options.num_classes
    ignore_index = audit.options.ignore_index
    names, method, top = opts.names, opts.method, opts.top
    n = len(ids)
    image_texts = _path_texts(image_paths if image_paths is not None else [None] * n)
    mask_texts = _path_texts(mask_paths if mask_paths is not None else [None] * n)
    image_paths = list(image_paths) if image_paths is not None else [None] * n
    stage, spill = folder.stage, folder.spill
    with contextlib.ExitStack() as stack:
        # shown in the summary and the report instead of as Python warnings
        stack.enter_context(warnings.catch_warnings())
        warnings.simplefilter("ignore", SetupWarning)
        setup = audit.setup_warnings()  # before the pass: its warnings are not repeated there
        with_softmin, score_of = _image_scorer(audit, method)
        worst = _Worst(top)
        tally = Tally(k, ignore_index)
        model = np.zeros((k, k), dtype=np.int64)  # the model against the labels
        spool = stack.enter_context(RegionSpool(spill / "regions.bin"))
        writer = stack.enter_context(_MaskWriter())
        rows = []
        with progress(n, "finding regions", verbose) as bar:
            # the one pass over the issue masks; the next images' masks, softmin scores
            # and regions (compiled kernels, without the GIL) are made in a thread meanwhile
            images = audit._iter_scored(softmin=with_softmin)
            found = _with_regions(images, opts.background, ignore_index, opts.min_area)
            with contextlib.closing(ahead(found, depth=AHEAD_IMAGES)) as scored:
                for img, softmin, flagged, image_table in scored:
                    stem = ids[img.index]
                    # the tally and the model's pairs (report.count_pairs) in one pass; every
                    # pixel that is not void (argmax -1) is in the pairs
                    pairs = tally.add_image(img.labels, img.predicted, img.issues)
                    model += pairs
                    valid = int(pairs.sum())
                    fraction = flagged / valid if valid else 0.0
                    score = score_of(img, flagged, valid, softmin)
                    rows.append(
                        (
                            stem,
                            score,
                            flagged,
                            fraction,
                            method,
                            audit.options.filter_by,
                            mask_texts[img.index],
                            image_texts[img.index],
                        )
                    )
                    if flagged:
                        target = stage / "masks" / f"{stem}.png"
                        target.parent.mkdir(parents=True, exist_ok=True)  # nested ids: city/name
                        writer.submit(img.issues, target)
                        spool.append(image_table)
                        worst.offer(img, score, flagged)  # pictures only of images with flags
                    bar.update(1)
        writer.close()  # every mask written before the CSVs, or its error raised now
        shown = []
        for kept_image in worst.images():
            path = image_paths[kept_image.index]
            shown.append(
                ReportImage(
                    ids[kept_image.index],
                    kept_image.score,
                    kept_image.flagged,
                    kept_image.labels,
                    kept_image.predicted,
                    kept_image.issues,
                    read_image(path) if path is not None else None,
                )
            )
        images = pd.DataFrame(rows, columns=IMAGE_COLUMNS).sort_values(
            ["score", "image"], kind="stable"
        )
        confusions = confusion_frame(tally.confusions, names, top=None)
        per_class = _per_class(tally, audit.thresholds, names)
        summary = {
            "images": n,
            "skipped items": len(skipped),
            "classes": k,
            "models": num_models,
            "labelled pixels": int(per_class["pixels"].sum()),
            "flagged pixels": int(per_class["flagged"].sum()),
            "images with issues": int((images["num_pixel_issues"] > 0).sum()),
            "regions": spool.count,
            "estimated issues (T)": audit.num_issues,
            "filter by": audit.options.filter_by,
            "image scores": method,
        }
        paths = {"mask_path": mask_texts, "image_path": image_texts}
        _write_csv(images, stage / "images.csv")
        drawn = {kept.index for kept in worst.images()}
        # regions.csv in a thread (its cells by compiled kernels, without the GIL) while
        # the other files and the report are made
        csv_thread = stack.enter_context(
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="segaudit-regions-csv")
        )
        args = (spool, names, list(ids), paths, stage / "regions.csv", drawn, 5 * top)
        picked, regions_written = _regions_csv(csv_thread, *args)
        regions = _with_stems(picked.result(), list(ids))
        _write_csv(confusions, stage / "confusions.csv")
        _write_csv(per_class, stage / "per_class.csv")
        _write_summary(
            stage / "summary.json", summary, opts, audit, setup, skipped, spool.type_counts()
        )
        shown.sort(key=lambda r: (r.score, r.stem))
        if opts.exports:
            regions_written.result()  # the exports read regions.csv
            _write_exports(stage, opts, ids, image_paths)
        write_report(
            stage / "report.html",
            images=shown,
            regions=regions,
            confusions=confusions,
            per_class=per_class,
            summary=summary,
            class_names=names,
            class_colors=opts.colors,
            mask_palette=(
                read_mask_palette(opts.palette_from)
                if opts.colors is None and opts.palette_from is not None
                else None
            ),
            model_confusion=model,
            image_table=images,
            ignore_index=ignore_index,
            warnings=setup,
        )
        regions_written.result()  # regions.csv whole, or its error raised now
        files = folder.publish()
        return ScanResult(
            folder.out,
            images.reset_index(drop=True),
            regions,
            spool.type_counts(),
            confusions,
            per_class,
            summary,
            list(skipped),
            files,
            folder.run_dir,
            setup,
        )


def _write_summary(
    path: Path,
    summary: dict[str, Any],
    opts: OutputSettings,
    audit: LabelAudit,
    setup: list[str],
    skipped: Sequence[InputProblem],
    region_types: dict[str, int],
) -> None:
    """Write ``summary.json``: the run's figures and every setting that produced them."""
    from segaudit._version import __version__

    document = {
        "segaudit_version": __version__,
        "figures": summary,
        "region_types": region_types,
        "settings": {
            "filter_by": audit.options.filter_by,
            "image_scores": opts.method,
            "ignore_index": audit.options.ignore_index,
            "background": opts.background,
            "min_area": opts.min_area,
            "top": opts.top,
            "exports": list(opts.exports),
            "export_label_by": opts.export_label_by,
            "class_names": opts.names,
            **opts.settings,
        },
        "thresholds": [float(t) if np.isfinite(t) else None for t in audit.thresholds],
        "warnings": setup,
        "skipped": [str(problem) for problem in skipped],
    }
    with atomic_write(path) as fh:
        json.dump(document, fh, indent=1, allow_nan=False, default=_json_default)


def _json_default(value: object) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def _write_exports(
    stage: Path, opts: OutputSettings, ids: Sequence[str], image_paths: Sequence[Path | None]
) -> None:
    """Write the review files of the staged scan into ``stage/exports``."""
    from segaudit.export import from_scan, write_exports

    root = None if opts.images_root is None else Path(opts.images_root).resolve()
    names = {}
    for stem, path in zip(ids, image_paths, strict=True):
        if path is not None:
            full = Path(path).resolve()
            inside = root is not None and full.is_relative_to(root)
            names[stem] = (full.relative_to(root) if inside and root else full).as_posix()
    review = from_scan(stage, file_names=names or None, class_colors=opts.colors)
    write_exports(review, opts.exports, stage / "exports", label_by=opts.export_label_by)
