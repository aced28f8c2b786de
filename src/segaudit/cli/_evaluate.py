"""``segaudit evaluate``: measure every detector on the user's own data, against known errors.

The user's masks are taken as the truth. Realistic label errors
(:func:`~segaudit.evaluate.inject_label_noise`) are injected into a copy of each
mask (the files are only read); every detector (each value of ``filter_by``)
audits the corrupted labels against the user's probabilities, streamed one image
at a time through :class:`~segaudit.LabelAudit`, and is scored image by image with
:func:`~segaudit.evaluate.score_detection`, the counts summed over the dataset.
Memory stays bounded: the corrupted labels and error ids wait in the run's spill
folder. The results are published like a scan's
(:class:`~segaudit.io._publish.OutputFolder`): ``comparison.csv``,
``errors.csv`` and ``precision_recall.png``.
"""

from __future__ import annotations

import contextlib
import numbers
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from segaudit._progress import progress
from segaudit._validation import param_error
from segaudit.cli._evaluate_report import plot_precision_recall
from segaudit.cli._scan import (
    ProbsDirs,
    _reason,
    _write_csv,
    model_path,
    probs_inputs,
    score_method_for,
)
from segaudit.drivers._stream import LabelAudit
from segaudit.engine._setup import SetupWarning
from segaudit.evaluate import (
    ERROR_COLUMNS,
    ERROR_KINDS,
    DetectionScores,
    average_precision,
    inject_label_noise,
    score_detection,
)
from segaudit.filter import FILTER_BY
from segaudit.io import ClassInfo, DatasetError, FolderDataset, InputProblem, read_label_mask
from segaudit.io._publish import OutputFolder, check_out_dir
from segaudit.io._scan_folder import scan_folder

__all__ = ["EVALUATE_FILES", "Detector", "EvaluateResult", "run_evaluate"]

EVALUATE_FILES = ("comparison.csv", "errors.csv", "precision_recall.png")
"""The names ``segaudit evaluate`` publishes in its output folder."""
_FUNC = "run_evaluate"


@dataclass(frozen=True)
class Detector:
    """One detector: its ``filter_by`` and the image-score method that goes with it."""

    filter_by: str
    method: str


@dataclass
class EvaluateResult:
    """What an evaluation measured and wrote."""

    out_dir: Path
    comparison: pd.DataFrame
    """``comparison.csv``: per detector, a row ``kind="all"``, then one per error kind."""
    errors: pd.DataFrame
    """``errors.csv``: the injected errors, with the image's stem."""
    scores: dict[Detector, DetectionScores]
    image_scores: dict[Detector, np.ndarray]
    num_images: int
    files: list[Path] = field(default_factory=list)
    run_dir: Path | None = None
    warnings: list[str] = field(default_factory=list)
    num_models: int = 1
    """Probability files per image, combined per pixel (models or folds)."""


def _check_kinds(kinds: object) -> tuple[str, ...]:
    given = (kinds,) if isinstance(kinds, str) else kinds
    expected = f"a non-empty list of distinct kinds from {', '.join(ERROR_KINDS)}"
    if not isinstance(given, Sequence) or not given:
        raise param_error("kinds", _FUNC, expected, repr(kinds))
    unknown = [k for k in given if k not in ERROR_KINDS]
    if unknown or len(set(given)) != len(given):
        raise param_error("kinds", _FUNC, expected, repr(unknown[0] if unknown else list(given)))
    return tuple(str(k) for k in given)


def _check_options(rate: object, seed: object) -> float:
    real = isinstance(rate, numbers.Real) and not isinstance(rate, bool)
    if not real or not 0.0 <= float(rate) <= 1.0:  # type: ignore[arg-type]
        raise param_error("rate", _FUNC, "a number in [0, 1]", repr(rate))
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise param_error("seed", _FUNC, "a non-negative integer", repr(seed))
    return float(rate)  # type: ignore[arg-type]


def _check_background(background: int | None, ignore_index: int | None, k: int) -> None:
    if background is None:
        return
    if not 0 <= background < k:
        raise param_error("background", _FUNC, f"a class id in 0..{k - 1}", background)
    if background == ignore_index:
        raise param_error("background", _FUNC, "different from ignore_index", background)


def _image_seed(seed: int, i: int) -> int:
    """Return the seed of image `i`, drawn from ``(seed, i)`` alone."""
    return int(np.random.SeedSequence(seed, spawn_key=(i,)).generate_state(1)[0])


def _image_kinds(
    labels: np.ndarray,
    kinds: tuple[str, ...],
    k: int,
    background: int | None,
    ignore_index: int | None,
) -> tuple[str, ...]:
    """Return the kinds `inject_label_noise` can apply to this image; () without an object."""
    valid = labels != ignore_index if ignore_index is not None else np.ones(labels.shape, bool)
    if not (valid & (labels != background)).any():
        return ()
    has_bg = background is not None and bool((labels == background).any())
    applies = {
        "swap": k - (background is not None) >= 2,
        "miss": background is not None,
        "spurious": has_bg,
        "boundary": True,
    }
    return tuple(kind for kind in kinds if applies[kind])


@dataclass
class _Injected:
    """Where pass 1 left the corrupted labels and error ids, and what it injected."""

    folder: Path
    errors: pd.DataFrame
    positive: np.ndarray
    """Which images got an error."""
    objects: int
    """How many masks have an object that one of the kinds applies to."""

    def labels(self, i: int) -> np.ndarray:
        return np.asarray(np.load(self.folder / f"labels-{i:07d}.npy"))

    def ids(self, i: int) -> np.ndarray:
        return np.asarray(np.load(self.folder / f"ids-{i:07d}.npy"))


def _inject(
    dataset: FolderDataset,
    folder: Path,
    *,
    kinds: tuple[str, ...],
    rate: float,
    seed: int,
    background: int | None,
    k: int,
    verbose: bool,
) -> _Injected:
    """Pass 1, masks only: corrupt each image, keep its labels and error ids in `folder`."""
    folder.mkdir()
    ignore_index = dataset.ignore_index
    frames: list[pd.DataFrame] = []
    offset = objects = 0
    positive = np.zeros(len(dataset), dtype=bool)
    with progress(len(dataset), "injecting errors", verbose) as bar:
        for i, item in enumerate(dataset.items):
            labels = read_label_mask(item.mask_path, mapping=dataset.mapping)
            ids = np.zeros(labels.shape, dtype=np.int32)
            usable = _image_kinds(labels, kinds, k, background, ignore_index)
            objects += bool(usable)
            if usable:
                noisy = inject_label_noise(
                    labels[None],
                    kinds=usable,
                    rate=rate,
                    seed=_image_seed(seed, i),
                    background=background,
                    ignore_index=ignore_index,
                    num_classes=k,
                )
                labels, errors = noisy.labels[0], noisy.errors.copy()
                ids = np.where(noisy.error_ids[0] > 0, noisy.error_ids[0] + offset, 0)
                errors["error"] += offset
                errors["image"] = i
                errors.insert(2, "stem", item.stem)
                offset += len(errors)
                frames.append(errors)
                positive[i] = len(errors) > 0
            np.save(folder / f"labels-{i:07d}.npy", labels)
            np.save(folder / f"ids-{i:07d}.npy", ids.astype(np.int32))
            bar.update(1)
    columns = [*ERROR_COLUMNS[:2], "stem", *ERROR_COLUMNS[2:]]
    errors = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    return _Injected(folder, errors, positive, objects)


def _feed(
    dataset: FolderDataset, injected: _Injected, audits: list[LabelAudit], verbose: bool
) -> None:
    """Pass 2: each image's corrupted labels and the user's probabilities into every audit."""
    with progress(len(dataset), "reading probabilities", verbose) as bar:
        for i, files in enumerate(dataset.items):
            probs = dataset.load(i).probs  # each model's file read once; ItemError names it
            labels = injected.labels(i)
            for audit in audits:
                try:
                    audit.update(labels, probs)
                except ValueError as err:
                    message = f"{_reason(err)} (mask {files.mask_path.name})"
                    path = model_path(files, str(err))
                    raise DatasetError([InputProblem(path, message, files.stem)]) from err
            bar.update(1)


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else float("nan")


def _combine(
    parts: list[DetectionScores], image_scores: np.ndarray, positive: np.ndarray
) -> DetectionScores:
    """Return the scores of the whole dataset from those of its images (counts add up)."""
    tp = sum(p.true_positives for p in parts)
    flagged = sum(p.flagged_pixels for p in parts)
    truth = sum(p.truth_pixels for p in parts)
    flagged_regions = sum(p.flagged_regions for p in parts)
    hit = sum(p.flagged_regions_hit for p in parts)
    regions = pd.concat([p.regions for p in parts], ignore_index=True)
    finite = np.where(np.isfinite(image_scores), image_scores, 1.0)  # no labelled pixel: clean
    return DetectionScores(
        pixel_precision=_ratio(tp, flagged),
        pixel_recall=_ratio(tp, truth),
        pixel_f1=_ratio(2 * tp, flagged + truth),
        region_recall=_ratio(int(regions["found"].sum()), len(regions)),
        region_precision=_ratio(hit, flagged_regions),
        image_auprc=average_precision(positive, -finite),
        flagged_pixels=flagged,
        truth_pixels=truth,
        true_positives=tp,
        flagged_regions=flagged_regions,
        flagged_regions_hit=hit,
        image_prevalence=float(positive.mean()),
        regions=regions,
    )


def _score(
    audit: LabelAudit, detector: Detector, injected: _Injected, bar: object
) -> tuple[DetectionScores, np.ndarray]:
    """Score one detector image by image (bounded memory); return its scores and image scores."""
    image_scores = audit.image_scores(method=detector.method)
    none = injected.errors.iloc[:0]
    by_image = dict(iter(injected.errors.groupby("image", sort=False)))
    parts: list[DetectionScores] = []
    for img in audit.iter_images():
        ids = injected.ids(img.index)
        part = score_detection(
            img.issues[None],
            (ids > 0)[None],
            errors=by_image.get(img.index, none),
            error_ids=ids[None],
            ignore_mask=(img.predicted < 0)[None],
        )
        part.regions["image"] = img.index
        parts.append(part)
        bar.update(1)  # type: ignore[attr-defined]
    return _combine(parts, image_scores, injected.positive), image_scores


def _comparison(scores: dict[Detector, DetectionScores]) -> pd.DataFrame:
    frames = []
    for detector, s in scores.items():
        table = s.table()
        table.insert(0, "kind", table.index)
        table.insert(0, "image_scores", detector.method)
        table.insert(0, "detector", detector.filter_by)
        frames.append(table)
    counts = ["truth_pixels", "flagged_pixels", "regions", "regions_found", "flagged_regions"]
    frame = pd.concat(frames, ignore_index=True)
    typed: pd.DataFrame = frame.astype(dict.fromkeys(counts, "Int64"))  # blank on kind rows
    return typed


def run_evaluate(
    masks_dir: str | os.PathLike[str],
    probs_dir: ProbsDirs,
    out_dir: str | os.PathLike[str],
    *,
    kinds: Sequence[str] = ERROR_KINDS,
    rate: float = 0.15,
    seed: int = 0,
    classes: ClassInfo | str | os.PathLike[str] | None = None,
    ignore_index: int | None = None,
    from_logits: bool = False,
    layout: str = "KHW",
    background: int | None = 0,
    memory_limit: int | None = 1 << 30,
    verbose: bool = True,
    folder_options: Mapping[str, Any] | None = None,
) -> EvaluateResult:
    """Inject label errors into a folder's masks and measure how well each detector finds them.

    Parameters
    ----------
    masks_dir, probs_dir : path
        Label masks (PNG/TIFF), taken as the truth, and the probabilities or logits
        (``.npy``/``.npz``) of an out-of-sample model, matched by file stem. Only read.
        Several models (or folds), combined per pixel, as in
        :func:`~segaudit.cli.run_scan`: a list of folders, or a folder of sub-folders.
    out_dir : path
        The command's own folder, as in :func:`~segaudit.cli.run_scan`; visible
        results: ``comparison.csv``, ``errors.csv`` and ``precision_recall.png``.
    kinds : sequence of {"swap", "miss", "spurious", "boundary"}, default=all four
        Kinds of error to inject (see :func:`~segaudit.evaluate.inject_label_noise`).
    rate : float, default=0.15
        Probability that an object gets an error.
    seed : int, default=0
        Image ``i`` is corrupted with a seed drawn from ``(seed, i)``.
    classes, ignore_index, from_logits, layout
        As in :func:`~segaudit.cli.run_scan`.
    background : int or None, default=0
        Background class: what ``miss`` erases to and ``spurious`` paints over.
    memory_limit : int, optional
        Bytes of summary each detector keeps in RAM before spilling.
    verbose : bool, default=True
        Progress bars.
    folder_options : mapping, optional
        Dataset layout keywords of :func:`~segaudit.io.scan_folder` (``mask_suffix``,
        ``image_suffix``, ``probs_suffix``, ``split``, ``label_map``,
        ``reduce_zero_label``, ``order``), as ``segaudit scan`` takes them.

    Returns
    -------
    EvaluateResult
        The comparison (one ``kind="all"`` row per detector, then per-kind rows),
        the injected errors and the written files.

    Raises
    ------
    ValueError
        For bad options, an `out_dir` that overlaps an input folder, or masks with
        nothing to corrupt (no object, or no error drawn at this `rate`).
    DatasetError
        Listing every input problem, each with its file.
    OutputBusyError
        If another command is writing to `out_dir`.
    """
    from segaudit._version import __version__

    out = Path(out_dir)
    kinds = _check_kinds(kinds)
    rate = _check_options(rate, seed)
    inputs = {"masks": masks_dir, **probs_inputs(probs_dir)}
    check_out_dir(out, inputs, _FUNC, names=EVALUATE_FILES)
    with contextlib.ExitStack() as stack:
        folder = stack.enter_context(OutputFolder(out, version=__version__, names=EVALUATE_FILES))
        dataset = scan_folder(
            masks_dir,
            probs_dir,
            layout=layout,
            ignore_index=ignore_index,
            classes=classes,
            from_logits=from_logits,
            **dict(folder_options or {}),
        ).raise_if_problems()
        k = dataset.num_classes
        if k is None:  # not reached: with no readable probability file, every item is a problem
            raise DatasetError(dataset.problems, "no probability file could be read")
        _check_background(background, ignore_index, k)
        injected = _inject(
            dataset,
            folder.spill / "injected",
            kinds=kinds,
            rate=rate,
            seed=int(seed),
            background=background,
            k=k,
            verbose=verbose,
        )
        if injected.errors.empty:
            what = f"background={background}, ignore_index={ignore_index}"
            got = (
                f"no object ({what}) that {', '.join(kinds)} applies to, in {len(dataset)} masks"
                if injected.objects == 0
                else f"no error drawn at rate={rate} in {injected.objects} masks with objects"
            )
            raise param_error("masks", _FUNC, "labels with objects to corrupt", got)
        detectors = [Detector(f, score_method_for(f)) for f in FILTER_BY]
        audits = [
            stack.enter_context(
                LabelAudit(
                    k,
                    ignore_index=ignore_index,
                    from_logits=from_logits,
                    memory_limit=memory_limit,
                    spill_dir=folder.spill,
                    filter_by=d.filter_by,
                )
            )
            for d in detectors
        ]
        _feed(dataset, injected, audits, verbose)
        stack.enter_context(warnings.catch_warnings())
        warnings.simplefilter("ignore", SetupWarning)  # printed by the command instead
        setup = audits[0].setup_warnings()
        scores: dict[Detector, DetectionScores] = {}
        image_scores: dict[Detector, np.ndarray] = {}
        with progress(len(dataset) * len(detectors), "scoring", verbose) as bar:
            for detector, audit in zip(detectors, audits, strict=True):
                scores[detector], image_scores[detector] = _score(audit, detector, injected, bar)
        comparison = _comparison(scores)
        stage = folder.stage
        _write_csv(comparison, stage / "comparison.csv")
        _write_csv(injected.errors, stage / "errors.csv")
        curves = [(d.filter_by, d.method, scores[d], image_scores[d]) for d in detectors]
        plot_precision_recall(stage / "precision_recall.png", curves, injected.positive)
        files = folder.publish()
    return EvaluateResult(
        out,
        comparison,
        injected.errors,
        scores,
        image_scores,
        len(dataset),
        files,
        folder.run_dir,
        setup,
        dataset.num_models,
    )
