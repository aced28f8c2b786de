"""The torch backend's summary while it is built on the device, chunk by chunk.

:func:`summarise_chunk` works as the compiled kernel does, pixel by pixel, on
torch operations; :class:`DeviceSummary` holds the results of a batch and
brings the compact summary to the host. torch is imported only when called.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from segaudit.kernels._batch import BatchSummary, argmax_dtype, index_dtype
from segaudit.kernels._protocol import TILE, tiles_per_image

if TYPE_CHECKING:
    import torch

__all__ = ["DeviceSummary", "summarise_chunk", "to_host", "torch_dtype"]


@dataclass
class DeviceSummary:
    """The batch's summary while it is built on the device, all (n, P) but the last two.

    ``scores`` holds s(x) in the numpy path's score type (NaN on void), ``m``
    holds m(x) in the type asked for, ``arg`` a(x) as :func:`argmax_dtype` (-1
    on void), ``bins`` the (tile, class) slot of each pixel for the per-tile
    sums (a spare last slot for void pixels), ``counts`` the pixels per slot.
    """

    num_classes: int
    scores: torch.Tensor
    disagree: torch.Tensor
    m: torch.Tensor
    arg: torch.Tensor
    bad: torch.Tensor
    bins: torch.Tensor
    counts: torch.Tensor
    deviation: torch.Tensor

    @classmethod
    def empty(
        cls,
        device: torch.device,
        n: int,
        p: int,
        num_classes: int,
        bad_label: torch.Tensor,
        dtypes: tuple[torch.dtype, torch.dtype],
    ) -> DeviceSummary:
        """Allocate the summary of n images of p pixels on `device`.

        `dtypes` are the torch types of s(x) (the numpy path's score type) and
        of m(x) (the type asked for).
        """
        import torch

        slots = n * tiles_per_image(p) * num_classes + 1
        bins = torch.int32 if slots < 2**31 else torch.int64
        return cls(
            num_classes=num_classes,
            scores=torch.empty((n, p), dtype=dtypes[0], device=device),
            disagree=torch.empty((n, p), dtype=torch.bool, device=device),
            m=torch.empty((n, p), dtype=dtypes[1], device=device),
            arg=torch.empty((n, p), dtype=torch_dtype(argmax_dtype(num_classes)), device=device),
            bad=bad_label.clone(),
            bins=torch.empty((n, p), dtype=bins, device=device),
            counts=torch.zeros(slots, dtype=torch.int64, device=device),
            deviation=torch.zeros((), dtype=torch.float64, device=device),
        )

    def summary(
        self,
        scores_out: np.ndarray | None,
        wanted: np.dtype | None,
        disagree_out: np.ndarray | None,
    ) -> BatchSummary:
        """Compact on the device, copy to the host, and add up s per tile and class there.

        The per-tile sums are float64 sums in pixel order, as in the compiled
        kernel: `np.bincount` adds its weights in input order.
        """
        import torch

        k = self.num_classes
        hits = torch.nonzero(self.disagree.reshape(-1)).flatten()
        scores = to_host(self.scores, None)
        bins = to_host(self.bins, None).reshape(-1)
        sums = np.bincount(bins, weights=scores.reshape(-1), minlength=self.counts.shape[0])
        if scores_out is not None:
            scores_out[...] = scores
            scores = scores_out
        elif wanted is not None and wanted != scores.dtype:
            scores = scores.astype(wanted)
        return BatchSummary(
            scores=scores,
            disagree=to_host(self.disagree, disagree_out),
            max_prob=to_host(self.m.reshape(-1)[hits], None),
            argmax=to_host(self.arg.reshape(-1)[hits].to(torch_dtype(index_dtype(k))), None),
            sums=sums[:-1].reshape(-1, k),
            counts=to_host(self.counts[:-1], None).reshape(-1, k),
            max_row_deviation=float(self.deviation.item()),
        )


def summarise_chunk(
    x: torch.Tensor,
    y: torch.Tensor,
    void: torch.Tensor,
    acc: DeviceSummary,
    at: tuple[slice, slice],
    *,
    from_logits: bool,
) -> None:
    """Summarise ``x (c, K, q)`` against ``y (c, q)`` into `acc` at ``[at]``.

    Works as the compiled kernel does, pixel by pixel: a = the first maximal
    class; the row sum in the probabilities' type (float32 for 16-bit ones) and
    the softmax denominator in float64, both in class order; s = p_y (or the
    softmax of the logits); any NaN, inf (or negative probability) flagged.
    """
    import torch

    best = x.amax(dim=1)
    lowest = x.amin(dim=1)
    broken = ~torch.isfinite(best) | ~torch.isfinite(lowest)
    if not from_logits:
        broken |= lowest < 0
    acc.bad[at] |= broken & ~void
    arg = torch.zeros(best.shape, dtype=torch.int64, device=x.device)
    for c in range(x.shape[1] - 1, -1, -1):  # the lowest maximal class wins
        arg.masked_fill_(x[:, c] == best, c)
    given = x.gather(1, y[:, None]).squeeze(1)
    if from_logits:
        shift = best.to(torch.float64)
        denom = torch.zeros(best.shape, dtype=torch.float64, device=x.device)
        term = torch.empty_like(denom)
        for c in range(x.shape[1]):
            torch.sub(x[:, c], shift, out=term)
            denom += term.exp_()
        s = torch.exp(given.to(torch.float64) - shift).div_(denom)
        acc.m[at] = denom.reciprocal_()
    else:
        row = torch.float64 if x.dtype == torch.float64 else torch.float32
        total = x[:, 0].to(row, copy=True)  # never add into the caller's tensor
        for c in range(1, x.shape[1]):
            total += x[:, c]
        s = given.to(acc.scores.dtype)
        acc.m[at] = x.gather(1, arg[:, None]).squeeze(1)
        deviation = total.to(torch.float64).sub_(1.0).abs_().masked_fill_(void, 0.0).amax()
        torch.maximum(acc.deviation, deviation, out=acc.deviation)
    s.masked_fill_(s == 0.0, 0.0)  # -0.0 becomes +0.0: the ordering key stays monotone
    acc.scores[at] = s.masked_fill_(void, float("nan"))
    acc.disagree[at] = (arg != y) & ~void
    acc.arg[at] = arg.masked_fill_(void, -1)
    _bin(acc, at, y, void)


def _bin(acc: DeviceSummary, at: tuple[slice, slice], y: torch.Tensor, void: torch.Tensor) -> None:
    """Slot of each pixel: its (tile, class), as the kernel's per-tile sums; count them."""
    import torch

    images, pixels = at
    tiles = tiles_per_image(acc.scores.shape[1])
    device = y.device
    image = torch.arange(images.start, images.stop, device=device)[:, None] * tiles
    tile = torch.arange(pixels.start, pixels.stop, device=device)[None, :] // TILE
    slot = ((image + tile) * acc.num_classes + y).masked_fill_(void, acc.counts.shape[0] - 1)
    acc.bins[at] = slot
    acc.counts.index_add_(0, slot.reshape(-1), torch.ones_like(slot.reshape(-1)))


def to_host(t: torch.Tensor, out: np.ndarray | None) -> np.ndarray:
    """Copy a result to the host, into `out` when given."""
    host = np.asarray(t.cpu().numpy())
    if out is None:
        return host
    out[...] = host
    return out


def torch_dtype(dtype: np.dtype) -> torch.dtype:
    """Return the torch twin of a numpy dtype."""
    import torch

    return torch.from_numpy(np.empty(0, dtype=dtype)).dtype
