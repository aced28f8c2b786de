"""LabelAudit.update per image, with glibc's defaults and with 128 KiB mmap thresholds.

The summary of one large image, as the folder scan feeds it: 512x512, K=19,
float16 logits, ``filter_by="confident_regions"``, nothing spilled. Each
allocator setting runs in its own fresh processes (``--processes``, alternating),
each timing ``--images`` updates after 3 warm-up ones; wall and CPU time per
image, medians over the processes::

    PYTHONPATH=src python benchmarks/bench_update.py

With mmap and trim thresholds at 128 KiB (the setting the scan benchmark's
memory run uses; musl serves large allocations by ``mmap`` the same way),
every large array a kernel allocates is mapped and faulted in afresh, so the
kernels' scratch per call is what this shows.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
from _common import (
    MALLOC_ENV,
    child_env,
    emit,
    print_machine,
    print_section,
    run_child,
    synth_batch,
    table,
)

CHILD = "--child"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=30, help="timed updates per process")
    parser.add_argument("--size", type=int, default=512, help="height and width (512)")
    parser.add_argument("--classes", type=int, default=19, help="K (19)")
    parser.add_argument("--processes", type=int, default=3, help="per setting (3)")
    parser.add_argument(CHILD, action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def child(args: argparse.Namespace) -> None:
    """Time `args.images` updates of one audit; emit wall and CPU seconds per image."""
    import segaudit

    rng = np.random.default_rng(0)
    items = []
    for _ in range(4):
        labels, logits = synth_batch(rng, 1, args.classes, args.size, args.size, logits=True)
        items.append((labels, logits.astype(np.float16)))
    audit = segaudit.LabelAudit(
        args.classes, from_logits=True, filter_by="confident_regions", memory_limit=1 << 40
    )
    for labels, logits in items[:3]:
        audit.update(labels, logits)
    cpu0, start = os.times(), time.perf_counter()
    for i in range(args.images):
        labels, logits = items[i % len(items)]
        audit.update(labels, logits)
    wall = time.perf_counter() - start
    cpu1 = os.times()
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    emit({"wall": wall / args.images, "cpu": cpu / args.images})


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child:
        child(args)
        return
    print(f"## bench_update: LabelAudit.update, {args.size}x{args.size}, K={args.classes}")
    print(f"\nCommand: `{' '.join([os.path.basename(sys.executable), *sys.argv])}`")
    print_machine()
    settings = {"glibc defaults": {}, "mmap/trim thresholds 128 KiB": MALLOC_ENV}
    results: dict[str, list[dict[str, float]]] = {name: [] for name in settings}
    argv_child = [CHILD, f"--images={args.images}", f"--size={args.size}"]
    argv_child.append(f"--classes={args.classes}")
    for _ in range(args.processes):
        for name, extra in settings.items():
            results[name].append(run_child(__file__, argv_child, env=child_env(**extra)))
    rows = []
    for name, runs in results.items():
        wall = [1e3 * r["wall"] for r in runs]
        cpu = [1e3 * r["cpu"] for r in runs]
        rows.append(
            [
                name,
                f"{np.median(wall):.1f} ms ({min(wall):.1f}-{max(wall):.1f})",
                f"{np.median(cpu):.1f} ms ({min(cpu):.1f}-{max(cpu):.1f})",
            ]
        )
    print_section(
        f"Per image, medians (range) of {args.processes} processes",
        table(["allocator", "wall", "CPU (all threads)"], rows),
    )


if __name__ == "__main__":
    main()
