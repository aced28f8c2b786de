"""CSV writing: ``io._csv.write_csv`` with compiled cells, its Python twins, and pandas.

A table shaped like a scan's ``regions.csv`` (``--rows`` rows: a stem and a
mask path per image as categories, nine integer columns, class names, two
float64 columns of scores, an issue type and an empty text column) is written
to memory three ways in one process, alternating, ``--repeats`` times each:

* ``write_csv`` with the compiled cell kernels (``SEGAUDIT_KERNEL=numba``),
* ``write_csv`` with their twins (``repr`` per float, numpy gathers),
* ``DataFrame.to_csv`` (the text the other two must equal, checked first).

Reproduce::

    PYTHONPATH=src python benchmarks/bench_csv.py
"""

from __future__ import annotations

import argparse
import io
import os

import numpy as np
import pandas as pd
from _common import ensure_importable, print_machine, print_section, table, time_repeats


def regions_like(rows: int, seed: int = 0) -> pd.DataFrame:
    """A frame with the columns and value kinds of a scan's ``regions.csv``."""
    rng = np.random.default_rng(seed)
    images = max(rows // 2500, 1)
    image = np.sort(rng.integers(0, images, rows))
    area = np.where(rng.random(rows) < 0.9, 1, rng.integers(2, 5000, rows))
    stems = np.array([f"img_{i:05d}" for i in range(images)], dtype=object)
    paths = np.array([f"/data/segmentation/masks/img_{i:05d}.png" for i in range(images)])
    names = np.array(["road", "sidewalk", "building", "wall", "car", "person", "sky"], dtype=object)
    mean_s = rng.random(rows).astype(np.float32).astype(np.float64) * 0.1  # widened scores
    return pd.DataFrame(
        {
            "stem": pd.Categorical(stems[image]),
            "image": image,
            "region": np.arange(rows),
            "bbox_row0": rng.integers(0, 512, rows),
            "bbox_col0": rng.integers(0, 512, rows),
            "bbox_row1": rng.integers(0, 512, rows),
            "bbox_col1": rng.integers(0, 512, rows),
            "area": area,
            "given_label": rng.integers(0, 7, rows),
            "predicted_label": rng.integers(0, 7, rows),
            "given_name": pd.Categorical(names[rng.integers(0, 7, rows)]),
            "predicted_name": pd.Categorical(names[rng.integers(0, 7, rows)]),
            "mean_self_confidence": mean_s,
            "severity": area * (1.0 - mean_s),
            "issue_type": pd.Categorical(rng.choice(["wrong_class", "boundary"], rows)),
            "mask_path": pd.Categorical(paths[image]),
            "image_path": pd.Series([""] * rows, dtype=object),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    ensure_importable()
    from segaudit.io import _csv
    from segaudit.kernels import _numba, _numpy

    frame = regions_like(args.rows)

    def ours(kernels: object) -> str:
        previous = _csv.get_kernels
        _csv.get_kernels = lambda: kernels  # type: ignore[assignment,return-value]
        try:
            out = io.StringIO()
            _csv.write_csv(frame, out)
            return out.getvalue()
        finally:
            _csv.get_kernels = previous

    def pandas() -> str:
        out = io.StringIO()
        _csv.neutralise_frame(frame).to_csv(out, index=False)
        return out.getvalue()

    want = pandas()
    assert ours(_numba) == want and ours(_numpy) == want, "not the text pandas writes"
    print("## bench_csv: write_csv on a regions.csv-shaped table")
    print(f"\nCommand: `PYTHONPATH=src python benchmarks/bench_csv.py --rows {args.rows}`")
    print_machine([("SEGAUDIT_KERNEL", os.environ.get("SEGAUDIT_KERNEL", "(unset)"))])
    timings: dict[str, list[float]] = {"compiled": [], "twins": [], "pandas": []}
    for _ in range(args.repeats):  # alternating: each round sees the same machine
        timings["compiled"] += time_repeats(lambda: ours(_numba), 1).times
        timings["twins"] += time_repeats(lambda: ours(_numpy), 1).times
        timings["pandas"] += time_repeats(pandas, 1).times
    base = float(np.median(timings["compiled"]))
    rows = [
        (
            name,
            f"{np.median(t) * 1e3:.0f} ms",
            f"{np.median(t) / args.rows * 1e6:.2f} us",
            f"{np.median(t) / base:.2f}x",
        )
        for name, t in timings.items()
    ]
    print_section(
        f"{args.rows} rows x {frame.shape[1]} columns, {len(want) / 2**20:.1f} MiB of text "
        f"(medians of {args.repeats}; the same text all three ways)",
        table(["writer", "time", "per row", "vs compiled"], rows),
    )


if __name__ == "__main__":
    main()
