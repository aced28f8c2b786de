"""Helpers shared by the benchmark scripts (not a benchmark itself).

Timing (median of repeats), markdown tables, a description of the machine,
peak-memory sampling from ``/proc/self/status``, page-cache control for a file,
child processes that report one JSON line, and the synthetic data generator.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import importlib.util
import json
import mmap
import os
import platform
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
RESULT_PREFIX = "BENCH-RESULT "

# Synthetic data: a "model" that is right on ~90% of pixels (K = 19..21), and
# labels with ~5% wrong pixels (whole 32x32 cells and single pixels); about 15%
# of pixels disagree with the model's argmax, as on a real segmentation set.
BOOST = 4.5
CELL = 32
REGION_NOISE = 0.03
PIXEL_NOISE = 0.02


# ----------------------------------------------------------------- imports, children


def ensure_importable() -> None:
    """Put ``<repo>/src`` on ``sys.path`` when segaudit is not importable otherwise."""
    if importlib.util.find_spec("segaudit") is None:
        sys.path.insert(0, str(SRC))


# glibc returns freed blocks above this size to the OS at once (the default
# threshold grows to 32 MiB after the first free), so that RSS follows the
# memory actually in use; set for every child that measures memory.
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "131072", "MALLOC_TRIM_THRESHOLD_": "131072"}


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a child process: ours, with ``src`` on PYTHONPATH."""
    env = dict(os.environ)
    paths = [str(SRC)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.update(extra)
    return env


def run_child(
    script: str | Path, args: Sequence[str], *, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run ``python script *args`` in a fresh process; return the JSON it emitted.

    The child reports with :func:`emit`; its stderr passes through, so a
    failure shows its traceback.
    """
    cmd = [sys.executable, str(script), *args]
    proc = subprocess.run(
        cmd, env=env or child_env(), stdout=subprocess.PIPE, text=True, check=False
    )
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])
    raise RuntimeError(
        f"child {' '.join(cmd)} exited with {proc.returncode} and no result:\n{proc.stdout}"
    )


def emit(result: dict[str, Any]) -> None:
    """Report a child's result to :func:`run_child` (one line on stdout)."""
    print(RESULT_PREFIX + json.dumps(result), flush=True)


# ----------------------------------------------------------------------- timing


@dataclass
class Timing:
    """Wall-clock times of the repeats of one measurement, in seconds."""

    times: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def best(self) -> float:
        return min(self.times)


def time_repeats(fn: Callable[[], Any], repeats: int, *, warmup: int = 0) -> Timing:
    """Call `fn` `warmup` times untimed, then `repeats` times timed."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(max(repeats, 1)):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return Timing(times)


# ----------------------------------------------------------------------- output


def fmt_s(seconds: float | None) -> str:
    """Seconds, with a unit that keeps 3 significant digits."""
    if seconds is None:
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def fmt_bytes(n: float | None) -> str:
    """Bytes in binary units."""
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.2f} {unit}"
        value /= 1024
    raise AssertionError  # pragma: no cover


def fmt_ratio(x: float | None) -> str:
    """A ratio such as ``12.3x``."""
    if x is None:
        return "-"
    return f"{x:.3g}x" if x < 100 else f"{x:.0f}x"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A markdown table; columns padded so that the raw text also reads well."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(r: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"

    rule = "| " + " | ".join("-" * w for w in widths) + " |"
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])


def show_progress(message: str, last: bool = False) -> None:
    """Overwrite one status line on stderr (only when it is a terminal)."""
    if sys.stderr.isatty():
        print(f"\r  {message}", end="\n" if last else "", file=sys.stderr, flush=True)


def print_section(title: str, body: str = "") -> None:
    """A markdown heading, then `body`."""
    print(f"\n### {title}\n")
    if body:
        print(body)


# ---------------------------------------------------------------------- machine


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine_description() -> list[tuple[str, str]]:
    """(name, value) pairs describing the machine and the software."""
    import numba

    rows = [
        ("platform", platform.platform()),
        ("cpu", _cpu_model()),
        ("os.cpu_count()", str(os.cpu_count())),
        ("python", platform.python_version()),
        ("numpy / numba", f"{np.__version__} / {numba.__version__}"),
        ("numba threads", str(numba.config.NUMBA_NUM_THREADS)),
    ]
    try:
        import psutil

        vm = psutil.virtual_memory()
        rows.insert(3, ("physical cores", str(psutil.cpu_count(logical=False))))
        rows.insert(4, ("memory", f"{fmt_bytes(vm.total)} total, {fmt_bytes(vm.available)} free"))
    except ImportError:
        rows.insert(3, ("memory", "psutil not installed"))
    with contextlib.suppress(OSError):
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        rows.append(("load average (1, 5, 15 min)", f"{load}  (other work makes timings noisy)"))
    return rows


def print_machine(extra: Sequence[tuple[str, str]] = ()) -> None:
    """Print the machine description (and `extra` rows) as a table."""
    print_section("Machine", table(["", ""], [*machine_description(), *extra]))


# ----------------------------------------------------------------------- memory

_STATUS_KEYS = ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem")


def read_status() -> dict[str, int]:
    """VmRSS, VmHWM, RssAnon, RssFile, RssShmem of this process, in bytes (Linux)."""
    out = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in _STATUS_KEYS:
                out[key] = int(value.split()[0]) * 1024
    return out


def reset_peak() -> bool:
    """Reset the kernel's peak RSS (VmHWM, ru_maxrss) to the current RSS, if allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return False
    return True


def ru_maxrss() -> int:
    """Peak resident set size of this process so far, in bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@dataclass
class PeakMemory:
    """Memory above the baseline taken when the sampler started, in bytes.

    Attributes
    ----------
    baseline : dict
        :func:`read_status` at the start.
    rss, anon : int
        Largest sampled VmRSS and RssAnon minus their baseline.
    hwm : int or None
        Kernel-exact peak RSS (VmHWM) minus the baseline RSS; None when the
        peak could not be reset at the start.
    maxrss : int
        ``ru_maxrss`` growth over the run (0 if the process had a higher peak
        before and the reset was not allowed).
    samples : int
        Number of samples taken.
    """

    baseline: dict[str, int]
    rss: int = 0
    anon: int = 0
    hwm: int | None = None
    maxrss: int = 0
    samples: int = 0
    peaks: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rss": self.rss,
            "anon": self.anon,
            "hwm": self.hwm,
            "maxrss": self.maxrss,
            "samples": self.samples,
            "baseline": self.baseline,
        }


class PeakSampler:
    """Sample ``/proc/self/status`` every `interval` seconds in a background thread.

    Use as a context manager; ``.result`` is a :class:`PeakMemory`. The kernel's
    VmHWM is reset at the start (``/proc/self/clear_refs``), so it gives the
    exact peak RSS even between samples; RssAnon (anonymous memory, i.e. not the
    page cache of memory-mapped files) is known only from the samples.
    """

    def __init__(self, interval: float = 0.001) -> None:
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.result = PeakMemory(baseline={})

    def _sample(self) -> None:
        status = read_status()
        peaks = self.result.peaks
        for key in ("VmRSS", "RssAnon"):
            peaks[key] = max(peaks.get(key, 0), status[key])
        self.result.samples += 1

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> PeakSampler:
        # A shorter GIL switch interval lets the sampler in while the measured
        # code runs Python; VmHWM is exact regardless.
        self._switch = sys.getswitchinterval()
        sys.setswitchinterval(min(self._switch, self.interval / 2))
        self._reset = reset_peak()
        self._maxrss0 = ru_maxrss()
        self.result.baseline = read_status()
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        sys.setswitchinterval(self._switch)
        self._sample()
        r, base = self.result, self.result.baseline
        r.rss = r.peaks["VmRSS"] - base["VmRSS"]
        r.anon = r.peaks["RssAnon"] - base["RssAnon"]
        r.maxrss = ru_maxrss() - self._maxrss0
        if self._reset:
            r.hwm = read_status()["VmHWM"] - base["VmRSS"]


# ------------------------------------------------------------------ page cache


def _libc() -> Any:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def cached_fraction(path: str | Path) -> float | None:
    """Fraction of the file's pages in the page cache (``mincore``), or None if unknown."""
    size = os.path.getsize(path)
    if size == 0:
        return 0.0
    try:
        libc = _libc()
        libc.mmap.restype = ctypes.c_void_p
        libc.mmap.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_long,
        ]
        libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
        libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        page = mmap.PAGESIZE
        pages = (size + page - 1) // page
        vec = np.zeros(pages, dtype=np.uint8)
        fd = os.open(path, os.O_RDONLY)
        try:
            addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
            if addr in (None, ctypes.c_void_p(-1).value):
                return None
            try:
                if libc.mincore(addr, size, vec.ctypes.data) != 0:
                    return None
            finally:
                libc.munmap(addr, size)
        finally:
            os.close(fd)
    except (OSError, AttributeError):
        return None
    return float(np.count_nonzero(vec & 1)) / pages


def evict_from_cache(paths: Sequence[str | Path], how: str) -> str:
    """Drop `paths` from the page cache; return what was done, in words.

    `how` is ``"file"`` (``posix_fadvise(DONTNEED)`` on each file, after
    ``fsync``; any user, touches nothing else), ``"global"`` (``echo 1 >
    /proc/sys/vm/drop_caches``, needs root, drops every clean page of the
    machine), or ``"none"``.
    """
    if how == "none":
        return "not dropped"
    if how == "global":
        os.sync()
        try:
            Path("/proc/sys/vm/drop_caches").write_text("1\n")
        except OSError as err:
            return f"drop_caches failed ({err.strerror}); cache state as measured"
        return "dropped (echo 1 > /proc/sys/vm/drop_caches)"
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    return "evicted (fsync + posix_fadvise DONTNEED)"


def fmt_cached(fraction: float | None) -> str:
    """A cached fraction as a percentage."""
    return "unknown" if fraction is None else f"{100 * fraction:.0f}%"


def disk_free(path: str | Path) -> int:
    """Free bytes on the file system holding `path`."""
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


# ------------------------------------------------------------------------- data


def synth_batch(
    rng: np.random.Generator,
    n: int,
    k: int,
    h: int,
    w: int,
    *,
    logits: bool = False,
    void: bool = False,
    pixel_noise: float = PIXEL_NOISE,
) -> tuple[np.ndarray, np.ndarray]:
    """A few synthetic images: labels ``(n, H, W)`` uint8, probabilities ``(n, K, H, W)``.

    The true class map is a grid of random 32x32 cells; the "model" puts
    Dirichlet(1) noise on every class plus `BOOST` on the true one (argmax right
    on ~90% of pixels); the given labels replace 3% of the cells and
    `pixel_noise` (2%) of the pixels with random classes. Probabilities are float32 and sum to 1 (to
    rounding); with `logits`, their logarithm before normalising is returned
    instead (float32). With `void`, a 4-pixel border is labelled 255.

    Only ``n * K * H * W`` float32 values are allocated (plus a few (n, H, W)
    temporaries): call it chunk by chunk to fill large arrays.
    """
    gh, gw = -(-h // CELL), -(-w // CELL)
    coarse = rng.integers(0, k, size=(n, gh, gw), dtype=np.uint8)
    true = coarse.repeat(CELL, 1).repeat(CELL, 2)[:, :h, :w]
    probs = rng.standard_exponential(size=(n, k, h, w), dtype=np.float32)
    for c in range(k):
        plane = probs[:, c]
        np.add(plane, np.float32(BOOST), out=plane, where=true == c)
    if logits:
        np.maximum(probs, np.float32(1e-30), out=probs)  # an exponential draw can be 0
        np.log(probs, out=probs)
    else:
        probs /= probs.sum(axis=1, keepdims=True)
    wrong = rng.random(coarse.shape) < REGION_NOISE
    given = np.where(wrong, rng.integers(0, k, coarse.shape, dtype=np.uint8), coarse)
    labels = given.repeat(CELL, 1).repeat(CELL, 2)[:, :h, :w]
    flip = rng.random((n, h, w), dtype=np.float32) < pixel_noise
    labels = np.where(flip, rng.integers(0, k, (n, h, w), dtype=np.uint8), labels)
    if void:
        labels[:, :4], labels[:, -4:], labels[:, :, :4], labels[:, :, -4:] = 255, 255, 255, 255
    return labels, probs


def fill_arrays(
    labels: np.ndarray,
    probs: np.ndarray,
    *,
    seed: int = 0,
    chunk: int = 4,
    progress: bool = False,
) -> None:
    """Fill preallocated ``labels (N, H, W)`` and ``probs (N, K, H, W)`` chunk by chunk."""
    rng = np.random.default_rng(seed)
    n, k, h, w = probs.shape
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        lab, p = synth_batch(rng, stop - start, k, h, w)
        labels[start:stop] = lab
        probs[start:stop] = p
        if progress:
            show_progress(f"generated {stop}/{n} images", stop == n)


@contextlib.contextmanager
def quiet_warnings() -> Iterator[None]:
    """Silence the reference's deprecation chatter while it runs."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
