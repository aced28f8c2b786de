"""Logits benchmark: `find_label_issues(..., from_logits=True)` against probabilities.

The fused kernel computes the softmax itself (one exp per class and pixel), so
on logits it costs more than on probabilities. This script times, in one
process and alternating, on the same synthetic data (``_common.synth_batch``):

- ``find_label_issues(labels, logits, from_logits=True)`` (float16 and float32 logits);
- ``find_label_issues(labels, probs)`` on the softmax of those logits (float32);
- ``logits.sum()``, one plain read of the array.

Run with the compiled kernels (``SEGAUDIT_KERNEL=numba``): the numpy twins are
the cold-start path, not the steady state::

    SEGAUDIT_KERNEL=numba PYTHONPATH=src python benchmarks/bench_logits.py
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np
from _common import ensure_importable, fmt_ratio, fmt_s, print_machine, synth_batch, table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=8, help="N (default 8)")
    parser.add_argument("--classes", type=int, default=19, help="K (default 19)")
    parser.add_argument("--size", type=int, default=512, help="H = W (default 512)")
    parser.add_argument("--repeats", type=int, default=7, help="timed repeats (median)")
    parser.add_argument("--quick", action="store_true", help="2 images of 128x128, 3 repeats")
    args = parser.parse_args()
    if args.quick:
        args.images, args.size, args.repeats = 2, 128, 3
    ensure_importable()
    os.environ.setdefault("SEGAUDIT_KERNEL", "numba")
    import segaudit

    rng = np.random.default_rng(0)
    n, k, side = args.images, args.classes, args.size
    labels, logits32 = synth_batch(rng, n, k, side, side, logits=True)
    logits16 = logits32.astype(np.float16)
    e = np.exp(logits32 - logits32.max(axis=1, keepdims=True))
    probs = (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
    del e
    calls = {
        "logits float16": lambda: segaudit.find_label_issues(
            labels, logits16, from_logits=True, verbose=False
        ),
        "logits float32": lambda: segaudit.find_label_issues(
            labels, logits32, from_logits=True, verbose=False
        ),
        "probabilities float32": lambda: segaudit.find_label_issues(labels, probs, verbose=False),
        "logits float32 .sum()": lambda: logits32.sum(),
    }
    times: dict[str, list[float]] = {name: [] for name in calls}

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for fn in calls.values():
            fn()  # warm: compile or load the kernels
        for _ in range(args.repeats):
            for name, fn in calls.items():  # alternating, so load hits all alike
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    print_machine([("shape", f"{n}x{k}x{side}x{side}"), ("kernel", os.environ["SEGAUDIT_KERNEL"])])
    med = {name: float(np.median(t)) for name, t in times.items()}
    read = med["logits float32 .sum()"]
    probs_call = med["probabilities float32"]
    rows = [
        [name, fmt_s(t), fmt_s(t / n), fmt_ratio(t / read), fmt_ratio(t / probs_call)]
        for name, t in med.items()
    ]
    print(table(["call", "median", "per image", "/ sum()", "/ probabilities call"], rows))


if __name__ == "__main__":
    main()
