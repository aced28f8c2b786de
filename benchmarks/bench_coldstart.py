"""Cold-start benchmark (issue #11): import, first calls and `segaudit demo` in fresh processes.

Reproduce the figures (about 3 minutes on 2 cores, 5 with ``--numba-cold``,
which adds the forced-numba rows: each cold one compiles for about a minute)::

    PYTHONPATH=src python benchmarks/bench_coldstart.py --numba-cold

Every measurement runs in a new Python process (``python -c``, so that no
benchmark code is imported first) with ``NUMBA_CACHE_DIR`` set to a new empty
temporary folder ("cold"), then again with the same folder ("warm": what the
first process, or its background compile, left there):

* ``import``: ``python -c "import segaudit"`` beside ``python -c "import numpy"``
  and ``python -c pass``, medians of 5.
* ``small``: the first ``find_label_issues`` on 2x3x16x16 float32 probabilities,
  int64 labels (``verbose=False``), the second, then the first and second
  ``get_label_quality_scores``. "to 1st result" counts from before
  ``import numpy`` to the end of the first call.
* ``large``: 8 images x 19 classes x 256x256 float32 (10M values: enough work
  to ask for the compiled kernels) with the default kernels: the first call
  (numpy twins; the compile starts in a background child) beside the first two
  calls of a process that asks for nothing (``WARM_AFTER`` infinite), the time until the
  compiled kernels are ready, then a call served by numba, beside
  ``SEGAUDIT_KERNEL=numpy`` / ``numba`` calls and ``pred_probs.sum()`` in the
  same process (medians of 3).
* ``demo``: ``segaudit demo --quiet`` end to end (24 images of 96x128), cold
  and warm.

Only the kernel choice differs between rows: ``auto`` is the default.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import (
    RESULT_PREFIX,
    child_env,
    ensure_importable,
    fmt_ratio,
    fmt_s,
    print_machine,
    print_section,
    table,
)

ensure_importable()

SECTIONS = ("import", "small", "large", "demo")

SMALL = """
import sys, time
t0 = time.perf_counter()
import numpy as np
t1 = time.perf_counter()
import segaudit
t2 = time.perf_counter()
rng = np.random.default_rng(0)
probs = rng.random((2, 3, 16, 16), dtype=np.float32)
probs /= probs.sum(axis=1, keepdims=True)
labels = rng.integers(0, 3, size=(2, 16, 16), dtype=np.int64)
import warnings
warnings.simplefilter("ignore")
out = {"numpy": t1 - t0, "import": t2 - t1}
t3 = time.perf_counter()
for key, name in (("issues", "find_label_issues"), ("scores", "get_label_quality_scores")):
    for which in ("first", "second"):
        start = time.perf_counter()
        getattr(segaudit, name)(labels, probs, verbose=False)
        out[f"{key}_{which}"] = time.perf_counter() - start
        if key == "issues" and which == "first":
            out["to_first"] = time.perf_counter() - t0 - (t3 - t2)
out["loaded"] = [m for m in ("pandas", "scipy", "numba", "dask", "torch") if m in sys.modules]
print("BENCH-RESULT " + __import__("json").dumps(out))
"""

LARGE = """
import os, sys, time, statistics, warnings
warnings.simplefilter("ignore")
t0 = time.perf_counter()
import numpy as np
import segaudit
n, k, h, w = 8, 19, 256, 256
rng = np.random.default_rng(0)
labels = rng.integers(0, k, size=(n, h, w))
logits = rng.normal(size=(n, k, h, w)).astype(np.float32)
np.put_along_axis(logits, labels[:, None], 4.0, axis=1)
probs = np.exp(logits)
probs /= probs.sum(axis=1, keepdims=True)
del logits
from segaudit.kernels import _auto
if "--no-warm" in sys.argv:
    _auto.WARM_AFTER = float("inf")  # nothing in the background, for comparison
def call():
    start = time.perf_counter()
    segaudit.find_label_issues(labels, probs, verbose=False)
    return time.perf_counter() - start
out = {"first": call(), "numpy_calls": _auto.served()[0]}
if "--no-warm" in sys.argv:
    out["second"] = call()
    print("BENCH-RESULT " + __import__("json").dumps(out))
    sys.exit(0)
start = time.perf_counter()
_auto.wait_idle()
out["ready_after"] = time.perf_counter() - t0
out["waited"] = time.perf_counter() - start
out["after"] = statistics.median(call() for _ in range(3))
out["served"] = _auto.served()
for kernel in ("numpy", "numba"):
    os.environ["SEGAUDIT_KERNEL"] = kernel
    out[kernel] = statistics.median(call() for _ in range(3))
def total():
    start = time.perf_counter()
    probs.sum()
    return time.perf_counter() - start
out["sum"] = statistics.median(total() for _ in range(5))
print("BENCH-RESULT " + __import__("json").dumps(out))
"""


def python_c(code: str, env: dict[str, str], *args: str) -> dict[str, Any]:
    """Run ``python -c code *args`` in a fresh process; return the JSON it printed."""
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            result: dict[str, Any] = json.loads(line[len(RESULT_PREFIX) :])
            return result
    raise RuntimeError(f"child exited with {proc.returncode}:\n{proc.stdout}")


def wall(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def settle(cache: Path, env: dict[str, str]) -> None:
    """Wait for a background compile left by the last process to finish (its lock)."""
    code = (
        "import fcntl, os, tempfile\n"
        "p = os.path.join(tempfile.gettempdir(), "
        "f'segaudit-numba-warm-{os.getuid()}.lock')\n"
        "if os.path.exists(p):\n"
        "    with open(p, 'rb') as f:\n"
        "        fcntl.flock(f, fcntl.LOCK_EX)\n"
    )
    time.sleep(2)  # a child that is still importing numba takes the lock within seconds
    subprocess.run([sys.executable, "-c", code], env=env, check=True)


def cache_env(cache: Path, kernel: str) -> dict[str, str]:
    env = child_env(NUMBA_CACHE_DIR=str(cache))
    env.pop("SEGAUDIT_KERNEL", None)
    if kernel != "auto":
        env["SEGAUDIT_KERNEL"] = kernel
    return env


def import_section() -> None:
    env = child_env()
    rows = []
    for label, code in (
        ("python -c pass", "pass"),
        ("python -c 'import numpy'", "import numpy"),
        ("python -c 'import segaudit'", "import segaudit"),
        (
            "python -c 'from segaudit import find_label_issues'",
            "from segaudit import find_label_issues",
        ),
    ):
        times = [wall([sys.executable, "-c", code], env) for _ in range(5)]
        rows.append([label, fmt_s(statistics.median(times)), fmt_s(min(times))])
    print_section(
        "Import (fresh processes, medians of 5)",
        table(["command", "median wall", "best"], rows),
    )


def small_section(kernels: list[str]) -> None:
    rows = []
    for kernel in kernels:
        cache = Path(tempfile.mkdtemp(prefix="segaudit-coldstart-"))
        try:
            env = cache_env(cache, kernel)
            for run in ("cold", "warm"):
                if run == "warm":
                    settle(cache, env)
                t = python_c(SMALL, env)
                files = sum(1 for p in cache.rglob("*") if p.is_file())
                rows.append(
                    [
                        f"{kernel}, {run}",
                        fmt_s(t["numpy"]),
                        fmt_s(t["import"]),
                        fmt_s(t["issues_first"]),
                        fmt_s(t["to_first"]),
                        fmt_s(t["issues_second"]),
                        fmt_s(t["scores_first"]),
                        fmt_s(t["scores_second"]),
                        ", ".join(t["loaded"]) or "-",
                        str(files),
                    ]
                )
        finally:
            shutil.rmtree(cache, ignore_errors=True)
    headers = [
        "kernels, cache",
        "import numpy",
        "import segaudit",
        "1st find_label_issues",
        "to 1st result",
        "2nd",
        "1st get_label_quality_scores",
        "2nd",
        "heavy modules loaded",
        "cache files",
    ]
    print_section(
        "First calls (fresh process; float32 probs, int64 labels, 2x3x16x16)",
        table(headers, rows),
    )


def large_section() -> None:
    rows = []
    cache = Path(tempfile.mkdtemp(prefix="segaudit-coldstart-"))
    try:
        env = cache_env(cache, "auto")
        quiet = python_c(LARGE, env, "--no-warm")
        for run in ("cold", "warm"):
            t = python_c(LARGE, env)
            rows.append(
                [
                    run,
                    fmt_s(t["first"]),
                    f"{fmt_s(quiet['first'])}, {fmt_s(quiet['second'])}",
                    fmt_s(t["ready_after"]),
                    fmt_s(t["after"]),
                    fmt_s(t["numpy"]),
                    fmt_s(t["numba"]),
                    fmt_s(t["sum"]),
                    fmt_ratio(t["first"] / t["after"]),
                    f"{t['served'][0]} / {t['served'][1]}",
                ]
            )
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    headers = [
        "cache",
        "1st call (numpy twins)",
        "1st, 2nd with nothing in the background",
        "compiled kernels ready after",
        "later calls (numba)",
        "SEGAUDIT_KERNEL=numpy",
        "SEGAUDIT_KERNEL=numba",
        "sum()",
        "1st / later",
        "calls served numpy / numba",
    ]
    print_section(
        "Large first call, default kernels (8x19x256x256 float32, find_label_issues; medians of 3)",
        table(headers, rows),
    )


def demo_section(kernels: list[str]) -> None:
    rows = []
    for kernel in kernels:
        cache = Path(tempfile.mkdtemp(prefix="segaudit-coldstart-"))
        try:
            env = cache_env(cache, kernel)
            times = []
            for run in ("cold", "warm"):
                if run == "warm":
                    settle(cache, env)
                out = cache / f"demo-{run}"
                cmd = [sys.executable, "-m", "segaudit", "demo", "--out", str(out), "--quiet"]
                times.append(wall(cmd, env))
            rows.append([kernel, fmt_s(times[0]), fmt_s(times[1])])
        finally:
            shutil.rmtree(cache, ignore_errors=True)
    print_section(
        "segaudit demo --quiet, end to end (24 images of 96x128; fresh process)",
        table(["kernels", "cold (empty NUMBA_CACHE_DIR)", "warm (same cache)"], rows),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--sections", default=",".join(SECTIONS), help=f"subset of {','.join(SECTIONS)}"
    )
    parser.add_argument(
        "--numba-cold",
        action="store_true",
        help="also run with SEGAUDIT_KERNEL=numba (compiles on the first call)",
    )
    args = parser.parse_args()
    sections = args.sections.split(",")
    kernels = ["auto", "numpy"] + (["numba"] if args.numba_cold else [])
    print_machine()
    if "import" in sections:
        import_section()
    if "small" in sections:
        small_section(kernels)
    if "large" in sections:
        large_section()
    if "demo" in sections:
        demo_section(kernels)
    print(f"\nload average after the run: {os.getloadavg()}")


if __name__ == "__main__":
    main()
