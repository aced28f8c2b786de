"""The default kernels (``SEGAUDIT_KERNEL=auto``): numpy at once, numba once it is ready.

Compiling the fused kernel takes tens of seconds in a fresh environment, so no
call waits for it. Each kernel of this module serves a call with its numpy
twin (:mod:`segaudit.kernels._numpy`, identical results) until the compiled
kernel for that call's argument types is ready, then with numba:

- Small work never starts a compile: only after :data:`WARM_AFTER` array
  elements have gone through one kernel with one set of argument types is the
  compiled version asked for, so a one-off small call never loads numba.
- Then a background thread loads it from numba's disk cache if it is there,
  or else runs ``python -m segaudit.kernels._warm`` (a child process, on
  another core) to compile it into the cache, waits for it, and loads it.
  Children of several processes (dask workers) take turns on a lock file, so
  a signature is compiled once.
- With no writable cache the numpy twins keep serving the process (a
  one-line warning says so; ``SEGAUDIT_KERNEL=numba`` compiles in-process).
- A twin that needs a missing optional library (scipy for the region
  kernels) is replaced by its compiled kernel, compiled in the caller.

At exit nothing is waited for but a cache load in progress (seconds at
most); a compiling child finishes on its own, so the next process starts
warm. numba writes cache files whole (temporary file, then rename).
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

from segaudit.kernels import _numpy

__all__ = [
    "WARM_AFTER",
    "Key",
    "arg_spec",
    "call_key",
    "is_ready",
    "loaded_numba",
    "served",
    "wait_idle",
    "wait_ready",
    *_numpy.__all__,
]

WARM_AFTER = 1 << 22
"""Array elements (about 16 MB of float32) one kernel handles with one set of
argument types before its compiled version is asked for."""

Key = tuple[str, tuple[tuple[Any, ...], ...]]
"""A kernel's name and the numba-relevant description of its arguments."""

_log = logging.getLogger("segaudit")
_ready: dict[Key, Callable[..., Any]] = {}
_failed: set[Key] = set()
_work: dict[Key, int] = {}
_served = [0, 0]  # calls served by the numpy twins, by compiled kernels


def arg_spec(value: object) -> tuple[Any, ...] | None:
    """Describe one argument as numba types it (None: numba is never asked for it).

    Arrays: dtype, ndim, layout ("C", "F" or "A"), writeable; scalars: their
    Python or numpy type.

    Examples
    --------
    >>> arg_spec(np.zeros((2, 3), np.float32).T), arg_spec(True), arg_spec(np.uint64(1))
    (('a', dtype('float32'), 2, 'F', True), ('b',), ('s', dtype('uint64')))
    """
    if isinstance(value, np.ndarray):
        dtype, flags = value.dtype, value.flags
        if dtype.kind not in "biuf" or not dtype.isnative:
            return None
        layout = "C" if flags.c_contiguous else "F" if flags.f_contiguous else "A"
        return ("a", dtype, value.ndim, layout, flags.writeable)
    if isinstance(value, bool):
        return ("b",)
    if isinstance(value, int):
        return ("i",) if -(2**63) <= value < 2**63 else None
    if isinstance(value, float):
        return ("f",)
    if isinstance(value, np.bool_ | np.number) and value.dtype.kind in "biuf":
        return ("s", value.dtype)
    return None


def call_key(name: str, args: tuple[Any, ...]) -> Key | None:
    """Return the key of one call of kernel `name` (None if an argument is not described)."""
    specs = []
    for a in args:
        spec = arg_spec(a)
        if spec is None:
            return None
        specs.append(spec)
    return name, tuple(specs)


def is_ready(key: Key) -> bool:
    """Tell whether the compiled kernel for `key` serves its calls in this process."""
    return key in _ready


def loaded_numba() -> ModuleType | None:
    """Return numba if a compiled kernel serves calls in this process, else None."""
    return _warmer.numba


def served() -> tuple[int, int]:
    """Return how many kernel calls the numpy twins and the compiled kernels served so far."""
    return _served[0], _served[1]


def wait_idle(timeout: float | None = None) -> bool:
    """Wait until no compiled kernel is being made ready; tell whether none is.

    For benchmarks and tests: calls never need to wait.
    """
    with _warmer.cond:
        return _warmer.cond.wait_for(lambda: not _warmer.pending, timeout)


def wait_ready(key: Key, timeout: float | None = None) -> bool:
    """Ask for the compiled kernel of `key` now and wait until it is ready or failed.

    Returns whether it is ready (False on timeout, failure or no cache).
    """
    _warmer.want(key)
    with _warmer.cond:
        _warmer.cond.wait_for(lambda: key in _ready or key in _failed, timeout)
    return key in _ready


def _size(args: tuple[Any, ...]) -> int:
    return max((a.size for a in args if isinstance(a, np.ndarray)), default=0)


def _kernel(name: str) -> Callable[..., Any]:
    """Make kernel `name` of this module: numba when ready for the arguments, else numpy."""
    twin: Callable[..., Any] = getattr(_numpy, name)

    @functools.wraps(twin)
    def kernel(*args: Any) -> Any:
        key = call_key(name, args)
        if key is not None:
            compiled = _ready.get(key)
            if compiled is not None:
                _served[1] += 1
                return compiled(*args)
            done = _work.get(key, 0) + _size(args)
            _work[key] = done
            if done >= WARM_AFTER:
                _warmer.want(key)
        try:
            result = twin(*args)
        except ImportError:  # the twin needs a missing optional library: compile instead
            from segaudit.kernels import _numba

            result = getattr(_numba, name)(*args)
            _served[1] += 1
            return result
        _served[0] += 1
        return result

    kernel.__module__ = __name__
    return kernel


class _Warmer:
    """The background thread that makes compiled kernels ready, one batch of keys at a time."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.busy = threading.Lock()  # held while numba works in this process
        self.pending: dict[Key, None] = {}
        self.thread: threading.Thread | None = None
        self.stopping = False
        self.no_cache = False
        self.numba: ModuleType | None = None

    def want(self, key: Key) -> None:
        """Queue `key` (once) and start the thread if needed."""
        with self.cond:
            if key in _ready or key in _failed or key in self.pending or self.stopping:
                return
            self.pending[key] = None
            if self.thread is None:
                self.thread = threading.Thread(
                    target=self._run, name="segaudit-kernel-warmer", daemon=True
                )
                self.thread.start()
            self.cond.notify_all()

    def _run(self) -> None:
        while True:
            with self.cond:
                self.cond.wait_for(lambda: bool(self.pending) or self.stopping)
                if self.stopping:
                    return
                keys = list(self.pending)
            try:
                self._serve(keys)
            except Exception:  # the numpy twins go on serving these keys
                _log.debug("segaudit: making compiled kernels ready failed", exc_info=True)
                self._finish(keys, [k for k in keys if k in _ready])

    def _serve(self, keys: list[Key]) -> None:
        """Load `keys` from numba's cache, compiling the missing ones in a child first."""
        with self.busy:
            if self.stopping:
                return
            from segaudit.kernels import _warm

            loaded = [k for k in keys if self._load(k, _warm)]
            if not _warm.cache_enabled():  # kernels/_jit has said so in a warning
                self.no_cache = True
        missing = [k for k in keys if k not in loaded]
        if missing and not self.no_cache and not self.stopping:
            code, message = _warm.compile_in_child(missing)
            if code == _warm.NO_CACHE:
                self.no_cache = True
                _log.warning(
                    "segaudit: compiled kernels cannot be cached (no writable folder), so the "
                    "numpy kernels serve this process (identical results, slower); set "
                    "NUMBA_CACHE_DIR to a writable folder, or SEGAUDIT_KERNEL=numba to compile "
                    "in every process."
                )
            elif code != 0:
                _log.warning(
                    "segaudit: compiling kernels in the background failed (%s); the numpy "
                    "kernels serve this process (identical results, slower).",
                    message,
                )
            else:
                with self.busy:
                    if self.stopping:
                        return
                    loaded += [k for k in missing if self._load(k, _warm, after_child=True)]
        self._finish(keys, loaded)

    def _load(self, key: Key, warm: ModuleType, *, after_child: bool = False) -> bool:
        """Make `key` ready from the disk cache (compiling only if numba's cache API changed)."""
        compiled = warm.load_cached(*key, allow_compile=after_child)
        if compiled is None:
            return False
        self.numba = warm.numba
        with self.cond:
            _ready[key] = compiled
        return True

    def _finish(self, keys: list[Key], loaded: list[Key]) -> None:
        with self.cond:
            for k in keys:
                self.pending.pop(k, None)
                if k not in loaded:
                    _failed.add(k)
            self.cond.notify_all()

    def stop(self, timeout: float = 60.0) -> None:
        """At exit: start nothing new; wait (`timeout` at most) for a cache load in progress."""
        with self.cond:
            self.stopping = True
            self.cond.notify_all()
        if self.busy.acquire(timeout=timeout):
            self.busy.release()

    def forget_thread(self) -> None:
        """In a forked child: the thread did not come along; start afresh on demand."""
        self.cond = threading.Condition()
        self.busy = threading.Lock()
        self.thread = None
        for k in self.pending:
            _work.pop(k, None)
        self.pending = {}


_warmer = _Warmer()
atexit.register(_warmer.stop)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_warmer.forget_thread)

for _name in _numpy.__all__:
    globals()[_name] = _kernel(_name)
del _name
