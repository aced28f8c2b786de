"""Dask benchmark: ``find_label_issues`` on dask.distributed with 1 and 2 workers.

Reproduce the figures (96 images x 19 classes x 256x256, float32 ``pred_probs``
of 456 MiB, uint8 labels, 8 images per chunk; under a minute on 2 cores) with::

    PYTHONPATH=src python benchmarks/bench_dask.py

Options: ``--images``, ``--classes``, ``--height``, ``--width``, ``--chunk``
(images per chunk), ``--repeats`` (timed runs, median reported).

The data is generated on the cluster, one block per task, and kept there
(``persist``), so the distributed timings measure the engine, not shipping
the inputs from this process. Rows:

* in-memory API: ``segaudit.find_label_issues`` on the same data as numpy
  arrays, compiled kernels on all cores: the baseline;
* dask, local threads: ``find_label_issues_dask`` on ``da.from_array`` of
  those numpy arrays, with the threaded scheduler;
* dask.distributed, 1 worker x 1 thread, then 2 workers x 1 thread (worker
  processes on loopback).

Each dask row reports the call (one read of ``pred_probs``, then the
thresholds, the count and the exact selection as reductions), the
computation of the lazy mask into this process, and their sum; "vs in-memory"
is that sum over the baseline. Every result is checked against the baseline.

What to expect: after the single read, the dask backend makes about five
round trips to the cluster (thresholds; issue count with the first
histogram; one more histogram level if needed; the boundary gather; the
mask), each a few tasks per block. On a small, busy machine a round trip
costs tens of milliseconds, a fixed cost that larger ``--images`` amortise.
Whether 2 workers beat 1 depends on the machine: the read is bound by
memory bandwidth, and on a 2-vCPU VM two processes reading at once may each
run at half speed or worse, while the scheduler and this process share the
same cores.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
import warnings
from typing import Any

import numpy as np
from _common import (
    SRC,
    ensure_importable,
    fmt_ratio,
    fmt_s,
    print_machine,
    print_section,
    show_progress,
    synth_batch,
    table,
    time_repeats,
)

# Steady-state speed: the compiled kernels. The default kernel choice ("auto") serves the
# numpy twins until they are compiled; bench_coldstart.py measures that first phase.
os.environ.setdefault("SEGAUDIT_KERNEL", "numba")

ensure_importable()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=96, help="N (default 96)")
    parser.add_argument("--classes", type=int, default=19, help="K (default 19)")
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--chunk", type=int, default=8, help="images per dask chunk (default 8)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs (median; default 3)")
    return parser.parse_args(argv)


def synth_block(seed: int, n: int, k: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """One block of synthetic (labels, probs), the same wherever it is made."""
    return synth_batch(np.random.default_rng(seed), n, k, h, w)


def make_data(args: argparse.Namespace) -> tuple[Any, Any]:
    """Lazy dask (labels, pred_probs), one generating task per chunk of images."""
    import dask
    import dask.array as da

    k, h, w = args.classes, args.height, args.width
    labels, probs = [], []
    for seed, start in enumerate(range(0, args.images, args.chunk)):
        n = min(args.chunk, args.images - start)
        block = dask.delayed(synth_block, pure=True)(seed, n, k, h, w)
        labels.append(da.from_delayed(block[0], shape=(n, h, w), dtype=np.uint8))
        probs.append(da.from_delayed(block[1], shape=(n, k, h, w), dtype=np.float32))
    return da.concatenate(labels), da.concatenate(probs)


def time_dask(labels: Any, probs: Any, opts: Any, expected: np.ndarray, repeats: int) -> list:
    """Median call, mask compute and total time of the dask backend on these inputs."""
    from segaudit.drivers._dask import find_label_issues_dask

    calls, computes, totals = [], [], []
    for _ in range(repeats + 1):  # the first run loads the compiled kernels: untimed
        # New keys each run: a live earlier result would let the scheduler reuse its summaries.
        fresh = labels.map_blocks(np.asarray, dtype=labels.dtype, name=f"bench-{uuid.uuid4()}")
        start = time.perf_counter()
        mask = find_label_issues_dask(fresh, probs, opts, verbose=False)
        mid = time.perf_counter()
        got = mask.compute()
        end = time.perf_counter()
        if not np.array_equal(got, expected):
            raise AssertionError("the dask mask differs from the in-memory API's")
        calls.append(mid - start)
        computes.append(end - mid)
        totals.append(end - start)
    return [float(np.median(x[1:])) for x in (calls, computes, totals)]


def distributed_row(args: argparse.Namespace, workers: int, opts: Any, expected: np.ndarray):
    """Start a loopback cluster of `workers` processes and time the backend on it."""
    import dask
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    )
    client = Client(cluster, set_as_default=False)
    with cluster, client, dask.config.set(scheduler=client):
        client.wait_for_workers(workers)
        labels, probs = dask.persist(*make_data(args))  # spread over the workers
        return time_dask(labels, probs, opts, expected, args.repeats)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(SRC), os.environ.get("PYTHONPATH")) if p
    )  # worker processes import segaudit from this checkout
    import dask
    import dask.array as da

    import segaudit
    from segaudit.engine._finder import Options

    n, k, h, w = args.images, args.classes, args.height, args.width
    size = n * k * h * w * 4
    print_machine([("dask", dask.__version__), ("pred_probs", f"{size / 2**20:.0f} MiB float32")])
    show_progress("generating data")
    with dask.config.set(scheduler="threads"):
        labels, probs = (np.asarray(x) for x in dask.compute(*make_data(args)))
    opts = Options(k)
    show_progress("in-memory API")
    expected = segaudit.find_label_issues(labels, probs, verbose=False)
    base = time_repeats(
        lambda: segaudit.find_label_issues(labels, probs, verbose=False), args.repeats, warmup=1
    ).median
    rows: list[list[str]] = [["in-memory API (numpy arrays)", "-", "-", fmt_s(base), "1x"]]
    timings = {}
    show_progress("dask, local threads")
    with dask.config.set(scheduler="threads"):
        chunks = (args.chunk, -1, -1, -1)
        timings["dask, local threads"] = time_dask(
            da.from_array(labels, chunks=chunks[:3]),
            da.from_array(probs, chunks=chunks),
            opts,
            expected,
            args.repeats,
        )
    for workers in (1, 2):
        show_progress(f"dask.distributed, {workers} worker(s)")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # cluster start-up chatter (e.g. port in use)
            name = f"dask.distributed, {workers} worker{'s' if workers > 1 else ''} x 1 thread"
            timings[name] = distributed_row(args, workers, opts, expected)
    show_progress("done", last=True)
    for name, (call, compute, total) in timings.items():
        rows.append([name, fmt_s(call), fmt_s(compute), fmt_s(total), fmt_ratio(total / base)])
    print_section(
        f"find_label_issues, N={n}, K={k}, {h}x{w}, {args.chunk} images per chunk "
        f"(median of {args.repeats})",
        table(["", "call", "mask.compute()", "total", "vs in-memory"], rows),
    )
    one, two = (timings[k][2] for k in timings if "distributed" in k)
    print(f"\n2 workers vs 1: {fmt_ratio(one / two)} faster. Masks identical to the in-memory API.")


if __name__ == "__main__":
    main()
