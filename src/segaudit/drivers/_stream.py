"""The streaming API: audit labels inside a model's inference loop."""

from __future__ import annotations

import numbers
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from segaudit._validation import (
    as_array_like,
    check_bool,
    check_choice,
    check_ignore_index,
    check_n_jobs,
    check_shapes,
    float_dtype,
    param_error,
)
from segaudit.drivers._store import SummaryStore
from segaudit.engine._accumulate import warn_row_sums
from segaudit.engine._finder import (
    IssueFinder,
    Options,
    Selection,
    Staged,
    block_mask,
    valid_per_image,
    warn_setup,
)
from segaudit.engine._scores import check_method, check_temperature, issue_image_scores
from segaudit.io._outputs import mask_output
from segaudit.kernels._choice import get_kernels, use_threads

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
    """

    index: int
    labels: np.ndarray
    predicted: np.ndarray
    scores: np.ndarray
    issues: np.ndarray


@dataclass
class _Part:
    """What is kept of one batch besides the engine's own entry."""

    start: int
    shape: tuple[int, int, int]
    labels: np.ndarray
    argmax: np.ndarray
    scores: np.ndarray
    valid: np.ndarray


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

    Raises
    ------
    ValueError
        On a bad option, e.g. a negative `memory_limit` or a `from_logits`
        that is not a bool.

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
        spill_dir: str | os.PathLike[str] | None = None,
        n_jobs: int | None = None,
    ) -> None:
        func = "LabelAudit"
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
        self.options = Options(
            int(num_classes),
            check_ignore_index(ignore_index, func),
            bool(from_logits),
            int(downsample),
            check_choice(label_pooling, "label_pooling", ("mode", "mean"), func),
        )
        self.n_jobs = n_jobs
        self._store = SummaryStore(memory_limit, spill_dir)
        self._finder = IssueFinder(self.options, kernels=get_kernels(), keep=self._store.keep)
        self._parts: list[_Part] = []
        self._selection: Selection | None = None
        self._num_images = 0
        self._loosest = np.dtype(np.float64)  # probability dtype with the widest rounding

    # -- feeding ---------------------------------------------------------------
    def update(self, labels: Any, pred_probs: Any, *, from_logits: bool | None = None) -> None:
        """Add one batch: ``labels (n, H, W)`` and ``pred_probs (n, K, H, W)``.

        A single image may be given as ``(H, W)`` and ``(K, H, W)``. numpy
        arrays or torch tensors on any device; tensors are summarised on their
        device. Images may differ in size between batches.

        Parameters
        ----------
        labels : array_like or torch.Tensor of int
        pred_probs : array_like or torch.Tensor of float
            Probabilities, or logits with `from_logits`.
        from_logits : bool, optional
            Overrides the audit's setting for this batch.

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
            check_bool(from_logits, "from_logits", func)
        labels = as_array_like(labels, "labels", func)
        pred_probs = as_array_like(pred_probs, "pred_probs", func)
        if len(labels.shape) == 2 and len(pred_probs.shape) == 3:
            labels, pred_probs = labels[None], pred_probs[None]
        n, k, h, w = check_shapes(labels, pred_probs, func)
        if k != self.options.num_classes:
            raise ValueError(
                f"{func}: expected pred_probs with K={self.options.num_classes} classes on "
                f"axis 1 (num_classes); got shape {tuple(pred_probs.shape)}."
            )
        f = self.options.downsample
        if h % f or w % f:
            raise ValueError(
                f"{func}: 'downsample' must divide both the height and the width of the "
                f"images; got H={h}, W={w} and downsample={f}."
            )
        mark = self._store.mark()
        try:
            part, staged = self._summarise(labels, pred_probs, from_logits, start, (n, h, w))
        except BaseException:
            self._store.rollback(mark)  # the batch's arrays, in memory or on disk
            raise
        # commit: nothing below can fail half-way
        logits = self.options.from_logits if from_logits is None else bool(from_logits)
        loosest = self._loosest
        if not logits:
            dtype = float_dtype(pred_probs.dtype)
            if np.finfo(dtype).eps > np.finfo(loosest).eps:
                loosest = dtype
        self._finder.commit(staged)
        self._parts.append(part)
        self._num_images += n
        self._selection = None
        self._loosest = loosest

    def _summarise(
        self,
        labels: Any,
        pred_probs: Any,
        from_logits: bool | None,
        start: int,
        shape: tuple[int, int, int],
    ) -> tuple[_Part, Staged]:
        """Summarise one checked batch into new arrays; the audit itself is not changed."""
        n, h, w = shape
        p = h * w
        k = self.options.num_classes
        scores = self._store.empty((n, p), np.float64)
        disagree = self._store.empty((n, p), np.bool_)
        argmax = self._store.empty((n, p), np.int32 if k > 32767 else np.int16)
        with use_threads(self.n_jobs):
            staged = self._finder.stage(
                pred_probs,
                labels,
                from_logits=None if from_logits is None else bool(from_logits),
                image_offset=start,
                scores_out=scores,
                disagree_out=disagree,
                argmax_out=argmax,
            )
        given = self._store.empty((n, p), _label_dtype(self.options))
        given[...] = _host(labels).reshape(n, p)
        valid = valid_per_image(staged.block.full, n)
        return _Part(start, shape, given, argmax, scores, valid), staged

    # -- results ---------------------------------------------------------------
    @property
    def num_images(self) -> int:
        """Images seen so far."""
        return self._num_images

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

    def _masks(self) -> Iterator[tuple[_Part, np.ndarray]]:
        """Yield each part with its issue mask ``(n, H, W)``, computed on the fly."""
        selection = self._select()
        for part, entry in zip(self._parts, self._finder.entries, strict=True):
            mask = np.array(entry.disagree, dtype=np.bool_, copy=True)
            block_mask(
                entry.scores,
                mask,
                entry.base,
                entry.shape,
                self.options.downsample,
                selection.cutoff,
                self._finder.kernels,
            )
            yield part, mask.reshape(part.shape)

    def find_label_issues(
        self, *, out: str | os.PathLike[str] | None = None
    ) -> np.ndarray | list[np.ndarray]:
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
        with mask_output(out, (self._num_images, h, w)) as target:
            for part, mask in self._masks():
                target.array[part.start : part.start + part.shape[0]] = mask
        return target.result

    def image_scores(self, *, method: str = "softmin", temperature: float = 0.1) -> np.ndarray:
        """Return the image scores ``(N,)`` alone, without gathering pixel scores.

        Parameters
        ----------
        method : {"softmin", "num_pixel_issues"}, default="softmin"
            As in :func:`~segaudit.get_label_quality_scores`.
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
        if method == "softmin":
            for part in self._parts:
                out = image[part.start : part.start + part.shape[0]]
                self._finder.kernels.softmin(part.scores, float(temperature), out)
        else:
            for part, mask in self._masks():
                flagged = mask.reshape(part.shape[0], -1).sum(axis=1)
                image[part.start : part.start + part.shape[0]] = issue_image_scores(
                    flagged, part.valid
                )
        return image

    def get_label_quality_scores(
        self, *, method: str = "softmin", temperature: float = 0.1
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
        for part, mask in self._masks():
            n, h, w = part.shape
            for i in range(n):
                yield AuditImage(
                    part.start + i,
                    part.labels[i].reshape(h, w),
                    part.argmax[i].reshape(h, w),
                    part.scores[i].reshape(h, w),
                    mask[i],
                )

    def confusions(self) -> np.ndarray:
        """Count flagged pixels per (given, predicted) class: ``(K, K)`` int64."""
        k = self.options.num_classes
        table = np.zeros(k * k, dtype=np.int64)
        for part, mask in self._masks():
            flat = mask.reshape(part.shape[0], -1)
            given = part.labels[flat].astype(np.int64)
            table += np.bincount(given * k + part.argmax[flat], minlength=k * k)
        return table.reshape(k, k)

    def class_counts(self) -> tuple[np.ndarray, np.ndarray]:
        """Labelled pixels and flagged pixels per given class, each ``(K,)`` int64."""
        k = self.options.num_classes
        flagged = np.zeros(k, dtype=np.int64)
        full = np.zeros(k, dtype=np.int64)
        for part, mask in self._masks():
            lab = part.labels.reshape(-1).astype(np.int64)
            keep = (lab >= 0) & (lab < k)
            if self.options.ignore_index is not None:
                keep &= lab != self.options.ignore_index
            full += np.bincount(lab[keep], minlength=k)
            flagged += np.bincount(lab[mask.reshape(-1)], minlength=k)
        return full, flagged

    def close(self) -> None:
        """Delete any spilled files."""
        self._store.close()

    def __enter__(self) -> LabelAudit:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _label_dtype(opts: Options) -> np.dtype:
    """Compact dtype for the given labels, void included."""
    ignore = opts.ignore_index if opts.ignore_index is not None else 0
    if opts.num_classes <= 32767 and -32768 <= ignore <= 32767:
        return np.dtype(np.int16)
    return np.dtype(np.int64)


def _host(x: Any) -> np.ndarray:
    """Return a numpy view or copy of an array or tensor (moved to the CPU)."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        return x.detach().cpu().numpy()
    return np.asarray(x)
