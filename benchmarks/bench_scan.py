"""Folder-scan benchmark: ``segaudit.cli.run_scan`` throughput and bounded memory.

Reproduce the figures (N = 200 and 2N = 400 images of 512x512, K = 19, float16
logits in ``.npz``: 4 GB of files; about 5 minutes on 2 cores) with::

    PYTHONPATH=src python benchmarks/bench_scan.py

Smoke test (12 and 24 images of 256x256, under a minute)::

    PYTHONPATH=src python benchmarks/bench_scan.py --quick

The script writes 2N palette PNG masks (VOC-style, 255 = void border) and 2N
``.npz`` files of float16 logits ``(K, H, W)`` into ``--dir`` (a new temporary
folder by default, removed at the end unless ``--keep``); the N-image set is the
first N files, hard-linked. Each set is timed in its own fresh process:

* a warm-up scan of 2 images (compiled kernels, pandas, Pillow and the report
  code are loaded before the baseline),
* ``--repeats`` times: a plain read of every file (``np.load`` of each
  ``.npz``, Pillow for each mask), for comparison, then ``run_scan(masks,
  probs, out, from_logits=True, ignore_index=255, memory_limit=..., top=...,
  verbose=False)``; medians of both, and the median of each scan over the
  read just before it (the machine's speed drifts between runs: a pair sees
  the same one).

Each child sets ``OMP_WAIT_POLICY=PASSIVE`` unless the variable is set, as the
``segaudit`` command does (``kernels._choice.passive_waiting``), so the scan
runs as a user of the command runs it; a value in the environment stands
(``ACTIVE``: OpenMP's idle threads spin).

Its memory is measured by one more scan in another fresh process, while a
thread samples ``/proc/self/status`` every ~1 ms, with glibc's mmap and trim
thresholds at 128 KiB so that freed memory leaves RSS. Those settings make
every large allocation a fresh mapping, faulted in page by page (about 17 ms
more per 512x512 image here), and the sampler shortens the GIL's switch
interval: the times come from the process with the allocator's defaults, as
a user runs it.

``--stages`` also times run_scan's stages in that process (`STAGES`: the
up-front checks, reading + kernel, regions, ``regions.csv``, ``report.html``)
and prints them per image beside the plain read.

Then ``--small-images`` (2000) images of ``--small-size`` (8x8) are scanned the
same way in one more process: per-image costs, not bytes, dominate there
(issue #11: at least 500 images/s). ``--pixel-noise 0`` runs without the
single-pixel errors.

The labels have 2% single-pixel errors (``--pixel-noise``) besides wrong 32x32
cells; each flagged stray pixel is a region of its own, so the region analysis
(``regions.csv``) is a large share of the scan time.

Memory does not grow with N when the peak above the baseline stays the same at
2N: the scan streams the files, keeps a ~13 bytes/pixel summary in RAM up to
``memory_limit`` (256 MiB here, so that both sizes spill to disk; run_scan's own
default is 1 GiB) and in a spill folder beyond it. The files are in the page
cache (just written); the scan reads them with ``np.load``, into anonymous memory.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from _common import (
    MALLOC_ENV,
    PIXEL_NOISE,
    PeakSampler,
    child_env,
    emit,
    ensure_importable,
    fmt_bytes,
    fmt_ratio,
    fmt_s,
    print_machine,
    print_section,
    run_child,
    show_progress,
    synth_batch,
    table,
)

ensure_importable()

SUMMARY_BYTES_PER_PIXEL = 13


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=200, help="N; 2N is run too (default 200)")
    parser.add_argument("--classes", type=int, default=19, help="K (default 19)")
    parser.add_argument("--height", type=int, default=512)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument(
        "--repeats", type=int, default=1, help="timed scans per size (median; default 1)"
    )
    parser.add_argument(
        "--pixel-noise",
        type=float,
        default=PIXEL_NOISE,
        help=f"share of single pixels given a random label (default {PIXEL_NOISE}); each "
        "becomes a 1-pixel region for the region analysis",
    )
    parser.add_argument(
        "--memory-limit-mb",
        type=int,
        default=256,
        help="run_scan's memory_limit in MiB (default 256; run_scan's own default is 1024)",
    )
    parser.add_argument("--top", type=int, default=20, help="run_scan's top (report images)")
    parser.add_argument("--dir", type=Path, default=None, help="where the files go")
    parser.add_argument("--keep", action="store_true", help="keep the files at the end")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--quick", action="store_true", help="12 and 24 images of 256x256, one scan each, top=4"
    )
    parser.add_argument(
        "--small-images",
        type=int,
        default=2000,
        help="also scan this many small images (default 2000; 0: skip), one size only",
    )
    parser.add_argument(
        "--small-size", type=int, default=8, help="height and width of the small images (8)"
    )
    parser.add_argument(
        "--stages",
        action="store_true",
        help="also time run_scan's stages in-process (ms per image, median of the repeats)",
    )
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--memory", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.images, args.height, args.width, args.repeats, args.top = 12, 256, 256, 1, 4
        args.small_images = min(args.small_images, 200)
    return args


# ------------------------------------------------------------------------- data

VOC_PALETTE = [
    v
    for i in range(256)
    for v in (
        sum(((i >> (3 * b)) & 1) << (7 - b) for b in range(3)),
        sum(((i >> (3 * b + 1)) & 1) << (7 - b) for b in range(3)),
        sum(((i >> (3 * b + 2)) & 1) << (7 - b) for b in range(3)),
    )
]


def write_item(folder: Path, stem: str, labels: np.ndarray, logits: np.ndarray) -> None:
    """One palette PNG mask and one ``.npz`` of float16 logits."""
    from PIL import Image

    img = Image.fromarray(labels)
    img.putpalette(VOC_PALETTE)
    img.save(folder / "masks" / f"{stem}.png")
    np.savez(folder / "probs" / f"{stem}.npz", logits=logits.astype(np.float16))


def generate(args: argparse.Namespace, root: Path) -> dict[int, Path]:
    """Write 2N items into ``root/n<2N>``; hard-link the first N into ``root/n<N>``."""
    n, h, w = args.images, args.height, args.width
    big, small = root / f"n{2 * n}", root / f"n{n}"
    return _generate(args, n, h, w, big, small)


def generate_small(args: argparse.Namespace, root: Path) -> Path:
    """Write the small-image set (``--small-images`` of ``--small-size``) into ``root/small``."""
    n, size = args.small_images, args.small_size
    folder = root / "small"
    _generate(args, n, size, size, folder, None)
    return folder


def _generate(
    args: argparse.Namespace, n: int, h: int, w: int, big: Path, small: Path | None
) -> dict[int, Path]:
    """Write items into `big` (2n of them, or n when `small` is None; then only there)."""
    k = args.classes
    count = 2 * n if small is not None else n
    for folder in (big, small) if small is not None else (big,):
        (folder / "masks").mkdir(parents=True, exist_ok=True)
        (folder / "probs").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    for i in range(count):
        labels, logits = synth_batch(
            rng, 1, k, h, w, logits=True, void=True, pixel_noise=args.pixel_noise
        )
        stem = f"img_{i:05d}"
        write_item(big, stem, labels[0], logits[0])
        if small is not None and i < n:
            for sub, suffix in (("masks", ".png"), ("probs", ".npz")):
                src, dst = big / sub / f"{stem}{suffix}", small / sub / f"{stem}{suffix}"
                try:
                    os.link(src, dst)
                except OSError:
                    shutil.copyfile(src, dst)
        show_progress(f"writing files: {i + 1}/{count}", i + 1 == count)
    return {n: small, 2 * n: big} if small is not None else {n: big}


@contextlib.contextmanager
def workdir(args: argparse.Namespace) -> Iterator[Path]:
    """A fresh folder for the data; removed at the end unless ``--keep``."""
    parent = args.dir
    if parent is not None:
        parent.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix="segaudit-scan-", dir=parent))
    try:
        yield path
    finally:
        if args.keep:
            print(f"\nFiles kept in {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


def folder_bytes(folder: Path) -> int:
    """Total size of the files under `folder`."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


# ------------------------------------------------------------------------ child


def read_all(folder: Path) -> None:
    """Read every mask and probability file into memory, one at a time."""
    from PIL import Image

    for path in sorted((folder / "masks").iterdir()):
        with Image.open(path) as img:
            _ = np.asarray(img)
    for path in sorted((folder / "probs").iterdir()):
        with np.load(path) as npz:
            _ = npz["logits"]


STAGES = (
    ("segaudit.cli._scan", "scan_folder", "checks up front (scan_folder)"),
    ("segaudit.cli._scan", "feed_audit", "reading + kernel (feed_audit)"),
    ("segaudit.cli._scan", "image_regions", "image_regions"),
    ("segaudit.cli._scan", "_write_regions", "regions.csv"),
    ("segaudit.report", "write_report", "report.html"),
    ("segaudit.cli._scan", "write_outputs", "all outputs (write_outputs)"),
)
"""Functions timed by ``--stages``: (module, attribute, label); each wraps the inner ones."""


def time_stages(spent: dict[str, float]) -> None:
    """Wrap the `STAGES` functions so that each call adds its time to ``spent[label]``."""
    import functools
    import importlib

    for module_name, name, label in STAGES:
        module = importlib.import_module(module_name)
        func = getattr(module, name)

        @functools.wraps(func)
        def timed(*a: object, _f: Any = func, _label: str = label, **k: object) -> Any:
            start = time.perf_counter()
            try:
                return _f(*a, **k)
            finally:
                spent[_label] = spent.get(_label, 0.0) + time.perf_counter() - start

        setattr(module, name, timed)


def scan_child(args: argparse.Namespace) -> None:
    """In a fresh process: warm up, read the files once, then the timed scans."""
    from segaudit.cli import run_scan
    from segaudit.kernels._choice import passive_waiting

    passive_waiting()  # as the `segaudit` command does (OMP_WAIT_POLICY, unless set)

    spent: dict[str, float] = {}
    if args.stages:
        time_stages(spent)

    folder: Path = args.child
    stems = sorted(p.stem for p in (folder / "masks").iterdir())
    warm = Path(tempfile.mkdtemp(prefix="warm-", dir=folder.parent))
    limit = args.memory_limit_mb << 20
    options = {"from_logits": True, "ignore_index": 255, "top": args.top, "verbose": False}
    try:
        for sub, suffix in (("masks", ".png"), ("probs", ".npz")):
            (warm / sub).mkdir()
            for stem in stems[:2]:
                os.link(folder / sub / f"{stem}{suffix}", warm / sub / f"{stem}{suffix}")
        run_scan(warm / "masks", warm / "probs", warm / "out", memory_limit=limit, **options)
    finally:
        shutil.rmtree(warm, ignore_errors=True)
    times: list[float] = []
    reads: list[float] = []
    stages: list[dict[str, float]] = []
    out = folder.parent / f"out-{folder.name}"
    if args.memory:  # one scan, its memory sampled
        gc.collect()
        with PeakSampler() as sampler:
            start = time.perf_counter()
            run_scan(folder / "masks", folder / "probs", out, memory_limit=limit, **options)
            times.append(time.perf_counter() - start)
        shutil.rmtree(out, ignore_errors=True)
        emit({"times": times, **sampler.result.as_dict()})
        return
    for _ in range(max(args.repeats, 1)):
        gc.collect()  # the plain read just before each scan: a pair sees the same machine
        start = time.perf_counter()
        read_all(folder)
        reads.append(time.perf_counter() - start)
        gc.collect()
        spent.clear()
        start = time.perf_counter()
        result = run_scan(folder / "masks", folder / "probs", out, memory_limit=limit, **options)
        times.append(time.perf_counter() - start)
        stages.append(dict(spent))
        del result
    shutil.rmtree(out, ignore_errors=True)
    emit({"reads": reads, "times": times, "stages": stages})


def read_and_ratio(res: dict[str, Any]) -> tuple[float, float]:
    """The median plain read, and the median over repeats of scan / the read just before it."""
    reads, times = np.asarray(res["reads"]), np.asarray(res["times"])
    return float(np.median(reads)), float(np.median(times / reads))


def print_stages(res: dict[str, Any], images: int, title: str) -> None:
    """Print the median time of each stage per image (``--stages``)."""
    if not res.get("stages") or not res["stages"][0]:
        return
    rows = []
    for _, _, label in STAGES:
        spent = [run.get(label, 0.0) for run in res["stages"]]
        rows.append([label, f"{1e3 * float(np.median(spent)) / images:.2f}"])
    whole = float(np.median(res["times"]))
    rows.append(["the whole scan", f"{1e3 * whole / images:.2f}"])
    read, _ = read_and_ratio(res)
    rows.append(["plain read of the same files", f"{1e3 * read / images:.2f}"])
    print_section(title, table(["stage", "ms per image"], rows))


# ------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child is not None:
        scan_child(args)
        return
    n, k, h, w = args.images, args.classes, args.height, args.width
    print(f"## bench_scan: {n} and {2 * n} images of {h}x{w}, K={k}, float16 logits (.npz)")
    print(f"\nCommand: `{' '.join([Path(sys.executable).name, *sys.argv])}`")
    script = Path(__file__).resolve()
    with workdir(args) as root:
        omp = os.environ.get("OMP_WAIT_POLICY", "PASSIVE (as the segaudit command sets it)")
        print_machine([("data folder", str(root)), ("OMP_WAIT_POLICY", omp)])
        start = time.perf_counter()
        sets = generate(args, root)
        print(f"\nFiles written in {fmt_s(time.perf_counter() - start)}.")
        rows, peaks = [], {}
        for size, folder in sets.items():
            common = [
                f"--child={folder}",
                f"--memory-limit-mb={args.memory_limit_mb}",
                f"--top={args.top}",
            ]
            speed = [f"--repeats={args.repeats}", *(["--stages"] if args.stages else [])]
            res = run_child(script, common + speed, env=child_env())
            mem = run_child(script, [*common, "--memory"], env=child_env(**MALLOC_ENV))
            res.update({key: mem[key] for key in ("anon", "rss", "hwm")})
            print_stages(res, size, f"Stages of run_scan, {size} images (in-process)")
            probs_bytes = folder_bytes(folder / "probs")
            pixels = size * h * w
            t = float(np.median(res["times"]))
            read, ratio = read_and_ratio(res)
            hwm = res["hwm"] if res["hwm"] is not None else res["rss"]
            peaks[size] = res["anon"]
            rows.append(
                [
                    str(size),
                    fmt_bytes(probs_bytes),
                    fmt_s(read),
                    f"{probs_bytes / 1e6 / read:.0f}",
                    fmt_s(t),
                    f"{size / t:.1f}",
                    f"{probs_bytes / 1e6 / t:.0f}",
                    fmt_ratio(ratio),
                    fmt_bytes(res["anon"]),
                    fmt_bytes(hwm),
                    fmt_bytes(SUMMARY_BYTES_PER_PIXEL * pixels),
                ]
            )
        headers = [
            "images",
            "probability files",
            f"plain read (median of {args.repeats})",
            "read MB/s",
            f"scan (median of {args.repeats})",
            "images/s",
            "MB/s",
            "scan / read",
            "peak RssAnon above baseline",
            "peak RSS above baseline (VmHWM)",
            "summary at ~13 B/px",
        ]
        print_section(
            f"run_scan throughput and memory (memory_limit={args.memory_limit_mb} MiB, "
            f"top={args.top})",
            table(headers, rows),
        )
        print(
            "\nMB/s = bytes of the .npz probability files / time. `plain read`: np.load "
            "of every .npz and Pillow of every mask, in the same process, just before each "
            "scan; `scan / read`: the median over the repeats of each scan's time over the "
            "read's before it. Times come from a fresh process per size with the "
            "allocator's defaults (as a user runs); peaks from one more scan in another "
            "fresh process with glibc's mmap/trim thresholds at 128 KiB, so that freed "
            "memory leaves RSS."
        )
        small, big = peaks[n], peaks[2 * n]
        growth = fmt_ratio(big / small) if small > 0 else "-"
        print(
            f"\nPeak RssAnon above baseline: {fmt_bytes(small)} at N={n}, {fmt_bytes(big)} "
            f"at 2N={2 * n} ({growth} for 2x the data)."
        )
        if args.small_images > 0:
            small_scan(args, root, script)


def small_scan(args: argparse.Namespace, root: Path, script: Path) -> None:
    """Scan many small images in a fresh process: per-image costs, not bytes, dominate."""
    n, size = args.small_images, args.small_size
    folder = generate_small(args, root)
    res = run_child(
        script,
        [
            f"--child={folder}",
            f"--repeats={args.repeats}",
            f"--memory-limit-mb={args.memory_limit_mb}",
            f"--top={args.top}",
            *(["--stages"] if args.stages else []),
        ],
        env=child_env(),
    )
    print_stages(res, n, f"Stages of run_scan, {n} images of {size}x{size} (in-process)")
    t = float(np.median(res["times"]))
    read, ratio = read_and_ratio(res)
    headers = [
        "images",
        "plain read",
        f"scan (median of {args.repeats})",
        "images/s",
        "scan / read",
    ]
    row = [str(n), fmt_s(read), fmt_s(t), f"{n / t:.0f}", fmt_ratio(ratio)]
    print_section(
        f"Many small images: {n} of {size}x{size}, K={args.classes} (issue #11: >= 500 images/s)",
        table(headers, [row]),
    )


if __name__ == "__main__":
    main()
