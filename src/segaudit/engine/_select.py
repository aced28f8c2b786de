"""Exact selection of the T lowest self-confidences, without a full sort.

Scores are non-negative floats (NaN on ignored pixels), so their bit patterns,
read as unsigned integers, sort like the values, NaN last. A radix select finds
the key and flat index of the T-th smallest (score, flat index) pair: one
16-bit-digit histogram per level over the stored scores, then an exact sort of
the one bucket that holds the boundary. Memory is O(65536 + bucket), and ties
in score are broken by flat index, so the answer never depends on batching.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from segaudit.kernels._protocol import Kernels

__all__ = [
    "GATHER_LIMIT",
    "BlockKeys",
    "Cutoff",
    "KeyBlock",
    "KeySource",
    "compose",
    "find_cutoff",
    "keys_of",
]

GATHER_LIMIT = 1 << 22


class KeySource(Protocol):
    """Where the score keys live: in memory, on disk, or in a dask cluster."""

    def histogram(self, prefix: int, shift: int) -> np.ndarray:
        """Count (65536,) the digit below `shift` of keys whose top bits equal `prefix`."""

    def gather(self, prefix: int, shift: int, limit: int) -> tuple[np.ndarray, np.ndarray]:
        """Return (keys, flat indices) of the keys whose top bits equal `prefix`, in order."""

    def nth(self, key: int, r: int) -> int:
        """Return the flat index of the r-th (0-based) pixel whose key equals `key`."""


@dataclass(frozen=True)
class Cutoff:
    """The boundary pair: a pixel is a candidate iff ``(key, index) <= (key, index)``."""

    key: int
    index: int


@dataclass(frozen=True)
class KeyBlock:
    """A flat run of score keys and the flat pixel index of its first element."""

    keys: np.ndarray
    base: int


def keys_of(scores: np.ndarray) -> np.ndarray:
    """View float scores as unsigned integers of the same width (no copy)."""
    scores = np.ascontiguousarray(scores).reshape(-1)
    return scores.view(np.uint64 if scores.dtype == np.float64 else np.uint32)


def find_cutoff(rank: int, nbits: int, source: KeySource) -> Cutoff:
    """Find the (key, index) pair of 0-based `rank` in (key, index) order.

    Parameters
    ----------
    rank : int
        0-based rank; must be below the number of keys.
    nbits : {32, 64}
        Key width.
    source : KeySource
        Histograms, gathers and tie scans over all keys.
    """
    prefix, shift, r = 0, nbits, rank
    while True:
        counts = source.histogram(prefix, shift)
        cum = np.cumsum(counts)
        digit = int(np.searchsorted(cum, r, side="right"))
        if digit >= counts.shape[0]:
            raise AssertionError(f"rank {rank} beyond the {int(cum[-1])} keys")  # pragma: no cover
        r -= int(cum[digit - 1]) if digit else 0
        prefix, shift = (prefix << 16) | digit, shift - 16
        bucket = int(counts[digit])
        if shift == 0 and bucket > GATHER_LIMIT:
            return Cutoff(prefix, source.nth(prefix, r))
        if bucket <= GATHER_LIMIT or shift == 0:
            keys, index = source.gather(prefix, shift, bucket)
            order = np.argsort(keys, kind="stable")
            pick = order[r]
            return Cutoff(int(keys[pick]), int(index[pick]))


class BlockKeys:
    """A :class:`KeySource` over in-memory key blocks, using the chosen kernels."""

    def __init__(self, blocks: Sequence[KeyBlock], kernels: Kernels, nchunks: int) -> None:
        self.blocks = blocks
        self.kernels = kernels
        self.nchunks = nchunks

    def histogram(self, prefix: int, shift: int) -> np.ndarray:
        """Count the next digit over every block."""
        total = np.zeros(65536, dtype=np.int64)
        for b in self.blocks:
            total += self.kernels.key_histogram(b.keys, np.uint64(prefix), shift, self.nchunks)
        return total

    def gather(self, prefix: int, shift: int, limit: int) -> tuple[np.ndarray, np.ndarray]:
        """Collect the bucket from every block, in flat-index order."""
        keys, index = [], []
        for b in self.blocks:
            k, i = self.kernels.gather_bucket(b.keys, np.uint64(prefix), shift, b.base, limit)
            keys.append(k)
            index.append(i)
        return np.concatenate(keys), np.concatenate(index)

    def nth(self, key: int, r: int) -> int:
        """Scan the blocks in order for the r-th pixel with this key."""
        for b in self.blocks:
            pos, seen = self.kernels.nth_match(b.keys, np.uint64(key), r)
            if pos >= 0:
                return b.base + int(pos)
            r -= seen
        raise AssertionError("tie group shorter than its histogram count")  # pragma: no cover


def compose(
    blocks: Sequence[KeyBlock],
    masks: Sequence[np.ndarray],
    cutoff: Cutoff | None,
    kernels: Kernels,
    *,
    and_with_mask: bool,
) -> None:
    """Write ``candidate = (key, index) <= cutoff`` into each flat bool mask.

    With `and_with_mask`, the mask already holds the disagreement and is ANDed.
    A `cutoff` of None means there are no candidates.
    """
    for b, mask in zip(blocks, masks, strict=True):
        if cutoff is None:
            mask[...] = False
            continue
        kernels.compose_mask(
            b.keys,
            np.uint64(cutoff.key),
            np.int64(cutoff.index),
            np.int64(b.base),
            mask,
            and_with_mask,
        )
