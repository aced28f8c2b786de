"""The public `LabelAudit`: the streaming audit, plus `write_scan` (the scan's outputs).

The engine's streaming audit (:class:`segaudit.drivers._stream.LabelAudit`) knows
nothing of files; this subclass, at the top of the package, adds
:meth:`LabelAudit.write_scan`, which writes exactly what ``segaudit scan``
writes (the same function writes both) from a model's inference loop.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from segaudit._validation import param_error
from segaudit.drivers._stream import LabelAudit as _StreamAudit

if TYPE_CHECKING:
    from segaudit.cli._scan import ScanResult
    from segaudit.io import ClassInfo

__all__ = ["LabelAudit"]

ImagesLike = str | os.PathLike[str] | Mapping[str, str | os.PathLike[str]]


class LabelAudit(_StreamAudit):
    __doc__ = _StreamAudit.__doc__

    def write_scan(
        self,
        out_dir: str | os.PathLike[str],
        *,
        images: ImagesLike | None = None,
        classes: ClassInfo | Sequence[str] | str | os.PathLike[str] | None = None,
        score_method: str | None = None,
        top: int = 20,
        background: int | None = 0,
        min_area: int = 1,
        exports: Sequence[str] = (),
        export_label_by: str = "predicted",
        verbose: bool = True,
    ) -> ScanResult:
        """Write the outputs of ``segaudit scan`` for the images fed so far.

        ``images.csv``, ``regions.csv``, ``confusions.csv``, ``per_class.csv``,
        ``summary.json``, ``masks/<id>.png``, ``exports/`` and ``report.html``,
        published in `out_dir` as the scan publishes them (staged, then switched
        in one rename; a lock keeps a second writer out). Images are named by
        the ids given to :meth:`update`.

        Parameters
        ----------
        out_dir : path
            The output folder, owned by segaudit (see ``segaudit scan --out``).
        images : path or mapping of id to path, optional
            The original images, for the report's overlays and the exports: a
            folder holding ``<id>.png`` / ``.jpg`` / ``.jpeg``, or each id's file.
        classes : ClassInfo, sequence of str, path or built-in name, optional
            Class names (and colours): as ``segaudit scan --classes``.
        score_method : {"softmin", "num_pixel_issues", "region_fraction"}, optional
            Image scores; default: ``"region_fraction"`` with the
            ``"confident_regions"`` detector, else ``"softmin"``.
        top, background, min_area, exports, export_label_by
            As ``segaudit scan``'s ``--top``, ``--background``, ``--min-area``,
            ``--export`` and ``--export-label-by``.
        verbose : bool, default=True
            Progress bars.

        Returns
        -------
        ScanResult
            What was written, as :func:`segaudit.cli.run_scan` returns it.

        Raises
        ------
        ValueError
            If no batch was given, an option is bad, or `out_dir` overlaps the
            images folder or holds files segaudit did not write.

        Examples
        --------
        >>> import numpy as np, tempfile
        >>> audit = LabelAudit(num_classes=2, filter_by="confident_regions")
        >>> logits = np.zeros((2, 2, 8, 8)); logits[:, 0] = 3.0
        >>> labels = np.zeros((2, 8, 8), dtype=int); labels[0, 2:5, 2:5] = 1
        >>> audit.update(labels, logits, from_logits=True, ids=["street/a", "street/b"])
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     result = audit.write_scan(tmp + "/out", verbose=False)
        ...     masks = sorted(p.name for p in (result.out_dir / "masks" / "street").iterdir())
        >>> result.images["image"].tolist(), masks
        (['street/a', 'street/b'], ['a.png'])
        """
        from segaudit._validation import check_choice
        from segaudit._version import __version__
        from segaudit.cli._scan import (
            OutputSettings,
            check_exports,
            class_display,
            score_method_for,
            write_outputs,
        )
        from segaudit.engine._scores import METHODS
        from segaudit.io._publish import OutputFolder, check_out_dir
        from segaudit.io._scan_folder import resolve_classes

        func = "LabelAudit.write_scan"
        if self.num_images == 0:
            raise ValueError(f"{func}: no batches yet; call update() at least once.")
        method = score_method_for(self.options.filter_by) if score_method is None else score_method
        method = check_choice(method, "score_method", METHODS, func)
        if isinstance(top, bool) or not isinstance(top, int) or top < 1:
            raise param_error("top", func, "an integer >= 1", repr(top))
        if isinstance(min_area, bool) or not isinstance(min_area, int) or min_area < 1:
            raise param_error("min_area", func, "an integer >= 1", repr(min_area))
        exports = check_exports(exports, export_label_by, func)
        k = self.options.num_classes
        info = resolve_classes(classes)
        if info is not None and info.num_classes != k:
            raise param_error("classes", func, f"{k} class names (num_classes)", info.num_classes)
        ids = self.ids
        for value in ids:
            _check_id(value, func)
        image_paths = _image_paths(images, ids, func)
        out = Path(out_dir)
        folder_input = None if images is None or isinstance(images, Mapping) else images
        check_out_dir(out, {"images": folder_input}, func)
        settings = OutputSettings(
            *class_display(info, k),
            method=method,
            background=background,
            top=top,
            min_area=min_area,
            exports=exports,
            export_label_by=export_label_by,
            images_root=None if folder_input is None else Path(folder_input),
            settings={"source": func, "from_logits": self.options.from_logits},
        )
        with contextlib.ExitStack() as stack:
            folder = stack.enter_context(OutputFolder(out, version=__version__))
            return write_outputs(
                self, folder, ids, settings, image_paths=image_paths, verbose=verbose
            )


def _check_id(value: str, func: str) -> None:
    """Refuse an id that cannot name a file inside ``masks/`` (absolute, ``..``, NUL)."""
    parts = value.split("/")
    bad = value.startswith("/") or "\\" in value or "\0" in value
    if bad or any(part in ("", ".", "..") for part in parts):
        raise param_error(
            "ids",
            func,
            "relative names without '.', '..', empty parts, backslashes or NUL "
            "(they name files in masks/)",
            repr(value),
        )


def _image_paths(images: ImagesLike | None, ids: list[str], func: str) -> list[Path | None]:
    """Return each id's image file (None where there is none)."""
    from segaudit.io._formats import IMAGE_SUFFIXES

    if images is None:
        return [None] * len(ids)
    if isinstance(images, Mapping):
        unknown = sorted(set(map(str, images)) - set(ids))
        if unknown:
            raise param_error("images", func, "a mapping from the audit's ids", repr(unknown[0]))
        return [Path(images[i]) if i in images else None for i in ids]
    root = Path(images)
    if not root.is_dir():
        raise param_error("images", func, "a folder or a mapping of id to file", f"'{root}'")
    found: list[Path | None] = []
    for value in ids:
        files = [root / f"{value}{ext}" for ext in IMAGE_SUFFIXES]
        found.append(next((f for f in files if f.is_file()), None))
    return found
