"""Choose the kernels at call time: numpy until compiled ones are ready, numba, or numpy."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any, cast

from segaudit._validation import param_error
from segaudit.kernels._protocol import Kernels

__all__ = [
    "CHOICES",
    "KERNEL_ENV",
    "OMP_WAIT_ENV",
    "get_kernels",
    "kernel_runs",
    "passive_waiting",
    "use_threads",
]

KERNEL_ENV = "SEGAUDIT_KERNEL"
CHOICES = ("auto", "numba", "numpy")
OMP_WAIT_ENV = "OMP_WAIT_POLICY"
"""OpenMP's wait policy (numba's default threading layer is OpenMP): read once, when it loads."""


def get_kernels(name: str | None = None) -> Kernels:
    """Return the kernel module: ``"auto"`` (default), ``"numba"`` or ``"numpy"``.

    ``"auto"`` (:mod:`segaudit.kernels._auto`) serves each call with the numpy
    twins until the compiled kernel for its argument types is ready (compiled
    in the background), then with numba; ``"numba"`` compiles on first use,
    in the caller; ``"numpy"`` never imports numba. All give identical results.

    Parameters
    ----------
    name : {"auto", "numba", "numpy"}, optional
        Defaults to the environment variable ``SEGAUDIT_KERNEL``, else ``"auto"``.

    Returns
    -------
    Kernels
        :mod:`segaudit.kernels._auto`, :mod:`segaudit.kernels._numba` or
        :mod:`segaudit.kernels._numpy`.

    Examples
    --------
    >>> get_kernels("NumPy").__name__
    'segaudit.kernels._numpy'
    >>> get_kernels("cuda")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: The 'SEGAUDIT_KERNEL' parameter ... must be 'auto', ... Got 'cuda' instead.
    """
    choice = _choice(name)
    if choice == "auto":
        from segaudit.kernels import _auto

        return cast("Kernels", _auto)
    if choice == "numba":
        from segaudit.kernels import _numba

        return _numba
    from segaudit.kernels import _numpy

    return _numpy


def _choice(name: str | None) -> str:
    """Return the checked choice: `name`, else ``SEGAUDIT_KERNEL``, else ``"auto"``."""
    choice = (name or os.environ.get(KERNEL_ENV) or "auto").lower()
    if choice not in CHOICES:
        raise param_error(KERNEL_ENV, "the environment", "'auto', 'numba' or 'numpy'", repr(choice))
    return choice


def _numba_in_use() -> ModuleType | None:
    """numba, when the kernels of the current choice may run compiled code; else None.

    ``"auto"`` counts only once it has loaded compiled code, so that setting
    threads never imports numba on the numpy path.
    """
    choice = _choice(None)
    if choice == "numba":
        import numba

        return numba
    if choice == "auto" and "segaudit.kernels._auto" in sys.modules:
        from segaudit.kernels import _auto

        return _auto.loaded_numba()
    return None


@contextlib.contextmanager
def use_threads(n_jobs: int | None) -> Iterator[int]:
    """Run the compiled kernels on `n_jobs` threads (None or -1: all cores).

    Yields the number of threads; numba is not imported for it while the
    numpy kernels serve calls.
    """
    numba = _numba_in_use()
    if numba is None:
        limit = int(os.environ.get("NUMBA_NUM_THREADS") or _cores())
        yield limit if n_jobs is None or n_jobs == -1 else max(1, min(int(n_jobs), limit))
        return
    config: Any = numba.config  # its settings are set at run time, unknown to mypy
    limit = int(config.NUMBA_NUM_THREADS)
    wanted = limit if n_jobs is None or n_jobs == -1 else max(1, min(int(n_jobs), limit))
    previous = numba.get_num_threads()
    numba.set_num_threads(wanted)
    try:
        yield wanted
    finally:
        numba.set_num_threads(previous)


def kernel_runs() -> int:
    """Return the runs of tiles a summary kernel shares among threads: numba's threads now.

    One run per thread, each making its scratch once (a per-tile scratch of
    ``K x TILE`` values is mapped and faulted in afresh on each tile where malloc
    serves it by ``mmap``: musl, or glibc below its mmap threshold); 1 while the
    numpy kernels serve calls (numba is not imported for it).
    """
    numba = _numba_in_use()
    return 1 if numba is None else int(numba.get_num_threads())


def passive_waiting() -> bool:
    """Ask OpenMP's idle threads to sleep at once, unless the environment says otherwise.

    For a process that segaudit owns (the ``segaudit`` command): it sets
    ``OMP_WAIT_POLICY=PASSIVE`` when the variable is unset, before numba's
    OpenMP pool starts (the runtime reads it once, then). By default GNU
    OpenMP's threads spin for a while after each parallel kernel; in the folder
    scan, which runs its reader, writer and region threads beside the kernels,
    the spinning takes the cores those threads need (on two cores, 3-10% of
    the scan's time). A library call never changes the environment.

    Returns
    -------
    bool
        Whether the variable was set here (False: the user's value stands).
    """
    if OMP_WAIT_ENV in os.environ:
        return False
    os.environ[OMP_WAIT_ENV] = "PASSIVE"
    return True


def _cores() -> int:
    """Cores this process may run on (numba's default thread count)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1
