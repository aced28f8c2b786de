"""The click commands. Exit codes: 0 done (issues or not), 2 bad usage or input, 1 a bug."""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
import numpy as np

from segaudit.io import DatasetError

if TYPE_CHECKING:  # imported when a command runs, so that --help stays fast
    from segaudit._sample import SampleDataset
    from segaudit.cli._scan import ScanResult

__all__ = ["cli", "main", "printable"]

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
# spelled out so that --help imports nothing heavy; tests pin them to io/_datasets
BUILTIN_CLASSES = ("voc", "cityscapes", "ade20k")
BUILTIN_LABEL_MAPS = ("cityscapes",)
_SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_INT64 = (-(1 << 63), (1 << 63) - 1)
# spelled out so that --help imports nothing heavy; tests pin them to the library's
FILTER_CHOICES = ("self_confidence", "confident_regions")
SCORE_METHODS = ("softmin", "num_pixel_issues", "region_fraction")
ERROR_KINDS = ("swap", "miss", "spurious", "boundary")
EXPORT_CHOICES = ("coco", "labelstudio", "cvat")
EXPORT_LABEL_BY = ("predicted", "given")


class InputError(click.ClickException):
    """Bad input data: exit code 2, like a usage error."""

    exit_code = 2


def printable(value: object) -> str:
    r"""Return ``str(value)`` with control characters (C0, DEL, C1) escaped as ``\x1b``.

    Everything the command prints from data (stems, class names, paths, messages
    that quote them) goes through here, so a file name cannot drive the terminal.
    """
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), str(value))


def _label_value(ctx: click.Context, param: click.Parameter, value: int | None) -> int | None:
    """Check that a class id fits the label dtypes (int64)."""
    if value is not None and not _INT64[0] <= value <= _INT64[1]:
        raise click.BadParameter(
            f"must be an integer in the label dtype range {_INT64[0]}..{_INT64[1]}; got {value}."
        )
    return value


def _background(ctx: click.Context, param: click.Parameter, value: str | None) -> int | str | None:
    """Read ``--background``: a class id, ``none``, or left out (``auto``, decided per command)."""
    if value is None:
        return "auto"
    if value.strip().lower() == "none":
        return None
    try:
        number = int(value)
    except ValueError:
        raise click.BadParameter(f"must be a class id or 'none'; got {value!r}.") from None
    return _label_value(ctx, param, number)


def _builtin_or_file(names: tuple[str, ...]) -> Callable[..., str | Path | None]:
    """Return a callback that accepts one of `names` or an existing file."""

    def check(ctx: click.Context, param: click.Parameter, value: str | None) -> str | Path | None:
        if value is None or (value in names and not Path(value).exists()):
            return value
        path = Path(value)
        if not path.is_file():
            raise click.BadParameter(
                f"must be one of {', '.join(names)} or an existing file; got {value!r}."
            )
        return path

    return check


def _byte_size(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    """Read a size in bytes: ``1073741824``, ``512M``, ``2G`` (powers of 1024)."""
    if value is None:
        return None
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", value, re.IGNORECASE)
    if match is None:
        raise click.BadParameter(f"must be a size such as 2G, 512M or 1000000; got {value!r}.")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2).upper()])


def _problems_message(err: DatasetError) -> str:
    count = len(err.problems)
    head = err.header or (f"{count} input problems" if count > 1 else None)
    lines = [printable(p) for p in err.problems]
    if head is None:
        return "\n".join(["input problems, nothing was written:", *lines])
    return "\n  ".join([f"input problems, nothing was written:\n{printable(head)}:", *lines])


def _os_message(err: OSError, out_dir: Path) -> str:
    """One line for a failed read or write: the path and the reason."""
    reason = err.strerror or str(err) or type(err).__name__
    path = Path(err.filename) if err.filename else None
    out = out_dir.absolute()
    if path is None or path.absolute() == out or out in path.absolute().parents:
        where = f" ({path})" if path is not None and path.absolute() != out else ""
        return printable(
            f"cannot write the results to {out_dir}{where}: {reason}; "
            "nothing of this run was kept and earlier results are unchanged."
        )
    return printable(f"cannot read {path}: {reason}.")


@contextlib.contextmanager
def _input_errors(out_dir: Path) -> Iterator[None]:
    """Turn bad input and a busy, full or unwritable output folder into exit 2, one line."""
    from segaudit.io._publish import OutputBusyError

    try:
        yield
    except DatasetError as err:
        raise InputError(_problems_message(err)) from err
    except (ValueError, OutputBusyError) as err:
        raise InputError(printable(err)) from err
    except OSError as err:
        raise InputError(_os_message(err, out_dir)) from err


def _directory() -> click.Path:
    return click.Path(exists=True, file_okay=False, dir_okay=True, path_type=Path)


def _dataset_options() -> Callable[[_Command], _Command]:
    """Return a decorator adding the options for datasets as they ship (scan)."""
    suffix = "Cut from {} file names before pairing (e.g. {}); other files are ignored."
    options = [
        click.option("--mask-suffix", default="", help=suffix.format("mask", "_gtFine_labelIds")),
        click.option("--image-suffix", default="", help=suffix.format("image", "_leftImg8bit")),
        click.option("--probs-suffix", default="", help=suffix.format("probability", "_probs")),
        click.option(
            "--split",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="Scan only these ids, one a line (e.g. VOC's ImageSets/Segmentation/val.txt).",
        ),
        click.option(
            "--label-map",
            metavar="NAME|FILE",
            callback=_builtin_or_file(BUILTIN_LABEL_MAPS),
            help=(
                "Raw mask id -> class id: JSON object or 'raw class' lines, or "
                f"{', '.join(BUILTIN_LABEL_MAPS)}; unmapped ids become the ignore index."
            ),
        ),
        click.option(
            "--reduce-zero-label",
            is_flag=True,
            help="Mask 0 becomes the ignore index, k becomes k-1 (ADE20K).",
        ),
        click.option(
            "--order",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help=(
                "Ids of the rows of a whole-split PROBS array, one a line "
                "[default: <name>.ids.txt beside it]."
            ),
        ),
    ]
    return _stacked(options)


def _dataset_defaults(
    classes: str | Path | None,
    ignore_index: int | None,
    background: int | str | None,
    mapped: bool,
) -> tuple[int | None, int | None]:
    """Return the ignore index and background a dataset's options imply (see --help)."""
    builtin = isinstance(classes, str)
    if ignore_index is None and (mapped or builtin):
        ignore_index = 255
    if background == "auto":
        real_zero = mapped or classes in ("cityscapes", "ade20k")
        return ignore_index, None if real_zero else 0
    return ignore_index, background if isinstance(background, int) else None


def _folder_options(
    mask_suffix: str,
    image_suffix: str,
    probs_suffix: str,
    split: Path | None,
    label_map: str | Path | None,
    reduce_zero_label: bool,
    order: Path | None,
) -> dict[str, Any]:
    """Return the dataset-layout keywords of ``scan_folder`` the user gave (others: defaults)."""
    options = {
        "mask_suffix": mask_suffix,
        "image_suffix": image_suffix,
        "probs_suffix": probs_suffix,
        "split": split,
        "label_map": label_map,
        "reduce_zero_label": reduce_zero_label,
        "order": order,
    }
    return {k: v for k, v in options.items() if v not in ("", None, False)}


_Command = TypeVar("_Command", bound=Callable[..., Any])


def _stacked(options: list[Callable[[_Command], _Command]]) -> Callable[[_Command], _Command]:
    """Return one decorator applying `options` in order (the first is listed first in --help)."""

    def apply(func: _Command) -> _Command:
        for option in reversed(options):
            func = option(func)
        return func

    return apply


def _reading_options(background_help: str) -> Callable[[_Command], _Command]:
    """Return a decorator adding the options that say how to read a dataset (scan, evaluate)."""
    options = [
        click.option(
            "--classes",
            metavar="NAME|FILE",
            callback=_builtin_or_file(BUILTIN_CLASSES),
            help=(
                "Class names (and colours, which also read colour masks): JSON or one name "
                f"per line, or a built-in list: {', '.join(BUILTIN_CLASSES)}."
            ),
        ),
        click.option(
            "--ignore-index",
            type=int,
            default=None,
            callback=_label_value,
            help="Void label, e.g. 255 [default: 255 with a label map or built-in classes].",
        ),
        click.option("--from-logits", is_flag=True, help="Probability files hold logits."),
        click.option(
            "--layout",
            type=click.Choice(["KHW", "HWK"]),
            default="KHW",
            show_default=True,
            help="Axis order of the probability arrays.",
        ),
        click.option(
            "--background",
            metavar="ID|none",
            default=None,
            callback=_background,
            help=background_help
            + " A class id, or 'none' [default: none with a label map, --reduce-zero-label"
            " or the cityscapes / ade20k classes, where 0 is a real class; else 0].",
        ),
        click.option(
            "--probs",
            "extra_probs",
            multiple=True,
            type=click.Path(exists=True, path_type=Path),
            help=(
                "Another model's probability folder (repeatable); "
                "combined per pixel with PROBS_DIR."
            ),
        ),
    ]
    return _stacked(options)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="segaudit")
def cli() -> None:
    """Find mislabeled pixels and regions in semantic-segmentation datasets."""


@cli.command()
@click.argument("masks_dir", type=_directory())
@click.argument("probs_dir", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="Output folder, the scan's own (created if needed; not inside an input folder).",
)
@click.option(
    "--images",
    "images_dir",
    type=_directory(),
    help="Original images (PNG/JPEG, same stems) for overlays.",
)
@_reading_options("Background class id, for region issue types.")
@_dataset_options()
@click.option(
    "--downsample",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Rank on f x f blocks (f must divide H and W).",
)
@click.option(
    "--top",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="Images shown in the report.",
)
@click.option("--skip-bad", is_flag=True, help="Skip items with input problems, list them.")
@click.option(
    "--filter-by",
    type=click.Choice(FILTER_CHOICES),
    default="confident_regions",
    show_default=True,
    help="Detector: confident_regions (recommended) or self_confidence (as cleanlab).",
)
@click.option(
    "--score-method",
    type=click.Choice(SCORE_METHODS),
    default=None,
    help="Image scores [default: region_fraction, or softmin with self_confidence].",
)
@click.option(
    "--min-area",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Regions of fewer pixels are left out of regions.csv and the report.",
)
@click.option(
    "--memory-limit",
    metavar="SIZE",
    callback=_byte_size,
    default=None,
    help="RAM for the kept summary before it spills to disk, e.g. 4G [default: 1G].",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="Files read at the same time [default: chosen for the machine].",
)
@click.option(
    "--export",
    "exports",
    multiple=True,
    type=click.Choice(EXPORT_CHOICES),
    help=(
        "Also write the flagged regions for review in a labelling tool, in OUT/exports/ "
        "(repeatable): COCO (RLE masks), Label Studio tasks, CVAT for images 1.1 XML."
    ),
)
@click.option(
    "--export-label-by",
    type=click.Choice(EXPORT_LABEL_BY),
    default="predicted",
    show_default=True,
    help="Class an exported region is drawn with: the model's (the likely fix) or the given.",
)
@click.option("--quiet", is_flag=True, help="No progress bars.")
def scan(
    masks_dir: Path,
    probs_dir: Path,
    out_dir: Path,
    images_dir: Path | None,
    classes: str | Path | None,
    ignore_index: int | None,
    from_logits: bool,
    downsample: int,
    top: int,
    layout: str,
    background: int | str | None,
    skip_bad: bool,
    filter_by: str,
    score_method: str | None,
    quiet: bool,
    extra_probs: tuple[Path, ...],
    mask_suffix: str,
    image_suffix: str,
    probs_suffix: str,
    split: Path | None,
    label_map: str | Path | None,
    reduce_zero_label: bool,
    order: Path | None,
    min_area: int,
    memory_limit: int | None,
    jobs: int | None,
    exports: tuple[str, ...],
    export_label_by: str,
) -> None:
    """Audit MASKS_DIR (PNG/TIFF label masks) against PROBS_DIR (.npy/.npz/.pt per image).

    Folders are searched recursively, and files paired by their path in their
    folder and name, without --mask-suffix / --image-suffix / --probs-suffix;
    a folder with all its files at the top pairs by name alone. PROBS_DIR may
    also be one (N, K, H, W) array for the whole split (.npy, .pt or .zarr, rows
    named by --order or <name>.ids.txt beside it). Probabilities smaller than
    the masks (by one factor on both axes) are upsampled bilinearly, as
    torch.nn.functional.interpolate(align_corners=False) does.

    Several models (or folds): add --probs DIR per model, or give a PROBS_DIR
    that holds only sub-folders, one per model; every model needs a file of
    the same shape for each stem, and the models are combined per pixel by the
    per-class median. Writes, in OUT: images.csv, regions.csv, confusions.csv,
    per_class.csv, masks/<stem>.png for images with issues, and report.html;
    images.csv's `method` and `filter_by` columns and the summary name the
    image scores and the detector. Each is a link through OUT/.segaudit/current
    to the complete run OUT/.segaudit/runs/<id>/ (with manifest.json), switched
    in one rename: readers see the previous run or the new one, never a mix.
    OUT must not be, contain or lie inside an input folder; files segaudit did
    not write are never changed, and one scan at a time may write to OUT.
    """
    from segaudit.cli._scan import run_scan

    mapped = label_map is not None or reduce_zero_label
    ignore_index, bg = _dataset_defaults(classes, ignore_index, background, mapped)
    folder_options = _folder_options(
        mask_suffix, image_suffix, probs_suffix, split, label_map, reduce_zero_label, order
    )
    given: dict[str, Any] = {}  # run_scan's own defaults for options left out
    if folder_options:
        given["folder_options"] = folder_options
    for name, value, default in (
        ("min_area", min_area, 1),
        ("memory_limit", memory_limit, None),
        ("jobs", jobs, None),
    ):
        if value != default:
            given[name] = value
    if exports:
        given["exports"] = tuple(dict.fromkeys(exports))
        given["export_label_by"] = export_label_by
    with _input_errors(out_dir):
        result = run_scan(
            masks_dir,
            [probs_dir, *extra_probs],
            out_dir,
            images_dir=images_dir,
            classes=classes,
            ignore_index=ignore_index,
            from_logits=from_logits,
            downsample=downsample,
            layout=layout,
            top=top,
            background=bg,
            skip_bad=skip_bad,
            filter_by=filter_by,
            score_method=score_method,
            verbose=not quiet,
            **given,
        )
    _print_summary(result)


@cli.command()
@click.option(
    "--out",
    "out_dir",
    default="segaudit-demo",
    show_default=True,
    type=click.Path(path_type=Path),
    help="Output folder: new, empty, or an earlier demo's.",
)
@click.option(
    "--images",
    "n_images",
    type=click.IntRange(min=1),
    default=24,
    show_default=True,
    help="How many sample images.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Sample data seed.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def demo(out_dir: Path, n_images: int, seed: int, quiet: bool) -> None:
    """Scan the bundled synthetic dataset, whose injected errors are known.

    Writes the sample files to OUT/sample, runs `segaudit scan` on them into
    OUT/scan (report: OUT/scan/report.html), then reports the precision and
    recall of the flagged pixels and saves a figure to OUT/top_issues.png.
    """
    from segaudit.cli._demo import (
        claim_demo_folder,
        precision_recall,
        read_flagged,
        sample,
        write_sample_folder,
    )
    from segaudit.cli._scan import run_scan

    with _input_errors(out_dir):
        claim_demo_folder(out_dir)
        data = sample(n_images, seed)
        paths = write_sample_folder(out_dir / "sample", data)
        click.echo(f"Sample dataset: {n_images} images in {printable(out_dir / 'sample')}")
        result = run_scan(
            paths["masks"],
            paths["probs"],
            out_dir / "scan",
            images_dir=paths["images"],
            classes=paths["classes"],
            ignore_index=255,
            from_logits=True,
            verbose=not quiet,
        )
    _print_summary(result)
    stems = [f"scene_{i:03d}" for i in range(n_images)]
    flagged = read_flagged(out_dir / "scan" / "masks", stems, data.labels.shape[1:])
    precision, recall = precision_recall(flagged, data.injected)
    click.echo(
        f"\nAgainst the {int(data.injected.sum())} injected label errors "
        f"(filter_by={result.summary['filter by']}): "
        f"pixel precision {precision:.3f}, recall {recall:.3f}"
    )
    figure = _save_figure(flagged, data, out_dir / "top_issues.png")
    click.echo(f"Figure of the worst image: {printable(figure)}")


@cli.command()
@click.argument("masks_dir", type=_directory())
@click.argument("probs_dir", type=_directory())
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="Output folder, the command's own (created if needed; not inside an input folder).",
)
@click.option(
    "--kinds",
    default=",".join(ERROR_KINDS),
    show_default=True,
    help="Kinds of label error to inject, comma-separated.",
)
@click.option(
    "--rate",
    type=float,
    default=0.15,
    show_default=True,
    help="Probability that an object gets an error, in [0, 1].",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the injection.")
@_reading_options("Background class id: what a missed object becomes.")
@_dataset_options()
@click.option("--quiet", is_flag=True, help="No progress bars.")
def evaluate(
    masks_dir: Path,
    probs_dir: Path,
    out_dir: Path,
    kinds: str,
    rate: float,
    seed: int,
    classes: str | Path | None,
    ignore_index: int | None,
    from_logits: bool,
    layout: str,
    background: int | str | None,
    extra_probs: tuple[Path, ...],
    quiet: bool,
    mask_suffix: str,
    image_suffix: str,
    probs_suffix: str,
    split: Path | None,
    label_map: str | Path | None,
    reduce_zero_label: bool,
    order: Path | None,
) -> None:
    """Measure each detector on MASKS_DIR and PROBS_DIR, with injected label errors.

    Several models: --probs DIR per extra model, or sub-folders of PROBS_DIR,
    as in `segaudit scan`; dataset layouts (suffixes, --split, --label-map,
    --reduce-zero-label, one array for the split) are read as `segaudit scan`
    reads them.

    The masks are taken as the truth: label errors of the given kinds are
    injected into copies of them (the files are only read), every detector
    (each --filter-by of `segaudit scan`) audits the corrupted labels against
    the probabilities, and is scored against the known errors: pixel precision,
    recall and F1, region recall and precision, image AUPRC. Writes, in OUT:
    comparison.csv (a row per detector, then per error kind), errors.csv (the
    injected errors) and precision_recall.png, published like a scan's results.
    """
    from segaudit.cli._evaluate import run_evaluate
    from segaudit.cli._evaluate_report import comparison_lines

    mapped = label_map is not None or reduce_zero_label
    ignore_index, bg = _dataset_defaults(classes, ignore_index, background, mapped)
    folder_options = _folder_options(
        mask_suffix, image_suffix, probs_suffix, split, label_map, reduce_zero_label, order
    )
    with _input_errors(out_dir):
        result = run_evaluate(
            masks_dir,
            [probs_dir, *extra_probs],
            out_dir,
            kinds=[kind.strip() for kind in kinds.split(",")],
            rate=rate,
            seed=seed,
            classes=classes,
            ignore_index=ignore_index,
            from_logits=from_logits,
            layout=layout,
            background=bg,
            verbose=not quiet,
            folder_options=folder_options or None,
        )
    click.echo(f"\nsegaudit evaluate: {printable(result.out_dir)}")
    if result.num_models > 1:
        click.echo(f"  {result.num_models} models combined (per-class median)")
    for line in comparison_lines(result.comparison, result.errors, result.num_images):
        click.echo(line)
    for message in result.warnings:
        click.secho(f"\nWARNING: {printable(message)}", fg="red", bold=True, err=True)
    names = ", ".join(p.name for p in result.files)
    click.echo(f"\nWritten to {printable(result.out_dir)}: {names}")


def _save_figure(flagged: np.ndarray, data: SampleDataset, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    from segaudit.io import atomic_path
    from segaudit.summary import display_issues

    figures = display_issues(
        flagged, data.labels, data.logits, class_names=data.class_names, top=1, ignore_index=255
    )
    with atomic_path(path) as tmp:
        figures[-1].savefig(tmp, format="png", dpi=80, bbox_inches="tight")
    import matplotlib.pyplot as plt

    for f in figures:
        plt.close(f)
    return path


def _print_summary(result: ScanResult) -> None:
    safe = printable
    click.echo(f"\nsegaudit scan: {safe(result.out_dir)}")
    for key, value in result.summary.items():
        click.echo(f"  {key:<22} {value}")
    for problem in result.skipped:
        click.echo(f"  skipped: {safe(problem)}")
    worst = result.images[result.images["num_pixel_issues"] > 0].head(5)
    if len(worst):
        click.echo("\nImages with the lowest label quality:")
        for row in worst.itertuples(index=False):
            click.echo(
                f"  {safe(row.image):<24} score {row.score:.3f}  {row.num_pixel_issues:>7} "
                f"flagged pixels ({row.fraction_pixel_issues:.1%})"
            )
    if len(result.confusions):
        click.echo("\nMost common confusions (given -> predicted):")
        for row in result.confusions.head(5).itertuples(index=False):
            click.echo(
                f"  {safe(row.given_label)} -> {safe(row.predicted_label)}: "
                f"{row.num_pixel_issues} pixels"
            )
    if result.region_types:
        counts = sorted(result.region_types.items(), key=lambda kv: (-kv[1], kv[0]))
        click.echo("\nRegions by type: " + ", ".join(f"{k} {v}" for k, v in counts))
    for message in result.warnings:
        click.secho(f"\nWARNING: {safe(message)}", fg="red", bold=True, err=True)
    click.echo(f"\nReport: {safe(result.out_dir / 'report.html')}")


def main(argv: list[str] | None = None) -> None:
    """Run the command line (the ``segaudit`` console script).

    The process is the command's own, so OpenMP's idle threads are asked to
    sleep instead of spinning (unless ``OMP_WAIT_POLICY`` is set): the scan's
    threads need the cores (:func:`~segaudit.kernels._choice.passive_waiting`).
    """
    from segaudit.kernels._choice import passive_waiting

    passive_waiting()
    cli.main(args=argv if argv is not None else sys.argv[1:], prog_name="segaudit")
