"""The exact selection's kernels, and ``find_label_issues`` beside ``sum()`` and the scores.

The default method's cutoff (the T-th lowest self-confidence) is found by a
radix select over the stored scores: ``key_histogram``, ``gather_bucket``
and ``compose_mask`` each read one batch's score keys once. This script times
them on one batch of bench_core's inputs (10 images of 256x256: 655,360
keys, the real self-confidences), next to a ``sum()`` of the same keys, and
then ``find_label_issues`` and ``get_label_quality_scores`` (softmin) on
bench_core's 50 images x 21 classes x 256x256 next to ``pred_probs.sum()``,
the three interleaved, medians of ``--repeats``::

    SEGAUDIT_KERNEL=numba PYTHONPATH=src python benchmarks/bench_select.py [--n-jobs 1]

To time another tree, run a copy of this script placed outside the
repository with that tree's ``src`` first on ``PYTHONPATH``. The mask's size
and CRC-32 are printed, so that two trees' masks can be compared.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np
from _common import ensure_importable, fill_arrays, print_machine, table

ensure_importable()


def median_ms(fn: Callable[[], Any], repeats: int) -> float:
    """Median wall time of `fn` in milliseconds, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1e3 * statistics.median(times)


def main() -> None:
    """Time the selection kernels, then the calls, and print both tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-jobs", type=int, default=None, help="n_jobs of the calls (all cores)")
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    os.environ.setdefault("SEGAUDIT_KERNEL", "numba")
    import segaudit
    from segaudit.kernels import _numba as kernels

    labels = np.empty((50, 256, 256), np.int64)
    probs = np.empty((50, 21, 256, 256), np.float32)
    fill_arrays(labels, probs, seed=0)
    n_jobs = args.n_jobs

    def issues() -> np.ndarray:
        mask: np.ndarray = segaudit.find_label_issues(labels, probs, verbose=False, n_jobs=n_jobs)
        return mask

    def scores() -> Any:
        return segaudit.get_label_quality_scores(labels, probs, verbose=False, n_jobs=n_jobs)

    print_machine()
    mask = issues()
    print(f"\nmask: {int(mask.sum())} pixels flagged, CRC-32 {zlib.crc32(mask.tobytes())}")

    _, pixel_scores = segaudit.get_label_quality_scores(labels[:10], probs[:10], verbose=False)
    keys = np.ascontiguousarray(pixel_scores, dtype=np.float32).reshape(-1).view(np.uint32)
    cut = np.uint64(np.sort(keys)[keys.size // 20])
    disagree = np.arange(keys.size) % 7 == 0
    rows = [
        ("key_histogram", lambda: kernels.key_histogram(keys, np.uint64(0), 32, 2)),
        (
            "gather_bucket",
            lambda: kernels.gather_bucket(keys, np.uint64(int(cut) >> 16), 16, 0, 1 << 22),
        ),
        (
            "compose_mask",
            lambda: kernels.compose_mask(
                keys, cut, np.int64(5), np.int64(0), disagree.copy(), True
            ),
        ),
        ("keys.sum()", keys.sum),
    ]
    kernel_rows = [(name, f"{median_ms(fn, 21):.2f} ms") for name, fn in rows]
    print(f"\nSelection kernels, one batch ({keys.size:,} keys, medians of 21):\n")
    print(table(["kernel", "time"], kernel_rows))

    times: dict[str, list[float]] = {"sum": [], "issues": [], "scores": []}
    calls = {"sum": probs.sum, "issues": issues, "scores": scores}
    scores()
    for _ in range(args.repeats):
        for name, fn in calls.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    med = {name: 1e3 * statistics.median(values) for name, values in times.items()}
    print(f"\nCalls (n_jobs={n_jobs}, interleaved, medians of {args.repeats}):\n")
    print(
        table(
            ["call", "median", "/ sum()", "/ softmin scores"],
            [
                ("`pred_probs.sum()`", f"{med['sum']:.1f} ms", "1x", ""),
                (
                    "`find_label_issues`",
                    f"{med['issues']:.1f} ms",
                    f"{med['issues'] / med['sum']:.2f}x",
                    f"{med['issues'] / med['scores']:.2f}x",
                ),
                (
                    "`get_label_quality_scores`",
                    f"{med['scores']:.1f} ms",
                    f"{med['scores'] / med['sum']:.2f}x",
                    "1x",
                ),
            ],
        )
    )


if __name__ == "__main__":
    main()
