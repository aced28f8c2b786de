"""The torch backend: the per-pixel summary of a batch, computed on the tensor's device.

`summarise_tensor` gives the same :class:`~segaudit.kernels._batch.BatchSummary`
as the fused kernel of :mod:`segaudit.kernels._numba`, bit for bit for
probabilities (with ``from_logits`` the exponential may differ in the last bit),
but runs as torch operations wherever the batch lives. Only the summary crosses
to the host: the self-confidence and the disagreement of every pixel (5 or 9
bytes), plus m(x) and a(x) of the disagreeing pixels.

torch is an optional extra: nothing here imports it until a tensor is summarised,
and :func:`is_tensor` never imports it at all.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, TypeGuard

import numpy as np
import numpy.typing as npt

from segaudit._typing import ArrayLike
from segaudit.kernels._batch import BatchSummary, as_batch, score_dtype, summarise_batch
from segaudit.kernels._choice import get_kernels
from segaudit.kernels._torch_summary import DeviceSummary, summarise_chunk, to_host, torch_dtype

if TYPE_CHECKING:
    import torch

__all__ = [
    "CPU_CHUNK_PIXELS",
    "DEVICE_CHUNK_PIXELS",
    "is_tensor",
    "on_device",
    "summarise_tensor",
    "to_numpy",
]

CPU_CHUNK_PIXELS = 1 << 18  # on the CPU: pieces whose temporaries stay in cache
DEVICE_CHUNK_PIXELS = 1 << 22  # elsewhere: bounds the temporaries, few launches
_INT_SAFE = float(2**62)  # float labels are clamped here before the int64 cast


def is_tensor(x: object) -> TypeGuard[torch.Tensor]:
    """Tell whether `x` is a torch tensor, without importing torch.

    Parameters
    ----------
    x : object

    Returns
    -------
    bool
        False whenever torch has not been imported: then `x` cannot be a tensor.

    Examples
    --------
    >>> import numpy as np
    >>> is_tensor(np.zeros(3))
    False
    """
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def on_device(x: object) -> TypeGuard[torch.Tensor]:
    """Tell whether `x` is a torch tensor on an accelerator (not the CPU)."""
    return is_tensor(x) and x.device.type != "cpu"


def to_numpy(x: object) -> np.ndarray:
    """Copy a tensor (any device) to a host numpy array; bfloat16 becomes float32.

    numpy input is returned as ``np.asarray(x)``.
    """
    if not is_tensor(x):
        return np.asarray(x)
    import torch

    t = x.detach()
    if t.dtype == torch.bfloat16:
        t = t.float()
    return np.asarray(t.cpu().numpy())


def summarise_tensor(
    probs: torch.Tensor,
    labels: torch.Tensor | ArrayLike,
    *,
    num_classes: int,
    ignore_index: int | None,
    from_logits: bool,
    image_offset: int,
    shape_hw: tuple[int, int],
    where: str = "",
    scores_dtype: npt.DTypeLike | None = None,
    keep_argmax: bool = False,
    scores_out: np.ndarray | None = None,
    disagree_out: np.ndarray | None = None,
    argmax_out: np.ndarray | None = None,
) -> tuple[BatchSummary, np.ndarray | None]:
    """Summarise one batch held as a torch tensor, on its device.

    Parameters
    ----------
    probs : torch.Tensor, shape (n, K, H, W) or (n, K, P)
        Probabilities (float16, bfloat16, float32 or float64) or logits, on any device.
    labels : torch.Tensor or ndarray, shape (n, H, W) or (n, P)
        Given labels; moved to the device of `probs` (labels are small).
    num_classes : int
        K.
    ignore_index : int or None
        Label of void pixels.
    from_logits : bool
        Apply a softmax over K first (in float64).
    image_offset : int
        Index of the batch's first image in the dataset, for error messages.
    shape_hw : (int, int)
        (H, W) of the images, for error messages.
    where : str, default=""
        Extra context for error messages (e.g. ``" in batch 37"``).
    scores_dtype : dtype, optional
        Type of the returned scores; defaults to
        :func:`~segaudit.kernels._batch.score_dtype` of the input (float32 for
        16- and 32-bit probabilities, float64 for float64 or logits).
    keep_argmax : bool, default=False
        Also return a(x) of every pixel, -1 on ignored pixels, as
        :func:`~segaudit.kernels._batch.argmax_dtype` (int16 up to 32768
        classes, else int32).
    scores_out, disagree_out : ndarray, optional, shape (n, P)
        Host buffers to write s(x) and the disagreement into (as
        :func:`~segaudit.kernels._batch.summarise_batch`); allocated when None.
    argmax_out : ndarray of int, optional, shape (n, P)
        Host buffer for the full argmax (implies `keep_argmax`).

    Returns
    -------
    summary : BatchSummary
        numpy arrays on the host, equal to what
        :func:`~segaudit.kernels._batch.summarise_batch` returns for the same
        batch (same tiles, same float sums in pixel order).
    argmax : ndarray, shape (n, P), or None
        The full argmax when asked for.

    Raises
    ------
    ValueError
        On a label outside ``0..K-1`` (other than `ignore_index`), a non-integer
        label, or a NaN, infinite or negative probability: the same message as
        the numpy path, naming the first such pixel.

    Examples
    --------
    A tie between classes 0 and 1 resolves to class 0, as in the numpy path:

    >>> import torch
    >>> p = torch.tensor([[[[0.5]], [[0.5]]]])
    >>> y = torch.tensor([[[1]]])
    >>> summary, _ = summarise_tensor(p, y, num_classes=2, ignore_index=None,
    ...     from_logits=False, image_offset=0, shape_hw=(1, 1))
    >>> summary.disagree, summary.argmax
    (array([[ True]]), array([0], dtype=uint8))
    """
    import torch

    with torch.no_grad():
        x = _as_probs(probs)
        n, k = x.shape[:2]
        if x.dim() == 3:
            x = x.unsqueeze(-1)  # (n, K, P) as P rows of one pixel
        h, w = x.shape[2:]
        y_raw = _labels_on(labels, x.device).reshape(n, h * w)
        natural = score_dtype(np.float64 if x.dtype == torch.float64 else np.float32, from_logits)
        wanted = natural if scores_dtype is None else np.dtype(scores_dtype)
        if scores_out is not None:
            wanted = scores_out.dtype
        y, void, bad_label = _class_index(y_raw, num_classes, ignore_index)
        acc = DeviceSummary.empty(
            x.device,
            n,
            h * w,
            num_classes,
            bad_label,
            (torch_dtype(natural), torch_dtype(wanted)),
        )
        budget = CPU_CHUNK_PIXELS if x.device.type == "cpu" else DEVICE_CHUNK_PIXELS
        for i0, i1, r0, r1, c0, c1 in _chunks(n, h, w, budget):
            pix = slice(r0 * w + c0, (r1 - 1) * w + c1)
            xc = x[i0:i1, :, r0:r1, c0:c1].reshape(i1 - i0, k, -1)
            summarise_chunk(
                xc,
                y[i0:i1, pix],
                void[i0:i1, pix],
                acc,
                (slice(i0, i1), pix),
                from_logits=from_logits,
            )
        bad_images = torch.nonzero(acc.bad.any(dim=1)).flatten().cpu().tolist()
        if bad_images:
            _raise_first_error(
                x,
                y_raw,
                bad_images,
                num_classes=num_classes,
                ignore_index=ignore_index,
                from_logits=from_logits,
                image_offset=image_offset,
                shape_hw=shape_hw,
                where=where,
            )
        summary = acc.summary(scores_out, None if scores_out is not None else wanted, disagree_out)
        full = None
        if keep_argmax or argmax_out is not None:
            full = to_host(acc.arg, argmax_out)
    return summary, full


def _chunks(n: int, h: int, w: int, budget: int) -> Iterator[tuple[int, int, int, int, int, int]]:
    """Split a batch into pieces of at most `budget` pixels: ``(i0, i1, r0, r1, c0, c1)``.

    Whole images when they fit, else bands of whole rows, else pieces of one row;
    so each piece is contiguous in the flat ``(n, H*W)`` pixel order.
    """
    if h * w <= budget:
        step = budget // (h * w)
        for i0 in range(0, n, step):
            yield i0, min(i0 + step, n), 0, h, 0, w
    elif w <= budget:
        step = budget // w
        for i in range(n):
            for r0 in range(0, h, step):
                yield i, i + 1, r0, min(r0 + step, h), 0, w
    else:
        for i in range(n):
            for r in range(h):
                for c0 in range(0, w, budget):
                    yield i, i + 1, r, r + 1, c0, min(c0 + budget, w)


def _as_probs(probs: torch.Tensor) -> torch.Tensor:
    """Detach; non-float input becomes float32, as in the numpy path.

    On a device without float64 (Apple's MPS) the batch is summarised on the CPU.
    """
    import torch

    x: torch.Tensor = probs.detach()
    if x.device.type == "mps":
        x = x.cpu()
    if not x.is_floating_point():
        x = x.to(torch.float32)
    return x


def _labels_on(labels: torch.Tensor | ArrayLike, device: torch.device) -> torch.Tensor:
    """Labels as a tensor on `device`, in their own dtype (bool becomes uint8)."""
    import torch

    if is_tensor(labels):
        t: torch.Tensor = labels.detach()
    else:
        arr = np.asarray(labels)
        if not arr.dtype.isnative:
            arr = arr.astype(arr.dtype.newbyteorder("="))
        if arr.dtype.kind == "u" and arr.dtype.itemsize > 1:
            arr = arr.astype(np.int64)  # wide unsigned types have little support on devices
        elif not arr.flags.writeable:
            arr = arr.copy()  # torch.from_numpy warns on read-only memory
        t = torch.from_numpy(arr)
    if t.dtype == torch.bool:
        t = t.to(torch.uint8)
    return t.to(device)


def _class_index(
    y_raw: torch.Tensor, num_classes: int, ignore_index: int | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return the class of each pixel (0 where void or bad), the void mask and bad labels.

    The label-range rule of :func:`segaudit._validation.bad_labels`, as the
    compiled kernel applies it, in torch operations on the labels' device:
    y = int64(label); a pixel is void when y equals `ignore_index` and the
    label is integral; any other label must be an integer in ``0..K-1``. The
    message for a bad label is built on the host by
    :func:`segaudit._validation.label_error` (see :func:`_raise_first_error`).
    """
    import torch

    if y_raw.is_floating_point():
        yf = y_raw.to(torch.float64)
        safe = torch.nan_to_num(yf, nan=0.0).clamp(-_INT_SAFE, _INT_SAFE)
        yi = safe.to(torch.int64)
        integral = yi.to(torch.float64) == yf
    else:
        yi = y_raw.to(torch.int64)
        integral = torch.ones_like(yi, dtype=torch.bool)
    if ignore_index is None:
        void = torch.zeros_like(yi, dtype=torch.bool)
    else:
        void = integral & (yi == ignore_index)
    bad = ~void & (~integral | (yi < 0) | (yi >= num_classes))
    y = torch.where(void | bad, 0, yi)
    return y, void, bad


def _raise_first_error(
    x: torch.Tensor,
    y_raw: torch.Tensor,
    bad_images: list[int],
    *,
    num_classes: int,
    ignore_index: int | None,
    from_logits: bool,
    image_offset: int,
    shape_hw: tuple[int, int],
    where: str,
) -> None:
    """Re-run the first bad image on the host, so that the message is the numpy path's."""
    kernels = get_kernels()
    for img in bad_images:
        pb, lb = as_batch(to_numpy(x[img : img + 1]), to_numpy(y_raw[img : img + 1]))
        summarise_batch(
            pb,
            lb,
            kernels=kernels,
            num_classes=num_classes,
            ignore_index=ignore_index,
            from_logits=from_logits,
            image_offset=image_offset + img,
            shape_hw=shape_hw,
            where=where,
        )
