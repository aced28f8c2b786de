"""The streaming API: audit labels inside a model's inference loop.

:class:`LabelAudit` holds the audit's state and its results; what one batch
goes through (checks, summary, the kept :class:`~segaudit.drivers._parts.Part`)
lives in :mod:`segaudit.drivers._parts`. The module is a little under 500
lines because it is one public class whose every method carries its numpydoc
docstring; splitting the class would only scatter its API.
"""

from __future__ import annotations

import numbers
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np

from segaudit._typing import BoolArray, LabelsLike, ProbsLike, StoredMask, StrPath
from segaudit._validation import (
    as_array_like,
    check_bool,
    check_choice,
    check_ignore_index,
    check_n_jobs,
    param_error,
)
from segaudit.drivers._models import ModelStack, as_models, is_model_sequence
from segaudit.drivers._parts import (
    Part,
    check_batch,
    class_counts,
    confusions,
    loosest_dtype,
    summarise_batch,
)
from segaudit.drivers._store import SummaryStore
from segaudit.engine._accumulate import warn_row_sums
from segaudit.engine._block import Options
from segaudit.engine._detect import FILTER_BY, agree_thresholds, agreeing_sums, check_filter_by
from segaudit.engine._exact import ClassSums
from segaudit.engine._finder import IssueFinder, Selection
from segaudit.engine._scores import (
    SOFTMIN_TEMPERATURE,
    check_method,
    check_temperature,
    flagged_per_image,
    issue_image_scores,
    region_fraction,
)
from segaudit.engine._setup import warn_setup
from segaudit.io._outputs import mask_output
from segaudit.kernels._choice import get_kernels

__all__ = ["AuditImage", "LabelAudit"]

DEFAULT_MEMORY_LIMIT = 4 << 30


@dataclass(frozen=True)
class AuditImage:
    """One image's results, as :meth:`LabelAudit.iter_images` yields them.

    Attributes
    ----------
    index : int
        Position of the image among all images given to the audit.
    labels : ndarray of int, shape (H, W)
        The given labels (void pixels keep `ignore_index`).
    predicted : ndarray of int, shape (H, W)
        The model's argmax; ``-1`` on void (`ignore_index`) pixels.
    scores : ndarray of float, shape (H, W)
        Self-confidence of the given label; NaN on void pixels.
    issues : ndarray of bool, shape (H, W)
        The issue mask (never set on void pixels).
    id : str
        The image's id, as given to :meth:`LabelAudit.update` (default: its
        index, ``"000042"``).

    Notes
    -----
    `labels`, `predicted` and `scores` are read-only views of the audit's own
    data (writing to them raises ``ValueError``: the audit's later answers
    depend on them); copy them to change them.
    """

    index: int
    labels: np.ndarray
    predicted: np.ndarray
    scores: np.ndarray
    issues: np.ndarray
    id: str = ""


class LabelAudit:
    """Find label issues while a model runs: feed batches, then ask once.

    Only a compact summary of each batch is kept (about 13 bytes per pixel:
    self-confidence, argmax, given label, disagreement; plus max prob and argmax
    of each disagreeing pixel), in memory up to `memory_limit` bytes and in
    temporary files beyond. Results are identical
    to :func:`~segaudit.find_label_issues` and
    :func:`~segaudit.get_label_quality_scores` on the same data.

    Parameters
    ----------
    num_classes : int
        K, the size of the class axis of every batch.
    ignore_index : int, optional
        Label of void pixels: never flagged, never counted.
    from_logits : bool, default=False
        Batches hold logits; a stable softmax is applied per batch.
    downsample : int, default=1
        As in :func:`~segaudit.find_label_issues`.
    label_pooling : {"mode", "mean"}, default="mode"
        As in :func:`~segaudit.find_label_issues`.
    memory_limit : int, optional, default=4 GiB
        Bytes (>= 0) of summary kept in RAM before spilling to files; None never
        spills.
    spill_dir : path, optional
        Where the temporary spill folder goes (default: the system's). The
        space of each spilled array is reserved before it is written: a full
        disk raises :class:`~segaudit.io._space.DiskFullError` from
        :meth:`update`, which then adds nothing.
    n_jobs : int, optional
        Threads for the compiled kernel; None or -1 uses all cores.
    filter_by : {"self_confidence", "confident_regions"}, default="self_confidence"
        The detector of :meth:`find_label_issues`, :meth:`iter_images`,
        :meth:`confusions` and ``method="num_pixel_issues"``, as in
        :func:`~segaudit.find_label_issues`: the reference's pixel ranking, or
        whole confidently wrong regions (recommended; needs scipy and
        ``downsample=1``).

    Raises
    ------
    ValueError
        On a bad option, e.g. a negative `memory_limit`, a `from_logits`
        that is not a bool, or an unknown `filter_by`.

    Warns
    -----
    SetupWarning
        From :meth:`find_label_issues` and :meth:`iter_images` when the labels
        and the model disagree so much that the set-up is probably wrong (see
        :meth:`setup_warnings`).

    Examples
    --------
    >>> import numpy as np
    >>> from segaudit import LabelAudit
    >>> audit = LabelAudit(num_classes=2)
    >>> for _ in range(3):                                  # the model's loop
    ...     logits = np.zeros((4, 2, 8, 8)); logits[:, 0] = 3.0
    ...     labels = np.zeros((4, 8, 8), dtype=int); labels[:, 0, 0] = 1
    ...     audit.update(labels, logits, from_logits=True)
    >>> audit.find_label_issues().sum()                     # the 12 pixels labelled 1
    np.int64(12)
    """

    def __init__(
        self,
        num_classes: int,
        *,
        ignore_index: int | None = None,
        from_logits: bool = False,
        downsample: int = 1,
        label_pooling: str = "mode",
        memory_limit: int | None = DEFAULT_MEMORY_LIMIT,
        spill_dir: StrPath | None = None,
        n_jobs: int | None = None,
        filter_by: str = "self_confidence",
    ) -> None:
        func = "LabelAudit"
        filter_by = check_filter_by(filter_by, func)
        if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral):
            raise param_error("num_classes", func, "an integer >= 2", repr(num_classes))
        if num_classes < 2:
            raise param_error("num_classes", func, "an integer >= 2", num_classes)
        if isinstance(downsample, bool) or not isinstance(downsample, numbers.Integral):
            raise param_error("downsample", func, "a positive integer", repr(downsample))
        if downsample < 1:
            raise param_error("downsample", func, "a positive integer", downsample)
        check_bool(from_logits, "from_logits", func)
        check_n_jobs(n_jobs, func)
        if memory_limit is not None:
            ok = isinstance(memory_limit, numbers.Integral) and not isinstance(memory_limit, bool)
            if not ok or memory_limit < 0:
                expected = "a number of bytes >= 0 (an integer) or None"
                raise param_error("memory_limit", func, expected, repr(memory_limit))
            memory_limit = int(memory_limit)
        if filter_by != FILTER_BY[0] and downsample != 1:
            raise ValueError(
                f"{func}: 'downsample' applies to filter_by='self_confidence' only; got "
                f"downsample={downsample} with filter_by={filter_by!r}."
            )
        self.options: Options = Options(
            int(num_classes),
            check_ignore_index(ignore_index, func),
            bool(from_logits),
            int(downsample),
            check_choice(label_pooling, "label_pooling", ("mode", "mean"), func),
            filter_by,
        )
        self.n_jobs: int | None = n_jobs
        self._store: SummaryStore = SummaryStore(memory_limit, spill_dir)
        self._finder: IssueFinder = IssueFinder(
            self.options, kernels=get_kernels(), keep=self._store.keep
        )
        self._parts: list[Part] = []
        self._selection: Selection | None = None
        self._regions: Selection | None = None  # with agreeing thresholds, for region_fraction
        self._num_images: int = 0
        self._ids: list[str] = []
        self._id_set: set[str] = set()
        self._loosest: np.dtype = np.dtype(np.float64)  # probability dtype, widest rounding

    # -- feeding ---------------------------------------------------------------
    def update(
        self,
        labels: LabelsLike,
        pred_probs: ProbsLike,
        *,
        from_logits: bool | None = None,
        ids: str | Sequence[str] | None = None,
    ) -> None:
        """Add one batch: ``labels (n, H, W)`` and ``pred_probs (n, K, H, W)``.

        A single image may be given as ``(H, W)`` and ``(K, H, W)``. numpy
        arrays or torch tensors on any device; tensors are summarised on their
        device. Images may differ in size between batches.

        Parameters
        ----------
        labels : array_like or torch.Tensor of int
        pred_probs : array_like or torch.Tensor of float, or a list of them
            Probabilities, or logits with `from_logits`. A list of same-shape
            arrays (several models) is combined per pixel by the per-class
            median, renormalised (see :func:`~segaudit.find_label_issues`).
        from_logits : bool, optional
            Overrides the audit's setting for this batch.
        ids : str or sequence of str, optional
            The images' ids (file stems or dataset keys; ``/`` makes folders in
            :meth:`write_scan`'s ``masks/``), one per image, unique within the
            audit. Default: the image's index, zero-padded (``"000042"``).

        Raises
        ------
        ValueError
            On a bad shape, K, label, probability or option; the message names
            the image by its index among all images given to the audit.
        OSError
            If the summary cannot be spilled to disk (e.g.
            :class:`~segaudit.io._space.DiskFullError`).

        Notes
        -----
        All or nothing: after an error the audit is exactly as it was before
        the call, so the loop may skip the batch and go on.
        """
        start = self._num_images
        func = f"LabelAudit.update (the batch starting at image {start})"
        if from_logits is not None:
            from_logits = check_bool(from_logits, "from_logits", func)
        logits = self.options.from_logits if from_logits is None else from_logits
        stack = None
        if is_model_sequence(pred_probs):
            models = as_models(pred_probs, func, from_logits=logits)
            if isinstance(models, ModelStack):
                stack, models.image_offset = models, start
                if len(models.shape) == 3:  # one image: (K, H, W) each
                    labels = as_array_like(labels, "labels", func)[None]
                    models = models[None]
                else:
                    models = models[:]  # each model read once, combined
                from_logits = logits = False  # the combination applied the softmax
            pred_probs = models
        labels, pred_probs, shape = check_batch(labels, pred_probs, self.options, func)
        new_ids = self._check_ids(ids, start, shape[0], func)
        mark = self._store.mark()
        try:
            part, staged = summarise_batch(
                labels,
                pred_probs,
                finder=self._finder,
                store=self._store,
                from_logits=from_logits,
                start=start,
                shape=shape,
                n_jobs=self.n_jobs,
            )
        except BaseException:
            self._store.rollback(mark)  # the batch's arrays, in memory or on disk
            raise
        # commit: nothing below can fail half-way
        if stack is None:
            loosest = loosest_dtype(self._loosest, pred_probs, logits)
        else:
            loosest = max(self._loosest, stack.input_dtype, key=lambda d: np.finfo(d).eps)
        self._finder.commit(staged)
        if stack is not None:
            acc = self._finder.acc
            acc.max_row_deviation = max(acc.max_row_deviation, stack.max_row_deviation)
        self._parts.append(part)
        self._ids += new_ids
        self._id_set.update(new_ids)
        self._num_images += shape[0]
        self._selection = None
        self._regions = None
        self._loosest = loosest

    def _check_ids(
        self, ids: str | Sequence[str] | None, start: int, n: int, func: str
    ) -> list[str]:
        """Return the batch's ids (given or default), checked: str, one per image, unique."""
        if ids is None:
            made = [f"{start + i:06d}" for i in range(n)]
            return [f"{v}#{start + i}" if v in self._id_set else v for i, v in enumerate(made)]
        given = [ids] if isinstance(ids, str) else list(ids)
        if len(given) != n:
            raise param_error("ids", func, f"{n} ids, one per image of the batch", len(given))
        seen = set(self._id_set)
        for i, value in enumerate(given):
            if not isinstance(value, str) or not value:
                raise param_error("ids", func, "non-empty strings", f"{value!r} for image {i}")
            if value in seen:
                where = "earlier" if value in self._id_set else "in this batch"
                raise param_error("ids", func, "unique ids", f"{value!r} again ({where})")
            seen.add(value)
        return given

    # -- results ---------------------------------------------------------------
    @property
    def num_images(self) -> int:
        """Images seen so far."""
        return self._num_images

    @property
    def ids(self) -> list[str]:
        """The images' ids, in the order they were given (see :meth:`update`)."""
        return list(self._ids)

    def _select(self) -> Selection:
        if not self._parts:
            raise ValueError("LabelAudit: no batches yet; call update() at least once.")
        if self._selection is None:
            warn_row_sums(
                self._finder.acc.max_row_deviation, self._loosest, self.options.num_classes, 4
            )
            self._selection = self._finder.finish(warn=False)
        return self._selection

    def setup_warnings(self) -> list[str]:
        """Return the signs of a probably wrong set-up; an empty list if it looks sound.

        The model's argmax agreeing with the labels on under 50% of the labelled
        pixels, or over 30% of them estimated to be label issues, usually means
        shifted class ids (e.g. ADE20K's 0 = 'other'), a wrong label map, logits
        passed as probabilities or a model not trained on these classes. The
        same messages are issued as :class:`~segaudit.SetupWarning` by
        :meth:`find_label_issues` and :meth:`iter_images`.

        Returns
        -------
        list of str
            One message per failed check, stating the figure and the likely causes.
        """
        return list(self._select().setup)

    @property
    def thresholds(self) -> np.ndarray:
        """Confident threshold per class, ``(K,)``."""
        return self._select().thresholds

    @property
    def num_issues(self) -> int:
        """T, the estimated number of label issues on the ranking grid."""
        return self._select().num_issues

    def _same_shape(self) -> bool:
        return len({part.shape[1:] for part in self._parts}) == 1

    def _region_selection(self, func: str) -> Selection:
        """Return the selection of ``filter_by="confident_regions"``, whatever the audit's.

        An audit of ``"self_confidence"`` gets its agreeing thresholds from
        the kept summary, once, on the first call.
        """
        selection = self._select()
        if selection.agree_thresholds is not None:
            return selection
        if self._regions is None:
            if self.options.downsample != 1:
                raise ValueError(
                    f"{func}: method='region_fraction' needs an audit with downsample=1; "
                    f"this one has downsample={self.options.downsample}."
                )
            sums = ClassSums(self.options.num_classes)
            for part, entry in zip(self._parts, self._finder.entries, strict=True):
                disagree = entry.disagree.reshape(part.shape[0], -1)
                sums.add(
                    *agreeing_sums(part.scores, disagree, part.labels, self.options.num_classes)
                )
            self._regions = replace(
                selection, agree_thresholds=agree_thresholds(sums, selection.thresholds)
            )
        return self._regions

    def _masks(self, selection: Selection | None = None) -> Iterator[tuple[Part, BoolArray]]:
        """Yield each part with its issue mask ``(n, H, W)``, computed on the fly.

        The audit's detector, or the one `selection` describes.
        """
        if selection is None:
            selection = self._select()
        for part, entry in zip(self._parts, self._finder.entries, strict=True):
            mask = np.array(entry.disagree, dtype=np.bool_, copy=True)
            self._finder.mask(entry, selection, mask, part.labels)
            yield part, mask.reshape(part.shape)

    def find_label_issues(
        self, *, out: StrPath | None = None
    ) -> BoolArray | StoredMask | list[BoolArray]:
        """Return the issue mask of every image seen.

        Parameters
        ----------
        out : path, optional
            Write the mask to this ``.npy`` or ``.zarr`` path (atomically) and
            return it opened read-only; needs images of one size.

        Returns
        -------
        ndarray of bool, shape (N, H, W)
            Or a list of ``(H, W)`` masks when image sizes differ.

        Warns
        -----
        SetupWarning
            When the set-up looks wrong (see :meth:`setup_warnings`).
        """
        warn_setup(self.setup_warnings())
        if not self._same_shape():
            if out is not None:
                raise ValueError("LabelAudit.find_label_issues: 'out' needs images of one size.")
            return [m for _, mask in self._masks() for m in mask]
        h, w = self._parts[0].shape[1:]
        if out is None:
            result = np.empty((self._num_images, h, w), dtype=np.bool_)
            for part, mask in self._masks():
                result[part.start : part.start + part.shape[0]] = mask
            return result
        func = "LabelAudit.find_label_issues"
        with mask_output(out, (self._num_images, h, w), func=func) as target:
            for part, mask in self._masks():
                target.array[part.start : part.start + part.shape[0]] = mask
        return target.result

    def image_scores(
        self, *, method: str = "softmin", temperature: float = SOFTMIN_TEMPERATURE
    ) -> np.ndarray:
        """Return the image scores ``(N,)`` alone, without gathering pixel scores.

        Parameters
        ----------
        method : {"softmin", "num_pixel_issues", "region_fraction"}, default="softmin"
            As in :func:`~segaudit.get_label_quality_scores`.
            ``"num_pixel_issues"`` counts the pixels of the audit's `filter_by`;
            ``"region_fraction"`` always those of ``"confident_regions"``.
        temperature : float, default=0.1
            Softmin temperature, > 0.
        """
        return self._image_scores(method, temperature, "LabelAudit.image_scores")

    def _image_scores(self, method: str, temperature: float, func: str) -> np.ndarray:
        check_method(method, func)
        check_temperature(temperature, func)
        if not self._parts:
            raise ValueError("LabelAudit: no batches yet; call update() at least once.")
        image = np.empty(self._num_images, dtype=np.float64)
        if method in ("softmin", "region_fraction"):
            for part in self._parts:
                out = image[part.start : part.start + part.shape[0]]
                self._finder.kernels.softmin(part.scores, float(temperature), out)
        if method == "region_fraction":
            for part, mask in self._masks(self._region_selection(func)):
                rows = mask.reshape(part.shape[0], -1)
                span = slice(part.start, part.start + part.shape[0])
                image[span] = region_fraction(
                    part.scores, rows, part.valid, image[span], float(temperature)
                )
        elif method == "num_pixel_issues":
            for part, mask in self._masks():
                flagged = flagged_per_image(mask)
                image[part.start : part.start + part.shape[0]] = issue_image_scores(
                    flagged, part.valid
                )
        return image

    def get_label_quality_scores(
        self, *, method: str = "softmin", temperature: float = SOFTMIN_TEMPERATURE
    ) -> tuple[np.ndarray, np.ndarray | list[np.ndarray]]:
        """Return image scores ``(N,)`` and pixel scores ``(N, H, W)`` (a list if sizes differ).

        Options as in :meth:`image_scores`. The pixel scores are gathered into one
        new array (8 bytes per pixel); use :meth:`image_scores` and
        :meth:`iter_images` to stay within bounded memory.
        """
        image = self._image_scores(method, temperature, "LabelAudit.get_label_quality_scores")
        pixels = [part.scores.reshape(part.shape) for part in self._parts]
        if self._same_shape():
            return image, np.concatenate(pixels)
        return image, [p for batch in pixels for p in batch]

    def iter_images(self) -> Iterator[AuditImage]:
        """Yield every image's labels, prediction, scores and issues, one at a time.

        Warns
        -----
        SetupWarning
            When the set-up looks wrong (see :meth:`setup_warnings`).
        """
        warn_setup(self.setup_warnings())
        for image, _ in self._iter_scored(softmin=False):
            yield image

    def _iter_scored(self, *, softmin: bool) -> Generator[tuple[AuditImage, float], None, None]:
        """:meth:`iter_images`' images (no warning), each with its softmin score if `softmin`.

        The scores are those of ``image_scores(method="softmin")`` (the same
        kernel call on the same batch), computed batch by batch as the images
        go; NaN without `softmin`.
        """
        for part, mask in self._masks():
            n, h, w = part.shape
            scores = np.full(n, np.nan)
            if softmin:
                self._finder.kernels.softmin(part.scores, SOFTMIN_TEMPERATURE, scores)
            for i in range(n):
                labels, predicted, pixel = (
                    a[i].reshape(h, w) for a in (part.labels, part.argmax, part.scores)
                )
                for view in (labels, predicted, pixel):  # a caller's write would change the audit
                    view.flags.writeable = False
                image = AuditImage(
                    part.start + i, labels, predicted, pixel, mask[i], self._ids[part.start + i]
                )
                yield image, float(scores[i])

    def confusions(self) -> np.ndarray:
        """Count flagged pixels per (given, predicted) class: ``(K, K)`` int64."""
        return confusions(self._masks(), self.options.num_classes)

    def class_counts(self) -> tuple[np.ndarray, np.ndarray]:
        """Labelled pixels and flagged pixels per given class, each ``(K,)`` int64."""
        return class_counts(self._masks(), self.options.num_classes, self.options.ignore_index)

    def close(self) -> None:
        """Delete any spilled files."""
        self._store.close()

    def __enter__(self) -> LabelAudit:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
