"""The kernels' interface: what the engine calls on a kernel module, and its constants.

:mod:`segaudit.kernels._numba` (compiled) and :mod:`segaudit.kernels._numpy`
(its pure-numpy twin) both implement :class:`Kernels`, function for function
with the same signatures; :func:`~segaudit.kernels._choice.get_kernels`
returns one of them. Outputs are written into arrays the caller allocates.
"""

from __future__ import annotations

from typing import Any, Protocol, TypeAlias, TypeVar

import numpy as np
import numpy.typing as npt

from segaudit._typing import BoolArray, FloatArray, IntArray

__all__ = [
    "BOUNDARY_FRACTION",
    "CELL_WIDTH",
    "ERR_LABEL",
    "ERR_NEGATIVE",
    "ERR_NONE",
    "ERR_NONFINITE",
    "TILE",
    "Int64Array",
    "Kernels",
    "LabelArray",
    "RegionStats",
    "ScalarT",
    "UIntArray",
    "tiles_per_image",
]

TILE = 4096
"""Pixels per tile: per-tile class sums make the totals independent of batching."""


CELL_WIDTH = 32
"""Bytes per cell of the kernels ``float_cells`` and ``int_cells`` (a float's repr needs 24)."""


BOUNDARY_FRACTION = 0.8
"""Share of a region's pixels that must lie near a class border for a boundary strip."""


def tiles_per_image(pixels: int) -> int:
    """Count the tiles of :data:`TILE` pixels that cover an image of `pixels` pixels.

    The compiled kernels call it compiled (``_jit.njit`` of this function).
    """
    return (pixels + TILE - 1) // TILE


ERR_NONE = 0
ERR_LABEL = 1
ERR_NONFINITE = 2
ERR_NEGATIVE = 3
"""Codes of the first bad input of a tile, in ``errors[t, 0]``."""

UIntArray: TypeAlias = npt.NDArray[np.unsignedinteger[Any]]
Int64Array: TypeAlias = npt.NDArray[np.int64]
LabelArray: TypeAlias = "npt.NDArray[np.integer[Any] | np.floating[Any]]"
ScalarT = TypeVar("ScalarT", bound=np.generic)
RegionStats: TypeAlias = tuple[
    Int64Array, Int64Array, Int64Array, npt.NDArray[np.float64], Int64Array, BoolArray
]
"""One image's regions ``1..n``: area, majority given and predicted class, sum of
scores, box ``(n, 4)`` (row0, col0, row1, col1; half-open) and whether it is a
boundary strip."""


class Kernels(Protocol):
    """The per-pixel summary and the selection helpers, as one module provides them.

    Shapes: n images of P pixels, K classes, T tiles of :data:`TILE` pixels.
    """

    def summarise(
        self,
        probs: FloatArray,
        bits: UIntArray,
        labels: LabelArray,
        num_classes: int,
        ignore_index: np.int64,
        use_ignore: bool,
        from_logits: bool,
        exp_table: FloatArray,
        keep_argmax: bool,
        s_out: FloatArray,
        disagree_out: BoolArray,
        a_out: IntArray,
        m_dis: FloatArray,
        a_dis: IntArray,
        n_dis: Int64Array,
        sums: npt.NDArray[np.float64],
        counts: Int64Array,
        maxdev: npt.NDArray[np.float64],
        errors: Int64Array,
        agree_sums: npt.NDArray[np.float64],
        agree_counts: Int64Array,
        runs: int,
    ) -> None:
        """Fused pass over ``probs (n, K, P)``, ``labels (n, P)``: s, a, m, sums per tile.

        `exp_table`: :func:`~segaudit.kernels._exp.exp_table` for float16
        logits (the softmax's exp looked up), else
        :data:`~segaudit.kernels._exp.NO_TABLE`; the same results either way
        but for the last bits.

        With ``(T, K)`` `agree_sums` and `agree_counts` (not ``(0, K)``), also
        the sums of :meth:`agree_sums`, in one pass. `runs`: how many runs of
        tiles to share among the threads (see :func:`~segaudit.kernels._choice.kernel_runs`);
        it never changes a result.
        """

    def self_confidence(
        self,
        probs: FloatArray,
        bits: UIntArray,
        labels: LabelArray,
        num_classes: int,
        ignore_index: np.int64,
        use_ignore: bool,
        s_out: FloatArray,
        maxdev: npt.NDArray[np.float64],
        errors: Int64Array,
        runs: int,
    ) -> None:
        """Scores-only pass over probabilities: s, row-sum deviation, first errors.

        `runs`: as :meth:`summarise`.
        """

    def key_histogram(
        self, keys: UIntArray, prefix: np.uint64, shift: int, nchunks: int
    ) -> Int64Array:
        """Count (65536,) the 16-bit digit below `shift` of the keys in bucket `prefix`."""

    def gather_bucket(
        self, keys: UIntArray, prefix: np.uint64, shift: int, base: int, limit: int
    ) -> tuple[npt.NDArray[np.uint64], Int64Array]:
        """Return the keys in bucket `prefix` and their indices (+ `base`), at most `limit`."""

    def nth_match(self, keys: UIntArray, key: np.uint64, nth: int) -> tuple[int, int]:
        """Return the position of the `nth` occurrence of `key`, or -1 and the count seen."""

    def compact(
        self, per_tile: npt.NDArray[ScalarT], used: Int64Array, tile: int
    ) -> npt.NDArray[ScalarT]:
        """Join the first ``used[t]`` entries of each tile's `tile`-long slot."""

    def count_above(self, max_prob: FloatArray, argmax: IntArray, adjusted: FloatArray) -> int:
        """Count ``max_prob[i] >= adjusted[argmax[i]]``."""

    def compose_mask(
        self,
        keys: UIntArray,
        cut_key: np.uint64,
        cut_index: np.int64,
        base: np.int64,
        mask: BoolArray,
        use_mask: bool,
    ) -> None:
        """Write ``(key, base + i) <= (cut_key, cut_index)`` into (or AND it with) `mask`."""

    def softmin(self, scores: FloatArray, temperature: float, out: FloatArray) -> None:
        """Write the softmin image score of each row of ``scores (n, P)`` into `out`."""

    def agree_sums(
        self,
        scores: FloatArray,
        disagree: BoolArray,
        labels: LabelArray,
        sums: npt.NDArray[np.float64],
        counts: Int64Array,
    ) -> None:
        """Add s and count per tile and class ``(T, K)`` over agreeing pixels of ``(n, P)``.

        Agreeing: s is not NaN, the pixel does not disagree and its label is
        in ``0..K-1``. Each tile of :data:`TILE` pixels of an image is added in
        pixel order, as :meth:`summarise` adds its class sums.
        """

    def region_flags(
        self,
        cand: BoolArray,
        width: int,
        scores: FloatArray,
        max_prob: FloatArray,
        offsets: Int64Array,
        floor: npt.NDArray[np.float64],
        share: float,
        given: LabelArray,
        predicted: IntArray,
        thresholds: npt.NDArray[np.float64],
        strip_floor: npt.NDArray[np.float64],
        strip: npt.NDArray[np.float64],
    ) -> None:
        """Flag whole 8-connected one-label regions of candidates ``cand (n, P)``, in place.

        `strip` holds the shape rules' bounds: ``strip[0:5]`` the strip's size,
        touch share and lean, the flip's size, and the confident rule's bound on
        mean s as a multiple of `strip_floor`; ``strip[5]`` (optional) the part
        rule's lean; ``strip[6:9]`` (optional) the long strip's touch count,
        bound on mean s (as a multiple of `strip_floor`) and lean;
        ``strip[9:11]`` (optional) the unlabelled object's touch factor (of the
        square root of its size) and lean. See
        :func:`segaudit.kernels._regions_numba.region_flags`.
        """

    def float_cells(self, values: FloatArray, out: UIntArray, lens: Int64Array) -> None:
        """Write ``repr`` of each float64 into ``out[i, :lens[i]]``: NaN empty, -1 for the caller.

        A length of -1 (compiled kernel only) marks a value whose shortest
        digits it cannot vouch for; the caller writes ``repr`` there.
        """

    def int_cells(self, values: Int64Array, out: UIntArray, lens: Int64Array) -> None:
        """Write ``str`` of each int64 into ``out[i, :lens[i]]``."""

    def join_cells(
        self,
        slots: UIntArray,
        slot_lens: Int64Array,
        text: UIntArray,
        text_starts: Int64Array,
        text_lens: Int64Array,
        order: Int64Array,
        end: UIntArray,
        out: UIntArray,
    ) -> None:
        """Write CSV rows of slot cells ``(k, rows, CELL_WIDTH)`` and text cells, in `order`."""

    def pair_counts(
        self,
        labels: LabelArray,
        predicted: IntArray,
        mask: BoolArray,
        num_classes: int,
        pairs: Int64Array,
        flagged: Int64Array,
    ) -> None:
        """Add each non-void pixel (``predicted >= 0``) to its pair ``y * K + a``; the flagged too.

        ``labels``, ``predicted``, ``mask`` are 1-D (one image); ``pairs`` and
        ``flagged`` hold ``K * K`` int64 counts.
        """

    def issue_regions(
        self,
        issues: BoolArray,
        labels: LabelArray,
        predicted: IntArray,
        scores: FloatArray,
        ignore_index: np.int64,
        use_ignore: bool,
        connectivity: int,
        min_area: int,
        boundary_width: int,
    ) -> RegionStats:
        """Return the connected regions of one image's flagged, non-void pixels ``(H, W)``.

        Regions are numbered as ``scipy.ndimage.label`` numbers them (by first
        pixel in raster order; `connectivity` 1: 4-neighbours, 2: 8). A
        majority ties to the smallest value; scores ``(H, W)`` (or size 0: sums
        of 0) are added in raster order as float64. A region is a boundary
        strip when its area is at least `min_area`, its classes differ, it is
        thin (no pixel is the centre of a ``(2w+1)``-square of flagged pixels),
        at least :data:`BOUNDARY_FRACTION` of its pixels lie within chessboard
        distance ``w - 1`` of a pixel with a non-void 4-neighbour of another
        class, and both its classes occur among the non-void pixels outside it
        within distance ``w`` (``w`` = `boundary_width`).
        """
