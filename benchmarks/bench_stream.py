"""Streaming benchmark: what ``LabelAudit.update`` adds to a model loop, per batch.

The cost of auditing inside an inference loop is the time ``update`` adds per
batch, as a ratio of the time the loop already spends on the softmax of that
batch (``torch.softmax(logits, dim=1)``, the cheapest thing every segmentation
loop does with its output). Reproduce the figures (batches of
8 x 19 x 512x1024 float32 logits, 304 MiB each, uint8 labels with a void
border; 1-2 minutes on 2 cores) with::

    PYTHONPATH=src python benchmarks/bench_stream.py

Options: ``--images`` (per batch), ``--classes``, ``--height``, ``--width``,
``--repeats`` (timed batches, median reported), ``--device`` (``cpu``,
``cuda``, ...); ``--quick`` for a smoke test on small batches. torch must be
installed (``pip install 'segaudit[torch]'``).

Rows, measured interleaved (one of each per repeat, after a warm-up round) on
the same batch, as torch tensors on ``--device``:

* ``torch.softmax(logits, dim=1)``: the reference, 1x;
* ``summarise_tensor`` on the logits: the torch backend alone (the per-pixel
  summary computed with torch ops on the device, then copied to the host);
* ``LabelAudit.update(labels, logits)`` with ``from_logits=True``: everything
  the audit adds per batch (validation, the summary, storing it). Tensors on
  an accelerator go through ``summarise_tensor``; CPU tensors are viewed as
  numpy arrays (no copy) and go through the compiled kernel, which is faster
  there than many small torch ops;
* ``LabelAudit.update(labels, probs)``: the same for a loop that already has
  probabilities;
* on the CPU only, the compiled (numba) kernel on the same batch as numpy
  arrays (``summarise_batch``): what the host engine costs for comparison.

Then ``find_label_issues()`` and ``get_label_quality_scores()`` of the logits
audit, once, after all its batches (the only work left after the loop).
The machines we share are noisy (the load average is printed): compare the
ratios of one run, not absolute times across runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from _common import (
    ensure_importable,
    fmt_ratio,
    fmt_s,
    print_machine,
    print_section,
    show_progress,
    synth_batch,
    table,
)

# Steady-state speed: the compiled kernels. The default kernel choice ("auto") serves the
# numpy twins until they are compiled; bench_coldstart.py measures that first phase.
os.environ.setdefault("SEGAUDIT_KERNEL", "numba")

ensure_importable()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=8, help="images per batch (8)")
    parser.add_argument("--classes", type=int, default=19, help="K (19)")
    parser.add_argument("--height", type=int, default=512, help="H (512)")
    parser.add_argument("--width", type=int, default=1024, help="W (1024)")
    parser.add_argument("--repeats", type=int, default=3, help="timed batches (3)")
    parser.add_argument("--device", default="cpu", help="torch device (cpu)")
    parser.add_argument("--quick", action="store_true", help="small batches, 3 repeats")
    args = parser.parse_args(argv)
    if args.quick:
        args.images, args.height, args.width, args.repeats = 2, 128, 256, 3
    return args


def interleaved(
    cases: dict[str, Callable[[], Any]], repeats: int, sync: Callable[[], None]
) -> dict[str, list[float]]:
    """Time each case once per round, round after round (the first round untimed)."""
    times: dict[str, list[float]] = {name: [] for name in cases}
    for r in range(repeats + 1):
        show_progress(f"round {r} of {repeats}", last=r == repeats)
        for name, fn in cases.items():
            sync()
            start = time.perf_counter()
            fn()
            sync()
            if r:
                times[name].append(time.perf_counter() - start)
    return times


def main(argv: list[str] | None = None) -> None:
    import torch

    import segaudit
    from segaudit.kernels._batch import as_batch, summarise_batch
    from segaudit.kernels._choice import get_kernels
    from segaudit.kernels._torch import summarise_tensor

    args = parse_args(argv)
    device = torch.device(args.device)
    n, k, h, w = args.images, args.classes, args.height, args.width
    labels_np, logits_np = synth_batch(np.random.default_rng(0), n, k, h, w, logits=True, void=True)
    logits = torch.from_numpy(logits_np).to(device)
    labels = torch.from_numpy(labels_np).to(device)
    probs = torch.softmax(logits, dim=1)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    kw = {"num_classes": k, "ignore_index": 255, "image_offset": 0, "shape_hw": (h, w)}
    audit_logits = segaudit.LabelAudit(num_classes=k, ignore_index=255, from_logits=True)
    audit_probs = segaudit.LabelAudit(num_classes=k, ignore_index=255)
    cases: dict[str, Callable[[], Any]] = {
        "torch.softmax(logits, dim=1)": lambda: torch.softmax(logits, dim=1),
        "summarise_tensor(logits)": lambda: summarise_tensor(
            logits, labels, from_logits=True, **kw
        ),
        "LabelAudit.update(labels, logits)": lambda: audit_logits.update(labels, logits),
        "LabelAudit.update(labels, probs)": lambda: audit_probs.update(labels, probs),
    }
    if device.type == "cpu":
        kernels = get_kernels("numba")
        pb, lb = as_batch(logits_np, labels_np)
        cases["numba kernel, numpy batch (logits)"] = lambda: summarise_batch(
            pb, lb, kernels=kernels, from_logits=True, **kw
        )
        _check_same(
            summarise_tensor(logits, labels, from_logits=True, **kw)[0],
            summarise_batch(pb, lb, kernels=kernels, from_logits=True, **kw),
        )

    print_machine(
        [
            ("torch", f"{torch.__version__} on {device}, {torch.get_num_threads()} threads"),
            ("batch", f"{n} x {k} x {h}x{w} float32 logits ({logits_np.nbytes / 2**20:.0f} MiB)"),
            ("repeats", f"{args.repeats} (median), interleaved, after one warm-up round"),
        ]
    )
    times = interleaved(cases, args.repeats, sync)
    base = statistics.median(times["torch.softmax(logits, dim=1)"])
    rows = []
    for name, ts in times.items():
        med = statistics.median(ts)
        rows.append([name, fmt_s(med), fmt_s(min(ts)), fmt_ratio(med / base)])
    print_section(
        "Per batch (time added to the model loop)",
        table(["call", "median", "best", "vs softmax"], rows),
    )
    batches = args.repeats + 1
    rows = []
    for name, fn in (
        ("find_label_issues()", audit_logits.find_label_issues),
        ("get_label_quality_scores()", audit_logits.get_label_quality_scores),
    ):
        start = time.perf_counter()
        fn()
        rows.append(
            [
                name,
                fmt_s(time.perf_counter() - start),
                fmt_ratio((time.perf_counter() - start) / (base * batches)),
            ]
        )
    print_section(
        f"After the loop ({batches} batches, {batches * n} images, logits audit)",
        table(["call", "time", "vs softmax of all batches"], rows),
    )


def _check_same(got: Any, ref: Any) -> None:
    """The torch backend must give the compiled kernel's summary."""
    assert np.array_equal(got.disagree, ref.disagree), "disagreement differs"
    assert np.array_equal(got.argmax, ref.argmax), "argmax differs"
    assert np.array_equal(got.counts, ref.counts), "counts differ"
    np.testing.assert_allclose(got.scores, ref.scores, rtol=1e-14)


if __name__ == "__main__":
    main()
