"""Dataset inputs (issue #12): upsampling low-resolution probabilities, mapping raw ids.

Two per-item costs that ``segaudit scan`` adds when it reads a dataset as it
ships, each measured against a comparison in the same process:

* ``resize_bilinear`` of (19, 256, 512) float32 probabilities to 1024 x 2048
  (Cityscapes at a quarter of the resolution) against
  ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)``
  on one thread, and against one plain copy of the (19, 1024, 2048) output;
* the Cityscapes label map (34 raw ids -> 19 train ids + 255) on a
  1024 x 2048 uint8 mask against a plain copy of the mask.

Reproduce (under a minute on 2 cores; torch must be installed)::

    PYTHONPATH=src python benchmarks/bench_datasets.py [--repeats 7]
"""

from __future__ import annotations

import argparse

import numpy as np
from _common import ensure_importable, print_machine, table, time_repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    ensure_importable()
    import torch

    from segaudit.io._datasets import builtin_label_map
    from segaudit.io._labels import LabelMapping
    from segaudit.io._resample import resize_bilinear

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    low = rng.random((19, 256, 512), dtype=np.float32)
    size = (1024, 2048)
    full = np.empty((19, *size), np.float32)
    raw = rng.integers(0, 34, size=size, dtype=np.uint8)
    mapping = LabelMapping(builtin_label_map("cityscapes"), ignore_index=255)
    rows = []
    for name, fn in (
        ("resize_bilinear (numpy)", lambda: resize_bilinear(low, size)),
        (
            "torch interpolate, 1 thread",
            lambda: torch.nn.functional.interpolate(
                torch.from_numpy(low)[None], size=size, mode="bilinear", align_corners=False
            ),
        ),
        ("copy of the output", full.copy),
        ("cityscapes label map", lambda: mapping.apply(raw)),
        ("copy of the mask", lambda: raw.copy()),
    ):
        timing = time_repeats(fn, args.repeats, warmup=1)
        rows.append((name, f"{timing.median * 1e3:.1f} ms"))
    print_machine()
    print(table(["step", "median"], rows))


if __name__ == "__main__":
    main()
